package proxy

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/net/http/httpguts"
)

func init() {
	caddy.RegisterModule(new(UpstreamHandler))
}

// UpstreamHandler proxies a site's requests to its one upstream, a new
// connection per request (http.handlers.hostctl_upstream). It does what
// Caddy's reverse_proxy does with hostctl's settings for one upstream
// without keep-alive, on the request's own goroutine: dial, write the
// buffered request, read the response. Caddy's reverse_proxy goes through
// net/http's Transport, which for a connection that is never reused starts
// a dialing goroutine and a reader and a writer goroutine per request and
// hands the request and response between them over channels.
//
// Requests it does not handle itself go to Proxy, the reverse_proxy
// handler with the same upstream and settings: protocol upgrades
// (WebSocket), CONNECT, requests announcing trailers, "Expect" or
// "Incremental" requests, and request URLs in opaque form.
type UpstreamHandler struct {
	// Proxy is Caddy's reverse_proxy handler config for the same single
	// upstream, without keep-alive and without request_buffers; the
	// handler reads its upstream, dial and response header timeouts,
	// try_duration and try_interval, and trusted_proxies.
	ProxyRaw json.RawMessage `json:"proxy" caddy:"namespace=http.handlers inline_key=handler"`

	// Buffer is how request bodies are buffered before the upstream is
	// dialed, for the requests this handler proxies and those it hands to
	// Proxy (spool.go). Nil: bodies are streamed.
	Buffer *BodyBuffer `json:"buffer,omitempty"`

	// Instance is the key of the Proxy whose drain marks it reads: while
	// the upstream is marked (TryDrain: Held), new requests wait for
	// Undrain, for at most try_duration from their arrival (longer while
	// its program is on its way back: HoldFor), before they dial
	// (upstreamdrain.go).
	Instance string `json:"instance,omitempty"`

	// HoldFor caps how long a request may be held, from its arrival,
	// while the upstream's program restarts (Proxy.HoldUntil); a
	// request is held at least try_duration all the same. 0: no longer
	// than try_duration.
	HoldFor caddy.Duration `json:"hold_for,omitempty"`

	proxy       *reverseproxy.Handler
	drains      *drainSet
	dial        string // the upstream's dial address, as drains marks it
	network     string // "tcp" or "unix"
	address     string // what to dial
	hostHeader  string // Host sent when the request has none (HTTP/1.0)
	dialTimeout time.Duration
	unix        *unixDialer   // dials a unix upstream (the transport's: unixdial.go)
	headerWait  time.Duration // response_header_timeout; 0: none
	tryFor      time.Duration
	tryEvery    time.Duration
	trusted     []netip.Prefix
	logger      *zap.Logger
	ctx         caddy.Context
	inFlight    atomic.Int64 // requests proxied now, for Proxy.Status
	held        atomic.Int64 // requests held now (waitHeld), for Proxy.Status
}

// CaddyModule returns the Caddy module information.
func (*UpstreamHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.hostctl_upstream",
		New: func() caddy.Module { return new(UpstreamHandler) },
	}
}

