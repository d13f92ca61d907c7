/* SPDX-License-Identifier: MIT */
/*
 * test_parse.c -- the streaming record parser (common/records/parse.c) and its
 * inverse, the integer formatter (common/records/fmt.h).
 *
 * Every run turns the callbacks into a text log ("R ..." per record, "E
 * line:col what [excerpt]" per error) so that results of different chunkings
 * can be compared as strings, and a failure shows both logs.  Each chunk is
 * fed from its own exactly-sized heap copy that is freed right after the
 * feed, so ASan/valgrind catch any read past a chunk or any pointer the
 * parser keeps into the caller's buffer.
 *
 * format int has a fast path for short tokens that start at least 32 bytes
 * before the end of a chunk (parse.c).  Every int case is therefore also
 * run with whitespace after the input (so that every token is in reach of
 * the fast path) and with the fast path off, and a differential test
 * compares the two on random input made of every kind of token, whole and
 * cut at every position.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fmt.h"
#include "mmapq_format.h"
#include "parse.h"
#include "testutil.h"

/* nothing here has a queue to show on a failure */
#define EXPECT(cond, ...) TU_EXPECT(NULL, cond, __VA_ARGS__)
#define EXPECT_INT(a, b) TU_EXPECT_INT(NULL, a, b)
#define EXPECT_STR(a, b) TU_EXPECT_STR(NULL, a, b)
#define EXPECT_MEM(a, b, n) TU_EXPECT_MEM(NULL, a, b, n)

/* ---- growable string ---- */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const void *d, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			tu_die("realloc");
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3)))
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	char *tmp;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		tu_die("vasprintf");
	sb_add(b, tmp, (size_t)n);
	free(tmp);
}

static char *sb_take(struct sbuf *b)
{
	char *s = b->p ? b->p : strdup("");

	if (!s)
		tu_die("strdup");
	b->p = NULL;
	b->len = b->cap = 0;
	return s;
}

/* ---- collecting callbacks ---- */

struct coll {
	uint32_t format;
	struct sbuf log;
	uint64_t nrec, nerr;
	uint64_t fail_at;	/* record number (1-based) that gets fail_err; 0 = none */
	int fail_err;
	const char *chunk;	/* the chunk being fed, for the zero-copy check */
	size_t chunk_len;
	uint64_t in_chunk;	/* records whose data pointed into the chunk */
	bool log_batches;	/* on_ints: "B n" before each batch's records */
	uint64_t nbatches;
};

static int on_record(void *ctx, const void *data, uint32_t len)
{
	struct coll *c = ctx;
	const unsigned char *d = data;

	if (c->fail_at && c->nrec + 1 == c->fail_at)
		return c->fail_err;
	c->nrec++;
	if (c->chunk && d >= (const unsigned char *)c->chunk &&
	    d + len <= (const unsigned char *)c->chunk + c->chunk_len)
		c->in_chunk++;
	if (c->format == MMAPQ_FORMAT_INT) {
		int64_t v;

		EXPECT_INT(len, sizeof(v));
		memcpy(&v, data, sizeof(v));
		sb_printf(&c->log, "R %" PRId64 "\n", v);
		return 0;
	}
	/* the test's own escaping, independent of the parser's */
	sb_printf(&c->log, "R %" PRIu32 " [", len);
	for (uint32_t i = 0; i < len; i++) {
		if (d[i] == '\\')
			sb_str(&c->log, "\\\\");
		else if (d[i] >= 0x20 && d[i] < 0x7f)
			sb_add(&c->log, &d[i], 1);
		else
			sb_printf(&c->log, "\\x%02x", d[i]);
	}
	sb_str(&c->log, "]\n");
	return 0;
}

/* Batches (mmapq_parser_set_int_batch): each value as on_record logs it. */
static int on_ints(void *ctx, const int64_t *v, size_t n)
{
	struct coll *c = ctx;

	EXPECT(n >= 1 && n <= MMAPQ_PARSE_BATCH, "a batch of %zu values", n);
	c->nbatches++;
	if (c->log_batches)
		sb_printf(&c->log, "B %zu\n", n);
	for (size_t i = 0; i < n; i++) {
		int err = on_record(ctx, &v[i], sizeof(v[i]));
		if (err < 0)
			return err;
	}
	return 0;
}

/* Batches (mmapq_parser_set_record_batch): each record as on_record logs
 * it (and counts it as in the chunk where its data is). */
static int on_records(void *ctx, const struct mmapq_iovec *r, size_t n)
{
	struct coll *c = ctx;

	EXPECT(n >= 1 && n <= MMAPQ_PARSE_BATCH, "a batch of %zu records", n);
	c->nbatches++;
	if (c->log_batches)
		sb_printf(&c->log, "B %zu\n", n);
	for (size_t i = 0; i < n; i++) {
		int err = on_record(ctx, r[i].data, r[i].len);
		if (err < 0)
			return err;
	}
	return 0;
}

static void on_error(void *ctx, const struct mmapq_parse_error *e)
{
	struct coll *c = ctx;

	c->nerr++;
	EXPECT(e->what, "an error at %" PRIu64 ":%" PRIu64 " says nothing", e->line, e->column);
	EXPECT(memchr(e->excerpt, '\0', sizeof(e->excerpt)), "the excerpt of the error at %" PRIu64
	       ":%" PRIu64 " does not end", e->line, e->column);
	for (const char *s = e->excerpt; *s; s++)
		EXPECT(*s >= 0x20 && *s < 0x7f, "excerpt '%s': byte 0x%02x", e->excerpt,
		       (unsigned)(unsigned char)*s);
	sb_printf(&c->log, "E %" PRIu64 ":%" PRIu64 " %s [%s]\n", e->line, e->column, e->what,
		  e->excerpt);
}

/* ---- runners ---- */

static bool fast_path = true;	/* what run_cuts sets: mmapq_parser_set_fast_path */
static bool batched;		/* run_cuts takes records in batches (on_ints, on_records) */
/* when set, run_cuts feeds each chunk from the guard_room bytes before
 * guard_end, which a PROT_NONE page follows (int_guard_page) */
static char *guard_end;
static size_t guard_room;

/*
 * Parse in[0..len) cut at cuts[0..ncuts) (ascending); return the log.
 * Checks that the parser's counters agree with the callbacks.
 */
static char *run_cuts(uint32_t fmt, uint32_t rs, const char *in, size_t len,
		      const size_t *cuts, size_t ncuts)
{
	struct mmapq_parser *p = NULL;
	struct coll c = { .format = fmt };
	size_t at = 0;

	EXPECT_INT(mmapq_parser_new(fmt, rs, on_record, on_error, &c, &p), 0);
	mmapq_parser_set_fast_path(p, fast_path);
	if (batched && fmt == MMAPQ_FORMAT_INT)
		EXPECT_INT(mmapq_parser_set_int_batch(p, on_ints), 0);
	else if (batched)
		EXPECT_INT(mmapq_parser_set_record_batch(p, on_records), 0);
	for (size_t k = 0; k <= ncuts; k++) {
		size_t end = k < ncuts ? cuts[k] : len;
		size_t n = end - at;
		char *chunk;

		EXPECT(end >= at && end <= len, "cut %zu at %zu, after %zu, in %zu bytes", k, end, at, len);
		if (n == 0)
			continue;
		EXPECT(!guard_end || n <= guard_room, "a chunk of %zu bytes before the guard page", n);
		chunk = guard_end ? guard_end - n : malloc(n);
		if (!chunk)
			tu_die("malloc");
		memcpy(chunk, in + at, n);
		EXPECT_INT(mmapq_parser_feed(p, chunk, n), 0);
		/* batched or not, all of it is handed over when feed returns */
		EXPECT_INT(mmapq_parser_records(p), c.nrec);
		if (!guard_end)
			free(chunk);
		at = end;
	}
	EXPECT_INT(mmapq_parser_finish(p), 0);
	EXPECT_INT(mmapq_parser_records(p), c.nrec);
	EXPECT_INT(mmapq_parser_errors(p), c.nerr);
	mmapq_parser_free(p);
	return sb_take(&c.log);
}

static char *run_whole(uint32_t fmt, uint32_t rs, const char *in, size_t len)
{
	return run_cuts(fmt, rs, in, len, NULL, 0);
}

/* Chunks of step bytes (the last one shorter). */
static char *run_step(uint32_t fmt, uint32_t rs, const char *in, size_t len, size_t step)
{
	size_t n = len / step, *cuts = calloc(n + 1, sizeof(*cuts));
	char *log;

	if (!cuts)
		tu_die("calloc");
	for (size_t k = 0; k < n; k++)
		cuts[k] = (k + 1) * step;
	log = run_cuts(fmt, rs, in, len, cuts, n);
	free(cuts);
	return log;
}

/* in[0..len) whole (step 0) and in chunks of each of steps[0..n) gives want. */
static void check_steps(uint32_t fmt, uint32_t rs, const char *in, size_t len, const char *want,
			const size_t *steps, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		char *got = steps[k] ? run_step(fmt, rs, in, len, steps[k]) : run_whole(fmt, rs, in, len);

		if (strcmp(got, want) != 0)
			fprintf(stderr, "chunks of %zu bytes (0: whole)\n", steps[k]);
		EXPECT_STR(got, want);
		free(got);
	}
}

#define PAD 40	/* > the fast path's margin */

/* in[0..len) and PAD spaces: for format int, the same callbacks as in alone
 * (a token ended by a space is decided as one ended by the end of input). */
static char *padded(const char *in, size_t len)
{
	char *s = malloc(len + PAD);

	if (!s)
		tu_die("malloc");
	memcpy(s, in, len);
	memset(s + len, ' ', PAD);
	return s;
}

static void check_log(uint32_t fmt, uint32_t rs, const char *in, size_t len, const char *want)
{
	char *got, *pad;

	for (int mode = 3; mode >= 0; mode--) {
		fast_path = mode & 1;
		batched = mode & 2;
		got = run_whole(fmt, rs, in, len);
		EXPECT_STR(got, want);
		free(got);
		got = run_step(fmt, rs, in, len, 1);
		EXPECT_STR(got, want);
		free(got);
		if (fmt != MMAPQ_FORMAT_INT)
			continue;
		pad = padded(in, len);
		got = run_whole(fmt, rs, pad, len + PAD);
		EXPECT_STR(got, want);
		free(got);
		free(pad);
	}
	fast_path = true;
	batched = false;
}

#define CHECK_INT(in, want) check_log(MMAPQ_FORMAT_INT, 8, in, sizeof(in) - 1, want)
#define CHECK_LINE(rs, in, want) check_log(MMAPQ_FORMAT_LINE, rs, in, sizeof(in) - 1, want)

/* ---- format int ---- */

static void test_int_basic(void)
{
	CHECK_INT("1 2 3 4 5 6 7 8 9 10\n",
		  "R 1\nR 2\nR 3\nR 4\nR 5\nR 6\nR 7\nR 8\nR 9\nR 10\n");
}

static void test_int_bad_tokens(void)
{
	/* cols:   1   5     11  15     */
	CHECK_INT("abc 12abc --1 +\n  1.5\t0x10 - 42\n7",
		  "E 1:1 not a decimal integer [abc]\n"
		  "E 1:5 not a decimal integer [12abc]\n"
		  "E 1:11 not a decimal integer [--1]\n"
		  "E 1:15 not a decimal integer [+]\n"
		  "E 2:3 not a decimal integer [1.5]\n"
		  "E 2:7 not a decimal integer [0x10]\n"
		  "E 2:12 not a decimal integer [-]\n"
		  "R 42\n"
		  "R 7\n");
	/* signs only at the start; nothing glued on after digits */
	CHECK_INT("1-2 +-3 -+3 3+ 3- 1e3 1,000 \"5\"",
		  "E 1:1 not a decimal integer [1-2]\n"
		  "E 1:5 not a decimal integer [+-3]\n"
		  "E 1:9 not a decimal integer [-+3]\n"
		  "E 1:13 not a decimal integer [3+]\n"
		  "E 1:16 not a decimal integer [3-]\n"
		  "E 1:19 not a decimal integer [1e3]\n"
		  "E 1:23 not a decimal integer [1,000]\n"
		  "E 1:29 not a decimal integer [\"5\"]\n");
	/* a backslash is escaped so that \xNN in an excerpt is unambiguous */
	CHECK_INT("a\\x00b 1", "E 1:1 not a decimal integer [a\\\\x00b]\nR 1\n");
}

static void test_int_nul_bytes(void)
{
	/* NUL is not whitespace: it glues onto its neighbours */
	CHECK_INT("1\0002 3\n\0\n4\0",
		  "E 1:1 not a decimal integer [1\\x002]\n"
		  "R 3\n"
		  "E 2:1 not a decimal integer [\\x00]\n"
		  "E 3:1 not a decimal integer [4\\x00]\n");
}

