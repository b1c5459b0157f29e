package config

import (
	"strings"
	"testing"
)

// A log rule's mistakes come back with their key path and line: a bad
// regex, a zero threshold window, a bad stream.
func TestLogRuleErrors(t *testing.T) {
	src := `[admin]
socket = "/tmp/hostctl-logrule.sock"
state_dir = "/tmp/hostctl-logrule"

[[alerts.log_rule]]
name = "unknown-errors"
match = ["Traceback", "ERROR ("]
ignore = ["QueuePool", "[z-a]"]
threshold = "10/0s"
stream = "stdrr"
severity = "page"

[[alerts.log_rule]]
name = "unknown-errors"
threshold = "ten"
`
	_, err := Parse("rules.toml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"rules.toml:7: alerts.log_rule[0].match[1]: \"ERROR (\" is not an RE2 regex: missing closing )",
		"rules.toml:8: alerts.log_rule[0].ignore[1]: \"[z-a]\" is not an RE2 regex",
		"rules.toml:9: alerts.log_rule[0].threshold: \"10/0s\": the window must be longer than zero",
		"rules.toml:10: alerts.log_rule[0].stream: \"stdrr\" is not stdout, stderr or both",
		"rules.toml:11: alerts.log_rule[0].severity:",
		"rules.toml:14: alerts.log_rule[1].name: \"unknown-errors\" is also the name of log_rule[0]",
		"rules.toml:15: alerts.log_rule[1].threshold: \"ten\" is not COUNT/WINDOW",
		"alerts.log_rule[1].match: required",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestLogRuleGood(t *testing.T) {
	src := `[admin]
socket = "/tmp/hostctl-logrule.sock"
state_dir = "/tmp/hostctl-logrule"

[program.web]
command = "/bin/sleep 1000"

[[alerts.log_rule]]
name = "errors"
match = ["Traceback"]
`
	cfg, err := Parse("rules.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Alerts.LogRules[0]
	if n, w := r.Limit(); r.Stream != "both" || r.Severity != "error" || n != 0 || w.String() != "5m0s" || r.QuietFor() != w {
		t.Errorf("defaults: %+v", r)
	}
	if !r.Matches("Traceback (most recent call last):\nValueError: x") || r.Matches("GET / 200") {
		t.Errorf("the compiled rule does not match as written")
	}
}