// Provision loads the reverse_proxy handler and takes its settings.
func (u *UpstreamHandler) Provision(ctx caddy.Context) error {
	u.ctx = ctx
	u.logger = ctx.Logger()
	mod, err := ctx.LoadModule(u, "ProxyRaw")
	if err != nil {
		return fmt.Errorf("loading the reverse_proxy handler: %w", err)
	}
	p, ok := mod.(*reverseproxy.Handler)
	if !ok {
		return fmt.Errorf("proxy: want a reverse_proxy handler, got %T", mod)
	}
	u.proxy = p
	if len(p.Upstreams) != 1 || p.DynamicUpstreams != nil {
		return errors.New("proxy: exactly one static upstream is required")
	}
	u.drains, u.dial = lookupSink(u.Instance).drains, p.Upstreams[0].Dial
	addr, err := caddy.ParseNetworkAddress(p.Upstreams[0].Dial)
	if err != nil {
		return fmt.Errorf("proxy: upstream %q: %w", p.Upstreams[0].Dial, err)
	}
	switch {
	case addr.IsUnixNetwork():
		// net/http's Transport would send the socket's path, which is
		// not a valid Host: reverse_proxy answers such requests 502.
		u.network, u.address, u.hostHeader = "unix", addr.Host, "localhost"
	case addr.Network == "tcp" && addr.PortRangeSize() == 1:
		u.network, u.address = "tcp", addr.JoinHostPort(0)
		u.hostHeader = u.address
		if addr.StartPort == 80 {
			u.hostHeader = addr.Host
		}
	default:
		return fmt.Errorf("proxy: upstream %q: want host:port or unix//path", p.Upstreams[0].Dial)
	}
	ct, ok := p.Transport.(*CheckedTransport)
	if !ok {
		return errors.New("proxy: want the hostctl_http transport")
	}
	u.unix = ct.unix
	tr := &ct.HTTPTransport
	if tr.TLS != nil || tr.KeepAlive == nil || tr.KeepAlive.Enabled == nil || *tr.KeepAlive.Enabled ||
		slices.Contains(tr.Versions, "h2c") || slices.Contains(tr.Versions, "3") {
		return errors.New("proxy: want a plain HTTP/1.1 transport without keep-alive")
	}
	u.dialTimeout = time.Duration(tr.DialTimeout)
	u.headerWait = time.Duration(tr.ResponseHeaderTimeout)
	if lb := p.LoadBalancing; lb != nil {
		if lb.Retries != 0 || len(lb.RetryMatch) > 0 {
			return errors.New("proxy: retries and retry_match are not supported; use try_duration")
		}
		u.tryFor, u.tryEvery = time.Duration(lb.TryDuration), time.Duration(lb.TryInterval)
	}
	if p.Headers != nil || p.Rewrite != nil || len(p.HandleResponse) > 0 || p.ResponseBuffers != 0 ||
		p.HealthChecks != nil || p.FlushInterval != 0 {
		return errors.New("proxy: header operations, rewrites, response handlers, response buffers, health checks and flush_interval are not supported")
	}
	if p.RequestBuffers != 0 {
		// They would hold bodies in RAM, uncounted.
		return errors.New("proxy: request_buffers is not supported; use buffer")
	}
	if u.Buffer != nil {
		if err := u.Buffer.provision(); err != nil {
			return err
		}
	}
	for _, r := range p.TrustedProxies {
		pfx, err := caddyhttp.CIDRExpressionToPrefix(r)
		if err != nil {
			return fmt.Errorf("proxy: trusted_proxies: %w", err)
		}
		u.trusted = append(u.trusted, pfx)
	}
	return nil
}

// Cleanup releases the reverse_proxy handler.
func (u *UpstreamHandler) Cleanup() error {
	if u.proxy != nil {
		return u.proxy.Cleanup()
	}
	return nil
}

// ownsRequest reports whether ServeHTTP proxies r itself rather than
// handing it to Caddy's reverse_proxy.
func ownsRequest(r *http.Request) bool {
	h := r.Header
	return r.Method != http.MethodConnect &&
		r.URL.Opaque == "" &&
		len(h["Upgrade"]) == 0 &&
		len(h["Expect"]) == 0 &&
		len(h["Trailer"]) == 0 &&
		len(r.TransferEncoding) <= 1 &&
		!caddyhttp.IsIncremental(h)
}

// errRoundTrip marks an error after the request may have reached the
// upstream (as opposed to a dial error).
type attemptError struct {
	err    error
	dialed bool // the connection was made: the request may have been seen
}

