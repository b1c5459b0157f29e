package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// countingUpstreams are test upstreams that count the requests to /n
// (health checks left out) and hold those to /slow until release closes.
type countingUpstreams struct {
	mu      sync.Mutex
	n       map[string]*atomic.Int64
	slowAt  chan string
	release chan struct{}
}

func newCountingUpstreams() *countingUpstreams {
	return &countingUpstreams{n: map[string]*atomic.Int64{}, slowAt: make(chan string, 8), release: make(chan struct{})}
}

func (c *countingUpstreams) add(t *testing.T) *upstream {
	var name string
	count := new(atomic.Int64)
	u := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/n":
			count.Add(1)
		case "/slow":
			c.slowAt <- name
			<-c.release
		}
		io.WriteString(w, "ok")
	}))
	name = u.addr
	c.mu.Lock()
	c.n[u.addr] = count
	c.mu.Unlock()
	return u
}

func (c *countingUpstreams) count(addr string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[addr].Load()
}

// rawConn is one keep-alive connection to the proxy, requests sent on it
// one after another.
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	rc, err := dialRawErr(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.c.Close() })
	return rc
}

func dialRawErr(addr string) (*rawConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &rawConn{c: c, br: bufio.NewReader(c)}, nil
}

// get sends GET path on the connection and returns the answer's status.
func (rc *rawConn) get(path string) (int, error) {
	rc.c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := fmt.Fprintf(rc.c, "GET %s HTTP/1.1\r\nHost: example.test\r\n\r\n", path); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	if resp.Close {
		return resp.StatusCode, fmt.Errorf("the proxy closes the connection")
	}
	return resp.StatusCode, nil
}

