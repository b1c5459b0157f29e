package supervisor

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/hostctl/hostctl/supervisor/logfile"
)

// The fields tagged `instance:"expand"` (process_name, directory, the log
// paths, the ready and health targets), and serves, are left alone by the config file
// reader: Processes expands ${INSTANCE} and hostctl's environment in them
// together, so that an instance number is never looked up as an
// environment variable. Command, Environment and the probes' exec get
// their ${INSTANCE} here and their ${VAR} when the process is prepared, as
// before.

// ProcessConfig is one process of a program: the names it answers to,
// and its program's settings as they apply to it (${INSTANCE} expanded).
// ProgramConfig.Processes makes them; the supervisor runs one process,
// with one owner goroutine, per ProcessConfig.
type ProcessConfig struct {
	// Name is the process name: the program name, or with instances
	// process_name expanded ("celery_0"). Program, process and program
	// group names share one namespace.
	Name string
	// Instance is the instance number (${INSTANCE}): from instance_start,
	// which is 0 unless set, also for a program with one instance.
	Instance int
	// ProgramGroup is the program group the process is in: its program's
	// [group.NAME], else the program name (programgroups.go).
	ProgramGroup string
	// Program is the program's config with this instance's ${INSTANCE}
	// expanded; Program.Name is the program name.
	Program *ProgramConfig
}

