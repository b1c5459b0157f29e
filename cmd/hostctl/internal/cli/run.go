package cli

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/config"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/daemon"
)

func init() { register(newRun) }

func newRun(g *globals) *cobra.Command {
	var opts daemon.Options
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon in the foreground (what systemd's ExecStart calls)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.ConfigPath = config.Path(g.config)
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			if err := graceFromEnv(cmd, &opts); err != nil {
				return err
			}
			err := daemon.Run(cmd.Context(), opts)
			if rf, ok := errors.AsType[*daemon.RequiredFatalError](err); ok {
				return &ExitError{Code: ExitRequiredFatal, Err: rf} // container.go
			}
			var ce config.Errors
			if errors.As(err, &ce) {
				fmt.Fprintln(cmd.ErrOrStderr(), ce)
				fmt.Fprintf(cmd.ErrOrStderr(), "hostctl: not started: %d problem(s) in %s; nothing was started\n", len(ce), opts.ConfigPath)
				return &ExitError{Code: 1}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&opts.LogFormat, "log-format", "auto", "hostctl's own log format: auto (console on a terminal, else json), console, json")
	cmd.Flags().StringVar(&opts.LogLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().DurationVar(&opts.ShutdownTimeout, "stop-grace", 0, "how long a shutdown (SIGTERM, SIGINT) may take before what is still up is killed (default $"+daemon.GraceEnv+", else 9s as PID 1, else the longest chain of stop_timeouts + 5s)")
	// For benchmarks and profile-guided optimization (cmd/hostctl/default.pgo).
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the daemon to this file until it exits")
	cmd.Flags().MarkHidden("cpuprofile")
	return cmd
}
