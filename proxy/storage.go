package proxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	// Caddy's storage module "redis" (caddy.storage.redis): certificates,
	// ACME accounts, the local CA and the locks around issuing them, in a
	// Redis server that several webservers share.
	_ "github.com/pberkel/caddy-storage-redis"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// redisLogger gets the Redis client's own log lines (failed dials, pool
// errors), which it would print to stderr: the Logger of the Proxy made
// last (there is one per process). The client's logger is process-global
// and read by its goroutines, so it is set once, here, and forwards.
var redisLogger atomic.Pointer[zap.Logger]

func init() { redis.SetLogger(redisLog{}) }

type redisLog struct{}

func (redisLog) Printf(_ context.Context, format string, v ...any) {
	if l := redisLogger.Load(); l != nil {
		l.Warn(strings.TrimSpace(fmt.Sprintf(format, v...)))
	}
}

// Storage types for Storage.Type.
const (
	StorageFile  = "file"  // a directory: <state_dir>/caddy, or Storage.Dir
	StorageRedis = "redis" // a Redis server (Storage.Address)
)

// Storage is [proxy.storage]: where the proxy keeps its certificates, ACME
// accounts and the local CA of tls = "internal", and the locks that make
// one webserver at a time issue or renew a certificate. Webservers that
// answer for the same host names (DNS round robin, a TCP load balancer in
// front) should share one storage, so that they ask the ACME CA for one
// certificate, not one each (Let's Encrypt's rate limits), and present
// certificates from the same local CA.
//
// The default is a directory of this host, as if
//
//	[proxy.storage]
//	type = "file"
//	dir = "<state_dir>/caddy"
//
// A shared Redis server:
//
//	[proxy.storage]
//	type = "redis"
//	address = "10.0.0.5:6379"
//	password_file = "/etc/hostctl/redis.password"
type Storage struct {
	// Type is "file" (a directory) or "redis" (a Redis server). Default
	// "file".
	Type string `toml:"type"`

	// Dir (file) is the directory. A directory on a mount that every
	// webserver shares (NFS, for example) works too: locks are files in
	// it, refreshed while held and taken over once stale (about 10 s).
	// Default <state_dir>/caddy.
	Dir string `toml:"dir"`

	// Address (redis) is the server as host:port ("10.0.0.5:6379").
	// Required with type = "redis". (Unix sockets are not supported by
	// the storage module.)
	Address string `toml:"address"`

	// Username (redis) is the ACL user to log in as. Default empty (the
	// default user, or no login).
	Username string `toml:"username"`

	// PasswordFile (redis) is a file holding the password (requirepass,
	// or the ACL user's); surrounding white space is ignored. The password
	// itself never goes in hostctl.toml. Default empty (no password).
	PasswordFile string `toml:"password_file" trust:"secret"`

	// DB (redis) is the database number. Default 0.
	DB int `toml:"db"`

	// KeyPrefix (redis) is put in front of every key ("hostctl/certificates/...")
	// so that the server can hold other data too. Segments separated by
	// "/", none empty, "." or "..". Default "hostctl".
	KeyPrefix string `toml:"key_prefix"`

	// Timeout (redis) bounds connecting and each read and write, in whole
	// seconds. An unreachable server makes the proxy's start (or reload)
	// fail after about this long. Default 5s.
	Timeout time.Duration `toml:"timeout"`

	// TLS (redis) connects to the server with TLS (Redis's tls-port),
	// verifying its certificate. Required for a server that is not on
	// this host (an address other than localhost or a loopback IP): the
	// storage carries the sites' private keys and the local CA's key.
	// Default false.
	TLS bool `toml:"tls"`

	// Insecure (redis) allows a server that is not on this host without
	// TLS: private keys then cross the network in clear (readable, and
	// replaceable, by anyone on the path). Only for a network that is
	// itself private and trusted; prefer tls, and encryption_key_file.
	// Default false.
	Insecure bool `toml:"insecure"`

	// TLSCAFile (redis, with tls) is a PEM file of the root certificates
	// that the server's certificate must chain to. Default: the system's
	// roots.
	TLSCAFile string `toml:"tls_ca_file" trust:"config"`

	// EncryptionKeyFile (redis) is a file holding a key of at least 32
	// characters (the first 32 are used): every value, private keys
	// included, is then encrypted (AES-GCM) before it is stored, so the
	// Redis server and its backups never hold them in clear. Every
	// webserver sharing the storage needs the same key. Default empty
	// (values stored as they are).
	EncryptionKeyFile string `toml:"encryption_key_file" trust:"secret"`
}

