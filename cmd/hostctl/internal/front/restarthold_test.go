package front

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/hostctl/hostctl/proxy"
	"github.com/hostctl/hostctl/supervisor"
)

// TestMain lets the test binary act as the program behind the proxy, like
// os/exec's tests: HCT_FRONT_HELPER selects what it does.
func TestMain(m *testing.M) {
	if os.Getenv("HCT_FRONT_HELPER") == "slowserver" {
		os.Exit(slowServer(os.Args[1:]))
	}
	// Caddy's default storage (the proxy's TLS state) goes here.
	dir, err := os.MkdirTemp("", "hostctl-front-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_DATA_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// slowServer is a web server that is slow to start and to stop, like a
// gunicorn under load: slowserver ADDR START_DELAY STOP_DELAY DIR. It
// waits START_DELAY before it listens on ADDR, then answers every request
// with its pid; on SIGTERM it closes its listener and exits STOP_DELAY
// later ("fifo": once something is written to DIR/stop.fifo). If DIR/fail
// exists when it starts, it never listens: it exits 1 once something is
// written to DIR/fail.fifo (a start that fails when the test says).
func slowServer(args []string) int {
	addr, dir := args[0], args[3]
	startDelay, _ := time.ParseDuration(args[1])
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	time.Sleep(startDelay)
	if _, err := os.Stat(filepath.Join(dir, "fail")); err == nil {
		os.ReadFile(filepath.Join(dir, "fail.fifo"))
		return 1
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pid := fmt.Sprint(os.Getpid())
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, pid) }))
	<-term
	ln.Close()
	if args[2] == "fifo" {
		os.ReadFile(filepath.Join(dir, "stop.fifo"))
	} else {
		d, _ := time.ParseDuration(args[2])
		time.Sleep(d)
	}
	return 0
}

// holdRig is a real supervisor running slowServer as program "web", the
// real proxy in front of it (its single upstream, so held during a
// stop), and the front between them, wired as the daemon wires them.
type holdRig struct {
	t      *testing.T
	sup    *supervisor.Supervisor
	px     *proxy.Proxy
	up     string // the program's address, the proxy's upstream
	listen string // the proxy's
	dir    string // the helper's fifos and fail file
}

// newHoldRig starts the rig with the proxy's retry_for and the
// helper's delays (stopDelay "fifo": the stop waits for writeFifo), and
// waits until the program is RUNNING.
func newHoldRig(t *testing.T, retryFor time.Duration, startDelay, stopDelay string, edit func(*supervisor.ProgramConfig)) *holdRig {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r := &holdRig{t: t, up: freeTCPAddr(t), listen: freeTCPAddr(t), dir: t.TempDir()}
	for _, f := range []string{"stop.fifo", "fail.fifo"} {
		if err := syscall.Mkfifo(filepath.Join(r.dir, f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))

	r.px = proxy.New(proxy.Options{Logger: zap.NewNop(), StateDir: t.TempDir()})
	if err := r.px.Apply(proxy.Config{Listen: r.listen, Upstream: r.up, RetryFor: &retryFor}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.px.Stop() })

	p := supervisor.DefaultProgramConfig("web")
	p.Command = supervisor.Command{exe, r.up, startDelay, stopDelay, r.dir}
	p.Environment = map[string]string{"HCT_FRONT_HELPER": "slowserver"}
	p.Serves = supervisor.Serves{r.up}
	p.StartSecs = 0
	p.StartRetries = 0
	p.DrainTimeout = time.Second
	ready := supervisor.DefaultProbeConfig()
	ready.TCP = r.up
	p.Ready = &ready
	if edit != nil {
		edit(&p)
	}
	if errs := p.Validate("program.web"); len(errs) > 0 {
		t.Fatalf("invalid test config: %v", errs)
	}
	f, err := New(Options{StateDir: t.TempDir(), Logger: log.Named("front"), Pool: func() Pool { return r.px },
		WaitFor: func(ctx context.Context, name string, cond func(supervisor.Status) bool) (supervisor.Status, error) {
			return r.sup.WaitFor(ctx, name, cond)
		}})
	if err != nil {
		t.Fatal(err)
	}
	f.Configure("", NewLinks([]*supervisor.ProcessConfig{{Name: "web", Program: &p}}))
	r.sup, err = supervisor.New([]*supervisor.ProgramConfig{&p}, supervisor.Options{Logger: log.Named("supervisor"), StateDir: t.TempDir(), BeforeStop: f.BeforeStop})
	if err != nil {
		t.Fatal(err)
	}
	r.sup.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r.writeFifo("stop.fifo", true) // a helper still waiting to stop
		if err := r.sup.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.sup.StartAutostart(ctx); err != nil {
		t.Fatal(err)
	}
	r.waitFor("RUNNING", func(st supervisor.Status) bool { return st.State == supervisor.Running })
	return r
}

func freeTCPAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitFor waits (at most 2 minutes) until web's status meets cond.
func (r *holdRig) waitFor(what string, cond func(supervisor.Status) bool) supervisor.Status {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := r.sup.WaitFor(ctx, "web", cond)
	if err != nil {
		r.t.Fatalf("waiting for web %s: %v (last: %s %s)", what, err, st.State, st.Info)
	}
	return st
}

// held is how many requests the proxy holds for the upstream now.
func (r *holdRig) held() int {
	for _, u := range r.px.Status().Upstreams {
		if u.Address == r.up {
			return u.Held
		}
	}
	return 0
}

// waitHeld waits (bounded) until the proxy holds n requests.
func (r *holdRig) waitHeld(n int) {
	r.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for r.held() < n {
		if time.Now().After(deadline) {
			r.t.Fatalf("the proxy holds %d requests, want %d", r.held(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitDraining waits (bounded) until the proxy holds the upstream: the
// front has taken it out before the stop.
func (r *holdRig) waitDraining() {
	r.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !r.px.Draining(r.up) {
		if time.Now().After(deadline) {
			r.t.Fatal("the upstream is not held a minute after the stop began")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeFifo lets the helper waiting on name go on. Without quiet it waits
// (bounded) for the helper to be reading it.
func (r *holdRig) writeFifo(name string, quiet bool) {
	deadline := time.Now().Add(time.Minute)
	for {
		f, err := os.OpenFile(filepath.Join(r.dir, name), os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			f.WriteString("go")
			f.Close()
			return
		}
		if quiet {
			return
		}
		if !errors.Is(err, syscall.ENXIO) || time.Now().After(deadline) {
			r.t.Fatalf("%s: nobody reads it: %v", name, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// result is one GET through the proxy.
type result struct {
	status  int
	body    string
	err     error
	whileOn bool // sent while the upstream was held (its program restarting)
}

// get GETs / through the proxy; a client that waits longer than timeout
// gives up.
func (r *holdRig) get(timeout time.Duration) result {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + r.listen + "/")
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, body: string(b), err: err}
}

func (r *holdRig) pid() string {
	r.t.Helper()
	sts, err := r.sup.Status("web")
	if err != nil {
		r.t.Fatal(err)
	}
	return fmt.Sprint(sts[0].PID)
}

// TestRestartHoldOutlastsRetryFor: a single upstream's program that takes
// longer to stop and to start again than the site's retry_for (the hold's
// old fixed bound) loses no request under a request loop: the requests
// sent while it restarts are held until the new process is up and are
// answered by it (issue 18).
func TestRestartHoldOutlastsRetryFor(t *testing.T) {
	// retry_for 1s; the stop takes 2s after drain, the start 2s.
	r := newHoldRig(t, time.Second, "2s", "2s", nil)
	oldPID := r.pid()
	if res := r.get(time.Minute); res.status != 200 || res.body != oldPID {
		t.Fatalf("before the restart: %d %q %v, want 200 %s", res.status, res.body, res.err, oldPID)
	}

	stop := make(chan struct{})
	var mu sync.Mutex
	var results []result
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				on := r.px.Draining(r.up)
				res := r.get(2 * time.Minute)
				res.whileOn = on
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.sup.RestartProcesses(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	// Requests sent once it is held, while the old process stops.
	r.waitDraining()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := r.get(2 * time.Minute)
			res.whileOn = true
			mu.Lock()
			results = append(results, res)
			mu.Unlock()
		}()
	}
	st := r.waitFor("RUNNING with a new process", func(st supervisor.Status) bool {
		return st.State == supervisor.Running && fmt.Sprint(st.PID) != oldPID
	})
	newPID := fmt.Sprint(st.PID)
	// The upstream goes back once the new process is up; then a few more
	// requests.
	deadline := time.Now().Add(time.Minute)
	for r.px.Draining(r.up) {
		if time.Now().After(deadline) {
			t.Fatal("the upstream is still held a minute after the new process is RUNNING")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if res := r.get(time.Minute); res.status != 200 || res.body != newPID {
		t.Errorf("after the restart: %d %q %v, want 200 %s", res.status, res.body, res.err, newPID)
	}
	close(stop)
	wg.Wait()

	failed, heldN := map[string]int{}, 0
	for _, res := range results {
		switch {
		case res.err != nil:
			failed[res.err.Error()]++
		case res.status != 200:
			failed[fmt.Sprintf("status %d", res.status)]++
		case res.whileOn:
			heldN++
			if res.body != newPID {
				t.Errorf("a request sent while web restarted was answered by pid %s, want the new process %s", res.body, newPID)
			}
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d requests, failed: %v", len(results), failed)
	}
	if heldN == 0 {
		t.Errorf("no request of %d was sent while web restarted", len(results))
	}
	t.Logf("%d requests, %d sent while web restarted, pid %s -> %s", len(results), heldN, oldPID, newPID)
}

// sendHeld sends n GETs (clients that give up after timeout) once the
// upstream is held, and waits until the proxy holds them all.
func (r *holdRig) sendHeld(n int, timeout time.Duration) <-chan result {
	r.t.Helper()
	out := make(chan result, n)
	for range n {
		go func() { out <- r.get(timeout) }()
	}
	r.waitHeld(n)
	return out
}

// checkErrorPage checks that each of the n held requests got the error
// page (502) rather than waiting for the client's timeout.
func checkErrorPage(t *testing.T, n int, out <-chan result) {
	t.Helper()
	for range n {
		res := <-out
		if res.err != nil || res.status != http.StatusBadGateway || !strings.Contains(res.body, "502") {
			t.Errorf("held request: %d %v, want 502 with the error page at once; body %.200q", res.status, res.err, res.body)
		}
	}
}

// TestStopReleasesHeldRequests: a plain stop of a site's only program
// does not hold requests until some bound: those held while it stops get
// the error page as soon as it is STOPPED, well before retry_for (set
// longer than the clients wait), and later requests are not held.
func TestStopReleasesHeldRequests(t *testing.T) {
	const clientWait = 20 * time.Second
	r := newHoldRig(t, time.Minute, "0s", "fifo", func(p *supervisor.ProgramConfig) {
		p.StopTimeout = 5 * time.Minute
		p.Ready.Deadline = 5 * time.Minute
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.sup.StopProcesses(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	r.waitFor("STOPPING", func(st supervisor.Status) bool { return st.State == supervisor.Stopping })
	r.waitDraining()
	if sts, err := r.sup.Status("web"); err != nil || sts[0].Restarting {
		t.Errorf("a plain stop reads as Restarting (%v)", err)
	}
	out := r.sendHeld(3, clientWait)
	r.writeFifo("stop.fifo", false) // now it exits
	r.waitFor("STOPPED", func(st supervisor.Status) bool { return st.State == supervisor.Stopped })
	checkErrorPage(t, 3, out)
	if r.px.Draining(r.up) {
		t.Error("the upstream is still held after its program stopped")
	}
}

// TestFatalDuringRestartReleasesHeldRequests: a program that goes FATAL
// while it restarts (its new process exits before it is ready) releases
// the requests held for it with the error page at once, though its
// config would let it take minutes to start.
func TestFatalDuringRestartReleasesHeldRequests(t *testing.T) {
	const clientWait = 20 * time.Second
	r := newHoldRig(t, time.Minute, "0s", "0s", func(p *supervisor.ProgramConfig) {
		p.Ready.Deadline = 5 * time.Minute
	})
	oldPID := r.pid()
	if err := os.WriteFile(filepath.Join(r.dir, "fail"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.sup.RestartProcesses(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	r.waitFor("STARTING a new process", func(st supervisor.Status) bool {
		return st.State == supervisor.Starting && st.PID != 0 && fmt.Sprint(st.PID) != oldPID
	})
	if !r.px.Draining(r.up) {
		t.Fatal("not held while the new process starts")
	}
	out := r.sendHeld(3, clientWait)
	r.writeFifo("fail.fifo", false) // now the start fails
	r.waitFor("FATAL", func(st supervisor.Status) bool { return st.State == supervisor.Fatal })
	checkErrorPage(t, 3, out)
	if r.px.Draining(r.up) {
		t.Error("the upstream is still held after its program went FATAL")
	}
}
