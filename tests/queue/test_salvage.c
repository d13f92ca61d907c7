/* SPDX-License-Identifier: MIT */
/*
 * test_salvage -- a file not closed cleanly is walked by the first process
 * that attaches alone, and a damaged one salvaged (mmapq_format.h, "Clean
 * close, and salvage"); mmapq_repair does the same on demand.
 *
 * The files: a binary queue of 512 bytes whose records [FIRST, LAST) lie
 * across the ring's end (a padding frame among them), built by the library
 * and closed cleanly, then damaged by hand: a byte of a record flipped, the
 * clean mark cleared (what a crash leaves), a cursor or tail moved.
 *   damaged_at       one consumer at the oldest record, record k damaged,
 *                    for every k: the run [FIRST, k) kept, [k, LAST)
 *                    dropped, exactly as mmapq_status().salvage and
 *                    .salvaged say; the kept records read back; the next
 *                    record published is k, and the queue has a new id
 *                    (sequence numbers given out again)
 *   runs_from_cursors  a second consumer ahead of the damage: the run from
 *                    its cursor reaches the tail and is kept, the records
 *                    below it dropped, the slower consumer's cursor raised
 *                    onto it; the id kept (no number given out again)
 *   empty_run        a consumer's own record damaged: the run from its
 *                    cursor holds nothing, and the run from the oldest
 *                    record, which holds records but ends below that
 *                    cursor, is kept; that cursor is lowered onto it
 *   consumed_below   the cursors on disk ahead of floor and of their synced
 *                    copies (a cut before those were), the records between
 *                    overwritten: kept from the cursors, nothing said
 *                    dropped (everyone had consumed them)
 *   floor_pair_torn  floor's byte an earlier one than its seq's (the run
 *                    from it holds nothing), the cursors at its record
 *                    whole: their run kept, nothing dropped
 *   torn_tail        tail_byte from a later publish than tail (kept, put
 *                    back where the records end, nothing dropped); tail
 *                    from a later publish than tail_byte (the walk stops at
 *                    tail_byte: the records past it dropped, said)
 *   clean_not_walked a file closed cleanly, a record in the middle damaged:
 *                    attaching does not walk it (nothing salvaged), and the
 *                    consumer's mmapq_get says -EBADMSG there
 *   repair_busy      mmapq_repair of a file a producer is attached to:
 *                    -EBUSY, naming it; nothing changed
 *   repair_intact    mmapq_repair of an intact file: 0, nothing dropped,
 *                    the file as it was (the ring byte for byte; the
 *                    header but for floor's seqlock generation)
 *   repair_damaged   mmapq_repair of a clean file with a damaged record:
 *                    what it dropped, returned and in the report, the
 *                    count of salvages one more
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define RING 512u
#define MAXREC 56u
#define FIRST 5u  /* records [FIRST, LAST) kept in the base, a padding frame among them */
#define LAST 16u

static char *g_dir, *g_path;
static uint8_t *g_base;
static size_t g_len;

#define EXPECT(cond, ...) TU_EXPECT(g_path, cond, __VA_ARGS__)
#define EXPECT_INT(a, b) TU_EXPECT_INT(g_path, a, b)
#define EXPECT_MEM(a, b, n) TU_EXPECT_MEM(g_path, a, b, n)

static uint32_t rlen(uint64_t seq)
{
	return (uint32_t)((seq * 23 + 7) % (MAXREC + 1));
}

static uint8_t rbyte(uint64_t seq, uint32_t i)
{
	return (uint8_t)(seq * 61 + i * 3 + 9);
}

static struct mmapq_params params(enum mmapq_role role, const char *name)
{
	return (struct mmapq_params){.path = g_path, .role = role, .size = RING, .max_record = MAXREC,
	                             .format = MMAPQ_FORMAT_BINARY, .file_mode = 0600,
	                             .consumer = name};
}

static struct mmapq *open_as(enum mmapq_role role, const char *name)
{
	struct mmapq_params p = params(role, name);
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &e);

	EXPECT(r == 0, "open: %s", e.msg);
	return q;
}

