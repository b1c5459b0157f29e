package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/shlex"

	"github.com/hostctl/hostctl/supervisor/logfile"
)

// ProgramConfig is one [program.NAME] table of hostctl.toml. The config
// decoder fills a DefaultProgramConfig() with the keys present in the file,
// then Validate checks it.
type ProgramConfig struct {
	// Name is the program name: the table name (program.NAME); not a TOML
	// key. (A process has its own name: ProcessConfig.Name.)
	Name string `toml:"-"`

	// Instances is how many copies of the program run (supervisord's
	// numprocs), each its own process: supervised, logged (its own log
	// files, named by process name) and restarted on its own. ${INSTANCE}
	// is the instance number in Command, Environment, ProcessName,
	// Directory, StdoutLog, StderrLog and the Ready and Health targets
	// ($${INSTANCE} is a literal ${INSTANCE}); anywhere else it is an
	// error. At most 1000. Default 1.
	Instances int `toml:"instances"`
	// InstanceStart is the number of the first instance (supervisord's
	// numprocs_start): instances are InstanceStart, InstanceStart+1, ...
	// Default 0.
	InstanceStart int `toml:"instance_start"`
	// ProcessName names each instance's process; ${NAME} is the program
	// name, ${INSTANCE} the instance number. Process names share one
	// namespace with program and group names. Default "${NAME}_${INSTANCE}"
	// with instances > 1 (where it must contain ${INSTANCE}), else "${NAME}".
	ProcessName string `toml:"process_name" instance:"expand"`
	// Rolling makes a restart of several instances of this program
	// (`hostctl restart NAME`) go one instance at a time, each RUNNING (and
	// ready) again before the next is stopped, so that the program never
	// has every instance down at once. Default false: all at once.
	Rolling bool `toml:"rolling"`

	// ProgramGroup is the [group.NAME] table that lists the program ("":
	// none; its processes are then in a program group of its own name:
	// see programgroups.go). The config reader sets it; not a TOML key.
	ProgramGroup string `toml:"-"`

	// Command is the program and its arguments: a string split like a shell
	// would ("gunicorn -w 3 app:wsgi"), or an array. ${VAR} expands from
	// hostctl's environment merged with Environment. Required.
	Command Command `toml:"command"`
	// Directory is the working directory. Default: hostctl's.
	Directory string `toml:"directory" instance:"expand"`
	// User to run as (hostctl must be root): uid, gid and supplementary
	// groups of that user; HOME, USER and LOGNAME are set for it unless
	// Environment sets them. Its exec probes run as it too. A start fails
	// (never runs with hostctl's groups) when its groups cannot be listed.
	User string `toml:"user"`
	// Group overrides the primary group of User; it requires User (alone it
	// would run the program as root with another group).
	Group string `toml:"group"`
	// Environment sets variables; values expand ${VAR} from hostctl's
	// environment (an unknown variable is an error; $$ is a literal $).
	// It is applied last, over everything below.
	Environment map[string]string `toml:"environment"`
	// InheritEnvironment passes variables of hostctl's own environment to
	// the program: true for all of them (supervisord's way), or a list of
	// names (a name ending in * is a prefix: "DJANGO_*"). Default false:
	// the program gets only Environment, the default set (see DefaultEnv)
	// and HOME, USER and LOGNAME. hostctl's environment often holds
	// secrets given for ${VAR} in the config; they reach a program only
	// through Environment, or when inherited on purpose.
	InheritEnvironment InheritEnv `toml:"inherit_environment"`
	// Umask as an octal string, e.g. "022". Default: hostctl's.
	Umask string `toml:"umask"`
	// Autostart starts the program when hostctl starts. Default true.
	Autostart bool `toml:"autostart"`
	// Autorestart is "always", "on-failure" (exit code not in ExitCodes, or
	// killed by a signal) or "never". Default "always".
	Autorestart string `toml:"autorestart"`
	// ExitCodes are the expected exit codes for "on-failure". Default [0].
	ExitCodes []int `toml:"exit_codes"`
	// StartSecs is how long the process must stay up to count as started.
	// Default 1s.
	StartSecs time.Duration `toml:"start_secs"`
	// StartRetries is how many times a failed start (exit before start_secs,
	// or ready probe not passing within ready.deadline) is retried before the
	// program goes FATAL; like supervisord's startretries, 3 means up to 4
	// attempts. Default 3.
	StartRetries int `toml:"start_retries"`
	// Backoff is the delay between failed starts and repeated crashes.
	Backoff BackoffConfig `toml:"backoff"`
	// FatalRetry is how long a FATAL program waits before hostctl tries
	// again, with a fresh round of start_retries, exactly as `hostctl start`
	// would. In the file "never" (RetryNever here) keeps it FATAL until
	// someone starts it. Default 5m.
	FatalRetry time.Duration `toml:"fatal_retry" never:"allowed"`
	// StopSignal is sent to the whole process group to stop it. Default "TERM".
	StopSignal string `toml:"stop_signal"`
	// StopTimeout is how long to wait after StopSignal before SIGKILL to the
	// group. Default 10s.
	StopTimeout time.Duration `toml:"stop_timeout"`
	// DrainTimeout bounds the drain before a stop: for at most this long
	// after a stop is asked (stop, restart, rolling restart, reload), the
	// stop signal waits while the web front takes the process's proxy
	// upstreams out of their pools and their requests in flight finish
	// (Options.BeforeStop). 0: no drain. Default 10s.
	DrainTimeout time.Duration `toml:"drain_timeout"`
	// ReloadSignal is what `hostctl signal`/reload sends for a graceful
	// reload (e.g. "HUP" for gunicorn). Optional.
	ReloadSignal string `toml:"reload_signal"`
	// DependsOn names programs that must be RUNNING (and ready) before this
	// one starts; shutdown stops this one before them.
	DependsOn []string `toml:"depends_on"`
	// Ready is an optional readiness probe; RUNNING also requires it to pass.
	Ready *ProbeConfig `toml:"ready"`
	// Serves names the proxy upstreams this program serves, written as in
	// [proxy] ("unix:/run/app/gunicorn-${INSTANCE}.sock", or a list of
	// them): the proxy waits for it before it starts, health_path answers
	// by its state, and upstreams_down names it. ${INSTANCE} is expanded
	// per instance. An empty list says the program serves none. nil (the
	// key absent): the upstream its ready probe proves, that is ready.tcp
	// equal to a host:port upstream, ready.socket equal to a unix
	// upstream's path, or ready.http's host:port; nothing else is guessed.
	// The supervisor only carries it; the config reader checks it against
	// [proxy].
	Serves Serves `toml:"serves"`
	// Health is an optional health check while RUNNING: after Failures
	// failed checks in a row the program is restarted (stop_signal,
	// stop_timeout, start), with backoff when that repeats.
	Health *HealthConfig `toml:"health"`
	// MemoryLimit is the most resident memory (RSS, summed over the
	// program's whole process group, as `hostctl status` shows it) the
	// program may use, in bytes; in the file a size like "512MB". Measured
	// every 5s (Options.MemoryCheckInterval); above it for two checks in a
	// row, the program is restarted like for a failed health check
	// (stop_signal, stop_timeout, start; backoff when that repeats).
	// Default 0: no limit.
	MemoryLimit int64 `toml:"memory_limit" unit:"bytes"`
	// OOMScoreAdj is the program's oom_score_adj (-1000 to 1000; see
	// proc(5)): how willing the kernel's OOM killer is to kill it. Its
	// processes and exec probes start at it, not at hostctl's own
	// (DaemonOOMScoreAdj, -900), and cannot go below it again unless they
	// run as root. A negative value needs hostctl to run as root. Default
	// 0, the kernel's default.
	OOMScoreAdj int `toml:"oom_score_adj"`
	// Description is a free text shown by `hostctl status`.
	Description string `toml:"description"`
	// Notes is free text for the person on call (what the program is for,
	// what to do when it breaks), shown by `hostctl status NAME` and the
	// dashboard and sent with every alert about the program.
	Notes string `toml:"notes"`
	// Required makes hostctl itself stop and exit non-zero when this
	// program goes FATAL (after stopping the others in reverse dependency
	// order), so that a container's orchestrator restarts the container
	// instead of leaving it up without the program. The supervisor only
	// carries it: the daemon acts on it. Changing it does not restart the
	// program. Default false.
	Required bool `toml:"required"`
	// Deploy is what `hostctl deploy` does with the program: "blue_green"
	// (a new release's instances start beside the live ones, in the other
	// slot, and take the traffic once they pass the gate), "restart" (it is
	// restarted on the new release after the switch), "rolling" (the same,
	// one instance at a time, as with Rolling), or "none" (left alone:
	// memcached, rabbitmq). The supervisor only carries it: the config
	// reader resolves ${SLOT} and ${RELEASE_DIR}, the daemon deploys.
	// Default "" (the config reader picks "restart" or "none").
	Deploy string `toml:"deploy"`

	// StdoutLog is the file for stdout. Default <log.dir>/NAME.out.log;
	// "none" discards; "-" writes each line to hostctl's own stdout,
	// prefixed with the process name (a container's log), and
	// "/dev/stderr" to hostctl's stderr. A file's dir must be safe like
	// log.dir (logfile.CheckDir).
	StdoutLog string `toml:"stdout_log" instance:"expand"`
	// StderrLog is the file for stderr. Default <log.dir>/NAME.err.log;
	// "none" discards; "-" writes each line to hostctl's own stderr,
	// prefixed with the process name, and "/dev/stdout" to its stdout.
	// Ignored with RedirectStderr.
	StderrLog string `toml:"stderr_log" instance:"expand"`
	// RedirectStderr sends stderr into the stdout log. Default false.
	RedirectStderr bool `toml:"redirect_stderr"`
	// Timestamps prefixes each captured line with an RFC 3339 time.
	Timestamps bool `toml:"timestamps"`
	// MaxSize, MaxBackups, MaxAge and Compress override [log]'s rotation
	// settings for this program's logs.
	MaxSize    *int64         `toml:"max_size" unit:"bytes"`
	MaxBackups *int           `toml:"max_backups"`
	MaxAge     *time.Duration `toml:"max_age"`
	Compress   *bool          `toml:"compress"`
}

