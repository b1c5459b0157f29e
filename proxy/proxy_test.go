package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestProxyToUpstream(t *testing.T) {
	var gotHeaders http.Header
	headersSeen := make(chan http.Header, 1)
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case headersSeen <- r.Header.Clone():
		default:
		}
		io.WriteString(w, "hello "+r.URL.Path)
	}))
	listen := freeAddr(t)
	// The simple case from the issue, exactly.
	h := startProxy(t, Config{Listen: listen, Upstream: up.addr})

	c := client()
	// A client's own X-Forwarded-For is not trusted.
	resp, body := get(t, c, "http://"+listen+"/a/b?x=1", "X-Forwarded-For", "192.0.2.1")
	if resp.StatusCode != 200 || body != "hello /a/b" {
		t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, "hello /a/b")
	}
	if v := resp.Header.Get("Alt-Svc"); v != "" {
		t.Errorf("Alt-Svc %q: HTTP/3 must be off by default", v)
	}
	gotHeaders = <-headersSeen
	for k, want := range map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  listen,
	} {
		if got := gotHeaders.Get(k); got != want {
			t.Errorf("upstream got %s %q, want %q", k, got, want)
		}
	}

	// The access log got a JSON line for the request.
	retryUntil(t, 30*time.Second, "access log line", func() error {
		if !strings.Contains(h.access.String(), `"uri":"/a/b?x=1"`) {
			return errNotYet
		}
		return nil
	})
	line := strings.SplitN(h.access.String(), "\n", 2)[0]
	var entry map[string]any
	if err := json.Unmarshal([]byte(line), &entry); err != nil {
		t.Errorf("access log line is not JSON: %v: %q", err, line)
	}

	st := h.p.Status()
	if !st.Running || len(st.Upstreams) != 1 || st.Upstreams[0].Address != up.addr || !st.Upstreams[0].Healthy {
		t.Errorf("Status = %+v, want running with healthy upstream %s", st, up.addr)
	}
	if len(st.Listen) != 1 || st.Listen[0] != listen {
		t.Errorf("Status.Listen = %v, want [%s]", st.Listen, listen)
	}
	// Caddy's own logs went to our logger, named caddy.*.
	if h.logs.Len() == 0 {
		t.Errorf("no Caddy log entries reached Options.Logger")
	}
	for _, e := range h.logs.All() {
		if !strings.HasPrefix(e.LoggerName, "caddy") {
			t.Errorf("log entry %q from logger %q, want a caddy.* name", e.Message, e.LoggerName)
		}
		if strings.HasPrefix(e.LoggerName, "caddy.http.log.access") {
			t.Errorf("access log entry reached Options.Logger")
		}
	}
	// No files outside the state dir: storage is there.
	if _, err := os.Stat(filepath.Join(h.state, "caddy")); err != nil {
		t.Errorf("storage dir: %v", err)
	}
}

func TestApplySameConfigDoesNotReload(t *testing.T) {
	up := newUpstream(t, nil)
	listen := freeAddr(t)
	cfg := Config{Listen: listen, Upstream: up.addr}
	h := startProxy(t, cfg)
	loads := func() int { return h.logs.FilterMessage("server running").Len() }
	before := loads()
	if before == 0 {
		t.Fatal(`no "server running" log entry after the first Apply; the reload check below would prove nothing`)
	}

	// An idle keep-alive connection survives an Apply of the same config
	// (a reload closes idle connections). The client's transport puts the
	// connection back in its idle pool a moment after the body was read:
	// wait for that, or the next request may dial a new one.
	c := client()
	idle := make(chan struct{})
	req0, _ := http.NewRequest("GET", "http://"+listen+"/", nil)
	req0 = req0.WithContext(httptrace.WithClientTrace(req0.Context(), &httptrace.ClientTrace{
		PutIdleConn: func(err error) {
			if err == nil {
				close(idle)
			}
		},
	}))
	resp0, err := c.Do(req0)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp0.Body)
	resp0.Body.Close()
	select {
	case <-idle:
	case <-time.After(30 * time.Second):
		t.Fatal("the first request's connection never went back to the client's idle pool")
	}
	if err := h.p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	var reused bool
	req, _ := http.NewRequest("GET", "http://"+listen+"/", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	}))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !reused {
		t.Errorf("keep-alive connection was not reused after applying the same config")
	}
	if got := loads(); got != before {
		t.Errorf("%d config loads after applying the same config, want 0", got-before)
	}

	// A changed config is applied.
	cfg.Maintenance = true
	if err := h.p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, client(), "http://"+listen+"/"); resp.StatusCode != 503 {
		t.Errorf("after enabling maintenance: %d, want 503", resp.StatusCode)
	}
}

