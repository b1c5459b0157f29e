package daemon

// hostctl as a container's entrypoint (README, "In a container"): how
// long a stop may take, and the programs whose FATAL ends hostctl so that
// the orchestrator restarts the container. Reaping orphans as PID 1 is
// the supervisor's (supervisor.EnableReapAll); the one dir for everything
// written is the config's (config.DataDirEnv).

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/proxy"
	"github.com/hostctl/hostctl/supervisor"
)

// GraceEnv names the environment variable for Options.ShutdownTimeout
// when `hostctl run --stop-grace` is not given.
const GraceEnv = "HOSTCTL_STOP_GRACE"

// ContainerGrace bounds a shutdown when hostctl is PID 1 (a container's
// entrypoint) and no grace is given: `docker stop` sends SIGKILL 10 s
// after SIGTERM, and hostctl keeps a second to stop its last programs
// with SIGKILL, log and exit on its own.
const ContainerGrace = 9 * time.Second

// shutdownGrace is how long a shutdown may take before what is still up
// is killed: Options.ShutdownTimeout, else ContainerGrace as PID 1, else
// the longest chain of stop_timeouts plus a margin (the unit's
// TimeoutStopSec is sized for that).
func (d *Daemon) shutdownGrace() time.Duration {
	switch {
	case d.opts.ShutdownTimeout > 0:
		return d.opts.ShutdownTimeout
	case os.Getpid() == 1:
		return ContainerGrace
	}
	return longestStopChain(d.config().Programs) + 5*time.Second
}

// warnGrace says at start when the proxy's grace_period (it waits that
// long for requests in flight before the programs are stopped) and the
// programs' stop_timeouts, one after another along depends_on, add up to
// more than the grace: a program that takes its whole stop_timeout then
// gets SIGKILL at the grace, and those it depends on may get no stop
// signal before it. Advice, not a fault: at info level.
func (d *Daemon) warnGrace() {
	cfg := d.config()
	grace := d.shutdownGrace()
	var proxyGrace time.Duration
	if cfg.Proxy != nil {
		if proxyGrace = cfg.Proxy.GracePeriod; proxyGrace == 0 {
			proxyGrace = proxy.DefaultConfig().GracePeriod
		}
	}
	if chain := longestStopChain(cfg.Programs); proxyGrace+chain > grace {
		d.log.Info("the proxy's grace_period and the stop_timeouts along depends_on add up to more than the stop grace: a shutdown that needs them all kills what is still up at the grace (lower them, or raise --stop-grace / "+GraceEnv+")",
			zap.Duration("proxy_grace_period", proxyGrace), zap.Duration("longest_chain", chain), zap.Duration("grace", grace))
	}
}

// stillUp lists the processes that are not down, for the log of a
// shutdown cut short by the grace.
func (d *Daemon) stillUp() []string {
	sts, _ := d.sup.Status()
	var names []string
	for _, st := range sts {
		if st.State.IsUp() { // STOPPING included
			names = append(names, st.Name)
		}
	}
	return names
}

// keepCaddyInStateDir makes Caddy keep its files (instance.uuid, written
// by its storage cleaner even without TLS) under the state dir instead of
// ~/.local/share/caddy: in a container the home dir is read-only or not
// there, and under the unit it is hidden (ProtectHome=yes). Programs do
// not inherit it (their environment is explicit).
func keepCaddyInStateDir(stateDir string) {
	if os.Getenv("XDG_DATA_HOME") == "" {
		os.Setenv("XDG_DATA_HOME", stateDir)
	}
}

// RequiredFatalError ends `hostctl run` when a program with required =
// true is FATAL; every program has been stopped by then.
type RequiredFatalError struct {
	Process string // the process name (an instance's, with instances)
	Why     string // why it is FATAL
}

func (e *RequiredFatalError) Error() string {
	return fmt.Sprintf("required program %q is FATAL (%s): stopped every program", e.Process, e.Why)
}

// watchRequired calls stop with a *RequiredFatalError the first time a
// process of a program marked required is FATAL (required is read from
// the config in force, so a reload may add or remove it), then returns.
func (d *Daemon) watchRequired(ctx context.Context, stop context.CancelCauseFunc) {
	for {
		ch := d.sup.Changed()
		sts, _ := d.sup.Status()
		progs := d.config().Programs
		for _, st := range sts {
			if p := progs[st.Program]; st.State == supervisor.Fatal && p != nil && p.Required {
				err := &RequiredFatalError{Process: st.Name, Why: fatalWhy(st)}
				d.log.Error("a required program is FATAL: stopping every program, then exiting", zap.String("program", st.Name), zap.String("why", err.Why))
				stop(err)
				return
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// fatalWhy says in a few words why st is FATAL.
func fatalWhy(st supervisor.Status) string {
	var parts []string
	switch {
	case st.Tries > 0 && st.LastExit != nil:
		parts = append(parts, fmt.Sprintf("gave up after %d tries that exited too quickly, the last with %s", st.Tries, st.LastExit))
	case st.SpawnErr != "":
		parts = append(parts, st.SpawnErr)
	}
	if st.LastStderr != "" {
		parts = append(parts, "last stderr line: "+st.LastStderr)
	}
	if st.Info != "" {
		parts = append(parts, st.Info)
	}
	if len(parts) == 0 {
		return "no reason recorded"
	}
	return strings.Join(parts, "; ")
}
