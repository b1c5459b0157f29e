package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
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
	s.StartProcesses(context.Background(), "probed")
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
	s.StartProcesses(context.Background(), "nogroups")
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

// TestEnvIsExplicit: a program gets environment, the default set and its
// user's identity from hostctl's environment, and more only through
// inherit_environment; never systemd's variables for hostctl.
func TestEnvIsExplicit(t *testing.T) {
	orig := startEnviron
	t.Cleanup(func() { startEnviron = orig })
	startEnviron = []string{"PATH=/p", "LANG=C.UTF-8", "LC_TIME=de_DE.UTF-8", "TZ=UTC", "TMPDIR=/t",
		"HOME=/root", "USER=root", "LOGNAME=root", "SECRET=s", "DJANGO_A=a", "DJANGO_B=b", "NOTIFY_SOCKET=/n"}
	base := "LANG=C.UTF-8 LC_TIME=de_DE.UTF-8 PATH=/p TMPDIR=/t TZ=UTC"
	for _, tc := range []struct {
		name    string
		inherit InheritEnv
		user    string
		env     map[string]string
		want    string
	}{
		{"default", InheritEnv{}, "", nil, "HOME=/root LOGNAME=root " + base + " USER=root"},
		{"names", InheritEnv{Names: []string{"SECRET", "DJANGO_*"}}, "", nil, "DJANGO_A=a DJANGO_B=b HOME=/root LOGNAME=root " + base + " SECRET=s USER=root"},
		{"all", InheritEnv{All: true}, "", nil, "DJANGO_A=a DJANGO_B=b HOME=/root LOGNAME=root " + base + " SECRET=s USER=root"},
		{"user", InheritEnv{}, "nobody", nil, "HOME=/nonexistent LOGNAME=nobody " + base + " USER=nobody"},
		{"environment wins", InheritEnv{All: true}, "", map[string]string{"PATH": "/mine", "X": "${PATH}"},
			"DJANGO_A=a DJANGO_B=b HOME=/root LANG=C.UTF-8 LC_TIME=de_DE.UTF-8 LOGNAME=root PATH=/mine SECRET=s TMPDIR=/t TZ=UTC USER=root X=" + os.Getenv("PATH")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.user != "" {
				u, err := user.Lookup(tc.user)
				if err != nil {
					t.Skip("no user " + tc.user)
				}
				tc.want = strings.Replace(tc.want, "HOME=/nonexistent", "HOME="+u.HomeDir, 1)
			}
			p := DefaultProgramConfig("p")
			p.InheritEnvironment, p.User, p.Environment = tc.inherit, tc.user, tc.env
			env, err := p.Env()
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Fields(tc.want)
			slices.Sort(want)
			if got := strings.Join(env, " "); got != strings.Join(want, " ") {
				t.Errorf("Env() =\n%s\nwant\n%s", got, strings.Join(want, " "))
			}
		})
	}
	startEnviron = []string{"SECRET=s"}
	p := DefaultProgramConfig("p")
	if env, _ := p.Env(); strings.Join(env, " ") != "PATH="+DefaultPath {
		t.Errorf("without PATH, HOME, USER in hostctl's environment: %q, want PATH=%s only", env, DefaultPath)
	}
}

