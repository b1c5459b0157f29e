package control

// supervisord's XML-RPC API (POST /RPC2) and its log tails (GET /logtail,
// /mainlogtail), as supervisord 4.2 serves them, so that supervisorctl,
// Python's xmlrpc.client, Datadog's supervisord check and other clients
// drive hostctl as they drive supervisord. Method names, argument forms,
// answers, state codes, description texts and Fault codes follow
// supervisor/rpcinterface.py; where hostctl differs, the README's
// "supervisorctl and supervisord's XML-RPC API" says how.
//
// Names: a hostctl program is the supervisord process GROUP:NAME, where
// GROUP is Status.ProcessGroup when set and else the program's own name
// (`celery` is `celery:celery`, written `celery`). NAME alone, GROUP:NAME,
// GROUP:* and GROUP: are accepted, as by supervisord, and also a process
// name alone when its group has another name.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/control/xmlrpc"
	"github.com/hostctl/hostctl/supervisor"
)

// Supervisord is what the supervisord-compatible API needs beyond
// Programs. Every field is optional.
type Supervisord struct {
	// Plan reads the config file and returns what a reload would change,
	// without applying it, with the programs the file configures.
	// reloadConfig (supervisorctl reread) answers from it; nil: it answers
	// CANT_REREAD.
	Plan func() (supervisor.Diff, []*supervisor.ProgramConfig, error)
	// Configs returns the running programs' configs (getAllConfigInfo,
	// supervisorctl avail). nil: avail lists nothing.
	Configs func() []*supervisor.ProgramConfig
	// MainLog is hostctl's own log file (readLog, /mainlogtail,
	// supervisorctl maintail); nil when it writes none ([log] file = false).
	MainLog MainLog
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

// supervisordPath reports whether path is served by this file: there, on
// TCP, HTTP Basic auth with the admin token as password is accepted too.
func supervisordPath(path string) bool {
	return path == "/RPC2" || path == "/mainlogtail" || strings.HasPrefix(path, "/logtail/")
}

// basicOK checks HTTP Basic auth (any user name, the admin token as
// password) as tokenOK checks the bearer token: in constant time, over
// hashes.
func (s *Server) basicOK(r *http.Request) bool {
	if s.opts.Token == "" || !supervisordPath(r.URL.Path) {
		return false
	}
	_, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	got := sha256.Sum256([]byte(pass))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
}

// --- names ---

// proc is one supervisord process: a program's status and its group.
type proc struct {
	st    supervisor.Status
	group string
}

// namespec is supervisord's display name: NAME when the group has the
// same name, else GROUP:NAME.
func (p proc) namespec() string {
	if p.group == p.st.Name {
		return p.st.Name
	}
	return p.group + ":" + p.st.Name
}

// processGroup is supervisord's group of a program: Status.ProcessGroup
// when the supervisor sets one (programs in a [group.X], instances), else
// the program's name. Read by reflection so that this file works the same
// before and after that field exists.
func processGroup(st supervisor.Status) string { return groupField(st, st.Name) }

// groupField is the string field ProcessGroup of the struct v when it has
// one and it is set, else def.
func groupField(v any, def string) string {
	if f := reflect.ValueOf(v).FieldByName("ProcessGroup"); f.IsValid() && f.Kind() == reflect.String && f.String() != "" {
		return f.String()
	}
	return def
}

// procs returns every process, sorted by group then name (supervisord's
// lexical order).
func (s *Server) procs() ([]proc, error) {
	sts, err := s.opts.Programs.Status()
	if err != nil {
		return nil, err
	}
	out := make([]proc, len(sts))
	for i, st := range sts {
		out[i] = proc{st: st, group: processGroup(st)}
	}
	slices.SortFunc(out, func(a, b proc) int {
		if c := strings.Compare(a.group, b.group); c != 0 {
			return c
		}
		return strings.Compare(a.st.Name, b.st.Name)
	})
	return out, nil
}

// splitNamespec is supervisord's split_namespec: GROUP:NAME, GROUP:* and
// GROUP: (process "" for the whole group), or NAME (group NAME).
func splitNamespec(spec string) (group, name string) {
	if g, n, ok := strings.Cut(spec, ":"); ok {
		if n == "*" {
			n = ""
		}
		return g, n
	}
	return spec, spec
}

// find resolves spec as supervisord's _getGroupAndProcess does: the
// group's processes and, unless spec names the whole group, the one
// process. A bare process name whose group has another name is accepted
// as well. Unknown names are BAD_NAME.
func (s *Server) find(spec string) (group []proc, one *proc, err error) {
	all, err := s.procs()
	if err != nil {
		return nil, nil, fault(faultFailed, err.Error())
	}
	g, n := splitNamespec(spec)
	for _, p := range all {
		if p.group == g {
			group = append(group, p)
		}
	}
	if len(group) == 0 {
		if !strings.Contains(spec, ":") {
			for _, p := range all {
				if p.st.Name == spec {
					return []proc{p}, &p, nil
				}
			}
		}
		return nil, nil, fault(faultBadName, spec)
	}
	if n == "" {
		return group, nil, nil
	}
	for _, p := range group {
		if p.st.Name == n {
			return group, &p, nil
		}
	}
	return nil, nil, fault(faultBadName, spec)
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
	exit := 0
	if st.LastExit != nil {
		exit = st.LastExit.Code
		if st.LastExit.Signal != "" {
			exit = -1 // supervisord's decode_wait_status
		}
	}
	return xmlrpc.Struct{
		{Name: "name", Value: st.Name},
		{Name: "group", Value: p.group},
		{Name: "start", Value: capped(start)},
		{Name: "stop", Value: capped(stop)},
		{Name: "now", Value: capped(now.Unix())},
		{Name: "state", Value: stateCodes[st.State]},
		{Name: "statename", Value: st.State.String()},
		{Name: "spawnerr", Value: spawnErr},
		{Name: "exitstatus", Value: exit},
		{Name: "logfile", Value: st.StdoutLog},
		{Name: "stdout_logfile", Value: st.StdoutLog},
		{Name: "stderr_logfile", Value: st.StderrLog},
		{Name: "pid", Value: st.PID},
		{Name: "description", Value: description(st, spawnErr, now)},
	}
}

// spawnError is supervisord's spawnerr: why the last start failed, "" when
// it did not.
func spawnError(st supervisor.Status) string {
	if st.SpawnErr != "" {
		return st.SpawnErr
	}
	if st.State == supervisor.Backoff || st.State == supervisor.Fatal {
		if st.LastExit != nil {
			return "Exited too quickly (process log may have details)"
		}
		return st.Info
	}
	return ""
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
}

// rpcMethods is filled in init (the table refers to methods that use it).
var rpcMethods map[string]rpcMethod

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
		"supervisor.startProcess": {sig: []string{boolean, str, boolean}, optional: 1, help: "Start a process",
			call: (*Server).rpcStartProcess},
		"supervisor.startProcessGroup": {sig: []string{array, str, boolean}, optional: 1, help: "Start all processes in the group named 'name'",
			call: (*Server).rpcStartProcessGroup},
		"supervisor.startAllProcesses": {sig: []string{array, boolean}, optional: 1, help: "Start all processes listed in the configuration file",
			call: (*Server).rpcStartAllProcesses},
		"supervisor.stopProcess": {sig: []string{boolean, str, boolean}, optional: 1, help: "Stop a process named by name",
			call: (*Server).rpcStopProcess},
		"supervisor.stopProcessGroup": {sig: []string{array, str, boolean}, optional: 1, help: "Stop all processes in the process group named 'name'",
			call: (*Server).rpcStopProcessGroup},
		"supervisor.stopAllProcesses": {sig: []string{array, boolean}, optional: 1, help: "Stop all processes in the process list",
			call: (*Server).rpcStopAllProcesses},
		"supervisor.signalProcess": {sig: []string{boolean, str, str}, help: "Send an arbitrary UNIX signal to the process named by name",
			call: (*Server).rpcSignalProcess},
		"supervisor.signalProcessGroup": {sig: []string{array, str, str}, help: "Send a signal to all processes in the group named 'name'",
			call: (*Server).rpcSignalProcessGroup},
		"supervisor.signalAllProcesses": {sig: []string{array, str}, help: "Send a signal to all processes in the process list",
			call: (*Server).rpcSignalAllProcesses},
		"supervisor.readProcessStdoutLog": {sig: []string{str, str, integer, integer}, help: "Read length bytes from name's stdout log starting at offset",
			call: func(s *Server, ctx context.Context, a []any) (any, error) { return s.rpcReadProcessLog(a, "stdout") }},
		"supervisor.readProcessStderrLog": {sig: []string{str, str, integer, integer}, help: "Read length bytes from name's stderr log starting at offset",
			call: func(s *Server, ctx context.Context, a []any) (any, error) { return s.rpcReadProcessLog(a, "stderr") }},
		"supervisor.tailProcessStdoutLog": {sig: []string{array, str, integer, integer}, help: "Return [string bytes, int offset, bool overflow] of name's stdout log",
			call: func(s *Server, ctx context.Context, a []any) (any, error) { return s.rpcTailProcessLog(a, "stdout") }},
		"supervisor.tailProcessStderrLog": {sig: []string{array, str, integer, integer}, help: "Return [string bytes, int offset, bool overflow] of name's stderr log",
			call: func(s *Server, ctx context.Context, a []any) (any, error) { return s.rpcTailProcessLog(a, "stderr") }},
		"supervisor.reloadConfig": {sig: []string{array}, help: "Reread the configuration: [[added, changed, removed]] process groups; nothing is applied until addProcessGroup/removeProcessGroup",
			call: (*Server).rpcReloadConfig},
		"supervisor.addProcessGroup": {sig: []string{boolean, str}, help: "Apply the reread configuration for a process group (added or changed)",
			call: (*Server).rpcAddProcessGroup},
		"supervisor.removeProcessGroup": {sig: []string{boolean, str}, help: "Remove a stopped process group that the reread configuration no longer has",
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

// rpc serves POST /RPC2. Every answer is HTTP 200 with one methodResponse
// (a value or a Fault), as supervisord's: a request that is not XML-RPC
// gets INCORRECT_PARAMETERS, an unknown method UNKNOWN_METHOD.
func (s *Server) rpc(w http.ResponseWriter, r *http.Request) {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]))
	if ct != "" && ct != "text/xml" && ct != "application/xml" {
		// Also keeps browsers' "simple" cross-site posts out.
		writeError(w, http.StatusUnsupportedMediaType, CodeBadRequest, "send Content-Type: text/xml", nil)
		return
	}
	var body []byte
	call, err := xmlrpc.DecodeCall(http.MaxBytesReader(w, r.Body, maxRPCBody))
	if err != nil {
		body = xmlrpc.EncodeFault(fault(faultIncorrectParameters, "not an XML-RPC methodCall: "+err.Error()))
	} else {
		body = s.answer(r.Context(), call)
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

// logtail serves GET /logtail/{name}/{channel}: supervisorctl tail -f. It
// sends the last KiB or so, then every new line, as a chunked text/plain
// stream, until the client goes away. 404 for an unknown name or a stream
// that is not logged, as supervisord.
func (s *Server) logtail(w http.ResponseWriter, r *http.Request) {
	channel := r.PathValue("channel")
	p, err := s.findOne(r.PathValue("name"))
	if err != nil || channel != "stdout" && channel != "stderr" {
		http.NotFound(w, r)
		return
	}
	ls, err := s.opts.Programs.Log(p.st.Name, channel)
	if err != nil || ls == nil {
		http.NotFound(w, r)
		return
	}
	s.tailFollow(w, r, ls.Path(), ls.Follow)
}

// mainlogtail serves GET /mainlogtail: supervisorctl maintail -f.
func (s *Server) mainlogtail(w http.ResponseWriter, r *http.Request) {
	ml := s.opts.Supervisord.MainLog
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
	if b, err := readFile(path, -tailBytes, 0); err == nil {
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

// --- methods: info ---

func (s *Server) rpcGetAllProcessInfo(ctx context.Context, _ []any) (any, error) {
	all, err := s.procs()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]xmlrpc.Struct, len(all))
	for i, p := range all {
		out[i] = processInfo(p, now)
	}
	return out, nil
}

func (s *Server) rpcGetProcessInfo(ctx context.Context, args []any) (any, error) {
	p, err := s.findOne(args[0].(string))
	if err != nil {
		return nil, err
	}
	return processInfo(p, time.Now()), nil
}

// rpcGetAllConfigInfo answers with supervisord's config info struct for
// every running program, and for the programs a reread found added
// (inuse false until update adds them).
func (s *Server) rpcGetAllConfigInfo(ctx context.Context, _ []any) (any, error) {
	groups := map[string]string{}
	if all, err := s.procs(); err == nil {
		for _, p := range all {
			groups[p.st.Name] = p.group
		}
	}
	var cfgs []*supervisor.ProgramConfig
	if f := s.opts.Supervisord.Configs; f != nil {
		cfgs = f()
	}
	out := []xmlrpc.Struct{}
	for _, c := range cfgs {
		g := groups[c.Name]
		if g == "" {
			g = c.Name
		}
		out = append(out, configInfo(c, g, true))
	}
	s.rpcMu.Lock()
	if pl := s.reread; pl != nil && !pl.applied {
		for _, c := range pl.configs {
			if pl.added[c.Name] {
				out = append(out, configInfo(c, c.Name, false))
			}
		}
	}
	s.rpcMu.Unlock()
	slices.SortFunc(out, func(a, b xmlrpc.Struct) int {
		an, _ := a.Get("name")
		bn, _ := b.Get("name")
		return strings.Compare(an.(string), bn.(string))
	})
	return out, nil
}

// configInfo is one entry of getAllConfigInfo, with supervisord's keys;
// hostctl has no priorities (start order follows depends_on), so both are
// supervisord's default 999.
func configInfo(c *supervisor.ProgramConfig, group string, inuse bool) xmlrpc.Struct {
	none := func(s string) string {
		if s == "" {
			return "none"
		}
		return s
	}
	exit := []any{}
	for _, e := range c.ExitCodes {
		exit = append(exit, e)
	}
	stopSig := 15
	if sig, err := supervisor.ParseSignal(c.StopSignal); err == nil {
		stopSig = int(sig)
	}
	secs := func(d time.Duration) int { return capped(int64(d / time.Second)) }
	return xmlrpc.Struct{
		{Name: "autostart", Value: c.Autostart},
		{Name: "directory", Value: none(c.Directory)},
		{Name: "uid", Value: none(c.User)},
		{Name: "command", Value: strings.Join(c.Command, " ")},
		{Name: "exitcodes", Value: exit},
		{Name: "group", Value: group},
		{Name: "group_prio", Value: 999},
		{Name: "inuse", Value: inuse},
		{Name: "killasgroup", Value: true},
		{Name: "name", Value: c.Name},
		{Name: "process_prio", Value: 999},
		{Name: "redirect_stderr", Value: c.RedirectStderr},
		{Name: "startretries", Value: c.StartRetries},
		{Name: "startsecs", Value: secs(c.StartSecs)},
		{Name: "stopsignal", Value: stopSig},
		{Name: "stopwaitsecs", Value: secs(c.StopTimeout)},
		{Name: "stdout_logfile", Value: none(c.StdoutLog)},
		{Name: "stderr_logfile", Value: none(c.StderrLog)},
	}
}

// --- methods: start, stop, signal ---

// rpcMaxWait bounds how long startProcess and stopProcess wait (hostctl's
// admin API bound): supervisord waits forever, but a start that waits for
// a dependency could.
const rpcMaxWait = maxWait

func (s *Server) rpcStartProcess(ctx context.Context, args []any) (any, error) {
	name, wait := args[0].(string), truthy(args, 1)
	group, p, err := s.find(name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return s.groupCall(ctx, group, func(p proc) bool { return !runningState(p.st.State) }, func(p proc) error {
			return s.startOne(ctx, p, wait)
		}), nil
	}
	if err := s.startOne(ctx, *p, wait); err != nil {
		return nil, err
	}
	return true, nil
}

// startOne is supervisord's startProcess for one process: ALREADY_STARTED
// when it is up or retrying; with wait, until RUNNING (true), or
// SPAWN_ERROR / ABNORMAL_TERMINATION when it fails on the way.
func (s *Server) startOne(ctx context.Context, p proc, wait bool) error {
	if runningState(p.st.State) {
		return fault(faultAlreadyStarted, p.namespec())
	}
	t0 := time.Now()
	if err := s.opts.Programs.StartPrograms(context.WithoutCancel(ctx), p.st.Name); err != nil {
		return fault(faultFailed, err.Error())
	}
	if !wait {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, rpcMaxWait)
	defer cancel()
	st, err := s.opts.Programs.WaitFor(wctx, p.st.Name, func(st supervisor.Status) bool {
		return st.State == supervisor.Running ||
			st.StateSince.After(t0) && st.State != supervisor.Starting && st.State != supervisor.Stopping
	})
	switch {
	case err != nil:
		return fault(faultFailed, fmt.Sprintf("%s: still %s: %v", p.namespec(), st.State, err))
	case st.State == supervisor.Running:
		return nil
	case spawnError(st) != "":
		return fault(faultSpawnError, p.namespec())
	}
	return fault(faultAbnormalTermination, p.namespec())
}

func (s *Server) rpcStartProcessGroup(ctx context.Context, args []any) (any, error) {
	group, err := s.wholeGroup(args[0].(string))
	if err != nil {
		return nil, err
	}
	wait := truthy(args, 1)
	return s.groupCall(ctx, group, func(p proc) bool { return !runningState(p.st.State) }, func(p proc) error {
		return s.startOne(ctx, p, wait)
	}), nil
}

func (s *Server) rpcStartAllProcesses(ctx context.Context, args []any) (any, error) {
	all, err := s.procs()
	if err != nil {
		return nil, err
	}
	wait := truthy(args, 0)
	return s.groupCall(ctx, all, func(p proc) bool { return !runningState(p.st.State) }, func(p proc) error {
		return s.startOne(ctx, p, wait)
	}), nil
}

func (s *Server) rpcStopProcess(ctx context.Context, args []any) (any, error) {
	name, wait := args[0].(string), truthy(args, 1)
	group, p, err := s.find(name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return s.groupCall(ctx, group, func(p proc) bool { return runningState(p.st.State) }, func(p proc) error {
			return s.stopOne(ctx, p, wait)
		}), nil
	}
	if err := s.stopOne(ctx, *p, wait); err != nil {
		return nil, err
	}
	return true, nil
}

// stopOne is supervisord's stopProcess for one process: NOT_RUNNING
// unless it is up or retrying; with wait, until it is down.
func (s *Server) stopOne(ctx context.Context, p proc, wait bool) error {
	if !runningState(p.st.State) {
		return fault(faultNotRunning, p.namespec())
	}
	if err := s.opts.Programs.StopPrograms(context.WithoutCancel(ctx), p.st.Name); err != nil {
		return fault(faultFailed, err.Error())
	}
	if !wait {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, rpcMaxWait)
	defer cancel()
	if st, err := s.opts.Programs.WaitFor(wctx, p.st.Name, supervisor.Status.StaysDown); err != nil {
		return fault(faultFailed, fmt.Sprintf("%s: still %s: %v", p.namespec(), st.State, err))
	}
	return nil
}

func (s *Server) rpcStopProcessGroup(ctx context.Context, args []any) (any, error) {
	group, err := s.wholeGroup(args[0].(string))
	if err != nil {
		return nil, err
	}
	wait := truthy(args, 1)
	return s.groupCall(ctx, group, func(p proc) bool { return runningState(p.st.State) }, func(p proc) error {
		return s.stopOne(ctx, p, wait)
	}), nil
}

func (s *Server) rpcStopAllProcesses(ctx context.Context, args []any) (any, error) {
	all, err := s.procs()
	if err != nil {
		return nil, err
	}
	wait := truthy(args, 0)
	return s.groupCall(ctx, all, func(p proc) bool { return runningState(p.st.State) }, func(p proc) error {
		return s.stopOne(ctx, p, wait)
	}), nil
}

func (s *Server) rpcSignalProcess(ctx context.Context, args []any) (any, error) {
	name, sig := args[0].(string), args[1].(string)
	group, p, err := s.find(name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return s.groupCall(ctx, group, func(p proc) bool { return signallableState(p.st.State) }, func(p proc) error {
			return s.signalOne(ctx, p, sig)
		}), nil
	}
	if err := s.signalOne(ctx, *p, sig); err != nil {
		return nil, err
	}
	return true, nil
}

// signalOne is supervisord's signalProcess for one process.
func (s *Server) signalOne(ctx context.Context, p proc, sigName string) error {
	sig, err := supervisor.ParseSignal(sigName)
	if err != nil {
		return fault(faultBadSignal, sigName)
	}
	if !signallableState(p.st.State) {
		return fault(faultNotRunning, p.namespec())
	}
	if err := s.opts.Programs.Signal(context.WithoutCancel(ctx), sig, p.st.Name); err != nil {
		return fault(faultFailed, err.Error())
	}
	return nil
}

func (s *Server) rpcSignalProcessGroup(ctx context.Context, args []any) (any, error) {
	group, err := s.wholeGroup(args[0].(string))
	if err != nil {
		return nil, err
	}
	sig := args[1].(string)
	return s.groupCall(ctx, group, func(p proc) bool { return signallableState(p.st.State) }, func(p proc) error {
		return s.signalOne(ctx, p, sig)
	}), nil
}

func (s *Server) rpcSignalAllProcesses(ctx context.Context, args []any) (any, error) {
	all, err := s.procs()
	if err != nil {
		return nil, err
	}
	sig := args[0].(string)
	return s.groupCall(ctx, all, func(p proc) bool { return signallableState(p.st.State) }, func(p proc) error {
		return s.signalOne(ctx, p, sig)
	}), nil
}

// wholeGroup returns the processes of the group called name (the Group
// methods take a group name, not a namespec), or BAD_NAME.
func (s *Server) wholeGroup(name string) ([]proc, error) {
	all, err := s.procs()
	if err != nil {
		return nil, fault(faultFailed, err.Error())
	}
	var out []proc
	for _, p := range all {
		if p.group == name {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fault(faultBadName, name)
	}
	return out, nil
}

// groupCall is supervisord's make_allfunc: fn for every process that
// pred selects, all at once, answering one {name, group, status,
// description} per process (status 80 SUCCESS and "OK", or the fault).
func (s *Server) groupCall(ctx context.Context, procs []proc, pred func(proc) bool, fn func(proc) error) []xmlrpc.Struct {
	var sel []proc
	for _, p := range procs {
		if pred(p) {
			sel = append(sel, p)
		}
	}
	errs := make([]error, len(sel))
	var wg sync.WaitGroup
	for i, p := range sel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(p)
		}()
	}
	wg.Wait()
	out := make([]xmlrpc.Struct, len(sel))
	for i, p := range sel {
		code, desc := faultSuccess, "OK"
		if errs[i] != nil {
			code, desc = faultFailed, errs[i].Error()
			if f, ok := errors.AsType[*xmlrpc.Fault](errs[i]); ok {
				code, desc = f.Code, f.String
			}
		}
		out[i] = xmlrpc.Struct{
			{Name: "name", Value: p.st.Name},
			{Name: "group", Value: p.group},
			{Name: "status", Value: code},
			{Name: "description", Value: desc},
		}
	}
	return out
}

