package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/client"
)

func init() { register(newAlerts) }

// noSinksHelp says how to get alerts sent somewhere.
const noSinksHelp = `no sinks: alerts are kept but sent nowhere; add an [[alerts.sink]] table to the config
(type = "pagerduty", "webhook", "slack" or "email"; see the [alerts] section of the docs)`

func newAlerts(g *globals) *cobra.Command {
	var asJSON bool
	var f *clientFlags
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "Show the active alerts, where alerts are sent, and the heartbeats",
		Long: `Show the active alerts (most severe first, then oldest first), each with
the command that looks closer, then every sink ([[alerts.sink]]) with what
it delivered, gave up on and still has queued, and its last error, then
every heartbeat ([[alerts.heartbeat]]) with what it last sent and when, when
the next ping is due, and its last error.

Exit status: 0, with or without alerts; 1 when the daemon cannot be reached.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			res, err := c.Alerts(ctx)
			if err != nil {
				return apiErr(err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			printAlerts(out, res, time.Now())
			return nil
		},
	}
	f = addClientFlags(cmd, g)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print JSON: {"alerts": [...], "sinks": [...], "heartbeats": [...]}`)
	cmd.AddCommand(newAlertsTest(g))
	return cmd
}

func newAlertsTest(g *globals) *cobra.Command {
	var f *clientFlags
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Send a test alert to every sink and show each one's answer",
		Long: `Send a test alert (condition "test") to every sink, wait for each answer
(at most a minute) and print whether it was delivered, how long it took and
the error if not.

Exit status: 0 when every sink took it, 1 when one failed, when there is no
sink, or when the daemon cannot be reached.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 90*time.Second)
			defer cancel()
			res, err := c.TestAlerts(ctx)
			if err != nil {
				return apiErr(err)
			}
			if len(res.Results) == 0 {
				return &ExitError{Code: 1, Err: errors.New(noSinksHelp)}
			}
			if failed := printTestResults(cmd.OutOrStdout(), res.Results); failed > 0 {
				return &ExitError{Code: 1, Err: fmt.Errorf("%d of %d sinks failed", failed, len(res.Results))}
			}
			return nil
		},
	}
	f = addClientFlags(cmd, g)
	return cmd
}

// printAlerts prints the alerts, each with its command under its summary,
// then the sinks, then the heartbeats (if any).
func printAlerts(w io.Writer, res apitype.AlertsResponse, now time.Time) {
	defer printHeartbeats(w, res.Heartbeats, now)
	if len(res.Alerts) == 0 {
		fmt.Fprintln(w, "no active alerts")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEVERITY\tCONDITION\tSINCE\tSUMMARY")
		for _, a := range res.Alerts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Severity, a.Condition, ago(a.Since, now), cell(a.Summary))
			if a.Command != "" {
				fmt.Fprintf(tw, "\t\t\t$ %s\n", a.Command)
			}
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	if len(res.Sinks) == 0 {
		fmt.Fprintln(w, noSinksHelp)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SINK\tTYPE\tSENT\tFAILED\tQUEUED\tLAST ERROR")
	for _, s := range res.Sinks {
		last := s.LastError
		if last == "" {
			last = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", s.Name, s.Type, s.Sent, s.Failed, s.Queued, last)
	}
	tw.Flush()
}

// printHeartbeats prints one line per [[alerts.heartbeat]]: where it
// pings (scheme and host: the path holds the token), what it last sent
// and when, when the next ping is due, and its counters.
func printHeartbeats(w io.Writer, beats []apitype.AlertHeartbeat, now time.Time) {
	if len(beats) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HEARTBEAT\tKIND\tURL\tEVERY\tON ALERT\tLAST PING\tNEXT\tSENT\tFAILED\tLAST ERROR")
	for _, b := range beats {
		last, next := "-", "-"
		if !b.LastPing.IsZero() {
			last = b.LastForm + " " + ago(b.LastPing, now)
		}
		if !b.NextDue.IsZero() {
			next = "in " + strings.TrimSuffix(ago(now, b.NextDue), " ago")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", b.Name, cmp.Or(b.Kind, "-"), b.Where,
			shortDuration(time.Duration(b.IntervalSeconds*float64(time.Second))), b.OnAlert, last, next, b.Sent, b.Failed, cmp.Or(cell(b.LastError), "-"))
	}
	tw.Flush()
}

// shortDuration is d to the second without its zero tail: "1m", "1h30m",
// "90s" -> "1m30s".
func shortDuration(d time.Duration) string { return trimZeroUnits(d.Round(time.Second)) }

// trimZeroUnits is d (whole seconds) without its zero tail: "5m", not
// "5m0s"; "1h", not "1h0m0s".
func trimZeroUnits(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// printTestResults prints one line per sink and returns how many failed.
func printTestResults(w io.Writer, results []apitype.AlertTestResult) (failed int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SINK\tTYPE\tRESULT\tTIME\tERROR")
	for _, r := range results {
		verdict, why := "ok", r.Error
		if !r.OK {
			verdict = "FAILED"
			failed++
		}
		if why == "" {
			why = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%dms\t%s\n", r.Sink, r.Type, verdict, r.Milliseconds, why)
	}
	tw.Flush()
	return failed
}

// printAlertLines is the block under `hostctl status`: one line per alert.
func printAlertLines(w io.Writer, alerts []apitype.Alert, now time.Time) {
	if len(alerts) == 0 {
		return
	}
	fmt.Fprintf(w, "alerts: %d active (hostctl alerts)\n", len(alerts))
	for _, a := range alerts {
		fmt.Fprintf(w, "  %s %s: %s\n", a.Severity, ago(a.Since, now), cell(a.Summary))
	}
}

// ago is how long ago t was, to the minute once past one: "40s ago",
// "12m ago", "3h05m ago", "2d4h ago".
func ago(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		d = 0
		fallthrough
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh ago", int(d.Hours())/24, int(d.Hours())%24)
}

// statusAlerts prints the alerts block of `hostctl status`. A daemon
// without GET /v1/alerts (older than the CLI) gets no block: the status
// is still worth printing.
func statusAlerts(ctx context.Context, w io.Writer, c *client.Client, now time.Time) {
	res, err := c.Alerts(ctx)
	var ae *client.APIError
	switch {
	case errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound:
	case err != nil:
		fmt.Fprintf(w, "alerts: cannot tell (%v)\n", err)
	default:
		printAlertLines(w, res.Alerts, now)
	}
}
