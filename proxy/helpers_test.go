package proxy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Tests that start Caddy must not run in parallel: Caddy is global.

// publicDir returns a new temp dir that everyone may traverse and read,
// as a site's static dir is: the proxy opens static files and error pages
// as the file user (www-data), which t.TempDir's 0700 dirs would refuse.
func publicDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// freeAddr returns a 127.0.0.1 address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type harness struct {
	p      *Proxy
	logs   *observer.ObservedLogs
	access *syncBuffer
	state  string
}

// startProxy applies cfg to a new Proxy and stops it when the test ends.
func startProxy(t *testing.T, cfg Config) *harness {
	t.Helper()
	return startProxyHook(t, cfg, zapcore.InfoLevel, nil)
}

// startProxyHook is startProxy with Caddy's logs at level and each entry
// also passed to hook (to wait on what Caddy logs).
func startProxyHook(t *testing.T, cfg Config, level zapcore.Level, hook func(zapcore.Entry)) *harness {
	t.Helper()
	core, logs := observer.New(level)
	var c zapcore.Core = core
	if hook != nil {
		c = zapcore.RegisterHooks(core, func(e zapcore.Entry) error { hook(e); return nil })
	}
	h := &harness{logs: logs, access: &syncBuffer{}, state: t.TempDir()}
	h.p = New(Options{Logger: zap.New(c), StateDir: h.state, AccessLog: h.access})
	if err := h.p.Apply(cfg); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	t.Cleanup(func() {
		if err := h.p.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return h
}

// upstream is a test HTTP server on 127.0.0.1 that can be killed and
// restarted on the same address.
type upstream struct {
	t       *testing.T
	addr    string
	handler http.Handler
	mu      sync.Mutex
	srv     *http.Server
	served  atomic.Int64
}

func newUpstream(t *testing.T, h http.Handler) *upstream {
	t.Helper()
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello from upstream "+r.URL.Path)
		})
	}
	u := &upstream{t: t, handler: h}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = l.Addr().String()
	u.serve(l)
	t.Cleanup(u.kill)
	return u
}

func (u *upstream) serve(l net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.served.Add(1)
		u.handler.ServeHTTP(w, r)
	})}
	u.mu.Lock()
	u.srv = srv
	u.mu.Unlock()
	go srv.Serve(l)
}

// kill closes the listener and every connection at once.
func (u *upstream) kill() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.srv != nil {
		u.srv.Close()
		u.srv = nil
	}
}

// stop closes the listener, lets the requests being answered finish, then
// closes every connection: an answer already begun reaches its client.
func (u *upstream) stop() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		u.srv.Shutdown(ctx)
		u.srv.Close()
		u.srv = nil
	}
}

func (u *upstream) restart() {
	u.t.Helper()
	l, err := net.Listen("tcp", u.addr)
	if err != nil {
		u.t.Fatalf("restarting upstream on %s: %v", u.addr, err)
	}
	u.serve(l)
}

// client returns an HTTP client with a deadline per request and no
// transparent decompression.
func client() *http.Client {
	return &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func get(t *testing.T, c *http.Client, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, string(b)
}

// retryUntil calls f until it returns nil or the deadline passes. It is for
// conditions Caddy gives no in-process signal for (a certificate issued in
// the background, an active health check done); the wait between tries is
// short and the whole wait is bounded.
func retryUntil(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %v: %v", what, d, err)
		case <-tick.C:
		}
	}
}

var errNotYet = errors.New("not yet")

// writeServerCert writes ca.pem, a new CA, and cert.pem and key.pem, a
// certificate for ip signed by it, into dir; it returns ca.pem's path and
// a pool holding it.
func writeServerCert(t *testing.T, dir, ip string) (string, *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hostctl test CA for Pebble"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ip},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP(ip)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(typ string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})) }
	caFile := writeFile(t, dir, "ca.pem", pemOf("CERTIFICATE", caDER))
	writeFile(t, dir, "cert.pem", pemOf("CERTIFICATE", der))
	writeFile(t, dir, "key.pem", pemOf("EC PRIVATE KEY", keyDER))
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return caFile, pool
}
