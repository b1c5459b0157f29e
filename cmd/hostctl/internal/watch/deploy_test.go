package watch

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
)

// TestDeployAlerts walks deploys as they end: each failed release is its
// own deploy_failed alert carrying its step and the traceback's last
// line, a rolled back one a critical deploy_rolled_back, a cancel
// changes nothing, and the next good deploy resolves them all.
func TestDeployAlerts(t *testing.T) {
	const tb = "ModuleNotFoundError: No module named 'no_such_module_v3'"
	rec := func(rel, result, step, reason string, lines ...string) apitype.DeployRecord {
		return apitype.DeployRecord{Release: rel, Result: result, Step: step, Reason: reason, LastLines: lines,
			Started: t0, Ended: t0.Add(time.Minute)}
	}
	x := newWorld()
	steps := []struct {
		name string
		rec  apitype.DeployRecord
		want []string // the active alert keys after it
	}{
		{"good", rec("r1", apitype.DeployOK, "", ""), nil},
		{"broken import", rec("r2", apitype.DeployFailed, "gate", "gunicorn@b did not start: FATAL: "+tb, tb, "[INFO] Worker exiting"),
			[]string{"deploy_failed:r2"}},
		{"build fails too", rec("r3", apitype.DeployFailed, "prepare", "build[0] (pip install): exit status 1"),
			[]string{"deploy_failed:r2", "deploy_failed:r3"}},
		{"canceled", rec("r4", apitype.DeployCanceled, "gate", "cancelled before the switch"),
			[]string{"deploy_failed:r2", "deploy_failed:r3"}},
		{"rolled back", rec("r5", apitype.DeployRolledBack, "watch", "gunicorn@a crash-looped after the switch", "RuntimeError: boom"),
			[]string{"deploy_failed:r2", "deploy_failed:r3", "deploy_rolled_back:r5"}},
		{"no release: the fetch failed", rec("", apitype.DeployFailed, "prepare", "git fetch: exit status 128"),
			[]string{"deploy_failed:(no release: prepare)", "deploy_failed:r2", "deploy_failed:r3", "deploy_rolled_back:r5"}},
		{"next good deploy", rec("r6", apitype.DeployOK, "", ""), nil},
	}
	for _, s := range steps {
		x.w.Deployed(s.rec)
		if got := x.alerts.Keys(); !slices.Equal(got, s.want) {
			t.Fatalf("after %s: active %q, want %q", s.name, got, s.want)
		}
	}
	// What the receivers got for the broken import and the rollback.
	x = newWorld()
	x.w.Deployed(steps[1].rec)
	x.w.Deployed(steps[4].rec)
	a := x.alerts.active["deploy_failed:r2"]
	if a.Condition != alert.CondDeployFailed || a.Severity != alert.Error || !strings.Contains(a.Summary, "at gate") ||
		!strings.HasSuffix(a.Summary, tb+"; the live release keeps serving") || len(a.LastLines) == 0 || a.LastLines[0] != tb ||
		a.Details["step"] != "gate" || a.Details["release"] != "r2" || a.Command == "" {
		t.Errorf("deploy_failed = %+v", a)
	}
	if a := x.alerts.active["deploy_rolled_back:r5"]; a.Condition != alert.CondDeployRolledBack || a.Severity != alert.Critical ||
		!strings.Contains(a.Summary, "rolled back") || !slices.Equal(a.LastLines, []string{"RuntimeError: boom"}) {
		t.Errorf("deploy_rolled_back = %+v", a)
	}
	// Other alerts are not a deploy's to resolve.
	x.alerts.Set(alert.Alert{Key: "fatal:web", Condition: alert.CondFatal})
	x.w.Deployed(steps[6].rec)
	if got := x.alerts.Keys(); !slices.Equal(got, []string{"fatal:web"}) {
		t.Errorf("after a good deploy: active %q, want only fatal:web", got)
	}
}
