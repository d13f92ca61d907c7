/* SPDX-License-Identifier: MIT */
/* crc32c.c -- CRC-32C (crc32c.h). */
#include "crc32c.h"

#include <string.h>

#define POLY UINT32_C(0x82f63b78)

/* ---- tables: any machine ------------------------------------------------- */

static uint32_t table[8][256];

static void make_tables(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

/* Slicing by 8: eight bytes a step, from eight tables.  crc is the register
 * (pre- and post-inverted by the caller). */
static uint32_t crc_tables(uint32_t crc, const unsigned char *p, size_t n)
{
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t w;
		memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		w = __builtin_bswap64(w);
#endif
		w ^= crc;
		crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
		      table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^
		      table[2][(w >> 40) & 0xff] ^ table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
	}
	while (n--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return crc;
}

static uint32_t frame_tables(uint64_t byte, uint32_t len, const void *payload, size_t n)
{
	unsigned char head[12];

	memcpy(head, &byte, 8);
	memcpy(head + 8, &len, 4);
	return ~crc_tables(crc_tables(~UINT32_C(0), head, sizeof(head)), payload, n);
}

/* ---- the crc32 instruction: x86-64 with SSE4.2 ---------------------------- */

#if defined(__x86_64__)
/*
 * The instruction takes 8 bytes a step with a latency of three steps but a
 * throughput of one: past a few hundred bytes, three streams run side by
 * side over three blocks, and the first two are then shifted over the
 * blocks after them (a shift by a block of zeros is linear in the crc, a
 * table lookup per byte of it) and combined (Mark Adler's crc32c.c does the
 * same).  Small records, the common case, take one short loop.
 */
#define LONG  8192u
#define SHORT 256u
_Static_assert(MMAPQ_CRC32C_STREAMS_MIN == 3 * SHORT, "the three streams start at 3 * SHORT");

static uint32_t zeros_long[4][256], zeros_short[4][256];

/* GF(2) 32x32 matrices: the crc after a number of zero bits */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;

	for (; vec; vec >>= 1, mat++)
		if (vec & 1)
			sum ^= *mat;
	return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat)
{
	for (int n = 0; n < 32; n++)
		square[n] = gf2_times(mat, mat[n]);
}

/* The tables that shift a crc over len zero bytes (len a power of two),
 * byte by byte of the crc. */
static void make_zeros(uint32_t zeros[4][256], size_t len)
{
	uint32_t odd[32], even[32], *op;

	odd[0] = POLY; /* one zero bit */
	for (int n = 1; n < 32; n++)
		odd[n] = UINT32_C(1) << (n - 1);
	gf2_square(even, odd); /* two */
	gf2_square(odd, even); /* four */
	for (;;) {             /* then one byte, two, four ... */
		gf2_square(even, odd);
		op = even;
		if (!(len >>= 1))
			break;
		gf2_square(odd, even);
		op = odd;
		if (!(len >>= 1))
			break;
	}
	for (uint32_t n = 0; n < 256; n++) {
		zeros[0][n] = gf2_times(op, n);
		zeros[1][n] = gf2_times(op, n << 8);
		zeros[2][n] = gf2_times(op, n << 16);
		zeros[3][n] = gf2_times(op, n << 24);
	}
}

static inline uint32_t shift(const uint32_t zeros[4][256], uint32_t crc)
{
	return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^
	       zeros[3][crc >> 24];
}

__attribute__((target("sse4.2"))) static inline uint64_t load64(const unsigned char *p)
{
	uint64_t w;
	memcpy(&w, p, 8);
	return w;
}

/* blocks of three times len bytes, three streams; returns the register */
__attribute__((target("sse4.2"))) static inline uint64_t
three_streams(uint64_t c0, const unsigned char **pp, size_t *np, size_t len,
              const uint32_t zeros[4][256])
{
	const unsigned char *p = *pp;
	size_t n = *np;

	while (n >= 3 * len) {
		uint64_t c1 = 0, c2 = 0;
		const unsigned char *end = p + len;

		do {
			c0 = __builtin_ia32_crc32di(c0, load64(p));
			c1 = __builtin_ia32_crc32di(c1, load64(p + len));
			c2 = __builtin_ia32_crc32di(c2, load64(p + 2 * len));
			p += 8;
		} while (p < end);
		c0 = shift(zeros, (uint32_t)c0) ^ c1;
		c0 = shift(zeros, (uint32_t)c0) ^ c2;
		p += 2 * len;
		n -= 3 * len;
	}
	*pp = p;
	*np = n;
	return c0;
}

__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const unsigned char *p,
                                                            size_t n)
{
	uint64_t c = crc;

	if (n >= MMAPQ_CRC32C_STREAMS_MIN) {
		c = three_streams(c, &p, &n, LONG, (const uint32_t(*)[256])zeros_long);
		c = three_streams(c, &p, &n, SHORT, (const uint32_t(*)[256])zeros_short);
	}
	return (uint32_t)mmapq_crc32c_hw_short(c, p, n);
}

__attribute__((target("sse4.2"))) static uint32_t frame_sse42(uint64_t byte, uint32_t len,
                                                              const void *payload, size_t n)
{
	uint64_t c = __builtin_ia32_crc32di(~UINT32_C(0), byte);

	c = __builtin_ia32_crc32si((uint32_t)c, len);
	return ~crc_sse42((uint32_t)c, payload, n);
}
#endif

/* ---- chosen once, when the library is loaded ------------------------------ */

typedef uint32_t crc_fn(uint32_t crc, const unsigned char *p, size_t n);
typedef mmapq_frame_crc_fn frame_fn;

static crc_fn *chosen_crc;
static frame_fn *chosen_frame;
bool mmapq_crc32c_hw;

__attribute__((constructor)) static void choose(void)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2")) {
		make_zeros(zeros_long, LONG);
		make_zeros(zeros_short, SHORT);
		chosen_crc = crc_sse42;
		chosen_frame = frame_sse42;
		mmapq_crc32c_hw = true;
		return;
	}
#endif
	make_tables();
	chosen_crc = crc_tables;
	chosen_frame = frame_tables;
}

uint32_t mmapq_crc32c(uint32_t crc, const void *data, size_t n)
{
	return ~chosen_crc(~crc, data, n);
}

uint32_t mmapq_crc32c_frame(uint64_t byte, uint32_t len, const void *payload, size_t n)
{
	return chosen_frame(byte, len, payload, n);
}
