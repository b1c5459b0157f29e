package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// A site with several upstreams (a pool) is proxied by Caddy's
// reverse_proxy inside hostctl_pool, which can replace that reverse_proxy
// with one for another list of upstreams while it serves: a reload that
// changes only the pools' upstream lists (instances = 3 -> 2, one more
// instance) swaps them (SwapUpstreams) instead of reloading Caddy's
// config, which closes connections to the proxy. Requests that started on
// the previous reverse_proxy finish on it; it is cleaned up (its health
// checker stopped) once the last has.
//
// Caddy's own dynamic_upstreams would also change the list without a
// reload, but Caddy runs no active health checks on dynamic upstreams and
// provisions each of them on every request.

func init() {
	caddy.RegisterModule(new(PoolHandler))
}

// PoolHandler is "http.handlers.hostctl_pool": it proxies a pool's
// requests with the reverse_proxy handler Proxy describes, whose
// upstreams SwapUpstreams may replace.
type PoolHandler struct {
	// Proxy is Caddy's reverse_proxy handler config, with the upstreams
	// the pool starts with.
	ProxyRaw json.RawMessage `json:"proxy"`
	// Pool is the key of the site in hostctl's config ("proxy",
	// "proxy.site[1]"): SwapUpstreams finds the pool by it.
	Pool string `json:"pool"`

	// base is the context the reverse_proxy handlers are loaded in, each
	// in a context of its own under it (see newGen).
	base caddy.Context
	// tmpl is ProxyRaw without its module name and upstreams.
	tmpl map[string]json.RawMessage
	cur  atomic.Pointer[poolGen]

	mu       sync.Mutex // guards retiring and closed
	retiring []*poolGen // replaced, with requests still in flight
	closed   bool       // Cleanup ran: no more retiring
}

// poolUpstream is an upstream of a pool as its config gives it: an
// address, nothing else (hostctl sets nothing else).
type poolUpstream struct {
	Dial string `json:"dial"`
}

// poolGen is one reverse_proxy handler of a pool, for one upstream list.
type poolGen struct {
	h     *reverseproxy.Handler
	dials []string
	// refs counts the requests in ServeHTTP on h. Once retired, the last
	// to leave closes idle.
	refs     atomic.Int64
	retired  atomic.Bool
	idle     chan struct{}
	idleOnce sync.Once
	stopOnce sync.Once
	cancel   context.CancelFunc // cleans up h and the modules it loaded
}

// CaddyModule returns the Caddy module information.
func (*PoolHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.hostctl_pool",
		New: func() caddy.Module { return new(PoolHandler) },
	}
}

// Provision loads the reverse_proxy handler for the configured upstreams.
func (p *PoolHandler) Provision(ctx caddy.Context) error {
	var tmpl map[string]json.RawMessage
	if err := json.Unmarshal(p.ProxyRaw, &tmpl); err != nil {
		return fmt.Errorf("hostctl_pool: proxy: %w", err)
	}
	var ups []poolUpstream
	if raw, ok := tmpl["upstreams"]; ok {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&ups); err != nil {
			return fmt.Errorf("hostctl_pool: proxy.upstreams: %w", err)
		}
	}
	if name := tmpl["handler"]; string(name) != `"reverse_proxy"` {
		return errors.New(`hostctl_pool: proxy: want {"handler":"reverse_proxy", ...}`)
	}
	if _, ok := tmpl["dynamic_upstreams"]; ok || len(ups) == 0 {
		return errors.New("hostctl_pool: proxy: want static upstreams")
	}
	delete(tmpl, "handler")
	delete(tmpl, "upstreams")
	p.tmpl = tmpl
	// A context of the pool's own, under the config's: cancelling a
	// context from caddy.NewContext also runs its parent's OnCancel
	// functions, and the config's include closing Caddy's logs. This one
	// has none; it is never cancelled itself (it ends with the config's).
	p.base, _ = caddy.NewContext(ctx)
	dials := make([]string, len(ups))
	for i, u := range ups {
		dials[i] = u.Dial
	}
	g, err := p.newGen(dials)
	if err != nil {
		return err
	}
	p.cur.Store(g)
	return nil
}

