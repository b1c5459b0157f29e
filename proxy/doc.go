// Package proxy is hostctl's web front: Caddy v2 embedded as a library,
// configured from the [proxy] section of hostctl.toml. It reverse proxies to
// the application (usually gunicorn, over TCP or a unix socket), serves
// static files, shows an error page while the application is down, and
// gets certificates (ACME or a local CA).
//
// The generated Caddy config is safe for gunicorn's sync workers by
// default: request bodies are buffered before the upstream is dialed
// (64 KiB of each in RAM, the rest spooled to disk, both capped for all
// requests together: spool.go), no idle upstream connection is kept, and
// requests wait up to retry_for for an upstream that is restarting (a
// single upstream held while its program restarts: up to hold_for).
// Static files and error pages are read as an unprivileged user
// (fileuser.go). Which files it may believe as root (the Caddyfile, key,
// secret and CA files, an error page only root can change) is the rule of
// the program that embeds it, given as ReadTrusted: hostctl gives it
// supervisor/trust's, which proxy does not import. The Caddy config is
// built from Caddy's own config structs (caddyjson.go). Caddy's admin
// endpoint is disabled and its config is never autosaved; storage lives
// under the state dir unless [proxy.storage] names a shared directory or
// a Redis server.
//
// Caddy's state is global to the process: one Proxy runs at a time.
package proxy
