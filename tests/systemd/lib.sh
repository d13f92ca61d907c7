# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# lib.sh -- helpers for the scenarios that run INSIDE the test container as
# mmapq-test.service (sourced, not run).  Nothing here waits by sleeping:
# every wait follows the journal (`journalctl -f`) until a matching entry
# appears, or a file (`tail -F`, fwait) until a line does, under `timeout`.
#
# From mmapq-test.env (written at configure time): MMAPQ_BINDIR, MMAPQ_CONFIG.
# From the test unit: RESULTDIR.

: "${RESULTDIR:=/results}"
: "${MMAPQ_BINDIR:?}" "${MMAPQ_CONFIG:?}"
CTL=$MMAPQ_BINDIR/mmapqctl
SUMMARY=$RESULTDIR/summary.txt
STEP=""
STEP_FAILED=0
FAILED_STEPS=()
PASSED_STEPS=()
# systemd's "Started UNIT" job-done message (SD_MESSAGE_UNIT_STARTED), and
# its "Stopping UNIT..." of a stop job begun (SD_MESSAGE_UNIT_STOPPING)
MSGID_STARTED=39f53479d3a045ac8e11786248231fbf
# shellcheck disable=SC2034 # deb-scenario.sh's
MSGID_STOPPING=de5b426a63be47a7b6ac3eaac82e2f6f

now_ms() { echo $(($(date +%s%N) / 1000000)); }
T_START=$(now_ms)
say() { printf '[%6.1fs] %s\n' "$(( $(now_ms) - T_START ))e-3" "$*"; }

step_begin() {
	STEP=$1
	STEP_FAILED=0
	echo
	say "=== STEP $STEP: $2"
}
# check DESCRIPTION COMMAND...: runs COMMAND, PASS/FAIL line with DESCRIPTION
check() {
	local what=$1
	shift
	if "$@"; then
		say "PASS: $what"
		return 0
	fi
	say "FAIL: $what"
	STEP_FAILED=1
	return 1
}
pass() { say "PASS: $*"; }
fail() { say "FAIL: $*"; STEP_FAILED=1; return 1; }
info() { say "      $*"; }
step_end() {
	if [ "$STEP_FAILED" = 0 ]; then
		say "=== STEP $STEP: PASS"
		echo "PASS $STEP" >>"$SUMMARY"
		PASSED_STEPS+=("$STEP")
	else
		say "=== STEP $STEP: FAIL (diagnostics in $RESULTDIR/fail-$STEP.txt)"
		echo "FAIL $STEP" >>"$SUMMARY"
		FAILED_STEPS+=("$STEP")
		diagnose >"$RESULTDIR/fail-$STEP.txt" 2>&1
		# the essentials right here, too
		sed -n '1,80p' "$RESULTDIR/fail-$STEP.txt" | sed 's/^/    | /'
	fi
}

# logs UNIT N: the last N journal lines of UNIT (its processes and what
# systemd says about it), without the consumer's records (entries with
# MMAPQ_SEQ=), which would drown everything else.
logs() {
	journalctl --no-pager -u "$1" -o export \
		--output-fields=MESSAGE,MMAPQ_SEQ,_PID,SYSLOG_IDENTIFIER,__MONOTONIC_TIMESTAMP |
		awk 'BEGIN { RS = ""; FS = "\n" }
		{
			m = ""; p = ""; id = ""; t = 0; rec = 0
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^MMAPQ_SEQ=/) rec = 1
				else if ($i ~ /^MESSAGE=/) m = substr($i, 9)
				else if ($i ~ /^_PID=/) p = substr($i, 6)
				else if ($i ~ /^SYSLOG_IDENTIFIER=/) id = substr($i, 19)
				else if ($i ~ /^__MONOTONIC_TIMESTAMP=/) t = substr($i, 23) / 1e6
			}
			if (!rec) printf "[%11.6f] %s[%s]: %s\n", t, id, p, m
		}' | tail -n "$2"
}

