package importer

import (
	"fmt"
	"maps"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	crossplane "github.com/nginxinc/nginx-go-crossplane"

	"github.com/hostctl/hostctl/proxy"
)

// The nginx side reads a site file (sites-available/NAME.conf: upstream
// and server blocks) or a whole nginx.conf (an http block) with
// nginx-go-crossplane, which follows include directives, and translates
// what a Django site uses into [proxy]. Every directive not translated is
// listed with its file and line.

// ngSite is one nginx server block, as hostctl sees it.
type ngSite struct {
	d         *crossplane.Directive
	names     []string
	plain     []string // listen addresses without ssl
	tls       []string // listen addresses with ssl
	quic      bool
	redirect  bool // only redirects to https
	cert, key string
	upstreams []string
	statics   []ngStatic
	errorPage string
	comments  []string
	// defaultServer is the listen directive that made this server
	// nginx's default for its address.
	defaultServer *crossplane.Directive
}

type ngStatic struct {
	path, dir string
	maxAge    string // hostctl duration, "" for the default
	comments  []string
}

// ngContext holds the directives inherited from http into server into
// location.
type ngContext struct {
	vals map[string]*crossplane.Directive
}

func (c ngContext) with(block crossplane.Directives, keys ...string) ngContext {
	out := ngContext{vals: map[string]*crossplane.Directive{}}
	for k, v := range c.vals {
		out.vals[k] = v
	}
	for _, d := range block {
		if slices.Contains(keys, d.Directive) {
			out.vals[d.Directive] = d
		}
	}
	return out
}

// inherited are the directives that apply from an outer block to the
// inner ones and that hostctl translates.
var inherited = append([]string{"client_max_body_size", "proxy_read_timeout", "proxy_connect_timeout", "gzip", "ssl_certificate", "ssl_certificate_key", "root", "expires", "keepalive_timeout", "ssl"}, tlsTuning...)

// tlsTuning are the directives that tune nginx's TLS; hostctl's own
// defaults take their place.
var tlsTuning = []string{"ssl_protocols", "ssl_ciphers", "ssl_prefer_server_ciphers", "ssl_session_cache", "ssl_session_timeout",
	"ssl_session_tickets", "ssl_dhparam", "ssl_ecdh_curve", "ssl_stapling", "ssl_stapling_verify", "ssl_buffer_size"}

type nginxImport struct {
	im        *importer
	path      string
	used      map[*crossplane.Directive]bool
	upstreams map[string][]string // upstream name -> hostctl addresses
	sites     []*ngSite
	proxy     *section
	global    []string // comments for [proxy]
	// proxy-wide values, by key: TOML value -> where it came from
	wide map[string][]wideValue
	// missing are the includes that could not be read.
	missing map[*crossplane.Directive]ngMissing
	// upstreamBlocks are the upstream blocks by name; upstreamUsed, those
	// a translated proxy_pass names.
	upstreamBlocks map[string]*crossplane.Directive
	upstreamUsed   map[string]bool
}

// certbotLineage finds the name of certbot's certificate in its path.
var certbotLineage = regexp.MustCompile(`/letsencrypt/live/([^/]+)/`)

// hostName is what hostctl takes as a host name: letters, digits, '-',
// '.', a leading "*." for a wildcard.
var hostName = regexp.MustCompile(`^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$`)

type wideValue struct {
	value string
	where string
}

func (im *importer) nginx(file string) error {
	prefix := im.opts.NginxPrefix
	if prefix == "" {
		prefix = DefaultNginxPrefix
	}
	rd := &ngReader{prefix: prefix}
	top, err := rd.readFile(file, 0)
	if err != nil {
		return err
	}
	n := &nginxImport{im: im, path: file, used: map[*crossplane.Directive]bool{}, upstreams: map[string][]string{}, wide: map[string][]wideValue{},
		missing: map[*crossplane.Directive]ngMissing{}, upstreamBlocks: map[string]*crossplane.Directive{}, upstreamUsed: map[string]bool{}}
	for _, m := range rd.missing {
		n.missing[m.d] = m
	}
	im.nginxFiles = rd.files
	n.walkMain(top, ngContext{})
	n.emit()
	n.unusedUpstreams()
	n.includes(rd.missing)
	n.unused(top)
	return nil
}

// includes lists each include that could not be read, with what the
// common ones meant.
func (n *nginxImport) includes(missing []ngMissing) {
	for _, m := range missing {
		if n.used[m.d] {
			continue
		}
		kind, msg := knownInclude(m.d.Args[0])
		c := n.note(m.d, kind, "include %s: could not be read (%v); %s", m.d.Args[0], unwrapPathErr(m.err, m.path), msg)
		n.proxy.trailer = append(n.proxy.trailer, c)
	}
}

func unwrapPathErr(err error, path string) string {
	if pe, ok := err.(*os.PathError); ok {
		return path + ": " + pe.Err.Error()
	}
	return err.Error()
}

func (n *nginxImport) where(d *crossplane.Directive) string {
	f := d.File
	if f == "" {
		f = n.path
	}
	return fmt.Sprintf("%s:%d %s", n.im.rel(f), d.Line, d.Directive)
}

