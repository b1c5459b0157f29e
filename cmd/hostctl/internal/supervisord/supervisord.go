// Package supervisord is hostctl's supervisord compatibility: it serves
// supervisord's XML-RPC API (POST /RPC2) and its log tails (GET /logtail,
// /mainlogtail) over the supervisor, as supervisord 4.2 serves them, so
// that supervisorctl, Python's xmlrpc.client, Datadog's supervisord check
// and other clients drive hostctl as they drive supervisord. Method names,
// argument forms, answers, state codes, description texts and Fault codes
// follow supervisor/rpcinterface.py; where hostctl differs, the README's
// "supervisorctl and supervisord's XML-RPC API" says how. The admin API
// (package control) mounts its handlers in its route table and decides
// who may call them.
//
// Names: a hostctl process is the supervisord process GROUP:NAME, where
// GROUP is its program group (`celery` is `celery:celery`, written
// `celery`). supervisor.Match reads them with supervisord's rules
// (supervisor.SupervisordNames).
package supervisord

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/supervisord/xmlrpc"
	"github.com/hostctl/hostctl/supervisor"
)

// Supervisor is what the API needs of the supervisor;
// *supervisor.Supervisor implements it. Names are read by the methods
// with supervisor.HostctlNames: this package passes them process names
// only, which every rule reads alike.
type Supervisor interface {
	Status(names ...string) ([]supervisor.Status, error)
	Log(process, stream string) (supervisor.LogStream, error)
	StartProcesses(ctx context.Context, names ...string) error
	StopProcesses(ctx context.Context, names ...string) error
	SignalProcesses(ctx context.Context, sig syscall.Signal, names ...string) error
	WaitFor(ctx context.Context, process string, cond func(supervisor.Status) bool) (supervisor.Status, error)
}

// Options configure a Server. Supervisor is required; every other field
// is optional.
type Options struct {
	// Supervisor runs the processes.
	Supervisor Supervisor
	// Reload re-reads the config file and applies it (supervisorctl
	// update). nil: update answers FAILED.
	Reload func(ctx context.Context) error
	// Plan reads the config file and returns what a reload would change,
	// without applying it, with the processes the file configures.
	// reloadConfig (supervisorctl reread) answers from it; nil: it answers
	// CANT_REREAD.
	Plan func() (supervisor.Diff, []*supervisor.ProcessConfig, error)
	// ProcessConfigs returns the running processes' configs
	// (getAllConfigInfo, supervisorctl avail). nil: avail lists nothing.
	ProcessConfigs func() []*supervisor.ProcessConfig
	// MainLog is hostctl's own log file (readLog, /mainlogtail,
	// supervisorctl maintail); nil when it writes none ([log] file = false).
	MainLog MainLog
	// Version is getSupervisorVersion's answer.
	Version string
	// CheckWrite says whether the caller of a request (its context) may
	// change things: a method that starts, stops or signals processes,
	// reloadConfig, addProcessGroup, removeProcessGroup, or a multicall
	// holding one (what names the method). nil when it may, else an
	// error that says why not, answered as a FAILED fault. nil: every
	// caller may.
	CheckWrite func(ctx context.Context, what string) error
	// Logger gets the calls that fail other than with a fault. Default:
	// no logging.
	Logger *zap.Logger
}

// Server serves supervisord's API; its handlers are RPC, LogTail and
// MainLogTail.
type Server struct {
	opts Options
	log  *zap.Logger

	rpcMu  sync.Mutex  // guards reread; taken before no other lock
	reread *rereadPlan // what reloadConfig last found

	replyCap int64 // maxReply; a test makes it smaller
}

// New returns a Server.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return &Server{opts: opts, log: opts.Logger, replyCap: maxReply}
}

// checkWrite is Options.CheckWrite.
func (s *Server) checkWrite(ctx context.Context, what string) error {
	if s.opts.CheckWrite == nil {
		return nil
	}
	return s.opts.CheckWrite(ctx, what)
}

// MainLog is hostctl's own log file as the API reads it; *logfile.Stream
// implements it.
type MainLog interface {
	Path() string
	Follow(ctx context.Context, lastLines int, fn func(line []byte) error) error
}

