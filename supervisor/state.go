// Package supervisor starts, watches and stops programs the way supervisord
// does, without its known failures: it orders startup by dependencies and
// readiness probes, restarts crashed programs at once and then with a growing,
// jittered backoff, stops whole process groups (signal, timeout, SIGKILL), and
// never leaves orphans behind.
//
// One goroutine owns each program (its process, state, retry count and
// timers). Everyone else reads immutable Status snapshots and sends commands.
package supervisor

import "fmt"

// State is a program's state; names and meanings are supervisord's.
type State uint8

const (
	// Stopped: not running; never started, or stopped on request.
	Stopped State = iota
	// Starting: a start was requested (waiting for dependencies, or the
	// process is up but has not yet lasted start_secs / passed its probe).
	Starting
	// Running: up for start_secs and ready.
	Running
	// Backoff: the last start failed, the program keeps crashing, or it
	// keeps failing its health check; waiting before the next try.
	Backoff
	// Stopping: the stop signal was sent; waiting for the process group to exit.
	Stopping
	// Exited: the process exited on its own from Running and will not be
	// restarted (autorestart said so). One that will be restarted passes
	// through Exited within one step and is never published in it.
	Exited
	// Fatal: the program could not be started (spawn error, start_retries
	// exhausted, or a dependency that is down). Stays so until an explicit
	// start or, unless fatal_retry is "never", until fatal_retry has passed:
	// then hostctl tries again as `hostctl start` would. A stop cancels
	// that retry (FATAL -> STOPPED).
	Fatal
)

var stateNames = [...]string{"STOPPED", "STARTING", "RUNNING", "BACKOFF", "STOPPING", "EXITED", "FATAL"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", s)
}

// MarshalText makes states appear by name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown state %q", b)
}

// transitions is the one table of allowed state changes. Every change goes
// through (*process).setState, which refuses (and logs as a bug) anything
// not listed here.
var transitions = map[State][]State{
	Stopped:  {Starting},
	Starting: {Running, Backoff, Stopping, Fatal, Stopped},
	Running:  {Stopping, Exited},
	Backoff:  {Starting, Stopped},
	Stopping: {Stopped, Backoff},
	Exited:   {Starting, Backoff},
	Fatal:    {Starting, Stopped},
}

// canTransition reports whether from -> to is in the table.
func canTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// IsUp reports whether a process may exist in this state.
func (s State) IsUp() bool { return s == Starting || s == Running || s == Stopping }
