package supervisor

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// drainHook is an Options.BeforeStop that records each call and holds it
// until the test releases it.
type drainHook struct {
	called  chan string // process names, in call order
	release chan struct{}

	mu     sync.Mutex
	active int // calls running now
	most   int // most calls running at once
}

func newDrainHook() *drainHook {
	return &drainHook{called: make(chan string, 16), release: make(chan struct{})}
}

func (h *drainHook) BeforeStop(ctx context.Context, p *ProcessConfig) {
	h.mu.Lock()
	h.active++
	h.most = max(h.most, h.active)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.active--
		h.mu.Unlock()
	}()
	h.called <- p.Name
	select {
	case <-h.release:
	case <-ctx.Done():
	}
}

func (h *drainHook) next(t *testing.T) string {
	t.Helper()
	select {
	case n := <-h.called:
		return n
	case <-time.After(20 * time.Second):
		t.Fatal("BeforeStop was not called")
		return ""
	}
}

// gracefulProg runs the "graceful" helper (exits 0 on SIGTERM), RUNNING
// once it has installed its handler.
func gracefulProg(t *testing.T, name string) *ProgramConfig {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready-${INSTANCE}")
	p := helper(t, name, "graceful", ready)
	p.Ready = &ProbeConfig{Exec: Command{"/usr/bin/test", "-f", ready}, Interval: 20 * time.Millisecond, Timeout: time.Second, Deadline: 20 * time.Second}
	p.DrainTimeout = time.Minute
	return p
}

// TestBeforeStopHoldsTheStopSignal: for a stop, a restart and a reload
// that removes the process, BeforeStop runs while the process is STOPPING
// and still alive (the stop signal is held back), and the stop completes
// once it returns.
func TestBeforeStopHoldsTheStopSignal(t *testing.T) {
	for _, tc := range []struct {
		name string
		act  func(s *Supervisor, p *ProgramConfig) error
		want State // once the hook returned
	}{
		{"stop", func(s *Supervisor, _ *ProgramConfig) error {
			return s.StopProcesses(context.Background(), "web")
		}, Stopped},
		{"restart", func(s *Supervisor, _ *ProgramConfig) error {
			return s.RestartProcesses(context.Background(), "web")
		}, Running},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newDrainHook()
			p := gracefulProg(t, "web")
			s, _ := newSupWith(t, Options{BeforeStop: h.BeforeStop}, p)
			s.StartProcesses(context.Background(), "web")
			st := waitState(t, s, "web", Running, 20*time.Second)
			if err := tc.act(s, p); err != nil {
				t.Fatal(err)
			}
			if n := h.next(t); n != "web" {
				t.Fatalf("BeforeStop for %q", n)
			}
			now, _ := s.Status("web")
			if now[0].State != Stopping || now[0].Info == "" || !pgroupAlive(st.PID) {
				t.Fatalf("during BeforeStop: state %s info %q alive %v; want STOPPING, draining, alive", now[0].State, now[0].Info, pgroupAlive(st.PID))
			}
			close(h.release)
			after := waitCond(t, s, "web", 20*time.Second, "stopped or restarted", func(x Status) bool {
				return x.State == tc.want && x.Generation > st.Generation-boolInt(tc.want == Stopped)
			})
			if tc.want == Stopped && (after.LastExit == nil || after.LastExit.Code != 0) {
				t.Errorf("last exit %v, want 0 after its stop signal", after.LastExit)
			}
		})
	}
}

