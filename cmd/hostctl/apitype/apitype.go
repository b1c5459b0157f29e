// Package apitype holds the wire types of hostctl's admin API: the JSON
// bodies of its /v1/ endpoints and /healthz, shared by the server (the
// daemon) and every client (cmd/hostctl/client, the CLI, the fleet view),
// so that both sides have one definition. It imports nothing of hostctl:
// the server converts its own state into these types in one place
// (the control package's wire.go, and the daemon for the proxy's status),
// and a field added there and not here does not reach the wire by
// accident.
package apitype

import (
	"errors"
	"time"
)

// DefaultSocket is the admin API's unix socket when the config names none.
const DefaultSocket = "/run/hostctl/hostctl.sock"

// State is a process's state, by supervisord's names.
type State string

// The states (supervisor.State's names).
const (
	Stopped  State = "STOPPED"
	Starting State = "STARTING"
	Running  State = "RUNNING"
	Backoff  State = "BACKOFF"
	Stopping State = "STOPPING"
	Exited   State = "EXITED"
	Fatal    State = "FATAL"
)

// ProcessStatus is one process's state as the supervisor reports it
// (supervisor.Status).
type ProcessStatus struct {
	// Name is the process name: the program name, or with instances the
	// instance's process_name ("celery_0"). It is unique in hostctl.
	Name string `json:"name"`
	// Program is the name of the program (its [program.NAME] table).
	Program string `json:"program,omitempty"`
	// ProgramGroup is the process's program group, supervisord's group:
	// the [group.X] its program is listed in, else the program name.
	ProgramGroup string `json:"process_group,omitempty"`
	// Instance is the instance number (${INSTANCE}).
	Instance int   `json:"instance"`
	State    State `json:"state"`
	PID      int   `json:"pid,omitempty"`
	// StartedAt is when the current OS process was spawned.
	StartedAt time.Time `json:"started_at,omitzero"`
	// StateSince is when State was entered.
	StateSince time.Time `json:"state_since"`
	// Restarts counts automatic restarts since hostctl started.
	Restarts int `json:"restarts"`
	// LastExit is how the previous OS process ended.
	LastExit *ExitStatus `json:"last_exit,omitempty"`
	SpawnErr string      `json:"spawn_error,omitempty"`
	// Info says why: "waiting for rabbitmq", "retry 2 in 4s", ...
	Info string `json:"info,omitempty"`
	// NextStart is, in BACKOFF or FATAL with fatal_retry, when the next
	// try is due.
	NextStart time.Time `json:"next_start,omitzero"`
	// Tries is, in FATAL because start_retries were used up, how many
	// starts failed in a row.
	Tries int `json:"tries,omitempty"`
	// LastStderr is, in BACKOFF and in FATAL with Tries, the last line the
	// process wrote to its stderr log.
	LastStderr string `json:"last_stderr,omitempty"`
	// Health is the health check's view; nil without [health].
	Health *HealthStatus `json:"health,omitempty"`
	// MemoryLimit is memory_limit in bytes; 0: no limit.
	MemoryLimit int64 `json:"memory_limit,omitempty"`
	// MemoryRestarts counts restarts for memory_limit since the program's
	// config was loaded.
	MemoryRestarts int `json:"memory_restarts"`
	// MemoryRestartRSS is what the pgroup used (bytes) at the last check
	// before the last memory restart; 0 before any.
	MemoryRestartRSS uint64 `json:"memory_restart_rss,omitempty"`
	Autostart        bool   `json:"autostart"`
	Description      string `json:"description,omitempty"`
	// Notes is the program's notes: advice for the person on call.
	Notes     string `json:"notes,omitempty"`
	StdoutLog string `json:"stdout_log,omitempty"`
	StderrLog string `json:"stderr_log,omitempty"`
	// Generation counts OS processes spawned for this process.
	Generation uint64 `json:"generation"`
	// Restarting is true while a start follows the stop under way (a
	// restart, or a reload that replaces the process); false for a stop.
	Restarting bool `json:"restarting,omitempty"`
}

// ExitStatus is how an OS process ended: Code is the exit code, or
// 128+signal when a signal killed it (then Signal names it: "KILL").
type ExitStatus struct {
	Code   int    `json:"code"`
	Signal string `json:"signal,omitempty"`
}

