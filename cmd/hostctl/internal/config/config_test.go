package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/supervisor"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestGoodConfig(t *testing.T) {
	f, err := Load("testdata/good.toml")
	if err != nil {
		t.Fatal(err)
	}
	web, worker := f.Programs["web"], f.Programs["worker"]
	if web.StopTimeout != 5*time.Second || web.StopSignal != "INT" || web.StartSecs != 0 {
		t.Errorf("web: %+v", web)
	}
	if web.Ready == nil || web.Ready.Interval != 100*time.Millisecond || web.Ready.Timeout != 2*time.Second {
		t.Errorf("web.ready defaults not applied: %+v", web.Ready)
	}
	if web.MaxSize == nil || *web.MaxSize != 10*1000*1000/10 {
		t.Errorf("web.max_size = %v", web.MaxSize)
	}
	if f.Log.MaxAge != 30*24*time.Hour {
		t.Errorf("log.max_age = %v", f.Log.MaxAge)
	}
	if !worker.Autostart || worker.StartRetries != 3 || worker.StopTimeout != 10*time.Second {
		t.Errorf("worker defaults: %+v", worker)
	}
	if web.FatalRetry != supervisor.RetryNever || worker.FatalRetry != 5*time.Minute {
		t.Errorf("fatal_retry: web %v (want never), worker %v (want the default 5m)", web.FatalRetry, worker.FatalRetry)
	}
	if h := web.Health; h == nil || h.HTTP != "http://127.0.0.1:8000/healthz" || h.Grace != 30*time.Second ||
		h.Interval != 10*time.Second || h.Timeout != 5*time.Second || h.Failures != 3 {
		t.Errorf("web.health (defaults: interval 10s, timeout 5s, failures 3): %+v", h)
	}
	if worker.Health != nil {
		t.Errorf("worker.health = %+v, want none", worker.Health)
	}
	if web.MemoryLimit != 512e6 || worker.MemoryLimit != 0 {
		t.Errorf("memory_limit: web %d (want 512MB = 512000000), worker %d (want 0: no limit)", web.MemoryLimit, worker.MemoryLimit)
	}
	if len(worker.Command) != 3 || worker.Command[2] != "exec sleep 1000" {
		t.Errorf("worker command %q", worker.Command)
	}
	if got := strings.Join(web.Command, "|"); got != "/bin/sh|-c|exec sleep 1000" {
		t.Errorf("shell split: %q", got)
	}
	env, err := web.Env()
	if err != nil {
		t.Fatal(err)
	}
	if !contains(env, "GREETING=hello $USER") || !contains(env, "HOME_COPY="+os.Getenv("HOME")) {
		t.Errorf("environment not expanded: %v", env)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestBadConfigGolden: every mistake in bad.toml is reported at once, each
// with its line and key path.
func TestBadConfigGolden(t *testing.T) {
	err := loadBad(t)
	if err == nil {
		t.Fatal("bad.toml loaded without errors")
	}
	got := err.Error() + "\n"
	// The PATH in "not found in PATH (...)" is the test's own, absolute.
	got = scrubPath(got)
	golden := "testdata/bad.golden"
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, _ := os.ReadFile(golden)
	if got != string(want) {
		t.Errorf("errors differ from %s (go test -update to accept):\n--- got\n%s--- want\n%s", golden, got, want)
	}
}

func scrubPath(s string) string {
	return strings.ReplaceAll(s, os.Getenv("PATH"), "$PATH")
}

// loadBad loads testdata/bad.toml with an environment the test controls:
// commands named without a path are looked up in testdata/bin only (it has
// a stand-in gunicorn, and no celery-not-installed-hostctl), so the errors
// are the same whether or not the machine has gunicorn or celery.
func loadBad(t *testing.T) error {
	t.Helper()
	bin, err := filepath.Abs("testdata/bin")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	t.Setenv("HOSTCTL_TEST_UNSET_VARIABLE", "")
	os.Unsetenv("HOSTCTL_TEST_UNSET_VARIABLE")
	_, err = Load("testdata/bad.toml")
	return err
}

func TestEachMistakeHasLineAndKey(t *testing.T) {
	err := loadBad(t)
	es, ok := err.(Errors)
	if !ok {
		t.Fatalf("error is %T, want Errors", err)
	}
	for _, e := range es {
		if e.Line == 0 || e.Key == "" {
			t.Errorf("error without line or key: %v", e)
		}
	}
	for _, want := range []string{
		`program.gunicorn.stop_timeout: "ten" is not a duration (example: "10s")`,
		`program.gunicorn.start_retries: must be an integer`,
		`program.gunicorn.stop_timout: unknown key (did you mean "stop_timeout"?)`,
		`program.gunicorn.depends_on: "redis" is not a program`,
		`dependency cycle: celery -> memcached -> celery`,
		`program.memcached.command: "/usr/bin/does-not-exist"`,
		`program.celery.command: "celery-not-installed-hostctl" not found in PATH`,
		`program.gunicorn.user: unknown user "no-such-user-hostctl"`,
		`program.celery.group: unknown group "no-such-group-hostctl"`,
		`${HOSTCTL_TEST_UNSET_VARIABLE}`,
		`proxi: unknown section`,
		`admin.listen: a TCP admin listener requires admin.token_file`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing error %q", want)
		}
	}
	// Like errors.Join's error, Errors unwraps to each problem.
	multi, ok := err.(interface{ Unwrap() []error })
	if !ok || len(multi.Unwrap()) != len(es) {
		t.Fatalf("Errors does not unwrap to its %d problems", len(es))
	}
	if e, ok := errors.AsType[*Error](err); !ok || e != es[0] {
		t.Errorf("errors.AsType[*Error] = %v, want the first problem", e)
	}
}

