package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/check"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/deploy"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/fleet"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/front"
	"github.com/hostctl/hostctl/proxy"
	"github.com/hostctl/hostctl/supervisor"
	"github.com/hostctl/hostctl/supervisor/logfile"
	"github.com/hostctl/hostctl/supervisor/trust"
)

// DefaultPath is where hostctl looks for its config without -c or
// $HOSTCTL_CONFIG.
const DefaultPath = "/etc/hostctl/hostctl.toml"

// Path returns the config path: flag, else $HOSTCTL_CONFIG, else DefaultPath.
func Path(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("HOSTCTL_CONFIG"); env != "" {
		return env
	}
	return DefaultPath
}

// File is the whole hostctl.toml.
type File struct {
	// Admin is the control endpoint and state directory.
	Admin Admin `toml:"admin"`
	// Log is where program logs go and how they are rotated and capped.
	Log logfile.Config `toml:"log"`
	// Programs are the [program.NAME] tables.
	Programs map[string]*supervisor.ProgramConfig `toml:"-"`
	// Groups are the [group.NAME] tables: named groups of programs. Once
	// the file is valid, each program listed in one has its ProgramGroup
	// set to the group's name.
	Groups map[string]*supervisor.ProgramGroupConfig `toml:"-"`
	// Checks are the [check.NAME] tables: services hostctl does not run
	// (Postgres, ElasticSearch, S3) that it probes and alerts about.
	Checks map[string]*check.Config `toml:"-"`
	// Proxy is the [proxy] section; nil when there is none (no web front).
	Proxy *proxy.Config `toml:"proxy"`
	// Alerts is the [alerts] section: who is told when something breaks.
	Alerts alert.Config `toml:"alerts"`
	// Fleet is the [fleet] section: the hostctl daemons that
	// `hostctl status --fleet` shows.
	Fleet fleet.Config `toml:"fleet"`
	// Deploy is the [deploy] section: the releases of `hostctl deploy`;
	// nil when there is none.
	Deploy *deploy.Config `toml:"deploy"`

	// Path is the file this was read from.
	Path string `toml:"-"`
	// Unserved are the proxy's upstreams on this machine that no program
	// serves (front.Check): something else runs them (php-fpm under
	// systemd); hostctl check says so.
	Unserved []string `toml:"-"`
	// Warnings are what is not wrong but worth fixing (a secret file that
	// every user can read), each with its key and line: hostctl run logs
	// them, hostctl check prints them.
	Warnings []*Error `toml:"-"`

	links front.Links // Links, once the file is valid

	// tmpl is what the file says where it uses ${SLOT} and
	// ${RELEASE_DIR}, or has a [deploy] section: Programs and Proxy are
	// resolved from it for slots (slots.go). nil: Programs and Proxy are
	// what the file says.
	tmpl  *templates
	slots Slots
}

// Admin is the [admin] section.
type Admin struct {
	// Socket is the unix socket of the admin API. Default /run/hostctl/hostctl.sock.
	Socket string `toml:"socket"`
	// Group owns the socket (mode 0660) so its members can use the CLI.
	// Default: hostctl's group.
	Group string `toml:"group"`
	// Listen is an optional TCP address for the admin API and dashboard
	// (e.g. "127.0.0.1:9001"); it requires TokenFile. An address that is
	// not loopback requires TLS (TLS, or CertFile and KeyFile), or
	// Insecure.
	Listen string `toml:"listen"`
	// TokenFile holds the admin token, required on Listen. Like every
	// secret file, it must be owned by root (or hostctl's user) and not
	// writable by others (trust.ReadFile).
	TokenFile string `toml:"token_file" trust:"secret"`
	// ReadTokenFile holds a read-only token for Listen: status, logs,
	// metrics, alerts and XML-RPC's read methods, never a write. Optional.
	ReadTokenFile string `toml:"read_token_file" trust:"secret"`
	// TLS = "internal" serves Listen over TLS with a certificate signed by
	// hostctl's own CA, kept in StateDir/admin-tls (ca.crt is the file to
	// give clients). "" (default): TLS with CertFile and KeyFile if set,
	// else none.
	TLS string `toml:"tls"`
	// CertFile and KeyFile serve Listen over TLS with this certificate
	// (PEM, with its chain) and key; read again when they change.
	CertFile string `toml:"cert_file" trust:"config"`
	KeyFile  string `toml:"key_file" trust:"secret"`
	// Names are the host names Listen answers to in the Host header,
	// besides IP addresses, localhost and a name in Listen (and, with
	// TLS = "internal", the names its certificate is for): a request
	// naming another host is refused (DNS rebinding).
	Names HostNames `toml:"names"`
	// Insecure allows Listen without TLS on an address that is not
	// loopback: the tokens then cross the network in clear.
	Insecure bool `toml:"insecure"`
	// StateDir holds hostctl's state: process group records, the proxy's
	// certificates. Default /var/lib/hostctl.
	StateDir string `toml:"state_dir"`

	// Token and ReadToken are the contents of TokenFile and ReadTokenFile,
	// read once when the config is loaded (provision): the admin API
	// serves with these, never with a second read of the files. Never
	// printed or encoded.
	Token     string `toml:"-" json:"-"`
	ReadToken string `toml:"-" json:"-"`
}

