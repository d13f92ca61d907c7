#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# library.sh BUILD_DIR -- libmmapq as an application uses it, from a
# staged `cmake --install` (DESTDIR), nothing from the build tree:
#   1. mmapq.h alone compiles as C11 and as C++11 (-Wall -Wextra -pedantic
#      -Werror): it is standalone;
#   2. the library is libmmapq.so.2 (its SONAME, and what a program built
#      against it needs), pkg-config mmapq says version 2.x, and its
#      exported symbols are exactly the functions mmapq.h declares, each at
#      LIBMMAPQ_2 (none of libmmapq 1's);
#   3. the examples (common/queue/examples/: a producer in C, a consumer in
#      C++) build with `pkg-config mmapq` and with CMake's
#      find_package(mmapq 2), which a request for version 1 does not find;
#   4. records an example publishes reach the installed mmapq-consumer, and
#      records the installed mmapq-producer publishes reach the C++ example,
#      for both builds of the examples.
# Exit 0 pass, 1 fail, 77 skip (no C++ compiler: tests/deps.sh --test installs g++).
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

# ---- 2. libmmapq.so.2, its version and its symbols
lib=$stage$MMAPQ_LIBDIR/libmmapq.so
soname=$(readelf -d "$lib" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libmmapq.so.2 ] && [ -e "$stage$MMAPQ_LIBDIR/libmmapq.so.2" ] &&
	pass "SONAME $soname" || failed "SONAME '$soname', want libmmapq.so.2"
version=$(pkg-config --modversion mmapq)
[ "${version%%.*}" = 2 ] && pass "pkg-config mmapq: version $version" ||
	failed "pkg-config mmapq says version '$version', want 2.x"
# the functions mmapq.h declares (MMAPQ_API ... name(), over a line or two)
sed -n '/^MMAPQ_API/{N;p}' "$stage$MMAPQ_PREFIX/include/mmapq.h" | tr '\n' ' ' |
	grep -o 'mmapq_[a-z_]*(' | tr -d '(' | sort -u >"$work/declared"
nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^LIBMMAPQ' | sort >"$work/exported"
if [ -s "$work/declared" ] && cmp -s <(sed 's/@@LIBMMAPQ_2$//' "$work/exported") "$work/declared" &&
   ! grep -qv '@@LIBMMAPQ_2$' "$work/exported"; then
	pass "exported: exactly the $(wc -l <"$work/declared") functions of mmapq.h, each @@LIBMMAPQ_2"
else
	failed "the exported symbols are not mmapq.h's functions at LIBMMAPQ_2:"
	diff <(sed 's/@@LIBMMAPQ_2$//' "$work/exported") "$work/declared"
	grep -v '@@LIBMMAPQ_2$' "$work/exported"
fi
nm -D "$lib" | grep -q LIBMMAPQ_1 && failed "libmmapq 2 still has LIBMMAPQ_1 symbols"

# ---- 3. the examples, with pkg-config and with CMake
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
readelf -d "$work/producer" 2>/dev/null | grep -q 'NEEDED.*\[libmmapq\.so\.2\]' &&
	pass "a program built against it needs libmmapq.so.2" ||
	failed "the example producer does not need libmmapq.so.2"
mkdir -p "$work/v1"
printf 'cmake_minimum_required(VERSION 3.18)\nproject(v1 LANGUAGES C)\nfind_package(mmapq 1 REQUIRED)\n' \
	>"$work/v1/CMakeLists.txt"
cmake -S "$work/v1" -B "$work/v1/build" -DCMAKE_PREFIX_PATH="$stage$MMAPQ_PREFIX" \
	>"$work/v1.log" 2>&1 && failed "find_package(mmapq 1) found libmmapq 2" ||
	pass "find_package(mmapq 1) does not take libmmapq 2"

# ---- 4. records between the examples and the installed daemons
cfg=$work/mmapq.ini
printf '[queue]\npath = %s/queue\nsize = 4K\nmax_record = 32\n[consumer]\noutput = stdout\n' "$work" >"$cfg"
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

[ $fail = 0 ] && echo "library: PASS" || echo "library: FAILED"
exit $fail
