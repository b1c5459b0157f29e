package supervisor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Options configure a Supervisor.
type Options struct {
	// Logger receives one line per state change. Default: no logging.
	Logger *zap.Logger
	// StateDir holds records of the process groups hostctl owns
	// (StateDir/pgroups), used to kill survivors of a crashed hostctl.
	// "" disables the records.
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
}

// Supervisor runs a set of programs.
type Supervisor struct {
	opts    Options
	log     *zap.Logger
	spawner *spawner
	groups  *groupRecords

	ctx    context.Context // lives as long as Run
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards progs (the set changes only on Reload) and notify.
	mu     sync.Mutex
	progs  map[string]*program
	notify chan struct{} // closed and replaced on every change of any program
}

// New creates a supervisor for progs (validated configs). Nothing starts
// until Run.
func New(progs []*ProgramConfig, opts Options) (*Supervisor, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	s := &Supervisor{
		opts:    opts,
		log:     opts.Logger,
		spawner: theSpawner(),
		groups:  &groupRecords{log: opts.Logger},
		progs:   map[string]*program{},
		notify:  make(chan struct{}),
	}
	if opts.StateDir != "" {
		dir := opts.StateDir + "/pgroups"
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
		s.groups.dir = dir
	}
	if opts.Guard {
		g, err := startGuard(s.spawner, s.log)
		if err != nil {
			return nil, err
		}
		s.groups.guard = g
		s.log.Debug("guard process started", zap.Int("guard_pid", g.pid))
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, cfg := range progs {
		p, err := s.newProgram(cfg)
		if err != nil {
			s.closeAll()
			s.groups.guard.close()
			return nil, err
		}
		s.progs[cfg.Name] = p
	}
	return s, nil
}

func (s *Supervisor) newProgram(cfg *ProgramConfig) (*program, error) {
	out, err := openOutputs(cfg, s.opts.LogDir, s.opts.Logs)
	if err != nil {
		return nil, fmt.Errorf("program %q: %w", cfg.Name, err)
	}
	p, err := newProgram(s, cfg, out)
	if err != nil {
		out.close()
		return nil, fmt.Errorf("program %q: %w", cfg.Name, err)
	}
	return p, nil
}

func (s *Supervisor) closeAll() {
	for _, p := range s.progs {
		p.out.close()
	}
}

// KillSurvivors kills processes left in process groups recorded by an
// earlier hostctl (one that was killed without stopping its programs).
// Call it before Start. It returns how many processes it killed.
func (s *Supervisor) KillSurvivors() int { return s.groups.killSurvivors() }

// Start starts the owner goroutines. Programs stay STOPPED until
// StartAutostart or StartPrograms.
func (s *Supervisor) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.progs {
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

func (s *Supervisor) launch(p *program) {
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

func (s *Supervisor) get(name string) (*program, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.progs[name]
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

// Names returns the program names, sorted.
func (s *Supervisor) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.progs))
}

// Status returns snapshots of the named programs in the order given, or of
// all, sorted by name, when names is empty ("all" is not special here).
// Unknown names give an *UnknownProgramsError.
func (s *Supervisor) Status(names ...string) ([]Status, error) {
	if len(names) == 0 {
		names = s.Names()
	}
	progs, err := s.lookup(names)
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(progs))
	for _, p := range progs {
		st, _ := p.current()
		out = append(out, st)
	}
	return out, nil
}

// current returns the program's latest Status, with LastStderr filled in
// where it applies, and a channel closed at its next change. The line is
// read from the stream now, not when the program failed: the stream's
// writer may still have been on its way to the file then.
func (p *program) current() (Status, <-chan struct{}) {
	st, ch := p.watch.get()
	out := *st
	if (out.State == Backoff || out.State == Fatal && out.Tries > 0) && p.out != nil && p.out.stderr != nil {
		out.LastStderr = p.out.stderr.LastLine()
	}
	return out, ch
}

// Dropped returns the bytes of output dropped for a program.
func (s *Supervisor) Dropped(name string) uint64 {
	if p, ok := s.get(name); ok {
		return p.out.dropped()
	}
	return 0
}

// Log returns a program's log stream ("stdout" or "stderr"), nil when that
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

// WaitFor waits until cond holds for the named program's status, or ctx
// ends (then it returns the last status and ctx's error).
func (s *Supervisor) WaitFor(ctx context.Context, name string, cond func(Status) bool) (Status, error) {
	p, err := s.find(name)
	if err != nil {
		return Status{}, err
	}
	for {
		st, ch := p.current()
		if cond(st) {
			return st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, ctx.Err()
		case <-p.done:
			return st, fmt.Errorf("program %q was removed", name)
		}
	}
}

// Resolve returns the program names that names stand for: ["all"] is
// every program, sorted; otherwise each name must be a program. It is the
// one place that checks names: StartPrograms, StopPrograms,
// RestartPrograms and Signal take the same names with the same errors.
// The error is an *UnknownProgramsError listing every unknown name, or
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

