package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/supervisor"
	"github.com/hostctl/hostctl/supervisor/trust"
)

// Host is the releases of one [deploy] section on this machine.
//
// Who does what, since the app's user is not trusted:
//   - root (hostctl) owns Dir, Dir/releases, Dir/shared and Dir/current,
//     none writable by anyone else (checked like hostctl's state dir,
//     trust.PrivateDir), so the app's user cannot plant a link there;
//   - root runs git only on the mirror in its own state dir, and hands the
//     code to the app's user as a tar stream (git archive);
//   - everything inside a release dir (extracting the code, linking the
//     shared paths, the build steps) runs as the app's user, so a link the
//     code or a step plants there can only lead where that user could go
//     anyway; root never opens a path inside a release, and removes one
//     with os.RemoveAll, which does not follow links.
type Host struct {
	cfg      *Config
	stateDir string // <state_dir>/deploy, private to root
	now      func() time.Time
	// held: Lock holds the deploy lock for this Host's caller, whose
	// Prepare and Activate run under it (a second flock of the same file
	// in this process would fail).
	held bool
}

// Open returns the releases of cfg (provisioned and valid), recorded in
// stateDir/deploy (stateDir is hostctl's [admin] state_dir).
func Open(cfg *Config, stateDir string) *Host {
	return &Host{cfg: cfg, stateDir: filepath.Join(stateDir, "deploy"), now: time.Now}
}

// Releases returns every recorded release, newest first.
func (h *Host) Releases() ([]Release, error) {
	s, err := h.load()
	if err != nil {
		return nil, err
	}
	out := slices.Clone(s.Releases)
	slices.Reverse(out)
	return out, nil
}

// Source is where a new release's code comes from: Ref of [deploy] repo
// (Branch when empty), or From, a directory or a .tar.gz file.
type Source struct {
	Ref  string
	From string
}

// Lock takes the deploy lock for a whole deploy (prepare, gate, switch):
// until the returned func is called, Prepare and Activate on h run under
// it, and every other deploy is told who holds it and since when. h is
// then for one goroutine.
func (h *Host) Lock() (func(), error) {
	if err := h.layout(); err != nil {
		return nil, err
	}
	unlock, err := h.lock()
	if err != nil {
		return nil, err
	}
	h.held = true
	return func() { h.held = false; unlock() }, nil
}

// lock takes the deploy lock (one deploy at a time on this host); the
// returned func releases it. A second deploy is told who holds it. Under
// Lock it does nothing.
func (h *Host) lock() (func(), error) {
	if h.held {
		return func() {}, nil
	}
	path := filepath.Join(h.stateDir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		held, _ := io.ReadAll(io.LimitReader(f, 200))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another deploy is running (%s)", strings.TrimSpace(string(held)))
		}
		return nil, err
	}
	f.Truncate(0)
	fmt.Fprintf(f, "pid %d, since %s", os.Getpid(), h.now().UTC().Format(time.RFC3339))
	return func() { f.Close() }, nil
}

