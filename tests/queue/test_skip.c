/* SPDX-License-Identifier: MIT */
/*
 * test_skip -- a consumer with the skip policy (mmapq_set_policy,
 * MMAPQ_POLICY_SKIP; mmapq_format.h, "Skipping"): while it is detached the
 * producer never waits for it, it loses the oldest records and counts
 * exactly how many, and the other consumers lose nothing; while it is
 * attached it is waited for as any other, and so is a block consumer behind
 * it; a producer SIGKILLed in the middle of a skip leaves a file that the
 * next attach accepts, with the skip done once and counted once.
 *
 * Every record of the int queue is its own sequence number, so a record
 * handed out under the wrong number, or from overwritten bytes, shows.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmapq.h"
#include "testutil.h"

#define RING 256u /* int queues: 16 records of 16 bytes */
#define CAP 16u
#define TIMEOUT_MS 10000

static char *g_dir;
static char *g_path;

#define EXPECT(cond, ...) TU_EXPECT(g_path, cond, __VA_ARGS__)

static void setup(void)
{
	g_dir = tu_mkdtemp("skip");
	g_path = tu_path(g_dir, "q");
}

static struct mmapq *open_as(enum mmapq_role role, const char *consumer)
{
	struct mmapq_params p = {.path = g_path, .role = role, .size = RING, .max_record = 8,
	                         .format = MMAPQ_FORMAT_INT, .file_mode = 0600, .consumer = consumer,
	                         .sync = MMAPQ_SYNC_BATCH};
	struct mmapq_error e = {{0}};
	struct mmapq *q = NULL;
	int r;

	if (role == MMAPQ_ROLE_OBSERVER)
		p.size = p.max_record = p.format = 0;
	r = mmapq_open(&p, &q, &e);
	EXPECT(r == 0, "open as %d: %s (%s)", (int)role, e.msg, mmapq_strerror(r));
	return q;
}

/* consumer name registered with on_full, then detached */
static void register_as(const char *name, uint32_t on_full)
{
	struct mmapq *c = open_as(MMAPQ_ROLE_CONSUMER, name);
	struct mmapq_policy pol = {.on_full = on_full, .inactive_timeout_s = 7};
	struct mmapq_policy got = {9, 9, 9, 9};
	int r = mmapq_set_policy(c, &pol);

	EXPECT(r == 0, "set_policy %s: %s", name, mmapq_strerror(r));
	EXPECT(mmapq_policy(c, -1, &got) == 0 && got.on_full == on_full &&
	       got.inactive_timeout_s == 7 && got.skipped == 0,
	       "%s's policy read back: on_full %u, timeout %u, skipped %" PRIu64, name, got.on_full,
	       got.inactive_timeout_s, got.skipped);
	mmapq_close(c);
}

/* The policy of the registered consumer name, as an observer reads it. */
static struct mmapq_policy policy_of(const char *name)
{
	struct mmapq *o = open_as(MMAPQ_ROLE_OBSERVER, NULL);
	struct mmapq_consumer_status cs[4];
	struct mmapq_policy pol = {0};
	int n = mmapq_consumers(o, cs, 4), r = -ENOENT;

	for (int i = 0; i < n && i < 4; i++)
		if (!strcmp(cs[i].name, name))
			r = mmapq_policy(o, (int32_t)cs[i].index, &pol);
	EXPECT(r == 0, "policy of %s: %s", name, mmapq_strerror(r));
	mmapq_close(o);
	return pol;
}

/* One record (its value: its sequence number), room asked with deadline 0:
 * the return of mmapq_reserve. */
static int put_one(struct mmapq *p)
{
	int64_t v = (int64_t)mmapq_next_seq(p);
	uint64_t room;
	int r = mmapq_reserve(p, 8, 0, &room);

	if (r < 0)
		return r;
	EXPECT(mmapq_put(p, &v, sizeof(v)) == 0, "put %" PRId64, v);
	EXPECT(mmapq_publish(p) == 1, "publish %" PRId64, v);
	return 0;
}

/* A producer attached, the ring filled (CAP records) by it. */
static struct mmapq *full_producer(void)
{
	struct mmapq *p = open_as(MMAPQ_ROLE_PRODUCER, NULL);

	for (uint32_t i = 0; i < CAP; i++)
		EXPECT(put_one(p) == 0, "put %u", i);
	return p;
}

/* Everything available to c, checked in order from *next (each record its
 * own sequence number), released; how many. */
