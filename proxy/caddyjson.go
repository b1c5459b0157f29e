package proxy

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/encode"
	caddygzip "github.com/caddyserver/caddy/v2/modules/caddyhttp/encode/gzip"
	caddyzstd "github.com/caddyserver/caddy/v2/modules/caddyhttp/encode/zstd"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/headers"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/requestbody"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/rewrite"
	"github.com/caddyserver/caddy/v2/modules/caddypki"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

// defaultErrorPage is the page served for 502/503/504 when no error_page is
// set. configs/error.html is a copy for people to start their own from; a
// test keeps the two equal.
//
//go:embed error.html
var defaultErrorPage []byte

// renewCheckInterval, if set, is how often Caddy checks whether managed
// certificates need renewing (Caddy's default: every 10 minutes, and a
// certificate with less than 5 intervals left is renewed at once). Only
// tests set it, to see short-lived certificates renewed within seconds.
var renewCheckInterval time.Duration

// buildEnv is what the generated JSON needs from the running process.
type buildEnv struct {
	storageRoot string    // the default file storage dir (<state_dir>/caddy); empty: Caddy's default
	spoolDir    string    // where request bodies are spooled (<state_dir>/proxy-bodies); empty: the handlers' default
	validating  bool      // storageRoot is a temporary dir to use whatever Config.Storage says
	secrets     bool      // read the storage's secrets from their files (not for CaddyJSON)
	instance    string    // key of the Proxy whose logger and access log the log modules use
	accessLog   bool      // the Proxy has an access log writer
	warnings    *[]string // if set, gets the Caddyfile adapter's warnings
}

// CaddyJSON returns the Caddy config generated from c, as Apply would load
// it except for the default storage path and log sinks, which Apply adds
// from its Options, and the Redis storage's password and encryption key,
// which Apply reads from their files. It fails on the first problem; Validate reports all of them.
func (c *Config) CaddyJSON() ([]byte, error) {
	if errs := c.validateFields("proxy"); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c.build(buildEnv{})
}

// build is caddyConfig's config as JSON, sorted (sortedJSON). Like
// caddyConfig it assumes c passed validateFields: Apply checks first, so
// each Apply checks once.
func (c *Config) build(env buildEnv) (json.RawMessage, error) {
	cfg, err := c.caddyConfig(env)
	if err != nil {
		return nil, err
	}
	return sortedJSON(cfg)
}

// sortedJSON is v as JSON with every object's keys sorted, numbers as
// written. Caddy's config structs marshal in their fields' order, which
// is Caddy's to change; sorted, the generated config (what Apply compares
// to skip a reload, and the golden files) changes only when what it says
// changes.
func sortedJSON(v any) (json.RawMessage, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("generated Caddy config: %w", err)
	}
	d := json.NewDecoder(bytes.NewReader(js))
	d.UseNumber()
	var tree any
	if err := d.Decode(&tree); err != nil {
		return nil, fmt.Errorf("generated Caddy config: %w", err)
	}
	return json.Marshal(tree)
}

// moduleJSON is v, the config of a Caddy module, as the JSON object that
// names the module under key: {"handler":"reverse_proxy",...}. It is
// caddyconfig.JSONModuleObject, without that one's round trip through
// map[string]any, which turns every number into a float64 (a max_body_size
// or a duration in nanoseconds above 2^53 would change). Like Caddy's
// helpers it returns nil if v cannot be marshaled, which cannot happen to
// the config structs built here; Caddy would refuse the null module.
func moduleJSON(v any, key, name string) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil || len(b) < 2 || b[0] != '{' {
		return nil
	}
	head := `{"` + key + `":"` + name + `"`
	if len(b) == 2 { // {}
		return json.RawMessage(head + "}")
	}
	return json.RawMessage(head + "," + string(b[1:]))
}

// handle is a route without matchers that runs handlers, in order.
func handle(handlers ...json.RawMessage) caddyhttp.Route {
	return caddyhttp.Route{HandlersRaw: handlers}
}

