package logfile

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCloseStopsCompressionAndOpenResumesIt: Close does not wait for a
// rotated file's compression (it may take seconds): the compression stops,
// its partial .gz is removed, the backup stays whole, and opening the log
// again compresses it.
func TestCloseStopsCompressionAndOpenResumesIt(t *testing.T) {
	m, logs := testManager(t, nil)
	var gate atomic.Pointer[chan struct{}] // closed by the held pass
	release := make(chan struct{})
	m.millHook = func(*Stream) {
		if held := gate.Swap(nil); held != nil {
			close(*held)
			<-release
		}
	}
	rot := Rotation{MaxSize: 1000, MaxBackups: 3, Compress: true}
	s := open(t, m, "app.log", rot, false)
	waitMillIdle(t, s) // the pass at Open
	held := make(chan struct{})
	gate.Store(&held)
	for range 11 { // past max_size: one rotation
		s.Write([]byte(testLine))
	}
	select {
	case <-held:
	case <-time.After(deadline):
		t.Fatalf("no mill pass after a rotation within %s", deadline)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case <-s.writerDone:
	case <-time.After(deadline):
		t.Fatalf("the writer did not finish within %s", deadline)
	}
	close(release)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(deadline):
		t.Fatalf("Close did not return within %s", deadline)
	}
	names := backupNames(listDir(t, m.cfg.Dir), "app.log")
	if len(names) != 1 || strings.HasSuffix(names[0], ".gz") {
		t.Fatalf("backups after Close stopped the compression: %v, want one, uncompressed", names)
	}
	backup := filepath.Join(m.cfg.Dir, names[0])
	want := readLog(t, backup)
	if len(want) < 1000-len(testLine) {
		t.Fatalf("backup holds %d bytes, want the rotated file", len(want))
	}
	if n := logs.FilterMessage("compressing or pruning rotated log files").Len(); n != 0 {
		t.Errorf("%d warnings about a compression that Close stopped, want none", n)
	}

	s2 := open(t, m, "app.log", rot, false)
	waitMillIdle(t, s2)
	if got := readLog(t, backup+".gz"); string(got) != string(want) {
		t.Errorf("compressed when opened again: %d bytes, want the backup's %d", len(got), len(want))
	}
	if _, err := os.Lstat(backup); !os.IsNotExist(err) {
		t.Errorf("backup after its compression: %v, want removed", err)
	}
}

// TestMillPrunesPlainBackups: without compress, the mill still keeps
// max_backups (and max_age drops old backups, compressed or not), as
// lumberjack's mill did.
func TestMillPrunesPlainBackups(t *testing.T) {
	m, _ := testManager(t, nil)
	for _, old := range []string{"app-2001-01-01T00-00-00.000.log", "app-2002-01-01T00-00-00.000.log.gz"} {
		if err := os.WriteFile(filepath.Join(m.cfg.Dir, old), []byte("old\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, m, "app.log", Rotation{MaxSize: 1000, MaxBackups: 2, MaxAge: 24 * time.Hour}, false)
	for range 35 { // three rotations
		s.Write([]byte(testLine))
	}
	waitAccounted(t, s, 35*uint64(len(testLine)))
	waitMillIdle(t, s)
	names := backupNames(listDir(t, m.cfg.Dir), "app.log")
	if len(names) != 2 {
		t.Fatalf("backups: %v, want the 2 newest", names)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "app-200") || strings.HasSuffix(n, ".gz") {
			t.Errorf("backup %s kept; want only the newest two, uncompressed", n)
		}
	}
}
