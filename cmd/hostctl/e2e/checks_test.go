package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/testuser"
)

// checkUser is the unprivileged user exec checks run as in these tests.
// It is made once and never deleted.
const checkUser = "hct-check"

// fakeES is an HTTP server on 127.0.0.1 that answers
// /_cluster/health as ElasticSearch does, with the cluster status the
// test sets; the test stops and starts it on the same port.
type fakeES struct {
	addr string

	mu     sync.Mutex // guards status and srv
	status string
	srv    *http.Server
}

func startFakeES(t *testing.T) *fakeES {
	t.Helper()
	es := &fakeES{status: "green"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	es.addr = ln.Addr().String()
	es.serve(ln)
	t.Cleanup(es.stop)
	return es
}

func (es *fakeES) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_cluster/health" {
			http.NotFound(w, r)
			return
		}
		es.mu.Lock()
		st := es.status
		es.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"cluster_name":"search","status":%q,"timed_out":false,"number_of_nodes":1}`, st)
	})}
	es.mu.Lock()
	es.srv = srv
	es.mu.Unlock()
	go srv.Serve(ln)
}

func (es *fakeES) set(status string) {
	es.mu.Lock()
	es.status = status
	es.mu.Unlock()
}

func (es *fakeES) stop() {
	es.mu.Lock()
	srv := es.srv
	es.srv = nil
	es.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (es *fakeES) start(t *testing.T) {
	t.Helper()
	ln := listenAgain(t, es.addr)
	es.serve(ln)
}

// listenAgain listens on addr again (a port the test had and closed),
// retrying briefly if the kernel has not released it yet.
func listenAgain(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	retryUntil(t, 10*time.Second, "listen again on "+addr, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln
}

// checkRow returns the line of check name in the Checks section of
// `hostctl status` output, "" if none.
func checkRow(out, name string) string {
	_, section, ok := strings.Cut(out, "Checks (")
	if !ok {
		return ""
	}
	for _, line := range strings.Split(section, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == name {
			return line
		}
	}
	return ""
}

// waitCheckState polls `hostctl status` until check name shows state
// (and every part), and returns that output.
func (d *testDaemon) waitCheckState(t *testing.T, name, state string, parts ...string) string {
	t.Helper()
	var out string
	retryUntil(t, 30*time.Second, fmt.Sprintf("check %s %s in hostctl status", name, state), func() error {
		r := d.hostctl(t, "status")
		out = r.stdout
		row := checkRow(out, name)
		if f := strings.Fields(row); len(f) < 2 || f[1] != state || !containsAll(row, parts) {
			return fmt.Errorf("row %q (want %s with %q); exit %d\n%s%s", row, state, parts, r.code, r.stdout, r.stderr)
		}
		return nil
	})
	return out
}

// checksJSON is `hostctl status --json`'s checks, by name.
func (d *testDaemon) checksJSON(t *testing.T) map[string]apitype.Check {
	t.Helper()
	r := d.hostctl(t, "status", "--json")
	var out struct {
		Checks []apitype.Check `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("hostctl status --json: %v\n%s%s", err, r.stdout, r.stderr)
	}
	m := map[string]apitype.Check{}
	for _, c := range out.Checks {
		m[c.Name] = c
	}
	return m
}

