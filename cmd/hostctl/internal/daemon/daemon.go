// Package daemon is `hostctl run`: it wires the supervisor, the log
// manager, the front (internal/front: the proxy's owner, health_path, the
// drain), the alert rules (internal/watch) and the admin API together,
// and owns the lifecycle: start, reload, shutdown, signals and sd_notify.
// Policy (when to alert, which program serves which upstream, when the
// proxy starts) lives in the packages it wires, not here.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/check"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/config"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/control"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/front"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/metrics"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/watch"
	"github.com/hostctl/hostctl/supervisor"
	"github.com/hostctl/hostctl/supervisor/logfile"
	"github.com/hostctl/hostctl/supervisor/trust"
)

// Options for Run.
type Options struct {
	ConfigPath string
	LogFormat  string // auto, console, json
	LogLevel   string // debug, info, warn, error
	// ShutdownTimeout bounds the whole shutdown; past it, what is left is
	// killed. Default: the longest stop chain plus a margin.
	ShutdownTimeout time.Duration
}

// Daemon is a running hostctl.
type Daemon struct {
	opts   Options
	log    *zap.Logger
	level  zap.AtomicLevel
	logs   *logfile.Manager
	ownLog *logfile.Stream
	sup    *supervisor.Supervisor

	proxy *front.ProxyOwner // the web front; set before the admin API serves
	front *front.Front      // health_path and hostctl drain (internal/front)

	mu  sync.Mutex // guards cfg (replaced on reload)
	cfg *config.File

	reloadMu  sync.Mutex // one reload at a time; guards deploying
	deploying bool       // a deploy runs (deploy.go): reloads are refused

	alerts  *alert.Manager   // active alerts and their delivery
	deploys *metrics.Deploys // how the deploys ended (deploys.go)
	watch   *watch.Watcher   // what to alert about (internal/watch)
	checks  *check.Manager   // the [check.NAME] probes of services hostctl does not run
	admin   *admin           // the admin API (admin.go)
	notify  notifier         // what systemd was told (notify.go)

	stopRun context.CancelCauseFunc // ends the run with a cause (a required program's FATAL)
}

// Run loads the config and runs until ctx ends (SIGTERM/SIGINT), then stops
// every program in reverse dependency order. A bad config starts nothing.
func Run(ctx context.Context, opts Options) error {
	// SIGHUP and SIGUSR1 are caught from the start: while start() runs,
	// Go's default action for them would kill hostctl (a reload or a
	// logrotate during a slow boot). serve handles them once it runs.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		return err
	}
	// The blue_green programs run in the slot of the live release.
	slots, err := slotsFromState(cfg)
	if err != nil {
		return fmt.Errorf("deploy state: %w", err)
	}
	cfg = cfg.Resolve(slots)
	// A required program's FATAL ends the run like SIGTERM, with its
	// cause (container.go).
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	d := &Daemon{opts: opts, cfg: cfg, stopRun: stop}
	d.notify.send = d.sdNotify
	setGC()
	if err := d.start(ctx); err != nil {
		return err
	}
	err = d.serve(ctx, sigs)
	if rf, ok := errors.AsType[*RequiredFatalError](context.Cause(ctx)); ok {
		return errors.Join(rf, err)
	}
	return err
}

