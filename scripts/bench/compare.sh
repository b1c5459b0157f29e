#!/bin/sh
# make bench: the Django example (configs/django, the same gunicorn settings)
# served (a) the classic way, nginx + supervisord from Debian, and (b) by
# hostctl on configs/webserver.toml, one after the other on this machine,
# ROUNDS times (default 3). Prints a Markdown table with min / median per
# setup and the ratio hostctl / classic of the medians.
#
# Per setup and round: start -> first 200; once a celery task completes,
# RSS (supervisord + nginx master and workers, vs hostctl) and CPU over
# IDLE (default 30s); wrk -t2 -c64 -d10s (req/s, p50, p99); failed
# requests in wrk -t2 -c32 -d10s while gunicorn is restarted
# (supervisorctl restart / hostctl restart); kill -9 of gunicorn's master
# to the first 200 from its replacement; log capture of a program writing
# SPEW_BYTES (default 200 MB) as fast as it can. Then, the stack stopped,
# failed requests in wrk -t2 -c64 -d15s during a rolling restart of 2
# instances of configs/demo/web.py: nginx over both, supervisorctl restart
# of one then the other (scripts/bench/classic/rolling-*.in), vs hostctl's
# pool over both and `hostctl restart web` (rolling = true).
#
# Everything runs on 127.0.0.1 on free ports in a temp dir; only processes
# this script started are stopped, by pid. Needs root or the packages of
# `scripts/e2e-deps.sh --bench` (nginx, supervisor, wrk and the stack's).
set -eu
cd "$(dirname "$0")/../.."
REPO=$(pwd)
ROUNDS=${ROUNDS:-3}
IDLE=${IDLE:-30s}
SPEW_BYTES=${SPEW_BYTES:-200000000}
PY=/usr/bin/python3

scripts/e2e-deps.sh --bench
load=$(cut -d' ' -f1 /proc/loadavg)
if [ "$($PY -c "print(int($load >= 1))")" = 1 ]; then
	echo "compare: warning: load average $load before the start: other work on this machine will skew the numbers" >&2
fi
work=$(mktemp -d /tmp/hostctl-bench-XXXXXX)
chmod 755 "$work" # nginx workers run as nobody when started as root
results=$work/results.txt
: >"$results"
echo "compare: building into $work" >&2
go build -o "$work/hostctl" ./cmd/hostctl
go build -o "$work/benchtool" ./scripts/bench/classic/benchtool
T=$work/benchtool

# PIDs this script started and has not stopped yet (stopped on exit).
started=""
cleanup() {
	for p in $started; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $started; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# expand TEMPLATE OUT: ${BENCH_*} and ${WEBSERVER_*} from the environment.
expand() {
	$PY - "$1" "$2" <<'EOF'
import os, re, sys
s = open(sys.argv[1]).read()
s = re.sub(r"\$\{((?:BENCH|WEBSERVER)_\w+)\}", lambda m: os.environ[m.group(1)], s)
open(sys.argv[2], "w").write(s)
EOF
}

free_ports() {
	$PY -c 'import socket
ss = [socket.socket() for _ in range(5)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))'
}

# child_matching PARENT TEXT: the first child of PARENT whose command line has TEXT.
child_matching() {
	for c in $(ps -o pid= --ppid "$1"); do
		if tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null | grep -q -- "$2"; then
			echo "$c"
			return 0
		fi
	done
	return 1
}

tag() { sed "s/^/$setup $round /" | tee -a "$results" >&2; }

# setup_dir SETUP ROUND: a fresh run dir, ports and collected static files.
setup_dir() {
	BENCH_DIR=$work/$1-$2
	mkdir -p "$BENCH_DIR/log" "$BENCH_DIR/nginx"
	set -- $(free_ports)
	export BENCH_DIR BENCH_REPO="$REPO" BENCH_TOOL="$T" BENCH_SPEW_BYTES="$SPEW_BYTES"
	export BENCH_HTTP_PORT=$1 BENCH_MEMCACHED_PORT=$2 BENCH_AMQP_PORT=$3 BENCH_DIST_PORT=$4 BENCH_EPMD_PORT=$5
	export WEBSERVER_DIR=$BENCH_DIR WEBSERVER_HTTP_PORT=$1 WEBSERVER_MEMCACHED_PORT=$2 \
		WEBSERVER_AMQP_PORT=$3 WEBSERVER_DIST_PORT=$4 WEBSERVER_EPMD_PORT=$5
	URL=http://127.0.0.1:$BENCH_HTTP_PORT
	HELLO_STATIC_ROOT=$BENCH_DIR/static $PY configs/django/manage.py collectstatic --noinput >/dev/null
}

