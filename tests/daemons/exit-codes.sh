#!/bin/sh
# SPDX-License-Identifier: MIT
#
# exit-codes.sh SOURCE_DIR -- the exit codes each program's man page lists
# under EXIT STATUS are exactly the ones daemons/runtime/exit.h gives that
# program (its EXIT_CODES table: P producer, C consumer, T mmapqctl).  A
# code added to the table and not documented, or documented and gone from
# the table, fails.
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
exit $fail