static void test_int_non_ascii(void)
{
	/* é (valid UTF-8), €, invalid UTF-8, and a UTF-8 no-break space, which
	 * is not C-locale whitespace and so joins "1" and "2" into one token */
	CHECK_INT("\xc3\xa9t\xc3\xa9 12\xe2\x82\xac \xff\xfe\n1\xc2\xa0" "2 \x80 5",
		  "E 1:1 not a decimal integer [\\xc3\\xa9t\\xc3\\xa9]\n"
		  "E 1:7 not a decimal integer [12\\xe2\\x82\\xac]\n"
		  "E 1:13 not a decimal integer [\\xff\\xfe]\n"
		  "E 2:1 not a decimal integer [1\\xc2\\xa02]\n"
		  "E 2:6 not a decimal integer [\\x80]\n"
		  "R 5\n");
}

static void test_int_bom(void)
{
	/* A UTF-8 BOM is not whitespace: it makes the first token bad at 1:1
	 * (the first number is lost, the rest parse). */
	CHECK_INT("\xef\xbb\xbf" "1 2\n",
		  "E 1:1 not a decimal integer [\\xef\\xbb\\xbf1]\n"
		  "R 2\n");
	/* a BOM alone on its line */
	CHECK_INT("\xef\xbb\xbf\n3\n",
		  "E 1:1 not a decimal integer [\\xef\\xbb\\xbf]\n"
		  "R 3\n");
}

static char *repeat(char ch, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		tu_die("malloc");
	memset(s, ch, n);
	s[n] = '\0';
	return s;
}

static void test_int_long_tokens(void)
{
	struct sbuf in = { 0 }, want = { 0 };
	char *a32 = repeat('a', 32), *d1000 = repeat('9', 1000), *z1000 = repeat('0', 1000);
	char *a33 = repeat('a', 33), *ff = repeat('\xff', 32);

	/* exactly MMAPQ_PARSE_TOKEN_MAX bytes: an ordinary token */
	sb_printf(&in, "%s\n", a32);
	sb_printf(&want, "E 1:1 not a decimal integer [%s]\n", a32);
	sb_str(&in, "00000000000000000000000000000001 -0000000000000000000000000000001\n");
	sb_str(&want, "R 1\nR -1\n");
	/* one byte more: too long, whatever it contains; excerpt = 32 bytes + "..." */
	sb_printf(&in, "%s 000000000000000000000000000000001 5\n", a33);
	sb_printf(&want, "E 3:1 token too long [%s...]\n", a32);
	sb_str(&want, "E 3:35 token too long [00000000000000000000000000000000...]\n");
	sb_str(&want, "R 5\n");
	sb_printf(&in, "%s\n%s 6\n", d1000, z1000);
	sb_str(&want, "E 4:1 token too long [99999999999999999999999999999999...]\n");
	sb_str(&want, "E 5:1 token too long [00000000000000000000000000000000...]\n");
	sb_str(&want, "R 6\n");
	/* 32 non-printable bytes: escaped they do not fit, so 9 of them + "..." */
	sb_printf(&in, "%s\n", ff);
	sb_str(&want, "E 6:1 not a decimal integer "
		      "[\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff...]\n");
	/* truncation never splits an escape */
	sb_str(&in, "aaaaaaaaaaaaaaaaaaaa\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01 7");
	sb_str(&want, "E 7:1 not a decimal integer "
		      "[aaaaaaaaaaaaaaaaaaaa\\x01\\x01\\x01\\x01...]\nR 7\n");

	check_steps(MMAPQ_FORMAT_INT, 8, in.p, in.len, want.p, (const size_t[]){ 0, 1, 7 }, 3);
	free(in.p);
	free(want.p);
	free(a32);
	free(a33);
	free(d1000);
	free(z1000);
	free(ff);
}

/* Escaping fills excerpt[] exactly, never more. */
static void test_excerpt_bounds(void)
{
	char *bs32 = repeat('\\', 32), *esc18 = repeat('\\', 36);	/* 18 escaped */
	char *in, *want;

	/* 39 characters escaped: fits exactly, no "..." */
	CHECK_INT("\x01\x01\x01\x01\x01\x01\x01\x01\x01" "abc 1",
		  "E 1:1 not a decimal integer "
		  "[\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01abc]\nR 1\n");
	/* 40: truncated to what fits in 36, then "..." */
	CHECK_INT("\x01\x01\x01\x01\x01\x01\x01\x01\x01" "abcd 1",
		  "E 1:1 not a decimal integer "
		  "[\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01...]\nR 1\n");

	/* a backslash takes two characters: 32 of them show as 18 + "..." */
	in = tu_xasprintf("%s 2", bs32);
	want = tu_xasprintf("E 1:1 not a decimal integer [%s...]\nR 2\n", esc18);
	check_log(MMAPQ_FORMAT_INT, 8, in, strlen(in), want);
	free(in);
	free(want);
	/* format line, record_size 8: the first 9 bytes, all shown */
	in = tu_xasprintf("%s\n", bs32);
	want = tu_xasprintf("E 1:1 line too long [%.*s...]\n", 18, esc18);
	check_log(MMAPQ_FORMAT_LINE, 8, in, strlen(in), want);
	free(in);
	free(want);
	/* record_size 32: 18 of the 33 bytes fit */
	in = tu_xasprintf("%s\\\n", bs32);
	want = tu_xasprintf("E 1:1 line too long [%s...]\n", esc18);
	check_log(MMAPQ_FORMAT_LINE, 32, in, strlen(in), want);
	free(in);
	free(want);
	free(bs32);
	free(esc18);
}

static void test_int64_limits(void)
{
	CHECK_INT("9223372036854775807 -9223372036854775808 9223372036854775808 "
		  "-9223372036854775809\n"
		  "+9223372036854775807 -0 +0 0 007 -007 +00\n"
		  "12345678901234567890 -12345678901234567890 99999999999999999999\n"
		  "18446744073709551615 18446744073709551616 -18446744073709551617 "
		  "36893488147419103232\n"
		  "0009223372036854775807 -0009223372036854775808 09223372036854775808\n",
		  "R 9223372036854775807\n"
		  "R -9223372036854775808\n"
		  "E 1:42 out of range for a 64-bit integer [9223372036854775808]\n"
		  "E 1:62 out of range for a 64-bit integer [-9223372036854775809]\n"
		  "R 9223372036854775807\n"
		  "R 0\nR 0\nR 0\nR 7\nR -7\nR 0\n"
		  "E 3:1 out of range for a 64-bit integer [12345678901234567890]\n"
		  "E 3:22 out of range for a 64-bit integer [-12345678901234567890]\n"
		  "E 3:44 out of range for a 64-bit integer [99999999999999999999]\n"
		  "E 4:1 out of range for a 64-bit integer [18446744073709551615]\n"
		  "E 4:22 out of range for a 64-bit integer [18446744073709551616]\n"
		  "E 4:43 out of range for a 64-bit integer [-18446744073709551617]\n"
		  "E 4:65 out of range for a 64-bit integer [36893488147419103232]\n"
		  "R 9223372036854775807\n"
		  "R -9223372036854775808\n"
		  "E 5:48 out of range for a 64-bit integer [09223372036854775808]\n");
}

static void test_int_crlf(void)
{
	CHECK_INT("1\r\n2\r\nx\r\n\r\n  y\r\n", "R 1\nR 2\nE 3:1 not a decimal integer [x]\n"
		  "E 5:3 not a decimal integer [y]\n");
	/* a lone CR is whitespace but does not start a line */
	CHECK_INT("1\r2\rz", "R 1\nR 2\nE 1:5 not a decimal integer [z]\n");
}

static void test_int_whitespace(void)
{
	CHECK_INT("1\t2\v3\f4\r5 \t 6\n\t\tx\v\fy",
		  "R 1\nR 2\nR 3\nR 4\nR 5\nR 6\n"
		  "E 2:3 not a decimal integer [x]\n"
		  "E 2:6 not a decimal integer [y]\n");
}

static void test_int_no_trailing_newline(void)
{
	struct mmapq_parser *p = NULL;
	struct coll c = { .format = MMAPQ_FORMAT_INT };

	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_INT, 8, on_record, on_error, &c, &p), 0);
	EXPECT_INT(mmapq_parser_feed(p, "1 2 3", 5), 0);
	/* "3" might continue in the next chunk */
	EXPECT_INT(mmapq_parser_records(p), 2);
	EXPECT_INT(mmapq_parser_feed(p, "4 x", 3), 0);
	EXPECT_INT(mmapq_parser_records(p), 3);
	EXPECT_INT(mmapq_parser_errors(p), 0);
	EXPECT_INT(mmapq_parser_finish(p), 0);
	EXPECT_INT(mmapq_parser_records(p), 3);
	EXPECT_INT(mmapq_parser_errors(p), 1);
	EXPECT_STR(c.log.p, "R 1\nR 2\nR 34\nE 1:8 not a decimal integer [x]\n");
	mmapq_parser_free(p);
	free(c.log.p);

	CHECK_INT("-", "E 1:1 not a decimal integer [-]\n");
	CHECK_INT("\n\n  -12", "R -12\n");
}

static void test_empty_input(void)
{
	CHECK_INT("", "");
	CHECK_INT(" \t\n\v\f\r\n  ", "");
	CHECK_LINE(8, "", "");
}

/* ---- format line ---- */

static void test_line_basic(void)
{
	CHECK_LINE(16, "hello\nworld\n\n\\x\n", "R 5 [hello]\nR 5 [world]\nR 0 []\nR 2 [\\\\x]\n");
	/* the final line without '\n' comes from finish() */
	CHECK_LINE(16, "a\nlast", "R 1 [a]\nR 4 [last]\n");
	/* spaces and tabs are data */
	CHECK_LINE(16, "  a b\t\n", "R 6 [  a b\\x09]\n");
}

static void test_line_crlf(void)
{
	CHECK_LINE(16, "a\r\nb\r\n\r\n", "R 1 [a]\nR 1 [b]\nR 0 []\n");
	/* only one CR, and only right before the LF, is removed */
	CHECK_LINE(16, "a\r\r\na\rb\n\rc\n", "R 2 [a\\x0d]\nR 3 [a\\x0db]\nR 2 [\\x0dc]\n");
	/* a final line keeps its CR: it is not before a '\n' */
	CHECK_LINE(16, "x\r\ntail\r", "R 1 [x]\nR 5 [tail\\x0d]\n");
	/* the CR of a CRLF does not count against record_size */
	CHECK_LINE(8, "12345678\r\n123456789\r\n1234567\r\r\n12345678\r\r\n12345678\r",
		   "R 8 [12345678]\n"
		   "E 2:1 line too long [123456789...]\n"
		   "R 8 [1234567\\x0d]\n"
		   "E 4:1 line too long [12345678\\x0d\\x0d...]\n"
		   "E 5:1 line too long [12345678\\x0d...]\n");
}

static void test_line_nul(void)
{
	CHECK_LINE(16, "ab\0cd\nok\n\0\n\0", "E 1:3 NUL byte in line [ab\\x00]\nR 2 [ok]\n"
		   "E 3:1 NUL byte in line [\\x00]\nE 4:1 NUL byte in line [\\x00]\n");
	/* the first bad byte decides: a NUL before the limit, or the limit */
	CHECK_LINE(8, "0123\00056789abc\n0123456789\0\n12345678\r\0\nok\n",
		   "E 1:5 NUL byte in line [0123\\x00]\n"
		   "E 2:1 line too long [012345678...]\n"
		   "E 3:10 NUL byte in line [12345678\\x0d\\x00]\n"
		   "R 2 [ok]\n");
}

static void test_line_invalid_utf8(void)
{
	/* records are bytes: anything but NUL passes through */
	CHECK_LINE(16, "\xff\xfe\xc3(\n\xc3\xa9\xe2\x82\xac\n\x01\x7f\n",
		   "R 4 [\\xff\\xfe\\xc3(]\nR 5 [\\xc3\\xa9\\xe2\\x82\\xac]\nR 2 [\\x01\\x7f]\n");
}

static void test_line_bom(void)
{
	/* format line keeps a BOM: it is part of the first line's bytes */
	CHECK_LINE(16, "\xef\xbb\xbfhello\nx\n", "R 8 [\\xef\\xbb\\xbfhello]\nR 1 [x]\n");
}

static void test_line_1mb(void)
{
	const size_t big = 1u << 20;
	struct sbuf in = { 0 };
	char *x = repeat('x', big);
	const char *want = "R 5 [first]\n"
			   "E 2:1 line too long [xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...]\n"
			   "R 4 [next]\n"
			   "E 4:1 line too long [xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...]\n";

	sb_str(&in, "first\n");
	sb_str(&in, x);
	sb_str(&in, "\r\nnext\n");
	sb_str(&in, x);		/* and a final one without '\n' */

	check_steps(MMAPQ_FORMAT_LINE, 64, in.p, in.len, want, (const size_t[]){ 0, 4096, 65, 1 }, 4);
	free(in.p);
	free(x);
}

