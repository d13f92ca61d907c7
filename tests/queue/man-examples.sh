#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# man-examples.sh BUILD_DIR -- the programs in the EXAMPLES of the
# library's man pages (common/queue/man/*.3) are real: each page's program
# (the .EX block with `#include <mmapq.h>`) is taken out of the page,
# compiled as C11 with -Wall -Wextra -Werror against the built libmmapq, and
# run as the page's transcript (the .EX block of `$ ./PROGRAM ...` lines
# and their output) shows it, /tmp/q replaced by a queue of the test's own;
# in the order the transcripts build on (make, wait on the empty queue,
# publish, look, consume); then mmapq(3)'s transcript, which uses them all.
# Also: publish and consume through a queue of 8 slots (publish waits for
# room), and mkqueue refusing a queue of another geometry.
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
	transcript "$man/$page.3" | sed "s#/tmp/q#$work/q#g" >"$work/$page.transcript"
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
for page in mmapq_open mmapq_strerror mmapq_reserve mmapq_status mmapq_available mmapq_consumers; do
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
for page in mmapq_open mmapq_strerror mmapq_reserve mmapq_status mmapq_available mmapq_consumers; do
	[ -x "$work/${prog[$page]-none}" ] && run_transcript "$page"
done
rm -f "$work/q" "$work/q.lock"
run_transcript mmapq

# ---- beyond the transcripts ------------------------------------------------------
# a full queue: publish waits for room while consume drains it
printf '[queue]\npath = %s/q8\ncapacity = 8\n' "$work" >"$work/q8.ini"
"$build/daemons/mmapq-producer" --config "$work/q8.ini" </dev/null || failed "mmapq-producer: a queue of 8 slots"
if [ -x "$work/publish" ] && [ -x "$work/consume" ]; then
	"$work/consume" "$work/q8" 50 >"$work/consumed" &
	consumer=$!
	mapfile -t values < <(seq -25 24)
	"$work/publish" "$work/q8" "${values[@]}" || failed "publish 50 records through 8 slots: exit $?"
	wait $consumer || failed "consume 50 records: exit $?"
	if [ "$(cat "$work/consumed")" = "$(seq -25 24)" ]; then
		pass "publish and consume: 50 records through 8 slots, in order"
	else
		failed "publish and consume through 8 slots: $(tr '\n' ' ' <"$work/consumed")"
	fi
fi
# mkqueue against a queue of another geometry: refused, both values named
if [ -x "$work/mkqueue" ]; then
	out=$("$work/mkqueue" "$work/q8" 2>&1)
	rc=$?
	if [ $rc = 1 ] && [[ $out == *8*65536* ]]; then
		pass "mkqueue: a queue of another geometry refused: $out"
	else
		failed "mkqueue on a queue of 8 slots: exit $rc: $out"
	fi
fi

if [ $fail = 0 ]; then echo "man_examples: PASS"; else echo "man_examples: FAILED"; fi
exit $fail
