#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# SPDX-License-Identifier: MIT
#
# deb-scenario.sh -- the Debian packages under a real systemd.  Runs INSIDE
# the Debian root that deb-container.sh boots (as mmapq-test.service), with
# the packages in /mmapq-test/debs and no network: apt finds every
# dependency already installed.  Steps, in this order (each needs the one
# before):
#
#   install   apt install ./mmapq_*.deb ./libmmapq2_*.deb: the postinst made
#             the user mmapq, /var/lib/mmapq (0750 mmapq:mmapq), enabled
#             mmapq.target and started it: producer socket, producer and
#             consumer running as mmapq, libmmapq found without a RUNPATH;
#             not a word of deb-systemd-invoke about static units
#   send      mmapqctl send 1 2 ... 10: journalctl -u mmapq-consumer shows
#             1..10, one record each, in order
#   dev       apt install ./libmmapq-dev_*.deb; common/queue/examples/producer.c
#             built with `pkg-config mmapq`; with mmapq-producer stopped it
#             publishes as the user mmapq, and mmapq-consumer's journal shows
#             its records; mmapq.target started again
#   fanout    the fan-out example as the operations guide the package
#             installs (/usr/share/doc/mmapq/OPERATIONS.md, from
#             systemd/OPERATIONS.md) has it, run as written: its drop-in
#             written into the shipped /etc/mmapq/mmapq.ini.d (no mkdir),
#             mmapq-consumer-named@audit enabled and started, 1 2 3 in its
#             audit.log
#   remove    with every unit of the package running, and an instance of
#             every template (mmapq@a.target and its units, the named
#             consumer audit, the NATS forwarders of both queues retrying
#             with no server, a metrics scrape of the single queue and one of
#             queue a), an edited mmapq.ini and a
#             drop-in: apt remove mmapq stops each of them (a stop job, not
#             a death of its own), no unit of mmapq active, no mmapq process
#             left and none running a deleted program; the state and the
#             configuration kept
#   purge     apt install mmapq again (the edited mmapq.ini kept, the named
#             consumer still enabled, nothing said of static units),
#             everything running again, then apt
#             purge mmapq: every unit stopped as on removal, nothing left
#             running; /var/lib/mmapq and /etc/mmapq gone, no file owned by
#             mmapq left, no enablement link of mmapq's units left (the
#             package's nor the administrator's)
#
# Exit 0 only if every step passed.
set -u
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"
export DEBIAN_FRONTEND=noninteractive
DEBS=$here/debs
: >"$SUMMARY"
# where the example producer is built: a directory the user mmapq may
# execute from (the overlay's /usr/local, gone with the container)
EXAMPLE=/usr/local/bin/example-producer

# apt_run LOG ARGS...: apt with ARGS, its output in RESULTDIR/LOG (and here
# when it fails).
apt_run() {
	local log=$RESULTDIR/$1
	shift
	if apt "$@" >"$log" 2>&1; then
		return 0
	fi
	tail -n 30 "$log" | sed 's/^/    | /'
	return 1
}

# no_static_noise LOG: the postinst asked deb-systemd-invoke to start only
# units it starts (enabled ones), so that it said nothing of the static
# ones (lines "UNIT is a disabled or a static unit[ not running], not
# starting it.")
no_static_noise() {
	local out
	out=$(grep 'is a disabled or a static unit' "$RESULTDIR/$1" | tr '\n' ' ')
	check "the postinst starts only units it can start: no 'is a disabled or a static unit' in $1${out:+: $out}" \
		test -z "$out"
}

# mmapq_procs: "PID COMM" of every process of mmapq's programs or run as
# mmapq
mmapq_procs() {
	local uid p comm
	uid=$(id -u mmapq 2>/dev/null || echo none)
	for p in /proc/[0-9]*; do
		comm=$(cat "$p/comm" 2>/dev/null) || continue
		if [[ "$comm" == mmapq* ]] ||
			[ "$(awk '/^Uid:/ { print $2 }' "$p/status" 2>/dev/null)" = "$uid" ]; then
			echo "${p#/proc/} $comm"
		fi
	done
}

