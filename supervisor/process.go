package supervisor

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Status is an immutable snapshot of one process, safe to share.
type Status struct {
	// Name is the process name: the program name, or with instances the
	// instance's process_name ("celery_0"). It is unique in hostctl.
	Name string `json:"name"`
	// Program is the name of the program (its [program.NAME] table).
	Program string `json:"program,omitempty"`
	// ProgramGroup is the program group of the process (supervisord's
	// group): the [group.X] its program is listed in, else the program
	// name. In JSON "process_group", the name supervisord gives it.
	ProgramGroup string `json:"process_group,omitempty"`
	// Instance is the instance number (${INSTANCE}): from instance_start,
	// which is 0 unless set, also for a program with one instance.
	Instance   int         `json:"instance"`
	State      State       `json:"state"`
	PID        int         `json:"pid,omitempty"`
	StartedAt  time.Time   `json:"started_at,omitzero"` // when the current process was spawned
	StateSince time.Time   `json:"state_since"`         // when State was entered
	Restarts   int         `json:"restarts"`            // automatic restarts since hostctl started
	LastExit   *ExitStatus `json:"last_exit,omitempty"` // how the previous process ended
	SpawnErr   string      `json:"spawn_error,omitempty"`
	// Failure is why the process failed, typed, for the supervisord API;
	// SpawnErr, Info and Tries say it in hostctl's words.
	Failure   Failure   `json:"-"`
	Info      string    `json:"info,omitempty"`      // why: "waiting for rabbitmq", "retry 2 in 4s", ...
	NextStart time.Time `json:"next_start,omitzero"` // in BACKOFF, or FATAL with fatal_retry: when the next try is due
	// Tries is, in FATAL because start_retries were used up, how many
	// starts failed in a row (LastExit is how the last one ended); 0 when
	// FATAL has another cause (SpawnErr says which).
	Tries int `json:"tries,omitempty"`
	// LastStderr is, in BACKOFF and in FATAL with Tries, the last line the
	// program wrote to its stderr log (its stdout log with
	// redirect_stderr): usually the reason it failed. `hostctl tail NAME
	// stderr` shows more.
	LastStderr string `json:"last_stderr,omitempty"`
	// Health is the health check's view; nil without [health].
	Health *HealthStatus `json:"health,omitempty"`
	// MemoryLimit is memory_limit in bytes; 0: no limit.
	MemoryLimit int64 `json:"memory_limit,omitempty"`
	// MemoryRestarts counts restarts because the process group's memory
	// stayed above MemoryLimit, since the program's config was loaded.
	MemoryRestarts int `json:"memory_restarts"`
	// MemoryRestartRSS is what the process group used (bytes) at the last
	// check before the last memory restart; 0 before any.
	MemoryRestartRSS uint64 `json:"memory_restart_rss,omitempty"`
	Autostart        bool   `json:"autostart"`
	Description      string `json:"description,omitempty"`
	Notes            string `json:"notes,omitempty"`
	StdoutLog        string `json:"stdout_log,omitempty"`
	StderrLog        string `json:"stderr_log,omitempty"`
	// Generation counts processes spawned for this program.
	Generation uint64 `json:"generation"`
	// Restarting is true while a start follows the stop under way: in
	// STOPPING for a restart (restart, a start sent while it stops,
	// health and memory restarts), and in STOPPING and STOPPED for a
	// reload that replaces the process with one of the same name (the
	// new one starts once the reload has removed this one). A plain stop
	// is not: it stays STOPPED. The front holds requests for a program
	// on its way back, and not for one that stays down.
	Restarting bool `json:"restarting,omitempty"`
}

// HealthStatus is what a program's health checks found.
type HealthStatus struct {
	// Healthy is true while the program is RUNNING and fewer than
	// health.failures checks in a row have failed.
	Healthy bool `json:"healthy"`
	// Failures is the number of checks in a row that failed (0 after one
	// that passed, and when the program enters RUNNING).
	Failures int `json:"failures"`
	// LastError says why the last failed check failed: "GET /healthz: 500".
	LastError string `json:"last_error,omitempty"`
	// Restarts counts restarts because checks failed, since the program's
	// config was loaded.
	Restarts int `json:"restarts"`
}

// Uptime is how long the current process has run (0 when none).
func (s Status) Uptime(now time.Time) time.Duration {
	if s.PID == 0 || s.StartedAt.IsZero() {
		return 0
	}
	return now.Sub(s.StartedAt)
}

