/* SPDX-License-Identifier: MIT */
/*
 * test_producers -- the producer table as observers list it
 * (mmapq_producers), cases:
 *   listed     three named producers (one in another process) each with
 *              what it published, its pid while attached and none once it
 *              closed (last_pid kept), in table order; n smaller than the
 *              count fills n and says the count; out NULL with n > 0
 *   by_name    the counters survive a close and a reopen by the same name
 *              (published goes on, attaches counts both), a new name takes
 *              a new entry
 *   blocked    a producer whose reserve waited for room shows since when in
 *              its own entry only, and its total; the others none
 *   damaged    an entry whose state or name a writer spoiled under an
 *              observer: -EBADMSG, out untouched
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "mmapq.h"
#include "testutil.h"

#define RING 256u /* int queues: 16 records of 16 bytes */
#define MS 1000000ull
#define TIMEOUT_MS 10000
/* the producer table: the header's second page, 192 bytes an entry */
#define PRODUCER_TABLE 4096
#define PRODUCER_ENTRY 192
#define PRODUCER_NAME 64

static char *g_dir;
static char *g_path;

#define EXPECT(cond, ...) TU_EXPECT(g_path, cond, __VA_ARGS__)
#define EXPECT_INT(a, b) TU_EXPECT_INT(g_path, a, b)
#define EXPECT_STR(a, b) TU_EXPECT_STR(g_path, a, b)

static void setup(void)
{
	g_dir = tu_mkdtemp("producers");
	g_path = tu_path(g_dir, "q");
}

static struct mmapq *open_as(enum mmapq_role role, const char *name)
{
	struct mmapq_params p = {.path = g_path, .role = role, .size = RING, .max_record = 8,
	                         .format = MMAPQ_FORMAT_INT, .file_mode = 0600, .max_producers = 4,
	                         .producer = role == MMAPQ_ROLE_PRODUCER ? name : NULL,
	                         .consumer = role == MMAPQ_ROLE_CONSUMER ? name : NULL};
	struct mmapq_error e = {{0}};
	struct mmapq *q = NULL;
	int r;

	if (role == MMAPQ_ROLE_OBSERVER)
		p.size = p.max_record = p.format = p.max_producers = 0;
	r = mmapq_open(&p, &q, &e);
	EXPECT(r == 0, "open as %d '%s': %s (%s)", (int)role, name ? name : "", e.msg,
	       mmapq_strerror(r));
	return q;
}

/* n records (values from v) put and published */
static void publish(struct mmapq *q, uint32_t n, int64_t v)
{
	for (uint32_t i = 0; i < n; i++) {
		int64_t x = v + i;
		uint64_t room;
		int r = mmapq_put(q, &x, sizeof(x));

		/* another producer's reservation may hold the room: take ours */
		if (r == -ENOBUFS) {
			r = mmapq_reserve(q, sizeof(x), mmapq_now_ns() + TIMEOUT_MS * MS, &room);
			EXPECT(r == 0, "reserve: %s", mmapq_strerror(r));
			r = mmapq_put(q, &x, sizeof(x));
		}
		EXPECT(r == 0, "put: %s", mmapq_strerror(r));
	}
	EXPECT(mmapq_publish(q) >= 0, "publish");
}

static int list(struct mmapq *obs, struct mmapq_producer_status *ps)
{
	int n = mmapq_producers(obs, ps, MMAPQ_PRODUCERS_MAX);

	EXPECT(n >= 0, "mmapq_producers: %s", mmapq_strerror(n));
	return n;
}

