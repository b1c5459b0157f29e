#!/usr/bin/env bash
# Benchmark hostctl's proxy (embedded Caddy) against nginx, side by side, in
# front of the same two upstreams: a tiny Go server (keep-alive) and gunicorn
# (3 sync workers) serving a Django hello view. Load: wrk -t2 -c64 -d10s.
# Prints requests/s, p50 and p99 latency, and the ratio to nginx.
#
#   scripts/bench/proxy.sh            # or: make bench-proxy
#   ROUNDS=3 DURATION=10s scripts/bench/proxy.sh
#
# Everything listens on 127.0.0.1 and is stopped on exit. wrk, the proxies
# and the upstreams share the machine's cores, so CPU used by a proxy is
# taken from the application, as on a small production host.
set -euo pipefail

ROUNDS=${ROUNDS:-1}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-3}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v gunicorn >/dev/null || need+=(gunicorn)
/usr/bin/python3 -c 'import django' 2>/dev/null || need+=(python3-django)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing: ${need[*]}; run as root or: apt-get install -y ${need[*]}" >&2
		exit 1
	fi
	apt-get install -y "${need[@]}" >&2
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d /tmp/hostctl-bench-proxy.XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# Free ports on 127.0.0.1, chosen by the kernel.
read -r P_GO P_DJ P_NG_GO P_NG_DJ P_NG_DJU P_HC_GO P_HC_GO4 P_HC_DJ P_HC_DJU P_HC_DJU4 < <(/usr/bin/python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(10)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
EOF
)

# wait_port PORT: wait until something accepts on 127.0.0.1:PORT (10 s).
wait_port() {
	/usr/bin/python3 - "$1" <<'EOF'
import socket, sys, time
deadline = time.monotonic() + 10
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("port %s did not open" % sys.argv[1])
        time.sleep(0.05)
EOF
}

echo "building proxybench..." >&2
(cd "$root" && go build -o "$tmp/proxybench" ./scripts/bench/proxybench)

"$tmp/proxybench" -mode upstream -listen "127.0.0.1:$P_GO" & pids+=($!)
SOCK="$tmp/gunicorn.sock"
(cd "$here/proxy_django" && exec gunicorn --workers "$WORKERS" --bind "127.0.0.1:$P_DJ" --bind "unix:$SOCK" \
	--log-level warning --chdir "$here/proxy_django" wsgi:application) & pids+=($!)

