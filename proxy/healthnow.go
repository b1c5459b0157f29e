package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// An instance that comes back after a restart may still be marked down
// by its pool's active health check, which ran while it was stopped:
// Caddy's checker looks again only at its next tick (health.interval, 5 s
// by default), and until then a rolling restart cannot take the next
// instance out (TryDrain: DrainLast). CheckHealth runs the pool's check
// of that upstream right away, as Caddy's checker would; if it passes,
// the upstream counts as available (to the selection policy, TryDrain and
// Status) until Caddy's checker has had time to look at it again itself
// (one interval and one timeout): Caddy's own mark is not settable from
// outside, and from then on it is Caddy's word again.

// checkedMarks returns the upstreams whose immediate check passed, with
// the time (Unix nanoseconds) until which that counts.
func (d *drainSet) checkedMarks() map[string]int64 { return *d.checked.Load() }

// setChecked records that dial passed its check, until until (none if
// dial is ""); expired marks are dropped, so that once every mark has
// expired the selection policy is back on its fast path. The caller
// holds d.mu.
func (d *drainSet) setChecked(dial string, until time.Time) {
	now := time.Now().UnixNano()
	old := d.checkedMarks()
	next := make(map[string]int64, len(old)+1)
	for k, v := range old {
		if v > now {
			next[k] = v
		}
	}
	if u := until.UnixNano(); dial != "" && u > next[dial] {
		next[dial] = u
	}
	d.checked.Store(&next)
}

// available reports whether u may be sent requests: Caddy says so, or its
// check passed (checked, until a time after now) and it is neither full
// nor failing its passive health check (maxFails failed requests; 0: no
// passive check).
func available(u *reverseproxy.Upstream, maxFails int, checked map[string]int64, now int64) bool {
	if u.Available() {
		return true
	}
	until, ok := checked[u.Dial]
	return ok && now < until && !u.Full() && (maxFails <= 0 || u.Fails() < maxFails)
}

// leastConn is Caddy's least_conn selection over the upstreams of pool
// that ok accepts: the one with the fewest requests in flight, ties at
// random.
func leastConn(pool reverseproxy.UpstreamPool, ok func(*reverseproxy.Upstream) bool) *reverseproxy.Upstream {
	var best *reverseproxy.Upstream
	least, count := -1, 0
	for _, u := range pool {
		if !ok(u) {
			continue
		}
		n := u.NumRequests()
		if least == -1 || n < least {
			least, count = n, 0
		}
		if n == least {
			count++
			if count == 1 || rand.IntN(count) == 0 {
				best = u
			}
		}
	}
	return best
}

// passiveMaxFails is the number of failed requests that take an upstream
// of h out (passive health checks); 0 without them.
func passiveMaxFails(h *reverseproxy.Handler) int {
	if h.HealthChecks == nil || h.HealthChecks.Passive == nil || h.HealthChecks.Passive.FailDuration <= 0 {
		return 0
	}
	return h.HealthChecks.Passive.MaxFails
}

// CheckHealth runs, right away, the active health check of each pool
// upstream (written as in the config) is in, as Caddy's checker would at
// its next tick. If every one passes, the upstream counts as healthy
// from now until Caddy's checker has looked at it again. It returns
// false, nil when no pool of the running config checks upstream (a
// site's single upstream has no active check), and an error saying why
// when a check fails. ctx bounds the wait (each check also has the
// pool's health.timeout).
func (p *Proxy) CheckHealth(ctx context.Context, upstream string) (bool, error) {
	dial := dialAddress(upstream)
	var checks []*reverseproxy.Handler
	for _, ph := range activeProxyHandlers() {
		if ph.retiring || ph.HealthChecks == nil || ph.HealthChecks.Active == nil || !containsDial(ph.Upstreams, dial) {
			continue
		}
		checks = append(checks, ph.Handler)
	}
	if len(checks) == 0 {
		return false, nil
	}
	var valid time.Duration
	for _, h := range checks {
		if err := activeCheck(ctx, h.HealthChecks.Active, dial, p.unixDialer()); err != nil {
			return false, fmt.Errorf("health check of %s: %w", upstream, err)
		}
		a := h.HealthChecks.Active
		valid = max(valid, time.Duration(a.Interval)+checkTimeout(a))
	}
	d := p.drains
	d.mu.Lock()
	d.setChecked(dial, time.Now().Add(valid))
	d.mu.Unlock()
	time.AfterFunc(valid+time.Millisecond, func() {
		d.mu.Lock()
		d.setChecked("", time.Time{})
		d.mu.Unlock()
	})
	return true, nil
}

// checkTimeout is the active check's timeout, Caddy's default if unset.
func checkTimeout(a *reverseproxy.ActiveHealthChecks) time.Duration {
	if a.Timeout > 0 {
		return time.Duration(a.Timeout)
	}
	return 5 * time.Second
}

// activeCheck sends the request Caddy's active health checker sends to
// dial for a (the settings hostctl generates: uri, headers with Host,
// expect_status, timeout; no redirect followed) and checks the status.
// A unix socket is dialed by ud (unixdial.go).
func activeCheck(ctx context.Context, a *reverseproxy.ActiveHealthChecks, dial string, ud *unixDialer) error {
	addr, err := caddy.ParseNetworkAddress(dial)
	if err != nil {
		return err
	}
	if a.Port != 0 || a.Upstream != "" || a.ExpectBody != "" || a.Body != "" {
		return errors.New("health check settings hostctl does not generate")
	}
	network, address := addr.Network, addr.JoinHostPort(0)
	host := address
	if addr.IsUnixNetwork() {
		host = "localhost"
	}
	u, err := url.Parse(a.URI)
	if err != nil {
		return err
	}
	u.Scheme, u.Host = "http", host
	method := a.Method
	if method == "" {
		method = http.MethodGet
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout(a))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return err
	}
	for k, vv := range a.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = a.Headers.Get(k)
			continue
		}
		for _, v := range vv {
			req.Header.Add(k, v)
		}
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			if network == "unix" {
				return ud.dial(ctx, address)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, address)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if a.ExpectStatus == 0 {
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("status %d, want 2xx", resp.StatusCode)
		}
	} else if !caddyhttp.StatusCodeMatches(resp.StatusCode, a.ExpectStatus) {
		return fmt.Errorf("status %d, want %d", resp.StatusCode, a.ExpectStatus)
	}
	return nil
}

// unixDialer dials unix upstreams for p's own checks, as the transport does.
func (p *Proxy) unixDialer() *unixDialer {
	return &unixDialer{peers: p.peers, logger: p.opts.Logger}
}