func TestInheritEnvironmentConfig(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want InheritEnv
		err  string
	}{
		{true, InheritEnv{All: true}, ""},
		{false, InheritEnv{}, ""},
		{[]any{"A", "B_*"}, InheritEnv{Names: []string{"A", "B_*"}}, ""},
		{"yes", InheritEnv{}, "must be true, false or an array"},
		{[]any{1}, InheritEnv{}, "element 0"},
	} {
		var got InheritEnv
		err := got.UnmarshalTOML(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got.All != tc.want.All || strings.Join(got.Names, ",") != strings.Join(tc.want.Names, ",") {
			t.Errorf("%v: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	p := shProg("p", "exec sleep 1")
	p.InheritEnvironment = InheritEnv{Names: []string{"OK", "OK_*", "*", "", "A=B", "A*B"}}
	var msgs []string
	for _, e := range p.Validate("program.p") {
		msgs = append(msgs, e.Error())
	}
	got := strings.Join(msgs, "\n")
	for _, bad := range []string{`"*"`, `""`, `"A=B"`, `"A*B"`} {
		if !strings.Contains(got, "program.p.inherit_environment: "+bad+" is not a variable name") {
			t.Errorf("inherit_environment %s not refused; errors:\n%s", bad, got)
		}
	}
	if strings.Contains(got, `"OK`) {
		t.Errorf("a good name refused:\n%s", got)
	}
}

// TestLogFileDirRefused: an explicit stdout_log or stderr_log in a dir the
// app's user can change is a config error at its key, saying what to do.
func TestLogFileDirRefused(t *testing.T) {
	u := testuser.Ensure(t)
	dir := userDir(t, u) // owned by the user
	p := shProg("web", "exec sleep 1000")
	p.StdoutLog = filepath.Join(dir, "web.out.log")
	p.StderrLog = filepath.Join(dir, "sub", "web.err.log") // not there yet: its parent is the user's
	var got []string
	for _, e := range p.Validate("program.web") {
		got = append(got, e.Error())
	}
	for _, key := range []string{"stdout_log", "stderr_log"} {
		want := "program.web." + key + ": the dir of "
		found := false
		for _, e := range got {
			if strings.HasPrefix(e, want) && strings.Contains(e, dir+" is owned by "+u.Name) && strings.Contains(e, "chown root:root "+dir) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s in the user's dir: errors %q, want %s... %s is owned by %s ... chown root:root", key, got, want, dir, u.Name)
		}
	}
}

// TestOOMScoreAdj: with hostctl's own oom_score_adj lowered
// (ProtectFromOOM), a program and its probes start at the program's
// oom_score_adj (0 by default), not hostctl's, and cannot lower it again.
// Lowering needs CAP_SYS_RESOURCE, which a container may not give even to
// root: there hostctl's own value is raised to 300 instead (which needs no
// privilege), and the programs must not inherit that either.
func TestOOMScoreAdj(t *testing.T) {
	u := testuser.Ensure(t)
	orig, err := ownOOMScoreAdj()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { setOwnOOMScoreAdj(orig) })
	ProtectFromOOM(nopLogger())
	own, _ := ownOOMScoreAdj()
	if own != DaemonOOMScoreAdj {
		t.Logf("cannot lower oom_score_adj here (no CAP_SYS_RESOURCE): checking with hostctl's own raised to 300")
		if err := setOwnOOMScoreAdj(300); err != nil {
			t.Fatal(err)
		}
		own = 300
	}
	dir := userDir(t, u)
	// Each program records its value, then tries to set it to hostctl's.
	report := func(f string) string {
		return fmt.Sprintf(`{ cat /proc/self/oom_score_adj; if (echo %d > /proc/self/oom_score_adj) 2>/dev/null; then echo changed; else echo refused; fi; } > %s.tmp && mv %s.tmp %s`,
			own, f, f, f)
	}
	plain := shProg("plain", report(filepath.Join(dir, "plain"))+"; exec sleep 1000")
	plain.User = u.Name
	cache := shProg("cache", report(filepath.Join(dir, "cache"))+"; exec sleep 1000")
	cache.User = u.Name
	cache.OOMScoreAdj = 500
	r := DefaultProbeConfig()
	r.Exec = Command{"/bin/sh", "-c", report(filepath.Join(dir, "probe"))}
	r.Interval = 50 * time.Millisecond
	cache.Ready = &r
	s, _ := newSup(t, plain, cache)
	s.StartProcesses(context.Background(), "plain", "cache")
	want := map[string]string{"plain": "0\n", "cache": "500\n", "probe": "500\n"}
	for name, w := range want {
		if own < 0 {
			w += "refused\n" // below its own value: only with CAP_SYS_RESOURCE
		} else {
			w += "changed\n" // raising needs no privilege
		}
		if got := string(waitFile(t, filepath.Join(dir, name), 10*time.Second)); got != w {
			t.Errorf("%s: its oom_score_adj, then setting it to hostctl's %d:\n%s\nwant\n%s", name, own, got, w)
		}
	}
	if now, _ := ownOOMScoreAdj(); now != own {
		t.Errorf("hostctl's own oom_score_adj is %d after starting programs, want %d", now, own)
	}
}

func TestOOMScoreAdjConfig(t *testing.T) {
	for v, ok := range map[int]bool{-1000: true, 0: true, 1000: true, -1001: false, 1001: false} {
		p := shProg("p", "exec sleep 1")
		p.OOMScoreAdj = v
		errs := p.Validate("program.p")
		if ok != (len(errs) == 0) || !ok && !strings.HasPrefix(errs[0].Error(), "program.p.oom_score_adj: ") {
			t.Errorf("oom_score_adj = %d: %v", v, errs)
		}
	}
}
