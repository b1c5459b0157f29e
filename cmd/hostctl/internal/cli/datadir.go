package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/config"
)

// addDataDirFlag adds --data-dir to every command: the one dir that
// hostctl writes (socket, state, logs) in a container whose root is
// read-only. It sets $HOSTCTL_DATA_DIR, which the config's defaults read
// (config.DataDirEnv), so `hostctl run`, its reloads, `check` and the
// CLI's search for the socket all see the same dirs; in a container the
// variable itself (ENV in the image) is what `docker exec` commands get.
func addDataDirFlag(root *cobra.Command) {
	var dir string
	root.PersistentFlags().StringVar(&dir, "data-dir", "", "the dir for everything hostctl writes when the config does not say: DIR/run/hostctl.sock, DIR/state, DIR/log (default $"+config.DataDirEnv+")")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if dir != "" {
			abs, err := filepath.Abs(dir)
			if err != nil {
				return fmt.Errorf("--data-dir: %w", err)
			}
			if err := os.Setenv(config.DataDirEnv, abs); err != nil {
				return err
			}
		}
		useDataDirTmp()
		return nil
	}
}

// useDataDirTmp points TMPDIR at DATA/tmp when there is a data dir and
// TMPDIR is not set, making DATA/tmp like /tmp (1777) if it is missing:
// hostctl's own temp files (a check of the proxy's config) must not need
// a writable /tmp on a read-only root. Programs get TMPDIR from hostctl
// (README, "How programs are run"), so theirs go there too. A data dir
// that is not absolute is left alone (the config check refuses it).
func useDataDirTmp() {
	data := config.DataDir()
	if data == "" || os.Getenv("TMPDIR") != "" || !filepath.IsAbs(data) {
		return
	}
	tmp := filepath.Join(data, "tmp")
	if err := os.Mkdir(tmp, 0o700); err == nil {
		os.Chmod(tmp, os.ModeSticky|0o777) // 1777, as /tmp, whatever the umask
	}
	if fi, err := os.Lstat(tmp); err == nil && fi.IsDir() {
		os.Setenv("TMPDIR", tmp)
	}
}
