package alert

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hostctl/hostctl/supervisor/trust"
)

// pingReceiver is a monitor on 127.0.0.1 that records every request's
// path and query, and answers what answer says.
type pingReceiver struct {
	srv *httptest.Server

	mu     sync.Mutex
	got    []string // "PATH?QUERY", in arrival order
	more   chan struct{}
	answer func(r *http.Request) int // default 200
	hang   chan struct{}             // when set, requests wait for it (or their end)
}

func newPingReceiver(t *testing.T) *pingReceiver {
	p := &pingReceiver{more: make(chan struct{})}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.got = append(p.got, r.URL.RequestURI())
		close(p.more)
		p.more = make(chan struct{})
		answer, hang := p.answer, p.hang
		p.mu.Unlock()
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
				return
			}
		}
		code := http.StatusOK
		if answer != nil {
			code = answer(r)
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "you asked for %s", r.URL.RequestURI()) // a receiver that echoes the token
	}))
	t.Cleanup(func() {
		p.mu.Lock()
		if p.hang != nil {
			close(p.hang)
			p.hang = nil
		}
		p.mu.Unlock()
		p.srv.Close()
	})
	return p
}

// waitCount waits until n requests satisfy match and returns them all.
func (p *pingReceiver) waitCount(t *testing.T, n int, match func(string) bool) []string {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		p.mu.Lock()
		var hits []string
		for _, g := range p.got {
			if match(g) {
				hits = append(hits, g)
			}
		}
		more, all := p.more, append([]string(nil), p.got...)
		p.mu.Unlock()
		if len(hits) >= n {
			return hits
		}
		select {
		case <-more:
		case <-deadline:
			t.Fatalf("%d matching pings within 15s, want %d; got %q", len(hits), n, all)
		}
	}
}

func (p *pingReceiver) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

func is(uri string) func(string) bool { return func(g string) bool { return g == uri } }

// heartbeat returns h validated (its forms resolved) with interval set
// after validation: validation allows no less than 1s, and unit tests
// ping faster. Its timeout is 10s unless h has one.
func heartbeat(t *testing.T, h Heartbeat, interval time.Duration) Heartbeat {
	t.Helper()
	h.Interval = time.Second
	c := Config{RetryFor: time.Second, CrashLoopRestarts: 1, CrashLoopWindow: time.Second, CheckInterval: time.Second, TLSExpiresWithin: time.Hour, Heartbeats: []Heartbeat{h}}
	if errs := c.Validate("alerts"); len(errs) > 0 {
		t.Fatalf("config errors: %v", errs)
	}
	h = c.Heartbeats[0]
	h.Interval = interval
	if h.Timeout == 0 {
		// Not the interval: on a loaded machine (CI runs beside
		// stress-ng) a ping can take longer than a test's interval, and
		// a start form that timed out is not sent again.
		h.Timeout = 10 * time.Second
	}
	return h
}

