package importer

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/shlex"
)

// supervisordDefaults are the values of [program:x] options that
// supervisord 4.2 uses when they are not set (options.py,
// _processes_from_section) and that differ from hostctl's defaults.
const (
	defaultLogMaxBytes = 50 * 1024 * 1024 // "50MB", base 1024
	defaultPriority    = 999
)

// prog is one translated program, kept for what is decided across
// programs (priority, groups, eventlisteners).
type prog struct {
	super     string // supervisord program name
	name      string // hostctl program name
	sec       *section
	group     string // supervisord group: [group:x], else the program name
	priority  [2]int // group priority, program priority
	explicit  bool   // priority was set (on the program or its group)
	prioWhere string // where priority was set, for notes
	autostart bool
	oneShot   bool // autorestart=false: may exit for good
	instances int
	instStart int      // instance_start
	argv      []string // the translated command, ${INSTANCE} unexpanded
	memLimit  int64    // from memmon, 0 for none
}

func (im *importer) supervisord() error {
	ini := im.ini
	sd := ini.section("supervisord")
	if sd == nil {
		// A conf.d fragment (/etc/supervisor/conf.d/NAME.conf): Debian's
		// supervisor reads it through the [include] of its main file,
		// whose [supervisord] section is all defaults.
		sd = &iniSection{name: "supervisord", file: ini.files[0], keys: map[string]*iniValue{}}
		im.fragment = true
	}
	im.progs = map[string]*section{}
	im.progNames = map[string]string{}
	d := im.doc
	d.header = append(d.header,
		"hostctl config written by `hostctl import` from:",
	)
	for _, f := range ini.files {
		d.header = append(d.header, "  "+f)
	}
	if im.opts.Nginx != "" {
		d.header = append(d.header, "  "+im.opts.Nginx)
	}
	if im.fragment {
		d.header = append(d.header, "",
			"The file has no [supervisord] section: it was read as a conf.d fragment, the way",
			"Debian's supervisor reads /etc/supervisor/conf.d/*.conf through the [include] of",
			"/etc/supervisor/supervisord.conf, with supervisord's defaults for the rest.")
	}
	d.header = append(d.header, "",
		`Comments that start with "import:" mark each setting that could not be`,
		"translated exactly; `hostctl import` printed the same list. Read them, then",
		"run `hostctl check -c THIS_FILE`.",
		"",
		"What differs from supervisord for every program (README: \"Moving from",
		"supervisord and nginx\"):",
		"- stop_signal goes to the program's whole process group, then SIGKILL to the",
		"  group after stop_timeout (supervisord's stopasgroup = killasgroup = true).",
		"- a FATAL program is started again every fatal_retry (5m); supervisord left it",
		"  FATAL. Set fatal_retry = \"never\" for supervisord's behaviour.",
		"- failed starts wait 1s, 2s, 4s ... (jittered, up to 60s) between tries;",
		"  supervisord waited 1s, 2s, 3s ...",
		"- rotated logs are gzipped ([log] compress = true); set compress = false to",
		"  keep supervisord's plain NAME.log.1 files.",
		"- programs do not get SUPERVISOR_ENABLED, SUPERVISOR_PROCESS_NAME,",
		"  SUPERVISOR_GROUP_NAME or SUPERVISOR_SERVER_URL in their environment.",
	)
	for _, w := range ini.warnings {
		d.header = append(d.header, im.headerNote(im.rel(ini.files[0])+" [include] files", Approximated, "supervisord would warn: %s", w))
	}
	// hostctl passes programs an explicit environment (README: "How
	// programs are run"); supervisord passed its own whole.
	d.header = append(d.header, im.headerNote(im.rel(ini.files[0]), Approximated,
		"supervisord passed its whole environment to every program; hostctl passes a program its environment, "+
			"HOME, USER, LOGNAME and, of its own, only PATH, LANG, LANGUAGE, LC_*, TZ and TMPDIR: "+
			"add inherit_environment = true to a program that needs the rest (or name what it needs: [\"DJANGO_SETTINGS_MODULE\", \"AWS_*\"])"))
	admin := d.add("admin", false)
	logs := d.add("log", false)
	logs.set("max_size", tomlString("50MiB"), "supervisord's default logfile_maxbytes, 50MB = 52,428,800 bytes (its sizes are base 1024)")
	globalEnv, globalEnvVars, err := im.supervisordSection(sd, logs, admin)
	if err != nil {
		return err
	}
	im.serverSections(admin)

	// Groups first, as supervisord does: [group:x] takes its programs
	// out of their own homogeneous groups.
	inGroup := map[string]string{}
	groupPrio := map[string]int{}
	type groupOut struct {
		name    string
		sec     *iniSection
		members []string
	}
	var groups []groupOut
	for _, gs := range ini.sectionsWithPrefix("group:") {
		gname := strings.TrimPrefix(gs.name, "group:")
		if err := checkName(gname); err != nil {
			return fmt.Errorf("%s:%d: [%s]: %v", gs.file, gs.line, gs.name, err)
		}
		pv, ok := gs.get(ini, "programs")
		if !ok {
			return fmt.Errorf("%s:%d: [%s] has no programs= (supervisord refuses this file)", gs.file, gs.line, gs.name)
		}
		members, err := expandPy(pv.raw, pyVars{here: pv.here(), hostNodeName: im.opts.HostNodeName, env: globalEnvVars, envAsRef: true}, nil)
		if err != nil {
			return fmt.Errorf("%s:%d: [%s] programs: %v", pv.file, pv.line, gs.name, err)
		}
		var list []string
		for _, m := range strings.Split(members.literal(), ",") {
			m = strings.TrimSpace(m)
			if m == "" {
				continue
			}
			if ini.section("program:"+m) == nil {
				if ini.section("fcgi-program:"+m) != nil {
					im.note(im.where(pv, gs.name, "programs"), NotTranslated, "%s is an [fcgi-program:%s], which hostctl does not run", m, m)
					continue
				}
				return fmt.Errorf("%s:%d: [%s] names unknown program %s (supervisord refuses this file)", pv.file, pv.line, gs.name, m)
			}
			if prev, dup := inGroup[m]; dup {
				im.note(im.where(pv, gs.name, "programs"), Approximated, "program %s is also in [group:%s]; supervisord ran it twice, hostctl runs it once, in group %s", m, prev, prev)
				continue
			}
			inGroup[m] = gname
			list = append(list, m)
		}
		prio := defaultPriority
		if v, ok := gs.get(ini, "priority"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v.raw))
			if err != nil {
				return fmt.Errorf("%s:%d: [%s] priority: %q is not an integer", v.file, v.line, gs.name, v.raw)
			}
			prio = n
		}
		groupPrio[gname] = prio
		groups = append(groups, groupOut{name: gname, sec: gs, members: list})
	}

	var progs []*prog
	for _, ps := range ini.sectionsWithPrefix("program:") {
		super := strings.TrimPrefix(ps.name, "program:")
		group, grouped := inGroup[super]
		if !grouped {
			group = super
		}
		gp, ok := groupPrio[group]
		if !ok {
			gp = defaultPriority
		}
		p, err := im.program(ps, super, group, gp, globalEnv, globalEnvVars)
		if err != nil {
			return err
		}
		p.explicit = p.explicit || (grouped && groupPrio[group] != defaultPriority)
		progs = append(progs, p)
		im.programs++
	}
	byName := map[string]*prog{}
	for _, p := range progs {
		byName[p.super] = p
	}
	for _, g := range groups {
		var names []string
		for _, m := range g.members {
			names = append(names, byName[m].name)
		}
		gsec := d.add("group."+tomlKey(g.name), false, fmt.Sprintf("from [%s] (%s:%d)", g.sec.name, im.rel(g.sec.file), g.sec.line))
		gsec.set("programs", tomlStrings(names))
		im.groups++
		im.unused(g.sec, gsec)
	}
	// A program whose process_name differs from its name was a group of
	// one in supervisord (group = program name): keep that name.
	for _, p := range progs {
		if p.instances == 1 && p.name != p.super && p.group == p.super && d.find("group."+tomlKey(p.super)) == nil {
			gsec := d.add("group."+tomlKey(p.super), false, fmt.Sprintf("[program:%s] named its process %s: supervisord's name for it was %s:%s", p.super, p.name, p.super, p.name))
			gsec.set("programs", tomlStrings([]string{p.name}))
			im.groups++
		}
	}
	im.priorities(progs)
	im.progList = progs
	for _, es := range ini.sectionsWithPrefix("eventlistener:") {
		im.eventListener(es, byName, inGroup)
	}
	for _, name := range ini.order {
		s := ini.sections[name]
		switch {
		case name == "supervisord", name == "include", name == "supervisorctl",
			name == "unix_http_server", name == "inet_http_server",
			strings.HasPrefix(name, "program:"), strings.HasPrefix(name, "group:"),
			strings.HasPrefix(name, "eventlistener:"):
		case strings.HasPrefix(name, "rpcinterface:"):
			v, _ := s.get(ini, "supervisor.rpcinterface_factory")
			if name == "rpcinterface:supervisor" && v != nil && strings.TrimSpace(v.raw) == "supervisor.rpcinterface:make_main_rpcinterface" {
				// hostctl serves supervisord's XML-RPC API itself.
				im.unused(s, nil)
				continue
			}
			d.header = append(d.header, im.headerNote(fmt.Sprintf("%s:%d [%s]", im.rel(s.file), s.line, name), NotTranslated, "an XML-RPC plugin; hostctl serves only supervisord's own API"))
			im.markAll(s)
		default:
			d.header = append(d.header, im.headerNote(fmt.Sprintf("%s:%d [%s]", im.rel(s.file), s.line, name), NotTranslated, "hostctl has no equivalent of this section"))
			im.markAll(s)
		}
	}
	if inc := ini.section("include"); inc != nil {
		im.unused(inc, nil)
	}
	for _, k := range ini.defaults.order {
		if v := ini.defaults.keys[k]; !v.used {
			d.header = append(d.header, im.headerNote(im.where(v, "DEFAULT", k), NotTranslated, "%s = %s: a [DEFAULT] value that no translated option used", k, oneLine(v.raw)))
		}
	}
	return nil
}

