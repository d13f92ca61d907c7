/* SPDX-License-Identifier: MIT */
/*
 * test_checksum -- a record whose frame is damaged is never handed out.
 *
 * Every frame carries a CRC-32C of its byte position, length and payload
 * (mmapq_format.h, "Checksums").  The cases take a valid queue
 * whose records [3, 9) lie across the ring's end, one after a padding
 * frame, flip one byte of the published ring (every byte of every frame,
 * with three patterns), and read:
 *   get        a consumer attached before the damage: mmapq_get of every
 *              record; those before the damaged one are exactly what was
 *              put, the damaged one and those after it -EBADMSG (the frames
 *              are found by walking, and a damaged one says nothing of
 *              where the next is)
 *   get_many   the same through mmapq_get_many: the records before it, then
 *              -EBADMSG at it
 *   copy_many  an int queue, mmapq_copy_many: the values before it, then
 *              -EBADMSG
 *   peek       an observer opened after the damage: mmapq_peek of every
 *              record is -EBADMSG at the damaged one, and elsewhere the
 *              right record or -EBADMSG, never another
 * A byte a frame's checksum does not cover (the zeros that align a payload
 * to 8, the unused end of the ring after a padding frame's header) leaves
 * every record readable and right.
 *   any_machine  get, get_many and copy_many again on the instance of the
 *              library's hot paths that machines without SSE4.2 run (each
 *              loop is compiled twice, ring.c), picked here by hand
 *   crc32c     every frame's crc is the CRC-32C of (its byte position,
 *              len, payload) as an independent bitwise CRC-32C computes it
 *              (a padding frame's: its own byte position and 0xffffffff),
 *              and the library's CRC-32C gives the standard check values.
 *   fill_get, fill_get_many, fill_peek
 *              get, get_many and peek again on a base with fill frames
 *              (before the first record, around the padding, between
 *              records, after the last up to tail_byte): every record read
 *              across them; a byte of a fill's header damages the record
 *              after it, the bytes it fills are covered by nothing
 *   fill_bad   fill frames the format does not allow, with the crcs their
 *              headers would have (a length not a multiple of 8, across the
 *              ring's end, past the tail): the record after one is never
 *              handed out, those before it are
 *   fill_copy_many  an int queue with fill frames between records:
 *              copy_many's loop for 16-byte frames leaves at a fill and
 *              goes on after it; a damaged fill stops it there
 *   put_runs   the frames mmapq_put_many and mmapq_put_records write, a
 *              run of 1 to 11 records per call (the producer's loops
 *              take short records four at a time, the checksums side by
 *              side: every position in a group, groups and the records
 *              after them), of lengths 0 to 100 and mixed ones, one of
 *              them long: each crc as the bitwise CRC-32C computes it,
 *              on both instances of the loops
 *   run_flips  a run of 22 records put by one mmapq_put_many (of 8, 13
 *              and 64 bytes), a byte of record j's frame damaged (its
 *              len, crc, first and last payload byte), for every j:
 *              get_many and copy_many of the whole run hand out exactly
 *              the j before it, get of it is -EBADMSG; on both instances
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define RING 256u
#define MAXREC 56u
#define FIRST 3u /* the oldest record kept */
#define N 6u     /* records kept: FIRST .. FIRST + N */

static char *g_dir, *g_base, *g_case;
static uint8_t *g_bytes;  /* the base the flips start from: g_plain or g_filled */
static uint8_t *g_plain, *g_filled;
static bool g_fills;      /* the base with fill frames (fill_plan) */
static size_t g_len;

#define EXPECT(cond, ...) TU_EXPECT(g_case, cond, __VA_ARGS__)
#define EXPECT_INT(a, b) TU_EXPECT_INT(g_case, a, b)

/* The records kept: their lengths (the layout below depends on them). */
static const uint32_t lens[N] = {20, 40, 0, 9, 56, 8};

/* Where each kept record's frame is (a byte position), and the padding
 * frame before record FIRST + 1 (40 bytes do not fit the 32 left); in the
 * base with fills, the fill frames too (fill[k] before record
 * fill_next[k], N: after the last), and where the frames end (tail_byte). */
struct layout {
	uint64_t at[N], pad, end;
	uint64_t fill[8];
	uint32_t fill_n[8], fill_next[8], nfill;
};

/* The base with fills, frame by frame from floor (192): a fill of n bytes
 * after its header (n >= 0), a record (REC), the padding (PAD): fills
 * before the first record, before and after the padding, between records
 * and after the last, up to a tail_byte a ring from floor. */
#define REC (-1)
#define PAD (-2)
static const int fill_plan[] = {0, REC, 0, PAD, 8, REC, REC, 0, REC, REC, REC, 0};

static uint8_t pbyte(uint64_t seq, uint32_t i)
{
	return (uint8_t)(seq * 37 + i * 11 + 5);
}

