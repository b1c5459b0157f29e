package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
)

// TLS modes for Site.TLS and Config.TLS.
const (
	TLSAuto     = "auto"     // certificates from an ACME server (Config.ACMECA; Let's Encrypt by default), HTTP redirected to HTTPS
	TLSInternal = "internal" // certificates from Caddy's local CA under the state dir (never installed into the system trust store)
	TLSOff      = "off"      // plain HTTP on Listen
)

// Config is the [proxy] section of hostctl.toml.
//
// The simplest useful configuration is
//
//	[proxy]
//	listen = "127.0.0.1:8080"
//	upstream = "127.0.0.1:8000"
//
// The site keys at the top level (hosts, tls, upstream, upstreams, static,
// error_page, maintenance, allow) describe one site. With [[proxy.site]]
// tables there can be several; then the top-level site keys are defaults that
// each site may override.
//
// Unless noted, a zero value means "use the default from DefaultConfig".
type Config struct {
	// Listen is the address for plain HTTP, as host:port (":80" for every
	// interface). HTTP->HTTPS redirects and ACME HTTP challenges are served
	// here too. Default ":80".
	Listen string `toml:"listen"`

	// ListenTLS is the address for HTTPS, as host:port; used only when a site
	// has TLS. ACME TLS-ALPN challenges are answered here too. Default ":443".
	ListenTLS string `toml:"listen_tls"`

	// Email is the ACME account email for tls = "auto" (Let's Encrypt uses it
	// for expiry warnings). Default empty (an account without email).
	Email string `toml:"email"`

	// ACMECA is the directory URL of the ACME server that issues the
	// certificates of tls = "auto" sites; it must be https. The server
	// validates each host name by connecting to it on port 80 (HTTP-01,
	// answered on Listen) or 443 (TLS-ALPN-01, answered on ListenTLS), so
	// those ports must reach hostctl, directly or forwarded. Default
	// Let's Encrypt's production directory,
	// "https://acme-v02.api.letsencrypt.org/directory"; only with that
	// default is a retry after a failed attempt sent to Let's Encrypt's
	// staging directory first (to spare the production rate limits).
	ACMECA string `toml:"acme_ca"`

	// ACMECARoot is a PEM file of root certificates to trust, instead of
	// the system's, for HTTPS connections to ACMECA: for a private ACME
	// server (step-ca, Pebble) whose own certificate is not publicly
	// trusted. It does not change what clients of the sites trust. Read
	// when the proxy starts and when a reload changes its config (new
	// contents at the same path take effect at the next start). Default
	// empty (the system's roots).
	ACMECARoot string `toml:"acme_ca_root" trust:"config"`

	// HTTP3 turns on HTTP/3 (QUIC, a UDP listener on ListenTLS's port, and an
	// Alt-Svc header). Default false.
	HTTP3 bool `toml:"http3"`

	// Hosts are the host names of the top-level site. Empty means every host
	// (a catch-all site; only valid with tls = "off"). Default empty.
	Hosts []string `toml:"hosts"`

	// TLS is "auto", "internal" or "off". Default: "auto" when every host
	// name qualifies for a public certificate (not localhost, not an IP
	// address, not *.local/*.internal/*.test and the like), else "off".
	TLS string `toml:"tls"`

	// Upstream is one upstream: "host:port", or a unix socket written as
	// gunicorn's --bind writes it, "unix:/run/app.sock". Set Upstream or
	// Upstreams, not both.
	Upstream string `toml:"upstream"`

	// CertFile and KeyFile serve the top-level site's certificate from PEM
	// files (a certificate chain and its private key, such as certbot's
	// fullchain.pem and privkey.pem) instead of obtaining one: see
	// Site.CertFile.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file" trust:"secret"`

	// UpstreamList is the key "upstreams": a list of upstreams, load
	// balanced (fewest requests in flight) with active and passive health
	// checks (see Health): other hosts' addresses make this hostctl a
	// front for several webservers. Default empty. (Named so because
	// Upstreams is a method.)
	UpstreamList []string `toml:"upstreams"`

	// Switched are upstreams (as written, resolved) that move from one
	// blue/green slot to the other (hostctl deploy): a site with one of
	// them is proxied by a pool (hostctl_pool), even with one upstream,
	// so that the switch swaps its list without reloading Caddy
	// (SwapUpstreams), and the deploy's gate can reach the new slot
	// (ServeGate). Set by hostctl's config reader; not a TOML key.
	Switched []string `toml:"-"`

	// Static lists static file mounts ([[proxy.static]]), tried before the
	// upstream. Default none.
	Static []Static `toml:"static"`

	// ErrorPage is an HTML file served with the real status (502, 503, 504)
	// when the upstream is down, failing or too slow, and for maintenance
	// mode. It is read, as FileUser, when the config is applied (changing
	// the file needs a reload); at most 1 MB. It is served as written,
	// except that "{http.error.status_code}" becomes the status (no other
	// Caddy placeholder is expanded: the app's user may write the page).
	// Default: the page built into hostctl (a copy is configs/error.html).
	ErrorPage string `toml:"error_page"`

	// FileUser is the user whose permissions static files and error pages
	// are read with, as nginx's workers read them as www-data: a file, or
	// a symbolic link the app's user plants, that this user may not read
	// is answered 403 (an error page: a config error). Its uid, gid and
	// supplementary groups count; root (uid 0) is refused. Used only when
	// hostctl runs as root; otherwise files are read as hostctl's own
	// user. Default "www-data" if that user exists, else "nobody".
	FileUser string `toml:"file_user"`

	// Maintenance answers every request with 503 and the error page, except
	// requests from Allow. Default false.
	Maintenance bool `toml:"maintenance"`

	// Allow lists client IP addresses or CIDR ranges ("10.0.0.0/8") that
	// bypass maintenance mode. Default empty.
	Allow []string `toml:"allow"`

	// Sites are more sites ([[proxy.site]]). When set, the top-level site
	// keys are defaults for each site and no top-level site is served on its
	// own. Default none.
	Sites []Site `toml:"site"`

	// RetryFor is how long a request waits for an upstream that refuses
	// connections (restarting) before it gets the error page. Connection
	// failures are retried for every method (the request never reached the
	// upstream); other failures only for GET. Retries are spaced by 250 ms.
	// Default 5s. "0s" turns retries off.
	RetryFor *time.Duration `toml:"retry_for"`

	// HoldFor caps how long a request to a single upstream may wait, from
	// its arrival, while the upstream's program restarts (restart, a
	// health or memory restart, a reload or deploy that restarts it):
	// held in the proxy, not dialled, until the program is up again, for
	// at most what the program's config allows it to take to stop and
	// start (drain_timeout + stop_timeout + its start bound + 10s), and
	// never longer than this. A request is held at least retry_for all
	// the same. Default 60s. "0s": no longer than retry_for.
	HoldFor *time.Duration `toml:"hold_for"`

	// MaxBodySize is the largest request body accepted; larger requests get
	// 413. Bytes ("10MB"). Default 10MB. 0 means unlimited.
	MaxBodySize *int64 `toml:"max_body_size" unit:"bytes"`

	// RequestBuffer is how much of a request body is read from the client
	// before the upstream connection is opened, so a slow client never holds
	// an upstream worker (gunicorn sync workers serve one connection at a
	// time). Bytes. Default 10MB (the same as max_body_size: whole bodies
	// are buffered; the first RequestBufferMemory bytes in RAM, the rest in
	// a file). 0 turns buffering off (stream bodies; only safe for async
	// upstreams).
	RequestBuffer *int64 `toml:"request_buffer" unit:"bytes"`

	// RequestBufferMemory is how much of each buffered request body is
	// kept in RAM; the rest of its request_buffer is written to an
	// unlinked file in <state_dir>/proxy-bodies (a dir only hostctl's
	// user may enter), as nginx's client_body_buffer_size. Bytes.
	// Default 64KB.
	RequestBufferMemory *int64 `toml:"request_buffer_memory" unit:"bytes"`

	// RequestBufferTotalMemory caps the RAM all buffered request bodies
	// hold together; a body that finds it used up goes to disk whole.
	// Bytes. Default 64MB.
	RequestBufferTotalMemory *int64 `toml:"request_buffer_total_memory" unit:"bytes"`

	// RequestBufferTotalDisk caps the disk all spooled request bodies
	// hold together: a request whose body does not fit gets 503 with
	// Retry-After (before its body is read when its length is known), so
	// parallel uploads can fill neither hostctl's memory nor the disk.
	// At least request_buffer - request_buffer_memory. Bytes. Default 1GB.
	RequestBufferTotalDisk *int64 `toml:"request_buffer_total_disk" unit:"bytes"`

	// UpstreamKeepAlive keeps idle connections to the upstream open for
	// reuse. Off by default: gunicorn sync workers would be pinned by idle
	// connections. Turn on only for upstreams that handle many connections
	// (async workers, other Go/Node servers). Default false.
	UpstreamKeepAlive bool `toml:"upstream_keepalive"`

	// ReadHeaderTimeout limits reading a client's request headers. Default 10s.
	ReadHeaderTimeout time.Duration `toml:"read_header_timeout"`

	// ReadTimeout limits reading a whole client request, body included.
	// Default 60s.
	ReadTimeout time.Duration `toml:"read_timeout"`

	// WriteTimeout limits writing a response to the client, from the end of
	// the request headers. Default 0 (none: long downloads and streaming
	// responses are not cut).
	WriteTimeout *time.Duration `toml:"write_timeout"`

	// IdleTimeout closes an idle client keep-alive connection. Default 2m.
	IdleTimeout time.Duration `toml:"idle_timeout"`

	// GracePeriod is how long Stop, and a reload for the servers it
	// replaces, wait for requests in flight before closing their
	// connections. Default 10s.
	GracePeriod time.Duration `toml:"grace_period"`

	// DialTimeout limits connecting to the upstream. Default 3s.
	DialTimeout time.Duration `toml:"dial_timeout"`

	// UpstreamTimeout limits waiting for the upstream's response headers after
	// the request was sent; then the client gets 504 and the error page.
	// Keep it above gunicorn's --timeout (30s by default). Default 60s.
	UpstreamTimeout time.Duration `toml:"upstream_timeout"`

	// TrustedProxies lists CIDR ranges of proxies in front of hostctl (a load
	// balancer) whose X-Forwarded-For/-Proto/-Host headers are passed on and
	// used for the client IP. From anyone else those headers are replaced.
	// hostctl always sets X-Forwarded-For, X-Forwarded-Proto and
	// X-Forwarded-Host toward the upstream. Default empty.
	TrustedProxies []string `toml:"trusted_proxies"`

	// Health configures the health checks of sites with more than one
	// upstream: active checks (a request to each upstream every interval)
	// and passive ones (failed requests take an upstream out).
	Health Health `toml:"health"`

	// Storage ([proxy.storage]) is where certificates, ACME accounts and
	// the local CA live: a directory (default <state_dir>/caddy) or a
	// Redis server that several webservers share. See Storage.
	Storage Storage `toml:"storage"`

	// HealthPath is a URL path, such as "/.hostctl/health", that hostctl
	// answers itself on every site, for a load balancer or a hostctl in
	// front (its [proxy.health] path): 200 when at least one program
	// behind the site's upstreams is RUNNING (and passing its health check,
	// if it has one) and hostctl is not draining (hostctl drain), else 503;
	// the body says which. A site whose upstreams no program of this
	// hostctl serves is healthy unless draining. Requests to it are not
	// passed to the upstream and do not count as traffic for hostctl drain
	// --wait. Default empty (none; hostctl drain needs it).
	HealthPath string `toml:"health_path"`

	// AccessLog writes one JSON line per request to the access log writer
	// given to the proxy (rotated with the [log] limits). About 10% of
	// proxy throughput. Default true.
	AccessLog *bool `toml:"access_log"`

	// Caddyfile is the path of a Caddyfile whose routes are put ahead of the
	// generated ones: the escape hatch for what this schema lacks.
	//
	// What it can do: add request handling with any directive compiled into
	// hostctl (handle, handle_path, route, redir, respond, rewrite, uri,
	// header, request_header, basic_auth, reverse_proxy to other backends,
	// encode, request_body, map, vars, intercept, forward_auth, timeouts,
	// log_append, error, abort), matched by path, header, method, remote IP
	// or host. Not built in (a clear error names them): file_server,
	// try_files, templates, php_fastcgi, metrics, tracing, push and
	// acme_server; serve files with [[proxy.static]] instead.
	// Its routes run before hostctl's sites on every listener (after the
	// HTTP->HTTPS redirects on the plain-HTTP one); a matching route that
	// writes a response ends the request there, otherwise the request goes
	// on to the generated routes. Changing the file needs a reload.
	//
	// What it cannot do: change listeners, ports, TLS, certificates,
	// protocols, timeouts or logging. The global options block, server
	// options, site addresses' ports and schemes, `tls`, `log` and
	// `handle_errors` are ignored (use the [proxy] keys). Put directives in
	// a site block whose address is only a port (":80 { ... }") to apply
	// them to every site, or whose address is a host name to apply them to
	// that host only. Placeholders, snippets and imports work as in Caddy.
	// Default empty.
	Caddyfile string `toml:"caddyfile"`

	// UpstreamPeers is not read from the file: hostctl sets it to the uids
	// of the programs that serve each unix upstream (upstream address ->
	// uids; a program without a user runs as hostctl's). A connection to
	// such a socket whose listener (SO_PEERCRED) has another uid is refused
	// as a failed dial. For every unix upstream, listed or not, a symlink
	// as the socket's last path component and a listener that is hostctl
	// itself are refused (unixdial.go). Nil: no uid check.
	UpstreamPeers map[string][]uint32 `toml:"-" json:"-"`
}

