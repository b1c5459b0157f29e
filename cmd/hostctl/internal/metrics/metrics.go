// Package metrics is what hostctl measures over time and exports: the
// Prometheus metrics of GET /metrics (processes, proxy upstreams, drain,
// alerts) and the last hour of every process's memory, restarts and state
// for GET /v1/history (the dashboard's sparklines), sampled by one
// goroutine. It reads the processes, the proxy and the alerts through the
// functions of Sources, as the admin API reports them (apitype), and
// never changes anything.
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
)

// Sources are what the metrics and the history read.
type Sources struct {
	// Processes returns every process with its pgroup's usage (one scan
	// of /proc: call it once per scrape or sample). Required.
	Processes func() ([]apitype.Process, error)
	// Proxy returns the proxy's status, and false when no proxy is
	// configured. nil: no proxy.
	Proxy func() (apitype.ProxyStatus, bool)
	// Alerts returns the active alerts and every sink's delivery
	// counters. nil: no alerts.
	Alerts func() ([]apitype.Alert, []apitype.AlertSink)
	// Heartbeats returns every [[alerts.heartbeat]]'s counters. nil: none.
	Heartbeats func() []apitype.AlertHeartbeat
	// Checks returns every [check.NAME]'s state and counters. nil: no
	// checks.
	Checks func() []apitype.Check
	// LogRuleDropped returns the bytes of program output the alert log
	// rules did not read because their queue was full. nil: not exported.
	LogRuleDropped func() uint64
	// Deploys returns how many deploys ended with each result since
	// hostctl started (Deploys.Counts). nil: no [deploy].
	Deploys func() map[string]uint64
	// Live returns the live release of [deploy], nil before the first
	// deploy. nil: no [deploy].
	Live func() *apitype.Release
}

// Options configure Metrics.
type Options struct {
	Sources
	// HistoryInterval is how often every process is sampled for History,
	// which keeps the last hour. Default: DefaultHistoryInterval.
	HistoryInterval time.Duration
	// Logger gets the samples that fail and the scrapes' errors. Default:
	// no logging.
	Logger *zap.Logger
}

// Metrics exports the Prometheus metrics (Handler) and keeps the history
// (History). Start starts the sampler; Close ends it.
type Metrics struct {
	opts     Options
	log      *zap.Logger
	registry *prometheus.Registry
	hist     *history

	ctx    context.Context // ends the sampler
	cancel context.CancelFunc
	once   sync.Once // starts the sampler, or makes sure it never will
}

// New returns Metrics; nothing is sampled until Start.
func New(opts Options) *Metrics {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	m := &Metrics{opts: opts, log: opts.Logger, hist: newHistory(opts.HistoryInterval)}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.registry = prometheus.NewRegistry()
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collector{m},
		checkCollector{m},
		deployCollector{m},
	)
	return m
}

// Start starts sampling the history, once; later calls do nothing.
func (m *Metrics) Start() { m.once.Do(func() { go m.sample() }) }

// Close ends the sampler and waits for it; the history stays readable.
func (m *Metrics) Close() {
	m.cancel()
	m.once.Do(func() { close(m.hist.done) }) // never started: nothing to wait for
	<-m.hist.done
}

// History returns every process's samples of the last hour.
func (m *Metrics) History() apitype.HistoryResponse { return m.hist.get() }

// Handler serves the Prometheus metrics, one snapshot per scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorLog: zapPrintln{m.log}})
}

