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

// TestImportRun converts a supervisord.conf and an nginx site with the
// real `hostctl import`, then runs the result with `hostctl run`: the
// programs come up as supervisord ran them and the proxy serves the site
// as nginx did (the upstream, a static location with its expires).
func TestImportRun(t *testing.T) {
	webPort, proxyPort := freePort(t), freePort(t)
	d := startDaemon(t, "", daemonOpts{config: func(t testing.TB, dir string) (string, []string) {
		env := []string{"TESTDIR=" + dir, fmt.Sprintf("WEBPORT=%d", webPort)}
		// The proxy reads static files as www-data (proxy.file_user), as
		// nginx's workers would: the static dir must be reachable.
		// The daemon's dir only: its parent is the system's temp dir
		// (1777), which a test must never change.
		for d := dir; d != filepath.Clean(os.TempDir()) && d != "/"; d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, sub := range []string{"www", "static", "log"} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		os.WriteFile(filepath.Join(dir, "www", "index.html"), []byte("from the upstream\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "static", "site.css"), []byte("body { color: red }\n"), 0o644)
		conf := `; as supervisord reads it: %(ENV_X)s from its environment, ; comments
[unix_http_server]
file = %(ENV_TESTDIR)s/run/hostctl.sock

[supervisord]
childlogdir = %(ENV_TESTDIR)s/log

[program:web]
command = python3 -m http.server --bind 127.0.0.1 %(ENV_WEBPORT)s ; the app
directory = %(ENV_TESTDIR)s/www
priority = 10
startsecs = 1

[program:worker]
command = /bin/sh -c "echo %(program_name)s %(process_num)d of %(numprocs)d up; exec sleep 600"
priority = 20
startsecs = 0
stopsignal = INT
redirect_stderr = true
`
		site := fmt.Sprintf(`upstream app { server 127.0.0.1:%d; }
server {
    listen 127.0.0.1:%d;
    server_name _;
    location /static/ { alias %s/static/; expires 2h; }
    location / { proxy_pass http://app; proxy_set_header Host $host; }
}
`, webPort, proxyPort, dir)
		sup := filepath.Join(dir, "supervisord.conf")
		nginx := filepath.Join(dir, "site.conf")
		out := filepath.Join(dir, "hostctl.toml")
		os.WriteFile(sup, []byte(conf), 0o644)
		os.WriteFile(nginx, []byte(site), 0o644)
		r := runHostctlEnv(t, env, "import", sup, "--nginx", nginx, "-o", out)
		if r.code != 0 {
			t.Fatalf("hostctl import: exit %d\n%s", r.code, r.stderr)
		}
		for _, want := range []string{"imported 2 programs, 0 groups, 1 sites", "hostctl check: OK on this machine", "wrote " + out} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("import's summary lacks %q:\n%s", want, r.stderr)
			}
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		// The state dir is hostctl's own (supervisord has none): the test's.
		text := strings.Replace(string(b), "[admin]\n", fmt.Sprintf("[admin]\nstate_dir = %q\n", filepath.Join(dir, "state")), 1)
		if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return out, env
	}})
	b, _ := os.ReadFile(d.cfg)
	for _, want := range []string{`command = "python3 -m http.server --bind 127.0.0.1 ${WEBPORT}"`, `depends_on = ["web"]`, `stop_signal = "INT"`, `max_age = "2h"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("imported config lacks %s:\n%s", want, b)
		}
	}

	st := runHostctl(t, "--socket", d.socket, "status")
	if st.code != 0 || !strings.Contains(st.stdout, "web") || !strings.Contains(st.stdout, "worker") {
		t.Fatalf("status: exit %d\n%s%s", st.code, st.stdout, st.stderr)
	}
	// worker is RUNNING at its spawn (startsecs 0): its line reaches the
	// log a little later.
	retryUntil(t, 30*time.Second, "worker's line in its log", func() error {
		if tail := runHostctl(t, "--socket", d.socket, "tail", "worker"); !strings.Contains(tail.stdout, "worker 0 of 1 up") {
			return fmt.Errorf("worker's log: %q", tail.stdout)
		}
		return nil
	})

	c := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", proxyPort, path))
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	if resp, body := get("/"); resp.StatusCode != 200 || body != "from the upstream\n" {
		t.Errorf("GET / through the proxy: %d %q", resp.StatusCode, body)
	}
	resp, body := get("/static/site.css")
	if resp.StatusCode != 200 || body != "body { color: red }\n" || resp.Header.Get("Cache-Control") != "public, max-age=7200" {
		t.Errorf("GET /static/site.css: %d %q Cache-Control %q", resp.StatusCode, body, resp.Header.Get("Cache-Control"))
	}
}

// runHostctlEnv is runHostctl with extra environment (set for the rest
// of the test).
func runHostctlEnv(t testing.TB, env []string, args ...string) result {
	t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return runHostctl(t, args...)
}
