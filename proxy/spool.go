package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/sys/unix"
)

// Request bodies are read from the client before the upstream is dialed,
// so that a slow client never holds one of gunicorn's sync workers. Held
// whole in RAM (10 MB each by default, with no limit on how many), many
// parallel uploads could take all of hostctl's memory, and the OOM killer
// then takes every program with it. So, as nginx does with
// client_body_buffer_size and client_body_temp_path, the first
// request_buffer_memory bytes of a body stay in RAM and the rest is
// spooled to an unlinked file in a directory only hostctl's user can
// enter; and, which nginx does not, the bytes held in RAM and on disk by
// all requests together are capped: past the disk cap a request gets 503
// with Retry-After. The caps are process-wide (Caddy is too), so they hold
// across reloads and sites.

// BodyBuffer is how a handler buffers request bodies (JSON "buffer" of
// hostctl_upstream and hostctl_request_buffer).
type BodyBuffer struct {
	// Limit is how many bytes of a body are read before the upstream is
	// dialed (request_buffer); what follows is streamed. Must be > 0.
	Limit int64 `json:"limit"`
	// Memory is how many of them are kept in RAM
	// (request_buffer_memory); the rest goes to a file in Dir. The bytes
	// all requests hold in RAM and in files are capped process-wide
	// (request_buffer_total_memory and _total_disk, which Proxy.Apply
	// sets): a request that finds no RAM left spools all of its body, one
	// that finds no disk left gets 503.
	Memory int64 `json:"memory"`
	// Dir is where bodies are spooled, as unlinked files: a directory
	// that hostctl's user owns and no one else may enter. Created (0700)
	// if missing. Default <DefaultStateDir>/proxy-bodies.
	Dir string `json:"dir,omitempty"`
}

// spoolDirName is the spool dir's name under the state dir.
const spoolDirName = "proxy-bodies"

// provision checks the values, and creates or checks Dir.
func (c *BodyBuffer) provision() error {
	if c.Limit <= 0 || c.Memory < 0 {
		return fmt.Errorf("buffer: limit must be positive, memory not negative")
	}
	if c.Dir == "" {
		c.Dir = filepath.Join(DefaultStateDir, spoolDirName)
	}
	if err := checkSpoolDir(c.Dir); err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	return nil
}