func (e *attemptError) Error() string { return e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

func (u *UpstreamHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	start := time.Now()
	if !ownsRequest(r) {
		// Held here, before reverse_proxy's own try_duration starts.
		switch u.waitHeld(r, start) {
		case holdGone:
			w.WriteHeader(499)
			return nil
		case holdDown:
			return errHeldDown
		}
		if u.Buffer == nil {
			return u.proxy.ServeHTTP(w, r, next)
		}
		return u.Buffer.serveSpooled(w, r, func() error { return u.proxy.ServeHTTP(w, r, next) })
	}
	body, err := u.readBody(w, r)
	if err != nil {
		return err
	}
	if body != nil {
		defer body.release()
	}
	switch u.waitHeld(r, start) {
	case holdGone:
		w.WriteHeader(499)
		return nil
	case holdDown:
		return errHeldDown
	}
	u.inFlight.Add(1)
	defer func() { u.inFlight.Add(-1) }()
	for {
		res, conn, err := u.attempt(w, r, body)
		if err == nil {
			return u.respond(w, r, res, conn)
		}
		if ctxErr := r.Context().Err(); ctxErr != nil {
			// The client went away: not the upstream's failure. Caddy's
			// reverse_proxy records 499 for the access log.
			w.WriteHeader(499)
			return nil
		}
		if !u.tryAgain(r, body, start, err) {
			return proxyError(err)
		}
		if u.drains.has(u.dial) {
			// Held since: not in flight while it waits.
			u.inFlight.Add(-1)
			end := u.waitHeld(r, start)
			u.inFlight.Add(1)
			switch end {
			case holdGone:
				w.WriteHeader(499)
				return nil
			case holdDown:
				return errHeldDown
			}
		}
	}
}

// holdEnd is how a request's hold ended.
type holdEnd uint8

const (
	holdGo   holdEnd = iota // not held, released, or its bound passed: go on
	holdGone                // the client went away
	holdDown                // released because the program stays down (ReleaseDown)
)

// errHeldDown answers the requests held for an upstream whose program
// stays down (stopped, FATAL): the error page at once, as for an
// upstream that refuses connections once retry_for has passed.
var errHeldDown = caddyhttp.Error(http.StatusBadGateway, errors.New("upstream's program stopped while the request was held"))

// waitHeld waits while the upstream is held (TryDrain: Held, before its
// program stops) until Undrain or ReleaseDown releases it or the
// request's bound has passed; then the request goes on as it would have
// (dial, retries until try_duration, the error), or gets the error page
// at once after ReleaseDown. The bound, counted from start (the
// request's arrival), is try_duration, or longer while the program is on
// its way back: until the mark's HoldUntil, at most HoldFor. A bound
// moved while the request waits is taken when the old one passes. A
// reload does not end the hold (the marks live with the Proxy, and the
// new config's handlers hold too).
func (u *UpstreamHandler) waitHeld(r *http.Request, start time.Time) holdEnd {
	m := u.drains.mark(u.dial)
	if m == nil {
		return holdGo
	}
	counted := false
	for {
		left := time.Until(u.holdBound(m, start))
		if left <= 0 {
			return holdGo
		}
		if !counted {
			counted = true
			u.held.Add(1)
			defer u.held.Add(-1)
		}
		t := time.NewTimer(left)
		select {
		case <-m.released:
			t.Stop()
			if m.down.Load() {
				return holdDown
			}
			return holdGo
		case <-t.C:
			// HoldUntil may have moved the bound since: look again.
		case <-r.Context().Done():
			t.Stop()
			return holdGone
		}
	}
}

// holdBound is until when a request that arrived at start may be held
// for m: try_duration, or the mark's HoldUntil capped by HoldFor if that
// is later.
func (u *UpstreamHandler) holdBound(m *holdMark, start time.Time) time.Time {
	bound := start.Add(u.tryFor)
	if ns := m.until.Load(); ns != 0 {
		until := time.Unix(0, ns)
		if cp := start.Add(time.Duration(u.HoldFor)); until.After(cp) {
			until = cp
		}
		if until.After(bound) {
			bound = until
		}
	}
	return bound
}

// tryAgain waits try_interval and reports true if the failed attempt
// should be repeated: as Caddy's reverse_proxy decides, for try_duration
// after the first, a request that never reached the upstream (the dial
// failed) whatever its method, a GET that may have.
func (u *UpstreamHandler) tryAgain(r *http.Request, body *requestBody, start time.Time, err error) bool {
	if u.tryFor <= 0 || time.Since(start) >= u.tryFor {
		return false
	}
	var ae *attemptError
	if errors.As(err, &ae) && ae.dialed {
		if r.Method != http.MethodGet || (body != nil && body.streamed()) {
			return false // a streamed body cannot be sent again
		}
	}
	if u.tryEvery <= 0 {
		return true
	}
	t := time.NewTimer(u.tryEvery)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-u.ctx.Done():
		return false
	}
}

