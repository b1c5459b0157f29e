package e2e

// The harness of most tests here: testDaemon is a `hostctl run` on its
// own temp socket, state and log dirs, waited on through events (systemd's
// READY=1 through a fake NOTIFY_SOCKET, its log, the API's own bounded
// waits), never on fixed sleeps; runHostctl runs the CLI.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/testbin"
)

// testDaemon is a `hostctl run` started by a test.
type testDaemon struct {
	t      testing.TB
	dir    string
	cfg    string // config path
	socket string
	cmd    *exec.Cmd
	done   chan struct{}

	mu     sync.Mutex // guards logs, logged and notes
	logs   bytes.Buffer
	logged chan struct{} // closed (and replaced) at each write to logs
	notes  []string      // sd_notify messages, in order
	noteC  chan string
}

// daemonOpts adjust startDaemon.
type daemonOpts struct {
	admin   string   // extra [admin] lines
	env     []string // extra environment
	noReady bool     // return once started, without waiting for READY=1
	logDir  string   // [log] dir instead of DIR/log
	stdout  *os.File // the daemon's stdout instead of its log (which keeps its stderr)
	// config, if set, writes the whole config into the daemon's dir
	// instead of writeConfig (its socket must be DIR/run/hostctl.sock)
	// and returns its path and environment the daemon needs for it.
	config func(t testing.TB, dir string) (path string, env []string)
}

// writeConfig writes the config for dir: sockets, state and logs inside it.
func writeConfig(t testing.TB, dir, admin, programs string) string {
	t.Helper()
	cfg := fmt.Sprintf("[admin]\nsocket = %q\nstate_dir = %q\n%s\n[log]\ndir = %q\n\n%s\n",
		filepath.Join(dir, "run", "hostctl.sock"), filepath.Join(dir, "state"), admin, filepath.Join(dir, "log"), programs)
	path := filepath.Join(dir, "hostctl.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startDaemon starts hostctl run on programs and waits for READY=1.
func startDaemon(t testing.TB, programs string, o daemonOpts) *testDaemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "hc") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	d := &testDaemon{t: t, dir: dir, done: make(chan struct{}), noteC: make(chan string, 1024), logged: make(chan struct{})}
	if o.config != nil {
		var env []string
		d.cfg, env = o.config(t, dir)
		o.env = append(o.env, env...)
	} else {
		d.cfg = writeConfig(t, dir, o.admin, programs)
	}
	if o.logDir != "" {
		b, err := os.ReadFile(d.cfg)
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.Replace(string(b), fmt.Sprintf("dir = %q", filepath.Join(dir, "log")), fmt.Sprintf("dir = %q", o.logDir), 1))
		if err := os.WriteFile(d.cfg, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d.socket = filepath.Join(dir, "run", "hostctl.sock")

	notifyPath := filepath.Join(dir, "notify.sock")
	nl, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := nl.Read(buf)
			if err != nil {
				close(d.noteC)
				return
			}
			msg := string(buf[:n])
			d.mu.Lock()
			d.notes = append(d.notes, msg)
			d.mu.Unlock()
			d.noteC <- msg
		}
	}()

	d.cmd = exec.Command(hostctlBin, "run", "-c", d.cfg, "--log-format", "json", "--log-level", "debug")
	d.cmd.Env = testbin.Env(append(append(os.Environ(), "NOTIFY_SOCKET="+notifyPath), o.env...))
	d.cmd.Stdout = &lockedWriter{d: d}
	if o.stdout != nil {
		d.cmd.Stdout = o.stdout
	}
	d.cmd.Stderr = &lockedWriter{d: d}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.stop()
		nl.Close()
		testbin.CheckRace(t, "hostctl run", d.cmd.ProcessState, d.log())
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log())
		}
		os.RemoveAll(dir)
	})
	if !o.noReady {
		d.waitNote(t, "READY=1", 30*time.Second)
	}
	return d
}

type lockedWriter struct{ d *testDaemon }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	close(w.d.logged)
	w.d.logged = make(chan struct{})
	return w.d.logs.Write(p)
}