// Site is one [[proxy.site]]: a set of host names served the same way.
// Unset keys take the top-level [proxy] value.
type Site struct {
	// Hosts are the site's host names ("example.com", "www.example.com").
	// Required when there is more than one site or TLS is on.
	Hosts []string `toml:"hosts"`
	// TLS is "auto", "internal" or "off"; see Config.TLS.
	TLS string `toml:"tls"`
	// CertFile is a PEM file holding the site's certificate chain (leaf
	// first), KeyFile its private key: the site is served over HTTPS with
	// that certificate, and no certificate is requested from an ACME
	// server or the local CA for its host names (tls must be unset or
	// "auto"). hostctl checks the files every 10 seconds (size,
	// modification time and inode, through symlinks) and reloads the
	// proxy when their contents change, so a certificate renewed in place
	// (certbot renew) is served without a restart; a pair that does not
	// load (a renewal half written) is logged and the previous
	// certificate keeps serving. Default empty (certificates by tls).
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file" trust:"secret"`
	// Upstream is one upstream (host:port or unix:/path); see Config.Upstream.
	Upstream string `toml:"upstream"`
	// Upstreams is a load-balanced list; see Config.Upstreams.
	Upstreams []string `toml:"upstreams"`
	// Static mounts; when set they replace the top-level ones.
	Static []Static `toml:"static"`
	// ErrorPage is an HTML file; see Config.ErrorPage.
	ErrorPage string `toml:"error_page"`
	// Maintenance overrides the top-level maintenance flag for this site.
	Maintenance *bool `toml:"maintenance"`
	// Allow overrides the top-level allow list for this site.
	Allow []string `toml:"allow"`
}