// layout makes sure Dir, Dir/releases and Dir/shared are root's and
// writable by root only (made so when missing), and that Dir/current, if
// there, is a symbolic link. A Dir that the app's user owns or can write
// is refused: that user could have planted current, releases or shared.
func (h *Host) layout() error {
	if err := trust.PrivateDir(h.stateDir, 0o700, -1); err != nil {
		return err
	}
	for _, d := range []string{h.cfg.Dir, h.releasesDir(), h.sharedDir()} {
		if err := trust.PrivateDir(d, 0o755, -1); err != nil {
			return fmt.Errorf("deploy.dir: %w", err)
		}
	}
	fi, err := os.Lstat(h.currentPath())
	if err == nil && fi.Mode()&fs.ModeSymlink == 0 {
		return fmt.Errorf("%s is not a symbolic link (%s); hostctl makes it one: move it away", h.currentPath(), fi.Mode().Type())
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (h *Host) releasesDir() string         { return filepath.Join(h.cfg.Dir, "releases") }
func (h *Host) sharedDir() string           { return filepath.Join(h.cfg.Dir, "shared") }
func (h *Host) pgroupsDir() string          { return filepath.Join(h.stateDir, "pgroups") }
func (h *Host) currentPath() string         { return filepath.Join(h.cfg.Dir, "current") }
func (h *Host) releaseDir(id string) string { return filepath.Join(h.releasesDir(), id) }

// LogPath is the build log of release id.
func (h *Host) LogPath(id string) string { return filepath.Join(h.stateDir, "logs", id+".log") }

// Prepare makes a new release from src: its code in Dir/releases/<id>,
// the shared paths linked in, the build steps run; then it prunes old
// releases. It never changes Dir/current. out receives the progress and
// the steps' output as they come. On failure the release is recorded as
// Failed with the reason, and the error says which step failed, its
// exit status and its last lines.
func (h *Host) Prepare(ctx context.Context, src Source, out io.Writer) (Release, error) {
	if err := h.layout(); err != nil {
		return Release{}, err
	}
	unlock, err := h.lock()
	if err != nil {
		return Release{}, err
	}
	defer unlock()
	// A release still building was interrupted: this deploy holds the
	// lock. Its steps may still run, with nothing to time them out.
	if err := trust.PrivateDir(h.pgroupsDir(), 0o700, -1); err != nil {
		return Release{}, err
	}
	if n := (supervisor.PgroupRecords{Dir: h.pgroupsDir(), Log: zap.NewNop()}).KillSurvivors(); n > 0 {
		fmt.Fprintf(out, "killed %d processes left by an interrupted deploy\n", n)
	}
	if err := h.update(func(s *stateFile) error {
		for i := range s.Releases {
			if s.Releases[i].State == Building {
				s.Releases[i].State, s.Releases[i].Error = Failed, "interrupted: hostctl stopped while it was being prepared"
			}
		}
		return nil
	}); err != nil {
		return Release{}, err
	}
	run, err := h.runner()
	if err != nil {
		return Release{}, err
	}
	start := h.now()
	step := func(format string, a ...any) {
		fmt.Fprintf(out, "%s %s\n", h.now().UTC().Format("15:04:05"), fmt.Sprintf(format, a...))
	}

	// The code: a commit of the mirror, or --from.
	var code func(dir string) error
	var sha, short, source string
	switch {
	case src.From != "":
		sha, short, source, code, err = h.fromSource(ctx, src.From, run)
	default:
		if h.cfg.Repo == "" {
			return Release{}, errors.New("no source: set [deploy] repo, or give --from DIR|FILE.tar.gz")
		}
		ref := cmp(src.Ref, h.cfg.Branch)
		step("fetching %s from %s", ref, h.cfg.Repo)
		sha, err = h.fetch(ctx, ref)
		if err != nil {
			return Release{}, err
		}
		short, source = sha[:7], "git "+h.cfg.Repo+" "+ref
		code = func(dir string) error { return h.checkout(ctx, sha, dir, run) }
	}
	if err != nil {
		return Release{}, err
	}

	rel := Release{SHA: sha, Source: source, Created: start, State: Building}
	rel.ID, err = h.mkRelease(start, short, run.cred)
	if err != nil {
		return Release{}, err
	}
	if err := h.update(func(s *stateFile) error { s.Releases = append(s.Releases, rel); return nil }); err != nil {
		return rel, err
	}
	step("release %s (%s)", rel.ID, source)
	failed := func(err error) (Release, error) {
		rel.State, rel.Error, rel.Duration = Failed, err.Error(), h.now().Sub(start)
		if uerr := h.update(func(s *stateFile) error { *s.find(rel.ID) = rel; return nil }); uerr != nil {
			err = errors.Join(err, uerr)
		}
		step("release %s failed: %v", rel.ID, err)
		return rel, fmt.Errorf("release %s: %w", rel.ID, err)
	}
	logf, err := h.openLog(rel.ID)
	if err != nil {
		return failed(err)
	}
	defer logf.Close()
	out = io.MultiWriter(out, logf)

	dir := h.releaseDir(rel.ID)
	if err := code(dir); err != nil {
		return failed(err)
	}
	if err := h.linkShared(ctx, dir, run, out); err != nil {
		return failed(err)
	}
	for i, s := range h.cfg.Build {
		step("build[%d]: %s", i, s.Command)
		t0 := h.now()
		if err := run.step(ctx, s, rel.ID, dir, out); err != nil {
			return failed(fmt.Errorf("build[%d] (%s): %w", i, s.Command, err))
		}
		step("build[%d] done in %s", i, h.now().Sub(t0).Round(time.Millisecond))
	}
	rel.State, rel.Duration = Built, h.now().Sub(start)
	if err := h.update(func(s *stateFile) error { *s.find(rel.ID) = rel; return nil }); err != nil {
		return rel, err
	}
	step("release %s built in %s", rel.ID, rel.Duration.Round(time.Millisecond))
	pruned, err := h.prune()
	for _, id := range pruned {
		step("pruned release %s", id)
	}
	return rel, err
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// mkRelease makes Dir/releases/<id> (a new directory: Mkdir fails on
// anything already there), owned by the app's user and group, mode 0750
// (the code may hold what other users of the machine should not read),
// and returns id.
func (h *Host) mkRelease(t time.Time, short string, cred *syscall.Credential) (string, error) {
	base := t.UTC().Format("20060102T150405Z") + "-" + short
	for n := 0; n < 100; n++ {
		id := base
		if n > 0 {
			id += "-" + strconv.Itoa(n)
		}
		dir := h.releaseDir(id)
		err := os.Mkdir(dir, 0o750)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		// Dir/releases is root's: nobody can have swapped the new entry.
		if err := os.Chmod(dir, 0o750); err != nil {
			return "", err
		}
		return id, os.Lchown(dir, int(cred.Uid), int(cred.Gid))
	}
	return "", fmt.Errorf("%s: 100 releases of that second already", base)
}

// openLog creates the build log of id in the state dir (O_EXCL).
func (h *Host) openLog(id string) (*os.File, error) {
	dir := filepath.Join(h.stateDir, "logs")
	if err := trust.PrivateDir(dir, 0o700, -1); err != nil {
		return nil, err
	}
	return os.OpenFile(h.LogPath(id), os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
}

// fromSource prepares --from: a directory, copied by the app's user (who
// must be able to read it), or a .tar.gz file, opened by root (the
// operator named it) and extracted by the app's user.
func (h *Host) fromSource(ctx context.Context, from string, run *runner) (sha, short, source string, code func(string) error, err error) {
	fi, err := os.Stat(from)
	if err != nil {
		return "", "", "", nil, fmt.Errorf("--from: %w", err)
	}
	abs, err := filepath.Abs(from)
	if err != nil {
		return "", "", "", nil, err
	}
	if fi.IsDir() {
		code = func(dir string) error {
			return run.cmd(ctx, dir, nil, io.Discard, "cp", "-R", "-P", "--preserve=mode,timestamps", "--", abs+"/.", dir+"/")
		}
		return "", "dir", "dir " + abs, code, nil
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", "", "", nil, fmt.Errorf("--from: %w", err)
	}
	defer f.Close()
	hash := sha256.New()
	if _, err := io.Copy(hash, f); err != nil {
		return "", "", "", nil, fmt.Errorf("--from: %w", err)
	}
	sum := hex.EncodeToString(hash.Sum(nil))
	code = func(dir string) error {
		f, err := os.Open(abs)
		if err != nil {
			return err
		}
		defer f.Close()
		return run.cmd(ctx, dir, f, io.Discard, "tar", "-x", "-z", "-f", "-", "--no-same-owner", "-C", dir)
	}
	return sum, sum[:7], "tarball " + abs, code, nil
}

// linkShared links each shared path into the release, as the app's user:
// what the code has at that path is removed first.
func (h *Host) linkShared(ctx context.Context, dir string, run *runner, out io.Writer) error {
	for _, s := range h.cfg.Shared {
		p := strings.TrimSuffix(s, "/")
		target := filepath.Join(h.sharedDir(), p)
		if err := h.ensureShared(p, strings.HasSuffix(s, "/"), run.cred); err != nil {
			return err
		}
		const script = `set -e; rm -rf -- "$1"; mkdir -p -- "$(dirname -- "$1")"; ln -s -- "$2" "$1"`
		if err := run.cmd(ctx, dir, nil, out, "/bin/sh", "-c", script, "sh", p, target); err != nil {
			return fmt.Errorf("linking shared path %s: %w", s, err)
		}
	}
	return nil
}

// ensureShared makes sure Dir/shared/p exists: the directories above it
// root's (made so), p itself the app's (a directory made for it when
// isDir and missing). A directory above p that is not root's, or a link,
// is refused: root would create p through it.
func (h *Host) ensureShared(p string, isDir bool, cred *syscall.Credential) error {
	cur := h.sharedDir()
	parts := strings.Split(p, "/")
	for _, part := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(cur, 0o755); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() || st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
			return fmt.Errorf("%s: must be a directory of root's that only root can write, above the shared path %s", cur, p)
		}
	}
	leaf := filepath.Join(cur, parts[len(parts)-1])
	if _, err := os.Lstat(leaf); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if !isDir {
		return fmt.Errorf("shared path %s is missing: create %s (owned by the app's user), or write %q for a directory", p, leaf, p+"/")
	}
	if err := os.Mkdir(leaf, 0o750); err != nil {
		return err
	}
	return os.Lchown(leaf, int(cred.Uid), int(cred.Gid))
}

// Activate points Dir/current at release id, atomically (a link made
// under a temporary name, then renamed over current), and records it as
// Live, the release live before it as Previous. The switch (issue 23 §2)
// calls it once traffic may move; it does not start or stop programs.
func (h *Host) Activate(id string) error { return h.ActivateSlot(id, "") }

// ActivateSlot is Activate for a release whose blue_green programs run in
// slot ("" without any): the switch records it with the release and ends
// the switch record (BeginSwitch).
func (h *Host) ActivateSlot(id, slot string) error {
	if err := h.layout(); err != nil {
		return err
	}
	unlock, err := h.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return h.update(func(s *stateFile) error {
		r := s.find(id)
		if r == nil {
			return fmt.Errorf("no release %q", id)
		}
		if r.State != Built && r.State != Previous && r.State != Live {
			return fmt.Errorf("release %s is %s; only a built release can go live", id, r.State)
		}
		tmp := filepath.Join(h.cfg.Dir, fmt.Sprintf(".current-%d-%d", os.Getpid(), h.now().UnixNano()))
		if err := os.Symlink(filepath.Join("releases", id), tmp); err != nil {
			return err
		}
		if err := os.Rename(tmp, h.currentPath()); err != nil {
			os.Remove(tmp)
			return err
		}
		if d, err := os.Open(h.cfg.Dir); err == nil {
			d.Sync()
			d.Close()
		}
		s.Switching = nil
		if slot != "" {
			r.Slot = slot
		}
		if r.State == Live {
			return nil
		}
		for i := range s.Releases {
			switch s.Releases[i].State {
			case Previous:
				s.Releases[i].State = Built
			case Live:
				s.Releases[i].State = Previous
			}
		}
		r.State, r.Since = Live, h.now().UTC()
		return nil
	})
}

// prune removes the releases beyond the newest Keep, never the live, the
// previous or one building, and records them as Pruned.
func (h *Host) prune() ([]string, error) {
	var pruned []string
	err := h.update(func(s *stateFile) error {
		kept := 0
		var errs []error
		for i := len(s.Releases) - 1; i >= 0; i-- {
			r := &s.Releases[i]
			if r.State == Pruned {
				continue
			}
			if kept < h.cfg.Keep || r.State == Live || r.State == Previous || r.State == Building {
				kept++
				continue
			}
			// validID was checked on load; RemoveAll opens each directory
			// below with O_NOFOLLOW, so links in the release are removed,
			// not followed.
			if err := os.RemoveAll(h.releaseDir(r.ID)); err != nil {
				errs = append(errs, fmt.Errorf("pruning %s: %w", r.ID, err))
				continue
			}
			r.State = Pruned
			pruned = append(pruned, r.ID)
		}
		return errors.Join(errs...)
	})
	return pruned, err
}

// runner runs commands as the app's user ([deploy] RunAs).
type runner struct {
	cred    *syscall.Credential
	env     []string
	pgroups supervisor.PgroupRecords // the running commands' groups
}

func (h *Host) runner() (*runner, error) {
	if h.cfg.RunAs.User == "" {
		return nil, errors.New("deploy: no user to run the build steps as")
	}
	cred, err := supervisor.Credential(h.cfg.RunAs.User, h.cfg.RunAs.Group)
	if err != nil {
		return nil, err
	}
	env, err := h.cfg.RunAs.Env()
	if err != nil {
		return nil, fmt.Errorf("deploy.environment: %w", err)
	}
	return &runner{cred: cred, env: env, pgroups: supervisor.PgroupRecords{Dir: h.pgroupsDir(), Log: zap.NewNop()}}, nil
}

// Live returns the live release, and false when none is.
func (h *Host) Live() (Release, bool, error) {
	s, err := h.load()
	if err != nil {
		return Release{}, false, err
	}
	for _, r := range s.Releases {
		if r.State == Live {
			return r, true, nil
		}
	}
	return Release{}, false, nil
}

// Dir is the directory of release id.
func (h *Host) Dir(id string) string { return h.releaseDir(id) }

// BeginSwitch records that traffic is about to move to release id in
// slot to, from slot from; ActivateSlot ends the record, as does Fail.
func (h *Host) BeginSwitch(id, from, to string) error {
	return h.update(func(s *stateFile) error {
		if s.find(id) == nil {
			return fmt.Errorf("no release %q", id)
		}
		s.Switching = &Switch{Release: id, From: from, To: to, Since: h.now().UTC()}
		return nil
	})
}

// Fail records a built release that did not go live as failed, with why
// (the gate's reason and the new program's last lines); current and the
// live release are not touched.
func (h *Host) Fail(id, why string) error {
	return h.update(func(s *stateFile) error {
		s.Switching = nil
		r := s.find(id)
		if r == nil {
			return fmt.Errorf("no release %q", id)
		}
		if r.State == Built {
			r.State, r.Error = Failed, why
		}
		return nil
	})
}

// BeforeSwitch runs the before_switch steps in release rel's dir, as the
// app's user, each within its timeout, their output to out and the
// release's build log.
func (h *Host) BeforeSwitch(ctx context.Context, rel Release, out io.Writer) error {
	if len(h.cfg.BeforeSwitch) == 0 {
		return nil
	}
	run, err := h.runner()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(h.LogPath(rel.ID), os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0o600)
	if err == nil {
		defer logf.Close()
		out = io.MultiWriter(out, logf)
	}
	dir := h.releaseDir(rel.ID)
	for i, s := range h.cfg.BeforeSwitch {
		fmt.Fprintf(out, "%s before_switch[%d]: %s\n", h.now().UTC().Format("15:04:05"), i, s.Command)
		if err := run.step(ctx, s, rel.ID, dir, out); err != nil {
			return fmt.Errorf("before_switch[%d] (%s): %w", i, s.Command, err)
		}
	}
	return nil
}
