package proxy

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// seen is what the upstream received, or what the client received.
type seen struct {
	Status  int
	Line    string // method, URI and protocol as the upstream read them
	Host    string
	Header  []string // "Key: value", sorted; Date left out
	Length  int64
	TE      []string
	Body    string
	Trailer []string
}

func headerLines(h http.Header) []string {
	var out []string
	for k, vv := range h {
		if k == "Date" {
			continue
		}
		for _, v := range vv {
			out = append(out, k+": "+v)
		}
	}
	slices.Sort(out)
	return out
}

// recordingUpstream answers by path and hands what it received to got.
// It listens on TCP, or on a unix socket if unix; it returns the upstream
// as written in the config.
func recordingUpstream(t *testing.T, got chan<- seen, unix bool) string {
	var l net.Listener
	var err error
	if unix {
		dir, derr := shortTempDir(t)
		if derr != nil {
			t.Fatal(derr)
		}
		// A program's socket, not hostctl's own (refused).
		l = listenElsewhere(t, filepath.Join(dir, "up.sock"))
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{
			Line: r.Method + " " + r.RequestURI + " " + r.Proto, Host: r.Host,
			Header: headerLines(r.Header), Length: r.ContentLength, TE: r.TransferEncoding,
			Body: string(body), Trailer: headerLines(r.Trailer),
		}
		h := w.Header()
		switch r.URL.Path {
		case "/stream": // no length: chunked, flushed piece by piece
			for i := range 3 {
				fmt.Fprintf(w, "part %d\n", i)
				w.(http.Flusher).Flush()
			}
		case "/early": // 103 Early Hints before the response
			h.Set("Link", "</app.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			h.Del("Link")
			io.WriteString(w, "after hints")
		case "/trailer":
			h.Set("Trailer", "X-Checksum")
			io.WriteString(w, "with trailer")
			h.Set("X-Checksum", "abc")
		case "/gzip": // compressed only when asked
			// With a Content-Type: without one, Go's server sniffs it from
			// the first bytes, and reverse_proxy's first flush races with
			// its first write (a timer of -1), so it sometimes has none.
			h.Set("Content-Type", "text/plain")
			if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				h.Set("Content-Encoding", "gzip")
				zw := gzip.NewWriter(w)
				io.WriteString(zw, "unzipped by the proxy")
				zw.Close()
				return
			}
			io.WriteString(w, "plain")
		case "/hop": // hop-by-hop response headers the proxy removes
			h.Set("Connection", "X-Private")
			h.Set("X-Private", "1")
			h.Set("Keep-Alive", "timeout=5")
			h.Set("Alt-Svc", `h3=":443"`)
			h.Set("Server", "gunicorn")
			io.WriteString(w, "hop")
		case "/status":
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, "teapot")
		default:
			h.Set("Content-Type", "text/plain")
			io.WriteString(w, "hello")
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	if unix {
		return "unix:" + l.Addr().String()
	}
	return l.Addr().String()
}

// rawRoundTrip sends raw on a new connection to addr and reads the
// response to a request with method.
func rawRoundTrip(t *testing.T, addr, method, raw string) seen {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var s seen
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("reading the response: %v", err)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			// Informational responses are part of what the client sees.
			s.Header = append(s.Header, fmt.Sprintf("(%d)", resp.StatusCode))
			s.Header = append(s.Header, headerLines(resp.Header)...)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading the body: %v", err)
		}
		s.Status = resp.StatusCode
		s.Header = append(s.Header, headerLines(resp.Header)...)
		s.Length, s.TE, s.Body, s.Trailer = resp.ContentLength, resp.TransferEncoding, string(body), headerLines(resp.Trailer)
		return s
	}
}

// TestUpstreamHandlerSendsWhatReverseProxySends sends the same requests
// through hostctl_upstream and through Caddy's reverse_proxy (as hostctl
// configured it before) and compares what the upstream receives and what
// the client receives: every header, the body, framing and trailers.
func TestUpstreamHandlerSendsWhatReverseProxySends(t *testing.T) {
	for _, unix := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "unix"}[unix], func(t *testing.T) {
			testSendsWhatReverseProxySends(t, unix)
		})
	}
}

