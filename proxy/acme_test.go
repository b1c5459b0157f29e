package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The tests here run hostctl's tls = "auto" against a real ACME server:
// Pebble, Let's Encrypt's test CA (Debian package pebble, installed by
// scripts/test-deps.sh), with pebble-challtestsrv as its DNS server
// answering every name with 127.0.0.1. Pebble validates HTTP-01 and
// TLS-ALPN-01 on the ports its config names, which the tests point at
// hostctl's listen and listen_tls; everything stays on 127.0.0.1.

const acmeHost = "app.example.com" // a public-looking name: tls defaults to "auto"

// TestACMEObtainServeRestart obtains a certificate through HTTP-01 on
// listen, serves the site with it, redirects HTTP, reports it in Status,
// and after a restart on the same state dir serves the same certificate
// without a new order.
func TestACMEObtainServeRestart(t *testing.T) {
	up := newUpstream(t, nil)
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	// TLS-ALPN-01 is validated against a port nobody listens on, so the
	// certificate can only come through HTTP-01 on listen.
	ca := startPebble(t, pebbleOptions{HTTPPort: portOf(httpAddr), TLSPort: portOf(freeAddr(t))})
	cfg := Config{
		Listen: httpAddr, ListenTLS: httpsAddr, Hosts: []string{acmeHost}, Upstream: up.addr,
		ACMECA: ca.directory, ACMECARoot: ca.caRoot,
	}
	if errs := cfg.Validate("proxy"); len(errs) > 0 {
		t.Fatalf("Validate: %v", errs)
	}
	state := t.TempDir()

	p, caddyLog, certs := startACMEProxy(t, state, cfg)
	start := time.Now()
	caddyLog.waitFor(t, 3*time.Minute, 1, `"msg":"certificate obtained successfully"`)
	t.Logf("certificate obtained in %v", time.Since(start).Round(time.Millisecond))
	ev := waitCertEvent(t, certs, time.Minute, "obtained", func(e CertEvent) bool { return e.Obtained })
	if ev.Name != acmeHost || ev.Renewal || ev.Error != "" || ev.Time.Before(start) || ev.Time.After(time.Now()) {
		t.Errorf("OnCertEvent got %+v; want %s obtained, not a renewal, no error, at a time since Apply", ev, acmeHost)
	}
	checkChallenge(t, caddyLog, "http-01")
	if caddyLog.count(`"msg":"served key authentication"`) == 0 {
		t.Error("Caddy's HTTP server on listen logged no HTTP-01 answer")
	}

	roots := ca.roots(t)
	leaf := waitServedCert(t, httpsAddr, roots)
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != acmeHost {
		t.Errorf("served certificate names %v, want [%s]", leaf.DNSNames, acmeHost)
	}
	if issued := ca.issued(); len(issued) != 1 || issued[0] != serialHex(leaf) {
		t.Errorf("Pebble issued serials %v; want only the served %s", issued, serialHex(leaf))
	}

	// The site over HTTPS, trusting only Pebble's root.
	_, httpsPort, _ := net.SplitHostPort(httpsAddr)
	tc := client()
	tc.Transport = &http.Transport{DialContext: dialTo(httpsAddr), TLSClientConfig: &tls.Config{RootCAs: roots}}
	if resp, body := get(t, tc, "https://"+acmeHost+":"+httpsPort+"/page"); resp.StatusCode != 200 || body != "hello from upstream /page" {
		t.Errorf("HTTPS /page: %d %q", resp.StatusCode, body)
	}

	// HTTP is redirected to HTTPS on listen_tls's port.
	_, httpPort, _ := net.SplitHostPort(httpAddr)
	hc := client()
	hc.Transport = &http.Transport{DialContext: dialTo(httpAddr)}
	resp, _ := get(t, hc, "http://"+acmeHost+":"+httpPort+"/x?y=1")
	if want := "https://" + acmeHost + ":" + httpsPort + "/x?y=1"; resp.StatusCode != 308 || resp.Header.Get("Location") != want {
		t.Errorf("redirect: %d Location %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}

	checkStatusCert(t, p, leaf)

	// Restart: a new Proxy on the same state dir loads the certificate
	// from storage and orders nothing.
	orders := ca.log.count("Added order")
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	p2, caddyLog2, _ := startACMEProxy(t, state, cfg)
	leaf2 := waitServedCert(t, httpsAddr, roots)
	if !leaf2.Equal(leaf) {
		t.Errorf("after restart the served certificate is serial %s, want the stored %s", serialHex(leaf2), serialHex(leaf))
	}
	checkStatusCert(t, p2, leaf)
	if n := ca.log.count("Added order"); n != orders {
		t.Errorf("Pebble got %d new orders after the restart, want 0", n-orders)
	}
	for _, msg := range []string{"obtaining certificate", "renewing certificate"} {
		if caddyLog2.count(`"msg":"`+msg+`"`) > 0 {
			t.Errorf("after the restart Caddy logged %q", msg)
		}
	}
}

// TestACMERenewal obtains a short-lived certificate through TLS-ALPN-01 on
// listen_tls and sees Caddy renew it, while running, once a third of its
// lifetime is left.
func TestACMERenewal(t *testing.T) {
	const lifetime = 30 * time.Second
	old := renewCheckInterval
	renewCheckInterval = time.Second
	t.Cleanup(func() { renewCheckInterval = old })

	up := newUpstream(t, nil)
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	// HTTP-01 is validated against a port nobody listens on, so every
	// certificate comes through TLS-ALPN-01 on listen_tls.
	ca := startPebble(t, pebbleOptions{HTTPPort: portOf(freeAddr(t)), TLSPort: portOf(httpsAddr), Validity: lifetime})
	cfg := Config{
		Listen: httpAddr, ListenTLS: httpsAddr, Hosts: []string{acmeHost}, Upstream: up.addr,
		ACMECA: ca.directory, ACMECARoot: ca.caRoot,
	}
	p, caddyLog, certs := startACMEProxy(t, t.TempDir(), cfg)
	start := time.Now()
	caddyLog.waitFor(t, 3*time.Minute, 1, `"msg":"certificate obtained successfully"`)
	t.Logf("certificate obtained in %v", time.Since(start).Round(time.Millisecond))
	checkChallenge(t, caddyLog, "tls-alpn-01")
	if caddyLog.count(`"msg":"served key authentication certificate"`) == 0 {
		t.Error("Caddy's HTTPS server on listen_tls logged no TLS-ALPN-01 answer")
	}
	roots := ca.roots(t)
	first := waitServedCert(t, httpsAddr, roots)
	if issued := ca.issued(); len(issued) != 1 || issued[0] != serialHex(first) {
		t.Fatalf("Pebble issued serials %v; want only the served %s", issued, serialHex(first))
	}
	if got := first.NotAfter.Sub(first.NotBefore); got < lifetime-time.Second || got > lifetime+time.Second {
		t.Fatalf("Pebble issued a certificate valid for %v, want %v", got, lifetime)
	}

	caddyLog.waitFor(t, 2*lifetime+time.Minute, 1, `"msg":"certificate renewed successfully"`)
	if ev := waitCertEvent(t, certs, time.Minute, "renewed", func(e CertEvent) bool { return e.Obtained && e.Renewal }); ev.Name != acmeHost || ev.Error != "" {
		t.Errorf("OnCertEvent got %+v for the renewal; want %s, no error", ev, acmeHost)
	}
	renewing := caddyLog.entries(`"msg":"renewing certificate"`)
	if len(renewing) == 0 {
		t.Fatal("no \"renewing certificate\" entry before the renewal")
	}
	secs, ok := renewing[0]["remaining"].(float64)
	if !ok {
		t.Fatalf("\"renewing certificate\" entry without remaining seconds: %v", renewing[0])
	}
	remaining := time.Duration(secs * float64(time.Second))
	t.Logf("renewed with %v of %v left", remaining.Round(time.Millisecond), lifetime)
	if remaining <= 0 || remaining > lifetime/3+time.Second {
		t.Errorf("renewal started with %v left; want it within the last third of the lifetime and before expiry", remaining)
	}
	checkChallenge(t, caddyLog, "tls-alpn-01")
	caddyLog.waitFor(t, time.Minute, 1, `"msg":"replaced certificate in cache"`)
	second := waitServedCert(t, httpsAddr, roots)
	if second.Equal(first) {
		t.Fatalf("still serving serial %s after the renewal", serialHex(first))
	}
	if !second.NotAfter.After(first.NotAfter) {
		t.Errorf("renewed certificate expires %v, not after the first's %v", second.NotAfter, first.NotAfter)
	}
	checkStatusCert(t, p, second)
}

// startACMEProxy applies cfg to a new Proxy on state whose Caddy log (JSON
// lines) can be waited on, and whose certificate events arrive on certs
// (the first 64 not yet received; later ones are dropped); the Proxy stops
// when the test ends. The level is info: at debug, Caddy's event logging
// reads its TLS app while the app starts (a data race in Caddy 2.11.9 that
// -race reports).
func startACMEProxy(t *testing.T, state string, cfg Config) (p *Proxy, caddyLog *watchLog, certs <-chan CertEvent) {
	t.Helper()
	logs := newWatchLog()
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(logs), zapcore.InfoLevel)
	ch := make(chan CertEvent, 64)
	p = New(Options{Logger: zap.New(core), StateDir: state, OnCertEvent: func(e CertEvent) {
		select {
		case ch <- e:
		default:
		}
	}})
	if err := p.Apply(cfg); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if t.Failed() {
			t.Logf("Caddy's log:\n%s", logs)
		}
	})
	return p, logs, ch
}

