package front

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/proxy"
	"github.com/hostctl/hostctl/supervisor"
	"github.com/hostctl/hostctl/supervisor/logfile"
)

// upstreamWait bounds the wait for the programs behind the proxy's
// upstreams; past it the proxy starts anyway (and serves the error page
// until they answer).
const upstreamWait = 5 * time.Minute

// ProxyConfig is what the proxy's owner takes from the config file.
type ProxyConfig struct {
	// Proxy is the [proxy] section; nil without one.
	Proxy *proxy.Config
	// StateDir is [admin] state_dir (the proxy's certificates).
	StateDir string
	// AccessLog is the access log's path; its rotation is Rotation.
	AccessLog string
	Rotation  logfile.Rotation
	// Links are which programs serve which upstream: the proxy's start
	// waits for those that serve its upstreams.
	Links Links
}

// Logs opens the proxy's access log (*logfile.Manager).
type Logs interface {
	Open(path string, rot logfile.Rotation, timestamps bool) (*logfile.Stream, error)
}

// Waiter is the supervisor as the proxy's start sees it.
type Waiter interface {
	Programs
	// WaitFor waits until the named process's status meets cond.
	WaitFor(ctx context.Context, name string, cond func(supervisor.Status) bool) (supervisor.Status, error)
}

// ProxyOwner runs the web front. One goroutine (run) owns the proxy.Proxy,
// its access log stream and the start that waits for the upstream
// programs; starting, reloading and stopping are commands to it, so they
// happen one at a time, in the order they were asked. Others read the
// view it publishes.
//
// The proxy starts as soon as the programs behind its upstreams have
// settled (RUNNING, or given up: then it serves the error page rather than
// refusing connections), without waiting for unrelated programs such as a
// slow rabbitmq. While it waits, status says "waiting for gunicorn". A
// reload while it waits replaces the pending start: the reloaded config is
// the one that starts, once the programs behind its own upstreams have
// settled (the wait starts over), and the old config is never applied. A
// stop while it waits starts nothing.
type ProxyOwner struct {
	log  *zap.Logger
	logs Logs
	sup  Waiter
	ctx  context.Context // the daemon's: when it ends, pending starts give up
	// onCert gets the proxy's certificate outcomes (tls_renewal_failed).
	onCert func(proxy.CertEvent)
	// siteHealth answers health_path (Front.SiteHealth).
	siteHealth func(upstreams []string) (bool, string)

	cmds    chan proxyCmd
	settled chan uint64   // from a waiter: the upstreams of start gen settled
	done    chan struct{} // closed when run returns
	ready   chan struct{} // closed when the first start is over (see Ready)
	view    atomic.Pointer[proxyView]

	// Owned by run (set up by newProxyOwner before run starts).
	p         *proxy.Proxy    // nil until a [proxy] section is first seen
	accessLog *logfile.Stream // p's access log; nil when off
	cfg       *ProxyConfig    // the config last given
	running   *ProxyConfig    // the config p runs; nil when it runs none
	pending   *pendingStart   // the start waiting for upstreams, if any
	gen       uint64          // of the last pending start
	waiters   sync.WaitGroup  // pending starts' waiter goroutines
	readyDone bool            // ready is closed
}

// proxyView is what the owner publishes for the admin API and systemd.
type proxyView struct {
	configured bool         // the config has a [proxy] section
	p          *proxy.Proxy // nil before the first [proxy] section
	info       string       // why the proxy is not running ("" when it is)
}

// pendingStart is a start waiting for the programs behind its upstreams.
type pendingStart struct {
	cfg    *ProxyConfig
	gen    uint64
	cancel context.CancelFunc // ends its waiter
}

type proxyCmd struct {
	stop  bool         // stop the proxy and end run; else reload cfg
	swap  bool         // reload cfg only by swapping upstream lists (Switch)
	cfg   *ProxyConfig // the new config (reload)
	reply chan proxyReply
}

type proxyReply struct {
	res string
	err error
}

// errProxyStopped answers a reload that comes after the proxy was stopped
// (hostctl is shutting down).
var errProxyStopped = errors.New("the proxy is stopped: hostctl is shutting down")

