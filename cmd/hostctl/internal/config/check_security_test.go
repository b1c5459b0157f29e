package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testuser"
)

// The attack: a check runs a script of the app's as root, and the app's
// user (who owns the script, as it owns the app) writes its own code into
// it; hostctl would then run that code as root every interval. The config
// refuses an exec check as root whose file another user can change; the
// same script as the app's user is accepted (it can do nothing that user
// could not).
func TestRootCheckRefusesAScriptTheAppCanChange(t *testing.T) {
	u := testuser.Ensure(t, "hct-check")
	dir, err := os.MkdirTemp("", "hct-check-script")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "check-db.sh")
	// The app's user writes the script, as it would any file of the app.
	u.Shell(t, fmt.Sprintf("printf '#!/bin/sh\\nid -u > /tmp/hct-check-owned\\n' > %s && chmod 755 %s", script, script))
	cfg := func(user string) string {
		return fmt.Sprintf(`[admin]
socket = "/tmp/hostctl-check.sock"
state_dir = "/tmp/hostctl-check"

[check.db]
exec = [%q]
user = %q
`, script, user)
	}
	_, err = Parse("checks.toml", []byte(cfg("root")))
	if err == nil || !strings.Contains(err.Error(), "checks.toml:6: check.db.exec: runs as root (user = \"root\"), but") {
		t.Fatalf("a script the app's user owns, run as root: err = %v", err)
	}
	if OnlyMachine(err) {
		t.Errorf("reported as a problem with this machine, not a refusal: %v", err)
	}
	if _, err := Parse("checks.toml", []byte(cfg("hct-check"))); err != nil {
		t.Errorf("the same script as the app's user: %v", err)
	}
}
