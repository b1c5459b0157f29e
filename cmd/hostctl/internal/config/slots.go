package config

// Blue/green slots (issue 23 §2). A program with deploy = "blue_green"
// runs in slot "a" or "b": its command, directory, environment, logs,
// serves and probes may say ${SLOT}, and the proxy's upstream(s) too, so
// that a new release's instances run beside the live ones on a socket of
// their own. ${RELEASE_DIR} is the release a program runs (the live one,
// or for the new slot the release being deployed). The file keeps what
// was written (templates); Resolve turns them into the programs and the
// proxy config for one assignment of slots, which is what the supervisor
// and the proxy run. Process names carry the slot ("gunicorn@a"), so the
// two slots' processes are two sets of status rows, logs and probes; the
// program name stays "gunicorn" for both (`hostctl restart gunicorn`).

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/front"
	"github.com/hostctl/hostctl/proxy"
	"github.com/hostctl/hostctl/supervisor"
	"github.com/hostctl/hostctl/supervisor/logfile"
)

// The deploy variables: not read from hostctl's environment.
const (
	varSlot       = "SLOT"
	varReleaseDir = "RELEASE_DIR"
)

// Slot names.
const (
	SlotA = "a"
	SlotB = "b"
)

// OtherSlot returns the slot that is not s.
func OtherSlot(s string) string {
	if s == SlotA {
		return SlotB
	}
	return SlotA
}

// Slots is one assignment of the blue/green slots, for Resolve.
type Slots struct {
	// Traffic is the slot the proxy's upstreams point at; "" is "a".
	Traffic string
	// Run are the slots whose blue_green instances run: Traffic, and
	// during a deploy the other one too. Empty: Traffic only.
	Run []string
	// Dirs is each slot's release dir; a slot without one runs
	// [deploy] dir/current (before the first deploy). Programs with
	// deploy = "restart" or "rolling" run Traffic's.
	Dirs map[string]string
}

func (s Slots) traffic() string {
	if s.Traffic == "" {
		return SlotA
	}
	return s.Traffic
}

func (s Slots) run() []string {
	if len(s.Run) == 0 {
		return []string{s.traffic()}
	}
	return s.Run
}

// templates is what the file says, before Resolve.
type templates struct {
	programs map[string]*supervisor.ProgramConfig
	proxy    *proxy.Config
	// deployDir is [deploy] dir; "" without [deploy].
	deployDir string
}

// hasDeployVars reports whether s mentions ${SLOT} or ${RELEASE_DIR}.
func hasDeployVars(s string) bool {
	return strings.Contains(s, "${"+varSlot+"}") || strings.Contains(s, "${"+varReleaseDir+"}")
}

// substitute replaces ${SLOT} and ${RELEASE_DIR} in s, leaving every other
// ${VAR} and $$ as they are for the expansions that follow.
func substitute(s, slot, dir string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "$$"):
			b.WriteString("$$")
			i++
		case strings.HasPrefix(s[i:], "${"+varSlot+"}"):
			b.WriteString(slot)
			i += len(varSlot) + 2
		case strings.HasPrefix(s[i:], "${"+varReleaseDir+"}"):
			b.WriteString(dir)
			i += len(varReleaseDir) + 2
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func substituteAll(in []string, slot, dir string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = substitute(s, slot, dir)
	}
	return out
}

// programFields lists the fields of p that may hold a deploy variable,
// by key (relative to program.NAME), with their values.
func programFields(p *supervisor.ProgramConfig) map[string][]string {
	f := map[string][]string{
		"command":      p.Command,
		"directory":    {p.Directory},
		"process_name": {p.ProcessName},
		"stdout_log":   {p.StdoutLog},
		"stderr_log":   {p.StderrLog},
		"serves":       p.Serves,
	}
	for _, k := range slices.Sorted(maps.Keys(p.Environment)) {
		f["environment"] = append(f["environment"], p.Environment[k])
	}
	if r := p.Ready; r != nil {
		f["ready.tcp"], f["ready.http"], f["ready.socket"], f["ready.exec"] = []string{r.TCP}, []string{r.HTTP}, []string{r.Socket}, r.Exec
	}
	if h := p.Health; h != nil {
		f["health.tcp"], f["health.http"], f["health.socket"], f["health.exec"] = []string{h.TCP}, []string{h.HTTP}, []string{h.Socket}, h.Exec
	}
	return f
}

// mentionsVar reports whether one of vals refers to ${name}.
func mentionsVar(vals []string, name string) bool {
	for _, v := range vals {
		if strings.Contains(v, "${"+name+"}") {
			return true
		}
	}
	return false
}

// releaseDirKeys are where ${RELEASE_DIR} may be: what runs as the
// program's own user. Never in a path root opens for the program (its
// logs, its socket, an upstream the proxy dials): the release dir is the
// app user's, who could put a link there to what only root may open.
var releaseDirKeys = []string{"command", "directory", "environment", "ready.exec", "health.exec"}

