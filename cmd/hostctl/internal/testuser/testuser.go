// Package testuser gives security tests a real unprivileged user to attack
// hostctl as: the app's user is not trusted, so a test creates one with
// useradd and runs the attacker's commands with its uid and gid. Only tests
// import it.
package testuser

import (
	"errors"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// User is a local user made for tests.
type User struct {
	Name     string
	UID, GID int
}

// Ensure returns the user name, creating it first if needed: a system
// user without a home or a login shell. It is never deleted: test packages
// that run at the same moment may share it. Creating users needs root; as
// another user the test fails and says so.
func Ensure(t testing.TB, name string) User {
	t.Helper()
	if u, err := lookup(name); err == nil {
		return u
	}
	// Exit status 9: it exists already (another package made it just
	// now); 10: /etc/passwd is locked by another useradd, try again.
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", "/usr/sbin/nologin", "--user-group", name).CombinedOutput()
		var ee *exec.ExitError
		if err == nil || errors.As(err, &ee) && ee.ExitCode() == 9 {
			break
		}
		if errors.As(err, &ee) && ee.ExitCode() == 10 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		t.Fatalf("useradd %s (security tests create a real user, as root): %v\n%s", name, err, out)
	}
	u, err := lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func lookup(name string) (User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return User{}, err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return User{}, err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return User{}, err
	}
	return User{Name: name, UID: uid, GID: gid}, nil
}

// Command returns a command that runs as u: its uid and gid, no
// supplementary groups, as setpriv --reuid --regid --clear-groups would.
func (u User) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: []uint32{}}}
	return cmd
}

// Run runs a command as u and returns its combined output; it fails t if
// the command fails.
func (u User) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := u.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("as %s: %s %v: %v\n%s", u.Name, name, args, err, out)
	}
	return string(out)
}

// Shell runs script with /bin/sh -c as u (see Run).
func (u User) Shell(t testing.TB, script string) string {
	t.Helper()
	return u.Run(t, "/bin/sh", "-c", script)
}
