package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestInstancesBadGolden: every mistake with instances and groups is
// reported at once, each with its line and key path.
func TestInstancesBadGolden(t *testing.T) {
	t.Setenv("NOPE_HOSTCTL_UNSET", "")
	os.Unsetenv("NOPE_HOSTCTL_UNSET")
	_, err := Load("testdata/instances_bad.toml")
	if err == nil {
		t.Fatal("instances_bad.toml loaded without errors")
	}
	got := err.Error() + "\n"
	golden := "testdata/instances_bad.golden"
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, _ := os.ReadFile(golden)
	if got != string(want) {
		t.Errorf("errors differ from %s (go test -update to accept):\n--- got\n%s--- want\n%s", golden, got, want)
	}
	for _, e := range err.(Errors) {
		if e.Line == 0 || e.Key == "" {
			t.Errorf("error without line or key: %v", e)
		}
	}
}

const instancesHead = `[admin]
socket = "/tmp/hostctl-instances.sock"
state_dir = "/tmp/hostctl-instances"
`

// TestInstancesAndGroups: one problem at a time, each with where it is.
func TestInstancesAndGroups(t *testing.T) {
	prog := func(name, extra string) string {
		return "\n[program." + name + "]\ncommand = \"/bin/sh -c 'exec sleep 1000'\"\n" + extra
	}
	for _, tc := range []struct {
		name string
		src  string
		want string // "" for a valid config
	}{
		{"instances", prog("celery", "instances = 3\n"), ""},
		{"process name pattern", prog("celery", "instances = 2\nprocess_name = \"w-${INSTANCE}\"\n"), ""},
		{"instance in command, environment, logs, directory, probes",
			"\n[program.celery]\ninstances = 2\ncommand = \"/bin/sh -c 'exec sleep 100${INSTANCE}'\"\nenvironment = { W = \"w${INSTANCE}\" }\n" +
				"stdout_log = \"/var/log/c-${INSTANCE}.log\"\ndirectory = \"TMP/${INSTANCE}\"\n" +
				"ready = { tcp = \"127.0.0.1:800${INSTANCE}\" }\nhealth = { http = \"http://127.0.0.1:800${INSTANCE}/\", socket = \"/run/s${INSTANCE}.sock\" }\n", ""},
		{"zero instances", prog("celery", "instances = 0\n"), "x.toml:7: program.celery.instances: must be at least 1"},
		{"name without instance", prog("celery", "instances = 2\nprocess_name = \"w\"\n"), "x.toml:8: program.celery.process_name: \"w\" must contain ${INSTANCE} with instances = 2"},
		{"shared log", prog("celery", "instances = 2\nstderr_log = \"/var/log/c.log\"\n"), "x.toml:8: program.celery.stderr_log: \"/var/log/c.log\" must contain ${INSTANCE} with instances = 2"},
		{"instance elsewhere", prog("celery", "instances = 2\nuser = \"u${INSTANCE}\"\n"), "x.toml:8: program.celery.user: ${INSTANCE} is the instance number of a program with instances, expanded only in"},
		{"instance outside programs", "\n[log]\ndir = \"/tmp/${INSTANCE}\"\n", "x.toml:6: log.dir: ${INSTANCE} is the instance number"},
		{"process name clash", prog("a", "instances = 2\nprocess_name = \"b_${INSTANCE}\"\n") + prog("b_1", ""),
			"x.toml:10: program.b_1: the name \"b_1\" is also given at program.a.process_name"},
		{"default process name clash", prog("a", "instances = 2\n") + prog("a_0", ""),
			"x.toml:9: program.a_0: the name \"a_0\" is also given at program.a.instances"},
		{"process name is a program name", prog("a", "process_name = \"b\"\n") + prog("b", ""),
			"x.toml:9: program.b: the name \"b\" is also given at program.a.process_name"},
		{"group", prog("a", "") + prog("b", "instances = 2\n") + "\n[group.web]\nprograms = [\"a\", \"b\"]\n", ""},
		{"group of an unknown program", prog("a", "") + "\n[group.web]\nprograms = [\"a\", \"zz\"]\n",
			"x.toml:9: group.web.programs: \"zz\" is not a program in this file (programs: a)"},
		{"program in two groups", prog("a", "") + "\n[group.g1]\nprograms = [\"a\"]\n[group.g2]\nprograms = [\"a\"]\n",
			"x.toml:11: group.g2.programs: \"a\" is also in group.g1.programs; a program belongs to one group at most"},
		{"group named as a program", prog("a", "") + "\n[group.a]\nprograms = [\"a\"]\n",
			"x.toml:8: group.a: \"a\" is also program.a"},
		{"group named as a process", prog("a", "instances = 2\n") + "\n[group.a_1]\nprograms = [\"a\"]\n",
			"x.toml:9: group.a_1: \"a_1\" is also program.a.instances (a process of program a)"},
		{"group without programs", prog("a", "") + "\n[group.g]\nprograms = []\n", "x.toml:9: group.g.programs: must list at least one program"},
		{"group with an unknown key", prog("a", "") + "\n[group.g]\nprograms = [\"a\"]\nprogram = [\"a\"]\n", "x.toml:10: group.g.program: unknown key (did you mean \"programs\"?)"},
		{"group as a value", "RAW:group = 1\n" + instancesHead + prog("a", ""), "x.toml:1: group: must be tables like [group.NAME]"},
		{"program as a value", "RAW:program = 1\n" + instancesHead, "x.toml:1: program: must be tables like [program.NAME]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			os.Mkdir(tmp+"/0", 0o755)
			os.Mkdir(tmp+"/1", 0o755)
			src := strings.ReplaceAll(instancesHead+tc.src, "TMP", tmp)
			if raw, ok := strings.CutPrefix(tc.src, "RAW:"); ok {
				src = raw
			}
			f, err := Parse("x.toml", []byte(src))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid config refused:\n%v", err)
			case tc.want == "":
				for _, p := range f.Processes() {
					if errs := p.Validate("program." + p.Program.Name); len(errs) > 0 {
						t.Errorf("process %s does not validate on its own: %v", p.Name, errs)
					}
				}
			case err == nil:
				t.Fatalf("accepted; want %s", tc.want)
			case !strings.Contains(err.Error(), tc.want):
				t.Errorf("got:\n%v\nwant a line with:\n%s", err, tc.want)
			}
		})
	}
}

