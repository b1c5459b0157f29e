package control

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"go/build"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/client"
	"github.com/hostctl/hostctl/supervisor"
)

// fakePrograms serves fixed statuses.
type fakePrograms struct {
	sts     []supervisor.Status
	signals []string
}

func (f *fakePrograms) Names() []string {
	var n []string
	for _, s := range f.sts {
		n = append(n, s.Name)
	}
	slices.Sort(n)
	return n
}

func (f *fakePrograms) Status(names ...string) ([]supervisor.Status, error) {
	if len(names) == 0 {
		return f.sts, nil
	}
	var out []supervisor.Status
	for _, n := range names {
		i := slices.IndexFunc(f.sts, func(s supervisor.Status) bool { return s.Name == n })
		if i < 0 {
			return nil, supervisor.ErrUnknownProgram
		}
		out = append(out, f.sts[i])
	}
	return out, nil
}

func (f *fakePrograms) Resolve(names ...string) ([]string, error) {
	if len(names) == 1 && names[0] == "all" {
		return f.Names(), nil
	}
	if _, err := f.Status(names...); err != nil {
		return nil, err
	}
	return names, nil
}

func (f *fakePrograms) Dropped(string) uint64 { return 7 }
func (f *fakePrograms) Log(name, stream string) (supervisor.LogStream, error) {
	return nil, nil
}
func (f *fakePrograms) StartProcesses(context.Context, ...string) error   { return nil }
func (f *fakePrograms) StopProcesses(context.Context, ...string) error    { return nil }
func (f *fakePrograms) RestartProcesses(context.Context, ...string) error { return nil }
func (f *fakePrograms) SignalProcesses(_ context.Context, sig syscall.Signal, names ...string) error {
	f.signals = append(f.signals, supervisor.SignalName(sig)+" "+strings.Join(names, ","))
	return nil
}
func (f *fakePrograms) WaitFor(_ context.Context, name string, cond func(supervisor.Status) bool) (supervisor.Status, error) {
	sts, err := f.Status(name)
	if err != nil {
		return supervisor.Status{}, err
	}
	return sts[0], nil
}

func newFake() *fakePrograms {
	return &fakePrograms{sts: []supervisor.Status{
		{Name: "api", State: supervisor.Running, PID: os.Getpid(), Autostart: true, StartedAt: time.Now().Add(-time.Minute)},
		{Name: "worker", State: supervisor.Fatal, SpawnErr: "exec: no such file", Autostart: true},
	}}
}

func TestRoutesAreOneSortedTable(t *testing.T) {
	for i := 1; i < len(routes); i++ {
		a, b := routes[i-1], routes[i]
		if a.path > b.path || (a.path == b.path && a.method >= b.method) {
			t.Errorf("routes not sorted by path, then method: %s %s before %s %s", a.method, a.path, b.method, b.path)
		}
	}
	for _, r := range routes {
		if r.access == public && r.method != "GET" {
			t.Errorf("%s %s: only GETs may be public", r.method, r.path)
		}
		if r.access == public && strings.HasPrefix(r.path, "/v1/") {
			t.Errorf("%s %s: the API must never be public", r.method, r.path)
		}
		// A GET never changes anything; every POST does, but /RPC2,
		// whose write methods check the token themselves.
		if want := r.method == "POST" && r.path != "/RPC2"; (r.access == write) != want {
			t.Errorf("%s %s: access %d; only POSTs (but /RPC2) need the admin token, and all of them do", r.method, r.path, r.access)
		}
	}
}