// StaysDown reports whether the program has no process and none will be
// started until someone asks: its state is FATAL, EXITED or STOPPED.
//
//   - FATAL: it could not start (spawn error, start_retries used up, or a
//     dependency that gave up). hostctl tries again after fatal_retry
//     (NextStart), but that is minutes away: waiting for it would hang
//     whoever waits, so FATAL counts as down.
//   - EXITED: it exited from RUNNING and autorestart will not restart it.
//     A program that will be restarted is never seen in EXITED: it moves on
//     to STARTING or BACKOFF in the same step, before its Status is
//     published.
//   - STOPPED: never started, or stopped on request. An autostart program
//     is also STOPPED until StartAutostart has sent it its start, so ask
//     after that.
//
// BACKOFF does not stay down (a retry is due); STARTING, RUNNING and
// STOPPING have a process or are about to. Programs are waited for
// "until RUNNING or StaysDown"; a stop is done when StaysDown.
func (s Status) StaysDown() bool {
	return s.State == Fatal || s.State == Exited || s.State == Stopped
}

// watch publishes a process's latest Status and wakes waiters.
type watch struct {
	mu sync.Mutex // guards st and ch, which change together
	st *Status
	ch chan struct{}
}

func newWatch(st *Status) *watch { return &watch{st: st, ch: make(chan struct{})} }

func (w *watch) set(st *Status) {
	w.mu.Lock()
	w.st = st
	close(w.ch)
	w.ch = make(chan struct{})
	w.mu.Unlock()
}

func (w *watch) get() (*Status, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st, w.ch
}

// command kinds sent to a process's owner goroutine.
type cmdKind uint8

const (
	cmdStart cmdKind = iota
	cmdStartNoDeps
	cmdStop
	cmdRestart
	cmdSignal
	cmdRetire // end the owner goroutine (the process was removed)
)

type command struct {
	kind    cmdKind
	sig     syscall.Signal
	noDrain bool // cmdStop: send the stop signal at once, no BeforeStop (hostctl's own shutdown)
	replace bool // cmdStop: a reload replaces the process with a new one of the same name
	reply   chan error
}

// event kinds from timers, the reaper, probes and dependency waits.
type evKind uint8

const (
	evExit evKind = iota
	evStartSecs
	evProbeOK
	evProbeDeadline
	evBackoffDone
	evStopTimeout
	evDepsDone
	evPgroupCheck
	evFatalRetry
	evHealthCheck  // time for the next health check
	evHealthResult // a health check ended (err nil: it passed)
	evMemory       // the memory sampler measured the process group pid (any gen)
	evDrained      // in STOPPING: BeforeStop returned, or drain_timeout passed
)

type event struct {
	kind evKind
	gen  uint64 // attempt the event belongs to; stale events are ignored
	exit exitInfo
	err  error
	pid  int    // evMemory: the process group measured
	rss  uint64 // evMemory: its resident memory, bytes
}

// child is the OS process running for a process now (hostctl's child).
type child struct {
	pid       int
	started   time.Time
	startTick uint64 // /proc start time, to guard against pid reuse
}

