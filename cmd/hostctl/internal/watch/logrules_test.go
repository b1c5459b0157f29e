package watch

import (
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/supervisor"
)

// The log rules on a fake clock: output is fed to the matcher as the log
// writer hands it over, and Run's round (check) is called when the test
// says.

func newRules(t testing.TB, rules ...alert.LogRule) (*logRules, *fakeAlerts) {
	t.Helper()
	c := alert.DefaultConfig()
	for _, r := range rules {
		lr := alert.DefaultLogRule()
		lr.Name, lr.Match, lr.Ignore, lr.Threshold, lr.Quiet, lr.Stream, lr.Programs, lr.Notes = r.Name, r.Match, r.Ignore, r.Threshold, r.Quiet, r.Stream, r.Programs, r.Notes
		if lr.Stream == "" {
			lr.Stream = alert.StreamBoth
		}
		if lr.Threshold == "" {
			lr.Threshold = "0/5m"
		}
		c.LogRules = append(c.LogRules, lr)
	}
	if errs := c.Validate("alerts"); len(errs) > 0 {
		t.Fatalf("invalid rules: %v", errs)
	}
	fa := &fakeAlerts{active: map[string]alert.Alert{}}
	lr := newLogRules(fa, func() time.Time { return t0 })
	lr.configure(c.LogRules)
	return lr, fa
}

// out feeds text as program prog's output on stream, at time at, in
// pieces of n bytes (as the writer may hand it over).
func out(lr *logRules, prog, stream, text string, at time.Time, n int) {
	for len(text) > 0 {
		k := min(n, len(text))
		lr.feed(chunk{key: streamKey{prog, stream}, prog: supervisor.ProcessNames{Process: prog, Program: prog, Group: prog}, b: []byte(text[:k])}, at)
		text = text[k:]
	}
}

const djangoTraceback = `Internal Server Error: /orders/%d/
Traceback (most recent call last):
  File "/srv/app/venv/lib/python3.11/site-packages/django/core/handlers/exception.py", line 55, in inner
    response = get_response(request)
  File "/srv/app/orders/views.py", line 41, in detail
    order = Order.objects.get(pk=pk)
%s
`

const chainedTraceback = `Traceback (most recent call last):
  File "/srv/app/pay.py", line 10, in charge
    r = session.post(url)
requests.exceptions.ConnectionError: Max retries exceeded with url: /v1/charges

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/srv/app/views.py", line 20, in pay
    charge()
RuntimeError: payment %d failed
`

func TestLogRuleThresholdAndSample(t *testing.T) {
	lr, fa := newRules(t, alert.LogRule{Name: "errors", Match: []string{`Traceback`, `ERROR`}, Threshold: "3/1m", Notes: "Look at Sentry first."})
	at := t0
	for i := range 3 {
		out(lr, "gunicorn", "stderr", fmt.Sprintf(djangoTraceback, i, fmt.Sprintf("ValueError: bad order id %d", i)), at, 7)
		at = at.Add(time.Second)
	}
	lr.flush(at, 0)
	if len(fa.active) != 0 {
		t.Fatalf("3 tracebacks (21 lines) triggered %q: a traceback must count once", fa.Keys())
	}
	out(lr, "gunicorn", "stderr", "ERROR worker timeout\n", at, 100)
	a, ok := fa.active["log_rule:errors"]
	if !ok {
		t.Fatalf("the 4th event in 1m did not trigger; active %q", fa.Keys())
	}
	if a.Program != "gunicorn" || a.Severity != alert.Error || a.Details["events"] != 4 || a.Details["notes"] != "Look at Sentry first." {
		t.Errorf("alert %+v", a)
	}
	first := a.Details["first"].(map[string]any)["text"].(string)
	if !strings.HasPrefix(first, "Traceback (most recent call last):\n") || !strings.HasSuffix(first, "ValueError: bad order id 0") {
		t.Errorf("first event is not the whole first traceback: %q", first)
	}
	if last := a.Details["last"].(map[string]any)["text"]; last != "ERROR worker timeout" {
		t.Errorf("last event %q", last)
	}
	msgs := a.Details["messages"].([]map[string]any)
	if len(msgs) != 2 || msgs[0]["message"] != "ValueError: bad order id 0" || msgs[0]["count"] != 3 || msgs[1]["count"] != 1 {
		t.Errorf("messages %v: want the ValueError (ids differ only in numbers) 3 times, the timeout once", msgs)
	}
	if !strings.Contains(a.Summary, "4 events") || !strings.Contains(a.Summary, "ERROR worker timeout") {
		t.Errorf("summary %q", a.Summary)
	}
}