// Static serves files from a directory under a URL prefix, before the
// upstream: precompressed siblings (file.css.br, .zst, .gz) when the client
// accepts them, otherwise gzip/zstd on the fly for text types; ETag and
// Last-Modified with 304 answers; Cache-Control max-age. A missing file is
// a 404 (the upstream is not asked).
type Static struct {
	// Path is the URL prefix, such as "/static/". It is stripped before the
	// file is looked up in Dir. Required.
	Path string `toml:"path"`
	// Dir is the directory, such as Django's STATIC_ROOT. Required; must exist.
	Dir string `toml:"dir"`
	// MaxAge is the Cache-Control max-age sent with files. Default 1h;
	// "0s" sends "Cache-Control: no-cache" (clients revalidate with ETag).
	MaxAge *time.Duration `toml:"max_age"`
	// Later: Dir may not exist yet (a release's dir, before the first
	// deploy): its requests get 404 until it does. Set by hostctl's
	// config reader; not a TOML key.
	Later bool `toml:"-"`
}

// Health configures the health checks ([proxy.health]) of sites with more
// than one upstream (a pool). Active checks request Path from each
// upstream every Interval; an upstream that fails one gets no requests
// until it passes one again. Passive checks count failed requests (the
// connection refused or reset, no response headers within
// upstream_timeout): an upstream with MaxFails of them within
// FailDuration gets no requests until they are older than FailDuration.
// A request that failed before reaching an upstream (connection refused)
// is retried on another one, and a GET that failed in any way too, for up
// to retry_for.
type Health struct {
	// Path is the URI requested from each upstream. Default "/".
	Path string `toml:"path"`
	// Host is the Host header of the check request (Django checks it
	// against ALLOWED_HOSTS). Default: the site's first host name, else the
	// upstream address.
	Host string `toml:"host"`
	// Status is the status an upstream must answer with to count as healthy:
	// an exact code (200) or a class (2 for 2xx). Default 2 (any 2xx).
	Status int `toml:"status"`
	// Interval between checks of each upstream. Default 5s.
	Interval time.Duration `toml:"interval"`
	// Timeout of one check. Default 3s.
	Timeout time.Duration `toml:"timeout"`
	// MaxFails is how many failed requests within FailDuration take an
	// upstream out of the pool (passive checks). Default 3.
	MaxFails int `toml:"max_fails"`
	// FailDuration is how long a failed request counts against its
	// upstream. Default 10s; "0s" turns passive checks off.
	FailDuration *time.Duration `toml:"fail_duration"`
}

