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
#   4. a program built against 1.0's mmapq.h (struct mmapq_params and
#      struct mmapq_status without the consumer fields) still works through
#      mmapq_open@LIBMMAPQ_1 and mmapq_status@LIBMMAPQ_1: nothing read or
#      written past its structs, and it is the consumer "default".
# Exit 0 pass, 1 fail, 77 skip (no C++ compiler: tests/deps.sh installs g++).
set -u
build=$(cd "${1:?usage: library.sh BUILD_DIR}" && pwd) || exit 1
src=$(cd "$(dirname "$0")/../.." && pwd)
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

# ---- 4. a program built against the 1.0 mmapq.h
cat >"$work/old.c" <<'EOF_C'
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <mmapq.h>
/* what a program built against 1.0's mmapq.h linked */
int mmapq_open_1_0(const void *p, struct mmapq **q, struct mmapq_error *err);
__asm__(".symver mmapq_open_1_0, mmapq_open@LIBMMAPQ_1");
int mmapq_status_1_0(struct mmapq *q, void *st);
__asm__(".symver mmapq_status_1_0, mmapq_status@LIBMMAPQ_1");
/* 1.0's structs: the fields before the consumer ones, rounded up to their
 * alignment */
#define OLD_PARAMS offsetof(struct mmapq_params, consumer)
#define OLD_STATUS ((offsetof(struct mmapq_status, attached_by_pid) + 8) / 8 * 8)
int main(int argc, char **argv)
{
	long pg = sysconf(_SC_PAGESIZE);
	struct mmapq_params p = {.role = MMAPQ_ROLE_CONSUMER};
	struct mmapq_consumer_status cs;
	struct mmapq_status now;
	struct mmapq_error err;
	struct mmapq_record rec;
	unsigned char st[OLD_STATUS + 64], *guard, *old;
	struct mmapq *q;
	uint32_t n = 0;
	int64_t value;

	if (argc != 2)
		return 2;
	p.path = argv[1];
	/* the old params end where a page without access begins: reading
	 * past them faults */
	guard = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guard == MAP_FAILED || mprotect(guard + pg, pg, PROT_NONE) < 0)
		return 2;
	old = guard + pg - OLD_PARAMS;
	memcpy(old, &p, OLD_PARAMS);
	if (mmapq_open_1_0(old, &q, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 3;
	}
	if (mmapq_available(q, 1000, &n) < 0 || n < 1 || mmapq_get(q, 0, &rec) < 0)
		return 4;
	value = *(const int64_t *)rec.data; /* before the release gives the slot back */
	if (mmapq_release(q, 1) < 0)
		return 4;
	memset(st, 0xa5, sizeof(st));
	if (mmapq_status_1_0(q, st) < 0 || mmapq_status(q, &now) < 0)
		return 5;
	for (size_t i = OLD_STATUS; i < sizeof(st); i++)
		if (st[i] != 0xa5)
			return 6; /* written past the 1.0 struct */
	if (memcmp(st, &now, offsetof(struct mmapq_status, attached_by_pid) + 1))
		return 7;
	if (mmapq_consumers(q, &cs, 1) != 1 || strcmp(cs.name, MMAPQ_CONSUMER_DEFAULT))
		return 8;
	printf("%s %lld\n", cs.name, (long long)value);
	mmapq_close(q);
	return 0;
}
EOF_C
if cc -std=gnu11 -Wall -Wextra -Werror "${san[@]}" "$work/old.c" "${flags[@]}" -o "$work/old" 2>"$work/old.err"; then
	echo 42 | "$daemons/mmapq-producer" --config "$cfg" || failed "mmapq-producer (for the 1.0 program)"
	out=$(timeout 20 "$work/old" "$work/queue" 2>&1); rc=$?
	nm -D "$work/old" | grep -q 'mmapq_open@LIBMMAPQ_1$' && nm -D "$work/old" | grep -q 'mmapq_status@LIBMMAPQ_1$' &&
		[ $rc = 0 ] && [ "$out" = "default 42" ] &&
		pass "a program built for LIBMMAPQ_1 opens with 1.0's struct mmapq_params (nothing read past it), gets 1.0's struct mmapq_status (nothing written past it), as the consumer default ($out)" ||
		failed "the LIBMMAPQ_1 program: exit $rc, '$out'"
else
	failed "the LIBMMAPQ_1 program does not build"; cat "$work/old.err"
fi

[ $fail = 0 ] && echo "library: PASS" || echo "library: FAILED"
exit $fail