// proxyError is the handler error for a failed proxying, with the status
// Caddy's reverse_proxy gives it: 504 for a timeout, else 502.
func proxyError(err error) error {
	status := http.StatusBadGateway
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		status = http.StatusGatewayTimeout
	}
	return caddyhttp.Error(status, err)
}

// requestBody is a request's body as it is sent upstream: the part
// buffered before dialing (spool.go), and what follows if the body is
// longer (or all of it, when bodies are streamed).
type requestBody struct {
	sp     *spooledBody // nil: nothing buffered
	length int64        // Content-Length to send; -1: chunked
}

// streamed reports whether part of the body comes from the client as it
// is sent: it cannot be sent again.
func (b *requestBody) streamed() bool { return b.sp == nil || b.sp.rest != nil }

func (b *requestBody) release() {
	if b.sp != nil {
		b.sp.release()
	}
}

// readBody buffers r's body as Buffer says, as Caddy's reverse_proxy
// does with request_buffers before it dials; nil for a request without
// a body. A body over the site's max_body_size fails with 413 (the
// request_body handler before this one limits r.Body), one that finds
// the buffers full with 503.
func (u *UpstreamHandler) readBody(w http.ResponseWriter, r *http.Request) (*requestBody, error) {
	if r.Body == nil || r.Body == http.NoBody || (r.ContentLength == 0 && len(r.TransferEncoding) == 0) {
		return nil, nil
	}
	if u.Buffer == nil {
		return &requestBody{length: r.ContentLength, sp: &spooledBody{memClass: -1, rest: r.Body}}, nil
	}
	sp, err := u.Buffer.spool(w, r)
	if err != nil || sp == nil {
		return nil, err
	}
	b := &requestBody{sp: sp, length: r.ContentLength}
	if sp.complete {
		b.length = sp.size()
	}
	if len(r.TransferEncoding) > 0 {
		// net/http's Transport keeps a chunked request chunked, even
		// when Caddy's reverse_proxy has buffered all of it.
		b.length = -1
	}
	return b, nil
}

