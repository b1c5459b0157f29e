package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

func TestUntilNext(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "now"}, {1440 * time.Millisecond, "1.4s"}, {42*time.Second + 900*time.Millisecond, "42s"},
		{4*time.Minute + 12*time.Second + 999*time.Millisecond, "4m12s"}, {5 * time.Minute, "5m"},
		{time.Hour - 400*time.Millisecond, "59m59s"}, {time.Hour, "1h"}, {time.Hour + 30*time.Minute, "1h30m"},
	} {
		if got := untilNext(now.Add(tc.d), now); got != tc.want {
			t.Errorf("untilNext(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestDescribe(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	prog := func(st apitype.ProcessStatus) apitype.Process {
		if st.Name == "" {
			st.Name = "web"
		}
		return apitype.Process{ProcessStatus: st}
	}
	for _, tc := range []struct {
		name string
		p    apitype.Process
		want string
	}{
		{"running shows the description", prog(apitype.ProcessStatus{State: apitype.Running, Description: "the app"}), "the app"},
		{"fatal after tries, retry due", prog(apitype.ProcessStatus{
			State: apitype.Fatal, Tries: 4, LastExit: &apitype.ExitStatus{Code: 1},
			LastStderr: "ImportError: No module named 'app'", NextStart: now.Add(4*time.Minute + 12*time.Second + 300*time.Millisecond),
			SpawnErr: "exited too quickly (exit status 1) 4 times in a row; fix it, then `hostctl start web`",
		}), "gave up after 4 tries that exited too quickly (exit 1: ImportError: No module named 'app'); next try in 4m12s; more: hostctl tail web stderr"},
		{"fatal, killed, nothing on stderr", prog(apitype.ProcessStatus{
			State: apitype.Fatal, Tries: 2, LastExit: &apitype.ExitStatus{Code: 137, Signal: "KILL"}, NextStart: now.Add(2 * time.Second),
		}), "gave up after 2 tries that exited too quickly (SIGKILL); next try in 2s"},
		{"fatal spawn error, never retried", prog(apitype.ProcessStatus{State: apitype.Fatal, SpawnErr: `cannot execute "/srv/app": no such file or directory`}),
			"cannot execute \"/srv/app\": no such file or directory; no retry (fatal_retry = \"never\"): fix it, then `hostctl start web`"},
		{"backoff shows the last stderr line", prog(apitype.ProcessStatus{
			State: apitype.Backoff, NextStart: now.Add(1400 * time.Millisecond), Info: "exited too quickly (exit status 1); retry 1/3",
			LastStderr: "redis: connection refused",
		}), "next try in 1.4s; exited too quickly (exit status 1); retry 1/3; stderr: redis: connection refused; more: hostctl tail web stderr"},
		{"running, healthy, with a description", prog(apitype.ProcessStatus{State: apitype.Running, Description: "the app",
			Health: &apitype.HealthStatus{Healthy: true}}), "healthy; the app"},
		{"running, one failed check", prog(apitype.ProcessStatus{State: apitype.Running,
			Health: &apitype.HealthStatus{Healthy: true, Failures: 1, LastError: "GET /healthz: connection refused"}}),
			"healthy (1 failed check: GET /healthz: connection refused)"},
		{"restarting for health", prog(apitype.ProcessStatus{State: apitype.Stopping, Info: "restarting: health check failed",
			Health: &apitype.HealthStatus{Failures: 3, LastError: "GET /healthz: 500", Restarts: 1}}),
			"unhealthy (3 failures: GET /healthz: 500); restarting: health check failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describe(tc.p, now); got != tc.want {
				t.Errorf("describe:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestMemoryColumn(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    apitype.Process
		want string
	}{
		{"no limit", apitype.Process{ProcessStatus: apitype.ProcessStatus{PID: 7}, RSSBytes: 410 << 20}, "410.0M"},
		{"no limit, no process", apitype.Process{}, "-"},
		{"against the limit", apitype.Process{ProcessStatus: apitype.ProcessStatus{PID: 7, MemoryLimit: 512e6}, RSSBytes: 410e6}, "410M/512M"},
		{"above it, in decimal units like the limit", apitype.Process{ProcessStatus: apitype.ProcessStatus{PID: 7, MemoryLimit: 512e6}, RSSBytes: 612_340_000}, "612.3M/512M"},
		{"a limit, no process", apitype.Process{ProcessStatus: apitype.ProcessStatus{MemoryLimit: 1.5e9}}, "-/1.5G"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fmtMemory(tc.p); got != tc.want {
				t.Errorf("fmtMemory = %q, want %q", got, tc.want)
			}
		})
	}
	var b strings.Builder
	printStatus(&b, []apitype.Process{{ProcessStatus: apitype.ProcessStatus{Name: "web", State: apitype.Running, PID: 7, MemoryLimit: 512e6}, RSSBytes: 410e6}}, time.Now())
	if !strings.Contains(b.String(), " 410M/512M ") {
		t.Errorf("status table lacks the MEMORY cell 410M/512M:\n%s", b.String())
	}
}

// TestPoolAndDrainLines: status shows a pool of several upstreams one
// line each, with why one is out, and a DRAINING line while draining;
// a single upstream only while it is held (draining), with the requests
// held; nothing when not draining.
func TestPoolAndDrainLines(t *testing.T) {
	var b strings.Builder
	printPool(&b, []apitype.ProxyUpstreamStatus{{Address: "unix:/run/app.sock", Healthy: true}})
	if b.Len() != 0 {
		t.Errorf("one upstream: %q, want nothing", b.String())
	}
	printPool(&b, []apitype.ProxyUpstreamStatus{
		{Address: "10.0.0.11:80", Fails: 7, Down: "7 failed requests within 10s"},
		{Address: "10.0.0.12:80", Healthy: true, Requests: 3},
		{Address: "127.0.0.1:8001", Healthy: true, Requests: 2, Draining: true},
		{Address: "127.0.0.1:8002", Down: "health check failing", Draining: true},
	})
	want := "" +
		"  UPSTREAM        STATE     IN FLIGHT  FAILS  WHY\n" +
		"  10.0.0.11:80    DOWN      0          7      7 failed requests within 10s\n" +
		"  10.0.0.12:80    up        3          0      \n" +
		"  127.0.0.1:8001  draining  2          0      \n" +
		"  127.0.0.1:8002  draining  0          0      health check failing\n"
	if b.String() != want {
		t.Errorf("pool:\n%s\nwant:\n%s", b.String(), want)
	}

	// A single upstream shows while it is held before its program stops.
	b.Reset()
	printPool(&b, []apitype.ProxyUpstreamStatus{{Address: "unix:/run/app.sock", Healthy: true, Requests: 1, Draining: true, Held: 4}})
	want = "" +
		"  UPSTREAM            STATE     IN FLIGHT  FAILS  WHY\n" +
		"  unix:/run/app.sock  draining  1          0      4 requests held\n"
	if b.String() != want {
		t.Errorf("held single upstream:\n%s\nwant:\n%s", b.String(), want)
	}

	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.Local)
	since, last := now.Add(-90*time.Second), now.Add(-1500*time.Millisecond)
	b.Reset()
	printDrain(&b, &apitype.DrainStatus{HealthPath: "/.hostctl/health"}, now)
	printDrain(&b, nil, now)
	if b.Len() != 0 {
		t.Errorf("not draining: %q, want nothing", b.String())
	}
	printDrain(&b, &apitype.DrainStatus{Draining: true, Since: &since, HealthPath: "/.hostctl/health", LastRequest: &last, InFlight: 2}, now)
	if want := "DRAINING since 09:58:30 (1m30s ago): /.hostctl/health answers 503; last request 1.5s ago, 2 in flight; hostctl undrain ends it\n"; b.String() != want {
		t.Errorf("draining: %q, want %q", b.String(), want)
	}
}

// The Checks section: state, since, the last probe, the target and the
// last error (with the count while failing, its age once up again); names
// split into checks and programs.
func TestChecksSection(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.Local)
	checks := []apitype.Check{
		{Name: "db", Target: "tcp db:5432", State: apitype.CheckDown, Since: now.Add(-4 * time.Minute), Failing: 3, Failures: 3,
			LastError: "connect db:5432: connection refused", LastCheck: now, LastDurationSeconds: 0.0021, Notes: "Postgres: restart it on the db host"},
		{Name: "search", Target: "GET http://search:9200/_cluster/health", State: apitype.CheckUp, Since: now.Add(-2 * time.Hour),
			LastError: "GET /_cluster/health: 503", LastErrorAt: now.Add(-2*time.Hour - 30*time.Second), LastCheck: now, LastDurationSeconds: 1.234},
		{Name: "static", Target: "GET https://s3.amazonaws.com/b/site.css", State: apitype.CheckPending, Since: now.Add(-5 * time.Second)},
	}
	var b strings.Builder
	printChecks(&b, checks, now)
	want := "" +
		"Checks (services hostctl does not run; it never restarts them):\n" +
		"  CHECK   STATE    SINCE      LAST PROBE  TARGET                                   LAST ERROR\n" +
		"  db      down     4m ago     2ms         tcp db:5432                              connect db:5432: connection refused (3 of 3 failed in a row)\n" +
		"  search  up       2h00m ago  1.2s        GET http://search:9200/_cluster/health   2h00m ago: GET /_cluster/health: 503\n" +
		"  static  pending  5s ago     -           GET https://s3.amazonaws.com/b/site.css  \n"
	if b.String() != want {
		t.Errorf("checks:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	printChecks(&b, nil, now)
	if b.Len() != 0 {
		t.Errorf("no checks: %q, want nothing", b.String())
	}

	got, progs, only := pickChecks(checks, []string{"db", "gunicorn"})
	if len(got) != 1 || got[0].Name != "db" || len(progs) != 1 || progs[0] != "gunicorn" || only {
		t.Errorf("pickChecks(db, gunicorn) = %v %v %v", got, progs, only)
	}
	if got, progs, only := pickChecks(checks, []string{"db"}); len(got) != 1 || progs != nil || !only {
		t.Errorf("pickChecks(db) = %v %v %v", got, progs, only)
	}
	if got, progs, only := pickChecks(checks, nil); len(got) != 3 || progs != nil || only {
		t.Errorf("pickChecks() = %v %v %v", got, progs, only)
	}
	b.Reset()
	printCheckNotes(&b, checks)
	if b.String() != "notes (db): Postgres: restart it on the db host\n" {
		t.Errorf("notes: %q", b.String())
	}
}
