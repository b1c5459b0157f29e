package importer

import (
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/shlex"

	"github.com/hostctl/hostctl/supervisor"
)

// pyProcess is one process as supervisord 4.2 read it
// (testdata/supervisord_dump.py).
type pyProcess struct {
	Group          string            `json:"group"`
	Name           string            `json:"name"`
	Argv           []string          `json:"argv"`
	Directory      *string           `json:"directory"`
	Umask          *int              `json:"umask"`
	Autostart      bool              `json:"autostart"`
	Autorestart    string            `json:"autorestart"`
	Exitcodes      []int             `json:"exitcodes"`
	Startsecs      int               `json:"startsecs"`
	Startretries   int               `json:"startretries"`
	Stopsignal     int               `json:"stopsignal"`
	Stopwaitsecs   int               `json:"stopwaitsecs"`
	UID            *int              `json:"uid"`
	RedirectStderr bool              `json:"redirect_stderr"`
	Environment    map[string]string `json:"environment"`
	StdoutLogfile  string            `json:"stdout_logfile"`
	StderrLogfile  string            `json:"stderr_logfile"`
	StdoutMaxBytes int64             `json:"stdout_logfile_maxbytes"`
	StdoutBackups  int               `json:"stdout_logfile_backups"`
}

// TestAgainstSupervisord imports configs written to exercise supervisord's
// parsing rules and compares every process hostctl would run with what
// Python supervisor 4.2 itself reads from the same files: names, argv,
// environment, directory, restart and stop settings, logs.
func TestAgainstSupervisord(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, "conf.d"))
	mkdir(t, filepath.Join(dir, "logs"))
	t.Setenv("IMPORT_TEST_WORD", "from-env")
	main := `; comments: ";" and "#" at a line's start, inline after whitespace
[supervisord]
environment = TZ="Europe/Paris",SHARED=%(ENV_IMPORT_TEST_WORD)s

[include]
files = conf.d/*.conf

[group:pool]
programs = worker,web
priority = 100

[program:web]
command = /usr/bin/env python3 -c "import sys; print(sys.argv)" 'a b' c\ d "e;f" g;h #i
directory = %(here)s
user = ` + me.Username + `
umask = 027
priority = 5
autorestart = true
exitcodes = 0,3
startsecs = 7
startretries = 9
stopsignal = HUP
stopwaitsecs = 42
stopasgroup = true
redirect_stderr = true
stdout_logfile = %(here)s/logs/%(program_name)s-%(group_name)s.log
stdout_logfile_maxbytes = 3MB
stdout_logfile_backups = 4
environment = A="1,2",B='q"x',C=abc#d,D="%(ENV_IMPORT_TEST_WORD)s",E="%%literal",F="$HOME"

[program:worker]
command = /bin/sh -c "echo %(program_name)s %(process_num)d of %(numprocs)d in %(group_name)s"
  --continued
  line
process_name = %(program_name)s-%(process_num)d
numprocs = 3
numprocs_start = 2
autorestart = unexpected
stopsignal = 2
stdout_logfile = NONE
environment = NUM="%(process_num)d",WHO="%(ENV_IMPORT_TEST_WORD)s"
`
	incl := `# included: %(here)s is conf.d
[program:beat]
command = /bin/echo %(here)s ; beat
process_name = scheduler
autostart = false
autorestart = false
stdout_logfile = %(here)s/../logs/beat.log
stdout_logfile_maxbytes = 0
stdout_logfile_backups = 0
environment = PATH="/usr/local/bin:/usr/bin",X=%(ENV_TZ)s

[program:plain]
command = /bin/true
`
	conf := filepath.Join(dir, "supervisord.conf")
	os.WriteFile(conf, []byte(main), 0o644)
	os.WriteFile(filepath.Join(dir, "conf.d", "more.conf"), []byte(incl), 0o644)

	out, err := exec.Command("/usr/bin/python3", "testdata/supervisord_dump.py", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("Python supervisor (Debian's supervisor package; run scripts/test-deps.sh) could not read the config: %v\n%s", err, out)
	}
	var want []pyProcess
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	res, err := Import(Options{Supervisord: conf, HostNodeName: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Log     map[string]any            `toml:"log"`
		Program map[string]map[string]any `toml:"program"`
		Group   map[string]struct {
			Programs []string `toml:"programs"`
		} `toml:"group"`
	}
	if _, err := toml.Decode(string(res.TOML), &f); err != nil {
		t.Fatal(err)
	}
	got := hostctlProcesses(t, f.Program, f.Group, me)
	if len(got) != len(want) {
		t.Errorf("%d processes, supervisord has %d", len(got), len(want))
	}
	for _, w := range want {
		g, ok := got[w.Name]
		if !ok {
			t.Errorf("no process %s (have %v)", w.Name, keys(got))
			continue
		}
		if w.StdoutMaxBytes == 0 {
			w.StdoutMaxBytes = g.StdoutMaxBytes // supervisord's 0 (no rotation) has no equivalent: noted
		}
		if w.StdoutBackups == 0 {
			w.StdoutBackups = 1 // noted: hostctl keeps at least one
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("process %s:\n hostctl:     %+v\n supervisord: %+v", w.Name, g, w)
		}
	}
	if t.Failed() {
		t.Logf("hostctl config:\n%s", res.TOML)
	}
}