// BackoffConfig is the exponential, jittered delay between failed starts.
type BackoffConfig struct {
	// Initial is the first delay. Default 1s.
	Initial time.Duration `toml:"initial"`
	// Max caps the delay. Default 60s.
	Max time.Duration `toml:"max"`
	// ResetAfter is how long a program must stay RUNNING for its backoff to
	// reset. Default max(10 x start_secs, 60s).
	ResetAfter time.Duration `toml:"reset_after"`
}

// ProbeConfig is a readiness probe. Exactly one of TCP, HTTP, Exec.
type ProbeConfig struct {
	// TCP is "host:port" that must accept a connection.
	TCP string `toml:"tcp" instance:"expand"`
	// HTTP is a URL that must answer 2xx to GET.
	HTTP string `toml:"http" instance:"expand"`
	// Socket, with HTTP only, is the absolute path of a unix socket to send
	// the request to (like `curl --unix-socket`), for a server such as
	// gunicorn that listens on one; the URL then gives the path and the
	// Host header ("http://localhost/healthz"). Default "": dial the URL's
	// host.
	Socket string `toml:"socket" instance:"expand"`
	// Exec is a command (shell-split) that must exit 0.
	Exec Command `toml:"exec"`
	// Interval between attempts. Default 250ms.
	Interval time.Duration `toml:"interval"`
	// Timeout of one attempt. Default 2s.
	Timeout time.Duration `toml:"timeout"`
	// Deadline is how long after the spawn the probe may take to pass before
	// the start counts as failed (the process group is killed and retried).
	// Default 60s.
	Deadline time.Duration `toml:"deadline"`
}

