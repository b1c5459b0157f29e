package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testbin"
)

// TestFleetSharedCertificates is issue 13 §3: two webservers (two hostctl
// daemons with their own state dirs, on 127.0.0.2 and 127.0.0.3) serve
// the same host name with tls = "internal" from one storage, started at
// the same moment. They must present the same certificate chain, issued
// once (the storage's lock makes the other wait and load it), from one
// local CA. Once with a Redis server (started here, with a password) and
// once with a directory both use (a shared mount's stand-in).
func TestFleetSharedCertificates(t *testing.T) {
	bin, err := testbin.Hostctl()
	if err != nil {
		t.Fatal(err)
	}
	tmp := shortTempDir(t)
	const host = "shared.test"

	t.Run("redis", func(t *testing.T) {
		dir := filepath.Join(tmp, "redis")
		os.MkdirAll(dir, 0o700)
		rd := startTestRedis(t, dir, "")
		storage := fmt.Sprintf("type = \"redis\"\naddress = %q\npassword_file = %q\nkey_prefix = \"fleet\"", rd.addr, rd.passwordFile)
		chains := twoWebserversTLS(t, bin, dir, host, storage)

		// The root the chain leads to is the one in Redis: the local CA
		// is one, not two that each wrote their own.
		c := redis.NewClient(&redis.Options{Addr: rd.addr, Password: rd.password})
		defer c.Close()
		raw, err := c.Get(context.Background(), "fleet/pki/authorities/local/root.crt").Bytes()
		if err != nil {
			t.Fatalf("the local CA's root in redis: %v", err)
		}
		var stored struct{ Value []byte } // the module's StorageData
		if err := json.Unmarshal(raw, &stored); err != nil {
			t.Fatal(err)
		}
		verifyChain(t, chains[0], stored.Value, host)
	})

	t.Run("shared directory", func(t *testing.T) {
		dir := filepath.Join(tmp, "dir")
		shared := filepath.Join(dir, "shared-storage")
		os.MkdirAll(shared, 0o700)
		chains := twoWebserversTLS(t, bin, dir, host, fmt.Sprintf("type = \"file\"\ndir = %q", shared))
		root, err := os.ReadFile(filepath.Join(shared, "pki", "authorities", "local", "root.crt"))
		if err != nil {
			t.Fatal(err)
		}
		verifyChain(t, chains[0], root, host)
	})

	t.Run("redis unreachable", func(t *testing.T) {
		// A closed port: the proxy's start fails at once with an error
		// naming the storage; hostctl runs on and status says why. Once
		// Redis is there, hostctl reload starts the proxy.
		dir := filepath.Join(tmp, "down")
		os.MkdirAll(dir, 0o700)
		closed := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePorts(t, 1)[0]))
		passwordFile := filepath.Join(dir, "redis.password")
		os.WriteFile(passwordFile, []byte("later-"+strconv.Itoa(os.Getpid())+"\n"), 0o600)
		n := startTLSWebserver(t, bin, filepath.Join(dir, "web"), "127.0.0.2", host,
			fmt.Sprintf("type = \"redis\"\naddress = %q\npassword_file = %q\ntimeout = \"2s\"", closed, passwordFile))
		t0 := time.Now()
		e, err := n.d.wait(0, 20*time.Second, "the proxy's failed start", func(e entry) bool {
			return e.Msg == "the proxy did not start; programs keep running"
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("proxy start failed %s after the test started hostctl: %s", time.Since(t0).Round(time.Millisecond), e.raw)
		out, _ := run(n.dir, testbin.Env(os.Environ()), bin, "status", "-c", n.config)
		want := "proxy: NOT RUNNING: proxy: starting: proxy.storage: cannot use the redis server at " + closed
		if !strings.Contains(out, want) {
			t.Errorf("hostctl status does not say %q:\n%s", want, out)
		}

		startTestRedis(t, dir, closed)
		if out, err := run(n.dir, testbin.Env(os.Environ()), bin, "reload", "-c", n.config); err != nil {
			t.Fatalf("hostctl reload with redis up: %v\n%s", err, out)
		}
		if _, err := eventually(30*time.Second, func() error { _, err := servedChain(n.tlsAddr, host); return err }); err != nil {
			t.Fatalf("no certificate after redis came back and hostctl reload: %v", err)
		}
	})
}