// DefaultConfig returns the defaults documented on each field. They are safe
// in front of gunicorn sync workers: request bodies buffered (up to the body
// limit), no idle upstream connections kept, retries while the upstream
// restarts, and client read timeouts.
func DefaultConfig() Config {
	retry := 5 * time.Second
	hold := time.Minute
	maxBody := int64(10 << 20)
	buf := maxBody
	bufMem, bufTotalMem, bufTotalDisk := int64(defaultBufferMemory), int64(defaultBufferTotalMemory), int64(defaultBufferTotalDisk)
	write := time.Duration(0)
	accessLog := true
	failDuration := 10 * time.Second
	return Config{
		Listen:                   ":80",
		ListenTLS:                ":443",
		ACMECA:                   certmagic.LetsEncryptProductionCA,
		RetryFor:                 &retry,
		HoldFor:                  &hold,
		MaxBodySize:              &maxBody,
		RequestBuffer:            &buf,
		RequestBufferMemory:      &bufMem,
		RequestBufferTotalMemory: &bufTotalMem,
		RequestBufferTotalDisk:   &bufTotalDisk,
		ReadHeaderTimeout:        10 * time.Second,
		ReadTimeout:              60 * time.Second,
		WriteTimeout:             &write,
		IdleTimeout:              2 * time.Minute,
		GracePeriod:              10 * time.Second,
		DialTimeout:              3 * time.Second,
		UpstreamTimeout:          60 * time.Second,
		AccessLog:                &accessLog,
		Health: Health{
			Path:         "/",
			Status:       2,
			Interval:     5 * time.Second,
			Timeout:      3 * time.Second,
			MaxFails:     3,
			FailDuration: &failDuration,
		},
	}
}

const defaultStaticMaxAge = time.Hour

// The request body buffers' defaults (see RequestBufferMemory).
const (
	defaultBufferMemory      = 64 << 10
	defaultBufferTotalMemory = 64 << 20
	defaultBufferTotalDisk   = 1 << 30
)

// withDefaults returns c with every unset field set from DefaultConfig, so a
// Config filled only from the file works without the caller merging
// defaults first.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	if c.ListenTLS == "" {
		c.ListenTLS = d.ListenTLS
	}
	if c.ACMECA == "" {
		c.ACMECA = d.ACMECA
	}
	if c.RetryFor == nil {
		c.RetryFor = d.RetryFor
	}
	if c.HoldFor == nil {
		c.HoldFor = d.HoldFor
	}
	if c.MaxBodySize == nil {
		c.MaxBodySize = d.MaxBodySize
	}
	if c.RequestBuffer == nil {
		c.RequestBuffer = d.RequestBuffer
	}
	if c.RequestBufferMemory == nil {
		c.RequestBufferMemory = d.RequestBufferMemory
	}
	if c.RequestBufferTotalMemory == nil {
		c.RequestBufferTotalMemory = d.RequestBufferTotalMemory
	}
	if c.RequestBufferTotalDisk == nil {
		c.RequestBufferTotalDisk = d.RequestBufferTotalDisk
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = d.ReadTimeout
	}
	if c.WriteTimeout == nil {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.GracePeriod == 0 {
		c.GracePeriod = d.GracePeriod
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = d.UpstreamTimeout
	}
	if c.AccessLog == nil {
		c.AccessLog = d.AccessLog
	}
	if c.Health.Path == "" {
		c.Health.Path = d.Health.Path
	}
	if c.Health.Status == 0 {
		c.Health.Status = d.Health.Status
	}
	if c.Health.Interval == 0 {
		c.Health.Interval = d.Health.Interval
	}
	if c.Health.Timeout == 0 {
		c.Health.Timeout = d.Health.Timeout
	}
	c.Storage = c.Storage.withDefaults()
	if c.Health.MaxFails == 0 {
		c.Health.MaxFails = d.Health.MaxFails
	}
	if c.Health.FailDuration == nil {
		c.Health.FailDuration = d.Health.FailDuration
	}
	return c
}

// site is a Site with the top-level defaults applied, plus where it came
// from for error key paths.
type site struct {
	Site
	key         string // "proxy" or "proxy.site[1]"
	maintenance bool
}

