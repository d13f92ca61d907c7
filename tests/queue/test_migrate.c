/* SPDX-License-Identifier: MIT */
/*
 * test_migrate -- files of format versions 1 to 3 (rings of fixed-size
 * slots, written by an older mmapq: tu_write_legacy_queue makes them) are
 * read only: shown to observers, read out record by record with
 * mmapq_params.migrate (what `mmapqctl recreate` does), refused otherwise.
 *
 *   refused      the producer and the consumer without migrate: -EPROTO
 *                naming the version and `mmapqctl recreate`; the file
 *                byte for byte as it was
 *   read_v1 ... read_v3
 *                int and line files, the records across the end of the
 *                slots: with migrate, both roles at once (as recreate holds
 *                them); the consumer reads every record with mmapq_get,
 *                mmapq_get_many and (int) mmapq_copy_many, in order and
 *                not; every call that would write is -EROFS (put, put_many,
 *                claim, commit, reserve, publish, release,
 *                consumers_restore); the file byte for byte as it was
 *   observer     status (version, slots and their size, the sizes in
 *                bytes, positions, the id of a version-3 file), the
 *                consumers (version 3's table; versions 1 and 2's one
 *                consumer as "default"), and every record by mmapq_peek
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define CAP 8u      /* slots */
#define RS 24u      /* record_size of the line files */
#define FIRST 13u   /* records [FIRST, FIRST + NREC): across the end of the slots */
#define NREC 7u

static char *g_dir, *g_path;

#define EXPECT(cond, ...) TU_EXPECT(g_path, cond, __VA_ARGS__)
#define EXPECT_INT(a, b) TU_EXPECT_INT(g_path, a, b)
#define EXPECT_STR(a, b) TU_EXPECT_STR(g_path, a, b)

static int64_t g_vals[NREC];
static char g_lines[NREC][RS + 1];

static void setup(void)
{
	g_dir = tu_mkdtemp("migrate");
	g_path = tu_path(g_dir, "old.q");
	for (uint32_t i = 0; i < NREC; i++) {
		g_vals[i] = -1000 * (int64_t)(FIRST + i) - 7;
		/* lengths 0..RS */
		snprintf(g_lines[i], sizeof(g_lines[i]), "%.*s", (int)((i * 5) % (RS + 1)),
		         "line-of-the-old-queue-xyz");
	}
}

/* A version-v file of format f: records [FIRST, FIRST + NREC), consumers
 * "default" at FIRST + 1 and (version 3) "late" at FIRST + 4.  Its bytes. */
static uint8_t *make(uint32_t v, uint32_t f, size_t *len)
{
	struct mmapq_record recs[NREC];
	struct tu_legacy_consumer cs[2] = {{"default", FIRST + 1}, {"late", FIRST + 4}};
	char *b;

	for (uint32_t i = 0; i < NREC; i++)
		recs[i] = f == MMAPQ_FORMAT_INT ?
		          (struct mmapq_record){FIRST + i, 8, &g_vals[i]} :
		          (struct mmapq_record){FIRST + i, (uint32_t)strlen(g_lines[i]), g_lines[i]};
	unlink(g_path);
	EXPECT_INT(tu_write_legacy_queue(g_path, v, f, CAP, f == MMAPQ_FORMAT_INT ? 8 : RS, FIRST,
	                                 recs, NREC, cs, 2, v == 3 ? 0x3c : 0), 0);
	b = tu_read_file(g_path, len);
	EXPECT(b, "read %s", g_path);
	return (uint8_t *)b;
}

static void expect_unchanged(const uint8_t *before, size_t len, const char *what)
{
	size_t alen;
	uint8_t *after = (uint8_t *)tu_read_file(g_path, &alen);

	EXPECT(after && alen == len && !memcmp(after, before, len), "%s: the file was written", what);
	free(after);
}

static void check_rec(const struct mmapq_record *r, uint32_t f, uint64_t seq)
{
	uint32_t i = (uint32_t)(seq - FIRST);

	EXPECT_INT(r->seq, seq);
	if (f == MMAPQ_FORMAT_INT) {
		int64_t v;
		EXPECT_INT(r->len, 8);
		memcpy(&v, r->data, 8);
		EXPECT_INT(v, g_vals[i]);
	} else {
		EXPECT_INT(r->len, strlen(g_lines[i]));
		EXPECT(!memcmp(r->data, g_lines[i], r->len), "record %" PRIu64 "'s bytes", seq);
	}
}

