/* SPDX-License-Identifier: MIT */
/* crc32c.c -- CRC-32C (crc32c.h). */
#include "crc32c.h"

#include <string.h>

#define POLY UINT32_C(0x82f63b78)

typedef mmapq_crc32c_update_fn crc_fn;

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
#include <immintrin.h>

/*
 * The instruction takes 8 bytes a step with a latency of three steps but a
 * throughput of one: past a few hundred bytes, three streams run side by
 * side over three blocks, and the first two are then shifted over the
 * blocks after them (a shift by a block of zeros is linear in the crc, a
 * table lookup per byte of it) and combined (Mark Adler's crc32c.c does the
 * same).  Small records, the common case, take one short loop.  The CPUs
 * with carry-less multiplication fold instead (below): this instance is
 * for those without it.
 */
#define LONG  8192u
#define SHORT 256u
#define STREAMS_MIN (3 * SHORT)

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

static void make_streams(void)
{
	make_zeros(zeros_long, LONG);
	make_zeros(zeros_short, SHORT);
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

	if (n >= STREAMS_MIN) {
		c = three_streams(c, &p, &n, LONG, (const uint32_t(*)[256])zeros_long);
		c = three_streams(c, &p, &n, SHORT, (const uint32_t(*)[256])zeros_short);
	}
	return (uint32_t)mmapq_crc32c_hw_short(c, p, n);
}

/* A frame's crc with crc_fn f, its header with the crc32 instruction */
#define FRAME_WITH(f, byte, len, payload, n)                                                 \
	(~f((uint32_t)__builtin_ia32_crc32si(                                                  \
	        (uint32_t)__builtin_ia32_crc32di(~UINT32_C(0), (byte)), (len)),                \
	    (payload), (n)))

__attribute__((target("sse4.2"))) static uint32_t frame_sse42(uint64_t byte, uint32_t len,
                                                              const void *payload, size_t n)
{
	return FRAME_WITH(crc_sse42, byte, len, payload, n);
}

/* ---- folding with carry-less multiplication: PCLMULQDQ, VPCLMULQDQ -------- */

/*
 * The method of Intel's "Fast CRC Computation for Generic Polynomials Using
 * PCLMULQDQ Instruction" (zlib-ng, ISA-L and Linux fold the same way).  A
 * CRC is the remainder of the message's polynomial times x^32 modulo P, so
 * any 128 bits of message may be replaced by anything congruent to them
 * modulo P.  Bit order is reflected: bit i of a 128-bit register (bytes
 * little-endian) is the coefficient of x^(127-i), so its low quadword L
 * holds the higher powers: R = L x^64 + H.  Moving R d bits on (R x^d, to
 * be added to the data d bits later) is two carry-less products of a 64-bit
 * half by a 32-bit constant, 95 bits each:
 *
 *   R x^d = L x^(d+64) + H x^d  ==  L (x^(d+31) mod P) x^33 + H (x^(d-33) mod P) x^33
 *
 * where x^33 is what the reflected product adds by itself: the product of
 * two reflected 64-bit values is reflected over 127 bits, one short of the
 * 128 bits of the register it fills (x), and a 32-bit constant in the low
 * half of a reflected 64-bit operand is its polynomial times x^32.
 *
 * Several registers fold side by side over consecutive 16-byte (xmm) or
 * 64-byte (zmm, four 16-byte lanes) blocks, each d bits on to its own next
 * block; at the end each is moved on to the last and they are added.  The
 * crc register going in is added to the first 4 bytes (a reflected CRC's
 * initial value is the same as those bytes xored).  What is left is 16
 * bytes congruent to everything before them: the crc32 instruction takes
 * them from a zero register, then the tail of under 16 bytes.
 */

/* Constants to move a 128-bit register (each lane of a zmm) d bits on:
 * {for L, for H}.  fold_lanes moves the lanes of a zmm to its last one: by
 * 384, 256 and 128 bits, the last by nothing (zeros, its own bits added
 * instead). */
static _Alignas(16) uint64_t fold128[2], fold256[2], fold384[2], fold512[2];
static _Alignas(64) uint64_t fold512x4[8], fold1024x4[8], fold1536x4[8], fold2048x4[8],
	fold_lanes[8];

/* x^k mod P for each distance's two k, in one walk up the powers of x
 * (d - 33 < d + 31 < the next d - 33).  The register is reflected (bit
 * 31 - i is the coefficient of x^i): multiplying by x is a shift right, and
 * x^32 is P's other terms, POLY. */