// sites returns the effective sites: the [[proxy.site]] tables with
// top-level defaults filled in, or the top-level site.
func (c *Config) sites(prefix string) []site {
	top := Site{
		Hosts: c.Hosts, TLS: c.TLS, CertFile: c.CertFile, KeyFile: c.KeyFile, Upstream: c.Upstream, Upstreams: c.UpstreamList,
		Static: c.Static, ErrorPage: c.ErrorPage, Allow: c.Allow,
	}
	if len(c.Sites) == 0 {
		return []site{{Site: top, key: prefix, maintenance: c.Maintenance}}
	}
	out := make([]site, 0, len(c.Sites))
	for i, s := range c.Sites {
		e := site{Site: s, key: fmt.Sprintf("%s.site[%d]", prefix, i), maintenance: c.Maintenance}
		if e.TLS == "" && e.CertFile == "" {
			e.TLS = top.TLS
		}
		if e.Upstream == "" && len(e.Upstreams) == 0 {
			e.Upstream, e.Upstreams = top.Upstream, top.Upstreams
		}
		if e.Static == nil {
			e.Static = top.Static
		}
		if e.ErrorPage == "" {
			e.ErrorPage = top.ErrorPage
		}
		if e.Site.Maintenance != nil {
			e.maintenance = *e.Site.Maintenance
		}
		if e.Allow == nil {
			e.Allow = top.Allow
		}
		out = append(out, e)
	}
	return out
}

// tlsFiles is the mode of a site whose certificate comes from CertFile
// and KeyFile; it is not a value of the tls key.
const tlsFiles = "files"

// tlsMode returns the site's effective TLS mode.
func (s *site) tlsMode() string {
	if s.CertFile != "" || s.KeyFile != "" {
		return tlsFiles
	}
	if s.TLS != "" {
		return s.TLS
	}
	if len(s.Hosts) == 0 {
		return TLSOff
	}
	for _, h := range s.Hosts {
		if !certmagic.SubjectQualifiesForPublicCert(h) || isLocalName(h) {
			return TLSOff
		}
	}
	return TLSAuto
}

// isLocalName reports names that qualify syntactically for a public
// certificate but can never get one.
func isLocalName(h string) bool {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	for _, suf := range []string{".local", ".internal", ".test", ".example", ".invalid", ".lan", ".home.arpa"} {
		if strings.HasSuffix(h, suf) {
			return true
		}
	}
	return !strings.Contains(h, ".")
}

// hasTLS reports whether any site serves HTTPS.
func (c *Config) hasTLS() bool {
	for _, s := range c.sites("proxy") {
		if s.tlsMode() != TLSOff {
			return true
		}
	}
	return false
}

// switched reports whether a site with upstreams ups is a pool because
// one of them moves between blue/green slots (Switched).
func (c *Config) switched(ups []string) bool {
	for _, u := range ups {
		if slices.Contains(c.Switched, u) {
			return true
		}
	}
	return false
}

// pooled reports whether a site with upstreams ups is proxied by a pool
// (hostctl_pool): several upstreams, or one that switches.
func (c *Config) pooled(ups []string) bool { return len(ups) > 1 || c.switched(ups) }

// upstreams returns the site's upstream list.
func (s *site) upstreams() []string {
	if s.Upstream != "" {
		return []string{s.Upstream}
	}
	return s.Upstreams
}

// FieldError is one problem in the configuration, at a key path such as
// "proxy.site[0].upstream".
type FieldError struct {
	Key string
	Msg string
	// Machine is set when the problem is with this machine rather than
	// with the file: a file or directory that does not exist here.
	Machine bool
}

// OnMachine reports whether the problem depends on this machine (see
// Machine).
func (e *FieldError) OnMachine() bool { return e.Machine }

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Field returns the key path and the message apart, so that the config
// file reader can put the key's line in front.
func (e *FieldError) Field() (key, msg string) { return e.Key, e.Msg }

// Upstreams returns the dial address of every upstream of every site, as
// written in the config ("127.0.0.1:8000", "unix:/run/app.sock"), without
// duplicates, so the caller can wait for the programs behind them.
func (c *Config) Upstreams() []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range c.sites("proxy") {
		for _, u := range s.upstreams() {
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	return out
}

// Validate returns every problem in c, each a *FieldError whose key starts
// with prefix (normally "proxy"). It checks values, then builds the Caddy
// config and runs caddy.Validate on it (provisioning every module without
// opening listeners); a problem found only there is reported at prefix.
// Unset fields take their defaults, as in Apply.
func (c *Config) Validate(prefix string) []error {
	errs := c.validateFields(prefix)
	if len(errs) > 0 {
		return errs
	}
	if err := validateCaddy(c, prefix); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// validateFields checks c's values, every section, and returns every
// problem as a *FieldError whose key starts with prefix. It does not build
// the Caddy config.
func (c *Config) validateFields(prefix string) []error {
	fe := &fieldErrors{prefix: prefix}
	cc := c.withDefaults()
	cc.checkListen(fe)
	cc.checkACME(fe)
	cc.checkLimits(fe)
	cc.checkHealth(fe)
	cc.Storage.check(fe)
	for i, p := range cc.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			fe.add(fmt.Sprintf(".trusted_proxies[%d]", i), "%q is not an IP address or CIDR range", p)
		}
	}
	if cc.Caddyfile != "" {
		if _, err := os.Stat(cc.Caddyfile); err != nil {
			fe.addMachine(".caddyfile", "cannot read: %v", unwrapPath(err))
		} else if _, err := readTrusted(cc.Caddyfile, false); err != nil {
			fe.add(".caddyfile", "%v", readError(err))
		}
	}
	cc.checkSites(fe)
	cc.checkFileUser(fe)
	return fe.errs
}

