package supervisor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/supervisor/trust"
)

// Options configure a Supervisor.
type Options struct {
	// Logger receives one line per state change. Default: no logging.
	Logger *zap.Logger
	// StateDir holds records of the process groups hostctl owns
	// (StateDir/pgroups), used to kill survivors of a crashed hostctl.
	// "" disables the records. New refuses a StateDir or pgroups dir that
	// another user owns or could write (trust.PrivateDir).
	StateDir string
	// LogDir is where program logs go by default (<LogDir>/NAME.out.log).
	LogDir string
	// Logs opens log streams. nil discards all program output.
	Logs LogOpener
	// Guard starts a tiny guard process that kills every program's
	// process group at once if hostctl dies without stopping them
	// (kill -9, OOM killer): grandchildren that Pdeathsig cannot reach.
	Guard bool
	// MemoryCheckInterval is how often the memory of programs with a
	// memory_limit is measured. Default DefaultMemoryCheckInterval (5s);
	// tests make it shorter.
	MemoryCheckInterval time.Duration
	// BeforeStop, if set, is called before the stop signal is sent to a
	// RUNNING process whose program has a drain_timeout, for any reason
	// (stop, restart, rolling restart, a reload that removes or replaces
	// it, a health or memory restart) but hostctl's own Shutdown. It runs
	// on its own goroutine while the process is STOPPING; ctx ends at
	// drain_timeout, and the stop signal goes when BeforeStop returns or
	// at drain_timeout, whichever is first. The web front takes the
	// process's upstreams out of the proxy here.
	BeforeStop func(ctx context.Context, p *ProcessConfig)
}

// Supervisor runs a set of programs: each ProgramConfig expands into its
// processes (ProcessConfig, one per instance), and each process has its
// own owner goroutine. Methods that take names act on the processes the
// names stand for (Match).
type Supervisor struct {
	opts    Options
	log     *zap.Logger
	spawner *spawner
	pgroups *pgroupRecords

	ctx    context.Context // lives as long as Run
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards procs and programs (the sets change only on Reload),
	// rollers and notify.
	mu       sync.Mutex
	procs    map[string]*process       // by process name
	programs map[string]*ProgramConfig // by program name, as configured
	rollers  map[string]*roller        // by program name, once one was needed
	notify   chan struct{}             // closed and replaced on every change of any program
}

// New creates a supervisor for progs (validated configs), one process per
// instance of each (ProgramConfig.Processes). Nothing starts until Run.
func New(progs []*ProgramConfig, opts Options) (*Supervisor, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	s := &Supervisor{
		opts:     opts,
		log:      opts.Logger,
		spawner:  theSpawner(),
		pgroups:  &pgroupRecords{log: opts.Logger},
		procs:    map[string]*process{},
		programs: map[string]*ProgramConfig{},
		rollers:  map[string]*roller{},
		notify:   make(chan struct{}),
	}
	if opts.StateDir != "" {
		// Created private, or refused if someone else could have planted
		// records in it: root SIGKILLs the process groups they name.
		dir := opts.StateDir + "/pgroups"
		if err := trust.PrivateDir(dir, 0o700, -1); err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
		s.pgroups.dir = dir
	}
	if opts.Guard {
		g, err := startGuard(s.spawner, s.log)
		if err != nil {
			return nil, err
		}
		s.pgroups.guard = g
		s.log.Debug("guard process started", zap.Int("guard_pid", g.pid))
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	programs, procs, err := expand(progs)
	if err != nil {
		s.pgroups.guard.close()
		return nil, err
	}
	s.programs = programs
	for _, cfg := range procs {
		p, err := s.newProcess(cfg)
		if err != nil {
			s.closeAll()
			s.pgroups.guard.close()
			return nil, err
		}
		s.procs[cfg.Name] = p
	}
	return s, nil
}

// expand returns the programs by name and the config of each of their
// processes.
func expand(progs []*ProgramConfig) (map[string]*ProgramConfig, []*ProcessConfig, error) {
	programs := make(map[string]*ProgramConfig, len(progs))
	var procs []*ProcessConfig
	names := map[string]bool{}
	for _, cfg := range progs {
		ps, err := cfg.Processes()
		if err != nil {
			return nil, nil, err
		}
		name := cfg.Name
		programs[name] = cfg
		for _, c := range ps {
			if names[c.Name] {
				return nil, nil, fmt.Errorf("program %q: process name %q is used twice", name, c.Name)
			}
			names[c.Name] = true
		}
		procs = append(procs, ps...)
	}
	return programs, procs, nil
}

func (s *Supervisor) newProcess(cfg *ProcessConfig) (*process, error) {
	out, err := openOutputs(cfg, s.opts.LogDir, s.opts.Logs)
	if err != nil {
		return nil, fmt.Errorf("program %q: %w", cfg.Name, err)
	}
	p, err := newProcess(s, cfg, out)
	if err != nil {
		out.close()
		return nil, fmt.Errorf("program %q: %w", cfg.Name, err)
	}
	return p, nil
}

func (s *Supervisor) closeAll() {
	for _, p := range s.procs {
		p.out.close()
	}
}

// KillSurvivors kills processes left in process groups recorded by an
// earlier hostctl (one that was killed without stopping its programs).
// Call it before Start. It returns how many processes it killed.
func (s *Supervisor) KillSurvivors() int { return s.pgroups.killSurvivors() }

// Start starts the owner goroutines. Programs stay STOPPED until
// StartAutostart or StartProcesses.
func (s *Supervisor) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.procs {
		s.launch(p)
	}
	interval := s.opts.MemoryCheckInterval
	if interval <= 0 {
		interval = DefaultMemoryCheckInterval
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sampleMemory(interval)
	}()
}

