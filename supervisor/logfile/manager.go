// Package logfile captures the output of supervised programs (and
// hostctl's own logs) into rotated, size-capped log files without ever
// blocking the writer, and reads those logs back (tail and follow).
//
// A [Manager] owns every [Stream] in hostctl. Each Stream owns a pipe
// whose write end a child gets as stdout/stderr; hostctl reads it into a
// bounded buffer and a separate goroutine writes it to disk through
// lumberjack, which names rotated files; a third (the mill, mill.go)
// compresses and prunes them, never following a link. A program
// writing faster than the disk is held back, as a full pipe would hold
// it; if the disk stalls (no write finishes for [HoldTimeout]), is full or
// fails, output is dropped and counted rather than blocking the program,
// and one marker line records the gap. The
// Manager enforces two global limits: max_total (all logs together, the
// oldest rotated files deleted first) and keep_free (free space on the log
// filesystem, like journald's SystemKeepFree).
package logfile

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"gopkg.in/natefinch/lumberjack.v2"
)

// Rotation is the rotation policy of one stream, with per-program
// overrides of the [log] defaults already merged in.
type Rotation struct {
	// MaxSize is the size in bytes at which the file rotates; 0 never
	// rotates by size.
	MaxSize int64
	// MaxBackups is how many rotated files to keep; 0 keeps all.
	MaxBackups int
	// MaxAge removes rotated files older than this; 0 keeps them.
	MaxAge time.Duration
	// Compress gzips rotated files.
	Compress bool
}

// Manager owns all streams: it enforces max_total across them and
// keep_free on the filesystem of the log directory, checking cheaply
// every CheckInterval (a statfs; a directory listing only when a limit
// may be crossed), on every rotation, and when a budget of bytes written
// since the last check runs out.
type Manager struct {
	cfg      Config
	keepFree KeepFree
	log      *zap.Logger
	dirDev   uint64

	// Set before the first Open; tests change them.
	interval      time.Duration
	drainTimeout  time.Duration
	writerTimeout time.Duration
	holdTimeout   time.Duration // see HoldTimeout
	onHold        func()        // if set, called when a reader starts holding a program back
	millHook      func(*Stream) // if set, called by a stream's mill at the start of each pass
	ringMax       int
	newWriter     func(*lumberjack.Logger) fileWriter

	mu      sync.Mutex // guards streams and closed; taken before Stream.mu, never with ring.mu
	streams map[*Stream]struct{}
	closed  bool

	checkMu     sync.Mutex // serializes checks; guards overTotal and lastFull
	overTotal   bool       // active files alone exceed max_total (warned once)
	lastFull    time.Time  // last full check
	paused      atomic.Bool
	pauseMsg    atomic.Pointer[string]
	totalBudget atomic.Int64 // bytes left under max_total, as of the last check minus writes since
	freeBudget  atomic.Int64 // bytes left above keep_free, likewise
	lastSoon    atomic.Int64 // unix nanos of the last kickSoon

	waiter *waiter // waits for the streams' pipes

	consoles consoles // hostctl's stdout and stderr, for OpenConsole

	kickCh   chan struct{}
	stop     chan struct{}
	loopDone chan struct{}
}

// HoldTimeout is the longest a program's write to its stdout/stderr waits
// for hostctl's disk writer. While the disk keeps up, a program that
// writes faster than the disk is held back the way a full pipe holds back
// its writer, and nothing is lost; once the disk writer has been stuck in
// one write for HoldTimeout, output is dropped (counted, and marked in the
// log) until the writer moves again.
const HoldTimeout = time.Second

// CheckInterval is how often the Manager checks free space and max_total.
const CheckInterval = 10 * time.Second

// fullCheckInterval is how often the periodic check lists the log
// directories even when no limit is near, so max_age applies to logs that
// no longer rotate.
const fullCheckInterval = time.Hour

