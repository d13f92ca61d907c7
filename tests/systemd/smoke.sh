#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# smoke.sh [EXIT_STATUS] -- the harness checking itself, inside the container:
# systemd is PID 1, the journal works, RESULTDIR is writable, and the exit
# status comes back out of the container:
#   tests/systemd/run-in-container.sh build smoke.sh 7; echo $?    # 7
set -u
echo "smoke: PID 1 is $(cat /proc/1/comm), $(systemctl --version | head -n 1)"
echo "smoke: system state: $(systemctl is-system-running)"
echo "smoke: journal: $(journalctl -b -n 1 -o cat --no-pager)"
echo "smoke: cgroup: $(tr '\n' ' ' </proc/self/cgroup)"
echo "smoke ok" >"${RESULTDIR:-/results}/smoke.ok"
exit "${1:-0}"