// NewProxyOwner sets up the proxy for cfg (its start waits for the
// upstream programs in the background) and starts the owner goroutine.
// Call it before the admin API serves, with the supervisor started; ctx
// ending gives up a start still waiting. onCert gets the proxy's
// certificate outcomes, siteHealth answers health_path.
func NewProxyOwner(ctx context.Context, log *zap.Logger, logs Logs, sup Waiter, cfg *ProxyConfig,
	onCert func(proxy.CertEvent), siteHealth func([]string) (bool, string)) *ProxyOwner {
	o := &ProxyOwner{
		log: log, logs: logs, sup: sup, ctx: ctx, onCert: onCert, siteHealth: siteHealth,
		cmds:    make(chan proxyCmd),
		settled: make(chan uint64),
		done:    make(chan struct{}),
		ready:   make(chan struct{}),
	}
	o.publish("")
	if _, err := o.reload(cfg); err != nil {
		o.log.Error("the proxy did not start; programs keep running", zap.Error(err))
	}
	o.checkReady()
	go o.run()
	return o
}

func (o *ProxyOwner) run() {
	defer close(o.done)
	for {
		select {
		case c := <-o.cmds:
			if c.stop {
				o.stop()
				c.reply <- proxyReply{}
				return
			}
			var res string
			var err error
			if c.swap {
				res, err = o.swap(c.cfg)
			} else {
				res, err = o.reload(c.cfg)
			}
			c.reply <- proxyReply{res, err}
		case gen := <-o.settled:
			if o.pending == nil || o.pending.gen != gen {
				break // a start that was replaced or cancelled
			}
			cfg := o.pending.cfg
			o.cancelPending()
			if err := o.apply(cfg); err != nil {
				o.log.Error("the proxy did not start; programs keep running", zap.Error(err))
			}
		}
		o.checkReady()
	}
}

// Reload makes cfg the proxy's config and says what happened: "reloaded",
// "unchanged", "started", "waiting" (it starts once the programs behind
// its upstreams settle), "stopped", or "" without a proxy. A reload that
// would change nothing (the same generated config) leaves Caddy alone: a
// Caddy reload drops a few keep-alive requests.
func (o *ProxyOwner) Reload(ctx context.Context, cfg *ProxyConfig) (string, error) {
	r, err := o.send(ctx, proxyCmd{cfg: cfg})
	if err != nil {
		return "", err
	}
	return r.res, r.err
}

// Switch makes cfg the proxy's config by swapping its pools' upstream
// lists (a deploy's switch to the new slot), never by reloading Caddy,
// which would close the connections to the proxy: it fails, changing
// nothing, when cfg differs otherwise. With the proxy not running (a
// first deploy, before it ever started) it is a Reload: no visitor is
// being served. It returns "swapped" or Reload's answer.
func (o *ProxyOwner) Switch(ctx context.Context, cfg *ProxyConfig) (string, error) {
	r, err := o.send(ctx, proxyCmd{cfg: cfg, swap: true})
	if err != nil {
		return "", err
	}
	return r.res, r.err
}

// swap is Switch in run.
func (o *ProxyOwner) swap(cfg *ProxyConfig) (string, error) {
	if o.running == nil || o.p == nil || cfg.Proxy == nil {
		return o.reload(cfg)
	}
	swapped, err := o.p.SwapUpstreams(*cfg.Proxy)
	if err != nil {
		return "", err
	}
	if !swapped {
		return "", errors.New("the switch would need a reload of the proxy's config (it changed otherwise since the last reload: run hostctl reload first)")
	}
	o.cfg, o.running = cfg, cfg
	o.publish("")
	o.log.Info("[proxy] switched to the new slot without reloading Caddy", zap.Strings("upstreams", cfg.Proxy.Upstreams()))
	return "swapped", nil
}

// Stop stops the proxy (or its pending start) and the owner, and closes
// the access log. Later reloads fail with errProxyStopped.
func (o *ProxyOwner) Stop() {
	o.send(context.Background(), proxyCmd{stop: true})
}