# Everything useful after a failure.
diagnose() {
	echo "##### systemctl status"
	systemctl status --no-pager -l -n 0 mmapq.target mmapq-producer.socket \
		mmapq-producer.service mmapq-consumer.service 'mmapq@*.target' 'mmapq-producer@*' \
		'mmapq-consumer@*' 'mmapq-consumer-named@*'
	echo "##### systemctl show (selected)"
	for u in mmapq-producer.service mmapq-consumer.service; do
		systemctl show -p Id,ActiveState,SubState,MainPID,NRestarts,Result,ExecMainStatus,StatusText,WatchdogUSec "$u"
		echo
	done
	echo "##### mmapqctl status"
	"$CTL" status 2>&1
	echo "##### mmapqctl consumers"
	"$CTL" consumers 2>&1
	echo "##### journalctl -u mmapq-producer.socket -u mmapq-producer (last 60)"
	journalctl --no-pager -u mmapq-producer.socket -u mmapq-producer.service -n 60 -o short-monotonic
	echo "##### journalctl -u mmapq-consumer without the records (last 60)"
	logs mmapq-consumer.service 60
	echo "##### journalctl -u mmapq-consumer, records included (last 20)"
	journalctl --no-pager -u mmapq-consumer.service -n 20 -o short-monotonic
	echo "##### config $MMAPQ_CONFIG (without comments), its drop-ins and the instances'"
	grep -v '^[;#]' "$MMAPQ_CONFIG" | grep -v '^$'
	find "$(dirname "$MMAPQ_CONFIG")" -name '*.ini' ! -path "$MMAPQ_CONFIG" -print -exec cat {} \; 2>/dev/null
	echo "##### drop-ins of the test"
	find /run/systemd/system -name '*.conf' -path '*mmapq*' -print -exec cat {} \; 2>/dev/null
}

# A cursor for "everything logged from now on": a unique marker entry,
# logged by this test (so it never matches the filters used with it), once
# journald has stored it.  Use it with --cursor=, which starts AT the cursor
# entry: with filters, journalctl 252's --after-cursor skips the first
# matching entry when the cursor entry itself does not match (it always steps
# over two entries), and would lose exactly the entry being waited for.
MARK_N=0
cursor() {
	local mark
	MARK_N=$((MARK_N + 1))
	mark="mmapq-test mark $$.$MARK_N.$RANDOM"
	echo "$mark" | systemd-cat -t mmapq-test-mark
	journalctl --sync
	journalctl --no-pager -o export -n 1 SYSLOG_IDENTIFIER=mmapq-test-mark "MESSAGE=$mark" |
		sed -n 's/^__CURSOR=//p'
}

# follow SECONDS GREP_OPTION PATTERN COMMAND...: runs COMMAND, which follows
# something (journalctl -f, tail -F), under `timeout SECONDS`, until a line
# of its output (and errors) matches PATTERN (grep GREP_OPTION PATTERN);
# prints that line.  Returns 0 when found, 1 at the deadline.
follow() {
	local secs=$1 opt=$2 re=$3 fd pid rc
	shift 3
	exec {fd}< <(exec timeout "$secs" "$@" 2>&1)
	pid=$!
	grep -m 1 "$opt" -- "$re" <&"$fd"
	rc=$?
	kill "$pid" 2>/dev/null
	exec {fd}<&-
	return $rc
}

# jwait SECONDS CURSOR REGEX [JOURNALCTL ARGS...]
# Follows the journal from CURSOR on (with the given matches/options,
# default output -o cat) until a line matches REGEX; prints that line.
# Returns 0 when found, 1 at the deadline.
jwait() {
	local secs=$1 cur=$2 re=$3
	shift 3
	follow "$secs" -E "$re" journalctl --no-pager -f -n all --cursor="$cur" -o cat "$@"
}

# fwait SECONDS FILE LINE: follows FILE from its start (tail -F: inotify;
# the file may not exist yet) until a line equal to LINE appears.  Returns
# 0 when found, 1 at the deadline.
fwait() {
	follow "$1" -xF "$3" tail -n +1 -F "$2" >/dev/null
}

prop() { systemctl show -P "$2" "$1"; }

# wait_started UNIT CURSOR SECONDS: until systemd logged that UNIT started
# (the start job completed: for Type=notify, READY=1) after CURSOR.
wait_started() {
	jwait "$3" "$2" . _PID=1 "UNIT=$1" "MESSAGE_ID=$MSGID_STARTED" >/dev/null
}

# wait_restarted UNIT OLDPID OLDNRESTARTS CURSOR SECONDS: after a crash,
# systemd restarted UNIT: started again, new MainPID, NRestarts incremented.
wait_restarted() {
	local u=$1 oldpid=$2 oldn=$3 cur=$4 secs=$5 pid n st
	if ! wait_started "$u" "$cur" "$secs"; then
		fail "$u was not restarted within ${secs}s"
		return 1
	fi
	pid=$(prop "$u" MainPID)
	n=$(prop "$u" NRestarts)
	st=$(prop "$u" ActiveState)
	info "$u: ActiveState=$st MainPID $oldpid -> $pid, NRestarts $oldn -> $n"
	check "$u restarted by systemd: active, new MainPID, NRestarts $oldn -> $((oldn + 1))" \
		test "$st" = active -a "$pid" != "$oldpid" -a "$pid" != 0 -a "$n" -eq $((oldn + 1))
}

