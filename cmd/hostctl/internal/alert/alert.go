// Package alert tells a person when something on the host breaks and when
// it is fixed: it keeps the set of active alerts (one per condition, by a
// stable key), sends each trigger and resolve to every configured sink
// (PagerDuty Events API v2, a signed JSON webhook, Slack, email) without
// ever blocking the caller, retries failed deliveries with backoff for a
// bounded time, and re-notifies an alert that lasts every Repeat.
//
// The daemon decides what is wrong (a FATAL program, a host low on disk)
// and calls [Manager.Set] and [Manager.Clear]; this package decides who is
// told and how. The manager also pings outside monitors while hostctl is
// alive ([[alerts.heartbeat]], heartbeat.go), so that a host that died,
// and cannot say so, is noticed by them.
package alert

import (
	"context"
	"time"
)

// Severity is PagerDuty's severity scale, used by every sink.
type Severity string

const (
	Critical Severity = "critical"
	Error    Severity = "error"
	Warning  Severity = "warning"
	Info     Severity = "info"
)

// Conditions: the values of Alert.Condition.
const (
	CondFatal            = "fatal"              // a program could not start (FATAL)
	CondCrashLoop        = "crash_loop"         // a program restarted too often in a window
	CondHealthRestart    = "health_restart"     // a program was restarted because its health check failed
	CondMemoryRestart    = "memory_limit"       // a program was restarted because it stayed above memory_limit
	CondUpstreamsDown    = "upstreams_down"     // every upstream of a proxy site is down: visitors see the error page
	CondLogDropped       = "log_dropped"        // a program's output was dropped (disk slow or full)
	CondKeepFree         = "keep_free"          // log writing paused: the log filesystem is below keep_free
	CondHostMemory       = "host_memory"        // the machine's available memory is below memory_available_below
	CondDiskFree         = "disk_free"          // a watched filesystem is below disk_free_below
	CondTLSExpiring      = "tls_expiring"       // a certificate expires within 14 days
	CondTLSRenewalFailed = "tls_renewal_failed" // obtaining or renewing a certificate failed
	CondStarted          = "hostctl_started"    // hostctl started (a reboot, a crash of hostctl, a deploy)
	CondLogRule          = "log_rule"           // a [[alerts.log_rule]]'s events went over its threshold
	CondCheckFailed      = "check_failed"       // a [check.NAME] (a service hostctl does not run) is down
	CondDeployFailed     = "deploy_failed"      // hostctl deploy failed (build, before_switch, the gate); the live release kept serving
	CondDeployRolledBack = "deploy_rolled_back" // a release went live and hostctl went back to the one before it
	CondTest             = "test"               // `hostctl alerts test`
)

// Conditions lists every condition, for config validation and docs.
var Conditions = []string{CondFatal, CondCrashLoop, CondHealthRestart, CondMemoryRestart, CondUpstreamsDown,
	CondLogDropped, CondKeepFree, CondHostMemory, CondDiskFree, CondTLSExpiring, CondTLSRenewalFailed, CondStarted, CondLogRule, CondTest,
	CondCheckFailed, CondDeployFailed, CondDeployRolledBack}

// Alert is one active problem.
type Alert struct {
	// Key is stable for the condition and what it is about
	// ("fatal:gunicorn", "disk_free:/var/log"): a second Set with the same
	// key while the alert is active updates it without a new trigger; it is
	// the PagerDuty dedup_key (prefixed with the host name) and the
	// webhook's "key".
	Key string `json:"key"`
	// Condition is one of the Cond* constants.
	Condition string `json:"condition"`
	// Program is the program it is about, "" when it is about the host.
	Program  string   `json:"program,omitempty"`
	Severity Severity `json:"severity"`
	// Summary is one line for a person: what is wrong, with figures
	// ("gunicorn is FATAL: gave up after 4 tries (exit 1: ImportError ...)").
	Summary string `json:"summary"`
	// Details are extra facts (exit status, memory figures, the log file);
	// PagerDuty's custom_details.
	Details map[string]any `json:"details,omitempty"`
	// LastLines are the last lines of the program's log, for the email.
	LastLines []string `json:"last_lines,omitempty"`
	// Command is what a person types to look closer or fix it
	// ("hostctl status gunicorn; hostctl tail gunicorn stderr").
	Command string `json:"command,omitempty"`

	// Set by the Manager.
	Since    time.Time `json:"since"`              // when it was triggered
	LastSent time.Time `json:"last_sent,omitzero"` // when the trigger was last queued (first or repeat)
	Notified int       `json:"notified"`           // triggers queued: 1, then +1 per repeat
}

// Action is what an Event does to the alert at the receiver.
type Action string

const (
	Trigger Action = "trigger"
	Resolve Action = "resolve"
)

// Event is one message to the sinks: a trigger (first or repeated) or the
// resolve of an alert.
type Event struct {
	Action Action
	Alert  Alert
	// Host is the host name (PagerDuty's source).
	Host string
	// Time is when the event happened (trigger: now; resolve: when it
	// cleared).
	Time time.Time
	// Repeat is true for a re-notification of an alert that still lasts.
	Repeat bool
	// ResolveSummary says how it cleared ("gunicorn is RUNNING again after
	// 6m12s"); only on resolve.
	ResolveSummary string
}

// DedupKey is the key a receiver uses to match a resolve to its trigger:
// the host name and the alert key, so that two hosts never share one.
func (e Event) DedupKey() string { return e.Host + "/" + e.Alert.Key }

// Sink delivers events to one receiver. Send must honour ctx (its deadline
// is the sink's timeout) and return an error that says what the receiver
// answered; it must never include a secret (routing key, password, secret)
// in that error.
type Sink interface {
	Send(ctx context.Context, ev Event) error
}

// SinkStatus is one sink as `hostctl alerts` and GET /v1/alerts show it.
type SinkStatus struct {
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

// TestResult is one sink's answer to `hostctl alerts test`.
type TestResult struct {
	Sink  string `json:"sink"`
	Type  string `json:"type"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Milliseconds is how long the delivery took.
	Milliseconds int64 `json:"milliseconds"`
}
