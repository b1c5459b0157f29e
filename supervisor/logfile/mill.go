package logfile

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// The mill compresses and prunes a stream's rotated files (max_backups,
// max_age, compress), which lumberjack would otherwise do by name in a
// goroutine of its own, at any time after a rotation: by then the dir may
// have turned unsafe, and lumberjack follows links as root (it opens,
// truncates and chowns NAME.gz through whatever is there). hostctl's mill
// runs in a goroutine the stream owns, so a slow compression never holds
// up the writer (nor, through it, the program's pipe). Each pass checks
// the dir again (CheckDir) and then acts only through a descriptor of that
// dir: a backup is opened with O_NOFOLLOW and used only if it is a regular
// file with one link; NAME.gz is created with O_EXCL|O_NOFOLLOW and given
// the backup's mode and owner through its descriptor; names are removed
// with unlinkat, which never follows a link. The names stay lumberjack's:
// NAME.gz for backup NAME (parseBackup, hostctl tail).

const gzSuffix = ".gz"

// requestMill asks the stream's mill for a pass over its rotated files:
// after a rotation, and when the stream opens (lumberjack did the same).
func (s *Stream) requestMill() {
	if !s.rot.Compress && s.rot.MaxBackups == 0 && s.rot.MaxAge == 0 {
		return
	}
	s.millReq.Add(1)
	select {
	case s.millWake <- struct{}{}:
	default:
	}
}

// millIdle reports whether every pass requested so far has finished.
func (s *Stream) millIdle() bool { return s.millDone.Load() >= s.millReq.Load() }

// millLoop is the mill goroutine. It exits once the writer has finished;
// a compression under way then stops (its NAME.gz removed, the backup
// kept), so that Close need not wait for it: the pass when the log is
// next opened does it.
func (s *Stream) millLoop() {
	defer close(s.millExit)
	for {
		select {
		case <-s.millWake:
		case <-s.writerDone:
			return
		}
		s.millPass()
	}
}

// errMillStopped ends a compression when the stream has closed.
var errMillStopped = errors.New("log closed")

// stopReader reads r until stop is closed.
type stopReader struct {
	r    io.Reader
	stop <-chan struct{}
}

func (r stopReader) Read(p []byte) (int, error) {
	select {
	case <-r.stop:
		return 0, errMillStopped
	default:
	}
	return r.r.Read(p)
}

// millPass runs one pass and wakes whoever waits for the mill to be idle.
func (s *Stream) millPass() {
	seq := s.millReq.Load()
	if s.m.millHook != nil {
		s.m.millHook(s)
	}
	if err := s.mill(time.Now()); err != nil {
		s.log.Warn("compressing or pruning rotated log files", zap.Error(dirError(err)))
	}
	s.millDone.Store(seq)
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
}

