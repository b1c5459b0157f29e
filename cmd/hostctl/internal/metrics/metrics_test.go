package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

func process(name string, st apitype.State) apitype.Process {
	return apitype.Process{ProcessStatus: apitype.ProcessStatus{Name: name, State: st}}
}

// TestHistory samples fixed processes every 50ms and reads the points
// back, oldest first; Close ends the sampler.
func TestHistory(t *testing.T) {
	web := process("web", apitype.Running)
	web.Restarts, web.MemoryRestarts, web.Health = 2, 1, &apitype.HealthStatus{Healthy: true, Restarts: 1}
	m := New(Options{HistoryInterval: 50 * time.Millisecond, Sources: Sources{
		Processes: func() ([]apitype.Process, error) {
			return []apitype.Process{web, process("worker", apitype.Fatal)}, nil
		},
	}})
	next := m.hist.next()
	m.Start()
	deadline := time.After(10 * time.Second)
	for range 3 {
		select {
		case <-next:
			next = m.hist.next()
		case <-deadline:
			t.Fatal("fewer than 3 samples within 10s at a 50ms interval")
		}
	}
	h := m.History()
	if h.IntervalSeconds != 0.05 {
		t.Errorf("interval_seconds = %v, want 0.05", h.IntervalSeconds)
	}
	points := h.Programs["web"]
	if len(points) < 3 || len(h.Programs["worker"]) < 3 {
		t.Fatalf("history = %+v, want at least 3 points per process", h.Programs)
	}
	if p := points[0]; p.Restarts != 2 || p.MemoryRestarts != 1 || p.HealthRestarts != 1 || p.State != apitype.Running || p.T == 0 {
		t.Errorf("web's first point = %+v", p)
	}
	for i := 1; i < len(points); i++ {
		if points[i].T < points[i-1].T {
			t.Errorf("points not oldest first: %+v", points)
		}
	}
	m.Close()
	select {
	case <-m.hist.done:
	default:
		t.Error("the sampler still runs after Close")
	}
	New(Options{}).Close() // never started: Close does not wait for it
}

// TestHistoryRing: a ring keeps the last size points, oldest first, and
// forgets processes that are gone.
func TestHistoryRing(t *testing.T) {
	h := newHistory(20 * time.Minute) // 3 points per hour
	if h.size != 3 {
		t.Fatalf("size = %d, want 3", h.size)
	}
	for i := range 5 {
		web := process("web", apitype.Running)
		web.Restarts = i
		h.add([]apitype.Process{web, process("old", apitype.Stopped)}, time.Unix(int64(i), 0))
	}
	h.add([]apitype.Process{process("web", apitype.Running)}, time.Unix(5, 0))
	got := h.get()
	var ts []int64
	for _, p := range got.Programs["web"] {
		ts = append(ts, p.T)
	}
	if len(ts) != 3 || ts[0] != 3 || ts[1] != 4 || ts[2] != 5 {
		t.Errorf("web's points at %v, want [3 4 5]", ts)
	}
	if _, ok := got.Programs["old"]; ok {
		t.Errorf("a removed process keeps its history")
	}
	if n := newHistory(time.Millisecond).size; n != maxHistoryPoints {
		t.Errorf("size at 1ms = %d, want the cap %d", n, maxHistoryPoints)
	}
}

// TestAlertMetrics: every condition is exported, 0 included, and every
// sink's counters.
func TestAlertMetrics(t *testing.T) {
	m := New(Options{Sources: Sources{
		Processes: func() ([]apitype.Process, error) { return nil, nil },
		Alerts: func() ([]apitype.Alert, []apitype.AlertSink) {
			return []apitype.Alert{{Condition: "fatal"}, {Condition: "fatal"}, {Condition: "from_a_newer_build"}},
				[]apitype.AlertSink{{Name: "ops", Sent: 3, Failed: 1, Queued: 2}}
		},
	}})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`hostctl_alerts_active{condition="fatal"} 2`,
		`hostctl_alerts_active{condition="disk_free"} 0`,
		`hostctl_alerts_active{condition="from_a_newer_build"} 1`,
		`hostctl_alerts_sent_total{sink="ops"} 3`,
		`hostctl_alerts_failed_total{sink="ops"} 1`,
		`hostctl_alerts_queued{sink="ops"} 2`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(rec.Body.String(), "hostctl_proxy_running") {
		t.Errorf("/metrics has the proxy without one")
	}
}
