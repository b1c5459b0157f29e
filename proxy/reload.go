package proxy

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// Caddy reloads by starting the new config's servers beside the old ones,
// then shutting the old ones down; on Linux each config binds its own
// SO_REUSEPORT socket, and the kernel spreads new connections over all the
// sockets bound to a port. caddy.Load returns once the goroutines that call
// the old servers' http.Server.Shutdown have been started, not once they
// have called it (caddyhttp.App.stop waits on startedShutdown only). Until
// then an old server still accepts some of the new connections and reads
// requests on its keep-alive connections, and answers them with the old
// config; a connection still queued on its socket when the socket closes
// is reset.
//
// So every config that Apply loads carries the app below, which tells
// Apply when all of that config's servers have begun shutting down. Apply
// waits for that after loading the next config, and Stop after stopping:
// by then Shutdown has marked each old server as shutting down and closed
// its listeners. A new connection reaches only the new servers, and net/http
// answers no request it reads afterwards on an old keep-alive connection:
// it closes the connection, and clients resend an idempotent request on a
// new one. Requests in flight still finish within the grace period.
//
// Not covered: an old HTTP/2 connection is told to go away by a goroutine
// that Shutdown starts, and HTTP/3 servers shut down on their own; a
// request on those may reach the old config for a moment longer.

func init() {
	caddy.RegisterModule(reloadApp{})
}

// shutdownWait bounds how long Apply and Stop wait for the previous
// servers to begin shutting down. Caddy starts that at once; it takes a
// goroutine switch. Past the bound they log an error and return.
const shutdownWait = 10 * time.Second

// serversDown is closed (done) once every HTTP server of one loaded config
// has begun shutting down.
type serversDown struct {
	left atomic.Int64
	done chan struct{}
}

// arm sets how many servers to wait for; it is called once, before they start.
func (w *serversDown) arm(n int) {
	w.left.Store(int64(n))
	if n == 0 {
		close(w.done)
	}
}

func (w *serversDown) serverDown() {
	if w.left.Add(-1) == 0 {
		close(w.done)
	}
}

// watches maps the key that a config carries to its serversDown while
// Apply loads that config (guarded by watchesMu).
var (
	watchesMu sync.Mutex
	watches   = map[string]*serversDown{}
	watchSeq  int
)

func newServersDown() (*serversDown, string) {
	w := &serversDown{done: make(chan struct{})}
	watchesMu.Lock()
	defer watchesMu.Unlock()
	watchSeq++
	key := "w" + strconv.Itoa(watchSeq)
	watches[key] = w
	return w, key
}

func dropServersDown(key string) {
	watchesMu.Lock()
	defer watchesMu.Unlock()
	delete(watches, key)
}

// reloadApp is the Caddy app "hostctl_reload": it reports when the HTTP
// servers of its config begin shutting down.
type reloadApp struct {
	// Watch is the key of the serversDown to report to.
	Watch string `json:"watch"`
}

func (reloadApp) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "hostctl_reload", New: func() caddy.Module { return new(reloadApp) }}
}

// Provision registers a shutdown hook on each server of the http app,
// which runs once http.Server.Shutdown has closed the server's listeners.
// The servers start after every app is provisioned.
func (a *reloadApp) Provision(ctx caddy.Context) error {
	watchesMu.Lock()
	w := watches[a.Watch]
	watchesMu.Unlock()
	if w == nil {
		return fmt.Errorf("hostctl_reload: unknown watch %q", a.Watch)
	}
	app, err := ctx.AppIfConfigured("http")
	if errors.Is(err, caddy.ErrNotConfigured) {
		w.arm(0)
		return nil
	}
	if err != nil {
		return err
	}
	httpApp, ok := app.(*caddyhttp.App)
	if !ok {
		return fmt.Errorf("hostctl_reload: http app is a %T", app)
	}
	w.arm(len(httpApp.Servers))
	for _, srv := range httpApp.Servers {
		srv.RegisterOnShutdown(sync.OnceFunc(w.serverDown))
	}
	return nil
}

func (reloadApp) Start() error { return nil }
func (reloadApp) Stop() error  { return nil }

// withReloadApp adds to cfg the hostctl_reload app, reporting to the
// serversDown registered under key.
func withReloadApp(cfg *caddy.Config, key string) {
	if cfg.AppsRaw == nil {
		cfg.AppsRaw = caddy.ModuleMap{}
	}
	cfg.AppsRaw["hostctl_reload"] = caddyconfig.JSON(reloadApp{Watch: key}, nil)
}

// awaitServersDown waits, up to shutdownWait, until the servers that w
// watches have begun shutting down. A nil w is done.
func (p *Proxy) awaitServersDown(w *serversDown) {
	if w == nil {
		return
	}
	t := time.NewTimer(shutdownWait)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
		p.opts.Logger.Error("proxy: the previous config's servers have not begun shutting down; they may still answer some requests with it",
			zap.Duration("waited", shutdownWait))
	}
}

var (
	_ caddy.App         = reloadApp{}
	_ caddy.Provisioner = (*reloadApp)(nil)
)
