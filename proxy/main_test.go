package proxy

import (
	"fmt"
	"os"
	"testing"
)

// TestMain points XDG_DATA_HOME at a temp dir for the whole test binary:
// Apply would otherwise set it to the first test's state dir, which is
// removed when that test ends while Caddy keeps using it.
//
// The test binary is also the helper process of the unix upstream tests
// (unixdial_test.go) when HCT_TEST_UNIX_HELPER is set.
func TestMain(m *testing.M) {
	if mode := os.Getenv("HCT_TEST_UNIX_HELPER"); mode != "" {
		unixHelper(mode)
		return
	}
	dir, err := os.MkdirTemp("", "hostctl-proxy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_DATA_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