func TestErrorPage(t *testing.T) {
	down := freeAddr(t) // nothing listens here
	listen := freeAddr(t)
	zero := time.Duration(0)
	h := startProxy(t, Config{Listen: listen, Upstream: down, RetryFor: &zero})
	resp, body := get(t, client(), "http://"+listen+"/")
	if resp.StatusCode != 502 {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q, want text/html", ct)
	}
	if !strings.Contains(body, "temporarily unavailable") || !strings.Contains(body, "Error 502") {
		t.Errorf("body is not the default error page with its status:\n%s", body)
	}

	// A custom page, and 504 when the upstream is too slow.
	page := filepath.Join(publicDir(t), "oops.html")
	os.WriteFile(page, []byte("<p>custom {http.error.status_code}</p>"), 0o644)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	if err := h.p.Apply(Config{Listen: listen, Upstream: slow.addr, RetryFor: &zero,
		UpstreamTimeout: 200 * time.Millisecond, ErrorPage: page}); err != nil {
		t.Fatal(err)
	}
	resp, body = get(t, client(), "http://"+listen+"/")
	if resp.StatusCode != 504 || body != "<p>custom 504</p>" {
		t.Errorf("got %d %q, want 504 and the custom page", resp.StatusCode, body)
	}
}

func TestMaintenance(t *testing.T) {
	up := newUpstream(t, nil)
	listen := freeAddr(t)
	cfg := Config{Listen: listen, Upstream: up.addr, Maintenance: true, Allow: []string{"10.0.0.0/8"}}
	h := startProxy(t, cfg)
	resp, body := get(t, client(), "http://"+listen+"/")
	if resp.StatusCode != 503 || !strings.Contains(body, "Error 503") {
		t.Errorf("got %d, want 503 with the error page; body:\n%s", resp.StatusCode, body)
	}
	if n := up.served.Load(); n != 0 {
		t.Errorf("upstream served %d requests during maintenance", n)
	}
	cfg.Allow = []string{"10.0.0.0/8", "127.0.0.1"}
	if err := h.p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if resp, body := get(t, client(), "http://"+listen+"/"); resp.StatusCode != 200 {
		t.Errorf("allow-listed client got %d %q, want 200", resp.StatusCode, body)
	}
}

