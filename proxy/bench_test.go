package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// BenchmarkProxy measures the real handler chain: the config hostctl
// generates, served by an in-process Proxy, in front of a tiny upstream on
// a unix socket that closes every connection (as gunicorn's sync workers
// do). 64 clients keep their connections to the proxy alive, like wrk -c64.
//
//	go test -run '^$' -bench Proxy -benchmem ./proxy/
//
// "caddy_reverse_proxy" is the site proxied by Caddy's reverse_proxy, as
// before hostctl_upstream, for comparison.
//
// Client, proxy and upstream share the process, so ns/op, cpu-us/op and
// allocs/op include the client and the upstream: "direct" is that part
// alone, and a proxy case minus "direct" is what the proxy costs. cpu-us/op
// is user+system CPU of the whole process per request.
func BenchmarkProxy(b *testing.B) {
	up := benchUpstream(b, false)
	b.Run("direct", func(b *testing.B) { benchGet(b, up.transport(), "http://up/") })

	for _, c := range []struct {
		name      string
		accessLog bool
		keepAlive bool                     // the upstream keeps connections alive, upstream_keepalive = true
		caddyOnly bool                     // Caddy's reverse_proxy instead of hostctl_upstream (caddyReverseProxyOnly)
		edit      func(cfg map[string]any) // changes the generated config before it is loaded (experiments)
	}{
		{"proxy", false, false, false, nil},
		{"proxy_accesslog", true, false, false, nil},
		{"proxy_keepalive", false, true, false, nil},
		{"caddy_reverse_proxy", false, false, true, nil},
		{"caddy_reverse_proxy_accesslog", true, false, true, nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			up := up
			if c.keepAlive {
				up = benchUpstream(b, true)
			}
			addr := freeAddrB(b)
			opts := Options{Logger: zap.New(zapcore.NewNopCore()), StateDir: b.TempDir()}
			if c.accessLog {
				opts.AccessLog = io.Discard
			}
			p := New(opts)
			caddyReverseProxyOnly = c.caddyOnly
			defer func() { caddyReverseProxyOnly = false }()
			on := c.accessLog
			cfg := Config{Listen: addr, Upstream: "unix:" + up.sock, AccessLog: &on, UpstreamKeepAlive: c.keepAlive}
			if err := p.Apply(cfg); err != nil {
				b.Fatal(err)
			}
			defer p.Stop()
			if c.edit != nil {
				var cfg map[string]any
				if err := json.Unmarshal(p.lastJSON, &cfg); err != nil {
					b.Fatal(err)
				}
				c.edit(cfg)
				js, _ := json.Marshal(cfg)
				if err := caddy.Load(js, false); err != nil {
					b.Fatal(err)
				}
			}
			conns0 := up.conns.Load()
			benchGet(b, &http.Transport{MaxIdleConnsPerHost: 64}, "http://"+addr+"/")
			b.ReportMetric(float64(up.conns.Load()-conns0)/float64(b.N), "upconns/op")
		})
	}
}

// benchUpstreamServer is the tiny upstream of BenchmarkProxy on a unix
// socket; conns counts the connections it accepted.
type benchUpstreamServer struct {
	sock  string
	conns atomic.Int64
}

// benchUpstream starts a tiny upstream that answers "Hello, world!" and,
// unless keepAlive, closes every connection after one response (as
// gunicorn's sync workers do).
func benchUpstream(b *testing.B, keepAlive bool) *benchUpstreamServer {
	up := &benchUpstreamServer{sock: filepath.Join(b.TempDir(), "up.sock")}
	l := listenElsewhere(b, up.sock) // a program's socket, not hostctl's own (refused)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "Hello, world!")
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				up.conns.Add(1)
			}
		},
	}
	srv.SetKeepAlivesEnabled(keepAlive)
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return up
}

// transport returns a client transport that dials the upstream directly.
func (up *benchUpstreamServer) transport() *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", up.sock)
		},
	}
}

// benchGet GETs url from 64 goroutines and reports CPU per request.
func benchGet(b *testing.B, tr *http.Transport, url string) {
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		return nil
	}
	if err := get(); err != nil { // warm up, and fail early
		b.Fatal(err)
	}
	b.SetParallelism(32) // x GOMAXPROCS goroutines
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := get(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-us/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func freeAddrB(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// BenchmarkStatic measures a static file served by the proxy (a small CSS
// file, no compression asked), as BenchmarkProxy measures proxying: the
// open goes through the file user's threads (fileuser.go) when the
// process runs as root.
//
//	go test -run '^$' -bench Static -benchmem ./proxy/
func BenchmarkStatic(b *testing.B) {
	dir := b.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		os.Chmod(d, 0o755)
	}
	os.WriteFile(filepath.Join(dir, "site.css"), []byte(strings.Repeat("body { color: #333; }\n", 40)), 0o644)
	up := benchUpstream(b, false)
	addr := freeAddrB(b)
	p := New(Options{Logger: zap.New(zapcore.NewNopCore()), StateDir: b.TempDir()})
	off := false
	if err := p.Apply(Config{Listen: addr, Upstream: "unix:" + up.sock, AccessLog: &off,
		Static: []Static{{Path: "/static/", Dir: dir}}}); err != nil {
		b.Fatal(err)
	}
	defer p.Stop()
	benchGet(b, &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}, "http://"+addr+"/static/site.css")
}