func TestAccessChecks(t *testing.T) {
	const token = "s3cret-token-0123456789"
	s := New(Options{Programs: newFake(), Token: token})
	tcp := httptest.NewServer(s.Handler(true))
	defer tcp.Close()
	unix := httptest.NewServer(s.Handler(false))
	defer unix.Close()
	host := strings.TrimPrefix(tcp.URL, "http://")

	for _, tc := range []struct {
		name         string
		srv          *httptest.Server
		method, path string
		header       map[string]string
		body         string
		want         int
	}{
		{"tcp: no token", tcp, "GET", "/v1/programs", nil, "", 401},
		{"tcp: not a bearer", tcp, "GET", "/v1/programs", map[string]string{"Authorization": "Basic " + token}, "", 401},
		{"tcp: wrong token", tcp, "GET", "/v1/programs", map[string]string{"Authorization": "Bearer nope"}, "", 401},
		{"tcp: token", tcp, "GET", "/v1/programs", map[string]string{"Authorization": "Bearer " + token}, "", 200},
		{"tcp: healthz public", tcp, "GET", "/healthz", nil, "", 200},
		{"tcp: dashboard public", tcp, "GET", "/", nil, "", 200},
		{"tcp: dashboard navigation from another site", tcp, "GET", "/", map[string]string{"Sec-Fetch-Site": "cross-site"}, "", 200},
		{"tcp: metrics need the token", tcp, "GET", "/metrics", nil, "", 401},
		{"tcp: foreign Origin POST", tcp, "POST", "/v1/signal", map[string]string{"Authorization": "Bearer " + token, "Origin": "https://evil.example"}, `{"names":["api"],"signal":"HUP"}`, 403},
		{"tcp: same Origin POST", tcp, "POST", "/v1/signal", map[string]string{"Authorization": "Bearer " + token, "Origin": "http://" + host}, `{"names":["api"],"signal":"HUP"}`, 200},
		{"tcp: cross-site fetch", tcp, "GET", "/v1/programs", map[string]string{"Authorization": "Bearer " + token, "Sec-Fetch-Site": "cross-site"}, "", 403},
		{"tcp: form post", tcp, "POST", "/v1/signal", map[string]string{"Authorization": "Bearer " + token, "Content-Type": "text/plain"}, `{"names":["api"],"signal":"HUP"}`, 415},
		{"tcp: RPC2 needs auth", tcp, "POST", "/RPC2", nil, rpcCall, 401},
		{"tcp: RPC2 basic auth with the token", tcp, "POST", "/RPC2", map[string]string{"Authorization": basic("user", token)}, rpcCall, 200},
		{"tcp: RPC2 basic auth, wrong password", tcp, "POST", "/RPC2", map[string]string{"Authorization": basic(token, "nope")}, rpcCall, 401},
		{"tcp: RPC2 bearer token", tcp, "POST", "/RPC2", map[string]string{"Authorization": "Bearer " + token}, rpcCall, 200},
		{"tcp: basic auth only for supervisord's paths", tcp, "GET", "/v1/programs", map[string]string{"Authorization": basic("user", token)}, "", 401},
		{"tcp: logtail needs auth", tcp, "GET", "/logtail/api/stdout", nil, "", 401},
		{"tcp: RPC2 form post", tcp, "POST", "/RPC2", map[string]string{"Authorization": basic("u", token), "Content-Type": "text/plain"}, rpcCall, 415},
		{"tcp: RPC2 foreign Origin", tcp, "POST", "/RPC2", map[string]string{"Authorization": basic("u", token), "Origin": "https://evil.example"}, rpcCall, 403},
		{"unix: RPC2", unix, "POST", "/RPC2", nil, rpcCall, 200},
		{"unix: no token needed", unix, "GET", "/v1/programs", nil, "", 200},
		{"unix: foreign Origin refused", unix, "POST", "/v1/stop", map[string]string{"Origin": "http://localhost:8000"}, `{"names":["api"]}`, 403},
		{"unix: null Origin refused", unix, "POST", "/v1/stop", map[string]string{"Origin": "null"}, `{"names":["api"]}`, 403},
		{"unix: unknown program", unix, "GET", "/v1/programs/nope", nil, "", 404},
		{"unix: unknown route", unix, "GET", "/v2/x", nil, "", 404},
		{"unix: bad signal", unix, "POST", "/v1/signal", nil, `{"names":["api"],"signal":"NOPE"}`, 400},
		{"unix: unknown field", unix, "POST", "/v1/stop", nil, `{"names":["api"],"force":true}`, 400},
		{"unix: wrong method", unix, "DELETE", "/v1/programs", nil, "", 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tc.srv.URL+tc.path, strings.NewReader(tc.body))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s: %d, want %d: %s", tc.method, tc.path, resp.StatusCode, tc.want, b)
			}
		})
	}
}