static struct mmapq *open_as(const char *path, enum mmapq_role role, uint64_t size, uint32_t max,
                             uint32_t format)
{
	struct mmapq_params p = {.path = path, .role = role, .size = size, .max_record = max,
	                         .format = format, .file_mode = 0600};
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &e);

	EXPECT(r == 0, "open %s: %s", path, e.msg);
	return q;
}

static void put(struct mmapq *p, uint64_t seq, uint32_t len)
{
	uint8_t b[MAXREC];

	for (uint32_t i = 0; i < len; i++)
		b[i] = pbyte(seq, i);
	EXPECT_INT(mmapq_put(p, b, len), 0);
}

static uint8_t *filled_base(void);

/* The base: three records of 56 bytes consumed (floor at byte 192), then
 * the six kept, the second after a padding frame at 224. */
static void setup(void)
{
	struct mmapq *p, *c;
	uint32_t n;

	g_dir = tu_mkdtemp("checksum");
	g_base = tu_path(g_dir, "base.q");
	g_case = tu_path(g_dir, "case.q");
	p = open_as(g_base, MMAPQ_ROLE_PRODUCER, RING, MAXREC, MMAPQ_FORMAT_BINARY);
	c = open_as(g_base, MMAPQ_ROLE_CONSUMER, RING, MAXREC, MMAPQ_FORMAT_BINARY);
	for (uint64_t s = 0; s < FIRST; s++)
		put(p, s, 56);
	EXPECT_INT(mmapq_publish(p), FIRST);
	EXPECT(mmapq_available(c, 0, &n) == 0 && n == FIRST && mmapq_release(c, FIRST) == 0,
	       "consume the first three");
	for (uint64_t i = 0; i < N; i++)
		put(p, FIRST + i, lens[i]);
	EXPECT_INT(mmapq_publish(p), N);
	mmapq_close(c);
	mmapq_close(p);
	g_plain = g_bytes = (uint8_t *)tu_read_file(g_base, &g_len);
	EXPECT(g_bytes && g_len == MMAPQ_HEADER_SIZE + RING, "read %s", g_base);
	g_filled = filled_base();
}

static struct layout layout(void)
{
	struct layout l = {.pad = 224};
	uint64_t b = 192;

	if (g_fills) {
		uint32_t i = 0;

		for (size_t k = 0; k < sizeof(fill_plan) / sizeof(fill_plan[0]); k++) {
			if (fill_plan[k] == REC) {
				l.at[i] = b;
				b += mmapq_frame_size(lens[i++]);
			} else if (fill_plan[k] == PAD) {
				l.pad = b;
				b += RING - b % RING;
			} else {
				l.fill[l.nfill] = b;
				l.fill_n[l.nfill] = (uint32_t)fill_plan[k];
				l.fill_next[l.nfill++] = i;
				b += 8 + (uint64_t)fill_plan[k];
			}
		}
		l.end = b;
		return l;
	}
	for (uint32_t i = 0; i < N; i++) {
		uint64_t fb = mmapq_frame_size(lens[i]);

		if (RING - b % RING < fb)
			b += RING - b % RING; /* the padding frame takes the rest */
		l.at[i] = b;
		b += fb;
	}
	l.end = b;
	return l;
}

/* The base with fills (fill_plan): the base's header and records, their
 * frames where the plan puts them, each crc over its byte position, and
 * tail_byte where the last fill ends; floor and the consumer's cursor stay
 * at 192, now a fill frame before record FIRST. */
static uint8_t *filled_base(void)
{
	uint8_t *b = malloc(g_len), *ring = b + MMAPQ_HEADER_SIZE;
	struct layout l;
	uint64_t tail_byte;

	g_fills = true;
	l = layout();
	g_fills = false;
	EXPECT(b != NULL, "malloc");
	memcpy(b, g_plain, g_len);
	memset(ring, 0, RING);
	for (uint32_t i = 0; i < N; i++) {
		uint8_t *fr = ring + l.at[i] % RING;
		uint32_t crc;

		for (uint32_t j = 0; j < lens[i]; j++)
			fr[8 + j] = pbyte(FIRST + i, j);
		crc = mmapq_crc32c_frame(l.at[i], lens[i], fr + 8, lens[i]);
		memcpy(fr, &lens[i], 4);
		memcpy(fr + 4, &crc, 4);
	}
	for (uint32_t k = 0; k <= l.nfill; k++) {
		uint64_t at = k < l.nfill ? l.fill[k] : l.pad;
		uint32_t len = k < l.nfill ? MMAPQ_FRAME_FILL_BIT | l.fill_n[k] : MMAPQ_FRAME_PAD, crc;

		crc = mmapq_crc32c_frame(at, len, NULL, 0);
		memcpy(ring + at % RING, &len, 4);
		memcpy(ring + at % RING + 4, &crc, 4);
	}
	tail_byte = l.end;
	memcpy(b + offsetof(struct mmapq_header, producer.tail_byte), &tail_byte, 8);
	memcpy(b + offsetof(struct mmapq_header, producer.claim_byte), &tail_byte, 8);
	return b;
}

