/* SPDX-License-Identifier: MIT */
/*
 * fuzz_parse -- libFuzzer target: the producer's streaming record parser
 * (common/records/parse.c), every format, input cut into chunks at points
 * the fuzzer chooses, and what it says of how much input fits in the ring
 * (mmapq_parser_cut, mmapq_parser_blind_bound).
 *
 * Input:
 *   byte 0  bit 0: format (0 int, 1 line), bit 4: format binary instead;
 *           bits 1-3: max_record 8, 9, 10, 16, 17, 32, 64,
 *           MMAPQ_MAX_RECORD_MAX (64 MiB); bits 5-7: the ring bytes the
 *           chunked parse has at each chunk (a PRNG's, scaled)
 *   byte 1  chunking: 0 = the whole input in one feed, 1 = one byte per
 *           feed, else feeds of 1..byte bytes (lengths from a PRNG seeded by
 *           this byte and byte 2), with empty feeds mixed in
 *   byte 2  if 1..31: on_record fails (-ECANCELED) at that record, in a
 *           third parse; else never
 *   rest    the input text
 *
 * Invariants:
 *   - every int record is 8 bytes; every line record is at most max_record
 *     bytes, without NUL or '\n'; every binary record at most max_record;
 *   - every error has line >= 1 and column >= 1 inside the input, a known
 *     message, and an excerpt that is printable ASCII, NUL-terminated, and
 *     (unescaped, less a final "...") the input's bytes from the start of
 *     the bad token or line (binary: the column is the byte where the
 *     record's length prefix starts, the excerpt that prefix);
 *   - split invariance: the chunked parse produces exactly the records and
 *     errors (positions, messages and excerpts) of the whole-input parse;
 *   - in the chunked parse each chunk is fed as a producer near a full ring
 *     would: every other chunk cut by mmapq_parser_cut (the cut fed first,
 *     then the rest) and the others by mmapq_parser_blind_bound (that many
 *     bytes first): the records the cut or the bound lets in take at most
 *     the room given (as frames, mmapq_frame_size); a cut that says a
 *     record needs more room ends short of the chunk, with a need of at
 *     most frame(max_record) that does not fit in what is left; a cut
 *     without MMAPQ_CUT_FIRST that needs nothing takes the whole chunk;
 *     mmapq_parser_partial is 0 exactly at the ends of records;
 *   - the whole-input parse agrees, record for record and error for error
 *     (line, column, message), with a plain reference parser written from
 *     the rules documented in parse.h and at the top of parse.c;
 *   - format int and line: the parse with the fast path off (int: byte by
 *     byte only; line: the SSE2 scan, not the AVX2 one), chunked the same
 *     way, gives exactly the same records and errors, excerpts included,
 *     as the whole-input parse with it on;
 *   - the parse with the records in batches (format int:
 *     mmapq_parser_set_int_batch; line, binary:
 *     mmapq_parser_set_record_batch), chunked the same way, gives exactly the
 *     same records and errors in the same order; no batch is empty or
 *     larger than MMAPQ_PARSE_BATCH, and when a feed returns all its
 *     records have been handed over;
 *   - every int record, written by mmapq_fmt_int (common/records/fmt.h), reads as
 *     snprintf's "%" PRId64 "\n" of it;
 *   - records() and errors() count what the callbacks saw;
 *   - a failing on_record stops the parse at once: its error comes back
 *     from feed/finish, what was reported before is a prefix of the full
 *     run, and the parser refuses further input with -EINVAL;
 *   - no crash, no out-of-bounds access, no leak; memory stays bounded
 *     (run with -rss_limit_mb; the parser allocates only in _new).
 */
#include <errno.h>
#include <inttypes.h>

#include "fmt.h"
#include "fuzz_common.h"
#include "mmapq.h"
#include "parse.h"

static const uint32_t rs_tab[8] = {8, 9, 10, 16, 17, 32, 64, MMAPQ_MAX_RECORD_MAX};

