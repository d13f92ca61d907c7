/* SPDX-License-Identifier: MIT */
/*
 * parse.c -- the producer's streaming record parser.
 *
 * This is the only code between untrusted input and the queue, so it is
 * written as an explicit state machine that never looks past the byte it is
 * deciding about and never keeps more than a fixed bound of input: whatever
 * the chunking, the same bytes produce the same callbacks in the same order.
 *
 * format int has a fast path in front of that machine (feed_int_fast): for a
 * token that starts at least FAST_MARGIN bytes before the end of the chunk
 * it reads the token 8 bytes at a time (digits found with SWAR masks and
 * one ctz, converted with SWAR: three multiplications per 8 digits), and
 * when the token is an optional sign, 1 to 19 digits, a whitespace byte and
 * in range it emits the record itself; the '\n' bytes of what it took are
 * counted afterwards, 64 bytes at a time.  Anything else (a bad, over-long
 * or out-of-range token, one near the end of the chunk, a token continued
 * from the previous chunk) goes to the state machine from the token's first
 * byte, so every error, and every token split across chunks, is decided by
 * the machine exactly as before.  The fast path only reads inside the chunk
 * and keeps no state of its own: it cannot change what is reported, only
 * how fast.  mmapq_parser_set_fast_path(p, false) turns it off (the
 * differential tests compare the two; the benchmark's "old parser"); for
 * format line it turns off the AVX2 scan for line ends (line_stop_avx2),
 * leaving the baseline one (line_stop).
 *
 * Semantics beyond parse.h (the lead documents these for users):
 *
 * Positions.  line counts '\n' bytes (1-based); column counts bytes since the
 * last '\n' (1-based), so '\t', '\r', '\v', '\f' and every byte of a UTF-8
 * sequence each take one column, and '\r' / '\v' / '\f' never start a line.
 *
 * Excerpts.  Bytes 0x20..0x7e are copied as is, except that a backslash is
 * doubled so that an excerpt is never ambiguous; every other byte becomes
 * \xNN (two lower-case hex digits).  An excerpt that does not fit excerpt[],
 * or that stands for more input than it shows, ends in "...".  It only ever
 * shows bytes up to the point where the error was decided, so it does not
 * depend on how the input was chunked.
 *
 * format int.  Tokens are maximal runs of non-whitespace bytes (whitespace =
 * C-locale isspace: ' ' \t \n \v \f \r).  One error per bad token, at the
 * token's first byte, checked in this order:
 *   longer than MMAPQ_PARSE_TOKEN_MAX bytes  "token too long" (even if it is
 *                                            all digits, e.g. 40 leading zeros;
 *                                            excerpt: its first
 *                                            MMAPQ_PARSE_TOKEN_MAX bytes + "...")
 *   not [+-]?[0-9]+                          "not a decimal integer"
 *   outside INT64_MIN..INT64_MAX             "out of range for a 64-bit integer"
 * So NUL bytes, non-ASCII bytes, a UTF-8 BOM or a UTF-8 no-break space glue
 * onto their neighbours and make the whole run one bad token: a BOM before
 * the first number gives "not a decimal integer" at 1:1 with the excerpt
 * \xef\xbb\xbf1, and that number is lost.  "-0" and "+0" are 0; leading
 * zeros are allowed within the length limit.
 *
 * format line.  A line is the bytes before a '\n'; if its last byte is '\r'
 * that '\r' is dropped (CRLF).  A final line without '\n' is emitted by
 * finish() as is, including a trailing '\r' (it is not before a '\n').  Any
 * byte but NUL is accepted.  One error per bad line, decided at the first
 * byte that makes it bad, then the rest of the line is skipped:
 *   a NUL byte                               "NUL byte in line" at the NUL's
 *                                            column; excerpt: the line up to
 *                                            and including the NUL
 *   more than max_record bytes (after
 *   dropping the CR of a CRLF)               "line too long" at column 1;
 *                                            excerpt: its beginning + "..."
 * A NUL that comes after the line is already known to be too long is not
 * reported separately.
 *
 * format binary.  Each record is a 4-byte big-endian length and that many
 * bytes, any bytes.  Positions: the "line" is the record's number (1-based,
 * refused ones counted), the "column" the byte (1-based) of the stream where
 * its length prefix starts.  One error per bad record, at its prefix
 * (excerpt: the prefix's bytes, \xNN):
 *   a length over max_record                "record longer than max_record";
 *                                            that many bytes are skipped
 *   the input ends inside a record           "input ends inside a record"
 *                                            (at finish)
 *
 * Records.  int: 8 bytes, an int64_t in host order, pointing at the parser's
 * stack.  line, binary: a pointer into the caller's chunk when the whole
 * record is in it, else into the parser's buffer.  Either way the pointer is
 * valid only during the on_record call.
 *
 * on_record failure.  A negative return stops parsing at once and is
 * returned by feed() / finish(); that record is not counted.  The parser is
 * then dead: further feed() / finish() calls return -EINVAL, and the only
 * useful call left is free().  (Positive returns are treated as 0.)
 *
 * Batches (format int, mmapq_parser_set_int_batch).  emit() appends each
 * value to batch[] instead of calling on_record; flush_batch() hands
 * batch[] to on_ints when it is full, before every error is reported (in
 * int_end and in feed_int's "too long" path, the only places format int
 * reports), and before feed_int and finish return.  So on_ints sees the
 * same values in the same order, interleaved with on_error at the same
 * points, as on_record would; only the number of calls differs.  A failing
 * on_ints makes the parser dead as a failing on_record does, its batch
 * not counted.
 *
 * Batches (format line and binary, mmapq_parser_set_record_batch).  The
 * same, with emit_record() and flush_records(): recs[] holds {pointer,
 * length} of each record where on_record would have had it (the caller's
 * chunk, or lb for the one record a chunk completes from earlier ones),
 * handed to on_records when full, before every error is reported
 * (line_bad, binary_report's calls) and before feed and finish return.
 * lb is not written while recs[] may point into it: what a chunk leaves
 * unfinished is kept (lb_keep) only after the batch is handed over, and
 * lb is given back (lb_shrink) only then.
 */
#include "parse.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* The scans compare 16 bytes at once with SSE2 on x86-64 (its baseline),
 * and format line's 64 with AVX2 where the CPU has it (picked per feed);
 * 8 at a time (SWAR) or byte by byte elsewhere, or with MMAPQ_PARSE_NO_SSE2
 * (the tests build the parser so too: test_parse_swar). */
#if defined(__SSE2__) && defined(__x86_64__) && !defined(MMAPQ_PARSE_NO_SSE2)
#define PARSE_SSE2 1
#include <immintrin.h>
#endif

#include "mmapq.h"

enum {
	ST_START,	/* int: between tokens; line: in a good line (lb_len bytes so far) */
	ST_TOKEN,	/* int: inside a token that is not yet decided */
	ST_SKIP,	/* error reported: skip to the next whitespace / '\n' */
	ST_DONE,	/* finish() was called */
	ST_FAILED,	/* on_record failed */
};

/* An int token being scanned; acc is its magnitude, valid unless ovf. */
struct itok {
	uint64_t acc;
	bool neg;
	bool digits;
	bool bad;
	bool ovf;
};

struct mmapq_parser {
	uint32_t format;
	uint32_t max_record;
	mmapq_record_fn on_record;
	mmapq_parse_error_fn on_error;
	mmapq_ints_fn on_ints;	/* batches (format int), or NULL: on_record */
	mmapq_records_fn on_records; /* batches (format line, binary), or NULL: on_record */
	void *ctx;
	uint64_t records;
	uint64_t errors;
	int state;
	bool fast;		/* format int: try feed_int_fast at each token;
				 * format line: line_stop_avx2 where the CPU has it */
	uint64_t line;		/* line of the next input byte */

