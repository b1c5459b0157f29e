package watch

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/front"
	"github.com/hostctl/hostctl/proxy"
	"github.com/hostctl/hostctl/supervisor"
)

// The rules, driven by a fake clock: each test walks a table of steps,
// each moving the clock and changing what the fakes report, then runs one
// round of the rules (check) and compares the active alerts.

// fakeSup is the supervisor: one status per process.
type fakeSup struct {
	sts     map[string]supervisor.Status
	dropped map[string]uint64
}

func (f *fakeSup) Status(names ...string) ([]supervisor.Status, error) {
	var out []supervisor.Status
	for _, n := range slices.Sorted(maps.Keys(f.sts)) {
		if len(names) == 0 || slices.Contains(names, n) {
			out = append(out, f.sts[n])
		}
	}
	return out, nil
}
func (f *fakeSup) Dropped(name string) uint64 { return f.dropped[name] }
func (f *fakeSup) Log(string, string) (supervisor.LogStream, error) {
	return nil, errors.New("no log in this test")
}
func (f *fakeSup) Changed() <-chan struct{}              { return make(chan struct{}) }
func (f *fakeSup) WaitSettled(ctx context.Context) error { return nil }

type fakeLogs struct{ paused string }

func (f *fakeLogs) KeepFreePaused() (bool, string) { return f.paused != "", f.paused }

type fakeProxy struct {
	st         proxy.Status
	configured bool
}

func (f *fakeProxy) Status() (proxy.Status, string, bool) { return f.st, "", f.configured }
func (f *fakeProxy) Ready() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

// fakeAlerts keeps the active alerts by key.
type fakeAlerts struct{ active map[string]alert.Alert }

func (f *fakeAlerts) Set(a alert.Alert) { f.active[a.Key] = a }
func (f *fakeAlerts) Clear(key, how string) bool {
	_, ok := f.active[key]
	delete(f.active, key)
	return ok
}
func (f *fakeAlerts) IsActive(key string) bool { _, ok := f.active[key]; return ok }
func (f *fakeAlerts) Keys() []string           { return slices.Sorted(maps.Keys(f.active)) }
func (f *fakeAlerts) Host() string             { return "web1" }
func (f *fakeAlerts) ResolveInherited(string)  {}

type fakeHost struct {
	mem   MemoryInfo
	disks map[string]DiskInfo
}

func (f *fakeHost) Memory() (MemoryInfo, error) { return f.mem, nil }
func (f *fakeHost) Disk(path string) (DiskInfo, error) {
	d, ok := f.disks[path]
	if !ok {
		return DiskInfo{}, errors.New("no such path")
	}
	return d, nil
}

