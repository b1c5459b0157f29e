package control

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/alert"
	"github.com/hostctl/hostctl/supervisor"
)

// Programs is what the API needs from the supervisor;
// *supervisor.Supervisor implements it.
type Programs interface {
	// Resolve checks names and expands ["all"]; its errors are
	// *supervisor.UnknownProgramsError and supervisor.ErrAllWithNames.
	Resolve(names ...string) ([]string, error)
	Status(names ...string) ([]supervisor.Status, error)
	Dropped(name string) uint64
	Log(name, stream string) (supervisor.LogStream, error)
	StartProcesses(ctx context.Context, names ...string) error
	StopProcesses(ctx context.Context, names ...string) error
	RestartProcesses(ctx context.Context, names ...string) error
	SignalProcesses(ctx context.Context, sig syscall.Signal, names ...string) error
	WaitFor(ctx context.Context, name string, cond func(supervisor.Status) bool) (supervisor.Status, error)
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
}

// Drainer is hostctl drain as the API sees it; the daemon implements it.
// Its methods fail with an error wrapping ErrNoHealthPath when the config
// has no [proxy] health_path (nothing would tell a load balancer).
type Drainer interface {
	// DrainStatus returns the drain state and the sites' traffic.
	DrainStatus() (DrainStatus, error)
	// Drain starts draining (again: no change) and, with wait > 0, waits
	// up to wait until no request is in flight and none has arrived for
	// quiet, or ctx ends.
	Drain(ctx context.Context, wait, quiet time.Duration) (DrainStatus, error)
	// Undrain ends the drain and, with wait > 0, waits up to wait until
	// health_path has answered 200, or ctx ends.
	Undrain(ctx context.Context, wait time.Duration) (DrainStatus, error)
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
	// nil: reload answers 503.
	Reload func(ctx context.Context) (ReloadResponse, error)
	// Proxy returns the proxy's status, and false when no proxy is
	// configured. GET /v1/proxy answers with it and /metrics exports its
	// running state and upstreams. nil: no proxy.
	Proxy func() (ProxyStatus, bool)
	// Alerts is the alert manager: GET /v1/alerts and /metrics report it,
	// POST /v1/alerts/test uses it. nil: no alerts are listed and the
	// test answers 503.
	Alerts Alerts
	// Drain is hostctl drain: GET/POST /v1/drain, POST /v1/undrain. nil:
	// they answer 503.
	Drain Drainer
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
	// Supervisord serves supervisord's XML-RPC API (supervisord.go).
	Supervisord Supervisord
}

// maxWait bounds ActionRequest.WaitSeconds.
const maxWait = 10 * time.Minute

// alertTestTimeout bounds POST /v1/alerts/test: every sink has its own
// timeout (10s by default); this is the cap above them all.
const alertTestTimeout = 60 * time.Second

// Server is the admin API. Create it with New, serve listeners with
// ServeUnix/ServeTCP, end it with Close.
type Server struct {
	opts     Options
	log      *zap.Logger
	tokens   tokens
	names    map[string]bool // Options.Names, lower case
	registry *prometheus.Registry

	// ctx is the base context of every request; Close cancels it so that
	// log follows end and Shutdown does not wait for them.
	ctx    context.Context
	cancel context.CancelFunc

	hist     *history
	histOnce sync.Once // starts sampleHistory with the first listener

	mu      sync.Mutex // guards servers
	servers []*http.Server

	rpcMu  sync.Mutex  // guards reread; taken before no other lock
	reread *rereadPlan // what supervisord's reloadConfig last found

	replyCap int64 // maxReply; a test makes it smaller
}

// New returns a Server; nothing listens until ServeUnix or ServeTCP.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	s := &Server{opts: opts, log: opts.Logger, tokens: newTokens(opts.Token, opts.ReadToken), names: map[string]bool{}, replyCap: maxReply}
	for _, n := range opts.Names {
		s.names[strings.ToLower(n)] = true
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.registry = newRegistry(s)
	s.hist = newHistory(opts.HistoryInterval)
	return s
}

// route is one endpoint and who may call it on TCP.
type route struct {
	method, path string
	access       access
	handler      func(s *Server, w http.ResponseWriter, r *http.Request)
}

