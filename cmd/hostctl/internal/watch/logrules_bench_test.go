package watch

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/supervisor"
)

// benchRules are the 5 rules of make bench-logs: the README's setup for
// the handover guide (unknown errors at a rate, the four known ones at a
// higher rate) and three more of the kinds people write.
var benchRules = []alert.LogRule{
	{Name: "unknown-errors", Match: []string{`Traceback`, `ERROR`, `CRITICAL`}, Ignore: []string{`TimedOut`, `QueuePool`, `(?i)foreign ?key`, `Max retries exceeded with url`}, Threshold: "10/5m"},
	{Name: "known-errors", Match: []string{`TimedOut`, `QueuePool`, `ForeignKey`, `foreign key`, `Max retries exceeded with url`}, Threshold: "100/5m"},
	{Name: "celery", Programs: []string{"web"}, Match: []string{`celery\.worker.*(ERROR|CRITICAL)`}},
	{Name: "5xx", Match: []string{`status=5\d\d`}, Threshold: "50/1m"},
	{Name: "oom", Match: []string{`MemoryError`, `Cannot allocate memory`}},
}

// benchLine is a Django-like access log line that no rule matches, but
// that holds bytes of several needles (status=2xx against status=5\d\d).
const benchLine = "2026-11-25 20:30:00,123 INFO django.request GET /api/v1/items/123 status=200 bytes=5120 req=abc"

// BenchmarkCapture is log capture of a real writer (yes | head -c 64MB of
// benchLine) into a real logfile.Stream, with no log rules and with the 5
// rules matching behind the writer (scripts/bench/logs.sh runs both in
// turn: make bench-logs). MB/s and lines/s are until the file holds
// everything; cpu-% is this process's CPU (capture and matching, 100 = one
// core) over that time, cpu-ms/op the same per 64 MiB: on a busy machine
// MB/s follows the machine's load, CPU per byte much less. Matching that falls behind is dropped and counted
// (rule-dropped-B/op), never the output.
func BenchmarkCapture(b *testing.B) {
	const n = 64 << 20
	for _, k := range []int{0, 5} {
		b.Run(fmt.Sprintf("rules=%d", k), func(b *testing.B) {
			b.SetBytes(n)
			var dropped uint64
			cpu0 := cpuTime()
			for range b.N {
				var lr *logRules
				cancel := func() {}
				if k > 0 {
					lr, _ = newRules(b, benchRules[:k]...)
					lr.m = &lockedAlerts{a: &fakeAlerts{active: map[string]alert.Alert{}}}
					var ctx context.Context
					ctx, cancel = context.WithCancel(context.Background())
					go lr.run(ctx)
				}
				captureThroughRules(b, lr, benchLine, n)
				cancel()
				if lr != nil {
					dropped += lr.Dropped()
				}
			}
			elapsed := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)*n/float64(len(benchLine)+1)/elapsed, "lines/s")
			cpu := (cpuTime() - cpu0).Seconds()
			b.ReportMetric(cpu/elapsed*100, "cpu-%")
			b.ReportMetric(cpu*1000/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(dropped)/float64(b.N), "rule-dropped-B/op")
		})
	}
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMatch is the matcher alone (no capture): lines/s of 64 KiB
// chunks through 1 to 5 of the rules, for output that no rule matches
// (benchLine) and for output where 1 line in 100 is an error and 1 in
// 1000 starts a 6-line traceback. lines/cpu-s is per second of this
// process's CPU: on a busy machine it moves less than lines/s.
func BenchmarkMatch(b *testing.B) {
	var mixed strings.Builder
	for i := 0; mixed.Len() < 64<<10; i++ {
		switch {
		case i%1000 == 999:
			fmt.Fprintf(&mixed, djangoTraceback, i, "ValueError: bad order id")
		case i%100 == 99:
			fmt.Fprintf(&mixed, "2026-11-25 20:30:00,123 ERROR django.request Internal Server Error: /orders/%d/\n", i)
		default:
			mixed.WriteString(benchLine + "\n")
		}
	}
	for _, input := range []struct{ name, text string }{
		{"quiet", strings.Repeat(benchLine+"\n", (64<<10)/(len(benchLine)+1))},
		{"errors", mixed.String()},
	} {
		data := []byte(input.text)
		lines := strings.Count(input.text, "\n")
		for _, k := range []int{1, 5} {
			b.Run(fmt.Sprintf("%s/rules=%d", input.name, k), func(b *testing.B) {
				lr, _ := newRules(b, benchRules[:k]...)
				names := supervisor.ProcessNames{Process: "web", Program: "web", Group: "web"}
				b.SetBytes(int64(len(data)))
				cpu0 := cpuTime()
				for b.Loop() {
					lr.feed(chunk{key: streamKey{"web", "stderr"}, prog: names, b: data}, t0)
				}
				b.ReportMetric(float64(b.N*lines)/b.Elapsed().Seconds(), "lines/s")
				b.ReportMetric(float64(b.N*lines)/(cpuTime()-cpu0).Seconds(), "lines/cpu-s")
			})
		}
	}
}
