package config

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hostctl/hostctl/supervisor"
)

const slotsHead = `[admin]
socket = "/run/x.sock"
state_dir = "/var/lib/x"

`

const slotsGood = slotsHead + `[program.gunicorn]
command = "/bin/sleep ${RELEASE_DIR}"
directory = "${RELEASE_DIR}"
deploy = "blue_green"
user = "nobody"
serves = "unix:/run/hello/gunicorn-${SLOT}.sock"
environment = { BIND = "unix:/run/hello/gunicorn-${SLOT}.sock" }

[program.celery]
command = "/bin/sleep 1000"
directory = "${RELEASE_DIR}"

[program.memcached]
command = "/bin/sleep 1000"

[proxy]
listen = "127.0.0.1:8080"
upstream = "unix:/run/hello/gunicorn-${SLOT}.sock"

[[proxy.static]]
path = "/static/"
dir = "/var/www/hello/current/static"

[deploy]
dir = "/var/www/hello"
program = "gunicorn"
check = ["/", "/healthz"]
`

// TestSlotsResolve: a blue_green program runs as NAME@SLOT with ${SLOT}
// and ${RELEASE_DIR} expanded per slot, the proxy's upstream follows the
// traffic slot and switches (a pool), the default deploy mode of a
// program in the release is "restart" and of the others "none", and a
// release's static dir may be missing before the first deploy.
func TestSlotsResolve(t *testing.T) {
	f, err := Parse("good.toml", []byte(slotsGood))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.BlueGreen(); !slices.Equal(got, []string{"gunicorn"}) {
		t.Errorf("BlueGreen = %v", got)
	}
	if got := f.Redeployed(); !slices.Equal(got, []string{"celery"}) {
		t.Errorf("Redeployed = %v", got)
	}
	if f.DeployMode("memcached") != supervisor.DeployNone {
		t.Errorf("memcached: %q", f.DeployMode("memcached"))
	}
	// Before any release: slot a, on dir/current.
	procs := map[string]*supervisor.ProcessConfig{}
	for _, p := range f.Processes() {
		procs[p.Name] = p
	}
	if p := procs["gunicorn@a"]; p == nil || p.Program.Directory != "/var/www/hello/current" || p.Program.Serves[0] != "unix:/run/hello/gunicorn-a.sock" {
		t.Fatalf("slot a: %+v", procs)
	}
	both := f.Resolve(Slots{Traffic: "a", Run: []string{"a", "b"}, Dirs: map[string]string{"a": "/var/www/hello/releases/1", "b": "/var/www/hello/releases/2"}})
	procs = map[string]*supervisor.ProcessConfig{}
	for _, p := range both.Processes() {
		procs[p.Name] = p
	}
	a, b := procs["gunicorn@a"], procs["gunicorn@b"]
	if a == nil || b == nil || a.Program.Name != "gunicorn" || b.Program.Name != "gunicorn" {
		t.Fatalf("both slots: %v", slices.Collect(maps.Keys(procs)))
	}
	if b.Program.Directory != "/var/www/hello/releases/2" || b.Program.Command[1] != "/var/www/hello/releases/2" ||
		b.Program.Environment["BIND"] != "unix:/run/hello/gunicorn-b.sock" || a.Program.Directory != "/var/www/hello/releases/1" {
		t.Errorf("slot b: %+v; slot a: %+v", b.Program, a.Program)
	}
	if c := procs["celery"]; c == nil || c.Program.Directory != "/var/www/hello/releases/1" {
		t.Errorf("celery runs the traffic slot's release: %+v", c)
	}
	if both.Proxy.Upstream != "unix:/run/hello/gunicorn-a.sock" || !slices.Equal(both.Proxy.Switched, []string{"unix:/run/hello/gunicorn-a.sock"}) {
		t.Errorf("proxy while a has the traffic: %q %v", both.Proxy.Upstream, both.Proxy.Switched)
	}
	if !both.Proxy.Static[0].Later {
		t.Errorf("the release's static dir is not marked Later")
	}
	switched := f.Resolve(Slots{Traffic: "b", Run: []string{"a", "b"}})
	if switched.Proxy.Upstream != "unix:/run/hello/gunicorn-b.sock" {
		t.Errorf("proxy after the switch: %q", switched.Proxy.Upstream)
	}
	// The template is untouched.
	if f.Proxy.Upstream != "unix:/run/hello/gunicorn-a.sock" || f.Programs["gunicorn"].Directory != "/var/www/hello/current" {
		t.Errorf("Resolve changed the file: %q %q", f.Proxy.Upstream, f.Programs["gunicorn"].Directory)
	}
	if got := switched.Links().Programs([]string{"unix:/run/hello/gunicorn-b.sock"}); !slices.Equal(got, []string{"gunicorn@b"}) {
		t.Errorf("links after the switch: %v", got)
	}
}

