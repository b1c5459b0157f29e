package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestAdminTCP: the keys of [admin] listen, each problem at its key: a
// plain-HTTP listener on the network needs insecure = true, TLS keys go
// together, and a read-only token must be another one than the admin's.
func TestAdminTCP(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	admin := write("admin.token", "admin-token-0123456789\n")
	read := write("read.token", "read-token-0123456789\n")
	same := write("same.token", "admin-token-0123456789")
	short := write("short.token", "short\n")
	for _, tc := range []struct {
		name, keys string
		errKeys    []string
		names      []string
	}{
		{"loopback", `listen = "127.0.0.1:9001"`, nil, nil},
		{"localhost", `listen = "localhost:9001"`, nil, nil},
		{"read-only token and names", fmt.Sprintf("listen = \"127.0.0.1:9001\"\nread_token_file = %q\nnames = [\"web1.example.org\", \"web1\"]", read), nil, []string{"web1.example.org", "web1"}},
		{"all interfaces", `listen = ":9001"`, []string{"admin.listen"}, nil},
		{"an address on the network", `listen = "10.0.0.11:9001"`, []string{"admin.listen"}, nil},
		{"insecure", "listen = \"10.0.0.11:9001\"\ninsecure = true", nil, nil},
		{"internal TLS", "listen = \"0.0.0.0:9001\"\ntls = \"internal\"", nil, nil},
		{"not host:port", `listen = "9001"`, []string{"admin.listen"}, nil},
		{"unknown tls", "listen = \"127.0.0.1:9001\"\ntls = \"acme\"", []string{"admin.tls"}, nil},
		{"cert without key", "listen = \"127.0.0.1:9001\"\ncert_file = \"/nope.crt\"", []string{"admin.cert_file"}, nil},
		{"cert that does not load", fmt.Sprintf("listen = \"127.0.0.1:9001\"\ncert_file = %q\nkey_file = %q", admin, admin), []string{"admin.cert_file"}, nil},
		{"internal and files", "listen = \"127.0.0.1:9001\"\ntls = \"internal\"\ncert_file = \"/a\"\nkey_file = \"/b\"", []string{"admin.tls"}, nil},
		{"TLS without listen", "tls = \"internal\"", []string{"admin.tls"}, nil},
		{"read-only token is the admin's", fmt.Sprintf("listen = \"127.0.0.1:9001\"\nread_token_file = %q", same), []string{"admin.read_token_file"}, nil},
		{"short read-only token", fmt.Sprintf("listen = \"127.0.0.1:9001\"\nread_token_file = %q", short), []string{"admin.read_token_file"}, nil},
		{"a name with a port", "listen = \"127.0.0.1:9001\"\nnames = [\"web1:9001\"]", []string{"admin.names"}, nil},
		{"names not a list", "listen = \"127.0.0.1:9001\"\nnames = \"web1\"", []string{"admin.names"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := fmt.Sprintf("[admin]\nsocket = \"/run/x.sock\"\ntoken_file = %q\n%s\n", admin, tc.keys)
			f, err := Parse("a.toml", []byte(src))
			var keys []string
			if es, ok := err.(Errors); ok {
				for _, e := range es {
					keys = append(keys, e.Key)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(keys, tc.errKeys) {
				t.Fatalf("error keys %q, want %q: %v", keys, tc.errKeys, err)
			}
			if err == nil && !slices.Equal(f.Admin.Names.List(), tc.names) {
				t.Errorf("names %q, want %q", f.Admin.Names.List(), tc.names)
			}
			if strings.Contains(tc.name, "network") && !strings.Contains(err.Error(), "insecure = true") {
				t.Errorf("the refusal does not say what to do: %v", err)
			}
		})
	}
}
