package proxy

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// Taking one upstream of a pool out before its program stops (issue 22):
// the pool's selection policy, hostctl_least_conn, skips the upstreams
// the Proxy marks draining, so that no new request goes to them while the
// requests they are answering finish. A site's single upstream has no
// other to go to: its hostctl_upstream handler holds new requests instead
// (no dial) until Undrain, ReleaseDown, or the site's retry_for; while its
// program is on its way back (a restart), HoldUntil lets them wait as
// long as the program's config allows, capped by the site's hold_for.
// The mark is an atomic switch read on every selection, not a config
// change: no Caddy reload. It lives with the Proxy (its sink), so a
// reload keeps it.

func init() {
	caddy.RegisterModule(DrainAwareSelection{})
}

// drainSet is which upstreams are draining, by dial address (as in
// Caddy's config: "127.0.0.1:8000", "unix//run/app.sock").
type drainSet struct {
	// m is replaced whole on each change and read without a lock by the
	// selection policy and hostctl_upstream.
	m atomic.Pointer[map[string]*holdMark]
	// checked are the upstreams whose health check CheckHealth ran at
	// once and saw pass, with the time (Unix nanoseconds) until which
	// that counts (healthnow.go); replaced whole, like m.
	checked atomic.Pointer[map[string]int64]
	// mu serializes the changes: TryDrain's check that another upstream
	// of the pool stays available and its mark are one step, so that two
	// instances stopping at once never both leave.
	mu sync.Mutex
}

func newDrainSet() *drainSet {
	d := &drainSet{}
	d.m.Store(&map[string]*holdMark{})
	d.checked.Store(&map[string]int64{})
	return d
}

// holdMark is one upstream's drain mark.
type holdMark struct {
	// released is closed when the mark is removed: requests held for it
	// go on at once.
	released chan struct{}
	// until (Unix nanoseconds) is how long held requests may wait while
	// the program is on its way back (HoldUntil), each at most its
	// site's hold_for from its arrival; 0: retry_for only.
	until atomic.Int64
	// down is set before released is closed when the program stays
	// down (ReleaseDown): held requests get the error page at once.
	down atomic.Bool
}

func (d *drainSet) has(dial string) bool { return d.mark(dial) != nil }

// mark is dial's mark; nil if dial is not marked.
func (d *drainSet) mark(dial string) *holdMark { return (*d.m.Load())[dial] }

// set marks or unmarks dial (down: the requests held for it get the
// error page); the caller holds d.mu.
func (d *drainSet) set(dial string, on, down bool) {
	old := *d.m.Load()
	m, marked := old[dial]
	if marked == on {
		return
	}
	next := make(map[string]*holdMark, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	if on {
		next[dial] = &holdMark{released: make(chan struct{})}
	} else {
		delete(next, dial)
	}
	d.m.Store(&next)
	if !on {
		m.down.Store(down)
		close(m.released)
	}
}

// DrainAwareSelection is the selection policy
// "http.reverse_proxy.selection_policies.hostctl_least_conn" of the
// proxy's pools: Caddy's least_conn (the available upstream with the
// fewest requests in flight, ties at random) among the upstreams that are
// not draining. When every available upstream is draining it picks among
// them rather than none: draining only ever moves requests to another
// upstream, it never fails one. An upstream whose health check
// CheckHealth saw pass counts as available while Caddy's active check
// has not looked at it again (healthnow.go).
type DrainAwareSelection struct {
	// Instance is the key of the Proxy whose drain marks it reads.
	Instance string `json:"instance,omitempty"`
	// MaxFails is the pool's passive health check's max_fails (0:
	// none): an upstream checked by CheckHealth that has failed as many
	// requests stays out.
	MaxFails int `json:"max_fails,omitempty"`

	drains *drainSet
}

// CaddyModule returns the Caddy module information.
func (DrainAwareSelection) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.selection_policies.hostctl_least_conn",
		New: func() caddy.Module { return new(DrainAwareSelection) },
	}
}

// Provision finds the Proxy's drain marks.
func (s *DrainAwareSelection) Provision(caddy.Context) error {
	s.drains = lookupSink(s.Instance).drains
	return nil
}

// Select picks an upstream for a request.
func (s *DrainAwareSelection) Select(pool reverseproxy.UpstreamPool, r *http.Request, w http.ResponseWriter) *reverseproxy.Upstream {
	draining := *s.drains.m.Load()
	checked := s.drains.checkedMarks()
	if len(draining) == 0 && len(checked) == 0 {
		return reverseproxy.LeastConnSelection{}.Select(pool, r, w)
	}
	now := time.Now().UnixNano()
	ok := func(u *reverseproxy.Upstream) bool { return available(u, s.MaxFails, checked, now) }
	if u := leastConn(pool, func(u *reverseproxy.Upstream) bool {
		_, out := draining[u.Dial]
		return !out && ok(u)
	}); u != nil {
		return u
	}
	return leastConn(pool, ok)
}

