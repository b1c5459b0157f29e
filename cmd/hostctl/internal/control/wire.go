package control

// The one place where the supervisor's and the alert manager's state
// become the API's wire types (apitype). The proxy's status comes in as
// apitype.ProxyStatus already: control does not import the proxy (and
// Caddy); the daemon converts it (apiProxyStatus).

import (
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/check"
	"github.com/hostctl/hostctl/supervisor"
)

// snapshot returns the processes names stand for (all when none) with
// their pgroup's usage, from one scan of /proc.
func (s *Server) snapshot(names []string) ([]apitype.Process, error) {
	sts, err := s.opts.Programs.Status(names...)
	if err != nil {
		return nil, err
	}
	pgids := make(map[int]bool, len(sts))
	for _, st := range sts {
		if st.PID > 0 {
			pgids[st.PID] = true
		}
	}
	usage := supervisor.PgroupUsage(pgids)
	now := time.Now()
	out := make([]apitype.Process, len(sts))
	for i, st := range sts {
		out[i] = apitype.Process{ProcessStatus: apiStatus(st), DroppedLogBytes: s.opts.Programs.Dropped(st.Name)}
		if st.PID > 0 {
			u := usage[st.PID]
			out[i].UptimeSeconds = st.Uptime(now).Seconds()
			out[i].Processes, out[i].RSSBytes, out[i].CPUSeconds = u.Procs, u.RSS, u.CPU
		}
	}
	return out, nil
}

// apiStatus is st on the wire.
func apiStatus(st supervisor.Status) apitype.ProcessStatus {
	out := apitype.ProcessStatus{
		Name: st.Name, Program: st.Program, ProgramGroup: st.ProgramGroup, Instance: st.Instance,
		State: apitype.State(st.State.String()), PID: st.PID, StartedAt: st.StartedAt, StateSince: st.StateSince,
		Restarts: st.Restarts, SpawnErr: st.SpawnErr, Info: st.Info, NextStart: st.NextStart,
		Tries: st.Tries, LastStderr: st.LastStderr, MemoryLimit: st.MemoryLimit, MemoryRestarts: st.MemoryRestarts,
		MemoryRestartRSS: st.MemoryRestartRSS, Autostart: st.Autostart, Description: st.Description, Notes: st.Notes,
		StdoutLog: st.StdoutLog, StderrLog: st.StderrLog, Generation: st.Generation, Restarting: st.Restarting,
	}
	if e := st.LastExit; e != nil {
		out.LastExit = &apitype.ExitStatus{Code: e.Code, Signal: e.Signal}
	}
	if h := st.Health; h != nil {
		out.Health = &apitype.HealthStatus{Healthy: h.Healthy, Failures: h.Failures, LastError: h.LastError, Restarts: h.Restarts}
	}
	return out
}

// apiReload is what a reload did, on the wire.
func apiReload(r Reloaded) apitype.ReloadResponse {
	return apitype.ReloadResponse{Added: r.Diff.Added, Changed: r.Diff.Changed, Removed: r.Diff.Removed, Proxy: r.Proxy}
}

// apiAlerts returns the active alerts and the sinks on the wire, empty
// (never nil) when there are none.
func apiAlerts(active []alert.Alert, sinks []alert.SinkStatus) ([]apitype.Alert, []apitype.AlertSink) {
	as := make([]apitype.Alert, len(active))
	for i, a := range active {
		as[i] = apitype.Alert{
			Key: a.Key, Condition: a.Condition, Program: a.Program, Severity: string(a.Severity), Summary: a.Summary,
			Details: a.Details, LastLines: a.LastLines, Command: a.Command,
			Since: a.Since, LastSent: a.LastSent, Notified: a.Notified,
		}
	}
	ss := make([]apitype.AlertSink, len(sinks))
	for i, sk := range sinks {
		ss[i] = apitype.AlertSink(sk)
	}
	return as, ss
}

// apiAlertTests is what each sink answered to a test alert, on the wire,
// empty (never nil) without sinks.
func apiAlertTests(results []alert.TestResult) []apitype.AlertTestResult {
	out := make([]apitype.AlertTestResult, len(results))
	for i, r := range results {
		out[i] = apitype.AlertTestResult(r)
	}
	return out
}

// apiChecks returns the checks on the wire, empty (never nil) without any.
func apiChecks(sts []check.Status) []apitype.Check {
	out := make([]apitype.Check, len(sts))
	for i, st := range sts {
		out[i] = apitype.Check{
			Name: st.Name, Target: st.Target, State: apitype.CheckState(st.State.String()), Since: st.Since,
			Failing: st.Failing, Failures: st.Failures, LastError: st.LastError, LastErrorAt: st.LastErrorAt,
			LastCheck: st.LastCheck, LastDurationSeconds: st.LastDuration.Seconds(),
			Probes: st.Probes, ProbeFailures: st.ProbeFailures, IntervalSeconds: st.Interval.Seconds(),
			Severity: string(st.Severity), Notes: st.Notes,
		}
	}
	return out
}
