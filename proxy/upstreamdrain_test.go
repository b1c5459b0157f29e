package proxy

import (
	"fmt"
	"io"
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

func TestDrainSingleUpstreamNotPooled(t *testing.T) {
	up := newUpstream(t, nil)
	listen := freeAddr(t)
	h := startProxy(t, Config{Listen: listen, Upstream: up.addr})
	if r := h.p.TryDrain(up.addr); r != DrainNotPooled {
		t.Errorf("TryDrain(single upstream) = %v, want DrainNotPooled", r)
	}
	if r := h.p.TryDrain("127.0.0.1:1"); r != DrainNotPooled {
		t.Errorf("TryDrain(unknown) = %v, want DrainNotPooled", r)
	}
}