// HealthStatus is what a process's health checks found.
type HealthStatus struct {
	// Healthy is true while the process is RUNNING and fewer than
	// health.failures checks in a row have failed.
	Healthy bool `json:"healthy"`
	// Failures is the number of checks in a row that failed.
	Failures int `json:"failures"`
	// LastError says why the last failed check failed.
	LastError string `json:"last_error,omitempty"`
	// Restarts counts restarts because checks failed, since the program's
	// config was loaded.
	Restarts int `json:"restarts"`
}

// Process is one process as GET /v1/programs reports it: its status plus
// what hostctl measures about its pgroup (Unix process group).
type Process struct {
	ProcessStatus
	// UptimeSeconds is how long the current OS process has run (0 when
	// none).
	UptimeSeconds float64 `json:"uptime_seconds"`
	// Processes is the number of live OS processes in the pgroup.
	Processes int `json:"processes"`
	// RSSBytes is the resident memory of the pgroup, summed.
	RSSBytes uint64 `json:"rss_bytes"`
	// CPUSeconds is the user+system CPU time of the pgroup, summed,
	// including that of its members' waited-for children.
	CPUSeconds float64 `json:"cpu_seconds"`
	// DroppedLogBytes is the output dropped because the disk could not keep
	// up or was full, since the program's config was loaded.
	DroppedLogBytes uint64 `json:"dropped_log_bytes"`
}

// ActionRequest is the body of POST /v1/start, /v1/stop, /v1/restart and
// /v1/signal.
type ActionRequest struct {
	// Names are names as the CLI takes them (processes, programs, program
	// groups, GROUP:*, GROUP:NAME), or ["all"].
	Names []string `json:"names"`
	// Signal is the signal for /v1/signal ("HUP", "SIGUSR1", "15").
	Signal string `json:"signal,omitempty"`
	// WaitSeconds is how long to wait for every process to reach the
	// action's target state (RUNNING for start and restart, down for stop)
	// before answering. 0 answers at once; at most 600.
	WaitSeconds float64 `json:"wait_seconds,omitempty"`
}

// ActionResult is the outcome of an action for one process.
type ActionResult struct {
	Name string `json:"name"`
	// OK is true when the target state was reached (or, without a wait,
	// when the request was accepted).
	OK bool `json:"ok"`
	// Error says why not: "FATAL: exited too quickly ...", "still STARTING
	// after 30s (waiting for db)".
	Error string `json:"error,omitempty"`
	// Status is the process's status when the answer was made.
	Status ProcessStatus `json:"status"`
}

// ActionResponse is the answer to an action.
type ActionResponse struct {
	Results []ActionResult `json:"results"`
}

// ReloadResponse is the answer to POST /v1/reload: the process names a
// reload added, changed (restarted) and removed, and what happened to the
// proxy.
type ReloadResponse struct {
	Added   []string `json:"added"`
	Changed []string `json:"changed"`
	Removed []string `json:"removed"`
	// Proxy is what happened to the proxy: "reloaded" (its generated
	// config changed), "unchanged", "started", "waiting" (it starts with
	// this config once the programs behind its upstreams are RUNNING or
	// have given up; the proxy status says which it waits for), "stopped",
	// or "" without one.
	Proxy string `json:"proxy,omitempty"`
}

// ProxyResponse is the answer to GET /v1/proxy.
type ProxyResponse struct {
	// Configured is false without a [proxy] section; Status is then null.
	Configured bool         `json:"configured"`
	Status     *ProxyStatus `json:"status"`
}

// ProxyStatus is the embedded proxy's state (proxy.Status, with why it
// does not run and the drain).
type ProxyStatus struct {
	Running      bool                     `json:"running"`
	Listen       []string                 `json:"listen"`
	Upstreams    []ProxyUpstreamStatus    `json:"upstreams"`
	Certificates []ProxyCertificateStatus `json:"certificates"`
	// Info says why the proxy is not running ("waiting for app", a start
	// error); "" when it runs.
	Info string `json:"info,omitempty"`
	// Drain is the drain state and the sites' traffic; null without
	// health_path.
	Drain *DrainStatus `json:"drain,omitempty"`
}