// resolve is Resolve, returning the programs.
func (s *Supervisor) resolve(names []string) ([]*program, error) {
	if slices.Contains(names, "all") {
		if len(names) > 1 {
			return nil, ErrAllWithNames
		}
		names = s.Names()
	}
	return s.lookup(names)
}

// lookup returns the named programs ("all" is not special here), or an
// *UnknownProgramsError listing every name that is not one.
func (s *Supervisor) lookup(names []string) ([]*program, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*program, 0, len(names))
	var unknown []string
	for _, n := range names {
		if p, ok := s.progs[n]; ok {
			out = append(out, p)
		} else {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return nil, &UnknownProgramsError{Names: unknown, Known: slices.Sorted(maps.Keys(s.progs))}
	}
	return out, nil
}

// find returns the named program, or an *UnknownProgramsError.
func (s *Supervisor) find(name string) (*program, error) {
	progs, err := s.lookup([]string{name})
	if err != nil {
		return nil, err
	}
	return progs[0], nil
}

// StartPrograms asks the named programs ("all" for every one) to start,
// together with the programs they depend on that are not up. It returns
// once the requests are accepted; use WaitFor to see the outcome.
func (s *Supervisor) StartPrograms(ctx context.Context, names ...string) error {
	progs, err := s.resolve(names)
	if err != nil {
		return err
	}
	return s.startWithDeps(ctx, progs)
}

// StartAutostart starts every autostart program (and its dependencies).
func (s *Supervisor) StartAutostart(ctx context.Context) error {
	var progs []*program
	for _, n := range s.Names() {
		if p, ok := s.get(n); ok && p.cfg.Autostart {
			progs = append(progs, p)
		}
	}
	return s.startWithDeps(ctx, progs)
}

