package e2e

// hostctl as a container's entrypoint, without Docker: PID 1 of a new PID
// namespace (unshare --pid --fork --mount-proc), with / read-only and a
// tmpfs as its only writable dir (--data-dir), as root and as a user
// that is not root (setpriv), the way `docker run --read-only --tmpfs
// /data --user N` runs it.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testbin"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/testuser"
)

// container is a hostctl run as PID 1 of its own PID namespace.
type container struct {
	cmd    *exec.Cmd // unshare; its only child is hostctl
	done   chan struct{}
	stdout *watchedBuffer
	stderr *watchedBuffer
}

// watchedBuffer is an output that a test can wait on.
type watchedBuffer struct {
	mu      sync.Mutex // guards buf and written
	buf     bytes.Buffer
	written chan struct{} // closed (and replaced) at each write
}

func newWatchedBuffer() *watchedBuffer { return &watchedBuffer{written: make(chan struct{})} }

func (w *watchedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.written)
	w.written = make(chan struct{})
	return w.buf.Write(p)
}

func (w *watchedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// wait waits until a line matches re, and returns it.
func (w *watchedBuffer) wait(t *testing.T, c *container, what string, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		text, written := w.buf.String(), w.written
		w.mu.Unlock()
		for _, line := range strings.Split(text, "\n") {
			if re.MatchString(line) {
				return line
			}
		}
		select {
		case <-written:
		case <-c.done:
			if re.MatchString(w.String()) { // written just before the exit
				continue
			}
			t.Fatalf("hostctl exited (%v) before its %s had a line matching %q", c.cmd.ProcessState, what, re)
		case <-deadline.C:
			t.Fatalf("no line matching %q on hostctl's %s within %s", re, what, timeout)
		}
	}
}

// startContainer runs `hostctl run -c cfg --data-dir DIR/data` as PID 1 of
// a new PID and mount namespace in which DIR/data is a fresh tmpfs (mode
// 1777, like docker's --tmpfs) and / is read-only; as u when u is not nil.
func startContainer(t *testing.T, dir, cfg string, u *testuser.User, env ...string) *container {
	t.Helper()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	run := []string{filepath.Join(dir, "hostctl"), "run", "-c", cfg, "--data-dir", data, "--log-format", "json"}
	if u != nil {
		run = append([]string{"setpriv", "--reuid=" + strconv.Itoa(u.UID), "--regid=" + strconv.Itoa(u.GID), "--clear-groups"}, run...)
	}
	script := `set -e
mount -t tmpfs -o mode=1777 tmpfs "$1"
mount -o remount,bind,ro /
shift
exec "$@"`
	c := &container{done: make(chan struct{}), stdout: newWatchedBuffer(), stderr: newWatchedBuffer()}
	c.cmd = exec.Command("unshare", append([]string{"--pid", "--fork", "--kill-child", "--mount-proc", "/bin/sh", "-c", script, "sh", data}, run...)...)
	c.cmd.Env = testbin.Env(append(os.Environ(), env...))
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	c.cmd.WaitDelay = 10 * time.Second // output pipes held by a stray process
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("unshare (util-linux): %v", err)
	}
	go func() { c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			// PID 1's SIGKILL ends its namespace. (--kill-child does not
			// do it after setpriv: a change of uid clears the death signal.)
			if pid := c.pid1(); pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			c.cmd.Process.Kill()
			<-c.done
		}
		testbin.CheckRace(t, "hostctl run (PID 1)", nil, c.stderr.String())
		if t.Failed() {
			t.Logf("hostctl's stdout:\n%s\nhostctl's stderr:\n%s", c.stdout, c.stderr)
		}
	})
	return c
}

// pid1 is hostctl's pid as this test sees it (outside the namespace):
// the only child of unshare; 0 before it has one.
func (c *container) pid1() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", c.cmd.Process.Pid, c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func (c *container) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(timeout):
		t.Fatalf("hostctl (PID 1) did not exit within %s", timeout)
	}
	return c.cmd.ProcessState.ExitCode()
}

// procInfo is what /proc/PID/status and cmdline say of a process.
type procInfo struct {
	pid, ppid int
	state     string // R, S, Z, ...
	cmdline   string // arguments joined by spaces
}

// containerChildren lists the processes whose parent is ppid.
func containerChildren(ppid int) []procInfo {
	ents, _ := os.ReadDir("/proc")
	var out []procInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		p := procInfo{pid: pid}
		for _, line := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(line, "PPid:"); ok {
				p.ppid, _ = strconv.Atoi(strings.TrimSpace(v))
			}
			if v, ok := strings.CutPrefix(line, "State:"); ok {
				p.state = strings.Fields(v)[0]
			}
		}
		if p.ppid != ppid {
			continue
		}
		cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		p.cmdline = strings.TrimSpace(strings.ReplaceAll(string(cl), "\x00", " "))
		out = append(out, p)
	}
	return out
}

