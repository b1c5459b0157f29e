package config

import (
	"strings"
	"testing"
)

// TestMachineProblems: what the config names and this machine lacks (a
// user, a command, a directory, a static dir, a certificate) is marked
// Machine; a mistake in the file is not.
func TestMachineProblems(t *testing.T) {
	machineOnly := `
[program.web]
command = "/nonexistent/hct-import/bin/gunicorn app.wsgi"
directory = "/nonexistent/hct-import/app"
user = "hct-import-nosuchuser"

[proxy]
listen = "127.0.0.1:8080"
upstream = "127.0.0.1:8000"
hosts = ["example.com"]
cert_file = "/nonexistent/hct-import/fullchain.pem"
key_file = "/nonexistent/hct-import/privkey.pem"

[[proxy.static]]
path = "/static/"
dir = "/nonexistent/hct-import/static"
`
	_, err := Parse("machine.toml", []byte(machineOnly))
	if err == nil {
		t.Fatal("Parse accepted a config whose user, command and directories do not exist")
	}
	for _, e := range err.(Errors) {
		if !e.Machine {
			t.Errorf("not marked as a problem with this machine: %v", e)
		}
	}
	for _, key := range []string{"program.web.command", "program.web.directory", "program.web.user", "proxy.cert_file", "proxy.static[0].dir"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("no problem reported at %s:\n%v", key, err)
		}
	}
	if !OnlyMachine(err) {
		t.Errorf("OnlyMachine = false for:\n%v", err)
	}

	_, err = Parse("file.toml", []byte(machineOnly+`
[program.worker]
command = "/bin/true"
stop_signal = "NOPE"
`))
	if OnlyMachine(err) {
		t.Fatalf("OnlyMachine = true with a bad stop_signal:\n%v", err)
	}
	for _, e := range err.(Errors) {
		if e.Key == "program.worker.stop_signal" && e.Machine {
			t.Errorf("a bad stop_signal is marked as a problem with this machine: %v", e)
		}
	}
}

// TestConsoleLogsShared: programs (and instances) may all send their
// lines to hostctl's own stdout and stderr; that is not two writers of
// one file, and it needs no ${INSTANCE}.
func TestConsoleLogsShared(t *testing.T) {
	_, err := Parse("console.toml", []byte(`
[program.web]
command = "/bin/true"
stdout_log = "-"
stderr_log = "-"

[program.worker]
command = "/bin/true"
instances = 2
process_name = "worker-${INSTANCE}"
stdout_log = "-"
stderr_log = "/dev/stdout"
`))
	if err != nil {
		t.Fatalf("Parse refuses programs that share hostctl's stdout and stderr:\n%v", err)
	}
	_, err = Parse("relative.toml", []byte(`
[program.web]
command = "/bin/true"
stdout_log = "web.log"
`))
	if err == nil || !strings.Contains(err.Error(), `"-" (hostctl's own output)`) {
		t.Errorf("a relative stdout_log: %v", err)
	}
}