// newGen loads and provisions a reverse_proxy handler for dials, in a
// context whose cancel stops its health checker and cleans it up.
func (p *PoolHandler) newGen(dials []string) (*poolGen, error) {
	cfg := make(map[string]json.RawMessage, len(p.tmpl)+1)
	for k, v := range p.tmpl {
		cfg[k] = v
	}
	ups := make([]poolUpstream, len(dials))
	for i, d := range dials {
		ups[i].Dial = d
	}
	var err error
	if cfg["upstreams"], err = json.Marshal(ups); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	gctx, cancel := caddy.NewContext(p.base)
	mod, err := gctx.LoadModuleByID("http.handlers.reverse_proxy", raw)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("hostctl_pool: loading the reverse_proxy handler: %w", err)
	}
	return &poolGen{h: mod.(*reverseproxy.Handler), dials: dials, idle: make(chan struct{}), cancel: cancel}, nil
}

func (p *PoolHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// A deploy's gate request goes to the new slot's upstreams (gate.go);
	// no other request can be pinned.
	if g, err := gateGen(r, p); err != nil {
		return caddyhttp.Error(http.StatusBadGateway, err)
	} else if g != nil {
		return g.h.ServeHTTP(w, r, next)
	}
	g := p.acquire()
	defer g.release()
	return g.h.ServeHTTP(w, r, next)
}

// acquire returns the current generation with the request counted in it.
// A generation that was replaced between the load and the count is let
// go: its retirement may have seen no request in it already.
func (p *PoolHandler) acquire() *poolGen {
	for {
		g := p.cur.Load()
		g.refs.Add(1)
		if p.cur.Load() == g {
			return g
		}
		g.release()
	}
}

func (g *poolGen) release() {
	if g.refs.Add(-1) == 0 && g.retired.Load() {
		g.idleOnce.Do(func() { close(g.idle) })
	}
}

// stop cancels g's context: its health checker ends, and Caddy cleans up
// its handler (upgraded connections closed, its hosts released).
func (g *poolGen) stop() { g.stopOnce.Do(g.cancel) }

// prepare loads a generation for dials, or returns nil if the pool has
// them already (in this order).
func (p *PoolHandler) prepare(dials []string) (*poolGen, error) {
	if slices.Equal(p.cur.Load().dials, dials) {
		return nil, nil
	}
	return p.newGen(dials)
}

// commit makes g the pool's handler; the one it replaces is stopped once
// no request is in it.
func (p *PoolHandler) commit(g *poolGen) {
	old := p.cur.Swap(g)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		old.stop()
		return
	}
	p.retiring = append(p.retiring, old)
	p.mu.Unlock()
	old.retired.Store(true)
	if old.refs.Load() == 0 {
		old.idleOnce.Do(func() { close(old.idle) })
	}
	go func() {
		select {
		case <-old.idle:
		case <-p.base.Done(): // the config is unloaded: Cleanup stops it
		}
		old.stop()
		p.mu.Lock()
		p.retiring = slices.DeleteFunc(p.retiring, func(x *poolGen) bool { return x == old })
		p.mu.Unlock()
	}()
}