	/* format int */
	uint64_t col;		/* column of the next input byte */
	uint64_t tok_line;	/* where the current token starts */
	uint64_t tok_col;
	struct itok itok;
	size_t tok_len;		/* bytes of the current token kept in tok[] */
	unsigned char tok[MMAPQ_PARSE_TOKEN_MAX];
	size_t nbatch;		/* values in batch[] not yet handed to on_ints */
	int64_t batch[MMAPQ_PARSE_BATCH];

	/* format line: the part of the current line seen in earlier chunks
	 * (at most max_record bytes, plus the '\r' of a CRLF split from its
	 * '\n'); nothing is kept for a line being skipped.  format binary: the
	 * part of the current record's payload seen in earlier chunks.  Grown
	 * as a record needs it, up to max_record + 1: a parser costs nothing
	 * per byte of max_record until a long record comes. */
	size_t lb_len, lb_cap;
	unsigned char *lb;
	size_t nrecs;		/* records in recs[] not yet handed to on_records */
	struct mmapq_iovec recs[MMAPQ_PARSE_BATCH];

	/* format binary */
	uint64_t offset;	/* the stream's bytes so far: where the next one is */
	uint64_t rec_start;	/* where the current record's length prefix starts */
	unsigned char prefix[4];/* its length prefix, big-endian, as far as seen */
	size_t prefix_len;
	uint32_t rec_len;	/* its payload bytes (prefix_len == 4) */
	uint32_t skip;		/* payload bytes of a refused record still to skip */

	uint64_t part;		/* input bytes of the record in progress (mmapq_parser_partial) */
};

static const char WHAT_NOT_INT[] = "not a decimal integer";
static const char WHAT_RANGE[] = "out of range for a 64-bit integer";
static const char WHAT_TOKEN_LONG[] = "token too long";
static const char WHAT_LINE_LONG[] = "line too long";
static const char WHAT_NUL[] = "NUL byte in line";
static const char WHAT_RECORD_LONG[] = "record longer than max_record";
static const char WHAT_RECORD_CUT[] = "input ends inside a record";