func (n *nginxImport) note(d *crossplane.Directive, kind, format string, a ...any) string {
	n.used[d] = true
	return n.im.note(n.where(d), kind, format, a...)
}

// walkMain reads the main or http context: upstreams first (a server
// may use one defined after it), then servers.
func (n *nginxImport) walkMain(block crossplane.Directives, ctx ngContext) {
	ctx = ctx.with(block, inherited...)
	for _, d := range block {
		switch d.Directive {
		case "http":
			n.used[d] = true
			n.walkMain(d.Block, ctx)
		case "upstream":
			n.upstream(d)
		}
	}
	for _, d := range block {
		if d.Directive == "server" {
			n.server(d, ctx)
		}
	}
}

// upstream reads an upstream block into hostctl addresses.
func (n *nginxImport) upstream(d *crossplane.Directive) {
	n.used[d] = true
	if len(d.Args) != 1 {
		return
	}
	var addrs []string
	for _, s := range d.Block {
		switch s.Directive {
		case "server":
			if len(s.Args) == 0 {
				continue
			}
			addr, ok := nginxAddr(s.Args[0])
			if !ok {
				n.global = append(n.global, n.note(s, NotTranslated, "upstream server %q: not an address hostctl can proxy to", s.Args[0]))
				continue
			}
			n.used[s] = true
			addrs = append(addrs, addr)
			for _, p := range s.Args[1:] {
				if p == "fail_timeout=0" {
					n.global = append(n.global, n.note(s, Approximated, "%s: hostctl marks no upstream as failed for a time; a refused request is retried for retry_for (5s) instead", p))
					continue
				}
				n.global = append(n.global, n.note(s, NotTranslated, "upstream server parameter %s", p))
			}
		case "keepalive":
			n.wide["upstream_keepalive"] = append(n.wide["upstream_keepalive"], wideValue{"true", n.where(s)})
			n.global = append(n.global, n.note(s, Approximated, "keepalive %s: upstream connections are reused (upstream_keepalive); hostctl does not cap the idle ones at %s", strings.Join(s.Args, " "), strings.Join(s.Args, " ")))
		}
	}
	n.upstreams[d.Args[0]] = addrs
	n.upstreamBlocks[d.Args[0]] = d
}

// unusedUpstreams lists the upstream blocks that no translated
// proxy_pass names (one for uwsgi_pass, one for a second prefix).
func (n *nginxImport) unusedUpstreams() {
	for _, name := range slices.Sorted(maps.Keys(n.upstreamBlocks)) {
		if d := n.upstreamBlocks[name]; !n.upstreamUsed[name] {
			n.proxy.trailer = append(n.proxy.trailer, n.im.note(n.where(d), NotTranslated, "upstream %s { ... }: no translated proxy_pass uses it", name))
		}
	}
}

// unixUpstream is nginx's "unix:/path" as a hostctl upstream in its
// canonical spelling (proxy.ParseUpstream); ok is false for a path that
// is not absolute.
func unixUpstream(a string) (string, bool) {
	u, err := proxy.ParseUpstream(a)
	if err != nil {
		return a, false
	}
	return u.String(), true
}

// nginxAddr turns an nginx address ("127.0.0.1:8000", "unix:/run/x.sock",
// "localhost") into a hostctl upstream.
func nginxAddr(a string) (string, bool) {
	if strings.HasPrefix(a, "unix:") {
		return unixUpstream(a)
	}
	if strings.Contains(a, "/") {
		return "", false
	}
	if _, _, err := splitPort(a); err != nil {
		return a + ":80", true
	}
	return a, true
}

func splitPort(a string) (string, int, error) {
	i := strings.LastIndexByte(a, ':')
	if i < 0 || strings.HasSuffix(a, "]") {
		return "", 0, fmt.Errorf("no port")
	}
	p, err := strconv.Atoi(a[i+1:])
	return a[:i], p, err
}