// mill removes the rotated files past max_backups (counting NAME and
// NAME.gz once, as lumberjack does) and older than max_age, and
// compresses the others, if compress is on.
func (s *Stream) mill(now time.Time) error {
	dir, base := filepath.Split(s.path)
	dir = filepath.Clean(dir)
	d, err := openSafeDir(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return err
	}
	type backupName struct {
		name string
		ts   time.Time
	}
	var files []backupName
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if ts, ok := parseBackup(base, e.Name()); ok {
			files = append(files, backupName{e.Name(), ts})
		}
	}
	// Newest first (lumberjack's order: by the time in the name).
	slices.SortStableFunc(files, func(a, b backupName) int { return b.ts.Compare(a.ts) })

	var remove, keep []backupName
	if n := s.rot.MaxBackups; n > 0 {
		kept := make(map[string]bool)
		for _, f := range files {
			kept[stripGz(f.name)] = true
			if len(kept) > n {
				remove = append(remove, f)
			} else {
				keep = append(keep, f)
			}
		}
	} else {
		keep = files
	}
	if age := s.rot.MaxAge; age > 0 {
		var young []backupName
		for _, f := range keep {
			if now.Sub(f.ts) > age {
				remove = append(remove, f)
			} else {
				young = append(young, f)
			}
		}
		keep = young
	}

	dfd := int(d.Fd())
	var errs []error
	for _, f := range remove {
		if err := unix.Unlinkat(dfd, f.name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("removing %s: %w", filepath.Join(dir, f.name), err))
		}
	}
	if s.rot.Compress {
		for _, f := range keep {
			if strings.HasSuffix(f.name, gzSuffix) {
				continue
			}
			err := compressAt(dfd, dir, f.name, s.writerDone)
			if errors.Is(err, errMillStopped) {
				break // the log closed: not a failure, the next open does the rest
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func stripGz(name string) string { return strings.TrimSuffix(name, gzSuffix) }

// openSafeDir opens the log dir dir and checks it (CheckDir) after
// opening it, and that it is still the dir at dir: what is done through
// the descriptor is done in the dir found safe, whatever happens to the
// names on the way to it afterwards.
func openSafeDir(dir string) (*os.File, error) {
	d, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	if err := CheckDir(dir); err != nil {
		d.Close()
		return nil, err
	}
	var a, b unix.Stat_t
	if err := unix.Fstat(int(d.Fd()), &a); err != nil {
		d.Close()
		return nil, err
	}
	if err := unix.Stat(dir, &b); err != nil {
		d.Close()
		return nil, err
	}
	if a.Dev != b.Dev || a.Ino != b.Ino {
		d.Close()
		return nil, fmt.Errorf("%s was replaced while being checked", dir)
	}
	return d, nil
}

// removeBackup removes the rotated file at path (max_total, keep_free,
// max_age in Manager.Check) by its name in its dir, opened and checked
// again with openSafeDir: never through a dir on the way that has become
// someone else's since the check that listed it.
func removeBackup(path string) error {
	d, err := openSafeDir(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Unlinkat(int(d.Fd()), filepath.Base(path), 0)
}

// compressAt gzips the backup name in the dir open as dfd (dir is its
// path, for errors) into name.gz, then removes name; if stop closes
// first, it removes name.gz and keeps name. It never follows a
// link: name must be a regular file with one link, and name.gz must not
// exist (one left by an interrupted pass is removed first: unlinkat
// removes a link, never its target).
func compressAt(dfd int, dir, name string, stop <-chan struct{}) (err error) {
	path := filepath.Join(dir, name)
	src, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) {
		return &UnsafeDirError{Dir: dir, Path: path, Why: "is a symbolic link; not compressed", File: true}
	}
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // removed meanwhile
		}
		return fmt.Errorf("compressing %s: %w", path, err)
	}
	srcF := os.NewFile(uintptr(src), path)
	defer srcF.Close()
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return fmt.Errorf("compressing %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return &UnsafeDirError{Dir: dir, Path: path, Why: "is not a regular file; not compressed", File: true}
	}
	if st.Nlink != 1 {
		return &UnsafeDirError{Dir: dir, Path: path, Why: fmt.Sprintf("has %d hard links; not compressed", st.Nlink), File: true}
	}

	gzName := name + gzSuffix
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	dst, err := unix.Openat(dfd, gzName, flags, 0o600)
	if errors.Is(err, unix.EEXIST) {
		if err := unix.Unlinkat(dfd, gzName, 0); err != nil {
			return fmt.Errorf("compressing %s: removing %s: %w", path, gzName, err)
		}
		dst, err = unix.Openat(dfd, gzName, flags, 0o600)
	}
	if err != nil {
		return fmt.Errorf("compressing %s: %w", path, err)
	}
	dstF := os.NewFile(uintptr(dst), path+gzSuffix)
	defer func() {
		if err != nil {
			dstF.Close()
			unix.Unlinkat(dfd, gzName, 0) // ours, or whatever is there now: a name, never followed
		}
	}()
	if err := unix.Fchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("compressing %s: %w", path, err)
	}
	if err := unix.Fchmod(dst, st.Mode&0o777); err != nil {
		return fmt.Errorf("compressing %s: %w", path, err)
	}
	gz := gzip.NewWriter(dstF)
	if _, err := io.Copy(gz, stopReader{srcF, stop}); err != nil {
		return fmt.Errorf("compressing %s: %w", path, err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("compressing %s: %w", path, err)
	}
	if err := dstF.Close(); err != nil {
		return fmt.Errorf("compressing %s: %w", path, err)
	}
	if err := unix.Unlinkat(dfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("compressing %s: removing it: %w", path, err)
	}
	return nil
}
