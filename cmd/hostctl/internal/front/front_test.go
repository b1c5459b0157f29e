package front

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/proxy"
	"github.com/hostctl/hostctl/supervisor"
)

// fakePrograms answers Status from a map.
type fakePrograms map[string]supervisor.Status

func (f fakePrograms) Status(names ...string) ([]supervisor.Status, error) {
	var out []supervisor.Status
	for _, n := range names {
		st, ok := f[n]
		if !ok {
			return nil, fmt.Errorf("no program %q", n)
		}
		out = append(out, st)
	}
	return out, nil
}

// fakeClock is a clock that moves only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
func answering(addrs ...string) func(context.Context, string) error {
	return func(_ context.Context, a string) error {
		for _, x := range addrs {
			if proxy.CanonicalUpstream(x) == proxy.CanonicalUpstream(a) {
				return nil
			}
		}
		return errors.New("connection refused")
	}
}

func proc(name string, serves supervisor.Serves, ready *supervisor.ProbeConfig, cmd ...string) *supervisor.ProgramConfig {
	p := supervisor.DefaultProgramConfig(name)
	p.Command = cmd
	if len(cmd) == 0 {
		p.Command = supervisor.Command{"/bin/app"}
	}
	p.Serves, p.Ready = serves, ready
	return &p
}

// process is the one process of the single-instance program p.
func process(t testing.TB, p *supervisor.ProgramConfig) *supervisor.ProcessConfig {
	t.Helper()
	ps, err := p.Processes()
	if err != nil || len(ps) != 1 {
		t.Fatalf("%s: processes %v, %v", p.Name, ps, err)
	}
	return ps[0]
}

