#!/bin/sh
# Installs what building and testing mmapq needs on Debian 12, only where it
# is missing (so a machine that has everything needs no network).
set -eu
# systemd-container: systemd-nspawn, for the tests under a real systemd
# (tests/systemd/run-in-container.sh; skipped without it)
# clang, libclang-rt-14-dev: the libFuzzer targets (tests/fuzz/)
pkgs="cmake make gcc g++ pkg-config libinih-dev libsystemd-dev systemd-container"
pkgs="$pkgs clang libclang-rt-14-dev"
# prometheus (prometheus, promtool), curl: the metrics endpoint scraped for real
pkgs="$pkgs prometheus curl"
# tmux: mmapqctl top driven in a real terminal (tests/top-tmux.sh)
pkgs="$pkgs tmux"
# libfuse3-dev: crashfs, the FUSE file system of the tests that fails and loses power
pkgs="$pkgs libfuse3-dev"
# gnuplot-nox: a headless gnuplot (svg and pngcairo terminals) for mmapq_bench
# --plot; libxml2-utils: xmllint, which checks its SVG (tests/bench/smoke.sh)
pkgs="$pkgs gnuplot-nox libxml2-utils"
# libzmq3-dev: ZeroMQ, a peer of mmapq_bench's throughput table (PUSH/PULL over ipc://)
pkgs="$pkgs libzmq3-dev"
# libnats-dev: the NATS C client, for [consumer] output = nats; nats-server:
# the real JetStream server the NATS tests start on 127.0.0.1 (its package
# ships a service: the policy below keeps it from starting on this machine)
pkgs="$pkgs libnats-dev nats-server"
# dpkg-dev, debhelper, lintian: the Debian packages (debian/) built and
# checked; mmdebstrap: the Debian root they are installed into under
# systemd (tests/systemd/deb-container.sh; skipped without them)
pkgs="$pkgs dpkg-dev debhelper lintian mmdebstrap"
# groff-base: the man pages checked (man_pages); jq: mmapqctl's JSON against
# its documented schema (tests/json-schema.sh); bash-completion: its helpers,
# which the completion is loaded with (tests/completion.sh)
pkgs="$pkgs groff-base jq bash-completion"
# openssl: the CA and certificates test_nats makes for its TLS cases, and the
# ed25519 keys of its operator-mode (credentials) case
pkgs="$pkgs openssl"
# valgrind, cppcheck, clang-tidy: the analysers of tests/analyze.sh (the
# ctest test analyze; skipped without them)
pkgs="$pkgs valgrind cppcheck clang-tidy"
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
# Packages with a service (prometheus, nats-server) must not start it on this machine:
# the tests start what they need themselves, on ports of their own.  A
# policy-rc.d that denies every start, unless the machine has one already.
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy" &&
		own_policy=1
fi
# shellcheck disable=SC2086 # word splitting of the list is intended
rc=0
$sudo apt-get install -y -qq --no-install-recommends $missing || rc=$?
[ -z "$own_policy" ] || $sudo rm -f "$policy"
exit $rc