// NewManager validates cfg, creates cfg.Dir (mode 0755) if missing, checks
// that it is safe for root to write in (CheckDir) and starts the periodic
// check. Close stops it.
func NewManager(cfg Config, logger *zap.Logger) (*Manager, error) {
	if errs := cfg.Validate("log"); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	kf, _ := ParseKeepFree(cfg.KeepFree)
	if err := mkdirSafe(cfg.Dir); err != nil {
		return nil, err
	}
	dev, err := deviceOf(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	wt, err := newWaiter()
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:           cfg,
		keepFree:      kf,
		log:           logger,
		dirDev:        dev,
		interval:      CheckInterval,
		drainTimeout:  time.Second,
		writerTimeout: 5 * time.Second,
		holdTimeout:   HoldTimeout,
		ringMax:       ringMax,
		newWriter:     func(l *lumberjack.Logger) fileWriter { return l },
		streams:       make(map[*Stream]struct{}),
		waiter:        wt,
		kickCh:        make(chan struct{}, 1),
		stop:          make(chan struct{}),
		loopDone:      make(chan struct{}),
	}
	m.totalBudget.Store(math.MaxInt64)
	m.freeBudget.Store(math.MaxInt64)
	m.Check()
	go m.loop()
	return m, nil
}

func (m *Manager) loop() {
	defer close(m.loopDone)
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.periodic()
		case <-m.kickCh:
			m.Check()
		}
	}
}

// kick asks the check loop to run a full check soon.
func (m *Manager) kick() {
	select {
	case m.kickCh <- struct{}{}:
	default:
	}
}

// kickSoon is kick at most once a second, for writers failing with ENOSPC.
func (m *Manager) kickSoon() {
	now := time.Now().UnixNano()
	last := m.lastSoon.Load()
	if now-last < int64(time.Second) || !m.lastSoon.CompareAndSwap(last, now) {
		return
	}
	m.kick()
}

// consume charges n bytes written by s against the budgets and kicks a
// check when one runs out.
func (m *Manager) consume(s *Stream, n int64) {
	if m.cfg.MaxTotal > 0 {
		if v := m.totalBudget.Add(-n); v < 0 && v+n >= 0 {
			m.kick()
		}
	}
	if s.onLogFS && !m.keepFree.Off() {
		if v := m.freeBudget.Add(-n); v < 0 && v+n >= 0 {
			m.kick()
		}
	}
}

// KeepFreePaused reports whether keep_free has paused writing on the log
// filesystem, and if so why, as the marker written when writing resumes
// says it ("keep_free: less than 5% free on the filesystem of /var/log/hostctl").
// It reflects the last check (every CheckInterval, on rotations, and when
// the bytes written since the last check could have crossed the limit);
// it is cheap enough to poll.
func (m *Manager) KeepFreePaused() (paused bool, reason string) {
	if !m.paused.Load() {
		return false, ""
	}
	return true, m.pauseReason()
}

func (m *Manager) pauseReason() string {
	if p := m.pauseMsg.Load(); p != nil {
		return *p
	}
	return "keep_free"
}

// periodic is the cheap check: a statfs, and a full check only if a
// limit may be crossed.
func (m *Manager) periodic() {
	m.checkMu.Lock()
	stale := time.Since(m.lastFull) > fullCheckInterval
	m.checkMu.Unlock()
	if stale || (m.cfg.MaxTotal > 0 && m.totalBudget.Load() < 0) {
		m.Check()
		return
	}
	if m.keepFree.Off() {
		return
	}
	fsi, err := statFS(m.cfg.Dir)
	if err != nil {
		m.log.Warn("checking free space of the log dir", zap.String("dir", m.cfg.Dir), zap.Error(err))
		return
	}
	left := fsi.avail - m.keepFree.Threshold(fsi.size)
	if left < 0 || m.paused.Load() {
		m.Check()
		return
	}
	m.freeBudget.Store(left)
}

