package daemon

// Talking to systemd (Type=notify) through sd_notify.
//
// What systemd sees, in order; only hostctl talks to it. (caddy.Load would
// send RELOADING=1 and READY=1 on every load to the NOTIFY_SOCKET it read at
// package init; HideNotifySocketFromCaddy re-executes hostctl so that Caddy
// never sees the socket.)
//
//	start    READY=1 + STATUS=...   once every autostart program is RUNNING,
//	                                FATAL or EXITED and the proxy has started
//	                                (or failed to: status says why)
//	reload   RELOADING=1 + MONOTONIC_USEC, then READY=1 + STATUS=...
//	running  STATUS=... on every change of the summary (at most every 100 ms);
//	         WATCHDOG=1 every WATCHDOG_USEC/2 from the serve loop
//	stop     STOPPING=1
//
// A reload before the first READY=1 sends nothing, so that its READY=1
// cannot announce readiness early.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/hostctl/hostctl/supervisor"
)

// notifier remembers what was told to systemd.
type notifier struct {
	mu     sync.Mutex // guards ready and status
	ready  bool       // READY=1 was sent
	status string     // last STATUS= sent
}

// sdNotify sends one message; without NOTIFY_SOCKET it does nothing.
func (d *Daemon) sdNotify(state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		d.log.Warn("sd_notify failed", zap.String("state", strings.ReplaceAll(state, "\n", " ")), zap.Error(err))
	}
}

// statusLine is the one-line summary for STATUS=: "5 running, 0 fatal",
// then any other state that has programs ("1 starting").
func (d *Daemon) statusLine() string {
	sum := d.sup.Summary()
	parts := []string{fmt.Sprintf("%d running", sum[supervisor.Running]), fmt.Sprintf("%d fatal", sum[supervisor.Fatal])}
	for _, st := range []supervisor.State{supervisor.Starting, supervisor.Backoff, supervisor.Stopping, supervisor.Exited, supervisor.Stopped} {
		if n := sum[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(st.String())))
		}
	}
	return strings.Join(parts, ", ")
}

// notifyWhenReady sends READY=1 once the autostart programs have settled
// and the proxy's first start is over, then keeps STATUS= up to date until
// ctx ends.
func (d *Daemon) notifyWhenReady(ctx context.Context) {
	if err := d.sup.WaitSettled(ctx); err != nil {
		return
	}
	select {
	case <-d.proxy.Ready():
	case <-ctx.Done():
		return
	}
	if !d.proxyReady() {
		d.log.Warn("the proxy is not listening; telling systemd READY=1 anyway")
	}
	d.notify.mu.Lock()
	d.notify.ready = true
	line := d.statusLine()
	d.notify.status = line
	d.sdNotify("READY=1\nSTATUS=" + line)
	d.notify.mu.Unlock()
	d.log.Info("ready", zap.String("status", line))

	for {
		ch := d.sup.Changed()
		d.notify.mu.Lock()
		if line := d.statusLine(); line != d.notify.status {
			d.notify.status = line
			d.sdNotify("STATUS=" + line)
		}
		d.notify.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
		// Coalesce a burst of changes (500 programs starting) into one
		// message per 100ms at most.
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// notifyReloading sends RELOADING=1 and returns the function that sends
// READY=1 when the reload is over. Before the first READY=1 both do nothing.
func (d *Daemon) notifyReloading() (done func()) {
	d.notify.mu.Lock()
	ready := d.notify.ready
	d.notify.mu.Unlock()
	if !ready {
		return func() {}
	}
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	d.sdNotify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
	return func() {
		d.notify.mu.Lock()
		defer d.notify.mu.Unlock()
		d.notify.status = d.statusLine()
		d.sdNotify("READY=1\nSTATUS=" + d.notify.status)
	}
}

// notifyStopping tells systemd that hostctl is stopping its programs.
func (d *Daemon) notifyStopping() {
	d.sdNotify("STOPPING=1\nSTATUS=stopping programs")
}

// watchdog pings systemd's watchdog from the serve loop, so that pings stop
// when that loop is stuck.
type watchdog struct{ t *time.Ticker }

// startWatchdog returns a ticker at half of WATCHDOG_USEC, or a watchdog
// whose channel never fires when systemd set none.
func (d *Daemon) startWatchdog() *watchdog {
	iv, err := sd.SdWatchdogEnabled(false)
	if err != nil || iv <= 0 {
		return &watchdog{}
	}
	d.log.Info("systemd watchdog on", zap.Duration("interval", iv))
	return &watchdog{t: time.NewTicker(iv / 2)}
}

// c returns the channel of pings (nil, which blocks forever, when off).
func (w *watchdog) c() <-chan time.Time {
	if w.t == nil {
		return nil
	}
	return w.t.C
}

func (w *watchdog) stop() {
	if w.t != nil {
		w.t.Stop()
	}
}

// watchdogPing sends WATCHDOG=1 after checking that the supervisor still
// answers (its status snapshots are readable).
func (d *Daemon) watchdogPing() {
	d.sup.Summary()
	d.sdNotify("WATCHDOG=1")
}