func waitStatus(t *testing.T, m *Manager, what string, cond func(HeartbeatStatus) bool) HeartbeatStatus {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := m.Heartbeats()
		if len(st) == 1 && cond(st[0]) {
			return st[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("heartbeat status never %s: %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHeartbeatStartThenSchedule: at hostctl's start the start form goes
// first, then the pings; a second manager (hostctl restarted) sends the
// start form again; a reload with the same table keeps the schedule.
func TestHeartbeatStartThenSchedule(t *testing.T) {
	rec := newPingReceiver(t)
	h := heartbeat(t, Heartbeat{Name: "hc", Kind: KindHealthchecks, URL: rec.srv.URL + "/ping/uuid-1"}, 50*time.Millisecond)
	cfg := Config{Heartbeats: []Heartbeat{h}}
	m := newTestManager(t, cfg, nil)
	rec.waitCount(t, 3, is("/ping/uuid-1"))
	got := rec.all()
	if got[0] != "/ping/uuid-1/start" {
		t.Fatalf("first request %q, want the start form; all: %q", got[0], got)
	}
	if n := len(rec.waitCount(t, 1, is("/ping/uuid-1/start"))); n != 1 {
		t.Fatalf("%d start pings, want 1", n)
	}
	st := waitStatus(t, m, "counting 3 sent", func(s HeartbeatStatus) bool { return s.Sent >= 3 })
	if st.Failed != 0 || st.LastForm != FormSuccess || st.LastError != "" || st.OnAlert != OnAlertFail || st.NextDue.IsZero() {
		t.Errorf("status = %+v", st)
	}

	// A reload with the same heartbeat keeps its goroutine (one
	// schedule), and sends no start form.
	m.mu.Lock()
	before := m.beats[0]
	m.mu.Unlock()
	if err := m.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	after := m.beats[0]
	m.mu.Unlock()
	if before != after {
		t.Error("a reload with the same heartbeat replaced its goroutine")
	}

	// hostctl restarts: the new one starts with the start form.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	m.Close(ctx)
	cancel()
	n := len(rec.all())
	m2 := newTestManager(t, cfg, nil)
	rec.waitCount(t, 2, is("/ping/uuid-1/start"))
	if got := rec.all(); len(got) <= n || got[n] != "/ping/uuid-1/start" {
		t.Fatalf("after the restart, the first request was not the start form: %q", got[n:])
	}
	waitStatus(t, m2, "sending after the restart", func(s HeartbeatStatus) bool { return s.Sent >= 2 })
}

// TestHeartbeatStartRetried: a start form the monitor did not take (the
// network not up yet after a reboot) is sent again before the next ping.
func TestHeartbeatStartRetried(t *testing.T) {
	rec := newPingReceiver(t)
	var once sync.Once
	rec.answer = func(r *http.Request) int {
		code := http.StatusOK
		if strings.HasSuffix(r.URL.Path, "/start") {
			once.Do(func() { code = http.StatusServiceUnavailable })
		}
		return code
	}
	h := heartbeat(t, Heartbeat{Name: "hc", Kind: KindHealthchecks, URL: rec.srv.URL + "/ping/u"}, 50*time.Millisecond)
	m := newTestManager(t, Config{Heartbeats: []Heartbeat{h}}, nil)
	rec.waitCount(t, 2, is("/ping/u/start"))
	rec.waitCount(t, 3, is("/ping/u"))
	if n := len(rec.waitCount(t, 0, is("/ping/u/start"))); n != 2 {
		t.Errorf("%d start forms, want 2 (one refused, then one taken)", n)
	}
	if got := rec.all(); got[0] != "/ping/u/start" || got[1] != "/ping/u/start" {
		t.Errorf("requests = %q, want the refused start, then the start again before the first ping", got)
	}
	if st := m.Heartbeats()[0]; st.Failed != 1 {
		t.Errorf("failed = %d, want 1", st.Failed)
	}
}

// TestHeartbeatReloadChangedURL: a reload that changes the heartbeat's
// URL replaces its schedule: pings go to the new URL only.
func TestHeartbeatReloadChangedURL(t *testing.T) {
	rec := newPingReceiver(t)
	old := heartbeat(t, Heartbeat{Name: "hc", Kind: KindHealthchecks, URL: rec.srv.URL + "/ping/old"}, 50*time.Millisecond)
	m := newTestManager(t, Config{Heartbeats: []Heartbeat{old}}, nil)
	rec.waitCount(t, 2, is("/ping/old"))
	m.mu.Lock()
	oldBeat := m.beats[0]
	m.mu.Unlock()
	nu := heartbeat(t, Heartbeat{Name: "hc", Kind: KindHealthchecks, URL: rec.srv.URL + "/ping/new"}, 50*time.Millisecond)
	if err := m.Apply(Config{Heartbeats: []Heartbeat{nu}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-oldBeat.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the replaced heartbeat's goroutine did not end")
	}
	// A ping to the old URL in flight at the reload may still land;
	// none after the new one has pinged twice, and twice more.
	rec.waitCount(t, 2, is("/ping/new"))
	oldN := len(rec.waitCount(t, 0, is("/ping/old")))
	rec.waitCount(t, 4, is("/ping/new"))
	if n := len(rec.waitCount(t, 0, is("/ping/old"))); n != oldN {
		t.Errorf("the old URL got %d more pings after the reload: two schedules", n-oldN)
	}
	if n := len(rec.waitCount(t, 0, is("/ping/new/start"))); n != 0 {
		t.Errorf("a reload sent the start form %d times: hostctl did not restart", n)
	}
}

// TestHeartbeatFailWhileCritical: while a critical alert is active the
// fail form is sent, and the success form again once it resolves; a
// warning changes nothing.
func TestHeartbeatFailWhileCritical(t *testing.T) {
	rec := newPingReceiver(t)
	h := heartbeat(t, Heartbeat{Name: "hc", Kind: KindHealthchecks, URL: rec.srv.URL + "/ping/u"}, 50*time.Millisecond)
	m := newTestManager(t, Config{Heartbeats: []Heartbeat{h}}, nil)
	rec.waitCount(t, 1, is("/ping/u"))
	m.Set(Alert{Key: "disk_free:/x", Condition: CondDiskFree, Severity: Warning, Summary: "low"})
	n := len(rec.all())
	rec.waitCount(t, n+2, func(string) bool { return true })
	if got := rec.all()[n:]; strings.Contains(strings.Join(got, " "), "/fail") {
		t.Fatalf("a warning switched to the fail form: %q", got)
	}
	m.Set(fatal("gunicorn"))
	rec.waitCount(t, 2, is("/ping/u/fail"))
	m.Clear("fatal:gunicorn", "RUNNING again")
	// Back to success: wait for two success pings after the last fail.
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := rec.all()
		last := -1
		for i, g := range got {
			if g == "/ping/u/fail" {
				last = i
			}
		}
		ok := 0
		for _, g := range got[last+1:] {
			if g == "/ping/u" {
				ok++
			}
		}
		if ok >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no success ping after the alert resolved: %q", got)
		}
		rec.waitCount(t, len(got)+1, func(string) bool { return true })
	}
}

// TestHeartbeatUptimeKumaFailMessage: Uptime Kuma's fail form says which
// alert, and the success form replaces the status the copied URL had.
func TestHeartbeatUptimeKumaFailMessage(t *testing.T) {
	rec := newPingReceiver(t)
	h := heartbeat(t, Heartbeat{Name: "kuma", Kind: KindUptimeKuma, URL: rec.srv.URL + "/api/push/tok?status=true&msg=OK&ping="}, 50*time.Millisecond)
	m := newTestManager(t, Config{Heartbeats: []Heartbeat{h}}, nil)
	rec.waitCount(t, 1, is("/api/push/tok?msg=OK&ping=&status=up"))
	m.Set(fatal("gunicorn"))
	rec.waitCount(t, 1, is("/api/push/tok?msg=critical+alert%3A+gunicorn+is+FATAL&ping=&status=down"))
	if got := rec.all(); strings.Contains(got[0], "start") {
		t.Errorf("Uptime Kuma has no start form; sent %q", got[0])
	}
}

// TestHeartbeatPause: with on_alert = "pause" nothing is sent while a
// critical alert is active; the pings resume once it resolves.
func TestHeartbeatPause(t *testing.T) {
	rec := newPingReceiver(t)
	h := heartbeat(t, Heartbeat{Name: "hc", Kind: KindHealthchecks, URL: rec.srv.URL + "/p", OnAlert: OnAlertPause}, 50*time.Millisecond)
	m := newTestManager(t, Config{Heartbeats: []Heartbeat{h}}, nil)
	rec.waitCount(t, 1, is("/p"))
	m.Set(fatal("gunicorn"))
	// Two ticks paused in a row (the first may have been due before Set).
	var paused time.Time
	waitStatus(t, m, "paused twice", func(s HeartbeatStatus) bool {
		if s.LastForm != FormPaused {
			return false
		}
		if paused.IsZero() {
			paused = s.LastPing
		}
		return s.LastPing.After(paused)
	})
	n := len(rec.all())
	waitStatus(t, m, "paused a third time", func(s HeartbeatStatus) bool {
		return s.LastForm == FormPaused && s.LastPing.After(paused.Add(h.Interval))
	})
	if got := rec.all(); len(got) != n {
		t.Fatalf("pings sent while paused: %q", got[n:])
	}
	if n := len(rec.waitCount(t, 0, is("/p/fail"))); n != 0 {
		t.Fatalf("on_alert = pause sent the fail form %d times", n)
	}
	m.Clear("fatal:gunicorn", "fixed")
	rec.waitCount(t, len(rec.waitCount(t, 0, is("/p")))+1, is("/p"))
}

// TestHeartbeatFailuresAreCountedAndRateLimited: a monitor that fails
// (500) or hangs gets a ping every interval anyway; failures are counted
// and logged once, and the token never shows in errors, status or logs.
func TestHeartbeatFailuresAreCountedAndRateLimited(t *testing.T) {
	const token = "s3cr3t-t0ken-42"
	rec := newPingReceiver(t)
	rec.answer = func(*http.Request) int { return http.StatusInternalServerError }
	core, logs := observer.New(zap.DebugLevel)
	h := heartbeat(t, Heartbeat{Name: "hc", Kind: KindHealthchecks, URL: rec.srv.URL + "/ping/" + token + "?key=" + token, Timeout: 30 * time.Millisecond}, 60*time.Millisecond)
	m, err := New(Config{RetryFor: time.Second, Heartbeats: []Heartbeat{h}}, Options{Host: "web1", Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	st := waitStatus(t, m, "failing 3 times", func(s HeartbeatStatus) bool { return s.Failed >= 3 })
	if !strings.Contains(st.LastError, "500") {
		t.Errorf("last error %q does not say what the monitor answered", st.LastError)
	}
	// A monitor that never answers: each ping ends at its timeout and
	// the next is still sent.
	rec.mu.Lock()
	rec.hang = make(chan struct{})
	rec.mu.Unlock()
	n := len(rec.all())
	rec.waitCount(t, n+3, func(string) bool { return true })
	st = waitStatus(t, m, "timing out", func(s HeartbeatStatus) bool { return strings.Contains(s.LastError, "no answer within") })
	if st.Where != rec.srv.URL+"/…" {
		t.Errorf("where = %q", st.Where)
	}
	for _, s := range []string{st.LastError, st.Where, fmt.Sprint(m.Heartbeats())} {
		if strings.Contains(s, token) {
			t.Errorf("the token shows in the status: %s", s)
		}
	}
	warns := 0
	for _, e := range logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, token) {
			t.Errorf("the token shows in a log line: %s", line)
		}
		if strings.HasPrefix(e.Message, "heartbeat: ping failed") {
			warns++
		}
	}
	if warns != 1 {
		t.Errorf("%d failure lines logged for %d failures, want 1 (rate-limited)", warns, m.Heartbeats()[0].Failed)
	}
	// It answers again: pings get through, and that is logged.
	rec.mu.Lock()
	close(rec.hang)
	rec.hang, rec.answer = nil, nil
	rec.mu.Unlock()
	waitStatus(t, m, "getting through", func(s HeartbeatStatus) bool { return s.LastError == "" && s.Sent > 0 })
	waitFor(t, func() bool { return logs.FilterMessage("heartbeat: pings get through again").Len() == 1 })
}

// TestHeartbeatRedactsConnectionErrors: a refused connection's error
// names scheme and host only.
func TestHeartbeatRedactsConnectionErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close() // nothing listens there now
	h := heartbeat(t, Heartbeat{Name: "hc", Kind: KindBetterStack, URL: u + "/api/v1/heartbeat/TOKEN123"}, 50*time.Millisecond)
	m := newTestManager(t, Config{Heartbeats: []Heartbeat{h}}, nil)
	st := waitStatus(t, m, "failed", func(s HeartbeatStatus) bool { return s.Failed > 0 })
	if strings.Contains(st.LastError, "TOKEN123") || !strings.Contains(st.LastError, "GET "+u+"/…") {
		t.Errorf("last error = %q", st.LastError)
	}
}

func TestHeartbeatForms(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		h                    Heartbeat
		success, fail, start string
		onAlert              string
	}{
		{"healthchecks", Heartbeat{Kind: KindHealthchecks, URL: "https://hc-ping.com/UUID"},
			"https://hc-ping.com/UUID", "https://hc-ping.com/UUID/fail", "https://hc-ping.com/UUID/start", "fail"},
		{"healthchecks slug", Heartbeat{Kind: KindHealthchecks, URL: "https://hc-ping.com/PINGKEY/web1/"},
			"https://hc-ping.com/PINGKEY/web1/", "https://hc-ping.com/PINGKEY/web1/fail", "https://hc-ping.com/PINGKEY/web1/start", "fail"},
		{"cronitor", Heartbeat{Kind: KindCronitor, URL: "https://cronitor.link/p/KEY/web1"},
			"https://cronitor.link/p/KEY/web1", "https://cronitor.link/p/KEY/web1?state=fail", "https://cronitor.link/p/KEY/web1?state=run", "fail"},
		{"uptime kuma", Heartbeat{Kind: KindUptimeKuma, URL: "https://kuma.example.com/api/push/TOK?status=up&msg=OK&ping="},
			"https://kuma.example.com/api/push/TOK?msg=OK&ping=&status=up", "https://kuma.example.com/api/push/TOK?msg=critical+alert&ping=&status=down", "", "fail"},
		{"betterstack", Heartbeat{Kind: KindBetterStack, URL: "https://uptime.betterstack.com/api/v1/heartbeat/TOK"},
			"https://uptime.betterstack.com/api/v1/heartbeat/TOK", "https://uptime.betterstack.com/api/v1/heartbeat/TOK/fail", "", "fail"},
		{"plain", Heartbeat{URL: "https://mon.example.com/beat/TOK"},
			"https://mon.example.com/beat/TOK", "", "", "pause"},
		{"plain with forms", Heartbeat{URL: "https://mon.example.com/beat/TOK", FailURL: "https://other.example.com/down", StartURL: "?event=start"},
			"https://mon.example.com/beat/TOK", "https://other.example.com/down", "https://mon.example.com/beat/TOK?event=start", "fail"},
		{"preset overridden", Heartbeat{Kind: KindHealthchecks, URL: "https://hc-ping.com/UUID", FailURL: "/1", OnAlert: "pause"},
			"https://hc-ping.com/UUID", "https://hc-ping.com/UUID/1", "https://hc-ping.com/UUID/start", "pause"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.h.Name = "x"
			h := heartbeat(t, tc.h, time.Minute)
			if h.success != tc.success || h.fail != tc.fail || h.start != tc.start || h.onAlert() != tc.onAlert {
				t.Errorf("success %q fail %q start %q on_alert %q\nwant    %q fail %q start %q on_alert %q", h.success, h.fail, h.start, h.onAlert(), tc.success, tc.fail, tc.start, tc.onAlert)
			}
			if strings.Contains(h.Where(), "TOK") || strings.Contains(h.Where(), "UUID") {
				t.Errorf("where %q shows the token", h.Where())
			}
		})
	}
}