static void make_fold_constants(void)
{
	static const unsigned dist[] = {128, 256, 384, 512, 1024, 1536, 2048};
	uint64_t *const to[][2] = {{fold128, fold_lanes + 4}, {fold256, fold_lanes + 2},
	                           {fold384, fold_lanes},     {fold512, fold512x4},
	                           {fold1024x4, NULL},        {fold1536x4, NULL},
	                           {fold2048x4, NULL}};
	uint32_t v = UINT32_C(1) << 31; /* x^0 */
	unsigned e = 0;

	for (size_t i = 0; i < sizeof(dist) / sizeof(dist[0]); i++) {
		uint64_t k[2];

		for (int h = 1; h >= 0; h--) {
			for (unsigned want = h ? dist[i] - 33 : dist[i] + 31; e < want; e++)
				v = v & 1 ? (v >> 1) ^ POLY : v >> 1;
			k[h] = v;
		}
		for (int j = 0; j < 2 && to[i][j]; j++)
			memcpy(to[i][j], k, sizeof(k));
	}
	/* the zmm's lanes each take the same distance */
	for (int lane = 1; lane < 4; lane++) {
		memcpy(fold512x4 + 2 * lane, fold512x4, 16);
		memcpy(fold1024x4 + 2 * lane, fold1024x4, 16);
		memcpy(fold1536x4 + 2 * lane, fold1536x4, 16);
		memcpy(fold2048x4 + 2 * lane, fold2048x4, 16);
	}
	fold_lanes[6] = fold_lanes[7] = 0;
}

#define PCLMUL_TARGET  "pclmul,sse4.2"
#define VPCLMUL_TARGET "avx512f,vpclmulqdq,pclmul,sse4.2"

/* x moved on by k's distance, plus d */
__attribute__((target(PCLMUL_TARGET), always_inline)) static inline __m128i
fold_add(__m128i x, __m128i k, __m128i d)
{
	return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00),
	                                   _mm_clmulepi64_si128(x, k, 0x11)),
	                     d);
}

__attribute__((target(PCLMUL_TARGET), always_inline)) static inline __m128i
load128(const unsigned char *p)
{
	return _mm_loadu_si128((const __m128i *)(const void *)p);
}

/* The last 16-byte blocks folded into x, then x and the tail through the
 * crc32 instruction; returns the register. */
__attribute__((target(PCLMUL_TARGET), always_inline)) static inline uint32_t
fold_finish(__m128i x, const unsigned char *p, size_t n)
{
	const __m128i k128 = _mm_load_si128((const __m128i *)(const void *)fold128);
	uint64_t c;

	for (; n >= 16; n -= 16, p += 16)
		x = fold_add(x, k128, load128(p));
	c = __builtin_ia32_crc32di(0, (uint64_t)_mm_cvtsi128_si64(x));
	c = __builtin_ia32_crc32di(c, (uint64_t)_mm_extract_epi64(x, 1));
	return (uint32_t)mmapq_crc32c_hw_short(c, p, n);
}

/* Four xmm registers over 64-byte blocks, from FOLD_MIN bytes on (below it
 * the short loop of the crc32 instruction is as fast: crc32c.h's
 * MMAPQ_CRC32C_LONG_MIN, measured with mmapq_bench_crc). */
#define FOLD_MIN 64u
_Static_assert(FOLD_MIN >= 64 && MMAPQ_CRC32C_LONG_MIN >= FOLD_MIN, "a fold starts with 64 bytes");

__attribute__((target(PCLMUL_TARGET))) static uint32_t
crc_pclmul(uint32_t crc, const unsigned char *p, size_t n)
{
	__m128i x0, x1, x2, x3, k;

	if (n < FOLD_MIN)
		return (uint32_t)mmapq_crc32c_hw_short(crc, p, n);
	x0 = _mm_xor_si128(load128(p), _mm_cvtsi32_si128((int)crc));
	x1 = load128(p + 16);
	x2 = load128(p + 32);
	x3 = load128(p + 48);
	k = _mm_load_si128((const __m128i *)(const void *)fold512);
	for (p += 64, n -= 64; n >= 64; p += 64, n -= 64) {
		x0 = fold_add(x0, k, load128(p));
		x1 = fold_add(x1, k, load128(p + 16));
		x2 = fold_add(x2, k, load128(p + 32));
		x3 = fold_add(x3, k, load128(p + 48));
	}
	x0 = fold_add(x0, _mm_load_si128((const __m128i *)(const void *)fold384), x3);
	x1 = fold_add(x1, _mm_load_si128((const __m128i *)(const void *)fold256), x0);
	x2 = fold_add(x2, _mm_load_si128((const __m128i *)(const void *)fold128), x1);
	return fold_finish(x2, p, n);
}

__attribute__((target(PCLMUL_TARGET))) static uint32_t frame_pclmul(uint64_t byte, uint32_t len,
                                                                    const void *payload, size_t n)
{
	return FRAME_WITH(crc_pclmul, byte, len, payload, n);
}

/* zmm: z moved on by k's distance, plus d (three-way xor: 0x96) */
__attribute__((target(VPCLMUL_TARGET), always_inline)) static inline __m512i
zfold_add(__m512i z, __m512i k, __m512i d)
{
	return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(z, k, 0x00),
	                                 _mm512_clmulepi64_epi128(z, k, 0x11), d, 0x96);
}

