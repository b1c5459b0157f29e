package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

// The checks of services hostctl does not run ([check.NAME]).
var (
	descCheckUp = prometheus.NewDesc("hostctl_check_up",
		"1 while the check is up, 0 while it is down or pending (no probe has passed yet).", []string{"check"}, nil)
	descCheckDuration = prometheus.NewDesc("hostctl_check_probe_duration_seconds",
		"How long the check's last probe took (0 before the first).", []string{"check"}, nil)
	descCheckProbes = prometheus.NewDesc("hostctl_check_probes_total",
		"Probes of the check run since hostctl started.", []string{"check"}, nil)
	descCheckFailures = prometheus.NewDesc("hostctl_check_failures_total",
		"Probes of the check that failed since hostctl started.", []string{"check"}, nil)
)

// checkCollector exports Sources.Checks.
type checkCollector struct{ m *Metrics }

func (checkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCheckUp, descCheckDuration, descCheckProbes, descCheckFailures} {
		ch <- d
	}
}

func (c checkCollector) Collect(ch chan<- prometheus.Metric) {
	if c.m.opts.Checks == nil {
		return
	}
	for _, ck := range c.m.opts.Checks() {
		up := 0.0
		if ck.State == apitype.CheckUp {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descCheckUp, prometheus.GaugeValue, up, ck.Name)
		ch <- prometheus.MustNewConstMetric(descCheckDuration, prometheus.GaugeValue, ck.LastDurationSeconds, ck.Name)
		ch <- prometheus.MustNewConstMetric(descCheckProbes, prometheus.CounterValue, float64(ck.Probes), ck.Name)
		ch <- prometheus.MustNewConstMetric(descCheckFailures, prometheus.CounterValue, float64(ck.ProbeFailures), ck.Name)
	}
}