// world is a watcher on fakes, with a clock that moves only when told.
type world struct {
	sup    *fakeSup
	logs   *fakeLogs
	proxy  *fakeProxy
	alerts *fakeAlerts
	host   *fakeHost
	up     map[string]bool // upstreams that accept connections
	cfg    Config
	now    time.Time
	w      *Watcher
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newWorld() *world {
	acfg := alert.DefaultConfig()
	acfg.MemoryAvailableBelow = "" // off unless a test turns it on
	acfg.DiskFreeBelow = ""
	x := &world{
		sup:    &fakeSup{sts: map[string]supervisor.Status{}, dropped: map[string]uint64{}},
		logs:   &fakeLogs{},
		proxy:  &fakeProxy{},
		alerts: &fakeAlerts{active: map[string]alert.Alert{}},
		host:   &fakeHost{disks: map[string]DiskInfo{}},
		up:     map[string]bool{},
		cfg:    Config{Alerts: acfg, LogDir: "/var/log/hostctl"},
		now:    t0,
	}
	x.w = New(Options{Supervisor: x.sup, Logs: x.logs, Proxy: x.proxy, Alerts: x.alerts, Host: x.host,
		Config: func() Config { return x.cfg }, StatusLine: func() string { return "1 running, 0 fatal" },
		Dial: func(_ context.Context, addr string) error {
			if x.up[addr] {
				return nil
			}
			return errors.New("connection refused")
		},
		Now: func() time.Time { return x.now }})
	return x
}

// step is one moment of a scenario.
type step struct {
	what    string
	advance time.Duration  // the clock moves first
	change  func(x *world) // then the world changes
	active  []string       // the alert keys active after the round
	check   func(*testing.T, *world)
}

func run(t *testing.T, x *world, steps []step) {
	t.Helper()
	for i, s := range steps {
		x.now = x.now.Add(s.advance)
		if s.change != nil {
			s.change(x)
		}
		x.w.check(x.cfg, x.now)
		if got := x.alerts.Keys(); !slices.Equal(got, s.active) && !(len(got) == 0 && len(s.active) == 0) {
			t.Fatalf("step %d (%s) at +%s: active %q, want %q", i, s.what, x.now.Sub(t0), got, s.active)
		}
		if s.check != nil {
			s.check(t, x)
		}
	}
}

// prog sets the status of program name: state since the clock's now
// minus ago, with restarts and generation.
func prog(name string, state supervisor.State, ago time.Duration, restarts int, gen uint64) func(*world) {
	return func(x *world) {
		st := x.sup.sts[name]
		st.Name, st.State, st.StateSince, st.Restarts, st.Generation = name, state, x.now.Add(-ago), restarts, gen
		if state == supervisor.Running {
			st.PID, st.StartedAt = 100+int(gen), st.StateSince
		}
		x.sup.sts[name] = st
	}
}

func TestCrashLoop(t *testing.T) {
	const key = "crash_loop:web"
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"triggers above crash_loop_restarts and resolves with hysteresis", []step{
			{what: "first sight", change: prog("web", supervisor.Running, time.Hour, 0, 1)},
			{what: "5 restarts: at the limit", advance: time.Minute, change: prog("web", supervisor.Backoff, 0, 5, 6)},
			{what: "a 6th within the window", advance: time.Minute, change: prog("web", supervisor.Starting, 0, 6, 7), active: []string{key}},
			{what: "running, not yet settle", advance: 30 * time.Second, change: prog("web", supervisor.Running, 30*time.Second, 6, 7), active: []string{key}},
			{what: "settled, but 6 restarts still in the window", advance: time.Minute, active: []string{key}},
			{what: "window passed: 0 restarts, settled", advance: 10 * time.Minute},
		}},
		{"just under the threshold does not flap", []step{
			{what: "first sight", change: prog("web", supervisor.Running, time.Hour, 0, 1)},
			{what: "3 restarts", advance: time.Minute, change: prog("web", supervisor.Running, 0, 3, 4)},
			{what: "3 more: 6 in the window", advance: 4 * time.Minute, change: prog("web", supervisor.Running, 0, 6, 7), active: []string{key}},
			{what: "settled; the first 3 aged out, 3 still count (more than half of 5)", advance: 6*time.Minute + 30*time.Second, active: []string{key}},
			{what: "all aged out", advance: 4 * time.Minute},
		}},
		{"stopped on request resolves at once", []step{
			{what: "first sight", change: prog("web", supervisor.Running, time.Hour, 0, 1)},
			{what: "6 restarts", advance: time.Minute, change: prog("web", supervisor.Backoff, 0, 6, 7), active: []string{key}},
			{what: "hostctl stop web", advance: time.Second, change: prog("web", supervisor.Stopped, 0, 6, 7)},
		}},
		{"counts start at first sight", []step{
			{what: "first sight with 40 restarts behind it", change: prog("web", supervisor.Running, time.Hour, 40, 41)},
			{what: "one more", advance: time.Minute, change: prog("web", supervisor.Running, 0, 41, 42)},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { run(t, newWorld(), tc.steps) })
	}
}

