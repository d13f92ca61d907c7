#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run-in-container.sh [--keep] BUILD_DIR [SCENARIO [ARG...]]
#
# Runs a test scenario under a REAL systemd (252, as PID 1) in a throw-away
# systemd-nspawn container, against a staged `cmake --install` of BUILD_DIR:
#
#   1. DESTDIR=WORK/stage cmake --install BUILD_DIR
#   2. a container root: symlinks bin lib lib32 lib64 sbin -> usr/..., empty
#      dirs, an empty etc/os-release; the host's /usr bound read-only; a
#      throw-away COPY of the host's /etc bound read-write (so systemd-sysusers
#      can add the mmapq user), whose /etc/systemd/system is replaced by a
#      test target (the host's enabled services stay out); the staged install
#      prefix (e.g. /usr/local) bound over the prefix, with the units,
#      sysusers.d and tmpfiles.d files the install put below it (staged files
#      outside the prefix and /etc go to their /etc counterparts).
#   3. a fresh child cgroup of our own cgroup in EVERY hierarchy (cgroup v1
#      controllers, name=systemd, cgroup2), made before nspawn starts, so the
#      container's systemd can only ever see and change that subtree; the
#      machine's own processes never move.  Removed afterwards, always.
#   4. `timeout ... systemd-nspawn --console=pipe ... -b --unit=mmapq-test.target`:
#      the target pulls in mmapq-test.service, a Type=oneshot service running
#      SCENARIO (default: scenario.sh from this directory) with
#      SuccessAction=exit/FailureAction=exit, so the container powers off by
#      itself and nspawn's exit status is the scenario's.
#
# Logs go to RESULTDIR (env MMAPQ_RESULTDIR, default BUILD_DIR/systemd-results,
# emptied first), which the container sees as /results.  Exit status: the scenario's; 77
# (skipped) when not root, systemd-nspawn is missing or cgroups are not
# writable; 124 when the run exceeded MMAPQ_CONTAINER_TIMEOUT seconds (default
# 600).  --keep leaves the work directory (root, stage, /etc copy) in place.
#
# NEVER start systemd, `systemd --user` or systemd-journald on the host
# itself: a service manager outside its own PID namespace moves the
# machine's processes into cgroups of its own.  Only the container does.
set -u

die() { echo "run-in-container: $*" >&2; exit 1; }
skip() { echo "run-in-container: SKIP: $*" >&2; exit 77; }