// ProxyUpstreamStatus is one upstream as the reverse proxy sees it
// (proxy.UpstreamStatus).
type ProxyUpstreamStatus struct {
	// Address as written in the config ("127.0.0.1:8000", "unix:/run/app.sock").
	Address string `json:"address"`
	// Healthy is false while the upstream is out of its pool (active or
	// passive health checks); a single upstream is always healthy.
	Healthy bool `json:"healthy"`
	// Down says why it is out of its pool; empty while healthy.
	Down string `json:"down,omitempty"`
	// Fails is the number of failed requests to it within the last
	// fail_duration (passive health checks).
	Fails int `json:"fails"`
	// Requests is the number of requests in flight to this upstream now.
	Requests int `json:"requests"`
	// Draining is true while it is taken out of its pool before its
	// program stops (drain_timeout): it gets no new request, and Requests
	// are those it is finishing. A site's single upstream is held instead:
	// new requests wait (Held) until it is up again, or retry_for (for a
	// restart, up to hold_for), or get the error page once it stays down.
	Draining bool `json:"draining,omitempty"`
	// Held is the number of requests waiting for a draining single
	// upstream, not sent to it yet.
	Held int `json:"held,omitempty"`
}

// ProxyCertificateStatus is one certificate in storage for a configured
// host (proxy.CertificateStatus).
type ProxyCertificateStatus struct {
	Names    []string  `json:"names"`
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"not_after"`
}

// DrainStatus is the answer to GET /v1/drain, POST /v1/drain and POST
// /v1/undrain: whether this hostctl is draining (its health_path answers
// 503 so that load balancers send it no new requests) and what its sites
// still receive.
type DrainStatus struct {
	// Draining is true from hostctl drain to hostctl undrain, hostctl
	// restarts included.
	Draining bool `json:"draining"`
	// Since is when the drain began (null when not draining).
	Since *time.Time `json:"since,omitempty"`
	// HealthPath is [proxy] health_path.
	HealthPath string `json:"health_path"`
	// LastRequest is when the last request (health checks left out)
	// arrived since hostctl started; null if none.
	LastRequest *time.Time `json:"last_request,omitempty"`
	// InFlight is the number of requests being answered now.
	InFlight int `json:"in_flight"`
	// LastHealthOK is when health_path last answered 200; null if never.
	LastHealthOK *time.Time `json:"last_health_ok,omitempty"`

	// The outcome of a wait (wait_seconds > 0).

	// WaitedSeconds is how long the request waited.
	WaitedSeconds float64 `json:"waited_seconds,omitempty"`
	// Quiet (drain): no request was in flight and none had arrived for
	// quiet_seconds when the answer was made.
	Quiet bool `json:"quiet,omitempty"`
	// SeenHealthy (undrain): health_path answered 200 after the undrain,
	// so a load balancer's check has seen this host healthy again.
	SeenHealthy bool `json:"seen_healthy,omitempty"`
	// TimedOut: wait_seconds passed first.
	TimedOut bool `json:"timed_out,omitempty"`
}

// DrainRequest is the body of POST /v1/drain and POST /v1/undrain.
type DrainRequest struct {
	// WaitSeconds: drain waits until no request is in flight and none has
	// arrived for QuietSeconds; undrain waits until health_path has
	// answered 200. At most this long; 0 answers at once; at most 600.
	WaitSeconds float64 `json:"wait_seconds,omitempty"`
	// QuietSeconds is drain's quiet period. Default 5.
	QuietSeconds float64 `json:"quiet_seconds,omitempty"`
}

// LogLine is one line of GET /v1/programs/{name}/log, which answers with
// one JSON object per line (application/x-ndjson).
type LogLine struct {
	// Line is the text without its trailing newline.
	Line string `json:"line"`
}

// Alert is one active alert (alert.Alert).
type Alert struct {
	// Key is stable for the condition and what it is about
	// ("fatal:gunicorn", "disk_free:/var/log").
	Key string `json:"key"`
	// Condition is what is wrong: "fatal", "crash_loop", "disk_free", ...
	// (the README's [alerts] lists them).
	Condition string `json:"condition"`
	// Program is the program it is about, "" when it is about the host.
	Program string `json:"program,omitempty"`
	// Severity is "critical", "error", "warning" or "info".
	Severity string `json:"severity"`
	// Summary is one line for a person: what is wrong, with figures.
	Summary string `json:"summary"`
	// Details are extra facts (exit status, memory figures, the log file).
	Details map[string]any `json:"details,omitempty"`
	// LastLines are the last lines of the program's log.
	LastLines []string `json:"last_lines,omitempty"`
	// Command is what a person types to look closer or fix it.
	Command string `json:"command,omitempty"`
	// Since is when it was triggered.
	Since time.Time `json:"since"`
	// LastSent is when the trigger was last queued (first or repeat).
	LastSent time.Time `json:"last_sent,omitzero"`
	// Notified counts triggers queued: 1, then +1 per repeat.
	Notified int `json:"notified"`
}

// AlertSink is one [[alerts.sink]]'s delivery counters (alert.SinkStatus).
type AlertSink struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Sent and Failed count deliveries since hostctl started: Failed are
	// events given up on after retry_for (or dropped from a full queue).
	Sent   uint64 `json:"sent"`
	Failed uint64 `json:"failed"`
	// Queued is the events waiting for delivery (retries included).
	Queued int `json:"queued"`
	// LastError is the last failed attempt's error, "" after a success.
	LastError string `json:"last_error,omitempty"`
}

// AlertTestResult is one sink's answer to `hostctl alerts test`
// (alert.TestResult).
type AlertTestResult struct {
	Sink  string `json:"sink"`
	Type  string `json:"type"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Milliseconds is how long the delivery took.
	Milliseconds int64 `json:"milliseconds"`
}