// Open starts capturing into the log file at path (absolute; its
// directory is created if missing) with the given rotation policy. The
// directory must be safe for root to write in (CheckDir), and the file
// and its rotated files must be regular files if they exist. With
// timestamps, each line is prefixed with the time it was read (RFC 3339,
// milliseconds) and lines longer than MaxLine are split; without, bytes
// pass through unchanged.
func (m *Manager) Open(path string, rot Rotation, timestamps bool) (*Stream, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("opening log %q: path is not absolute", path)
	}
	path = filepath.Clean(path)
	if rot.MaxSize < 0 || rot.MaxBackups < 0 || rot.MaxAge < 0 {
		return nil, fmt.Errorf("opening log %s: negative rotation limit %+v", path, rot)
	}
	if err := mkdirSafe(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("opening log %s: %w", path, err)
	}
	dev, err := deviceOf(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("opening log %s: %w", path, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("opening log %s: log manager closed", path)
	}
	for o := range m.streams {
		if o.path == path {
			return nil, fmt.Errorf("opening log %s: already open", path)
		}
	}
	r, w, err := newPipe()
	if err != nil {
		return nil, fmt.Errorf("opening log %s: %w", path, err)
	}
	readable := make(chan struct{}, 1)
	if err := m.waiter.add(r, readable); err != nil {
		syscall.Close(r)
		w.Close()
		return nil, fmt.Errorf("opening log %s: %w", path, err)
	}
	// lumberjack only writes and renames: its mill would compress and
	// prune by name, following links, whenever it gets to it; the
	// stream's own mill does that (mill.go).
	lj := &lumberjack.Logger{
		Filename: path,
		MaxSize:  math.MaxInt32, // megabytes: never; Stream rotates by bytes itself
	}
	s := &Stream{
		m:           m,
		path:        path,
		rot:         rot,
		timestamps:  timestamps,
		onLogFS:     dev == m.dirDev,
		log:         m.log.With(zap.String("log", path)),
		rFd:         r,
		readable:    readable,
		stopRead:    make(chan struct{}),
		wEnd:        w,
		fw:          m.newWriter(lj),
		atLineStart: true,
		ring:        newRing(ringInitial, m.ringMax),
		wake:        make(chan struct{}, 1),
		reopenReq:   make(chan chan error, 1),
		readerDone:  make(chan struct{}),
		feedDone:    make(chan struct{}),
		writerDone:  make(chan struct{}),
		millWake:    make(chan struct{}, 1),
		millExit:    make(chan struct{}),
		notify:      make(chan struct{}),
		lastNL:      true,
	}
	// The writer opens the file for writing at its first write, after
	// checking the files again (ensureWritable): a stalled disk must not
	// hold up Open.
	err = s.checkFiles()
	if err == nil {
		err = s.openGen()
	}
	if err != nil {
		m.waiter.remove(r)
		syscall.Close(r)
		w.Close()
		return nil, fmt.Errorf("opening log %s: %w", path, dirError(err))
	}
	if s.size > 0 {
		var last [1]byte
		if _, err := s.cur.f.ReadAt(last[:], s.size-1); err == nil {
			s.lastNL = last[0] == '\n'
		}
	}
	m.streams[s] = struct{}{}
	go s.readLoop()
	go s.writeLoop()
	go s.millLoop()
	s.requestMill()
	m.kick()
	return s, nil
}

func (m *Manager) remove(s *Stream) {
	m.mu.Lock()
	delete(m.streams, s)
	m.mu.Unlock()
}

func (m *Manager) snapshot() []*Stream {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Stream, 0, len(m.streams))
	for s := range m.streams {
		out = append(out, s)
	}
	return out
}

// Reopen makes every stream close its file and open the file now at its
// path, for an outside logrotate (hostctl calls it on SIGUSR1). It waits
// up to 5 seconds for the writers.
func (m *Manager) Reopen() error {
	type req struct {
		s   *Stream
		ack chan error
	}
	var reqs []req
	for _, s := range m.snapshot() {
		ack := make(chan error, 1)
		select {
		case s.reopenReq <- ack:
			reqs = append(reqs, req{s, ack})
		default: // a reopen is already queued
		}
	}
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	var errs []error
	for _, r := range reqs {
		select {
		case err := <-r.ack:
			if err != nil {
				errs = append(errs, err)
			}
		case <-r.s.writerDone:
		case <-deadline.C:
			errs = append(errs, fmt.Errorf("reopening %s: the disk writer did not respond within 5s", r.s.path))
		}
	}
	return errors.Join(errs...)
}

// Close closes every stream and stops the periodic check.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	close(m.stop)
	<-m.loopDone
	streams := m.snapshot()
	errs := make([]error, len(streams))
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Go(func() { errs[i] = s.Close() })
	}
	wg.Wait()
	m.consoles.close()
	if err := m.waiter.close(); err != nil {
		errs = append(errs, fmt.Errorf("closing the pipe waiter: %w", err))
	}
	return errors.Join(errs...)
}

// backupFile is a rotated file found by a check.
type backupFile struct {
	backup
	s *Stream
}

