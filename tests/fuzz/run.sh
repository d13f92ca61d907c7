#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/fuzz/run.sh -- build the libFuzzer targets with clang and run them.
#
#   tests/fuzz/run.sh                  build, replay the committed seeds, then
#                                      fuzz each target for 20 s (CI, ctest
#                                      test fuzz_smoke)
#   tests/fuzz/run.sh --time S         fuzz each target for S seconds
#   tests/fuzz/run.sh --long S         the longer run: all targets at once,
#                                      S seconds each, corpus kept across runs
#                                      in OUT/long-corpus, figures in
#                                      OUT/long-summary.txt
#   tests/fuzz/run.sh --replay-only    build and replay the seeds, no fuzzing
#   tests/fuzz/run.sh --target NAME    only this target (repeatable)
#   tests/fuzz/run.sh --coverage       line coverage of the library by the
#                                      committed seeds plus OUT/corpus and
#                                      OUT/long-corpus (needs llvm-cov)
#   tests/fuzz/run.sh --make-seeds     rewrite the committed seed corpora
#                                      (tests/fuzz/mkseeds.c; crash-* kept)
#   tests/fuzz/run.sh --out DIR        build and work directory
#                                      (default: build/fuzz in the source tree)
#
# The targets are compiled here with clang directly (the main build uses
# gcc, which has no libFuzzer): -fsanitize=fuzzer,address,undefined, the
# library sources from common/ and -linih.  Exit 0: no finding; 1: a crash,
# leak, timeout or failed invariant (the input is saved under
# OUT/artifacts/, and the log under OUT/logs/); 77: skipped, clang or its
# libFuzzer runtime is missing (Debian: clang, libclang-rt-14-dev).
set -euo pipefail
# The whole script is one compound command, read before it runs: editing
# this file while a long run goes on cannot break that run.
{
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
out="$src/build/fuzz"
fuzz_time=20
long=0
replay_only=0
make_seeds=0
coverage=0
targets=()

usage() {
	sed -n '4,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
	case "$1" in
	--time) fuzz_time=$2; shift 2 ;;
	--long) long=1; fuzz_time=$2; shift 2 ;;
	--replay-only) replay_only=1; shift ;;
	--make-seeds) make_seeds=1; shift ;;
	--coverage) coverage=1; shift ;;
	--target) targets+=("$2"); shift 2 ;;
	--out) out=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
case "$fuzz_time" in
''|*[!0-9]*) echo "run.sh: --time/--long needs a number of seconds" >&2; exit 2 ;;
esac
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_queue_file fuzz_parse fuzz_config fuzz_clients)
for t in "${targets[@]}"; do
	[ -f "$here/$t.c" ] || { echo "run.sh: no target '$t'" >&2; exit 2; }
done

mkdir -p "$out/bin" "$out/obj" "$out/logs" "$out/artifacts"
# The targets' scratch files (on tmpfs when there is one), removed at the end
# even when a target dies on a finding and cannot clean up after itself.
scratch_base=/dev/shm
[ -d "$scratch_base" ] && [ -w "$scratch_base" ] || scratch_base=${TMPDIR:-/tmp}
MMAPQ_FUZZ_TMPDIR=$(mktemp -d "$scratch_base/mmapq-fuzz-run.XXXXXX")
export MMAPQ_FUZZ_TMPDIR
trap 'rm -rf -- "$MMAPQ_FUZZ_TMPDIR"' EXIT

# ---- toolchain -------------------------------------------------------------
cc=${CC_FUZZ:-}
if [ -z "$cc" ]; then
	for c in clang clang-14 clang-15 clang-16; do
		if command -v "$c" >/dev/null 2>&1; then cc=$c; break; fi
	done
fi
if [ -z "$cc" ]; then
	echo "run.sh: SKIP: no clang (Debian: apt-get install clang libclang-rt-14-dev)" >&2
	exit 77
fi
san="-fsanitize=fuzzer,address,undefined"
probe="$out/obj/probe"
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
	>"$probe.c"
if ! "$cc" $san "$probe.c" -o "$probe" >"$probe.log" 2>&1; then
	echo "run.sh: SKIP: $cc cannot build a libFuzzer target (Debian: libclang-rt-14-dev):" >&2
	sed 's/^/  /' "$probe.log" >&2
	exit 77
fi
inih_cflags=()
inih_libs=(-linih)
if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists inih 2>/dev/null; then
	read -r -a inih_cflags <<<"$(pkg-config --cflags inih)"
	read -r -a inih_libs <<<"$(pkg-config --libs inih)"
fi

# ---- build -------------------------------------------------------------------
incdirs=(-I"$src/common/queue/include" -I"$src/common/queue" -I"$src/common/records" -I"$src/common/config")
cflags=(-std=gnu11 -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=all -D_GNU_SOURCE
	-Wall -Wextra -Wno-unused-parameter "${incdirs[@]}" "${inih_cflags[@]}")
