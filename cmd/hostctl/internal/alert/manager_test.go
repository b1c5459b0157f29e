package alert

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// recSink records what it is sent; fail decides each attempt's error.
type recSink struct {
	mu     sync.Mutex
	events []Event
	tries  int
	fail   func(try int, ev Event) error
	got    chan Event // every delivered event
	block  chan struct{}
}

func newRec() *recSink { return &recSink{got: make(chan Event, 1000)} }

func (s *recSink) Send(ctx context.Context, ev Event) error {
	s.mu.Lock()
	s.tries++
	try, fail, block := s.tries, s.fail, s.block
	s.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		if err := fail(try, ev); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
	s.got <- ev
	return nil
}

// next waits for the next delivered event.
func (s *recSink) next(t *testing.T) Event {
	t.Helper()
	select {
	case ev := <-s.got:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event delivered within 10s")
		return Event{}
	}
}

// none checks that nothing more is delivered while the manager is given
// the chance to (a Sinks() round after the queue is empty).
func (s *recSink) none(t *testing.T, m *Manager) {
	t.Helper()
	waitFor(t, func() bool { return m.Sinks()[0].Queued == 0 })
	select {
	case ev := <-s.got:
		t.Fatalf("unexpected %s of %s", ev.Action, ev.Alert.Key)
	default:
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newTestManager(t *testing.T, cfg Config, sinks map[string]Sink) *Manager {
	t.Helper()
	return newTestManagerAt(t, "", cfg, sinks)
}

func newTestManagerAt(t *testing.T, statePath string, cfg Config, sinks map[string]Sink) *Manager {
	t.Helper()
	if cfg.RetryFor == 0 {
		cfg.RetryFor = 5 * time.Second
	}
	m, err := New(cfg, Options{
		Host: "web1", MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, StatePath: statePath,
		newSink: func(c SinkConfig) (Sink, error) {
			s, ok := sinks[c.Name]
			if !ok {
				return nil, fmt.Errorf("no fake sink %q", c.Name)
			}
			return s, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.Close(ctx)
	})
	return m
}

func sink(name string) SinkConfig {
	return SinkConfig{Name: name, Type: TypeWebhook, URL: "http://127.0.0.1:1/", Timeout: time.Second}
}

func fatal(prog string) Alert {
	return Alert{Key: "fatal:" + prog, Condition: CondFatal, Program: prog, Severity: Critical, Summary: prog + " is FATAL"}
}

func TestOneTriggerPerConditionUntilResolved(t *testing.T) {
	rec := newRec()
	m := newTestManager(t, Config{Sinks: []SinkConfig{sink("hook")}}, map[string]Sink{"hook": rec})

	first := fatal("gunicorn")
	first.Command, first.LastLines = "hostctl tail gunicorn stderr", []string{"ImportError"}
	m.Set(first)
	ev := rec.next(t)
	if ev.Action != Trigger || ev.Alert.Key != "fatal:gunicorn" || ev.Host != "web1" || ev.DedupKey() != "web1/fatal:gunicorn" || ev.Repeat {
		t.Fatalf("trigger = %+v", ev)
	}
	// Set again with a new summary: updated, not sent again.
	a := fatal("gunicorn")
	a.Summary = "gunicorn is FATAL: next try in 4m"
	m.Set(a)
	rec.none(t, m)
	// An update without lines and command keeps those of the trigger.
	if act := m.Active(); len(act) != 1 || act[0].Summary != a.Summary || act[0].Notified != 1 || act[0].Command != first.Command || len(act[0].LastLines) != 1 {
		t.Fatalf("active = %+v", act)
	}
	if !m.Clear("fatal:gunicorn", "gunicorn is RUNNING again") {
		t.Fatal("Clear of an active alert returned false")
	}
	ev = rec.next(t)
	if ev.Action != Resolve || ev.ResolveSummary != "gunicorn is RUNNING again" || ev.DedupKey() != "web1/fatal:gunicorn" {
		t.Fatalf("resolve = %+v", ev)
	}
	if m.Clear("fatal:gunicorn", "again") {
		t.Fatal("Clear of an inactive alert returned true")
	}
	rec.none(t, m)
	// After a resolve, the same condition triggers again.
	m.Set(fatal("gunicorn"))
	if ev := rec.next(t); ev.Action != Trigger {
		t.Fatalf("second trigger = %+v", ev)
	}
	// A sink counts an event as sent after its Send returned, a moment
	// after the receiver saw it.
	waitFor(t, func() bool { return m.Sinks()[0].Queued == 0 })
	if st := m.Sinks(); st[0].Sent != 3 || st[0].Failed != 0 {
		t.Fatalf("sink status = %+v", st)
	}
}

func TestActiveOrder(t *testing.T) {
	m := newTestManager(t, Config{}, nil)
	m.Set(Alert{Key: "disk_free:/var/log", Condition: CondDiskFree, Severity: Warning, Summary: "disk"})
	m.Set(fatal("celery"))
	m.Set(Alert{Key: "hostctl_started", Condition: CondStarted, Severity: Info, Summary: "started"})
	m.Set(fatal("gunicorn"))
	var keys []string
	for _, a := range m.Active() {
		keys = append(keys, a.Key)
	}
	want := "[fatal:celery fatal:gunicorn disk_free:/var/log hostctl_started]"
	if fmt.Sprint(keys) != want {
		t.Fatalf("order = %v, want %s", keys, want)
	}
}

func TestRepeatWhileActive(t *testing.T) {
	rec := newRec()
	m := newTestManager(t, Config{Sinks: []SinkConfig{sink("hook")}, Repeat: 200 * time.Millisecond}, map[string]Sink{"hook": rec})
	m.Set(fatal("gunicorn"))
	first := rec.next(t)
	rep := rec.next(t)
	if rep.Action != Trigger || !rep.Repeat || rep.Alert.Notified != 2 || rep.Alert.Since != first.Alert.Since {
		t.Fatalf("repeat = %+v", rep)
	}
	if gap := rep.Time.Sub(first.Time); gap < 200*time.Millisecond {
		t.Fatalf("repeated after %s, want >= 200ms", gap)
	}
	m.Clear("fatal:gunicorn", "fixed")
	for ev := rec.next(t); ev.Action != Resolve; ev = rec.next(t) {
		if !ev.Repeat {
			t.Fatalf("unexpected %+v", ev)
		}
	}
}

func TestRetryThenDeliverInOrder(t *testing.T) {
	rec := newRec()
	rec.fail = func(try int, ev Event) error {
		if try <= 3 {
			return errors.New("connection refused")
		}
		return nil
	}
	m := newTestManager(t, Config{Sinks: []SinkConfig{sink("hook")}}, map[string]Sink{"hook": rec})
	m.Set(fatal("gunicorn"))
	m.Clear("fatal:gunicorn", "fixed")
	if ev := rec.next(t); ev.Action != Trigger {
		t.Fatalf("first delivered = %s, want the trigger (order kept)", ev.Action)
	}
	if ev := rec.next(t); ev.Action != Resolve {
		t.Fatalf("second delivered = %s", ev.Action)
	}
	waitFor(t, func() bool { return m.Sinks()[0].Sent == 2 })
	st := m.Sinks()[0]
	if st.Failed != 0 || st.LastError != "" {
		t.Fatalf("status = %+v", st)
	}
}

func TestGiveUpAfterRetryFor(t *testing.T) {
	rec := newRec()
	rec.fail = func(int, Event) error { return errors.New("503 Service Unavailable") }
	// Backoff is 10ms to 50ms: a second of retries is a few dozen tries,
	// at least 3 however late the timers fire on a busy machine.
	m := newTestManager(t, Config{Sinks: []SinkConfig{sink("hook")}, RetryFor: time.Second}, map[string]Sink{"hook": rec})
	m.Set(fatal("gunicorn"))
	waitFor(t, func() bool { return m.Sinks()[0].Failed == 1 })
	st := m.Sinks()[0]
	rec.mu.Lock()
	tries := rec.tries
	rec.mu.Unlock()
	if st.Sent != 0 || st.LastError != "503 Service Unavailable" || tries < 3 {
		t.Fatalf("status = %+v after %d tries", st, tries)
	}
}

func TestPermanentErrorIsNotRetried(t *testing.T) {
	rec := newRec()
	rec.fail = func(int, Event) error { return permanent(errors.New("400 Bad Request: invalid routing key")) }
	m := newTestManager(t, Config{Sinks: []SinkConfig{sink("hook")}}, map[string]Sink{"hook": rec})
	m.Set(fatal("gunicorn"))
	waitFor(t, func() bool { return m.Sinks()[0].Failed == 1 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.tries != 1 {
		t.Fatalf("tries = %d, want 1", rec.tries)
	}
}

// A receiver that hangs delays only its own sink: Set returns at once and
// the other sink gets its events; the hung sink's queue stays bounded and
// what does not fit is counted as failed.
func TestHungSinkBlocksNothing(t *testing.T) {
	hung, ok := newRec(), newRec()
	hung.block = make(chan struct{})
	defer close(hung.block)
	m := newTestManager(t, Config{Sinks: []SinkConfig{sink("hung"), sink("ok")}}, map[string]Sink{"hung": hung, "ok": ok})
	done := make(chan struct{})
	go func() {
		for i := range 200 {
			m.Set(fatal(fmt.Sprint("p", i)))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Set blocked behind a hung sink")
	}
	for range 200 {
		ok.next(t)
	}
	// 257 more fill the hung sink's queue (256, plus the one in flight
	// that may or may not have been taken): at least 200 of the 457 are
	// dropped and counted.
	for i := range 257 {
		m.Set(fatal(fmt.Sprint("q", i)))
	}
	st := m.Sinks()
	if st[0].Failed < 200 || st[0].Queued > 257 { // 256 queued + 1 in flight
		t.Fatalf("hung sink: %+v, want drops counted and a bounded queue", st[0])
	}
}

func TestConditionsFilter(t *testing.T) {
	pager, mail := newRec(), newRec()
	p := sink("pager")
	p.Conditions = []string{CondFatal}
	m := newTestManager(t, Config{Sinks: []SinkConfig{p, sink("mail")}}, map[string]Sink{"pager": pager, "mail": mail})
	m.Set(Alert{Key: "disk_free:/", Condition: CondDiskFree, Severity: Warning, Summary: "disk"})
	m.Set(fatal("gunicorn"))
	if ev := pager.next(t); ev.Alert.Condition != CondFatal {
		t.Fatalf("pager got %s", ev.Alert.Condition)
	}
	mail.next(t)
	mail.next(t)
	pager.none(t, m)
}

func TestTestSendsToEverySink(t *testing.T) {
	good, bad := newRec(), newRec()
	bad.fail = func(int, Event) error { return errors.New("535 authentication failed") }
	m := newTestManager(t, Config{Sinks: []SinkConfig{sink("good"), sink("bad")}}, map[string]Sink{"good": good, "bad": bad})
	res := m.Test(context.Background())
	if len(res) != 2 || !res[0].OK || res[1].OK || res[1].Error != "535 authentication failed" || res[0].Sink != "good" {
		t.Fatalf("results = %+v", res)
	}
	if ev := good.next(t); ev.Alert.Condition != CondTest || ev.Action != Trigger {
		t.Fatalf("test event = %+v", ev)
	}
	if len(m.Active()) != 0 {
		t.Fatal("a test alert became active")
	}
}

func TestApplyKeepsUnchangedSinksAndAlerts(t *testing.T) {
	a, b := newRec(), newRec()
	sinks := map[string]Sink{"a": a, "b": b}
	m := newTestManager(t, Config{Sinks: []SinkConfig{sink("a")}}, sinks)
	m.Set(fatal("gunicorn"))
	a.next(t)
	if err := m.Apply(Config{Sinks: []SinkConfig{sink("a"), sink("b")}, RetryFor: time.Second}); err != nil {
		t.Fatal(err)
	}
	if len(m.Active()) != 1 {
		t.Fatal("active alert lost on Apply")
	}
	m.Clear("fatal:gunicorn", "fixed")
	if ev := a.next(t); ev.Action != Resolve {
		t.Fatalf("a got %+v", ev)
	}
	if ev := b.next(t); ev.Action != Resolve {
		t.Fatalf("b got %+v", ev)
	}
	// A sink counts an event as sent after its Send returned, a moment
	// after the receiver saw it: Close waits for the sinks' goroutines.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.Close(ctx)
	if st := m.Sinks(); len(st) != 2 || st[0].Sent != 2 {
		t.Fatalf("sinks = %+v (the unchanged sink keeps its counters)", st)
	}
}

func TestCloseFlushesQueued(t *testing.T) {
	rec := newRec()
	m := newTestManager(t, Config{Sinks: []SinkConfig{sink("hook")}}, map[string]Sink{"hook": rec})
	for i := range 20 {
		m.Set(fatal(fmt.Sprint("p", i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.Close(ctx)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.events) != 20 {
		t.Fatalf("delivered %d of 20 before Close returned", len(rec.events))
	}
	m.Set(fatal("late")) // after Close: ignored, no panic
}

// A restarted hostctl remembers what it told the receivers: an alert that
// is still true is not sent again, one that cleared meanwhile is resolved.
func TestActiveAlertsSurviveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.json")
	rec := newRec()
	cfg := Config{Sinks: []SinkConfig{sink("hook")}}
	m := newTestManagerAt(t, path, cfg, map[string]Sink{"hook": rec})
	m.Set(fatal("gunicorn"))
	m.Set(fatal("celery"))
	m.Set(Alert{Key: "disk_free:/", Condition: CondDiskFree, Severity: Warning, Summary: "disk"})
	first := rec.next(t)
	rec.next(t)
	rec.next(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.Close(ctx)

	rec2 := newRec()
	m2 := newTestManagerAt(t, path, cfg, map[string]Sink{"hook": rec2})
	m2.Set(fatal("gunicorn")) // still true: not sent again
	act := m2.Active()
	if len(act) != 1 || act[0].Key != "fatal:gunicorn" || !act[0].Since.Equal(first.Alert.Since) {
		t.Fatalf("active after restart = %+v, want gunicorn since %s", act, first.Alert.Since)
	}
	m2.Clear("fatal:celery", "celery is RUNNING again") // cleared: resolved at once
	if ev := rec2.next(t); ev.Action != Resolve || ev.Alert.Key != "fatal:celery" {
		t.Fatalf("got %+v, want the resolve of fatal:celery", ev)
	}
	m2.ResolveInherited("cleared while hostctl was restarting")
	if ev := rec2.next(t); ev.Action != Resolve || ev.Alert.Key != "disk_free:/" || ev.ResolveSummary != "cleared while hostctl was restarting" {
		t.Fatalf("got %+v, want the resolve of disk_free:/", ev)
	}
	rec2.none(t, m2)

	// Another host's file is not ours to resolve.
	m3, err := New(cfg, Options{Host: "web2", StatePath: path, newSink: func(SinkConfig) (Sink, error) { return newRec(), nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer m3.Close(ctx)
	if len(m3.inherited) != 0 {
		t.Fatalf("web2 inherited web1's alerts: %v", m3.inherited)
	}
}
