package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testbin"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/testuser"
)

// TestDeployPrepareOnly runs the real binary: `hostctl deploy
// --prepare-only` builds a release from a git repo made here, as the app's
// user, a second one whose build step fails says which step and why, and
// `hostctl releases` lists both; current is never made, and `hostctl
// deploy` without --prepare-only needs the daemon.
func TestDeployPrepareOnly(t *testing.T) {
	testuser.Ensure(t, "hct-deploy")
	base := t.TempDir()
	for d := base; d != filepath.Clean(os.TempDir()) && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // the app's user reaches the release dirs below
	}
	repo := filepath.Join(base, "repo")
	git := func(args ...string) {
		t.Helper()
		c := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	os.Mkdir(repo, 0o755)
	git("init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(repo, "app.py"), []byte("v1\n"), 0o644)
	git("add", "-A")
	git("commit", "-q", "-m", "v1")
	cfg := filepath.Join(base, "hostctl.toml")
	os.WriteFile(cfg, []byte(`[admin]
socket = "`+base+`/run/hostctl.sock"
state_dir = "`+base+`/state"

[program.web]
command = "/bin/sleep 1000"
user = "hct-deploy"

[deploy]
dir = "`+base+`/www"
repo = "`+repo+`"
program = "web"

[[deploy.build]]
command = "id -un > who.txt; grep -q v1 app.py || { echo 'SyntaxError: v2 is broken' >&2; exit 4; }"
timeout = "1m"
`), 0o644)

	r := runHostctl(t, "-c", cfg, "deploy", "--prepare-only")
	if r.code != 0 || !strings.Contains(r.stdout, "is built; current is unchanged") {
		t.Fatalf("deploy --prepare-only: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	rels, _ := filepath.Glob(filepath.Join(base, "www", "releases", "*", "who.txt"))
	if len(rels) != 1 {
		t.Fatalf("releases with who.txt: %v", rels)
	}
	if who, _ := os.ReadFile(rels[0]); strings.TrimSpace(string(who)) != "hct-deploy" {
		t.Errorf("the build step ran as %q", who)
	}

	os.WriteFile(filepath.Join(repo, "app.py"), []byte("v2\n"), 0o644)
	git("commit", "-q", "-am", "v2")
	r = runHostctl(t, "-c", cfg, "deploy", "--prepare-only")
	if r.code != 1 || !strings.Contains(r.stderr, "build[0]") || !strings.Contains(r.stderr, "exit status 4") || !strings.Contains(r.stderr, "SyntaxError: v2 is broken") {
		t.Errorf("a failing step: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Lstat(filepath.Join(base, "www", "current")); err == nil {
		t.Errorf("deploy --prepare-only made current")
	}

	r = runHostctl(t, "-c", cfg, "releases")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 || !strings.Contains(lines[1], " failed ") || !strings.Contains(lines[2], " built ") {
		t.Errorf("releases: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Without --prepare-only, a deploy is the daemon's (the switch).
	if r := runHostctl(t, "-c", cfg, "deploy"); r.code == 0 || !strings.Contains(r.stderr, "not running") {
		t.Errorf("deploy without a daemon: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestDeployKilledMidStep: kill -9 of `hostctl deploy` while a build step
// runs leaves the step running with nothing to time it out; the next
// deploy kills what is left of its process group and records the release
// as interrupted.
func TestDeployKilledMidStep(t *testing.T) {
	testuser.Ensure(t, "hct-deploy")
	base := t.TempDir()
	for d := base; d != filepath.Clean(os.TempDir()) && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	src := filepath.Join(base, "src")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, "app.py"), []byte("v1\n"), 0o644)
	cfg := filepath.Join(base, "hostctl.toml")
	os.WriteFile(cfg, []byte(`[admin]
socket = "`+base+`/run/hostctl.sock"
state_dir = "`+base+`/state"

[deploy]
dir = "`+base+`/www"
user = "hct-deploy"

[[deploy.build]]
command = "if grep -q v1 app.py; then sleep 300 & echo $! > pid; wait; fi"
timeout = "10m"
`), 0o644)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hostctlBin, "-c", cfg, "deploy", "--prepare-only", "--from", src)
	cmd.Env = testbin.Env(nil)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The step writes its child's pid into the release dir.
	var sleeper int
	deadline := time.Now().Add(30 * time.Second)
	for sleeper == 0 {
		m, _ := filepath.Glob(filepath.Join(base, "www", "releases", "*", "pid"))
		if len(m) == 1 {
			if b, err := os.ReadFile(m[0]); err == nil && strings.HasSuffix(string(b), "\n") {
				sleeper, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the build step did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err := syscall.Kill(sleeper, 0); err != nil {
		t.Fatalf("the step's child %d died with hostctl (%v): this test shows nothing", sleeper, err)
	}

	os.WriteFile(filepath.Join(src, "app.py"), []byte("v2\n"), 0o644)
	r := runHostctl(t, "-c", cfg, "deploy", "--prepare-only", "--from", src)
	if r.code != 0 || !strings.Contains(r.stdout, "killed 2 processes left by an interrupted deploy") {
		t.Errorf("the next deploy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	deadline = time.Now().Add(10 * time.Second)
	for syscall.Kill(sleeper, 0) == nil {
		if st, _ := os.ReadFile("/proc/" + strconv.Itoa(sleeper) + "/stat"); strings.Contains(string(st), ") Z ") {
			break // killed; a zombie until reaped
		}
		if time.Now().After(deadline) {
			t.Fatalf("the interrupted step's child %d still runs", sleeper)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r = runHostctl(t, "-c", cfg, "releases")
	if !strings.Contains(r.stdout, "failed") || !strings.Contains(r.stdout, "interrupted") || !strings.Contains(r.stdout, "built") {
		t.Errorf("releases:\n%s%s", r.stdout, r.stderr)
	}
}
