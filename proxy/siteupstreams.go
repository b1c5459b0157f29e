package proxy

import (
	"context"
	"fmt"
	"net"
	"slices"
)

// SiteUpstreams is one site and the upstreams that serve it, for a check
// that every upstream of a site is down (then its visitors get only the
// error page).
type SiteUpstreams struct {
	// Site names the site: its first host name, or "*" for the site that
	// answers every host.
	Site string
	// Key is the site's key path in the config ("proxy" for the top-level
	// site, "proxy.site[1]").
	Key string
	// Upstreams are the site's upstreams as written in the config
	// ("127.0.0.1:8000", "unix:/run/app.sock"); pass each to DialUpstream.
	Upstreams []string
	// UpstreamKeys are the key paths of Upstreams, one each
	// ("proxy.upstream", "proxy.site[1].upstreams[0]"), for an error about
	// one of them.
	UpstreamKeys []string
}

// SiteUpstreams returns every site that has upstreams, in config order,
// with the top-level defaults applied as Apply applies them. A site that
// serves only static files has no upstream to check and is left out.
func (c *Config) SiteUpstreams() []SiteUpstreams {
	var out []SiteUpstreams
	for i, s := range c.sites("proxy") {
		ups := s.upstreams()
		if len(ups) == 0 {
			continue
		}
		name := "*"
		if len(s.Hosts) > 0 {
			name = s.Hosts[0]
		}
		// Where the list is written: the site's own, or the top level's
		// that it inherits.
		at := s.key
		if len(c.Sites) > 0 && c.Sites[i].Upstream == "" && len(c.Sites[i].Upstreams) == 0 {
			at = "proxy"
		}
		keys := make([]string, len(ups))
		for j := range ups {
			keys[j] = at + ".upstream"
			if s.Upstream == "" {
				keys[j] = fmt.Sprintf("%s.upstreams[%d]", at, j)
			}
		}
		out = append(out, SiteUpstreams{Site: name, Key: s.key, Upstreams: slices.Clone(ups), UpstreamKeys: keys})
	}
	return out
}

// DialUpstream connects to the upstream addr, written as in the config
// ("127.0.0.1:8000" over TCP, "unix:/run/app.sock" to a unix socket), and
// closes the connection at once: it tells whether something accepts
// connections there, as the proxy's first step toward it would. It sends
// nothing. The error names addr and says why ("connection refused", "no
// such file or directory"). ctx bounds the attempt; give it a deadline
// (the proxy's dial_timeout is 3s by default), or a TCP connect to an
// address that drops packets waits for the system's timeout.
func DialUpstream(ctx context.Context, addr string) error {
	a, err := ParseUpstream(addr)
	if err != nil {
		return fmt.Errorf("upstream %s: %w", addr, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, a.Network, a.Address)
	if err != nil {
		return fmt.Errorf("upstream %s unreachable: %w", addr, err)
	}
	conn.Close()
	return nil
}