/* A large max_record (1 MiB): a line of exactly that many bytes is a record. */
#define BIG_RECORD (UINT32_C(1) << 20)
static void test_line_max_record(void)
{
	const size_t max = BIG_RECORD;
	struct sbuf in = { 0 }, want = { 0 };
	char *x = repeat('y', max), *got;

	sb_add(&in, x, max);
	sb_str(&in, "\n");
	sb_add(&in, x, max);
	sb_str(&in, "\r\n");
	sb_add(&in, x, max);
	sb_str(&in, "z\n");
	sb_add(&in, x, max);	/* at finish */

	for (int k = 0; k < 2; k++) {
		sb_printf(&want, "R %zu [", max);
		sb_add(&want, x, max);
		sb_str(&want, "]\n");
	}
	sb_str(&want, "E 3:1 line too long [yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy...]\n");
	sb_printf(&want, "R %zu [", max);
	sb_add(&want, x, max);
	sb_str(&want, "]\n");

	got = run_whole(MMAPQ_FORMAT_LINE, BIG_RECORD, in.p, in.len);
	EXPECT(strcmp(got, want.p) == 0, "whole: a log of %zu bytes, not the %zu expected", strlen(got),
	       want.len);
	free(got);
	got = run_step(MMAPQ_FORMAT_LINE, BIG_RECORD, in.p, in.len, 100003);
	EXPECT(strcmp(got, want.p) == 0, "in chunks: a log of %zu bytes, not the %zu expected",
	       strlen(got), want.len);
	free(got);
	free(in.p);
	free(want.p);
	free(x);
}

static void test_line_zero_copy(void)
{
	static const char in[] = "aaa\nbbb\r\nccc";
	struct mmapq_parser *p = NULL;
	struct coll c = { .format = MMAPQ_FORMAT_LINE };
	char *buf = malloc(sizeof(in) - 1);

	if (!buf)
		tu_die("malloc");
	memcpy(buf, in, sizeof(in) - 1);
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_LINE, 16, on_record, on_error, &c, &p), 0);
	c.chunk = buf;
	c.chunk_len = sizeof(in) - 1;
	EXPECT_INT(mmapq_parser_feed(p, buf, sizeof(in) - 1), 0);
	EXPECT_INT(c.nrec, 2);
	EXPECT_INT(c.in_chunk, 2);	/* both came straight from buf */
	c.chunk = NULL;
	free(buf);				/* "ccc" must have been copied */
	EXPECT_INT(mmapq_parser_finish(p), 0);
	EXPECT_STR(c.log.p, "R 3 [aaa]\nR 3 [bbb]\nR 3 [ccc]\n");
	mmapq_parser_free(p);
	free(c.log.p);
}

/* ---- chunking ---- */

struct sample {
	uint32_t format, record_size;
	const char *in;
	size_t len;
};

#define SAMPLE(f, rs, s) { f, rs, s, sizeof(s) - 1 }

static const struct sample samples[] = {
	SAMPLE(MMAPQ_FORMAT_INT, 8, "1 2 3 4 5 6 7 8 9 10\n"),
	SAMPLE(MMAPQ_FORMAT_INT, 8,
	       "  -12\t+7\r\n0x10 1.5 --1 + - 12abc\v\f9223372036854775807 "
	       "-9223372036854775808\r\n9223372036854775808 -9223372036854775809 007\n"),
	SAMPLE(MMAPQ_FORMAT_INT, 8,
	       "1 1234567890123456789012345678901234567890 2 abcdefghijklmnopqrstuvwxyzABCDEFG\n"
	       "-00000000000000000000000000000005 x\xff\0y 3\r\n"
	       "00000000000000000000000000000009 +0000000000000000000000000000009"),
	SAMPLE(MMAPQ_FORMAT_INT, 8, "\xef\xbb\xbf" "1 2\r\n\xc2\xa0 3\r"),
	SAMPLE(MMAPQ_FORMAT_INT, 8, "\r\n\r\n-\r\n+\r\n-1\r\n+1"),
	SAMPLE(MMAPQ_FORMAT_INT, 8, "\0\0\0 1\0 \0" "2 \\x41"),
	SAMPLE(MMAPQ_FORMAT_LINE, 16,
	       "hello\r\nworld\n\n\r\n\r\r\nno newline\r"),
	SAMPLE(MMAPQ_FORMAT_LINE, 16,
	       "exactly sixteen!\nexactly sixteen!\r\nseventeen chars!!\n"
	       "sixteen + CR....\r\r\na\0b\n\0\nok\r\n"
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n"
	       "0123456789abcdef0123\0" "456789\n\xff\xfe invalid\r\nlast"),
	SAMPLE(MMAPQ_FORMAT_LINE, 8, "12345678\r"),
	SAMPLE(MMAPQ_FORMAT_LINE, 8, "12345678\r\n\r\n1234\0" "5678\r\n123456789"),
	SAMPLE(MMAPQ_FORMAT_LINE, 8, "\xef\xbb\xbfline one is long\n\\\\\n"),
	/* binary: empty, short, max_record (NUL, CR, LF, a backslash, high
	 * bytes), one too long (skipped), one whose length says 4 GiB, and
	 * one cut short by the end of input */
	SAMPLE(MMAPQ_FORMAT_BINARY, 8,
	       "\0\0\0\0" "\0\0\0\3a\nb" "\0\0\0\x08\0\xff\r\n\\\x80\x7f " "\0\0\0\x09" "123456789"
	       "\0\0\0\1\0" "\xff\xff\xff\xff" "abc"),
	SAMPLE(MMAPQ_FORMAT_BINARY, 9, "\0\0\0\x0a" "0123456789\0\0\0\x02ok\0\0"),
};

/* Every 2-way split, every 3-way split and 1-byte chunks equal the whole. */
static void test_split_invariance(void)
{
	for (size_t s = 0; s < sizeof(samples) / sizeof(samples[0]); s++) {
		const struct sample *sm = &samples[s];
		char *whole = run_whole(sm->format, sm->record_size, sm->in, sm->len);
		char *got;

		EXPECT(strlen(whole) > 0, "sample %zu: nothing logged", s);
		for (size_t i = 0; i <= sm->len; i++) {
			got = run_cuts(sm->format, sm->record_size, sm->in, sm->len, &i, 1);
			if (strcmp(got, whole) != 0)
				fprintf(stderr, "sample %zu split at %zu\n", s, i);
			EXPECT_STR(got, whole);
			free(got);
			for (size_t j = i; j <= sm->len; j++) {
				size_t cuts[2] = { i, j };

				got = run_cuts(sm->format, sm->record_size, sm->in, sm->len,
					       cuts, 2);
				if (strcmp(got, whole) != 0)
					fprintf(stderr, "sample %zu split at %zu, %zu\n", s, i, j);
				EXPECT_STR(got, whole);
				free(got);
			}
		}
		got = run_step(sm->format, sm->record_size, sm->in, sm->len, 1);
		EXPECT_STR(got, whole);
		free(got);
		free(whole);
	}
}

/* ---- randomized round trip ---- */

static uint64_t rng_state;

static uint64_t rng(void)	/* xorshift64* */
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static int64_t random_value(void)
{
	uint64_t u = rng();

	switch (rng() % 8) {
	case 0:
		return INT64_MIN + (int64_t)(rng() % 3);
	case 1:
		return INT64_MAX - (int64_t)(rng() % 3);
	case 2:
		return (int64_t)(rng() % 21) - 10;
	case 3:
		return (int64_t)(u >> (1 + rng() % 63)) * (rng() & 1 ? 1 : -1);
	default:
		return (int64_t)u;
	}
}

static void test_roundtrip_random(void)
{
	static const char *const ws[] = {
		" ", "\t", "\n", "\v", "\f", "\r", "\r\n", "  ", " \n\t",
	};
	const size_t count = 20000;
	struct sbuf in = { 0 }, want = { 0 };
	size_t *cuts, ncuts = 0;
	char *got;

	rng_state = UINT64_C(0x9e3779b97f4a7c15);	/* fixed seed: reproducible */
	for (size_t k = 0; k < count; k++) {
		int64_t v = random_value();
		char num[32];
		int n = snprintf(num, sizeof(num), "%" PRId64, v);
		const char *digits = num + (v < 0);
		size_t zeros = rng() % 4 == 0 ? rng() % 8 : 0;

		EXPECT(n > 0, "snprintf of %" PRId64 ": %d", v, n);
		if (rng() % 3 == 0)
			sb_str(&in, ws[rng() % (sizeof(ws) / sizeof(ws[0]))]);
		if (v < 0)
			sb_str(&in, "-");
		else if (rng() % 4 == 0)
			sb_str(&in, "+");
		for (size_t z = 0; z < zeros; z++)
			sb_str(&in, "0");
		sb_str(&in, digits);
		sb_str(&in, ws[rng() % (sizeof(ws) / sizeof(ws[0]))]);
		sb_printf(&want, "R %" PRId64 "\n", v);
	}

	cuts = calloc(in.len, sizeof(*cuts));
	if (!cuts)
		tu_die("calloc");
	for (size_t at = rng() % 300; at < in.len; at += 1 + rng() % 300)
		cuts[ncuts++] = at;
	got = run_cuts(MMAPQ_FORMAT_INT, 8, in.p, in.len, cuts, ncuts);
	EXPECT_STR(got, want.p);
	free(got);
	got = run_whole(MMAPQ_FORMAT_INT, 8, in.p, in.len);
	EXPECT_STR(got, want.p);
	free(got);
	batched = true;
	got = run_cuts(MMAPQ_FORMAT_INT, 8, in.p, in.len, cuts, ncuts);
	EXPECT_STR(got, want.p);
	free(got);
	batched = false;
	free(cuts);
	free(in.p);
	free(want.p);
}

/* ---- fast path against the byte-at-a-time machine ---- */

/* One random token of any kind, then whitespace, appended to b. */
static void random_token(struct sbuf *b)
{
	static const char ws[] = " \t\n\v\f\r";
	static const char glue[] = "x.,-+e\0\x80\xff\xef\\";
	static const char *const edge[] = {
		"9223372036854775807", "9223372036854775808", "-9223372036854775808",
		"-9223372036854775809", "+9223372036854775807", "9999999999999999999",
		"10000000000000000000", "18446744073709551615", "18446744073709551616",
		"-0", "+0", "0", "-", "+", "--1", "+-1", "00000000000000000000000000000001",
		"000000000000000000000000000000001", "1000000000000000000", "99999999",
		"100000000", "9999999999999999", "10000000000000000",
	};
	unsigned kind = (unsigned)(rng() % 8);
	size_t n = 1 + rng() % 19;

	if (kind == 0) {
		sb_str(b, edge[rng() % (sizeof(edge) / sizeof(edge[0]))]);
	} else {
		if (rng() % 3 == 0)
			sb_add(b, rng() % 2 ? "-" : "+", 1);
		if (kind == 1)			/* leading zeros, up to and past 32 bytes */
			for (size_t z = rng() % 30; z > 0; z--)
				sb_str(b, "0");
		if (kind == 2)			/* long runs: 20 to 40 digits */
			n = 20 + rng() % 21;
		for (size_t k = 0; k < n; k++) {
			char d = (char)('0' + rng() % 10);
			sb_add(b, &d, 1);
		}
		if (kind == 3)			/* something glued on, or in the middle */
			sb_add(b, &glue[rng() % (sizeof(glue) - 1)], 1);
		if (kind == 3 && rng() % 2)
			sb_str(b, "12");
	}
	for (size_t k = 1 + (rng() % 4 == 0 ? rng() % 3 : 0); k > 0; k--)
		sb_add(b, &ws[rng() % (sizeof(ws) - 1)], 1);
}

/*
 * Random inputs of every kind of token: the fast path (whole input, cut at
 * every position, chunks of 1 to 40 bytes) gives exactly the records and
 * errors (positions, messages, excerpts) of the byte-at-a-time machine.
 */
static void test_fast_path_differential(void)
{
	rng_state = UINT64_C(0x243f6a8885a308d3);	/* fixed seed: reproducible */
	for (int round = 0; round < 8; round++) {
		struct sbuf in = { 0 };
		char *want, *got;

		while (in.len < 700)
			random_token(&in);
		if (round % 2)			/* half of them end inside a token */
			sb_str(&in, "-12");
		fast_path = false;
		want = run_whole(MMAPQ_FORMAT_INT, 8, in.p, in.len);
		fast_path = true;
		/* and with the records in batches (on_ints) */
		for (int b = 0; b < 2; b++) {
			batched = b;
			got = run_whole(MMAPQ_FORMAT_INT, 8, in.p, in.len);
			EXPECT_STR(got, want);
			free(got);
			for (size_t i = 0; i <= in.len; i++) {
				got = run_cuts(MMAPQ_FORMAT_INT, 8, in.p, in.len, &i, 1);
				if (strcmp(got, want) != 0)
					fprintf(stderr, "round %d split at %zu (batched %d)\n", round, i, b);
				EXPECT_STR(got, want);
				free(got);
			}
			for (size_t step = 1; step <= 40; step++) {
				got = run_step(MMAPQ_FORMAT_INT, 8, in.p, in.len, step);
				if (strcmp(got, want) != 0)
					fprintf(stderr, "round %d chunks of %zu (batched %d)\n", round, step, b);
				EXPECT_STR(got, want);
				free(got);
			}
		}
		batched = false;
		free(want);
		free(in.p);
	}
}

/* ---- the fast path at its edges, against an independent reference ---- */

