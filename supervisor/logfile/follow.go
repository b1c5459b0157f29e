package logfile

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// followMaxLine is the longest piece Follow hands to its callback; a
// longer line (binary output without newlines) arrives in pieces.
const followMaxLine = 256 << 10

// gen is one generation of a stream's file: the file between two
// rotations (or reopens). Readers hold a read-only descriptor on it, so
// they can finish reading a file that was renamed, compressed or deleted
// under them. A sealed generation holds a reference on the next one,
// so a reader that falls behind still finds every later file.
type gen struct {
	f      *os.File // nil if the file could not be opened
	start  int64    // size when the generation began (a reopened file may hold older output)
	size   int64    // bytes in it; guarded by Stream.mu
	sealed bool     // no more writes; guarded by Stream.mu
	next   *gen     // guarded by Stream.mu
	refs   int      // guarded by Stream.mu
}

// openGen starts a new generation on whatever file is at s.path (creating
// it if missing), sealing the current one. Only the writer goroutine (and
// Open, before it starts) calls it. If the file cannot be opened, the new
// generation has no descriptor (readers skip it) and the error is logged
// and returned.
func (s *Stream) openGen() error {
	f, err := os.OpenFile(s.path, os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o640)
	var size int64
	if err != nil {
		s.log.Warn("opening log file for reading", zap.Error(err))
		f = nil
	} else if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	ng := &gen{f: f, start: size, size: size, refs: 1}
	s.mu.Lock()
	old := s.cur
	if old != nil {
		old.sealed = true
		old.next = ng
		ng.refs++
	}
	s.cur = ng
	s.notifyLocked()
	s.mu.Unlock()
	if old != nil {
		s.release(old)
	}
	s.size = size
	s.fileBytes.Store(size)
	return err
}

// acquire returns the current generation, its size and a reference the
// caller must release, or false once the stream is closed.
func (s *Stream) acquire() (*gen, int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.refs == 0 {
		return nil, 0, false
	}
	s.cur.refs++
	return s.cur, s.cur.size, true
}

// emitLines calls fn with each line of b.
func emitLines(b []byte, fn func(line []byte) error) error {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			i = len(b) - 1
		}
		if err := fn(b[:i+1]); err != nil {
			return err
		}
		b = b[i+1:]
	}
	return nil
}

// release drops a reference on g, closing it (and releasing its hold on
// the next generation) when it was the last.
func (s *Stream) release(g *gen) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for g != nil {
		g.refs--
		if g.refs > 0 {
			return
		}
		if g.f != nil {
			g.f.Close()
		}
		g = g.next
	}
}

// Tail returns the last n lines of the log: from the current file and, if
// it holds fewer than n lines, from the newest rotated file (gzip'd or
// not). A last line still being written (no newline yet) counts as a line.
func (s *Stream) Tail(n int) ([]byte, error) {
	g, size, ok := s.acquire()
	if !ok {
		return TailFile(s.path, n)
	}
	defer s.release(g)
	return tailLines(g.f, size, n, s.path)
}

// TailFile returns the last n lines of the log file at path, reading the
// newest rotated file next to it (as lumberjack names them) if the file
// holds fewer than n lines. It needs no Manager.
func TailFile(path string, n int) ([]byte, error) {
	f, err := OpenFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return tailLines(nil, 0, n, path)
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return tailLines(f, fi.Size(), n, path)
}

// OpenFile opens a log file (or a rotated one) to read it, never through
// a symbolic link: hostctl reads logs as root for whoever may use its API,
// and a link in a log dir could point at any file. A link is an error
// (ELOOP), as is anything but a regular file.
func OpenFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = &fs.PathError{Op: "open", Path: path, Err: errors.New("not a regular file")}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// tailLines returns the last n lines of f[0:size], continuing into the
// newest backup of path if f is short.
func tailLines(f *os.File, size int64, n int, path string) ([]byte, error) {
	if n <= 0 {
		return nil, nil
	}
	var data []byte
	have := 0
	if f != nil && size > 0 {
		var err error
		data, have, err = lastLinesAt(f, size, n)
		if err != nil {
			return nil, err
		}
	}
	if have >= n {
		return data, nil
	}
	older, err := newestBackupLines(path, n-have)
	if err != nil {
		return nil, err
	}
	if len(older) > 0 && older[len(older)-1] != '\n' && len(data) > 0 {
		older = append(older, '\n')
	}
	return append(older, data...), nil
}

// lastLinesAt reads f backwards from size and returns its last n lines
// and how many lines that is (fewer than n if the file is short).
func lastLinesAt(f io.ReaderAt, size int64, n int) ([]byte, int, error) {
	const block = 64 << 10
	var chunks [][]byte
	end := size
	found := 0 // newlines that end a line before the last line
	skipLast := true
	for end > 0 {
		start := max(end-block, 0)
		b := make([]byte, end-start)
		if _, err := f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, err
		}
		scan := b
		if skipLast && len(scan) > 0 && scan[len(scan)-1] == '\n' {
			scan = scan[:len(scan)-1] // the newline ending the last line
		}
		skipLast = false
		for i := len(scan) - 1; i >= 0; i-- {
			if scan[i] != '\n' {
				continue
			}
			found++
			if found == n {
				chunks = append(chunks, b[i+1:])
				slices.Reverse(chunks)
				return bytes.Join(chunks, nil), n, nil
			}
		}
		chunks = append(chunks, b)
		end = start
	}
	slices.Reverse(chunks)
	return bytes.Join(chunks, nil), found + 1, nil
}

// backupTimeFormat is lumberjack's timestamp in backup names.
const backupTimeFormat = "2006-01-02T15-04-05.000"

