package logfile

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestTap: the writer of a file stream, and the reader of a console
// stream, hand the tap exactly what a real program wrote, in order.
func TestTap(t *testing.T) {
	const script = `i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done`
	var want strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	for _, kind := range []string{"file", "console"} {
		t.Run(kind, func(t *testing.T) {
			var mu sync.Mutex
			var got []byte
			tap := func(p []byte) { mu.Lock(); got = append(got, p...); mu.Unlock() }
			var wend *os.File
			var closeFn func() error
			switch kind {
			case "file":
				m, _ := testManager(t, nil)
				s, err := m.Open(filepath.Join(m.cfg.Dir, "app.log"), Rotation{MaxSize: 1 << 20}, false)
				if err != nil {
					t.Fatal(err)
				}
				s.SetTap(tap)
				wend, closeFn = s.WriteEnd(), s.Close
			case "console":
				m, _, _ := consoleManager(t)
				s, err := m.OpenConsole("app", "stdout", ConsoleSame)
				if err != nil {
					t.Fatal(err)
				}
				s.SetTap(tap)
				wend, closeFn = s.WriteEnd(), s.Close
			}
			cmd := exec.Command("/bin/sh", "-c", script)
			cmd.Stdout = wend
			if err := cmd.Run(); err != nil {
				t.Fatal(err)
			}
			if err := closeFn(); err != nil { // waits for the reader and writer
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if string(got) != want.String() {
				t.Errorf("the tap got %d bytes, want the %d the program wrote", len(got), want.Len())
			}
		})
	}
}
