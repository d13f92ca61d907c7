/* SPDX-License-Identifier: MIT */
/*
 * test_msync -- write-back errors are reported, on a real file system that
 * fails: crashfs (tests/lib/crashfs.c), a FUSE file system in this
 * process's private mount namespace, answers EIO to every WRITE (the
 * kernel's write-back of the shared mapping's dirty pages, which
 * msync(MS_SYNC) waits for) and FSYNC once the test flips its switch
 * (crashfs_set_fail).
 *
 * Library (the state each call leaves, as mmapq.h says), per sync mode:
 *   put_always      always: mmapq_put fails with -EIO and puts nothing
 *   put_many_always always: mmapq_put_many fails with -EIO and puts nothing
 *   put_records_always always: mmapq_put_records fails with -EIO and puts
 *                   nothing
 *   put_records_always_fanin  the same above another producer's
 *                   reservation: the next put stays in its own
 *   commit_always   always: mmapq_commit fails with -EIO, puts nothing, and
 *                   the claim stays (committed once the disk works)
 *   publish_batch   batch: mmapq_publish fails with -EIO, published
 *   publish_always  always: the same (the header's msync fails)
 *   reserve_batch   batch: mmapq_reserve publishing a full ring: -EIO
 *   release_batch   batch: mmapq_release fails with -EIO, released (the
 *                   cursor moved on) but floor stays: the producer does not
 *                   reuse the record's bytes until a later release has
 *                   written a cursor past them
 *   release_always  always: the same
 *   attach_alone    any mode: the first process to attach, which marks the
 *                   file in use on disk, is refused with -EIO naming it
 *   never           never: put, publish, release all succeed (no msync)
 * Daemons:
 *   producer_always mmapq-producer, sync = always: exit 74 naming the file
 *   producer_batch  mmapq-producer, sync = batch: the same
 *   consumer_batch  mmapq-consumer, sync = batch: the same
 *   daemons_never   both with sync = never, attached before the disk fails:
 *                   every record through, exit 0
 * Needs root for the mount namespace and /dev/fuse; each case exits 77
 * without them.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
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

#define EXIT_MS 10000
#define RING    64u /* 4 int records */

static char *g_tmp, *g_mnt, *g_q;

#define EXPECT(cond, ...) TU_EXPECT(g_q, cond, __VA_ARGS__)

/* producer: its name (NULL: the default one; several at once: fan-in) */
static struct mmapq *open_as(enum mmapq_role role, const char *producer, enum mmapq_sync sync)
{
	/* the daemons' configuration below has the same geometry */
	struct mmapq_params p = {.path = g_q, .role = role, .producer = producer, .size = RING,
	                         .max_record = 8, .format = MMAPQ_FORMAT_INT, .sync = sync,
	                         .file_mode = 0600};
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &e);

	EXPECT(r == 0, "open: %s", e.msg);
	return q;
}

static struct mmapq *open_role(enum mmapq_role role, enum mmapq_sync sync)
{
	return open_as(role, NULL, sync);
}

/* head and tail as an observer sees them; false if the file is not there
 * (yet) or not valid */
