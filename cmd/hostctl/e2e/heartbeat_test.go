package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testuser"
)

// pingMonitor is an outside monitor on 127.0.0.1 (a Healthchecks.io
// stand-in): it records every request's path and when it arrived.
type pingMonitor struct {
	t   *testing.T
	url string

	mu    sync.Mutex
	pings []monitorPing
	more  chan struct{} // closed and replaced on every ping
}

type monitorPing struct {
	uri string
	at  time.Time
}

func newPingMonitor(t *testing.T) *pingMonitor {
	m := &pingMonitor{t: t, more: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: m}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	m.url = "http://" + ln.Addr().String()
	return m
}

func (m *pingMonitor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.pings = append(m.pings, monitorPing{uri: r.URL.RequestURI(), at: time.Now()})
	close(m.more)
	m.more = make(chan struct{})
	m.mu.Unlock()
	w.Write([]byte("OK"))
}

// snapshot returns the pings so far and a channel closed at the next.
func (m *pingMonitor) snapshot() ([]monitorPing, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]monitorPing(nil), m.pings...), m.more
}

// waitFor waits until cond holds for the pings so far.
func (m *pingMonitor) waitFor(what string, timeout time.Duration, cond func([]monitorPing) bool) []monitorPing {
	m.t.Helper()
	deadline := time.After(timeout)
	for {
		pings, more := m.snapshot()
		if cond(pings) {
			return pings
		}
		select {
		case <-more:
		case <-deadline:
			m.t.Fatalf("the monitor never got %s within %s; it got:\n%s", what, timeout, dumpPings(pings))
		}
	}
}

// countAfter counts the pings to uri from index from on.
func countAfter(pings []monitorPing, from int, uri string) int {
	n := 0
	for _, p := range pings[min(from, len(pings)):] {
		if p.uri == uri {
			n++
		}
	}
	return n
}

func dumpPings(pings []monitorPing) string {
	var b strings.Builder
	for _, p := range pings {
		fmt.Fprintf(&b, "  %s %s\n", p.at.Format("15:04:05.000"), p.uri)
	}
	return b.String()
}