func TestSyntaxErrorHasLine(t *testing.T) {
	_, err := Parse("x.toml", []byte("[program.a]\ncommand = \"sleep 1\"\nstop_timeout = 10s\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "x.toml:3: TOML syntax") {
		t.Errorf("got %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"10s": 10 * time.Second, "30d": 30 * 24 * time.Hour, "1d12h": 36 * time.Hour, "0": 0, "1m30s": 90 * time.Second} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"ten", "-1s", "d", "5"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
}

// FuzzParse: no input makes the parser panic, and an accepted config
// always has a command for every program.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/good.toml", "testdata/bad.toml", "testdata/instances_bad.toml"} {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte("[program.x]\ncommand = 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.toml", data)
		if err != nil {
			return
		}
		for n, p := range cfg.Programs {
			if len(p.Command) == 0 {
				t.Errorf("program %s accepted without a command", n)
			}
		}
	})
}

// Every element of an array of tables gets its own lines, not the last
// element's (the TOML library keeps one position per key path).
func TestArrayOfTablesLines(t *testing.T) {
	src := `[admin]
socket = "/tmp/hostctl-lines.sock"
state_dir = "/tmp/hostctl-lines"

[[alerts.sink]]
name = "a"
type = "webhok"
urll = "http://127.0.0.1/"

[[ alerts.sink ]] # the second
name = "a"
type = "slack"
url = "x"

[[proxy.site]]
hosts = ["a.example.com"]
tls = "sometimes"
upstream = "127.0.0.1:8000"

[[proxy.site]]
hosts = ["b.example.com"]
upstream = "127.0.0.1:8000"
tls = "never"
`
	_, err := Parse("lines.toml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"lines.toml:7: alerts.sink[0].type:",
		"lines.toml:8: alerts.sink[0].urll: unknown key",
		"lines.toml:11: alerts.sink[1].name:",
		"lines.toml:13: alerts.sink[1].url:",
		"lines.toml:17: proxy.site[0].tls:",
		"lines.toml:23: proxy.site[1].tls:",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
