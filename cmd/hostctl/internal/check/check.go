// Package check watches the services hostctl does not run ([check.NAME]:
// Postgres at db:5432, ElasticSearch's cluster health, a static file on
// S3): one goroutine per check probes it every interval with the
// supervisor's probe code (supervisor.ServiceProbe), keeps its state
// (pending, up, down after `failures` probes in a row failed), raises the
// alert check_failed:NAME when it goes down and resolves it when a probe
// passes again. A check never restarts anything: these services are not
// hostctl's. The daemon only wires it: New, then Apply at start and at
// every reload.
package check

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
)

// State is a check's state.
type State uint8

const (
	// Pending: no probe has passed yet, and fewer than `failures` have
	// failed in a row since the check started.
	Pending State = iota
	// Up: the last probe passed, or fewer than `failures` in a row
	// failed since one did.
	Up
	// Down: `failures` probes or more in a row failed.
	Down
)

var stateNames = [...]string{Pending: "pending", Up: "up", Down: "down"}

func (s State) String() string { return stateNames[s] }

// Condition is the alert condition of a check that is down; its key is
// "check_failed:NAME".
const Condition = alert.CondCheckFailed

// AlertKey is the key of check name's alert.
func AlertKey(name string) string { return Condition + ":" + name }

// Status is one check as `hostctl status`, the API, the dashboard and the
// metrics show it: a snapshot, never changed once published.
type Status struct {
	Name   string
	Target string // "tcp db:5432", "GET https://...", "exec check-db as postgres"
	State  State
	// Since is when State began; for Down, when the first of the failed
	// probes in a row ran.
	Since time.Time
	// Failing is how many probes in a row have failed (0 after a pass).
	Failing int
	// Failures is the config's: Failing at which the check is down.
	Failures int
	// LastError is why the last failed probe failed; kept after a pass,
	// with LastErrorAt.
	LastError   string
	LastErrorAt time.Time
	// LastCheck is when the last probe ended, LastDuration how long it
	// took; zero before the first.
	LastCheck    time.Time
	LastDuration time.Duration
	// Probes and ProbeFailures count the probes run and failed since
	// hostctl started (a changed config keeps counting).
	Probes, ProbeFailures uint64
	Interval              time.Duration
	Severity              alert.Severity
	Notes                 string
}

// Alerts is the alert manager (*alert.Manager): Set and Clear never block.
type Alerts interface {
	Set(a alert.Alert)
	Clear(key, how string) bool
	Host() string
}