// process is one supervised process (one instance of a program; see
// ProcessConfig), owned by its run goroutine: only that goroutine touches
// the fields below "owned". It outlives its OS processes (child): a
// restart spawns a new child, not a new process.
type process struct {
	cfg    *ProcessConfig
	argv   []string
	env    []string
	sup    *Supervisor
	log    *zap.Logger
	out    *outputs
	cmds   chan command
	evs    chan event
	done   chan struct{} // closed when run returns
	watch  *watch
	reqSig syscall.Signal // parsed stop signal
	relSig syscall.Signal

	// owned by run
	state        State
	stateSince   time.Time
	child        *child
	attr         procAttr // how proc was started; its exec probes run the same way
	gen          uint64   // attempt number; timers and probes carry it
	spawns       uint64   // processes spawned
	fails        int      // consecutive failed starts
	crashes      int      // crashes since the program was last stable
	restarts     int
	runningSince time.Time
	startSecsOK  bool
	probeOK      bool
	leaderGone   bool      // in STOPPING: the leader exited, stragglers remain
	killedAt     time.Time // in STOPPING: when SIGKILL was sent to the group
	restartAfter bool      // in STOPPING: start again when stopped
	replaced     bool      // stopped by a reload that starts a new process in its place
	draining     bool      // in STOPPING: BeforeStop runs; the stop signal is not sent yet
	lastExit     *ExitStatus
	tries        int // in FATAL: failed starts in a row that made it give up
	spawnErr     string
	failure      Failure // why it failed, typed; cleared on entering STARTING
	info         string
	nextStart    time.Time
	cancelAsync  context.CancelFunc // cancels the deps wait, the probe of this attempt or its health check
	timers       []*time.Timer
	dirty        bool

	// health checks (while RUNNING)
	healthFails    int    // checks failed in a row
	healthErr      string // why the last one failed
	healthRuns     int    // health restarts since the last passing check
	healthRestarts int    // health restarts since the config was loaded

	// memory_limit (while RUNNING)
	memOver     int    // checks in a row above the limit
	memRuns     int    // memory restarts in a row (reset once below the limit for backoff.reset_after)
	memRestarts int    // memory restarts since the config was loaded
	memLastRSS  uint64 // RSS that caused the last memory restart

	checkRestart restartCause // in STOPPING: the stop is a restart for health or memory
}

// restartCause says why a program is being restarted by hostctl itself
// while it runs: such restarts back off when they repeat.
type restartCause uint8

const (
	causeNone   restartCause = iota
	causeHealth              // health.failures checks in a row failed
	causeMemory              // memory stayed above memory_limit
)

func newProcess(sup *Supervisor, cfg *ProcessConfig, out *outputs) (*process, error) {
	argv, err := cfg.Program.expandedCommand()
	if err != nil {
		return nil, err
	}
	env, err := cfg.Program.Env()
	if err != nil {
		return nil, err
	}
	stop, err := ParseSignal(cfg.Program.StopSignal)
	if err != nil {
		return nil, err
	}
	var rel syscall.Signal
	if cfg.Program.ReloadSignal != "" {
		if rel, err = ParseSignal(cfg.Program.ReloadSignal); err != nil {
			return nil, err
		}
	}
	p := &process{
		cfg: cfg, argv: argv, env: env, sup: sup, out: out,
		log:    sup.log.With(zap.String("program", cfg.Name)),
		cmds:   make(chan command),
		evs:    make(chan event, 16),
		done:   make(chan struct{}),
		reqSig: stop, relSig: rel,
		stateSince: time.Now(),
	}
	p.watch = newWatch(p.snapshot())
	return p, nil
}

func (p *process) snapshot() *Status {
	st := &Status{
		Name: p.cfg.Name, Program: p.cfg.Program.Name, ProgramGroup: p.cfg.ProgramGroup, Instance: p.cfg.Instance, State: p.state, StateSince: p.stateSince, Restarts: p.restarts,
		LastExit: p.lastExit, SpawnErr: p.spawnErr, Failure: p.failure, Info: p.info, NextStart: p.nextStart, Tries: p.tries,
		Autostart: p.cfg.Program.Autostart, Description: p.cfg.Program.Description, Notes: p.cfg.Program.Notes, Generation: p.spawns,
		MemoryLimit: p.cfg.Program.MemoryLimit, MemoryRestarts: p.memRestarts, MemoryRestartRSS: p.memLastRSS,
		Restarting: p.replaced && (p.state == Stopping || p.state == Stopped) || p.state == Stopping && p.restartAfter,
	}
	if p.out != nil {
		st.StdoutLog, st.StderrLog = p.out.stdoutPath, p.out.stderrPath
	}
	if p.child != nil {
		st.PID, st.StartedAt = p.child.pid, p.child.started
	}
	if h := p.cfg.Program.Health; h != nil {
		st.Health = &HealthStatus{
			Healthy:  p.state == Running && p.healthFails < h.Failures,
			Failures: p.healthFails, LastError: p.healthErr, Restarts: p.healthRestarts,
		}
	}
	return st
}

// send delivers an asynchronous event unless the owner has gone.
func (p *process) send(e event) {
	select {
	case p.evs <- e:
	case <-p.done:
	}
}

