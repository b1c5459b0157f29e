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
)

// socketApp is a program that binds a unix socket and answers "hello from
// app" on it only once the file gate exists: a gunicorn that is slow to
// bind (the test decides when).
const socketApp = `
import http.server, os, socketserver, sys, time
gate, path = sys.argv[1], sys.argv[2]
while not os.path.exists(gate):
    time.sleep(0.05)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = b"hello from app"
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def address_string(self):
        return "unix"
socketserver.UnixStreamServer(path, H).serve_forever()
`

// servesConfig is issue 20's reproduction: upstream = "unix:///DIR/app.sock"
// (three slashes) and a program that binds that socket late, its command
// naming it; serves, when not "", is added to the program.
func servesConfig(dir string, listen int, serves string) string {
	sock := filepath.Join(dir, "app.sock")
	prog := fmt.Sprintf("[program.app]\ncommand = [\"python3\", \"-c\", %q, %q, %q]\nstart_secs = \"0s\"\nstop_signal = \"KILL\"\n%s",
		socketApp, filepath.Join(dir, "gate"), sock, serves)
	return prog + fmt.Sprintf("\n[proxy]\nlisten = \"127.0.0.1:%d\"\nupstream = \"unix://%s\"\nhealth_path = \"/.hostctl/health\"\n", listen, sock)
}

// TestServesIsExplicit is issue 20 item 3 end to end. Without serves, a
// program whose command names a proxy upstream that no program serves
// makes `hostctl check` fail, naming the program and the key to write
// (before: "OK", and the proxy did not wait for it). With serves, the
// proxy waits for that program, and health_path answers 503 until its
// socket accepts connections (before: 200 "no program of this hostctl
// serves ..." while the socket did not exist), then 200, and requests
// reach the app.
func TestServesIsExplicit(t *testing.T) {
	t.Run("check refuses the guess", func(t *testing.T) {
		dir := t.TempDir()
		cfg := writeConfig(t, dir, "", servesConfig(dir, freePort(t), ""))
		r := runHostctl(t, "check", "-c", cfg)
		if r.code != 1 || !strings.Contains(r.stderr, "proxy.upstream: unix://") || !strings.Contains(r.stderr, "program.app mentions it") ||
			!strings.Contains(r.stderr, `write serves = "unix:`+filepath.Join(dir, "app.sock")+`" in [program.app]`) {
			t.Fatalf("hostctl check: exit %d, want 1 with an error at proxy.upstream that names program.app and serves:\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("health_path waits for the socket", func(t *testing.T) {
		listen := freePort(t)
		var sockDir string
		d := startDaemon(t, "", daemonOpts{config: func(t testing.TB, dir string) (string, []string) {
			sockDir = dir
			// serves written in the other spelling: one upstream either way.
			return writeConfig(t, dir, "", servesConfig(dir, listen, fmt.Sprintf("serves = \"unix:%s\"\n", filepath.Join(dir, "app.sock")))), nil
		}})
		d.waitLog(t, 30*time.Second, "the proxy starts once its upstream programs are ready", `"programs":["app"]`)
		health := fmt.Sprintf("http://127.0.0.1:%d/.hostctl/health", listen)
		get := func(url string) (int, string) {
			c := &http.Client{Timeout: 10 * time.Second}
			res, err := c.Get(url)
			if err != nil {
				return 0, err.Error()
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}
		// READY=1 came after the proxy's start: app is RUNNING, its socket
		// is not there yet.
		if _, err := os.Stat(filepath.Join(sockDir, "app.sock")); err == nil {
			t.Fatal("the socket exists before the gate opened")
		}
		if code, body := get(health); code != 503 || !strings.Contains(body, "down") {
			t.Fatalf("health_path while app.sock does not exist: %d %q, want 503 down", code, body)
		}
		if err := os.WriteFile(filepath.Join(sockDir, "gate"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body := get(health)
			if code == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("health_path once app.sock accepts connections: %d %q, want 200 within 30s", code, body)
			}
			time.Sleep(50 * time.Millisecond) // bounded poll: nothing signals the socket's bind
		}
		if code, body := get(fmt.Sprintf("http://127.0.0.1:%d/", listen)); code != 200 || body != "hello from app" {
			t.Errorf("GET / through the proxy: %d %q, want the app's answer", code, body)
		}
	})
}
