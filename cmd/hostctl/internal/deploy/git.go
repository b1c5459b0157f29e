package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hostctl/hostctl/supervisor"
)

// Git runs as root, and only on the mirror, a bare repository in root's
// private state dir (<state_dir>/deploy/mirror.git): the app's user can
// change nothing git reads there (config, hooks). The code reaches a
// release as `git archive`'s tar stream, extracted by the app's user. The
// repo itself is a URL, or a local path that git refuses when another
// user owns it (safe.directory: a repository of the app's user could run
// its hooks and config as root). Cloning with --no-local copies objects
// through git's own protocol instead of hard links or copies of the
// repo's files (which a symbolic link in its objects dir could point at
// root's files).

func (h *Host) mirrorPath() string { return filepath.Join(h.stateDir, "mirror.git") }

// MirrorPath is the bare mirror of [deploy] repo.
func (h *Host) MirrorPath() string { return h.mirrorPath() }

// git runs git as root with args; its error carries git's stderr.
func (h *Host) git(ctx context.Context, stdout io.Writer, args ...string) error {
	// Never prompt for a password on hostctl's terminal: a deploy that
	// needs one fails and says so. Root's own git config (credentials, a
	// deploy key for ssh) applies.
	env := append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/false")
	var stderr bytes.Buffer
	c := &supervisor.Cmd{Args: append([]string{"git"}, args...), Env: env, Stdout: stdout, Stderr: &stderr}
	if err := c.Run(ctx); err != nil {
		return fmt.Errorf("git %s: %s: %s", args[0], exitText(err), strings.TrimSpace(stderr.String()))
	}
	return nil
}

// fetch brings the mirror up to date with the repo (made by the first
// deploy; later deploys fetch only new objects) and returns the commit
// that ref names.
func (h *Host) fetch(ctx context.Context, ref string) (string, error) {
	m := h.mirrorPath()
	if _, err := os.Lstat(m); errors.Is(err, fs.ErrNotExist) {
		tmp := m + ".new"
		os.RemoveAll(tmp) // an interrupted clone
		if err := h.git(ctx, io.Discard, "clone", "--mirror", "--no-local", "--quiet", "--", h.cfg.Repo, tmp); err != nil {
			os.RemoveAll(tmp)
			return "", err
		}
		if err := os.Rename(tmp, m); err != nil {
			return "", err
		}
	} else {
		if err := h.git(ctx, io.Discard, "--git-dir", m, "remote", "set-url", "origin", "--", h.cfg.Repo); err != nil {
			return "", err
		}
		if err := h.git(ctx, io.Discard, "--git-dir", m, "fetch", "--prune", "--quiet", "origin"); err != nil {
			return "", err
		}
	}
	var out bytes.Buffer
	if err := h.git(ctx, &out, "--git-dir", m, "rev-parse", "--verify", "--quiet", "--end-of-options", ref+"^{commit}"); err != nil {
		return "", fmt.Errorf("ref %q is not a commit, branch or tag of %s", ref, h.cfg.Repo)
	}
	sha := strings.TrimSpace(out.String())
	if len(sha) < 40 {
		return "", fmt.Errorf("git rev-parse %s: unexpected %q", ref, sha)
	}
	return sha, nil
}

// checkout puts commit sha's files into dir: git archive (root, on the
// mirror) piped into tar run by the app's user in dir.
func (h *Host) checkout(ctx context.Context, sha, dir string, run *runner) error {
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := h.git(ctx, pw, "--git-dir", h.mirrorPath(), "archive", "--format=tar", sha)
		pw.CloseWithError(err)
		errc <- err
	}()
	terr := run.cmd(ctx, dir, pr, io.Discard, "tar", "-x", "-f", "-", "--no-same-owner", "-C", dir)
	pr.CloseWithError(errors.New("tar ended"))
	if gerr := <-errc; gerr != nil {
		return gerr
	}
	return terr
}
