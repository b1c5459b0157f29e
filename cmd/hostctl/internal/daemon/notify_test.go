package daemon

import (
	"slices"
	"strings"
	"testing"
)

// recorder is what systemd would receive.
type recorder struct{ got []string }

func (r *recorder) send(state string) { r.got = append(r.got, strings.ReplaceAll(state, "\n", " ")) }

// TestNotifierNoReadyAfterStopping: once STOPPING=1 is sent (a required
// program went FATAL while hostctl started, and the shutdown began), the
// first READY=1 is not sent, nor is the warning that goes with it, nor a
// reload's READY=1: systemd would be told that a stopping hostctl is
// ready. This race failed TestContainerRequiredFatal once in five runs
// beside stress-ng (READY=1 and "the proxy is not listening" after the
// shutdown had stopped the proxy).
func TestNotifierNoReadyAfterStopping(t *testing.T) {
	status := func() string { return "1 running, 1 fatal" }

	t.Run("stop before ready", func(t *testing.T) {
		var r recorder
		n := notifier{send: r.send}
		n.stop()
		warned := false
		if n.readyFirst(status, func() { warned = true }) {
			t.Error("readyFirst sent READY=1 after STOPPING=1")
		}
		if warned {
			t.Error("readyFirst ran its check (the proxy warning) after STOPPING=1")
		}
		n.reloading(1, status)()
		if want := []string{"STOPPING=1 STATUS=stopping programs"}; !slices.Equal(r.got, want) {
			t.Errorf("systemd got %q, want %q", r.got, want)
		}
	})

	t.Run("reload then stop", func(t *testing.T) {
		var r recorder
		n := notifier{send: r.send}
		if !n.readyFirst(status, func() {}) {
			t.Fatal("readyFirst did not send READY=1")
		}
		done := n.reloading(42, status)
		n.stop() // SIGTERM while the reload runs
		done()
		want := []string{"READY=1 STATUS=1 running, 1 fatal", "RELOADING=1 MONOTONIC_USEC=42", "STOPPING=1 STATUS=stopping programs"}
		if !slices.Equal(r.got, want) {
			t.Errorf("systemd got %q, want %q", r.got, want)
		}
	})

	t.Run("reload before ready", func(t *testing.T) {
		var r recorder
		n := notifier{send: r.send}
		n.reloading(7, status)()
		n.update("2 running, 0 fatal")
		n.update("2 running, 0 fatal")
		want := []string{"STATUS=2 running, 0 fatal"}
		if !slices.Equal(r.got, want) {
			t.Errorf("systemd got %q, want %q (no RELOADING/READY before the first READY=1; one STATUS per change)", r.got, want)
		}
	})
}
