package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHealthPath checks health_path: answered by hostctl (SiteHealth),
// never passed to the upstream nor counted as traffic; the other requests
// counted, in flight included, across a reload; WaitQuiet and
// WaitHealthOK.
func TestHealthPath(t *testing.T) {
	release := make(chan struct{})
	var hold atomic.Bool
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hold.Load() {
			<-release
		}
		io.WriteString(w, "hello")
	}))
	var healthy atomic.Bool
	healthy.Store(true)
	var mu sync.Mutex
	var asked [][]string
	p := New(Options{StateDir: t.TempDir(), SiteHealth: func(ups []string) (bool, string) {
		mu.Lock()
		asked = append(asked, ups)
		mu.Unlock()
		if healthy.Load() {
			return true, "app RUNNING"
		}
		return false, "app STOPPED"
	}})
	listen := freeAddr(t)
	cfg := Config{Listen: listen, Upstream: up.addr, HealthPath: "/.hostctl/health"}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	c := client()
	base := "http://" + listen

	resp, body := get(t, c, base+"/.hostctl/health")
	if resp.StatusCode != 200 || body != "healthy: app RUNNING\n" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("health while healthy: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	healthy.Store(false)
	if resp, body := get(t, c, base+"/.hostctl/health"); resp.StatusCode != 503 || body != "unhealthy: app STOPPED\n" {
		t.Errorf("health while unhealthy: %d %q", resp.StatusCode, body)
	}
	if resp, err := c.Post(base+"/.hostctl/health", "text/plain", nil); err != nil || resp.StatusCode != 405 {
		t.Errorf("POST health: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	mu.Lock()
	if len(asked) != 2 || !slices.Equal(asked[0], []string{up.addr}) {
		t.Errorf("SiteHealth asked with %q, want twice [%s]", asked, up.addr)
	}
	mu.Unlock()
	if n := up.served.Load(); n != 0 {
		t.Errorf("the upstream served %d requests: health_path must be answered by hostctl", n)
	}
	if tr := p.Traffic(); !tr.LastRequest.IsZero() || tr.InFlight != 0 {
		t.Errorf("health checks counted as traffic: %+v", tr)
	}

	t0 := time.Now()
	if resp, body := get(t, c, base+"/"); resp.StatusCode != 200 || body != "hello" {
		t.Fatalf("GET /: %d %q", resp.StatusCode, body)
	}
	if tr := p.Traffic(); tr.LastRequest.Before(t0) || tr.InFlight != 0 {
		t.Errorf("after one request: %+v", tr)
	}

	// A reload keeps the count; a request held by the upstream is in
	// flight, and WaitQuiet waits for it.
	cfg.RetryFor = ptr(2 * time.Second)
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if p.Traffic().LastRequest.Before(t0) {
		t.Error("a reload lost the traffic count")
	}
	hold.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := c.Get(base + "/slow")
		if err == nil {
			resp.Body.Close()
		}
	}()
	retryUntil(t, 30*time.Second, "a request in flight", func() error {
		if n := p.Traffic().InFlight; n != 1 {
			return fmt.Errorf("%d in flight", n)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	tr, err := p.WaitQuiet(ctx, 50*time.Millisecond)
	cancel()
	if err == nil {
		t.Errorf("WaitQuiet returned with a request in flight: %+v", tr)
	}
	close(release)
	<-done
	tr, err = p.WaitQuiet(context.Background(), 200*time.Millisecond)
	if err != nil || tr.InFlight != 0 {
		t.Errorf("WaitQuiet: %v %+v", err, tr)
	}
	if quiet := time.Since(tr.LastRequest); quiet < 200*time.Millisecond {
		t.Errorf("WaitQuiet returned %s after the last request, before the quiet period", quiet)
	}

	// WaitHealthOK waits for the next 200 on health_path.
	after := time.Now()
	waited := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		waited <- p.WaitHealthOK(ctx, after)
	}()
	get(t, c, base+"/.hostctl/health") // still unhealthy: 503
	select {
	case err := <-waited:
		t.Fatalf("WaitHealthOK returned after a 503: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	healthy.Store(true)
	get(t, c, base+"/.hostctl/health")
	if err := <-waited; err != nil {
		t.Errorf("WaitHealthOK: %v", err)
	}
}

// TestPoolPassiveHealth checks that failed requests take an upstream out
// of the pool before any active check (their interval is long), that the
// requests refused by it are retried on the other, and what Status says.
//
// Caddy runs one active check of every upstream as the proxy starts, in
// the background, then none for an hour. The dead upstream is stopped
// only after it has answered that check (and stopped gracefully, so the
// answer reaches the checker): the active check cannot mark it down, and
// only the passive counter can.
func TestPoolPassiveHealth(t *testing.T) {
	const checkPath = "/.active-check"
	var checked [2]atomic.Int32
	handler := func(i int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == checkPath {
				defer checked[i].Add(1)
			}
			io.WriteString(w, "hello from upstream "+r.URL.Path)
		})
	}
	a := newUpstream(t, handler(0))
	b := newUpstream(t, handler(1))
	listen := freeAddr(t)
	h := startProxy(t, Config{
		Listen: listen, UpstreamList: []string{a.addr, b.addr},
		// One active check at start, then none in this test; failed
		// requests count for a minute, longer than the test can take
		// however slow the machine (the 30 requests below all do).
		Health: Health{Path: checkPath, Interval: time.Hour, FailDuration: ptr(time.Minute)},
	})
	c := client()
	retryUntil(t, 10*time.Second, "the first active check answered by both upstreams", func() error {
		if n, m := checked[0].Load(), checked[1].Load(); n == 0 || m == 0 {
			return fmt.Errorf("checks answered: %d, %d", n, m)
		}
		return nil
	})
	retryUntil(t, 30*time.Second, "both upstreams healthy", func() error {
		for _, u := range h.p.Status().Upstreams {
			if !u.Healthy {
				return fmt.Errorf("%+v", u)
			}
		}
		return nil
	})
	a.stop()
	for i := range 30 {
		resp, body := get(t, c, "http://"+listen+"/")
		if resp.StatusCode != 200 {
			t.Fatalf("request %d with %s dead: %d %q", i, a.addr, resp.StatusCode, body)
		}
	}
	for _, u := range h.p.Status().Upstreams {
		switch u.Address {
		case a.addr:
			if u.Healthy || u.Fails < 3 || !strings.Contains(u.Down, "failed requests within 1m0s") {
				t.Errorf("the dead upstream: %+v, want out of the pool after 3 failed requests", u)
			}
		case b.addr:
			if !u.Healthy || u.Down != "" {
				t.Errorf("the live upstream: %+v", u)
			}
		}
	}
}
