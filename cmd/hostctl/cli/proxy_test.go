package cli_test

import (
	"fmt"
	"net"
	"testing"
	"time"
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

// listening reports whether something accepts connections on port.
func listening(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
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
