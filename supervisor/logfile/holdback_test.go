package logfile

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// yesCmd returns a child writing total bytes of testLine to s's pipe.
func yesCmd(s *Stream, total int) *exec.Cmd {
	cmd := exec.Command("sh", "-c", fmt.Sprintf("yes %s | head -c %d", strings.TrimSuffix(testLine, "\n"), total))
	cmd.Stdout = s.WriteEnd()
	return cmd
}

// stallingManager returns a Manager whose streams write through sw, with
// a small ring so that the tests fill it quickly.
func stallingManager(t *testing.T, sw *stallWriter, hold time.Duration) (*Manager, chan struct{}) {
	t.Helper()
	m, _ := testManager(t, nil)
	m.ringMax = 256 << 10
	m.holdTimeout = hold
	m.newWriter = func(l *lumberjack.Logger) fileWriter {
		sw.fileWriter = l
		return sw
	}
	held := make(chan struct{}, 1)
	m.onHold = func() {
		select {
		case held <- struct{}{}:
		default:
		}
	}
	return m, held
}

// TestFastWriterOnHealthyDiskLosesNothing: a program writing faster than
// the disk writer is held back, not dropped, across rotations too, with
// and without timestamps.
func TestFastWriterOnHealthyDiskLosesNothing(t *testing.T) {
	for _, timestamps := range []bool{false, true} {
		t.Run(fmt.Sprintf("timestamps=%v", timestamps), func(t *testing.T) {
			sw := &stallWriter{release: make(chan struct{}), stalled: make(chan struct{})}
			m, held := stallingManager(t, sw, time.Hour) // slow, never stalled
			s := open(t, m, "fast.log", Rotation{MaxSize: 1 << 20}, timestamps)
			const total = 20_000_000
			cmd := yesCmd(s, total)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// The disk writer is stuck in its first write until release:
			// the ring fills and the reader must hold the program back.
			select {
			case <-held:
			case <-time.After(deadline):
				t.Fatal("the reader never held the program back")
			}
			close(sw.release)
			wait(t, cmd)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if d := s.Dropped(); d != 0 {
				t.Fatalf("dropped %d bytes on a healthy disk", d)
			}
			files := allLogs(t, s)
			if len(files) < 10 {
				t.Fatalf("%d files, want about %d (rotation at 1 MiB)", len(files), total>>20)
			}
			var lines, size int
			for i, f := range files {
				size += len(f)
				if len(f) > 1<<20+len(testLine)+40 {
					t.Errorf("file %d holds %d bytes, over max_size by more than a line", i, len(f))
				}
				if len(f) > 0 && f[len(f)-1] != '\n' {
					t.Errorf("file %d (%d bytes) ends inside a line: %q", i, len(f), f[max(0, len(f)-120):])
				}
				for _, l := range strings.SplitAfter(string(f), "\n") {
					if l == "" {
						continue
					}
					if timestamps {
						_, l, _ = strings.Cut(l, " ")
					}
					if l != testLine {
						t.Fatalf("file %d: line %q", i, l)
					}
					lines++
				}
			}
			if lines != total/len(testLine) || uint64(size) != s.Written() {
				t.Errorf("%d lines on disk (%d bytes, Written %d); want %d", lines, size, s.Written(), total/len(testLine))
			}
		})
	}
}

// TestStalledDiskDropsAfterHoldTimeoutAndRecovers: with the disk writer
// stuck, the program is held back only for the hold timeout, then its
// output is dropped (counted, one marker); once the writer moves again,
// output is kept again.
func TestStalledDiskDropsAfterHoldTimeoutAndRecovers(t *testing.T) {
	sw := &stallWriter{release: make(chan struct{}), stalled: make(chan struct{})}
	const hold = 200 * time.Millisecond
	m, held := stallingManager(t, sw, hold)
	s := open(t, m, "stall.log", Rotation{}, false)

	// Zeros, no newline: the marker then always starts a line of its own.
	const first = 20_000_000
	start := time.Now()
	cmd := exec.Command("head", "-c", fmt.Sprint(first), "/dev/zero")
	cmd.Stdout = s.WriteEnd()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child finishes although the writer never returns: it was held
	// for the hold timeout, then its output was dropped.
	wait(t, cmd)
	t.Logf("child wrote %d bytes in %s with the disk writer stalled (hold timeout %s)", first, time.Since(start), hold)
	select {
	case <-sw.release:
		t.Fatal("released too early")
	default:
	}
	select {
	case <-held:
	default:
		t.Error("the reader never held the program back before dropping")
	}
	waitStream(t, s, "the pipe drained", func() bool {
		s.ring.mu.Lock()
		defer s.ring.mu.Unlock()
		return s.ring.w+s.Dropped() == first
	})
	dropped := s.Dropped()
	if dropped == 0 {
		t.Fatal("nothing dropped although the writer was stalled")
	}

	// Recovery: the writer moves again, writes what the ring held and the
	// marker; a second fast writer loses nothing.
	close(sw.release)
	waitStream(t, s, "the marker", func() bool { return bytes.Contains(readLog(t, s.Path()), []byte("[hostctl: dropped")) })
	const second = 5_000_000
	cmd = yesCmd(s, second)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wait(t, cmd)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.Dropped(); got != dropped {
		t.Errorf("dropped %d more bytes after the writer recovered", got-dropped)
	}
	data := readLog(t, s.Path())
	marker := fmt.Sprintf("\n[hostctl: dropped %d bytes of output: disk writer stalled]\n", dropped)
	if n := bytes.Count(data, []byte("[hostctl: dropped")); n != 1 {
		t.Fatalf("found %d markers, want 1", n)
	}
	i := bytes.Index(data, []byte(marker))
	if i < 0 {
		t.Fatalf("no marker %q", marker)
	}
	rest := data[i+len(marker):]
	if len(rest) != second || strings.Count(string(rest), testLine) != second/len(testLine) {
		t.Errorf("after the marker: %d bytes, want the %d of the second writer", len(rest), second)
	}
	if got := uint64(len(data)-len(marker)) + dropped; got != first+second {
		t.Errorf("kept %d + dropped %d = %d bytes, want %d", len(data)-len(marker), dropped, got, first+second)
	}
}
