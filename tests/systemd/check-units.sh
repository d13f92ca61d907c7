#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-units.sh BUILD_DIR -- the installed units as files, on the host,
# without a running systemd and without root:
#   - `systemd-analyze verify` reports nothing (the ExecStart=/ExecReload=
#     binaries are checked in the staged install);
#   - `systemd-analyze security --offline=yes`: overall exposure of both
#     services at most 2.0 (MMAPQ_MAX_EXPOSURE), and the settings the issue
#     asks for are there.
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

for u in mmapq-producer.service mmapq-consumer.service mmapq-producer.socket mmapq.target \
	mmapq-metrics.socket mmapq-metrics@.service; do
	[ -f "$units/$u" ] || failed "$u was not installed into $MMAPQ_UNITDIR"
done
[ $fail = 0 ] || exit 1
grep -q '@[a-z_]*@' "$units"/* && failed "unfilled @template@ variables: $(grep -l '@[a-z_]*@' "$units"/*)"

# verify: a copy whose commands point into the stage, so that the binaries'
# existence is checked too.  (--man=no: the man pages are checked in the
# container, where the staged man directory is in place.)
mkdir -p "$work/verify"
cp "$units"/* "$work/verify/"
sed -i "s#^\(Exec[A-Za-z]*=[-@:+!]*\)$MMAPQ_BINDIR/#\1$stage$MMAPQ_BINDIR/#" "$work/verify/"*.service
# a template is verified as an instance of itself
cp "$work/verify/mmapq-metrics@.service" "$work/verify/mmapq-metrics@check.service"
out=$(cd "$work/verify" && systemd-analyze verify --man=no ./*.service ./*.socket ./*.target 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -z "$out" ]; then
	pass "systemd-analyze verify: clean"
else
	failed "systemd-analyze verify (exit $rc):"; echo "$out"
fi

for u in mmapq-producer.service mmapq-consumer.service; do
	out=$(systemd-analyze security --offline=yes --no-pager "$units/$u" 2>&1)
	level=$(echo "$out" | sed -n 's/^.*Overall exposure level for [^:]*: \([0-9.]*\).*$/\1/p')
	if [ -z "$level" ]; then
		failed "$u: no exposure level in systemd-analyze security output:"; echo "$out"
	elif awk -v l="$level" -v m="$max_exposure" 'BEGIN { exit !(l <= m) }'; then
		pass "$u: exposure $level <= $max_exposure"
		echo "$out" | grep '^✗' | sed 's/^/    /'
	else
		failed "$u: exposure $level > $max_exposure"; echo "$out"
	fi
	# What the issue asks for, literally.
	for want in 'Type=notify' 'User=mmapq' 'Group=mmapq' 'StateDirectory=mmapq' \
		'Restart=on-failure' 'RestartPreventExitStatus=.*\b65\b.*\b78\b' 'WatchdogSec=' \
		'SystemCallErrorNumber=EPERM' 'RestrictAddressFamilies=.*\bAF_UNIX\b' \
		'PartOf=mmapq.target' 'ExecReload=.*--check-config' 'ExecReload=.*kill -HUP \$MAINPID' \
		'--config [^ ]*/mmapq/mmapq.ini'; do
		grep -Eq "^$want" "$units/$u" || grep -Eq -- "$want" "$units/$u" ||
			failed "$u: no line matching '$want'"
	done
	grep -q '^DynamicUser=yes' "$units/$u" && failed "$u: DynamicUser= (the two services must share a static user)"
	grep -q '^RuntimeDirectory=' "$units/$u" && failed "$u: RuntimeDirectory= (deleted when either unit stops)"
done
# the metrics scrape: as hardened (its own exposure bound), read-only
cp "$units/mmapq-metrics@.service" "$work/mmapq-metrics@check.service"
out=$(systemd-analyze security --offline=yes --no-pager "$work/mmapq-metrics@check.service" 2>&1)
level=$(echo "$out" | sed -n 's/^.*Overall exposure level for [^:]*: \([0-9.]*\).*$/\1/p')
if [ -n "$level" ] && awk -v l="$level" -v m="$max_exposure" 'BEGIN { exit !(l <= m) }'; then
	pass "mmapq-metrics@.service: exposure $level <= $max_exposure"
else
	failed "mmapq-metrics@.service: exposure '$level' > $max_exposure"; echo "$out"
fi
for want in 'ListenStream=127.0.0.1:' 'Accept=yes' 'IPAddressDeny=any' 'MaxConnections='; do
	grep -q "^$want" "$units/mmapq-metrics.socket" || failed "mmapq-metrics.socket: no $want"
done
grep -q '^ProtectSystem=strict' "$units/mmapq-metrics@.service" && grep -q -- 'metrics --http' "$units/mmapq-metrics@.service" ||
	failed "mmapq-metrics@.service: not read-only or not 'metrics --http'"
for want in 'ListenStream=/run/mmapq/producer.sock' 'SocketMode=0660' 'SocketGroup=mmapq'; do
	grep -qx "$want" "$units/mmapq-producer.socket" || failed "mmapq-producer.socket: no $want"
done
if [ $fail = 0 ]; then pass "units"; else echo "check-units: FAILED"; fi
exit $fail
