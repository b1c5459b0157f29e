package e2e

// The TCP admin listener over TLS, reached by the real clients: hostctl's
// CLI, Python's xmlrpc.client, Debian's supervisorctl (through a socat TLS
// tunnel: supervisorctl 4.2 has no https), and status --fleet.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// publicCopy copies a file into a directory the app's user can read and
// returns its path.
func publicCopy(t *testing.T, path string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hcpub")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAdminTLSInternalCA: with tls = "internal", hostctl makes its CA in
// the state dir (the key readable by root only), logs the CA's
// fingerprint, and serves HTTPS that the CLI, Python's xmlrpc.client and
// supervisorctl (through socat) reach when given ca.crt, and that they
// refuse without it.
func TestAdminTLSInternalCA(t *testing.T) {
	dir := t.TempDir()
	adminFile := writeSecret(t, dir, "admin.token", adminToken)
	readFile := writeSecret(t, dir, "read.token", readToken)
	port := freePort(t)
	d := startDaemon(t, webProgram, daemonOpts{admin: fmt.Sprintf("listen = \"127.0.0.1:%d\"\ntoken_file = %q\nread_token_file = %q\ntls = \"internal\"\n", port, adminFile, readFile)})
	d.waitLog(t, 10*time.Second, `"program":"web"`, `"to":"RUNNING"`)
	ca := filepath.Join(d.dir, "state", "admin-tls", "ca.crt")

	// The CA: its key root's alone, its fingerprint in the log as openssl
	// prints it.
	if fi, err := os.Stat(filepath.Join(d.dir, "state", "admin-tls", "ca.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("ca.key: %v, %v; want mode 0600", fi, err)
	}
	line := d.waitLog(t, 10*time.Second, "admin API TLS", "ca_sha256")
	out, err := exec.Command("openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", ca).Output()
	if err != nil {
		t.Fatalf("openssl x509 %s: %v", ca, err)
	}
	if fp := strings.TrimSpace(string(out[strings.Index(string(out), "=")+1:])); !strings.Contains(line, `"ca_sha256":"`+fp+`"`) {
		t.Errorf("the log's CA fingerprint is not openssl's %s: %s", fp, line)
	}

	url := fmt.Sprintf("https://127.0.0.1:%d", port)
	t.Run("CLI", func(t *testing.T) {
		for _, u := range []string{url, fmt.Sprintf("https://localhost:%d", port)} {
			if r := runHostctl(t, "status", "--url", u, "--token-file", adminFile, "--ca-file", ca); r.code != 0 || !strings.Contains(r.stdout, "RUNNING") {
				t.Errorf("status --url %s --ca-file: exit %d\n%s%s", u, r.code, r.stdout, r.stderr)
			}
		}
		if r := runHostctl(t, "status", "--url", url, "--token-file", adminFile); r.code != 1 || !strings.Contains(r.stderr, "--ca-file") {
			t.Errorf("status without the CA: exit %d, want 1 pointing at --ca-file:\n%s", r.code, r.stderr)
		}
		if r := runHostctl(t, "status", "--url", "http://127.0.0.1:"+fmt.Sprint(port), "--token-file", adminFile); r.code != 1 {
			t.Errorf("plain HTTP to the TLS listener: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if r := runHostctl(t, "signal", "USR1", "web", "--url", url, "--token-file", adminFile, "--ca-file", ca); r.code != 0 {
			t.Errorf("signal over TLS: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("Python xmlrpc.client", func(t *testing.T) {
		pubCA := publicCopy(t, ca)
		res := rpcAsAppUser(t, fmt.Sprintf("https://monitor:%s@127.0.0.1:%d/RPC2", readToken, port), pubCA,
			[]any{"supervisor.getProcessInfo", "web"}, []any{"supervisor.stopProcess", "web"})
		if res[0][0] != "ok" || !strings.Contains(fmt.Sprint(res[0][1]), "RUNNING") {
			t.Errorf("getProcessInfo over TLS with the read-only token: %v", res[0])
		}
		if res[1][0] != "fault" || !strings.Contains(fmt.Sprint(res[1]), "read-only") {
			t.Errorf("stopProcess over TLS with the read-only token: %v", res[1])
		}
		if res := rpcAsAppUser(t, fmt.Sprintf("https://ops:%s@localhost:%d/RPC2", adminToken, port), pubCA, []any{"supervisor.getState"}); res[0][0] != "ok" {
			t.Errorf("getState over TLS at localhost: %v", res[0])
		}
		// Without the CA, Python refuses the certificate.
		if res := rpcAsAppUser(t, fmt.Sprintf("https://ops:%s@127.0.0.1:%d/RPC2", adminToken, port), "", []any{"supervisor.getState"}); res[0][0] != "error" || !strings.Contains(fmt.Sprint(res[0][1]), "CERTIFICATE_VERIFY_FAILED") {
			t.Errorf("getState over TLS without the CA: %v, want a certificate failure", res[0])
		}
	})

	t.Run("supervisorctl through socat", func(t *testing.T) {
		bin := lookSupervisorctl(t)
		socat, err := exec.LookPath("socat")
		if err != nil {
			t.Fatalf("socat is needed (scripts/test-deps.sh installs it): %v", err)
		}
		local := freePort(t)
		tunnel := exec.Command(socat, fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", local),
			fmt.Sprintf("OPENSSL:127.0.0.1:%d,cafile=%s,verify=1", port, ca))
		var tunnelErr strings.Builder // written by exec until Wait
		tunnel.Stderr = &tunnelErr
		if err := tunnel.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			tunnel.Process.Kill()
			tunnel.Wait()
			if t.Failed() {
				t.Logf("socat: %s", tunnelErr.String())
			}
		})
		waitListening(t, local, 10*time.Second)
		c := sctl{bin: bin, args: []string{"-s", fmt.Sprintf("http://127.0.0.1:%d", local), "-u", "ops", "-p", adminToken}}
		c.expect(t, 0, []string{"status", "web"}, `^web\s+RUNNING\s+pid \d+`)
	})
}

// waitListening waits until something accepts on 127.0.0.1:port.
func waitListening(t *testing.T, port int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on 127.0.0.1:%d after %s: %v", port, timeout, err)
		}
		retry := time.NewTimer(50 * time.Millisecond)
		<-retry.C
	}
}

// testCA is a CA that signs certificates for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf returns a certificate for 127.0.0.1 and localhost and its key, PEM.
func (ca *testCA) leaf(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "admin"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

// replaceFile writes b to path through a rename, as a renewal would.
func replaceFile(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestAdminTLSCertFiles: with cert_file and key_file the listener serves
// that certificate, and after a renewal (both files replaced) the next
// connection gets the new one without a restart or reload; files that do
// not load keep the previous certificate in use.
func TestAdminTLSCertFiles(t *testing.T) {
	dir := t.TempDir()
	adminFile := writeSecret(t, dir, "admin.token", adminToken)
	ca1, ca2 := newTestCA(t, "CA one"), newTestCA(t, "CA two")
	ca1File, ca2File := filepath.Join(dir, "ca1.crt"), filepath.Join(dir, "ca2.crt")
	os.WriteFile(ca1File, ca1.pem, 0o644)
	os.WriteFile(ca2File, ca2.pem, 0o644)
	certFile, keyFile := filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key")
	c, k := ca1.leaf(t)
	replaceFile(t, certFile, c)
	replaceFile(t, keyFile, k)
	port := freePort(t)
	d := startDaemon(t, webProgram, daemonOpts{admin: fmt.Sprintf("listen = \"127.0.0.1:%d\"\ntoken_file = %q\ncert_file = %q\nkey_file = %q\n", port, adminFile, certFile, keyFile)})
	url := fmt.Sprintf("https://127.0.0.1:%d", port)
	status := func(ca string) result {
		t.Helper()
		return runHostctl(t, "status", "--url", url, "--token-file", adminFile, "--ca-file", ca)
	}
	if r := status(ca1File); r.code != 0 {
		t.Fatalf("status with CA one: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A renewal: the key, then the certificate.
	c, k = ca2.leaf(t)
	replaceFile(t, keyFile, k)
	replaceFile(t, certFile, c)
	if r := status(ca2File); r.code != 0 {
		t.Errorf("status with CA two after the renewal: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := status(ca1File); r.code != 1 {
		t.Errorf("status with CA one after the renewal: exit %d, want 1 (the old certificate is gone)", r.code)
	}
	d.waitLog(t, 10*time.Second, "serving the new certificate")

	// A broken renewal keeps the certificate in use.
	replaceFile(t, certFile, []byte("not a certificate"))
	if r := status(ca2File); r.code != 0 {
		t.Errorf("status after a broken renewal: exit %d, want the previous certificate still served\n%s", r.code, r.stderr)
	}
	d.waitLog(t, 10*time.Second, "do not load", "still serving the previous certificate")
}

// TestFleetOverHTTPS: status --fleet reads a webserver whose admin
// listener has tls = "internal", given its CA as ca_file (and its
// read-only token, all status needs); without ca_file the host is one
// line saying that its certificate was refused. drain reaches the same
// listener with --ca-file. A plain-HTTP url to another machine is refused
// unless insecure = true.
func TestFleetOverHTTPS(t *testing.T) {
	dir := t.TempDir()
	adminFile := writeSecret(t, dir, "admin.token", adminToken)
	readFile := writeSecret(t, dir, "read.token", readToken)
	port := freePortOn(t, "127.0.0.2")
	web := startDaemon(t, webProgram, daemonOpts{admin: fmt.Sprintf("listen = \"127.0.0.2:%d\"\ntoken_file = %q\nread_token_file = %q\ntls = \"internal\"\n", port, adminFile, readFile)})
	web.waitLog(t, 10*time.Second, `"program":"web"`, `"to":"RUNNING"`)
	ca := filepath.Join(web.dir, "state", "admin-tls", "ca.crt")
	url := fmt.Sprintf("https://127.0.0.2:%d", port)

	front := filepath.Join(dir, "front.toml")
	os.WriteFile(front, []byte(fmt.Sprintf(`[admin]
socket = %q
state_dir = %q

[fleet]
timeout = "5s"

[[fleet.host]]
name = "web1"
url = %q
token_file = %q
ca_file = %q

[[fleet.host]]
name = "noca"
url = %q
token_file = %q
`, filepath.Join(dir, "front.sock"), filepath.Join(dir, "front-state"), url, readFile, ca, url, readFile)), 0o644)
	r := runHostctl(t, "status", "--fleet", "-c", front)
	if r.code != 1 || !regexp.MustCompile(`(?m)^web1\s+web\s+RUNNING\s+\d+\s`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "noca  NOT ANSWERING (tls): its certificate is not signed by a CA this client trusts") {
		t.Errorf("status --fleet: exit %d, want 1 with web1's web RUNNING and noca refusing the certificate:\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The front's other call to a webserver's admin API.
	if r := runHostctl(t, "drain", "--url", url, "--token-file", adminFile, "--ca-file", ca); r.code != 1 || !strings.Contains(r.stderr, "health_path") {
		t.Errorf("drain over TLS: exit %d, want 1 saying the webserver has no health_path (the call went through):\n%s%s", r.code, r.stdout, r.stderr)
	}

	plain := filepath.Join(dir, "plain.toml")
	os.WriteFile(plain, []byte(fmt.Sprintf("[admin]\nsocket = %q\nstate_dir = %q\n\n[[fleet.host]]\nname = \"far\"\nurl = \"http://192.0.2.10:9001\"\ntoken_file = %q\n",
		filepath.Join(dir, "p.sock"), filepath.Join(dir, "p-state"), readFile)), 0o644)
	if r := runHostctl(t, "check", "-c", plain); r.code != 1 || !strings.Contains(r.stderr, "fleet.host[0].url") || !strings.Contains(r.stderr, "insecure = true") {
		t.Errorf("check with a plain-HTTP fleet url to another machine: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
