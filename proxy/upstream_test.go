package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

func TestUpstreamRestartWithinRetryFor(t *testing.T) {
	up := newUpstream(t, nil)
	listen := freeAddr(t)
	retrying := make(chan struct{}, 1024)
	// The upstream is down from the kill until the test has seen the
	// proxy retry, then restarted: retry_for far longer than that can
	// take on a busy machine (the default is 5s), so that what is proved
	// is that requests wait for it, not how quickly the test gets there.
	retryFor := 30 * time.Second
	startProxyHook(t, Config{Listen: listen, Upstream: up.addr, RetryFor: &retryFor}, zapcore.DebugLevel, func(e zapcore.Entry) {
		// Every round trip after the kill, past the at most `workers` that
		// were in flight, is a failed attempt the proxy will retry.
		if e.Message == "upstream roundtrip" {
			select {
			case retrying <- struct{}{}:
			default:
			}
		}
	})

	const workers, maxPerWorker = 4, 400
	var ok, failed atomic.Int64
	done := make(chan struct{}, workers*maxPerWorker)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client()
			for range maxPerWorker {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get("http://" + listen + "/")
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				} else {
					ok.Add(1)
				}
				done <- struct{}{}
			}
		}()
	}
	waitN := func(ch chan struct{}, n int, what string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for range n {
			select {
			case <-ch:
			case <-deadline:
				t.Fatalf("%s: timed out", what)
			}
		}
	}
	waitN(done, 50, "requests before the kill")
	up.kill()
	// The upstream stays down until the proxy is retrying requests for it.
	for len(retrying) > 0 {
		<-retrying
	}
	waitN(retrying, 2*workers, "proxy retrying while the upstream is down")
	okAtRestart := ok.Load()
	up.restart()
	waitN(done, 50, "requests after the restart")
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d GETs failed while the upstream restarted within retry_for; first: %v", n, n+ok.Load(), *firstErr.Load())
	}
	if ok.Load() <= okAtRestart {
		t.Errorf("no GET succeeded after the restart")
	}
	t.Logf("%d GETs, 0 failed", ok.Load())
}

func TestUnixSocketUpstream(t *testing.T) {
	dir, err := shortTempDir(t)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "app.sock")
	l := listenElsewhere(t, sock) // a program's socket, not hostctl's own (refused)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "via unix socket")
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	listen := freeAddr(t)
	cfg := Config{Listen: listen, Upstream: "unix:" + sock}
	if got := cfg.Upstreams(); len(got) != 1 || got[0] != "unix:"+sock {
		t.Errorf("Upstreams() = %v", got)
	}
	h := startProxy(t, cfg)
	resp, body := get(t, client(), "http://"+listen+"/")
	if resp.StatusCode != 200 || body != "via unix socket" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if st := h.p.Status(); len(st.Upstreams) != 1 || st.Upstreams[0].Address != "unix:"+sock {
		t.Errorf("Status upstreams = %+v", st.Upstreams)
	}
}

