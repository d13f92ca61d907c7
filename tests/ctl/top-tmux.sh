#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# top-tmux.sh BUILD_DIR -- `mmapqctl top` in a real terminal: tmux, 80x24,
# a server of its own.  The screen (capture-pane) shows the queue's state
# (geometry and depth in bytes, the clean mark, whether the producer waits
# for room, each consumer's lag in records and bytes, a detached producer's
# last attach) and follows it (records consumed while it runs); a
# consumer's rate is the one `mmapqctl consumers` gives; the whole frame
# fits 80 columns and 24 rows, and on 40 columns every line is cut, none
# wrapped; q ends it, and so does Ctrl-C, each within 10 s; a queue that is
# missing at the start, or removed while it runs, ends it with 73 and the
# error on the terminal given back (cursor shown, what was there before
# kept); a 24 KiB file is said in KiB; with standard output not a terminal
# it refuses (64).
#
# Nothing sleeps: the pane's output is streamed (pipe-pane) into a FIFO and
# each frame drawn is an event to wait for (read -t); the end of the
# program is a tmux wait-for channel it signals.
# Exit 0 pass, 1 fail, 77 skip (no tmux: tests/deps.sh --test installs it).
set -u
build=${1:?usage: top-tmux.sh BUILD_DIR}
bin=$build/daemons
command -v tmux >/dev/null || { echo "top-tmux: SKIP: no tmux" >&2; exit 77; }
work=$(mktemp -d /tmp/mmapq-top.XXXXXX) || exit 1
tm() { tmux -S "$work/tmux.sock" -f /dev/null "$@"; }
cleanup() {
	tm kill-server 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fail=0
pass() { echo "top-tmux: PASS: $*"; }
failed() { echo "top-tmux: FAIL: $*"; fail=1; }

cfg=$work/mmapq.ini
printf '[queue]\npath = %s/queue\nsize = 64K\nmax_record = 1K\n[consumer]\noutput = null\n' "$work" >"$cfg"
# a named consumer that registers (and consumes nothing) before the records
"$bin/mmapq-consumer" --config "$cfg" --name audit --count 1 </dev/null >/dev/null &
audit=$!
seq 1 10 | "$bin/mmapq-producer" --config "$cfg" || { echo "top-tmux: producer failed"; exit 1; }
wait $audit || { echo "top-tmux: consumer audit failed"; exit 1; }

# start_top KEYNAME [COLUMNS [CONFIG]]: mmapqctl top in a fresh session of
# COLUMNS (default 80) by 24, "before top" printed first, its output
# streamed into $work/pane.fifo (read through $pane), "done-KEYNAME"
# signalled when it has exited; the pane then stays (cat) for what is left
# on it to be read
start_top() {
	rm -f "$work/pane.fifo"
	mkfifo "$work/pane.fifo" || exit 1
	tm new-session -d -s "$1" -x "${2:-80}" -y 24 \
		"echo before top; '$bin/mmapqctl' --config '${3:-$cfg}' top; echo \$? >'$work/$1.code'; tmux -S '$work/tmux.sock' wait-for -S done-$1; cat"
	tm pipe-pane -t "$1" -o "cat >'$work/pane.fifo'"
	exec {pane}<"$work/pane.fifo"
}

# frame_with SECONDS REGEX...: until one capture of the screen shows every
# REGEX (checked after each chunk of output the program writes: a frame
# may be captured half drawn, so a check of its lines names the last one)
frame_with() {
	local end=$((SECONDS + $1)) line re all
	shift
	while [ $SECONDS -lt $end ]; do
		tm capture-pane -p -t "$session" >"$work/screen.txt"
		all=1
		for re in "$@"; do
			grep -Eq -- "$re" "$work/screen.txt" || { all=0; break; }
		done
		[ $all = 1 ] && return 0
		IFS= read -r -t $((end - SECONDS)) -u "$pane" line || return 1
	done
	return 1
}

# frame_after SECONDS CLOCK: until a frame drawn at another second than
# CLOCK is on the screen (one drawn after the screen showed CLOCK)
frame_after() {
	local end=$((SECONDS + $1)) line
	while [ $SECONDS -lt $end ]; do
		tm capture-pane -p -t "$session" >"$work/screen.txt"
		head -n 1 "$work/screen.txt" | grep -Eq -- "^mmapq top .* [0-9:]{8}\$" &&
			! head -n 1 "$work/screen.txt" | grep -q -- " $2\$" && return 0
		IFS= read -r -t $((end - SECONDS)) -u "$pane" line || return 1
	done
	return 1
}

# ended SECONDS: until the program has exited (its wait-for channel)
ended() {
	timeout "$1" tmux -S "$work/tmux.sock" wait-for "done-$session"
}

# given_back: the terminal as the program found it: the cursor shown
given_back() {
	[ "$(tm display -p -t "$session" '#{cursor_flag}')" = 1 ]
}

# a session that stays: the server (and what was signalled on a wait-for
# channel before anyone waited) outlives the sessions under test
tm new-session -d -s keep cat

session=q
start_top $session
if frame_with 10 '^published +10 ' '^q: quit'; then
	pass "the screen shows the queue: published 10"
else
	failed "no frame with 'published 10':"; cat "$work/screen.txt"
fi
grep -Eq '^depth +9 +144 B of 65536 bytes \(0\.2%\)' "$work/screen.txt" && grep -q '^mmapq top ' "$work/screen.txt" &&
	grep -q '^format int, version 4, size 64 KiB, max_record 1 KiB, file 72 KiB' "$work/screen.txt" &&
	grep -q '^clean; no salvage' "$work/screen.txt" &&
	grep -Eq '^blocked +no; waited 0\.0 s for room in all' "$work/screen.txt" &&
	grep -Eq '^producer +pid +attached +published +wait$' "$work/screen.txt" &&
	grep -Eq '^default +[0-9]+ +no, last attached [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} +10 +no$' "$work/screen.txt" &&
	grep -q '^q: quit' "$work/screen.txt" &&
	pass "depth 9 records, 144 bytes of 65536 (audit took 1), the geometry, clean, the producer not waiting for room, not attached and when it last attached, the whole frame on the 80x24 screen" ||
	{ failed "the frame is incomplete:"; cat "$work/screen.txt"; }
awk 'length($0) > 80 { exit 1 }' "$work/screen.txt" && [ "$(wc -l <"$work/screen.txt")" -le 24 ] ||
	failed "the frame does not fit 80x24"
# the consumer default registers at the oldest record kept: 2 (audit took 1)
"$bin/mmapq-consumer" --config "$cfg" --count 9 || failed "consumer"
frame_with 10 '^default +[0-9]+ +no +0 +0 B ' '^audit +[0-9]+ +no +9 +144 B ' '^depth +9 +144 B ' \
	'^q: quit' &&
	pass "it follows the queue: consumer default at lag 0, audit (1 consumed) at lag 9 (144 bytes), depth 9" ||
	{ failed "the screen did not follow the consumers:"; cat "$work/screen.txt"; }
# a consumer that attaches, consumes the 9 records and waits: its rate (since
# it attached, falling while it waits) on top's frame is between the one
# `mmapqctl consumers` gives before that frame and the one it gives after
"$bin/mmapq-consumer" --config "$cfg" --name live --count 100 </dev/null >/dev/null &
live=$!
if frame_with 10 '^live +[0-9]+ +yes +0 +0 B '; then
	r1=$("$bin/mmapqctl" --config "$cfg" consumers | awk '$1 == "live" { print $NF }')
	clock=$(head -n 1 "$work/screen.txt" | awk '{ print $NF }')
	frame_after 10 "$clock" || failed "no frame after $clock"
	r2=$(awk '$1 == "live" { print $(NF - 1) }' "$work/screen.txt")
	r3=$("$bin/mmapqctl" --config "$cfg" consumers | awk '$1 == "live" { print $NF }')
	awk -v a="$r1" -v b="$r2" -v c="$r3" 'BEGIN { exit !(a ~ /^[0-9.]+$/ && c ~ /^[0-9.]+$/ && a + 0 >= b + 0 && b + 0 >= c + 0 && b + 0 > 0) }' &&
		pass "a consumer's rate on top ($r2/s) is the one mmapqctl consumers gives ($r1 before, $r3 after)" ||
		{ failed "rate of live: consumers $r1, then top '$r2', then consumers $r3:"; cat "$work/screen.txt"; }
else
	failed "consumer live not shown attached at lag 0:"; cat "$work/screen.txt"
fi
kill $live
wait $live
tm send-keys -t $session q
if ended 10; then
	[ "$(cat "$work/$session.code")" = 0 ] && pass "q ends it, exit 0" || failed "q: exit $(cat "$work/$session.code")"
else
	failed "q did not end it within 10 s"
fi
exec {pane}<&-

session=c
start_top $session
frame_with 10 '^mmapq top ' || failed "the second session drew nothing"
tm send-keys -t $session C-c
if ended 10; then
	[ "$(cat "$work/$session.code")" = 0 ] && pass "Ctrl-C ends it, exit 0" || failed "Ctrl-C: exit $(cat "$work/$session.code")"
else
	failed "Ctrl-C did not end it within 10 s"
fi
exec {pane}<&-

# 40 columns: every line cut at the width (capture-pane -J joins what wrapped)
session=n
start_top $session 40
if frame_with 10 '^q: quit'; then
	tm capture-pane -p -J -t $session >"$work/joined.txt"
	awk 'length($0) > 40 { bad = 1 } END { exit bad }' "$work/joined.txt" &&
		grep -q '^format int, version 4, size 64 KiB, max_$' "$work/joined.txt" &&
		grep -Eq '^default +[0-9]+  no, last attached$' "$work/joined.txt" &&
		pass "40 columns: each line cut at 40, none wrapped" ||
		{ failed "40 columns: lines wrapped or not cut:"; cat "$work/joined.txt"; }
else
	failed "40 columns: no whole frame:"; cat "$work/screen.txt"
fi
tm send-keys -t $session q
ended 10 || failed "q did not end it on 40 columns"
exec {pane}<&-

# a missing queue: nothing drawn, the error on the terminal as it was
session=m
printf '[queue]\npath = %s/missing/queue\n' "$work" >"$work/missing.ini"
start_top $session 80 "$work/missing.ini"
if ended 10; then
	tm capture-pane -p -t $session >"$work/screen.txt"
	code=$(cat "$work/$session.code")
	[ "$code" = 73 ] && given_back && grep -q '^before top$' "$work/screen.txt" &&
		grep -qx "mmapqctl: error: $work/missing/queue: does not exist" "$work/screen.txt" &&
		pass "a missing queue: exit 73, the error on the terminal left as it was, the cursor shown" ||
		{ failed "a missing queue: exit $code, cursor shown: $(given_back && echo yes || echo no), screen:"; cat "$work/screen.txt"; }
else
	failed "a missing queue: still running after 10 s"
fi
exec {pane}<&-

# a file of 24 KiB (size 16 KiB, a header of two pages): said in KiB;
# removed while top runs: the terminal given back, the error below the
# last frame, 73
session=k
printf '[queue]\npath = %s/small\nsize = 16K\nmax_record = 1K\n' "$work" >"$work/small.ini"
seq 1 3 | "$bin/mmapq-producer" --config "$work/small.ini" || failed "producer of the small queue"
start_top $session 80 "$work/small.ini"
frame_with 10 '^q: quit' && grep -q '^format int, version 4, size 16 KiB, max_record 1 KiB, file 24 KiB$' "$work/screen.txt" &&
	pass "a 24 KiB file: file 24 KiB" || { failed "the small queue's geometry:"; cat "$work/screen.txt"; }
rm "$work/small"
if ended 10; then
	tm capture-pane -p -t $session >"$work/screen.txt"
	code=$(cat "$work/$session.code")
	[ "$code" = 73 ] && given_back && grep -A1 '^q: quit$' "$work/screen.txt" | tail -n 1 |
		grep -qx "mmapqctl: error: $work/small: does not exist" &&
		pass "the queue removed while it runs: exit 73, the error below the last frame, the cursor shown" ||
		{ failed "the queue removed: exit $code, cursor shown: $(given_back && echo yes || echo no), screen:"; cat "$work/screen.txt"; }
else
	failed "the queue removed: still running after 10 s"
fi
exec {pane}<&-

"$bin/mmapqctl" --config "$cfg" top >/dev/null 2>"$work/err.txt"
code=$?
[ $code = 64 ] && grep -q "not a terminal" "$work/err.txt" && pass "not a terminal: 64" ||
	failed "stdout not a terminal: exit $code, $(cat "$work/err.txt")"

[ $fail = 0 ] && echo "top-tmux: PASS" || echo "top-tmux: FAILED"
exit $fail