static void put(struct mmapq *p, uint64_t seq)
{
	uint8_t b[MAXREC];

	for (uint32_t i = 0; i < rlen(seq); i++)
		b[i] = rbyte(seq, i);
	EXPECT_INT(mmapq_put(p, b, rlen(seq)), 0);
}

static void consume(struct mmapq *c, uint32_t n)
{
	uint32_t avail;

	EXPECT(mmapq_available(c, 0, &avail) == 0 && avail >= n && mmapq_release(c, n) == 0,
	       "consume %u", n);
}

/* The base: consumers "a" (and "b", both at FIRST), records [0, LAST) put,
 * [0, FIRST) consumed, closed cleanly. */
static void setup(void)
{
	struct mmapq *p, *a, *b;

	g_dir = tu_mkdtemp("salvage");
	g_path = tu_path(g_dir, "queue");
	p = open_as(MMAPQ_ROLE_PRODUCER, NULL);
	a = open_as(MMAPQ_ROLE_CONSUMER, "a");
	b = open_as(MMAPQ_ROLE_CONSUMER, "b");
	for (uint64_t s = 0; s < FIRST; s++)
		put(p, s);
	EXPECT_INT(mmapq_publish(p), FIRST);
	consume(a, FIRST);
	consume(b, FIRST);
	for (uint64_t s = FIRST; s < LAST; s++)
		put(p, s);
	EXPECT_INT(mmapq_publish(p), LAST - FIRST);
	mmapq_close(b);
	mmapq_close(a);
	mmapq_close(p);
	g_base = (uint8_t *)tu_read_file(g_path, &g_len);
	EXPECT(g_base && g_len == MMAPQ_HEADER_SIZE + RING, "read the base");
}

static struct mmapq_header *hdr(uint8_t *b)
{
	return (struct mmapq_header *)b;
}

/* Where each record of [FIRST, LAST] (LAST: the tail) is, walking the
 * base's frames as the format says: from[s] its position as a cursor has
 * it (where its frame, or the padding before it, starts), at[s] its
 * frame's. */
static unsigned g_pads;

static void positions(const uint8_t *b, uint64_t at[LAST + 1], uint64_t from[LAST + 1])
{
	const struct mmapq_header *h = (const struct mmapq_header *)b;
	uint64_t pos = h->floor.byte;

	g_pads = 0;
	for (uint64_t s = FIRST; s <= LAST; s++) {
		struct mmapq_frame f;

		from[s] = pos;
		memcpy(&f, b + MMAPQ_HEADER_SIZE + pos % RING, sizeof(f));
		if (s < LAST && f.len == MMAPQ_FRAME_PAD) {
			pos += RING - pos % RING;
			memcpy(&f, b + MMAPQ_HEADER_SIZE, sizeof(f));
			g_pads++;
		}
		at[s] = pos;
		if (s < LAST) {
			EXPECT_INT(f.len, rlen(s));
			pos += mmapq_frame_size(f.len);
		}
	}
	EXPECT_INT(from[LAST], h->producer.tail_byte);
	EXPECT(g_pads == 1, "the base has %u padding frames, want 1", g_pads);
}

/* Write b as the queue file; damage record k (a payload byte, or its crc
 * if it has none) unless k is UINT64_MAX. */
static void write_file(uint8_t *b, uint64_t k)
{
	uint8_t *c = malloc(g_len);
	uint64_t at[LAST + 1], from[LAST + 1];

	if (!c)
		tu_die("malloc");
	memcpy(c, b, g_len);
	if (k != UINT64_MAX) {
		positions(b, at, from);
		c[MMAPQ_HEADER_SIZE + (at[k] + (rlen(k) ? 8 + rlen(k) / 2 : 4)) % RING] ^= 0x40;
	}
	unlink(g_path);
	EXPECT(tu_write_file(g_path, c, g_len) == 0, "write the file");
	free(c);
}

/* A copy of the base marked as a crash leaves it: not clean. */
static uint8_t *crashed(void)
{
	uint8_t *b = malloc(g_len);

	if (!b)
		tu_die("malloc");
	memcpy(b, g_base, g_len);
	hdr(b)->state.clean = 0;
	return b;
}

static struct mmapq_status status(struct mmapq *q)
{
	struct mmapq_status st;

	EXPECT_INT(mmapq_status(q, &st), 0);
	return st;
}

