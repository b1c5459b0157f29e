package proxy

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// defaultErrorPage is the page served for 502/503/504 when no error_page is
// set. configs/error.html is a copy for people to start their own from; a
// test keeps the two equal.
//
//go:embed error.html
var defaultErrorPage []byte

// obj is a JSON object; maps marshal with sorted keys, so the generated
// config is byte-for-byte stable and can be compared to skip reloads.
type obj = map[string]any

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
	return c.caddyJSON(buildEnv{})
}

// caddyJSON is build's config as JSON. Like build it assumes c passed
// validateFields: Apply checks first, so each Apply checks once.
func (c *Config) caddyJSON(env buildEnv) ([]byte, error) {
	cfg, err := c.build(env)
	if err != nil {
		return nil, err
	}
	return json.Marshal(cfg)
}

func dur(d time.Duration) int64 { return int64(d) }

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// build returns the Caddy config for c, which must have passed
// validateFields (build trusts its values; CaddyJSON and Apply check them
// first). It reads the files the config names (the Caddyfile, error
// pages) and fails with a *FieldError when one cannot be used.
func (c *Config) build(env buildEnv) (obj, error) {
	cc := c.withDefaults()
	user, err := cc.userRoutes(env.warnings)
	if err != nil {
		return nil, err
	}
	sr, err := cc.routeSites(env)
	if err != nil {
		return nil, err
	}
	apps := obj{"http": cc.httpApp(env, user, sr)}
	if len(sr.internalHosts) > 0 {
		// The local CA that issues tls = "internal" certificates.
		apps["pki"] = obj{"certificate_authorities": obj{"local": obj{"install_trust": false}}}
	}
	tlsApp, err := cc.tlsApp(sr.internalHosts, sr.acmeHosts, sr.fileCerts)
	if err != nil {
		return nil, err
	}
	if tlsApp != nil {
		apps["tls"] = tlsApp
	}
	cfg := obj{
		"admin":   obj{"disabled": true, "config": obj{"persist": false}},
		"apps":    apps,
		"logging": logging(env.instance),
	}
	storage, err := cc.Storage.storageJSON(env.storageRoot, env.secrets)
	if err != nil {
		return nil, err
	}
	if env.validating {
		// Validating provisions every module: it must neither reach a
		// shared storage nor write a local CA into it.
		storage = obj{"module": "file_system", "root": env.storageRoot}
	}
	if storage != nil {
		cfg["storage"] = storage
	}
	return cfg, nil
}