// HealthConfig is a health check of a RUNNING program. Exactly one of TCP,
// HTTP, Exec, with the same forms as a ready probe.
type HealthConfig struct {
	// TCP is "host:port" that must accept a connection.
	TCP string `toml:"tcp" instance:"expand"`
	// HTTP is a URL that must answer 2xx to GET.
	HTTP string `toml:"http" instance:"expand"`
	// Socket, with HTTP only, is the absolute path of a unix socket to send
	// the request to, as for a ready probe. Default "": dial the URL's host.
	Socket string `toml:"socket" instance:"expand"`
	// Exec is a command (shell-split) that must exit 0.
	Exec Command `toml:"exec"`
	// Interval between checks. Default 10s.
	Interval time.Duration `toml:"interval"`
	// Timeout of one check. Default 5s.
	Timeout time.Duration `toml:"timeout"`
	// Failures is how many checks in a row must fail before the program is
	// restarted. Default 3.
	Failures int `toml:"failures"`
	// Grace is how long after RUNNING the checks start (the first one runs
	// one Interval after that). Default 0.
	Grace time.Duration `toml:"grace"`
}

// DefaultHealthConfig is what an empty [program.X.health] table holds.
func DefaultHealthConfig() HealthConfig {
	return HealthConfig{Interval: 10 * time.Second, Timeout: 5 * time.Second, Failures: 3}
}

// probe is the check as a ProbeConfig, for the probe code ready uses.
func (h *HealthConfig) probe() *ProbeConfig {
	return &ProbeConfig{TCP: h.TCP, HTTP: h.HTTP, Socket: h.Socket, Exec: h.Exec, Interval: h.Interval, Timeout: h.Timeout}
}

// Command is a program and its arguments. In TOML it is a string split like
// a shell would, or an array of strings.
type Command []string

// UnmarshalTOML accepts a string or an array of strings.
func (c *Command) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		if strings.TrimSpace(v) == "" {
			*c = Command{}
			return nil
		}
		args, err := shlex.Split(v)
		if err != nil {
			return fmt.Errorf("cannot split %q like a shell would: %v", v, err)
		}
		*c = args
	case []any:
		out := make(Command, 0, len(v))
		for i, a := range v {
			s, ok := a.(string)
			if !ok {
				return fmt.Errorf("element %d is %T, want a string", i, a)
			}
			out = append(out, s)
		}
		*c = out
	default:
		return fmt.Errorf("must be a string or an array of strings, not %T", v)
	}
	return nil
}

// Serves is the serves key: upstream addresses. In TOML it is a string or
// an array of strings; nil when the key is absent, empty (not nil) for
// serves = [].
type Serves []string

// UnmarshalTOML accepts a string or an array of strings.
func (s *Serves) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		*s = Serves{v}
	case []any:
		out := make(Serves, 0, len(v))
		for i, a := range v {
			str, ok := a.(string)
			if !ok {
				return fmt.Errorf("element %d is %T, want a string (an upstream such as \"unix:/run/app.sock\")", i, a)
			}
			out = append(out, str)
		}
		*s = out
	default:
		return fmt.Errorf("must be an upstream address (\"unix:/run/app.sock\", \"127.0.0.1:8000\") or a list of them, not %T", v)
	}
	return nil
}