// hostMatch matches requests for any of hosts; nil (every request) when
// there are none.
func hostMatch(hosts []string) caddyhttp.RawMatcherSets {
	if len(hosts) == 0 {
		return nil
	}
	return caddyhttp.RawMatcherSets{{"host": caddyconfig.JSON(caddyhttp.MatchHost(hosts), nil)}}
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// caddyConfig returns the Caddy config for c, which must have passed
// validateFields (it trusts its values; CaddyJSON and Apply check them
// first). It reads the files the config names (the Caddyfile, error
// pages, certificate files) and fails with a *FieldError when one cannot
// be used.
//
// It is made of Caddy's config structs (caddyhttp.Route, reverseproxy.Handler,
// caddytls.AutomationPolicy...) and hostctl's own modules' (ErrorPage,
// UpstreamHandler...), so that a misspelt key does not compile. Where a
// struct holds another module's config as json.RawMessage, moduleJSON or
// caddyconfig.JSON fills it. The storage stays a map (storageJSON says why).
func (c *Config) caddyConfig(env buildEnv) (*caddy.Config, error) {
	cc := c.withDefaults()
	user, err := cc.userRoutes(env.warnings)
	if err != nil {
		return nil, err
	}
	sr, err := cc.routeSites(env)
	if err != nil {
		return nil, err
	}
	apps := caddy.ModuleMap{"http": caddyconfig.JSON(cc.httpApp(env, user, sr), nil)}
	if len(sr.internalHosts) > 0 {
		// The local CA that issues tls = "internal" certificates.
		pki := &caddypki.PKI{CAs: map[string]*caddypki.CA{"local": {InstallTrust: new(false)}}}
		apps["pki"] = caddyconfig.JSON(pki, nil)
	}
	tlsApp, err := cc.tlsApp(sr.internalHosts, sr.acmeHosts, sr.fileCerts)
	if err != nil {
		return nil, err
	}
	if tlsApp != nil {
		apps["tls"] = caddyconfig.JSON(tlsApp, nil)
	}
	cfg := &caddy.Config{
		Admin:   &caddy.AdminConfig{Disabled: true, Config: &caddy.ConfigSettings{Persist: new(false)}},
		AppsRaw: apps,
		Logging: logging(env.instance),
	}
	storage, err := cc.Storage.storageJSON(env.storageRoot, env.secrets)
	if err != nil {
		return nil, err
	}
	if env.validating {
		// Validating provisions every module: it must neither reach a
		// shared storage nor write a local CA into it.
		storage, _ = Storage{}.storageJSON(env.storageRoot, false)
	}
	if storage != nil {
		cfg.StorageRaw = caddyconfig.JSON(storage, nil)
	}
	return cfg, nil
}

// userRoutes returns the Caddyfile's routes, if there is a Caddyfile, and
// adds the adapter's warnings to warnings if that is not nil.
func (cc *Config) userRoutes(warnings *[]string) (caddyhttp.RouteList, error) {
	if cc.Caddyfile == "" {
		return nil, nil
	}
	r, warns, err := caddyfileRoutes(cc.Caddyfile)
	if err != nil {
		return nil, &FieldError{Key: "proxy.caddyfile", Msg: err.Error()}
	}
	if warnings != nil {
		*warnings = append(*warnings, warns...)
	}
	return r, nil
}

// serverRoutes are the sites' routes and error routes sorted by the server
// that serves them, and the host names that need certificates.
type serverRoutes struct {
	http, httpErrors         caddyhttp.RouteList // plain-HTTP sites with host names
	catchAll, catchAllErrors caddyhttp.RouteList // the plain-HTTP site for every host, served last
	tls, tlsErrors           caddyhttp.RouteList // HTTPS sites
	redirects                caddyhttp.RouteList // HTTP->HTTPS, one per HTTPS site
	internalHosts, acmeHosts []string
	fileCerts                []fileCert // sites with cert_file
}

// fileCert is a certificate loaded from files, for hosts.
type fileCert struct {
	cert, key string
	hosts     []string
	sum       string // of the files' contents: a change makes a new config
}

// routeSites builds every site's route and error route and sorts them by
// server and TLS mode. env.instance names the Proxy whose health answers
// and traffic counts the sites' hostctl_site handlers use.
func (cc *Config) routeSites(env buildEnv) (serverRoutes, error) {
	var sr serverRoutes
	for _, s := range cc.sites("proxy") {
		route, errRoute, err := cc.siteRoute(&s, env)
		if err != nil {
			return serverRoutes{}, err
		}
		switch mode := s.tlsMode(); mode {
		case TLSOff:
			if len(s.Hosts) > 0 {
				sr.http = append(sr.http, route)
				sr.httpErrors = append(sr.httpErrors, errRoute)
			} else {
				sr.catchAll = append(sr.catchAll, route)
				sr.catchAllErrors = append(sr.catchAllErrors, errRoute)
			}
		default:
			sr.tls = append(sr.tls, route)
			sr.tlsErrors = append(sr.tlsErrors, errRoute)
			sr.redirects = append(sr.redirects, httpsRedirect(s.Hosts, portOf(cc.ListenTLS)))
			switch mode {
			case tlsFiles:
				fc, err := readFileCert(&s)
				if err != nil {
					return serverRoutes{}, err
				}
				sr.fileCerts = append(sr.fileCerts, fc)
			case TLSInternal:
				sr.internalHosts = append(sr.internalHosts, s.Hosts...)
			default:
				sr.acmeHosts = append(sr.acmeHosts, s.Hosts...)
			}
		}
	}
	return sr, nil
}

// siteRoute returns the site's route (its host names' subroute) and its
// error route (the error page for those host names).
func (cc *Config) siteRoute(s *site, env buildEnv) (route, errRoute caddyhttp.Route, err error) {
	routes, err := cc.siteRoutes(s, env)
	if err != nil {
		return route, errRoute, err
	}
	page := defaultErrorPage
	if s.ErrorPage != "" {
		if page, err = cc.readErrorPage(s); err != nil {
			return route, errRoute, err
		}
	}
	route = caddyhttp.Route{MatcherSetsRaw: hostMatch(s.Hosts), HandlersRaw: siteHandlers(routes), Terminal: true}
	return route, errorRoute(s.Hosts, page), nil
}

// readErrorPage reads the site's error page as the file user: the app's
// user may own it, and a link it plants there must not reach what that
// user could not read (fileuser.go). A page that ReadTrusted accepts (for
// hostctl: only root, or hostctl's user, can change it, along its whole
// path) is read as hostctl instead: nobody else can have planted a link
// there, and it may sit where the file user cannot look (a checkout under
// /root). Without ReadTrusted, every page is read as the file user.
func (cc *Config) readErrorPage(s *site) ([]byte, error) {
	if ReadTrusted != nil {
		if page, err := ReadTrusted(s.ErrorPage, false); err == nil && len(page) <= maxErrorPage {
			return page, nil
		}
	}
	o, release, err := acquireOpener(cc.FileUser)
	if err != nil {
		return nil, &FieldError{Key: "proxy.file_user", Msg: err.Error()}
	}
	defer release()
	page, err := readFileAs(o, s.ErrorPage, maxErrorPage)
	if err != nil {
		msg := fmt.Sprintf("cannot read: %v", unwrapPath(err))
		if errors.Is(err, fs.ErrPermission) {
			msg += fmt.Sprintf(" (read as %s, file_user: it must be able to read the page and the dirs above it)", fileUserName(o))
		}
		return nil, &FieldError{Key: s.key + ".error_page", Msg: msg}
	}
	return page, nil
}

// siteHandlers returns the handlers of a site's route: a subroute of its
// routes if one has a matcher (static files, maintenance), else the routes'
// handlers chained in one route, which does the same (every handler runs,
// in order) without the subroute's per-request cost (15 allocations and
// about 1 kB less per request, BenchmarkProxy).
func siteHandlers(routes caddyhttp.RouteList) []json.RawMessage {
	var handlers []json.RawMessage
	for _, r := range routes {
		if len(r.MatcherSetsRaw) > 0 {
			return []json.RawMessage{moduleJSON(&caddyhttp.Subroute{Routes: routes}, "handler", "subroute")}
		}
		handlers = append(handlers, r.HandlersRaw...)
	}
	return handlers
}

// httpsRedirect sends requests for hosts to the same URL on HTTPS.
func httpsRedirect(hosts []string, httpsPort int) caddyhttp.Route {
	loc := "https://{http.request.host}{http.request.uri}"
	if httpsPort != 443 {
		loc = fmt.Sprintf("https://{http.request.host}:%d{http.request.uri}", httpsPort)
	}
	redirect := &caddyhttp.StaticResponse{StatusCode: "308", Headers: http.Header{"Location": {loc}}}
	return caddyhttp.Route{
		MatcherSetsRaw: hostMatch(hosts),
		HandlersRaw:    []json.RawMessage{moduleJSON(redirect, "handler", "static_response")},
		Terminal:       true,
	}
}

// httpApp returns the http app: the server on Listen, and the one on
// ListenTLS if a site has TLS.
func (cc *Config) httpApp(env buildEnv, user caddyhttp.RouteList, sr serverRoutes) *caddyhttp.App {
	// The HTTP server: redirects for TLS sites first, then the Caddyfile's
	// routes, then plain-HTTP sites (the catch-all last).
	servers := map[string]*caddyhttp.Server{
		"http": cc.server(env, cc.Listen, slices.Concat(sr.redirects, user, sr.http, sr.catchAll),
			slices.Concat(sr.httpErrors, sr.catchAllErrors), false),
	}
	if len(sr.tls) > 0 {
		https := cc.server(env, cc.ListenTLS, slices.Concat(user, sr.tls), sr.tlsErrors, true)
		for _, fc := range sr.fileCerts {
			// Their certificates come from files: Caddy must not ask a CA.
			https.AutoHTTPS.SkipCerts = append(https.AutoHTTPS.SkipCerts, fc.hosts...)
		}
		servers["https"] = https
	}
	return &caddyhttp.App{
		HTTPPort:    portOf(cc.Listen),
		HTTPSPort:   portOf(cc.ListenTLS),
		GracePeriod: caddy.Duration(cc.GracePeriod),
		Servers:     servers,
	}
}

// server returns one http server: its listener, client timeouts,
// protocols, access log and trusted proxies.
func (cc *Config) server(env buildEnv, listen string, routes, errRoutes caddyhttp.RouteList, tls bool) *caddyhttp.Server {
	srv := &caddyhttp.Server{
		Listen:            []string{listen},
		ReadHeaderTimeout: caddy.Duration(cc.ReadHeaderTimeout),
		ReadTimeout:       caddy.Duration(cc.ReadTimeout),
		IdleTimeout:       caddy.Duration(cc.IdleTimeout),
		Routes:            routes,
		Errors:            &caddyhttp.HTTPErrorConfig{Routes: errRoutes},
		Protocols:         []string{"h1", "h2c"},
	}
	if *cc.WriteTimeout > 0 {
		srv.WriteTimeout = caddy.Duration(*cc.WriteTimeout)
	}
	if tls {
		srv.Protocols = []string{"h1", "h2"}
		if cc.HTTP3 {
			srv.Protocols = append(srv.Protocols, "h3")
		}
		// hostctl writes its own redirects (on Listen, with the right port).
		srv.AutoHTTPS = &caddyhttp.AutoHTTPSConfig{DisableRedir: true}
	}
	if *cc.AccessLog && env.accessLog {
		srv.Logs = &caddyhttp.ServerLogConfig{}
	}
	if len(cc.TrustedProxies) > 0 {
		srv.TrustedProxiesRaw = moduleJSON(&caddyhttp.StaticIPRange{Ranges: cc.TrustedProxies}, "source", "static")
	}
	return srv
}

// tlsApp returns the tls app: one certificate automation policy for the
// tls = "internal" hosts (Caddy's local CA) and one for the tls = "auto"
// hosts (ACME), and the certificates loaded from files. It is nil when no
// site has TLS.
func (cc *Config) tlsApp(internalHosts, acmeHosts []string, files []fileCert) (*caddytls.TLS, error) {
	var policies []*caddytls.AutomationPolicy
	if len(internalHosts) > 0 {
		internal := moduleJSON(&caddytls.InternalIssuer{}, "module", "internal")
		policies = append(policies, &caddytls.AutomationPolicy{SubjectsRaw: internalHosts, IssuersRaw: []json.RawMessage{internal}})
	}
	if len(acmeHosts) > 0 {
		issuer, err := cc.acmeIssuer()
		if err != nil {
			return nil, err
		}
		policies = append(policies, &caddytls.AutomationPolicy{SubjectsRaw: acmeHosts, IssuersRaw: []json.RawMessage{issuer}})
	}
	if len(policies) == 0 && len(files) == 0 {
		return nil, nil
	}
	app := &caddytls.TLS{}
	if len(files) > 0 {
		var load caddytls.FileLoader
		for _, fc := range files {
			// The tag carries the files' checksum, so that new contents
			// at the same paths make a different config, which Apply loads.
			// Caddy expands placeholders in the paths: take them as written.
			load = append(load, caddytls.CertKeyFilePair{
				Certificate: escapeBraces(fc.cert), Key: escapeBraces(fc.key), Format: "pem", Tags: []string{"hostctl-" + fc.sum},
			})
		}
		app.CertificatesRaw = caddy.ModuleMap{"load_files": caddyconfig.JSON(load, nil)}
	}
	if len(policies) > 0 {
		app.Automation = &caddytls.AutomationConfig{Policies: policies, RenewCheckInterval: caddy.Duration(renewCheckInterval)}
	}
	return app, nil
}

// readFileCert reads a cert_file site's pair: absolute paths and the
// checksum of both files' contents.
func readFileCert(s *site) (fileCert, error) {
	fc := fileCert{hosts: s.Hosts}
	h := sha256.New()
	for i, p := range []string{s.CertFile, s.KeyFile} {
		abs, err := filepath.Abs(p)
		if err != nil {
			return fileCert{}, err
		}
		b, err := os.ReadFile(abs)
		if err != nil {
			key := s.key + ".cert_file"
			if i == 1 {
				key = s.key + ".key_file"
			}
			return fileCert{}, &FieldError{Key: key, Msg: fmt.Sprintf("cannot read: %v", unwrapPath(err))}
		}
		h.Write(b)
		if i == 0 {
			fc.cert = abs
		} else {
			fc.key = abs
		}
	}
	fc.sum = hex.EncodeToString(h.Sum(nil))[:16]
	return fc, nil
}

// acmeIssuer returns the issuer of tls = "auto" certificates: the ACME
// server ACMECA, trusted through ACMECARoot if set.
func (cc *Config) acmeIssuer() (json.RawMessage, error) {
	// The CA validates on ports 80 and 443; the alternate ports are
	// where the challenges are answered here, which is always by
	// hostctl's own servers on Listen and ListenTLS (Caddy's solvers
	// find those ports taken and leave the answering to them). Caddy
	// would copy http_port and https_port into the issuer too; saying
	// it here keeps the mapping visible.
	issuer := &caddytls.ACMEIssuer{
		CA:    cc.ACMECA,
		Email: cc.Email,
		Challenges: &caddytls.ChallengesConfig{
			HTTP:    &caddytls.HTTPChallengeConfig{AlternatePort: portOf(cc.Listen)},
			TLSALPN: &caddytls.TLSALPNChallengeConfig{AlternatePort: portOf(cc.ListenTLS)},
		},
	}
	if cc.ACMECARoot != "" {
		root, err := filepath.Abs(cc.ACMECARoot)
		if err != nil {
			return nil, err
		}
		issuer.TrustedRootsPEMFiles = []string{root}
	}
	return moduleJSON(issuer, "module", "acme"), nil
}

// logging returns the logging config: Caddy's own logs to the Proxy's
// Logger, access logs to its access log (see logging.go). One log whose
// core sorts the entries costs less per request than a log for each.
func logging(instance string) *caddy.Logging {
	return &caddy.Logging{Logs: map[string]*caddy.CustomLog{
		"default": {BaseLog: caddy.BaseLog{
			WriterRaw: moduleJSON(caddy.DiscardWriter{}, "output", "discard"),
			CoreRaw:   moduleJSON(&logCore{Instance: instance}, "module", "hostctl"),
			Level:     "DEBUG",
		}},
	}}
}

// siteRoutes returns the routes inside one site's subroute, in order: the
// health endpoint and traffic count (with health_path), maintenance, the
// request body limit, static files, then the upstreams (or 404 when there
// are none).
func (cc *Config) siteRoutes(s *site, env buildEnv) (caddyhttp.RouteList, error) {
	var routes caddyhttp.RouteList
	if cc.HealthPath != "" {
		site := &siteHandler{Instance: env.instance, HealthPath: cc.HealthPath, Upstreams: s.upstreams()}
		if cc.pooled(site.Upstreams) {
			site.Pool = s.key
		}
		routes = append(routes, handle(moduleJSON(site, "handler", "hostctl_site")))
	}
	if s.maintenance {
		routes = append(routes, maintenanceRoute(s.Allow))
	}
	if *cc.MaxBodySize > 0 {
		routes = append(routes, handle(moduleJSON(&requestbody.RequestBody{MaxSize: *cc.MaxBodySize}, "handler", "request_body")))
	}
	for _, st := range s.Static {
		r, err := staticRoute(st, cc.FileUser)
		if err != nil {
			return nil, err
		}
		routes = append(routes, r)
	}
	ups := s.upstreams()
	if len(ups) == 0 {
		return append(routes, handle(moduleJSON(&caddyhttp.StaticError{StatusCode: "404"}, "handler", "error"))), nil
	}
	return append(routes, handle(cc.proxyHandlers(s, ups, env)...)), nil
}

// caddyReverseProxyOnly, if set, has every site proxied by Caddy's
// reverse_proxy, as before hostctl_upstream; only benchmarks set it, to
// compare the two.
var caddyReverseProxyOnly bool

// proxyHandlers returns the handlers that proxy to the site's upstreams:
// for one upstream without keep-alive, hostctl_upstream (UpstreamHandler),
// which hands what it does not handle itself to the reverse_proxy inside
// it; for several (a pool), Caddy's reverse_proxy inside hostctl_pool
// (PoolHandler), whose upstreams SwapUpstreams can change; else Caddy's
// reverse_proxy. Request bodies are buffered by hostctl_upstream, or by
// hostctl_request_buffer before the others (spool.go), never by
// reverse_proxy's request_buffers, which would hold them in RAM.
func (cc *Config) proxyHandlers(s *site, ups []string, env buildEnv) []json.RawMessage {
	spoolDir := env.spoolDir
	rp := cc.reverseProxy(s, ups, env.instance)
	var buffer *BodyBuffer
	if *cc.RequestBuffer > 0 {
		buffer = &BodyBuffer{Limit: *cc.RequestBuffer, Memory: *cc.RequestBufferMemory, Dir: spoolDir}
	}
	if len(ups) != 1 || cc.UpstreamKeepAlive || caddyReverseProxyOnly || cc.pooled(ups) {
		if cc.pooled(ups) {
			rp = moduleJSON(&PoolHandler{ProxyRaw: rp, Pool: s.key}, "handler", "hostctl_pool")
		}
		if buffer == nil {
			return []json.RawMessage{rp}
		}
		return []json.RawMessage{moduleJSON(&RequestBuffer{Buffer: *buffer}, "handler", "hostctl_request_buffer"), rp}
	}
	return []json.RawMessage{moduleJSON(&UpstreamHandler{ProxyRaw: rp, Buffer: buffer, Instance: env.instance, HoldFor: caddy.Duration(*cc.HoldFor)}, "handler", "hostctl_upstream")}
}

// maintenanceRoute answers 503 "maintenance" (the error page) to every
// client not in allow.
func maintenanceRoute(allow []string) caddyhttp.Route {
	r := handle(moduleJSON(&caddyhttp.StaticError{StatusCode: "503", Error: "maintenance"}, "handler", "error"))
	if len(allow) > 0 {
		clients := caddy.ModuleMap{"client_ip": caddyconfig.JSON(&caddyhttp.MatchClientIP{Ranges: allow}, nil)}
		not := &caddyhttp.MatchNot{MatcherSetsRaw: []caddy.ModuleMap{clients}}
		r.MatcherSetsRaw = caddyhttp.RawMatcherSets{{"not": caddyconfig.JSON(not, nil)}}
	}
	return r
}

// staticRoute serves st.Dir under st.Path: Cache-Control, the prefix
// stripped, compression, precompressed files, no directory listing.
func staticRoute(st Static, fileUser string) (caddyhttp.Route, error) {
	maxAge := defaultStaticMaxAge
	if st.MaxAge != nil {
		maxAge = *st.MaxAge
	}
	cacheControl := "no-cache"
	if maxAge > 0 {
		cacheControl = fmt.Sprintf("public, max-age=%d", int64(maxAge/time.Second))
	}
	dir, err := filepath.Abs(st.Dir)
	if err != nil {
		return caddyhttp.Route{}, err
	}
	prefix := st.Path
	match := caddyhttp.MatchPath{prefix + "*"}
	if prefix[len(prefix)-1] == '/' {
		// "/static/" also serves "/static" (the directory itself is never listed).
		match = append(match, prefix[:len(prefix)-1])
	}
	cache := &headers.Handler{Response: &headers.RespHeaderOps{
		HeaderOps: &headers.HeaderOps{Set: http.Header{"Cache-Control": {cacheControl}}},
	}}
	compress := &encode.Encode{
		EncodingsRaw: caddy.ModuleMap{
			"zstd": caddyconfig.JSON(&caddyzstd.Zstd{}, nil),
			"gzip": caddyconfig.JSON(&caddygzip.Gzip{}, nil),
		},
		Prefer: []string{"zstd", "gzip"},
	}
	files := &StaticFiles{Root: dir, Precompressed: []string{"br", "zstd", "gzip"}, FileUser: fileUser}
	return caddyhttp.Route{
		MatcherSetsRaw: caddyhttp.RawMatcherSets{{"path": caddyconfig.JSON(match, nil)}},
		HandlersRaw: []json.RawMessage{
			moduleJSON(cache, "handler", "headers"),
			moduleJSON(&rewrite.Rewrite{StripPathPrefix: trimSlash(prefix)}, "handler", "rewrite"),
			moduleJSON(compress, "handler", "encode"),
			moduleJSON(files, "handler", "hostctl_static"),
		},
		Terminal: true,
	}, nil
}

// reverseProxy returns the reverse_proxy handler for the site's upstreams
// ups: its transport, load balancing with retries, and
// active and passive health checks when there is more than one upstream.
func (cc *Config) reverseProxy(s *site, ups []string, instance string) json.RawMessage {
	rp := &reverseproxy.Handler{
		TransportRaw:   moduleJSON(cc.upstreamTransport(instance), "protocol", "hostctl_http"),
		LoadBalancing:  cc.loadBalancing(cc.pooled(ups), instance),
		TrustedProxies: cc.TrustedProxies,
	}
	for _, u := range ups {
		rp.Upstreams = append(rp.Upstreams, &reverseproxy.Upstream{Dial: dialAddress(u)})
	}
	if len(ups) > 1 {
		rp.HealthChecks = &reverseproxy.HealthChecks{Active: cc.activeHealthCheck(s)}
		if fd := *cc.Health.FailDuration; fd > 0 {
			// Caddy counts a failed request against its upstream
			// for fail_duration; max_fails of them take it out.
			rp.HealthChecks.Passive = &reverseproxy.PassiveHealthChecks{FailDuration: caddy.Duration(fd), MaxFails: cc.Health.MaxFails}
		}
	}
	return moduleJSON(rp, "handler", "reverse_proxy")
}

// upstreamTransport is how the proxy connects to upstreams: plain HTTP,
// keep-alive only if UpstreamKeepAlive, the dial and response timeouts;
// unix sockets are dialed without following a symlink and their peer
// checked against instance's UpstreamPeers (unixdial.go).
func (cc *Config) upstreamTransport(instance string) *CheckedTransport {
	keepAlive := &reverseproxy.KeepAlive{Enabled: new(cc.UpstreamKeepAlive)}
	if cc.UpstreamKeepAlive {
		keepAlive.MaxIdleConnsPerHost = 64
	}
	return &CheckedTransport{HTTPTransport: reverseproxy.HTTPTransport{
		KeepAlive:             keepAlive,
		DialTimeout:           caddy.Duration(cc.DialTimeout),
		ResponseHeaderTimeout: caddy.Duration(cc.UpstreamTimeout),
	}, Instance: instance}
}

// loadBalancing picks the upstream with the fewest requests in flight and,
// unless RetryFor is 0, retries for RetryFor every 250 ms. A pool (several
// upstreams) skips those the Proxy instance drains (hostctl_least_conn).
func (cc *Config) loadBalancing(pool bool, instance string) *reverseproxy.LoadBalancing {
	lb := &reverseproxy.LoadBalancing{SelectionPolicyRaw: moduleJSON(&reverseproxy.LeastConnSelection{}, "policy", "least_conn")}
	if pool {
		sel := &DrainAwareSelection{Instance: instance}
		if *cc.Health.FailDuration > 0 {
			sel.MaxFails = cc.Health.MaxFails
		}
		lb.SelectionPolicyRaw = moduleJSON(sel, "policy", "hostctl_least_conn")
	}
	if *cc.RetryFor > 0 {
		lb.TryDuration = caddy.Duration(*cc.RetryFor)
		lb.TryInterval = caddy.Duration(250 * time.Millisecond)
	}
	return lb
}

// activeHealthCheck checks each upstream at Health.Path, with the Host
// header Health.Host or else the site's first host name.
func (cc *Config) activeHealthCheck(s *site) *reverseproxy.ActiveHealthChecks {
	active := &reverseproxy.ActiveHealthChecks{
		URI:      cc.Health.Path,
		Interval: caddy.Duration(cc.Health.Interval),
		Timeout:  caddy.Duration(cc.Health.Timeout),
	}
	if st := cc.Health.Status; st != 2 {
		active.ExpectStatus = st
	}
	host := cc.Health.Host
	if host == "" && len(s.Hosts) > 0 {
		host = s.Hosts[0]
	}
	if host != "" {
		active.Headers = http.Header{"Host": {host}}
	}
	return active
}

func trimSlash(p string) string {
	if len(p) > 1 && p[len(p)-1] == '/' {
		return p[:len(p)-1]
	}
	return p
}

// errorRoute serves page with the error's own status for 502, 503 and 504,
// as written but for {http.error.status_code} (hostctl_error_page).
func errorRoute(hosts []string, page []byte) caddyhttp.Route {
	match := caddy.ModuleMap{
		"expression": caddyconfig.JSON(&caddyhttp.MatchExpression{Expr: "{http.error.status_code} in [502, 503, 504]"}, nil),
	}
	if len(hosts) > 0 {
		match["host"] = caddyconfig.JSON(caddyhttp.MatchHost(hosts), nil)
	}
	return caddyhttp.Route{
		MatcherSetsRaw: caddyhttp.RawMatcherSets{match},
		HandlersRaw:    []json.RawMessage{moduleJSON(&ErrorPage{Body: string(page)}, "handler", "hostctl_error_page")},
		Terminal:       true,
	}
}

// caddyfileRoutes adapts a Caddyfile and returns the routes of all its
// servers, not terminal, so that a site block that does not answer a
// request lets hostctl's routes run.
func caddyfileRoutes(path string) (routes caddyhttp.RouteList, warnings []string, err error) {
	// Its placeholders ({file.PATH}, {env.NAME}) run as root: it is read
	// under the rule for the files root believes.
	body, err := readTrusted(path, false)
	if err != nil {
		return nil, nil, readError(err)
	}
	if err := checkCaddyfileImports(path, body); err != nil {
		return nil, nil, err
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		return nil, nil, errors.New("the caddyfile adapter is not compiled in")
	}
	out, warns, err := adapter.Adapt(body, map[string]any{"filename": path})
	if err != nil {
		return nil, nil, err
	}
	for _, w := range warns {
		warnings = append(warnings, w.String())
	}
	var parsed struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes caddyhttp.RouteList `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &parsed); err != nil {
		return nil, nil, fmt.Errorf("reading adapted Caddyfile: %w", err)
	}
	servers := parsed.Apps.HTTP.Servers
	for _, name := range slices.Sorted(maps.Keys(servers)) {
		for _, r := range servers[name].Routes {
			r.Terminal = false
			routes = append(routes, r)
		}
	}
	return routes, warnings, nil
}

// checkCaddyfileImports puts every file the Caddyfile at path imports
// (import, directly or through snippets and other imports) under the same
// rule as the Caddyfile: their placeholders run as root too.
func checkCaddyfileImports(path string, body []byte) error {
	blocks, err := caddyfile.Parse(path, body)
	if err != nil {
		return err
	}
	seen := map[string]bool{path: true}
	check := func(tok caddyfile.Token) error {
		if tok.File == "" || seen[tok.File] {
			return nil
		}
		seen[tok.File] = true
		if _, err := readTrusted(tok.File, false); err != nil {
			return fmt.Errorf("imports %s: %w", tok.File, readError(err))
		}
		return nil
	}
	for _, b := range blocks {
		for _, t := range b.Keys {
			if err := check(t); err != nil {
				return err
			}
		}
		for _, seg := range b.Segments {
			for _, t := range seg {
				if err := check(t); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