// --- methods: logs ---

// readFile is supervisord's readFile: length bytes from offset; a
// negative offset counts from the end (length must then be 0); length 0
// reads to the end. Errors are BAD_ARGUMENTS or FAILED.
func readFile(path string, offset, length int64) ([]byte, error) {
	if offset < 0 && length != 0 || length < 0 {
		return nil, fault(faultBadArguments, "")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fault(faultFailed, "")
	}
	defer f.Close()
	if offset < 0 {
		fi, err := f.Stat()
		if err != nil {
			return nil, fault(faultFailed, "")
		}
		pos := max(fi.Size()+offset, 0)
		b := make([]byte, min(-offset, fi.Size()-pos))
		n, err := f.ReadAt(b, pos)
		if err != nil && err != io.EOF {
			return nil, fault(faultFailed, "")
		}
		return b[:n], nil
	}
	var r io.Reader = io.NewSectionReader(f, offset, 1<<62)
	if length > 0 {
		r = io.LimitReader(r, length)
	}
	b, err := io.ReadAll(io.LimitReader(r, maxLogRead))
	if err != nil {
		return nil, fault(faultFailed, "")
	}
	return b, nil
}

// maxLogRead bounds one read of a log through the API (supervisord has no
// bound; a reply of gigabytes would not help anyone).
const maxLogRead = 64 << 20

