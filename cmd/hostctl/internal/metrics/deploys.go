package metrics

import (
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/supervisor/trust"
)

// keepDeploys is how many deploys Deploys keeps (the dashboard's and
// GET /v1/releases' last deploys).
const keepDeploys = 20

// Deploys is the record of how deploys ended: a count per result since
// hostctl started (hostctl_deploys_total) and the last deploys, kept in
// a file of the state dir so that they outlive a restart of hostctl. Its
// methods may be called from any goroutine.
type Deploys struct {
	path string // "": kept in memory only
	log  *zap.Logger

	mu     sync.Mutex // guards last and counts
	last   []apitype.DeployRecord
	counts map[string]uint64
}

// NewDeploys returns the record kept in path (hostctl's own file, read
// with trust.ReadOwnFile: a link or another user's file planted there is
// refused), with the deploys it already holds; "" keeps it in memory.
func NewDeploys(path string, log *zap.Logger) *Deploys {
	if log == nil {
		log = zap.NewNop()
	}
	d := &Deploys{path: path, log: log, counts: map[string]uint64{}}
	if path == "" {
		return d
	}
	b, err := trust.ReadOwnFile(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("deploys: cannot read the last deploys; starting afresh", zap.Error(err))
		}
		return d
	}
	if err := json.Unmarshal(b, &d.last); err != nil {
		log.Warn("deploys: the last deploys are unreadable; starting afresh", zap.String("file", path), zap.Error(err))
		d.last = nil
	}
	if len(d.last) > keepDeploys {
		d.last = d.last[:keepDeploys]
	}
	return d
}

// Add records a deploy that ended: it is counted, kept first among the
// last deploys, and saved (O_EXCL temp file, then rename).
func (d *Deploys) Add(rec apitype.DeployRecord) {
	d.mu.Lock()
	d.counts[rec.Result]++
	d.last = slices.Insert(d.last, 0, rec)
	if len(d.last) > keepDeploys {
		d.last = d.last[:keepDeploys]
	}
	b, err := json.Marshal(d.last)
	d.mu.Unlock()
	if d.path == "" {
		return
	}
	if err == nil {
		err = trust.WriteOwnFile(d.path, b, 0o600)
	}
	if err != nil {
		d.log.Warn("deploys: cannot save the last deploys", zap.Error(err))
	}
}

// Last returns the last deploys, newest first; never nil.
func (d *Deploys) Last() []apitype.DeployRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]apitype.DeployRecord{}, d.last...)
}

// Counts returns how many deploys ended with each result since hostctl
// started: every apitype.DeployResults entry, 0 included.
func (d *Deploys) Counts() map[string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]uint64, len(apitype.DeployResults))
	for _, r := range apitype.DeployResults {
		out[r] = d.counts[r]
	}
	for r, n := range d.counts {
		out[r] = n
	}
	return out
}

// The deploys of [deploy].
var (
	descDeploys = prometheus.NewDesc("hostctl_deploys_total",
		"Deploys that ended with the result (ok, failed, rolled_back, canceled) since hostctl started.", []string{"result"}, nil)
	descReleaseInfo = prometheus.NewDesc("hostctl_release_info",
		"1 for the live release of [deploy]: its id, commit and blue/green slot.", []string{"release", "sha", "slot"}, nil)
)

// deployCollector exports Sources.Deploys and Sources.Live.
type deployCollector struct{ m *Metrics }

func (deployCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDeploys
	ch <- descReleaseInfo
}

func (c deployCollector) Collect(ch chan<- prometheus.Metric) {
	if f := c.m.opts.Deploys; f != nil {
		counts := f()
		for _, r := range slices.Sorted(maps.Keys(counts)) {
			ch <- prometheus.MustNewConstMetric(descDeploys, prometheus.CounterValue, float64(counts[r]), r)
		}
	}
	if f := c.m.opts.Live; f != nil {
		if r := f(); r != nil {
			ch <- prometheus.MustNewConstMetric(descReleaseInfo, prometheus.GaugeValue, 1, r.ID, r.SHA, r.Slot)
		}
	}
}