static uint32_t drain(struct mmapq *c, uint64_t *next)
{
	uint32_t n = 0, total = 0;

	while (mmapq_available(c, 0, &n) == 0 && n > 0) {
		for (uint32_t i = 0; i < n; i++) {
			struct mmapq_record r;
			int64_t v;
			int g = mmapq_get(c, i, &r);

			EXPECT(g == 0, "get %u: %s", i, mmapq_strerror(g));
			memcpy(&v, r.data, sizeof(v));
			EXPECT(r.seq == *next && v == (int64_t)r.seq,
			       "record %" PRIu64 " (value %" PRId64 ") where %" PRIu64 " was next", r.seq, v,
			       *next);
			(*next)++;
		}
		EXPECT(mmapq_release(c, n) == 0, "release %u", n);
		total += n;
	}
	return total;
}

/* ---- cases ------------------------------------------------------------------ */

/* audit (skip) registered and gone, main (block) reading everything: the
 * producer never waits (every reserve with deadline 0 finds room), main
 * gets every record in order, and audit, back, finds its cursor moved past
 * exactly the records it lost, counted, and the rest in order. */
static void test_skip_detached(void)
{
	const uint64_t total = 10 * CAP + 3;
	struct mmapq *m, *p, *a, *o;
	struct mmapq_policy pol;
	uint64_t next = 0, since = 1, waited = 1, anext;
	uint32_t got;

	register_as("audit", MMAPQ_POLICY_SKIP);
	m = open_as(MMAPQ_ROLE_CONSUMER, "main");
	p = open_as(MMAPQ_ROLE_PRODUCER, NULL);
	for (uint64_t i = 0; i < total; i++) {
		int r = put_one(p);

		EXPECT(r == 0, "reserve of record %" PRIu64 " with main caught up: %s", i,
		       mmapq_strerror(r));
		(void)drain(m, &next);
	}
	EXPECT(next == total, "main got %" PRIu64 " of %" PRIu64, next, total);
	o = open_as(MMAPQ_ROLE_OBSERVER, NULL);
	EXPECT(mmapq_blocked(o, &since, &waited, NULL) == 0 && since == 0 && waited == 0,
	       "the producer waited: since %" PRIu64 ", total %" PRIu64 " us", since, waited);
	mmapq_close(o);
	pol = policy_of("audit");
	EXPECT(pol.skipped > 0 && pol.skipped <= total - (CAP - 1) && pol.on_full == MMAPQ_POLICY_SKIP,
	       "audit skipped %" PRIu64 " of %" PRIu64, pol.skipped, total);
	/* back: its cursor where the skips left it, the records from there
	 * in order, none lost uncounted */
	EXPECT(pol.skipped_since_attach == pol.skipped, "lost since audit last ran: %" PRIu64
	       " of %" PRIu64, pol.skipped_since_attach, pol.skipped);
	a = open_as(MMAPQ_ROLE_CONSUMER, "audit");
	EXPECT(mmapq_policy(a, -1, &pol) == 0, "own policy");
	EXPECT(pol.skipped_since_attach == pol.skipped, "audit told %" PRIu64 " lost while down, of %"
	       PRIu64, pol.skipped_since_attach, pol.skipped);
	anext = pol.skipped;
	got = drain(a, &anext);
	EXPECT(pol.skipped + got == total, "audit: skipped %" PRIu64 " + got %u, %" PRIu64 " published",
	       pol.skipped, got, total);
	mmapq_close(a);
	/* down again, nothing lost meanwhile: told 0 next time */
	EXPECT(policy_of("audit").skipped_since_attach == 0, "lost since audit last ran");
	a = open_as(MMAPQ_ROLE_CONSUMER, "audit");
	EXPECT(mmapq_policy(a, -1, &pol) == 0 && pol.skipped_since_attach == 0 &&
	       pol.skipped + got == total, "told %" PRIu64 " (0), total %" PRIu64,
	       pol.skipped_since_attach, pol.skipped);
	mmapq_close(a);
	mmapq_close(p);
	mmapq_close(m);
}

/* An attached skip consumer is waited for: a full ring says -EAGAIN and
 * nothing is skipped; once it detaches, the next reserve skips it. */
static void test_attached_waited(void)
{
	struct mmapq *a, *p;
	int r;

	register_as("audit", MMAPQ_POLICY_SKIP);
	a = open_as(MMAPQ_ROLE_CONSUMER, "audit");
	p = full_producer();
	r = put_one(p);
	EXPECT(r == -EAGAIN, "a full ring, audit attached: %d", r);
	EXPECT(policy_of("audit").skipped == 0, "audit skipped while attached");
	mmapq_close(a);
	r = put_one(p);
	EXPECT(r == 0, "audit detached: %s", mmapq_strerror(r));
	EXPECT(policy_of("audit").skipped == 1, "one record skipped, %" PRIu64,
	       policy_of("audit").skipped);
	mmapq_close(p);
}

/* A block consumer behind with the skip one: the producer waits, and the
 * skip one loses nothing while the wait would not end by it. */