func TestLogRuleIgnoreStreamsPrograms(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rule    alert.LogRule
		prog    string
		stream  string
		text    string
		trigger bool
	}{
		{"match", alert.LogRule{Match: []string{`Error`}}, "web", "stderr", "OperationalError: x\n", true},
		{"ignored", alert.LogRule{Match: []string{`Error`}, Ignore: []string{`QueuePool`}}, "web", "stderr", "TimeoutError: QueuePool limit of size 5 overflow 10 reached\n", false},
		{"ignored in a traceback's exception line", alert.LogRule{Match: []string{`Traceback`}, Ignore: []string{`ForeignKey`}}, "web", "stderr",
			fmt.Sprintf(djangoTraceback, 1, `django.db.utils.IntegrityError: insert or update on table "orders" violates foreign key constraint`) + "x\n", true},
		{"ignored ForeignKey", alert.LogRule{Match: []string{`Traceback`}, Ignore: []string{`(?i)foreign ?key`}}, "web", "stderr",
			fmt.Sprintf(djangoTraceback, 1, `django.db.utils.IntegrityError: violates foreign key constraint`) + "x\n", false},
		{"other stream", alert.LogRule{Match: []string{`Error`}, Stream: "stderr"}, "web", "stdout", "OperationalError: x\n", false},
		{"redirected stream holds both", alert.LogRule{Match: []string{`Error`}, Stream: "stderr"}, "web", "", "OperationalError: x\n", true},
		{"other program", alert.LogRule{Match: []string{`Error`}, Programs: []string{"celery"}}, "web", "stderr", "OperationalError: x\n", false},
		{"listed program", alert.LogRule{Match: []string{`Error`}, Programs: []string{"celery", "web"}}, "web", "stderr", "OperationalError: x\n", true},
		{"chained exceptions are one event", alert.LogRule{Match: []string{`Traceback`}, Threshold: "1/1m"}, "web", "stderr", fmt.Sprintf(chainedTraceback, 1) + "next\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.rule.Name = "r"
			lr, fa := newRules(t, tc.rule)
			out(lr, tc.prog, tc.stream, tc.text, t0, 5)
			lr.flush(t0.Add(time.Second), 0)
			if got := fa.IsActive("log_rule:r"); got != tc.trigger {
				t.Errorf("triggered %v, want %v", got, tc.trigger)
			}
		})
	}
}

func TestLogRuleChainedSample(t *testing.T) {
	lr, fa := newRules(t, alert.LogRule{Name: "r", Match: []string{`Traceback`}, Threshold: "1/1m"})
	out(lr, "web", "stderr", fmt.Sprintf(chainedTraceback, 1)+fmt.Sprintf(chainedTraceback, 2), t0, 4096)
	lr.flush(t0.Add(time.Second), 0) // the second ends when the stream goes quiet
	a, ok := fa.active["log_rule:r"]
	if !ok {
		t.Fatal("two chained tracebacks did not make two events")
	}
	if msgs := a.Details["messages"].([]map[string]any); len(msgs) != 1 || msgs[0]["message"] != "RuntimeError: payment 1 failed" || msgs[0]["count"] != 2 {
		t.Errorf("messages %v: want the last exception of each chain", msgs)
	}
	if last := a.Details["last"].(map[string]any)["text"].(string); strings.Count(last, "Traceback (most recent call last):") != 2 || strings.HasSuffix(last, "\n") {
		t.Errorf("last event %q: want both tracebacks of the chain", last)
	}
}

