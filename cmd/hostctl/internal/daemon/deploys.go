package daemon

// What hostctl tells about deploys (issue 23 §4): the releases and the
// last deploys (GET /v1/releases, status, the dashboard), the metrics,
// and the deploy alerts. The deploy itself is deploy.go's.

import (
	"slices"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/deploy"
)

// lastLinesKept is how many of a failed deploy's last lines its record
// and its alert carry.
const lastLinesKept = 20

// DeployEnded records how a deploy ended: counted and kept
// (hostctl_deploys_total, the last deploys) and alerted on
// (deploy_failed, deploy_rolled_back, each resolved by the next good
// deploy). It is called once per deploy end: by Deploy with ok, failed
// or canceled, and by a rollback after the switch with rolled_back.
func (d *Daemon) DeployEnded(rec apitype.DeployRecord) {
	if rec.Seconds == 0 && !rec.Ended.IsZero() {
		rec.Seconds = rec.Ended.Sub(rec.Started).Seconds()
	}
	d.deploys.Add(rec)
	if d.watch != nil {
		d.watch.Deployed(rec)
	}
}

// reassertDeployAlerts raises again, at start, the deploy alerts the
// last deploys leave true (the failures since the last good deploy): an
// alert the previous hostctl left active is then kept, not resolved as
// "cleared while hostctl was restarting", and not sent again.
func (d *Daemon) reassertDeployAlerts() {
	for _, rec := range slices.Backward(d.deploys.Last()) {
		d.watch.Deployed(rec)
	}
}

// record is how this deploy ended: err from run, canceled when its
// context ended (Ctrl-C, the client gone).
func (r *deployRun) record(started time.Time, err error, canceled bool) apitype.DeployRecord {
	now := time.Now()
	rec := apitype.DeployRecord{Release: r.rel.ID, SHA: r.rel.SHA, Result: apitype.DeployOK,
		Started: started.UTC(), Ended: now.UTC(), Seconds: now.Sub(started).Seconds()}
	live, ok, _ := r.h.Live()
	isLive := ok && live.ID != "" && live.ID == r.rel.ID
	if isLive {
		rec.Slot = live.Slot
	}
	if err == nil {
		return rec
	}
	rec.Result, rec.Step = apitype.DeployFailed, r.cur
	if canceled && !isLive {
		rec.Result = apitype.DeployCanceled
	}
	rec.Reason = deploy.Reason(err.Error())
	rec.LastLines = deploy.LastLines(err.Error(), lastLinesKept)
	return rec
}

// Releases is GET /v1/releases (control.Releases): every release, the
// live one and the last deploys; Configured false without [deploy].
func (d *Daemon) Releases() (apitype.ReleasesResponse, error) {
	out := apitype.ReleasesResponse{Releases: []apitype.Release{}, Deploys: d.deploys.Last()}
	cfg := d.config()
	if cfg.Deploy == nil {
		return out, nil
	}
	out.Configured = true
	rs, err := deploy.Open(cfg.Deploy, cfg.Admin.StateDir).Releases()
	if err != nil {
		return out, err
	}
	for _, r := range rs {
		a := r.Wire()
		out.Releases = append(out.Releases, a)
		if r.State == deploy.Live {
			out.Live = &a
		}
	}
	return out, nil
}

// DeployCounts is how many deploys ended with each result since hostctl
// started; nil without [deploy] (no hostctl_deploys_total then).
func (d *Daemon) DeployCounts() map[string]uint64 {
	if d.config().Deploy == nil {
		return nil
	}
	return d.deploys.Counts()
}
