/* SPDX-License-Identifier: MIT */
/*
 * test_writeorder -- what a power cut leaves of a queue, per sync mode: the
 * write order of mmapq_format.h ("Write order") held against crashfs
 * (tests/lib/crashfs.h), a file system that loses what was not synced.
 *
 * A producer child and a consumer child stream binary records of random
 * length through a small ring on crashfs, the producer telling the parent
 * each tail a publish returned (acknowledged: for batch and always, on disk),
 * the consumer each cursor a release returned (for batch and always, on
 * disk), having checked every record it read.  The parent cuts the power
 * (crashfs_power_cut: both children SIGKILLed, what was not synced lost; the
 * torn variant keeps a random part of the unsynced pages, each whole) at a
 * random moment, mounts what survived and opens the queue afresh (a
 * consumer, alone: the file walked and salvaged as it needs):
 *   - batch and always: every acknowledged record is there (tail at least
 *     the last acknowledged one), the consumer's cursor at least the last
 *     acknowledged release (a release that returned is not undone) and at
 *     most what was published, nothing dropped below it, and every record
 *     from the cursor to the tail reads back as the record its number
 *     says: the producer never reused the bytes of records whose cursor
 *     was not yet on disk, and no tail on disk covers a frame that is not;
 *   - never: a file that opens, records from the cursor to the tail that
 *     read true, never garbage (whatever the salvage dropped).
 * Cases (each CUTS cuts, half clean, half torn; MMAPQ_POWERCUT_CUTS more):
 *   batch_published  sync batch, the producer stopping after each publish
 *                    returned: the cut falls right after an acknowledgement
 *   batch            sync batch, both sides free: the cut falls anywhere
 *                    (inside a publish, between its msyncs, in a release)
 *   batch_tiny       the same through a 512-byte ring: every release is
 *                    followed at once by the reuse of what it freed
 *   always           sync always
 *   never            sync never
 * And publish_flushes: a publish with sync batch is two disk flushes (the
 * FSYNC requests crashfs counts), its frames' and the header's, also when
 * its frames wrap at the ring's end.
 * Needs root for the mount namespace and /dev/fuse; each case exits 77
 * without them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crashfs.h"
#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define CUTS 40
#define MAXREC 120u
#define WAIT_MS (10000 * (int)tu_time_factor())

static char *g_mnt, *g_q, *g_lock;
static uint64_t g_seed;
/* over the cuts of a case: acknowledged publishes and releases, records
 * read back after the cuts, salvages, unsynced pages at the cuts and kept */
static uint64_t g_published, g_released, g_read, g_salvaged, g_unsynced, g_kept;

#define EXPECT(cond, ...) TU_EXPECT(NULL, cond, __VA_ARGS__)