const rpcCall = "<?xml version='1.0'?><methodCall><methodName>supervisor.getVersion</methodName></methodCall>"

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestTargetOf: an action's wait ends at RUNNING (start, restart: a new
// process) or when the program stays down (with the reason); a stop's
// wait ends when it stays down.
func TestTargetOf(t *testing.T) {
	before := supervisor.Status{Name: "web", State: supervisor.Running, Generation: 3}
	for _, tc := range []struct {
		kind string
		st   supervisor.Status
		done bool
		why  string
	}{
		{"start", supervisor.Status{State: supervisor.Running}, true, ""},
		{"start", supervisor.Status{State: supervisor.Starting}, false, ""},
		{"start", supervisor.Status{State: supervisor.Backoff}, false, ""},
		{"start", supervisor.Status{State: supervisor.Fatal, SpawnErr: "exec: nope"}, true, "FATAL: exec: nope"},
		{"start", supervisor.Status{State: supervisor.Fatal}, true, "FATAL"},
		{"start", supervisor.Status{State: supervisor.Exited, LastExit: &supervisor.ExitStatus{Code: 1}}, true, "EXITED: exit status 1"},
		{"start", supervisor.Status{State: supervisor.Stopped}, true, "STOPPED (stopped while starting)"},
		{"restart", supervisor.Status{State: supervisor.Running, Generation: 3}, false, ""},
		{"restart", supervisor.Status{State: supervisor.Stopping, Generation: 3}, false, ""},
		{"restart", supervisor.Status{State: supervisor.Running, Generation: 4}, true, ""},
		{"restart", supervisor.Status{State: supervisor.Fatal, Generation: 4, SpawnErr: "x"}, true, "FATAL: x"},
		{"stop", supervisor.Status{State: supervisor.Stopping}, false, ""},
		{"stop", supervisor.Status{State: supervisor.Backoff}, false, ""},
		{"stop", supervisor.Status{State: supervisor.Stopped}, true, ""},
		{"stop", supervisor.Status{State: supervisor.Fatal}, true, ""},
		{"stop", supervisor.Status{State: supervisor.Exited}, true, ""},
	} {
		t.Run(tc.kind+" "+tc.st.State.String(), func(t *testing.T) {
			done, why := targetOf(tc.kind, before)(tc.st)
			if done != tc.done || why != tc.why {
				t.Errorf("%s at %+v: done=%v why=%q, want %v %q", tc.kind, tc.st, done, why, tc.done, tc.why)
			}
		})
	}

	// A rolling restart sends an instance its restart after the request
	// has returned: a STOPPED (or FATAL) instance still as it was is not
	// the restart's outcome; once touched, its state is.
	since := time.Now().Add(-time.Minute)
	for _, down := range []supervisor.Status{
		{Name: "w_0", State: supervisor.Stopped, StateSince: since, Generation: 1},
		{Name: "w_0", State: supervisor.Fatal, StateSince: since, Generation: 2, SpawnErr: "x"},
	} {
		verdict := targetOf("restart", down)
		if done, why := verdict(down); done {
			t.Errorf("restart of %s, not touched yet: done (%q), want a wait for the rolling restart", down.State, why)
		}
		later := down
		later.StateSince = since.Add(30 * time.Second)
		if done, why := verdict(later); !done || why == "" {
			t.Errorf("restart of %s, %s again since: done=%v why=%q, want done with the reason", down.State, later.State, done, why)
		}
		up := down
		up.State, up.Generation, up.StateSince = supervisor.Running, down.Generation+1, later.StateSince
		if done, why := verdict(up); !done || why != "" {
			t.Errorf("restart of %s, RUNNING with a new process: done=%v why=%q", down.State, done, why)
		}
	}
}

