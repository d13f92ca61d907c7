#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# man-examples.sh BUILD_DIR -- the programs in the EXAMPLES of the
# library's man pages (common/queue/man/*.3) are real: each page's program
# (the .EX block with `#include <mmapq.h>`) is taken out of the page,
# compiled as C11 with -Wall -Wextra -Werror against the built libmmapq, and
# run as the page's transcript (the .EX block of `$ ./PROGRAM ...` lines
# and their output) shows it, /tmp/q and /tmp/lines replaced by queues of the
# test's own; in the order the transcripts build on (make, wait on the empty
# queue, publish, look, consume, the consumers, claim and commit, repair);
# then mmapq(3)'s transcript, which uses them all.  Also: publish and
# consume through a ring of 8 int records (publish waits for room), mkqueue
# refusing a queue of another geometry, and qrepair saying what a salvage
# dropped from a damaged file and refusing a file in use (exit 2).
# Exit 0 pass, 1 fail.
set -u
build=$(cd "${1:?usage: man-examples.sh BUILD_DIR}" && pwd) || exit 1
src=$(cd "$(dirname "$0")/../.." && pwd)
man=$src/common/queue/man
# shellcheck source=/dev/null
. "$build/systemd/mmapq-test.env"
work=$(mktemp -d /tmp/mmapq-man-examples.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT
fail=0
pass() { echo "man_examples: PASS: $*"; }
failed() { echo "man_examples: FAIL: $*"; fail=1; }
san=()
[ "${MMAPQ_SANITIZED:-0}" = 1 ] && san=("-fsanitize=address,undefined")

# blocks PAGE: the .EX blocks of its EXAMPLES, troff escapes undone, each
# followed by a line "@@"
blocks() {
	awk '/^[.]SH / { ex = ($0 == ".SH EXAMPLES"); next }
		ex && /^[.]EX$/ { in_ex = 1; next }
		ex && /^[.]EE$/ { in_ex = 0; print "@@"; next }
		in_ex' "$1" | sed -e 's/\\-/-/g' -e 's/\\&//g' -e 's/\\e/\\/g'
}
# program PAGE: its C program; transcript PAGE: its "$ " lines and output
program() { blocks "$1" | awk '/^@@$/ { if (b ~ /#include <mmapq.h>/) { printf "%s", b; exit } b = ""; next } { b = b $0 "\n" }'; }
transcript() { blocks "$1" | awk '/^@@$/ { if (b ~ /^[$] /) printf "%s", b; b = ""; next } { b = b $0 "\n" }'; }

# run_transcript PAGE: each "$ ./PROG ARG..." run, its output (stdout and
# stderr) compared with the lines after it
run_transcript() {
	local page=$1 line cmd want=""
	transcript "$man/$page.3" | sed -e "s#/tmp/q#$work/q#g" -e "s#/tmp/lines#$work/lines#g" \
		>"$work/$page.transcript"
	[ -s "$work/$page.transcript" ] || { failed "$page(3): no transcript in EXAMPLES"; return; }
	# one command and its expected output at a time
	while IFS= read -r line || [ -n "$line" ]; do
		if [[ $line == '$ '* ]]; then
			[ -n "${cmd-}" ] && check_command "$page" "$cmd" "$want"
			cmd=${line#\$ } want=""
		else
			want+=$line$'\n'
		fi
	done <"$work/$page.transcript"
	[ -n "${cmd-}" ] && check_command "$page" "$cmd" "$want"
}
check_command() { # PAGE COMMAND EXPECTED-OUTPUT
	local -a argv
	local got
	read -ra argv <<<"$2"
	[[ ${argv[0]} == ./* ]] || { failed "$1(3): transcript runs '${argv[0]}', not a program of the pages"; return; }
	argv[0]=$work/${argv[0]#./}
	got=$("${argv[@]}" 2>&1; echo "exit $?")
	if [ "$got" = "$3exit 0" ]; then
		pass "$1(3): \$ $2 (exit 0, $(printf '%s' "$3" | wc -l) lines as the page shows)"
	else
		failed "$1(3): \$ $2: printed:"$'\n'"$got"$'\n'"the page shows:"$'\n'"$3"
	fi
}

# ---- the programs, as the pages name them ------------------------------------
declare -A prog
pages="mmapq_open mmapq_strerror mmapq_reserve mmapq_status mmapq_available mmapq_consumers
	mmapq_producers mmapq_claim mmapq_repair"
for page in $pages; do
	f=$man/$page.3
	name=$(transcript "$f" | sed -n 's#^[$] [.]/\([a-z_]*\).*#\1#p' | head -1)
	[ -n "$name" ] || { failed "$page(3): no '\$ ./PROGRAM' in its EXAMPLES"; continue; }
	prog[$page]=$name
	program "$f" >"$work/$name.c"
	if [ ! -s "$work/$name.c" ]; then
		failed "$page(3): no program (#include <mmapq.h>) in its EXAMPLES"
	elif cc -std=c11 -Wall -Wextra -Werror "${san[@]}" -I"$src/common/queue/include" "$work/$name.c" \
		-L"$build/common/queue" -lmmapq -Wl,-rpath,"$build/common/queue" -o "$work/$name" 2>"$work/$name.err"; then
		pass "$page(3): $name compiles with -Wall -Wextra -Werror ($(wc -l <"$work/$name.c") lines)"
	else
		failed "$page(3): $name does not compile:"; cat "$work/$name.err"
	fi
done

# ---- their transcripts, in the order they build on one another ----------------
for page in $pages; do
	[ -x "$work/${prog[$page]-none}" ] && run_transcript "$page"
done
rm -f "$work/q" "$work/q.lock"
run_transcript mmapq

# ---- beyond the transcripts ------------------------------------------------------
# a full queue: publish waits for room while consume drains it
printf '[queue]\npath = %s/q8\nsize = 128\nmax_record = 8\n' "$work" >"$work/q8.ini"
"$build/daemons/mmapq-producer" --config "$work/q8.ini" </dev/null ||
	failed "mmapq-producer: a ring of 8 int records"
if [ -x "$work/publish" ] && [ -x "$work/consume" ]; then
	"$work/consume" "$work/q8" 50 >"$work/consumed" &
	consumer=$!
	mapfile -t values < <(seq -25 24)
	"$work/publish" "$work/q8" "${values[@]}" || failed "publish 50 records through 8: exit $?"
	wait $consumer || failed "consume 50 records: exit $?"
	if [ "$(cat "$work/consumed")" = "$(seq -25 24)" ]; then
		pass "publish and consume: 50 records through a ring of 8, in order"
	else
		failed "publish and consume through a ring of 8: $(tr '\n' ' ' <"$work/consumed")"
	fi
fi
# mkqueue against a queue of another geometry: refused, both values named
if [ -x "$work/mkqueue" ]; then
	out=$("$work/mkqueue" "$work/q8" 2>&1)
	rc=$?
	if [ $rc = 1 ] && [[ $out == *128*1048576* ]]; then
		pass "mkqueue: a queue of another geometry refused: $out"
	else
		failed "mkqueue on a ring of 128 bytes: exit $rc: $out"
	fi
fi
# qrepair: a file in use refused (exit 2); a damaged one salvaged, said
if [ -x "$work/qrepair" ] && [ -x "$work/publish" ]; then
	"$work/publish" "$work/q8" 7 8 9 || failed "publish 7 8 9" # records 50, 51, 52
	# a producer attached, until its stdin closes
	coproc "$build/daemons/mmapq-producer" --config "$work/q8.ini"
	until "$build/daemons/mmapqctl" --config "$work/q8.ini" status --json 2>/dev/null |
	      grep -q "\"producer\":{\"pid\":$COPROC_PID,\"attached\":true"; do
		[ $SECONDS -lt 60 ] || { failed "the producer never attached"; break; }
	done
	out=$("$work/qrepair" "$work/q8" 2>&1); rc=$?
	[ $rc = 2 ] && [[ $out == *"in use"* ]] && pass "qrepair of a file in use: exit 2: $out" ||
		failed "qrepair of a file in use: exit $rc: $out"
	exec {COPROC[1]}>&-
	wait "$COPROC_PID"
	# record 51 (ring bytes 48..63, after the 50 of above) damaged: it and
	# the one after it dropped
	printf '\377' | dd of="$work/q8" bs=1 seek=$((8192 + 48 + 12)) conv=notrunc status=none
	out=$("$work/qrepair" "$work/q8" 2>&1); rc=$?
	[ $rc = 0 ] && [[ $out == *": 2 records dropped: [50, 50) and [51, 53), 32 bytes"* ]] &&
		pass "qrepair of a damaged file: $out" || failed "qrepair of a damaged file: exit $rc: $out"
fi

if [ $fail = 0 ]; then echo "man_examples: PASS"; else echo "man_examples: FAILED"; fi
exit $fail
