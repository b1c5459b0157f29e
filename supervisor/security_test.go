package supervisor

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/supervisor/internal/testuser"
)

// userDir is a fresh dir under /tmp owned by u, where u's processes can
// write (t.TempDir's parent is root's 0700 dir, closed to u).
func userDir(t *testing.T, u testuser.User) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hostctl-sec-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	return dir
}

// whoami is a shell command that writes who runs it (uid, gid, groups,
// umask) to file, whole at once (a reader never sees half of it).
func whoami(file string) string {
	return "{ id -u; id -g; id -G; umask; } > " + file + ".tmp && mv " + file + ".tmp " + file
}

// TestExecProbesRunAsTheProgram: a ready and a health exec probe are the
// program's code; they run with the program's user, group, supplementary
// groups and umask, never as hostctl (root).
func TestExecProbesRunAsTheProgram(t *testing.T) {
	u := testuser.Ensure(t)
	dir := userDir(t, u)
	main, ready, health := filepath.Join(dir, "main"), filepath.Join(dir, "ready"), filepath.Join(dir, "health")
	p := shProg("probed", whoami(main)+"; exec sleep 1000")
	p.User = u.Name
	p.Umask = "027"
	p.Directory = dir
	r := DefaultProbeConfig()
	r.Exec = Command{"/bin/sh", "-c", whoami(ready)}
	r.Interval = 50 * time.Millisecond
	p.Ready = &r
	h := DefaultHealthConfig()
	h.Exec = Command{"/bin/sh", "-c", whoami(health)}
	h.Interval = 50 * time.Millisecond
	p.Health = &h
	s, _ := newSup(t, p)
	s.StartPrograms(context.Background(), "probed")
	waitState(t, s, "probed", Running, 10*time.Second)
	want := string(waitFile(t, main, 10*time.Second))
	wantPrefix := strconv.Itoa(u.UID) + "\n" + strconv.Itoa(u.GID) + "\n"
	if !strings.HasPrefix(want, wantPrefix) || !strings.HasSuffix(want, "0027\n") {
		t.Fatalf("the program itself runs as\n%s\nwant uid %d, gid %d, umask 0027", want, u.UID, u.GID)
	}
	for _, f := range []string{ready, health} {
		if got := string(waitFile(t, f, 10*time.Second)); got != want {
			t.Errorf("%s probe ran as\n%s\nthe program as\n%s", filepath.Base(f), got, want)
		}
	}
}

// TestGroupLookupFailureFailsTheStart: when the supplementary groups of
// the program's user cannot be listed, the program does not start (FATAL,
// with the reason) rather than run with hostctl's groups (root's).
func TestGroupLookupFailureFailsTheStart(t *testing.T) {
	u := testuser.Ensure(t)
	orig := userGroupIDs
	userGroupIDs = func(*user.User) ([]string, error) { return nil, errors.New("group database unreachable") }
	t.Cleanup(func() { userGroupIDs = orig })
	dir := userDir(t, u)
	out := filepath.Join(dir, "groups")
	p := shProg("nogroups", "id -G > "+out+"; exec sleep 1000")
	p.User = u.Name
	p.FatalRetry = RetryNever
	s, _ := newSup(t, p)
	s.StartPrograms(context.Background(), "nogroups")
	st := waitCond(t, s, "nogroups", 10*time.Second, "FATAL or RUNNING", func(st Status) bool { return st.State == Fatal || st.State == Running })
	if st.State != Fatal || !strings.Contains(st.SpawnErr, "cannot list the groups of user \""+u.Name+"\"") {
		got, _ := os.ReadFile(out)
		t.Fatalf("state %s, spawn error %q (the program saw groups %q); want FATAL: cannot list the groups", st.State, st.SpawnErr, got)
	}
	if st.PID != 0 || st.Generation != 0 {
		t.Errorf("a process was started: pid %d, generation %d", st.PID, st.Generation)
	}
}

// TestGroupWithoutUserRefused: group alone would run the program as root
// with another group; the config says so, with the key path.
func TestGroupWithoutUserRefused(t *testing.T) {
	p := shProg("grouponly", "exec sleep 1000")
	p.Group = "nogroup"
	if _, err := LookupGroup("nogroup"); err != nil {
		p.Group = "0"
	}
	errs := p.Validate("program.grouponly")
	found := false
	for _, e := range errs {
		if strings.HasPrefix(e.Error(), "program.grouponly.group: ") && strings.Contains(e.Error(), "without user") {
			found = true
		}
	}
	if !found {
		t.Errorf("group without user: errors %v, want program.grouponly.group: ... without user ...", errs)
	}
	p.User = "root"
	if errs := p.Validate("program.grouponly"); len(errs) != 0 {
		t.Errorf("group with user = \"root\": %v", errs)
	}
}
