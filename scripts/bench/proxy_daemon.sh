#!/usr/bin/env bash
# The hostctl daemon (`hostctl run`, its proxy with the access log on, as
# shipped) against nginx with an access log (buffer=64k), in front of the
# same upstream: gunicorn (3 sync workers, Django hello) on a unix socket,
# no upstream keep-alive on either side; or with UPSTREAM=go the tiny Go
# server on a unix socket with upstream keep-alive on both sides.
# Prints req/s, p50/p99, proxy CPU per request (utime+stime of hostctl /
# of nginx's processes, over the run), the connections the Go upstream
# accepted per 1,000 requests (near 0 when a proxy reuses them) and
# hostctl's RSS. Rounds alternate.
#
#   ROUNDS=3 scripts/bench/proxy_daemon.sh
#   HC_ENV="GOGC=400" HC_BIN=/path/hostctl CONNS=2000 scripts/bench/proxy_daemon.sh
#   PROFILE=/tmp/cpu.pprof scripts/bench/proxy_daemon.sh   # profile of the daemon (for default.pgo)
#
# Run it under flock /tmp/hostctl-bench.lock on a shared machine.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
UPSTREAM=${UPSTREAM:-django}
HC_ENV=${HC_ENV:-}
SETUPS=${SETUPS:-"nginx hostctl"}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d /tmp/hostctl-bench-daemon.XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

if [ -z "${HC_BIN:-}" ]; then
	(cd "$root" && go build -o "$tmp/hostctl" ./cmd/hostctl)
	HC_BIN=$tmp/hostctl
fi
(cd "$root" && go build -o "$tmp/proxybench" ./scripts/bench/proxybench)
read -r P_NG P_HC < <(/usr/bin/python3 -c '
import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')

SOCK=$tmp/up.sock
if [ "$UPSTREAM" = go ]; then
	upcmd="$tmp/proxybench -mode upstream -listen unix:$SOCK"
	keepalive=true
	ngka="keepalive 64;"
	ngver='proxy_http_version 1.1; proxy_set_header Connection "";'
else
	upcmd="gunicorn --workers 3 --bind unix:$SOCK --log-level warning --chdir $here/proxy_django wsgi:application"
	keepalive=false
	ngka=""
	ngver=""
fi

# One upstream for both proxies, run by hostctl.
mkdir -p "$tmp/log" "$tmp/state" "$tmp/nginx/logs"
cat >"$tmp/hostctl.toml" <<EOF
[admin]
socket = "$tmp/hostctl.sock"
state_dir = "$tmp/state"

[log]
dir = "$tmp/log"

[program.up]
command = "$upcmd"
start_secs = "1s"

[proxy]
listen = "127.0.0.1:$P_HC"
upstream = "unix:$SOCK"
upstream_keepalive = $keepalive
EOF
prof=()
[ -n "${PROFILE:-}" ] && prof=(--cpuprofile "$PROFILE")
env $HC_ENV "$HC_BIN" run -c "$tmp/hostctl.toml" --log-format json "${prof[@]}" 2>"$tmp/hostctl.stderr" &
HC_PID=$!
pids+=($HC_PID)

user=""
[ "$(id -u)" -eq 0 ] && user="user root;"
cat >"$tmp/nginx/nginx.conf" <<EOF
$user
worker_processes 2;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    log_format json escape=json '{"ts":"\$time_iso8601","remote":"\$remote_addr","method":"\$request_method","uri":"\$request_uri","status":\$status,"size":\$body_bytes_sent,"duration":\$request_time,"ua":"\$http_user_agent"}';
    access_log $tmp/nginx/logs/access.log json buffer=64k;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    upstream up { server unix:$SOCK; $ngka }
    server {
        listen 127.0.0.1:$P_NG;
        location / {
            proxy_pass http://up;
            $ngver
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' & pids+=($!)
NG_PID=$!

for port in $P_HC $P_NG; do
	for _ in $(seq 200); do
		curl -fs -m 2 -o /dev/null "http://127.0.0.1:$port/" && break
		sleep 0.1
	done
	curl -fs -m 2 -o /dev/null "http://127.0.0.1:$port/" || { echo "port $port does not answer"; cat "$tmp/hostctl.stderr"; exit 1; }
done

# ticks PID...: utime+stime of the processes, in clock ticks.
ticks() { for p in "$@"; do awk '{print $14+$15}' "/proc/$p/stat"; done | awk '{s+=$1} END {print s}'; }
ngpids() { echo "$NG_PID $(pgrep -P "$NG_PID" | tr '\n' ' ')"; }
HZ=$(getconf CLK_TCK)

# upconns URL: the connections the Go upstream has accepted so far, or "-"
# for gunicorn (which closes every connection).
upconns() {
	if [ "$UPSTREAM" = go ]; then curl -fs -m 2 "${1}conns"; else echo -; fi
}

bench() { # setup url pids...
	local setup=$1 url=$2
	shift 2
	wrk -t"$THREADS" -c"$CONNS" -d2s "$url" >/dev/null 2>&1 || true
	local t0 out t1 c0 c1
	c0=$(upconns "$url")
	t0=$(ticks "$@")
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$url")
	t1=$(ticks "$@")
	c1=$(upconns "$url")
	echo "$out" | awk -v setup="$setup" -v dt=$((t1 - t0)) -v hz="$HZ" -v c0="$c0" -v c1="$c1" '
		function ms(v) {
			if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
			if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
			if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
			return v
		}
		$1 == "50%" { p50 = ms($2) }
		$1 == "99%" { p99 = ms($2) }
		/requests in/ { n = $1 }
		$1 == "Requests/sec:" { rps = $2 }
		/Non-2xx/ { bad += $NF }
		/Socket errors/ { bad += $4 + $6 + $8 + $10 }
		END {
			conns = "-"
			if (c0 != "-") conns = sprintf("%.1f", (c1 - c0) / n * 1000)
			printf "%s %s %s %s %.0f %d %s\n", setup, rps, p50, p99, dt / hz * 1e6 / n, bad, conns
		}'
}

echo "wrk -t$THREADS -c$CONNS -d$DURATION, upstream $UPSTREAM, $ROUNDS round(s), hostctl env: ${HC_ENV:-none}; $(uptime | sed 's/.*load/load/')" >&2
results=$tmp/results
for round in $(seq "$ROUNDS"); do
	for s in $SETUPS; do
		if [ "$s" = nginx ]; then
			r=$(bench nginx "http://127.0.0.1:$P_NG/" $(ngpids))
		else
			r=$(bench hostctl "http://127.0.0.1:$P_HC/" "$HC_PID")
		fi
		echo "  round $round: $r" >&2
		echo "$r" >>"$results"
	done
done
rss=$(awk '/VmRSS/ {print $2/1024}' "/proc/$HC_PID/status")
echo "| setup | req/s | p50 ms | p99 ms | proxy CPU us/req | errors | upstream conns per 1k req |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for s in $SETUPS; do
	awk -v s="$s" '$1 == s' "$results" | sort -k2 -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}' |
		awk '{printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7}'
done
echo "hostctl RSS after the runs: ${rss} MB"
