package supervisor

import (
	"maps"
	"slices"
	"strings"
)

// What a name given on the command line or to an API stands for is
// decided here, once: the REST API and the CLI (through Supervisor's
// methods, which call Match) and supervisord's XML-RPC API (which calls
// it with SupervisordNames) read names with the same function, and show
// them with the same Namespec.

// ProcessNames are the names one process answers to.
type ProcessNames struct {
	// Process is the process name, unique among processes, programs and
	// program groups ("celery_0", or "web" for a program with one
	// instance).
	Process string
	// Program is its program's name ("celery").
	Program string
	// Group is its program group (programgroups.go): its program's
	// [group.NAME], else the program name.
	Group string
}

// Namespec is how a process is shown: GROUP:NAME when its program group
// has another name than the process ("celery:celery_0", "web:gunicorn"),
// else NAME ("web"), as supervisorctl shows processes. Both NameRules take
// it back.
func (n ProcessNames) Namespec() string {
	if n.Group == "" || n.Group == n.Process {
		return n.Process
	}
	return n.Group + ":" + n.Process
}

// NameRules say how Match reads a name.
type NameRules uint8

const (
	// HostctlNames are the rules of hostctl's CLI and REST API. NAME is a
	// process, else a program (every instance of it), else a program
	// group (every process of its programs). GROUP:* is every process of
	// GROUP and GROUP:NAME the process or program NAME in it, where GROUP
	// is a program group or a program. "GROUP:" stands for nothing.
	HostctlNames NameRules = iota
	// SupervisordNames are supervisord's rules for a process name
	// (split_namespec, then _getGroupAndProcess), which supervisorctl and
	// the other XML-RPC clients rely on. GROUP:NAME is the process NAME of
	// the program group GROUP; GROUP:* and GROUP: are the whole group
	// (whole is true); NAME alone is NAME:NAME, so a program with
	// instances ("celery", whose processes are celery:celery_0, ...)
	// stands for nothing. One addition of hostctl's: when no program
	// group is called NAME, NAME alone is the process of that name in any
	// group ("celery_0", "gunicorn" for web:gunicorn).
	SupervisordNames
	// SupervisordGroup is the rule of supervisord's *ProcessGroup methods:
	// the name of a program group, always whole.
	SupervisordGroup
)

// Match returns the indexes in procs of the processes that name stands
// for under rules, in the order of procs, and whether name stands for a
// whole program group (see NameRules; supervisord answers such a name
// with one result per process). None: the name is unknown. "all" is not
// special here (Supervisor.Resolve makes it every process).
func Match(rules NameRules, name string, procs []ProcessNames) (idx []int, whole bool) {
	sel := func(match func(ProcessNames) bool) []int {
		var out []int
		for i, p := range procs {
			if match(p) {
				out = append(out, i)
			}
		}
		return out
	}
	switch rules {
	case SupervisordGroup:
		idx = sel(func(p ProcessNames) bool { return p.Group == name })
		return idx, len(idx) > 0
	case SupervisordNames:
		group, proc, hasGroup := strings.Cut(name, ":")
		if !hasGroup {
			proc = name
		}
		inGroup := sel(func(p ProcessNames) bool { return p.Group == group })
		switch {
		case len(inGroup) == 0 && !hasGroup:
			return sel(func(p ProcessNames) bool { return p.Process == name }), false
		case len(inGroup) == 0:
			return nil, false
		case proc == "" || proc == "*":
			return inGroup, true
		}
		return sel(func(p ProcessNames) bool { return p.Group == group && p.Process == proc }), false
	}
	if group, rest, ok := strings.Cut(name, ":"); ok {
		return sel(func(p ProcessNames) bool {
			return (p.Group == group || p.Program == group) && (rest == "*" || rest == p.Process || rest == p.Program)
		}), false
	}
	for _, match := range []func(ProcessNames) bool{
		func(p ProcessNames) bool { return p.Process == name },
		func(p ProcessNames) bool { return p.Program == name },
		func(p ProcessNames) bool { return p.Group == name },
	} {
		if idx := sel(match); len(idx) > 0 {
			return idx, false
		}
	}
	return nil, false
}

// KnownNames returns every name procs answer to alone (process, program
// and program group names), sorted: what an error about an unknown name
// lists, and what the CLI completes.
func KnownNames(procs []ProcessNames) []string {
	known := map[string]bool{}
	for _, p := range procs {
		known[p.Process], known[p.Program], known[p.Group] = true, true, true
	}
	delete(known, "")
	return slices.Sorted(maps.Keys(known))
}

// Names returns the names the process answers to.
func (s Status) Names() ProcessNames {
	return ProcessNames{Process: s.Name, Program: s.Program, Group: s.ProgramGroup}
}