/* Room for n bytes in the record buffer (lb).  0, or -ENOMEM. */
static int lb_reserve(struct mmapq_parser *p, size_t n)
{
	size_t cap = p->lb_cap ? p->lb_cap : 256;
	unsigned char *b;

	if (n <= p->lb_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	if (cap > (size_t)p->max_record + 1)
		cap = (size_t)p->max_record + 1;
	b = realloc(p->lb, cap);
	if (!b)
		return -ENOMEM;
	p->lb = b;
	p->lb_cap = cap;
	return 0;
}

/* After a long record: give back what an ordinary one does not need. */
static void lb_shrink(struct mmapq_parser *p)
{
	if (p->lb_cap > 65536 && !p->lb_len) {
		free(p->lb);
		p->lb = NULL;
		p->lb_cap = 0;
	}
}

/* isspace() in the C locale, without a locale-dependent call per byte. */
static const bool is_ws[256] = {
	[' '] = true, ['\t'] = true, ['\n'] = true,
	['\v'] = true, ['\f'] = true, ['\r'] = true,
};

static size_t esc_len(unsigned char c)
{
	if (c == '\\')
		return 2;
	return c >= 0x20 && c < 0x7f ? 1 : 4;
}

static char *esc_put(char *o, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";

	if (c == '\\') {
		*o++ = '\\';
		*o++ = '\\';
	} else if (c >= 0x20 && c < 0x7f) {
		*o++ = (char)c;
	} else {
		*o++ = '\\';
		*o++ = 'x';
		*o++ = hex[c >> 4];
		*o++ = hex[c & 15];
	}
	return o;
}

/*
 * Escape the bytes a[0..alen) b[0..blen) into out (size bytes, >= 4), with
 * "..." if they do not all fit or if more says they are only the beginning.
 */
static void make_excerpt(char *out, size_t size, const unsigned char *a, size_t alen,
			 const unsigned char *b, size_t blen, bool more)
{
	size_t cap = size - 1, need = 0, lim, used = 0, k;
	char *o = out;

	for (k = 0; k < alen + blen && need <= cap; k++)
		need += esc_len(k < alen ? a[k] : b[k - alen]);
	if (need > cap)
		more = true;
	lim = more ? cap - 3 : cap;
	for (k = 0; k < alen + blen; k++) {
		unsigned char c = k < alen ? a[k] : b[k - alen];

		if (used + esc_len(c) > lim)
			break;
		used += esc_len(c);
		o = esc_put(o, c);
	}
	if (more) {
		memcpy(o, "...", 3);
		o += 3;
	}
	*o = '\0';
}

static void report(struct mmapq_parser *p, uint64_t line, uint64_t col, const char *what,
		   const unsigned char *a, size_t alen, const unsigned char *b, size_t blen,
		   bool more)
{
	struct mmapq_parse_error e;

	e.line = line;
	e.column = col;
	e.what = what;
	make_excerpt(e.excerpt, sizeof(e.excerpt), a, alen, b, blen, more);
	p->errors++;
	p->on_error(p->ctx, &e);
}

/*
 * Report the current int token, which is tok[0..tok_len) followed by
 * s[0..n).  Only its first MMAPQ_PARSE_TOKEN_MAX bytes are ever shown, so
 * the excerpt is the same however the token was split.
 */
static void report_tok(struct mmapq_parser *p, const unsigned char *s, size_t n,
		       const char *what, bool more)
{
	size_t room = MMAPQ_PARSE_TOKEN_MAX - p->tok_len;

	report(p, p->tok_line, p->tok_col, what, p->tok, p->tok_len, s, n < room ? n : room, more);
}

/* Hand the collected values to on_ints; 0 or its error (not counted). */
static int flush_batch(struct mmapq_parser *p)
{
	size_t n = p->nbatch;
	int err;

	if (!n)
		return 0;
	p->nbatch = 0;
	err = p->on_ints(p->ctx, p->batch, n);
	if (err < 0)
		return err;
	p->records += n;
	return 0;
}

/* One int record: to on_record, or into the batch. */
static int emit(struct mmapq_parser *p, int64_t v)
{
	int err;

	if (p->on_ints) {
		p->batch[p->nbatch++] = v;
		return p->nbatch == MMAPQ_PARSE_BATCH ? flush_batch(p) : 0;
	}
	err = p->on_record(p->ctx, &v, sizeof(v));
	if (err < 0)
		return err;
	p->records++;
	return 0;
}

/* The current int token ended (whitespace or end of input): emit or report it. */
static int int_end(struct mmapq_parser *p, const struct itok *t, const unsigned char *s, size_t n)
{
	const char *what;
	int64_t v;
	int err;

	if (p->tok_len + n > MMAPQ_PARSE_TOKEN_MAX) {
		err = flush_batch(p);
		if (err < 0)
			return err;
		report_tok(p, s, n, WHAT_TOKEN_LONG, true);
		return 0;
	}
	if (t->bad || !t->digits) {
		what = WHAT_NOT_INT;
	} else if (t->ovf || t->acc > (uint64_t)INT64_MAX + t->neg) {
		what = WHAT_RANGE;
	} else {
		/* acc <= 2^63 here; avoid the overflow of negating INT64_MIN */
		if (t->neg)
			v = t->acc ? -(int64_t)(t->acc - 1) - 1 : 0;
		else
			v = (int64_t)t->acc;
		return emit(p, v);
	}
	err = flush_batch(p);
	if (err < 0)
		return err;
	report_tok(p, s, n, what, false);
	return 0;
}

/* ---- format int, fast path ---------------------------------------------- */

/*
 * A token is tried by the fast path only if it starts at least FAST_MARGIN
 * bytes before the end of the chunk: what it reads of a token (8 bytes
 * from its first, and a sign and 24 bytes after it) lies inside the chunk.
 */
#define FAST_MARGIN 32

#define ONES8 UINT64_C(0x0101010101010101)
#define ZEROS8 (0x30 * ONES8)	/* '0' in every byte */

/* 8 bytes from s, the byte at s in the lowest 8 bits (any alignment). */
static inline uint64_t load8(const unsigned char *s)
{
	uint64_t w;

	memcpy(&w, s, sizeof(w));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

/*
 * The value of n (1..8) digit values (0..9) in the low n bytes of t, the
 * first (most significant) one lowest.  t is shifted up so that they end
 * at the top byte (which drops the bytes after them; the zero bytes
 * shifted in below are leading zeros), then pairs, quads and the octet are
 * combined in parallel lanes, each step one multiplication: lane pair (lo,
 * hi) times (m << k) + 1 holds lo * m + hi in its upper half (the products
 * stay below 2^k, so no lane carries into the next), masked before the
 * next.  The shift and the first multiplication are one: pairs_mul[n] is
 * the first multiplier shifted by 8 (8 - n), the same product mod 2^64.
 */
#define PAIRS_MUL(n) (UINT64_C(0xa01) << (8 * (8 - (n))))	/* (10 << 8) + 1 */

/* The fast path's tables, in one object: the loop then addresses all of
 * them from one register. */
static const struct {
	uint64_t pairs_mul[9];
	bool ws[256];		/* is_ws */
} fast_tab = {
	.pairs_mul = { 0, PAIRS_MUL(1), PAIRS_MUL(2), PAIRS_MUL(3), PAIRS_MUL(4),
		       PAIRS_MUL(5), PAIRS_MUL(6), PAIRS_MUL(7), PAIRS_MUL(8) },
	.ws = { [' '] = true, ['\t'] = true, ['\n'] = true, ['\v'] = true, ['\f'] = true,
		['\r'] = true },
};

/* The fast path's 64-bit constants, as fast_consts makes them. */
struct fast_k {
	uint64_t zeros, add46, top, pairs, quads, octet;
};

/* The constants, opaque to the optimiser (an empty asm that may change
 * them): it then keeps them in registers (or on the stack, as operands)
 * across the loop, instead of building each one again per token with a
 * 10-byte move. */
static inline struct fast_k fast_consts(void)
{
	struct fast_k k = {
		ZEROS8, 0x46 * ONES8, 0x80 * ONES8, UINT64_C(0x00ff00ff00ff00ff),
		UINT64_C(0x0000ffff0000ffff), (UINT64_C(10000) << 32) + 1,
	};

	__asm__("" : "+r"(k.zeros), "+r"(k.add46), "+r"(k.top), "+r"(k.pairs), "+r"(k.quads),
		"+r"(k.octet));
	return k;
}

static inline uint64_t digits_value(uint64_t t, size_t n, const struct fast_k *k)
{
	t = (t * fast_tab.pairs_mul[n]) >> 8;			/* pairs, 0..99 */
	t = ((t & k->pairs) * ((100 << 16) + 1)) >> 16;		/* quads */
	return ((t & k->quads) * k->octet) >> 32;
}

/*
 * w is 8 input bytes, t = w - ZEROS8 (a digit's byte is its value 0..9).
 * 0x80 in the lowest byte of w that is not '0'..'9', and 0 in every byte
 * below it; the bytes above it may hold anything.  Per byte, with no carry
 * or borrow from below (all the bytes below are digits): w - '0' has its
 * top bit set for w < 0x30 or w >= 0xb0, w + 0x46 for 0x3a <= w < 0xba;
 * only a byte that is not a digit can carry or borrow into the next.  So
 * it is exact for what the fast path asks: is the first byte a digit, are
 * all 8, and how many digits (ctz) come first.
 */
static inline uint64_t nondigits(uint64_t w, uint64_t t, const struct fast_k *k)
{
	return ((w + k->add46) | t) & k->top;
}

static const uint64_t pow10_tab[9] = {
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
};

/*
 * The rest of a token whose first 8 bytes at b[s] are digits (t: them -
 * '0'): 8 to 19 digits in all, in two or three words.  *end is the byte
 * after its digits, *val their magnitude.  false: 20 digits or more, or out
 * of range (neg: after a '-'): the byte machine decides it.
 */
static inline bool long_token(const unsigned char *b, size_t s, uint64_t t, bool neg,
			      const struct fast_k *k, size_t *end, uint64_t *val)
{
	uint64_t v = digits_value(t, 8, k), w = load8(b + s + 8), nd;
	size_t n;

	/* the next two words are loaded and looked at independently of each other */
	t = w - k->zeros;
	nd = nondigits(w, t, k);
	if (nd) {
		n = (unsigned)__builtin_ctzll(nd) >> 3;
		if (n)
			v = v * pow10_tab[n] + digits_value(t, n, k);
		*end = s + 8 + n;
		*val = v;
		return true;	/* at most 15 digits: in range */
	}
	v = v * 100000000 + digits_value(t, 8, k);
	w = load8(b + s + 16);
	t = w - k->zeros;
	nd = nondigits(w, t, k);
	n = nd ? (unsigned)__builtin_ctzll(nd) >> 3 : 8;
	if (n > 3)
		return false;	/* 20 digits or more: leading zeros or out of range */
	if (n)
		v = v * pow10_tab[n] + digits_value(t, n, k);
	/* at most 19 digits: v < 10^19 < 2^64; the bound is 2^63 - 1, or 2^63 for a '-' */
	if (v > (uint64_t)INT64_MAX + neg)
		return false;
	*end = s + 16 + n;
	*val = v;
	return true;
}

/*
 * Whitespace and decimal tokens of up to 19 digits from b[*pi] on, while a
 * token can start FAST_MARGIN bytes before len; stops at the first token it
 * does not take (then b[*pi] is that token's first byte) or near the end.
 * A token of up to 7 digits is one 8-byte load after its sign: the digits
 * counted by nondigits and one ctz, the byte after them checked for
 * whitespace by table, the value by digits_value; longer ones take two
 * loads more (long_token).  Lines are not followed here: count_lines
 * counts the '\n' bytes of what it took afterwards.  Returns 0,
 * or the negative return of on_record or on_ints (then *pi is past the
 * token whose record failed).
 */
static inline __attribute__((always_inline)) int
feed_int_fast_as(struct mmapq_parser *p, const unsigned char *b, size_t len, size_t *pi,
		 const bool batched)
{
	mmapq_record_fn on_record = p->on_record;
	void *ctx = p->ctx;
	uint64_t records = 0;
	/* batches: the next free place */
	int64_t *out = p->batch + p->nbatch, *const end = p->batch + MMAPQ_PARSE_BATCH;
	size_t i = *pi, last = len - FAST_MARGIN;
	const struct fast_k kv = fast_consts(), *const k = &kv;
	int err = 0;

	if (len < FAST_MARGIN)
		return 0;	/* no token starts far enough from the end */
	while (i <= last) {
		/* the token with and without a sign, both loaded at once:
		 * the next token's start then waits for one load and a
		 * compare, not for two loads one after the other (tokens
		 * are decided one after another: the time per token is
		 * that chain), and no branch on the sign (random signs
		 * would mispredict it) */
		uint64_t w0 = load8(b + i), w1 = load8(b + i + 1);
		unsigned c = (unsigned char)w0;
		unsigned sign = (c == '-') | (c == '+');
		bool neg = c == '-';
		uint64_t w = sign ? w1 : w0, t = w - k->zeros, nd = nondigits(w, t, k), val;
		size_t s = i + sign, e;
		int64_t v;

		if (nd & 0x80) {
			/* no digit at b[s]: whitespace, or a token for the machine */
			if (!fast_tab.ws[c])
				goto out;
			i++;
			continue;
		}
		if (nd) {
			size_t n = (unsigned)__builtin_ctzll(nd) >> 3;

			e = s + n;	/* 1 to 7 digits */
			val = digits_value(t, n, k);
		} else if (!long_token(b, s, t, neg, k, &e, &val)) {
			goto out;
		}
		if (!fast_tab.ws[b[e]])
			goto out;	/* glued to a non-digit */
		/* the whitespace byte that ends the token is taken here too */
		i = e + 1;
		/* two's complement (GCC: modulo 2^64), INT64_MIN included */
		v = (int64_t)(neg ? 0 - val : val);
		if (batched) {
			/* counted when handed over (flush_batch) */
			*out++ = v;
			if (out == end) {
				p->nbatch = MMAPQ_PARSE_BATCH;
				out = p->batch;
				if ((err = flush_batch(p)) < 0)
					goto out;
			}
			continue;
		}
		err = on_record(ctx, &v, sizeof(v));
		if (err < 0)
			goto out;
		records++;
	}
out:
	p->records += records;
	if (batched)
		p->nbatch = (size_t)(out - p->batch);
	*pi = i;
	return err < 0 ? err : 0;
}

/* One copy of the loop per way of handing records over, so that the
 * batched one keeps its values in registers (on_record takes an address);
 * not inlined into feed_int, whose state would take registers from it. */
static __attribute__((noinline)) int
feed_int_fast(struct mmapq_parser *p, const unsigned char *b, size_t len, size_t *pi)
{
	if (p->on_ints)
		return feed_int_fast_as(p, b, len, pi, true);
	return feed_int_fast_as(p, b, len, pi, false);
}

/*
 * After the fast path took b[from..to): *line counts the '\n' bytes among
 * them and *cbase follows the last one, as feed_int's loop does byte by
 * byte.  With SSE2 (baseline x86-64) 64 bytes at a time: a compare per 16
 * bytes, the matches added up per byte lane (at most 4 a round, so 63
 * rounds cannot overflow a lane), then summed with one psadbw.
 */
static void count_lines(const unsigned char *b, size_t from, size_t to, uint64_t *line,
			uint64_t *cbase)
{
	uint64_t n = 0;
	size_t i = from;

#ifdef PARSE_SSE2
	const __m128i nl = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();

	while (to - i >= 64) {
		size_t rounds = (to - i) / 64;
		__m128i acc = zero, sum;

		if (rounds > 63)
			rounds = 63;
		for (; rounds; rounds--, i += 64) {
			const __m128i *q = (const __m128i *)(const void *)(b + i);
			__m128i m = _mm_add_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(q), nl),
						 _mm_cmpeq_epi8(_mm_loadu_si128(q + 1), nl));

			m = _mm_add_epi8(m, _mm_cmpeq_epi8(_mm_loadu_si128(q + 2), nl));
			m = _mm_add_epi8(m, _mm_cmpeq_epi8(_mm_loadu_si128(q + 3), nl));
			acc = _mm_sub_epi8(acc, m);	/* each match is -1 */
		}
		sum = _mm_sad_epu8(acc, zero);
		n += (uint64_t)_mm_cvtsi128_si64(sum) +
		     (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(sum, sum));
	}
#endif
	for (; i < to; i++)
		n += b[i] == '\n';
	if (n) {
		const unsigned char *nlp = memrchr(b + from, '\n', to - from);

		*line += n;
		*cbase = 0 - (uint64_t)(nlp - b);
	}
}

