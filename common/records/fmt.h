/* SPDX-License-Identifier: MIT */
/*
 * fmt.h -- int64 to decimal text, as mmapq-consumer prints an int record.
 *
 * mmapq_fmt_int(out, v) writes v in decimal ("%" PRId64: a '-' for a
 * negative value, no '+', no leading zeros) followed by '\n' and returns the
 * bytes written, 2 to 21 (INT64_MIN is "-9223372036854775808\n").  out
 * must have MMAPQ_FMT_INT_MAX bytes of room (a '-' is stored whatever the
 * sign, and overwritten for a value that has none).
 *
 * mmapq_fmt_u64(out, u, end) is the same for an unsigned value followed by
 * end (the consumer's sequence-number prefix: "SEQ\t").
 *
 * It is the inverse of the int parser (parse.c): parsing the output gives
 * v back (tests/records/test_parse.c checks both ways, and against snprintf).
 *
 * How (mmapq_fmt_head): a value below 10^8 is, after three compares that
 * find its digit count, a fixed-point fraction whose integer part is its
 * first pair of digits; each multiplication of the fraction by 100 brings
 * the next pair up, stored from a table of the 100 pairs: no division and
 * no loop.  Larger values are one such head and one or two 8-digit blocks
 * (leading zeros kept: mmapq_fmt_block8, all 8 digits at once on lanes of
 * one 64-bit word), split off by multiplications by the inverse of 10^8
 * (the compiler's for a division by a constant).
 */
#ifndef MMAPQ_FMT_H
#define MMAPQ_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MMAPQ_FMT_INT_MAX 24   /* room mmapq_fmt_int and mmapq_fmt_u64 need at out */

/* "00" to "99" */
static const char mmapq_fmt_pairs[201] =
	"0001020304050607080910111213141516171819"
	"2021222324252627282930313233343536373839"
	"4041424344454647484950515253545556575859"
	"6061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* The pair of digits of i (< 100) at o. */
static inline void mmapq_fmt_pair(char *o, uint64_t i)
{
	memcpy(o, mmapq_fmt_pairs + 2 * i, 2);
}

/*
 * u (< 10^8) without leading zeros at o; returns the digits written (1..8),
 * and writes nothing else.  A few compares find the digit count; then t is
 * u / 10^N as a fixed-point number with 32 bits of fraction (N: the digits
 * after the first pair), so that its integer part is the first pair, and
 * each multiplication of the fraction by 100 (by 10 for a last odd digit)
 * brings the next one into the integer part: a multiplication, a shift
 * and a table load per pair, no division.  The constants (a multiplier
 * rounded up, and for 7 and 8 digits more bits of precision, shifted away
 * afterwards) are those of James Edward Anhalt III's itoa (jeaiii);
 * tests/records/test_parse.c (fmt_head_all) checks every u below 10^8.
 */
static inline unsigned mmapq_fmt_head(char *o, uint32_t u)
{
	uint64_t t;

#define MMAPQ_FMT_NEXT(k) (t = (uint64_t)(uint32_t)t * 100, mmapq_fmt_pair(o + (k), t >> 32))
#define MMAPQ_FMT_LAST(k) (o[k] = (char)('0' + (((uint64_t)(uint32_t)t * 10) >> 32)))
	/* the digit count in three compares, whatever it is */
	if (u < 10000) {
		if (u < 100) {
			if (u < 10) {
				o[0] = (char)('0' + u);
				return 1;
			}
			mmapq_fmt_pair(o, u);
			return 2;
		}
		if (u < 1000) {
			t = (uint64_t)u * 429496730;			/* 2^32 / 10, up */
			mmapq_fmt_pair(o, t >> 32);
			MMAPQ_FMT_LAST(2);
			return 3;
		}
		t = (uint64_t)u * 42949673;				/* 2^32 / 10^2, up */
		mmapq_fmt_pair(o, t >> 32);
		MMAPQ_FMT_NEXT(2);
		return 4;
	}
	if (u < 1000000) {
		if (u < 100000) {
			t = (uint64_t)u * 4294968;			/* 2^32 / 10^3, up */
			mmapq_fmt_pair(o, t >> 32);
			MMAPQ_FMT_NEXT(2);
			MMAPQ_FMT_LAST(4);
			return 5;
		}
		t = (uint64_t)u * 429497;				/* 2^32 / 10^4, up */
		mmapq_fmt_pair(o, t >> 32);
		MMAPQ_FMT_NEXT(2);
		MMAPQ_FMT_NEXT(4);
		return 6;
	}
	if (u < 10000000) {
		t = ((uint64_t)u * UINT64_C(2814749768)) >> 16;		/* 2^48 / 10^5, up */
		mmapq_fmt_pair(o, t >> 32);
		MMAPQ_FMT_NEXT(2);
		MMAPQ_FMT_NEXT(4);
		MMAPQ_FMT_LAST(6);
		return 7;
	}
	t = (((uint64_t)u * UINT64_C(2251799815)) >> 19) + 4;	/* 2^51 / 10^6, up, + 1 */
	mmapq_fmt_pair(o, t >> 32);
	MMAPQ_FMT_NEXT(2);
	MMAPQ_FMT_NEXT(4);
	MMAPQ_FMT_NEXT(6);
	return 8;
#undef MMAPQ_FMT_NEXT
#undef MMAPQ_FMT_LAST
}

/*
 * u (< 10^8) as exactly 8 digits, leading zeros included, at o; branch-free.
 * All 8 digits in one 64-bit word, the first (most significant) in the
 * lowest byte: u split into two 4-digit lanes, each into two pairs, each
 * pair into two digits, every split done on all lanes at once.  A split of
 * v into (v / m, v % m) in lanes of half the width is (v << k) - q ((m <<
 * k) - 1), q = v / m by a multiply-shift exact in the range used: that is
 * (v - q m) << k, plus q.
 */
static inline void mmapq_fmt_block8(char *o, uint32_t u)
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
	x = ((x << 8) - q * ((10 << 8) - 1)) | UINT64_C(0x3030303030303030);	/* bytes, ASCII */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	x = __builtin_bswap64(x);
#endif
	memcpy(o, &x, sizeof(x));
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
			mmapq_fmt_block8(o, (uint32_t)(hi % 100000000));
			o += 8;
		}
		mmapq_fmt_block8(o, lo);
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