func upstreamAddrs(st Status) []string {
	var out []string
	for _, u := range st.Upstreams {
		out = append(out, u.Address)
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestSwapUpstreams: a config that changes only a pool's upstream list is
// applied without a Caddy reload: a keep-alive connection to the proxy
// stays open across it (a Caddy reload closes it); new requests go to the
// new list at once, none to an upstream removed; a request in flight to
// the removed one finishes and is counted until it does; the health
// answer, the active health checks and the drain work on the new list. A
// config that changes anything else, or makes a pool a single upstream,
// is not swapped.
func TestSwapUpstreams(t *testing.T) {
	ups := newCountingUpstreams()
	a, b, c := ups.add(t), ups.add(t), ups.add(t)
	listen := freeAddr(t)
	var healthMu sync.Mutex
	var healthUps []string
	p := New(Options{Logger: zap.NewNop(), StateDir: t.TempDir(), SiteHealth: func(u []string) (bool, string) {
		healthMu.Lock()
		defer healthMu.Unlock()
		healthUps = slices.Clone(u)
		return true, "ok"
	}})
	cfg := func(list ...string) Config {
		return Config{Listen: listen, UpstreamList: list, HealthPath: "/.health", Health: Health{Interval: 100 * time.Millisecond}}
	}
	if err := p.Apply(cfg(a.addr, b.addr)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })

	rc := dialRaw(t, listen)
	if code, err := rc.get("/n"); err != nil || code != 200 {
		t.Fatalf("first request: %d %v", code, err)
	}
	// A request in flight to a (b drained meanwhile) while the list
	// changes to [b c].
	if r := p.TryDrain(b.addr); r != Drained {
		t.Fatalf("TryDrain(b) = %v, want Drained", r)
	}
	slowDone := make(chan error, 1)
	go func() {
		resp, err := client().Get("http://" + listen + "/slow")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		slowDone <- err
	}()
	var slowAt string
	select {
	case slowAt = <-ups.slowAt:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow request reached no upstream")
	}
	if slowAt != a.addr {
		t.Fatalf("the slow request reached %s, want a (%s): b was drained", slowAt, a.addr)
	}
	p.Undrain(b.addr)

	swapped, err := p.SwapUpstreams(cfg(b.addr, c.addr))
	if err != nil || !swapped {
		t.Fatalf("SwapUpstreams([b c]) = %v, %v; want true", swapped, err)
	}
	if code, err := rc.get("/n"); err != nil || code != 200 {
		t.Fatalf("a request on the connection opened before the swap: %d, %v (Caddy reloaded?)", code, err)
	}
	if n := p.InFlight(slowAt); n != 1 {
		t.Errorf("InFlight(%s) = %d during the swap's retirement, want 1 (the slow request)", slowAt, n)
	}
	before := ups.count(a.addr)
	for i := range 30 {
		if code, err := rc.get("/n"); err != nil || code != 200 {
			t.Fatalf("request %d after the swap: %d %v", i, code, err)
		}
	}
	if n := ups.count(a.addr) - before; n != 0 {
		t.Errorf("the removed upstream got %d new requests", n)
	}
	if ups.count(c.addr) == 0 {
		t.Error("the added upstream got no request")
	}
	if code, err := rc.get("/.health"); err != nil || code != 200 {
		t.Fatalf("health_path: %d %v", code, err)
	}
	healthMu.Lock()
	got := healthUps
	healthMu.Unlock()
	if !slices.Equal(got, []string{b.addr, c.addr}) {
		t.Errorf("health_path answered for %v, want the new list %v", got, []string{b.addr, c.addr})
	}
	close(ups.release)
	if err := <-slowDone; err != nil {
		t.Fatalf("the request in flight across the swap: %v", err)
	}
	retryUntil(t, 30*time.Second, "the previous list's handler retired", func() error {
		if got := upstreamAddrs(p.Status()); !slices.Equal(got, sorted(b.addr, c.addr)) {
			return fmt.Errorf("status lists %v", got)
		}
		return nil
	})

	// The new list's health checks and drain.
	dead := freeAddr(t)
	if swapped, err := p.SwapUpstreams(cfg(b.addr, c.addr, dead)); err != nil || !swapped {
		t.Fatalf("SwapUpstreams([b c dead]) = %v, %v; want true", swapped, err)
	}
	retryUntil(t, 30*time.Second, "the dead upstream marked unhealthy", func() error {
		for _, u := range p.Status().Upstreams {
			if u.Address == dead && !u.Healthy {
				return nil
			}
		}
		return fmt.Errorf("status: %+v", p.Status().Upstreams)
	})
	if r := p.TryDrain(c.addr); r != Drained {
		t.Fatalf("TryDrain(c) = %v, want Drained", r)
	}
	before = ups.count(c.addr)
	for i := range 20 {
		if code, err := rc.get("/n"); err != nil || code != 200 {
			t.Fatalf("request %d with c draining: %d %v", i, code, err)
		}
	}
	if n := ups.count(c.addr) - before; n != 0 {
		t.Errorf("the draining upstream got %d new requests", n)
	}
	if r := p.TryDrain(b.addr); r != DrainLast {
		t.Errorf("TryDrain(b) with c draining and the third dead = %v, want DrainLast", r)
	}
	p.Undrain(c.addr)

	// Not swapped: another change, or a pool that becomes one upstream.
	other := cfg(b.addr, c.addr)
	other.HealthPath = "/.other"
	for name, next := range map[string]Config{"health_path changed": other, "one upstream": cfg(b.addr)} {
		if swapped, err := p.SwapUpstreams(next); err != nil || swapped {
			t.Errorf("%s: SwapUpstreams = %v, %v; want false", name, swapped, err)
		}
	}
	if got := upstreamAddrs(p.Status()); !slices.Equal(got, sorted(b.addr, c.addr, dead)) {
		t.Errorf("after SwapUpstreams refused: status lists %v", got)
	}
	if code, err := rc.get("/n"); err != nil || code != 200 {
		t.Fatalf("after SwapUpstreams refused: %d %v", code, err)
	}
}

// TestSwapUpstreamsUnderLoad: clients on keep-alive connections while the
// pool's list changes back and forth: every request is answered 200 and
// no connection is closed.
func TestSwapUpstreamsUnderLoad(t *testing.T) {
	ups := newCountingUpstreams()
	a, b, c := ups.add(t), ups.add(t), ups.add(t)
	listen := freeAddr(t)
	cfg := func(list ...string) Config { return Config{Listen: listen, UpstreamList: list} }
	h := startProxy(t, cfg(a.addr, b.addr))
	var ok, failed atomic.Int64
	var errMu sync.Mutex
	var firstErr error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		rc := dialRaw(t, listen)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { rc.c.Close() }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if code, err := rc.get("/n"); err != nil || code != 200 {
					failed.Add(1)
					errMu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("status %d, %v", code, err)
					}
					errMu.Unlock()
					if err != nil {
						rc.c.Close() // the connection is gone: a new one
						if rc, err = dialRawErr(listen); err != nil {
							return
						}
					}
					continue
				}
				ok.Add(1)
			}
		}()
	}
	lists := [][]string{{a.addr, b.addr, c.addr}, {b.addr, c.addr}, {c.addr, a.addr}, {a.addr, b.addr}}
	for i := range 12 {
		want := ok.Load() + 50
		retryUntil(t, time.Minute, "requests answered", func() error {
			if ok.Load() < want {
				return errNotYet
			}
			return nil
		})
		if swapped, err := h.p.SwapUpstreams(cfg(lists[i%len(lists)]...)); err != nil || !swapped {
			t.Fatalf("swap %d: %v, %v", i, swapped, err)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d answered 200 across 12 swaps, %d failed", ok.Load(), failed.Load())
	if n := failed.Load(); n > 0 {
		t.Errorf("%d requests failed; first: %v", n, firstErr)
	}
}
