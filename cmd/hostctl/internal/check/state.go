package check

import "time"

// tracker is a check's state machine: one method per event (a probe
// passed, a probe failed), each switching on the current state. It reads
// no clock: the runner gives it the time, a test any time it likes.
type tracker struct {
	st        Status
	firstFail time.Time // when the first of the failures in a row ran
}

func newTracker(cfg Config, now time.Time) *tracker {
	return &tracker{st: Status{Name: cfg.Name, Target: cfg.Target(), State: Pending, Since: now, Failures: cfg.Failures,
		Interval: cfg.Interval, Severity: cfg.Severity, Notes: cfg.Notes}}
}

// transitions are the allowed changes of state, walked by a test.
var transitions = map[State][]State{
	Pending: {Up, Down},
	Up:      {Down},
	Down:    {Up},
}

func (t *tracker) set(s State, since time.Time) {
	if s == t.st.State {
		return
	}
	ok := false
	for _, to := range transitions[t.st.State] {
		ok = ok || to == s
	}
	if !ok {
		panic("check: " + t.st.State.String() + " -> " + s.String() + " is not a transition")
	}
	t.st.State, t.st.Since = s, since
}

// passed: a probe that ended at now passed, in dur.
func (t *tracker) passed(now time.Time, dur time.Duration) {
	t.probed(now, dur)
	t.st.Failing = 0
	switch t.st.State {
	case Pending, Down:
		t.set(Up, now)
	case Up:
	}
}

// failed: a probe that ended at now failed with msg, in dur.
func (t *tracker) failed(now time.Time, dur time.Duration, msg string) {
	t.probed(now, dur)
	t.st.ProbeFailures++
	t.st.LastError, t.st.LastErrorAt = msg, now
	if t.st.Failing == 0 {
		t.firstFail = now.Add(-dur)
	}
	t.st.Failing++
	switch t.st.State {
	case Pending, Up:
		if t.st.Failing >= t.st.Failures {
			t.set(Down, t.firstFail)
		}
	case Down:
	}
}

func (t *tracker) probed(now time.Time, dur time.Duration) {
	t.st.Probes++
	t.st.LastCheck, t.st.LastDuration = now, dur
}
