#!/bin/sh
# deps.sh [--test] [--list] -- installs what mmapq needs on Debian 12, only
# where it is missing (so a machine that has everything needs no network).
#   (none)   what building, installing and running mmapq needs: the README's
#            first command (the build, the lab), `cmake --install`, the units
#   --test   that and everything the tests use (tests/check.sh, .ci/run)
#   --list   print the packages, one a line, and install nothing
# The build list is debian/control's Build-Depends but for what a Debian
# package build brings itself (build-essential, debhelper); the test
# deps_build_depends checks that the two agree.
set -eu
test_deps="" list=""
for arg in "$@"; do
	case $arg in
	--test) test_deps=1 ;;
	--list) list=1 ;;
	*) echo "usage: tests/deps.sh [--test] [--list]" >&2; exit 64 ;;
	esac
done

# ---- building and running ----
# libc6-dev: the C library's headers and start files, which gcc only
# recommends (and recommends are not installed here);
# libinih-dev, libsystemd-dev: the configuration's parser and sd_notify and
# the journal; libnats-dev: the NATS C client, for [consumer] output = nats
# (built without it, the consumer refuses that output); systemd: the unit
# directories (pkg-config systemd) and what the units run under
build="cmake make gcc libc6-dev pkg-config libinih-dev libsystemd-dev libnats-dev systemd"

# ---- the tests (--test) ----
# g++: the library used from C++ (mmapq.h compiled as C++, the C++ example)
tests="g++"
# systemd-container: systemd-nspawn, for the tests under a real systemd
# (tests/systemd/run-in-container.sh; skipped without it)
tests="$tests systemd-container"
# clang, libclang-rt-14-dev: the libFuzzer targets (tests/fuzz/)
tests="$tests clang libclang-rt-14-dev"
# prometheus (prometheus, promtool), curl: the metrics endpoint scraped for real
tests="$tests prometheus curl"
# tmux: mmapqctl top driven in a real terminal (tests/top-tmux.sh)
tests="$tests tmux"
# libfuse3-dev: crashfs, the FUSE file system of the tests that fails and loses power
tests="$tests libfuse3-dev"
# gnuplot-nox: a headless gnuplot (svg and pngcairo terminals) for mmapq_bench
# --plot; libxml2-utils: xmllint, which checks its SVG (tests/bench/smoke.sh)
tests="$tests gnuplot-nox libxml2-utils"
# libzmq3-dev: ZeroMQ, a peer of mmapq_bench's throughput table (PUSH/PULL over ipc://)
tests="$tests libzmq3-dev"
# redis-server, libhiredis-dev: Redis Streams, the peer of mmapq_bench --peers
# that a user would run instead of the daemons (a redis-server of its own on a
# unix socket, hiredis pipelining; its package ships a service: the policy
# below keeps it from starting on this machine)
tests="$tests redis-server libhiredis-dev"
# nats-server: the real JetStream server the NATS tests start on 127.0.0.1
# (its package ships a service: the policy below keeps it from starting on
# this machine)
tests="$tests nats-server"
# dpkg-dev, debhelper, lintian: the Debian packages (debian/) built and
# checked; mmdebstrap: the Debian root they are installed into under
# systemd (tests/systemd/deb-container.sh; skipped without them)
tests="$tests dpkg-dev debhelper lintian mmdebstrap"
# groff-base: the man pages checked (man_pages); jq: mmapqctl's JSON against
# its documented schema (tests/json-schema.sh); bash-completion: its helpers,
# which the completion is loaded with (tests/completion.sh)
tests="$tests groff-base jq bash-completion"
# openssl: the CA and certificates test_nats makes for its TLS cases, and the
# ed25519 keys of its operator-mode (credentials) case
tests="$tests openssl"
# valgrind, cppcheck, clang-tidy: the analysers of tests/analyze.sh (the
# ctest test analyze; skipped without them)
tests="$tests valgrind cppcheck clang-tidy"

pkgs=$build
[ -z "$test_deps" ] || pkgs="$pkgs $tests"
if [ -n "$list" ]; then
	# shellcheck disable=SC2086 # word splitting of the list is intended
	printf '%s\n' $pkgs
	exit 0
fi
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps.sh: installing:$missing" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# Packages with a service (prometheus, nats-server, redis-server) must not start it on this machine:
# the tests start what they need themselves, on ports of their own.  A
# policy-rc.d that denies every start, unless the machine has one already.
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy" &&
		own_policy=1
fi
rc=0
# shellcheck disable=SC2086 # word splitting of the list is intended
$sudo apt-get install -y -qq --no-install-recommends $missing || rc=$?
[ -z "$own_policy" ] || $sudo rm -f "$policy"
exit $rc
