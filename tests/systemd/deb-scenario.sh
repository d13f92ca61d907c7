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
#   install   apt install ./mmapq_*.deb ./libmmapq1_*.deb: the postinst made
#             the user mmapq, /var/lib/mmapq (0750 mmapq:mmapq), enabled
#             mmapq.target and started it: producer socket, producer and
#             consumer running as mmapq, libmmapq found without a RUNPATH
#   send      mmapqctl send 1 2 ... 10: journalctl -u mmapq-consumer shows
#             1..10, one record each, in order
#   dev       apt install ./libmmapq-dev_*.deb; common/queue/examples/producer.c
#             built with `pkg-config mmapq`; with mmapq-producer stopped it
#             publishes as the user mmapq, and mmapq-consumer's journal shows
#             its records; mmapq.target started again
#   remove    with an instance mmapq@a.target running, an edited mmapq.ini
#             and a drop-in: apt remove mmapq stops every unit (inactive, no
#             mmapq process left) and keeps the state and the configuration
#   purge     apt purge mmapq: /var/lib/mmapq and /etc/mmapq gone, no file
#             owned by mmapq left, the units' enablement links gone
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
SINGLE_UNITS="mmapq.target mmapq-producer.socket mmapq-producer.service mmapq-consumer.service"

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

# mmapq_procs: "PID COMM" of every process of the daemons or run as mmapq
mmapq_procs() {
	local uid p comm
	uid=$(id -u mmapq 2>/dev/null || echo none)
	for p in /proc/[0-9]*; do
		comm=$(cat "$p/comm" 2>/dev/null) || continue
		if [[ "$comm" == mmapq-* ]] ||
			[ "$(awk '/^Uid:/ { print $2 }' "$p/status" 2>/dev/null)" = "$uid" ]; then
			echo "${p#/proc/} $comm"
		fi
	done
}

# uid_of PID: the real uid of a process
uid_of() { awk '/^Uid:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# jseen: jwait (lib.sh) without printing the line, for check
jseen() { jwait "$@" >/dev/null; }

# values_since CURSOR: the consumer's records logged after CURSOR, the
# values only, on one line
values_since() { records "$1" | awk '{ printf "%s%s", sep, $2; sep = " " }'; }

step_install() {
	step_begin install "apt install ./mmapq_*.deb ./libmmapq1_*.deb (offline)"
	local cur u pid want out st
	cur=$(cursor)
	(cd "$DEBS" && apt_run apt-install.log install -y ./mmapq_*.deb ./libmmapq1_*.deb)
	check "apt install ./mmapq_*.deb ./libmmapq1_*.deb" test $? = 0 || { step_end; return; }
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
		grep -q -E '=> /(usr/)?lib/[^ ]*-linux-gnu/libmmapq\.so\.1 ' <<<"$out"
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

step_remove() {
	step_begin remove "apt remove mmapq stops every unit, keeps state and configuration"
	local cur u st out
	cur=$(cursor)
	# An instance of the templates, which dh_installsystemd does not know:
	# the prerm stops it too.
	check "systemctl start mmapq@a.target" systemctl start mmapq@a.target
	check "mmapq-consumer@a.service started" wait_started mmapq-consumer@a.service "$cur" 30
	check "mmapq-producer@a.service started" wait_started mmapq-producer@a.service "$cur" 30
	echo "; edited by the administrator" >>"$MMAPQ_CONFIG"
	cp "$MMAPQ_CONFIG" /run/edited.ini
	mkdir -p "$MMAPQ_CONFIG.d"
	printf '[log]\nlevel = info\n' >"$MMAPQ_CONFIG.d/50-local.ini"
	info "running before: $(mmapq_procs | tr '\n' ' ')"
	apt_run apt-remove.log remove -y mmapq
	check "apt remove -y mmapq" test $? = 0 || { step_end; return; }
	for u in $SINGLE_UNITS mmapq-metrics.socket mmapq@a.target mmapq-producer@a.socket \
		mmapq-producer@a.service mmapq-consumer@a.service; do
		st=$(systemctl show -P ActiveState "$u")
		check "$u: $st" test "$st" = inactive
	done
	out=$(mmapq_procs)
	check "no mmapq process left (nothing named mmapq-*, nothing running as mmapq)" test -z "$out" ||
		info "left: $out"
	check "the programs are gone" test ! -e /usr/bin/mmapq-producer -a ! -e /usr/bin/mmapqctl ||
		info "left: $(ls /usr/bin/mmapq*)"
	out=$(dpkg-query -W -f='${db:Status-Abbrev}' mmapq)
	check "dpkg: mmapq removed, its configuration kept: '$out' (rc)" test "$out" = "rc "
	check "the queue files stay in /var/lib/mmapq: $(find /var/lib/mmapq -mindepth 1 -printf '%f ')" \
		test -f /var/lib/mmapq/queue -a -f /var/lib/mmapq/a.queue
	check "the edited $MMAPQ_CONFIG stays as edited" cmp -s "$MMAPQ_CONFIG" /run/edited.ini
	check "its drop-in stays" test -f "$MMAPQ_CONFIG.d/50-local.ini"
	step_end
}

step_purge() {
	step_begin purge "apt purge mmapq removes the state and the configuration"
	local uid out
	uid=$(id -u mmapq)
	apt_run apt-purge.log purge -y mmapq
	check "apt purge -y mmapq" test $? = 0 || { step_end; return; }
	check "/var/lib/mmapq is gone" test ! -e /var/lib/mmapq || info "left: $(ls -la /var/lib/mmapq)"
	check "/etc/mmapq is gone (conffile, edits, drop-in)" test ! -e /etc/mmapq ||
		info "left: $(find /etc/mmapq)"
	out=$(find / /run /tmp -xdev -uid "$uid" 2>/dev/null | head)
	check "no file owned by mmapq (uid $uid) is left" test -z "$out" || info "left: $out"
	out=$(find /etc/systemd/system -name 'mmapq*' ! -name 'mmapq-test.*' 2>/dev/null)
	check "no enablement link of mmapq units is left" test -z "$out" || info "left: $out"
	out=$(dpkg-query -W -f='${db:Status-Abbrev}' mmapq 2>/dev/null)
	check "dpkg: mmapq neither installed nor configured ('$out')" test "${out:0:1}" != i -a "${out:0:1}" != r
	# Debian keeps system users on purge (files they own may be elsewhere,
	# on another file system or in a backup): so does this package.
	info "the account stays, as Debian's system users do: $(getent passwd mmapq)"
	step_end
}

for s in install send dev remove purge; do
	"step_$s"
	# each step builds on the one before
	[ "$STEP_FAILED" = 0 ] || break
done
echo
say "passed: ${PASSED_STEPS[*]:-none}; failed: ${FAILED_STEPS[*]:-none}"
[ ${#FAILED_STEPS[@]} = 0 ] && [ ${#PASSED_STEPS[@]} = 5 ]
