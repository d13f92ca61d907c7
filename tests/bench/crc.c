/* SPDX-License-Identifier: MIT */
/*
 * mmapq_bench_crc -- the frames' CRC-32C alone: GB/s of each instance of
 * common/queue/crc32c.c by payload length, as ring.c's loops call it (a
 * frame's crc: byte position, len, then the payload; one call per frame, the
 * frames independent of each other), and of the short loop of the crc32
 * instruction that mmapq_crc32c_frame_hw inlines below
 * MMAPQ_CRC32C_LONG_MIN, at every length.  Where the inline loop and the
 * folded instance cross is where MMAPQ_CRC32C_LONG_MIN belongs.
 *
 *   mmapq_bench_crc [--rounds N] [--sizes A,B,...]
 *
 * The payload stays in the L1 or L2 cache (the same bytes every call): this
 * is the instructions' speed, not memory's.  Each cell is the median of N
 * rounds (default 7) of about 5 ms each, the instances taking turns within
 * a round; an instance this CPU cannot run is left out.  No timing is
 * asserted anywhere: this is for reading.  Before timing a length, the
 * paths must agree on its crc (exit 1 otherwise; test_crc32c is the test of
 * their results).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crc32c.h"

#define MAX_SIZES 32
#define MAX_ROUNDS 99

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile uint32_t sink;

/* The seconds that calls frames of n bytes at p took, each one's crc the
 * value of call (of i, the frame's number): a macro, so that the inline
 * loop is inlined in the loop as in ring.c's. */
#define TIMED(call)                                                                                \
	({                                                                                         \
		uint32_t x_ = 0;                                                                   \
		double t_ = now();                                                                 \
		for (long i = 0; i < calls; i++)                                                   \
			x_ ^= (call);                                                              \
		sink = x_;                                                                         \
		now() - t_;                                                                        \
	})

#if defined(__x86_64__)
/* the inline short loop at any length, as mmapq_crc32c_frame_hw runs it
 * below MMAPQ_CRC32C_LONG_MIN */
__attribute__((target("sse4.2"))) static inline uint32_t
frame_inline(uint64_t byte, uint32_t len, const void *payload, size_t n)
{
	uint64_t c = __builtin_ia32_crc32di(~UINT32_C(0), byte);

	c = __builtin_ia32_crc32si((uint32_t)c, len);
	return ~(uint32_t)mmapq_crc32c_hw_short(c, payload, n);
}

__attribute__((target("sse4.2"), noinline)) static double
run_inline(const unsigned char *p, size_t n, long calls)
{
	return TIMED(frame_inline((uint64_t)i, (uint32_t)n, p, n));
}
#endif

__attribute__((noinline)) static double
run_fn(mmapq_frame_crc_fn *f, const unsigned char *p, size_t n, long calls)
{
	return TIMED(f((uint64_t)i, (uint32_t)n, p, n));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const char *const names[] = {"inline", "vpclmul", "pclmul", "streams", "tables"};
	enum { NPATHS = sizeof(names) / sizeof(names[0]) };
	size_t sizes[MAX_SIZES] = {16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 4096, 16384,
	                           65536, 1048576};
	int nsizes = 16, rounds = 7;
	mmapq_frame_crc_fn *fn[NPATHS] = {0};
	bool have[NPATHS] = {0};
	unsigned char *buf;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
			rounds = atoi(argv[++i]);
			if (rounds < 1 || rounds > MAX_ROUNDS) {
				fprintf(stderr, "mmapq_bench_crc: --rounds %s: 1 to %d\n", argv[i], MAX_ROUNDS);
				return 2;
			}
		} else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) {
			char *s = argv[++i], *end;

			for (nsizes = 0; *s && nsizes < MAX_SIZES; nsizes++) {
				unsigned long v = strtoul(s, &end, 10);

				if (end == s || (*end && *end != ',') || v > (1ul << 22)) {
					fprintf(stderr, "mmapq_bench_crc: --sizes: '%s' is not a length up to 4 MiB\n",
					        s);
					return 2;
				}
				sizes[nsizes] = v;
				s = *end ? end + 1 : end;
			}
		} else {
			fprintf(stderr, "usage: mmapq_bench_crc [--rounds N] [--sizes A,B,...]\n");
			return 2;
		}
	}
#if defined(__x86_64__)
	have[0] = mmapq_crc32c_hw;
#endif
	for (int k = 1; k < NPATHS; k++) {
		const struct mmapq_crc32c_instance *in = mmapq_crc32c_instance(names[k]);

		if (in) {
			fn[k] = in->frame;
			have[k] = true;
		}
	}
	buf = malloc(1u << 22);
	if (!buf) {
		perror("mmapq_bench_crc: malloc");
		return 1;
	}
	for (size_t i = 0; i < (1u << 22); i++)
		buf[i] = (unsigned char)(i * 131 + 7);

	printf("GB/s of a frame's CRC-32C by payload length, median of %d rounds (payload in cache)\n",
	       rounds);
	printf("%10s", "bytes");
	for (int k = 0; k < NPATHS; k++)
		if (have[k])
			printf(" %9s", names[k]);
	printf("\n");
	for (int s = 0; s < nsizes; s++) {
		size_t n = sizes[s];
		double gbs[NPATHS][MAX_ROUNDS];
		long calls = 1;

		/* every path against tables, the one that runs anywhere */
		for (int k = 0; k < NPATHS - 1; k++) {
			uint32_t want = fn[NPATHS - 1](7, (uint32_t)n, buf, n), got = want;

#if defined(__x86_64__)
			if (k == 0 && have[0])
				got = frame_inline(7, (uint32_t)n, buf, n);
#endif
			if (k > 0 && have[k])
				got = fn[k](7, (uint32_t)n, buf, n);
			if (got != want) {
				fprintf(stderr, "mmapq_bench_crc: %s and tables disagree on %zu bytes\n",
				        names[k], n);
				return 1;
			}
		}
		/* calls for about 5 ms of the slowest path taken */
		for (;;) {
			double t = run_fn(fn[NPATHS - 1], buf, n, calls);

			if (t > 0.005 || calls > (1l << 30))
				break;
			calls *= 2;
		}
		for (int r = 0; r < rounds; r++)
			for (int k = 0; k < NPATHS; k++) {
				double t;

				if (!have[k])
					continue;
#if defined(__x86_64__)
				t = k == 0 ? run_inline(buf, n, calls) : run_fn(fn[k], buf, n, calls);
#else
				t = run_fn(fn[k], buf, n, calls);
#endif
				gbs[k][r] = (double)(n + 12) * (double)calls / t / 1e9;
			}
		printf("%10zu", n);
		for (int k = 0; k < NPATHS; k++)
			if (have[k]) {
				qsort(gbs[k], (size_t)rounds, sizeof(double), cmp_double);
				printf(" %9.2f", gbs[k][rounds / 2]);
			}
		printf("\n");
		fflush(stdout);
	}
	free(buf);
	return 0;
}
