#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scenario.sh [STEP...] -- mmapq under a real systemd.  Runs INSIDE the
# throw-away container (as mmapq-test.service, see run-in-container.sh),
# against the staged install.  Steps (default: all, in this order):
#
#   setup      systemd-sysusers, systemd-tmpfiles --create, daemon-reload (as
#              OPERATIONS.md says), each finding its files where the install
#              put them (PREFIX/lib/systemd/system, PREFIX/lib/sysusers.d,
#              PREFIX/lib/tmpfiles.d); units (single queue and templates)
#              verified and analysed as loaded
#   start      systemctl start mmapq.target; mmapqctl send 1..10 exits 0; the
#              consumer's journal shows 1..10 in order with MMAPQ_SEQ;
#              systemctl status shows STATUS=
#   records    records apart from the daemon's logs: journalctl -t
#              mmapq-records has only records, -u mmapq-consumer -t
#              mmapq-consumer only log lines; with journal_namespace = NS (and
#              the unit wanting systemd-journald@NS.socket) the records go to
#              that namespace only, the logs still to the default journal
#   reload     config edited, systemctl reload: applied and logged; a broken
#              config fails the reload, the daemon keeps running (same
#              MainPID) and FILE:LINE is in the journal; SIGHUP with the
#              broken config keeps the old one; restored
#   dropin     mmapq.ini.d/50-test.ini written: systemctl reload applies and
#              logs it, --check-config lists it; a broken drop-in fails the
#              reload with its own FILE:LINE, the daemon keeps running;
#              removed: back to mmapq.ini alone
#   kill-consumer   SIGKILL to the consumer while 100,000 records stream in
#              through mmapqctl send; then a consumer that crashes between
#              writing and acknowledging a batch (MMAPQ_FAULT, 20,000
#              records): restarted each time, every record arrives in order
#              (checked by MMAPQ_SEQ), the unacknowledged batch is replayed
#   kill-producer   the same for a producer with input = generate
#   watchdog   a consumer whose loop hangs (MMAPQ_FAULT) is killed by the
#              watchdog and restarted
#   geometry   [queue] size changed in mmapq.ini: both units fail with 65
#              and are not restarted; `mmapqctl recreate` carries the
#              records over; restarted, the consumer gets them
#   upgrade    a queue file of mmapq 0.x (format version 3, written by
#              legacy_queue) with records and a consumer in it, as an
#              upgraded package finds it: both units fail with 65 naming
#              `mmapqctl recreate` and are not restarted; mmapqctl status
#              shows the old file; recreate carries the records and the
#              consumer over, and the consumer gets them
#   metrics    mmapq-metrics.socket: GET /metrics on 127.0.0.1:9741 answers
#              with the queue's counters (promtool-clean), one short-lived
#              service per connection
#   nats       mmapq-consumer-nats.service (the consumer named nats, beside
#              the default one) forwarding to a nats-server of the container
#              on 127.0.0.1: the only unit with AF_INET; 1000 records in the
#              stream; the server stopped: the records wait, STATUS= and the
#              journal (once) say so, the unit stays active; the server back:
#              all 1100 arrive, the queue empties
#   instances  two more queues at once beside the single one: mmapq@a.target
#              (no a.ini at all) and mmapq@b.target (b.ini and a drop-in set
#              other keys, not the paths): each its own queue file and socket;
#              mmapqctl --instance NAME send reaches exactly its own consumer
#              (each journal gets its own records and no other's); reload of
#              one instance; enable; stop, the single queue untouched
#   metrics-instances   mmapq-metrics@a.socket and mmapq-metrics@b.socket,
#              each with a port of its own from a drop-in (OPERATIONS.md's
#              way): /run/mmapq/NAME.metrics.sock and the port answer with
#              that queue's metrics; a real Prometheus scrapes both every
#              second: 12 starts of each mmapq-metrics-serve@NAME later, both
#              targets up at every scrape, each with its own queue's counters,
#              both sockets still listening
#   fanout     a named consumer under systemd: [consumer:audit] gives it a
#              file of its own; systemctl enable --now
#              mmapq-consumer-named@audit; records sent reach the default
#              consumer's journal and audit's file, all, in order; audit
#              stopped: sends that fit the ring still go through, the default
#              consumer gets them, mmapqctl consumers shows audit's lag;
#              started again: it catches up, in order; mmapqctl consumer
#              remove audit refused (69) while it runs, done after
#              systemctl disable --now; the same for the instance form
#              mmapq-consumer-named@fo:audit on the queue instance fo
#   policy     mmapq-consumer-named@sk:audit with on_full = skip on a queue
#              instance of 4096 int records: stopped, it never holds the
#              producer (10,000 records sent go through, the default
#              consumer gets all, in order); mmapqctl shows what it lost;
#              started, its journal says how many and its file holds the
#              rest, in order; with inactive_timeout = 3s, stopped, the
#              producer removes it 3 to 6 s later and says so
#   fanin      two producers at once: mmapq-producer.service (its socket:
#              mmapqctl send -1..-1000) and a second mmapq-producer --name gen
#              (input = generate) as a unit of its own, both as mmapq; the
#              consumer gets every record of each, each one's in its order,
#              at gap-free sequence numbers; mmapqctl status, --json and
#              metrics list both, attached with their MainPIDs, then gen not
#              attached (no pid, last_pid kept) with what it published
#   enable     systemctl enable --now mmapq.target (OPERATIONS.md's way)
#   stop       systemctl stop mmapq.target stops everything in < 10 s, idle
#              and with a producer generating into a full queue
#
# Each step prints PASS/FAIL lines; a failed step writes diagnostics
# (systemctl status, journalctl -u, mmapqctl status) to
# RESULTDIR/fail-STEP.txt, and the next steps still run.  Exit 0 only if
# every step passed.
set -u
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"

SIZE=4M            # [queue] size of the shipped configuration
SIZE_BYTES=4194304
RING_INTS=$((SIZE_BYTES / 16)) # int records (16-byte frames) a ring of SIZE holds
STREAM_N=100000    # records streamed in the kill-consumer step

: >"$SUMMARY"
cp "$MMAPQ_CONFIG" /run/mmapq-test.ini.orig

restore_config() {
	cat /run/mmapq-test.ini.orig >"$MMAPQ_CONFIG"
}

CONFDIR=$(dirname "$MMAPQ_CONFIG")

# Back to the initial state after a step: original config, no drop-ins of
# ours, no instances, everything running.
reset_state() {
	restore_config
	rm -rf "$MMAPQ_CONFIG.d" "$CONFDIR"/b.ini "$CONFDIR"/b.ini.d "$CONFDIR"/fo.ini
	systemctl stop 'mmapq@*.target' 'mmapq-producer@*' 'mmapq-consumer@*' 'mmapq-consumer-named@*' 2>/dev/null
	systemctl disable mmapq@a.target mmapq-consumer-named@audit.service 2>/dev/null
	# a named consumer left registered would hold the producer back
	"$CTL" consumer remove audit >/dev/null 2>&1
	rm -f /var/lib/mmapq/audit.out /var/lib/mmapq/fo.audit.out
	systemctl stop mmapq-consumer-nats.service mmapq-test-nats.service mmapq-test-gen.service 2>/dev/null
	rm -rf /run/mmapq-gen.ini /run/mmapq-gen.ini.d
	rm -f /etc/systemd/system/mmapq.target.wants/mmapq-consumer-nats.service
	"$CTL" consumer remove nats >/dev/null 2>&1
	rm -rf /run/systemd/system/mmapq-consumer.service.d /run/systemd/system/mmapq-producer.service.d
	rm -rf /run/systemd/system/mmapq-producer.socket.d
	rm -f /run/mmapq-test.fault
	systemctl daemon-reload
	systemctl reset-failed mmapq-producer.service mmapq-consumer.service mmapq-producer.socket 2>/dev/null
	systemctl restart mmapq.target ||
		say "reset: systemctl restart mmapq.target failed"
}

# reload_logs WHAT REGEX: systemctl reload both daemons of the single queue;
# the consumer logs a line matching REGEX.
reload_logs() {
	local cur out
	cur=$(cursor)
	check "systemctl reload mmapq-producer mmapq-consumer ($1)" \
		systemctl reload mmapq-producer.service mmapq-consumer.service
	out=$(jwait 10 "$cur" "$2" _SYSTEMD_UNIT=mmapq-consumer.service)
	check "$1: the consumer logged '$2'" test -n "$out"
}

# still_delivers VALUE [MMAPQCTL OPTION...]: after a refused reload, a record
# sent still reaches the consumer's journal.
still_delivers() {
	local cur v=$1
	shift
	cur=$(cursor)
	timeout 30 "$CTL" "$@" send "$v" >/dev/null || fail "mmapqctl send $v"
	jwait 10 "$cur" . _SYSTEMD_UNIT=mmapq-consumer.service "MESSAGE=$v" >/dev/null
	check "the consumer still delivers records ($v)" test $? = 0
}

