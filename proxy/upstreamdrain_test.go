package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestDrainUpstream: a draining upstream of a pool gets no new request
// while the one it answers finishes and is counted; the last upstream of
// a pool is not drained, nor a site's single upstream; Undrain puts it
// back.
func TestDrainUpstream(t *testing.T) {
	release := make(chan struct{})
	slowAt := make(chan string, 2)
	var a, b *upstream
	counted := map[string]*atomic.Int64{} // requests to /n (health checks left out), by upstream
	slow := func(name *string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/n" {
				counted[*name].Add(1)
			}
			if r.URL.Path == "/slow" {
				slowAt <- *name
				<-release
			}
			io.WriteString(w, "ok")
		})
	}
	var aName, bName string
	a, b = newUpstream(t, slow(&aName)), newUpstream(t, slow(&bName))
	counted[a.addr], counted[b.addr] = new(atomic.Int64), new(atomic.Int64)
	aName, bName = a.addr, b.addr
	listen := freeAddr(t)
	h := startProxy(t, Config{Listen: listen, UpstreamList: []string{a.addr, b.addr}, Health: Health{Interval: 100 * time.Millisecond}})
	c := client()

	slowDone := make(chan error, 1)
	go func() {
		resp, err := c.Get("http://" + listen + "/slow")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		slowDone <- err
	}()
	var x string
	select {
	case x = <-slowAt:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow request reached no upstream")
	}
	other := a.addr
	if x == a.addr {
		other = b.addr
	}
	if r := h.p.TryDrain(x); r != Drained {
		t.Fatalf("TryDrain(%s) = %v, want Drained", x, r)
	}
	if n := h.p.InFlight(x); n != 1 {
		t.Errorf("InFlight(%s) = %d, want 1 (the slow request)", x, n)
	}
	st := h.p.Status()
	for _, u := range st.Upstreams {
		if u.Draining != (u.Address == x) || (u.Address == x && u.Requests != 1) {
			t.Errorf("status %+v: want %s draining with 1 request", u, x)
		}
	}
	if r := h.p.TryDrain(other); r != DrainLast {
		t.Errorf("TryDrain(%s) with %s draining = %v, want DrainLast", other, x, r)
	}
	for i := range 40 {
		resp, body := get(t, c, "http://"+listen+"/n")
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := counted[x].Load(); n != 0 {
		t.Errorf("the draining upstream got %d new requests", n)
	}
	close(release)
	if err := <-slowDone; err != nil {
		t.Fatalf("the request in flight to the draining upstream: %v", err)
	}
	retryUntil(t, 30*time.Second, "in flight 0", func() error {
		if n := h.p.InFlight(x); n != 0 {
			return fmt.Errorf("InFlight %d", n)
		}
		return nil
	})
	h.p.Undrain(x)
	if h.p.Draining(x) {
		t.Fatal("still draining after Undrain")
	}
	retryUntil(t, 30*time.Second, "requests reach the undrained upstream", func() error {
		resp, _ := get(t, c, "http://"+listen+"/n")
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		if counted[x].Load() == 0 {
			return fmt.Errorf("none yet")
		}
		return nil
	})
}

func TestDrainUnknownUpstreamNotPooled(t *testing.T) {
	up := newUpstream(t, nil)
	listen := freeAddr(t)
	h := startProxy(t, Config{Listen: listen, Upstream: up.addr})
	if r := h.p.TryDrain("127.0.0.1:1"); r != DrainNotPooled {
		t.Errorf("TryDrain(unknown) = %v, want DrainNotPooled", r)
	}
	if h.p.Draining("127.0.0.1:1") {
		t.Error("an unknown upstream is marked draining")
	}
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// waitHeld waits until the proxy holds n requests for up.
func waitHeld(t *testing.T, h *harness, up string, n int) {
	t.Helper()
	retryUntil(t, 30*time.Second, fmt.Sprintf("%d requests held", n), func() error {
		for _, u := range h.p.Status().Upstreams {
			if u.Address == up {
				if !u.Draining || u.Held != n {
					return fmt.Errorf("status %+v", u)
				}
				return nil
			}
		}
		return fmt.Errorf("%s not in the status", up)
	})
}

// TestHoldSingleUpstream: a site's single upstream is held (TryDrain:
// Held): requests to it make no connection while held (those
// hostctl_upstream proxies itself and one it hands to reverse_proxy), and
// complete once it is undrained; a hold that outlasts retry_for ends as before, with a
// dial.
func TestHoldSingleUpstream(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: l}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(cl)
	t.Cleanup(func() { srv.Close() })
	up := l.Addr().String()
	listen := freeAddr(t)
	retry := time.Minute
	h := startProxy(t, Config{Listen: listen, Upstream: up, RetryFor: &retry})
	c := client()
	c.Timeout = 2 * time.Minute

	if resp, body := get(t, c, "http://"+listen+"/"); resp.StatusCode != 200 {
		t.Fatalf("before the hold: %d %q", resp.StatusCode, body)
	}
	accepted := cl.n.Load()
	if r := h.p.TryDrain(up); r != Held {
		t.Fatalf("TryDrain(single upstream) = %v, want Held", r)
	}
	const n = 5
	done := make(chan error, n)
	for i := range n {
		go func() {
			req, _ := http.NewRequest("GET", "http://"+listen+"/", nil)
			if i == 0 {
				// Handed to the reverse_proxy inside hostctl_upstream.
				req.Header.Set("Upgrade", "test")
			}
			resp, err := c.Do(req)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "ok" {
					err = fmt.Errorf("%d %q", resp.StatusCode, b)
				}
			}
			done <- err
		}()
	}
	waitHeld(t, h, up, n)
	if got := cl.n.Load(); got != accepted {
		t.Errorf("%d connections to the held upstream, want none", got-accepted)
	}
	if f := h.p.InFlight(up); f != 0 {
		t.Errorf("InFlight = %d while every request is held, want 0", f)
	}
	select {
	case err := <-done:
		t.Fatalf("a held request ended before Undrain: %v", err)
	default:
	}
	h.p.Undrain(up)
	for range n {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("a released request: %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("the held requests did not complete once released")
		}
	}
	if got := cl.n.Load() - accepted; got != n {
		t.Errorf("%d connections after the release, want %d", got, n)
	}

	// A hold longer than retry_for: the request waits retry_for, then
	// dials as before (the upstream answers here).
	short := 2 * time.Second
	if err := h.p.Apply(Config{Listen: listen, Upstream: up, RetryFor: &short}); err != nil {
		t.Fatal(err)
	}
	if r := h.p.TryDrain(up); r != Held {
		t.Fatalf("TryDrain after the reload = %v, want Held", r)
	}
	accepted = cl.n.Load()
	go func() {
		resp, err := c.Get("http://" + listen + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		done <- err
	}()
	waitHeld(t, h, up, 1)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after retry_for: %v, want the upstream's answer", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a request held past retry_for did not go on")
	}
	if got := cl.n.Load() - accepted; got != 1 {
		t.Errorf("%d connections after retry_for, want 1", got)
	}
	if !h.p.Draining(up) {
		t.Error("the hold ended without Undrain")
	}

	// Held past retry_for with the upstream gone: the error, as before.
	srv.Close()
	resp, _ := get(t, c, "http://"+listen+"/")
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("held past retry_for, upstream down: %d, want 502", resp.StatusCode)
	}
	h.p.Undrain(up)
}
