package proxy

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
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
	storageRoot string    // where certificates and the local CA live; empty: Caddy's default
	instance    string    // key of the Proxy whose logger and access log the log modules use
	accessLog   bool      // the Proxy has an access log writer
	warnings    *[]string // if set, gets the Caddyfile adapter's warnings
}

// CaddyJSON returns the Caddy config generated from c, as Apply would load
// it except for the storage path and log sinks, which Apply adds from its
// Options. It fails on the first problem; Validate reports all of them.
func (c *Config) CaddyJSON() ([]byte, error) {
	return c.caddyJSON(buildEnv{})
}

func (c *Config) caddyJSON(env buildEnv) ([]byte, error) {
	if errs := c.validateFields("proxy"); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
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

func (c *Config) build(env buildEnv) (obj, error) {
	cc := c.withDefaults()
	sites := cc.sites("proxy")

	var userRoutes []json.RawMessage
	if cc.Caddyfile != "" {
		r, warns, err := caddyfileRoutes(cc.Caddyfile)
		if err != nil {
			return nil, &FieldError{Key: "proxy.caddyfile", Msg: err.Error()}
		}
		userRoutes = r
		if env.warnings != nil {
			*env.warnings = append(*env.warnings, warns...)
		}
	}

	var (
		httpRoutes, tlsRoutes   []any // site routes per server
		redirects               []any
		httpErrors, tlsErrors   []any
		httpCatch, httpErrCatch []any // the catch-all site goes last
		internalHosts, acmeHost []string
	)
	httpsPort := portOf(cc.ListenTLS)
	for _, s := range sites {
		routes, err := cc.siteRoutes(&s)
		if err != nil {
			return nil, err
		}
		page := defaultErrorPage
		if s.ErrorPage != "" {
			page, err = os.ReadFile(s.ErrorPage)
			if err != nil {
				return nil, &FieldError{Key: s.key + ".error_page", Msg: fmt.Sprintf("cannot read: %v", unwrapPath(err))}
			}
		}
		errRoute := errorRoute(s.Hosts, page)
		var siteRoute obj
		if len(s.Hosts) > 0 {
			siteRoute = obj{
				"match":    []any{obj{"host": s.Hosts}},
				"handle":   []any{obj{"handler": "subroute", "routes": routes}},
				"terminal": true,
			}
		} else {
			siteRoute = obj{"handle": []any{obj{"handler": "subroute", "routes": routes}}, "terminal": true}
		}
		switch mode := s.tlsMode(); mode {
		case TLSOff:
			if len(s.Hosts) > 0 {
				httpRoutes = append(httpRoutes, siteRoute)
				httpErrors = append(httpErrors, errRoute)
			} else {
				httpCatch = append(httpCatch, siteRoute)
				httpErrCatch = append(httpErrCatch, errRoute)
			}
		default:
			tlsRoutes = append(tlsRoutes, siteRoute)
			tlsErrors = append(tlsErrors, errRoute)
			loc := "https://{http.request.host}{http.request.uri}"
			if httpsPort != 443 {
				loc = fmt.Sprintf("https://{http.request.host}:%d{http.request.uri}", httpsPort)
			}
			redirects = append(redirects, obj{
				"match": []any{obj{"host": s.Hosts}},
				"handle": []any{obj{
					"handler": "static_response", "status_code": 308,
					"headers": obj{"Location": []string{loc}},
				}},
				"terminal": true,
			})
			if mode == TLSInternal {
				internalHosts = append(internalHosts, s.Hosts...)
			} else {
				acmeHost = append(acmeHost, s.Hosts...)
			}
		}
	}

	protocols := []string{"h1", "h2"}
	if cc.HTTP3 {
		protocols = append(protocols, "h3")
	}
	server := func(listen string, routes, errRoutes []any, tls bool) obj {
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

	addUser := func(routes []any) []any {
		out := make([]any, 0, len(userRoutes)+len(routes))
		for _, r := range userRoutes {
			out = append(out, r)
		}
		return append(out, routes...)
	}

	servers := obj{}
	// The HTTP server: redirects for TLS sites first, then the Caddyfile's
	// routes, then plain-HTTP sites (the catch-all last).
	httpAll := append(append([]any{}, redirects...), addUser(append(httpRoutes, httpCatch...))...)
	servers["http"] = server(cc.Listen, httpAll, append(httpErrors, httpErrCatch...), false)
	if len(tlsRoutes) > 0 {
		servers["https"] = server(cc.ListenTLS, addUser(tlsRoutes), tlsErrors, true)
	}

	apps := obj{
		"http": obj{
			"http_port":    portOf(cc.Listen),
			"https_port":   httpsPort,
			"grace_period": dur(cc.GracePeriod),
			"servers":      servers,
		},
	}
	var policies []any
	if len(internalHosts) > 0 {
		policies = append(policies, obj{"subjects": internalHosts, "issuers": []any{obj{"module": "internal"}}})
		apps["pki"] = obj{"certificate_authorities": obj{"local": obj{"install_trust": false}}}
	}
	if len(acmeHost) > 0 {
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
				"tls-alpn": obj{"alternate_port": httpsPort},
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
		policies = append(policies, obj{"subjects": acmeHost, "issuers": []any{issuer}})
	}
	if len(policies) > 0 {
		automation := obj{"policies": policies}
		if renewCheckInterval > 0 {
			automation["renew_interval"] = dur(renewCheckInterval)
		}
		apps["tls"] = obj{"automation": automation}
	}

	cfg := obj{
		"admin": obj{"disabled": true, "config": obj{"persist": false}},
		"apps":  apps,
		"logging": obj{"logs": obj{
			"default": obj{
				"writer":  obj{"output": "discard"},
				"core":    obj{"module": "hostctl", "instance": env.instance},
				"level":   "DEBUG",
				"exclude": []string{"http.log.access"},
			},
			"access": obj{
				"writer":  obj{"output": "hostctl_access", "instance": env.instance},
				"encoder": obj{"format": "json"},
				"include": []string{"http.log.access"},
			},
		}},
	}
	if env.storageRoot != "" {
		cfg["storage"] = obj{"module": "file_system", "root": env.storageRoot}
	}
	return cfg, nil
}

// siteRoutes returns the routes inside one site's subroute.
func (cc *Config) siteRoutes(s *site) ([]any, error) {
	var routes []any
	if s.maintenance {
		r := obj{"handle": []any{obj{"handler": "error", "status_code": 503, "error": "maintenance"}}}
		if len(s.Allow) > 0 {
			r["match"] = []any{obj{"not": []any{obj{"client_ip": obj{"ranges": s.Allow}}}}}
		}
		routes = append(routes, r)
	}
	if *cc.MaxBodySize > 0 {
		routes = append(routes, obj{"handle": []any{obj{"handler": "request_body", "max_size": *cc.MaxBodySize}}})
	}
	for _, st := range s.Static {
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
		prefix := st.Path
		match := []string{prefix + "*"}
		if prefix[len(prefix)-1] == '/' {
			// "/static/" also serves "/static" (the directory itself is never listed).
			match = append(match, prefix[:len(prefix)-1])
		}
		routes = append(routes, obj{
			"match": []any{obj{"path": match}},
			"handle": []any{
				obj{"handler": "headers", "response": obj{"set": obj{"Cache-Control": []string{cacheControl}}}},
				obj{"handler": "rewrite", "strip_path_prefix": trimSlash(prefix)},
				obj{"handler": "encode",
					"encodings": obj{"zstd": obj{}, "gzip": obj{}},
					"prefer":    []string{"zstd", "gzip"},
				},
				obj{"handler": "file_server", "root": dir,
					"precompressed":       obj{"br": obj{}, "zstd": obj{}, "gzip": obj{}},
					"precompressed_order": []string{"br", "zstd", "gzip"},
					"index_names":         []string{},
				},
			},
			"terminal": true,
		})
	}
	ups := s.upstreams()
	if len(ups) == 0 {
		return append(routes, obj{"handle": []any{obj{"handler": "error", "status_code": 404}}}), nil
	}
	var upstreams []any
	for _, u := range ups {
		upstreams = append(upstreams, obj{"dial": dialAddress(u)})
	}
	keepAlive := obj{"enabled": cc.UpstreamKeepAlive}
	if cc.UpstreamKeepAlive {
		keepAlive["max_idle_conns_per_host"] = 64
	}
	rp := obj{
		"handler":   "reverse_proxy",
		"upstreams": upstreams,
		"transport": obj{
			"protocol":                "http",
			"keep_alive":              keepAlive,
			"dial_timeout":            dur(cc.DialTimeout),
			"response_header_timeout": dur(cc.UpstreamTimeout),
		},
	}
	if *cc.RequestBuffer > 0 {
		rp["request_buffers"] = *cc.RequestBuffer
	}
	if *cc.RetryFor > 0 {
		rp["load_balancing"] = obj{
			"selection_policy": obj{"policy": "least_conn"},
			"try_duration":     dur(*cc.RetryFor),
			"try_interval":     dur(250 * time.Millisecond),
		}
	} else {
		rp["load_balancing"] = obj{"selection_policy": obj{"policy": "least_conn"}}
	}
	if len(ups) > 1 {
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
		rp["health_checks"] = obj{"active": active}
	}
	if len(cc.TrustedProxies) > 0 {
		rp["trusted_proxies"] = cc.TrustedProxies
	}
	return append(routes, obj{"handle": []any{rp}}), nil
}

func trimSlash(p string) string {
	if len(p) > 1 && p[len(p)-1] == '/' {
		return p[:len(p)-1]
	}
	return p
}

// errorRoute serves page with the error's own status for 502, 503 and 504.
func errorRoute(hosts []string, page []byte) obj {
	match := obj{"expression": "{http.error.status_code} in [502, 503, 504]"}
	if len(hosts) > 0 {
		match["host"] = hosts
	}
	return obj{
		"match": []any{match},
		"handle": []any{obj{
			"handler":     "static_response",
			"status_code": "{http.error.status_code}",
			"headers": obj{
				"Content-Type":  []string{"text/html; charset=utf-8"},
				"Cache-Control": []string{"no-store"},
			},
			"body": string(page),
		}},
		"terminal": true,
	}
}

// caddyfileRoutes adapts a Caddyfile and returns the routes of all its
// servers, with "terminal" removed so that a site block that does not
// answer a request lets hostctl's routes run.
func caddyfileRoutes(path string) (routes []json.RawMessage, warnings []string, err error) {
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
