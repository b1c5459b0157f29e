// Package testuser gives the supervisor's security tests a real
// unprivileged user to attack as: the app's user, which hostctl must not
// trust. Only tests import it.
package testuser

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Name is the user the supervisor's security tests attack as. Other test
// packages may use it at the same time: it is created once and never
// deleted.
const Name = "hct-sup"

// User is a real unprivileged user.
type User struct {
	Name     string
	UID, GID int
}

// Ensure creates Name if it does not exist yet and returns it. It skips
// the test unless it runs as root (only root can create users and switch
// to them).
func Ensure(t testing.TB) User {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates the user " + Name + " and runs commands as it")
	}
	// useradd exits 9 when the user exists, and 10 when another useradd
	// holds the lock on /etc/passwd (another test package doing the same).
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", Name).CombinedOutput()
		var ee *exec.ExitError
		if err == nil || errors.As(err, &ee) && ee.ExitCode() == 9 {
			break
		}
		if !errors.As(err, &ee) || ee.ExitCode() != 10 || time.Now().After(deadline) {
			t.Fatalf("useradd %s: %v\n%s", Name, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	u, err := user.Lookup(Name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return User{Name: Name, UID: uid, GID: gid}
}

// Run runs argv as u (setpriv, no supplementary groups) and returns its
// combined output.
func (u User) Run(argv ...string) ([]byte, error) {
	args := append([]string{"--reuid=" + strconv.Itoa(u.UID), "--regid=" + strconv.Itoa(u.GID), "--clear-groups", "--"}, argv...)
	return exec.Command("setpriv", args...).CombinedOutput()
}

// MustRun is Run that fails the test on an error.
func (u User) MustRun(t testing.TB, argv ...string) []byte {
	t.Helper()
	out, err := u.Run(argv...)
	if err != nil {
		t.Fatalf("as %s: %q: %v\n%s", u.Name, argv, err, out)
	}
	return out
}

// Command returns a command that runs as u: its uid and gid, no
// supplementary groups, as setpriv --reuid --regid --clear-groups would.
func (u User) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: []uint32{}}}
	return cmd
}

// Shell runs script with /bin/sh -c as u and returns its combined output;
// it fails t if the script fails.
func (u User) Shell(t testing.TB, script string) string {
	t.Helper()
	out, err := u.Command("/bin/sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("as %s: %s: %v\n%s", u.Name, script, err, out)
	}
	return string(out)
}