/* The records a consumer finds from its cursor, checked: want..until. */
static void expect_records(const char *name, uint64_t want, uint64_t until)
{
	struct mmapq *c = open_as(MMAPQ_ROLE_CONSUMER, name);
	uint32_t n = 0;
	int r = mmapq_available(c, 0, &n);

	EXPECT(until == want ? r == -EAGAIN : r == 0 && n == until - want,
	       "consumer %s: available %d (%s), %u records; want [%" PRIu64 ", %" PRIu64 ")", name, r,
	       mmapq_strerror(r), n, want, until);
	for (uint32_t i = 0; r == 0 && i < n; i++) {
		struct mmapq_record rec;

		EXPECT_INT(mmapq_get(c, i, &rec), 0);
		EXPECT_INT(rec.seq, want + i);
		EXPECT_INT(rec.len, rlen(rec.seq));
		for (uint32_t k = 0; k < rec.len; k++)
			EXPECT_INT(((const uint8_t *)rec.data)[k], rbyte(rec.seq, k));
	}
	mmapq_close(c);
}

static void expect_salvage(const struct mmapq_salvage *s, uint64_t count, uint64_t bf,
                           uint64_t bt, uint64_t af, uint64_t at, uint64_t bytes)
{
	EXPECT(s->count == count && s->below_from == bf && s->below_to == bt && s->above_from == af &&
	       s->above_to == at && s->dropped_bytes == bytes && (count == 0 || s->usec > 0),
	       "salvage %" PRIu64 ": below [%" PRIu64 ", %" PRIu64 ") above [%" PRIu64 ", %" PRIu64
	       ") %" PRIu64 " bytes; want %" PRIu64 ": [%" PRIu64 ", %" PRIu64 ") [%" PRIu64 ", %"
	       PRIu64 ") %" PRIu64, s->count, s->below_from, s->below_to, s->above_from, s->above_to,
	       s->dropped_bytes, count, bf, bt, af, at, bytes);
}

/* ---- cases ----------------------------------------------------------------------- */

static void case_damaged_at(void)
{
	uint64_t at[LAST + 1], from[LAST + 1];

	positions(g_base, at, from);
	for (uint64_t k = FIRST; k < LAST; k++) {
		uint8_t *b = crashed();
		struct mmapq_status st;
		struct mmapq *p;

		write_file(b, k);
		free(b);
		p = open_as(MMAPQ_ROLE_PRODUCER, NULL);
		st = status(p);
		EXPECT(st.salvaged == LAST - k && st.head == FIRST && st.tail == k && st.used_bytes ==
		       from[k] - from[FIRST], "record %" PRIu64 " damaged: salvaged %" PRIu64 ", head %"
		       PRIu64 " tail %" PRIu64 " used %" PRIu64 "; want %" PRIu64 ", %u, %" PRIu64 ", %"
		       PRIu64, k, st.salvaged, st.head, st.tail, st.used_bytes, LAST - k, FIRST, k,
		       from[k] - from[FIRST]);
		expect_salvage(&st.salvage, 1, FIRST, FIRST, k, LAST, from[LAST] - from[k]);
		EXPECT(memcmp(st.id, hdr(g_base)->id, MMAPQ_ID_SIZE) != 0,
		       "records past the run dropped, yet the queue kept its id");
		EXPECT_INT(mmapq_next_seq(p), k);
		/* the numbers of the records dropped are given out again */
		put(p, k);
		EXPECT_INT(mmapq_publish(p), 1);
		mmapq_close(p);
		expect_records("a", FIRST, k + 1);
		expect_records("b", FIRST, k + 1);
		p = open_as(MMAPQ_ROLE_PRODUCER, NULL);
		EXPECT_INT(status(p).salvage.count, 1); /* closed cleanly: not walked again */
		EXPECT_INT(status(p).salvaged, 0);
		mmapq_close(p);
	}
}