// Default returns a File with every default set and no programs.
// Under $HOSTCTL_DATA_DIR, the socket, state and log dirs are there
// (datadir.go).
func Default() *File {
	f := &File{
		Admin:  Admin{Socket: apitype.DefaultSocket, StateDir: "/var/lib/hostctl"},
		Log:    logfile.DefaultConfig(),
		Alerts: alert.DefaultConfig(),
		Fleet:  fleet.DefaultConfig(),
	}
	f.applyDataDir()
	return f
}

// Load reads, decodes and validates path. On any problem it returns Errors
// listing every one. The file must be one that only root or hostctl's user
// can change (trust.ReadFile): root runs what it says.
func Load(path string) (*File, error) {
	data, _, err := trust.ReadFile(path, trust.Config)
	if te, ok := errors.AsType[*trust.Error](err); ok {
		// "FILE: refused: it is ...", or the directory at fault named.
		return nil, Errors{{File: path, Msg: "refused: " + strings.TrimPrefix(te.Error(), path+": ")}}
	}
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read the config: %v", supervisor.UnwrapPathErr(err))}}
	}
	return Parse(path, data)
}

// Parse decodes and validates data as the contents of path.
func Parse(path string, data []byte) (*File, error) {
	f := Default()
	f.Path = path
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, Errors{{File: path, Line: pe.Position.Line, Msg: "TOML syntax: " + pe.Message}}
		}
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	d := &decoder{md: md, file: path, lines: map[string]int{}, fixed: map[string]int{}, src: strings.Split(string(data), "\n"), defaults: map[reflect.Type]func() reflect.Value{
		reflect.TypeOf(supervisor.ProbeConfig{}):  func() reflect.Value { return reflect.ValueOf(supervisor.DefaultProbeConfig()) },
		reflect.TypeOf(supervisor.HealthConfig{}): func() reflect.Value { return reflect.ValueOf(supervisor.DefaultHealthConfig()) },
		reflect.TypeOf(alert.SinkConfig{}):        func() reflect.Value { return reflect.ValueOf(alert.DefaultSinkConfig()) },
		reflect.TypeOf(deploy.Step{}):             func() reflect.Value { return reflect.ValueOf(deploy.DefaultStep()) },
		reflect.TypeOf(alert.LogRule{}):           func() reflect.Value { return reflect.ValueOf(alert.DefaultLogRule()) },
	}}
	sections := map[string]func(toml.Primitive){
		"admin":  func(p toml.Primitive) { d.table(p, "admin", reflect.ValueOf(&f.Admin).Elem()) },
		"log":    func(p toml.Primitive) { d.table(p, "log", reflect.ValueOf(&f.Log).Elem()) },
		"alerts": func(p toml.Primitive) { d.table(p, "alerts", reflect.ValueOf(&f.Alerts).Elem()) },
		"fleet":  func(p toml.Primitive) { d.table(p, "fleet", reflect.ValueOf(&f.Fleet).Elem()) },
		"deploy": func(p toml.Primitive) {
			dc := deploy.DefaultConfig()
			f.Deploy = &dc
			d.table(p, "deploy", reflect.ValueOf(f.Deploy).Elem())
		},
		"proxy": func(p toml.Primitive) {
			f.Proxy = &proxy.Config{} // unset fields take proxy's defaults
			d.table(p, "proxy", reflect.ValueOf(f.Proxy).Elem())
		},
		"program": func(p toml.Primitive) {
			var progs map[string]toml.Primitive
			// A value that is not a table decodes into an empty map.
			if err := md.PrimitiveDecode(p, &progs); err != nil || !isTable(md, "program") {
				d.fail("program", d.lineOf(p), "must be tables like [program.NAME]")
				return
			}
			f.Programs = map[string]*supervisor.ProgramConfig{}
			for _, name := range slices.Sorted(maps.Keys(progs)) {
				pc := supervisor.DefaultProgramConfig(name)
				key := "program." + name
				d.lines[key] = d.lineOf(progs[name])
				d.table(progs[name], key, reflect.ValueOf(&pc).Elem())
				f.Programs[name] = &pc
			}
		},
		"check": func(p toml.Primitive) {
			var checks map[string]toml.Primitive
			if err := md.PrimitiveDecode(p, &checks); err != nil || !isTable(md, "check") {
				d.fail("check", d.lineOf(p), "must be tables like [check.NAME] with one of tcp, http, exec")
				return
			}
			f.Checks = map[string]*check.Config{}
			for _, name := range slices.Sorted(maps.Keys(checks)) {
				c := check.Default(name)
				key := "check." + name
				d.lines[key] = d.lineOf(checks[name])
				d.table(checks[name], key, reflect.ValueOf(&c).Elem())
				f.Checks[name] = &c
			}
		},
		"group": func(p toml.Primitive) {
			var groups map[string]toml.Primitive
			if err := md.PrimitiveDecode(p, &groups); err != nil || !isTable(md, "group") {
				d.fail("group", d.lineOf(p), "must be tables like [group.NAME] with programs = [...]")
				return
			}
			f.Groups = map[string]*supervisor.ProgramGroupConfig{}
			for _, name := range slices.Sorted(maps.Keys(groups)) {
				g := &supervisor.ProgramGroupConfig{Name: name}
				key := "group." + name
				d.lines[key] = d.lineOf(groups[name])
				d.table(groups[name], key, reflect.ValueOf(g).Elem())
				f.Groups[name] = g
			}
		},
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		fn, ok := sections[k]
		if !ok {
			known := map[string]int{}
			for s := range sections {
				known[s] = 0
			}
			d.fail(k, d.lineOf(top[k]), "unknown section%s", suggest(k, known))
			continue
		}
		fn(top[k])
	}
	// Provision and validate even after decode errors (bad keys keep their
	// defaults), so that one run reports every problem; a key reported
	// once is not reported again. Caddy's order: decode, provision
	// (defaults, the files read once), then a validate that reads nothing
	// already provisioned.
	decodeErrs := len(d.errs)
	// Validated as slot "a" would run, with [deploy] dir/current as
	// ${RELEASE_DIR}: a path in a release is checked when the program
	// starts, not here (there may be no release yet).
	f.keepTemplates(len(d.deployVarKeys) > 0)
	if f.tmpl != nil {
		f.resolve(Slots{})
	}
	f.provision(d)
	f.validate(d)
	if skip := f.releaseDirMachineKeys(); len(skip) > 0 {
		d.errs = slices.DeleteFunc(d.errs, func(e *Error) bool { return e.Machine && skip[e.Key] })
	}
	if len(d.errs) > 0 {
		seen := map[string]bool{}
		for _, e := range d.errs[:decodeErrs] {
			seen[e.Key] = true
		}
		out := d.errs[:decodeErrs]
		for _, e := range d.errs[decodeErrs:] {
			if !seen[e.Key] || e.Key == "" {
				out = append(out, e)
			}
		}
		sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
		return nil, out
	}
	for _, g := range f.Groups {
		for _, pn := range g.Programs {
			f.Programs[pn].ProgramGroup = g.Name
		}
	}
	f.Warnings = d.warns
	f.links = front.NewLinks(f.Processes())
	return f, nil
}

