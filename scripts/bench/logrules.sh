#!/bin/sh
# Log rules benchmark (the last part of make bench-logs; runs alone too):
# the same kind of capture as bench-logs (yes | head -c 64MB into a real
# logfile.Stream, BenchmarkCapture of cmd/hostctl/internal/watch) with no
# [[alerts.log_rule]] and with 5 of them matching behind the writer, in
# turn, BENCH_RULES_ROUNDS times (default 5): the machine's load changes
# between rounds, and a round's runs see about the same load. Prints each
# run, then per configuration the medians and ranges of MB/s, and the
# median CPU, and per round the ratio to no rules.
#
# BENCH_RULES_BASE=REV adds a third run to each round: 5 rules with the
# matcher of git revision REV (its cmd/hostctl/internal/watch and alert,
# this checkout's benchmark), to compare before and after on the same
# load. Example: BENCH_RULES_BASE=main scripts/bench/logrules.sh
#
# rule-dropped-B/op is matching work the rules' full queue dropped (never
# output); cpu-% is the capturing process's CPU (100 = one core),
# cpu-ms/op the same per 64 MiB (it moves less with the load than MB/s).
set -eu
cd "$(dirname "$0")/../.."
GO=${GO:-go}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rounds=${BENCH_RULES_ROUNDS:-5}
bench=cmd/hostctl/internal/watch/logrules_bench_test.go
$GO test -c -o "$out/watch.test" ./cmd/hostctl/internal/watch/
runs="none:watch.test:0 rules:watch.test:5"
if [ -n "${BENCH_RULES_BASE:-}" ]; then
	mkdir "$out/base"
	git archive "$BENCH_RULES_BASE" | tar -x -C "$out/base"
	cp "$bench" "$out/base/$bench"
	(cd "$out/base" && $GO test -c -o "$out/base.test" ./cmd/hostctl/internal/watch/)
	runs="$runs base-rules:base.test:5"
fi
echo
echo "hostctl capture with log rules ($rounds rounds; in turn: $runs):"
(
	cd cmd/hostctl/internal/watch
	i=0
	while [ "$i" -lt "$rounds" ]; do
		i=$((i + 1))
		for run in $runs; do
			label=${run%%:*}
			bin=${run#*:}
			k=${bin#*:}
			bin=${bin%:*}
			"$out/$bin" -test.run '^$' -test.bench "^BenchmarkCapture/rules=$k\$" -test.benchtime 3x |
				grep '^BenchmarkCapture' | sed "s/^/round $i $label /"
		done
	done
) | tee "$out/rules.txt"
awk '
function median(a, n,   i, j, t) {
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	for (f = 5; f <= NF; f++) {
		if ($f == "MB/s") mb[$3, $2] = $(f - 1)
		if ($f == "cpu-ms/op") ms[$3, $2] = $(f - 1)
		if ($f == "rule-dropped-B/op") drop[$3, $2] = $(f - 1)
	}
	if (!($3 in seen)) { seen[$3] = 1; order[++nl] = $3 }
	rounds[$2] = 1
}
END {
	for (l = 1; l <= nl; l++) {
		label = order[l]; n = 0; lo = hi = maxd = 0
		for (r in rounds) if ((label, r) in mb && ("none", r) in mb) {
			n++
			m[n] = mb[label, r]; c[n] = ms[label, r]
			ratio[n] = mb[label, r] / mb["none", r]; cratio[n] = ms[label, r] / ms["none", r]
			lo = (n == 1 || m[n] < lo) ? m[n] : lo; hi = (n == 1 || m[n] > hi) ? m[n] : hi
			lor = (n == 1 || ratio[n] < lor) ? ratio[n] : lor; hir = (n == 1 || ratio[n] > hir) ? ratio[n] : hir
			maxd = (drop[label, r] > maxd) ? drop[label, r] : maxd
		}
		if (n == 0) continue
		printf "  %-10s %4.0f MB/s median (%.0f-%.0f), %4.0f ms CPU per 64 MiB", label, median(m, n), lo, hi, median(c, n)
		if (label != "none")
			printf "; per round vs none: MB/s x%.2f median (%.2f-%.2f), CPU x%.2f; rule work dropped <= %.0f B", median(ratio, n), lor, hir, median(cratio, n), maxd
		printf "\n"
	}
}' "$out/rules.txt"
