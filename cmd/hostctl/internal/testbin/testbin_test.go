package testbin

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// recorder is a TB that keeps what CheckRace reports.
type recorder struct{ errs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// runRacy runs testdata/racy, built by Build, with Env's environment.
func runRacy(t *testing.T, args ...string) (*os.ProcessState, string) {
	t.Helper()
	bin, err := Build("./cmd/hostctl/internal/testbin/testdata/racy")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = Env(nil)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Minute
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	return cmd.ProcessState, out.String()
}

// TestRaceInChildFailsTheTest: a child built by Build with a data race
// stops at it (halt_on_error), exits with the race detector's status, and
// CheckRace fails the test with the report.
func TestRaceInChildFailsTheTest(t *testing.T) {
	if !Race {
		t.Skip("the race detector is off (go test -race)")
	}
	state, out := runRacy(t, "race")
	if state.ExitCode() != RaceExitCode {
		t.Errorf("racy child: %v, want exit status %d\n%s", state, RaceExitCode, out)
	}
	if strings.Contains(out, "survived") {
		t.Errorf("racy child ran on after its data race: GORACE=halt_on_error=1 did not reach it\n%s", out)
	}
	var rec recorder
	CheckRace(&rec, "racy", state, out)
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "WARNING: DATA RACE") || !strings.Contains(rec.errs[0], "main.main") {
		t.Errorf("CheckRace on a racy child reported %q; want one failure with the race report", rec.errs)
	}
}

// TestCleanChildPasses: the same child without its race passes CheckRace.
func TestCleanChildPasses(t *testing.T) {
	state, out := runRacy(t)
	if !state.Success() || !strings.Contains(out, "survived, n = 2") {
		t.Fatalf("clean child: %v\n%s", state, out)
	}
	var rec recorder
	CheckRace(&rec, "clean", state, out)
	if len(rec.errs) != 0 {
		t.Errorf("CheckRace on a clean child: %q", rec.errs)
	}
}

func TestBuildOnce(t *testing.T) {
	a, err := Build("./cmd/hostctl/internal/testbin/testdata/racy")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build("./cmd/hostctl/internal/testbin/testdata/racy")
	if err != nil || a != b {
		t.Errorf("second Build = %q, %v; want %q again", b, err, a)
	}
}

func TestEnv(t *testing.T) {
	if !Race {
		if got := Env([]string{"A=1"}); !slices.Equal(got, []string{"A=1"}) {
			t.Errorf("Env without the race detector = %q, want it unchanged", got)
		}
		return
	}
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"unset", []string{"A=1"}, []string{"A=1", "GORACE=halt_on_error=1"}},
		{"user's kept", []string{"GORACE=log_path=/tmp/r exitcode=3", "A=1"}, []string{"A=1", "GORACE=log_path=/tmp/r exitcode=3 halt_on_error=1"}},
		{"last wins", []string{"GORACE=a=1", "GORACE=b=2"}, []string{"GORACE=b=2 halt_on_error=1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Env(tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("Env(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRaceExitCode(t *testing.T) {
	for gorace, want := range map[string]int{"": 66, "halt_on_error=1": 66, "exitcode=3 halt_on_error=1": 3, "exitcode=x": 66} {
		if got := raceExitCode(gorace); got != want {
			t.Errorf("raceExitCode(%q) = %d, want %d", gorace, got, want)
		}
	}
}

func TestRaceReport(t *testing.T) {
	report := "==================\nWARNING: DATA RACE\nWrite at 0x00c000012345 by goroutine 7:\n  main.main.func1()\n      /x/main.go:17 +0x2e\n==================\n"
	for _, tc := range []struct {
		name, in, want string
	}{
		{"none", `{"level":"info","msg":"hostctl started"}` + "\n", ""},
		{"alone", report, report},
		{"between log lines", `{"msg":"a"}` + "\n" + report + `{"msg":"b"}` + "\nFound 1 data race(s)\n", report},
		{"two", report + report, report + report},
		{"cut short", "==================\nWARNING: DATA RACE\nRead at", "==================\nWARNING: DATA RACE\nRead at\n==================\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RaceReport(tc.in); got != tc.want {
				t.Errorf("RaceReport = %q, want %q", got, tc.want)
			}
		})
	}
}
