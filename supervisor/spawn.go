package supervisor

import (
	"errors"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
)

// exitInfo is how a process ended.
type exitInfo struct {
	pid    int
	status syscall.WaitStatus
	rusage syscall.Rusage
}

// ExitStatus describes how a process ended: Code is the exit code, or
// 128+signal when a signal killed it (then Signal names it).
type ExitStatus struct {
	Code   int    `json:"code"`
	Signal string `json:"signal,omitempty"`
}

func (e ExitStatus) String() string {
	if e.Signal != "" {
		return "killed by SIG" + e.Signal + " (" + strconv.Itoa(e.Code) + ")"
	}
	return "exit status " + strconv.Itoa(e.Code)
}

func exitStatusOf(ws syscall.WaitStatus) ExitStatus {
	if ws.Signaled() {
		return ExitStatus{Code: 128 + int(ws.Signal()), Signal: SignalName(ws.Signal())}
	}
	return ExitStatus{Code: ws.ExitStatus()}
}

// spawner starts processes from one goroutine locked to its OS thread, so
// that Pdeathsig (which fires when the parent *thread* exits) fires only when
// hostctl itself dies. It also waits for them: on SIGCHLD it checks each
// registered pid with a non-blocking wait4, so it never steals the exit
// status of a child started elsewhere (os/exec in the same process). With
// reapAll (hostctl is PID 1 or a subreaper) it also reaps every other child;
// then everything hostctl starts must go through the spawner.
//
// mu guards procs. It is held across fork+register and across wait4+lookup,
// so a pid is always registered before the reaper can see it exit.
type spawner struct {
	reqs    chan spawnReq
	mu      sync.Mutex
	procs   map[int]func(exitInfo)
	reapAll bool
	sigs    chan os.Signal
	// onOrphan is called (without mu) for each reaped pid that was not ours.
	onOrphan func(pid int, ws syscall.WaitStatus)
}

type spawnReq struct {
	argv0 string
	argv  []string
	attr  *syscall.ProcAttr
	oom   *int // the child's oom_score_adj; nil: hostctl's own
	done  func(exitInfo)
	reply chan spawnRes
}

type spawnRes struct {
	pid int
	err error
}

var (
	defaultSpawnerOnce sync.Once
	defaultSpawner     *spawner
)

// theSpawner returns the process-wide spawner (one reaper per process).
func theSpawner() *spawner {
	defaultSpawnerOnce.Do(func() {
		defaultSpawner = newSpawner()
	})
	return defaultSpawner
}

func newSpawner() *spawner {
	s := &spawner{
		reqs:  make(chan spawnReq),
		procs: map[int]func(exitInfo){},
		sigs:  make(chan os.Signal, 1),
	}
	signal.Notify(s.sigs, syscall.SIGCHLD)
	unignoreForChildren()
	go s.forkLoop()
	go s.reapLoop()
	return s
}

// inheritedIgnores receives SIGHUP and SIGINT when hostctl was started
// with them ignored; nothing reads it (signal.Notify never blocks).
var inheritedIgnores = make(chan os.Signal, 1)

// unignoreForChildren makes programs start with the default action for
// SIGHUP and SIGINT even when hostctl itself was started with them ignored
// (nohup, some CI runners and init scripts). The Go runtime keeps those
// two ignored in that case, and an ignored signal stays ignored across
// exec: a program would then never see `hostctl signal HUP`, and a POSIX
// shell may not even trap it (its trap is silently a no-op). A caught
// signal is reset to the default in the child, so catching them here, and
// dropping what arrives, keeps hostctl ignoring them while its children
// get the default, as systemd gives its services. Every other signal Go
// catches already, so children get the default for it anyway.
func unignoreForChildren() {
	for _, sig := range []os.Signal{syscall.SIGHUP, syscall.SIGINT} {
		if signal.Ignored(sig) {
			signal.Notify(inheritedIgnores, sig)
		}
	}
}

