// Package control is hostctl's admin API server: the HTTP server that
// `hostctl run` serves on its unix socket (and optionally on TCP with a
// bearer token, over TLS), with the web dashboard at "/". It owns the one
// route table, who may call what (access.go), the socket and the TLS of
// the listeners, and the JSON endpoints under /v1/, one file per area
// (api_*.go); it mounts the Prometheus metrics and history (package
// metrics) and supervisord's XML-RPC API (package supervisord). The wire
// types are package apitype's; the typed client is package client.
//
// The API is JSON under /v1/ (see routes for the one table of
// endpoints). On the unix socket, file permissions are the authentication;
// on TCP every endpoint but the dashboard page and /healthz needs
// "Authorization: Bearer TOKEN": the admin token, or the read-only one for
// everything that only reads (access.go). Requests from a browser tab of
// another origin are refused on both, and on TCP a Host header that does
// not name the listener (DNS rebinding).
package control

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/check"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/metrics"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/supervisord"
	"github.com/hostctl/hostctl/supervisor"
)

// Programs is what the API needs from the supervisor;
// *supervisor.Supervisor implements it. Names are read with
// supervisor.Match's HostctlNames.
type Programs interface {
	// Resolve checks names and expands ["all"]; its errors are
	// *supervisor.UnknownProgramsError and supervisor.ErrAllWithNames.
	Resolve(names ...string) ([]string, error)
	Status(names ...string) ([]supervisor.Status, error)
	Dropped(process string) uint64
	Log(process, stream string) (supervisor.LogStream, error)
	StartProcesses(ctx context.Context, names ...string) error
	StopProcesses(ctx context.Context, names ...string) error
	RestartProcesses(ctx context.Context, names ...string) error
	SignalProcesses(ctx context.Context, sig syscall.Signal, names ...string) error
	WaitFor(ctx context.Context, process string, cond func(supervisor.Status) bool) (supervisor.Status, error)
}

// Alerts is the alert manager as the API sees it; *alert.Manager
// implements it.
type Alerts interface {
	// Active returns the active alerts sorted by severity, then Since.
	Active() []alert.Alert
	// Sinks returns every configured sink's delivery counters.
	Sinks() []alert.SinkStatus
	// Test sends a test alert to every sink and waits for each answer
	// (until ctx ends).
	Test(ctx context.Context) []alert.TestResult
	// Heartbeats returns every [[alerts.heartbeat]]'s status.
	Heartbeats() []alert.HeartbeatStatus
}

// Drainer is hostctl drain as the API sees it; the daemon implements it.
// Its methods fail with an error wrapping ErrNoHealthPath when the config
// has no [proxy] health_path (nothing would tell a load balancer).
type Drainer interface {
	// DrainStatus returns the drain state and the sites' traffic.
	DrainStatus() (apitype.DrainStatus, error)
	// Drain starts draining (again: no change) and, with wait > 0, waits
	// up to wait until no request is in flight and none has arrived for
	// quiet, or ctx ends.
	Drain(ctx context.Context, wait, quiet time.Duration) (apitype.DrainStatus, error)
	// Undrain ends the drain and, with wait > 0, waits up to wait until
	// health_path has answered 200, or ctx ends.
	Undrain(ctx context.Context, wait time.Duration) (apitype.DrainStatus, error)
}

// ErrNoHealthPath: drain needs [proxy] health_path.
var ErrNoHealthPath = errors.New("hostctl drain needs [proxy] health_path (the path a load balancer checks, such as \"/.hostctl/health\"), answered by hostctl itself; add it and reload")

// defaultQuiet is drain's quiet period when the request sets none.
const defaultQuiet = 5 * time.Second