/* The parser's escaping of an excerpt byte (parse.c), for the reference. */
static void ref_escape(struct sbuf *b, const unsigned char *s, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (s[k] == '\\')
			sb_str(b, "\\\\");
		else if (s[k] >= 0x20 && s[k] < 0x7f)
			sb_add(b, &s[k], 1);
		else
			sb_printf(b, "\\x%02x", s[k]);
	}
}

/*
 * The log format int must give for in[0..len), from the C library: tokens
 * split at isspace(), checked by strspn() and converted by strtoll().  The
 * excerpts are the token (the first MMAPQ_PARSE_TOKEN_MAX bytes and "..."
 * for one too long), which holds for the tokens int_edge_input makes: a
 * too-long one is digits and signs, a bad one short enough that its
 * escaped bytes fit.
 */
static char *ref_int_log(const char *in, size_t len)
{
	struct sbuf log = { 0 };
	uint64_t line = 1, col = 1;
	size_t i = 0;

	while (i < len) {
		size_t s = i, n, sign;
		char tok[MMAPQ_PARSE_TOKEN_MAX + 1], where[48];
		long long v;

		if (isspace((unsigned char)in[i])) {
			if (in[i++] == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
			continue;
		}
		while (i < len && !isspace((unsigned char)in[i]))
			i++;
		n = i - s;
		snprintf(where, sizeof(where), "E %" PRIu64 ":%" PRIu64 " ", line, col);
		col += n;
		if (n > MMAPQ_PARSE_TOKEN_MAX) {
			sb_str(&log, where);
			sb_str(&log, "token too long [");
			ref_escape(&log, (const unsigned char *)in + s, MMAPQ_PARSE_TOKEN_MAX);
			sb_str(&log, "...]\n");
			continue;
		}
		memcpy(tok, in + s, n);
		tok[n] = '\0';
		sign = tok[0] == '+' || tok[0] == '-';
		if (sign == n || strspn(tok + sign, "0123456789") != n - sign) {
			sb_str(&log, where);
			sb_str(&log, "not a decimal integer [");
			ref_escape(&log, (const unsigned char *)tok, n);
			sb_str(&log, "]\n");
			continue;
		}
		errno = 0;
		v = strtoll(tok, NULL, 10);
		if (errno == ERANGE)
			sb_printf(&log, "%sout of range for a 64-bit integer [%s]\n", where, tok);
		else
			sb_printf(&log, "R %lld\n", v);
	}
	return sb_take(&log);
}

/*
 * Tokens at every edge of the fast path, separated by every whitespace
 * byte in turn (and runs of them): 1 to 34 digits with every sign, of all
 * nines, a one and zeros, and random digits; leading zeros up to and past
 * the token limit; the int64_t limits and one beyond, with and without a
 * sign and leading zeros; digits glued to the bytes next to '0'..'9' in
 * every sense ('/' ':' and the same with the top bit set, control bytes,
 * NUL, 0xff, a backslash).  round picks which third of them, so that each
 * input stays short enough to be cut at every position.
 */
static void int_edge_input(struct sbuf *b, int round)
{
	static const char ws[] = " \t\n\v\f\r";
	static const char glue[] = "/:x.e+-\\\0\x10\x19\x7f\x80\xaf\xb0\xb9\xba\xef\xff";
	static const char *const signs[] = { "", "+", "-" };
	static const char *const limits[] = {
		"9223372036854775807", "9223372036854775808", "9223372036854775806",
		"9223372036854775809", "9999999999999999999", "10000000000000000000",
		"18446744073709551615", "18446744073709551616", "999999999999999999",
		"1000000000000000000",
	};
	unsigned k = 0;

	/* the next whitespace byte, every 7th time twice */
#define SEP() (k++, sb_add(b, &ws[k % 6], 1), k % 7 ? (void)0 : sb_add(b, &ws[k % 6], 1))
	if (round == 0) {
		for (size_t n = 1; n <= 34; n++)
			for (int s = 0; s < 3; s++) {
				sb_str(b, signs[s]);
				for (size_t d = 0; d < n; d++)
					sb_str(b, "9");
				SEP();
				sb_str(b, signs[(s + 1) % 3]);
				sb_str(b, "1");
				for (size_t d = 1; d < n; d++)
					sb_str(b, "0");
				SEP();
			}
	} else if (round == 1) {
		for (size_t n = 1; n <= 34; n++)
			for (int s = 0; s < 3; s++) {
				sb_str(b, signs[s]);
				for (size_t d = 0; d < n; d++) {
					char c = (char)('0' + rng() % 10);
					sb_add(b, &c, 1);
				}
				SEP();
				sb_str(b, signs[(s + 2) % 3]);	/* leading zeros */
				for (size_t d = 1; d < n; d++)
					sb_str(b, "0");
				sb_str(b, "7");
				SEP();
			}
	} else {
		for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++)
			for (int s = 0; s < 3; s++)
				for (size_t z = 0; z <= 14; z += 7) {
					sb_str(b, signs[s]);
					for (size_t d = 0; d < z; d++)
						sb_str(b, "0");
					sb_str(b, limits[l]);
					SEP();
				}
		for (size_t g = 0; g < sizeof(glue) - 1; g++)
			for (size_t n = 0; n <= 17; n += 1 + n / 4) {
				sb_str(b, signs[g % 3]);
				for (size_t d = 0; d < n; d++)
					sb_add(b, &"0123456789"[(g + d) % 10], 1);
				sb_add(b, &glue[g], 1);
				if (g % 2)
					sb_str(b, "5");
				SEP();
			}
		sb_str(b, "-");
		SEP();
		sb_str(b, "+");
		SEP();
	}
#undef SEP
}

/* in[0..len), format int, as fast_path and batched are set: whole, cut at
 * every position and in chunks of 1 to 40 bytes, the log is want. */
static void check_int_cuts(const char *in, size_t len, const char *want, int round)
{
	char *got = run_whole(MMAPQ_FORMAT_INT, 8, in, len);

	EXPECT_STR(got, want);
	free(got);
	for (size_t i = 0; i <= len; i++) {
		got = run_cuts(MMAPQ_FORMAT_INT, 8, in, len, &i, 1);
		if (strcmp(got, want) != 0)
			fprintf(stderr, "round %d split at %zu (fast path %d, batched %d)\n", round, i,
				fast_path, batched);
		EXPECT_STR(got, want);
		free(got);
	}
	for (size_t step = 1; step <= 40; step++) {
		got = run_step(MMAPQ_FORMAT_INT, 8, in, len, step);
		EXPECT_STR(got, want);
		free(got);
	}
}

/*
 * Those tokens: the fast path (whole input, cut at every position, chunks
 * of 1 to 40 bytes, records one by one and in batches), the byte machine
 * and the reference from the C library all give the same log.
 */
static void test_int_fast_edges(void)
{
	rng_state = UINT64_C(0x452821e638d01377);	/* fixed seed: reproducible */
	for (int round = 0; round < 3; round++) {
		struct sbuf in = { 0 };
		char *want;

		int_edge_input(&in, round);
		want = ref_int_log(in.p, in.len);
		for (int mode = 0; mode < 4; mode++) {
			fast_path = mode & 1;
			batched = mode & 2;
			check_int_cuts(in.p, in.len, want, round);
		}
		fast_path = true;
		batched = false;
		free(want);
		free(in.p);
	}
}

/*
 * No read past a chunk, proven by the MMU rather than by a sanitizer: every
 * chunk is fed from the end of a page that a PROT_NONE page follows (a read
 * past it is a SIGSEGV), for the edge inputs and the random ones of the
 * differential test, whole, cut at every position and in chunks of 1 to 40
 * bytes, so that every token ends at every distance from a chunk's end.
 */
static void test_int_guard_page(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		tu_die("mmap");
	if (mprotect(m + pg, (size_t)pg, PROT_NONE) < 0)
		tu_die("mprotect");
	guard_end = m + pg;
	guard_room = (size_t)pg;
	rng_state = UINT64_C(0xa4093822299f31d0);	/* fixed seed: reproducible */
	for (int round = 0; round < 5; round++) {
		struct sbuf in = { 0 };
		char *want;

		if (round < 3) {
			int_edge_input(&in, round);
		} else {
			while (in.len < 700)
				random_token(&in);
			sb_str(&in, "-1234567890123456789");	/* ends inside a token */
		}
		EXPECT(in.len <= (size_t)pg, "an input of %zu bytes, over a page", in.len);
		fast_path = false;
		want = run_whole(MMAPQ_FORMAT_INT, 8, in.p, in.len);
		fast_path = true;
		for (int b = 0; b < 2; b++) {
			batched = b;
			check_int_cuts(in.p, in.len, want, round);
		}
		batched = false;
		free(want);
		free(in.p);
	}
	guard_end = NULL;
	munmap(m, 2 * (size_t)pg);
}

/* ---- the formatter (common/records/fmt.h) ---- */

/* bits as int64_t through mmapq_fmt_int, or (u64) as uint64_t through
 * mmapq_fmt_u64 with a tab after it: the bytes of snprintf, and nothing
 * written past the room it asks for */
static void check_fmt_as(uint64_t bits, bool u64)
{
	char want[32], got[64];
	int n = u64 ? snprintf(want, sizeof(want), "%" PRIu64 "\t", bits)
		    : snprintf(want, sizeof(want), "%" PRId64 "\n", (int64_t)bits);
	size_t len;

	memset(got, 0x55, sizeof(got));
	len = u64 ? mmapq_fmt_u64(got, bits, '\t') : mmapq_fmt_int(got, (int64_t)bits);
	EXPECT_INT(len, n);
	EXPECT_MEM(got, want, len);
	for (size_t k = MMAPQ_FMT_INT_MAX; k < sizeof(got); k++)
		EXPECT_INT(got[k], 0x55);
}

static void check_fmt(int64_t v)
{
	check_fmt_as((uint64_t)v, false);
}

static void test_fmt_int(void)
{
	uint64_t p = 1;

	check_fmt(0);
	check_fmt(INT64_MAX);
	check_fmt(INT64_MIN);
	check_fmt(INT64_MIN + 1);
	/* every digit count, at both of its ends */
	for (int k = 0; k <= 18; k++, p *= 10) {
		check_fmt((int64_t)p);
		check_fmt((int64_t)p - 1);
		check_fmt((int64_t)p + 1);
		check_fmt(-(int64_t)p);
		check_fmt(-(int64_t)p + 1);
		check_fmt((int64_t)(p * 9));
		check_fmt(-(int64_t)(p * 9) - 1);
	}
	rng_state = UINT64_C(0xb7e151628aed2a6b);
	for (int k = 0; k < 200000; k++)
		check_fmt(random_value());
}

/*
 * Every value below 10^8 (the head, mmapq_fmt_head: its multiply-shift
 * divisions are exact only in the range used, and its leading zeros are
 * cut by ctz) and every 8-digit block below 10^8 behind a head of 1 (the
 * blocks of larger values, leading zeros included), against a decimal
 * counter kept as text.
 */
static void test_fmt_head_all(void)
{
	char want[16] = "0", got[MMAPQ_FMT_INT_MAX + 8];
	size_t wlen = 1, k;
	unsigned bad = 0;

	for (uint64_t u = 0; u < 100000000 && bad < 5; u++) {
		size_t n = mmapq_fmt_u64(got, u, '\n');

		if (n != wlen + 1 || memcmp(got, want, wlen) || got[wlen] != '\n') {
			EXPECT(false, "mmapq_fmt_u64(%" PRIu64 ") is '%.*s'", u, (int)n, got);
			bad++;
		}
		/* 10^8 + u: "1", then u's 8 digits with its leading zeros */
		n = mmapq_fmt_u64(got, UINT64_C(100000000) + u, '\n');
		if (n != 10 || got[0] != '1' || memcmp(got + 9 - wlen, want, wlen) ||
		    strspn(got + 1, "0") < 8 - wlen) {
			EXPECT(false, "mmapq_fmt_u64(%" PRIu64 ") is '%.*s'",
			       UINT64_C(100000000) + u, (int)n, got);
			bad++;
		}
		for (k = wlen; k > 0 && want[k - 1] == '9'; k--)
			want[k - 1] = '0';
		if (k) {
			want[k - 1]++;
		} else {
			memmove(want + 1, want, wlen++);
			want[0] = '1';
		}
	}
}

/* mmapq_fmt_u64 (the sequence-number prefix) against snprintf: both ends
 * of every digit count up to UINT64_MAX, and random values, with the end
 * byte it is given. */
static void check_fmt_u64(uint64_t u)
{
	check_fmt_as(u, true);
}

static void test_fmt_u64(void)
{
	uint64_t p = 1;

	check_fmt_u64(0);
	check_fmt_u64(UINT64_MAX);
	check_fmt_u64(UINT64_MAX - 1);
	for (int k = 0; k <= 19; k++, p *= 10) {
		check_fmt_u64(p);
		check_fmt_u64(p - 1);
		check_fmt_u64(p + 1);
		check_fmt_u64(p * 2 - 1);
		if (p <= UINT64_MAX / 9)
			check_fmt_u64(p * 9);
	}
	rng_state = UINT64_C(0x082efa98ec4e6c89);
	for (int k = 0; k < 200000; k++)
		check_fmt_u64(rng() >> (rng() % 64));
}