struct mode {
	enum mmapq_sync sync;
	uint64_t ring;
	bool pause; /* the producer waits for a go after each publish */
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint32_t rlen(uint64_t seq)
{
	return (uint32_t)((seq * 0x9e3779b97f4a7c15ull >> 40) % (MAXREC + 1));
}

static uint8_t rbyte(uint64_t seq, uint32_t i)
{
	return i < 8 ? (uint8_t)(seq >> (8 * i)) : (uint8_t)(seq * 29 + i);
}

/* The record is record seq's length and bytes. */
static bool rec_ok(const struct mmapq_record *r)
{
	if (r->len != rlen(r->seq))
		return false;
	for (uint32_t i = 0; i < r->len; i++)
		if (((const uint8_t *)r->data)[i] != rbyte(r->seq, i))
			return false;
	return true;
}

static struct mmapq *open_q(enum mmapq_role role, const struct mode *m, struct mmapq_error *e,
                            int *code)
{
	struct mmapq_params p = {.path = g_q, .role = role, .size = m->ring, .max_record = MAXREC,
	                         .format = MMAPQ_FORMAT_BINARY, .sync = m->sync, .file_mode = 0600};
	struct mmapq *q = NULL;

	*code = mmapq_open(&p, &q, e);
	return q;
}

static void say(int fd, uint64_t v)
{
	if (write(fd, &v, 8) != 8)
		_exit(5);
}

/* Publishes batches within reserve's room, saying each tail a publish
 * returned; with pause, waits for a byte on go after each. */
static void producer(const struct mode *m, int out, int go, uint64_t seed)
{
	struct mmapq_error e;
	int code;
	struct mmapq *q = open_q(MMAPQ_ROLE_PRODUCER, m, &e, &code);
	uint8_t b[MAXREC];
	uint64_t seq = 0, rng = seed | 1;

	if (!q)
		_exit(1);
	for (;;) {
		uint64_t room, used = 0;
		uint32_t batch = 1 + (uint32_t)(rnd(&rng) % 12), k = 0;

		if (mmapq_reserve(q, rlen(seq), mmapq_now_ns() + 5000000000ull, &room) < 0)
			_exit(2);
		for (; k < batch && used + mmapq_frame_size(rlen(seq)) <= room; k++, seq++) {
			used += mmapq_frame_size(rlen(seq));
			for (uint32_t i = 0; i < rlen(seq); i++)
				b[i] = rbyte(seq, i);
			if (mmapq_put(q, b, rlen(seq)) < 0)
				_exit(3);
		}
		if (mmapq_publish(q) != (int)k)
			_exit(4);
		say(out, seq);
		if (m->pause) {
			char c;
			if (read(go, &c, 1) != 1)
				_exit(0);
		}
	}
}

/* Reads and checks what is there, releases it in random chunks, saying
 * each cursor a release returned. */
static void consumer(const struct mode *m, int out, uint64_t seed)
{
	struct mmapq_error e;
	int code;
	struct mmapq *q = open_q(MMAPQ_ROLE_CONSUMER, m, &e, &code);
	uint64_t head = 0, rng = seed | 1;

	if (!q)
		_exit(1);
	for (;;) {
		uint32_t n, take;
		int r = mmapq_available(q, mmapq_now_ns() + 5000000000ull, &n);

		if (r < 0)
			_exit(2);
		take = 1 + (uint32_t)(rnd(&rng) % n);
		for (uint32_t i = 0; i < take; i++) {
			struct mmapq_record rec;

			if (mmapq_get(q, i, &rec) < 0 || rec.seq != head + i || !rec_ok(&rec))
				_exit(6); /* garbage, or a record lost */
		}
		if (mmapq_release(q, take) < 0)
			_exit(7);
		head += take;
		say(out, head);
	}
}

struct kid {
	pid_t pid;
	int out, go;
	uint64_t last; /* the last value it said */
};

static struct kid start(const struct mode *m, bool prod, uint64_t seed)
{
	int o[2], g[2];
	struct kid k = {0};

