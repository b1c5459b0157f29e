// Package cli is hostctl's command line: `hostctl run` (the daemon) and the
// commands that inspect and control it.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/daemon"
)

// Version is set at build time with -ldflags "-X .../cli.Version=...".
var Version = "dev"

// ExitError carries a process exit code out of a command.
type ExitError struct {
	Code int
	Err  error // printed to stderr when not nil
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// globals are the flags every command shares.
type globals struct {
	config string
}

// Run runs the hostctl command line and returns the process exit code.
func Run(args []string) int {
	daemon.HideNotifySocketFromCaddy() // first: may re-exec hostctl
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintln(os.Stderr, "hostctl:", ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintln(os.Stderr, "hostctl:", err)
	return 1
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "hostctl",
		Short:         "Supervise a web application's programs and serve its site",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.PersistentFlags().StringVarP(&g.config, "config", "c", "", "config file (default $HOSTCTL_CONFIG, else /etc/hostctl/hostctl.toml)")
	addDataDirFlag(root) // datadir.go
	for _, mk := range commands {
		root.AddCommand(mk(g))
	}
	return root
}

// commands are added by each command's file (init).
var commands []func(*globals) *cobra.Command

func register(mk func(*globals) *cobra.Command) { commands = append(commands, mk) }