/* A token's bytes from b[i] on, into *t: its digits (acc, overflow), or
 * bad at the first byte that is neither a digit nor whitespace (then up to
 * the whitespace that ends it).  Returns where it ends, or len. */
static size_t int_token_scan(struct itok *t, const unsigned char *b, size_t i, size_t len)
{
	if (!t->bad) {
		for (; i < len; i++) {
			unsigned int d = (unsigned int)b[i] - '0';

			if (d > 9)
				break;
			t->ovf |= __builtin_mul_overflow(t->acc, 10, &t->acc);
			t->ovf |= __builtin_add_overflow(t->acc, d, &t->acc);
			t->digits = true;
		}
		if (i < len && !is_ws[b[i]])
			t->bad = true;
	}
	if (t->bad)
		while (i < len && !is_ws[b[i]])
			i++;
	return i;
}

/* The chunk ends inside a token whose n bytes in it are s: kept in tok[]
 * for the next chunk, or, if that makes it too long, reported now (the
 * bytes past the bound are never kept) and the rest of it skipped
 * (*st = ST_SKIP).  0, or the negative return of on_ints. */
static int int_token_cut(struct mmapq_parser *p, const unsigned char *s, size_t n, int *st)
{
	int err;

	if (p->tok_len + n <= MMAPQ_PARSE_TOKEN_MAX) {
		memcpy(p->tok + p->tok_len, s, n);
		p->tok_len += n;
		return 0;
	}
	err = flush_batch(p);
	if (err < 0)
		return err;
	report_tok(p, s, n, WHAT_TOKEN_LONG, true);
	*st = ST_SKIP;
	return 0;
}

/*
 * The hot loop for format int: whitespace, then a token's digits, each in a
 * tight loop over the caller's buffer.  A token is copied into tok[] only if
 * the chunk ends inside it, so the common case copies nothing.
 */
static int feed_int(struct mmapq_parser *p, const unsigned char *b, size_t len)
{
	struct itok t = p->itok;
	uint64_t line = p->line;
	uint64_t cbase = p->col;	/* column of b[i] is i + cbase (mod 2^64) */
	size_t i = 0, ts = 0;		/* the current token starts at b[ts] */
	int st = p->state;
	int err;

	for (;;) {
		if (st == ST_START) {
			if (p->fast) {
				size_t from = i;

				err = feed_int_fast(p, b, len, &i);
				if (err < 0) {
					p->state = ST_FAILED;
					return err;
				}
				count_lines(b, from, i, &line, &cbase);
			}
			for (; i < len; i++) {
				unsigned char c = b[i];

				if (!is_ws[c])
					break;
				if (c == '\n') {
					line++;
					cbase = 0 - (uint64_t)i;
				}
			}
			if (i == len)
				break;
			p->tok_line = line;
			p->tok_col = i + cbase;
			p->tok_len = 0;
			ts = i;
			t = (struct itok){ 0 };
			if (b[i] == '-' || b[i] == '+') {
				t.neg = b[i] == '-';
				i++;
			}
			st = ST_TOKEN;
		}
		if (st == ST_TOKEN) {
			i = int_token_scan(&t, b, i, len);
			if (i == len) {
				err = int_token_cut(p, b + ts, len - ts, &st);
				if (err < 0) {
					p->state = ST_FAILED;
					return err;
				}
				break;
			}
			err = int_end(p, &t, b + ts, i - ts);
			if (err < 0) {
				p->state = ST_FAILED;
				return err;
			}
			st = ST_START;
			continue;
		}
		/* ST_SKIP */
		while (i < len && !is_ws[b[i]])
			i++;
		if (i == len)
			break;
		st = ST_START;
	}
	p->itok = t;
	p->line = line;
	p->col = len + cbase;
	p->state = st;
	err = flush_batch(p);
	if (err < 0) {
		p->state = ST_FAILED;
		return err;
	}
	return 0;
}

