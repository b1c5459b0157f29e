package supervisor

import (
	"context"
	"sort"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRespawn measures the time from a crash (kill -9 of a RUNNING
// program) to its replacement being spawned. supervisord ticks once a
// second; hostctl reacts to SIGCHLD.
func BenchmarkRespawn(b *testing.B) {
	p := DefaultProgramConfig("victim")
	p.Command = Command{"/bin/sleep", "1000"}
	p.StartSecs = 0
	p.Backoff.ResetAfter = time.Nanosecond // every crash is a "first" crash: restart at once
	s, err := New([]*ProgramConfig{&p}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	s.Start()
	defer s.Shutdown(context.Background())
	ctx := context.Background()
	s.StartProcesses(ctx, "victim")
	st, _ := s.WaitFor(ctx, "victim", func(st Status) bool { return st.State == Running })
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		old := st.PID
		t0 := time.Now()
		syscall.Kill(old, syscall.SIGKILL)
		st, _ = s.WaitFor(ctx, "victim", func(st Status) bool { return st.PID != 0 && st.PID != old })
		lat = append(lat, st.StartedAt.Sub(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
