package config

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestProgramInGroupThatMayWriteAboveLogDir: a dir above the log dir may
// be writable by a system group (Ubuntu's /var/log is root:syslog 0775),
// but not when a program's user is in that group: it could replace the
// log dir and make root write where it likes.
func TestProgramInGroupThatMayWriteAboveLogDir(t *testing.T) {
	const name = "hct-cfg"
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || (ee.ExitCode() != 9 && ee.ExitCode() != 10) {
			t.Fatalf("useradd %s: %v\n%s", name, err, out)
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.Atoi(u.Gid)
	if gid >= 1000 {
		t.Fatalf("useradd --system gave %s gid %d: not a system group", name, gid)
	}
	root := t.TempDir()
	os.Chmod(root, 0o755)
	above := filepath.Join(root, "var-log")
	if err := os.Mkdir(above, 0o775); err != nil {
		t.Fatal(err)
	}
	os.Chmod(above, 0o775)
	if err := os.Chown(above, 0, gid); err != nil {
		t.Fatal(err)
	}
	cfg := func(user string) string {
		return fmt.Sprintf(`
[log]
dir = %q

[program.app]
command = "/bin/sleep 1000"
user = %q
`, filepath.Join(above, "hostctl"), user)
	}
	if _, err := Parse("ok.toml", []byte(cfg("nobody"))); err != nil {
		t.Fatalf("a log dir under a dir its system group may write, with no program in that group: %v", err)
	}
	_, err = Parse("bad.toml", []byte(cfg(name)))
	if err == nil || !strings.Contains(err.Error(), "program.app.user") || !strings.Contains(err.Error(), "may write a dir above the log dir") {
		t.Fatalf("a program whose user's group may write above the log dir: %v", err)
	}
}
