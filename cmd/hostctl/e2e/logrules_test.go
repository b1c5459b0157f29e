package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pyErrors is a Python program that raises real exceptions and prints
// their tracebacks to stderr every 50ms, as Django's logging does once it
// logs errors to stderr instead of mailing them. What it raises depends on
// the mode file: "known" raises the handover guide's four false flags,
// "unknown" a bug, "quiet" nothing.
const pyErrors = `import sys, time, traceback

class TimedOut(Exception): pass

def known(i):
    k = i % 4
    if k == 0:
        raise TimedOut("memcached get timed out")
    if k == 1:
        raise TimeoutError("QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30")
    if k == 2:
        raise ValueError('insert or update on table "orders" violates ForeignKey constraint "orders_user_id_fk"')
    raise ConnectionError("HTTPSConnectionPool(host='api.example.com', port=443): Max retries exceeded with url: /v1/x")

def order_view(i):
    return {"id": i}["missing"]

def unknown(i):
    order_view(i)

mode_file = sys.argv[1]
i = 0
while True:
    with open(mode_file) as f:
        mode = f.read().strip()
    i += 1
    if mode == "quiet":
        print("GET /orders/%d/ 200" % i, file=sys.stderr, flush=True)
        time.sleep(0.2)
        continue
    try:
        (known if mode == "known" else unknown)(i)
    except Exception:
        print("Internal Server Error: /orders/%d/" % i, file=sys.stderr)
        traceback.print_exc()
        sys.stderr.flush()
    time.sleep(0.05)
`

// TestLogRulesThroughTheDaemon: the README's On call setup with the real
// binary. The guide's four known errors, raised at a rate far above the
// unknown-errors rule's threshold, do not trigger it (nor their own rule,
// whose threshold is higher); real unknown exceptions at that rate
// trigger one alert whose sample holds whole tracebacks; going quiet
// resolves it.
func TestLogRulesThroughTheDaemon(t *testing.T) {
	hook := newHookReceiver(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "errors.py")
	mode := filepath.Join(dir, "mode")
	for p, b := range map[string]string{script: pyErrors, mode: "known"} {
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := startDaemon(t, fmt.Sprintf(`
[program.web]
command = ["/usr/bin/python3", "-u", %q, %q]
start_secs = "0s"
notes = "The site's workers. Errors: hostctl tail web stderr."

[alerts]
settle = "1s"
check_interval = "1s"

[[alerts.log_rule]]
name = "unknown-errors"
programs = ["web"]
stream = "stderr"
match = ["Traceback", "ERROR", "CRITICAL"]
ignore = ["TimedOut", "QueuePool", "ForeignKey", "Max retries exceeded with url"]
threshold = "5/3s"
quiet = "1s"
notes = "A new error: look at the sample's traceback, then at the last deploy."

[[alerts.log_rule]]
name = "known-errors"
programs = ["web"]
stream = "stderr"
match = ["TimedOut", "QueuePool", "ForeignKey", "Max retries exceeded with url"]
threshold = "500/3s"
severity = "warning"

[[alerts.sink]]
name = "hook"
type = "webhook"
url = %q
secret_file = %q
`, script, mode, hook.url, hook.secretFile), daemonOpts{})
	errLog := filepath.Join(d.dir, "log", "web.err.log")
	if r := d.hostctl(t, "status", "web"); !strings.Contains(r.stdout, "notes (web): The site's workers. Errors: hostctl tail web stderr.") {
		t.Errorf("hostctl status web does not show the program's notes:\n%s%s", r.stdout, r.stderr)
	}

	// The known errors, 20 a second: wait until 60 of them are in the log.
	waitFor(t, 60*time.Second, "60 known errors in "+errLog, func() bool {
		b, _ := os.ReadFile(errLog)
		return strings.Count(string(b), "Traceback (most recent call last):") >= 60
	})
	if err := os.WriteFile(mode, []byte("unknown"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The matcher reads each stream in order: when the unknown errors
	// trigger, it has read the known ones before them.
	ev := hook.wait("trigger", "log_rule:unknown-errors", 60*time.Second)
	if ev.Condition != "log_rule" || ev.Program != "web" || ev.Severity != "error" || !strings.Contains(ev.Summary, "KeyError: 'missing'") {
		t.Errorf("trigger %+v", ev)
	}
	if ev.Details["notes"] != "A new error: look at the sample's traceback, then at the last deploy." {
		t.Errorf("notes %v", ev.Details["notes"])
	}
	first, _ := ev.Details["first"].(map[string]any)
	text, _ := first["text"].(string)
	if !strings.HasPrefix(text, "Traceback (most recent call last):\n") || !strings.Contains(text, "in order_view") || !strings.HasSuffix(text, "KeyError: 'missing'") {
		t.Errorf("the sample's first event is not one whole traceback: %q", text)
	}
	msgs, _ := ev.Details["messages"].([]any)
	if len(msgs) != 1 || !strings.Contains(fmt.Sprint(msgs[0]), "KeyError: 'missing'") {
		t.Errorf("the sample's messages %v: want only the KeyError (the known errors are ignored)", msgs)
	}
	if events, _ := ev.Details["events"].(float64); events != 6 {
		t.Errorf("the trigger counts %v events, want 6 (more than 5): a traceback is one event", ev.Details["events"])
	}
	if len(ev.LastLines) < 4 || ev.LastLines[len(ev.LastLines)-1] != "KeyError: 'missing'" {
		t.Errorf("last lines %q", ev.LastLines)
	}

	if err := os.WriteFile(mode, []byte("quiet"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := hook.wait("resolve", "log_rule:unknown-errors", 60*time.Second)
	if !strings.Contains(res.ResolveSummary, "at or below 5/3s") {
		t.Errorf("resolve %+v", res)
	}
	if n := hook.count("trigger", "log_rule:unknown-errors"); n != 1 {
		t.Errorf("%d triggers of the unknown-errors rule, want 1", n)
	}
	if n := hook.count("trigger", "log_rule:known-errors"); n != 0 {
		t.Errorf("the known errors at 20/s triggered their rule (500/3s):\n%s", hook.dump())
	}
	if b := string(d.metrics(t)); !strings.Contains(b, "hostctl_log_rule_dropped_bytes_total 0") {
		t.Errorf("/metrics: %s", grepLines(b, "log_rule"))
	}
}
