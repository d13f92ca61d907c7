/* SPDX-License-Identifier: MIT */
/*
 * test_blocked -- the producer's wait for room as the file shows it
 * (mmapq_blocked; struct mmapq_producer.blocked_usec and
 * blocked_total_usec): set when a reserve has to wait, seen by an observer
 * in another process while it waits, the total growing during the wait,
 * cleared when room is found; a producer waiting a slice at a time is in
 * one wait; a look (deadline 0) begins none; a producer that died waiting
 * leaves no wait behind; the consumer that holds the oldest record kept.
 *
 * Nothing sleeps: the other process's state is watched through the header
 * (an observer's mmapq_blocked, or a read-only mapping), spinning with a
 * deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define RING 128u /* int queues: 8 records of 16 bytes */
#define CAP 8u
#define MS 1000000ull
#define TIMEOUT_MS 10000

static char *g_dir;
static char *g_path;

#define EXPECT(cond, ...) TU_EXPECT(g_path, cond, __VA_ARGS__)

static void setup(void)
{
	g_dir = tu_mkdtemp("blocked");
	g_path = tu_path(g_dir, "q");
}

static struct mmapq *open_as(enum mmapq_role role, const char *consumer)
{
	struct mmapq_params p = {.path = g_path, .role = role, .size = RING, .max_record = 8,
	                         .format = MMAPQ_FORMAT_INT, .file_mode = 0600, .consumer = consumer};
	struct mmapq_error e = {{0}};
	struct mmapq *q = NULL;
	int r;

	if (role == MMAPQ_ROLE_OBSERVER)
		p.size = p.max_record = p.format = 0;
	r = mmapq_open(&p, &q, &e);
	EXPECT(r == 0, "open as %d: %s (%s)", (int)role, e.msg, mmapq_strerror(r));
	return q;
}

/* The ring full: CAP records published by a producer that then closes. */
static void fill(void)
{
	struct mmapq *q = open_as(MMAPQ_ROLE_PRODUCER, NULL);
	uint64_t room;

	EXPECT(mmapq_reserve(q, 8, 0, &room) == 0 && room == RING, "room %" PRIu64, room);
	for (int64_t v = 0; v < CAP; v++)
		EXPECT(mmapq_put(q, &v, sizeof(v)) == 0, "put %" PRId64, v);
	EXPECT(mmapq_publish(q) == (int)CAP, "publish");
	mmapq_close(q);
}

static uint64_t realtime_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct blocked {
	uint64_t since, total;
	int32_t consumer;
};

static struct blocked blocked_of(struct mmapq *q)
{
	struct blocked b = {1, 1, -2};

	EXPECT(mmapq_blocked(q, &b.since, &b.total, &b.consumer) == 0, "mmapq_blocked");
	return b;
}

/* Spin (yielding) until the observer o sees the producer waiting (want
 * true) or not, and, with min_total, a total of at least that. */
static struct blocked until_blocked(struct mmapq *o, bool want, uint64_t min_total)
{
	uint64_t end = tu_now_ms() + (uint64_t)TIMEOUT_MS * tu_time_factor();
	struct blocked b;

	for (;;) {
		b = blocked_of(o);
		if (!!b.since == want && b.total >= min_total)
			return b;
		EXPECT(tu_now_ms() < end, "the producer %s waiting (total %" PRIu64 " us) within %d ms",
		       want ? "never seen" : "still", b.total, TIMEOUT_MS);
		sched_yield();
	}
}

/* A child that waits for room as the producer, up to 10 s: exit 0 if it
 * found room and then saw itself waiting no more. */
static pid_t waiting_producer(void)
{
	pid_t pid = tu_fork();

	if (pid == 0) {
		struct mmapq *q = open_as(MMAPQ_ROLE_PRODUCER, NULL);
		uint64_t room;
		int r = mmapq_reserve(q, 8, mmapq_now_ns() + TIMEOUT_MS * MS, &room);
		struct blocked b;

		EXPECT(r == 0, "reserve: %s", mmapq_strerror(r));
		b = blocked_of(q);
		EXPECT(b.since == 0, "still waiting after room was found: since %" PRIu64, b.since);
		mmapq_close(q);
		_exit(0);
	}
	return pid;
}

static void child_done(pid_t pid)
{
	int st = tu_wait(pid, TIMEOUT_MS * (int)tu_time_factor());

	if (st == -ETIMEDOUT)
		tu_kill(pid);
	EXPECT(st != -ETIMEDOUT && tu_exit_code(st) == 0, "child %d: %d", pid, tu_exit_code(st));
}

