package logfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

const (
	// MaxLine is the longest line written with timestamps on; longer
	// lines are split into several timestamped lines, nothing is lost.
	MaxLine = 64 << 10

	ringInitial = 64 << 10 // first ring buffer size of a stream
	ringMax     = 4 << 20  // the ring never grows past this
	readMax     = 1 << 20  // largest single read from the pipe
	writeMax    = 1 << 20  // largest single write to the file
	readScratch = 256 << 10

	tsLayout = "2006-01-02T15:04:05.000Z07:00"

	reasonStalled = "disk writer stalled"
)

// ErrClosed is returned by Write on a closed Stream.
var ErrClosed = errors.New("logfile: stream closed")

// fileWriter is what a stream's disk writer writes to: a
// *lumberjack.Logger, or a fake in tests.
type fileWriter interface {
	Write(p []byte) (int, error)
	Rotate() error
	Close() error
}

// Stream captures one output stream (a program's stdout or stderr, or an
// in-process log) into one rotated log file.
//
// Two goroutines run per stream. The reader reads the pipe into a
// bounded ring buffer; the writer drains the ring into the file, rotates
// it, and where output was lost writes one marker line: "[hostctl:
// dropped N bytes of output: REASON]". When the ring is full the reader
// stops reading the pipe, so the program blocks in write(2) as on any
// full pipe, for as long as the writer keeps finishing writes. Once the
// writer has been stuck in one write for the Manager's hold timeout
// ([HoldTimeout]), the reader reads and drops (counting the bytes) until
// the writer moves again. A full or failing disk does not stall the
// writer: its writes fail fast and it drops what it cannot write.
type Stream struct {
	m          *Manager
	path       string
	rot        Rotation
	timestamps bool
	onLogFS    bool // the file is on the filesystem of Config.Dir (keep_free applies)
	log        *zap.Logger

	rFd      int           // the pipe's read end, non-blocking, outside the Go poller (see newPipe)
	readable chan struct{} // cap 1: the Manager's waiter saw the pipe readable
	stopRead chan struct{} // closed when Close gives up waiting for EOF
	stopping atomic.Bool   // likewise, for a reader that is not waiting
	wEnd     *os.File
	fw       fileWriter

	// feedMu serializes feeders (the pipe reader and Write callers) and
	// guards the fields up to ring. Lock order: feedMu, then ring.mu.
	feedMu      sync.Mutex
	feedClosed  bool
	atLineStart bool   // timestamps: the next byte starts a line
	lineLen     int    // timestamps: bytes in the current line so far
	scratch     []byte // for timestamped and dropped reads; allocated on first use
	tsBuf       []byte
	rdN         int
	rdErr       error
	rdFull      bool   // the ring was full and the writer is not stalled: wait for room
	held        []byte // timestamps: read and stamped, not yet in the ring (in tsBuf)
	fullSince   int64  // unix nanos when the reader found the ring full; 0 when it has room (reader only)
	ring        *ring

	wake       chan struct{}   // cap 1: data or a state change for the writer
	batchTimer *time.Timer     // the writer's coalescing timer (writer goroutine only)
	reopenReq  chan chan error // cap 1: Reopen asks the writer to reopen the file
	readerDone chan struct{}
	feedDone   chan struct{} // closed by Close once nothing more will be fed
	writerDone chan struct{}

	// The mill (mill.go): millWake (cap 1) wakes it; millReq counts the
	// passes asked for, millDone the latest of them a finished pass
	// served; millExit is closed when it exits.
	millWake chan struct{}
	millReq  atomic.Uint64
	millDone atomic.Uint64
	millExit chan struct{}

	// Owned by the writer goroutine.
	fwOpen        bool      // fw has a file open; else its next write opens one by name (see ensureWritable)
	unsafe        string    // why the dir is not safe to write in (the drop reason); "" while it is
	unsafeRetry   time.Time // while unsafe: when to check the dir again
	size          int64     // bytes in the current file
	pending       uint64
	pendingReason string
	lastNL        bool
	tailLen       int // bytes written since the last newline (when !lastNL)
	lastRotate    time.Time
	rotateRetryAt time.Time
	errWarned     time.Time
	errCount      int

	// busy is when the writer last started or finished a write (unix
	// nanos): the reader drops output only when the ring is full and both
	// busy and fullSince are older than the hold timeout.
	busy    atomic.Int64
	written atomic.Uint64
	tap     atomic.Pointer[func([]byte)] // see SetTap
	// catchReq counts CatchUp calls; caughtUp is the latest of them the
	// reader has answered by finding the pipe empty after it was made.
	catchReq  atomic.Uint64
	caughtUp  atomic.Uint64
	dropped   atomic.Uint64
	fileBytes atomic.Int64 // size of the current file, for the manager

	// partial is the end of the line being written (no newline yet), at
	// most lastLineMax bytes. Owned by the writer goroutine.
	partial []byte

	// mu guards cur, notify, notifyTaken, finished and lastLine; a leaf
	// lock (feeders take it after feedMu when they drop).
	mu          sync.Mutex
	cur         *gen
	notify      chan struct{} // closed and replaced when the file grows or rotates
	notifyTaken bool
	finished    bool
	lastLine    []byte // the last complete line written, see LastLine

	closeOnce sync.Once
	closeErr  error
}

