package alert

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/supervisor/trust"
)

// Options configure a Manager.
type Options struct {
	// Logger gets one line per trigger, resolve and failed delivery.
	// Default: no logging.
	Logger *zap.Logger
	// Host is the host name sent with every event. Default: os.Hostname.
	Host string
	// QueueSize is how many events each sink holds while it cannot
	// deliver (a receiver down, retries pending); past it new events are
	// dropped and counted as failed. Default: 256.
	QueueSize int
	// MinBackoff and MaxBackoff bound the wait between delivery attempts
	// (doubling, with jitter). Defaults: 1s and 1m.
	MinBackoff, MaxBackoff time.Duration

	// StatePath is a file where the active alerts are kept, so that a
	// hostctl that restarts knows what it had told the receivers: an
	// alert that is still true is not sent again, and one that cleared
	// while hostctl was down is resolved (ResolveInherited). "": not kept.
	StatePath string

	// newSink builds a sink (tests put fakes in); default newSink.
	newSink func(SinkConfig) (Sink, error)
}

// Manager keeps the active alerts and delivers their triggers and
// resolves to the sinks. Set and Clear never block: each sink has its own
// goroutine and bounded queue, so a receiver that hangs delays only its
// own messages, and never supervision or the proxy.
type Manager struct {
	log  *zap.Logger
	host string
	opts Options

	mu     sync.Mutex // guards cfg, active, sinks, beats, applied, closed
	cfg    Config
	active map[string]*Alert
	sinks  []*worker
	beats  []*beat
	// applied is set by the first Apply (New's): heartbeats started
	// later (by a reload) send no start form, since hostctl did not
	// restart.
	applied bool
	closed  bool

	// inherited are the alerts active when the previous hostctl stopped
	// (read from StatePath), until they are triggered again or resolved.
	inherited map[string]*Alert

	persist     chan struct{} // wakes the persist loop
	persistDone chan struct{} // closed when it has saved for the last time
	kick        chan struct{} // wakes the repeat loop after Apply
	stop        chan struct{}
	done        chan struct{}
}

// worker delivers the events of one sink, in order.
type worker struct {
	cfg   SinkConfig
	sink  Sink
	queue chan Event
	stop  chan struct{} // closed to stop the worker (Apply replaced it, Close)
	done  chan struct{}

	sent, failed atomic.Uint64
	queued       atomic.Int64
	lastErr      atomic.Pointer[string]
}

// New builds the sinks of cfg (validated by Config.Validate) and starts
// delivering. Close stops it.
func New(cfg Config, opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Host == "" {
		opts.Host, _ = os.Hostname()
	}
	if opts.newSink == nil {
		opts.newSink = newSink
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 256
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(time.Minute, opts.MinBackoff)
	}
	m := &Manager{
		log:         opts.Logger,
		host:        opts.Host,
		opts:        opts,
		active:      map[string]*Alert{},
		kick:        make(chan struct{}, 1),
		persist:     make(chan struct{}, 1),
		persistDone: make(chan struct{}),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	m.inherited = m.load()
	if err := m.Apply(cfg); err != nil {
		return nil, err
	}
	go m.repeatLoop()
	if opts.StatePath != "" {
		go m.persistLoop()
	} else {
		close(m.persistDone)
	}
	return m, nil
}

// stateFile is what StatePath holds.
type stateFile struct {
	Host   string  `json:"host"`
	Alerts []Alert `json:"alerts"`
}

// load reads the alerts a previous hostctl left active.
func (m *Manager) load() map[string]*Alert {
	out := map[string]*Alert{}
	if m.opts.StatePath == "" {
		return out
	}
	b, err := trust.ReadOwnFile(m.opts.StatePath)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("alerts: cannot read the alerts of the previous run", zap.Error(err))
		}
		return out
	}
	var sf stateFile
	if err := json.Unmarshal(b, &sf); err != nil {
		m.log.Warn("alerts: the alerts of the previous run are unreadable; starting afresh", zap.String("file", m.opts.StatePath), zap.Error(err))
		return out
	}
	if sf.Host != m.host {
		return out // another host's dedup keys: never resolve them from here
	}
	for i := range sf.Alerts {
		a := sf.Alerts[i]
		out[a.Key] = &a
	}
	return out
}