/* What the formatter writes, the parser reads back as the same values. */
static void test_fmt_parse_roundtrip(void)
{
	const size_t count = 50000;
	struct sbuf in = { 0 }, want = { 0 };
	char num[MMAPQ_FMT_INT_MAX];

	rng_state = UINT64_C(0x13198a2e03707344);
	for (size_t k = 0; k < count; k++) {
		int64_t v = k % 2 ? random_value() : (int64_t)k;

		sb_add(&in, num, mmapq_fmt_int(num, v));
		sb_printf(&want, "R %" PRId64 "\n", v);
	}
	check_steps(MMAPQ_FORMAT_INT, 8, in.p, in.len, want.p, (const size_t[]){ 0, 4093 }, 2);
	free(in.p);
	free(want.p);
}

/* ---- API ---- */

static void test_api_validation(void)
{
	struct mmapq_parser *sentinel = (struct mmapq_parser *)&rng_state, *p = sentinel;
	struct coll c = { .format = MMAPQ_FORMAT_INT };

	EXPECT_INT(mmapq_parser_new(0, 8, on_record, on_error, &c, &p), -EINVAL);
	EXPECT_INT(mmapq_parser_new(4, 8, on_record, on_error, &c, &p), -EINVAL);
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_INT, 7, on_record, on_error, &c, &p),
		   -EINVAL);
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_INT, 0, on_record, on_error, &c, &p),
		   -EINVAL);
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_LINE, MMAPQ_MAX_RECORD_MIN - 1,
				    on_record, on_error, &c, &p), -EINVAL);
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_LINE, MMAPQ_MAX_RECORD_MAX + 1,
				    on_record, on_error, &c, &p), -EINVAL);
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_LINE, UINT32_MAX, on_record, on_error,
				    &c, &p), -EINVAL);
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_INT, 8, NULL, on_error, &c, &p), -EINVAL);
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_INT, 8, on_record, NULL, &c, &p), -EINVAL);
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_INT, 8, on_record, on_error, &c, NULL),
		   -EINVAL);
	EXPECT(p == sentinel, "a failed mmapq_parser_new wrote its result");
	mmapq_parser_free(NULL);

	/* the limits themselves are fine; ctx may be NULL */
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_LINE, MMAPQ_MAX_RECORD_MAX, on_record,
				    on_error, NULL, &p), 0);
	mmapq_parser_free(p);
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_INT, MMAPQ_MAX_RECORD_MIN, on_record,
				    on_error, &c, &p), 0);

	/* empty feeds are no-ops, even with a NULL buffer; NULL with a length is not */
	EXPECT_INT(mmapq_parser_feed(p, NULL, 0), 0);
	EXPECT_INT(mmapq_parser_feed(p, "", 0), 0);
	EXPECT_INT(mmapq_parser_feed(p, NULL, 1), -EINVAL);
	EXPECT_INT(mmapq_parser_feed(NULL, "1", 1), -EINVAL);
	EXPECT_INT(mmapq_parser_finish(NULL), -EINVAL);
	EXPECT_INT(mmapq_parser_feed(p, "5", 1), 0);
	EXPECT_INT(mmapq_parser_finish(p), 0);
	EXPECT_INT(mmapq_parser_records(p), 1);
	/* after finish: no more input, no second finish */
	EXPECT_INT(mmapq_parser_feed(p, "6\n", 2), -EINVAL);
	EXPECT_INT(mmapq_parser_finish(p), -EINVAL);
	EXPECT_INT(mmapq_parser_records(p), 1);
	EXPECT_INT(mmapq_parser_errors(p), 0);
	mmapq_parser_free(p);
	free(c.log.p);
}

static void record_error_case(uint32_t fmt, const char *in, uint64_t fail_at, int feed_rc,
			      int finish_rc, const char *want)
{
	struct mmapq_parser *p = NULL;
	struct coll c = { .format = fmt, .fail_at = fail_at, .fail_err = -ENOSPC };

	EXPECT_INT(mmapq_parser_new(fmt, 8, on_record, on_error, &c, &p), 0);
	EXPECT_INT(mmapq_parser_feed(p, in, strlen(in)), feed_rc);
	EXPECT_INT(mmapq_parser_records(p), c.nrec);
	if (feed_rc == 0)
		EXPECT_INT(mmapq_parser_finish(p), finish_rc);
	EXPECT_INT(mmapq_parser_records(p), c.nrec);
	EXPECT_INT(mmapq_parser_records(p), fail_at - 1);
	/* the parser is dead now: only free() is meaningful */
	EXPECT_INT(mmapq_parser_feed(p, "1\n", 2), -EINVAL);
	EXPECT_INT(mmapq_parser_finish(p), -EINVAL);
	EXPECT_STR(c.log.p ? c.log.p : "", want);
	mmapq_parser_free(p);
	free(c.log.p);
}

static void test_record_error_stops(void)
{
	record_error_case(MMAPQ_FORMAT_INT, "1 x 2 3 4\n", 3, -ENOSPC, 0,
			  "R 1\nE 1:3 not a decimal integer [x]\nR 2\n");
	record_error_case(MMAPQ_FORMAT_INT, "1 2 3", 3, 0, -ENOSPC, "R 1\nR 2\n");
	record_error_case(MMAPQ_FORMAT_INT, "7", 1, 0, -ENOSPC, "");
	record_error_case(MMAPQ_FORMAT_LINE, "a\nb\nc\nd\n", 2, -ENOSPC, 0, "R 1 [a]\n");
	record_error_case(MMAPQ_FORMAT_LINE, "a\nb\nc", 3, 0, -ENOSPC, "R 1 [a]\nR 1 [b]\n");
}

/* ---- batches (mmapq_parser_set_int_batch) ---- */

/* "1 2 ... n" with a bad token "x" after record bad (0: none). */
static char *numbers_text(int n, int bad)
{
	struct sbuf b = { 0 };

	for (int k = 1; k <= n; k++) {
		sb_printf(&b, "%d ", k);
		if (k == bad)
			sb_str(&b, "x ");
	}
	return sb_take(&b);
}

/* Where batches end: when full, before an error, at the end of each feed;
 * never empty. */
static void test_batch_boundaries(void)
{
	struct {
		int n, bad;
		size_t cut;	/* feed in two parts at this byte (0: one feed) */
		const char *batches;
	} cases[] = {
		{ 1000, 0, 0, "B 256,B 256,B 256,B 232," },
		{ 256, 0, 0, "B 256," },
		{ 600, 299, 0, "B 256,B 43,E,B 256,B 45," },
		{ 3, 1, 0, "B 1,E,B 2," },
		{ 3, 0, 4, "B 2,B 1," },	/* "1 2 " then "3 " */
		{ 3, 0, 3, "B 1,B 2," },	/* "1 2" then " 3 ": 2 is decided in the 2nd feed */
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		char *in = numbers_text(cases[k].n, cases[k].bad);
		size_t len = strlen(in), cut = cases[k].cut ? cases[k].cut : len;
		struct coll c = { .format = MMAPQ_FORMAT_INT, .log_batches = true };
		struct sbuf shape = { 0 };
		struct mmapq_parser *p = NULL;
		char *log, *line;

		EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_INT, 8, on_record, on_error, &c, &p), 0);
		EXPECT_INT(mmapq_parser_set_int_batch(p, on_ints), 0);
		EXPECT_INT(mmapq_parser_feed(p, in, cut), 0);
		if (cut < len)
			EXPECT_INT(mmapq_parser_feed(p, in + cut, len - cut), 0);
		EXPECT_INT(mmapq_parser_finish(p), 0);
		EXPECT_INT(mmapq_parser_records(p), cases[k].n);
		EXPECT_INT(c.nrec, cases[k].n);
		mmapq_parser_free(p);
		log = sb_take(&c.log);
		for (line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
			if (line[0] == 'B' || line[0] == 'E')
				sb_printf(&shape, "%s,", line[0] == 'E' ? "E" : line);
		if (strcmp(shape.p, cases[k].batches) != 0)
			fprintf(stderr, "case %zu\n", k);
		EXPECT_STR(shape.p, cases[k].batches);
		free(shape.p);
		free(log);
		free(in);
	}
}

/* A failing on_ints stops the parse: its batch is not counted, the parser
 * is dead; NULL goes back to on_record; format line has no batches. */
static void test_batch_errors(void)
{
	char *in = numbers_text(600, 0);
	struct coll c = { .format = MMAPQ_FORMAT_INT, .fail_at = 300, .fail_err = -ENOSPC };
	struct mmapq_parser *p = NULL;

	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_INT, 8, on_record, on_error, &c, &p), 0);
	EXPECT_INT(mmapq_parser_set_int_batch(p, on_ints), 0);
	EXPECT_INT(mmapq_parser_feed(p, in, strlen(in)), -ENOSPC);
	EXPECT_INT(mmapq_parser_records(p), 256);	/* the first batch only */
	EXPECT_INT(c.nrec, 299);
	EXPECT_INT(mmapq_parser_feed(p, "1\n", 2), -EINVAL);
	EXPECT_INT(mmapq_parser_finish(p), -EINVAL);
	mmapq_parser_free(p);
	free(c.log.p);

	/* at finish: the last token, completed there */
	c = (struct coll){ .format = MMAPQ_FORMAT_INT, .fail_at = 3, .fail_err = -EIO };
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_INT, 8, on_record, on_error, &c, &p), 0);
	EXPECT_INT(mmapq_parser_set_int_batch(p, on_ints), 0);
	EXPECT_INT(mmapq_parser_feed(p, "1 2 3", 5), 0);
	EXPECT_INT(mmapq_parser_records(p), 2);
	EXPECT_INT(mmapq_parser_finish(p), -EIO);
	EXPECT_INT(mmapq_parser_records(p), 2);
	mmapq_parser_free(p);
	free(c.log.p);

	/* back to on_record between feeds */
	c = (struct coll){ .format = MMAPQ_FORMAT_INT };
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_INT, 8, on_record, on_error, &c, &p), 0);
	EXPECT_INT(mmapq_parser_set_int_batch(p, on_ints), 0);
	EXPECT_INT(mmapq_parser_feed(p, "1 2 ", 4), 0);
	EXPECT_INT(mmapq_parser_set_int_batch(p, NULL), 0);
	EXPECT_INT(mmapq_parser_feed(p, "3 4", 3), 0);
	EXPECT_INT(mmapq_parser_finish(p), 0);
	EXPECT_INT(c.nbatches, 1);
	EXPECT_STR(c.log.p, "R 1\nR 2\nR 3\nR 4\n");
	mmapq_parser_free(p);
	free(c.log.p);

	c = (struct coll){ .format = MMAPQ_FORMAT_LINE };
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_LINE, 8, on_record, on_error, &c, &p), 0);
	EXPECT_INT(mmapq_parser_set_int_batch(p, on_ints), -EINVAL);
	EXPECT_INT(mmapq_parser_set_int_batch(NULL, on_ints), -EINVAL);
	mmapq_parser_free(p);
	free(in);
}

/* ---- format binary ---- */

/* b = a 4-byte big-endian length and then the bytes */
static void put_binary(struct sbuf *b, const void *data, uint32_t len)
{
	unsigned char pre[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
	                        (unsigned char)(len >> 8), (unsigned char)len};

	sb_add(b, pre, 4);
	sb_add(b, data, len);
}

static void test_binary_basic(void)
{
	/* record numbers count refused records; columns are byte offsets + 1 */
	static const char in[] = "\0\0\0\0" "\0\0\0\3a\nb" "\0\0\0\x09" "123456789"
	                         "\0\0\0\x08" "12345678" "\0\0\0\1\\" "\0\0\1";
	check_log(MMAPQ_FORMAT_BINARY, 8, in, sizeof(in) - 1,
	          "R 0 []\n"
	          "R 3 [a\\x0ab]\n"
	          "E 3:12 record longer than max_record [\\x00\\x00\\x00\\x09]\n"
	          "R 8 [12345678]\n"
	          "R 1 [\\\\]\n"
	          "E 6:42 input ends inside a record [\\x00\\x00\\x01]\n");
	/* a payload cut short, and a length that says 4 GiB (skipped to the end) */
	check_log(MMAPQ_FORMAT_BINARY, 8, "\0\0\0\x05" "abc", 7,
	          "E 1:1 input ends inside a record [\\x00\\x00\\x00\\x05]\n");
	check_log(MMAPQ_FORMAT_BINARY, 8, "\xff\xff\xff\xff" "abc", 7,
	          "E 1:1 record longer than max_record [\\xff\\xff\\xff\\xff]\n");
}

/* Every byte value, records of every length up to max_record, fed whole and
 * in chunks of every size up to 70: each record comes out byte for byte. */
