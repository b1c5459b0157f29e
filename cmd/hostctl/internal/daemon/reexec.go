package daemon

import (
	"os"
	"strings"
	"syscall"
)

// notifyStash carries NOTIFY_SOCKET across the re-exec below.
const notifyStash = "HOSTCTL_NOTIFY_SOCKET"

// HideNotifySocketFromCaddy makes hostctl the only one to talk to systemd.
//
// Caddy's notify package reads NOTIFY_SOCKET once, at package init, and
// every caddy.Load then sends RELOADING=1 and READY=1 to it: systemd would
// take hostctl as ready whenever the proxy loads, before the programs are.
// Unsetting the variable in main is too late, so when it is set, hostctl
// re-executes itself (same pid, so systemd's MainPID is unchanged) with the
// socket stashed under another name; in the second run Caddy sees none, and
// this function puts NOTIFY_SOCKET back for hostctl's own sd_notify. It
// returns only if the exec failed (then Caddy's messages go through too).
// main calls it first thing.
func HideNotifySocketFromCaddy() {
	if v, ok := os.LookupEnv(notifyStash); ok {
		os.Unsetenv(notifyStash)
		os.Setenv("NOTIFY_SOCKET", v)
		return
	}
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return
	}
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			env = append(env, kv)
		}
	}
	env = append(env, notifyStash+"="+sock)
	syscall.Exec("/proc/self/exe", os.Args, env)
}
