#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# analyze.sh BUILD_ROOT -- sanitizers and static analysers over mmapq.  Every
# step runs in a build directory of its own under BUILD_ROOT; the script exits
# non-zero if any step finds anything, 77 if a tool is missing.
#
#   asan      the whole fast suite built with -DMMAPQ_SANITIZE=ON (ASan+UBSan,
#             -fno-sanitize-recover): ctest -L fast -E 'systemd|fuzz_smoke'
#   valgrind  memcheck (--leak-check=full) of the lab: consumer --count 10 and
#             producer "1 2 ... 10", both under valgrind at once (the
#             consumer's exit is the condition waited for); then mmapqctl
#             status/dump and a few error paths
#   tsan      tests/queue/test_threads.c with -fsanitize=thread, the library compiled
#             in with one mapping shared by both threads (why: see the top of
#             test_threads.c), as release builds compile it (no fault points)
#             and as the fault-injection builds do (MMAPQ_FAULT_INJECTION); plus a control run with a
#             deliberate race that TSan must report, and mutation controls:
#             each acquire/release on tail weakened in turn, which
#             TSan must report too (a pattern that no longer matches, a
#             mutant that does not build or is not caught fails the step)
#   cppcheck  common/ daemons/ and this suite's own tests
#   tidy      clang-tidy, a curated check set, on common/ and daemons/ (and
#             this suite's own two test programs)
#
# Run one step only: ANALYZE_STEPS="tsan cppcheck" tests/analyze.sh DIR.
# From ctest: `ctest -L analysis` (BUILD_ROOT is <build>/tests/analysis).
#
# Nothing here sleeps: every wait is for a process's exit, bounded by
# timeout(1).
set -uo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_ROOT" >&2
	exit 64
fi
SRC=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1" || exit 1
BR=$(cd "$1" && pwd)
JOBS=$(nproc 2>/dev/null || echo 2)
STEPS=${ANALYZE_STEPS:-asan valgrind tsan cppcheck tidy}

for tool in cmake ctest gcc timeout valgrind cppcheck clang-tidy; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "analyze.sh: $tool is not installed: skipped (tests/deps.sh --test installs it)" >&2
		exit 77
	fi
done

failed=()
t_start=$(date +%s)

# Configure and build into $1 with the remaining cmake arguments; log in
# $1.build.log.  TARGETS (environment of the call): only these targets.
build() {
	local dir=$1 t=()
	shift
	[ -n "${TARGETS:-}" ] && t=(--target ${TARGETS})
	if ! cmake -S "$SRC" -B "$dir" "$@" >"$dir.build.log" 2>&1 ||
	   ! cmake --build "$dir" -j"$JOBS" "${t[@]}" >>"$dir.build.log" 2>&1; then
		echo "build of $dir failed:"
		tail -40 "$dir.build.log"
		return 1
	fi
}

