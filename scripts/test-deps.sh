#!/bin/sh
# Installs every Debian package that the test suite needs, before any test
# runs (`make test` calls it first), or says exactly what to install. A
# test's result must not depend on what happens to be on the machine, so
# everything a test runs for real is listed here, not installed by the test.
# Idempotent and quick when all is there (one dpkg-query).
#
#   scripts/test-deps.sh          the suite: make test, make e2e
#   scripts/test-deps.sh --bench  also what `make bench` compares against
set -eu

# The dashboard test drives a headless Chromium; a unit test runs
# systemd-analyze verify on configs/hostctl.service; the proxy's ACME test
# runs Let's Encrypt's test CA (pebble, pebble-challtestsrv).
full="chromium systemd"
# The Django example (configs/webserver.toml) and its end-to-end test.
# Without recommends: they pull in services and documentation.
lean="python3 procps pebble gunicorn python3-django python3-celery python3-pylibmc memcached rabbitmq-server erlang-base"
# The alert email test delivers to a real SMTP server (aiosmtpd); the
# fleet test (make e2e-fleet) loads its front with wrk.
lean="$lean python3-aiosmtpd wrk"
# hostctl serves supervisord's XML-RPC API: tested with the real
# supervisorctl; hostctl import is compared with what Python supervisor
# itself reads from the same supervisord.conf (supervisord's own service is
# kept from starting, as below).
lean="$lean supervisor"
# The Django example also runs under the sandbox of configs/hostctl.service
# (scripts/unit-sandbox.py: seccomp filters through python3-seccomp).
lean="$lean python3-seccomp"
# The fleet tests share certificates through a real Redis server
# (redis-server; its own service does not start, see policy-rc.d below).
lean="$lean redis-server"
# make test-stress (and CI) runs the suite beside stress-ng --cpu 2.
lean="$lean stress-ng"
# hostctl import is compared with what nginx itself accepts (nginx -t on
# each site of the import corpus, DH parameters from openssl); make bench
# compares the proxy with nginx.
lean="$lean nginx-light openssl"
# The admin API over TLS: supervisorctl (which has no https) reaches it
# through a socat TLS tunnel, and openssl checks the CA's fingerprint.
lean="$lean socat"
# The security tests attack as a real unprivileged user, made with
# useradd (passwd) and run with setpriv (util-linux).
lean="$lean passwd util-linux"
# hostctl deploy fetches code with Debian's git, and extracts and copies
# releases with tar and cp (coreutils); its tests make real repos.
lean="$lean git tar coreutils"

missing() {
	out=""
	for p in "$@"; do
		case $p in
		nginx-light) # any nginx package will do
			command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || out="$out $p" ;;
		*)
			dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || out="$out $p" ;;
		esac
	done
	echo "$out"
}
need_full=$(missing $full)
need_lean=$(missing $lean)
need="$need_full$need_lean"
[ -z "$need" ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: missing$need; install with: sudo apt-get update && sudo apt-get install -y$need" >&2
	exit 1
fi
echo "test-deps: installing$need"
apt-get update -qq >/dev/null
# The packages' own services (memcached, rabbitmq, redis) must not start: they
# would take the default ports. policy-rc.d exit 101 tells invoke-rc.d "not now".
prc=/usr/sbin/policy-rc.d
if [ ! -e $prc ]; then
	printf '#!/bin/sh\nexit 101\n' >$prc && chmod +x $prc
	trap 'rm -f $prc' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
[ -n "$need_full" ] && apt-get install -y -qq $need_full >/dev/null
[ -n "$need_lean" ] && apt-get install -y -qq --no-install-recommends $need_lean >/dev/null
exit 0
