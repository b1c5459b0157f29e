#!/bin/sh
# Runs hostctl in the foreground on configs/demo.toml (what `make run` does).
set -eu
bin=${1:-bin/hostctl}
cd "$(dirname "$0")/.."
mkdir -p /tmp/hostctl-demo
cat <<MSG
hostctl demo: starting "web" (two python3 http.servers, web_0 on 127.0.0.1:8000 and web_1 on :8001)
and "worker" (depends on web), both in the group "app".
  status:   $bin status -c configs/demo.toml
  logs:     /tmp/hostctl-demo/log/   (or: $bin tail -f -c configs/demo.toml worker)
  site:     curl http://127.0.0.1:8080/   (hostctl's proxy in front of both web instances)
  rolling:  $bin restart -c configs/demo.toml web   (one instance at a time; the site stays up)
  stop:     Ctrl-C (stops worker, then web)
MSG
exec "$bin" run -c configs/demo.toml