// Options for New.
type Options struct {
	// Alerts is told when a check goes down and comes back. Required.
	Alerts Alerts
	// Logger gets a line at every change of state. Default: none.
	Logger *zap.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Manager runs the checks of the config.
type Manager struct {
	ctx    context.Context
	alerts Alerts
	log    *zap.Logger
	now    func() time.Time

	mu      sync.Mutex // guards runners: Apply replaces entries, Status reads them; never held while waiting for a runner
	runners map[string]*runner
	applyMu sync.Mutex // one Apply at a time
}

// New returns a Manager whose checks run until ctx ends.
func New(ctx context.Context, o Options) *Manager {
	m := &Manager{ctx: ctx, alerts: o.Alerts, log: o.Logger, now: o.Now, runners: map[string]*runner{}}
	if m.log == nil {
		m.log = zap.NewNop()
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m
}

// Diff is what an Apply did, by check name, sorted.
type Diff struct {
	Added, Changed, Removed []string
}

// Apply runs cfgs (a validated config's checks): it starts the checks
// that are new, restarts those whose config changed (as pending, keeping
// their counters; an alert of theirs stays until the new probe passes or
// fails), and stops the removed ones, resolving their alerts. Checks
// whose config did not change keep running untouched.
func (m *Manager) Apply(cfgs map[string]*Config) Diff {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	var d Diff
	m.mu.Lock()
	old := maps.Clone(m.runners)
	m.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(old)) {
		r := old[name]
		c, keep := cfgs[name]
		if keep && reflect.DeepEqual(*c, r.cfg) {
			continue
		}
		r.stop()
		m.mu.Lock()
		delete(m.runners, name)
		m.mu.Unlock()
		if !keep {
			d.Removed = append(d.Removed, name)
			m.alerts.Clear(AlertKey(name), fmt.Sprintf("check %s was removed from the config", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfgs)) {
		m.mu.Lock()
		_, running := m.runners[name]
		m.mu.Unlock()
		if running {
			continue
		}
		var probes, fails uint64
		if r, ok := old[name]; ok {
			d.Changed = append(d.Changed, name)
			st := r.Status()
			probes, fails = st.Probes, st.ProbeFailures
		} else {
			d.Added = append(d.Added, name)
		}
		r := m.start(*cfgs[name], probes, fails)
		m.mu.Lock()
		m.runners[name] = r
		m.mu.Unlock()
	}
	return d
}

// Status returns every check, sorted by name.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	rs := make([]*runner, 0, len(m.runners))
	for _, name := range slices.Sorted(maps.Keys(m.runners)) {
		rs = append(rs, m.runners[name])
	}
	m.mu.Unlock()
	out := make([]Status, len(rs))
	for i, r := range rs {
		out[i] = r.Status()
	}
	return out
}

// runner is one check's goroutine: it owns the tracker; others read the
// published snapshot.
type runner struct {
	cfg    Config
	m      *Manager
	cancel context.CancelFunc
	done   chan struct{}
	snap   atomic.Pointer[Status]
}

func (m *Manager) start(cfg Config, probes, fails uint64) *runner {
	ctx, cancel := context.WithCancel(m.ctx)
	r := &runner{cfg: cfg, m: m, cancel: cancel, done: make(chan struct{})}
	t := newTracker(cfg, m.now())
	t.st.Probes, t.st.ProbeFailures = probes, fails
	r.publish(t)
	go r.run(ctx, t)
	return r
}

// stop ends the runner and waits until it has (so that no alert of it
// comes after).
func (r *runner) stop() {
	r.cancel()
	<-r.done
}

// Status is the last published snapshot.
func (r *runner) Status() Status { return *r.snap.Load() }

func (r *runner) publish(t *tracker) {
	st := t.st
	r.snap.Store(&st)
}

// run probes at once, then every interval, until ctx ends.
func (r *runner) run(ctx context.Context, t *tracker) {
	defer close(r.done)
	probe := r.cfg.Probe()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		err := probe.Run(ctx)
		dur := time.Since(start)
		if ctx.Err() != nil {
			return // stopped mid-probe: not the service's fault
		}
		now := r.m.now()
		if err == nil {
			r.passed(t, now, dur)
		} else {
			r.failed(t, now, dur, err)
		}
		r.publish(t)
		timer.Reset(r.cfg.Interval)
	}
}

// passed handles a probe that passed: a check that was down resolves.
func (r *runner) passed(t *tracker, now time.Time, dur time.Duration) {
	was, since := t.st.State, t.st.Since
	t.passed(now, dur)
	if was == Up {
		return
	}
	how := fmt.Sprintf("check %s is up: %s answered in %s", r.cfg.Name, r.cfg.Target(), roundDur(dur))
	if was == Down {
		how = fmt.Sprintf("check %s is up again after %s down: %s answered in %s", r.cfg.Name, roundDur(now.Sub(since)), r.cfg.Target(), roundDur(dur))
		r.m.log.Info("check up", zap.String("check", r.cfg.Name), zap.Duration("was_down", now.Sub(since)))
	}
	// Also from pending: an alert may be active from before a restart
	// of hostctl or a change of the check.
	r.m.alerts.Clear(AlertKey(r.cfg.Name), how)
}

// failed handles a probe that failed: at `failures` in a row the check is
// down and alerts; while down, the alert is kept up to date.
func (r *runner) failed(t *tracker, now time.Time, dur time.Duration, err error) {
	was := t.st.State
	t.failed(now, dur, err.Error())
	if t.st.State != Down {
		return
	}
	if was != Down {
		r.m.log.Warn("check down", zap.String("check", r.cfg.Name), zap.String("target", r.cfg.Target()), zap.Int("failures", t.st.Failing), zap.Error(err))
	}
	r.m.alerts.Set(r.alert(t.st))
}

// alert is the check_failed alert for st: the probe's error, the notes,
// and since when.
func (r *runner) alert(st Status) alert.Alert {
	details := map[string]any{
		"check":      st.Name,
		"target":     st.Target,
		"error":      st.LastError,
		"failures":   st.Failing,
		"down_since": st.Since.UTC().Format(time.RFC3339),
	}
	if st.Notes != "" {
		details["notes"] = st.Notes
	}
	return alert.Alert{
		Key:       AlertKey(st.Name),
		Condition: Condition,
		Severity:  st.Severity,
		Summary: fmt.Sprintf("check %s on %s is down since %s (%d %s in a row failed): %s", st.Name, r.m.alerts.Host(),
			st.Since.UTC().Format("2006-01-02 15:04:05 UTC"), st.Failing, plural(st.Failing, "probe", "probes"), st.LastError),
		Details: details,
		Command: "hostctl status " + st.Name + "   # hostctl does not run this service and restarts nothing: see the notes",
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// roundDur is d to a precision a person reads: ms below a second.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second:
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}