// waitLog waits until hostctl's log has a line containing every part, and
// returns it.
func (d *testDaemon) waitLog(t testing.TB, timeout time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		exited := false
		select {
		case <-d.done: // its log is complete
			exited = true
		default:
		}
		d.mu.Lock()
		text, logged := d.logs.String(), d.logged
		d.mu.Unlock()
		for _, line := range strings.Split(text, "\n") {
			if containsAll(line, parts) {
				return line
			}
		}
		if exited {
			t.Fatalf("hostctl exited (%v) before logging %q", d.cmd.ProcessState, parts)
		}
		select {
		case <-logged:
		case <-d.done:
		case <-deadline.C:
			t.Fatalf("no log line with %q within %s", parts, timeout)
		}
	}
}

// retryUntil calls f until it returns nil, or fails the test after d with
// f's last error. It is for what gives the test no event to wait on: a
// line on its way to a program's log file (the writer batches), a shell
// that has yet to fork its children. It returns as soon as f passes.
func retryUntil(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond) // between polls of a bounded wait
	}
}

// waitTail waits until `hostctl tail ARGS` prints a line containing want
// (a line the program wrote reaches its log file a little later), and
// returns that output.
func (d *testDaemon) waitTail(t testing.TB, want string, args ...string) result {
	t.Helper()
	var r result
	retryUntil(t, 30*time.Second, fmt.Sprintf("%q in hostctl tail %s", want, strings.Join(args, " ")), func() error {
		r = d.hostctl(t, append([]string{"tail"}, args...)...)
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			return fmt.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		return nil
	})
	return r
}

// logLines returns the lines of hostctl's log that contain every part.
func (d *testDaemon) logLines(parts ...string) []string {
	var out []string
	for _, line := range strings.Split(d.log(), "\n") {
		if containsAll(line, parts) {
			out = append(out, line)
		}
	}
	return out
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func (d *testDaemon) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

// waitNote waits for the next sd_notify message that contains want.
func (d *testDaemon) waitNote(t testing.TB, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case msg, ok := <-d.noteC:
			if !ok {
				t.Fatalf("notify socket closed before %q", want)
			}
			if strings.Contains(msg, want) {
				return msg
			}
		case <-d.done:
			t.Fatalf("hostctl exited before sending %q: %v\n%s", want, d.cmd.ProcessState, d.log())
		case <-deadline.C:
			t.Fatalf("no %q from hostctl within %s; got %q", want, timeout, d.allNotes())
		}
	}
}

func (d *testDaemon) allNotes() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.notes...)
}

// stop sends SIGTERM and waits for hostctl to exit (SIGKILL after 20s).
func (d *testDaemon) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(20 * time.Second)
	defer t.Stop()
	select {
	case <-d.done:
	case <-t.C:
		d.cmd.Process.Kill()
		<-d.done
		d.t.Errorf("hostctl did not exit within 20s of SIGTERM")
	}
}

// result is one CLI run.
type result struct {
	stdout, stderr string
	code           int
}

// hostctl runs the CLI with -c pointing at the daemon's config.
func (d *testDaemon) hostctl(t testing.TB, args ...string) result {
	t.Helper()
	return runHostctl(t, append([]string{"-c", d.cfg}, args...)...)
}

func runHostctl(t testing.TB, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hostctlBin, args...)
	cmd.Env = testbin.Env(nil)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	testbin.CheckRace(t, fmt.Sprintf("hostctl %q", args), cmd.ProcessState, errb.String())
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("hostctl %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// status returns `hostctl status --json` by program name.
func (d *testDaemon) status(t testing.TB) map[string]apitype.Process {
	t.Helper()
	r := d.hostctl(t, "status", "--json")
	var s struct {
		Programs []apitype.Process `json:"programs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("status --json: %v\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	m := map[string]apitype.Process{}
	for _, p := range s.Programs {
		m[p.Name] = p
	}
	return m
}

// groupMembers lists the live (non-zombie) processes in process group pgid.
func groupMembers(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+2:]))
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