mkdir -p "$tmp/nginx/logs" "$tmp/state"
# As root, nginx's workers would run as nobody and could not open the
# gunicorn socket in the private temp dir.
user=""
[ "$(id -u)" -eq 0 ] && user="user root;"
cat >"$tmp/nginx/nginx.conf" <<EOF
$user
worker_processes 2;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    upstream go { server 127.0.0.1:$P_GO; keepalive 64; }
    upstream dj { server 127.0.0.1:$P_DJ; keepalive 64; }
    upstream dju { server unix:$SOCK; keepalive 64; }
    server {
        listen 127.0.0.1:$P_NG_GO;
        location / {
            proxy_pass http://go;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
    server {
        listen 127.0.0.1:$P_NG_DJ;
        location / {
            proxy_pass http://dj;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
    server {
        listen 127.0.0.1:$P_NG_DJU;
        location / {
            proxy_pass http://dju;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' & pids+=($!)

# hostctl's proxy: defaults, except upstream keep-alive for the Go upstream
# (as nginx has it); gunicorn gets the defaults (keep-alive off), as in
# production. Access logs off on both sides. The GOGC=400 rows show what the
# hostctl binary would gain from a less eager garbage collector.
hc() { "$tmp/proxybench" -mode proxy -state "$tmp/state" "$@"; }
hc -listen "127.0.0.1:$P_HC_GO" -upstream "127.0.0.1:$P_GO" -keepalive & pids+=($!)
GOGC=400 hc -listen "127.0.0.1:$P_HC_GO4" -upstream "127.0.0.1:$P_GO" -keepalive & pids+=($!)
hc -listen "127.0.0.1:$P_HC_DJ" -upstream "127.0.0.1:$P_DJ" & pids+=($!)
hc -listen "127.0.0.1:$P_HC_DJU" -upstream "unix:$SOCK" & pids+=($!)
GOGC=400 hc -listen "127.0.0.1:$P_HC_DJU4" -upstream "unix:$SOCK" & pids+=($!)

for p in $P_GO $P_DJ $P_NG_GO $P_NG_DJ $P_NG_DJU $P_HC_GO $P_HC_GO4 $P_HC_DJ $P_HC_DJU $P_HC_DJU4; do
	wait_port "$p"
done

# bench URL -> "req/s p50_ms p99_ms errors" (errors: non-2xx/3xx
# responses plus socket read/write/timeout errors)
bench() {
	wrk -t"$THREADS" -c"$CONNS" -d2s "$1" >/dev/null 2>&1 || true # warm-up
	wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$1" | awk '
		function ms(v) {
			if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
			if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
			if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
			return v
		}
		$1 == "50%" { p50 = ms($2) }
		$1 == "99%" { p99 = ms($2) }
		$1 == "Requests/sec:" { rps = $2 }
		/Non-2xx/ { bad += $NF }
		/Socket errors/ { bad += $4 + $6 + $8 + $10 }
		END { printf "%s %s %s %d\n", rps, p50, p99, bad }'
}

results="$tmp/results"
: >"$results"
GO="Go hello"
DJ="Django/gunicorn ($WORKERS sync)"
cases=(
	"$GO|direct|http://127.0.0.1:$P_GO/"
	"$GO|nginx|http://127.0.0.1:$P_NG_GO/"
	"$GO|hostctl|http://127.0.0.1:$P_HC_GO/"
	"$GO|hostctl GOGC=400|http://127.0.0.1:$P_HC_GO4/"
	"$DJ|direct|http://127.0.0.1:$P_DJ/"
	"$DJ|nginx|http://127.0.0.1:$P_NG_DJ/"
	"$DJ|hostctl|http://127.0.0.1:$P_HC_DJ/"
	"$DJ|nginx, unix socket|http://127.0.0.1:$P_NG_DJU/"
	"$DJ|hostctl, unix socket|http://127.0.0.1:$P_HC_DJU/"
	"$DJ|hostctl, unix socket, GOGC=400|http://127.0.0.1:$P_HC_DJU4/"
)
echo "measuring (wrk -t$THREADS -c$CONNS -d$DURATION, $ROUNDS round(s), $(uptime | sed 's/.*load/load/'))..." >&2
# Rounds interleave the setups so that a burst of other load on the
# machine hits them alike.
for round in $(seq "$ROUNDS"); do
	for c in "${cases[@]}"; do
		IFS='|' read -r up setup url <<<"$c"
		r=$(bench "$url")
		echo "$up|$setup|$round|$r" >>"$results"
		echo "  $up / $setup round $round: $r" >&2
	done
done

echo
echo "wrk -t$THREADS -c$CONNS -d$DURATION; median of $ROUNDS round(s); $(nproc) cores; $("$NGINX" -v 2>&1 | sed 's/.*: //'), gunicorn $(gunicorn --version 2>&1 | grep -o '[0-9][0-9.]*' | head -1)"
/usr/bin/python3 - "$results" <<'EOF'
import statistics, sys
rows = {}
order = []
for line in open(sys.argv[1]):
    up, setup, _, r = line.rstrip("\n").split("|")
    rps, p50, p99, bad = (float(x) for x in r.split())
    key = (up, setup)
    if key not in rows:
        rows[key] = []
        order.append(key)
    rows[key].append((rps, p50, p99, bad))
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) + (sum(x[3] for x in v),) for k, v in rows.items()}
print("| upstream | setup | req/s | p50 ms | p99 ms | req/s vs nginx | p99 vs nginx | errors |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for up, setup in order:
    rps, p50, p99, bad = med[(up, setup)]
    ng = med.get((up, "nginx, unix socket" if "unix" in setup else "nginx"))
    ratio = "%.2f" % (rps / ng[0]) if ng else "-"
    pr = "%.2f" % (p99 / ng[2]) if ng and ng[2] else "-"
    print("| %s | %s | %.0f | %.2f | %.2f | %s | %s | %d |" % (up, setup, rps, p50, p99, ratio, pr, bad))
EOF
