#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# library.sh BUILD_DIR -- libmmapq as an application uses it, from a
# staged `cmake --install` (DESTDIR), nothing from the build tree:
#   1. mmapq.h alone compiles as C11 and as C++11 (-Wall -Wextra -pedantic
#      -Werror): it is standalone;
#   2. the examples (common/queue/examples/: a producer in C, a consumer in
#      C++) build with `pkg-config mmapq` and with CMake's
#      find_package(mmapq);
#   3. records an example publishes reach the installed mmapq-consumer, and
#      records the installed mmapq-producer publishes reach the C++ example,
#      for both builds of the examples;
#   4. a program built against 1.0's struct mmapq_status (before the queue
#      id) still gets its mmapq_status, mmapq_status@LIBMMAPQ_1.
# Exit 0 pass, 1 fail, 77 skip (no C++ compiler: tests/deps.sh installs g++).
set -u
build=$(cd "${1:?usage: library.sh BUILD_DIR}" && pwd) || exit 1
src=$(cd "$(dirname "$0")/.." && pwd)
command -v c++ >/dev/null || { echo "library: SKIP: no C++ compiler" >&2; exit 77; }
# shellcheck source=/dev/null
. "$build/systemd/mmapq-test.env"
work=$(mktemp -d /tmp/mmapq-library.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT
fail=0
pass() { echo "library: PASS: $*"; }
failed() { echo "library: FAIL: $*"; fail=1; }
stage=$work/stage
ex=$src/common/queue/examples

DESTDIR=$stage cmake --install "$build" >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log"; echo "library: FAIL: cmake --install"; exit 1; }
export PKG_CONFIG_PATH=$stage$MMAPQ_LIBDIR/pkgconfig PKG_CONFIG_SYSROOT_DIR=$stage
export LD_LIBRARY_PATH=$stage$MMAPQ_LIBDIR
if ! flags=$(pkg-config --cflags --libs mmapq); then
	echo "library: FAIL: pkg-config mmapq"; exit 1
fi
# shellcheck disable=SC2206 # the flags are words
flags=($flags)
# a sanitized build's library needs its runtime first in the program
san=()
[ "${MMAPQ_SANITIZED:-0}" = 1 ] && san=(-fsanitize=address,undefined)
pass "pkg-config mmapq: ${flags[*]}"

# ---- 1. the header alone
for lang in "cc c c11" "c++ c++ c++11"; do
	read -r compiler x std <<<"$lang"
	echo '#include <mmapq.h>' | "$compiler" -x "$x" -std="$std" -Wall -Wextra -pedantic -Werror \
		"${flags[@]}" -fsyntax-only - 2>"$work/h.err" &&
		pass "mmapq.h alone compiles as $std" || { failed "mmapq.h as $std"; cat "$work/h.err"; }
done

# ---- 2. the examples, with pkg-config and with CMake
cc -std=c11 -Wall -Wextra -Werror "${san[@]}" "$ex/producer.c" "${flags[@]}" -o "$work/producer" &&
	c++ -std=c++17 -Wall -Wextra -Werror "${san[@]}" "$ex/consumer.cpp" "${flags[@]}" -o "$work/consumer" &&
	pass "the examples build with pkg-config mmapq (C and C++)" || failed "the examples do not build with pkg-config"
if cmake -S "$ex" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$stage$MMAPQ_PREFIX" \
	-DCMAKE_C_FLAGS="${san[*]}" -DCMAKE_CXX_FLAGS="${san[*]}" >"$work/cmake.log" 2>&1 &&
   cmake --build "$work/cmake" >>"$work/cmake.log" 2>&1; then
	pass "the examples build with find_package(mmapq)"
else
	failed "the examples do not build with find_package(mmapq)"; tail -20 "$work/cmake.log"
fi

# ---- 3. records between the examples and the installed daemons
cfg=$work/mmapq.ini
printf '[queue]\npath = %s/queue\ncapacity = 256\nrecord_size = 32\n[consumer]\noutput = stdout\n' "$work" >"$cfg"
daemons=$stage$MMAPQ_BINDIR
# the examples join the queue the daemons create
out=$("$work/producer" "$work/queue" 1 2>&1); rc=$?
[ $rc = 1 ] && [ "${out#*does not exist}" != "$out" ] && [ ! -e "$work/queue" ] &&
	pass "the example producer refuses a missing queue: $out" ||
	failed "the example producer with no queue: exit $rc, '$out'"
"$daemons/mmapq-producer" --config "$cfg" </dev/null || failed "mmapq-producer did not create the queue"
round() { # PRODUCER CONSUMER NAME: 1 2 3 one way, 10..14 the other
	local out
	out=$("$1" "$work/queue" 1 2 3 2>&1) || { failed "$3: the example producer: $out"; return; }
	out=$(timeout 20 "$daemons/mmapq-consumer" --config "$cfg" --count 3 2>&1)
	[ "$out" = "$(printf '1\n2\n3')" ] && pass "$3: the example producer's records reach mmapq-consumer" ||
		failed "$3: mmapq-consumer printed '$out'"
	seq 10 14 | "$daemons/mmapq-producer" --config "$cfg" || { failed "$3: mmapq-producer"; return; }
	out=$(timeout 20 "$2" "$work/queue" 5 2>&1)
	[ "$out" = "$(seq 10 14)" ] && pass "$3: mmapq-producer's records reach the C++ example" ||
		failed "$3: the example consumer printed '$out'"
}
round "$work/producer" "$work/consumer" "pkg-config build"
# a bad argument: exit 2, a message naming it, and nothing published
out=$("$work/producer" "$work/queue" 7 x8 2>&1); rc=$?
left=$("$daemons/mmapqctl" --config "$cfg" status --json 2>&1 | sed -n 's/.*"depth":\([0-9]*\).*/\1/p')
[ $rc = 2 ] && [ "${out#*\'x8\'}" != "$out" ] && [ "$left" = 0 ] &&
	pass "the example producer refuses 'x8' (exit 2: $out), the queue still empty" ||
	failed "the example producer with 'x8': exit $rc, '$out', depth '$left'"
[ -x "$work/cmake/example_producer" ] && round "$work/cmake/example_producer" "$work/cmake/example_consumer" "CMake build"

# ---- 4. a program built against the 1.0 mmapq.h (struct mmapq_status
# without id) links mmapq_status@LIBMMAPQ_1: it gets every field it knows,
# and nothing is written past the end of its struct
cat >"$work/old.c" <<'EOF_C'
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <mmapq.h>
int mmapq_status_1_0(struct mmapq *q, void *st);
__asm__(".symver mmapq_status_1_0, mmapq_status@LIBMMAPQ_1");
/* 1.0's struct: the fields before id, rounded up to its alignment */
#define OLD_SIZE ((offsetof(struct mmapq_status, id) + 7) / 8 * 8)
int main(int argc, char **argv)
{
	struct mmapq_params p = {.path = argv[1], .role = MMAPQ_ROLE_OBSERVER};
	unsigned char old[OLD_SIZE + 64];
	struct mmapq_status now;
	struct mmapq *q;
	if (argc != 2 || mmapq_open(&p, &q, NULL) < 0 || mmapq_status(q, &now) < 0)
		return 2;
	memset(old, 0xa5, sizeof(old));
	if (mmapq_status_1_0(q, old) < 0)
		return 3;
	for (size_t i = OLD_SIZE; i < sizeof(old); i++)
		if (old[i] != 0xa5)
			return 4; /* written past the 1.0 struct */
	if (memcmp(old, &now, offsetof(struct mmapq_status, attached_by_pid) + 1))
		return 5;
	printf("%llu %llu\n", (unsigned long long)now.head, (unsigned long long)now.tail);
	mmapq_close(q);
	return 0;
}
EOF_C
if cc -std=gnu11 -Wall -Wextra -Werror "${san[@]}" "$work/old.c" "${flags[@]}" -o "$work/old" 2>"$work/old.err"; then
	out=$("$work/old" "$work/queue" 2>&1); rc=$?
	nm -D "$work/old" | grep -q 'mmapq_status@LIBMMAPQ_1$' && [ $rc = 0 ] &&
		pass "a program built for LIBMMAPQ_1 gets 1.0's struct mmapq_status, nothing written past it ($out)" ||
		failed "the LIBMMAPQ_1 mmapq_status: exit $rc, '$out'"
else
	failed "the LIBMMAPQ_1 program does not build"; cat "$work/old.err"
fi

[ $fail = 0 ] && echo "library: PASS" || echo "library: FAILED"
exit $fail
