package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

func init() {
	register(func(g *globals) *cobra.Command { return newAction(g, "start") })
	register(func(g *globals) *cobra.Command { return newAction(g, "stop") })
	register(func(g *globals) *cobra.Command { return newAction(g, "restart") })
	register(newSignal)
}

var actionHelp = map[string]string{
	"start":   "Start programs (and what they depend on); wait until they are RUNNING",
	"stop":    "Stop programs (stop signal to the process group, SIGKILL after stop_timeout); wait until they are down",
	"restart": "Restart programs; wait until each is RUNNING with a new process",
}

func newAction(g *globals, kind string) *cobra.Command {
	var wait time.Duration
	var f *clientFlags
	cmd := &cobra.Command{
		Use:   kind + " NAME...|GROUP:*|all",
		Short: actionHelp[kind],
		Long: actionHelp[kind] + `.

A NAME is a program (every instance of it), a process (one instance,
"celery_0" or "celery:celery_0"), a [group] (every program in it), or
GROUP:* as supervisorctl takes it. A program with rolling = true restarts
one instance at a time, each RUNNING again before the next is stopped.

Waits at most --wait; a program that does not get there is reported with
its state and the reason (FATAL with the spawn error, BACKOFF with the
retry count). Exit status: 0 when every program got there, 1 otherwise,
4 when a name is not in the config.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, names []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), wait+30*time.Second)
			defer cancel()
			var res []apitype.ActionResult
			switch kind {
			case "start":
				res, err = c.Start(ctx, names, wait)
			case "stop":
				res, err = c.Stop(ctx, names, wait)
			case "restart":
				res, err = c.Restart(ctx, names, wait)
			}
			if err != nil {
				return apiErr(err)
			}
			return printResults(cmd, res, wait > 0)
		},
	}
	f = addClientFlags(cmd, g)
	cmd.ValidArgsFunction = completeProgramNames(f, "all")
	cmd.Flags().DurationVar(&wait, "wait", 60*time.Second, "how long to wait for the target state (0: do not wait)")
	return cmd
}

// printResults prints one line per program and fails if any did not get
// to its target state.
func printResults(cmd *cobra.Command, res []apitype.ActionResult, waited bool) error {
	failed := 0
	for _, r := range res {
		if !r.OK {
			failed++
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", resultName(r), r.Error)
			continue
		}
		line := fmt.Sprintf("%s: %s", resultName(r), r.Status.State)
		if r.Status.PID > 0 && r.Status.State != apitype.Stopping {
			line += fmt.Sprintf(" (pid %d)", r.Status.PID)
		}
		if !waited {
			line += " (not waited for)"
		}
		fmt.Fprintln(cmd.OutOrStdout(), line)
	}
	if failed > 0 {
		return &ExitError{Code: 1, Err: fmt.Errorf("%d of %d program(s) did not get there", failed, len(res))}
	}
	return nil
}

func newSignal(g *globals) *cobra.Command {
	var f *clientFlags
	cmd := &cobra.Command{
		Use:   "signal SIGNAL NAME...|GROUP:*|all",
		Short: "Send a signal (HUP, USR1, TERM, 15, ...) to the main process of programs",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			res, err := c.Signal(ctx, args[0], args[1:])
			if err != nil {
				return apiErr(err)
			}
			failed := 0
			for _, r := range res {
				if !r.OK {
					failed++
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", resultName(r), r.Error)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: sent %s to pid %d\n", resultName(r), args[0], r.Status.PID)
			}
			if failed > 0 {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
	f = addClientFlags(cmd, g)
	cmd.ValidArgsFunction = func(c *cobra.Command, args []string, s string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return []string{"HUP", "INT", "QUIT", "TERM", "USR1", "USR2", "KILL"}, cobra.ShellCompDirectiveNoFileComp
		}
		return completeProgramNames(f, "all")(c, args, s)
	}
	return cmd
}
