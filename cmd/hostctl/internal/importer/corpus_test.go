package importer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	crossplane "github.com/nginxinc/nginx-go-crossplane"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/config"
)

// The corpus (testdata/corpus) is real supervisord and nginx configs of
// Python web projects from public repositories, taken as they were
// (MANIFEST.tsv: the file, its repository, path and commit, its licence).
// Nobody tuned them for hostctl. For each file:
//   - import writes a config;
//   - hostctl check finds nothing wrong with it but what this machine
//     lacks (config.OnlyMachine);
//   - every process (each numprocs instance) that Python supervisord
//     reads from the same file is translated with the same name, command,
//     environment, directory and restart and stop settings, or listed as
//     not translated with its file:line; every nginx server, upstream and
//     static location is translated or listed with its file:line;
//   - nginx -t accepts the site (in a sandbox: see nginxT).
// TestCorpus logs what is still not translated, by directive, most
// frequent first (go test -run TestCorpus -v).

type manifestEntry struct{ file, repo, path, commit, licence string }

func readManifest(t *testing.T) map[string]manifestEntry {
	t.Helper()
	f, err := os.Open("testdata/corpus/MANIFEST.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]manifestEntry{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) != 5 || len(c[3]) != 40 {
			t.Fatalf("MANIFEST.tsv: not file, repo, path, commit, licence: %q", sc.Text())
		}
		out[c[0]] = manifestEntry{c[0], c[1], c[2], c[3], c[4]}
		if m := regexp.MustCompile(`\((licences/[^)]+)\)$`).FindStringSubmatch(c[4]); m != nil {
			if _, err := os.Stat(filepath.Join("testdata/corpus", m[1])); err != nil {
				t.Errorf("MANIFEST.tsv: %s: %v", c[0], err)
			}
		}
	}
	return out
}

func corpusFiles(t *testing.T, kind string, manifest map[string]manifestEntry) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata/corpus", kind, "*.conf"))
	for _, f := range files {
		if _, ok := manifest[kind+"/"+filepath.Base(f)]; !ok {
			t.Errorf("%s is not in MANIFEST.tsv", f)
		}
	}
	if len(files) < 30 {
		t.Errorf("only %d %s files in the corpus", len(files), kind)
	}
	return files
}

