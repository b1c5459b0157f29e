package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkHundredPrograms (go test -run '^$' -bench . ./cmd/hostctl/e2e/)
// starts hostctl with 100 independent sleeping
// programs (start_secs 0) and reports the time until all are RUNNING, then
// hostctl's RSS (rss-anon: its own memory, without the mapped binary) and
// its CPU use while idle for 5 s, and its OS threads (each of the 200
// log streams must not hold one while its program is quiet).
func BenchmarkHundredPrograms(b *testing.B) {
	for i := 0; i < b.N; i++ {
		var progs strings.Builder
		for n := 0; n < 100; n++ {
			fmt.Fprintf(&progs, "[program.p%03d]\ncommand = \"/bin/sleep 100000\"\nstart_secs = \"0s\"\n", n)
		}
		t0 := time.Now()
		d := startDaemon(b, progs.String(), daemonOpts{noReady: true})
		waitRunning(b, d, 100, 60*time.Second)
		up := time.Since(t0)
		pid := d.cmd.Process.Pid
		cpu0 := cpuTicks(pid)
		time.Sleep(5 * time.Second) // the idle period being measured
		cpu1 := cpuTicks(pid)
		rss, anon := statusKB(pid, "VmRSS:"), statusKB(pid, "RssAnon:")
		threads := statusKB(pid, "Threads:")
		d.cmd.Process.Signal(syscall.SIGTERM)
		<-d.done
		b.ReportMetric(float64(up.Milliseconds()), "ms-to-100-running")
		b.ReportMetric(float64(rss)/1024, "rss-MB")
		b.ReportMetric(float64(anon)/1024, "rss-anon-MB")
		b.ReportMetric(float64(cpu1-cpu0)/100/5*100, "idle-cpu-%")
		b.ReportMetric(float64(threads), "threads")
	}
}

func waitRunning(b *testing.B, d *testDaemon, n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Count(d.log(), `"to":"RUNNING"`) >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("not %d RUNNING within %s", n, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func cpuTicks(pid int) int {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return u + st
}

// statusKB reads a number field of /proc/PID/status ("VmRSS:" and
// "RssAnon:" in kB, "Threads:").
func statusKB(pid int, field string) int {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	return 0
}
