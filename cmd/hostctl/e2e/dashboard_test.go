package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

// TestDashboardRestart loads the dashboard in headless Chromium through the
// TCP listener, signs in with the token, reads what a person on call needs
// (why the FATAL program is down, memory against memory_limit, health, the
// memory sparkline), clicks restart on a program and sees its pid change,
// then follows its log live.
func TestDashboardRestart(t *testing.T) {
	requireChromium(t)
	port := freePort(t)
	tokFile := filepath.Join(t.TempDir(), "token")
	token := "dashboard-test-token-0123456789"
	if err := os.WriteFile(tokFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, webProgram+badProgram+`
[program.capped]
command = ["/bin/sh", "-c", "exec sleep 1000"]
start_secs = "0s"
memory_limit = "1GB"
health = { exec = "true", interval = "1s" }
`, daemonOpts{admin: fmt.Sprintf("listen = \"127.0.0.1:%d\"\ntoken_file = %q\n", port, tokFile)})
	base := fmt.Sprintf("http://127.0.0.1:%d/", port)

	bctx := headlessChromium(t)

	const row = `tr[data-name="web"]`
	err := chromedp.Do(bctx,
		chromedp.Navigate(base),
		// The API answers 401 without the token: the page asks for it.
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), token),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.WaitVisible(chromedp.CSS(row+`[data-state="RUNNING"]`)),
	)
	if err != nil {
		t.Fatalf("loading the dashboard: %v", err)
	}
	dashboardOnCall(t, bctx)

	attr, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS(row), "data-pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid := attr.Value
	if pid == "" || pid == "0" {
		t.Fatalf("web's row has pid %q", pid)
	}
	stored, err := chromedp.Run(bctx, chromedp.Evaluate[string](`sessionStorage.getItem("hostctl-token")`))
	if err != nil {
		t.Fatal(err)
	}
	if stored != token {
		t.Errorf("sessionStorage token %q, want the token entered", stored)
	}
	if want := strconv.Itoa(d.status(t)["web"].PID); pid != want {
		t.Errorf("dashboard pid %s, API pid %s", pid, want)
	}

	err = chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(row+` button[data-action="restart"]`)),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`%s[data-state="RUNNING"]:not([data-pid="%s"])`, row, pid))),
	)
	if err != nil {
		t.Fatalf("restart from the dashboard: %v", err)
	}
	attr, err = chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS(row), "data-pid"))
	if err != nil {
		t.Fatal(err)
	}
	newPID := attr.Value
	// The live log view: follow web's stdout, see a line written after it
	// started (SIGUSR1 makes web print got-usr1).
	const logHas = `new Promise((resolve) => {
		const pre = document.querySelector("#log-lines");
		const check = () => { if (pre.textContent.includes(%q)) { obs.disconnect(); resolve(true); } };
		const obs = new MutationObserver(check);
		obs.observe(pre, {childList: true, characterData: true, subtree: true});
		check();
	})`
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(row+` button[data-action="log"]`))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](fmt.Sprintf(logHas, "ready"), chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("log view: %v", err)
	}
	if r := d.hostctl(t, "signal", "USR1", "web"); r.code != 0 {
		t.Fatalf("signal: %s", r.stderr)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](fmt.Sprintf(logHas, "got-usr1"), chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("log view did not show the new line: %v", err)
	}

	web := d.status(t)["web"]
	if newPID == pid || newPID != strconv.Itoa(web.PID) || web.State != apitype.Running {
		t.Errorf("after restart: dashboard pid %s (was %s), API: %s pid %d", newPID, pid, web.State, web.PID)
	}
}

// dashboardOnCall checks what the dashboard tells a person on call about the
// programs of TestDashboardRestart: bad is FATAL with the line it wrote to
// stderr, capped shows its memory against its 1GB memory_limit and its
// health check's verdict, the FATAL alert is at the top of the page, and
// each program has its memory sparkline (one
// point so far: the daemon samples every 30s; cmd/hostctl/control's
// TestDashboardOnCall checks a line of several).
func dashboardOnCall(t *testing.T, bctx context.Context) {
	t.Helper()
	const bad, capped = `tr[data-name="bad"]`, `tr[data-name="capped"]`
	err := chromedp.Do(bctx,
		chromedp.WaitVisible(chromedp.CSS(bad+`[data-state="FATAL"] td.info code.stderr`)),
		chromedp.WaitVisible(chromedp.CSS(capped+`[data-state="RUNNING"] td.health[data-healthy="true"]`)),
		chromedp.WaitReady(chromedp.CSS(capped+` svg.spark:not([data-points="0"])`)),
		chromedp.WaitVisible(chromedp.CSS(`#alerts:not([hidden]) li.sev-critical[data-key="fatal:bad"] .summary`)),
	)
	if err != nil {
		t.Fatalf("on-call view: %v", err)
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
		{"FATAL's last stderr line", bad + ` td.info code.stderr`, regexp.MustCompile(`^failing$`)},
		{"memory against memory_limit", capped + ` td.mem .mem-text`, regexp.MustCompile(`^[\d.]+[KM]/1G$`)},
		{"health", capped + ` td.health`, regexp.MustCompile(`^healthy$`)},
		{"alert summary", `#alerts li[data-key="fatal:bad"] .summary`, regexp.MustCompile(`^bad is FATAL on .*failing`)},
		{"alerts above the programs", `#main > :first-child`, regexp.MustCompile(`bad is FATAL`)},
	} {
		if got := text(tc.sel); !tc.want.MatchString(got) {
			t.Errorf("%s (%s) = %q, want %s", tc.what, tc.sel, got, tc.want)
		}
	}
}