// WriteEnd returns the write end of the stream's pipe, to hand to a child
// as stdout (and stderr). The Stream keeps it open until Close, so the
// pipe does not reach EOF between restarts of the program. The caller
// must not close it.
func (s *Stream) WriteEnd() *os.File { return s.wEnd }

// Path returns the log file's path.
func (s *Stream) Path() string { return s.path }

// Dropped returns the bytes of output dropped since the stream opened.
func (s *Stream) Dropped() uint64 { return s.dropped.Load() }

// SetTap makes the disk writer call fn with every piece of output it has
// just written to the file (timestamps included, markers not), in order;
// nil stops it. fn runs on the writer's goroutine: it must not block and
// must not keep p, so it copies what it needs and hands it on (alert log
// rules queue it, and drop it when their queue is full). Output that was
// dropped never reaches fn.
func (s *Stream) SetTap(fn func(p []byte)) {
	if fn == nil {
		s.tap.Store(nil)
		return
	}
	s.tap.Store(&fn)
}

// Written returns the bytes written to the log file since the stream
// opened, markers and timestamps included.
func (s *Stream) Written() uint64 { return s.written.Load() }

// Write queues p for the log file, like output read from the pipe, but
// it is never held back: it never blocks on the disk (hostctl's own logs,
// written from its disk writers too, must not wait for them) and never
// fails while the stream is open. If the buffer is full, p is dropped and
// counted. It returns ErrClosed after Close.
func (s *Stream) Write(p []byte) (int, error) {
	s.feedMu.Lock()
	defer s.feedMu.Unlock()
	if s.feedClosed {
		return 0, ErrClosed
	}
	n := len(p)
	for len(p) > 0 {
		chunk := p[:min(len(p), MaxLine)]
		s.feedLocked(chunk)
		p = p[len(chunk):]
	}
	s.signal()
	return n, nil
}