// TestSettle: health_restart and memory_limit resolve once a newer
// process has run settle (and, for health, passes its check); log_dropped
// once nothing was dropped for settle.
func TestSettle(t *testing.T) {
	health := func(restarts int, healthy bool) func(*world) {
		return func(x *world) {
			st := x.sup.sts["web"]
			st.Health = &supervisor.HealthStatus{Restarts: restarts, Healthy: healthy, Failures: 3, LastError: "GET /up: 500"}
			x.sup.sts["web"] = st
		}
	}
	both := func(fs ...func(*world)) func(*world) {
		return func(x *world) {
			for _, f := range fs {
				f(x)
			}
		}
	}
	memory := func(restarts int) func(*world) {
		return func(x *world) {
			st := x.sup.sts["web"]
			st.MemoryRestarts, st.MemoryLimit, st.MemoryRestartRSS = restarts, 512<<20, 600<<20
			x.sup.sts["web"] = st
		}
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"health restart", []step{
			{what: "first sight", change: both(prog("web", supervisor.Running, time.Hour, 0, 1), health(0, true))},
			{what: "restarted by its health check: the old process stops", advance: time.Second, change: both(prog("web", supervisor.Stopping, 0, 0, 1), health(1, false)), active: []string{"health_restart:web"}},
			{what: "the same process back to RUNNING cannot resolve it", advance: 2 * time.Minute, change: both(prog("web", supervisor.Running, 2*time.Minute, 0, 1), health(1, true)), active: []string{"health_restart:web"}},
			{what: "running again, not settled", advance: 10 * time.Second, change: both(prog("web", supervisor.Running, 10*time.Second, 0, 2), health(1, true)), active: []string{"health_restart:web"}},
			{what: "settled but failing again", advance: time.Minute, change: health(1, false), active: []string{"health_restart:web"}},
			{what: "settled and healthy", advance: time.Second, change: health(1, true)},
		}},
		{"memory restart", []step{
			{what: "first sight", change: prog("web", supervisor.Running, time.Hour, 0, 1)},
			{what: "restarted above memory_limit: the old process stops", advance: time.Second, change: both(prog("web", supervisor.Stopping, 0, 0, 1), memory(1)), active: []string{"memory_limit:web"},
				check: func(t *testing.T, x *world) {
					if s := x.alerts.active["memory_limit:web"].Summary; !strings.Contains(s, "629.15MB") || !strings.Contains(s, "536.87MB") {
						t.Errorf("summary %q, want the RSS and the limit", s)
					}
				}},
			{what: "the new process runs", advance: time.Second, change: prog("web", supervisor.Running, 0, 0, 2), active: []string{"memory_limit:web"}},
			{what: "59s later", advance: 59 * time.Second, active: []string{"memory_limit:web"}},
			{what: "settle passed", advance: time.Second},
		}},
		{"log dropped", []step{
			{what: "first sight", change: prog("web", supervisor.Running, time.Hour, 0, 1)},
			{what: "output dropped", advance: time.Second, change: func(x *world) { x.sup.dropped["web"] = 4096 }, active: []string{"log_dropped:web"}},
			{what: "more dropped", advance: 30 * time.Second, change: func(x *world) { x.sup.dropped["web"] = 8192 }, active: []string{"log_dropped:web"}},
			{what: "nothing more for 59s", advance: 59 * time.Second, active: []string{"log_dropped:web"}},
			{what: "nothing more for settle", advance: time.Second},
		}},
		{"fatal, then removed from the config", []step{
			{what: "first sight, FATAL", change: prog("web", supervisor.Fatal, 0, 0, 4), active: []string{"fatal:web"}},
			{what: "a reload removed it", advance: time.Second, change: func(x *world) { delete(x.sup.sts, "web") }},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { run(t, newWorld(), tc.steps) })
	}
}

// TestDiskResolve: disk_free triggers below the threshold, resolves only
// 1% of the size above it (no flapping), is checked every check_interval
// only, and resolves when the path is no longer watched.
func TestDiskResolve(t *testing.T) {
	const gb = 1 << 30
	free := func(path string, f uint64) func(*world) {
		return func(x *world) { x.host.disks[path] = DiskInfo{Path: path, Size: 100 * gb, Free: f, Device: 1} }
	}
	on := func(x *world) { x.cfg.Alerts.DiskFreeBelow = "10%" }
	key := "disk_free:/var/log/hostctl"
	run(t, newWorld(), []step{
		{what: "plenty free", change: func(x *world) { on(x); free("/var/log/hostctl", 50*gb)(x) }},
		{what: "below 10% but before check_interval", advance: 10 * time.Second, change: free("/var/log/hostctl", 9*gb)},
		{what: "checked", advance: 20 * time.Second, active: []string{key}},
		{what: "10.5%: above the threshold, below its margin", advance: 30 * time.Second, change: free("/var/log/hostctl", 10*gb+gb/2), active: []string{key}},
		{what: "11%", advance: 30 * time.Second, change: free("/var/log/hostctl", 11*gb)},
		{what: "below again", advance: 30 * time.Second, change: free("/var/log/hostctl", 5*gb), active: []string{key}},
		{what: "threshold turned off by a reload", advance: 30 * time.Second, change: func(x *world) { x.cfg.Alerts.DiskFreeBelow = "" }},
	})
	// Two paths on one filesystem alert once.
	run(t, newWorld(), []step{
		{what: "log dir and disk_paths on one device", change: func(x *world) {
			on(x)
			x.cfg.Alerts.DiskPaths = []string{"/srv/media"}
			free("/var/log/hostctl", 1*gb)(x)
			free("/srv/media", 1*gb)(x)
		}, active: []string{key}},
	})
}