static void test_listed(void)
{
	struct mmapq *a = open_as(MMAPQ_ROLE_PRODUCER, "a"), *b = open_as(MMAPQ_ROLE_PRODUCER, "b");
	struct mmapq *obs = open_as(MMAPQ_ROLE_OBSERVER, NULL);
	struct mmapq_producer_status ps[MMAPQ_PRODUCERS_MAX], one[2];
	const struct mmapq_producer_status *p;
	int up[2], down[2], n;
	char c;
	pid_t child;

	publish(a, 1, 1);
	publish(b, 2, 10);
	tu_pipe(up);
	tu_pipe(down);
	child = tu_fork();
	if (child == 0) {
		struct mmapq *r;

		close(up[0]);
		close(down[1]);
		r = open_as(MMAPQ_ROLE_PRODUCER, "remote");
		publish(r, 3, 100);
		if (write(up[1], "x", 1) != 1)
			_exit(1);
		/* attached until the parent closes its end */
		(void)read(down[0], &c, 1);
		mmapq_close(r);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	EXPECT(read(up[0], &c, 1) == 1, "the child producer did not publish");

	n = list(obs, ps);
	EXPECT_INT(n, 3);
	EXPECT_STR(ps[0].name, "a");
	EXPECT_STR(ps[1].name, "b");
	EXPECT_STR(ps[2].name, "remote");
	for (int i = 0; i < 3; i++) {
		EXPECT_INT(ps[i].index, i);
		EXPECT(ps[i].attached, "%s not attached", ps[i].name);
		EXPECT_INT(ps[i].published, (uint64_t)i + 1);
		EXPECT_INT(ps[i].attaches, 1);
		EXPECT_INT(ps[i].blocked_since_usec, 0);
		EXPECT(ps[i].registered_usec && ps[i].start_usec, "%s: no registration or attach time",
		       ps[i].name);
		EXPECT_INT(ps[i].pid, ps[i].last_pid);
	}
	EXPECT_INT(ps[0].pid, getpid());
	EXPECT_INT(ps[1].pid, getpid());
	EXPECT_INT(ps[2].pid, child);

	/* fewer than there are: n filled in, the count said, the rest untouched */
	memset(one, 0x5a, sizeof(one));
	EXPECT_INT(mmapq_producers(obs, one, 1), 3);
	EXPECT_STR(one[0].name, "a");
	EXPECT_INT(one[1].index, 0x5a5a5a5au);
	EXPECT_INT(mmapq_producers(obs, NULL, 0), 3);
	EXPECT_INT(mmapq_producers(obs, NULL, 1), -EINVAL);

	/* the other process gone, b closed: neither shows a pid; last_pid stays */
	close(down[1]);
	EXPECT_INT(tu_wait(child, TIMEOUT_MS), 0);
	mmapq_close(b);
	n = list(obs, ps);
	EXPECT_INT(n, 3);
	p = tu_producer_named(ps, n, "remote");
	EXPECT(p && !p->attached && p->pid == 0 && p->last_pid == child && p->published == 3,
	       "remote after its exit: attached %d pid %d last_pid %d published %" PRIu64,
	       p ? p->attached : -1, p ? p->pid : -1, p ? p->last_pid : -1, p ? p->published : 0);
	p = tu_producer_named(ps, n, "b");
	EXPECT(p && !p->attached && p->pid == 0 && p->last_pid == getpid() && p->published == 2,
	       "b after its close: attached %d pid %d last_pid %d published %" PRIu64,
	       p ? p->attached : -1, p ? p->pid : -1, p ? p->last_pid : -1, p ? p->published : 0);
	p = tu_producer_named(ps, n, "a");
	EXPECT(p && p->attached && p->pid == getpid(), "a, still open, not attached as this process");
	/* the queue's tail is every producer's records */
	EXPECT_INT(tu_queue_status(g_path).tail, 6);
	mmapq_close(a);
	mmapq_close(obs);
}

static void test_by_name(void)
{
	struct mmapq *q = open_as(MMAPQ_ROLE_PRODUCER, "src.1"), *obs;
	struct mmapq_producer_status ps[MMAPQ_PRODUCERS_MAX];
	const struct mmapq_producer_status *p;
	uint64_t registered;
	int n;

	publish(q, 4, 0);
	mmapq_count_dropped(q, 2);
	mmapq_count_bad_input(q, 5);
	mmapq_close(q);
	obs = open_as(MMAPQ_ROLE_OBSERVER, NULL);
	n = list(obs, ps);
	EXPECT_INT(n, 1);
	registered = ps[0].registered_usec;
	mmapq_close(obs);

	/* the same name again, in another handle: the same entry, counting on */
	q = open_as(MMAPQ_ROLE_PRODUCER, "src.1");
	publish(q, 3, 4);
	mmapq_close(q);
	/* another name: an entry of its own, from 0 */
	q = open_as(MMAPQ_ROLE_PRODUCER, "src.2");
	publish(q, 1, 7);
	mmapq_close(q);

	obs = open_as(MMAPQ_ROLE_OBSERVER, NULL);
	n = list(obs, ps);
	EXPECT_INT(n, 2);
	p = tu_producer_named(ps, n, "src.1");
	EXPECT(p != NULL, "src.1 not listed");
	EXPECT_INT(p->index, 0);
	EXPECT_INT(p->published, 7);
	EXPECT_INT(p->attaches, 2);
	EXPECT_INT(p->dropped, 2);
	EXPECT_INT(p->bad_input, 5);
	EXPECT_INT(p->registered_usec, registered);
	EXPECT(!p->attached && !p->pid && p->last_pid == getpid(), "src.1 after its close");
	p = tu_producer_named(ps, n, "src.2");
	EXPECT(p != NULL, "src.2 not listed");
	EXPECT_INT(p->index, 1);
	EXPECT_INT(p->published, 1);
	EXPECT_INT(p->attaches, 1);
	EXPECT_INT(p->dropped, 0);
	mmapq_close(obs);
}

static void test_blocked(void)
{
	struct mmapq *c = open_as(MMAPQ_ROLE_CONSUMER, "slow");
	struct mmapq *a = open_as(MMAPQ_ROLE_PRODUCER, "a"), *b = open_as(MMAPQ_ROLE_PRODUCER, "b");
	struct mmapq *obs = open_as(MMAPQ_ROLE_OBSERVER, NULL);
	struct mmapq_producer_status ps[MMAPQ_PRODUCERS_MAX];
	const struct mmapq_producer_status *pa, *pb;
	uint64_t room, since = 0;
	int n, r;

	publish(a, 1, 0);
	/* b fills the ring, which nobody consumes (a look that finds it full
	 * begins no wait), then waits for room */
	for (int64_t x = 1;; x++) {
		r = mmapq_put(b, &x, sizeof(x));
		if (r == -ENOBUFS) {
			EXPECT(mmapq_publish(b) >= 0, "publish");
			r = mmapq_reserve(b, sizeof(x), 0, &room);
			if (r == -EAGAIN)
				break;
			EXPECT(r == 0, "reserve: %s", mmapq_strerror(r));
			continue;
		}
		EXPECT(r == 0, "put: %s", mmapq_strerror(r));
	}
	n = list(obs, ps);
	pb = tu_producer_named(ps, n, "b");
	EXPECT(pb && !pb->blocked_since_usec, "b found the ring full and did not wait, yet waits");
	r = mmapq_reserve(b, 8, mmapq_now_ns() + 20 * MS, &room);
	EXPECT_INT(r, -ETIMEDOUT);
	n = list(obs, ps);
	EXPECT_INT(n, 2);
	pa = tu_producer_named(ps, n, "a");
	pb = tu_producer_named(ps, n, "b");
	EXPECT(pa && pb, "a or b not listed");
	EXPECT_INT(pa->blocked_since_usec, 0);
	EXPECT_INT(pa->blocked_total_usec, 0);
	EXPECT(pb->blocked_since_usec != 0, "b waited for room, its entry says it does not");
	EXPECT(pb->blocked_total_usec >= 10000, "b waited 20 ms, its total is %" PRIu64 " us",
	       pb->blocked_total_usec);
	/* mmapq_blocked says the same, for all of them */
	EXPECT_INT(mmapq_blocked(obs, &since, NULL, NULL), 0);
	EXPECT_INT(since, pb->blocked_since_usec);
	/* b gone: its wait is over, its total stays */
	mmapq_close(b);
	n = list(obs, ps);
	pb = tu_producer_named(ps, n, "b");
	EXPECT(pb && pb->blocked_since_usec == 0 && pb->blocked_total_usec >= 10000,
	       "b closed: since %" PRIu64 ", total %" PRIu64, pb ? pb->blocked_since_usec : 0,
	       pb ? pb->blocked_total_usec : 0);
	mmapq_close(a);
	mmapq_close(c);
	mmapq_close(obs);
}

/* Bytes at offset of the queue file, written as another process would
 * (the observer's mapping is shared: it sees them). */
static void poke(off_t offset, const void *bytes, size_t len)
{
	FILE *f = fopen(g_path, "r+b");

	EXPECT(f && fseeko(f, offset, SEEK_SET) == 0 && fwrite(bytes, 1, len, f) == len &&
	       fclose(f) == 0, "cannot write the queue file");
}

static void test_damaged(void)
{
	struct mmapq *q = open_as(MMAPQ_ROLE_PRODUCER, "p"), *obs;
	struct mmapq_producer_status ps[MMAPQ_PRODUCERS_MAX], before[MMAPQ_PRODUCERS_MAX];
	uint32_t bad_state = 7, registered = 1;

	publish(q, 2, 0);
	mmapq_close(q);
	obs = open_as(MMAPQ_ROLE_OBSERVER, NULL);
	EXPECT_INT(list(obs, ps), 1);
	memset(ps, 0x33, sizeof(ps));
	memcpy(before, ps, sizeof(ps));
	/* entry 1: a state that is neither free nor registered */
	poke(PRODUCER_TABLE + PRODUCER_ENTRY, &bad_state, sizeof(bad_state));
	EXPECT_INT(mmapq_producers(obs, ps, MMAPQ_PRODUCERS_MAX), -EBADMSG);
	EXPECT(!memcmp(ps, before, sizeof(ps)), "a failed mmapq_producers wrote into out");
	/* registered, with a name of a character no name may hold */
	poke(PRODUCER_TABLE + PRODUCER_ENTRY + PRODUCER_NAME, "bad name", 9);
	poke(PRODUCER_TABLE + PRODUCER_ENTRY, &registered, sizeof(registered));
	EXPECT_INT(mmapq_producers(obs, ps, MMAPQ_PRODUCERS_MAX), -EBADMSG);
	EXPECT(!memcmp(ps, before, sizeof(ps)), "a failed mmapq_producers wrote into out");
	mmapq_close(obs);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"listed", test_listed},
		{"by_name", test_by_name},
		{"blocked", test_blocked},
		{"damaged", test_damaged},
	};

	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