	tu_pipe(o);
	tu_pipe(g);
	k.pid = tu_fork();
	if (k.pid == 0) {
		close(o[0]);
		close(g[1]);
		if (prod)
			producer(m, o[1], g[0], seed);
		else
			consumer(m, o[1], seed);
		_exit(0);
	}
	tu_track(k.pid);
	close(o[1]);
	close(g[0]);
	k.out = o[0];
	k.go = g[1];
	EXPECT(crashfs_mark(k.pid) == 0, "crashfs_mark");
	return k;
}

/* Read what the children said, until n more things from kid wait (or its
 * end); false at the deadline or its end. */
static bool hear(struct kid *kids, int nk, int wait, uint64_t n)
{
	uint64_t end = tu_now_ms() + WAIT_MS, got = 0;

	while (got < n) {
		struct pollfd pf[2];
		uint64_t now = tu_now_ms();

		if (now >= end)
			return false;
		for (int i = 0; i < nk; i++)
			pf[i] = (struct pollfd){.fd = kids[i].out, .events = POLLIN};
		if (poll(pf, (nfds_t)nk, (int)(end - now)) <= 0)
			continue;
		for (int i = 0; i < nk; i++) {
			uint64_t v;

			if (!(pf[i].revents & (POLLIN | POLLHUP)))
				continue;
			if (read(kids[i].out, &v, 8) != 8)
				return false;
			kids[i].last = v;
			got += i == wait;
		}
	}
	return true;
}

/* Whatever was still in the pipes when the power went. */
static void drain(struct kid *k)
{
	uint64_t v;

	while (read(k->out, &v, 8) == 8)
		k->last = v;
}

/* One cut: a fresh queue, the stream, the cut after a random number of the
 * producer's acknowledgements, then the checks. */
static void one_cut(const struct mode *m, int round)
{
	uint64_t seed = g_seed + (uint64_t)round * 7919, rng = seed | 1, acks;
	bool torn = round % 2;
	struct kid k[2];
	struct mmapq_error e;
	struct mmapq_status st;
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq *q;
	uint64_t published, released, cursor;
	int code, st0, st1;
	char what[160];

	snprintf(what, sizeof(what), "cut %d (%s, seed %" PRIu64 ")", round, torn ? "torn" : "clean",
	         seed);
	unlink(g_q);
	unlink(g_lock);
	/* the file and its consumer exist (synced) before the stream */
	q = open_q(MMAPQ_ROLE_CONSUMER, m, &e, &code);
	EXPECT(q, "%s: create: %s", what, e.msg);
	mmapq_close(q);
	k[0] = start(m, true, seed);
	k[1] = start(m, false, seed * 3);
	acks = 1 + rnd(&rng) % 60;
	for (uint64_t i = 0; i < acks; i++) {
		EXPECT(hear(k, 2, 0, 1), "%s: the producer stopped after %" PRIu64 " publishes", what, i);
		if (m->pause && i + 1 < acks)
			EXPECT(write(k[0].go, "g", 1) == 1, "go");
	}
	/* the power goes: right after that acknowledgement (pause), or
	 * wherever the two are now */
	EXPECT(crashfs_power_cut(torn ? CRASHFS_TORN : CRASHFS_CLEAN, seed, torn ? 0.5 : 0) == 0,
	       "%s: the power cut failed", what);
	st0 = tu_wait(k[0].pid, WAIT_MS);
	st1 = tu_wait(k[1].pid, WAIT_MS);
	tu_untrack(k[0].pid);
	tu_untrack(k[1].pid);
	EXPECT(st0 >= 0 && WIFSIGNALED(st0) && st1 >= 0 && WIFSIGNALED(st1),
	       "%s: a child ended before the cut: producer %d, consumer %d (6: it read garbage)", what,
	       tu_exit_code(st0), tu_exit_code(st1));
	drain(&k[0]);
	drain(&k[1]);
	for (int i = 0; i < 2; i++) {
		close(k[i].out);
		close(k[i].go);
	}
	published = k[0].last;
	released = k[1].last;
	g_published += published;
	g_released += released;
	g_unsynced += crashfs_stats().unsynced;
	g_kept += crashfs_stats().kept;
	EXPECT(crashfs_start(g_mnt) == 0, "%s: mount after the cut", what);

	/* what survived, as the next process finds it */
	q = open_q(MMAPQ_ROLE_CONSUMER, m, &e, &code);
	EXPECT(q, "%s: the queue does not open after the cut: %s", what, e.msg);
	EXPECT(mmapq_status(q, &st) == 0 && mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX) == 1,
	       "%s: status", what);
	cursor = cs[0].position;
	g_salvaged += st.salvaged;
	g_read += st.tail - cursor;
	if (m->sync != MMAPQ_SYNC_NEVER) {
		EXPECT(st.tail >= published, "%s: %" PRIu64 " records acknowledged published, %" PRIu64
		       " survived (salvage dropped [%" PRIu64 ", %" PRIu64 "))", what, published,
		       st.tail, st.salvage.above_from, st.salvage.above_to);
		EXPECT(cursor >= released, "%s: the release up to %" PRIu64 " returned, the cursor"
		       " survived at %" PRIu64, what, released, cursor);
		EXPECT(st.salvage.below_from == st.salvage.below_to, "%s: records [%" PRIu64 ", %" PRIu64
		       ") dropped below the run kept", what, st.salvage.below_from, st.salvage.below_to);
	}
	EXPECT(cursor <= st.tail, "%s: the cursor %" PRIu64 " past the tail %" PRIu64, what, cursor,
	       st.tail);
	{
		uint32_t n = 0;
		int r = mmapq_available(q, 0, &n);

		EXPECT(r == 0 ? n == st.tail - cursor : r == -EAGAIN && st.tail == cursor,
		       "%s: available %d, %u records from %" PRIu64 " to %" PRIu64, what, r, n, cursor,
		       st.tail);
		for (uint32_t i = 0; r == 0 && i < n; i++) {
			struct mmapq_record rec;
			int g = mmapq_get(q, i, &rec);

			EXPECT(g == 0 && rec.seq == cursor + i && rec_ok(&rec), "%s: record %" PRIu64
			       " of [%" PRIu64 ", %" PRIu64 ") after the cut: %s", what, cursor + i, cursor,
			       st.tail, g < 0 ? mmapq_strerror(g) : "not what was put (garbage)");
		}
	}
	mmapq_close(q);
}

static void run(const struct mode *m)
{
	int cuts = CUTS;
	const char *e = getenv("MMAPQ_POWERCUT_CUTS");

	if (e && atoi(e) > 0)
		cuts = atoi(e);
	for (int round = 0; round < cuts; round++)
		one_cut(m, round);
	printf("test_writeorder: %d cuts, seed %" PRIu64 " (MMAPQ_POWERCUT_SEED repeats them):"
	       " %" PRIu64 " records acknowledged, %" PRIu64 " released, %" PRIu64 " read back after"
	       " the cuts, %" PRIu64 " dropped by salvages; %" PRIu64 " pages unsynced at the cuts,"
	       " %" PRIu64 " of them kept\n", cuts, g_seed, g_published, g_released, g_read,
	       g_salvaged, g_unsynced, g_kept);
	/* unmounted before the case's scratch directory is removed, so that
	 * its removal does not read the mount: a directory closed there is
	 * released asynchronously, and libfuse leaks the handle of one whose
	 * release the unmount's abort of the connection drops */
	crashfs_stop();
	/* a run that streamed nothing, or (batch, always) lost nothing
	 * unsynced, proves nothing; with never the kernel keeps every page
	 * dirty until the cut (nothing reaches the file system unasked).
	 * With pause the cut follows a publish that synced, and the consumer
	 * has often synced its release too: there the proof is the records
	 * acknowledged and found again, unsynced pages or not. */
	EXPECT(g_published > 20u * (uint64_t)cuts && g_released > 0 &&
	       (m->sync == MMAPQ_SYNC_NEVER || (g_read > 0 && (m->pause || g_unsynced > 0))),
	       "the cuts found too little going on");
}