// TestProgramNames: the supervisor alone checks names; the API maps its
// errors to 404 (with the unknown names listed) and 400.
func TestProgramNames(t *testing.T) {
	var cfgs []*supervisor.ProgramConfig
	for _, name := range []string{"api", "worker"} {
		c := supervisor.DefaultProgramConfig(name)
		c.Command = supervisor.Command{"/bin/sh", "-c", "exit 0"}
		c.Autostart = false
		cfgs = append(cfgs, &c)
	}
	sup, err := supervisor.New(cfgs, supervisor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sup.Start() // nothing is started: every program stays STOPPED
	t.Cleanup(func() { sup.Shutdown(context.Background()) })
	srv := httptest.NewServer(New(Options{Programs: sup}).Handler(false))
	defer srv.Close()

	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		msg                      string   // the "error" field
		list                     []string // the "errors" field
	}{
		{"stop all", "POST", "/v1/stop", `{"names":["all"]}`, 200, "", nil},
		{"unknown names", "POST", "/v1/stop", `{"names":["api","zz","yy"]}`, 404,
			`no such program: "zz", "yy" (known: api, worker)`, []string{"zz", "yy"}},
		{"all with an unknown name", "POST", "/v1/start", `{"names":["all","zz"]}`, 400,
			`"all" cannot be combined with program names`, nil},
		{"all with a program", "POST", "/v1/signal", `{"names":["api","all"],"signal":"HUP"}`, 400,
			`"all" cannot be combined with program names`, nil},
		{"status of unknown names", "GET", "/v1/programs?name=api&name=zz", "", 404,
			`no such program: "zz" (known: api, worker)`, []string{"zz"}},
		{"status of all", "GET", "/v1/programs/all", "", 404, `no such program: "all" (known: api, worker)`, []string{"all"}},
		{"log of an unknown program", "GET", "/v1/programs/zz/log?stream=nope", "", 404,
			`no such program: "zz" (known: api, worker)`, []string{"zz"}},
		{"log of an unknown stream", "GET", "/v1/programs/api/log?stream=nope", "", 400,
			`unknown stream "nope" (stdout or stderr)`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body apitype.ErrorBody
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil && tc.code != 200 {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.code || body.Error != tc.msg || !slices.Equal(body.Errors, tc.list) {
				t.Errorf("%s %s %s: %d %q %q, want %d %q %q", tc.method, tc.path, tc.body,
					resp.StatusCode, body.Error, body.Errors, tc.code, tc.msg, tc.list)
			}
		})
	}
}

func TestServeTCPNeedsAToken(t *testing.T) {
	s := New(Options{Programs: newFake()})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := s.ServeTCP(l); err == nil {
		t.Fatal("ServeTCP without a token succeeded")
	}
}

func TestDashboardHeaders(t *testing.T) {
	s := New(Options{Programs: newFake()})
	srv := httptest.NewServer(s.Handler(true))
	defer srv.Close()
	for _, path := range []string{"/", "/dashboard.js", "/dashboard.css"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: may be framed by another site: CSP %q", path, csp)
		}
	}
}

