package logfile

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

func TestRotationKeepsBackupsCompressed(t *testing.T) {
	m, _ := testManager(t, nil)
	rot := Rotation{MaxSize: 10_000, MaxBackups: 3, Compress: true}
	s := open(t, m, "app.out.log", rot, false)
	// seq 1 20000 is 108,894 bytes: about 11 rotations.
	run(t, s, "seq 1 20000")
	const total = 108_894
	waitAccounted(t, s, total)

	dir := m.cfg.Dir
	waitDir(t, dir, "3 gzip'd backups", func(names []string) bool {
		b := backupNames(names, "app.out.log")
		if len(b) != 3 {
			return false
		}
		for _, n := range b {
			if !strings.HasSuffix(n, ".gz") {
				return false
			}
		}
		return true
	})
	// The backups and the active file hold the end of the sequence, in
	// order, each file no larger than max_size and ending on a line.
	var all []byte
	for _, n := range backupNames(listDir(t, dir), "app.out.log") {
		b := readLog(t, filepath.Join(dir, n))
		if len(b) > int(rot.MaxSize) || len(b) < int(rot.MaxSize)-10 || b[len(b)-1] != '\n' {
			t.Errorf("backup %s: %d bytes, want <= %d and full, ending in a newline", n, len(b), rot.MaxSize)
		}
		all = append(all, b...)
	}
	active := readLog(t, s.Path())
	if len(active) > int(rot.MaxSize) {
		t.Errorf("active file: %d bytes, want <= %d", len(active), rot.MaxSize)
	}
	all = append(all, active...)
	lines := strings.Split(strings.TrimSuffix(string(all), "\n"), "\n")
	first, _ := strconv.Atoi(lines[0])
	for i, l := range lines {
		if l != strconv.Itoa(first+i) {
			t.Fatalf("line %d of the kept logs is %q, want %d", i, l, first+i)
		}
	}
	if last := lines[len(lines)-1]; last != "20000" {
		t.Errorf("last line %q, want 20000", last)
	}
	if s.Dropped() != 0 || s.Written() != total {
		t.Errorf("written %d dropped %d, want %d and 0", s.Written(), s.Dropped(), total)
	}
}

