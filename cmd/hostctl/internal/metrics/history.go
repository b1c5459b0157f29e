package metrics

import (
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

// DefaultHistoryInterval is Options.HistoryInterval's default.
const DefaultHistoryInterval = 30 * time.Second

// historySpan is how far back GET /v1/history reaches.
const historySpan = time.Hour

// maxHistoryPoints caps a program's ring when the interval is short (below
// historySpan/maxHistoryPoints = 5s the history covers less than an hour).
const maxHistoryPoints = 720

// history keeps the last samples of every process. The sampler goroutine
// (Metrics.sample) adds; requests read.
type history struct {
	interval time.Duration
	size     int           // points per program
	done     chan struct{} // closed when the sampler has ended (or will never start)

	mu      sync.Mutex // guards rings and sampled
	rings   map[string]*ring
	sampled chan struct{} // closed (and replaced) after each sample, for tests
}

// ring is a fixed-size ring of points; next is where the next one goes.
type ring struct {
	pts  []apitype.HistoryPoint
	next int
	full bool
}

func (r *ring) add(p apitype.HistoryPoint) {
	r.pts[r.next] = p
	r.next++
	if r.next == len(r.pts) {
		r.next, r.full = 0, true
	}
}

// points returns the points oldest first, in a new slice.
func (r *ring) points() []apitype.HistoryPoint {
	if !r.full {
		return append([]apitype.HistoryPoint{}, r.pts[:r.next]...)
	}
	return append(append(make([]apitype.HistoryPoint, 0, len(r.pts)), r.pts[r.next:]...), r.pts[:r.next]...)
}

func newHistory(interval time.Duration) *history {
	if interval <= 0 {
		interval = DefaultHistoryInterval
	}
	size := min(max(int(historySpan/interval), 2), maxHistoryPoints)
	return &history{interval: interval, size: size, done: make(chan struct{}),
		rings: map[string]*ring{}, sampled: make(chan struct{})}
}

// add records one sample of every process; processes not in progs are
// dropped.
func (h *history) add(progs []apitype.Process, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := make(map[string]bool, len(progs))
	for _, p := range progs {
		seen[p.Name] = true
		r := h.rings[p.Name]
		if r == nil {
			r = &ring{pts: make([]apitype.HistoryPoint, h.size)}
			h.rings[p.Name] = r
		}
		pt := apitype.HistoryPoint{T: now.Unix(), RSSBytes: p.RSSBytes, Restarts: p.Restarts, MemoryRestarts: p.MemoryRestarts, State: p.State}
		if p.Health != nil {
			pt.HealthRestarts = p.Health.Restarts
		}
		r.add(pt)
	}
	for name := range h.rings {
		if !seen[name] {
			delete(h.rings, name)
		}
	}
	close(h.sampled)
	h.sampled = make(chan struct{})
}

func (h *history) get() apitype.HistoryResponse {
	h.mu.Lock()
	defer h.mu.Unlock()
	res := apitype.HistoryResponse{IntervalSeconds: h.interval.Seconds(), Programs: make(map[string][]apitype.HistoryPoint, len(h.rings))}
	for name, r := range h.rings {
		res.Programs[name] = r.points()
	}
	return res
}

// next returns a channel closed after the next sample.
func (h *history) next() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sampled
}

// sample samples every process now and then every interval (one /proc
// scan each time) until Close.
func (m *Metrics) sample() {
	defer close(m.hist.done)
	t := time.NewTicker(m.hist.interval)
	defer t.Stop()
	for {
		if progs, err := m.opts.Processes(); err != nil {
			m.log.Warn("sampling the programs for the history", zap.Error(err))
		} else {
			m.hist.add(progs, time.Now())
		}
		select {
		case <-t.C:
		case <-m.ctx.Done():
			return
		}
	}
}