func (s *Stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// feedLocked queues p (at most readScratch bytes), adding timestamps if
// enabled, or drops it. s.feedMu is held.
func (s *Stream) feedLocked(p []byte) {
	out := s.stampLocked(p)
	if !s.ring.put(out) {
		s.dropFeedLocked(len(out))
		s.atLineStart = true // the writer puts a marker line here
	}
}

// stampLocked returns p with timestamps added if enabled (in s.tsBuf,
// valid until the next call), else p. s.feedMu is held.
func (s *Stream) stampLocked(p []byte) []byte {
	out := p
	if s.timestamps {
		var tsArr [40]byte
		ts := append(time.Now().AppendFormat(tsArr[:0], tsLayout), ' ')
		out = s.tsBuf[:0]
		for len(p) > 0 {
			if s.atLineStart {
				out = append(out, ts...)
				s.atLineStart, s.lineLen = false, 0
			}
			room := MaxLine - s.lineLen
			seg := p[:min(len(p), room)]
			if i := bytes.IndexByte(seg, '\n'); i >= 0 {
				out = append(out, seg[:i+1]...)
				p = p[i+1:]
				s.atLineStart = true
				continue
			}
			out = append(out, seg...)
			p = p[len(seg):]
			s.lineLen += len(seg)
			if s.lineLen >= MaxLine {
				out = append(out, '\n')
				s.atLineStart = true
			}
		}
		s.tsBuf = out
	}
	return out
}

// heldLocked puts what the reader holds (timestamped output that did not
// fit the ring) into the ring, and reports whether some is still held:
// then the reader waits for room, or drops it if the writer stalled.
// s.feedMu is held.
func (s *Stream) heldLocked() bool {
	if len(s.held) == 0 {
		return false
	}
	n := s.ring.putSome(s.held)
	s.held = s.held[n:]
	if n > 0 {
		s.signal()
	}
	if len(s.held) == 0 {
		s.held, s.fullSince = nil, 0
		return false
	}
	if !s.writerStalled() {
		return true
	}
	s.dropFeedLocked(len(s.held))
	s.held = nil
	s.atLineStart = true // the writer puts a marker line here
	return false
}

// dropFeedLocked counts n bytes a feeder dropped because the ring is
// full and wakes anyone waiting on the stream's progress. s.feedMu is held.
func (s *Stream) dropFeedLocked(n int) {
	s.ring.drop(n, reasonStalled)
	s.dropped.Add(uint64(n))
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
}

// allocScratch allocates the buffer for reads that do not go straight
// into the ring, on first use, so quiet streams stay small.
func (s *Stream) allocScratch() {
	if s.scratch == nil {
		s.scratch = make([]byte, readScratch)
	}
}

// Reading in batches: a read that finds less than pauseBelow bytes in
// the pipe means the program writes slowly compared with hostctl, maybe
// a line per write(2); waiting readPause before the next read lets the
// pipe collect a batch, where reading at once would cost a wake-up (of
// hostctl and in the program's write) per line. A program's output
// reaches the file at most readPause later. Faster output is read
// without pausing, and a quiet pipe is waited for by the Manager's
// waiter, which wakes the reader at the first byte.
const (
	pauseBelow = 64 << 10
	readPause  = time.Millisecond
)

// readLoop is the pipe reader goroutine. While the pipe is empty it
// waits on s.readable, parked: a quiet stream holds no OS thread.
func (s *Stream) readLoop() {
	defer close(s.readerDone)
	for !s.stopping.Load() {
		seq := s.catchReq.Load()
		if !s.readOnce(uintptr(s.rFd)) {
			if seq > s.caughtUp.Load() {
				// The pipe was empty after CatchUp call seq was made.
				s.caughtUp.Store(seq)
				s.mu.Lock()
				s.notifyLocked()
				s.mu.Unlock()
			}
			if err := s.m.waiter.arm(s.rFd); err != nil {
				s.log.Warn("waiting for program output failed", zap.Error(err))
				return
			}
			select {
			case <-s.readable:
			case <-s.stopRead:
				return // Close stopped waiting for EOF
			}
			continue
		}
		if s.rdFull {
			s.rdFull = false
			s.waitRoom()
			continue
		}
		if s.rdErr != nil || s.rdN == 0 {
			if s.rdErr != nil {
				s.log.Warn("reading program output failed", zap.Error(s.rdErr))
			}
			return // EOF: every write end is closed
		}
		if s.rdN < pauseBelow {
			time.Sleep(readPause)
		}
	}
}

// readOnce does one non-blocking read from the pipe, straight into the
// ring unless timestamps are on or the ring is full. It reports false to
// wait for the pipe to become readable.
func (s *Stream) readOnce(fd uintptr) bool {
	s.feedMu.Lock()
	defer s.feedMu.Unlock()
	for {
		var n int
		var err error
		if s.timestamps {
			if s.heldLocked() {
				s.rdFull = true // leave the bytes in the pipe; readLoop waits
				return true
			}
			s.allocScratch()
			n, err = syscall.Read(int(fd), s.scratch)
			if n > 0 {
				s.held = s.stampLocked(s.scratch[:n])
				s.rdFull = s.heldLocked()
			}
		} else if buf := s.ring.reserve(64<<10, readMax); buf != nil {
			s.fullSince = 0
			n, err = syscall.Read(int(fd), buf)
			if n > 0 {
				s.ring.commit(n)
			}
		} else if !s.writerStalled() {
			s.rdFull = true // leave the bytes in the pipe; readLoop waits
			return true
		} else {
			s.allocScratch()
			n, err = syscall.Read(int(fd), s.scratch)
			if n > 0 {
				s.dropFeedLocked(n)
			}
		}
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		if n > 0 {
			s.signal()
		}
		s.rdN, s.rdErr = max(n, 0), err
		return true
	}
}

// writerStalled reports whether the ring has been full, and the disk
// writer in one write (or one rotation), for longer than the hold
// timeout. Reader goroutine; the ring is full.
func (s *Stream) writerStalled() bool {
	now := time.Now().UnixNano()
	if s.fullSince == 0 {
		s.fullSince = now
	}
	return now >= s.stallAt()
}

// stallAt is when the writer counts as stalled if it neither finishes a
// write nor frees room before (unix nanos). Reader goroutine.
func (s *Stream) stallAt() int64 {
	return max(s.busy.Load(), s.fullSince) + int64(s.m.holdTimeout)
}

// waitRoom waits until the ring has room for the reader, or the writer
// stalls, or the writer is gone. Meanwhile the pipe fills and then holds
// the program back.
func (s *Stream) waitRoom() {
	if s.m.onHold != nil {
		s.m.onHold()
	}
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		s.mu.Lock()
		ch := s.notify
		s.notifyTaken = true
		s.mu.Unlock()
		if s.ring.hasRoom() {
			return
		}
		left := time.Duration(s.stallAt() - time.Now().UnixNano())
		if left <= 0 {
			return // stalled: readOnce drops
		}
		if t == nil {
			t = time.NewTimer(left)
		} else {
			t.Reset(left)
		}
		select {
		case <-ch:
		case <-t.C:
		case <-s.writerDone:
			return
		}
	}
}