static void case_runs_from_cursors(void)
{
	uint8_t *b = crashed();
	struct mmapq_header *h = hdr(b);
	uint64_t at[LAST + 1], from[LAST + 1];
	struct mmapq_status st;
	struct mmapq *p;

	/* "b" at 12, ahead of the damage at 8; "a" at FIRST */
	positions(g_base, at, from);
	h->consumers[1].position = h->consumers[1].synced = 12;
	h->consumers[1].position_byte = h->consumers[1].synced_byte = from[12];
	write_file(b, 8);
	free(b);
	p = open_as(MMAPQ_ROLE_PRODUCER, NULL);
	st = status(p);
	EXPECT(st.salvaged == 12 - FIRST && st.head == 12 && st.tail == LAST, "salvaged %" PRIu64
	       ", head %" PRIu64 " tail %" PRIu64 "; want %u, 12, %u", st.salvaged, st.head, st.tail,
	       12 - FIRST, LAST);
	expect_salvage(&st.salvage, 1, FIRST, 12, LAST, LAST, from[12] - from[FIRST]);
	EXPECT_MEM(st.id, hdr(g_base)->id, MMAPQ_ID_SIZE);
	EXPECT_INT(mmapq_next_seq(p), LAST);
	mmapq_close(p);
	expect_records("a", 12, LAST); /* raised onto the run */
	expect_records("b", 12, LAST);
}

static void case_empty_run(void)
{
	uint8_t *b = crashed();
	struct mmapq_header *h = hdr(b);
	uint64_t at[LAST + 1], from[LAST + 1];
	struct mmapq_status st;
	struct mmapq *p;

	/* "b" at 12, its own record damaged: its run holds nothing; record
	 * 9 damaged too: the run from the oldest record holds [FIRST, 9),
	 * ends before b's empty one, and is the one that keeps records */
	positions(g_base, at, from);
	h->consumers[1].position = h->consumers[1].synced = 12;
	h->consumers[1].position_byte = h->consumers[1].synced_byte = from[12];
	b[MMAPQ_HEADER_SIZE + (at[9] + 4) % RING] ^= 0x10; /* record 9's crc */
	write_file(b, 12);
	free(b);
	p = open_as(MMAPQ_ROLE_PRODUCER, NULL);
	st = status(p);
	EXPECT(st.head == FIRST && st.tail == 9 && st.salvaged == LAST - 9, "head %" PRIu64 " tail %"
	       PRIu64 " salvaged %" PRIu64 "; want %u, 9, %u: the intact records below the empty"
	       " run are kept", st.head, st.tail, st.salvaged, FIRST, LAST - 9);
	expect_salvage(&st.salvage, 1, FIRST, FIRST, 9, LAST, from[LAST] - from[9]);
	mmapq_close(p);
	expect_records("a", FIRST, 9);
	expect_records("b", 9, 9); /* lowered onto the run's end */
}

/* Both consumers' cursors at 9, on disk, floor and their synced copies
 * still at FIRST (a power cut before those were), and record 6 overwritten
 * (the producer reused the bytes once floor had moved in memory): the run
 * from the cursors is kept, and the records below it, consumed by
 * everyone, are not said dropped. */
static void case_consumed_below(void)
{
	uint8_t *b = crashed();
	struct mmapq_header *h = hdr(b);
	uint64_t at[LAST + 1], from[LAST + 1];
	struct mmapq_status st;
	struct mmapq *p;

	positions(g_base, at, from);
	for (int i = 0; i < 2; i++) {
		h->consumers[i].position = 9;
		h->consumers[i].position_byte = from[9];
	}
	write_file(b, 6);
	free(b);
	p = open_as(MMAPQ_ROLE_PRODUCER, NULL);
	st = status(p);
	EXPECT(st.salvaged == 0 && st.salvage.count == 0 && st.head == 9 && st.tail == LAST,
	       "salvaged %" PRIu64 " (count %" PRIu64 ", below [%" PRIu64 ", %" PRIu64 ")), head %"
	       PRIu64 " tail %" PRIu64 "; want nothing dropped, 9, %u", st.salvaged,
	       st.salvage.count, st.salvage.below_from, st.salvage.below_to, st.head, st.tail, LAST);
	mmapq_close(p);
	expect_records("a", 9, LAST);
}

/* Floor's pair torn (its byte an earlier one), the consumers' cursors at
 * its record whole: the run from floor holds nothing, the one from the
 * cursors everything; nothing is dropped. */
