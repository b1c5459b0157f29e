package logfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A program whose stdout_log (or stderr_log) is "-" writes into hostctl's
// own stdout (stderr) instead of a file, the way a container expects: each
// line prefixed with the process name, like `docker compose` does. Several
// programs share one output, so lines are kept whole: a ConsoleStream
// reads its program's pipe, holds a partial line until its newline (or
// until ConsoleLineMax bytes, when it is passed on as a line of its own),
// and queues whole prefixed lines; one writer goroutine per output writes
// them. Writes go out in chunks that end at a line end and are at most
// pipeAtomic bytes where the lines allow, so each line reaches a pipe in
// one atomic write even while hostctl's own log shares stderr.
//
// A program must never block because hostctl's stdout is slow (a pipe
// nobody reads, a stalled terminal): the reader never waits for the
// writer. Once ConsoleQueueMax bytes wait for the output, further lines
// are dropped and counted (Dropped), and one marker line records the gap
// when there is room again. Rotation, max_total and keep_free do not
// apply: whoever reads hostctl's output keeps it.

// Console values of stdout_log and stderr_log.
const (
	// ConsoleSame is "-": the output of the same name as the stream
	// (stdout_log to hostctl's stdout, stderr_log to its stderr).
	ConsoleSame = "-"
	// ConsoleStdout and ConsoleStderr name one of hostctl's outputs
	// explicitly, for a stream that goes to the other one.
	ConsoleStdout = "/dev/stdout"
	ConsoleStderr = "/dev/stderr"
)

// ConsoleTarget returns "stdout" or "stderr" when path (the value of
// stdout_log or stderr_log, for stream "stdout" or "stderr") sends the
// stream to one of hostctl's own outputs, "" when path is a file.
func ConsoleTarget(stream, path string) string {
	switch path {
	case ConsoleSame:
		return stream
	case ConsoleStdout:
		return "stdout"
	case ConsoleStderr:
		return "stderr"
	}
	return ""
}

// IsConsole reports whether a stdout_log or stderr_log value sends the
// stream to hostctl's own stdout or stderr rather than to a file.
func IsConsole(path string) bool { return ConsoleTarget("stdout", path) != "" }

const (
	// ConsoleQueueMax is how many bytes of lines wait for a slow output
	// before lines are dropped.
	ConsoleQueueMax = 1 << 20
	// ConsoleLineMax is the longest line held whole; a longer one is
	// passed on in pieces of this size, each ended with a newline.
	ConsoleLineMax = 16 << 10
	// consoleTailMax is how many bytes of recent lines each stream keeps
	// for Tail, LastLine and Follow (hostctl tail, alerts).
	consoleTailMax = 64 << 10
	// pipeAtomic is PIPE_BUF on Linux: a write of at most this many
	// bytes to a pipe is never interleaved with another writer's.
	pipeAtomic = 4096
	// consoleDrainTimeout is how long Close waits for the programs'
	// last lines and for the output to take them.
	consoleDrainTimeout = time.Second
)

// console is one of hostctl's outputs, shared by the streams that write
// into it.
type console struct {
	out   io.Writer
	width atomic.Int32 // the widest process name so far, for aligned prefixes

	// mu guards the fields below it.
	mu      sync.Mutex
	queue   []byte // whole lines, prefixed, waiting for out
	writing bool   // the writer holds a batch taken from queue
	closed  bool
	wake    chan struct{} // cap 1
	idle    chan struct{} // closed and replaced when queue empties and no write is under way

	done chan struct{} // closed when the writer goroutine returns
}

func newConsole(out io.Writer) *console {
	c := &console{out: out, wake: make(chan struct{}, 1), idle: make(chan struct{}), done: make(chan struct{})}
	go c.writeLoop()
	return c
}

// put queues lines (whole, prefixed) unless that would pass
// ConsoleQueueMax. It never waits for the output.
func (c *console) put(lines []byte) bool {
	c.mu.Lock()
	if c.closed || len(c.queue)+len(lines) > ConsoleQueueMax {
		c.mu.Unlock()
		return false
	}
	c.queue = append(c.queue, lines...)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true
}

func (c *console) writeLoop() {
	defer close(c.done)
	var batch []byte
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.writing = false
			close(c.idle)
			c.idle = make(chan struct{})
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return
			}
			<-c.wake
			continue
		}
		batch, c.queue = c.queue, batch[:0]
		c.writing = true
		c.mu.Unlock()
		writeLines(c.out, batch)
	}
}

// writeLines writes b (whole lines) in chunks that end at a line end and
// are at most pipeAtomic bytes long where the lines allow. A failed write
// drops the rest of the batch: there is nowhere else to say so.
func writeLines(w io.Writer, b []byte) {
	for len(b) > 0 {
		n := len(b)
		if n > pipeAtomic {
			if i := bytes.LastIndexByte(b[:pipeAtomic], '\n'); i >= 0 {
				n = i + 1
			} else if i := bytes.IndexByte(b, '\n'); i >= 0 {
				n = i + 1 // one line longer than pipeAtomic
			}
		}
		if _, err := w.Write(b[:n]); err != nil {
			return
		}
		b = b[n:]
	}
}