func (s *Supervisor) launch(p *process) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		p.run(s.ctx)
	}()
}

// changed wakes everyone waiting for a state change.
func (s *Supervisor) changed() {
	s.mu.Lock()
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
}

// Changed returns a channel closed at the next state change of any program.
func (s *Supervisor) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notify
}

func (s *Supervisor) get(name string) (*process, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.procs[name]
	return p, ok
}

// ErrUnknownProgram matches (errors.Is) every error about a name that is
// not a program; the error itself is an *UnknownProgramsError.
var ErrUnknownProgram = errors.New("no such program")

// ErrAllWithNames is returned when "all" comes with other names: it would
// be unclear whether the caller meant every program or only those.
var ErrAllWithNames = errors.New(`"all" cannot be combined with program names`)

// UnknownProgramsError lists the given names that are not programs.
type UnknownProgramsError struct {
	Names []string // the unknown names, in the order given
	Known []string // every program, sorted
}

// Error names the unknown programs and, when there are not too many to
// read, the known ones.
func (e *UnknownProgramsError) Error() string {
	q := make([]string, len(e.Names))
	for i, n := range e.Names {
		q[i] = strconv.Quote(n)
	}
	msg := "no such program: " + strings.Join(q, ", ")
	switch {
	case len(e.Known) == 0:
		msg += " (no programs are configured)"
	case len(e.Known) <= 20:
		msg += " (known: " + strings.Join(e.Known, ", ") + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrUnknownProgram) true.
func (e *UnknownProgramsError) Is(target error) bool { return target == ErrUnknownProgram }

// ProcessNames returns the process names, by program name, then instance.
func (s *Supervisor) ProcessNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	procs := s.ordered()
	out := make([]string, len(procs))
	for i, p := range procs {
		out[i] = p.cfg.Name
	}
	return out
}

// ordered returns every process by program name, then instance. s.mu must
// be held.
func (s *Supervisor) ordered() []*process {
	out := slices.Collect(maps.Values(s.procs))
	slices.SortFunc(out, func(a, b *process) int {
		if c := strings.Compare(a.cfg.Program.Name, b.cfg.Program.Name); c != 0 {
			return c
		}
		if c := a.cfg.Instance - b.cfg.Instance; c != 0 {
			return c
		}
		return strings.Compare(a.cfg.Name, b.cfg.Name)
	})
	return out
}

// Status returns snapshots of the processes names stand for (see
// Resolve; "all" is not special here) in the order given, or of all, by
// program name, then instance, when names is empty. Unknown names give an
// *UnknownProgramsError.
func (s *Supervisor) Status(names ...string) ([]Status, error) {
	var progs []*process
	if len(names) == 0 {
		s.mu.Lock()
		progs = s.ordered()
		s.mu.Unlock()
	} else {
		var err error
		if progs, err = s.lookup(names); err != nil {
			return nil, err
		}
	}
	out := make([]Status, 0, len(progs))
	for _, p := range progs {
		st, _ := s.current(p)
		out = append(out, st)
	}
	return out, nil
}

