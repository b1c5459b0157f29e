package daemon

// hostctl deploy (issue 23 §2, §3's gate failure): the daemon owns the
// supervisor and the proxy, so the switch runs here. The sequence:
//
//  1. prepare the release (deploy.Host.Prepare: code, shared paths, build
//     steps, as the app's user), then its before_switch steps, once;
//  2. start the new slot of every blue_green program beside the live one
//     (the config resolved with both slots: a supervisor reload that adds
//     NAME@SLOT processes and touches nothing else);
//  3. the gate, within [deploy] deploy_timeout: the new processes RUNNING
//     (ready probe) and healthy, then every [deploy] check path answered
//     through the proxy's own handler chain with the site's Host, pinned
//     to the new slot (proxy.Gate: no visitor's request can be);
//  4. the switch: the proxy's pools swap to the new slot's upstreams,
//     never a Caddy reload; only then current and the state move
//     (Host.ActivateSlot);
//  5. the old slot drains (its requests in flight, for at most its
//     drain_timeout) and stops; programs with deploy = "restart" or
//     "rolling" restart on the new release.
//
// A failure or a cancel before 4 stops the new slot and records the
// release failed; current, the state's live release and the proxy are
// untouched.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/config"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/deploy"
	"github.com/hostctl/hostctl/supervisor"
	"github.com/hostctl/hostctl/supervisor/logfile"
)

// errDeploying refuses a reload while a deploy runs: it would stop the
// new slot, or apply a config the deploy did not gate.
var errDeploying = errors.New("a deploy is running: reload once it is over (hostctl releases shows it)")

// gateRetry is how often the gate asks a check path again after a
// failing answer (the new code may still be warming up), until
// deploy_timeout.
const gateRetry = 500 * time.Millisecond

// stderrLines is how many of the new program's last stderr lines a
// failed gate reports.
const stderrLines = 20

// slotsFromState returns the slot assignment the recorded live release
// runs in: its slot and dir, or slot a on [deploy] dir/current before
// any release went live.
func slotsFromState(cfg *config.File) (config.Slots, error) {
	if cfg.Deploy == nil {
		return config.Slots{}, nil
	}
	h := deploy.Open(cfg.Deploy, cfg.Admin.StateDir)
	live, ok, err := h.Live()
	if err != nil || !ok {
		return config.Slots{}, err
	}
	slot := live.Slot
	if slot == "" {
		slot = config.SlotA
	}
	return config.Slots{Traffic: slot, Dirs: map[string]string{slot: h.Dir(live.ID)}}, nil
}