// server reads one server block.
func (n *nginxImport) server(d *crossplane.Directive, outer ngContext) {
	n.used[d] = true
	ctx := outer.with(d.Block, inherited...)
	s := &ngSite{d: d}
	for _, x := range d.Block {
		switch x.Directive {
		case "listen":
			n.listen(s, x)
		case "server_name":
			n.used[x] = true
			for _, name := range x.Args {
				switch {
				case name == "_" || name == "" || name == `""`:
				case strings.HasPrefix(name, "~"):
					s.comments = append(s.comments, n.note(x, NotTranslated, "server_name %s: hostctl matches host names, not regular expressions", name))
				case strings.HasPrefix(name, "."):
					s.names = append(s.names, name[1:], "*"+name)
				case !hostName.MatchString(name):
					// nginx takes any word ("server_name example.com
					// /var/www" when a semicolon is missing).
					s.comments = append(s.comments, n.note(x, NotTranslated, "server_name %s: not a host name", name))
				default:
					s.names = append(s.names, name)
				}
			}
		}
	}
	if len(s.plain) == 0 && len(s.tls) == 0 {
		s.plain = []string{":80"} // nginx's default: listen *:80
	}
	// The legacy "ssl on;" (deprecated in nginx 1.15, gone in 1.25) made
	// every listen of the server a TLS one.
	if x := ctx.vals["ssl"]; x != nil && len(x.Args) == 1 {
		switch x.Args[0] {
		case "on":
			for _, a := range s.plain {
				if !slices.Contains(s.tls, a) {
					s.tls = append(s.tls, a)
				}
			}
			s.plain = nil
			if !n.used[x] {
				s.comments = append(s.comments, n.note(x, Approximated, "ssl on: the legacy form of listen ... ssl (nginx 1.25 refuses it); every listen of this server is HTTPS"))
			}
		case "off":
			n.used[x] = true
		}
	}
	if s.defaultServer != nil && len(s.names) > 0 {
		s.comments = append(s.comments, n.note(s.defaultServer, Approximated, "default_server: hostctl answers requests for other host names only from a site without hosts; nginx answered them from this one"))
	}
	// A server that only sends HTTP to HTTPS is hostctl's automatic redirect.
	if rets := n.redirectOnly(d); rets != nil && len(s.tls) == 0 {
		s.redirect = true
		for _, r := range rets {
			n.used[r] = true
		}
		n.sites = append(n.sites, s)
		return
	}
	if c := ctx.vals["ssl_certificate"]; c != nil && len(s.tls) > 0 {
		n.used[c] = true
		s.cert = c.Args[0]
		if k := ctx.vals["ssl_certificate_key"]; k != nil {
			n.used[k] = true
			s.key = k.Args[0]
		}
	} else if x := n.snakeoil(d); x != nil && len(s.tls) > 0 {
		s.cert, s.key = snakeoilCert, snakeoilKey
		kind, msg := knownInclude(x.Args[0])
		s.comments = append(s.comments, n.note(x, kind, "include %s: could not be read (%s); %s", x.Args[0], unwrapPathErr(n.missing[x].err, n.missing[x].path), msg))
	}
	if len(s.tls) > 0 {
		n.tlsSettings(s, ctx)
	}
	n.siteWide(s, ctx, false)
	var errorPages, returns []*crossplane.Directive
	for _, x := range d.Block {
		switch x.Directive {
		case "location":
			n.location(s, x, ctx)
		case "error_page":
			errorPages = append(errorPages, x)
		case "return":
			returns = append(returns, x)
		}
	}
	// After the locations: the page may be a static file.
	for _, e := range errorPages {
		n.errorPage(s, e, d, ctx)
	}
	if len(s.upstreams) == 0 && len(s.statics) == 0 {
		// A server that only redirects elsewhere (www to the bare name)
		// or answers by itself: a hostctl site proxies or serves files.
		n.global = append(n.global, n.note(d, NotTranslated,
			"the server for %s neither proxies nor serves files (a redirect to another name, a fixed answer); it has no hostctl site: write it in a caddyfile (redir, respond)", namesOf(s)))
		n.whole(d)
		return
	}
	for _, x := range returns {
		s.comments = append(s.comments, n.note(x, NotTranslated, "return %s in a server that also serves pages; write it in a caddyfile (redir, respond)", strings.Join(x.Args, " ")))
	}
	n.sites = append(n.sites, s)
}

// snakeoil returns the server's include of Debian's snippets/snakeoil.conf
// when it could not be read.
func (n *nginxImport) snakeoil(d *crossplane.Directive) *crossplane.Directive {
	for _, x := range d.Block {
		if _, ok := n.missing[x]; ok && path.Base(x.Args[0]) == "snakeoil.conf" {
			return x
		}
	}
	return nil
}

// tlsSettings accounts for the TLS tuning of an HTTPS server: hostctl's
// TLS defaults replace it.
func (n *nginxImport) tlsSettings(s *ngSite, ctx ngContext) {
	for _, k := range tlsTuning {
		x := ctx.vals[k]
		if x == nil || n.used[x] {
			continue
		}
		arg := strings.Join(x.Args, " ")
		switch k {
		case "ssl_protocols":
			s.comments = append(s.comments, n.note(x, Approximated, "ssl_protocols %s: hostctl serves TLS 1.2 and 1.3", arg))
		case "ssl_dhparam":
			s.comments = append(s.comments, n.note(x, Approximated, "ssl_dhparam %s: hostctl offers ECDHE key exchange only, which needs no DH parameters", arg))
		case "ssl_stapling", "ssl_stapling_verify":
			s.comments = append(s.comments, n.note(x, Approximated, "%s %s: hostctl staples OCSP responses itself", k, arg))
		default:
			s.comments = append(s.comments, n.note(x, Approximated, "%s %s: hostctl's TLS defaults apply (TLS 1.2 and 1.3, forward-secret AEAD ciphers, session tickets with rotated keys)", k, arg))
		}
	}
}

