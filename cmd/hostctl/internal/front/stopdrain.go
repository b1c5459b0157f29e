package front

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/proxy"
	"github.com/hostctl/hostctl/supervisor"
)

// The drain before a stop (issue 22): one mechanism with the drain of
// the whole host (drain.go) and the program<->upstream link (ServedBy).
// The supervisor calls BeforeStop before it sends a RUNNING process its
// stop signal; the front takes the upstreams the process serves out of
// their pools in the proxy, waits for the requests in flight to them,
// and puts them back once the process is up again.

// Pool is the proxy as the drain before a stop sees it (*proxy.Proxy).
type Pool interface {
	// TryDrain takes upstream out of its pools unless it would leave a
	// pool without an available upstream, or holds the requests to it if
	// it is a site's single upstream.
	TryDrain(upstream string) proxy.DrainResult
	// Undrain puts it back.
	Undrain(upstream string)
	// InFlight is the number of requests in flight to upstream.
	InFlight(upstream string) int
	// CheckHealth runs the active health check of upstream's pools at
	// once; true if they check it and it passes (it then gets requests
	// without waiting for the checks' next tick).
	CheckHealth(ctx context.Context, upstream string) (bool, error)
}

// checkWait bounds the health check run at once before an upstream goes
// back (each check also has its pool's health.timeout).
const checkWait = 10 * time.Second

// poolPoll is how often the drain looks again at what the proxy has no
// event for: the requests in flight to a draining upstream, and whether
// another upstream of its pool has become available.
const poolPoll = 20 * time.Millisecond

// stopDrains is which upstreams the front took out before a stop, and
// for which process: they go back when it is up again (or when no
// process serves them any more, at ProxyApplied).
type stopDrains struct {
	mu    sync.Mutex          // guards the fields below
	by    map[string][]string // process name -> upstreams it drained
	now   map[string]string   // upstream -> the process that drained it
	stops map[string]uint64   // process name -> drains before its stops, counted
}

// BeforeStop is the supervisor's Options.BeforeStop: it takes the
// upstreams p serves (ServedBy) out of the proxy's pools, so that no new
// request goes to them, and returns once no request is in flight to them
// or ctx ends (drain_timeout). An upstream that is the last available one
// of its pool waits (within ctx) for another to become available, as in a
// rolling restart the instance restarted before is back in the pool; a
// site's single upstream is held: new requests to it wait, not dialled,
// for at most the site's retry_for, instead of queueing in the backlog of
// a process about to exit. The upstreams stay out (held) until the
// process is up again (supervisor.Status.Up: RUNNING and passing its
// health check).
func (f *Front) BeforeStop(ctx context.Context, p *supervisor.ProcessConfig) {
	ups := ServedBy(p)
	pool := f.pool()
	if len(ups) == 0 || pool == nil {
		return
	}
	var out []string
	for _, u := range ups {
		if takeOut(ctx, pool, u) {
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		return
	}
	f.log.Info("draining before the stop: taken out of the proxy's pool", zap.String("program", p.Name), zap.Strings("upstreams", out))
	f.putBackWhenUp(pool, p.Name, out)
	t := time.NewTicker(poolPoll)
	defer t.Stop()
	for {
		inFlight := 0
		for _, u := range out {
			inFlight += pool.InFlight(u)
		}
		if inFlight == 0 {
			return
		}
		select {
		case <-ctx.Done():
			f.log.Warn("drain_timeout passed with requests in flight; stopping anyway", zap.String("program", p.Name), zap.Int("in_flight", inFlight))
			return
		case <-t.C:
		}
	}
}

// takeOut drains u, waiting while it is the last available upstream of a
// pool; false if it stays in (not in a pool, or ctx ended first).
func takeOut(ctx context.Context, pool Pool, u string) bool {
	t := time.NewTicker(poolPoll)
	defer t.Stop()
	for {
		switch pool.TryDrain(u) {
		case proxy.Drained, proxy.Held:
			return true
		case proxy.DrainNotPooled:
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// putBackWhenUp records that name drained ups and, unless a watch for it
// runs already, puts them back once the process is up again, or leaves
// them to ProxyApplied once it is removed.
func (f *Front) putBackWhenUp(pool Pool, name string, ups []string) {
	d := &f.stopDrains
	d.mu.Lock()
	watching := len(d.by[name]) > 0
	d.stops[name]++
	for _, u := range ups {
		if !slices.Contains(d.by[name], u) {
			d.by[name] = append(d.by[name], u)
		}
		d.now[u] = name
	}
	d.mu.Unlock()
	if watching || f.waitFor == nil {
		return
	}
	go func() {
		for {
			gen, next := f.configGen()
			// Up is a later process: this one is STOPPING now.
			_, err := f.waitFor(context.Background(), name, supervisor.Status.Up)
			if err == nil {
				d.mu.Lock()
				stops, ups := d.stops[name], slices.Clone(d.by[name])
				d.mu.Unlock()
				checked := f.checkNow(pool, name, ups)
				d.mu.Lock()
				again := d.stops[name] != stops // stopping again meanwhile
				d.mu.Unlock()
				if !again {
					f.log.Info("up again: back in the proxy's pool", zap.String("program", name), zap.Strings("upstreams", ups), zap.Strings("health_checked", checked))
					break
				}
				continue
			}
			// Removed by a reload, maybe replaced by a process of the
			// same name: once the reload is over (ProxyApplied puts
			// back what no process serves any more), wait for that one.
			if g, _ := f.configGen(); g == gen {
				<-next
			}
			d.mu.Lock()
			left := len(d.by[name])
			d.mu.Unlock()
			if left == 0 {
				return
			}
		}
		d.mu.Lock()
		back := d.by[name]
		delete(d.by, name)
		delete(d.stops, name)
		for _, u := range back {
			if d.now[u] == name {
				delete(d.now, u)
				pool.Undrain(u)
			}
		}
		d.mu.Unlock()
	}()
}

// checkNow runs the health check of each of ups's pools at once, before
// they go back: an upstream its pool's active check marked down while
// the process was stopped would otherwise get no request until the
// check's next tick (health.interval), and the next instance of a rolling
// restart would wait for that. It returns those that passed; one that
// fails goes back all the same (the process is up: the pool's own checks
// decide).
func (f *Front) checkNow(pool Pool, name string, ups []string) []string {
	var passed []string
	for _, u := range ups {
		ctx, cancel := context.WithTimeout(context.Background(), checkWait)
		ok, err := pool.CheckHealth(ctx, u)
		cancel()
		if err != nil {
			f.log.Info("up again, but its pool's health check fails for now", zap.String("program", name), zap.String("upstream", u), zap.Error(err))
		}
		if ok {
			passed = append(passed, u)
		}
	}
	return passed
}

// forgetStopDrains puts back the upstreams drained by processes that no
// longer serve them in links (a reload removed the process or changed
// its serves): nothing else would.
func (f *Front) forgetStopDrains(links Links) {
	d := &f.stopDrains
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.now) == 0 {
		return
	}
	pool := f.pool()
	for u, name := range d.now {
		if slices.Contains(links[u], name) {
			continue
		}
		delete(d.now, u)
		d.by[name] = slices.DeleteFunc(d.by[name], func(x string) bool { return x == u })
		if len(d.by[name]) == 0 {
			delete(d.by, name)
			delete(d.stops, name)
		}
		if pool != nil {
			pool.Undrain(u)
		}
	}
}
