package supervisord

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/supervisord/xmlrpc"
	"github.com/hostctl/hostctl/supervisor"
)

// python runs code with python3, Debian's supervisor package importable,
// and returns what it prints.
func python(t *testing.T, code string, args ...string) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed (scripts/test-deps.sh installs it): %v", err)
	}
	cmd := exec.Command(py, append([]string{"-c", code}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH=/usr/lib/python3/dist-packages")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	return string(out)
}

// TestLogReadsMatchSupervisord: readFile and tailFile answer every offset
// and length as supervisor.options' readFile and tailFile do, the 64-bit
// extremes included where Python answers at all (where it raises
// OverflowError or MemoryError, hostctl answers as below).
func TestLogReadsMatchSupervisord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("line one\nline two\nthree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nums := []int64{math.MinInt64, math.MinInt64 + 1, -1 << 62, -100, -24, -23, -5, -1, 0, 1, 5, 22, 23, 24, 100, 1 << 62, math.MaxInt64}
	var cases [][2]int64
	for _, o := range nums {
		for _, l := range nums {
			cases = append(cases, [2]int64{o, l})
		}
	}
	in, _ := json.Marshal(cases)
	out := python(t, `
import json, sys
from supervisor.options import readFile, tailFile
res = []
for o, l in json.loads(sys.argv[2]):
    try:
        r = readFile(sys.argv[1], o, l).decode()
    except ValueError as e:
        r = "fault " + e.args[0]
    except (OverflowError, MemoryError):
        r = None
    try:
        tail = tailFile(sys.argv[1], o, l)
    except (OverflowError, MemoryError):
        tail = None
    res.append([r, tail])
print(json.dumps(res))
`, path, string(in))
	var want [][2]any
	if err := json.Unmarshal([]byte(out), &want); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for i, c := range cases {
		var read any
		b, err := readFile(path, c[0], c[1], newBudget(maxReply))
		switch f, ok := errors.AsType[*xmlrpc.Fault](err); {
		case ok:
			read = "fault " + faultNames[f.Code]
		case err != nil:
			t.Fatal(err)
		default:
			read = string(b)
		}
		// Python's FAILED past 2^62 is lseek's EINVAL beyond the largest
		// file the filesystem holds; hostctl reads nothing there, as
		// anywhere past the end.
		if want[i][0] != nil && read != want[i][0] && !(c[0] >= 1<<62 && read == "") {
			t.Errorf("readFile(%d, %d) = %q, supervisord %q", c[0], c[1], read, want[i][0])
		}
		tail, err := tailFile(path, c[0], c[1], newBudget(maxReply))
		if err != nil {
			t.Errorf("tailFile(%d, %d): %v", c[0], c[1], err)
		}
		if got, w := fmt.Sprint(tail), fmt.Sprint(want[i][1]); want[i][1] != nil && got != w {
			t.Errorf("tailFile(%d, %d) = %s, supervisord %s", c[0], c[1], got, w)
		}
	}
	// Where Python overflows: everything from the start, or from the end.
	for _, c := range []struct {
		offset, length int64
		want           string
	}{
		{math.MinInt64, 0, "line one\nline two\nthree\n"},
		{0, math.MaxInt64, "line one\nline two\nthree\n"},
		{5, math.MaxInt64, "one\nline two\nthree\n"},
	} {
		if b, err := readFile(path, c.offset, c.length, newBudget(maxReply)); err != nil || string(b) != c.want {
			t.Errorf("readFile(%d, %d) = %q, %v; want %q", c.offset, c.length, b, err, c.want)
		}
	}
	if tail, err := tailFile(path, 0, math.MaxInt64, newBudget(maxReply)); err != nil || fmt.Sprint(tail) != "[line one\nline two\nthree\n 24 false]" {
		t.Errorf("tailFile(0, MaxInt64) = %q, %v", tail, err)
	}
}

// TestReplyCap: the log reads of one request, and the answers of a
// multicall, stop at the reply cap with a FAILED fault that says so; the
// calls past it are not made.
func TestReplyCap(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "main.log")
	if err := os.WriteFile(logPath, []byte(strings.Repeat("x", 1000)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fake := &fakeSupervisor{sts: []supervisor.Status{{Name: "api", ProgramGroup: "api", State: supervisor.Running, PID: os.Getpid()}}}
	s := New(Options{Supervisor: fake, MainLog: fakeMainLog(logPath)})
	s.replyCap = 10_000 // ten reads of 1001 bytes do not fit
	srv := httptest.NewServer(http.HandlerFunc(s.RPC))
	defer srv.Close()
	post := func(method string, params ...any) (any, error) {
		t.Helper()
		b, _ := xmlrpc.EncodeCall(method, params...)
		resp, err := http.Post(srv.URL, "text/xml", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("HTTP %s", resp.Status)
		}
		return xmlrpc.DecodeResponse(resp.Body)
	}
	read := xmlrpc.Struct{{Name: "methodName", Value: "supervisor.readLog"}, {Name: "params", Value: []any{0, 0}}}
	signal := xmlrpc.Struct{{Name: "methodName", Value: "supervisor.signalProcess"}, {Name: "params", Value: []any{"api", "HUP"}}}
	var calls []any
	for range 12 {
		calls = append(calls, read)
	}
	v, err := post("system.multicall", append(calls, signal))
	if err != nil {
		t.Fatal(err)
	}
	res := v.([]any)
	for i, r := range res {
		_, isFault := r.(xmlrpc.Struct)
		if want := i >= 9; isFault != want {
			t.Errorf("multicall answer %d: %.60v; want a fault from the 10th on", i, r)
		}
		if st, ok := r.(xmlrpc.Struct); ok {
			if fs, _ := st.Get("faultString"); !strings.Contains(fmt.Sprint(fs), "reply cap") {
				t.Errorf("multicall answer %d: %v, want the reply cap", i, fs)
			}
		}
	}
	if len(fake.signals) != 0 {
		t.Errorf("a call past the cap was made: %q", fake.signals)
	}
	// One read past the cap; then a request of its own, within it.
	s.replyCap = 500
	if _, err := post("supervisor.readLog", 0, 0); err == nil || !strings.Contains(err.Error(), "reply cap") {
		t.Errorf("readLog of 1001 bytes with a 500-byte cap: %v, want the reply cap fault", err)
	}
	if v, err := post("supervisor.readLog", -100, 0); err != nil || len(v.(string)) != 100 {
		t.Errorf("readLog(-100, 0) with a 500-byte cap: %v, %v", v, err)
	}
	if _, err := post("supervisor.tailProcessStdoutLog", "api", 0, 1000); err != nil {
		t.Errorf("tailProcessStdoutLog without a log file: %v", err)
	}
}

// fakeSupervisor serves fixed statuses and records signals; it has no
// logs.
type fakeSupervisor struct {
	sts     []supervisor.Status
	signals []string
}

func (f *fakeSupervisor) Status(names ...string) ([]supervisor.Status, error) {
	if len(names) == 0 {
		return f.sts, nil
	}
	var out []supervisor.Status
	for _, n := range names {
		i := slices.IndexFunc(f.sts, func(s supervisor.Status) bool { return s.Name == n })
		if i < 0 {
			return nil, supervisor.ErrUnknownProgram
		}
		out = append(out, f.sts[i])
	}
	return out, nil
}

func (f *fakeSupervisor) Log(string, string) (supervisor.LogStream, error) { return nil, nil }
func (f *fakeSupervisor) StartProcesses(context.Context, ...string) error  { return nil }
func (f *fakeSupervisor) StopProcesses(context.Context, ...string) error   { return nil }
func (f *fakeSupervisor) SignalProcesses(_ context.Context, sig syscall.Signal, names ...string) error {
	f.signals = append(f.signals, supervisor.SignalName(sig)+" "+strings.Join(names, ","))
	return nil
}
func (f *fakeSupervisor) WaitFor(_ context.Context, name string, _ func(supervisor.Status) bool) (supervisor.Status, error) {
	sts, err := f.Status(name)
	if err != nil {
		return supervisor.Status{}, err
	}
	return sts[0], nil
}

// fakeMainLog is a MainLog at a path.
type fakeMainLog string

func (f fakeMainLog) Path() string { return string(f) }
func (f fakeMainLog) Follow(context.Context, int, func([]byte) error) error {
	return nil
}

func TestPyTimedelta(t *testing.T) {
	secs := []int64{0, 1, 59, 62, 3599, 3600, 86399, 86400, 90061, 2*86400 + 5, 400 * 86400}
	var args []string
	for _, s := range secs {
		args = append(args, fmt.Sprint(s))
	}
	out := python(t, "import sys, datetime\nfor a in sys.argv[1:]: print(datetime.timedelta(seconds=int(a)))", args...)
	want := strings.Split(strings.TrimSpace(out), "\n")
	for i, s := range secs {
		if got := pyTimedelta(s); got != want[i] {
			t.Errorf("pyTimedelta(%d) = %q, Python %q", s, got, want[i])
		}
	}
}

// TestMethodTable: every published method has a signature and help, and
// the optional arguments are among its parameters.
func TestMethodTable(t *testing.T) {
	for name, m := range rpcMethods {
		if len(m.sig) == 0 || m.help == "" || m.call == nil || m.optional > len(m.sig)-1 {
			t.Errorf("%s: sig %v, help %q, optional %d", name, m.sig, m.help, m.optional)
		}
		if _, ok := rpcUnsupported[name]; ok {
			t.Errorf("%s is both published and unsupported", name)
		}
		if ns, _, _ := strings.Cut(name, "."); ns != "supervisor" && ns != "system" {
			t.Errorf("%s: namespace %q", name, ns)
		}
	}
}
