package supervisor

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// TestPlanIsReloadsDiff: Plan foretells exactly what Reload then does, and
// changes nothing itself.
func TestPlanIsReloadsDiff(t *testing.T) {
	keep := helper(t, "keep", "sleep")
	change := helper(t, "change", "sleep")
	gone := helper(t, "gone", "sleep")
	s, _ := newSup(t, keep, change, gone)
	s.StartAutostart(context.Background())
	for _, n := range []string{"keep", "change", "gone"} {
		waitState(t, s, n, Running, 20*time.Second)
	}
	keep2, change2 := *keep, *change
	change2.Environment = map[string]string{"HOSTCTL_HELPER": "sleep", "X": "1"}
	next := []*ProgramConfig{&keep2, &change2, helper(t, "added", "sleep")}

	plan, procs, err := s.Plan(next)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 3 || procs[0].Name != "added" || procs[0].ProgramGroup != "added" {
		t.Fatalf("Plan's processes = %v", procs)
	}
	if want := (Diff{Added: []string{"added"}, Changed: []string{"change"}, Removed: []string{"gone"}}); !reflect.DeepEqual(plan, want) {
		t.Fatalf("Plan = %+v, want %+v", plan, want)
	}
	if got := len(s.ProcessConfigs()); got != 3 {
		t.Fatalf("Plan changed the programs: %d configs", got)
	}
	diff, err := s.Reload(context.Background(), next)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(plan, diff) {
		t.Errorf("Plan = %+v, Reload did %+v", plan, diff)
	}
	cfgs := s.ProcessConfigs()
	if len(cfgs) != 3 || cfgs[0].Name != "added" || cfgs[1].Name != "change" || cfgs[1].Program.Environment["X"] != "1" || cfgs[2].Name != "keep" {
		t.Errorf("Configs after reload = %v", cfgs)
	}
	if again, _, _ := s.Plan(next); len(again.Added)+len(again.Changed)+len(again.Removed) != 0 {
		t.Errorf("Plan after the reload = %+v, want nothing", again)
	}
}