// checkSpoolDir creates dir (0700) if it is missing and checks that it is
// a directory (not a link) of hostctl's user that no one else may enter:
// others must neither read bodies nor swap the directory.
func checkSpoolDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("spool dir: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("spool dir: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("spool dir %s is not a directory", dir)
	case !ok || int(st.Uid) != os.Geteuid():
		return fmt.Errorf("spool dir %s is not owned by hostctl's user (uid %d): remove it and let hostctl create it", dir, os.Geteuid())
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("spool dir %s has mode %#o: others may enter it (chmod 700 %s)", dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// bodyBudget counts the bytes request bodies hold, in RAM and on disk,
// against their caps. Reservations are taken before the bytes are read,
// so the counts never exceed the caps.
type bodyBudget struct {
	mu                  sync.Mutex // guards every field
	memLimit, diskLimit int64
	mem, disk           int64
	memPeak, diskPeak   int64
}

// bodies is the process's budget; Proxy.Apply sets its caps from the
// config (until then, the defaults).
var bodies = bodyBudget{memLimit: defaultBufferTotalMemory, diskLimit: defaultBufferTotalDisk}

func (b *bodyBudget) setLimits(mem, disk int64) {
	b.mu.Lock()
	b.memLimit, b.diskLimit = mem, disk
	b.mu.Unlock()
}

// take reserves n bytes of RAM (disk false) or disk, if the cap allows.
func (b *bodyBudget) take(n int64, disk bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if disk {
		if b.disk+n > b.diskLimit {
			return false
		}
		b.disk += n
		b.diskPeak = max(b.diskPeak, b.disk)
		return true
	}
	if b.mem+n > b.memLimit {
		return false
	}
	b.mem += n
	b.memPeak = max(b.memPeak, b.mem)
	return true
}

// diskFree is what the disk cap has left now.
func (b *bodyBudget) diskFree() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.diskLimit - b.disk
}

func (b *bodyBudget) give(mem, disk int64) {
	b.mu.Lock()
	b.mem -= mem
	b.disk -= disk
	b.mu.Unlock()
}

// usage returns the bytes held now and the most ever held at once.
func (b *bodyBudget) usage() (mem, disk, memPeak, diskPeak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mem, b.disk, b.memPeak, b.diskPeak
}

// memClasses are the sizes of the RAM buffers kept for reuse; a body part
// of another size gets a buffer of its own. A request holds (and is
// counted for) a whole buffer.
var memClasses = [...]int64{4 << 10, 16 << 10, 64 << 10}

var memPools [len(memClasses)]sync.Pool

// memBuffer returns a buffer of at least n bytes and the class it came
// from (-1: not pooled).
func memBuffer(n int64) ([]byte, int) {
	for i, c := range memClasses {
		if n <= c {
			if b, ok := memPools[i].Get().(*[]byte); ok {
				return *b, i
			}
			return make([]byte, c), i
		}
	}
	return make([]byte, n), -1
}

// spoolChunk is how much disk a request reserves at a time while it
// reads a body of unknown length (or one whose length it cannot take in
// one go): what a slow client holds is about what it has sent.
const spoolChunk = 256 << 10

// spooledBody is the buffered part of a request body: mem, then file.
type spooledBody struct {
	mem      []byte   // the bytes in RAM
	memBuf   []byte   // the buffer mem is in, returned to its pool
	memClass int      // its pool; -1: none
	file     *os.File // the rest, unlinked; nil if none
	fileLen  int64
	complete bool      // the body ended within Limit
	rest     io.Reader // the client's body after Limit; nil if complete
	memRes   int64     // reserved in bodies
	diskRes  int64
}

// size is the number of bytes buffered.
func (b *spooledBody) size() int64 { return int64(len(b.mem)) + b.fileLen }

// reader returns a new reader of the buffered bytes, from the start (one
// per attempt: a retry sends them again).
func (b *spooledBody) reader() io.Reader {
	if b.file == nil {
		return bytes.NewReader(b.mem)
	}
	return io.MultiReader(bytes.NewReader(b.mem), io.NewSectionReader(b.file, 0, b.fileLen))
}

// writeTo writes the buffered bytes to w, the file's through w's
// ReadFrom (sendfile, to a socket) when w has one.
func (b *spooledBody) writeTo(w io.Writer) error {
	if _, err := w.Write(b.mem); err != nil {
		return err
	}
	if b.file == nil {
		return nil
	}
	if _, err := b.file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err := io.Copy(w, io.LimitReader(b.file, b.fileLen))
	return err
}

// release gives back the buffer, the file and the reservations.
func (b *spooledBody) release() {
	if b.memClass >= 0 && b.memBuf != nil {
		buf := b.memBuf
		memPools[b.memClass].Put(&buf)
	}
	b.memBuf, b.mem = nil, nil
	if b.file != nil {
		b.file.Close()
		b.file = nil
	}
	bodies.give(b.memRes, b.diskRes)
	b.memRes, b.diskRes = 0, 0
}

// errBuffersFull is the cause of a 503 when the disk cap is reached.
var errBuffersFull = errors.New("request body buffers are full (request_buffer_total_disk): try again later")

// retryAfter is the Retry-After of that 503, in seconds: about how long
// the uploads that hold the buffers take to go upstream.
const retryAfter = "5"

// refuseFull answers a request that found the buffers full: 503 with
// Retry-After. The rest of its body, up to limit bytes, is read and
// dropped first (it costs no memory): a client still sending its body
// when the connection closes would get a reset instead of the answer. A
// client that waits for "100 Continue" and was not sent one (nothing was
// read: started is false) is answered before it sends.
func refuseFull(w http.ResponseWriter, r *http.Request, limit int64, started bool) error {
	if started || !strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		io.CopyN(io.Discard, r.Body, limit)
	}
	w.Header().Set("Retry-After", retryAfter)
	return caddyhttp.Error(http.StatusServiceUnavailable, errBuffersFull)
}

