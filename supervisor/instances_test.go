package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hostctl/hostctl/supervisor/logfile"
)

// TestInstancesStartEachWithItsNumber: instances = 3 from instance_start 1
// gives three processes, each RUNNING with its own pid, its own log file,
// and its ${INSTANCE} in argv, in the environment and in its log path.
func TestInstancesStartEachWithItsNumber(t *testing.T) {
	dir := t.TempDir()
	lc := logfile.DefaultConfig()
	lc.Dir, lc.KeepFree = dir, ""
	m, err := logfile.NewManager(lc, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p := shProg("worker", `echo "argv=$1 env=$WORKER"; echo "err $1" >&2; exec sleep 1000`)
	p.Command = append(p.Command, "sh", "arg${INSTANCE}")
	p.Environment = map[string]string{"WORKER": "w${INSTANCE}", "LITERAL": "$${INSTANCE}"}
	p.Instances, p.InstanceStart = 3, 1
	p.StderrLog = filepath.Join(dir, "errors", "worker-${INSTANCE}.log")
	if errs := p.Validate("program.worker"); len(errs) > 0 {
		t.Fatal(errs)
	}
	s, err := New([]*ProgramConfig{p}, Options{LogDir: dir, Logs: managerOpener{m}})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Shutdown(context.Background())
	if err := s.StartProcesses(context.Background(), "worker"); err != nil {
		t.Fatal(err)
	}
	if got, want := s.ProcessNames(), []string{"worker_1", "worker_2", "worker_3"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	pids := map[int]bool{}
	for i, name := range s.ProcessNames() {
		n := i + 1
		st := waitState(t, s, name, Running, 20*time.Second)
		pids[st.PID] = true
		if st.Program != "worker" || st.ProgramGroup != "worker" || st.Instance != n {
			t.Errorf("%s: program %q group %q instance %d", name, st.Program, st.ProgramGroup, st.Instance)
		}
		if want := filepath.Join(dir, name+".out.log"); st.StdoutLog != want {
			t.Errorf("%s: stdout log %q, want %q", name, st.StdoutLog, want)
		}
		if want := filepath.Join(dir, "errors", fmt.Sprintf("worker-%d.log", n)); st.StderrLog != want {
			t.Errorf("%s: stderr log %q, want %q", name, st.StderrLog, want)
		}
		waitLogLine(t, s, name, "stdout", fmt.Sprintf("argv=arg%d env=w%d", n, n))
		waitLogLine(t, s, name, "stderr", fmt.Sprintf("err arg%d", n))
		// The shell has printed its line, but may be in the middle of its
		// exec of sleep, when /proc/PID/environ reads empty: read until it
		// holds the variables, or a deadline.
		wantEnv := []string{fmt.Sprintf("WORKER=w%d", n), "LITERAL=${INSTANCE}"}
		var lacks []string
		for deadline := time.Now().Add(20 * time.Second); ; {
			env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", st.PID))
			if err != nil {
				t.Fatal(err)
			}
			lacks = lacks[:0]
			for _, want := range wantEnv {
				if !strings.Contains("\x00"+string(env)+"\x00", "\x00"+want+"\x00") {
					lacks = append(lacks, want)
				}
			}
			if len(lacks) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond) // between polls of a bounded wait
		}
		if len(lacks) > 0 {
			t.Errorf("%s: environment lacks %v", name, lacks)
		}
	}
	if len(pids) != 3 {
		t.Errorf("pids %v: want three processes", pids)
	}
}

// waitLogLine waits until the process's stream has a line containing want.
func waitLogLine(t *testing.T, s *Supervisor, name, stream, want string) {
	t.Helper()
	ls, err := s.Log(name, stream)
	if err != nil || ls == nil {
		t.Fatalf("%s %s log: %v", name, stream, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = ls.Follow(ctx, 100, func(line []byte) error {
		if strings.Contains(string(line), want) {
			return errFound
		}
		return nil
	})
	if err != errFound {
		tail, _ := ls.Tail(10)
		t.Fatalf("%s: no line %q in its %s log (%v); it has:\n%s", name, want, stream, err, tail)
	}
}

// TestInstanceRestartsAlone: when one instance dies, only it is restarted;
// the others keep their process.
func TestInstanceRestartsAlone(t *testing.T) {
	p := helper(t, "w", "sleep")
	p.Instances = 3
	s, _ := newSup(t, p)
	s.StartProcesses(context.Background(), "w")
	before := map[string]Status{}
	for _, n := range []string{"w_0", "w_1", "w_2"} {
		before[n] = waitState(t, s, n, Running, 20*time.Second)
	}
	syscall.Kill(before["w_1"].PID, syscall.SIGKILL)
	after := waitCond(t, s, "w_1", 20*time.Second, "a new process", func(st Status) bool {
		return st.State == Running && st.Generation > before["w_1"].Generation
	})
	if after.Restarts != 1 || after.LastExit == nil || after.LastExit.Signal != "KILL" {
		t.Errorf("w_1 after its crash: restarts %d, last exit %v", after.Restarts, after.LastExit)
	}
	for _, n := range []string{"w_0", "w_2"} {
		st, _ := s.Status(n)
		if st[0].PID != before[n].PID || st[0].Restarts != 0 || st[0].State != Running {
			t.Errorf("%s: %s pid %d (was %d), %d restarts: the crash of w_1 touched it", n, st[0].State, st[0].PID, before[n].PID, st[0].Restarts)
		}
	}
}

// TestNamesResolve: a name is a process, a program (its instances), a
// group (its programs' processes), GROUP:* or GROUP:NAME, where GROUP is
// a [group] or a program.
func TestNamesResolve(t *testing.T) {
	web := helper(t, "gunicorn", "sleep")
	web.ProgramGroup = "web"
	celery := helper(t, "celery", "sleep")
	celery.Instances, celery.ProgramGroup = 2, "web"
	beat := helper(t, "beat", "sleep")
	solo := helper(t, "solo", "sleep")
	solo.Instances, solo.ProcessName = 2, "solo-${INSTANCE}"
	s, _ := newSup(t, web, celery, beat, solo)
	for _, tc := range []struct {
		names []string
		want  []string
	}{
		{[]string{"all"}, []string{"beat", "celery_0", "celery_1", "gunicorn", "solo-0", "solo-1"}},
		{[]string{"celery"}, []string{"celery_0", "celery_1"}},
		{[]string{"celery_1"}, []string{"celery_1"}},
		{[]string{"web"}, []string{"celery_0", "celery_1", "gunicorn"}},
		{[]string{"web:*"}, []string{"celery_0", "celery_1", "gunicorn"}},
		{[]string{"web:celery_1"}, []string{"celery_1"}},
		{[]string{"web:celery"}, []string{"celery_0", "celery_1"}},
		{[]string{"web:gunicorn", "celery:celery_0"}, []string{"gunicorn", "celery_0"}},
		{[]string{"celery:*"}, []string{"celery_0", "celery_1"}},
		{[]string{"beat:beat"}, []string{"beat"}},
		{[]string{"beat:*", "beat"}, []string{"beat"}},
		{[]string{"solo"}, []string{"solo-0", "solo-1"}},
		{[]string{"solo:solo-1", "celery_0", "celery"}, []string{"solo-1", "celery_0", "celery_1"}},
	} {
		t.Run(strings.Join(tc.names, " "), func(t *testing.T) {
			got, err := s.Resolve(tc.names...)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Resolve(%q) = %q, %v; want %q", tc.names, got, err, tc.want)
			}
		})
	}
	for _, bad := range [][]string{{"nope"}, {"web:beat"}, {"beat:celery_0"}, {"web:"}, {"celery_0:*"}, {"gunicorn:celery_0"}} {
		_, err := s.Resolve(bad...)
		var ue *UnknownProgramsError
		if !errors.As(err, &ue) || !reflect.DeepEqual(ue.Names, bad) {
			t.Errorf("Resolve(%q): %v, want an UnknownProgramsError naming it", bad, err)
		}
	}
	_, err := s.Resolve("nope")
	if want := `no such program: "nope" (known: beat, celery, celery_0, celery_1, gunicorn, solo, solo-0, solo-1, web)`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	sts, err := s.Status("web")
	if err != nil || len(sts) != 3 {
		t.Fatalf("Status(web) = %v, %v", sts, err)
	}
	for _, st := range sts {
		if st.ProgramGroup != "web" {
			t.Errorf("%s: process group %q, want web", st.Name, st.ProgramGroup)
		}
	}
	if _, err := s.WaitFor(context.Background(), "celery", func(Status) bool { return true }); err == nil || !strings.Contains(err.Error(), "celery_0, celery_1") {
		t.Errorf("WaitFor of a program with two instances: %v, want an error naming them", err)
	}
	if _, err := s.Log("web", "stdout"); err == nil {
		t.Errorf("Log of a group: no error")
	}
}

// watchedLog is the supervisor's log as a test sees it, with a way to
// wait for a line (the rollers log what they do; no state change follows
// the last of it).
type watchedLog struct {
	*observer.ObservedLogs
	mu sync.Mutex    // guards ch
	ch chan struct{} // closed (and replaced) after each line
}

// newSupWatched is newSup with a log one can wait on.
func newSupWatched(t *testing.T, progs ...*ProgramConfig) (*Supervisor, *watchedLog) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	w := &watchedLog{ObservedLogs: logs, ch: make(chan struct{})}
	hooked := zapcore.RegisterHooks(core, func(zapcore.Entry) error {
		w.mu.Lock()
		close(w.ch)
		w.ch = make(chan struct{})
		w.mu.Unlock()
		return nil
	})
	for _, p := range progs {
		if errs := p.Validate("program." + p.Name); len(errs) > 0 {
			t.Fatalf("invalid test config: %v", errs)
		}
	}
	s, err := New(progs, Options{Logger: zap.New(hooked), StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s, w
}

// wait waits until the log has n lines with message msg.
func (w *watchedLog) wait(t *testing.T, msg string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		ch := w.ch
		w.mu.Unlock()
		if got := w.FilterMessage(msg).Len(); got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%d log lines %q after %s, want %d", w.FilterMessage(msg).Len(), msg, timeout, n)
		}
	}
}

// rollWatch replays the supervisor's "state" log lines from mark on: the
// order in which state changes were made, across programs, as each owner
// logs before publishing. It returns the fewest of procs RUNNING at any
// point, and the order in which they were stopped.
func rollWatch(logs *watchedLog, mark int, procs []string) (minRunning int, stopped []string) {
	state := map[string]string{}
	for _, p := range procs {
		state[p] = "RUNNING"
	}
	running := func() int {
		n := 0
		for _, s := range state {
			if s == "RUNNING" {
				n++
			}
		}
		return n
	}
	minRunning = running()
	for _, e := range logs.All()[mark:] {
		if e.Message != "state" {
			continue
		}
		c := e.ContextMap()
		name, _ := c["program"].(string)
		if _, ok := state[name]; !ok {
			continue
		}
		to, _ := c["to"].(string)
		state[name] = to
		if to == "STOPPING" {
			stopped = append(stopped, name)
		}
		minRunning = min(minRunning, running())
	}
	return minRunning, stopped
}

// TestRollingRestart: restarting a program with rolling = true stops one
// instance at a time and the next only once the one before is RUNNING and
// ready again, so that two of three instances always run; without
// rolling, all three are down at once (which shows the watch would see
// it). Each instance listens on its own unix socket, ${INSTANCE} in the
// command and in the ready probe's socket.
func TestRollingRestart(t *testing.T) {
	for _, tc := range []struct {
		name        string
		rolling     bool
		wantRunning int // fewest instances RUNNING during the restart
	}{
		{"rolling", true, 2},
		{"all at once", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := helper(t, "web", "healthz", filepath.Join(dir, "s${INSTANCE}.sock"), filepath.Join(dir, "sick"))
			p.Instances, p.Rolling = 3, tc.rolling
			p.StopTimeout = 300 * time.Millisecond // healthz ignores SIGTERM: each stop lasts this long
			p.StartSecs = 200 * time.Millisecond
			p.Ready = &ProbeConfig{HTTP: "http://localhost/", Socket: filepath.Join(dir, "s${INSTANCE}.sock"),
				Interval: 20 * time.Millisecond, Timeout: time.Second, Deadline: 10 * time.Second}
			s, logs := newSupWatched(t, p)
			ctx := context.Background()
			s.StartProcesses(ctx, "web")
			procs := []string{"web_0", "web_1", "web_2"}
			before := map[string]Status{}
			for _, n := range procs {
				before[n] = waitState(t, s, n, Running, 10*time.Second)
			}
			mark := logs.Len()
			if err := s.RestartProcesses(ctx, "web"); err != nil {
				t.Fatal(err)
			}
			for _, n := range procs {
				waitCond(t, s, n, 20*time.Second, "RUNNING with a new process", func(st Status) bool {
					return st.State == Running && st.Generation == before[n].Generation+1
				})
			}
			if tc.rolling {
				logs.wait(t, "rolling restart: instance is back", 3, 20*time.Second)
			}
			minRunning, stopped := rollWatch(logs, mark, procs)
			if minRunning != tc.wantRunning {
				t.Errorf("fewest instances RUNNING during the restart: %d, want %d", minRunning, tc.wantRunning)
			}
			if len(stopped) != 3 {
				t.Errorf("instances stopped: %v, want each once", stopped)
			}
		})
	}
}