start_classic() {
	expand scripts/bench/classic/supervisord.conf.in "$BENCH_DIR/supervisord.conf"
	expand scripts/bench/classic/nginx.conf.in "$BENCH_DIR/nginx.conf"
	t0=$(date +%s%N)
	supervisord -n -c "$BENCH_DIR/supervisord.conf" >"$BENCH_DIR/log/supervisord.stdout" 2>&1 &
	SUP_PID=$!
	nginx -p "$BENCH_DIR/nginx/" -c "$BENCH_DIR/nginx.conf" -e "$BENCH_DIR/log/nginx-stderr.log" &
	NGINX_PID=$!
	started="$SUP_PID $NGINX_PID"
}
classic_pids() { echo "$SUP_PID $NGINX_PID $(ps -o pid= --ppid "$NGINX_PID")"; }
classic_restart() { supervisorctl -c "$BENCH_DIR/supervisord.conf" restart gunicorn >/dev/null; }
classic_gunicorn() { child_matching "$SUP_PID" "gunicorn -c"; }
stop_classic() {
	kill -TERM "$SUP_PID"
	kill -QUIT "$NGINX_PID"
	wait "$SUP_PID" "$NGINX_PID" || true
	started=""
}

start_hostctl() {
	expand configs/webserver.toml "$BENCH_DIR/hostctl.toml"
	expand scripts/bench/classic/hostctl-extra.toml.in "$BENCH_DIR/extra.toml"
	cat "$BENCH_DIR/extra.toml" >>"$BENCH_DIR/hostctl.toml"
	t0=$(date +%s%N)
	"$work/hostctl" run -c "$BENCH_DIR/hostctl.toml" --log-format json 2>"$BENCH_DIR/log/hostctl.stderr" &
	H_PID=$!
	started="$H_PID"
}
hostctl_pids() { echo "$H_PID $(child_matching "$H_PID" hostctl-guard || true)"; }
hostctl_restart() { "$work/hostctl" restart -c "$BENCH_DIR/hostctl.toml" gunicorn >/dev/null; }
hostctl_gunicorn() { child_matching "$H_PID" "gunicorn -c"; }
stop_hostctl() {
	kill -TERM "$H_PID"
	wait "$H_PID" || true
	started=""
}

measure() {
	"$T" first200 -url "$URL/" -t0 "$t0" | tag
	"$T" task -url "$URL" -timeout 180s
	"$T" usage -idle "$IDLE" -prefix idle_ $(${setup}_pids) | tag
	wrk -t2 -c64 -d10s --latency "$URL/" | "$T" wrk | grep -E '^(rps|p50_ms|p99_ms)=' | tag
	# --timeout 30s: a request held by the proxy while gunicorn restarts is
	# slow, not failed (wrk counts answers after its default 2 s as errors).
	wrk -t2 -c32 -d10s --timeout 30s --latency "$URL/" >"$BENCH_DIR/wrk-restart.txt" &
	wrk_pid=$!
	sleep 3
	${setup}_restart || echo "compare: $setup: restarting gunicorn failed" >&2
	wait "$wrk_pid"
	"$T" wrk -prefix restart_ <"$BENCH_DIR/wrk-restart.txt" | grep -E '^restart_(failed|requests)=' | tag
	"$T" usage -idle 0 -prefix load_ $(${setup}_pids) | tag
	"$T" first200 -url "$URL/" -t0 "$(date +%s%N)" -timeout 60s >/dev/null # the restarted gunicorn answers
	"$T" killwait -url "$URL/" -pid "$(${setup}_gunicorn)" | grep kill_to_200 | tag
	touch "$BENCH_DIR/spew.go"
	i=0
	until [ -s "$BENCH_DIR/spew.report" ] || [ $i -ge 1200 ]; do sleep 0.1; i=$((i + 1)); done
	cat "$BENCH_DIR/spew.report" | tag
}

