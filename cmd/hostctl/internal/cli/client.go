package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"

	"github.com/hostctl/hostctl/cmd/hostctl/client"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/config"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/daemon"
	"github.com/hostctl/hostctl/supervisor"
)

func init() { daemon.Version = Version }

// clientFlags say how to reach the daemon; every command that talks to it
// has them.
type clientFlags struct {
	g         *globals
	socket    string
	url       string
	tokenFile string
	caFile    string
}

func addClientFlags(cmd *cobra.Command, g *globals) *clientFlags {
	f := &clientFlags{g: g}
	cmd.Flags().StringVar(&f.socket, "socket", "", "admin socket of the daemon (default: [admin] socket of the config, else "+client.DefaultSocket+")")
	cmd.Flags().StringVar(&f.url, "url", "", "URL of the daemon's TCP admin listener, e.g. https://10.0.0.11:9001 or http://127.0.0.1:9001 (needs --token-file)")
	cmd.Flags().StringVar(&f.tokenFile, "token-file", "", "file holding the admin token (or the read-only one, to read), for --url")
	cmd.Flags().StringVar(&f.caFile, "ca-file", "", "for an https --url: the CA its certificate is signed by (with [admin] tls = \"internal\": that host's STATE_DIR/admin-tls/ca.crt); default: the system's CAs")
	cmd.MarkFlagsMutuallyExclusive("socket", "url")
	return f
}

// client finds the daemon: --socket, or --url with --token-file, else the
// [admin] socket of the config file (-c, $HOSTCTL_CONFIG, the default
// path). Only [admin] socket is read from the file, leniently: a config
// with a mistake elsewhere (being edited before a reload) still tells the
// CLI where the daemon is. An unreadable file means the default socket.
func (f *clientFlags) client() (*client.Client, error) {
	switch {
	case f.url != "":
		if f.tokenFile == "" {
			return nil, &ExitError{Code: 2, Err: errors.New("--url needs --token-file (the file named by [admin] token_file)")}
		}
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, &ExitError{Code: 1, Err: fmt.Errorf("--token-file: %w", err)}
		}
		c := &client.Client{URL: f.url, Token: strings.TrimSpace(string(b))}
		if f.caFile != "" {
			if !strings.HasPrefix(f.url, "https://") {
				return nil, &ExitError{Code: 2, Err: errors.New("--ca-file is for an https:// --url")}
			}
			if c.RootCAs, err = client.LoadCAFile(f.caFile); err != nil {
				return nil, &ExitError{Code: 1, Err: fmt.Errorf("--ca-file: %w", err)}
			}
		}
		return c, nil
	case f.caFile != "":
		return nil, &ExitError{Code: 2, Err: errors.New("--ca-file is for an https:// --url")}
	case f.socket != "":
		return &client.Client{Socket: f.socket}, nil
	}
	return &client.Client{Socket: socketFromConfig(config.Path(f.g.config))}, nil
}

func socketFromConfig(path string) string {
	var file struct {
		Admin struct {
			Socket string `toml:"socket"`
		} `toml:"admin"`
	}
	if _, err := toml.DecodeFile(path, &file); err == nil && file.Admin.Socket != "" {
		// ${VAR} expands as in hostctl run; an unknown variable leaves the
		// text as it is (the error then names it).
		if v, err := supervisor.ExpandVars(file.Admin.Socket, os.LookupEnv); err == nil {
			return v
		}
		return file.Admin.Socket
	}
	return config.DefaultSocket() // $HOSTCTL_DATA_DIR/run/hostctl.sock, else /run/hostctl/hostctl.sock
}

// apiErr turns a client error into the CLI's exit code: 4 for an unknown
// program, 1 otherwise (the daemon not running included).
func apiErr(err error) error {
	if err == nil {
		return nil
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	if client.IsUnknownProgram(err) {
		return &ExitError{Code: 4, Err: err}
	}
	var ae *client.APIError
	if errors.As(err, &ae) && ae.StatusCode == http.StatusUnauthorized {
		return &ExitError{Code: 1, Err: fmt.Errorf("%s (check --token-file)", ae.Message)}
	}
	if why := client.CertError(err); why != "" {
		return &ExitError{Code: 1, Err: fmt.Errorf("%w\nthe admin listener's TLS certificate was refused: %s (--ca-file)", err, why)}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &ExitError{Code: 1, Err: fmt.Errorf("no answer from hostctl in time: %w", err)}
	}
	return &ExitError{Code: 1, Err: err}
}

// completeProgramNames completes program names from the running daemon.
func completeProgramNames(f *clientFlags, extra ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		c, err := f.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
		defer cancel()
		progs, err := c.Programs(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names := append([]string{}, extra...)
		procs := map[string]bool{}
		all := make([]supervisor.ProcessNames, len(progs))
		for i, p := range progs {
			names = append(names, p.Name+"\t"+string(p.State))
			procs[p.Name], all[i] = true, processNames(p.ProcessStatus)
		}
		for _, n := range supervisor.KnownNames(all) {
			if !procs[n] {
				names = append(names, n+"\tprogram or group")
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