// writeLoop is the disk writer goroutine.
func (s *Stream) writeLoop() {
	defer s.finish()
	for {
		select {
		case ack := <-s.reopenReq:
			ack <- s.reopen()
		default:
		}
		p, g := s.ring.next(writeMax)
		if g != nil {
			s.addPending(g.n, g.reason)
			s.mu.Lock()
			s.notifyLocked()
			s.mu.Unlock()
			continue
		}
		if len(p) > 0 {
			s.busy.Store(time.Now().UnixNano())
			s.writeData(p)
			s.busy.Store(time.Now().UnixNano())
			s.ring.release(len(p))
			s.mu.Lock()
			s.notifyLocked() // for Sync, which waits for the release
			s.mu.Unlock()
			continue
		}
		if s.pending > 0 && !s.paused() {
			s.writeMarker()
		}
		select {
		case <-s.wake:
			s.coalesce()
		case ack := <-s.reopenReq:
			ack <- s.reopen()
		case <-s.feedDone:
			if s.ring.empty() {
				return
			}
		}
	}
}

// Batching of disk writes: after a wake-up with less than coalesceBytes
// queued, the writer waits up to coalesceDelay for more (less if that much
// arrives sooner). A program writing line
// by line would otherwise cost a wake-up and a write(2) per line; with it,
// a line reaches the file (and tail -f) at most coalesceDelay later. The
// ring grows meanwhile, so nothing is dropped for it.
const (
	coalesceBytes = 64 << 10
	coalesceDelay = 2 * time.Millisecond
)

