package front

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
func (d *drainState) set(draining bool, now time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.draining == draining {
		return nil
	}
	rec := drainRecord{Draining: draining}
	if draining {
		rec.Since = now
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

// healthPath returns [proxy] health_path, or control.ErrNoHealthPath.
func (f *Front) healthPath() (string, error) {
	c := f.config()
	if c.healthPath == "" {
		return "", control.ErrNoHealthPath
	}
	return c.healthPath, nil
}

// DrainStatus is the drain state and the proxy's traffic
// (control.Drainer).
func (f *Front) DrainStatus() (apitype.DrainStatus, error) {
	path, err := f.healthPath()
	if err != nil {
		return apitype.DrainStatus{}, err
	}
	return f.drainStatus(path), nil
}

// drainStatus is the drain state and the proxy's traffic.
func (f *Front) drainStatus(healthPath string) apitype.DrainStatus {
	st := apitype.DrainStatus{HealthPath: healthPath}
	draining, since := f.drain.get()
	if draining {
		st.Draining, st.Since = true, &since
	}
	if p := f.proxy(); p != nil {
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

// Drain starts draining: health_path answers 503 (control.Drainer).
func (f *Front) Drain(ctx context.Context, wait, quiet time.Duration) (apitype.DrainStatus, error) {
	path, err := f.healthPath()
	if err != nil {
		return apitype.DrainStatus{}, err
	}
	was, _ := f.drain.get()
	if err := f.drain.set(true, f.now()); err != nil {
		return apitype.DrainStatus{}, err
	}
	if !was {
		f.log.Info("draining: health_path answers 503; requests that still arrive are served", zap.String("health_path", path))
	}
	t0 := f.now()
	st := f.drainStatus(path)
	if wait <= 0 {
		return st, nil
	}
	p := f.proxy()
	if p == nil {
		st.Quiet = true // no proxy: no request arrives
		return st, nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	_, werr := p.WaitQuiet(wctx, quiet)
	st = f.drainStatus(path)
	st.WaitedSeconds = f.now().Sub(t0).Seconds()
	st.Quiet = werr == nil
	st.TimedOut = werr != nil && ctx.Err() == nil
	return st, nil
}

// Undrain ends the drain (control.Drainer).
func (f *Front) Undrain(ctx context.Context, wait time.Duration) (apitype.DrainStatus, error) {
	path, err := f.healthPath()
	if err != nil {
		return apitype.DrainStatus{}, err
	}
	was, _ := f.drain.get()
	t0 := f.now()
	if err := f.drain.set(false, t0); err != nil {
		return apitype.DrainStatus{}, err
	}
	if was {
		f.log.Info("undrained: health_path answers as the programs are", zap.String("health_path", path))
	}
	st := f.drainStatus(path)
	if wait <= 0 {
		return st, nil
	}
	p := f.proxy()
	if p == nil {
		st.TimedOut = true
		return st, nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	werr := p.WaitHealthOK(wctx, t0)
	st = f.drainStatus(path)
	st.WaitedSeconds = f.now().Sub(t0).Seconds()
	st.SeenHealthy = werr == nil
	st.TimedOut = werr != nil && ctx.Err() == nil
	return st, nil
}

var _ control.Drainer = (*Front)(nil)

// ProxyDrain is the drain part of the proxy status; nil without
// health_path.
func (f *Front) ProxyDrain() *apitype.DrainStatus {
	path, err := f.healthPath()
	if err != nil {
		return nil
	}
	st := f.drainStatus(path)
	return &st
}

// drainPath is where drain.json goes: the state dir.
func drainPath(stateDir string) string { return filepath.Join(stateDir, drainFile) }