func boolInt(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// TestBeforeStopOnReloadRemoval: a reload from 3 instances to 2 drains
// the removed one before its stop signal.
func TestBeforeStopOnReloadRemoval(t *testing.T) {
	h := newDrainHook()
	p := gracefulProg(t, "web")
	p.Instances = 3
	s, _ := newSupWith(t, Options{BeforeStop: h.BeforeStop}, p)
	s.StartProcesses(context.Background(), "web")
	st := waitState(t, s, "web_2", Running, 20*time.Second)
	waitState(t, s, "web_0", Running, 20*time.Second)
	waitState(t, s, "web_1", Running, 20*time.Second)
	q := *p
	q.Instances = 2
	done := make(chan error, 1)
	go func() {
		_, err := s.Reload(context.Background(), []*ProgramConfig{&q})
		done <- err
	}()
	if n := h.next(t); n != "web_2" {
		t.Fatalf("BeforeStop for %q, want web_2", n)
	}
	if !pgroupAlive(st.PID) {
		t.Fatal("web_2 was signalled before BeforeStop returned")
	}
	close(h.release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("reload did not finish")
	}
	waitGone(t, st.PID, 10*time.Second)
}

// TestRollingRestartDrainsOneAtATime: a rolling restart drains each
// instance only once the one before is RUNNING again.
func TestRollingRestartDrainsOneAtATime(t *testing.T) {
	h := newDrainHook()
	close(h.release) // each returns at once
	p := gracefulProg(t, "web")
	p.Instances, p.Rolling = 2, true
	s, _ := newSupWith(t, Options{BeforeStop: h.BeforeStop}, p)
	s.StartProcesses(context.Background(), "web")
	waitState(t, s, "web_0", Running, 20*time.Second)
	waitState(t, s, "web_1", Running, 20*time.Second)
	if err := s.RestartProcesses(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	first := h.next(t)
	second := h.next(t)
	other := map[string]string{"web_0": "web_1", "web_1": "web_0"}
	if other[first] != second {
		t.Fatalf("BeforeStop for %q then %q", first, second)
	}
	// When the second is drained, the first is back.
	sts, _ := s.Status(first)
	if sts[0].State != Running || sts[0].Generation < 2 {
		t.Errorf("%s is %s (gen %d) while %s drains", first, sts[0].State, sts[0].Generation, second)
	}
	waitCond(t, s, second, 20*time.Second, "restarted", func(x Status) bool { return x.State == Running && x.Generation >= 2 })
}

// TestBeforeStopBoundedByDrainTimeout: a BeforeStop that never returns
// holds the stop signal for drain_timeout, no longer.
func TestBeforeStopBoundedByDrainTimeout(t *testing.T) {
	stuck := make(chan struct{})
	defer close(stuck)
	called := make(chan struct{}, 1)
	p := gracefulProg(t, "web")
	p.DrainTimeout = 300 * time.Millisecond
	s, _ := newSupWith(t, Options{BeforeStop: func(context.Context, *ProcessConfig) {
		called <- struct{}{}
		<-stuck // ignores its context
	}}, p)
	s.StartProcesses(context.Background(), "web")
	waitState(t, s, "web", Running, 20*time.Second)
	s.StopProcesses(context.Background(), "web")
	<-called
	st := waitState(t, s, "web", Stopped, 20*time.Second)
	if st.LastExit == nil || st.LastExit.Code != 0 {
		t.Errorf("last exit %v, want 0 (its stop signal, not SIGKILL)", st.LastExit)
	}
}

// TestNoBeforeStop: drain_timeout = 0 and hostctl's own shutdown send the
// stop signal at once, without BeforeStop.
func TestNoBeforeStop(t *testing.T) {
	t.Run("drain_timeout=0", func(t *testing.T) {
		h := newDrainHook()
		p := gracefulProg(t, "web")
		p.DrainTimeout = 0
		s, _ := newSupWith(t, Options{BeforeStop: h.BeforeStop}, p)
		s.StartProcesses(context.Background(), "web")
		waitState(t, s, "web", Running, 20*time.Second)
		s.StopProcesses(context.Background(), "web")
		waitState(t, s, "web", Stopped, 20*time.Second)
		if len(h.called) != 0 {
			t.Errorf("BeforeStop called for %s", <-h.called)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		h := newDrainHook()
		p := gracefulProg(t, "web")
		s, _ := newSupWith(t, Options{BeforeStop: h.BeforeStop}, p)
		s.StartProcesses(context.Background(), "web")
		st := waitState(t, s, "web", Running, 20*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		waitGone(t, st.PID, 10*time.Second)
		if len(h.called) != 0 {
			t.Errorf("BeforeStop called for %s at shutdown", <-h.called)
		}
	})
}

// TestShutdownCutsADrainShort: hostctl's shutdown while a process drains
// sends its stop signal at once rather than after drain_timeout.
func TestShutdownCutsADrainShort(t *testing.T) {
	h := newDrainHook() // never released: only its context ends it
	p := gracefulProg(t, "web")
	p.DrainTimeout = 10 * time.Minute
	s, _ := newSupWith(t, Options{BeforeStop: h.BeforeStop}, p)
	s.StartProcesses(context.Background(), "web")
	st := waitState(t, s, "web", Running, 20*time.Second)
	s.StopProcesses(context.Background(), "web")
	h.next(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown during a drain: %v", err)
	}
	waitGone(t, st.PID, 10*time.Second)
}
