/* SPDX-License-Identifier: MIT */
/*
 * fmt.h -- int64 to decimal text, as mmapq-consumer prints an int record.
 *
 * mmapq_fmt_int(out, v) writes v in decimal ("%" PRId64: a '-' for a
 * negative value, no '+', no leading zeros) followed by '\n' and returns the
 * bytes written, 2 to 21 (INT64_MIN is "-9223372036854775808\n").  The
 * digits are stored 8 at a time, so out must have MMAPQ_FMT_INT_MAX bytes of
 * room: up to that many may be written, whatever the returned length.
 *
 * mmapq_fmt_u64(out, u, end) is the same for an unsigned value followed by
 * end (the consumer's sequence-number prefix: "SEQ\t").
 *
 * It is the inverse of the int parser (parse.c): parsing the output gives
 * v back (tests/records/test_parse.c checks both ways, and against snprintf).
 *
 * How, without a division, a loop or a branch on the digit count: a
 * value below 10^8 becomes its 8 digits in one 64-bit word
 * (mmapq_fmt_digits8: split into two 4-digit halves, each half into two
 * pairs, each pair into two digits, every split done on all lanes at once
 * by a multiply-shift that equals division by 10^4, 100 or 10 in the range
 * used, and one multiplication and subtraction for the remainders).  The
 * leading zero digits are the low zero bytes of that word (count trailing
 * zeros), and the word is stored shifted past them, 8 bytes at once.
 * Larger values are one such head and one or two full 8-digit blocks.
 * (Digit pairs from a table after a few compares that find the digit
 * count, as jeaiii's itoa does, take fewer instructions, but their
 * branches mispredict on values of random lengths: 1.5 times slower there,
 * tests/bench/README-bench.md.)  tests/records/test_parse.c checks every
 * value below 10^8 (fmt_head_all) and snprintf's bytes for the rest.
 */
#ifndef MMAPQ_FMT_H
#define MMAPQ_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MMAPQ_FMT_INT_MAX 24   /* room mmapq_fmt_int and mmapq_fmt_u64 need at out */

/*
 * The 8 decimal digits of u (< 10^8) as byte values 0..9, the first (most
 * significant) in the lowest byte; branch-free: u split into two 4-digit
 * lanes, each into two pairs, each pair into two digits, every split done
 * on all lanes at once.  A split of v into (v / m, v % m) in lanes of half
 * the width is (v << k) - q ((m << k) - 1), q = v / m by a multiply-shift
 * exact in the range used: that is (v - q m) << k, plus q.
 */
static inline uint64_t mmapq_fmt_digits8(uint32_t u)
{
	/* u / 10^4 for u < 10^8: the error of 2^40 / 10^4 rounded up stays
	 * below the 10^-4 a fraction can be short of the next integer */
	uint64_t q = ((uint64_t)u * 109951163) >> 40;
	uint64_t x = ((uint64_t)u << 32) - q * ((UINT64_C(10000) << 32) - 1);	/* 32-bit lanes */

	/* per lane v < 10^4: v / 100 == (v * 10486) >> 20 */
	q = ((x * 10486) >> 20) & UINT64_C(0x0000007f0000007f);
	x = (x << 16) - q * ((100 << 16) - 1);					/* 16-bit lanes, < 100 */
	/* per lane v < 100: v / 10 == (v * 103) >> 10 */
	q = ((x * 103) >> 10) & UINT64_C(0x000f000f000f000f);
	return (x << 8) - q * ((10 << 8) - 1);					/* bytes, < 10 */
}

/* A mmapq_fmt_digits8 word shifted right by zbits, as ASCII at o (8 bytes). */
static inline void mmapq_fmt_store8(char *o, uint64_t d, unsigned zbits)
{
	d = (d | UINT64_C(0x3030303030303030)) >> zbits;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	d = __builtin_bswap64(d);
#endif
	memcpy(o, &d, sizeof(d));
}

/* u (< 10^8) without leading zeros at o; returns the digits written (1..8),
 * writes 8 bytes.  The leading zero digits are the zero bytes from the
 * lowest up: their bits, rounded down to whole bytes, are shifted out (the
 * top digit always stays: 0 shows as "0"). */
static inline unsigned mmapq_fmt_head(char *o, uint32_t u)
{
	uint64_t d = mmapq_fmt_digits8(u);
	unsigned zbits = (unsigned)__builtin_ctzll(d | (UINT64_C(1) << 56)) & 56;

	mmapq_fmt_store8(o, d, zbits);
	return 8 - (zbits >> 3);
}

/* u in decimal, then end (a line end, a tab): at most 21 bytes at out. */
static inline size_t mmapq_fmt_u64(char *out, uint64_t u, char end)
{
	char *o = out;

	if (u < 100000000) {
		o += mmapq_fmt_head(o, (uint32_t)u);
	} else {
		uint64_t hi = u / 100000000;
		uint32_t lo = (uint32_t)(u % 100000000);

		if (hi < 100000000) {
			o += mmapq_fmt_head(o, (uint32_t)hi);
		} else {
			/* u >= 10^16: hi / 10^8 < 1845 */
			o += mmapq_fmt_head(o, (uint32_t)(hi / 100000000));
			mmapq_fmt_store8(o, mmapq_fmt_digits8((uint32_t)(hi % 100000000)), 0);
			o += 8;
		}
		mmapq_fmt_store8(o, mmapq_fmt_digits8(lo), 0);
		o += 8;
	}
	*o++ = end;
	return (size_t)(o - out);
}

/* "%" PRId64 "\n" */
static inline size_t mmapq_fmt_int(char *out, int64_t v)
{
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	size_t neg = v < 0;

	*out = '-';
	return neg + mmapq_fmt_u64(out + neg, u, '\n');
}

#endif /* MMAPQ_FMT_H */
