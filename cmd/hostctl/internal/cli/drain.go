package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

func init() {
	register(newDrain)
	register(newUndrain)
}

func newDrain(g *globals) *cobra.Command {
	var wait bool
	var quiet, timeout time.Duration
	var f *clientFlags
	cmd := &cobra.Command{
		Use:   "drain [--wait [--quiet 5s] [--timeout 2m]]",
		Short: "Take this host out of its load balancer: health_path answers 503, requests that still arrive are served",
		Long: `Take this host out of its load balancer's pool: [proxy] health_path answers
503 ("draining"), so the balancer's health checks (a hostctl in front:
[proxy.health] path) stop sending new requests; the site keeps serving
the requests that still arrive. The drain lasts until hostctl undrain,
restarts of hostctl included.

With --wait, return once no request is in flight and none has arrived
for --quiet (health checks left out), or after --timeout. A deploy:

  hostctl drain --wait && hostctl restart gunicorn && hostctl undrain --wait

Exit status: 0 (with --wait: the host is quiet), 1 when --timeout passed
first (the host stays drained) or the daemon cannot be reached or has no
health_path.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			w := time.Duration(0)
			if wait {
				w = timeout
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), w+30*time.Second)
			defer cancel()
			st, err := c.StartDrain(ctx, w, quiet)
			if err != nil {
				return apiErr(err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "draining: %s answers 503\n", st.HealthPath)
			if !wait {
				return nil
			}
			if st.TimedOut {
				return &ExitError{Code: 1, Err: fmt.Errorf("still receiving requests after %s (%s); the host stays drained", timeout, trafficText(st, time.Now()))}
			}
			fmt.Fprintf(out, "quiet after %.1fs: no request for %s, none in flight\n", st.WaitedSeconds, quiet)
			return nil
		},
	}
	f = addClientFlags(cmd, g)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until no request has arrived for --quiet")
	cmd.Flags().DurationVar(&quiet, "quiet", 5*time.Second, "with --wait: how long without a request counts as drained")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "with --wait: give up waiting after this long")
	return cmd
}

func newUndrain(g *globals) *cobra.Command {
	var wait bool
	var timeout time.Duration
	var f *clientFlags
	cmd := &cobra.Command{
		Use:   "undrain [--wait [--timeout 1m]]",
		Short: "End hostctl drain: health_path answers as the programs are",
		Long: `End the drain: [proxy] health_path answers 200 again while a program behind
the site's upstreams is RUNNING.

With --wait, return once health_path has answered 200 to someone (the load
balancer's health check: it sends requests here again), or after
--timeout. Exit status: 0, 1 when --timeout passed first or the daemon
cannot be reached or has no health_path.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			w := time.Duration(0)
			if wait {
				w = timeout
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), w+30*time.Second)
			defer cancel()
			st, err := c.Undrain(ctx, w)
			if err != nil {
				return apiErr(err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "undrained: %s answers as the programs are\n", st.HealthPath)
			if !wait {
				return nil
			}
			if st.TimedOut {
				return &ExitError{Code: 1, Err: fmt.Errorf("%s has not answered 200 within %s: no health check came, or the programs are down (hostctl status)", st.HealthPath, timeout)}
			}
			fmt.Fprintf(out, "seen healthy after %.1fs\n", st.WaitedSeconds)
			return nil
		},
	}
	f = addClientFlags(cmd, g)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until health_path has answered 200")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "with --wait: give up waiting after this long")
	return cmd
}

// trafficText is "last request 1.2s ago, 3 in flight".
func trafficText(st apitype.DrainStatus, now time.Time) string {
	last := "no request yet"
	if st.LastRequest != nil {
		last = "last request " + now.Sub(*st.LastRequest).Round(100*time.Millisecond).String() + " ago"
	}
	return fmt.Sprintf("%s, %d in flight", last, st.InFlight)
}

// printDrain is status's drain line, when draining.
func printDrain(w io.Writer, st *apitype.DrainStatus, now time.Time) {
	if st == nil || !st.Draining {
		return
	}
	fmt.Fprintf(w, "DRAINING since %s (%s ago): %s answers 503; %s; hostctl undrain ends it\n",
		st.Since.Local().Format("15:04:05"), now.Sub(*st.Since).Round(time.Second), st.HealthPath, trafficText(*st, now))
}