/* what parse.c reports, in its words (checked by content, not by address) */
#define W_NOT_INT "not a decimal integer"
#define W_RANGE "out of range for a 64-bit integer"
#define W_TOKEN_LONG "token too long"
#define W_LINE_LONG "line too long"
#define W_NUL "NUL byte in line"
#define W_RECORD_LONG "record longer than max_record"
#define W_RECORD_CUT "input ends inside a record"

enum { EV_RECORD, EV_ERROR };

struct ev {
	int kind;
	uint64_t line, col;   /* error */
	const char *what;
	char excerpt[MMAPQ_PARSE_TOKEN_MAX + 8];
	size_t off;           /* record: offset of its bytes in the log's arena */
	uint32_t len;
};

struct log {
	struct ev *ev;
	size_t n, cap;
	uint8_t *arena;
	size_t alen, acap;
	uint32_t format, record_size;
	uint32_t fail_at;     /* 1-based record number that on_record fails, 0 = never */
	uint64_t records_seen;
	bool slow;            /* parse with the fast path off */
	bool batched;         /* records through on_ints, or on_records */
	uint64_t frames;      /* ring bytes of the records so far */
	uint8_t room_mode;    /* chunked: cut each chunk to fit a room (1..7; 0: no) */
};

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		abort();
	return p;
}

static struct ev *log_push(struct log *l)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->ev = xrealloc(l->ev, l->cap * sizeof(*l->ev));
	}
	memset(&l->ev[l->n], 0, sizeof(l->ev[0]));
	return &l->ev[l->n++];
}

static void log_bytes(struct log *l, struct ev *e, const void *data, uint32_t len)
{
	if (l->alen + len > l->acap) {
		while (l->alen + len > l->acap)
			l->acap = l->acap ? 2 * l->acap : 4096;
		l->arena = xrealloc(l->arena, l->acap);
	}
	if (len)
		memcpy(l->arena + l->alen, data, len);
	e->off = l->alen;
	e->len = len;
	l->alen += len;
}

static void log_free(struct log *l)
{
	free(l->ev);
	free(l->arena);
	memset(l, 0, sizeof(*l));
}

static int on_record(void *ctx, const void *data, uint32_t len)
{
	struct log *l = ctx;
	const uint8_t *d = data;

	l->records_seen++;
	if (l->fail_at && l->records_seen == l->fail_at)
		return -ECANCELED;
	FUZZ_CHECK(data != NULL || len == 0, "record without data");
	if (l->format == MMAPQ_FORMAT_INT) {
		char want[32], got[MMAPQ_FMT_INT_MAX];
		int64_t v;
		size_t k;
		int wl;

		FUZZ_CHECK(len == 8, "int record of %" PRIu32 " bytes", len);
		memcpy(&v, data, sizeof(v));
		wl = snprintf(want, sizeof(want), "%" PRId64 "\n", v);
		k = mmapq_fmt_int(got, v);
		FUZZ_CHECK(k == (size_t)wl && !memcmp(got, want, k), "mmapq_fmt_int(%" PRId64 ") is '%.*s'",
		           v, (int)k, got);
	} else {
		FUZZ_CHECK(len <= l->record_size, "record of %" PRIu32 " bytes > max_record %" PRIu32,
		           len, l->record_size);
		if (l->format == MMAPQ_FORMAT_LINE) {
			FUZZ_CHECK(!memchr(d, '\0', len), "NUL in a line record");
			FUZZ_CHECK(!memchr(d, '\n', len), "newline in a line record");
		}
	}
	l->frames += mmapq_frame_size(len);
	log_bytes(l, log_push(l), data, len);
	return 0;
}

static int on_ints(void *ctx, const int64_t *v, size_t n)
{
	FUZZ_CHECK(n >= 1 && n <= MMAPQ_PARSE_BATCH, "a batch of %zu records", n);
	for (size_t i = 0; i < n; i++) {
		int r = on_record(ctx, &v[i], sizeof(v[i]));
		if (r < 0)
			return r;
	}
	return 0;
}