func TestMaxTotalDeletesOldestAcrossStreams(t *testing.T) {
	m, _ := testManager(t, nil)
	rot := Rotation{MaxSize: 10_000}
	a := open(t, m, "a.log", rot, false)
	b := open(t, m, "b.log", rot, false)
	line := []byte(strings.Repeat("x", 99) + "\n")
	write := func(s *Stream, n int) {
		for range n / len(line) {
			s.Write(line)
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	// a rotates three times, then b three times, then a again: the
	// oldest backups are a's, then b's.
	write(a, 35_000)
	write(b, 35_000)
	write(a, 30_000)
	before := backupsOf(t, m)
	if len(before) != 9 {
		t.Fatalf("got %d backups %v, want 9", len(before), before)
	}
	// 9 backups of 10,000 bytes and two active files of 5,000: a cap of
	// 60,000 leaves room for the active files and the 5 newest backups.
	m.checkMu.Lock()
	m.cfg.MaxTotal = 60_000
	m.checkMu.Unlock()
	m.Check()
	after := backupsOf(t, m)
	want := before[4:]
	if fmt.Sprint(after) != fmt.Sprint(want) {
		t.Errorf("after Check: backups\n%v\nwant the newest five\n%v", after, want)
	}
	if !strings.HasPrefix(before[3], "b-") || !strings.HasPrefix(before[0], "a-") {
		t.Errorf("expected deleted files from both streams, deleted %v", before[:4])
	}
	if _, err := os.Stat(a.Path()); err != nil {
		t.Errorf("active file: %v", err)
	}
}

// backupsOf lists all backups in m's dir, oldest first (by rotation time).
func backupsOf(t *testing.T, m *Manager) []string {
	var out []string
	for _, b := range listBackups(m.snapshot()) {
		out = append(out, filepath.Base(b.path))
	}
	return out
}

func TestStalledWriterDoesNotBlockChild(t *testing.T) {
	m, _ := testManager(t, nil)
	sw := &stallWriter{release: make(chan struct{}), stalled: make(chan struct{})}
	m.newWriter = func(l *lumberjack.Logger) fileWriter {
		sw.fileWriter = l
		return sw
	}
	s := open(t, m, "fast.log", Rotation{}, false)
	const total = 200_000_000
	start := time.Now()
	run(t, s, fmt.Sprintf("head -c %d /dev/zero", total))
	elapsed := time.Since(start)
	t.Logf("child wrote %d bytes in %s with the disk writer stalled", total, elapsed)
	<-sw.stalled
	// Everything the child wrote has been read: buffered or dropped.
	waitStream(t, s, "the pipe drained", func() bool {
		s.ring.mu.Lock()
		defer s.ring.mu.Unlock()
		return s.ring.w+s.Dropped() == total
	})
	if s.Dropped() == 0 {
		t.Fatal("nothing dropped although the writer was stalled")
	}
	// In-process writes do not block either; they are dropped too.
	line := []byte(strings.Repeat("y", 99) + "\n")
	for range 1000 {
		if n, err := s.Write(line); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got := s.Dropped(); got < total-ringMax-pipeSize+100_000 {
		t.Errorf("dropped %d bytes, want nearly all of %d", got, total+100_000)
	}
	close(sw.release)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data := readLog(t, s.Path())
	marker := fmt.Sprintf("\n[hostctl: dropped %d bytes of output: disk writer stalled]\n", s.Dropped())
	if n := bytes.Count(data, []byte("[hostctl: dropped")); n != 1 {
		t.Fatalf("found %d markers, want 1", n)
	}
	if !bytes.HasSuffix(data, []byte(marker)) {
		t.Errorf("log does not end with %q", marker)
	}
	if got := uint64(len(data)-len(marker)) + s.Dropped(); got != total+100_000 {
		t.Errorf("kept %d + dropped %d = %d bytes, want %d", len(data)-len(marker), s.Dropped(), got, total+100_000)
	}
}

func TestFollowAcrossRotation(t *testing.T) {
	m, _ := testManager(t, nil)
	// Small files, compressed and pruned under the follower.
	s := open(t, m, "seq.log", Rotation{MaxSize: 2000, MaxBackups: 2, Compress: true}, false)
	run(t, s, "seq 1 1000")
	waitAccounted(t, s, 3893) // bytes of seq 1 1000

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 1000)
	done := make(chan error, 1)
	go func() {
		done <- s.Follow(ctx, 5, func(line []byte) error {
			got <- string(line)
			return nil
		})
	}()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	var child *exec.Cmd
	for want := 996; want <= 20000; want++ {
		if want == 997 {
			// The follower has started: add output under it.
			child = exec.Command("seq", "1001", "20000")
			child.Stdout = s.WriteEnd()
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			defer wait(t, child)
		}
		select {
		case line := <-got:
			if line != strconv.Itoa(want)+"\n" {
				t.Fatalf("followed line %q, want %d", line, want)
			}
		case err := <-done:
			t.Fatalf("Follow returned early: %v", err)
		case <-timer.C:
			t.Fatalf("timed out waiting for line %d", want)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Follow: %v, want context.Canceled", err)
	}
	waitDir(t, m.cfg.Dir, "2 gzip'd backups", func(names []string) bool {
		b := backupNames(names, "seq.log")
		return len(b) == 2 && strings.HasSuffix(b[0], ".gz") && strings.HasSuffix(b[1], ".gz")
	})
}

func TestFollowEndsWhenStreamCloses(t *testing.T) {
	m, _ := testManager(t, nil)
	s := open(t, m, "x.log", Rotation{}, false)
	s.Write([]byte("one\ntwo\nthr"))
	var lines []string
	done := make(chan error, 1)
	go func() {
		done <- s.Follow(context.Background(), 10, func(l []byte) error {
			lines = append(lines, string(l))
			return nil
		})
	}()
	s.Write([]byte("ee\n"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(deadline):
		t.Fatal("Follow did not return after Close")
	}
	if fmt.Sprint(lines) != fmt.Sprint([]string{"one\n", "two\n", "three\n"}) {
		t.Errorf("lines %q", lines)
	}
	// A closed stream still reads its file.
	if got, err := s.Tail(2); err != nil || string(got) != "two\nthree\n" {
		t.Errorf("Tail after Close = %q, %v", got, err)
	}
	lines = nil
	if err := s.Follow(context.Background(), 1, func(l []byte) error {
		lines = append(lines, string(l))
		return nil
	}); err != nil || fmt.Sprint(lines) != fmt.Sprint([]string{"three\n"}) {
		t.Errorf("Follow after Close: %q, %v", lines, err)
	}
}

func TestTimestampsSplitLongLines(t *testing.T) {
	m, _ := testManager(t, nil)
	s := open(t, m, "ts.log", Rotation{}, true)
	run(t, s, "head -c 200000 /dev/zero | tr '\\0' a; echo; echo short; printf 'no newline'")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data := string(readLog(t, s.Path()))
	lines := strings.Split(strings.TrimSuffix(data, "\n"), "\n")
	var payload strings.Builder
	for i, l := range lines {
		ts, rest, ok := strings.Cut(l, " ")
		if !ok {
			t.Fatalf("line %d has no timestamp: %.40q", i, l)
		}
		if _, err := time.Parse(time.RFC3339, ts); err != nil || len(ts) < len("2006-01-02T15:04:05.000Z") || ts[19] != '.' {
			t.Fatalf("line %d: timestamp %q is not RFC 3339 with milliseconds", i, ts)
		}
		if len(rest) > MaxLine {
			t.Errorf("line %d: %d bytes after the timestamp, want <= %d", i, len(rest), MaxLine)
		}
		payload.WriteString(rest)
		payload.WriteByte('|')
	}
	want := strings.Repeat("a", 65536) + "|" + strings.Repeat("a", 65536) + "|" + strings.Repeat("a", 65536) + "|" +
		strings.Repeat("a", 200000-3*65536) + "|short|no newline|"
	if payload.String() != want {
		t.Errorf("payload differs: got %d lines (%d bytes), want 6 lines", len(lines), payload.Len())
	}
}

func TestBinaryPassesUnchanged(t *testing.T) {
	m, _ := testManager(t, nil)
	in := make([]byte, 3_000_000)
	rand.Read(in)
	src := filepath.Join(t.TempDir(), "in.bin")
	if err := os.WriteFile(src, in, 0o644); err != nil {
		t.Fatal(err)
	}
	s := open(t, m, "bin.log", Rotation{MaxSize: 1_000_000}, false)
	run(t, s, "cat "+src)
	waitAccounted(t, s, uint64(len(in)))
	var out []byte
	for _, n := range backupNames(listDir(t, m.cfg.Dir), "bin.log") {
		out = append(out, readLog(t, filepath.Join(m.cfg.Dir, n))...)
	}
	out = append(out, readLog(t, s.Path())...)
	if !bytes.Equal(in, out) {
		t.Errorf("backups and log (%d bytes) differ from the %d bytes written", len(out), len(in))
	}
}

func TestTail(t *testing.T) {
	m, _ := testManager(t, nil)
	// Lines "1\n".."30\n" are 81 bytes; with max_size 50 the first file
	// rotates after line 17 (45 bytes), leaving 18..30 (39 bytes).
	s := open(t, m, "t.log", Rotation{MaxSize: 50, Compress: true}, false)
	run(t, s, "seq 1 30")
	waitAccounted(t, s, 81)
	waitDir(t, m.cfg.Dir, "a gzip'd backup", func(names []string) bool {
		b := backupNames(names, "t.log")
		return len(b) == 1 && strings.HasSuffix(b[0], ".gz")
	})
	seq := func(from, to int) string {
		var b strings.Builder
		for i := from; i <= to; i++ {
			fmt.Fprintf(&b, "%d\n", i)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name string
		n    int
		want string
	}{
		{"zero", 0, ""},
		{"one", 1, "30\n"},
		{"current file", 13, seq(18, 30)},
		{"into backup", 15, seq(16, 30)},
		{"more than all", 100, seq(1, 30)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Tail(tc.n)
			if err != nil || string(got) != tc.want {
				t.Errorf("Tail(%d) = %q, %v; want %q", tc.n, got, err, tc.want)
			}
			got, err = TailFile(s.Path(), tc.n)
			if err != nil || string(got) != tc.want {
				t.Errorf("TailFile(%d) = %q, %v; want %q", tc.n, got, err, tc.want)
			}
		})
	}
	s.Write([]byte("partial"))
	s.Sync()
	if got, _ := s.Tail(2); string(got) != "30\npartial" {
		t.Errorf("Tail with a partial last line = %q", got)
	}
}

func TestCloseWithLeftoverGrandchild(t *testing.T) {
	m, _ := testManager(t, nil)
	m.drainTimeout = 100 * time.Millisecond
	s := open(t, m, "g.log", Rotation{}, false)
	// The shell exits at once; its background sleep keeps the pipe's
	// write end open.
	cmd := exec.Command("sh", "-c", "echo started; sleep 60 &")
	cmd.Stdout = s.WriteEnd()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	wait(t, cmd)
	waitAccounted(t, s, uint64(len("started\n")))
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(deadline):
		t.Fatal("Close hung while a grandchild holds the pipe")
	}
	if got := string(readLog(t, s.Path())); got != "started\n" {
		t.Errorf("log = %q", got)
	}
}

func TestReopenAfterOutsideRotation(t *testing.T) {
	m, _ := testManager(t, nil)
	s := open(t, m, "r.log", Rotation{}, false)
	s.Write([]byte("before\n"))
	s.Sync()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	followed := make(chan string, 10)
	go s.Follow(ctx, 1, func(l []byte) error {
		followed <- string(l)
		return nil
	})
	if got := <-followed; got != "before\n" {
		t.Fatalf("followed %q first, want the last line", got)
	}

	// A reopen with nothing moved continues the same file.
	if err := m.Reopen(); err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("same file\n"))
	s.Sync()
	moved := s.Path() + ".1"
	if err := os.Rename(s.Path(), moved); err != nil {
		t.Fatal(err)
	}
	if err := m.Reopen(); err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("after\n"))
	s.Sync()
	if got := string(readLog(t, moved)); got != "before\nsame file\n" {
		t.Errorf("moved file = %q", got)
	}
	if got := string(readLog(t, s.Path())); got != "after\n" {
		t.Errorf("new file = %q", got)
	}
	// The follower saw each new line once, across both reopens.
	for _, want := range []string{"same file\n", "after\n"} {
		select {
		case got := <-followed:
			if got != want {
				t.Errorf("followed %q, want %q", got, want)
			}
		case <-time.After(deadline):
			t.Fatalf("follower did not see %q", want)
		}
	}
}

func TestOpenRejectsDuplicatesAndRelativePaths(t *testing.T) {
	m, _ := testManager(t, nil)
	open(t, m, "d.log", Rotation{}, false)
	if _, err := m.Open(filepath.Join(m.cfg.Dir, "d.log"), Rotation{}, false); err == nil {
		t.Error("second Open of the same path succeeded")
	}
	if _, err := m.Open("rel.log", Rotation{}, false); err == nil {
		t.Error("Open of a relative path succeeded")
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	m, _ := testManager(t, nil)
	for i := range 3 {
		s := open(t, m, fmt.Sprintf("g%d.log", i), Rotation{MaxSize: 1000}, i == 1)
		run(t, s, "seq 1 1000")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// Close returns once each goroutine has signalled its end; the
	// goroutine itself returns an instant later (later still on a busy
	// machine): wait for it, with the tests' deadline.
	buf := make([]byte, 1<<20)
	end := time.Now().Add(deadline)
	for {
		stacks := string(buf[:runtime.Stack(buf, true)])
		var left []string
		for _, fn := range []string{"logfile.(*Stream).readLoop", "logfile.(*Stream).writeLoop", "logfile.(*Manager).loop"} {
			if strings.Contains(stacks, fn) {
				left = append(left, fn)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("still running %s after Manager.Close: %v", deadline, left)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLastLine(t *testing.T) {
	long := strings.Repeat("x", 300) + "END"
	for _, tc := range []struct {
		name       string
		writes     []string
		timestamps bool
		want       string
	}{
		{"nothing", nil, false, ""},
		{"no newline yet", []string{"half a line"}, false, ""},
		{"one line", []string{"boom\n"}, false, "boom"},
		{"last of several", []string{"a\nb\nc\n"}, false, "c"},
		{"partial after it", []string{"a\nb\nc"}, false, "b"},
		{"line across writes", []string{"Value", "Error: ", "bad\n"}, false, "ValueError: bad"},
		{"crlf", []string{"dos\r\n"}, false, "dos"},
		{"long line keeps its end", []string{long + "\n"}, false, long[len(long)-lastLineMax:]},
		{"long line across writes", []string{long[:200], long[200:] + "\n"}, false, long[len(long)-lastLineMax:]},
		{"timestamp stripped", []string{"first\nlast words\n"}, true, "last words"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := testManager(t, nil)
			s := open(t, m, "app.err.log", Rotation{}, tc.timestamps)
			for _, w := range tc.writes {
				if _, err := s.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
				if err := s.Sync(); err != nil { // one write to the file each
					t.Fatal(err)
				}
			}
			if got := s.LastLine(); got != tc.want {
				t.Errorf("LastLine() = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRotationFinishesTheLine: when a write fills the file to max_size
// in the middle of a line, the rest of that line still goes into the file
// before it rotates, so every file holds whole lines.
func TestRotationFinishesTheLine(t *testing.T) {
	m, _ := testManager(t, nil)
	s := open(t, m, "cut.log", Rotation{MaxSize: 1000}, false)
	first := strings.Repeat(testLine, 9) + strings.Repeat("y", 100) // 1000 bytes, ends mid-line
	for _, p := range []string{first, "end\n" + testLine} {
		s.Write([]byte(p))
		if err := s.Sync(); err != nil { // one disk write each
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files := allLogs(t, s)
	if len(files) != 2 || string(files[0]) != first+"end\n" || string(files[1]) != testLine {
		t.Errorf("files = %q, want %q", files, []string{first + "end\n", testLine})
	}
}
