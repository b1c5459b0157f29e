package cli

// hostctl deploy's progress: plain lines when stdout is not a terminal
// (printDeployEvent, byte for byte what scripts and tests read), a live
// display on a terminal.

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

// deployView shows hostctl deploy's events as they come; end is called
// once, after the last.
type deployView interface {
	event(ev apitype.DeployEvent)
	end()
}

// newDeployView returns the live display when out is a terminal, else
// plain lines.
func newDeployView(out io.Writer) deployView {
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		width := func() int {
			w, _, err := term.GetSize(int(f.Fd()))
			if err != nil || w <= 0 {
				return 80
			}
			return w
		}
		return startLiveView(out, width, time.Now, 100*time.Millisecond)
	}
	return plainView{out}
}

// plainView prints one line per event (printDeployEvent).
type plainView struct{ w io.Writer }

func (v plainView) event(ev apitype.DeployEvent) { printDeployEvent(v.w, ev) }
func (plainView) end()                           {}

// liveView is the terminal display: each finished step on its own line
// with how long it took, and below them the step under way with a
// running clock, redrawn in place (a carriage return and erase-line) on
// each tick. Its line is cut to the terminal's width so that the redraw
// never wraps; output lines of commands go above it, their terminal
// escapes left out (the app's user writes them).
type liveView struct {
	w     io.Writer
	width func() int
	now   func() time.Time

	mu     sync.Mutex // guards what follows, and writes to w
	step   string     // the step under way; "" before the first
	msg    string
	at     time.Time // when it began (the daemon's clock)
	began  time.Time // when it began (this clock: the running clock's origin)
	drawn  bool      // the status line is on the screen
	ended  bool
	stop   chan struct{}
	ticker *time.Ticker
	done   chan struct{}
}

// startLiveView starts the display; tick is how often the running clock
// is redrawn (0: only on events, for tests).
func startLiveView(w io.Writer, width func() int, now func() time.Time, tick time.Duration) *liveView {
	v := &liveView{w: w, width: width, now: now, stop: make(chan struct{}), done: make(chan struct{})}
	if tick <= 0 {
		close(v.done)
		return v
	}
	v.ticker = time.NewTicker(tick)
	go func() {
		defer close(v.done)
		for {
			select {
			case <-v.stop:
				return
			case <-v.ticker.C:
				v.tick()
			}
		}
	}()
	return v
}

func (v *liveView) event(ev apitype.DeployEvent) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ended {
		return
	}
	v.clearLocked()
	switch {
	case ev.Step != "":
		v.finishLocked()
		v.step, v.msg, v.at, v.began = ev.Step, terminalText(ev.Msg), ev.Time, v.now()
	case ev.Result == "":
		fmt.Fprintf(v.w, "    %s\n", cell(ev.Output))
	}
	v.redrawLocked()
}

// tick redraws the running clock.
func (v *liveView) tick() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.redrawLocked()
}

// end prints the last step with its time and stops the clock.
func (v *liveView) end() {
	v.mu.Lock()
	if v.ended {
		v.mu.Unlock()
		return
	}
	v.ended = true
	v.clearLocked()
	v.finishLocked()
	v.mu.Unlock()
	close(v.stop)
	if v.ticker != nil {
		v.ticker.Stop()
	}
	<-v.done
}

// finishLocked prints the step under way as done, with how long it took.
func (v *liveView) finishLocked() {
	if v.step == "" {
		return
	}
	fmt.Fprintf(v.w, "%s %-13s %s (%s)\n", v.at.Local().Format("15:04:05"), v.step, v.msg, fmtDur(v.now().Sub(v.began)))
	v.step = ""
}

// redrawLocked draws the status line: the step under way and its clock.
func (v *liveView) redrawLocked() {
	if v.step == "" || v.ended {
		return
	}
	line := fmt.Sprintf("%s %-13s %6s  %s", v.at.Local().Format("15:04:05"), v.step, fmtDur(v.now().Sub(v.began)), v.msg)
	fmt.Fprint(v.w, "\r\x1b[K"+fitWidth(line, v.width()-1))
	v.drawn = true
}

// clearLocked erases the status line.
func (v *liveView) clearLocked() {
	if v.drawn {
		fmt.Fprint(v.w, "\r\x1b[K")
		v.drawn = false
	}
}

// fitWidth cuts s to at most n characters, ending with "…" when cut.
func fitWidth(s string, n int) string {
	if n < 1 {
		n = 1
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimRight(string(r[:n-1]), " ") + "…"
}