// checkFileUser checks file_user: a user that exists, not root, whose
// groups can be read. The default (www-data, else nobody) is checked only
// where it is used: hostctl runs as root and a site has static files or
// an error page.
func (cc *Config) checkFileUser(fe *fieldErrors) {
	if cc.FileUser == "" {
		if os.Geteuid() != 0 {
			return
		}
		used := false
		for _, s := range cc.sites("") {
			used = used || len(s.Static) > 0 || s.ErrorPage != ""
		}
		if !used {
			return
		}
	}
	if _, err := lookupFileUser(cc.FileUser); err != nil {
		fe.add(".file_user", "%v", err)
	}
}

// fieldErrors collects the problems validateFields finds.
type fieldErrors struct {
	prefix string // put in front of every key: "proxy"
	errs   []error
}

// add records a problem at prefix+key, such as ".listen".
func (fe *fieldErrors) add(key, format string, args ...any) {
	fe.errs = append(fe.errs, &FieldError{Key: fe.prefix + key, Msg: fmt.Sprintf(format, args...)})
}

// addMachine is add for a problem with this machine (FieldError.Machine):
// a file or directory the config names that is not here.
func (fe *fieldErrors) addMachine(key, format string, args ...any) {
	fe.errs = append(fe.errs, &FieldError{Key: fe.prefix + key, Msg: fmt.Sprintf(format, args...), Machine: true})
}

// checkListen checks listen and listen_tls: host:port with an IP address
// or localhost, and different ports.
func (cc *Config) checkListen(fe *fieldErrors) {
	checkHostPort := func(key, v string) (port int) {
		host, p, err := net.SplitHostPort(v)
		if err != nil {
			fe.add(key, "%q is not host:port (for example \"127.0.0.1:8080\" or \":80\")", v)
			return 0
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			fe.add(key, "port %q is not a number from 1 to 65535", p)
			return 0
		}
		if host != "" {
			if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
				fe.add(key, "host %q must be an IP address or localhost (host names go in hosts)", host)
			}
		}
		return n
	}
	httpPort := checkHostPort(".listen", cc.Listen)
	tlsPort := checkHostPort(".listen_tls", cc.ListenTLS)
	if httpPort != 0 && httpPort == tlsPort {
		fe.add(".listen_tls", "port %d is also the port of listen; HTTP and HTTPS need different ports", tlsPort)
	}
}

// checkACME checks acme_ca (an https URL) and acme_ca_root (a readable
// file of PEM certificates).
func (cc *Config) checkACME(fe *fieldErrors) {
	if u, err := url.Parse(cc.ACMECA); err != nil || u.Scheme != "https" || u.Host == "" {
		fe.add(".acme_ca", "%q is not an https URL (the ACME directory, such as %q)", cc.ACMECA, certmagic.LetsEncryptProductionCA)
	} else if err := noPlaceholders(cc.ACMECA); err != nil {
		fe.add(".acme_ca", "%q %v", cc.ACMECA, err)
	}
	if err := noPlaceholders(cc.Email); err != nil {
		fe.add(".email", "%q %v", cc.Email, err)
	}
	if cc.ACMECARoot != "" {
		if err := checkPEMCerts(cc.ACMECARoot); err != nil {
			fe.add(".acme_ca_root", "%v", err)
		}
	}
}

// checkLimits checks that retry_for, hold_for, the size limits and the timeouts are
// not negative.
func (cc *Config) checkLimits(fe *fieldErrors) {
	if *cc.RetryFor < 0 {
		fe.add(".retry_for", "must not be negative")
	}
	if *cc.HoldFor < 0 {
		fe.add(".hold_for", "must not be negative")
	}
	if *cc.MaxBodySize < 0 {
		fe.add(".max_body_size", "must not be negative")
	}
	if *cc.RequestBuffer < 0 {
		fe.add(".request_buffer", "must not be negative")
	}
	for _, v := range []struct {
		key string
		n   int64
	}{
		{".request_buffer_memory", *cc.RequestBufferMemory}, {".request_buffer_total_memory", *cc.RequestBufferTotalMemory},
		{".request_buffer_total_disk", *cc.RequestBufferTotalDisk},
	} {
		if v.n < 0 {
			fe.add(v.key, "must not be negative")
		}
	}
	if need := *cc.RequestBuffer - *cc.RequestBufferMemory; need > 0 && *cc.RequestBufferTotalDisk < need {
		fe.add(".request_buffer_total_disk", "%d bytes is less than one request's request_buffer - request_buffer_memory (%d): no body that long could be buffered", *cc.RequestBufferTotalDisk, need)
	}
	for key, d := range map[string]time.Duration{
		".read_header_timeout": cc.ReadHeaderTimeout, ".read_timeout": cc.ReadTimeout,
		".write_timeout": *cc.WriteTimeout, ".idle_timeout": cc.IdleTimeout,
		".dial_timeout": cc.DialTimeout, ".grace_period": cc.GracePeriod, ".upstream_timeout": cc.UpstreamTimeout,
		".health.interval": cc.Health.Interval, ".health.timeout": cc.Health.Timeout,
		".health.fail_duration": *cc.Health.FailDuration,
	} {
		if d < 0 {
			fe.add(key, "must not be negative")
		}
	}
}

