package proxy

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestReadTrusted: the proxy asks ReadTrusted, the rule of the program
// that embeds it, about the Caddyfile and error pages. Without a rule
// (nil) it reads the Caddyfile as it is and every error page as the file
// user. hostctl's own rule is attacked as a real user where hostctl sets
// it: cmd/hostctl/config/proxytrust_test.go.
func TestReadTrusted(t *testing.T) {
	dir := t.TempDir() // 0700, root's: the file user cannot look in
	caddyfile := writeFile(t, dir, "Caddyfile", ":80 {\n\trespond /x 200\n}\n")
	page := writeFile(t, dir, "error.html", "<p>root's page</p>")
	accept := func(path string, secret bool) ([]byte, error) {
		if secret {
			return nil, errors.New("asked about a secret")
		}
		return os.ReadFile(path)
	}
	refuse := func(string, bool) ([]byte, error) { return nil, errors.New("refused by the test's rule") }
	for _, tt := range []struct {
		name           string
		rule           func(string, bool) ([]byte, error)
		caddyfileErr   string // in the Caddyfile's error; "": none
		pageReadAsRoot bool   // the page is read, though the file user cannot
	}{
		{"no rule", nil, "", false},
		{"rule accepts", accept, "", true},
		{"rule refuses", refuse, "proxy.caddyfile: refused: refused by the test's rule", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func(old func(string, bool) ([]byte, error)) { ReadTrusted = old }(ReadTrusted)
			ReadTrusted = tt.rule

			_, err := (&Config{Upstream: "127.0.0.1:1", Caddyfile: caddyfile}).CaddyJSON()
			if tt.caddyfileErr == "" && err != nil {
				t.Errorf("Caddyfile: %v", err)
			}
			if tt.caddyfileErr != "" && (err == nil || !strings.Contains(err.Error(), tt.caddyfileErr)) {
				t.Errorf("Caddyfile: %v, want an error with %q", err, tt.caddyfileErr)
			}

			if os.Geteuid() != 0 {
				return // the file user is hostctl's own user: it reads the page anyway
			}
			js, err := (&Config{Upstream: "127.0.0.1:1", ErrorPage: page}).CaddyJSON()
			switch {
			case tt.pageReadAsRoot && (err != nil || !strings.Contains(string(js), "root's page")):
				t.Errorf("error page in root's dir: %v, want it read as root", err)
			case !tt.pageReadAsRoot && (err == nil || !strings.Contains(err.Error(), "proxy.error_page") || !strings.Contains(err.Error(), "permission denied")):
				t.Errorf("error page in root's dir: %v, want it read as the file user, who may not", err)
			}
		})
	}
}
