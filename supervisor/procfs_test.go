package supervisor

import (
	"bufio"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// TestPgroupUsageSumsTheWholePgroup: every live process of a pgroup counts.
func TestPgroupUsageSumsTheWholePgroup(t *testing.T) {
	// The shell says "ready" after forking both sleeps.
	cmd := exec.Command("/bin/sh", "-c", "sleep 100 & sleep 100 & echo ready; wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() }()
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	u := PgroupUsage(map[int]bool{pgid: true})[pgid]
	if u.Procs != 3 || u.RSS == 0 {
		t.Errorf("pgroup %d: %d processes, rss %d; want 3 processes and some memory", pgid, u.Procs, u.RSS)
	}
	if got := PgroupUsage(map[int]bool{}); len(got) != 0 {
		t.Errorf("scan for no pgroup: %v", got)
	}
}

// BenchmarkPgroupUsage is one /proc scan, the fixed cost of every status
// request and metrics scrape.
func BenchmarkPgroupUsage(b *testing.B) {
	want := map[int]bool{os.Getpid(): true}
	for b.Loop() {
		PgroupUsage(want)
	}
}
