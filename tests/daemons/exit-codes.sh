#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# exit-codes.sh SOURCE_DIR -- daemons/runtime/exit.h's EXIT_CODES table (P
# producer, C consumer, T mmapqctl) is the one source of the exit codes:
#   * each program's man page lists under EXIT STATUS exactly the codes the
#     table gives that program (a code added to the table and not
#     documented, or documented and gone from the table, fails);
#   * the codes a unit does not restart on (RestartPreventExitStatus= of
#     the producer's and the consumer's unit sources) are codes of its
#     program;
#   * every "exit N", "exits N", "exit status N", "exiting N" of the pages
#     about the programs (README.md, systemd/OPERATIONS.md,
#     daemons/consumer/NATS.md, common/queue/DESIGN.md, config/mmapq.ini
#     and mmapq.ini(5), the pages of daemons/man) is a code of the table.
set -eu
src=${1:?usage: exit-codes.sh SOURCE_DIR}
header=$src/daemons/runtime/exit.h
[ -r "$header" ] || { echo "exit-codes: no $header" >&2; exit 1; }
fail=0

# the values exit.h gives a program (letter P, C or T), sorted, one a line
from_header() {
	sed -n 's/^[[:space:]]*X(EXIT_[A-Z_]*, *\([0-9]*\), *"\([PCT]*\)").*/\1 \2/p' "$header" |
		awk -v p="$1" 'index($2, p) { print $1 }' | sort -un
}

# the values listed under EXIT STATUS in a man page (".B N" after ".TP")
from_page() {
	awk '/^\.SH /{ on = ($0 ~ /^\.SH "?EXIT STATUS"?$/) ; next }
	     on && prev == ".TP" && /^\.B [0-9]+$/ { print $2 }
	     { prev = $0 }' "$1" | sort -un
}

check() {
	want=$(from_header "$1")
	got=$(from_page "$2")
	if [ -z "$want" ]; then
		echo "exit-codes: FAIL: $header gives program $1 no code (the table could not be read)"
		fail=1
	elif [ -z "$got" ]; then
		echo "exit-codes: FAIL: $2 has no EXIT STATUS entries"
		fail=1
	elif [ "$want" != "$got" ]; then
		echo "exit-codes: FAIL: $2 lists $(echo $got) but exit.h gives $(echo $want)"
		fail=1
	else
		echo "exit-codes: PASS: $2: $(echo $got)"
	fi
}

check P "$src/daemons/man/mmapq-producer.8"
check C "$src/daemons/man/mmapq-consumer.8"
check T "$src/daemons/man/mmapqctl.1"

# RestartPreventExitStatus= of a unit source: codes of its program
check_unit() {
	local unit=$1 codes c have
	codes=$(sed -n 's/^RestartPreventExitStatus=//p' "$unit")
	if [ -z "$codes" ]; then
		echo "exit-codes: FAIL: $unit has no RestartPreventExitStatus="
		fail=1
		return
	fi
	have=$(from_header "$2")
	for c in $codes; do
		if ! grep -qx -- "$c" <<<"$have"; then
			echo "exit-codes: FAIL: $unit: RestartPreventExitStatus=$codes: $c is no exit code of its program (exit.h: ${have//$'\n'/ })"
			fail=1
			return
		fi
	done
	echo "exit-codes: PASS: $unit: RestartPreventExitStatus=$codes, codes of its program"
}
check_unit "$src/systemd/mmapq-producer.service.in" P
check_unit "$src/systemd/mmapq-consumer.service.in" C

# the codes the pages name: each one exit.h has
all=$(from_header '')
pages=("$src/README.md" "$src/systemd/OPERATIONS.md" "$src/daemons/consumer/NATS.md"
	"$src/common/queue/DESIGN.md" "$src/config/mmapq.ini" "$src/config/mmapq.ini.5"
	"$src"/daemons/man/*.[178])
named=$(grep -H -n -o -E '\b(exit|exits|exit status|exiting) [0-9]+\b' "${pages[@]}")
n=0 bad=0
while IFS= read -r m; do
	[ -n "$m" ] || continue
	n=$((n + 1))
	c=${m##* }
	grep -qx -- "$c" <<<"$all" || { echo "exit-codes: FAIL: ${m#"$src"/}: $c is no code of exit.h"; bad=1; }
done <<<"$named"
if [ $bad = 0 ] && [ $n -gt 0 ]; then
	echo "exit-codes: PASS: the $n exit codes the pages name are codes of exit.h"
elif [ $n = 0 ]; then
	echo "exit-codes: FAIL: no exit code named in ${pages[*]} (the pattern finds nothing)"
	fail=1
else
	fail=1
fi
exit $fail