/*
 * s[0..n) continues the current line (p->lb_len good bytes so far) and
 * contains no '\n'.  Return the error that the first bad byte among them
 * makes, or NULL, with *idx = that byte's index in s.
 */
static const char *line_check(const struct mmapq_parser *p, const unsigned char *s, size_t n,
			      size_t *idx)
{
	size_t have = p->lb_len, rs = p->max_record;
	size_t ti = SIZE_MAX;	/* index in s of the byte that makes the line too long */
	const unsigned char *z;

	if (have + n > rs) {
		if (have <= rs) {
			size_t k = rs - have;	/* s[k] is byte rs + 1 of the line */

			/* a '\r' there is still fine if '\n' follows it */
			if (s[k] != '\r')
				ti = k;
			else if (k + 1 < n)
				ti = k + 1;
		} else if (n > 0) {
			ti = 0;		/* the CR of a CRLF was seen, and no LF came */
		}
	}
	z = memchr(s, '\0', ti == SIZE_MAX ? n : ti + 1);
	if (z) {
		*idx = (size_t)(z - s);
		return WHAT_NUL;
	}
	if (ti != SIZE_MAX) {
		*idx = ti;
		return WHAT_LINE_LONG;
	}
	return NULL;
}

static void line_report(struct mmapq_parser *p, const char *what, const unsigned char *s,
			size_t idx)
{
	if (what == WHAT_NUL)
		report(p, p->line, p->lb_len + idx + 1, what, p->lb, p->lb_len, s, idx + 1, false);
	else
		report(p, p->line, 1, what, p->lb, p->lb_len, s, idx + 1, true);
}

/* ---- format line and binary: records one by one, or in batches ---------- */

/* Hand the collected records to on_records; 0 or its error (not counted).
 * Then the parser's buffer, which the first of them may point into, may
 * be reused or given back. */
static int flush_records(struct mmapq_parser *p)
{
	size_t n = p->nrecs;
	int err;

	if (!n)
		return 0;
	p->nrecs = 0;
	err = p->on_records(p->ctx, p->recs, n);
	if (err < 0)
		return err;
	p->records += n;
	lb_shrink(p);
	return 0;
}

/* One line or binary record: to on_record, or into the batch (data stays
 * where it is: the caller's chunk, or lb, which is not written again
 * before the batch is flushed). */
static int emit_record(struct mmapq_parser *p, const unsigned char *data, size_t len)
{
	int err;

	if (p->on_records) {
		p->recs[p->nrecs++] = (struct mmapq_iovec){data, (uint32_t)len};
		return p->nrecs == MMAPQ_PARSE_BATCH ? flush_records(p) : 0;
	}
	err = p->on_record(p->ctx, data, (uint32_t)len);
	if (err < 0)
		return err;
	p->records++;
	lb_shrink(p);
	return 0;
}

/* n bytes from s appended to lb (the record continues in a later chunk):
 * the batch handed over first, as it may point into lb. */
static int lb_keep(struct mmapq_parser *p, const unsigned char *s, size_t n)
{
	int err = flush_records(p);

	if (err < 0 || !n)
		return err;
	if (lb_reserve(p, p->lb_len + n) < 0)
		return -ENOMEM;
	memcpy(p->lb + p->lb_len, s, n);
	p->lb_len += n;
	return 0;
}

#ifndef PARSE_SSE2
/* 0x80 in every byte of w that is 0, exactly (no carry crosses a byte). */
static inline uint64_t zero_bytes(uint64_t w)
{
	return ~(((w & (0x7f * ONES8)) + 0x7f * ONES8) | w) & (0x80 * ONES8);
}
#endif

/*
 * The first '\n' or NUL of s[0..n), or n: both looked for in one pass, 16
 * bytes at a time with SSE2 (x86-64's baseline: a mask of the bytes equal
 * to either), else 8 at a time (SWAR); the last few bytes one by one.  A
 * line has no NUL, so for a good line this is the only look at its bytes.
 */
static inline size_t line_stop(const unsigned char *s, size_t n)
{
	size_t i = 0;

#ifdef PARSE_SSE2
	const __m128i nl = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();

	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		unsigned m = (unsigned)_mm_movemask_epi8(
			_mm_or_si128(_mm_cmpeq_epi8(v, nl), _mm_cmpeq_epi8(v, zero)));

		if (m)
			return i + (size_t)__builtin_ctz(m);
	}
#else
	for (; i + 8 <= n; i += 8) {
		uint64_t w = load8(s + i), m = zero_bytes(w) | zero_bytes(w ^ ('\n' * ONES8));

		if (m)
			return i + (size_t)(__builtin_ctzll(m) >> 3);
	}
#endif
	for (; i < n; i++)
		if (s[i] == '\n' || !s[i])
			break;
	return i;
}

#ifdef PARSE_SSE2
/*
 * line_stop compiled for AVX2, picked per feed where the CPU has it (the
 * producer is built for baseline x86-64): 64 bytes a step, both bytes in
 * one mask, which for a long line costs about what one memchr did (the
 * SSE2 loop took twice the instructions of the two memchr passes it
 * replaced on lines of 1 KiB).  The rest of the chunk by line_stop.
 */
__attribute__((target("avx2"), always_inline)) static inline size_t
line_stop_avx2(const unsigned char *s, size_t n)
{
	const __m256i nl = _mm256_set1_epi8('\n'), zero = _mm256_setzero_si256();
	size_t i = 0;

	for (; i + 64 <= n; i += 64) {
		__m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(s + i));
		__m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(s + i + 32));
		__m256i ma = _mm256_or_si256(_mm256_cmpeq_epi8(a, nl), _mm256_cmpeq_epi8(a, zero));
		__m256i mb = _mm256_or_si256(_mm256_cmpeq_epi8(b, nl), _mm256_cmpeq_epi8(b, zero));
		uint64_t m = (uint32_t)_mm256_movemask_epi8(ma) |
		             (uint64_t)(uint32_t)_mm256_movemask_epi8(mb) << 32;

		if (m)
			return i + (size_t)__builtin_ctzll(m);
	}
	return i + line_stop(s + i, n - i);
}
#endif

/* A bad line, decided by line_check: reported (the batch before it handed
 * over first, so records and errors keep their order), and forgotten. */
static int line_bad(struct mmapq_parser *p, const char *what, const unsigned char *s, size_t idx)
{
	int err = flush_records(p);

	if (err < 0)
		return err;
	line_report(p, what, s, idx);
	p->lb_len = 0;
	return 0;
}

/*
 * format line: line_stop finds each '\n' (and any NUL, in the same pass);
 * a line wholly inside the chunk goes to on_record (or into the batch)
 * straight from the caller's buffer, only a line cut by the end of the
 * chunk is copied.  0, or -errno (the parser is dead then).
 */
