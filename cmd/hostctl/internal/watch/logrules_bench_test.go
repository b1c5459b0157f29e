package watch

import (
	"context"
	"testing"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
)

// BenchmarkCapture is log capture of a real writer (yes | head -c 64MB of
// a ~100-byte Django-like log line) into a real logfile.Stream,
// with no log rules and with 5 rules matching behind the writer
// (scripts/bench/logs.sh prints both: make bench-logs). MB/s is until the
// file holds everything; matching that falls behind is dropped and
// counted (rule-dropped-B/op), never the output.
func BenchmarkCapture(b *testing.B) {
	rules := []alert.LogRule{
		{Name: "unknown-errors", Match: []string{`Traceback`, `ERROR`, `CRITICAL`}, Ignore: []string{`TimedOut`, `QueuePool`, `(?i)foreign ?key`, `Max retries exceeded with url`}, Threshold: "10/5m"},
		{Name: "known-errors", Match: []string{`TimedOut`, `QueuePool`, `ForeignKey`, `foreign key`, `Max retries exceeded with url`}, Threshold: "100/5m"},
		{Name: "celery", Programs: []string{"web"}, Match: []string{`celery\.worker.*(ERROR|CRITICAL)`}},
		{Name: "5xx", Match: []string{`status=5\d\d`}, Threshold: "50/1m"},
		{Name: "oom", Match: []string{`MemoryError`, `Cannot allocate memory`}},
	}
	const n = 64 << 20
	line := "2026-11-25 20:30:00,123 INFO django.request GET /api/v1/items/123 status=200 bytes=5120 req=abc"
	for _, k := range []int{0, 5} {
		b.Run(map[int]string{0: "rules=0", 5: "rules=5"}[k], func(b *testing.B) {
			b.SetBytes(n)
			var dropped uint64
			for range b.N {
				var lr *logRules
				cancel := func() {}
				if k > 0 {
					lr, _ = newRules(b, rules[:k]...)
					lr.m = &lockedAlerts{a: &fakeAlerts{active: map[string]alert.Alert{}}}
					var ctx context.Context
					ctx, cancel = context.WithCancel(context.Background())
					go lr.run(ctx)
				}
				captureThroughRules(b, lr, line, n)
				cancel()
				if lr != nil {
					dropped += lr.Dropped()
				}
			}
			b.ReportMetric(float64(dropped)/float64(b.N), "rule-dropped-B/op")
		})
	}
}
