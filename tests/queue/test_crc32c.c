/* SPDX-License-Identifier: MIT */
/*
 * test_crc32c -- each instance of the frames' CRC-32C (common/queue/crc32c.c)
 * gives the CRC-32C of a bitwise reference, bit for bit: the checksum is
 * part of the file format, and the library picks one instance per CPU, so
 * each is called here directly, whatever this CPU would have picked.
 *
 * A case per instance (skipped, 77, on a CPU that cannot run it):
 *   vpclmul    folded with VPCLMULQDQ (AVX-512, four 16-byte lanes a register)
 *   pclmul     folded with PCLMULQDQ
 *   streams    the crc32 instruction, three streams from 768 bytes
 *   tables     eight tables, any machine
 * and library, the instance the library chose (mmapq_crc32c,
 * mmapq_crc32c_frame, and where it may run mmapq_crc32c_frame_hw, the
 * inline loop of ring.c's hot paths).  Each checks:
 *   - every length 0..4096 at every alignment 0..63 of the input;
 *   - the same split in two at a point that moves with the length, the
 *     second call chained on the first's crc (crc(crc(0, a), b) is
 *     crc(0, a b));
 *   - random lengths up to 1 MiB at random alignments, and 1 MiB + 1;
 *   - the frame form (byte position, len, payload) for every payload
 *     length 0..4096, random byte positions and lens.
 * The random inputs come from a seed printed at the start
 * (MMAPQ_CRC_SEED=N repeats a run).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crc32c.h"
#include "testutil.h"

#define EXPECT(cond, ...) TU_EXPECT(NULL, cond, __VA_ARGS__)
#define EXPECT_INT(a, b) TU_EXPECT_INT(NULL, a, b)

#define SMALL 4096u
#define ALIGNS 64u
#define BIG (1u << 20)

/* CRC-32C bit by bit, register in and out (no inversions): shares nothing
 * with crc32c.c */
static uint32_t reg_bits(uint32_t reg, const uint8_t *p, size_t n)
{
	while (n--) {
		reg ^= *p++;
		for (int k = 0; k < 8; k++)
			reg = (reg >> 1) ^ (0x82f63b78u & (0u - (reg & 1)));
	}
	return reg;
}

static uint32_t crc_bits(uint32_t crc, const uint8_t *p, size_t n)
{
	return ~reg_bits(~crc, p, n);
}

static uint64_t rng;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint8_t *buf; /* BIG + ALIGNS + 1 random bytes */

static void setup(void)
{
	const char *s = getenv("MMAPQ_CRC_SEED");

	rng = s ? strtoull(s, NULL, 0) : 0x9e3779b97f4a7c15u ^ (uint64_t)time(NULL);
	if (!rng)
		rng = 1;
	printf("MMAPQ_CRC_SEED=%" PRIu64 "\n", rng);
	fflush(stdout);
	buf = malloc(BIG + ALIGNS + 1);
	if (!buf)
		tu_die("malloc");
	for (size_t i = 0; i < BIG + ALIGNS + 1; i++)
		buf[i] = (uint8_t)next();
}

/* crc(crc, p, n) as the instance computes it, the inversions around */
typedef uint32_t crc_call(const struct mmapq_crc32c_instance *in, uint32_t crc, const uint8_t *p,
                          size_t n);

static uint32_t call_update(const struct mmapq_crc32c_instance *in, uint32_t crc, const uint8_t *p,
                            size_t n)
{
	return ~in->update(~crc, p, n);
}

static uint32_t call_library(const struct mmapq_crc32c_instance *in, uint32_t crc, const uint8_t *p,
                             size_t n)
{
	return mmapq_crc32c(crc, p, n);
}

static void check_crc(const char *name, const struct mmapq_crc32c_instance *in, crc_call *crc)
{
	/* every length at every alignment; chained at a point that moves */
	for (size_t a = 0; a < ALIGNS; a++) {
		const uint8_t *p = buf + a;
		uint32_t want = 0;

		for (size_t n = 0; n <= SMALL; n++) {
			size_t cut = n ? (n * 37 + a) % (n + 1) : 0;
			uint32_t got = crc(in, 0, p, n);

			if (n)
				want = crc_bits(want, p + n - 1, 1);
			EXPECT(got == want, "%s: %zu bytes at alignment %zu: 0x%08" PRIx32 ", not 0x%08" PRIx32,
			       name, n, a, got, want);
			got = crc(in, crc(in, 0, p, cut), p + cut, n - cut);
			EXPECT(got == want,
			       "%s: %zu bytes at alignment %zu, chained at %zu: 0x%08" PRIx32 ", not 0x%08" PRIx32,
			       name, n, a, cut, got, want);
		}
	}
	/* long ones; a crc going in that is not 0 */
	for (int i = 0; i <= 24; i++) {
		size_t a = i == 24 ? 0 : next() % ALIGNS, n = i == 24 ? BIG + 1 : next() % (BIG + 1);
		uint32_t init = (uint32_t)next(), want = crc_bits(init, buf + a, n),
		         got = crc(in, init, buf + a, n);

		EXPECT(got == want,
		       "%s: %zu bytes at alignment %zu, crc 0x%08" PRIx32 " in: 0x%08" PRIx32
		       ", not 0x%08" PRIx32,
		       name, n, a, init, got, want);
	}
}

/* the frame form */
static void check_frame(const char *name, mmapq_frame_crc_fn *frame)
{
	for (uint32_t n = 0; n <= SMALL; n++) {
		uint64_t byte = next();
		uint32_t len = (uint32_t)next(), want;
		uint8_t h[12];
		const uint8_t *p = buf + n % ALIGNS;

		memcpy(h, &byte, 8);
		memcpy(h + 8, &len, 4);
		want = crc_bits(crc_bits(0, h, 12), p, n);
		EXPECT(frame(byte, len, p, n) == want, "%s: frame of %" PRIu32 " bytes at %" PRIu64, name, n,
		       byte);
	}
}

static void check_instance(const char *name)
{
	const struct mmapq_crc32c_instance *in = mmapq_crc32c_instance(name);

	if (!in)
		tu_skip("this CPU cannot run the %s instance", name);
	check_crc(name, in, call_update);
	check_frame(name, in->frame);
}

static void case_vpclmul(void)
{
	check_instance("vpclmul");
}

static void case_pclmul(void)
{
	check_instance("pclmul");
}

static void case_streams(void)
{
	check_instance("streams");
}

static void case_tables(void)
{
	check_instance("tables");
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t frame_hw(uint64_t byte, uint32_t len,
                                                           const void *payload, size_t n)
{
	return mmapq_crc32c_frame_hw(byte, len, payload, n);
}
#endif

static void case_library(void)
{
	static const char check_value[] = "123456789";

	EXPECT_INT(mmapq_crc32c(0, check_value, 9), 0xe3069283u);
	check_crc("library", NULL, call_library);
	check_frame("library", mmapq_crc32c_frame);
#if defined(__x86_64__)
	if (mmapq_crc32c_hw)
		check_frame("library, inline", frame_hw);
#endif
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"vpclmul", case_vpclmul}, {"pclmul", case_pclmul}, {"streams", case_streams},
		{"tables", case_tables},   {"library", case_library},
	};

	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