var (
	bufReaderPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	bufWriterPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

// upstreamConn is one connection to the upstream, with its buffered
// reader, closed when the request is done.
type upstreamConn struct {
	net.Conn
	br         *bufio.Reader
	stopCancel func() bool
}

func (c *upstreamConn) close() {
	c.stopCancel()
	c.Conn.Close()
	c.br.Reset(nil)
	bufReaderPool.Put(c.br)
}

// attempt dials the upstream, sends r and reads the response's header.
// On success the caller owns conn and must close it after the body.
func (u *UpstreamHandler) attempt(w http.ResponseWriter, r *http.Request, body *requestBody) (*http.Response, *upstreamConn, error) {
	start := time.Now()
	res, conn, err := u.roundTrip(w, r, body)
	if c := u.logger.Check(zapcore.DebugLevel, "upstream roundtrip"); c != nil {
		fields := []zap.Field{
			zap.String("upstream", u.proxy.Upstreams[0].String()),
			zap.Duration("duration", time.Since(start)),
			zap.Object("request", caddyhttp.LoggableHTTPRequest{Request: r}),
		}
		if err != nil {
			fields = append(fields, zap.Error(err))
		} else {
			fields = append(fields, zap.Int("status", res.StatusCode))
		}
		c.Write(fields...)
	}
	return res, conn, err
}

func (u *UpstreamHandler) roundTrip(w http.ResponseWriter, r *http.Request, body *requestBody) (*http.Response, *upstreamConn, error) {
	ctx := r.Context()
	var nc net.Conn
	var err error
	if u.network == "unix" {
		nc, err = u.unix.dial(ctx, u.address)
	} else {
		d := net.Dialer{Timeout: u.dialTimeout}
		nc, err = d.DialContext(ctx, u.network, u.address)
	}
	if err != nil {
		return nil, nil, &attemptError{err: err}
	}
	// A client that goes away cancels the request's context: unblock
	// this goroutine's reads and writes on the upstream connection.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	br := bufReaderPool.Get().(*bufio.Reader)
	br.Reset(nc)
	conn := &upstreamConn{Conn: nc, br: br, stopCancel: stop}
	addedGzip, err := u.writeRequest(nc, r, body)
	if err != nil {
		conn.close()
		return nil, nil, &attemptError{err: err, dialed: true}
	}
	if u.headerWait > 0 {
		nc.SetReadDeadline(time.Now().Add(u.headerWait))
	}
	res, err := readFinalResponse(br, r, w)
	if err != nil {
		conn.close()
		return nil, nil, &attemptError{err: err, dialed: true}
	}
	if u.headerWait > 0 {
		nc.SetReadDeadline(time.Time{})
	}
	if addedGzip && res.Body != http.NoBody && strings.EqualFold(res.Header.Get("Content-Encoding"), "gzip") {
		// net/http's Transport asked for gzip on the client's behalf and
		// undoes it, and so Caddy's reverse_proxy sends the client what
		// the upstream would send without compression.
		res.Body = &gunzipBody{src: res.Body}
		res.Header.Del("Content-Encoding")
		res.Header.Del("Content-Length")
		res.ContentLength = -1
		res.Uncompressed = true
	}
	return res, conn, nil
}

// readFinalResponse reads the upstream's response; 1xx responses before
// it are passed to the client, as Caddy's reverse_proxy does.
func readFinalResponse(br *bufio.Reader, r *http.Request, w http.ResponseWriter) (*http.Response, error) {
	for {
		res, err := http.ReadResponse(br, r)
		if err != nil {
			return nil, err
		}
		if res.StatusCode < 100 || res.StatusCode > 199 {
			return res, nil
		}
		if res.StatusCode == http.StatusSwitchingProtocols {
			return nil, errors.New("upstream switched protocols on a request that asked for no upgrade")
		}
		forward1xx(w, res)
	}
}

// hopHeaders are removed in both directions (Caddy's list).
var hopHeaders = []string{
	"Alt-Svc", "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func isHopHeader(k string) bool {
	for _, h := range hopHeaders {
		if k == h {
			return true
		}
	}
	return false
}

// writeRequest sends r's request line, headers and body to the upstream as
// Caddy's reverse_proxy and net/http's Transport would: hop-by-hop headers
// (and those the Connection header names) removed, X-Forwarded-For,
// -Proto and -Host set, Via added, "Connection: close", and
// "Accept-Encoding: gzip" where the Transport would add it (addedGzip).
func (u *UpstreamHandler) writeRequest(nc net.Conn, r *http.Request, body *requestBody) (addedGzip bool, err error) {
	bw := bufWriterPool.Get().(*bufio.Writer)
	bw.Reset(nc)
	defer func() {
		bw.Reset(nil)
		bufWriterPool.Put(bw)
	}()

	host := r.Host
	if host == "" {
		host = u.hostHeader
	}
	host, err = httpguts.PunycodeHostPort(host)
	if err != nil {
		return false, err
	}
	if !httpguts.ValidHostHeader(host) {
		return false, errors.New("invalid Host header")
	}
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(r.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")

	h := r.Header
	// Headers named in Connection are hop-by-hop too.
	var connListed []string
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				connListed = append(connListed, http.CanonicalHeaderKey(f))
			}
		}
	}
	if ua := h["User-Agent"]; len(ua) > 0 && ua[0] != "" && !containsKey(connListed, "User-Agent") {
		if err := writeHeaderLine(bw, "User-Agent", ua[0]); err != nil {
			return false, err
		}
	}
	if body != nil && body.length >= 0 {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(body.length, 10))
		bw.WriteString("\r\n")
	} else if body != nil {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	} else if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		bw.WriteString("Content-Length: 0\r\n")
	}
	for k, vv := range h {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer",
			"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Via":
			continue
		case "Te":
			if httpguts.HeaderValuesContainsToken(vv, "trailers") && !containsKey(connListed, "Te") {
				bw.WriteString("Te: trailers\r\n")
			}
			continue
		}
		if isHopHeader(k) || containsKey(connListed, k) {
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return false, fmt.Errorf("invalid header field name %q", k)
		}
		for _, v := range vv {
			if err := writeHeaderLine(bw, k, v); err != nil {
				return false, err
			}
		}
	}
	if err := u.writeForwarded(bw, r, connListed); err != nil {
		return false, err
	}
	if !containsKey(connListed, "Via") {
		for _, v := range h["Via"] {
			if err := writeHeaderLine(bw, "Via", v); err != nil {
				return false, err
			}
		}
	}
	bw.WriteString("Via: ")
	bw.WriteString(strconv.Itoa(r.ProtoMajor))
	bw.WriteByte('.')
	bw.WriteString(strconv.Itoa(r.ProtoMinor))
	bw.WriteString(" Caddy\r\n")
	if r.TLS != nil && !r.TLS.HandshakeComplete {
		bw.WriteString("Early-Data: 1\r\n")
	}
	ae := h["Accept-Encoding"]
	if (len(ae) == 0 || ae[0] == "" || containsKey(connListed, "Accept-Encoding")) &&
		(len(h["Range"]) == 0 || h["Range"][0] == "" || containsKey(connListed, "Range")) && r.Method != http.MethodHead {
		bw.WriteString("Accept-Encoding: gzip\r\n")
		addedGzip = true
	}
	bw.WriteString("Connection: close\r\n\r\n")

	if body != nil {
		var w io.Writer = bw
		if body.length < 0 {
			w = &chunkWriter{w: bw}
		}
		if err := body.sp.writeTo(w); err != nil {
			return addedGzip, err
		}
		if body.sp.rest != nil {
			if _, err := io.Copy(w, body.sp.rest); err != nil {
				return addedGzip, err
			}
		}
		if body.length < 0 {
			bw.WriteString("0\r\n\r\n")
		}
	}
	return addedGzip, bw.Flush()
}

