package daemon

// TODO(proxy wiring): placeholder until the proxy is wired in; the proxy's
// engineer replaces this file.

// proxyStatus returns the proxy's status for the admin API, nil when no
// proxy is configured.
func (d *Daemon) proxyStatus() any { return nil }

// proxyReady reports whether the proxy listens (true when there is none).
func (d *Daemon) proxyReady() bool { return true }
