package cli

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/client"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/config"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/deploy"
)

func init() {
	register(newDeploy)
	register(newReleases)
}

// deployHost loads the config and its [deploy] section. deploy and
// releases work on the files directly (the releases' dirs and hostctl's
// state dir), not through the daemon: they run as root, like the daemon.
func deployHost(g *globals) (*deploy.Host, error) {
	path := config.Path(g.config)
	f, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if f.Deploy == nil {
		return nil, fmt.Errorf("%s has no [deploy] section (see README, Deploying)", path)
	}
	return deploy.Open(f.Deploy, f.Admin.StateDir), nil
}

func newDeploy(g *globals) *cobra.Command {
	var prepareOnly bool
	var src deploy.Source
	var f *clientFlags
	cmd := &cobra.Command{
		Use:   "deploy [--ref REF | --from DIR|FILE.tar.gz] [--prepare-only]",
		Short: "Deploy a new release: build it, start it beside the live one, check it, move traffic to it with no failed request, or change nothing",
		Long: `Deploy a new release through the daemon: prepare it (code, shared paths,
build steps as the app's user), run the before_switch steps once, start the
new slot of every blue_green program beside the live one, gate it (ready and
health probes, then [deploy] check paths through hostctl's own proxy, sent
to the new slot only, within deploy_timeout), swap the proxy's upstreams to
it without a reload, move current, drain and stop the old slot, and restart
the programs with deploy = "restart" on the new release. A failure before
the switch stops the new slot and changes nothing live; Ctrl-C before the
switch does the same. Each step is printed with its time.

--prepare-only builds the release without the daemon (and without moving
traffic): it works on the files directly, as root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if src.Ref != "" && src.From != "" {
				return errors.New("--ref picks a ref of [deploy] repo; --from replaces the repo: give one of them")
			}
			if prepareOnly {
				h, err := deployHost(g)
				if err != nil {
					return err
				}
				rel, err := h.Prepare(cmd.Context(), src, cmd.OutOrStdout())
				if err != nil {
					if rel.ID != "" {
						err = fmt.Errorf("%w\nbuild log: %s", err, h.LogPath(rel.ID))
					}
					return &ExitError{Code: 1, Err: err}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "release %s is built; current is unchanged\n", rel.ID)
				return nil
			}
			if src.From != "" {
				abs, err := filepath.Abs(src.From)
				if err != nil {
					return err
				}
				src.From = abs // the daemon reads it
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			start := time.Now()
			err = c.Deploy(cmd.Context(), apitype.DeployRequest{Ref: src.Ref, From: src.From}, func(ev apitype.DeployEvent) {
				printDeployEvent(out, ev)
			})
			var de *client.DeployError
			switch {
			case errors.As(err, &de):
				return &ExitError{Code: 1, Err: fmt.Errorf("deploy failed after %s: %s", fmtDur(time.Since(start)), de.Msg)}
			case err != nil && cmd.Context().Err() != nil:
				return &ExitError{Code: 1, Err: errors.New("interrupted: a deploy cancelled before the switch stops the new slot and changes nothing live (hostctl releases shows the outcome)")}
			case err != nil:
				return apiErr(err)
			}
			fmt.Fprintf(out, "deployed in %s\n", fmtDur(time.Since(start)))
			return nil
		},
	}
	cmd.Flags().BoolVar(&prepareOnly, "prepare-only", false, "build the release without switching to it (without the daemon)")
	cmd.Flags().StringVar(&src.Ref, "ref", "", "the branch, tag or commit of [deploy] repo (default: [deploy] branch)")
	cmd.Flags().StringVar(&src.From, "from", "", "take the code from this directory or .tar.gz file instead of the repo")
	f = addClientFlags(cmd, g)
	return cmd
}

// printDeployEvent prints one progress line: a step with its time, or a
// command's output line indented under it.
func printDeployEvent(w io.Writer, ev apitype.DeployEvent) {
	switch {
	case ev.Step != "":
		fmt.Fprintf(w, "%s %-13s %s\n", ev.Time.Local().Format("15:04:05"), ev.Step, ev.Msg)
	default:
		fmt.Fprintf(w, "    %s\n", ev.Output)
	}
}

// fmtDur is a duration for a person: 12.3s, 2m5s.
func fmtDur(d time.Duration) string {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func newReleases(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "releases",
		Short: "List the releases of [deploy]: id, commit, time, state, how long it took",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := deployHost(g)
			if err != nil {
				return err
			}
			rs, err := h.Releases()
			if err != nil {
				return err
			}
			if len(rs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no releases yet (hostctl deploy makes one)")
				return nil
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tSHA\tTIME\tSTATE\tDURATION\tERROR")
			for _, r := range rs {
				sha := r.SHA
				if len(sha) > 12 {
					sha = sha[:12]
				}
				if sha == "" {
					sha = "-"
				}
				why, _, _ := strings.Cut(r.Error, "; last lines:")
				why, _, _ = strings.Cut(why, "\n")
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, sha, r.Created.UTC().Format(time.DateTime), r.State, r.Duration.Round(100*time.Millisecond), why)
			}
			return w.Flush()
		},
	}
}