// Processes returns the config of each process of the program, one per
// instance, in instance order, with ${INSTANCE} expanded in a copy of p.
// p must be valid (Validate): the error is for configs that were not.
func (p *ProgramConfig) Processes() ([]*ProcessConfig, error) {
	out, errs := p.processes("program." + p.Name)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// programGroup is the program group of p's processes: its [group.NAME],
// else its own name. It is the one place that says so.
func (p *ProgramConfig) programGroup() string {
	if p.ProgramGroup != "" {
		return p.ProgramGroup
	}
	return p.Name
}

// processes is Processes, with errors as *FieldErrors under prefix, each
// problem once. An out-of-range Instances gives one process (Validate
// reports it).
func (p *ProgramConfig) processes(prefix string) ([]*ProcessConfig, []error) {
	n := p.Instances
	if n < 1 || n > MaxInstances {
		n = 1
	}
	pattern := p.ProcessName
	if pattern == "" {
		pattern = "${NAME}"
		if n > 1 {
			pattern = "${NAME}_${INSTANCE}"
		}
	}
	group := p.programGroup()
	var errs []error
	seen := map[string]bool{}
	out := make([]*ProcessConfig, 0, n)
	for i := range n {
		num := p.InstanceStart + i
		inst := strconv.Itoa(num)
		// full expands ${INSTANCE} (and ${NAME} where name is set) and
		// hostctl's environment in a field the config reader left alone.
		full := func(key, v string, name bool) string {
			if !strings.Contains(v, "$") {
				return v
			}
			s, err := ExpandVars(v, func(k string) (string, bool) {
				switch {
				case k == "INSTANCE":
					return inst, true
				case k == "NAME" && name:
					return p.Name, true
				}
				return os.LookupEnv(k)
			})
			if err != nil {
				e := &FieldError{Key: prefix + "." + key, Msg: err.Error()}
				if !seen[e.Error()] {
					seen[e.Error()] = true
					errs = append(errs, e)
				}
				return v
			}
			return s
		}
		c := *p
		proc := &ProcessConfig{Name: full("process_name", pattern, true), Instance: num, ProgramGroup: group, Program: &c}
		c.Command = expandInstanceArgs(p.Command, inst)
		if p.Environment != nil {
			c.Environment = make(map[string]string, len(p.Environment))
			for k, v := range p.Environment {
				c.Environment[k] = expandInstance(v, inst)
			}
		}
		c.Directory = full("directory", p.Directory, false)
		c.StdoutLog = full("stdout_log", p.StdoutLog, false)
		c.StderrLog = full("stderr_log", p.StderrLog, false)
		if r := p.Ready; r != nil {
			rc := *r
			rc.TCP, rc.HTTP, rc.Socket = full("ready.tcp", r.TCP, false), full("ready.http", r.HTTP, false), full("ready.socket", r.Socket, false)
			rc.Exec = expandInstanceArgs(r.Exec, inst)
			c.Ready = &rc
		}
		if p.Serves != nil {
			c.Serves = make(Serves, len(p.Serves))
			for j, u := range p.Serves {
				c.Serves[j] = full(fmt.Sprintf("serves[%d]", j), u, false)
			}
		}
		if h := p.Health; h != nil {
			hc := *h
			hc.TCP, hc.HTTP, hc.Socket = full("health.tcp", h.TCP, false), full("health.http", h.HTTP, false), full("health.socket", h.Socket, false)
			hc.Exec = expandInstanceArgs(h.Exec, inst)
			c.Health = &hc
		}
		out = append(out, proc)
	}
	return out, errs
}

// expandInstance replaces ${INSTANCE} with inst and leaves everything else,
// $$ included, for the expansion of ${VAR} that follows.
func expandInstance(s, inst string) string {
	if !strings.Contains(s, "${INSTANCE}") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "$$"):
			b.WriteString("$$")
			i++
		case strings.HasPrefix(s[i:], "${INSTANCE}"):
			b.WriteString(inst)
			i += len("${INSTANCE}") - 1
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func expandInstanceArgs(args Command, inst string) Command {
	if args == nil {
		return nil
	}
	out := make(Command, len(args))
	for i, a := range args {
		out[i] = expandInstance(a, inst)
	}
	return out
}

// VarRefs returns the names of the ${VAR}s in s, in order ($$ is not one).
func VarRefs(s string) []string {
	var names []string
	ExpandVars(s, func(k string) (string, bool) {
		names = append(names, k)
		return "", true
	})
	return names
}

// mentions reports whether s refers to ${name}.
func mentions(s, name string) bool { return slices.Contains(VarRefs(s), name) }

// programNames maps every program name and process name to where it is
// defined ("program.celery", "program.celery.process_name"), for the
// messages about names defined twice.
func programNames(progs map[string]*ProgramConfig) map[string]string {
	out := map[string]string{}
	for _, pn := range slices.Sorted(maps.Keys(progs)) {
		p := progs[pn]
		if _, ok := out[pn]; !ok {
			out[pn] = "program." + pn
		}
		procs, _ := p.processes("program." + pn)
		for _, c := range procs {
			if _, ok := out[c.Name]; !ok {
				out[c.Name] = processNameKey(p) + fmt.Sprintf(" (a process of program %s)", pn)
			}
		}
	}
	return out
}

// processNameKey is the key that gives a program's process names.
func processNameKey(p *ProgramConfig) string {
	switch {
	case p.ProcessName != "":
		return "program." + p.Name + ".process_name"
	case p.Instances > 1:
		return "program." + p.Name + ".instances"
	}
	return "program." + p.Name
}

// validateNames checks that no name stands for two things: a program's
// name and process names must not be another program's name or process
// name (a program with one instance is its own process), and no two
// processes may write the same log file.
func validateNames(progs map[string]*ProgramConfig) []error {
	var errs []error
	type def struct{ prog, key string }
	defs := map[string]def{}  // name -> where it is defined
	files := map[string]def{} // log file -> who writes it
	for _, pn := range slices.Sorted(maps.Keys(progs)) {
		p := progs[pn]
		type name struct{ name, key string }
		names := []name{{pn, "program." + pn}}
		procs, perrs := p.processes("program." + pn)
		for _, c := range procs {
			if c.Name != pn {
				names = append(names, name{c.Name, processNameKey(p)})
			}
		}
		for _, n := range names {
			d, ok := defs[n.name]
			switch {
			case !ok:
				defs[n.name] = def{pn, n.key}
			case d.prog != pn:
				errs = append(errs, &FieldError{Key: n.key, Msg: fmt.Sprintf(
					"the name %q is also given at %s; every program and process needs its own name (`hostctl restart %s` must mean one thing): rename one",
					n.name, d.key, n.name)})
			}
		}
		for _, c := range procs {
			if len(perrs) > 0 {
				break // the paths may not be expanded; Validate reports why
			}
			for _, f := range []struct{ key, path string }{{"stdout_log", c.Program.StdoutLog}, {"stderr_log", c.Program.StderrLog}} {
				// hostctl's own stdout and stderr take lines from many
				// programs: they are not files two processes write.
				if f.path == "" || f.path == "none" || logfile.IsConsole(f.path) || f.key == "stderr_log" && c.Program.RedirectStderr {
					continue
				}
				key := "program." + pn + "." + f.key
				d, ok := files[f.path]
				switch {
				case !ok:
					files[f.path] = def{c.Name, key}
				case d.key != key || d.prog != c.Name:
					errs = append(errs, &FieldError{Key: key, Msg: fmt.Sprintf(
						"%s of %s would write %q, which %s of %s writes already; give each its own file", f.key, c.Name, f.path, d.key, d.prog)})
				}
			}
		}
	}
	return errs
}
