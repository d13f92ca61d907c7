#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# json-schema.sh BUILD_DIR -- mmapqctl's --json output is what mmapqctl(1)
# documents in its section JSON OUTPUT, where every key has an entry
#   .TP
#   .BR KEY " (TYPE)"
# (KEY as object.key, an array element as [], TYPE a JSON type as jq names
# it), under ".SS status \-\-json" and ".SS dump \-\-json".  Compared, in
# order, with the key paths and types jq finds in the real output:
#   * status --json of an int queue (producer and consumer attached once)
#     and of a line queue;
#   * consumers --json of the int queue;
#   * dump --json of an int queue, of a line queue holding a UTF-8 line
#     and one that is not UTF-8 (line, then line_hex), and of a binary
#     queue (binary_hex); the keys of all three together;
#   * and the values that the entries promise: depth = tail - head, published
#     = tail, consumed = head, used_bytes (16 bytes an int record) and
#     used_percent of size, each consumer's lag_bytes, capacity and
#     slot_size null, clean, no salvage, line_hex, binary_hex and a non-UTF-8
#     path as path_hex.
# Exit 0 pass, 1 fail, 77 skip (no jq: tests/deps.sh --test installs it).
set -u
build=$(cd "${1:?usage: json-schema.sh BUILD_DIR}" && pwd) || exit 1
src=$(cd "$(dirname "$0")/../.." && pwd)
page=$src/daemons/man/mmapqctl.1
bin=$build/daemons
command -v jq >/dev/null || { echo "json_schema: SKIP: no jq (package jq)" >&2; exit 77; }
work=$(mktemp -d /tmp/mmapq-json.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT
fail=0
pass() { echo "json_schema: PASS: $*"; }
failed() { echo "json_schema: FAIL: $*"; fail=1; }

# documented SUBSECTION: "KEY TYPE" lines of the entries under
# ".SS SUBSECTION" of JSON OUTPUT, in order
documented() {
	awk -v want="$1" '
		/^[.]SH / { in_json = ($0 == ".SH JSON OUTPUT"); sub_ok = 0; next }
		!in_json { next }
		/^[.]SS / { s = substr($0, 5); gsub(/"|\\/, "", s); sub_ok = (s == want); next }
		sub_ok && tp && match($0, /^[.]BR [^ ]+ " [(][a-z]+( or [a-z]+)?[)]"$/) {
			split($0, f, " "); t = substr($0, index($0, "(") + 1)
			sub(/[)]"$/, "", t); gsub(/ or /, "|", t); print f[2], t
		}
		{ tp = ($0 == ".TP") }' "$page"
}
# actual: "KEY TYPE" of every path in the JSON on stdin, in order of first
# appearance, array indices as []
actual() {
	jq -r 'paths as $p | [($p | map(if type == "number" then "[]" else . end) | join(".")),
		(getpath($p) | type)] | join(" ")' | awk '!seen[$0]++'
}
# same NAME DOCUMENTED ACTUAL: the same keys in the same order, each of
# its documented type or of one of them ("number|null")
same() {
	if [ -n "$2" ] && awk 'NR == FNR { doc[FNR] = $0; n = FNR; next }
		{ split(doc[FNR], d, " "); if ($1 != d[1] || index("|" d[2] "|", "|" $2 "|") == 0) bad = 1 }
		END { exit (bad || FNR != n) }' <(echo "$2") <(echo "$3"); then
		pass "$1: $(wc -l <<<"$2") keys, as documented (names, types, order)"
	else
		failed "$1: documented (<) and printed (>) keys differ:"
		diff <(echo "$2") <(echo "$3")
	fi
}

doc_status=$(documented "status --json")
doc_dump=$(documented "dump --json")
doc_consumers=$(documented "consumers --json")
if [ "$(wc -l <<<"$doc_status")" -lt 20 ] || [ "$(wc -l <<<"$doc_dump")" -lt 4 ]; then
	failed "$page: JSON OUTPUT: found only these entries: $doc_status $doc_dump"
fi

# ---- queues: an int queue both roles attached to once, a line queue -------
printf '[queue]\npath = %s/int.queue\nsize = 256\nmax_record = 8\n' "$work" >"$work/int.ini"
printf '[queue]\npath = %s/line.queue\nsize = 4K\nmax_record = 64\nformat = line\n' "$work" >"$work/line.ini"
printf '[queue]\npath = %s/bin.queue\nsize = 4K\nmax_record = 64\nformat = binary\n' "$work" >"$work/bin.ini"
echo 1 2 3 -4 | "$bin/mmapq-producer" --config "$work/int.ini" || failed "mmapq-producer (int)"
"$bin/mmapq-consumer" --config "$work/int.ini" --count 1 >/dev/null || failed "mmapq-consumer --count 1"
printf 'caf\xc3\xa9 "x"\t\\\n\xff\xfeA\n' | "$bin/mmapq-producer" --config "$work/line.ini" ||
	failed "mmapq-producer (line)"
printf '\0\0\0\3a\0b\0\0\0\0' | "$bin/mmapq-producer" --config "$work/bin.ini" ||
	failed "mmapq-producer (binary)"

ctl() { "$bin/mmapqctl" "$@" 2>"$work/err" || { failed "mmapqctl $*: exit $?: $(cat "$work/err")"; }; }
ctl --config "$work/int.ini" status --json >"$work/status-int.json"
ctl --config "$work/line.ini" status --json >"$work/status-line.json"
ctl --config "$work/int.ini" dump --json >"$work/dump-int.json"
ctl --config "$work/line.ini" dump --json >"$work/dump-line.json"
ctl --config "$work/bin.ini" dump --json >"$work/dump-bin.json"
ctl --config "$work/int.ini" consumers --json >"$work/consumers-int.json"
for f in "$work"/*.json; do
	if [ "$(wc -l <"$f")" != 1 ] || ! jq -e . "$f" >/dev/null; then
		failed "$(basename "$f"): not one line of JSON: $(cat "$f")"
	fi
done

# the path is "path" (UTF-8) or, in its place, "path_hex"
doc_status_utf8=$(grep -v '^path_hex ' <<<"$doc_status")
doc_status_hex=$(grep -v '^path ' <<<"$doc_status" | grep -v '^consumers[.]\[\]')
same "status --json (int queue)" "$doc_status_utf8" "$(actual <"$work/status-int.json")"
# no consumer registered: an empty consumers array
doc_status_none=$(grep -v '^consumers[.]\[\]' <<<"$doc_status_utf8")
same "status --json (line queue)" "$doc_status_none" "$(actual <"$work/status-line.json")"
same "dump --json (int, line and binary queues)" "$doc_dump" \
	"$(cat "$work/dump-int.json" "$work/dump-line.json" "$work/dump-bin.json" | actual)"
same "consumers --json" "$doc_consumers" "$(actual <"$work/consumers-int.json")"
# each format only its own record keys
keys_int=$(actual <"$work/dump-int.json" | cut -d' ' -f1 | tr '\n' ' ')
keys_line=$(actual <"$work/dump-line.json" | cut -d' ' -f1 | tr '\n' ' ')
keys_bin=$(actual <"$work/dump-bin.json" | cut -d' ' -f1 | tr '\n' ' ')
if [ "$keys_int" = "[] [].seq [].value " ] && [ "$keys_line" = "[] [].seq [].line [].line_hex " ] &&
	[ "$keys_bin" = "[] [].seq [].binary_hex " ]; then
	pass "dump --json: value for int records, line or line_hex for line records, binary_hex for binary"
else
	failed "dump --json keys: int '$keys_int', line '$keys_line', binary '$keys_bin'"
fi

# ---- the values the entries promise -----------------------------------------
check() { # WHAT JQ-EXPRESSION FILE
	if jq -e "$2" "$3" >/dev/null; then pass "$1"; else failed "$1: $2 on $(cat "$3")"; fi
}
check "status: depth = tail - head, published = tail, consumed = head, both attached once, detached" \
	'.depth == .tail - .head and .producer.published == .tail and .consumer.consumed == .head
	 and .tail == 4 and .head == 1 and .producer.attaches == 1 and .consumer.attaches == 1
	 and .producer.attached == false and .producer.pid > 0 and .attached_by == "lock"
	 and .format == "int" and .version == 4 and .max_consumers == 8
	 and (.consumers | length) == 1 and .consumers[0].name == "default"
	 and .consumers[0].position == .head and .consumers[0].lag == .depth' "$work/status-int.json"
check "status: in bytes: size, max_record, used_bytes (16 an int record), used_percent; no slots; clean, no salvage" \
	'.size == 256 and .max_record == 8 and .used_bytes == 48 and .used_percent == 18.8
	 and .capacity == null and .slot_size == null and .clean == true
	 and .salvage == {"count":0,"last_usec":0,"dropped_records":0,"dropped_bytes":0,
	                  "below_from":0,"below_to":0,"above_from":0,"above_to":0}
	 and .consumers[0].lag_bytes == .used_bytes' "$work/status-int.json"
check "consumers: the one consumer \"default\" as status has it, not attached" \
	'length == 1 and .[0].name == "default" and .[0].position == 1 and .[0].consumed == 1
	 and .[0].lag == 3 and .[0].lag_bytes == 48 and .[0].attached == false and .[0].rate == null and .[0].attaches == 1' \
	"$work/consumers-int.json"
if jq -e --arg p "$work/int.queue" --argjson now "$(date +%s)" \
	'.path == $p and (.created_usec / 1e6 | floor) <= $now and .created_usec > ($now - 600) * 1e6
	 and .producer.start_usec >= .created_usec' "$work/status-int.json" >/dev/null; then
	pass "status: path as given, times in microseconds since the epoch"
else
	failed "status: path or times: $(cat "$work/status-int.json")"
fi
check "dump (int): the unconsumed records, oldest first, signed" \
	'. == [{"seq":1,"value":2},{"seq":2,"value":3},{"seq":3,"value":-4}]' "$work/dump-int.json"
check "dump (line): a UTF-8 line as a string, escaped; another as hex" \
	'. == [{"seq":0,"line":"café \"x\"\t\\"},{"seq":1,"line_hex":"fffe41"}]' "$work/dump-line.json"
check "dump (binary): every record as hex, the empty one too" \
	'. == [{"seq":0,"binary_hex":"610062"},{"seq":1,"binary_hex":""}]' "$work/dump-bin.json"

# a path that is not UTF-8: hex
bad=$work/$'\xff'dir
mkdir "$bad" || failed "mkdir $bad"
echo 7 | "$bin/mmapq-producer" --queue "$bad/q" || failed "mmapq-producer into $bad/q"
hex=$(printf '%s' "$bad/q" | od -An -v -tx1 | tr -d ' \n')
ctl --queue "$bad/q" status --json >"$work/status-hex.json.txt"
if jq -e --arg h "$hex" '.path_hex == $h and (has("path") | not) and .depth == 1' \
	"$work/status-hex.json.txt" >/dev/null; then
	pass "status: a path that is not UTF-8 as path_hex"
else
	failed "status: path_hex $hex expected: $(cat "$work/status-hex.json.txt")"
fi
same "status --json (a path that is not UTF-8)" "$doc_status_hex" "$(actual <"$work/status-hex.json.txt")"

if [ $fail = 0 ]; then echo "json_schema: PASS"; else echo "json_schema: FAILED"; fi
exit $fail