var (
	descState = prometheus.NewDesc("hostctl_program_state",
		"1 for the program's current state, 0 for the others.", []string{"program", "state"}, nil)
	descRestarts = prometheus.NewDesc("hostctl_program_restarts_total",
		"Automatic restarts of the program since its config was loaded.", []string{"program"}, nil)
	descUptime = prometheus.NewDesc("hostctl_program_uptime_seconds",
		"How long the program's current process has run (0 when none).", []string{"program"}, nil)
	descRSS = prometheus.NewDesc("hostctl_program_memory_rss_bytes",
		"Resident memory of the program's process group.", []string{"program"}, nil)
	descCPU = prometheus.NewDesc("hostctl_program_cpu_seconds_total",
		"User and system CPU time of the program's live process group (resets when the process is replaced).", []string{"program"}, nil)
	descProcs = prometheus.NewDesc("hostctl_program_processes",
		"Live processes in the program's process group.", []string{"program"}, nil)
	descDropped = prometheus.NewDesc("hostctl_program_log_dropped_bytes_total",
		"Program output dropped because the disk could not keep up or was full.", []string{"program"}, nil)
	descHealthy = prometheus.NewDesc("hostctl_program_healthy",
		"1 while the program is RUNNING and passing its health check ([program.NAME.health]); only programs with one.", []string{"program"}, nil)
	descHealthRestarts = prometheus.NewDesc("hostctl_program_health_restarts_total",
		"Restarts of the program because its health check failed, since its config was loaded; only programs with one.", []string{"program"}, nil)
	descMemLimit = prometheus.NewDesc("hostctl_program_memory_limit_bytes",
		"The program's memory_limit: the most resident memory its process group may hold; only programs with one.", []string{"program"}, nil)
	descMemRestarts = prometheus.NewDesc("hostctl_program_memory_restarts_total",
		"Restarts of the program because its process group stayed above memory_limit, since its config was loaded; only programs with one.", []string{"program"}, nil)
	descUpHealthy = prometheus.NewDesc("hostctl_proxy_upstream_healthy",
		"1 when the proxy considers the upstream healthy.", []string{"upstream"}, nil)
	descUpRequests = prometheus.NewDesc("hostctl_proxy_upstream_requests_in_flight",
		"Requests the proxy has in flight to the upstream.", []string{"upstream"}, nil)
	descUpDraining = prometheus.NewDesc("hostctl_proxy_upstream_draining",
		"1 while the upstream is taken out of its pool before its program stops (drain_timeout).", []string{"upstream"}, nil)
	descUpFails = prometheus.NewDesc("hostctl_proxy_upstream_fails",
		"Recent failed requests to the upstream counted by passive health checks.", []string{"upstream"}, nil)
	descDraining = prometheus.NewDesc("hostctl_proxy_draining",
		"1 while hostctl drains (health_path answers 503); only with health_path.", nil, nil)
	descSiteInFlight = prometheus.NewDesc("hostctl_proxy_requests_in_flight",
		"Requests the sites with health_path are answering now.", nil, nil)
	descProxyUp = prometheus.NewDesc("hostctl_proxy_running",
		"1 when the embedded proxy is running.", nil, nil)
	descAlertsActive = prometheus.NewDesc("hostctl_alerts_active",
		"Active alerts of the condition (fatal, disk_free, ...).", []string{"condition"}, nil)
	descAlertsSent = prometheus.NewDesc("hostctl_alerts_sent_total",
		"Alert events (triggers and resolves) delivered to the sink since hostctl started.", []string{"sink"}, nil)
	descAlertsFailed = prometheus.NewDesc("hostctl_alerts_failed_total",
		"Alert events given up on (after retry_for, or dropped from a full queue) since hostctl started.", []string{"sink"}, nil)
	descLogRuleDropped = prometheus.NewDesc("hostctl_log_rule_dropped_bytes_total",
		"Bytes of program output the alert log rules did not read because their queue was full (the output itself was written to its log).", nil, nil)
	descAlertsQueued = prometheus.NewDesc("hostctl_alerts_queued",
		"Alert events waiting for delivery to the sink, retries included.", []string{"sink"}, nil)
	descHeartbeatSent = prometheus.NewDesc("hostctl_heartbeat_pings_total",
		"Heartbeat pings the outside monitor took (2xx) since hostctl started, the start form included.", []string{"heartbeat"}, nil)
	descHeartbeatFailed = prometheus.NewDesc("hostctl_heartbeat_failed_total",
		"Heartbeat pings that failed (no answer within the timeout, or not 2xx) since hostctl started.", []string{"heartbeat"}, nil)
)

var allStates = []apitype.State{apitype.Stopped, apitype.Starting, apitype.Running,
	apitype.Backoff, apitype.Stopping, apitype.Exited, apitype.Fatal}