# roll_ports: a listen port and a prefix P such that P0 and P1 are free
# ports (the instances' ports are "P${INSTANCE}", as in configs/demo.toml).
roll_ports() {
	$PY -c 'import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
l = socket.socket(); l.bind(("127.0.0.1", 0)); listen = l.getsockname()[1]; l.close()
for _ in range(200):
    k = random.randint(2000, 6399)
    if free(k * 10) and free(k * 10 + 1) and listen not in (k * 10, k * 10 + 1):
        print(listen, k)
        break
else:
    raise SystemExit("compare: no free port pair")'
}

# rolling SETUP ROUND: the rolling-restart row.
rolling() {
	BENCH_DIR=$work/$1-$2/rolling
	mkdir -p "$BENCH_DIR/log" "$BENCH_DIR/nginx"
	set -- $(roll_ports)
	export BENCH_DIR BENCH_HTTP_PORT=$1 BENCH_ROLL_PORT=$2
	URL=http://127.0.0.1:$BENCH_HTTP_PORT
	t0=$(date +%s%N)
	if [ "$setup" = classic ]; then
		expand scripts/bench/classic/rolling-supervisord.conf.in "$BENCH_DIR/supervisord.conf"
		expand scripts/bench/classic/rolling-nginx.conf.in "$BENCH_DIR/nginx.conf"
		supervisord -n -c "$BENCH_DIR/supervisord.conf" >"$BENCH_DIR/log/supervisord.stdout" 2>&1 &
		SUP_PID=$!
		nginx -p "$BENCH_DIR/nginx/" -c "$BENCH_DIR/nginx.conf" -e "$BENCH_DIR/log/nginx-stderr.log" &
		NGINX_PID=$!
		started="$SUP_PID $NGINX_PID"
	else
		expand scripts/bench/classic/rolling-hostctl.toml.in "$BENCH_DIR/hostctl.toml"
		"$work/hostctl" run -c "$BENCH_DIR/hostctl.toml" --log-format json 2>"$BENCH_DIR/log/hostctl.stderr" &
		H_PID=$!
		started="$H_PID"
	fi
	"$T" first200 -url "$URL/" -t0 "$t0" -timeout 60s >/dev/null
	# Both instances answer before the load starts.
	"$T" first200 -url "http://127.0.0.1:${BENCH_ROLL_PORT}0/" -t0 "$t0" -timeout 60s >/dev/null
	"$T" first200 -url "http://127.0.0.1:${BENCH_ROLL_PORT}1/" -t0 "$t0" -timeout 60s >/dev/null
	wrk -t2 -c64 -d15s --timeout 30s --latency "$URL/" >"$BENCH_DIR/wrk-rolling.txt" &
	wrk_pid=$!
	sleep 3
	if [ "$setup" = classic ]; then
		supervisorctl -c "$BENCH_DIR/supervisord.conf" restart web:web_0 >/dev/null &&
			supervisorctl -c "$BENCH_DIR/supervisord.conf" restart web:web_1 >/dev/null ||
			echo "compare: classic: the rolling restart failed" >&2
	else
		"$work/hostctl" restart -c "$BENCH_DIR/hostctl.toml" web >/dev/null ||
			echo "compare: hostctl: the rolling restart failed" >&2
	fi
	wait "$wrk_pid"
	"$T" wrk -prefix rolling_ <"$BENCH_DIR/wrk-rolling.txt" | grep -E '^rolling_(failed|requests)=' | tag
	stop_$setup
}

round=1
while [ "$round" -le "$ROUNDS" ]; do
	for setup in classic hostctl; do
		echo "compare: round $round/$ROUNDS: $setup" >&2
		setup_dir "$setup" "$round"
		start_$setup
		measure
		stop_$setup
		echo "compare: round $round/$ROUNDS: $setup, rolling restart of 2 instances" >&2
		rolling "$setup" "$round"
	done
	round=$((round + 1))
done

model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo
echo "### hostctl vs nginx + supervisord, $(date -u +%Y-%m-%d)"
echo
echo "Machine: $(nproc) CPUs, ${model:-unknown CPU}, $(awk '/MemTotal/ {printf "%.1f GB RAM", $2/1048576}' /proc/meminfo), $(uname -sr)." \
	"$(nginx -v 2>&1 | sed 's/.*: //'), supervisord $(supervisord --version), $("$work/hostctl" version 2>/dev/null | head -1)." \
	"Same Django app and gunicorn settings (3 sync workers, unix socket); $ROUNDS rounds, setups alternating; wrk on the same machine."
echo
"$T" table -file "$results"
echo
echo "Raw results: $results" >&2
