package config

import (
	"strings"
	"testing"
	"time"
)

// TestDeploySection reads [deploy]: values and defaults decoded, the
// steps' user taken from the program it names, and every problem reported
// with its line and key path.
func TestDeploySection(t *testing.T) {
	head := "[admin]\nsocket = \"/run/x.sock\"\nstate_dir = \"/var/lib/x\"\n\n[program.web]\ncommand = \"/bin/sleep 1000\"\nuser = \"nobody\"\nenvironment = { DJANGO_SETTINGS_MODULE = \"hello.settings\" }\n\n"
	good := head + `[deploy]
dir = "/var/www/hello"
repo = "https://git.example.com/hello.git"
shared = ["media/", ".env"]
program = "web"
environment = { PIP_NO_INDEX = "1" }

[[deploy.build]]
command = "python3 manage.py collectstatic --noinput"

[[deploy.build]]
command = "python3 manage.py check --deploy"
timeout = "30s"

[[deploy.before_switch]]
command = "python3 manage.py migrate --noinput"
`
	f, err := Parse("good.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	d := f.Deploy
	if d.Dir != "/var/www/hello" || d.Branch != "main" || d.Keep != 5 || len(d.Shared) != 2 {
		t.Errorf("deploy = %+v", d)
	}
	if len(d.Build) != 2 || d.Build[0].Timeout != 10*time.Minute || d.Build[1].Timeout != 30*time.Second || len(d.BeforeSwitch) != 1 {
		t.Errorf("deploy steps = %+v / %+v", d.Build, d.BeforeSwitch)
	}
	if d.RunAs.User != "nobody" || d.RunAs.Environment["DJANGO_SETTINGS_MODULE"] != "hello.settings" || d.RunAs.Environment["PIP_NO_INDEX"] != "1" {
		t.Errorf("deploy.RunAs = %+v", d.RunAs)
	}
	if f.Programs["web"].Environment["PIP_NO_INDEX"] != "" {
		t.Errorf("[deploy] environment leaked into [program.web]: %v", f.Programs["web"].Environment)
	}

	bad := head + `[deploy]
dir = "var/www"
branch = "-x"
shared = ["../etc", "media/", "media"]
keep = 0
program = "gunicorn"
buidl = []

[[deploy.build]]
command = ""
timeout = "0s"
`
	_, err = Parse("bad.toml", []byte(bad))
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`bad.toml:12: deploy.branch: "-x" is not a branch name`,
		`bad.toml:16: deploy.buidl: unknown key (did you mean "build"?)`,
		`bad.toml:11: deploy.dir: "var/www" must be a clean absolute path`,
		`bad.toml:14: deploy.keep: 0: must be at least 1`,
		`bad.toml:15: deploy.program: "gunicorn" is not a program in this file (programs: web)`,
		`bad.toml:13: deploy.shared[0]: "../etc" must be a clean path inside a release`,
		`deploy.shared[2]: "media" is also shared[1]`,
		`bad.toml:19: deploy.build[0].command: required`,
		`bad.toml:20: deploy.build[0].timeout: must be more than 0`,
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("no %q in:\n%v", w, err)
		}
	}

	if strings.Contains(err.Error(), "has no user") {
		t.Errorf("an unknown program is reported twice:\n%v", err)
	}

	// The steps never run as root by default: a user is required.
	_, err = Parse("nouser.toml", []byte("[deploy]\ndir = \"/srv/app\"\n"))
	if err == nil || !strings.Contains(err.Error(), "nouser.toml: deploy.user: required") {
		t.Errorf("no user: got %v", err)
	}
	_, err = Parse("nouser.toml", []byte("[program.web]\ncommand = \"/bin/sleep 1\"\n[deploy]\ndir = \"/srv/app\"\nprogram = \"web\"\n"))
	if err == nil || !strings.Contains(err.Error(), `deploy.program: program "web" has no user`) {
		t.Errorf("program without user: got %v", err)
	}
}
