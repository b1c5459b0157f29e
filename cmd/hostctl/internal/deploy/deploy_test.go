package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testuser"
)

// appUser is the app's user of these tests: real, unprivileged.
const appUser = "hct-deploy"

// world makes a directory tree of the test's that the app's user can
// traverse (t.TempDir's dirs are 0700): the release dirs are below it.
func world(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != filepath.Clean(os.TempDir()) && d != "/" && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// newHost returns a Host for cfg (Dir and the state dir under base),
// provisioned and valid, whose steps run as the test's app user.
func newHost(t *testing.T, base string, cfg Config) *Host {
	t.Helper()
	testuser.Ensure(t, appUser)
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(base, "www")
	}
	if cfg.Branch == "" {
		cfg.Branch = DefaultBranch
	}
	if cfg.Keep == 0 {
		cfg.Keep = DefaultKeep
	}
	if cfg.CheckStatus == 0 {
		cfg.CheckStatus = DefaultCheckStatus
	}
	if cfg.DeployTimeout == 0 {
		cfg.DeployTimeout = DefaultDeployTimeout
	}
	if cfg.User == "" {
		cfg.User = appUser
	}
	for i := range cfg.Build {
		if cfg.Build[i].Timeout == 0 {
			cfg.Build[i].Timeout = time.Minute
		}
	}
	if errs := cfg.Provision("deploy", nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	if errs := cfg.Validate("deploy"); len(errs) > 0 {
		t.Fatal(errs)
	}
	return Open(&cfg, filepath.Join(base, "state"))
}

// gitRepo is a real git repository made by the test, on branch main.
type gitRepo struct {
	t   *testing.T
	dir string
	n   int
}

func newRepo(t *testing.T, base string) *gitRepo {
	r := &gitRepo{t: t, dir: filepath.Join(base, "repo")}
	r.git("init", "-q", "-b", "main", r.dir)
	return r
}

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	c := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
	c.Dir = filepath.Dir(r.dir)
	if _, err := os.Stat(r.dir); err == nil {
		c.Dir = r.dir
	}
	out, err := c.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files (name -> contents; a contents of "->X" is a
// symbolic link to X) and commits them; it returns the commit.
func (r *gitRepo) commit(files map[string]string) string {
	r.t.Helper()
	r.n++
	for name, body := range files {
		p := filepath.Join(r.dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.Remove(p)
		var err error
		if target, ok := strings.CutPrefix(body, "->"); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(body), 0o644)
		}
		if err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	r.git("commit", "-q", "-m", "v"+strconv.Itoa(r.n))
	return r.git("rev-parse", "HEAD")
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func prepare(t *testing.T, h *Host, src Source) Release {
	t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rel, err := h.Prepare(ctx, src, &out)
	if err != nil {
		t.Fatalf("Prepare: %v\noutput:\n%s", err, out.String())
	}
	return rel
}

func state(t *testing.T, h *Host, id string) State {
	t.Helper()
	rs, err := h.Releases()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.ID == id {
			return r.State
		}
	}
	t.Fatalf("release %s not recorded", id)
	return ""
}

// TestPrepareFromGit: a release from a real git repo gets the commit's
// files, the shared paths linked in, and its build steps run in it as the
// app's user with RELEASE and RELEASE_DIR; current is not touched; the
// release is recorded as built with its build log.
func TestPrepareFromGit(t *testing.T) {
	base := world(t)
	repo := newRepo(t, base)
	sha := repo.commit(map[string]string{"app.py": "v1", "media/README": "from the code"})
	h := newHost(t, base, Config{
		Repo:   repo.dir,
		Shared: []string{"media/"},
		Build: []Step{
			{Command: `id -u > uid.txt; id -G > groups.txt; echo "$RELEASE $RELEASE_DIR" > env.txt; echo step output`},
			{Command: `echo uploaded > media/photo.jpg && cat app.py > built.txt`},
		},
	})
	u := testuser.Ensure(t, appUser)
	var out bytes.Buffer
	rel, err := h.Prepare(context.Background(), Source{}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rel.SHA != sha || !strings.HasSuffix(rel.ID, "-"+sha[:7]) || !validID.MatchString(rel.ID) {
		t.Errorf("release %+v for commit %s", rel, sha)
	}
	dir := filepath.Join(h.cfg.Dir, "releases", rel.ID)
	if got := read(t, filepath.Join(dir, "uid.txt")); got != strconv.Itoa(u.UID) {
		t.Errorf("build step ran as uid %s, want %d (%s)", got, u.UID, appUser)
	}
	if got := read(t, filepath.Join(dir, "groups.txt")); strings.Fields(got)[0] != strconv.Itoa(u.GID) || strings.Contains(" "+got+" ", " 0 ") {
		t.Errorf("build step groups %q, want %s's (%d) and never root's", got, appUser, u.GID)
	}
	if got := read(t, filepath.Join(dir, "env.txt")); got != rel.ID+" "+dir {
		t.Errorf("RELEASE and RELEASE_DIR = %q, want %q", got, rel.ID+" "+dir)
	}
	if got := read(t, filepath.Join(dir, "built.txt")); got != "v1" {
		t.Errorf("built.txt = %q", got)
	}
	// media/ is the shared one, not the code's.
	if got := read(t, filepath.Join(h.cfg.Dir, "shared", "media", "photo.jpg")); got != "uploaded" {
		t.Errorf("shared media/photo.jpg = %q", got)
	}
	if _, err := os.Stat(filepath.Join(h.cfg.Dir, "shared", "media", "README")); err == nil {
		t.Errorf("the code's media/ was copied into shared/")
	}
	if _, err := os.Lstat(filepath.Join(h.cfg.Dir, "current")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Prepare made current (%v): only the switch does", err)
	}
	if s := state(t, h, rel.ID); s != Built {
		t.Errorf("state %s, want built", s)
	}
	if !strings.Contains(out.String(), "step output") || !strings.Contains(read(t, h.LogPath(rel.ID)), "step output") {
		t.Errorf("the step's output is not streamed and logged:\n%s", out.String())
	}

	// Activate: current points at it, atomically made, and it is live.
	if err := h.Activate(rel.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.Readlink(filepath.Join(h.cfg.Dir, "current")); got != "releases/"+rel.ID {
		t.Errorf("current -> %q", got)
	}
	if got := read(t, filepath.Join(h.cfg.Dir, "current", "built.txt")); got != "v1" {
		t.Errorf("current/built.txt = %q", got)
	}
	if s := state(t, h, rel.ID); s != Live {
		t.Errorf("state %s, want live", s)
	}
}

// TestFailingStepLeavesCurrent: a failing step marks the release failed,
// leaves current on the live release, and says which step, its exit
// status and its last lines.
func TestFailingStepLeavesCurrent(t *testing.T) {
	base := world(t)
	repo := newRepo(t, base)
	repo.commit(map[string]string{"app.py": "v1"})
	h := newHost(t, base, Config{Repo: repo.dir, Build: []Step{{Command: "test -f app.py"}, {Command: "grep -q v1 app.py || { echo checking; echo 'ImportError: no module named hello' >&2; exit 3; }"}}})
	good := prepare(t, h, Source{})
	if err := h.Activate(good.ID); err != nil {
		t.Fatal(err)
	}
	repo.commit(map[string]string{"app.py": "v2"})
	rel, err := h.Prepare(context.Background(), Source{}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("a failing build step did not fail the release")
	}
	for _, want := range []string{"build[1]", "exit status 3", "checking", "ImportError: no module named hello"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in the error: %v", want, err)
		}
	}
	if got, _ := os.Readlink(filepath.Join(h.cfg.Dir, "current")); got != "releases/"+good.ID {
		t.Errorf("current -> %q after a failed release, want releases/%s", got, good.ID)
	}
	if s := state(t, h, rel.ID); s != Failed {
		t.Errorf("failed release's state is %s", s)
	}
	if s := state(t, h, good.ID); s != Live {
		t.Errorf("live release's state is %s after a failed one", s)
	}
	if err := h.Activate(rel.ID); err == nil {
		t.Errorf("a failed release went live")
	}
}

// TestStepTimeoutKillsGroup: past its timeout a step's whole process
// group is killed, a background child included.
func TestStepTimeoutKillsGroup(t *testing.T) {
	base := world(t)
	src := filepath.Join(base, "src")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, "app.py"), []byte("v1"), 0o644)
	h := newHost(t, base, Config{Build: []Step{{Command: "sleep 300 & echo $! > bg.pid; echo started; sleep 300", Timeout: 2 * time.Second}}})
	_, err := h.Prepare(context.Background(), Source{From: src}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "timed out after 2s") || !strings.Contains(err.Error(), "started") {
		t.Fatalf("got %v, want a timeout with the step's last lines", err)
	}
	rs, _ := h.Releases()
	pid, err := strconv.Atoi(read(t, filepath.Join(h.cfg.Dir, "releases", rs[0].ID, "bg.pid")))
	if err != nil {
		t.Fatal(err)
	}
	// The group was sent SIGKILL before Prepare returned; wait until the
	// child is reaped by init (bounded).
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); strings.Contains(string(st), ") Z ") {
			break // killed; a zombie until reaped
		}
		if time.Now().After(deadline) {
			t.Fatalf("the step's background child %d still runs after the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPruneKeeps: pruning keeps the newest keep releases, and never the
// live or the previous one; a link inside a pruned release is removed,
// not followed.
func TestPruneKeeps(t *testing.T) {
	base := world(t)
	repo := newRepo(t, base)
	victim := filepath.Join(base, "victim")
	os.Mkdir(victim, 0o755)
	os.WriteFile(filepath.Join(victim, "keep.txt"), []byte("root's"), 0o644)
	h := newHost(t, base, Config{Repo: repo.dir, Keep: 2, Build: []Step{{Command: "ln -s " + victim + " link; mkdir -p d/e; ln -s " + victim + " d/e/link"}}})
	var ids []string
	for i := 1; i <= 5; i++ {
		repo.commit(map[string]string{"app.py": "v" + strconv.Itoa(i)})
		rel := prepare(t, h, Source{})
		ids = append(ids, rel.ID)
		if i <= 2 {
			if err := h.Activate(rel.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	// 1 previous, 2 live, 3 beyond keep, 4 and 5 the newest two.
	want := []State{Previous, Live, Pruned, Built, Built}
	for i, id := range ids {
		if s := state(t, h, id); s != want[i] {
			t.Errorf("release %d (%s): %s, want %s", i+1, id, s, want[i])
		}
		_, err := os.Lstat(filepath.Join(h.cfg.Dir, "releases", id))
		if gone := errors.Is(err, os.ErrNotExist); gone != (want[i] == Pruned) {
			t.Errorf("release %d (%s): on disk = %v, state %s", i+1, id, !gone, want[i])
		}
	}
	if got := read(t, filepath.Join(victim, "keep.txt")); got != "root's" {
		t.Errorf("pruning followed a link: victim/keep.txt = %q", got)
	}
}

// TestMirrorFetchesOnlyNew: the first deploy clones the repo into a bare
// mirror in the state dir; the next fetches only the new commit's
// objects into it, and --ref picks another ref.
func TestMirrorFetchesOnlyNew(t *testing.T) {
	base := world(t)
	repo := newRepo(t, base)
	files := map[string]string{}
	for i := range 50 {
		files["pkg/mod"+strconv.Itoa(i)+".py"] = strings.Repeat("x", i)
	}
	v1 := repo.commit(files)
	repo.git("tag", "v1")
	h := newHost(t, base, Config{Repo: repo.dir})
	prepare(t, h, Source{})
	objects := func() int {
		out, err := exec.Command("git", "--git-dir", h.MirrorPath(), "count-objects", "-v").Output()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(l, ": "); ok && (k == "count" || k == "in-pack") {
				c, _ := strconv.Atoi(v)
				n += c
			}
		}
		return n
	}
	packs := func() []string {
		m, _ := filepath.Glob(filepath.Join(h.MirrorPath(), "objects", "pack", "*.pack"))
		return m
	}
	before, beforePacks := objects(), packs()
	if before < 52 { // 50 blobs (49 distinct + ""), 2 trees, 1 commit
		t.Fatalf("mirror holds %d objects after the first deploy", before)
	}
	// One changed file at the top: a commit, a root tree, a blob.
	v2 := repo.commit(map[string]string{"app.py": "v2"})
	rel := prepare(t, h, Source{})
	if rel.SHA != v2 {
		t.Errorf("second release is %s, want %s", rel.SHA, v2)
	}
	if got := objects(); got != before+3 {
		t.Errorf("mirror went from %d to %d objects; a fetch of one commit adds 3", before, got)
	}
	for _, p := range beforePacks {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("the first clone's pack %s is gone: the mirror was made again", p)
		}
	}
	if rel := prepare(t, h, Source{Ref: "v1"}); rel.SHA != v1 {
		t.Errorf("--ref v1 gave %s, want %s", rel.SHA, v1)
	}
	if _, err := h.Prepare(context.Background(), Source{Ref: "no-such-branch"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `ref "no-such-branch"`) {
		t.Errorf("unknown ref: %v", err)
	}
}

// TestFromTarballAndDir: --from FILE.tar.gz and --from DIR.
func TestFromTarballAndDir(t *testing.T) {
	base := world(t)
	src := filepath.Join(base, "build")
	os.MkdirAll(filepath.Join(src, "static"), 0o755)
	os.WriteFile(filepath.Join(src, "app.py"), []byte("from tar"), 0o644)
	os.WriteFile(filepath.Join(src, "static", "site.css"), []byte("body{}"), 0o644)
	tarball := filepath.Join(base, "app.tar.gz")
	if out, err := exec.Command("tar", "-czf", tarball, "-C", src, ".").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	h := newHost(t, base, Config{Build: []Step{{Command: "cat app.py static/site.css > built.txt"}}})
	rel := prepare(t, h, Source{From: tarball})
	data, _ := os.ReadFile(tarball)
	sum := sha256.Sum256(data)
	if rel.SHA != hex.EncodeToString(sum[:]) || !strings.HasSuffix(rel.ID, "-"+rel.SHA[:7]) {
		t.Errorf("tarball release %+v", rel)
	}
	if got := read(t, filepath.Join(h.cfg.Dir, "releases", rel.ID, "built.txt")); got != "from tarbody{}" {
		t.Errorf("built.txt = %q", got)
	}
	os.WriteFile(filepath.Join(src, "app.py"), []byte("from dir"), 0o644)
	rel = prepare(t, h, Source{From: src})
	if got := read(t, filepath.Join(h.cfg.Dir, "releases", rel.ID, "built.txt")); got != "from dirbody{}" {
		t.Errorf("built.txt = %q", got)
	}
}

// TestImports keeps deploy away from the proxy and Caddy: the switch
// that moves traffic wires them together in the daemon.
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if strings.Contains(imp, "/proxy") || strings.Contains(imp, "caddy") || strings.HasSuffix(imp, "/daemon") || strings.HasSuffix(imp, "/front") {
			t.Errorf("deploy imports %s", imp)
		}
	}
}