// listen reads one listen directive.
func (n *nginxImport) listen(s *ngSite, x *crossplane.Directive) {
	n.used[x] = true
	if len(x.Args) == 0 {
		return
	}
	addr := x.Args[0]
	if strings.HasPrefix(addr, "unix:") {
		s.comments = append(s.comments, n.note(x, NotTranslated, "listen %s: hostctl's proxy listens on TCP only", addr))
		return
	}
	host, port := "", addr
	if i := strings.LastIndexByte(addr, ':'); i >= 0 && !strings.HasSuffix(addr, "]") {
		host, port = addr[:i], addr[i+1:]
	} else if _, err := strconv.Atoi(addr); err != nil {
		host, port = addr, "80"
	}
	if host == "*" || host == "[::]" {
		host = ""
	}
	hp := host + ":" + port
	ssl := false
	for _, o := range x.Args[1:] {
		switch {
		case o == "ssl":
			ssl = true
		case o == "http2":
			// hostctl serves HTTP/2 on its TLS listener (and h2c on the plain one).
		case o == "quic":
			s.quic = true
		case o == "default_server" || o == "default":
			s.defaultServer = x
		case strings.HasPrefix(o, "ipv6only="):
			s.comments = append(s.comments, n.note(x, Approximated, "%s: hostctl's listener takes IPv4 and IPv6 together", o))
		default:
			s.comments = append(s.comments, n.note(x, NotTranslated, "listen option %s", o))
		}
	}
	if ssl {
		if !slices.Contains(s.tls, hp) {
			s.tls = append(s.tls, hp)
		}
	} else if !slices.Contains(s.plain, hp) {
		s.plain = append(s.plain, hp)
	}
}

// redirectOnly returns the return directives of a server whose only work
// is a redirect to the same host on https: "return 301
// https://$host$request_uri", or certbot's form, one "if ($host = NAME)
// { return 301 https://$host$request_uri; }" per name and "return 404"
// for any other host.
func (n *nginxImport) redirectOnly(d *crossplane.Directive) []*crossplane.Directive {
	var ret, fallback *crossplane.Directive
	var ifs []*crossplane.Directive
	for _, x := range d.Block {
		switch x.Directive {
		case "listen", "server_name", "access_log", "error_log":
		case "return":
			if ret != nil {
				return nil
			}
			ret = x
		case "if":
			if len(x.Args) != 3 || x.Args[0] != "$host" || x.Args[1] != "=" || len(x.Block) != 1 || !httpsRedirect(x.Block[0]) {
				return nil
			}
			ifs = append(ifs, x)
		case "location":
			if len(x.Args) == 1 && x.Args[0] == "/" && len(x.Block) == 1 && x.Block[0].Directive == "return" && ret == nil {
				ret = x.Block[0]
				n.used[x] = true
				continue
			}
			return nil
		default:
			return nil
		}
	}
	if len(ifs) > 0 {
		// certbot's form: the plain return answers other hosts.
		if ret != nil && !(len(ret.Args) == 1 && ret.Args[0] == "404") {
			return nil
		}
		fallback = ret
		out := []*crossplane.Directive{}
		for _, x := range ifs {
			out = append(out, x, x.Block[0])
		}
		if fallback != nil {
			out = append(out, fallback)
		}
		return out
	}
	if ret == nil || !httpsRedirect(ret) {
		return nil
	}
	return []*crossplane.Directive{ret}
}

// httpsRedirect reports whether ret redirects to the same URL on https.
func httpsRedirect(ret *crossplane.Directive) bool {
	if ret.Directive != "return" || len(ret.Args) != 2 || !slices.Contains([]string{"301", "302", "307", "308"}, ret.Args[0]) {
		return false
	}
	t := ret.Args[1]
	for _, h := range []string{"https://$host", "https://$server_name", "https://$http_host"} {
		if t == h+"$request_uri" || t == h+"$uri" || t == h+"$uri$is_args$args" {
			return true
		}
	}
	return false
}

// siteWide collects the values that are proxy-wide in hostctl.
// local is true for a location's own settings (no defaults added).
func (n *nginxImport) siteWide(s *ngSite, ctx ngContext, local bool) {
	add := func(key, value string, d *crossplane.Directive) {
		n.used[d] = true
		n.wide[key] = append(n.wide[key], wideValue{value, n.where(d)})
	}
	if d := ctx.vals["client_max_body_size"]; d != nil {
		if v, err := nginxSize(d.Args[0]); err == nil {
			add("max_body_size", tomlString(sizeString(v)), d)
			if v == 0 {
				n.wide["max_body_size"][len(n.wide["max_body_size"])-1].value = "0"
			}
		} else {
			s.comments = append(s.comments, n.note(d, NotTranslated, "client_max_body_size %s: %v", d.Args[0], err))
		}
	} else if !local {
		n.wide["max_body_size"] = append(n.wide["max_body_size"], wideValue{tomlString("1MiB"), "nginx's default client_max_body_size 1m"})
	}
	for _, kv := range []struct{ nginx, hostctl string }{{"proxy_read_timeout", "upstream_timeout"}, {"proxy_connect_timeout", "dial_timeout"}, {"keepalive_timeout", "idle_timeout"}} {
		d := ctx.vals[kv.nginx]
		if d == nil {
			continue
		}
		v, err := nginxTime(d.Args[0])
		if err != nil {
			s.comments = append(s.comments, n.note(d, NotTranslated, "%s %s: %v", kv.nginx, d.Args[0], err))
			continue
		}
		add(kv.hostctl, tomlString(durString(v)), d)
		if kv.nginx == "keepalive_timeout" && len(d.Args) > 1 {
			s.comments = append(s.comments, n.note(d, NotTranslated, "keepalive_timeout's second value (the Keep-Alive header)"))
		}
	}
	if d := ctx.vals["gzip"]; d != nil && len(d.Args) == 1 && d.Args[0] == "on" && !n.used[d] {
		s.comments = append(s.comments, n.note(d, Approximated, "gzip on: hostctl compresses static files (gzip, zstd) on the fly; responses from the upstream are passed on as they come (add `encode gzip` in a caddyfile to compress them)"))
	} else if d != nil {
		n.used[d] = true
	}
}