// gens returns the current handler and those retiring.
func (p *PoolHandler) gens() (cur *reverseproxy.Handler, retiring []*reverseproxy.Handler) {
	if g := p.cur.Load(); g != nil {
		cur = g.h
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.retiring {
		retiring = append(retiring, g.h)
	}
	return cur, retiring
}

// Cleanup stops every generation; the config is unloaded.
func (p *PoolHandler) Cleanup() error {
	p.mu.Lock()
	p.closed = true
	gens := p.retiring
	p.retiring = nil
	p.mu.Unlock()
	if g := p.cur.Load(); g != nil {
		g.stop()
	}
	for _, g := range gens {
		g.stop()
	}
	return nil
}

var (
	_ caddy.Provisioner           = (*PoolHandler)(nil)
	_ caddy.CleanerUpper          = (*PoolHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*PoolHandler)(nil)
)

// poolLists are the upstream lists of a config's pools, by site key: the
// dial addresses of each hostctl_pool, and the upstreams as written of
// each hostctl_site of a pool (with health_path).
type poolLists struct {
	dials map[string][]string
	sites map[string][]string
}

// splitPools returns the generated config js without its pools' upstream
// lists, and those lists. Two configs with the same rest differ in their
// pools' upstreams only: SwapUpstreams can apply one over the other.
func splitPools(js []byte) ([]byte, poolLists, error) {
	lists := poolLists{dials: map[string][]string{}, sites: map[string][]string{}}
	d := json.NewDecoder(bytes.NewReader(js))
	d.UseNumber()
	var tree any
	if err := d.Decode(&tree); err != nil {
		return nil, lists, err
	}
	var walk func(v any) error
	walk = func(v any) error {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				if err := walk(e); err != nil {
					return err
				}
			}
			return nil
		case map[string]any:
			if err := takePoolList(v, lists); err != nil {
				return err
			}
			for _, e := range v {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(tree); err != nil {
		return nil, lists, err
	}
	rest, err := json.Marshal(tree)
	return rest, lists, err
}

// takePoolList moves the upstream list of m, if it is a hostctl_pool or a
// pool's hostctl_site handler, to lists.
func takePoolList(m map[string]any, lists poolLists) error {
	handler, _ := m["handler"].(string)
	key, _ := m["pool"].(string)
	if key == "" || (handler != "hostctl_pool" && handler != "hostctl_site") {
		return nil
	}
	if handler == "hostctl_site" {
		ups, _ := m["upstreams"].([]any)
		list := make([]string, 0, len(ups))
		for _, u := range ups {
			s, ok := u.(string)
			if !ok {
				return fmt.Errorf("hostctl_site %s: upstream %v is not a string", key, u)
			}
			list = append(list, s)
		}
		delete(m, "upstreams")
		lists.sites[key] = list
		return nil
	}
	rp, _ := m["proxy"].(map[string]any)
	ups, _ := rp["upstreams"].([]any)
	list := make([]string, 0, len(ups))
	for _, u := range ups {
		o, _ := u.(map[string]any)
		dial, ok := o["dial"].(string)
		if !ok || len(o) != 1 {
			return fmt.Errorf("hostctl_pool %s: upstream %v: want {\"dial\": ...}", key, u)
		}
		list = append(list, dial)
	}
	delete(rp, "upstreams")
	lists.dials[key] = list
	return nil
}

// SwapUpstreams applies cfg if the config it generates differs from the
// running one only in the upstream lists of sites with several upstreams
// (pools), which it changes without reloading Caddy's config: connections
// to the proxy stay open, requests in flight finish on the upstream list
// they started with, and the health checks, drain marks and retries go on
// with the new list (an upstream in both lists keeps its passive health
// count and its in-flight count; active health checks start over, with a
// check of every upstream at once). It returns false, having changed
// nothing, when cfg differs otherwise, is invalid, or the proxy is not
// running: then Apply it. A site going from one upstream to several, or
// back, is such a change.
func (p *Proxy) SwapUpstreams(cfg Config) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	caddyMu.Lock()
	defer caddyMu.Unlock()
	if !p.running || p.lastShape == nil || len(cfg.validateFields("proxy")) > 0 {
		return false, nil
	}
	caddyCfg, err := cfg.caddyConfig(p.env())
	if err != nil {
		return false, nil // Apply reports it
	}
	js, err := sortedJSON(caddyCfg)
	if err != nil {
		return false, nil
	}
	shape, lists, err := splitPools(js)
	if err != nil || !bytes.Equal(shape, p.lastShape) {
		return false, nil
	}
	oldPeers := p.peers.set(cfg.UpstreamPeers)
	if err := swapPools(lists); err != nil {
		p.peers.restore(oldPeers)
		return false, fmt.Errorf("proxy: changing the upstreams, the previous ones keep serving: %w", err)
	}
	p.lastJSON = js
	p.watchCertFiles(cfg)
	return true, nil
}

// swapPools gives the running config's pools (and their sites' health
// answers) the upstream lists in lists: all of them, or none if one
// cannot be loaded. caddyMu is held.
func swapPools(lists poolLists) error {
	type change struct {
		h *PoolHandler
		g *poolGen
	}
	var changes []change
	var sites []*siteHandler
	var err error
	eachActiveHandler(func(h caddyhttp.MiddlewareHandler) {
		switch h := h.(type) {
		case *PoolHandler:
			dials, ok := lists.dials[h.Pool]
			if !ok || err != nil {
				return
			}
			var g *poolGen
			if g, err = h.prepare(dials); g != nil {
				changes = append(changes, change{h, g})
			}
		case *siteHandler:
			sites = append(sites, h)
		}
	})
	if err != nil {
		for _, c := range changes {
			c.g.stop()
		}
		return err
	}
	for _, c := range changes {
		c.h.commit(c.g)
	}
	for _, s := range sites {
		if ups, ok := lists.sites[s.Pool]; ok && s.Pool != "" {
			s.setUpstreams(ups)
		}
	}
	return nil
}