// routes is the one table of endpoints, sorted by path then method (a test
// keeps it so). Paths use http.ServeMux patterns. /RPC2 is read: its
// write methods check the token themselves (supervisord.go).
var routes = []route{
	{"POST", "/RPC2", read, (*Server).rpc},
	{"GET", "/dashboard.css", public, (*Server).dashboardAsset},
	{"GET", "/dashboard.js", public, (*Server).dashboardAsset},
	{"GET", "/healthz", public, (*Server).healthz},
	{"GET", "/logtail/{name}/{channel}", read, (*Server).logtail},
	{"GET", "/mainlogtail", read, (*Server).mainlogtail},
	{"GET", "/metrics", read, (*Server).metrics},
	{"GET", "/v1/alerts", read, (*Server).listAlerts},
	{"POST", "/v1/alerts/test", write, (*Server).testAlerts},
	{"GET", "/v1/drain", read, (*Server).drainStatus},
	{"POST", "/v1/drain", write, (*Server).drain},
	{"GET", "/v1/history", read, (*Server).getHistory},
	{"GET", "/v1/programs", read, (*Server).listPrograms},
	{"GET", "/v1/programs/{name}", read, (*Server).getProgram},
	{"GET", "/v1/programs/{name}/log", read, (*Server).programLog},
	{"GET", "/v1/proxy", read, (*Server).proxyStatus},
	{"POST", "/v1/reload", write, (*Server).reload},
	{"POST", "/v1/restart", write, (*Server).action},
	{"POST", "/v1/signal", write, (*Server).action},
	{"POST", "/v1/start", write, (*Server).action},
	{"POST", "/v1/stop", write, (*Server).action},
	{"POST", "/v1/undrain", write, (*Server).drain},
	{"GET", "/{$}", public, (*Server).dashboardIndex},
}

// Handler returns the API. With tcp, the Host header must name this
// listener and non-public routes need a token (writes the admin one).
func (s *Server) Handler(tcp bool) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		h := rt.handler
		need := rt.access
		mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) {
			r, ok := s.allowed(w, r, tcp, need)
			if !ok {
				return
			}
			h(s, w, r)
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
				writeError(w, http.StatusMethodNotAllowed, CodeBadRequest, fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, m), nil)
				return
			}
		}
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no endpoint %s %s (see GET /v1/programs)", r.Method, r.URL.Path), nil)
	})
	return mux
}

// allowed applies the Host, Origin and token checks and answers when they
// fail; else it returns r with the caller's role in its context.
func (s *Server) allowed(w http.ResponseWriter, r *http.Request, tcp bool, need access) (*http.Request, bool) {
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
			writeError(w, http.StatusForbidden, CodeForbidden, "cross-origin request refused (Origin "+origin+")", nil)
			return r, false
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
			writeError(w, http.StatusForbidden, CodeForbidden, "cross-site request refused", nil)
			return r, false
		}
	}
	rl := roleAdmin // the unix socket: file permissions are the authentication
	if tcp {
		rl = s.tokens.role(r)
	}
	switch {
	case need > public && rl == roleNone:
		w.Header().Set("WWW-Authenticate", `Bearer realm="hostctl"`)
		if supervisordPath(r.URL.Path) {
			// supervisorctl -u/-p send Basic auth; the password is the token.
			w.Header().Set("WWW-Authenticate", `Basic realm="hostctl"`)
		}
		writeError(w, http.StatusUnauthorized, CodeUnauthorized, "missing or wrong token: send Authorization: Bearer TOKEN ([admin] token_file, or read_token_file to read only)", nil)
		return r, false
	case need == write && rl < roleAdmin:
		writeError(w, http.StatusForbidden, CodeForbidden, readOnly(r.Method+" "+r.URL.Path), nil)
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
	s.histOnce.Do(func() { go s.sampleHistory() })
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
	s.histOnce.Do(func() { close(s.hist.done) }) // never started: nothing to wait for
	<-s.hist.done
	return errors.Join(errs...)
}

// --- handlers ---

// healthz answers that hostctl is up; its pid and version only to a
// caller with a token (or on the unix socket): anyone may ask.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	h := Health{OK: true}
	if roleOf(r.Context()) > roleNone {
		h.PID, h.Version = os.Getpid(), s.opts.Version
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) listPrograms(w http.ResponseWriter, r *http.Request) {
	progs, err := s.snapshot(r.URL.Query()["name"])
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, progs)
}

