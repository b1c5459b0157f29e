package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProvisionThenPureValidate is Caddy's order: Load reads every secret
// once (provision) and keeps what it read (the admin tokens for the admin
// API, the sinks' and fleet hosts' secrets); validation reads nothing, so
// a file changed or removed after the load changes nothing: the daemon
// serves with what was checked, never with a second, unchecked read.
func TestProvisionThenPureValidate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	admin := write("admin.token", "  0123456789abcdef-admin\n")
	read := write("read.token", "0123456789abcdef-read\n")
	hook := write("hook.secret", "hook-secret\n")
	fleetTok := write("web1.token", "web1-token\n")
	src := fmt.Sprintf(`[admin]
socket = %q
state_dir = %q
listen = "127.0.0.1:9001"
token_file = %q
read_token_file = %q

[log]
dir = %q

[[alerts.sink]]
name = "hook"
type = "webhook"
url = "https://hooks.example.com/x"
secret_file = %q

[[alerts.sink]]
name = "mail"
type = "email"
host = "smtp.example.com"
from = "a@example.com"
to = ["b@example.com"]

[[fleet.host]]
name = "web1"
url = "http://127.0.0.1:9002"
token_file = %q
`, filepath.Join(dir, "run", "h.sock"), filepath.Join(dir, "state"), admin, read, filepath.Join(dir, "log"), hook, fleetTok)
	f, err := Parse(filepath.Join(dir, "hostctl.toml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if f.Admin.Token != "0123456789abcdef-admin" || f.Admin.ReadToken != "0123456789abcdef-read" {
		t.Errorf("provisioned tokens %q %q, want the files' contents without white space", f.Admin.Token, f.Admin.ReadToken)
	}
	if s := f.Alerts.Sinks[1]; s.Port != 587 || s.StartTLS == nil || !*s.StartTLS {
		t.Errorf("email sink defaults: port %d starttls %v, want 587 and true filled at provision", s.Port, s.StartTLS)
	}

	// Every file gone: validation, which reads nothing, still passes.
	for _, p := range []string{admin, read, hook, fleetTok} {
		os.Remove(p)
	}
	var errs []string
	f.Admin.validateTCP(func(key, format string, a ...any) { errs = append(errs, key+": "+fmt.Sprintf(format, a...)) })
	for _, e := range append(f.Alerts.Validate("alerts"), f.Fleet.Validate("fleet")...) {
		errs = append(errs, e.Error())
	}
	if len(errs) > 0 {
		t.Errorf("validation after the files were removed: %s", strings.Join(errs, "\n"))
	}

	// Provision reports what it could not read, at its key, as a problem
	// of this machine.
	_, err = Parse(filepath.Join(dir, "hostctl.toml"), []byte(src))
	if err == nil {
		t.Fatal("no error with the secret files missing")
	}
	for _, key := range []string{"admin.token_file", "admin.read_token_file", "alerts.sink[0].secret_file", "fleet.host[0].token_file"} {
		if !strings.Contains(err.Error(), key+": cannot read ") {
			t.Errorf("no %q cannot read in:\n%v", key, err)
		}
	}
	if es := err.(Errors); es[0].Key == "admin.token_file" && !es[0].Machine {
		t.Errorf("a missing token file is not marked as this machine's problem: %+v", es[0])
	}
}
