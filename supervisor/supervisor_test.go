package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestTransitionTable(t *testing.T) {
	// Every state appears, every target is a real state, and nothing moves
	// to itself; the table is the only way states change.
	for s := Stopped; s <= Fatal; s++ {
		if _, ok := transitions[s]; !ok {
			t.Errorf("%s has no entry in the transition table", s)
		}
		for _, to := range transitions[s] {
			if to > Fatal || to == s {
				t.Errorf("bad transition %s -> %s", s, to)
			}
		}
	}
	for _, tc := range []struct {
		from, to State
		ok       bool
	}{
		{Stopped, Starting, true}, {Starting, Running, true}, {Running, Exited, true},
		{Exited, Starting, true}, {Running, Stopping, true}, {Stopping, Stopped, true},
		{Starting, Fatal, true}, {Backoff, Starting, true}, {Fatal, Stopped, true}, {Stopping, Backoff, true},
		{Stopped, Running, false}, {Fatal, Running, false}, {Stopping, Running, false}, {Running, Backoff, false},
	} {
		if got := canTransition(tc.from, tc.to); got != tc.ok {
			t.Errorf("%s -> %s allowed=%v, want %v", tc.from, tc.to, got, tc.ok)
		}
	}
}

func TestStatusStaysDown(t *testing.T) {
	exit0 := &ExitStatus{Code: 0}
	tests := []struct {
		name string
		st   Status
		want bool
	}{
		{"stopped, never started", Status{State: Stopped}, true},
		{"stopped, autostart (stopped on request)", Status{State: Stopped, Autostart: true}, true},
		{"starting", Status{State: Starting, Autostart: true}, false},
		{"running", Status{State: Running, PID: 10}, false},
		{"backoff: a retry is due", Status{State: Backoff, NextStart: time.Now().Add(time.Second)}, false},
		{"stopping", Status{State: Stopping, PID: 10}, false},
		{"exited: not to be restarted", Status{State: Exited, LastExit: exit0}, true},
		{"fatal", Status{State: Fatal, SpawnErr: "exec: no such file"}, true},
	}
	seen := map[State]bool{}
	for _, tc := range tests {
		seen[tc.st.State] = true
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.st.StaysDown(); got != tc.want {
				t.Errorf("%s: StaysDown() = %v, want %v", tc.st.State, got, tc.want)
			}
		})
	}
	for st := Stopped; st <= Fatal; st++ {
		if !seen[st] {
			t.Errorf("no case for %s: decide whether it stays down", st)
		}
	}
}

func TestCrashRestartsAtOnceThenBacksOff(t *testing.T) {
	p := helper(t, "crasher", "exit", "1")
	p.Backoff = BackoffConfig{Initial: 40 * time.Millisecond, Max: 2 * time.Second}
	s, _ := newSup(t, p)
	if err := s.StartProcesses(context.Background(), "crasher"); err != nil {
		t.Fatal(err)
	}
	// Collect the delay of each BACKOFF the program enters.
	var delays []time.Duration
	for len(delays) < 5 {
		st := waitCond(t, s, "crasher", 10*time.Second, "next backoff", func(st Status) bool {
			return st.State == Backoff && st.Generation > uint64(len(delays)+1)
		})
		delays = append(delays, st.NextStart.Sub(st.StateSince))
		waitCond(t, s, "crasher", 10*time.Second, "leaving backoff", func(st2 Status) bool { return st2.Generation > st.Generation })
	}
	st, _ := s.Status("crasher")
	// crash 1 restarts at once, so 5 backoffs mean at least 6 processes.
	if st[0].Generation < 6 {
		t.Errorf("generation %d after 5 backoffs: first restart was not immediate", st[0].Generation)
	}
	for i := 1; i < len(delays); i++ {
		if delays[i] < delays[i-1] {
			t.Errorf("backoff shrank: %v", delays)
		}
	}
	if delays[len(delays)-1] < 4*delays[0] {
		t.Errorf("backoff did not grow exponentially: %v", delays)
	}
	if st[0].LastExit == nil || st[0].LastExit.Code != 1 {
		t.Errorf("last exit = %v, want code 1", st[0].LastExit)
	}
}