static int on_records(void *ctx, const struct mmapq_iovec *rec, size_t n)
{
	FUZZ_CHECK(n >= 1 && n <= MMAPQ_PARSE_BATCH, "a batch of %zu records", n);
	for (size_t i = 0; i < n; i++) {
		int r = on_record(ctx, rec[i].data, rec[i].len);
		if (r < 0)
			return r;
	}
	return 0;
}

static void on_error(void *ctx, const struct mmapq_parse_error *e)
{
	struct log *l = ctx;
	struct ev *v = log_push(l);
	size_t xl = strnlen(e->excerpt, sizeof(e->excerpt));

	FUZZ_CHECK(xl < sizeof(e->excerpt), "excerpt not NUL-terminated");
	FUZZ_CHECK(e->what != NULL, "error without a message");
	v->kind = EV_ERROR;
	v->line = e->line;
	v->col = e->column;
	v->what = e->what;
	memcpy(v->excerpt, e->excerpt, xl + 1);
}

/* ---- the reference parser: whole input, straight from the documentation ---- */

static bool ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static void ref_error(struct log *l, uint64_t line, uint64_t col, const char *what)
{
	struct ev *v = log_push(l);

	v->kind = EV_ERROR;
	v->line = line;
	v->col = col;
	v->what = what;
}

static void ref_int(struct log *l, const uint8_t *d, size_t n)
{
	uint64_t line = 1;
	size_t ls = 0, i = 0; /* ls: offset where the current line starts */

	while (i < n) {
		size_t s, len, k;
		bool neg = false, ok = true;
		uint64_t mag = 0;
		bool ovf = false;

		if (ws(d[i])) {
			if (d[i] == '\n') {
				line++;
				ls = i + 1;
			}
			i++;
			continue;
		}
		s = i;
		while (i < n && !ws(d[i]))
			i++;
		len = i - s;
		if (len > MMAPQ_PARSE_TOKEN_MAX) {
			ref_error(l, line, s - ls + 1, W_TOKEN_LONG);
			continue;
		}
		k = s;
		if (d[k] == '+' || d[k] == '-')
			neg = d[k++] == '-';
		if (k == i)
			ok = false;
		for (; k < i && ok; k++) {
			if (d[k] < '0' || d[k] > '9')
				ok = false;
			else {
				ovf |= mag > (UINT64_MAX - 9) / 10;
				mag = mag * 10 + (uint64_t)(d[k] - '0');
			}
		}
		if (!ok) {
			ref_error(l, line, s - ls + 1, W_NOT_INT);
			continue;
		}
		if (ovf || mag > (uint64_t)INT64_MAX + (neg ? 1 : 0)) {
			ref_error(l, line, s - ls + 1, W_RANGE);
			continue;
		}
		{
			int64_t v = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag)
			                : (int64_t)mag;
			struct ev *e = log_push(l);
			e->kind = EV_RECORD;
			log_bytes(l, e, &v, 8);
		}
	}
}

/* One line, raw bytes L[0..n) (without its '\n'); final = no '\n' after it. */
static void ref_one_line(struct log *l, uint64_t line, const uint8_t *L, size_t n, bool final)
{
	size_t rs = l->record_size, ti = SIZE_MAX; /* index of the byte that makes it too long */
	bool too_long = false;
	const uint8_t *z;

	if (n > rs) {
		too_long = true;
		if (L[rs] != '\r')
			ti = rs;
		else if (rs + 1 < n)
			ti = rs + 1;
		else if (!final)
			too_long = false; /* exactly rs bytes and the CR of a CRLF */
		/* else: rs bytes and a CR that no LF follows: too long, decided at the end */
	}
	z = memchr(L, '\0', ti == SIZE_MAX ? n : ti + 1);
	if (z) {
		ref_error(l, line, (uint64_t)(z - L) + 1, W_NUL);
		return;
	}
	if (too_long) {
		ref_error(l, line, 1, W_LINE_LONG);
		return;
	}
	if (!final && n > 0 && L[n - 1] == '\r')
		n--;
	{
		struct ev *e = log_push(l);
		e->kind = EV_RECORD;
		log_bytes(l, e, L, (uint32_t)n);
	}
}