// userRoutes returns the Caddyfile's routes, if there is a Caddyfile, and
// adds the adapter's warnings to warnings if that is not nil.
func (cc *Config) userRoutes(warnings *[]string) ([]json.RawMessage, error) {
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
	http, httpErrors         []any // plain-HTTP sites with host names
	catchAll, catchAllErrors []any // the plain-HTTP site for every host, served last
	tls, tlsErrors           []any // HTTPS sites
	redirects                []any // HTTP->HTTPS, one per HTTPS site
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
func (cc *Config) siteRoute(s *site, env buildEnv) (route, errRoute obj, err error) {
	routes, err := cc.siteRoutes(s, env)
	if err != nil {
		return nil, nil, err
	}
	page := defaultErrorPage
	if s.ErrorPage != "" {
		if page, err = cc.readErrorPage(s); err != nil {
			return nil, nil, err
		}
	}
	route = obj{"handle": siteHandlers(routes), "terminal": true}
	if len(s.Hosts) > 0 {
		route["match"] = []any{obj{"host": s.Hosts}}
	}
	return route, errorRoute(s.Hosts, page), nil
}

// readErrorPage reads the site's error page. A page that only root (or
// hostctl's user) can change, along its whole path (checkTrustedFile), is
// read as hostctl: nobody else can have planted a link there, and it may
// sit where the file user cannot look (a checkout under /root). Any other
// page is read as the file user: the app's user may own it, and a link it
// plants there must not reach what that user could not read (fileuser.go).
func (cc *Config) readErrorPage(s *site) ([]byte, error) {
	if checkTrustedFile(s.ErrorPage) == nil {
		if page, err := readFileLimit(s.ErrorPage, maxErrorPage); err == nil {
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
func siteHandlers(routes []any) []any {
	var handlers []any
	for _, r := range routes {
		r := r.(obj)
		if _, matched := r["match"]; matched {
			return []any{obj{"handler": "subroute", "routes": routes}}
		}
		handlers = append(handlers, r["handle"].([]any)...)
	}
	return handlers
}

// httpsRedirect sends requests for hosts to the same URL on HTTPS.
func httpsRedirect(hosts []string, httpsPort int) obj {
	loc := "https://{http.request.host}{http.request.uri}"
	if httpsPort != 443 {
		loc = fmt.Sprintf("https://{http.request.host}:%d{http.request.uri}", httpsPort)
	}
	return obj{
		"match": []any{obj{"host": hosts}},
		"handle": []any{obj{
			"handler": "static_response", "status_code": 308,
			"headers": obj{"Location": []string{loc}},
		}},
		"terminal": true,
	}
}

// httpApp returns the http app: the server on Listen, and the one on
// ListenTLS if a site has TLS.
func (cc *Config) httpApp(env buildEnv, user []json.RawMessage, sr serverRoutes) obj {
	servers := obj{}
	// The HTTP server: redirects for TLS sites first, then the Caddyfile's
	// routes, then plain-HTTP sites (the catch-all last).
	httpAll := append(append([]any{}, sr.redirects...), withUserRoutes(user, append(sr.http, sr.catchAll...))...)
	servers["http"] = cc.server(env, cc.Listen, httpAll, append(sr.httpErrors, sr.catchAllErrors...), false)
	if len(sr.tls) > 0 {
		https := cc.server(env, cc.ListenTLS, withUserRoutes(user, sr.tls), sr.tlsErrors, true)
		var skip []string
		for _, fc := range sr.fileCerts {
			skip = append(skip, fc.hosts...)
		}
		if len(skip) > 0 {
			// Their certificates come from files: Caddy must not ask a CA.
			https["automatic_https"].(obj)["skip_certificates"] = skip
		}
		servers["https"] = https
	}
	return obj{
		"http_port":    portOf(cc.Listen),
		"https_port":   portOf(cc.ListenTLS),
		"grace_period": dur(cc.GracePeriod),
		"servers":      servers,
	}
}

// withUserRoutes returns the Caddyfile's routes followed by routes.
func withUserRoutes(user []json.RawMessage, routes []any) []any {
	out := make([]any, 0, len(user)+len(routes))
	for _, r := range user {
		out = append(out, r)
	}
	return append(out, routes...)
}

// server returns one http server: its listener, client timeouts,
// protocols, access log and trusted proxies.
func (cc *Config) server(env buildEnv, listen string, routes, errRoutes []any, tls bool) obj {
	srv := obj{
		"listen":              []string{listen},
		"read_header_timeout": dur(cc.ReadHeaderTimeout),
		"read_timeout":        dur(cc.ReadTimeout),
		"idle_timeout":        dur(cc.IdleTimeout),
		"routes":              routes,
		"errors":              obj{"routes": errRoutes},
	}
	if *cc.WriteTimeout > 0 {
		srv["write_timeout"] = dur(*cc.WriteTimeout)
	}
	if tls {
		protocols := []string{"h1", "h2"}
		if cc.HTTP3 {
			protocols = append(protocols, "h3")
		}
		srv["protocols"] = protocols
		// hostctl writes its own redirects (on Listen, with the right port).
		srv["automatic_https"] = obj{"disable_redirects": true}
	} else {
		srv["protocols"] = []string{"h1", "h2c"}
	}
	if *cc.AccessLog && env.accessLog {
		srv["logs"] = obj{}
	}
	if len(cc.TrustedProxies) > 0 {
		srv["trusted_proxies"] = obj{"source": "static", "ranges": cc.TrustedProxies}
	}
	return srv
}

// tlsApp returns the tls app: one certificate automation policy for the
// tls = "internal" hosts (Caddy's local CA) and one for the tls = "auto"
// hosts (ACME). It is nil when no site has TLS.
func (cc *Config) tlsApp(internalHosts, acmeHosts []string, files []fileCert) (obj, error) {
	var policies []any
	if len(internalHosts) > 0 {
		policies = append(policies, obj{"subjects": internalHosts, "issuers": []any{obj{"module": "internal"}}})
	}
	if len(acmeHosts) > 0 {
		issuer, err := cc.acmeIssuer()
		if err != nil {
			return nil, err
		}
		policies = append(policies, obj{"subjects": acmeHosts, "issuers": []any{issuer}})
	}
	app := obj{}
	if len(files) > 0 {
		var load []any
		for _, fc := range files {
			// The tag carries the files' checksum, so that new contents
			// at the same paths make a different config, which Apply loads.
			// Caddy expands placeholders in the paths: take them as written.
			load = append(load, obj{"certificate": escapeBraces(fc.cert), "key": escapeBraces(fc.key), "format": "pem", "tags": []string{"hostctl-" + fc.sum}})
		}
		app["certificates"] = obj{"load_files": load}
	}
	if len(policies) == 0 {
		if len(app) == 0 {
			return nil, nil
		}
		return app, nil
	}
	automation := obj{"policies": policies}
	if renewCheckInterval > 0 {
		automation["renew_interval"] = dur(renewCheckInterval)
	}
	app["automation"] = automation
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
func (cc *Config) acmeIssuer() (obj, error) {
	// The CA validates on ports 80 and 443; the alternate ports are
	// where the challenges are answered here, which is always by
	// hostctl's own servers on Listen and ListenTLS (Caddy's solvers
	// find those ports taken and leave the answering to them). Caddy
	// would copy http_port and https_port into the issuer too; saying
	// it here keeps the mapping visible.
	issuer := obj{
		"module": "acme",
		"ca":     cc.ACMECA,
		"challenges": obj{
			"http":     obj{"alternate_port": portOf(cc.Listen)},
			"tls-alpn": obj{"alternate_port": portOf(cc.ListenTLS)},
		},
	}
	if cc.Email != "" {
		issuer["email"] = cc.Email
	}
	if cc.ACMECARoot != "" {
		root, err := filepath.Abs(cc.ACMECARoot)
		if err != nil {
			return nil, err
		}
		issuer["trusted_roots_pem_files"] = []string{root}
	}
	return issuer, nil
}

// logging returns the logging config: Caddy's own logs to the Proxy's
// Logger, access logs to its access log (see logging.go). One log whose
// core sorts the entries costs less per request than a log for each.
func logging(instance string) obj {
	return obj{"logs": obj{
		"default": obj{
			"writer": obj{"output": "discard"},
			"core":   obj{"module": "hostctl", "instance": instance},
			"level":  "DEBUG",
		},
	}}
}

// siteRoutes returns the routes inside one site's subroute, in order: the
// health endpoint and traffic count (with health_path), maintenance, the
// request body limit, static files, then the upstreams (or 404 when there
// are none).
func (cc *Config) siteRoutes(s *site, env buildEnv) ([]any, error) {
	var routes []any
	if cc.HealthPath != "" {
		routes = append(routes, obj{"handle": []any{obj{
			"handler":     "hostctl_site",
			"instance":    env.instance,
			"health_path": cc.HealthPath,
			"upstreams":   s.upstreams(),
		}}})
	}
	if s.maintenance {
		routes = append(routes, maintenanceRoute(s.Allow))
	}
	if *cc.MaxBodySize > 0 {
		routes = append(routes, obj{"handle": []any{obj{"handler": "request_body", "max_size": *cc.MaxBodySize}}})
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
		return append(routes, obj{"handle": []any{obj{"handler": "error", "status_code": 404}}}), nil
	}
	return append(routes, obj{"handle": cc.proxyHandlers(s, ups, env.spoolDir)}), nil
}

// caddyReverseProxyOnly, if set, has every site proxied by Caddy's
// reverse_proxy, as before hostctl_upstream; only benchmarks set it, to
// compare the two.
var caddyReverseProxyOnly bool

// proxyHandlers returns the handlers that proxy to the site's upstreams:
// for one upstream without keep-alive, hostctl_upstream (UpstreamHandler),
// which hands what it does not handle itself to the reverse_proxy inside
// it; else Caddy's reverse_proxy. Request bodies are buffered by
// hostctl_upstream, or by hostctl_request_buffer before reverse_proxy
// (spool.go), never by reverse_proxy's request_buffers, which would hold
// them in RAM.
func (cc *Config) proxyHandlers(s *site, ups []string, spoolDir string) []any {
	rp := cc.reverseProxy(s, ups)
	var buffer obj
	if *cc.RequestBuffer > 0 {
		buffer = obj{"limit": *cc.RequestBuffer, "memory": *cc.RequestBufferMemory}
		if spoolDir != "" {
			buffer["dir"] = spoolDir
		}
	}
	if len(ups) != 1 || cc.UpstreamKeepAlive || caddyReverseProxyOnly {
		if buffer == nil {
			return []any{rp}
		}
		return []any{obj{"handler": "hostctl_request_buffer", "buffer": buffer}, rp}
	}
	up := obj{"handler": "hostctl_upstream", "proxy": rp}
	if buffer != nil {
		up["buffer"] = buffer
	}
	return []any{up}
}

// maintenanceRoute answers 503 "maintenance" (the error page) to every
// client not in allow.
func maintenanceRoute(allow []string) obj {
	r := obj{"handle": []any{obj{"handler": "error", "status_code": 503, "error": "maintenance"}}}
	if len(allow) > 0 {
		r["match"] = []any{obj{"not": []any{obj{"client_ip": obj{"ranges": allow}}}}}
	}
	return r
}

// staticRoute serves st.Dir under st.Path: Cache-Control, the prefix
// stripped, compression, precompressed files, no directory listing.
func staticRoute(st Static, fileUser string) (obj, error) {
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
		return nil, err
	}
	files := obj{"handler": "hostctl_static", "root": dir, "precompressed": []string{"br", "zstd", "gzip"}}
	if fileUser != "" {
		files["file_user"] = fileUser
	}
	prefix := st.Path
	match := []string{prefix + "*"}
	if prefix[len(prefix)-1] == '/' {
		// "/static/" also serves "/static" (the directory itself is never listed).
		match = append(match, prefix[:len(prefix)-1])
	}
	return obj{
		"match": []any{obj{"path": match}},
		"handle": []any{
			obj{"handler": "headers", "response": obj{"set": obj{"Cache-Control": []string{cacheControl}}}},
			obj{"handler": "rewrite", "strip_path_prefix": trimSlash(prefix)},
			obj{"handler": "encode",
				"encodings": obj{"zstd": obj{}, "gzip": obj{}},
				"prefer":    []string{"zstd", "gzip"},
			},
			files,
		},
		"terminal": true,
	}, nil
}

// reverseProxy returns the reverse_proxy handler for the site's upstreams
// ups: its transport, load balancing with retries, and
// active and passive health checks when there is more than one upstream.
func (cc *Config) reverseProxy(s *site, ups []string) obj {
	var upstreams []any
	for _, u := range ups {
		upstreams = append(upstreams, obj{"dial": dialAddress(u)})
	}
	rp := obj{
		"handler":        "reverse_proxy",
		"upstreams":      upstreams,
		"transport":      cc.upstreamTransport(),
		"load_balancing": cc.loadBalancing(),
	}
	if len(ups) > 1 {
		checks := obj{"active": cc.activeHealthCheck(s)}
		if fd := *cc.Health.FailDuration; fd > 0 {
			// Caddy counts a failed request against its upstream
			// for fail_duration; max_fails of them take it out.
			checks["passive"] = obj{"fail_duration": dur(fd), "max_fails": cc.Health.MaxFails}
		}
		rp["health_checks"] = checks
	}
	if len(cc.TrustedProxies) > 0 {
		rp["trusted_proxies"] = cc.TrustedProxies
	}
	return rp
}

// upstreamTransport is how the proxy connects to upstreams: plain HTTP,
// keep-alive only if UpstreamKeepAlive, the dial and response timeouts.
func (cc *Config) upstreamTransport() obj {
	keepAlive := obj{"enabled": cc.UpstreamKeepAlive}
	if cc.UpstreamKeepAlive {
		keepAlive["max_idle_conns_per_host"] = 64
	}
	return obj{
		"protocol":                "http",
		"keep_alive":              keepAlive,
		"dial_timeout":            dur(cc.DialTimeout),
		"response_header_timeout": dur(cc.UpstreamTimeout),
	}
}

// loadBalancing picks the upstream with the fewest requests in flight and,
// unless RetryFor is 0, retries for RetryFor every 250 ms.
func (cc *Config) loadBalancing() obj {
	lb := obj{"selection_policy": obj{"policy": "least_conn"}}
	if *cc.RetryFor > 0 {
		lb["try_duration"] = dur(*cc.RetryFor)
		lb["try_interval"] = dur(250 * time.Millisecond)
	}
	return lb
}

// activeHealthCheck checks each upstream at Health.Path, with the Host
// header Health.Host or else the site's first host name.
func (cc *Config) activeHealthCheck(s *site) obj {
	active := obj{
		"uri":      cc.Health.Path,
		"interval": dur(cc.Health.Interval),
		"timeout":  dur(cc.Health.Timeout),
	}
	if st := cc.Health.Status; st != 2 {
		active["expect_status"] = st
	}
	host := cc.Health.Host
	if host == "" && len(s.Hosts) > 0 {
		host = s.Hosts[0]
	}
	if host != "" {
		active["headers"] = obj{"Host": []string{host}}
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
func errorRoute(hosts []string, page []byte) obj {
	match := obj{"expression": "{http.error.status_code} in [502, 503, 504]"}
	if len(hosts) > 0 {
		match["host"] = hosts
	}
	return obj{
		"match": []any{match},
		"handle": []any{obj{
			"handler": "hostctl_error_page",
			"body":    string(page),
		}},
		"terminal": true,
	}
}

// caddyfileRoutes adapts a Caddyfile and returns the routes of all its
// servers, with "terminal" removed so that a site block that does not
// answer a request lets hostctl's routes run.
func caddyfileRoutes(path string) (routes []json.RawMessage, warnings []string, err error) {
	// Its placeholders ({file.PATH}, {env.NAME}) run as root: only root
	// (or hostctl's user) may be able to change it.
	if err := checkTrustedFile(path); err != nil {
		return nil, nil, unwrapPath(err)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read: %v", unwrapPath(err))
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		return nil, nil, errors.New("the caddyfile adapter is not compiled in")
	}
	out, warns, err := adapter.Adapt(body, obj{"filename": path})
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
					Routes []map[string]json.RawMessage `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &parsed); err != nil {
		return nil, nil, fmt.Errorf("reading adapted Caddyfile: %w", err)
	}
	names := make([]string, 0, len(parsed.Apps.HTTP.Servers))
	for name := range parsed.Apps.HTTP.Servers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, r := range parsed.Apps.HTTP.Servers[name].Routes {
			delete(r, "terminal")
			b, err := json.Marshal(r)
			if err != nil {
				return nil, nil, err
			}
			routes = append(routes, b)
		}
	}
	return routes, warnings, nil
}

// readFileLimit reads at most limit bytes of path; a longer file is an
// error.
func readFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}