// shortTempDir is a temp dir with a path short enough for a unix socket.
func shortTempDir(t *testing.T) (string, error) {
	dir, err := os.MkdirTemp("/tmp", "hcp")
	if err != nil {
		return "", err
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir, nil
}

func TestTwoUpstreamsOneDown(t *testing.T) {
	up := newUpstream(t, nil)
	down := freeAddr(t)
	listen := freeAddr(t)
	h := startProxy(t, Config{
		Listen: listen, UpstreamList: []string{down, up.addr},
		Health: Health{Interval: 100 * time.Millisecond},
	})
	c := client()
	for i := range 40 {
		resp, body := get(t, c, "http://"+listen+"/")
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	retryUntil(t, 30*time.Second, "health check marks the down upstream", func() error {
		st := h.p.Status()
		health := map[string]bool{}
		for _, u := range st.Upstreams {
			health[u.Address] = u.Healthy
		}
		if len(health) != 2 || health[down] || !health[up.addr] {
			return fmt.Errorf("upstreams %+v", st.Upstreams)
		}
		return nil
	})
}

// oneAtATime is a listener that hands out one connection at a time, like a
// gunicorn sync worker: the next Accept waits until the current connection
// is closed. open counts connections open on the upstream side.
type oneAtATime struct {
	net.Listener
	free   chan struct{}
	closed chan struct{}
	open   atomic.Int64
	change chan struct{} // a connection opened or closed
}

func newOneAtATime(t *testing.T) *oneAtATime {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &oneAtATime{Listener: l, free: make(chan struct{}, 1), closed: make(chan struct{}), change: make(chan struct{}, 1)}
	o.free <- struct{}{}
	return o
}

func (o *oneAtATime) Accept() (net.Conn, error) {
	select {
	case <-o.free:
	case <-o.closed:
		return nil, net.ErrClosed
	}
	c, err := o.Listener.Accept()
	if err != nil {
		o.free <- struct{}{}
		return nil, err
	}
	o.open.Add(1)
	o.notify()
	return &trackedConn{Conn: c, onClose: func() {
		o.open.Add(-1)
		o.free <- struct{}{}
		o.notify()
	}}, nil
}

func (o *oneAtATime) notify() {
	select {
	case o.change <- struct{}{}:
	default:
	}
}

func (o *oneAtATime) Close() error {
	select {
	case <-o.closed:
	default:
		close(o.closed)
	}
	return o.Listener.Close()
}

type trackedConn struct {
	net.Conn
	once    sync.Once
	onClose func()
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.onClose)
	return err
}

// syncWorker starts a gunicorn-like upstream: one connection at a time,
// keep-alive honoured (so a proxy holding the connection pins it).
func syncWorker(t *testing.T) *oneAtATime {
	o := newOneAtATime(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "got %d bytes", n)
	})}
	go srv.Serve(o)
	t.Cleanup(func() { srv.Close() })
	return o
}

func TestSlowClientDoesNotPinSyncWorker(t *testing.T) {
	worker := syncWorker(t)
	listen := freeAddr(t)
	startProxy(t, Config{Listen: listen, Upstream: worker.Addr().String()})

	// A slow client sends the first byte of a 40-byte body, and the rest
	// only once the other clients below have been answered (however long
	// that takes): were the proxy to pin the worker with the slow body,
	// they would never be (the client's 15s timeout fails the test).
	conn, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const bodyLen = 40
	fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: %d\r\n\r\n", bodyLen)
	conn.Write([]byte("x"))

	// Meanwhile other clients are served by the single worker.
	c := client()
	for i := range 5 {
		resp, err := c.Get("http://" + listen + "/")
		if err != nil {
			t.Fatalf("request %d while the slow client holds back its body: %v (the slow body pinned the worker)", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	// Then the rest of the slow body, a byte at a time.
	for range bodyLen - 1 {
		if _, err := conn.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != fmt.Sprintf("got %d bytes", bodyLen) {
		t.Errorf("slow upload: %d %q", resp.StatusCode, b)
	}
}

func TestBurstLeavesNoUpstreamConnection(t *testing.T) {
	worker := syncWorker(t)
	listen := freeAddr(t)
	startProxy(t, Config{Listen: listen, Upstream: worker.Addr().String()})

	const n = 128
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := c.Get("http://" + listen + "/")
			if err != nil {
				errs <- err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Errorf("status %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("burst request: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for worker.open.Load() != 0 {
		select {
		case <-worker.change:
		case <-ctx.Done():
			t.Fatalf("%d upstream connection(s) still open after the burst: the worker is pinned", worker.open.Load())
		}
	}
}

func TestBodySizeLimit(t *testing.T) {
	worker := syncWorker(t)
	listen := freeAddr(t)
	limit := int64(1000)
	startProxy(t, Config{Listen: listen, Upstream: worker.Addr().String(), MaxBodySize: &limit})
	c := client()
	resp, err := c.Post("http://"+listen+"/", "text/plain", strings.NewReader(strings.Repeat("x", 999)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "got 999 bytes" {
		t.Errorf("body under the limit: %d %q", resp.StatusCode, b)
	}
	resp, err = c.Post("http://"+listen+"/", "text/plain", strings.NewReader(strings.Repeat("x", 5000)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("body over the limit: %d, want 413", resp.StatusCode)
	}
}
