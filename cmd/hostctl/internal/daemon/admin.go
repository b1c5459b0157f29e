package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/config"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/control"
	"github.com/hostctl/hostctl/supervisor"
)

// Version is reported by the admin API's /healthz; the CLI sets it.
var Version = "dev"

// admin is the admin API and its listeners.
type admin struct {
	srv     *control.Server
	unix    net.Listener
	tcp     net.Listener // nil without [admin] listen
	tok     string
	readTok string
	tls     *tls.Config // nil: the TCP listener is plain HTTP
	names   []string    // the TCP listener's host names (control.Options.Names)
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
		if err := d.admin.prepareTCP(a, d.log.Named("admin")); err != nil {
			l.Close()
			return err
		}
		if d.admin.tcp, err = net.Listen("tcp", a.Listen); err != nil {
			l.Close()
			return fmt.Errorf("admin.listen: %w", err)
		}
	}
	return nil
}

// prepareTCP takes the tokens (read once, when the config was loaded) and
// makes the TLS config of [admin] listen.
func (ad *admin) prepareTCP(a config.Admin, log *zap.Logger) error {
	ad.tok, ad.readTok = a.Token, a.ReadToken
	host, _, _ := net.SplitHostPort(a.Listen)
	ad.names = a.Names.List()
	if net.ParseIP(host) == nil && host != "" {
		ad.names = append(ad.names, host)
	}
	if !a.TLSOn() {
		return nil
	}
	var info control.TLSInfo
	var err error
	ad.tls, info, err = control.AdminTLS{
		CertFile: a.CertFile,
		KeyFile:  a.KeyFile,
		Internal: a.TLS == "internal",
		Dir:      filepath.Join(a.StateDir, adminTLSDir),
		Names:    append(listenNames(host), a.Names.List()...),
		Logger:   log,
	}.Config()
	if err != nil {
		return err
	}
	ad.names = append(ad.names, info.Names...)
	if info.CAFile != "" {
		log.Info("admin API TLS: certificate signed by hostctl's CA; give clients its certificate (--ca-file, [[fleet.host]] ca_file)",
			zap.String("ca_file", info.CAFile), zap.String("ca_sha256", info.CAFingerprint), zap.Strings("names", info.Names))
	}
	return nil
}

// adminTLSDir holds the internal CA of [admin] tls = "internal", in the
// state dir.
const adminTLSDir = "admin-tls"

// listenNames are the names and addresses that the listen host is
// reached by: itself, or for all interfaces (""/0.0.0.0/::) every
// address of this machine.
func listenNames(host string) []string {
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return []string{host}
	}
	var out []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out = append(out, n.IP.String())
		}
	}
	return out
}

// serveAdmin starts serving the API once the supervisor exists.
func (d *Daemon) serveAdmin() {
	if d.admin == nil {
		return
	}
	d.admin.srv = control.New(control.Options{
		Programs: d.sup,
		Reload: func(ctx context.Context) (control.Reloaded, error) {
			res, err := d.Reload(ctx)
			if err != nil {
				d.log.Error("reload failed; still running the previous config", zap.Error(err))
			} else {
				d.log.Info("reloaded", zap.Strings("added", res.Added), zap.Strings("changed", res.Changed), zap.Strings("removed", res.Removed), zap.String("proxy", res.Proxy))
			}
			return res, err
		},
		Proxy:    d.proxyStatus,
		Drain:    d.front,
		Deploy:   d,
		Releases: d,
		Alerts:   d.alerts,
		Checks:   d.checks.Status,
		LogRuleDropped: func() uint64 {
			if d.watch == nil {
				return 0
			}
			return d.watch.LogRuleDropped()
		},
		Token:     d.admin.tok,
		ReadToken: d.admin.readTok,
		Names:     d.admin.names,
		TLS:       d.admin.tls,
		Logger:    d.log.Named("admin"),
		Version:   Version,
		Supervisord: control.Supervisord{
			Plan:           d.planReload,
			ProcessConfigs: d.sup.ProcessConfigs,
			MainLog:        d.mainLog(),
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
