package daemon

// The daemon's side of the front and the watcher: what each takes from
// the config, and the views of the daemon's parts they are given.

import (
	"path/filepath"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/config"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/front"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/watch"
	"github.com/hostctl/hostctl/proxy"
	"github.com/hostctl/hostctl/supervisor"
)

// accessLogName is the proxy's access log inside [log] dir, rotated and
// capped like program logs.
const accessLogName = "access.log"

// proxyConfig is what the proxy's owner takes from cfg: its [proxy]
// section with the uids that may listen on each unix upstream (the users
// of the programs that serve it).
func proxyConfig(cfg *config.File) *front.ProxyConfig {
	pc := cfg.Proxy
	if pc != nil {
		c := *pc
		c.UpstreamPeers = front.PeerUIDs(cfg.Processes())
		pc = &c
	}
	return &front.ProxyConfig{
		Proxy:     pc,
		StateDir:  cfg.Admin.StateDir,
		AccessLog: filepath.Join(cfg.Log.Dir, accessLogName),
		Rotation:  cfg.Log.Rotation(),
		Links:     cfg.Links(),
	}
}

// watchConfig is what the alert rules take from the current config.
func (d *Daemon) watchConfig() watch.Config {
	cfg := d.config()
	return watch.Config{Alerts: cfg.Alerts, LogDir: cfg.Log.Dir, Proxy: cfg.Proxy, Links: cfg.Links(), Programs: len(cfg.Programs)}
}

// proxyWatch is the proxy's owner for the watcher, which is made before
// it (the proxy reports its certificates to the watcher).
type proxyWatch struct{ d *Daemon }

func (p proxyWatch) Status() (proxy.Status, string, bool) { return p.d.proxy.Status() }
func (p proxyWatch) Ready() <-chan struct{}               { return p.d.proxy.Ready() }

// healthPath is [proxy] health_path, "" without one.
func healthPath(cfg *config.File) string {
	if cfg.Proxy == nil {
		return ""
	}
	return cfg.Proxy.HealthPath
}

// supervisorStatus is the supervisor for the front, which asks before
// the supervisor exists (a health_path request can come only once the
// proxy runs, after it).
type supervisorStatus struct{ d *Daemon }

func (s supervisorStatus) Status(names ...string) ([]supervisor.Status, error) {
	return s.d.sup.Status(names...)
}

// proxyStatus is the proxy's state for the admin API, with the reason
// when it is not running; false without a proxy.
func (d *Daemon) proxyStatus() (apitype.ProxyStatus, bool) {
	st, info, configured := d.proxy.Status()
	if !configured {
		return apitype.ProxyStatus{}, false
	}
	out := apiProxyStatus(st, info)
	out.Drain = d.front.ProxyDrain()
	return out, true
}

// apiProxyStatus copies st into the API's mirror of it. Nil slices stay
// nil so that the JSON (null or []) is the proxy's own.
func apiProxyStatus(st proxy.Status, info string) apitype.ProxyStatus {
	out := apitype.ProxyStatus{Running: st.Running, Listen: st.Listen, Info: info}
	if st.Upstreams != nil {
		out.Upstreams = make([]apitype.ProxyUpstreamStatus, len(st.Upstreams))
		for i, u := range st.Upstreams {
			out.Upstreams[i] = apitype.ProxyUpstreamStatus(u)
		}
	}
	if st.Certificates != nil {
		out.Certificates = make([]apitype.ProxyCertificateStatus, len(st.Certificates))
		for i, c := range st.Certificates {
			out.Certificates[i] = apitype.ProxyCertificateStatus(c)
		}
	}
	return out
}

// proxyReady reports whether the proxy, if configured, is listening.
func (d *Daemon) proxyReady() bool {
	st, _, configured := d.proxy.Status()
	return !configured || st.Running
}