// lineWriter calls fn with each line written to it.
type lineWriter struct {
	mu  sync.Mutex // guards buf: a step's stdout and stderr both write
	buf []byte
	fn  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.fn(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 16<<10 {
		w.fn(string(w.buf))
		w.buf = nil
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.fn(string(w.buf))
		w.buf = nil
	}
}

// Deploy is POST /v1/deploy (control.Deployer).
func (d *Daemon) Deploy(ctx context.Context, req apitype.DeployRequest, emit func(apitype.DeployEvent)) error {
	cfg := d.config()
	if cfg.Deploy == nil {
		return fmt.Errorf("%s has no [deploy] section (see README, Deploying)", cfg.Path)
	}
	h := deploy.Open(cfg.Deploy, cfg.Admin.StateDir)
	unlock, err := h.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	d.reloadMu.Lock()
	d.deploying = true
	cfg = d.config() // the one running now that no reload can come
	d.reloadMu.Unlock()
	defer func() {
		d.reloadMu.Lock()
		d.deploying = false
		d.reloadMu.Unlock()
	}()
	dp := &deployRun{d: d, h: h, cfg: cfg, emit: emit, log: d.log.Named("deploy")}
	started := time.Now()
	err = dp.run(ctx, deploy.Source{Ref: req.Ref, From: req.From})
	d.DeployEnded(dp.record(started, err, ctx.Err() != nil)) // deploys.go
	return err
}

// deployRun is one deploy.
type deployRun struct {
	d    *Daemon
	h    *deploy.Host
	cfg  *config.File // the config running when the deploy began
	emit func(apitype.DeployEvent)
	log  *zap.Logger
	rel  deploy.Release
	logs map[string]logMark // the new slot's stderr logs (markLogs)
	cur  string             // the step under way (DeployRecord.Step)
}

func (r *deployRun) step(name, format string, a ...any) {
	now := time.Now().UTC() // before the log line, which may wait for its writer
	if name != "stop" {     // stopping the new slot undoes the step that failed: the record names that one
		r.cur = name
	}
	msg := fmt.Sprintf(format, a...)
	r.log.Info(msg, zap.String("step", name), zap.String("release", r.rel.ID))
	r.emit(apitype.DeployEvent{Time: now, Step: name, Msg: msg, Release: r.rel.ID})
}

func (r *deployRun) output() *lineWriter {
	return &lineWriter{fn: func(line string) {
		r.emit(apitype.DeployEvent{Time: time.Now().UTC(), Output: line, Release: r.rel.ID})
	}}
}

func (r *deployRun) run(ctx context.Context, src deploy.Source) error {
	d, h, cfg := r.d, r.h, r.cfg
	r.step("prepare", "preparing a new release")
	out := r.output()
	rel, err := h.Prepare(ctx, src, out)
	out.flush()
	r.rel = rel
	if err != nil {
		if rel.ID != "" {
			err = fmt.Errorf("%w\nbuild log: %s", err, h.LogPath(rel.ID))
		}
		return err
	}
	if len(cfg.Deploy.BeforeSwitch) > 0 {
		r.step("before_switch", "running %d before_switch step(s) with the new code, once", len(cfg.Deploy.BeforeSwitch))
		out := r.output()
		err := h.BeforeSwitch(ctx, rel, out)
		out.flush()
		if err != nil {
			return r.fail(fmt.Errorf("%w\nbuild log: %s", err, h.LogPath(rel.ID)))
		}
	}
	if ctx.Err() != nil {
		return r.fail(errors.New("cancelled before the switch; nothing live changed"))
	}
	cur := cfg.Slots()
	live := cur.Traffic
	if live == "" {
		live = config.SlotA
	}
	if len(cfg.BlueGreen()) == 0 {
		// No program to start beside the old: the release goes live,
		// then the programs that run it restart.
		r.step("switch", "release %s goes live (no blue_green program)", rel.ID)
		if err := h.ActivateSlot(rel.ID, ""); err != nil {
			return r.fail(err)
		}
		return r.restart(config.Slots{Traffic: live, Dirs: map[string]string{live: h.Dir(rel.ID)}})
	}
	next := config.OtherSlot(live)
	dirs := map[string]string{next: h.Dir(rel.ID)}
	if dir, ok := cur.Dirs[live]; ok {
		dirs[live] = dir
	}
	both := cfg.Resolve(config.Slots{Traffic: live, Run: []string{live, next}, Dirs: dirs})
	names := slotProcesses(both, next)
	r.step("start", "starting slot %s beside slot %s: %s", next, live, strings.Join(names, ", "))
	r.markLogs(both, names)
	if err := r.apply(ctx, both, false); err != nil {
		return r.undo(cfg, fmt.Errorf("starting slot %s: %w", next, err), names)
	}
	if err := d.sup.StartProcesses(ctx, names...); err != nil {
		return r.undo(cfg, fmt.Errorf("starting slot %s: %w", next, err), names)
	}

	switched := cfg.Resolve(config.Slots{Traffic: next, Run: []string{live, next}, Dirs: dirs})
	if err := r.gate(ctx, names, switched); err != nil {
		return r.undo(cfg, err, names)
	}

	// The switch: from here on the deploy runs to its end.
	bg := context.WithoutCancel(ctx)
	if err := h.BeginSwitch(rel.ID, live, next); err != nil {
		return r.undo(cfg, err, names)
	}
	r.step("switch", "moving traffic to slot %s (the proxy's upstreams swapped, no reload)", next)
	res, err := r.switchProxy(bg, switched)
	if err != nil {
		r.apply(bg, both, false)
		return r.undo(cfg, fmt.Errorf("switching the proxy to slot %s: %w", next, err), names)
	}
	if err := h.ActivateSlot(rel.ID, next); err != nil {
		// Traffic moved; the record did not: say so loudly.
		r.log.Error("traffic moved to the new release, but recording it failed", zap.Error(err))
		return fmt.Errorf("traffic is on release %s (slot %s), but current and the state could not be moved: %w", rel.ID, next, err)
	}
	r.step("switch", "release %s is live (proxy: %s); current -> releases/%s", rel.ID, res, rel.ID)

	final := config.Slots{Traffic: next, Dirs: map[string]string{next: h.Dir(rel.ID)}}
	r.drain(bg, cfg, live)
	return r.restart(final)
}

// slotProcesses returns the process names of slot's blue_green processes
// in cfg.
func slotProcesses(cfg *config.File, slot string) []string {
	var out []string
	for _, p := range cfg.Processes() {
		if p.Program.Deploy == supervisor.DeployBlueGreen && strings.HasSuffix(p.Name, "@"+slot) {
			out = append(out, p.Name)
		}
	}
	return out
}

// apply makes cfg the running config: the supervisor's programs (a
// reload, which starts added processes and stops removed ones after
// their drain), the front's links and, with withProxy, the proxy's
// config.
func (r *deployRun) apply(ctx context.Context, cfg *config.File, withProxy bool) error {
	d := r.d
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	diff, err := d.sup.Reload(ctx, cfg.ProgramList())
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	d.front.Configure(healthPath(cfg), cfg.Links())
	if withProxy {
		if _, perr := d.proxy.Reload(ctx, proxyConfig(cfg)); perr != nil {
			err = errors.Join(err, perr)
		}
		d.front.ProxyApplied()
	}
	r.log.Info("programs applied", zap.Strings("added", diff.Added), zap.Strings("changed", diff.Changed), zap.Strings("removed", diff.Removed))
	return err
}

// switchProxy makes switched the running config and swaps the proxy's
// upstreams to its slot.
func (r *deployRun) switchProxy(ctx context.Context, switched *config.File) (string, error) {
	d := r.d
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	res, err := d.proxy.Switch(ctx, proxyConfig(switched))
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	d.cfg = switched
	d.mu.Unlock()
	d.front.Configure(healthPath(switched), switched.Links())
	d.front.ProxyApplied()
	return res, nil
}

// gate waits, within deploy_timeout, for the new slot's processes to be
// RUNNING and healthy, then for every check path to answer as expected
// through the proxy, pinned to the new slot.
func (r *deployRun) gate(ctx context.Context, names []string, switched *config.File) error {
	dc := r.cfg.Deploy
	r.step("gate", "waiting for %s: ready and healthy, then %d check(s), within %s", strings.Join(names, ", "), len(dc.Check), dc.DeployTimeout)
	gctx, cancel := context.WithTimeout(ctx, dc.DeployTimeout)
	defer cancel()
	for _, n := range names {
		st, err := r.d.sup.WaitFor(gctx, n, func(st supervisor.Status) bool {
			return st.Up() || st.State == supervisor.Fatal || st.State == supervisor.Exited
		})
		switch {
		case ctx.Err() != nil:
			return errors.New("cancelled before the switch; nothing live changed")
		case err != nil:
			return fmt.Errorf("%s is not ready and healthy after deploy_timeout %s (%s)", n, dc.DeployTimeout, describe(st))
		case !st.Up():
			return fmt.Errorf("%s did not start: %s", n, describe(st))
		}
	}
	r.step("gate", "%s ready and healthy", strings.Join(names, ", "))
	if len(dc.Check) == 0 {
		return nil
	}
	site, host, pin, err := gatePin(switched, dc.CheckHost)
	if err != nil {
		return err
	}
	p := r.d.proxy.Proxy()
	if p == nil {
		return errors.New("the proxy is not running: the check paths cannot be asked")
	}
	g := p.Gate(pin)
	defer g.Close()
	for _, path := range dc.Check {
		var last string
		t := time.NewTicker(gateRetry)
		for {
			res, err := g.Get(gctx, site, host, path)
			switch {
			case err != nil && gctx.Err() != nil && last != "":
				// Cut short by deploy_timeout: the answer before says why.
			case err != nil:
				last = err.Error()
			case !res.Pinned:
				t.Stop()
				return fmt.Errorf("check %s (Host %s) was answered without reaching the new slot (status %d): a static route or the Caddyfile answers it; check a path the application serves", path, host, res.Status)
			case res.Status != dc.CheckStatus:
				last = fmt.Sprintf("status %d, want %d", res.Status, dc.CheckStatus)
			case dc.CheckBody != "" && !bytes.Contains(res.Body, []byte(dc.CheckBody)):
				last = fmt.Sprintf("status %d but the body does not contain %q", res.Status, dc.CheckBody)
			default:
				last = ""
			}
			if last == "" && err == nil {
				break
			}
			select {
			case <-gctx.Done():
				t.Stop()
				if ctx.Err() != nil {
					return errors.New("cancelled before the switch; nothing live changed")
				}
				return fmt.Errorf("check %s (Host %s) through the proxy to the new slot: %s, still after deploy_timeout %s", path, host, last, dc.DeployTimeout)
			case <-t.C:
			}
		}
		t.Stop()
		r.step("gate", "check %s (Host %s): %d", path, host, dc.CheckStatus)
	}
	return nil
}

// gatePin returns the site the check paths are asked of, the Host
// header, and the pin: each site whose upstreams switch, with the new
// slot's upstreams (switched is the config resolved with traffic on the
// new slot).
func gatePin(switched *config.File, checkHost string) (site, host string, pin map[string][]string, err error) {
	pc := switched.Proxy
	if pc == nil || len(pc.Switched) == 0 {
		return "", "", nil, errors.New("[deploy] check needs a [proxy] upstream written with ${SLOT}: the check paths go to the new slot through it")
	}
	pin = map[string][]string{}
	for _, su := range pc.SiteUpstreams() {
		if !slices.ContainsFunc(su.Upstreams, func(u string) bool { return slices.Contains(pc.Switched, u) }) {
			continue
		}
		pin[su.Key] = su.Upstreams
		if site == "" {
			site = su.Key
			host = su.Site
		}
	}
	if checkHost != "" {
		host = checkHost
	}
	if host == "" || host == "*" {
		host = "localhost"
	}
	return site, host, pin, nil
}

// describe says what state a process of the new slot is in, for a
// failed gate.
func describe(st supervisor.Status) string {
	s := st.State.String()
	if st.LastExit != nil {
		s += ", last exit: " + st.LastExit.String()
	}
	if st.SpawnErr != "" {
		s += ", " + st.SpawnErr
	}
	if st.Health != nil && !st.Health.Healthy {
		s += ", unhealthy: " + st.Health.LastError
	}
	if st.Info != "" {
		why, _, _ := strings.Cut(st.Info, ";") // not its advice: the new slot is removed
		s += ": " + why
	}
	return s
}

// errorLines returns the lines of text that end a traceback
// (deploy.ErrorLines).
func errorLines(text string) []string { return deploy.ErrorLines(text) }

// undo stops the new slot (cfg is the config from before the deploy)
// and records the release failed with why and the new processes' last
// stderr lines. Nothing live changed.
func (r *deployRun) undo(cfg *config.File, why error, names []string) error {
	var tails []string
	for _, n := range names {
		text := r.stderrSince(n)
		if errs := errorLines(text); len(errs) > 0 {
			tails = append(tails, fmt.Sprintf("errors in the stderr of %s:\n  %s", n, strings.Join(errs, "\n  ")))
		}
		lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
		if len(lines) > stderrLines {
			lines = lines[len(lines)-stderrLines:]
		}
		if strings.TrimSpace(text) != "" {
			tails = append(tails, fmt.Sprintf("last stderr lines of %s:\n  %s", n, strings.Join(lines, "\n  ")))
		}
	}
	r.step("stop", "the gate failed: stopping %s; the live release keeps serving", strings.Join(names, ", "))
	if err := r.apply(context.Background(), cfg, true); err != nil {
		r.log.Error("stopping the new slot", zap.Error(err))
	}
	err := why
	if len(tails) > 0 {
		err = fmt.Errorf("%w\n%s", why, strings.Join(tails, "\n"))
	}
	return r.fail(err)
}

// markLogs records where the stderr log of each of the new slot's
// processes (in cfg) ends before they start: what a failed gate reports
// is what they wrote since, not an earlier deploy's output in the same
// file.
func (r *deployRun) markLogs(cfg *config.File, names []string) {
	r.logs = map[string]logMark{}
	for _, p := range cfg.Processes() {
		if !slices.Contains(names, p.Name) {
			continue
		}
		path := p.Program.StderrLog
		if p.Program.RedirectStderr {
			path = p.Program.StdoutLog
		}
		switch {
		case path == "none" || logfile.IsConsole(path):
			continue
		case path == "" && p.Program.RedirectStderr:
			path = filepath.Join(cfg.Log.Dir, p.Name+".out.log")
		case path == "":
			path = filepath.Join(cfg.Log.Dir, p.Name+".err.log")
		}
		var size int64
		if fi, err := os.Lstat(path); err == nil {
			size = fi.Size()
		}
		r.logs[p.Name] = logMark{path, size}
	}
}

// logMark is a log file and its size before a process started.
type logMark struct {
	path string
	size int64
}

// maxStderrRead bounds what a failed gate reads of a new process's log.
const maxStderrRead = 256 << 10

// stderrSince returns what process n wrote to its stderr log since
// markLogs (its last 256 KB; all of the file if it was rotated since).
// The log dir is hostctl's own, writable by root only.
func (r *deployRun) stderrSince(n string) string {
	m, ok := r.logs[n]
	if !ok {
		return ""
	}
	f, err := os.OpenFile(m.path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	from := m.size
	if fi.Size() < from {
		from = 0
	}
	from = max(from, fi.Size()-maxStderrRead)
	b := make([]byte, fi.Size()-from)
	k, _ := f.ReadAt(b, from)
	return string(b[:k])
}

// fail records the release failed (current is not touched).
func (r *deployRun) fail(err error) error {
	if r.rel.ID != "" {
		if ferr := r.h.Fail(r.rel.ID, err.Error()); ferr != nil {
			r.log.Error("recording the failed release", zap.Error(ferr))
		}
		err = fmt.Errorf("release %s: %w", r.rel.ID, err)
	}
	return err
}

// drain waits until the old slot's upstreams have no request in flight
// (on the pools' retired handlers), for at most the longest drain_timeout
// of the blue_green programs, and then lets the apply that follows stop
// its processes.
func (r *deployRun) drain(ctx context.Context, cfg *config.File, old string) {
	var wait time.Duration
	for _, n := range cfg.BlueGreen() {
		if p, ok := cfg.Programs[n]; ok {
			wait = max(wait, p.DrainTimeout)
		}
	}
	var ups []string
	if cfg.Proxy != nil {
		ups = cfg.Proxy.Switched // resolved for the old slot: its upstreams
	}
	p := r.d.proxy.Proxy()
	r.step("drain", "slot %s: waiting for its requests in flight (at most %s), then stopping it", old, wait)
	if p == nil || len(ups) == 0 || wait <= 0 {
		return
	}
	inFlight := func() int {
		n := 0
		for _, u := range ups {
			n += p.InFlight(u)
		}
		return n
	}
	dctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for inFlight() > 0 {
		select {
		case <-dctx.Done():
			r.step("drain", "drain_timeout passed with %d request(s) in flight on slot %s (open WebSockets among them): stopping it anyway", inFlight(), old)
			return
		case <-t.C:
		}
	}
}

// restart applies final (the new release in its slot, alone): the old
// slot stops, and the programs with deploy = "restart" or "rolling"
// restart on the new release (a reload restarts those whose
// ${RELEASE_DIR} changed; the others are restarted here).
func (r *deployRun) restart(final config.Slots) error {
	d := r.d
	ctx := context.Background()
	cfg := r.cfg.Resolve(final)
	redeployed := cfg.Redeployed()
	d.reloadMu.Lock()
	diff, err := d.sup.Reload(ctx, cfg.ProgramList())
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	d.front.Configure(healthPath(cfg), cfg.Links())
	if _, perr := d.proxy.Reload(ctx, proxyConfig(cfg)); perr != nil {
		err = errors.Join(err, perr)
	}
	d.front.ProxyApplied()
	d.reloadMu.Unlock()
	if err != nil {
		r.log.Error("stopping the old slot", zap.Error(err))
	}
	if len(redeployed) == 0 {
		return nil
	}
	r.step("restart", "restarting on the new release: %s", strings.Join(redeployed, ", "))
	var again []string
	for _, n := range redeployed {
		procs, _ := d.sup.Resolve(n)
		if !slices.ContainsFunc(procs, func(p string) bool { return slices.Contains(diff.Changed, p) }) {
			again = append(again, n)
		}
	}
	if len(again) > 0 {
		if err := d.sup.RestartProcesses(ctx, again...); err != nil {
			return fmt.Errorf("release %s is live, but restarting %s failed: %w", r.rel.ID, strings.Join(again, ", "), err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, r.cfg.Deploy.DeployTimeout)
	defer cancel()
	procs, _ := d.sup.Resolve(redeployed...)
	var down []string
	for _, n := range procs {
		st, err := d.sup.WaitFor(wctx, n, func(st supervisor.Status) bool {
			return st.State == supervisor.Running || st.State == supervisor.Fatal
		})
		if err != nil || st.State != supervisor.Running {
			down = append(down, fmt.Sprintf("%s (%s)", n, describe(st)))
		}
	}
	if len(down) > 0 {
		return fmt.Errorf("release %s is live, but not every program restarted on it: %s", r.rel.ID, strings.Join(down, ", "))
	}
	r.step("restart", "%s running on release %s", strings.Join(procs, ", "), r.rel.ID)
	return nil
}
