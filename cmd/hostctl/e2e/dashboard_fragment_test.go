package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestDashboardFragmentLogin opens the dashboard the way `make run` prints
// it, http://127.0.0.1:PORT/#token=...: the page signs in with the token
// from the fragment without asking, keeps it in the tab's sessionStorage,
// and drops it from the address bar; the token never reaches the daemon
// in a URL (a browser does not send the fragment).
func TestDashboardFragmentLogin(t *testing.T) {
	requireChromium(t)
	port := freePort(t)
	tokFile := filepath.Join(t.TempDir(), "token")
	token := "fragment-test-token-0123456789abcdef"
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, webProgram, daemonOpts{admin: fmt.Sprintf("listen = \"127.0.0.1:%d\"\ntoken_file = %q\n", port, tokFile)})
	base := fmt.Sprintf("http://127.0.0.1:%d/", port)

	bctx := headlessChromium(t)

	err := chromedp.Do(bctx,
		chromedp.Navigate(base+"#token="+token),
		// Signed in: the program table, with no token typed.
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="web"][data-state="RUNNING"]`)),
	)
	if err != nil {
		t.Fatalf("opening the dashboard with #token=: %v", err)
	}
	href, err := chromedp.Run(bctx, chromedp.Evaluate[string](`location.href`))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := chromedp.Run(bctx, chromedp.Evaluate[string](`sessionStorage.getItem("hostctl-token")`))
	if err != nil {
		t.Fatal(err)
	}
	loginHidden, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector("#login").hidden`))
	if err != nil {
		t.Fatal(err)
	}
	if href != base {
		t.Errorf("address bar %q, want %q: the token stays in it (and in the history)", href, base)
	}
	if stored != token {
		t.Errorf("sessionStorage token %q, want the fragment's", stored)
	}
	if !loginHidden {
		t.Errorf("the page still asks for the token")
	}
	if strings.Contains(d.log(), token) {
		t.Errorf("the token is in the daemon's log")
	}
}
