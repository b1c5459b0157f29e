package proxy

import (
	"sync"
	"testing"

	"go.uber.org/zap"
)

// TestValidateWhileApplying: Caddy's state is process-global, and
// caddy.Validate sets up logging and tears down a TLS app like caddy.Load
// does. hostctl validates a reloaded config (config.Load) in the admin
// API's goroutine while the proxy's owner may be starting or stopping
// Caddy: both at once must be safe (go test -race tells).
func TestValidateWhileApplying(t *testing.T) {
	p := New(Options{Logger: zap.NewNop(), StateDir: t.TempDir()})
	t.Cleanup(func() { p.Stop() })
	cfg := Config{Listen: freeAddr(t), Upstream: freeAddr(t)}
	check := Config{Listen: freeAddr(t), Upstream: freeAddr(t)}
	const rounds = 5
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range rounds {
			if err := p.Apply(cfg); err != nil {
				t.Errorf("Apply: %v", err)
				return
			}
			if err := p.Stop(); err != nil {
				t.Errorf("Stop: %v", err)
				return
			}
		}
	}()
	for range 2 * rounds {
		if errs := check.Validate("proxy"); len(errs) > 0 {
			t.Errorf("Validate: %v", errs)
		}
	}
	wg.Wait()
}