func (s *Stream) coalesce() {
	if s.ring.buffered() >= coalesceBytes {
		return
	}
	if s.batchTimer == nil {
		s.batchTimer = time.NewTimer(coalesceDelay)
	} else {
		s.batchTimer.Reset(coalesceDelay)
	}
	for {
		select {
		case <-s.batchTimer.C:
			return
		case <-s.wake:
			if s.ring.buffered() < coalesceBytes {
				continue // not enough yet: keep waiting
			}
		case <-s.feedDone:
		}
		s.batchTimer.Stop()
		return
	}
}

// finish runs when the writer exits: it writes a pending marker, closes
// the file and wakes followers.
func (s *Stream) finish() {
	if s.pending > 0 && !s.paused() {
		s.writeMarker()
	}
	if err := s.fw.Close(); err != nil {
		s.log.Warn("closing log file", zap.Error(err))
	}
	s.mu.Lock()
	cur := s.cur
	cur.sealed = true
	s.finished = true
	s.notifyLocked()
	s.mu.Unlock()
	s.release(cur)
	close(s.writerDone)
}

func (s *Stream) paused() bool { return s.onLogFS && s.m.paused.Load() }

func (s *Stream) addPending(n uint64, reason string) {
	if s.pending == 0 {
		s.pendingReason = reason
	}
	s.pending += n
}

// dropW counts n bytes the writer could not write.
func (s *Stream) dropW(n int, reason string) {
	if n <= 0 {
		return
	}
	s.dropped.Add(uint64(n))
	s.addPending(uint64(n), reason)
}

// writeData writes p, rotating first whenever p would take the file past
// MaxSize. Rotation happens after the last whole line that fits. If the
// file ends inside a line, that line is finished first, past MaxSize if
// need be but by at most MaxLine bytes, so that every file ends at a line
// boundary; a longer line, or a file holding no newline before the limit,
// is cut there.
func (s *Stream) writeData(p []byte) {
	for len(p) > 0 {
		if s.unsafe != "" && s.ensureWritable() != nil {
			s.dropW(len(p), s.unsafe)
			return
		}
		room := s.rot.MaxSize - s.size
		if s.rot.MaxSize <= 0 || int64(len(p)) <= room || time.Now().Before(s.rotateRetryAt) {
			s.writeFile(p)
			return
		}
		if room > 0 {
			if i := bytes.LastIndexByte(p[:room], '\n'); i >= 0 {
				s.writeFile(p[:i+1])
				p = p[i+1:]
				s.rotate()
				continue
			}
		}
		if s.size > 0 && !s.lastNL && s.tailLen < MaxLine {
			seg := p[:min(len(p), MaxLine-s.tailLen)]
			if i := bytes.IndexByte(seg, '\n'); i >= 0 {
				seg = seg[:i+1]
			}
			s.writeFile(seg)
			p = p[len(seg):]
			if len(p) == 0 || (!s.lastNL && s.tailLen < MaxLine) {
				continue // the line goes on in the next write
			}
		} else if room > 0 && s.size == 0 {
			s.writeFile(p[:room])
			p = p[room:]
		}
		s.rotate()
	}
}

