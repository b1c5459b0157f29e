package main

// End-to-end tests of the real hostctl binary: what only a whole process
// can show (kill -9 of hostctl, survivors killed at the next start, zombie
// reaping as a subreaper, exit codes).

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testbin"
)

var hostctlBin string

// TestMain builds hostctl once (with -race when the tests have it: see
// testbin).
func TestMain(m *testing.M) {
	var err error
	if hostctlBin, err = testbin.Hostctl(); err != nil {
		fmt.Fprintln(os.Stderr, "building hostctl:", err)
		testbin.Cleanup()
		os.Exit(1)
	}
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// daemon is a `hostctl run` started by a test.
type daemon struct {
	t    testing.TB
	cmd  *exec.Cmd
	dir  string
	mu   sync.Mutex
	logs bytes.Buffer // JSON log lines from stderr
	cond *sync.Cond
	done chan struct{}
}

func writeConfig(t *testing.T, dir, programs string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
[admin]
socket = "%[1]s/hostctl.sock"
state_dir = "%[1]s/state"

[log]
dir = "%[1]s/log"
keep_free = ""
`, dir) + programs
	path := filepath.Join(dir, "hostctl.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func startDaemon(t testing.TB, dir, config string) *daemon {
	t.Helper()
	d := &daemon{t: t, dir: dir, done: make(chan struct{})}
	d.cond = sync.NewCond(&d.mu)
	d.cmd = exec.Command(hostctlBin, "run", "-c", config, "--log-format", "json", "--log-level", "debug")
	d.cmd.Env = testbin.Env(nil)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadString('\n')
			d.mu.Lock()
			d.logs.WriteString(line)
			d.cond.Broadcast()
			d.mu.Unlock()
			if err != nil {
				break
			}
		}
		d.cmd.Wait()
		close(d.done)
		d.mu.Lock()
		d.cond.Broadcast()
		d.mu.Unlock()
	}()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			d.cmd.Process.Kill()
			<-d.done
		}
		testbin.CheckRace(t, "hostctl run", d.cmd.ProcessState, d.log())
		if t.Failed() {
			t.Logf("hostctl log:\n%s", d.log())
		}
	})
	return d
}

func (d *daemon) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

// waitLog waits until hostctl's log has a line containing every part.
func (d *daemon) waitLog(timeout time.Duration, parts ...string) string {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() { d.mu.Lock(); d.cond.Broadcast(); d.mu.Unlock() })
	defer timer.Stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		for _, line := range strings.Split(d.logs.String(), "\n") {
			ok := true
			for _, p := range parts {
				if !strings.Contains(line, p) {
					ok = false
					break
				}
			}
			if ok {
				return line
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no log line with %q within %s; log:\n%s", parts, timeout, d.logs.String())
		}
		select {
		case <-d.done:
			d.t.Fatalf("hostctl exited (%v) before logging %q; log:\n%s", d.cmd.ProcessState, parts, d.logs.String())
		default:
		}
		d.cond.Wait()
	}
}

// waitFor polls cond (a kernel fact with no event to wait on) until it
// holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, 30*time.Second, "pid file "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	return pid
}

// TestKill9KillsWholeGroupsAtOnce: kill -9 of hostctl kills each program's
// own process at once (Pdeathsig) and, through the guard process, the
// grandchildren too.
func TestKill9KillsWholeGroupsAtOnce(t *testing.T) {
	dir := t.TempDir()
	gc := filepath.Join(dir, "grandchild.pid")
	config := writeConfig(t, dir, fmt.Sprintf(`
[program.parent]
command = ["/bin/sh", "-c", "sleep 1000 & echo $! > %s; exec sleep 1000"]
start_secs = "0s"
`, gc))
	d := startDaemon(t, dir, config)
	leader := pidFromLog(t, d.waitLog(30*time.Second, `"spawned"`, `"program":"parent"`))
	grandchild := readPid(t, gc)
	d.cmd.Process.Kill() // SIGKILL, as the OOM killer would
	<-d.done
	waitFor(t, 30*time.Second, "the program's process to die with hostctl", func() bool { return !alive(leader) })
	waitFor(t, 30*time.Second, "the guard to kill the grandchild", func() bool { return !alive(grandchild) })
}

// TestNextStartKillsSurvivors: if the guard dies too (the OOM killer may
// take both), the grandchild survives hostctl, and the next hostctl kills
// it at start (its process group was recorded in the state dir).
func TestNextStartKillsSurvivors(t *testing.T) {
	dir := t.TempDir()
	gc := filepath.Join(dir, "grandchild.pid")
	config := writeConfig(t, dir, fmt.Sprintf(`
[program.parent]
command = ["/bin/sh", "-c", "sleep 1000 & echo $! > %s; exec sleep 1000"]
start_secs = "0s"
`, gc))
	d := startDaemon(t, dir, config)
	guardPid := pidFromField(t, d.waitLog(30*time.Second, "guard process started"), "guard_pid")
	leader := pidFromLog(t, d.waitLog(30*time.Second, `"spawned"`, `"program":"parent"`))
	grandchild := readPid(t, gc)
	syscall.Kill(guardPid, syscall.SIGKILL)
	waitFor(t, 30*time.Second, "the guard to die", func() bool { return !alive(guardPid) })
	d.cmd.Process.Kill()
	<-d.done
	waitFor(t, 30*time.Second, "the program's process to die with hostctl", func() bool { return !alive(leader) })
	if !alive(grandchild) {
		t.Fatal("the grandchild died with hostctl: this test needs a survivor to prove the cleanup")
	}
	os.Remove(gc)
	d2 := startDaemon(t, dir, config)
	d2.waitLog(30*time.Second, "killed processes left over from an earlier hostctl")
	waitFor(t, 30*time.Second, "the survivor to be killed", func() bool { return !alive(grandchild) })
}

func pidFromField(t *testing.T, line, field string) int {
	t.Helper()
	i := strings.Index(line, `"`+field+`":`)
	if i < 0 {
		t.Fatalf("no %s in %q", field, line)
	}
	rest := line[i+len(field)+3:]
	j := strings.IndexAny(rest, ",}")
	pid, err := strconv.Atoi(rest[:j])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func pidFromLog(t *testing.T, line string) int {
	t.Helper()
	i := strings.Index(line, `"pid":`)
	if i < 0 {
		t.Fatalf("no pid in %q", line)
	}
	rest := line[i+6:]
	j := strings.IndexAny(rest, ",}")
	pid, err := strconv.Atoi(rest[:j])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestZombiesReaped: hostctl is a subreaper; orphans of its programs are
// reparented to it and reaped, never left as zombies.
func TestZombiesReaped(t *testing.T) {
	dir := t.TempDir()
	done := filepath.Join(dir, "orphaned")
	config := writeConfig(t, dir, fmt.Sprintf(`
[program.orphaner]
# Twenty grandchildren orphaned (their parent subshell exits at once),
# each exiting a moment later; then it says so and sleeps.
command = ["/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do (sh -c 'sleep 0.01' &); done; touch %s; exec sleep 1000"]
start_secs = "0s"
`, done))
	d := startDaemon(t, dir, config)
	guard := pidFromField(t, d.waitLog(30*time.Second, "guard process started"), "guard_pid")
	orphaner := pidFromLog(t, d.waitLog(30*time.Second, `"spawned"`, `"program":"orphaner"`))
	hpid := d.cmd.Process.Pid
	// Orphans must have been reparented to hostctl and reaped by it.
	d.waitLog(30*time.Second, "reaped orphan")
	waitFor(t, 30*time.Second, "the orphans to be made", func() bool { _, err := os.Stat(done); return err == nil })
	// orphans lists hostctl's children but its program and its guard: the
	// orphans it adopted, "Z" for those that exited and wait to be reaped.
	orphans := func() []string {
		var out []string
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
			if err != nil {
				continue
			}
			i := bytes.LastIndexByte(b, ')')
			f := strings.Fields(string(b[i+2:]))
			if len(f) > 2 && f[1] == strconv.Itoa(hpid) && e.Name() != strconv.Itoa(orphaner) && e.Name() != strconv.Itoa(guard) {
				out = append(out, e.Name()+" "+f[0])
			}
		}
		return out
	}
	// A zombie exists from an orphan's exit until hostctl reaps it (how
	// long is up to the scheduler); every one is reaped, none left. Without
	// the reaper the twenty would stay, zombies.
	var left []string
	deadline := time.Now().Add(30 * time.Second)
	for left = orphans(); len(left) > 0 && time.Now().Before(deadline); left = orphans() {
		time.Sleep(10 * time.Millisecond) // between polls of a bounded wait
	}
	if len(left) > 0 {
		t.Fatalf("hostctl's adopted orphans (pid state) 30s after they were made: %v", left)
	}
}

// TestBadConfigStartsNothing: exit 1, every error on stderr, no process.
func TestBadConfigStartsNothing(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "started")
	config := writeConfig(t, dir, fmt.Sprintf(`
[program.good]
command = ["/bin/sh", "-c", "touch %s; exec sleep 1000"]
[program.bad]
command = "sleep 1"
stop_timeout = "ten"
depends_on = ["nope"]
`, marker))
	run := exec.Command(hostctlBin, "run", "-c", config)
	run.Env = testbin.Env(nil)
	out, err := run.CombinedOutput()
	testbin.CheckRace(t, "hostctl run", run.ProcessState, string(out))
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1; output:\n%s", err, out)
	}
	for _, want := range []string{`hostctl.toml:14: program.bad.stop_timeout: "ten" is not a duration`, `program.bad.depends_on: "nope" is not a program`, "nothing was started"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("a program was started despite the bad config")
	}
	out, err = exec.Command(hostctlBin, "check", "-c", config).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !bytes.Contains(out, []byte("stop_timeout")) {
		t.Errorf("check: %v\n%s", err, out)
	}
}

// TestDemoConfigChecks: configs/demo.toml, the example of instances and
// groups that `make run` starts, is a valid config. Its dir,
// /tmp/hostctl-demo, is moved to a temp dir holding the admin token that
// run-demo.sh would write (a `make run` may be using the real one).
func TestDemoConfigChecks(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "..", "configs", "demo.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`token_file = "/tmp/hostctl-demo/admin.token"`)) {
		t.Fatal("configs/demo.toml has no admin token_file in /tmp/hostctl-demo (run-demo.sh writes it)")
	}
	cfg := filepath.Join(dir, "demo.toml")
	if err := os.WriteFile(cfg, bytes.ReplaceAll(b, []byte("/tmp/hostctl-demo"), []byte(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(hostctlBin, "check", "-c", cfg)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = testbin.Env(nil)
	out, err := cmd.CombinedOutput()
	testbin.CheckRace(t, "hostctl check", cmd.ProcessState, string(out))
	if want := cfg + ": OK: 2 programs (2 autostart, 3 processes, 1 group)"; err != nil || !bytes.Contains(out, []byte(want)) {
		t.Errorf("hostctl check configs/demo.toml: %v\n%s\nwant %q", err, out, want)
	}
}

// TestShutdownStopsAllAndExitsZero: SIGTERM stops every program (dependents
// first) and hostctl exits 0 with no process of theirs left.
func TestShutdownStopsAllAndExitsZero(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, `
[program.db]
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
start_secs = "0s"
[program.app]
command = ["/bin/sh", "-c", "sleep 1000 & wait"]
depends_on = ["db"]
start_secs = "0s"
`)
	d := startDaemon(t, dir, config)
	db := pidFromLog(t, d.waitLog(30*time.Second, `"spawned"`, `"program":"db"`))
	app := pidFromLog(t, d.waitLog(30*time.Second, `"spawned"`, `"program":"app"`))
	d.waitLog(30*time.Second, `"to":"RUNNING"`, `"program":"app"`)
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatal("hostctl did not exit after SIGTERM")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	for _, pid := range []int{db, app} {
		if alive(pid) {
			t.Errorf("pid %d survived shutdown", pid)
		}
	}
	log := d.log()
	appStopped := strings.Index(log, `"program":"app","from":"STOPPING","to":"STOPPED"`)
	dbStopping := strings.Index(log, `"program":"db","from":"RUNNING","to":"STOPPING"`)
	if appStopped < 0 || dbStopping < 0 || appStopped > dbStopping {
		t.Errorf("db was stopped before app stopped:\n%s", log)
	}
}