// persistLoop writes the active alerts to StatePath after each change, off
// the callers' goroutines (a slow disk never delays Set).
func (m *Manager) persistLoop() {
	defer close(m.persistDone)
	for {
		select {
		case <-m.stop:
			m.save()
			return
		case <-m.persist:
			m.save()
		}
	}
}

func (m *Manager) save() {
	m.mu.Lock()
	sf := stateFile{Host: m.host, Alerts: make([]Alert, 0, len(m.active)+len(m.inherited))}
	for _, a := range m.active {
		sf.Alerts = append(sf.Alerts, *a)
	}
	for _, a := range m.inherited {
		sf.Alerts = append(sf.Alerts, *a)
	}
	m.mu.Unlock()
	b, err := json.Marshal(sf)
	if err == nil {
		// O_EXCL temp file and rename: never through a name planted in
		// the state dir.
		err = trust.WriteOwnFile(m.opts.StatePath, b, 0o600)
	}
	if err != nil {
		m.log.Warn("alerts: cannot save the active alerts", zap.Error(err))
	}
}

func (m *Manager) changedLocked() {
	select {
	case m.persist <- struct{}{}:
	default:
	}
}

// ResolveInherited sends the resolve of every alert the previous hostctl
// left active that has not been triggered again since: the daemon calls it
// once its programs have settled and a round of checks has run.
func (m *Manager) ResolveInherited(how string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	now := time.Now()
	for key, a := range m.inherited {
		delete(m.inherited, key)
		m.log.Info("alert resolved: "+how, zap.String("alert", key), zap.Duration("lasted", now.Sub(a.Since).Round(time.Second)))
		m.sendLocked(Event{Action: Resolve, Alert: *a, Host: m.host, Time: now, ResolveSummary: how})
	}
	m.changedLocked()
}

// Host is the host name sent with every event.
func (m *Manager) Host() string { return m.host }

// Apply replaces the config (a reload). Sinks whose config did not change
// keep their queue; the others are replaced, and the events still queued
// for a replaced sink are dropped with a log line. Active alerts are kept
// and are not sent again to new sinks until they repeat.
func (m *Manager) Apply(cfg Config) error {
	var built []*worker
	m.mu.Lock()
	old := m.sinks
	for _, sc := range cfg.Sinks {
		if i := slices.IndexFunc(old, func(w *worker) bool { return w != nil && reflect.DeepEqual(w.cfg, sc) }); i >= 0 {
			built = append(built, old[i])
			old[i] = nil
			continue
		}
		s, err := m.opts.newSink(sc)
		if err != nil {
			m.mu.Unlock()
			for _, w := range built {
				if !slices.Contains(m.sinks, w) {
					close(w.stop)
				}
			}
			return fmt.Errorf("alerts: sink %s: %w", sc.String(), err)
		}
		w := &worker{cfg: sc, sink: s, queue: make(chan Event, m.opts.QueueSize), stop: make(chan struct{}), done: make(chan struct{})}
		go m.deliver(w)
		built = append(built, w)
	}
	m.cfg = cfg
	m.sinks = built
	oldBeats := m.applyHeartbeatsLocked(cfg.Heartbeats)
	m.mu.Unlock()
	for _, b := range oldBeats {
		close(b.stop)
	}
	for _, w := range old {
		if w != nil {
			if n := w.queued.Load(); n > 0 {
				m.log.Warn("alerts: sink removed or changed by a reload; dropping its queued events",
					zap.String("sink", w.cfg.Name), zap.Int64("events", n))
			}
			close(w.stop)
		}
	}
	select {
	case m.kick <- struct{}{}:
	default:
	}
	return nil
}