// writeFile writes p to the current file, or drops it while keep_free
// pauses writing or the file fails.
func (s *Stream) writeFile(p []byte) {
	if s.paused() {
		s.dropW(len(p), s.m.pauseReason())
		return
	}
	if err := s.ensureWritable(); err != nil {
		if err == errUnsafe {
			s.dropW(len(p), s.unsafe)
			return
		}
		s.writeFailed(err)
		s.dropW(len(p), errReason(err))
		return
	}
	if s.pending > 0 && !s.writeMarker() {
		s.dropW(len(p), s.pendingReason)
		return
	}
	n, err := s.fw.Write(p)
	s.account(p[:max(n, 0)])
	if tap := s.tap.Load(); tap != nil && n > 0 {
		(*tap)(p[:n])
	}
	if err != nil {
		// Warn before counting: whoever sees the count sees the warning.
		s.writeFailed(err)
		s.dropW(len(p)-n, errReason(err))
	}
}

// writeMarker writes the line that marks dropped output and reports
// whether it made it to the file.
func (s *Stream) writeMarker() bool {
	if s.ensureWritable() != nil {
		return false
	}
	var body []byte
	if s.timestamps {
		body = append(time.Now().AppendFormat(body, tsLayout), ' ')
	}
	body = append(body, "[hostctl: dropped "...)
	body = strconv.AppendUint(body, s.pending, 10)
	body = append(body, " bytes of output: "...)
	body = append(body, s.pendingReason...)
	body = append(body, "]\n"...)
	if s.rot.MaxSize > 0 && s.size > 0 && s.size+int64(len(body))+1 > s.rot.MaxSize && !time.Now().Before(s.rotateRetryAt) {
		s.rotate()
		if s.ensureWritable() != nil {
			return false
		}
	}
	b := body
	if !s.lastNL && s.size > 0 {
		b = append([]byte{'\n'}, body...)
	}
	n, err := s.fw.Write(b)
	s.account(b[:max(n, 0)])
	if err != nil {
		s.writeFailed(err)
		return false
	}
	s.pending, s.pendingReason = 0, ""
	return true
}

func errReason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOSPC:
			return "ENOSPC: no space left on device"
		case syscall.EIO:
			return "EIO: input/output error"
		case syscall.EDQUOT:
			return "EDQUOT: disk quota exceeded"
		}
	}
	return "write error: " + err.Error()
}

// writeFailed logs a failed write, at most once a minute per stream.
func (s *Stream) writeFailed(err error) {
	s.errCount++
	if now := time.Now(); now.Sub(s.errWarned) >= time.Minute {
		s.log.Warn("writing log file failed; dropping output until it works again",
			zap.Error(err), zap.Int("failures", s.errCount))
		s.errWarned, s.errCount = now, 0
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		s.m.kickSoon()
	}
}

// account records p as written to the current file and wakes followers.
func (s *Stream) account(p []byte) {
	if len(p) == 0 {
		return
	}
	n := int64(len(p))
	s.size += n
	s.lastNL = p[len(p)-1] == '\n'
	if i := bytes.LastIndexByte(p, '\n'); i >= 0 {
		s.tailLen = len(p) - i - 1
	} else {
		s.tailLen = min(s.tailLen+len(p), MaxLine)
	}
	s.written.Add(uint64(n))
	s.fileBytes.Store(s.size)
	s.mu.Lock()
	s.noteLastLineLocked(p)
	s.cur.size = s.size
	s.notifyLocked()
	s.mu.Unlock()
	s.m.consume(s, n)
}

// lastLineMax bounds the line LastLine remembers; a longer line keeps its
// last lastLineMax bytes.
const lastLineMax = 256

// noteLastLineLocked remembers the last complete line of what has been
// written, p being the latest write. It costs one backward scan per write
// (a batch of many lines), not per line: from the end of p to its last
// newline, then at most lastLineMax bytes further back, and a copy of at
// most lastLineMax bytes. Writer goroutine; s.mu is held.
func (s *Stream) noteLastLineLocked(p []byte) {
	i := bytes.LastIndexByte(p, '\n')
	if i < 0 {
		s.partial = appendTail(s.partial, p)
		return
	}
	from := max(0, i-lastLineMax)
	if j := bytes.LastIndexByte(p[from:i], '\n'); j >= 0 {
		s.lastLine = append(s.lastLine[:0], p[from+j+1:i]...)
	} else if from > 0 {
		s.lastLine = append(s.lastLine[:0], p[from:i]...)
	} else {
		s.lastLine = appendTail(append(s.lastLine[:0], s.partial...), p[:i])
	}
	s.partial = appendTail(s.partial[:0], p[i+1:])
}

