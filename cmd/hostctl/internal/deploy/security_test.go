package deploy

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testuser"
)

// victimDir is a directory of root's that the app's user may read but
// not write: whatever an attack makes appear in it, root made.
func victimDir(t *testing.T, base string) string {
	t.Helper()
	v := filepath.Join(base, "victim")
	if err := os.Mkdir(v, 0o755); err != nil {
		t.Fatal(err)
	}
	return v
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestAttackPlantedLayout: the app's user owns [deploy] dir and has
// planted releases -> a directory of root's and current -> /etc. hostctl
// refuses the dir, and makes nothing through the links.
func TestAttackPlantedLayout(t *testing.T) {
	base := world(t)
	u := testuser.Ensure(t, appUser)
	victim := victimDir(t, base)
	www := filepath.Join(base, "www")
	os.Mkdir(www, 0o755)
	os.Chown(www, u.UID, u.GID)
	u.Shell(t, "ln -s "+victim+" "+www+"/releases && ln -s /etc "+www+"/current && mkdir "+www+"/shared")
	repo := newRepo(t, base)
	repo.commit(map[string]string{"app.py": "v1"})
	h := newHost(t, base, Config{Dir: www, Repo: repo.dir, Shared: []string{"media/"}})
	_, err := h.Prepare(context.Background(), Source{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "deploy.dir") || !strings.Contains(err.Error(), appUser) {
		t.Errorf("a deploy dir owned by %s: got %v, want it refused", appUser, err)
	}
	if got := entries(t, victim); len(got) != 0 {
		t.Errorf("root made %v in %s through the planted releases link", got, victim)
	}
	if err := h.Activate("20260101T000000Z-abcdef0"); err == nil {
		t.Errorf("Activate in a deploy dir owned by %s succeeded", appUser)
	}
	if got, _ := os.Readlink(filepath.Join(www, "current")); got != "/etc" {
		t.Errorf("current -> %q", got)
	}
}

// TestAttackSharedThroughCodeLink: the code (the app's) has static ->
// a directory of root's, and static/uploads/ is shared. Linking it is
// done as the app's user, so it fails there instead of root creating
// victim/uploads.
func TestAttackSharedThroughCodeLink(t *testing.T) {
	base := world(t)
	victim := victimDir(t, base)
	repo := newRepo(t, base)
	repo.commit(map[string]string{"app.py": "v1", "static": "->" + victim})
	h := newHost(t, base, Config{Repo: repo.dir, Shared: []string{"static/uploads/"}})
	_, err := h.Prepare(context.Background(), Source{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "linking shared path static/uploads/") {
		t.Errorf("got %v, want the shared link to fail", err)
	}
	if got := entries(t, victim); len(got) != 0 {
		t.Errorf("%v appeared in %s through the code's link", got, victim)
	}
}

// TestAttackBuildStep: a build step (the app's code) tries to replace
// current and to plant a link in releases/: it runs as the app's user,
// who may not.
func TestAttackBuildStep(t *testing.T) {
	base := world(t)
	repo := newRepo(t, base)
	repo.commit(map[string]string{"app.py": "v1"})
	h := newHost(t, base, Config{Repo: repo.dir, Build: []Step{{Command: `ln -sfn /etc "$RELEASE_DIR/../../current"; ln -s /etc "$RELEASE_DIR/../planted"; chmod 777 "$RELEASE_DIR/.."; true`}}})
	first := prepare(t, h, Source{})
	if err := h.Activate(first.ID); err != nil {
		t.Fatal(err)
	}
	repo.commit(map[string]string{"app.py": "v2"})
	prepare(t, h, Source{})
	if got, _ := os.Readlink(filepath.Join(h.cfg.Dir, "current")); got != "releases/"+first.ID {
		t.Errorf("a build step moved current to %q", got)
	}
	if _, err := os.Lstat(filepath.Join(h.cfg.Dir, "releases", "planted")); err == nil {
		t.Errorf("a build step planted a link in releases/")
	}
	if fi, _ := os.Stat(filepath.Join(h.cfg.Dir, "releases")); fi.Mode().Perm() != 0o755 {
		t.Errorf("a build step changed releases/ to %v", fi.Mode())
	}
}

// TestAttackRepoOfAppUser: a local repo owned by the app's user (whose
// config and hooks would run as root) is refused by git itself
// (safe.directory), which hostctl relies on: it never sets
// safe.directory. No mirror is made.
func TestAttackRepoOfAppUser(t *testing.T) {
	base := world(t)
	u := testuser.Ensure(t, appUser)
	repo := newRepo(t, base)
	repo.commit(map[string]string{"app.py": "v1"})
	filepath.Walk(repo.dir, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, u.UID, u.GID) })
	h := newHost(t, base, Config{Repo: repo.dir})
	_, err := h.Prepare(context.Background(), Source{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "dubious ownership") {
		t.Errorf("a repo owned by %s: got %v, want git to refuse it", appUser, err)
	}
	if _, err := os.Lstat(h.MirrorPath()); err == nil {
		t.Errorf("a mirror was made from a repo of %s", appUser)
	}
}

// TestAttackBeforeSwitch: a before_switch step (the new release's code,
// run by the daemon as root's child) tries to point current at /etc, to
// plant a link in releases/, and to rewrite the recorded state: it runs as
// the app's user, who may do none of it, so the switch that follows moves
// current to the release and the state records it live, in its slot.
func TestAttackBeforeSwitch(t *testing.T) {
	base := world(t)
	repo := newRepo(t, base)
	repo.commit(map[string]string{"app.py": "v1"})
	h := newHost(t, base, Config{Repo: repo.dir, BeforeSwitch: []Step{{Timeout: time.Minute, Command: `id -un > "$RELEASE_DIR/who";` +
		` ln -sfn /etc "$RELEASE_DIR/../../current"; ln -s /etc "$RELEASE_DIR/../planted";` +
		` echo '{"releases":[]}' > ` + filepath.Join(base, "state", "deploy", "releases.json") + `; true`}}})
	unlock, err := h.Lock()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	rel := prepare(t, h, Source{})
	var out bytes.Buffer
	if err := h.BeforeSwitch(context.Background(), rel, &out); err != nil {
		t.Fatalf("BeforeSwitch: %v\n%s", err, out.String())
	}
	if who := read(t, filepath.Join(h.Dir(rel.ID), "who")); who != appUser {
		t.Errorf("before_switch ran as %q, want %s", who, appUser)
	}
	if _, err := os.Lstat(filepath.Join(h.cfg.Dir, "current")); err == nil {
		t.Errorf("before_switch made current")
	}
	if _, err := os.Lstat(filepath.Join(h.cfg.Dir, "releases", "planted")); err == nil {
		t.Errorf("before_switch planted a link in releases/")
	}
	if err := h.BeginSwitch(rel.ID, "a", "b"); err != nil {
		t.Fatal(err)
	}
	if err := h.ActivateSlot(rel.ID, "b"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.Readlink(filepath.Join(h.cfg.Dir, "current")); got != "releases/"+rel.ID {
		t.Errorf("current -> %q", got)
	}
	live, ok, err := h.Live()
	if err != nil || !ok || live.ID != rel.ID || live.Slot != "b" {
		t.Errorf("live: %+v %v %v", live, ok, err)
	}
}