// backup is a rotated file of one log.
type backup struct {
	path string
	ts   time.Time
	size int64
}

// parseBackup reports whether name is a backup of the log file whose base
// name is base (lumberjack: "NAME-TIMESTAMP.EXT", maybe with ".gz").
func parseBackup(base, name string) (time.Time, bool) {
	ext := filepath.Ext(base)
	prefix := base[:len(base)-len(ext)] + "-"
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return time.Time{}, false
	}
	rest = strings.TrimSuffix(rest, ".gz")
	ts, ok := strings.CutSuffix(rest, ext)
	if !ok || len(ts) != len(backupTimeFormat) {
		return time.Time{}, false
	}
	t, err := time.Parse(backupTimeFormat, ts)
	return t, err == nil
}

// newestBackup returns the path of the newest backup of the log at path,
// preferring the uncompressed file while it is being compressed, or "".
func newestBackup(path string) string {
	dir, base := filepath.Split(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	var best string
	var bestTS time.Time
	for _, e := range entries {
		ts, ok := parseBackup(base, e.Name())
		if !ok {
			continue
		}
		plain := !strings.HasSuffix(e.Name(), ".gz")
		if best == "" || ts.After(bestTS) || (ts.Equal(bestTS) && plain) {
			best, bestTS = e.Name(), ts
		}
	}
	if best == "" {
		return ""
	}
	return filepath.Join(dir, best)
}

// newestBackupLines returns the last n lines of the newest backup of path.
func newestBackupLines(path string, n int) ([]byte, error) {
	name := newestBackup(path)
	if name == "" {
		return nil, nil
	}
	f, err := OpenFile(name)
	if errors.Is(err, fs.ErrNotExist) && !strings.HasSuffix(name, ".gz") {
		// Compressed meanwhile.
		name += ".gz"
		f, err = OpenFile(name)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // deleted meanwhile
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !strings.HasSuffix(name, ".gz") {
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		b, _, err := lastLinesAt(f, fi.Size(), n)
		return b, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	return lastLinesStream(zr, n)
}

// lastLinesStream reads r to the end and returns its last n lines,
// keeping only a window of them in memory.
func lastLinesStream(r io.Reader, n int) ([]byte, error) {
	var buf []byte
	chunk := make([]byte, 64<<10)
	limit := 1 << 20
	for {
		k, err := r.Read(chunk)
		buf = append(buf, chunk[:k]...)
		if len(buf) > limit {
			// Drop whole lines from the front once we hold more than n.
			if b, got, _ := lastLinesAt(bytes.NewReader(buf), int64(len(buf)), n); got >= n {
				buf = append(buf[:0], b...)
			}
			limit = max(1<<20, 2*len(buf))
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	b, _, err := lastLinesAt(bytes.NewReader(buf), int64(len(buf)), n)
	return b, err
}

// Follow calls fn with the last lastLines lines of the log, then with
// every new line as it is written, until ctx ends (it returns ctx.Err()),
// fn returns an error (it returns that error) or the stream is closed and
// everything has been delivered (it returns nil). Each line includes its
// newline; a line longer than 256 KiB arrives in pieces; the slice is only
// valid during the call. Across a rotation Follow reads the old file to
// its end and continues with the new one: no gap and no duplicate. It
// waits for a notification from the writer, never by polling.
func (s *Stream) Follow(ctx context.Context, lastLines int, fn func(line []byte) error) error {
	g, size, ok := s.acquire()
	if !ok {
		tail, err := TailFile(s.path, lastLines)
		if err != nil {
			return err
		}
		return emitLines(tail, fn)
	}
	defer func() { s.release(g) }()

	// Start after the last complete line; the partial one is followed.
	var ra io.ReaderAt
	if g.f != nil {
		ra = g.f
	}
	off, err := lastLineStart(ra, size)
	if err != nil {
		return err
	}
	if lastLines > 0 {
		tail, err := tailLines(g.f, off, lastLines, s.path)
		if err != nil {
			return err
		}
		if err := emitLines(tail, fn); err != nil {
			return err
		}
	}

	var carry []byte
	buf := make([]byte, 64<<10)
	emit := func(p []byte) error {
		for len(p) > 0 {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				carry = append(carry, p...)
				for len(carry) >= followMaxLine {
					if err := fn(carry[:followMaxLine]); err != nil {
						return err
					}
					carry = append(carry[:0], carry[followMaxLine:]...)
				}
				return nil
			}
			line := p[:i+1]
			if len(carry) > 0 {
				carry = append(carry, line...)
				line = carry
			}
			if err := fn(line); err != nil {
				return err
			}
			carry = carry[:0]
			p = p[i+1:]
		}
		return nil
	}

	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.mu.Lock()
		ch := s.notify
		s.notifyTaken = true
		size, sealed, next, finished := g.size, g.sealed, g.next, s.finished
		advance := sealed && next != nil && (off >= size || g.f == nil)
		if advance {
			next.refs++
		}
		s.mu.Unlock()

		if advance {
			s.release(g)
			g, off = next, next.start
			continue
		}
		if off < size && g.f != nil {
			k := min(int64(len(buf)), size-off)
			n, err := g.f.ReadAt(buf[:k], off)
			off += int64(n)
			if err := emit(buf[:n]); err != nil {
				return err
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			if n == 0 {
				off = size // truncated under us; skip
			}
			continue
		}
		if sealed && finished {
			if len(carry) > 0 {
				return fn(carry)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// lastLineStart returns the offset just after the last newline in
// f[0:size], or 0.
func lastLineStart(f io.ReaderAt, size int64) (int64, error) {
	if f == nil || size == 0 {
		return 0, nil
	}
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		start := max(end-int64(len(buf)), 0)
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}