func keys[M ~map[string]V, V any](m M) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// hostctlProcesses lists the processes the imported config runs, in
// supervisord's terms.
func hostctlProcesses(t *testing.T, progs map[string]map[string]any, groups map[string]struct {
	Programs []string `toml:"programs"`
}, me *user.User) map[string]pyProcess {
	t.Helper()
	groupOf := map[string]string{}
	for g, m := range groups {
		for _, p := range m.Programs {
			groupOf[p] = g
		}
	}
	out := map[string]pyProcess{}
	for name, p := range progs {
		n, start := 1, 0
		if v, ok := p["instances"].(int64); ok {
			n = int(v)
		}
		if v, ok := p["instance_start"].(int64); ok {
			start = int(v)
		}
		for i := start; i < start+n; i++ {
			inst := strconv.Itoa(i)
			env := map[string]string{}
			if e, ok := p["environment"].(map[string]any); ok {
				for k, v := range e {
					env[k] = expandHostctl(t, v.(string), name, inst, nil)
				}
			}
			var argv []string
			switch c := p["command"].(type) {
			case string:
				words, err := shlex.Split(c)
				if err != nil {
					t.Fatal(err)
				}
				for _, w := range words {
					argv = append(argv, expandHostctl(t, w, name, inst, env))
				}
			case []any:
				for _, w := range c {
					argv = append(argv, expandHostctl(t, w.(string), name, inst, env))
				}
			}
			pp := pyProcess{Name: name, Group: name, Argv: argv, Environment: env, Autostart: true,
				Startsecs: 1, Startretries: 3, Stopsignal: 15, Stopwaitsecs: 10, Exitcodes: []int{0},
				StdoutLogfile: "AUTO", StderrLogfile: "AUTO", StdoutMaxBytes: 50 << 20, StdoutBackups: 10}
			if pn, ok := p["process_name"].(string); ok {
				pp.Name = expandHostctl(t, pn, name, inst, nil)
			}
			if g, ok := groupOf[name]; ok {
				pp.Group = g
			}
			if d, ok := p["directory"].(string); ok {
				pp.Directory = &d
			}
			if u, ok := p["umask"].(string); ok {
				v, _ := strconv.ParseInt(u, 8, 32)
				iv := int(v)
				pp.Umask = &iv
			}
			if v, ok := p["autostart"].(bool); ok {
				pp.Autostart = v
			}
			pp.Autorestart = map[string]string{"always": "true", "never": "false", "on-failure": "unexpected"}[p["autorestart"].(string)]
			if v, ok := p["exit_codes"].([]any); ok {
				pp.Exitcodes = nil
				for _, c := range v {
					pp.Exitcodes = append(pp.Exitcodes, int(c.(int64)))
				}
			}
			if v, ok := p["start_secs"].(string); ok {
				pp.Startsecs, _ = strconv.Atoi(strings.TrimSuffix(v, "s"))
			}
			if v, ok := p["start_retries"].(int64); ok {
				pp.Startretries = int(v)
			}
			if v, ok := p["stop_signal"].(string); ok {
				sig, err := supervisor.ParseSignal(v)
				if err != nil {
					t.Fatal(err)
				}
				pp.Stopsignal = int(sig)
			}
			if v, ok := p["stop_timeout"].(string); ok {
				pp.Stopwaitsecs, _ = strconv.Atoi(strings.TrimSuffix(v, "s"))
			}
			if u, ok := p["user"].(string); ok && u == me.Username {
				uid, _ := strconv.Atoi(me.Uid)
				pp.UID = &uid
			}
			if v, ok := p["redirect_stderr"].(bool); ok {
				pp.RedirectStderr = v
			}
			for _, s := range []struct {
				key string
				to  *string
			}{{"stdout_log", &pp.StdoutLogfile}, {"stderr_log", &pp.StderrLogfile}} {
				if v, ok := p[s.key].(string); ok {
					*s.to = expandHostctl(t, v, name, inst, nil)
					if v == "none" {
						*s.to = "NONE"
					}
				}
			}
			if pp.RedirectStderr {
				pp.StderrLogfile = "NONE"
			}
			if v, ok := p["max_size"].(string); ok {
				n, err := strconv.ParseInt(strings.TrimSuffix(v, "MiB"), 10, 64)
				if err != nil {
					t.Fatalf("max_size %q", v)
				}
				pp.StdoutMaxBytes = n << 20
			}
			if v, ok := p["max_backups"].(int64); ok {
				pp.StdoutBackups = int(v)
			}
			out[pp.Name] = pp
		}
	}
	return out
}

// expandHostctl expands a hostctl string as hostctl does: ${INSTANCE},
// ${NAME}, the program's environment, hostctl's environment; $$ is $.
func expandHostctl(t *testing.T, s, name, inst string, env map[string]string) string {
	t.Helper()
	v, err := supervisor.ExpandVars(s, func(k string) (string, bool) {
		switch k {
		case "INSTANCE":
			return inst, true
		case "NAME":
			return name, true
		}
		if v, ok := env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	})
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return v
}