func TestFatalAfterStartRetries(t *testing.T) {
	p := helper(t, "flappy", "exit", "3")
	p.StartSecs = 5 * time.Second // exits long before: every start fails
	p.StartRetries = 2
	s, _ := newSup(t, p)
	s.StartProcesses(context.Background(), "flappy")
	st := waitState(t, s, "flappy", Fatal, 10*time.Second)
	if st.Generation != 3 {
		t.Errorf("spawned %d times, want 3 (1 + start_retries)", st.Generation)
	}
	if !strings.Contains(st.SpawnErr, "exit status 3") {
		t.Errorf("spawn error %q does not say how it exited", st.SpawnErr)
	}
	// FATAL stays FATAL until an explicit start.
	if err := s.StartProcesses(context.Background(), "flappy"); err != nil {
		t.Fatal(err)
	}
	waitCond(t, s, "flappy", 10*time.Second, "a fresh round of starts", func(st Status) bool { return st.Generation > 3 })
}

func TestAutorestartPolicies(t *testing.T) {
	for _, tc := range []struct {
		name      string
		policy    string
		exitCodes []int
		code      string
		restart   bool
	}{
		{"always-0", RestartAlways, []int{0}, "0", true},
		{"never-1", RestartNever, []int{0}, "1", false},
		{"onfail-0", RestartOnFailure, []int{0}, "0", false},
		{"onfail-3", RestartOnFailure, []int{0}, "3", true},
		{"onfail-3-expected", RestartOnFailure, []int{0, 3}, "3", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := helper(t, "prog", "exit", tc.code)
			p.Autorestart = tc.policy
			p.ExitCodes = tc.exitCodes
			s, _ := newSup(t, p)
			s.StartProcesses(context.Background(), "prog")
			if tc.restart {
				waitCond(t, s, "prog", 10*time.Second, "a restart", func(st Status) bool { return st.Generation >= 2 })
				return
			}
			// A restart would happen in the same step as the exit, so a
			// published EXITED proves there was none.
			st := waitState(t, s, "prog", Exited, 10*time.Second)
			if st.Generation != 1 || st.LastExit == nil || st.LastExit.Code != mustAtoi(tc.code) {
				t.Errorf("gen=%d exit=%v", st.Generation, st.LastExit)
			}
		})
	}
}

func TestStopKillsAfterTimeout(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	p := helper(t, "stubborn", "ignore-term", ready)
	p.StopTimeout = 300 * time.Millisecond
	// RUNNING once it has installed its handler.
	p.Ready = &ProbeConfig{Exec: Command{"/usr/bin/test", "-f", ready}, Interval: 20 * time.Millisecond, Timeout: time.Second, Deadline: 20 * time.Second}
	s, _ := newSup(t, p)
	s.StartProcesses(context.Background(), "stubborn")
	st := waitState(t, s, "stubborn", Running, 10*time.Second)
	start := time.Now()
	s.StopProcesses(context.Background(), "stubborn")
	st = waitState(t, s, "stubborn", Stopped, 10*time.Second)
	if st.LastExit == nil || st.LastExit.Signal != "KILL" {
		t.Errorf("last exit %v, want SIGKILL", st.LastExit)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("stopped after %v, before stop_timeout", el)
	}
}

func TestStopLeavesNoProcessInGroup(t *testing.T) {
	for _, tc := range []struct{ name, script string }{
		{"children", "sleep 1000 & sleep 1000 & wait"},
		// The leader obeys TERM but a grandchild ignores it.
		{"stubborn-grandchild", `(trap "" TERM; sleep 1000; :) & exec sleep 1000`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := shProg("forker", tc.script)
			p.StopTimeout = 500 * time.Millisecond
			p.StartSecs = 100 * time.Millisecond
			s, _ := newSup(t, p)
			s.StartProcesses(context.Background(), "forker")
			st := waitState(t, s, "forker", Running, 10*time.Second)
			pgid := st.PID
			s.StopProcesses(context.Background(), "forker")
			waitState(t, s, "forker", Stopped, 10*time.Second)
			// STOPPED is only entered once the group is empty.
			if pgroupAlive(pgid) {
				t.Fatalf("process group %d still alive after STOPPED", pgid)
			}
		})
	}
}