static void ref_line(struct log *l, const uint8_t *d, size_t n)
{
	uint64_t line = 1;
	size_t s = 0;

	while (s < n) {
		const uint8_t *nl = memchr(d + s, '\n', n - s);
		size_t len = nl ? (size_t)(nl - (d + s)) : n - s;

		ref_one_line(l, line, d + s, len, !nl);
		line++;
		s += len + 1;
	}
}

/* Each record a 4-byte big-endian length, then the bytes; the error's line
 * is the record's number, its column the byte where its prefix starts. */
static void ref_binary(struct log *l, const uint8_t *d, size_t n)
{
	uint64_t recno = 1;
	size_t pos = 0;

	while (pos < n) {
		uint64_t len;

		if (n - pos < 4) {
			ref_error(l, recno, pos + 1, W_RECORD_CUT);
			return;
		}
		len = (uint64_t)d[pos] << 24 | (uint64_t)d[pos + 1] << 16 | (uint64_t)d[pos + 2] << 8 |
		      d[pos + 3];
		if (len > l->record_size) {
			ref_error(l, recno++, pos + 1, W_RECORD_LONG);
			if (len > n - pos - 4)
				return; /* skipped to the end: nothing more to say */
		} else if (len > n - pos - 4) {
			ref_error(l, recno, pos + 1, W_RECORD_CUT);
			return;
		} else {
			struct ev *e = log_push(l);
			e->kind = EV_RECORD;
			log_bytes(l, e, d + pos + 4, (uint32_t)len);
			recno++;
		}
		pos += 4 + (size_t)len;
	}
}

/* ---- checks ---------------------------------------------------------------- */

enum { K_NOT_INT, K_RANGE, K_TOKEN_LONG, K_LINE_LONG, K_NUL, K_RECORD_LONG, K_RECORD_CUT, K_UNKNOWN };

static int what_kind(const char *w)
{
	static const char *const known[] = {W_NOT_INT, W_RANGE, W_TOKEN_LONG, W_LINE_LONG, W_NUL,
	                                    W_RECORD_LONG, W_RECORD_CUT};

	for (int i = 0; i < K_UNKNOWN; i++)
		if (!strcmp(w, known[i]))
			return i;
	return K_UNKNOWN;
}

/* Offset in d of (line, col), or SIZE_MAX if there is no such position. */
static size_t pos_offset(const uint8_t *d, size_t n, uint64_t line, uint64_t col)
{
	size_t ls = 0;

	for (uint64_t k = 1; k < line; k++) {
		const uint8_t *nl = memchr(d + ls, '\n', n - ls);
		if (!nl)
			return SIZE_MAX;
		ls = (size_t)(nl - d) + 1;
	}
	if (col < 1 || col - 1 > n - ls)
		return SIZE_MAX;
	return ls + (size_t)(col - 1);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Unescape x[0..xl) into out; false if it is not well-formed. */
static bool unescape(const char *x, size_t xl, uint8_t *out, size_t *outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < xl; i++) {
		if (x[i] != '\\') {
			out[o++] = (uint8_t)x[i];
			continue;
		}
		if (i + 1 < xl && x[i + 1] == '\\') {
			out[o++] = '\\';
			i++;
			continue;
		}
		if (i + 3 < xl && x[i + 1] == 'x' && hexval(x[i + 2]) >= 0 && hexval(x[i + 3]) >= 0) {
			uint8_t c = (uint8_t)(hexval(x[i + 2]) * 16 + hexval(x[i + 3]));
			/* only bytes that cannot be shown as themselves are escaped */
			if (c >= 0x20 && c < 0x7f)
				return false;
			out[o++] = c;
			i += 3;
			continue;
		}
		return false;
	}
	*outlen = o;
	return true;
}

