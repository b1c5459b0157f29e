package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/supervisor/logfile"
)

// newSupWithLogs is newSup with program output captured by a real
// logfile.Manager in a temporary directory.
func newSupWithLogs(t *testing.T, progs ...*ProgramConfig) *Supervisor {
	t.Helper()
	dir := t.TempDir()
	lc := logfile.DefaultConfig()
	lc.Dir, lc.KeepFree = dir, ""
	m, err := logfile.NewManager(lc, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	s, _ := newSupWith(t, Options{LogDir: dir, Logs: managerOpener{m}}, progs...)
	return s
}

// needsFile is a program that fails to start, saying why on stderr,
// until path exists. Its failing shell exits long before start_secs
// however busy the machine is (one slower than start_secs would count as
// started, then as a crash).
func needsFile(name, path string) *ProgramConfig {
	p := shProg(name, `if [ -e "`+path+`" ]; then exec sleep 1000; fi; echo "starting up" >&2; echo "config $$HOME missing: `+path+`" >&2; exit 1`)
	p.StartSecs = time.Second
	p.StartRetries = 1
	return p
}

// waitStderr waits until a line containing want is in the program's
// stderr log (the writer batches: the line reaches the file a little
// after the process has exited).
func waitStderr(t *testing.T, s *Supervisor, name, want string) {
	t.Helper()
	log, err := s.Log(name, "stderr")
	if err != nil || log == nil {
		t.Fatalf("stderr log of %s: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = log.Follow(ctx, 10, func(line []byte) error {
		if strings.Contains(string(line), want) {
			return errFound
		}
		return nil
	})
	if err != errFound {
		t.Fatalf("no line %q in the stderr log of %s: %v", want, name, err)
	}
	// A follower can read the bytes a moment before the writer has
	// recorded them as the stream's last line (it writes, then accounts):
	// wait for LastLine too, with the same deadline.
	for !strings.Contains(log.LastLine(), want) {
		select {
		case <-ctx.Done():
			t.Fatalf("the last line of %s's stderr is %q, never one with %q", name, log.LastLine(), want)
		case <-time.After(time.Millisecond):
		}
	}
}

// stillNot asserts that no status change makes cond true within d. It is
// the one kind of wait that must run its course: proving that something
// does not happen.
func stillNot(t *testing.T, s *Supervisor, name string, d time.Duration, what string, cond func(Status) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if st, err := s.WaitFor(ctx, name, cond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s: %s (state %s, generation %d, err %v)", name, what, st.State, st.Generation, err)
	}
}

func TestFatalRetriesUntilFixed(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "config.ini")
	p := needsFile("app", flag)
	p.FatalRetry = 300 * time.Millisecond
	s := newSupWithLogs(t, p)
	if err := s.StartProcesses(context.Background(), "app"); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, s, "app", Fatal, 20*time.Second)
	if st.Tries != 2 || st.NextStart.IsZero() {
		t.Errorf("first FATAL: tries %d next_start %v; want 2 tries and a retry due", st.Tries, st.NextStart)
	}
	// hostctl tries again on its own: a new round of start_retries+1 starts.
	waitCond(t, s, "app", 20*time.Second, "a second round of starts, then FATAL", func(x Status) bool {
		return x.State == Fatal && x.Generation >= 4
	})
	// Fix the cause; a later retry finds it and the program runs.
	if err := os.WriteFile(flag, []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	st = waitState(t, s, "app", Running, 30*time.Second)
	if st.Tries != 0 || !st.NextStart.IsZero() || st.LastStderr != "" {
		t.Errorf("RUNNING still reports the failure: tries %d next_start %v last_stderr %q", st.Tries, st.NextStart, st.LastStderr)
	}
}

func TestFatalStatusSaysWhyAndWhen(t *testing.T) {
	p := needsFile("app", filepath.Join(t.TempDir(), "never-created"))
	p.FatalRetry = time.Hour
	s := newSupWithLogs(t, p)
	s.StartProcesses(context.Background(), "app")
	st := waitState(t, s, "app", Fatal, 20*time.Second)
	waitStderr(t, s, "app", "missing")
	sts, err := s.Status("app")
	if err != nil {
		t.Fatal(err)
	}
	st = sts[0]
	if st.Tries != 2 || st.LastExit == nil || st.LastExit.Code != 1 {
		t.Errorf("tries %d last exit %v, want 2 tries ending in exit 1", st.Tries, st.LastExit)
	}
	if !strings.HasPrefix(st.LastStderr, "config ") || !strings.Contains(st.LastStderr, "missing: ") {
		t.Errorf("last stderr line %q, want the line that says what is missing", st.LastStderr)
	}
	if d := time.Until(st.NextStart); d < 50*time.Minute || d > time.Hour {
		t.Errorf("next try in %s, want about fatal_retry (1h)", d)
	}
}

