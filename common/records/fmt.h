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
 * How: a value below 10^8 is turned into its 8 digits in one 64-bit word,
 * without a division loop or a digit-pair table: split into two 4-digit
 * halves, each half into two pairs, each pair into two digits, every step
 * done on all lanes at once with a multiply-shift that equals division by
 * 100 or 10 in the range used.  The leading zero digits are the low zero
 * bytes of that word (count trailing zeros), and the word is stored
 * shifted past them.  Larger values are one such head and one or two full
 * 8-digit blocks.
 */
#ifndef MMAPQ_FMT_H
#define MMAPQ_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MMAPQ_FMT_INT_MAX 24   /* room mmapq_fmt_int and mmapq_fmt_u64 need at out */

/* The 8 decimal digits of u (< 10^8) as byte values 0..9, the first (most
 * significant) digit in the lowest byte. */
static inline uint64_t mmapq_fmt_digits8(uint32_t u)
{
	/* 32-bit lanes: u / 10^4, u % 10^4 */
	uint64_t x = (uint64_t)(u / 10000) | ((uint64_t)(u % 10000) << 32);
	/* per lane v < 10^4: v / 100 == (v * 10486) >> 20 */
	uint64_t h = ((x * 10486) >> 20) & UINT64_C(0x0000007f0000007f);

	x = h | ((x - h * 100) << 16);          /* 16-bit lanes, each < 100 */
	/* per lane v < 100: v / 10 == (v * 103) >> 10 */
	h = ((x * 103) >> 10) & UINT64_C(0x000f000f000f000f);
	return h | ((x - h * 10) << 8);          /* bytes, each < 10 */
}

/* Store the low n (1..8) digits of a mmapq_fmt_digits8 word at o as ASCII;
 * writes 8 bytes. */
static inline void mmapq_fmt_store8(char *o, uint64_t d, unsigned n)
{
	d = (d | UINT64_C(0x3030303030303030)) >> (8 * (8 - n));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	d = __builtin_bswap64(d);
#endif
	memcpy(o, &d, sizeof(d));
}

/* u (< 10^8) without leading zeros at o; returns the digits written (1..8),
 * writes 8 bytes. */
static inline unsigned mmapq_fmt_head(char *o, uint32_t u)
{
	uint64_t d = mmapq_fmt_digits8(u);
	/* leading zero digits are zero bytes from the lowest up; 0 shows as "0" */
	unsigned n = d ? 8 - ((unsigned)__builtin_ctzll(d) >> 3) : 1;

	mmapq_fmt_store8(o, d, n);
	return n;
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
			mmapq_fmt_store8(o, mmapq_fmt_digits8((uint32_t)(hi % 100000000)), 8);
			o += 8;
		}
		mmapq_fmt_store8(o, mmapq_fmt_digits8(lo), 8);
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
