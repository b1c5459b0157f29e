package supervisor

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// DaemonOOMScoreAdj is the oom_score_adj hostctl gives itself. Under memory
// pressure the kernel's OOM killer then picks a program (memcached, a
// leaking worker) long before the supervisor: killing hostctl would take
// every program down with it (Pdeathsig, the guard) and leave nothing to
// restart them. -900, not -1000: a hostctl that is itself the one using
// all the memory can still be killed, where -1000 would have the kernel
// kill everything else first. Programs do not inherit it: they start at
// their oom_score_adj (0 unless set).
const DaemonOOMScoreAdj = -900

// oomLog receives what goes wrong when a spawn switches hostctl's own
// oom_score_adj (ProtectFromOOM sets it); nil: nothing is logged.
var oomLog atomic.Pointer[zap.Logger]

// ProtectFromOOM lowers hostctl's own oom_score_adj to DaemonOOMScoreAdj,
// unless it is lower already (systemd's OOMScoreAdjust=-1000 is kept). It
// needs root with CAP_SYS_RESOURCE; otherwise it says so in log (a warning
// when hostctl is root) and changes nothing. log also gets the later warnings of the spawner about it.
func ProtectFromOOM(log *zap.Logger) {
	oomLog.Store(log)
	cur, err := ownOOMScoreAdj()
	if err != nil {
		log.Warn("cannot read hostctl's own oom_score_adj", zap.Error(err))
		return
	}
	if cur <= DaemonOOMScoreAdj {
		return
	}
	if err := setOwnOOMScoreAdj(DaemonOOMScoreAdj); err != nil {
		level := log.Warn
		switch {
		case os.Geteuid() != 0:
			level = log.Debug // expected: a hostctl run by hand, not the service
		case !canGetSysResource():
			// Whoever started hostctl withheld it (Docker's default set
			// of capabilities does): their choice, not a fault.
			level = log.Info
		}
		level("cannot lower hostctl's own oom_score_adj (needs root with CAP_SYS_RESOURCE): under memory pressure the kernel may kill hostctl, and with it every program",
			zap.Int("oom_score_adj", cur), zap.Error(err))
		return
	}
	log.Debug("lowered hostctl's own oom_score_adj", zap.Int("from", cur), zap.Int("to", DaemonOOMScoreAdj))
}

const ownOOMPath = "/proc/self/oom_score_adj"

// canGetSysResource reports whether CAP_SYS_RESOURCE is in hostctl's
// capability bounding set, i.e. whether anything could give it to hostctl.
func canGetSysResource() bool {
	in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, unix.CAP_SYS_RESOURCE, 0, 0, 0)
	return err != nil || in == 1 // unknown: as if it could
}

func ownOOMScoreAdj() (int, error) {
	b, err := os.ReadFile(ownOOMPath)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func setOwnOOMScoreAdj(v int) error {
	return os.WriteFile(ownOOMPath, []byte(strconv.Itoa(v)), 0)
}

// childOOM prepares a fork whose child must start with oom_score_adj v:
// the value is copied from the parent at fork (with its floor,
// oom_score_adj_min), so hostctl switches its own value to v for the fork
// and back after it (restore), instead of writing the child's after the
// exec, when it may already have forked children of its own. A child
// started this way cannot lower its value below v again without
// CAP_SYS_RESOURCE, while one that inherited hostctl's -900 could. For
// the instant of the fork hostctl has the child's value; forks elsewhere
// in hostctl (os/exec) in that instant get it too. Spawner goroutine.
func childOOM(v int) (restore func(), err error) {
	own, err := ownOOMScoreAdj()
	if err != nil {
		return nil, fmt.Errorf("reading hostctl's oom_score_adj: %w", err)
	}
	if own == v {
		return func() {}, nil
	}
	if err := setOwnOOMScoreAdj(v); err != nil {
		return nil, fmt.Errorf("oom_score_adj %d: %w (a value below hostctl's own needs root)", v, err)
	}
	return func() {
		if err := setOwnOOMScoreAdj(own); err != nil {
			if log := oomLog.Load(); log != nil {
				log.Warn("cannot set hostctl's own oom_score_adj back after starting a program", zap.Int("oom_score_adj", own), zap.Error(err))
			}
		}
	}, nil
}