/* Which record a damaged ring byte (a byte position in [192, 448)) makes
 * unreadable: its index, or N if the checksums do not cover it. */
static uint32_t damaged(const struct layout *l, uint64_t pos)
{
	if (pos >= l->pad && pos < l->pad + 8)
		return 1; /* the padding frame's header: the record after it */
	for (uint32_t k = 0; k < l->nfill; k++)
		if (pos >= l->fill[k] && pos < l->fill[k] + 8)
			return l->fill_next[k]; /* a fill's header: the record after it */
	for (uint32_t i = 0; i < N; i++)
		if (pos >= l->at[i] && pos < l->at[i] + 8 + lens[i])
			return i;
	return N; /* alignment, or the rest of the ring after the padding frame's header */
}

/* Ring byte pos of the file at path (as the base has it) xor'ed with x,
 * in place: under a handle that has it mapped. */
static void flip_in_place(const char *path, const uint8_t *bytes, uint64_t pos, uint8_t x)
{
	uint8_t b = bytes[MMAPQ_HEADER_SIZE + pos % RING] ^ x;
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	EXPECT(fd >= 0 && pwrite(fd, &b, 1, (off_t)(MMAPQ_HEADER_SIZE + pos % RING)) == 1,
	       "flip a byte of %s", path);
	close(fd);
}

/* The case file: a fresh copy of the base. */
static void write_base(void)
{
	unlink(g_case);
	EXPECT(tu_write_file(g_case, g_bytes, g_len) == 0, "write %s", g_case);
}

/* A consumer attached to a fresh copy of the base, then ring byte pos
 * xor'ed with x under it (a consumer attaching to a file whose frame at its
 * cursor is damaged would walk it first: test_salvage). */
static struct mmapq *consumer_then_flip(uint64_t pos, uint8_t x)
{
	struct mmapq *c;
	uint32_t n;

	write_base();
	c = open_as(g_case, MMAPQ_ROLE_CONSUMER, RING, MAXREC, MMAPQ_FORMAT_BINARY);
	flip_in_place(g_case, g_bytes, pos, x);
	EXPECT(mmapq_available(c, 0, &n) == 0 && n == N, "available %u", n);
	return c;
}

static void check_rec(const struct mmapq_record *r, uint64_t seq, const char *how, uint64_t pos)
{
	EXPECT(r->seq == seq && r->len == lens[seq - FIRST], "%s, byte %" PRIu64 " flipped: record %"
	       PRIu64 " came back as seq %" PRIu64 " len %u", how, pos, seq, r->seq, r->len);
	for (uint32_t i = 0; i < r->len; i++)
		EXPECT(((const uint8_t *)r->data)[i] == pbyte(seq, i), "%s, byte %" PRIu64 " flipped:"
		       " record %" PRIu64 " handed out with payload byte %u wrong", how, pos, seq, i);
}

static const uint8_t patterns[] = {0x01, 0x80, 0xff};

/* Each byte of the published ring flipped (each pattern): fn(pos, the
 * record it damages). */
static void each_flip(void (*fn)(uint64_t pos, uint8_t x, uint32_t d, const struct layout *l))
{
	struct layout l = layout();
	unsigned covered = 0, not = 0;

	for (uint64_t pos = 192; pos < l.end; pos++) {
		uint32_t d = damaged(&l, pos);

		covered += d < N;
		not += d == N;
		for (size_t k = 0; k < sizeof(patterns); k++)
			fn(pos, patterns[k], d, &l);
	}
	EXPECT(covered > 150 && not > 20, "%u bytes covered, %u not: the layout is not the one meant",
	       covered, not);
}

static void flip_get(uint64_t pos, uint8_t x, uint32_t d, const struct layout *l)
{
	struct mmapq *c = consumer_then_flip(pos, x);

	(void)l;
	for (uint32_t i = 0; i < N; i++) {
		struct mmapq_record r;
		int rc = mmapq_get(c, i, &r);

		if (i < d)
			EXPECT(rc == 0, "get(%u), byte %" PRIu64 " ^ 0x%02x (record %u damaged): %s", i, pos,
			       x, d, mmapq_strerror(rc));
		else
			EXPECT(rc == -EBADMSG, "get(%u), byte %" PRIu64 " ^ 0x%02x of record %u: %d (%s),"
			       " want -EBADMSG", i, pos, x, d, rc, mmapq_strerror(rc));
		if (rc == 0)
			check_rec(&r, FIRST + i, "get", pos);
	}
	mmapq_close(c);
}

static void case_get(void)
{
	each_flip(flip_get);
}