// supervisord's fault codes (supervisor/xmlrpc.py, class Faults).
const (
	faultUnknownMethod       = 1
	faultIncorrectParameters = 2
	faultBadArguments        = 3
	faultSignatureUnsupport  = 4
	faultShutdownState       = 6
	faultBadName             = 10
	faultBadSignal           = 11
	faultNoFile              = 20
	faultNotExecutable       = 21
	faultFailed              = 30
	faultAbnormalTermination = 40
	faultSpawnError          = 50
	faultAlreadyStarted      = 60
	faultNotRunning          = 70
	faultSuccess             = 80
	faultAlreadyAdded        = 90
	faultStillRunning        = 91
	faultCantReread          = 92
)

var faultNames = map[int]string{
	faultUnknownMethod: "UNKNOWN_METHOD", faultIncorrectParameters: "INCORRECT_PARAMETERS",
	faultBadArguments: "BAD_ARGUMENTS", faultSignatureUnsupport: "SIGNATURE_UNSUPPORTED",
	faultShutdownState: "SHUTDOWN_STATE", faultBadName: "BAD_NAME", faultBadSignal: "BAD_SIGNAL",
	faultNoFile: "NO_FILE", faultNotExecutable: "NOT_EXECUTABLE", faultFailed: "FAILED",
	faultAbnormalTermination: "ABNORMAL_TERMINATION", faultSpawnError: "SPAWN_ERROR",
	faultAlreadyStarted: "ALREADY_STARTED", faultNotRunning: "NOT_RUNNING", faultSuccess: "SUCCESS",
	faultAlreadyAdded: "ALREADY_ADDED", faultStillRunning: "STILL_RUNNING", faultCantReread: "CANT_REREAD",
}

// fault is supervisord's RPCError: the fault string is the code's name,
// then ": extra" when there is one.
func fault(code int, extra string) *xmlrpc.Fault {
	s := faultNames[code]
	if extra != "" {
		s += ": " + extra
	}
	return &xmlrpc.Fault{Code: code, String: s}
}

// supervisord's process state codes (supervisor/states.py).
var stateCodes = [...]int{
	supervisor.Stopped:  0,
	supervisor.Starting: 10,
	supervisor.Running:  20,
	supervisor.Backoff:  30,
	supervisor.Stopping: 40,
	supervisor.Exited:   100,
	supervisor.Fatal:    200,
}

// supervisord's state sets.
func runningState(s supervisor.State) bool {
	return s == supervisor.Running || s == supervisor.Backoff || s == supervisor.Starting
}

func signallableState(s supervisor.State) bool {
	return s == supervisor.Running || s == supervisor.Starting || s == supervisor.Stopping
}

// apiVersion is supervisord's RPC API version; supervisorctl refuses to
// work with a server that answers anything else to getVersion.
const apiVersion = "3.0"

// --- names ---

// proc is one supervisord process: a process's status and its names.
type proc struct {
	st    supervisor.Status
	names supervisor.ProcessNames
}

// group is its supervisord group: its program group.
func (p proc) group() string { return p.names.Group }

// namespec is supervisord's display name: NAME when the group has the
// same name, else GROUP:NAME.
func (p proc) namespec() string { return p.names.Namespec() }

// procs returns every process, sorted by group then name (supervisord's
// lexical order).
func (s *Server) procs() ([]proc, error) {
	sts, err := s.opts.Supervisor.Status()
	if err != nil {
		return nil, err
	}
	out := make([]proc, len(sts))
	for i, st := range sts {
		out[i] = proc{st: st, names: st.Names()}
	}
	slices.SortFunc(out, func(a, b proc) int {
		if c := strings.Compare(a.group(), b.group()); c != 0 {
			return c
		}
		return strings.Compare(a.st.Name, b.st.Name)
	})
	return out, nil
}

// match returns the processes spec stands for under rules (see
// supervisor.Match), and whether it names a whole group; BAD_NAME when
// none.
func (s *Server) match(rules supervisor.NameRules, spec string) ([]proc, bool, error) {
	all, err := s.procs()
	if err != nil {
		return nil, false, fault(faultFailed, err.Error())
	}
	names := make([]supervisor.ProcessNames, len(all))
	for i, p := range all {
		names[i] = p.names
	}
	idx, whole := supervisor.Match(rules, spec, names)
	if len(idx) == 0 {
		return nil, false, fault(faultBadName, spec)
	}
	out := make([]proc, len(idx))
	for i, j := range idx {
		out[i] = all[j]
	}
	return out, whole, nil
}