// DrainResult is what TryDrain did.
type DrainResult uint8

const (
	// DrainNotPooled: the upstream is in no pool of the running config
	// and is no site's single upstream behind hostctl_upstream (none, or
	// one proxied by Caddy's reverse_proxy with upstream_keepalive): it
	// is left as it is, and requests to it wait (retry_for) for refused
	// connections only.
	DrainNotPooled DrainResult = iota
	// DrainLast: every other upstream of one of its pools is draining or
	// out of the pool (health checks): it is left in, for now.
	DrainLast
	// Drained: it is marked draining; new requests go to the others.
	Drained
	// Held: it is a site's single upstream, marked draining: new
	// requests to it wait, without a dial, until Undrain or the site's
	// retry_for (counted from each request's arrival; longer after
	// HoldUntil), then go on as before; after ReleaseDown they get the
	// error page at once.
	Held
)

// TryDrain marks upstream (written as in the config) draining if every
// pool it is in keeps another upstream that is available (healthy) and
// not draining; a draining upstream gets no new request, and the requests
// it is answering finish (InFlight counts them). A site's single upstream
// is held instead (Held). Undrain ends either.
func (p *Proxy) TryDrain(upstream string) DrainResult {
	dial := dialAddress(upstream)
	d := p.drains
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.has(dial) {
		return Drained
	}
	pooled, single := false, false
	for _, ph := range activeProxyHandlers() {
		if ph.retiring || !containsDial(ph.Upstreams, dial) {
			continue // a retiring pool gets no new request
		}
		if len(ph.Upstreams) < 2 {
			single = single || ph.own != nil
			continue
		}
		pooled = true
		other := false
		checked, now, maxFails := d.checkedMarks(), time.Now().UnixNano(), passiveMaxFails(ph.Handler)
		for _, u := range ph.Upstreams {
			if u.Dial != dial && !d.has(u.Dial) && available(u, maxFails, checked, now) {
				other = true
				break
			}
		}
		if !other {
			return DrainLast
		}
	}
	switch {
	case pooled:
		d.set(dial, true, false)
		return Drained
	case single:
		d.set(dial, true, false)
		return Held
	}
	return DrainNotPooled
}

// Undrain puts upstream back in its pools: new requests may go to it, and
// those held for it go on at once.
func (p *Proxy) Undrain(upstream string) {
	d := p.drains
	d.mu.Lock()
	defer d.mu.Unlock()
	d.set(dialAddress(upstream), false, false)
}

// HoldUntil lets the requests held for upstream (TryDrain: Held) wait
// until t, its program's bound for being back (a restart: its stop,
// start and ready timeouts), rather than only their site's retry_for;
// each request waits at most its site's hold_for from its arrival, and
// never less than retry_for. Requests held now take the new bound too.
// The zero t goes back to retry_for. It does nothing if upstream is not
// marked.
func (p *Proxy) HoldUntil(upstream string, t time.Time) {
	d := p.drains
	d.mu.Lock()
	defer d.mu.Unlock()
	if m := d.mark(dialAddress(upstream)); m != nil {
		var ns int64
		if !t.IsZero() {
			ns = t.UnixNano()
		}
		m.until.Store(ns)
	}
}

// ReleaseDown ends the hold of upstream because its program stays down
// (stopped, FATAL): the requests held for it get the error page (502) at
// once instead of waiting for their bound, and later ones go on as to
// any upstream (dial; refused: retried for retry_for). For a pool's
// upstream it is Undrain.
func (p *Proxy) ReleaseDown(upstream string) {
	d := p.drains
	d.mu.Lock()
	defer d.mu.Unlock()
	d.set(dialAddress(upstream), false, true)
}

// Draining reports whether upstream is marked draining (or held).
func (p *Proxy) Draining(upstream string) bool { return p.drains.has(dialAddress(upstream)) }

// InFlight returns the number of requests the proxy has in flight to
// upstream now, over every site; requests held (not dialled) are not.
func (p *Proxy) InFlight(upstream string) int {
	dial := dialAddress(upstream)
	n := 0
	counted := false
	for _, ph := range activeProxyHandlers() {
		for _, u := range ph.Upstreams {
			if u.Dial != dial {
				continue
			}
			// Caddy counts per host (dial address) across handlers.
			if !counted {
				n += u.NumRequests()
				counted = true
			}
			n += ph.ownInFlight()
		}
	}
	return n
}

func containsDial(ups reverseproxy.UpstreamPool, dial string) bool {
	for _, u := range ups {
		if u.Dial == dial {
			return true
		}
	}
	return false
}

var (
	_ caddy.Provisioner     = (*DrainAwareSelection)(nil)
	_ reverseproxy.Selector = (*DrainAwareSelection)(nil)
)