func testSendsWhatReverseProxySends(t *testing.T, unix bool) {
	const hostless = "http/1.0 without host"
	got := make(chan seen, 4)
	up := recordingUpstream(t, got, unix)
	cases := []struct{ name, method, raw string }{
		{"get", "GET", "GET /?q=1 HTTP/1.1\r\nHost: app.test\r\nUser-Agent: ua\r\nAccept: */*\r\nAccept-Encoding: br\r\n\r\n"},
		{"no user agent, no accept-encoding (the proxy asks for gzip)", "GET", "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"gzip added and undone", "GET", "GET /gzip HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"gzip asked by the client passes", "GET", "GET /gzip HTTP/1.1\r\nHost: app.test\r\nAccept-Encoding: gzip\r\n\r\n"},
		{"range: no gzip added", "GET", "GET / HTTP/1.1\r\nHost: app.test\r\nRange: bytes=0-1\r\n\r\n"},
		{"head", "HEAD", "HEAD / HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{hostless, "GET", "GET / HTTP/1.0\r\n\r\n"},
		{"forwarded headers from an untrusted client are replaced", "GET",
			"GET / HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\nVia: 1.1 other\r\n\r\n"},
		{"hop-by-hop request headers removed", "GET",
			"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 300\r\nProxy-Authorization: x\r\nTe: trailers, deflate\r\nProxy-Connection: x\r\n\r\n"},
		{"post with a body", "POST", "POST /form HTTP/1.1\r\nHost: app.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\na=1&b=2"},
		{"post without a body", "POST", "POST /form HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0\r\n\r\n"},
		{"put, chunked body (buffered, sent with its length)", "PUT",
			"PUT /up HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"},
		{"delete", "DELETE", "DELETE /x HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"streamed response", "GET", "GET /stream HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"103 early hints", "GET", "GET /early HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"response trailer", "GET", "GET /trailer HTTP/1.1\r\nHost: app.test\r\nTe: trailers\r\n\r\n"},
		{"hop-by-hop response headers removed", "GET", "GET /hop HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"upstream status passes", "GET", "GET /status HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"encoded path", "GET", "GET /a%2Fb/c%20d?x=%41 HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"expect 100-continue (reverse_proxy)", "POST",
			"POST /form HTTP/1.1\r\nHost: app.test\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"},
	}
	run := func(caddyOnly bool) (upstream, client []seen) {
		caddyReverseProxyOnly = caddyOnly
		defer func() { caddyReverseProxyOnly = false }()
		listen := freeAddr(t)
		p := New(Options{Logger: zap.NewNop(), StateDir: t.TempDir()})
		if err := p.Apply(Config{Listen: listen, Upstream: up}); err != nil {
			t.Fatal(err)
		}
		defer p.Stop()
		if !caddyOnly && !strings.Contains(string(p.lastJSON), `"hostctl_upstream"`) {
			t.Fatal("the generated config does not use hostctl_upstream")
		}
		for _, c := range cases {
			client = append(client, rawRoundTrip(t, listen, c.method, c.raw))
			if caddyOnly && unix && c.name == hostless {
				// reverse_proxy answers 502, at once or after retry_for,
				// or sends an empty Host: not compared.
				select {
				case <-got:
				case <-time.After(time.Second):
				}
				upstream = append(upstream, seen{})
				continue
			}
			select {
			case s := <-got:
				upstream = append(upstream, s)
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: the upstream got no request (client got %+v)", c.name, client[len(client)-1])
			}
		}
		return upstream, client
	}
	wantUp, wantClient := run(true)
	gotUp, gotClient := run(false)
	for i, c := range cases {
		if unix && c.name == hostless {
			// The one difference: for a unix socket net/http's
			// Transport takes the socket's path as the Host, and
			// reverse_proxy answers 502 or sends an empty Host;
			// hostctl_upstream sends "localhost".
			if gotUp[i].Host != "localhost" || gotClient[i].Status != 200 {
				t.Errorf("%s: hostctl_upstream sent Host %q and answered %d", c.name, gotUp[i].Host, gotClient[i].Status)
			}
			continue
		}
		if fmt.Sprintf("%+v", gotUp[i]) != fmt.Sprintf("%+v", wantUp[i]) {
			t.Errorf("%s: the upstream got\n%+v\nwith reverse_proxy:\n%+v", c.name, gotUp[i], wantUp[i])
		}
		if fmt.Sprintf("%+v", gotClient[i]) != fmt.Sprintf("%+v", wantClient[i]) {
			t.Errorf("%s: the client got\n%+v\nwith reverse_proxy:\n%+v", c.name, gotClient[i], wantClient[i])
		}
	}
}

// TestUpstreamHandlerOwnsEdgeCases checks what hostctl_upstream does
// itself, with real connections: timeouts, retries, streaming, a client
// that goes away, and the WebSocket upgrade it hands to reverse_proxy.
func TestUpstreamHandlerOwnsEdgeCases(t *testing.T) {
	// The upstream answers by path; /drop closes the connection without
	// a response (a worker killed mid-request); drops counts them.
	drops := make(chan string, 64)
	release := make(chan struct{})
	gone := make(chan struct{}, 1)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow": // headers after the response header timeout
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/drop":
			drops <- r.Method
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		case "/stream": // one part, then waits for the test or the proxy to go
			io.WriteString(w, "first\n")
			w.(http.Flusher).Flush()
			select {
			case <-release:
				io.WriteString(w, "second\n")
			case <-r.Context().Done():
				gone <- struct{}{}
			}
		case "/ws":
			if r.Header.Get("Upgrade") != "websocket" {
				http.Error(w, "no upgrade", 400)
				return
			}
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", "websocket")
			w.WriteHeader(http.StatusSwitchingProtocols)
			conn, brw, _ := w.(http.Hijacker).Hijack()
			defer conn.Close()
			line, _ := brw.ReadString('\n')
			brw.WriteString("echo " + line)
			brw.Flush()
		default:
			io.WriteString(w, "ok")
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { close(release); srv.Close() })

	listen := freeAddr(t)
	wait := 500 * time.Millisecond
	retryFor := 1500 * time.Millisecond
	h := startProxy(t, Config{Listen: listen, Upstream: l.Addr().String(), UpstreamTimeout: wait, RetryFor: &retryFor})
	if !strings.Contains(string(h.p.lastJSON), `"hostctl_upstream"`) {
		t.Fatal("the generated config does not use hostctl_upstream")
	}
	base := "http://" + listen

	t.Run("response header timeout is 504 with the error page", func(t *testing.T) {
		resp, body := get(t, client(), base+"/slow")
		if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(body, "Error 504") {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
	})

	t.Run("a GET that reached the upstream is retried, a POST is not", func(t *testing.T) {
		resp, body := get(t, client(), base+"/drop")
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("GET: %d %q", resp.StatusCode, body)
		}
		n := len(drops)
		for range n {
			<-drops
		}
		if n < 2 {
			t.Errorf("GET reached the upstream %d time(s) within retry_for, want it retried", n)
		}
		resp, err := client().Post(base+"/drop", "text/plain", strings.NewReader("once"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("POST: %d", resp.StatusCode)
		}
		if n := len(drops); n != 1 {
			t.Errorf("POST reached the upstream %d times, want 1 (never re-sent)", n)
		}
		for len(drops) > 0 {
			<-drops
		}
	})

	t.Run("a streamed response reaches the client as it comes", func(t *testing.T) {
		resp, err := client().Get(base + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || line != "first\n" {
			t.Fatalf("first part: %q, %v (the upstream holds the rest until the test lets it go)", line, err)
		}
		// While it streams, the request is in flight for Status (and the
		// hostctl_proxy_upstream_requests_in_flight metric).
		if st := h.p.Status(); len(st.Upstreams) != 1 || st.Upstreams[0].Requests != 1 {
			t.Errorf("Status upstreams while streaming = %+v, want 1 request in flight", st.Upstreams)
		}
	})

	t.Run("a client that goes away ends the upstream request", func(t *testing.T) {
		for len(gone) > 0 {
			<-gone
		}
		conn, err := net.Dial("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if line, _ := bufio.NewReader(resp.Body).ReadString('\n'); line != "first\n" {
			t.Fatalf("first part: %q", line)
		}
		conn.Close()
		select {
		case <-gone:
		case <-time.After(30 * time.Second):
			t.Fatal("the upstream request went on after the client left")
		}
	})

	t.Run("websocket upgrade goes through reverse_proxy", func(t *testing.T) {
		conn, err := net.Dial("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d", resp.StatusCode)
		}
		io.WriteString(conn, "ping\n")
		if line, _ := br.ReadString('\n'); line != "echo ping\n" {
			t.Errorf("through the upgraded connection: %q", line)
		}
		// Let reverse_proxy finish with the connection before the proxy
		// stops: Caddy 2.11.9's cleanup of a still open upgraded
		// connection races with its copying goroutine (go test -race).
		conn.Close()
		retryUntil(t, 30*time.Second, "the upgraded connection to end", func() error {
			if st := h.p.Status(); len(st.Upstreams) == 1 && st.Upstreams[0].Requests == 0 {
				return nil
			}
			return errNotYet
		})
	})
}