func TestMetrics(t *testing.T) {
	s := New(Options{Programs: newFake(), Proxy: func() (apitype.ProxyStatus, bool) {
		return apitype.ProxyStatus{Running: true, Upstreams: []apitype.ProxyUpstreamStatus{{Address: "127.0.0.1:8000", Healthy: true, Requests: 3}}}, true
	}})
	srv := httptest.NewServer(s.Handler(false))
	defer srv.Close()
	b := getBody(t, srv.URL+"/metrics")
	for _, want := range []string{
		`hostctl_program_state{program="api",state="RUNNING"} 1`,
		`hostctl_program_state{program="api",state="FATAL"} 0`,
		`hostctl_program_state{program="worker",state="FATAL"} 1`,
		`hostctl_program_restarts_total{program="api"} 0`,
		`hostctl_program_uptime_seconds{program="api"}`,
		`hostctl_program_memory_rss_bytes{program="api"}`,
		`hostctl_program_cpu_seconds_total{program="api"}`,
		`hostctl_program_log_dropped_bytes_total{program="worker"} 7`,
		`hostctl_proxy_running 1`,
		`hostctl_proxy_upstream_healthy{upstream="127.0.0.1:8000"} 1`,
		`hostctl_proxy_upstream_requests_in_flight{upstream="127.0.0.1:8000"} 3`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestListenUnix(t *testing.T) {
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "run", "h.sock")

	l, err := ListenUnix(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Dir(path)); fi.Mode().Perm() != 0o750 {
		t.Errorf("socket dir mode %v, want 0750", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want 0660", fi.Mode().Perm())
	}

	l.Close()
	gid := os.Getgid()
	if l, err = ListenUnix(path, gid); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); int(fi.Sys().(*syscall.Stat_t).Gid) != gid {
		t.Errorf("socket group %d, want %d", fi.Sys().(*syscall.Stat_t).Gid, gid)
	}

	// Live: a second listener must fail and leave the socket alone.
	if _, err := ListenUnix(path, -1); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second ListenUnix on a live socket: %v", err)
	}
	if c, err := net.Dial("unix", path); err != nil {
		t.Errorf("the live socket was broken: %v", err)
	} else {
		c.Close()
	}

	// Close removes the socket file.
	l.Close()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket file left after Close: %v", err)
	}
	// Stale: the file stays, nobody listens (a daemon killed with -9).
	sl, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	sl.SetUnlinkOnClose(false)
	sl.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket file gone: %v", err)
	}
	l2, err := ListenUnix(path, -1)
	if err != nil {
		t.Fatalf("ListenUnix over a stale socket: %v", err)
	}
	l2.Close()

	// Not a socket: never removed.
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ListenUnix(path, -1); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("ListenUnix over a regular file: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	s := New(Options{Programs: newFake(), Reload: func(context.Context) (Reloaded, error) {
		return Reloaded{}, errors.Join(errors.New("a.toml:3: program.x.command: must not be empty"), errors.New("a.toml:9: program.y.bogus: unknown key"))
	}})
	srv := httptest.NewServer(s.Handler(false))
	defer srv.Close()
	c := &client.Client{URL: srv.URL}
	ctx := context.Background()
	if _, err := c.Program(ctx, "nope"); !client.IsUnknownProgram(err) {
		t.Errorf("Program(nope): %v, want unknown program", err)
	}
	_, err := c.Reload(ctx)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code != apitype.CodeConfigInvalid || len(ae.Errors) != 2 {
		t.Errorf("Reload: %#v, want config_invalid with 2 errors", err)
	}
	p, err := c.Program(ctx, "api")
	if err != nil || p.Name != "api" || p.DroppedLogBytes != 7 || p.UptimeSeconds < 59 {
		t.Errorf("Program(api) = %+v, %v", p, err)
	}
	ps, configured, err := c.Proxy(ctx)
	if err != nil || configured || !reflect.DeepEqual(ps, apitype.ProxyStatus{}) {
		t.Errorf("Proxy() = %+v, %v, %v; want not configured", ps, configured, err)
	}
	var h apitype.Healthz
	if h, err = c.Health(ctx); err != nil || !h.OK {
		t.Errorf("Health() = %+v, %v", h, err)
	}
	b, _ := json.Marshal(p)
	if !strings.Contains(string(b), `"state":"RUNNING"`) {
		t.Errorf("program JSON %s lacks the state by name", b)
	}
}