// find resolves spec as supervisord's _getGroupAndProcess does: the
// processes of the group it names whole, or the one process it names.
// Unknown names are BAD_NAME.
func (s *Server) find(spec string) (group []proc, one *proc, err error) {
	procs, whole, err := s.match(supervisor.SupervisordNames, spec)
	switch {
	case err != nil:
		return nil, nil, err
	case whole:
		return procs, nil, nil
	}
	return procs, &procs[0], nil
}

// findOne is find for methods that need one process.
func (s *Server) findOne(spec string) (proc, error) {
	_, p, err := s.find(spec)
	if err != nil {
		return proc{}, err
	}
	if p == nil {
		return proc{}, fault(faultBadName, spec)
	}
	return *p, nil
}

// --- process info ---

// capped is supervisord's capped_int: clamped into XML-RPC's 32 bits.
func capped(n int64) int {
	return int(max(min(n, 1<<31-1), -1<<31))
}

// processInfo is getProcessInfo's struct, field for field and in
// supervisord's order.
func processInfo(p proc, now time.Time) xmlrpc.Struct {
	st := p.st
	var start, stop int64
	if st.PID > 0 && !st.StartedAt.IsZero() {
		start = st.StartedAt.Unix()
	}
	if st.StaysDown() && st.Generation > 0 {
		stop = st.StateSince.Unix()
	}
	spawnErr := spawnError(st)
	return xmlrpc.Struct{
		{Name: "name", Value: st.Name},
		{Name: "group", Value: p.group()},
		{Name: "start", Value: capped(start)},
		{Name: "stop", Value: capped(stop)},
		{Name: "now", Value: capped(now.Unix())},
		{Name: "state", Value: stateCodes[st.State]},
		{Name: "statename", Value: st.State.String()},
		{Name: "spawnerr", Value: spawnErr},
		{Name: "exitstatus", Value: exitStatus(st)},
		{Name: "logfile", Value: st.StdoutLog},
		{Name: "stdout_logfile", Value: st.StdoutLog},
		{Name: "stderr_logfile", Value: st.StderrLog},
		{Name: "pid", Value: st.PID},
		{Name: "description", Value: description(st, spawnErr, now)},
	}
}

// spawnError is supervisord's spawnerr: why the last start failed, or why
// the last process exited unexpectedly from RUNNING, "" when neither, in
// supervisord's words (supervisor/process.py) where supervisord has a case
// like hostctl's, else hostctl's own. Like supervisord's, it is cleared
// when a new start begins (STARTING) and kept while the program is down.
func spawnError(st supervisor.Status) string {
	f := st.Failure
	switch f.Kind {
	case supervisor.FailExitedEarly, supervisor.FailNotReady:
		// supervisord's finish() for a process that did not last
		// startsecs; a ready probe that never passed ends the same way
		// (the attempt is killed before RUNNING).
		return "Exited too quickly (process log may have details)"
	case supervisor.FailSpawn:
		if ce, ok := errors.AsType[*supervisor.CommandError](f.Err); ok {
			return commandError(ce)
		}
	case supervisor.FailExited:
		if f.Expected {
			return ""
		}
		return fmt.Sprintf("Bad exit code %d", exitCode(st.LastExit))
	}
	if f.Err != nil {
		// A spawn error supervisord has no words for (credentials, exec),
		// a dependency, or health or memory restarts (hostctl's own).
		return f.Err.Error()
	}
	return ""
}

// exitCode is supervisord's decode_wait_status: the exit code, -1 after
// a signal.
func exitCode(es *supervisor.ExitStatus) int {
	switch {
	case es == nil:
		return 0
	case es.Signal != "":
		return -1
	}
	return es.Code
}

// exitStatus is supervisord's exitstatus: how the last process ended, but
// 0 from the start of a new try (STARTING) until a process of it ends, and
// 0 when that process exited too quickly (supervisord keeps no status for
// a failed start).
func exitStatus(st supervisor.Status) int {
	switch st.State {
	case supervisor.Starting, supervisor.Running, supervisor.Stopping:
		return 0
	}
	switch st.Failure.Kind {
	case supervisor.FailExitedEarly, supervisor.FailNotReady, supervisor.FailSpawn, supervisor.FailDependency:
		return 0
	}
	return exitCode(st.LastExit)
}