// Options configure a Server.
type Options struct {
	// Programs is the supervisor. Required.
	Programs Programs
	// Reload re-reads the config and applies it. An error that unwraps to
	// several errors (errors.Join, config.Errors) is reported one by one.
	// nil: reload answers 503 (and supervisorctl update FAILED).
	Reload func(ctx context.Context) (Reloaded, error)
	// Proxy returns the proxy's status, and false when no proxy is
	// configured. GET /v1/proxy answers with it and /metrics exports its
	// running state and upstreams. nil: no proxy.
	Proxy func() (apitype.ProxyStatus, bool)
	// Alerts is the alert manager: GET /v1/alerts and /metrics report it,
	// POST /v1/alerts/test uses it. nil: no alerts are listed and the
	// test answers 503.
	Alerts Alerts
	// Checks returns every [check.NAME]'s status: GET /v1/checks, the
	// dashboard and /metrics show them. nil: no checks.
	Checks func() []check.Status
	// LogRuleDropped is how many bytes of output the log rules did not
	// read because their queue was full (/metrics); nil: none.
	LogRuleDropped func() uint64
	// Drain is hostctl drain: GET/POST /v1/drain, POST /v1/undrain. nil:
	// they answer 503.
	Drain Drainer
	// Deploy is hostctl deploy: POST /v1/deploy. nil: it answers 503.
	Deploy Deployer
	// Releases is [deploy]'s releases and last deploys: GET
	// /v1/releases, the dashboard, and /metrics' hostctl_deploys_total
	// and hostctl_release_info. nil: no [deploy].
	Releases Releases
	// HistoryInterval is how often every program's memory, restarts and
	// state are sampled for GET /v1/history (the dashboard's sparklines),
	// which keeps the last hour. Default: 30s.
	HistoryInterval time.Duration
	// Token is the admin token: on TCP listeners, every endpoint but the
	// public ones needs it or ReadToken, and every write needs it. A TCP
	// listener without a token is refused by ServeTCP.
	Token string
	// ReadToken is the read-only token ([admin] read_token_file): it reads
	// what Token reads (status, logs, metrics, alerts, XML-RPC's read
	// methods) and every write it tries is refused (403, or an XML-RPC
	// fault) as read-only. "": none.
	ReadToken string
	// Names are the host names, besides IP addresses and localhost, that
	// TCP listeners answer to in the Host header ([admin] names, a name
	// in [admin] listen, the certificate's names); any other Host is
	// refused, which is what a DNS rebinding attack sends.
	Names []string
	// TLS, if set, makes TCP listeners serve HTTPS with it (see
	// AdminTLS).
	TLS *tls.Config
	// Logger gets one line per failed request and per listener.
	// Default: no logging.
	Logger *zap.Logger
	// Version is reported by /healthz (and by supervisord's
	// getSupervisorVersion).
	Version string
	// Supervisord is what supervisord's XML-RPC API needs beyond Programs.
	Supervisord Supervisord
}

// Reloaded is what a reload did: the processes it added, changed and
// removed, and what happened to the proxy (apitype.ReloadResponse.Proxy).
type Reloaded struct {
	supervisor.Diff
	Proxy string
}

// Supervisord is what supervisord's XML-RPC API (package supervisord)
// needs beyond Options.Programs; every field is optional (see
// supervisord.Options).
type Supervisord struct {
	// Plan reads the config file and returns what a reload would change,
	// without applying it (supervisorctl reread).
	Plan func() (supervisor.Diff, []*supervisor.ProcessConfig, error)
	// ProcessConfigs returns the running processes' configs
	// (supervisorctl avail).
	ProcessConfigs func() []*supervisor.ProcessConfig
	// MainLog is hostctl's own log file (supervisorctl maintail).
	MainLog supervisord.MainLog
}

// maxWait bounds ActionRequest.WaitSeconds.
const maxWait = 10 * time.Minute

// alertTestTimeout bounds POST /v1/alerts/test: every sink has its own
// timeout (10s by default); this is the cap above them all.
const alertTestTimeout = 60 * time.Second

// Server is the admin API. Create it with New, serve listeners with
// ServeUnix/ServeTCP, end it with Close.
type Server struct {
	opts   Options
	log    *zap.Logger
	tokens tokens
	names  map[string]bool // Options.Names, lower case

	// ctx is the base context of every request; Close cancels it so that
	// log follows end and Shutdown does not wait for them.
	ctx    context.Context
	cancel context.CancelFunc

	metrix *metrics.Metrics    // /metrics and /v1/history; sampling from the first listener on
	rpcs   *supervisord.Server // /RPC2, /logtail, /mainlogtail

	mu      sync.Mutex // guards servers
	servers []*http.Server
}

