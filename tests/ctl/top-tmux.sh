#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# top-tmux.sh BUILD_DIR -- `mmapqctl top` in a real terminal: tmux, 80x24,
# a server of its own.  The screen (capture-pane) shows the queue's state
# (geometry and depth in bytes, the clean mark, whether the producer waits
# for room, each consumer's lag in records and bytes) and follows it
# (records consumed while it runs); the whole frame fits 80 columns and 24
# rows; q ends it, and so does Ctrl-C, each within 10 s;
# with standard output not a terminal it refuses (64).
#
# Nothing sleeps: the pane's output is streamed (pipe-pane) into a FIFO and
# each frame drawn is an event to wait for (read -t); the end of the
# program is a tmux wait-for channel it signals.
# Exit 0 pass, 1 fail, 77 skip (no tmux: tests/deps.sh installs it).
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

# start_top KEYNAME: mmapqctl top in a fresh 80x24 session, its output
# streamed into $work/pane.fifo (read through $pane), "done-KEYNAME"
# signalled when it has exited
start_top() {
	rm -f "$work/pane.fifo"
	mkfifo "$work/pane.fifo" || exit 1
	tm new-session -d -s "$1" -x 80 -y 24 \
		"'$bin/mmapqctl' --config '$cfg' top; echo \$? >'$work/$1.code'; tmux -S '$work/tmux.sock' wait-for -S done-$1"
	tm pipe-pane -t "$1" -o "cat >'$work/pane.fifo'"
	exec {pane}<"$work/pane.fifo"
}

# frame_with SECONDS REGEX: until the screen shows REGEX (checked after each
# chunk of output the program writes)
frame_with() {
	local end=$((SECONDS + $1)) line
	while [ $SECONDS -lt $end ]; do
		tm capture-pane -p -t "$session" >"$work/screen.txt"
		grep -Eq -- "$2" "$work/screen.txt" && return 0
		IFS= read -r -t $((end - SECONDS)) -u "$pane" line || return 1
	done
	return 1
}

# ended SECONDS: until the program has exited (its wait-for channel)
ended() {
	timeout "$1" tmux -S "$work/tmux.sock" wait-for "done-$session"
}

# a session that stays: the server (and what was signalled on a wait-for
# channel before anyone waited) outlives the sessions under test
tm new-session -d -s keep cat

session=q
start_top $session
if frame_with 10 '^published +10 '; then
	pass "the screen shows the queue: published 10"
else
	failed "no frame with 'published 10':"; cat "$work/screen.txt"
fi
grep -Eq '^depth +9 +144 B of 65536 bytes \(0\.2%\)' "$work/screen.txt" && grep -q '^mmapq top ' "$work/screen.txt" &&
	grep -q '^format int, version 4, size 64 KiB, max_record 1 KiB, file 68 KiB' "$work/screen.txt" &&
	grep -q '^clean; no salvage' "$work/screen.txt" &&
	grep -Eq '^blocked +no; waited 0\.0 s for room in all' "$work/screen.txt" &&
	grep -Eq '^producer +[0-9]+ +no ' "$work/screen.txt" && grep -q '^q: quit' "$work/screen.txt" &&
	pass "depth 9 records, 144 bytes of 65536 (audit took 1), the geometry, clean, the producer not waiting for room and not attached, the whole frame on the 80x24 screen" ||
	{ failed "the frame is incomplete:"; cat "$work/screen.txt"; }
awk 'length($0) > 80 { exit 1 }' "$work/screen.txt" && [ "$(wc -l <"$work/screen.txt")" -le 24 ] ||
	failed "the frame does not fit 80x24"
# the consumer default registers at the oldest record kept: 2 (audit took 1)
"$bin/mmapq-consumer" --config "$cfg" --count 9 || failed "consumer"
frame_with 10 '^default +[0-9]+ +no +0 +0 B ' && grep -Eq '^audit +[0-9]+ +no +9 +144 B ' "$work/screen.txt" &&
	grep -Eq '^depth +9 +144 B ' "$work/screen.txt" &&
	pass "it follows the queue: consumer default at lag 0, audit (1 consumed) at lag 9 (144 bytes), depth 9" ||
	{ failed "the screen did not follow the consumers:"; cat "$work/screen.txt"; }
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

"$bin/mmapqctl" --config "$cfg" top >/dev/null 2>"$work/err.txt"
code=$?
[ $code = 64 ] && grep -q "not a terminal" "$work/err.txt" && pass "not a terminal: 64" ||
	failed "stdout not a terminal: exit $code, $(cat "$work/err.txt")"

[ $fail = 0 ] && echo "top-tmux: PASS" || echo "top-tmux: FAILED"
exit $fail