// slotKeys are where ${SLOT} may be, for a blue_green program.
var slotKeys = []string{"command", "directory", "environment", "stdout_log", "stderr_log", "serves",
	"ready.tcp", "ready.http", "ready.socket", "ready.exec", "health.tcp", "health.http", "health.socket", "health.exec"}

// deployMode returns p's deploy mode, the default applied: "restart" for
// a program that runs the release (its command or directory says
// ${RELEASE_DIR}, or lies under [deploy] dir), else "none".
func deployMode(p *supervisor.ProgramConfig, deployDir string) string {
	if p.Deploy != "" {
		return p.Deploy
	}
	f := programFields(p)
	if mentionsVar(f["command"], varReleaseDir) || mentionsVar(f["directory"], varReleaseDir) {
		return supervisor.DeployRestart
	}
	if deployDir != "" {
		under := func(s string) bool { return s == deployDir || strings.HasPrefix(s, deployDir+"/") }
		if under(p.Directory) || len(p.Command) > 0 && under(p.Command[0]) {
			return supervisor.DeployRestart
		}
	}
	return supervisor.DeployNone
}

// validateSlots checks where the file uses ${SLOT} and ${RELEASE_DIR}:
// keys is where the decoder kept one in a plain string value.
func (f *File) validateSlots(keys []string) []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &supervisor.FieldError{Key: key, Msg: fmt.Sprintf(format, a...)})
	}
	for _, k := range keys {
		switch {
		case !isUpstreamKey(k):
			bad(k, "${SLOT} and ${RELEASE_DIR} mean something only in a program's command, directory, environment, logs, serves and probes, and ${SLOT} in [proxy] upstream(s) (write $${SLOT} for the text itself)")
		case f.tmpl == nil || !f.tmpl.hasBlueGreen():
			bad(k, "${SLOT} needs a program with deploy = \"blue_green\" (the slot the proxy sends visitors to)")
		}
	}
	if f.tmpl == nil {
		return errs
	}
	if f.tmpl.proxy != nil {
		for _, su := range f.tmpl.proxy.SiteUpstreams() {
			for i, u := range su.Upstreams {
				if strings.Contains(u, "${"+varReleaseDir+"}") {
					bad(su.UpstreamKeys[i], "%q: ${RELEASE_DIR} is the app user's directory, and the proxy runs as root: put the socket in a directory of root's (\"unix:/run/hello/gunicorn-${SLOT}.sock\")", u)
				}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(f.tmpl.programs)) {
		p := f.tmpl.programs[name]
		prefix := "program." + name
		mode := deployMode(p, f.tmpl.deployDir)
		fields := programFields(p)
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			v := fields[k]
			if mentionsVar(v, varSlot) {
				switch {
				case mode != supervisor.DeployBlueGreen:
					bad(prefix+"."+k, "${SLOT} needs deploy = \"blue_green\" (a program that runs in slot a or b)")
				case !slices.Contains(slotKeys, k):
					bad(prefix+"."+k, "${SLOT} is not expanded here (a blue_green program's processes are named NAME@SLOT already)")
				}
			}
			if mentionsVar(v, varReleaseDir) {
				switch {
				case !slices.Contains(releaseDirKeys, k):
					bad(prefix+"."+k, "${RELEASE_DIR} is the app user's directory: hostctl (root) would open this path for the program, and a link the app put there would lead root elsewhere; use it only in command, directory, environment and exec probes")
				case mode == supervisor.DeployNone:
					bad(prefix+"."+k, "${RELEASE_DIR} needs deploy = \"blue_green\", \"restart\" or \"rolling\"")
				}
			}
		}
		if (mode != supervisor.DeployNone || p.Deploy != "") && f.Deploy == nil {
			bad(prefix+".deploy", "%q needs a [deploy] section (where the releases are)", mode)
		}
		if mode != supervisor.DeployBlueGreen {
			continue
		}
		served := mentionsVar(fields["serves"], varSlot) || mentionsVar(fields["ready.tcp"], varSlot) ||
			mentionsVar(fields["ready.socket"], varSlot) || mentionsVar(fields["ready.http"], varSlot)
		if !served {
			bad(prefix+".serves", "a blue_green program serves one upstream per slot: write serves = \"unix:/run/hello/gunicorn-${SLOT}.sock\" (the address its command binds, with ${SLOT}), as the proxy's upstream")
		}
		for _, k := range []string{"stdout_log", "stderr_log"} {
			v := fields[k][0]
			if v != "" && v != "none" && !logfile.IsConsole(v) && !mentionsVar(fields[k], varSlot) {
				bad(prefix+"."+k, "%q must contain ${SLOT}: each slot writes its own file (or leave it out for <log.dir>/NAME@SLOT.out.log)", v)
			}
		}
	}
	return errs
}