// EnableReapAll makes hostctl reap every child that exits, not just its
// programs: right when it is PID 1 or a child subreaper. It is process-wide
// and must be enabled before anything else starts children with os/exec.
func EnableReapAll(onOrphan func(pid int, ws syscall.WaitStatus)) {
	s := theSpawner()
	s.mu.Lock()
	s.reapAll = true
	s.onOrphan = onOrphan
	s.mu.Unlock()
	s.kick()
}

// BecomeSubreaper marks hostctl as a child subreaper: orphaned descendants of
// its programs are reparented to hostctl (which reaps them) instead of init.
func BecomeSubreaper() error {
	const prSetChildSubreaper = 36
	_, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	if e != 0 {
		return e
	}
	return nil
}

func (s *spawner) kick() {
	select {
	case s.sigs <- syscall.SIGCHLD:
	default:
	}
}

// forkLoop runs on a locked OS thread for the life of the process. The
// goroutine never returns, so the thread never exits, so Pdeathsig fires
// only when the whole process dies.
func (s *spawner) forkLoop() {
	runtime.LockOSThread()
	for r := range s.reqs {
		restore := func() {}
		if r.oom != nil {
			var err error
			if restore, err = childOOM(*r.oom); err != nil {
				r.reply <- spawnRes{0, err}
				continue
			}
		}
		s.mu.Lock()
		pid, err := syscall.ForkExec(r.argv0, r.argv, r.attr)
		if err == nil {
			s.procs[pid] = r.done
		}
		s.mu.Unlock()
		restore()
		r.reply <- spawnRes{pid, err}
	}
}

// start forks and execs; done is called exactly once, from the reaper
// goroutine, when the process has exited and been reaped. The child keeps
// hostctl's oom_score_adj (startOOM gives it another).
func (s *spawner) start(argv0 string, argv []string, attr *syscall.ProcAttr, done func(exitInfo)) (int, error) {
	return s.startOOM(argv0, argv, attr, nil, done)
}

// startOOM is start with the child's oom_score_adj (nil: hostctl's).
func (s *spawner) startOOM(argv0 string, argv []string, attr *syscall.ProcAttr, oom *int, done func(exitInfo)) (int, error) {
	reply := make(chan spawnRes, 1)
	s.reqs <- spawnReq{argv0, argv, attr, oom, done, reply}
	r := <-reply
	return r.pid, r.err
}

func (s *spawner) reapLoop() {
	for range s.sigs {
		s.reapOnce()
	}
}

func (s *spawner) reapOnce() {
	type orphan struct {
		pid int
		ws  syscall.WaitStatus
	}
	type exited struct {
		done func(exitInfo)
		ei   exitInfo
	}
	var orphans []orphan
	var exits []exited
	s.mu.Lock()
	for pid, done := range s.procs {
		var ei exitInfo
		wpid, err := syscall.Wait4(pid, &ei.status, syscall.WNOHANG, &ei.rusage)
		if wpid == pid {
			ei.pid = pid
			delete(s.procs, pid)
			exits = append(exits, exited{done, ei})
		} else if errors.Is(err, syscall.ECHILD) {
			// Someone else reaped it; all we know is that it is gone.
			delete(s.procs, pid)
			exits = append(exits, exited{done, exitInfo{pid: pid, status: syscall.WaitStatus(syscall.SIGKILL)}})
		}
	}
	if s.reapAll {
		for {
			var ei exitInfo
			wpid, err := syscall.Wait4(-1, &ei.status, syscall.WNOHANG, &ei.rusage)
			if wpid <= 0 || err != nil {
				break
			}
			ei.pid = wpid
			if done, ok := s.procs[wpid]; ok {
				delete(s.procs, wpid)
				exits = append(exits, exited{done, ei})
				continue
			}
			orphans = append(orphans, orphan{wpid, ei.status})
		}
	}
	onOrphan := s.onOrphan
	s.mu.Unlock()
	for _, e := range exits {
		e.done(e.ei)
	}
	if onOrphan != nil {
		for _, o := range orphans {
			onOrphan(o.pid, o.ws)
		}
	}
}
