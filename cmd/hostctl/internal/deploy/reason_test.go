package deploy

import (
	"slices"
	"testing"
)

// TestReason: a failure says in one line which step failed and, when its
// output ends a traceback, the traceback's last line; LastLines puts the
// traceback's last lines first.
func TestReason(t *testing.T) {
	const tb = "ModuleNotFoundError: No module named 'no_such_module_v3'"
	gate := "release r3: gunicorn@b did not start: FATAL, last exit: exit 3: gave up after 1 tries\n" +
		"errors in the stderr of gunicorn@b:\n  " + tb + "\n" +
		"last stderr lines of gunicorn@b:\n  Traceback (most recent call last):\n    import no_such_module_v3\n  " + tb + "\n  [INFO] Worker exiting (pid: 12)"
	build := "release r4: build[0] (pip install -r requirements.txt): exit status 1; last lines:\n  Collecting nope\n  ERROR: No matching distribution found for nope\nbuild log: /var/lib/hostctl/deploy/logs/r4.log"
	for _, tc := range []struct {
		name, err, reason string
		lines             []string
	}{
		{"gate, broken import", gate, "release r3: gunicorn@b did not start: FATAL, last exit: exit 3: gave up after 1 tries: " + tb,
			[]string{tb, "errors in the stderr of gunicorn@b:", "last stderr lines of gunicorn@b:", "Traceback (most recent call last):", "import no_such_module_v3", "[INFO] Worker exiting (pid: 12)"}},
		{"build step", build, "release r4: build[0] (pip install -r requirements.txt): exit status 1",
			[]string{"Collecting nope", "ERROR: No matching distribution found for nope"}},
		{"cancel", "release r5: cancelled before the switch; nothing live changed", "release r5: cancelled before the switch; nothing live changed", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Reason(tc.err); got != tc.reason {
				t.Errorf("Reason = %q\nwant     %q", got, tc.reason)
			}
			if got := LastLines(tc.err, 20); !slices.Equal(got, tc.lines) {
				t.Errorf("LastLines = %q\nwant        %q", got, tc.lines)
			}
		})
	}
	if got := LastLines(gate, 2); !slices.Equal(got, []string{tb, "[INFO] Worker exiting (pid: 12)"}) {
		t.Errorf("LastLines(2) = %q", got)
	}
}