// TestGroupsAndProcesses: a valid file gives each program its group and
// each instance its process config.
func TestGroupsAndProcesses(t *testing.T) {
	src := instancesHead + `
[program.gunicorn]
command = "/bin/sh -c 'exec sleep 1000'"

[program.celery]
command = "/bin/sh -c 'exec sleep 100${INSTANCE}'"
instances = 2
instance_start = 1
rolling = true
environment = { WORKER = "w${INSTANCE}" }

[program.beat]
command = "/bin/sh -c 'exec sleep 1000'"

[group.web]
programs = ["gunicorn", "celery"]
`
	f, err := Parse("x.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if f.Programs["celery"].ProgramGroup != "web" || f.Programs["gunicorn"].ProgramGroup != "web" || f.Programs["beat"].ProgramGroup != "" {
		t.Errorf("groups: celery %q gunicorn %q beat %q", f.Programs["celery"].ProgramGroup, f.Programs["gunicorn"].ProgramGroup, f.Programs["beat"].ProgramGroup)
	}
	var got []string
	for _, p := range f.Processes() {
		got = append(got, p.ProgramGroup+":"+p.Name+" "+strings.Join(p.Program.Command, " ")+" "+p.Program.Environment["WORKER"])
	}
	want := []string{
		"beat:beat /bin/sh -c exec sleep 1000 ",
		"web:celery_1 /bin/sh -c exec sleep 1001 w1",
		"web:celery_2 /bin/sh -c exec sleep 1002 w2",
		"web:gunicorn /bin/sh -c exec sleep 1000 ",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("processes:\n%q\nwant\n%q", got, want)
	}
}
