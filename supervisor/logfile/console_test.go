package logfile

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// consoleManager returns a Manager whose "stdout" is the write end of a
// real pipe that the test reads (or, for a while, does not).
func consoleManager(t *testing.T) (*Manager, *os.File, *os.File) {
	t.Helper()
	m, _ := testManager(t, nil)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close(); pw.Close() })
	m.consoles.mu.Lock()
	m.consoles.outs = [2]io.Writer{pw, pw}
	m.consoles.mu.Unlock()
	return m, pr, pw
}

// TestConsoleSlowReader: several programs write lines concurrently into
// hostctl's stdout while nobody reads it. The programs are never held
// back (they all finish while the pipe is full), what did not fit is
// dropped and counted, and what comes out is whole lines, each with its
// program's prefix, a marker line where lines were dropped.
func TestConsoleSlowReader(t *testing.T) {
	m, pr, pw := consoleManager(t)
	names := []string{"web", "worker-1", "worker-2", "beat"}
	const lines = 20000 // 4 x 20000 x ~110 bytes: far more than the pipe and the queue
	var streams []*ConsoleStream
	var cmds []*exec.Cmd
	// Every stream opens before any program writes: prefixes are padded
	// to the widest name opened so far, and the test checks one width.
	for _, n := range names {
		s, err := m.OpenConsole(n, "stdout", ConsoleSame)
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	for i, n := range names {
		s := streams[i]
		// awk writes in buffers that end mid-line: the stream must hold
		// each partial line until its end.
		cmd := exec.Command("awk", "-v", "n="+n, `BEGIN { pad = sprintf("%100s", ""); gsub(/ /, "x", pad); for (i = 0; i < `+strconv.Itoa(lines)+`; i++) printf "%s %d %s\n", n, i, pad }`)
		cmd.Stdout = s.WriteEnd()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	// One program pauses in the middle of a line.
	s, err := m.OpenConsole("slow", "stdout", ConsoleSame)
	if err != nil {
		t.Fatal(err)
	}
	streams = append(streams, s)
	cmd := exec.Command("sh", "-c", `printf 'slow half-'; sleep 0.3; printf 'line\n'`)
	cmd.Stdout = s.WriteEnd()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmds = append(cmds, cmd)

	// Nobody reads the pipe: every program must still finish.
	exited := make(chan error, len(cmds))
	for _, c := range cmds {
		go func() { exited <- c.Wait() }()
	}
	timeout := time.After(deadline)
	for range cmds {
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("a program failed: %v", err)
			}
		case <-timeout:
			t.Fatalf("the programs did not finish within %s while hostctl's stdout was not read: they were held back", deadline)
		}
	}
	// Wait until the readers have taken everything the programs wrote
	// (each stream's last line), so that the drops are all counted.
	var dropped uint64
	for i, s := range streams[:len(names)] {
		waitLastLine(t, s, names[i]+" "+strconv.Itoa(lines-1)+" ")
		dropped += s.Dropped()
	}
	if dropped == 0 {
		t.Fatalf("nothing was dropped although nobody read hostctl's stdout")
	}

	// Now read, and close everything.
	var got []string
	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			got = append(got, sc.Text())
		}
	})
	for _, s := range streams {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if !m.consoles.stdout.flush(deadline) {
		t.Fatalf("the queue was not written within %s while read", deadline)
	}
	pw.Close()
	wg.Wait()

	line := regexp.MustCompile(`^(\S+) +\| (?:(\S+) (\d+) x{100}|\[hostctl: dropped (\d+) lines \((\d+) bytes in all so far\) of output: hostctl's stdout is slow\]|slow half-line)$`)
	count := map[string]int{}
	markers := 0
	width := len("worker-1")
	for _, l := range got {
		mm := line.FindStringSubmatch(l)
		if mm == nil {
			t.Fatalf("not a whole prefixed line: %q", l)
		}
		if i := strings.Index(l, " | "); i != width {
			t.Errorf("prefix not aligned to %d: %q", width, l)
		}
		switch {
		case mm[2] != "":
			if mm[2] != mm[1] {
				t.Fatalf("%s's line under %s's prefix: %q", mm[2], mm[1], l)
			}
			count[mm[1]]++
		case mm[4] != "":
			markers++
		default:
			count["slow"]++
		}
	}
	// Whole or not at all: half a line would not match the pattern above.
	// It may have found the queue full, and then it was counted.
	if slow := streams[len(names)]; count["slow"] != 1 && (count["slow"] != 0 || slow.Dropped() == 0) {
		t.Errorf("the line written in two halves came out %d times whole (%d bytes of it dropped)", count["slow"], slow.Dropped())
	}
	total := 0
	for _, n := range names {
		total += count[n]
	}
	if total == len(names)*lines {
		t.Errorf("every line came out although %d bytes were counted as dropped", dropped)
	}
	if markers == 0 {
		t.Errorf("no marker line for the dropped lines")
	}
	t.Logf("%d of %d lines out, %d bytes dropped, %d marker lines", total, len(names)*lines, dropped, markers)
}

// TestConsoleLongLineAndFollow: a line longer than ConsoleLineMax goes
// out in pieces, each prefixed; Follow sees the lines as they come.
func TestConsoleLongLineAndFollow(t *testing.T) {
	m, pr, pw := consoleManager(t)
	s, err := m.OpenConsole("app", "stdout", ConsoleSame)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	followed := make(chan string, 16)
	go s.Follow(ctx, 0, func(l []byte) error { followed <- string(l); return nil })
	var got []string
	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			got = append(got, sc.Text())
		}
	})
	cmd := exec.Command("sh", "-c", `head -c 20000 /dev/zero | tr '\0' y; echo; echo after`)
	cmd.Stdout = s.WriteEnd()
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	for want := "after"; ; {
		select {
		case l := <-followed:
			if strings.TrimSuffix(l, "\n") == want {
				goto done
			}
		case <-ctx.Done():
			t.Fatalf("Follow did not see %q", want)
		}
	}
done:
	if l := s.LastLine(); l != "after" {
		t.Errorf("LastLine = %q", l)
	}
	s.Close()
	m.consoles.stdout.flush(deadline)
	pw.Close()
	wg.Wait()
	want := []string{"app | " + strings.Repeat("y", ConsoleLineMax), "app | " + strings.Repeat("y", 20000-ConsoleLineMax), "app | after"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %d lines (%v...), want the long line in 2 pieces and \"after\"", len(got), short(got))
	}
}

func short(ls []string) []string {
	var out []string
	for _, l := range ls {
		if len(l) > 40 {
			l = l[:40] + "..."
		}
		out = append(out, l)
	}
	return out
}

// waitLastLine waits (up to deadline) until the stream's last line starts
// with prefix.
func waitLastLine(t *testing.T, s *ConsoleStream, prefix string) {
	t.Helper()
	timeout := time.After(deadline)
	for {
		s.mu.Lock()
		notify := s.notify
		s.mu.Unlock()
		if strings.HasPrefix(s.LastLine(), prefix) {
			return
		}
		select {
		case <-notify:
		case <-timeout:
			t.Fatalf("after %s the last line of %s is %q, not %q...", deadline, s.name, s.LastLine(), prefix)
		}
	}
}