// spool reads r's body up to Limit bytes, Memory of them into RAM and the
// rest into an unlinked file in Dir, within the process's caps. It
// returns nil for a request without a body. Errors are caddyhttp errors:
// 413 for a body over max_body_size (the request_body handler limits
// r.Body), 503 with Retry-After when the caps leave no room (w gets the
// header), 400 when the client breaks off, 500 for a spool file that
// cannot be written.
func (c *BodyBuffer) spool(w http.ResponseWriter, r *http.Request) (*spooledBody, error) {
	if r.Body == nil || r.Body == http.NoBody || (r.ContentLength == 0 && len(r.TransferEncoding) == 0) {
		return nil, nil
	}
	want := int64(-1) // bytes to buffer, if the length is known
	if r.ContentLength >= 0 {
		want = min(r.ContentLength, c.Limit)
	}
	if want > c.Memory && want-c.Memory > bodies.diskFree() {
		// It cannot fit now: say so before reading it.
		return nil, refuseFull(w, r, c.Limit, false)
	}
	b := &spooledBody{memClass: -1}
	ok := false
	defer func() {
		if !ok {
			b.release()
		}
	}()
	memWant := c.Memory
	if want >= 0 {
		memWant = min(memWant, want)
	}
	if memWant > 0 {
		buf, class := memBuffer(memWant)
		if bodies.take(int64(cap(buf)), false) {
			b.memBuf, b.memClass, b.memRes = buf, class, int64(cap(buf))
			n, err := readUpTo(r.Body, buf[:memWant])
			b.mem = buf[:n]
			if err == io.EOF {
				b.complete = true
				ok = true
				return b, nil
			}
			if err != nil {
				return nil, bodyReadError(err)
			}
		} else if class >= 0 {
			memPools[class].Put(&buf) // no RAM left: all of it to disk
		}
	}
	total := int64(len(b.mem))
	for total < c.Limit {
		n := min(int64(spoolChunk), c.Limit-total)
		if want >= 0 {
			n = min(n, want-total)
			if n == 0 {
				break // all of the known length is read; Limit decides about EOF
			}
		}
		if !bodies.take(n, true) {
			return nil, refuseFull(w, r, c.Limit, total > 0)
		}
		b.diskRes += n
		if b.file == nil {
			f, err := openSpoolFile(c.Dir)
			if err != nil {
				return nil, caddyhttp.Error(http.StatusInternalServerError, err)
			}
			b.file = f
		}
		written, err := copySpool(b.file, r.Body, n)
		b.fileLen += written
		total += written
		if err == io.EOF {
			b.complete = true
			break
		}
		if _, ok := errors.AsType[*spoolWriteError](err); ok {
			return nil, caddyhttp.Error(http.StatusInternalServerError, err)
		}
		if err != nil {
			return nil, bodyReadError(err)
		}
	}
	if unused := b.diskRes - b.fileLen; unused > 0 {
		bodies.give(0, unused)
		b.diskRes -= unused
	}
	if !b.complete {
		if want >= 0 && total == r.ContentLength && total < c.Limit {
			// Read to its length, short of Limit: Caddy would have seen
			// EOF there.
			b.complete = true
		} else {
			b.rest = r.Body
		}
	}
	if b.complete && total == 0 {
		return nil, nil // an empty chunked body
	}
	ok = true
	return b, nil
}

// readUpTo reads into p until it is full or the reader fails; io.EOF
// means the body ended (n bytes in p), nil that p is full.
func readUpTo(r io.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := r.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

var spoolCopyPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// spoolWriteError is a failed write to a spool file (a full disk): the
// proxy's failure, not the client's.
type spoolWriteError struct{ err error }

func (e *spoolWriteError) Error() string { return "writing the spool file: " + e.err.Error() }
func (e *spoolWriteError) Unwrap() error { return e.err }

// copySpool copies up to n bytes of src to f; io.EOF means src ended, a
// *spoolWriteError that f could not be written.
func copySpool(f *os.File, src io.Reader, n int64) (int64, error) {
	bufp := spoolCopyPool.Get().(*[]byte)
	defer spoolCopyPool.Put(bufp)
	buf := *bufp
	var written int64
	for written < n {
		m, rerr := src.Read(buf[:min(int64(len(buf)), n-written)])
		if m > 0 {
			if _, err := f.Write(buf[:m]); err != nil {
				return written, &spoolWriteError{err}
			}
			written += int64(m)
		}
		if rerr != nil {
			return written, rerr
		}
	}
	return written, nil
}

// bodyReadError is the handler error for a body that could not be read: 413
// past max_body_size, else 400 (the client broke off or broke the
// framing; Caddy's reverse_proxy would let the upstream fail on the
// short body).
func bodyReadError(err error) error {
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return caddyhttp.Error(http.StatusRequestEntityTooLarge, mbe)
	}
	return caddyhttp.Error(http.StatusBadRequest, err)
}