func TestCorpus(t *testing.T) {
	manifest := readManifest(t)
	notTranslated := map[string]int{}
	count := func(res *Result) {
		for _, n := range res.Notes {
			if n.Kind == NotTranslated {
				notTranslated[noteDirective(n)]++
			}
		}
	}
	t.Run("supervisord", func(t *testing.T) {
		for _, f := range corpusFiles(t, "supervisord", manifest) {
			t.Run(filepath.Base(f), func(t *testing.T) {
				count(corpusSupervisord(t, f))
			})
		}
	})
	t.Run("nginx", func(t *testing.T) {
		for _, f := range corpusFiles(t, "nginx", manifest) {
			t.Run(filepath.Base(f), func(t *testing.T) {
				count(corpusNginx(t, f))
			})
		}
	})
	var keys []string
	for k := range notTranslated {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if notTranslated[keys[i]] != notTranslated[keys[j]] {
			return notTranslated[keys[i]] > notTranslated[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %4d  %s\n", notTranslated[k], k)
	}
	t.Logf("corpus: %d supervisord and %d nginx files; not translated, by directive, most frequent first:\n%s",
		len(corpusFilesQuiet("supervisord")), len(corpusFilesQuiet("nginx")), b.String())
}

var unpad = regexp.MustCompile(`(^|[^0-9])0+([0-9])`)

func corpusFilesQuiet(kind string) []string {
	files, _ := filepath.Glob(filepath.Join("testdata/corpus", kind, "*.conf"))
	return files
}

// noteDirective names what a note is about: the nginx directive, the
// supervisord option, or the section type.
func noteDirective(n Note) string {
	w := n.Where
	if i := strings.Index(w, "["); i >= 0 { // supervisord: file:line [section] key
		sec, key, _ := strings.Cut(w[i+1:], "] ")
		typ, _, _ := strings.Cut(sec, ":")
		if key == "" || key == "files" {
			return "supervisord [" + typ + "]"
		}
		return "supervisord " + key
	}
	f := strings.Fields(w)
	if len(f) == 1 {
		return "nginx: the whole file (" + n.Msg + ")"
	}
	if len(f) >= 2 && strings.Contains(f[0], ":") {
		if f[1] == "include" || strings.HasPrefix(n.Msg, "include ") {
			return "nginx include"
		}
		return "nginx " + f[len(f)-1]
	}
	return w
}

// corpusEnv sets, for this test, every variable that the file reads with
// %(ENV_X)s: supervisord refuses a file that names an unset one.
// Each is a directory under dir (a path is built on it as often as not),
// and one read by numprocs is 2.
func corpusEnv(t *testing.T, text, dir string) {
	for _, m := range regexp.MustCompile(`%\(ENV_([A-Za-z0-9_]+)\)`).FindAllStringSubmatch(text, -1) {
		v := filepath.Join(dir, "env-"+strings.ToLower(m[1]))
		if regexp.MustCompile(`(?m)^\s*numprocs\s*=\s*%\(ENV_` + m[1] + `\)`).MatchString(text) {
			v = "2"
		}
		t.Setenv(m[1], v)
	}
}

// checkedOnMachine fails on any problem of the output other than what
// this machine lacks.
func checkedOnMachine(t *testing.T, res *Result) {
	t.Helper()
	if _, err := config.Parse("out.toml", res.TOML); err != nil && !config.OnlyMachine(err) {
		var wrong []string
		for _, e := range err.(config.Errors) {
			if !e.Machine {
				wrong = append(wrong, e.Error())
			}
		}
		t.Errorf("hostctl check refuses the output, and not for what this machine lacks:\n%s\n\n%s", strings.Join(wrong, "\n"), res.TOML)
	}
}

func corpusSupervisord(t *testing.T, f string) *Result {
	raw, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	corpusEnv(t, string(raw), t.TempDir())
	res, err := Import(Options{Supervisord: f, HostNodeName: "web1"})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	checkedOnMachine(t, res)

	// Python supervisord reads a copy whose users are this machine's (it
	// refuses a user that does not exist here), and a conf.d fragment
	// through a main file's [include], as Debian's supervisor does.
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyText := regexp.MustCompile(`(?m)^(\s*user\s*[=:]\s*).*$`).ReplaceAllString(string(raw), "${1}"+me.Username)
	// supervisord checks that the directories of its log and pid files
	// exist: every absolute path moves under a sandbox that has them.
	sb := filepath.Join(dir, "sandbox")
	pathRE := regexp.MustCompile(`(^|[\s="',])(/[^/\s;"',][^\s;"',]*)`)
	copyText = pathRE.ReplaceAllStringFunc(copyText, func(m string) string {
		sub := pathRE.FindStringSubmatch(m)
		p := filepath.Clean(sb + sub[2])
		mkdir(t, filepath.Dir(p))
		if !strings.Contains(filepath.Base(p), ".") {
			mkdir(t, p) // childlogdir and the like
		}
		return sub[1] + sb + sub[2]
	})
	// Paths built on a variable: its value is in the sandbox too.
	for _, m := range regexp.MustCompile(`%\(ENV_([A-Za-z0-9_]+)\)s(/[^\s;"',]*)`).FindAllStringSubmatch(copyText, -1) {
		p := filepath.Join(os.Getenv(m[1]), m[2])
		mkdir(t, filepath.Dir(p))
	}
	conf := filepath.Join(dir, "supervisord.conf")
	if res.Fragment {
		write(t, filepath.Join(dir, "conf.d", filepath.Base(f)), copyText)
		write(t, conf, "[supervisord]\n[include]\nfiles = conf.d/*.conf\n")
	} else {
		write(t, conf, copyText)
	}
	out, err := exec.Command("/usr/bin/python3", "testdata/supervisord_dump.py", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("Python supervisor (Debian's supervisor package; run scripts/test-deps.sh) refuses the file: %v\n%s", err, out)
	}
	var want []struct {
		pyProcess
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	same, err := Import(Options{Supervisord: conf, HostNodeName: "web1"})
	if err != nil {
		t.Fatalf("import of the copy: %v", err)
	}
	var doc struct {
		Program map[string]map[string]any `toml:"program"`
		Group   map[string]struct {
			Programs []string `toml:"programs"`
		} `toml:"group"`
	}
	if _, err := toml.Decode(string(same.TOML), &doc); err != nil {
		t.Fatal(err)
	}
	got := hostctlProcesses(t, doc.Program, doc.Group, me)
	for _, w := range want {
		if w.Kind != "ProcessGroupConfig" {
			// An event listener or an fcgi-program: translated into
			// what hostctl does itself, or listed.
			sec := map[string]string{"EventListenerPoolConfig": "eventlistener", "FastCGIGroupConfig": "fcgi-program"}[w.Kind]
			if !slices.ContainsFunc(res.Notes, func(n Note) bool { return strings.Contains(n.Where, "["+sec+":"+w.Group+"]") }) {
				t.Errorf("[%s:%s] (process %s) is neither translated nor listed", sec, w.Group, w.Name)
			}
			continue
		}
		g, ok := got[w.Name]
		if !ok && slices.ContainsFunc(same.Notes, func(n Note) bool { return strings.Contains(n.Msg, "has no padding or width") }) {
			// %(process_num)02d: hostctl's ${INSTANCE} has no padding (noted).
			g, ok = got[unpad.ReplaceAllString(w.Name, "$1$2")]
			g.Name = w.Name
		}
		if !ok {
			t.Errorf("supervisord runs %s (group %s); the import has no such process (has %v)", w.Name, w.Group, keys(got))
			continue
		}
		// What a process is: the rest (logs, users, umask) is compared
		// by TestAgainstSupervisord, or depends on this machine.
		type essence struct {
			Group, Name                       string
			Argv                              []string
			Directory                         string
			Autostart                         bool
			Autorestart                       string
			Exitcodes                         []int
			Startsecs, Startretries, Stopwait int
			Stopsignal                        int
			RedirectStderr                    bool
			Environment                       map[string]string
		}
		ess := func(p pyProcess) essence {
			dir := "<none>"
			if p.Directory != nil {
				dir = expandHostctl(t, *p.Directory, p.Name, "0", p.Environment)
			}
			return essence{p.Group, p.Name, p.Argv, dir, p.Autostart, p.Autorestart, p.Exitcodes, p.Startsecs, p.Startretries,
				p.Stopwaitsecs, p.Stopsignal, p.RedirectStderr, p.Environment}
		}
		gw, gg := ess(w.pyProcess), ess(g)
		if w.StdoutLogfile == w.StderrLogfile && w.StdoutLogfile != "AUTO" && w.StdoutLogfile != "NONE" {
			gw.RedirectStderr = true // one file for both: stderr into the stdout log (noted)
		}
		if gw.Stopwait <= 0 {
			gw.Stopwait = 1 // noted: hostctl waits at least 1s before SIGKILL
		}
		if fmt.Sprint(gw) != fmt.Sprint(gg) {
			t.Errorf("process %s:\n hostctl:     %+v\n supervisord: %+v", w.Name, gg, gw)
		}
	}
	if t.Failed() {
		t.Logf("hostctl config of the copy:\n%s", same.TOML)
	}
	return res
}

func corpusNginx(t *testing.T, f string) *Result {
	abs, _ := filepath.Abs(f)
	dir := t.TempDir()
	sup := write(t, filepath.Join(dir, "supervisord.conf"), "[supervisord]\n")
	// An empty prefix: nothing that this machine's /etc/nginx holds is read
	// for a relative include, so the common ones are told by name.
	prefix := filepath.Join(dir, "etc-nginx")
	mkdir(t, prefix)
	res, err := Import(Options{Supervisord: sup, Nginx: abs, NginxPrefix: prefix, HostNodeName: "web1"})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	checkedOnMachine(t, res)
	accountNginx(t, abs, res)
	nginxT(t, abs)
	return res
}

// accountNginx checks that every server, upstream server and static
// location of the file is translated or listed at its file:line.
func accountNginx(t *testing.T, file string, res *Result) {
	t.Helper()
	payload, err := crossplane.Parse(file, &crossplane.ParseOptions{SingleFile: true, SkipDirectiveContextCheck: true})
	if err != nil || len(payload.Config) == 0 {
		t.Fatalf("parse: %v", err)
	}
	var doc struct {
		Proxy map[string]any `toml:"proxy"`
	}
	if _, err := toml.Decode(string(res.TOML), &doc); err != nil {
		t.Fatal(err)
	}
	sites := []map[string]any{}
	if doc.Proxy != nil {
		sites = append(sites, doc.Proxy)
		if ss, ok := doc.Proxy["site"].([]map[string]any); ok {
			sites = append(sites, ss...)
		}
	}
	strs := func(v any) []string {
		var out []string
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case []any:
			for _, s := range v {
				out = append(out, s.(string))
			}
		}
		return out
	}
	noted := func(d *crossplane.Directive) bool {
		where := fmt.Sprintf("%s:%d ", file, d.Line)
		return slices.ContainsFunc(res.Notes, func(n Note) bool { return strings.HasPrefix(n.Where, where) }) ||
			strings.Contains(string(res.TOML), fmt.Sprintf("(%s:%d)", file, d.Line))
	}
	var walk func(b crossplane.Directives)
	walk = func(b crossplane.Directives) {
		for _, d := range b {
			switch d.Directive {
			case "http":
				walk(d.Block)
			case "upstream":
				for _, s := range d.Block {
					if s.Directive != "server" || len(s.Args) == 0 {
						continue
					}
					addr, _ := nginxAddr(s.Args[0])
					used := slices.ContainsFunc(sites, func(site map[string]any) bool {
						return slices.Contains(append(strs(site["upstream"]), strs(site["upstreams"])...), addr)
					})
					if !used && !noted(s) && !noted(d) {
						t.Errorf("upstream %s server %s (line %d) is neither translated nor listed", d.Args[0], s.Args[0], s.Line)
					}
				}
			case "server":
				var names []string
				for _, x := range d.Block {
					if x.Directive == "server_name" {
						for _, n := range x.Args {
							if hostName.MatchString(strings.TrimPrefix(n, ".")) && n != "_" {
								names = append(names, strings.TrimPrefix(n, "."))
							}
						}
					}
				}
				translated := slices.ContainsFunc(sites, func(site map[string]any) bool {
					hosts := strs(site["hosts"])
					for _, n := range names {
						if !slices.Contains(hosts, n) {
							return false
						}
					}
					return len(names) > 0 || len(hosts) == 0
				})
				if !translated && !noted(d) {
					t.Errorf("the server at line %d (%v) is neither translated nor listed", d.Line, names)
				}
				for _, l := range d.Block {
					if l.Directive != "location" || directive(l.Block, "proxy_pass") != nil {
						continue
					}
					static := directive(l.Block, "alias") != nil || directive(l.Block, "root") != nil || directive(d.Block, "root") != nil
					if !static || len(l.Args) != 1 {
						continue
					}
					found := slices.ContainsFunc(sites, func(site map[string]any) bool {
						st, _ := site["static"].([]map[string]any)
						return slices.ContainsFunc(st, func(s map[string]any) bool { return s["path"] == l.Args[0] })
					})
					if !found && !noted(l) && !noted(d) {
						t.Errorf("static location %s (line %d) is neither translated nor listed", l.Args[0], l.Line)
					}
				}
			}
		}
	}
	walk(payload.Config[0].Parsed)
}

// nginxT runs the real nginx -t on the file, in a sandbox: every absolute
// path in it is moved under a temp dir, where the test creates what nginx
// checks (included files, certificates, DH parameters, log directories);
// the includes Debian's package ships (proxy_params, mime.types,
// uwsgi_params ...) are this machine's; host names of upstreams (docker
// service names) are 127.0.0.1, since nginx resolves them. What nginx
// accepts then, the file says; the rest was this machine.
func nginxT(t *testing.T, file string) {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
		if _, err := os.Stat(nginx); err != nil {
			t.Fatalf("nginx is not installed (scripts/test-deps.sh installs nginx-light)")
		}
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sb := t.TempDir()
	text := string(raw)
	// Upstream host names: nginx resolves them when it reads the file.
	payload, err := crossplane.Parse(file, &crossplane.ParseOptions{SingleFile: true, SkipDirectiveContextCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	upstreams := map[string]bool{}
	var collect func(b crossplane.Directives)
	collect = func(b crossplane.Directives) {
		for _, d := range b {
			if d.Directive == "upstream" && len(d.Args) == 1 {
				upstreams[d.Args[0]] = true
			}
			collect(d.Block)
		}
	}
	collect(payload.Config[0].Parsed)
	var hosts, upstreamHosts []string
	var walk func(b crossplane.Directives, inUpstream bool)
	walk = func(b crossplane.Directives, inUpstream bool) {
		for _, d := range b {
			switch {
			case d.Directive == "upstream" && len(d.Args) == 1:
				walk(d.Block, true)
				continue
			case inUpstream && d.Directive == "server" && len(d.Args) > 0:
				upstreamHosts = append(upstreamHosts, d.Args[0])
			case slices.Contains([]string{"proxy_pass", "uwsgi_pass", "fastcgi_pass", "grpc_pass"}, d.Directive) && len(d.Args) > 0:
				h := d.Args[0]
				if _, rest, ok := strings.Cut(h, "://"); ok {
					h = rest
				}
				h, _, _ = strings.Cut(h, "/")
				hosts = append(hosts, h)
			}
			walk(d.Block, false)
		}
	}
	walk(payload.Config[0].Parsed, false)
	for i, h := range append(hosts, upstreamHosts...) {
		host := h
		if i := strings.LastIndexByte(h, ':'); i > 0 {
			host = h[:i]
		}
		inUpstream := i >= len(hosts)
		if host == "" || (!inUpstream && upstreams[host]) || strings.HasPrefix(host, "unix") || strings.Contains(host, "$") || regexp.MustCompile(`^[0-9.]+$|^\[|^localhost$`).MatchString(host) {
			continue
		}
		// Only on the lines that name upstreams; a port where the name
		// had none (uwsgi_pass NAME names an upstream of another file).
		lead := `(?m)^(\s*(?:[a-z]+_pass)\s+(?:[a-z]+://)?)`
		if inUpstream {
			lead = `(?m)^(\s*server\s+)`
		}
		text = regexp.MustCompile(lead+regexp.QuoteMeta(host)+`:`).ReplaceAllString(text, "${1}127.0.0.1:")
		text = regexp.MustCompile(lead+regexp.QuoteMeta(host)+`([;/\s])`).ReplaceAllString(text, "${1}127.0.0.1:8000${2}")
	}
	// An address of another machine: nginx -t checks that it can bind it.
	text = regexp.MustCompile(`(?m)^(\s*listen\s+)[0-9.]+:`).ReplaceAllString(text, "${1}*:")
	// Every absolute path goes under the sandbox.
	pathRE := regexp.MustCompile(`(^|[\s"'=]|unix:)(/[^\s;"'{}]*)`)
	text = pathRE.ReplaceAllString(text, "${1}"+sb+"${2}")
	// "user NAME" names a user this machine may not have.
	text = regexp.MustCompile(`(?m)^\s*user\s+[^;]+;`).ReplaceAllString(text, "")
	site := filepath.Join(sb, "site.conf")
	write(t, site, text)

	// What nginx opens while it checks the file.
	sbParsed, err := crossplane.Parse(site, &crossplane.ParseOptions{SingleFile: true, SkipDirectiveContextCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	whole, hasPid := false, false
	var maps []string
	var certs []string
	var need func(b crossplane.Directives)
	need = func(b crossplane.Directives) {
		for _, d := range b {
			if slices.Contains([]string{"http", "events", "worker_processes", "pid", "worker_rlimit_nofile"}, d.Directive) {
				whole = true
			}
			if d.Directive == "pid" {
				hasPid = true
			}
			if d.Directive == "map" && len(d.Args) == 2 {
				maps = append(maps, d.Args[1])
			}
			for _, a := range d.Args {
				if strings.HasPrefix(a, sb) {
					mkdir(t, filepath.Dir(a))
				}
			}
			switch d.Directive {
			case "include":
				p := d.Args[0]
				if !filepath.IsAbs(p) {
					p = filepath.Join(sb, p)
				}
				if strings.ContainsAny(p, "*?[") {
					continue
				}
				if _, err := os.Stat(p); err != nil {
					body := ""
					// Debian's own files, as nginx-light installs them.
					if b, err := os.ReadFile(filepath.Join("/etc/nginx", strings.TrimPrefix(strings.TrimPrefix(p, sb), "/etc/nginx"))); err == nil {
						body = string(b)
					} else if b, err := os.ReadFile(filepath.Join("/etc/nginx", filepath.Base(p))); err == nil {
						body = string(b)
					} else if filepath.Base(p) == "options-ssl-nginx.conf" {
						body = "ssl_session_cache shared:le_nginx_SSL:10m;\nssl_session_timeout 1440m;\nssl_session_tickets off;\nssl_protocols TLSv1.2 TLSv1.3;\nssl_prefer_server_ciphers off;\n"
					} else if strings.Contains(filepath.Base(p), "ssl") || strings.Contains(filepath.Base(p), "cert") {
						// A snippet that names the certificate (certbot's
						// and the tutorials' ssl-NAME.conf).
						crt, key := p+".crt", p+".key"
						writePair(t, crt, key, []any{"example.com"})
						body = "ssl_certificate " + crt + ";\nssl_certificate_key " + key + ";\n"
					}
					write(t, p, body)
				}
			case "ssl_certificate", "ssl_trusted_certificate", "ssl_client_certificate":
				certs = append(certs, d.Args[0])
			case "ssl_dhparam":
				mkdir(t, filepath.Dir(d.Args[0]))
				if out, err := exec.Command("openssl", "dhparam", "-dsaparam", "-out", d.Args[0], "2048").CombinedOutput(); err != nil {
					t.Fatalf("openssl dhparam: %v\n%s", err, out)
				}
			}
			need(d.Block)
		}
	}
	need(sbParsed.Config[0].Parsed)
	// Certificates: a self-signed pair for each ssl_certificate; its key
	// at the ssl_certificate_key of the same block.
	var pairs func(b crossplane.Directives)
	pairs = func(b crossplane.Directives) {
		c, k := directive(b, "ssl_certificate"), directive(b, "ssl_certificate_key")
		if c != nil {
			key := filepath.Join(sb, "unused.key")
			if k != nil {
				key = k.Args[0]
			}
			writePair(t, c.Args[0], key, []any{"example.com"})
		}
		for _, d := range b {
			pairs(d.Block)
		}
	}
	pairs(sbParsed.Config[0].Parsed)
	for _, c := range certs {
		if _, err := os.Stat(c); err != nil {
			writePair(t, c, filepath.Join(sb, "unused.key"), []any{"example.com"})
		}
	}
	main := site
	if !whole {
		// What Debian's nginx.conf around a site defines.
		http := ""
		if strings.Contains(text, "$connection_upgrade") && !slices.Contains(maps, "$connection_upgrade") {
			http += "  map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n"
		}
		main = write(t, filepath.Join(sb, "nginx.conf"), "events {}\nhttp {\n"+http+"  include "+site+";\n}\n")
	}
	global := "error_log " + filepath.Join(sb, "logs", "error.log") + ";"
	if !hasPid {
		global += " pid " + filepath.Join(sb, "nginx.pid") + ";"
	}
	// Debian's relative includes (proxy_params, mime.types) are resolved
	// against the directory of the main file: the sandbox.
	for _, n := range []string{"proxy_params", "mime.types", "uwsgi_params", "fastcgi_params", "fastcgi.conf", "scgi_params"} {
		if b, err := os.ReadFile(filepath.Join("/etc/nginx", n)); err == nil {
			if _, err := os.Stat(filepath.Join(sb, n)); err != nil {
				write(t, filepath.Join(sb, n), string(b))
			}
		}
	}
	mkdir(t, filepath.Join(sb, "logs"))
	cmd := exec.Command(nginx, "-t", "-q", "-p", sb+"/", "-c", main, "-g", global)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("nginx -t refuses the file (in its sandbox): %v\n%s", err, out)
	}
}
