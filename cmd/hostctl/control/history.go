package control

import (
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/supervisor"
)

// DefaultHistoryInterval is Options.HistoryInterval's default.
const DefaultHistoryInterval = 30 * time.Second

// historySpan is how far back GET /v1/history reaches.
const historySpan = time.Hour

// maxHistoryPoints caps a program's ring when the interval is short (below
// historySpan/maxHistoryPoints = 5s the history covers less than an hour).
const maxHistoryPoints = 720

// HistoryPoint is one sample of a program.
type HistoryPoint struct {
	// T is when it was taken, in Unix seconds.
	T int64 `json:"t"`
	// RSSBytes is the resident memory of the process group (0 without a
	// process).
	RSSBytes uint64 `json:"rss_bytes"`
	// Restarts is the program's automatic restarts counter
	// (supervisor.Status.Restarts), which counts health and memory restarts
	// too: a restart happened between two points where it grew.
	Restarts int `json:"restarts"`
	// HealthRestarts and MemoryRestarts are the restarts for a failed
	// health check and for memory_limit, since the config was loaded: they
	// say why Restarts grew.
	HealthRestarts int `json:"health_restarts,omitempty"`
	MemoryRestarts int `json:"memory_restarts,omitempty"`
	// State is the program's state.
	State supervisor.State `json:"state"`
}

// HistoryResponse is the answer to GET /v1/history.
type HistoryResponse struct {
	// IntervalSeconds is the time between two samples.
	IntervalSeconds float64 `json:"interval_seconds"`
	// Programs has each program's samples, oldest first: the last hour
	// (at most 720 points). A program added by a reload starts empty; one
	// removed is gone.
	Programs map[string][]HistoryPoint `json:"programs"`
}

// history keeps the last samples of every program. The sampler goroutine
// (Server.sampleHistory) adds; requests read.
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
	pts  []HistoryPoint
	next int
	full bool
}

func (r *ring) add(p HistoryPoint) {
	r.pts[r.next] = p
	r.next++
	if r.next == len(r.pts) {
		r.next, r.full = 0, true
	}
}

// points returns the points oldest first, in a new slice.
func (r *ring) points() []HistoryPoint {
	if !r.full {
		return append([]HistoryPoint{}, r.pts[:r.next]...)
	}
	return append(append(make([]HistoryPoint, 0, len(r.pts)), r.pts[r.next:]...), r.pts[:r.next]...)
}

func newHistory(interval time.Duration) *history {
	if interval <= 0 {
		interval = DefaultHistoryInterval
	}
	size := min(max(int(historySpan/interval), 2), maxHistoryPoints)
	return &history{interval: interval, size: size, done: make(chan struct{}),
		rings: map[string]*ring{}, sampled: make(chan struct{})}
}

// add records one sample of every program; programs not in progs are
// dropped.
func (h *history) add(progs []Program, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := make(map[string]bool, len(progs))
	for _, p := range progs {
		seen[p.Name] = true
		r := h.rings[p.Name]
		if r == nil {
			r = &ring{pts: make([]HistoryPoint, h.size)}
			h.rings[p.Name] = r
		}
		pt := HistoryPoint{T: now.Unix(), RSSBytes: p.RSSBytes, Restarts: p.Restarts, MemoryRestarts: p.MemoryRestarts, State: p.State}
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

func (h *history) get() HistoryResponse {
	h.mu.Lock()
	defer h.mu.Unlock()
	res := HistoryResponse{IntervalSeconds: h.interval.Seconds(), Programs: make(map[string][]HistoryPoint, len(h.rings))}
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

// sampleHistory samples every program now and then every interval (one
// /proc scan each time) until Close.
func (s *Server) sampleHistory() {
	defer close(s.hist.done)
	t := time.NewTicker(s.hist.interval)
	defer t.Stop()
	for {
		if progs, err := s.snapshot(nil); err != nil {
			s.log.Warn("sampling the programs for the history", zap.Error(err))
		} else {
			s.hist.add(progs, time.Now())
		}
		select {
		case <-t.C:
		case <-s.ctx.Done():
			return
		}
	}
}

func (s *Server) getHistory(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.hist.get())
}
