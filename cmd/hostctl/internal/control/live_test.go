package control

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/client"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/testbin"
	"github.com/hostctl/hostctl/supervisor"
	"github.com/hostctl/hostctl/supervisor/logfile"
)

// live is a real supervisor behind the API on a unix socket.
type live struct {
	sup    *supervisor.Supervisor
	srv    *Server
	client *client.Client
	socket string
	dir    string
}

// logOpener opens program logs through a logfile.Manager.
type logOpener struct{ m *logfile.Manager }

func (o logOpener) OpenLog(p *supervisor.ProcessConfig, stream, path string) (supervisor.LogStream, error) {
	s, err := o.m.Open(path, logfile.Rotation{MaxSize: 10 << 20}, false)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// startLive runs progs (name -> shell script) under a real supervisor with
// the API on a temp socket, and waits until they settle. startSecs gives a
// program's startsecs (0 when missing).
func startLive(tb testing.TB, progs map[string]string, startSecs map[string]time.Duration) *live {
	tb.Helper()
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		tb.Fatal(err)
	}
	lc := logfile.DefaultConfig()
	lc.Dir = filepath.Join(dir, "log")
	lc.KeepFree = "0"
	logs, err := logfile.NewManager(lc, nil)
	if err != nil {
		tb.Fatal(err)
	}
	var cfgs []*supervisor.ProgramConfig
	for name, script := range progs {
		c := supervisor.DefaultProgramConfig(name)
		c.Command = supervisor.Command{"/bin/sh", "-c", script}
		c.StartSecs = startSecs[name]
		c.StartRetries = 0
		c.StopTimeout = 5 * time.Second
		cfgs = append(cfgs, &c)
	}
	slices.SortFunc(cfgs, func(a, b *supervisor.ProgramConfig) int { return strings.Compare(a.Name, b.Name) })
	sup, err := supervisor.New(cfgs, supervisor.Options{LogDir: lc.Dir, Logs: logOpener{logs}})
	if err != nil {
		tb.Fatal(err)
	}
	sup.Start()
	socket := filepath.Join(dir, "run", "h.sock")
	l, err := ListenUnix(socket, -1)
	if err != nil {
		tb.Fatal(err)
	}
	srv := New(Options{Programs: sup})
	srv.ServeUnix(l)
	lv := &live{sup: sup, srv: srv, client: &client.Client{Socket: socket}, socket: socket, dir: dir}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Close(ctx)
		sup.Shutdown(ctx)
		logs.Close()
		os.RemoveAll(dir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := sup.StartAutostart(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := sup.WaitSettled(ctx); err != nil {
		tb.Fatal(err)
	}
	return lv
}

func TestLiveActionsAndLogs(t *testing.T) {
	// web says hello with its pid ($$$$: commands expand $$ to $).
	lv := startLive(t, map[string]string{
		"web":  "trap 'echo got-hup' HUP; echo hello $$$$; sleep 1000 & while :; do sleep 1 & wait $!; done",
		"dead": "echo dying >&2; exit 1",
	}, map[string]time.Duration{
		"web": 200 * time.Millisecond,
		// dead must fail to start however busy the machine is: it
		// counts as started only after a minute, and exits long before.
		"dead": time.Minute,
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := lv.client

	// RUNNING (200ms alive) does not mean web's shell has forked its
	// sleep yet: poll (there is no event for it) until the group has both.
	var web apitype.Process
	for {
		progs, err := c.Programs(ctx)
		if err != nil || len(progs) != 2 {
			t.Fatalf("Programs: %v %v", progs, err)
		}
		web = progs[1]
		if web.Name != "web" || web.State != apitype.Running || web.RSSBytes == 0 || web.StdoutLog == "" {
			t.Fatalf("web = %+v", web)
		}
		if web.Processes >= 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("web's process group never had its sleep: %+v", web)
		case <-time.After(50 * time.Millisecond): // between polls of a bounded wait
		}
	}

	// Restart waits for a new RUNNING process.
	res, err := c.Restart(ctx, []string{"web"}, 30*time.Second)
	if err != nil || len(res) != 1 || !res[0].OK || res[0].Status.PID == web.PID || res[0].Status.State != apitype.Running {
		t.Fatalf("Restart(web) = %+v, %v", res, err)
	}
	webPID := res[0].Status.PID

	// Start of a program that cannot start says why.
	res, err = c.Start(ctx, []string{"dead"}, 30*time.Second)
	if err != nil || res[0].OK || !strings.HasPrefix(res[0].Error, "FATAL: ") {
		t.Errorf("Start(dead) = %+v, %v; want a FATAL reason", res, err)
	}

	// Follow sees a line written after it started.
	lines := make(chan string, 16)
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	go c.Log(fctx, "web", "stdout", 1, true, func(l string) error { lines <- l; return nil })
	// The log keeps the old process's output, so the tail may be its
	// hello. RUNNING (200 ms alive) does not mean the new shell has run a
	// line yet: its hello says its trap is set, so wait for that one.
	want := fmt.Sprintf("hello %d", webPID)
	for l := ""; l != want; {
		select {
		case l = <-lines:
			if !strings.HasPrefix(l, "hello ") {
				t.Fatalf("followed line %q, want %q", l, want)
			}
		case <-ctx.Done():
			t.Fatalf("no %q", want)
		}
	}
	if res, err := c.Signal(ctx, "HUP", []string{"web"}); err != nil || !res[0].OK {
		t.Fatalf("Signal: %+v %v", res, err)
	}
	select {
	case l := <-lines:
		if l != "got-hup" {
			t.Errorf("followed line %q, want got-hup", l)
		}
	case <-ctx.Done():
		t.Fatal("no new line")
	}

	// Tail of stderr: dead's line reaches the file a little after it
	// exited (the writer batches); wait for it.
	for {
		var got []string
		err := c.Log(ctx, "dead", "stderr", 5, false, func(l string) error { got = append(got, l); return nil })
		if err == nil && len(got) > 0 {
			if got[0] != "dying" {
				t.Errorf("tail dead stderr = %q", got)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("tail dead stderr = %q, %v", got, err)
		case <-time.After(50 * time.Millisecond): // between polls of a bounded wait
		}
	}

	// Stop all waits until every program is down.
	res, err = c.Stop(ctx, []string{"all"}, 30*time.Second)
	if err != nil || len(res) != 2 {
		t.Fatalf("Stop(all) = %+v, %v", res, err)
	}
	for _, r := range res {
		if !r.OK || slices.Contains([]apitype.State{apitype.Starting, apitype.Running, apitype.Stopping}, r.Status.State) {
			t.Errorf("after stop all: %+v", r)
		}
	}
}

// BenchmarkStatus500 is `hostctl status` against 500 programs: the API
// round trip through the typed client (one /proc scan) and, with the
// binary built, the whole CLI process. Run with -benchtime 20x; it reports
// the p50 of those calls.
func BenchmarkStatus500(b *testing.B) {
	progs := map[string]string{}
	for i := range 500 {
		progs[fmt.Sprintf("p%03d", i)] = "exec sleep 3600"
	}
	lv := startLive(b, progs, nil)
	ctx := context.Background()

	b.Run("api", func(b *testing.B) {
		var d []time.Duration
		for b.Loop() {
			t0 := time.Now()
			ps, err := lv.client.Programs(ctx)
			d = append(d, time.Since(t0))
			if err != nil || len(ps) != 500 {
				b.Fatalf("%d programs, %v", len(ps), err)
			}
		}
		reportP50(b, d)
	})

	b.Run("cli", func(b *testing.B) {
		bin := buildHostctl(b)
		var d []time.Duration
		for b.Loop() {
			t0 := time.Now()
			cmd := exec.Command(bin, "status", "--socket", lv.socket)
			cmd.Env = testbin.Env(nil)
			out, err := cmd.Output()
			d = append(d, time.Since(t0))
			if ee, ok := err.(*exec.ExitError); ok {
				testbin.CheckRace(b, "hostctl status", ee.ProcessState, string(ee.Stderr))
			}
			if err != nil || strings.Count(string(out), "RUNNING") != 500 {
				b.Fatalf("status: %v\n%.300s", err, out)
			}
		}
		reportP50(b, d)
	})

	b.Run("restart", func(b *testing.B) {
		var d []time.Duration
		for b.Loop() {
			t0 := time.Now()
			res, err := lv.client.Restart(ctx, []string{"p250"}, 30*time.Second)
			d = append(d, time.Since(t0))
			if err != nil || !res[0].OK {
				b.Fatalf("restart: %+v %v", res, err)
			}
		}
		reportP50(b, d)
	})
}

func reportP50(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(d[len(d)-1].Microseconds())/1000, "max-ms")
}

// buildHostctl builds the hostctl binary once per test binary (testbin;
// race-instrumented under -race, so measure without it).
func buildHostctl(b *testing.B) string {
	b.Helper()
	bin, err := testbin.Hostctl()
	if err != nil {
		b.Fatal(err)
	}
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup() // what buildHostctl built
	os.Exit(code)
}
