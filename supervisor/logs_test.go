package supervisor

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/supervisor/logfile"
)

// managerOpener opens program logs through a real logfile.Manager, as
// hostctl run does.
type managerOpener struct{ m *logfile.Manager }

func (o managerOpener) OpenLog(p *ProcessConfig, stream, path string) (LogStream, error) {
	cfg := logfile.DefaultConfig()
	return o.m.Open(path, cfg.Rotation(), p.Program.Timestamps)
}

// TestOutputCapturedAcrossRestartsAndReload: a program's output goes to its
// log through hostctl's pipe across process restarts, and a reload that
// changes the program (but not its output settings) keeps the same log.
func TestOutputCapturedAcrossRestartsAndReload(t *testing.T) {
	dir := t.TempDir()
	lc := logfile.DefaultConfig()
	lc.Dir, lc.KeepFree = dir, ""
	m, err := logfile.NewManager(lc, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// $$$$ is a literal $$ (the shell's pid) after hostctl's own ${VAR} expansion.
	p := shProg("talker", `echo "hello from $$$$ gen=$GEN"; echo "oops from $$$$" >&2; exec sleep 1000`)
	p.Environment = map[string]string{"GEN": "1"}
	s, err := New([]*ProgramConfig{p}, Options{LogDir: dir, Logs: managerOpener{m}})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Shutdown(context.Background())
	ctx := context.Background()
	s.StartProcesses(ctx, "talker")
	st := waitState(t, s, "talker", Running, 20*time.Second)
	if st.StdoutLog != filepath.Join(dir, "talker.out.log") || st.StderrLog != filepath.Join(dir, "talker.err.log") {
		t.Errorf("log paths %q %q", st.StdoutLog, st.StderrLog)
	}
	out, _ := s.Log("talker", "stdout")
	waitLine := func(want string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		err := out.Follow(ctx, 100, func(line []byte) error {
			if strings.Contains(string(line), want) {
				return errFound
			}
			return nil
		})
		if err != errFound {
			t.Fatalf("no line %q in the stdout log: %v", want, err)
		}
	}
	waitLine("gen=1")
	s.RestartProcesses(ctx, "talker")
	st2 := waitCond(t, s, "talker", 20*time.Second, "new pid", func(x Status) bool { return x.State == Running && x.PID != st.PID })
	waitLine("hello from " + strconv.Itoa(st2.PID))

	p2 := *p
	p2.Environment = map[string]string{"GEN": "2"}
	diff, err := s.Reload(ctx, []*ProgramConfig{&p2})
	if err != nil || len(diff.Changed) != 1 {
		t.Fatalf("reload: %+v %v", diff, err)
	}
	waitLine("gen=2")
	waitLogLine(t, s, "talker", "stderr", "oops from")
}

type sentinel string

func (e sentinel) Error() string { return string(e) }

const errFound = sentinel("found")