// location reads one location block.
func (n *nginxImport) location(s *ngSite, d *crossplane.Directive, outer ngContext) {
	ctx := outer.with(d.Block, inherited...)
	if len(d.Args) != 1 {
		if len(d.Args) == 2 && d.Args[0] == "=" {
			return // exact locations are used by error_page, or listed as not translated
		}
		s.comments = append(s.comments, n.note(d, NotTranslated, "location %s { ... }: only prefix locations are translated", strings.Join(d.Args, " ")))
		n.whole(d)
		return
	}
	prefix := d.Args[0]
	if strings.HasPrefix(prefix, "@") {
		// A named location: the fallback of try_files or error_page.
		s.comments = append(s.comments, n.note(d, NotTranslated, "location %s { ... }: a named location (for try_files or error_page); hostctl sends what no [[proxy.static]] serves to the upstream", prefix))
		n.whole(d)
		return
	}
	pass, passDir := n.proxyPass(d)
	if pass != nil {
		n.used[d] = true
		ups, ok := n.target(pass)
		if !ok {
			s.comments = append(s.comments, n.note(pass, NotTranslated, "proxy_pass %s: hostctl proxies to host:port or unix:/path over HTTP, without a path", pass.Args[0]))
			return
		}
		if passDir != d {
			s.comments = append(s.comments, n.note(passDir, Approximated, "if (%s): hostctl sends every request that no [[proxy.static]] serves to the upstream", strings.Join(passDir.Args, " ")))
			for _, x := range passDir.Block {
				if x.Directive == "break" {
					n.used[x] = true
				}
			}
		}
		if prefix != "/" {
			s.comments = append(s.comments, n.note(d, Approximated, "location %s: hostctl proxies every path of the site, not only %s", prefix, prefix))
		}
		if len(s.upstreams) > 0 && !slices.Equal(s.upstreams, ups) {
			s.comments = append(s.comments, n.note(pass, NotTranslated, "a second upstream for %s: a hostctl site has one set of upstreams", prefix))
			return
		}
		s.upstreams = ups
		n.proxyHeaders(s, d)
		// Settings written in the proxied location itself.
		local := ngContext{vals: map[string]*crossplane.Directive{}}
		for k, v := range ctx.vals {
			if slices.Contains(d.Block, v) {
				local.vals[k] = v
			}
		}
		n.siteWide(s, local, true)
		return
	}
	alias, root := directive(d.Block, "alias"), ctx.vals["root"]
	if alias == nil && root == nil {
		s.comments = append(s.comments, n.note(d, NotTranslated, "location %s { ... }: neither proxy_pass nor files", prefix))
		n.whole(d)
		return
	}
	n.used[d] = true
	st := ngStatic{path: prefix}
	switch {
	case alias != nil:
		n.used[alias] = true
		st.dir = strings.TrimSuffix(alias.Args[0], "/")
		if !strings.HasSuffix(prefix, "/") && strings.HasSuffix(alias.Args[0], "/") {
			st.comments = append(st.comments, n.note(alias, Approximated, "location %s without a trailing / but alias %s with one", prefix, alias.Args[0]))
		}
	default:
		n.used[root] = true
		st.dir = strings.TrimSuffix(path.Join(root.Args[0], prefix), "/")
	}
	if e := ctx.vals["expires"]; e != nil {
		n.used[e] = true
		switch a := e.Args[0]; a {
		case "off":
			st.comments = append(st.comments, n.note(e, Approximated, "expires off: nginx sent no Cache-Control; hostctl sends max-age=3600 unless max_age is set"))
		case "epoch":
			st.maxAge = "0s"
		case "max":
			st.maxAge = "87600h"
			st.comments = append(st.comments, "expires max: nginx's 10 years")
		default:
			v, err := nginxTime(strings.TrimPrefix(strings.TrimPrefix(a, "modified"), "+"))
			if err != nil || strings.HasPrefix(a, "-") || strings.HasPrefix(a, "@") || len(e.Args) > 1 {
				st.comments = append(st.comments, n.note(e, NotTranslated, "expires %s: only a positive time, epoch or max are translated", strings.Join(e.Args, " ")))
			} else {
				st.maxAge = durString(v)
			}
		}
	} else {
		st.comments = append(st.comments, n.im.note(n.where(d), Approximated, "nginx sent no Cache-Control for %s; hostctl sends max-age=3600 (max_age) unless told otherwise", prefix))
	}
	for _, x := range d.Block {
		if x.Directive == "autoindex" && len(x.Args) == 1 && x.Args[0] == "on" {
			st.comments = append(st.comments, n.note(x, NotTranslated, "autoindex on: hostctl never lists directories"))
		}
	}
	s.statics = append(s.statics, st)
}