// TestTLSResolve: tls_expiring resolves when the certificate is renewed
// or no longer served; tls_renewal_failed when the certificate is
// obtained, or the proxy no longer serves its host.
func TestTLSResolve(t *testing.T) {
	cert := func(notAfter time.Duration) func(*world) {
		return func(x *world) {
			x.proxy.configured = true
			x.proxy.st.Certificates = []proxy.CertificateStatus{{Names: []string{"example.com"}, Issuer: "acme", NotAfter: x.now.Add(notAfter)}}
			x.cfg.Proxy = &proxy.Config{Hosts: []string{"example.com"}}
		}
	}
	day := 24 * time.Hour
	run(t, newWorld(), []step{
		{what: "valid for 60 days", change: cert(60 * day)},
		{what: "13 days left", advance: time.Minute, change: cert(13 * day), active: []string{"tls_expiring:example.com"},
			check: func(t *testing.T, x *world) {
				if s := x.alerts.active["tls_expiring:example.com"].Summary; !strings.Contains(s, "expires in 312h") {
					t.Errorf("summary %q, want the time left", s)
				}
			}},
		{what: "renewed", advance: time.Minute, change: cert(90 * day)},
		{what: "expiring again", advance: time.Minute, change: cert(day), active: []string{"tls_expiring:example.com"}},
		{what: "no longer served", advance: time.Minute, change: func(x *world) { x.proxy.st.Certificates = nil }},
		{what: "renewal failed", advance: time.Minute, change: func(x *world) {
			x.w.CertEvent(proxy.CertEvent{Name: "example.com", Renewal: true, Error: "timeout"})
		}, active: []string{"tls_renewal_failed:example.com"}},
		{what: "obtained", advance: time.Minute, change: func(x *world) { x.w.CertEvent(proxy.CertEvent{Name: "example.com", Obtained: true}) }},
		{what: "failed again", advance: time.Minute, change: func(x *world) {
			x.w.CertEvent(proxy.CertEvent{Name: "example.com", Error: "no DNS"})
		}, active: []string{"tls_renewal_failed:example.com"}},
		{what: "a reload removed the host", advance: time.Minute, change: func(x *world) { x.cfg.Proxy = &proxy.Config{Hosts: []string{"other.example.com"}} }},
	})
}

// TestUpstreamsDown: a site is down after two checks in a row with no
// upstream answering, the alert names the programs that serve it, and it
// resolves when one answers.
func TestUpstreamsDown(t *testing.T) {
	key := "upstreams_down:example.com"
	setup := func(x *world) {
		x.proxy.configured, x.proxy.st.Running = true, true
		x.cfg.Proxy = &proxy.Config{Hosts: []string{"example.com"}, Upstream: "unix:///run/app.sock"}
		web := supervisor.DefaultProgramConfig("web")
		web.Serves = supervisor.Serves{"unix:/run/app.sock"}
		procs, err := web.Processes()
		if err != nil {
			panic(err)
		}
		x.cfg.Links = front.NewLinks(procs)
	}
	run(t, newWorld(), []step{
		{what: "answering", change: func(x *world) { setup(x); x.up["unix:///run/app.sock"] = true }},
		{what: "one check down", advance: 30 * time.Second, change: func(x *world) { x.up["unix:///run/app.sock"] = false }},
		{what: "two checks down", advance: 30 * time.Second, active: []string{key}, check: func(t *testing.T, x *world) {
			a := x.alerts.active[key]
			if progs, _ := a.Details["programs"].([]string); !slices.Equal(progs, []string{"web"}) || !strings.Contains(a.Command, "hostctl status web") {
				t.Errorf("alert details %v command %q, want the program that serves the site", a.Details, a.Command)
			}
		}},
		{what: "answers again", advance: 30 * time.Second, change: func(x *world) { x.up["unix:///run/app.sock"] = true }},
	})
}

// TestNotesInProgramAlerts: a program's notes go with every alert about
// it.
func TestNotesInProgramAlerts(t *testing.T) {
	x := newWorld()
	const notes = "The site works without memcached, just slower. If it fills the memory, restart it: hostctl restart memcached."
	run(t, x, []step{{
		what: "memcached FATAL",
		change: func(x *world) {
			prog("memcached", supervisor.Fatal, 0, 0, 1)(x)
			st := x.sup.sts["memcached"]
			st.Notes = notes
			x.sup.sts["memcached"] = st
		},
		active: []string{"fatal:memcached"},
	}, {
		what:   "its output is dropped",
		change: func(x *world) { x.sup.dropped["memcached"] = 100 },
		active: []string{"fatal:memcached", "log_dropped:memcached"},
		check: func(t *testing.T, x *world) {
			for _, k := range x.alerts.Keys() {
				if got := x.alerts.active[k].Details["notes"]; got != notes {
					t.Errorf("%s: notes %v", k, got)
				}
			}
		},
	}})
}