func TestFatalRetryNeverStaysFatal(t *testing.T) {
	p := needsFile("app", filepath.Join(t.TempDir(), "never-created"))
	p.FatalRetry = RetryNever
	s, logs := newSup(t, p)
	s.StartProcesses(context.Background(), "app")
	st := waitState(t, s, "app", Fatal, 20*time.Second)
	if !st.NextStart.IsZero() {
		t.Errorf("next_start %v with fatal_retry = never", st.NextStart)
	}
	stillNot(t, s, "app", 1500*time.Millisecond, "left FATAL with fatal_retry = never", func(x Status) bool { return x.State != Fatal })
	if n := logs.FilterMessage("trying again after fatal_retry").Len(); n != 0 {
		t.Errorf("%d retries logged", n)
	}
	// A stop has no retry to cancel: FATAL stays as it was.
	if err := s.StopProcesses(context.Background(), "app"); err != nil {
		t.Fatal(err)
	}
	if sts, _ := s.Status("app"); sts[0].State != Fatal {
		t.Errorf("stop turned FATAL (no retry) into %s", sts[0].State)
	}
}

func TestStopCancelsFatalRetry(t *testing.T) {
	p := needsFile("app", filepath.Join(t.TempDir(), "never-created"))
	p.FatalRetry = 300 * time.Millisecond
	s, logs := newSup(t, p)
	s.StartProcesses(context.Background(), "app")
	st := waitState(t, s, "app", Fatal, 20*time.Second)
	if err := s.StopProcesses(context.Background(), "app"); err != nil {
		t.Fatal(err)
	}
	// The stop may have found it FATAL or already retrying: either way
	// it ends STOPPED with no retry pending.
	st = waitState(t, s, "app", Stopped, 20*time.Second)
	if !st.NextStart.IsZero() {
		t.Errorf("STOPPED with next_start %v", st.NextStart)
	}
	retries := logs.FilterMessage("trying again after fatal_retry").Len()
	stillNot(t, s, "app", 5*p.FatalRetry, "a stopped program was retried", func(x Status) bool { return x.State != Stopped })
	if n := logs.FilterMessage("trying again after fatal_retry").Len(); n != retries {
		t.Errorf("retried after the stop (%d retries logged, %d before)", n, retries)
	}
	// A manual start works at any time, and the retry comes back with FATAL.
	s.StartProcesses(context.Background(), "app")
	waitCond(t, s, "app", 20*time.Second, "FATAL again with a retry due", func(x Status) bool {
		return x.State == Fatal && !x.NextStart.IsZero() && x.Generation > st.Generation
	})
}

func TestSpawnErrorIsRetried(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "app")
	// Valid at load time, then gone: the spawn fails.
	if err := os.WriteFile(exe, []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := DefaultProgramConfig("app")
	p.Command = Command{exe}
	p.StartSecs, p.StopTimeout = 0, 2*time.Second
	p.FatalRetry = 300 * time.Millisecond
	s, _ := newSup(t, &p)
	os.Rename(exe, exe+".away")
	s.StartProcesses(context.Background(), "app")
	st := waitState(t, s, "app", Fatal, 20*time.Second)
	if st.Tries != 0 || st.SpawnErr == "" || st.NextStart.IsZero() {
		t.Errorf("spawn error FATAL: tries %d spawn_error %q next_start %v", st.Tries, st.SpawnErr, st.NextStart)
	}
	os.Rename(exe+".away", exe)
	waitState(t, s, "app", Running, 30*time.Second)
}

func TestReloadKeepsOrRestartsFatalRetry(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "config.ini")
	keep := needsFile("keep", flag)
	keep.FatalRetry = time.Hour
	keep.Autostart = false
	change := needsFile("change", flag)
	change.FatalRetry = time.Hour
	change.Autostart = false
	s, _ := newSup(t, keep, change)
	s.StartProcesses(context.Background(), "keep", "change")
	before := map[string]Status{}
	for _, n := range []string{"keep", "change"} {
		before[n] = waitState(t, s, n, Fatal, 20*time.Second)
	}
	os.WriteFile(flag, []byte("ok"), 0o644)
	keep2, change2 := *keep, *change
	change2.Description = "fixed"
	if _, err := s.Reload(context.Background(), []*ProgramConfig{&keep2, &change2}); err != nil {
		t.Fatal(err)
	}
	// The changed program was still being tried: it starts at once.
	waitState(t, s, "change", Running, 20*time.Second)
	// The unchanged one keeps its state and its pending retry.
	sts, _ := s.Status("keep")
	if sts[0].State != Fatal || !sts[0].NextStart.Equal(before["keep"].NextStart) {
		t.Errorf("unchanged program: %s next_start %v, want FATAL with next_start %v", sts[0].State, sts[0].NextStart, before["keep"].NextStart)
	}
}
