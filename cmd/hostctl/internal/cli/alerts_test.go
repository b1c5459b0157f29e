package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
)

func TestAgo(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s ago"}, {40 * time.Second, "40s ago"}, {12*time.Minute + 59*time.Second, "12m ago"},
		{3*time.Hour + 5*time.Minute, "3h05m ago"}, {52 * time.Hour, "2d4h ago"},
	} {
		if got := ago(now.Add(-tc.d), now); got != tc.want {
			t.Errorf("ago(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestPrintAlerts(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fatal := apitype.Alert{Key: "fatal:web", Condition: alert.CondFatal, Program: "web", Severity: string(alert.Critical),
		Summary: "web is FATAL: gave up after 4 tries (exit 1: ImportError)", Command: "hostctl status web; hostctl tail web stderr",
		Since: now.Add(-12 * time.Minute)}
	disk := apitype.Alert{Key: "disk_free:/var/log", Condition: alert.CondDiskFree, Severity: string(alert.Warning),
		Summary: "/var/log has 8% free", Since: now.Add(-3*time.Hour - 5*time.Minute)}
	for _, tc := range []struct {
		name string
		res  apitype.AlertsResponse
		want string
	}{
		{"nothing", apitype.AlertsResponse{}, "no active alerts\n\n" + noSinksHelp + "\n"},
		{"alerts and sinks", apitype.AlertsResponse{
			Alerts: []apitype.Alert{fatal, disk},
			Sinks: []apitype.AlertSink{{Name: "oncall", Type: "pagerduty", Sent: 4, Failed: 1, Queued: 2, LastError: "HTTP 429: rate limited"},
				{Name: "team", Type: "slack", Sent: 3}},
		}, `SEVERITY  CONDITION  SINCE      SUMMARY
critical  fatal      12m ago    web is FATAL: gave up after 4 tries (exit 1: ImportError)
                                $ hostctl status web; hostctl tail web stderr
warning   disk_free  3h05m ago  /var/log has 8% free

SINK    TYPE       SENT  FAILED  QUEUED  LAST ERROR
oncall  pagerduty  4     1       2       HTTP 429: rate limited
team    slack      3     0       0       -
`},
		{"heartbeats", apitype.AlertsResponse{
			Heartbeats: []apitype.AlertHeartbeat{
				{Name: "hc", Kind: "healthchecks", Where: "https://hc-ping.com/…", IntervalSeconds: 60, OnAlert: "fail",
					LastPing: now.Add(-40 * time.Second), LastForm: "fail", NextDue: now.Add(20 * time.Second), Sent: 7, Failed: 2,
					LastError: "GET https://hc-ping.com/…: no answer within 10s"},
				{Name: "mine", Where: "https://mon.example.com/…", IntervalSeconds: 90, OnAlert: "pause"},
			},
		}, "no active alerts\n\n" + noSinksHelp + `

HEARTBEAT  KIND          URL                        EVERY  ON ALERT  LAST PING     NEXT    SENT  FAILED  LAST ERROR
hc         healthchecks  https://hc-ping.com/…      1m     fail      fail 40s ago  in 20s  7     2       GET https://hc-ping.com/…: no answer within 10s
mine       -             https://mon.example.com/…  1m30s  pause     -             -       0     0       -
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			printAlerts(&b, tc.res, now)
			if b.String() != tc.want {
				t.Errorf("printAlerts:\n%s\nwant:\n%s", b.String(), tc.want)
			}
		})
	}

	var b strings.Builder
	printAlertLines(&b, []apitype.Alert{fatal, disk}, now)
	want := `alerts: 2 active (hostctl alerts)
  critical 12m ago: web is FATAL: gave up after 4 tries (exit 1: ImportError)
  warning 3h05m ago: /var/log has 8% free
`
	if b.String() != want {
		t.Errorf("status alert lines:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if printAlertLines(&b, nil, now); b.Len() != 0 {
		t.Errorf("status alert lines without alerts: %q, want nothing", b.String())
	}
}

func TestPrintTestResults(t *testing.T) {
	var b strings.Builder
	failed := printTestResults(&b, []apitype.AlertTestResult{
		{Sink: "oncall", Type: "pagerduty", OK: true, Milliseconds: 120},
		{Sink: "team", Type: "slack", Error: "HTTP 404: no_service", Milliseconds: 80},
	})
	want := `SINK    TYPE       RESULT  TIME   ERROR
oncall  pagerduty  ok      120ms  -
team    slack      FAILED  80ms   HTTP 404: no_service
`
	if failed != 1 || b.String() != want {
		t.Errorf("printTestResults = %d:\n%q\nwant 1:\n%q", failed, b.String(), want)
	}
}
