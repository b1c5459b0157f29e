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
)

// ListenUnix listens on the unix socket at path for the admin API.
//
// If the socket's directory does not exist it is created with mode 0750
// (and group gid when gid >= 0); an existing directory is left as it is.
// The socket gets mode 0660 and group gid, so members of that group can
// use the CLI: file permissions are the authentication on the socket.
//
// A socket file already at path is removed only after a dial proves it
// stale (nobody accepts on it); if another daemon answers, ListenUnix fails
// and leaves it alone. Anything at path that is not a socket is an error.
func ListenUnix(path string, gid int) (net.Listener, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("admin socket directory: %w", err)
		}
		if err := os.Chmod(dir, 0o750); err != nil {
			return nil, fmt.Errorf("admin socket directory: %w", err)
		}
		if gid >= 0 {
			if err := os.Chown(dir, -1, gid); err != nil {
				return nil, fmt.Errorf("admin socket directory: %w", err)
			}
		}
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			l.Close()
			return nil, fmt.Errorf("admin socket: group of %s: %w", path, err)
		}
	}
	return l, nil
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
