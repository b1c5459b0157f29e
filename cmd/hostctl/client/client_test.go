package client

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientNotRunning: nothing at the socket is a *NotRunningError of one
// line naming it; the zero Client talks to the default socket.
func TestClientNotRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.sock")
	c := &Client{Socket: path}
	_, err := c.Programs(context.Background())
	var nr *NotRunningError
	if !errors.As(err, &nr) || nr.Addr != path {
		t.Fatalf("err = %v, want NotRunningError for %s", err, path)
	}
	if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), path) {
		t.Errorf("message %q: want one line naming the socket", err)
	}
	var zero Client
	if zero.Addr() != DefaultSocket {
		t.Errorf("zero Client talks to %s, want %s", zero.Addr(), DefaultSocket)
	}
}