# the library's layers (common/*/), paths below common/: the queue is every
# .c of common/queue
libsrc=("$src"/common/queue/*.c)
libsrc=("${libsrc[@]#"$src/common/"}" records/parse.c
	config/config.c config/keys.c config/values.c config/reader.c config/dropins.c)
# fuzz_queue_file watches the library's mapping of the file through these
extra_ldflags() {
	case "$1" in
	fuzz_queue_file) echo "-Wl,--wrap=mmap -Wl,--wrap=munmap" ;;
	fuzz_clients) echo "-lsystemd" ;;
	esac
}
# fuzz_clients drives the producer's socket server: its sources, paths
# below daemons/
daemon_src=(producer/clients.c producer/source.c producer/input.c producer/protocol.c runtime/log.c runtime/service.c)
extra_sources() {
	case "$1" in
	fuzz_clients) printf '%s\n' "${daemon_src[@]/#/$src/daemons/}" ;;
	esac
}

# out of date: missing, or older than any source, header or this script
stale() {
	[ ! -e "$1" ] && return 0
	[ -n "$(find "$src/common" "$src/daemons" "$here" -maxdepth 3 \( -name '*.[ch]' -o -name '*.def' -o -name run.sh \) \
		-newer "$1" -print -quit)" ]
}

objs=()
pids=()
for f in "${libsrc[@]}"; do
	o="$out/obj/$(basename "${f%.c}").o"
	objs+=("$o")
	if stale "$o"; then
		"$cc" "${cflags[@]}" -fsanitize=fuzzer-no-link,address,undefined -c "$src/common/$f" -o "$o" &
		pids+=($!)
	fi
done
for p in "${pids[@]}"; do wait "$p" || { echo "run.sh: building the library failed" >&2; exit 1; }; done
pids=()
for t in "${targets[@]}"; do
	b="$out/bin/$t"
	if stale "$b"; then
		# shellcheck disable=SC2046 # word splitting intended
		"$cc" "${cflags[@]}" -I"$src/daemons" -I"$src/daemons/runtime" $san "$here/$t.c" $(extra_sources "$t") "${objs[@]}" $(extra_ldflags "$t") \
			"${inih_libs[@]}" -lpthread -o "$b" &
		pids+=($!)
	fi
done
for p in "${pids[@]}"; do wait "$p" || { echo "run.sh: building a target failed" >&2; exit 1; }; done

if [ "$make_seeds" -eq 1 ]; then
	"$cc" -std=gnu11 -g -O1 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter "${incdirs[@]}" \
		"${inih_cflags[@]}" "$here/mkseeds.c" "${libsrc[@]/#/$src/common/}" "${inih_libs[@]}" -lpthread \
		-o "$out/bin/mkseeds"
	scratch=$(mktemp -d)
	for t in fuzz_queue_file fuzz_parse fuzz_config; do
		mkdir -p "$here/corpus/$t"
		find "$here/corpus/$t" -type f ! -name 'crash-*' -delete
	done
	"$out/bin/mkseeds" "$here/corpus" "$scratch"
	rmdir "$scratch"
	cp "$src/config/mmapq.ini" "$here/corpus/fuzz_config/shipped-mmapq.ini"
	for f in "$src"/tests/config/*.ini; do
		cp "$f" "$here/corpus/fuzz_config/tests-$(basename "$f")"
	done
	for t in fuzz_queue_file fuzz_parse fuzz_config; do
		echo "run.sh: $t: $(find "$here/corpus/$t" -type f | wc -l) seeds," \
			"$(du -sb "$here/corpus/$t" | cut -f1) bytes"
	done
	exit 0
fi

if [ "$coverage" -eq 1 ]; then
	profdata=$(command -v llvm-profdata || command -v llvm-profdata-14 || true)
	llvmcov=$(command -v llvm-cov || command -v llvm-cov-14 || true)
	if [ -z "$profdata" ] || [ -z "$llvmcov" ]; then
		echo "run.sh: --coverage needs llvm-profdata and llvm-cov (Debian: llvm)" >&2
		exit 2
	fi
	mkdir -p "$out/cov"
	for t in "${targets[@]}"; do
		b="$out/cov/$t"
		# shellcheck disable=SC2046 # word splitting intended
		"$cc" -std=gnu11 -O1 -D_GNU_SOURCE "${incdirs[@]}" -I"$src/daemons" -I"$src/daemons/runtime" "${inih_cflags[@]}" \
			-fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping "$here/$t.c" \
			$(extra_sources "$t") "${libsrc[@]/#/$src/common/}" $(extra_ldflags "$t") \
			"${inih_libs[@]}" -lpthread -o "$b"
		dirs=("$here/corpus/$t")
		for d in "$out/corpus/$t" "$out/long-corpus/$t"; do [ -d "$d" ] && dirs+=("$d"); done
		rm -f "$out/cov/$t".*.profraw
		LLVM_PROFILE_FILE="$out/cov/$t.%p.profraw" "$b" -runs=0 "${dirs[@]}" \
			>"$out/logs/$t.cov.log" 2>&1 || { echo "run.sh: $t: coverage run failed" >&2; exit 1; }
		"$profdata" merge -o "$out/cov/$t.profdata" "$out/cov/$t".*.profraw
		case "$t" in
		fuzz_queue_file) files=("$src"/common/queue/*.c) ;;
		fuzz_parse) files=("$src/common/records/parse.c") ;;
		fuzz_config) files=("$src/common/config/"*.c) ;;
		fuzz_clients) files=("$src/daemons/producer/clients.c" "$src/daemons/producer/source.c") ;;
		esac
		echo "== $t: inputs from ${dirs[*]}"
		"$llvmcov" report "$b" -instr-profile="$out/cov/$t.profdata" "${files[@]}" \
			| tee "$out/cov/$t.txt"
	done
	exit 0
fi

# ---- run ---------------------------------------------------------------------
max_len() {
	case "$1" in
	fuzz_queue_file) echo 16384 ;;
	fuzz_parse) echo 8192 ;;
	*) echo 4096 ;;
	esac
}

common_opts=(-timeout=10 -error_exitcode=1 -timeout_exitcode=1 -rss_limit_mb=2048
	-print_final_stats=1)

failed=0

replay() {
	local t=$1 seeds="$here/corpus/$1" log="$out/logs/$1.replay.log"
	local files=()

	[ -d "$seeds" ] && mapfile -t files < <(find "$seeds" -type f | sort)
	if [ ${#files[@]} -eq 0 ]; then
		echo "run.sh: $t: no committed seeds in $seeds" >&2
		return 1
	fi
	if ! "$out/bin/$t" "${common_opts[@]}" -artifact_prefix="$out/artifacts/$t-" \
		"${files[@]}" >"$log" 2>&1; then
		echo "run.sh: $t: FAILED replaying the committed seeds; log: $log" >&2
		tail -n 40 "$log" >&2
		return 1
	fi
	echo "run.sh: $t: replayed ${#files[@]} committed seeds: ok"
}

# $1 target, $2 corpus dir, $3 log
fuzz() {
	local t=$1 corpus=$2 log=$3 dict=()

	mkdir -p "$corpus"
	[ -f "$here/$t.dict" ] && dict=(-dict="$here/$t.dict")
	"$out/bin/$t" "${common_opts[@]}" -max_total_time="$fuzz_time" -max_len="$(max_len "$t")" \
		-artifact_prefix="$out/artifacts/$t-" "${dict[@]}" \
		"$corpus" "$here/corpus/$t" >"$log" 2>&1
}

stat_of() { # $1 log, $2 stat name
	awk -v k="stat::$2:" '$1 == k { print $2 }' "$1" | tail -n 1
}

summary() { # $1 target, $2 corpus, $3 log, $4 status
	local t=$1 corpus=$2 log=$3 st=$4 files bytes cov ft
	files=$(find "$corpus" -type f | wc -l)
	bytes=$(du -sb "$corpus" | cut -f1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	printf '%-16s %6ss %12s execs %8s/s  corpus %5s files %9s bytes  cov %5s ft %6s  rss %5s MB  %s\n' \
		"$t" "$fuzz_time" "$(stat_of "$log" number_of_executed_units)" \
		"$(stat_of "$log" average_exec_per_sec)" "$files" "$bytes" "${cov:-?}" "${ft:-?}" \
		"$(stat_of "$log" peak_rss_mb)" "$([ "$st" -eq 0 ] && echo 'no findings' || echo FAILED)"
}

report_failure() { # $1 target, $2 log
	echo "run.sh: $1: FAILED; log: $2; inputs: $out/artifacts/$1-*" >&2
	grep -E 'ERROR: |invariant failed|SUMMARY|artifact_prefix|Test unit written' "$2" | head -n 20 >&2 || true
	tail -n 30 "$2" >&2
}

for t in "${targets[@]}"; do
	replay "$t" || failed=1
done
if [ "$replay_only" -eq 1 ] || [ "$failed" -ne 0 ]; then
	exit "$failed"
fi

if [ "$long" -eq 0 ]; then
	for t in "${targets[@]}"; do
		log="$out/logs/$t.log"
		st=0
		fuzz "$t" "$out/corpus/$t" "$log" || st=$?
		summary "$t" "$out/corpus/$t" "$log" "$st"
		if [ "$st" -ne 0 ]; then
			report_failure "$t" "$log"
			failed=1
		fi
	done
	exit "$failed"
fi

# --long: every target at once, in the background; the corpus grows run by run
declare -A lpid
for t in "${targets[@]}"; do
	fuzz "$t" "$out/long-corpus/$t" "$out/logs/$t.long.log" &
	lpid[$t]=$!
done
sum="$out/long-summary.txt"
echo "# tests/fuzz/run.sh --long $fuzz_time, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $("$cc" --version | head -n 1)" \
	| tee "$sum"
for t in "${targets[@]}"; do
	st=0
	wait "${lpid[$t]}" || st=$?
	summary "$t" "$out/long-corpus/$t" "$out/logs/$t.long.log" "$st" | tee -a "$sum"
	if [ "$st" -ne 0 ]; then
		report_failure "$t" "$out/logs/$t.long.log"
		failed=1
	fi
done
exit "$failed"
}
