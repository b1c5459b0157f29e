// Package testbin builds hostctl for the tests that run it as a child
// process (the daemon under `hostctl run`, the CLI), and checks a finished
// child for the race detector's report. Only tests import it.
//
// When the test binary runs with -race (make test), Build builds the child
// with -race too, Env makes the child stop at its first data race
// (GORACE=halt_on_error=1, exit status 66), and CheckRace fails the test
// with the report. Without -race the child is built as it ships and the
// checks find nothing.
package testbin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Race reports whether the test binary was built with -race (race_on.go,
// race_off.go); Build then builds with -race.

// RaceExitCode is the race detector's exit status when GORACE sets no
// exitcode.
const RaceExitCode = 66

var (
	mu    sync.Mutex // guards dir and built
	dir   string     // holds every binary built, removed by Cleanup
	built = map[string]*build{}
)

// build is one package's binary, built once.
type build struct {
	once sync.Once
	path string
	err  error
}

// Hostctl returns the path of a hostctl binary built from ./cmd/hostctl
// (see Build).
func Hostctl() (string, error) { return Build("./cmd/hostctl") }

// Build builds the main package pkg, a path relative to the module root
// ("./cmd/hostctl"), once per test binary: later calls, concurrent ones
// included, return the same path. It builds with -race when the test
// binary has it (Race). A race-built hostctl takes minutes and a gigabyte
// or two the first time (the build cache helps later), so build it once,
// in TestMain or where first needed. Cleanup removes the binaries.
func Build(pkg string) (string, error) {
	mu.Lock()
	b, ok := built[pkg]
	if !ok {
		b = &build{}
		built[pkg] = b
	}
	mu.Unlock()
	b.once.Do(func() { b.path, b.err = goBuild(pkg) })
	return b.path, b.err
}

func goBuild(pkg string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("testbin: not inside a Go module")
	}
	mu.Lock()
	if dir == "" {
		dir, err = os.MkdirTemp("", "hostctl-testbin-")
	}
	base := dir
	mu.Unlock()
	if err != nil {
		return "", err
	}
	// One directory per package: two packages may share a base name.
	sub, err := os.MkdirTemp(base, "")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(sub, filepath.Base(pkg))
	args := []string{"build", "-o", bin}
	if Race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = filepath.Dir(gomod)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(cmd.Args[1:], " "), err, msg)
	}
	return bin, nil
}

// Cleanup removes every binary Build made. TestMain calls it after m.Run;
// a Build after Cleanup builds again.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
	}
	dir = ""
	built = map[string]*build{}
}

// Env returns env (os.Environ() when nil) for a child built by Build: when
// the race detector is on, GORACE gets halt_on_error=1 appended to what
// the user set (the last setting of a flag wins), so that a child stops at
// its first data race and exits with RaceExitCode, instead of running on
// with a report that nobody reads. Programs started by hostctl inherit it;
// it changes nothing for a binary without the race detector.
func Env(env []string) []string {
	if env == nil {
		env = os.Environ()
	}
	if !Race {
		return env
	}
	out := make([]string, 0, len(env)+1)
	gorace := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GORACE="); ok {
			gorace = v // the last one is what the child sees
			continue
		}
		out = append(out, kv)
	}
	return append(out, "GORACE="+strings.TrimSpace(gorace+" halt_on_error=1"))
}

// raceExitCode is the exit status the race detector uses with GORACE (the
// child's environment, as Env returns it): its exitcode flag, else 66.
func raceExitCode(gorace string) int {
	code := RaceExitCode
	for _, f := range strings.Fields(gorace) {
		if v, ok := strings.CutPrefix(f, "exitcode="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				code = n
			}
		}
	}
	return code
}

const (
	reportRule  = "=================="
	reportTitle = "WARNING: DATA RACE"
)

// RaceReport returns the race detector's reports found in output (what a
// race-built child wrote to stderr, possibly interleaved with its logs),
// or "" when there is none.
func RaceReport(output string) string {
	var reports []string
	lines := strings.SplitAfter(output, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != reportTitle {
			continue
		}
		var b strings.Builder
		b.WriteString(reportRule + "\n")
		for ; i < len(lines); i++ {
			if strings.TrimSpace(lines[i]) == reportRule {
				break
			}
			b.WriteString(lines[i])
		}
		if !strings.HasSuffix(b.String(), "\n") {
			b.WriteString("\n") // cut short: the child was killed mid-report
		}
		b.WriteString(reportRule + "\n")
		reports = append(reports, b.String())
	}
	return strings.Join(reports, "")
}

// TB is the part of testing.TB that CheckRace needs.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
}

// CheckRace fails t when a finished child (name says which, for the
// message) reported a data race: a report in its output, or the race
// detector's exit status. state may be nil (the child never started or is
// still running); then only output is checked. Call it once the child has
// exited and its output is complete.
func CheckRace(t TB, name string, state *os.ProcessState, output string) {
	t.Helper()
	if r := RaceReport(output); r != "" {
		t.Errorf("%s: the race detector found a data race (fix its cause):\n%s", name, r)
		return
	}
	if Race && state != nil && state.ExitCode() == raceExitCode(os.Getenv("GORACE")) {
		t.Errorf("%s: exit status %d, the race detector's; its report is not in the output (GORACE=%q sends it elsewhere?)", name, state.ExitCode(), os.Getenv("GORACE"))
	}
}
