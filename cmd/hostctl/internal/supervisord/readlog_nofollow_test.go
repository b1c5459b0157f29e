package supervisord

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadLogNeverFollowsLinks: readLog and tailProcessLog read a program's
// log file as root for API clients (a read-only token may do it); a log
// swapped for a link to a file of root's must not be read through it.
func TestReadLogNeverFollowsLinks(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "token")
	if err := os.WriteFile(secret, []byte("root's secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "web.out.log")
	if err := os.Symlink(secret, log); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]int64{{0, 0}, {-100, 0}, {0, 100}} {
		if b, err := readFile(log, c[0], c[1], newBudget(1<<20)); err == nil || strings.Contains(string(b), "secret") {
			t.Errorf("readFile(link, %d, %d) = %q, %v; want a FAILED fault", c[0], c[1], b, err)
		}
	}
}
