package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/testbin"
)

// A program that stays up, with a child in its process group, and says
// "got-usr1" on SIGUSR1.
const webProgram = `
[program.web]
description = "test web"
command = ["/bin/sh", "-c", "trap 'echo got-usr1' USR1; echo ready; sleep 1000 & while :; do sleep 1 & wait $!; done"]
start_secs = "300ms"
stop_timeout = "5s"
`

// A program that can never start: FATAL after one retry. Its start_secs
// is long so that each attempt fails however busy the machine is (a
// shell that took longer than start_secs to exit would count as started,
// then crash, and never be FATAL).
const badProgram = `
[program.bad]
command = ["/bin/sh", "-c", "echo failing >&2; exit 3"]
start_secs = "1m"
start_retries = 1
backoff = { initial = "50ms", max = "100ms" }
`

func TestStatusExitCodes(t *testing.T) {
	d := startDaemon(t, webProgram+badProgram, daemonOpts{})

	r := d.hostctl(t, "status")
	if r.code != 3 {
		t.Errorf("status with a FATAL autostart program: exit %d, want 3\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"NAME", "STATE", "PID", "UPTIME", "RESTARTS", "MEMORY", "DESCRIPTION", "web", "RUNNING", "test web",
		"bad", "FATAL", "exited too quickly", "proxy: not configured"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := d.hostctl(t, "status", "web"); r.code != 0 {
		t.Errorf("status web (RUNNING): exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = d.hostctl(t, "status", "web", "nope")
	if r.code != 4 || !strings.Contains(r.stderr, `"nope"`) {
		t.Errorf("status of an unknown name: exit %d, want 4; stderr %q", r.code, r.stderr)
	}
	r = d.hostctl(t, "stop", "bad")
	if r.code != 0 {
		t.Errorf("stop bad: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := d.hostctl(t, "status", "--json"); r.code != 3 {
		t.Errorf("status --json with bad STOPPED (autostart): exit %d, want 3", r.code)
	}

	// Starting a program that cannot start says why.
	r = d.hostctl(t, "start", "--wait", "20s", "bad")
	if r.code != 1 || !strings.Contains(r.stderr, "bad: FATAL: exited too quickly") {
		t.Errorf("start bad: exit %d, want 1 with the FATAL reason; stderr %q", r.code, r.stderr)
	}

	// The daemon gone: one line naming the socket, exit 1.
	sock := filepath.Join(d.dir, "none.sock")
	r = runHostctl(t, "status", "--socket", sock)
	if r.code != 1 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, sock) || !strings.Contains(r.stderr, "not running") {
		t.Errorf("status without a daemon: exit %d, stderr %q; want exit 1 and one line naming %s", r.code, r.stderr, sock)
	}
}

func TestRestartChangesPIDAndEndsOldGroup(t *testing.T) {
	d := startDaemon(t, webProgram, daemonOpts{})
	before := d.status(t)["web"]
	if before.State != apitype.Running || before.PID == 0 {
		t.Fatalf("web is %s pid %d before restart", before.State, before.PID)
	}
	// RUNNING (300ms alive) does not mean the shell has forked its sleep.
	retryUntil(t, 30*time.Second, "web's sh and its sleep in its process group, and in status", func() error {
		if n := len(groupMembers(before.PID)); n < 2 {
			return fmt.Errorf("web's process group has %d live processes, want at least 2", n)
		}
		if p := d.status(t)["web"]; p.RSSBytes == 0 || p.Processes < 2 {
			return fmt.Errorf("status reports rss %d and %d processes for web's group", p.RSSBytes, p.Processes)
		}
		return nil
	})
	r := d.hostctl(t, "restart", "web")
	if r.code != 0 || !strings.Contains(r.stdout, "web: RUNNING (pid ") {
		t.Fatalf("restart web: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	after := d.status(t)["web"]
	if after.PID == before.PID || after.State != apitype.Running {
		t.Errorf("after restart: web is %s pid %d; before pid %d", after.State, after.PID, before.PID)
	}
	if left := groupMembers(before.PID); len(left) > 0 {
		t.Errorf("the old process group %d still has live processes %v", before.PID, left)
	}
}

func TestTailFollowSeesNewLines(t *testing.T) {
	d := startDaemon(t, webProgram+badProgram, daemonOpts{})

	// bad is FATAL at READY=1; its line reaches the file a little later.
	d.waitTail(t, "failing", "-n", "5", "bad", "stderr")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, hostctlBin, "-c", d.cfg, "tail", "-f", "-n", "1", "web")
	cmd.Env = testbin.Env(nil)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer // read after Wait
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		testbin.CheckRace(t, "hostctl tail -f", cmd.ProcessState, stderr.String())
		if stderr.Len() > 0 {
			t.Logf("hostctl tail -f stderr:\n%s", stderr.String())
		}
	}()
	lines := bufio.NewScanner(out)
	next := func() string {
		if !lines.Scan() {
			t.Fatalf("tail -f ended: %v", lines.Err())
		}
		return lines.Text()
	}
	if l := next(); l != "ready" {
		t.Fatalf("tail -f -n 1 web: first line %q, want the last line so far (ready)", l)
	}
	// Following now: a line written from here on must arrive.
	if r := d.hostctl(t, "signal", "USR1", "web"); r.code != 0 || !strings.Contains(r.stdout, "web: sent USR1 to pid") {
		t.Fatalf("signal USR1 web: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if l := next(); l != "got-usr1" {
		t.Fatalf("tail -f: next line %q, want got-usr1", l)
	}
}

func TestTCPListenerNeedsTokenAndSameOrigin(t *testing.T) {
	port := freePort(t)
	tokDir := t.TempDir()
	tokFile := filepath.Join(tokDir, "token")
	token := "0123456789abcdef0123456789abcdef"
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, webProgram, daemonOpts{admin: fmt.Sprintf("listen = \"127.0.0.1:%d\"\ntoken_file = %q\n", port, tokFile)})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	do := func(method, path, tok, origin, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, method, path, token, origin, body string
		want                                    int
	}{
		{"no token", "GET", "/v1/programs", "", "", "", 401},
		{"wrong token", "GET", "/v1/programs", "0123456789abcdef0123456789abcdeX", "", "", 401},
		{"short wrong token", "GET", "/v1/programs", "x", "", "", 401},
		{"token", "GET", "/v1/programs", token, "", "", 200},
		{"metrics without token", "GET", "/metrics", "", "", "", 401},
		{"metrics", "GET", "/metrics", token, "", "", 200},
		{"healthz is public", "GET", "/healthz", "", "", "", 200},
		{"dashboard page is public", "GET", "/", "", "", "", 200},
		{"cross-origin POST", "POST", "/v1/restart", token, "http://evil.example", `{"names":["web"]}`, 403},
		{"other port same host POST", "POST", "/v1/restart", token, "http://127.0.0.1:1", `{"names":["web"]}`, 403},
		{"POST without token", "POST", "/v1/restart", "", "", `{"names":["web"]}`, 401},
		{"same-origin POST", "POST", "/v1/signal", token, base, `{"names":["web"],"signal":"USR1"}`, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := do(tc.method, tc.path, tc.token, tc.origin, tc.body); got != tc.want {
				t.Errorf("%s %s: %d, want %d", tc.method, tc.path, got, tc.want)
			}
		})
	}

	// The CLI through the TCP listener.
	r := runHostctl(t, "status", "--url", base, "--token-file", tokFile)
	if r.code != 0 || !strings.Contains(r.stdout, "RUNNING") {
		t.Errorf("status --url --token-file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bad := filepath.Join(tokDir, "bad")
	os.WriteFile(bad, []byte("wrong-token-wrong-token"), 0o600)
	if r := runHostctl(t, "status", "--url", base, "--token-file", bad); r.code != 1 || !strings.Contains(r.stderr, "token") {
		t.Errorf("status with a wrong token: exit %d, stderr %q", r.code, r.stderr)
	}
	if got := d.status(t)["web"].Restarts; got != 0 {
		t.Errorf("web restarted %d times; the refused requests must not have acted", got)
	}
}

func TestReloadInvalidKeepsEverythingRunning(t *testing.T) {
	d := startDaemon(t, webProgram+`
[program.other]
command = ["/bin/sh", "-c", "sleep 1000"]
start_secs = "300ms"
`, daemonOpts{})
	before := d.status(t)
	good, err := os.ReadFile(d.cfg)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(good), `start_secs = "300ms"`, `start_secs = "soon"`, 1) + "\n[program.new]\ncommand = \"\"\nbogus_key = 1\n"
	if err := os.WriteFile(d.cfg, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	r := d.hostctl(t, "reload")
	if r.code != 1 {
		t.Fatalf("reload of an invalid file: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"program.web.start_secs", "program.new.bogus_key", "program.new.command", "still running the previous config"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("reload errors lack %q:\n%s", want, r.stderr)
		}
	}
	after := d.status(t)
	if len(after) != len(before) {
		t.Errorf("programs after a failed reload: %d, want %d", len(after), len(before))
	}
	for name, p := range before {
		if a := after[name]; a.PID != p.PID || a.State != apitype.Running {
			t.Errorf("%s after a failed reload: %s pid %d, was %s pid %d", name, a.State, a.PID, p.State, p.PID)
		}
	}
}

func TestReloadAppliesDiffAndLeavesUnchangedAlone(t *testing.T) {
	prog := func(name, arg string) string {
		return fmt.Sprintf("\n[program.%s]\ncommand = [\"/bin/sh\", \"-c\", \"sleep %s\"]\nstart_secs = \"300ms\"\nstop_timeout = \"5s\"\n", name, arg)
	}
	d := startDaemon(t, prog("keep", "1001")+prog("change", "1002")+prog("gone", "1003"), daemonOpts{})
	before := d.status(t)

	cfg := writeConfig(t, d.dir, "", prog("keep", "1001")+prog("change", "2002")+prog("added", "1004"))
	if cfg != d.cfg {
		t.Fatalf("config path changed: %s", cfg)
	}
	r := d.hostctl(t, "reload")
	if r.code != 0 {
		t.Fatalf("reload: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"added:   added", "changed: change", "removed: gone"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("reload output lacks %q:\n%s", want, r.stdout)
		}
	}
	// The API answers once the changes are applied; "added" may still be
	// STARTING: wait for it through the CLI's bounded wait.
	if r := d.hostctl(t, "start", "added", "change"); r.code != 0 {
		t.Fatalf("start added change: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	after := d.status(t)
	if after["keep"].PID != before["keep"].PID {
		t.Errorf("unchanged program keep: pid %d -> %d; it must not be touched", before["keep"].PID, after["keep"].PID)
	}
	if after["change"].PID == before["change"].PID || after["change"].State != apitype.Running {
		t.Errorf("changed program: %s pid %d (was %d); want a new process", after["change"].State, after["change"].PID, before["change"].PID)
	}
	if _, ok := after["gone"]; ok {
		t.Errorf("removed program gone is still listed")
	}
	if left := groupMembers(before["gone"].PID); len(left) > 0 {
		t.Errorf("removed program's group still has %v", left)
	}
	if after["added"].State != apitype.Running {
		t.Errorf("added program is %s", after["added"].State)
	}
}

func TestNotifySequence(t *testing.T) {
	// start_secs 500ms: READY=1 must wait for it. Watchdog at 400ms: a
	// WATCHDOG=1 every 200ms.
	d := startDaemon(t, webProgram+badProgram+`
[program.slow]
command = ["/bin/sh", "-c", "sleep 1000"]
start_secs = "500ms"
`, daemonOpts{env: []string{"WATCHDOG_USEC=400000"}})
	var notes []string // without the watchdog pings, which start with the serve loop
	for _, n := range d.allNotes() {
		if n != "WATCHDOG=1" {
			notes = append(notes, n)
		}
	}
	if len(notes) == 0 || !strings.HasPrefix(notes[0], "READY=1\nSTATUS=") {
		t.Fatalf("first message %q, want READY=1 with STATUS", notes)
	}
	if want := "READY=1\nSTATUS=2 running, 1 fatal"; notes[0] != want {
		t.Errorf("READY message %q, want %q (sent once every autostart program settled)", notes[0], want)
	}
	d.waitNote(t, "WATCHDOG=1", 30*time.Second)
	d.waitNote(t, "WATCHDOG=1", 30*time.Second)

	d.cmd.Process.Signal(syscall.SIGHUP)
	reloading := d.waitNote(t, "RELOADING=1", 10*time.Second)
	if !strings.Contains(reloading, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING message %q lacks MONOTONIC_USEC", reloading)
	}
	d.waitNote(t, "READY=1", 10*time.Second)

	d.hostctl(t, "stop", "slow")
	d.waitNote(t, "STATUS=1 running, 1 fatal, 1 stopped", 10*time.Second)

	d.cmd.Process.Signal(syscall.SIGTERM)
	d.waitNote(t, "STOPPING=1", 10*time.Second)
	<-d.done

	// The whole sequence, watchdog pings and STATUS updates aside.
	var seq []string
	for _, n := range d.allNotes() {
		first := strings.SplitN(n, "\n", 2)[0]
		if first == "WATCHDOG=1" || strings.HasPrefix(first, "STATUS=") {
			continue
		}
		seq = append(seq, first)
	}
	want := []string{"READY=1", "RELOADING=1", "READY=1", "STOPPING=1"}
	if strings.Join(seq, " ") != strings.Join(want, " ") {
		t.Errorf("notify sequence %q, want %q", seq, want)
	}
}

func TestSecondDaemonOnTheSameSocketIsRefused(t *testing.T) {
	d := startDaemon(t, webProgram, daemonOpts{})
	pid := d.status(t)["web"].PID
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, hostctlBin, "run", "-c", d.cfg)
	second.Env = testbin.Env(nil)
	out, err := second.CombinedOutput()
	testbin.CheckRace(t, "second hostctl run", second.ProcessState, string(out))
	if err == nil || !strings.Contains(string(out), "another hostctl is already running") {
		t.Fatalf("second hostctl run: %v\n%s", err, out)
	}
	if got := d.status(t)["web"]; got.PID != pid || got.State != apitype.Running {
		t.Errorf("the first daemon's web: %s pid %d, was RUNNING pid %d", got.State, got.PID, pid)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	d := startDaemon(t, webProgram, daemonOpts{})
	d.cmd.Process.Kill() // leaves the socket file behind
	<-d.done
	if _, err := os.Stat(d.socket); err != nil {
		t.Fatalf("socket after kill -9: %v", err)
	}
	// A new daemon on the same config proves the socket stale and takes it.
	cmd := exec.Command(hostctlBin, "run", "-c", d.cfg)
	cmd.Env = testbin.Env(append(os.Environ(), "NOTIFY_SOCKET="+filepath.Join(d.dir, "notify.sock")))
	var log bytes.Buffer // read after Wait
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		testbin.CheckRace(t, "the new hostctl run", cmd.ProcessState, log.String())
	}()
	deadline := time.After(30 * time.Second)
	for ready := false; !ready; {
		select {
		case msg := <-d.noteC:
			ready = strings.HasPrefix(msg, "READY=1")
		case <-deadline:
			t.Fatal("the new daemon sent no READY=1 within 30s")
		}
	}
	r := d.hostctl(t, "start", "web")
	if r.code != 0 {
		t.Fatalf("start web on the new daemon: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestCompletion(t *testing.T) {
	r := runHostctl(t, "completion", "bash")
	if r.code != 0 || !strings.Contains(r.stdout, "bash completion") {
		t.Errorf("completion bash: exit %d, %d bytes", r.code, len(r.stdout))
	}
}

func TestStatusJSONShape(t *testing.T) {
	d := startDaemon(t, webProgram, daemonOpts{})
	r := d.hostctl(t, "status", "--json", "web")
	var s map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatal(err)
	}
	p := s["programs"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "state", "pid", "started_at", "uptime_seconds", "restarts", "rss_bytes", "cpu_seconds", "stdout_log", "dropped_log_bytes"} {
		if _, ok := p[k]; !ok {
			t.Errorf("status --json: program lacks %q: %v", k, p)
		}
	}
}

// TestNotifySequenceWithProxy: caddy.Load would send its own RELOADING=1
// and READY=1 when the proxy loads (before the slow program settles);
// hostctl re-executes itself so that Caddy never sees NOTIFY_SOCKET, and
// systemd hears only hostctl's READY=1, once everything settled.
func TestNotifySequenceWithProxy(t *testing.T) {
	start := time.Now()
	d := startDaemon(t, webProgram+fmt.Sprintf(`
[program.slow]
command = ["/bin/sh", "-c", "sleep 1000"]
start_secs = "700ms"

[proxy]
listen = "127.0.0.1:%d"
upstream = "127.0.0.1:%d"
`, freePort(t), freePort(t)), daemonOpts{})
	// startDaemon returned at the first READY=1: it waited for slow.
	if el := time.Since(start); el < 700*time.Millisecond {
		t.Errorf("first READY=1 after %s, before slow's start_secs (700ms) could pass", el)
	}
	var seq []string
	for _, n := range d.allNotes() {
		if n != "WATCHDOG=1" {
			seq = append(seq, n)
		}
	}
	want := []string{"READY=1\nSTATUS=2 running, 0 fatal"}
	if strings.Join(seq, "|") != strings.Join(want, "|") {
		t.Errorf("notify sequence %q, want %q (hostctl's only: Caddy must not talk to systemd)", seq, want)
	}
	if r := d.hostctl(t, "status"); r.code != 0 || !strings.Contains(r.stdout, "proxy: running on 127.0.0.1:") {
		t.Errorf("status with a proxy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestReloadReportsTheProxy: a reload says what happened to the proxy, and
// a change of [proxy] alone reloads it without touching any program.
func TestReloadReportsTheProxy(t *testing.T) {
	listen, up := freePort(t), freePort(t)
	section := func(retry string) string {
		return fmt.Sprintf("\n[proxy]\nlisten = \"127.0.0.1:%d\"\nupstream = \"127.0.0.1:%d\"\nretry_for = %q\n", listen, up, retry)
	}
	d := startDaemon(t, webProgram+section("2s"), daemonOpts{})
	before := d.status(t)
	for _, tc := range []struct{ retry, want string }{{"2s", "proxy:   unchanged"}, {"3s", "proxy:   reloaded"}} {
		writeConfig(t, d.dir, "", webProgram+section(tc.retry))
		r := d.hostctl(t, "reload")
		if r.code != 0 || !strings.Contains(r.stdout, tc.want) || !strings.Contains(r.stdout, "changed: -") {
			t.Errorf("reload with retry_for %s: exit %d, want %q and no program changed:\n%s%s", tc.retry, r.code, tc.want, r.stdout, r.stderr)
		}
	}
	for name, p := range d.status(t) {
		if before[name].PID != p.PID {
			t.Errorf("%s was restarted by a proxy-only reload", name)
		}
	}
}

// TestFatalStatusSaysWhyAndWhen: for a program that gave up, `hostctl
// status` shows the tries, how the last one ended with the last line it
// wrote to stderr, when hostctl tries again and where to read more; the
// same facts are in --json.
func TestFatalStatusSaysWhyAndWhen(t *testing.T) {
	d := startDaemon(t, `
[program.flaky]
command = ["/bin/sh", "-c", "echo starting >&2; echo 'ImportError: no module named app' >&2; exit 1"]
start_secs = "1m"
start_retries = 1
backoff = { initial = "50ms", max = "100ms" }
fatal_retry = "1h"
`, daemonOpts{})
	// The last stderr line is read from the log when asked: on a busy
	// machine it may reach the file after FATAL is published (every
	// attempt writes the same line, which makes that rare, not impossible).
	var r result
	retryUntil(t, 30*time.Second, "status flaky with why it gave up", func() error {
		r = d.hostctl(t, "status", "flaky")
		for _, want := range []string{"FATAL", "gave up after 2 tries that exited too quickly (exit 1: ImportError: no module named app)",
			"more: hostctl tail flaky stderr"} {
			if !strings.Contains(r.stdout, want) {
				return fmt.Errorf("status lacks %q:\n%s", want, r.stdout)
			}
		}
		return nil
	})
	if !regexp.MustCompile(`next try in [0-9hms]+;`).MatchString(r.stdout) {
		t.Errorf("status lacks when the next try is due (about an hour):\n%s", r.stdout)
	}
	p := d.status(t)["flaky"]
	if p.State != apitype.Fatal || p.Tries != 2 || p.LastStderr != "ImportError: no module named app" || p.NextStart.IsZero() {
		t.Errorf("status --json: state %s tries %d last_stderr %q next_start %v", p.State, p.Tries, p.LastStderr, p.NextStart)
	}
	// stop cancels the retry.
	if r := d.hostctl(t, "stop", "flaky"); r.code != 0 {
		t.Errorf("stop flaky: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if p := d.status(t)["flaky"]; p.State != apitype.Stopped || !p.NextStart.IsZero() {
		t.Errorf("after stop: %s next_start %v, want STOPPED with no retry", p.State, p.NextStart)
	}
}

// TestHealthCheckRestartsThroughTheDaemon: a program whose health check
// starts failing is restarted, again with backoff when it stays unhealthy,
// and status, status --json and /metrics say so.
func TestHealthCheckRestartsThroughTheDaemon(t *testing.T) {
	sick := filepath.Join(t.TempDir(), "sick")
	d := startDaemon(t, fmt.Sprintf(`
[program.app]
command = ["/bin/sh", "-c", "exec sleep 1000"]
start_secs = "0s"
stop_timeout = "5s"
backoff = { initial = "20s", max = "40s" }
health = { exec = ["/bin/sh", "-c", %q], interval = "100ms", failures = 2 }
`, "test ! -e "+sick), daemonOpts{})
	if r := d.hostctl(t, "status", "app"); !strings.Contains(r.stdout, "RUNNING") || !strings.Contains(r.stdout, "healthy") {
		t.Errorf("status before the check fails:\n%s", r.stdout)
	}
	if err := os.WriteFile(sick, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The first restart is immediate; the second, with no passing check in
	// between, waits in BACKOFF (10s to 20s: long enough to look at it).
	d.waitLog(t, 60*time.Second, `"health check failed; restarting the program"`, `"health_restarts_in_a_row":2`)
	d.waitLog(t, 60*time.Second, `"msg":"state"`, `"to":"BACKOFF"`)
	r := d.hostctl(t, "status", "app")
	for _, want := range []string{"BACKOFF", "unhealthy (2 failures: sh: exit status 1)", "restart 2 in a row"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	p := d.status(t)["app"]
	if p.Health == nil || p.Health.Healthy || p.Health.Restarts != 2 || p.Restarts != 2 {
		t.Errorf("status --json: restarts %d health %+v; want 2 restarts, unhealthy", p.Restarts, p.Health)
	}
	b := d.metrics(t)
	for _, want := range []string{`hostctl_program_healthy{program="app"} 0`, `hostctl_program_health_restarts_total{program="app"} 2`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestMemoryLimitThroughTheDaemon: a program that holds more memory than
// its memory_limit is restarted after two checks (5s apart) above it, and
// status, status --json and /metrics say so.
func TestMemoryLimitThroughTheDaemon(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, fmt.Sprintf(`
[program.hog]
command = [%q]
environment = { HOSTCTL_TEST_ALLOC_MB = "200" }
start_secs = "0s"
memory_limit = "100MB"
backoff = { initial = "30s", max = "60s" }

[program.quiet]
command = ["/bin/sh", "-c", "exec sleep 1000"]
start_secs = "0s"
memory_limit = "1GB"
`, exe), daemonOpts{})
	if r := d.hostctl(t, "status", "quiet"); !strings.Contains(r.stdout, "/1G ") {
		t.Errorf("status of a program with memory_limit 1GB lacks used/1G:\n%s", r.stdout)
	}
	d.waitLog(t, 60*time.Second, `above memory_limit 100MB for 2 checks: restarting`, `"program":"hog"`)
	p := d.status(t)
	if hog := p["hog"]; hog.MemoryRestarts < 1 || hog.MemoryLimit != 100e6 {
		t.Errorf("status --json hog: memory_restarts %d memory_limit %d; want >= 1 and 100000000", hog.MemoryRestarts, hog.MemoryLimit)
	}
	if q := p["quiet"]; q.MemoryRestarts != 0 || q.Restarts != 0 {
		t.Errorf("quiet, under its limit, was restarted: %+v", q)
	}
	if r := d.hostctl(t, "status", "hog"); !strings.Contains(r.stdout, "/100M") {
		t.Errorf("status lacks used/100M:\n%s", r.stdout)
	}
	b := d.metrics(t)
	for _, want := range []string{`hostctl_program_memory_limit_bytes{program="hog"} 1e+08`, `hostctl_program_memory_restarts_total{program="hog"} `} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(string(b), `hostctl_program_memory_restarts_total{program="hog"} 0`) {
		t.Errorf("/metrics counts no memory restart of hog")
	}
}

// metrics returns the daemon's /metrics, read over its admin socket.
func (d *testDaemon) metrics(t *testing.T) []byte {
	t.Helper()
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", d.socket)
	}}}
	resp, err := c.Get("http://hostctl/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
