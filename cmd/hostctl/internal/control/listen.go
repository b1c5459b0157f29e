package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hostctl/hostctl/supervisor/trust"
)

// maxSocketPath is the longest unix socket path bind(2) takes (sun_path
// is 108 bytes, with its NUL).
const maxSocketPath = 107

// ListenUnix listens on the unix socket at path for the admin API.
//
// The socket's directory must be one only hostctl's user can change
// (trust.PrivateDir): if it does not exist it is created with mode 0750
// (and group gid when gid >= 0); an existing one owned by another user, or
// that group or others can write, is refused with what to run.
//
// The socket gets mode 0660 and group gid, so members of that group can use
// the CLI: file permissions are the authentication on the socket. It has
// them from the moment it exists at path: it is bound in a fresh 0700
// directory next to path, given its mode and group there, then linked
// into place. bind(2) creates the file with the process's umask, which Go
// cannot set for one goroutine (umask is per process, and the supervisor
// forks programs concurrently), so a socket bound at path would be open to
// everyone the umask allows until a chmod, and to the wrong group until a
// chown.
//
// A socket file already at path is removed only after a dial proves it
// stale (nobody accepts on it); if another daemon answers, ListenUnix fails
// and leaves it alone. Anything at path that is not a socket is an error.
// Close removes the socket file, if it is still this listener's.
func ListenUnix(path string, gid int) (net.Listener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("admin socket: %s is %d bytes long; a unix socket path has at most %d: choose a shorter [admin] socket", path, len(path), maxSocketPath)
	}
	dir := filepath.Dir(path)
	if err := trust.PrivateDir(dir, 0o750, gid); err != nil {
		return nil, fmt.Errorf("admin socket directory: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	l, err := bindPrivate(dir, path, gid)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return l, nil
}

// bindPrivate binds a unix socket in a new 0700 directory inside dir, sets
// its mode and group, and moves it to path without replacing anything
// there: two daemons starting at once do not take each other's socket.
func bindPrivate(dir, path string, gid int) (*unixListener, error) {
	tmp, err := os.MkdirTemp(dir, ".hostctl-sock-") // mode 0700
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bindPath := filepath.Join(tmp, "s")
	if len(bindPath) > maxSocketPath {
		// The same directory through its descriptor: a short path.
		d, err := os.OpenFile(tmp, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		bindPath = fmt.Sprintf("/proc/self/fd/%d/s", d.Fd())
	}
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: bindPath, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ul.SetUnlinkOnClose(false) // the name it was bound to is gone; Close removes path
	fail := func(err error) (*unixListener, error) {
		ul.Close()
		return nil, err
	}
	if err := os.Chmod(bindPath, 0o660); err != nil {
		return fail(err)
	}
	if gid >= 0 {
		if err := os.Chown(bindPath, -1, gid); err != nil {
			return fail(fmt.Errorf("group of %s: %w", path, err))
		}
	}
	if err := moveNoReplace(bindPath, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fail(fmt.Errorf("%s appeared while this hostctl was starting: is another one starting on it?", path))
		}
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &unixListener{UnixListener: ul, path: path, file: fi}, nil
}

// moveNoReplace renames from to to, failing with EEXIST if to exists
// (renameat2 RENAME_NOREPLACE); on a file system without it, link(2) then
// unlink(2) does the same in two steps.
func moveNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		if err := os.Link(from, to); err != nil {
			return err
		}
		return os.Remove(from)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// unixListener is the admin socket's listener: its address is the path
// clients dial (not the one it was bound to), and Close removes that path
// if it still names this socket.
type unixListener struct {
	*net.UnixListener
	path string
	file fs.FileInfo // the socket file at path, to recognize it at Close
}

func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.file) {
		os.Remove(l.path)
	}
	return err
}

// removeStale removes a socket file at path that no process accepts on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("admin socket: %s exists and is not a socket; remove it or choose another [admin] socket", path)
	}
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("admin socket: another hostctl is already running on %s (stop it first, or give this one another [admin] socket)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("admin socket: cannot tell whether %s is in use: %w", path, err)
	}
	// Proven stale: nobody listens. Remove it so Listen can bind.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("admin socket: removing the stale %s: %w", path, err)
	}
	return nil
}