static void test_binary_all_bytes(void)
{
	const uint32_t max = 64;
	struct sbuf in = { 0 }, want = { 0 };
	unsigned char rec[64];
	size_t steps[71];

	for (uint32_t len = 0, v = 0; len <= max; len++) {
		for (uint32_t i = 0; i < len; i++)
			rec[i] = (unsigned char)(v++ * 7);
		put_binary(&in, rec, len);
		sb_printf(&want, "R %" PRIu32 " [", len);
		for (uint32_t i = 0; i < len; i++) {
			if (rec[i] == '\\')
				sb_str(&want, "\\\\");
			else if (rec[i] >= 0x20 && rec[i] < 0x7f)
				sb_add(&want, &rec[i], 1);
			else
				sb_printf(&want, "\\x%02x", rec[i]);
		}
		sb_str(&want, "]\n");
	}
	for (size_t k = 0; k < 71; k++)
		steps[k] = k;
	check_steps(MMAPQ_FORMAT_BINARY, max, in.p, in.len, want.p, steps, 71);
	free(in.p);
	free(want.p);
}

/* ---- how much input fits: mmapq_parser_cut ---- */

/* Frames of the records a parser puts, for the cut checks. */
struct frames {
	uint64_t bytes, records, errors;
	uint32_t last_len;
};

static int frames_record(void *ctx, const void *data, uint32_t len)
{
	struct frames *f = ctx;

	(void)data;
	f->bytes += mmapq_frame_size(len);
	f->records++;
	f->last_len = len;
	return 0;
}

static void frames_error(void *ctx, const struct mmapq_parse_error *e)
{
	struct frames *f = ctx;

	(void)e;
	f->errors++;
}

/* A parser that was fed pre[0..plen) (one feed: the state does not depend
 * on the chunking), counting into *f. */
static struct mmapq_parser *fed(uint32_t fmt, uint32_t rs, const char *pre, size_t plen,
                                struct frames *f)
{
	struct mmapq_parser *p = NULL;

	*f = (struct frames){ 0 };
	EXPECT_INT(mmapq_parser_new(fmt, rs, frames_record, frames_error, f, &p), 0);
	if (plen)
		EXPECT_INT(mmapq_parser_feed(p, pre, plen), 0);
	return p;
}

/* mmapq_parser_cut after pre, of buf: the cut is want and *need want_need. */
static void check_cut(uint32_t fmt, uint32_t rs, const char *pre, size_t plen, const char *buf,
                      size_t n, uint64_t room, unsigned flags, size_t want, uint64_t want_need)
{
	struct frames f;
	struct mmapq_parser *p = fed(fmt, rs, pre, plen, &f);
	uint64_t need = 12345;
	size_t got = mmapq_parser_cut(p, buf, n, room, flags, &need);

	if (got != want || need != want_need)
		fprintf(stderr, "cut of %zu bytes after %zu, room %" PRIu64 ", flags %u\n", n, plen,
		        room, flags);
	EXPECT_INT(got, want);
	EXPECT_INT(need, want_need);
	mmapq_parser_free(p);
}

#define CUT(fmt, rs, pre, buf, room, flags, want, need)                                     \
	check_cut(fmt, rs, pre, sizeof(pre) - 1, buf, sizeof(buf) - 1, room, flags, want, need)

static void test_cut_line(void)
{
	const uint32_t L = MMAPQ_FORMAT_LINE;
	const unsigned W = MMAPQ_CUT_WHOLE, F = MMAPQ_CUT_FIRST;

	/* two lines of 16-byte frames: the second does not fit in 16 */
	CUT(L, 16, "", "ab\ncd\nef", 16, 0, 3, 16);
	/* both fit; the unfinished "ef" is taken unless it must fit too, at
	 * the largest a line can be (frame(16) = 24) */
	CUT(L, 16, "", "ab\ncd\nef", 32, 0, 8, 0);
	CUT(L, 16, "", "ab\ncd\nef", 32, W, 6, 24);
	CUT(L, 16, "", "ab\ncd\nef", 56, W, 8, 0);
	/* CRLF: the CR is no part of the record (8 bytes: frame 16, not 24) */
	CUT(L, 16, "", "abcdefgh\r\n", 16, 0, 10, 0);
	CUT(L, 16, "", "abcdefgh\r\nx\n", 16, 0, 10, 16);
	/* ... also when the CR came in the chunk before */
	CUT(L, 16, "abcdefgh\r", "\n", 16, 0, 1, 0);
	CUT(L, 16, "abcdefgh\r", "\n", 15, 0, 0, 16);
	/* max_record bytes and a CR: a record; max_record + 1 bytes: refused,
	 * takes nothing (also when the CR is not the last one) */
	CUT(L, 8, "", "12345678\r\n", 16, 0, 10, 0);
	CUT(L, 8, "", "123456789\nab\n", 16, 0, 13, 0);
	CUT(L, 8, "", "1234567\r\r\nab\n", 16, 0, 10, 16);
	CUT(L, 8, "", "12345678\r9\nab\n", 16, 0, 14, 0);
	/* a line with a NUL is refused: nothing */
	CUT(L, 16, "", "a\0b\nxy\n", 16, 0, 7, 0);
	/* a line begun in an earlier chunk: 16 bytes in all, frame 24 */
	CUT(L, 16, "abcdefghij", "klmnop\nq", 24, 0, 8, 0);
	CUT(L, 16, "abcdefghij", "klmnop\nq", 23, 0, 0, 24);
	CUT(L, 16, "abcdefghij", "klmnop\nq", 24, W, 7, 24);
	CUT(L, 16, "abcdefghij", "klm", 23, W, 0, 24);
	CUT(L, 16, "abcdefghij", "klm", 24, W, 3, 0);
	/* ... one being skipped (too long already) takes nothing, finished or not */
	CUT(L, 8, "123456789", "abc\nxy\n", 16, 0, 7, 0);
	CUT(L, 8, "123456789", "abc", 0, W, 3, 0);
	/* an unfinished line that is too long already, or has a NUL: nothing */
	CUT(L, 8, "", "ab\n123456789", 16, W, 12, 0);
	CUT(L, 8, "", "ab\n1\0", 16, W, 5, 0);
	/* empty lines: 8 bytes each */
	CUT(L, 8, "", "\n\n\n", 16, 0, 2, 8);
	/* the first record only */
	CUT(L, 16, "ab", "cd\nef\n", 100, F, 3, 0);
	CUT(L, 16, "ab", "cd\nef\n", 15, F, 0, 16);
	CUT(L, 16, "ab", "cd", 100, F | W, 2, 0);
	CUT(L, 16, "ab", "cd", 23, F | W, 0, 24);
	/* room 0: nothing but what completes nothing */
	CUT(L, 16, "", "ab", 0, 0, 2, 0);
	CUT(L, 16, "", "\n", 0, 0, 0, 8);
}

static void test_cut_binary(void)
{
	const uint32_t B = MMAPQ_FORMAT_BINARY;
	const unsigned W = MMAPQ_CUT_WHOLE, F = MMAPQ_CUT_FIRST;
	/* 3 bytes (frame 16), 0 bytes (8), 16 bytes (24) */
	static const char three[] = "\0\0\0\3abc\0\0\0\0\0\0\0\x10" "0123456789abcdef";

	CUT(B, 16, "", three, 24, 0, 11, 24);
	CUT(B, 16, "", three, 47, 0, 11, 24);
	CUT(B, 16, "", three, 48, 0, 31, 0);
	CUT(B, 16, "", three, 15, 0, 0, 16);
	/* a length prefix split across chunks */
	CUT(B, 16, "\0\0", "\0\3abc\0", 16, 0, 6, 0);
	CUT(B, 16, "\0\0", "\0\3abc\0", 16, W, 5, 24);
	CUT(B, 16, "\0\0", "\0\3abc\0", 40, W, 6, 0);
	CUT(B, 16, "\0\0\0", "\3abc", 15, 0, 0, 16);
	/* an unfinished record whose length is known: its own frame */
	CUT(B, 16, "", "\0\0\0\x10" "abcde", 16, 0, 9, 0);
	CUT(B, 16, "", "\0\0\0\x10" "abcde", 23, W, 0, 24);
	CUT(B, 16, "", "\0\0\0\x10" "abcde", 24, W, 9, 0);
	CUT(B, 16, "\0\0\0\x03" "a", "bc\0\0\0\x09" "ab", 16, W, 2, 24);
	CUT(B, 16, "\0\0\0\x03" "a", "bc\0\0\0\x09" "ab", 40, W, 8, 0);
	CUT(B, 16, "\0\0\0\x03" "a", "bc\0\0\0\x09" "ab", 16 + 23, W, 2, 24);
	/* a record longer than max_record is skipped, and takes nothing */
	CUT(B, 16, "", "\0\0\0\x20" "0123456789abcdef0123456789abcdef\0\0\0\1x", 16, 0, 41, 0);
	CUT(B, 16, "", "\0\0\0\x20" "0123456789abcdef0123456789abcdef\0\0\0\1x", 8, 0, 36, 16);
	CUT(B, 16, "\0\0\0\x20" "0123456789", "abcdef0123456789abcdef\0\0\0\1x", 16, 0, 27, 0);
	CUT(B, 16, "\0\0\0\x20" "0123456789", "abcdef0123456789abcdef\0\0\0\1x", 0, 0, 22, 16);
	CUT(B, 16, "", "\xff\xff\xff\xff" "abc", 0, W, 7, 0);
	/* the first record only: the rest of one, or of a skipped one */
	CUT(B, 16, "\0\0\0\3a", "bc\0\0\0\1x", 100, F, 2, 0);
	CUT(B, 16, "\0\0\0\x20" "0123456789", "abcdef0123456789abcdef\0\0\0\1x", 0, F, 22, 0);
	CUT(B, 16, "\0", "\0\0\0\0\0\0\1x", 100, F, 3, 0);
}

static void test_cut_int(void)
{
	const uint32_t I = MMAPQ_FORMAT_INT;
	const unsigned W = MMAPQ_CUT_WHOLE, F = MMAPQ_CUT_FIRST;

	/* 16 ring bytes a record: two fit in 32; the third does not */
	CUT(I, 8, "", "1 2 3 4 ", 32, 0, 4, 16);
	/* whitespace after the last one that fits completes nothing: taken */
	CUT(I, 8, "", "1 2  \n\t ", 32, 0, 8, 0);
	CUT(I, 8, "", "   5", 0, 0, 3, 16);
	CUT(I, 8, "", "    ", 0, 0, 4, 0);
	/* a token begun earlier, ended here */
	CUT(I, 8, "12", " 3", 0, 0, 0, 16);
	CUT(I, 8, "12", "34 56", 16, 0, 3, 16);
	CUT(I, 8, "12", "34 56", 32, 0, 5, 0);
	CUT(I, 8, "12", "34 56", 32, W, 5, 0);
	/* a token split across chunks at every byte of a long run of them */
	CUT(I, 8, "-922337203685477", "5808 9223372036854775807 1", 48, 0, 26, 0);
	CUT(I, 8, "-922337203685477", "5808 9223372036854775807 1", 47, 0, 25, 16);
	/* a token the parser refuses still counts: too small, never too big */
	CUT(I, 8, "", "x 1 ", 16, 0, 2, 16);
	/* the first token only */
	CUT(I, 8, "12", "3 4 5 ", 100, F, 2, 0);
	CUT(I, 8, "12", "3 4 5 ", 15, F, 0, 16);
}

/* ---- how much input fits: the properties, over random input ---- */

/* Random input of a format: records good and bad, of every kind each
 * format has, as the cut cases above, many times over. */
static void random_input(struct sbuf *b, uint32_t fmt, uint32_t rs, size_t n)
{
	static const char *const tokens[] = {
		"0", "7", "-1", "+12", "9223372036854775807", "-9223372036854775808",
		"9223372036854775808", "x", "1a", "--1", "-", "00000000000000000000000000000000000042",
	};
	static const char *const ws[] = { " ", "\n", "\t", "\r\n", "  ", " \n " };

	while (b->len < n) {
		if (rng() % 16 == 0) {
			/* a run of the records that take the most ring bytes per
			 * input byte: what a blind bound must allow for */
			for (uint64_t k = 4 + rng() % 40; k; k--)
				if (fmt == MMAPQ_FORMAT_INT)
					sb_str(b, "1 ");
				else if (fmt == MMAPQ_FORMAT_LINE)
					sb_str(b, rng() % 2 ? "a\n" : "\n");
				else
					put_binary(b, "x", 1);
			continue;
		}
		if (fmt == MMAPQ_FORMAT_INT) {
			sb_str(b, tokens[rng() % (sizeof(tokens) / sizeof(tokens[0]))]);
			sb_str(b, ws[rng() % (sizeof(ws) / sizeof(ws[0]))]);
		} else if (fmt == MMAPQ_FORMAT_LINE) {
			uint64_t len = rng() % 8 == 0 ? rs + rng() % 3 : rng() % (rs + 1);

			for (uint64_t i = 0; i < len; i++) {
				char c = (char)('a' + rng() % 26);
				if (rng() % 97 == 0)
					c = '\0';
				else if (rng() % 31 == 0)
					c = '\r';
				sb_add(b, &c, 1);
			}
			sb_str(b, rng() % 4 == 0 ? "\r\n" : "\n");
		} else {
			unsigned char rec[256];
			uint32_t len;

			switch (rng() % 8) {
			case 0:
				len = 0;
				break;
			case 1:
				len = rs + 1 + (uint32_t)(rng() % rs); /* refused */
				break;
			case 2:
				len = rs;
				break;
			default:
				len = (uint32_t)(rng() % (rs + 1));
			}
			for (uint32_t i = 0; i < len; i++)
				rec[i] = (unsigned char)rng();
			put_binary(b, rec, len);
		}
	}
}