// current is p.current with the program group of p's program now: a
// reload may have moved the program into another [group] without
// touching its processes.
func (s *Supervisor) current(p *process) (Status, <-chan struct{}) {
	st, ch := p.current()
	s.mu.Lock()
	st.ProgramGroup = s.programGroup(p)
	s.mu.Unlock()
	return st, ch
}

// programGroup returns the program group of p now (see current). s.mu
// must be held.
func (s *Supervisor) programGroup(p *process) string {
	if c := s.programs[p.cfg.Program.Name]; c != nil {
		return c.programGroup()
	}
	return p.cfg.ProgramGroup // p's program is being removed
}

// names returns the names p answers to now. s.mu must be held.
func (s *Supervisor) names(p *process) ProcessNames {
	return ProcessNames{Process: p.cfg.Name, Program: p.cfg.Program.Name, Group: s.programGroup(p)}
}

// current returns the program's latest Status, with LastStderr filled in
// where it applies, and a channel closed at its next change. The line is
// read from the stream now, not when the program failed: the stream's
// writer may still have been on its way to the file then.
func (p *process) current() (Status, <-chan struct{}) {
	st, ch := p.watch.get()
	out := *st
	if (out.State == Backoff || out.State == Fatal && out.Tries > 0) && p.out != nil && p.out.stderr != nil {
		out.LastStderr = p.out.stderr.LastLine()
	}
	return out, ch
}

// Dropped returns the bytes of output dropped for a process.
func (s *Supervisor) Dropped(name string) uint64 {
	if p, ok := s.get(name); ok {
		return p.out.dropped()
	}
	return 0
}

// Log returns a process's log stream ("stdout" or "stderr"), nil when that
// stream is discarded.
func (s *Supervisor) Log(name, stream string) (LogStream, error) {
	p, err := s.find(name)
	if err != nil {
		return nil, err
	}
	switch stream {
	case "", "stdout":
		return p.out.stdout, nil
	case "stderr":
		return p.out.stderr, nil
	}
	return nil, fmt.Errorf("unknown stream %q (stdout or stderr)", stream)
}

// WaitFor waits until cond holds for the status of the process name
// stands for (a process name, or a name that stands for one process), or
// ctx ends (then it returns the last status and ctx's error).
func (s *Supervisor) WaitFor(ctx context.Context, name string, cond func(Status) bool) (Status, error) {
	p, err := s.find(name)
	if err != nil {
		return Status{}, err
	}
	return s.waitFor(ctx, p, cond)
}

// waitFor is WaitFor for p.
func (s *Supervisor) waitFor(ctx context.Context, p *process, cond func(Status) bool) (Status, error) {
	for {
		st, ch := s.current(p)
		if cond(st) {
			return st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, ctx.Err()
		case <-p.done:
			return st, fmt.Errorf("program %q was removed", p.cfg.Name)
		}
	}
}

// Resolve returns the process names that names stand for, each once, in
// the order given: ["all"] is every process; otherwise each name is read
// by Match's HostctlNames (a process, a program, a program group, GROUP:*
// or GROUP:NAME). Status, StartProcesses, StopProcesses, RestartProcesses
// and SignalProcesses take the same names with the same errors. The error
// is an *UnknownProgramsError listing every unknown name, or
// ErrAllWithNames.
func (s *Supervisor) Resolve(names ...string) ([]string, error) {
	progs, err := s.resolve(names)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(progs))
	for i, p := range progs {
		out[i] = p.cfg.Name
	}
	return out, nil
}

// resolve is Resolve, returning the processes.
func (s *Supervisor) resolve(names []string) ([]*process, error) {
	if slices.Contains(names, "all") {
		if len(names) > 1 {
			return nil, ErrAllWithNames
		}
		names = s.ProcessNames()
	}
	return s.lookup(names)
}

