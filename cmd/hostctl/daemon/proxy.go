package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/config"
	"github.com/hostctl/hostctl/proxy"
)

// accessLogName is the proxy's access log inside [log] dir, rotated and
// capped like program logs.
const accessLogName = "access.log"

// startProxy starts the web front once the programs have settled (RUNNING,
// or given up: then the proxy serves the error page rather than refusing
// connections). Without a [proxy] section it does nothing. caddy.Load sends
// READY=1 to NOTIFY_SOCKET itself (see notify.go): hostctl's own READY=1
// follows it.
func (d *Daemon) startProxy(ctx context.Context, cfg *config.File) error {
	if cfg.Proxy == nil {
		return nil
	}
	if d.proxy == nil {
		opts := proxy.Options{Logger: d.log, StateDir: cfg.Admin.StateDir}
		if cfg.Proxy.AccessLog == nil || *cfg.Proxy.AccessLog {
			s, err := d.logs.Open(filepath.Join(cfg.Log.Dir, accessLogName), cfg.Log.Rotation(), false)
			if err != nil {
				return fmt.Errorf("proxy access log: %w", err)
			}
			d.accessLog = s
			opts.AccessLog = s
		}
		d.proxy = proxy.New(opts)
	}
	// Wait for every autostart program, not just the upstreams: Caddy's
	// own READY=1 must not reach systemd before hostctl is ready.
	if err := d.sup.WaitSettled(ctx); err != nil {
		return nil // shutting down: start nothing
	}
	if err := d.proxy.Apply(*cfg.Proxy); err != nil {
		return err
	}
	d.log.Info("proxy listening", zap.Strings("listen", d.proxy.Status().Listen), zap.Strings("upstreams", cfg.Proxy.Upstreams()))
	return nil
}

// reloadProxy applies a changed [proxy] section and starts or stops the
// proxy when the section appears or goes. An unchanged section is left
// alone: a Caddy reload drops a few keep-alive requests. It must stay the
// last step of Reload (see notify.go).
func (d *Daemon) reloadProxy(ctx context.Context, old, cfg *config.File) error {
	switch {
	case reflect.DeepEqual(old.Proxy, cfg.Proxy):
		return nil
	case cfg.Proxy == nil:
		d.log.Info("[proxy] removed: stopping the proxy")
		return d.proxy.Stop()
	case old.Proxy == nil:
		return d.startProxy(ctx, cfg)
	}
	d.log.Info("[proxy] changed: reloading the proxy")
	return d.proxy.Apply(*cfg.Proxy)
}

func (d *Daemon) stopProxy() {
	if d.proxy == nil {
		return
	}
	if err := d.proxy.Stop(); err != nil {
		d.log.Error("stopping the proxy", zap.Error(err))
	}
	if d.accessLog != nil {
		d.accessLog.Close()
	}
}

// proxyStatus is the proxy's state for the admin API (nil without a proxy).
func (d *Daemon) proxyStatus() any {
	if d.proxy == nil || d.config().Proxy == nil {
		return nil
	}
	return d.proxy.Status()
}

// proxyReady reports whether the proxy, if configured, is listening.
func (d *Daemon) proxyReady() bool {
	return d.config().Proxy == nil || (d.proxy != nil && d.proxy.Status().Running)
}
