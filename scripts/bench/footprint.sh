#!/bin/sh
# footprint.sh BINARY [ROUNDS]: hostctl's footprint, printed as a table.
#   size      binary size
#   version   wall time of `hostctl version` (process start-up: package init)
#   status    wall time of `hostctl status` against a daemon with 10 programs
#   idle      VmRSS / RssAnon of `hostctl run` with the proxy running, 3 s
#             after everything is RUNNING
#   load      the same after 10 s of wrk (2 threads, 50 connections) through
#             the proxy to a python3 http.server upstream (skipped without
#             wrk), and the req/s of that load (bound by python3 here)
# Each figure is the median of ROUNDS (default 3) rounds; each round holds
# /tmp/hostctl-bench.lock so that benchmarks on a shared machine do not overlap.
set -eu
bin=$(realpath "$1")
rounds=${2:-3}
dir=$(mktemp -d /tmp/hostctl-footprint.XXXXXX)
trap 'kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
pid=

cat >"$dir/hostctl.toml" <<EOF
[admin]
socket = "$dir/hostctl.sock"
state_dir = "$dir/state"
[log]
dir = "$dir/log"
[program.web]
command = "python3 -m http.server 18000 --bind 127.0.0.1 --directory $dir"
ready = { tcp = "127.0.0.1:18000", interval = "100ms" }
[proxy]
listen = "127.0.0.1:18080"
upstream = "127.0.0.1:18000"
access_log = false
EOF
for i in 1 2 3 4 5 6 7 8 9; do
	printf '[program.sleep%s]\ncommand = "sleep 3600"\n' "$i" >>"$dir/hostctl.toml"
done
echo hello >"$dir/index.html"

# ms N CMD...: median wall time in ms of N runs of CMD.
ms() {
	n=$1
	shift
	i=0
	while [ $i -lt "$n" ]; do
		s=$(date +%s%N)
		"$@" >/dev/null 2>&1
		e=$(date +%s%N)
		echo $(((e - s) / 1000))
		i=$((i + 1))
	done | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'
}

# mem PID: "VmRSS RssAnon" in MB.
mem() {
	awk '/^VmRSS|^RssAnon/ {printf "%.1f ", $2/1024}' "/proc/$1/status"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

round() {
	"$bin" run -c "$dir/hostctl.toml" >"$dir/run.out" 2>&1 &
	pid=$!
	deadline=$(($(date +%s) + 20))
	until "$bin" status -c "$dir/hostctl.toml" 2>/dev/null | grep -q 'sleep9 *RUNNING' &&
		curl -fs http://127.0.0.1:18080/ >/dev/null 2>&1; do
		[ "$(date +%s)" -lt $deadline ] || { cat "$dir/run.out"; exit 1; }
		sleep 0.1
	done
	version=$(ms 20 "$bin" version)
	status=$(ms 20 "$bin" status -c "$dir/hostctl.toml")
	sleep 3
	idle=$(mem $pid)
	load="- -"
	rps=-
	if command -v wrk >/dev/null; then
		rps=$(wrk -t2 -c50 -d10s http://127.0.0.1:18080/ 2>&1 | awk '/Requests\/sec/ {printf "%.0f", $2}')
		sleep 3
		load=$(mem $pid)
	fi
	kill -TERM $pid
	wait $pid || true
	rm -rf "$dir/state" "$dir/log"
	echo "$version $status $idle $load $rps"
}

i=0
while [ $i -lt "$rounds" ]; do
	exec 9>/tmp/hostctl-bench.lock
	flock 9
	round >>"$dir/rounds"
	flock -u 9
	exec 9>&-
	i=$((i + 1))
done

printf '%-28s %s\n' "binary" "$bin"
printf '%-28s %.1f MB\n' "size" "$(stat -c %s "$bin" | awk '{print $1/1048576}')"
col() { awk -v c="$1" '{print $c}' "$dir/rounds" | median; }
printf '%-28s %s ms\n' "hostctl version" "$(col 1)"
printf '%-28s %s ms\n' "hostctl status (10 programs)" "$(col 2)"
printf '%-28s %s MB / %s MB\n' "idle VmRSS / RssAnon" "$(col 3)" "$(col 4)"
printf '%-28s %s MB / %s MB\n' "after load VmRSS / RssAnon" "$(col 5)" "$(col 6)"
printf '%-28s %s\n' "req/s during the load" "$(col 7)"
echo "rounds (version status idle-rss idle-anon load-rss load-anon req/s):"
cat "$dir/rounds"
