package proxy

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestValidateStorage(t *testing.T) {
	dir := t.TempDir()
	pass := writeFile(t, dir, "redis.password", "s3cret\n")
	empty := writeFile(t, dir, "empty", "\n")
	shortKey := writeFile(t, dir, "short.key", "0123456789\n")
	root, _ := writeServerCert(t, dir, "127.0.0.1")
	up := "127.0.0.1:1"
	tests := []struct {
		name    string
		storage Storage
		keys    []string // want exactly these error keys
		msg     string   // and this in the messages
	}{
		{"default", Storage{}, nil, ""},
		{"file dir", Storage{Type: "file", Dir: "/mnt/shared/caddy"}, nil, ""},
		{"relative dir", Storage{Dir: "caddy"}, []string{"proxy.storage.dir"}, "absolute path"},
		{"bad type", Storage{Type: "s3"}, []string{"proxy.storage.type"}, `"s3" is not one of "file", "redis"`},
		{"redis keys on file", Storage{Address: "127.0.0.1:6379", PasswordFile: pass},
			[]string{"proxy.storage.address", "proxy.storage.password_file"}, `applies only to type = "redis"`},
		{"redis", Storage{Type: "redis", Address: "10.0.0.5:6379", PasswordFile: pass, DB: 2, KeyPrefix: "site/certs", Timeout: 3 * time.Second, TLS: true}, nil, ""},
		{"redis on this host", Storage{Type: "redis", Address: "127.0.0.1:6379"}, nil, ""},
		{"redis on localhost", Storage{Type: "redis", Address: "localhost:6379"}, nil, ""},
		{"redis on ::1", Storage{Type: "redis", Address: "[::1]:6379"}, nil, ""},
		{"remote redis without tls", Storage{Type: "redis", Address: "10.0.0.5:6379"}, []string{"proxy.storage.tls"}, "set tls = true"},
		{"remote redis by name without tls", Storage{Type: "redis", Address: "redis.internal:6379"}, []string{"proxy.storage.tls"}, "private keys"},
		{"remote redis, insecure", Storage{Type: "redis", Address: "10.0.0.5:6379", Insecure: true}, nil, ""},
		{"insecure with tls", Storage{Type: "redis", Address: "10.0.0.5:6379", Insecure: true, TLS: true}, []string{"proxy.storage.insecure"}, "only without tls"},
		{"insecure on file", Storage{Insecure: true}, []string{"proxy.storage.insecure"}, `applies only to type = "redis"`},
		{"redis tls", Storage{Type: "redis", Address: "redis.internal:6380", TLS: true, TLSCAFile: root}, nil, ""},
		{"redis without address", Storage{Type: "redis"}, []string{"proxy.storage.address"}, "required"},
		{"redis unix socket", Storage{Type: "redis", Address: "/run/redis.sock"}, []string{"proxy.storage.address"}, "unix sockets are not supported"},
		{"redis bad port", Storage{Type: "redis", Address: "10.0.0.5:99999"}, []string{"proxy.storage.address"}, "port"},
		{"redis everything wrong", Storage{
			Type: "redis", Address: "10.0.0.5:6379", Dir: "/x", PasswordFile: filepath.Join(dir, "missing"),
			DB: -1, KeyPrefix: "a//b", Timeout: 1500 * time.Millisecond, TLSCAFile: root, EncryptionKeyFile: shortKey,
		}, []string{
			"proxy.storage.dir", "proxy.storage.tls", "proxy.storage.db", "proxy.storage.key_prefix", "proxy.storage.timeout",
			"proxy.storage.password_file", "proxy.storage.encryption_key_file", "proxy.storage.tls_ca_file",
		}, "needs at least 32"},
		{"redis empty password file", Storage{Type: "redis", Address: "10.0.0.5:6379", PasswordFile: empty, TLS: true}, []string{"proxy.storage.password_file"}, "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Upstream: up, Storage: tt.storage}
			errs := cfg.Validate("proxy")
			var keys []string
			for _, err := range errs {
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("%v is not a *FieldError", err)
				}
				keys = append(keys, fe.Key)
			}
			if strings.Join(keys, " ") != strings.Join(tt.keys, " ") {
				t.Errorf("error keys %q, want %q\n%v", keys, tt.keys, errors.Join(errs...))
			}
			if tt.msg != "" && !strings.Contains(errors.Join(errs...).Error(), tt.msg) {
				t.Errorf("errors do not say %q:\n%v", tt.msg, errors.Join(errs...))
			}
		})
	}
}

