package cli

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

// The piped form is byte for byte what it was: one line per step with
// its time of day, command output indented under it.
func TestDeployViewPlain(t *testing.T) {
	var b bytes.Buffer
	v := plainView{&b}
	at := time.Date(2026, 12, 7, 21, 51, 2, 0, time.Local)
	v.event(apitype.DeployEvent{Time: at, Step: "prepare", Msg: "preparing a new release"})
	v.event(apitype.DeployEvent{Time: at, Output: "Collecting django"})
	v.event(apitype.DeployEvent{Time: at.Add(3 * time.Second), Step: "gate", Msg: "waiting for gunicorn@b"})
	v.end()
	want := "21:51:02 prepare       preparing a new release\n    Collecting django\n21:51:05 gate          waiting for gunicorn@b\n"
	if b.String() != want {
		t.Errorf("plain output:\n%q\nwant\n%q", b.String(), want)
	}
}

// The terminal form, on a fake clock and a terminal 40 columns wide:
// finished steps say how long they took, the step under way is one
// status line redrawn in place with its running clock and cut to the
// width, output goes above it with its escapes left out, and end leaves
// the last step's line with its time and no status line.
func TestDeployViewLive(t *testing.T) {
	var b bytes.Buffer
	at := time.Date(2026, 12, 7, 21, 51, 2, 0, time.Local)
	now := at
	v := startLiveView(&b, func() int { return 40 }, func() time.Time { return now }, 0)
	const clear = "\r\x1b[K"
	expect := func(what, want string) {
		t.Helper()
		if got := b.String(); got != want {
			t.Fatalf("%s:\n%q\nwant\n%q", what, got, want)
		}
		b.Reset()
	}
	v.event(apitype.DeployEvent{Time: at, Step: "prepare", Msg: "preparing a new release"})
	expect("first step", clear+"21:51:02 prepare           0s  prepari…")
	now = now.Add(1500 * time.Millisecond)
	v.tick()
	expect("tick", clear+"21:51:02 prepare         1.5s  prepari…")
	v.event(apitype.DeployEvent{Time: at, Output: "\x1b]0;owned\x07Collecting\tdjango"})
	expect("output above the status line", clear+"    Collecting django\n"+clear+"21:51:02 prepare         1.5s  prepari…")
	now = now.Add(2 * time.Second)
	v.event(apitype.DeployEvent{Time: at.Add(3500 * time.Millisecond), Step: "gate", Msg: "waiting for gunicorn@b"})
	expect("next step", clear+"21:51:02 prepare       preparing a new release (3.5s)\n"+clear+"21:51:05 gate              0s  waiting…")
	now = now.Add(75 * time.Second)
	v.end()
	expect("end", clear+"21:51:05 gate          waiting for gunicorn@b (1m15s)\n")
	v.event(apitype.DeployEvent{Time: at, Step: "late"})
	v.tick()
	expect("after end", "")
}

// openPty opens a pseudo-terminal pair (/dev/ptmx, then its slave).
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("the pty's number: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the pty's slave: %v", err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 50}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// On a real terminal (a pty) hostctl deploy picks the live display, at
// the pty's width, and its clock runs without events; on a pipe, plain
// lines.
func TestDeployViewPicksTheTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, ok := newDeployView(w).(plainView); !ok {
		t.Errorf("on a pipe: %T, want plain lines", newDeployView(w))
	}
	m, s := openPty(t)
	v, ok := newDeployView(s).(*liveView)
	if !ok {
		t.Fatalf("on a pty: %T, want the live display", newDeployView(s))
	}
	if got := v.width(); got != 50 {
		t.Errorf("width on the pty = %d, want its 50 columns", got)
	}
	v.event(apitype.DeployEvent{Time: time.Now(), Step: "gate", Msg: "waiting for gunicorn@b"})
	// The clock redraws by itself: wait (bounded) for two redraws that
	// show different times.
	got := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			if n > 0 {
				got <- string(buf[:n])
			}
			if err != nil {
				close(got)
				return
			}
		}
	}()
	var seen strings.Builder
	clocks := map[string]bool{}
	deadline := time.After(30 * time.Second)
	for len(clocks) < 2 {
		select {
		case chunk, ok := <-got:
			if !ok {
				t.Fatalf("the pty closed; read:\n%q", seen.String())
			}
			seen.WriteString(chunk)
			for _, l := range strings.Split(seen.String(), "\r\x1b[K")[1:] {
				if f := strings.Fields(l); len(f) >= 3 && f[1] == "gate" {
					clocks[f[2]] = true
				}
			}
		case <-deadline:
			t.Fatalf("no running clock on the pty within 30s; read:\n%q", seen.String())
		}
	}
	v.end()
}
