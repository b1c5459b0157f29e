package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/config"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/fleet"
)

// statusFleet is `hostctl status --fleet`: every [[fleet.host]] of the
// config file, asked at once, in one table.
func statusFleet(cmd *cobra.Command, g *globals, names []string, asJSON bool) error {
	if len(names) > 0 {
		return &ExitError{Code: 2, Err: errors.New("status --fleet shows every program of every host; it takes no names")}
	}
	path := config.Path(g.config)
	cfg, err := config.Load(path)
	if err != nil {
		return &ExitError{Code: 2, Err: fmt.Errorf("status --fleet reads [[fleet.host]] from the config:\n%w", err)}
	}
	if len(cfg.Fleet.Hosts) == 0 {
		return &ExitError{Code: 2, Err: fmt.Errorf("%s has no [[fleet.host]] (name, url, token_file): nothing to show", path)}
	}
	t0 := time.Now()
	hosts := fleet.Status(cmd.Context(), cfg.Fleet)
	took := time.Since(t0)
	out := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"hosts": hosts}); err != nil {
			return err
		}
	} else {
		printFleet(out, hosts, time.Now())
		answered := 0
		for _, h := range hosts {
			if h.OK {
				answered++
			}
		}
		fmt.Fprintf(out, "fleet: %d of %d hosts answered (%s)\n", answered, len(hosts), took.Round(time.Millisecond))
	}
	return fleetExit(hosts)
}

// printFleet prints the programs of every host under one header, in the
// hosts' order; a host without an answer is one line saying why.
func printFleet(w io.Writer, hosts []fleet.HostStatus, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tNAME\tSTATE\tPID\tUPTIME\tRESTARTS\tMEMORY\tDESCRIPTION")
	for _, h := range hosts {
		if !h.OK {
			// The last cell of a line does not widen the columns.
			fmt.Fprintf(tw, "%s\tNOT ANSWERING (%s): %s [%s]\n", h.Name, h.Reason, cell(h.Error), h.URL)
			continue
		}
		if len(h.Programs) == 0 {
			fmt.Fprintf(tw, "%s\t(no programs)\n", h.Name)
		}
		for _, p := range h.Programs {
			fmt.Fprintf(tw, "%s\t%s\n", h.Name, programRow(p, now))
		}
	}
	tw.Flush()
}

// fleetExit is status --fleet's exit status: 1 when a host did not
// answer, else 3 when an autostart program is not RUNNING (as `hostctl
// status` on that host would say), else nil.
func fleetExit(hosts []fleet.HostStatus) error {
	down := false
	for _, h := range hosts {
		if !h.OK {
			return &ExitError{Code: 1}
		}
		for _, p := range h.Programs {
			if p.Autostart && p.State != apitype.Running {
				down = true
			}
		}
	}
	if down {
		return &ExitError{Code: exitNotAllRunning}
	}
	return nil
}