// isUpstreamKey reports whether key is a [proxy] upstream or upstreams
// entry, the only plain string values where ${SLOT} means something.
func isUpstreamKey(key string) bool {
	k := key
	if i := strings.LastIndexByte(k, '['); i > 0 && strings.HasSuffix(k, "]") {
		k = k[:i]
	}
	if !strings.HasPrefix(k, "proxy.") {
		return false
	}
	last := k[strings.LastIndexByte(k, '.')+1:]
	return last == "upstream" || last == "upstreams"
}

func (t *templates) hasBlueGreen() bool {
	for _, p := range t.programs {
		if deployMode(p, t.deployDir) == supervisor.DeployBlueGreen {
			return true
		}
	}
	return false
}

// keepTemplates records what the file says, once decoded, if it uses
// deploy variables or has a [deploy] section.
func (f *File) keepTemplates(usedInStrings bool) {
	t := &templates{programs: map[string]*supervisor.ProgramConfig{}}
	if f.Deploy != nil {
		t.deployDir = filepath.Clean(f.Deploy.Dir)
	}
	uses := usedInStrings || f.Deploy != nil
	for name, p := range f.Programs {
		c := *p
		t.programs[name] = &c
		for _, v := range programFields(p) {
			for _, s := range v {
				uses = uses || hasDeployVars(s)
			}
		}
		uses = uses || p.Deploy != ""
	}
	if !uses {
		return
	}
	if f.Proxy != nil {
		c := *f.Proxy
		t.proxy = &c
	}
	f.tmpl = t
}

// resolveProgram returns p for slot (blue_green: its processes named
// NAME@SLOT) with dir as ${RELEASE_DIR}; p is not changed.
func resolveProgram(p *supervisor.ProgramConfig, mode, slot, dir string) *supervisor.ProgramConfig {
	c := *p
	c.Deploy = mode
	c.Command = substituteAll(p.Command, slot, dir)
	c.Directory = substitute(p.Directory, slot, dir)
	c.StdoutLog = substitute(p.StdoutLog, slot, dir)
	c.StderrLog = substitute(p.StderrLog, slot, dir)
	if p.Serves != nil {
		c.Serves = substituteAll(p.Serves, slot, dir)
	}
	if p.Environment != nil {
		c.Environment = make(map[string]string, len(p.Environment))
		for k, v := range p.Environment {
			c.Environment[k] = substitute(v, slot, dir)
		}
	}
	if r := p.Ready; r != nil {
		rc := *r
		rc.TCP, rc.HTTP, rc.Socket = substitute(r.TCP, slot, dir), substitute(r.HTTP, slot, dir), substitute(r.Socket, slot, dir)
		rc.Exec = substituteAll(r.Exec, slot, dir)
		c.Ready = &rc
	}
	if h := p.Health; h != nil {
		hc := *h
		hc.TCP, hc.HTTP, hc.Socket = substitute(h.TCP, slot, dir), substitute(h.HTTP, slot, dir), substitute(h.Socket, slot, dir)
		hc.Exec = substituteAll(h.Exec, slot, dir)
		c.Health = &hc
	}
	switch mode {
	case supervisor.DeployBlueGreen:
		name := p.ProcessName
		if name == "" {
			name = "${NAME}"
			if p.Instances > 1 {
				name = "${NAME}_${INSTANCE}"
			}
		}
		c.ProcessName = name + "@" + slot
	case supervisor.DeployRolling:
		c.Rolling = true
	}
	return &c
}

// resolveProxy returns the proxy config with ${SLOT} as slot; the sites
// whose upstreams had ${SLOT} are marked to switch (proxy.Config.Switched).
func resolveProxy(t *proxy.Config, slot, deployDir string) *proxy.Config {
	if t == nil {
		return nil
	}
	c := *t
	var switched []string
	sub := func(u string) string {
		if !strings.Contains(u, "${"+varSlot+"}") {
			return u
		}
		r := substitute(u, slot, "")
		switched = append(switched, r)
		return r
	}
	c.Upstream = sub(t.Upstream)
	if t.UpstreamList != nil {
		c.UpstreamList = make([]string, len(t.UpstreamList))
		for i, u := range t.UpstreamList {
			c.UpstreamList[i] = sub(u)
		}
	}
	if t.Sites != nil {
		c.Sites = slices.Clone(t.Sites)
		for i := range c.Sites {
			c.Sites[i].Upstream = sub(t.Sites[i].Upstream)
			if t.Sites[i].Upstreams != nil {
				c.Sites[i].Upstreams = make([]string, len(t.Sites[i].Upstreams))
				for j, u := range t.Sites[i].Upstreams {
					c.Sites[i].Upstreams[j] = sub(u)
				}
			}
		}
	}
	c.Switched = switched
	// A static dir in a release ([deploy] dir/current/static) is there
	// from the first deploy on.
	if deployDir != "" {
		later := func(sts []proxy.Static) []proxy.Static {
			if sts == nil {
				return nil
			}
			out := slices.Clone(sts)
			for i := range out {
				out[i].Later = strings.HasPrefix(filepath.Clean(out[i].Dir), deployDir+"/")
			}
			return out
		}
		c.Static = later(t.Static)
		for i := range c.Sites {
			c.Sites[i].Static = later(t.Sites[i].Static)
		}
	}
	return &c
}

