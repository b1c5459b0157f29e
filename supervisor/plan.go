package supervisor

import (
	"reflect"
	"sort"
)

// Plan returns what Reload(ctx, cfgs) would change if called now, without
// changing anything: the same comparison (a program whose config differs
// in any way is changed). supervisord's `reread` is this; its `update`
// then applies it.
func (s *Supervisor) Plan(cfgs []*ProgramConfig) Diff {
	d := Diff{Added: []string{}, Changed: []string{}, Removed: []string{}}
	next := make(map[string]*ProgramConfig, len(cfgs))
	for _, c := range cfgs {
		next[c.Name] = c
	}
	s.mu.Lock()
	for n, p := range s.progs {
		c, ok := next[n]
		switch {
		case !ok:
			d.Removed = append(d.Removed, n)
		case !reflect.DeepEqual(c, p.cfg):
			d.Changed = append(d.Changed, n)
		}
	}
	for n := range next {
		if _, ok := s.progs[n]; !ok {
			d.Added = append(d.Added, n)
		}
	}
	s.mu.Unlock()
	sort.Strings(d.Added)
	sort.Strings(d.Changed)
	sort.Strings(d.Removed)
	return d
}

// Configs returns the configs of the programs now supervised, sorted by
// name. They are shared: do not modify them.
func (s *Supervisor) Configs() []*ProgramConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*ProgramConfig, 0, len(s.progs))
	for _, p := range s.progs {
		out = append(out, p.cfg)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
