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
// and puts them back once the process is up again. A site's single
// upstream is held instead (issue 18): while its program is on its way
// back (Status.Restarting, then STARTING, BACKOFF) the requests held for
// it may wait as long as the program's config lets it take (holdBound),
// and once it stays down (a plain stop, FATAL) they get the error page at
// once.

// Pool is the proxy as the drain before a stop sees it (*proxy.Proxy).
type Pool interface {
	// TryDrain takes upstream out of its pools unless it would leave a
	// pool without an available upstream, or holds the requests to it if
	// it is a site's single upstream.
	TryDrain(upstream string) proxy.DrainResult
	// Undrain puts it back.
	Undrain(upstream string)
	// HoldUntil lets the requests held for upstream wait until t (at
	// most the site's hold_for each); zero: the site's retry_for.
	HoldUntil(upstream string, t time.Time)
	// ReleaseDown ends the hold of upstream with the error page for the
	// requests held: its program stays down.
	ReleaseDown(upstream string)
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

// holdMargin is added to what a restarting program's config lets it
// take to be back (holdBound): the supervisor's own steps, the SIGKILL
// after stop_timeout, a loaded machine.
const holdMargin = 10 * time.Second

// stopDrains is which upstreams the front took out before a stop, and
// for which process: they go back when it is up again (or when no
// process serves them any more, at ProxyApplied).
type stopDrains struct {
	mu    sync.Mutex          // guards the fields below
	by    map[string][]string // process name -> upstreams it drained
	now   map[string]string   // upstream -> the process that drained it
	held  map[string]bool     // upstreams of now that are held (a site's single upstream)
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
// health check); a held one is released at once, with the error page,
// if the process stays down instead (watchBack).
func (f *Front) BeforeStop(ctx context.Context, p *supervisor.ProcessConfig) {
	ups := ServedBy(p)
	pool := f.pool()
	if len(ups) == 0 || pool == nil {
		return
	}
	since := time.Now()
	var out, held []string
	for _, u := range ups {
		switch takeOut(ctx, pool, u) {
		case proxy.Held:
			held = append(held, u)
			fallthrough
		case proxy.Drained:
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		return
	}
	f.log.Info("draining before the stop: taken out of the proxy's pool", zap.String("program", p.Name), zap.Strings("upstreams", out))
	f.putBackWhenUp(pool, p, out, held, since)
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
// pool: Drained or Held if it is out, DrainNotPooled if it stays in (not
// in a pool), DrainLast if ctx ended first.
func takeOut(ctx context.Context, pool Pool, u string) proxy.DrainResult {
	t := time.NewTicker(poolPoll)
	defer t.Stop()
	for {
		switch r := pool.TryDrain(u); r {
		case proxy.Drained, proxy.Held, proxy.DrainNotPooled:
			return r
		}
		select {
		case <-ctx.Done():
			return proxy.DrainLast
		case <-t.C:
		}
	}
}

// putBackWhenUp records that process p drained ups (held: those of them
// held) and, unless a watch for it runs already, starts one (watchBack)
// that puts them back once the process is up again.
func (f *Front) putBackWhenUp(pool Pool, p *supervisor.ProcessConfig, ups, held []string, since time.Time) {
	d := &f.stopDrains
	name := p.Name
	d.mu.Lock()
	watching := len(d.by[name]) > 0
	d.stops[name]++
	for _, u := range ups {
		if !slices.Contains(d.by[name], u) {
			d.by[name] = append(d.by[name], u)
		}
		d.now[u] = name
		d.held[u] = slices.Contains(held, u)
	}
	d.mu.Unlock()
	if watching || f.waitFor == nil {
		return
	}
	go f.watchBack(pool, p, since)
}

// watchBack follows process p, whose upstreams were taken out at since
// (a stop began), through its status changes until they are all back:
//
//   - up again (a process RUNNING since, healthy): they go back, after
//     a run at once of their pools' health checks (checkNow);
//   - on its way back (a restart: STOPPING with Restarting, STARTING,
//     BACKOFF): the requests held for its held upstreams may wait until
//     holdBound;
//   - STOPPING for a plain stop: they wait the site's retry_for, as for
//     any upstream that does not answer;
//   - down for good (STOPPED by a stop, FATAL, EXITED): the requests held
//     are released with the error page at once, and the held upstreams
//     are no longer held; those taken out of a pool stay out until it is
//     up again (their pools' health checks would have them out anyway);
//   - removed by a reload: once the proxy runs the new config
//     (ProxyApplied puts back what no process serves any more), the
//     process of the same name, if any, is followed instead.
func (f *Front) watchBack(pool Pool, p *supervisor.ProcessConfig, since time.Time) {
	d := &f.stopDrains
	name := p.Name
	var last supervisor.Status
	seen := false
	changed := func(st supervisor.Status) bool {
		return !seen || st.State != last.State || st.Restarting != last.Restarting || st.Up() != last.Up() ||
			!st.StateSince.Equal(last.StateSince) || !st.NextStart.Equal(last.NextStart)
	}
	for {
		gen, next := f.configGen()
		st, err := f.waitFor(context.Background(), name, changed)
		if err != nil {
			// Removed by a reload, maybe replaced by a process of the
			// same name: once the reload is over, follow that one.
			if g, _ := f.configGen(); g == gen {
				<-next
			}
			seen = false
			if d.left(name) == 0 {
				return
			}
			continue
		}
		seen, last = true, st
		switch {
		case st.Up() && st.StateSince.After(since):
			d.mu.Lock()
			stops, ups := d.stops[name], slices.Clone(d.by[name])
			d.mu.Unlock()
			checked := f.checkNow(pool, name, ups)
			d.mu.Lock()
			again := d.stops[name] != stops // stopping again meanwhile
			d.mu.Unlock()
			if again {
				since = time.Now() // the process up now is the one stopping
				continue
			}
			f.log.Info("up again: back in the proxy's pool", zap.String("program", name), zap.Strings("upstreams", ups), zap.Strings("health_checked", checked))
			d.putBack(pool, name, false)
			return
		case st.StaysDown() && !st.Restarting && st.StateSince.After(since):
			if ups := d.putBack(pool, name, true); len(ups) > 0 {
				f.log.Info("stays down: requests held for it get the error page", zap.String("program", name), zap.Stringer("state", st.State), zap.Strings("upstreams", ups))
			}
			if d.left(name) == 0 {
				return
			}
		default:
			if t, ok := holdBound(p.Program, st); ok {
				d.holdUntil(pool, name, t)
			}
		}
	}
}

// holdBound is until when the requests held for a program in state st
// may wait for it to be back, from what its config lets it take: the
// drain, stop_timeout, its start bound (start_secs, or its ready probe's
// deadline if longer) and holdMargin; the zero time (the site's
// retry_for) when it is stopping and not coming back. ok is false when
// st gives no new bound (RUNNING, down).
func holdBound(p *supervisor.ProgramConfig, st supervisor.Status) (t time.Time, ok bool) {
	start := p.StartSecs
	if p.Ready != nil {
		start = max(start, p.Ready.Deadline)
	}
	switch st.State {
	case supervisor.Stopping:
		if !st.Restarting {
			return time.Time{}, true
		}
		return st.StateSince.Add(p.DrainTimeout + p.StopTimeout + start + holdMargin), true
	case supervisor.Stopped:
		if !st.Restarting {
			return time.Time{}, false
		}
		return time.Now().Add(start + holdMargin), true // replaced by a reload: the new one starts
	case supervisor.Starting:
		return st.StateSince.Add(start + holdMargin), true
	case supervisor.Backoff:
		return st.NextStart.Add(start + holdMargin), true
	}
	return time.Time{}, false
}

// left is how many upstreams name has out.
func (d *stopDrains) left(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.by[name])
}

// holdUntil moves the bound of the requests held for name's held
// upstreams to t.
func (d *stopDrains) holdUntil(pool Pool, name string, t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range d.by[name] {
		if d.now[u] == name && d.held[u] {
			pool.HoldUntil(u, t)
		}
	}
}

// putBack puts back what name took out, or with down (it stays down)
// only its held upstreams, whose requests get the error page; it
// returns those.
func (d *stopDrains) putBack(pool Pool, name string, down bool) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var back, keep []string
	for _, u := range d.by[name] {
		if down && !d.held[u] {
			keep = append(keep, u)
			continue
		}
		back = append(back, u)
		if d.now[u] != name {
			continue
		}
		delete(d.now, u)
		delete(d.held, u)
		if down {
			pool.ReleaseDown(u)
		} else {
			pool.Undrain(u)
		}
	}
	if len(keep) > 0 {
		d.by[name] = keep
	} else {
		delete(d.by, name)
		delete(d.stops, name)
	}
	return back
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
		delete(d.held, u)
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
