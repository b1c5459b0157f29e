package supervisor

// In this package "pgroup" is always a Unix process group (setpgid(2), a
// pgid): every process hostctl starts leads one, and stops, kills and
// memory counts act on the whole pgroup. supervisord's groups of programs
// are program groups (programgroups.go), and a Unix group (credentials) is
// a Group.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/supervisor/trust"
)

// pgroupRecords remembers, in files under a state directory, the pgroups
// hostctl owns, so that a hostctl started after a crash (or kill -9)
// can kill whatever survived in them. Each record is a file named after the
// pgid holding the leader's start time (from /proc) and the program name;
// the start time guards against pid reuse.
//
// Root kills what a record names, so records are believed only from a dir
// that trust.PrivateDir accepted (Supervisor.New checks it), and each one
// only if hostctl could have written it (trust.ReadOwnFile: a regular
// file, not a link, owned by root or hostctl's user, that no one else can
// write). They are written through an O_EXCL temporary file and a rename,
// so a name planted in the dir is replaced, never written through.
type pgroupRecords struct {
	dir   string // "" disables records
	log   *zap.Logger
	guard *guard // nil without a guard process
}

func (g *pgroupRecords) add(pgid int, startTick uint64, name string) {
	g.guard.add(pgid)
	if g.dir == "" {
		return
	}
	data := fmt.Sprintf("%d %s\n", startTick, name)
	if err := trust.WriteOwnFile(filepath.Join(g.dir, strconv.Itoa(pgid)), []byte(data), 0o600); err != nil {
		g.log.Warn("cannot record process group", zap.Int("pgid", pgid), zap.Error(err))
	}
}

func (g *pgroupRecords) remove(pgid int) {
	g.guard.remove(pgid)
	if g.dir == "" {
		return
	}
	if err := os.Remove(filepath.Join(g.dir, strconv.Itoa(pgid))); err != nil && !errors.Is(err, os.ErrNotExist) {
		g.log.Warn("cannot remove process group record", zap.Int("pgid", pgid), zap.Error(err))
	}
}

// killSurvivors kills every process left in the recorded groups (from an
// earlier hostctl that died without stopping its programs) and removes the
// records. It returns the number of processes killed.
func (g *pgroupRecords) killSurvivors() int {
	if g.dir == "" {
		return 0
	}
	ents, err := os.ReadDir(g.dir)
	if err != nil {
		return 0
	}
	var procs []procStat
	killed := 0
	for _, e := range ents {
		pgid, err := strconv.Atoi(e.Name())
		if err != nil || pgid <= 1 {
			continue
		}
		path := filepath.Join(g.dir, e.Name())
		data, err := trust.ReadOwnFile(path)
		if err != nil {
			g.log.Warn("ignored a process group record that hostctl cannot have written; nothing was killed for it", zap.String("file", path), zap.Error(err))
			os.Remove(path)
			continue
		}
		tickStr, name, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
		tick, _ := strconv.ParseUint(tickStr, 10, 64)
		if procs == nil {
			procs = allProcs()
		}
		// If a process with pid == pgid exists, it must be the leader we
		// started (same start time); otherwise the number was reused and the
		// group is not ours. While any member of our group is alive, the
		// kernel does not hand its pgid out again.
		leaderReused := false
		var members []int
		for _, st := range procs {
			if st.pid == pgid && st.startTime != tick {
				leaderReused = true
			}
			if st.pgid == pgid && st.startTime >= tick {
				members = append(members, st.pid)
			}
		}
		if !leaderReused && len(members) > 0 {
			if err := syscall.Kill(-pgid, syscall.SIGKILL); err == nil {
				killed += len(members)
				g.log.Warn("killed processes left over from an earlier hostctl",
					zap.String("program", name), zap.Int("pgid", pgid), zap.Ints("pids", members))
			}
		}
		os.Remove(path)
	}
	return killed
}
