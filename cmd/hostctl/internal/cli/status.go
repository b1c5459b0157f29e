package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/client"
	"github.com/hostctl/hostctl/supervisor"
)

func init() { register(newStatus) }

// Exit codes of `hostctl status`.
const (
	exitNotAllRunning = 3 // an autostart program is not RUNNING
	exitUnknownName   = 4 // a name is not in the config
)

func newStatus(g *globals) *cobra.Command {
	var asJSON, fleetFlag bool
	var f *clientFlags
	cmd := &cobra.Command{
		Use:   "status [NAME...]",
		Short: "Show the programs (all, or the named ones), the proxy and the checks",
		Long: `With [deploy], first the live release: its id, commit, slot and since
when it is live.

Show each program's state, pid, uptime, restarts, memory (resident, whole
process group) and description or reason, then one line about the proxy
and, without names, one line per active alert (hostctl alerts shows more).

Then the checks ([check.NAME]: services hostctl does not run and never
restarts, such as the database): each one's state (up, down after
"failures" probes in a row failed, pending before the first pass), since
when, how long its last probe took, what it probes and its last error.
NAME may be a check: hostctl status db shows that check and its notes.

A program with instances shows one line per instance, and a program in a
[group] shows as GROUP:NAME ("celery:celery_0", "web:gunicorn"), as
supervisorctl shows it. NAME is a program, a process, a group or GROUP:*.
Program output shown (the last stderr line) has its terminal escapes and
control characters left out.

Exit status: 0 when every autostart program shown is RUNNING, 3 otherwise,
4 when a name is not in the config, 1 when the daemon cannot be reached.
A check that is down does not change it (hostctl does not run that
service); its alert says so.

With --fleet: the programs of every [[fleet.host]] of the config, read
from each host's TCP admin API with its token, all at once, in one table
with a HOST column; a host that does not answer within [fleet] timeout
(default 5s) is one line saying why (refused, timeout, bad token). Exit
status 1 when a host did not answer, else 3 when an autostart program is
not RUNNING, else 0; 2 when the config has no [[fleet.host]].`,
		RunE: func(cmd *cobra.Command, names []string) error {
			if fleetFlag {
				return statusFleet(cmd, g, names, asJSON)
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			checks, err := c.Checks(ctx)
			if ae, ok := errors.AsType[*client.APIError](err); ok && ae.StatusCode == http.StatusNotFound {
				checks, err = nil, nil // a daemon older than checks
			}
			if err != nil {
				return apiErr(err)
			}
			// A name is a check's or else a program's: the config keeps
			// them apart.
			checks, progNames, onlyChecks := pickChecks(checks, names)
			var progs []apitype.Process
			if !onlyChecks {
				if progs, err = c.Programs(ctx, progNames...); err != nil {
					return apiErr(err)
				}
			}
			proxySt, hasProxy, err := c.Proxy(ctx)
			if err != nil {
				return apiErr(err)
			}
			rels, err := c.Releases(ctx)
			if ae, ok := errors.AsType[*client.APIError](err); ok && ae.StatusCode == http.StatusNotFound {
				err = nil // a daemon older than releases
			}
			if err != nil {
				return apiErr(err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				var px *apitype.ProxyStatus // null without a proxy
				if hasProxy {
					px = &proxySt
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				doc := map[string]any{"programs": progs, "proxy": px, "checks": checks}
				if rels.Configured {
					doc["release"] = rels.Live // null before the first deploy
				}
				if err := enc.Encode(doc); err != nil {
					return err
				}
			} else {
				now := time.Now()
				if !onlyChecks {
					if rels.Configured {
						fmt.Fprintln(out, cell(liveLine(rels.Live, now)))
					}
					printStatus(out, progs, now)
					fmt.Fprintln(out, cell(proxyLine(proxySt, hasProxy)))
					printPool(out, proxySt.Upstreams)
					printDrain(out, proxySt.Drain, now)
				}
				printChecks(out, checks, now)
				if len(names) == 0 {
					statusAlerts(ctx, out, c, now)
				} else {
					printNotes(out, progs)
					printCheckNotes(out, checks)
				}
			}
			for _, p := range progs {
				if p.Autostart && p.State != apitype.Running {
					return &ExitError{Code: exitNotAllRunning}
				}
			}
			return nil
		},
	}
	f = addClientFlags(cmd, g)
	cmd.ValidArgsFunction = completeProgramNames(f)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: {\"programs\": [...], \"proxy\": ..., \"checks\": [...]}, and \"release\" (the live one) with [deploy]")
	cmd.Flags().BoolVar(&fleetFlag, "fleet", false, "every [[fleet.host]] of the config in one table, read from their TCP admin APIs (see hostctl status --help)")
	return cmd
}

// printStatus prints the aligned table.
func printStatus(w io.Writer, progs []apitype.Process, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPID\tUPTIME\tRESTARTS\tMEMORY\tDESCRIPTION")
	for _, p := range progs {
		fmt.Fprintln(tw, programRow(p, now))
	}
	tw.Flush()
}

// pickChecks splits names into the checks they name and the rest (program
// names, for the programs' table). Without names, every check and every
// program. onlyChecks: names were given and every one is a check.
func pickChecks(all []apitype.Check, names []string) (checks []apitype.Check, progNames []string, onlyChecks bool) {
	if len(names) == 0 {
		return all, nil, false
	}
	byName := map[string]apitype.Check{}
	for _, c := range all {
		byName[c.Name] = c
	}
	for _, n := range names {
		if c, ok := byName[n]; ok {
			checks = append(checks, c)
		} else {
			progNames = append(progNames, n)
		}
	}
	return checks, progNames, len(progNames) == 0
}

// printChecks prints the checks' table, when there are checks.
func printChecks(w io.Writer, checks []apitype.Check, now time.Time) {
	if len(checks) == 0 {
		return
	}
	fmt.Fprintln(w, "Checks (services hostctl does not run; it never restarts them):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  CHECK\tSTATE\tSINCE\tLAST PROBE\tTARGET\tLAST ERROR")
	for _, c := range checks {
		last := "-"
		if !c.LastCheck.IsZero() {
			last = fmtProbeDuration(c.LastDurationSeconds)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", cell(c.Name), c.State, sinceCell(c.Since, now), last, cell(c.Target), cell(checkError(c, now)))
	}
	tw.Flush()
}

// checkError is the LAST ERROR cell: the error with how many probes in a
// row failed while it fails, or how long ago the last failure was.
func checkError(c apitype.Check, now time.Time) string {
	switch {
	case c.LastError == "":
		return ""
	case c.Failing > 0:
		return fmt.Sprintf("%s (%d of %d failed in a row)", c.LastError, c.Failing, c.Failures)
	}
	return fmt.Sprintf("%s: %s", ago(c.LastErrorAt, now), c.LastError)
}

// sinceCell is the SINCE cell: "4m ago", "-" before the first probe.
func sinceCell(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return ago(t, now)
}

// fmtProbeDuration is a probe's duration: "3ms", "1.2s".
func fmtProbeDuration(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// printCheckNotes prints the notes of each check shown (hostctl status
// NAME).
func printCheckNotes(w io.Writer, checks []apitype.Check) {
	for _, c := range checks {
		if c.Notes != "" {
			fmt.Fprintf(w, "notes (%s): %s\n", c.Name, cell(c.Notes))
		}
	}
}

// printNotes prints the notes of each program shown (hostctl status
// NAME): once per program, not per instance.
func printNotes(w io.Writer, progs []apitype.Process) {
	seen := map[string]bool{}
	for _, p := range progs {
		if p.Notes == "" || seen[p.Program] {
			continue
		}
		seen[p.Program] = true
		fmt.Fprintf(w, "notes (%s): %s\n", p.Program, cell(p.Notes))
	}
}

// programRow is one program's tab-separated cells under printStatus's
// header (from NAME to DESCRIPTION).
func programRow(p apitype.Process, now time.Time) string {
	pid, up := "-", "-"
	if p.PID > 0 {
		pid = fmt.Sprint(p.PID)
		up = fmtUptime(time.Duration(p.UptimeSeconds * float64(time.Second)))
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%s\t%s", cell(displayName(p.ProcessStatus)), p.State, pid, up, p.Restarts, fmtMemory(p), cell(describe(p, now)))
}

// displayName is how a process is shown: its namespec, GROUP:NAME when
// its program group differs from its name ("celery:celery_0",
// "web:gunicorn"), else NAME (supervisor.ProcessNames.Namespec). Every
// command takes either form.
func displayName(st apitype.ProcessStatus) string { return processNames(st).Namespec() }

// processNames are the names a process answers to.
func processNames(st apitype.ProcessStatus) supervisor.ProcessNames {
	return supervisor.ProcessNames{Process: st.Name, Program: st.Program, Group: st.ProgramGroup}
}

// resultName is displayName for the process of an action result.
func resultName(r apitype.ActionResult) string {
	if r.Status.Name == r.Name {
		return displayName(r.Status)
	}
	return r.Name
}

// describe is the last column: why the program is in its state when that
// needs saying, else its description. A FATAL or BACKOFF program shows the
// last line it wrote to stderr and the command that shows more.
func describe(p apitype.Process, now time.Time) string {
	var parts []string
	switch p.State {
	case apitype.Fatal:
		switch {
		case p.Tries > 0 && p.LastExit != nil:
			why := shortExit(*p.LastExit)
			if p.LastStderr != "" {
				why += ": " + p.LastStderr
			}
			parts = append(parts, fmt.Sprintf("gave up after %d tries that exited too quickly (%s)", p.Tries, why))
		case p.SpawnErr != "":
			parts = append(parts, p.SpawnErr)
		}
		if !p.NextStart.IsZero() {
			parts = append(parts, "next try in "+untilNext(p.NextStart, now))
		} else {
			parts = append(parts, fmt.Sprintf("no retry (fatal_retry = \"never\"): fix it, then `hostctl start %s`", p.Name))
		}
	case apitype.Running:
		if p.Health != nil {
			parts = append(parts, healthText(*p.Health))
		}
	case apitype.Exited:
		if p.LastExit != nil {
			parts = append(parts, supervisor.ExitStatus(*p.LastExit).String())
		}
	case apitype.Backoff:
		if !p.NextStart.IsZero() {
			parts = append(parts, "next try in "+untilNext(p.NextStart, now))
		}
	}
	if (p.State == apitype.Stopping || p.State == apitype.Backoff) && p.Health != nil && p.Health.Failures > 0 {
		parts = append(parts, healthText(*p.Health))
	}
	if p.Info != "" {
		parts = append(parts, p.Info)
	}
	if p.State == apitype.Backoff && p.LastStderr != "" {
		parts = append(parts, "stderr: "+p.LastStderr)
	}
	if p.LastStderr != "" {
		parts = append(parts, fmt.Sprintf("more: hostctl tail %s stderr", p.Name))
	}
	if p.DroppedLogBytes > 0 {
		parts = append(parts, fmt.Sprintf("%s of output dropped", fmtBytes(p.DroppedLogBytes)))
	}
	if len(parts) == 0 || len(parts) == 1 && p.State == apitype.Running && p.Health != nil && p.Health.Failures == 0 && p.Description != "" {
		parts = append(parts, p.Description) // "healthy" says too little to hide it
	}
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), "; ")
}

// healthText is "healthy", "healthy (1 failed check: GET /healthz: 500)"
// below the threshold, "unhealthy (3 failures: GET /healthz: 500)" at it.
func healthText(h apitype.HealthStatus) string {
	switch {
	case h.Failures == 0:
		return "healthy"
	case h.Healthy:
		return fmt.Sprintf("healthy (%d failed %s: %s)", h.Failures, plural(h.Failures, "check", "checks"), h.LastError)
	}
	return fmt.Sprintf("unhealthy (%d %s: %s)", h.Failures, plural(h.Failures, "failure", "failures"), h.LastError)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// shortExit is "exit 1", or "SIGKILL" for a process a signal killed.
func shortExit(e apitype.ExitStatus) string {
	if e.Signal != "" {
		return "SIG" + e.Signal
	}
	return fmt.Sprintf("exit %d", e.Code)
}

// untilNext is the time left until t: "1.4s", "42s", "4m12s", "5m",
// "1h" (whole seconds, cut not rounded, from ten seconds on), "now" once
// due.
func untilNext(t, now time.Time) string {
	d := t.Sub(now)
	switch {
	case d <= 0:
		return "now"
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return trimZeroUnits(d.Truncate(time.Second))
}

// proxyLine is the line under the table.
func proxyLine(st apitype.ProxyStatus, configured bool) string {
	if !configured {
		return "proxy: not configured"
	}
	if !st.Running {
		if st.Info != "" {
			return "proxy: NOT RUNNING: " + st.Info
		}
		return "proxy: NOT RUNNING"
	}
	s := "proxy: running"
	if len(st.Listen) > 0 {
		s += " on " + strings.Join(st.Listen, ", ")
	}
	healthy := 0
	var down []string
	for _, u := range st.Upstreams {
		if u.Healthy {
			healthy++
		} else {
			down = append(down, u.Address)
		}
	}
	if len(st.Upstreams) > 0 {
		s += fmt.Sprintf("; upstreams %d/%d healthy", healthy, len(st.Upstreams))
		if len(down) > 0 {
			s += " (down: " + strings.Join(down, ", ") + ")"
		}
	}
	for _, c := range st.Certificates {
		days := int(time.Until(c.NotAfter).Hours() / 24)
		s += fmt.Sprintf("; cert %s expires in %dd", strings.Join(c.Names, " "), days)
	}
	return s
}

// printPool prints the upstream pool, one line each, when there are
// several upstreams (a front balancing across webservers), or a single
// one while it is held (draining before its program stops).
func printPool(w io.Writer, ups []apitype.ProxyUpstreamStatus) {
	if len(ups) == 0 || (len(ups) == 1 && !ups[0].Draining) {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  UPSTREAM\tSTATE\tIN FLIGHT\tFAILS\tWHY")
	for _, u := range ups {
		state := "up"
		switch {
		case u.Draining: // taken out before its program stops; WHY says if it is down too
			state = "draining"
		case !u.Healthy:
			state = "DOWN"
		}
		why := u.Down
		if u.Held > 0 {
			why = strings.TrimPrefix(fmt.Sprintf("%s; %d requests held", why, u.Held), "; ")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\n", cell(u.Address), state, u.Requests, u.Fails, cell(why))
	}
	tw.Flush()
}

func fmtUptime(d time.Duration) string {
	d = d.Round(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h, m, s := d/time.Hour, (d%time.Hour)/time.Minute, (d%time.Minute)/time.Second
	if days > 0 {
		return fmt.Sprintf("%dd %02d:%02d:%02d", days, h, m, s)
	}
	return fmt.Sprintf("%d:%02d:%02d", h, m, s)
}

// fmtMemory is the MEMORY cell: the process group's RSS ("-" without a
// process), and against memory_limit when there is one ("410M/512M").
// With a limit both figures are in decimal units, the ones memory_limit
// is written in ("512MB" is 512,000,000 bytes), so the limit reads as
// written; without, binary units as always.
func fmtMemory(p apitype.Process) string {
	if p.MemoryLimit <= 0 {
		if p.PID == 0 {
			return "-"
		}
		return fmtBytes(p.RSSBytes)
	}
	used := "-"
	if p.PID > 0 {
		used = fmtDecimal(p.RSSBytes)
	}
	return used + "/" + fmtDecimal(uint64(p.MemoryLimit))
}

// fmtDecimal formats n bytes in decimal units with at most one decimal:
// "512M", "410.2M", "1.5G", "900K", "12B".
func fmtDecimal(n uint64) string {
	v, u := float64(n), 0
	for v >= 1000 && u < 4 {
		v /= 1000
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") + string("BKMGT"[u])
}

func fmtBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	v, u := float64(n), 0
	for v >= unit && u < 4 {
		v /= unit
		u++
	}
	return fmt.Sprintf("%.1f%c", v, "BKMGT"[u])
}
