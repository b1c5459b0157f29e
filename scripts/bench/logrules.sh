#!/bin/sh
# Log rules benchmark (the last part of make bench-logs; runs alone too):
# the same kind of capture as bench-logs (yes | head -c 64MB into a real
# logfile.Stream, BenchmarkCapture of cmd/hostctl/internal/watch) with no
# [[alerts.log_rule]] and with 5 of them matching behind the writer, in
# turn, BENCH_RULES_ROUNDS times (default 5): the machine's load changes
# between rounds, and a round's two runs see about the same load. Prints
# each run, then medians and ranges of MB/s and CPU and the ratio per
# round. rule-dropped-B/op is matching work the rules' full queue dropped
# (never output); cpu-% is the capturing process's CPU (100 = one core).
set -eu
cd "$(dirname "$0")/../.."
GO=${GO:-go}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rounds=${BENCH_RULES_ROUNDS:-5}
$GO test -c -o "$out/watch.test" ./cmd/hostctl/internal/watch/
echo
echo "hostctl capture with log rules ($rounds rounds, none and 5 rules in turn):"
(
	cd cmd/hostctl/internal/watch
	i=0
	while [ "$i" -lt "$rounds" ]; do
		i=$((i + 1))
		for k in 0 5; do
			"$out/watch.test" -test.run '^$' -test.bench "^BenchmarkCapture/rules=$k\$" -test.benchtime 3x |
				grep '^BenchmarkCapture' | sed "s/^/round $i /"
		done
	done
) | tee "$out/rules.txt"
awk '
function median(a, n,   i, j, t) {
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	k = ($3 ~ /rules=0/) ? 0 : 5
	for (f = 4; f <= NF; f++) {
		if ($f == "MB/s") mb[k, $2] = $(f - 1)
		if ($f == "cpu-%") cpu[k, $2] = $(f - 1)
		if ($f == "rule-dropped-B/op") drop[k, $2] = $(f - 1)
	}
	rounds[$2] = 1
}
END {
	n = 0
	for (r in rounds) if ((0, r) in mb && (5, r) in mb) {
		n++
		m0[n] = mb[0, r]; m5[n] = mb[5, r]; c0[n] = cpu[0, r]; c5[n] = cpu[5, r]
		ratio[n] = mb[5, r] / mb[0, r]; d5[n] = drop[5, r]
		lo0 = (n == 1 || m0[n] < lo0) ? m0[n] : lo0; hi0 = (n == 1 || m0[n] > hi0) ? m0[n] : hi0
		lo5 = (n == 1 || m5[n] < lo5) ? m5[n] : lo5; hi5 = (n == 1 || m5[n] > hi5) ? m5[n] : hi5
		lor = (n == 1 || ratio[n] < lor) ? ratio[n] : lor; hir = (n == 1 || ratio[n] > hir) ? ratio[n] : hir
		maxd = (d5[n] > maxd) ? d5[n] : maxd
	}
	if (n == 0) exit 1
	printf "  no rules: %.0f MB/s median (%.0f-%.0f), cpu %.0f%%\n", median(m0, n), lo0, hi0, median(c0, n)
	printf "  5 rules:  %.0f MB/s median (%.0f-%.0f), cpu %.0f%%, rule work dropped at most %.0f B of 64 MiB\n", median(m5, n), lo5, hi5, median(c5, n), maxd
	printf "  5 rules / none, per round: median %.2f (%.2f-%.2f)\n", median(ratio, n), lor, hir
}' "$out/rules.txt"