func containsKey(keys []string, k string) bool {
	for _, c := range keys {
		if c == k {
			return true
		}
	}
	return false
}

// writeHeaderLine writes "k: v", refusing a value net/http's Transport
// would refuse.
func writeHeaderLine(bw *bufio.Writer, k, v string) error {
	if !httpguts.ValidHeaderFieldValue(v) {
		return fmt.Errorf("invalid header field value for %q", k)
	}
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(strings.TrimSpace(v))
	bw.WriteString("\r\n")
	return nil
}

// chunkWriter writes each Write as one chunk.
type chunkWriter struct{ w *bufio.Writer }

func (c *chunkWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	fmt.Fprintf(c.w, "%x\r\n", len(p))
	c.w.Write(p)
	_, err := c.w.WriteString("\r\n")
	return len(p), err
}

// writeForwarded writes X-Forwarded-For, -Proto and -Host as Caddy's
// reverse_proxy sets them: the client's values kept only from a trusted
// proxy.
func (u *UpstreamHandler) writeForwarded(bw *bufio.Writer, r *http.Request, connListed []string) error {
	h := r.Header
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	var clientIP string
	if r.RemoteAddr == "@" {
		if !trusted {
			return nil
		}
	} else {
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return nil
		}
		ip, _, _ = strings.Cut(ip, "%")
		clientIP = ip
		if a, err := netip.ParseAddr(ip); err == nil {
			for _, p := range u.trusted {
				if p.Contains(a) {
					trusted = true
					break
				}
			}
		}
	}
	// A header named in Connection was removed before Caddy looks at it.
	values := func(k string) ([]string, bool) {
		if containsKey(connListed, k) {
			return nil, false
		}
		v, ok := h[k]
		return v, ok
	}
	if prior, ok := values("X-Forwarded-For"); !(ok && prior == nil) {
		joined := strings.Join(prior, ", ")
		switch {
		case trusted && joined != "" && clientIP != "":
			if err := writeHeaderLine(bw, "X-Forwarded-For", joined+", "+clientIP); err != nil {
				return err
			}
		case trusted && joined != "":
			if err := writeHeaderLine(bw, "X-Forwarded-For", joined); err != nil {
				return err
			}
		case clientIP != "":
			writeHeaderLine(bw, "X-Forwarded-For", clientIP)
		}
	}
	proto := "https"
	if r.TLS == nil {
		proto = "http"
	}
	if prior, ok := values("X-Forwarded-Proto"); !(ok && prior == nil) {
		if trusted && len(prior) > 0 && prior[len(prior)-1] != "" {
			proto = prior[len(prior)-1]
		}
		if err := writeHeaderLine(bw, "X-Forwarded-Proto", proto); err != nil {
			return err
		}
	}
	host := r.Host
	if prior, ok := values("X-Forwarded-Host"); !(ok && prior == nil) {
		if trusted && len(prior) > 0 && prior[len(prior)-1] != "" {
			host = prior[len(prior)-1]
		}
		if err := writeHeaderLine(bw, "X-Forwarded-Host", host); err != nil {
			return err
		}
	}
	return nil
}

