package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/config"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/importer"
)

func init() { register(newImport) }

func newImport(g *globals) *cobra.Command {
	var nginx, nginxPrefix, out string
	cmd := &cobra.Command{
		Use:   "import SUPERVISORD.CONF [--nginx SITE.conf] [-o hostctl.toml]",
		Short: "Convert a supervisord config (and an nginx site) into a hostctl config",
		Long: `Reads supervisord.conf (with its [include] files) by supervisord 4.2's rules, or
a conf.d fragment (a file of [program:x] sections only) as supervisord reads it
through its main file's [include], and, with --nginx, an nginx site, and writes
a hostctl config: to -o FILE, else to stdout. nginx's relative includes are
resolved against --nginx-prefix, as nginx does; an include that cannot be read
is listed (with what the common ones from Debian and certbot meant) and the
rest is imported. A comment marks every setting that could not be translated exactly;
the same list, and what was not translated at all, goes to stderr. The
written config is then validated as hostctl check would; what this machine
lacks (users, commands, directories, certificate files) is listed apart and
does not fail the import, since a config is often imported for another
machine; any other problem fails it (exit status 1).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := importer.Import(importer.Options{Supervisord: args[0], Nginx: nginx, NginxPrefix: nginxPrefix})
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			stderr := cmd.ErrOrStderr()
			fmt.Fprint(stderr, res.Summary())
			name := "<stdout>"
			if out == "" {
				if _, err := cmd.OutOrStdout().Write(res.TOML); err != nil {
					return err
				}
			} else {
				if _, err := os.Stat(out); err == nil {
					return &ExitError{Code: 1, Err: fmt.Errorf("%s exists; import does not overwrite a file (remove it or choose another -o)", out)}
				}
				if err := os.WriteFile(out, res.TOML, 0o644); err != nil {
					return &ExitError{Code: 1, Err: err}
				}
				name = out
				fmt.Fprintf(stderr, "wrote %s\n", out)
			}
			if _, err := config.Parse(name, res.TOML); config.OnlyMachine(err) {
				// The file is right; this machine lacks what it names (a
				// config is often imported for another machine).
				fmt.Fprintf(stderr, "hostctl check: the config is valid; this machine lacks what it names (users, commands, directories, files):\n%v\n", err)
				return nil
			} else if err != nil {
				fmt.Fprintf(stderr, "hostctl check would refuse it on this machine:\n%v\n", err)
				return &ExitError{Code: 1}
			}
			fmt.Fprintf(stderr, "hostctl check: OK on this machine\n")
			return nil
		},
	}
	cmd.Flags().StringVar(&nginx, "nginx", "", "an nginx site file (sites-available/NAME.conf) or nginx.conf to translate into [proxy]")
	cmd.Flags().StringVar(&nginxPrefix, "nginx-prefix", importer.DefaultNginxPrefix, "the directory nginx resolves relative include paths against (nginx -p; Debian's /etc/nginx)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the hostctl config here (default: stdout); never overwrites")
	_ = g
	return cmd
}