# records CURSOR [UNIT]: the record entries a consumer (UNIT, default
# mmapq-consumer.service) logged after CURSOR, one per line:
# "MMAPQ_SEQ MESSAGE _PID", in journal order.
records() {
	journalctl --sync
	journalctl --no-pager "_SYSTEMD_UNIT=${2:-mmapq-consumer.service}" --cursor="$1" -o export \
		--output-fields=MMAPQ_SEQ,MESSAGE,_PID |
		awk 'BEGIN { RS = ""; FS = "\n" }
		{
			s = ""; m = ""; p = ""
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^MMAPQ_SEQ=/) s = substr($i, 11)
				else if ($i ~ /^MESSAGE=/) m = substr($i, 9)
				else if ($i ~ /^_PID=/) p = substr($i, 6)
			}
			if (s != "") print s, m, p
		}'
}

# check_stream FILE FIRST LAST OFFSET MAXBACK MAXREPLAYS
# FILE holds "seq value pid" lines (records).  Checks exact at-least-once,
# in-order delivery of the values FIRST..LAST: every record's value is
# seq - OFFSET (so the sequence numbers identify the values); sequence numbers
# advance by one, except that after a consumer restart (a new pid) the stream
# may go back by fewer than MAXBACK records (the batch written but not yet
# acknowledged is written again: at most what the ring holds) and must then continue without a gap; at
# most MAXREPLAYS such replays; every value FIRST..LAST present; nothing
# outside FIRST..LAST.  Prints a one-line summary; returns 0 if exact.
check_stream() {
	awk -v first="$2" -v last="$3" -v off="$4" -v cap="$5" -v maxrep="$6" '
	{
		seq = $1 + 0; val = $2; pid = $3
		n++
		if (val != seq - off) { bad++; if (bad <= 5) printf "  value %s at seq %s (expected %d)\n", val, seq, seq - off }
		if (val + 0 < first || val + 0 > last) { outside++; if (outside <= 5) printf "  value %s outside %d..%d\n", val, first, last }
		if (n > 1) {
			if (seq == prev + 1) {
			} else if (seq <= prev && pid != prevpid && prev - seq < cap) {
				replays++; dups += prev - seq + 1
				printf "  replay after restart (pid %s -> %s): seq %d..%d written again\n", prevpid, pid, seq, prev
			} else {
				errs++
				if (errs <= 5) printf "  order: seq %d after %d (pid %s -> %s)\n", seq, prev, prevpid, pid
			}
		}
		if (!(seq in seen)) { seen[seq] = 1; uniq++ }
		prev = seq; prevpid = pid
	}
	END {
		want = last - first + 1
		missing = 0
		for (v = first; v <= last; v++) if (!((v + off) in seen)) { missing++; if (missing <= 5) printf "  missing value %d (seq %d)\n", v, v + off }
		printf "%d entries, %d distinct of %d expected, %d missing, %d replays (%d repeated), %d out of order, %d wrong values, %d outside\n",
			n, uniq, want, missing, replays + 0, dups + 0, errs + 0, bad + 0, outside + 0
		exit !(n > 0 && missing == 0 && errs == 0 && bad == 0 && outside == 0 && replays <= maxrep && uniq == want)
	}' "$1"
}

queue_tail() { "$CTL" --json status 2>/dev/null | sed -n 's/.*"tail":\([0-9]*\).*/\1/p'; }

# set_key SECTION KEY VALUE: edit mmapq.ini in place (the key must exist in
# its section, as in the shipped file).
set_key() {
	local sec=$1 key=$2 val=$3 tmp
	tmp=$(mktemp)
	awk -v sec="[$1]" -v key="$2" -v val="$3" '
		/^\[/ { cur = $0 }
		cur == sec && $0 ~ "^" key "[ \t]*=" { print key " = " val; done = 1; next }
		{ print }
		END { exit !done }' "$MMAPQ_CONFIG" >"$tmp" || { rm -f "$tmp"; fail "set_key: no '$key' in [$sec] of $MMAPQ_CONFIG"; return 1; }
	cat "$tmp" >"$MMAPQ_CONFIG"
	rm -f "$tmp"
	info "config: [$sec] $key = $val"
}
