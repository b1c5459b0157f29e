package supervisor

import (
	"maps"
	"slices"
	"strings"
)

// Plan returns what Reload(ctx, cfgs) would change if called now, without
// changing anything: the same comparison Reload makes, process by process
// (instances included), with the processes cfgs configure (one config per
// process: Name the process name, Program, Instance and ProgramGroup set),
// sorted by name. supervisord's `reread` is this; its `update` then
// applies it.
func (s *Supervisor) Plan(cfgs []*ProgramConfig) (Diff, []*ProgramConfig, error) {
	pl, err := s.diff(cfgs)
	if err != nil {
		return Diff{}, nil, err
	}
	procs := slices.SortedFunc(maps.Values(pl.next), func(a, b *ProgramConfig) int { return strings.Compare(a.Name, b.Name) })
	return pl.Diff, procs, nil
}

// Configs returns the configs of the processes now supervised (one per
// instance, as Plan's), sorted by name. They are shared: do not modify
// them.
func (s *Supervisor) Configs() []*ProgramConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*ProgramConfig, 0, len(s.procs))
	for _, p := range s.procs {
		out = append(out, p.cfg)
	}
	slices.SortFunc(out, func(a, b *ProgramConfig) int { return strings.Compare(a.Name, b.Name) })
	return out
}
