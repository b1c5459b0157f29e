// Package control is hostctl's admin API: the HTTP server that `hostctl run`
// serves on its unix socket (and optionally on TCP with a bearer token), the
// web dashboard it serves at "/", the Prometheus metrics, and the typed
// Client the CLI uses to talk to it.
//
// The API is JSON under /v1/ (see routes in server.go for the one table of
// endpoints). On the unix socket, file permissions are the authentication;
// on TCP every endpoint but the dashboard page and /healthz needs
// "Authorization: Bearer TOKEN": the admin token, or the read-only one for
// everything that only reads (access.go). Requests from a browser tab of
// another origin are refused on both, and on TCP a Host header that does
// not name the listener (DNS rebinding).
package control

import (
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/alert"
	"github.com/hostctl/hostctl/supervisor"
)

// DefaultSocket is the admin socket when the config names none.
const DefaultSocket = "/run/hostctl/hostctl.sock"

// Program is one program as the API reports it: the supervisor's status
// snapshot plus what hostctl measures about its process group.
type Program struct {
	supervisor.Status
	// UptimeSeconds is how long the current process has run (0 when none).
	UptimeSeconds float64 `json:"uptime_seconds"`
	// Processes is the number of live processes in the program's process
	// group (pgid = PID).
	Processes int `json:"processes"`
	// RSSBytes is the resident memory of the process group, summed.
	RSSBytes uint64 `json:"rss_bytes"`
	// CPUSeconds is the user+system CPU time of the process group, summed,
	// including that of its members' waited-for children.
	CPUSeconds float64 `json:"cpu_seconds"`
	// DroppedLogBytes is the output dropped because the disk could not keep
	// up or was full, since the program's config was loaded.
	DroppedLogBytes uint64 `json:"dropped_log_bytes"`
}

// ActionRequest is the body of POST /v1/start, /v1/stop, /v1/restart and
// /v1/signal.
type ActionRequest struct {
	// Names are program names, or ["all"].
	Names []string `json:"names"`
	// Signal is the signal for /v1/signal ("HUP", "SIGUSR1", "15").
	Signal string `json:"signal,omitempty"`
	// WaitSeconds is how long to wait for every program to reach the
	// action's target state (RUNNING for start and restart, down for stop)
	// before answering. 0 answers at once; at most 600.
	WaitSeconds float64 `json:"wait_seconds,omitempty"`
}

// ActionResult is the outcome of an action for one program.
type ActionResult struct {
	Name string `json:"name"`
	// OK is true when the target state was reached (or, without a wait,
	// when the request was accepted).
	OK bool `json:"ok"`
	// Error says why not: "FATAL: exited too quickly ...", "still STARTING
	// after 30s (waiting for db)".
	Error string `json:"error,omitempty"`
	// Status is the program's status when the answer was made.
	Status supervisor.Status `json:"status"`
}

// ActionResponse is the answer to an action.
type ActionResponse struct {
	Results []ActionResult `json:"results"`
}

// ReloadResponse is the answer to POST /v1/reload.
type ReloadResponse struct {
	supervisor.Diff
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

// ProxyStatus is the embedded proxy's state as the API reports it. It
// mirrors proxy.Status field for field (same JSON) so that control need
// not import the proxy and Caddy; the daemon copies one into the other.
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

// ProxyUpstreamStatus is one upstream as the reverse proxy sees it
// (proxy.UpstreamStatus).
type ProxyUpstreamStatus struct {
	// Address as written in the config ("127.0.0.1:8000", "unix:/run/app.sock").
	Address string `json:"address"`
	// Healthy is false while the upstream is out of its pool (active or
	// passive health checks); a single upstream is always healthy (see
	// proxy.UpstreamStatus).
	Healthy bool `json:"healthy"`
	// Down says why it is out of its pool; empty while healthy.
	Down string `json:"down,omitempty"`
	// Fails is the number of failed requests to it within the last
	// fail_duration (passive health checks).
	Fails int `json:"fails"`
	// Requests is the number of requests in flight to this upstream now.
	Requests int `json:"requests"`
}

// ProxyCertificateStatus is one certificate in storage for a configured
// host (proxy.CertificateStatus).
type ProxyCertificateStatus struct {
	Names    []string  `json:"names"`
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"not_after"`
}

// LogLine is one line of GET /v1/programs/{name}/log, which answers with
// one JSON object per line (application/x-ndjson).
type LogLine struct {
	// Line is the text without its trailing newline.
	Line string `json:"line"`
}

// AlertsResponse is the answer to GET /v1/alerts.
type AlertsResponse struct {
	// Alerts are the active alerts, by severity (critical first), then
	// oldest first; empty, never null, when there are none.
	Alerts []alert.Alert `json:"alerts"`
	// Sinks are the configured [[alerts.sink]]s; empty without any.
	Sinks []alert.SinkStatus `json:"sinks"`
}

// AlertsTestResponse is the answer to POST /v1/alerts/test.
type AlertsTestResponse struct {
	// Results has one entry per sink, in config order; empty without sinks.
	Results []alert.TestResult `json:"results"`
}

// Health is the answer to GET /healthz. Anyone may ask: PID and Version
// are only told to a caller with a token (or on the unix socket).
type Health struct {
	OK      bool   `json:"ok"`
	PID     int    `json:"pid,omitempty"`
	Version string `json:"version,omitempty"`
}

// errorBody is every error answer.
type errorBody struct {
	Error string `json:"error"`
	// Code is machine-readable: bad_request, unauthorized, forbidden,
	// unknown_program, not_found, config_invalid, failed, unavailable.
	Code string `json:"code"`
	// Errors lists each problem when there are several (config_invalid).
	Errors []string `json:"errors,omitempty"`
}

// Error codes.
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