func (s *Server) getProgram(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	progs, err := s.snapshot([]string{name})
	if err != nil {
		s.fail(w, err)
		return
	}
	if len(progs) > 1 {
		names := make([]string, len(progs))
		for i, p := range progs {
			names[i] = p.Name
		}
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("%q stands for %d processes (%s): name one, or list them with GET /v1/programs?name=%s",
			name, len(progs), strings.Join(names, ", "), url.QueryEscape(name)), nil)
		return
	}
	writeJSON(w, http.StatusOK, progs[0])
}

// snapshot returns the named programs (all when none) with their process
// group usage, from one scan of /proc.
func (s *Server) snapshot(names []string) ([]Program, error) {
	sts, err := s.opts.Programs.Status(names...)
	if err != nil {
		return nil, err
	}
	pgids := make(map[int]bool, len(sts))
	for _, st := range sts {
		if st.PID > 0 {
			pgids[st.PID] = true
		}
	}
	usage := supervisor.PgroupUsage(pgids)
	now := time.Now()
	out := make([]Program, len(sts))
	for i, st := range sts {
		u := usage[st.PID]
		out[i] = Program{
			Status:          st,
			UptimeSeconds:   st.Uptime(now).Seconds(),
			Processes:       u.Procs,
			RSSBytes:        u.RSS,
			CPUSeconds:      u.CPU,
			DroppedLogBytes: s.opts.Programs.Dropped(st.Name),
		}
		if st.PID == 0 {
			out[i].Processes, out[i].RSSBytes, out[i].CPUSeconds = 0, 0, 0
		}
	}
	return out, nil
}

func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	kind := strings.TrimPrefix(r.URL.Path, "/v1/")
	var req ActionRequest
	if !readJSON(w, r, &req) {
		return
	}
	if len(req.Names) == 0 {
		writeError(w, http.StatusBadRequest, CodeBadRequest, `"names" is empty: name programs, or ["all"]`, nil)
		return
	}
	names, err := s.opts.Programs.Resolve(req.Names...)
	if err != nil {
		s.fail(w, err)
		return
	}
	wait := time.Duration(req.WaitSeconds * float64(time.Second))
	if wait < 0 || wait > maxWait {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("wait_seconds must be between 0 and %d", int(maxWait.Seconds())), nil)
		return
	}
	// The commands are sent even if the caller goes away meanwhile (half
	// of "restart all" must not depend on a client's patience); only the
	// wait for their outcome ends with the request.
	ctx := r.Context()
	cmdCtx := context.WithoutCancel(ctx)
	before, err := s.opts.Programs.Status(names...)
	if err != nil {
		s.fail(w, err)
		return
	}
	var resp ActionResponse
	switch kind {
	case "signal":
		sig, err := supervisor.ParseSignal(req.Signal)
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error(), nil)
			return
		}
		for _, n := range names {
			res := ActionResult{Name: n, OK: true}
			if err := s.opts.Programs.SignalProcesses(cmdCtx, sig, n); err != nil {
				res.OK, res.Error = false, err.Error()
			}
			if sts, err := s.opts.Programs.Status(n); err == nil {
				res.Status = sts[0]
			}
			resp.Results = append(resp.Results, res)
		}
		writeJSON(w, http.StatusOK, resp)
		return
	case "start":
		err = s.opts.Programs.StartProcesses(cmdCtx, names...)
	case "stop":
		err = s.opts.Programs.StopProcesses(cmdCtx, names...)
	case "restart":
		err = s.opts.Programs.RestartProcesses(cmdCtx, names...)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for _, st0 := range before {
		resp.Results = append(resp.Results, s.await(wctx, kind, st0, wait))
	}
	writeJSON(w, http.StatusOK, resp)
}

