package watch

// What hostctl alerts about, and when each alert resolves. One goroutine
// (Watcher.Run) owns the per-program memory below; it wakes on every
// change of a program's status and on a ticker, compares what it sees
// with what it saw, and calls alert.Manager.Set and Clear (which never
// block). Keys are stable per condition ("fatal:gunicorn"), so a
// condition is sent once until it resolves.
//
//	condition        triggers when                          resolves when
//	fatal            a program is FATAL                      it is RUNNING again, or stopped on request
//	crash_loop       > crash_loop_restarts automatic         it has run `settle` and at most half
//	                 restarts within crash_loop_window       as many restarts are in the window
//	health_restart   a restart because the health check      it has run `settle` (and is healthy)
//	                 failed
//	memory_limit     a restart because memory stayed         it has run `settle`
//	                 above memory_limit
//	log_dropped      output of a program was dropped         nothing dropped for `settle`
//	hostctl_started  hostctl starts                          every autostart program has settled
//
// The host-level conditions (memory, disk, keep_free, certificates,
// upstreams) are checked every check_interval in host.go.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/supervisor"
	"github.com/hostctl/hostctl/supervisor/logfile"
)

// progAlerts is what the watcher remembers about one program.
type progAlerts struct {
	restarts       int         // Status.Restarts last seen
	restartTimes   []time.Time // automatic restarts within crash_loop_window
	healthRestarts int
	memRestarts    int
	dropped        uint64
	lastDrop       time.Time
	// restartGen is the Generation when a health or memory restart was
	// seen: the alert resolves only once a newer process has run settle.
	healthGen, memGen uint64
}

func (w *Watcher) checkPrograms(c Config, now time.Time) {
	sts, err := w.sup.Status()
	if err != nil {
		return
	}
	seen := map[string]bool{}
	var gone []string
	defer func() { w.rules.round(w.sup, c.Alerts.LogRules, sts, gone, now) }()
	for _, st := range sts {
		seen[st.Name] = true
		pa, ok := w.progs[st.Name]
		if !ok {
			// First sight (hostctl start or a reload added it): counters
			// start from here.
			pa = &progAlerts{restarts: st.Restarts, memRestarts: st.MemoryRestarts, dropped: w.sup.Dropped(st.Name)}
			if st.Health != nil {
				pa.healthRestarts = st.Health.Restarts
			}
			w.progs[st.Name] = pa
		}
		w.checkProgram(c, pa, st, now)
	}
	for name := range w.progs {
		if !seen[name] {
			delete(w.progs, name)
			gone = append(gone, name)
			for _, cond := range []string{alert.CondFatal, alert.CondCrashLoop, alert.CondHealthRestart, alert.CondMemoryRestart, alert.CondLogDropped} {
				w.m.Clear(cond+":"+name, name+" was removed from the config")
			}
		}
	}
}