// AlertsResponse is the answer to GET /v1/alerts.
type AlertsResponse struct {
	// Alerts are the active alerts, by severity (critical first), then
	// oldest first; empty, never null, when there are none.
	Alerts []Alert `json:"alerts"`
	// Sinks are the configured [[alerts.sink]]s; empty without any.
	Sinks []AlertSink `json:"sinks"`
	// Heartbeats are the configured [[alerts.heartbeat]]s, in config
	// order; empty without any.
	Heartbeats []AlertHeartbeat `json:"heartbeats"`
}

// AlertHeartbeat is one [[alerts.heartbeat]]: the pings to an outside
// monitor (alert.HeartbeatStatus).
type AlertHeartbeat struct {
	Name string `json:"name"`
	// Kind is the monitor's service ("healthchecks", "cronitor",
	// "uptime_kuma", "betterstack"), "" for another.
	Kind string `json:"kind,omitempty"`
	// Where is the ping URL's scheme and host, never its path or query
	// (which carry the monitor's token): "https://hc-ping.com/…".
	Where string `json:"where"`
	// IntervalSeconds is the time between pings.
	IntervalSeconds float64 `json:"interval_seconds"`
	// OnAlert is what is sent while a critical alert is active: "fail"
	// or "pause" (nothing).
	OnAlert string `json:"on_alert"`
	// LastPing is when the last ping was sent (or skipped while paused);
	// absent before the first.
	LastPing time.Time `json:"last_ping,omitzero"`
	// LastForm is what the last ping sent: "success", "fail", "start",
	// or "paused" (nothing sent).
	LastForm string `json:"last_form,omitempty"`
	// LastError is why the last ping failed; absent when it got through.
	LastError string `json:"last_error,omitempty"`
	// NextDue is when the next ping is due.
	NextDue time.Time `json:"next_due,omitzero"`
	// Sent and Failed count pings since hostctl started.
	Sent   uint64 `json:"sent"`
	Failed uint64 `json:"failed"`
}

// AlertsTestResponse is the answer to POST /v1/alerts/test.
type AlertsTestResponse struct {
	// Results has one entry per sink, in config order; empty without sinks.
	Results []AlertTestResult `json:"results"`
}

// HistoryPoint is one sample of a process.
type HistoryPoint struct {
	// T is when it was taken, in Unix seconds.
	T int64 `json:"t"`
	// RSSBytes is the resident memory of the pgroup (0 without an OS
	// process).
	RSSBytes uint64 `json:"rss_bytes"`
	// Restarts is the process's automatic restarts counter
	// (ProcessStatus.Restarts), which counts health and memory restarts
	// too: a restart happened between two points where it grew.
	Restarts int `json:"restarts"`
	// HealthRestarts and MemoryRestarts are the restarts for a failed
	// health check and for memory_limit, since the config was loaded: they
	// say why Restarts grew.
	HealthRestarts int `json:"health_restarts,omitempty"`
	MemoryRestarts int `json:"memory_restarts,omitempty"`
	// State is the process's state.
	State State `json:"state"`
}

// HistoryResponse is the answer to GET /v1/history.
type HistoryResponse struct {
	// IntervalSeconds is the time between two samples.
	IntervalSeconds float64 `json:"interval_seconds"`
	// Programs has each process's samples, oldest first: the last hour
	// (at most 720 points). A process added by a reload starts empty; one
	// removed is gone.
	Programs map[string][]HistoryPoint `json:"programs"`
}