func (o *ProxyOwner) send(ctx context.Context, c proxyCmd) (proxyReply, error) {
	c.reply = make(chan proxyReply, 1)
	select {
	case o.cmds <- c:
	case <-o.done:
		return proxyReply{}, errProxyStopped
	case <-ctx.Done():
		return proxyReply{}, ctx.Err()
	}
	return <-c.reply, nil // run answers every command it takes
}

// Ready is closed once the first start is over: the proxy listens, or
// failed to start (status says why), or a reload removed it, or it was
// stopped. A reload that replaces a pending first start moves this to the
// end of the new start.
func (o *ProxyOwner) Ready() <-chan struct{} { return o.ready }

// Proxy returns the proxy, nil before a config with a [proxy] section.
// Its traffic counts (Traffic, WaitQuiet) outlive reloads.
func (o *ProxyOwner) Proxy() *proxy.Proxy { return o.view.Load().p }

// Status is the proxy's state and why it is not running; configured is
// false without a [proxy] section.
func (o *ProxyOwner) Status() (st proxy.Status, info string, configured bool) {
	v := o.view.Load()
	if v.p != nil {
		st = v.p.Status()
	}
	return st, v.info, v.configured
}

func (o *ProxyOwner) publish(info string) {
	o.view.Store(&proxyView{configured: o.cfg != nil && o.cfg.Proxy != nil, p: o.p, info: info})
}

func (o *ProxyOwner) checkReady() {
	if o.pending == nil && !o.readyDone {
		close(o.ready)
		o.readyDone = true
	}
}

// reload is Reload in run.
func (o *ProxyOwner) reload(cfg *ProxyConfig) (string, error) {
	old := o.cfg
	o.cfg = cfg
	switch {
	case cfg.Proxy == nil && (old == nil || old.Proxy == nil):
		o.publish("")
		return "", nil
	case cfg.Proxy == nil:
		o.log.Info("[proxy] removed: stopping the proxy")
		o.cancelPending()
		o.running = nil
		o.publish("")
		if o.p == nil {
			return "stopped", nil
		}
		return "stopped", o.p.Stop()
	case o.running == nil:
		// Not running: first start, a [proxy] section added, a start
		// still waiting (replaced here) or one that failed.
		return o.start(cfg)
	}
	// Apply reloads Caddy only if the generated config changed, which also
	// covers an edited error page or Caddyfile behind an unchanged section;
	// the same comparison tells the caller what happened. A change of the
	// pools' upstream lists alone (instances = 3 -> 2) is swapped in
	// without a Caddy reload, which would close connections to the proxy.
	before, _ := o.running.Proxy.CaddyJSON()
	after, _ := cfg.Proxy.CaddyJSON()
	if !bytes.Equal(before, after) {
		swapped, err := o.p.SwapUpstreams(*cfg.Proxy)
		if err != nil {
			o.publish("") // the previous config keeps serving
			return "", err
		}
		if swapped {
			o.running = cfg
			o.publish("")
			o.log.Info("[proxy] upstreams changed: applied without reloading Caddy", zap.Strings("upstreams", cfg.Proxy.Upstreams()))
			return "reloaded", nil
		}
	}
	if err := o.p.Apply(*cfg.Proxy); err != nil {
		o.publish("") // the previous config keeps serving
		return "", err
	}
	o.running = cfg
	o.publish("")
	if bytes.Equal(before, after) {
		return "unchanged", nil
	}
	o.log.Info("[proxy] changed: proxy reloaded")
	releaseMemory()
	return "reloaded", nil
}

