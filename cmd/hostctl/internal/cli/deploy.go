package cli

import (
	"context"
	"encoding/json"
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
switch does the same.

Each step is printed with its time. On a terminal the step under way has
a running clock, redrawn in place, and each finished step says how long
it took; piped, each step is one plain line ("15:04:05 gate  ...") and
each command output line is indented under it.

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
			view := newDeployView(out)
			err = c.Deploy(cmd.Context(), apitype.DeployRequest{Ref: src.Ref, From: src.From}, view.event)
			view.end()
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
	var asJSON bool
	var f *clientFlags
	cmd := &cobra.Command{
		Use:   "releases",
		Short: "List the releases of [deploy]: id, commit, time, state, build time, why a failed one failed",
		Long: `List the releases of [deploy], newest first: id, commit, when it was made,
state (live, previous, built, failed, pruned, building), how long its build
took, and for a failed one why, in one line (the failing step, and the
last line of a traceback when its output ends one). Then the last deploys:
result (ok, failed, rolled_back, canceled), when, how long.

It asks the daemon (GET /v1/releases). When the daemon is not running, it
reads hostctl's state dir directly (as root): the releases, without the
last deploys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := releasesOf(cmd, g, f)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(resp)
			}
			if !resp.Configured {
				return &ExitError{Code: 1, Err: errors.New("the daemon's config has no [deploy] section (see README, Deploying)")}
			}
			printReleases(out, resp)
			return nil
		},
	}
	f = addClientFlags(cmd, g)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print GET /v1/releases' JSON: {\"configured\", \"live\", \"releases\": [...], \"deploys\": [...]}")
	return cmd
}

// releasesOf asks the daemon for the releases; when it is not running
// (and no --url was given), it reads them from the state dir.
func releasesOf(cmd *cobra.Command, g *globals, f *clientFlags) (apitype.ReleasesResponse, error) {
	c, err := f.client()
	if err != nil {
		return apitype.ReleasesResponse{}, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	resp, err := c.Releases(ctx)
	if _, down := errors.AsType[*client.NotRunningError](err); !down || f.url != "" {
		return resp, apiErr(err)
	}
	h, err := deployHost(g)
	if err != nil {
		return apitype.ReleasesResponse{}, err
	}
	rs, err := h.Releases()
	if err != nil {
		return apitype.ReleasesResponse{}, err
	}
	resp = apitype.ReleasesResponse{Configured: true, Releases: []apitype.Release{}, Deploys: []apitype.DeployRecord{}}
	for _, r := range rs {
		a := r.Wire()
		resp.Releases = append(resp.Releases, a)
		if a.State == apitype.ReleaseLive {
			resp.Live = &a
		}
	}
	return resp, nil
}

// printReleases prints the releases' table, then the last deploys'.
func printReleases(w io.Writer, resp apitype.ReleasesResponse) {
	if len(resp.Releases) == 0 {
		fmt.Fprintln(w, "no releases yet (hostctl deploy makes one)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSHA\tTIME\tSTATE\tDURATION\tERROR")
	for _, r := range resp.Releases {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, shortSHA(r.SHA), r.Created.UTC().Format(time.DateTime), r.State,
			secs(r.BuildSeconds).Round(100*time.Millisecond), cell(r.Reason))
	}
	tw.Flush()
	if len(resp.Deploys) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEPLOYED\tRELEASE\tRESULT\tTOOK\tSTEP\tREASON")
	for _, d := range resp.Deploys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Started.UTC().Format(time.DateTime), dash(d.Release), d.Result,
			fmtDur(secs(d.Seconds)), dash(d.Step), cell(d.Reason))
	}
	tw.Flush()
}

// liveLine is status's header line about the live release: "release
// ID (sha abc1234, slot b) live since 2026-12-07 21:51:02 UTC (5m ago)".
func liveLine(live *apitype.Release, now time.Time) string {
	if live == nil {
		return "release: none live yet (hostctl deploy)"
	}
	var about []string
	if live.SHA != "" {
		about = append(about, "sha "+shortSHA(live.SHA))
	}
	if live.Slot != "" {
		about = append(about, "slot "+live.Slot)
	}
	s := "release " + live.ID
	if len(about) > 0 {
		s += " (" + strings.Join(about, ", ") + ")"
	}
	return fmt.Sprintf("%s live since %s (%s ago)", s, live.LiveSince.UTC().Format(time.DateTime+" UTC"), fmtDur(now.Sub(live.LiveSince)))
}

func shortSHA(sha string) string {
	switch {
	case sha == "":
		return "-"
	case len(sha) > 12:
		return sha[:12]
	}
	return sha
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
