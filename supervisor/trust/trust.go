// Package trust decides which files and directories hostctl, running as
// root next to an application whose user is not trusted, may believe and
// write: its config, token and secret files (ReadFile), its state and
// socket directories (PrivateDir), and the files it keeps in them
// (ReadOwnFile, WriteOwnFile).
//
// The rule is the one OpenSSH applies to authorized_keys and sudo to
// sudoers: a file is trusted only if no one but root and hostctl's own
// user could have written it, and no one else can swap it: every directory
// on the way to it (symbolic links followed) is owned by root or hostctl's
// user and not writable by group or others, a sticky directory like /tmp
// excepted, where then the next entry (a link included) must be ours.
//
// The supervisor and cmd use it directly. The proxy may not import the
// supervisor's tree: it is given this rule as proxy.ReadTrusted (set by
// cmd/hostctl's config package) for the files it believes.
package trust

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Kind is what a file is for; it decides what ReadFile warns about.
type Kind uint8

const (
	// Config is a file whose contents are not secret but decide what root
	// does: the config file, a CA file. Others may read it.
	Config Kind = iota
	// Secret is a token, password or key file: ReadFile warns when users
	// other than its owner and group can read it.
	Secret
)

// Error says why a file or directory is not trusted, and what to do.
type Error struct {
	Path    string // the file or directory at fault
	Above   string // the path asked for, when Path is a directory above it
	Problem string // what is wrong with it
	Fix     string // what to run or change; may be empty
}

func (e *Error) Error() string {
	s := e.Path
	if e.Above != "" {
		s += " (above " + e.Above + ")"
	}
	s += ": " + e.Problem
	if e.Fix != "" {
		s += "; " + e.Fix
	}
	return s
}

// ReadFile is how hostctl reads a file it trusts: its config file, a token
// file, a secret file (an alert sink's key or password, a fleet host's
// token, the certificate storage's password or encryption key, a TLS key),
// a CA file. Every reader of such a file calls it, so that one rule
// applies to all of them.
//
// It refuses, with an *Error that says what to do, a file that:
//   - is owned by a user other than root and hostctl's own (effective) user;
//   - group or others can write;
//   - is not a regular file;
//   - lies below a directory that a user other than those two owns, or that
//     group or others can write (unless it is sticky, as /tmp, and the
//     entry below it is owned by root or hostctl's user), symbolic links
//     followed: whoever can change such a directory can swap the file.
//
// For a Secret that others can read it returns the contents and a warning
// (not an error: it can be on purpose, and refusing would break a running
// setup); the caller logs it, and `hostctl check` prints it. Errors of the
// file system (not found, permission denied) come back as they are.
//
// The checks are made on the file actually opened (fstat), so a file
// swapped between a check and the read is not believed.
func ReadFile(path string, kind Kind) (data []byte, warning string, err error) {
	f, err := openTrusted(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, "", err
	}
	if !fi.Mode().IsRegular() {
		return nil, "", &Error{Path: path, Problem: fmt.Sprintf("is not a regular file (%s)", typeName(fi.Mode()))}
	}
	if err := checkOwnerMode(path, fi, ownerRootOrSelf); err != nil {
		return nil, "", err
	}
	if kind == Secret && fi.Mode().Perm()&0o004 != 0 {
		warning = fmt.Sprintf("%s: every user of this machine can read this secret (mode %04o); run: chmod o-r %s", path, fi.Mode().Perm(), shellQuote(path))
	}
	// Bounded: a config or secret is small; a FIFO or /dev/zero was
	// refused above, but a huge file must not take hostctl's memory.
	data, err = io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, "", err
	}
	if len(data) > maxFileSize {
		return nil, "", &Error{Path: path, Problem: fmt.Sprintf("is larger than %d MB; a config or secret file never is", maxFileSize>>20)}
	}
	return data, warning, nil
}

const maxFileSize = 16 << 20

// openTrusted opens path for reading once every directory it resolves
// through is trusted; the file itself is the caller's to check (fstat).
func openTrusted(path string) (*os.File, error) {
	final, err := walk(path)
	if err != nil {
		return nil, err
	}
	// walk resolved every link; the final name is not one, and nobody but
	// root or us can make it one since: O_NOFOLLOW makes sure. O_NONBLOCK:
	// a FIFO must not hang the open (it is refused after fstat).
	f, err := os.OpenFile(final, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: unwrap(err)}
	}
	return f, nil
}

// PrivateDir makes sure that dir is a directory only hostctl's user can
// change, for the files root acts on later (process group records, the
// drain and alert state) and for the admin socket. A missing dir and its
// missing parents are created with mode perm (and group gid when gid >= 0;
// the mode is set exactly, whatever the umask); an existing one is checked,
// never repaired: it must be owned by hostctl's own (effective) user, not
// writable by group or others, and every directory above it must pass the
// ReadFile rule. Otherwise the *Error says which chown or chmod to run:
// a directory someone else made first (say /tmp/hostctl-demo, created by
// a local user before hostctl) may already hold what that user planted.
func PrivateDir(dir string, perm fs.FileMode, gid int) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		// Nothing is created below a directory that is not trusted.
		parent := filepath.Dir(dir)
		for parent != "/" && parent != "." {
			if _, err := os.Lstat(parent); !errors.Is(err, fs.ErrNotExist) {
				break
			}
			parent = filepath.Dir(parent)
		}
		final, err := walk(parent)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(final)
		if err != nil {
			return err
		}
		if err := checkDir(parent, fi, dir); err != nil {
			return err
		}
		if err := mkdirAll(dir, perm, gid); err != nil {
			return err
		}
	}
	final, err := walk(dir)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(final)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &Error{Path: dir, Problem: fmt.Sprintf("is not a directory (%s)", typeName(fi.Mode()))}
	}
	return checkOwnerMode(dir, fi, ownerSelf)
}