static bool try_positions(uint64_t *head, uint64_t *tail)
{
	struct mmapq_params p = {.path = g_q, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_error e;
	struct mmapq_status st;
	struct mmapq *q = NULL;
	bool ok = mmapq_open(&p, &q, &e) == 0 && mmapq_status(q, &st) == 0;

	mmapq_close(q);
	if (ok) {
		*head = st.head;
		*tail = st.tail;
	}
	return ok;
}

static void positions(uint64_t *head, uint64_t *tail)
{
	*head = *tail = UINT64_MAX;
	EXPECT(try_positions(head, tail), "an observer cannot read the queue");
}

static int put(struct mmapq *q)
{
	int64_t v = (int64_t)mmapq_next_seq(q);

	return mmapq_put(q, &v, sizeof(v));
}

/* The consumer's cursor (the default consumer), as an observer sees it */
static uint64_t consumer_position(void)
{
	struct mmapq_params p = {.path = g_q, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int n = -1;

	EXPECT(mmapq_open(&p, &q, &e) == 0 && (n = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX)) == 1,
	       "observer: %s, %d consumers", e.msg, n);
	mmapq_close(q);
	return cs[0].position;
}

static void reserve(struct mmapq *q)
{
	uint64_t room;
	int r = mmapq_reserve(q, 8, 0, &room);

	EXPECT(r == 0, "reserve: %d (%s)", r, mmapq_strerror(r));
}

/* ---- library ------------------------------------------------------------------ */

static void case_put_always(void)
{
	struct mmapq *q = open_role(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_ALWAYS);
	int r = 0;

	reserve(q);
	EXPECT((r = put(q)) == 0, "a put before the failure: %s", mmapq_strerror(r));
	crashfs_set_fail(true);
	r = put(q);
	EXPECT(r == -EIO && mmapq_pending(q) == 1 && mmapq_next_seq(q) == 1,
	       "put with write-back failing: %d (%s), %u pending, next seq %" PRIu64
	       "; want -EIO, 1, 1 (not put)", r, mmapq_strerror(r), mmapq_pending(q),
	       mmapq_next_seq(q));
	crashfs_set_fail(false);
	EXPECT((r = put(q)) == 0 && mmapq_publish(q) == 2, "a put after: %s", mmapq_strerror(r));
	mmapq_close(q);
}

static void case_put_many_always(void)
{
	struct mmapq *q = open_role(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_ALWAYS);
	int64_t v[3] = {0, 1, 2};
	int r;

	reserve(q);
	crashfs_set_fail(true);
	r = mmapq_put_many(q, v, sizeof(v[0]), 3);
	EXPECT(r == -EIO && mmapq_pending(q) == 0 && mmapq_next_seq(q) == 0,
	       "put_many with write-back failing: %d (%s), %u pending, next seq %" PRIu64
	       "; want -EIO, 0, 0 (nothing put)", r, mmapq_strerror(r), mmapq_pending(q),
	       mmapq_next_seq(q));
	crashfs_set_fail(false);
	r = mmapq_put_many(q, v, sizeof(v[0]), 3);
	EXPECT(r == 3 && mmapq_publish(q) == 3, "put_many after: %d (%s)", r, mmapq_strerror(r));
	mmapq_close(q);
}

static void case_put_records_always(void)
{
	struct mmapq *q = open_role(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_ALWAYS);
	int64_t v[3] = {0, 1, 2};
	struct mmapq_iovec rec[3] = {{&v[0], 8}, {&v[1], 8}, {&v[2], 8}};
	int r;

	reserve(q);
	crashfs_set_fail(true);
	r = mmapq_put_records(q, rec, 3);
	EXPECT(r == -EIO && mmapq_pending(q) == 0 && mmapq_next_seq(q) == 0,
	       "put_records with write-back failing: %d (%s), %u pending, next seq %" PRIu64
	       "; want -EIO, 0, 0 (nothing put)", r, mmapq_strerror(r), mmapq_pending(q),
	       mmapq_next_seq(q));
	crashfs_set_fail(false);
	r = mmapq_put_records(q, rec, 3);
	EXPECT(r == 3 && mmapq_publish(q) == 3, "put_records after: %d (%s)", r, mmapq_strerror(r));
	mmapq_close(q);
}

/* Two producers: b holds the lowest reservation, so the one the
 * producer default takes for its put_records lies above b's; a put that
 * fails then (nothing put) leaves default's next put in its own
 * reservation, not over b's frame.  The consumer reads b's record, then
 * default's three. */
static void case_put_records_always_fanin(void)
{
	struct mmapq *c = open_role(MMAPQ_ROLE_CONSUMER, MMAPQ_SYNC_NEVER);
	struct mmapq *q = open_role(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_ALWAYS);
	/* (never: b's own msync would report the failed write-back, once) */
	struct mmapq *b = open_as(MMAPQ_ROLE_PRODUCER, "b", MMAPQ_SYNC_NEVER);
	int64_t v[3] = {0, 1, 2}, vb = 100, want[4] = {100, 0, 1, 2};
	struct mmapq_iovec rec[3] = {{&v[0], 8}, {&v[1], 8}, {&v[2], 8}};
	struct mmapq_record got[4];
	uint32_t n = 0;
	int r;

	EXPECT((r = mmapq_put(b, &vb, sizeof(vb))) == 0, "b's put: %s", mmapq_strerror(r));
	crashfs_set_fail(true);
	r = mmapq_put_records(q, rec, 3);
	EXPECT(r == -EIO && mmapq_pending(q) == 0, "put_records above b's reservation with"
	       " write-back failing: %d (%s), %u pending; want -EIO, 0", r, mmapq_strerror(r),
	       mmapq_pending(q));
	crashfs_set_fail(false);
	r = mmapq_put_records(q, rec, 3);
	EXPECT(r == 3, "put_records after: %d (%s)", r, mmapq_strerror(r));
	EXPECT((r = mmapq_publish(b)) == 1, "b's publish: %d (%s)", r, mmapq_strerror(r));
	EXPECT((r = mmapq_publish(q)) == 3, "publish: %d (%s)", r, mmapq_strerror(r));
	r = mmapq_available(c, 0, &n);
	EXPECT(r == 0 && n == 4 && mmapq_get_many(c, 0, 4, got) == 4, "consumer: %d (%s), %u"
	       " available; want b's record and the three", r, mmapq_strerror(r), n);
	for (int i = 0; i < 4; i++) {
		int64_t x = 0;

		memcpy(&x, got[i].data, sizeof(x));
		EXPECT(got[i].len == 8 && x == want[i], "record %d: %" PRId64 " (len %u), want %" PRId64,
		       i, x, got[i].len, want[i]);
	}
	mmapq_close(b);
	mmapq_close(q);
	mmapq_close(c);
}

static void case_commit_always(void)
{
	struct mmapq *q = open_role(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_ALWAYS);
	struct mmapq *c = open_role(MMAPQ_ROLE_CONSUMER, MMAPQ_SYNC_NEVER);
	struct mmapq_record rec;
	int64_t v = 77;
	void *buf = NULL;
	uint32_t n = 0;
	int r;

	reserve(q);
	EXPECT(mmapq_claim(q, 8, &buf) == 0, "claim");
	memcpy(buf, &v, sizeof(v));
	crashfs_set_fail(true);
	r = mmapq_commit(q, 8);
	EXPECT(r == -EIO && mmapq_pending(q) == 0, "commit with write-back failing: %d (%s), %u"
	       " pending; want -EIO, 0 (not put)", r, mmapq_strerror(r), mmapq_pending(q));
	crashfs_set_fail(false);
	/* the claim stays: committed now, the record is the one claimed */
	r = mmapq_commit(q, 8);
	EXPECT(r == 0 && mmapq_publish(q) == 1, "commit of the claim that stayed: %d (%s)", r,
	       mmapq_strerror(r));
	EXPECT(mmapq_available(c, 0, &n) == 0 && n == 1 && mmapq_get(c, 0, &rec) == 0 &&
	       rec.seq == 0 && rec.len == 8 && !memcmp(rec.data, &v, 8), "the committed record");
	mmapq_close(c);
	mmapq_close(q);
}

static void publish_case(enum mmapq_sync sync)
{
	struct mmapq *q = open_role(MMAPQ_ROLE_PRODUCER, sync);
	uint64_t head, tail;
	int r;

	reserve(q);
	EXPECT(put(q) == 0 && put(q) == 0, "put");
	crashfs_set_fail(true);
	r = mmapq_publish(q);
	positions(&head, &tail);
	EXPECT(r == -EIO && tail == 2 && mmapq_pending(q) == 0, "publish with write-back failing: %d"
	       " (%s), tail %" PRIu64 ", %u pending; want -EIO, 2, 0 (published, not durable)", r,
	       mmapq_strerror(r), tail, mmapq_pending(q));
	crashfs_set_fail(false);
	mmapq_close(q);
}

static void case_publish_batch(void)
{
	publish_case(MMAPQ_SYNC_BATCH);
}

static void case_publish_always(void)
{
	struct mmapq *q = open_role(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_ALWAYS);

	mmapq_close(q);
	publish_case(MMAPQ_SYNC_ALWAYS);
}

static void case_reserve_batch(void)
{
	struct mmapq *q = open_role(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_BATCH);
	uint64_t head, tail, room = 12345;
	int r;

	EXPECT(mmapq_reserve(q, 8, 0, &room) == 0 && room == RING, "reserve on a new queue");
	for (int i = 0; i < 4; i++)
		EXPECT(put(q) == 0, "put %d", i);
	crashfs_set_fail(true);
	room = 12345;
	/* full and nothing published: reserve publishes the four, then finds
	 * no room (-EAGAIN), but the failed msync is what it reports */
	r = mmapq_reserve(q, 8, 0, &room);
	positions(&head, &tail);
	EXPECT(r == -EIO && tail == 4 && mmapq_pending(q) == 0 && room == 12345,
	       "reserve with write-back failing: %d (%s), tail %" PRIu64 ", %u pending, room %" PRIu64
	       "; want -EIO, 4, 0, untouched", r, mmapq_strerror(r), tail, mmapq_pending(q), room);
	crashfs_set_fail(false);
	mmapq_close(q);
}

static void release_case(enum mmapq_sync sync)
{
	struct mmapq *p = open_role(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_NEVER);
	struct mmapq *c = open_role(MMAPQ_ROLE_CONSUMER, sync);
	uint64_t head, tail;
	uint32_t n;
	int r;

	reserve(p);
	EXPECT(put(p) == 0 && mmapq_publish(p) == 1 && mmapq_available(c, 0, &n) == 0 && n == 1,
	       "one record through");
	crashfs_set_fail(true);
	r = mmapq_release(c, 1);
	positions(&head, &tail);
	EXPECT(r == -EIO && consumer_position() == 1 && head == 0,
	       "release with write-back failing: %d (%s), cursor %" PRIu64 ", oldest kept %" PRIu64
	       "; want -EIO, 1 (released), 0 (its bytes kept: the cursor is not known on disk)", r,
	       mmapq_strerror(r), consumer_position(), head);
	crashfs_set_fail(false);
	/* the ring holds 4: record 0's bytes are not reused, so 3 more fit */
	for (int i = 0; i < 3; i++)
		EXPECT((r = put(p)) == 0, "put %d after the failed release: %d (%s)", i, r,
		       mmapq_strerror(r));
	r = put(p);
	EXPECT(r == -ENOBUFS, "a fourth put over the bytes of the record whose cursor is not on disk:"
	       " %d (%s); want -ENOBUFS", r, mmapq_strerror(r));
	EXPECT(mmapq_publish(p) == 3, "publish");
	/* a release that reaches the disk lets them go */
	r = mmapq_available(c, 0, &n);
	EXPECT(r == 0 && n == 3, "available: %d (%s), %u records; want 3", r, mmapq_strerror(r), n);
	r = mmapq_release(c, 1);
	/* the kernel may report the error it keeps for the file once more,
	 * to the next msync of it: then the release after does it */
	if (r == -EIO)
		r = mmapq_release(c, 1);
	EXPECT(r == 0, "release: %d (%s)", r, mmapq_strerror(r));
	positions(&head, &tail);
	EXPECT(head == consumer_position() && head >= 2 && (r = put(p)) == 0,
	       "after a durable release: oldest kept %" PRIu64 ", cursor %" PRIu64 ", put %d (%s);"
	       " want the cursor, and room again", head, consumer_position(), r, mmapq_strerror(r));
	mmapq_close(c);
	mmapq_close(p);
}

static void case_release_batch(void)
{
	release_case(MMAPQ_SYNC_BATCH);
}

static void case_release_always(void)
{
	release_case(MMAPQ_SYNC_ALWAYS);
}

/* Whatever the sync mode, the first process to attach marks the file in
 * use on disk before anyone uses it: a disk that cannot take that write
 * refuses the attach, naming the file. */
static void case_attach_alone(void)
{
	struct mmapq_params p = {.path = g_q, .role = MMAPQ_ROLE_PRODUCER, .size = RING,
	                         .max_record = 8, .format = MMAPQ_FORMAT_INT,
	                         .sync = MMAPQ_SYNC_NEVER, .file_mode = 0600};
	struct mmapq_error e;
	struct mmapq *q = open_role(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_NEVER);
	int r;

	mmapq_close(q);
	q = NULL;
	crashfs_set_fail(true);
	r = mmapq_open(&p, &q, &e);
	crashfs_set_fail(false);
	EXPECT(r == -EIO && !q && strstr(e.msg, g_q) && strstr(e.msg, "Input/output error"),
	       "attaching alone with write-back failing: %d (%s) \"%s\"; want -EIO naming the file",
	       r, mmapq_strerror(r), e.msg);
	mmapq_close(q);
}

static void case_never(void)
{
	struct mmapq *p = open_role(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_NEVER);
	struct mmapq *c = open_role(MMAPQ_ROLE_CONSUMER, MMAPQ_SYNC_NEVER);
	uint64_t room;
	uint32_t n;
	int r = 0;

	crashfs_set_fail(true);
	for (int round = 0; round < 6 && r == 0; round++) {
		if ((r = mmapq_reserve(p, 8, 0, &room)) == 0 && (r = put(p)) == 0 &&
		    (r = mmapq_publish(p)) == 1 && (r = mmapq_available(c, 0, &n)) == 0)
			r = mmapq_release(c, n);
	}
	EXPECT(r == 0, "sync = never with write-back failing: %d (%s); want no error (no msync)", r,
	       mmapq_strerror(r));
	crashfs_set_fail(false);
	mmapq_close(c);
	mmapq_close(p);
}

/* ---- daemons ------------------------------------------------------------------ */

static char *config(const char *sync)
{
	char *path = tu_path(g_tmp, "test.ini");
	char *text = tu_xasprintf("[queue]\nsize = 64\nmax_record = 8\nsync = %s\n"
	                          "[consumer]\noutput = stdout\n", sync);

	if (tu_write_file(path, text, strlen(text)) < 0) {
		perror(path);
		exit(99);
	}
	free(text);
	return path;
}

static struct tu_proc daemon_start(const char *name, const char *cfg, const char *count)
{
	char *bin = tu_bin(name);
	char *argv[] = {bin, "--config", (char *)cfg, "--queue", g_q, count ? "--count" : NULL,
	                (char *)count, NULL};
	struct tu_proc p;

	tu_spawn(&p, argv, NULL, !strcmp(name, "mmapq-producer"), true, true);
	tu_track(p.pid);
	free(bin);
	return p;
}

/* Wait for exit; the exit code (-1 on a hang: killed), stderr in *err. */
static int daemon_end(struct tu_proc *p, char **out, char **err)
{
	int st = tu_wait(p->pid, EXIT_MS);

	if (st == -ETIMEDOUT)
		tu_kill(p->pid);
	tu_untrack(p->pid);
	if (p->in_fd >= 0)
		close(p->in_fd);
	*out = tu_read_all(p->out_fd, 1000, NULL);
	*err = tu_read_all(p->err_fd, 1000, NULL);
	close(p->out_fd);
	close(p->err_fd);
	return st == -ETIMEDOUT ? -1 : tu_exit_code(st);
}

/* Spin until the queue's tail reaches want (deadline EXIT_MS). */
static bool wait_tail(uint64_t want)
{
	uint64_t end = tu_now_ms() + EXIT_MS, head, tail = 0;

	while (tu_now_ms() < end) {
		if (try_positions(&head, &tail) && tail >= want)
			return true;
		sched_yield();
	}
	return false;
}

/* Until the default consumer is attached as pid (deadline EXIT_MS). */
static bool wait_consumer(pid_t pid)
{
	uint64_t end = tu_now_ms() + EXIT_MS;

	while (tu_now_ms() < end) {
		struct mmapq_params p = {.path = g_q, .role = MMAPQ_ROLE_OBSERVER};
		struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
		struct mmapq *q = NULL;
		bool ok = false;

		if (mmapq_open(&p, &q, NULL) == 0) {
			int n = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX);
			ok = n == 1 && cs[0].pid == pid && cs[0].attached;
			mmapq_close(q);
		}
		if (ok)
			return true;
		sched_yield();
	}
	return false;
}