static bool is_prefix_at(const uint8_t *d, size_t n, size_t at, const uint8_t *p, size_t pl)
{
	return at <= n && pl <= n - at && !memcmp(d + at, p, pl);
}

static void check_error(const struct ev *e, const uint8_t *d, size_t n, uint32_t format)
{
	int k = what_kind(e->what);
	size_t xl = strlen(e->excerpt), at, start, ul;
	uint8_t un[sizeof(e->excerpt)];
	bool ok;

	FUZZ_CHECK(k != K_UNKNOWN, "unknown error message '%s'", e->what);
	FUZZ_CHECK(format == MMAPQ_FORMAT_INT ? k <= K_TOKEN_LONG :
	           format == MMAPQ_FORMAT_LINE ? k == K_LINE_LONG || k == K_NUL : k >= K_RECORD_LONG,
	           "message '%s' for the wrong format", e->what);
	if (format == MMAPQ_FORMAT_BINARY) {
		/* the column is the prefix's first byte, the excerpt the prefix */
		FUZZ_CHECK(e->line >= 1 && e->col >= 1 && e->col <= n, "error at %" PRIu64 ":%" PRIu64
		           " is outside the input", e->line, e->col);
		at = (size_t)(e->col - 1);
		for (size_t i = 0; i < xl; i++)
			FUZZ_CHECK(e->excerpt[i] >= 0x20 && e->excerpt[i] < 0x7f,
			           "unprintable excerpt byte 0x%02x", (unsigned char)e->excerpt[i]);
		FUZZ_CHECK(unescape(e->excerpt, xl, un, &ul) && ul <= 4 && is_prefix_at(d, n, at, un, ul) &&
		           (ul == 4 || at + ul == n),
		           "excerpt '%s' of the '%s' error at byte %" PRIu64 " is not the record's prefix",
		           e->excerpt, e->what, e->col);
		return;
	}
	at = pos_offset(d, n, e->line, e->col);
	FUZZ_CHECK(at != SIZE_MAX && at < n, "error at %" PRIu64 ":%" PRIu64 " is outside the input",
	           e->line, e->col);
	if (k == K_NUL)
		FUZZ_CHECK(d[at] == '\0', "NUL error at %" PRIu64 ":%" PRIu64 " is not at a NUL", e->line,
		           e->col);
	for (size_t i = 0; i < xl; i++)
		FUZZ_CHECK(e->excerpt[i] >= 0x20 && e->excerpt[i] < 0x7f, "unprintable excerpt byte 0x%02x",
		           (unsigned char)e->excerpt[i]);
	/* the excerpt shows the token (int) or the line from its start */
	start = k == K_NUL ? at - (size_t)(e->col - 1) : at;
	ok = unescape(e->excerpt, xl, un, &ul) && is_prefix_at(d, n, start, un, ul);
	if (!ok && xl >= 3 && !strcmp(e->excerpt + xl - 3, "..."))
		ok = unescape(e->excerpt, xl - 3, un, &ul) && is_prefix_at(d, n, start, un, ul);
	FUZZ_CHECK(ok, "excerpt '%s' of the '%s' error at %" PRIu64 ":%" PRIu64
	           " is not the input there", e->excerpt, e->what, e->line, e->col);
	if (k == K_TOKEN_LONG || k == K_LINE_LONG)
		FUZZ_CHECK(xl >= 3 && !strcmp(e->excerpt + xl - 3, "..."), "'%s' excerpt without '...'",
		           e->what);
}

