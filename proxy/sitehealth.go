package proxy

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// A webserver behind a load balancer (or a hostctl in front) tells it
// whether to send requests with health_path, which hostctl answers
// itself: the balancer's health checks ask it, and hostctl drain makes it
// answer 503 while requests that still arrive are served. The sites'
// hostctl_site handler answers it and counts the other requests, so that
// hostctl drain --wait can tell when they have stopped arriving. The
// count lives with the Proxy, not the handler: a reload keeps it.

func init() {
	caddy.RegisterModule(new(siteHandler))
}

// traffic counts one Proxy's requests (those of sites with health_path,
// health checks left out) and remembers the last healthy answer.
type traffic struct {
	last     atomic.Int64 // arrival of the last request, Unix nanoseconds; 0: none yet
	inFlight atomic.Int64

	mu       sync.Mutex    // guards the fields below
	healthOK time.Time     // the last 200 answered on health_path
	okCh     chan struct{} // closed (and replaced) at each 200 answered
}

func newTraffic() *traffic { return &traffic{okCh: make(chan struct{})} }

func (t *traffic) answeredOK(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.healthOK = now
	close(t.okCh)
	t.okCh = make(chan struct{})
}

// okSince returns whether a 200 was answered after after, and a channel
// closed at the next one.
func (t *traffic) okSince(after time.Time) (bool, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.healthOK.After(after), t.okCh
}

// Traffic is what the proxy has seen of the requests to sites with
// health_path (health checks left out).
type Traffic struct {
	// LastRequest is when the last request arrived; zero when none has
	// since the Proxy was created.
	LastRequest time.Time
	// InFlight is the number of requests being answered now.
	InFlight int
	// LastHealthOK is when health_path last answered 200; zero if never.
	LastHealthOK time.Time
}

// Traffic returns the request counts of the sites with health_path.
func (p *Proxy) Traffic() Traffic {
	t := p.traffic
	out := Traffic{InFlight: int(t.inFlight.Load())}
	if n := t.last.Load(); n != 0 {
		out.LastRequest = time.Unix(0, n)
	}
	t.mu.Lock()
	out.LastHealthOK = t.healthOK
	t.mu.Unlock()
	return out
}

// WaitQuiet waits until no request is in flight and none has arrived for
// quiet (requests to health_path do not count), or ctx ends (then it
// returns ctx's error). It returns the traffic seen last.
func (p *Proxy) WaitQuiet(ctx context.Context, quiet time.Duration) (Traffic, error) {
	// Nothing signals "no request arrived": the deadline is known, so
	// sleep until it and look again.
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return p.Traffic(), ctx.Err()
		case <-timer.C:
		}
		tr := p.Traffic()
		left := quiet - time.Since(tr.LastRequest)
		switch {
		case tr.InFlight > 0:
			timer.Reset(min(quiet, 100*time.Millisecond))
		case tr.LastRequest.IsZero() || left <= 0:
			return tr, nil
		default:
			timer.Reset(left)
		}
	}
}

// WaitHealthOK waits until health_path has answered 200 after after (a
// load balancer's check saw the site healthy), or ctx ends.
func (p *Proxy) WaitHealthOK(ctx context.Context, after time.Time) error {
	for {
		ok, ch := p.traffic.okSince(after)
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// siteHandler is the handler "http.handlers.hostctl_site", first in every
// site of a config with health_path: it answers health_path and counts the
// other requests, which it passes on.
type siteHandler struct {
	// Instance is the key of the Proxy whose SiteHealth answers and whose
	// traffic counts.
	Instance string `json:"instance,omitempty"`
	// HealthPath is the path answered here.
	HealthPath string `json:"health_path"`
	// Upstreams are the site's upstreams as written in the config, for
	// SiteHealth.
	Upstreams []string `json:"upstreams,omitempty"`
	// Pool is the site's key when it has several upstreams (a pool):
	// SwapUpstreams changes Upstreams then.
	Pool string `json:"pool,omitempty"`

	sink *sink
	ups  atomic.Pointer[[]string] // Upstreams, or those SwapUpstreams set since
}

// CaddyModule returns the Caddy module information.
func (*siteHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.hostctl_site",
		New: func() caddy.Module { return new(siteHandler) },
	}
}

// Provision finds the Proxy's sink.
func (h *siteHandler) Provision(caddy.Context) error {
	h.sink = lookupSink(h.Instance)
	h.setUpstreams(h.Upstreams)
	return nil
}

func (h *siteHandler) setUpstreams(ups []string) { h.ups.Store(&ups) }

func (h *siteHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.URL.Path == h.HealthPath {
		return h.health(w, r)
	}
	t := h.sink.traffic
	t.last.Store(time.Now().UnixNano())
	t.inFlight.Add(1)
	defer t.inFlight.Add(-1)
	return next.ServeHTTP(w, r)
}

// health answers 200 or 503 with the reason in a line of text.
func (h *siteHandler) health(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, nil)
	}
	ok, why := true, "no health answer configured"
	if h.sink.health != nil {
		ok, why = h.sink.health(*h.ups.Load())
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	code, word := http.StatusOK, "healthy: "
	if !ok {
		code, word = http.StatusServiceUnavailable, "unhealthy: "
	}
	w.WriteHeader(code)
	if r.Method == http.MethodGet {
		w.Write([]byte(word + why + "\n"))
	}
	if ok {
		h.sink.traffic.answeredOK(time.Now())
	}
	return nil
}

var (
	_ caddy.Provisioner           = (*siteHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*siteHandler)(nil)
)
