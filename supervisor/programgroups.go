package supervisor

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// A program group is supervisord's group: the name a set of processes is
// addressed by (`hostctl restart GROUP`, `GROUP:*`, `GROUP:NAME`, the
// XML-RPC API's *ProcessGroup methods) and shown with (GROUP:NAME). Every
// process is in exactly one: the [group.NAME] table that lists its
// program, else its program's own (ProgramConfig.ProgramGroupName). It is
// not a Unix process group (a pgroup, pgroups.go) nor a Unix group (the
// Group of a program's credentials).

// ProgramGroupConfig is one [group.NAME] table: a named group of programs, like
// supervisord's [group:NAME]. Its name stands for every process of its
// programs on the command line and the admin API (`hostctl restart NAME`,
// `NAME:*`, `NAME:PROCESS`), and is the ProgramGroup of their processes.
type ProgramGroupConfig struct {
	// Name is the table name (group.NAME); not a TOML key.
	Name string `toml:"-"`
	// Programs are the names of the programs in the group. A program is in
	// one group at most. Required.
	Programs []string `toml:"programs"`
}

// ValidateProgramGroups checks the [group.NAME] tables against the programs:
// known programs, each in one group at most, and group names that are not
// also program or process names. prefix is the table of groups ("group").
func ValidateProgramGroups(prefix string, groups map[string]*ProgramGroupConfig, progs map[string]*ProgramConfig) []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, a...)})
	}
	owner := programNames(progs)
	member := map[string]string{} // program -> the first group that lists it
	for _, gname := range slices.Sorted(maps.Keys(groups)) {
		g := groups[gname]
		key := prefix + "." + gname
		if !validName(gname) {
			bad(key, "group name %q may only use letters, digits, '-', '_' and '.'", gname)
		}
		if o, ok := owner[gname]; ok {
			bad(key, "%q is also %s; program, process and group names share one namespace (`hostctl restart %s` must mean one thing): rename one", gname, o, gname)
		}
		if len(g.Programs) == 0 {
			bad(key+".programs", "must list at least one program (example: programs = [\"gunicorn\", \"celery\"])")
		}
		listed := map[string]bool{}
		for _, pn := range g.Programs {
			switch {
			case listed[pn]:
				bad(key+".programs", "%q is listed twice", pn)
				continue
			case progs[pn] == nil:
				bad(key+".programs", "%q is not a program in this file (programs: %s)", pn, strings.Join(slices.Sorted(maps.Keys(progs)), ", "))
			case member[pn] != "":
				bad(key+".programs", "%q is also in %s.%s.programs; a program belongs to one group at most", pn, prefix, member[pn])
			default:
				member[pn] = gname
			}
			listed[pn] = true
		}
	}
	return errs
}
