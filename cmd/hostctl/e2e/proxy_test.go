package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

// upstreamApp is a program that the proxy waits for: it is RUNNING only
// once something listens on 127.0.0.1:port, which the test opens when it
// wants (serveUpstream).
func upstreamApp(port int) string {
	return fmt.Sprintf(`
[program.app]
command = ["/bin/sh", "-c", "exec sleep 1000"]
start_secs = "0s"
ready = { tcp = "127.0.0.1:%d", interval = "50ms", deadline = "10m" }
`, port)
}

func proxySection(listen, upstream int) string {
	return fmt.Sprintf("\n[proxy]\nlisten = \"127.0.0.1:%d\"\nupstream = \"127.0.0.1:%d\"\n", listen, upstream)
}

// serveUpstream answers "hello from app" on 127.0.0.1:port.
func serveUpstream(t *testing.T, port int) {
	t.Helper()
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from app")
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// listening reports whether something accepts connections on port.
func listening(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// proxyStatus is the proxy part of `hostctl status --json` (/v1/proxy).
func (d *testDaemon) proxyStatus(t *testing.T) apitype.ProxyStatus {
	t.Helper()
	r := d.hostctl(t, "status", "--json")
	var s struct {
		Proxy *apitype.ProxyStatus `json:"proxy"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s.Proxy == nil {
		t.Fatalf("status --json: %v, no proxy\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return *s.Proxy
}

// TestReloadDuringTheFirstProxyStart: the proxy's first start waits for
// app; a reload that moves the proxy to another port arrives meanwhile.
// The reload replaces the pending start: nothing listens until app is
// ready, then the proxy serves the reloaded config, and the first config
// never serves, not even once app is ready.
func TestReloadDuringTheFirstProxyStart(t *testing.T) {
	oldPort, newPort, upPort := freePort(t), freePort(t), freePort(t)
	d := startDaemon(t, upstreamApp(upPort)+proxySection(oldPort, upPort), daemonOpts{noReady: true})
	// The proxy's owner exists, its start pending, before the admin API
	// serves and this line is logged.
	d.waitLog(t, time.Minute, `"hostctl started"`)
	if r := d.hostctl(t, "status"); !strings.Contains(r.stdout, "proxy: NOT RUNNING: waiting for app") {
		t.Fatalf("status while app is not ready: exit %d, want the proxy waiting for app\n%s%s", r.code, r.stdout, r.stderr)
	}

	writeConfig(t, d.dir, "", upstreamApp(upPort)+proxySection(newPort, upPort))
	r := d.hostctl(t, "reload")
	if r.code != 0 || !strings.Contains(r.stdout, "proxy:   waiting") {
		t.Errorf("reload while the proxy waits for app: exit %d, want \"proxy:   waiting\"\n%s%s", r.code, r.stdout, r.stderr)
	}
	if ps := d.proxyStatus(t); ps.Running || ps.Info != "waiting for app" {
		t.Errorf("/v1/proxy after the reload, app not ready: %+v; want not running, waiting for app", ps)
	}
	for _, port := range []int{oldPort, newPort} {
		if listening(port) {
			t.Errorf("something listens on %d before app is ready", port)
		}
	}

	serveUpstream(t, upPort)
	// READY=1 comes once app is RUNNING and the proxy's first start is over.
	d.waitNote(t, "READY=1", time.Minute)
	want := fmt.Sprintf("127.0.0.1:%d", newPort)
	if ps := d.proxyStatus(t); !ps.Running || !slices.Equal(ps.Listen, []string{want}) || ps.Info != "" {
		t.Errorf("/v1/proxy once app is ready: %+v; want running on %s only", ps, want)
	}
	if r := d.hostctl(t, "status"); r.code != 0 || !strings.Contains(r.stdout, "proxy: running on "+want) {
		t.Errorf("status once app is ready: exit %d, want the proxy running on %s\n%s%s", r.code, want, r.stdout, r.stderr)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get("http://" + want + "/")
	if err != nil {
		t.Fatalf("GET through the reloaded proxy: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "hello from app" {
		t.Errorf("GET through the reloaded proxy: %s %q, want 200 \"hello from app\"", resp.Status, body)
	}
	if listening(oldPort) {
		t.Errorf("the first config's port %d listens: the old config was applied over the reloaded one", oldPort)
	}
	// The daemon logged it before READY=1, but its log and its notify
	// socket reach the test by two ways: wait for the line, then count.
	d.waitLog(t, 30*time.Second, `"proxy listening"`)
	if lines := d.logLines(`"proxy listening"`); len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Errorf("\"proxy listening\" lines: %q; want exactly one, on %s", lines, want)
	}
}

// TestShutdownDuringTheFirstProxyStart: SIGTERM right after hostctl
// started (its programs' start commands may still be on their way) and
// while the proxy waits for its upstream program stops what started, in
// order, starts nothing more, and exits 0 at once.
func TestShutdownDuringTheFirstProxyStart(t *testing.T) {
	listen, upPort := freePort(t), freePort(t)
	d := startDaemon(t, upstreamApp(upPort)+proxySection(listen, upPort), daemonOpts{noReady: true})
	d.waitLog(t, time.Minute, `"hostctl started"`)
	d.stop() // fails the test if hostctl takes more than 20s
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if lines := d.logLines(`"proxy listening"`); len(lines) > 0 {
		t.Errorf("the proxy started during shutdown: %q", lines)
	}
	if listening(listen) {
		t.Errorf("something listens on the proxy's port %d after hostctl exited", listen)
	}
}