// appendTail appends p to b and keeps the last lastLineMax bytes.
func appendTail(b, p []byte) []byte {
	if len(p) >= lastLineMax {
		return append(b[:0], p[len(p)-lastLineMax:]...)
	}
	if over := len(b) + len(p) - lastLineMax; over > 0 {
		b = append(b[:0], b[over:]...)
	}
	return append(b, p...)
}

// LastLine returns the last complete line written to the log file, without
// its newline and (with timestamps on) its timestamp; "" when none has been
// written since the stream opened. A line longer than 256 bytes comes back
// as its last 256 bytes. Lines still on their way to the file (the writer
// batches for a few milliseconds) are not seen yet.
func (s *Stream) LastLine() string {
	s.mu.Lock()
	line := string(s.lastLine)
	s.mu.Unlock()
	if s.timestamps && len(line) > len("2006-01-02T15:04:05") && line[4] == '-' && line[10] == 'T' {
		if _, rest, ok := strings.Cut(line, " "); ok {
			line = rest
		}
	}
	return strings.TrimSuffix(line, "\r")
}

// notifyLocked wakes followers waiting for the file to change. s.mu is held.
func (s *Stream) notifyLocked() {
	if s.notifyTaken {
		close(s.notify)
		s.notify = make(chan struct{})
		s.notifyTaken = false
	}
}

// rotate moves the current file aside through lumberjack (which names
// the backup) and starts a new one; the stream's mill then compresses
// and prunes the backups.
func (s *Stream) rotate() {
	// lumberjack names a backup after the rotation time in milliseconds
	// and would overwrite a backup made in the same millisecond.
	if next := s.lastRotate.Truncate(time.Millisecond).Add(time.Millisecond); time.Now().Before(next) {
		time.Sleep(time.Until(next))
	}
	// lumberjack renames and creates files by name: only in a dir that
	// is still safe.
	if err := s.checkFiles(); err != nil {
		s.lastRotate = time.Now()
		s.becomeUnsafe(err)
		return
	}
	err := s.fw.Rotate()
	s.lastRotate = time.Now()
	if err != nil {
		s.log.Warn("rotating log file failed; retrying in a second", zap.Error(err))
		s.rotateRetryAt = s.lastRotate.Add(time.Second)
		s.fwOpen = false // lumberjack closed it; the next write checks, then opens
	} else {
		s.requestMill()
	}
	s.openGen()
	s.m.kick()
}

// reopen closes the file and opens whatever is now at the path, for an
// outside logrotate that moved the file away, once checkFiles finds the
// dir and the files safe (else the log stops being written, as for a
// rotation).
func (s *Stream) reopen() error {
	err := s.fw.Close()
	s.fwOpen = false
	if cerr := s.checkFiles(); cerr != nil {
		s.becomeUnsafe(cerr)
		return fmt.Errorf("reopening %s: %w", s.path, dirError(cerr))
	}
	if s.unsafe != "" {
		s.log.Warn("log dir is safe again; writing this log again")
		s.unsafe = ""
	}
	s.openGen() // the next write opens it for writing, after checkFiles again
	if err != nil {
		return fmt.Errorf("reopening %s: %w", s.path, err)
	}
	return nil
}

