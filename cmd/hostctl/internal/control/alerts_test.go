package control

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/client"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
)

// The daemon passes its *alert.Manager as Options.Alerts.
var _ Alerts = (*alert.Manager)(nil)

// fakeAlerts serves fixed alerts and sinks; Test answers results, or,
// when ended is set, blocks until its context ends and then closes ended.
type fakeAlerts struct {
	active  []alert.Alert
	sinks   []alert.SinkStatus
	results []alert.TestResult
	ended   chan struct{}
}

func (f *fakeAlerts) Active() []alert.Alert     { return f.active }
func (f *fakeAlerts) Sinks() []alert.SinkStatus { return f.sinks }
func (f *fakeAlerts) Test(ctx context.Context) []alert.TestResult {
	if f.ended != nil {
		<-ctx.Done()
		close(f.ended)
		return []alert.TestResult{{Sink: "slow", Type: "webhook", Error: ctx.Err().Error()}}
	}
	return f.results
}

func newFakeAlerts() *fakeAlerts {
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &fakeAlerts{
		active: []alert.Alert{
			{Key: "fatal:worker", Condition: alert.CondFatal, Program: "worker", Severity: alert.Critical,
				Summary: "worker is FATAL: exec: no such file", Command: "hostctl status worker", Since: since, Notified: 1},
			{Key: "disk_free:/var/log", Condition: alert.CondDiskFree, Severity: alert.Warning, Summary: "/var/log has 8% free", Since: since.Add(time.Minute)},
			{Key: "disk_free:/srv", Condition: alert.CondDiskFree, Severity: alert.Warning, Summary: "/srv has 9% free", Since: since.Add(2 * time.Minute)},
		},
		sinks: []alert.SinkStatus{
			{Name: "oncall", Type: alert.TypePagerDuty, Sent: 4, Failed: 1, Queued: 2, LastError: "HTTP 429"},
			{Name: "team", Type: alert.TypeSlack, Sent: 3},
		},
		results: []alert.TestResult{
			{Sink: "oncall", Type: alert.TypePagerDuty, OK: true, Milliseconds: 120},
			{Sink: "team", Type: alert.TypeSlack, Error: "HTTP 404: no_service", Milliseconds: 80},
		},
	}
}

func TestAlertsAPI(t *testing.T) {
	fa := newFakeAlerts()
	srv := httptest.NewServer(New(Options{Programs: newFake(), Alerts: fa}).Handler(false))
	defer srv.Close()
	c := &client.Client{URL: srv.URL}
	ctx := context.Background()

	res, err := c.Alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 3 || res.Alerts[0].Key != "fatal:worker" || res.Alerts[0].Command != "hostctl status worker" ||
		!res.Alerts[0].Since.Equal(fa.active[0].Since) || res.Alerts[0].Severity != string(alert.Critical) {
		t.Errorf("Alerts().Alerts = %+v", res.Alerts)
	}
	if len(res.Sinks) != 2 || res.Sinks[0] != apitype.AlertSink(fa.sinks[0]) {
		t.Errorf("Alerts().Sinks = %+v", res.Sinks)
	}

	tr, err := c.TestAlerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Results) != 2 || tr.Results[0] != apitype.AlertTestResult(fa.results[0]) || tr.Results[1] != apitype.AlertTestResult(fa.results[1]) {
		t.Errorf("TestAlerts() = %+v", tr.Results)
	}

	b := string(getBody(t, srv.URL+"/metrics"))
	for _, want := range []string{
		`hostctl_alerts_active{condition="fatal"} 1`,
		`hostctl_alerts_active{condition="disk_free"} 2`,
		`hostctl_alerts_active{condition="crash_loop"} 0`,
		`hostctl_alerts_sent_total{sink="oncall"} 4`,
		`hostctl_alerts_failed_total{sink="oncall"} 1`,
		`hostctl_alerts_queued{sink="oncall"} 2`,
		`hostctl_alerts_sent_total{sink="team"} 3`,
	} {
		if !strings.Contains(b, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	resp, err := http.Get(srv.URL + "/v1/alerts/test")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/alerts/test: %s, want 405", resp.Status)
	}
}

// TestAlertsWithoutManager: without Options.Alerts the list is empty (not
// null) and a test is refused as unavailable; /metrics has no alert series.
func TestAlertsWithoutManager(t *testing.T) {
	srv := httptest.NewServer(New(Options{Programs: newFake()}).Handler(false))
	defer srv.Close()
	if got := strings.Join(strings.Fields(string(getBody(t, srv.URL+"/v1/alerts"))), ""); got != `{"alerts":[],"sinks":[]}` {
		t.Errorf("GET /v1/alerts = %s", got)
	}
	_, err := (&client.Client{URL: srv.URL}).TestAlerts(context.Background())
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusServiceUnavailable || ae.Code != apitype.CodeUnavailable {
		t.Errorf("TestAlerts without a manager: %v, want a 503 unavailable", err)
	}
	if b := string(getBody(t, srv.URL+"/metrics")); strings.Contains(b, "hostctl_alerts_") {
		t.Errorf("/metrics has alert series without a manager")
	}
}

// TestAlertsTestEndsWithTheCaller: a test whose caller gives up ends (the
// sinks are told through the context) instead of running on to its cap.
func TestAlertsTestEndsWithTheCaller(t *testing.T) {
	fa := &fakeAlerts{ended: make(chan struct{})}
	srv := httptest.NewServer(New(Options{Programs: newFake(), Alerts: fa}).Handler(false))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := (&client.Client{URL: srv.URL}).TestAlerts(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("TestAlerts with a 200ms deadline: %v, want the deadline", err)
	}
	select {
	case <-fa.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("Test still runs 10s after its caller went away")
	}
}
