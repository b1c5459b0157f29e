#!/bin/sh
# Runs a command beside `stress-ng --cpu 2` (two busy workers: on a 2-core
# machine every test then shares its CPU), and stops stress-ng by its PID
# however the command ends. Used by `make test-stress` and .ci/run: a test
# that needs a quiet machine to pass fails here, not on a user's machine.
#
#   scripts/with-stress.sh COMMAND [ARG...]
set -eu
command -v stress-ng >/dev/null 2>&1 || { echo "with-stress: stress-ng is missing; run scripts/test-deps.sh (as root)" >&2; exit 1; }
# --timeout is only a backstop should this script itself be killed with
# SIGKILL (no trap runs then); the trap below is what stops it.
stress-ng --cpu "${STRESS_CPUS:-2}" --timeout 3h --quiet &
pid=$!
trap 'kill "$pid" 2>/dev/null || :; wait "$pid" 2>/dev/null || :' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
echo "with-stress: stress-ng --cpu ${STRESS_CPUS:-2} running as pid $pid beside: $*" >&2
status=0
"$@" || status=$?
exit $status