// TestRollingRestartStopsAtABrokenInstance: an instance that does not come
// back (a broken deploy) ends the rolling restart; the instances not yet
// restarted keep their process. Instances that are not RUNNING go first.
func TestRollingRestartStopsAtABrokenInstance(t *testing.T) {
	dir := t.TempDir()
	// Each instance runs once; its next start fails.
	p := shProg("app", fmt.Sprintf(`f=%s/ran-${INSTANCE}; if [ -e $f ]; then echo broken >&2; exit 1; fi; touch $f; exec sleep 1000`, dir))
	p.Instances, p.Rolling, p.StartRetries = 3, true, 0
	// A broken start exits long before start_secs, however busy the
	// machine is (a shell slower than start_secs would count as started).
	p.StartSecs = time.Second
	p.FatalRetry = RetryNever
	s, logs := newSupWatched(t, p)
	ctx := context.Background()
	s.StartProcesses(ctx, "app")
	procs := []string{"app_0", "app_1", "app_2"}
	before := map[string]Status{}
	for _, n := range procs {
		before[n] = waitState(t, s, n, Running, 20*time.Second)
	}
	// app_2 is down before the restart: it goes first (and is the one
	// that breaks: its file exists).
	if err := s.StopProcesses(ctx, "app_2"); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, "app_2", Stopped, 20*time.Second)
	if err := s.RestartProcesses(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, "app_2", Fatal, 20*time.Second)
	logs.wait(t, "rolling restart stopped: an instance did not come back; the instances not yet restarted keep running", 1, 20*time.Second)
	for _, n := range []string{"app_0", "app_1"} {
		st, _ := s.Status(n)
		if st[0].State != Running || st[0].PID != before[n].PID {
			t.Errorf("%s: %s pid %d (was %d); a broken instance must stop the rolling restart before it", n, st[0].State, st[0].PID, before[n].PID)
		}
	}
}