# deleted_exes: "PID PROGRAM" of every process that runs a program whose
# file is gone (removed or replaced by dpkg)
deleted_exes() {
	local p exe
	for p in /proc/[0-9]*; do
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		if [[ "$exe" == *" (deleted)" ]]; then
			echo "${p#/proc/} $exe"
		fi
	done
}

# shipped_units: the unit files the installed package mmapq has, one a line
shipped_units() { dpkg-query -L mmapq | sed -n 's#^.*/systemd/system/\([^/][^/]*\)$#\1#p' | sort; }

# not_running: those of the shipped units of which nothing is active: the
# unit, or for a template NAME@.TYPE any instance NAME@*.TYPE
not_running() {
	local u
	for u in $(shipped_units); do
		case $u in
			*@.*) [ -n "$(systemctl list-units --no-legend --plain --state=active "${u/@./@*.}")" ] ;;
			*) systemctl --quiet is-active "$u" ;;
		esac || echo "$u"
	done
}

# running_services: the services of mmapq with processes (not the test's)
running_services() {
	systemctl list-units --no-legend --plain --type=service --state=running 'mmapq*' |
		awk '$1 !~ /^mmapq-test\./ { print $1 }'
}

# METRICS_FDS: connections to the metrics sockets that send nothing, so
# that the services they start run, waiting for the request (for up to
# 5 s: the removal must come before that).
METRICS_FDS=()

# idle_connection PORT SOCKET: a connection to SOCKET (the unit) on
# 127.0.0.1:PORT that sends nothing, kept in METRICS_FDS
idle_connection() {
	local fd
	if exec {fd}<>"/dev/tcp/127.0.0.1/$1"; then
		METRICS_FDS+=("$fd")
		pass "a connection to $2 (127.0.0.1:$1) that sends nothing"
	else
		fail "no connection to $2 (127.0.0.1:$1)"
	fi
}

# start_every_unit: every unit of the package running, and an instance of
# each template, for a removal to stop: the single queue's units (the
# postinst started them), mmapq@a.target and its units, the named consumer
# audit (the fanout step configured it), the consumer named nats of both
# queues (no NATS server here: alive, trying to connect), and last, as they
# end by themselves after 5 s, a scrape of the metrics socket and one of
# queue a's (mmapq-metrics@a.socket, its port from a runtime drop-in).  Fails the step
# if a unit file of the package has nothing running, so that a unit added
# to the package is added here too.
start_every_unit() {
	local cur u out nats="mmapq-consumer-nats.service mmapq-consumer-nats@a.service"
	local units="mmapq@a.target mmapq-producer@a.socket mmapq-producer@a.service mmapq-consumer@a.service"
	units="$units mmapq-consumer-named@audit.service $nats"
	cur=$(cursor)
	# Type=notify: systemctl start returns once each service said READY=1.
	# shellcheck disable=SC2086 # one unit a word
	check "systemctl start $units" systemctl start $units || return 1
	for u in $units; do
		check "$u: $(prop "$u" ActiveState)" test "$(prop "$u" ActiveState)" = active
	done
	for u in $nats; do
		check "$u keeps trying with no NATS server" \
			jseen 20 "$cur" 'no server of \[nats\] servers = .* answers yet' "_SYSTEMD_UNIT=$u"
	done
	cur=$(cursor)
	idle_connection 9741 mmapq-metrics.socket
	check "its mmapq-metrics@ instance started" \
		jseen 20 "$cur" 'mmapq metrics for one scrape' _PID=1 "MESSAGE_ID=$MSGID_STARTED"
	mkdir -p /run/systemd/system/mmapq-metrics@a.socket.d
	printf '[Socket]\nListenStream=127.0.0.1:9742\n' >/run/systemd/system/mmapq-metrics@a.socket.d/port.conf
	systemctl daemon-reload
	check "systemctl start mmapq-metrics@a.socket" systemctl start mmapq-metrics@a.socket
	cur=$(cursor)
	idle_connection 9742 mmapq-metrics@a.socket
	check "mmapq-metrics-serve@a started" \
		jseen 20 "$cur" . _PID=1 UNIT=mmapq-metrics-serve@a.service "MESSAGE_ID=$MSGID_STARTED"
	out=$(not_running | tr '\n' ' ')
	check "every unit file of the package has its unit or an instance running ($(shipped_units | wc -l) files)" \
		test -z "$out" || info "nothing running of: $out(start_every_unit must start one)"
}