// TestProxyStatus: GET /v1/proxy keeps its wire format (the one the
// dashboard and `hostctl status --json` users read), and the client
// decodes it back into the value the server was given.
func TestProxyStatus(t *testing.T) {
	running := apitype.ProxyStatus{
		Running:      true,
		Listen:       []string{":443", ":80"},
		Upstreams:    []apitype.ProxyUpstreamStatus{{Address: "127.0.0.1:8000", Healthy: true, Fails: 1, Requests: 3}},
		Certificates: []apitype.ProxyCertificateStatus{{Names: []string{"example.com"}, Issuer: "acme", NotAfter: time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)}},
	}
	for _, tc := range []struct {
		name       string
		proxy      func() (apitype.ProxyStatus, bool)
		configured bool
		want       apitype.ProxyStatus
		wire       string
	}{
		{"none", nil, false, apitype.ProxyStatus{}, `{"configured":false,"status":null}`},
		{"not configured", func() (apitype.ProxyStatus, bool) { return apitype.ProxyStatus{}, false }, false, apitype.ProxyStatus{},
			`{"configured":false,"status":null}`},
		{"waiting", func() (apitype.ProxyStatus, bool) { return apitype.ProxyStatus{Info: "waiting for app"}, true }, true, apitype.ProxyStatus{Info: "waiting for app"},
			`{"configured":true,"status":{"running":false,"listen":null,"upstreams":null,"certificates":null,"info":"waiting for app"}}`},
		{"running", func() (apitype.ProxyStatus, bool) { return running, true }, true, running,
			`{"configured":true,"status":{"running":true,"listen":[":443",":80"],` +
				`"upstreams":[{"address":"127.0.0.1:8000","healthy":true,"fails":1,"requests":3}],` +
				`"certificates":[{"names":["example.com"],"issuer":"acme","not_after":"2030-01-02T03:04:05.0000006Z"}]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(New(Options{Programs: newFake(), Proxy: tc.proxy}).Handler(false))
			defer srv.Close()
			b := getBody(t, srv.URL+"/v1/proxy")
			var wire bytes.Buffer
			if err := json.Compact(&wire, b); err != nil || wire.String() != tc.wire {
				t.Errorf("GET /v1/proxy = %s (%v)\nwant %s", b, err, tc.wire)
			}
			got, configured, err := (&client.Client{URL: srv.URL}).Proxy(context.Background())
			if err != nil || configured != tc.configured || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Proxy() = %+v, %v, %v\nwant %+v, %v", got, configured, err, tc.want, tc.configured)
			}
		})
	}
}

// TestImports keeps control independent of the proxy and Caddy: the
// daemon hands it the proxy's status through a callback.
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if strings.Contains(imp, "/proxy") || strings.Contains(imp, "caddy") || strings.HasSuffix(imp, "/daemon") {
			t.Errorf("control imports %s", imp)
		}
	}
}

// TestFatalStatusFields: GET /v1/programs carries what `hostctl status`
// needs to say why a FATAL program gave up and when it is tried again.
func TestFatalStatusFields(t *testing.T) {
	next := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	f := &fakePrograms{sts: []supervisor.Status{{
		Name: "web", State: supervisor.Fatal, Tries: 4, LastExit: &supervisor.ExitStatus{Code: 1},
		LastStderr: "ImportError: no module named app", NextStart: next,
	}}}
	srv := httptest.NewServer(New(Options{Programs: f}).Handler(false))
	defer srv.Close()
	raw := getBody(t, srv.URL+"/v1/programs")
	var wire bytes.Buffer
	json.Compact(&wire, raw)
	b := wire.Bytes()
	for _, want := range []string{`"tries":4`, `"last_stderr":"ImportError: no module named app"`, `"next_start":"2030-01-02T03:04:05Z"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("GET /v1/programs = %s\nlacks %s", b, want)
		}
	}
	p, err := (&client.Client{URL: srv.URL}).Program(context.Background(), "web")
	if err != nil || p.Tries != 4 || p.LastStderr != "ImportError: no module named app" || !p.NextStart.Equal(next) {
		t.Errorf("Program(web) = %+v, %v", p, err)
	}
}

