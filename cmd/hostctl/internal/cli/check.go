package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/config"
)

func init() { register(newCheck) }

func newCheck(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Validate the config file; print every problem with its line and key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := config.Path(g.config)
			f, err := config.Load(path)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				if config.OnlyMachine(err) {
					fmt.Fprintln(cmd.ErrOrStderr(), "every problem above is with this machine: the file itself is valid, and runs where the users, commands, directories and files it names exist")
				}
				return &ExitError{Code: 1}
			}
			for _, w := range f.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", w)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK: %s\n", path, summary(f))
			return nil
		},
	}
}

func summary(f *config.File) string {
	auto := 0
	for _, p := range f.Programs {
		if p.Autostart {
			auto++
		}
	}
	procs := ""
	if n := len(f.Processes()); n != len(f.Programs) {
		procs = fmt.Sprintf(", %d processes", n)
	}
	groups := ""
	if len(f.Groups) > 0 {
		groups = fmt.Sprintf(", %d %s", len(f.Groups), plural(len(f.Groups), "group", "groups"))
	}
	checks := ""
	if len(f.Checks) > 0 {
		checks = fmt.Sprintf(", %d %s of services hostctl does not run", len(f.Checks), plural(len(f.Checks), "check", "checks"))
	}
	unserved := ""
	for _, u := range f.Unserved {
		unserved += fmt.Sprintf("; upstream %s is served by no program of this hostctl (something else runs it; a program that does needs serves)", u)
	}
	return fmt.Sprintf("%d programs (%d autostart%s%s)%s, logs in %s%s", len(f.Programs), auto, procs, groups, checks, f.Log.Dir, unserved)
}
