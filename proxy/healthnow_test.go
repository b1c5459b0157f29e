package proxy

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestCheckHealthNow: an upstream that Caddy's active health check marked
// down stays out until the check's next tick (here 10 minutes away), so
// the other upstream of its pool cannot be drained; CheckHealth runs the
// check at once: once it passes, the upstream gets requests, is healthy
// in the status and lets TryDrain take the other out. A check that fails
// marks nothing, and an upstream no pool checks is not checked.
func TestCheckHealthNow(t *testing.T) {
	var aUp atomic.Bool
	var aServed atomic.Int64
	a := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			if !aUp.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		aServed.Add(1)
		io.WriteString(w, "a")
	}))
	b := newUpstream(t, nil)
	listen := freeAddr(t)
	h := startProxy(t, Config{Listen: listen, UpstreamList: []string{a.addr, b.addr},
		Health: Health{Path: "/ok", Interval: 10 * time.Minute}})
	retryUntil(t, 30*time.Second, "a marked down by the first health check", func() error {
		for _, u := range h.p.Status().Upstreams {
			if u.Address == a.addr && !u.Healthy {
				return nil
			}
		}
		return errNotYet
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ok, err := h.p.CheckHealth(ctx, a.addr); ok || err == nil {
		t.Fatalf("CheckHealth(a) while /ok answers 503 = %v, %v; want false and the error", ok, err)
	}
	if r := h.p.TryDrain(b.addr); r != DrainLast {
		t.Fatalf("TryDrain(b) with a down = %v, want DrainLast", r)
	}
	aUp.Store(true)
	if r := h.p.TryDrain(b.addr); r != DrainLast {
		t.Fatalf("TryDrain(b) with a up but not checked again = %v, want DrainLast", r)
	}
	if ok, err := h.p.CheckHealth(ctx, a.addr); !ok || err != nil {
		t.Fatalf("CheckHealth(a) = %v, %v; want true", ok, err)
	}
	for _, u := range h.p.Status().Upstreams {
		if u.Address == a.addr && (!u.Healthy || u.Down != "") {
			t.Errorf("status of a after its check passed: %+v, want healthy", u)
		}
	}
	c := client()
	for i := 0; aServed.Load() == 0; i++ {
		if i == 50 {
			t.Fatal("a got none of 50 requests after its check passed")
		}
		if resp, body := get(t, c, "http://"+listen+"/n"); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if r := h.p.TryDrain(b.addr); r != Drained {
		t.Fatalf("TryDrain(b) after a's check passed = %v, want Drained", r)
	}
	h.p.Undrain(b.addr)
	if ok, err := h.p.CheckHealth(ctx, freeAddr(t)); ok || err != nil {
		t.Errorf("CheckHealth(an upstream of no pool) = %v, %v; want false, nil", ok, err)
	}
}