// commandError is supervisord's check_execv_args (supervisor/options.py):
// what it says of a command that cannot run.
func commandError(ce *supervisor.CommandError) string {
	switch ce.Problem {
	case supervisor.CommandIsDir:
		return fmt.Sprintf("command at %s is a directory", pyRepr(ce.Command))
	case supervisor.CommandNotExecutable:
		return fmt.Sprintf("command at %s is not executable", pyRepr(ce.Command))
	}
	return fmt.Sprintf("can't find command %s", pyRepr(ce.Command))
}

// pyRepr is Python 3's repr() of a str: single quotes unless it holds a
// single quote and no double quote, backslash escapes for the quote, the
// backslash and what is not printable.
func pyRepr(s string) string {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x80 || unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// description is supervisord's _interpretProcessInfo.
func description(st supervisor.Status, spawnErr string, now time.Time) string {
	switch st.State {
	case supervisor.Running:
		up := max(now.Unix()-st.StartedAt.Unix(), 0)
		return fmt.Sprintf("pid %d, uptime %s", st.PID, pyTimedelta(up))
	case supervisor.Fatal, supervisor.Backoff:
		if spawnErr == "" {
			return fmt.Sprintf("unknown error (try \"tail %s\")", st.Name)
		}
		return spawnErr
	case supervisor.Stopped, supervisor.Exited:
		if st.Generation == 0 {
			return "Not started"
		}
		return st.StateSince.Local().Format("Jan 02 03:04 PM")
	}
	return ""
}

// pyTimedelta formats seconds as Python's str(timedelta): "0:01:02",
// "2 days, 3:04:05", "1 day, 0:00:00".
func pyTimedelta(secs int64) string {
	days, rest := secs/86400, secs%86400
	hms := fmt.Sprintf("%d:%02d:%02d", rest/3600, rest/60%60, rest%60)
	switch days {
	case 0:
		return hms
	case 1:
		return "1 day, " + hms
	}
	return fmt.Sprintf("%d days, %s", days, hms)
}

// --- the method table ---

// rpcMethod is one published method. sig is [return type, param types...]
// as system.methodSignature answers; the last optional params may be left
// out (Python default arguments).
type rpcMethod struct {
	sig      []string
	optional int
	help     string
	call     func(s *Server, ctx context.Context, args []any) (any, error)
	// write: it changes something (the admin token only), where the
	// others only read (either token).
	write bool
}

// rpcMethods is filled in init (the table refers to methods that use it).
// The write methods are those that start, stop or signal processes and
// reloadConfig, addProcessGroup and removeProcessGroup: reloadConfig
// changes nothing running, but it replaces the plan that supervisorctl
// update's addProcessGroup and removeProcessGroup then apply.
var rpcMethods map[string]rpcMethod

// Method describes one published method: its name, its signature as
// system.methodSignature answers ([return type, param types...]), how
// many of its last parameters may be left out, and whether it changes
// something (then Options.CheckWrite is asked first).
type Method struct {
	Name      string
	Signature []string
	Optional  int
	Write     bool
}

// Methods returns every published method, sorted by name.
func Methods() []Method {
	out := make([]Method, 0, len(rpcMethods))
	for _, name := range slices.Sorted(maps.Keys(rpcMethods)) {
		m := rpcMethods[name]
		out = append(out, Method{Name: name, Signature: m.sig, Optional: m.optional, Write: m.write})
	}
	return out
}

// rpcUnsupported are supervisord methods hostctl does not provide, with
// the reason their FAILED fault gives.
var rpcUnsupported = map[string]string{
	"supervisor.shutdown":            "hostctl is stopped by its service manager (systemctl stop hostctl)",
	"supervisor.restart":             "hostctl is restarted by its service manager (systemctl restart hostctl); `hostctl reload` re-reads the config",
	"supervisor.clearLog":            "hostctl's logs rotate by size ([log] max_size) instead",
	"supervisor.clearProcessLogs":    "hostctl's logs rotate by size ([log] max_size) instead",
	"supervisor.clearProcessLog":     "hostctl's logs rotate by size ([log] max_size) instead",
	"supervisor.clearAllProcessLogs": "hostctl's logs rotate by size ([log] max_size) instead",
	"supervisor.sendProcessStdin":    "hostctl gives programs /dev/null as stdin",
	"supervisor.sendRemoteCommEvent": "hostctl has no event listeners (see [alerts])",
}

func init() {
	str, integer, boolean, array, strct := "string", "int", "boolean", "array", "struct"
	m := map[string]rpcMethod{
		"supervisor.getAPIVersion": {sig: []string{str}, help: "Return the version of the RPC API used by supervisord",
			call: func(*Server, context.Context, []any) (any, error) { return apiVersion, nil }},
		"supervisor.getSupervisorVersion": {sig: []string{str}, help: "Return the version of hostctl (in place of supervisord's)",
			call: func(s *Server, _ context.Context, _ []any) (any, error) { return s.opts.Version, nil }},
		"supervisor.getIdentification": {sig: []string{str}, help: "Return identifying string of supervisord",
			call: func(*Server, context.Context, []any) (any, error) { return "hostctl", nil }},
		"supervisor.getState": {sig: []string{strct}, help: "Return current state of supervisord as a struct",
			call: func(*Server, context.Context, []any) (any, error) {
				return xmlrpc.Struct{{Name: "statecode", Value: 1}, {Name: "statename", Value: "RUNNING"}}, nil
			}},
		"supervisor.getPID": {sig: []string{integer}, help: "Return the PID of supervisord (hostctl)",
			call: func(*Server, context.Context, []any) (any, error) { return os.Getpid(), nil }},
		"supervisor.readLog": {sig: []string{str, integer, integer}, help: "Read length bytes from the main log starting at offset",
			call: (*Server).rpcReadLog},
		"supervisor.getAllProcessInfo": {sig: []string{array}, help: "Get info about all processes",
			call: (*Server).rpcGetAllProcessInfo},
		"supervisor.getProcessInfo": {sig: []string{strct, str}, help: "Get info about a process named name",
			call: (*Server).rpcGetProcessInfo},
		"supervisor.getAllConfigInfo": {sig: []string{array}, help: "Get info about all available process configurations",
			call: (*Server).rpcGetAllConfigInfo},
		"supervisor.startProcess": {write: true, sig: []string{boolean, str, boolean}, optional: 1, help: "Start a process",
			call: (*Server).rpcStartProcess},
		"supervisor.startProcessGroup": {write: true, sig: []string{array, str, boolean}, optional: 1, help: "Start all processes in the group named 'name'",
			call: (*Server).rpcStartProcessGroup},
		"supervisor.startAllProcesses": {write: true, sig: []string{array, boolean}, optional: 1, help: "Start all processes listed in the configuration file",
			call: (*Server).rpcStartAllProcesses},
		"supervisor.stopProcess": {write: true, sig: []string{boolean, str, boolean}, optional: 1, help: "Stop a process named by name",
			call: (*Server).rpcStopProcess},
		"supervisor.stopProcessGroup": {write: true, sig: []string{array, str, boolean}, optional: 1, help: "Stop all processes in the process group named 'name'",
			call: (*Server).rpcStopProcessGroup},
		"supervisor.stopAllProcesses": {write: true, sig: []string{array, boolean}, optional: 1, help: "Stop all processes in the process list",
			call: (*Server).rpcStopAllProcesses},
		"supervisor.signalProcess": {write: true, sig: []string{boolean, str, str}, help: "Send an arbitrary UNIX signal to the process named by name",
			call: (*Server).rpcSignalProcess},
		"supervisor.signalProcessGroup": {write: true, sig: []string{array, str, str}, help: "Send a signal to all processes in the group named 'name'",
			call: (*Server).rpcSignalProcessGroup},
		"supervisor.signalAllProcesses": {write: true, sig: []string{array, str}, help: "Send a signal to all processes in the process list",
			call: (*Server).rpcSignalAllProcesses},
		"supervisor.readProcessStdoutLog": {sig: []string{str, str, integer, integer}, help: "Read length bytes from name's stdout log starting at offset",
			call: func(s *Server, ctx context.Context, a []any) (any, error) {
				return s.rpcReadProcessLog(ctx, a, "stdout")
			}},
		"supervisor.readProcessStderrLog": {sig: []string{str, str, integer, integer}, help: "Read length bytes from name's stderr log starting at offset",
			call: func(s *Server, ctx context.Context, a []any) (any, error) {
				return s.rpcReadProcessLog(ctx, a, "stderr")
			}},
		"supervisor.tailProcessStdoutLog": {sig: []string{array, str, integer, integer}, help: "Return [string bytes, int offset, bool overflow] of name's stdout log",
			call: func(s *Server, ctx context.Context, a []any) (any, error) {
				return s.rpcTailProcessLog(ctx, a, "stdout")
			}},
		"supervisor.tailProcessStderrLog": {sig: []string{array, str, integer, integer}, help: "Return [string bytes, int offset, bool overflow] of name's stderr log",
			call: func(s *Server, ctx context.Context, a []any) (any, error) {
				return s.rpcTailProcessLog(ctx, a, "stderr")
			}},
		"supervisor.reloadConfig": {write: true, sig: []string{array}, help: "Reread the configuration: [[added, changed, removed]] process groups; nothing is applied until addProcessGroup/removeProcessGroup",
			call: (*Server).rpcReloadConfig},
		"supervisor.addProcessGroup": {write: true, sig: []string{boolean, str}, help: "Apply the reread configuration for a process group (added or changed)",
			call: (*Server).rpcAddProcessGroup},
		"supervisor.removeProcessGroup": {write: true, sig: []string{boolean, str}, help: "Remove a stopped process group that the reread configuration no longer has",
			call: (*Server).rpcRemoveProcessGroup},
		"system.listMethods": {sig: []string{array}, help: "Return an array listing the available method names",
			call: func(*Server, context.Context, []any) (any, error) { return slices.Sorted(maps.Keys(rpcMethods)), nil }},
		"system.methodHelp": {sig: []string{str, str}, help: "Return a string showing the method's documentation",
			call: func(_ *Server, _ context.Context, a []any) (any, error) {
				if m, ok := rpcMethods[a[0].(string)]; ok {
					return m.help, nil
				}
				return nil, fault(faultSignatureUnsupport, "")
			}},
		"system.methodSignature": {sig: []string{array, str}, help: "Return an array describing the method signature in the form [rtype, ptype, ptype...]",
			call: func(_ *Server, _ context.Context, a []any) (any, error) {
				if m, ok := rpcMethods[a[0].(string)]; ok {
					return m.sig, nil
				}
				return nil, fault(faultSignatureUnsupport, "")
			}},
		"system.multicall": {sig: []string{array, array}, help: "Process an array of calls ({'methodName': string, 'params': array}) and return an array of results",
			call: (*Server).rpcMulticall},
	}
	// supervisord's aliases, kept for old clients.
	for alias, of := range map[string]string{
		"supervisor.getVersion":     "supervisor.getAPIVersion",
		"supervisor.readMainLog":    "supervisor.readLog",
		"supervisor.readProcessLog": "supervisor.readProcessStdoutLog",
		"supervisor.tailProcessLog": "supervisor.tailProcessStdoutLog",
	} {
		m[alias] = m[of]
	}
	rpcMethods = m
}

// dispatch calls method with args, checking their number and types first
// (INCORRECT_PARAMETERS, as Python's TypeError becomes in supervisord).
func (s *Server) dispatch(ctx context.Context, method string, args []any) (any, error) {
	m, ok := rpcMethods[method]
	if !ok {
		if why, ok := rpcUnsupported[method]; ok {
			return nil, fault(faultFailed, "hostctl does not provide "+method+": "+why)
		}
		return nil, fault(faultUnknownMethod, "")
	}
	if m.write {
		if err := s.checkWrite(ctx, method); err != nil {
			return nil, fault(faultFailed, err.Error())
		}
	}
	params := m.sig[1:]
	if len(args) > len(params) || len(args) < len(params)-m.optional {
		return nil, fault(faultIncorrectParameters, "") // as Python's TypeError in supervisord
	}
	for i, a := range args {
		ok := true
		switch params[i] {
		case "string":
			_, ok = a.(string)
		case "int":
			_, ok = a.(int64)
		case "array":
			_, ok = a.([]any)
		}
		if !ok {
			return nil, fault(faultIncorrectParameters, fmt.Sprintf("argument %d of %s must be %s", i+1, method, params[i]))
		}
	}
	return m.call(s, ctx, args)
}

// truthy is Python's truth value of an XML-RPC argument (the optional
// wait flags).
func truthy(args []any, i int) bool {
	if i >= len(args) {
		return true // supervisord's default: wait=True
	}
	switch v := args[i].(type) {
	case bool:
		return v
	case int64:
		return v != 0
	case float64:
		return v != 0
	case string:
		return v != ""
	case []any:
		return len(v) > 0
	case xmlrpc.Struct:
		return len(v) > 0
	case nil:
		return false
	}
	return true
}

// --- HTTP ---

// maxRPCBody bounds a request body: supervisorctl's largest call is a
// multicall of a few names.
const maxRPCBody = 4 << 20

// RPC serves POST /RPC2. Every answer is HTTP 200 with one methodResponse
// (a value or a Fault), as supervisord's: a request that is not XML-RPC
// gets INCORRECT_PARAMETERS, an unknown method UNKNOWN_METHOD. A body
// that does not say it is XML gets 415, in the admin API's JSON.
func (s *Server) RPC(w http.ResponseWriter, r *http.Request) {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]))
	if ct != "" && ct != "text/xml" && ct != "application/xml" {
		// Also keeps browsers' "simple" cross-site posts out.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnsupportedMediaType)
		json.NewEncoder(w).Encode(apitype.ErrorBody{Error: "send Content-Type: text/xml", Code: apitype.CodeBadRequest})
		return
	}
	var body []byte
	call, err := xmlrpc.DecodeCall(http.MaxBytesReader(w, r.Body, maxRPCBody))
	if err != nil {
		body = xmlrpc.EncodeFault(fault(faultIncorrectParameters, "not an XML-RPC methodCall: "+err.Error()))
	} else {
		body = s.answer(context.WithValue(r.Context(), budgetKey{}, newBudget(s.replyCap)), call)
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// answer runs one call and encodes its result or fault.
func (s *Server) answer(ctx context.Context, call *xmlrpc.Call) []byte {
	v, err := s.dispatch(ctx, call.Method, call.Params)
	if err == nil {
		b, encErr := xmlrpc.EncodeResponse(v)
		if encErr == nil {
			return b
		}
		err = encErr
	}
	f, ok := errors.AsType[*xmlrpc.Fault](err)
	if !ok {
		s.log.Warn("XML-RPC call failed", zap.String("method", call.Method), zap.Error(err))
		f = fault(faultFailed, err.Error())
	}
	return xmlrpc.EncodeFault(f)
}

// LogTail serves GET /logtail/{name}/{channel} (the route's pattern names
// both): supervisorctl tail -f. It sends the last KiB or so, then every
// new line, as a chunked text/plain stream, until the client goes away.
// 404 for an unknown name or a stream that is not logged, as supervisord.
func (s *Server) LogTail(w http.ResponseWriter, r *http.Request) {
	channel := r.PathValue("channel")
	p, err := s.findOne(r.PathValue("name"))
	if err != nil || channel != "stdout" && channel != "stderr" {
		http.NotFound(w, r)
		return
	}
	ls, err := s.opts.Supervisor.Log(p.st.Name, channel)
	if err != nil || ls == nil {
		http.NotFound(w, r)
		return
	}
	s.tailFollow(w, r, ls.Path(), ls.Follow)
}

// MainLogTail serves GET /mainlogtail: supervisorctl maintail -f.
func (s *Server) MainLogTail(w http.ResponseWriter, r *http.Request) {
	ml := s.opts.MainLog
	if ml == nil {
		http.NotFound(w, r)
		return
	}
	s.tailFollow(w, r, ml.Path(), ml.Follow)
}

// tailBytes is how much of a log a follow starts with (supervisord's
// tail_f_producer sends the last 1024 bytes).
const tailBytes = 1024

func (s *Server) tailFollow(w http.ResponseWriter, r *http.Request, path string, follow func(context.Context, int, func([]byte) error) error) {
	// Follow counts in lines: start with the lines of the last KiB.
	lines := 0
	if b, err := readFile(path, -tailBytes, 0, newBudget(tailBytes)); err == nil {
		lines = bytes.Count(b, []byte("\n"))
	}
	w.Header().Set("Content-Type", "text/plain;charset=utf-8")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	err := follow(r.Context(), lines, func(line []byte) error {
		if _, err := w.Write(line); err != nil {
			return err
		}
		return rc.Flush()
	})
	if err != nil && r.Context().Err() == nil {
		s.log.Debug("log tail ended", zap.String("path", path), zap.Error(err))
	}
}