// Set triggers the alert a.Key, unless it is already active: then its
// summary, severity and details are updated (lines and command too, when
// given) and nothing is sent (a receiver hears once per condition until it resolves, and again
// every Repeat while it lasts).
func (m *Manager) Set(a Alert) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	if cur, ok := m.active[a.Key]; ok {
		// Lines and command are costly to gather: a caller may leave
		// them out of an update.
		cur.Summary, cur.Severity, cur.Details = a.Summary, cmp.Or(a.Severity, cur.Severity), a.Details
		if a.LastLines != nil {
			cur.LastLines = a.LastLines
		}
		if a.Command != "" {
			cur.Command = a.Command
		}
		return
	}
	now := time.Now()
	a.Since, a.LastSent, a.Notified = now, now, 1
	if a.Severity == "" {
		a.Severity = Error
	}
	defer m.changedLocked()
	if old, ok := m.inherited[a.Key]; ok {
		// Still true after a restart of hostctl: the receivers were told
		// already; keep the count, and let repeat remind them.
		delete(m.inherited, a.Key)
		a.Since, a.LastSent, a.Notified = old.Since, old.LastSent, old.Notified
		m.active[a.Key] = &a
		m.log.Warn("alert still active after a restart of hostctl: "+a.Summary, zap.String("alert", a.Key))
		return
	}
	m.active[a.Key] = &a
	logAt := m.log.Warn
	if a.Severity == Info { // hostctl_started: news, not trouble
		logAt = m.log.Info
	}
	logAt("alert: "+a.Summary, zap.String("alert", a.Key), zap.String("condition", a.Condition), zap.String("severity", string(a.Severity)))
	m.sendLocked(Event{Action: Trigger, Alert: a, Host: m.host, Time: now})
}

// Clear resolves the alert key if it is active; how says how it cleared
// ("gunicorn is RUNNING again"). It reports whether it was active.
func (m *Manager) Clear(key, how string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.active[key]
	if !ok {
		// Left active by the previous hostctl and clear now.
		a, ok = m.inherited[key]
		delete(m.inherited, key)
	}
	if !ok || m.closed {
		return false
	}
	delete(m.active, key)
	m.changedLocked()
	now := time.Now()
	m.log.Info("alert resolved: "+how, zap.String("alert", key), zap.Duration("lasted", now.Sub(a.Since).Round(time.Second)))
	m.sendLocked(Event{Action: Resolve, Alert: *a, Host: m.host, Time: now, ResolveSummary: how})
	return true
}

// IsActive reports whether key is active.
func (m *Manager) IsActive(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.active[key]
	return ok
}

// Keys returns the keys of the active alerts.
func (m *Manager) Keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.active))
	for k := range m.active {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var severityRank = map[Severity]int{Critical: 0, Error: 1, Warning: 2, Info: 3}

// Active returns copies of the active alerts, the most severe first, then
// the oldest.
func (m *Manager) Active() []Alert {
	m.mu.Lock()
	out := make([]Alert, 0, len(m.active))
	for _, a := range m.active {
		out = append(out, *a)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Alert) int {
		return cmp.Or(cmp.Compare(severityRank[a.Severity], severityRank[b.Severity]), a.Since.Compare(b.Since), cmp.Compare(a.Key, b.Key))
	})
	return out
}

// Sinks returns each sink's delivery counters.
func (m *Manager) Sinks() []SinkStatus {
	m.mu.Lock()
	sinks := slices.Clone(m.sinks)
	m.mu.Unlock()
	out := make([]SinkStatus, 0, len(sinks))
	for _, w := range sinks {
		st := SinkStatus{Name: w.cfg.Name, Type: w.cfg.Type, Sent: w.sent.Load(), Failed: w.failed.Load(), Queued: int(w.queued.Load())}
		if e := w.lastErr.Load(); e != nil {
			st.LastError = *e
		}
		out = append(out, st)
	}
	return out
}

