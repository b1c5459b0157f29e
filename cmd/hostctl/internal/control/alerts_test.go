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
	beats   []alert.HeartbeatStatus
	ended   chan struct{}
}

func (f *fakeAlerts) Active() []alert.Alert               { return f.active }
func (f *fakeAlerts) Sinks() []alert.SinkStatus           { return f.sinks }
func (f *fakeAlerts) Heartbeats() []alert.HeartbeatStatus { return f.beats }
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
		beats: []alert.HeartbeatStatus{
			{Name: "hc", Kind: alert.KindHealthchecks, Where: "https://hc-ping.com/…", Interval: time.Minute, OnAlert: alert.OnAlertFail,
				LastPing: since, LastForm: alert.FormFail, NextDue: since.Add(time.Minute), Sent: 7, Failed: 2, LastError: "GET https://hc-ping.com/…: no answer within 10s"},
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
	want := apitype.AlertHeartbeat{Name: "hc", Kind: "healthchecks", Where: "https://hc-ping.com/…", IntervalSeconds: 60, OnAlert: "fail",
		LastPing: fa.beats[0].LastPing, LastForm: "fail", NextDue: fa.beats[0].NextDue, Sent: 7, Failed: 2, LastError: fa.beats[0].LastError}
	if len(res.Heartbeats) != 1 {
		t.Fatalf("Alerts().Heartbeats = %+v", res.Heartbeats)
	}
	// Times compare with Equal (the wire drops the monotonic clock).
	got := res.Heartbeats[0]
	if !got.LastPing.Equal(want.LastPing) || !got.NextDue.Equal(want.NextDue) {
		t.Errorf("Alerts().Heartbeats[0] times = %v, %v", got.LastPing, got.NextDue)
	}
	got.LastPing, got.NextDue = want.LastPing, want.NextDue
	if got != want {
		t.Errorf("Alerts().Heartbeats[0] = %+v, want %+v", got, want)
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
		`hostctl_heartbeat_pings_total{heartbeat="hc"} 7`,
		`hostctl_heartbeat_failed_total{heartbeat="hc"} 2`,
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
	if got := strings.Join(strings.Fields(string(getBody(t, srv.URL+"/v1/alerts"))), ""); got != `{"alerts":[],"sinks":[],"heartbeats":[]}` {
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
