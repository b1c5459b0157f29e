package logfile

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// deadline is how long a test waits for any one event.
const deadline = 30 * time.Second

// testManager returns a Manager on a temp dir with keep_free off (tests
// share the host's disk), and the log entries it writes.
func testManager(t testing.TB, edit func(*Config)) (*Manager, *observer.ObservedLogs) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.KeepFree = ""
	if edit != nil {
		edit(&cfg)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	m, err := NewManager(cfg, zap.New(core))
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Manager.Close: %v", err)
		}
	})
	return m, logs
}

func open(t *testing.T, m *Manager, name string, rot Rotation, timestamps bool) *Stream {
	t.Helper()
	s, err := m.Open(filepath.Join(m.cfg.Dir, name), rot, timestamps)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// run runs sh -c script with stdout (and stderr) on s's pipe and waits
// for it to exit.
func run(t *testing.T, s *Stream, script string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Stdout = s.WriteEnd()
	cmd.Stderr = s.WriteEnd()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %q: %v", script, err)
	}
	wait(t, cmd)
}

func wait(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%v: %v", cmd.Args, err)
		}
	case <-time.After(deadline):
		cmd.Process.Kill()
		t.Fatalf("%v did not finish within %s", cmd.Args, deadline)
	}
}

// waitStream waits until cond holds, re-checking whenever the stream's
// writer reports progress.
func waitStream(t *testing.T, s *Stream, what string, cond func() bool) {
	t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for {
		s.mu.Lock()
		ch := s.notify
		s.notifyTaken = true
		s.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("waiting for %s: timed out after %s (written %d, dropped %d)", what, deadline, s.Written(), s.Dropped())
		}
	}
}

// waitAccounted waits until n bytes of output were written or dropped.
func waitAccounted(t *testing.T, s *Stream, n uint64) {
	t.Helper()
	waitStream(t, s, "output accounted", func() bool { return s.Written()+s.Dropped() >= n })
}

// waitDir waits until cond holds for the names in dir, re-checking on
// every inotify event in dir.
func waitDir(t *testing.T, dir string, what string, cond func(names []string) bool) {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "inotify")
	defer f.Close()
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_DELETE|syscall.IN_MOVED_FROM|syscall.IN_MOVED_TO|syscall.IN_CLOSE_WRITE); err != nil {
		t.Fatal(err)
	}
	f.SetReadDeadline(time.Now().Add(deadline))
	buf := make([]byte, 64<<10)
	for {
		names := listDir(t, dir)
		if cond(names) {
			return
		}
		if _, err := f.Read(buf); err != nil {
			t.Fatalf("waiting for %s in %s: %v; have %v", what, dir, err, names)
		}
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// backups returns the backup names of the log named base in dir, oldest first.
func backupNames(names []string, base string) []string {
	var out []string
	for _, n := range names {
		if _, ok := parseBackup(base, n); ok {
			out = append(out, n)
		}
	}
	slices.Sort(out) // the timestamp format sorts by time
	return out
}

// readLog returns the content of a log file, gunzipping .gz files.
func readLog(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return b
}

// stallWriter is a fileWriter whose writes block until release is closed.
type stallWriter struct {
	fileWriter
	release chan struct{}
	stalled chan struct{} // closed when the first write blocks
	once    bool
}

func (w *stallWriter) Write(p []byte) (int, error) {
	if !w.once {
		w.once = true
		close(w.stalled)
	}
	<-w.release
	return w.fileWriter.Write(p)
}

// testLine is the 100-byte line the writers in these tests repeat.
var testLine = strings.Repeat("x", 99) + "\n"

// allLogs returns the stream's rotated files, oldest first, then its
// current file, each file's content as one element.
func allLogs(t *testing.T, s *Stream) [][]byte {
	t.Helper()
	dir, base := filepath.Dir(s.Path()), filepath.Base(s.Path())
	var out [][]byte
	for _, name := range backupNames(listDir(t, dir), base) {
		out = append(out, readLog(t, filepath.Join(dir, name)))
	}
	return append(out, readLog(t, s.Path()))
}

func zapString(key, val string) zap.Field { return zap.String(key, val) }