static void case_floor_pair_torn(void)
{
	uint8_t *b = crashed();
	struct mmapq_status st;
	struct mmapq *p;

	hdr(b)->floor.byte -= 16;
	write_file(b, UINT64_MAX);
	free(b);
	p = open_as(MMAPQ_ROLE_PRODUCER, NULL);
	st = status(p);
	EXPECT(st.salvaged == 0 && st.salvage.count == 0 && st.head == FIRST && st.tail == LAST,
	       "salvaged %" PRIu64 " (count %" PRIu64 "), head %" PRIu64 " tail %" PRIu64
	       "; want nothing dropped, %u, %u", st.salvaged, st.salvage.count, st.head, st.tail,
	       FIRST, LAST);
	mmapq_close(p);
	expect_records("a", FIRST, LAST);
}

static void case_torn_tail(void)
{
	uint64_t at[LAST + 1], from[LAST + 1];
	struct mmapq_status st;
	struct mmapq *p;
	uint8_t *b;

	positions(g_base, at, from);
	/* tail_byte of a later publish (of an empty record): the walk stops
	 * at tail, nothing dropped, tail_byte put back */
	b = crashed();
	hdr(b)->producer.tail_byte = from[LAST] + 16;
	hdr(b)->producer.claim_byte = from[LAST] + 16; /* an advance half done */
	write_file(b, UINT64_MAX);
	free(b);
	p = open_as(MMAPQ_ROLE_PRODUCER, NULL);
	st = status(p);
	EXPECT(st.salvaged == 0 && st.salvage.count == 0 && st.tail == LAST &&
	       st.used_bytes == from[LAST] - from[FIRST], "tail_byte ahead: salvaged %" PRIu64 " (count %"
	       PRIu64 "), tail %" PRIu64 ", used %" PRIu64, st.salvaged, st.salvage.count, st.tail,
	       st.used_bytes);
	mmapq_close(p);
	expect_records("a", FIRST, LAST);
	/* tail of a later publish than tail_byte (which says the end of
	 * record 12): the walk stops there, [13, LAST) said dropped */
	b = crashed();
	hdr(b)->producer.tail_byte = from[13];
	write_file(b, UINT64_MAX);
	free(b);
	p = open_as(MMAPQ_ROLE_PRODUCER, NULL);
	st = status(p);
	EXPECT(st.salvaged == LAST - 13 && st.tail == 13, "tail ahead of tail_byte: salvaged %" PRIu64
	       ", tail %" PRIu64 "; want %u, 13", st.salvaged, st.tail, LAST - 13);
	expect_salvage(&st.salvage, 1, FIRST, FIRST, 13, LAST, 0);
	mmapq_close(p);
	expect_records("a", FIRST, 13);
}

static void case_clean_not_walked(void)
{
	struct mmapq_status st;
	struct mmapq_record rec;
	struct mmapq *p, *c;
	uint32_t n;

	write_file(g_base, 11); /* clean, record 11 damaged */
	p = open_as(MMAPQ_ROLE_PRODUCER, NULL);
	st = status(p);
	EXPECT(st.salvaged == 0 && st.salvage.count == 0 && st.tail == LAST && st.head == FIRST,
	       "a clean file was walked: salvaged %" PRIu64 " (count %" PRIu64 "), head %" PRIu64
	       " tail %" PRIu64, st.salvaged, st.salvage.count, st.head, st.tail);
	c = open_as(MMAPQ_ROLE_CONSUMER, "a");
	EXPECT(mmapq_available(c, 0, &n) == 0 && n == LAST - FIRST, "available %u", n);
	for (uint32_t i = 0; i < 11 - FIRST; i++)
		EXPECT_INT(mmapq_get(c, i, &rec), 0);
	EXPECT_INT(mmapq_get(c, 11 - FIRST, &rec), -EBADMSG);
	mmapq_close(c);
	mmapq_close(p);
}