// do sends a command to the owner and waits for its answer.
func (p *process) do(ctx context.Context, c command) error {
	c.reply = make(chan error, 1)
	select {
	case p.cmds <- c:
	case <-p.done:
		return fmt.Errorf("program %q was removed", p.cfg.Name)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-c.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run is the owner goroutine. It returns when ctx ends; the caller must have
// stopped the program first (Supervisor does).
func (p *process) run(ctx context.Context) {
	defer close(p.done)
	defer p.clearAsync()
	for {
		select {
		case c := <-p.cmds:
			if c.kind == cmdRetire {
				if p.child != nil {
					p.killPgroup(syscall.SIGKILL)
				}
				c.reply <- nil
				return
			}
			err := p.handleCmd(c)
			p.publish() // before the reply: the caller may act on the new state
			c.reply <- err
		case e := <-p.evs:
			p.handleEvent(e)
			p.publish()
		case <-ctx.Done():
			if p.child != nil {
				// Last resort: never leave a process behind.
				p.killPgroup(syscall.SIGKILL)
			}
			return
		}
	}
}

// publish makes the current state visible to readers, once per command or
// event (intermediate states within one step are logged, not published).
func (p *process) publish() {
	if p.dirty {
		p.dirty = false
		p.watch.set(p.snapshot())
		p.sup.changed()
	}
}

// setState changes state through the transition table.
func (p *process) setState(to State, fields ...zap.Field) {
	from := p.state
	if !canTransition(from, to) {
		p.log.Error("bug: state transition not in the table", zap.Stringer("from", from), zap.Stringer("to", to))
		return
	}
	p.state, p.stateSince, p.dirty = to, time.Now(), true
	if to != Backoff {
		p.nextStart = time.Time{}
	}
	if to == Starting {
		p.failure = Failure{} // a new try: as supervisord's spawn clears spawnerr
	}
	fs := []zap.Field{zap.Stringer("from", from), zap.Stringer("to", to)}
	if p.child != nil {
		fs = append(fs, zap.Int("pid", p.child.pid))
	}
	p.log.Info("state", append(fs, fields...)...)
}

func (p *process) handleCmd(c command) error {
	switch c.kind {
	case cmdStart, cmdStartNoDeps:
		p.healthRuns, p.memRuns, p.checkRestart = 0, 0, causeNone
		switch p.state {
		case Stopped, Exited, Fatal, Backoff:
			p.fails, p.crashes = 0, 0
			p.clearTimers()
			p.beginStart(c.kind == cmdStart)
		case Stopping:
			p.restartAfter, p.dirty = true, true // Restarting
		}
		return nil
	case cmdStop:
		if p.restartAfter || c.replace != p.replaced {
			p.dirty = true // Restarting
		}
		p.restartAfter, p.checkRestart, p.replaced = false, causeNone, c.replace
		p.stopDrained(!c.noDrain)
		return nil
	case cmdRestart:
		p.healthRuns, p.memRuns, p.checkRestart = 0, 0, causeNone
		switch p.state {
		case Starting, Running:
			p.restartAfter = true
			p.stop()
		case Stopping:
			p.restartAfter, p.dirty = true, true // Restarting
		default:
			p.fails, p.crashes = 0, 0
			p.clearTimers()
			p.beginStart(true)
		}
		return nil
	case cmdSignal:
		if p.child == nil {
			return fmt.Errorf("%s is %s: no process to signal", p.cfg.Name, p.state)
		}
		if err := syscall.Kill(p.child.pid, c.sig); err != nil {
			return fmt.Errorf("signal %s to pid %d: %w", SignalName(c.sig), p.child.pid, err)
		}
		p.log.Info("signal sent", zap.Int("pid", p.child.pid), zap.String("signal", SignalName(c.sig)))
		return nil
	}
	return fmt.Errorf("unknown command %d", c.kind)
}

// beginStart enters STARTING: waits for dependencies when asked, then spawns.
func (p *process) beginStart(waitDeps bool) {
	p.gen++
	p.replaced = false
	p.spawnErr, p.info, p.tries = "", "", 0
	p.startSecsOK, p.probeOK = false, false
	p.setState(Starting)
	if waitDeps && len(p.cfg.Program.DependsOn) > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		p.cancelAsync = cancel
		gen := p.gen
		p.info = "waiting for " + strings.Join(p.cfg.Program.DependsOn, ", ")
		go func() {
			err := p.sup.waitDeps(ctx, p.cfg.Program.DependsOn)
			p.send(event{kind: evDepsDone, gen: gen, err: err})
		}()
		return
	}
	p.spawn()
}

// spawn starts a process for the current attempt (state STARTING).
func (p *process) spawn() {
	p.info = ""
	attr, err := procAttrFor(p.cfg.Program, p.env)
	var pid int
	if err == nil {
		pid, err = p.sup.startProcess(p, attr)
	}
	if err != nil {
		p.spawnErr = err.Error()
		p.failure = Failure{Kind: FailSpawn, Err: err}
		p.dirty = true
		p.giveUp(0, zap.String("error", p.spawnErr))
		return
	}
	p.spawns++
	p.child = &child{pid: pid, started: time.Now()}
	p.attr = attr
	if st, err := readProcStat(pid); err == nil {
		p.child.startTick = st.startTime
	}
	p.sup.pgroups.add(pid, p.child.startTick, p.cfg.Name)
	p.dirty = true
	p.log.Info("spawned", zap.Int("pid", pid), zap.Strings("argv", p.argv))
	gen := p.gen
	p.probeOK = p.cfg.Program.Ready == nil
	if r := p.cfg.Program.Ready; r != nil {
		ctx, cancel := context.WithCancel(context.Background())
		p.cancelAsync = cancel
		go func() {
			if runProbe(ctx, r, attr) == nil {
				p.send(event{kind: evProbeOK, gen: gen})
			}
		}()
		p.after(r.Deadline, event{kind: evProbeDeadline, gen: gen})
	}
	p.after(p.cfg.Program.StartSecs, event{kind: evStartSecs, gen: gen})
}

func (p *process) after(d time.Duration, e event) {
	if d <= 0 {
		p.handleEvent(e)
		return
	}
	p.timers = append(p.timers, time.AfterFunc(d, func() { p.send(e) }))
}

func (p *process) clearTimers() {
	for _, t := range p.timers {
		t.Stop()
	}
	p.timers = p.timers[:0]
	p.clearAsync()
}

func (p *process) clearAsync() {
	if p.cancelAsync != nil {
		p.cancelAsync()
		p.cancelAsync = nil
	}
}

// stop begins stopping from any state, draining first (stopDrained).
func (p *process) stop() { p.stopDrained(true) }

// stopDrained begins stopping from any state. With drain, a RUNNING
// process with a drain_timeout first enters STOPPING with the stop signal
// held back while Options.BeforeStop runs (the front takes its upstreams
// out of the proxy and waits for their requests), for at most
// drain_timeout; then the stop goes on as always: stop signal,
// stop_timeout, SIGKILL. Without drain (hostctl's own shutdown, after the
// proxy has stopped) the signal goes at once, and a drain under way is
// cut short.
func (p *process) stopDrained(drain bool) {
	switch p.state {
	case Starting, Running:
		p.clearTimers()
		if p.child == nil { // still waiting for dependencies
			p.info = ""
			p.setState(Stopped)
			return
		}
		p.leaderGone, p.killedAt = false, time.Time{}
		hook, wait := p.sup.opts.BeforeStop, p.cfg.Program.DrainTimeout
		if drain && p.state == Running && hook != nil && wait > 0 {
			p.draining = true
			p.info = "draining before the stop signal"
			p.setState(Stopping, zap.String("draining", "up to "+wait.String()))
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			p.cancelAsync = cancel
			gen, cfg := p.gen, p.cfg
			go func() {
				defer cancel()
				hook(ctx, cfg)
				p.send(event{kind: evDrained, gen: gen})
			}()
			// The supervisor's own bound, should the hook not return.
			p.after(wait, event{kind: evDrained, gen: gen})
			return
		}
		p.setState(Stopping, zap.String("signal", SignalName(p.reqSig)))
		p.signalStop()
	case Stopping:
		if p.draining && !drain {
			p.clearTimers()
			p.drained()
		}
	case Backoff:
		p.clearTimers()
		p.info = ""
		p.setState(Stopped)
	case Fatal:
		if !p.nextStart.IsZero() { // a stop cancels the pending retry
			p.clearTimers()
			p.setState(Stopped, zap.String("reason", "stopped on request: no retry"))
		}
	}
}

// signalStop sends the stop signal to the group and starts stop_timeout.
func (p *process) signalStop() {
	p.killPgroup(p.reqSig)
	if p.reqSig != syscall.SIGCONT {
		// A stopped (SIGSTOP) group would never see the signal otherwise.
		p.killPgroup(syscall.SIGCONT)
	}
	p.after(p.cfg.Program.StopTimeout, event{kind: evStopTimeout, gen: p.gen})
}

// drained ends the drain of a STOPPING process: the stop signal goes now.
func (p *process) drained() {
	p.draining, p.info, p.dirty = false, "", true
	p.log.Info("drained; sending the stop signal", zap.String("signal", SignalName(p.reqSig)))
	p.signalStop()
}

func (p *process) killPgroup(sig syscall.Signal) {
	if p.child == nil {
		return
	}
	if err := syscall.Kill(-p.child.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		p.log.Warn("signal to process group failed", zap.Int("pgid", p.child.pid), zap.String("signal", SignalName(sig)), zap.Error(err))
	}
}

func (p *process) handleEvent(e event) {
	if e.kind == evExit {
		p.exited(e.exit)
		return
	}
	if e.kind == evMemory {
		p.memoryMeasured(e.pid, e.rss) // checked against the current pid
		return
	}
	if e.gen != p.gen {
		return // stale timer or probe of an earlier attempt
	}
	switch e.kind {
	case evStartSecs:
		if p.state == Starting && p.child != nil {
			p.startSecsOK = true
			p.maybeRunning()
		}
	case evProbeOK:
		if p.state == Starting && p.child != nil {
			p.probeOK = true
			p.maybeRunning()
		}
	case evProbeDeadline:
		if p.state == Starting && p.child != nil && !p.probeOK {
			p.info = fmt.Sprintf("ready probe did not pass within %s", p.cfg.Program.Ready.Deadline)
			p.failure = Failure{Kind: FailNotReady} // its exit is the kill
			p.log.Warn("ready probe deadline passed; killing the attempt", zap.Duration("deadline", p.cfg.Program.Ready.Deadline))
			p.killPgroup(syscall.SIGKILL)
		}
	case evBackoffDone:
		if p.state == Backoff {
			p.gen++
			p.startSecsOK, p.probeOK = false, false
			p.setState(Starting)
			p.spawn()
		}
	case evDrained:
		if p.state == Stopping && p.draining {
			p.clearTimers() // the other of the hook's return and the bound, and the hook's context
			p.drained()
		}
	case evStopTimeout:
		if p.state == Stopping && !p.draining {
			p.log.Warn("stop timeout passed; sending SIGKILL to the process group", zap.Duration("stop_timeout", p.cfg.Program.StopTimeout))
			p.killPgroup(syscall.SIGKILL)
			p.killedAt = time.Now()
			// SIGKILL takes effect asynchronously: STOPPED waits until the
			// group is really empty (the group check running since the
			// leader exited, or the leader's exit, finishes the stop).
		}
	case evPgroupCheck:
		if p.state == Stopping && p.leaderGone {
			switch {
			case !pgroupAlive(p.child.pid):
				p.finishStop()
			case !p.killedAt.IsZero() && time.Since(p.killedAt) > unkillableGrace:
				p.log.Error("processes survive SIGKILL (uninterruptible sleep?); giving up on them", zap.Int("pgid", p.child.pid))
				p.finishStop()
			default:
				p.after(pgroupPollInterval, event{kind: evPgroupCheck, gen: p.gen})
			}
		}
	case evDepsDone:
		if p.state != Starting || p.child != nil {
			return
		}
		p.cancelAsync = nil
		if e.err != nil {
			p.spawnErr = e.err.Error()
			p.failure = Failure{Kind: FailDependency, Err: e.err}
			p.info = ""
			p.giveUp(0, zap.Error(e.err))
			return
		}
		p.spawn()
	case evHealthCheck:
		if p.state == Running && p.child != nil {
			ctx, cancel := context.WithCancel(context.Background())
			p.cancelAsync = cancel
			gen, h, attr := p.gen, p.cfg.Program.Health, p.attr
			go func() {
				err := checkOnce(ctx, h, attr)
				if ctx.Err() == nil || err == nil {
					p.send(event{kind: evHealthResult, gen: gen, err: err})
				}
			}()
		}
	case evHealthResult:
		if p.state == Running && p.child != nil {
			p.clearAsync()
			p.healthChecked(e.err)
		}
	case evFatalRetry:
		if p.state == Fatal {
			p.log.Info("trying again after fatal_retry", zap.Duration("fatal_retry", p.cfg.Program.FatalRetry))
			p.fails, p.crashes = 0, 0
			p.clearTimers()
			p.beginStart(true)
		}
	}
}

// healthChecked counts the outcome of a health check of the running
// process and restarts the program after health.failures failures in a row.
func (p *process) healthChecked(err error) {
	h := p.cfg.Program.Health
	if err == nil {
		if p.healthFails > 0 {
			p.log.Info("health check passes again", zap.Int("failures", p.healthFails))
		}
		p.healthFails, p.healthErr, p.healthRuns = 0, "", 0
		p.dirty = true
		p.after(h.Interval, event{kind: evHealthCheck, gen: p.gen})
		return
	}
	p.healthFails++
	p.healthErr = err.Error()
	p.dirty = true
	if p.healthFails < h.Failures {
		p.log.Warn("health check failed", zap.Error(err), zap.Int("failures", p.healthFails), zap.Int("of", h.Failures))
		p.after(h.Interval, event{kind: evHealthCheck, gen: p.gen})
		return
	}
	p.healthRuns++
	p.healthRestarts++
	p.restarts++
	p.info = "restarting: health check failed"
	p.log.Warn("health check failed; restarting the program", zap.Error(err), zap.Int("failures", p.healthFails),
		zap.Int("health_restarts_in_a_row", p.healthRuns))
	p.restartAfter, p.checkRestart = true, causeHealth
	p.stop()
}

// giveUp enters FATAL after tries failed starts in a row (0: another
// cause, in p.spawnErr) and, unless fatal_retry is "never", schedules the
// next round of starts.
func (p *process) giveUp(tries int, fields ...zap.Field) {
	p.tries = tries
	p.setState(Fatal, fields...)
	if p.cfg.Program.FatalRetry > 0 {
		p.gen++ // the retry timer belongs to this FATAL only
		p.nextStart = time.Now().Add(p.cfg.Program.FatalRetry)
		p.after(p.cfg.Program.FatalRetry, event{kind: evFatalRetry, gen: p.gen})
	}
}

// unkillableGrace is how long processes may outlive a SIGKILL (stuck in
// uninterruptible sleep) before a stop gives up on them.
const unkillableGrace = 5 * time.Second

// pgroupPollInterval: after a leader exits during a stop, stragglers in its
// process group are checked this often until they are gone or stop_timeout
// ends (the kernel offers no event for "process group empty").
const pgroupPollInterval = 50 * time.Millisecond

func (p *process) maybeRunning() {
	if p.startSecsOK && p.probeOK {
		p.clearTimers()
		p.fails = 0
		p.runningSince = time.Now()
		p.info = ""
		p.healthFails, p.healthErr = 0, ""
		p.memOver = 0
		p.setState(Running)
		if h := p.cfg.Program.Health; h != nil {
			p.after(h.Grace+h.Interval, event{kind: evHealthCheck, gen: p.gen})
		}
	}
}

// exited handles the exit of a process we spawned.
func (p *process) exited(ei exitInfo) {
	if p.child == nil || ei.pid != p.child.pid {
		return
	}
	es := exitStatusOf(ei.status)
	p.lastExit = &es
	fields := []zap.Field{zap.Int("exit_code", es.Code)}
	if es.Signal != "" {
		fields = append(fields, zap.String("signal", es.Signal))
	}
	switch p.state {
	case Stopping:
		p.log.Info("exited", append(fields, zap.Int("pid", ei.pid))...)
		if p.draining {
			// It exited while drained: the rest of its group gets the
			// stop signal, as after a drain.
			p.clearTimers()
			p.drained()
		}
		p.leaderGone = true
		if pgroupAlive(p.child.pid) {
			p.after(pgroupPollInterval, event{kind: evPgroupCheck, gen: p.gen})
			return
		}
		p.finishStop()
	case Starting:
		// Exited before start_secs or before its probe passed: a failed start.
		p.clearTimers()
		p.killPgroup(syscall.SIGKILL) // leftovers of a failed attempt
		p.sup.pgroups.remove(p.child.pid)
		p.child = nil
		p.fails++
		if p.failure.Kind != FailNotReady {
			p.failure = Failure{Kind: FailExitedEarly}
		}
		if p.fails > p.cfg.Program.StartRetries {
			p.spawnErr = fmt.Sprintf("exited too quickly (%s) %d times in a row; fix it, then `hostctl start %s`", es, p.fails, p.cfg.Name)
			p.info = ""
			p.giveUp(p.fails, fields...)
			return
		}
		d := p.backoffDelay(p.fails)
		p.enterBackoff(d, fmt.Sprintf("exited too quickly (%s); retry %d/%d", es, p.fails, p.cfg.Program.StartRetries), fields...)
	case Running:
		p.clearTimers()
		p.killPgroup(syscall.SIGKILL) // the leader died: its group goes with it
		p.sup.pgroups.remove(p.child.pid)
		p.child = nil
		p.failure = Failure{Kind: FailExited, Expected: p.exitExpected(es)}
		p.setState(Exited, fields...)
		if !p.shouldRestart(es) {
			return
		}
		if time.Since(p.runningSince) >= p.resetAfter() {
			p.crashes = 0
		}
		p.crashes++
		p.restarts++
		if p.crashes == 1 {
			p.gen++
			p.startSecsOK, p.probeOK = false, false
			p.setState(Starting, zap.String("reason", "restart after crash"))
			p.spawn()
			return
		}
		p.enterBackoff(p.backoffDelay(p.crashes-1), fmt.Sprintf("crashed %d times", p.crashes), fields...)
	}
}

func (p *process) enterBackoff(d time.Duration, why string, fields ...zap.Field) {
	p.gen++
	p.info = why
	p.setState(Backoff, append(fields, zap.Duration("delay", d), zap.String("reason", why))...)
	p.nextStart = time.Now().Add(d)
	p.after(d, event{kind: evBackoffDone, gen: p.gen})
}

func (p *process) finishStop() {
	p.clearTimers()
	if p.child != nil {
		p.sup.pgroups.remove(p.child.pid)
	}
	p.child = nil
	p.leaderGone = false
	p.killedAt = time.Time{}
	p.draining = false
	p.info = ""
	runs, why, kind := 0, "", NoFailure
	switch p.checkRestart {
	case causeHealth:
		runs, why, kind = p.healthRuns, "health check failed; restart %d in a row without a passing check", FailHealth
	case causeMemory:
		runs, why, kind = p.memRuns, "memory above memory_limit; restart %d in a row without a check below it", FailMemory
	}
	p.checkRestart = causeNone
	if p.restartAfter && runs > 1 {
		// Restarted for the same reason before, and not well since: wait,
		// the longer the more often in a row, as for repeated crashes.
		p.restartAfter = false
		why = fmt.Sprintf(why, runs)
		p.failure = Failure{Kind: kind, Err: errors.New(why)}
		p.enterBackoff(p.backoffDelay(runs-1), why)
		return
	}
	p.setState(Stopped)
	if p.restartAfter {
		p.restartAfter = false
		p.fails, p.crashes = 0, 0
		p.beginStart(false)
	}
}

// exitExpected reports whether exit_codes lists how a process ended (a
// signal never is), as supervisord's "expected" exit.
func (p *process) exitExpected(es ExitStatus) bool {
	return es.Signal == "" && slices.Contains(p.cfg.Program.ExitCodes, es.Code)
}

func (p *process) shouldRestart(es ExitStatus) bool {
	switch p.cfg.Program.Autorestart {
	case RestartNever:
		return false
	case RestartOnFailure:
		return !p.exitExpected(es)
	}
	return true
}

func (p *process) resetAfter() time.Duration {
	if p.cfg.Program.Backoff.ResetAfter > 0 {
		return p.cfg.Program.Backoff.ResetAfter
	}
	return max(10*p.cfg.Program.StartSecs, 60*time.Second)
}

// backoffDelay is the n-th delay (n >= 1): initial*2^(n-1) capped at max,
// jittered into [d/2, d] so that delays never shrink from one try to the
// next yet programs that fail together do not retry in lockstep.
func (p *process) backoffDelay(n int) time.Duration {
	d := p.cfg.Program.Backoff.Initial
	for i := 1; i < n && d < p.cfg.Program.Backoff.Max; i++ {
		d *= 2
	}
	d = min(d, p.cfg.Program.Backoff.Max)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// pgroupAlive reports whether any live (non-zombie) process is left in
// process group pgid. Zombies do not count: they hold nothing, and where
// PID 1 does not reap, they would never go away.
func pgroupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	for _, st := range allProcs() {
		if st.pgid == pgid && st.state != 'Z' {
			return true
		}
	}
	return false
}