// flush waits up to timeout for the queue to be written.
func (c *console) flush(timeout time.Duration) bool {
	c.mu.Lock()
	if len(c.queue) == 0 && !c.writing {
		c.mu.Unlock()
		return true
	}
	idle := c.idle
	c.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-idle:
		return true
	case <-t.C:
		return false
	}
}

// close stops the writer once the queue is written, waiting at most
// timeout: an output nobody reads must not keep hostctl from exiting.
func (c *console) close(timeout time.Duration) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C: // the writer stays blocked in a write nobody takes
	}
}

// consoles are the Manager's two outputs, created on first use.
type consoles struct {
	mu             sync.Mutex // guards the fields below
	stdout, stderr *console
	outs           [2]io.Writer // hostctl's stdout and stderr; tests change them
}

func (cs *consoles) get(target string) *console {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.outs[0] == nil {
		cs.outs = [2]io.Writer{os.Stdout, os.Stderr}
	}
	if target == "stderr" {
		if cs.stderr == nil {
			cs.stderr = newConsole(cs.outs[1])
		}
		return cs.stderr
	}
	if cs.stdout == nil {
		cs.stdout = newConsole(cs.outs[0])
	}
	return cs.stdout
}

func (cs *consoles) close() {
	cs.mu.Lock()
	all := []*console{cs.stdout, cs.stderr}
	cs.mu.Unlock()
	for _, c := range all {
		if c != nil {
			c.close(consoleDrainTimeout)
		}
	}
}

// ConsoleStream is one program's stdout or stderr going to one of
// hostctl's outputs. It implements the same interface as Stream for the
// supervisor (WriteEnd, Path, Dropped, Tail, LastLine, Follow, Close).
type ConsoleStream struct {
	c      *console
	name   string // process name, the prefix
	path   string // the configured value: "-", "/dev/stdout" or "/dev/stderr"
	out    string // "stdout" or "stderr"
	r      *os.File
	wEnd   *os.File
	closed chan struct{} // closed by Close
	done   chan struct{} // closed when the reader returns

	dropped      atomic.Uint64
	droppedLines atomic.Uint64
	tap          atomic.Pointer[func([]byte)] // see SetTap

	// mu guards tail, seq and notify.
	mu     sync.Mutex
	tail   []byte // recent lines, unprefixed, at most consoleTailMax bytes of whole lines
	seq    uint64 // lines seen so far
	notify chan struct{}

	closeOnce sync.Once
}

// OpenConsole starts a stream whose lines go to hostctl's stdout
// (target "stdout") or stderr ("stderr"), each prefixed with name. path
// is the configured value, reported by Path.
func (m *Manager) OpenConsole(name, target, path string) (*ConsoleStream, error) {
	if target != "stdout" && target != "stderr" {
		return nil, fmt.Errorf("opening console stream for %s: unknown output %q", name, target)
	}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("opening console stream for %s: log manager closed", name)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("opening console stream for %s: %w", name, err)
	}
	c := m.consoles.get(target)
	for {
		old := c.width.Load()
		if int32(len(name)) <= old || c.width.CompareAndSwap(old, int32(len(name))) {
			break
		}
	}
	s := &ConsoleStream{c: c, name: name, path: path, out: target, r: r, wEnd: w, closed: make(chan struct{}), done: make(chan struct{}), notify: make(chan struct{})}
	go s.readLoop()
	return s, nil
}

// WriteEnd returns the write end of the stream's pipe, to hand to a child
// as stdout (and stderr). The stream keeps it open until Close.
func (s *ConsoleStream) WriteEnd() *os.File { return s.wEnd }

// Path returns the configured value: "-", "/dev/stdout" or "/dev/stderr".
func (s *ConsoleStream) Path() string { return s.path }

// Dropped returns the bytes of output dropped because hostctl's output
// did not keep up.
func (s *ConsoleStream) Dropped() uint64 { return s.dropped.Load() }

func (s *ConsoleStream) readLoop() {
	defer close(s.done)
	buf := make([]byte, 64<<10)
	var part []byte // the line being read, without its newline
	var out []byte  // prefixed lines of one read
	for {
		n, err := s.r.Read(buf)
		b := buf[:n]
		out = out[:0]
		var lines [][]byte
		for len(b) > 0 {
			i := bytes.IndexByte(b, '\n')
			room := ConsoleLineMax - len(part)
			if i < 0 && len(b) < room {
				part = append(part, b...)
				break
			}
			if i < 0 || i > room {
				// A line longer than ConsoleLineMax goes out in pieces,
				// whether or not its end is in this read.
				part = append(part, b[:room]...)
				b = b[room:]
			} else {
				part = append(part, b[:i]...)
				b = b[i+1:]
			}
			out = s.appendLine(out, part)
			lines = append(lines, append([]byte(nil), part...))
			part = part[:0]
		}
		if err != nil && len(part) > 0 {
			// The last line of a program that ended without a newline.
			out = s.appendLine(out, part)
			lines = append(lines, append([]byte(nil), part...))
			part = part[:0]
		}
		if len(out) > 0 {
			s.emit(out, lines)
		}
		if err != nil {
			return
		}
	}
}

