package daemon

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/config"
	"github.com/hostctl/hostctl/proxy"
	"github.com/hostctl/hostctl/supervisor"
)

// accessLogName is the proxy's access log inside [log] dir, rotated and
// capped like program logs.
const accessLogName = "access.log"

// startProxy starts the web front as soon as the programs behind its
// upstreams have settled (RUNNING, or given up: then the proxy serves the
// error page rather than refusing connections), without waiting for
// unrelated programs such as a slow rabbitmq. Without a [proxy] section it
// does nothing. Caddy cannot tell systemd anything (HideNotifySocketFromCaddy).
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
	d.setProxyInfo("waiting for " + strings.Join(upstreamPrograms(cfg), ", "))
	d.waitUpstreams(ctx, cfg)
	if ctx.Err() != nil {
		return nil // shutting down: start nothing
	}
	if err := d.proxy.Apply(*cfg.Proxy); err != nil {
		d.setProxyInfo(err.Error())
		return err
	}
	d.setProxyInfo("")
	d.log.Info("proxy listening", zap.Strings("listen", d.proxy.Status().Listen), zap.Strings("upstreams", cfg.Proxy.Upstreams()))
	return nil
}

// upstreamPrograms returns the programs that serve an upstream address of
// the proxy: a tcp ready probe on that address, or the unix socket path in
// the program's command line (gunicorn --bind unix:PATH) or ready probe.
func upstreamPrograms(cfg *config.File) []string {
	var names []string
	for _, up := range cfg.Proxy.Upstreams() {
		sock, isUnix := strings.CutPrefix(up, "unix:")
		for _, n := range cfg.ProgramNames() {
			p := cfg.Programs[n]
			match := p.Ready != nil && p.Ready.TCP == up
			if isUnix {
				args := append([]string{}, p.Command...)
				if p.Ready != nil {
					args = append(args, p.Ready.Exec...)
				}
				for _, a := range args {
					match = match || strings.Contains(a, sock)
				}
			}
			if match && !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// waitUpstreams waits (bounded) until the upstream programs are RUNNING or
// have given up.
func (d *Daemon) waitUpstreams(ctx context.Context, cfg *config.File) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for _, n := range upstreamPrograms(cfg) {
		st, err := d.sup.WaitFor(ctx, n, func(st supervisor.Status) bool {
			switch st.State {
			case supervisor.Running, supervisor.Fatal, supervisor.Exited:
				return true
			case supervisor.Stopped:
				return !st.Autostart
			}
			return false
		})
		if err != nil && ctx.Err() == context.DeadlineExceeded {
			d.log.Warn("starting the proxy before its upstream program is ready", zap.String("program", n), zap.Stringer("state", st.State))
		}
	}
}

func (d *Daemon) setProxyInfo(s string) {
	d.mu.Lock()
	d.proxyInfo = s
	d.mu.Unlock()
}

// reloadProxy applies a changed [proxy] section and starts or stops the
// proxy when the section appears or goes. An unchanged section is left
// alone: a Caddy reload drops a few keep-alive requests. It must stay the
// last step of Reload (see notify.go).
// It says what happened: "reloaded", "unchanged", "started", "stopped", or
// "" without a proxy.
func (d *Daemon) reloadProxy(ctx context.Context, old, cfg *config.File) (string, error) {
	switch {
	case cfg.Proxy == nil && old.Proxy == nil:
		return "", nil
	case cfg.Proxy == nil:
		d.log.Info("[proxy] removed: stopping the proxy")
		return "stopped", d.proxy.Stop()
	case old.Proxy == nil || d.proxy == nil:
		return "started", d.startProxy(ctx, cfg)
	}
	// Apply reloads Caddy only if the generated config changed, which also
	// covers an edited error page or Caddyfile behind an unchanged section;
	// the same comparison tells the caller what happened.
	before, _ := old.Proxy.CaddyJSON()
	after, _ := cfg.Proxy.CaddyJSON()
	if err := d.proxy.Apply(*cfg.Proxy); err != nil {
		return "", err
	}
	if bytes.Equal(before, after) {
		return "unchanged", nil
	}
	d.log.Info("[proxy] changed: proxy reloaded")
	return "reloaded", nil
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

// proxyStatus is the proxy's state for the admin API (nil without a proxy),
// with the reason when it is not running.
func (d *Daemon) proxyStatus() any {
	if d.config().Proxy == nil {
		return nil
	}
	d.mu.Lock()
	info := d.proxyInfo
	d.mu.Unlock()
	var st proxy.Status
	if d.proxy != nil {
		st = d.proxy.Status()
	}
	return struct {
		proxy.Status
		Info string `json:"info,omitempty"`
	}{st, info}
}

// proxyReady reports whether the proxy, if configured, is listening.
func (d *Daemon) proxyReady() bool {
	return d.config().Proxy == nil || (d.proxy != nil && d.proxy.Status().Running)
}
