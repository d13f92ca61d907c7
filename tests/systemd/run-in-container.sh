#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
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

SANDBOX_KEEP=0
if [ "${1:-}" = "--keep" ]; then SANDBOX_KEEP=1; shift; fi
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

# ---- cgroups: one fresh child per hierarchy (sandbox.sh) --------------------
SANDBOX_LIMIT=$limit
SANDBOX_RESULTDIR=$resultdir
SANDBOX_TAG="run-in-container ($scenario)"
# shellcheck source=sandbox.sh
. "$here/sandbox.sh"
sandbox_start

# ---- stage the install ------------------------------------------------------
sandbox_mkwork /tmp/mmapq-nspawn.XXXXXX
work=$SANDBOX_WORK
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
# the scenario's helper of the upgrade step, built with the tests (the
# step fails without it)
if [ -x "$build/tests/systemd/legacy_queue" ]; then
	cp "$build/tests/systemd/legacy_queue" "$testdir/"
fi
sandbox_test_units "$etc/systemd/system" "$scenario" "${scenario_args[@]}"

# ---- run ------------------------------------------------------------------
sandbox_boot "$root" --bind-ro=/usr "--bind=$etc:/etc" "${binds[@]}" "--bind-ro=$testdir:/mmapq-test"
rc=$?
exit $rc