// InheritEnv is which of hostctl's own variables a program inherits: All,
// or those named in Names. The zero value inherits none.
type InheritEnv struct {
	All bool
	// Names are variable names; one ending in * matches every name that
	// starts with what comes before the *.
	Names []string
}

// UnmarshalTOML accepts true, false, or an array of names.
func (e *InheritEnv) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case bool:
		*e = InheritEnv{All: v}
	case []any:
		out := InheritEnv{Names: make([]string, 0, len(v))}
		for i, a := range v {
			s, ok := a.(string)
			if !ok {
				return fmt.Errorf("element %d is %T, want a variable name", i, a)
			}
			out.Names = append(out.Names, s)
		}
		*e = out
	default:
		return fmt.Errorf("must be true, false or an array of variable names (example: [\"DJANGO_SETTINGS_MODULE\", \"AWS_*\"]), not %T", v)
	}
	return nil
}

// Inherits reports whether the variable name passes.
func (e InheritEnv) Inherits(name string) bool {
	if e.All {
		return true
	}
	for _, n := range e.Names {
		if prefix, ok := strings.CutSuffix(n, "*"); ok {
			if strings.HasPrefix(name, prefix) {
				return true
			}
		} else if n == name {
			return true
		}
	}
	return false
}

// RetryNever is FatalRetry's value for "never".
const RetryNever time.Duration = -1

// DefaultProgramConfig returns a program config with every default set.
func DefaultProgramConfig(name string) ProgramConfig {
	return ProgramConfig{
		Name:         name,
		Instances:    1,
		Autostart:    true,
		Autorestart:  "always",
		ExitCodes:    []int{0},
		StartSecs:    time.Second,
		StartRetries: 3,
		Backoff:      BackoffConfig{Initial: time.Second, Max: 60 * time.Second},
		FatalRetry:   5 * time.Minute,
		StopSignal:   "TERM",
		StopTimeout:  10 * time.Second,
		DrainTimeout: 10 * time.Second,
	}
}

// DefaultProbeConfig is what an empty [program.X.ready] table holds.
func DefaultProbeConfig() ProbeConfig {
	return ProbeConfig{Interval: 250 * time.Millisecond, Timeout: 2 * time.Second, Deadline: 60 * time.Second}
}

// minMemoryLimit is the smallest memory_limit accepted: anything less is
// a number written without its unit.
const minMemoryLimit = 1 << 20

// FieldError is a problem with one config key.
type FieldError struct {
	Key string // full key path, e.g. program.gunicorn.stop_timeout
	Msg string // what is wrong and what to do
	// Machine is set when the problem is with this machine rather than
	// with the file: a user, group, command or directory that does not
	// exist here. The same file may be right on the machine it is for.
	Machine bool
}

// OnMachine reports whether the problem depends on this machine (see
// Machine).
func (e *FieldError) OnMachine() bool { return e.Machine }

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Field returns the key path and the message apart, so that the config
// file reader can put the key's line in front.
func (e *FieldError) Field() (key, msg string) { return e.Key, e.Msg }

// Restart policies.
const (
	RestartAlways    = "always"
	RestartOnFailure = "on-failure"
	RestartNever     = "never"
)

// MaxInstances is the most instances a program may have.
const MaxInstances = 1000

// Validate checks one program on its own; ValidatePrograms checks the set
// (dependencies, names). prefix is the key path of the table
// ("program.web"). It returns every problem found, each a *FieldError.
// What depends on the instance is checked for every instance, and a
// problem they share is reported once.
func (p *ProgramConfig) Validate(prefix string) []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &FieldError{Key: prefix + "." + key, Msg: fmt.Sprintf(format, a...)})
	}
	if !validName(p.Name) {
		errs = append(errs, &FieldError{Key: prefix, Msg: fmt.Sprintf("program name %q may only use letters, digits, '-', '_' and '.'", p.Name)})
	}
	switch {
	case p.Instances < 1:
		bad("instances", "must be at least 1 (the number of processes to run)")
	case p.Instances > MaxInstances:
		bad("instances", "%d is more than %d; each instance is a process with its own log files", p.Instances, MaxInstances)
	}
	if p.InstanceStart < 0 {
		bad("instance_start", "must not be negative")
	}
	if p.Instances > 1 {
		if p.ProcessName != "" && !mentions(p.ProcessName, "INSTANCE") {
			bad("process_name", "%q must contain ${INSTANCE} with instances = %d: each instance needs its own name (example: \"${NAME}_${INSTANCE}\")", p.ProcessName, p.Instances)
		}
		for _, kv := range []struct{ key, v string }{{"stdout_log", p.StdoutLog}, {"stderr_log", p.StderrLog}} {
			if kv.v != "" && kv.v != "none" && !logfile.IsConsole(kv.v) && !mentions(kv.v, "INSTANCE") {
				bad(kv.key, "%q must contain ${INSTANCE} with instances = %d: each instance writes its own file (example: \"/var/log/%s-${INSTANCE}.log\"), or leave it out for <log.dir>/PROCESS.out.log", kv.v, p.Instances, p.Name)
			}
		}
	}
	for i, u := range p.Serves {
		if strings.TrimSpace(u) == "" {
			bad(fmt.Sprintf("serves[%d]", i), "is empty: write the upstream address, as in [proxy] (\"unix:/run/app.sock\"), or serves = [] for none")
		} else if slices.Contains(p.Serves[:i], u) {
			bad(fmt.Sprintf("serves[%d]", i), "%q is listed twice", u)
		}
	}
	switch p.Deploy {
	case "", DeployBlueGreen, DeployRestart, DeployRolling, DeployNone:
	default:
		bad("deploy", "%q is not one of \"blue_green\", \"restart\", \"rolling\", \"none\"", p.Deploy)
	}
	procs, perrs := p.processes(prefix)
	errs = append(errs, perrs...)
	seen := map[string]bool{}
	for _, e := range errs {
		seen[e.Error()] = true
	}
	for _, c := range procs {
		for _, e := range c.Validate(prefix) {
			if !seen[e.Error()] {
				seen[e.Error()] = true
				errs = append(errs, e)
			}
		}
	}
	return errs
}