__attribute__((always_inline)) static inline int
feed_line_run(struct mmapq_parser *p, const unsigned char *b, size_t len,
              size_t (*stop)(const unsigned char *, size_t))
{
	size_t pos = 0;

	while (pos < len) {
		const unsigned char *s = b + pos, *data = s;
		size_t n, idx, rlen;
		const char *what = NULL;
		bool nl;
		int err;

		if (p->state == ST_SKIP) {
			const unsigned char *e = memchr(s, '\n', len - pos);
			if (!e)
				return 0;
			p->state = ST_START;
			p->line++;
			pos += (size_t)(e - s) + 1;
			continue;
		}
		n = stop(s, len - pos);
		if (n < len - pos && !s[n]) {
			/* a NUL: the line is bad; where it ends */
			const unsigned char *e = memchr(s + n, '\n', len - pos - n);
			n = e ? (size_t)(e - s) : len - pos;
			what = line_check(p, s, n, &idx);
		} else if (p->lb_len + n > p->max_record) {
			what = line_check(p, s, n, &idx);
		}
		nl = n < len - pos;
		if (what) {
			if ((err = line_bad(p, what, s, idx)) < 0)
				return err;
			if (!nl) {
				p->state = ST_SKIP;
				return 0;
			}
			p->line++;
			pos += n + 1;
			continue;
		}
		if (!nl)
			return lb_keep(p, s, n);
		rlen = n;
		if (p->lb_len) {
			/* the batch does not point into lb: it was handed
			 * over when lb was last written (lb_keep) */
			if (lb_reserve(p, p->lb_len + n) < 0)
				return -ENOMEM;
			memcpy(p->lb + p->lb_len, s, n);
			data = p->lb;
			rlen = p->lb_len + n;
		}
		if (rlen > 0 && data[rlen - 1] == '\r')
			rlen--;
		p->lb_len = 0;
		p->line++;
		pos += n + 1;
		if ((err = emit_record(p, data, rlen)) < 0)
			return err;
	}
	return 0;
}

/* feed_line_run with each scan inlined (one copy compiled for AVX2) */
static int feed_line_base(struct mmapq_parser *p, const unsigned char *b, size_t len)
{
	return feed_line_run(p, b, len, line_stop);
}

#ifdef PARSE_SSE2
__attribute__((target("avx2"))) static int feed_line_avx2(struct mmapq_parser *p,
                                                          const unsigned char *b, size_t len)
{
	return feed_line_run(p, b, len, line_stop_avx2);
}

static bool have_avx2(void)
{
	static int have = -1;

	if (have < 0)
		have = __builtin_cpu_supports("avx2") ? 1 : 0;
	return have;
}
#endif

static int feed_line(struct mmapq_parser *p, const unsigned char *b, size_t len)
{
	int err;

#ifdef PARSE_SSE2
	if (p->fast && have_avx2())
		err = feed_line_avx2(p, b, len);
	else
#endif
		err = feed_line_base(p, b, len);

	if (err == 0)
		err = flush_records(p);
	if (err < 0)
		p->state = ST_FAILED;
	return err;
}

/* format binary: the current record refused (its prefix shown). */
static void binary_report(struct mmapq_parser *p, const char *what)
{
	report(p, p->records + p->errors + 1, p->rec_start + 1, what, p->prefix, p->prefix_len, NULL,
	       0, false);
}

/*
 * format binary: each record is a 4-byte big-endian length and that many
 * bytes.  A record wholly inside the chunk goes to on_record straight from
 * the caller's buffer; only one cut by the end of the chunk is copied.  A
 * record longer than max_record is reported at its prefix and its bytes
 * are skipped (the length says how many), so the records after it are
 * read as sent.
 */
static int feed_binary_run(struct mmapq_parser *p, const unsigned char *b, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		size_t n;
		int err;

		if (p->skip) {
			n = len - pos < p->skip ? len - pos : p->skip;
			p->skip -= (uint32_t)n;
			pos += n;
			if (!p->skip)
				p->prefix_len = 0;
			continue;
		}
		if (p->prefix_len < 4) {
			if (!p->prefix_len) {
				p->rec_start = p->offset + pos;
				if (len - pos >= 4) {
					/* the whole prefix in the chunk: at once */
					memcpy(p->prefix, b + pos, 4);
					p->prefix_len = 4;
					pos += 4;
				}
			}
			if (p->prefix_len < 4) {
				p->prefix[p->prefix_len++] = b[pos++];
				if (p->prefix_len < 4)
					continue;
			}
			p->rec_len = (uint32_t)p->prefix[0] << 24 | (uint32_t)p->prefix[1] << 16 |
			             (uint32_t)p->prefix[2] << 8 | p->prefix[3];
			if (p->rec_len > p->max_record) {
				/* the batch before it handed over first */
				if ((err = flush_records(p)) < 0)
					return err;
				binary_report(p, WHAT_RECORD_LONG);
				p->skip = p->rec_len;
				if (!p->skip)
					p->prefix_len = 0;
				continue;
			}
		}
		/* the payload: rec_len - lb_len bytes still to come */
		n = p->rec_len - p->lb_len;
		if (n > len - pos)
			return lb_keep(p, b + pos, len - pos);
		pos += n;
		if (p->lb_len) {
			/* the batch does not point into lb (lb_keep handed it
			 * over): lb may move */
			if (lb_reserve(p, p->rec_len) < 0)
				return -ENOMEM;
			memcpy(p->lb + p->lb_len, b + pos - n, n);
			err = emit_record(p, p->lb, p->rec_len);
		} else {
			err = emit_record(p, b + pos - n, p->rec_len);
		}
		p->lb_len = 0;
		p->prefix_len = 0;
		if (err < 0)
			return err;
	}
	return 0;
}

static int feed_binary(struct mmapq_parser *p, const unsigned char *b, size_t len)
{
	int err = feed_binary_run(p, b, len);

	if (err == 0)
		err = flush_records(p);
	if (err < 0) {
		p->state = ST_FAILED;
		return err;
	}
	p->offset += len;
	return 0;
}