// checkHealth checks [proxy.health]'s path, status and max_fails (its
// durations are in checkLimits), and health_path.
func (cc *Config) checkHealth(fe *fieldErrors) {
	if !strings.HasPrefix(cc.Health.Path, "/") {
		fe.add(".health.path", "%q must start with /", cc.Health.Path)
	}
	if s := cc.Health.Status; !(s >= 1 && s <= 5) && !(s >= 100 && s <= 599) {
		fe.add(".health.status", "%d is neither a status code (100-599) nor a class (1-5)", s)
	}
	if err := noPlaceholders(cc.Health.Host); err != nil {
		fe.add(".health.host", "%q %v", cc.Health.Host, err)
	}
	if cc.Health.MaxFails < 0 {
		fe.add(".health.max_fails", "%d: must be 1 or more (failed requests within fail_duration that take an upstream out)", cc.Health.MaxFails)
	}
	if p := cc.HealthPath; p != "" && (!strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#* ")) {
		fe.add(".health_path", "%q must be a URL path starting with / (for example \"/.hostctl/health\")", p)
	}
}

// checkSites checks every site, that no host name belongs to two sites,
// and that at most one site has no host names.
func (cc *Config) checkSites(fe *fieldErrors) {
	if len(cc.Sites) > 0 && len(cc.Hosts) > 0 {
		fe.add(".hosts", "set hosts inside each [[%s.site]]; top-level hosts are only used without sites", fe.prefix)
	}
	seenHost := map[string]string{} // lower-case host name -> key of its site
	catchAll := 0
	for _, s := range cc.sites("") {
		if len(s.Hosts) == 0 {
			catchAll++
		}
		s.checkTLS(fe)
		s.checkHosts(fe, seenHost)
		s.checkUpstreams(fe)
		for i, st := range s.Static {
			st.check(fe, fmt.Sprintf("%s.static[%d]", s.key, i))
		}
		if s.ErrorPage != "" {
			if fi, err := os.Stat(s.ErrorPage); err != nil {
				fe.addMachine(s.key+".error_page", "cannot read: %v", unwrapPath(err))
			} else if fi.Size() > maxErrorPage {
				fe.add(s.key+".error_page", "%q is %d bytes; the limit is %d", s.ErrorPage, fi.Size(), maxErrorPage)
			}
		}
		for i, a := range s.Allow {
			if _, err := parsePrefix(a); err != nil {
				fe.add(fmt.Sprintf("%s.allow[%d]", s.key, i), "%q is not an IP address or CIDR range", a)
			}
		}
	}
	if catchAll > 1 {
		fe.add(".site", "%d sites have no hosts; at most one site may match every host", catchAll)
	}
}

// checkTLS checks the site's tls mode, and that a site with TLS has host
// names to get certificates for. s.key is "" or ".site[i]".
func (s *site) checkTLS(fe *fieldErrors) {
	switch s.TLS {
	case "", TLSAuto, TLSInternal, TLSOff:
	default:
		fe.add(s.key+".tls", "%q is not one of \"auto\", \"internal\", \"off\"", s.TLS)
	}
	if len(s.Hosts) == 0 && (s.TLS == TLSAuto || s.TLS == TLSInternal) {
		fe.add(s.key+".hosts", "tls = %q needs host names to get certificates for", s.TLS)
	}
	s.checkCertFiles(fe)
}

// checkCertFiles checks cert_file and key_file: both or neither, a pair
// that loads, host names to serve it for, and no other tls mode.
func (s *site) checkCertFiles(fe *fieldErrors) {
	if s.CertFile == "" && s.KeyFile == "" {
		return
	}
	if s.CertFile == "" || s.KeyFile == "" {
		fe.add(s.key+".cert_file", "cert_file and key_file go together (the certificate chain and its private key)")
		return
	}
	if s.TLS == TLSInternal || s.TLS == TLSOff {
		fe.add(s.key+".tls", "tls = %q with cert_file: remove tls (cert_file serves HTTPS with that certificate)", s.TLS)
	}
	if len(s.Hosts) == 0 {
		fe.add(s.key+".hosts", "cert_file needs the host names the certificate is served for")
	}
	_, cerr := os.Stat(s.CertFile)
	_, kerr := os.Stat(s.KeyFile)
	if _, err := loadKeyPair(s.CertFile, s.KeyFile); err != nil {
		if cerr != nil || kerr != nil {
			fe.addMachine(s.key+".cert_file", "%v", err) // not on this machine (yet: certbot writes them)
		} else {
			fe.add(s.key+".cert_file", "%v", err)
		}
	}
}

// loadKeyPair reads and parses a certificate chain and its key.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cannot read: %v", unwrapPath(err))
	}
	keyPEM, err := readTrusted(keyFile, true)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("key_file: %w", readError(err))
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%q and %q are not a certificate and its key: %v", certFile, keyFile, err)
	}
	return pair, nil
}

// checkHosts checks the site's host names: no scheme, port or path; no
// wildcard with tls = "auto"; none already in seenHost, to which it adds
// them.
func (s *site) checkHosts(fe *fieldErrors, seenHost map[string]string) {
	for i, h := range s.Hosts {
		hk := fmt.Sprintf("%s.hosts[%d]", s.key, i)
		if err := checkHostName(h); err != nil {
			fe.add(hk, "%v", err)
			continue
		}
		if strings.HasPrefix(h, "*.") && s.tlsMode() == TLSAuto {
			fe.add(hk, "%q: a wildcard certificate needs the ACME DNS challenge, which hostctl does not configure; list the names, or set tls = \"internal\" or \"off\"", h)
		}
		if prev, dup := seenHost[strings.ToLower(h)]; dup {
			fe.add(hk, "%q is also a host of %s", h, fe.prefix+prev)
		}
		seenHost[strings.ToLower(h)] = s.key
	}
}

