package proxy

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// DefaultStateDir is used when Options.StateDir is empty.
const DefaultStateDir = "/var/lib/hostctl"

// Options are the Proxy's ties to the rest of the process.
type Options struct {
	// Logger receives Caddy's own logs (named "caddy.<module>"), filtered
	// by the Logger's level. If nil, they are dropped.
	Logger *zap.Logger

	// StateDir is hostctl's state directory. Certificates, ACME accounts
	// and the local CA live in <StateDir>/caddy unless Config.Storage
	// says otherwise; request bodies past request_buffer_memory are
	// spooled in <StateDir>/proxy-bodies (0700, created if missing). If
	// empty, DefaultStateDir.
	StateDir string

	// AccessLog receives one JSON line per request when access_log is on,
	// in writes of whole lines gathered for up to 64 KiB or one second
	// (and at Stop). If nil, there is no access log. It is not closed by
	// the Proxy.
	AccessLog io.Writer

	// OnCertEvent, if set, is called after each attempt to obtain or renew
	// a certificate for a site with TLS, successful or not (Caddy retries
	// failed attempts on its own, with growing intervals, and reports each
	// one), whatever level Logger keeps. It is called on the goroutine
	// that manages that certificate, which waits for it: it must return
	// quickly and must not call the Proxy; hand the event to another
	// goroutine, for example by a non-blocking send on a buffered channel.
	// Calls may come from several goroutines at once (one per
	// certificate), and for an attempt that was under way, until Stop or
	// the reload that ends it returns.
	OnCertEvent func(CertEvent)

	// SiteHealth, if set, answers health_path for a site whose upstreams
	// (as written in the config) are given: ok, and why in a few words
	// ("gunicorn RUNNING", "draining since 10:04:05"), which the answer's
	// body carries. It is called for each request to health_path, on the
	// request's goroutine, and must return quickly without calling the
	// Proxy. If nil, health_path always answers 200.
	SiteHealth func(upstreams []string) (ok bool, why string)
}

// Proxy runs the embedded Caddy. Caddy is global to the process: only one
// Proxy may be running at a time. The zero value is not usable; call New.
type Proxy struct {
	opts     Options
	instance string
	access   *accessBuffer // holds access log lines for opts.AccessLog; nil without
	traffic  *traffic      // requests to sites with health_path (sitehealth.go)
	drains   *drainSet     // upstreams taken out of their pools (upstreamdrain.go)
	peers    *peerTable    // who may listen on unix upstreams (unixdial.go)

	// mu serializes Apply, Stop and Status and guards the fields below.
	mu       sync.Mutex
	running  bool
	lastJSON []byte
	// lastShape is lastJSON without the pools' upstream lists
	// (splitPools): SwapUpstreams applies a config with the same shape.
	lastShape []byte
	listen    []string
	tlsHosts  []string
	// down is closed once the running config's servers have begun
	// shutting down (see reload.go).
	down *serversDown
	// cfg is the running config, re-applied when its certificate files
	// change (certfiles.go); certStamp is what those files looked like at
	// the last check; certStop ends the goroutine that checks them.
	cfg       Config
	certStamp string
	certStop  chan struct{}
}

// current is the running Proxy, if any (guarded by currentMu); Validate
// uses its storage and log sinks so that validating in a running process
// leaves Caddy's global logger and storage as they are.
var (
	currentMu sync.Mutex
	current   *Proxy
)

// caddyMu serializes what touches Caddy's process-global state: Apply,
// Stop and validateCaddy (caddy.Validate provisions and cleans up modules,
// which set up logging, metrics and the certificate cache). Lock order:
// Proxy.mu, then caddyMu, then currentMu.
var caddyMu sync.Mutex

// New returns a stopped Proxy.
func New(opts Options) *Proxy {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.StateDir == "" {
		opts.StateDir = DefaultStateDir
	}
	p := &Proxy{opts: opts, traffic: newTraffic(), drains: newDrainSet(), peers: newPeerTable()}
	if opts.AccessLog != nil {
		p.access = newAccessBuffer(opts.AccessLog)
	}
	p.instance = registerSink(&sink{logger: opts.Logger, access: p.access, onCert: opts.OnCertEvent,
		health: opts.SiteHealth, traffic: p.traffic, drains: p.drains, peers: p.peers})
	redisLogger.Store(opts.Logger.Named("caddy.storage.redis"))
	return p
}