// listBackups lists the rotated files of every stream, oldest first, in
// the dirs that are still safe (CheckDir).
func listBackups(streams []*Stream) []backupFile {
	byDir := make(map[string][]*Stream)
	for _, s := range streams {
		dir := filepath.Dir(s.path)
		byDir[dir] = append(byDir[dir], s)
	}
	var out []backupFile
	for dir, ss := range byDir {
		if CheckDir(dir) != nil {
			continue // nothing is deleted by name where others could swap names
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			for _, s := range ss {
				ts, ok := parseBackup(filepath.Base(s.path), e.Name())
				if !ok {
					continue
				}
				fi, err := e.Info()
				if err != nil {
					break // deleted meanwhile
				}
				out = append(out, backupFile{backup{filepath.Join(dir, e.Name()), ts, fi.Size()}, s})
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b backupFile) int { return a.ts.Compare(b.ts) })
	return out
}

// Check enforces max_age, max_total and keep_free now: it deletes the
// oldest rotated files as needed and pauses or resumes writing on the log
// filesystem. It runs on its own every CheckInterval and on rotations.
func (m *Manager) Check() {
	m.checkMu.Lock()
	defer m.checkMu.Unlock()
	m.lastFull = time.Now()
	streams := m.snapshot()
	backups := listBackups(streams)
	removed := make([]bool, len(backups))
	remove := func(i int, why string, level func(string, ...zap.Field)) bool {
		if removed[i] {
			return false
		}
		removed[i] = true
		err := removeBackup(backups[i].path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("deleting rotated log", zap.String("file", backups[i].path), zap.Error(err))
			return false
		}
		level("deleted rotated log", zap.String("file", backups[i].path), zap.Int64("bytes", backups[i].size), zap.String("reason", why))
		return true
	}

	// max_age: the mill applies it at rotations, this to logs that no
	// longer rotate too.
	now := time.Now()
	for i, b := range backups {
		if age := b.s.rot.MaxAge; age > 0 && now.Sub(b.ts) > age {
			remove(i, "max_age", m.log.Info)
		}
	}

	// max_total: all active files plus all rotated ones.
	if m.cfg.MaxTotal > 0 {
		var total int64
		for _, s := range streams {
			total += s.fileBytes.Load()
		}
		for i, b := range backups {
			if !removed[i] {
				total += b.size
			}
		}
		for i := 0; i < len(backups) && total > m.cfg.MaxTotal; i++ {
			if remove(i, "max_total", m.log.Info) {
				total -= backups[i].size
			}
		}
		if over := total > m.cfg.MaxTotal; over != m.overTotal {
			m.overTotal = over
			if over {
				m.log.Warn("active log files alone exceed max_total; they are never deleted, rotated files will be",
					zap.Int64("bytes", total), zap.Int64("max_total", m.cfg.MaxTotal))
			}
		}
		m.totalBudget.Store(m.cfg.MaxTotal - total)
	}

	if m.keepFree.Off() {
		return
	}
	fsi, err := statFS(m.cfg.Dir)
	if err != nil {
		m.log.Warn("checking free space of the log dir", zap.String("dir", m.cfg.Dir), zap.Error(err))
		return
	}
	threshold := m.keepFree.Threshold(fsi.size)
	if short := threshold - fsi.avail; short > 0 {
		for i := 0; i < len(backups) && short > 0; i++ {
			if backups[i].s.onLogFS && remove(i, "keep_free", m.log.Warn) {
				short -= backups[i].size
			}
		}
		if fsi, err = statFS(m.cfg.Dir); err != nil {
			return
		}
	}
	if fsi.avail < threshold {
		if !m.paused.Load() {
			msg := fmt.Sprintf("keep_free: less than %s free on the filesystem of %s", m.keepFree, m.cfg.Dir)
			m.pauseMsg.Store(&msg)
			m.paused.Store(true)
			m.log.Warn("log filesystem low on space; dropping log output there until space returns",
				zap.String("dir", m.cfg.Dir), zap.Int64("free", fsi.avail), zap.Int64("keep_free", threshold))
		}
	} else if m.paused.Load() {
		m.paused.Store(false)
		m.log.Info("log filesystem has space again; writing logs", zap.String("dir", m.cfg.Dir), zap.Int64("free", fsi.avail))
		for _, s := range streams {
			s.signal()
		}
	}
	m.freeBudget.Store(fsi.avail - threshold)
}
