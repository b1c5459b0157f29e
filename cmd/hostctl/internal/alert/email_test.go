package alert

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostctl/hostctl/supervisor/trust"
)

// captureHandler is an aiosmtpd handler that prints each message as one
// JSON line (envelope, whether TLS was on, the raw message in base64),
// refuses recipients whose address starts with "nobody", and accepts AUTH
// PLAIN only for the user and password given as its arguments.
const captureHandler = `import base64, json, sys
from aiosmtpd.smtp import AuthResult

class Capture:
    def __init__(self, user="", password=""):
        self.user, self.password = user.encode(), password.encode()

    @classmethod
    def from_cli(cls, parser, *args):
        return cls(*args)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def auth_PLAIN(self, server, args):
        if len(args) < 2:
            return AuthResult(success=False)
        _, user, password = base64.b64decode(args[1]).split(b"\0")
        if user == self.user and password == self.password:
            return user
        return False

    async def handle_DATA(self, server, session, envelope):
        print(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos,
            "tls": session.ssl is not None, "user": (session.login_data or b"").decode(),
            "data": base64.b64encode(envelope.original_content).decode()}), flush=True)
        return "250 OK"
`

type smtpCapture struct {
	From string   `json:"from"`
	To   []string `json:"to"`
	TLS  bool     `json:"tls"`
	User string   `json:"user"`
	Data []byte   `json:"data"`
}

type smtpServer struct {
	port int
	msgs chan smtpCapture
}

// startSMTP runs Debian's aiosmtpd on 127.0.0.1 with the capture handler;
// with cert and key it offers STARTTLS.
func startSMTP(t *testing.T, certFile, keyFile string, authArgs ...string) *smtpServer {
	t.Helper()
	const python = "/usr/bin/python3" // Debian's, where python3-aiosmtpd is installed
	if out, err := exec.Command(python, "-m", "aiosmtpd", "--version").CombinedOutput(); err != nil {
		t.Fatalf("%s -m aiosmtpd: %v: %s; run scripts/test-deps.sh (as root on Debian it installs python3-aiosmtpd)", python, err, out)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "capture.py"), []byte(captureHandler), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	args := []string{"-m", "aiosmtpd", "-n", "-l", "127.0.0.1:" + strconv.Itoa(port), "-c", "capture.Capture"}
	if certFile != "" {
		// --no-requiretls: the test of a client that wants no TLS needs
		// the server to take the mail without it.
		args = append(args, "--tlscert", certFile, "--tlskey", keyFile, "--no-requiretls")
	}
	args = append(args, authArgs...)
	// -d logs "Server is listening on ..." to stderr: the sign it is ready.
	cmd := exec.Command(python, append(args, "-d")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONPATH="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{port: port, msgs: make(chan smtpCapture, 10)}
	ready := make(chan struct{})
	outDone, errDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(outDone)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m smtpCapture
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Logf("aiosmtpd: %s", sc.Bytes())
				continue
			}
			s.msgs <- m
		}
	}()
	go func() {
		defer close(errDone)
		sc := bufio.NewScanner(stderr)
		once := sync.OnceFunc(func() { close(ready) })
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Server is listening") {
				once()
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-outDone
		<-errDone
		cmd.Wait()
	})
	select {
	case <-ready:
		return s
	case <-errDone:
		t.Fatalf("aiosmtpd exited before listening on port %d (args %q)", port, args)
	case <-time.After(15 * time.Second):
		t.Fatalf("aiosmtpd did not listen on port %d within 15s", port)
	}
	return nil
}

func (s *smtpServer) next(t *testing.T) smtpCapture {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("aiosmtpd received no message within 10s")
	}
	return smtpCapture{}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// selfSigned writes a certificate for 127.0.0.1 and localhost and its key.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hostctl test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// parsed is a received mail with its body decoded.
type parsed struct {
	header  mail.Header
	subject string
	body    string
}

func parseMail(t *testing.T, raw []byte) parsed {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("received mail: %v\n%s", err, raw)
	}
	for k, want := range map[string]string{"MIME-Version": "1.0", "Content-Type": "text/plain; charset=utf-8", "Content-Transfer-Encoding": "quoted-printable"} {
		if got := m.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"Date", "From", "To", "Message-ID"} {
		if m.Header.Get(k) == "" {
			t.Errorf("no %s header", k)
		}
	}
	if _, err := m.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Errorf("Subject: %v", err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Errorf("body is not quoted-printable: %v", err)
	}
	return parsed{m.Header, subj, strings.ReplaceAll(string(body), "\r\n", "\n")}
}

func emailConfig(port int, starttls bool) SinkConfig {
	return SinkConfig{Type: TypeEmail, Host: "127.0.0.1", Port: port, StartTLS: &starttls,
		From: "hostctl <hostctl@web1.example>", To: []string{"oncall@example.com", "Ops <ops@example.com>"}}
}