/* a[0..n) and b[0..n) hold the same events (excerpts compared if exc). */
static void compare(const struct log *a, const struct log *b, size_t n, bool exc, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		const struct ev *x = &a->ev[i], *y = &b->ev[i];

		FUZZ_CHECK(x->kind == y->kind, "%s: event %zu is a %s here, a %s there", what, i,
		           x->kind == EV_RECORD ? "record" : "error", y->kind == EV_RECORD ? "record" : "error");
		if (x->kind == EV_RECORD) {
			FUZZ_CHECK(x->len == y->len &&
			           (!x->len || !memcmp(a->arena + x->off, b->arena + y->off, x->len)),
			           "%s: record %zu differs", what, i);
		} else {
			FUZZ_CHECK(x->line == y->line && x->col == y->col && !strcmp(x->what, y->what),
			           "%s: error %zu: %" PRIu64 ":%" PRIu64 " %s vs %" PRIu64 ":%" PRIu64 " %s",
			           what, i, x->line, x->col, x->what, y->line, y->col, y->what);
			FUZZ_CHECK(!exc || !strcmp(x->excerpt, y->excerpt), "%s: error %zu excerpt '%s' vs '%s'",
			           what, i, x->excerpt, y->excerpt);
		}
	}
}

static uint64_t count_kind(const struct log *l, int kind)
{
	uint64_t c = 0;

	for (size_t i = 0; i < l->n; i++)
		c += l->ev[i].kind == kind;
	return c;
}

/* ---- parses ------------------------------------------------------------------ */

struct chunker {
	uint32_t state;
	uint8_t mode;
};

static size_t next_chunk(struct chunker *c, size_t left, bool *empty)
{
	*empty = false;
	if (c->mode == 0)
		return left;
	if (c->mode == 1)
		return 1;
	c->state ^= c->state << 13;
	c->state ^= c->state >> 17;
	c->state ^= c->state << 5;
	if (c->state % 11 == 0) {
		*empty = true;
		return 0;
	}
	return 1 + c->state % c->mode;
}

static uint32_t xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Feed chunk[0..k) as a producer near a full ring would (the invariants at
 * the top): in two feeds, the first what the cut (even chunks) or the blind
 * bound (odd chunks) lets in for a room from the PRNG at *rs. */
static int feed_fitting(struct log *l, struct mmapq_parser *p, const char *chunk, size_t k,
                        uint32_t *rnd, bool blind)
{
	static const uint64_t scale[8] = {0, 8, 16, 64, 256, 1024, 4096, 65536};
	uint64_t top = l->format == MMAPQ_FORMAT_INT ? 16 : mmapq_frame_size(l->record_size);
	uint64_t room = xorshift(rnd) % (scale[l->room_mode & 7] + 1), need, before = l->frames;
	unsigned flags = (xorshift(rnd) & 1 ? MMAPQ_CUT_WHOLE : 0) |
	                 (xorshift(rnd) % 4 == 0 ? MMAPQ_CUT_FIRST : 0);
	size_t c;
	int r;

	if (blind) {
		uint64_t bound = mmapq_parser_blind_bound(p, room, flags, &need);

		if (!bound)
			FUZZ_CHECK(need > room && need <= top, "blind bound 0 for room %" PRIu64 ", need %"
			           PRIu64, room, need);
		else
			FUZZ_CHECK(need == 0, "blind bound %" PRIu64 " and need %" PRIu64, bound, need);
		c = bound < k ? (size_t)bound : k;
	} else {
		c = mmapq_parser_cut(p, chunk, k, room, flags, &need);
		FUZZ_CHECK(c <= k, "cut %zu of %zu bytes", c, k);
		if (need)
			FUZZ_CHECK(c < k && need <= top, "cut %zu of %zu, need %" PRIu64, c, k, need);
		else if (!(flags & MMAPQ_CUT_FIRST))
			FUZZ_CHECK(c == k, "cut %zu of %zu bytes, and nothing needs room", c, k);
	}
	if (c) {
		r = mmapq_parser_feed(p, chunk, c);
		if (r < 0)
			return r;
	}
	FUZZ_CHECK(l->frames - before <= room, "%s of %zu bytes let in %zu: records of %" PRIu64
	           " ring bytes for room %" PRIu64 " (flags %u)", blind ? "a blind read" : "a cut", k, c,
	           l->frames - before, room, flags);
	/* format int counts the tokens it refuses too: its need may fit */
	if (!blind && need && l->format != MMAPQ_FORMAT_INT)
		FUZZ_CHECK(l->frames - before + need > room, "a cut of %zu bytes stopped at %zu for a"
		           " record of %" PRIu64 " that fits in room %" PRIu64, k, c, need, room);
	if (!blind && !need && c < k)
		FUZZ_CHECK(mmapq_parser_partial(p) == 0, "a first-record cut at %zu: %" PRIu64
		           " bytes of a record in progress", c, mmapq_parser_partial(p));
	return c < k ? mmapq_parser_feed(p, chunk + c, k - c) : 0;
}