// TestServedBy: serves when set, else only what the ready probe proves.
func TestServedBy(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *supervisor.ProgramConfig
		want []string
	}{
		{"serves", proc("a", supervisor.Serves{"unix:///run/a.sock", "127.0.0.1:8000"}, nil), []string{"unix:/run/a.sock", "127.0.0.1:8000"}},
		{"serves nothing", proc("a", supervisor.Serves{}, &supervisor.ProbeConfig{TCP: "127.0.0.1:8000"}), []string{}},
		{"ready.tcp", proc("a", nil, &supervisor.ProbeConfig{TCP: "127.0.0.1:8000"}), []string{"127.0.0.1:8000"}},
		{"ready.socket", proc("a", nil, &supervisor.ProbeConfig{HTTP: "http://localhost/up", Socket: "/run//a.sock"}), []string{"unix:/run/a.sock"}},
		{"ready.http", proc("a", nil, &supervisor.ProbeConfig{HTTP: "http://127.0.0.1:8000/up"}), []string{"127.0.0.1:8000"}},
		{"ready.http default port", proc("a", nil, &supervisor.ProbeConfig{HTTP: "http://127.0.0.1/up"}), []string{"127.0.0.1:80"}},
		{"ready.exec guesses nothing", proc("a", nil, &supervisor.ProbeConfig{Exec: supervisor.Command{"test", "-S", "/run/a.sock"}}), nil},
		{"command guesses nothing", proc("a", nil, nil, "gunicorn", "--bind", "unix:/run/a.sock"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ServedBy(process(t, tc.p)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ServedBy = %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestCheck: an upstream a program's command mentions but that no
// program serves is an error naming the program; one nothing mentions is
// allowed and listed; a bad or unused serves is reported.
func TestCheck(t *testing.T) {
	cfg := func(ups ...string) *proxy.Config {
		if len(ups) == 1 {
			return &proxy.Config{Upstream: ups[0]}
		}
		return &proxy.Config{UpstreamList: ups}
	}
	for _, tc := range []struct {
		name     string
		progs    []*supervisor.ProgramConfig
		pc       *proxy.Config
		errs     []string
		warns    []string
		unserved []string
	}{
		{name: "the reproduction: unix:/// and a command that binds it",
			progs:    []*supervisor.ProgramConfig{proc("app", nil, nil, "sh", "-c", "sleep 3; exec app --bind unix:/srv/app.sock")},
			pc:       cfg("unix:///srv/app.sock", "127.0.0.1:9"),
			errs:     []string{`proxy.upstreams[0]: unix:///srv/app.sock is served by no program, but program.app mentions it in its command: write serves = "unix:/srv/app.sock" in [program.app]`},
			unserved: []string{"127.0.0.1:9"}},
		{name: "serves written",
			progs: []*supervisor.ProgramConfig{proc("app", supervisor.Serves{"unix:/srv/app.sock"}, nil, "app", "--bind", "unix:/srv/app.sock")},
			pc:    cfg("unix:///srv/app.sock")},
		{name: "ready probe proves it",
			progs: []*supervisor.ProgramConfig{proc("app", nil, &supervisor.ProbeConfig{TCP: "127.0.0.1:8000"}, "app", "--bind", "127.0.0.1:8000")},
			pc:    cfg("127.0.0.1:8000")},
		{name: "a tcp upstream mentioned",
			progs: []*supervisor.ProgramConfig{proc("app", nil, nil, "gunicorn", "-b", "127.0.0.1:8000")},
			pc:    cfg("127.0.0.1:8000"),
			errs:  []string{`proxy.upstream: 127.0.0.1:8000 is served by no program, but program.app mentions it`}},
		{name: "served by something else",
			progs:    []*supervisor.ProgramConfig{proc("worker", nil, nil, "celery")},
			pc:       cfg("unix:/run/php/php-fpm.sock"),
			unserved: []string{"unix:/run/php/php-fpm.sock"}},
		{name: "serves = [] is not guessed at",
			progs: []*supervisor.ProgramConfig{proc("proxyish", supervisor.Serves{}, nil, "socat", "unix:/srv/app.sock", "-")},
			pc:    cfg("unix:/srv/app.sock"), unserved: []string{"unix:/srv/app.sock"}},
		{name: "a remote upstream is never served here",
			progs: []*supervisor.ProgramConfig{proc("tunnel", nil, nil, "ssh", "-L", "10.0.0.5:8000")},
			pc:    cfg("10.0.0.5:8000")},
		{name: "bad serves",
			progs:    []*supervisor.ProgramConfig{proc("app", supervisor.Serves{"unix:relative.sock"}, nil)},
			pc:       cfg("127.0.0.1:8000"),
			errs:     []string{`program.app.serves[0]: "unix:relative.sock": the socket path must be absolute`},
			unserved: []string{"127.0.0.1:8000"}},
		{name: "serves no upstream of the proxy",
			progs:    []*supervisor.ProgramConfig{proc("app", supervisor.Serves{"unix:/srv/ap.sock"}, nil)},
			pc:       cfg("127.0.0.1:8000"),
			warns:    []string{`program.app.serves[0]: "unix:/srv/ap.sock" is not an upstream of any [proxy] site`},
			unserved: []string{"127.0.0.1:8000"}},
		{name: "no proxy",
			progs: []*supervisor.ProgramConfig{proc("app", supervisor.Serves{"unix:/srv/app.sock"}, nil)},
			warns: []string{`program.app.serves[0]: "unix:/srv/app.sock" is not an upstream of any [proxy] site`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Check(tc.progs, tc.pc)
			var errs, warns []string
			for _, e := range r.Errors {
				errs = append(errs, e.Error())
			}
			for _, w := range r.Warnings {
				warns = append(warns, w.Error())
			}
			match := func(what string, got, want []string) {
				if len(got) != len(want) {
					t.Fatalf("%s %q, want %q", what, got, want)
				}
				for i := range want {
					if !strings.Contains(got[i], want[i]) {
						t.Errorf("%s[%d] = %q, want one with %q", what, i, got[i], want[i])
					}
				}
			}
			match("errors", errs, tc.errs)
			match("warnings", warns, tc.warns)
			match("unserved", r.Unserved, tc.unserved)
		})
	}
}

// TestSiteHealth: what health_path answers, for the programs' states, the
// upstreams that answer and the drain; the drain's since comes from the
// front's clock.
func TestSiteHealth(t *testing.T) {
	running := supervisor.Status{State: supervisor.Running}
	failing := supervisor.Status{State: supervisor.Running, Health: &supervisor.HealthStatus{Healthy: false}}
	starting := supervisor.Status{State: supervisor.Starting}
	procs := []*supervisor.ProcessConfig{
		process(t, proc("web_0", supervisor.Serves{"unix:/srv/web-0.sock"}, nil)),
		process(t, proc("web_1", supervisor.Serves{"unix:/srv/web-1.sock"}, nil)),
	}
	for _, tc := range []struct {
		name     string
		progs    fakePrograms
		ups      []string
		answer   []string
		draining bool
		ok       bool
		why      string
	}{
		{name: "served and up", progs: fakePrograms{"web_0": running, "web_1": running}, ups: []string{"unix:///srv/web-0.sock"}, answer: []string{"unix:/srv/web-0.sock"}, ok: true, why: "ok"},
		{name: "running before its socket exists", progs: fakePrograms{"web_0": running}, ups: []string{"unix:/srv/web-0.sock"}, ok: false, why: "down"},
		{name: "socket there, program failing its health check", progs: fakePrograms{"web_0": failing}, ups: []string{"unix:/srv/web-0.sock"}, answer: []string{"unix:/srv/web-0.sock"}, ok: false, why: "down"},
		{name: "socket there, program starting", progs: fakePrograms{"web_0": starting}, ups: []string{"unix:/srv/web-0.sock"}, answer: []string{"unix:/srv/web-0.sock"}, ok: false, why: "down"},
		{name: "one instance of two up", progs: fakePrograms{"web_0": starting, "web_1": running}, ups: []string{"unix:/srv/web-0.sock", "unix:/srv/web-1.sock"}, answer: []string{"unix:/srv/web-1.sock"}, ok: true, why: "ok"},
		{name: "served by something else, answering", progs: fakePrograms{}, ups: []string{"unix:/run/php.sock"}, answer: []string{"unix:/run/php.sock"}, ok: true, why: "ok"},
		{name: "served by something else, not answering", progs: fakePrograms{}, ups: []string{"unix:/run/php.sock"}, ok: false, why: "down"},
		{name: "another machine's upstream is not dialled", progs: fakePrograms{}, ups: []string{"10.0.0.5:8000"}, ok: true, why: "ok"},
		{name: "unknown to the supervisor", progs: fakePrograms{}, ups: []string{"unix:/srv/web-0.sock"}, answer: []string{"unix:/srv/web-0.sock"}, ok: false, why: "down"},
		{name: "draining", progs: fakePrograms{"web_0": running}, ups: []string{"unix:/srv/web-0.sock"}, answer: []string{"unix:/srv/web-0.sock"}, draining: true, ok: false, why: "draining"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			f, err := New(Options{StateDir: t.TempDir(), Programs: tc.progs, Dial: answering(tc.answer...), Now: clock.now})
			if err != nil {
				t.Fatal(err)
			}
			f.Configure("/.health", NewLinks(procs))
			if tc.draining {
				if _, err := f.Drain(context.Background(), 0, 0); err != nil {
					t.Fatal(err)
				}
				clock.add(time.Minute)
				st, err := f.DrainStatus()
				if err != nil || !st.Draining || st.Since == nil || !st.Since.Equal(clock.t.Add(-time.Minute)) {
					t.Fatalf("DrainStatus %+v, %v: want draining since the fake clock's time of the drain", st, err)
				}
			}
			ok, why := f.SiteHealth(tc.ups)
			if ok != tc.ok || why != tc.why {
				t.Errorf("SiteHealth = %v %q, want %v %q", ok, why, tc.ok, tc.why)
			}
		})
	}
}

// fakeTraffic is a proxy whose requests end when told.
type fakeTraffic struct {
	quiet    chan struct{} // closed: WaitQuiet returns
	healthOK chan struct{} // closed: WaitHealthOK returns
}

func (f *fakeTraffic) Traffic() proxy.Traffic { return proxy.Traffic{InFlight: 1} }
func (f *fakeTraffic) WaitQuiet(ctx context.Context, _ time.Duration) (proxy.Traffic, error) {
	select {
	case <-f.quiet:
		return proxy.Traffic{}, nil
	case <-ctx.Done():
		return proxy.Traffic{}, ctx.Err()
	}
}
func (f *fakeTraffic) WaitHealthOK(ctx context.Context, _ time.Time) error {
	select {
	case <-f.healthOK:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestDrainWait: drain and undrain report what their wait saw, without
// health_path they refuse, and a drain survives a new Front on the same
// state dir.
func TestDrainWait(t *testing.T) {
	closed := make(chan struct{})
	close(closed)
	for _, tc := range []struct {
		name           string
		proxy          *fakeTraffic
		undrain        bool
		quiet, timeout bool
		seenHealthy    bool
	}{
		{name: "drain, quiet", proxy: &fakeTraffic{quiet: closed}, quiet: true},
		{name: "drain, requests go on", proxy: &fakeTraffic{quiet: make(chan struct{})}, timeout: true},
		{name: "drain, no proxy", quiet: true},
		{name: "undrain, healthy", proxy: &fakeTraffic{healthOK: closed}, undrain: true, seenHealthy: true},
		{name: "undrain, never healthy", proxy: &fakeTraffic{healthOK: make(chan struct{})}, undrain: true, timeout: true},
		{name: "undrain, no proxy", undrain: true, timeout: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{StateDir: dir, Programs: fakePrograms{}, Now: newClock().now}
			if tc.proxy != nil {
				opts.Proxy = func() Traffic { return tc.proxy }
			}
			f, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Drain(context.Background(), time.Second, 0); !errors.Is(err, errNoHealthPath()) {
				t.Fatalf("drain without health_path: %v", err)
			}
			f.Configure("/.health", Links{})
			wait := 50 * time.Millisecond
			var st any
			if tc.undrain {
				if _, err := f.Drain(context.Background(), 0, 0); err != nil {
					t.Fatal(err)
				}
				s, err := f.Undrain(context.Background(), wait)
				if err != nil {
					t.Fatal(err)
				}
				if s.Draining || s.SeenHealthy != tc.seenHealthy || s.TimedOut != tc.timeout {
					t.Errorf("undrain: %+v, want seen_healthy %v timed_out %v", s, tc.seenHealthy, tc.timeout)
				}
				st = s
			} else {
				s, err := f.Drain(context.Background(), wait, 0)
				if err != nil {
					t.Fatal(err)
				}
				if !s.Draining || s.Quiet != tc.quiet || s.TimedOut != tc.timeout {
					t.Errorf("drain: %+v, want quiet %v timed_out %v", s, tc.quiet, tc.timeout)
				}
				st = s
			}
			again, err := New(Options{StateDir: dir, Programs: fakePrograms{}})
			if err != nil {
				t.Fatal(err)
			}
			if draining, _ := again.Draining(); draining == tc.undrain {
				t.Errorf("after %+v a new front (a restart) drains: %v", st, draining)
			}
		})
	}
}

func errNoHealthPath() error { _, err := (&Front{}).healthPath(); return err }

// TestPeerUIDs: each unix upstream gets the uids of the programs that
// serve it (their user, else hostctl's); TCP upstreams get none; a user
// that cannot be looked up gives the uid of no user, so that the proxy
// refuses every listener rather than none.
func TestPeerUIDs(t *testing.T) {
	withUser := func(p *supervisor.ProgramConfig, u string) *supervisor.ProgramConfig { p.User = u; return p }
	me := uint32(os.Getuid())
	for _, tc := range []struct {
		name  string
		progs []*supervisor.ProgramConfig
		want  map[string][]uint32
	}{
		{"no user: hostctl's uid", []*supervisor.ProgramConfig{proc("a", supervisor.Serves{"unix:///run/a.sock", "127.0.0.1:8000"}, nil)},
			map[string][]uint32{"unix:/run/a.sock": {me}}},
		{"user by name and by id", []*supervisor.ProgramConfig{
			withUser(proc("a", supervisor.Serves{"unix:/run/a.sock"}, nil), "nobody"),
			withUser(proc("b", nil, &supervisor.ProbeConfig{Socket: "/run/a.sock"}), "1"),
			withUser(proc("c", supervisor.Serves{"unix:/run/c.sock"}, nil), "nobody"),
		}, map[string][]uint32{"unix:/run/a.sock": {65534, 1}, "unix:/run/c.sock": {65534}}},
		{"unknown user", []*supervisor.ProgramConfig{withUser(proc("a", supervisor.Serves{"unix:/run/a.sock"}, nil), "hct-no-such-user")},
			map[string][]uint32{"unix:/run/a.sock": {noUID}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var procs []*supervisor.ProcessConfig
			for _, p := range tc.progs {
				procs = append(procs, process(t, p))
			}
			if got := PeerUIDs(procs); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("PeerUIDs = %v, want %v", got, tc.want)
			}
		})
	}
}
