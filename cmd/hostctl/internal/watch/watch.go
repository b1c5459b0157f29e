// Package watch owns what hostctl alerts about and when each alert
// resolves: the program rules (fatal, crash loop with hysteresis, health
// and memory restarts that resolve after settle, log_dropped, started),
// the host rules (memory, disk, keep_free, upstreams_down, TLS expiry and
// renewal) and the sampling of the host's memory and disks. It reads the
// supervisor, the log manager, the proxy and the config through small
// interfaces, with an injected clock, and calls the alert manager's Set
// and Clear; the daemon only wires it.
package watch

import (
	"context"
	"fmt"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/front"
	"github.com/hostctl/hostctl/proxy"
	"github.com/hostctl/hostctl/supervisor"
)

// Supervisor is what the rules read of the supervisor.
type Supervisor interface {
	Status(names ...string) ([]supervisor.Status, error)
	// Dropped is how many bytes of the process's output were dropped.
	Dropped(name string) uint64
	// Log is the process's log stream ("stdout", "stderr"), nil if none.
	Log(name, stream string) (supervisor.LogStream, error)
	// Changed is closed at the next change of any status.
	Changed() <-chan struct{}
	// WaitSettled waits until every autostart program has settled.
	WaitSettled(ctx context.Context) error
}

// Logs is what the rules read of the log manager.
type Logs interface {
	KeepFreePaused() (paused bool, reason string)
}

// Proxy is what the rules read of the proxy's owner.
type Proxy interface {
	// Status is the proxy's state; configured is false without [proxy].
	Status() (st proxy.Status, info string, configured bool)
	// Ready is closed once the proxy's first start is over.
	Ready() <-chan struct{}
}

// Alerts is the alert manager (*alert.Manager): Set and Clear never block.
type Alerts interface {
	Set(a alert.Alert)
	Clear(key, how string) bool
	IsActive(key string) bool
	Keys() []string
	Host() string
	ResolveInherited(how string)
}

// Host samples the machine (Machine).
type Host interface {
	Memory() (MemoryInfo, error)
	Disk(path string) (DiskInfo, error)
}

// Config is what the rules take from the config file; Options.Config
// returns the current one (a reload replaces it).
type Config struct {
	Alerts alert.Config
	// LogDir is [log] dir: always watched for disk space.
	LogDir string
	// Proxy is the [proxy] section, nil without one.
	Proxy *proxy.Config
	// Links are which programs serve which upstream: upstreams_down
	// names them.
	Links front.Links
	// Programs is how many programs the config has (the started alert).
	Programs int
}

// Options for New; every field is required but Host, Dial and Now.
type Options struct {
	Supervisor Supervisor
	Logs       Logs
	Proxy      Proxy
	Alerts     Alerts
	Config     func() Config
	// StatusLine is the one-line summary of the programs ("5 running, 0
	// fatal") the started alert resolves with.
	StatusLine func() string
	// Host samples memory and disks. Default Machine{}.
	Host Host
	// Dial tells whether an upstream accepts connections. Default
	// proxy.DialUpstream.
	Dial func(ctx context.Context, addr string) error
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Watcher runs the rules. Run owns its memory of what it saw; CertEvent
// may be called from any goroutine (it only calls Alerts).
type Watcher struct {
	sup    Supervisor
	logs   Logs
	proxy  Proxy
	m      Alerts
	config func() Config
	status func() string
	host   Host
	dial   func(ctx context.Context, addr string) error
	now    func() time.Time

	rules *logRules

	// Owned by Run (or a test calling check).
	progs map[string]*progAlerts
	seen  hostAlerts
}

// New returns a watcher; Run starts it.
func New(o Options) *Watcher {
	w := &Watcher{sup: o.Supervisor, logs: o.Logs, proxy: o.Proxy, m: o.Alerts, config: o.Config, status: o.StatusLine,
		host: o.Host, dial: o.Dial, now: o.Now, progs: map[string]*progAlerts{}}
	if w.host == nil {
		w.host = Machine{}
	}
	if w.dial == nil {
		w.dial = proxy.DialUpstream
	}
	if w.now == nil {
		w.now = time.Now
	}
	w.rules = newLogRules(w.m, w.now)
	return w
}

// Run checks the rules on every change of a program's status and on a
// ticker until ctx ends; it also sends "hostctl started" (Started).
func (w *Watcher) Run(ctx context.Context) {
	go w.Started(ctx)
	go w.rules.run(ctx)
	for {
		ch := w.sup.Changed()
		cfg := w.config()
		w.check(cfg, w.now())
		// Program alerts resolve after settle: look again often enough
		// that the resolve is at most a quarter of settle late.
		tick := min(cfg.Alerts.CheckInterval, max(cfg.Alerts.Settle/4, 100*time.Millisecond))
		t := time.NewTimer(tick)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
}

// LogRuleDropped is how many bytes of program output the log rules did
// not read because their queue was full (the output itself was written).
func (w *Watcher) LogRuleDropped() uint64 { return w.rules.Dropped() }

// check is one round: every program, and the host once check_interval
// has passed since its last check.
func (w *Watcher) check(cfg Config, now time.Time) {
	w.checkPrograms(cfg, now)
	w.checkHost(cfg, now)
}

// Started sends "hostctl started" (unless [alerts] started = false) and
// resolves it once the autostart programs have settled and the proxy's
// first start is over. Then, after two rounds of host checks and settle,
// it resolves the alerts the previous hostctl left active that no check
// raised again.
func (w *Watcher) Started(ctx context.Context) {
	cfg := w.config()
	if cfg.Alerts.Started {
		w.m.Set(alert.Alert{
			Key: alert.CondStarted, Condition: alert.CondStarted, Severity: alert.Info,
			Summary: fmt.Sprintf("hostctl started on %s (%d programs): the machine rebooted, or hostctl was restarted", w.m.Host(), cfg.Programs),
			Command: "hostctl status",
		})
	}
	if w.sup.WaitSettled(ctx) != nil {
		return
	}
	select {
	case <-w.proxy.Ready():
	case <-ctx.Done():
		return
	}
	w.m.Clear(alert.CondStarted, "hostctl is up: "+w.status())
	t := time.NewTimer(2*cfg.Alerts.CheckInterval + cfg.Alerts.Settle)
	defer t.Stop()
	select {
	case <-t.C:
		w.m.ResolveInherited("cleared while hostctl was restarting")
	case <-ctx.Done():
	}
}
