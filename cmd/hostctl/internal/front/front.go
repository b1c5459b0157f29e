package front

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/proxy"
	"github.com/hostctl/hostctl/supervisor"
)

// Programs is the supervisor as the front sees it.
type Programs interface {
	// Status returns the status of the named processes.
	Status(names ...string) ([]supervisor.Status, error)
}

// Traffic is the proxy as the drain sees it (*proxy.Proxy).
type Traffic interface {
	Traffic() proxy.Traffic
	WaitQuiet(ctx context.Context, quiet time.Duration) (proxy.Traffic, error)
	WaitHealthOK(ctx context.Context, after time.Time) error
}

// Options for New. Programs is required.
type Options struct {
	// StateDir holds drain.json.
	StateDir string
	// Programs answers which state the programs are in.
	Programs Programs
	// Proxy returns the proxy, nil (an untyped nil) while there is none.
	// Default: never one.
	Proxy func() Traffic
	// Dial tells whether something accepts connections at an upstream.
	// Default proxy.DialUpstream.
	Dial func(ctx context.Context, addr string) error
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger; default none.
	Logger *zap.Logger
	// Pool returns the proxy for the drain before a stop, nil (an
	// untyped nil) while there is none. Default: never one.
	Pool func() Pool
	// WaitFor waits until the named process's status meets cond
	// (supervisor.WaitFor): the drain before a stop ends when the
	// process is up again. Nil: upstreams drained before a stop go back
	// only at Configure.
	WaitFor func(ctx context.Context, name string, cond func(supervisor.Status) bool) (supervisor.Status, error)
}

// Front is the front's policy at run time: health_path's answer and the
// drain. Its methods are safe for concurrent use.
type Front struct {
	drain *drainState
	sup   Programs
	proxy func() Traffic
	dial  func(ctx context.Context, addr string) error
	now   func() time.Time
	log   *zap.Logger
	pool  func() Pool

	waitFor    func(ctx context.Context, name string, cond func(supervisor.Status) bool) (supervisor.Status, error)
	stopDrains stopDrains // stopdrain.go

	mu      sync.Mutex // guards cfg, confGen and confCh
	cfg     frontConfig
	confGen uint64        // Configure calls
	confCh  chan struct{} // closed (and replaced) at each Configure
}

// frontConfig is what the front takes from the config; replaced whole on
// reload (Configure).
type frontConfig struct {
	healthPath string
	links      Links
}

// New loads the drain state (a drain outlives a restart) and returns the
// front; Configure gives it the config.
func New(opts Options) (*Front, error) {
	f := &Front{sup: opts.Programs, proxy: opts.Proxy, dial: opts.Dial, now: opts.Now, log: opts.Logger, pool: opts.Pool, waitFor: opts.WaitFor}
	f.stopDrains.by, f.stopDrains.now, f.stopDrains.held, f.stopDrains.stops = map[string][]string{}, map[string]string{}, map[string]bool{}, map[string]uint64{}
	f.confCh = make(chan struct{})
	if f.proxy == nil {
		f.proxy = func() Traffic { return nil }
	}
	if f.pool == nil {
		f.pool = func() Pool { return nil }
	}
	if f.dial == nil {
		f.dial = proxy.DialUpstream
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.log == nil {
		f.log = zap.NewNop()
	}
	var err error
	if f.drain, err = loadDrain(drainPath(opts.StateDir)); err != nil {
		return nil, err
	}
	return f, nil
}

// Configure takes the config's health_path ("" without one) and the
// links from upstreams to the programs that serve them: at start and on
// every reload.
func (f *Front) Configure(healthPath string, links Links) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg = frontConfig{healthPath: healthPath, links: links}
}

// ProxyApplied is called once the proxy runs the config given to the last
// Configure (after a reload): upstreams drained before a stop by a
// process that no longer serves them go back now (an upstream the proxy
// no longer has is forgotten; one something else serves gets requests
// again). Before, the proxy could still send requests to them.
func (f *Front) ProxyApplied() {
	f.forgetStopDrains(f.config().links)
	f.mu.Lock()
	f.confGen++
	close(f.confCh)
	f.confCh = make(chan struct{})
	f.mu.Unlock()
}

// configGen returns how many times ProxyApplied ran, and a channel closed
// at the next.
func (f *Front) configGen() (uint64, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.confGen, f.confCh
}

func (f *Front) config() frontConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg
}

// Draining reports whether hostctl drains, and since when.
func (f *Front) Draining() (bool, time.Time) { return f.drain.get() }

// dialTimeout bounds health_path's look at one local upstream.
const dialTimeout = time.Second

// SiteHealth answers health_path for a site with the upstreams ups
// (proxy.Options.SiteHealth):
//   - draining: 503 "draining";
//   - else, when programs serve the site (Links: serves, or their ready
//     probe), 503 "down" unless one of them is up (supervisor.Status.Up:
//     RUNNING and passing its health check);
//   - and 503 "down" unless one of the site's upstreams on this machine
//     accepts a connection: a program can be RUNNING before it has bound
//     its socket, and an upstream no program of this hostctl runs
//     (php-fpm under systemd) is judged by this alone. Upstreams on other
//     machines are their own hosts' to judge and are not dialled.
//
// Anyone may ask health_path, so the answer says ok, down or draining and
// no more: which program is in which state is for hostctl status.
func (f *Front) SiteHealth(ups []string) (bool, string) {
	if draining, _ := f.drain.get(); draining {
		return false, "draining"
	}
	if names := f.config().links.Programs(ups); len(names) > 0 {
		sts, err := f.sup.Status(names...)
		if err != nil {
			f.log.Warn("health_path: reading the programs' state", zap.Error(err))
			return false, "down"
		}
		up := false
		for _, st := range sts {
			up = up || st.Up()
		}
		if !up {
			return false, "down"
		}
	}
	local := 0
	for _, u := range ups {
		a, err := proxy.ParseUpstream(u)
		if err != nil || !a.Local() {
			continue
		}
		local++
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		err = f.dial(ctx, u)
		cancel()
		if err == nil {
			return true, "ok"
		}
	}
	if local > 0 {
		return false, "down"
	}
	return true, "ok"
}