int mmapq_parser_new(uint32_t format, uint32_t max_record, mmapq_record_fn on_record,
		     mmapq_parse_error_fn on_error, void *ctx, struct mmapq_parser **ret)
{
	struct mmapq_parser *p;

	if (!on_record || !on_error || !ret)
		return -EINVAL;
	if (max_record < MMAPQ_MAX_RECORD_MIN || max_record > MMAPQ_MAX_RECORD_MAX)
		return -EINVAL;
	switch (format) {
	case MMAPQ_FORMAT_INT:
		if (max_record < sizeof(int64_t))
			return -EINVAL;
		break;
	case MMAPQ_FORMAT_LINE:
	case MMAPQ_FORMAT_BINARY:
		break;
	default:
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->format = format;
	p->max_record = max_record;
	p->on_record = on_record;
	p->on_error = on_error;
	p->ctx = ctx;
	p->state = ST_START;
	p->fast = true;
	p->line = 1;
	p->col = 1;
	*ret = p;
	return 0;
}

/* After a feed of b[0..len): the bytes of the record in progress, from the
 * last byte that ended one (int: whitespace; line: '\n'; binary: the
 * parser knows where the record began). */
static void track_part(struct mmapq_parser *p, const unsigned char *b, size_t len)
{
	size_t i = len;

	if (p->format == MMAPQ_FORMAT_BINARY) {
		p->part = p->prefix_len ? p->offset - p->rec_start : 0;
		return;
	}
	if (p->format == MMAPQ_FORMAT_LINE) {
		const unsigned char *nl = memrchr(b, '\n', len);
		i = nl ? len - (size_t)(nl - b) - 1 : len;
	} else {
		while (i && !is_ws[b[i - 1]])
			i--;
		i = len - i;
	}
	p->part = i < len ? i : p->part + len;
}

int mmapq_parser_feed(struct mmapq_parser *p, const char *buf, size_t len)
{
	const unsigned char *b = (const unsigned char *)buf;
	int r;

	if (!p || (!buf && len) || p->state == ST_DONE || p->state == ST_FAILED)
		return -EINVAL;
	if (len == 0)
		return 0;
	if (p->format == MMAPQ_FORMAT_INT)
		r = feed_int(p, b, len);
	else if (p->format == MMAPQ_FORMAT_BINARY)
		r = feed_binary(p, b, len);
	else
		r = feed_line(p, b, len);
	if (r == 0)
		track_part(p, b, len);
	return r;
}

int mmapq_parser_finish(struct mmapq_parser *p)
{
	int err = 0;

	if (!p || p->state == ST_DONE || p->state == ST_FAILED)
		return -EINVAL;
	if (p->format == MMAPQ_FORMAT_INT) {
		if (p->state == ST_TOKEN)
			err = int_end(p, &p->itok, NULL, 0);
		if (err >= 0)
			err = flush_batch(p);
	} else if (p->format == MMAPQ_FORMAT_BINARY) {
		if (p->prefix_len && !p->skip)
			binary_report(p, WHAT_RECORD_CUT); /* a prefix or a payload cut short */
		p->lb_len = 0;
	} else if (p->state == ST_START && p->lb_len > 0) {
		/* only a CR at byte max_record + 1 can have been kept past
		 * max_record, and without its LF it is part of the line */
		if (p->lb_len > p->max_record) {
			report(p, p->line, 1, WHAT_LINE_LONG, p->lb, p->lb_len, NULL, 0, true);
		} else {
			err = emit_record(p, p->lb, p->lb_len);
			if (err >= 0)
				err = flush_records(p);
		}
		p->lb_len = 0;
	}
	if (err < 0) {
		p->state = ST_FAILED;
		return err;
	}
	p->state = ST_DONE;
	p->part = 0;
	return 0;
}

int mmapq_parser_set_int_batch(struct mmapq_parser *p, mmapq_ints_fn on_ints)
{
	if (!p || p->format != MMAPQ_FORMAT_INT)
		return -EINVAL;
	p->on_ints = on_ints; /* batch[] is empty between feeds */
	return 0;
}

int mmapq_parser_set_record_batch(struct mmapq_parser *p, mmapq_records_fn on_records)
{
	if (!p || p->format == MMAPQ_FORMAT_INT)
		return -EINVAL;
	p->on_records = on_records; /* recs[] is empty between feeds */
	return 0;
}

void mmapq_parser_set_fast_path(struct mmapq_parser *p, bool on)
{
	if (p)
		p->fast = on;
}

uint64_t mmapq_parser_records(const struct mmapq_parser *p)
{
	return p ? p->records : 0;
}

uint64_t mmapq_parser_errors(const struct mmapq_parser *p)
{
	return p ? p->errors : 0;
}

void mmapq_parser_free(struct mmapq_parser *p)
{
	if (p)
		free(p->lb);
	free(p);
}

/* ---- how much input fits in the ring ------------------------------------ */

/*
 * These only read the parser's state and the bytes they are given; they
 * follow the machines above to the record: where each record ends, which
 * ones the parser will refuse (they take no room), and the length of each
 * one it will put, so that the count is exact (format int: a token that
 * will be refused still counts as a record, the one way it is too small).
 * A record ends in buf when the byte that ends it is in buf.
 */

#define FRAME_INT 16 /* mmapq_frame_size(sizeof(int64_t)) */

/* 0x80 in every byte of w that ends an int token when it follows one:
 * ' ' or '\t'..'\r' (C-locale isspace), exactly, byte by byte (no carry
 * crosses a byte: every sum stays below 0x100). */
static inline uint64_t ws_bytes(uint64_t w)
{
	uint64_t y = w & (0x7f * ONES8), z = w ^ (0x20 * ONES8);
	uint64_t ge9 = y + (0x80 - 0x09) * ONES8, gt13 = y + (0x80 - 0x0e) * ONES8;
	uint64_t ne20 = (z & (0x7f * ONES8)) + 0x7f * ONES8;

	return ((ge9 & ~gt13 & ~w) | ~(ne20 | z)) & (0x80 * ONES8);
}

static bool int_space(unsigned char ch)
{
	return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

/* inside an int token (or the rest of one being skipped) */
static bool int_in_token(const struct mmapq_parser *p)
{
	return p->state == ST_TOKEN || p->state == ST_SKIP;
}

/*
 * format int: the bytes of b[0..n) that end at most max tokens, and the
 * whitespace after the last of them (it completes nothing; a token the
 * bytes leave unfinished counts, as it will take a record when it ends).
 * 8 bytes at a time, the token ends of a word (a whitespace byte after a
 * non-whitespace one) counted with one multiplication; the word where the
 * max-th one lies is gone through byte by byte.  first: no further than
 * the end of the first token.
 */
static size_t cut_int(const struct mmapq_parser *p, const unsigned char *b, size_t n, uint64_t max,
                      bool first, uint64_t *need)
{
	bool in = int_in_token(p);
	uint64_t done = 0;
	size_t i = 0;

	if (first && max > 1)
		max = 1;
	if (!max) {
		/* nothing may end, and nothing may begin: leading whitespace only */
		if (!in)
			while (i < n && int_space(b[i]))
				i++;
		if (i < n)
			*need = FRAME_INT;
		return i;
	}
	for (; i + 8 <= n; i += 8) {
		uint64_t w, ws, ends, k;

		memcpy(&w, b + i, sizeof(w));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		w = __builtin_bswap64(w);
#endif
		ws = ws_bytes(w);
		/* a byte ends a token if it is whitespace and the one before it
		 * (the last of the previous word: in) is not */
		ends = ws & ~((ws << 8) | (in ? 0 : 0x80));
		/* one bit per byte at most: the sum of the bytes, in the top one
		 * (no popcnt instruction in the baseline x86-64) */
		k = ((ends >> 7) * ONES8) >> 56;
		if (done + k >= max)
			break; /* the max-th end is in this word */
		done += k;
		in = !(ws >> 63);
	}
	for (; i < n; i++) {
		if (!int_space(b[i])) {
			in = true;
		} else if (in) {
			in = false;
			if (++done == max) {
				if (first)
					return i + 1;
				while (++i < n && int_space(b[i]))
					;
				if (i < n)
					*need = FRAME_INT; /* a token starts that does not fit */
				return i;
			}
		}
	}
	/* fewer than max ended: one more, unfinished, still fits */
	return n;
}

/* Ring bytes of a line record of len bytes (what the parser puts of a line
 * of len bytes whose last one is last: a CR before the '\n' is dropped), or
 * 0 if it will refuse it as too long. */
static uint64_t line_frame(const struct mmapq_parser *p, uint64_t len, unsigned char last)
{
	if (len && last == '\r')
		len--;
	return len > p->max_record ? 0 : mmapq_frame_size((uint32_t)len);
}

static size_t cut_line(const struct mmapq_parser *p, const unsigned char *b, size_t n,
                       uint64_t room, unsigned flags, uint64_t *need)
{
	const unsigned char *s = b, *end = b + n, *nl;
	bool skip = p->state == ST_SKIP;
	uint64_t used = 0, carried = skip ? 0 : p->lb_len;
	uint64_t f, len;

	while ((nl = memchr(s, '\n', (size_t)(end - s))) != NULL) {
		/* the byte before the '\n': in buf, or the last one kept */
		unsigned char last = nl > s ? nl[-1] : carried ? p->lb[carried - 1] : 0;

		f = 0;
		if (!skip && !memchr(s, '\0', (size_t)(nl - s)))
			f = line_frame(p, carried + (uint64_t)(nl - s), last);
		if (used + f > room) {
			*need = f;
			return (size_t)(s - b);
		}
		used += f;
		skip = false;
		carried = 0;
		s = nl + 1;
		if (flags & MMAPQ_CUT_FIRST)
			return (size_t)(s - b);
	}
	if (!(flags & MMAPQ_CUT_WHOLE) || skip || (s == end && !carried))
		return n;
	/* a line left unfinished: at its largest, unless it is refused already
	 * (too long: only a CR may follow its first max_record bytes, and only
	 * as the last byte before the '\n') */
	len = carried + (uint64_t)(end - s);
	f = 0;
	if ((len <= p->max_record ||
	     (len == (uint64_t)p->max_record + 1 && (end > s ? end[-1] : p->lb[carried - 1]) == '\r')) &&
	    !memchr(s, '\0', (size_t)(end - s)))
		f = mmapq_frame_size(p->max_record);
	if (used + f > room) {
		*need = f;
		return (size_t)(s - b);
	}
	return n;
}

static size_t cut_binary(const struct mmapq_parser *p, const unsigned char *b, size_t n,
                         uint64_t room, unsigned flags, uint64_t *need)
{
	unsigned char prefix[4];
	size_t plen = p->prefix_len, pos = 0, start = 0;
	uint64_t skip = p->skip, have = p->lb_len, used = 0, f;
	uint32_t rlen = p->rec_len;

	memcpy(prefix, p->prefix, sizeof(prefix));
	while (pos < n) {
		uint64_t left;

		if (skip) {
			left = n - pos < skip ? n - pos : skip;
			skip -= left;
			pos += (size_t)left;
			if (!skip) {
				plen = 0;
				start = pos;
				if (flags & MMAPQ_CUT_FIRST)
					return pos;
			}
			continue;
		}
		if (plen < 4) {
			prefix[plen++] = b[pos++];
			if (plen < 4)
				continue;
			rlen = (uint32_t)prefix[0] << 24 | (uint32_t)prefix[1] << 16 |
			       (uint32_t)prefix[2] << 8 | prefix[3];
			have = 0;
			if (rlen > p->max_record) {
				skip = rlen; /* refused: takes nothing */
				continue;
			}
		}
		left = rlen - have;
		if (left > n - pos)
			break; /* the record ends in a later chunk */
		f = mmapq_frame_size(rlen);
		if (used + f > room) {
			*need = f;
			return start;
		}
		used += f;
		pos += (size_t)left;
		have = 0;
		plen = 0;
		start = pos;
		if (flags & MMAPQ_CUT_FIRST)
			return pos;
	}
	if (!(flags & MMAPQ_CUT_WHOLE) || skip || !plen)
		return n;
	/* a record left unfinished: its own frame once its length is known */
	f = mmapq_frame_size(plen == 4 ? rlen : p->max_record);
	if (used + f > room) {
		*need = f;
		return start;
	}
	return n;
}

size_t mmapq_parser_cut(const struct mmapq_parser *p, const char *buf, size_t n, uint64_t room,
                        unsigned flags, uint64_t *need)
{
	const unsigned char *b = (const unsigned char *)buf;

	*need = 0;
	if (p->format == MMAPQ_FORMAT_INT)
		return cut_int(p, b, n, room / FRAME_INT, flags & MMAPQ_CUT_FIRST, need);
	if (p->format == MMAPQ_FORMAT_BINARY)
		return cut_binary(p, b, n, room, flags, need);
	return cut_line(p, b, n, room, flags, need);
}

/*
 * The bounds, from the least input a record takes and the most ring bytes
 * it can take (a frame is at most its payload and 15 bytes):
 *   int:    a token needs a separator in the read, and every one after the
 *           first (which may have begun earlier) a digit too: k bytes end
 *           at most (k + 1) / 2 tokens, and leave at most one unfinished
 *           among k / 2 + 1; 16 ring bytes each.
 *   line:   a line needs its '\n' in the read: the lines k bytes end take
 *           at most their bytes, the kept ones of the first among them
 *           (lb_len) and 14 per line: lb_len + 15 k.
 *   binary: a record needs its 4-byte prefix in the read, but for the one
 *           begun earlier (carried: the bytes of it seen): at most
 *           k / 4 + 1 records, carried + k + 11 per record <= carried + 11
 *           + 4 k.
 * With MMAPQ_CUT_WHOLE a line or binary record left unfinished takes up to
 * frame(max_record) more.  A read of one byte ends at most the record in
 * progress (or an empty one): the room it needs is *need.
 */
uint64_t mmapq_parser_blind_bound(const struct mmapq_parser *p, uint64_t room, unsigned flags,
                                  uint64_t *need)
{
	bool whole = flags & MMAPQ_CUT_WHOLE, first = flags & MMAPQ_CUT_FIRST;
	uint64_t top = mmapq_frame_size(p->max_record), one, k, rest = 1;

	*need = 0;
	if (p->format == MMAPQ_FORMAT_INT) {
		one = FRAME_INT;
		k = room / FRAME_INT ? 2 * (room / FRAME_INT) - 1 : 0;
	} else if (p->format == MMAPQ_FORMAT_LINE) {
		uint64_t kept = p->state == ST_SKIP ? 0 : p->lb_len;
		uint64_t base = (whole ? top : 0) + kept;

		one = whole ? top : mmapq_frame_size(kept < p->max_record ? (uint32_t)kept : p->max_record);
		k = room >= base ? (room - base) / 15 : 0;
	} else {
		bool known = p->prefix_len == 4 && !p->skip;
		uint64_t carried = p->skip ? 0 : p->prefix_len + p->lb_len;
		uint64_t base = (whole ? top : 0) + carried + 11;

		if (known)
			one = mmapq_frame_size(p->rec_len);
		else
			one = whole && !p->skip ? top : mmapq_frame_size(0);
		k = room >= base ? (room - base) / 4 : 0;
		/* what is left of the record in progress: its prefix, its
		 * payload, or the payload of a refused one */
		rest = p->skip ? p->skip : p->prefix_len < 4 ? 4 - p->prefix_len : p->rec_len - p->lb_len;
	}
	if (room < one) {
		*need = one;
		return 0;
	}
	if (!k)
		k = 1;
	if (first && k > rest)
		k = rest;
	return k;
}

uint64_t mmapq_parser_partial(const struct mmapq_parser *p)
{
	return p->part;
}

uint64_t mmapq_parser_final_frame(const struct mmapq_parser *p)
{
	const struct itok *t = &p->itok;

	switch (p->format) {
	case MMAPQ_FORMAT_INT:
		/* as int_end decides: a token of at most MMAPQ_PARSE_TOKEN_MAX
		 * bytes (a longer one is ST_SKIP) */
		if (p->state != ST_TOKEN || t->bad || !t->digits || t->ovf ||
		    t->acc > (uint64_t)INT64_MAX + t->neg)
			return 0;
		return FRAME_INT;
	case MMAPQ_FORMAT_LINE:
		/* as finish: a CR there is part of the line */
		if (p->state != ST_START || !p->lb_len || p->lb_len > p->max_record)
			return 0;
		return mmapq_frame_size((uint32_t)p->lb_len);
	default:
		return 0; /* an unfinished binary record is refused */
	}
}