static void expect_io_error(const char *who, int code, const char *err)
{
	EXPECT(code == 74 && err && strstr(err, g_q) && strstr(err, "Input/output error"),
	       "%s with write-back failing: exit %d, stderr '%s'; want 74 and a message naming %s", who,
	       code, err ? err : "", g_q);
}

static void producer_case(const char *sync)
{
	char *cfg = config(sync), *out, *err;
	struct tu_proc p = daemon_start("mmapq-producer", cfg, NULL);
	int code;

	/* one record through while the file system works */
	EXPECT(tu_write_all(p.in_fd, "1\n", 2) == 0 && wait_tail(1),
	       "the producer did not publish its first record");
	crashfs_set_fail(true);
	EXPECT(tu_write_all(p.in_fd, "2\n", 2) == 0, "write to the producer");
	code = daemon_end(&p, &out, &err);
	crashfs_set_fail(false);
	expect_io_error("mmapq-producer", code, err);
	free(out);
	free(err);
	free(cfg);
}

static void case_producer_always(void)
{
	producer_case("always");
}

static void case_producer_batch(void)
{
	producer_case("batch");
}

/* Three records published by the library, sync never, while all is well. */
static void publish_three(void)
{
	struct mmapq *p = open_role(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_NEVER);

	reserve(p);
	EXPECT(put(p) == 0 && put(p) == 0 && put(p) == 0 && mmapq_publish(p) == 3,
	       "publishing three records");
	mmapq_close(p);
}