// Test sends a test alert to every sink at once, bypassing the queues,
// and waits for each answer (each bounded by its sink's timeout). A
// PagerDuty test is resolved right after, so that no incident stays open.
func (m *Manager) Test(ctx context.Context) []TestResult {
	m.mu.Lock()
	sinks := slices.Clone(m.sinks)
	m.mu.Unlock()
	out := make([]TestResult, len(sinks))
	var wg sync.WaitGroup
	for i, w := range sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			now := time.Now()
			a := Alert{
				Key: "test", Condition: CondTest, Severity: Info, Since: now, LastSent: now, Notified: 1,
				Summary: fmt.Sprintf("Test alert from hostctl on %s: alerts reach you through sink %q", m.host, w.cfg.Name),
				Command: "hostctl alerts",
			}
			start := time.Now()
			err := m.attempt(ctx, w, Event{Action: Trigger, Alert: a, Host: m.host, Time: now})
			if err == nil && w.cfg.Type == TypePagerDuty {
				err = m.attempt(ctx, w, Event{Action: Resolve, Alert: a, Host: m.host, Time: time.Now(), ResolveSummary: "test over"})
			}
			r := TestResult{Sink: w.cfg.Name, Type: w.cfg.Type, OK: err == nil, Milliseconds: time.Since(start).Milliseconds()}
			if err != nil {
				r.Error = err.Error()
			}
			out[i] = r
		}()
	}
	wg.Wait()
	return out
}

// Close stops accepting alerts, gives the queued events until ctx ends to
// be delivered (one attempt each, no more retries), then stops.
func (m *Manager) Close(ctx context.Context) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	sinks, beats := m.sinks, m.beats
	m.beats = nil
	m.mu.Unlock()
	for _, b := range beats {
		close(b.stop)
	}
	for _, b := range beats {
		<-b.done // a ping in flight is cancelled: at once
	}
	close(m.stop)
	<-m.done
	<-m.persistDone
	for _, w := range sinks {
		close(w.queue) // no sender left: sendLocked checks closed
	}
	for _, w := range sinks {
		select {
		case <-w.done:
		case <-ctx.Done():
		}
	}
	for _, w := range sinks {
		close(w.stop)
	}
}

// sendLocked queues ev for every sink that wants its condition; a full
// queue drops it and counts a failure.
func (m *Manager) sendLocked(ev Event) {
	for _, w := range m.sinks {
		if !w.cfg.Wants(ev.Alert.Condition) {
			continue
		}
		select {
		case w.queue <- ev:
			w.queued.Add(1)
		default:
			w.failed.Add(1)
			msg := fmt.Sprintf("queue full (%d events): dropped the %s of %s", cap(w.queue), ev.Action, ev.Alert.Key)
			w.lastErr.Store(&msg)
			m.log.Error("alerts: "+msg, zap.String("sink", w.cfg.Name))
		}
	}
}

// deliver is a sink's goroutine: it sends its events in order, retrying
// each with backoff for RetryFor.
func (m *Manager) deliver(w *worker) {
	defer close(w.done)
	for {
		select {
		case <-w.stop:
			return
		case ev, ok := <-w.queue:
			if !ok {
				return
			}
			m.deliverOne(w, ev)
			w.queued.Add(-1)
		}
	}
}

func (m *Manager) deliverOne(w *worker, ev Event) {
	m.mu.Lock()
	retryFor, closing := m.cfg.RetryFor, m.closed
	m.mu.Unlock()
	deadline := time.Now().Add(retryFor)
	wait := m.opts.MinBackoff
	for try := 1; ; try++ {
		err := m.attempt(context.Background(), w, ev)
		if err == nil {
			w.sent.Add(1)
			w.lastErr.Store(nil)
			m.log.Debug("alerts: delivered", zap.String("sink", w.cfg.Name), zap.String("action", string(ev.Action)), zap.String("alert", ev.Alert.Key), zap.Int("try", try))
			return
		}
		msg := err.Error()
		w.lastErr.Store(&msg)
		// Half to all of wait, so that sinks of many hosts that failed
		// together do not retry together.
		d := wait/2 + rand.N(wait/2+1)
		if IsPermanent(err) || closing || time.Now().Add(d).After(deadline) {
			w.failed.Add(1)
			why := "gave up after retrying for " + retryFor.String()
			if IsPermanent(err) {
				why = "the receiver refused it; not retrying"
			} else if closing {
				why = "hostctl is stopping"
			}
			m.log.Error("alerts: could not deliver the "+string(ev.Action)+" of "+ev.Alert.Key+": "+why,
				zap.String("sink", w.cfg.Name), zap.Int("tries", try), zap.Error(err))
			return
		}
		m.log.Warn("alerts: delivery failed; retrying", zap.String("sink", w.cfg.Name), zap.String("alert", ev.Alert.Key),
			zap.Int("try", try), zap.Duration("retry_in", d.Round(time.Millisecond)), zap.Error(err))
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-w.stop:
			t.Stop()
			w.failed.Add(1)
			return
		}
		wait = min(wait*2, m.opts.MaxBackoff)
		m.mu.Lock()
		closing = m.closed
		m.mu.Unlock()
	}
}