keep=0
if [ "${1:-}" = "--keep" ]; then keep=1; shift; fi
[ $# -ge 1 ] || die "usage: run-in-container.sh [--keep] BUILD_DIR [SCENARIO [ARG...]]"
build=$(cd "$1" 2>/dev/null && pwd) || die "no build directory '$1'"
shift
here=$(cd "$(dirname "$0")" && pwd)
scenario=${1:-scenario.sh}
[ $# -ge 1 ] && shift
scenario_args=("$@")
[ -f "$here/$scenario" ] || die "no scenario '$here/$scenario'"
limit=${MMAPQ_CONTAINER_TIMEOUT:-600}
resultdir=${MMAPQ_RESULTDIR:-$build/systemd-results}

# ---- can we run at all? ---------------------------------------------------
[ "$(id -u)" -eq 0 ] || skip "needs root (systemd-nspawn, cgroups)"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn is missing (Debian package systemd-container)"
command -v cmake >/dev/null || skip "cmake is missing"
[ -f "$build/CMakeCache.txt" ] || die "$build is not a configured CMake build directory"
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:[A-Z]*=//p' "$build/CMakeCache.txt")
prefix=${prefix%/}
case "$prefix" in
	/usr|"") skip "install prefix '$prefix' is the host's /usr, which the container shares read-only; configure another prefix (e.g. the default /usr/local)" ;;
	/*) ;;
	*) die "install prefix '$prefix' is not absolute" ;;
esac
[ -f "$build/systemd/mmapq-test.env" ] || die "$build/systemd/mmapq-test.env is missing (configure with BUILD_TESTING=ON)"
# MMAPQ_BINDIR, MMAPQ_FAULTS, ... of the build
# shellcheck source=/dev/null
. "$build/systemd/mmapq-test.env"

# ---- cgroups: one fresh child per hierarchy, read /proc/self/cgroup once ----
cg_root=/sys/fs/cgroup
cg_name="mmapq-nspawn-$$-$RANDOM"
cg_dirs=()
cg_init_before=$(cat /proc/1/cgroup)
cg_self_before=$(cat /proc/self/cgroup)
work=""

cg_remove_all() {
	local i d pid ok
	for ((i = ${#cg_dirs[@]} - 1; i >= 0; i--)); do
		d=${cg_dirs[$i]}
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
		for pid in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
		if timeout 10 bash -c '
			d=$1
			until find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; [ ! -d "$d" ]; do
				read -r -t 0.2 <> <(:) || :
			done' _ "$d"; then
			ok=1
		fi
		[ "$ok" = 1 ] || echo "run-in-container: WARNING: could not remove cgroup $d" >&2
	done
}

cleanup() {
	local rc=$?
	cg_remove_all
	if [ -n "$work" ] && [ -d "$work" ]; then
		if [ "$keep" = 1 ]; then
			echo "run-in-container: kept $work" >&2
		else
			rm -rf --one-file-system "$work"
		fi
	fi
	# The machine's own processes must never have moved.
	if [ "$(cat /proc/1/cgroup)" != "$cg_init_before" ]; then
		echo "run-in-container: FAIL: PID 1 of the machine changed cgroups:" >&2
		echo "before:" >&2; echo "$cg_init_before" >&2
		echo "after:" >&2; cat /proc/1/cgroup >&2
		rc=1
	fi
	if [ "$(cat /proc/$$/cgroup)" != "$cg_self_before" ]; then
		echo "run-in-container: FAIL: this script's cgroups changed" >&2
		rc=1
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mapfile -t cg_lines <<<"$cg_self_before"
for line in "${cg_lines[@]}"; do
	IFS=: read -r _ ctl path <<<"$line"
	case "$ctl" in
		"")
			if [ -d "$cg_root/unified" ]; then mnt=$cg_root/unified; else mnt=$cg_root; fi ;;
		name=systemd) mnt=$cg_root/systemd ;;
		name=*) continue ;;
		*) mnt=$cg_root/${ctl%%,*} ;;
	esac
	[ -d "$mnt" ] || continue
	d="$mnt${path%/}/$cg_name"
	mkdir "$d" 2>/dev/null || skip "cgroups are not writable (cannot create $d)"
	cg_dirs+=("$d")
	if [ -e "$d/cpuset.cpus" ]; then
		cat "$mnt${path%/}/cpuset.cpus" >"$d/cpuset.cpus" || skip "cannot set up cpuset cgroup $d"
		cat "$mnt${path%/}/cpuset.mems" >"$d/cpuset.mems" || skip "cannot set up cpuset cgroup $d"
	fi
done
[ ${#cg_dirs[@]} -gt 0 ] || skip "no cgroup hierarchy found"

# ---- stage the install ------------------------------------------------------
work=$(mktemp -d /tmp/mmapq-nspawn.XXXXXX) || die "mktemp failed"
stage=$work/stage
root=$work/root
etc=$work/etc
testdir=$work/test
mkdir -p "$resultdir" || die "cannot create $resultdir"
find "$resultdir" -mindepth 1 -delete
echo "run-in-container: staging 'cmake --install $build' into $stage" >&2
DESTDIR=$stage cmake --install "$build" >"$resultdir/install.log" 2>&1 ||
	{ cat "$resultdir/install.log" >&2; die "cmake --install failed"; }
# A build with fault injection: the scenario's crash and watchdog steps
# need the daemons' fault points (MMAPQ_FAULT), which only the test-only
# twins in daemons/faults/ have; they stand in for the installed ones
# (the same programs otherwise, linked with the library statically).
if [ "${MMAPQ_FAULTS:-0}" = 1 ] && [ -d "$build/daemons/faults" ]; then
	for p in mmapq-producer mmapq-consumer mmapqctl; do
		cp "$build/daemons/faults/$p" "$stage$MMAPQ_BINDIR/$p" || die "cannot stage daemons/faults/$p"
	done
	echo "run-in-container: the daemons are the fault-injection builds (daemons/faults/)" >&2
fi

# ---- container root ------------------------------------------------------
mkdir -p "$root" "$testdir"
for l in bin lib lib32 lib64 sbin; do ln -s "usr/$l" "$root/$l"; done
for dir in usr etc dev proc sys run tmp var root mmapq-test results; do mkdir -p "$root/$dir"; done
: >"$root/etc/os-release"

# A throw-away copy of the host's /etc, writable by the container.
cp -a /etc "$etc" || die "cannot copy /etc"
rm -rf "$etc/systemd/system"
mkdir -p "$etc/systemd/system" "$etc/sysusers.d" "$etc/tmpfiles.d"
: >"$etc/machine-id"   # the container gets a machine id of its own

# Place every staged file where the container finds it: the prefix is bound
# as a whole; files under /etc go into the /etc copy; units, sysusers.d and
# tmpfiles.d files that were installed below the host's read-only /usr (or
# /lib) go to their /etc counterparts, which systemd reads as well.
binds=()
if [ -d "$stage$prefix" ]; then
	binds+=("--bind=$stage$prefix:$prefix")
fi
while IFS= read -r -d '' f; do
	rel=${f#"$stage"}
	case "$rel" in
		"$prefix"/*) continue ;;
		/etc/*) dst=$etc/${rel#/etc/} ;;
		*/systemd/system/*) dst=$etc/systemd/system/${rel##*/} ;;
		*/sysusers.d/*) dst=$etc/sysusers.d/${rel##*/} ;;
		*/tmpfiles.d/*) dst=$etc/tmpfiles.d/${rel##*/} ;;
		*) die "staged file $rel: no place for it in the container" ;;
	esac
	mkdir -p "$(dirname "$dst")"
	cp -a "$f" "$dst"
