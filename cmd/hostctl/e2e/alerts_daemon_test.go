package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
)

// hookEvent is one webhook POST as the receiver decoded it.
type hookEvent struct {
	Action         string         `json:"action"`
	Key            string         `json:"key"`
	DedupKey       string         `json:"dedup_key"`
	Condition      string         `json:"condition"`
	Program        string         `json:"program"`
	Severity       string         `json:"severity"`
	Summary        string         `json:"summary"`
	Host           string         `json:"host"`
	Time           time.Time      `json:"time"`
	Since          time.Time      `json:"since"`
	Details        map[string]any `json:"details"`
	LastLines      []string       `json:"last_lines"`
	Command        string         `json:"command"`
	ResolveSummary string         `json:"resolve_summary"`

	received time.Time
}

// hookReceiver is a real HTTP receiver on 127.0.0.1 that checks every
// request's signature and keeps what it got.
type hookReceiver struct {
	t          *testing.T
	secret     []byte
	secretFile string // holds secret, for the sink's secret_file
	url        string

	mu     sync.Mutex
	events []hookEvent
	bad    []string
	more   chan struct{} // closed and replaced on every event
}

func newHookReceiver(t *testing.T) *hookReceiver {
	secret := "webhook-secret-" + t.Name()
	h := &hookReceiver{t: t, secret: []byte(secret), secretFile: filepath.Join(t.TempDir(), "secret"), more: make(chan struct{})}
	if err := os.WriteFile(h.secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	h.url = "http://" + ln.Addr().String() + "/hook"
	return h
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := alert.VerifySignature(h.secret, body, r.Header); err != nil {
		h.bad = append(h.bad, "bad signature: "+err.Error())
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev hookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		h.bad = append(h.bad, "bad JSON: "+err.Error())
		http.Error(w, "bad JSON", http.StatusBadRequest)
		return
	}
	if ev.Action != "trigger" && ev.Action != "resolve" || ev.Key == "" || ev.Host == "" || ev.Summary == "" || ev.DedupKey != ev.Host+"/"+ev.Key {
		h.bad = append(h.bad, "incomplete event: "+string(body))
	}
	ev.received = time.Now()
	h.events = append(h.events, ev)
	close(h.more)
	h.more = make(chan struct{})
	w.WriteHeader(http.StatusNoContent)
}

// wait returns the first event with action and key, waiting up to timeout.
func (h *hookReceiver) wait(action, key string, timeout time.Duration) hookEvent {
	h.t.Helper()
	deadline := time.After(timeout)
	for {
		h.mu.Lock()
		for _, ev := range h.events {
			if ev.Action == action && ev.Key == key {
				h.mu.Unlock()
				return ev
			}
		}
		more := h.more
		h.mu.Unlock()
		select {
		case <-more:
		case <-deadline:
			h.t.Fatalf("no %s of %s within %s; received:\n%s", action, key, timeout, h.dump())
		}
	}
}

func (h *hookReceiver) count(action, key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ev := range h.events {
		if ev.Action == action && ev.Key == key {
			n++
		}
	}
	return n
}

func (h *hookReceiver) dump() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, ev := range h.events {
		fmt.Fprintf(&b, "  %s %s: %s %s\n", ev.Action, ev.Key, ev.Summary, ev.ResolveSummary)
	}
	for _, s := range h.bad {
		fmt.Fprintf(&b, "  REJECTED %s\n", s)
	}
	return b.String()
}

