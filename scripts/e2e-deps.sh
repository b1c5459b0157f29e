#!/bin/sh
# The Django example's packages (and, with --bench, nginx, supervisord and
# wrk): one list, kept in test-deps.sh.
exec "$(dirname "$0")/test-deps.sh" "$@"
