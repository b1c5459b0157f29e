package e2e

// What only a whole process can show: kill -9 of hostctl, survivors
// killed at the next start, zombie reaping as a subreaper, exit codes.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testbin"
)

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
	gc := filepath.Join(t.TempDir(), "grandchild.pid")
	d := startDaemon(t, fmt.Sprintf(`
[program.parent]
command = ["/bin/sh", "-c", "sleep 1000 & echo $! > %s; exec sleep 1000"]
start_secs = "0s"
`, gc), daemonOpts{})
	leader := pidFromLog(t, d.waitLog(t, 30*time.Second, `"spawned"`, `"program":"parent"`))
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
	state := filepath.Join(dir, "state") // both daemons': the records of pgroups
	programs := fmt.Sprintf(`
[program.parent]
command = ["/bin/sh", "-c", "sleep 1000 & echo $! > %s; exec sleep 1000"]
start_secs = "0s"
`, gc)
	opts := daemonOpts{config: func(t testing.TB, dir string) (string, []string) {
		path := writeConfig(t, dir, "", programs)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.Replace(string(b), fmt.Sprintf("state_dir = %q", filepath.Join(dir, "state")), fmt.Sprintf("state_dir = %q", state), 1))
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path, nil
	}}
	d := startDaemon(t, "", opts)
	guardPid := pidFromField(t, d.waitLog(t, 30*time.Second, "guard process started"), "guard_pid")
	leader := pidFromLog(t, d.waitLog(t, 30*time.Second, `"spawned"`, `"program":"parent"`))
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
	d2 := startDaemon(t, "", opts)
	d2.waitLog(t, 30*time.Second, "killed processes left over from an earlier hostctl")
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
	done := filepath.Join(t.TempDir(), "orphaned")
	d := startDaemon(t, fmt.Sprintf(`
[program.orphaner]
# Twenty grandchildren orphaned (their parent subshell exits at once),
# each exiting a moment later; then it says so and sleeps.
command = ["/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do (sh -c 'sleep 0.01' &); done; touch %s; exec sleep 1000"]
start_secs = "0s"
`, done), daemonOpts{})
	guard := pidFromField(t, d.waitLog(t, 30*time.Second, "guard process started"), "guard_pid")
	orphaner := pidFromLog(t, d.waitLog(t, 30*time.Second, `"spawned"`, `"program":"orphaner"`))
	hpid := d.cmd.Process.Pid
	// Orphans must have been reparented to hostctl and reaped by it.
	d.waitLog(t, 30*time.Second, "reaped orphan")
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
	config := filepath.Join(dir, "hostctl.toml")
	if err := os.WriteFile(config, fmt.Appendf(nil, `[admin]
socket = "%[1]s/hostctl.sock"
state_dir = "%[1]s/state"

[log]
dir = "%[1]s/log"

[program.good]
command = ["/bin/sh", "-c", "touch %[2]s; exec sleep 1000"]
[program.bad]
command = "sleep 1"
stop_timeout = "ten"
depends_on = ["nope"]
`, dir, marker), 0o644); err != nil {
		t.Fatal(err)
	}
	run := exec.Command(hostctlBin, "run", "-c", config)
	run.Env = testbin.Env(nil)
	out, err := run.CombinedOutput()
	testbin.CheckRace(t, "hostctl run", run.ProcessState, string(out))
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1; output:\n%s", err, out)
	}
	for _, want := range []string{`hostctl.toml:12: program.bad.stop_timeout: "ten" is not a duration`, `program.bad.depends_on: "nope" is not a program`, "nothing was started"} {
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
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "configs", "demo.toml"))
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
	cmd.Dir = moduleRoot(t)
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
	d := startDaemon(t, `
[program.db]
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
start_secs = "0s"
[program.app]
command = ["/bin/sh", "-c", "sleep 1000 & wait"]
depends_on = ["db"]
start_secs = "0s"
`, daemonOpts{})
	db := pidFromLog(t, d.waitLog(t, 30*time.Second, `"spawned"`, `"program":"db"`))
	app := pidFromLog(t, d.waitLog(t, 30*time.Second, `"spawned"`, `"program":"app"`))
	d.waitLog(t, 30*time.Second, `"to":"RUNNING"`, `"program":"app"`)
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