// await waits (until ctx ends) for one program to reach the target state
// of kind, and says why not when it does not.
func (s *Server) await(ctx context.Context, kind string, before supervisor.Status, wait time.Duration) ActionResult {
	verdict := targetOf(kind, before)
	var st supervisor.Status
	var err error
	if wait <= 0 {
		var sts []supervisor.Status
		if sts, err = s.opts.Programs.Status(before.Name); err == nil {
			st = sts[0]
		}
		res := ActionResult{Name: before.Name, OK: err == nil, Status: st}
		if err != nil {
			res.Error = err.Error()
		}
		return res
	}
	st, err = s.opts.Programs.WaitFor(ctx, before.Name, func(st supervisor.Status) bool {
		done, _ := verdict(st)
		return done
	})
	res := ActionResult{Name: before.Name, Status: st}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			res.Error = fmt.Sprintf("still %s after %s", st.State, wait)
			if st.Info != "" {
				res.Error += " (" + st.Info + ")"
			}
		} else {
			res.Error = err.Error()
		}
		return res
	}
	_, why := verdict(st)
	res.OK, res.Error = why == "", why
	return res
}

// targetOf returns, for an action on a program whose status was before,
// a verdict: done when the wait is over, and why (empty for success).
func targetOf(kind string, before supervisor.Status) func(supervisor.Status) (done bool, why string) {
	// failed says why a program that stays down did not get to RUNNING.
	failed := func(st supervisor.Status) string {
		if !st.StaysDown() {
			return ""
		}
		switch {
		case st.State == supervisor.Fatal && st.SpawnErr != "":
			return "FATAL: " + st.SpawnErr
		case st.State == supervisor.Exited && st.LastExit != nil:
			return "EXITED: " + st.LastExit.String()
		case st.State == supervisor.Stopped:
			return "STOPPED (stopped while starting)"
		}
		return st.State.String()
	}
	switch kind {
	case "stop":
		return func(st supervisor.Status) (bool, string) { return st.StaysDown(), "" }
	case "restart":
		return func(st supervisor.Status) (bool, string) {
			if st.State == supervisor.Running && st.Generation > before.Generation {
				return true, ""
			}
			if why := failed(st); why != "" {
				return true, why
			}
			return false, ""
		}
	default: // start
		return func(st supervisor.Status) (bool, string) {
			if st.State == supervisor.Running {
				return true, ""
			}
			if why := failed(st); why != "" {
				return true, why
			}
			return false, ""
		}
	}
}

func (s *Server) programLog(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	stream := q.Get("stream")
	if stream == "" {
		stream = "stdout"
	}
	ls, err := s.opts.Programs.Log(name, stream)
	if errors.Is(err, supervisor.ErrUnknownProgram) {
		s.fail(w, err)
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error(), nil)
		return
	}
	lines := 10
	if v := q.Get("lines"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100000 {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "lines must be a number from 0 to 100000", nil)
			return
		}
		lines = n
	}
	follow, _ := strconv.ParseBool(q.Get("follow"))
	if ls == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("the %s of %s is not logged (%s_log = \"none\", or redirect_stderr)", stream, name, stream), nil)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Log-Path", ls.Path())
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	emit := func(line []byte) error {
		line = trimNL(line)
		if err := enc.Encode(LogLine{Line: string(line)}); err != nil {
			return err
		}
		return rc.Flush()
	}
	if !follow {
		b, err := ls.Tail(lines)
		if err != nil {
			s.log.Warn("tail failed", zap.String("program", name), zap.Error(err))
			return
		}
		for len(b) > 0 {
			i := strings.IndexByte(string(b), '\n')
			if i < 0 {
				i = len(b) - 1
			}
			if emit(b[:i+1]) != nil {
				return
			}
			b = b[i+1:]
		}
		return
	}
	rc.Flush()
	err = ls.Follow(r.Context(), lines, emit)
	if err != nil && r.Context().Err() == nil {
		s.log.Debug("log follow ended", zap.String("program", name), zap.Error(err))
	}
}

func trimNL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

func (s *Server) proxyStatus(w http.ResponseWriter, r *http.Request) {
	var res ProxyResponse
	if st, ok := s.proxy(); ok {
		res = ProxyResponse{Configured: true, Status: &st}
	}
	writeJSON(w, http.StatusOK, res)
}

// proxy is the proxy's status from Options.Proxy; false without a proxy.
func (s *Server) proxy() (ProxyStatus, bool) {
	if s.opts.Proxy == nil {
		return ProxyStatus{}, false
	}
	return s.opts.Proxy()
}

