#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-units.sh BUILD_DIR -- the installed units as files, on the host,
# without a running systemd and without root: the single queue's
# (mmapq.target, mmapq-producer.socket, mmapq-producer.service,
# mmapq-consumer.service) and the templates of several queues (mmapq@.target,
# mmapq-producer@.socket, ...), the latter as the instance "check":
#   - `systemd-analyze verify` reports nothing (the ExecStart=/ExecReload=
#     binaries are checked in the staged install);
#   - `systemd-analyze security --offline=yes`: overall exposure of every
#     service at most 2.0 (MMAPQ_MAX_EXPOSURE), and the settings every
#     service must have are there;
#   - the templates run the instance (--instance %i, PartOf=mmapq@%i.target,
#     its own socket /run/mmapq/%i.producer.sock).
# Exit 0 pass, 1 fail, 77 skip (systemd-analyze or cmake missing).
set -u
build=${1:?usage: check-units.sh BUILD_DIR}
max_exposure=${MMAPQ_MAX_EXPOSURE:-2.0}
command -v systemd-analyze >/dev/null || { echo "check-units: SKIP: no systemd-analyze" >&2; exit 77; }
command -v cmake >/dev/null || { echo "check-units: SKIP: no cmake" >&2; exit 77; }
[ -f "$build/systemd/mmapq-test.env" ] || { echo "check-units: $build/systemd/mmapq-test.env missing" >&2; exit 1; }
# shellcheck source=/dev/null
. "$build/systemd/mmapq-test.env"

