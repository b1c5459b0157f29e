package supervisor

import (
	"maps"
	"slices"
	"strings"
)

// Plan returns what Reload(ctx, cfgs) would change if called now, without
// changing anything: the same comparison Reload makes, process by process
// (instances included), with the processes cfgs configure, sorted by
// name. supervisord's `reread` is this; its `update` then
// applies it.
func (s *Supervisor) Plan(cfgs []*ProgramConfig) (Diff, []*ProcessConfig, error) {
	pl, err := s.diff(cfgs)
	if err != nil {
		return Diff{}, nil, err
	}
	procs := slices.SortedFunc(maps.Values(pl.next), func(a, b *ProcessConfig) int { return strings.Compare(a.Name, b.Name) })
	return pl.Diff, procs, nil
}

// ProcessConfigs returns the configs of the processes now supervised (as
// Plan's), sorted by name. They are shared: do not modify them.
func (s *Supervisor) ProcessConfigs() []*ProcessConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*ProcessConfig, 0, len(s.procs))
	for _, p := range s.procs {
		out = append(out, p.cfg)
	}
	slices.SortFunc(out, func(a, b *ProcessConfig) int { return strings.Compare(a.Name, b.Name) })
	return out
}