// logPath is the file of a process's stream, or NO_FILE.
func (s *Server) logPath(name, channel string) (string, error) {
	p, err := s.findOne(name)
	if err != nil {
		return "", err
	}
	ls, err := s.opts.Programs.Log(p.st.Name, channel)
	if err != nil {
		return "", fault(faultFailed, err.Error())
	}
	if ls == nil {
		return "", fault(faultNoFile, "none")
	}
	if _, err := os.Stat(ls.Path()); err != nil {
		return "", fault(faultNoFile, ls.Path())
	}
	return ls.Path(), nil
}

func (s *Server) rpcReadProcessLog(args []any, channel string) (any, error) {
	path, err := s.logPath(args[0].(string), channel)
	if err != nil {
		return nil, err
	}
	b, err := readFile(path, args[1].(int64), args[2].(int64))
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// rpcTailProcessLog is supervisord's tailProcessLog: [bytes, offset,
// overflow], reading at most length bytes at offset and skipping ahead
// when the log has grown past offset+length. A missing log is [”, 0,
// false].
func (s *Server) rpcTailProcessLog(args []any, channel string) (any, error) {
	path, err := s.logPath(args[0].(string), channel)
	if ferr, ok := errors.AsType[*xmlrpc.Fault](err); ok && ferr.Code == faultNoFile {
		return []any{"", 0, false}, nil
	}
	if err != nil {
		return nil, err
	}
	return tailFile(path, args[1].(int64), args[2].(int64)), nil
}

// tailFile is supervisord's tailFile: [bytes, offset, overflow].
func tailFile(path string, offset, length int64) []any {
	fi, err := os.Stat(path)
	if err != nil {
		return []any{"", capped(offset), false}
	}
	sz := fi.Size()
	overflow := false
	if sz > offset+length {
		overflow, offset = true, sz-1
	}
	if offset+length > sz {
		if offset > sz-1 {
			length = 0
		}
		offset = sz - length
	}
	offset, length = max(offset, 0), max(length, 0)
	data := []byte{}
	if length > 0 {
		if data, err = readFile(path, offset, min(length, maxLogRead)); err != nil {
			return []any{"", capped(offset), false}
		}
	}
	return []any{string(data), capped(sz), overflow}
}

func (s *Server) rpcReadLog(ctx context.Context, args []any) (any, error) {
	ml := s.opts.Supervisord.MainLog
	if ml == nil {
		return nil, fault(faultNoFile, "none")
	}
	if _, err := os.Stat(ml.Path()); err != nil {
		return nil, fault(faultNoFile, ml.Path())
	}
	b, err := readFile(ml.Path(), args[0].(int64), args[1].(int64))
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// --- methods: reread and update ---

// rereadPlan is what the last reloadConfig found, by supervisord group.
// supervisorctl update calls reloadConfig, then removeProcessGroup and
// addProcessGroup for each change: the first of those applies the whole
// plan with a hostctl reload (hostctl applies a config as a whole), the
// others find their change done.
type rereadPlan struct {
	added, changed, removed map[string]bool
	configs                 []*supervisor.ProgramConfig // the file's programs
	applied                 bool
}

func (s *Server) rpcReloadConfig(ctx context.Context, _ []any) (any, error) {
	plan := s.opts.Supervisord.Plan
	if plan == nil {
		return nil, fault(faultCantReread, "this server cannot reread its config")
	}
	diff, cfgs, err := plan()
	if err != nil {
		return nil, fault(faultCantReread, strings.Join(problems(err), "; "))
	}
	groups := map[string]string{}
	if all, err := s.procs(); err == nil {
		for _, p := range all {
			groups[p.st.Name] = p.group
		}
	}
	groupOf := func(name string) string {
		if g := groups[name]; g != "" {
			return g
		}
		return name
	}
	pl := &rereadPlan{added: map[string]bool{}, changed: map[string]bool{}, removed: map[string]bool{}, configs: cfgs}
	for _, n := range diff.Added {
		pl.added[groupOf(n)] = true
	}
	for _, n := range diff.Changed {
		pl.changed[groupOf(n)] = true
	}
	for _, n := range diff.Removed {
		pl.removed[groupOf(n)] = true
	}
	s.rpcMu.Lock()
	s.reread = pl
	s.rpcMu.Unlock()
	list := func(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }
	return []any{[]any{list(pl.added), list(pl.changed), list(pl.removed)}}, nil
}

// applyLocked applies the reread plan once (with s.rpcMu held).
func (s *Server) applyLocked(ctx context.Context) error {
	if s.reread.applied {
		return nil
	}
	if s.opts.Reload == nil {
		return fault(faultFailed, "this server cannot reload its config")
	}
	if _, err := s.opts.Reload(context.WithoutCancel(ctx)); err != nil {
		return fault(faultFailed, "reload failed; still running the previous config: "+strings.Join(problems(err), "; "))
	}
	s.reread.applied = true
	return nil
}

func (s *Server) rpcRemoveProcessGroup(ctx context.Context, args []any) (any, error) {
	name := args[0].(string)
	group, _ := s.wholeGroup(name)
	for _, p := range group {
		if runningState(p.st.State) || p.st.State == supervisor.Stopping {
			return nil, fault(faultStillRunning, name)
		}
	}
	s.rpcMu.Lock()
	defer s.rpcMu.Unlock()
	if pl := s.reread; pl != nil && (pl.removed[name] || pl.changed[name]) {
		if err := s.applyLocked(ctx); err != nil {
			return nil, err
		}
		delete(pl.removed, name)
		return true, nil
	}
	if len(group) == 0 {
		return nil, fault(faultBadName, name)
	}
	return nil, fault(faultFailed, name+" is still in the config file: remove it there, then reread and update")
}

func (s *Server) rpcAddProcessGroup(ctx context.Context, args []any) (any, error) {
	name := args[0].(string)
	s.rpcMu.Lock()
	pl := s.reread
	pending := pl != nil && (pl.added[name] || pl.changed[name])
	if pending {
		if err := s.applyLocked(ctx); err != nil {
			s.rpcMu.Unlock()
			return nil, err
		}
		delete(pl.added, name)
		delete(pl.changed, name)
	}
	s.rpcMu.Unlock()
	group, err := s.wholeGroup(name)
	if !pending {
		if err != nil {
			return nil, err
		}
		return nil, fault(faultAlreadyAdded, name)
	}
	// supervisord starts an added group's autostart processes.
	for _, p := range group {
		if p.st.Autostart && p.st.StaysDown() {
			if err := s.opts.Programs.StartPrograms(context.WithoutCancel(ctx), p.st.Name); err != nil {
				return nil, fault(faultFailed, err.Error())
			}
		}
	}
	return true, nil
}

// --- system.multicall ---

// rpcMulticall is supervisord's multicall: the calls in order, each result
// as the value itself (not wrapped in a one-element array as other
// servers do) or a {faultCode, faultString} struct.
func (s *Server) rpcMulticall(ctx context.Context, args []any) (any, error) {
	calls := args[0].([]any)
	out := make([]any, 0, len(calls))
	for _, c := range calls {
		out = append(out, s.multicallOne(ctx, c))
	}
	return out, nil
}

func (s *Server) multicallOne(ctx context.Context, c any) any {
	faultStruct := func(f *xmlrpc.Fault) any {
		return xmlrpc.Struct{{Name: "faultCode", Value: f.Code}, {Name: "faultString", Value: f.String}}
	}
	st, ok := c.(xmlrpc.Struct)
	if !ok {
		return faultStruct(fault(faultIncorrectParameters, "a call is a struct {methodName, params}"))
	}
	nv, _ := st.Get("methodName")
	name, ok := nv.(string)
	if !ok || name == "" {
		return faultStruct(fault(faultIncorrectParameters, "No methodName"))
	}
	if name == "system.multicall" {
		return faultStruct(fault(faultIncorrectParameters, "Recursive system.multicall forbidden"))
	}
	params := []any{}
	if pv, ok := st.Get("params"); ok {
		if params, ok = pv.([]any); !ok {
			return faultStruct(fault(faultIncorrectParameters, "params must be an array"))
		}
	}
	v, err := s.dispatch(ctx, name, params)
	if err != nil {
		f, ok := errors.AsType[*xmlrpc.Fault](err)
		if !ok {
			f = fault(faultFailed, err.Error())
		}
		return faultStruct(f)
	}
	return v
}
