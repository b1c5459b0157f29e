package check

import (
	"testing"
	"time"
)

// The tracker on a made-up clock: failures in a row make a check down,
// one pass brings it up, and since is when the failing began.
func TestTracker(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type step struct {
		at      int    // seconds after t0 that the probe ended
		err     string // "" passes
		state   State
		since   int // seconds after t0 (the probe took 1s)
		failing int
	}
	for _, tc := range []struct {
		name     string
		failures int
		steps    []step
	}{
		{"passes at once", 3, []step{
			{10, "", Up, 10, 0},
			{20, "", Up, 10, 0},
		}},
		{"down after three in a row, since the first", 3, []step{
			{10, "", Up, 10, 0},
			{20, "refused", Up, 10, 1},
			{30, "refused", Up, 10, 2},
			{40, "refused", Down, 19, 3},
			{50, "refused", Down, 19, 4},
			{60, "", Up, 60, 0},
		}},
		{"a pass in between starts the count again", 2, []step{
			{10, "refused", Pending, 0, 1},
			{20, "", Up, 20, 0},
			{30, "refused", Up, 20, 1},
			{40, "", Up, 20, 0},
			{50, "refused", Up, 20, 1},
			{60, "refused", Down, 49, 2},
		}},
		{"never up: down from pending", 2, []step{
			{10, "refused", Pending, 0, 1},
			{20, "refused", Down, 9, 2},
		}},
		{"failures = 1: the first failure", 1, []step{
			{10, "", Up, 10, 0},
			{20, "timed out", Down, 19, 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTracker(Config{Name: "db", TCP: "db:5432", Failures: tc.failures}, t0)
			var probes, fails uint64
			for i, s := range tc.steps {
				probes++
				if s.err == "" {
					tr.passed(at(s.at), time.Second)
				} else {
					fails++
					tr.failed(at(s.at), time.Second, s.err)
				}
				st := tr.st
				if st.State != s.state || !st.Since.Equal(at(s.since)) || st.Failing != s.failing {
					t.Fatalf("step %d: state %s since +%s failing %d; want %s since +%ds failing %d",
						i, st.State, st.Since.Sub(t0), st.Failing, s.state, s.since, s.failing)
				}
				if st.Probes != probes || st.ProbeFailures != fails || !st.LastCheck.Equal(at(s.at)) || st.LastDuration != time.Second {
					t.Fatalf("step %d: counters %+v", i, st)
				}
				if s.err != "" && (st.LastError != s.err || !st.LastErrorAt.Equal(at(s.at))) {
					t.Fatalf("step %d: last error %q at %s", i, st.LastError, st.LastErrorAt)
				}
			}
		})
	}
}

// Every allowed transition is reachable through the events, and the
// tracker refuses one that is not allowed.
func TestTransitions(t *testing.T) {
	reach := map[[2]State]bool{}
	t0 := time.Now()
	for _, seq := range [][]bool{{true, false, false, true}, {false, false, true}} {
		tr := newTracker(Config{Name: "x", Failures: 2}, t0)
		for _, ok := range seq {
			from := tr.st.State
			if ok {
				tr.passed(t0, 0)
			} else {
				tr.failed(t0, 0, "x")
			}
			if tr.st.State != from {
				reach[[2]State{from, tr.st.State}] = true
			}
		}
	}
	for from, tos := range transitions {
		for _, to := range tos {
			if !reach[[2]State{from, to}] {
				t.Errorf("%s -> %s is allowed but no event makes it", from, to)
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("up -> pending did not panic")
		}
	}()
	tr := newTracker(Config{Name: "x", Failures: 1}, t0)
	tr.passed(t0, 0)
	tr.set(Pending, t0)
}
