package daemon

import (
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/alert"
)

// hostAlerts is what the watcher remembers between host checks.
type hostAlerts struct {
	last time.Time // last host check
}

// checkHost checks the host-level conditions every check_interval.
func (w *alertWatcher) checkHost(cfg alert.Config, now time.Time) {
	if now.Sub(w.host.last) < cfg.CheckInterval {
		return
	}
	w.host.last = now
}
