#!/bin/sh
# Installs hostctl as a systemd service (run as root from the repository):
#   the binary          -> /usr/local/bin/hostctl   (bin/hostctl; `make build` first)
#   the unit            -> /etc/systemd/system/hostctl.service
#   the config          -> /etc/hostctl/hostctl.toml (only if there is none:
#                          an existing config is never overwritten), from
#                          configs/server.toml: /run/hostctl, /var/lib/hostctl
#                          and /var/log/hostctl, the unit's dirs (never
#                          /tmp, which any local user could create first)
#   state and log dirs  -> /var/lib/hostctl (0700), /var/log/hostctl (0750)
#   the hostctl group   -> [admin] group of the config: its members may use
#                          the CLI (as the Debian package makes it)
# then `systemctl daemon-reload && systemctl enable --now hostctl` when
# systemd is running; otherwise it says what it would run.
#
# Environment: BIN (default bin/hostctl), CONFIG (the config to install when
# none exists; default configs/server.toml), DESTDIR (a staging root, for
# packaging; systemctl is then never called).
set -eu
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/hostctl}
CONFIG=${CONFIG:-configs/server.toml}
DESTDIR=${DESTDIR:-}

if [ ! -x "$BIN" ]; then
	echo "install: $BIN not found; run 'make build' first (or set BIN=path)" >&2
	exit 1
fi
if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
	echo "install: run as root (or set DESTDIR=/some/staging/root)" >&2
	exit 1
fi

install -d -m 0755 "$DESTDIR/usr/local/bin" "$DESTDIR/etc/systemd/system"
install -d -m 0750 "$DESTDIR/etc/hostctl" "$DESTDIR/var/log/hostctl"
install -d -m 0700 "$DESTDIR/var/lib/hostctl"
if [ -z "$DESTDIR" ] && ! getent group hostctl >/dev/null; then
	groupadd --system hostctl
	echo "install: group hostctl (its members may use the CLI)"
fi
install -m 0755 "$BIN" "$DESTDIR/usr/local/bin/hostctl"
echo "install: /usr/local/bin/hostctl"
install -m 0644 configs/hostctl.service "$DESTDIR/etc/systemd/system/hostctl.service"
echo "install: /etc/systemd/system/hostctl.service"
if [ -e "$DESTDIR/etc/hostctl/hostctl.toml" ]; then
	echo "install: /etc/hostctl/hostctl.toml exists; left as it is"
else
	install -m 0640 "$CONFIG" "$DESTDIR/etc/hostctl/hostctl.toml"
	echo "install: /etc/hostctl/hostctl.toml (from $CONFIG; edit it, then: hostctl check)"
fi

if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	/usr/local/bin/hostctl check -c /etc/hostctl/hostctl.toml || {
		echo "install: fix /etc/hostctl/hostctl.toml, then: systemctl enable --now hostctl" >&2
		exit 1
	}
	systemctl daemon-reload
	systemctl enable --now hostctl
	echo "install: hostctl is enabled and started; see: hostctl status"
else
	echo "install: systemd is not running here; on a systemd machine this would run:"
	echo "  systemctl daemon-reload && systemctl enable --now hostctl"
fi