// New returns a Server; nothing listens until ServeUnix or ServeTCP.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	s := &Server{opts: opts, log: opts.Logger, tokens: newTokens(opts.Token, opts.ReadToken), names: map[string]bool{}}
	for _, n := range opts.Names {
		s.names[strings.ToLower(n)] = true
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	sources := metrics.Sources{Processes: func() ([]apitype.Process, error) { return s.snapshot(nil) }, Proxy: opts.Proxy, LogRuleDropped: opts.LogRuleDropped, Checks: s.checks}
	if opts.Releases != nil {
		sources.Deploys, sources.Live = opts.Releases.DeployCounts, s.liveRelease
	}
	if a := opts.Alerts; a != nil {
		sources.Alerts = func() ([]apitype.Alert, []apitype.AlertSink) { return apiAlerts(a.Active(), a.Sinks()) }
		sources.Heartbeats = func() []apitype.AlertHeartbeat { return apiHeartbeats(a.Heartbeats()) }
	}
	s.metrix = metrics.New(metrics.Options{Sources: sources, HistoryInterval: opts.HistoryInterval, Logger: opts.Logger})
	var reload func(context.Context) error
	if opts.Reload != nil {
		reload = func(ctx context.Context) error {
			_, err := opts.Reload(ctx)
			return err
		}
	}
	s.rpcs = supervisord.New(supervisord.Options{
		Supervisor:     opts.Programs,
		Reload:         reload,
		Plan:           opts.Supervisord.Plan,
		ProcessConfigs: opts.Supervisord.ProcessConfigs,
		MainLog:        opts.Supervisord.MainLog,
		Version:        opts.Version,
		CheckWrite:     checkWrite,
		Logger:         opts.Logger,
	})
	return s
}

// route is one endpoint and who may call it on TCP.
type route struct {
	method, path string
	access       access
	// basic: the token may come as the password of HTTP Basic auth too
	// (supervisorctl -u/-p), on supervisord's paths only.
	basic   bool
	handler func(s *Server, w http.ResponseWriter, r *http.Request)
}

// routes is the one table of endpoints, sorted by path then method (a test
// keeps it so). Paths use http.ServeMux patterns. /RPC2 is read: its
// write methods check the token themselves (checkWrite).
var routes = []route{
	{"POST", "/RPC2", read, true, (*Server).rpc},
	{"GET", "/dashboard.css", public, false, (*Server).dashboardAsset},
	{"GET", "/dashboard.js", public, false, (*Server).dashboardAsset},
	{"GET", "/healthz", public, false, (*Server).healthz},
	{"GET", "/logtail/{name}/{channel}", read, true, (*Server).logtail},
	{"GET", "/mainlogtail", read, true, (*Server).mainlogtail},
	{"GET", "/metrics", read, false, (*Server).metrics},
	{"GET", "/v1/alerts", read, false, (*Server).listAlerts},
	{"POST", "/v1/alerts/test", write, false, (*Server).testAlerts},
	{"GET", "/v1/checks", read, false, (*Server).listChecks},
	{"POST", "/v1/deploy", write, false, (*Server).deploy},
	{"GET", "/v1/drain", read, false, (*Server).drainStatus},
	{"POST", "/v1/drain", write, false, (*Server).drain},
	{"GET", "/v1/history", read, false, (*Server).history},
	{"GET", "/v1/programs", read, false, (*Server).listPrograms},
	{"GET", "/v1/programs/{name}", read, false, (*Server).getProgram},
	{"GET", "/v1/programs/{name}/log", read, false, (*Server).programLog},
	{"GET", "/v1/proxy", read, false, (*Server).proxyStatus},
	{"GET", "/v1/releases", read, false, (*Server).releases},
	{"POST", "/v1/reload", write, false, (*Server).reload},
	{"POST", "/v1/restart", write, false, (*Server).action},
	{"POST", "/v1/signal", write, false, (*Server).action},
	{"POST", "/v1/start", write, false, (*Server).action},
	{"POST", "/v1/stop", write, false, (*Server).action},
	{"POST", "/v1/undrain", write, false, (*Server).drain},
	{"GET", "/{$}", public, false, (*Server).dashboardIndex},
}

