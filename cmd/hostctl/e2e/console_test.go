package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConsoleStdout runs the real hostctl with programs whose stdout_log
// and stderr_log are "-", its stdout a pipe that nobody reads while the
// programs write lines as fast as they can. The programs are never held
// back (each gets to EXITED with the pipe full), what did not fit is
// dropped and counted in status, and what hostctl's stdout carries is
// whole lines, each under its own program's prefix.
func TestConsoleStdout(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	const lines = 20000
	prog := func(name string) string {
		return fmt.Sprintf(`
[program.%s]
command = ["awk", "-v", "n=%s", "BEGIN { pad = sprintf(\"%%100s\", \"\"); gsub(/ /, \"x\", pad); for (i = 0; i < %d; i++) printf \"%%s %%d %%s\\n\", n, i, pad }"]
autorestart = "never"
start_secs = "0s"
stdout_log = "-"
stderr_log = "-"
`, name, name, lines)
	}
	names := []string{"web", "worker", "scheduler"}
	var programs strings.Builder
	for _, n := range names {
		programs.WriteString(prog(n))
	}
	d := startDaemon(t, programs.String(), daemonOpts{stdout: pw})
	pw.Close() // the daemon has its own copy

	// Nobody reads hostctl's stdout: every program must still finish.
	for _, n := range names {
		d.waitLog(t, 60*time.Second, `"msg":"state"`, `"program":"`+n+`"`, `"to":"EXITED"`)
	}
	st := d.status(t)
	var dropped uint64
	for _, n := range names {
		if string(st[n].State) != "EXITED" {
			t.Errorf("%s is %s", n, st[n].State)
		}
		dropped += st[n].DroppedLogBytes
	}
	if dropped == 0 {
		t.Errorf("status counts no dropped output although nobody read hostctl's stdout")
	}

	var got []string
	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			got = append(got, sc.Text())
		}
	})
	d.stop()
	wg.Wait()
	re := regexp.MustCompile(`^(\S+) +\| (?:(\S+) (\d+) x{100}|\[hostctl: dropped \d+ lines \(\d+ bytes in all so far\) of output: hostctl's stdout is slow\])$`)
	count := 0
	for _, l := range got {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("hostctl's stdout has a line that is not whole and prefixed: %q", l)
		}
		if m[2] != "" && m[2] != m[1] {
			t.Fatalf("%s's line under %s's prefix: %q", m[2], m[1], l)
		}
		if m[2] != "" {
			count++
		}
	}
	if count == 0 || count == len(names)*lines {
		t.Errorf("%d of %d lines on stdout (%d bytes counted as dropped)", count, len(names)*lines, dropped)
	}
	t.Logf("%d of %d lines on stdout, %d bytes dropped", count, len(names)*lines, dropped)
}

// TestCheckMachine: hostctl check says when every problem is with this
// machine (a config written for another one), and not otherwise.
func TestCheckMachine(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hostctl.toml")
	body := "[program.web]\ncommand = \"/nonexistent/hct-check/bin/gunicorn app.wsgi\"\ndirectory = \"/nonexistent/hct-check\"\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	const says = "every problem above is with this machine"
	r := runHostctl(t, "check", "-c", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, says) {
		t.Errorf("check of a config for another machine: exit %d\n%s", r.code, r.stderr)
	}
	if err := os.WriteFile(cfg, []byte(body+"stop_signal = \"NOPE\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runHostctl(t, "check", "-c", cfg)
	if r.code != 1 || strings.Contains(r.stderr, says) {
		t.Errorf("check of a wrong config: exit %d\n%s", r.code, r.stderr)
	}
}
