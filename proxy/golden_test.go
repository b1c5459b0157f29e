package proxy

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json from the generated configs")

// goldenConfigs are example configurations; testdata/<name>.json holds the
// Caddy config each generates (review a change there like code).
func goldenConfigs() map[string]Config {
	static := "/srv/app/static" // not read by CaddyJSON
	return map[string]Config{
		"simple": {Listen: "127.0.0.1:8080", Upstream: "127.0.0.1:8000"},
		"unix_static_maintenance": {
			Listen: ":80", Upstream: "unix:/run/app/gunicorn.sock",
			Static:      []Static{{Path: "/static/", Dir: static}, {Path: "/media/", Dir: "/srv/app/media", MaxAge: ptr(time.Duration(0))}},
			Maintenance: true, Allow: []string{"192.0.2.10", "10.0.0.0/8"},
		},
		"sites_tls": {
			Email: "ops@example.com", Upstream: "127.0.0.1:8000", HTTP3: true,
			Sites: []Site{
				{Hosts: []string{"example.com", "www.example.com"}},
				{Hosts: []string{"staging.internal"}, TLS: TLSInternal},
				{Hosts: []string{"legacy.example.net"}, TLS: TLSOff, Upstream: "127.0.0.1:9000"},
			},
		},
		"acme_private_ca": {
			Listen: ":8080", ListenTLS: ":8443", Hosts: []string{"app.example.com"}, Upstream: "127.0.0.1:8000",
			Email: "ops@example.com", ACMECA: "https://ca.internal:9000/acme/acme/directory", ACMECARoot: "/etc/hostctl/ca-root.pem",
		},
		"redis_storage": {
			Listen: ":80", ListenTLS: ":443", Hosts: []string{"app.example.com"}, Upstream: "127.0.0.1:8000",
			Storage: Storage{Type: StorageRedis, Address: "10.0.0.5:6379", PasswordFile: "/etc/hostctl/redis.password", DB: 1, TLS: true},
		},
		"balanced": {
			Listen: ":8080", UpstreamList: []string{"10.0.0.1:8000", "10.0.0.2:8000"},
			Hosts: []string{"app.lan"}, RetryFor: ptr(2 * time.Second), UpstreamKeepAlive: true,
			Health:         Health{Path: "/healthz", Status: 200, Interval: 2 * time.Second},
			TrustedProxies: []string{"10.0.0.0/8"},
		},
	}
}

func TestGoldenCaddyJSON(t *testing.T) {
	for name, cfg := range goldenConfigs() {
		t.Run(name, func(t *testing.T) {
			// CaddyJSON does not stat static dirs; validateFields does, so
			// compare through build directly.
			obj, err := cfg.build(buildEnv{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(obj, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run Golden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("generated config differs from %s (run go test -run Golden -update and review the diff)", path)
			}
		})
	}
}

// FuzzValidate feeds arbitrary values into the string fields: validation
// must not panic, and a config it accepts must generate Caddy JSON.
func FuzzValidate(f *testing.F) {
	for _, cfg := range goldenConfigs() {
		f.Add(cfg.Listen, cfg.Upstream, strings.Join(cfg.Hosts, " "), cfg.TLS, strings.Join(cfg.Allow, " "), "/static/", cfg.ACMECA)
	}
	f.Add("[::1]:80", "unix://run/x.sock", "a.b c.d", "internal", "::1 fe80::/10", "static", "https://[::1]:14000/dir")
	f.Fuzz(func(t *testing.T, listen, upstream, hosts, tlsMode, allow, staticPath, acmeCA string) {
		cfg := Config{
			Listen: listen, Upstream: upstream, Hosts: strings.Fields(hosts), TLS: tlsMode,
			Allow: strings.Fields(allow), Static: []Static{{Path: staticPath, Dir: "."}}, ACMECA: acmeCA,
		}
		errs := cfg.validateFields("proxy")
		js, err := cfg.CaddyJSON()
		if len(errs) == 0 && err != nil {
			t.Fatalf("fields valid but CaddyJSON failed: %v", err)
		}
		if len(errs) > 0 && err == nil {
			t.Fatalf("fields invalid (%v) but CaddyJSON succeeded", errs)
		}
		if err == nil && !json.Valid(js) {
			t.Fatalf("CaddyJSON is not JSON")
		}
	})
}