const (
	defaultRedisKeyPrefix = "hostctl"
	defaultRedisTimeout   = 5 * time.Second
)

// withDefaults returns s with Type, KeyPrefix and Timeout set.
func (s Storage) withDefaults() Storage {
	if s.Type == "" {
		s.Type = StorageFile
	}
	if s.Type == StorageRedis {
		if s.KeyPrefix == "" {
			s.KeyPrefix = defaultRedisKeyPrefix
		}
		if s.Timeout == 0 {
			s.Timeout = defaultRedisTimeout
		}
	}
	return s
}

// check checks [proxy.storage]: keys that belong to the type, a readable
// file for every *_file key, a host:port address.
func (s *Storage) check(fe *fieldErrors) {
	const key = ".storage"
	redisOnly := []struct {
		name string
		set  bool
	}{
		{"address", s.Address != ""}, {"username", s.Username != ""},
		{"password_file", s.PasswordFile != ""}, {"db", s.DB != 0},
		{"key_prefix", s.KeyPrefix != ""}, {"timeout", s.Timeout != 0},
		{"tls", s.TLS}, {"tls_ca_file", s.TLSCAFile != ""}, {"insecure", s.Insecure},
		{"encryption_key_file", s.EncryptionKeyFile != ""},
	}
	switch s.Type {
	case StorageFile:
		for _, k := range redisOnly {
			if k.set {
				fe.add(key+"."+k.name, "applies only to type = \"redis\"")
			}
		}
		if s.Dir != "" && !filepath.IsAbs(s.Dir) {
			fe.add(key+".dir", "%q must be an absolute path", s.Dir)
		}
	case StorageRedis:
		if s.Dir != "" {
			fe.add(key+".dir", "applies only to type = \"file\"")
		}
		s.checkRedis(fe)
	default:
		fe.add(key+".type", "%q is not one of \"file\", \"redis\"", s.Type)
	}
}

// checkRedis checks the keys of type = "redis"; s has its defaults.
func (s *Storage) checkRedis(fe *fieldErrors) {
	const key = ".storage"
	if s.Address == "" {
		fe.add(key+".address", "required with type = \"redis\": the server as host:port (for example \"10.0.0.5:6379\")")
	} else if host, port, err := net.SplitHostPort(s.Address); err != nil || host == "" {
		fe.add(key+".address", "%q is not host:port (for example \"10.0.0.5:6379\"; unix sockets are not supported)", s.Address)
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		fe.add(key+".address", "port %q is not a number from 1 to 65535", port)
	} else if !s.TLS && !s.Insecure && !isLoopback(host) {
		fe.add(key+".tls", "the redis server %s is not on this host, and the storage holds the sites' private keys and the local CA's key: "+
			"set tls = true (its tls-port; tls_ca_file for a private CA), or insecure = true to send them in clear over a network you trust", s.Address)
	}
	if s.Insecure && s.TLS {
		fe.add(key+".insecure", "applies only without tls (it allows a remote server without TLS)")
	}
	if s.DB < 0 {
		fe.add(key+".db", "must not be negative")
	}
	if err := checkKeyPrefix(s.KeyPrefix); err != nil {
		fe.add(key+".key_prefix", "%v", err)
	}
	if s.Timeout < time.Second || s.Timeout%time.Second != 0 {
		fe.add(key+".timeout", "%s must be whole seconds, at least \"1s\"", s.Timeout)
	}
	if s.PasswordFile != "" {
		if _, err := readSecret(s.PasswordFile); err != nil {
			fe.add(key+".password_file", "%v", err)
		}
	}
	if s.EncryptionKeyFile != "" {
		if k, err := readSecret(s.EncryptionKeyFile); err != nil {
			fe.add(key+".encryption_key_file", "%v", err)
		} else if len(k) < 32 {
			fe.add(key+".encryption_key_file", "%q holds %d characters; the key needs at least 32 (e.g. openssl rand -hex 16 > FILE)", s.EncryptionKeyFile, len(k))
		}
	}
	if s.TLSCAFile != "" {
		if !s.TLS {
			fe.add(key+".tls_ca_file", "applies only with tls = true")
		} else if err := checkPEMCerts(s.TLSCAFile); err != nil {
			fe.add(key+".tls_ca_file", "%v", err)
		}
	}
}

