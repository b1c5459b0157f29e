package watch

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
)

// prefilterRules have needles of every kind (plain, alternation, folded,
// several per rule), regexes without any (every line goes to them), and
// stream and program filters.
var prefilterRules = append([]alert.LogRule{
	{Name: "folded", Match: []string{`(?i)fatal|(?i:disk) full`}, Threshold: "100000/5m"},
	{Name: "anchored", Match: []string{`^ERROR\b`, `Error$`}, Threshold: "100000/5m"},
	{Name: "no-needle", Match: []string{`^\d+ (errors|failures)$`, `WARN`}, Threshold: "100000/5m"},
	{Name: "stdout-only", Stream: "stdout", Match: []string{`ERROR`}, Threshold: "100000/5m"},
	{Name: "other-program", Programs: []string{"celery"}, Match: []string{`ERROR`}, Threshold: "100000/5m"},
	{Name: "kelvin", Match: []string{`(?i)kelvin|(?i)stop`}, Threshold: "100000/5m"},
	{Name: "invalid-utf8", Match: []string{"bad \uFFFD byte"}, Threshold: "100000/5m"},
}, benchRules...)

// prefilterText is output with lines that each rule matches, lines that
// hold a needle but do not match, needles at line starts and ends,
// timestamps, CRLF, folded letters (the Kelvin sign matches (?i)k),
// invalid UTF-8, tracebacks (chained, and one ended by a plain line)
// and a last line without its newline.
func prefilterText() string {
	var b strings.Builder
	lines := []string{
		benchLine,
		"ERROR worker timeout",
		"2026-03-01T12:00:00.000Z ERROR with a timestamp",
		"xERROR not at the start",
		"ValueError",
		"something Error",
		"something Error.",
		"2026-03-01 12:00:00 INFO status=503 bytes=1",
		"status=5x0",
		"FATAL: the end",
		"Fatal",
		"DISK FULL",
		"dis\u212a full",
		"\u212aelvin",
		"\u017ftop",
		"12 errors",
		"12 errors.",
		"WARN",
		"celery.worker: CRITICAL lost",
		"celery.worker ok",
		"TimedOut waiting",
		"sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached",
		"violates foreign key constraint",
		"MemoryError",
		"bad \xff byte",
		"bad \xef\xbf\xbd byte",
		"CRLF ERROR\r",
		"",
		"Traceback",
	}
	for i := range 6 {
		for j, l := range lines {
			if (i+j)%7 == 0 {
				fmt.Fprintf(&b, djangoTraceback, i, "MemoryError: out")
			}
			if (i*j)%11 == 3 {
				fmt.Fprintf(&b, chainedTraceback, i)
			}
			b.WriteString(l + "\n")
		}
	}
	b.WriteString("ERROR at the end without a newline")
	return b.String()
}

// TestPrefilterHidesNoLine: the same output, cut into chunks of many
// sizes, leaves every rule with the same events (counts, samples,
// messages) with the prefilter as when every line goes to the regexes.
func TestPrefilterHidesNoLine(t *testing.T) {
	text := prefilterText()
	for _, stream := range []string{"stderr", "stdout", ""} {
		for _, prog := range []string{"web", "celery"} {
			for _, n := range []int{1, 3, 64, 101, 4096, len(text)} {
				t.Run(fmt.Sprintf("%s/%s/%d", prog, stream, n), func(t *testing.T) {
					want, _ := newRules(t, prefilterRules...)
					want.scanAll = true
					got, _ := newRules(t, prefilterRules...)
					out(want, prog, stream, text, t0, n)
					out(got, prog, stream, text, t0, n)
					want.flush(t0, 0)
					got.flush(t0, 0)
					if len(want.state) == 0 {
						t.Fatal("no rule matched anything: the test tests nothing")
					}
					for name, ws := range want.state {
						gs := got.state[name]
						if gs == nil {
							t.Errorf("rule %s: no events with the prefilter, %d without", name, ws.total)
						} else if !reflect.DeepEqual(gs, ws) {
							t.Errorf("rule %s: %d events with the prefilter, %d without\nwith:    %+v\nwithout: %+v", name, gs.total, ws.total, gs, ws)
						}
					}
					for name := range got.state {
						if want.state[name] == nil {
							t.Errorf("rule %s: events with the prefilter only", name)
						}
					}
				})
			}
		}
	}
}