func (p *Proxy) env() buildEnv {
	return buildEnv{
		storageRoot: filepath.Join(p.opts.StateDir, "caddy"),
		spoolDir:    filepath.Join(p.opts.StateDir, spoolDirName),
		secrets:     true,
		instance:    p.instance,
		accessLog:   p.opts.AccessLog != nil,
	}
}

// Apply makes cfg the running configuration. The first call starts Caddy;
// later calls reload it only if the generated Caddy config changed, which
// Caddy does without dropping requests in flight (idle keep-alive
// connections are closed). When Apply returns, the new config answers
// every request that follows: the previous config's servers have closed
// their listeners, and a request that reaches one of them on a keep-alive
// connection gets the connection closed, to be resent on a new one. If the
// config is invalid or the reload fails (a port is taken), Apply returns
// the error and the previous config keeps serving.
//
// Side effects the caller should know about:
//   - caddy.Load sends READY=1 (first start) and RELOADING=1 then READY=1
//     (reload) to systemd's NOTIFY_SOCKET when that variable was set at
//     process start. Under Type=notify, call Apply when hostctl as a whole
//     is ready, or expect systemd to see READY=1 early.
//   - If a site has TLS and XDG_DATA_HOME is unset, Apply sets it to
//     StateDir: Caddy's certificate storage cleaner writes instance.uuid
//     to $XDG_DATA_HOME/caddy, else to ~/.local/share/caddy. Programs
//     started later inherit the variable unless their environment is
//     built without it. Without TLS sites nothing reads it and it is left
//     alone.
//   - The first call redirects Caddy's process-wide default logger to
//     Options.Logger.
func (p *Proxy) Apply(cfg Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.apply(cfg)
}

// apply is Apply; p.mu is held.
func (p *Proxy) apply(cfg Config) error {
	caddyMu.Lock()
	defer caddyMu.Unlock()

	currentMu.Lock()
	other := current != nil && current != p
	currentMu.Unlock()
	if other {
		return errors.New("proxy: another Proxy is running in this process (Caddy is global); stop it first")
	}

	if errs := cfg.validateFields("proxy"); len(errs) > 0 {
		return errors.Join(errs...)
	}
	env := p.env()
	var warnings []string
	env.warnings = &warnings
	caddyCfg, err := cfg.caddyConfig(env)
	if err != nil {
		return err
	}
	js, err := sortedJSON(caddyCfg)
	if err != nil {
		return err
	}
	if p.running && bytes.Equal(js, p.lastJSON) {
		p.peers.set(cfg.UpstreamPeers) // a program's user may have changed
		p.watchCertFiles(cfg)
		return nil
	}
	for _, w := range warnings {
		p.opts.Logger.Warn("caddyfile: "+w, zap.String("key", "proxy.caddyfile"))
	}
	if st := cfg.Storage.withDefaults(); st.Type == StorageFile {
		if err := os.MkdirAll(st.fileDir(env.storageRoot), 0o700); err != nil {
			return fmt.Errorf("proxy: creating storage dir: %w", err)
		}
	}
	if os.Getenv("XDG_DATA_HOME") == "" && cfg.hasTLS() {
		os.Setenv("XDG_DATA_HOME", p.opts.StateDir)
	}

	down, key := newServersDown()
	defer dropServersDown(key)
	withReloadApp(caddyCfg, key)
	// One webserver at a time sets up a local CA in shared storage (calock.go).
	lockKey := withCALock(caddyCfg)
	defer releaseCALock(lockKey)
	loadJS, err := json.Marshal(caddyCfg)
	if err != nil {
		return fmt.Errorf("proxy: generated Caddy config: %w", err)
	}

	var orig *zap.Logger
	if !p.running {
		// Hold Caddy's own log lines (such as "redirected default logger")
		// until its logging config, which sends them to our Logger, is up.
		_, orig, _ = caddy.BufferedLog()
	}
	// The new config's upstreams are checked against their programs' uids
	// from its first connection; the old ones keep theirs if it fails.
	oldPeers := p.peers.set(cfg.UpstreamPeers)
	if err := caddy.Load(loadJS, false); err != nil {
		p.peers.restore(oldPeers)
		if orig != nil {
			caddy.UnbufferDefaultLogger(orig)
		}
		cc := cfg.withDefaults()
		err = storageError(&cc, err)
		if p.running {
			return fmt.Errorf("proxy: reload failed, the previous config keeps serving: %w", err)
		}
		return fmt.Errorf("proxy: starting: %w", err)
	}
	// caddy.Load has started the old servers' shutdown but not waited for it.
	p.awaitServersDown(p.down)
	p.down = down
	cc := cfg.withDefaults()
	bodies.setLimits(*cc.RequestBufferTotalMemory, *cc.RequestBufferTotalDisk)
	p.running = true
	p.lastJSON = js
	p.lastShape = nil
	if shape, _, err := splitPools(js); err == nil {
		p.lastShape = shape
	}
	p.listen = []string{cc.Listen}
	p.tlsHosts = nil
	for _, s := range cc.sites("proxy") {
		if s.tlsMode() != TLSOff {
			p.tlsHosts = append(p.tlsHosts, s.Hosts...)
		}
	}
	if len(p.tlsHosts) > 0 {
		p.listen = append(p.listen, cc.ListenTLS)
	}
	p.watchCertFiles(cfg)
	currentMu.Lock()
	current = p
	currentMu.Unlock()
	return nil
}

