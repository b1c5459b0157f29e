package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testuser"
)

// updialApp answers "app pid N" on the unix socket argv[1], removing a
// stale one first (as gunicorn does when it binds). It runs under
// Debian's /usr/bin/python3: the app user may not reach another python3
// on root's PATH.
const updialApp = `
import http.server, os, socketserver, sys
path = sys.argv[1]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = b"app pid %d" % os.getpid()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    do_POST = do_GET
    def address_string(self):
        return "unix"
socketserver.UnixStreamServer(path, H).serve_forever()
`

// TestUpstreamLinkToAdminSocket is the reproduction through the real
// binary: the app's user (hct-updial) replaces its gunicorn socket with a
// symlink to hostctl's own admin socket (mv -T). Before the fix an
// anonymous GET /v1/programs through the site returned the program list
// and POST /v1/stop stopped a program; now the proxy refuses the link (a
// failed dial: 502), logs it, and the program's own socket, recreated by
// a restart, serves again.
func TestUpstreamLinkToAdminSocket(t *testing.T) {
	u := testuser.Ensure(t, "hct-updial")
	listen := freePort(t)
	var sock string
	d := startDaemon(t, "", daemonOpts{config: func(t testing.TB, dir string) (string, []string) {
		appDir := filepath.Join(dir, "app")
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(appDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(appDir, u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
		sock = filepath.Join(appDir, "web.sock")
		prog := fmt.Sprintf("[program.web]\ncommand = [\"/usr/bin/python3\", \"-c\", %q, %q]\nuser = %q\nserves = \"unix:%s\"\nstart_secs = \"0s\"\nstop_signal = \"KILL\"\n",
			updialApp, sock, u.Name, sock)
		prog += fmt.Sprintf("\n[proxy]\nlisten = \"127.0.0.1:%d\"\nupstream = \"unix:%s\"\nretry_for = \"0s\"\n", listen, sock)
		return writeConfig(t, dir, "", prog), nil
	}})
	site := fmt.Sprintf("http://127.0.0.1:%d", listen)
	c := &http.Client{Timeout: 20 * time.Second}
	do := func(method, path string) (int, string) {
		req, err := http.NewRequest(method, site+path, strings.NewReader(`{"names":["web"]}`))
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	// The program's socket serves (bounded poll: nothing signals its bind).
	waitApp := func(what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			code, body := do("GET", "/")
			if code == 200 && strings.HasPrefix(body, "app pid ") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: GET / %d %q, want the app's answer within 60s", what, code, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitApp("before the attack")

	link := sock + ".lnk"
	u.Run(t, "ln", "-sfn", d.socket, link)
	u.Run(t, "mv", "-T", link, sock)
	code, body := do("GET", "/v1/programs")
	if strings.Contains(body, `"web"`) || code == 200 {
		t.Fatalf("an anonymous GET /v1/programs through the site reached the admin API: %d %q", code, body)
	}
	if code != 502 {
		t.Errorf("GET /v1/programs through the link: %d %q, want 502", code, body)
	}
	code, body = do("POST", "/v1/stop")
	if code != 502 {
		t.Errorf("POST /v1/stop through the link: %d %q, want 502", code, body)
	}
	d.waitLog(t, 30*time.Second, "unix upstream connection refused", sock)
	if st := d.status(t)["web"]; st.State != "RUNNING" {
		t.Fatalf("web is %s after the attack, want RUNNING", st.State)
	}

	// The program restarts: it removes the link and binds its socket again.
	if r := d.hostctl(t, "restart", "web"); r.code != 0 {
		t.Fatalf("hostctl restart web: %d %s%s", r.code, r.stdout, r.stderr)
	}
	waitApp("after the program's restart")
}