func TestEmailPlain(t *testing.T) {
	srv := startSMTP(t, "", "")
	s := mustSink(t, emailConfig(srv.port, false))

	trig := testEvent(Trigger)
	trig.Alert.Summary = "gunicorn is FATAL: déjà vu " + strings.Repeat("x", 200)
	if err := s.Send(testCtx(t), trig); err != nil {
		t.Fatal(err)
	}
	m := srv.next(t)
	if m.TLS || m.From != "hostctl@web1.example" || strings.Join(m.To, ",") != "oncall@example.com,ops@example.com" {
		t.Errorf("envelope: %+v", m)
	}
	p := parseMail(t, m.Data)
	if !strings.HasPrefix(p.subject, "[hostctl web1] TRIGGER: gunicorn is FATAL: déjà vu") || len([]rune(p.subject)) > maxSubject {
		t.Errorf("subject %q", p.subject)
	}
	for _, want := range []string{
		"gunicorn is FATAL: déjà vu",
		"Host:     web1",
		"(12m ago)",
		"exit_status: 1",
		"    ImportError: no module named 'app'",
		"What to do:\n  hostctl status gunicorn; hostctl tail gunicorn stderr",
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("body lacks %q:\n%s", want, p.body)
		}
	}

	rep := testEvent(Trigger)
	rep.Repeat, rep.Alert.Notified = true, 2
	if err := s.Send(testCtx(t), rep); err != nil {
		t.Fatal(err)
	}
	if p := parseMail(t, srv.next(t).Data); !strings.Contains(p.body, "still lasts") {
		t.Errorf("repeat body does not say it still lasts:\n%s", p.body)
	}

	if err := s.Send(testCtx(t), testEvent(Resolve)); err != nil {
		t.Fatal(err)
	}
	p = parseMail(t, srv.next(t).Data)
	if !strings.HasPrefix(p.subject, "[hostctl web1] RESOLVED: gunicorn is RUNNING again after 12m0s (was: ") {
		t.Errorf("subject %q", p.subject)
	}
	for _, want := range []string{"How it cleared: gunicorn is RUNNING again after 12m0s", "Lasted:         12m"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("resolve body lacks %q:\n%s", want, p.body)
		}
	}

	t.Run("refused recipient", func(t *testing.T) {
		sc := emailConfig(srv.port, false)
		sc.To = []string{"nobody@example.com", "oncall@example.com"}
		err := mustSink(t, sc).Send(testCtx(t), testEvent(Trigger))
		if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "550") || !strings.Contains(err.Error(), "nobody@example.com") {
			t.Fatalf("err = %v, want a permanent error naming the refused recipient and the 550", err)
		}
		if m := srv.next(t); strings.Join(m.To, ",") != "oncall@example.com" {
			t.Errorf("the accepted recipient did not get the mail: %+v", m)
		}
	})

	t.Run("starttls wanted but not offered", func(t *testing.T) {
		err := mustSink(t, emailConfig(srv.port, true)).Send(testCtx(t), testEvent(Trigger))
		if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "does not offer STARTTLS") {
			t.Fatalf("err = %v, want a permanent error saying the server does not offer STARTTLS", err)
		}
		select {
		case m := <-srv.msgs:
			t.Errorf("a mail went through in clear text: %+v", m)
		default:
		}
	})
}

func TestEmailStartTLS(t *testing.T) {
	cert, key := selfSigned(t)
	const password = "hunter2-password"
	srv := startSMTP(t, cert, key, "alerts", password)
	sc := emailConfig(srv.port, true)
	sc.CAFile = cert
	sc.Username = "alerts"
	sc.PasswordFile = writeFile(t, "password", password+"\n")
	if err := mustSink(t, sc).Send(testCtx(t), testEvent(Trigger)); err != nil {
		t.Fatal(err)
	}
	m := srv.next(t)
	if !m.TLS || m.User != "alerts" {
		t.Errorf("envelope: TLS %v, user %q; want TLS and user alerts", m.TLS, m.User)
	}
	parseMail(t, m.Data)

	t.Run("wrong password", func(t *testing.T) {
		sc := sc
		sc.PasswordFile = writeFile(t, "password", "not-"+password)
		err := mustSink(t, sc).Send(testCtx(t), testEvent(Trigger))
		if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "535") {
			t.Fatalf("err = %v, want a permanent error with the server's 535", err)
		}
		noSecret(t, err)
		if strings.Contains(err.Error(), "not-"+password) {
			t.Errorf("error contains the password: %v", err)
		}
	})

	t.Run("untrusted certificate", func(t *testing.T) {
		sc := sc
		sc.CAFile = ""
		err := mustSink(t, sc).Send(testCtx(t), testEvent(Trigger))
		if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "ca_file") {
			t.Fatalf("err = %v, want a permanent error pointing at ca_file", err)
		}
		noSecret(t, err)
	})

	t.Run("ca_file not PEM", func(t *testing.T) {
		sc := sc
		sc.Name, sc.Timeout = "mail", time.Second
		sc.CAFile = writeFile(t, "ca.pem", "not a certificate")
		c := DefaultConfig()
		c.Sinks = []SinkConfig{sc}
		errs := append(c.Provision("alerts", trust.Read), c.Validate("alerts")...)
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "alerts.sink[0].ca_file") {
			t.Errorf("Provision and Validate: %v, want one error for alerts.sink[0].ca_file", errs)
		}
	})
}

func TestEmailDeadline(t *testing.T) {
	// A server that accepts the connection and never greets: the context's
	// deadline ends Send.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	s := mustSink(t, emailConfig(ln.Addr().(*net.TCPAddr).Port, false))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = s.Send(ctx, testEvent(Trigger))
	if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "no answer in time") {
		t.Fatalf("err = %v, want a retryable timeout", err)
	}
}

// testCtx bounds one Send as the Manager would, so that a hang fails the
// test instead of waiting for the server's own timeout.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
