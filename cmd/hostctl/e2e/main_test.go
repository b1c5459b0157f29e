// Package e2e holds every test that runs the real hostctl binary: the
// daemon under `hostctl run` with real programs, sockets and signals, the
// CLI against it (status, actions, tail, reload, drain, alerts, check,
// import), supervisorctl and Python's XML-RPC client against its
// supervisord API, attacks as an unprivileged user, the hardened systemd
// unit, what only a whole process can show (kill -9 of hostctl, survivors,
// zombies), the Django example (configs/webserver.toml: gunicorn, celery
// on rabbitmq, memcached, hostctl's proxy in front) broken and healed, and
// a fleet of webservers behind a front. Unit tests stay with their
// package.
//
// The binary is built once for the whole package (internal/testbin: with
// -race when the tests have it). Most tests start their daemon with
// startDaemon (daemon_test.go) and run the CLI with runHostctl; the
// Django, on-call, hardened and fleet tests run hostctl on a config of
// their own with startConfigDaemon (stack_test.go). What they run beyond
// hostctl is installed by scripts/test-deps.sh, and for the Django example
// by scripts/e2e-deps.sh (as root), which names what is missing.
package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testbin"
)

// hostctlBin is the hostctl binary the tests run (TestMain builds it).
var hostctlBin string

// hogged keeps holdMemory's memory reachable.
var hogged []byte

// holdMemory allocates and touches mb megabytes, then waits to be killed.
func holdMemory(mb string) {
	n, _ := strconv.Atoi(mb)
	hogged = make([]byte, n<<20)
	for i := 0; i < len(hogged); i += 4096 {
		hogged[i] = 1
	}
	select {}
}

// TestMain builds hostctl once (with -race when the tests have it: see
// testbin). With HOSTCTL_TEST_ALLOC_MB set, the test binary is instead a
// program that holds that much memory (for the memory_limit tests).
func TestMain(m *testing.M) {
	if mb := os.Getenv("HOSTCTL_TEST_ALLOC_MB"); mb != "" {
		holdMemory(mb)
	}
	var err error
	if hostctlBin, err = testbin.Hostctl(); err != nil {
		fmt.Fprintln(os.Stderr, "building hostctl:", err)
		testbin.Cleanup()
		os.Exit(1)
	}
	// The tests make dirs that the app's user must reach, and chmod them:
	// none may change the system's temp dir (1777) on the way. A test
	// once did, and apt could no longer write there.
	tmpBefore, tmpErr := os.Stat(os.TempDir())
	code := m.Run()
	testbin.Cleanup()
	if tmpAfter, err := os.Stat(os.TempDir()); tmpErr == nil && err == nil && tmpAfter.Mode() != tmpBefore.Mode() {
		fmt.Fprintf(os.Stderr, "FAIL: a test changed %s from %v to %v (restored)\n", os.TempDir(), tmpBefore.Mode(), tmpAfter.Mode())
		os.Chmod(os.TempDir(), tmpBefore.Mode().Perm()|tmpBefore.Mode()&(os.ModeSticky|os.ModeSetuid|os.ModeSetgid))
		code = 1
	}
	os.Exit(code)
}

// moduleRoot is the directory holding go.mod (the Django example's
// hostctl runs there, so the relative paths in configs/webserver.toml
// resolve).
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}
