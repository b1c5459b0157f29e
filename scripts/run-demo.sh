#!/bin/sh
# Runs hostctl in the foreground on configs/demo.toml (what `make run` does),
# with a fresh admin token for the dashboard. Needs nothing but /bin/sh,
# coreutils and python3 (the demo's programs); as root or not.
set -eu
bin=${1:-bin/hostctl}
cd "$(dirname "$0")/.."
demo=/tmp/hostctl-demo
port=9001 # [admin] listen in configs/demo.toml
mkdir -p "$demo"
if [ -L "$demo" ] || [ ! -O "$demo" ]; then
	echo "run-demo: $demo belongs to another user (ls -ld $demo); hostctl would refuse it: remove it, or run as its owner" >&2
	exit 1
fi
# A fresh token at each run, readable by its owner only ([admin] token_file):
# it is printed in the URL's fragment, which the browser never sends.
token=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
rm -f "$demo/admin.token"
(umask 077 && printf '%s\n' "$token" >"$demo/admin.token")
cat <<MSG
hostctl demo: starting "web" (two python3 http.servers, web_0 on 127.0.0.1:8000 and web_1 on :8001)
and "worker" (depends on web), both in the group "app".
  dashboard: http://127.0.0.1:$port/#token=$token
  status:    $bin status -c configs/demo.toml
  logs:      $demo/log/   (or: $bin tail -f -c configs/demo.toml worker)
  site:      curl http://127.0.0.1:8080/   (hostctl's proxy in front of both web instances)
  rolling:   $bin restart -c configs/demo.toml web   (one instance at a time; the site stays up)
  stop:      Ctrl-C (stops worker, then web)
MSG
exec "$bin" run -c configs/demo.toml