static void test_block_waited(void)
{
	struct mmapq *p;
	int r;

	register_as("audit", MMAPQ_POLICY_SKIP);
	register_as("main", MMAPQ_POLICY_BLOCK);
	p = full_producer();
	r = put_one(p);
	EXPECT(r == -EAGAIN, "main (block) holds the ring: %d", r);
	EXPECT(policy_of("audit").skipped == 0 && policy_of("main").skipped == 0, "skipped");
	mmapq_close(p);
}

/* set_policy refuses what it must. */
static void test_policy_api(void)
{
	struct mmapq *p = open_as(MMAPQ_ROLE_PRODUCER, NULL), *c;
	struct mmapq_policy pol = {.on_full = MMAPQ_POLICY_SKIP}, got;

	EXPECT(mmapq_set_policy(p, &pol) == -EPERM, "producer's set_policy");
	EXPECT(mmapq_policy(p, -1, &got) == -ENOENT, "producer's own policy");
	EXPECT(mmapq_policy(p, 0, &got) == -ENOENT, "entry 0 free");
	c = open_as(MMAPQ_ROLE_CONSUMER, "c");
	pol.on_full = 2;
	EXPECT(mmapq_set_policy(c, &pol) == -EINVAL, "on_full 2");
	EXPECT(mmapq_policy(p, 0, &got) == 0 && got.on_full == MMAPQ_POLICY_BLOCK &&
	       got.inactive_timeout_s == 0, "a new entry blocks, no timeout");
	mmapq_close(c);
	mmapq_close(p);
}

/* A producer that kills itself at a fault point inside a skip (mutex held),
 * with main (block, caught up) attached or not: the next lock (main's,
 * EOWNERDEAD) or attach (alone) finishes the skip; audit, back, finds it
 * done once and counted once, and its records in order. */
static void crash_at(const char *point, bool main_attached)
{
	struct mmapq *p, *m = NULL, *a;
	struct mmapq_policy pol;
	uint64_t next = 0, anext;
	uint32_t got;
	pid_t pid;
	int st;

	register_as("audit", MMAPQ_POLICY_SKIP);
	m = open_as(MMAPQ_ROLE_CONSUMER, "main");
	p = full_producer();
	mmapq_close(p);
	EXPECT(drain(m, &next) == CAP, "main drained");
	if (!main_attached) {
		mmapq_close(m);
		m = NULL;
	}
	pid = tu_fork();
	if (pid == 0) {
		/* a fresh process: fault.c reads MMAPQ_FAULT once, and this one
		 * has passed fault points already */
		char *argv[] = {(char *)"/proc/self/exe", (char *)"--producer-fault", (char *)point,
		                g_path, NULL};

		setenv("MMAPQ_FAULT", point, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	st = tu_wait(pid, TIMEOUT_MS * (int)tu_time_factor());
	EXPECT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "%s: the producer ended with %d", point,
	       tu_exit_code(st));
	if (m) {
		/* the mutex the dead producer held: repaired by main's lock */
		EXPECT(drain(m, &next) == 0, "main: nothing new");
		mmapq_close(m);
	}
	a = open_as(MMAPQ_ROLE_CONSUMER, "audit");
	EXPECT(mmapq_policy(a, -1, &pol) == 0, "own policy");
	EXPECT(pol.skipped <= 1, "%s: skipped %" PRIu64 " (at most the one record)", point,
	       pol.skipped);
	anext = pol.skipped;
	got = drain(a, &anext);
	EXPECT(pol.skipped + got == CAP, "%s: audit skipped %" PRIu64 " + got %u of %u", point,
	       pol.skipped, got, CAP);
	mmapq_close(a);
	/* the file takes a producer again, which skips on */
	p = open_as(MMAPQ_ROLE_PRODUCER, NULL);
	EXPECT(put_one(p) == 0, "a producer after the crash");
	mmapq_close(p);
	unlink(g_path);
}

static void test_crash_mid_skip(void)
{
	static const char *const points[] = {"skip.begun", "skip.position_byte", "skip.synced_byte",
	                                     "skip.stored", "floor.seq"};

	tu_need_faults();
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		crash_at(points[i], true);
		crash_at(points[i], false);
	}
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"skip_detached", test_skip_detached},
		{"attached_waited", test_attached_waited},
		{"block_waited", test_block_waited},
		{"policy_api", test_policy_api},
		{"crash_mid_skip", test_crash_mid_skip},
	};

	if (argc == 4 && !strcmp(argv[1], "--producer-fault")) {
		/* crash_at's producer: one record, through a skip, killed at
		 * the fault point MMAPQ_FAULT names (argv[2]) */
		g_path = argv[3];
		(void)put_one(open_as(MMAPQ_ROLE_PRODUCER, NULL));
		return 3; /* the fault point was not reached */
	}
	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
