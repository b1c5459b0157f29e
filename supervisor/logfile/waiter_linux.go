package logfile

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

// waiter waits for the capture pipes of all of a Manager's streams to
// become readable, with one epoll instance of its own, so that a quiet
// stream holds neither an OS thread nor a wake-up per write.
//
// Each pipe is registered with EPOLLONESHOT: it reports readiness once and
// is then disarmed until its reader, having read the pipe empty, arms it
// again. A pipe watched by Go's own poller (edge-triggered, always armed)
// would instead wake a hostctl thread on every write(2) of a program
// writing line by line, even while its reader pauses to collect a batch
// (see Stream.readLoop). The epoll descriptor itself is watched by Go's
// poller, so waiting for it costs no thread either: it becomes readable
// only when an armed pipe does.
type waiter struct {
	ep  *os.File // the epoll instance, in Go's poller
	raw syscall.RawConn

	mu    sync.Mutex              // guards ready
	ready map[int32]chan struct{} // pipe read fd -> its reader's wake-up channel (cap 1)

	done chan struct{} // closed when loop returns
}

func newWaiter() (*waiter, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating epoll instance: %w", err)
	}
	// Non-blocking, so that os.NewFile puts it in Go's poller.
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("creating epoll instance: %w", err)
	}
	ep := os.NewFile(uintptr(fd), "epoll")
	raw, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("creating epoll instance: %w", err)
	}
	w := &waiter{ep: ep, raw: raw, ready: make(map[int32]chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w, nil
}

// add registers the pipe read end fd, disarmed; its reader arms it with
// arm when it needs to wait. ready gets a value (if it has room) whenever
// the armed pipe becomes readable or hangs up.
func (w *waiter) add(fd int, ready chan struct{}) error {
	w.mu.Lock()
	w.ready[int32(fd)] = ready
	w.mu.Unlock()
	// Registered armed, like a reader that just found the pipe empty;
	// at worst its first wake-up is for nothing.
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLONESHOT, Fd: int32(fd)}
	if err := w.ctl(syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		w.mu.Lock()
		delete(w.ready, int32(fd))
		w.mu.Unlock()
		return fmt.Errorf("watching pipe: %w", err)
	}
	return nil
}

// arm asks for one wake-up when fd is readable (or is already). The
// kernel checks the pipe as it re-arms it, so bytes that arrived after
// the reader's last read are not missed.
func (w *waiter) arm(fd int) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLONESHOT, Fd: int32(fd)}
	return w.ctl(syscall.EPOLL_CTL_MOD, fd, &ev)
}

// remove unregisters fd; call it before closing fd, whose number may be
// reused at once.
func (w *waiter) remove(fd int) {
	w.ctl(syscall.EPOLL_CTL_DEL, fd, nil)
	w.mu.Lock()
	delete(w.ready, int32(fd))
	w.mu.Unlock()
}

func (w *waiter) ctl(op, fd int, ev *syscall.EpollEvent) error {
	var err error
	if cerr := w.raw.Control(func(ep uintptr) { err = syscall.EpollCtl(int(ep), op, fd, ev) }); cerr != nil {
		return cerr
	}
	return err
}

// loop hands each readiness event to its reader, until close.
func (w *waiter) loop() {
	defer close(w.done)
	var evs [64]syscall.EpollEvent
	for {
		err := w.raw.Read(func(ep uintptr) bool {
			for {
				n, err := syscall.EpollWait(int(ep), evs[:], 0)
				if err == syscall.EINTR {
					continue
				}
				if n <= 0 {
					return false // nothing armed is ready: wait in Go's poller
				}
				w.mu.Lock()
				for _, ev := range evs[:n] {
					// A stale event for a removed (or reused) fd wakes a
					// reader for nothing: it reads, finds EAGAIN, re-arms.
					if ch, ok := w.ready[ev.Fd]; ok {
						select {
						case ch <- struct{}{}:
						default:
						}
					}
				}
				w.mu.Unlock()
			}
		})
		if err != nil {
			return // closed
		}
	}
}

func (w *waiter) close() error {
	err := w.ep.Close()
	<-w.done
	return err
}