func TestLogRuleQuietResolves(t *testing.T) {
	lr, fa := newRules(t, alert.LogRule{Name: "r", Match: []string{`ERROR`}, Threshold: "2/1m", Quiet: 30 * time.Second})
	steps := []struct {
		what   string
		at     time.Duration
		lines  int
		active bool
	}{
		{"3 in a second", 0, 3, true},
		{"still inside the window", 50 * time.Second, 0, true},
		{"the window passed: below the threshold since +1m", 80 * time.Second, 0, true},
		{"quiet for 30s after that", 91 * time.Second, 0, false},
		{"2 more: at the threshold, not above", 100 * time.Second, 2, false},
		{"a 3rd within the minute", 120 * time.Second, 1, true},
	}
	for _, s := range steps {
		at := t0.Add(s.at)
		for i := range s.lines {
			out(lr, "web", "stderr", fmt.Sprintf("ERROR %d\n", i), at, 100)
		}
		lr.check(at)
		if got := fa.IsActive("log_rule:r"); got != s.active {
			t.Fatalf("%s (+%s): active %v, want %v", s.what, s.at, got, s.active)
		}
	}
	if a := fa.active["log_rule:r"]; a.Details["events"] != 3 {
		t.Errorf("the new alert's sample counts %v events, want the 3 of the new burst", a.Details["events"])
	}
}

func TestLogRuleTimestampsAndPartialLines(t *testing.T) {
	lr, fa := newRules(t, alert.LogRule{Name: "r", Match: []string{`^ERROR`}})
	out(lr, "web", "stderr", "2026-03-01T12:00:00.000Z ERR", t0, 100)
	if fa.IsActive("log_rule:r") {
		t.Fatal("a line without its end triggered")
	}
	out(lr, "web", "stderr", "OR disk full\n", t0, 100)
	a, ok := fa.active["log_rule:r"]
	if !ok || a.Details["last"].(map[string]any)["text"] != "ERROR disk full" {
		t.Fatalf("the timestamped line in two pieces: %+v", a)
	}
}

// TestLogRuleQueueFull: a full rule queue drops the matching work and
// counts it; the tap never waits.
func TestLogRuleQueueFull(t *testing.T) {
	lr, _ := newRules(t, alert.LogRule{Name: "r", Match: []string{`ERROR`}})
	lost := new(atomic.Bool)
	p := []byte(strings.Repeat("ERROR x\n", 1000))
	for range ruleQueueChunks + 10 { // nobody takes the queue
		lr.enqueue(streamKey{"web", "stderr"}, supervisor.ProcessNames{Process: "web"}, lost, p)
	}
	if got, want := lr.Dropped(), uint64(10*len(p)); got < want {
		t.Errorf("dropped %d bytes, want at least %d", got, want)
	}
	c := <-lr.queue
	if c.lost {
		t.Errorf("the first chunk says output before it was lost")
	}
}

// messageKeyCases are messages with numbers in every form the regex it
// replaces treats differently: hex after 0x, 0x without hex digits,
// digits glued to letters, invalid UTF-8.
var messageKeyCases = []string{
	"", "x", "1", "0x", "0x1", "0xg", "00x1f", "0x0x1", "10x1f", "port 8000 pid 0x7f3a2b", "id=123abc", "0X1F",
	"ValueError: bad order id 42", "\xff12\xfe", "é9", "0xABCDEFG", "a0xb", "x0x", "0x-1",
}

// TestMessageKey: messageKey gives what the regex it replaces gives.
func TestMessageKey(t *testing.T) {
	for _, msg := range messageKeyCases {
		checkMessageKey(t, msg)
	}
}

var variablePart = regexp.MustCompile(`0x[0-9a-fA-F]+|[0-9]+`)

func checkMessageKey(t *testing.T, msg string) {
	t.Helper()
	if got, want := messageKey(msg), variablePart.ReplaceAllString(msg, "#"); got != want {
		t.Errorf("messageKey(%q) = %q, want %q", msg, got, want)
	}
}

func FuzzMessageKey(f *testing.F) {
	for _, msg := range messageKeyCases {
		f.Add(msg)
	}
	f.Fuzz(checkMessageKey)
}