// markAll marks every option of s as seen (the section is reported as a whole).
func (im *importer) markAll(s *iniSection) {
	for _, v := range s.keys {
		v.used = true
	}
}

// unused lists the options of s that nothing consumed, as comments in out.
func (im *importer) unused(s *iniSection, out *section) {
	for _, k := range s.order {
		v := s.keys[k]
		if v.used {
			continue
		}
		v.used = true
		c := im.note(im.where(v, s.name, k), NotTranslated, "%s = %s: hostctl has no equivalent", k, oneLine(v.raw))
		if out != nil {
			out.trailer = append(out.trailer, c)
		} else {
			im.doc.header = append(im.doc.header, "import: "+im.notes[len(im.notes)-1].String())
		}
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// checkName is supervisord's process_or_group_name.
func checkName(n string) error {
	if strings.ContainsAny(strings.TrimSpace(n), " :/") {
		return fmt.Errorf("invalid name %q (supervisord refuses a name with a space, ':' or '/')", n)
	}
	return nil
}

var validHostctlName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// hostctlName turns a supervisord name into a hostctl program name
// (letters, digits, '-', '_', '.').
func hostctlName(n string) string {
	if validHostctlName.MatchString(n) {
		return n
	}
	var b strings.Builder
	for _, r := range n {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// supervisordSection translates [supervisord]: childlogdir becomes
// [log] dir; environment goes into every program. It returns that
// environment as hostctl strings and as ENV_ expansions.
func (im *importer) supervisordSection(sd *iniSection, logs, admin *section) ([]envPair, map[string]expanded, error) {
	ini := im.ini
	vars := map[string]expanded{}
	var env []envPair
	if v, ok := sd.get(ini, "environment"); ok {
		e, err := expandPy(v.raw, pyVars{here: v.here(), hostNodeName: im.opts.HostNodeName, envAsRef: true}, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: [supervisord] environment: %v", v.file, v.line, err)
		}
		pairs, err := im.envPairs(e, v, "supervisord")
		if err != nil {
			return nil, nil, err
		}
		for _, p := range pairs {
			env = append(env, p.pair)
			vars[p.pair.key] = p.value
		}
	}
	get := func(key string) (string, *iniValue, error) {
		v, ok := sd.get(ini, key)
		if !ok {
			return "", nil, nil
		}
		e, err := expandPy(v.raw, pyVars{here: v.here(), hostNodeName: im.opts.HostNodeName, env: vars, envAsRef: true}, nil)
		if err != nil {
			return "", nil, fmt.Errorf("%s:%d: [supervisord] %s: %v", v.file, v.line, key, err)
		}
		return e.hostctl(), v, nil
	}
	if dir, v, err := get("childlogdir"); err != nil {
		return nil, nil, err
	} else if v != nil {
		if d := absFrom(dir, v.here()); sharedTempDir(d) {
			logs.set("dir", tomlString(d), im.note(im.where(v, "supervisord", "childlogdir"), Approximated, "childlogdir = %s: %s", d, sharedTempWhy(d, "/var/log/hostctl (the default [log] dir)"))).commented = true
		} else {
			logs.set("dir", tomlString(d), "from [supervisord] childlogdir: AUTO program logs are now <dir>/NAME.out.log and NAME.err.log")
		}
	}
	if lf, v, err := get("logfile"); err != nil {
		return nil, nil, err
	} else if v != nil {
		logs.set("file", "true", im.note(im.where(v, "supervisord", "logfile"), Approximated,
			"supervisord's own log was %s; hostctl logs to stderr (the journal under systemd) and, with file = true, to <log.dir>/hostctl.log", lf))
	}
	if u, v, err := get("umask"); err != nil {
		return nil, nil, err
	} else if v != nil {
		im.doc.header = append(im.doc.header, im.headerNote(im.where(v, "supervisord", "umask"), Approximated,
			"umask %s applied to supervisord and so to every program; hostctl sets umask per program: it is set on each program without its own", u))
		im.globalUmask = u
	}
	// The rest of [supervisord] is about supervisord itself.
	for _, k := range sd.order {
		v := sd.keys[k]
		if v.used {
			continue
		}
		v.used = true
		msg := "hostctl has no equivalent"
		switch k {
		case "logfile_maxbytes", "logfile_backups":
			msg = "hostctl's own log rotates with [log] max_size and max_backups when [log] file = true"
		case "loglevel":
			msg = "use `hostctl run --log-level`"
		case "pidfile", "nodaemon", "silent":
			msg = "hostctl runs in the foreground under systemd (Type=notify); there is no pid file"
		case "minfds", "minprocs":
			msg = "set LimitNOFILE= / LimitNPROC= in hostctl's systemd unit"
		case "user":
			msg = "hostctl runs as the user its systemd unit names"
		case "directory":
			msg = "set WorkingDirectory= in hostctl's systemd unit, or directory on each program"
		case "identifier":
			msg = "hostctl answers supervisor.getIdentification with its own name"
		case "nocleanup":
			msg = "hostctl's log directory is not cleaned of AUTO logs"
		}
		im.doc.header = append(im.doc.header, im.headerNote(im.where(v, "supervisord", k), NotTranslated, "%s = %s: %s", k, oneLine(v.raw), msg))
	}
	return env, vars, nil
}

// serverSections translates [unix_http_server] and [inet_http_server]
// into [admin], and reports [supervisorctl].
func (im *importer) serverSections(admin *section) {
	ini := im.ini
	pv := pyVars{hostNodeName: im.opts.HostNodeName, envAsRef: true}
	val := func(s *iniSection, key string) (string, *iniValue) {
		v, ok := s.get(ini, key)
		if !ok {
			return "", nil
		}
		pv.here = v.here()
		e, err := expandPy(v.raw, pv, nil)
		if err != nil {
			admin.trailer = append(admin.trailer, im.note(im.where(v, s.name, key), NotTranslated, "%v (supervisord refuses it); the value is used as written", err))
			return v.raw, v
		}
		return e.hostctl(), v
	}
	if s := ini.section("unix_http_server"); s != nil {
		if f, v := val(s, "file"); v != nil {
			admin.set("socket", tomlString(absFrom(f, v.here())), fmt.Sprintf("from [unix_http_server] file: supervisorctl -s unix://%s keeps working (see README: \"supervisorctl and supervisord's XML-RPC API\")", absFrom(f, v.here())))
		}
		if c, v := val(s, "chmod"); v != nil {
			admin.trailer = append(admin.trailer, im.note(im.where(v, s.name, "chmod"), Approximated,
				"chmod %s: hostctl's socket is 0660 (a directory it creates for it, 0750); who may use it is set with group", c))
		}
		if c, v := val(s, "chown"); v != nil {
			_, grp, ok := strings.Cut(c, ":")
			if ok && grp != "" {
				admin.set("group", tomlString(grp), im.note(im.where(v, s.name, "chown"), Approximated,
					"chown %s: the socket's group is %s; its owner is the user hostctl runs as", c, grp))
			} else {
				admin.trailer = append(admin.trailer, im.note(im.where(v, s.name, "chown"), NotTranslated,
					"chown %s: the socket belongs to the user hostctl runs as; set group to let others use it", c))
			}
		}
		for _, k := range []string{"username", "password"} {
			if _, v := val(s, k); v != nil {
				admin.trailer = append(admin.trailer, im.note(im.where(v, s.name, k), NotTranslated,
					"%s: the unix socket is protected by file permissions only (group), as hostctl's CLI uses it", k))
			}
		}
		im.unused(s, admin)
	}
	if s := ini.section("inet_http_server"); s != nil {
		port, v := val(s, "port")
		if v != nil {
			host, p, found := strings.Cut(port, ":")
			if !found {
				host, p = "", port
			}
			if host == "*" {
				host = ""
			}
			listen := host + ":" + p
			_, pw := val(s, "password")
			_, user := val(s, "username")
			c := []string{
				fmt.Sprintf("from [inet_http_server] port = %s. The TCP admin listener needs a token file", port),
				"(at least 16 characters); supervisorctl and XML-RPC clients send it as the",
				"HTTP Basic password (the user name is not checked). Create it, then uncomment:",
				"  openssl rand -hex 32 > /etc/hostctl/admin.token; chmod 600 /etc/hostctl/admin.token",
				"and give the same token to [supervisorctl] password and to your monitoring.",
			}
			c = append(c, im.note(im.where(v, s.name, "port"), Approximated, "the TCP admin listener %s is written commented out: it needs a token file, which import does not create", listen))
			if pw != nil {
				c = append(c, im.note(im.where(pw, s.name, "password"), NotTranslated, "supervisord's password is not copied into a token file; the token replaces it"))
			}
			if user != nil {
				c = append(c, im.note(im.where(user, s.name, "username"), NotTranslated, "the user name is not checked by hostctl"))
			}
			e := admin.set("listen", tomlString(listen), c...)
			e.commented = true
			admin.entries = append(admin.entries, entry{key: "token_file", value: tomlString("/etc/hostctl/admin.token"), commented: true})
		}
		im.unused(s, admin)
	}
	if s := ini.section("supervisorctl"); s != nil {
		for _, k := range s.order {
			v := s.keys[k]
			v.used = true
			admin.trailer = append(admin.trailer, im.note(im.where(v, s.name, k), NotTranslated,
				"%s = %s: a supervisorctl client setting; supervisorctl keeps reading it and works against hostctl", k, oneLine(v.raw)))
		}
	}
}

// absFrom makes p absolute against dir (supervisord's paths are used as
// given; a relative one was relative to supervisord's working directory).
func absFrom(p, dir string) string {
	if p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "$") {
		return p
	}
	return filepath.Join(dir, p)
}

// envOut is one translated environment variable.
type envOut struct {
	pair  envPair // value as a hostctl string
	value expanded
}

// envPairs parses an expanded environment= value. References stay
// references: each KEY=VALUE is parsed on the text with references as
// placeholders, which parse as one word.
func (im *importer) envPairs(e expanded, v *iniValue, section string) ([]envOut, error) {
	// Placeholders made of word characters stand for the references while
	// the text is tokenized, then are put back.
	var text strings.Builder
	refs := map[string]string{}
	for i, s := range e {
		if s.ref != "" {
			ph := fmt.Sprintf("HOSTCTLREF%dX", i)
			refs[ph] = s.ref
			text.WriteString(ph)
		} else {
			text.WriteString(s.text)
		}
	}
	pairs, err := parseSupervisordEnv(text.String())
	if err != nil {
		return nil, fmt.Errorf("%s:%d: [%s] environment: %v", v.file, v.line, section, err)
	}
	out := make([]envOut, 0, len(pairs))
	for _, p := range pairs {
		var val expanded
		rest := p.value
		for rest != "" {
			i := strings.Index(rest, "HOSTCTLREF")
			if i < 0 {
				val = append(val, seg{text: rest})
				break
			}
			j := strings.IndexByte(rest[i:], 'X')
			ph := rest[i : i+j+1]
			ref, ok := refs[ph]
			if !ok {
				val = append(val, seg{text: rest[:i+10]})
				rest = rest[i+10:]
				continue
			}
			if i > 0 {
				val = append(val, seg{text: rest[:i]})
			}
			val = append(val, seg{ref: ref})
			rest = rest[i+j+1:]
		}
		out = append(out, envOut{pair: envPair{key: p.key, value: val.hostctl()}, value: val})
	}
	return out, nil
}

// program translates one [program:x].
func (im *importer) program(ps *iniSection, super, group string, groupPriority int, globalEnv []envPair, globalVars map[string]expanded) (*prog, error) {
	ini := im.ini
	if err := checkName(super); err != nil {
		return nil, fmt.Errorf("%s:%d: [%s]: %v", ps.file, ps.line, ps.name, err)
	}
	fail := func(v *iniValue, key, format string, a ...any) error {
		return fmt.Errorf("%s:%d: [%s] %s: %s", v.file, v.line, ps.name, key, fmt.Sprintf(format, a...))
	}
	raw := func(key string) (*iniValue, bool) { return ps.get(ini, key) }
	intOpt := func(key string, def int) (int, *iniValue, error) {
		v, ok := raw(key)
		if !ok {
			return def, nil, nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(v.raw))
		if err != nil {
			return 0, v, fail(v, key, "%q is not an integer (supervisord refuses it)", v.raw)
		}
		return n, v, nil
	}
	var numprocsNote string
	if v, ok := raw("numprocs"); ok && strings.Contains(v.raw, "%(ENV_") {
		// supervisord reads it from its environment when it starts;
		// hostctl's instances is a number in the file.
		e, err := expandPy(v.raw, pyVars{here: v.here(), hostNodeName: im.opts.HostNodeName}, nil)
		if n, nerr := strconv.Atoi(strings.TrimSpace(e.literal())); err == nil && nerr == nil {
			numprocsNote = numprocsNotef(im, v, ps.name, Approximated, "numprocs = %s: supervisord read it from its environment when it started; it is %d, as import found it in its own environment", strings.TrimSpace(v.raw), n)
			v.raw = strconv.Itoa(n)
		} else {
			numprocsNote = numprocsNotef(im, v, ps.name, NotTranslated, "numprocs = %s: supervisord read it from its environment when it started, which import cannot see (set the variable when you run import, or set instances here); one instance", strings.TrimSpace(v.raw))
			v.raw = "1"
		}
	}
	numprocs, _, err := intOpt("numprocs", 1)
	if err != nil {
		return nil, err
	}
	start, startV, err := intOpt("numprocs_start", 0)
	if err != nil {
		return nil, err
	}
	p := &prog{super: super, group: group, instances: numprocs, instStart: start, autostart: true}
	vars := pyVars{hostNodeName: im.opts.HostNodeName, programName: super, groupName: group, numprocs: numprocs, envAsRef: true}
	if numprocs == 1 {
		vars.processNum = &start
	}
	var noteLines []string
	var approxNotes []string
	notef := func(v *iniValue, key, kind, format string, a ...any) string {
		return im.note(im.where(v, ps.name, key), kind, format, a...)
	}
	// exp expands an option with supervisord's names.
	exp := func(v *iniValue, key string, vs pyVars) (expanded, error) {
		vs.here = v.here()
		e, err := expandPy(v.raw, vs, func(msg string) { approxNotes = append(approxNotes, notef(v, key, Approximated, "%s", msg)) })
		if err != nil {
			return nil, fail(v, key, "%v", err)
		}
		return e, nil
	}

	// process_name, numprocs
	nameV, hasName := raw("process_name")
	p.name = hostctlName(super)
	var processName expanded
	if hasName {
		if numprocs > 1 && !strings.Contains(nameV.raw, "%(process_num)") {
			return nil, fail(nameV, "process_name", "%%(process_num) must be present within process_name when numprocs > 1 (supervisord refuses it)")
		}
		vs := vars
		if numprocs > 1 {
			vs.nameRef = true
		}
		processName, err = exp(nameV, "process_name", vs)
		if err != nil {
			return nil, err
		}
		if numprocs == 1 {
			pn := processName.literal()
			if err := checkName(pn); err != nil {
				return nil, fail(nameV, "process_name", "%v", err)
			}
			p.name = hostctlName(pn)
		}
	} else if numprocs > 1 {
		return nil, fmt.Errorf("%s:%d: [%s]: %%(process_num) must be present within process_name when numprocs > 1 (supervisord refuses it)", ps.file, ps.line, ps.name)
	}
	if want := p.wantName(hasName, processName, numprocs); want != p.name {
		noteLines = append(noteLines, notef(&iniValue{file: ps.file, line: ps.line}, "", Approximated,
			"the name %q has characters hostctl does not allow in a program name; it is %q here", want, p.name))
	}
	if taken := im.progNames[p.name]; taken != "" {
		base := p.name
		for i := 2; im.progNames[p.name] != ""; i++ {
			p.name = fmt.Sprintf("%s_%d", base, i)
		}
		noteLines = append(noteLines, notef(&iniValue{file: ps.file, line: ps.line}, "", Approximated,
			"the name %q is already [%s]'s; this program is %q here", base, taken, p.name))
	}
	im.progNames[p.name] = ps.name
	s := im.doc.add("program."+tomlKey(p.name), false, fmt.Sprintf("from [%s] (%s:%d)", ps.name, im.rel(ps.file), ps.line))
	s.comments = append(s.comments, noteLines...)
	if numprocsNote != "" {
		s.comments = append(s.comments, numprocsNote)
	}
	im.progs[super] = s
	p.sec = s

	// environment: [supervisord]'s, then the program's; its values are
	// ENV_ names for the options that follow.
	env := append([]envPair{}, globalEnv...)
	envVars := map[string]expanded{}
	for k, v := range globalVars {
		envVars[k] = v
	}
	vars.env = envVars // [supervisord]'s variables are ENV_ names in environment= too
	if v, ok := raw("environment"); ok {
		e, err := exp(v, "environment", vars)
		if err != nil {
			return nil, err
		}
		pairs, err := im.envPairs(e, v, ps.name)
		if err != nil {
			return nil, err
		}
		for _, pr := range pairs {
			envVars[pr.pair.key] = pr.value
			replaced := false
			for i := range env {
				if env[i].key == pr.pair.key {
					env[i] = pr.pair
					replaced = true
				}
			}
			if !replaced {
				env = append(env, pr.pair)
			}
		}
	}
	vars.env = envVars
	str := func(key string) (expanded, *iniValue, error) {
		v, ok := raw(key)
		if !ok {
			return nil, nil, nil
		}
		e, err := exp(v, key, vars)
		return e, v, err
	}

	// command
	cmdE, cmdV, err := str("command")
	if err != nil {
		return nil, err
	}
	if cmdV == nil {
		return nil, fmt.Errorf("%s:%d: program section %s does not specify a command (supervisord refuses it)", ps.file, ps.line, ps.name)
	}
	argv, err := posixSplit(cmdE.hostctl())
	if err != nil {
		return nil, fail(cmdV, "command", "%v (supervisord could not start it)", err)
	}
	if len(argv) == 0 {
		return nil, fail(cmdV, "command", "is empty")
	}
	p.argv = argv
	cmdComments := approxNotes
	approxNotes = nil
	if strings.Contains(argv[0], "/") && !filepath.IsAbs(argv[0]) && !strings.HasPrefix(argv[0], "$") {
		cmdComments = append(cmdComments, notef(cmdV, "command", Approximated,
			"%s is relative: supervisord looked for it from its own working directory, hostctl from the program's directory", argv[0]))
	}
	// Continuation lines are part of the command: one line reads better.
	if cmdString := strings.ReplaceAll(cmdE.hostctl(), "\n", " "); sameSplit(cmdString, argv) {
		s.set("command", tomlString(cmdString), cmdComments...)
	} else {
		s.set("command", tomlStrings(argv), append(cmdComments, "an array: the string would split differently in hostctl (shell-style quotes and # comments)")...)
	}
	if numprocs > 1 {
		s.set("instances", strconv.Itoa(numprocs), fmt.Sprintf("numprocs = %d: instance processes %s", numprocs, processName.literal()))
		if start != 0 {
			s.set("instance_start", strconv.Itoa(start))
		}
		s.set("process_name", tomlString(processName.hostctl()), approxNotes...)
		approxNotes = nil
	} else if startV != nil {
		startV.used = true
	}
	if v, ok := raw("numprocs"); ok && numprocs == 1 {
		v.used = true
	}
	if v, ok := raw("directory"); ok {
		e, err := exp(v, "directory", vars)
		if err != nil {
			return nil, err
		}
		dir := e.hostctl()
		if strings.HasPrefix(dir, "~") {
			approxNotes = append(approxNotes, notef(v, "directory", Approximated, "~ is not expanded by hostctl; write the home directory"))
		}
		s.set("directory", tomlString(dir), approxNotes...)
		approxNotes = nil
	}
	if v, ok := raw("user"); ok {
		e, err := exp(v, "user", vars)
		if err != nil {
			return nil, err
		}
		s.set("user", tomlString(e.hostctl()))
	}
	if v, ok := raw("umask"); ok {
		n, err := strconv.ParseUint(strings.TrimSpace(v.raw), 8, 32)
		if err != nil {
			return nil, fail(v, "umask", "%q can not be converted to an octal type (supervisord refuses it)", v.raw)
		}
		s.set("umask", tomlString(fmt.Sprintf("%03o", n)))
	} else if im.globalUmask != "" {
		s.set("umask", tomlString(im.globalUmask), "from [supervisord] umask")
	}
	if len(env) > 0 {
		var parts []string
		for _, e := range env {
			parts = append(parts, tomlKey(e.key)+" = "+tomlString(e.value))
		}
		s.set("environment", "{ "+strings.Join(parts, ", ")+" }")
	}
	if v, ok := raw("autostart"); ok {
		b, err := pyBool(v.raw)
		if err != nil {
			return nil, fail(v, "autostart", "%v", err)
		}
		p.autostart = b
		s.set("autostart", strconv.FormatBool(b))
	}
	// autorestart: supervisord's default is "unexpected", hostctl's "always".
	restart := "unexpected"
	if v, ok := raw("autorestart"); ok {
		restart = strings.ToLower(strings.TrimSpace(v.raw))
		switch {
		case slices.Contains([]string{"yes", "true", "on", "1"}, restart):
			restart = "true"
		case slices.Contains([]string{"no", "false", "off", "0"}, restart):
			restart = "false"
		case restart == "unexpected":
		default:
			return nil, fail(v, "autorestart", "invalid value %q (supervisord refuses it)", v.raw)
		}
	}
	switch restart {
	case "true":
		s.set("autorestart", tomlString("always"))
	case "false":
		s.set("autorestart", tomlString("never"))
		p.oneShot = true
	default:
		s.set("autorestart", tomlString("on-failure"), "supervisord's autorestart = unexpected (its default): restart when the exit code is not in exit_codes")
	}
	if v, ok := raw("exitcodes"); ok {
		var codes []string
		for _, c := range strings.Split(v.raw, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(c))
			if err != nil || n < 0 || n > 255 {
				return nil, fail(v, "exitcodes", "not a valid list of exit codes: %q (supervisord refuses it)", v.raw)
			}
			codes = append(codes, strconv.Itoa(n))
		}
		if strings.TrimSpace(v.raw) == "" {
			codes = nil
		}
		s.set("exit_codes", "["+strings.Join(codes, ", ")+"]")
	}
	if n, v, err := intOpt("startsecs", 1); err != nil {
		return nil, err
	} else if v != nil {
		s.set("start_secs", tomlString(fmt.Sprintf("%ds", n)))
	}
	if n, v, err := intOpt("startretries", 3); err != nil {
		return nil, err
	} else if v != nil {
		s.set("start_retries", strconv.Itoa(n))
	}
	if v, ok := raw("stopsignal"); ok {
		sig, err := signalName(v.raw)
		if err != nil {
			return nil, fail(v, "stopsignal", "%v", err)
		}
		s.set("stop_signal", tomlString(sig))
	}
	if n, v, err := intOpt("stopwaitsecs", 10); err != nil {
		return nil, err
	} else if v != nil {
		if n <= 0 {
			s.set("stop_timeout", tomlString("1s"), notef(v, "stopwaitsecs", Approximated, "stopwaitsecs = %d: hostctl waits at least a moment before SIGKILL; 1s here", n))
		} else {
			s.set("stop_timeout", tomlString(fmt.Sprintf("%ds", n)))
		}
	}
	stopAs, killAs := false, false
	if v, ok := raw("stopasgroup"); ok {
		if stopAs, err = pyBool(v.raw); err != nil {
			return nil, fail(v, "stopasgroup", "%v", err)
		}
		if !stopAs {
			s.comments = append(s.comments, notef(v, "stopasgroup", Approximated, "stopasgroup = false: hostctl sends stop_signal to the whole process group"))
		}
	}
	if v, ok := raw("killasgroup"); ok {
		if killAs, err = pyBool(v.raw); err != nil {
			return nil, fail(v, "killasgroup", "%v", err)
		}
		if stopAs && !killAs {
			return nil, fail(v, "killasgroup", "cannot set stopasgroup=true and killasgroup=false (supervisord refuses it)")
		}
		if !killAs {
			s.comments = append(s.comments, notef(v, "killasgroup", Approximated, "killasgroup = false: hostctl sends SIGKILL to the whole process group"))
		}
	}
	redirect := false
	if v, ok := raw("redirect_stderr"); ok {
		if redirect, err = pyBool(v.raw); err != nil {
			return nil, fail(v, "redirect_stderr", "%v", err)
		}
		if redirect {
			s.set("redirect_stderr", "true")
		}
	}
	if err := im.programLogs(ps, s, p, vars, redirect, exp, notef); err != nil {
		return nil, err
	}
	// priority is placed once every program is known (priorities).
	if n, v, err := intOpt("priority", defaultPriority); err != nil {
		return nil, err
	} else {
		p.priority = [2]int{groupPriority, n}
		p.explicit = v != nil && n != defaultPriority
		p.prioWhere = fmt.Sprintf("%s:%d [%s] priority", im.rel(ps.file), ps.line, ps.name)
		if v != nil {
			p.prioWhere = im.where(v, ps.name, "priority")
		}
	}
	for _, k := range []string{"stdout_capture_maxbytes", "stderr_capture_maxbytes", "stdout_events_enabled", "stderr_events_enabled"} {
		if v, ok := raw(k); ok {
			s.trailer = append(s.trailer, notef(v, k, NotTranslated, "%s = %s: hostctl has no process communication events (and no event listeners)", k, oneLine(v.raw)))
		}
	}
	if v, ok := raw("serverurl"); ok {
		s.trailer = append(s.trailer, notef(v, "serverurl", NotTranslated, "serverurl = %s: hostctl does not set SUPERVISOR_SERVER_URL", oneLine(v.raw)))
	}
	im.unused(ps, s)
	return p, nil
}

// programLogs translates stdout_logfile, stderr_logfile and their
// rotation settings.
func (im *importer) programLogs(ps *iniSection, s *section, p *prog, vars pyVars, redirect bool,
	exp func(*iniValue, string, pyVars) (expanded, error), notef func(*iniValue, string, string, string, ...any) string) error {
	ini := im.ini
	var maxBytes [2]int64
	var maxBytesV [2]*iniValue
	var backups [2]int
	var backupsV [2]*iniValue
	var console [2]bool // the stream goes to hostctl's stdout or stderr
	for i, stream := range []string{"stdout", "stderr"} {
		key := stream + "_logfile"
		hkey := map[string]string{"stdout": "stdout_log", "stderr": "stderr_log"}[stream]
		maxBytes[i], backups[i] = defaultLogMaxBytes, 10
		if v, ok := ps.get(ini, key+"_maxbytes"); ok {
			n, err := byteSize(v.raw)
			if err != nil {
				return fmt.Errorf("%s:%d: [%s] %s_maxbytes: %v", v.file, v.line, ps.name, key, err)
			}
			maxBytes[i], maxBytesV[i] = n, v
		}
		if v, ok := ps.get(ini, key+"_backups"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v.raw))
			if err != nil {
				return fmt.Errorf("%s:%d: [%s] %s_backups: %q is not an integer (supervisord refuses it)", v.file, v.line, ps.name, key, v.raw)
			}
			backups[i], backupsV[i] = n, v
		}
		if v, ok := ps.get(ini, stream+"_syslog"); ok {
			if b, _ := pyBool(v.raw); b {
				s.trailer = append(s.trailer, notef(v, stream+"_syslog", NotTranslated, "%s_syslog = true: hostctl writes logs to files only", stream))
			}
		}
		v, ok := ps.get(ini, key)
		if !ok {
			continue // AUTO: hostctl's default path
		}
		if stream == "stderr" && redirect {
			if l := strings.ToLower(strings.TrimSpace(v.raw)); l != "auto" && l != "none" && l != "off" {
				s.trailer = append(s.trailer, notef(v, key, Approximated, "redirect_stderr = true: supervisord ignored this stderr_logfile, and so does hostctl"))
			}
			continue
		}
		e, err := exp(v, key, vars)
		if err != nil {
			return err
		}
		val := e.hostctl()
		if c := consoleLog(val); c != "" {
			// A container's logs: the program's lines go to hostctl's own
			// stdout or stderr, where supervisord wrote them unrotated
			// (logfile_maxbytes = 0, as it requires for these files).
			console[i] = true
			if c == "/dev/"+stream {
				c = "-"
			}
			s.set(hkey, tomlString(c), fmt.Sprintf("%s = %s: hostctl writes the lines to its own %s, each prefixed with the process name", key, strings.TrimSpace(v.raw), strings.TrimPrefix(consoleLog(val), "/dev/")))
			continue
		}
		switch strings.ToLower(val) {
		case "auto":
			// hostctl's default path: nothing to write.
			s.trailer = append(s.trailer, fmt.Sprintf("%s = AUTO: hostctl's default, <log.dir>/%s", key, map[string]string{"stdout": "NAME.out.log", "stderr": "NAME.err.log"}[stream]))
		case "none", "off":
			s.set(hkey, tomlString("none"))
		case "syslog":
			s.trailer = append(s.trailer, notef(v, key, NotTranslated, "%s = syslog: hostctl writes logs to files only; it uses its default file", key))
		default:
			var c []string
			if !filepath.IsAbs(val) && !strings.HasPrefix(val, "$") {
				c = append(c, notef(v, key, Approximated, "%q is relative: supervisord opened it from its own working directory; it is made absolute from the config file's directory", val))
				val = absFrom(val, v.here())
			}
			if d := filepath.Dir(val); sharedTempDir(d) {
				s.trailer = append(s.trailer, notef(v, key, Approximated, "%s = %s: %s", key, val, sharedTempWhy(d, "<log.dir>/"+map[string]string{"stdout": "NAME.out.log", "stderr": "NAME.err.log"}[stream])))
				continue
			}
			if p.instances > 1 && !strings.Contains(val, "${INSTANCE}") {
				shared := val
				val = instancePath(val)
				c = append(c, notef(v, key, Approximated, "supervisord's %d instances all wrote %s; hostctl opens a log file for one process only, so each instance writes its own: %s", p.instances, shared, val))
			}
			s.set(hkey, tomlString(val), c...)
		}
	}
	// One file for both streams (a common celery example): supervisord
	// opened it twice and both wrote into it; hostctl sends stderr into
	// the stdout log, which is the same file, written by one writer.
	if out, errLog := s.get("stdout_log"), s.get("stderr_log"); out != nil && errLog != nil && out.value == errLog.value && out.value != tomlString("none") && !console[0] {
		v, _ := ps.get(ini, "stderr_logfile")
		s.entries = slices.DeleteFunc(s.entries, func(e entry) bool { return e.key == "stderr_log" && !e.commented })
		s.set("redirect_stderr", "true", notef(v, "stderr_logfile", Approximated, "stdout_logfile and stderr_logfile are the same file, %s: supervisord wrote both streams into it; here stderr goes into the stdout log (redirect_stderr)", out.value))
		redirect = true
	}
	// Rotation does not apply to hostctl's stdout and stderr: the sizes
	// of those streams were read, and are not compared with the other.
	for i := range console {
		if console[i] {
			maxBytes[i], maxBytesV[i], backups[i], backupsV[i] = maxBytes[1-i], nil, backups[1-i], nil
		}
	}
	// hostctl has one rotation setting per program for both streams.
	mb, mbV := maxBytes[0], maxBytesV[0]
	if mbV == nil || (maxBytesV[1] != nil && maxBytes[1] > mb) {
		mb, mbV = maxBytes[1], maxBytesV[1]
	}
	if mbV != nil {
		var c []string
		if maxBytes[0] != maxBytes[1] && !redirect {
			c = append(c, notef(mbV, "logfile_maxbytes", Approximated, "stdout and stderr rotated at different sizes (%d, %d bytes); hostctl has one size per program: the larger", maxBytes[0], maxBytes[1]))
		}
		if mb == 0 {
			c = append(c, notef(mbV, "logfile_maxbytes", Approximated, "0 turned rotation off; hostctl always rotates, at [log] max_size"))
		} else if mb != defaultLogMaxBytes {
			s.set("max_size", tomlString(sizeString(mb)), append(c, fmt.Sprintf("supervisord's %s = %d bytes (base 1024)", strings.TrimSpace(mbV.raw), mb))...)
			c = nil
		}
		if len(c) > 0 {
			s.comments = append(s.comments, c...)
		}
	}
	bk, bkV := backups[0], backupsV[0]
	if bkV == nil || (backupsV[1] != nil && backups[1] > bk) {
		bk, bkV = backups[1], backupsV[1]
	}
	if bkV != nil {
		var c []string
		if backups[0] != backups[1] && !redirect {
			c = append(c, notef(bkV, "logfile_backups", Approximated, "stdout and stderr kept different numbers of backups (%d, %d); hostctl has one per program: the larger", backups[0], backups[1]))
		}
		switch {
		case bk == 0:
			s.set("max_backups", "1", append(c, notef(bkV, "logfile_backups", Approximated, "0 kept no rotated file (the log was truncated); hostctl's 0 would keep them all, so 1"))...)
		case bk != 10:
			s.set("max_backups", strconv.Itoa(bk), c...)
		default:
			if len(c) > 0 {
				s.comments = append(s.comments, c...)
			}
		}
	}
	return nil
}

