package daemon

import (
	"github.com/hostctl/hostctl/cmd/hostctl/internal/config"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/supervisord"
	"github.com/hostctl/hostctl/supervisor"
)

// planReload reads and checks the config file and says what Reload would
// change, changing nothing: supervisord's reread (the XML-RPC reloadConfig).
func (d *Daemon) planReload() (supervisor.Diff, []*supervisor.ProcessConfig, error) {
	cfg, err := config.Load(d.config().Path)
	if err != nil {
		return supervisor.Diff{}, nil, err
	}
	progs := cfg.Resolve(d.config().Slots()).ProgramList()
	return d.sup.Plan(progs)
}

// mainLog is hostctl's own log file for supervisord's maintail, nil
// without one ([log] file = false).
func (d *Daemon) mainLog() supervisord.MainLog {
	if d.ownLog == nil {
		return nil // not a typed nil in the interface
	}
	return d.ownLog
}
