package logfile

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
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
// The read end is deliberately kept out of the Go runtime's poller
// (epoll): a pipe watched by epoll wakes the epoll waiter on every write,
// so a program writing line by line would wake a hostctl thread per line
// even while hostctl is not waiting for it. See Stream.readLoop.
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

// newEventFd returns a non-blocking eventfd, which Close uses to wake a
// reader waiting in poll(2).
func newEventFd() (int, error) {
	fd, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if errno != 0 {
		return -1, fmt.Errorf("creating eventfd: %w", errno)
	}
	return int(fd), nil
}

// pollIn waits until fd or stop is readable (or fd hung up) and reports
// whether stop is.
func pollIn(fd, stop int) bool {
	fds := [2]pollFd{{fd: int32(fd), events: pollIN}, {fd: int32(stop), events: pollIN}}
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), 2, 0, 0, 0, 0) // no timeout, no sigmask
		if errno == syscall.EINTR {
			continue
		}
		return fds[1].revents != 0
	}
}

// pollFd is struct pollfd from <poll.h>.
type pollFd struct {
	fd      int32
	events  int16
	revents int16
}

const pollIN = 0x1 // POLLIN

// signalFd makes the eventfd fd readable.
func signalFd(fd int) {
	one := [8]byte{1}
	syscall.Write(fd, one[:])
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
