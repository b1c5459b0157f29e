package watch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/supervisor"
	"github.com/hostctl/hostctl/supervisor/logfile"
)

// captureThroughRules runs a real writer (yes | head) into a real
// logfile.Stream whose writer taps into lr, and returns the stream once
// everything is written.
func captureThroughRules(t testing.TB, lr *logRules, line string, n int64) *logfile.Stream {
	dir := t.TempDir()
	lc := logfile.DefaultConfig()
	lc.Dir, lc.KeepFree = dir, ""
	m, err := logfile.NewManager(lc, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	rot := lc.Rotation()
	s, err := m.Open(filepath.Join(dir, "web.err.log"), rot, false)
	if err != nil {
		t.Fatal(err)
	}
	if lr != nil {
		lost := new(atomic.Bool)
		key, names := streamKey{"web", "stderr"}, supervisor.ProcessNames{Process: "web", Program: "web", Group: "web"}
		s.SetTap(func(p []byte) { lr.enqueue(key, names, lost, p) })
	}
	cmd := exec.Command("/bin/sh", "-c", `yes "$LINE" | head -c $BYTES`)
	cmd.Env = append(os.Environ(), "LINE="+line, "BYTES="+strconv.FormatInt(n, 10))
	cmd.Stdout = s.WriteEnd()
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLogRuleQueueFullKeepsOutput: with the matcher stalled (its queue
// is never taken), a program's 32 MB of matching output is all written to
// its log; only the rules' work is dropped, and counted.
func TestLogRuleQueueFullKeepsOutput(t *testing.T) {
	lr, fa := newRules(t, alert.LogRule{Name: "r", Match: []string{`ERROR`}})
	const n = 32 << 20
	s := captureThroughRules(t, lr, "2026-03-01 12:00:00 ERROR django.request Internal Server Error: /orders/1/", n)
	if s.Written() != n || s.Dropped() != 0 {
		t.Errorf("written %d of %d bytes, %d dropped: the rules must never cost output", s.Written(), n, s.Dropped())
	}
	if lr.Dropped() == 0 || lr.Dropped() > n {
		t.Errorf("the rules dropped %d bytes of work, want some (their queue holds %d)", lr.Dropped(), ruleQueueBytes)
	}
	if len(fa.active) != 0 {
		t.Errorf("alerts without a matcher: %q", fa.Keys())
	}
}

// TestLogRuleMatcherReadsCapture: with the matcher running, what a real
// program writes through a real stream triggers the rule.
func TestLogRuleMatcherReadsCapture(t *testing.T) {
	lr, fa := newRules(t, alert.LogRule{Name: "r", Match: []string{`ERROR`}, Threshold: "100/1m"})
	lr.m = &lockedAlerts{a: fa}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { lr.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	captureThroughRules(t, lr, "ERROR x", 1<<20)
	deadline := time.Now().Add(20 * time.Second)
	for !lr.m.IsActive("log_rule:r") {
		if time.Now().After(deadline) {
			t.Fatal("no alert from 1 MB of ERROR lines")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lockedAlerts makes fakeAlerts safe for the matcher goroutine and the test.
type lockedAlerts struct {
	mu sync.Mutex
	a  *fakeAlerts
}

func (l *lockedAlerts) Set(a alert.Alert) { l.mu.Lock(); defer l.mu.Unlock(); l.a.Set(a) }
func (l *lockedAlerts) Clear(key, how string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.a.Clear(key, how)
}
func (l *lockedAlerts) IsActive(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.a.IsActive(key)
}
func (l *lockedAlerts) Keys() []string              { l.mu.Lock(); defer l.mu.Unlock(); return l.a.Keys() }
func (l *lockedAlerts) Host() string                { return "web1" }
func (l *lockedAlerts) ResolveInherited(how string) {}

// logSup is fakeSup with real log streams.
type logSup struct {
	fakeSup
	logs map[[2]string]*logfile.Stream // by process and stream
}

func (l *logSup) Log(name, stream string) (supervisor.LogStream, error) {
	if s := l.logs[[2]string{name, stream}]; s != nil {
		return s, nil
	}
	return nil, nil
}

// TestLogRuleTapsOnlyReadStreams: a stream that no rule reads (another
// program, the other stream) is not tapped, so its output is not copied
// for the rules; a config whose rules read it taps it at the next round.
func TestLogRuleTapsOnlyReadStreams(t *testing.T) {
	dir := t.TempDir()
	lc := logfile.DefaultConfig()
	lc.Dir, lc.KeepFree = dir, ""
	m, err := logfile.NewManager(lc, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	sup := &logSup{fakeSup: fakeSup{sts: map[string]supervisor.Status{
		"web":    {Name: "web", Program: "web", ProgramGroup: "web"},
		"celery": {Name: "celery", Program: "celery", ProgramGroup: "celery"},
	}}, logs: map[[2]string]*logfile.Stream{}}
	sts, _ := sup.Status()

	// round opens fresh streams, runs one round with rules, has a real
	// program write a line to each stream, and returns the streams whose
	// output reached the rules' queue.
	round := func(lr *logRules, rules []alert.LogRule) []string {
		t.Helper()
		for _, p := range []string{"web", "celery"} {
			for _, st := range []string{"stdout", "stderr"} {
				s, err := m.Open(filepath.Join(dir, p+"."+st+strconv.Itoa(len(sup.logs))+".log"), lc.Rotation(), false)
				if err != nil {
					t.Fatal(err)
				}
				sup.logs[[2]string{p, st}] = s
			}
		}
		lr.round(sup, rules, sts, nil, t0)
		for _, s := range sup.logs {
			cmd := exec.Command("/bin/sh", "-c", "echo ERROR x")
			cmd.Stdout = s.WriteEnd()
			if err := cmd.Run(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil { // waits for the writer
				t.Fatal(err)
			}
		}
		var got []string
		for len(lr.queue) > 0 {
			c := <-lr.queue
			got = append(got, c.key.process+"/"+c.key.stream)
		}
		slices.Sort(got)
		return got
	}

	lr, _ := newRules(t, alert.LogRule{Name: "celery-errors", Programs: []string{"celery"}, Stream: "stderr", Match: []string{`ERROR`}})
	if got, want := round(lr, lr.rules), []string{"celery/stderr"}; !slices.Equal(got, want) {
		t.Errorf("tapped %q, want only %q", got, want)
	}
	all, _ := newRules(t, alert.LogRule{Name: "errors", Match: []string{`ERROR`}})
	if got, want := round(lr, all.rules), []string{"celery/stderr", "celery/stdout", "web/stderr", "web/stdout"}; !slices.Equal(got, want) {
		t.Errorf("after the reload, tapped %q, want %q", got, want)
	}
}
