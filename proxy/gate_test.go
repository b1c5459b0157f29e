package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestGateAndSwitch is a deploy's gate and switch over one switched
// upstream (Config.Switched: a pool with one upstream): a gate request
// goes through the site's real handler chain (a static route answers its
// path; the Host header picks the site) to the pinned new upstream, while
// no visitor's request reaches it, whatever headers it sends (those that
// name a slot, the gate, the new upstream); then the switch swaps the
// upstream without a Caddy reload (a keep-alive connection stays open
// across it) and the next requests go to the new upstream.
func TestGateAndSwitch(t *testing.T) {
	answer := func(body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Host != "hello.test" {
				http.Error(w, "bad host "+r.Host, http.StatusBadRequest)
				return
			}
			io.WriteString(w, body)
		})
	}
	old, next := newUpstream(t, answer("old")), newUpstream(t, answer("new"))
	static := publicDir(t)
	writeFile(t, static, "x.css", "css")
	listen := freeAddr(t)
	cfg := func(up string) Config {
		return Config{Listen: listen, Hosts: []string{"hello.test"}, TLS: TLSOff, Upstream: up, Switched: []string{up},
			Static: []Static{{Path: "/static/", Dir: static}}}
	}
	h := startProxy(t, cfg(old.addr))
	c := client()
	visit := func(hdr ...string) string {
		t.Helper()
		req, err := http.NewRequest("GET", "http://"+listen+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "hello.test"
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET /: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := visit(); got != "old" {
		t.Fatalf("before the gate: %q", got)
	}

	g := h.p.Gate(map[string][]string{"proxy": {next.addr}})
	defer g.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := g.Get(ctx, "proxy", "hello.test", "/")
	if err != nil || res.Status != 200 || string(res.Body) != "new" || !res.Pinned {
		t.Fatalf("gate GET /: %+v %q, %v", res, res.Body, err)
	}
	res, err = g.Get(ctx, "proxy", "hello.test", "/static/x.css")
	if err != nil || string(res.Body) != "css" || res.Pinned {
		t.Errorf("gate GET /static/x.css: %+v %q, %v (a static route answers it, not the new upstream)", res, res.Body, err)
	}
	for _, hdr := range [][]string{
		{"User-Agent", "hostctl-deploy-gate"},
		{"X-Hostctl-Slot", "b"},
		{"X-Hostctl-Gate", "1"},
		{"X-Forwarded-Host", next.addr},
	} {
		if got := visit(hdr...); got != "old" {
			t.Errorf("a visitor sending %s: %s reached %q while the gate is open", hdr[0], hdr[1], got)
		}
	}
	if n := next.served.Load(); n != 1 {
		t.Errorf("the new upstream served %d requests, want the gate's 1", n)
	}

	rc := dialRaw(t, listen)
	if _, err := rc.get("/static/x.css"); err != nil {
		t.Fatal(err)
	}
	swapped, err := h.p.SwapUpstreams(cfg(next.addr))
	if err != nil || !swapped {
		t.Fatalf("SwapUpstreams to the new upstream: %v, %v (want a swap, not a Caddy reload)", swapped, err)
	}
	if _, err := rc.get("/static/x.css"); err != nil {
		t.Errorf("a keep-alive connection across the switch: %v", err)
	}
	if got := visit(); !strings.Contains(got, "new") {
		t.Errorf("after the switch: %q", got)
	}
}

// TestSwitchKeepsWebSocket: a WebSocket (an upgraded connection) opened
// on the old upstream before the switch stays open on it after, and is
// counted in flight to the old upstream (the deploy's drain waits for it,
// up to drain_timeout); it ends when the client (or the old upstream,
// when the old slot stops) closes it. New requests go to the new
// upstream meanwhile.
func TestSwitchKeepsWebSocket(t *testing.T) {
	echo := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "websocket" {
				io.WriteString(w, name)
				return
			}
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", "websocket")
			w.WriteHeader(http.StatusSwitchingProtocols)
			conn, brw, _ := w.(http.Hijacker).Hijack()
			defer conn.Close()
			for {
				line, err := brw.ReadString('\n')
				if err != nil {
					return
				}
				brw.WriteString(name + " " + line)
				brw.Flush()
			}
		})
	}
	old, next := newUpstream(t, echo("old")), newUpstream(t, echo("new"))
	listen := freeAddr(t)
	cfg := func(up string) Config { return Config{Listen: listen, Upstream: up, Switched: []string{up}} }
	h := startProxy(t, cfg(old.addr))

	conn, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	say := func(msg string) string {
		io.WriteString(conn, msg+"\n")
		line, _ := br.ReadString('\n')
		return strings.TrimSpace(line)
	}
	if got := say("one"); got != "old one" {
		t.Fatalf("before the switch: %q", got)
	}
	if swapped, err := h.p.SwapUpstreams(cfg(next.addr)); err != nil || !swapped {
		t.Fatalf("SwapUpstreams: %v %v", swapped, err)
	}
	if got := say("two"); got != "old two" {
		t.Errorf("the WebSocket after the switch: %q, want it still on the old upstream", got)
	}
	if n := h.p.InFlight(old.addr); n != 1 {
		t.Errorf("in flight to the old upstream: %d, want the WebSocket's 1", n)
	}
	_, body := get(t, client(), "http://"+listen+"/")
	if body != "new" {
		t.Errorf("a new request after the switch: %q", body)
	}
	conn.Close()
	retryUntil(t, 30*time.Second, "the WebSocket to end", func() error {
		if h.p.InFlight(old.addr) == 0 {
			return nil
		}
		return errNotYet
	})
}