// Stop stops Caddy: when it returns the listeners are closed; requests in
// flight are given Caddy's grace period. Stop on a stopped Proxy does
// nothing.
func (p *Proxy) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	caddyMu.Lock()
	defer caddyMu.Unlock()
	if !p.running {
		return nil
	}
	err := caddy.Stop()
	p.awaitServersDown(p.down)
	if p.access != nil {
		p.access.Flush()
	}
	p.down = nil
	p.running = false
	p.lastJSON = nil
	p.lastShape = nil
	p.stopCertWatch()
	currentMu.Lock()
	if current == p {
		current = nil
	}
	currentMu.Unlock()
	if err != nil {
		return fmt.Errorf("proxy: stopping: %w", err)
	}
	return nil
}

// Status is the proxy's state for the status command and metrics.
type Status struct {
	Running      bool                `json:"running"`
	Listen       []string            `json:"listen"`
	Upstreams    []UpstreamStatus    `json:"upstreams"`
	Certificates []CertificateStatus `json:"certificates"`
}

// UpstreamStatus is one upstream as the reverse proxy sees it.
type UpstreamStatus struct {
	// Address as written in the config ("127.0.0.1:8000", "unix:/run/app.sock").
	Address string `json:"address"`
	// Healthy is false while the upstream is out of its pool: its active
	// health check fails, or it failed max_fails requests within
	// fail_duration (passive checks). Both run only for sites with several
	// upstreams; a single upstream is always "healthy" here (requests to
	// it are retried for retry_for instead), so check its address directly
	// to know whether it is up.
	Healthy bool `json:"healthy"`
	// Down says why the upstream is out of its pool ("health check
	// failing", "3 failed requests within 10s"); empty while it is healthy.
	Down string `json:"down,omitempty"`
	// Fails is the number of failed requests to the upstream within the
	// last fail_duration (passive health checks; always 0 for a single
	// upstream).
	Fails int `json:"fails"`
	// Requests is the number of requests in flight to this upstream now.
	Requests int `json:"requests"`
	// Draining is true while the upstream is taken out of its pool
	// before its program stops (TryDrain): it gets no new request, and
	// Requests are those it is finishing.
	Draining bool `json:"draining,omitempty"`
	// Held is the number of requests waiting, not dialled, while a
	// site's single upstream is draining (held: TryDrain's Held); they
	// go on when it is undrained or after retry_for (HoldUntil: longer,
	// up to hold_for), or get the error page after ReleaseDown.
	Held int `json:"held,omitempty"`
}