static void flip_get_many(uint64_t pos, uint8_t x, uint32_t d, const struct layout *l)
{
	struct mmapq_record r[N];
	struct mmapq *c = consumer_then_flip(pos, x);
	int rc;

	(void)l;
	rc = mmapq_get_many(c, 0, N, r);
	EXPECT(rc == (d ? (int)d : -EBADMSG), "get_many, byte %" PRIu64 " ^ 0x%02x of record %u: %d,"
	       " want %d", pos, x, d, rc, d ? (int)d : -EBADMSG);
	for (int i = 0; i < rc; i++)
		check_rec(&r[i], FIRST + (uint64_t)i, "get_many", pos);
	if (d < N)
		EXPECT_INT(mmapq_get_many(c, d, N, r), -EBADMSG);
	mmapq_close(c);
}

static void case_get_many(void)
{
	each_flip(flip_get_many);
}

static void flip_peek(uint64_t pos, uint8_t x, uint32_t d, const struct layout *l)
{
	struct mmapq_params p = {.path = g_case, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_error e;
	struct mmapq *o;
	uint8_t buf[MAXREC];

	(void)l;
	write_base();
	flip_in_place(g_case, g_bytes, pos, x);
	EXPECT(mmapq_open(&p, &o, &e) == 0, "observer: %s", e.msg);
	/* in order, then backwards (each a walk from floor) */
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t k = 0; k < N; k++) {
			uint32_t i = pass ? N - 1 - k : k;
			struct mmapq_record r;
			int rc = mmapq_peek(o, FIRST + i, buf, sizeof(buf), &r);

			if (i == d || (i > d && rc != 0))
				EXPECT(rc == -EBADMSG, "peek(%" PRIu64 "), byte %" PRIu64 " ^ 0x%02x of record"
				       " %u: %d (%s), want -EBADMSG", FIRST + (uint64_t)i, pos, x, d, rc,
				       mmapq_strerror(rc));
			else
				EXPECT(rc == 0, "peek(%" PRIu64 "), byte %" PRIu64 " ^ 0x%02x (record %u"
				       " damaged): %s", FIRST + (uint64_t)i, pos, x, d, mmapq_strerror(rc));
			if (rc == 0)
				check_rec(&r, FIRST + i, "peek", pos);
		}
	mmapq_close(o);
}

static void case_peek(void)
{
	each_flip(flip_peek);
}

/* An int queue of 128 bytes at path: records 0..4 put and consumed, then
 * 5..upto - 1 put; the file's bytes (*len). */
static uint8_t *int_queue(const char *path, int64_t upto, size_t *len)
{
	struct mmapq *p, *c;
	uint8_t *bytes;
	uint32_t n;

	p = open_as(path, MMAPQ_ROLE_PRODUCER, 128, 8, MMAPQ_FORMAT_INT);
	c = open_as(path, MMAPQ_ROLE_CONSUMER, 128, 8, MMAPQ_FORMAT_INT);
	for (int64_t v = 0; v < 5; v++)
		EXPECT_INT(mmapq_put(p, &v, 8), 0);
	EXPECT_INT(mmapq_publish(p), 5);
	EXPECT(mmapq_available(c, 0, &n) == 0 && mmapq_release(c, 5) == 0, "consume five");
	for (int64_t v = 5; v < upto; v++)
		EXPECT_INT(mmapq_put(p, &v, 8), 0);
	EXPECT_INT(mmapq_publish(p), (int)(upto - 5));
	mmapq_close(c);
	mmapq_close(p);
	bytes = (uint8_t *)tu_read_file(path, len);
	EXPECT(bytes && *len == MMAPQ_HEADER_SIZE + 128, "read %s", path);
	return bytes;
}

/* An int queue of 128 bytes, records 5..12 (12 at ring offsets 64..): each
 * byte of each frame flipped, copy_many from 0. */
static void case_copy_many(void)
{
	char *path = tu_path(g_dir, "int.q");
	struct mmapq *c;
	uint8_t *bytes;
	size_t len;
	uint32_t n;

	bytes = int_queue(path, 13, &len);
	for (uint32_t pos = 0; pos < 128; pos++) {
		uint32_t d = ((pos + 128 - 80) % 128) / 16; /* record 5 at byte 80 */

		for (size_t k = 0; k < sizeof(patterns); k++) {
			int64_t out[8];
			int rc;

			unlink(g_case);
			EXPECT(tu_write_file(g_case, bytes, len) == 0, "write");
			c = open_as(g_case, MMAPQ_ROLE_CONSUMER, 128, 8, MMAPQ_FORMAT_INT);
			flip_in_place(g_case, bytes, pos, patterns[k]);
			EXPECT(mmapq_available(c, 0, &n) == 0 && n == 8, "available %u", n);
			rc = mmapq_copy_many(c, 0, 8, out, 8);
			EXPECT(rc == (d ? (int)d : -EBADMSG), "copy_many, byte %u ^ 0x%02x of record %u:"
			       " %d, want %d", pos, patterns[k], d + 5, rc, d ? (int)d : -EBADMSG);
			for (int i = 0; i < rc; i++)
				EXPECT_INT(out[i], 5 + i);
			mmapq_close(c);
		}
	}
	free(bytes);
	free(path);
}