// TestHeartbeat runs the real daemon with a heartbeat to a local monitor:
// the start form first, then a ping every interval; a FATAL program (a
// critical alert) switches them to the fail form and its recovery back;
// SIGSTOP of hostctl stops them (a hung host is noticed) and SIGCONT
// brings them back. The monitor's token never shows.
func TestHeartbeat(t *testing.T) {
	const token = "e2e-heartbeat-token-7f3a"
	mon := newPingMonitor(t)
	ping, fail, start := "/ping/"+token, "/ping/"+token+"/fail", "/ping/"+token+"/start"
	broken := filepath.Join(t.TempDir(), "broken")
	config := fmt.Sprintf(`
[alerts]
started = false

[[alerts.heartbeat]]
name = "hc"
kind = "healthchecks"
url = %q
interval = "1s"

[program.flaky]
command = ["/bin/sh", "-c", "if [ -e %s ]; then echo 'cannot start: the flag file is there' >&2; exit 3; fi; exec sleep 1000"]
start_secs = "1s"
start_retries = 1
fatal_retry = "1s"
backoff = { initial = "100ms", max = "100ms" }
`, mon.url+ping, broken)
	d := startDaemon(t, config, daemonOpts{})

	// The start form first, then pings: three of them, whenever they come.
	pings := mon.waitFor("3 pings", 30*time.Second, func(p []monitorPing) bool { return countAfter(p, 0, ping) >= 3 })
	if pings[0].uri != start {
		t.Errorf("the first request was %s, want the start form %s:\n%s", pings[0].uri, start, dumpPings(pings))
	}

	// A reload that does not change the heartbeat neither restarts its
	// schedule nor sends the start form again (checked at the end).
	if r := d.hostctl(t, "reload"); r.code != 0 {
		t.Fatalf("hostctl reload: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// hostctl alerts shows it, without the token.
	r := d.hostctl(t, "alerts")
	if r.code != 0 || !strings.Contains(r.stdout, "HEARTBEAT") || !strings.Contains(r.stdout, "healthchecks  "+mon.url+"/…") {
		t.Errorf("hostctl alerts: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := d.hostctl(t, "alerts", "--json"); !strings.Contains(r.stdout, `"heartbeats"`) || !strings.Contains(r.stdout, `"last_form": "success"`) {
		t.Errorf("hostctl alerts --json:\n%s", r.stdout)
	}

	// A critical alert: flaky goes FATAL. The pings switch to the fail form.
	if err := os.WriteFile(broken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := d.hostctl(t, "signal", "KILL", "flaky"); r.code != 0 {
		t.Fatalf("hostctl signal KILL flaky: exit %d\n%s", r.code, r.stderr)
	}
	pings = mon.waitFor("2 fail pings", 60*time.Second, func(p []monitorPing) bool { return countAfter(p, 0, fail) >= 2 })
	lastFail := len(pings)
	if r := d.hostctl(t, "alerts"); !strings.Contains(r.stdout, "flaky is FATAL") {
		t.Errorf("hostctl alerts while failing:\n%s", r.stdout)
	}
	// Fixed: fatal_retry starts it, the alert resolves, the pings are
	// back to the success form (a fail ping may be in flight as it does).
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	pings = mon.waitFor("2 pings after the fix", 60*time.Second, func(p []monitorPing) bool {
		for i := len(p) - 1; i >= lastFail; i-- {
			if p[i].uri == fail {
				return countAfter(p, i, ping) >= 2
			}
		}
		return countAfter(p, lastFail, ping) >= 2
	})

	// SIGSTOP: hostctl hangs, the pings stop. One may be in flight as
	// the signal lands; after it, nothing for 3 intervals in a row,
	// measured on the monitor.
	pid := d.cmd.Process.Pid
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) }) // before the harness stops it
	stopped := time.Now()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	const silence = 3 * time.Second
	deadline := time.Now().Add(60 * time.Second)
	var after int
	for {
		pings, more := mon.snapshot()
		last := stopped
		after = 0
		for _, p := range pings {
			if !p.at.Before(stopped) {
				after++
				last = p.at
			}
		}
		if time.Since(last) >= silence {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pings did not stop for %s after SIGSTOP within 60s:\n%s", silence, dumpPings(pings))
		}
		tm := time.NewTimer(time.Until(last.Add(silence)))
		select {
		case <-more:
		case <-tm.C:
		}
		tm.Stop()
	}
	if after > 1 {
		pings, _ := mon.snapshot()
		t.Fatalf("%d pings arrived after SIGSTOP (at most one may have been in flight):\n%s", after, dumpPings(pings))
	}

	// SIGCONT: they resume.
	pings, _ = mon.snapshot()
	resumed := len(pings)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	mon.waitFor("2 pings after SIGCONT", 30*time.Second, func(p []monitorPing) bool { return countAfter(p, resumed, ping) >= 2 })

	pings, _ = mon.snapshot()
	if n := countAfter(pings, 0, start); n != 1 {
		t.Errorf("%d start pings, want 1 (hostctl started once; the reload changed nothing)", n)
	}
	// (A ping in flight when SIGSTOP landed may count as failed: its
	// timeout passed while hostctl was stopped.)
	if b := string(d.metrics(t)); !strings.Contains(b, `hostctl_heartbeat_pings_total{heartbeat="hc"}`) || !strings.Contains(b, `hostctl_heartbeat_failed_total{heartbeat="hc"}`) {
		t.Errorf("/metrics lacks the heartbeat's counters:\n%s", grepLines(b, "hostctl_heartbeat"))
	}
	if strings.Contains(d.log(), token) {
		t.Error("the monitor's token appears in hostctl's log")
	}
}

// TestHeartbeatConfigErrors: a bad heartbeat is a config error with its
// key path and line, and the token is not printed.
func TestHeartbeatConfigErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hostctl.toml")
	cfg := `[program.web]
command = ["/bin/sleep", "1000"]

[[alerts.heartbeat]]
name = "hc"
kind = "pingdom"
url = "ftp://hc-ping.com/SECRET-TOKEN-1"
interval = "0s"
`
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runHostctl(t, "-c", path, "check")
	if r.code != 1 {
		t.Fatalf("hostctl check: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"alerts.heartbeat[0].kind", `"pingdom" is not a heartbeat kind`,
		"alerts.heartbeat[0].url", "not ftp://",
		"alerts.heartbeat[0].interval", "required",
		"hostctl.toml:6", "hostctl.toml:7", "hostctl.toml:8", // the lines
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("hostctl check lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr+r.stdout, "SECRET-TOKEN-1") {
		t.Errorf("hostctl check prints the URL's token:\n%s", r.stderr)
	}
}

// TestHeartbeatTokenHiddenFromTheAppUser: the app's user can read the
// config file (as /etc/hostctl/hostctl.toml usually is) and would, with
// the monitor's token, ping the monitor from anywhere and hide a dead
// host. With url_file the token is in a root-only file: the attacker
// finds it neither in the config nor in that file, and hostctl pings with
// it all the same.
func TestHeartbeatTokenHiddenFromTheAppUser(t *testing.T) {
	const token = "e2e-url-file-token-c41d"
	u := testuser.Ensure(t, "hct-heartbeat")
	mon := newPingMonitor(t)
	var urlFile string
	d := startDaemon(t, "", daemonOpts{config: func(t testing.TB, dir string) (string, []string) {
		urlFile = filepath.Join(dir, "heartbeat.url")
		if err := os.WriteFile(urlFile, []byte(mon.url+"/ping/"+token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return writeConfig(t, dir, "", fmt.Sprintf(`
[[alerts.heartbeat]]
name = "hc"
kind = "healthchecks"
url_file = %q
interval = "1s"

[program.web]
command = ["/bin/sleep", "1000"]
`, urlFile)), nil
	}})
	mon.waitFor("2 pings with the file's token", 30*time.Second, func(p []monitorPing) bool { return countAfter(p, 0, "/ping/"+token) >= 2 })

	// The attacker can reach and read the config, like a config in /etc.
	if err := os.Chmod(d.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := u.Run(t, "/bin/cat", d.cfg)
	if !strings.Contains(cfg, "url_file") {
		t.Fatalf("the attacker read something else than the config:\n%s", cfg)
	}
	if strings.Contains(cfg, token) {
		t.Errorf("the token is in the config the app's user reads:\n%s", cfg)
	}
	if out, err := u.Command("/bin/cat", urlFile).CombinedOutput(); err == nil || strings.Contains(string(out), token) {
		t.Errorf("the app's user read url_file: %v\n%s", err, out)
	}
	if r := d.hostctl(t, "alerts"); strings.Contains(r.stdout, token) || !strings.Contains(r.stdout, mon.url+"/…") {
		t.Errorf("hostctl alerts:\n%s", r.stdout)
	}
}
