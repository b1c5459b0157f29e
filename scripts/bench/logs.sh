#!/bin/sh
# Log capture benchmark (make bench-logs): MB/s of the same writer program
# writing to /dev/null, captured by cat > file (reference), by hostctl's
# supervisor/logfile into a rotating log, and by supervisord from Debian's
# supervisor package. Prints a table. Needs supervisord: installs it with
# apt-get when run as root, otherwise says what to install.
#
# Environment: BENCH_LOGS_ARGS passes flags to the helper, e.g.
#   BENCH_LOGS_ARGS="-reps 5 -bytes 1073741824" scripts/bench/logs.sh
set -eu
cd "$(dirname "$0")/../.."
GO=${GO:-go}

if ! command -v supervisord >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "bench-logs: installing supervisor (for the comparison)" >&2
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq supervisor >/dev/null
		# The package starts a system supervisord; the benchmark runs its own.
		if command -v systemctl >/dev/null 2>&1; then
			systemctl stop supervisor >/dev/null 2>&1 || true
		fi
	else
		echo "bench-logs: supervisord missing; install with: sudo apt-get install -y supervisor" >&2
		exit 1
	fi
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
$GO build -o "$out/logsbench" ./scripts/bench/logs
# shellcheck disable=SC2086 # BENCH_LOGS_ARGS is split on purpose
"$out/logsbench" run -supervisord "$(command -v supervisord)" ${BENCH_LOGS_ARGS:-}

# Log rules: hostctl's capture with none and with 5 [[alerts.log_rule]].
echo
scripts/bench/logrules.sh