// numprocsNotef records a note about numprocs (v) of section sec and returns its
// comment line.
func numprocsNotef(im *importer, v *iniValue, sec, kind, format string, a ...any) string {
	return im.note(im.where(v, sec, "numprocs"), kind, format, a...)
}

// consoleLog returns the hostctl log value for a supervisord log file
// that is supervisord's own stdout or stderr ("/dev/stdout",
// "/dev/stderr"), "" for any other file.
func consoleLog(p string) string {
	switch p {
	case "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1":
		return "/dev/stdout"
	case "/dev/stderr", "/dev/fd/2", "/proc/self/fd/2":
		return "/dev/stderr"
	}
	return ""
}

// instancePath puts "-${INSTANCE}" into a log path, before its extension:
// /var/log/worker.log becomes /var/log/worker-${INSTANCE}.log.
func instancePath(p string) string {
	dir, base := filepath.Split(p)
	ext := filepath.Ext(base)
	if ext == base {
		ext = ""
	}
	return dir + strings.TrimSuffix(base, ext) + "-${INSTANCE}" + ext
}

// wantName is the name supervisord gave the process (or the program,
// with instances).
func (p *prog) wantName(hasName bool, processName expanded, numprocs int) string {
	if hasName && numprocs == 1 {
		return processName.literal()
	}
	return p.super
}