// resolve sets f.Programs and f.Proxy from the templates for s.
func (f *File) resolve(s Slots) {
	t := f.tmpl
	dir := func(slot string) string {
		if d, ok := s.Dirs[slot]; ok && d != "" {
			return d
		}
		if t.deployDir == "" {
			return ""
		}
		return filepath.Join(t.deployDir, "current")
	}
	progs := make(map[string]*supervisor.ProgramConfig, len(t.programs))
	for name, p := range t.programs {
		mode := deployMode(p, t.deployDir)
		if mode != supervisor.DeployBlueGreen {
			progs[name] = resolveProgram(p, mode, "", dir(s.traffic()))
			continue
		}
		for _, slot := range s.run() {
			key := name
			if slot != s.traffic() {
				key = name + "@" + slot
			}
			progs[key] = resolveProgram(p, mode, slot, dir(slot))
		}
	}
	f.Programs = progs
	f.Proxy = resolveProxy(t.proxy, s.traffic(), t.deployDir)
	f.slots = s
}

// Resolve returns the file with its programs and proxy config for s: a
// copy; f is not changed. A file without deploy variables is returned
// as it is.
func (f *File) Resolve(s Slots) *File {
	if f.tmpl == nil {
		return f
	}
	c := *f
	c.resolve(s)
	for _, g := range c.Groups {
		for _, pn := range g.Programs {
			for _, p := range c.Programs {
				if p.Name == pn {
					p.ProgramGroup = g.Name
				}
			}
		}
	}
	c.links = front.NewLinks(c.Processes())
	return &c
}

// Slots is the assignment of slots f was resolved for.
func (f *File) Slots() Slots { return f.slots }

// DeployMode returns the deploy mode of program name ("" if there is
// none), the default applied.
func (f *File) DeployMode(name string) string {
	if f.tmpl != nil {
		if p, ok := f.tmpl.programs[name]; ok {
			return deployMode(p, f.tmpl.deployDir)
		}
		return ""
	}
	if p, ok := f.Programs[name]; ok {
		return deployMode(p, "")
	}
	return ""
}

// BlueGreen returns the names of the blue_green programs, sorted.
func (f *File) BlueGreen() []string {
	if f.tmpl == nil {
		return nil
	}
	var out []string
	for _, name := range slices.Sorted(maps.Keys(f.tmpl.programs)) {
		if deployMode(f.tmpl.programs[name], f.tmpl.deployDir) == supervisor.DeployBlueGreen {
			out = append(out, name)
		}
	}
	return out
}

// Redeployed returns the programs with deploy = "restart" or "rolling",
// sorted: restarted on the new release after the switch.
func (f *File) Redeployed() []string {
	if f.tmpl == nil {
		return nil
	}
	var out []string
	for _, name := range slices.Sorted(maps.Keys(f.tmpl.programs)) {
		switch deployMode(f.tmpl.programs[name], f.tmpl.deployDir) {
		case supervisor.DeployRestart, supervisor.DeployRolling:
			out = append(out, name)
		}
	}
	return out
}

// releaseDirMachineKeys are the keys whose problems with this machine
// (a directory or command that is not there) say nothing before a deploy:
// they name a path in a release (${RELEASE_DIR}, [deploy] dir/current),
// checked when the program starts.
func (f *File) releaseDirMachineKeys() map[string]bool {
	out := map[string]bool{}
	if f.tmpl == nil {
		return out
	}
	under := func(s string) bool {
		return f.tmpl.deployDir != "" && strings.HasPrefix(filepath.Clean(s), f.tmpl.deployDir+"/")
	}
	for name, p := range f.tmpl.programs {
		fields := programFields(p)
		// A path under [deploy] dir (dir/current) is there from the first
		// deploy on.
		inRelease := mentionsVar(fields["directory"], varReleaseDir) || under(p.Directory)
		for _, k := range []string{"command", "directory"} {
			if inRelease || mentionsVar(fields[k], varReleaseDir) || k == "command" && len(p.Command) > 0 && under(p.Command[0]) {
				out["program."+name+"."+k] = true
			}
		}
	}
	return out
}
