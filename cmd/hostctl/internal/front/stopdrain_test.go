package front

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hostctl/hostctl/proxy"
	"github.com/hostctl/hostctl/supervisor"
)

// fakePool is a proxy's pools for the drain before a stop: each TryDrain
// answers the next of results (the last one repeats), in-flight counts
// go down by one per look.
type fakePool struct {
	mu       sync.Mutex
	results  []proxy.DrainResult
	inFlight map[string]int
	drained  map[string]bool
	calls    []string // "try U", "undrain U", "check U"
}

func (p *fakePool) TryDrain(u string) proxy.DrainResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "try "+u)
	r := p.results[0]
	if len(p.results) > 1 {
		p.results = p.results[1:]
	}
	if r == proxy.Drained || r == proxy.Held {
		p.drained[u] = true
	}
	return r
}

func (p *fakePool) Undrain(u string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "undrain "+u)
	delete(p.drained, u)
}

func (p *fakePool) HoldUntil(u string, t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "hold "+u)
}

func (p *fakePool) ReleaseDown(u string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "release down "+u)
	delete(p.drained, u)
}

func (p *fakePool) CheckHealth(_ context.Context, u string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "check "+u)
	return true, nil
}

func (p *fakePool) InFlight(u string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.inFlight[u]
	if n > 0 {
		p.inFlight[u] = n - 1
	}
	return n
}

func (p *fakePool) isDrained(u string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.drained[u]
}

// upGate is a WaitFor whose waits end when the test says the process is
// up (RUNNING since now), or removed.
type upGate struct {
	mu    sync.Mutex
	gates map[string]chan error
}

func (g *upGate) gate(name string) chan error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gates[name] == nil {
		g.gates[name] = make(chan error, 1)
	}
	return g.gates[name]
}

func (g *upGate) WaitFor(ctx context.Context, name string, _ func(supervisor.Status) bool) (supervisor.Status, error) {
	select {
	case err := <-g.gate(name):
		if err != nil {
			return supervisor.Status{}, err
		}
		return supervisor.Status{Name: name, State: supervisor.Running, StateSince: time.Now()}, nil
	case <-ctx.Done():
		return supervisor.Status{}, ctx.Err()
	}
}

func webProcess(addr string) *supervisor.ProcessConfig {
	p := supervisor.DefaultProgramConfig("web")
	p.Serves = []string{addr}
	return &supervisor.ProcessConfig{Name: "web_1", Program: &p}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBeforeStop(t *testing.T) {
	const up = "127.0.0.1:8001"
	for _, tc := range []struct {
		name     string
		results  []proxy.DrainResult
		inFlight int
		timeout  time.Duration
		drained  bool // taken out, and still out when BeforeStop returns
		tries    int
	}{
		{"drained, waits for its requests", []proxy.DrainResult{proxy.Drained}, 3, time.Minute, true, 1},
		{"single upstream: held, waits for its requests", []proxy.DrainResult{proxy.Held}, 3, time.Minute, true, 1},
		{"not in the proxy's pools (keep-alive reverse_proxy): left in", []proxy.DrainResult{proxy.DrainNotPooled}, 3, time.Minute, false, 1},
		{"last of its pool: waits for another", []proxy.DrainResult{proxy.DrainLast, proxy.DrainLast, proxy.Drained}, 0, time.Minute, true, 3},
		{"last of its pool until drain_timeout: left in", []proxy.DrainResult{proxy.DrainLast}, 0, 100 * time.Millisecond, false, -1},
		{"requests outlast drain_timeout: returns", []proxy.DrainResult{proxy.Drained}, 1 << 30, 100 * time.Millisecond, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := &fakePool{results: tc.results, inFlight: map[string]int{up: tc.inFlight}, drained: map[string]bool{}}
			gate := &upGate{gates: map[string]chan error{}}
			f, err := New(Options{StateDir: t.TempDir(), Programs: fakePrograms{}, Pool: func() Pool { return pool }, WaitFor: gate.WaitFor})
			if err != nil {
				t.Fatal(err)
			}
			f.Configure("", NewLinks([]*supervisor.ProcessConfig{webProcess(up)}))
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			f.BeforeStop(ctx, webProcess(up))
			if got := pool.isDrained(up); got != tc.drained {
				t.Fatalf("drained %v, want %v (calls %q)", got, tc.drained, pool.calls)
			}
			pool.mu.Lock()
			tries, left := len(pool.calls), pool.inFlight[up]
			pool.mu.Unlock()
			if tc.tries >= 0 && tries != tc.tries {
				t.Errorf("%d TryDrain calls, want %d", tries, tc.tries)
			}
			if tc.drained && tc.timeout == time.Minute && left != 0 {
				t.Errorf("returned with %d requests in flight", left)
			}
			if !tc.drained {
				return
			}
			gate.gate("web_1") <- nil // up again
			waitUntil(t, "put back once up", func() bool { return !pool.isDrained(up) })
			pool.mu.Lock()
			check, undrain := slices.Index(pool.calls, "check "+up), slices.Index(pool.calls, "undrain "+up)
			pool.mu.Unlock()
			if check < 0 || check > undrain {
				t.Errorf("calls %q: want its health check run before it is put back", pool.calls)
			}
		})
	}
}

// TestBeforeStopRemovedProcess: a process a reload removes stays out
// until the proxy runs the new config (ProxyApplied), then its upstream
// is put back (the proxy no longer has it, or something else serves it).
func TestBeforeStopRemovedProcess(t *testing.T) {
	const up = "127.0.0.1:8002"
	pool := &fakePool{results: []proxy.DrainResult{proxy.Drained}, inFlight: map[string]int{}, drained: map[string]bool{}}
	gate := &upGate{gates: map[string]chan error{}}
	f, err := New(Options{StateDir: t.TempDir(), Programs: fakePrograms{}, Pool: func() Pool { return pool }, WaitFor: gate.WaitFor})
	if err != nil {
		t.Fatal(err)
	}
	p := webProcess(up)
	f.Configure("", NewLinks([]*supervisor.ProcessConfig{p}))
	f.BeforeStop(context.Background(), p)
	gate.gate("web_1") <- errors.New(`program "web_1" was removed`)
	f.Configure("", NewLinks(nil))
	if !pool.isDrained(up) {
		t.Fatal("put back before the proxy runs the new config")
	}
	f.ProxyApplied()
	if pool.isDrained(up) {
		t.Fatal("still out after ProxyApplied")
	}
	if !slices.Contains(pool.calls, "undrain "+up) {
		t.Errorf("calls %q", pool.calls)
	}
}
