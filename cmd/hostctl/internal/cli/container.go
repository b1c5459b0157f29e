package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/daemon"
)

// ExitRequiredFatal is `hostctl run`'s exit status when a program marked
// required went FATAL (every program stopped first): an orchestrator
// restarts the container.
const ExitRequiredFatal = 3

// graceFromEnv fills opts.ShutdownTimeout from $HOSTCTL_STOP_GRACE when
// --stop-grace is not given.
func graceFromEnv(cmd *cobra.Command, opts *daemon.Options) error {
	if cmd.Flags().Changed("stop-grace") {
		if opts.ShutdownTimeout <= 0 {
			return fmt.Errorf("--stop-grace: must be more than 0 (for example 9s)")
		}
		return nil
	}
	v := os.Getenv(daemon.GraceEnv)
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("%s=%q: not a duration above 0 (for example 9s)", daemon.GraceEnv, v)
	}
	opts.ShutdownTimeout = d
	return nil
}