// waitCertEvent receives certificate events until one satisfies match,
// which it returns, and fails the test if none does within d. Events that
// do not match are logged (an obtain may fail before it succeeds).
func waitCertEvent(t *testing.T, certs <-chan CertEvent, d time.Duration, what string, match func(CertEvent) bool) CertEvent {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e := <-certs:
			if match(e) {
				return e
			}
			t.Logf("certificate event while waiting for %s: %+v", what, e)
		case <-timer.C:
			t.Fatalf("no %s certificate event within %v", what, d)
		}
	}
}

// checkChallenge checks that the last challenge Caddy tried before its last
// success is of type want (the other type cannot pass: Pebble validates it
// against a closed port).
func checkChallenge(t *testing.T, caddyLog *watchLog, want string) {
	t.Helper()
	tried := caddyLog.entries(`"msg":"trying to solve challenge"`)
	if len(tried) == 0 {
		t.Fatal("Caddy logged no \"trying to solve challenge\"")
	}
	var types []string
	for _, e := range tried {
		types = append(types, fmt.Sprint(e["challenge_type"]))
	}
	t.Logf("challenges tried: %v", types)
	if got := types[len(types)-1]; got != want {
		t.Errorf("certificate obtained after trying %v; want the last one to be %s", types, want)
	}
}

