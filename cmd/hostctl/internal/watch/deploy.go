package watch

import (
	"fmt"
	"strings"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
)

// Deployed applies the deploy rules to a deploy that ended:
//   - failed: deploy_failed:RELEASE (error), with the failing step, why in
//     one line (the traceback's last line for a broken import) and the
//     step's last lines; the live release kept serving;
//   - rolled_back: deploy_rolled_back:RELEASE (critical): the release
//     went live and hostctl went back to the one before it;
//   - ok: every deploy_failed and deploy_rolled_back alert resolves;
//   - canceled: nothing (a person stopped it and knows).
//
// Each failed release is its own alert (a second failure is news to the
// person on call); the next good deploy resolves them all. Deployed only
// calls the alert manager, so it may be called from any goroutine.
func (w *Watcher) Deployed(rec apitype.DeployRecord) {
	rel := rec.Release
	if rel == "" {
		rel = "(no release: " + rec.Step + ")"
	}
	switch rec.Result {
	case apitype.DeployOK:
		how := fmt.Sprintf("release %s deployed at %s", rec.Release, rec.Ended.UTC().Format(time.RFC3339))
		for _, k := range w.m.Keys() {
			if strings.HasPrefix(k, alert.CondDeployFailed+":") || strings.HasPrefix(k, alert.CondDeployRolledBack+":") {
				w.m.Clear(k, how)
			}
		}
	case apitype.DeployFailed:
		step := rec.Step
		if step == "" {
			step = "deploy"
		}
		w.m.Set(alert.Alert{
			Key: alert.CondDeployFailed + ":" + rel, Condition: alert.CondDeployFailed, Severity: alert.Error,
			Summary:   fmt.Sprintf("deploy of release %s failed at %s on %s: %s; the live release keeps serving", rel, step, w.m.Host(), rec.Reason),
			Details:   deployDetails(rec),
			LastLines: rec.LastLines,
			Command:   "hostctl releases",
		})
	case apitype.DeployRolledBack:
		w.m.Set(alert.Alert{
			Key: alert.CondDeployRolledBack + ":" + rel, Condition: alert.CondDeployRolledBack, Severity: alert.Critical,
			Summary:   fmt.Sprintf("release %s went live on %s and was rolled back (%s): %s", rel, w.m.Host(), rec.Step, rec.Reason),
			Details:   deployDetails(rec),
			LastLines: rec.LastLines,
			Command:   "hostctl releases; hostctl status",
		})
	}
}

func deployDetails(rec apitype.DeployRecord) map[string]any {
	d := map[string]any{"release": rec.Release, "step": rec.Step, "result": rec.Result, "started": rec.Started.UTC().Format(time.RFC3339)}
	if rec.SHA != "" {
		d["sha"] = rec.SHA
	}
	return d
}
