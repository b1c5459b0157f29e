package metrics

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

// TestDeploysKept: the last deploys outlive a restart (a new Deploys on
// the same file), newest first and at most keepDeploys; the counts are
// since this start; a file planted as a link is not read.
func TestDeploysKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deploys.json")
	d := NewDeploys(path, nil)
	t0 := time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)
	for i := range keepDeploys + 3 {
		res := apitype.DeployOK
		if i%2 == 1 {
			res = apitype.DeployFailed
		}
		d.Add(apitype.DeployRecord{Release: "r" + string(rune('a'+i)), Result: res, Started: t0.Add(time.Duration(i) * time.Minute)})
	}
	if c := d.Counts(); c[apitype.DeployOK] != 12 || c[apitype.DeployFailed] != 11 || c[apitype.DeployRolledBack] != 0 || len(c) != 4 {
		t.Errorf("Counts = %v", c)
	}
	again := NewDeploys(path, nil)
	last := again.Last()
	if len(last) != keepDeploys || last[0].Release != "rw" || last[keepDeploys-1].Release != "rd" {
		t.Errorf("after a restart: %d deploys, first %+v", len(last), last[0])
	}
	if c := again.Counts(); c[apitype.DeployOK] != 0 || c[apitype.DeployFailed] != 0 {
		t.Errorf("Counts after a restart = %v, want 0s (a counter since hostctl started)", c)
	}
	link := filepath.Join(t.TempDir(), "deploys.json")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if got := NewDeploys(link, nil).Last(); len(got) != 0 {
		t.Errorf("read %d deploys through a link", len(got))
	}
}
