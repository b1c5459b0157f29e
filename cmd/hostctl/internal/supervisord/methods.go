package supervisord

// The methods of supervisord's XML-RPC API (the table is in supervisord.go).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/supervisord/xmlrpc"
	"github.com/hostctl/hostctl/supervisor"
	"github.com/hostctl/hostctl/supervisor/logfile"
)

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
			groups[p.st.Name] = p.group()
		}
	}
	var cfgs []*supervisor.ProcessConfig
	if f := s.opts.ProcessConfigs; f != nil {
		cfgs = f()
	}
	out := []xmlrpc.Struct{}
	running := map[string]bool{}
	for _, c := range cfgs {
		running[c.Name] = true
		g := groups[c.Name]
		if g == "" {
			g = c.ProgramGroup
		}
		out = append(out, configInfo(c, g, true))
	}
	s.rpcMu.Lock()
	if pl := s.reread; pl != nil && !pl.applied {
		for _, c := range pl.configs {
			if g := c.ProgramGroup; !running[c.Name] {
				out = append(out, configInfo(c, g, false))
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
func configInfo(proc *supervisor.ProcessConfig, group string, inuse bool) xmlrpc.Struct {
	c := proc.Program
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
		{Name: "name", Value: proc.Name},
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

// rpcMaxWait bounds how long startProcess and stopProcess wait (as long as
// the admin API's actions may wait): supervisord waits forever, but a
// start that waits for a dependency could.
const rpcMaxWait = 10 * time.Minute

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
	if err := s.opts.Supervisor.StartProcesses(context.WithoutCancel(ctx), p.st.Name); err != nil {
		return fault(faultFailed, err.Error())
	}
	if !wait {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, rpcMaxWait)
	defer cancel()
	st, err := s.opts.Supervisor.WaitFor(wctx, p.st.Name, func(st supervisor.Status) bool {
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
	if err := s.opts.Supervisor.StopProcesses(context.WithoutCancel(ctx), p.st.Name); err != nil {
		return fault(faultFailed, err.Error())
	}
	if !wait {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, rpcMaxWait)
	defer cancel()
	if st, err := s.opts.Supervisor.WaitFor(wctx, p.st.Name, supervisor.Status.StaysDown); err != nil {
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
	if err := s.opts.Supervisor.SignalProcesses(context.WithoutCancel(ctx), sig, p.st.Name); err != nil {
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
	procs, _, err := s.match(supervisor.SupervisordGroup, name)
	return procs, err
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
			{Name: "group", Value: p.group()},
			{Name: "status", Value: code},
			{Name: "description", Value: desc},
		}
	}
	return out
}

// --- methods: logs ---

// readFile is supervisord's readFile: length bytes from offset; a
// negative offset counts from the end (length must then be 0); length 0
// reads to the end. Any int64 is taken (MinInt64 included: from the end,
// the whole file). Errors are BAD_ARGUMENTS or FAILED, and FAILED saying
// so when the read would pass what is left of the request's reply cap.
func readFile(path string, offset, length int64, budget *replyBudget) ([]byte, error) {
	if offset < 0 && length != 0 || length < 0 {
		return nil, fault(faultBadArguments, "")
	}
	f, err := logfile.OpenFile(path) // never through a link
	if err != nil {
		return nil, fault(faultFailed, "")
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fault(faultFailed, "")
	}
	size := fi.Size()
	var pos int64
	switch {
	case offset < 0 && offset > -size: // -offset: MinInt64 would overflow
		pos = size + offset
	case offset < 0:
		pos = 0
	default:
		pos = min(offset, size)
	}
	n := size - pos
	if length > 0 {
		n = min(n, length)
	}
	if !budget.fits(n) {
		return nil, budget.fault()
	}
	b := make([]byte, n)
	m, err := f.ReadAt(b, pos)
	if err != nil && err != io.EOF {
		return nil, fault(faultFailed, "")
	}
	return b[:m], nil
}

// maxReply bounds what one XML-RPC request answers with: the log text its
// calls read and, in a multicall, all the calls' answers together.
// supervisord has none; a reply of gigabytes would not help anyone, and
// hostctl holds it in memory.
const maxReply = 64 << 20

// replyBudget is what is left of one request's reply cap.
type replyBudget struct {
	total int64
	left  atomic.Int64
}

func newBudget(total int64) *replyBudget {
	b := &replyBudget{total: total}
	b.left.Store(total)
	return b
}

// take counts n bytes of the reply; false if they do not fit, and then
// the budget is spent.
func (b *replyBudget) take(n int64) bool {
	if b.left.Add(-n) < 0 {
		b.left.Store(-1)
		return false
	}
	return true
}

// fits reports whether n more bytes would fit, before they are read; if
// not, the budget is spent.
func (b *replyBudget) fits(n int64) bool {
	if n > b.left.Load() {
		b.left.Store(-1)
		return false
	}
	return true
}

// spent reports whether something did not fit.
func (b *replyBudget) spent() bool { return b.left.Load() < 0 }

func (b *replyBudget) fault() *xmlrpc.Fault {
	return fault(faultFailed, fmt.Sprintf("reply cap: this request's answers would pass %d MiB, hostctl's cap on one XML-RPC reply; ask for less at once (a smaller length, or fewer calls in one multicall)", b.total>>20))
}

type budgetKey struct{}

// budgetOf returns the request's reply budget (rpc puts it in ctx); a
// full one when there is none.
func budgetOf(ctx context.Context) *replyBudget {
	if b, ok := ctx.Value(budgetKey{}).(*replyBudget); ok {
		return b
	}
	return newBudget(maxReply)
}

// replySize is about how many bytes v takes in an XML-RPC reply: its
// strings, and for the rest the tags around them.
func replySize(v any) int64 {
	const tags = 40 // <value><string></string></value> and the like
	switch x := v.(type) {
	case string:
		return int64(len(x)) + tags
	case []byte:
		return int64(len(x))*4/3 + tags
	case []string:
		n := int64(tags)
		for _, e := range x {
			n += int64(len(e)) + tags
		}
		return n
	case []any:
		n := int64(tags)
		for _, e := range x {
			n += replySize(e)
		}
		return n
	case []xmlrpc.Struct:
		n := int64(tags)
		for _, e := range x {
			n += replySize(e)
		}
		return n
	case xmlrpc.Struct:
		n := int64(tags)
		for _, m := range x {
			n += int64(len(m.Name)) + tags + replySize(m.Value)
		}
		return n
	}
	return tags
}

// logPath is the file of a process's stream, or NO_FILE.
func (s *Server) logPath(name, channel string) (string, error) {
	p, err := s.findOne(name)
	if err != nil {
		return "", err
	}
	ls, err := s.opts.Supervisor.Log(p.st.Name, channel)
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

func (s *Server) rpcReadProcessLog(ctx context.Context, args []any, channel string) (any, error) {
	path, err := s.logPath(args[0].(string), channel)
	if err != nil {
		return nil, err
	}
	b, err := readFile(path, args[1].(int64), args[2].(int64), budgetOf(ctx))
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// rpcTailProcessLog is supervisord's tailProcessLog: [bytes, offset,
// overflow], reading at most length bytes at offset and skipping ahead
// when the log has grown past offset+length. A missing log is [”, 0,
// false].
func (s *Server) rpcTailProcessLog(ctx context.Context, args []any, channel string) (any, error) {
	path, err := s.logPath(args[0].(string), channel)
	if ferr, ok := errors.AsType[*xmlrpc.Fault](err); ok && ferr.Code == faultNoFile {
		return []any{"", 0, false}, nil
	}
	if err != nil {
		return nil, err
	}
	return tailFile(path, args[1].(int64), args[2].(int64), budgetOf(ctx))
}

// tailFile is supervisord's tailFile: [bytes, offset, overflow], for any
// int64 offset and length (Python's integers have no bound: the sums are
// saturated, which keeps every comparison with the file's size as it is).
func tailFile(path string, offset, length int64, budget *replyBudget) ([]any, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return []any{"", capped(offset), false}, nil
	}
	sz := fi.Size()
	overflow := false
	if sz > satAdd(offset, length) {
		overflow, offset = true, sz-1
	}
	if satAdd(offset, length) > sz {
		if offset > sz-1 {
			length = 0
		}
		offset = sz - length
	}
	offset, length = max(offset, 0), max(length, 0)
	data := []byte{}
	if length > 0 {
		if data, err = readFile(path, offset, length, budget); err != nil {
			if budget.spent() {
				return nil, err // the reply cap
			}
			return []any{"", capped(offset), false}, nil
		}
	}
	return []any{string(data), capped(sz), overflow}, nil
}

// satAdd is a+b, held at the int64 bounds instead of wrapping around.
func satAdd(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}

func (s *Server) rpcReadLog(ctx context.Context, args []any) (any, error) {
	ml := s.opts.MainLog
	if ml == nil {
		return nil, fault(faultNoFile, "none")
	}
	if _, err := os.Stat(ml.Path()); err != nil {
		return nil, fault(faultNoFile, ml.Path())
	}
	b, err := readFile(ml.Path(), args[0].(int64), args[1].(int64), budgetOf(ctx))
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
	configs                 []*supervisor.ProcessConfig // the file's programs
	applied                 bool
}

func (s *Server) rpcReloadConfig(ctx context.Context, _ []any) (any, error) {
	plan := s.opts.Plan
	if plan == nil {
		return nil, fault(faultCantReread, "this server cannot reread its config")
	}
	diff, cfgs, err := plan()
	if err != nil {
		return nil, fault(faultCantReread, strings.Join(apitype.Problems(err), "; "))
	}
	groups := map[string]string{}
	// A group is added when none of its processes runs now, removed when
	// none is left in the file, else changed (an instance added or gone
	// changes its group, as numprocs does in supervisord).
	before, after := map[string]bool{}, map[string]bool{}
	if all, err := s.procs(); err == nil {
		for _, p := range all {
			groups[p.st.Name] = p.group()
			before[p.group()] = true
		}
	}
	for _, c := range cfgs { // the processes the file configures
		g := c.ProgramGroup
		after[g] = true
		if groups[c.Name] == "" {
			groups[c.Name] = g
		}
	}
	pl := &rereadPlan{added: map[string]bool{}, changed: map[string]bool{}, removed: map[string]bool{}, configs: cfgs}
	mark := func(name string) {
		g := groups[name]
		if g == "" {
			g = name
		}
		switch {
		case before[g] && after[g]:
			pl.changed[g] = true
		case after[g]:
			pl.added[g] = true
		default:
			pl.removed[g] = true
		}
	}
	for _, l := range [][]string{diff.Added, diff.Changed, diff.Removed} {
		for _, n := range l {
			mark(n)
		}
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
	if err := s.opts.Reload(context.WithoutCancel(ctx)); err != nil {
		return fault(faultFailed, "reload failed; still running the previous config: "+strings.Join(apitype.Problems(err), "; "))
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
			if err := s.opts.Supervisor.StartProcesses(context.WithoutCancel(ctx), p.st.Name); err != nil {
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
//
// A multicall with a write method, from the read-only token, is refused
// as a whole: none of its calls is made.
func (s *Server) rpcMulticall(ctx context.Context, args []any) (any, error) {
	calls := args[0].([]any)
	if s.checkWrite(ctx, "system.multicall") != nil {
		var writes []string
		for _, c := range calls {
			if st, ok := c.(xmlrpc.Struct); ok {
				name, _ := st.Get("methodName")
				if n, ok := name.(string); ok && rpcMethods[n].write && !slices.Contains(writes, n) {
					writes = append(writes, n)
				}
			}
		}
		if len(writes) > 0 {
			return nil, fault(faultFailed, s.checkWrite(ctx, "system.multicall with "+strings.Join(writes, ", ")).Error())
		}
	}
	// Past the reply cap, every call answers its fault without being made.
	budget := budgetOf(ctx)
	out := make([]any, 0, len(calls))
	over := false
	for _, c := range calls {
		var v any
		if !over {
			v = s.multicallOne(ctx, c)
			over = !budget.take(replySize(v))
		}
		if over {
			v = faultStruct(budget.fault())
		}
		out = append(out, v)
	}
	return out, nil
}

func faultStruct(f *xmlrpc.Fault) any {
	return xmlrpc.Struct{{Name: "faultCode", Value: f.Code}, {Name: "faultString", Value: f.String}}
}

func (s *Server) multicallOne(ctx context.Context, c any) any {
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
