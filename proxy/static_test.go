package proxy

import (
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestStaticFilesHandler checks hostctl_static directly, without Caddy:
// what it serves, what it refuses, and with which status.
func TestStaticFilesHandler(t *testing.T) {
	root := publicDir(t)
	outside := publicDir(t)
	writeFile(t, root, "app.js", "console.log(1)\n")
	writeFile(t, root, "app.js.br", "BR")
	writeFile(t, root, "app.js.gz", "GZ")
	writeFile(t, root, "plain.txt", "0123456789")
	writeFile(t, outside, "secret", "secret")
	private := writeFile(t, outside, "private", "private")
	os.Chmod(private, 0o600)
	os.Mkdir(filepath.Join(root, "sub"), 0o755)
	writeFile(t, filepath.Join(root, "sub"), "index.html", "index")
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "linked"))
	os.Symlink(private, filepath.Join(root, "private"))
	os.Symlink("/proc/self/maps", filepath.Join(root, "maps"))
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o666); err != nil {
		t.Fatal(err)
	}
	h := &StaticFiles{Root: root, Precompressed: []string{"br", "zstd", "gzip"}}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := h.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	defer h.Cleanup()

	tests := []struct {
		name, method, path string
		header             []string // name, value pairs
		status             int
		body, encoding     string
	}{
		{"file", "GET", "/plain.txt", nil, 200, "0123456789", ""},
		{"head", "HEAD", "/plain.txt", nil, 200, "", ""},
		{"range", "GET", "/plain.txt", []string{"Range", "bytes=2-4"}, 206, "234", ""},
		{"brotli preferred", "GET", "/app.js", []string{"Accept-Encoding", "gzip, br"}, 200, "BR", "br"},
		{"gzip only", "GET", "/app.js", []string{"Accept-Encoding", "gzip"}, 200, "GZ", "gzip"},
		{"identity", "GET", "/app.js", nil, 200, "console.log(1)\n", ""},
		{"missing", "GET", "/nope", nil, 404, "", ""},
		{"directory, no index", "GET", "/sub/", nil, 404, "", ""},
		{"dot-dot stays under root", "GET", "/../" + filepath.Base(outside) + "/secret", nil, 404, "", ""},
		{"symlink followed", "GET", "/linked", nil, 200, "secret", ""},
		{"symlink to a file the file user may not read", "GET", "/private", nil, 403, "", ""},
		{"/proc/self is refused", "GET", "/maps", nil, 403, "", ""},
		{"a FIFO is not a file (and open does not wait for a writer)", "GET", "/fifo", nil, 404, "", ""},
		{"post", "POST", "/plain.txt", nil, 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/", nil)
			r.URL.Path = tt.path // unclean on purpose
			for i := 0; i+1 < len(tt.header); i += 2 {
				r.Header.Set(tt.header[i], tt.header[i+1])
			}
			w := httptest.NewRecorder()
			status := 200
			if err := h.ServeHTTP(w, r, nil); err != nil {
				var he caddyhttp.HandlerError
				if !errors.As(err, &he) {
					t.Fatalf("error %v is not a caddyhttp.HandlerError", err)
				}
				status = he.StatusCode
			} else {
				status = w.Code
			}
			if status != tt.status || (status < 300 && w.Body.String() != tt.body) {
				t.Errorf("%s %s: %d %q, want %d %q", tt.method, tt.path, status, w.Body.String(), tt.status, tt.body)
			}
			if got := w.Header().Get("Content-Encoding"); got != tt.encoding {
				t.Errorf("Content-Encoding %q, want %q", got, tt.encoding)
			}
			if status == 200 && tt.path == "/app.js" {
				if ct := w.Header().Get("Content-Type"); !strings.Contains(ct, "javascript") {
					t.Errorf("Content-Type %q, want the .js type", ct)
				}
				if w.Header().Get("Vary") != "Accept-Encoding" {
					t.Errorf("Vary %q", w.Header().Get("Vary"))
				}
			}
		})
	}
	if err := (&StaticFiles{Root: root, Precompressed: []string{"deflate"}}).Validate(); err == nil {
		t.Error("precompressed deflate accepted")
	}
}

// TestCaddyfileNotBuiltIn checks that a Caddyfile directive whose module
// hostctl leaves out fails with an error that names it and says so, not
// as an unknown directive.
func TestCaddyfileNotBuiltIn(t *testing.T) {
	dir := t.TempDir()
	for name := range notBuiltIn {
		t.Run(name, func(t *testing.T) {
			cf := writeFile(t, dir, name+".caddy", ":80 {\n\troute {\n\t\t"+name+"\n\t}\n}\n")
			errs := (&Config{Upstream: "127.0.0.1:1", Caddyfile: cf}).Validate("proxy")
			err := errors.Join(errs...)
			want := "directive " + name + " is not built into hostctl"
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "proxy.caddyfile") ||
				!strings.Contains(err.Error(), cf+":3") {
				t.Errorf("got %v, want a proxy.caddyfile error containing %q and the file and line", err, want)
			}
		})
	}
}