work=$(mktemp -d /tmp/mmapq-units.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT
stage=$work/stage
DESTDIR=$stage cmake --install "$build" >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log" >&2; echo "check-units: FAIL: cmake --install" >&2; exit 1; }
units=$stage$MMAPQ_UNITDIR
fail=0
pass() { echo "check-units: PASS: $*"; }
failed() { echo "check-units: FAIL: $*"; fail=1; }

# exposure UNIT_FILE NAME: systemd-analyze security's overall exposure of
# the unit at most max_exposure (the settings it counts against printed)
exposure() {
	local out level
	out=$(systemd-analyze security --offline=yes --no-pager "$1" 2>&1)
	level=$(echo "$out" | sed -n 's/^.*Overall exposure level for [^:]*: \([0-9.]*\).*$/\1/p')
	if [ -z "$level" ]; then
		failed "$2: no exposure level in systemd-analyze security output:"; echo "$out"
	elif awk -v l="$level" -v m="$max_exposure" 'BEGIN { exit !(l <= m) }'; then
		pass "$2: exposure $level <= $max_exposure"
		echo "$out" | grep '^✗' | sed 's/^/    /'
	else
		failed "$2: exposure $level > $max_exposure"; echo "$out"
	fi
}

single="mmapq-producer.service mmapq-consumer.service mmapq-producer.socket mmapq.target"
templates="mmapq-producer@.service mmapq-consumer@.service mmapq-producer@.socket mmapq@.target"
# named consumers (fan-out): the instance is NAME or QUEUE:NAME
named="mmapq-consumer-named@.service"
# the consumer named nats forwarding to NATS JetStream (--output nats), of
# the single queue and of queue instances
nats="mmapq-consumer-nats.service mmapq-consumer-nats@.service"
# the metrics endpoint: a socket with Accept=yes and its per-connection template;
# a queue instance's: a template socket (Accept=no) and the service it starts
metrics="mmapq-metrics.socket mmapq-metrics@.service"
metrics_inst="mmapq-metrics@.socket mmapq-metrics-serve@.service"
for u in $single $templates $named $metrics $metrics_inst $nats; do
	[ -f "$units/$u" ] || failed "$u was not installed into $MMAPQ_UNITDIR"
done
[ $fail = 0 ] || exit 1
# (an '@' before a '.' is a template's name: mmapq-producer@.service)
grep -q '@[a-z_]*@' "$units"/mmapq* && failed "unfilled @template@ variables: $(grep -l '@[a-z_]*@' "$units"/mmapq*)"

# verify: a copy whose commands point into the stage, so that the binaries'
# existence is checked too; each template as the instance "check", whose
# dependencies (mmapq-producer@check.socket, ...) are then there as well.
# (--man=no: the man pages are checked in the container, where the staged
# man directory is in place.)
v=$work/verify
mkdir -p "$v"
for u in $single; do cp "$units/$u" "$v/$u"; done
for u in $templates $named; do cp "$units/$u" "$v/${u/@./@check.}"; done
# Accept=yes needs the template itself beside its socket; verified as an
# instance too
for u in $metrics; do cp "$units/$u" "$v/$u"; done
cp "$units/mmapq-metrics@.service" "$v/mmapq-metrics@check.service"
for u in $metrics_inst; do cp "$units/$u" "$v/${u/@./@check.}"; done
cp "$units/mmapq-consumer-nats.service" "$v/mmapq-consumer-nats.service"
cp "$units/mmapq-consumer-nats@.service" "$v/mmapq-consumer-nats@check.service"
sed -i "s#^\(Exec[A-Za-z]*=[-@:+!]*\)$MMAPQ_BINDIR/#\1$stage$MMAPQ_BINDIR/#" "$v/"*.service
out=$(cd "$v" && systemd-analyze verify --man=no ./*.service ./*.socket ./*.target 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -z "$out" ]; then
	pass "systemd-analyze verify: clean ($(cd "$v" && echo *))"
else
	failed "systemd-analyze verify (exit $rc):"; echo "$out"
fi

for u in mmapq-producer.service mmapq-consumer.service mmapq-producer@check.service \
	mmapq-consumer@check.service mmapq-consumer-named@check.service; do
	case $u in
		*-named@check.*) target='' config='--named-instance %i' ;;
		*@check.*) target='mmapq@%i.target' config='--instance %i' ;;
		*) target='mmapq.target' config='--config [^ ]*/mmapq/mmapq.ini' ;;
	esac
	exposure "$v/$u" "$u"
	# The settings every service must have, literally.
	for want in 'Type=notify' 'User=mmapq' 'Group=mmapq' 'StateDirectory=mmapq' \
		'Restart=on-failure' 'RestartPreventExitStatus=.*\b65\b.*\b78\b' 'WatchdogSec=' \
		'SystemCallErrorNumber=EPERM' 'RestrictAddressFamilies=.*\bAF_UNIX\b' \
		"${target:+PartOf=$target}" 'ExecReload=.*--check-config' 'ExecReload=.*kill -HUP \$MAINPID' \
		"ExecStart=[^ ]* $config\$" "ExecReload=[^ ]* $config --check-config\$"; do
		grep -Eq "^$want" "$v/$u" || failed "$u: no line matching '^$want'"
	done
	grep -q '^DynamicUser=yes' "$v/$u" && failed "$u: DynamicUser= (the two services must share a static user)"
	grep -q '^RuntimeDirectory=' "$v/$u" && failed "$u: RuntimeDirectory= (deleted when either unit stops)"
done
for u in mmapq-producer.socket:/run/mmapq/producer.sock:mmapq.target \
	mmapq-producer@check.socket:/run/mmapq/%i.producer.sock:mmapq@%i.target; do
	IFS=: read -r u path target <<<"$u"
	for want in "ListenStream=$path" 'SocketMode=0660' 'SocketGroup=mmapq' "PartOf=$target"; do
		grep -qx "$want" "$v/$u" || failed "$u: no $want"
	done
done
for want in 'Wants=mmapq-producer.socket mmapq-producer.service mmapq-consumer.service' \
	'WantedBy=multi-user.target'; do
	grep -qx "$want" "$v/mmapq.target" || failed "mmapq.target: no $want"
	want=${want//.s/@%i.s}
	grep -qx "$want" "$v/mmapq@check.target" || failed "mmapq@.target: no $want"
done
# A named consumer is enabled on its own and part of no target (its
# QUEUE:NAME instance cannot name its queue's target).
grep -qx 'WantedBy=multi-user.target' "$v/mmapq-consumer-named@check.service" ||
	failed "mmapq-consumer-named@.service: no WantedBy=multi-user.target"
grep -q '^PartOf=' "$v/mmapq-consumer-named@check.service" &&
	failed "mmapq-consumer-named@.service: PartOf= (a QUEUE:NAME instance is of another queue's target)"
# The producer of the template follows its own socket.
for want in 'Wants=mmapq-producer@%i.socket' 'After=mmapq-producer@%i.socket'; do
	grep -qx "$want" "$v/mmapq-producer@check.service" || failed "mmapq-producer@.service: no $want"
done
# the metrics scrape: as hardened (its own exposure bound), read-only
exposure "$v/mmapq-metrics@check.service" mmapq-metrics@.service
for want in 'ListenStream=127.0.0.1:' 'Accept=yes' 'IPAddressDeny=any' 'MaxConnections='; do
	grep -q "^$want" "$units/mmapq-metrics.socket" || failed "mmapq-metrics.socket: no $want"
done
grep -q '^ProtectSystem=strict' "$units/mmapq-metrics@.service" && grep -q -- 'metrics --http' "$units/mmapq-metrics@.service" ||
	failed "mmapq-metrics@.service: not read-only or not 'metrics --http'"
# a queue instance's: its own service (Accept=no), as hardened, for its
# instance's queue
exposure "$v/mmapq-metrics-serve@check.service" mmapq-metrics-serve@.service
for want in 'ListenStream=/run/mmapq/%i.metrics.sock' 'Accept=no' 'Service=mmapq-metrics-serve@%i.service' \
	'IPAddressDeny=any'; do
	grep -qx "$want" "$units/mmapq-metrics@.socket" || failed "mmapq-metrics@.socket: no $want"
done
grep -q '^ProtectSystem=strict' "$units/mmapq-metrics-serve@.service" &&
	grep -qx -- "ExecStart=$MMAPQ_BINDIR/mmapqctl --instance %i metrics --http" "$units/mmapq-metrics-serve@.service" ||
	failed "mmapq-metrics-serve@.service: not read-only or not 'mmapqctl --instance %i metrics --http'"
# The NATS forwarding consumer: as hardened as the others but for the
# network (AF_INET, AF_INET6, after network-online.target), and the only
# unit with either; the consumer named nats with --output nats, part of its
# queue's target, and no [Install] section (a package must not enable it).
for u in mmapq-consumer-nats.service:mmapq.target mmapq-consumer-nats@check.service:mmapq@%i.target; do
	IFS=: read -r u target <<<"$u"
	exposure "$v/$u" "$u"
	for want in 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' 'After=network-online.target' \
		'Wants=network-online.target' "PartOf=$target" \
		'ExecStart=[^ ]*/mmapq-consumer .* --name nats --output nats$' \
		'ExecReload=[^ ]*/mmapq-consumer .* --name nats --output nats --check-config$' \
		'RestartPreventExitStatus=.*\b76\b' \
		'Type=notify' 'User=mmapq' 'WatchdogSec=' 'SystemCallFilter=@system-service' \
		'ProtectSystem=strict' 'PrivateUsers=yes' 'CapabilityBoundingSet=$'; do
		grep -Eq "^$want" "$v/$u" || failed "$u: no line matching '^$want'"
	done
	grep -q '^\[Install\]' "$v/$u" && failed "$u: an [Install] section (a package would enable it)"
done
for u in "$v"/*; do
	case $u in */mmapq-consumer-nats*) continue ;; esac
	grep -Eq '^RestrictAddressFamilies=.*AF_INET|network-online' "$u" &&
		failed "$(basename "$u"): network access (only the NATS consumer may have it)"
done
if [ $fail = 0 ]; then pass "units"; else echo "check-units: FAILED"; fi
exit $fail