// Healthz is the answer to GET /healthz. Anyone may ask: PID and Version
// are only told to a caller with a token (or on the unix socket).
type Healthz struct {
	OK      bool   `json:"ok"`
	PID     int    `json:"pid,omitempty"`
	Version string `json:"version,omitempty"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
	// Code is machine-readable: one of the Code constants.
	Code string `json:"code"`
	// Errors lists each problem when there are several (config_invalid).
	Errors []string `json:"errors,omitempty"`
}

// Error codes (ErrorBody.Code).
const (
	CodeBadRequest     = "bad_request"
	CodeUnauthorized   = "unauthorized"
	CodeForbidden      = "forbidden"
	CodeUnknownProgram = "unknown_program"
	CodeNotFound       = "not_found"
	CodeConfigInvalid  = "config_invalid"
	CodeFailed         = "failed"
	CodeUnavailable    = "unavailable"
)

// Problems lists the problems in err one by one, as ErrorBody.Errors
// carries them: the errors it joins (errors.Join, config.Errors), nested
// joins flattened, or else err itself.
func Problems(err error) []string {
	multi, ok := errors.AsType[interface {
		error
		Unwrap() []error
	}](err)
	if !ok {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range multi.Unwrap() {
		out = append(out, Problems(e)...)
	}
	return out
}

// CheckState is a check's state.
type CheckState string

// The check states (check.State's names).
const (
	// CheckPending: no probe has passed yet, and fewer than failures have
	// failed in a row since the check started.
	CheckPending CheckState = "pending"
	// CheckUp: the last probe passed, or fewer than failures in a row
	// failed since one did.
	CheckUp CheckState = "up"
	// CheckDown: failures probes or more in a row failed; the alert
	// check_failed:NAME is raised.
	CheckDown CheckState = "down"
)

// Check is one [check.NAME]: a service hostctl does not run (Postgres,
// ElasticSearch, S3), probed every interval. hostctl never restarts it.
type Check struct {
	Name string `json:"name"`
	// Target is what is probed: "tcp db:5432", "GET https://...", "exec
	// check-db as postgres".
	Target string     `json:"target"`
	State  CheckState `json:"state"`
	// Since is when State began; for down, when the first of the failed
	// probes in a row ran.
	Since time.Time `json:"since"`
	// Failing is how many probes in a row have failed (0 after a pass);
	// Failures is how many make the check down (the config's failures).
	Failing  int `json:"failing"`
	Failures int `json:"failures"`
	// LastError is why the last failed probe failed, at LastErrorAt; kept
	// after the check is up again.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// LastCheck is when the last probe ended; LastDurationSeconds how long
	// it took. Zero before the first.
	LastCheck           time.Time `json:"last_check,omitzero"`
	LastDurationSeconds float64   `json:"last_duration_seconds"`
	// Probes and ProbeFailures count the probes run and failed since
	// hostctl started.
	Probes          uint64  `json:"probes"`
	ProbeFailures   uint64  `json:"probe_failures"`
	IntervalSeconds float64 `json:"interval_seconds"`
	// Severity is the severity of its alert.
	Severity string `json:"severity"`
	// Notes is advice for the person on call.
	Notes string `json:"notes,omitempty"`
}

// ChecksResponse is the answer to GET /v1/checks.
type ChecksResponse struct {
	// Checks are every [check.NAME], by name; empty, never null, without
	// any.
	Checks []Check `json:"checks"`
}

// DeployRequest is the body of POST /v1/deploy: where the new release's
// code comes from ([deploy] repo at its branch when both are empty).
type DeployRequest struct {
	// Ref is a branch, tag or commit of [deploy] repo.
	Ref string `json:"ref,omitempty"`
	// From is an absolute path, on the host, of a directory or .tar.gz
	// file holding the code.
	From string `json:"from,omitempty"`
}

// DeployEvent is one line of POST /v1/deploy's answer, a stream of JSON
// lines (application/x-ndjson), each written as it happens. The last
// line has Result.
type DeployEvent struct {
	Time time.Time `json:"time"`
	// Step is set when a step starts: "prepare", "before_switch",
	// "start", "gate", "switch", "drain", "restart"; Msg says more.
	Step string `json:"step,omitempty"`
	Msg  string `json:"msg,omitempty"`
	// Output is one line a command printed (git, a build step,
	// before_switch), or one line of the preparation's own progress.
	Output string `json:"output,omitempty"`
	// Release is the new release's id, once there is one.
	Release string `json:"release,omitempty"`
	// Result ends the stream: "ok" (the release is live) or "failed"
	// (Error says why; nothing live changed unless Error says so).
	Result string `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Deploy results (DeployEvent.Result, DeployRecord.Result).
const (
	// DeployOK: the release went live.
	DeployOK = "ok"
	// DeployFailed: a step failed (build, before_switch, the gate);
	// nothing live changed unless the error says so.
	DeployFailed = "failed"
	// DeployRolledBack: the release went live, then hostctl went back to
	// the release before it (issue 23 §3's watch after the switch).
	DeployRolledBack = "rolled_back"
	// DeployCanceled: the deploy was cancelled (Ctrl-C) before the
	// switch; nothing live changed.
	DeployCanceled = "canceled"
)

// DeployResults lists every deploy result, for the metrics and the docs.
var DeployResults = []string{DeployOK, DeployFailed, DeployRolledBack, DeployCanceled}

// Release states (Release.State).
const (
	ReleaseBuilding = "building"
	ReleaseBuilt    = "built"
	ReleaseLive     = "live"
	ReleasePrevious = "previous"
	ReleaseFailed   = "failed"
	ReleasePruned   = "pruned"
)

// Release is one release of [deploy], as GET /v1/releases lists it.
type Release struct {
	// ID is its directory name under [deploy] dir/releases:
	// "<UTC time>-<short sha>".
	ID string `json:"id"`
	// SHA is the git commit, or the SHA-256 of a --from tarball; "" for
	// --from a directory.
	SHA string `json:"sha,omitempty"`
	// Source says where the code came from: "git REPO REF", "dir PATH",
	// "tarball PATH".
	Source string `json:"source"`
	// Created is when its preparation began.
	Created time.Time `json:"created"`
	// BuildSeconds is how long its preparation (code, shared paths,
	// build steps) took.
	BuildSeconds float64 `json:"build_seconds"`
	// State is one of the Release* states: building, built, live,
	// previous, failed, pruned.
	State string `json:"state"`
	// Reason is why it failed, in one line: the failing step and, when
	// its output ends a traceback, the traceback's last line. "" unless
	// failed.
	Reason string `json:"reason,omitempty"`
	// Error is the whole failure: the step, its exit status, its last
	// lines.
	Error string `json:"error,omitempty"`
	// Slot is the blue/green slot ("a" or "b") it went live in; "" for a
	// release never live or without blue_green programs.
	Slot string `json:"slot,omitempty"`
	// LiveSince is when it went live, for the live release (when
	// hostctl saw that deploy end; else its creation); absent for the
	// others.
	LiveSince time.Time `json:"live_since,omitzero"`
}

// DeployRecord is one deploy as it ended (GET /v1/releases' Deploys, the
// dashboard, the deploy alerts).
type DeployRecord struct {
	// Release is the new release's id; "" when the deploy failed before
	// there was one (fetching the code).
	Release string `json:"release,omitempty"`
	SHA     string `json:"sha,omitempty"`
	// Slot is the slot the release went live in ("" when it did not).
	Slot string `json:"slot,omitempty"`
	// Result is one of the Deploy* results: ok, failed, rolled_back,
	// canceled.
	Result string `json:"result"`
	// Step is the step that failed or rolled back ("prepare", "gate",
	// "watch", ...); "" for ok.
	Step string `json:"step,omitempty"`
	// Reason is why, in one line ("" for ok).
	Reason string `json:"reason,omitempty"`
	// LastLines are the failing step's last lines: the lines that end a
	// traceback first, then the last lines of its output.
	LastLines []string `json:"last_lines,omitempty"`
	// Started and Ended bound the deploy; Seconds is the time between.
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	Seconds float64   `json:"seconds"`
}

// ReleasesResponse is the answer to GET /v1/releases.
type ReleasesResponse struct {
	// Configured is false without a [deploy] section; the rest is then
	// empty.
	Configured bool `json:"configured"`
	// Live is the live release; null before the first deploy.
	Live *Release `json:"live"`
	// Releases are every recorded release, newest first; empty, never
	// null.
	Releases []Release `json:"releases"`
	// Deploys are the last deploys (at most 20), newest first; empty,
	// never null.
	Deploys []DeployRecord `json:"deploys"`
}