// twoWebserversTLS starts two webservers on 127.0.0.2 and 127.0.0.3 at
// the same moment, serving host with tls = "internal" from the
// [proxy.storage] table body storage, waits for each to present a
// certificate, checks that both present the same chain and that one of
// them obtained it, and returns both chains.
func twoWebserversTLS(t *testing.T, bin, dir, host, storage string) [2][]*x509.Certificate {
	t.Helper()
	var nodes [2]*tlsWebserver
	for i, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		nodes[i] = startTLSWebserver(t, bin, filepath.Join(dir, "web"+strconv.Itoa(i+1)), ip, host, storage)
	}
	var chains [2][]*x509.Certificate
	for i, n := range nodes {
		took, err := eventually(30*time.Second, func() error {
			var err error
			chains[i], err = servedChain(n.tlsAddr, host)
			return err
		})
		if err != nil {
			t.Fatalf("%s: no certificate for %s: %v\n%s", n.tlsAddr, host, err, n.d.logText())
		}
		t.Logf("%s presents %s (serial %x, issuer %q) %s after start", n.tlsAddr, host,
			chains[i][0].SerialNumber, chains[i][0].Issuer.CommonName, took.Round(time.Millisecond))
	}
	if len(chains[0]) != len(chains[1]) {
		t.Fatalf("chains of %d and %d certificates", len(chains[0]), len(chains[1]))
	}
	for i := range chains[0] {
		if !bytes.Equal(chains[0][i].Raw, chains[1][i].Raw) {
			t.Errorf("certificate %d of the chain differs: %s (serial %x) on %s, %s (serial %x) on %s", i,
				chains[0][i].Subject.CommonName, chains[0][i].SerialNumber, nodes[0].tlsAddr,
				chains[1][i].Subject.CommonName, chains[1][i].SerialNumber, nodes[1].tlsAddr)
		}
	}
	// One of them asked the CA; the other waited on the storage's lock
	// and loaded what the first stored. The one that obtained it logged
	// so before serving it, but its log reaches the test by another way
	// than the handshake: wait for the line, then count.
	obtained := func() int {
		n := 0
		for _, w := range nodes {
			w.d.mu.Lock()
			for _, e := range w.d.log {
				if e.Msg == "certificate obtained successfully" {
					n++
				}
			}
			w.d.mu.Unlock()
		}
		return n
	}
	if _, err := eventually(30*time.Second, func() error {
		if obtained() == 0 {
			return fmt.Errorf("neither webserver logged obtaining the certificate")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if n := obtained(); n != 1 {
		t.Errorf("the certificate was obtained %d times, want once", n)
	}
	return chains
}

// verifyChain checks that chain (leaf first) is valid for host up to
// rootPEM.
func verifyChain(t *testing.T, chain []*x509.Certificate, rootPEM []byte, host string) {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("no certificate in the stored root: %q", rootPEM)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter}); err != nil {
		t.Errorf("the served chain does not lead to the stored local CA root: %v", err)
	}
}

// servedChain does a TLS handshake with addr for host and returns the
// certificates the server presents.
func servedChain(addr, host string) ([]*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 2 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: host, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates, nil
}

// tlsWebserver is one hostctl serving a static directory for one host
// name with tls = "internal".
type tlsWebserver struct {
	d       *daemon
	dir     string
	config  string
	tlsAddr string
}

// startTLSWebserver starts hostctl in dir (its state, logs, socket and
// config), listening on ip, with storage as its [proxy.storage] table,
// and stops it when the test ends.
func startTLSWebserver(t *testing.T, bin, dir, ip, host, storage string) *tlsWebserver {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ports := freePortsOn(t, ip, 2)
	n := &tlsWebserver{dir: dir, config: filepath.Join(dir, "hostctl.toml"), tlsAddr: net.JoinHostPort(ip, strconv.Itoa(ports[1]))}
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello from "+ip+"\n"), 0o644)
	cfg := fmt.Sprintf(`[admin]
socket = %q
state_dir = %q

[log]
dir = %q

[proxy]
listen = "%s:%d"
listen_tls = %q
hosts = [%q]
tls = "internal"
access_log = false

[[proxy.static]]
path = "/"
dir = %q

[proxy.storage]
%s
`, filepath.Join(dir, "hostctl.sock"), filepath.Join(dir, "state"), filepath.Join(dir, "log"), ip, ports[0], n.tlsAddr, host, dir, storage)
	if err := os.WriteFile(n.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	n.d = startConfigDaemon(t, bin, dir, n.config, testbin.Env(os.Environ()))
	t.Cleanup(func() {
		if err := n.d.stop(30 * time.Second); err != nil {
			t.Error(err)
			n.d.cmd.Process.Kill()
			<-n.d.done
		}
		testbin.CheckRace(t, "hostctl run ("+ip+")", n.d.cmd.ProcessState, n.d.logText())
		if t.Failed() {
			t.Logf("hostctl on %s, log:\n%s", ip, n.d.logText())
		}
	})
	return n
}

// testRedis is a redis-server the test started, with a password.
type testRedis struct {
	addr, password, passwordFile string
}

// startTestRedis runs redis-server on addr, or else on 127.0.0.1 at a
// port that was free, nothing saved to disk, requiring the password in
// dir/redis.password (written if missing), and stops it when the test
// ends.
func startTestRedis(t *testing.T, dir, addr string) *testRedis {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed: run scripts/test-deps.sh (as root) (%v)", err)
	}
	if addr == "" {
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePorts(t, 1)[0]))
	}
	rd := &testRedis{addr: addr, passwordFile: filepath.Join(dir, "redis.password")}
	if b, err := os.ReadFile(rd.passwordFile); err == nil {
		rd.password = strings.TrimSpace(string(b))
	} else {
		rd.password = "fleet-{test}-" + strconv.Itoa(os.Getpid()) // braces: taken as written, not as a Caddy placeholder
		os.WriteFile(rd.passwordFile, []byte(rd.password+"\n"), 0o600)
	}
	_, port, _ := net.SplitHostPort(rd.addr)
	conf := filepath.Join(dir, "redis.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("bind 127.0.0.1\nport %s\nrequirepass %s\nsave \"\"\nappendonly no\ndir %s\ndaemonize no\n", port, rd.password, dir)), 0o600)
	cmd := exec.Command(path, conf)
	out := &redisOutput{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	c := redis.NewClient(&redis.Options{Addr: rd.addr, Password: rd.password, MaxRetries: -1})
	defer c.Close()
	if _, err := eventually(10*time.Second, func() error {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited: %s", out.String())
		default:
		}
		return c.Ping(context.Background()).Err()
	}); err != nil {
		t.Fatalf("redis-server on %s: %v\n%s", rd.addr, err, out.String())
	}
	return rd
}

// freePortsOn returns n TCP ports that were free a moment ago on ip.
func freePortsOn(t *testing.T, ip string, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for len(ports) < n {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// shortTempDir is a temp dir with a short path (unix socket paths are
// limited to 108 bytes), kept when the test fails.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hostctl-fleet-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept %s for a look", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// redisOutput keeps redis-server's output for an error message.
type redisOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *redisOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *redisOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