// TestAlertsThroughTheDaemon drives the real daemon into each program and
// host condition and checks that a signed webhook receives one trigger and
// then the resolve for each, with the same key.
func TestAlertsThroughTheDaemon(t *testing.T) {
	dir := t.TempDir()
	hook := newHookReceiver(t)
	broken := filepath.Join(dir, "broken")
	sick := filepath.Join(dir, "sick")
	if err := os.WriteFile(broken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	upPort, webPort := freePort(t), freePort(t)
	alerts := func(hostChecks string) string {
		return fmt.Sprintf(`
[alerts]
settle = "1s"
check_interval = "1s"
crash_loop_restarts = 3
crash_loop_window = "1m"
%s

[[alerts.sink]]
name = "hook"
type = "webhook"
url = %q
secret_file = %q
`, hostChecks, hook.url, hook.secretFile)
	}
	programs := fmt.Sprintf(`
[program.flaky]
command = ["/bin/sh", "-c", "if [ -e %[1]s ]; then echo 'ImproperlyConfigured: the flag file is there' >&2; exit 3; fi; exec sleep 1000"]
start_secs = "1s"
start_retries = 1
fatal_retry = "1s"
backoff = { initial = "100ms", max = "100ms" }

[program.sick]
command = ["/bin/sh", "-c", "exec sleep 1000"]
start_secs = "0s"
[program.sick.health]
exec = ["/bin/sh", "-c", "test ! -e %[2]s"]
interval = "200ms"
failures = 2

[program.crashy]
command = ["/bin/sh", "-c", "sleep 0.2; exit 1"]
start_secs = "0s"
backoff = { initial = "100ms", max = "200ms" }

[program.hog]
command = [%[3]q]
environment = { HOSTCTL_TEST_ALLOC_MB = "200" }
start_secs = "0s"
memory_limit = "100MB"
backoff = { initial = "30s", max = "60s" }

[proxy]
listen = "127.0.0.1:%[4]d"
upstream = "127.0.0.1:%[5]d"
`, broken, sick, exe, webPort, upPort)
	d := startDaemon(t, alerts(`memory_available_below = "1000TB"
disk_free_below = "1000TB"`)+programs, daemonOpts{})
	logDir := filepath.Join(d.dir, "log")

	// hostctl started: a trigger at start, resolved once everything settled.
	hook.wait("trigger", "hostctl_started", 30*time.Second)
	hook.wait("resolve", "hostctl_started", 30*time.Second)

	// FATAL: the trigger carries the reason (the last stderr line), the
	// last lines and the command to run.
	fatal := hook.wait("trigger", "fatal:flaky", 30*time.Second)
	if fatal.Severity != "critical" || fatal.Program != "flaky" || fatal.Condition != "fatal" ||
		!strings.Contains(fatal.Summary, "ImproperlyConfigured: the flag file is there") || !strings.Contains(fatal.Summary, "keeps trying") ||
		len(fatal.LastLines) == 0 || !strings.Contains(fatal.Command, "hostctl tail flaky stderr") {
		t.Errorf("fatal trigger = %+v", fatal)
	}
	// The person on call sees it in `hostctl alerts`, at the end of
	// `hostctl status`, and can check that alerts reach them.
	if r := d.hostctl(t, "alerts"); r.code != 0 || !strings.Contains(r.stdout, "flaky is FATAL") || !strings.Contains(r.stdout, "hostctl tail flaky stderr") || !strings.Contains(r.stdout, "hook") {
		t.Errorf("hostctl alerts: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := d.hostctl(t, "status"); !strings.Contains(r.stdout, "flaky is FATAL") {
		t.Errorf("hostctl status does not end with the alerts:\n%s", r.stdout)
	}
	if r := d.hostctl(t, "alerts", "test"); r.code != 0 || !strings.Contains(r.stdout, "hook") {
		t.Errorf("hostctl alerts test: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if ev := hook.wait("trigger", "test", 10*time.Second); ev.Condition != "test" || ev.Severity != "info" {
		t.Errorf("test alert = %+v", ev)
	}
	if strings.Contains(d.log(), string(hook.secret)) {
		t.Error("the webhook secret appears in hostctl's log")
	}

	// Fixed: the fatal_retry brings it back by itself, and the resolve
	// follows with the same key.
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	res := hook.wait("resolve", "fatal:flaky", 30*time.Second)
	if res.DedupKey != fatal.DedupKey || !strings.Contains(res.ResolveSummary, "RUNNING again") {
		t.Errorf("fatal resolve = %+v", res)
	}
	if n := hook.count("trigger", "fatal:flaky"); n != 1 {
		t.Errorf("%d triggers of fatal:flaky, want 1 (one per condition until it resolves)", n)
	}

	// A health check that fails restarts the program and alerts; once it
	// passes again for settle, the alert resolves.
	if err := os.WriteFile(sick, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := hook.wait("trigger", "health_restart:sick", 30*time.Second)
	if !strings.Contains(h.Summary, "health check failed") {
		t.Errorf("health trigger = %+v", h)
	}
	if err := os.Remove(sick); err != nil {
		t.Fatal(err)
	}
	hook.wait("resolve", "health_restart:sick", 30*time.Second)

	// A crash loop alerts; stopping the program on request resolves it.
	hook.wait("trigger", "crash_loop:crashy", 30*time.Second)
	if r := d.hostctl(t, "stop", "crashy"); r.code != 0 {
		t.Fatalf("hostctl stop crashy: %d %s", r.code, r.stderr)
	}
	hook.wait("resolve", "crash_loop:crashy", 30*time.Second)

	// Memory: two checks 5s apart above memory_limit restart it.
	m := hook.wait("trigger", "memory_limit:hog", 60*time.Second)
	if !strings.Contains(m.Summary, "stayed above memory_limit (100M") || m.Severity != "warning" {
		t.Errorf("memory trigger = %+v", m)
	}

	// Nothing listens on the site's upstream: visitors see the error page.
	hook.wait("trigger", "upstreams_down:*", 30*time.Second)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", upPort))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hook.wait("resolve", "upstreams_down:*", 30*time.Second)

	// Host memory and disk under absurd thresholds alert; a reload with
	// them off resolves them.
	hook.wait("trigger", "host_memory", 30*time.Second)
	disk := hook.wait("trigger", "disk_free:"+logDir, 30*time.Second)
	if !strings.Contains(disk.Summary, "disk almost full") {
		t.Errorf("disk trigger = %+v", disk)
	}
	writeConfig(t, d.dir, "", alerts(`memory_available_below = ""
disk_free_below = ""`)+programs)
	if r := d.hostctl(t, "reload"); r.code != 0 {
		t.Fatalf("hostctl reload: %d %s %s", r.code, r.stdout, r.stderr)
	}
	hook.wait("resolve", "host_memory", 30*time.Second)
	hook.wait("resolve", "disk_free:"+logDir, 30*time.Second)

	if b := string(d.metrics(t)); !strings.Contains(b, `hostctl_alerts_sent_total{sink="hook"}`) || !strings.Contains(b, `hostctl_alerts_failed_total{sink="hook"} 0`) {
		t.Errorf("/metrics lacks the sink's counters (or counts failures):\n%s", grepLines(b, "hostctl_alerts"))
	}
	hook.mu.Lock()
	bad := hook.bad
	hook.mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("the receiver rejected requests:\n%s", hook.dump())
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestDiskAlertsThroughTheDaemon fills a small tmpfs holding the logs:
// disk_free, keep_free (log writing paused) and log_dropped (a chatty
// program's output dropped) trigger, and resolve once space is back.
func TestDiskAlertsThroughTheDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a tmpfs: run the tests as root (make test does)")
	}
	logDir := t.TempDir()
	// mode=755: a tmpfs is 1777 by default, which a log dir may not be.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m,mode=755", "tmpfs", logDir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", logDir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", logDir, err, out)
		}
	})
	hook := newHookReceiver(t)
	d := startDaemon(t, fmt.Sprintf(`
[alerts]
settle = "1s"
check_interval = "1s"
disk_free_below = "40%%"
memory_available_below = ""
started = false

[[alerts.sink]]
name = "hook"
type = "webhook"
url = %q
secret_file = %q

[program.chatty]
command = ["/bin/sh", "-c", "while :; do echo 'a line of output that goes to the log'; sleep 0.01; done"]
start_secs = "0s"
`, hook.url, hook.secretFile), daemonOpts{logDir: logDir})
	d.waitLog(t, 30*time.Second, `"to":"RUNNING"`, `"program":"chatty"`)
	// Fill the disk to the last byte, as a runaway file would; [log]
	// keep_free (5%) pauses log writing.
	filler := filepath.Join(logDir, "filler")
	if err := os.WriteFile(filler, make([]byte, 8<<20), 0o644); err == nil || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the tmpfs: %v, want ENOSPC", err)
	}
	df := hook.wait("trigger", "disk_free:"+logDir, 30*time.Second)
	if !strings.Contains(df.Summary, "free of 8") {
		t.Errorf("disk_free trigger = %+v", df)
	}
	hook.wait("trigger", "keep_free", 60*time.Second)
	hook.wait("trigger", "log_dropped:chatty", 60*time.Second)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	hook.wait("resolve", "disk_free:"+logDir, 30*time.Second)
	hook.wait("resolve", "keep_free", 60*time.Second)
	hook.wait("resolve", "log_dropped:chatty", 60*time.Second)
}