// gunzipBody decompresses a response body on first read.
type gunzipBody struct {
	src io.ReadCloser
	zr  *gzip.Reader
	err error
}

func (g *gunzipBody) Read(p []byte) (int, error) {
	if g.zr == nil && g.err == nil {
		g.zr, g.err = gzip.NewReader(g.src)
	}
	if g.err != nil {
		return 0, g.err
	}
	return g.zr.Read(p)
}

func (g *gunzipBody) Close() error { return g.src.Close() }

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

// respond sends the upstream's response to the client, as Caddy's
// reverse_proxy does: hop-by-hop headers removed, Caddy's Server header
// replaced by Via, the body streamed (flushed at once when its length is
// unknown or it is an event stream), trailers passed on.
func (u *UpstreamHandler) respond(w http.ResponseWriter, r *http.Request, res *http.Response, conn *upstreamConn) error {
	defer conn.close()
	defer res.Body.Close()
	removeHopHeaders(res.Header)
	rh := w.Header()
	delete(rh, "Server")
	rh["Via"] = append(rh["Via"], strconv.Itoa(res.ProtoMajor)+"."+strconv.Itoa(res.ProtoMinor)+" Caddy")
	for k, vv := range res.Header {
		rh[k] = append(rh[k], vv...)
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		rh.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)

	flush := res.ContentLength == -1 || caddyhttp.IsIncremental(res.Header)
	if !flush {
		ct := res.Header.Get("Content-Type")
		ct, _, _ = strings.Cut(ct, ";")
		flush = strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
	}
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
		rc.Flush() // the header, even if the body is slow to come
	}
	bufp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bufp)
	buf := *bufp
	for {
		n, rerr := res.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				u.abort(w, fmt.Errorf("writing to the client: %w", werr))
			}
			if flush {
				rc.Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if c := u.logger.Check(zapcore.ErrorLevel, "reading from backend"); c != nil {
				c.Write(zap.Error(rerr))
			}
			u.abort(w, rerr)
		}
	}
	if len(res.Trailer) > 0 {
		http.NewResponseController(w).Flush()
	}
	if len(res.Trailer) == announced {
		for k, vv := range res.Trailer {
			rh[k] = append(rh[k], vv...)
		}
		return nil
	}
	for k, vv := range res.Trailer {
		for _, v := range vv {
			rh.Add(http.TrailerPrefix+k, v)
		}
	}
	return nil
}

// abort ends a response whose header was already sent: the client sees a
// truncated response, as with Caddy's reverse_proxy.
func (u *UpstreamHandler) abort(w http.ResponseWriter, err error) {
	if c := u.logger.Check(zapcore.WarnLevel, "aborting with incomplete response"); c != nil {
		c.Write(zap.Error(err))
	}
	http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler)
}

// removeHopHeaders removes hop-by-hop headers from h, and those its
// Connection header names.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// forward1xx writes an informational response to the client with the
// upstream's headers, then restores the client's header map, as Caddy's
// reverse_proxy does.
func forward1xx(w http.ResponseWriter, res *http.Response) {
	h := w.Header()
	own := h.Clone()
	removeHopHeaders(res.Header)
	for k, vv := range res.Header {
		h[k] = append(h[k], vv...)
	}
	w.WriteHeader(res.StatusCode)
	clear(h)
	maps.Copy(h, own)
}

var (
	_ caddy.Provisioner           = (*UpstreamHandler)(nil)
	_ caddy.CleanerUpper          = (*UpstreamHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*UpstreamHandler)(nil)
)
