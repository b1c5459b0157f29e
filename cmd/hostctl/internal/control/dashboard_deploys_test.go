package control

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/metrics"
)

// TestDashboardDeploys loads the dashboard in headless Chromium with a
// [deploy] whose last deploy failed: the live release is named with its
// commit and slot, and the last deploys are listed newest first with
// their result, how long they took, the failing step and the one-line
// reason.
func TestDashboardDeploys(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed; run scripts/test-deps.sh as root (make test does), or apt-get install -y chromium")
	}
	t0 := time.Now().Add(-time.Hour).UTC()
	const reason = "gunicorn@a did not start: FATAL: ModuleNotFoundError: No module named 'x'"
	live := apitype.Release{ID: "20261207T210000Z-abc1234", SHA: "abc1234def5678aa", State: apitype.ReleaseLive, Slot: "b", Created: t0, LiveSince: t0.Add(time.Minute)}
	f := &fakeReleases{deploys: metrics.NewDeploys("", nil), resp: apitype.ReleasesResponse{Configured: true, Live: &live, Releases: []apitype.Release{live}}}
	f.deploys.Add(apitype.DeployRecord{Release: live.ID, Result: apitype.DeployOK, Started: t0, Ended: t0.Add(65 * time.Second), Seconds: 65})
	f.deploys.Add(apitype.DeployRecord{Release: "20261207T220000Z-bad0001", Result: apitype.DeployFailed, Step: "gate", Reason: reason,
		Started: t0.Add(30 * time.Minute), Ended: t0.Add(31 * time.Minute), Seconds: 42})
	const token = "dashboard-deploys-token-0123456789"
	s := New(Options{Programs: newFake(), Releases: f, Token: token})
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
	const failedRow = `#deploys:not([hidden]) tr[data-result="failed"]`
	err = chromedp.Do(bctx,
		chromedp.Navigate("http://"+l.Addr().String()+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), token),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.WaitVisible(chromedp.CSS(failedRow)),
	)
	if err != nil {
		t.Fatalf("loading the dashboard: %v", err)
	}
	got, err := chromedp.Run(bctx, chromedp.Evaluate[map[string]string](`({
		live: document.querySelector("#live-release").textContent,
		rows: [...document.querySelectorAll("#deploy-table tbody tr")].map((tr) => tr.dataset.result).join(","),
		result: document.querySelector(`+"`"+failedRow+` td.state`+"`"+`).textContent,
		took: document.querySelector(`+"`"+failedRow+` td.took`+"`"+`).textContent,
		step: document.querySelector(`+"`"+failedRow+` td:nth-child(5)`+"`"+`).textContent,
		reason: document.querySelector(`+"`"+failedRow+` td.reason`+"`"+`).textContent,
	})`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"live":   fmt.Sprintf("%s (abc1234def56, slot b) live since 59m ago", live.ID),
		"rows":   "failed,ok",
		"result": "failed",
		"took":   "00:00:42",
		"step":   "gate",
		"reason": reason,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("dashboard %s = %q, want %q", k, got[k], w)
		}
	}
}
