package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/control"
	"github.com/hostctl/hostctl/proxy"
	"github.com/hostctl/hostctl/supervisor"
	"github.com/hostctl/hostctl/supervisor/trust"
)

// drainFile holds the drain state inside the state dir. A drain survives
// a restart of hostctl: a host taken out of its pool for maintenance must
// not rejoin it because it rebooted; hostctl undrain ends it, and status
// and the log say it is on.
const drainFile = "drain.json"

// drainState is whether hostctl drains: its health_path answers 503. It
// survives proxy reloads (it is not the proxy's) and restarts (the file).
type drainState struct {
	path string

	mu       sync.Mutex // guards the fields below
	draining bool
	since    time.Time
}

// drainRecord is drain.json.
type drainRecord struct {
	Draining bool      `json:"draining"`
	Since    time.Time `json:"since"`
}

func loadDrain(path string) (*drainState, error) {
	d := &drainState{path: path}
	b, err := trust.ReadOwnFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return nil, fmt.Errorf("drain state: %w", err)
	}
	var rec drainRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("drain state %s: %w (remove the file to start undrained)", path, err)
	}
	d.draining, d.since = rec.Draining, rec.Since
	return d, nil
}

// set records the drain state, on disk first: a state that could not be
// saved is not taken.
func (d *drainState) set(draining bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.draining == draining {
		return nil
	}
	rec := drainRecord{Draining: draining}
	if draining {
		rec.Since = time.Now()
	}
	b, _ := json.Marshal(rec)
	// O_EXCL temp file and rename: never through a name planted in the dir.
	if err := trust.WriteOwnFile(d.path, b, 0o640); err != nil {
		return fmt.Errorf("saving the drain state: %w", err)
	}
	d.draining, d.since = rec.Draining, rec.Since
	return nil
}

func (d *drainState) get() (bool, time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.draining, d.since
}

// siteHealth answers health_path for a site with the upstreams ups: not
// while draining; else healthy when a program behind them is RUNNING and
// passing its health check, or when no program of this hostctl serves them.
// Anyone may ask health_path, so the answer says ok, down or draining and
// no more: which program is in which state is for hostctl status.
func (d *Daemon) siteHealth(ups []string) (bool, string) {
	if draining, _ := d.drain.get(); draining {
		return false, "draining"
	}
	names := programsServing(d.config(), ups)
	if len(names) == 0 {
		return true, "ok"
	}
	sts, err := d.sup.Status(names...)
	if err != nil {
		d.log.Warn("health_path: reading the programs' state", zap.Error(err))
		return false, "down"
	}
	for _, st := range sts {
		if st.State == supervisor.Running && (st.Health == nil || st.Health.Healthy) {
			return true, "ok"
		}
	}
	return false, "down"
}

// healthPath returns [proxy] health_path, or ErrNoHealthPath.
func (d *Daemon) healthPath() (string, error) {
	cfg := d.config()
	if cfg.Proxy == nil || cfg.Proxy.HealthPath == "" {
		return "", control.ErrNoHealthPath
	}
	return cfg.Proxy.HealthPath, nil
}

// drainer is the admin API's view of the drain (control.Drainer).
type drainer struct{ d *Daemon }

func (dr drainer) DrainStatus() (apitype.DrainStatus, error) {
	path, err := dr.d.healthPath()
	if err != nil {
		return apitype.DrainStatus{}, err
	}
	return dr.d.drainStatus(path), nil
}

// drainStatus is the drain state and the proxy's traffic.
func (d *Daemon) drainStatus(healthPath string) apitype.DrainStatus {
	st := apitype.DrainStatus{HealthPath: healthPath}
	draining, since := d.drain.get()
	if draining {
		st.Draining, st.Since = true, &since
	}
	if p := d.proxy.Proxy(); p != nil {
		tr := p.Traffic()
		st.InFlight = tr.InFlight
		st.LastRequest = timePtr(tr.LastRequest)
		st.LastHealthOK = timePtr(tr.LastHealthOK)
	}
	return st
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (dr drainer) Drain(ctx context.Context, wait, quiet time.Duration) (apitype.DrainStatus, error) {
	d := dr.d
	path, err := d.healthPath()
	if err != nil {
		return apitype.DrainStatus{}, err
	}
	was, _ := d.drain.get()
	if err := d.drain.set(true); err != nil {
		return apitype.DrainStatus{}, err
	}
	if !was {
		d.log.Info("draining: health_path answers 503; requests that still arrive are served", zap.String("health_path", path))
	}
	t0 := time.Now()
	st := d.drainStatus(path)
	if wait <= 0 {
		return st, nil
	}
	p := d.proxy.Proxy()
	if p == nil {
		st.Quiet = true // no proxy: no request arrives
		return st, nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	_, werr := p.WaitQuiet(wctx, quiet)
	st = d.drainStatus(path)
	st.WaitedSeconds = time.Since(t0).Seconds()
	st.Quiet = werr == nil
	st.TimedOut = werr != nil && ctx.Err() == nil
	return st, nil
}

func (dr drainer) Undrain(ctx context.Context, wait time.Duration) (apitype.DrainStatus, error) {
	d := dr.d
	path, err := d.healthPath()
	if err != nil {
		return apitype.DrainStatus{}, err
	}
	was, _ := d.drain.get()
	t0 := time.Now()
	if err := d.drain.set(false); err != nil {
		return apitype.DrainStatus{}, err
	}
	if was {
		d.log.Info("undrained: health_path answers as the programs are", zap.String("health_path", path))
	}
	st := d.drainStatus(path)
	if wait <= 0 {
		return st, nil
	}
	p := d.proxy.Proxy()
	if p == nil {
		st.TimedOut = true
		return st, nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	werr := p.WaitHealthOK(wctx, t0)
	st = d.drainStatus(path)
	st.WaitedSeconds = time.Since(t0).Seconds()
	st.SeenHealthy = werr == nil
	st.TimedOut = werr != nil && ctx.Err() == nil
	return st, nil
}

var _ control.Drainer = drainer{}

// proxyDrain is the drain part of the proxy status; nil without
// health_path.
func (d *Daemon) proxyDrain(cfgProxy *proxy.Config) *apitype.DrainStatus {
	if cfgProxy == nil || cfgProxy.HealthPath == "" {
		return nil
	}
	st := d.drainStatus(cfgProxy.HealthPath)
	return &st
}

// drainPath is where drain.json goes: the state dir.
func drainPath(stateDir string) string { return filepath.Join(stateDir, drainFile) }
