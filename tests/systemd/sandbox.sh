# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# sandbox.sh -- sourced (not run) by the harnesses that boot a test
# container from the HOST: run-in-container.sh (a staged `cmake --install`
# on the host's /usr) and deb-container.sh (the .deb packages in a Debian
# root of their own).  What they share, so that both run systemd the one
# safe way:
#
#   sandbox_start          the EXIT, INT and TERM traps, then a fresh child of
#                          our own cgroup in EVERY hierarchy (cgroup v1
#                          controllers, name=systemd, cgroup2), made before
#                          nspawn starts, so that the container's systemd can
#                          only ever see and change that subtree.  At exit
#                          (sandbox_exit) they are removed, the machine's own
#                          processes are checked never to have moved, and the
#                          work directory goes (unless SANDBOX_KEEP=1)
#   sandbox_mkwork TEMPLATE
#                          that work directory (mktemp -d TEMPLATE), in
#                          SANDBOX_WORK
#   sandbox_test_units DIR SCENARIO [ARG...]
#                          mmapq-test.target and mmapq-test.service in DIR
#                          (the container's /etc/systemd/system): a oneshot
#                          running /mmapq-test/SCENARIO, whose exit ends the
#                          container with its status
#   sandbox_boot ROOT NSPAWN_OPTION...
#                          (after sandbox_start) `timeout ... systemd-nspawn --console=pipe ... -b
#                          --unit=mmapq-test.target` from inside the cgroups;
#                          prints nspawn's messages and what the scenario
#                          printed; returns the scenario's exit status
#
# The caller sets SANDBOX_LIMIT (seconds for the whole boot),
# SANDBOX_RESULTDIR (the container's /results) and SANDBOX_TAG (the name in
# messages), and defines die MESSAGE and skip MESSAGE (exit 77).  Everything
# the test puts into the container is bound by the caller with nspawn
# options: the scenario's directory at /mmapq-test (holding mmapq-test.env,
# the EnvironmentFile of the test service), the unit directory at
# /etc/systemd/system.
#
# NEVER start systemd, `systemd --user` or systemd-journald on the host
# itself: a service manager outside its own PID namespace moves the
# machine's processes into cgroups of its own.  Only the container does.

: "${SANDBOX_LIMIT:?}" "${SANDBOX_RESULTDIR:?}" "${SANDBOX_TAG:?}"

sandbox_cg_root=/sys/fs/cgroup
sandbox_cg_name="mmapq-nspawn-$$-$RANDOM"
sandbox_cg_dirs=()
SANDBOX_WORK=""
# Read once, before anything moves: what must be the same afterwards.
sandbox_init_before=$(cat /proc/1/cgroup)
sandbox_self_before=$(cat /proc/self/cgroup)

