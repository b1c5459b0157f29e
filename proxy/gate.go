package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The deploy's gate (issue 23): before traffic moves to a new release's
// instances, hostctl requests its check URLs through its own handler
// chain, with the site's real Host header, as a visitor's request would
// go (static files, maintenance, the body buffer, the pool's
// reverse_proxy), except that the site's pool sends it to the new
// instances. What routes a request there is a value in the request's Go
// context that only this process can put there, never a header, a
// cookie or an address an outsider could send: until the switch, no
// request from outside reaches the new instances through the proxy.

// gateKey is the context key of a gate request's pin.
type gateKey struct{}

// Gate sends requests to the new upstreams of some pools through the
// running config's handlers. Close it when done: it stops the
// reverse_proxy handlers it loaded.
type Gate struct {
	p   *Proxy
	pin map[string][]string // site key -> upstreams, as written

	mu   sync.Mutex // guards gens and closed
	gens map[*PoolHandler]*poolGen
	done bool
}

// Gate returns a gate whose requests the pools of the sites in pin (site
// key, as in SiteUpstreams, -> upstreams as written) send to those
// upstreams. Only pools (a site with several upstreams, or one in
// Config.Switched) can be pinned.
func (p *Proxy) Gate(pin map[string][]string) *Gate {
	return &Gate{p: p, pin: pin, gens: map[*PoolHandler]*poolGen{}}
}

// gen returns the gate's reverse_proxy handler for pool h, loading it on
// first use (the pool's settings, the gate's upstreams); nil if h's site
// is not pinned.
func (g *Gate) gen(h *PoolHandler) (*poolGen, error) {
	ups, ok := g.pin[h.Pool]
	if !ok {
		return nil, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		return nil, errors.New("gate closed")
	}
	if gen := g.gens[h]; gen != nil {
		return gen, nil
	}
	dials := make([]string, len(ups))
	for i, u := range ups {
		dials[i] = dialAddress(u)
	}
	gen, err := h.newGen(dials)
	if err != nil {
		return nil, err
	}
	g.gens[h] = gen
	return gen, nil
}

// Close stops the handlers the gate loaded.
func (g *Gate) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.done = true
	for _, gen := range g.gens {
		gen.stop()
	}
	g.gens = nil
}

// GateResponse is what a gate request got.
type GateResponse struct {
	Status int
	Body   []byte // at most 1 MB
	// Pinned: the request went through a pinned pool (else it never
	// reached the new upstreams: a static route or the Caddyfile answered).
	Pinned bool
}

// maxGateBody bounds the body a gate request keeps.
const maxGateBody = 1 << 20

// Get sends GET path with Host host through the running config's handler
// chain for site (its key), on the server a visitor of that site reaches
// (HTTPS for a TLS site), as a request from 127.0.0.1. ctx bounds it.
func (g *Gate) Get(ctx context.Context, site, host, path string) (GateResponse, error) {
	g.p.mu.Lock()
	running, cfg := g.p.running, g.p.cfg
	g.p.mu.Unlock()
	if !running {
		return GateResponse{}, errors.New("the proxy is not running")
	}
	useTLS := false
	cc := cfg.withDefaults()
	for _, s := range cc.sites("proxy") {
		if s.key == site {
			useTLS = s.tlsMode() != TLSOff
		}
	}
	srv := activeServer(useTLS)
	if srv == nil {
		return GateResponse{}, errors.New("the proxy has no server for the site")
	}
	pinned := &gatePinned{g: g}
	req, err := http.NewRequestWithContext(context.WithValue(ctx, gateKey{}, pinned), http.MethodGet, path, nil)
	if err != nil {
		return GateResponse{}, err
	}
	req.Host = host
	req.RequestURI = path
	req.RemoteAddr = "127.0.0.1:0"
	req.Header.Set("User-Agent", "hostctl-deploy-gate")
	if useTLS {
		req.TLS = &tls.ConnectionState{HandshakeComplete: true, ServerName: host, Version: tls.VersionTLS13}
	}
	// The handler chain may outlive ctx (reverse_proxy retries a failed
	// dial for try_duration whatever the request's context says): the
	// answer is waited for until ctx ends, no longer.
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeHTTP(rec, req)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return GateResponse{}, ctx.Err()
	}
	res := rec.Result()
	body, _ := io.ReadAll(io.LimitReader(res.Body, maxGateBody))
	if err := ctx.Err(); err != nil {
		return GateResponse{}, err
	}
	return GateResponse{Status: res.StatusCode, Body: body, Pinned: pinned.used()}, nil
}

// gatePinned is a gate request's context value: its gate, and whether a
// pinned pool served it.
type gatePinned struct {
	g    *Gate
	mu   sync.Mutex
	hits int
}

func (p *gatePinned) hit() {
	p.mu.Lock()
	p.hits++
	p.mu.Unlock()
}

func (p *gatePinned) used() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits > 0
}

// gateGen returns the gate's handler for pool h if r is a gate request
// pinned for h's site; nil otherwise (every visitor's request).
func gateGen(r *http.Request, h *PoolHandler) (*poolGen, error) {
	pinned, ok := r.Context().Value(gateKey{}).(*gatePinned)
	if !ok {
		return nil, nil
	}
	gen, err := pinned.g.gen(h)
	if gen != nil {
		pinned.hit()
	}
	return gen, err
}

// activeServer returns the running http app's server for plain HTTP, or
// for HTTPS.
func activeServer(useTLS bool) *caddyhttp.Server {
	ctx := caddy.ActiveContext()
	if ctx.Context == nil {
		return nil
	}
	app, err := ctx.AppIfConfigured("http")
	if err != nil || app == nil {
		return nil
	}
	httpApp, ok := app.(*caddyhttp.App)
	if !ok {
		return nil
	}
	name := "http"
	if useTLS {
		name = "https"
	}
	return httpApp.Servers[name]
}
