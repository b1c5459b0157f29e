package fleet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/supervisor/trust"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("0123456789abcdef0123\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	ca := filepath.Join(dir, "ca.crt")
	os.WriteFile(ca, testCAPEM(t), 0o644)
	good := Host{Name: "web1", URL: "http://10.0.0.11:9001", TokenFile: token, Insecure: true}
	for _, tt := range []struct {
		name string
		cfg  Config
		keys []string
	}{
		{"none", DefaultConfig(), nil},
		{"good", Config{Timeout: time.Second, Hosts: []Host{good, {Name: "web2", URL: "https://web2.example.com/", TokenFile: token},
			{Name: "web3", URL: "https://10.0.0.13:9001", TokenFile: token, CAFile: ca}, {Name: "local", URL: "http://127.0.0.1:9001", TokenFile: token},
			{Name: "local6", URL: "http://[::1]:9001", TokenFile: token}, {Name: "localhost", URL: "http://localhost:9001", TokenFile: token}}}, nil},
		{"plain HTTP to another machine", Config{Timeout: time.Second, Hosts: []Host{{Name: "web1", URL: "http://10.0.0.11:9001", TokenFile: token},
			{Name: "web2", URL: "http://web2.example.com:9001", TokenFile: token}}},
			[]string{"fleet.host[0].url", "fleet.host[1].url"}},
		{"bad ca_file", Config{Timeout: time.Second, Hosts: []Host{{Name: "web1", URL: "https://10.0.0.11:9001", TokenFile: token, CAFile: token},
			{Name: "web2", URL: "https://10.0.0.12:9001", TokenFile: token, CAFile: filepath.Join(dir, "missing")},
			{Name: "web3", URL: "http://127.0.0.1:9001", TokenFile: token, CAFile: ca}}},
			[]string{"fleet.host[0].ca_file", "fleet.host[1].ca_file", "fleet.host[2].ca_file"}},
		{"missing", Config{Timeout: time.Second, Hosts: []Host{{}}},
			[]string{"fleet.host[0].name", "fleet.host[0].url", "fleet.host[0].token_file"}},
		{"bad values", Config{Hosts: []Host{good, {Name: "web1", URL: "10.0.0.12:9001", TokenFile: empty}, {Name: "web 3", URL: "http://h:1/v1", TokenFile: filepath.Join(dir, "missing")}}},
			[]string{"fleet.timeout", "fleet.host[1].name", "fleet.host[1].url", "fleet.host[1].token_file", "fleet.host[2].name", "fleet.host[2].url", "fleet.host[2].token_file"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			errs := append(tt.cfg.Provision("fleet", trust.Read), tt.cfg.Validate("fleet")...)
			var keys []string
			for _, err := range errs {
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("%v is not a *FieldError", err)
				}
				keys = append(keys, fe.Key)
			}
			slices.Sort(keys)
			if want := slices.Sorted(slices.Values(tt.keys)); strings.Join(keys, " ") != strings.Join(want, " ") {
				t.Errorf("error keys %q, want %q\n%v", keys, tt.keys, errors.Join(errs...))
			}
		})
	}
}

// TestStatusReasons: each way a host can fail to answer is named, and
// Status returns whatever the hosts do (a silent one ends at the timeout).
func TestStatusReasons(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good-token" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error": "missing or wrong bearer token", "code": "unauthorized"}`))
			return
		}
		w.Write([]byte(`[{"name": "web", "state": "RUNNING", "autostart": true}]`))
	}))
	defer ok.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String()
	closed.Close()

	// The hosts that answer or refuse, with a timeout no busy machine
	// reaches (they do not wait for it); then the silent one alone, with
	// a short one that it always reaches.
	cfg := Config{Timeout: time.Minute, Hosts: []Host{
		{Name: "ok", URL: ok.URL, token: "good-token"},
		{Name: "badtoken", URL: ok.URL, token: "wrong"},
		{Name: "closed", URL: closedURL, token: "x"},
	}}
	got := Status(context.Background(), cfg)
	want := []struct {
		ok     bool
		reason Reason
	}{{true, ""}, {false, BadToken}, {false, Refused}}
	for i, w := range want {
		h := got[i]
		if h.Name != cfg.Hosts[i].Name || h.OK != w.ok || h.Reason != w.reason {
			t.Errorf("%s: ok %v reason %q (%s), want ok %v reason %q", h.Name, h.OK, h.Reason, h.Error, w.ok, w.reason)
		}
	}
	if len(got[0].Programs) != 1 || got[0].Programs[0].Name != "web" {
		t.Errorf("programs of ok: %+v", got[0].Programs)
	}

	// A host that never answers ends at the timeout: Status returns (a
	// bounded wait for it, not a measure of how fast).
	cfg = Config{Timeout: 500 * time.Millisecond, Hosts: []Host{{Name: "silent", URL: "http://" + silent.Addr().String(), token: "x"}}}
	done := make(chan []HostStatus, 1)
	go func() { done <- Status(context.Background(), cfg) }()
	select {
	case got = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("Status still waits for a silent host 30s after its %s timeout", cfg.Timeout)
	}
	if h := got[0]; h.Name != "silent" || h.OK || h.Reason != Timeout {
		t.Errorf("%s: ok %v reason %q (%s), want ok false reason %q", h.Name, h.OK, h.Reason, h.Error, Timeout)
	}
}

// testCAPEM is a self-signed CA certificate, PEM.
func testCAPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