// CertificateStatus is one certificate in storage for a configured host.
type CertificateStatus struct {
	Names    []string  `json:"names"`
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"not_after"`
}

// Status returns the current state; it reads Caddy in-process.
func (p *Proxy) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Status{Running: p.running, Listen: slices.Clone(p.listen)}
	if !p.running {
		return st
	}
	seen := map[string]bool{}
	for _, ph := range activeProxyHandlers() {
		for _, u := range ph.Upstreams {
			addr := upstreamFromDial(u.Dial)
			if seen[addr] {
				continue
			}
			seen[addr] = true
			us := upstreamStatus(ph, u, addr)
			us.Draining = p.drains.has(u.Dial)
			if !us.Healthy && available(u, passiveMaxFails(ph.Handler), p.drains.checkedMarks(), time.Now().UnixNano()) {
				// Its check passed just now (CheckHealth).
				us.Healthy, us.Down = true, ""
			}
			st.Upstreams = append(st.Upstreams, us)
		}
	}
	st.Certificates = append(p.certificates(), p.fileCertificates()...)
	return st
}

// upstreamStatus is u, an upstream of h, written addr, as Status reports it.
func upstreamStatus(h proxyHandler, u *reverseproxy.Upstream, addr string) UpstreamStatus {
	st := UpstreamStatus{Address: addr, Healthy: u.Healthy(), Fails: u.Fails(), Requests: u.NumRequests() + h.ownInFlight(), Held: h.ownHeld()}
	if st.Healthy {
		return st
	}
	st.Down = "health check failing"
	if hc := h.HealthChecks; hc != nil && hc.Passive != nil && hc.Passive.FailDuration > 0 && st.Fails >= hc.Passive.MaxFails {
		st.Down = fmt.Sprintf("%d failed requests within %s", st.Fails, time.Duration(hc.Passive.FailDuration))
	}
	return st
}

// proxyHandler is a reverse_proxy handler of the running config, and the
// hostctl_upstream handler that wraps it, if one does.
type proxyHandler struct {
	*reverseproxy.Handler
	own *UpstreamHandler
	// retiring: a pool's handler for its previous upstream list
	// (SwapUpstreams), with requests still in flight; new requests go
	// to the pool's current one.
	retiring bool
}

// ownInFlight is the number of requests hostctl_upstream has in flight
// itself (those it hands to reverse_proxy are counted by reverse_proxy).
func (ph proxyHandler) ownInFlight() int {
	if ph.own == nil {
		return 0
	}
	return int(ph.own.inFlight.Load())
}

// ownHeld is the number of requests hostctl_upstream holds now.
func (ph proxyHandler) ownHeld() int {
	if ph.own == nil {
		return 0
	}
	return int(ph.own.held.Load())
}

// activeProxyHandlers walks the running http app's routes, subroutes
// included, to its reverse proxy handlers: a pool's current one first,
// then those retiring.
func activeProxyHandlers() []proxyHandler {
	var out []proxyHandler
	eachActiveHandler(func(h caddyhttp.MiddlewareHandler) {
		switch h := h.(type) {
		case *reverseproxy.Handler:
			out = append(out, proxyHandler{Handler: h})
		case *UpstreamHandler:
			out = append(out, proxyHandler{Handler: h.proxy, own: h})
		case *PoolHandler:
			cur, retiring := h.gens()
			if cur != nil {
				out = append(out, proxyHandler{Handler: cur})
			}
			for _, r := range retiring {
				out = append(out, proxyHandler{Handler: r, retiring: true})
			}
		}
	})
	return out
}

// eachActiveHandler calls fn with each handler of the running http app's
// routes, subroutes included (and the subroutes themselves), servers in
// name order.
func eachActiveHandler(fn func(caddyhttp.MiddlewareHandler)) {
	ctx := caddy.ActiveContext()
	if ctx.Context == nil {
		return
	}
	app, err := ctx.AppIfConfigured("http")
	if err != nil || app == nil {
		return
	}
	httpApp, ok := app.(*caddyhttp.App)
	if !ok {
		return
	}
	var walk func(caddyhttp.RouteList)
	walk = func(routes caddyhttp.RouteList) {
		for _, r := range routes {
			for _, h := range r.Handlers {
				fn(h)
				if sr, ok := h.(*caddyhttp.Subroute); ok {
					walk(sr.Routes)
				}
			}
		}
	}
	names := make([]string, 0, len(httpApp.Servers))
	for name := range httpApp.Servers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		walk(httpApp.Servers[name].Routes)
	}
}

// certificates reads the certificates of the configured TLS hosts from the
// running config's storage (certificates/<issuer>/<name>/<name>.crt), the
// file system or Redis, giving a shared storage up to two seconds.
func (p *Proxy) certificates() []CertificateStatus {
	stor := caddy.ActiveContext().Storage()
	if stor == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out []CertificateStatus
	issuers, _ := stor.List(ctx, "certificates", false)
	for _, host := range p.tlsHosts {
		for _, iss := range issuers {
			issuer := path.Base(iss)
			b, err := stor.Load(ctx, certmagic.StorageKeys.SiteCert(issuer, strings.ToLower(host)))
			if err != nil {
				continue
			}
			blk, _ := pem.Decode(b)
			if blk == nil {
				continue
			}
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				continue
			}
			out = append(out, CertificateStatus{Names: cert.DNSNames, Issuer: issuer, NotAfter: cert.NotAfter})
		}
	}
	return out
}

// validateCaddy provisions the generated config with caddy.Validate, on a
// temporary storage dir that is removed afterwards: validating neither
// reaches a shared storage ([proxy.storage] type = "redis": an unreachable
// server fails the proxy's start instead) nor writes a local CA into it.
// In a process where a Proxy runs, it uses that Proxy's log sinks
// (caddy.Validate replaces Caddy's global default logger) and puts back
// CertMagic's default storage, which caddy.Validate replaces too.
func validateCaddy(c *Config, prefix string) error {
	caddyMu.Lock()
	defer caddyMu.Unlock()
	currentMu.Lock()
	p := current
	currentMu.Unlock()
	dir, err := os.MkdirTemp("", "hostctl-check-")
	if err != nil {
		return &FieldError{Key: prefix, Msg: err.Error()}
	}
	defer os.RemoveAll(dir)
	var env buildEnv
	if p != nil {
		env = p.env()
		defer func(s certmagic.Storage) { certmagic.Default.Storage = s }(certmagic.Default.Storage)
	} else {
		// Validating sets up Caddy's logging, whose first line ("redirected
		// default logger") would go to stderr: hold it and drop it.
		_, _, _ = caddy.BufferedLog()
		defer caddy.UnbufferDefaultLogger(zap.NewNop())
	}
	env.storageRoot, env.validating, env.secrets = dir, true, false
	env.spoolDir = filepath.Join(dir, spoolDirName)
	err = provision(c, env)
	if err == nil {
		return nil
	}
	if fe, ok := errors.AsType[*FieldError](err); ok {
		// From building the config (the Caddyfile adapter, an error page):
		// it knows its key.
		fe.Key = prefix + strings.TrimPrefix(fe.Key, "proxy")
		return fe
	}
	key := prefix
	if c.Caddyfile != "" {
		// Caddy's errors name modules and route numbers, not the file a
		// route came from: if hostctl's own routes pass without the
		// Caddyfile's, the Caddyfile is what Caddy rejects.
		own := *c
		own.Caddyfile = ""
		if provision(&own, env) == nil {
			key = prefix + ".caddyfile"
		}
	}
	return &FieldError{Key: key, Msg: err.Error()}
}

// provision builds c's Caddy config and has Caddy load and provision every
// module in it, opening no listener (caddy.Validate).
func provision(c *Config, env buildEnv) error {
	cfg, err := c.caddyConfig(env)
	if err != nil {
		return err
	}
	if err := caddy.Validate(cfg); err != nil {
		return fmt.Errorf("Caddy rejects the generated config: %w", err)
	}
	return nil
}
