#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# metrics-names.sh BUILD_DIR -- the metric families `mmapqctl metrics`
# prints are the ones mmapqctl(1) documents in its section METRICS, where
# each has an entry
#   .TP
#   .BR NAME " (TYPE)"
# in the order printed, TYPE as its "# TYPE" line says.  A queue of format
# version 4 (a producer and a named consumer attached once) prints every
# family but those documented as "Versions 1 to 3 only" (test_cli's
# recreate_legacy checks a version-3 file's).  Every family has a HELP
# line, and at least one sample per label set the page describes
# (mmapq_build_info: version and file_format, no queue).
# Exit 0 pass, 1 fail.
set -u
build=$(cd "${1:?usage: metrics-names.sh BUILD_DIR}" && pwd) || exit 1
src=$(cd "$(dirname "$0")/../.." && pwd)
page=$src/daemons/man/mmapqctl.1
bin=$build/daemons
work=$(mktemp -d /tmp/mmapq-metrics-names.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT
fail=0
pass() { echo "metrics_names: PASS: $*"; }
failed() { echo "metrics_names: FAIL: $*"; fail=1; }

# "NAME TYPE" of the entries under .SH METRICS, in order; with "legacy"
# as $1, only those whose text starts "Versions 1 to 3 only", else the
# others but those of NATS forwarders ("NATS forwarders only": test_nats's
# health case checks them)
documented() {
	awk -v want="$1" '
		/^[.]SH / { on = ($0 == ".SH METRICS"); next }
		!on { prev = $0; next }
		name != "" { legacy = ($0 ~ /^Versions 1 to 3 only/); nats = ($0 ~ /^NATS forwarders only/);
		             if (!nats && (want == "legacy") == legacy) print name, type; name = "" }
		prev == ".TP" && match($0, /^[.]BR mmapq_[a-z_]+ " [(][a-z]+[)]"$/) {
			split($0, f, " "); name = f[2]; type = substr($0, index($0, "(") + 1)
			sub(/[)]"$/, "", type)
		}
		{ prev = $0 }' "$page"
}

printf '[queue]\npath = %s/queue\nsize = 4K\nmax_record = 64\n' "$work" >"$work/mmapq.ini"
seq 1 3 | "$bin/mmapq-producer" --config "$work/mmapq.ini" || failed "mmapq-producer"
"$bin/mmapq-consumer" --config "$work/mmapq.ini" --name a --count 1 >/dev/null || failed "mmapq-consumer"
"$bin/mmapqctl" --config "$work/mmapq.ini" metrics >"$work/metrics.txt" 2>"$work/err" ||
	failed "mmapqctl metrics: $(cat "$work/err")"

doc=$(documented current)
legacy=$(documented legacy)
printed=$(sed -n 's/^# TYPE \([^ ]*\) \([a-z]*\)$/\1 \2/p' "$work/metrics.txt")
if [ "$(wc -l <<<"$doc")" -lt 25 ] || [ "$(wc -l <<<"$legacy")" -ne 2 ]; then
	failed "$page: METRICS: found only these entries: $doc / $legacy"
elif [ "$doc" = "$printed" ]; then
	pass "$(wc -l <<<"$doc") families, as documented (names, types, order)"
else
	failed "documented (<) and printed (>) families differ:"
	diff <(echo "$doc") <(echo "$printed")
fi
while read -r name _; do
	grep -q "^# HELP $name " "$work/metrics.txt" || failed "$name has no HELP line"
	# the program's, not the queue's
	if [ "$name" = mmapq_build_info ]; then
		grep -Eqx 'mmapq_build_info\{version="[0-9]+[.][0-9]+[.][0-9]+[^"]*",file_format="4"\} 1' \
			"$work/metrics.txt" || failed "mmapq_build_info has no sample with version and file_format 4"
		continue
	fi
	grep -Eq "^$name\{queue=\"$work/queue\"(,(role|consumer|producer)=\"[a-z]+\")?(,version=\"4\",format=\"int\")?\} " \
		"$work/metrics.txt" || failed "$name has no sample for the queue"
done <<<"$printed"
grep -qx "mmapq_consumer_lag_bytes{queue=\"$work/queue\",consumer=\"a\"} 32" "$work/metrics.txt" &&
	grep -qx "mmapq_depth_bytes{queue=\"$work/queue\"} 32" "$work/metrics.txt" &&
	grep -qx "mmapq_size_bytes{queue=\"$work/queue\"} 4096" "$work/metrics.txt" &&
	pass "the bytes are the queue's: size 4096, depth and a's lag 32 (two int records)" ||
	{ failed "the bytes are not the queue's:"; cat "$work/metrics.txt"; }

[ $fail = 0 ] && echo "metrics_names: PASS" || echo "metrics_names: FAILED"
exit $fail