// openSpoolFile opens a new file in dir that has no name: O_TMPFILE, or
// where the file system lacks it, a file created with O_EXCL (mode 0600)
// and unlinked at once. Either way it is gone when closed.
func openSpoolFile(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, "(request body)")), nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
		return nil, fmt.Errorf("spool file in %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "body-")
	if err != nil {
		return nil, fmt.Errorf("spool file: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool file: %w", err)
	}
	return f, nil
}

// spoolable reports whether r's body is buffered at all: not for
// requests that stream by nature (CONNECT, protocol upgrades, and
// "Incremental" ones, which Caddy's reverse_proxy streams too).
func spoolable(r *http.Request) bool {
	return r.Method != http.MethodConnect && len(r.Header["Upgrade"]) == 0 && !caddyhttp.IsIncremental(r.Header)
}

func init() {
	caddy.RegisterModule(RequestBuffer{})
}

// RequestBuffer buffers request bodies as BodyBuffer says and passes the
// request on (http.handlers.hostctl_request_buffer). It goes before
// Caddy's reverse_proxy, whose own request_buffers would hold them in RAM
// (hostctl_upstream buffers by itself).
type RequestBuffer struct {
	Buffer BodyBuffer `json:"buffer"`
}

// CaddyModule returns the Caddy module information.
func (RequestBuffer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.hostctl_request_buffer",
		New: func() caddy.Module { return new(RequestBuffer) },
	}
}

// Provision checks the buffer settings and the spool dir.
func (h *RequestBuffer) Provision(caddy.Context) error { return h.Buffer.provision() }

// ServeHTTP buffers r's body, then calls next with the buffered body in
// its place.
func (h *RequestBuffer) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return h.Buffer.serveSpooled(w, r, func() error { return next.ServeHTTP(w, r) })
}

// serveSpooled buffers r's body if it is spoolable, puts the buffered
// body in its place (with its length when it is all there, as Caddy's
// request_buffers does) and calls next; the buffers are released when
// next returns.
func (c *BodyBuffer) serveSpooled(w http.ResponseWriter, r *http.Request, next func() error) error {
	if !spoolable(r) {
		return next()
	}
	b, err := c.spool(w, r)
	if err != nil {
		return err
	}
	if b == nil {
		return next()
	}
	spooled := &releasingReader{r: b.reader(), b: b}
	defer spooled.release()
	var body io.Reader = spooled
	if b.rest != nil {
		body = io.MultiReader(body, b.rest)
	} else {
		r.ContentLength = b.size()
	}
	r.Body = readCloser{Reader: body, Closer: r.Body}
	return next()
}

// releasingReader reads a spooled body until it is released. net/http's
// Transport may still read a request body after RoundTrip has returned
// (the upstream answered before reading it all): such a late read must
// not see a RAM buffer that another request has been given, nor a spool
// file that is gone. Reads take the lock (they copy from RAM or the page
// cache, never wait on the network); release takes it too.
type releasingReader struct {
	mu       sync.Mutex // guards every field
	r        io.Reader
	b        *spooledBody
	released bool
}

var errBodyReleased = errors.New("request body read after its request ended")

func (s *releasingReader) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return 0, errBodyReleased
	}
	return s.r.Read(p)
}

func (s *releasingReader) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.released = true
	s.b.release()
}

// readCloser reads from Reader and closes Closer (the client's body).
type readCloser struct {
	io.Reader
	io.Closer
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*RequestBuffer)(nil)
	_ caddyhttp.MiddlewareHandler = (*RequestBuffer)(nil)
)
