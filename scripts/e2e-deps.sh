#!/bin/sh
# Installs the Debian packages that the Django example (configs/webserver.toml)
# and its end-to-end test need, or says exactly what to install.
# Idempotent and quick when everything is there. With --bench, also what
# `make bench` compares against: nginx, supervisord and wrk.
set -eu
pkgs="gunicorn python3-django python3-celery python3-pylibmc memcached rabbitmq-server erlang-base procps"
[ "${1:-}" = "--bench" ] && pkgs="$pkgs nginx-light supervisor wrk"
need=""
for p in $pkgs; do
	case $p in
	nginx-light) # any nginx package will do
		command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need="$need $p" ;;
	*)
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p" ;;
	esac
done
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "e2e-deps: installing$need"
	apt-get update -qq >/dev/null
	# The packages' own services must not start (they would take the
	# default ports); policy-rc.d 101 tells invoke-rc.d "not now".
	prc=/usr/sbin/policy-rc.d
	if [ ! -e $prc ]; then
		printf '#!/bin/sh\nexit 101\n' >$prc && chmod +x $prc
		trap 'rm -f $prc' EXIT
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
else
	echo "e2e-deps: missing$need; install with: sudo apt-get update && sudo apt-get install -y --no-install-recommends$need" >&2
	exit 1
fi
