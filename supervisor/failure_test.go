package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFailureKinds: each way a program fails is recorded typed in
// Status.Failure (hostctl's own text stays in SpawnErr and Info), kept
// while the program is down, and cleared when it starts again.
func TestFailureKinds(t *testing.T) {
	dir := t.TempDir()
	gone, notExec, sub := filepath.Join(dir, "gone"), filepath.Join(dir, "plain"), filepath.Join(dir, "sub")
	for _, f := range []string{gone, notExec, sub} {
		if err := os.WriteFile(f, []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	quick := shProg("quick", "exit 3") // FATAL after two tries
	quick.StartSecs, quick.StartRetries = 5*time.Second, 1
	retrying := shProg("retrying", "exit 3") // stays in BACKOFF
	retrying.StartSecs, retrying.StartRetries = 5*time.Second, 3
	retrying.Backoff = BackoffConfig{Initial: time.Hour, Max: time.Hour}
	unready := shProg("unready", "exec sleep 1000")
	unready.StartSecs, unready.StartRetries = 0, 0
	unready.Ready = &ProbeConfig{Exec: Command{"/bin/false"}, Interval: 20 * time.Millisecond, Timeout: time.Second, Deadline: 200 * time.Millisecond}
	missing := shProg("missing", "")
	missing.Command = Command{gone}
	isDir := shProg("isdir", "")
	isDir.Command = Command{sub}
	plain := shProg("plain", "")
	plain.Command = Command{notExec}
	dep := shProg("dep", "exec sleep 1000")
	dep.DependsOn = []string{"quick"}
	bad := shProg("bad", "exit 3")
	bad.Autorestart = RestartNever
	good := shProg("good", "exit 0")
	good.Autorestart = RestartNever
	progs := []*ProgramConfig{quick, retrying, unready, missing, isDir, plain, dep, bad, good}
	for _, p := range progs {
		p.Autostart = false
		p.FatalRetry = RetryNever // FATAL stays
	}
	s, _ := newSup(t, progs...)
	// Valid when loaded, broken before they start.
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(notExec, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		state    State
		kind     FailureKind
		problem  CommandProblem // FailSpawn: the *CommandError's
		command  string         // and its command
		expected bool
	}{
		{"quick", Fatal, FailExitedEarly, 0, "", false},
		{"retrying", Backoff, FailExitedEarly, 0, "", false},
		{"unready", Fatal, FailNotReady, 0, "", false},
		{"missing", Fatal, FailSpawn, CommandNotFound, gone, false},
		{"isdir", Fatal, FailSpawn, CommandIsDir, sub, false},
		{"plain", Fatal, FailSpawn, CommandNotExecutable, notExec, false},
		{"dep", Fatal, FailDependency, 0, "", false},
		{"bad", Exited, FailExited, 0, "", false},
		{"good", Exited, FailExited, 0, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.StartProcesses(context.Background(), tc.name); err != nil {
				t.Fatal(err)
			}
			st := waitState(t, s, tc.name, tc.state, 30*time.Second)
			f := st.Failure
			if f.Kind != tc.kind || f.Expected != tc.expected {
				t.Errorf("%s: failure %v expected=%v, want %v expected=%v", tc.state, f.Kind, f.Expected, tc.kind, tc.expected)
			}
			ce, isCmd := errors.AsType[*CommandError](f.Err)
			switch {
			case tc.problem != 0 && (!isCmd || ce.Problem != tc.problem || ce.Command != tc.command):
				t.Errorf("failure error %#v, want a *CommandError with problem %d and command %q", f.Err, tc.problem, tc.command)
			case tc.problem != 0 && f.Err.Error() != st.SpawnErr:
				t.Errorf("failure error %q, spawn error %q: want hostctl's text in both", f.Err, st.SpawnErr)
			case tc.kind == FailDependency && (f.Err == nil || f.Err.Error() != st.SpawnErr):
				t.Errorf("dependency failure %v, spawn error %q", f.Err, st.SpawnErr)
			}
		})
	}
	// Stopped in BACKOFF, it still says why its last start failed.
	if err := s.StopProcesses(context.Background(), "retrying"); err != nil {
		t.Fatal(err)
	}
	if st := waitState(t, s, "retrying", Stopped, 10*time.Second); st.Failure.Kind != FailExitedEarly {
		t.Errorf("stopped from BACKOFF: failure %v, want %v", st.Failure.Kind, FailExitedEarly)
	}
	// A new start clears it.
	if err := os.Chmod(notExec, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.StartProcesses(context.Background(), "plain"); err != nil {
		t.Fatal(err)
	}
	if st := waitState(t, s, "plain", Running, 10*time.Second); st.Failure != (Failure{}) {
		t.Errorf("RUNNING again: failure %+v, want none", st.Failure)
	}
}
