package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func init() { register(newTail) }

func newTail(g *globals) *cobra.Command {
	var follow bool
	var lines int
	var f *clientFlags
	cmd := &cobra.Command{
		Use:   "tail [-f] [-n LINES] NAME [stdout|stderr]",
		Short: "Print the last lines of a program's log; -f follows new lines",
		Long: `Print the last lines of a program's log; -f follows new lines.

Each instance of a program with instances has its own logs: name the
process ("celery_0" or "celery:celery_0").

Terminal escape sequences and control characters (but tab) in the output
are left out, so that a program cannot act on your terminal; the log
file (hostctl status --json: stdout_log, stderr_log) has every byte.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			stream := "stdout"
			if len(args) == 2 {
				stream = args[1]
				if stream != "stdout" && stream != "stderr" {
					return &ExitError{Code: 2, Err: fmt.Errorf("stream %q: want stdout or stderr", stream)}
				}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if !follow {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
			}
			out := cmd.OutOrStdout()
			err = c.Log(ctx, args[0], stream, lines, follow, func(line string) error {
				_, err := fmt.Fprintln(out, terminalText(line))
				return err
			})
			if err != nil && cmd.Context().Err() == nil {
				return apiErr(err)
			}
			return nil
		},
	}
	f = addClientFlags(cmd, g)
	cmd.ValidArgsFunction = func(c *cobra.Command, args []string, s string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 1 {
			return []string{"stdout", "stderr"}, cobra.ShellCompDirectiveNoFileComp
		}
		return completeProgramNames(f)(c, args, s)
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until interrupted")
	cmd.Flags().IntVarP(&lines, "lines", "n", 10, "number of last lines to print first")
	return cmd
}