// provision fills what the sections derive from the file: the secrets
// they need, read once through the decoder (which checked each file's
// trust as its key was decoded), and their defaults.
func (f *File) provision(d *decoder) {
	var errs []error
	secret := func(key, path string) string {
		if path == "" {
			return ""
		}
		v, err := trust.ReadSecret(d.read, path)
		if err != nil {
			_, onMachine := errors.AsType[*trust.ReadError](err)
			d.fail(key, d.line(key), "%v", err)
			d.errs[len(d.errs)-1].Machine = onMachine
		}
		return v
	}
	f.Admin.Token = secret("admin.token_file", f.Admin.TokenFile)
	f.Admin.ReadToken = secret("admin.read_token_file", f.Admin.ReadTokenFile)
	errs = append(errs, f.Alerts.Provision("alerts", d.read)...)
	errs = append(errs, f.Fleet.Provision("fleet", d.read)...)
	if f.Deploy != nil {
		errs = append(errs, f.Deploy.Provision("deploy", f.Programs)...)
	}
	d.report(errs)
}

// validate runs every section's checks and adds file lines to their errors.
func (f *File) validate(d *decoder) {
	bad := func(key, format string, a ...any) { d.fail(key, d.line(key), format, a...) }
	validateDataDir(bad)
	if f.Admin.Socket == "" {
		bad("admin.socket", "must not be empty")
	} else if !filepath.IsAbs(f.Admin.Socket) {
		bad("admin.socket", "%q must be an absolute path", f.Admin.Socket)
	}
	if f.Admin.StateDir == "" || !filepath.IsAbs(f.Admin.StateDir) {
		bad("admin.state_dir", "%q must be an absolute path", f.Admin.StateDir)
	}
	if f.Admin.Listen != "" && f.Admin.TokenFile == "" {
		bad("admin.listen", "a TCP admin listener requires admin.token_file (a file holding a long random token)")
	}
	machine := func(key, format string, a ...any) {
		bad(key, format, a...)
		d.errs[len(d.errs)-1].Machine = true
	}
	f.Admin.validateTCP(bad)
	if f.Admin.Group != "" {
		if _, err := supervisor.LookupGroup(f.Admin.Group); err != nil {
			machine("admin.group", "%v", err)
		}
	}
	var errs []error
	errs = append(errs, f.Log.Validate("log")...)
	for _, name := range slices.Sorted(maps.Keys(f.Programs)) {
		errs = append(errs, f.Programs[name].Validate("program."+name)...)
	}
	errs = append(errs, f.logGroupWriters()...)
	errs = append(errs, supervisor.ValidatePrograms("program", f.Programs)...)
	errs = append(errs, f.validateSlots(d.deployVarKeys)...)
	errs = append(errs, supervisor.ValidateProgramGroups("group", f.Groups, f.Programs)...)
	if f.Proxy != nil {
		errs = append(errs, f.Proxy.Validate("proxy")...)
	}
	errs = append(errs, f.Alerts.Validate("alerts")...)
	errs = append(errs, f.validateChecks()...)
	errs = append(errs, f.Fleet.Validate("fleet")...)
	if f.Deploy != nil {
		errs = append(errs, f.Deploy.Validate("deploy")...)
	}
	// Which program serves which upstream: the proxy waits for it and
	// health_path answers by it (front.Check says when it is ambiguous).
	fr := front.Check(f.ProgramList(), f.Proxy)
	errs = append(errs, fr.Errors...)
	for _, w := range fr.Warnings {
		d.warns = append(d.warns, &Error{File: d.file, Line: d.line(w.Key), Key: w.Key, Msg: w.Msg})
	}
	f.Unserved = fr.Unserved
	d.report(errs)
}

