package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/client"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/testbin"
)

// TestFleetFront is issue 13's balancing and draining end to end: three
// webservers, each a `hostctl run` with the Django example on gunicorn
// (no celery or rabbitmq: the front only needs the site) on its own
// loopback address (127.0.0.2, .3, .4), and a front (configs/front.toml) on
// 127.0.0.1, all under load from wrk through the front:
//
//   - a rolling deploy, drain -> wait -> restart gunicorn -> undrain on
//     each webserver in turn, fails no request;
//   - kill -9 of one webserver's hostctl and all its programs fails only
//     requests that were in flight on it (counted; usually none, since a
//     GET is retried on another webserver), and the front takes it out of
//     the pool;
//   - once started again, it is back in the pool.
//
// The figures (req/s, failures, drain wait times) are printed with t.Logf
// (go test -v). `make e2e-fleet` runs it.
func TestFleetFront(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four hostctl and three gunicorn, and loads them with wrk: not with -short")
	}
	root := moduleRoot(t)
	if out, err := run(root, os.Environ(), "scripts/e2e-deps.sh"); err != nil {
		t.Fatalf("scripts/e2e-deps.sh: %v\n%s", err, out)
	}
	tmp, err := os.MkdirTemp("", "hostctl-fleet-") // short: unix socket paths
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept %s for a look", tmp)
			return
		}
		os.RemoveAll(tmp)
	})
	bin, err := testbin.Hostctl()
	if err != nil {
		t.Fatal(err)
	}
	env := testbin.Env(os.Environ())
	static := filepath.Join(tmp, "static")
	if out, err := run(root, append(env, "HELLO_STATIC_ROOT="+static),
		"/usr/bin/python3", "configs/django/manage.py", "collectstatic", "--noinput", "-v0"); err != nil {
		t.Fatalf("collectstatic: %v\n%s", err, out)
	}

	var webs []*fleetHost
	for i := range 3 {
		addr := fmt.Sprintf("127.0.0.%d", i+2)
		h := &fleetHost{name: fmt.Sprintf("web%d", i+1), dir: filepath.Join(tmp, fmt.Sprintf("w%d", i+1))}
		h.listen = net.JoinHostPort(addr, strconv.Itoa(freePortOn(t, addr)))
		h.config = filepath.Join(h.dir, "hostctl.toml")
		os.MkdirAll(h.dir, 0o755)
		writeFleetWebserver(t, h, static)
		webs = append(webs, h)
	}
	front := &fleetHost{name: "front", dir: filepath.Join(tmp, "front")}
	front.listen = "127.0.0.1:" + strconv.Itoa(freePortOn(t, "127.0.0.1"))
	front.config = filepath.Join(root, "configs/front.toml")
	os.MkdirAll(front.dir, 0o755)
	frontEnv := append(env[:len(env):len(env)], "FRONT_DIR="+front.dir, "FRONT_LISTEN="+front.listen)
	for i, w := range webs {
		frontEnv = append(frontEnv, fmt.Sprintf("WEBSERVER_%d=%s", i+1, w.listen))
	}
	front.env = frontEnv
	for _, w := range webs {
		w.env = env
	}

	for _, h := range append(webs, front) {
		if out, err := run(root, h.env, bin, "check", "-c", h.config); err != nil {
			t.Fatalf("hostctl check -c %s: %v\n%s", h.config, err, out)
		}
	}
	t.Cleanup(func() {
		for _, h := range append(webs, front) {
			h.stop(t)
		}
	})
	for _, h := range append(webs, front) {
		h.start(t, bin, root)
	}
	for _, w := range webs {
		if _, err := w.d.waitState(0, 60*time.Second, "gunicorn", "RUNNING"); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
	}
	took, err := eventually(30*time.Second, func() error { return front.poolUp(webs...) })
	if err != nil {
		t.Fatalf("the front's pool: %v", err)
	}
	t.Logf("three webservers and the front running; the front had all three in its pool %s later", took.Round(time.Millisecond))
	url := "http://" + front.listen + "/"
	if err := (&site{base: "http://" + front.listen, client: &http.Client{Timeout: 20 * time.Second}}).hello(); err != nil {
		t.Fatalf("through the front: %v", err)
	}

	// cli runs the hostctl command line against host h.
	cli := func(h *fleetHost, args ...string) (string, error) {
		out, err := run(root, h.env, bin, append(args[:1:1], append([]string{"-c", h.config}, args[1:]...)...)...)
		testbin.CheckRace(t, "hostctl "+args[0], nil, out)
		return out, err
	}

	ok := t.Run("rolling restart under load", func(t *testing.T) {
		load := startWrk(t, url, 16, 5*time.Minute)
		load.waitTraffic(t, webs)
		// The README's deploy loop, with the CLI, on each webserver in turn.
		for _, w := range webs {
			t0 := time.Now()
			if out, err := cli(w, "drain", "--wait", "--quiet", "3s", "--timeout", "1m"); err != nil {
				t.Fatalf("%s: hostctl drain --wait: %v\n%s", w.name, err, out)
			}
			drained := time.Since(t0)
			if err := front.poolDown(w); err != nil {
				t.Errorf("%s drained and quiet, but %v", w.name, err)
			}
			if out, err := cli(w, "status"); err != nil || !strings.Contains(out, "DRAINING since") {
				t.Errorf("%s: hostctl status while draining: %v\n%s", w.name, err, out)
			}
			t1 := time.Now()
			if out, err := cli(w, "restart", "gunicorn"); err != nil {
				t.Fatalf("%s: hostctl restart gunicorn: %v\n%s", w.name, err, out)
			}
			restarted := time.Since(t1)
			t2 := time.Now()
			if out, err := cli(w, "undrain", "--wait", "--timeout", "30s"); err != nil {
				t.Fatalf("%s: hostctl undrain --wait: %v\n%s", w.name, err, out)
			}
			if _, err := eventually(30*time.Second, func() error { return front.poolUp(webs...) }); err != nil {
				t.Fatalf("%s undrained and seen healthy, but the front's pool: %v", w.name, err)
			}
			t.Logf("%s: drain --wait %s (quiet 3s), restart gunicorn %s, undrain --wait %s (back in the front's pool)",
				w.name, drained.Round(time.Millisecond), restarted.Round(time.Millisecond), time.Since(t2).Round(time.Millisecond))
		}
		r := load.stop(t)
		t.Logf("wrk -c16 through the front during the rolling restart: %s", r)
		if r.requests == 0 || r.failed() > 0 {
			t.Errorf("the rolling restart must fail no request: %s\n%s", r, r.out)
		}
	})
	if !ok {
		t.FailNow()
	}

	victim := webs[0]
	t.Run("kill -9 one webserver under load", func(t *testing.T) {
		logMark := front.accessLogLines(t)
		load := startWrk(t, url, 16, 12*time.Second)
		load.waitTraffic(t, webs)
		// POSTs beside wrk's GETs: one refused by the dead webserver is
		// retried on another too (it never reached an upstream); Django
		// answers 405 to a POST of /, which shows it got there.
		posts := make(chan []fleetPost, 1)
		go func() { posts <- postLoop(url, load.done) }()
		inFlight := front.upstream(t, victim).Requests
		procs := append([]proc{{pid: victim.d.cmd.Process.Pid}}, descendants(victim.d.cmd.Process.Pid)...)
		killAt := time.Now()
		for _, p := range procs {
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
		<-victim.d.done
		// Its hostctl, whose listener the front dials, has exited: its
		// sockets are closed. A request that began between the kill and
		// this moment raced the death (an exit takes a while on a loaded
		// machine) and is one in flight to it.
		deadAt := time.Now()
		victim.killed = true
		outAfter, err := eventually(30*time.Second, func() error { return front.poolDown(victim) })
		if err != nil {
			t.Error(err)
		}
		why := front.upstream(t, victim).Down
		if out, err := cli(front, "status"); err != nil || !strings.Contains(out, "DOWN") {
			t.Errorf("hostctl status on the front: %v\n%s", err, out)
		} else {
			t.Logf("hostctl status on the front, the killed webserver out of its pool:\n%s", out)
		}
		r := load.wait(t)
		t.Logf("killed %s's hostctl and its %d programs' processes with SIGKILL (%d requests in flight to it just before); "+
			"the front took it out of its pool %s later (%s)", victim.name, len(procs)-1, inFlight, outAfter.Round(time.Millisecond), why)
		t.Logf("wrk -c16 for 12 s through the front around the kill: %s", r)
		if r.requests == 0 {
			t.Fatalf("no request answered:\n%s", r.out)
		}
		// Every failure must be a request that was in flight when the
		// webserver died: it began before the kill. The front's access
		// log has each request's end (ts) and duration.
		var failed []fleetAccess
		if _, err := eventually(30*time.Second, func() error {
			lines := front.accessLog(t, logMark)
			if len(lines) < r.requests {
				return fmt.Errorf("the front's access log has %d lines for wrk's %d requests", len(lines), r.requests)
			}
			failed = failed[:0]
			for _, l := range lines {
				if l.Status >= 500 {
					failed = append(failed, l)
				}
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
		for _, l := range failed {
			if l.start().After(deadAt) {
				t.Errorf("a request that began %s after the kill (%s after %s's hostctl had exited) failed: %+v", l.start().Sub(killAt), l.start().Sub(deadAt), victim.name, l)
			}
		}
		if r.socketErrors > 0 {
			t.Errorf("wrk saw socket errors (the front dropped connections): %s", r)
		}
		ps := <-posts
		var postFailed, postLate int
		for _, p := range ps {
			if p.err != "" {
				postFailed++
				if p.start.After(deadAt) {
					postLate++
					t.Errorf("a POST that began %s after the kill (%s after %s's hostctl had exited) failed: %s", p.start.Sub(killAt), p.start.Sub(deadAt), victim.name, p.err)
				}
			}
		}
		t.Logf("failed requests: %d of wrk's GETs (%d non-2xx, %d socket errors; the front logged %d answers >= 500), %d of %d POSTs beside them; "+
			"%d were in flight to %s; its hostctl exited %s after the kill; none begun after that failed", r.failed(), r.non2xx, r.socketErrors, len(failed), postFailed, len(ps), inFlight, victim.name, deadAt.Sub(killAt).Round(time.Millisecond))
	})

	t.Run("the killed webserver comes back", func(t *testing.T) {
		t0 := time.Now()
		victim.killed = false
		victim.start(t, bin, root)
		if _, err := eventually(60*time.Second, func() error { return front.poolUp(webs...) }); err != nil {
			t.Fatal(err)
		}
		back := time.Since(t0)
		// And it serves: a request through the front reaches its new
		// gunicorn (the hello view names its master's pid).
		spawn, ok := victim.d.lastSpawn("gunicorn")
		if !ok {
			t.Fatalf("%s: no gunicorn spawned", victim.name)
		}
		client := &http.Client{Timeout: 20 * time.Second}
		if _, err := eventually(20*time.Second, func() error {
			resp, err := client.Get(url)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if by := resp.Header.Get("X-Served-By"); !strings.HasPrefix(by, strconv.Itoa(spawn.PID)+"/") {
				return fmt.Errorf("served by gunicorn %s, not %s's (%d)", by, victim.name, spawn.PID)
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
		t.Logf("%s started again: back in the front's pool %s after its hostctl started, and serving", victim.name, back.Round(time.Millisecond))
	})
}

// fleetHost is one hostctl of the fleet test: a webserver or the front.
type fleetHost struct {
	name   string
	dir    string // its config (webservers), admin socket, state, logs
	listen string // its proxy's address
	config string
	env    []string
	d      *daemon
	killed bool // by the test: nothing to stop
}

func (h *fleetHost) start(t *testing.T, bin, root string) {
	h.d = startConfigDaemon(t, bin, root, h.config, h.env)
}

// stop stops the daemon with SIGTERM and checks its log for data races.
func (h *fleetHost) stop(t *testing.T) {
	if h.d == nil || h.killed {
		return
	}
	if err := h.d.stop(60 * time.Second); err != nil {
		t.Errorf("%s: %v", h.name, err)
		h.d.cmd.Process.Kill()
		<-h.d.done
	}
	testbin.CheckRace(t, h.name+": hostctl run", h.d.cmd.ProcessState, h.d.logText())
	if t.Failed() {
		t.Logf("%s's hostctl log (last 4 kB):\n%s", h.name, lastBytes(h.d.logText(), 4000))
	}
}

func lastBytes(s string, n int) string { return s[max(0, len(s)-n):] }

func (h *fleetHost) client() *client.Client {
	return &client.Client{Socket: filepath.Join(h.dir, "hostctl.sock")}
}

// upstream is the front's view of webserver w.
func (h *fleetHost) upstream(t *testing.T, w *fleetHost) apitype.ProxyUpstreamStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, _, err := h.client().Proxy(ctx)
	if err != nil {
		t.Fatalf("%s: %v", h.name, err)
	}
	for _, u := range st.Upstreams {
		if u.Address == w.listen {
			return u
		}
	}
	t.Fatalf("%s: no upstream %s in %+v", h.name, w.listen, st.Upstreams)
	return apitype.ProxyUpstreamStatus{}
}

// poolUp checks that the front has every webserver in its pool.
func (h *fleetHost) poolUp(webs ...*fleetHost) error {
	return h.pool(func(u apitype.ProxyUpstreamStatus) error {
		if !u.Healthy {
			return fmt.Errorf("%s is out of the pool: %s", u.Address, u.Down)
		}
		return nil
	}, webs...)
}

// poolDown checks that the front has taken webserver w out of its pool.
func (h *fleetHost) poolDown(w *fleetHost) error {
	return h.pool(func(u apitype.ProxyUpstreamStatus) error {
		if u.Healthy {
			return fmt.Errorf("the front still has %s in its pool", u.Address)
		}
		return nil
	}, w)
}

func (h *fleetHost) pool(check func(apitype.ProxyUpstreamStatus) error, webs ...*fleetHost) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, _, err := h.client().Proxy(ctx)
	if err != nil {
		return err
	}
	for _, w := range webs {
		found := false
		for _, u := range st.Upstreams {
			if u.Address == w.listen {
				found = true
				if err := check(u); err != nil {
					return err
				}
			}
		}
		if !found {
			return fmt.Errorf("no upstream %s in the front's status", w.listen)
		}
	}
	return nil
}

// fleetAccess is one line of the front's access log.
type fleetAccess struct {
	TS       float64 `json:"ts"`
	Duration float64 `json:"duration"`
	Status   int     `json:"status"`
}

func (a fleetAccess) start() time.Time {
	return time.Unix(0, int64((a.TS-a.Duration)*1e9))
}

// accessLogLines is the number of lines in the front's access log now.
func (h *fleetHost) accessLogLines(t *testing.T) int { return len(h.accessLog(t, 0)) }

// accessLog returns the lines of the front's access log after the first
// skip.
func (h *fleetHost) accessLog(t *testing.T, skip int) []fleetAccess {
	f, err := os.Open(filepath.Join(h.dir, "log", "access.log"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fleetAccess
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 0; sc.Scan(); n++ {
		if n < skip {
			continue
		}
		var a fleetAccess
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("access log line %d: %v: %s", n+1, err, sc.Text())
		}
		out = append(out, a)
	}
	return out
}

// writeFleetWebserver writes webserver h's config: gunicorn with the
// Django example on a unix socket, hostctl's proxy on h.listen with
// health_path, as configs/webserver.toml has them.
func writeFleetWebserver(t *testing.T, h *fleetHost, static string) {
	sock := filepath.Join(h.dir, "gunicorn.sock")
	cfg := fmt.Sprintf(`[admin]
socket = %[1]q
state_dir = %[2]q

[log]
dir = %[3]q

[program.gunicorn]
command = "/usr/bin/gunicorn -c configs/django/gunicorn.conf.py"
stop_signal = "TERM"
stop_timeout = "15s"
ready = { http = "http://localhost/healthz", socket = %[4]q, interval = "100ms", timeout = "5s", deadline = "60s" }

[program.gunicorn.environment]
HELLO_GUNICORN_BIND = %[5]q
HELLO_GUNICORN_WORKERS = "2"
HELLO_STATIC_ROOT = %[6]q

[proxy]
listen = %[7]q
upstream = %[5]q
retry_for = "10s"
health_path = "/.hostctl/health"
`, filepath.Join(h.dir, "hostctl.sock"), filepath.Join(h.dir, "state"), filepath.Join(h.dir, "log"),
		sock, "unix:"+sock, static, h.listen)
	if err := os.WriteFile(h.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// freePortOn returns a TCP port that was free on addr a moment ago.
func freePortOn(t testing.TB, addr string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatalf("listening on %s (the whole of 127.0.0.0/8 is local on Linux): %v", addr, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// wrkRun is a wrk run in the background.
type wrkRun struct {
	cmd   *exec.Cmd
	out   strings.Builder
	done  chan struct{}
	start time.Time
}

// startWrk starts wrk with conns connections on url for at most d.
func startWrk(t *testing.T, url string, conns int, d time.Duration) *wrkRun {
	t.Helper()
	w := &wrkRun{done: make(chan struct{}), start: time.Now()}
	// --timeout: a request the front holds while it retries is slow, not
	// failed; wrk's default (2 s) would count it as an error.
	w.cmd = exec.Command("wrk", "-t2", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(int(d.Seconds()))+"s", "--timeout", "30s", url)
	w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			w.cmd.Process.Kill()
			<-w.done
		}
	})
	return w
}

// waitTraffic waits until each webserver has received a request since
// wrk started (its health_path's traffic count).
func (w *wrkRun) waitTraffic(t *testing.T, webs []*fleetHost) {
	t.Helper()
	for _, h := range webs {
		if _, err := eventually(20*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := h.client().Drain(ctx)
			if err != nil {
				return err
			}
			if st.LastRequest == nil || st.LastRequest.Before(w.start) {
				return fmt.Errorf("%s has had no request from wrk", h.name)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// wait waits for the run's end and returns its result.
func (w *wrkRun) wait(t *testing.T) wrkResult {
	t.Helper()
	<-w.done
	return parseWrk(t, w.out.String())
}

// fleetPost is one POST of postLoop: when it began, why it failed ("" if
// a webserver answered it).
type fleetPost struct {
	start time.Time
	err   string
}

// postLoop POSTs to url, one at a time, until done is closed; a POST
// fails unless Django answers it (405: only GET is allowed there).
func postLoop(url string, done <-chan struct{}) []fleetPost {
	client := &http.Client{Timeout: 30 * time.Second}
	var out []fleetPost
	for {
		select {
		case <-done:
			return out
		default:
		}
		p := fleetPost{start: time.Now()}
		resp, err := client.Post(url, "text/plain", strings.NewReader("x=1"))
		switch {
		case err != nil:
			p.err = err.Error()
		case resp.StatusCode != http.StatusMethodNotAllowed:
			p.err = resp.Status
		}
		if resp != nil {
			resp.Body.Close()
		}
		out = append(out, p)
	}
}

// stop ends the run and returns its result. wrk's SIGINT handler only
// sets a flag; its main thread, asleep for the run's duration, reports
// once woken. So SIGINT goes to that thread (its tid is the pid): sent to
// the process, it may land on a worker thread, which stops the load but
// leaves the main thread asleep.
func (w *wrkRun) stop(t *testing.T) wrkResult {
	t.Helper()
	pid := w.cmd.Process.Pid
	syscall.Tgkill(pid, pid, syscall.SIGINT)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		w.cmd.Process.Kill()
		<-w.done
		t.Fatalf("wrk did not stop on SIGINT:\n%s", w.out.String())
	}
	return parseWrk(t, w.out.String())
}

type wrkResult struct {
	requests     int
	seconds      float64
	perSecond    float64
	non2xx       int
	socketErrors int
	p99          string
	out          string
}

func (r wrkResult) failed() int { return r.non2xx + r.socketErrors }

func (r wrkResult) String() string {
	return fmt.Sprintf("%d requests in %.1fs (%.0f req/s), %d non-2xx, %d socket errors",
		r.requests, r.seconds, r.perSecond, r.non2xx, r.socketErrors)
}

var (
	wrkRequests = regexp.MustCompile(`(\d+) requests in ([\d.]+)(us|ms|s|m|h),`)
	wrkRate     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func parseWrk(t *testing.T, out string) wrkResult {
	t.Helper()
	r := wrkResult{out: out}
	m := wrkRequests.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no request count in wrk's output:\n%s", out)
	}
	r.requests, _ = strconv.Atoi(m[1])
	r.seconds, _ = strconv.ParseFloat(m[2], 64)
	r.seconds *= map[string]float64{"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[m[3]]
	if m := wrkRate.FindStringSubmatch(out); m != nil {
		r.perSecond, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.non2xx, _ = strconv.Atoi(m[1])
	}
	if m := wrkSocket.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			r.socketErrors += n
		}
	}
	return r
}
