#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check.sh -- the whole test suite from a clean tree, as CI runs it (.ci/run)
# and the README quotes it: the dependencies of the build and of every test
# (tests/deps.sh --test: apt-get, where missing),
# a build with the test-only fault-injection variants and warnings as
# errors, then every ctest label (fast, stress, systemd, analysis).  First,
# the README's first command as a user runs it (the default build: the
# shared libmmapq, no test-only variants), with warnings as errors.
set -eu
cd "$(dirname "$0")/.."
tests/deps.sh --test
cmake -S . -B build-plain -DMMAPQ_WERROR=ON
cmake --build build-plain -j2
tests/lab.sh build-plain
cmake -S . -B build -DMMAPQ_FAULT_INJECTION=ON -DMMAPQ_WERROR=ON
cmake --build build -j2
ctest --test-dir build --output-on-failure
