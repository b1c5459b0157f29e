package watch

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/supervisor"
	"github.com/hostctl/hostctl/supervisor/logfile"
)

// logOpener opens program logs through a real logfile.Manager, as hostctl
// run does.
type logOpener struct{ m *logfile.Manager }

func (o logOpener) OpenLog(p *supervisor.ProcessConfig, stream, path string) (supervisor.LogStream, error) {
	cfg := logfile.DefaultConfig()
	return o.m.Open(path, cfg.Rotation(), p.Program.Timestamps)
}

// TestFatalCarriesReason: a program that prints why it fails to stderr
// and exits at once goes FATAL; the FATAL alert built at the moment the
// watcher sees FATAL carries that line, every time, although the log's
// reader and writer may not have got it to the file when the supervisor
// saw the exit. A real supervisor, real processes and a real log
// manager; each attempt prints a new line, so a stale one is caught.
func TestFatalCarriesReason(t *testing.T) {
	dir := t.TempDir()
	lc := logfile.DefaultConfig()
	lc.Dir, lc.KeepFree = dir, ""
	m, err := logfile.NewManager(lc, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	counter := filepath.Join(dir, "attempt")
	p := supervisor.DefaultProgramConfig("failer")
	p.Command = supervisor.Command{"/bin/sh", "-c", `echo "cannot bind 127.0.0.1:8000 (attempt $(cat ` + counter + `))" >&2; exit 3`}
	p.Autostart = false
	p.StartSecs = time.Second
	p.StartRetries = 0
	p.StopTimeout = 2 * time.Second
	if errs := p.Validate("program.failer"); len(errs) > 0 {
		t.Fatal(errs)
	}
	s, err := supervisor.New([]*supervisor.ProgramConfig{&p}, supervisor.Options{LogDir: dir, Logs: logOpener{m}})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Shutdown(context.Background())

	acfg := alert.DefaultConfig()
	acfg.MemoryAvailableBelow, acfg.DiskFreeBelow = "", ""
	cfg := Config{Alerts: acfg, LogDir: dir}
	var gen uint64
	for i := range 30 {
		if err := os.WriteFile(counter, []byte(strconv.Itoa(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		s.StartProcesses(context.Background(), "failer") // it fails: the error is the state, waited for below
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		st, err := s.WaitFor(ctx, "failer", func(st supervisor.Status) bool { return st.State == supervisor.Fatal && st.Generation > gen })
		cancel()
		if err != nil {
			t.Fatalf("attempt %d: waiting for FATAL: %v (last: %s)", i, err, st.State)
		}
		gen = st.Generation
		alerts := &fakeAlerts{active: map[string]alert.Alert{}}
		w := New(Options{Supervisor: s, Logs: &fakeLogs{}, Proxy: &fakeProxy{}, Alerts: alerts, Host: &fakeHost{},
			Config: func() Config { return cfg }, StatusLine: func() string { return "" }})
		w.checkPrograms(cfg, time.Now())
		a, ok := alerts.active["fatal:failer"]
		if !ok {
			t.Fatalf("attempt %d: no fatal alert; active %q", i, alerts.Keys())
		}
		want := "(attempt " + strconv.Itoa(i) + ")"
		if !strings.Contains(a.Summary, want) {
			t.Fatalf("attempt %d: the FATAL alert does not say why: %q, want it to contain %q", i, a.Summary, want)
		}
		if len(a.LastLines) == 0 || !strings.Contains(a.LastLines[len(a.LastLines)-1], want) {
			t.Fatalf("attempt %d: the alert's last lines end %q, want %q", i, a.LastLines, want)
		}
	}
}