// attempt is one delivery, bounded by the sink's timeout and ctx.
func (m *Manager) attempt(ctx context.Context, w *worker, ev Event) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	err := w.sink.Send(ctx, ev)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return fmt.Errorf("no answer within %s", w.cfg.Timeout)
	}
	return err
}

// repeatLoop re-sends the trigger of every alert that lasts Repeat past
// its last sending.
func (m *Manager) repeatLoop() {
	defer close(m.done)
	for {
		m.mu.Lock()
		repeat := m.cfg.Repeat
		m.mu.Unlock()
		var t *time.Timer
		var tc <-chan time.Time
		if repeat > 0 {
			// Check often enough that a repeat is at most a tenth late.
			t = time.NewTimer(min(max(repeat/10, 10*time.Millisecond), time.Minute))
			tc = t.C
		}
		select {
		case <-m.stop:
			if t != nil {
				t.Stop()
			}
			return
		case <-m.kick:
			if t != nil {
				t.Stop()
			}
			continue
		case <-tc:
		}
		m.mu.Lock()
		now := time.Now()
		for _, a := range m.active {
			if m.cfg.Repeat > 0 && now.Sub(a.LastSent) >= m.cfg.Repeat {
				a.LastSent = now
				a.Notified++
				m.log.Warn("alert still active: "+a.Summary, zap.String("alert", a.Key), zap.Duration("for", now.Sub(a.Since).Round(time.Second)))
				m.sendLocked(Event{Action: Trigger, Alert: *a, Host: m.host, Time: now, Repeat: true})
			}
		}
		m.mu.Unlock()
	}
}

// applyHeartbeatsLocked starts the heartbeats of a new config and returns
// the running ones to stop. A heartbeat whose table did not change keeps
// its goroutine and schedule; a changed one is replaced by one whose first
// ping is due when the old one's next was (or sooner, if its interval is
// now shorter): a reload makes no gap and no second schedule. A new one
// pings at once; at hostctl's start, each sends its start form first.
func (m *Manager) applyHeartbeatsLocked(cfgs []Heartbeat) (stop []*beat) {
	if m.closed {
		return nil
	}
	old := m.beats
	var beats []*beat
	now := time.Now()
	for _, hc := range cfgs {
		if i := slices.IndexFunc(old, func(b *beat) bool { return b != nil && reflect.DeepEqual(b.cfg, hc) }); i >= 0 {
			beats = append(beats, old[i])
			old[i] = nil
			continue
		}
		first := now
		if i := slices.IndexFunc(old, func(b *beat) bool { return b != nil && b.cfg.Name == hc.Name }); i >= 0 {
			if due := old[i].nextDue(); due.After(now) {
				first = due
				if limit := now.Add(hc.Interval); first.After(limit) {
					first = limit
				}
			}
		}
		b := newBeat(hc, m.log, m.critical)
		go b.run(first, !m.applied)
		beats = append(beats, b)
	}
	m.applied = true
	m.beats = beats
	for _, b := range old {
		if b != nil {
			stop = append(stop, b)
		}
	}
	return stop
}

// critical reports whether a critical alert is active, and the summary
// of the oldest one.
func (m *Manager) critical() (bool, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var oldest *Alert
	for _, a := range m.active {
		if a.Severity == Critical && (oldest == nil || a.Since.Before(oldest.Since)) {
			oldest = a
		}
	}
	if oldest == nil {
		return false, ""
	}
	return true, oldest.Summary
}

// Heartbeats returns each heartbeat's status, in config order.
func (m *Manager) Heartbeats() []HeartbeatStatus {
	m.mu.Lock()
	beats := slices.Clone(m.beats)
	m.mu.Unlock()
	out := make([]HeartbeatStatus, 0, len(beats))
	for _, b := range beats {
		out = append(out, b.status())
	}
	return out
}
