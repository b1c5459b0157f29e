package control

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/supervisor"
)

// TestDashboardOnCall loads the dashboard in headless Chromium against a
// server with a fake supervisor and alert manager, sampling every 50ms,
// and checks what a person on call reads first: the alert at the top with
// its command, why the FATAL program is down, memory against the limit,
// health, and the memory sparkline of the last hour.
// (cmd/hostctl/e2e's TestDashboardRestart does the same against the real
// daemon.)
func TestDashboardOnCall(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed; run scripts/test-deps.sh as root (make test does), or apt-get install -y chromium")
	}
	const stderrLine = "ImportError: no module named app"
	t0 := time.Now() // worker's next try is 5 minutes after it
	f := &fakePrograms{sts: []supervisor.Status{
		{Name: "web", State: supervisor.Running, PID: os.Getpid(), StartedAt: time.Now(), MemoryLimit: 4e9,
			Health: &supervisor.HealthStatus{Healthy: true}},
		{Name: "worker", State: supervisor.Fatal, Tries: 2, LastExit: &supervisor.ExitStatus{Code: 1},
			LastStderr: stderrLine, NextStart: t0.Add(5 * time.Minute), Info: "gave up after 2 tries"},
	}}
	fa := &fakeAlerts{active: []alert.Alert{{Key: "fatal:worker", Condition: alert.CondFatal, Program: "worker", Severity: alert.Critical,
		Summary: "worker is FATAL: gave up after 2 tries", Command: "hostctl tail worker stderr", Since: time.Now().Add(-12 * time.Minute)}}}
	const token = "dashboard-oncall-token-0123456789"
	s := New(Options{Programs: f, Alerts: fa, HistoryInterval: 50 * time.Millisecond, Token: token})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ServeTCP(l); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Close(ctx)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	const alertSel = `#alerts:not([hidden]) li.sev-critical[data-key="fatal:worker"]`
	const web, worker = `tr[data-name="web"]`, `tr[data-name="worker"]`
	// The sampler has taken one point when the page first asks, and a new
	// one every 50ms: the page fetches again on its next refresh (2s).
	const spark2 = web + ` svg.spark:not([data-points="0"]):not([data-points="1"]) polyline`
	err = chromedp.Do(bctx,
		chromedp.Navigate("http://"+l.Addr().String()+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), token),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.WaitVisible(chromedp.CSS(alertSel)),
		chromedp.WaitVisible(chromedp.CSS(worker)),
		chromedp.WaitReady(chromedp.CSS(spark2)),
	)
	if err != nil {
		t.Fatalf("loading the dashboard: %v", err)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {textContent: "<missing>"}).textContent`, sel)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		what, sel string
		want      *regexp.Regexp
	}{
		{"alert summary", alertSel + ` .summary`, regexp.MustCompile(`^worker is FATAL: gave up after 2 tries$`)},
		{"alert since", alertSel + ` .since`, regexp.MustCompile(`^since 12m ago$`)},
		{"alert command", alertSel + ` .command`, regexp.MustCompile(`^hostctl tail worker stderr$`)},
		{"FATAL's last stderr line", worker + ` td.info code.stderr`, regexp.MustCompile(`^` + stderrLine + `$`)},
		{"memory against the limit", web + ` td.mem .mem-text`, regexp.MustCompile(`^[\d.]+[BKM]/4G$`)},
		{"health", web + ` td.health`, regexp.MustCompile(`^healthy$`)},
	} {
		if got := text(tc.sel); !tc.want.MatchString(got) {
			t.Errorf("%s (%s) = %q, want %s", tc.what, tc.sel, got, tc.want)
		}
	}
	// The time left until the next try, as the page counted it down: 5m
	// less however long the browser took to get here (seconds on a busy
	// machine), never more.
	next := text(worker + ` td.info .next`)
	elapsed := time.Since(t0)
	if m := regexp.MustCompile(`^next try in (\d+)m(\d+)s$`).FindStringSubmatch(next); m == nil {
		t.Errorf("FATAL's next try = %q, want \"next try in XmYs\"", next)
	} else {
		mins, _ := strconv.Atoi(m[1])
		secs, _ := strconv.Atoi(m[2])
		left := time.Duration(mins)*time.Minute + time.Duration(secs)*time.Second
		if left > 5*time.Minute || left < 5*time.Minute-elapsed-time.Second {
			t.Errorf("FATAL's next try = %q, %s after the test set it 5m ahead", next, elapsed.Round(time.Millisecond))
		}
	}
	checks, err := chromedp.Run(bctx, chromedp.Evaluate[map[string]bool](`({
		alertsFirst: !!(document.querySelector("#alerts").compareDocumentPosition(document.querySelector("#programs")) & Node.DOCUMENT_POSITION_FOLLOWING),
		meter: document.querySelector(`+"`"+web+` td.mem meter`+"`"+`)?.max === 4e9,
		sparkPoints: document.querySelector(`+"`"+spark2+"`"+`).points.numberOfItems >= 2,
	})`))
	if err != nil {
		t.Fatal(err)
	}
	for k, ok := range checks {
		if !ok {
			t.Errorf("dashboard check %s failed", k)
		}
	}
	if len(checks) != 3 {
		t.Errorf("dashboard checks = %v", checks)
	}
}
