package control

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/client"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/check"
)

// GET /v1/checks and /metrics carry every check as the manager has it;
// without checks the list is empty, not null.
func TestChecksAPI(t *testing.T) {
	since := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	sts := []check.Status{
		{Name: "db", Target: "tcp db:5432", State: check.Down, Since: since, Failing: 3, Failures: 3,
			LastError: "connect db:5432: connection refused", LastErrorAt: since.Add(time.Minute), LastCheck: since.Add(time.Minute),
			LastDuration: 1500 * time.Millisecond, Probes: 10, ProbeFailures: 3, Interval: 30 * time.Second, Severity: alert.Critical, Notes: "Postgres"},
		{Name: "search", Target: "GET http://search:9200/_cluster/health", State: check.Up, Since: since, Failures: 3, Probes: 10, Severity: alert.Error},
	}
	srv := httptest.NewServer(New(Options{Programs: newFake(), Checks: func() []check.Status { return sts }}).Handler(false))
	defer srv.Close()
	got, err := (&client.Client{URL: srv.URL}).Checks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := apitype.Check{Name: "db", Target: "tcp db:5432", State: apitype.CheckDown, Since: since, Failing: 3, Failures: 3,
		LastError: "connect db:5432: connection refused", LastErrorAt: since.Add(time.Minute), LastCheck: since.Add(time.Minute),
		LastDurationSeconds: 1.5, Probes: 10, ProbeFailures: 3, IntervalSeconds: 30, Severity: "critical", Notes: "Postgres"}
	if len(got) != 2 || got[0] != want || got[1].State != apitype.CheckUp {
		t.Errorf("Checks() = %+v", got)
	}
	b := string(getBody(t, srv.URL+"/metrics"))
	for _, w := range []string{
		`hostctl_check_up{check="db"} 0`,
		`hostctl_check_up{check="search"} 1`,
		`hostctl_check_probe_duration_seconds{check="db"} 1.5`,
		`hostctl_check_probes_total{check="db"} 10`,
		`hostctl_check_failures_total{check="db"} 3`,
	} {
		if !strings.Contains(b, w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}

	none := httptest.NewServer(New(Options{Programs: newFake()}).Handler(false))
	defer none.Close()
	if got := strings.Join(strings.Fields(string(getBody(t, none.URL+"/v1/checks"))), ""); got != `{"checks":[]}` {
		t.Errorf("GET /v1/checks without checks = %s", got)
	}
	if b := string(getBody(t, none.URL+"/metrics")); strings.Contains(b, "hostctl_check_") {
		t.Errorf("/metrics has check series without checks")
	}
}