static void case_batch_published(void)
{
	run(&(struct mode){MMAPQ_SYNC_BATCH, 4096, true});
}

static void case_batch(void)
{
	run(&(struct mode){MMAPQ_SYNC_BATCH, 4096, false});
}

static void case_batch_tiny(void)
{
	run(&(struct mode){MMAPQ_SYNC_BATCH, 512, false});
}

static void case_always(void)
{
	run(&(struct mode){MMAPQ_SYNC_ALWAYS, 4096, false});
}

static void case_never(void)
{
	run(&(struct mode){MMAPQ_SYNC_NEVER, 4096, false});
}

/*
 * Groups of records through a 64 KiB ring with sync batch, each published
 * and then consumed: every publish is two FSYNC requests (the frames, then
 * the header with the tail), those whose frames wrap at the ring's end
 * (one msync of the whole ring, not one per piece) included.  Frames are
 * laid out as the format says: one that does not fit before the ring's
 * end starts the next lap.
 */
static void case_publish_flushes(void)
{
	const struct mode m = {MMAPQ_SYNC_BATCH, 64u << 10, false};
	const uint32_t len = 100, per_group = 200;
	uint64_t frame = mmapq_frame_size(len), at = 0, wrapped = 0;
	struct mmapq_error e;
	int code;
	struct mmapq *p = open_q(MMAPQ_ROLE_PRODUCER, &m, &e, &code), *c;
	uint8_t b[MAXREC] = {0};

	EXPECT(p, "producer: %s (%d)", e.msg, code);
	c = open_q(MMAPQ_ROLE_CONSUMER, &m, &e, &code);
	EXPECT(c, "consumer: %s (%d)", e.msg, code);
	for (int g = 0; g < 12; g++) {
		uint64_t room, first = at, fsyncs;
		uint32_t n;
		int r = mmapq_reserve(p, len, 0, &room);

		EXPECT(r == 0 && room >= per_group * frame, "group %d: reserve %d, room %" PRIu64, g, r,
		       room);
		for (uint32_t i = 0; i < per_group; i++) {
			if ((at & (m.ring - 1)) + frame > m.ring)
				at = (at | (m.ring - 1)) + 1;
			at += frame;
			EXPECT(mmapq_put(p, b, len) == 0, "group %d: put %u", g, i);
		}
		wrapped += at / m.ring != first / m.ring && at % m.ring != 0;
		fsyncs = crashfs_stats().fsyncs;
		r = mmapq_publish(p);
		fsyncs = crashfs_stats().fsyncs - fsyncs;
		EXPECT(r == (int)per_group && fsyncs == 2,
		       "group %d (ring bytes %" PRIu64 " to %" PRIu64 "): publish %d, %" PRIu64
		       " FSYNC requests, want 2", g, first, at, r, fsyncs);
		EXPECT(mmapq_available(c, 0, &n) == 0 && n == per_group && mmapq_release(c, n) == 0,
		       "group %d: %u available, released", g, n);
	}
	EXPECT(wrapped >= 2, "only %" PRIu64 " groups wrapped", wrapped);
	mmapq_close(c);
	mmapq_close(p);
	crashfs_stop();
}

static void setup(void)
{
	const char *s = getenv("MMAPQ_POWERCUT_SEED");

	g_mnt = crashfs_case_mount("writeorder");
	g_q = tu_path(g_mnt, "q");
	g_lock = tu_xasprintf("%s" MMAPQ_LOCK_SUFFIX, g_q);
	g_seed = s ? strtoull(s, NULL, 0) : (uint64_t)getpid() * 2654435761u + tu_now_ms();
	signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"batch_published", case_batch_published},
		{"batch", case_batch},
		{"batch_tiny", case_batch_tiny},
		{"always", case_always},
		{"never", case_never},
		{"publish_flushes", case_publish_flushes},
	};

	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