// TestChecksThroughTheDaemon: services hostctl does not run, as a TCP
// listener and an HTTP server that the test starts and stops. Each check
// going down raises check_failed:NAME at a real webhook receiver, with
// the probe's error, the notes and since when, and `hostctl status` shows
// it down; coming back resolves it and status shows it up. A reload adds,
// changes and removes checks without touching the others, and a bad one
// keeps the running config.
func TestChecksThroughTheDaemon(t *testing.T) {
	hook := newHookReceiver(t)
	db, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dbAddr := db.Addr().String()
	go acceptAll(db)
	defer func() { db.Close() }()
	es := startFakeES(t)

	const dbNotes = "Postgres: the site is totally non-operational without it. Check the RDS console."
	const esNotes = "ElasticSearch is the most fragile part of the stack: restart it on the search host."
	checks := func(esNotes, extra string) string {
		return fmt.Sprintf(`
[[alerts.sink]]
name = "hook"
type = "webhook"
url = %q
secret_file = %q

[program.idle]
command = "/bin/sleep 1000"

[check.db]
tcp = %q
interval = "200ms"
timeout = "10s"
failures = 2
severity = "critical"
notes = %q

[check.search]
http = "http://%s/_cluster/health"
body = ['"status":"green"', '"status":"yellow"']
interval = "200ms"
timeout = "10s"
failures = 2
notes = %q
%s`, hook.url, hook.secretFile, dbAddr, dbNotes, es.addr, esNotes, extra)
	}
	d := startDaemon(t, checks(esNotes, ""), daemonOpts{})

	// Both up, in hostctl status and in the API.
	d.waitCheckState(t, "db", "up", "tcp "+dbAddr)
	out := d.waitCheckState(t, "search", "up")
	if !strings.Contains(out, "services hostctl does not run") {
		t.Errorf("no Checks section header:\n%s", out)
	}

	// Postgres goes away: down after 2 failed probes, alerted with the
	// error, the notes and since when.
	db.Close()
	trig := hook.wait("trigger", "check_failed:db", 30*time.Second)
	if trig.Condition != "check_failed" || trig.Severity != "critical" || trig.Details["notes"] != dbNotes ||
		!strings.Contains(fmt.Sprint(trig.Details["error"]), "connect "+dbAddr) || trig.Details["down_since"] == nil ||
		!strings.Contains(trig.Summary, "check db") || !strings.Contains(trig.Summary, "is down since") {
		t.Errorf("check_failed:db trigger = %+v", trig)
	}
	out = d.waitCheckState(t, "db", "down", "connect "+dbAddr)
	if row := checkRow(out, "search"); !strings.Contains(row, " up ") {
		t.Errorf("search is not up while db is down: %q", row)
	}
	if r := d.hostctl(t, "status", "db"); !strings.Contains(r.stdout, "notes (db): "+dbNotes) || strings.Contains(r.stdout, "idle") ||
		checkRow(r.stdout, "search") != "" || !strings.Contains(checkRow(r.stdout, "db"), "down") {
		t.Errorf("hostctl status db: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if b := string(d.metrics(t)); !strings.Contains(b, `hostctl_check_up{check="db"} 0`) || !strings.Contains(b, `hostctl_check_up{check="search"} 1`) ||
		!strings.Contains(b, `hostctl_check_failures_total{check="db"}`) || !strings.Contains(b, `hostctl_check_probe_duration_seconds{check="search"}`) ||
		!strings.Contains(b, `hostctl_alerts_active{condition="check_failed"} 1`) {
		t.Errorf("/metrics while db is down:\n%s", grepLines(b, "check"))
	}
	if r := d.hostctl(t, "alerts"); !strings.Contains(r.stdout, "check db") {
		t.Errorf("hostctl alerts does not list check db:\n%s", r.stdout)
	}

	// It comes back: one passing probe resolves the alert.
	db = listenAgain(t, dbAddr)
	go acceptAll(db)
	res := hook.wait("resolve", "check_failed:db", 30*time.Second)
	if !strings.Contains(res.ResolveSummary, "up again") {
		t.Errorf("check_failed:db resolve = %+v", res)
	}
	d.waitCheckState(t, "db", "up")

	// ElasticSearch red: 200, but the body holds neither green nor yellow.
	es.set("red")
	trig = hook.wait("trigger", "check_failed:search", 30*time.Second)
	if e := fmt.Sprint(trig.Details["error"]); !strings.Contains(e, "GET /_cluster/health: 200, but the body holds none of") || !strings.Contains(e, `"status":"red"`) ||
		trig.Details["notes"] != esNotes || trig.Severity != "error" {
		t.Errorf("check_failed:search trigger = %+v", trig)
	}
	d.waitCheckState(t, "search", "down", "body holds none")
	es.set("yellow") // degraded but serving: up
	hook.wait("resolve", "check_failed:search", 30*time.Second)
	d.waitCheckState(t, "search", "up")

	// A reload adds a check, changes one and leaves db alone; a bad one
	// changes nothing.
	before := d.checksJSON(t)["db"]
	writeConfig(t, d.dir, "", checks(esNotes+" (changed)", fmt.Sprintf(`
[check.cache]
tcp = %q
interval = "200ms"
`, dbAddr)))
	if r := d.hostctl(t, "reload"); r.code != 0 {
		t.Fatalf("hostctl reload: %d %s %s", r.code, r.stdout, r.stderr)
	}
	d.waitLog(t, 30*time.Second, "checks reloaded", `"added":["cache"]`, `"changed":["search"]`)
	d.waitCheckState(t, "cache", "up")
	after := d.checksJSON(t)
	if a := after["db"]; !a.Since.Equal(before.Since) || a.Probes <= before.Probes {
		t.Errorf("db was restarted by the reload: before %+v, after %+v", before, a)
	}
	if r := d.hostctl(t, "status", "search"); !strings.Contains(r.stdout, "(changed)") {
		t.Errorf("search's notes did not change:\n%s", r.stdout)
	}
	good, err := os.ReadFile(d.cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, d.dir, "", checks(esNotes, `
[check.broken]
tcp = "db"
interval = "0s"
`))
	if r := d.hostctl(t, "reload"); r.code == 0 || !strings.Contains(r.stderr, "check.broken.tcp") || !strings.Contains(r.stderr, "check.broken.interval") {
		t.Errorf("a bad check was reloaded: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if c := d.checksJSON(t); c["cache"].Name == "" || c["broken"].Name != "" || !strings.Contains(c["search"].Notes, "(changed)") {
		t.Errorf("a failed reload changed the checks: %+v", c)
	}
	if err := os.WriteFile(d.cfg, good, 0o644); err != nil {
		t.Fatal(err)
	}

	hook.mu.Lock()
	bad := hook.bad
	hook.mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("the receiver rejected requests:\n%s", hook.dump())
	}
}

// acceptAll accepts and closes connections until ln is closed.
func acceptAll(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// TestCheckExecRunsAsItsUser: an exec check runs as its user, never as
// hostctl (root). The same command, cat of a root-only file, fails as
// hct-check and passes as root; cat of a file anyone may read passes as
// hct-check, so the failure is the file's permission and not the
// command. Removing a check that is down resolves its alert.
func TestCheckExecRunsAsItsUser(t *testing.T) {
	testuser.Ensure(t, checkUser)
	hook := newHookReceiver(t)
	dir, err := os.MkdirTemp("", "hct-check")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the user may look in, not read the secret
		t.Fatal(err)
	}
	secret, public := filepath.Join(dir, "secret"), filepath.Join(dir, "public")
	if err := os.WriteFile(secret, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(public, []byte("anyone\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exec := func(name, file, user string) string {
		return fmt.Sprintf(`
[check.%s]
exec = ["/bin/cat", %q]
user = %q
interval = "200ms"
timeout = "20s"
failures = 1
notes = "an exec check as %s"
`, name, file, user, user)
	}
	sink := fmt.Sprintf(`
[[alerts.sink]]
name = "hook"
type = "webhook"
url = %q
secret_file = %q

[program.idle]
command = "/bin/sleep 1000"
`, hook.url, hook.secretFile)
	d := startDaemon(t, sink+exec("secret-as-app", secret, checkUser)+exec("public-as-app", public, checkUser)+exec("secret-as-root", secret, "root"), daemonOpts{})

	d.waitCheckState(t, "public-as-app", "up", "exec /bin/cat as "+checkUser)
	d.waitCheckState(t, "secret-as-root", "up")
	d.waitCheckState(t, "secret-as-app", "down", "cat: exit status 1")
	trig := hook.wait("trigger", "check_failed:secret-as-app", 30*time.Second)
	if trig.Details["notes"] != "an exec check as "+checkUser {
		t.Errorf("trigger = %+v", trig)
	}

	// Removed from the config: its alert resolves, the others run on.
	writeConfig(t, d.dir, "", sink+exec("public-as-app", public, checkUser)+exec("secret-as-root", secret, "root"))
	if r := d.hostctl(t, "reload"); r.code != 0 {
		t.Fatalf("hostctl reload: %d %s %s", r.code, r.stdout, r.stderr)
	}
	res := hook.wait("resolve", "check_failed:secret-as-app", 30*time.Second)
	if !strings.Contains(res.ResolveSummary, "removed from the config") {
		t.Errorf("resolve = %+v", res)
	}
	if c := d.checksJSON(t); c["secret-as-app"].Name != "" || c["public-as-app"].State != apitype.CheckUp {
		t.Errorf("checks after the reload: %+v", c)
	}
}

// TestDashboardChecks loads the dashboard in headless Chromium and reads
// the checks' own section: a check that is down with its error and
// notes, one that is up, and the check_failed alert at the top.
func TestDashboardChecks(t *testing.T) {
	requireChromium(t)
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go acceptAll(up)
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := down.Addr().String()
	down.Close() // nothing listens there
	port := freePort(t)
	tokFile := filepath.Join(t.TempDir(), "token")
	token := "dashboard-checks-token-0123456789"
	if err := os.WriteFile(tokFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, fmt.Sprintf(`
[program.idle]
command = "/bin/sleep 1000"

[check.db]
tcp = %q
interval = "200ms"
failures = 1
severity = "critical"
notes = "Postgres: restart it on the database server."

[check.cache]
tcp = %q
interval = "200ms"
`, downAddr, up.Addr().String()), daemonOpts{admin: fmt.Sprintf("listen = \"127.0.0.1:%d\"\ntoken_file = %q\n", port, tokFile)})

	bctx := headlessChromium(t)
	const db, cache = `#checks:not([hidden]) tr[data-check="db"]`, `#checks:not([hidden]) tr[data-check="cache"]`
	err = chromedp.Do(bctx,
		chromedp.Navigate(fmt.Sprintf("http://127.0.0.1:%d/#token=%s", port, token)),
		chromedp.WaitVisible(chromedp.CSS(db+`[data-state="down"] td.info .notes`)),
		chromedp.WaitVisible(chromedp.CSS(cache+`[data-state="up"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#alerts:not([hidden]) li.sev-critical[data-key="check_failed:db"] .summary`)),
	)
	if err != nil {
		t.Fatalf("the dashboard's checks: %v", err)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {textContent: "<missing>"}).textContent`, sel)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := text(db + ` td.info`); !strings.Contains(got, "connect "+downAddr+": connection refused") || !strings.Contains(got, "Postgres: restart it on the database server.") {
		t.Errorf("db's last error and notes: %q", got)
	}
	if got := text(db + ` td.state`); got != "down" {
		t.Errorf("db's state cell: %q", got)
	}
}