static bool is_space(unsigned char c)
{
	return c && strchr(" \t\n\v\f\r", c);
}

/* The bytes of the record in progress after in[0..n): what
 * mmapq_parser_partial must say, from the format's rules alone. */
static uint64_t ref_partial(uint32_t fmt, const unsigned char *in, size_t n)
{
	size_t pos = 0;

	if (fmt == MMAPQ_FORMAT_LINE) {
		const unsigned char *nl = memrchr(in, '\n', n);
		return nl ? n - (size_t)(nl - in) - 1 : n;
	}
	if (fmt == MMAPQ_FORMAT_INT) {
		size_t i = n;
		while (i && !is_space(in[i - 1]))
			i--;
		return n - i;
	}
	while (n - pos >= 4) {
		uint64_t len = (uint64_t)in[pos] << 24 | (uint64_t)in[pos + 1] << 16 |
		               (uint64_t)in[pos + 2] << 8 | in[pos + 3];
		if (n - pos - 4 < len)
			break;
		pos += 4 + len;
	}
	return n - pos;
}

/* The int tokens that end in in[at..at+n) (a whitespace byte after one
 * that is not). */
static uint64_t int_ends(const unsigned char *in, size_t at, size_t n)
{
	uint64_t ends = 0;

	for (size_t i = at; i < at + n; i++)
		ends += is_space(in[i]) && i > 0 && !is_space(in[i - 1]);
	return ends;
}

/* The largest frame a record left unfinished at in[0..n) may take. */
static uint64_t ref_unfinished(uint32_t fmt, uint32_t rs, const unsigned char *in, size_t n)
{
	uint64_t part = ref_partial(fmt, in, n);

	if (fmt == MMAPQ_FORMAT_INT)
		return 16;
	if (fmt == MMAPQ_FORMAT_BINARY && part >= 4) {
		const unsigned char *s = in + n - part;
		uint32_t len = (uint32_t)s[0] << 24 | (uint32_t)s[1] << 16 | (uint32_t)s[2] << 8 | s[3];
		return mmapq_frame_size(len);
	}
	return mmapq_frame_size(rs);
}

/*
 * One cut of in[at..at+n) with the parser fed in[0..at), checked against
 * what feeding does (the cut is to say it without feeding):
 *   - the records the cut completes fit in room;
 *   - a cut short of n ends where a record begins that does not fit, and
 *     *need is that record's frame: feeding on, the next thing the parser
 *     does is to put it (or refuse it: an int token), or, with
 *     MMAPQ_CUT_WHOLE (format int: always), it stays unfinished and *need
 *     is its largest frame;
 *   - without MMAPQ_CUT_FIRST, *need 0 means everything was taken;
 *     with it, the cut ends where the first record ends, or takes all;
 *   - mmapq_parser_partial says the bytes of the record in progress.
 */
static size_t check_cut_at(uint32_t fmt, uint32_t rs, const unsigned char *in, size_t at, size_t n,
                           uint64_t room, unsigned flags)
{
	struct frames f;
	struct mmapq_parser *p = fed(fmt, rs, (const char *)in, at, &f);
	uint64_t need, before, part = mmapq_parser_partial(p);
	size_t c = mmapq_parser_cut(p, (const char *)in + at, n, room, flags, &need);
	size_t k;

	EXPECT(part == ref_partial(fmt, in, at), "partial %" PRIu64 " after %zu bytes, want %" PRIu64,
	       part, at, ref_partial(fmt, in, at));
	EXPECT(c <= n, "cut %zu of %zu", c, n);
	before = f.bytes;
	if (c)
		EXPECT_INT(mmapq_parser_feed(p, (const char *)in + at, c), 0);
	EXPECT(f.bytes - before <= room, "at %zu, cut %zu of %zu (room %" PRIu64 ", flags %u): the"
	       " records take %" PRIu64 " bytes", at, c, n, room, flags, f.bytes - before);
	if (need) {
		uint64_t used = f.bytes - before, recs = f.records, errs = f.errors;

		EXPECT(c < n, "need %" PRIu64 " but all %zu bytes taken", need, n);
		for (k = c; k < n && f.records == recs && f.errors == errs; k++)
			EXPECT_INT(mmapq_parser_feed(p, (const char *)in + at + k, 1), 0);
		if (f.records > recs) {
			EXPECT(need == mmapq_frame_size(f.last_len), "at %zu, cut %zu: need %" PRIu64
			       " for the next record of %" PRIu32 " bytes", at, c, need, f.last_len);
		} else if (f.errors > errs) {
			EXPECT(fmt == MMAPQ_FORMAT_INT && need == 16, "at %zu, cut %zu: need %" PRIu64
			       " for a record the parser refuses", at, c, need);
		} else {
			/* format int counts a token left unfinished always */
			EXPECT((flags & MMAPQ_CUT_WHOLE) || fmt == MMAPQ_FORMAT_INT, "at %zu, cut %zu"
			       " of %zu: need %" PRIu64 " for no record", at, c, n, need);
			EXPECT_INT(need, ref_unfinished(fmt, rs, in, at + n));
		}
		/* format int counts the tokens it will refuse too: every token
		 * that ends in the cut */
		if (fmt == MMAPQ_FORMAT_INT)
			used = 16 * int_ends(in, at, c);
		EXPECT(used + need > room, "at %zu, cut %zu: need %" PRIu64 " fits in room %" PRIu64
		       " less %" PRIu64, at, c, need, room, used);
	} else if (!(flags & MMAPQ_CUT_FIRST)) {
		EXPECT(c == n, "at %zu: cut %zu of %zu, and nothing needs room", at, c, n);
	} else {
		/* (a record is in progress) where the first record ends, or all */
		mmapq_parser_free(p);
		p = fed(fmt, rs, (const char *)in, at, &f);
		for (k = 0; k < n; k++) {
			EXPECT_INT(mmapq_parser_feed(p, (const char *)in + at + k, 1), 0);
			if (!mmapq_parser_partial(p))
				break;
		}
		EXPECT(c == (k < n ? k + 1 : n), "at %zu: first-record cut %zu of %zu, the first"
		       " record ends at %zu", at, c, n, k < n ? k + 1 : n);
	}
	mmapq_parser_free(p);
	return c;
}

/* A blind read of the bound's bytes completes records that fit (the cut,
 * exact, takes them all), and a bound of 0 says the room one byte needs. */
static void check_blind_at(uint32_t fmt, uint32_t rs, const unsigned char *in, size_t at, size_t len,
                           uint64_t room, unsigned flags)
{
	struct frames f;
	struct mmapq_parser *p = fed(fmt, rs, (const char *)in, at, &f);
	uint64_t need, need2, k = mmapq_parser_blind_bound(p, room, flags, &need);

	if (!k) {
		uint64_t top = fmt == MMAPQ_FORMAT_INT ? 16 : mmapq_frame_size(rs);

		EXPECT(need > room && need <= top, "blind bound 0 at room %" PRIu64 ", need %" PRIu64,
		       room, need);
		EXPECT(mmapq_parser_blind_bound(p, need, flags, &need2) >= 1 && !need2,
		       "blind bound 0 with room %" PRIu64 " as needed", need);
	} else {
		size_t m = k < len - at ? (size_t)k : len - at;

		EXPECT_INT(need, 0);
		if (flags & MMAPQ_CUT_FIRST)
			EXPECT(k == 1 || fmt == MMAPQ_FORMAT_BINARY, "a first-record blind bound of %" PRIu64, k);
		EXPECT(mmapq_parser_cut(p, (const char *)in + at, m, room, flags & ~MMAPQ_CUT_FIRST,
		                        &need2) == m,
		       "at %zu, room %" PRIu64 " (flags %u): a blind read of %zu bytes takes more than"
		       " fits", at, room, flags, m);
	}
	mmapq_parser_free(p);
}

static uint64_t random_room(uint32_t rs)
{
	switch (rng() % 6) {
	case 0:
		return rng() % 24;
	case 1:
		return 16 * (rng() % 8);
	case 2:
		return mmapq_frame_size(rs) * (rng() % 4);
	case 3:
		return rng() % 1024;
	case 4:
		return UINT64_MAX;
	default:
		return rng() % (4 * mmapq_frame_size(rs) + 1);
	}
}

/*
 * Random input of each format and max_record, consumed as a producer
 * would: chunks of random size, each cut with a random room and flags
 * (first-record cuts while a record is in progress), the cut fed; a cut
 * of 0 is followed by one with the room it said it needs.  Every cut and
 * every blind bound checked as above; at the end, the frame
 * mmapq_parser_final_frame announced is what finish puts.
 */
static void test_cut_random(void)
{
	static const uint32_t formats[] = { MMAPQ_FORMAT_INT, MMAPQ_FORMAT_LINE, MMAPQ_FORMAT_BINARY };
	static const uint32_t sizes[] = { 8, 9, 16, 33 };

	rng_state = 0x2545f4914f6cdd1dULL;
	for (int round = 0; round < 120; round++) {
		uint32_t fmt = formats[round % 3], rs = sizes[(round / 3) % 4];
		struct sbuf b = { 0 };
		const unsigned char *in;
		uint64_t min_room = 0, ff;
		size_t at = 0;
		struct frames f;
		struct mmapq_parser *p;

		random_input(&b, fmt, rs, 600 + rng() % 600);
		if (rng() % 2)
			b.len -= rng() % 8; /* end inside a record */
		in = (const unsigned char *)b.p;
		while (at < b.len) {
			size_t n = 1 + (size_t)(rng() % (b.len - at < 120 ? b.len - at : 120));
			uint64_t room = random_room(rs);
			unsigned flags = (unsigned)(rng() % 2) * MMAPQ_CUT_WHOLE;
			struct frames g;
			struct mmapq_parser *q = fed(fmt, rs, b.p, at, &g);

			if (mmapq_parser_partial(q) && rng() % 4 == 0)
				flags |= MMAPQ_CUT_FIRST;
			mmapq_parser_free(q);
			if (room < min_room)
				room = min_room;
			check_blind_at(fmt, rs, in, at, b.len, room, flags);
			size_t c = check_cut_at(fmt, rs, in, at, n, room, flags);
			if (c == 0) {
				uint64_t need;
				q = fed(fmt, rs, b.p, at, &g);
				(void)mmapq_parser_cut(q, b.p + at, n, room, flags, &need);
				mmapq_parser_free(q);
				min_room = need;
			} else {
				min_room = 0;
			}
			at += c;
		}
		p = fed(fmt, rs, b.p, b.len, &f);
		ff = mmapq_parser_final_frame(p);
		uint64_t before = f.bytes;
		EXPECT_INT(mmapq_parser_finish(p), 0);
		EXPECT(f.bytes - before == ff, "round %d: final frame %" PRIu64 ", finish put %" PRIu64,
		       round, ff, f.bytes - before);
		EXPECT_INT(mmapq_parser_partial(p), 0);
		mmapq_parser_free(p);
		free(b.p);
	}
}

/* ---- batches of lines and binary records (mmapq_parser_set_record_batch) ---- */

/* n lines "1".."n", or binary records of those bytes, with a bad one (a
 * NUL in a line, a binary record over max_record 8) after record bad (0:
 * none). */
static char *records_text(uint32_t fmt, int n, int bad, size_t *len)
{
	struct sbuf b = { 0 };
	char num[16];

	for (int k = 1; k <= n; k++) {
		int l = snprintf(num, sizeof(num), "%d", k);

		if (fmt == MMAPQ_FORMAT_LINE) {
			sb_printf(&b, "%s\n", num);
			if (k == bad)
				sb_add(&b, "a\0b\n", 4);
		} else {
			put_binary(&b, num, (uint32_t)l);
			if (k == bad)
				put_binary(&b, "123456789", 9);
		}
	}
	*len = b.len;
	return sb_take(&b);
}

/* Where batches of lines and binary records end: when full, before an
 * error, at the end of each feed, the last line at finish; never empty. */