// proxyPass finds the location's proxy_pass, directly or inside an if
// block, and the block that holds it.
func (n *nginxImport) proxyPass(d *crossplane.Directive) (*crossplane.Directive, *crossplane.Directive) {
	if p := directive(d.Block, "proxy_pass"); p != nil {
		return p, d
	}
	for _, x := range d.Block {
		if x.Directive == "if" {
			if p := directive(x.Block, "proxy_pass"); p != nil {
				return p, x
			}
		}
	}
	return nil, nil
}

// target turns proxy_pass's URL into hostctl upstreams.
func (n *nginxImport) target(p *crossplane.Directive) ([]string, bool) {
	n.used[p] = true
	u, ok := strings.CutPrefix(p.Args[0], "http://")
	if !ok {
		return nil, false
	}
	if sock, ok := strings.CutPrefix(u, "unix:"); ok {
		// http://unix:/path/to.sock: or http://unix:/path/to.sock:/uri
		sock, rest, _ := strings.Cut(sock, ":")
		if rest != "" && rest != "/" {
			return nil, false
		}
		up, ok := unixUpstream("unix:" + sock)
		return []string{up}, ok
	}
	host, rest, _ := strings.Cut(u, "/")
	if rest != "" {
		return nil, false
	}
	if ups, ok := n.upstreams[host]; ok {
		n.upstreamUsed[host] = true
		return ups, len(ups) > 0
	}
	addr, ok := nginxAddr(host)
	return []string{addr}, ok
}

// proxyHeaders accounts for the proxy_* directives of a proxied location.
func (n *nginxImport) proxyHeaders(s *ngSite, d *crossplane.Directive) {
	blocks := []crossplane.Directives{d.Block}
	for _, x := range d.Block {
		if x.Directive == "if" {
			blocks = append(blocks, x.Block)
		}
	}
	for _, b := range blocks {
		for _, x := range b {
			switch x.Directive {
			case "proxy_set_header":
				if len(x.Args) != 2 {
					continue
				}
				h, v := strings.ToLower(x.Args[0]), x.Args[1]
				switch {
				case h == "host" && (v == "$host" || v == "$http_host"):
					n.used[x] = true // hostctl passes the client's Host
				case h == "x-forwarded-for" && v == "$proxy_add_x_forwarded_for",
					h == "x-forwarded-proto" && v == "$scheme",
					h == "x-forwarded-host" && (v == "$host" || v == "$http_host"):
					n.used[x] = true // hostctl always sets X-Forwarded-For/Proto/Host
				case h == "upgrade" && v == "$http_upgrade", h == "connection" && strings.Contains(v, "upgrade"):
					n.used[x] = true // hostctl passes WebSocket upgrades
				case h == "x-real-ip":
					s.comments = append(s.comments, n.note(x, NotTranslated, "X-Real-IP is not set; the client address is the first of X-Forwarded-For"))
				default:
					s.comments = append(s.comments, n.note(x, NotTranslated, "proxy_set_header %s %s", x.Args[0], v))
				}
			case "proxy_redirect":
				if len(x.Args) == 1 && x.Args[0] == "off" {
					n.used[x] = true // hostctl does not rewrite Location headers
				}
			case "proxy_http_version":
				n.used[x] = true // hostctl speaks HTTP/1.1 to upstreams
			case "proxy_buffering":
				s.comments = append(s.comments, n.note(x, Approximated, "proxy_buffering %s: hostctl passes responses on as they come and buffers request bodies (request_buffer)", x.Args[0]))
			}
		}
	}
}

// errorPage translates error_page 502 503 504 URI.
func (n *nginxImport) errorPage(s *ngSite, e *crossplane.Directive, server *crossplane.Directive, ctx ngContext) {
	uri := e.Args[len(e.Args)-1]
	var codes []string
	for _, c := range e.Args[:len(e.Args)-1] {
		if !strings.HasPrefix(c, "=") {
			codes = append(codes, c)
		}
	}
	served := []string{"502", "503", "504"}
	var others []string
	for _, c := range codes {
		if !slices.Contains(served, c) {
			others = append(others, c)
		}
	}
	if len(others) == len(codes) || !strings.HasPrefix(uri, "/") {
		s.comments = append(s.comments, n.note(e, NotTranslated, "error_page %s: hostctl's error_page is for 502, 503 and 504", strings.Join(e.Args, " ")))
		return
	}
	// The page is a file: from the location that serves the URI.
	file := ""
	for _, x := range server.Block {
		if x.Directive != "location" {
			continue
		}
		if len(x.Args) == 2 && x.Args[0] == "=" && x.Args[1] == uri {
			if a := directive(x.Block, "alias"); a != nil {
				file = a.Args[0]
				n.used[a] = true
			} else if r := directive(x.Block, "root"); r != nil {
				file = path.Join(r.Args[0], uri)
				n.used[r] = true
			} else if r := ctx.vals["root"]; r != nil {
				file = path.Join(r.Args[0], uri)
				n.used[r] = true
			}
			n.used[x] = true
			for _, y := range x.Block {
				if y.Directive == "internal" {
					n.used[y] = true
				}
			}
		}
	}
	if file == "" {
		for _, st := range s.statics {
			if strings.HasPrefix(uri, st.path) {
				file = path.Join(st.dir, strings.TrimPrefix(uri, st.path))
			}
		}
	}
	if file == "" {
		if r := ctx.vals["root"]; r != nil {
			file = path.Join(r.Args[0], uri)
			n.used[r] = true
		}
	}
	if file == "" {
		s.comments = append(s.comments, n.note(e, NotTranslated, "error_page %s: no location or root serves %s as a file", strings.Join(e.Args, " "), uri))
		return
	}
	n.used[e] = true
	s.errorPage = file
	if len(others) > 0 {
		s.comments = append(s.comments, n.note(e, Approximated, "error_page for %s: hostctl serves the page for 502, 503 and 504 only; other errors from the upstream reach the client as it sent them", strings.Join(others, " ")))
	}
}

