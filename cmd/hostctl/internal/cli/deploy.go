package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

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
	cmd := &cobra.Command{
		Use:   "deploy --prepare-only [--ref REF | --from DIR|FILE.tar.gz]",
		Short: "Prepare a new release: its code, shared paths and build steps (the switch is not built yet)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !prepareOnly {
				return errors.New("only `hostctl deploy --prepare-only` exists so far: it builds a release without moving traffic to it (the switch is issue 23 §2)")
			}
			if src.Ref != "" && src.From != "" {
				return errors.New("--ref picks a ref of [deploy] repo; --from replaces the repo: give one of them")
			}
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
		},
	}
	cmd.Flags().BoolVar(&prepareOnly, "prepare-only", false, "build the release without switching to it")
	cmd.Flags().StringVar(&src.Ref, "ref", "", "the branch, tag or commit of [deploy] repo (default: [deploy] branch)")
	cmd.Flags().StringVar(&src.From, "from", "", "take the code from this directory or .tar.gz file instead of the repo")
	return cmd
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
				fmt.Fprintln(cmd.OutOrStdout(), "no releases yet (hostctl deploy --prepare-only makes one)")
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
