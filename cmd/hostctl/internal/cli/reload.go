package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/client"
)

func init() { register(newReload) }

func newReload(g *globals) *cobra.Command {
	var f *clientFlags
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make the daemon re-read its config and apply the difference",
		Long: `Make the daemon re-read its config file (same as SIGHUP). If the file is
invalid nothing changes and every problem is printed. Otherwise new programs
start (if autostart), removed ones stop, changed ones restart, unchanged ones
are not touched; the proxy reloads only if [proxy] changed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
			defer cancel()
			diff, err := c.Reload(ctx)
			var ae *client.APIError
			if errors.As(err, &ae) && ae.Code == apitype.CodeConfigInvalid {
				for _, e := range ae.Errors {
					fmt.Fprintln(cmd.ErrOrStderr(), e)
				}
				return &ExitError{Code: 1, Err: errors.New(ae.Message)}
			}
			if err != nil {
				return apiErr(err)
			}
			out := cmd.OutOrStdout()
			list := func(names []string) string {
				if len(names) == 0 {
					return "-"
				}
				return strings.Join(names, ", ")
			}
			fmt.Fprintf(out, "added:   %s\nchanged: %s\nremoved: %s\n", list(diff.Added), list(diff.Changed), list(diff.Removed))
			if diff.Proxy != "" {
				fmt.Fprintf(out, "proxy:   %s\n", diff.Proxy)
			}
			return nil
		},
	}
	f = addClientFlags(cmd, g)
	return cmd
}
