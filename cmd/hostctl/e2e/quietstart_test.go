package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestNormalStartWarnsOfNothing starts hostctl on a program and a plain
// HTTP proxy, the shape of `make run`: nothing it logs up to READY=1 and
// the proxy's start is a warning or an error. Caddy's "admin endpoint
// disabled" and "server is listening only on the HTTP port" describe
// choices hostctl made, so they are debug lines (kept: this daemon logs
// at debug).
func TestNormalStartWarnsOfNothing(t *testing.T) {
	d := startDaemon(t, webProgram+fmt.Sprintf(`
[proxy]
listen = "127.0.0.1:%d"
upstream = "127.0.0.1:%d"
`, freePort(t), freePort(t)), daemonOpts{})
	d.waitLog(t, 30*time.Second, `"msg":"proxy listening"`)
	for _, choice := range []string{`"msg":"admin endpoint disabled"`, `"msg":"server is listening only on the HTTP port`} {
		line := d.waitLog(t, 10*time.Second, choice)
		if !strings.Contains(line, `"level":"debug"`) {
			t.Errorf("not a debug line: %s", line)
		}
	}
	for _, line := range strings.Split(d.log(), "\n") {
		if strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`) {
			t.Errorf("a normal start logged: %s", line)
		}
	}
}