func directive(b crossplane.Directives, name string) *crossplane.Directive {
	for _, d := range b {
		if d.Directive == name {
			return d
		}
	}
	return nil
}

// nginxSize parses an nginx size: bytes, k/K, m/M, g/G (base 1024).
func nginxSize(s string) (int64, error) {
	mult := int64(1)
	switch strings.ToLower(s[len(s)-1:]) {
	case "k":
		mult, s = 1<<10, s[:len(s)-1]
	case "m":
		mult, s = 1<<20, s[:len(s)-1]
	case "g":
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not an nginx size")
	}
	return n * mult, nil
}

// nginxTime parses an nginx time: "60", "60s", "1m30s", "1h", "500ms",
// "2d", "1w", "1M" (30 days), "1y" (365 days).
func nginxTime(s string) (time.Duration, error) {
	units := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
		"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "M": 30 * 24 * time.Hour, "y": 365 * 24 * time.Hour}
	if s == "" {
		return 0, fmt.Errorf("empty time")
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("%q is not an nginx time", s)
		}
		n, _ := strconv.ParseInt(s[:i], 10, 64)
		s = s[i:]
		unit := "s"
		switch {
		case strings.HasPrefix(s, "ms"):
			unit, s = "ms", s[2:]
		case s == "":
		default:
			unit, s = s[:1], s[1:]
		}
		u, ok := units[unit]
		if !ok {
			return 0, fmt.Errorf("unknown time unit %q", unit)
		}
		total += time.Duration(n) * u
	}
	return total, nil
}

// durString writes a duration as hostctl reads it, in days when whole.
func durString(d time.Duration) string {
	day := 24 * time.Hour
	if d >= day && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	str := d.String()
	if strings.HasSuffix(str, "m0s") {
		str = strings.TrimSuffix(str, "0s")
	}
	if strings.HasSuffix(str, "h0m") {
		str = strings.TrimSuffix(str, "0m")
	}
	return str
}