// TestApplyReachesTheNextRequest flips maintenance on and off while other
// clients keep sending requests, on new connections and on one keep-alive
// connection. Once Apply has returned, every request must get the new
// config's answer: a new connection must not land on the previous config's
// server, and a keep-alive connection opened under the previous config
// must not be answered by it. (Caddy reloads by starting the new servers
// beside the old ones; caddy.Load returns before the old ones have begun
// shutting down.) Requests that overlap an Apply may get either answer.
func TestApplyReachesTheNextRequest(t *testing.T) {
	const flips = 40
	up := newUpstream(t, nil)
	listen := freeAddr(t)
	url := "http://" + listen + "/"
	closed := Config{Listen: listen, Upstream: up.addr, Maintenance: true, Allow: []string{"10.0.0.0/8"}}
	open := closed
	open.Allow = []string{"10.0.0.0/8", "127.0.0.1"}
	h := startProxy(t, closed)

	// epoch is 2i while config i runs (0: the first Apply), 2i-1 while
	// Apply i runs; odd configs are open.
	var epoch atomic.Int64
	want := func(e int64) int {
		if (e/2)%2 == 1 {
			return 200
		}
		return 503
	}
	status := func(c *http.Client) (int, error) {
		resp, err := c.Get(url)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, err
	}

	var (
		mu       sync.Mutex
		failures []string
		checked  int
	)
	// hammer sends requests until stop is closed and checks those that
	// began and ended while one config was running.
	hammer := func(name string, c *http.Client, stop <-chan struct{}) {
		for {
			select {
			case <-stop:
				return
			default:
			}
			e := epoch.Load()
			code, err := status(c)
			if e%2 != 0 || epoch.Load() != e {
				continue
			}
			mu.Lock()
			checked++
			if err != nil || code != want(e) {
				failures = append(failures, fmt.Sprintf("%s, config %d: got %d %v, want %d", name, e/2, code, err, want(e)))
			}
			mu.Unlock()
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	fresh := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, hc := range []struct {
		name string
		c    *http.Client
	}{{"new connection", fresh}, {"new connection", fresh}, {"keep-alive", client()}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hammer(hc.name, hc.c, stop)
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		t.Logf("%d hammer requests checked", checked)
		for i, f := range failures {
			if i == 10 {
				t.Errorf("... and %d more", len(failures)-i)
				break
			}
			t.Error(f)
		}
	}()

	for i := int64(1); i <= flips; i++ {
		// A keep-alive connection opened under the running config.
		ka := client()
		if code, err := status(ka); err != nil || code != want(epoch.Load()) {
			t.Fatalf("before Apply %d: got %d %v, want %d", i, code, err, want(epoch.Load()))
		}
		cfg := closed
		if i%2 == 1 {
			cfg = open
		}
		epoch.Store(2*i - 1)
		if err := h.p.Apply(cfg); err != nil {
			t.Fatal(err)
		}
		epoch.Store(2 * i)
		if code, err := status(client()); err != nil || code != want(2*i) {
			t.Errorf("Apply %d, new connection: got %d %v, want %d", i, code, err, want(2*i))
		}
		if code, err := status(ka); err != nil || code != want(2*i) {
			t.Errorf("Apply %d, keep-alive connection opened before it: got %d %v, want %d", i, code, err, want(2*i))
		}
		ka.CloseIdleConnections()
	}
}

// TestStopClosesListeners: once Stop has returned, nothing accepts
// connections on the proxy's address (caddy.Stop returns before the
// servers have closed their listeners).
func TestStopClosesListeners(t *testing.T) {
	up := newUpstream(t, nil)
	listen := freeAddr(t)
	cfg := Config{Listen: listen, Upstream: up.addr}
	h := startProxy(t, cfg)
	for i := range 20 {
		if i > 0 {
			if err := h.p.Apply(cfg); err != nil {
				t.Fatal(err)
			}
		}
		if resp, _ := get(t, client(), "http://"+listen+"/"); resp.StatusCode != 200 {
			t.Fatalf("start %d: got %d, want 200", i, resp.StatusCode)
		}
		if err := h.p.Stop(); err != nil {
			t.Fatal(err)
		}
		if c, err := net.DialTimeout("tcp", listen, 5*time.Second); err == nil {
			c.Close()
			t.Fatalf("after Stop %d: %s still accepts connections", i, listen)
		}
	}
}

func TestErrorPageCopiesMatch(t *testing.T) {
	b, err := os.ReadFile("../configs/error.html")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(defaultErrorPage) {
		t.Errorf("configs/error.html and proxy/error.html differ; keep them equal")
	}
}

func ExampleConfig_CaddyJSON() {
	cfg := Config{Listen: "127.0.0.1:8080", Upstream: "127.0.0.1:8000"}
	js, err := cfg.CaddyJSON()
	fmt.Println(err == nil && len(js) > 0)
	// Output: true
}

func TestFailedReloadKeepsServing(t *testing.T) {
	up := newUpstream(t, nil)
	listen := freeAddr(t)
	h := startProxy(t, Config{Listen: listen, Upstream: up.addr})

	// A port that is taken: Caddy cannot bind it, the old config stays.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	err = h.p.Apply(Config{Listen: taken.Addr().String(), Upstream: up.addr})
	if err == nil {
		t.Fatal("Apply with a taken port succeeded")
	}
	if !strings.Contains(err.Error(), "previous config keeps serving") {
		t.Errorf("error %q does not say the old config keeps serving", err)
	}
	// An invalid config is refused before Caddy sees it.
	err = h.p.Apply(Config{Listen: listen, Upstream: "nope"})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "proxy.upstream" {
		t.Errorf("invalid config: %v, want a FieldError at proxy.upstream", err)
	}
	if resp, body := get(t, client(), "http://"+listen+"/"); resp.StatusCode != 200 {
		t.Errorf("after failed reloads: %d %q", resp.StatusCode, body)
	}
	if !h.p.Status().Running {
		t.Errorf("Status().Running = false after a failed reload")
	}
}

func TestReloadKeepsRequestsInFlight(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		io.WriteString(w, "done "+r.URL.Path)
	}))
	listen := freeAddr(t)
	cfg := Config{Listen: listen, Upstream: up.addr}
	h := startProxy(t, cfg)

	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := client().Get("http://" + listen + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{resp.StatusCode, string(b), err}
	}()
	<-arrived
	cfg.Static = []Static{{Path: "/static/", Dir: publicDir(t)}} // a real change
	if err := h.p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	close(release)
	r := <-res
	if r.err != nil || r.status != 200 || r.body != "done /slow" {
		t.Errorf("request in flight across a reload: %d %q %v", r.status, r.body, r.err)
	}
	if resp, _ := get(t, client(), "http://"+listen+"/static/missing"); resp.StatusCode != 404 {
		t.Errorf("new config not active: /static/missing gave %d", resp.StatusCode)
	}
}
