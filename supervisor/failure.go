package supervisor

import "fmt"

// FailureKind says, typed, why a process's last start failed or why its
// last process ended on its own, for readers that must say it in another
// product's words (supervisord's spawnerr) rather than hostctl's own text
// (Status.SpawnErr and Status.Info, which hostctl's CLI, API, dashboard and
// alerts show).
type FailureKind uint8

const (
	// NoFailure: the process has not failed since its last start began.
	NoFailure FailureKind = iota
	// FailExitedEarly: a start attempt's process exited before it was
	// RUNNING (before start_secs): Status.LastExit says how. In BACKOFF
	// while start_retries last; in FATAL (Status.Tries) after.
	FailExitedEarly
	// FailNotReady: a start attempt was killed because its ready probe did
	// not pass within ready.deadline. In BACKOFF or FATAL, as above.
	FailNotReady
	// FailSpawn: no process could be started (FATAL). Failure.Err says why:
	// a *CommandError when the command is missing or not executable, else
	// the credential or exec error.
	FailSpawn
	// FailDependency: a program in depends_on is down for good (FATAL);
	// Failure.Err names it.
	FailDependency
	// FailExited: the process exited on its own from RUNNING (EXITED, or
	// BACKOFF when it keeps crashing); Failure.Expected says whether
	// exit_codes lists how it ended.
	FailExited
	// FailHealth: restarted again and again because health checks failed
	// (BACKOFF between the restarts).
	FailHealth
	// FailMemory: restarted again and again because its memory stayed above
	// memory_limit (BACKOFF between the restarts).
	FailMemory
)

var failureKindNames = [...]string{
	NoFailure: "none", FailExitedEarly: "exited-early", FailNotReady: "not-ready", FailSpawn: "spawn",
	FailDependency: "dependency", FailExited: "exited", FailHealth: "health", FailMemory: "memory",
}

func (k FailureKind) String() string {
	if int(k) < len(failureKindNames) {
		return failureKindNames[k]
	}
	return fmt.Sprintf("FailureKind(%d)", k)
}

// Failure is why a process failed, typed (see FailureKind). It is cleared
// when the process enters STARTING, as supervisord clears spawnerr when it
// spawns, and otherwise kept: a program stopped while in BACKOFF still
// says why its last start failed.
type Failure struct {
	Kind FailureKind
	// Err is hostctl's own account, for FailSpawn, FailDependency,
	// FailHealth and FailMemory; nil for the others.
	Err error
	// Expected is, for FailExited, whether exit_codes lists the exit code
	// (a signal is never expected).
	Expected bool
}

// CommandProblem is what is wrong with a program's command.
type CommandProblem uint8

const (
	// CommandNotFound: no such file, or not in PATH.
	CommandNotFound CommandProblem = iota + 1
	// CommandIsDir: the command is a directory.
	CommandIsDir
	// CommandNotExecutable: the file has no execute permission bit.
	CommandNotExecutable
)

// CommandError is why a program's command cannot be run. Its text is
// hostctl's message; Command and Problem say it typed.
type CommandError struct {
	// Command is the command as configured (after ${VAR} expansion),
	// relative paths not joined with the program's directory.
	Command string
	Problem CommandProblem
	msg     string
}

func (e *CommandError) Error() string { return e.msg }