func (d *Daemon) start(ctx context.Context) error {
	cfg := d.cfg
	var err error
	// A provisional logger until the log dir is known to work.
	if d.log, d.level, err = NewLogger(d.opts.LogFormat, d.opts.LogLevel, nil); err != nil {
		return err
	}
	supervisor.ProtectFromOOM(d.log) // the OOM killer takes a program, not hostctl (its programs start at their own value)
	// Root believes and acts on what the state dir holds (process group
	// records, the drain): one that someone else made first, or can write,
	// is refused, not used.
	if err := trust.PrivateDir(cfg.Admin.StateDir, 0o700, -1); err != nil {
		return fmt.Errorf("admin.state_dir: %w", err)
	}
	if d.logs, err = logfile.NewManager(cfg.Log, d.log); err != nil {
		return fmt.Errorf("log dir %s: %w", cfg.Log.Dir, err)
	}
	if cfg.Log.File {
		d.ownLog, err = d.logs.Open(filepath.Join(cfg.Log.Dir, logfile.OwnLogName), rotationFor(cfg.Log, nil), false)
		if err != nil {
			return fmt.Errorf("hostctl's own log: %w", err)
		}
		if d.log, d.level, err = NewLogger(d.opts.LogFormat, d.opts.LogLevel, d.ownLog); err != nil {
			return err
		}
	}
	logWarnings(d.log, cfg)

	d.front, err = front.New(front.Options{
		StateDir: cfg.Admin.StateDir,
		Programs: supervisorStatus{d},
		Proxy: func() front.Traffic {
			if p := d.proxy.Proxy(); p != nil {
				return p
			}
			return nil // not a typed nil in the interface
		},
		Pool: func() front.Pool {
			if d.proxy == nil {
				return nil // at the first Configure: none yet
			}
			if p := d.proxy.Proxy(); p != nil {
				return p
			}
			return nil
		},
		WaitFor: func(ctx context.Context, name string, cond func(supervisor.Status) bool) (supervisor.Status, error) {
			return d.sup.WaitFor(ctx, name, cond)
		},
		Logger: d.log,
	})
	if err != nil {
		return err
	}
	d.front.Configure(healthPath(cfg), cfg.Links())
	if draining, since := d.front.Draining(); draining {
		d.log.Warn("draining (hostctl drain before the last stop): health_path answers 503 until hostctl undrain", zap.Time("since", since))
	}

	if d.alerts, err = alert.New(cfg.Alerts, alert.Options{Logger: d.log.Named("alerts"), StatePath: filepath.Join(cfg.Admin.StateDir, "alerts.json")}); err != nil {
		return err
	}

	d.deploys = metrics.NewDeploys(filepath.Join(cfg.Admin.StateDir, "deploys.json"), d.log.Named("deploy"))

	keepCaddyInStateDir(cfg.Admin.StateDir) // container.go

	// Claim the admin socket before touching any program: if another
	// hostctl serves it, stop here.
	if err := d.listenAdmin(); err != nil {
		return err
	}

	// Become the reaper of our programs' orphans: they are reparented to
	// hostctl instead of init, and hostctl reaps them.
	if os.Getpid() == 1 || supervisor.BecomeSubreaper() == nil {
		supervisor.EnableReapAll(func(pid int, ws syscall.WaitStatus) {
			d.log.Debug("reaped orphan", zap.Int("pid", pid))
		})
	}

	d.sup, err = supervisor.New(cfg.ProgramList(), supervisor.Options{
		Logger:   d.log,
		StateDir: cfg.Admin.StateDir,
		LogDir:   cfg.Log.Dir,
		Logs:     &logOpener{d: d},
		// As PID 1 the kernel kills every process of the namespace when
		// hostctl dies: no guard needed (and no /bin/sh for it).
		Guard: os.Getpid() != 1,
		// Before a stop, the front takes the instance out of the proxy.
		BeforeStop: d.front.BeforeStop,
	})
	if err != nil {
		return err
	}
	if n := d.sup.KillSurvivors(); n > 0 {
		d.log.Warn("killed processes left over from an earlier hostctl", zap.Int("count", n))
	}
	d.sup.Start()
	d.warnGrace()
	go d.watchRequired(ctx, d.stopRun)
	d.watch = watch.New(watch.Options{
		Supervisor: d.sup,
		Logs:       d.logs,
		Proxy:      proxyWatch{d},
		Alerts:     d.alerts,
		Config:     d.watchConfig,
		StatusLine: d.statusLine,
	})
	d.reassertDeployAlerts() // deploys.go
	// The proxy starts in the background once its upstreams are ready; if
	// it cannot (a port is taken), the programs keep running and status
	// says why. Its owner exists before the admin API can ask about it or
	// reload it.
	d.checks = check.New(ctx, check.Options{Alerts: d.alerts, Logger: d.log.Named("checks")})
	d.checks.Apply(cfg.Checks)
	d.proxy = front.NewProxyOwner(ctx, d.log, d.logs, d.sup, proxyConfig(cfg), d.watch.CertEvent, d.front.SiteHealth)
	d.serveAdmin()
	d.log.Info("hostctl started", zap.String("config", cfg.Path), zap.Int("programs", len(cfg.Programs)),
		zap.String("log_dir", cfg.Log.Dir), zap.String("socket", cfg.Admin.Socket), zap.Int("pid", os.Getpid()))
	if err := d.sup.StartAutostart(ctx); err != nil {
		if ctx.Err() != nil {
			// SIGTERM while the start commands were being sent: serve
			// sees ctx done and stops what started, in order.
			return nil
		}
		return err
	}
	return nil
}

