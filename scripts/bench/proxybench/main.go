// Command proxybench runs what scripts/bench/proxy.sh measures: hostctl's
// proxy (package proxy, embedded Caddy) in front of an upstream, or the
// tiny Go upstream itself. It runs until SIGINT or SIGTERM.
//
//	proxybench -mode upstream -listen 127.0.0.1:18001   # GET /conns: connections accepted so far
//	proxybench -mode proxy -listen 127.0.0.1:18011 -upstream 127.0.0.1:18001 -keepalive
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/caddyserver/caddy/v2"
	"github.com/hostctl/hostctl/proxy"
	"go.uber.org/zap"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "proxybench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("proxybench", flag.ContinueOnError)
	mode := fs.String("mode", "proxy", `"proxy" or "upstream"`)
	listen := fs.String("listen", "127.0.0.1:18011", "listen address (host:port, or unix:/path for -mode upstream)")
	upstream := fs.String("upstream", "127.0.0.1:18001", "upstream for -mode proxy (host:port or unix:/path)")
	keepAlive := fs.Bool("keepalive", false, "keep upstream connections alive (upstream_keepalive)")
	accessLog := fs.Bool("accesslog", false, "write a JSON access log to /dev/null")
	stateDir := fs.String("state", os.TempDir(), "state dir")
	buffer := fs.Int64("request-buffer", -1, "request_buffer in bytes (-1: default)")
	maxBody := fs.Int64("max-body", -1, "max_body_size in bytes (-1: default)")
	retryFor := fs.Duration("retry-for", -1, "retry_for (-1: default)")
	dumpJSON := fs.Bool("json", false, "print the generated Caddy config and exit")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile here until exit (usable for PGO)")
	raw := fs.String("raw", "", "load this Caddy JSON file as is instead of a generated config (for experiments; -json prints a starting point)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	switch *mode {
	case "upstream":
		network, addr := "tcp", *listen
		if path, ok := strings.CutPrefix(addr, "unix:"); ok {
			network, addr = "unix", path
		}
		l, err := net.Listen(network, addr)
		if err != nil {
			return err
		}
		// GET /conns answers how many connections the upstream has
		// accepted, to tell whether a proxy reuses them.
		var conns atomic.Int64
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				if r.URL.Path == "/conns" {
					fmt.Fprintln(w, conns.Load())
					return
				}
				io.WriteString(w, "Hello, world!")
			}),
			ConnState: func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			},
		}
		go func() { <-ctx.Done(); srv.Close() }()
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	case "proxy":
		if *raw != "" {
			js, err := os.ReadFile(*raw)
			if err != nil {
				return err
			}
			if err := caddy.Load(js, false); err != nil {
				return err
			}
			<-ctx.Done()
			return caddy.Stop()
		}
		opts := proxy.Options{Logger: zap.NewNop(), StateDir: *stateDir}
		if *accessLog {
			opts.AccessLog = io.Discard
		}
		p := proxy.New(opts)
		on := *accessLog
		cfg := proxy.Config{Listen: *listen, Upstream: *upstream, UpstreamKeepAlive: *keepAlive, AccessLog: &on}
		if *buffer >= 0 {
			cfg.RequestBuffer = buffer
		}
		if *maxBody >= 0 {
			cfg.MaxBodySize = maxBody
		}
		if *retryFor >= 0 {
			cfg.RetryFor = retryFor
		}
		if *dumpJSON {
			js, err := cfg.CaddyJSON()
			if err != nil {
				return err
			}
			fmt.Println(string(js))
			return nil
		}
		if err := p.Apply(cfg); err != nil {
			return err
		}
		<-ctx.Done()
		return p.Stop()
	default:
		return fmt.Errorf("unknown -mode %q", *mode)
	}
}