func TestDependsOnWaitsForReadyProbe(t *testing.T) {
	addr := freeAddr(t)
	result := filepath.Join(t.TempDir(), "result")
	a := helper(t, "a", "listen", addr, "700ms")
	a.Ready = &ProbeConfig{TCP: addr, Interval: 20 * time.Millisecond, Timeout: time.Second, Deadline: 10 * time.Second}
	b := helper(t, "b", "require-tcp", addr, result)
	b.DependsOn = []string{"a"}
	b.StartSecs = 100 * time.Millisecond
	s, logs := newSup(t, a, b)
	if err := s.StartAutostart(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, "b", Running, 10*time.Second)
	got := waitFile(t, result, 10*time.Second)
	if string(got) != "OK" {
		t.Fatalf("b started before a accepted connections: %q", got)
	}
	// Shutdown stops b before a.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, e := range logs.FilterMessage("state").All() {
		m := e.ContextMap()
		if m["to"] == "STOPPING" || m["to"] == "STOPPED" {
			order = append(order, m["program"].(string)+":"+m["to"].(string))
		}
	}
	want := "b:STOPPING b:STOPPED a:STOPPING a:STOPPED"
	if strings.Join(order, " ") != want {
		t.Errorf("shutdown order %v, want %s", order, want)
	}
}

func TestDependencyFatalMakesDependentFatal(t *testing.T) {
	a := DefaultProgramConfig("a")
	a.Command = Command{"/nonexistent/program"}
	b := helper(t, "b", "sleep")
	b.DependsOn = []string{"a"}
	c := helper(t, "c", "sleep") // a neighbour
	core := []*ProgramConfig{b, c}
	s, err := New(append(core, &a), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Shutdown(context.Background())
	s.StartAutostart(context.Background())
	st := waitState(t, s, "a", Fatal, 20*time.Second)
	if !strings.Contains(st.SpawnErr, "/nonexistent/program") {
		t.Errorf("spawn error %q does not name the command", st.SpawnErr)
	}
	st = waitState(t, s, "b", Fatal, 20*time.Second)
	if !strings.Contains(st.SpawnErr, `dependency "a" is FATAL`) {
		t.Errorf("b's error %q does not name its dependency", st.SpawnErr)
	}
	waitState(t, s, "c", Running, 20*time.Second)
}

// TestDependencyExitedForGood: a dependency that exits and will not be
// restarted (on-failure, expected exit code) fails its dependent at once,
// even though its autorestart is not "never".
func TestDependencyExitedForGood(t *testing.T) {
	a := shProg("a", "sleep 0.1; exit 0")
	a.Autorestart = RestartOnFailure
	slow := shProg("slow", "exec sleep 100")
	slow.StartSecs = time.Minute // keeps b waiting while a exits
	b := shProg("b", "exec sleep 100")
	b.DependsOn = []string{"a", "slow"}
	s, _ := newSup(t, a, slow, b)
	if err := s.StartProcesses(context.Background(), "b"); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, "a", Exited, 10*time.Second)
	st := waitState(t, s, "b", Fatal, 10*time.Second)
	if !strings.Contains(st.SpawnErr, `dependency "a" exited (exit status 0) and will not restart`) {
		t.Errorf("b's error %q does not say that a exited for good", st.SpawnErr)
	}
}