// containerDir makes a dir for one container test that any user can read
// (a user that is not root must reach the binary and the config, which
// stay root's), with a copy of hostctl in it.
func containerDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hcpid1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(hostctlBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hostctl"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeContainerConfig(t *testing.T, dir, text string) string {
	t.Helper()
	cfg := filepath.Join(dir, "hostctl.toml")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestContainerPID1 runs hostctl as PID 1 on a read-only root: a program
// that double-forks leaves orphans that are re-parented to hostctl, and
// once they exit none stays a zombie; every program's lines reach
// hostctl's stdout with its name in front; SIGTERM stops the programs in
// reverse dependency order, a program that ignores SIGTERM (stop_timeout
// 60s) is killed at the stop grace (10s, from HOSTCTL_STOP_GRACE), and
// hostctl exits 0.
func TestContainerPID1(t *testing.T) {
	dir := containerDir(t)
	cfg := writeContainerConfig(t, dir, fmt.Sprintf(`
[program.db]
command = ["/bin/sh", "-c", "trap 'echo db stopping; exit 0' TERM; echo db up; while :; do sleep 0.1; done"]
stdout_log = "-"
start_secs = "0s"

# Three orphans (sleep 1001), each left behind by a subshell that exits at once.
[program.web]
command = ["/bin/sh", "-c", "trap 'echo web stopping; exit 0' TERM; for i in 1 2 3; do (sleep 1001 &); done; echo web forked; while :; do sleep 0.1; done"]
stdout_log = "-"
depends_on = ["db"]
start_secs = "0s"

[program.worker]
command = ["/bin/sh", "-c", "trap 'echo worker stopping; exit 0' TERM; echo worker up; while :; do sleep 0.1; done"]
stdout_log = "-"
depends_on = ["web"]
start_secs = "0s"

[program.stubborn]
command = ["/bin/sh", "-c", "trap 'echo stubborn ignores TERM' TERM; echo stubborn up; while :; do sleep 0.1; done"]
stdout_log = "-"
start_secs = "0s"
stop_timeout = "60s"

[proxy]
listen = "127.0.0.1:%d"
upstream = "127.0.0.1:%d"
`, freePort(t), freePort(t)))
	c := startContainer(t, dir, cfg, nil, "HOSTCTL_STOP_GRACE=10s")

	for _, line := range []string{"db up", "web forked", "worker up", "stubborn up"} {
		name := strings.Fields(line)[0]
		c.stdout.wait(t, c, "stdout", regexp.MustCompile(`^`+name+` +\| `+line+`$`), 60*time.Second)
	}
	c.stderr.wait(t, c, "log", regexp.MustCompile(`"msg":"ready"`), 30*time.Second)
	if m := regexp.MustCompile(`"msg":"hostctl started".*"pid":(\d+)`).FindStringSubmatch(c.stderr.String()); m == nil || m[1] != "1" {
		t.Fatalf("hostctl did not start as PID 1: %q", m)
	}

	// The orphans are hostctl's children now (PID 1's, as in a container).
	pid1 := c.pid1()
	var orphans []procInfo
	deadline := time.Now().Add(30 * time.Second)
	for {
		orphans = orphans[:0]
		for _, p := range containerChildren(pid1) {
			if p.cmdline == "sleep 1001" {
				orphans = append(orphans, p)
			}
		}
		if len(orphans) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want 3 orphans (sleep 1001) re-parented to hostctl (pid %d here), have %v; its children: %v", pid1, orphans, containerChildren(pid1))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range orphans {
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
	// Reaped, they leave /proc; a zombie would stay there (state Z).
	deadline = time.Now().Add(30 * time.Second)
	for {
		var left []procInfo
		for _, p := range orphans {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", p.pid)); err == nil {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphans killed 30s ago are still in /proc (zombies that PID 1 did not reap?): %v", containerChildren(pid1))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range containerChildren(pid1) {
		if p.state == "Z" {
			t.Errorf("a zombie child of hostctl: %+v", p)
		}
	}

	// docker stop signals PID 1 from outside its namespace, as this does.
	if err := syscall.Kill(pid1, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Well below stubborn's stop_timeout (60s): only the grace ends it.
	if code := c.waitExit(t, 40*time.Second); code != 0 {
		t.Errorf("hostctl exited %d after SIGTERM, want 0", code)
	}
	log := c.stderr.String()
	order := []string{
		`"program":"worker","from":"STOPPING","to":"STOPPED"`,
		`"program":"web","from":"RUNNING","to":"STOPPING"`,
		`"program":"web","from":"STOPPING","to":"STOPPED"`,
		`"program":"db","from":"RUNNING","to":"STOPPING"`,
		`"program":"db","from":"STOPPING","to":"STOPPED"`,
		`"msg":"the stop grace ran out: every program still up was killed (SIGKILL)"`,
	}
	last := -1
	for _, s := range order {
		i := strings.Index(log, s)
		if i < 0 || i < last {
			t.Errorf("hostctl's log lacks %s, or has it before %s", s, order[max(0, slices.Index(order, s)-1)])
		}
		last = i
	}
	if !strings.Contains(log, `"programs":["stubborn"]`) {
		t.Errorf("the grace did not end stubborn's stop: %s", grepLines(log, "stop grace"))
	}
	for _, line := range []string{"worker stopping", "web stopping", "db stopping", "stubborn ignores TERM"} {
		name := strings.Fields(line)[0]
		c.stdout.wait(t, c, "stdout", regexp.MustCompile(`^`+name+` +\| `+line+`$`), time.Second)
	}
	// Everything on stdout is a program's line, prefixed.
	for _, line := range strings.Split(strings.TrimSpace(c.stdout.String()), "\n") {
		if !regexp.MustCompile(`^(db|web|worker|stubborn) +\| `).MatchString(line) {
			t.Errorf("a line on hostctl's stdout without a program's prefix: %q", line)
		}
	}
}

// TestContainerRequiredFatal runs hostctl as PID 1, as a user that is not
// root, on a read-only root: a program marked required goes FATAL, so
// hostctl stops the other one and exits 3, saying which program and why on
// stderr.
func TestContainerRequiredFatal(t *testing.T) {
	u := testuser.Ensure(t, "hct-container")
	dir := containerDir(t)
	cfg := writeContainerConfig(t, dir, fmt.Sprintf(`
[program.base]
command = ["/bin/sh", "-c", "trap 'echo base stopping; exit 0' TERM; echo base up as uid $(id -u); while :; do sleep 0.1; done"]
stdout_log = "-"
start_secs = "0s"

[program.app]
command = ["/bin/sh", "-c", "echo 'app: cannot reach the database' >&2; exit 2"]
stdout_log = "-"
stderr_log = "-"
depends_on = ["base"]
required = true
start_retries = 1
backoff = { initial = "100ms", max = "100ms" }

[proxy]
listen = "127.0.0.1:%d"
upstream = "127.0.0.1:%d"
`, freePort(t), freePort(t)))
	c := startContainer(t, dir, cfg, &u)

	if code := c.waitExit(t, 60*time.Second); code != 3 {
		t.Errorf("hostctl exited %d when a required program went FATAL, want 3", code)
	}
	c.stdout.wait(t, c, "stdout", regexp.MustCompile(`^base +\| base up as uid `+strconv.Itoa(u.UID)+`$`), time.Second)
	c.stdout.wait(t, c, "stdout", regexp.MustCompile(`^base +\| base stopping$`), time.Second)
	c.stderr.wait(t, c, "stderr", regexp.MustCompile(`^app +\| app: cannot reach the database$`), time.Second)
	stderr := c.stderr.String()
	want := regexp.MustCompile(`(?m)^hostctl: required program "app" is FATAL \(gave up after 2 tries that exited too quickly, the last with exit status 2; last stderr line: app: cannot reach the database\): stopped every program$`)
	if !want.MatchString(stderr) {
		t.Errorf("stderr lacks a line matching %q", want)
	}
	baseStopped := strings.Index(stderr, `"program":"base","from":"STOPPING","to":"STOPPED"`)
	if baseStopped < 0 || baseStopped > strings.Index(stderr, `hostctl: required program`) {
		t.Errorf("base was not stopped before hostctl exited")
	}
	// Nothing but the alert about app warns: a read-only root, no /run
	// and a uid that is not root are nothing to warn about.
	for _, line := range strings.Split(grepLines(stderr, `"level":"warn"`), "\n") {
		if line != "" && !strings.Contains(line, `"alert":"fatal:app"`) {
			t.Errorf("a warning on a read-only root as a user that is not root: %s", line)
		}
	}
}

// TestContainerConfigChecks: configs/container.toml, the example that
// README's Dockerfile uses, is a valid config; what it names that this
// machine lacks (/app, gunicorn, celery) is all that check may report.
func TestContainerConfigChecks(t *testing.T) {
	root := moduleRoot(t)
	cmd := exec.Command(hostctlBin, "check", "-c", filepath.Join(root, "configs", "container.toml"))
	cmd.Env = testbin.Env(append(os.Environ(), "HOSTCTL_DATA_DIR="+t.TempDir()))
	out, err := cmd.CombinedOutput()
	testbin.CheckRace(t, "hostctl check", cmd.ProcessState, string(out))
	if err != nil && !strings.Contains(string(out), "every problem above is with this machine") {
		t.Errorf("hostctl check configs/container.toml: %v\n%s", err, out)
	}
}
