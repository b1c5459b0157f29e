package supervisor

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// memOpts measures memory often, so that a test sees two checks quickly.
var memOpts = Options{MemoryCheckInterval: 50 * time.Millisecond}

func TestMemoryLimitRestartsAfterTwoChecks(t *testing.T) {
	// hog holds 200MB in its first run only; quiet stays far below its limit.
	hog := helper(t, "hog", "alloc", "200", filepath.Join(t.TempDir(), "once"))
	hog.MemoryLimit = 100e6
	quiet := helper(t, "quiet", "sleep")
	quiet.MemoryLimit = 1e9
	s, logs := newSupWith(t, memOpts, hog, quiet)
	// quiet runs first, so it is measured by every check that sees hog.
	s.StartProcesses(context.Background(), "quiet")
	q := waitState(t, s, "quiet", Running, 20*time.Second)
	s.StartProcesses(context.Background(), "hog")
	first := waitState(t, s, "hog", Running, 20*time.Second)
	st := waitCond(t, s, "hog", 30*time.Second, "RUNNING again after a memory restart", func(x Status) bool {
		return x.State == Running && x.PID != first.PID && x.MemoryRestarts > 0
	})
	if st.MemoryRestarts != 1 || st.Restarts != 1 || st.MemoryLimit != 100e6 {
		t.Errorf("memory_restarts %d restarts %d memory_limit %d; want 1, 1, 100000000", st.MemoryRestarts, st.Restarts, st.MemoryLimit)
	}
	restarts := logs.FilterMessageSnippet("above memory_limit 100MB for 2 checks: restarting").All()
	if len(restarts) != 1 {
		t.Fatalf("%d restart log lines, want 1: %v", len(restarts), logs.FilterMessageSnippet("memory").All())
	}
	// The figure is what was measured: 200MB held, less than that would not be above.
	if e := restarts[0]; !strings.HasPrefix(e.Message, "memory ") || e.ContextMap()["rss_bytes"].(uint64) <= 100e6 {
		t.Errorf("restart logged as %q %v", e.Message, e.ContextMap())
	}
	if n := logs.FilterMessageSnippet("(check 1 of 2)").Len(); n != 1 {
		t.Errorf("%d first checks above the limit logged, want 1 (the restart comes on the second)", n)
	}
	// A graceful restart: the stop signal, not a kill.
	if st.LastExit == nil || st.LastExit.Signal != "TERM" {
		t.Errorf("last exit %v, want killed by the stop signal TERM", st.LastExit)
	}
	if q2, _ := s.Status("quiet"); q2[0].State != Running || q2[0].PID != q.PID || q2[0].MemoryRestarts != 0 {
		t.Errorf("quiet, under its limit: %s pid %d (was %d), %d memory restarts; want left alone", q2[0].State, q2[0].PID, q.PID, q2[0].MemoryRestarts)
	}
}

func TestMemoryRestartsBackOff(t *testing.T) {
	hog := helper(t, "hog", "alloc", "200")
	hog.MemoryLimit = 100e6
	hog.Backoff = BackoffConfig{Initial: 300 * time.Millisecond, Max: 10 * time.Second}
	s, logs := newSupWith(t, memOpts, hog)
	s.StartProcesses(context.Background(), "hog")
	// The first restart is immediate, the second waits: never a storm.
	st := waitCond(t, s, "hog", 30*time.Second, "a memory backoff", func(x Status) bool { return x.State == Backoff })
	if st.MemoryRestarts != 2 || !strings.Contains(st.Info, "memory above memory_limit; restart 2 in a row") {
		t.Errorf("BACKOFF with %d memory restarts, info %q; want after the second restart", st.MemoryRestarts, st.Info)
	}
	if st.Failure.Kind != FailMemory || st.Failure.Err == nil || st.Failure.Err.Error() != st.Info {
		t.Errorf("backoff failure %v (%v), want %v with the info's text", st.Failure.Kind, st.Failure.Err, FailMemory)
	}
	if d := st.NextStart.Sub(st.StateSince); d < 150*time.Millisecond {
		t.Errorf("backoff of %s, want at least half of backoff.initial", d)
	}
	if n := logs.FilterMessageSnippet("for 2 checks: restarting").Len(); n != 2 {
		t.Errorf("%d memory restarts logged before the backoff, want 2", n)
	}
}

func TestMemoryLimitValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int64
		want  string // "" for valid
	}{
		{"unset means no limit", 0, ""},
		{"a size", 512e6, ""},
		{"a number without its unit", 512, `program.w.memory_limit: 512 bytes is too little for any program; give a unit (example: "512MB")`},
		{"negative", -1, `program.w.memory_limit: must not be negative (example: "512MB"; leave it out for no limit)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := shProg("w", "exec sleep 1000")
			p.MemoryLimit = tc.limit
			var got []string
			for _, err := range p.Validate("program.w") {
				got = append(got, err.Error())
			}
			if g := strings.Join(got, "\n"); g != tc.want {
				t.Errorf("Validate = %q, want %q", g, tc.want)
			}
		})
	}
}
