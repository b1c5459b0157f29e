package proxy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Config text reaches Caddy fields that expand placeholders: {file.PATH}
// reads a file and {env.NAME} a variable, as root. hostctl's own config is
// root's, but a Caddyfile (whose placeholders are a feature) must be too:
// one the app's user could edit would give it every file on the host.
// Values from hostctl.toml that Caddy would expand are refused when they
// hold a brace (noPlaceholders) or escaped (escapeBraces), so that they
// mean what they say.

// checkTrustedFile reports an error unless path, and every directory and
// symbolic link on the way to it, is owned by root or by hostctl's user
// and writable by no one else (directories with the sticky bit, such as
// /tmp, excepted: others cannot replace what they do not own there).
// Then no other user can change what hostctl reads there.
func checkTrustedFile(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	cur := "/"
	if err := trustedEntry(cur, true); err != nil {
		return err
	}
	pending := strings.Split(abs, "/")
	for links := 0; len(pending) > 0; {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, c)
		fi, err := os.Lstat(next)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if err := trustedEntry(next, false); err != nil {
				return err
			}
			if links++; links > 40 {
				return fmt.Errorf("%s: too many symbolic links", path)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return err
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			pending = append(strings.Split(target, "/"), pending...)
			continue
		}
		if err := trustedEntry(next, len(pending) > 0); err != nil {
			return err
		}
		cur = next
	}
	return nil
}

// trustedEntry checks one file, directory or link: its owner, and that
// neither group nor others may write it (a sticky directory may be
// world-writable).
func trustedEntry(p string, dir bool) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no owner information", p)
	}
	if euid := os.Geteuid(); st.Uid != 0 && int(st.Uid) != euid {
		return fmt.Errorf("%s is owned by uid %d, not by root or hostctl's user: that user could change what hostctl reads (chown root %s)", p, st.Uid, p)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil // a link's own mode means nothing
	}
	if fi.Mode().Perm()&0o022 != 0 && !(dir && fi.Mode()&fs.ModeSticky != 0) {
		return fmt.Errorf("%s is writable by group or others (mode %#o): they could change what hostctl reads (chmod go-w %s)", p, fi.Mode().Perm(), p)
	}
	return nil
}

// errPlaceholder is the error for a value that holds a brace.
var errPlaceholder = errors.New("must not contain { or }: Caddy would read them as a placeholder such as {file.PATH} or {env.NAME} (hostctl.toml takes ${VAR} from hostctl's environment instead)")

// noPlaceholders returns errPlaceholder if v holds a brace.
func noPlaceholders(v string) error {
	if strings.ContainsAny(v, "{}") {
		return errPlaceholder
	}
	return nil
}