func (w *Watcher) checkProgram(c Config, pa *progAlerts, st supervisor.Status, now time.Time) {
	cfg := c.Alerts
	name := st.Name
	key := func(cond string) string { return cond + ":" + name }
	stopped := st.State == supervisor.Stopped
	// ranSettled: the program has been RUNNING (past start_secs and its
	// ready probe) for settle.
	ranSettled := st.State == supervisor.Running && now.Sub(st.StateSince) >= cfg.Settle

	// fatal
	switch {
	case st.State == supervisor.Fatal:
		if !w.m.IsActive(key(alert.CondFatal)) {
			st = w.caughtUp(st)
		}
		w.set(alert.Alert{Key: key(alert.CondFatal), Condition: alert.CondFatal, Program: name, Severity: alert.Critical,
			Summary: fatalSummary(st, w.m.Host()), Details: programDetails(st)}, st)
	case st.State == supervisor.Running:
		w.m.Clear(key(alert.CondFatal), fmt.Sprintf("%s is RUNNING again (pid %d)", name, st.PID))
	case stopped:
		w.m.Clear(key(alert.CondFatal), name+" was stopped on request")
	}

	// crash_loop
	if d := st.Restarts - pa.restarts; d > 0 {
		for range d {
			pa.restartTimes = append(pa.restartTimes, now)
		}
	}
	pa.restarts = st.Restarts
	cut := 0
	for cut < len(pa.restartTimes) && now.Sub(pa.restartTimes[cut]) > cfg.CrashLoopWindow {
		cut++
	}
	pa.restartTimes = pa.restartTimes[cut:]
	n := len(pa.restartTimes)
	switch {
	case stopped:
		// Stopped on request: the loop is over; a later start counts
		// afresh.
		pa.restartTimes = nil
		w.m.Clear(key(alert.CondCrashLoop), name+" was stopped on request")
	case n > cfg.CrashLoopRestarts:
		w.set(alert.Alert{Key: key(alert.CondCrashLoop), Condition: alert.CondCrashLoop, Program: name, Severity: alert.Error,
			Summary: fmt.Sprintf("%s on %s is in a crash loop: restarted %d times in %s%s", name, w.m.Host(), n,
				fmtDuration(cfg.CrashLoopWindow), lastExitText(st)),
			Details: programDetails(st)}, st)
	case ranSettled && n <= cfg.CrashLoopRestarts/2:
		// Hysteresis: a program that keeps crashing just under the
		// threshold does not resolve and trigger in turn.
		w.m.Clear(key(alert.CondCrashLoop), fmt.Sprintf("%s has run %s, with %d restarts in the last %s", name, fmtDuration(st.Uptime(now)), n, fmtDuration(cfg.CrashLoopWindow)))
	}

	// health_restart
	if st.Health != nil {
		if st.Health.Restarts > pa.healthRestarts {
			pa.healthGen = st.Generation
			why := st.Health.LastError
			if why == "" {
				why = "no answer"
			}
			w.set(alert.Alert{Key: key(alert.CondHealthRestart), Condition: alert.CondHealthRestart, Program: name, Severity: alert.Error,
				Summary: fmt.Sprintf("%s on %s was restarted: its health check failed %d times in a row (%s)", name, w.m.Host(), max(st.Health.Failures, 1), why),
				Details: programDetails(st)}, st)
		}
		pa.healthRestarts = st.Health.Restarts
	}
	if ranSettled && st.Up() && st.Generation > pa.healthGen || stopped {
		w.m.Clear(key(alert.CondHealthRestart), fmt.Sprintf("%s is RUNNING and healthy after the restart", name))
	}

	// memory_limit
	if st.MemoryRestarts > pa.memRestarts {
		pa.memGen = st.Generation
		w.set(alert.Alert{Key: key(alert.CondMemoryRestart), Condition: alert.CondMemoryRestart, Program: name, Severity: alert.Warning,
			Summary: fmt.Sprintf("%s on %s was restarted: its memory (%s) stayed above memory_limit (%s)", name, w.m.Host(),
				logfile.FormatSize(int64(st.MemoryRestartRSS)), logfile.FormatSize(st.MemoryLimit)),
			Details: programDetails(st)}, st)
	}
	pa.memRestarts = st.MemoryRestarts
	if ranSettled && st.Generation > pa.memGen || stopped {
		w.m.Clear(key(alert.CondMemoryRestart), fmt.Sprintf("%s has run %s since its memory restart", name, fmtDuration(cfg.Settle)))
	}

	// log_dropped
	if dr := w.sup.Dropped(name); dr > pa.dropped {
		pa.lastDrop = now
		w.set(alert.Alert{Key: key(alert.CondLogDropped), Condition: alert.CondLogDropped, Program: name, Severity: alert.Warning,
			Summary: fmt.Sprintf("output of %s on %s is being dropped (%s so far): the log disk is full or too slow", name, w.m.Host(), logfile.FormatSize(int64(dr))),
			Details: map[string]any{"dropped_bytes": dr, "stdout_log": st.StdoutLog, "stderr_log": st.StderrLog},
			Command: "df -h " + c.LogDir + "; hostctl status"}, supervisor.Status{Notes: st.Notes})
		pa.dropped = dr
	} else if now.Sub(pa.lastDrop) >= cfg.Settle {
		w.m.Clear(key(alert.CondLogDropped), fmt.Sprintf("no output of %s dropped for %s", name, fmtDuration(cfg.Settle)))
	}
}