// priorities turns supervisord's priority (start order, reverse stop
// order) into depends_on: each program depends on the programs of the
// next lower priority level.
func (im *importer) priorities(progs []*prog) {
	explicit := false
	for _, p := range progs {
		explicit = explicit || p.explicit
	}
	if !explicit {
		return
	}
	var chain []*prog
	for _, p := range progs {
		if !p.autostart || p.oneShot {
			if p.explicit {
				p.sec.comments = append(p.sec.comments, im.note(p.prioWhere, Approximated,
					"priority %d is not a start order here: the program does not stay running on its own (autostart or autorestart is false), so no program depends on it", p.priority[1]))
			}
			continue
		}
		chain = append(chain, p)
	}
	sort.SliceStable(chain, func(i, j int) bool {
		a, b := chain[i].priority, chain[j].priority
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		return a[1] < b[1]
	})
	var prevLevel, level []*prog
	for i, p := range chain {
		if i > 0 && p.priority != chain[i-1].priority {
			prevLevel, level = level, nil
		}
		level = append(level, p)
		if len(prevLevel) == 0 {
			continue
		}
		var deps []string
		for _, d := range prevLevel {
			deps = append(deps, d.name)
		}
		p.sec.set("depends_on", tomlStrings(deps), im.note(p.prioWhere, Approximated,
			"priority %s: supervisord started lower priorities first (without waiting) and stopped them last; here this program starts once %s is RUNNING, stops before it, and goes FATAL if it does. Remove depends_on if the order does not matter",
			prioString(p.priority), strings.Join(deps, ", ")))
	}
}