// Handler returns the API. With tcp, the Host header must name this
// listener and non-public routes need a token (writes the admin one).
func (s *Server) Handler(tcp bool) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) {
			r, ok := s.allowed(w, r, tcp, rt)
			if !ok {
				return
			}
			rt.handler(s, w, r)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if tcp && !s.hostOK(r.Host) {
			s.refuseHost(w, r)
			return
		}
		for _, m := range []string{"GET", "POST"} {
			r2 := r.Clone(r.Context())
			r2.Method = m
			if _, pat := mux.Handler(r2); m != r.Method && pat != "/" {
				w.Header().Set("Allow", m)
				writeError(w, http.StatusMethodNotAllowed, apitype.CodeBadRequest, fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, m), nil)
				return
			}
		}
		writeError(w, http.StatusNotFound, apitype.CodeNotFound, fmt.Sprintf("no endpoint %s %s (see GET /v1/programs)", r.Method, r.URL.Path), nil)
	})
	return mux
}

// allowed applies the Host, Origin and token checks and answers when they
// fail; else it returns r with the caller's role in its context.
func (s *Server) allowed(w http.ResponseWriter, r *http.Request, tcp bool, rt route) (*http.Request, bool) {
	need := rt.access
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	if tcp && !s.hostOK(r.Host) {
		s.refuseHost(w, r)
		return r, false
	}
	navigation := r.Method == http.MethodGet && need == public
	if !navigation {
		// A browser tab of another site may send requests here (CSRF, DNS
		// rebinding) but always says where it comes from.
		if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r.Host) {
			writeError(w, http.StatusForbidden, apitype.CodeForbidden, "cross-origin request refused (Origin "+origin+")", nil)
			return r, false
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
			writeError(w, http.StatusForbidden, apitype.CodeForbidden, "cross-site request refused", nil)
			return r, false
		}
	}
	rl := roleAdmin // the unix socket: file permissions are the authentication
	if tcp {
		rl = s.tokens.role(r, rt.basic)
	}
	switch {
	case need > public && rl == roleNone:
		w.Header().Set("WWW-Authenticate", `Bearer realm="hostctl"`)
		if rt.basic {
			// supervisorctl -u/-p send Basic auth; the password is the token.
			w.Header().Set("WWW-Authenticate", `Basic realm="hostctl"`)
		}
		writeError(w, http.StatusUnauthorized, apitype.CodeUnauthorized, "missing or wrong token: send Authorization: Bearer TOKEN ([admin] token_file, or read_token_file to read only)", nil)
		return r, false
	case need == write && rl < roleAdmin:
		writeError(w, http.StatusForbidden, apitype.CodeForbidden, readOnly(r.Method+" "+r.URL.Path), nil)
		return r, false
	}
	return r.WithContext(withRole(r.Context(), rl)), true
}

// sameOrigin reports whether origin is the site at host (scheme ignored:
// the listener decides it).
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, host)
}

// ServeUnix serves the API on l (a unix socket from ListenUnix) until Close.
func (s *Server) ServeUnix(l net.Listener) { s.serve(l, false) }

// ServeTCP serves the API on l, requiring the token, until Close; with
// Options.TLS, over TLS.
func (s *Server) ServeTCP(l net.Listener) error {
	if s.opts.Token == "" {
		return errors.New("admin API: a TCP listener requires a token ([admin] token_file)")
	}
	if s.opts.TLS != nil {
		l = tls.NewListener(l, s.opts.TLS)
	}
	s.serve(l, true)
	return nil
}

func (s *Server) serve(l net.Listener, tcp bool) {
	s.metrix.Start()
	srv := &http.Server{
		Handler:           s.Handler(tcp),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	s.log.Info("admin API listening", zap.String("addr", l.Addr().String()), zap.Bool("token_required", tcp), zap.Bool("tls", tcp && s.opts.TLS != nil))
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin API stopped", zap.String("addr", l.Addr().String()), zap.Error(err))
		}
	}()
}

// Close ends log follows, stops the listeners (removing the unix socket
// file) and waits for requests in flight until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	s.cancel()
	s.mu.Lock()
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
			errs = append(errs, err)
		}
	}
	s.metrix.Close()
	return errors.Join(errs...)
}