__attribute__((target(VPCLMUL_TARGET), always_inline)) static inline __m512i
load512(const unsigned char *p)
{
	return _mm512_loadu_si512((const void *)p);
}

/* Four zmm registers over 256-byte blocks (16 lanes: a vpclmulqdq's
 * latency hidden), then one over 64-byte blocks, then its lanes into one
 * xmm: two vpclmulqdq per 64 bytes, where the xmm fold takes eight. */
__attribute__((target(VPCLMUL_TARGET))) static uint32_t
crc_vpclmul(uint32_t crc, const unsigned char *p, size_t n)
{
	__m512i z, k;
	__m256i y;

	if (n < FOLD_MIN)
		return (uint32_t)mmapq_crc32c_hw_short(crc, p, n);
	z = _mm512_xor_si512(load512(p), _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)crc)));
	if (n >= 256) {
		__m512i z1 = load512(p + 64), z2 = load512(p + 128), z3 = load512(p + 192);

		k = _mm512_load_si512((const void *)fold2048x4);
		for (p += 256, n -= 256; n >= 256; p += 256, n -= 256) {
			z = zfold_add(z, k, load512(p));
			z1 = zfold_add(z1, k, load512(p + 64));
			z2 = zfold_add(z2, k, load512(p + 128));
			z3 = zfold_add(z3, k, load512(p + 192));
		}
		z = zfold_add(z, _mm512_load_si512((const void *)fold1536x4), z3);
		z1 = zfold_add(z1, _mm512_load_si512((const void *)fold1024x4), z);
		z = zfold_add(z2, _mm512_load_si512((const void *)fold512x4), z1);
	} else {
		p += 64;
		n -= 64;
	}
	k = _mm512_load_si512((const void *)fold512x4);
	for (; n >= 64; p += 64, n -= 64)
		z = zfold_add(z, k, load512(p));
	z = zfold_add(z, _mm512_load_si512((const void *)fold_lanes), _mm512_maskz_mov_epi64(0xc0, z));
	y = _mm256_xor_si256(_mm512_castsi512_si256(z), _mm512_extracti64x4_epi64(z, 1));
	return fold_finish(_mm_xor_si128(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1)), p,
	                   n);
}

__attribute__((target(VPCLMUL_TARGET))) static uint32_t frame_vpclmul(uint64_t byte, uint32_t len,
                                                                      const void *payload, size_t n)
{
	return FRAME_WITH(crc_vpclmul, byte, len, payload, n);
}
#endif

/* ---- chosen once, when the library is loaded ------------------------------ */

typedef mmapq_frame_crc_fn frame_fn;

static crc_fn *chosen_crc;
static frame_fn *chosen_frame;
bool mmapq_crc32c_hw;

#if defined(__x86_64__)
static bool have_sse42(void)
{
	return __builtin_cpu_supports("sse4.2");
}

static bool have_pclmul(void)
{
	return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul");
}

static bool have_vpclmul(void)
{
	return have_pclmul() && __builtin_cpu_supports("avx512f") &&
	       __builtin_cpu_supports("vpclmulqdq");
}
#endif

/* Each instance, the fastest that runs here first (mmapq_bench_crc) */
static const struct instance {
	struct mmapq_crc32c_instance pub;
	bool (*here)(void);
	void (*prepare)(void);
} instances[] = {
#if defined(__x86_64__)
	{{"vpclmul", crc_vpclmul, frame_vpclmul}, have_vpclmul, make_fold_constants},
	{{"pclmul", crc_pclmul, frame_pclmul}, have_pclmul, make_fold_constants},
	{{"streams", crc_sse42, frame_sse42}, have_sse42, make_streams},
#endif
	{{"tables", crc_tables, frame_tables}, NULL, make_tables},
};

__attribute__((constructor)) static void choose(void)
{
	size_t i = 0;

#if defined(__x86_64__)
	__builtin_cpu_init();
#endif
	while (instances[i].here && !instances[i].here())
		i++;
	instances[i].prepare();
	chosen_crc = instances[i].pub.update;
	chosen_frame = instances[i].pub.frame;
	mmapq_crc32c_hw = instances[i].here != NULL;
}

const struct mmapq_crc32c_instance *mmapq_crc32c_instance(const char *name)
{
	for (size_t i = 0; i < sizeof(instances) / sizeof(instances[0]); i++)
		if (strcmp(instances[i].pub.name, name) == 0) {
			if (instances[i].here && !instances[i].here())
				return NULL;
			instances[i].prepare();
			return &instances[i].pub;
		}
	return NULL;
}

uint32_t mmapq_crc32c(uint32_t crc, const void *data, size_t n)
{
	return ~chosen_crc(~crc, data, n);
}

uint32_t mmapq_crc32c_frame(uint64_t byte, uint32_t len, const void *payload, size_t n)
{
	return chosen_frame(byte, len, payload, n);
}
