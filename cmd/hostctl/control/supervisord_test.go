package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hostctl/hostctl/cmd/hostctl/control/xmlrpc"
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
// and length as supervisor.options' readFile and tailFile do.
func TestLogReadsMatchSupervisord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("line one\nline two\nthree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nums := []int64{-100, -24, -23, -5, -1, 0, 1, 5, 22, 23, 24, 100}
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
    res.append([r, tailFile(sys.argv[1], o, l)])
print(json.dumps(res))
`, path, string(in))
	var want [][2]any
	if err := json.Unmarshal([]byte(out), &want); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for i, c := range cases {
		var read any
		b, err := readFile(path, c[0], c[1])
		switch f, ok := errors.AsType[*xmlrpc.Fault](err); {
		case ok:
			read = "fault " + faultNames[f.Code]
		case err != nil:
			t.Fatal(err)
		default:
			read = string(b)
		}
		if read != want[i][0] {
			t.Errorf("readFile(%d, %d) = %q, supervisord %q", c[0], c[1], read, want[i][0])
		}
		if got, w := fmt.Sprint(tailFile(path, c[0], c[1])), fmt.Sprint(want[i][1]); got != w {
			t.Errorf("tailFile(%d, %d) = %s, supervisord %s", c[0], c[1], got, w)
		}
	}
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

func TestSplitNamespec(t *testing.T) {
	for spec, want := range map[string][2]string{
		"web":         {"web", "web"},
		"web:web":     {"web", "web"},
		"web:*":       {"web", ""},
		"web:":        {"web", ""},
		"celery:w_0":  {"celery", "w_0"},
		"a:b:c":       {"a", "b:c"},
		":":           {"", ""},
		"celery:w_0*": {"celery", "w_0*"},
	} {
		if g, n := splitNamespec(spec); g != want[0] || n != want[1] {
			t.Errorf("splitNamespec(%q) = %q, %q; want %q, %q", spec, g, n, want[0], want[1])
		}
	}
}

// TestProcessGroup: a status that carries a process group (programs in a
// [group.X], instances) is in that group; one without is its own group.
func TestProcessGroup(t *testing.T) {
	if g := processGroup(supervisor.Status{Name: "web"}); g != "web" {
		t.Errorf("processGroup without a group = %q", g)
	}
	if g := processGroup(supervisor.Status{Name: "celery_0", ProcessGroup: "celery"}); g != "celery" {
		t.Errorf("processGroup = %q, want celery", g)
	}
	if n := (proc{st: supervisor.Status{Name: "celery_0"}, group: "celery"}).namespec(); n != "celery:celery_0" {
		t.Errorf("namespec = %q", n)
	}
	if n := (proc{st: supervisor.Status{Name: "web"}, group: "web"}).namespec(); n != "web" {
		t.Errorf("namespec = %q", n)
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