// checkUpstreams checks that the site has upstream or upstreams (not
// both), or static files only, and each upstream's address.
func (s *site) checkUpstreams(fe *fieldErrors) {
	if s.Upstream != "" && len(s.Upstreams) > 0 {
		fe.add(s.key+".upstreams", "set upstream or upstreams, not both")
	}
	ups := s.upstreams()
	if len(ups) == 0 && len(s.Static) == 0 {
		fe.add(s.key+".upstream", "missing: set upstream (\"127.0.0.1:8000\" or \"unix:/run/app.sock\") or static")
	}
	for i, u := range ups {
		uk := s.key + ".upstream"
		if s.Upstream == "" {
			uk = fmt.Sprintf("%s.upstreams[%d]", s.key, i)
		}
		if err := checkUpstream(u); err != nil {
			fe.add(uk, "%v", err)
		}
	}
}

// check checks one static mount, whose key is key: a URL prefix, an
// existing directory, a max_age that is not negative.
func (st *Static) check(fe *fieldErrors, key string) {
	if !strings.HasPrefix(st.Path, "/") {
		fe.add(key+".path", "%q must be a URL prefix starting with / (for example \"/static/\")", st.Path)
	} else if err := noPlaceholders(st.Path); err != nil {
		fe.add(key+".path", "%q %v", st.Path, err)
	}
	if st.Dir == "" {
		fe.add(key+".dir", "missing: the directory to serve")
	} else if fi, err := os.Stat(st.Dir); err != nil {
		if !st.Later || !errors.Is(err, fs.ErrNotExist) {
			fe.addMachine(key+".dir", "cannot read: %v", unwrapPath(err))
		}
	} else if !fi.IsDir() {
		fe.addMachine(key+".dir", "%q is not a directory", st.Dir)
	}
	if st.MaxAge != nil && *st.MaxAge < 0 {
		fe.add(key+".max_age", "must not be negative")
	}
}

const maxErrorPage = 1 << 20

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func checkHostName(h string) error {
	if h == "" {
		return errors.New("empty host name")
	}
	if strings.ContainsAny(h, " /:{}\"") {
		return fmt.Errorf("%q is not a host name (no scheme, port or path: \"example.com\")", h)
	}
	return nil
}

// ReadTrusted, if set, is the rule for the files the proxy believes as
// root: it reads path, and fails if the file cannot be believed. The
// program that embeds the proxy sets it before the proxy is used; hostctl
// sets it (in cmd/hostctl/config) to supervisor/trust's ReadFile, its one
// rule for such files, which refuses a file that a user other than root
// and hostctl's own owns or can write, or that sits below a dir such a
// user can change.
//
// The proxy reads with it the files a config names that it must read as
// root: key files and the Redis password and encryption key files
// (secret), CA files, and the Caddyfile, whose placeholders ({file.PATH},
// {env.NAME}) run as root. It asks it about error pages too: a page it
// accepts is read as root (it may sit where the file user cannot look,
// a checkout under /root), any other page as FileUser.
//
// If nil (the default), those files are read as they are, and every
// error page is read as FileUser: with no rule, nothing is known to be
// safe to read as root where the proxy has a choice.
var ReadTrusted func(path string, secret bool) ([]byte, error)

// readTrusted reads path with ReadTrusted, or as it is when that is nil.
func readTrusted(path string, secret bool) ([]byte, error) {
	if ReadTrusted == nil {
		return os.ReadFile(path)
	}
	return ReadTrusted(path, secret)
}

// readError says why readTrusted failed: the file could not be read, or
// it was refused.
func readError(err error) error {
	if _, ok := errors.AsType[*fs.PathError](err); ok {
		return fmt.Errorf("cannot read: %v", unwrapPath(err))
	}
	return fmt.Errorf("refused: %w", err)
}

// checkPEMCerts checks that path holds PEM certificates and nothing else.
func checkPEMCerts(path string) error {
	b, err := readTrusted(path, false)
	if err != nil {
		return readError(err)
	}
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		n++
		if blk.Type != "CERTIFICATE" {
			return fmt.Errorf("%q: PEM block %d is %q, not \"CERTIFICATE\": the file must hold only certificates", path, n, blk.Type)
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return fmt.Errorf("%q: PEM block %d is not a valid certificate: %v", path, n, err)
		}
	}
	if n == 0 {
		return fmt.Errorf("%q holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")", path)
	}
	return nil
}

// Config text reaches Caddy fields that expand placeholders: {file.PATH}
// reads a file and {env.NAME} a variable, as root. hostctl's own config is
// root's, but a Caddyfile (whose placeholders are a feature) must be too:
// one the app's user could edit would give it every file on the host
// (ReadTrusted). Values from hostctl.toml that Caddy would expand are
// refused when they hold a brace (noPlaceholders) or escaped
// (escapeBraces), so that they mean what they say.

// errPlaceholder is the error for a value that holds a brace.
var errPlaceholder = errors.New("must not contain { or }: Caddy would read them as a placeholder such as {file.PATH} or {env.NAME} (hostctl.toml takes ${VAR} from hostctl's environment instead)")

// noPlaceholders returns errPlaceholder if v holds a brace.
func noPlaceholders(v string) error {
	if strings.ContainsAny(v, "{}") {
		return errPlaceholder
	}
	return nil
}

// checkUpstream checks "host:port" or "unix:/path" (ParseUpstream).
func checkUpstream(u string) error {
	if err := noPlaceholders(u); err != nil {
		return fmt.Errorf("%q %v", u, err)
	}
	_, err := ParseUpstream(u)
	return err
}

// dialAddress turns a config upstream into Caddy's dial syntax.
func dialAddress(u string) string {
	a, err := ParseUpstream(u)
	if err != nil {
		return u // not in a validated config
	}
	return a.Dial()
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}
