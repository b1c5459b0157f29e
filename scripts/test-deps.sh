#!/bin/sh
# Installs what the test suite needs on a fresh Debian machine (as root),
# or says exactly what to install. Idempotent and quick when all is there.
set -eu
need=""
command -v python3 >/dev/null 2>&1 || need="$need python3"
command -v ps >/dev/null 2>&1 || need="$need procps"
# The dashboard test drives a headless Chromium; the unit test runs
# systemd-analyze verify on configs/hostctl.service.
command -v chromium >/dev/null 2>&1 || need="$need chromium"
command -v systemd-analyze >/dev/null 2>&1 || need="$need systemd"
# The proxy's ACME tests run Pebble, Let's Encrypt's test CA.
command -v pebble >/dev/null 2>&1 || need="$need pebble"
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: installing$need"
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
else
	echo "test-deps: missing$need; install with: sudo apt-get install -y$need" >&2
	exit 1
fi
