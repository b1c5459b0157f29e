package supervisord

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/supervisor"
)

// infoOf asks url's getProcessInfo about each name with Python's
// xmlrpc.client, as a supervisord client asks.
func infoOf(t *testing.T, url string, names ...string) map[string]map[string]any {
	t.Helper()
	out := python(t, `
import json, sys, xmlrpc.client
s = xmlrpc.client.ServerProxy(sys.argv[1])
print(json.dumps({n: s.supervisor.getProcessInfo(n) for n in sys.argv[2:]}))
`, append([]string{url}, names...)...)
	var res map[string]map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return res
}

// supervisordCheck is what supervisord's own check_execv_args
// (supervisor/options.py) says of path as a command.
func supervisordCheck(t *testing.T, path string) string {
	t.Helper()
	return strings.TrimSpace(python(t, `
import os, sys
from supervisor.options import ServerOptions
try:
    st = os.stat(sys.argv[1])
except OSError:
    st = None
try:
    ServerOptions().check_execv_args(sys.argv[1], [sys.argv[1]], st)
    print("ok")
except Exception as e:
    print(e.args[0])
`, path))
}

// TestFailedStartsAsSupervisord: a real supervisor, its programs failing
// in each way supervisord also knows, and getProcessInfo read with
// Python's xmlrpc.client: spawnerr and description are supervisord's
// texts in BACKOFF and in FATAL (not hostctl's own, which its CLI shows),
// and so are EXITED's spawnerr and every exitstatus.
func TestFailedStartsAsSupervisord(t *testing.T) {
	dir := t.TempDir()
	gone, plain, sub := filepath.Join(dir, "gone"), filepath.Join(dir, "it's plain"), filepath.Join(dir, "sub")
	for _, f := range []string{gone, plain, sub} {
		if err := os.WriteFile(f, []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	prog := func(name string, argv ...string) *supervisor.ProgramConfig {
		p := supervisor.DefaultProgramConfig(name)
		p.Command = argv
		p.Autostart, p.FatalRetry = false, supervisor.RetryNever
		p.StartSecs, p.StopTimeout = 0, 2*time.Second
		p.Backoff = supervisor.BackoffConfig{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}
		return &p
	}
	// crash exits at once: supervisord's startretries, then FATAL.
	crash := prog("crash", "/bin/sh", "-c", "echo dying >&2; exit 3")
	crash.StartSecs, crash.StartRetries = 5*time.Second, 1
	// backoff exits at once and waits an hour in BACKOFF.
	backoff := prog("backoff", "/bin/sh", "-c", "exit 3")
	backoff.StartSecs, backoff.StartRetries = 5*time.Second, 3
	backoff.Backoff = supervisor.BackoffConfig{Initial: time.Hour, Max: time.Hour}
	// unready is killed when its ready probe has not passed.
	unready := prog("unready", "sleep", "1000")
	unready.StartRetries = 0
	unready.Ready = &supervisor.ProbeConfig{Exec: supervisor.Command{"/bin/false"}, Interval: 20 * time.Millisecond, Timeout: time.Second, Deadline: 200 * time.Millisecond}
	missing := prog("missing", gone)
	notExec := prog("notexec", plain)
	isDir := prog("isdir", sub)
	bad := prog("bad", "/bin/sh", "-c", "exit 3")
	bad.Autorestart = supervisor.RestartNever
	killed := prog("killed", "/bin/sh", "-c", "kill -9 $$$$") // $$ is hostctl's escaped $
	killed.Autorestart = supervisor.RestartNever
	good := prog("good", "/bin/sh", "-c", "exit 0")
	good.Autorestart = supervisor.RestartNever
	sup, err := supervisor.New([]*supervisor.ProgramConfig{crash, backoff, unready, missing, notExec, isDir, bad, killed, good}, supervisor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sup.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		sup.Shutdown(ctx)
	})
	srv := httptest.NewServer(http.HandlerFunc(New(Options{Supervisor: sup}).RPC))
	defer srv.Close()
	// The commands break after the config was loaded (as files do).
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(plain, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}

	const tooQuickly = "Exited too quickly (process log may have details)"
	date := regexp.MustCompile(`^[A-Z][a-z]{2} \d\d \d\d:\d\d [AP]M$`)
	for _, tc := range []struct {
		name     string
		state    supervisor.State
		spawnerr string
		desc     string // "" : the same as spawnerr; "DATE": a stop date
		exit     float64
	}{
		{"crash", supervisor.Fatal, tooQuickly, "", 0},
		{"backoff", supervisor.Backoff, tooQuickly, "", 0},
		{"unready", supervisor.Fatal, tooQuickly, "", 0},
		{"missing", supervisor.Fatal, supervisordCheck(t, gone), "", 0},
		{"notexec", supervisor.Fatal, supervisordCheck(t, plain), "", 0},
		{"isdir", supervisor.Fatal, supervisordCheck(t, sub), "", 0},
		{"bad", supervisor.Exited, "Bad exit code 3", "DATE", 3},
		{"killed", supervisor.Exited, "Bad exit code -1", "DATE", -1},
		{"good", supervisor.Exited, "", "DATE", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := sup.StartProcesses(context.Background(), tc.name); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if st, err := sup.WaitFor(ctx, tc.name, func(st supervisor.Status) bool { return st.State == tc.state }); err != nil {
				t.Fatalf("waiting for %s: %v (last %s, %q)", tc.state, err, st.State, st.SpawnErr)
			}
			info := infoOf(t, srv.URL, tc.name)[tc.name]
			want := tc.desc
			if want == "" {
				want = tc.spawnerr
			}
			desc, _ := info["description"].(string)
			if want == "DATE" && date.MatchString(desc) {
				desc = "DATE"
			}
			if info["statename"] != tc.state.String() || info["spawnerr"] != tc.spawnerr || desc != want || info["exitstatus"] != tc.exit {
				t.Errorf("getProcessInfo: statename %q spawnerr %q description %q exitstatus %v\n"+
					"          want: statename %q spawnerr %q description %q exitstatus %v",
					info["statename"], info["spawnerr"], info["description"], info["exitstatus"], tc.state, tc.spawnerr, want, tc.exit)
			}
		})
	}
	// A sanity check of the expectations read from supervisord itself.
	if !strings.HasPrefix(supervisordCheck(t, gone), "can't find command ") {
		t.Errorf("supervisord on a missing command: %q", supervisordCheck(t, gone))
	}
}

func TestPyRepr(t *testing.T) {
	strs := []string{"/srv/app", "it's", `say "hi"`, `both ' and "`, `back\slash`, "tab\there", "nl\n", "\x01\x7f", "é ü", "\u00a0", "\u200b", "😀", "日本"}
	out := python(t, "import sys, json\nprint(json.dumps([repr(a) for a in json.loads(sys.argv[1])]))", string(must(json.Marshal(strs))))
	var want []string
	if err := json.Unmarshal([]byte(out), &want); err != nil {
		t.Fatal(err)
	}
	for i, s := range strs {
		if got := pyRepr(s); got != want[i] {
			t.Errorf("pyRepr(%q) = %s, Python %s", s, got, want[i])
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