// TestHealthMetrics: programs with a health check export whether they are
// healthy and how often they were restarted for it; others export neither.
func TestHealthMetrics(t *testing.T) {
	f := &fakePrograms{sts: []supervisor.Status{
		{Name: "web", State: supervisor.Running, Health: &supervisor.HealthStatus{Healthy: true, Restarts: 2}},
		{Name: "api", State: supervisor.Stopping, Health: &supervisor.HealthStatus{Failures: 3, LastError: "GET /healthz: 500", Restarts: 1}},
		{Name: "cron", State: supervisor.Running},
	}}
	srv := httptest.NewServer(New(Options{Programs: f}).Handler(false))
	defer srv.Close()
	b := getBody(t, srv.URL+"/metrics")
	for _, want := range []string{
		`hostctl_program_healthy{program="web"} 1`,
		`hostctl_program_health_restarts_total{program="web"} 2`,
		`hostctl_program_healthy{program="api"} 0`,
		`hostctl_program_health_restarts_total{program="api"} 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(string(b), `hostctl_program_healthy{program="cron"}`) {
		t.Errorf("/metrics has health for a program without a health check")
	}
	raw := getBody(t, srv.URL+"/v1/programs?name=api")
	var wire bytes.Buffer
	json.Compact(&wire, raw)
	if want := `"health":{"healthy":false,"failures":3,"last_error":"GET /healthz: 500","restarts":1}`; !strings.Contains(wire.String(), want) {
		t.Errorf("GET /v1/programs?name=api = %s\nlacks %s", wire.String(), want)
	}
}

// TestMemoryLimitMetrics: programs with a memory_limit export it and their
// restarts for it; others export neither. The JSON counts the restarts.
func TestMemoryLimitMetrics(t *testing.T) {
	f := &fakePrograms{sts: []supervisor.Status{
		{Name: "web", State: supervisor.Running, MemoryLimit: 512e6, MemoryRestarts: 3},
		{Name: "cron", State: supervisor.Running},
	}}
	srv := httptest.NewServer(New(Options{Programs: f}).Handler(false))
	defer srv.Close()
	b := getBody(t, srv.URL+"/metrics")
	for _, want := range []string{
		`hostctl_program_memory_limit_bytes{program="web"} 5.12e+08`,
		`hostctl_program_memory_restarts_total{program="web"} 3`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(string(b), `hostctl_program_memory_limit_bytes{program="cron"}`) || strings.Contains(string(b), `hostctl_program_memory_restarts_total{program="cron"}`) {
		t.Errorf("/metrics has a memory limit for a program without one")
	}
	raw := getBody(t, srv.URL+"/v1/programs?name=web")
	var wire bytes.Buffer
	json.Compact(&wire, raw)
	if want := `"memory_limit":512000000,"memory_restarts":3`; !strings.Contains(wire.String(), want) {
		t.Errorf("GET /v1/programs?name=web = %s\nlacks %s", wire.String(), want)
	}
}

// getBody GETs url and returns the body; a transport error fails the test.
func getBody(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProgramWithInstances: a name that stands for several processes
// lists them all, answers an action for each, and is refused where one
// process is asked for.
func TestProgramWithInstances(t *testing.T) {
	c := supervisor.DefaultProgramConfig("pool")
	c.Command = supervisor.Command{"/bin/sh", "-c", "exit 0"}
	c.Autostart, c.Instances = false, 2
	sup, err := supervisor.New([]*supervisor.ProgramConfig{&c}, supervisor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sup.Start()
	t.Cleanup(func() { sup.Shutdown(context.Background()) })
	srv := httptest.NewServer(New(Options{Programs: sup}).Handler(false))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/v1/programs/pool"); code != 400 || !strings.Contains(body, `\"pool\" stands for 2 processes (pool_0, pool_1)`) {
		t.Errorf("GET /v1/programs/pool: %d %s", code, body)
	}
	var one apitype.Process
	if code, body := get("/v1/programs/pool:pool_1"); code != 200 || json.Unmarshal([]byte(body), &one) != nil ||
		one.Name != "pool_1" || one.Program != "pool" || one.ProgramGroup != "pool" || one.Instance != 1 {
		t.Errorf("GET /v1/programs/pool:pool_1: %d %s", code, body)
	}
	var list []apitype.Process
	if code, body := get("/v1/programs?name=pool"); code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 2 {
		t.Errorf("GET /v1/programs?name=pool: %d %s", code, body)
	}
	resp, err := http.Post(srv.URL+"/v1/stop", "application/json", strings.NewReader(`{"names":["pool:*"],"wait_seconds":5}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ar apitype.ActionResponse
	if err := json.NewDecoder(resp.Body).Decode(&ar); err != nil || len(ar.Results) != 2 || ar.Results[0].Name != "pool_0" || !ar.Results[1].OK {
		t.Errorf("stop pool:*: %v %+v", err, ar)
	}
}