// Validate checks one process of a program on its own: what depends on
// its instance (its name, and its program's settings with ${INSTANCE}
// expanded). ProgramConfig.Validate calls it for each of its processes;
// prefix is the program's table ("program.web").
func (c *ProcessConfig) Validate(prefix string) []error {
	var errs []error
	if !validProcessName(c.Name) {
		errs = append(errs, &FieldError{Key: prefix + ".process_name",
			Msg: fmt.Sprintf("gives the name %q for instance %d; a process name may only use letters, digits, '-', '_' and '.'", c.Name, c.Instance)})
	}
	return append(errs, c.Program.validateProcess(prefix)...)
}

// validateProcess checks p, the settings of one process (ProcessConfig.Program).
func (p *ProgramConfig) validateProcess(prefix string) []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &FieldError{Key: prefix + "." + key, Msg: fmt.Sprintf(format, a...)})
	}
	// machine is bad for what depends on this machine (FieldError.Machine).
	machine := func(key, format string, a ...any) {
		errs = append(errs, &FieldError{Key: prefix + "." + key, Msg: fmt.Sprintf(format, a...), Machine: true})
	}
	if len(p.Command) == 0 {
		bad("command", "is required (example: command = \"gunicorn -w 3 app.wsgi\")")
	} else if _, err := p.expandedCommand(); err != nil {
		bad("command", "%v", err)
	} else if err := p.checkExecutable(); err != nil {
		machine("command", "%v", err)
	}
	if p.Directory != "" {
		if st, err := os.Stat(p.Directory); err != nil {
			machine("directory", "%q: %v", p.Directory, UnwrapPathErr(err))
		} else if !st.IsDir() {
			machine("directory", "%q is not a directory", p.Directory)
		}
	}
	for k := range p.Environment {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			bad("environment", "%q is not a valid variable name", k)
		}
	}
	if _, err := p.Env(); err != nil {
		bad("environment", "%v", err)
	}
	for _, n := range p.InheritEnvironment.Names {
		if n == "" || n == "*" || strings.ContainsAny(strings.TrimSuffix(n, "*"), "=*\x00") {
			bad("inherit_environment", "%q is not a variable name or a prefix ending in * (write inherit_environment = true for every variable)", n)
		}
	}
	if p.User != "" {
		if _, err := LookupUser(p.User); err != nil {
			machine("user", "%v", err)
		} else if os.Geteuid() != 0 {
			if u, _ := user.Current(); u == nil || (u.Username != p.User && u.Uid != p.User) {
				machine("user", "running as %q requires hostctl to run as root", p.User)
			}
		}
	}
	if p.Group != "" {
		if _, err := LookupGroup(p.Group); err != nil {
			machine("group", "%v", err)
		} else if p.User == "" {
			bad("group", "%q without user would run the program as hostctl's user (root) with only its group changed; set user too (example: user = \"www-data\"; write user = \"root\" if root is meant)", p.Group)
		}
	}
	if p.Umask != "" {
		if v, err := strconv.ParseUint(p.Umask, 8, 32); err != nil || v > 0o777 {
			bad("umask", "%q is not an octal umask (example: \"022\")", p.Umask)
		}
	}
	switch p.Autorestart {
	case RestartAlways, RestartOnFailure, RestartNever:
	default:
		bad("autorestart", "%q is not one of \"always\", \"on-failure\", \"never\"", p.Autorestart)
	}
	for _, c := range p.ExitCodes {
		if c < 0 || c > 255 {
			bad("exit_codes", "%d is not an exit code (0-255)", c)
		}
	}
	if p.StartSecs < 0 {
		bad("start_secs", "must not be negative")
	}
	if p.StartRetries < 0 {
		bad("start_retries", "must not be negative")
	}
	if p.Backoff.Initial <= 0 {
		bad("backoff.initial", "must be positive (example: \"1s\")")
	}
	if p.Backoff.Max < p.Backoff.Initial {
		bad("backoff.max", "%s is less than backoff.initial (%s)", p.Backoff.Max, p.Backoff.Initial)
	}
	if p.Backoff.ResetAfter < 0 {
		bad("backoff.reset_after", "must not be negative")
	}
	if p.FatalRetry <= 0 && p.FatalRetry != RetryNever {
		bad("fatal_retry", "must be positive or \"never\" (example: \"5m\")")
	}
	if _, err := ParseSignal(p.StopSignal); err != nil {
		bad("stop_signal", "%v", err)
	}
	if p.ReloadSignal != "" {
		if _, err := ParseSignal(p.ReloadSignal); err != nil {
			bad("reload_signal", "%v", err)
		}
	}
	if p.StopTimeout <= 0 {
		bad("stop_timeout", "must be positive (example: \"10s\")")
	}
	if p.DrainTimeout < 0 {
		bad("drain_timeout", "must be 0 (no drain) or positive (example: \"10s\")")
	}
	seen := map[string]bool{}
	for _, d := range p.DependsOn {
		if d == p.Name {
			bad("depends_on", "a program cannot depend on itself")
		}
		if seen[d] {
			bad("depends_on", "%q is listed twice", d)
		}
		seen[d] = true
	}
	if r := p.Ready; r != nil {
		p.validateTarget(bad, machine, "ready", r.TCP, r.HTTP, r.Socket, r.Exec)
		if r.Interval <= 0 {
			bad("ready.interval", "must be positive")
		}
		if r.Timeout <= 0 {
			bad("ready.timeout", "must be positive")
		}
		if r.Deadline <= 0 {
			bad("ready.deadline", "must be positive")
		}
	}
	if h := p.Health; h != nil {
		p.validateTarget(bad, machine, "health", h.TCP, h.HTTP, h.Socket, h.Exec)
		if h.Interval <= 0 {
			bad("health.interval", "must be positive (example: \"10s\")")
		}
		if h.Timeout <= 0 {
			bad("health.timeout", "must be positive (example: \"5s\")")
		}
		if h.Failures < 1 {
			bad("health.failures", "must be at least 1 (checks that fail in a row before a restart)")
		}
		if h.Grace < 0 {
			bad("health.grace", "must not be negative")
		}
	}
	switch {
	case p.OOMScoreAdj < -1000 || p.OOMScoreAdj > 1000:
		bad("oom_score_adj", "%d is outside -1000..1000 (higher: killed first when memory runs out; example: 500 for a cache)", p.OOMScoreAdj)
	case p.OOMScoreAdj < 0 && os.Geteuid() != 0:
		bad("oom_score_adj", "%d: a negative value requires hostctl to run as root", p.OOMScoreAdj)
	}
	switch {
	case p.MemoryLimit < 0:
		bad("memory_limit", "must not be negative (example: \"512MB\"; leave it out for no limit)")
	case p.MemoryLimit > 0 && p.MemoryLimit < minMemoryLimit:
		bad("memory_limit", "%d bytes is too little for any program; give a unit (example: \"512MB\")", p.MemoryLimit)
	}
	for _, kv := range []struct{ key, v string }{{"stdout_log", p.StdoutLog}, {"stderr_log", p.StderrLog}} {
		switch {
		case kv.v == "" || kv.v == "none" || logfile.IsConsole(kv.v):
		case !filepath.IsAbs(kv.v):
			bad(kv.key, "%q must be an absolute path, \"-\" (hostctl's own output) or \"none\"", kv.v)
		default:
			// Whether a dir is safe is this machine's business: the same
			// file may name a safe dir on the machine it is for.
			if err := logfile.CheckDir(filepath.Dir(kv.v)); err != nil {
				machine(kv.key, "the dir of %q is not safe: %s", kv.v, logfile.DirProblem(err))
			}
		}
	}
	if p.MaxSize != nil && *p.MaxSize <= 0 {
		bad("max_size", "must be positive (example: \"50MB\")")
	}
	if p.MaxBackups != nil && *p.MaxBackups < 0 {
		bad("max_backups", "must not be negative")
	}
	if p.MaxAge != nil && *p.MaxAge < 0 {
		bad("max_age", "must not be negative")
	}
	return errs
}