// serve handles signals until ctx ends, then shuts down.
func (d *Daemon) serve(ctx context.Context, sigs <-chan os.Signal) error {
	go d.notifyWhenReady(ctx)
	go d.watch.Run(ctx)
	wd := d.startWatchdog()
	defer wd.stop()
	for {
		select {
		case <-wd.c():
			d.watchdogPing()
		case <-ctx.Done():
			return d.shutdown()
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				if diff, err := d.Reload(context.Background()); err != nil {
					d.log.Error("reload failed; still running the previous config", zap.Error(err))
				} else {
					d.log.Info("reloaded", zap.Strings("added", diff.Added), zap.Strings("changed", diff.Changed), zap.Strings("removed", diff.Removed), zap.String("proxy", diff.Proxy))
				}
			case syscall.SIGUSR1:
				if err := d.logs.Reopen(); err != nil {
					d.log.Error("reopening log files", zap.Error(err))
				} else {
					d.log.Info("reopened log files")
				}
			}
		}
	}
}

func (d *Daemon) shutdown() error {
	d.notifyStopping()
	d.log.Info("shutting down: stopping programs in reverse dependency order")
	grace := d.shutdownGrace()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	d.proxy.Stop() // first: no new requests for programs that are stopping
	err := d.sup.Shutdown(ctx)
	switch {
	case err != nil && ctx.Err() != nil:
		// Like a program's stop_timeout, for the whole stop: what is
		// still up was killed, which is how the stop ends.
		d.log.Warn("the stop grace ran out: every program still up was killed (SIGKILL)", zap.Duration("grace", grace), zap.Strings("programs", d.stillUp()))
		err = nil
	case err != nil:
		d.log.Error("shutdown", zap.Error(err))
	}
	d.closeAdmin()
	// Deliver what is queued (a FATAL seen just before the stop), briefly.
	actx, acancel := context.WithTimeout(context.Background(), 5*time.Second)
	d.alerts.Close(actx)
	acancel()
	d.log.Info("all programs stopped; bye")
	d.log.Sync()
	if d.ownLog != nil {
		d.ownLog.Close()
	}
	d.logs.Close()
	return err
}