// lookup returns the processes names stand for ("all" is not special
// here; see Resolve), each once, or an *UnknownProgramsError listing every
// name that stands for none.
func (s *Supervisor) lookup(names []string) ([]*process, error) {
	s.mu.Lock()
	all := s.ordered()
	known := make([]ProcessNames, len(all))
	for i, p := range all {
		known[i] = s.names(p)
	}
	s.mu.Unlock()
	out := make([]*process, 0, len(names))
	seen := map[*process]bool{}
	var unknown []string
	for _, n := range names {
		idx, _ := Match(HostctlNames, n, known)
		if len(idx) == 0 {
			unknown = append(unknown, n)
		}
		for _, i := range idx {
			if p := all[i]; !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	if len(unknown) > 0 {
		return nil, &UnknownProgramsError{Names: unknown, Known: KnownNames(known)}
	}
	return out, nil
}

// find returns the one process name stands for, or an
// *UnknownProgramsError, or an error when it stands for several.
func (s *Supervisor) find(name string) (*process, error) {
	progs, err := s.lookup([]string{name})
	if err != nil {
		return nil, err
	}
	if len(progs) > 1 {
		names := make([]string, len(progs))
		for i, p := range progs {
			names[i] = p.cfg.Name
		}
		return nil, fmt.Errorf("%q stands for %d processes (%s): name one of them", name, len(progs), strings.Join(names, ", "))
	}
	return progs[0], nil
}

// StartProcesses asks the processes names stand for ("all" for every one;
// see Resolve) to start, together with the programs they depend on that
// are not up. It returns once the requests are accepted; use WaitFor to
// see the outcome.
func (s *Supervisor) StartProcesses(ctx context.Context, names ...string) error {
	progs, err := s.resolve(names)
	if err != nil {
		return err
	}
	return s.startWithDeps(ctx, progs)
}

// StartAutostart starts every autostart program (and its dependencies).
func (s *Supervisor) StartAutostart(ctx context.Context) error {
	var progs []*process
	for _, p := range s.topoOrder() {
		if p.cfg.Program.Autostart {
			progs = append(progs, p)
		}
	}
	return s.startWithDeps(ctx, progs)
}

// processesOf returns the processes of the named programs, in the order
// of s.ordered.
func (s *Supervisor) processesOf(programs ...string) []*process {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*process
	for _, p := range s.ordered() {
		if slices.Contains(programs, p.cfg.Program.Name) {
			out = append(out, p)
		}
	}
	return out
}

// startWithDeps sends start to progs and their not-yet-up dependencies
// (every instance of a program depended on), dependencies first, so a
// dependent never sees its dependency as STOPPED merely because its start
// was not yet sent.
func (s *Supervisor) startWithDeps(ctx context.Context, progs []*process) error {
	want := map[*process]bool{}
	var add func(p *process)
	add = func(p *process) {
		if want[p] {
			return
		}
		want[p] = true
		for _, dp := range s.processesOf(p.cfg.Program.DependsOn...) {
			st, _ := dp.watch.get()
			if st.State != Running && st.State != Starting {
				add(dp)
			}
		}
	}
	for _, p := range progs {
		add(p)
	}
	// Send level by level (a program's level is one more than its deepest
	// dependency's); within a level, in parallel.
	level := map[string]int{} // by program name
	var levels [][]*process
	for _, p := range s.topoOrder() {
		l := 0
		for _, d := range p.cfg.Program.DependsOn {
			if dl, ok := level[d]; ok {
				l = max(l, dl+1)
			}
		}
		level[p.cfg.Program.Name] = l
		if !want[p] {
			continue
		}
		for len(levels) <= l {
			levels = append(levels, nil)
		}
		levels[l] = append(levels[l], p)
	}
	for _, progs := range levels {
		errs := make([]error, len(progs))
		var wg sync.WaitGroup
		for i, p := range progs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = p.do(ctx, command{kind: cmdStart})
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

// topoOrder lists the processes so that every program's processes come
// after those of its dependencies (ties by program name, then instance).
func (s *Supervisor) topoOrder() []*process {
	s.mu.Lock()
	all := s.ordered()
	s.mu.Unlock()
	cfgs := map[string]*ProgramConfig{}
	byProgram := map[string][]*process{}
	for _, p := range all {
		cfgs[p.cfg.Program.Name] = p.cfg.Program // depends_on is the same in every instance
		byProgram[p.cfg.Program.Name] = append(byProgram[p.cfg.Program.Name], p)
	}
	out := make([]*process, 0, len(all))
	for _, n := range topoOrder(cfgs) {
		out = append(out, byProgram[n]...)
	}
	return out
}

func topoOrder(progs map[string]*ProgramConfig) []string {
	var out []string
	seen := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, d := range progs[n].DependsOn {
			if _, ok := progs[d]; ok {
				visit(d)
			}
		}
		out = append(out, n)
	}
	for _, n := range slices.Sorted(maps.Keys(progs)) {
		visit(n)
	}
	return out
}

// waitDeps waits until every instance of every named program is RUNNING.
// It fails when one stays down (Status.StaysDown): it would not get there
// without help.
func (s *Supervisor) waitDeps(ctx context.Context, deps []string) error {
	for {
		ch := s.Changed()
		ready := true
		for _, d := range deps {
			procs := s.processesOf(d)
			if len(procs) == 0 {
				return fmt.Errorf("dependency %q is not configured", d)
			}
			for _, p := range procs {
				st, _ := p.watch.get()
				switch {
				case st.State == Running:
				case !st.StaysDown():
					ready = false
				case st.State == Exited && st.LastExit != nil:
					return fmt.Errorf("dependency %q exited (%s) and will not restart; start it, then start this", st.Name, st.LastExit)
				default:
					return fmt.Errorf("dependency %q is %s; start it, then start this", st.Name, st.State)
				}
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// StopProcesses asks the processes names stand for ("all" for every one)
// to stop. A rolling restart under way leaves them alone from now on.
func (s *Supervisor) StopProcesses(ctx context.Context, names ...string) error {
	progs, err := s.resolve(names)
	if err != nil {
		return err
	}
	if err := s.unroll(ctx, progs); err != nil {
		return err
	}
	for _, p := range progs {
		if err := p.do(ctx, command{kind: cmdStop}); err != nil {
			return err
		}
	}
	return nil
}

// RestartProcesses stops (if up) and starts the processes names stand
// for. The instances of a program with rolling = true go one at a time,
// each RUNNING again before the next is stopped (see roller); the others
// all at once. It returns once the requests are accepted.
func (s *Supervisor) RestartProcesses(ctx context.Context, names ...string) error {
	progs, err := s.resolve(names)
	if err != nil {
		return err
	}
	rolls := map[string][]*process{}
	var order []string
	for _, p := range progs {
		if s.rolling(p.cfg.Program.Name) {
			if rolls[p.cfg.Program.Name] == nil {
				order = append(order, p.cfg.Program.Name)
			}
			rolls[p.cfg.Program.Name] = append(rolls[p.cfg.Program.Name], p)
			continue
		}
		if err := p.do(ctx, command{kind: cmdRestart}); err != nil {
			return err
		}
	}
	for _, prog := range order {
		if err := s.sendRoll(ctx, prog, rollMsg{restart: rolls[prog]}); err != nil {
			return err
		}
	}
	return nil
}

// Signal sends sig to the main process of each process names stand for.
func (s *Supervisor) SignalProcesses(ctx context.Context, sig syscall.Signal, names ...string) error {
	progs, err := s.resolve(names)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range progs {
		if err := p.do(ctx, command{kind: cmdSignal, sig: sig}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stopInOrder stops progs, each only after every process in the set whose
// program depends on its program is down, and waits until all are down
// or ctx ends.
//
// With drain, each stop runs Options.BeforeStop first (see stopDrained).
// The processes named in replace are stopped to be replaced by a reload.
func (s *Supervisor) stopInOrder(ctx context.Context, progs map[string]*process, drain bool, replace map[string]bool) error {
	list := slices.Collect(maps.Values(progs))
	if err := s.unroll(ctx, list); err != nil {
		return err
	}
	dependents := map[string][]*process{} // by the program depended on
	for _, p := range progs {
		for _, d := range p.cfg.Program.DependsOn {
			dependents[d] = append(dependents[d], p)
		}
	}
	down := func(st Status) bool { return !st.State.IsUp() }
	var wg sync.WaitGroup
	errc := make(chan error, len(progs))
	for name, p := range progs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, dp := range dependents[p.cfg.Program.Name] {
				if _, err := s.waitFor(ctx, dp, down); err != nil {
					errc <- err
					return
				}
			}
			if err := p.do(ctx, command{kind: cmdStop, noDrain: !drain, replace: replace[name]}); err != nil {
				errc <- err
				return
			}
			if _, err := s.waitFor(ctx, p, down); err != nil {
				errc <- fmt.Errorf("stopping %q: %w", name, err)
			}
		}()
	}
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Shutdown stops every program in reverse dependency order, each with its
// own signal and timeout, then ends the owner goroutines. If ctx ends first,
// whatever is left is killed with SIGKILL.
func (s *Supervisor) Shutdown(ctx context.Context) error {
	if s.ctx.Err() != nil {
		return nil // already shut down
	}
	s.mu.Lock()
	progs := make(map[string]*process, len(s.procs))
	for n, p := range s.procs {
		progs[n] = p
	}
	s.mu.Unlock()
	// No drain: the daemon stops the proxy first, which gives the
	// requests in flight its grace period.
	err := s.stopInOrder(ctx, progs, false, nil)
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	s.closeAll()
	s.mu.Unlock()
	s.pgroups.guard.close()
	return err
}

// Diff is what a Reload changed: process names (a program's name when it
// has one instance).
type Diff struct {
	Added   []string `json:"added"`
	Changed []string `json:"changed"`
	Removed []string `json:"removed"`
}

// reloadPlan is what Reload would do with a set of program configs.
type reloadPlan struct {
	Diff
	programs map[string]*ProgramConfig // the new programs, by name
	next     map[string]*ProcessConfig // the new processes, by name
	old      map[string]*process       // the processes now, by name
}

// diff compares the processes of cfgs with those running now: a process
// whose config differs in anything but the program-wide settings that do
// not concern it (instances, instance_start, process_name, rolling, the
// [group] it is in) is changed. It changes nothing.
func (s *Supervisor) diff(cfgs []*ProgramConfig) (reloadPlan, error) {
	programs, procs, err := expand(cfgs)
	if err != nil {
		return reloadPlan{}, err
	}
	pl := reloadPlan{programs: programs, next: map[string]*ProcessConfig{}, old: map[string]*process{}}
	for _, c := range procs {
		pl.next[c.Name] = c
	}
	s.mu.Lock()
	maps.Copy(pl.old, s.procs)
	s.mu.Unlock()
	for n, p := range pl.old {
		c, ok := pl.next[n]
		switch {
		case !ok:
			pl.Removed = append(pl.Removed, n)
		case !sameProcess(c, p.cfg):
			pl.Changed = append(pl.Changed, n)
		}
	}
	for n := range pl.next {
		if _, ok := pl.old[n]; !ok {
			pl.Added = append(pl.Added, n)
		}
	}
	sort.Strings(pl.Added)
	sort.Strings(pl.Changed)
	sort.Strings(pl.Removed)
	return pl, nil
}

// sameProcess reports whether a and b, configs of one process, run it the
// same way: the same instance of a program with the same settings, but
// for the program-wide ones that do not concern one process (instances,
// instance_start, process_name, rolling, its program group).
func sameProcess(a, b *ProcessConfig) bool {
	norm := func(c *ProcessConfig) ProgramConfig {
		n := *c.Program
		n.Instances, n.InstanceStart, n.ProcessName, n.Rolling, n.ProgramGroup = 0, 0, "", false, ""
		n.Required = false // the daemon's policy, not the process's
		n.Deploy = ""      // the deploy's, not the process's
		return n
	}
	na, nb := norm(a), norm(b)
	return a.Name == b.Name && a.Instance == b.Instance && reflect.DeepEqual(&na, &nb)
}

// Reload applies a new, validated set of programs, process by process:
// removed ones stop and go, changed ones are stopped and replaced
// (restarted if they were up, in BACKOFF, FATAL with a retry pending, or
// are autostart), new ones start if autostart or if another instance of
// their program was up, unchanged ones are not touched (a pending
// fatal_retry stays). Changing a program's instances from 2 to 3 adds one
// process; from 3 to 2 removes the last.
func (s *Supervisor) Reload(ctx context.Context, cfgs []*ProgramConfig) (Diff, error) {
	pl, err := s.diff(cfgs)
	if err != nil {
		return Diff{}, err
	}
	d, next, old := pl.Diff, pl.next, pl.old
	toStop := map[string]*process{}
	wasUp := map[string]bool{}
	up := func(p *process) bool {
		st, _ := p.watch.get()
		// A FATAL program with a retry pending is one hostctl is still
		// trying to run: the new config (maybe the fix) gets a start now.
		return st.State.IsUp() || st.State == Backoff || st.State == Fatal && !st.NextStart.IsZero()
	}
	programUp := map[string]bool{} // some instance of the program is up
	for _, p := range old {
		if up(p) {
			programUp[p.cfg.Program.Name] = true
		}
	}
	for _, n := range d.Removed {
		toStop[n] = old[n]
	}
	for _, n := range d.Changed {
		toStop[n] = old[n]
		wasUp[n] = up(old[n])
	}
	for _, n := range d.Added {
		wasUp[n] = programUp[next[n].Program.Name]
	}

	// Create what can be created before anything stops, so that a log file
	// that cannot be opened fails the reload with nothing changed. A
	// changed program whose output settings are the same keeps its log
	// streams (they outlive processes anyway); one whose output changed
	// gets new streams once the old program has let go of its files.
	fresh := map[string]*process{}
	reuse := map[string]bool{}
	var later []string
	fail := func(err error) (Diff, error) {
		for n, f := range fresh {
			if !reuse[n] {
				f.out.close()
			}
		}
		return Diff{}, err
	}
	for _, n := range d.Added {
		p, err := s.newProcess(next[n])
		if err != nil {
			return fail(err)
		}
		fresh[n] = p
	}
	for _, n := range d.Changed {
		if !sameOutputs(old[n].cfg, next[n]) {
			later = append(later, n)
			continue
		}
		p, err := newProcess(s, next[n], old[n].out)
		if err != nil {
			return fail(fmt.Errorf("program %q: %w", n, err))
		}
		fresh[n], reuse[n] = p, true
	}
	// A changed process that was up is replaced by a new one of the same
	// name, started below: its stop is a restart (Status.Restarting).
	replace := map[string]bool{}
	for _, n := range d.Changed {
		replace[n] = wasUp[n]
	}
	stopErr := s.stopInOrder(ctx, toStop, true, replace)
	s.mu.Lock()
	for n := range toStop {
		delete(s.procs, n)
	}
	s.programs = pl.programs
	s.mu.Unlock()
	for n, p := range toStop {
		p.retire()
		if !reuse[n] {
			p.out.close()
		}
	}
	var errs []error
	for _, n := range later {
		p, err := s.newProcess(next[n])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fresh[n] = p
	}
	s.mu.Lock()
	for n, p := range fresh {
		s.procs[n] = p
		s.launch(p)
	}
	s.mu.Unlock()
	var start []*process
	for n, p := range fresh {
		if p.cfg.Program.Autostart || wasUp[n] {
			start = append(start, p)
		}
	}
	s.changed()
	if err := s.startWithDeps(ctx, start); err != nil {
		errs = append(errs, err)
	}
	return d, errors.Join(append(errs, stopErr)...)
}

// sameOutputs reports whether two configs of a process capture output the
// same way, so that its log streams can be kept across a reload.
func sameOutputs(a, b *ProcessConfig) bool {
	type outCfg struct {
		so, se       string
		redirect, ts bool
		size         *int64
		backups      *int
		age          *time.Duration
		compress     *bool
	}
	f := func(c *ProcessConfig) outCfg {
		p := c.Program
		return outCfg{p.StdoutLog, p.StderrLog, p.RedirectStderr, p.Timestamps, p.MaxSize, p.MaxBackups, p.MaxAge, p.Compress}
	}
	return reflect.DeepEqual(f(a), f(b))
}

// retire ends a removed program's owner goroutine.
func (p *process) retire() {
	select {
	case p.cmds <- command{kind: cmdRetire, reply: make(chan error, 1)}:
	case <-p.done:
	}
}

// Summary counts programs by state.
func (s *Supervisor) Summary() map[State]int {
	sts, _ := s.Status()
	m := map[State]int{}
	for _, st := range sts {
		m[st.State]++
	}
	return m
}

// Settled reports whether every autostart program is RUNNING or stays
// down (Status.StaysDown) — the moment to tell systemd READY=1. Ask after
// StartAutostart.
func (s *Supervisor) Settled() bool {
	sts, _ := s.Status()
	for _, st := range sts {
		if st.Autostart && st.State != Running && !st.StaysDown() {
			return false
		}
	}
	return true
}

// WaitSettled waits until Settled or ctx ends.
func (s *Supervisor) WaitSettled(ctx context.Context) error {
	for {
		ch := s.Changed()
		if s.Settled() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
