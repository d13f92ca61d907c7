#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# metrics-series.sh BUILD_DIR -- what the series of `mmapqctl metrics` are
# and are not, across a `mmapqctl consumer remove`:
#
#   - no series is "the consumer": nothing is labelled role="consumer"
#     (such a series was the consumer named default, else the first in the
#     table, and changed whose it was when that one was removed);
#   - consumed is what a consumer consumed, position where it is: audit
#     registers at 3 (where default left off) and consumes 1: consumed 1,
#     position 4; default consumed 3, in three runs (3 attaches);
#   - after `consumer remove default`, every series still there was there
#     before, no counter went down, and each of audit's series holds the
#     value it had; default's are gone;
#   - mmapq_build_info says the version `mmapqctl --version` prints, and
#     file format 4;
#   - `promtool check metrics` finds nothing wrong, before and after.
# Exit 0 pass, 1 fail, 77 skip (no promtool: tests/deps.sh installs it).
set -u
build=$(cd "${1:?usage: metrics-series.sh BUILD_DIR}" && pwd) || exit 1
bin=$build/daemons
command -v promtool >/dev/null || { echo "metrics_series: SKIP: no promtool" >&2; exit 77; }
work=$(mktemp -d /tmp/mmapq-metrics-series.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT
fail=0
pass() { echo "metrics_series: PASS: $*"; }
failed() { echo "metrics_series: FAIL: $*"; fail=1; }
cfg=$work/mmapq.ini
q=$work/queue
printf '[queue]\npath = %s\nsize = 4K\nmax_record = 64\n' "$q" >"$cfg"

# metrics FILE: mmapqctl metrics into FILE, checked by promtool
metrics() {
	"$bin/mmapqctl" --config "$cfg" metrics >"$1" 2>"$work/err" || failed "mmapqctl metrics: $(cat "$work/err")"
	local out
	out=$(promtool check metrics <"$1" 2>&1)
	[ -z "$out" ] && pass "promtool check metrics ($(basename "$1")): clean" ||
		failed "promtool check metrics ($(basename "$1")): $out"
}
# has FILE SERIES VALUE: the sample is in FILE
has() {
	grep -qxF "$2 $3" "$1" || { failed "$(basename "$1"): no '$2 $3'"; grep -F "${2%%\{*}{" "$1"; return 1; }
}

seq 1 3 | "$bin/mmapq-producer" --config "$cfg" || failed "mmapq-producer"
for _ in 1 2 3; do
	"$bin/mmapq-consumer" --config "$cfg" --count 1 >/dev/null || failed "mmapq-consumer (default)"
done
echo 4 | "$bin/mmapq-producer" --config "$cfg" || failed "mmapq-producer"
"$bin/mmapq-consumer" --config "$cfg" --name audit --count 1 >"$work/audit.out" || failed "mmapq-consumer audit"
[ "$(cat "$work/audit.out")" = 4 ] || failed "audit got '$(cat "$work/audit.out")', want 4"
metrics "$work/before.txt"

# ---- no series is "the consumer"
if grep -q 'role="consumer"' "$work/before.txt"; then
	failed "series labelled role=\"consumer\":"; grep 'role="consumer"' "$work/before.txt"
else
	pass "no series labelled role=\"consumer\""
fi

# ---- consumed against position
has "$work/before.txt" "mmapq_consumer_consumed_records_total{queue=\"$q\",consumer=\"audit\"}" 1 &&
	has "$work/before.txt" "mmapq_consumer_position{queue=\"$q\",consumer=\"audit\"}" 4 &&
	has "$work/before.txt" "mmapq_consumer_consumed_records_total{queue=\"$q\",consumer=\"default\"}" 3 &&
	has "$work/before.txt" "mmapq_consumer_position{queue=\"$q\",consumer=\"default\"}" 3 &&
	has "$work/before.txt" "mmapq_consumer_attaches_total{queue=\"$q\",consumer=\"default\"}" 3 &&
	pass "audit consumed 1 (position 4), default 3 (position 3, 3 attaches)"

# ---- build_info
version=$("$bin/mmapqctl" --version | sed -n '1s/^mmapqctl //p')
has "$work/before.txt" "mmapq_build_info{version=\"$version\",file_format=\"4\"}" 1 &&
	pass "mmapq_build_info: version $version, file format 4"

# ---- consumer remove default: nothing changes whose it is
"$bin/mmapqctl" --config "$cfg" consumer remove default >/dev/null 2>"$work/err" ||
	failed "consumer remove default: $(cat "$work/err")"
metrics "$work/after.txt"
# "series value" of the samples; the counters' names
samples() { grep -v '^#' "$1" | sed 's/ \([^ ]*\)$/\t\1/' | sort; }
samples "$work/before.txt" >"$work/before.tsv"
samples "$work/after.txt" >"$work/after.tsv"
sed -n 's/^# TYPE \([^ ]*\) counter$/\1/p' "$work/before.txt" "$work/after.txt" | sort -u >"$work/counters"
bad=$(join -t $'\t' -a 2 -e MISSING -o 0,1.2,2.2 "$work/before.tsv" "$work/after.tsv" |
	awk -F '\t' -v counters="$work/counters" '
		BEGIN { while ((getline c < counters) > 0) counter[c] = 1 }
		{ name = $1; sub(/[{].*/, "", name) }
		$2 == "MISSING" { print "new series after the remove: " $1; next }
		counter[name] && $3 + 0 < $2 + 0 { print "counter went down: " $1 " " $2 " -> " $3 }')
[ -z "$bad" ] && pass "after the remove: no series new, no counter down" || failed "$bad"
grep -F 'consumer="audit"' "$work/before.tsv" >"$work/audit.before"
grep -F 'consumer="audit"' "$work/after.tsv" >"$work/audit.after"
[ -s "$work/audit.before" ] && cmp -s "$work/audit.before" "$work/audit.after" &&
	pass "audit's series as they were ($(wc -l <"$work/audit.after") of them)" ||
	{ failed "audit's series changed:"; diff "$work/audit.before" "$work/audit.after"; }
if grep -q 'consumer="default"' "$work/after.txt"; then
	failed "default's series are still there"
else
	pass "default's series are gone"
fi

[ $fail = 0 ] && echo "metrics_series: PASS" || echo "metrics_series: FAILED"
exit $fail