# ---- ASan + UBSan: the fast suite ------------------------------------------------
# fuzz_smoke is left out: run.sh builds its own clang ASan+libFuzzer binaries,
# whatever MMAPQ_SANITIZE says, so it would only repeat the normal run.
step_asan() {
	local b=$BR/asan
	build "$b" -DMMAPQ_SANITIZE=ON -DMMAPQ_FAULT_INJECTION=ON -DMMAPQ_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo || return 1
	# sanitized code runs several times slower: bounds on time scale by 10
	ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 MMAPQ_TEST_TIME_FACTOR=10 \
		ctest --test-dir "$b" -L fast -E 'systemd|fuzz_smoke' --output-on-failure \
		      --output-log "$b/ctest.log" >"$b/ctest.out" 2>&1
	local rc=$?
	grep -E '^[0-9/ ]+Test +#|tests passed|tests failed' "$b/ctest.out"
	# sanitizer reports, wherever they came from (tests or the daemons they ran)
	local reports
	reports=$(grep -cE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$b/ctest.log")
	echo "sanitizer reports in the test output: $reports"
	if [ "$reports" -gt 0 ]; then
		grep -E -A12 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$b/ctest.log" | head -120
	fi
	[ $rc -eq 0 ] && [ "$reports" -eq 0 ]
}

# ---- valgrind memcheck --------------------------------------------------------------
step_valgrind() {
	local b=$BR/valgrind d rc=0 n=0
	TARGETS="mmapq-producer mmapq-consumer mmapqctl" build "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo || return 1
	d=$b/run
	rm -rf "$d" && mkdir -p "$d"
	printf '[consumer]\noutput = stdout\n' >"$d/q.ini"
	local bin=$b/daemons
	# every process gets its own log; any line in one is a finding
	vg() {
		timeout 120 valgrind -q --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect,possible \
			--errors-for-leak-kinds=definite,indirect,possible --track-origins=yes \
			--log-file="$d/vg.%p.log" "$@"
	}
	expect() { # expect CODE WHAT: the last command's exit status
		local got=$1 want=$2 what=$3
		if [ "$got" -ne "$want" ]; then
			echo "valgrind: $what exited $got, expected $want"
			rc=1
		fi
	}

	# the lab: either may start first; the consumer's exit ends it
	vg "$bin/mmapq-consumer" --config "$d/q.ini" --queue "$d/queue" --count 10 >"$d/lab.out" 2>"$d/lab.err" &
	local cpid=$!
	echo "1 2 3 4 5 6 7 8 9 10" | vg "$bin/mmapq-producer" --config "$d/q.ini" --queue "$d/queue"
	expect $? 0 "the lab producer"
	wait $cpid
	expect $? 0 "the lab consumer"
	if [ "$(cat "$d/lab.out")" != "$(seq 1 10)" ]; then
		echo "valgrind: the lab consumer printed:"; cat "$d/lab.out"; rc=1
	fi

	# observers, on a queue with records in it
	echo "11 12 13" | vg "$bin/mmapq-producer" --config "$d/q.ini" --queue "$d/queue"
	expect $? 0 "producer 11 12 13"
	vg "$bin/mmapqctl" --queue "$d/queue" status >"$d/status.out"; expect $? 0 "mmapqctl status"
	vg "$bin/mmapqctl" --queue "$d/queue" --json status >/dev/null; expect $? 0 "mmapqctl --json status"
	vg "$bin/mmapqctl" --queue "$d/queue" dump >"$d/dump.out"; expect $? 0 "mmapqctl dump"
	vg "$bin/mmapqctl" --queue "$d/queue" --json dump >/dev/null; expect $? 0 "mmapqctl --json dump"
	if [ "$(cat "$d/dump.out")" != "$(printf '10\t11\n11\t12\n12\t13')" ]; then
		echo "valgrind: mmapqctl dump printed:"; cat "$d/dump.out"; rc=1
	fi

	# error paths free what they allocated too
	echo "14 x 15" | vg "$bin/mmapq-producer" --config "$d/q.ini" --queue "$d/queue" 2>/dev/null
	expect $? 0 "producer with bad input"
	head -c 5000 /dev/urandom >"$d/garbage"
	vg "$bin/mmapqctl" --queue "$d/garbage" dump 2>/dev/null; expect $? 65 "mmapqctl on garbage"
	vg "$bin/mmapq-consumer" --config "$d/q.ini" --queue "$d/garbage" 2>/dev/null; expect $? 65 "consumer on garbage"
	vg "$bin/mmapqctl" --queue "$d/missing" status 2>/dev/null; expect $? 73 "mmapqctl on a missing file"
	printf '[queue]\ncapacity = 3\n' >"$d/bad.ini"
	vg "$bin/mmapq-consumer" --config "$d/bad.ini" --queue "$d/queue" 2>/dev/null; expect $? 78 "consumer, bad config"
	vg "$bin/mmapq-consumer" --config "$d/q.ini" --queue "$d/queue" --count 5 >"$d/drain.out"
	expect $? 0 "consumer draining"
	if [ "$(cat "$d/drain.out")" != "$(printf '11\n12\n13\n14\n15')" ]; then
		echo "valgrind: the draining consumer printed:"; cat "$d/drain.out"; rc=1
	fi

	local logs
	n=$(find "$d" -name 'vg.*.log' | wc -l)
	logs=$(find "$d" -name 'vg.*.log' -size +0c)
	echo "valgrind: $n processes checked, $(echo "$logs" | grep -c .) with findings"
	for f in $logs; do
		echo "---- $f"; cat "$f"
		rc=1
	done
	return $rc
}

# ---- ThreadSanitizer -----------------------------------------------------------------
step_tsan() {
	local b=$BR/tsan rc=0
	mkdir -p "$b"
	local cc=(gcc -std=gnu11 -D_GNU_SOURCE -O1 -g -fsanitize=thread -Wall -Wextra -Werror
	          -Wno-unused-parameter -I"$SRC/common/queue/include" -I"$SRC/common/queue"
	          -I"$SRC/common/config" -I"$SRC/common/records" -I"$SRC/tests/lib"
	          -DMMAPQ_THREADS_SHARED_MAPPING)
	# test_threads.c reaches into the library's handle (queue.h) and is
	# compiled with the library's sources: every .c of common/queue (fault.c
	# is empty unless MMAPQ_FAULT_INJECTION)
	local srcs=("$SRC/tests/queue/test_threads.c" "$SRC"/common/queue/*.c "$SRC/tests/lib/testutil.c")
	"${cc[@]}" "${srcs[@]}" -lpthread -o "$b/test_threads_tsan" || return 1
	"${cc[@]}" -DMMAPQ_FAULT_INJECTION=1 "${srcs[@]}" -lpthread -o "$b/test_threads_tsan_testing" || return 1
	export TSAN_OPTIONS="halt_on_error=0 exitcode=66 second_deadlock_stack=1"

	for i in 1 2 3; do
		if ! timeout 300 "$b/test_threads_tsan" >"$b/release.$i.log" 2>&1; then
			echo "tsan: release build, run $i:"; cat "$b/release.$i.log"; rc=1
		fi
	done
	[ $rc -eq 0 ] && echo "tsan: release build (library as shipped): 3 runs clean"
	# Known, reported, suppressed in the fault-injection build only: fault.c parses
	# MMAPQ_FAULT lazily into unsynchronised statics (parsed, name, hits), a
	# data race as soon as two threads pass fault points.  Release builds have
	# no fault points.  Remove the suppression once fault.c uses pthread_once.
	printf 'race:^mmapq_fault$\n' >"$b/testing.supp"
	for i in 1 2 3; do
		if ! TSAN_OPTIONS="$TSAN_OPTIONS suppressions=$b/testing.supp" \
		     timeout 300 "$b/test_threads_tsan_testing" >"$b/testing.$i.log" 2>&1; then
			echo "tsan: fault-injection build (MMAPQ_FAULT_INJECTION), run $i:"; cat "$b/testing.$i.log"; rc=1
		fi
	done
	[ $rc -eq 0 ] && echo "tsan: fault-injection build (mmapq_fault's own race suppressed): 3 runs clean"
	# the control: a real race must be reported, or this step proves nothing
	timeout 300 "$b/test_threads_tsan" --control >"$b/control.log" 2>&1
	local crc=$?
	if [ $crc -eq 66 ] && grep -q 'WARNING: ThreadSanitizer: data race' "$b/control.log"; then
		echo "tsan: control: the deliberate race was reported (the analysis sees the shared memory)"
	else
		echo "tsan: control: the deliberate race was NOT reported (exit $crc): TSan is blind here"
		cat "$b/control.log"; rc=1
	fi
	# Mutation controls: the library with one of its acquire/release orders
	# weakened to relaxed must make TSan report a data race, or this step
	# would not be checking that order at all.  Each line: name|text|
	# replacement; the text must occur on exactly one line of the
	# library's sources, common/queue/*.[ch] (a pattern that matches
	# nothing after a change of the code would otherwise check nothing),
	# the mutant (a copy of those sources with that line changed) must
	# build and TSan must report.  tail: the producer's release store in
	# advance_locked (ring.c), the consumers' acquire load in load_tail
	# (queue.h).  Not here: floor's release store (store_floor_locked) and
	# the producer's acquire load of it (load_floor_byte).  A producer
	# writes only into its reservation, and every byte of one is taken
	# under the mutex (reserve_locked; an idle one is computed under it
	# at the publish before, by the thread that later claims it), so the
	# consumer's unlock after its release and the producer's lock order
	# the consumer's reads before the producer's writes whatever floor's
	# own order: the lock-free look at floor (mmapq_reserve) only says
	# how much room a put may expect, and a put past the reservation
	# takes the mutex.  Weakened, they leave no race for TSan to see.
	# Nor the release store of a consumer's own cursor in mmapq_release,
	# whose reads floor's store in the same critical section orders.
	local m from to n file text mut=$b/mut/queue
	while IFS='|' read -r m from to; do
		n=$(cat "$SRC"/common/queue/*.[ch] | grep -cF -- "$from")
		if [ "$n" -ne 1 ]; then
			echo "tsan: mutation '$m': '$from' is on $n lines of common/queue/*.[ch], not exactly one:"
			echo "      update the pattern to the code"
			rc=1; continue
		fi
		file=$(grep -lF -- "$from" "$SRC"/common/queue/*.[ch])
		rm -rf "$mut" && mkdir -p "$mut" && cp "$SRC"/common/queue/*.[ch] "$mut/"
		text=$(<"$file")
		printf '%s\n' "${text/"$from"/"$to"}" >"$mut/${file##*/}"
		# -I of the copy first: test_threads.c's #include "queue.h" must
		# find the copy's (the copy's own .c files find it beside them)
		if ! "${cc[0]}" -I"$mut" "${cc[@]:1}" "$SRC/tests/queue/test_threads.c" "$mut"/*.c \
		     "$SRC/tests/lib/testutil.c" -lpthread -o "$b/mut/$m" 2>"$b/mut/$m.build.log"; then
			echo "tsan: mutation '$m': does not build:"; cat "$b/mut/$m.build.log"; rc=1; continue
		fi
		timeout 300 "$b/mut/$m" >"$b/mut/$m.log" 2>&1
		local mrc=$?
		if [ $mrc -eq 66 ] && grep -q 'WARNING: ThreadSanitizer: data race' "$b/mut/$m.log"; then
			echo "tsan: mutation '$m': caught ($(grep -m1 SUMMARY "$b/mut/$m.log"))"
		else
			echo "tsan: mutation '$m': NOT caught (exit $mrc; TSan must report a data race):"
			tail -20 "$b/mut/$m.log"; rc=1
		fi
	done <<'MUTATIONS'
tail-store-relaxed|producer.tail, tail + e->rsv_records, __ATOMIC_RELEASE|producer.tail, tail + e->rsv_records, __ATOMIC_RELAXED
tail-load-relaxed|producer.tail, __ATOMIC_ACQUIRE|producer.tail, __ATOMIC_RELAXED
MUTATIONS
	return $rc
}

# ---- cppcheck -------------------------------------------------------------------------
# variableScope is suppressed: it only says a declaration could move into an
# inner block.  This code declares the locals of a function or block at its
# top (as systemd's style, which the project follows, allows); narrowing
# them changes no behaviour, and the check fires on every such function.
step_cppcheck() {
	local b=$BR/cppcheck
	mkdir -p "$b"
	cppcheck --enable=warning,style,performance,portability --error-exitcode=1 --std=c11 \
		--inline-suppr --quiet --suppress=missingIncludeSystem --suppress=variableScope \
		--cppcheck-build-dir="$b" -j"$JOBS" -D_GNU_SOURCE -DMMAPQ_FAULT_INJECTION=1 \
		-I"$SRC/common/queue/include" -I"$SRC/common/queue" -I"$SRC/common/config" \
		-I"$SRC/common/records" -I"$SRC/daemons" -I"$SRC/daemons/runtime" -I"$SRC/tests/lib" \
		"$SRC/common" "$SRC/daemons" "$SRC/tests/daemons/test_attach.c" "$SRC/tests/queue/test_threads.c" \
		2>&1 | sed "s|$SRC/||"
}

# ---- clang-tidy -------------------------------------------------------------------------
# Checks: bugprone-*, clang-analyzer-* and the CERT C rules that apply to this
# code, all as errors.  Left out, each for a reason:
#   bugprone-easily-swappable-parameters    style: adjacent same-typed parameters
#   bugprone-suspicious-string-compare      `if (strcmp(a, b))` is this code's
#                                           idiom for "differs"
#   bugprone-implicit-widening-of-multiplication-result
#                                           fires only on constant expressions
#                                           (500u * 1000u * 1000u, 64u * 1024u)
#                                           whose values fit in 32 bits
#   clang-analyzer-security.insecureAPI.*   asks for Annex K (memcpy_s, ...),
#                                           which glibc does not have; every
#                                           strcpy is after a length check
#   clang-analyzer-valist.Uninitialized     false positive of clang 14: every
#                                           va_start'ed list handed to vsnprintf
#   clang-analyzer-optin.performance.Padding  the layouts are the file format
#   cert-err33-c                            unchecked printf/fprintf/fputc to
#                                           stderr/stdout: mmapqctl checks
#                                           fflush(stdout) at the end instead
TIDY_CHECKS='-*,bugprone-*,clang-analyzer-*,cert-err34-c,cert-str34-c,cert-flp30-c,cert-msc30-c,cert-msc32-c,cert-env33-c,cert-fio38-c,cert-dcl03-c,cert-sig30-c,cert-pos44-c,cert-pos47-c,cert-con36-c,cert-exp42-c,cert-flp37-c,-bugprone-easily-swappable-parameters,-bugprone-suspicious-string-compare,-bugprone-implicit-widening-of-multiplication-result,-clang-analyzer-security.insecureAPI.*,-clang-analyzer-valist.Uninitialized,-clang-analyzer-optin.performance.Padding'
step_tidy() {
	local b=$BR/tidy rc=0 f
	mkdir -p "$b"
	if ! cmake -S "$SRC" -B "$b" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DMMAPQ_FAULT_INJECTION=ON >"$b.build.log" 2>&1; then
		tail -40 "$b.build.log"
		return 1
	fi
	for f in "$SRC"/common/*/*.c "$SRC"/daemons/*/*.c "$SRC"/tests/daemons/test_attach.c "$SRC"/tests/queue/test_threads.c; do
		# signal handlers: write(2) and _exit(2) are async-signal-safe (POSIX)
		clang-tidy -p "$b" --quiet --checks="$TIDY_CHECKS" --warnings-as-errors='*' \
			--config="{CheckOptions: [{key: bugprone-signal-handler.AsyncSafeFunctionSet, value: POSIX}]}" \
			--extra-arg=-Wno-unknown-warning-option "$f" >"$b/$(basename "$(dirname "$f")")-$(basename "$f").log" 2>&1 || rc=1
		grep -E -A4 '(warning|error): ' "$b/$(basename "$(dirname "$f")")-$(basename "$f").log" | grep -v '^--$' | sed "s|$SRC/||"
	done
	return $rc
}

for s in $STEPS; do
	t0=$(date +%s)
	echo "==== $s"
	if "step_$s"; then
		echo "==== $s: OK ($(( $(date +%s) - t0 )) s)"
	else
		echo "==== $s: FAILED ($(( $(date +%s) - t0 )) s)"
		failed+=("$s")
	fi
done
echo "==== analyze.sh: $(( $(date +%s) - t_start )) s in all; failed: ${failed[*]:-none}"
[ ${#failed[@]} -eq 0 ]