/* Parse d[0..n) fed in chunks; returns the first error of feed/finish (0 if
 * none).  After an error, checks that the parser is dead. */
static int run(struct log *l, const uint8_t *d, size_t n, uint8_t mode, uint8_t seed)
{
	struct mmapq_parser *p;
	struct chunker c = {.state = 0x9e3779b9u ^ ((uint32_t)seed << 8) ^ mode, .mode = mode};
	size_t pos = 0;
	uint32_t rnd = c.state | 1;
	bool blind = false;
	int r;

	r = mmapq_parser_new(l->format, l->record_size, on_record, on_error, l, &p);
	FUZZ_CHECK(r == 0, "parser_new: %d", r);
	mmapq_parser_set_fast_path(p, !l->slow);
	if (l->batched && l->format == MMAPQ_FORMAT_INT)
		FUZZ_CHECK(mmapq_parser_set_int_batch(p, on_ints) == 0, "set_int_batch refused");
	else if (l->batched)
		FUZZ_CHECK(mmapq_parser_set_record_batch(p, on_records) == 0, "set_record_batch refused");
	while (pos < n) {
		bool empty;
		size_t k = next_chunk(&c, n - pos, &empty);

		if (k > n - pos)
			k = n - pos;
		/* a copy of exactly the chunk, so that ASan sees any read past it */
		{
			char *chunk = malloc(k ? k : 1);
			if (!chunk)
				abort();
			memcpy(chunk, d + pos, k);
			if (l->room_mode && !empty && k) {
				r = feed_fitting(l, p, chunk, k, &rnd, blind);
				blind = !blind;
			} else {
				r = mmapq_parser_feed(p, empty ? NULL : chunk, k);
			}
			free(chunk);
		}
		pos += k;
		if (r < 0)
			goto failed;
		FUZZ_CHECK(mmapq_parser_records(p) == count_kind(l, EV_RECORD),
		           "records() %" PRIu64 " after a feed, %" PRIu64 " handed over",
		           mmapq_parser_records(p), count_kind(l, EV_RECORD));
	}
	r = mmapq_parser_finish(p);
	if (r < 0)
		goto failed;
	FUZZ_CHECK(mmapq_parser_finish(p) == -EINVAL, "finish twice accepted");
	FUZZ_CHECK(mmapq_parser_feed(p, "1\n", 2) == -EINVAL, "feed after finish accepted");
	FUZZ_CHECK(mmapq_parser_records(p) == count_kind(l, EV_RECORD), "records() %" PRIu64 " vs %" PRIu64,
	           mmapq_parser_records(p), count_kind(l, EV_RECORD));
	FUZZ_CHECK(mmapq_parser_errors(p) == count_kind(l, EV_ERROR), "errors() %" PRIu64 " vs %" PRIu64,
	           mmapq_parser_errors(p), count_kind(l, EV_ERROR));
	mmapq_parser_free(p);
	return 0;
failed:
	FUZZ_CHECK(r == -ECANCELED, "feed/finish returned %d", r);
	FUZZ_CHECK(mmapq_parser_records(p) == count_kind(l, EV_RECORD), "records() after a failure");
	FUZZ_CHECK(mmapq_parser_feed(p, "1\n", 2) == -EINVAL, "feed after a failure accepted");
	FUZZ_CHECK(mmapq_parser_finish(p) == -EINVAL, "finish after a failure accepted");
	mmapq_parser_free(p);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct log whole = {0}, chunked = {0}, ref = {0}, fail = {0}, slow = {0}, batched = {0};
	const uint8_t *d;
	size_t n;
	uint32_t format, rs;
	uint8_t mode, seed;
	int r;

	if (size < 3)
		return 0;
	format = (data[0] & 16) ? MMAPQ_FORMAT_BINARY : (data[0] & 1) ? MMAPQ_FORMAT_LINE : MMAPQ_FORMAT_INT;
	rs = rs_tab[(data[0] >> 1) & 7];
	mode = data[1];
	seed = data[2];
	d = data + 3;
	n = size - 3;

	whole.format = chunked.format = ref.format = fail.format = slow.format = format;
	whole.record_size = chunked.record_size = ref.record_size = fail.record_size = rs;
	slow.record_size = rs;
	slow.slow = true;
	batched.format = format;
	batched.record_size = rs;
	batched.batched = true;
	chunked.room_mode = data[0] >> 5;

	r = run(&whole, d, n, 0, 0);
	FUZZ_CHECK(r == 0, "whole parse failed: %d", r);
	for (size_t i = 0; i < whole.n; i++)
		if (whole.ev[i].kind == EV_ERROR)
			check_error(&whole.ev[i], d, n, format);

	/* split invariance */
	r = run(&chunked, d, n, mode, seed);
	FUZZ_CHECK(r == 0, "chunked parse failed: %d", r);
	FUZZ_CHECK(chunked.n == whole.n, "chunked: %zu events, whole: %zu", chunked.n, whole.n);
	compare(&chunked, &whole, whole.n, true, "chunked vs whole");

	/* the fast path changes nothing: byte by byte (int), the baseline
	 * scan for line ends (line), chunked as above */
	if (format != MMAPQ_FORMAT_BINARY) {
		r = run(&slow, d, n, mode, seed);
		FUZZ_CHECK(r == 0, "parse without the fast path failed: %d", r);
		FUZZ_CHECK(slow.n == whole.n, "without the fast path: %zu events, with it: %zu", slow.n,
		           whole.n);
		compare(&slow, &whole, whole.n, true, "fast path off vs on");
	}
	r = run(&batched, d, n, mode, seed);
	FUZZ_CHECK(r == 0, "batched parse failed: %d", r);
	FUZZ_CHECK(batched.n == whole.n, "batched: %zu events, one by one: %zu", batched.n, whole.n);
	compare(&batched, &whole, whole.n, true, "batched vs one by one");

	/* the documented semantics */
	if (format == MMAPQ_FORMAT_INT)
		ref_int(&ref, d, n);
	else if (format == MMAPQ_FORMAT_LINE)
		ref_line(&ref, d, n);
	else
		ref_binary(&ref, d, n);
	FUZZ_CHECK(ref.n == whole.n, "reference: %zu events, parser: %zu", ref.n, whole.n);
	compare(&ref, &whole, whole.n, false, "reference vs parser");

	/* a failing consumer of records */
	if (seed >= 1 && seed <= 31) {
		uint64_t nrec = count_kind(&whole, EV_RECORD);
		fail.fail_at = seed;
		r = run(&fail, d, n, mode == 0 ? 1 : mode, seed);
		FUZZ_CHECK(r == (seed <= nrec ? -ECANCELED : 0), "on_record failure: got %d", r);
		if (r < 0) {
			FUZZ_CHECK(count_kind(&fail, EV_RECORD) == (uint64_t)seed - 1, "records before the failure");
			FUZZ_CHECK(fail.n <= whole.n, "more events before the failure than in all");
			compare(&fail, &whole, fail.n, true, "failing vs whole");
			/* the next event of the whole run is the record that failed */
			FUZZ_CHECK(whole.ev[fail.n].kind == EV_RECORD, "stopped before a non-record");
		}
	}
	log_free(&whole);
	log_free(&chunked);
	log_free(&ref);
	log_free(&fail);
	log_free(&slow);
	log_free(&batched);
	return 0;
}
