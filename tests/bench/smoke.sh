#!/bin/sh
# SPDX-License-Identifier: MIT
#
# smoke.sh MMAPQ_BENCH -- the benchmark's correctness smoke (ctest
# mmapq_bench_smoke, label fast): mmapq_bench --quick --e2e --e2e-lines
# --idle --fanout --fanin --space --corpus --durability --plot DIR (tiny
# counts, one run, every record verified, every transport must run, every
# output file equal to its input: it exits non-zero otherwise; both lines
# targets measured, met or not; all nine fan-in rows measured: mmapq,
# POSIX mq and the socket to mmapq-producer with 1, 2 and 4 writers, every
# record checked by its reader, each writer's in its order), then what
# --plot wrote: the data files and
# the gnuplot script, and every chart as an SVG that is well-formed XML whose
# root element is <svg> (xmllint), and a PNG, none empty.  No timing is
# asserted.  Without gnuplot or xmllint (tests/deps.sh --test installs both) the
# charts are not checked, and that is said.
#
# smoke.sh MMAPQ_BENCH format3 (ctest mmapq_bench_format3_smoke): the
# format-3 peer, --quick: libmmapq 1 built from git history and every row run
# on both libraries, every record verified; 77 (skipped) when there is no
# such history to build it from (a tarball, a shallow clone), as the
# benchmark says.
#
# smoke.sh MMAPQ_BENCH peers (ctest mmapq_bench_peers_smoke): mmapq_bench
# --quick --peers, the durability inputs (20,000 lines, 40,000 integers)
# over POSIX mq, Redis Streams (no persistence, AOF everysec, AOF always)
# and NATS JetStream, each on a server it starts itself: every one of the
# ten rows must be measured, every output equal to its input (a row that
# could not run, its server missing, fails it, saying why).
set -u
bench=${1:?usage: smoke.sh MMAPQ_BENCH [format3|peers]}
if [ "${2:-}" = peers ]; then
	out=$("$bench" --quick --peers --no-throughput --no-latency 2>&1)
	rc=$?
	printf '%s\n' "$out"
	rows=$(printf '%s\n' "$out" | grep -cE '^  (POSIX mq|Redis Streams|Redis AOF everysec|Redis AOF always|JetStream file) +[0-9.]+ s ')
	if [ "$rc" -ne 0 ] || [ "$rows" -ne 10 ]; then
		echo "smoke: FAIL: mmapq_bench --quick --peers exited $rc, $rows of the 10 peer rows measured"
		exit 1
	fi
	echo "smoke: PASS: every peer ran on both inputs, every output equal to its input"
	exit 0
fi
if [ "${2:-}" = format3 ]; then
	out=$("$bench" --quick --format3 --no-throughput --no-latency 2>&1)
	rc=$?
	printf '%s\n' "$out"
	if printf '%s\n' "$out" | grep -q '^not measured: '; then
		echo "smoke: SKIP: the format-3 peer could not be built here (see above)"
		exit 77
	fi
	if [ "$rc" -ne 0 ] || ! printf '%s\n' "$out" | grep -q '^line 16 KiB, 31/batch '; then
		echo "smoke: FAIL: mmapq_bench --quick --format3 exited $rc or did not run every row"
		exit 1
	fi
	echo "smoke: PASS: the format-3 peer built and ran, every record verified"
	exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/mmapq-bench-smoke.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
plot=$work/plot

"$bench" --quick --e2e --e2e-lines --idle --fanout --fanin --space --corpus --durability --plot "$plot" \
	>"$work/out.txt"
rc=$?
cat "$work/out.txt"
if [ "$rc" -ne 0 ]; then
	echo "smoke: FAIL: mmapq_bench --quick --e2e --e2e-lines --idle --fanout --fanin --space --corpus --durability --plot exited $rc"
	exit 1
fi
fail=0
# the fan-in table: a row per transport and count of writers, each with its records/s
fanin=$(sed -n '/^Fan-in: /,/^CPUs busy: the CPU time of all of them/p' "$work/out.txt" |
	grep -cE '^.{32} [124] +[0-9.]+[kM]? \[')
if [ "$fanin" -ne 9 ]; then
	echo "smoke: FAIL: $fanin of the 9 fan-in rows measured"
	fail=1
fi
lines=$(grep -cE '^    (met|NOT MET) +lines (64 B|1 KiB) to a file: ' "$work/out.txt")
if [ "$lines" -ne 2 ]; then
	echo "smoke: FAIL: $lines of the 2 lines end-to-end targets measured"
	fail=1
fi
for f in throughput.dat ratio.dat latency.dat e2e.dat fanout.dat mmapq_bench.gp; do
	[ -s "$plot/$f" ] || { echo "smoke: FAIL: --plot did not write $f"; fail=1; }
done
if ! command -v gnuplot >/dev/null 2>&1 || ! command -v xmllint >/dev/null 2>&1; then
	echo "smoke: SKIP: the charts are not checked (no gnuplot or no xmllint: tests/deps.sh --test)"
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