/* The flips again on the base with fill frames (fill_plan): a byte of a
 * fill's header damages the record after it (none, the last fill), a byte
 * of what it fills is covered by nothing. */
static void with_fills(void (*fn)(void))
{
	g_fills = true;
	g_bytes = g_filled;
	fn();
	g_bytes = g_plain;
	g_fills = false;
}

static void case_fill_get(void)
{
	with_fills(case_get);
}

static void case_fill_get_many(void)
{
	with_fills(case_get_many);
}

static void case_fill_peek(void)
{
	with_fills(case_peek);
}

/* The case file is the base with fills, but the frame at pos has len
 * (its crc right for it): records [0, d) read, the others -EBADMSG, for a
 * consumer and an observer. */
static void bad_fill(uint64_t pos, uint32_t len, uint32_t d, const char *what)
{
	uint8_t *b = malloc(g_len);
	uint32_t crc = mmapq_crc32c_frame(pos, len, NULL, 0);
	struct mmapq_params op = {.path = g_case, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_error e;
	struct mmapq *c, *o;
	uint8_t buf[MAXREC];
	uint32_t n;

	EXPECT(b != NULL, "malloc");
	memcpy(b, g_filled, g_len);
	memcpy(b + MMAPQ_HEADER_SIZE + pos % RING, &len, 4);
	memcpy(b + MMAPQ_HEADER_SIZE + pos % RING + 4, &crc, 4);
	unlink(g_case);
	EXPECT(tu_write_file(g_case, b, g_len) == 0, "write %s", g_case);
	c = open_as(g_case, MMAPQ_ROLE_CONSUMER, RING, MAXREC, MMAPQ_FORMAT_BINARY);
	EXPECT(mmapq_available(c, 0, &n) == 0 && n == N, "%s: available %u", what, n);
	EXPECT(mmapq_open(&op, &o, &e) == 0, "observer: %s", e.msg);
	for (uint32_t i = 0; i < N; i++) {
		struct mmapq_record r;
		int rg = mmapq_get(c, i, &r), rp;

		EXPECT(rg == (i < d ? 0 : -EBADMSG), "%s: get(%u) %d, want %d", what, i, rg,
		       i < d ? 0 : -EBADMSG);
		if (rg == 0)
			check_rec(&r, FIRST + i, what, pos);
		rp = mmapq_peek(o, FIRST + i, buf, sizeof(buf), &r);
		EXPECT(rp == (i < d ? 0 : -EBADMSG), "%s: peek(%u) %d, want %d", what, i, rp,
		       i < d ? 0 : -EBADMSG);
	}
	mmapq_close(o);
	mmapq_close(c);
	free(b);
}

/* Fill frames that are not what the format allows, each with the crc its
 * header would have: the record after it is never handed out. */
static void case_fill_bad(void)
{
	struct layout l;

	g_fills = true;
	l = layout();
	g_fills = false;
	/* n not a multiple of 8 (the fill before record FIRST + 1, after
	 * the padding) */
	bad_fill(l.fill[2], MMAPQ_FRAME_FILL_BIT | 12, 1, "fill of 12 bytes");
	/* past the ring's end: the fill before the padding, 24 bytes long */
	bad_fill(l.fill[1], MMAPQ_FRAME_FILL_BIT | 24, 1, "fill across the ring's end");
	/* past tail_byte: the fill before record FIRST + 3 reaching over the
	 * rest */
	bad_fill(l.fill[3], MMAPQ_FRAME_FILL_BIT | (uint32_t)(l.end - l.fill[3]), 3,
	         "fill past the tail");
	/* the one that ends the frames, at tail_byte: never read */
	bad_fill(l.fill[4], MMAPQ_FRAME_FILL_BIT | 8, N, "the last fill, too long");
}

/* An int queue of 128 bytes, records 5..10 with fill frames between them
 * (before the first, before the ring's end, between two): copy_many's
 * loop for 16-byte frames leaves at a fill and goes on after it; each byte
 * of a fill's header flipped stops it at the record after that fill. */
static void case_fill_copy_many(void)
{
	/* frame by frame from floor at 80: 0..: a fill of n bytes, REC */
	static const int plan[] = {0, REC, REC, 0, REC, 8, REC, REC, REC};
	char *path = tu_path(g_dir, "int-fills.q");
	uint64_t fills[4], nexts[4], b = 80, tail_byte;
	struct mmapq *c;
	uint8_t *bytes;
	size_t len;
	uint32_t n, nf = 0, rec = 0;

	bytes = int_queue(path, 11, &len);
	memset(bytes + MMAPQ_HEADER_SIZE, 0, 128);
	for (size_t k = 0; k < sizeof(plan) / sizeof(plan[0]); k++) {
		uint8_t *fr = bytes + MMAPQ_HEADER_SIZE + b % 128;
		uint32_t l = plan[k] == REC ? 8 : MMAPQ_FRAME_FILL_BIT | (uint32_t)plan[k], crc;
		int64_t v = 5 + rec;

		if (plan[k] == REC)
			memcpy(fr + 8, &v, 8);
		else
			fills[nf] = b, nexts[nf++] = rec;
		crc = mmapq_crc32c_frame(b, l, plan[k] == REC ? fr + 8 : NULL, plan[k] == REC ? 8 : 0);
		memcpy(fr, &l, 4);
		memcpy(fr + 4, &crc, 4);
		b += plan[k] == REC ? 16 : 8 + (uint64_t)plan[k];
		rec += plan[k] == REC;
	}
	tail_byte = b;
	memcpy(bytes + offsetof(struct mmapq_header, producer.tail_byte), &tail_byte, 8);
	memcpy(bytes + offsetof(struct mmapq_header, producer.claim_byte), &tail_byte, 8);
	for (uint32_t k = 0; k <= nf; k++)
		for (uint32_t at = 0; at < (k < nf ? 8u : 1u); at++) {
			uint32_t want = k < nf ? (uint32_t)nexts[k] : 6;
			int64_t out[6];
			int rc;

			unlink(g_case);
			EXPECT(tu_write_file(g_case, bytes, len) == 0, "write");
			c = open_as(g_case, MMAPQ_ROLE_CONSUMER, 128, 8, MMAPQ_FORMAT_INT);
			if (k < nf)
				flip_in_place(g_case, bytes, (fills[k] + at) % 128, 0x01);
			EXPECT(mmapq_available(c, 0, &n) == 0 && n == 6, "available %u", n);
			rc = mmapq_copy_many(c, 0, 6, out, 8);
			EXPECT(rc == (want ? (int)want : -EBADMSG), "copy_many, fill %u byte %u flipped: %d,"
			       " want %u", k, at, rc, want);
			for (int i = 0; i < rc; i++)
				EXPECT_INT(out[i], 5 + i);
			mmapq_close(c);
		}
	free(bytes);
	free(path);
}

/* mmapq_crc32c_hw (crc32c.h) picks the instance of ring.c's loops once per
 * call: false, every call takes the one without the crc32 instruction.  The
 * switch is internal to the library: the shared libmmapq hides it, the
 * static fault-injection variant links it in. */
static void case_any_machine(void)
{
#ifdef MMAPQ_FAULT_INJECTION
	bool hw = mmapq_crc32c_hw;

	mmapq_crc32c_hw = false;
	case_get();
	case_get_many();
	case_copy_many();
	case_fill_get();
	case_fill_copy_many();
	mmapq_crc32c_hw = hw;
#else
	tu_skip("needs a build with -DMMAPQ_FAULT_INJECTION=ON (the shared libmmapq hides the switch)");
#endif
}

/* CRC-32C, bit by bit (Castagnoli, reflected polynomial 0x82f63b78): an
 * implementation that shares nothing with the library's. */
static uint32_t crc_bits(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

static uint32_t frame_crc_bits(uint64_t byte, uint32_t len, const uint8_t *payload, uint32_t n)
{
	uint8_t h[12];

	memcpy(h, &byte, 8);
	memcpy(h + 8, &len, 4);
	return crc_bits(crc_bits(0, h, 12), payload, n);
}

static void case_crc32c(void)
{
	static const char check[] = "123456789";
	struct layout l = layout();
	uint8_t big[1000];
	struct mmapq_frame f;

	/* the standard check value, and the library's agrees on pieces of
	 * every length and alignment */
	EXPECT_INT(crc_bits(0, (const uint8_t *)check, 9), 0xe3069283u);
	EXPECT_INT(mmapq_crc32c(0, check, 9), 0xe3069283u);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 3);
	for (size_t off = 0; off < 9; off++)
		for (size_t n = 0; n < 300; n++)
			EXPECT(mmapq_crc32c(0, big + off, n) == crc_bits(0, big + off, n) &&
			       mmapq_crc32c(mmapq_crc32c(0, big, off), big + off, n) == crc_bits(0, big, off + n),
			       "CRC-32C of %zu bytes at offset %zu", n, off);
	/* every frame of the base as the format says */
	for (uint32_t i = 0; i < N; i++) {
		const uint8_t *fr = g_bytes + MMAPQ_HEADER_SIZE + l.at[i] % RING;

		memcpy(&f, fr, sizeof(f));
		EXPECT_INT(f.len, lens[i]);
		EXPECT_INT(f.crc, frame_crc_bits(l.at[i], lens[i], fr + 8, lens[i]));
	}
	memcpy(&f, g_bytes + MMAPQ_HEADER_SIZE + l.pad, sizeof(f));
	EXPECT_INT(f.len, MMAPQ_FRAME_PAD);
	EXPECT_INT(f.crc, frame_crc_bits(l.pad, MMAPQ_FRAME_PAD, NULL, 0));
}

/* Runs each case of fn on the SSE 4.2 instance of ring.c's loops (where
 * the machine has it) and on the one for any machine (where the build
 * lets the test pick it: case_any_machine). */
static void both_instances(void (*fn)(const char *instance))
{
#ifdef MMAPQ_FAULT_INJECTION
	bool hw = mmapq_crc32c_hw;

	fn(hw ? "sse4.2" : "any machine");
	if (hw) {
		mmapq_crc32c_hw = false;
		fn("any machine");
		mmapq_crc32c_hw = hw;
	}
#else
	fn("this machine's instance");
#endif
}

/* The frames of a fresh queue's file at path from byte 0, n records of
 * lens[i] bytes, record i's payload byte j pbyte(i, j): each len, crc (as
 * crc_bits computes it) and payload as put. */
static void check_frames(const char *path, uint64_t size, const uint32_t *lens_, uint32_t n,
                         const char *how)
{
	size_t flen;
	uint8_t *file = (uint8_t *)tu_read_file(path, &flen);
	uint64_t b = 0;

	EXPECT(file && flen == MMAPQ_HEADER_SIZE + size, "read %s", path);
	for (uint32_t i = 0; i < n && file; i++) {
		const uint8_t *fr = file + MMAPQ_HEADER_SIZE + b;
		struct mmapq_frame f;

		memcpy(&f, fr, sizeof(f));
		EXPECT(f.len == lens_[i] && f.crc == frame_crc_bits(b, lens_[i], fr + 8, lens_[i]),
		       "%s: record %u of %u (%u bytes) at byte %" PRIu64 ": len %u crc 0x%08x, want"
		       " 0x%08x", how, i, n, lens_[i], b, f.len, f.crc,
		       frame_crc_bits(b, lens_[i], fr + 8, lens_[i]));
		for (uint32_t j = 0; j < lens_[i]; j++)
			EXPECT(fr[8 + j] == pbyte(i, j), "%s: record %u payload byte %u", how, i, j);
		b += mmapq_frame_size(lens_[i]);
	}
	free(file);
}

#define RUN_RING 16384u
#define RUN_MAX 1000u
#define RUN_MOST 11u

static void put_runs_on(const char *instance)
{
	/* around MMAPQ_CRC32C_LONG_MIN (128): below it grouped, from it on one
	 * at a time, folded */
	static const uint32_t same[] = {0, 1, 2, 4, 7, 8, 9, 15, 16, 20, 40, 64, 100, 127, 128, 129, 300};
	/* mixed: every length mod 8, and one long (the group that holds it
	 * is put one by one) */
	static const uint32_t mixed[RUN_MOST] = {3, 8, 0, 17, 64, 9, 800, 5, 16, 1, 30};
	static uint8_t data[RUN_MOST][RUN_MAX];
	struct mmapq_iovec iov[RUN_MOST];
	uint32_t lens_[RUN_MOST];
	char how[128], what[16];

	for (size_t s = 0; s <= sizeof(same) / sizeof(same[0]); s++)
		for (uint32_t n = 1; n <= RUN_MOST; n++)
			for (int records = 0; records < 2; records++) {
				bool mix = s == sizeof(same) / sizeof(same[0]);
				struct mmapq *p;

				if (mix && !records)
					continue; /* put_many's records are of one length */
				for (uint32_t i = 0; i < n; i++) {
					lens_[i] = mix ? mixed[i] : same[s];
					for (uint32_t j = 0; j < lens_[i]; j++)
						data[i][j] = pbyte(i, j);
					iov[i] = (struct mmapq_iovec){.data = data[i], .len = lens_[i]};
				}
				if (mix)
					snprintf(what, sizeof(what), "mixed");
				else
					snprintf(what, sizeof(what), "%u", same[s]);
				snprintf(how, sizeof(how), "%s, %s of %u records of %s bytes", instance,
				         records ? "put_records" : "put_many", n, what);
				unlink(g_case);
				p = open_as(g_case, MMAPQ_ROLE_PRODUCER, RUN_RING, RUN_MAX, MMAPQ_FORMAT_BINARY);
				if (records) {
					EXPECT_INT(mmapq_put_records(p, iov, n), (int)n);
				} else {
					static uint8_t flat[RUN_MOST * RUN_MAX];

					for (uint32_t i = 0; i < n; i++)
						memcpy(flat + (size_t)i * same[s], data[i], same[s]);
					EXPECT_INT(mmapq_put_many(p, flat, same[s], n), (int)n);
				}
				EXPECT_INT(mmapq_publish(p), (int)n);
				mmapq_close(p);
				check_frames(g_case, RUN_RING, lens_, n, how);
			}
}

static void case_put_runs(void)
{
	both_instances(put_runs_on);
}

#define FLIP_RING 2048u
#define FLIP_RUN 22u

/* A fresh queue at g_case with FLIP_RUN records of len, put by one
 * mmapq_put_many (record i's payload byte j pbyte(i, j)); its bytes
 * (*flen). */
static uint8_t *run_queue(uint32_t len, size_t *flen)
{
	uint8_t flat[FLIP_RUN * 64];
	struct mmapq *p;
	uint8_t *bytes;

	for (uint32_t i = 0; i < FLIP_RUN; i++)
		for (uint32_t j = 0; j < len; j++)
			flat[(size_t)i * len + j] = pbyte(i, j);
	unlink(g_case);
	p = open_as(g_case, MMAPQ_ROLE_PRODUCER, FLIP_RING, 64, MMAPQ_FORMAT_BINARY);
	EXPECT_INT(mmapq_put_many(p, flat, len, FLIP_RUN), (int)FLIP_RUN);
	EXPECT_INT(mmapq_publish(p), (int)FLIP_RUN);
	mmapq_close(p);
	bytes = (uint8_t *)tu_read_file(g_case, flen);
	EXPECT(bytes && *flen == MMAPQ_HEADER_SIZE + FLIP_RING, "read %s", g_case);
	return bytes;
}

static void run_flips_on(const char *instance)
{
	static const uint32_t flens[] = {8, 13, 64};

	for (size_t li = 0; li < sizeof(flens) / sizeof(flens[0]); li++) {
		uint32_t len = flens[li];
		uint64_t fb = mmapq_frame_size(len);
		size_t flen;
		uint8_t *bytes = run_queue(len, &flen);
		/* in frame j: its len, its crc, its first and last payload byte */
		const uint64_t where[] = {0, 4, 8, 8 + len - 1};

		for (uint32_t j = 0; j < FLIP_RUN && bytes; j++)
			for (size_t w = 0; w < sizeof(where) / sizeof(where[0]); w++) {
				uint64_t pos = j * fb + where[w];
				struct mmapq_record r[FLIP_RUN];
				uint8_t out[FLIP_RUN * 64];
				struct mmapq *c;
				uint32_t n;
				int rc;

				unlink(g_case);
				EXPECT(tu_write_file(g_case, bytes, flen) == 0, "write %s", g_case);
				c = open_as(g_case, MMAPQ_ROLE_CONSUMER, FLIP_RING, 64, MMAPQ_FORMAT_BINARY);
				EXPECT(mmapq_available(c, 0, &n) == 0 && n == FLIP_RUN, "available %u", n);
				{
					uint8_t x = bytes[MMAPQ_HEADER_SIZE + pos] ^ 0x01;
					int fd = open(g_case, O_WRONLY | O_CLOEXEC);

					EXPECT(fd >= 0 && pwrite(fd, &x, 1, (off_t)(MMAPQ_HEADER_SIZE + pos)) == 1,
					       "flip byte %" PRIu64, pos);
					close(fd);
				}
				rc = mmapq_copy_many(c, 0, FLIP_RUN, out, len);
				EXPECT(rc == (j ? (int)j : -EBADMSG), "%s, %u-byte records, byte %" PRIu64
				       " of record %u flipped: copy_many %d, want %d", instance, len, pos, j, rc,
				       j ? (int)j : -EBADMSG);
				for (int i = 0; i < rc; i++)
					for (uint32_t k = 0; k < len; k++)
						EXPECT(out[(size_t)i * len + k] == pbyte((uint64_t)i, k),
						       "%s: copy_many record %d byte %u", instance, i, k);
				rc = mmapq_get_many(c, 0, FLIP_RUN, r);
				EXPECT(rc == (j ? (int)j : -EBADMSG), "%s, %u-byte records, byte %" PRIu64
				       " of record %u flipped: get_many %d, want %d", instance, len, pos, j, rc,
				       j ? (int)j : -EBADMSG);
				for (int i = 0; i < rc; i++) {
					EXPECT(r[i].seq == (uint64_t)i && r[i].len == len,
					       "%s: get_many record %d: seq %" PRIu64 " len %u", instance, i,
					       r[i].seq, r[i].len);
					for (uint32_t k = 0; k < len; k++)
						EXPECT(((const uint8_t *)r[i].data)[k] == pbyte((uint64_t)i, k),
						       "%s: get_many record %d byte %u", instance, i, k);
				}
				EXPECT_INT(mmapq_get(c, j, &r[0]), -EBADMSG);
				mmapq_close(c);
			}
		free(bytes);
	}
}

static void case_run_flips(void)
{
	both_instances(run_flips_on);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"get", case_get},
		{"get_many", case_get_many},
		{"copy_many", case_copy_many},
		{"peek", case_peek},
		{"any_machine", case_any_machine},
		{"crc32c", case_crc32c},
		{"fill_get", case_fill_get},
		{"fill_get_many", case_fill_get_many},
		{"fill_peek", case_fill_peek},
		{"fill_bad", case_fill_bad},
		{"fill_copy_many", case_fill_copy_many},
		{"put_runs", case_put_runs},
		{"run_flips", case_run_flips},
	};

	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
