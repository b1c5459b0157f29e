package proxy

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
)

// The proxy owns the syntax of an upstream address, so every reader of
// one (the proxy's config and Caddy's dial syntax, the daemon's link from
// a program to the upstream it serves, hostctl import, hostctl check)
// parses it here, once.

// UpstreamAddr is a parsed upstream address: a unix socket (Network
// "unix", Address its absolute path) or TCP (Network "tcp", Address
// "host:port").
type UpstreamAddr struct {
	Network string // "unix" or "tcp"
	Address string // the socket path, or host:port
}

// ParseUpstream parses an upstream as written in the config:
// "unix:/run/app.sock", "unix:///run/app.sock" (the extra slashes of a
// URL-like spelling are dropped, and the path cleaned: it is the same
// socket), or
// "host:port" ("127.0.0.1:8000", "[::1]:8000", "localhost:8000"). A unix
// path must be absolute; a port is a number from 1 to 65535.
func ParseUpstream(s string) (UpstreamAddr, error) {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if !filepath.IsAbs(path) {
			return UpstreamAddr{}, fmt.Errorf("%q: the socket path must be absolute (\"unix:/run/app.sock\")", s)
		}
		// Clean drops the extra slashes of "unix:///p" (and "//", "/./").
		return UpstreamAddr{Network: "unix", Address: filepath.Clean(path)}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return UpstreamAddr{}, fmt.Errorf("%q is not host:port or unix:/path (for example \"127.0.0.1:8000\")", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return UpstreamAddr{}, fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
	}
	return UpstreamAddr{Network: "tcp", Address: s}, nil
}

// String is the address in its one canonical spelling: "unix:/run/app.sock"
// or "host:port". Two spellings of one upstream have the same String.
func (a UpstreamAddr) String() string {
	if a.Network == "unix" {
		return "unix:" + a.Address
	}
	return a.Address
}

// Dial is the address in Caddy's dial syntax: "unix//run/app.sock" or
// "host:port".
func (a UpstreamAddr) Dial() string {
	if a.Network == "unix" {
		return "unix/" + a.Address
	}
	return a.Address
}

// upstreamFromDial is Dial's inverse: Caddy's dial address back in the
// canonical config spelling.
func upstreamFromDial(dial string) string {
	if path, ok := strings.CutPrefix(dial, "unix/"); ok {
		return "unix:" + path
	}
	return dial
}

// Local reports whether the upstream is on this machine: a unix socket,
// or a TCP address on a loopback IP or "localhost". Only a local upstream
// can be served by a program of this hostctl.
func (a UpstreamAddr) Local() bool {
	if a.Network == "unix" {
		return true
	}
	host, _, _ := net.SplitHostPort(a.Address)
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CanonicalUpstream returns s in its canonical spelling (String), or s as
// it is when it does not parse (the config's validation says why).
func CanonicalUpstream(s string) string {
	a, err := ParseUpstream(s)
	if err != nil {
		return s
	}
	return a.String()
}