done < <(find "$stage" \( -type f -o -type l \) -print0)

# The test: a target that pulls in one oneshot service running the scenario.
cp -a "$here"/. "$testdir"/
cp "$build/systemd/mmapq-test.env" "$testdir/mmapq-test.env"
service_timeout=$((limit > 90 ? limit - 30 : limit * 2 / 3))
cat >"$etc/systemd/system/mmapq-test.target" <<EOF
[Unit]
Description=mmapq test under systemd
Requires=mmapq-test.service
After=mmapq-test.service
EOF
exec_start="/mmapq-test/$scenario"
for a in "${scenario_args[@]}"; do
	case "$a" in *[!A-Za-z0-9_.,=:/+-]*|"") die "scenario argument '$a': only [A-Za-z0-9_.,=:/+-] allowed" ;; esac
	exec_start+=" $a"
done
cat >"$etc/systemd/system/mmapq-test.service" <<EOF
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

# ---- run ------------------------------------------------------------------
echo "run-in-container: booting systemd in a container (limit ${limit}s), scenario $scenario" >&2
nspawn=(
	systemd-nspawn -q --console=pipe -D "$root"
	--register=no --keep-unit --private-network
	--link-journal=no --resolv-conf=off --timezone=off
	"--machine=mmapq-test-$$"
	--bind-ro=/usr "--bind=$etc:/etc"
	"${binds[@]}"
	"--bind-ro=$testdir:/mmapq-test"
	"--bind=$resultdir:/results"
	-b -- --unit=mmapq-test.target
)
# A child moves itself into the fresh cgroups and becomes timeout + nspawn;
# this shell stays outside, so it can remove them afterwards.
(
	for d in "${cg_dirs[@]}"; do echo "$BASHPID" >"$d/cgroup.procs" || exit 125; done
	exec timeout --kill-after=15 "$limit" "${nspawn[@]}"
) </dev/null >"$resultdir/console.log" 2>&1
rc=$?
# nspawn's own messages, then what the scenario printed
grep -v '^Attempted to remove disk file system under "/run/systemd/nspawn/propagate/' \
	"$resultdir/console.log" >&2
[ -f "$resultdir/test-output.log" ] && cat "$resultdir/test-output.log"
case $rc in
	0) echo "run-in-container: PASS ($scenario)" >&2 ;;
	77) echo "run-in-container: SKIPPED by the scenario ($scenario)" >&2 ;;
	124|137) echo "run-in-container: FAIL: timed out after ${limit}s ($scenario)" >&2 ;;
	125) echo "run-in-container: FAIL: could not enter the sandbox cgroups" >&2 ;;
	*) echo "run-in-container: FAIL: exit status $rc ($scenario); logs in $resultdir" >&2 ;;
esac
exit $rc