// report adds the sections' errors, with their keys' lines: each a
// fieldError, or an error without a key.
func (d *decoder) report(errs []error) {
	bad := func(key, format string, a ...any) { d.fail(key, d.line(key), format, a...) }
	machine := func(key, format string, a ...any) {
		bad(key, format, a...)
		d.errs[len(d.errs)-1].Machine = true
	}
	for _, err := range errs {
		if fe, ok := errors.AsType[fieldError](err); ok {
			key, msg := fe.Field()
			if m, ok := err.(interface{ OnMachine() bool }); ok && m.OnMachine() {
				machine(key, "%s", msg)
			} else {
				bad(key, "%s", msg)
			}
			continue
		}
		d.fail("", 0, "%v", err)
	}
}

// fieldError is a problem at one key path. supervisor.FieldError,
// logfile.FieldError and proxy.FieldError implement it: each package owns
// its config and its errors, and supervisor and proxy do not import each
// other.
type fieldError interface {
	error
	Field() (key, msg string)
}

// A FieldError that stopped implementing fieldError would lose its line
// silently; these make it a compile error instead.
var (
	_ fieldError = (*supervisor.FieldError)(nil)
	_ fieldError = (*logfile.FieldError)(nil)
	_ fieldError = (*proxy.FieldError)(nil)
	_ fieldError = (*alert.FieldError)(nil)
	_ fieldError = (*fleet.FieldError)(nil)
	_ fieldError = (*deploy.FieldError)(nil)
	_ fieldError = (*front.Problem)(nil)
	_ fieldError = (*check.FieldError)(nil)
)