// TestStopDuringRollingRestart: a stop wins over a rolling restart under
// way: the stopped instances are not started again by it.
func TestStopDuringRollingRestart(t *testing.T) {
	dir := t.TempDir()
	p := helper(t, "q", "ignore-term", filepath.Join(dir, "ready-${INSTANCE}"))
	p.Instances, p.Rolling = 3, true
	// RUNNING once it ignores SIGTERM (it writes its file after): each
	// stop lasts stop_timeout, long enough for the stop below to arrive
	// while the restart has the first instance STOPPING however slow the
	// test's goroutine is to get there.
	p.Ready = &ProbeConfig{Exec: Command{"/usr/bin/test", "-f", filepath.Join(dir, "ready-${INSTANCE}")},
		Interval: 20 * time.Millisecond, Timeout: time.Second, Deadline: 20 * time.Second}
	p.StopTimeout = 2 * time.Second
	s, logs := newSupWatched(t, p)
	ctx := context.Background()
	s.StartProcesses(ctx, "q")
	for _, n := range []string{"q_0", "q_1", "q_2"} {
		waitState(t, s, n, Running, 20*time.Second)
	}
	if err := s.RestartProcesses(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	// The first is in hand (logged before its restart is sent, which the
	// roller finishes before it hears of the stop).
	logs.wait(t, "rolling restart: restarting instance", 1, 20*time.Second)
	if err := s.StopProcesses(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"q_0", "q_1", "q_2"} {
		waitState(t, s, n, Stopped, 20*time.Second)
	}
	// Nothing is left to roll: restart the same program again, which goes
	// through the same roller and must start all three, one at a time.
	s.RestartProcesses(ctx, "q")
	for _, n := range []string{"q_0", "q_1", "q_2"} {
		waitState(t, s, n, Running, 30*time.Second)
	}
	for _, n := range []string{"q_0", "q_1", "q_2"} {
		if st, _ := s.Status(n); st[0].Generation != 2 {
			t.Errorf("%s: %d processes spawned, want 2 (the first start, the restart after the stop)", n, st[0].Generation)
		}
	}
}

// TestDependsOnEveryInstance: depends_on = ["a"] waits for every instance
// of a. Each instance of a is ready when its own file exists (${INSTANCE}
// in the ready probe's exec).
func TestDependsOnEveryInstance(t *testing.T) {
	dir := t.TempDir()
	a := helper(t, "a", "sleep")
	a.Instances = 2
	a.Ready = &ProbeConfig{Exec: Command{"/bin/sh", "-c", "test -e " + dir + "/ready-${INSTANCE}"},
		Interval: 20 * time.Millisecond, Timeout: time.Second, Deadline: 30 * time.Second}
	b := helper(t, "b", "sleep")
	b.DependsOn = []string{"a"}
	s, logs := newSupWatched(t, a, b)
	s.StartProcesses(context.Background(), "b")
	os.WriteFile(dir+"/ready-0", nil, 0o644)
	waitState(t, s, "a_0", Running, 20*time.Second)
	st, _ := s.Status("b", "a_1")
	if st[0].State != Starting || st[0].PID != 0 || st[0].Info != "waiting for a" || st[1].State != Starting {
		t.Fatalf("b is %s pid %d (%q) while a_1 is %s: it must wait for every instance of a", st[0].State, st[0].PID, st[0].Info, st[1].State)
	}
	os.WriteFile(dir+"/ready-1", nil, 0o644)
	waitState(t, s, "b", Running, 20*time.Second)

	// Shutdown order: b stops before any instance of a.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	set := map[string]*process{}
	for _, n := range []string{"a_0", "a_1", "b"} {
		set[n], _ = s.get(n)
	}
	mark := logs.Len()
	if err := s.stopInOrder(ctx, set, true, nil); err != nil {
		t.Fatal(err)
	}
	_, stopped := rollWatch(logs, mark, []string{"a_0", "a_1", "b"})
	if len(stopped) != 3 || stopped[0] != "b" {
		t.Errorf("stop order %v, want b first", stopped)
	}
}

// TestReloadInstances: instances 2 -> 3 adds one process and leaves the
// two alone; 3 -> 2 stops the last; rolling and group changes restart
// nothing; a changed command restarts every instance.
func TestReloadInstances(t *testing.T) {
	c := helper(t, "c", "sleep")
	c.Instances = 2
	s, _ := newSup(t, c)
	ctx := context.Background()
	s.StartProcesses(ctx, "c")
	pid := func(n string) int {
		t.Helper()
		return waitState(t, s, n, Running, 20*time.Second).PID
	}
	p0, p1 := pid("c_0"), pid("c_1")

	three := *c
	three.Instances, three.Rolling, three.ProgramGroup = 3, true, "workers"
	d, err := s.Reload(ctx, []*ProgramConfig{&three})
	if err != nil || !reflect.DeepEqual(d, Diff{Added: []string{"c_2"}}) {
		t.Fatalf("reload to 3 instances: %+v, %v", d, err)
	}
	if pid("c_0") != p0 || pid("c_1") != p1 {
		t.Errorf("the two instances were restarted by adding a third")
	}
	pid("c_2") // autostart: started
	if st, _ := s.Status("c_0"); st[0].ProgramGroup != "workers" {
		t.Errorf("c_0's group after the reload: %q, want workers", st[0].ProgramGroup)
	}
	if got, _ := s.Resolve("workers:*"); len(got) != 3 {
		t.Errorf("workers:* = %v", got)
	}
	p2 := pid("c_2")

	two := three
	two.Instances = 2
	d, err = s.Reload(ctx, []*ProgramConfig{&two})
	if err != nil || !reflect.DeepEqual(d, Diff{Removed: []string{"c_2"}}) {
		t.Fatalf("reload to 2 instances: %+v, %v", d, err)
	}
	if pid("c_0") != p0 || pid("c_1") != p1 {
		t.Errorf("the two instances were restarted by removing the third")
	}
	if pgroupAlive(p2) {
		t.Errorf("c_2's process group %d still has processes", p2)
	}

	changed := two
	changed.Environment = map[string]string{"HOSTCTL_HELPER": "sleep", "X": "${INSTANCE}"}
	d, err = s.Reload(ctx, []*ProgramConfig{&changed})
	if err != nil || !reflect.DeepEqual(d, Diff{Changed: []string{"c_0", "c_1"}}) {
		t.Fatalf("reload with a new environment: %+v, %v", d, err)
	}
	if pid("c_0") == p0 || pid("c_1") == p1 {
		t.Errorf("a changed environment did not restart the instances")
	}
}

// TestProcessesExpansion: what each process's config holds.
func TestProcessesExpansion(t *testing.T) {
	t.Setenv("HOSTCTL_TEST_BASE", "/srv")
	p := DefaultProgramConfig("celery")
	p.Command = Command{"celery", "-n", "w${INSTANCE}@%h", "$${INSTANCE}", "${HOSTCTL_TEST_BASE}"}
	p.Instances, p.InstanceStart, p.ProcessName = 2, 5, "${NAME}-w${INSTANCE}"
	p.Directory = "${HOSTCTL_TEST_BASE}/w${INSTANCE}"
	p.StdoutLog = "/var/log/celery-${INSTANCE}.log"
	p.Ready = &ProbeConfig{TCP: "127.0.0.1:80${INSTANCE}"}
	p.Health = &HealthConfig{HTTP: "http://127.0.0.1:80${INSTANCE}/", Exec: Command{"check", "${INSTANCE}"}}
	p.ProgramGroup = "workers"
	procs, err := p.Processes()
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 2 {
		t.Fatalf("%d processes", len(procs))
	}
	proc := procs[1]
	c := proc.Program
	for _, kv := range [][2]any{
		{proc.Name, "celery-w6"}, {c.Name, "celery"}, {proc.Instance, 6}, {proc.ProgramGroup, "workers"},
		{strings.Join(c.Command, " "), "celery -n w6@%h $${INSTANCE} ${HOSTCTL_TEST_BASE}"},
		{c.Directory, "/srv/w6"}, {c.StdoutLog, "/var/log/celery-6.log"},
		{c.Ready.TCP, "127.0.0.1:806"}, {c.Health.HTTP, "http://127.0.0.1:806/"}, {strings.Join(c.Health.Exec, " "), "check 6"},
		{strings.Join(p.Command, " "), "celery -n w${INSTANCE}@%h $${INSTANCE} ${HOSTCTL_TEST_BASE}"}, // p untouched
	} {
		if kv[0] != kv[1] {
			t.Errorf("got %v, want %v", kv[0], kv[1])
		}
	}
	argv, err := c.expandedCommand()
	if err != nil || strings.Join(argv, " ") != "celery -n w6@%h ${INSTANCE} /srv" {
		t.Errorf("argv %q, %v", argv, err)
	}
	one := DefaultProgramConfig("web")
	one.Command = Command{"x"}
	procs, _ = one.Processes()
	if len(procs) != 1 || procs[0].Name != "web" || procs[0].ProgramGroup != "web" {
		t.Errorf("one instance: %+v", procs[0])
	}
}

// TestHealthCheckPerInstance: each instance has its own health check
// (${INSTANCE} in its socket and in what makes it sick); a failing one is
// restarted alone.
func TestHealthCheckPerInstance(t *testing.T) {
	dir := t.TempDir()
	p := helper(t, "web", "healthz", filepath.Join(dir, "h${INSTANCE}.sock"), filepath.Join(dir, "sick-${INSTANCE}"))
	p.Instances = 2
	p.StopTimeout = 300 * time.Millisecond
	p.Ready = &ProbeConfig{HTTP: "http://localhost/healthz", Socket: filepath.Join(dir, "h${INSTANCE}.sock"),
		Interval: 20 * time.Millisecond, Timeout: time.Second, Deadline: 10 * time.Second}
	h := DefaultHealthConfig()
	h.HTTP, h.Socket = "http://localhost/healthz", filepath.Join(dir, "h${INSTANCE}.sock")
	h.Interval, h.Failures = 50*time.Millisecond, 2
	p.Health = &h
	s, _ := newSup(t, p)
	s.StartProcesses(context.Background(), "web")
	first0 := waitState(t, s, "web_0", Running, 10*time.Second)
	first1 := waitState(t, s, "web_1", Running, 10*time.Second)
	os.WriteFile(filepath.Join(dir, "sick-1"), nil, 0o644)
	st := waitCond(t, s, "web_1", 10*time.Second, "a restart for health", func(x Status) bool { return x.Health != nil && x.Health.Restarts == 1 })
	os.Remove(filepath.Join(dir, "sick-1"))
	waitCond(t, s, "web_1", 10*time.Second, "RUNNING with a new process", func(x Status) bool { return x.State == Running && x.PID != first1.PID })
	if st.Health.LastError != "GET /healthz: 500" {
		t.Errorf("web_1's health: %+v", st.Health)
	}
	st0, _ := s.Status("web_0")
	if st0[0].PID != first0.PID || st0[0].Health.Restarts != 0 || !st0[0].Health.Healthy {
		t.Errorf("web_0: pid %d (was %d), health %+v: web_1's failing checks touched it", st0[0].PID, first0.PID, st0[0].Health)
	}
}
