package config

import (
	"os"
	"path/filepath"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

// DataDirEnv names the environment variable that puts everything hostctl
// writes under one directory, for a container whose root file system is
// read-only (`hostctl run --data-dir DIR` sets it): the admin socket, the
// state dir and the log dir then default to DIR/run/hostctl.sock,
// DIR/state and DIR/log instead of /run/hostctl, /var/lib/hostctl and
// /var/log/hostctl. Keys set in the file win. The socket is one level
// down so that DIR itself may be a tmpfs or a volume that others may
// write (sticky, like /tmp): hostctl makes DIR/run and DIR/state itself,
// private to its user.
const DataDirEnv = "HOSTCTL_DATA_DIR"

// DataDir returns $HOSTCTL_DATA_DIR ("" when unset).
func DataDir() string { return os.Getenv(DataDirEnv) }

// DefaultSocket is the admin socket when the config names none: under the
// data dir when there is one, else apitype.DefaultSocket.
func DefaultSocket() string {
	if dir := DataDir(); dir != "" {
		return filepath.Join(dir, "run", "hostctl.sock")
	}
	return apitype.DefaultSocket
}

// applyDataDir moves f's default dirs under the data dir, if one is set.
func (f *File) applyDataDir() {
	dir := DataDir()
	if dir == "" {
		return
	}
	f.Admin.Socket = DefaultSocket()
	f.Admin.StateDir = filepath.Join(dir, "state")
	f.Log.Dir = filepath.Join(dir, "log")
}

// validateDataDir refuses a data dir that is not an absolute path (the
// dirs under it would move with the working directory).
func validateDataDir(bad func(key, format string, a ...any)) {
	if dir := DataDir(); dir != "" && !filepath.IsAbs(dir) {
		bad(DataDirEnv, "%q must be an absolute path (the socket, state and log dirs go under it)", dir)
	}
}
