package logfile

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mountTmpfs mounts a tmpfs of size bytes on a new temp dir, unmounted
// in t.Cleanup, or skips the test if that is not possible.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("keep_free test needs root to mount a small tmpfs; run go test as root to include it")
	}
	dir := t.TempDir()
	// mode=755: a tmpfs is 1777 by default, which a log dir may not be.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=755", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s); skipping the keep_free test", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func fill(t *testing.T, path string, n int64) {
	t.Helper()
	if err := os.WriteFile(path, make([]byte, n), 0o644); err != nil {
		t.Fatalf("writing %d bytes of filler: %v", n, err)
	}
}

func TestKeepFreeOnSmallFilesystem(t *testing.T) {
	mnt := mountTmpfs(t, "4m") // 4,194,304 bytes
	logDir := filepath.Join(mnt, "logs")
	m, logs := testManager(t, func(c *Config) {
		c.Dir = logDir
		c.KeepFree = "2MB"
	})
	s := open(t, m, "app.log", Rotation{MaxSize: 200_000}, false)
	// 100-byte lines.
	writeLines := func(n int) {
		t.Helper()
		before := s.Written() + s.Dropped()
		run(t, s, fmt.Sprintf("yes %s | head -c %d", strings.Repeat("x", 99), n))
		waitAccounted(t, s, before+uint64(n))
	}

	// 1.2MB: five backups of 200,000 bytes and a full active file.
	writeLines(1_200_000)
	initial := backupNames(listDir(t, logDir), "app.log")
	if len(initial) != 5 {
		t.Fatalf("backups %v, want 5", initial)
	}

	// Free space drops to about 1.5MB: the three oldest backups go.
	fill(t, filepath.Join(mnt, "filler1"), 1_500_000)
	m.Check()
	if got := backupNames(listDir(t, logDir), "app.log"); fmt.Sprint(got) != fmt.Sprint(initial[3:]) {
		t.Errorf("after the first squeeze, backups %v, want the newest two %v", got, initial[3:])
	}
	if paused, reason := m.KeepFreePaused(); paused {
		t.Fatalf("writing paused (%q) although deleting backups freed enough", reason)
	}
	if n := logs.FilterMessage("deleted rotated log").FilterField(zapString("reason", "keep_free")).Len(); n != 3 {
		t.Errorf("%d keep_free deletions logged, want 3", n)
	}

	// Nearly full: every backup goes and writing stops.
	fsi, err := statFS(mnt)
	if err != nil {
		t.Fatal(err)
	}
	filler2 := filepath.Join(mnt, "filler2")
	fill(t, filler2, fsi.avail-100_000)
	m.Check()
	if got := backupNames(listDir(t, logDir), "app.log"); len(got) != 0 {
		t.Errorf("backups %v left on a full filesystem", got)
	}
	wantReason := fmt.Sprintf("keep_free: less than 2MB free on the filesystem of %s", logDir)
	if paused, reason := m.KeepFreePaused(); !paused || reason != wantReason {
		t.Fatalf("KeepFreePaused() = %v, %q on a full filesystem; want true, %q", paused, reason, wantReason)
	}
	if logs.FilterMessage("log filesystem low on space; dropping log output there until space returns").Len() != 1 {
		t.Error("no warning logged about pausing")
	}

	// The program keeps running and its output is dropped and counted.
	writtenBefore := s.Written()
	writeLines(300_000)
	if s.Dropped() != 300_000 || s.Written() != writtenBefore {
		t.Fatalf("while paused: dropped %d, written %d more; want 300000 and 0", s.Dropped(), s.Written()-writtenBefore)
	}

	// Space returns: writing resumes with a marker where output was lost.
	if err := os.Remove(filler2); err != nil {
		t.Fatal(err)
	}
	m.Check()
	if paused, reason := m.KeepFreePaused(); paused || reason != "" {
		t.Fatalf("KeepFreePaused() = %v, %q after space returned; want false, \"\"", paused, reason)
	}
	run(t, s, "echo resumed")
	waitStream(t, s, "the resumed line written", func() bool {
		return strings.HasSuffix(string(readLog(t, s.Path())), "resumed\n")
	})
	want := fmt.Sprintf("[hostctl: dropped 300000 bytes of output: keep_free: less than 2MB free on the filesystem of %s]\nresumed\n", logDir)
	if got := string(readLog(t, s.Path())); got != want {
		t.Errorf("log after resuming = %q\nwant %q", got, want)
	}
}

func TestDiskFullDropsAndResumes(t *testing.T) {
	mnt := mountTmpfs(t, "1m")
	m, logs := testManager(t, func(c *Config) { c.Dir = mnt }) // keep_free off: the writes themselves fail
	s := open(t, m, "full.log", Rotation{}, false)
	s.Write([]byte("first\n"))
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	// Fill the filesystem to the last byte.
	f.Write(make([]byte, 2<<20))
	f.Close()

	before := s.Dropped()
	run(t, s, "yes lost | head -c 100000")
	waitAccounted(t, s, uint64(len("first\n"))+100_000)
	if got := s.Dropped() - before; got == 0 {
		t.Fatal("nothing dropped on a full filesystem")
	}
	if logs.FilterMessage("writing log file failed; dropping output until it works again").Len() == 0 {
		t.Error("no warning about the failing writes")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	run(t, s, "echo back")
	waitStream(t, s, "the line after the gap", func() bool {
		return strings.HasSuffix(string(readLog(t, s.Path())), "back\n")
	})
	data := string(readLog(t, s.Path()))
	// Whatever fit before the disk filled stays; one marker counts the rest.
	if n := strings.Count(data, "[hostctl: dropped "); n != 1 {
		t.Fatalf("%d markers in %q", n, data)
	}
	marker := fmt.Sprintf("[hostctl: dropped %d bytes of output: ENOSPC: no space left on device]\nback\n", s.Dropped())
	if !strings.HasPrefix(data, "first\n") || !strings.HasSuffix(data, marker) {
		t.Errorf("log = %.80q ... %q\nwant it to end with %q", data, data[max(0, len(data)-120):], marker)
	}
}

// TestKeepFreePausedReported needs no root: a keep_free larger than any
// filesystem pauses writing on the real one under t.TempDir() at the
// first check, and keep_free off never does.
func TestKeepFreePausedReported(t *testing.T) {
	m, _ := testManager(t, func(c *Config) { c.KeepFree = "9000000TB" })
	want := fmt.Sprintf("keep_free: less than 9000000TB free on the filesystem of %s", m.cfg.Dir)
	if paused, reason := m.KeepFreePaused(); !paused || reason != want {
		t.Errorf("KeepFreePaused() = %v, %q; want true, %q", paused, reason, want)
	}

	off, _ := testManager(t, nil) // keep_free = ""
	off.Check()
	if paused, reason := off.KeepFreePaused(); paused || reason != "" {
		t.Errorf("keep_free off: KeepFreePaused() = %v, %q; want false, \"\"", paused, reason)
	}
}
