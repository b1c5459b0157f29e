package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStaticFiles(t *testing.T) {
	dir := publicDir(t)
	css := strings.Repeat("body { color: #333; margin: 0 auto; }\n", 200)
	os.WriteFile(filepath.Join(dir, "site.css"), []byte(css), 0o644)
	js := strings.Repeat("console.log('hello');\n", 100)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(js))
	zw.Close()
	os.WriteFile(filepath.Join(dir, "app.js"), []byte(js), 0o644)
	os.WriteFile(filepath.Join(dir, "app.js.gz"), gz.Bytes(), 0o644)

	up := newUpstream(t, nil)
	listen := freeAddr(t)
	startProxy(t, Config{Listen: listen, Upstream: up.addr, Static: []Static{{Path: "/static/", Dir: dir}}})
	c := client()
	base := "http://" + listen

	// On-the-fly gzip, cache headers, ETag.
	resp, body := get(t, c, base+"/static/site.css", "Accept-Encoding", "gzip")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("site.css: %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(zr); string(plain) != css {
		t.Errorf("site.css decompressed differs from the file")
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=3600" {
		t.Errorf("Cache-Control %q", cc)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	resp, _ = get(t, c, base+"/static/site.css", "Accept-Encoding", "gzip", "If-None-Match", etag)
	if resp.StatusCode != 304 {
		t.Errorf("If-None-Match %s: %d, want 304", etag, resp.StatusCode)
	}
	// Without compression, the file as is; its own ETag also revalidates.
	resp, body = get(t, c, base+"/static/site.css")
	if resp.StatusCode != 200 || body != css || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("identity site.css: %d, encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	resp, _ = get(t, c, base+"/static/site.css", "If-None-Match", resp.Header.Get("ETag"))
	if resp.StatusCode != 304 {
		t.Errorf("identity If-None-Match: %d, want 304", resp.StatusCode)
	}

	// Precompressed sibling served as is.
	resp, body = get(t, c, base+"/static/app.js", "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" || body != gz.String() {
		t.Errorf("app.js: encoding %q, precompressed body served: %v", resp.Header.Get("Content-Encoding"), body == gz.String())
	}
	// A missing file is 404 from the file server, not the upstream.
	resp, _ = get(t, c, base+"/static/nope.css")
	if resp.StatusCode != 404 || up.served.Load() != 0 {
		t.Errorf("missing static file: %d, upstream served %d", resp.StatusCode, up.served.Load())
	}
	// Other paths go to the upstream.
	if resp, body := get(t, c, base+"/page"); resp.StatusCode != 200 || body != "hello from upstream /page" {
		t.Errorf("/page: %d %q", resp.StatusCode, body)
	}
}

func TestTLSInternal(t *testing.T) {
	up := newUpstream(t, nil)
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	h := startProxy(t, Config{
		Listen: httpAddr, ListenTLS: httpsAddr,
		Hosts: []string{"localhost"}, TLS: TLSInternal, Upstream: up.addr,
	})
	_, httpsPort, _ := net.SplitHostPort(httpsAddr)
	_, httpPort, _ := net.SplitHostPort(httpAddr)

	// HTTP is redirected to HTTPS on the configured port.
	c := client()
	c.Transport = &http.Transport{DialContext: dialTo(httpAddr)}
	resp, _ := get(t, c, "http://localhost:"+httpPort+"/x?y=1")
	if want := "https://localhost:" + httpsPort + "/x?y=1"; resp.StatusCode != 308 || resp.Header.Get("Location") != want {
		t.Errorf("redirect: %d Location %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}

	// HTTPS with a certificate from the local CA in the state dir.
	rootPEM, err := os.ReadFile(filepath.Join(h.state, "caddy", "pki", "authorities", "local", "root.crt"))
	if err != nil {
		t.Fatalf("local CA root not under the state dir: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(rootPEM)
	tc := client()
	tc.Transport = &http.Transport{DialContext: dialTo(httpsAddr), TLSClientConfig: &tls.Config{RootCAs: pool}}
	var body string
	// The certificate is issued in the background right after start.
	retryUntil(t, 30*time.Second, "HTTPS with the internal certificate", func() error {
		resp, err := tc.Get("https://localhost:" + httpsPort + "/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return errors.New(resp.Status)
		}
		body = string(b)
		return nil
	})
	if body != "hello from upstream /" {
		t.Errorf("HTTPS body %q", body)
	}
	st := h.p.Status()
	if len(st.Certificates) != 1 || st.Certificates[0].Names[0] != "localhost" || st.Certificates[0].NotAfter.Before(time.Now()) {
		t.Errorf("Status certificates = %+v", st.Certificates)
	}
	if len(st.Listen) != 2 {
		t.Errorf("Status listen = %v, want both listeners", st.Listen)
	}
}

// dialTo makes a transport dial addr whatever the URL's host.
func dialTo(addr string) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

func TestCaddyfileEscapeHatch(t *testing.T) {
	up := newUpstream(t, nil)
	listen := freeAddr(t)
	cf := filepath.Join(t.TempDir(), "Caddyfile")
	os.WriteFile(cf, []byte(":80 {\n\trespond /hatch \"from the Caddyfile\" 200\n\theader X-Hatch yes\n}\n"), 0o644)
	startProxy(t, Config{Listen: listen, Upstream: up.addr, Caddyfile: cf})
	c := client()
	if resp, body := get(t, c, "http://"+listen+"/hatch"); resp.StatusCode != 200 || body != "from the Caddyfile" {
		t.Errorf("/hatch: %d %q", resp.StatusCode, body)
	}
	resp, body := get(t, c, "http://"+listen+"/app")
	if resp.StatusCode != 200 || body != "hello from upstream /app" || resp.Header.Get("X-Hatch") != "yes" {
		t.Errorf("/app: %d %q X-Hatch %q", resp.StatusCode, body, resp.Header.Get("X-Hatch"))
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	root, _ := writeServerCert(t, dir, "127.0.0.1") // also writes key.pem
	rootPEM, _ := os.ReadFile(root)
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "key.pem"))
	rootAndKey := writeFile(t, dir, "root-and-key.pem", string(rootPEM)+string(keyPEM))
	tests := []struct {
		name string
		cfg  Config
		keys []string // want exactly these error keys
	}{
		{"simple", Config{Listen: "127.0.0.1:8080", Upstream: "127.0.0.1:8000"}, nil},
		{"unix", Config{Upstream: "unix:/run/app.sock"}, nil},
		{"missing upstream", Config{}, []string{"proxy.upstream"}},
		{"bad listen and upstream", Config{Listen: "8080", Upstream: "localhost"}, []string{"proxy.listen", "proxy.upstream"}},
		{"relative socket", Config{Upstream: "unix:app.sock"}, []string{"proxy.upstream"}},
		{"both upstream kinds", Config{Upstream: "127.0.0.1:1", UpstreamList: []string{"127.0.0.1:2"}}, []string{"proxy.upstreams"}},
		{"bad list entry", Config{UpstreamList: []string{"127.0.0.1:2", "x:y"}}, []string{"proxy.upstreams[1]"}},
		{"same ports", Config{Listen: ":8080", ListenTLS: ":8080", Upstream: "127.0.0.1:1"}, []string{"proxy.listen_tls"}},
		{"bad tls", Config{Upstream: "127.0.0.1:1", TLS: "yes"}, []string{"proxy.tls"}},
		{"tls without hosts", Config{Upstream: "127.0.0.1:1", TLS: "internal"}, []string{"proxy.hosts"}},
		{"bad allow", Config{Upstream: "127.0.0.1:1", Allow: []string{"10.0.0.0/8", "nope"}}, []string{"proxy.allow[1]"}},
		{"negative", Config{Upstream: "127.0.0.1:1", RetryFor: ptr(-time.Second), MaxBodySize: ptr(int64(-1))}, []string{"proxy.retry_for", "proxy.max_body_size"}},
		{"static", Config{Upstream: "127.0.0.1:1", Static: []Static{{Path: "static", Dir: filepath.Join(dir, "missing")}}},
			[]string{"proxy.static[0].path", "proxy.static[0].dir"}},
		{"missing error page", Config{Upstream: "127.0.0.1:1", ErrorPage: filepath.Join(dir, "x.html")}, []string{"proxy.error_page"}},
		{"sites", Config{Upstream: "127.0.0.1:1", Sites: []Site{
			{Hosts: []string{"a.example.com"}},
			{Hosts: []string{"A.example.com", "http://b"}, Upstream: "nope"},
			{},
			{TLS: "internal"},
		}}, []string{"proxy.site[1].hosts[0]", "proxy.site[1].hosts[1]", "proxy.site[1].upstream", "proxy.site[3].hosts", "proxy.site"}},
		{"wildcard auto", Config{Upstream: "127.0.0.1:1", Hosts: []string{"*.example.com"}}, []string{"proxy.hosts[0]"}},
		{"wildcard internal", Config{Upstream: "127.0.0.1:1", Hosts: []string{"*.example.com"}, TLS: TLSInternal}, nil},
		{"health", Config{UpstreamList: []string{"127.0.0.1:1", "127.0.0.1:2"}, Health: Health{Path: "health", Status: 700}},
			[]string{"proxy.health.path", "proxy.health.status"}},
		{"health path", Config{Upstream: "127.0.0.1:1", HealthPath: "/.hostctl/health"}, nil},
		{"passive checks and health path", Config{UpstreamList: []string{"127.0.0.1:1", "127.0.0.1:2"}, HealthPath: ".hostctl/health",
			Health: Health{MaxFails: -1, FailDuration: ptr(-time.Second)}},
			[]string{"proxy.health.fail_duration", "proxy.health.max_fails", "proxy.health_path"}},
		{"caddyfile syntax", Config{Upstream: "127.0.0.1:1", Caddyfile: writeFile(t, dir, "bad.caddy", ":80 {\n\tnot_a_directive\n}\n")}, []string{"proxy.caddyfile"}},
		{"private acme ca", Config{Upstream: "127.0.0.1:1", Hosts: []string{"app.example.com"},
			ACMECA: "https://ca.internal:9000/acme/acme/directory", ACMECARoot: root}, nil},
		{"acme ca not https", Config{Upstream: "127.0.0.1:1", ACMECA: "http://ca.internal/directory"}, []string{"proxy.acme_ca"}},
		{"acme ca without scheme", Config{Upstream: "127.0.0.1:1", ACMECA: "ca.internal/directory"}, []string{"proxy.acme_ca"}},
		{"acme ca root missing", Config{Upstream: "127.0.0.1:1", ACMECARoot: filepath.Join(dir, "missing.pem")}, []string{"proxy.acme_ca_root"}},
		{"acme ca root not pem", Config{Upstream: "127.0.0.1:1", ACMECARoot: writeFile(t, dir, "notpem.pem", "not a certificate\n")}, []string{"proxy.acme_ca_root"}},
		{"acme ca root with a key", Config{Upstream: "127.0.0.1:1", ACMECARoot: rootAndKey}, []string{"proxy.acme_ca_root"}},
		{"acme ca root bad cert", Config{Upstream: "127.0.0.1:1", ACMECARoot: writeFile(t, dir, "bad.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}, []string{"proxy.acme_ca_root"}},
		// Values Caddy would expand as placeholders ({file.*}, {env.*}, the
		// request's) are refused; hostctl.toml has ${VAR}.
		{"placeholders", Config{Upstream: "unix:/run/{http.request.host}.sock", Email: "{env.USER}@example.com",
			Health: Health{Host: "{file./etc/shadow}"}, Static: []Static{{Path: "/{env.HOME}/", Dir: dir}}},
			[]string{"proxy.email", "proxy.health.host", "proxy.upstream", "proxy.static[0].path"}},
		// Adapts, but Caddy fails to provision it: the error names a route
		// number and a module, not the file.
		{"caddyfile provisioning", Config{Upstream: "127.0.0.1:1", Caddyfile: writeFile(t, dir, "regexp.caddy", ":80 {\n\t@m path_regexp (\n\trespond @m 200\n}\n")}, []string{"proxy.caddyfile"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.cfg.Validate("proxy")
			var keys []string
			for _, err := range errs {
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("%v is not a *FieldError", err)
				}
				keys = append(keys, fe.Key)
				if !strings.HasPrefix(fe.Error(), fe.Key+": ") {
					t.Errorf("Error() = %q does not start with its key", fe.Error())
				}
			}
			if strings.Join(keys, " ") != strings.Join(tt.keys, " ") {
				t.Errorf("error keys %q, want %q\n%v", keys, tt.keys, errors.Join(errs...))
			}
		})
	}
}

// TestValidateACMEMessages checks that the ACME keys' errors say what is
// wrong and what is expected.
func TestValidateACMEMessages(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{ACMECA: "http://ca.internal/directory"}, `proxy.acme_ca: "http://ca.internal/directory" is not an https URL (the ACME directory, such as "https://acme-v02.api.letsencrypt.org/directory")`},
		{Config{ACMECARoot: filepath.Join(dir, "missing.pem")}, "proxy.acme_ca_root: cannot read: " + filepath.Join(dir, "missing.pem") + ": no such file or directory"},
		{Config{ACMECARoot: writeFile(t, dir, "empty.pem", "")}, `holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`},
		{Config{ACMECARoot: writeFile(t, dir, "key.pem", "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")}, `PEM block 1 is "EC PRIVATE KEY", not "CERTIFICATE": the file must hold only certificates`},
	} {
		tt.cfg.Upstream = "127.0.0.1:1"
		err := errors.Join(tt.cfg.validateFields("proxy")...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: got %v, want an error containing %q", tt.cfg, err, tt.want)
		}
	}
}

func TestDefaultTLSMode(t *testing.T) {
	for hosts, want := range map[string]string{
		"":                       TLSOff,
		"localhost":              TLSOff,
		"127.0.0.1":              TLSOff,
		"app.internal":           TLSOff,
		"example.com":            TLSAuto,
		"example.com www.ex.org": TLSAuto,
		"example.com app.local":  TLSOff,
	} {
		s := site{Site: Site{Hosts: strings.Fields(hosts)}}
		if got := s.tlsMode(); got != want {
			t.Errorf("hosts %q: tls %q, want %q", hosts, got, want)
		}
	}
}

func TestGeneratedConfigDefaults(t *testing.T) {
	cfg := Config{Listen: "127.0.0.1:8080", Upstream: "unix:/run/app.sock"}
	js, err := cfg.CaddyJSON()
	if err != nil {
		t.Fatal(err)
	}
	s := string(js)
	for _, want := range []string{
		`"admin":{"config":{"persist":false},"disabled":true}`,
		`"dial":"unix//run/app.sock"`,
		`"keep_alive":{"enabled":false}`,
		`"buffer":{"limit":10485760,"memory":65536}`,
		`"max_size":10485760`,
		`"try_duration":5000000000`,
		`"protocols":["h1","h2c"]`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("generated config lacks %s\n%s", want, s)
		}
	}
	if strings.Contains(s, `"h3"`) {
		t.Errorf("HTTP/3 is on by default")
	}
}

// TestImports keeps the layering: proxy never imports supervisor or cmd,
// directly or through another package.
func TestImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-test", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/hostctl/hostctl/supervisor") || strings.HasPrefix(p, "github.com/hostctl/hostctl/cmd") {
			t.Errorf("proxy depends on %s", p)
		}
	}
	if !strings.Contains(string(out), "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy") {
		t.Errorf("go list -deps output looks wrong:\n%s", out)
	}
}

func ptr[T any](v T) *T { return &v }

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