// set triggers a (or updates it). For a new alert about a program it adds
// the last lines of the program's stderr and the commands to look closer.
func (w *Watcher) set(a alert.Alert, st supervisor.Status) {
	if st.Notes != "" {
		if a.Details == nil {
			a.Details = map[string]any{}
		}
		a.Details["notes"] = st.Notes
	}
	if st.Name != "" && !w.m.IsActive(a.Key) {
		a.LastLines = w.lastLines(st.Name, 20)
		if a.Command == "" {
			a.Command = fmt.Sprintf("hostctl status %s; hostctl tail %s stderr", st.Name, st.Name)
		}
	}
	w.m.Set(a)
}

// lastLines returns the last n lines of the program's stderr log (its
// stdout log with redirect_stderr).
func (w *Watcher) lastLines(name string, n int) []string {
	for _, stream := range []string{"stderr", "stdout"} {
		ls, err := w.sup.Log(name, stream)
		if err != nil || ls == nil {
			continue
		}
		b, err := ls.Tail(n)
		if err != nil || len(b) == 0 {
			continue
		}
		return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	}
	return nil
}

// catchUpBound bounds how long a new FATAL alert waits for the program's
// last output to reach its log.
const catchUpBound = time.Second

// catchUpper is a log stream that can wait until what the program wrote
// is in the file (*logfile.Stream).
type catchUpper interface {
	CatchUp(ctx context.Context) error
}

// caughtUp returns st again once the program's logs hold everything it
// wrote before it stopped: the supervisor can see a process exit before
// the log's reader and writer have got its last lines (why it failed) to
// the file, and LastStderr and the alert's last lines are read from
// there. It waits at most catchUpBound; on timeout the alert goes out
// with what the log has.
func (w *Watcher) caughtUp(st supervisor.Status) supervisor.Status {
	ctx, cancel := context.WithTimeout(context.Background(), catchUpBound)
	defer cancel()
	for _, stream := range []string{"stderr", "stdout"} {
		if ls, err := w.sup.Log(st.Name, stream); err == nil && ls != nil {
			if c, ok := ls.(catchUpper); ok {
				c.CatchUp(ctx)
			}
		}
	}
	sts, err := w.sup.Status(st.Name)
	if err != nil {
		return st
	}
	for _, again := range sts {
		if again.Name == st.Name && again.State == st.State {
			return again
		}
	}
	return st
}

// fatalSummary is the FATAL line a person is woken with.
func fatalSummary(st supervisor.Status, host string) string {
	s := fmt.Sprintf("%s is FATAL on %s", st.Name, host)
	switch {
	case st.Tries > 0 && st.LastExit != nil:
		why := st.LastExit.String()
		if st.LastStderr != "" {
			why += ": " + st.LastStderr
		}
		s += fmt.Sprintf(": gave up after %d tries that exited too quickly (%s)", st.Tries, why)
	case st.SpawnErr != "":
		s += ": " + st.SpawnErr
	case st.Info != "":
		s += ": " + st.Info
	}
	if !st.NextStart.IsZero() {
		s += "; hostctl keeps trying (fatal_retry)"
	} else {
		s += fmt.Sprintf("; no retry: fix it, then `hostctl start %s`", st.Name)
	}
	return s
}

func lastExitText(st supervisor.Status) string {
	if st.LastExit == nil {
		return ""
	}
	s := " (last: " + st.LastExit.String()
	if st.LastStderr != "" {
		s += ": " + st.LastStderr
	}
	return s + ")"
}

// programDetails are the facts sent with a program alert.
func programDetails(st supervisor.Status) map[string]any {
	d := map[string]any{"state": st.State.String(), "restarts": st.Restarts}
	if st.LastExit != nil {
		d["last_exit"] = st.LastExit.String()
	}
	if st.LastStderr != "" {
		d["last_stderr"] = st.LastStderr
	}
	if st.SpawnErr != "" {
		d["spawn_error"] = st.SpawnErr
	}
	if !st.NextStart.IsZero() {
		d["next_try"] = st.NextStart.Format(time.RFC3339)
	}
	if st.StderrLog != "" {
		d["stderr_log"] = st.StderrLog
	}
	if st.MemoryLimit > 0 {
		d["memory_limit_bytes"] = st.MemoryLimit
	}
	if st.Health != nil {
		d["health_failures"] = st.Health.Failures
		if st.Health.LastError != "" {
			d["health_last_error"] = st.Health.LastError
		}
	}
	return d
}

// fmtDuration prints 1m, 10m, 1h30m, 2s: no zero units.
func fmtDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
