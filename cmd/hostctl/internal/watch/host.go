package watch

// The host-level alert conditions, checked every check_interval by the
// watcher (programs.go):
//
//	host_memory     MemAvailable below memory_available_below
//	disk_free       a watched filesystem below disk_free_below
//	keep_free       [log] keep_free has paused log writing
//	upstreams_down  no upstream of a proxy site accepts a connection, two
//	                checks in a row (visitors see the error page)
//	tls_expiring    a certificate expires within tls_expires_within
//
// tls_renewal_failed comes from the proxy's certificate events
// (CertEvent), as they happen.

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/proxy"
	"github.com/hostctl/hostctl/supervisor/logfile"
)

// hostAlerts is what the watcher remembers between host checks.
type hostAlerts struct {
	last      time.Time      // last host check
	disks     []string       // paths with an active disk_free alert key
	sitesDown map[string]int // site -> checks in a row with no upstream answering
	certs     []string       // names with an active tls_expiring alert
}

// checkHost checks the host-level conditions every check_interval.
func (w *Watcher) checkHost(c Config, now time.Time) {
	if now.Sub(w.seen.last) < c.Alerts.CheckInterval {
		return
	}
	w.seen.last = now
	w.checkMemory(c.Alerts)
	w.checkDisks(c)
	w.checkKeepFree(c)
	w.checkUpstreams(c)
	w.checkCerts(c, now)
}

func (w *Watcher) checkMemory(cfg alert.Config) {
	const key = alert.CondHostMemory
	th, _ := logfile.ParseKeepFree(cfg.MemoryAvailableBelow)
	if th.Off() {
		w.m.Clear(key, "memory_available_below is off")
		return
	}
	mi, err := w.host.Memory()
	if err != nil || mi.Total == 0 {
		return
	}
	limit := th.Threshold(int64(mi.Total))
	avail := int64(mi.Available)
	if avail < limit {
		w.m.Set(alert.Alert{Key: key, Condition: key, Severity: alert.Critical,
			Summary: fmt.Sprintf("%s is low on memory: %s available of %s (alert below %s)", w.m.Host(),
				logfile.FormatSize(avail), logfile.FormatSize(int64(mi.Total)), th),
			Details: map[string]any{"available_bytes": mi.Available, "total_bytes": mi.Total, "threshold_bytes": limit},
			Command: "hostctl status   # the MEMORY column: which program is big; `hostctl restart NAME` frees it"})
	} else if avail >= limit+int64(mi.Total)/100 {
		w.m.Clear(key, fmt.Sprintf("%s available again", logfile.FormatSize(avail)))
	}
}

// diskPaths are the watched paths: the log dir, then disk_paths, one per
// filesystem.
func (w *Watcher) diskPaths(c Config) []DiskInfo {
	var out []DiskInfo
	seen := map[uint64]bool{}
	for _, p := range append([]string{c.LogDir}, c.Alerts.DiskPaths...) {
		di, err := w.host.Disk(filepath.Clean(p))
		if err != nil || seen[di.Device] {
			continue
		}
		seen[di.Device] = true
		out = append(out, di)
	}
	return out
}

func (w *Watcher) checkDisks(c Config) {
	th, _ := logfile.ParseKeepFree(c.Alerts.DiskFreeBelow)
	var active []string
	if !th.Off() {
		for _, di := range w.diskPaths(c) {
			key := alert.CondDiskFree + ":" + di.Path
			limit := th.Threshold(int64(di.Size))
			free := int64(di.Free)
			switch {
			case free < limit:
				w.m.Set(alert.Alert{Key: key, Condition: alert.CondDiskFree, Severity: alert.Critical,
					Summary: fmt.Sprintf("disk almost full on %s: %s free of %s on the filesystem of %s (alert below %s)", w.m.Host(),
						logfile.FormatSize(free), logfile.FormatSize(int64(di.Size)), di.Path, th),
					Details: map[string]any{"path": di.Path, "free_bytes": di.Free, "size_bytes": di.Size, "threshold_bytes": limit},
					Command: fmt.Sprintf("df -h %s; du -xsh %s/* | sort -h | tail", di.Path, di.Path)})
				active = append(active, key)
			case free >= limit+int64(di.Size)/100:
				w.m.Clear(key, fmt.Sprintf("%s free again on %s", logfile.FormatSize(free), di.Path))
			default:
				if w.m.IsActive(key) {
					active = append(active, key)
				}
			}
		}
	}
	// A path no longer watched (a reload, threshold off) resolves.
	for _, key := range w.seen.disks {
		if !slices.Contains(active, key) {
			w.m.Clear(key, "no longer watched")
		}
	}
	w.seen.disks = active
}

func (w *Watcher) checkKeepFree(c Config) {
	const key = alert.CondKeepFree
	if paused, why := w.logs.KeepFreePaused(); paused {
		w.m.Set(alert.Alert{Key: key, Condition: key, Severity: alert.Warning,
			Summary: fmt.Sprintf("log writing paused on %s: %s; program output is dropped until space is back", w.m.Host(), why),
			Command: "df -h " + c.LogDir})
	} else {
		w.m.Clear(key, "log writing resumed: space is back")
	}
}