/* ---- cases ------------------------------------------------------------------ */

/* Another process waits for room behind consumer "slow": an observer sees
 * since it began, the total growing while it lasts, and slow as the one
 * holding it; a release ends it, and the total keeps what it counted. */
static void test_wait_seen(void)
{
	struct mmapq *c = open_as(MMAPQ_ROLE_CONSUMER, "slow"), *o;
	struct blocked b, during, after;
	uint64_t before;
	uint32_t n = 0;
	pid_t pid;

	fill();
	o = open_as(MMAPQ_ROLE_OBSERVER, NULL);
	b = blocked_of(o);
	EXPECT(b.since == 0 && b.total == 0 && b.consumer == 0,
	       "before any wait: since %" PRIu64 ", total %" PRIu64 ", consumer %d", b.since, b.total,
	       b.consumer);
	before = realtime_usec();
	pid = waiting_producer();
	b = until_blocked(o, true, 0);
	EXPECT(b.since >= before && b.since <= realtime_usec(), "since %" PRIu64 ", the wait began"
	       " after %" PRIu64, b.since, before);
	EXPECT(b.consumer == 0, "held back by entry %d, slow is 0", b.consumer);
	/* the total grows while the wait lasts (a sleep is at most 0.5 s) */
	during = until_blocked(o, true, 1);
	EXPECT(during.since == b.since, "one wait: since %" PRIu64 " then %" PRIu64, b.since,
	       during.since);
	EXPECT(during.total <= realtime_usec() - before, "total %" PRIu64 " us in %" PRIu64 " us",
	       during.total, realtime_usec() - before);
	EXPECT(mmapq_available(c, 0, &n) == 0 && n == CAP, "available %u", n);
	EXPECT(mmapq_release(c, 1) == 0, "release");
	child_done(pid);
	after = blocked_of(o);
	EXPECT(after.since == 0, "still waiting after the producer found room: %" PRIu64, after.since);
	EXPECT(after.total >= during.total && after.total <= realtime_usec() - before,
	       "total %" PRIu64 " after the wait, %" PRIu64 " during it", after.total, during.total);
	mmapq_close(o);
	mmapq_close(c);
}

/* Reserves that give up at their deadline are one wait, which a look
 * (deadline 0) neither begins nor ends; room found ends it; the total
 * counts the slices. */
static void test_slices_one_wait(void)
{
	struct mmapq *c = open_as(MMAPQ_ROLE_CONSUMER, "slow"), *p;
	struct blocked first, b;
	uint64_t room;
	uint32_t n;
	int r;

	fill();
	p = open_as(MMAPQ_ROLE_PRODUCER, NULL);
	r = mmapq_reserve(p, 8, 0, &room);
	EXPECT(r == -EAGAIN, "a look at a full ring: %d", r);
	b = blocked_of(p);
	EXPECT(b.since == 0 && b.total == 0, "a look began a wait: since %" PRIu64 ", total %" PRIu64,
	       b.since, b.total);
	r = mmapq_reserve(p, 8, mmapq_now_ns() + 50 * MS, &room);
	EXPECT(r == -ETIMEDOUT, "a slice: %d", r);
	first = blocked_of(p);
	EXPECT(first.since && first.total >= 40000, "after a slice of 50 ms: since %" PRIu64
	       ", total %" PRIu64 " us", first.since, first.total);
	r = mmapq_reserve(p, 8, mmapq_now_ns() + 50 * MS, &room);
	EXPECT(r == -ETIMEDOUT, "a second slice: %d", r);
	r = mmapq_reserve(p, 8, 0, &room);
	EXPECT(r == -EAGAIN, "a look between slices: %d", r);
	b = blocked_of(p);
	EXPECT(b.since == first.since && b.total >= first.total + 40000,
	       "after two slices and a look: since %" PRIu64 " (first %" PRIu64 "), total %" PRIu64,
	       b.since, first.since, b.total);
	EXPECT(mmapq_available(c, 0, &n) == 0 && mmapq_release(c, 2) == 0, "release");
	r = mmapq_reserve(p, 8, 0, &room);
	EXPECT(r == 0 && room == 32, "room after the release: %d, %" PRIu64, r, room);
	first = b;
	b = blocked_of(p);
	EXPECT(b.since == 0 && b.total >= first.total, "room found: since %" PRIu64 ", total %" PRIu64,
	       b.since, b.total);
	/* a wait a put ends: no reserve needed to find the room */
	{
		int64_t v = 1;

		EXPECT(mmapq_put(p, &v, sizeof(v)) == 0 && mmapq_put(p, &v, sizeof(v)) == 0, "put");
		EXPECT(mmapq_reserve(p, 8, mmapq_now_ns() + 20 * MS, &room) == -ETIMEDOUT, "slice");
		EXPECT(blocked_of(p).since, "no wait after a slice");
		EXPECT(mmapq_release(c, 1) == 0, "release");
		EXPECT(mmapq_put(p, &v, sizeof(v)) == 0, "put into the room released");
		EXPECT(blocked_of(p).since == 0, "a put found room, the wait goes on");
	}
	mmapq_close(p);
	mmapq_close(c);
}

