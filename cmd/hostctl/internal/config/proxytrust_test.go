package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testuser"
	"github.com/hostctl/hostctl/proxy"
)

// The proxy believes some files as root: the Caddyfile (its placeholders,
// {file.PATH} among them, run as root) and an error page that only root
// can change (read as root, not as the file user). Which files is
// hostctl's one rule, trust.ReadFile, which this package's init gives the
// proxy (proxy.ReadTrusted). These tests attack that rule through the
// proxy as a real unprivileged user, the app's: without the injection
// they fail.

// proxyApp is the app's user (a real one, made with useradd) and its
// world for one test: a base dir everyone may traverse (as /srv), a dir
// the app's user owns, and a secret only root can read.
type proxyApp struct {
	testuser.User
	base    string // 0755 root
	dir     string // owned by the app's user
	secret  string // 0600 root, in base
	secretv string // its contents
}

// newProxyApp creates the app's user if needed and a fresh world for it,
// removed when the test ends.
func newProxyApp(t *testing.T) *proxyApp {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a user and attacks as it")
	}
	a := &proxyApp{User: testuser.Ensure(t, "hct-proxytrust")}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var err error
	a.base, err = os.MkdirTemp("", "hct-proxytrust-")
	must(err)
	t.Cleanup(func() { os.RemoveAll(a.base) })
	must(os.Chmod(a.base, 0o755))
	a.dir = filepath.Join(a.base, "app")
	must(os.Mkdir(a.dir, 0o755))
	must(os.Chown(a.dir, a.UID, a.GID))
	b := make([]byte, 8)
	rand.Read(b)
	a.secretv = "root-only secret " + hex.EncodeToString(b)
	a.secret = filepath.Join(a.base, "secret")
	must(os.WriteFile(a.secret, []byte(a.secretv+"\n"), 0o600))
	return a
}

// applyRefused applies cfg to a new Proxy and returns Apply's error. If
// Apply accepts it, the test fails, having first said whether GET url
// served the secret (the attack succeeded) or not.
func (a *proxyApp) applyRefused(t *testing.T, cfg proxy.Config, url string) error {
	t.Helper()
	p := proxy.New(proxy.Options{StateDir: t.TempDir()})
	err := p.Apply(cfg)
	if err == nil {
		defer p.Stop()
		if _, body := proxyGet(t, url); strings.Contains(body, a.secretv) {
			t.Fatalf("GET %s served the root-only secret", url)
		}
		t.Fatalf("Apply accepted it")
	}
	return err
}

// freeProxyAddr returns a 127.0.0.1 address that was free a moment ago.
func freeProxyAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proxyGet GETs url (the proxy answers once Apply has returned) and
// returns the status and body.
func proxyGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestProxyCaddyfileAsAppUser: a Caddyfile the app's user can change is
// refused, when the proxy starts and by Validate: its placeholders run as
// root ({file.PATH} reads any file). One the app's user writes, one of
// root's in a dir the app's user owns (which it can replace), root's link
// to the app's file, and root's file that every user may write.
func TestProxyCaddyfileAsAppUser(t *testing.T) {
	a := newProxyApp(t)
	text := ":80 {\n\trespond /leak \"{file." + a.secret + "}\" 200\n}\n"
	owned := filepath.Join(a.dir, "Caddyfile")
	a.Run(t, "/bin/sh", "-c", `printf '%s' "$2" > "$1"`, "sh", owned, text)
	rootsInAppDir := filepath.Join(a.dir, "root.caddy")
	linked := filepath.Join(a.base, "linked.caddy")
	open := filepath.Join(a.base, "open.caddy")
	for _, f := range []string{rootsInAppDir, open} {
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(open, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(owned, linked); err != nil {
		t.Fatal(err)
	}
	// Root's Caddyfile that imports the app's file: the imported text's
	// placeholders run as root just the same.
	snippet := filepath.Join(a.dir, "snippet.caddy")
	a.Run(t, "/bin/sh", "-c", `printf '%s' "$2" > "$1"`, "sh", snippet, "respond /leak \"{file."+a.secret+"}\" 200\n")
	importer := filepath.Join(a.base, "imports.caddy")
	if err := os.WriteFile(importer, []byte(":80 {\n\timport "+snippet+"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, path, why string }{
		{"root's that imports the app's", importer, "imports " + snippet},
		{"the app's own", owned, "is owned by " + a.Name},
		{"root's in the app's dir", rootsInAppDir, "is owned by " + a.Name},
		{"root's link to the app's", linked, "is owned by " + a.Name},
		{"root's that others may write", open, "other users can write it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			listen := freeProxyAddr(t)
			cfg := proxy.Config{Listen: listen, Upstream: freeProxyAddr(t), Caddyfile: tt.path}
			err := a.applyRefused(t, cfg, "http://"+listen+"/leak")
			if !strings.Contains(err.Error(), "proxy.caddyfile") || !strings.Contains(err.Error(), tt.why) {
				t.Errorf("Apply: %v, want a proxy.caddyfile error saying it %s", err, tt.why)
			}
			if errs := cfg.Validate("proxy"); len(errs) == 0 || !strings.Contains(errors.Join(errs...).Error(), "proxy.caddyfile") {
				t.Errorf("Validate: %v, want a proxy.caddyfile error", errs)
			}
		})
	}
}

// TestProxyErrorPageTrust: an error page that only root can change, along
// its whole path, is read as root, though the file user (www-data) cannot
// look where it is (a checkout under /root); a link the app's user plants
// in its own dir is read as the file user, and so refused when it points
// at a root-only file: it is never read as root.
func TestProxyErrorPageTrust(t *testing.T) {
	a := newProxyApp(t)
	rootOnly := filepath.Join(a.base, "rootonly")
	if err := os.Mkdir(rootOnly, 0o700); err != nil {
		t.Fatal(err)
	}
	rootsPage := filepath.Join(rootOnly, "error.html")
	if err := os.WriteFile(rootsPage, []byte("<p>root's page {http.error.status_code}</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(a.dir, "503.html")
	a.Run(t, "ln", "-s", a.secret, planted)
	zero := time.Duration(0)

	t.Run("only root can change it", func(t *testing.T) {
		listen := freeProxyAddr(t)
		p := proxy.New(proxy.Options{StateDir: t.TempDir()})
		if err := p.Apply(proxy.Config{Listen: listen, Upstream: freeProxyAddr(t), RetryFor: &zero, ErrorPage: rootsPage}); err != nil {
			t.Fatalf("Apply: %v (the page in root's dir was not read as root)", err)
		}
		defer p.Stop()
		if status, body := proxyGet(t, "http://"+listen+"/"); status != 502 || body != "<p>root's page 502</p>" {
			t.Errorf("got %d %q, want 502 and the page in root's dir", status, body)
		}
	})

	t.Run("a link the app's user planted", func(t *testing.T) {
		listen := freeProxyAddr(t)
		cfg := proxy.Config{Listen: listen, Upstream: freeProxyAddr(t), RetryFor: &zero, ErrorPage: planted}
		err := a.applyRefused(t, cfg, "http://"+listen+"/")
		if !strings.Contains(err.Error(), "proxy.error_page") || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("Apply: %v, want a proxy.error_page error saying permission denied", err)
		}
	})
}