static void test_record_batch_boundaries(void)
{
	struct {
		uint32_t fmt;
		int n, bad;
		size_t cut;	/* feed in two parts at this byte (0: one feed) */
		const char *batches;
	} cases[] = {
		{ MMAPQ_FORMAT_LINE, 1000, 0, 0, "B 256,B 256,B 256,B 232," },
		{ MMAPQ_FORMAT_LINE, 256, 0, 0, "B 256," },
		{ MMAPQ_FORMAT_LINE, 600, 299, 0, "B 256,B 43,E,B 256,B 45," },
		{ MMAPQ_FORMAT_LINE, 3, 1, 0, "B 1,E,B 2," },
		{ MMAPQ_FORMAT_LINE, 3, 0, 4, "B 2,B 1," },	/* "1\n2\n" then "3\n" */
		{ MMAPQ_FORMAT_LINE, 3, 0, 3, "B 1,B 2," },	/* "1\n2" then "\n3\n": 2 from lb */
		{ MMAPQ_FORMAT_BINARY, 1000, 0, 0, "B 256,B 256,B 256,B 232," },
		{ MMAPQ_FORMAT_BINARY, 600, 299, 0, "B 256,B 43,E,B 256,B 45," },
		{ MMAPQ_FORMAT_BINARY, 3, 0, 7, "B 1,B 2," },	/* the 2nd record's prefix cut */
		{ MMAPQ_FORMAT_BINARY, 3, 0, 5, "B 1,B 2," },	/* its payload cut: 2 from lb */
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		size_t len;
		char *in = records_text(cases[k].fmt, cases[k].n, cases[k].bad, &len);
		size_t cut = cases[k].cut ? cases[k].cut : len;
		struct coll c = { .format = cases[k].fmt, .log_batches = true };
		struct sbuf shape = { 0 };
		struct mmapq_parser *p = NULL;
		char *log, *line;

		EXPECT_INT(mmapq_parser_new(cases[k].fmt, 8, on_record, on_error, &c, &p), 0);
		EXPECT_INT(mmapq_parser_set_record_batch(p, on_records), 0);
		EXPECT_INT(mmapq_parser_feed(p, in, cut), 0);
		if (cut < len)
			EXPECT_INT(mmapq_parser_feed(p, in + cut, len - cut), 0);
		EXPECT_INT(mmapq_parser_finish(p), 0);
		EXPECT_INT(mmapq_parser_records(p), cases[k].n);
		EXPECT_INT(c.nrec, cases[k].n);
		mmapq_parser_free(p);
		log = sb_take(&c.log);
		for (line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
			if (line[0] == 'B' || line[0] == 'E')
				sb_printf(&shape, "%s,", line[0] == 'E' ? "E" : line);
		if (strcmp(shape.p, cases[k].batches) != 0)
			fprintf(stderr, "case %zu\n", k);
		EXPECT_STR(shape.p, cases[k].batches);
		free(shape.p);
		free(log);
		free(in);
	}
	/* a last line without '\n': its own batch, at finish */
	{
		struct coll c = { .format = MMAPQ_FORMAT_LINE, .log_batches = true };
		struct mmapq_parser *p = NULL;

		EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_LINE, 8, on_record, on_error, &c, &p), 0);
		EXPECT_INT(mmapq_parser_set_record_batch(p, on_records), 0);
		EXPECT_INT(mmapq_parser_feed(p, "a\nb", 3), 0);
		EXPECT_STR(c.log.p, "B 1\nR 1 [a]\n");
		EXPECT_INT(mmapq_parser_finish(p), 0);
		EXPECT_STR(c.log.p, "B 1\nR 1 [a]\nB 1\nR 1 [b]\n");
		EXPECT_INT(mmapq_parser_records(p), 2);
		mmapq_parser_free(p);
		free(c.log.p);
	}
}

/* A failing on_records stops the parse: its batch is not counted, the
 * parser is dead (also at finish); NULL goes back to on_record; format int
 * has no record batches. */
static void test_record_batch_errors(void)
{
	size_t len;
	char *in = records_text(MMAPQ_FORMAT_LINE, 600, 0, &len);
	struct coll c = { .format = MMAPQ_FORMAT_LINE, .fail_at = 300, .fail_err = -ENOSPC };
	struct mmapq_parser *p = NULL;

	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_LINE, 8, on_record, on_error, &c, &p), 0);
	EXPECT_INT(mmapq_parser_set_record_batch(p, on_records), 0);
	EXPECT_INT(mmapq_parser_feed(p, in, len), -ENOSPC);
	EXPECT_INT(mmapq_parser_records(p), 256);	/* the first batch only */
	EXPECT_INT(c.nrec, 299);
	EXPECT_INT(mmapq_parser_feed(p, "1\n", 2), -EINVAL);
	EXPECT_INT(mmapq_parser_finish(p), -EINVAL);
	mmapq_parser_free(p);
	free(c.log.p);
	free(in);

	/* binary, the record completed from the parser's buffer */
	in = records_text(MMAPQ_FORMAT_BINARY, 3, 0, &len);
	c = (struct coll){ .format = MMAPQ_FORMAT_BINARY, .fail_at = 2, .fail_err = -EIO };
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_BINARY, 8, on_record, on_error, &c, &p), 0);
	EXPECT_INT(mmapq_parser_set_record_batch(p, on_records), 0);
	EXPECT_INT(mmapq_parser_feed(p, in, 7), 0);
	EXPECT_INT(mmapq_parser_feed(p, in + 7, len - 7), -EIO);
	EXPECT_INT(mmapq_parser_records(p), 1);
	mmapq_parser_free(p);
	free(c.log.p);
	free(in);

	/* at finish: the last line, completed there */
	c = (struct coll){ .format = MMAPQ_FORMAT_LINE, .fail_at = 3, .fail_err = -EIO };
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_LINE, 8, on_record, on_error, &c, &p), 0);
	EXPECT_INT(mmapq_parser_set_record_batch(p, on_records), 0);
	EXPECT_INT(mmapq_parser_feed(p, "1\n2\n3", 5), 0);
	EXPECT_INT(mmapq_parser_records(p), 2);
	EXPECT_INT(mmapq_parser_finish(p), -EIO);
	EXPECT_INT(mmapq_parser_records(p), 2);
	EXPECT_INT(mmapq_parser_finish(p), -EINVAL);
	mmapq_parser_free(p);
	free(c.log.p);

	/* back to on_record between feeds */
	c = (struct coll){ .format = MMAPQ_FORMAT_LINE };
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_LINE, 8, on_record, on_error, &c, &p), 0);
	EXPECT_INT(mmapq_parser_set_record_batch(p, on_records), 0);
	EXPECT_INT(mmapq_parser_feed(p, "1\n2\n", 4), 0);
	EXPECT_INT(mmapq_parser_set_record_batch(p, NULL), 0);
	EXPECT_INT(mmapq_parser_feed(p, "3\n4", 3), 0);
	EXPECT_INT(mmapq_parser_finish(p), 0);
	EXPECT_INT(c.nbatches, 1);
	EXPECT_STR(c.log.p, "R 1 [1]\nR 1 [2]\nR 1 [3]\nR 1 [4]\n");
	mmapq_parser_free(p);
	free(c.log.p);

	c = (struct coll){ .format = MMAPQ_FORMAT_INT };
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_INT, 8, on_record, on_error, &c, &p), 0);
	EXPECT_INT(mmapq_parser_set_record_batch(p, on_records), -EINVAL);
	EXPECT_INT(mmapq_parser_set_record_batch(NULL, on_records), -EINVAL);
	mmapq_parser_free(p);
}

/* Records wholly inside a chunk are handed over in place (nothing copied),
 * in batches too; one completed from an earlier chunk is the parser's. */
static void test_record_batch_zero_copy(void)
{
	static const char in[] = "aaa\nbbb\r\nccc";
	struct mmapq_parser *p = NULL;
	struct coll c = { .format = MMAPQ_FORMAT_LINE };
	char *buf = malloc(sizeof(in) - 1), *rest = malloc(2);

	if (!buf || !rest)
		tu_die("malloc");
	memcpy(buf, in, sizeof(in) - 1);
	EXPECT_INT(mmapq_parser_new(MMAPQ_FORMAT_LINE, 16, on_record, on_error, &c, &p), 0);
	EXPECT_INT(mmapq_parser_set_record_batch(p, on_records), 0);
	c.chunk = buf;
	c.chunk_len = sizeof(in) - 1;
	EXPECT_INT(mmapq_parser_feed(p, buf, sizeof(in) - 1), 0);
	EXPECT_INT(c.nrec, 2);
	EXPECT_INT(c.in_chunk, 2);	/* both came straight from buf */
	free(buf);			/* "ccc" must have been copied */
	memcpy(rest, "d\n", 2);
	c.chunk = rest;
	c.chunk_len = 2;
	EXPECT_INT(mmapq_parser_feed(p, rest, 2), 0);
	EXPECT_INT(c.in_chunk, 2);	/* "cccd": the parser's */
	c.chunk = NULL;
	free(rest);
	EXPECT_INT(mmapq_parser_finish(p), 0);
	EXPECT_STR(c.log.p, "R 3 [aaa]\nR 3 [bbb]\nR 4 [cccd]\n");
	mmapq_parser_free(p);
	free(c.log.p);
}

/*
 * Random lines (long ones, over the 16- and 64-byte blocks the scans read,
 * NULs and CRs anywhere, too long ones) and binary records: in batches
 * exactly the records and errors of the one-by-one callbacks, byte for
 * byte, the input whole, cut at every offset, and in chunks of 1 to 40
 * bytes; and the same with the fast path (format line: the AVX2 scan where
 * the CPU has it) on as with it off.
 */
static void test_record_batch_differential(void)
{
	static const struct { uint32_t fmt, rs; } kinds[] = {
		{ MMAPQ_FORMAT_LINE, 8 }, { MMAPQ_FORMAT_LINE, 40 }, { MMAPQ_FORMAT_LINE, 100 },
		{ MMAPQ_FORMAT_LINE, 300 },
		{ MMAPQ_FORMAT_BINARY, 8 }, { MMAPQ_FORMAT_BINARY, 100 },
	};

	rng_state = UINT64_C(0x13198a2e03707344);	/* fixed seed: reproducible */
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		for (int round = 0; round < 3; round++) {
			uint32_t fmt = kinds[k].fmt, rs = kinds[k].rs;
			struct sbuf in = { 0 };
			char *want, *got;

			random_input(&in, fmt, rs, 900 + 8 * (size_t)rs);
			if (round == 1)			/* ends inside a record */
				sb_str(&in, fmt == MMAPQ_FORMAT_LINE ? "abc\r" : "\0\0\0\x05" "ab");
			batched = false;
			fast_path = false;
			want = run_whole(fmt, rs, in.p, in.len);
			for (int mode = 1; mode < 4; mode++) {
				fast_path = mode & 1;
				batched = mode & 2;
				got = run_whole(fmt, rs, in.p, in.len);
				EXPECT_STR(got, want);
				free(got);
				for (size_t i = 0; i <= in.len; i++) {
					got = run_cuts(fmt, rs, in.p, in.len, &i, 1);
					if (strcmp(got, want) != 0)
						fprintf(stderr, "kind %zu round %d mode %d split at %zu\n", k,
						        round, mode, i);
					EXPECT_STR(got, want);
					free(got);
				}
				for (size_t step = 1; step <= 40; step++) {
					got = run_step(fmt, rs, in.p, in.len, step);
					if (strcmp(got, want) != 0)
						fprintf(stderr, "kind %zu round %d mode %d chunks of %zu\n", k,
						        round, mode, step);
					EXPECT_STR(got, want);
					free(got);
				}
			}
			batched = false;
			fast_path = true;
			free(want);
			free(in.p);
		}
	}
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"int_basic", test_int_basic},
		{"int_bad_tokens", test_int_bad_tokens},
		{"int_nul_bytes", test_int_nul_bytes},
		{"int_non_ascii", test_int_non_ascii},
		{"int_bom", test_int_bom},
		{"int_long_tokens", test_int_long_tokens},
		{"excerpt_bounds", test_excerpt_bounds},
		{"int64_limits", test_int64_limits},
		{"int_crlf", test_int_crlf},
		{"int_whitespace", test_int_whitespace},
		{"int_no_trailing_newline", test_int_no_trailing_newline},
		{"empty_input", test_empty_input},
		{"line_basic", test_line_basic},
		{"line_crlf", test_line_crlf},
		{"line_nul", test_line_nul},
		{"line_invalid_utf8", test_line_invalid_utf8},
		{"line_bom", test_line_bom},
		{"line_1mb", test_line_1mb},
		{"line_max_record", test_line_max_record},
		{"line_zero_copy", test_line_zero_copy},
		{"split_invariance", test_split_invariance},
		{"roundtrip_random", test_roundtrip_random},
		{"fast_path_differential", test_fast_path_differential},
		{"int_fast_edges", test_int_fast_edges},
		{"int_guard_page", test_int_guard_page},
		{"fmt_int", test_fmt_int},
		{"fmt_head_all", test_fmt_head_all},
		{"fmt_u64", test_fmt_u64},
		{"fmt_parse_roundtrip", test_fmt_parse_roundtrip},
		{"api_validation", test_api_validation},
		{"record_error_stops", test_record_error_stops},
		{"batch_boundaries", test_batch_boundaries},
		{"batch_errors", test_batch_errors},
		{"binary_basic", test_binary_basic},
		{"binary_all_bytes", test_binary_all_bytes},
		{"cut_line", test_cut_line},
		{"cut_binary", test_cut_binary},
		{"cut_int", test_cut_int},
		{"cut_random", test_cut_random},
		{"record_batch_boundaries", test_record_batch_boundaries},
		{"record_batch_errors", test_record_batch_errors},
		{"record_batch_zero_copy", test_record_batch_zero_copy},
		{"record_batch_differential", test_record_batch_differential},
	};

	return tu_main_cases(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