// collector exports processes and proxy upstreams; each scrape takes one
// snapshot (one /proc scan).
type collector struct{ m *Metrics }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descRestarts, descUptime, descRSS, descCPU, descProcs,
		descDropped, descHealthy, descHealthRestarts, descMemLimit, descMemRestarts, descUpHealthy, descUpRequests, descUpFails, descUpDraining, descProxyUp, descDraining, descSiteInFlight,
		descAlertsActive, descAlertsSent, descAlertsFailed, descAlertsQueued, descLogRuleDropped, descHeartbeatSent, descHeartbeatFailed} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	progs, err := c.m.opts.Processes()
	if err == nil {
		for _, p := range progs {
			for _, st := range allStates {
				v := 0.0
				if p.State == st {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, p.Name, string(st))
			}
			ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(p.Restarts), p.Name)
			ch <- prometheus.MustNewConstMetric(descUptime, prometheus.GaugeValue, p.UptimeSeconds, p.Name)
			ch <- prometheus.MustNewConstMetric(descRSS, prometheus.GaugeValue, float64(p.RSSBytes), p.Name)
			ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, p.CPUSeconds, p.Name)
			ch <- prometheus.MustNewConstMetric(descProcs, prometheus.GaugeValue, float64(p.Processes), p.Name)
			ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(p.DroppedLogBytes), p.Name)
			if h := p.Health; h != nil {
				v := 0.0
				if h.Healthy {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, v, p.Name)
				ch <- prometheus.MustNewConstMetric(descHealthRestarts, prometheus.CounterValue, float64(h.Restarts), p.Name)
			}
			if p.MemoryLimit > 0 {
				ch <- prometheus.MustNewConstMetric(descMemLimit, prometheus.GaugeValue, float64(p.MemoryLimit), p.Name)
				ch <- prometheus.MustNewConstMetric(descMemRestarts, prometheus.CounterValue, float64(p.MemoryRestarts), p.Name)
			}
		}
	}
	if ps, ok := c.proxy(); ok {
		up := 0.0
		if ps.Running {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descProxyUp, prometheus.GaugeValue, up)
		if dr := ps.Drain; dr != nil {
			v := 0.0
			if dr.Draining {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descDraining, prometheus.GaugeValue, v)
			ch <- prometheus.MustNewConstMetric(descSiteInFlight, prometheus.GaugeValue, float64(dr.InFlight))
		}
		for _, u := range ps.Upstreams {
			h := 0.0
			if u.Healthy {
				h = 1
			}
			ch <- prometheus.MustNewConstMetric(descUpHealthy, prometheus.GaugeValue, h, u.Address)
			ch <- prometheus.MustNewConstMetric(descUpRequests, prometheus.GaugeValue, float64(u.Requests), u.Address)
			ch <- prometheus.MustNewConstMetric(descUpFails, prometheus.GaugeValue, float64(u.Fails), u.Address)
			dr := 0.0
			if u.Draining {
				dr = 1
			}
			ch <- prometheus.MustNewConstMetric(descUpDraining, prometheus.GaugeValue, dr, u.Address)
		}
	}
	if f := c.m.opts.LogRuleDropped; f != nil {
		ch <- prometheus.MustNewConstMetric(descLogRuleDropped, prometheus.CounterValue, float64(f()))
	}
	if a := c.m.opts.Alerts; a != nil {
		alerts, sinks := a()
		// Every condition, 0 included: an alerting rule can then tell "no
		// alert" from "no data".
		active := make(map[string]int, len(alert.Conditions))
		for _, al := range alerts {
			active[al.Condition]++
		}
		for _, cond := range alert.Conditions {
			ch <- prometheus.MustNewConstMetric(descAlertsActive, prometheus.GaugeValue, float64(active[cond]), cond)
			delete(active, cond)
		}
		for cond, n := range active { // a condition this build does not list
			ch <- prometheus.MustNewConstMetric(descAlertsActive, prometheus.GaugeValue, float64(n), cond)
		}
		for _, sk := range sinks {
			ch <- prometheus.MustNewConstMetric(descAlertsSent, prometheus.CounterValue, float64(sk.Sent), sk.Name)
			ch <- prometheus.MustNewConstMetric(descAlertsFailed, prometheus.CounterValue, float64(sk.Failed), sk.Name)
			ch <- prometheus.MustNewConstMetric(descAlertsQueued, prometheus.GaugeValue, float64(sk.Queued), sk.Name)
		}
	}
	if h := c.m.opts.Heartbeats; h != nil {
		for _, b := range h() {
			ch <- prometheus.MustNewConstMetric(descHeartbeatSent, prometheus.CounterValue, float64(b.Sent), b.Name)
			ch <- prometheus.MustNewConstMetric(descHeartbeatFailed, prometheus.CounterValue, float64(b.Failed), b.Name)
		}
	}
}

// proxy is Sources.Proxy's answer; false without one.
func (c collector) proxy() (apitype.ProxyStatus, bool) {
	if c.m.opts.Proxy == nil {
		return apitype.ProxyStatus{}, false
	}
	return c.m.opts.Proxy()
}

type zapPrintln struct{ log *zap.Logger }

func (z zapPrintln) Println(v ...any) {
	z.log.Sugar().Warn(v...)
}