// OnlyMachine reports whether err (from Load or Parse) lists only
// problems with this machine (Error.Machine): users, groups, commands,
// directories and files that the config names and that are not here.
// The file itself is then right, for a machine that has them.
func OnlyMachine(err error) bool {
	es, ok := err.(Errors)
	if !ok || len(es) == 0 {
		return false
	}
	for _, e := range es {
		if !e.Machine {
			return false
		}
	}
	return true
}

// validateChecks checks each [check.NAME], and that no check has the name
// of a program or group (hostctl status NAME shows either).
func (f *File) validateChecks() []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(f.Checks)) {
		errs = append(errs, f.Checks[name].Validate("check."+name)...)
		_, prog := f.Programs[name]
		_, group := f.Groups[name]
		if prog || group {
			errs = append(errs, &check.FieldError{Key: "check." + name,
				Msg: fmt.Sprintf("%q is also the name of a program or group; give the check another name (hostctl status NAME shows either)", name)})
		}
	}
	return errs
}

// ProgramNames returns the program names, sorted.
func (f *File) ProgramNames() []string { return slices.Sorted(maps.Keys(f.Programs)) }

// Processes returns the config of every process (one per instance of
// each program), sorted by program name, then instance.
func (f *File) Processes() []*supervisor.ProcessConfig {
	var out []*supervisor.ProcessConfig
	for _, p := range f.ProgramList() {
		procs, err := p.Processes()
		if err != nil {
			continue // not in a validated File
		}
		out = append(out, procs...)
	}
	return out
}

// Links are which processes serve each proxy upstream (their serves key,
// or their ready probe): the proxy waits for them, health_path answers by
// them. Parse works them out once.
func (f *File) Links() front.Links {
	if f.links == nil {
		return front.NewLinks(f.Processes()) // a File not from Parse
	}
	return f.links
}

// ProgramList returns the programs sorted by name.
func (f *File) ProgramList() []*supervisor.ProgramConfig {
	out := make([]*supervisor.ProgramConfig, 0, len(f.Programs))
	for _, n := range slices.Sorted(maps.Keys(f.Programs)) {
		out = append(out, f.Programs[n])
	}
	return out
}

// isTable reports whether the top-level key is a table: "Hash" when
// written as one, "" when implied by [key.NAME] headers.
func isTable(md toml.MetaData, key string) bool {
	t := md.Type(key)
	return t == "Hash" || t == ""
}

// logGroupWriters refuses a program whose user is in a system group that
// may write a dir above a log dir (Ubuntu's /var/log is root:syslog
// 0775; logfile.CheckDir accepts that above the log dir): that user
// could replace the log dir and make root write where it likes.
func (f *File) logGroupWriters() []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(f.Programs)) {
		p := f.Programs[name]
		if p.User == "" {
			continue
		}
		u, err := user.Lookup(p.User)
		if err != nil {
			continue // program.NAME.user says so
		}
		ids, _ := u.GroupIds()
		ids = append(ids, u.Gid)
		dirs := []string{f.Log.Dir}
		for _, l := range []string{p.StdoutLog, p.StderrLog} {
			if filepath.IsAbs(l) {
				dirs = append(dirs, filepath.Dir(l))
			}
		}
		for _, dir := range dirs {
			for _, gid := range logfile.GroupWritableAbove(dir) {
				if slices.Contains(ids, strconv.FormatUint(uint64(gid), 10)) {
					errs = append(errs, &supervisor.FieldError{Key: "program." + name + ".user",
						Msg: fmt.Sprintf("%q is in group gid %d, which may write a dir above the log dir %s: the program could replace that log dir and make hostctl (root) write any file; run it as a user outside that group, or log elsewhere", p.User, gid, dir)})
				}
			}
		}
	}
	return errs
}

// The proxy reads the key, password and CA files a config names (at
// validation, and again when certificate files change); it believes them
// only under hostctl's rule for such files. Warnings (a secret every user
// can read) are reported by the config's own check of the same keys.
func init() {
	proxy.ReadTrusted = func(path string, secret bool) ([]byte, error) {
		kind := trust.Config
		if secret {
			kind = trust.Secret
		}
		b, _, err := trust.ReadFile(path, kind)
		return b, err
	}
}