sandbox_cgroups() {
	local line ctl path mnt d cg_lines
	mapfile -t cg_lines <<<"$sandbox_self_before"
	for line in "${cg_lines[@]}"; do
		IFS=: read -r _ ctl path <<<"$line"
		case "$ctl" in
			"")
				if [ -d "$sandbox_cg_root/unified" ]; then mnt=$sandbox_cg_root/unified; else mnt=$sandbox_cg_root; fi ;;
			name=systemd) mnt=$sandbox_cg_root/systemd ;;
			name=*) continue ;;
			*) mnt=$sandbox_cg_root/${ctl%%,*} ;;
		esac
		[ -d "$mnt" ] || continue
		d="$mnt${path%/}/$sandbox_cg_name"
		mkdir "$d" 2>/dev/null || skip "cgroups are not writable (cannot create $d)"
		sandbox_cg_dirs+=("$d")
		# A cpuset child starts with no CPUs and no memory nodes: nothing
		# could run in it until they are copied from the parent.
		if [ -e "$d/cpuset.cpus" ]; then
			cat "$mnt${path%/}/cpuset.cpus" >"$d/cpuset.cpus" || skip "cannot set up cpuset cgroup $d"
			cat "$mnt${path%/}/cpuset.mems" >"$d/cpuset.mems" || skip "cannot set up cpuset cgroup $d"
		fi
	done
	[ ${#sandbox_cg_dirs[@]} -gt 0 ] || skip "no cgroup hierarchy found"
}

# Removes the cgroups bottom-up (nspawn leaves payload/, payload/init.scope
# and supervisor/ inside), then checks the machine.  Returns 1 if PID 1 or
# this shell changed cgroups.
# shellcheck disable=SC2317 # called from the caller's EXIT trap
sandbox_cleanup() {
	local i d ok rc=0
	for ((i = ${#sandbox_cg_dirs[@]} - 1; i >= 0; i--)); do
		d=${sandbox_cg_dirs[$i]}
		[ -d "$d" ] || continue
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
		[ -d "$d" ] || continue
		# Something is still inside.  This does not happen when nspawn exits
		# by itself (the container's PID namespace is gone by then); it can
		# after `timeout` had to SIGKILL nspawn.  Everything in this subtree
		# is ours: kill it.  The kernel then reaps it asynchronously, and
		# there is no event a shell can wait on for that (the processes are
		# not our children), so this one path retries rmdir under a 10 s
		# deadline, 0.2 s apart.
		ok=0
		find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do
			kill -KILL "$pid" 2>/dev/null
		done
		# shellcheck disable=SC2016 # $1 is the inner shell's
		if timeout 10 bash -c '
			d=$1
			until find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; [ ! -d "$d" ]; do
				read -r -t 0.2 <> <(:) || :
			done' _ "$d"; then
			ok=1
		fi
		[ "$ok" = 1 ] || echo "$SANDBOX_TAG: WARNING: could not remove cgroup $d" >&2
	done
	# The machine's own processes must never have moved.
	if [ "$(cat /proc/1/cgroup)" != "$sandbox_init_before" ]; then
		echo "$SANDBOX_TAG: FAIL: PID 1 of the machine changed cgroups:" >&2
		echo "before:" >&2; echo "$sandbox_init_before" >&2
		echo "after:" >&2; cat /proc/1/cgroup >&2
		rc=1
	fi
	if [ "$(cat /proc/$$/cgroup)" != "$sandbox_self_before" ]; then
		echo "$SANDBOX_TAG: FAIL: this script's cgroups changed" >&2
		rc=1
	fi
	return $rc
}

# shellcheck disable=SC2317 # the EXIT trap
sandbox_exit() {
	local rc=$?
	sandbox_cleanup || rc=1
	if [ -n "$SANDBOX_WORK" ] && [ -d "$SANDBOX_WORK" ]; then
		if [ "${SANDBOX_KEEP:-0}" = 1 ]; then
			echo "$SANDBOX_TAG: kept $SANDBOX_WORK" >&2
		else
			rm -rf --one-file-system "$SANDBOX_WORK"
		fi
	fi
	exit "$rc"
}

sandbox_start() {
	trap sandbox_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	sandbox_cgroups
}

sandbox_mkwork() {
	SANDBOX_WORK=$(mktemp -d "$1") || die "mktemp failed"
}

sandbox_test_units() {
	local dir=$1 scenario=$2 a exec_start service_timeout
	shift 2
	# The scenario stops before nspawn's own deadline, so that its output
	# and a clean exit status still come out.
	service_timeout=$((SANDBOX_LIMIT > 90 ? SANDBOX_LIMIT - 30 : SANDBOX_LIMIT * 2 / 3))
	cat >"$dir/mmapq-test.target" <<EOF
[Unit]
Description=mmapq test under systemd
Requires=mmapq-test.service
After=mmapq-test.service
EOF
	exec_start="/mmapq-test/$scenario"
	for a in "$@"; do
		case "$a" in *[!A-Za-z0-9_.,=:/+-]*|"") die "scenario argument '$a': only [A-Za-z0-9_.,=:/+-] allowed" ;; esac
		exec_start+=" $a"
	done
	cat >"$dir/mmapq-test.service" <<EOF
[Unit]
Description=mmapq test scenario $scenario
# The container's systemd exits when the scenario ends, with its exit status.
SuccessAction=exit
FailureAction=exit

[Service]
Type=oneshot
EnvironmentFile=/mmapq-test/mmapq-test.env
Environment=RESULTDIR=/results
ExecStart=$exec_start
# No /dev/console with nspawn --console=pipe: the output goes to a file
# that the harness prints afterwards.
StandardOutput=append:/results/test-output.log
StandardError=inherit
TimeoutStartSec=${service_timeout}s
EOF
}

sandbox_boot() {
	local root=$1 rc
	shift
	local nspawn=(
		systemd-nspawn -q --console=pipe -D "$root"
		--register=no --keep-unit --private-network
		--link-journal=no --resolv-conf=off --timezone=off
		"--machine=mmapq-test-$$"
		"$@"
		"--bind=$SANDBOX_RESULTDIR:/results"
		-b -- --unit=mmapq-test.target
	)
	[ ${#sandbox_cg_dirs[@]} -gt 0 ] || die "sandbox_boot before sandbox_start"
	echo "$SANDBOX_TAG: booting systemd in a container (limit ${SANDBOX_LIMIT}s)" >&2
	# A child moves itself into the fresh cgroups and becomes timeout +
	# nspawn; this shell stays outside, so that it can remove them
	# afterwards (a cgroup that still holds a process cannot be removed).
	(
		for d in "${sandbox_cg_dirs[@]}"; do echo "$BASHPID" >"$d/cgroup.procs" || exit 125; done
		exec timeout --kill-after=15 "$SANDBOX_LIMIT" "${nspawn[@]}"
	) </dev/null >"$SANDBOX_RESULTDIR/console.log" 2>&1
	rc=$?
	# nspawn's own messages (less a harmless one about its propagation
	# directory), then what the scenario printed
	grep -v '^Attempted to remove disk file system under "/run/systemd/nspawn/propagate/' \
		"$SANDBOX_RESULTDIR/console.log" >&2
	[ -f "$SANDBOX_RESULTDIR/test-output.log" ] && cat "$SANDBOX_RESULTDIR/test-output.log"
	case $rc in
		0) echo "$SANDBOX_TAG: PASS" >&2 ;;
		77) echo "$SANDBOX_TAG: SKIPPED by the scenario" >&2 ;;
		124|137) echo "$SANDBOX_TAG: FAIL: timed out after ${SANDBOX_LIMIT}s" >&2 ;;
		125) echo "$SANDBOX_TAG: FAIL: could not enter the sandbox cgroups" >&2 ;;
		*) echo "$SANDBOX_TAG: FAIL: exit status $rc; logs in $SANDBOX_RESULTDIR" >&2 ;;
	esac
	return $rc
}