# ---------------------------------------------------------------------------
step_setup() {
	step_begin setup "install as OPERATIONS.md says: sysusers, tmpfiles, daemon-reload"
	check "systemd-sysusers" systemd-sysusers
	check "user and group mmapq exist" getent passwd mmapq >/dev/null
	getent group mmapq >/dev/null || fail "no group mmapq"
	check "systemd-tmpfiles --create" systemd-tmpfiles --create
	check "/var/lib/mmapq is 0750 mmapq:mmapq" \
		test "$(stat -c '%a %U %G' /var/lib/mmapq 2>/dev/null)" = "750 mmapq mmapq"
	check "systemctl daemon-reload" systemctl daemon-reload
	local u out units
	# Installed from source under the prefix, nothing in /etc: systemd and
	# its tools find the files there by themselves.
	check "sysusers.d and tmpfiles.d files only in $MMAPQ_SYSUSERSDIR and $MMAPQ_TMPFILESDIR" \
		test -f "$MMAPQ_SYSUSERSDIR/mmapq.conf" -a -f "$MMAPQ_TMPFILESDIR/mmapq.conf" \
		-a ! -e /etc/sysusers.d/mmapq.conf -a ! -e /etc/tmpfiles.d/mmapq.conf
	check "systemd-analyze unit-paths lists $MMAPQ_UNITDIR" grep -qx "$MMAPQ_UNITDIR" <(systemd-analyze unit-paths)
	units="mmapq.target mmapq-producer.socket mmapq-producer.service mmapq-consumer.service
		mmapq@a.target mmapq-producer@a.socket mmapq-producer@a.service mmapq-consumer@a.service"
	for u in $units; do
		out=$(prop "$u" FragmentPath)
		check "$u is loaded from $out" test "$(prop "$u" LoadState)" = loaded -a "$out" = "$MMAPQ_UNITDIR/${u/@a./@.}"
	done
	# shellcheck disable=SC2086
	out=$(systemd-analyze verify --man=no $units 2>&1)
	check "systemd-analyze verify (units as installed, binaries in place)" test -z "$out" ||
		echo "$out"
	# shellcheck disable=SC2086
	out=$(systemd-analyze verify $units 2>&1)
	[ -z "$out" ] || info "WARNING (not counted): systemd-analyze verify with man page checks: $(echo "$out" | tr '\n' ';')"
	for u in mmapq-producer.service mmapq-consumer.service mmapq-producer@a.service mmapq-consumer@a.service; do
		out=$(systemd-analyze security --no-pager "$u" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
		check "systemd-analyze security $u (as loaded): exposure '$out' <= 2.0" \
			awk -v l="$out" 'BEGIN { exit !(l != "" && l <= 2.0) }'
	done
	step_end
}

# ---------------------------------------------------------------------------
step_start() {
	step_begin start "systemctl start mmapq.target; mmapqctl send 1..10; journal; STATUS="
	local cur u out vals seqs st
	cur=$(cursor)
	check "systemctl start mmapq.target" systemctl start mmapq.target
	for u in mmapq-producer.socket mmapq-producer.service mmapq-consumer.service mmapq.target; do
		check "$u is active" test "$(prop $u ActiveState)" = active
	done
	check "socket /run/mmapq/producer.sock is 0660 root:mmapq" \
		test "$(stat -c '%a %U %G %F' /run/mmapq/producer.sock 2>/dev/null)" = "660 root mmapq socket"
	check "queue file /var/lib/mmapq/queue belongs to mmapq" \
		test "$(stat -c '%U' /var/lib/mmapq/queue 2>/dev/null)" = mmapq
	check "the producer runs as mmapq" test "$(ps -o user= -p "$(prop mmapq-producer.service MainPID)")" = mmapq
	check "mmapqctl send 1 2 3 4 5 6 7 8 9 10 exits 0" timeout 30 "$CTL" send 1 2 3 4 5 6 7 8 9 10
	if ! jwait 20 "$cur" . _SYSTEMD_UNIT=mmapq-consumer.service MESSAGE=10 >/dev/null; then
		fail "record 10 did not reach the consumer's journal within 20 s"
	fi
	records "$cur" >/run/start.records
	vals=$(awk '{ print $2 }' /run/start.records | tr '\n' ' ')
	seqs=$(awk '{ print $1 }' /run/start.records | tr '\n' ' ')
	info "journal records (MESSAGE): $vals"
	info "journal records (MMAPQ_SEQ): $seqs"
	check "journalctl -u mmapq-consumer: records 1..10 in order, each with MMAPQ_SEQ" \
		test "$vals" = "1 2 3 4 5 6 7 8 9 10 "
	check "MMAPQ_SEQ consecutive" awk 'NR > 1 && $1 != p + 1 { exit 1 } { p = $1 }' /run/start.records
	out=$(journalctl --no-pager _SYSTEMD_UNIT=mmapq-consumer.service --cursor="$cur" -o cat | grep -Ex '[0-9]+' | tr '\n' ' ')
	check "journalctl -u mmapq-consumer -o cat shows 1..10 (as the lab printed them)" \
		test "$out" = "1 2 3 4 5 6 7 8 9 10 "
	out=$(journalctl --no-pager -u mmapq-consumer.service MESSAGE=7 -o json -n 1)
	check "journalctl -o json shows MMAPQ_SEQ for record 7" grep -q '"MMAPQ_SEQ" *: *"[0-9]*"' <<<"$out" ||
		info "$out"
	check "record 7 carries MMAPQ_ROLE=consumer" grep -q '"MMAPQ_ROLE" *: *"consumer"' <<<"$out"
	check "record 7 carries MMAPQ_QUEUE=/var/lib/mmapq/queue" \
		grep -q '"MMAPQ_QUEUE" *: *"/var/lib/mmapq/queue"' <<<"$out"
	st=$(prop mmapq-producer.service StatusText)
	info "producer STATUS=$st"
	check "producer StatusText is 'published N, depth D...'" grep -Eq '^published [0-9]+, depth [0-9]+' <<<"$st"
	out=$(systemctl status --no-pager mmapq-producer.service 2>&1)
	# the rate in it changes every second: match the stable part
	check "systemctl status mmapq-producer shows the STATUS= text" \
		grep -Eq 'Status: "published [0-9]+, depth [0-9]+[^"]*, [0-9.]+k?M? rec/s' <<<"$out" ||
		echo "$out"
	st=$(prop mmapq-consumer.service StatusText)
	info "consumer STATUS=$st"
	check "consumer StatusText is 'consumed N, depth D...'" grep -Eq '^consumed [0-9]+, depth [0-9]+' <<<"$st"
	step_end
}

# ---------------------------------------------------------------------------
step_reload() {
	step_begin reload "edit config + systemctl reload; broken config; restore"
	local cur pid_c pid_p line out u
	pid_c=$(prop mmapq-consumer.service MainPID)
	pid_p=$(prop mmapq-producer.service MainPID)

	set_key log level debug
	set_key log stats_interval 1
	cur=$(cursor)
	check "systemctl reload mmapq-producer mmapq-consumer" systemctl reload mmapq-producer.service mmapq-consumer.service
	for u in consumer producer; do
		out=$(jwait 10 "$cur" 'reload: \[log\] level: info -> debug' "_SYSTEMD_UNIT=mmapq-$u.service" "MMAPQ_ROLE=$u")
		check "$u logged 'reload: [log] level: info -> debug' (with MMAPQ_ROLE=$u)" test -n "$out" && info "$out"
		out=$(jwait 10 "$cur" 'reload: \[log\] stats_interval: 0 -> 1' "_SYSTEMD_UNIT=mmapq-$u.service")
		check "$u logged 'reload: [log] stats_interval: 0 -> 1'" test -n "$out" && info "$out"
	done
	out=$(jwait 10 "$cur" '^consumed [0-9]+' _SYSTEMD_UNIT=mmapq-consumer.service MMAPQ_ROLE=consumer)
	check "stats_interval = 1 applied: the consumer logs statistics" test -n "$out" && info "$out"
	check "same MainPIDs after reload" test "$(prop mmapq-consumer.service MainPID)" = "$pid_c" -a \
		"$(prop mmapq-producer.service MainPID)" = "$pid_p"
	out=$(systemctl show -P SubState mmapq-consumer.service)
	info "consumer SubState after reload: $out"

	# A change that needs a restart is logged as such, not applied.
	set_key queue size 8M
	cur=$(cursor)
	systemctl reload mmapq-consumer.service || fail "reload with a changed size failed"
	out=$(jwait 10 "$cur" "size: $SIZE -> 8M.*restart" _SYSTEMD_UNIT=mmapq-consumer.service)
	check "a restart-only change is logged: 'reload: [queue] size: $SIZE -> 8M needs a restart...'" \
		test -n "$out" && info "$out"
	set_key queue size $SIZE

	# A broken config: systemctl reload fails, the daemon keeps running.
	set_key log level loud
	line=$(grep -n '^level = loud' "$MMAPQ_CONFIG" | cut -d: -f1)
	cur=$(cursor)
	if systemctl reload mmapq-consumer.service 2>/run/reload.err; then
		fail "systemctl reload with a broken config succeeded"
	else
		pass "systemctl reload with a broken config fails: $(tr '\n' ' ' </run/reload.err)"
	fi
	check "consumer still active, same MainPID $pid_c" \
		test "$(prop mmapq-consumer.service ActiveState)" = active -a "$(prop mmapq-consumer.service MainPID)" = "$pid_c"
	out=$(jwait 10 "$cur" "^$MMAPQ_CONFIG:$line:" _SYSTEMD_UNIT=mmapq-consumer.service)
	check "the journal shows the error as $MMAPQ_CONFIG:$line: ..." test -n "$out" && info "$out"
	# The daemon's own SIGHUP path with the broken file: it keeps the old
	# config and says why.
	cur=$(cursor)
	check "systemctl kill -s HUP mmapq-consumer (broken config)" systemctl kill -s HUP mmapq-consumer.service
	out=$(jwait 10 "$cur" "$MMAPQ_CONFIG:$line:" _SYSTEMD_UNIT=mmapq-consumer.service "_PID=$pid_c")
	check "the daemon (pid $pid_c) logged $MMAPQ_CONFIG:$line: on SIGHUP" test -n "$out" && info "$out"
	out=$(jwait 10 "$cur" 'keep|old config|not applied|unchanged' _SYSTEMD_UNIT=mmapq-consumer.service "_PID=$pid_c")
	[ -n "$out" ] && info "$out"
	check "consumer still active after SIGHUP, same MainPID" \
		test "$(prop mmapq-consumer.service ActiveState)" = active -a "$(prop mmapq-consumer.service MainPID)" = "$pid_c"
	# (mmapqctl refuses the broken file too: give it the good one)
	still_delivers 42 --config /run/mmapq-test.ini.orig

	restore_config
	reload_logs "config restored" 'reload: \[log\] level: debug -> info'
	step_end
}

# ---------------------------------------------------------------------------
step_kill_consumer() {
	step_begin kill-consumer "SIGKILL the consumer while $STREAM_N records stream in"
	local cur cur2 pid n spid rc off out w half=$((STREAM_N / 2)) m=20000
	local dropin=/run/systemd/system/mmapq-consumer.service.d
	# One `mmapqctl send` connection carries all the records; its input is a
	# FIFO that this test fills in two halves, so the stream is provably still
	# in progress (the second half not even written) when the consumer dies.
	rm -f /run/stream.fifo
	mkfifo /run/stream.fifo
	cur=$(cursor)
	timeout 300 "$CTL" send </run/stream.fifo >/run/stream.send.out 2>&1 &
	spid=$!
	exec {w}>/run/stream.fifo
	seq 0 $((half - 1)) >&$w
	if ! jwait 60 "$cur" . _SYSTEMD_UNIT=mmapq-consumer.service MESSAGE=$((half / 2)) >/dev/null; then
		fail "record $((half / 2)) did not reach the consumer within 60 s"
	fi
	pid=$(prop mmapq-consumer.service MainPID)
	n=$(prop mmapq-consumer.service NRestarts)
	cur2=$(cursor)
	check "systemctl kill -s KILL mmapq-consumer (pid $pid) with the send still streaming" \
		systemctl kill -s KILL mmapq-consumer.service
	# the rest of the stream, while the consumer is dead or restarting (the
	# queue fills up: the producer and the sender wait, nothing is lost)
	seq $half $((STREAM_N - 1)) >&$w
	exec {w}>&-
	wait_restarted mmapq-consumer.service "$pid" "$n" "$cur2" 30
	if ! jwait 180 "$cur" . _SYSTEMD_UNIT=mmapq-consumer.service MESSAGE=$((STREAM_N - 1)) >/dev/null; then
		fail "record $((STREAM_N - 1)) did not reach the consumer within 180 s"
	fi
	wait "$spid"
	rc=$?
	check "mmapqctl send < 0..$((STREAM_N - 1)) exits 0 (all acknowledged as published)" test $rc = 0 ||
		sed 's/^/      send: /' /run/stream.send.out | tail -5
	info "send: $(tail -n 1 /run/stream.send.out)"
	records "$cur" >/run/stream.records
	# value 0's sequence number: the offset between values and sequence numbers
	off=$(awk '$2 == 0 { print $1; exit }' /run/stream.records)
	out=$(check_stream /run/stream.records 0 $((STREAM_N - 1)) "${off:-0}" $RING_INTS 1)
	check "every record 0..$((STREAM_N - 1)) arrived in order, at-least-once (repeats only as a replayed batch)" \
		test $? = 0
	echo "$out" | sed 's/^/      /'
	rm -f /run/stream.fifo

	if [ "${MMAPQ_FAULTS:-0}" != 1 ]; then
		info "skipped: a crash between write and acknowledgement needs the fault-injection daemons"
		info "(configure with -DMMAPQ_FAULT_INJECTION=ON, as tests/check.sh does)"
		step_end
		return
	fi
	# Where the kill lands is chance: most often between two batches.  Make
	# sure the other case is seen as well: a consumer that dies after writing
	# a batch and before acknowledging it (MMAPQ_FAULT=consumer.written@1: it
	# SIGKILLs itself when its output has delivered the first batch, before
	# mmapq_release stores its cursor; the 20,000 records may come in one or
	# two batches, so only the first release is certain).  The fault is in a file
	# that only the next start reads (ExecStartPost= removes it), so exactly
	# one instance crashes.
	mkdir -p "$dropin"
	printf '[Service]\nEnvironmentFile=-/run/mmapq-test.fault\nExecStartPost=+/bin/rm -f /run/mmapq-test.fault\n' \
		>"$dropin/50-test-fault.conf"
	systemctl daemon-reload
	echo MMAPQ_FAULT=consumer.written@1 >/run/mmapq-test.fault
	check "systemctl restart mmapq-consumer (MMAPQ_FAULT=consumer.written@1, once)" systemctl restart mmapq-consumer.service
	pid=$(prop mmapq-consumer.service MainPID)
	n=$(prop mmapq-consumer.service NRestarts)
	check "the consumer (pid $pid) runs with MMAPQ_FAULT=consumer.written@1" \
		grep -qz '^MMAPQ_FAULT=consumer.written@1$' "/proc/$pid/environ"
	check "ExecStartPost= removed the fault file (only this instance crashes)" test ! -e /run/mmapq-test.fault
	cur=$(cursor)
	seq 0 $((m - 1)) | timeout 120 "$CTL" send >/run/stream.send.out 2>&1
	check "mmapqctl send < 0..$((m - 1)) exits 0" test $? = 0 || tail -3 /run/stream.send.out
	if ! jwait 60 "$cur" . _SYSTEMD_UNIT=mmapq-consumer.service MESSAGE=$((m - 1)) >/dev/null; then
		fail "record $((m - 1)) did not reach the consumer within 60 s"
	fi
	# the crashed instance may have written every record before its release:
	# wait for the restart, then for the replay of the last record by the
	# new instance
	wait_restarted mmapq-consumer.service "$pid" "$n" "$cur" 30
	out=$(journalctl --no-pager --cursor="$cur" _PID=1 UNIT=mmapq-consumer.service -o cat | grep -E 'Main process exited')
	check "the consumer (pid $pid) crashed at its first release: $out" grep -q 'code=killed, status=9/KILL' <<<"$out"
	if ! jwait 60 "$cur" . _SYSTEMD_UNIT=mmapq-consumer.service MESSAGE=$((m - 1)) \
		"_PID=$(prop mmapq-consumer.service MainPID)" >/dev/null; then
		fail "the restarted consumer did not write record $((m - 1)) again within 60 s"
	fi
	records "$cur" >/run/stream.records
	off=$(awk '$2 == 0 { print $1; exit }' /run/stream.records)
	out=$(check_stream /run/stream.records 0 $((m - 1)) "${off:-0}" $RING_INTS 1)
	check "every record 0..$((m - 1)) arrived in order, the unacknowledged batch written again (same MMAPQ_SEQ)" \
		test $? = 0
	echo "$out" | sed 's/^/      /'
	check "a replayed batch was seen" grep -q 'replay after restart' <<<"$out"
	rm -rf "$dropin" /run/mmapq-test.fault
	systemctl daemon-reload
	step_end
}

# ---------------------------------------------------------------------------
step_kill_producer() {
	step_begin kill-producer "SIGKILL the producer (input = generate) mid-stream"
	local cur cur2 pid n first last out rate=10000
	systemctl stop mmapq-producer.service mmapq-producer.socket
	socket_off
	set_key producer input generate
	set_key producer generate_rate $rate
	cur=$(cursor)
	check "systemctl start mmapq-producer (input = generate)" systemctl start mmapq-producer.service
	out=$(jwait 20 "$cur" '^MMAPQ_SEQ=' _SYSTEMD_UNIT=mmapq-consumer.service -o export --output-fields=MMAPQ_SEQ)
	first=${out#MMAPQ_SEQ=}
	if [ -z "$first" ]; then
		fail "no generated record reached the consumer within 20 s"
		step_end
		return
	fi
	info "first generated record: seq $first"
	jwait 30 "$cur" . _SYSTEMD_UNIT=mmapq-consumer.service "MMAPQ_SEQ=$((first + rate))" >/dev/null ||
		fail "seq $((first + rate)) did not arrive within 30 s"
	pid=$(prop mmapq-producer.service MainPID)
	n=$(prop mmapq-producer.service NRestarts)
	cur2=$(cursor)
	check "systemctl kill -s KILL mmapq-producer (pid $pid)" systemctl kill -s KILL mmapq-producer.service
	wait_restarted mmapq-producer.service "$pid" "$n" "$cur2" 30
	jwait 30 "$cur" . _SYSTEMD_UNIT=mmapq-consumer.service "MMAPQ_SEQ=$((first + 3 * rate))" >/dev/null ||
		fail "seq $((first + 3 * rate)) did not arrive within 30 s of the restart"
	check "systemctl stop mmapq-producer" systemctl stop mmapq-producer.service
	last=$(queue_tail)
	last=$((${last:-1} - 1))
	info "producer stopped; last published seq $last"
	jwait 30 "$cur" . _SYSTEMD_UNIT=mmapq-consumer.service "MMAPQ_SEQ=$last" >/dev/null ||
		fail "the consumer did not reach seq $last within 30 s"
	records "$cur" >/run/gen.records
	# generated values are their sequence numbers: offset 0
	out=$(check_stream /run/gen.records "$first" "$last" 0 $RING_INTS 0)
	check "gap-free, in-order sequence $first..$last across the producer's kill and restart (value == seq)" test $? = 0
	echo "$out" | sed 's/^/      /'
	restore_config
	socket_on
	check "back to socket activation: systemctl start mmapq.target" systemctl start mmapq.target
	step_end
}

# ---------------------------------------------------------------------------
# producer_json NAME FIELD: the field of the producer NAME in status --json
producer_json() {
	"$CTL" --json status 2>/dev/null | jq -r --arg n "$1" ".producers[] | select(.name == \$n) | .$2"
}

step_fanin() {
	step_begin fanin "two producers at once: mmapq-producer.service (socket) and mmapq-producer --name gen (input = generate)"
	local cur out dpid gpid before gen last u=mmapq-test-gen.service gencfg=/run/mmapq-gen.ini
	local q=/var/lib/mmapq/queue
	systemctl start mmapq.target
	# gen: the shipped configuration, its input generate (a drop-in)
	cp "$MMAPQ_CONFIG" "$gencfg"
	mkdir -p "$gencfg.d"
	printf '[producer]\ninput = generate\ngenerate_rate = 1000\n' >"$gencfg.d/50-gen.ini"
	before=$(producer_json default published)
	cur=$(cursor)
	check "systemd-run $u: mmapq-producer --name gen as mmapq" \
		systemd-run --quiet --unit="$u" -p Type=notify -p User=mmapq -p Group=mmapq -p UMask=0007 \
		"$MMAPQ_BINDIR/mmapq-producer" --config "$gencfg" --name gen
	jwait 20 "$cur" '^[0-9]+$' _SYSTEMD_UNIT=mmapq-consumer.service >/dev/null ||
		fail "no generated record reached the consumer within 20 s"
	check "mmapqctl send -1..-1000 (to mmapq-producer.service) beside gen" \
		sh -c "seq -1 -1 -1000 | timeout 60 '$CTL' send >/dev/null"
	jwait 30 "$cur" . _SYSTEMD_UNIT=mmapq-consumer.service MESSAGE=-1000 >/dev/null ||
		fail "-1000 did not reach the consumer's journal within 30 s"

	# both attached: status, --json and metrics say so, with their pids
	dpid=$(prop mmapq-producer.service MainPID)
	gpid=$(prop "$u" MainPID)
	out=$("$CTL" status)
	info "$(grep '^producer' <<<"$out" | tr '\n' ';')"
	check "status: producer default pid $dpid (alive)" grep -q "^producer default pid $dpid (alive)" <<<"$out"
	check "status: producer gen pid $gpid (alive)" grep -q "^producer gen pid $gpid (alive)" <<<"$out"
	check "status --json: gen attached, pid $gpid; default published 1000 more ($before before)" \
		test "$(producer_json gen attached)/$(producer_json gen pid)/$(producer_json default published)" = \
			"true/$gpid/$((before + 1000))"
	out=$("$CTL" metrics)
	check "metrics: mmapq_producer_attached 1 for default and for gen" \
		test "$(grep -Ec "^mmapq_producer_attached\{queue=\"$q\",producer=\"(default|gen)\"\} 1$" <<<"$out")" = 2

	# gen stopped: not attached, no pid, its count kept; every record arrives
	check "systemctl stop $u" systemctl stop "$u"
	gen=$(producer_json gen published)
	check "status --json: gen not attached, pid 0, last_pid $gpid, published $gen" \
		test "$(producer_json gen attached)/$(producer_json gen pid)/$(producer_json gen last_pid)" = "false/0/$gpid"
	out=$("$CTL" metrics)
	check "metrics: gen published $gen" \
		grep -qx "mmapq_producer_published_records_total{queue=\"$q\",producer=\"gen\"} $gen" <<<"$out"
	last=$(queue_tail)
	last=$((${last:-1} - 1))
	jwait 30 "$cur" . _SYSTEMD_UNIT=mmapq-consumer.service "MMAPQ_SEQ=$last" >/dev/null ||
		fail "the consumer did not reach seq $last within 30 s"
	records "$cur" >/run/fanin.records
	out=$(awk -v gen="$gen" '
		{ seq = $1 + 0; v = $2 + 0
		  if (n++ && seq != prev + 1) { gaps++; if (gaps <= 5) printf "  seq %d after %d\n", seq, prev }
		  prev = seq
		  if (v < 0) { if (v != -(neg + 1)) { bad++; if (bad <= 5) printf "  %d where %d is due\n", v, -(neg + 1) } neg++ }
		  else { if (g++ && v <= lastg) { bad++; if (bad <= 5) printf "  gen %d after %d\n", v, lastg } lastg = v } }
		END { printf "%d records: %d sent (want 1000), %d generated (want %d), %d gaps, %d out of order\n", n, neg, g, gen, gaps, bad
		      exit !(neg == 1000 && g == gen && !gaps && !bad) }' /run/fanin.records)
	check "the consumer got -1..-1000 in order and gen's records increasing, every one once, at gap-free seqs" \
		test $? = 0
	echo "$out" | sed 's/^/      /'
	rm -rf "$gencfg" "$gencfg.d"
	step_end
}

# ---------------------------------------------------------------------------
step_watchdog() {
	step_begin watchdog "a hung consumer loop is killed by the watchdog and restarted"
	local cur cur2 pid n out i dropin=/run/systemd/system/mmapq-consumer.service.d
	if [ "${MMAPQ_FAULTS:-0}" != 1 ]; then
		info "skipped: a hung loop needs the fault-injection daemons (-DMMAPQ_FAULT_INJECTION=ON)"
		step_end
		return
	fi
	mkdir -p "$dropin"
	cat >"$dropin/50-watchdog-test.conf" <<-'EOF'
	[Service]
	Environment=MMAPQ_FAULT=consumer.loop@20:hang
	WatchdogSec=2s
	EOF
	systemctl daemon-reload
	check "systemctl restart mmapq-consumer (MMAPQ_FAULT=consumer.loop@20:hang, WatchdogSec=2s)" \
		systemctl restart mmapq-consumer.service
	check "WatchdogUSec is 2s" test "$(prop mmapq-consumer.service WatchdogUSec)" = 2s
	pid=$(prop mmapq-consumer.service MainPID)
	n=$(prop mmapq-consumer.service NRestarts)
	cur=$(cursor)
	# Drive the loop: every record wakes it (it also turns once a second idle).
	for i in $(seq 1 40); do
		timeout 10 "$CTL" send "$i" >/dev/null 2>&1 || break
	done
	out=$(jwait 40 "$cur" 'Watchdog timeout' _PID=1 UNIT=mmapq-consumer.service)
	check "systemd: 'Watchdog timeout' for mmapq-consumer" test -n "$out" && info "$out"
	wait_restarted mmapq-consumer.service "$pid" "$n" "$cur" 30
	out=$(journalctl --no-pager --cursor="$cur" _PID=1 UNIT=mmapq-consumer.service -o cat | grep -E 'Main process exited|Failed with result' | tr '\n' ';')
	info "$out"
	rm -rf "$dropin"
	systemctl daemon-reload
	check "systemctl restart mmapq-consumer without the fault" systemctl restart mmapq-consumer.service
	step_end
}

# ---------------------------------------------------------------------------
# both_refused CURSOR WHAT: since CURSOR both daemons of the single queue
# exited 65 on WHAT and systemd does not restart them (a unit to be
# restarted would be activating/auto-restart now).
both_refused() {
	local u
	for u in mmapq-producer.service mmapq-consumer.service; do
		jwait 20 "$1" "Failed with result" _PID=1 "UNIT=$u" >/dev/null ||
			fail "$u did not fail with $2"
		check "$u: failed with 65, not waiting to restart (exit $(prop $u ExecMainStatus), $(prop $u ActiveState)/$(prop $u SubState), NRestarts $(prop $u NRestarts))" \
			test "$(prop $u ExecMainStatus)" = 65 -a "$(prop $u ActiveState)" = failed \
			-a "$(prop $u SubState)" = failed -a "$(prop $u NRestarts)" = 0
	done
}

# recreate_delivers VALUE...: with both daemons refused (both_refused),
# mmapqctl recreate carries the VALUEs (all the file holds), the consumer
# default and the producer default over into a file of the configured
# geometry, owned by mmapq; started again, the consumer delivers exactly
# the VALUEs.
recreate_delivers() {
	local cur out vals
	out=$("$CTL" recreate 2>&1)
	info "$out"
	check "mmapqctl recreate: the $# records, the consumer and the producer default carried over" \
		grep -qE "; $# records( \([^)]*\))?, 1 consumer\(s\) and 1 producer\(s\) carried over" <<<"$out"
	check "the new queue file belongs to mmapq" \
		test "$(stat -c '%U %G' /var/lib/mmapq/queue)" = "mmapq mmapq"
	systemctl reset-failed mmapq-producer.service mmapq-consumer.service
	cur=$(cursor)
	check "systemctl start mmapq.target" systemctl start mmapq.target
	jwait 20 "$cur" . _SYSTEMD_UNIT=mmapq-consumer.service "MESSAGE=${*: -1}" >/dev/null ||
		fail "record ${*: -1} did not reach the consumer's journal"
	vals=$(records "$cur" | awk '{ print $2 }' | tr '\n' ' ')
	check "the consumer got $* from the recreated file (got '$vals')" test "$vals" = "$* "
}

step_geometry() {
	step_begin geometry "a changed size: exit 65, not restarted; mmapqctl recreate carries the records over"
	local cur out new=8M
	systemctl start mmapq.target
	check "systemctl stop mmapq-consumer" systemctl stop mmapq-consumer.service
	check "mmapqctl send 11 12 13 (no consumer: they wait in the file)" timeout 30 "$CTL" send 11 12 13
	check "systemctl stop mmapq.target" systemctl stop mmapq.target
	set_key queue size $new
	cur=$(cursor)
	systemctl start mmapq.target
	both_refused "$cur" "the file of the old size"
	# By the fields the daemon sets itself: journald may not attribute
	# _SYSTEMD_UNIT= to a message whose process is gone by the time it is
	# read (the producer exits right after it), and it may store it after
	# systemd's "Failed with result" above.
	out=$(jwait 10 "$cur" "size is [^ ]+ in the file but [^ ]+ in the configuration" \
		SYSLOG_IDENTIFIER=mmapq-producer MMAPQ_ROLE=producer)
	check "the producer's journal names both sizes: $out" test -n "$out"
	out=$(jwait 10 "$cur" "mmapqctl recreate" SYSLOG_IDENTIFIER=mmapq-producer MMAPQ_ROLE=producer)
	check "the producer's journal names mmapqctl recreate: $out" test -n "$out"
	recreate_delivers 11 12 13
	# back to the shipped geometry, the same way
	systemctl stop mmapq.target
	restore_config
	check "mmapqctl recreate (back to size $SIZE)" "$CTL" recreate
	check "systemctl start mmapq.target" systemctl start mmapq.target
	step_end
}

# ---------------------------------------------------------------------------
# What an upgrade from mmapq 0.x leaves: its queue file, of format version 3,
# which the daemons of this version refuse until `mmapqctl recreate` made it
# anew (OPERATIONS.md, "Upgrades").
step_upgrade() {
	step_begin upgrade "a queue file of mmapq 0.x: exit 65 naming mmapqctl recreate, not restarted; recreate carries records and consumer over"
	local cur out u q=/var/lib/mmapq/queue legacy=$here/legacy_queue
	check "the test's legacy_queue is there (built with the tests: tests/systemd/legacy_queue.c)" \
		test -x "$legacy" || { step_end; return; }
	check "systemctl stop mmapq.target" systemctl stop mmapq.target
	check "legacy_queue $q 21 22 23: a version-3 file, the consumer default before 21" \
		"$legacy" "$q" 21 22 23
	chown mmapq:mmapq "$q" && chmod 0660 "$q"
	out=$("$CTL" status 2>&1)
	check "mmapqctl status shows the old file (version 3, 3 records)" \
		grep -Eq 'version 3' <<<"$out" || info "$out"
	cur=$(cursor)
	systemctl start mmapq.target
	both_refused "$cur" "the version-3 file"
	for u in producer consumer; do
		out=$(jwait 10 "$cur" "version 3.*mmapqctl recreate" SYSLOG_IDENTIFIER=mmapq-$u MMAPQ_ROLE=$u)
		check "the $u's journal names the version and mmapqctl recreate: $out" test -n "$out"
	done
	recreate_delivers 21 22 23
	out=$("$CTL" --json status 2>&1)
	check "mmapqctl status: version 4, size $SIZE" \
		grep -Eq "\"version\":4\\b.*\"file_size\":$((SIZE_BYTES + 8192))\\b" <<<"$out" || info "$out"
	cur=$(cursor)
	check "mmapqctl send 24 (the producer runs on the new file)" timeout 30 "$CTL" send 24
	jwait 20 "$cur" . _SYSTEMD_UNIT=mmapq-consumer.service MESSAGE=24 >/dev/null
	check "the consumer got 24" test $? = 0
	# whatever happened above: no queue file of mmapq 0.x is left for the
	# steps after this one (the daemons make a new file)
	if ! "$CTL" --json status 2>/dev/null | grep -q '"version":4\b'; then
		info "the queue file is still not of version 4: removed, the daemons make a new one"
		systemctl stop mmapq.target
		rm -f "$q"
		systemctl reset-failed mmapq-producer.service mmapq-consumer.service
		systemctl start mmapq.target
	fi
	step_end
}

# ---------------------------------------------------------------------------
step_metrics() {
	step_begin metrics "mmapq-metrics.socket: a scrape per connection, Prometheus text, loopback only"
	local out tail n
	systemctl start mmapq.target
	check "systemctl start mmapq-metrics.socket" systemctl start mmapq-metrics.socket
	check "mmapqctl send 1 2 3" timeout 30 "$CTL" send 1 2 3
	out=$(curl -sS -w '\nHTTP %{http_code}' http://127.0.0.1:9741/metrics 2>&1)
	check "GET http://127.0.0.1:9741/metrics: 200" grep -q '^HTTP 200$' <<<"$out" || info "$out"
	tail=$(queue_tail)
	check "mmapq_published_records_total is the queue's tail ($tail)" \
		grep -q "^mmapq_published_records_total{queue=\"/var/lib/mmapq/queue\"} $tail\$" <<<"$out"
	check "the producer attached" grep -q '^mmapq_attached{.*,role="producer"} 1$' <<<"$out"
	check "the consumer default attached" grep -q '^mmapq_consumer_attached{.*,consumer="default"} 1$' <<<"$out"
	if command -v promtool >/dev/null; then
		check "promtool check metrics: clean" test -z "$(sed '$d' <<<"$out" | promtool check metrics 2>&1)"
	fi
	n=$(prop mmapq-metrics.socket NAccepted)
	check "one mmapq-metrics@.service per connection (NAccepted $n >= 1)" test "$n" -ge 1
	check "no mmapq-metrics@ instance left running" \
		test -z "$(systemctl list-units --no-legend --state=running 'mmapq-metrics@*' 2>/dev/null)"
	systemctl stop mmapq-metrics.socket
	step_end
}

# ---------------------------------------------------------------------------
step_records() {
	step_begin records "records apart from logs: journalctl -t; [consumer] journal_namespace"
	local cur out ns=mmapq-records
	systemctl start mmapq.target
	cur=$(cursor)
	check "mmapqctl send 31 32 33" timeout 30 "$CTL" send 31 32 33
	jwait 20 "$cur" '^33$' SYSLOG_IDENTIFIER=mmapq-records >/dev/null ||
		fail "record 33 did not reach the journal as mmapq-records within 20 s"
	out=$(journalctl --no-pager --cursor="$cur" -t mmapq-records -o cat | tr '\n' ' ')
	check "journalctl -t mmapq-records: only the records ('$out')" test "$out" = "31 32 33 "
	out=$(journalctl --no-pager -u mmapq-consumer.service -t mmapq-consumer -o export \
		--output-fields=MMAPQ_SEQ | grep -c '^MMAPQ_SEQ=')
	check "journalctl -u mmapq-consumer -t mmapq-consumer: the daemon's log lines, no record ($out)" \
		test "$out" = 0

	# Records into a journal namespace of their own: journald@NS, its own
	# files, limits and retention (OPERATIONS.md: "Records in the journal").
	mkdir -p /run/systemd/system/mmapq-consumer.service.d
	printf '[Unit]\nWants=systemd-journald@%s.socket\nAfter=systemd-journald@%s.socket\n' "$ns" "$ns" \
		>/run/systemd/system/mmapq-consumer.service.d/namespace.conf
	mkdir -p "$MMAPQ_CONFIG.d"
	printf '[consumer]\njournal_namespace = %s\n' "$ns" >"$MMAPQ_CONFIG.d/50-namespace.ini"
	systemctl daemon-reload
	check "systemctl restart mmapq-consumer (with the namespace drop-ins)" systemctl restart mmapq-consumer.service
	check "systemd-journald@$ns.socket is active" test "$(prop "systemd-journald@$ns.socket" ActiveState)" = active
	# journald@NS makes its journal files when it starts (on the first entry,
	# through its socket): start it now, so that the journalctl below has a
	# journal to follow (it does not notice one created after it started)
	check "systemctl start systemd-journald@$ns.service" systemctl start "systemd-journald@$ns.service"
	cur=$(cursor)
	check "mmapqctl send 41 42 43" timeout 30 "$CTL" send 41 42 43
	# the namespace has a journal of its own (fresh in this container):
	# followed from its start, a cursor of the default journal means nothing there
	timeout 20 journalctl --no-pager --namespace="$ns" -f -n all -t mmapq-records -o cat |
		grep -m 1 -qx 43 || {
		fail "record 43 did not reach the namespace $ns within 20 s"
		journalctl --no-pager --namespace="$ns" -n 20 -o short-monotonic 2>&1 | sed 's/^/      | /'
	}
	out=$(journalctl --no-pager --namespace="$ns" -t mmapq-records -o cat | tr '\n' ' ')
	check "journalctl --namespace=$ns -t mmapq-records: the records ('$out')" \
		grep -q '41 42 43 $' <<<"$out"
	out=$(journalctl --no-pager --cursor="$cur" -t mmapq-records -o cat | tr '\n' ' ')
	check "the default journal got none of them ('$out')" test -z "$out"
	cur=$(cursor)
	printf '[log]\nstats_interval = 1\n' >"$MMAPQ_CONFIG.d/60-stats.ini"
	check "systemctl reload mmapq-consumer" systemctl reload mmapq-consumer.service
	out=$(jwait 10 "$cur" '^reload: \[log\] stats_interval' _SYSTEMD_UNIT=mmapq-consumer.service \
		SYSLOG_IDENTIFIER=mmapq-consumer)
	check "its own log lines stay in the default journal as mmapq-consumer ('$out')" test -n "$out"
	rm -rf "$MMAPQ_CONFIG.d" /run/systemd/system/mmapq-consumer.service.d
	systemctl daemon-reload
	systemctl restart mmapq-consumer.service
	step_end
}

# ---------------------------------------------------------------------------
step_dropin() {
	step_begin dropin "a drop-in $MMAPQ_CONFIG.d/50-test.ini applied by systemctl reload; a broken one refused"
	local cur out u pid_c pid_p line
	local d=$MMAPQ_CONFIG.d
	systemctl start mmapq.target
	pid_c=$(prop mmapq-consumer.service MainPID)
	pid_p=$(prop mmapq-producer.service MainPID)
	mkdir -p "$d"
	printf '; written by the test\n[log]\nlevel = debug\nstats_interval = 1\n' >"$d/50-test.ini"
	# an editor's backup beside it is not read
	printf '[log]\nlevel = loud\n' >"$d/50-test.ini~"
	out=$("$MMAPQ_BINDIR/mmapq-consumer" --config "$MMAPQ_CONFIG" --check-config 2>&1)
	check "mmapq-consumer --check-config lists the drop-in: $(echo "$out" | tr '\n' ';')" \
		grep -qx "$d/50-test.ini: configuration OK (drop-in)" <<<"$out"
	cur=$(cursor)
	check "systemctl reload mmapq-producer mmapq-consumer" systemctl reload mmapq-producer.service mmapq-consumer.service
	for u in consumer producer; do
		out=$(jwait 10 "$cur" "^configuration: drop-in $d/50-test.ini\$" "_SYSTEMD_UNIT=mmapq-$u.service")
		check "$u logged that it reads $d/50-test.ini" test -n "$out"
		out=$(jwait 10 "$cur" 'reload: \[log\] level: info -> debug \(applied\)' "_SYSTEMD_UNIT=mmapq-$u.service")
		check "$u applied the drop-in: 'reload: [log] level: info -> debug (applied)'" test -n "$out"
	done
	out=$(jwait 10 "$cur" '^consumed [0-9]+' _SYSTEMD_UNIT=mmapq-consumer.service)
	check "stats_interval = 1 from the drop-in: the consumer logs statistics" test -n "$out" && info "$out"
	check "same MainPIDs after the reload" test "$(prop mmapq-consumer.service MainPID)" = "$pid_c" -a \
		"$(prop mmapq-producer.service MainPID)" = "$pid_p"

	# A broken drop-in: the reload fails, the daemon keeps running, and the
	# journal names the drop-in and its line.
	printf '[queue]\n; line 2\nsync = sometimes\n' >"$d/60-bad.ini"
	line=3
	cur=$(cursor)
	if systemctl reload mmapq-consumer.service 2>/run/reload.err; then
		fail "systemctl reload with a broken drop-in succeeded"
	else
		pass "systemctl reload with a broken drop-in fails"
	fi
	out=$(jwait 10 "$cur" "^$d/60-bad.ini:$line: \[queue\] sync: 'sometimes' is not valid" _SYSTEMD_UNIT=mmapq-consumer.service)
	check "the journal shows the error as $d/60-bad.ini:$line: ..." test -n "$out" && info "$out"
	check "consumer still active, same MainPID $pid_c" \
		test "$(prop mmapq-consumer.service ActiveState)" = active -a "$(prop mmapq-consumer.service MainPID)" = "$pid_c"
	rm -f "$d/60-bad.ini"
	still_delivers 77

	# Removed: back to mmapq.ini alone.
	rm -rf "$d"
	reload_logs "drop-ins removed" 'reload: \[log\] level: debug -> info \(applied\)'
	step_end
}

# ---------------------------------------------------------------------------
# instance_units NAME: the units of one queue of several
instance_units() {
	echo "mmapq@$1.target mmapq-producer@$1.socket mmapq-producer@$1.service mmapq-consumer@$1.service"
}

step_instances() {
	step_begin instances "mmapq@a.target and mmapq@b.target at once beside mmapq.target: each queue its own"
	local cur out u n vals pid_c q want
	systemctl start mmapq.target
	pid_c=$(prop mmapq-consumer.service MainPID)
	# a: no a.ini at all.  b: b.ini and a drop-in, neither names a path.
	rm -rf "$CONFDIR/a.ini" "$CONFDIR/a.ini.d"
	printf '; queue b\n[queue]\nsize = 1M\n' >"$CONFDIR/b.ini"
	mkdir -p "$CONFDIR/b.ini.d"
	printf '[log]\nstats_interval = 0\n' >"$CONFDIR/b.ini.d/50-b.ini"
	cur=$(cursor)
	check "systemctl start mmapq@a.target mmapq@b.target" systemctl start mmapq@a.target mmapq@b.target
	for n in a b; do
		for u in $(instance_units $n); do
			check "$u is active" test "$(prop "$u" ActiveState)" = active
		done
		check "socket /run/mmapq/$n.producer.sock is 0660 root:mmapq" \
			test "$(stat -c '%a %U %G %F' /run/mmapq/$n.producer.sock 2>/dev/null)" = "660 root mmapq socket"
		check "queue file /var/lib/mmapq/$n.queue belongs to mmapq" \
			test "$(stat -c '%U' /var/lib/mmapq/$n.queue 2>/dev/null)" = mmapq
		check "mmapq-producer@$n runs as mmapq" \
			test "$(ps -o user= -p "$(prop "mmapq-producer@$n.service" MainPID)")" = mmapq
	done
	out="$("$CTL" --instance b --json status 2>&1) $("$CTL" --json status 2>&1)"
	check "mmapqctl --instance b status: size 1M (b.ini); mmapqctl status: $SIZE" \
		grep -Eq "\"file_size\":$((1048576 + 8192))\\b.*\"file_size\":$((SIZE_BYTES + 8192))\\b" <<<"$out" ||
		info "$out"
	out=$("$CTL" --instance a --check-config)
	check "mmapqctl --instance a --check-config: built-in defaults of instance a" \
		grep -qx "instance a: queue file /var/lib/mmapq/a.queue, socket /run/mmapq/a.producer.sock" <<<"$out" ||
		info "$out"

	cur=$(cursor)
	check "mmapqctl --instance a send 101 102 103" timeout 30 "$CTL" --instance a send 101 102 103
	check "mmapqctl --instance b send 201 202 203 204" timeout 30 "$CTL" --instance b send 201 202 203 204
	check "mmapqctl send 301 (the single queue)" timeout 30 "$CTL" send 301
	jwait 20 "$cur" . _SYSTEMD_UNIT=mmapq-consumer@a.service MESSAGE=103 >/dev/null || fail "103 did not reach mmapq-consumer@a"
	jwait 20 "$cur" . _SYSTEMD_UNIT=mmapq-consumer@b.service MESSAGE=204 >/dev/null || fail "204 did not reach mmapq-consumer@b"
	jwait 20 "$cur" . _SYSTEMD_UNIT=mmapq-consumer.service MESSAGE=301 >/dev/null || fail "301 did not reach mmapq-consumer"
	for u in a:"101 102 103 " b:"201 202 203 204 " :"301 "; do
		n=${u%%:*}
		want=${u#*:}
		u=mmapq-consumer${n:+@$n}.service
		vals=$(records "$cur" "$u" | awk '{ print $2 }' | tr '\n' ' ')
		check "journalctl -u $u: exactly its own records '$want' (got '$vals')" test "$vals" = "$want"
		q=/var/lib/mmapq/${n:+$n.}queue
		out=$(journalctl --no-pager "_SYSTEMD_UNIT=$u" --cursor="$cur" -o json "MESSAGE=${want%% *}" -n 1)
		check "$u's records carry MMAPQ_QUEUE=$q" grep -q "\"MMAPQ_QUEUE\" *: *\"$q\"" <<<"$out"
	done

	# A reload of one instance reads its own drop-ins (ExecReload= runs
	# --instance %i --check-config first) and leaves the others alone.
	printf '[log]\nstats_interval = 1\n' >"$CONFDIR/b.ini.d/50-b.ini"
	cur=$(cursor)
	check "systemctl reload mmapq-consumer@b" systemctl reload mmapq-consumer@b.service
	out=$(jwait 10 "$cur" 'reload: \[log\] stats_interval: 0 -> 1 \(applied\)' _SYSTEMD_UNIT=mmapq-consumer@b.service)
	check "mmapq-consumer@b applied its drop-in on reload" test -n "$out"
	out=$(journalctl --no-pager --cursor="$cur" _SYSTEMD_UNIT=mmapq-consumer@a.service _SYSTEMD_UNIT=mmapq-consumer.service -o cat | grep 'reload:')
	check "the other consumers were not reloaded" test -z "$out"

	check "systemctl enable mmapq@a.target" systemctl enable mmapq@a.target
	check "mmapq@a.target is wanted by multi-user.target" \
		test -L /etc/systemd/system/multi-user.target.wants/mmapq@a.target
	check "systemctl disable mmapq@a.target" systemctl disable mmapq@a.target

	# stop both instances: everything of theirs goes, the single queue stays
	# shellcheck disable=SC2046
	check "systemctl stop mmapq@a.target mmapq@b.target (and their parts)" \
		systemctl stop mmapq@a.target mmapq@b.target $(instance_units a) $(instance_units b)
	for n in a b; do
		for u in $(instance_units $n); do
			check "$u is inactive" test "$(prop "$u" ActiveState)" = inactive
		done
		check "/run/mmapq/$n.producer.sock removed" test ! -e /run/mmapq/$n.producer.sock
	done
	check "the single queue's consumer still runs (MainPID $pid_c)" \
		test "$(prop mmapq-consumer.service ActiveState)" = active -a "$(prop mmapq-consumer.service MainPID)" = "$pid_c"
	rm -rf "$CONFDIR/b.ini" "$CONFDIR/b.ini.d"
	step_end
}

# ---------------------------------------------------------------------------
# starts_seen N SECONDS CURSOR UNIT: until systemd logged N starts of UNIT
# after CURSOR, at most SECONDS.
starts_seen() {
	local n=$1 secs=$2 cur=$3 u=$4 fd pid k
	exec {fd}< <(exec timeout "$secs" journalctl --no-pager -f -n all --cursor="$cur" -o cat \
		_PID=1 "UNIT=$u" "MESSAGE_ID=$MSGID_STARTED" 2>&1)
	pid=$!
	k=$(grep -m "$n" -c . <&"$fd")
	kill "$pid" 2>/dev/null
	exec {fd}<&-
	[ "$k" -ge "$n" ]
}

# prom_query PORT EXPR: the value of the first series of an instant query
# to the Prometheus on 127.0.0.1:PORT, empty if none
prom_query() {
	curl -sS -G "http://127.0.0.1:$1/api/v1/query" --data-urlencode "query=$2" 2>/dev/null |
		jq -r '.data.result[0].value[1] // empty'
}

step_metrics_instances() {
	step_begin metrics-instances "mmapq-metrics@NAME.socket: each queue instance's endpoint, scraped by Prometheus"
	local n port q want out cur pport=19090 ppid dropins=/etc/systemd/system
	if ! command -v prometheus >/dev/null; then
		fail "no prometheus (tests/deps.sh installs it)"
		step_end
		return
	fi
	# queues of their own: not those an earlier step left (b's of another size)
	# shellcheck disable=SC2046 # one unit a word
	systemctl stop mmapq@a.target mmapq@b.target $(instance_units a) $(instance_units b)
	# shellcheck disable=SC2046
	systemctl reset-failed $(instance_units a) $(instance_units b) 2>/dev/null
	rm -f /var/lib/mmapq/a.queue /var/lib/mmapq/a.queue.lock /var/lib/mmapq/b.queue /var/lib/mmapq/b.queue.lock
	check "systemctl start mmapq@a.target mmapq@b.target" systemctl start mmapq@a.target mmapq@b.target
	check "mmapqctl --instance a send 1 2 3" timeout 30 "$CTL" --instance a send 1 2 3
	check "mmapqctl --instance b send 1 2 3 4 5" timeout 30 "$CTL" --instance b send 1 2 3 4 5
	# each its port, by a drop-in (OPERATIONS.md, "Metrics")
	for n in a:9742 b:9743; do
		mkdir -p "$dropins/mmapq-metrics@${n%%:*}.socket.d"
		printf '[Socket]\nListenStream=127.0.0.1:%s\n' "${n#*:}" \
			>"$dropins/mmapq-metrics@${n%%:*}.socket.d/port.conf"
	done
	systemctl daemon-reload
	check "systemctl start mmapq-metrics@a.socket mmapq-metrics@b.socket" \
		systemctl start mmapq-metrics@a.socket mmapq-metrics@b.socket
	for n in a:9742:3 b:9743:5; do
		IFS=: read -r q port want <<<"$n"
		check "/run/mmapq/$q.metrics.sock is a socket, 0666" \
			test "$(stat -c '%a %F' "/run/mmapq/$q.metrics.sock" 2>/dev/null)" = "666 socket"
		out=$(curl -sS --unix-socket "/run/mmapq/$q.metrics.sock" http://localhost/metrics 2>&1)
		check "curl --unix-socket /run/mmapq/$q.metrics.sock: queue $q's, published $want" \
			grep -qx "mmapq_published_records_total{queue=\"/var/lib/mmapq/$q.queue\"} $want" <<<"$out" ||
			info "$out"
		out=$(curl -sS "http://127.0.0.1:$port/metrics" 2>&1)
		check "curl 127.0.0.1:$port (the drop-in's port): queue $q's, published $want" \
			grep -qx "mmapq_published_records_total{queue=\"/var/lib/mmapq/$q.queue\"} $want" <<<"$out" ||
			info "$out"
		check "promtool check metrics ($q): clean" test -z "$(promtool check metrics <<<"$out" 2>&1)"
	done

	# a real Prometheus scraping both every second: more often than a
	# service may start by default (5 starts in 10 s)
	mkdir -p /tmp/prometheus
	printf '%s\n' 'global:' '  scrape_interval: 1s' '  scrape_timeout: 1s' 'scrape_configs:' \
		'  - job_name: mmapq' '    static_configs:' "      - targets: ['127.0.0.1:9742', '127.0.0.1:9743']" \
		>/tmp/prometheus/prometheus.yml
	cur=$(cursor)
	prometheus --config.file=/tmp/prometheus/prometheus.yml --storage.tsdb.path=/tmp/prometheus/tsdb \
		--web.listen-address="127.0.0.1:$pport" >"$RESULTDIR/prometheus.log" 2>&1 &
	ppid=$!
	for q in a b; do
		check "12 scrapes of queue $q: mmapq-metrics-serve@$q started 12 times" \
			starts_seen 12 90 "$cur" "mmapq-metrics-serve@$q.service"
	done
	for n in a:9742:3 b:9743:5; do
		IFS=: read -r q port want <<<"$n"
		out=$(prom_query "$pport" "min_over_time(up{instance=\"127.0.0.1:$port\"}[1m])")
		check "Prometheus: 127.0.0.1:$port up at every scrape (lowest up: '$out')" test "$out" = 1
		out=$(prom_query "$pport" "count_over_time(up{instance=\"127.0.0.1:$port\"}[1m])")
		check "Prometheus: 127.0.0.1:$port scraped at least 10 times ('$out')" test "${out:-0}" -ge 10
		out=$(prom_query "$pport" "mmapq_published_records_total{instance=\"127.0.0.1:$port\"}")
		check "Prometheus: 127.0.0.1:$port's mmapq_published_records_total is queue $q's, $want ('$out')" \
			test "$out" = "$want"
		out=$(prom_query "$pport" "count(mmapq_consumer_consumed_records_total{instance=\"127.0.0.1:$port\",queue=\"/var/lib/mmapq/$q.queue\"})")
		check "Prometheus: 127.0.0.1:$port's consumer series are queue $q's ('$out')" test "$out" = 1
		check "mmapq-metrics@$q.socket still listening" test "$(prop "mmapq-metrics@$q.socket" ActiveState)" = active
	done
	kill "$ppid" 2>/dev/null
	wait "$ppid" 2>/dev/null
	# shellcheck disable=SC2046 # one unit a word
	systemctl stop mmapq-metrics@a.socket mmapq-metrics@b.socket mmapq@a.target mmapq@b.target \
		$(instance_units a) $(instance_units b)
	check "/run/mmapq/a.metrics.sock removed" test ! -e /run/mmapq/a.metrics.sock
	rm -rf "$dropins/mmapq-metrics@a.socket.d" "$dropins/mmapq-metrics@b.socket.d" /tmp/prometheus
	systemctl daemon-reload
	step_end
}

# ---------------------------------------------------------------------------
# consumer_line NAME [MMAPQCTL OPTION...]: NAME's line of `mmapqctl
# consumers` (to show), empty if it is not registered.
consumer_line() {
	local name=$1
	shift
	"$CTL" "$@" consumers 2>/dev/null | awk -v n="$name" '$1 == n'
}

# consumer_get NAME KEY [MMAPQCTL OPTION...]: KEY of NAME's entry in
# `mmapqctl --json consumers` (mmapqctl(1), JSON OUTPUT: position, lag,
# pid, attached, ...), empty if it is not registered.
consumer_get() {
	local name=$1 key=$2
	shift 2
	"$CTL" "$@" --json consumers 2>/dev/null |
		jq -r --arg n "$name" --arg k "$key" '.[] | select(.name == $n) | .[$k]'
}

# lag_is NAME LAG SECONDS [MMAPQCTL OPTION...]: until `mmapqctl consumers`
# shows LAG for NAME (a consumer acknowledges a batch just after writing it
# out), at most SECONDS.
lag_is() {
	local name=$1 want=$2 end=$(($(now_ms) + $3 * 1000))
	shift 3
	until [ "$(consumer_get "$name" lag "$@")" = "$want" ]; do
		[ "$(now_ms)" -lt "$end" ] || return 1
	done
}

# file_values FILE: its lines, space-separated
file_values() { tr '\n' ' ' <"$1" 2>/dev/null; }

step_fanout() {
	step_begin fanout "mmapq-consumer-named@audit: enable --now, its own output, stopped, caught up, removed"
	local cur out pid vals want line rc u=mmapq-consumer-named@audit.service
	local aout=/var/lib/mmapq/audit.out bout=/var/lib/mmapq/fo.audit.out
	local m=1000 first=2001 last=3000 bu=mmapq-consumer-named@fo:audit.service
	systemctl start mmapq.target
	rm -f "$aout" "$bout"
	printf '\n; written by the test\n[consumer:audit]\noutput = file:%s\n' "$aout" >>"$MMAPQ_CONFIG"
	check "systemctl enable --now $u" systemctl enable --now "$u"
	check "$u is active" test "$(prop "$u" ActiveState)" = active
	check "$u is enabled: wanted by multi-user.target" \
		test "$(systemctl is-enabled "$u")" = enabled -a -L "/etc/systemd/system/multi-user.target.wants/$u"
	pid=$(prop "$u" MainPID)
	check "$u runs as mmapq" test "$(ps -o user= -p "$pid")" = mmapq
	line=$(consumer_line audit)
	info "mmapqctl consumers: $line"
	check "mmapqctl consumers: audit registered, attached, pid $pid" \
		test "$(consumer_get audit pid)/$(consumer_get audit attached)" = "$pid/true"

	# Both consumers get every record, in order.
	cur=$(cursor)
	check "mmapqctl send 1001..1020" timeout 30 "$CTL" send $(seq 1001 1020)
	jwait 20 "$cur" . _SYSTEMD_UNIT=mmapq-consumer.service MESSAGE=1020 >/dev/null ||
		fail "1020 did not reach the default consumer's journal within 20 s"
	fwait 20 "$aout" 1020 || fail "1020 did not reach $aout within 20 s"
	want="$(seq 1001 1020 | tr '\n' ' ')"
	vals=$(records "$cur" | awk '{ print $2 }' | tr '\n' ' ')
	check "the default consumer's journal: 1001..1020 in order (got '$vals')" test "$vals" = "$want"
	vals=$(file_values "$aout")
	check "audit's file $aout: 1001..1020 in order (got '$vals')" test "$vals" = "$want"

	# Stopped, it stays registered: the producer keeps its records, and
	# goes on taking records until the queue is full.
	check "systemctl stop $u" systemctl stop "$u"
	check "$u is inactive" test "$(prop "$u" ActiveState)" = inactive
	cur=$(cursor)
	seq $first $last | timeout 30 "$CTL" send >/run/fanout.send.out 2>&1
	rc=$?
	check "with audit stopped, mmapqctl send of $m records ($first..$last, a ring of $SIZE) goes through (exit $rc)" \
		test $rc = 0 || sed 's/^/      send: /' /run/fanout.send.out | tail -3
	jwait 30 "$cur" . _SYSTEMD_UNIT=mmapq-consumer.service MESSAGE=$last >/dev/null ||
		fail "$last did not reach the default consumer's journal within 30 s"
	vals=$(records "$cur" | awk -v f=$first -v l=$last '$2 != f + NR - 1 { bad++ } END { print NR, bad + 0 }')
	check "the default consumer's journal: $first..$last, all in order ('records, out of place': $vals)" \
		test "$vals" = "$m 0"
	line=$(consumer_line audit)
	info "mmapqctl consumers: $line"
	check "mmapqctl consumers: audit not attached, lag $m" \
		test "$(consumer_get audit lag)/$(consumer_get audit attached)" = "$m/false"
	out=$("$CTL" --json status | jq '.tail - .head')
	check "the queue keeps the $m records for audit (tail - oldest kept = $out)" test "$out" = "$m"
	check "the producer is still active" test "$(prop mmapq-producer.service ActiveState)" = active

	# Started again, it catches up from its own cursor.
	check "systemctl start $u" systemctl start "$u"
	fwait 60 "$aout" $last || fail "$last did not reach $aout within 60 s"
	want="$(seq 1001 1020 | tr '\n' ' ')$(seq $first $last | tr '\n' ' ')"
	vals=$(file_values "$aout")
	check "audit's file: 1001..1020 then $first..$last, in order, nothing twice" test "$vals" = "$want" ||
		info "got $(wc -l <"$aout") lines: $(head -c 200 <<<"$vals")..."
	check "mmapqctl consumers: audit's lag back to 0" lag_is audit 0 20
	info "mmapqctl consumers: $(consumer_line audit)"

	# Removal: refused while it runs, done once it is disabled and stopped.
	out=$("$CTL" consumer remove audit 2>&1)
	rc=$?
	info "mmapqctl consumer remove audit (running): $out"
	check "mmapqctl consumer remove audit while it runs: refused, exit 69 (got $rc)" test $rc = 69
	check "audit is still registered" test -n "$(consumer_line audit)"
	check "systemctl disable --now $u" systemctl disable --now "$u"
	check "$u is inactive and disabled" \
		test "$(prop "$u" ActiveState)" = inactive -a "$(systemctl is-enabled "$u")" = disabled
	out=$("$CTL" consumer remove audit 2>&1)
	rc=$?
	info "mmapqctl consumer remove audit: $out"
	check "mmapqctl consumer remove audit once stopped: exit 0 (got $rc)" test $rc = 0
	check "mmapqctl consumers no longer lists audit" test -z "$(consumer_line audit)"
	restore_config

	# The instance form QUEUE:NAME: audit of the queue instance fo (a queue
	# of its own: the instances step leaves b's, of another size).
	printf '; queue fo\n[consumer:audit]\noutput = file:%s\n' "$bout" >"$CONFDIR/fo.ini"
	check "systemctl start mmapq@fo.target $bu" systemctl start mmapq@fo.target "$bu"
	check "$bu is active" test "$(prop "$bu" ActiveState)" = active
	pid=$(prop "$bu" MainPID)
	check "mmapqctl --instance fo consumers: audit attached, pid $pid" \
		test "$(consumer_get audit pid --instance fo)/$(consumer_get audit attached --instance fo)" = "$pid/true"
	check "the single queue has no consumer audit" test -z "$(consumer_line audit)"
	cur=$(cursor)
	check "mmapqctl --instance fo send 501 502 503" timeout 30 "$CTL" --instance fo send 501 502 503
	jwait 20 "$cur" . _SYSTEMD_UNIT=mmapq-consumer@fo.service MESSAGE=503 >/dev/null ||
		fail "503 did not reach mmapq-consumer@fo within 20 s"
	fwait 20 "$bout" 503 || fail "503 did not reach $bout within 20 s"
	vals=$(records "$cur" mmapq-consumer@fo.service | awk '{ print $2 }' | tr '\n' ' ')
	check "mmapq-consumer@fo's journal: 501 502 503 (got '$vals')" test "$vals" = "501 502 503 "
	vals=$(file_values "$bout")
	check "$bu's file $bout: 501 502 503 (got '$vals')" test "$vals" = "501 502 503 "
	"$CTL" --instance fo consumer remove audit >/dev/null 2>&1
	check "mmapqctl --instance fo consumer remove audit while it runs: exit 69" test $? = 69
	check "systemctl stop $bu" systemctl stop "$bu"
	check "mmapqctl --instance fo consumer remove audit once stopped: exit 0" \
		"$CTL" --instance fo consumer remove audit
	# shellcheck disable=SC2046
	systemctl stop mmapq@fo.target $(instance_units fo)
	rm -f "$CONFDIR/fo.ini" "$aout" "$bout" /run/fanout.send.out
	step_end
}

# ---------------------------------------------------------------------------
step_policy() {
	step_begin policy "[consumer:audit] on_full = skip and inactive_timeout (queue instance sk)"
	local u=mmapq-consumer-named@sk:audit.service out=/var/lib/mmapq/sk.out
	local aout=/var/lib/mmapq/sk.audit.out n=10000 cur lost line vals t0 t1 ts frac
	rm -f "$out" "$aout"
	# a ring of 4096 int records; audit lets go of what it cannot keep
	printf '; queue sk\n[queue]\nsize = 64K\nmax_record = 1K\n[consumer]\noutput = file:%s\n[consumer:audit]\noutput = file:%s\non_full = skip\n' \
		"$out" "$aout" >"$CONFDIR/sk.ini"
	if ! check "systemctl start mmapq@sk.target $u" systemctl start mmapq@sk.target "$u"; then
		rm -f "$CONFDIR/sk.ini"
		step_end
		return
	fi
	check "$u is active" test "$(prop "$u" ActiveState)" = active
	check "mmapqctl --instance sk consumers --json: audit on_full skip" \
		test "$(consumer_get audit on_full --instance sk)" = skip
	check "systemctl stop $u" systemctl stop "$u"

	# Down, audit never holds the producer: the default consumer gets everything.
	seq 1 $n | timeout 60 "$CTL" --instance sk send >/run/policy.send.out 2>&1
	check "with audit (skip) stopped, mmapqctl send of $n records through a ring of 4096 goes through" \
		test $? = 0 || sed 's/^/      send: /' /run/policy.send.out | tail -3
	fwait 60 "$out" $n || fail "$n did not reach $out within 60 s"
	vals=$(awk '$1 != NR { bad++ } END { print NR, bad + 0 }' "$out")
	check "the default consumer of sk: 1..$n, all in order ('records, out of place': $vals)" \
		test "$vals" = "$n 0"
	lost=$(consumer_get audit skipped --instance sk)
	info "mmapqctl --instance sk consumers: $(consumer_line audit --instance sk); skipped $lost"
	check "audit lost records to skips (skipped $lost)" test "${lost:-0}" -gt 0 -a "${lost:-0}" -lt $n
	check "mmapqctl metrics: mmapq_consumer_skipped_records_total of audit is $lost" \
		bash -c "'$CTL' --instance sk metrics | grep -q 'mmapq_consumer_skipped_records_total{.*consumer=\"audit\"} $lost\$'"

	# Back, it says how many it lost, and writes the records after them.
	cur=$(cursor)
	check "systemctl start $u" systemctl start "$u"
	line=$(jwait 20 "$cur" "lost $lost records to on_full = skip since it last ran" _SYSTEMD_UNIT="$u")
	check "audit's journal: '$line'" test -n "$line"
	fwait 60 "$aout" $n || fail "$n did not reach $aout within 60 s"
	vals=$(awk -v f=$((lost + 1)) '$1 != f + NR - 1 { bad++ } END { print NR, bad + 0 }' "$aout")
	check "audit's file: $((lost + 1))..$n, all in order ('records, out of place': $vals)" \
		test "$vals" = "$((n - lost)) 0"

	# inactive_timeout: once it has been down 3 s, the producer removes it.
	printf 'inactive_timeout = 3s\n' >>"$CONFDIR/sk.ini"
	check "systemctl reload $u (stores inactive_timeout)" systemctl reload "$u"
	jwait 10 "$cur" "inactive_timeout" _SYSTEMD_UNIT="$u" >/dev/null
	cur=$(cursor)
	check "systemctl stop $u" systemctl stop "$u"
	t0=$(now_ms)
	line=$(jwait 15 "$cur" "consumer 'audit' removed" -o short-unix _SYSTEMD_UNIT=mmapq-producer@sk.service)
	check "the producer of sk says: '${line#* }'" \
		grep -q "consumer 'audit' removed: not attached for its inactive_timeout of 3 s" <<<"$line"
	# the line's time (short-unix: SECONDS.MICROSECONDS) in ms
	ts=${line%% *}
	[[ $ts =~ ^[0-9]+\.[0-9]{3} ]] || ts=0.000
	frac=${ts#*.}
	t1=$((${ts%.*} * 1000 + 10#${frac:0:3}))
	check "removed $((t1 - t0)) ms after audit stopped (3000 to 6000, a look a second)" \
		test $((t1 - t0)) -ge 2900 -a $((t1 - t0)) -le 6000
	check "mmapqctl --instance sk consumers no longer lists audit" \
		test -z "$(consumer_line audit --instance sk)"
	# shellcheck disable=SC2046
	systemctl stop mmapq@sk.target $(instance_units sk)
	rm -f "$CONFDIR/sk.ini" "$out" "$aout" /run/policy.send.out
	step_end
}

# ---------------------------------------------------------------------------
socket_off() {
	# Socket activation overrides [producer] input: take the socket away.
	# (Not `systemctl mask --runtime`: a unit file in /etc, where the
	# harness puts units installed outside the prefix, takes precedence over
	# a mask in /run.  A false condition keeps the socket from listening
	# even when the producer pulls it in, also when systemd restarts the
	# producer.)
	mkdir -p /run/systemd/system/mmapq-producer.socket.d
	printf '[Unit]\nConditionPathExists=/nonexistent/mmapq-test\n' \
		>/run/systemd/system/mmapq-producer.socket.d/50-test-off.conf
	systemctl daemon-reload
}
socket_on() {
	rm -rf /run/systemd/system/mmapq-producer.socket.d
	rm -f /run/mmapq-test.fault
	systemctl daemon-reload
}

# stop_target WHAT: systemctl stop mmapq.target, timed, and everything gone
stop_target() {
	local t0 t1 t2 ms u r
	t0=$(now_ms)
	check "systemctl stop mmapq.target ($1)" systemctl stop mmapq.target
	t1=$(now_ms)
	# `systemctl stop mmapq.target` waits for the target's own stop job only;
	# the services' stop jobs (PartOf=) run after it (a stop runs in the
	# reverse order of the start, and the target starts after its parts).
	# A stop request for a unit that is already stopping joins that job and
	# waits for it: this returns once both daemons are really gone.
	systemctl stop mmapq-producer.service mmapq-consumer.service mmapq-producer.socket
	t2=$(now_ms)
	ms=$((t2 - t0))
	info "systemctl stop mmapq.target returned after $((t1 - t0)) ms; everything stopped after $ms ms"
	check "both daemons stopped within ${ms} ms of systemctl stop mmapq.target (< 10000) ($1)" test $ms -lt 10000
	for u in mmapq-producer.service mmapq-consumer.service mmapq-producer.socket mmapq.target; do
		check "$u is inactive" test "$(prop $u ActiveState)" = inactive
	done
	for u in mmapq-producer.service mmapq-consumer.service; do
		r=$(prop $u Result)
		check "$u: Result=success (got $r; timeout = SIGKILLed)" test "$r" = success
	done
	check "no mmapq process left" test -z "$(ps -u mmapq -o pid= 2>/dev/null)"
	check "the socket file was removed" test ! -e /run/mmapq/producer.sock
}

step_enable() {
	step_begin enable "systemctl enable --now mmapq.target (as OPERATIONS.md says)"
	systemctl stop mmapq.target
	check "systemctl enable --now mmapq.target" systemctl enable --now mmapq.target
	check "systemctl is-enabled mmapq.target: enabled" test "$(systemctl is-enabled mmapq.target)" = enabled
	check "mmapq.target is wanted by multi-user.target" \
		test -L /etc/systemd/system/multi-user.target.wants/mmapq.target
	for u in mmapq-producer.socket mmapq-producer.service mmapq-consumer.service; do
		check "$u is active" test "$(prop $u ActiveState)" = active
	done
	check "systemctl disable mmapq.target" systemctl disable mmapq.target
	step_end
}

step_stop() {
	step_begin stop "systemctl stop mmapq.target stops everything within 10 s, idle and under load"
	local cur out
	systemctl start mmapq.target
	stop_target idle
	# Under load: the producer generates as fast as it can, so the queue is
	# full and the producer is waiting for room when the stop comes.
	socket_off
	set_key producer input generate
	set_key producer generate_rate 0
	cur=$(cursor)
	check "systemctl start mmapq.target (input = generate, generate_rate = 0)" systemctl start mmapq.target
	out=$(jwait 20 "$cur" '^MMAPQ_SEQ=' _SYSTEMD_UNIT=mmapq-consumer.service -o export --output-fields=MMAPQ_SEQ)
	check "records are flowing" test -n "$out"
	info "producer: $(prop mmapq-producer.service StatusText)"
	stop_target "under load"
	out=$(journalctl --no-pager --cursor="$cur" _PID=1 UNIT=mmapq-producer.service UNIT=mmapq-consumer.service -o cat |
		grep -E 'timed out|Killing|SIGKILL|Failed' | tr '\n' ';')
	[ -z "$out" ] || info "$out"
	restore_config
	socket_on
	step_end
}

# ---------------------------------------------------------------------------
# The NATS step: nats-server (the host's, from /usr) as a transient unit of
# this container on 127.0.0.1.
NATS_DIR=/run/mmapq-test-nats

# nats_start [PORT HTTP]: start it (random ports, or these) and wait for
# "Server is ready" in its journal.
nats_start() {
	local cur args=(-a 127.0.0.1 -p "${1:--1}" -m "${2:--1}" -js -sd "$NATS_DIR/store"
		--ports_file_dir "$NATS_DIR")
	cur=$(cursor)
	rm -f "$NATS_DIR"/*.ports
	systemctl reset-failed mmapq-test-nats.service 2>/dev/null
	check "nats-server ${args[*]} (systemd-run)" \
		systemd-run --quiet --unit=mmapq-test-nats --property=Type=exec "$(command -v nats-server)" "${args[@]}" &&
		jwait 20 "$cur" 'Server is ready' _SYSTEMD_UNIT=mmapq-test-nats.service >/dev/null
}

# jsz_msgs: messages in the server's streams (its monitoring endpoint).
jsz_msgs() {
	curl -sS "http://127.0.0.1:$NATS_HTTP/jsz" 2>/dev/null | sed -n 's/^ *"messages": *\([0-9]*\),*$/\1/p' | head -n 1
}

# until_stream_has N SECONDS: until the server's streams hold N messages.
until_stream_has() {
	local end=$(($(date +%s) + $2)) n
	while :; do
		n=$(jsz_msgs)
		[ "${n:-0}" -ge "$1" ] && { info "the stream holds $n messages"; return 0; }
		[ "$(date +%s)" -ge "$end" ] && { info "the stream holds ${n:-?} messages, not $1"; return 1; }
	done
}

# until_status UNIT REGEX SECONDS: until UNIT's STATUS= (refreshed once a
# second) matches REGEX; prints it.
until_status() {
	local end=$(($(date +%s) + $3)) st
	while :; do
		st=$(prop "$1" StatusText)
		grep -Eq -- "$2" <<<"$st" && { info "STATUS=$st"; return 0; }
		[ "$(date +%s)" -ge "$end" ] && { info "STATUS=$st"; return 1; }
	done
}

step_nats() {
	step_begin nats "mmapq-consumer-nats.service forwarding to a local nats-server; the server gone and back"
	local cur out ports
	if ! command -v nats-server >/dev/null; then
		info "no nats-server in the host's /usr (package nats-server): step skipped"
		step_end
		return
	fi
	rm -rf "$NATS_DIR"
	mkdir -p "$NATS_DIR"
	nats_start || { step_end; return; }
	ports=$(cat "$NATS_DIR"/*.ports)
	NATS_PORT=$(sed -n 's#.*"nats://127.0.0.1:\([0-9]*\)".*#\1#p' <<<"$ports" | head -n 1)
	NATS_HTTP=$(sed -n 's#.*"http://127.0.0.1:\([0-9]*\)".*#\1#p' <<<"$ports" | head -n 1)
	info "nats-server: clients on $NATS_PORT, monitoring on $NATS_HTTP"
	mkdir -p "$MMAPQ_CONFIG.d"
	printf '[nats]\nservers = nats://127.0.0.1:%s\nsubject = mmapq.records\nstream = MMAPQ\ncreate_stream = yes\nreconnect_max_wait = 1\n' \
		"$NATS_PORT" >"$MMAPQ_CONFIG.d/50-nats.ini"
	# the consumer named nats, beside the queue's default consumer, added to
	# the queue's target as OPERATIONS.md says
	check "systemctl add-wants mmapq.target mmapq-consumer-nats.service" \
		systemctl add-wants mmapq.target mmapq-consumer-nats.service
	cur=$(cursor)
	check "systemctl restart mmapq.target (it starts with the queue)" systemctl restart mmapq.target
	check "mmapq-consumer-nats.service is active" test "$(prop mmapq-consumer-nats.service ActiveState)" = active
	out=$(prop mmapq-consumer-nats.service RestrictAddressFamilies)
	check "it may use AF_INET and AF_INET6 ($out)" grep -q 'AF_INET6' <<<"$out"
	out=$(prop mmapq-producer.service RestrictAddressFamilies)
	check "the producer may not ($out)" test "$out" = AF_UNIX
	check "it runs as mmapq" test "$(ps -o user= -p "$(prop mmapq-consumer-nats.service MainPID)")" = mmapq
	check "mmapqctl send 1..1000" bash -c "seq 1 1000 | timeout 30 '$CTL' send >/dev/null"
	check "the stream holds the 1000 records" until_stream_has 1000 30
	out=$(jwait 10 "$cur" . _SYSTEMD_UNIT=mmapq-consumer.service MESSAGE=1000)
	check "the default consumer got them too (record 1000 in its journal)" test -n "$out"
	out=$("$CTL" consumers 2>&1)
	check "mmapqctl consumers lists nats" grep -q '^ *nats ' <<<"$out" || info "$out"
	out=$(jwait 10 "$cur" 'created stream MMAPQ' _SYSTEMD_UNIT=mmapq-consumer-nats.service)
	check "the journal says it created the stream" test -n "$out"
	check "STATUS= names the stream and what it acknowledged" \
		until_status mmapq-consumer-nats.service 'nats stream MMAPQ: acked 1000,' 10

	# the server gone: records wait in the queue, the consumer says so and stays
	cur=$(cursor)
	check "nats-server stopped" systemctl stop mmapq-test-nats.service
	out=$(jwait 20 "$cur" 'lost the connection' _SYSTEMD_UNIT=mmapq-consumer-nats.service)
	check "the journal says the connection is lost" test -n "$out"
	check "mmapqctl send 1001..1100 while it is gone" bash -c "seq 1001 1100 | timeout 30 '$CTL' send >/dev/null"
	check "STATUS= says the records wait" \
		until_status mmapq-consumer-nats.service 'disconnected.*records wait in the queue' 10
	check "still active" test "$(prop mmapq-consumer-nats.service ActiveState)" = active
	nats_start "$NATS_PORT" "$NATS_HTTP"
	check "back: the stream holds all 1100" until_stream_has 1100 60
	out=$(jwait 20 "$cur" 'forwarding to .* again' _SYSTEMD_UNIT=mmapq-consumer-nats.service)
	check "the journal says forwarding resumed" test -n "$out"
	out=$(journalctl --no-pager --cursor="$cur" _SYSTEMD_UNIT=mmapq-consumer-nats.service -o cat | grep -c 'lost the connection')
	check "the trouble logged once ($out)" test "$out" = 1
	check "nothing left in the queue" test "$("$CTL" --json status | sed -n 's/.*"depth":\([0-9]*\).*/\1/p')" = 0

	systemctl stop mmapq-consumer-nats.service mmapq-test-nats.service
	rm -f /etc/systemd/system/mmapq.target.wants/mmapq-consumer-nats.service
	systemctl daemon-reload
	# registered and stopped, it would hold the producer back
	check "mmapqctl consumer remove nats" "$CTL" consumer remove nats
	rm -rf "$MMAPQ_CONFIG.d" "$NATS_DIR"
	systemctl start mmapq.target
	step_end
}

# ---------------------------------------------------------------------------
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(setup start records reload dropin kill-consumer kill-producer watchdog geometry upgrade metrics instances metrics-instances fanout fanin policy nats enable stop)
say "mmapq under $(systemctl --version | head -n 1); config $MMAPQ_CONFIG; binaries $MMAPQ_BINDIR"
for s in "${steps[@]}"; do
	case "$s" in
		setup) step_setup ;;
		start) step_start ;;
		records) step_records ;;
		reload) step_reload ;;
		dropin) step_dropin ;;
		instances) step_instances ;;
		metrics-instances) step_metrics_instances ;;
		fanout) step_fanout ;;
		fanin) step_fanin ;;
		policy) step_policy ;;
		kill-consumer) step_kill_consumer ;;
		kill-producer) step_kill_producer ;;
		watchdog) step_watchdog ;;
		geometry) step_geometry ;;
		upgrade) step_upgrade ;;
		metrics) step_metrics ;;
		nats) step_nats ;;
		enable) step_enable ;;
		stop) step_stop ;;
		*) fail "unknown step '$s'"; step_end; continue ;;
	esac
	# a failed step may leave anything behind: start the next from scratch
	if [ "$STEP_FAILED" = 1 ] && [ "$s" != stop ]; then reset_state; fi
done

echo
say "passed: ${PASSED_STEPS[*]:-none}"
say "failed: ${FAILED_STEPS[*]:-none}"
if [ ${#FAILED_STEPS[@]} -eq 0 ]; then
	say "scenario: PASS"
	exit 0
fi
# the whole journal, for the post-mortem (without the streamed records)
journalctl --no-pager -o short-monotonic | grep -Ev '^\[ *[0-9.]+\] [^ ]+ mmapq-consumer\[[0-9]+\]: [0-9]+$' \
	>"$RESULTDIR/journal.txt" 2>&1
say "scenario: FAIL; see $RESULTDIR/summary.txt, fail-*.txt, journal.txt"
exit 1