// start starts the proxy on cfg now if the programs behind its upstreams
// have settled ("started"), else once they have ("waiting"), replacing any
// start still waiting.
func (o *ProxyOwner) start(cfg *ProxyConfig) (string, error) {
	o.cancelPending()
	if o.p == nil {
		opts := proxy.Options{Logger: quietCaddyChoices(o.log), StateDir: cfg.StateDir, OnCertEvent: o.onCert}
		opts.SiteHealth = o.siteHealth
		if cfg.Proxy.AccessLog == nil || *cfg.Proxy.AccessLog {
			s, err := o.logs.Open(cfg.AccessLog, cfg.Rotation, false)
			if err != nil {
				err = fmt.Errorf("proxy access log: %w", err)
				o.publish(err.Error())
				return "", err
			}
			o.accessLog = s
			opts.AccessLog = s
		}
		o.p = proxy.New(opts)
	}
	names := cfg.Links.Programs(cfg.Proxy.Upstreams())
	if o.settledNow(names) {
		if err := o.apply(cfg); err != nil {
			return "", err
		}
		return "started", nil
	}
	o.gen++
	ctx, cancel := context.WithCancel(o.ctx)
	o.pending = &pendingStart{cfg: cfg, gen: o.gen, cancel: cancel}
	o.publish("waiting for " + strings.Join(names, ", "))
	o.log.Info("the proxy starts once its upstream programs are ready", zap.Strings("programs", names))
	o.waiters.Add(1)
	go o.waitUpstreams(ctx, o.gen, names)
	return "waiting", nil
}

// apply starts Caddy on cfg; p is not running.
func (o *ProxyOwner) apply(cfg *ProxyConfig) error {
	if err := o.p.Apply(*cfg.Proxy); err != nil {
		o.publish(err.Error())
		return err
	}
	o.running = cfg
	o.publish("")
	o.log.Info("proxy listening", zap.Strings("listen", o.p.Status().Listen), zap.Strings("upstreams", cfg.Proxy.Upstreams()))
	releaseMemory()
	return nil
}

// releaseMemory hands the heap that loading Caddy's config left behind
// back to the system now, instead of over the Go scavenger's next minutes:
// most of what provisioning allocates is garbage once the servers run, and
// hostctl mostly idles next to the application it serves. It costs one
// forced GC (a few ms) per proxy start or reload, never per request.
func releaseMemory() { debug.FreeOSMemory() }

// cancelPending cancels the start waiting for upstreams, if any; its
// waiter's report, should it come anyway, is ignored (another gen).
func (o *ProxyOwner) cancelPending() {
	if o.pending != nil {
		o.pending.cancel()
		o.pending = nil
	}
}

// stop is Stop in run: nothing starts after it.
func (o *ProxyOwner) stop() {
	o.cancelPending()
	o.waiters.Wait() // each returns once its context is cancelled
	if o.p != nil {
		if err := o.p.Stop(); err != nil {
			o.log.Error("stopping the proxy", zap.Error(err))
		}
	}
	if o.accessLog != nil {
		o.accessLog.Close()
	}
	o.running = nil
	o.publish("stopped")
	o.checkReady()
}

// upstreamSettled reports whether an upstream program has settled
// (supervisor.Status.Settled). The proxy's first start is set up before
// StartAutostart has sent the autostart programs their start, so one
// still STOPPED is not settled yet.
func upstreamSettled(st supervisor.Status) bool {
	return st.Settled() && !st.AwaitsAutostart()
}

// settledNow reports whether every named program has settled already.
func (o *ProxyOwner) settledNow(names []string) bool {
	if len(names) == 0 {
		return true // Status() would list every program
	}
	sts, err := o.sup.Status(names...)
	if err != nil {
		return false // unknown to the supervisor: let the waiter say so
	}
	for _, st := range sts {
		if !upstreamSettled(st) {
			return false
		}
	}
	return true
}

// waitUpstreams waits (bounded by upstreamWait) until the named programs
// have settled, then tells run that start gen may go ahead. A cancelled
// ctx (the start was replaced or stopped, or hostctl is shutting down)
// ends it without a word.
func (o *ProxyOwner) waitUpstreams(ctx context.Context, gen uint64, names []string) {
	defer o.waiters.Done()
	wctx, cancel := context.WithTimeout(ctx, upstreamWait)
	defer cancel()
	for _, n := range names {
		st, err := o.sup.WaitFor(wctx, n, upstreamSettled)
		if err != nil && ctx.Err() == nil && wctx.Err() == context.DeadlineExceeded {
			o.log.Warn("starting the proxy before its upstream program is ready", zap.String("program", n), zap.Stringer("state", st.State))
		}
	}
	if ctx.Err() != nil {
		return
	}
	select {
	case o.settled <- gen:
	case <-ctx.Done():
	}
}