func TestHeartbeatConfigErrors(t *testing.T) {
	const tok = "TOKEN-abc"
	ok := Heartbeat{Name: "hc", Kind: KindHealthchecks, URL: "https://hc-ping.com/" + tok, Interval: time.Minute}
	for _, tc := range []struct {
		name string
		edit func(*Heartbeat)
		key  string
		msg  string
	}{
		{"missing url", func(h *Heartbeat) { h.URL = "" }, "alerts.heartbeat[0].url", "required"},
		{"bad scheme", func(h *Heartbeat) { h.URL = "ftp://hc-ping.com/" + tok }, "alerts.heartbeat[0].url", "not ftp://"},
		{"no scheme", func(h *Heartbeat) { h.URL = "hc-ping.com/" + tok }, "alerts.heartbeat[0].url", "no scheme"},
		{"user in url", func(h *Heartbeat) { h.URL = "https://me:" + tok + "@hc-ping.com/x" }, "alerts.heartbeat[0].url", "user or password"},
		{"zero interval", func(h *Heartbeat) { h.Interval = 0 }, "alerts.heartbeat[0].interval", "required"},
		{"short interval", func(h *Heartbeat) { h.Interval = 500 * time.Millisecond }, "alerts.heartbeat[0].interval", "too short"},
		{"unknown kind", func(h *Heartbeat) { h.Kind = "pingdom" }, "alerts.heartbeat[0].kind", `"pingdom" is not a heartbeat kind`},
		{"timeout over interval", func(h *Heartbeat) { h.Timeout = 2 * time.Minute }, "alerts.heartbeat[0].timeout", "longer than the interval"},
		{"negative timeout", func(h *Heartbeat) { h.Timeout = -1 }, "alerts.heartbeat[0].timeout", "negative"},
		{"bad on_alert", func(h *Heartbeat) { h.OnAlert = "silence" }, "alerts.heartbeat[0].on_alert", "not fail or pause"},
		{"fail without a fail form", func(h *Heartbeat) { h.Kind, h.OnAlert = "", "fail" },
			"alerts.heartbeat[0].on_alert", "needs a fail form"},
		{"bad fail_url", func(h *Heartbeat) { h.FailURL = "fail" }, "alerts.heartbeat[0].fail_url", "not an http(s) URL, a path suffix"},
		{"bad start_url", func(h *Heartbeat) { h.StartURL = "gopher://x/" + tok }, "alerts.heartbeat[0].start_url", "not an http(s) URL"},
		{"missing name", func(h *Heartbeat) { h.Name = "" }, "alerts.heartbeat[0].name", "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := ok
			tc.edit(&h)
			c := DefaultConfig()
			c.Heartbeats = []Heartbeat{h}
			errs := c.Validate("alerts")
			if len(errs) != 1 {
				t.Fatalf("errors = %v, want one", errs)
			}
			var fe *FieldError
			if !errors.As(errs[0], &fe) || fe.Key != tc.key || !strings.Contains(fe.Msg, tc.msg) {
				t.Fatalf("error = %v, want %s: ...%s...", errs[0], tc.key, tc.msg)
			}
			if strings.Contains(fe.Msg, tok) {
				t.Errorf("the error shows the URL's token: %s", fe.Msg)
			}
		})
	}
	c := DefaultConfig()
	c.Heartbeats = []Heartbeat{ok, ok}
	if errs := c.Validate("alerts"); len(errs) != 1 || !strings.Contains(errs[0].Error(), "alerts.heartbeat[1].name") {
		t.Errorf("duplicate names: %v", errs)
	}
}