// emit writes [proxy] and its sites.
func (n *nginxImport) emit() {
	im := n.im
	var sites, redirects []*ngSite
	for _, s := range n.sites {
		if s.redirect {
			redirects = append(redirects, s)
		} else {
			sites = append(sites, s)
		}
	}
	if len(sites) == 0 {
		// Without a site there is nothing to serve: no [proxy] at all.
		for _, r := range redirects {
			n.global = append(n.global, n.note(r.d, NotTranslated, "a redirect to HTTPS for %s, but no HTTPS site in this config serves those names", namesOf(r)))
		}
		im.doc.header = append(im.doc.header, n.global...)
		im.doc.header = append(im.doc.header, im.headerNote(n.im.rel(n.path), NotTranslated, "no nginx server proxies or serves files: no [proxy] is written"))
		n.proxy = &section{} // collects the untranslated directives for the summary
		return
	}
	px := im.doc.add("proxy", false, fmt.Sprintf("from the nginx config %s", n.path))
	px.comments = append(px.comments, n.global...)
	n.proxy = px
	// Listeners: hostctl has one plain and one TLS address for every site.
	var plain, tls []string
	quic := false
	for _, s := range n.sites {
		for _, a := range s.plain {
			if !slices.Contains(plain, a) {
				plain = append(plain, a)
			}
		}
		for _, a := range s.tls {
			if !slices.Contains(tls, a) {
				tls = append(tls, a)
			}
		}
		quic = quic || s.quic
	}
	if len(plain) > 0 {
		px.set("listen", tomlString(plain[0]), listenNote(im, n.path, "listen", plain)...)
	}
	if len(tls) > 0 {
		px.set("listen_tls", tomlString(tls[0]), listenNote(im, n.path, "listen ... ssl", tls)...)
	}
	if quic {
		px.set("http3", "true")
	}
	for _, key := range []string{"max_body_size", "upstream_timeout", "dial_timeout", "idle_timeout", "upstream_keepalive"} {
		vals := n.wide[key]
		if len(vals) == 0 {
			continue
		}
		v := vals[0]
		var c []string
		for _, o := range vals[1:] {
			if o.value != v.value {
				c = append(c, im.note(o.where, Approximated, "%s is one value for every site in hostctl: %s (from %s), not %s", key, v.value, v.where, o.value))
			}
		}
		switch key {
		case "upstream_timeout":
			c = append(c, fmt.Sprintf("from %s: nginx's proxy_read_timeout is between two reads, hostctl's upstream_timeout is for the response headers", v.where))
		case "max_body_size":
			c = append(c, "from "+v.where)
		}
		px.set(key, v.value, c...)
	}
	for _, r := range redirects {
		cm := "HTTP to HTTPS: hostctl redirects every HTTPS site's host names itself (308)"
		if len(r.names) > 0 {
			cm = fmt.Sprintf("the nginx server for %s only redirected to HTTPS (%s:%d); hostctl does that itself for every HTTPS site (308)", strings.Join(r.names, " "), n.im.rel(r.d.File), r.d.Line)
		}
		px.comments = append(px.comments, cm)
		covered := false
		for _, s := range sites {
			if len(s.tls) > 0 && (len(r.names) == 0 || overlaps(s.names, r.names)) {
				covered = true
			}
		}
		if !covered {
			px.comments = append(px.comments, im.note(n.where(r.d), NotTranslated, "a redirect to HTTPS for %s, but no HTTPS site serves those names", strings.Join(r.names, " ")))
		}
	}
	if len(sites) == 1 {
		n.site(px, sites[0], "")
		im.sites++
		return
	}
	for _, s := range sites {
		sec := im.doc.add("proxy.site", true, fmt.Sprintf("from the server block at %s:%d", im.rel(s.d.File), s.d.Line))
		n.site(sec, s, "proxy.site")
		im.sites++
	}
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

func listenNote(im *importer, file, what string, addrs []string) []string {
	if len(addrs) < 2 {
		return nil
	}
	return []string{im.note(file, Approximated, "%s on %s: hostctl has one address for this; %s is used (an address without a host takes IPv4 and IPv6)", what, strings.Join(addrs, ", "), addrs[0])}
}

// site writes one site's keys into sec; statics go into their own
// [[prefix.static]] tables ("proxy.static" or a site's).
func (n *nginxImport) site(sec *section, s *ngSite, prefix string) {
	im := n.im
	sec.comments = append(sec.comments, s.comments...)
	if len(s.names) == 0 && len(s.tls) > 0 {
		// nginx served HTTPS for any host name; hostctl serves a
		// certificate for the names it is for.
		if m := certbotLineage.FindStringSubmatch(s.cert); m != nil {
			s.names = []string{m[1]}
			sec.comments = append(sec.comments, im.note(n.where(s.d), Approximated, "HTTPS without server_name: the site is for %s, the name of certbot's certificate %s; add the other names it holds", m[1], s.cert))
		} else {
			sec.comments = append(sec.comments, im.note(n.where(s.d), NotTranslated, "HTTPS without server_name: hostctl serves HTTPS for the host names of a site; the site is served over plain HTTP here: add hosts = [...] and cert_file, key_file"))
			s.tls, s.cert, s.key = nil, "", ""
		}
	}
	if len(s.names) > 0 {
		sec.set("hosts", tomlStrings(s.names))
	}
	switch {
	case len(s.tls) > 0 && s.cert != "":
		sec.set("cert_file", tomlString(s.cert), "ssl_certificate: served from the files, reloaded when they change (certbot renew); no ACME for these names")
		sec.set("key_file", tomlString(s.key))
	case len(s.tls) > 0:
		sec.set("tls", tomlString("auto"), im.note(n.where(s.d), Approximated, "HTTPS without ssl_certificate: hostctl gets certificates from Let's Encrypt"))
	default:
		sec.set("tls", tomlString("off"), "nginx served this site over plain HTTP only")
	}
	n.im.upstreams = append(n.im.upstreams, s.upstreams...)
	switch len(s.upstreams) {
	case 0:
	case 1:
		sec.set("upstream", tomlString(s.upstreams[0]))
	default:
		sec.set("upstreams", tomlStrings(s.upstreams), "load balanced (fewest requests in flight) with active health checks; nginx's default was round robin")
	}
	if s.errorPage != "" {
		sec.set("error_page", tomlString(s.errorPage))
	}
	for _, st := range s.statics {
		name := "proxy.static"
		if prefix != "" {
			name = prefix + ".static"
		}
		ss := im.doc.add(name, true, st.comments...)
		ss.set("path", tomlString(st.path))
		ss.set("dir", tomlString(st.dir))
		if st.maxAge != "" {
			ss.set("max_age", tomlString(st.maxAge))
		}
	}
}

// namesOf names a server for messages.
func namesOf(s *ngSite) string {
	if len(s.names) == 0 {
		return "every host"
	}
	return strings.Join(s.names, " ")
}

// whole marks a block's directives as seen: the block was reported as a
// whole.
func (n *nginxImport) whole(d *crossplane.Directive) {
	for _, x := range d.Block {
		n.used[x] = true
		n.whole(x)
	}
}

// unused lists every directive that nothing translated.
func (n *nginxImport) unused(block crossplane.Directives) {
	for _, d := range block {
		if !n.used[d] {
			msg := strings.TrimSpace(d.Directive + " " + strings.Join(d.Args, " "))
			if d.IsBlock() {
				msg += " { ... }"
			}
			c := n.im.note(n.where(d), NotTranslated, "%s", strings.TrimSpace(msg))
			n.proxy.trailer = append(n.proxy.trailer, c)
			continue
		}
		if d.IsBlock() {
			n.unused(d.Block)
		}
	}
}