// TestTLSAlertsThroughTheDaemon: a certificate that expires within
// tls_expires_within (the local CA's last 12h) raises tls_expiring, and a
// certificate that cannot be obtained (the ACME server does not answer)
// raises tls_renewal_failed; a reload that no longer asks for them
// resolves both.
func TestTLSAlertsThroughTheDaemon(t *testing.T) {
	hook := newHookReceiver(t)
	closed := freePort(t) // nothing listens: the ACME server is down
	cfg := func(within, sites string) string {
		return fmt.Sprintf(`
[alerts]
settle = "1s"
check_interval = "1s"
tls_expires_within = %q
memory_available_below = ""
disk_free_below = ""
started = false

[[alerts.sink]]
name = "hook"
type = "webhook"
url = %q
secret_file = %q

[proxy]
listen = "127.0.0.1:%d"
listen_tls = "127.0.0.1:%d"
acme_ca = "https://127.0.0.1:%d/dir"
%s
`, within, hook.url, hook.secretFile, freePort(t), freePort(t), closed, sites)
	}
	internal := `
[[proxy.site]]
hosts = ["internal.test"]
tls = "internal"
upstream = "127.0.0.1:9"
`
	acme := `
[[proxy.site]]
hosts = ["www.example.com"]
tls = "auto"
upstream = "127.0.0.1:9"
`
	d := startDaemon(t, cfg("30d", internal+acme), daemonOpts{})
	exp := hook.wait("trigger", "tls_expiring:internal.test", 60*time.Second)
	if !strings.Contains(exp.Summary, "internal.test") || !strings.Contains(exp.Summary, "expires in") {
		t.Errorf("tls_expiring trigger = %+v", exp)
	}
	fail := hook.wait("trigger", "tls_renewal_failed:www.example.com", 60*time.Second)
	if !strings.Contains(fail.Summary, "obtaining the TLS certificate of www.example.com") {
		t.Errorf("tls_renewal_failed trigger = %+v", fail)
	}
	writeConfig(t, d.dir, "", cfg("1h", internal))
	if r := d.hostctl(t, "reload"); r.code != 0 {
		t.Fatalf("hostctl reload: %d %s %s", r.code, r.stdout, r.stderr)
	}
	hook.wait("resolve", "tls_expiring:internal.test", 30*time.Second)
	hook.wait("resolve", "tls_renewal_failed:www.example.com", 30*time.Second)
}
