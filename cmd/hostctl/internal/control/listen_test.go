package control

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testuser"
)

// TestSocketNeverLooser: the admin socket must have its mode (0660) and
// group from the moment it exists at its path. A socket bound at its path
// is created with the process's umask (0777 under umask 0, open to every
// local user: the admin API as root) and fixed by a chmod and a chown
// after: a window. What can be observed of it is the directory's inotify
// events, queued by the kernel as each system call happens: a bind at the
// path shows as IN_CREATE of its name, a chmod or chown after it as
// IN_ATTRIB. The socket must instead arrive whole, by a rename
// (IN_MOVED_TO), and never change afterwards. It runs under umask 0, the
// worst a service manager can give.
func TestSocketNeverLooser(t *testing.T) {
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o750); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(run, "h.sock")

	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, run, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_ATTRIB); err != nil {
		t.Fatal(err)
	}

	old := syscall.Umask(0)
	l, err := ListenUnix(path, os.Getgid())
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	// ListenUnix has returned: every event of its system calls is queued.
	buf := make([]byte, 64<<10)
	var events []string
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			name := string(bytes.TrimRight(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+nameLen], "\x00"))
			off += unix.SizeofInotifyEvent + nameLen
			if name != "h.sock" {
				continue // the private bind dir
			}
			switch {
			case mask&unix.IN_CREATE != 0:
				events = append(events, "IN_CREATE")
			case mask&unix.IN_MOVED_TO != 0:
				events = append(events, "IN_MOVED_TO")
			case mask&unix.IN_ATTRIB != 0:
				events = append(events, "IN_ATTRIB")
			}
		}
	}
	if strings.Join(events, " ") != "IN_MOVED_TO" {
		t.Errorf("events on the socket's name: %v; want only IN_MOVED_TO (bound elsewhere with its mode set, then moved in)", events)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket %v, want a socket with mode 0660", fi.Mode())
	}
	if ents, _ := os.ReadDir(run); len(ents) != 1 {
		t.Errorf("left in the socket dir: %v", ents)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dialing the socket at its path: %v", err)
	}
	c.Close()
	if got := l.Addr().String(); got != path {
		t.Errorf("Addr() = %q, want %q", got, path)
	}
}

// TestSocketDirOfAnotherUser: a socket dir that a local user made first
// (or can write) is refused: that user could swap the socket for a link
// before the chmod, or for a socket of their own that the CLI then talks
// to as root.
func TestSocketDirOfAnotherUser(t *testing.T) {
	u := testuser.Ensure(t, "hct-host")
	base, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	if err := os.Chmod(base, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	u.Shell(t, "mkdir -m 755 "+base+"/run")
	if l, err := ListenUnix(filepath.Join(base, "run", "h.sock"), -1); err == nil {
		l.Close()
		t.Fatal("ListenUnix used a socket dir that hct-host made")
	} else if !strings.Contains(err.Error(), "hct-host") {
		t.Errorf("error %q does not name the dir's owner", err)
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if l, err := ListenUnix(filepath.Join(open, "h.sock"), -1); err == nil {
		l.Close()
		t.Fatal("ListenUnix used a world-writable socket dir")
	}
	// A path too long for bind(2), refused up front.
	long := filepath.Join(t.TempDir(), strings.Repeat("x", 120)+".sock")
	if l, err := ListenUnix(long, -1); err == nil {
		l.Close()
		t.Error("ListenUnix accepted a path longer than a socket path can be")
	}
}

// TestListenUnixLongPath: a socket path close to the limit still works,
// although the private dir it is bound in makes a longer path (bound
// through /proc/self/fd then).
func TestListenUnixLongPath(t *testing.T) {
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "run", "")
	path = filepath.Join(path, strings.Repeat("s", maxSocketPath-len(path)-1))
	if len(path) != maxSocketPath {
		t.Fatalf("test path is %d bytes", len(path))
	}
	l, err := ListenUnix(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket: %v, %v; want mode 0660", fi, err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