// startWithDeps sends start to progs and their not-yet-up dependencies,
// dependencies first, so a dependent never sees its dependency as STOPPED
// merely because its start was not yet sent.
func (s *Supervisor) startWithDeps(ctx context.Context, progs []*program) error {
	want := map[string]bool{}
	var add func(p *program)
	add = func(p *program) {
		if want[p.cfg.Name] {
			return
		}
		want[p.cfg.Name] = true
		for _, d := range p.cfg.DependsOn {
			if dp, ok := s.get(d); ok {
				st, _ := dp.watch.get()
				if st.State != Running && st.State != Starting {
					add(dp)
				}
			}
		}
	}
	for _, p := range progs {
		add(p)
	}
	// Send level by level (a program's level is one more than its deepest
	// dependency's); within a level, in parallel.
	level := map[string]int{}
	var levels [][]*program
	for _, name := range s.topoOrder() {
		p, _ := s.get(name)
		l := 0
		for _, d := range p.cfg.DependsOn {
			if dl, ok := level[d]; ok {
				l = max(l, dl+1)
			}
		}
		level[name] = l
		if !want[name] {
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

// topoOrder lists programs so that every program comes after its
// dependencies (ties by name).
func (s *Supervisor) topoOrder() []string {
	s.mu.Lock()
	progs := make(map[string]*ProgramConfig, len(s.progs))
	for n, p := range s.progs {
		progs[n] = p.cfg
	}
	s.mu.Unlock()
	return topoOrder(progs)
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

// waitDeps waits until every named dependency is RUNNING. It fails when one
// stays down (Status.StaysDown): it would not get there without help.
func (s *Supervisor) waitDeps(ctx context.Context, deps []string) error {
	for {
		ch := s.Changed()
		ready := true
		for _, d := range deps {
			p, ok := s.get(d)
			if !ok {
				return fmt.Errorf("dependency %q is not configured", d)
			}
			st, _ := p.watch.get()
			switch {
			case st.State == Running:
			case !st.StaysDown():
				ready = false
			case st.State == Exited && st.LastExit != nil:
				return fmt.Errorf("dependency %q exited (%s) and will not restart; start it, then start this", d, st.LastExit)
			default:
				return fmt.Errorf("dependency %q is %s; start it, then start this", d, st.State)
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

// StopPrograms asks the named programs ("all" for every one) to stop.
func (s *Supervisor) StopPrograms(ctx context.Context, names ...string) error {
	progs, err := s.resolve(names)
	if err != nil {
		return err
	}
	for _, p := range progs {
		if err := p.do(ctx, command{kind: cmdStop}); err != nil {
			return err
		}
	}
	return nil
}

// RestartPrograms stops (if up) and starts the named programs.
func (s *Supervisor) RestartPrograms(ctx context.Context, names ...string) error {
	progs, err := s.resolve(names)
	if err != nil {
		return err
	}
	for _, p := range progs {
		if err := p.do(ctx, command{kind: cmdRestart}); err != nil {
			return err
		}
	}
	return nil
}

// Signal sends sig to the main process of each named program.
func (s *Supervisor) Signal(ctx context.Context, sig syscall.Signal, names ...string) error {
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

// stopInOrder stops progs, each only after every program in the set that
// depends on it is down, and waits until all are down or ctx ends.
func (s *Supervisor) stopInOrder(ctx context.Context, progs map[string]*program) error {
	dependents := map[string][]*program{}
	for _, p := range progs {
		for _, d := range p.cfg.DependsOn {
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
			for _, dp := range dependents[name] {
				if _, err := s.WaitFor(ctx, dp.cfg.Name, down); err != nil {
					errc <- err
					return
				}
			}
			if err := p.do(ctx, command{kind: cmdStop}); err != nil {
				errc <- err
				return
			}
			if _, err := s.WaitFor(ctx, name, down); err != nil {
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
	progs := make(map[string]*program, len(s.progs))
	for n, p := range s.progs {
		progs[n] = p
	}
	s.mu.Unlock()
	err := s.stopInOrder(ctx, progs)
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	s.closeAll()
	s.mu.Unlock()
	s.groups.guard.close()
	return err
}

// Diff is what a Reload changed.
type Diff struct {
	Added   []string `json:"added"`
	Changed []string `json:"changed"`
	Removed []string `json:"removed"`
}

// Reload applies a new, validated set of programs: removed ones stop and go,
// changed ones are stopped and replaced (restarted if they were up, in
// BACKOFF, FATAL with a retry pending, or are autostart), new ones start if
// autostart, unchanged ones are not touched (a pending fatal_retry stays).
func (s *Supervisor) Reload(ctx context.Context, cfgs []*ProgramConfig) (Diff, error) {
	var d Diff
	next := map[string]*ProgramConfig{}
	for _, c := range cfgs {
		next[c.Name] = c
	}
	s.mu.Lock()
	old := make(map[string]*program, len(s.progs))
	for n, p := range s.progs {
		old[n] = p
	}
	s.mu.Unlock()
	toStop := map[string]*program{}
	wasUp := map[string]bool{}
	for n, p := range old {
		c, ok := next[n]
		switch {
		case !ok:
			d.Removed = append(d.Removed, n)
			toStop[n] = p
		case !reflect.DeepEqual(c, p.cfg):
			d.Changed = append(d.Changed, n)
			toStop[n] = p
			st, _ := p.watch.get()
			// A FATAL program with a retry pending is one hostctl is still
			// trying to run: the new config (maybe the fix) gets a start now.
			wasUp[n] = st.State.IsUp() || st.State == Backoff || st.State == Fatal && !st.NextStart.IsZero()
		}
	}
	for n := range next {
		if _, ok := old[n]; !ok {
			d.Added = append(d.Added, n)
		}
	}
	sort.Strings(d.Added)
	sort.Strings(d.Changed)
	sort.Strings(d.Removed)

	// Create what can be created before anything stops, so that a log file
	// that cannot be opened fails the reload with nothing changed. A
	// changed program whose output settings are the same keeps its log
	// streams (they outlive processes anyway); one whose output changed
	// gets new streams once the old program has let go of its files.
	fresh := map[string]*program{}
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
		p, err := s.newProgram(next[n])
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
		p, err := newProgram(s, next[n], old[n].out)
		if err != nil {
			return fail(fmt.Errorf("program %q: %w", n, err))
		}
		fresh[n], reuse[n] = p, true
	}
	stopErr := s.stopInOrder(ctx, toStop)
	s.mu.Lock()
	for n := range toStop {
		delete(s.progs, n)
	}
	s.mu.Unlock()
	for n, p := range toStop {
		p.retire()
		if !reuse[n] {
			p.out.close()
		}
	}
	var errs []error
	for _, n := range later {
		p, err := s.newProgram(next[n])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fresh[n] = p
	}
	s.mu.Lock()
	for n, p := range fresh {
		s.progs[n] = p
		s.launch(p)
	}
	s.mu.Unlock()
	var start []*program
	for n, p := range fresh {
		if p.cfg.Autostart || wasUp[n] {
			start = append(start, p)
		}
	}
	s.changed()
	if err := s.startWithDeps(ctx, start); err != nil {
		errs = append(errs, err)
	}
	return d, errors.Join(append(errs, stopErr)...)
}

// sameOutputs reports whether two configs of a program capture output the
// same way, so that its log streams can be kept across a reload.
func sameOutputs(a, b *ProgramConfig) bool {
	type outCfg struct {
		so, se       string
		redirect, ts bool
		size         *int64
		backups      *int
		age          *time.Duration
		compress     *bool
	}
	f := func(p *ProgramConfig) outCfg {
		return outCfg{p.StdoutLog, p.StderrLog, p.RedirectStderr, p.Timestamps, p.MaxSize, p.MaxBackups, p.MaxAge, p.Compress}
	}
	return reflect.DeepEqual(f(a), f(b))
}

// retire ends a removed program's owner goroutine.
func (p *program) retire() {
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