/* An open that waits (for the attach lock: both roles at once) gives up
 * after a few seconds, so that a hang fails the case: SIGALRM ends the
 * lock's wait, and the callback says stop. */
static volatile sig_atomic_t g_alarm;

static void on_alarm(int sig)
{
	(void)sig;
	g_alarm = 1;
}

static bool alarmed(void *ctx)
{
	(void)ctx;
	return g_alarm;
}

static struct mmapq *open_role(enum mmapq_role role, bool migrate, int *code, char *msg)
{
	struct mmapq_params p = {.path = g_path, .role = role, .migrate = migrate,
	                         .interrupted = alarmed};
	struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART */
	struct mmapq_error e = {{0}};
	struct mmapq *q = NULL;

	sigaction(SIGALRM, &sa, NULL);
	g_alarm = 0;
	alarm(5 * tu_time_factor());
	*code = mmapq_open(&p, &q, &e);
	alarm(0);
	if (msg)
		memcpy(msg, e.msg, sizeof(e.msg));
	return q;
}

static void case_refused(void)
{
	for (uint32_t v = 1; v <= 3; v++)
		for (uint32_t f = MMAPQ_FORMAT_INT; f <= MMAPQ_FORMAT_LINE; f++) {
			size_t len;
			uint8_t *b = make(v, f, &len);
			char msg[512], want[64];

			snprintf(want, sizeof(want), "format version %u", v);
			for (int r = 0; r < 2; r++) {
				int code;
				struct mmapq *q = open_role(r ? MMAPQ_ROLE_CONSUMER : MMAPQ_ROLE_PRODUCER, false,
				                            &code, msg);

				EXPECT(code == -EPROTO && !q && strstr(msg, want) &&
				       strstr(msg, "mmapqctl recreate") && strstr(msg, g_path),
				       "version %u %s as %s: %d \"%s\"; want -EPROTO naming the version and"
				       " `mmapqctl recreate`", v, mmapq_format_name(f),
				       r ? "consumer" : "producer", code, msg);
			}
			expect_unchanged(b, len, "refused");
			free(b);
		}
}

static void read_version(uint32_t v)
{
	for (uint32_t f = MMAPQ_FORMAT_INT; f <= MMAPQ_FORMAT_LINE; f++) {
		size_t len;
		uint8_t *b = make(v, f, &len);
		struct mmapq_record r[NREC + 1];
		struct mmapq *c, *p;
		int64_t vals[NREC];
		void *buf = NULL;
		uint64_t room = 5;
		uint32_t n = 0;
		int code;

		c = open_role(MMAPQ_ROLE_CONSUMER, true, &code, NULL);
		EXPECT(code == 0, "migrating consumer of version %u: %d", v, code);
		/* the other role too, as `mmapqctl recreate` holds both */
		p = open_role(MMAPQ_ROLE_PRODUCER, true, &code, NULL);
		EXPECT(code == 0, "migrating producer of version %u beside the consumer: %d (%s)", v,
		       code, mmapq_strerror(code));
		/* every record kept, from the oldest (not the consumer's cursor:
		 * recreate carries the records, then the cursors) */
		EXPECT(mmapq_available(c, 0, &n) == 0 && n == NREC, "available %u, want %u", n, NREC);
		for (uint32_t i = 0; i < NREC; i++) {
			EXPECT_INT(mmapq_get(c, i, &r[0]), 0);
			check_rec(&r[0], f, FIRST + i);
		}
		for (uint32_t k = 0; k < NREC; k++) { /* backwards */
			uint32_t i = NREC - 1 - k;
			EXPECT_INT(mmapq_get(c, i, &r[0]), 0);
			check_rec(&r[0], f, FIRST + i);
		}
		EXPECT_INT(mmapq_get(c, NREC, &r[0]), -ENOENT);
		EXPECT_INT(mmapq_get_many(c, 2, NREC + 1, r), NREC - 2);
		for (uint32_t i = 0; i < NREC - 2; i++)
			check_rec(&r[i], f, FIRST + 2 + i);
		if (f == MMAPQ_FORMAT_INT) {
			EXPECT_INT(mmapq_copy_many(c, 0, NREC, vals, 8), NREC);
			for (uint32_t i = 0; i < NREC; i++)
				EXPECT_INT(vals[i], g_vals[i]);
		}
		/* nothing is ever written */
		EXPECT_INT(mmapq_release(c, 1), -EROFS);
		EXPECT_INT(mmapq_put(p, vals, 8), -EROFS);
		EXPECT_INT(mmapq_put_many(p, vals, 8, 1), -EROFS);
		EXPECT_INT(mmapq_claim(p, 8, &buf), -EROFS);
		EXPECT(!buf, "claim set a buffer");
		EXPECT_INT(mmapq_commit(p, 8), -EROFS);
		EXPECT_INT(mmapq_reserve(p, 8, 0, &room), -EROFS);
		EXPECT_INT(room, 5);
		EXPECT_INT(mmapq_publish(p), -EROFS);
		EXPECT_INT(mmapq_pending(p), 0);
		{
			struct mmapq_consumer_status cs = {.name = "x", .position = FIRST};
			EXPECT_INT(mmapq_consumers_restore(p, &cs, 1), -EROFS);
		}
		mmapq_close(p);
		mmapq_close(c);
		expect_unchanged(b, len, "read out");
		free(b);
	}
}