static void case_repair_busy(void)
{
	struct mmapq_params rp = {.path = g_path};
	struct mmapq_salvage rep = {.count = 77};
	struct mmapq_error e;
	struct mmapq *p;
	uint8_t *before, *after;
	size_t len;
	int64_t r;

	write_file(g_base, 11);
	p = open_as(MMAPQ_ROLE_PRODUCER, NULL);
	before = (uint8_t *)tu_read_file(g_path, &len);
	r = mmapq_repair(&rp, &rep, &e);
	EXPECT(r == -EBUSY && strstr(e.msg, g_path) && strstr(e.msg, "in use") && rep.count == 77,
	       "repair of a file in use: %" PRId64 " \"%s\"; want -EBUSY naming it", r, e.msg);
	after = (uint8_t *)tu_read_file(g_path, &len);
	EXPECT(!memcmp(before, after, g_len), "repair refused with -EBUSY changed the file");
	free(before);
	free(after);
	mmapq_close(p);
	/* a consumer attached: the same */
	p = open_as(MMAPQ_ROLE_CONSUMER, "a");
	EXPECT_INT(mmapq_repair(&rp, &rep, &e), -EBUSY);
	mmapq_close(p);
}

static void case_repair_intact(void)
{
	struct mmapq_params rp = {.path = g_path};
	struct mmapq_salvage rep;
	struct mmapq_error e;
	struct mmapq_header hb, ha;
	uint8_t *after;
	size_t len;
	int64_t r;

	write_file(g_base, UINT64_MAX);
	memset(&rep, 0xee, sizeof(rep));
	r = mmapq_repair(&rp, &rep, &e);
	EXPECT(r == 0 && rep.count == 0, "repair of an intact file: %" PRId64 " (%s), count %" PRIu64,
	       r, e.msg, rep.count);
	after = (uint8_t *)tu_read_file(g_path, &len);
	EXPECT(len == g_len && !memcmp(after + MMAPQ_HEADER_SIZE, g_base + MMAPQ_HEADER_SIZE, RING),
	       "repair of an intact file changed the ring");
	memcpy(&hb, g_base, sizeof(hb));
	memcpy(&ha, after, sizeof(ha));
	hb.floor.gen = ha.floor.gen; /* its seqlock was written, with the same pair */
	EXPECT_MEM(&ha, &hb, sizeof(ha));
	free(after);
	expect_records("a", FIRST, LAST);
}

static void case_repair_damaged(void)
{
	struct mmapq_params rp = {.path = g_path};
	struct mmapq_salvage rep;
	struct mmapq_error e;
	uint64_t at[LAST + 1], from[LAST + 1];
	struct mmapq_status st;
	struct mmapq *o;
	int64_t r;

	positions(g_base, at, from);
	write_file(g_base, 14); /* clean: repair walks it whatever the mark */
	r = mmapq_repair(&rp, &rep, &e);
	EXPECT(r == LAST - 14, "repair: %" PRId64 " (%s), want %u", r, e.msg, LAST - 14);
	expect_salvage(&rep, 1, FIRST, FIRST, 14, LAST, from[LAST] - from[14]);
	o = open_as(MMAPQ_ROLE_OBSERVER, NULL);
	st = status(o);
	expect_salvage(&st.salvage, 1, FIRST, FIRST, 14, LAST, from[LAST] - from[14]);
	EXPECT(st.clean, "not marked clean after the repair");
	mmapq_close(o);
	expect_records("a", FIRST, 14);
	/* a second damage, a second repair: counted */
	{
		uint8_t *b = (uint8_t *)tu_read_file(g_path, &(size_t){0});

		b[MMAPQ_HEADER_SIZE + (at[10] + 4) % RING] ^= 1; /* record 10's crc */
		unlink(g_path);
		EXPECT(tu_write_file(g_path, b, g_len) == 0, "write");
		free(b);
	}
	EXPECT_INT(mmapq_repair(&rp, &rep, &e), 4);
	EXPECT_INT(rep.count, 2);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"damaged_at", case_damaged_at},
		{"runs_from_cursors", case_runs_from_cursors},
		{"empty_run", case_empty_run},
		{"consumed_below", case_consumed_below},
		{"floor_pair_torn", case_floor_pair_torn},
		{"torn_tail", case_torn_tail},
		{"clean_not_walked", case_clean_not_walked},
		{"repair_busy", case_repair_busy},
		{"repair_intact", case_repair_intact},
		{"repair_damaged", case_repair_damaged},
	};

	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
