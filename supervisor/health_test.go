package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// healthzProg serves /healthz on a free port: 200, or 500 while sick exists.
func healthzProg(t *testing.T, sick string) *ProgramConfig {
	addr := freeAddr(t)
	p := helper(t, "web", "healthz", addr, sick)
	p.StopTimeout = time.Second
	p.Ready = &ProbeConfig{TCP: addr, Interval: 20 * time.Millisecond, Timeout: 2 * time.Second, Deadline: 30 * time.Second}
	h := DefaultHealthConfig()
	h.HTTP = "http://" + addr + "/healthz"
	h.Interval, h.Failures = 100*time.Millisecond, 3
	p.Health = &h
	return p
}

func TestHealthCheckRestartsAfterFailures(t *testing.T) {
	sick := filepath.Join(t.TempDir(), "sick")
	p := healthzProg(t, sick)
	s, logs := newSup(t, p)
	s.StartProcesses(context.Background(), "web")
	first := waitState(t, s, "web", Running, 20*time.Second)
	if first.Health == nil || !first.Health.Healthy {
		t.Fatalf("RUNNING with health %+v, want healthy", first.Health)
	}
	os.WriteFile(sick, nil, 0o644)
	// Three failed checks in a row: a graceful restart (stop signal first).
	st := waitCond(t, s, "web", 20*time.Second, "a restart for health", func(x Status) bool { return x.State == Stopping })
	h := st.Health
	if h == nil || h.Healthy || h.Failures != 3 || h.LastError != "GET /healthz: 500" || h.Restarts != 1 {
		t.Errorf("health while restarting: %+v; want unhealthy, 3 failures, GET /healthz: 500, 1 restart", h)
	}
	if st.Restarts != 1 || !strings.Contains(st.Info, "health check failed") {
		t.Errorf("restarts %d info %q", st.Restarts, st.Info)
	}
	os.Remove(sick)
	st = waitCond(t, s, "web", 20*time.Second, "RUNNING again with a new process", func(x Status) bool { return x.State == Running && x.PID != first.PID })
	if st.Health == nil || !st.Health.Healthy || st.Health.Failures != 0 || st.Health.Restarts != 1 {
		t.Errorf("after the restart: health %+v, want healthy with 1 restart counted", st.Health)
	}
	if logs.FilterMessage("health check failed; restarting the program").Len() != 1 {
		t.Errorf("the restart was not logged once")
	}
	if n := logs.FilterMessage("health check failed").Len(); n != 2 {
		t.Errorf("%d failed checks below the threshold logged, want 2", n)
	}
}

func TestHealthCheckGrace(t *testing.T) {
	sick := filepath.Join(t.TempDir(), "sick")
	os.WriteFile(sick, nil, 0o644) // failing from the start
	p := healthzProg(t, sick)
	p.Health.Failures = 1
	p.Health.Grace = 1500 * time.Millisecond
	s, _ := newSup(t, p)
	s.StartProcesses(context.Background(), "web")
	running := waitState(t, s, "web", Running, 20*time.Second)
	st := waitCond(t, s, "web", 20*time.Second, "a restart for health", func(x Status) bool { return x.State == Stopping })
	// No check may run within grace: a lower bound, safe on a busy machine.
	if d := st.StateSince.Sub(running.StateSince); d < p.Health.Grace {
		t.Errorf("restarted %s after RUNNING, within grace (%s)", d, p.Health.Grace)
	}
}

func TestHealthRestartsBackOff(t *testing.T) {
	sick := filepath.Join(t.TempDir(), "sick")
	os.WriteFile(sick, nil, 0o644)
	p := shProg("worker", "exec sleep 1000")
	p.Backoff = BackoffConfig{Initial: 400 * time.Millisecond, Max: 10 * time.Second}
	h := DefaultHealthConfig()
	h.Exec = Command{"/bin/sh", "-c", `test ! -e "` + sick + `"`}
	h.Interval, h.Failures = 50*time.Millisecond, 1
	p.Health = &h
	s, logs := newSup(t, p)
	s.StartProcesses(context.Background(), "worker")
	waitState(t, s, "worker", Running, 20*time.Second)
	var delays []time.Duration
	seen := 0
	for len(delays) < 3 {
		st := waitCond(t, s, "worker", 30*time.Second, "a health backoff", func(x Status) bool {
			return x.State == Backoff && x.Health != nil && x.Health.Restarts > seen
		})
		seen = st.Health.Restarts
		if want := fmt.Sprintf("restart %d in a row", seen); !strings.Contains(st.Info, want) {
			t.Errorf("backoff info %q lacks %q", st.Info, want)
		}
		if st.Failure.Kind != FailHealth || st.Failure.Err == nil || st.Failure.Err.Error() != st.Info {
			t.Errorf("backoff failure %v (%v), want %v with the info's text", st.Failure.Kind, st.Failure.Err, FailHealth)
		}
		if st.Health.LastError != "sh: exit status 1" {
			t.Errorf("health last error %q, want the exec check's failure", st.Health.LastError)
		}
		delays = append(delays, st.NextStart.Sub(st.StateSince))
	}
	for i := 1; i < len(delays); i++ {
		if delays[i] < delays[i-1] {
			t.Errorf("health backoff shrank: %v", delays)
		}
	}
	if delays[2] < 2*delays[0] {
		t.Errorf("health backoff did not grow: %v", delays)
	}
	// The first restart was immediate, like a first crash: the first
	// BACKOFF came after the second restart.
	restarts := 0
	for _, e := range logs.All() {
		if e.Message == "health check failed; restarting the program" {
			restarts++
		}
		if e.Message == "state" && e.ContextMap()["to"] == "BACKOFF" {
			if restarts < 2 {
				t.Errorf("BACKOFF after %d health restart(s), want the first restart immediate", restarts)
			}
			break
		}
	}
	// Healthy again: it runs and a check passes.
	os.Remove(sick)
	st := waitState(t, s, "worker", Running, 30*time.Second)
	if st.Health.Restarts < 4 || !st.Health.Healthy {
		t.Errorf("health %+v, want healthy after at least 4 restarts", st.Health)
	}
}

func TestCheckOnceSaysWhyInFewWords(t *testing.T) {
	down := freeAddr(t) // nothing listens here
	for _, tc := range []struct {
		name string
		h    HealthConfig
		want string
	}{
		{"http refused", HealthConfig{HTTP: "http://" + down + "/healthz?full=1"}, "GET /healthz?full=1: connection refused"},
		{"tcp refused", HealthConfig{TCP: down}, "connect " + down + ": connection refused"},
		{"exec fails", HealthConfig{Exec: Command{"/bin/sh", "-c", "exit 4"}}, "sh: exit status 4"},
		{"exec times out", HealthConfig{Exec: Command{"/bin/sh", "-c", "exec sleep 10"}, Timeout: 100 * time.Millisecond}, "sh: timed out after 100ms"},
		{"exec passes", HealthConfig{Exec: Command{"/bin/true"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.h.Timeout == 0 {
				tc.h.Timeout = 5 * time.Second
			}
			got := ""
			if err := checkOnce(context.Background(), &tc.h, procAttr{}); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("checkOnce = %q, want %q", got, tc.want)
			}
		})
	}
}