// TestSettledWithAProgramStoppedOnRequest: an autostart program stopped
// before the others are up does not hold back READY=1.
func TestSettledWithAProgramStoppedOnRequest(t *testing.T) {
	s, _ := newSup(t, shProg("a", "exec sleep 100"), shProg("b", "exec sleep 100"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.StartAutostart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.StopProcesses(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, "b", Stopped, 10*time.Second)
	if err := s.WaitSettled(ctx); err != nil {
		t.Fatalf("WaitSettled: %v (a RUNNING or on its way, b STOPPED on request)", err)
	}
}

func TestResolve(t *testing.T) {
	s, _ := newSup(t, shProg("b", "exit 0"), shProg("a", "exit 0"))
	for _, tc := range []struct {
		name    string
		names   []string
		want    []string
		unknown []string // want an *UnknownProgramsError with these
		mixed   bool     // want ErrAllWithNames
	}{
		{"all", []string{"all"}, []string{"a", "b"}, nil, false},
		{"names in the order given", []string{"b", "a"}, []string{"b", "a"}, nil, false},
		{"every unknown name", []string{"zz", "a", "yy"}, nil, []string{"zz", "yy"}, false},
		{"all with a name", []string{"a", "all"}, nil, nil, true},
		{"all with an unknown name", []string{"all", "zz"}, nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Resolve(tc.names...)
			ue, isUnknown := errors.AsType[*UnknownProgramsError](err)
			switch {
			case tc.unknown != nil:
				if !isUnknown || !slices.Equal(ue.Names, tc.unknown) || !slices.Equal(ue.Known, []string{"a", "b"}) || !errors.Is(err, ErrUnknownProgram) {
					t.Fatalf("Resolve(%q) = %q, %#v; want unknown %q", tc.names, got, err, tc.unknown)
				}
			case tc.mixed:
				if !errors.Is(err, ErrAllWithNames) || errors.Is(err, ErrUnknownProgram) {
					t.Fatalf("Resolve(%q) = %q, %v; want ErrAllWithNames", tc.names, got, err)
				}
			case err != nil || !slices.Equal(got, tc.want):
				t.Fatalf("Resolve(%q) = %q, %v; want %q", tc.names, got, err, tc.want)
			}
		})
	}
	// The actions and reads take names the same way.
	if err := s.StopProcesses(context.Background(), "all", "zz"); !errors.Is(err, ErrAllWithNames) {
		t.Errorf("StopProcesses(all, zz): %v", err)
	}
	_, err := s.Status("a", "zz")
	if ue, ok := errors.AsType[*UnknownProgramsError](err); !ok || !slices.Equal(ue.Names, []string{"zz"}) {
		t.Errorf("Status(a, zz): %v", err)
	}
	if want := `no such program: "zz" (known: a, b)`; err == nil || err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if _, err := s.Log("zz", "stdout"); !errors.Is(err, ErrUnknownProgram) {
		t.Errorf("Log(zz): %v", err)
	}
}

func TestRunAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	dir, err := os.MkdirTemp("", "hostctl-user")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	out := filepath.Join(dir, "id")
	p := shProg("asuser", `echo "$(id -u) $(id -g) $HOME $USER" > `+out+`; exec sleep 1000`)
	p.User = "nobody"
	p.StartSecs = 100 * time.Millisecond
	s, _ := newSup(t, p)
	s.StartProcesses(context.Background(), "asuser")
	waitState(t, s, "asuser", Running, 10*time.Second)
	got := waitFile(t, out, 10*time.Second)
	want := u.Uid + " " + u.Gid + " " + u.HomeDir + " nobody\n"
	if string(got) != want {
		t.Errorf("child saw %q, want %q", got, want)
	}
}

func TestSignalAndRestart(t *testing.T) {
	p := helper(t, "sleeper", "sleep")
	s, _ := newSup(t, p)
	s.StartProcesses(context.Background(), "sleeper")
	st := waitState(t, s, "sleeper", Running, 20*time.Second)
	old := st.PID
	if err := s.RestartProcesses(context.Background(), "sleeper"); err != nil {
		t.Fatal(err)
	}
	st = waitCond(t, s, "sleeper", 20*time.Second, "new pid", func(st Status) bool { return st.State == Running && st.PID != old })
	if pgroupAlive(old) {
		t.Errorf("old process group %d survived the restart", old)
	}
	// A signal that kills it counts as a crash: restarted at once.
	if err := s.SignalProcesses(context.Background(), syscall.SIGKILL, "sleeper"); err != nil {
		t.Fatal(err)
	}
	st2 := waitCond(t, s, "sleeper", 20*time.Second, "restart after crash", func(x Status) bool { return x.State == Running && x.PID != st.PID })
	if st2.LastExit == nil || st2.LastExit.Code != 137 || st2.LastExit.Signal != "KILL" {
		t.Errorf("last exit %+v, want 137 KILL", st2.LastExit)
	}
	if st2.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", st2.Restarts)
	}
}

// TestProgramsDoNotInheritIgnoredHUP: hostctl started with SIGHUP and
// SIGINT ignored (nohup, some CI runners) keeps ignoring them itself, but
// its programs start with the default action, so that `hostctl signal HUP`
// reaches them and a shell can trap it.
func TestProgramsDoNotInheritIgnoredHUP(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", `trap '' HUP INT; exec "$0"`, exe)
	cmd.Env = append(os.Environ(), "HOSTCTL_HELPER=child-sigign")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	var mask uint64
	if _, err := fmt.Sscanf(string(out), "SigIgn: %x\nsurvived\n", &mask); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT} {
		if mask&(1<<(sig-1)) != 0 {
			t.Errorf("program started with SIG%s ignored (SigIgn %016x)", SignalName(sig), mask)
		}
	}
}