// waitServedCert handshakes with addr for acmeHost, verifying the chain
// against roots only, and returns the leaf. Caddy puts a certificate in
// its cache in the background after it is issued or, at start, loaded
// from storage, and logs that only at debug level; so this tries until a
// handshake succeeds (a few, usually one).
func waitServedCert(t *testing.T, addr string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	var leaf *x509.Certificate
	retryUntil(t, time.Minute, "TLS handshake with "+addr+" for "+acmeHost+", trusting only Pebble's root", func() error {
		d := tls.Dialer{
			NetDialer: &net.Dialer{Timeout: 10 * time.Second},
			Config:    &tls.Config{ServerName: acmeHost, RootCAs: roots},
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		cs := conn.(*tls.Conn).ConnectionState()
		if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) != 3 {
			return fmt.Errorf("verified chains %v: want leaf, Pebble's intermediate and root", cs.VerifiedChains)
		}
		leaf = cs.PeerCertificates[0]
		return nil
	})
	return leaf
}

// checkStatusCert checks that Status reports exactly leaf's certificate.
func checkStatusCert(t *testing.T, p *Proxy, leaf *x509.Certificate) {
	t.Helper()
	certs := p.Status().Certificates
	if len(certs) != 1 {
		t.Fatalf("Status certificates = %+v, want one", certs)
	}
	c := certs[0]
	if len(c.Names) != 1 || c.Names[0] != acmeHost || !c.NotAfter.Equal(leaf.NotAfter) || !strings.HasPrefix(c.Issuer, "127.0.0.1-") {
		t.Errorf("Status certificate = %+v, want names [%s], issuer 127.0.0.1-<port>-dir, not after %v", c, acmeHost, leaf.NotAfter)
	}
}

