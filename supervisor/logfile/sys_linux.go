package logfile

import (
	"fmt"
	"os"
	"syscall"
)

// pipeSize is the capacity requested for each capture pipe with
// F_SETPIPE_SZ. Linux allows unprivileged processes up to
// /proc/sys/fs/pipe-max-size (1 MiB by default); failure is ignored.
const pipeSize = 1 << 20

const fSETPIPE_SZ = 1031 // F_SETPIPE_SZ from <fcntl.h>; not in package syscall

// newPipe returns a pipe whose read end is a non-blocking descriptor that
// the caller reads and polls itself, and whose write end stays blocking:
// the write end is handed to children as their stdout/stderr, and
// O_NONBLOCK lives on the open file description, which the child would
// share.
//
// The read end is deliberately kept out of the Go runtime's poller: a
// pipe in that (always armed) epoll wakes a hostctl thread on every
// write, so a program writing line by line would cost a wake-up per line
// even while hostctl is not waiting for it. The Manager's waiter watches
// it instead, armed only while its reader waits. See Stream.readLoop.
func newPipe() (r int, w *os.File, err error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		return -1, nil, fmt.Errorf("creating pipe: %w", err)
	}
	_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, uintptr(fds[0]), fSETPIPE_SZ, pipeSize)
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		syscall.Close(fds[0])
		syscall.Close(fds[1])
		return -1, nil, fmt.Errorf("creating pipe: %w", err)
	}
	return fds[0], os.NewFile(uintptr(fds[1]), "|1"), nil
}

// fsInfo is what the keep_free check needs to know about a filesystem.
type fsInfo struct {
	size  int64 // total bytes
	avail int64 // bytes available to unprivileged users
}

func statFS(dir string) (fsInfo, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fsInfo{}, err
	}
	return fsInfo{size: int64(st.Blocks) * st.Bsize, avail: int64(st.Bavail) * st.Bsize}, nil
}

// deviceOf returns the device number of the filesystem holding path.
func deviceOf(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Dev, nil
}