func TestReloadDiff(t *testing.T) {
	keep := helper(t, "keep", "sleep")
	change := helper(t, "change", "sleep")
	gone := helper(t, "gone", "sleep")
	s, _ := newSup(t, keep, change, gone)
	s.StartAutostart(context.Background())
	for _, n := range []string{"keep", "change", "gone"} {
		waitState(t, s, n, Running, 20*time.Second)
	}
	before, _ := s.Status("keep", "change")
	keep2 := *keep
	change2 := *change
	change2.Environment = map[string]string{"HOSTCTL_HELPER": "sleep", "X": "1"}
	added := helper(t, "added", "sleep")
	diff, err := s.Reload(context.Background(), []*ProgramConfig{&keep2, &change2, added})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(diff.Added, ",") != "added" || strings.Join(diff.Changed, ",") != "change" || strings.Join(diff.Removed, ",") != "gone" {
		t.Fatalf("diff = %+v", diff)
	}
	waitState(t, s, "added", Running, 20*time.Second)
	st := waitState(t, s, "change", Running, 20*time.Second)
	if st.PID == before[1].PID {
		t.Errorf("changed program kept its pid")
	}
	after, _ := s.Status("keep")
	if after[0].PID != before[0].PID {
		t.Errorf("unchanged program was restarted: pid %d -> %d", before[0].PID, after[0].PID)
	}
	if _, err := s.Status("gone"); err == nil {
		t.Errorf("removed program still listed")
	}
}

func TestKillSurvivors(t *testing.T) {
	// A process group recorded by a "previous hostctl" with a live member
	// is killed; a record whose pgid now belongs to someone else is not.
	state := t.TempDir()
	core := &pgroupRecords{dir: state, log: nopLogger()}
	victim := startDetached(t, "sleep", "1000")
	st, err := readProcStat(victim)
	if err != nil {
		t.Fatal(err)
	}
	core.add(victim, st.startTime, "old")
	other := startDetached(t, "sleep", "1000")
	core.add(other, 12345, "reused") // wrong start time: pid was reused
	if n := core.killSurvivors(); n != 1 {
		t.Errorf("killed %d processes, want 1", n)
	}
	waitGone(t, victim, 20*time.Second)
	if !pgroupAlive(other) {
		t.Errorf("killed a group that was not ours")
	}
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("records left: %v", ents)
	}
}

func TestParseProcStat(t *testing.T) {
	line := "4242 (we ird) (name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 10 5 20 0 1 0 12345 10000000 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	st, err := parseProcStat(4242, []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.state != 'S' || st.ppid != 1 || st.pgid != 4242 || st.ticks != 315 || st.startTime != 12345 || st.rssPages != 300 {
		t.Errorf("parsed %+v; want state S, ppid 1, pgid 4242, ticks 315, start 12345, rss 300 pages", st)
	}
	for _, bad := range []string{"", "12 (x", "12 (x) S 1 2"} {
		if _, err := parseProcStat(12, []byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) succeeded", bad)
		}
	}
}

func mustAtoi(s string) int { n, _ := strconv.Atoi(s); return n }

// A hung program in the classic sense, stopped with SIGSTOP (or ^Z), holds
// its stop signal pending until it runs again: hostctl follows the stop
// signal with SIGCONT to the group, as systemd does, so the program acts
// on it and exits gracefully long before stop_timeout.
func TestStopASIGSTOPpedProgram(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	p := helper(t, "frozen", "graceful", ready)
	p.StopTimeout = 20 * time.Second
	// RUNNING once its SIGTERM handler is installed.
	p.Ready = &ProbeConfig{Exec: Command{"/usr/bin/test", "-f", ready}, Interval: 20 * time.Millisecond, Timeout: time.Second, Deadline: 20 * time.Second}
	s, _ := newSup(t, p)
	s.StartProcesses(context.Background(), "frozen")
	st := waitState(t, s, "frozen", Running, 10*time.Second)
	if err := syscall.Kill(-st.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Stopped ("T" in /proc/PID/stat) before the stop request.
	deadline := time.Now().Add(10 * time.Second)
	for procState(st.PID) != 'T' {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d not stopped after SIGSTOP (state %q)", st.PID, procState(st.PID))
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	s.StopProcesses(context.Background(), "frozen")
	st = waitState(t, s, "frozen", Stopped, 15*time.Second)
	if st.LastExit == nil || st.LastExit.Code != 0 || st.LastExit.Signal != "" {
		t.Errorf("last exit %v, want 0: its own graceful exit on TERM, not SIGKILL", st.LastExit)
	}
	t.Logf("a SIGSTOPped program stopped gracefully in %s (stop_timeout %s)", time.Since(start).Round(time.Millisecond), p.StopTimeout)
}

// procState is the state letter of /proc/PID/stat, 0 if it is gone.
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}
