package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeSelfSigned writes a self-signed certificate for name with the given
// serial number to dir/certN.pem and dir/keyN.pem and returns their paths.
func writeSelfSigned(t *testing.T, dir, name string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour),
		DNSNames: []string{name}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, dir, fmt.Sprintf("cert%d.pem", serial), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, dir, fmt.Sprintf("key%d.pem", serial), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	return certFile, keyFile
}

// servedSerial does a TLS handshake with addr for name and returns the
// serial number of the certificate it got.
func servedSerial(addr, name string) (int64, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

// TestCertFiles serves a site's certificate from files, as certbot leaves
// them: live/ symlinks into archive/. Renewing (new archive files, the
// symlinks re-pointed) makes the proxy serve the new certificate without
// a reload from outside; a broken renewal keeps the old one serving.
func TestCertFiles(t *testing.T) {
	old := certCheckInterval
	certCheckInterval = 50 * time.Millisecond
	t.Cleanup(func() { certCheckInterval = old })

	dir := t.TempDir()
	archive, live := filepath.Join(dir, "archive"), filepath.Join(dir, "live")
	for _, d := range []string{archive, live} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const name = "files.example.com"
	c1, k1 := writeSelfSigned(t, archive, name, 101)
	certLink, keyLink := filepath.Join(live, "fullchain.pem"), filepath.Join(live, "privkey.pem")
	relink := func(target, link string) {
		t.Helper()
		tmp := link + ".new"
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, link); err != nil {
			t.Fatal(err)
		}
	}
	relink(c1, certLink)
	relink(k1, keyLink)

	up := newUpstream(t, nil)
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	cfg := Config{
		Listen: httpAddr, ListenTLS: httpsAddr,
		Hosts: []string{name}, CertFile: certLink, KeyFile: keyLink, Upstream: up.addr,
	}
	if errs := cfg.Validate("proxy"); len(errs) > 0 {
		t.Fatalf("Validate: %v", errs)
	}
	js, err := cfg.CaddyJSON()
	if err != nil {
		t.Fatal(err)
	}
	// No certificate is asked for from any CA for the name.
	var gen struct {
		Apps struct {
			TLS map[string]json.RawMessage `json:"tls"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(js, &gen); err != nil {
		t.Fatal(err)
	}
	if _, ok := gen.Apps.TLS["automation"]; ok {
		t.Errorf("tls app has an automation policy: %s", js)
	}
	if !strings.Contains(string(js), `"skip_certificates":["`+name+`"]`) {
		t.Errorf("the https server does not skip automatic certificates for %s: %s", name, js)
	}
	h := startProxy(t, cfg)

	if got, err := servedSerial(httpsAddr, name); err != nil || got != 101 {
		t.Fatalf("served certificate serial %d (%v), want 101", got, err)
	}
	tc := client()
	tc.Transport = &http.Transport{DialContext: dialTo(httpsAddr), TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	resp, body := get(t, tc, "https://"+name+"/x")
	if resp.StatusCode != 200 || body != "hello from upstream /x" {
		t.Errorf("HTTPS: %d %q", resp.StatusCode, body)
	}
	// HTTP redirects to HTTPS, as for any HTTPS site.
	hc := client()
	hc.Transport = &http.Transport{DialContext: dialTo(httpAddr)}
	if resp, _ := get(t, hc, "http://"+name+"/y"); resp.StatusCode != 308 {
		t.Errorf("HTTP: %d, want 308", resp.StatusCode)
	}
	st := h.p.Status()
	if len(st.Certificates) != 1 || st.Certificates[0].Names[0] != name || !strings.HasPrefix(st.Certificates[0].Issuer, "file ") {
		t.Errorf("Status certificates = %+v", st.Certificates)
	}

	// certbot renew: new files in archive/, the links re-pointed.
	c2, k2 := writeSelfSigned(t, archive, name, 102)
	relink(c2, certLink)
	relink(k2, keyLink)
	retryUntil(t, 30*time.Second, "the renewed certificate served", func() error {
		got, err := servedSerial(httpsAddr, name)
		if err != nil {
			return err
		}
		if got != 102 {
			return fmt.Errorf("serial %d: %w", got, errNotYet)
		}
		return nil
	})
	retryUntil(t, 30*time.Second, "the reload logged", func() error {
		if h.logs.FilterMessage("proxy: certificate files changed; reloaded").Len() == 0 {
			return errNotYet
		}
		return nil
	})

	// A renewal caught half way (a key that is not the certificate's) is
	// logged and the certificate before it keeps serving. The renewal
	// above re-pointed its two links one after the other: a check between
	// the two may have logged a broken pair already, so count.
	const broken = "proxy: certificate files changed but do not load; the previous certificate keeps serving"
	before := h.logs.FilterMessage(broken).Len()
	_, k3 := writeSelfSigned(t, archive, name, 103)
	relink(k3, keyLink)
	retryUntil(t, 30*time.Second, "the broken pair logged", func() error {
		if h.logs.FilterMessage(broken).Len() == before {
			return errNotYet
		}
		return nil
	})
	if got, err := servedSerial(httpsAddr, name); err != nil || got != 102 {
		t.Errorf("after a broken renewal: serial %d (%v), want 102", got, err)
	}
	resp, err = tc.Get("https://" + name + "/z")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("after a broken renewal: %d", resp.StatusCode)
	}
}

func TestCertFilesValidate(t *testing.T) {
	dir := t.TempDir()
	c1, k1 := writeSelfSigned(t, dir, "a.example.com", 1)
	_, k2 := writeSelfSigned(t, dir, "a.example.com", 2)
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"key without cert", Config{Hosts: []string{"a.example.com"}, KeyFile: k1, Upstream: "127.0.0.1:8000"}, []string{"proxy.cert_file: cert_file and key_file go together"}},
		{"not a pair", Config{Hosts: []string{"a.example.com"}, CertFile: c1, KeyFile: k2, Upstream: "127.0.0.1:8000"}, []string{"proxy.cert_file: ", "are not a certificate and its key"}},
		{"missing file", Config{Hosts: []string{"a.example.com"}, CertFile: filepath.Join(dir, "nope.pem"), KeyFile: k1, Upstream: "127.0.0.1:8000"}, []string{"proxy.cert_file: cannot read:", "no such file"}},
		{"no hosts", Config{CertFile: c1, KeyFile: k1, Upstream: "127.0.0.1:8000"}, []string{"proxy.hosts: cert_file needs the host names"}},
		{"tls off", Config{Hosts: []string{"a.example.com"}, TLS: TLSOff, CertFile: c1, KeyFile: k1, Upstream: "127.0.0.1:8000"}, []string{`proxy.tls: tls = "off" with cert_file`}},
		{"site", Config{Sites: []Site{{Hosts: []string{"a.example.com"}, CertFile: c1, KeyFile: k2, Upstream: "127.0.0.1:8000"}}}, []string{"proxy.site[0].cert_file: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := errors.Join(tc.cfg.Validate("proxy")...)
			if errs == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs.Error(), w) {
					t.Errorf("error %q does not contain %q", errs, w)
				}
			}
		})
	}
}