# stopped_by_systemd CURSOR UNIT: UNIT is inactive, and systemd began to
# stop it after CURSOR (its "Stopping UNIT...": a stop job, not an exit of
# its own)
stopped_by_systemd() {
	[ "$(prop "$2" ActiveState)" = inactive ] &&
		jseen 10 "$1" . _PID=1 "UNIT=$2" "MESSAGE_ID=$MSGID_STOPPING"
}

# check_all_stopped CURSOR SERVICE...: after CURSOR systemd stopped each
# SERVICE, no unit of mmapq is left active, and no process of mmapq nor one
# running a deleted program is left.
check_all_stopped() {
	local cur=$1 u out fd
	shift
	for u in "$@"; do
		check "$u: stopped by systemd (inactive, 'Stopping' logged)" stopped_by_systemd "$cur" "$u" ||
			info "$u: $(prop "$u" ActiveState)"
	done
	out=$(systemctl list-units --no-legend --plain --all --type=service,socket,target 'mmapq*' |
		awk '$1 !~ /^mmapq-test\./ && $3 != "inactive" { printf "%s (%s) ", $1, $3 }')
	check "no unit of mmapq is active, activating or failed" test -z "$out" || info "$out"
	out=$(mmapq_procs)
	check "no mmapq process left (nothing named mmapq*, nothing running as mmapq)" test -z "$out" ||
		info "left: $out"
	out=$(deleted_exes)
	check "no process runs a deleted program" test -z "$out" || info "$out"
	for fd in "${METRICS_FDS[@]}"; do
		exec {fd}>&-
	done
	METRICS_FDS=()
}