/* A producer killed while it waits: observers see no wait (no producer is
 * attached), and the next producer's attach clears the word it left. */
static void test_dead_waiter(void)
{
	struct mmapq *c = open_as(MMAPQ_ROLE_CONSUMER, "slow"), *o, *p;
	const struct mmapq_header *h;
	struct blocked b;
	pid_t pid;
	int fd;

	fill();
	o = open_as(MMAPQ_ROLE_OBSERVER, NULL);
	pid = waiting_producer();
	until_blocked(o, true, 0);
	tu_kill(pid);
	fd = open(g_path, O_RDONLY | O_CLOEXEC);
	EXPECT(fd >= 0, "open");
	h = mmap(NULL, sizeof(*h), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	EXPECT(h != MAP_FAILED, "mmap");
	EXPECT(__atomic_load_n(&h->producers[0].blocked_usec, __ATOMIC_RELAXED) != 0,
	       "the dead producer's wait is not in the file");
	b = blocked_of(o);
	EXPECT(b.since == 0, "a dead producer seen waiting since %" PRIu64, b.since);
	p = open_as(MMAPQ_ROLE_PRODUCER, NULL);
	EXPECT(__atomic_load_n(&h->producers[0].blocked_usec, __ATOMIC_RELAXED) == 0,
	       "the next producer left the dead one's wait in the file");
	mmapq_close(p);
	munmap((void *)h, sizeof(*h));
	mmapq_close(o);
	mmapq_close(c);
}

/* The consumer that holds the oldest record kept: the lowest cursor on
 * disk, of equal ones the furthest behind; -1 with none registered. */
static void test_holder(void)
{
	struct mmapq *a = open_as(MMAPQ_ROLE_CONSUMER, "a"), *b = open_as(MMAPQ_ROLE_CONSUMER, "b");
	struct mmapq_params rp = {.path = g_path, .role = MMAPQ_ROLE_CONSUMER};
	struct mmapq_error e;
	struct mmapq *o;
	uint32_t n;

	fill();
	o = open_as(MMAPQ_ROLE_OBSERVER, NULL);
	EXPECT(blocked_of(o).consumer == 0, "a and b at 0: a (entry 0), got %d", blocked_of(o).consumer);
	EXPECT(mmapq_available(a, 0, &n) == 0 && mmapq_release(a, 3) == 0, "a releases 3");
	EXPECT(blocked_of(o).consumer == 1, "b behind: entry 1, got %d", blocked_of(o).consumer);
	EXPECT(mmapq_available(b, 0, &n) == 0 && mmapq_release(b, 5) == 0, "b releases 5");
	EXPECT(blocked_of(o).consumer == 0, "a behind: entry 0, got %d", blocked_of(o).consumer);
	mmapq_close(a);
	mmapq_close(b);
	rp.consumer = "a";
	EXPECT(mmapq_consumer_remove(&rp, &e) >= 0, "remove a: %s", e.msg);
	EXPECT(blocked_of(o).consumer == 1, "b alone: entry 1, got %d", blocked_of(o).consumer);
	rp.consumer = "b";
	EXPECT(mmapq_consumer_remove(&rp, &e) >= 0, "remove b: %s", e.msg);
	EXPECT(blocked_of(o).consumer == -1, "none registered: -1, got %d", blocked_of(o).consumer);
	mmapq_close(o);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"wait_seen", test_wait_seen},
		{"slices_one_wait", test_slices_one_wait},
		{"dead_waiter", test_dead_waiter},
		{"holder", test_holder},
	};

	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
