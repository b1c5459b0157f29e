package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
)

// Caddy's local CA (tls = "internal") loads its root and intermediate
// from storage when it is provisioned, and generates and stores them when
// they are missing, without a lock: two webservers that start at the same
// moment on a new shared storage each generate a CA, and overwrite each
// other's files. One then fails to start (the intermediate's key it
// expects is gone) or serves a chain that leads to a root no longer in
// storage. Issuing certificates is locked by CertMagic; setting up the CA
// is not.
//
// So every config with a local CA that Apply loads has its storage
// wrapped in the module below, which takes a lock in that storage when it
// is provisioned, before any app (Caddy sets up the storage first), and
// holds it until caddy.Load has provisioned the pki app and returned:
// one webserver at a time sets up the CA, and the others load what it
// stored. The lock is CertMagic's (Redis: a key with a 5 s lease kept
// fresh while held; file system: a lock file, taken over once stale), so
// a webserver that dies holding it does not block the others for long.

func init() {
	caddy.RegisterModule(caLockStorage{})
}

// caLockName is the lock's name in storage, apart from CertMagic's own
// ("issue_cert_NAME", ...).
const caLockName = "hostctl_local_ca"

// caLockWait bounds the wait for the lock (another webserver holding it
// only sets up the CA: milliseconds; a stale lock of a dead one is taken
// over within seconds).
const caLockWait = time.Minute

// caLockStorage is the storage module "hostctl_ca_lock": the storage
// StorageRaw, locked at provisioning until Apply releases the lock by Key.
type caLockStorage struct {
	StorageRaw json.RawMessage `json:"storage" caddy:"namespace=caddy.storage inline_key=module"`
	Key        string          `json:"key"`

	storage certmagic.Storage
}

// CaddyModule returns the Caddy module information.
func (caLockStorage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.storage.hostctl_ca_lock",
		New: func() caddy.Module { return new(caLockStorage) },
	}
}

// Provision sets up the wrapped storage and takes the lock.
func (s *caLockStorage) Provision(ctx caddy.Context) error {
	val, err := ctx.LoadModule(s, "StorageRaw")
	if err != nil {
		return fmt.Errorf("loading storage module: %v", err)
	}
	s.storage, err = val.(caddy.StorageConverter).CertMagicStorage()
	if err != nil {
		return fmt.Errorf("loading storage module: %v", err)
	}
	lctx, cancel := context.WithTimeout(ctx, caLockWait)
	defer cancel()
	if err := s.storage.Lock(lctx, caLockName); err != nil {
		return fmt.Errorf("waiting for the lock %q in storage (held while a webserver sets up the local CA): %w", caLockName, err)
	}
	var once sync.Once
	caLocks.Store(s.Key, func() {
		once.Do(func() {
			// Not ctx: it is canceled when a failed load cleans up.
			uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s.storage.Unlock(uctx, caLockName)
		})
	})
	return nil
}

// CertMagicStorage returns the wrapped storage itself, so that its own
// optional interfaces stay visible to CertMagic.
func (s *caLockStorage) CertMagicStorage() (certmagic.Storage, error) { return s.storage, nil }

// Cleanup releases the lock if a failed load left it held.
func (s *caLockStorage) Cleanup() error {
	releaseCALock(s.Key)
	return nil
}

// caLocks maps a load's key to the release of its lock, while held.
var (
	caLocks   sync.Map // string -> func()
	caLockSeq atomic.Int64
)

func releaseCALock(key string) {
	if f, ok := caLocks.LoadAndDelete(key); ok {
		f.(func())()
	}
}

// withCALock wraps the storage of cfg in hostctl_ca_lock when it has a
// pki app (a local CA), and returns the key to release the lock with once
// caddy.Load has returned; "" and cfg as it was otherwise.
func withCALock(cfg *caddy.Config) string {
	if cfg.AppsRaw["pki"] == nil || cfg.StorageRaw == nil {
		return ""
	}
	key := strconv.FormatInt(caLockSeq.Add(1), 10)
	cfg.StorageRaw = moduleJSON(&caLockStorage{StorageRaw: cfg.StorageRaw, Key: key}, "module", "hostctl_ca_lock")
	return key
}
