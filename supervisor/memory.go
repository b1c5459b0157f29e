package supervisor

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/supervisor/logfile"
)

// DefaultMemoryCheckInterval is how often the memory of programs with a
// memory_limit is measured, unless Options.MemoryCheckInterval says
// otherwise.
const DefaultMemoryCheckInterval = 5 * time.Second

// memoryChecksOver is how many checks in a row must find a program above
// its memory_limit before it is restarted: one high reading may be a
// short peak (a request that builds a big response), two are not.
const memoryChecksOver = 2

// sampleMemory is the one memory sampler of the supervisor. Every interval
// it reads /proc once for all RUNNING programs with a memory_limit (the
// cost grows with the processes on the machine, not with the programs)
// and sends each program what its process group uses. The owners only
// compare a number: no owner goroutine ever waits for /proc.
func (s *Supervisor) sampleMemory(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.measureMemory()
		}
	}
}

func (s *Supervisor) measureMemory() {
	s.mu.Lock()
	var limited []*process
	for _, p := range s.procs {
		if p.cfg.Program.MemoryLimit > 0 {
			limited = append(limited, p)
		}
	}
	s.mu.Unlock()
	pgids := map[int]bool{}
	measured := map[*process]int{}
	for _, p := range limited {
		if st, _ := p.watch.get(); st.State == Running && st.PID > 0 {
			pgids[st.PID] = true
			measured[p] = st.PID
		}
	}
	if len(pgids) == 0 {
		return
	}
	usage := PgroupUsage(pgids)
	for p, pid := range measured {
		p.send(event{kind: evMemory, pid: pid, rss: usage[pid].RSS})
	}
}

// memoryMeasured compares what process group pid uses with memory_limit
// and restarts the program after memoryChecksOver checks in a row above
// it. A measure of an earlier process (sampled before a restart) is
// dropped.
func (p *process) memoryMeasured(pid int, rss uint64) {
	limit := p.cfg.Program.MemoryLimit
	if limit <= 0 || p.state != Running || p.child == nil || p.child.pid != pid {
		return
	}
	used, lim := logfile.FormatSize(int64(rss)), logfile.FormatSize(limit)
	fields := []zap.Field{zap.Uint64("rss_bytes", rss), zap.Int64("memory_limit_bytes", limit)}
	if rss <= uint64(limit) {
		if p.memOver > 0 {
			p.log.Info(fmt.Sprintf("memory %s back below memory_limit %s", used, lim), fields...)
		}
		p.memOver = 0
		if time.Since(p.runningSince) >= p.resetAfter() {
			// A fresh process is always small: only one that stayed
			// below the limit as long as backoff.reset_after asks of a
			// crashing one has stopped needing restarts.
			p.memRuns = 0
		}
		return
	}
	p.memOver++
	if p.memOver < memoryChecksOver {
		p.log.Warn(fmt.Sprintf("memory %s above memory_limit %s (check %d of %d)", used, lim, p.memOver, memoryChecksOver), fields...)
		return
	}
	p.memRuns++
	p.memRestarts++
	p.memLastRSS = rss
	p.restarts++
	p.dirty = true
	p.info = fmt.Sprintf("restarting: memory %s above memory_limit %s", used, lim)
	p.log.Warn(fmt.Sprintf("memory %s above memory_limit %s for %d checks: restarting", used, lim, p.memOver),
		append(fields, zap.Int("memory_restarts_in_a_row", p.memRuns))...)
	p.restartAfter, p.checkRestart = true, causeMemory
	p.stop()
}