// validateTarget checks the target of a ready probe or health check
// (table is "ready" or "health"): exactly one of tcp, http, exec, each
// well formed, and socket only with http.
func (p *ProgramConfig) validateTarget(bad, machine func(key, format string, a ...any), table, tcp, http, socket string, exec Command) {
	n := 0
	if tcp != "" {
		n++
		if _, port, err := splitHostPort(tcp); err != nil || port == "" {
			bad(table+".tcp", "%q is not host:port (example: \"127.0.0.1:8000\")", tcp)
		}
	}
	if http != "" {
		n++
		if !strings.HasPrefix(http, "http://") && !strings.HasPrefix(http, "https://") {
			bad(table+".http", "%q is not an http:// or https:// URL", http)
		}
	}
	if len(exec) > 0 {
		n++
		if _, err := lookPath(exec[0], p.Directory); err != nil {
			machine(table+".exec", "%v", err)
		}
	}
	if n != 1 {
		bad(table, "set exactly one of tcp, http or exec (found %d)", n)
	}
	switch {
	case socket == "":
	case http == "":
		bad(table+".socket", "applies only to an http check (it is the unix socket the request goes to)")
	case !filepath.IsAbs(socket):
		bad(table+".socket", "%q must be an absolute path (example: \"/run/hello/gunicorn.sock\")", socket)
	case len(socket) > maxSocketPath:
		bad(table+".socket", "%q is %d bytes long; a unix socket path has at most %d", socket, len(socket), maxSocketPath)
	}
}