// TestHeartbeatURLFile: url_file holds the URL (and its token) out of the
// config file; its errors name url_file and never print the token.
func TestHeartbeatURLFile(t *testing.T) {
	const tok = "FILE-TOKEN-9"
	files := map[string]string{"/etc/hc.url": "https://hc-ping.com/" + tok + "\n", "/etc/bad.url": "ftp://hc-ping.com/" + tok}
	read := func(path string, _ trust.Kind) ([]byte, error) {
		v, ok := files[path]
		if !ok {
			return nil, fs.ErrNotExist
		}
		return []byte(v), nil
	}
	for _, tc := range []struct {
		name string
		h    Heartbeat
		key  string // "" for no error
		msg  string
	}{
		{"read", Heartbeat{URLFile: "/etc/hc.url"}, "", ""},
		{"both", Heartbeat{URL: "https://hc-ping.com/x", URLFile: "/etc/hc.url"}, "alerts.heartbeat[0].url_file", "not both"},
		{"missing file", Heartbeat{URLFile: "/etc/none.url"}, "alerts.heartbeat[0].url_file", "/etc/none.url"},
		{"bad url in the file", Heartbeat{URLFile: "/etc/bad.url"}, "alerts.heartbeat[0].url_file", "not ftp://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.h.Name, tc.h.Kind, tc.h.Interval = "hc", KindHealthchecks, time.Minute
			c.Heartbeats = []Heartbeat{tc.h}
			errs := append(c.Provision("alerts", read), c.Validate("alerts")...)
			if tc.key == "" {
				if len(errs) > 0 {
					t.Fatal(errs)
				}
				if h := c.Heartbeats[0]; h.success != "https://hc-ping.com/"+tok || h.fail != "https://hc-ping.com/"+tok+"/fail" {
					t.Errorf("forms from url_file: %q %q", h.success, h.fail)
				}
				return
			}
			var fe *FieldError
			if len(errs) != 1 || !errors.As(errs[0], &fe) || fe.Key != tc.key || !strings.Contains(fe.Msg, tc.msg) {
				t.Fatalf("errors = %v, want one %s: ...%s...", errs, tc.key, tc.msg)
			}
			if strings.Contains(fe.Msg, tok) {
				t.Errorf("the error shows the token: %s", fe.Msg)
			}
		})
	}
}