func serialHex(c *x509.Certificate) string { return fmt.Sprintf("%x", c.SerialNumber) }

// pebbleCA is a running Pebble with its DNS server.
type pebbleCA struct {
	directory string // ACME directory URL
	caRoot    string // PEM file of the CA of Pebble's own HTTPS certificate
	mgmt      string // management API base URL
	https     *http.Client
	log       *watchLog // Pebble's output
}

type pebbleOptions struct {
	HTTPPort int           // port Pebble validates HTTP-01 against
	TLSPort  int           // port Pebble validates TLS-ALPN-01 against
	Validity time.Duration // of the certificates it issues; 0: Pebble's default (5 years)
}

// startPebble starts pebble-challtestsrv (DNS only: every name is
// 127.0.0.1) and Pebble on free 127.0.0.1 ports, waits until both answer,
// and kills them when the test ends.
func startPebble(t *testing.T, o pebbleOptions) *pebbleCA {
	t.Helper()
	dir := t.TempDir()

	dnsAddr := freeAddr(t)
	startProc(t, nil, "pebble-challtestsrv",
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-dns01", dnsAddr, "-http01", "", "-https01", "", "-tlsalpn01", "",
		"-management", freeAddr(t))
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dnsAddr)
	}}
	// The DNS server logs nothing once it listens: ask it until it answers.
	retryUntil(t, time.Minute, "pebble-challtestsrv answering DNS on "+dnsAddr, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		addrs, err := resolver.LookupHost(ctx, acmeHost)
		if err != nil {
			return err
		}
		if len(addrs) != 1 || addrs[0] != "127.0.0.1" {
			return fmt.Errorf("%s resolves to %v, want [127.0.0.1]", acmeHost, addrs)
		}
		return nil
	})

	caFile, pool := writeServerCert(t, dir, "127.0.0.1")
	listen, mgmt := freeAddr(t), freeAddr(t)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":                  listen,
		"managementListenAddress":        mgmt,
		"certificate":                    filepath.Join(dir, "cert.pem"),
		"privateKey":                     filepath.Join(dir, "key.pem"),
		"httpPort":                       o.HTTPPort,
		"tlsPort":                        o.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
	}}
	if o.Validity > 0 {
		conf["pebble"].(map[string]any)["certificateValidityPeriod"] = int64(o.Validity / time.Second)
	}
	js, _ := json.Marshal(conf)
	confFile := writeFile(t, dir, "pebble.json", string(js))
	proc := startProc(t, []string{
		"PEBBLE_VA_NOSLEEP=1",      // validate at once
		"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce errors
		"PEBBLE_AUTHZREUSE=0",      // every order is validated
	}, "pebble", "-config", confFile, "-dnsserver", dnsAddr)
	// Pebble generates its CA keys first (seconds on a busy machine), then
	// logs its addresses just before it listens.
	proc.out.waitFor(t, 2*time.Minute, 1, "ACME directory available at")

	ca := &pebbleCA{
		directory: "https://" + listen + "/dir",
		caRoot:    caFile,
		mgmt:      "https://" + mgmt,
		https:     &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
		log:       proc.out,
	}
	retryUntil(t, time.Minute, "Pebble's directory at "+ca.directory, func() error {
		resp, err := ca.https.Get(ca.directory)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var dir struct {
			NewOrder string `json:"newOrder"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil || dir.NewOrder == "" {
			return fmt.Errorf("%s: not an ACME directory (%v)", resp.Status, err)
		}
		return nil
	})
	return ca
}

// issued returns the serials (hex, no leading zeros) of the certificates
// Pebble has issued, from its log.
func (ca *pebbleCA) issued() []string {
	var out []string
	for _, l := range ca.log.lines("Issued certificate serial ") {
		_, rest, _ := strings.Cut(l, "Issued certificate serial ")
		serial, _, _ := strings.Cut(rest, " ")
		out = append(out, strings.TrimLeft(serial, "0"))
	}
	return out
}

func (ca *pebbleCA) get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := ca.https.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return b
}

// roots returns Pebble's root of the certificates it issues (made anew at
// each start), from its management API.
func (ca *pebbleCA) roots(t *testing.T) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.get(t, ca.mgmt+"/roots/0")) {
		t.Fatal("Pebble's /roots/0 holds no PEM certificate")
	}
	return pool
}

// testProc is a process started by a test and killed when it ends.
type testProc struct {
	out *watchLog // stdout and stderr
}

// startProc starts the installed program name with env added to the
// test's environment. A missing program fails the test: the suite's
// dependencies are installed by scripts/test-deps.sh.
func startProc(t *testing.T, env []string, name string, args ...string) *testProc {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s: %v; run scripts/test-deps.sh (as root on Debian it installs the pebble package, Let's Encrypt's test ACME server)", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = t.TempDir()
	out := newWatchLog()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		out.close()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill() // this process only, by its PID
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("%s (pid %d) did not exit within 30s of SIGKILL", name, cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out)
		}
	})
	return &testProc{out: out}
}

// watchLog is an io.Writer that keeps what is written, line by line, and
// lets a test wait, with a deadline, until lines it expects are there.
type watchLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write and on close
	closed  bool          // the writer is done (the process exited)
}

func newWatchLog() *watchLog { return &watchLog{changed: make(chan struct{})} }

func (w *watchLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	close(w.changed)
	w.changed = make(chan struct{})
	return len(p), nil
}

func (w *watchLog) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *watchLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// lines returns the complete lines that contain every one of subs.
func (w *watchLog) lines(subs ...string) []string {
	w.mu.Lock()
	text := w.buf.String()
	w.mu.Unlock()
	var out []string
	for len(text) > 0 {
		line, rest, ok := strings.Cut(text, "\n")
		if !ok {
			break // incomplete
		}
		text = rest
		match := true
		for _, s := range subs {
			if !strings.Contains(line, s) {
				match = false
				break
			}
		}
		if match {
			out = append(out, line)
		}
	}
	return out
}

func (w *watchLog) count(subs ...string) int { return len(w.lines(subs...)) }

// entries returns the JSON log lines that contain every one of subs,
// decoded.
func (w *watchLog) entries(subs ...string) []map[string]any {
	var out []map[string]any
	for _, l := range w.lines(subs...) {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// waitFor waits until at least n lines contain all of subs, and fails the
// test if that takes longer than d or the writer closes first.
func (w *watchLog) waitFor(t *testing.T, d time.Duration, n int, subs ...string) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		w.mu.Lock()
		ch, closed := w.changed, w.closed
		w.mu.Unlock()
		if w.count(subs...) >= n {
			return
		}
		if closed {
			t.Fatalf("waiting for %d lines with %q: the output ended (the process exited)", n, subs)
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("waiting for %d lines with %q: not within %v", n, subs, d)
		}
	}
}
