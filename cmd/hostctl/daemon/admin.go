package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/control"
	"github.com/hostctl/hostctl/supervisor"
)

// Version is reported by the admin API's /healthz; the CLI sets it.
var Version = "dev"

// admin is the admin API and its listeners.
type admin struct {
	srv  *control.Server
	unix net.Listener
	tcp  net.Listener // nil without [admin] listen
	tok  string
}

// listenAdmin opens the admin socket (and the TCP listener, if configured)
// before anything else starts: if another hostctl already serves the
// socket, this one must fail before it touches any program.
func (d *Daemon) listenAdmin() error {
	a := d.cfg.Admin
	gid := -1
	if a.Group != "" {
		g, err := supervisor.LookupGroup(a.Group)
		if err != nil {
			return fmt.Errorf("admin.group: %w", err)
		}
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return fmt.Errorf("admin.group: %q has gid %q", a.Group, g.Gid)
		}
	}
	l, err := control.ListenUnix(a.Socket, gid)
	if err != nil {
		return err
	}
	d.admin = &admin{unix: l}
	if a.Listen != "" {
		b, err := os.ReadFile(a.TokenFile)
		if err != nil {
			l.Close()
			return fmt.Errorf("admin.token_file: %w", err)
		}
		d.admin.tok = strings.TrimSpace(string(b))
		if d.admin.tcp, err = net.Listen("tcp", a.Listen); err != nil {
			l.Close()
			return fmt.Errorf("admin.listen: %w", err)
		}
	}
	return nil
}

// serveAdmin starts serving the API once the supervisor exists.
func (d *Daemon) serveAdmin() {
	if d.admin == nil {
		return
	}
	d.admin.srv = control.New(control.Options{
		Programs: d.sup,
		Reload: func(ctx context.Context) (control.ReloadResponse, error) {
			res, err := d.Reload(ctx)
			if err != nil {
				d.log.Error("reload failed; still running the previous config", zap.Error(err))
			} else {
				d.log.Info("reloaded", zap.Strings("added", res.Added), zap.Strings("changed", res.Changed), zap.Strings("removed", res.Removed), zap.String("proxy", res.Proxy))
			}
			return res, err
		},
		Proxy:   d.proxyStatus,
		Drain:   drainer{d},
		Alerts:  d.alerts,
		Token:   d.admin.tok,
		Logger:  d.log.Named("admin"),
		Version: Version,
		Supervisord: control.Supervisord{
			Plan:    d.planReload,
			Configs: d.sup.Configs,
			MainLog: d.mainLog(),
		},
	})
	d.admin.srv.ServeUnix(d.admin.unix)
	if d.admin.tcp != nil {
		if err := d.admin.srv.ServeTCP(d.admin.tcp); err != nil {
			d.log.Error("admin TCP listener", zap.Error(err))
			d.admin.tcp.Close()
		}
	}
}

// closeAdmin stops the API and removes the socket file.
func (d *Daemon) closeAdmin() {
	if d.admin == nil {
		return
	}
	if d.admin.srv == nil {
		d.admin.unix.Close()
		if d.admin.tcp != nil {
			d.admin.tcp.Close()
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := d.admin.srv.Close(ctx); err != nil {
		d.log.Warn("closing the admin API", zap.Error(err))
	}
}