// maxSocketPath is the longest path a unix socket address holds on Linux
// (sun_path is 108 bytes, one for the terminating NUL).
const maxSocketPath = 107

// ValidatePrograms checks what only the whole set can tell: unknown
// dependencies, dependency cycles, names given twice (program and process
// names) and log files written by two processes. prefix is the table of
// programs ("program"); the keys of the messages about names assume it is
// "program".
func ValidatePrograms(prefix string, progs map[string]*ProgramConfig) []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(progs)) {
		for _, d := range progs[name].DependsOn {
			if _, ok := progs[d]; !ok {
				errs = append(errs, &FieldError{Key: prefix + "." + name + ".depends_on",
					Msg: fmt.Sprintf("%q is not a program in this file (programs: %s)", d, strings.Join(slices.Sorted(maps.Keys(progs)), ", "))})
			}
		}
	}
	for _, cyc := range findCycles(progs) {
		errs = append(errs, &FieldError{Key: prefix + "." + cyc[0] + ".depends_on",
			Msg: "dependency cycle: " + strings.Join(cyc, " -> ") + " (remove one of these depends_on entries)"})
	}
	return append(errs, validateNames(progs)...)
}

// findCycles returns each dependency cycle once, as a path that starts and
// ends with the same program name.
func findCycles(progs map[string]*ProgramConfig) [][]string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var cycles [][]string
	var visit func(n string)
	visit = func(n string) {
		color[n] = grey
		stack = append(stack, n)
		for _, d := range progs[n].DependsOn {
			if _, ok := progs[d]; !ok {
				continue
			}
			switch color[d] {
			case white:
				visit(d)
			case grey:
				i := len(stack) - 1
				for stack[i] != d {
					i--
				}
				cyc := append(append([]string{}, stack[i:]...), d)
				cycles = append(cycles, cyc)
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
	}
	for _, n := range slices.Sorted(maps.Keys(progs)) {
		if color[n] == white {
			visit(n)
		}
	}
	return cycles
}

func validName(s string) bool {
	if s == "" || s == "all" {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// validProcessName is validName, or validName followed by "@SLOT": the
// processes of a blue/green program (deploy = "blue_green") are named by
// their slot ("gunicorn@a"), so that the new release's run beside the
// live ones under names of their own.
func validProcessName(s string) bool {
	name, slot, ok := strings.Cut(s, "@")
	if !ok {
		return validName(s)
	}
	return validName(name) && (slot == "a" || slot == "b")
}

// Deploy modes (ProgramConfig.Deploy).
const (
	DeployBlueGreen = "blue_green"
	DeployRestart   = "restart"
	DeployRolling   = "rolling"
	DeployNone      = "none"
)

// ExpandVars expands ${NAME} from lookup; $$ is a literal $ and a $ not
// followed by { or $ stays as it is. It returns an error naming every
// unknown variable.
func ExpandVars(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	var missing []string
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("%q has an unclosed ${", s)
			}
			name := s[i+2 : i+2+end]
			v, ok := lookup(name)
			if !ok {
				missing = append(missing, name)
			}
			b.WriteString(v)
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("unknown variable ${%s} (set it in hostctl's environment, or write $$ for a literal $)", strings.Join(missing, "}, ${"))
	}
	return b.String(), nil
}

// startEnviron is hostctl's environment as it was when hostctl started:
// programs inherit from that, not from what hostctl set later for itself
// (the proxy sets XDG_DATA_HOME for Caddy).
var startEnviron = os.Environ()

// serviceManagerVars are systemd's messages to hostctl itself; a program
// that saw them would talk to systemd in hostctl's name. Even
// inherit_environment = true does not pass them.
var serviceManagerVars = map[string]bool{
	"NOTIFY_SOCKET": true, "WATCHDOG_USEC": true, "WATCHDOG_PID": true,
	"LISTEN_FDS": true, "LISTEN_PID": true, "LISTEN_FDNAMES": true, "HOSTCTL_NOTIFY_SOCKET": true,
}

// DefaultPath is a program's PATH when hostctl has none (systemd's).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultEnv reports whether every program gets the variable name from
// hostctl's environment, without inherit_environment: PATH, the locale
// (LANG, LANGUAGE, LC_*), TZ and TMPDIR. They say how to run, never hold
// secrets, and programs misbehave without them (Python's encoding, the
// time zone of log lines).
func DefaultEnv(name string) bool {
	switch name {
	case "PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR":
		return true
	}
	return strings.HasPrefix(name, "LC_")
}

// Env returns the program's environment, each later step overriding the
// earlier ones:
//   - from hostctl's environment as it started: the default set
//     (DefaultEnv; PATH is DefaultPath if hostctl has none) and what
//     InheritEnvironment names, never systemd's variables meant for hostctl;
//   - HOME, USER and LOGNAME of User when set, else hostctl's own;
//   - Environment, with ${VAR} expanded from hostctl's environment.
func (p *ProgramConfig) Env() ([]string, error) {
	env := map[string]string{"PATH": DefaultPath}
	for _, kv := range startEnviron {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || serviceManagerVars[k] {
			continue
		}
		if DefaultEnv(k) || p.InheritEnvironment.Inherits(k) || p.User == "" && (k == "HOME" || k == "USER" || k == "LOGNAME") {
			env[k] = v
		}
	}
	if p.User != "" {
		if u, err := LookupUser(p.User); err == nil {
			env["HOME"], env["USER"], env["LOGNAME"] = u.HomeDir, u.Username, u.Username
		}
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(p.Environment)) {
		v, err := ExpandVars(p.Environment[k], os.LookupEnv)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
			continue
		}
		env[k] = v
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out, nil
}

// expandedCommand expands ${VAR} in the command from hostctl's environment
// and the program's Environment.
func (p *ProgramConfig) expandedCommand() ([]string, error) {
	lookup := func(k string) (string, bool) {
		if v, ok := p.Environment[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	out := make([]string, len(p.Command))
	for i, a := range p.Command {
		v, err := ExpandVars(a, lookup)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (p *ProgramConfig) checkExecutable() error {
	argv, err := p.expandedCommand()
	if err != nil {
		return err
	}
	_, err = lookPath(argv[0], p.Directory)
	return err
}

// lookPath finds an executable like exec.LookPath, resolving relative paths
// against dir; a *CommandError when there is none.
func lookPath(file, dir string) (string, error) {
	if strings.Contains(file, "/") {
		path := file
		if !filepath.IsAbs(path) && dir != "" {
			path = filepath.Join(dir, path)
		}
		st, err := os.Stat(path)
		switch {
		case err != nil:
			return "", &CommandError{Command: file, Problem: CommandNotFound, msg: fmt.Sprintf("%q: %v", file, UnwrapPathErr(err))}
		case st.IsDir():
			return "", &CommandError{Command: file, Problem: CommandIsDir, msg: fmt.Sprintf("%q is not executable (chmod +x it?)", file)}
		case st.Mode()&0o111 == 0:
			return "", &CommandError{Command: file, Problem: CommandNotExecutable, msg: fmt.Sprintf("%q is not executable (chmod +x it?)", file)}
		}
		return path, nil
	}
	path, err := exec.LookPath(file)
	if err != nil {
		return "", &CommandError{Command: file, Problem: CommandNotFound,
			msg: fmt.Sprintf("%q not found in PATH (%s); install it or give a full path", file, os.Getenv("PATH"))}
	}
	return path, nil
}

// UnwrapPathErr returns the cause inside a *fs.PathError ("no such file or
// directory"), for messages that name the path themselves; any other
// error is returned as it is.
func UnwrapPathErr(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

func splitHostPort(s string) (host, port string, err error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", fmt.Errorf("missing port")
	}
	port = s[i+1:]
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", "", fmt.Errorf("bad port")
	}
	return s[:i], port, nil
}

// LookupUser finds a user by name or numeric id (the user key). Its error
// says what to do about an unknown user.
func LookupUser(name string) (*user.User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			if u, err2 := user.LookupId(name); err2 == nil {
				return u, nil
			}
		}
		return nil, fmt.Errorf("unknown user %q (create it, e.g. useradd --system %s, or fix the name)", name, name)
	}
	return u, nil
}

// LookupGroup finds a group by name or numeric id. Its error says what to
// do about an unknown group.
func LookupGroup(name string) (*user.Group, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			if g, err2 := user.LookupGroupId(name); err2 == nil {
				return g, nil
			}
		}
		return nil, fmt.Errorf("unknown group %q (create it with groupadd, or fix the name)", name)
	}
	return g, nil
}

var signalNames = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "KILL": syscall.SIGKILL,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "TERM": syscall.SIGTERM, "ALRM": syscall.SIGALRM,
	"CONT": syscall.SIGCONT, "STOP": syscall.SIGSTOP, "TSTP": syscall.SIGTSTP, "WINCH": syscall.SIGWINCH,
	"TTIN": syscall.SIGTTIN, "TTOU": syscall.SIGTTOU, "ABRT": syscall.SIGABRT, "PWR": syscall.SIGPWR,
}

// ParseSignal parses "TERM", "SIGTERM", "term" or "15".
func ParseSignal(s string) (syscall.Signal, error) {
	u := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "SIG")
	if sig, ok := signalNames[u]; ok {
		return sig, nil
	}
	if n, err := strconv.Atoi(u); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	return 0, fmt.Errorf("%q is not a signal name (examples: \"TERM\", \"HUP\", \"INT\", \"QUIT\", \"KILL\")", s)
}

// SignalName returns "TERM" for SIGTERM.
func SignalName(sig syscall.Signal) string {
	for n, s := range signalNames {
		if s == sig {
			return n
		}
	}
	return strconv.Itoa(int(sig))
}