func prioString(p [2]int) string {
	if p[0] != defaultPriority {
		return fmt.Sprintf("%d in a group of priority %d", p[1], p[0])
	}
	return strconv.Itoa(p[1])
}

// pyBool is supervisord's boolean.
func pyBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "true", "on", "1":
		return true, nil
	case "no", "false", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("not a valid boolean value: %q (supervisord refuses it)", s)
}

// byteSize is supervisord's byte_size: KB, MB, GB suffixes, base 1024.
func byteSize(s string) (int64, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for suf, m := range map[string]int64{"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30} {
		if strings.HasSuffix(v, suf) {
			v, mult = strings.TrimSuffix(v, suf), m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size (supervisord takes a number with KB, MB or GB)", s)
	}
	return n * mult, nil
}

// sizeString writes a byte count in hostctl's binary units when exact.
func sizeString(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return strconv.FormatInt(n, 10)
}

// signals maps Linux signal numbers to the names hostctl takes.
var signals = map[int]string{1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 5: "TRAP", 6: "ABRT", 7: "BUS", 8: "FPE", 9: "KILL",
	10: "USR1", 11: "SEGV", 12: "USR2", 13: "PIPE", 14: "ALRM", 15: "TERM", 17: "CHLD", 18: "CONT", 19: "STOP",
	20: "TSTP", 21: "TTIN", 22: "TTOU", 23: "URG", 24: "XCPU", 25: "XFSZ", 26: "VTALRM", 27: "PROF", 28: "WINCH", 29: "IO", 30: "PWR", 31: "SYS"}

// signalName is supervisord's signal_number, answered with a name.
func signalName(s string) (string, error) {
	v := strings.TrimSpace(s)
	if n, err := strconv.Atoi(v); err == nil {
		if name, ok := signals[n]; ok {
			return name, nil
		}
		return "", fmt.Errorf("value %q is not a valid signal number (supervisord refuses it)", s)
	}
	name := strings.TrimPrefix(strings.ToUpper(v), "SIG")
	for _, n := range signals {
		if n == name {
			return name, nil
		}
	}
	return "", fmt.Errorf("value %q is not a valid signal name (supervisord refuses it)", s)
}

// posixSplit is Python's shlex.split (POSIX mode, no comments), which
// supervisord uses to turn command into argv.
func posixSplit(s string) ([]string, error) {
	var out []string
	var tok strings.Builder
	inTok := false
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inTok {
				out = append(out, tok.String())
				tok.Reset()
				inTok = false
			}
		case r == '\\':
			inTok = true
			if i+1 < len(rs) {
				i++
				tok.WriteRune(rs[i])
			} else {
				return nil, fmt.Errorf("no escaped character")
			}
		case r == '\'':
			inTok = true
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				j++
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("no closing quotation")
			}
			tok.WriteString(string(rs[i+1 : j]))
			i = j
		case r == '"':
			inTok = true
			j := i + 1
			for ; j < len(rs) && rs[j] != '"'; j++ {
				if rs[j] == '\\' && j+1 < len(rs) && (rs[j+1] == '"' || rs[j+1] == '\\') {
					j++
				}
				tok.WriteRune(rs[j])
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("no closing quotation")
			}
			i = j
		default:
			inTok = true
			tok.WriteRune(r)
		}
	}
	if inTok {
		out = append(out, tok.String())
	}
	return out, nil
}

// sameSplit reports whether hostctl splits s into argv.
func sameSplit(s string, argv []string) bool {
	got, err := shlex.Split(s)
	return err == nil && slices.Equal(got, argv)
}

// sharedTempDir reports whether dir is one of the dirs every user may
// write (sticky, world-writable on every Linux machine): supervisord
// setups often log there, but hostctl (root) creates, rotates and deletes
// log files by name and refuses such a dir (logfile.CheckDir).
func sharedTempDir(dir string) bool {
	switch filepath.Clean(dir) {
	case "/tmp", "/var/tmp", "/dev/shm":
		return true
	}
	return false
}

// sharedTempWhy says why a log in the shared dir dir goes to instead.
func sharedTempWhy(dir, instead string) string {
	return fmt.Sprintf("every user can write %s, so root must not create and rotate log files there by name (another user could plant a link); hostctl logs to %s instead", dir, instead)
}