// mkdirAll creates dir and its missing parents with mode perm and group
// gid; parents are created the same way, so that none is looser than dir.
func mkdirAll(dir string, perm fs.FileMode, gid int) error {
	parent := filepath.Dir(dir)
	if parent != dir {
		if _, err := os.Lstat(parent); errors.Is(err, fs.ErrNotExist) {
			if err := mkdirAll(parent, perm, gid); err != nil {
				return err
			}
		}
	}
	if err := os.Mkdir(dir, perm); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // made meanwhile: walk checks whoever made it
		}
		return err
	}
	if err := os.Chmod(dir, perm); err != nil { // the umask took bits off
		return err
	}
	if gid >= 0 {
		return os.Lchown(dir, -1, gid)
	}
	return nil
}

// ReadOwnFile reads path, a file hostctl wrote itself (WriteOwnFile) in a
// directory that PrivateDir accepted: a process group record, the drain or
// alert state. It refuses a symbolic link, anything but a regular file, a
// file owned by another user than root or hostctl's, and one that group or
// others can write: such a file was not written by hostctl, and root acts
// on what it says (it kills the process groups recorded).
func ReadOwnFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, &Error{Path: path, Problem: "is a symbolic link, which hostctl never writes here; remove it"}
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{Path: path, Problem: fmt.Sprintf("is not a regular file (%s), which hostctl never writes here; remove it", typeName(fi.Mode()))}
	}
	if err := checkOwnerMode(path, fi, ownerRootOrSelf); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(f, maxFileSize))
}

// WriteOwnFile replaces path with a file holding data and mode perm: it
// writes a new temporary file in path's directory, created with O_EXCL
// (os.CreateTemp: a name planted there, a symbolic link to /etc/shadow
// say, is never opened, let alone written through), then renames it over
// path (rename replaces a link at path, it does not follow it). A reader
// sees the old file or the new one, never half of one.
func WriteOwnFile(path string, data []byte, perm fs.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// sharedSticky reports whether fi is a sticky directory that group or
// others can write, like /tmp.
func sharedSticky(fi fs.FileInfo) bool {
	return fi.Mode()&fs.ModeSticky != 0 && fi.Mode().Perm()&0o022 != 0
}

// checkDir checks a directory that path goes through.
func checkDir(dir string, fi fs.FileInfo, path string) error {
	if err := checkOwner(dir, fi, ownerRootOrSelf, path); err != nil {
		return err
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return &Error{Path: dir, Above: above(dir, path), Problem: fmt.Sprintf("group or other users can write this directory (mode %04o), so they can replace what is in it", fi.Mode().Perm()),
			Fix: "run: chmod go-w " + shellQuote(dir)}
	}
	return nil
}

// above is path when dir is a directory above it, else "".
func above(dir, path string) string {
	if dir == path {
		return ""
	}
	return path
}

type owners uint8

const (
	ownerRootOrSelf owners = iota
	ownerSelf
)

func checkOwner(name string, fi fs.FileInfo, who owners, path string) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &Error{Path: name, Problem: "cannot tell who owns it"}
	}
	self := os.Geteuid()
	uid := int(st.Uid)
	if uid == self || (who == ownerRootOrSelf && uid == 0) {
		return nil
	}
	want := "root or " + userName(self)
	if who == ownerSelf || self == 0 {
		want = userName(self)
	}
	return &Error{Path: name, Above: above(name, path), Problem: fmt.Sprintf("is owned by %s, not by %s (hostctl's user): that user could change what hostctl, as root, believes or acts on", userName(uid), want),
		Fix: fmt.Sprintf("if it is hostctl's, run: chown %s %s; else remove it or choose another path", loginName(self), shellQuote(name))}
}

// checkOwnerMode checks the owner and the write bits of the file or
// directory fi at path (path itself, not a parent).
func checkOwnerMode(path string, fi fs.FileInfo, who owners) error {
	if err := checkOwner(path, fi, who, path); err != nil {
		return err
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return &Error{Path: path, Problem: fmt.Sprintf("group or other users can write it (mode %04o)", fi.Mode().Perm()),
			Fix: "run: chmod go-w " + shellQuote(path)}
	}
	return nil
}

// userName is "root", "hct-host (uid 1001)", or "uid 1001" for a uid
// without a name.
func userName(uid int) string {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return "uid " + strconv.Itoa(uid)
	}
	if uid == 0 {
		return u.Username
	}
	return fmt.Sprintf("%s (uid %d)", u.Username, uid)
}

// loginName is the user's name for chown, else its uid.
func loginName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

func typeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}

func unwrap(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// shellQuote quotes s for a command line when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
