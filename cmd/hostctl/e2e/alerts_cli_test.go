package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/control"
	"github.com/hostctl/hostctl/supervisor"
)

// stillPrograms is a supervisor whose one program, web, runs.
type stillPrograms struct{}

func (stillPrograms) Resolve(names ...string) ([]string, error) { return []string{"web"}, nil }
func (stillPrograms) Status(names ...string) ([]supervisor.Status, error) {
	return []supervisor.Status{{Name: "web", State: supervisor.Running, PID: os.Getpid(), Autostart: true, StartedAt: time.Now()}}, nil
}
func (stillPrograms) Dropped(string) uint64                                            { return 0 }
func (stillPrograms) Log(string, string) (supervisor.LogStream, error)                 { return nil, nil }
func (stillPrograms) StartProcesses(context.Context, ...string) error                  { return nil }
func (stillPrograms) StopProcesses(context.Context, ...string) error                   { return nil }
func (stillPrograms) RestartProcesses(context.Context, ...string) error                { return nil }
func (stillPrograms) SignalProcesses(context.Context, syscall.Signal, ...string) error { return nil }
func (p stillPrograms) WaitFor(_ context.Context, _ string, _ func(supervisor.Status) bool) (supervisor.Status, error) {
	sts, _ := p.Status()
	return sts[0], nil
}

// fixedAlerts is an alert manager with fixed alerts, sinks and test results.
type fixedAlerts struct {
	active  []alert.Alert
	sinks   []alert.SinkStatus
	results []alert.TestResult
	beats   []alert.HeartbeatStatus
}

func (f fixedAlerts) Active() []alert.Alert                   { return f.active }
func (f fixedAlerts) Sinks() []alert.SinkStatus               { return f.sinks }
func (f fixedAlerts) Test(context.Context) []alert.TestResult { return f.results }
func (f fixedAlerts) Heartbeats() []alert.HeartbeatStatus     { return f.beats }

// serveAPI serves the admin API with a on a unix socket and returns it.
func serveAPI(t *testing.T, a control.Alerts) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hca") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "h.sock")
	l, err := control.ListenUnix(socket, -1)
	if err != nil {
		t.Fatal(err)
	}
	s := control.New(control.Options{Programs: stillPrograms{}, Alerts: a})
	s.ServeUnix(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Close(ctx)
		os.RemoveAll(dir)
	})
	return socket
}

// TestAlertsCommands runs hostctl alerts, alerts test and status against
// the admin API serving a fixed alert manager: what each prints and its
// exit status.
func TestAlertsCommands(t *testing.T) {
	// Since is set as each case starts (below).
	fatal := alert.Alert{Key: "fatal:worker", Condition: alert.CondFatal, Program: "worker", Severity: alert.Critical,
		Summary: "worker is FATAL: gave up after 4 tries", Command: "hostctl tail worker stderr"}
	oncall := alert.SinkStatus{Name: "oncall", Type: alert.TypePagerDuty, Sent: 4, Failed: 1, LastError: "HTTP 429"}
	team := alert.SinkStatus{Name: "team", Type: alert.TypeSlack, Sent: 3}
	ok := alert.TestResult{Sink: "oncall", Type: alert.TypePagerDuty, OK: true, Milliseconds: 120}
	bad := alert.TestResult{Sink: "team", Type: alert.TypeSlack, Error: "HTTP 404: no_service", Milliseconds: 80}

	for _, tc := range []struct {
		name     string
		alerts   control.Alerts
		args     []string
		code     int
		want     []string // in stdout, in this order
		wantErr  string   // in stderr
		dontWant string   // not in stdout
	}{
		{"alerts", fixedAlerts{active: []alert.Alert{fatal}, sinks: []alert.SinkStatus{oncall, team}}, []string{"alerts"}, 0,
			[]string{"SEVERITY", "critical  fatal      12m ago  worker is FATAL: gave up after 4 tries", "$ hostctl tail worker stderr",
				"SINK", "oncall  pagerduty  4     1       0       HTTP 429", "team    slack      3     0       0       -"}, "", ""},
		{"no alerts, no sinks", fixedAlerts{}, []string{"alerts"}, 0, []string{"no active alerts", "[[alerts.sink]]"}, "", ""},
		{"test: all ok", fixedAlerts{results: []alert.TestResult{ok}}, []string{"alerts", "test"}, 0,
			[]string{"oncall  pagerduty  ok      120ms"}, "", ""},
		{"test: one failed", fixedAlerts{results: []alert.TestResult{ok, bad}}, []string{"alerts", "test"}, 1,
			[]string{"oncall", "team    slack      FAILED  80ms   HTTP 404: no_service"}, "1 of 2 sinks failed", ""},
		{"test: no sinks", fixedAlerts{}, []string{"alerts", "test"}, 1, nil, "[[alerts.sink]]", ""},
		{"test: no alert manager", nil, []string{"alerts", "test"}, 1, nil, "alerts are not available", ""},
		{"status ends with the alerts", fixedAlerts{active: []alert.Alert{fatal}}, []string{"status"}, 0,
			[]string{"web", "proxy: not configured", "alerts: 1 active (hostctl alerts)", "  critical 12m ago: worker is FATAL: gave up after 4 tries"}, "", ""},
		{"status of a name: no alerts block", fixedAlerts{active: []alert.Alert{fatal}}, []string{"status", "web"}, 0, []string{"web"}, "", "alerts:"},
		{"status without alerts: no block", fixedAlerts{}, []string{"status"}, 0, []string{"web"}, "", "alerts:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// 12m30s ago as the case starts: "12m ago" for the next 30s,
			// however long the cases before it took on a busy machine.
			if fa, ok := tc.alerts.(fixedAlerts); ok {
				fa.active = slices.Clone(fa.active)
				for i := range fa.active {
					fa.active[i].Since = time.Now().Add(-12*time.Minute - 30*time.Second)
				}
				tc.alerts = fa
			}
			socket := serveAPI(t, tc.alerts)
			r := runHostctl(t, append(tc.args, "--socket", socket)...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			rest := r.stdout
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("stdout lacks %q (after what came before):\n%s", w, r.stdout)
					break
				}
				rest = rest[i+len(w):]
			}
			if tc.wantErr != "" && !strings.Contains(r.stderr, tc.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantErr, r.stderr)
			}
			if tc.dontWant != "" && strings.Contains(r.stdout, tc.dontWant) {
				t.Errorf("stdout has %q:\n%s", tc.dontWant, r.stdout)
			}
		})
	}
}