// TestSlotsRefused: where ${SLOT} and ${RELEASE_DIR} may not be, each
// problem at its key. ${RELEASE_DIR} in a path root opens for the program
// (a log, a socket the proxy dials) is refused: the release dir is the
// app user's, who could put a link there.
func TestSlotsRefused(t *testing.T) {
	for _, tc := range []struct{ name, from, to, want string }{
		{"release dir in the upstream", `upstream = "unix:/run/hello/gunicorn-${SLOT}.sock"`, `upstream = "unix:${RELEASE_DIR}/gunicorn-${SLOT}.sock"`, "proxy.upstream: \"unix:${RELEASE_DIR}/gunicorn-${SLOT}.sock\": ${RELEASE_DIR} is the app user's directory"},
		{"release dir in a log", `deploy = "blue_green"`, "deploy = \"blue_green\"\nstdout_log = \"${RELEASE_DIR}/out-${SLOT}.log\"", "program.gunicorn.stdout_log: ${RELEASE_DIR} is the app user's directory"},
		{"slot without blue_green", "[program.memcached]\ncommand = \"/bin/sleep 1000\"", "[program.memcached]\ncommand = \"/bin/sleep ${SLOT}\"", "program.memcached.command: ${SLOT} needs deploy = \"blue_green\""},
		{"release dir with none", "[program.memcached]\ncommand = \"/bin/sleep 1000\"", "[program.memcached]\ncommand = \"/bin/sleep ${RELEASE_DIR}\"\ndeploy = \"none\"", "program.memcached.command: ${RELEASE_DIR} needs deploy"},
		{"slot elsewhere", `program = "gunicorn"`, "program = \"gunicorn\"\nbranch = \"${SLOT}\"", "deploy.branch: ${SLOT} and ${RELEASE_DIR} mean something only"},
		{"blue_green without a slot socket", `serves = "unix:/run/hello/gunicorn-${SLOT}.sock"`, `serves = "unix:/run/hello/gunicorn.sock"`, "program.gunicorn.serves: a blue_green program serves one upstream per slot"},
		{"blue_green log without slot", `deploy = "blue_green"`, "deploy = \"blue_green\"\nstderr_log = \"/var/log/gunicorn.err\"", "program.gunicorn.stderr_log: \"/var/log/gunicorn.err\" must contain ${SLOT}"},
		{"bad mode", `deploy = "blue_green"`, `deploy = "green"`, "program.gunicorn.deploy: \"green\" is not one of"},
		{"check path", `check = ["/", "/healthz"]`, `check = ["healthz"]`, "deploy.check[0]: \"healthz\" must be a path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(slotsGood, tc.from) {
				t.Fatalf("no %q", tc.from)
			}
			_, err := Parse("bad.toml", []byte(strings.Replace(slotsGood, tc.from, tc.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v\nwant %q", err, tc.want)
			}
		})
	}
	noDeploy := slotsHead + "[program.web]\ncommand = \"/bin/sleep 1000\"\ndeploy = \"restart\"\n"
	if _, err := Parse("x.toml", []byte(noDeploy)); err == nil || !strings.Contains(err.Error(), "program.web.deploy: \"restart\" needs a [deploy] section") {
		t.Errorf("deploy without [deploy]: %v", err)
	}
}

// The README's Deploying example is a valid config (but for what this
// machine lacks: its user, its commands).
func TestReadmeDeploying(t *testing.T) {
	readme, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## Deploying\n")
	_, rest, ok2 := strings.Cut(rest, "```toml\n")
	block, _, ok3 := strings.Cut(rest, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README: no toml block in Deploying")
	}
	// This machine has no user hello, nor celery: nobody, and sleep.
	block = strings.ReplaceAll(block, `"hello"`, `"nobody"`)
	block = strings.ReplaceAll(block, `"celery -A hello worker"`, `"/bin/sleep 1000"`)
	f, err := Parse("README.md", []byte("[admin]\nsocket = \"/tmp/hostctl-deploy.sock\"\nstate_dir = \"/tmp/hostctl-deploy\"\n"+block))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.BlueGreen(), []string{"gunicorn"}) || !slices.Equal(f.Redeployed(), []string{"celery"}) {
		t.Errorf("blue_green %v, redeployed %v", f.BlueGreen(), f.Redeployed())
	}
}
