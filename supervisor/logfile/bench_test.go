package logfile

import (
	"path/filepath"
	"testing"
)

// BenchmarkCapture measures a Stream capturing 64 KiB writes from its
// pipe into a rotating file (the full path: pipe, ring, lumberjack).
// scripts/bench/logs.sh compares it with /dev/null and supervisord.
func BenchmarkCapture(b *testing.B) {
	for _, tc := range []struct {
		name       string
		timestamps bool
	}{{"raw", false}, {"timestamps", true}} {
		b.Run(tc.name, func(b *testing.B) {
			m, _ := testManager(b, nil)
			s, err := m.Open(filepath.Join(m.cfg.Dir, "bench.log"), Rotation{MaxSize: 50e6, MaxBackups: 2}, tc.timestamps)
			if err != nil {
				b.Fatal(err)
			}
			block := make([]byte, 64<<10)
			for i := range block {
				block[i] = 'a' + byte(i%26)
				if i%100 == 99 {
					block[i] = '\n'
				}
			}
			w := s.WriteEnd()
			b.SetBytes(int64(len(block)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := w.Write(block); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(s.Dropped())/float64(b.N*len(block))*100, "%dropped")
		})
	}
}

// BenchmarkWrite measures in-process writes of 100-byte lines (hostctl's
// own log, access logs).
func BenchmarkWrite(b *testing.B) {
	m, _ := testManager(b, nil)
	s, err := m.Open(filepath.Join(m.cfg.Dir, "w.log"), Rotation{MaxSize: 50e6, MaxBackups: 2}, false)
	if err != nil {
		b.Fatal(err)
	}
	line := []byte("2026-11-25T20:30:00.000Z INFO request method=GET path=/api/v1/items/42 status=200 bytes=512 ok\n")
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		s.Write(line)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
}