func (s *Server) drainStatus(w http.ResponseWriter, r *http.Request) {
	if s.opts.Drain == nil {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "drain is not available", nil)
		return
	}
	st, err := s.opts.Drain.DrainStatus()
	if err != nil {
		s.drainFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// drain is POST /v1/drain and /v1/undrain.
func (s *Server) drain(w http.ResponseWriter, r *http.Request) {
	if s.opts.Drain == nil {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "drain is not available", nil)
		return
	}
	var req DrainRequest
	if !readJSON(w, r, &req) {
		return
	}
	wait := time.Duration(req.WaitSeconds * float64(time.Second))
	quiet := time.Duration(req.QuietSeconds * float64(time.Second))
	if wait < 0 || wait > maxWait {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("wait_seconds must be between 0 and %d", int(maxWait.Seconds())), nil)
		return
	}
	if quiet < 0 || quiet > maxWait {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("quiet_seconds must be between 0 and %d", int(maxWait.Seconds())), nil)
		return
	}
	if quiet == 0 {
		quiet = defaultQuiet
	}
	var st DrainStatus
	var err error
	if r.URL.Path == "/v1/undrain" {
		st, err = s.opts.Drain.Undrain(r.Context(), wait)
	} else {
		st, err = s.opts.Drain.Drain(r.Context(), wait, quiet)
	}
	if err != nil {
		s.drainFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) drainFailed(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrNoHealthPath) {
		writeError(w, http.StatusConflict, CodeUnavailable, err.Error(), nil)
		return
	}
	s.fail(w, err)
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) {
	res := AlertsResponse{Alerts: []alert.Alert{}, Sinks: []alert.SinkStatus{}}
	if s.opts.Alerts != nil {
		res.Alerts = append(res.Alerts, s.opts.Alerts.Active()...)
		res.Sinks = append(res.Sinks, s.opts.Alerts.Sinks()...)
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) testAlerts(w http.ResponseWriter, r *http.Request) {
	if s.opts.Alerts == nil {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "alerts are not available", nil)
		return
	}
	// No body is needed; reading it to its end also lets the server notice
	// a caller that goes away, which ends ctx and with it the test.
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, CodeBadRequest, "send Content-Type: application/json", nil)
		return
	}
	io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 1<<20))
	ctx, cancel := context.WithTimeout(r.Context(), alertTestTimeout)
	defer cancel()
	res := AlertsTestResponse{Results: []alert.TestResult{}}
	res.Results = append(res.Results, s.opts.Alerts.Test(ctx)...)
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if s.opts.Reload == nil {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "reload is not available", nil)
		return
	}
	// A reload runs to its end even if the caller goes away: stopping
	// half of the changed programs would leave neither config running.
	res, err := s.opts.Reload(context.WithoutCancel(r.Context()))
	if err != nil {
		list := problems(err)
		writeError(w, http.StatusUnprocessableEntity, CodeConfigInvalid,
			fmt.Sprintf("reload failed; still running the previous config: %d problem(s)", len(list)), list)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// --- helpers ---

// problems lists the problems in err one by one: the errors it joins
// (errors.Join, config.Errors), nested joins flattened, or else err.
func problems(err error) []string {
	multi, ok := errors.AsType[interface {
		error
		Unwrap() []error
	}](err)
	if !ok {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range multi.Unwrap() {
		out = append(out, problems(e)...)
	}
	return out
}

// fail answers with the status code of err: 404 for unknown programs
// (listed in "errors"), 400 for "all" mixed with names, else 500.
func (s *Server) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, supervisor.ErrUnknownProgram):
		var names []string
		if ue, ok := errors.AsType[*supervisor.UnknownProgramsError](err); ok {
			names = ue.Names
		}
		writeError(w, http.StatusNotFound, CodeUnknownProgram, err.Error(), names)
		return
	case errors.Is(err, supervisor.ErrAllWithNames):
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error(), nil)
		return
	}
	s.log.Warn("admin API request failed", zap.Error(err))
	writeError(w, http.StatusInternalServerError, CodeFailed, err.Error(), nil)
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		// Also keeps browsers' "simple" cross-site form posts out.
		writeError(w, http.StatusUnsupportedMediaType, CodeBadRequest, "send Content-Type: application/json", nil)
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "bad JSON body: "+err.Error(), nil)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, kind, msg string, list []string) {
	writeJSON(w, code, errorBody{Error: msg, Code: kind, Errors: list})
}