// checkUpstreams dials every upstream of every proxy site; a site none of
// whose upstreams accepts a connection at two checks in a row is down.
// It asks the upstreams themselves, not the state of the programs behind
// them (Status.Up): what visitors see is whether a connection is
// accepted, and an upstream may be served by no program of this hostctl.
// The alert names the programs that serve the site (front.Links).
func (w *Watcher) checkUpstreams(c Config) {
	st, _, configured := w.proxy.Status()
	if w.seen.sitesDown == nil {
		w.seen.sitesDown = map[string]int{}
	}
	sites := map[string][]string{}
	if configured && st.Running && c.Proxy != nil {
		for _, su := range c.Proxy.SiteUpstreams() {
			sites[su.Site] = su.Upstreams
		}
	}
	for site := range w.seen.sitesDown {
		if _, ok := sites[site]; !ok {
			delete(w.seen.sitesDown, site)
			w.m.Clear(alert.CondUpstreamsDown+":"+site, "the proxy no longer serves "+site)
		}
	}
	for site, ups := range sites {
		key := alert.CondUpstreamsDown + ":" + site
		var errs []string
		for _, u := range ups {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := w.dial(ctx, u)
			cancel()
			if err == nil {
				errs = nil
				break
			}
			errs = append(errs, err.Error())
		}
		if errs == nil {
			w.seen.sitesDown[site] = 0
			w.m.Clear(key, "an upstream of "+site+" answers again")
			continue
		}
		w.seen.sitesDown[site]++
		if w.seen.sitesDown[site] >= 2 {
			details := map[string]any{"site": site, "upstreams": ups}
			command := "hostctl status   # the proxy and its upstreams are at the end"
			if progs := c.Links.Programs(ups); len(progs) > 0 {
				details["programs"] = progs
				command = "hostctl status " + strings.Join(progs, " ") + "; hostctl tail " + progs[0] + " stderr"
			}
			w.m.Set(alert.Alert{Key: key, Condition: alert.CondUpstreamsDown, Severity: alert.Critical,
				Summary: fmt.Sprintf("site %s on %s is down: visitors see the error page (%s)", site, w.m.Host(), strings.Join(errs, "; ")),
				Details: details, Command: command})
		}
	}
}

func (w *Watcher) checkCerts(c Config, now time.Time) {
	st, _, configured := w.proxy.Status()
	var active []string
	if configured {
		for _, cert := range st.Certificates {
			if len(cert.Names) == 0 {
				continue
			}
			name := cert.Names[0]
			key := alert.CondTLSExpiring + ":" + name
			left := cert.NotAfter.Sub(now)
			if left < c.Alerts.TLSExpiresWithin {
				what := fmt.Sprintf("expires in %s (%s)", fmtDuration(left.Truncate(time.Hour)), cert.NotAfter.UTC().Format(time.RFC3339))
				if left <= 0 {
					what = "expired on " + cert.NotAfter.UTC().Format(time.RFC3339)
				}
				w.m.Set(alert.Alert{Key: key, Condition: alert.CondTLSExpiring, Severity: alert.Warning,
					Summary: fmt.Sprintf("the TLS certificate of %s on %s %s and was not renewed", name, w.m.Host(), what),
					Details: map[string]any{"names": cert.Names, "issuer": cert.Issuer, "not_after": cert.NotAfter},
					Command: "hostctl status; grep -i certificate " + filepath.Join(c.LogDir, logfile.OwnLogName)})
				active = append(active, key)
			} else {
				w.m.Clear(key, fmt.Sprintf("the certificate of %s was renewed: valid until %s", name, cert.NotAfter.UTC().Format(time.RFC3339)))
			}
		}
	}
	for _, key := range w.seen.certs {
		if !slices.Contains(active, key) {
			w.m.Clear(key, "certificate renewed or no longer served")
		}
	}
	w.seen.certs = active

	// A renewal failure for a host the proxy no longer serves (a reload
	// removed it) would never see its "obtained": resolve it here.
	hosts := map[string]bool{}
	if pc := c.Proxy; pc != nil && configured {
		for _, h := range pc.Hosts {
			hosts[strings.ToLower(h)] = true
		}
		for _, site := range pc.Sites {
			for _, h := range site.Hosts {
				hosts[strings.ToLower(h)] = true
			}
		}
	}
	for _, key := range w.m.Keys() {
		if name, ok := strings.CutPrefix(key, alert.CondTLSRenewalFailed+":"); ok && !hosts[strings.ToLower(name)] {
			w.m.Clear(key, "the proxy no longer serves "+name)
		}
	}
}

// CertEvent turns the proxy's certificate events into tls_renewal_failed
// alerts (proxy.Options.OnCertEvent). It runs on Caddy's goroutine and
// never blocks (Set and Clear only queue).
func (w *Watcher) CertEvent(ev proxy.CertEvent) {
	key := alert.CondTLSRenewalFailed + ":" + ev.Name
	if ev.Obtained {
		w.m.Clear(key, "the certificate of "+ev.Name+" was obtained")
		return
	}
	what := "obtaining"
	if ev.Renewal {
		what = "renewing"
	}
	w.m.Set(alert.Alert{Key: key, Condition: alert.CondTLSRenewalFailed, Severity: alert.Error,
		Summary: fmt.Sprintf("%s the TLS certificate of %s on %s failed: %s (Caddy keeps retrying)", what, ev.Name, w.m.Host(), ev.Error),
		Details: map[string]any{"name": ev.Name, "renewal": ev.Renewal, "error": ev.Error},
		Command: "hostctl status; check that DNS for " + ev.Name + " points here and ports 80/443 are reachable"})
}