# uid_of PID: the real uid of a process
uid_of() { awk '/^Uid:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# jseen: jwait (lib.sh) without printing the line, for check
jseen() { jwait "$@" >/dev/null; }

# values_since CURSOR: the consumer's records logged after CURSOR, the
# values only, on one line
values_since() { records "$1" | awk '{ printf "%s%s", sep, $2; sep = " " }'; }

step_install() {
	step_begin install "apt install ./mmapq_*.deb ./libmmapq2_*.deb (offline)"
	local cur u pid want out st
	cur=$(cursor)
	(cd "$DEBS" && apt_run apt-install.log install -y ./mmapq_*.deb ./libmmapq2_*.deb)
	check "apt install ./mmapq_*.deb ./libmmapq2_*.deb" test $? = 0 || { step_end; return; }
	no_static_noise apt-install.log
	check "the postinst made the user and group mmapq (systemd-sysusers)" getent passwd mmapq >/dev/null
	info "$(getent passwd mmapq)"
	out=$(stat -c '%a %U %G' /var/lib/mmapq 2>&1)
	check "/var/lib/mmapq is 0750 mmapq:mmapq (systemd-tmpfiles, after the user): $out" \
		test "$out" = "750 mmapq mmapq"
	out=$(systemctl is-enabled mmapq.target 2>&1)
	check "mmapq.target is enabled, multi-user.target wants it: $out" \
		test "$out" = enabled -a -L /etc/systemd/system/multi-user.target.wants/mmapq.target
	out=$(systemctl is-enabled mmapq@.target mmapq-producer.service mmapq-consumer.service 2>&1 | tr '\n' ' ')
	check "the template and the services are not enabled themselves: $out" \
		test "$out" = "disabled static static "
	out="$(systemctl is-enabled mmapq-metrics.socket)/$(systemctl is-active mmapq-metrics.socket)"
	check "mmapq-metrics.socket is enabled and listening: $out" test "$out" = enabled/active
	# The postinst starts mmapq.target; its start job completes before the
	# services it wants are ready (no After=), so wait for systemd's
	# "Started" entry of each (Type=notify: READY=1).
	for u in mmapq-producer.service mmapq-consumer.service; do
		check "$u started by the postinst" wait_started "$u" "$cur" 30 || continue
		pid=$(prop "$u" MainPID)
		st=$(prop "$u" ActiveState)
		want=$(id -u mmapq)
		out=$(uid_of "$pid")
		check "$u is $st, its pid $pid runs as uid $out (mmapq: $want)" \
			test "$st" = active -a "$out" = "$want"
	done
	out=$(systemctl is-active mmapq.target mmapq-producer.socket | tr '\n' ' ')
	check "mmapq.target and mmapq-producer.socket are active: $out" test "$out" = "active active "
	out=$(ldd /usr/bin/mmapq-consumer | grep libmmapq)
	check "mmapq-consumer finds libmmapq in the system's library directory: $out" \
		grep -q -E '=> /(usr/)?lib/[^ ]*-linux-gnu/libmmapq\.so\.2 ' <<<"$out"
	out=$(dpkg-query -S "$MMAPQ_CONFIG.d" 2>&1)
	check "$MMAPQ_CONFIG.d is a directory of the package: $out" \
		test -d "$MMAPQ_CONFIG.d" -a "$out" = "mmapq: $MMAPQ_CONFIG.d"
	out=$(dpkg-query -W -f='${Conffiles}' mmapq)
	check "/etc/mmapq/mmapq.ini is a conffile" grep -q '^ /etc/mmapq/mmapq.ini ' <<<"$out" ||
		info "conffiles: $out"
	step_end
}

step_send() {
	step_begin send "mmapqctl send 1..10 reaches journalctl -u mmapq-consumer"
	local cur got
	cur=$(cursor)
	check "mmapqctl send 1 2 3 4 5 6 7 8 9 10" timeout 30 mmapqctl send 1 2 3 4 5 6 7 8 9 10
	check "the consumer logged the last record (10)" \
		jseen 20 "$cur" '^10$' _SYSTEMD_UNIT=mmapq-consumer.service MESSAGE=10
	got=$(values_since "$cur")
	check "the consumer's journal since the send holds exactly 1..10: '$got'" \
		test "$got" = "$(seq -s ' ' 1 10)"
	records "$cur" >"$RESULTDIR/send-records.txt"
	# shellcheck disable=SC2016 # awk's
	check "one entry per record, sequence numbers in order ($(wc -l <"$RESULTDIR/send-records.txt") entries)" \
		awk 'NR > 1 && $1 != prev + 1 { exit 1 } { prev = $1 } END { exit NR != 10 }' "$RESULTDIR/send-records.txt"
	# What an administrator types, as the README says: the consumer has
	# logged no other record since the boot
	got=$(journalctl --no-pager -u mmapq-consumer -o cat | grep -x -E '[0-9]+' | paste -sd ' ' -)
	check "journalctl -u mmapq-consumer -o cat shows the records: '$got'" test "$got" = "$(seq -s ' ' 1 10)"
	step_end
}

step_dev() {
	step_begin dev "libmmapq-dev: the example producer built with pkg-config, its records in the journal"
	local cur flags got v
	(cd "$DEBS" && apt_run apt-install-dev.log install -y ./libmmapq-dev_*.deb)
	check "apt install ./libmmapq-dev_*.deb" test $? = 0 || { step_end; return; }
	v=$(pkg-config --modversion mmapq)
	check "pkg-config --modversion mmapq: $v" test -n "$v"
	flags=$(pkg-config --cflags --libs mmapq)
	info "pkg-config --cflags --libs mmapq: $flags"
	# shellcheck disable=SC2086 # the flags are words
	check "cc producer.c \$(pkg-config --cflags --libs mmapq) (-Wall -Wextra -Werror)" \
		cc -std=c11 -Wall -Wextra -Werror "$here/producer.c" $flags -o "$EXAMPLE" || { step_end; return; }
	# A queue has one producer at a time: the daemon makes way.
	check "systemctl stop mmapq-producer.socket mmapq-producer.service" \
		systemctl stop mmapq-producer.socket mmapq-producer.service
	cur=$(cursor)
	check "the example producer publishes 101 102 103 as mmapq" \
		runuser -u mmapq -- "$EXAMPLE" /var/lib/mmapq/queue 101 102 103
	check "the consumer logged the example's last record (103)" \
		jseen 20 "$cur" '^103$' _SYSTEMD_UNIT=mmapq-consumer.service MESSAGE=103
	got=$(values_since "$cur")
	check "the consumer's journal since then holds exactly 101 102 103: '$got'" test "$got" = "101 102 103"
	cur=$(cursor)
	check "systemctl start mmapq.target" systemctl start mmapq.target
	check "mmapq-producer.service started again" wait_started mmapq-producer.service "$cur" 30
	step_end
}

step_fanout() {
	step_begin fanout "the operations guide's fan-out example as written: a drop-in in the shipped mmapq.ini.d, mmapq-consumer-named@audit"
	local cur script out got doc f log=/var/lib/mmapq/audit.log
	# From the operations guide the package installs (dh_compress gzips
	# it), the lines an administrator types up to `mmapqctl consumers` (the
	# rest disables the consumer again).
	doc=
	for f in /usr/share/doc/mmapq/OPERATIONS.md.gz /usr/share/doc/mmapq/OPERATIONS.md; do
		[ -f "$f" ] && { doc=$f; break; }
	done
	check "the package installs the operations guide: ${doc:-no /usr/share/doc/mmapq/OPERATIONS.md*}" \
		test -n "$doc" || { step_end; return; }
	script=$(zcat -f "$doc" | awk '
		/^cat >\/etc\/mmapq\/mmapq\.ini\.d\/50-audit\.ini / && !done { on = 1 }
		on { print }
		on && /^mmapqctl consumers/ { on = 0; done = 1 }')
	printf '%s\n' "$script" >"$RESULTDIR/readme-fanout.sh"
	check "the guide's example (readme-fanout.sh): $(wc -l <<<"$script") lines, the drop-in written into $MMAPQ_CONFIG.d, no mkdir" \
		grep -q -x 'systemctl enable --now mmapq-consumer-named@audit' <<<"$script" ||
		{ step_end; return; }
	grep -q mkdir <<<"$script" && fail "the guide's example makes a directory"
	cur=$(cursor)
	bash -e -x "$RESULTDIR/readme-fanout.sh" >"$RESULTDIR/readme-fanout.log" 2>&1
	check "it runs (bash -e; readme-fanout.log)" test $? = 0 ||
		{ sed 's/^/    | /' "$RESULTDIR/readme-fanout.log"; step_end; return; }
	check "$MMAPQ_CONFIG.d/50-audit.ini written" test -f "$MMAPQ_CONFIG.d/50-audit.ini"
	out=$(systemctl is-enabled mmapq-consumer-named@audit.service)/$(prop mmapq-consumer-named@audit.service ActiveState)
	check "mmapq-consumer-named@audit is enabled and active: $out" test "$out" = enabled/active
	check "the consumer audit wrote the last record (3) to $log" fwait 20 "$log" 3
	got=$(paste -sd ' ' "$log")
	check "$log holds exactly 1 2 3: '$got'" test "$got" = "1 2 3"
	check "the default consumer logged it too" \
		jseen 20 "$cur" '^3$' _SYSTEMD_UNIT=mmapq-consumer.service MESSAGE=3
	out=$(mmapqctl consumers 2>&1)
	check "mmapqctl consumers lists audit" grep -q '^ *audit ' <<<"$out" || info "$out"
	step_end
}

step_remove() {
	step_begin remove "apt remove mmapq stops every unit and every instance, keeps state and configuration"
	local cur out running
	echo "; edited by the administrator" >>"$MMAPQ_CONFIG"
	cp "$MMAPQ_CONFIG" /run/edited.ini
	printf '[log]\nlevel = info\n' >"$MMAPQ_CONFIG.d/50-local.ini"
	start_every_unit || { step_end; return; }
	running=$(running_services)
	info "running before: ${running//$'\n'/ }"
	cur=$(cursor)
	apt_run apt-remove.log remove -y mmapq
	check "apt remove -y mmapq" test $? = 0 || { step_end; return; }
	# shellcheck disable=SC2086 # one unit a word
	check_all_stopped "$cur" $running
	check "the programs are gone" test ! -e /usr/bin/mmapq-producer -a ! -e /usr/bin/mmapqctl ||
		info "left: $(ls /usr/bin/mmapq*)"
	out=$(dpkg-query -W -f='${db:Status-Abbrev}' mmapq)
	check "dpkg: mmapq removed, its configuration kept: '$out' (rc)" test "$out" = "rc "
	check "the queue files stay in /var/lib/mmapq: $(find /var/lib/mmapq -mindepth 1 -printf '%f ')" \
		test -f /var/lib/mmapq/queue -a -f /var/lib/mmapq/a.queue -a -f /var/lib/mmapq/audit.log
	check "the edited $MMAPQ_CONFIG stays as edited" cmp -s "$MMAPQ_CONFIG" /run/edited.ini
	check "its drop-ins stay" test -f "$MMAPQ_CONFIG.d/50-local.ini" -a -f "$MMAPQ_CONFIG.d/50-audit.ini"
	step_end
}

step_purge() {
	step_begin purge "apt install mmapq again, everything running, apt purge: all stopped, state and configuration gone"
	local cur uid out running u
	cur=$(cursor)
	(cd "$DEBS" && apt_run apt-reinstall.log install -y ./mmapq_*.deb)
	check "apt install ./mmapq_*.deb (again)" test $? = 0 || { step_end; return; }
	no_static_noise apt-reinstall.log
	check "the edited $MMAPQ_CONFIG is kept" cmp -s "$MMAPQ_CONFIG" /run/edited.ini
	for u in mmapq-producer.service mmapq-consumer.service; do
		check "$u started by the postinst" wait_started "$u" "$cur" 30
	done
	check "mmapq-consumer-named@audit is still enabled" \
		systemctl --quiet is-enabled mmapq-consumer-named@audit.service
	start_every_unit || { step_end; return; }
	running=$(running_services)
	info "running before: ${running//$'\n'/ }"
	uid=$(id -u mmapq)
	cur=$(cursor)
	apt_run apt-purge.log purge -y mmapq
	check "apt purge -y mmapq" test $? = 0 || { step_end; return; }
	# shellcheck disable=SC2086 # one unit a word
	check_all_stopped "$cur" $running
	check "/var/lib/mmapq is gone" test ! -e /var/lib/mmapq || info "left: $(ls -la /var/lib/mmapq)"
	check "/etc/mmapq is gone (conffile, edits, drop-ins)" test ! -e /etc/mmapq ||
		info "left: $(find /etc/mmapq)"
	out=$(find / /run /tmp -xdev -uid "$uid" 2>/dev/null | head)
	check "no file owned by mmapq (uid $uid) is left" test -z "$out" || info "left: $out"
	# the package's (mmapq.target, mmapq-metrics.socket) and the
	# administrator's (mmapq-consumer-named@audit, enabled by the
	# operations guide's example)
	out=$(find /etc/systemd/system -name 'mmapq*' ! -name 'mmapq-test.*' 2>/dev/null)
	check "no enablement link of mmapq units is left" test -z "$out" || info "left: $out"
	out=$(dpkg-query -W -f='${db:Status-Abbrev}' mmapq 2>/dev/null)
	check "dpkg: mmapq neither installed nor configured ('$out')" test "${out:0:1}" != i -a "${out:0:1}" != r
	# Debian keeps system users on purge (files they own may be elsewhere,
	# on another file system or in a backup): so does this package.
	info "the account stays, as Debian's system users do: $(getent passwd mmapq)"
	step_end
}

for s in install send dev fanout remove purge; do
	"step_$s"
	# each step builds on the one before
	[ "$STEP_FAILED" = 0 ] || break
done
echo
say "passed: ${PASSED_STEPS[*]:-none}; failed: ${FAILED_STEPS[*]:-none}"
[ ${#FAILED_STEPS[@]} = 0 ] && [ ${#PASSED_STEPS[@]} = 6 ]
