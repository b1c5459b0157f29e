package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The adversarial tests of issue 19: hostctl runs as root, the app's user
// is not trusted. appUser is that user, a real unprivileged account made
// with useradd; it owns the app's dirs and plants what an attacker would.

const appUserName = "hct-proxy"

// app is the app user's world for one test: a base dir that everyone can
// traverse (as /srv is), a static dir and an app dir the user owns, and a
// secret only root can read.
type app struct {
	uid, gid int
	base     string // 0755 root
	static   string // owned by the app user
	dir      string // owned by the app user: its code, its error page
	secret   string // 0600 root, in base
	secretv  string // its contents
	rootDir  string // 0700 root, in base, holding "token" (0644)
}

// userOnce makes each test user once per test binary (useradd is not
// safe to run twice at the same moment for one name).
var userOnce sync.Map // name -> *sync.Once

// ensureUser creates the system user name if needed (useradd's status 9:
// it exists already, perhaps made by another test package at the same
// moment) and returns its uid and gid. It skips the test when not root.
func ensureUser(t *testing.T, name string) (uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a user and attacks as it")
	}
	once, _ := userOnce.LoadOrStore(name, new(sync.Once))
	once.(*sync.Once).Do(func() {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", "/usr/sbin/nologin", name).CombinedOutput()
		if ee, ok := errors.AsType[*exec.ExitError](err); ok && ee.ExitCode() == 9 {
			err = nil
		}
		if err != nil {
			t.Fatalf("useradd %s: %v\n%s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// newApp creates the app user if needed (useradd's status 9: it exists
// already, perhaps made by another test package at the same moment) and
// a fresh world for it, removed when the test ends.
func newApp(t *testing.T) *app {
	t.Helper()
	a := &app{}
	a.uid, a.gid = ensureUser(t, appUserName)
	var err error
	a.base, err = os.MkdirTemp("", "hct-proxy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(a.base) })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(a.base, 0o755))
	a.static = filepath.Join(a.base, "static")
	a.dir = filepath.Join(a.base, "app")
	for _, d := range []string{a.static, a.dir} {
		must(os.Mkdir(d, 0o755))
		must(os.Chown(d, a.uid, a.gid))
	}
	b := make([]byte, 8)
	rand.Read(b)
	a.secretv = "root-only secret " + hex.EncodeToString(b) + "\n"
	a.secret = filepath.Join(a.base, "secret")
	must(os.WriteFile(a.secret, []byte(a.secretv), 0o600))
	a.rootDir = filepath.Join(a.base, "rootonly")
	must(os.Mkdir(a.rootDir, 0o700))
	must(os.WriteFile(filepath.Join(a.rootDir, "token"), []byte(a.secretv), 0o644))
	return a
}

// leaked reports whether body holds the secret (Caddy's {file.*} drops
// the trailing newline).
func (a *app) leaked(body string) bool {
	return strings.Contains(body, strings.TrimSpace(a.secretv))
}

// as runs a command as the app user, with its own uid, gid and no other
// groups, and fails the test if it fails.
func (a *app) as(t *testing.T, name string, args ...string) {
	t.Helper()
	argv := append([]string{"--reuid=" + strconv.Itoa(a.uid), "--regid=" + strconv.Itoa(a.gid), "--clear-groups", "--", name}, args...)
	out, err := exec.Command("setpriv", argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("as %s: %s %s: %v\n%s", appUserName, name, strings.Join(args, " "), err, out)
	}
}

// TestStaticLinksAsAppUser: links the app's user plants in its static dir
// reach only what the file user (www-data) could read, as behind nginx:
// a link to a root-only file, or through a linked dir into a root-only
// dir, is refused; a link to a file everyone may read is served (Django's
// collectstatic --link).
func TestStaticLinksAsAppUser(t *testing.T) {
	a := newApp(t)
	a.as(t, "sh", "-c", `echo 'body{}' > "$1/site.css" && mkdir "$1/src" && echo 'linked{}' > "$1/src/linked.css"`, "sh", a.dir)
	a.as(t, "ln", "-s", a.secret, filepath.Join(a.static, "secret.txt"))
	a.as(t, "ln", "-s", a.rootDir, filepath.Join(a.static, "private"))
	a.as(t, "ln", "-s", filepath.Join(a.dir, "src", "linked.css"), filepath.Join(a.static, "linked.css"))
	a.as(t, "ln", "-s", filepath.Join(a.dir, "src"), filepath.Join(a.static, "src"))
	a.as(t, "cp", filepath.Join(a.dir, "site.css"), filepath.Join(a.static, "site.css"))

	up := newUpstream(t, nil)
	listen := freeAddr(t)
	startProxy(t, Config{Listen: listen, Upstream: up.addr, Static: []Static{{Path: "/static/", Dir: a.static}}})
	c := client()
	for _, tt := range []struct {
		name, path string
		ok         bool
		body       string
	}{
		{"own file", "/static/site.css", true, "body{}\n"},
		{"link to a readable file", "/static/linked.css", true, "linked{}\n"},
		{"linked readable dir", "/static/src/linked.css", true, "linked{}\n"},
		{"link to a root-only file", "/static/secret.txt", false, ""},
		{"linked root-only dir", "/static/private/token", false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, c, "http://"+listen+tt.path)
			if a.leaked(body) {
				t.Fatalf("GET %s served the root-only secret (%d)", tt.path, resp.StatusCode)
			}
			if tt.ok && (resp.StatusCode != 200 || body != tt.body) {
				t.Errorf("GET %s: %d %q, want 200 %q", tt.path, resp.StatusCode, body, tt.body)
			}
			if !tt.ok && resp.StatusCode != 403 && resp.StatusCode != 404 {
				t.Errorf("GET %s: %d, want 403 or 404", tt.path, resp.StatusCode)
			}
		})
	}
	if n := up.served.Load(); n != 0 {
		t.Errorf("the upstream got %d requests for static paths", n)
	}
}

// TestErrorPageAsAppUser: an error page the app's user writes is served
// byte for byte, Caddy placeholders and all, and one it links to a
// root-only file is refused when the config is applied.
func TestErrorPageAsAppUser(t *testing.T) {
	a := newApp(t)
	zero := time.Duration(0)
	down := freeAddr(t) // nothing listens: 502 and the error page

	t.Run("placeholders served literally", func(t *testing.T) {
		page := filepath.Join(a.dir, "500.html")
		text := "<p>{file." + a.secret + "} {env.HOME} {http.request.uri} {http.request.header.Cookie}</p>\n"
		a.as(t, "sh", "-c", `printf '%s' "$2" > "$1"`, "sh", page, text)
		listen := freeAddr(t)
		startProxy(t, Config{Listen: listen, Upstream: down, RetryFor: &zero, ErrorPage: page})
		resp, body := get(t, client(), "http://"+listen+"/some/uri", "Cookie", "session=abc")
		if resp.StatusCode != 502 || body != text {
			t.Errorf("got %d %q, want 502 and the page as written, %q", resp.StatusCode, body, text)
		}
	})

	t.Run("link to a root-only file", func(t *testing.T) {
		page := filepath.Join(a.dir, "503.html")
		a.as(t, "ln", "-s", a.secret, page)
		listen := freeAddr(t)
		cfg := Config{Listen: listen, Upstream: down, RetryFor: &zero, ErrorPage: page}
		p := New(Options{StateDir: t.TempDir()})
		err := p.Apply(cfg)
		if err == nil {
			defer p.Stop()
			_, body := get(t, client(), "http://"+listen+"/")
			if a.leaked(body) {
				t.Fatalf("the error page served the root-only secret")
			}
			t.Fatalf("Apply accepted an error page the file user cannot read")
		}
		if !strings.Contains(err.Error(), "proxy.error_page") || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("Apply: %v, want a proxy.error_page error saying permission denied", err)
		}
		errs := cfg.Validate("proxy")
		if len(errs) == 0 || !strings.Contains(errors.Join(errs...).Error(), "proxy.error_page") {
			t.Errorf("Validate: %v, want a proxy.error_page error", errs)
		}
	})
}

// TestStaticDirUnreadableWarns: a static dir the file user cannot read
// (every file would get 403) is said so in the log when the proxy starts.
func TestStaticDirUnreadableWarns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the file user is another user only then")
	}
	dir := t.TempDir() // 0700 root
	writeFile(t, dir, "site.css", "body{}")
	listen := freeAddr(t)
	h := startProxy(t, Config{Listen: listen, Upstream: freeAddr(t), Static: []Static{{Path: "/static/", Dir: dir}}})
	if n := h.logs.FilterMessageSnippet("not readable by the file user").Len(); n == 0 {
		t.Errorf("no warning about the unreadable static dir; logs: %v", h.logs.All())
	}
	if resp, _ := get(t, client(), "http://"+listen+"/static/site.css"); resp.StatusCode != 403 {
		t.Errorf("a file in it: %d, want 403", resp.StatusCode)
	}
}