func (s *Stream) close() error {
	s.wEnd.Close()
	t := time.NewTimer(s.m.drainTimeout)
	select {
	case <-s.readerDone:
		t.Stop()
	case <-t.C:
		// Someone else (a leftover grandchild) still holds a write end.
		s.stopping.Store(true)
		close(s.stopRead)
		<-s.readerDone
	}
	s.m.waiter.remove(s.rFd)
	syscall.Close(s.rFd)
	s.feedMu.Lock()
	s.feedClosed = true
	s.feedMu.Unlock()
	close(s.feedDone)
	defer s.m.remove(s)
	t = time.NewTimer(s.m.writerTimeout)
	defer t.Stop()
	select {
	case <-s.writerDone:
	case <-t.C:
		return fmt.Errorf("closing log %s: the disk writer did not finish within %s; leaving it behind", s.path, s.m.writerTimeout)
	}
	select {
	case <-s.millExit:
		return nil
	case <-t.C:
		return fmt.Errorf("closing log %s: compressing a rotated file did not stop within %s; leaving it behind", s.path, s.m.writerTimeout)
	}
}

// Close stops reading the pipe, writes out what was already read and
// closes the files. Stop the program first: if another process (a
// leftover grandchild) still holds the pipe's write end, Close stops
// reading after a drain timeout of one second instead of waiting for EOF,
// and that process gets EPIPE (SIGPIPE) on its next write. If the disk
// writer is stuck, Close returns an error after 5 seconds and leaves the
// writer to finish on its own. A compression of a rotated file under way
// stops (the file stays uncompressed until the log is next opened).
func (s *Stream) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

// Sync waits until everything queued before the call is written (or
// dropped), for at most a second. It lets a Stream serve as a zap
// WriteSyncer.
func (s *Stream) Sync() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.waitWritten(ctx, s.queued()); err != nil {
		return fmt.Errorf("syncing log %s: still writing after 1s", s.path)
	}
	return nil
}

// CatchUp waits until what the program has written to the pipe before the
// call is in the log file (or dropped): the reader reads the pipe until it
// finds it empty, then the writer writes out the ring up to that point.
// After it, LastLine and Tail see the program's output up to the call.
// Call it when a program has exited, to read why it failed: its last
// write is in the pipe by then, but the reader (which reads in batches)
// and the writer (which coalesces writes) may not have got to it. It
// returns ctx's error if ctx ends first; while a live program keeps
// writing faster than the disk, that can be any time.
func (s *Stream) CatchUp(ctx context.Context) error {
	req := s.catchReq.Add(1)
	select {
	case s.readable <- struct{}{}: // wake a reader parked on an empty pipe
	default:
	}
waitRead:
	for s.caughtUp.Load() < req {
		s.mu.Lock()
		ch := s.notify
		s.notifyTaken = true
		s.mu.Unlock()
		if s.caughtUp.Load() >= req {
			break
		}
		select {
		case <-ch:
		case <-s.readerDone: // EOF: the reader has read everything
			break waitRead
		case <-ctx.Done():
			return fmt.Errorf("catching up with %s: %w", s.path, ctx.Err())
		}
	}
	if err := s.waitWritten(ctx, s.queued()); err != nil {
		return fmt.Errorf("catching up with %s: %w", s.path, err)
	}
	return nil
}

// queued returns the ring position after everything fed so far.
func (s *Stream) queued() uint64 {
	s.feedMu.Lock()
	s.ring.mu.Lock()
	target := s.ring.w
	s.ring.mu.Unlock()
	s.feedMu.Unlock()
	return target
}

// waitWritten waits until the writer has taken the ring up to target and
// written it (or dropped it), or has finished, or ctx ends.
func (s *Stream) waitWritten(ctx context.Context, target uint64) error {
	for {
		s.mu.Lock()
		ch := s.notify
		s.notifyTaken = true
		finished := s.finished
		s.mu.Unlock()
		s.ring.mu.Lock()
		done := s.ring.r >= target
		s.ring.mu.Unlock()
		if done || finished {
			return nil
		}
		select {
		case <-ch:
		case <-s.writerDone:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