func (d *Daemon) config() *config.File {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Reload re-reads the config file and applies the difference. An invalid
// file changes nothing and its errors are returned.
func (d *Daemon) Reload(ctx context.Context) (control.Reloaded, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if d.deploying {
		return control.Reloaded{}, errDeploying
	}
	defer d.notifyReloading()()
	old := d.config()
	cfg, err := config.Load(old.Path)
	if err != nil {
		return control.Reloaded{}, err
	}
	cfg = cfg.Resolve(old.Slots())
	logWarnings(d.log, cfg)
	if cfg.Log != old.Log || cfg.Admin != old.Admin {
		d.log.Warn("[log] and [admin] changes take effect at the next start of hostctl")
	}
	if aerr := d.alerts.Apply(cfg.Alerts); aerr != nil {
		return control.Reloaded{}, aerr
	}
	if cd := d.checks.Apply(cfg.Checks); len(cd.Added)+len(cd.Changed)+len(cd.Removed) > 0 {
		d.log.Info("checks reloaded", zap.Strings("added", cd.Added), zap.Strings("changed", cd.Changed), zap.Strings("removed", cd.Removed))
	}
	diff, err := d.sup.Reload(ctx, cfg.ProgramList())
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	d.front.Configure(healthPath(cfg), cfg.Links())
	// The proxy last (see notify.go): it never waits for upstreams here.
	proxyRes, perr := d.proxy.Reload(ctx, proxyConfig(cfg))
	if perr != nil {
		err = errors.Join(err, perr)
	}
	d.front.ProxyApplied()
	return control.Reloaded{Diff: diff, Proxy: proxyRes}, err
}

// logWarnings logs what the config has that is not wrong but worth fixing
// (a secret file every user can read).
func logWarnings(log *zap.Logger, cfg *config.File) {
	for _, w := range cfg.Warnings {
		log.Warn("config: "+w.Msg, zap.String("key", w.Key), zap.String("file", w.File), zap.Int("line", w.Line))
	}
}

// longestStopChain is the longest sum of stop_timeouts along a dependency
// chain: shutdown stops dependents first, so this bounds a graceful stop.
func longestStopChain(progs map[string]*supervisor.ProgramConfig) time.Duration {
	memo := map[string]time.Duration{}
	var chain func(n string, depth int) time.Duration
	chain = func(n string, depth int) time.Duration {
		if v, ok := memo[n]; ok {
			return v
		}
		p := progs[n]
		if p == nil || depth > len(progs) {
			return 0
		}
		// n stops after every program that depends on it.
		var worst time.Duration
		for m, q := range progs {
			for _, dep := range q.DependsOn {
				if dep == n {
					worst = max(worst, chain(m, depth+1))
				}
			}
		}
		memo[n] = worst + p.StopTimeout
		return memo[n]
	}
	var longest time.Duration
	for n := range progs {
		longest = max(longest, chain(n, 0))
	}
	return longest
}

// logOpener opens program log streams through the log manager, with the
// program's rotation overrides merged over [log].
type logOpener struct{ d *Daemon }

func (o *logOpener) OpenLog(p *supervisor.ProcessConfig, stream, path string) (supervisor.LogStream, error) {
	if out := logfile.ConsoleTarget(stream, path); out != "" {
		c, err := o.d.logs.OpenConsole(p.Name, out, path) // stdout_log = "-": hostctl's own stdout
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	s, err := o.d.logs.Open(path, rotationFor(o.d.config().Log, p.Program), p.Program.Timestamps)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return s, nil
}

func rotationFor(l logfile.Config, p *supervisor.ProgramConfig) logfile.Rotation {
	r := l.Rotation()
	if p == nil {
		return r
	}
	if p.MaxSize != nil {
		r.MaxSize = *p.MaxSize
	}
	if p.MaxBackups != nil {
		r.MaxBackups = *p.MaxBackups
	}
	if p.MaxAge != nil {
		r.MaxAge = *p.MaxAge
	}
	if p.Compress != nil {
		r.Compress = *p.Compress
	}
	return r
}

// GC settings of the daemon, unless GOGC or GOMEMLIMIT in its environment
// say otherwise. The proxy allocates ~40 kB per request, nearly all of it
// garbage at once, over a live heap of ~10 MB: Go's default (GOGC=100)
// collects every few hundred requests. GOGC=400 cut the daemon's CPU per
// proxied request by about a sixth (scripts/bench/proxy_daemon.sh) for
// about 30 MB more RSS under load; the soft limit makes the collector work
// harder instead should the heap ever near it.
const (
	gcPercent   = 400
	memoryLimit = 512 << 20
)

func setGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
}