static void case_consumer_batch(void)
{
	char *cfg = config("batch"), *out, *err;
	struct tu_proc c;
	int code;

	publish_three();
	crashfs_set_fail(true);
	c = daemon_start("mmapq-consumer", cfg, "3");
	code = daemon_end(&c, &out, &err);
	crashfs_set_fail(false);
	expect_io_error("mmapq-consumer", code, err);
	free(out);
	free(err);
	free(cfg);
}

static void case_daemons_never(void)
{
	char *cfg = config("never"), *out, *err, *pout, *perr;
	struct tu_proc p, c;
	int pcode, ccode;

	publish_three(); /* the file exists before the daemons start */
	c = daemon_start("mmapq-consumer", cfg, "6");
	p = daemon_start("mmapq-producer", cfg, NULL);
	/* both attached (the first marked the file in use) before the
	 * switch: with never, nothing after that waits for the disk */
	EXPECT(tu_wait_role(g_q, p.pid, true, EXIT_MS) && wait_tail(3),
	       "the producer did not attach");
	EXPECT(wait_consumer(c.pid), "the consumer did not attach");
	crashfs_set_fail(true);
	EXPECT(tu_write_all(p.in_fd, "3 4 5\n", 6) == 0, "write to the producer");
	close(p.in_fd);
	p.in_fd = -1;
	pcode = daemon_end(&p, &pout, &perr);
	ccode = daemon_end(&c, &out, &err);
	crashfs_set_fail(false);
	EXPECT(pcode == 0 && ccode == 0 && out && strcmp(out, "0\n1\n2\n3\n4\n5\n") == 0,
	       "sync = never with write-back failing: producer exit %d (%s), consumer exit %d (%s),"
	       " output '%s'; want 0, 0 and 0..5", pcode, perr ? perr : "", ccode, err ? err : "",
	       out ? out : "");
	free(out);
	free(err);
	free(pout);
	free(perr);
	free(cfg);
}

static void print_refused(void)
{
	printf("test_msync: %" PRIu64 " writes refused\n", crashfs_refused());
}

/* Each case: crashfs of its own (crashfs_case_mount), the queue's path in
 * it, and a scratch directory for the rest. */
static void setup(void)
{
	g_mnt = crashfs_case_mount("msync");
	atexit(print_refused);
	g_tmp = tu_mkdtemp("msync-cfg");
	g_q = tu_path(g_mnt, "queue");
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"put_always", case_put_always},
		{"put_many_always", case_put_many_always},
		{"put_records_always", case_put_records_always},
		{"put_records_always_fanin", case_put_records_always_fanin},
		{"commit_always", case_commit_always},
		{"publish_batch", case_publish_batch},
		{"publish_always", case_publish_always},
		{"reserve_batch", case_reserve_batch},
		{"release_batch", case_release_batch},
		{"release_always", case_release_always},
		{"attach_alone", case_attach_alone},
		{"never", case_never},
		{"producer_always", case_producer_always},
		{"producer_batch", case_producer_batch},
		{"consumer_batch", case_consumer_batch},
		{"daemons_never", case_daemons_never},
	};

	unsetenv("MMAPQ_FAULT");
	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
