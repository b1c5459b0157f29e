package config

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
)

// A check's mistakes come back with their key path and line.
func TestCheckErrors(t *testing.T) {
	src := `[admin]
socket = "/tmp/hostctl-check.sock"
state_dir = "/tmp/hostctl-check"

[program.web]
command = "/bin/sleep 1000"

[check.db]
tcp = "db:5432"
http = "http://db/"

[check.search]
http = "elasticsearch:9200/_cluster/health"
intervall = "10s"

[check.static]
http = "https://bucket.s3.amazonaws.com/css/site.css"
interval = "0s"
failures = 0
status = 999
severity = "page"

[check.script]
exec = ["/bin/true"]

[check.port]
tcp = "db"
body = "ok"
user = "nobody"

[check.none]
notes = "nothing to probe"

[check.web]
tcp = "127.0.0.1:8000"
`
	_, err := Parse("checks.toml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"checks.toml:8: check.db: give exactly one of tcp, http, exec (found 2)",
		"checks.toml:13: check.search.http: \"elasticsearch:9200/_cluster/health\" is not an http:// or https:// URL",
		"checks.toml:14: check.search.intervall: unknown key (did you mean \"interval\"?)",
		"checks.toml:18: check.static.interval: must be longer than zero",
		"checks.toml:19: check.static.failures: 0: must be 1 or more",
		"checks.toml:20: check.static.status[0]: 999 is not an HTTP status code",
		"checks.toml:21: check.static.severity: \"page\" is not critical, error, warning or info",
		"checks.toml:23: check.script.user: required with exec: the user the command runs as",
		"checks.toml:27: check.port.tcp: \"db\" is not host:port",
		"checks.toml:28: check.port.body: applies only to an http check",
		"checks.toml:29: check.port.user: applies only to an exec check",
		"checks.toml:31: check.none: give exactly one of tcp, http, exec (found 0)",
		"checks.toml:34: check.web: \"web\" is also the name of a program or group",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// An exec check's user and command must be on this machine: problems with
// the machine, not the file.
func TestCheckExecMachine(t *testing.T) {
	src := `[admin]
socket = "/tmp/hostctl-check.sock"
state_dir = "/tmp/hostctl-check"

[check.script]
exec = "/nonexistent/check-db --quick"
user = "no-such-user-hct"
`
	_, err := Parse("checks.toml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), `check.script.user: unknown user "no-such-user-hct"`) ||
		!strings.Contains(err.Error(), `check.script.exec: "/nonexistent/check-db"`) {
		t.Fatalf("err = %v", err)
	}
	if !OnlyMachine(err) {
		t.Errorf("not only problems with this machine: %v", err)
	}
}

// The README's example: defaults, one status code or a list, one body or
// a list.
func TestCheckGood(t *testing.T) {
	src := `[admin]
socket = "/tmp/hostctl-check.sock"
state_dir = "/tmp/hostctl-check"

[check.db]
tcp = "db:5432"
severity = "critical"
notes = "Postgres"

[check.search]
http = "http://search:9200/_cluster/health"
body = ['"status":"green"', '"status":"yellow"']
status = 200

[check.static]
http = "https://bucket.s3.amazonaws.com/css/site.css"
status = [200, 304]
body = "body{"
interval = "1m"
timeout = "10s"
failures = 5

[check.script]
exec = "/bin/true --quiet"
user = "root"
`
	cfg, err := Parse("checks.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	db := cfg.Checks["db"]
	if db.Name != "db" || db.Interval != 30*time.Second || db.Timeout != 5*time.Second || db.Failures != 3 || db.Severity != alert.Critical || db.Target() != "tcp db:5432" {
		t.Errorf("db: %+v", db)
	}
	if s := cfg.Checks["search"]; !slices.Equal(s.Body, []string{`"status":"green"`, `"status":"yellow"`}) || !slices.Equal(s.Status, []int{200}) || s.Severity != alert.Error {
		t.Errorf("search: %+v", s)
	}
	if s := cfg.Checks["static"]; !slices.Equal(s.Status, []int{200, 304}) || !slices.Equal(s.Body, []string{"body{"}) || s.Interval != time.Minute || s.Failures != 5 {
		t.Errorf("static: %+v", s)
	}
	if s := cfg.Checks["script"]; !slices.Equal(s.Exec, []string{"/bin/true", "--quiet"}) || s.User != "root" || s.Target() != "exec /bin/true as root" {
		t.Errorf("script: %+v", s)
	}
}

// The README's example of the seed guide's services is a valid config.
func TestReadmeChecks(t *testing.T) {
	readme, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "The seed guide's services:\n\n```toml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README: no toml block after \"The seed guide's services:\"")
	}
	cfg, err := Parse("README.md", []byte("[admin]\nsocket = \"/tmp/hostctl-check.sock\"\nstate_dir = \"/tmp/hostctl-check\"\n"+block))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Checks) != 3 || cfg.Checks["db"].TCP != "db:5432" || len(cfg.Checks["search"].Body) != 2 ||
		!strings.HasPrefix(cfg.Checks["static"].HTTP, "https://") {
		t.Errorf("README checks: %+v", cfg.Checks)
	}
	for name, c := range cfg.Checks {
		if c.Notes == "" {
			t.Errorf("README: check %s has no notes", name)
		}
	}
}
