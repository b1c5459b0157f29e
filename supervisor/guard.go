package supervisor

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"

	"go.uber.org/zap"
)

// guardScript is a tiny shell process that outlives hostctl by an instant:
// hostctl tells it, on a pipe, which process groups it owns ("+PGID" and
// "-PGID" lines). When the pipe reaches EOF, hostctl is gone (exited or
// killed with SIGKILL), and the guard kills every group still listed, so
// grandchildren that Pdeathsig cannot reach die at once instead of at the
// next start of hostctl. It ignores terminal signals and lives in its own
// process group so a Ctrl-C meant for hostctl does not kill it first.
const guardScript = `trap '' INT TERM HUP QUIT
groups=" "
while read -r line; do
	case "$line" in
	+*) groups="$groups${line#+} " ;;
	-*) groups=$(printf '%s' "$groups" | sed "s/ ${line#-} / /") ;;
	esac
done
for g in $groups; do kill -KILL "-$g" 2>/dev/null; done
`

// guard is hostctl's end of the guard process.
type guard struct {
	mu  sync.Mutex // guards w and pid
	w   *os.File   // nil once the guard is gone
	pid int
	log *zap.Logger
}

func startGuard(sp *spawner, log *zap.Logger) (*guard, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	g := &guard{w: w, log: log}
	attr := &syscall.ProcAttr{
		Env:   []string{"PATH=/usr/bin:/bin"},
		Files: []uintptr{r.Fd(), devNullFd(), devNullFd()},
		// Its own group; no Pdeathsig: it must outlive hostctl.
		Sys: &syscall.SysProcAttr{Setpgid: true},
	}
	pid, err := sp.start("/bin/sh", []string{"hostctl-guard", "-c", guardScript}, attr, func(ei exitInfo) {
		g.mu.Lock()
		alive := g.w != nil
		g.mu.Unlock()
		if alive {
			log.Warn("the guard process died; orphans of a killed hostctl will be cleaned at its next start instead", zap.Int("pid", ei.pid))
		}
	})
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("starting the guard process: %w", err)
	}
	g.pid = pid
	return g, nil
}

func (g *guard) send(line string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.w == nil {
		return
	}
	if _, err := g.w.WriteString(line); err != nil {
		g.log.Warn("cannot reach the guard process", zap.Error(err))
		g.w.Close()
		g.w = nil
	}
}

func (g *guard) add(pgid int)    { g.send("+" + strconv.Itoa(pgid) + "\n") }
func (g *guard) remove(pgid int) { g.send("-" + strconv.Itoa(pgid) + "\n") }

// close ends the guard normally (every group has been removed by then).
func (g *guard) close() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.w != nil {
		g.w.Close()
		g.w = nil
	}
}