// TestStorageJSONSecrets checks that the Redis password and encryption
// key reach the config Apply loads, and that CaddyJSON leaves them out.
func TestStorageJSONSecrets(t *testing.T) {
	dir := t.TempDir()
	s := Storage{
		Type: "redis", Address: "10.0.0.5:6379", TLS: true,
		PasswordFile:      writeFile(t, dir, "pw", " p4ss{env.HOME}\n"),
		EncryptionKeyFile: writeFile(t, dir, "key", "0123456789abcdef0123456789abcdef\n"),
	}.withDefaults()
	got, err := s.storageJSON("/state/caddy", true)
	if err != nil {
		t.Fatal(err)
	}
	if got["password"] != `p4ss\{env.HOME\}` || got["encryption_key"] != "0123456789abcdef0123456789abcdef" ||
		got["key_prefix"] != "hostctl" || got["timeout"] != "5" {
		t.Errorf("storage for Apply = %v", got)
	}
	js, err := (&Config{Upstream: "127.0.0.1:1", Storage: s}).CaddyJSON()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), "p4ss") || strings.Contains(string(js), "0123456789abcdef") {
		t.Errorf("CaddyJSON has a secret: %s", js)
	}
	if !strings.Contains(string(js), `"module":"redis"`) {
		t.Errorf("CaddyJSON has no redis storage: %s", js)
	}
}

// TestRedisUnreachable: a proxy whose Redis storage does not answer fails
// to start, with an error that names the storage and the address; nothing
// listens afterwards. Both ways a server can be missing: a closed port
// (refused at once) and one that accepts connections but never answers
// (the storage's timeout ends the wait). How long Apply took is logged,
// not asserted (seconds of Caddy's start on a busy machine); that it
// returns at all is waited for, with a deadline no timeout comes near.
func TestRedisUnreachable(t *testing.T) {
	closed := freeAddr(t)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	for _, tt := range []struct {
		name, addr string
	}{
		{"refused", closed},
		{"silent", silent.Addr().String()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			listen := freeAddr(t)
			p := New(Options{Logger: zap.NewNop(), StateDir: t.TempDir()})
			cfg := Config{
				Listen: listen, ListenTLS: freeAddr(t), Hosts: []string{"shared.test"}, TLS: TLSInternal, Upstream: "127.0.0.1:1",
				Storage: Storage{Type: StorageRedis, Address: tt.addr, Timeout: time.Second},
			}
			t0 := time.Now()
			applied := make(chan error, 1)
			go func() { applied <- p.Apply(cfg) }()
			var err error
			select {
			case err = <-applied:
			case <-time.After(2 * time.Minute):
				t.Fatalf("Apply with redis %s still waits after 2 minutes (storage timeout %s)", tt.name, cfg.Storage.Timeout)
			}
			t.Logf("Apply with redis %s: %s: %v", tt.name, time.Since(t0).Round(time.Millisecond), err)
			if err == nil {
				p.Stop()
				t.Fatal("Apply succeeded without a reachable redis")
			}
			for _, want := range []string{"proxy.storage", tt.addr} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not name %q: %v", want, err)
				}
			}
			if c, err := net.Dial("tcp", listen); err == nil {
				c.Close()
				t.Errorf("%s accepts connections after the failed start", listen)
			}
		})
	}
}

// TestRemoteRedisWithoutTLSRefused: the storage carries private keys and
// the CA's key, so a proxy whose Redis is on another host and not behind
// TLS does not start (nor connect) unless insecure = true says so.
func TestRemoteRedisWithoutTLSRefused(t *testing.T) {
	cfg := Config{
		Listen: freeAddr(t), ListenTLS: freeAddr(t), Hosts: []string{"shared.test"}, TLS: TLSInternal, Upstream: "127.0.0.1:1",
		Storage: Storage{Type: StorageRedis, Address: "192.0.2.7:6379", Timeout: time.Second},
	}
	p := New(Options{Logger: zap.NewNop(), StateDir: t.TempDir()})
	err := p.Apply(cfg)
	if err == nil {
		p.Stop()
		t.Fatal("Apply started a proxy with a remote redis storage in clear")
	}
	for _, want := range []string{"proxy.storage.tls", "192.0.2.7:6379", "tls = true", "insecure = true"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Apply: %v\nwant it to say %q", err, want)
		}
	}
}