// isLoopback reports whether host is this host: "localhost" or a loopback
// IP address. A name that resolves to one is not trusted to keep doing so.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// checkKeyPrefix checks a Redis key prefix as the storage module does
// (which would otherwise fail only when the proxy starts).
func checkKeyPrefix(p string) error {
	for _, seg := range strings.Split(strings.Trim(p, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%q: segments separated by \"/\" must not be empty, \".\" or \"..\"", p)
		}
	}
	return nil
}

// readSecret returns the contents of path without surrounding white
// space; an empty file is an error, and so is one that another user owns
// or can write (trust.ReadFile).
func readSecret(path string) (string, error) {
	b, err := readTrusted(path, true)
	if err != nil {
		return "", readError(err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%q is empty", path)
	}
	return v, nil
}

// fileDir is the directory of a file storage: Dir, else def (the state
// dir's caddy/).
func (s Storage) fileDir(def string) string {
	if s.Dir != "" {
		return s.Dir
	}
	return def
}

// storageJSON is the Caddy storage module for s, which has its defaults:
// file_system at fileDir(defaultDir), or redis. It is nil for a file
// storage without a directory (CaddyJSON, which has no state dir). The
// redis password and encryption key are read from their files only with
// secrets: CaddyJSON leaves them out.
//
// It is a map, not the modules' structs (filestorage.FileStorage,
// caddy-storage-redis's RedisStorage): none of RedisStorage's fields is
// omitempty, so from it the config would carry all 19 of them, empty
// password, sentinel and cluster settings included, instead of the ones
// hostctl sets; and one shape for both storages keeps this one function.
func (s Storage) storageJSON(defaultDir string, secrets bool) (map[string]any, error) {
	if s.Type != StorageRedis {
		dir := s.fileDir(defaultDir)
		if dir == "" {
			return nil, nil
		}
		return map[string]any{"module": "file_system", "root": dir}, nil
	}
	// The module expands Caddy placeholders ({env.X}, {file.PATH}) in
	// its string values; these are taken as written.
	st := map[string]any{
		"module":      "redis",
		"address":     []string{escapeBraces(s.Address)},
		"db":          s.DB,
		"key_prefix":  escapeBraces(s.KeyPrefix),
		"timeout":     strconv.Itoa(int(s.Timeout / time.Second)),
		"tls_enabled": s.TLS,
	}
	if s.Username != "" {
		st["username"] = escapeBraces(s.Username)
	}
	if s.TLSCAFile != "" {
		st["tls_server_certs_path"] = escapeBraces(s.TLSCAFile)
	}
	if !secrets {
		return st, nil
	}
	for _, sec := range []struct{ file, field, key string }{
		{s.PasswordFile, "password", "proxy.storage.password_file"},
		{s.EncryptionKeyFile, "encryption_key", "proxy.storage.encryption_key_file"},
	} {
		if sec.file == "" {
			continue
		}
		v, err := readSecret(sec.file)
		if err != nil {
			return nil, &FieldError{Key: sec.key, Msg: err.Error()}
		}
		st[sec.field] = escapeBraces(v)
	}
	return st, nil
}

// escapeBraces escapes { and } for Caddy's placeholder replacer, which
// turns "\{" back into "{" (and an unknown "{x}" into nothing).
func escapeBraces(v string) string {
	return strings.NewReplacer("{", `\{`, "}", `\}`).Replace(v)
}

// storageError says which storage failed when Caddy could not set it up
// (caddy.Load's error says only "loading storage module: ..."), and what
// to check.
func storageError(cc *Config, err error) error {
	msg := err.Error()
	if cc.Storage.Type != StorageRedis || !strings.Contains(msg, "loading storage module") {
		return err
	}
	// The module's own error, without Caddy's (and hostctl_ca_lock's)
	// "loading storage module: loading module ...: provision ..." chain.
	const mod = "provision caddy.storage.redis: "
	if i := strings.LastIndex(msg, mod); i >= 0 {
		msg = msg[i+len(mod):]
	}
	return &FieldError{Key: "proxy.storage", Msg: fmt.Sprintf(
		"cannot use the redis server at %s (is it running and reachable, and do password_file and tls match it?): %s",
		cc.Storage.Address, msg)}
}
