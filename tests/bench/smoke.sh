#!/bin/sh
# SPDX-License-Identifier: MIT
#
# smoke.sh MMAPQ_BENCH -- the benchmark's correctness smoke (ctest
# mmapq_bench_smoke, label fast): mmapq_bench --quick --e2e --idle --fanout --plot
# DIR (tiny counts, one run, every record verified, every transport must run:
# it exits non-zero otherwise), then what --plot wrote: the data files and
# the gnuplot script, and every chart as an SVG that is well-formed XML whose
# root element is <svg> (xmllint), and a PNG, none empty.  No timing is
# asserted.  Without gnuplot or xmllint (tests/deps.sh installs both) the
# charts are not checked, and that is said.
set -u
bench=${1:?usage: smoke.sh MMAPQ_BENCH}
work=$(mktemp -d "${TMPDIR:-/tmp}/mmapq-bench-smoke.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
plot=$work/plot

"$bench" --quick --e2e --idle --fanout --plot "$plot"
rc=$?
if [ "$rc" -ne 0 ]; then
	echo "smoke: FAIL: mmapq_bench --quick --e2e --idle --fanout --plot exited $rc"
	exit 1
fi
fail=0
for f in throughput.dat ratio.dat latency.dat e2e.dat fanout.dat mmapq_bench.gp; do
	[ -s "$plot/$f" ] || { echo "smoke: FAIL: --plot did not write $f"; fail=1; }
done
if ! command -v gnuplot >/dev/null 2>&1 || ! command -v xmllint >/dev/null 2>&1; then
	echo "smoke: SKIP: the charts are not checked (no gnuplot or no xmllint: tests/deps.sh)"
	exit "$fail"
fi
for c in throughput ratio latency e2e fanout; do
	svg=$plot/$c.svg
	if [ ! -s "$svg" ]; then
		echo "smoke: FAIL: $c.svg missing or empty"
		fail=1
		continue
	fi
	if ! xmllint --noout --nonet "$svg"; then
		echo "smoke: FAIL: $c.svg is not well-formed XML"
		fail=1
	elif [ "$(xmllint --nonet --xpath 'local-name(/*)' "$svg")" != svg ]; then
		echo "smoke: FAIL: the root element of $c.svg is not <svg>"
		fail=1
	fi
	[ -s "$plot/$c.png" ] || { echo "smoke: FAIL: $c.png missing or empty"; fail=1; }
done
[ "$fail" -eq 0 ] && echo "smoke: PASS: every record verified; 5 charts, valid SVG"
exit "$fail"
