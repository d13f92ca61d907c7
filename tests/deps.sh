#!/bin/sh
# Installs what building and testing mmapq needs on Debian 12, only where it
# is missing (so a machine that has everything needs no network).
set -eu
# systemd-container: systemd-nspawn, for the tests under a real systemd
# (tests/systemd/run-in-container.sh; skipped without it)
# clang, libclang-rt-14-dev: the libFuzzer targets (tests/fuzz/)
pkgs="cmake make gcc pkg-config libinih-dev libcmocka-dev libsystemd-dev systemd-container"
pkgs="$pkgs clang libclang-rt-14-dev"
# libfuse3-dev: failfs, the failing FUSE file system of test_msync
pkgs="$pkgs libfuse3-dev"
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
# shellcheck disable=SC2086 # word splitting of the list is intended
$sudo apt-get install -y -qq --no-install-recommends $missing