// appendLine appends "NAME | line\n" to out, NAME padded to the widest
// process name on this output.
func (s *ConsoleStream) appendLine(out, line []byte) []byte {
	out = append(out, s.name...)
	for i := len(s.name); i < int(s.c.width.Load()); i++ {
		out = append(out, ' ')
	}
	out = append(out, " | "...)
	out = append(out, line...)
	return append(out, '\n')
}

// emit queues the prefixed lines of one read, or drops and counts them;
// after a drop, a marker line goes first once there is room.
func (s *ConsoleStream) emit(out []byte, lines [][]byte) {
	if d := s.dropped.Load(); d > 0 && s.droppedLines.Load() > 0 {
		marker := s.appendLine(nil, fmt.Appendf(nil, "[hostctl: dropped %d lines (%d bytes in all so far) of output: hostctl's %s is slow]", s.droppedLines.Load(), d, s.out))
		if s.c.put(marker) {
			s.droppedLines.Store(0)
		}
	}
	if !s.c.put(out) {
		s.dropped.Add(uint64(len(out)))
		s.droppedLines.Add(uint64(len(lines)))
	}
	s.mu.Lock()
	for _, l := range lines {
		s.tail = append(s.tail, l...)
		s.tail = append(s.tail, '\n')
		s.seq++
	}
	if over := len(s.tail) - consoleTailMax; over > 0 {
		i := bytes.IndexByte(s.tail[over:], '\n')
		if i < 0 {
			s.tail = s.tail[:0]
		} else {
			s.tail = append(s.tail[:0], s.tail[over+i+1:]...)
		}
	}
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
	if tap := s.tap.Load(); tap != nil {
		var b []byte
		for _, l := range lines {
			b = append(append(b, l...), '\n')
		}
		(*tap)(b)
	}
}

// Tail returns the last n lines the program wrote (of those kept in
// memory, at most 64 KiB).
func (s *ConsoleStream) Tail(n int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _, _ := lastLinesAt(bytes.NewReader(s.tail), int64(len(s.tail)), n)
	return append([]byte(nil), b...), nil
}

// SetTap makes the reader call fn with each batch of lines it has read
// (unprefixed, each ending in a newline), as Stream.SetTap does; nil
// stops it. fn must not block and must not keep p.
func (s *ConsoleStream) SetTap(fn func(p []byte)) {
	if fn == nil {
		s.tap.Store(nil)
		return
	}
	s.tap.Store(&fn)
}

// LastLine returns the last complete line the program wrote, "" when none.
func (s *ConsoleStream) LastLine() string {
	b, _ := s.Tail(1)
	return strings.TrimSuffix(string(b), "\n")
}

// Follow calls fn with the last lastLines lines, then with each new line
// until ctx is done, the stream is closed or fn returns an error.
func (s *ConsoleStream) Follow(ctx context.Context, lastLines int, fn func(line []byte) error) error {
	s.mu.Lock()
	first, _, _ := lastLinesAt(bytes.NewReader(s.tail), int64(len(s.tail)), lastLines)
	first = append([]byte(nil), first...)
	seq, notify := s.seq, s.notify
	s.mu.Unlock()
	if err := emitLines(first, fn); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closed:
			return nil
		case <-notify:
		}
		s.mu.Lock()
		newLines := int(s.seq - seq)
		b, _, _ := lastLinesAt(bytes.NewReader(s.tail), int64(len(s.tail)), newLines)
		b = append([]byte(nil), b...)
		seq, notify = s.seq, s.notify
		s.mu.Unlock()
		if err := emitLines(b, fn); err != nil {
			return err
		}
	}
}

// Close stops reading once the program's last lines are read (waiting up
// to a second for processes that still hold the pipe) and waits, up to a
// second, for them to reach the output.
func (s *ConsoleStream) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		err = s.wEnd.Close()
		t := time.NewTimer(consoleDrainTimeout)
		defer t.Stop()
		select {
		case <-s.done:
		case <-t.C:
			// A process still holds the pipe: stop reading it.
			s.r.Close()
			<-s.done
		}
		s.r.Close()
		s.c.flush(consoleDrainTimeout)
	})
	if errors.Is(err, os.ErrClosed) {
		err = nil
	}
	return err
}
