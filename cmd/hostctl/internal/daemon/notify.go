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
//	stop     STOPPING=1; no READY=1 after it (a start or a reload that
//	         ends after the stop began says nothing)
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

// notifier is what systemd was told, and the one place that decides what
// it may be told next: READY=1 never follows STOPPING=1. (A required
// program that goes FATAL while hostctl starts cancels the start: the
// shutdown's STOPPING=1 may then race the first READY=1, and systemd would
// be told that a stopping hostctl is ready.)
type notifier struct {
	mu       sync.Mutex // guards the fields below; held while a message is sent, so they go out in order
	send     func(state string)
	ready    bool   // READY=1 was sent
	stopping bool   // STOPPING=1 was sent: no READY=1 after it
	status   string // last STATUS= sent
}

// readyFirst sends the first READY=1 with STATUS=status(), unless hostctl
// is stopping already; before runs first, under the same lock (a warning
// that must not be logged once the stop has begun). It reports whether
// READY=1 was sent.
func (n *notifier) readyFirst(status func() string, before func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopping {
		return false
	}
	before()
	n.ready = true
	n.status = status()
	n.send("READY=1\nSTATUS=" + n.status)
	return true
}

// last is the last STATUS= sent.
func (n *notifier) last() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status
}

// update sends STATUS=line if it changed.
func (n *notifier) update(line string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if line != n.status {
		n.status = line
		n.send("STATUS=" + line)
	}
}

// reloading sends RELOADING=1 and returns what sends READY=1 when the
// reload is over. Before the first READY=1 both do nothing (a reload's
// READY=1 must not announce readiness early), and after STOPPING=1 the
// second does nothing.
func (n *notifier) reloading(monotonicUsec int64, status func() string) (done func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.ready || n.stopping {
		return func() {}
	}
	n.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec))
	return func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.stopping {
			return
		}
		n.status = status()
		n.send("READY=1\nSTATUS=" + n.status)
	}
}

// stop sends STOPPING=1: hostctl is stopping its programs.
func (n *notifier) stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopping = true
	n.status = "stopping programs"
	n.send("STOPPING=1\nSTATUS=" + n.status)
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
	sent := d.notify.readyFirst(d.statusLine, func() {
		if !d.proxyReady() {
			d.log.Warn("the proxy is not listening; telling systemd READY=1 anyway")
		}
	})
	if !sent {
		return // hostctl is stopping (a required program went FATAL as it started)
	}
	d.log.Info("ready", zap.String("status", d.notify.last()))

	for {
		ch := d.sup.Changed()
		d.notify.update(d.statusLine())
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
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return d.notify.reloading(ts.Nano()/1000, d.statusLine)
}

// notifyStopping tells systemd that hostctl is stopping its programs.
func (d *Daemon) notifyStopping() { d.notify.stop() }

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