static void case_read_v1(void)
{
	read_version(1);
}

static void case_read_v2(void)
{
	read_version(2);
}

static void case_read_v3(void)
{
	read_version(3);
}

static void case_observer(void)
{
	for (uint32_t v = 1; v <= 3; v++)
		for (uint32_t f = MMAPQ_FORMAT_INT; f <= MMAPQ_FORMAT_LINE; f++) {
			size_t len;
			uint8_t *b = make(v, f, &len);
			uint32_t ss = mmapq_slot_size_v3(v, f, f == MMAPQ_FORMAT_INT ? 8 : RS);
			struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
			struct mmapq_status st;
			struct mmapq *o;
			uint8_t buf[RS];
			int code, nc;

			o = open_role(MMAPQ_ROLE_OBSERVER, false, &code, NULL);
			EXPECT(code == 0, "observer of version %u: %d", v, code);
			EXPECT_INT(mmapq_status(o, &st), 0);
			EXPECT(st.version == v && st.format == f && st.capacity == CAP && st.slot_size == ss &&
			       st.size == (uint64_t)CAP * ss && st.file_size == len &&
			       st.max_record == (f == MMAPQ_FORMAT_INT ? 8u : RS) && st.head == FIRST &&
			       st.tail == FIRST + NREC && st.used_bytes == (uint64_t)NREC * ss && !st.clean,
			       "version %u %s: status version %u format %u capacity %u slot %u size %" PRIu64
			       " max_record %u head %" PRIu64 " tail %" PRIu64 " used %" PRIu64, v,
			       mmapq_format_name(f), st.version, st.format, st.capacity, st.slot_size,
			       st.size, st.max_record, st.head, st.tail, st.used_bytes);
			EXPECT(v == 3 ? st.id[0] == 0x3c && st.id[15] == 0x3c : st.id[0] == 0 && st.id[15] == 0,
			       "version %u: id %02x..%02x", v, st.id[0], st.id[15]);
			nc = mmapq_consumers(o, cs, MMAPQ_CONSUMERS_MAX);
			if (v == 3) {
				EXPECT_INT(nc, 2);
				EXPECT_STR(cs[0].name, "default");
				EXPECT_INT(cs[0].position, FIRST + 1);
				EXPECT_STR(cs[1].name, "late");
				EXPECT_INT(cs[1].position, FIRST + 4);
				EXPECT_INT(cs[1].lag, NREC - 4);
				EXPECT_INT(cs[1].lag_bytes, (uint64_t)(NREC - 4) * ss);
			} else {
				EXPECT_INT(nc, 1);
				EXPECT_STR(cs[0].name, MMAPQ_CONSUMER_DEFAULT);
				EXPECT_INT(cs[0].position, FIRST);
			}
			for (uint32_t i = 0; i < NREC; i++) {
				struct mmapq_record r;
				EXPECT_INT(mmapq_peek(o, FIRST + i, buf, sizeof(buf), &r), 0);
				check_rec(&r, f, FIRST + i);
			}
			EXPECT_INT(mmapq_peek(o, FIRST + NREC, buf, sizeof(buf), &(struct mmapq_record){0}),
			           -ENOENT);
			EXPECT_INT(mmapq_peek(o, FIRST - 1, buf, sizeof(buf), &(struct mmapq_record){0}),
			           -ENOENT);
			mmapq_close(o);
			expect_unchanged(b, len, "observed");
			free(b);
		}
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"refused", case_refused},
		{"read_v1", case_read_v1},
		{"read_v2", case_read_v2},
		{"read_v3", case_read_v3},
		{"observer", case_observer},
	};

	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
