/* SPDX-License-Identifier: MIT */
/*
 * test_ring -- the edges of the ring: full and empty, waits with and
 * without deadlines, wake-ups across processes, the dropped counter, role
 * exclusivity, the consumer's read-only slots, positions across reopen.
 *
 * Nothing here sleeps.  Where a test needs the other process to be really
 * blocked in a wait before it acts (so that the wake-up path is what is
 * tested), that process's registration in the header (cond.waiting == 1) is
 * watched through a read-only mapping, spinning with a deadline; a wake-up
 * is then proven by the cond's sequence word having moved.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>


#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define CAP 8u
#define MS 1000000ull
#define CHILD_TIMEOUT_MS 10000

static char *g_dir;
static char *g_path;

#define EXPECT(cond, ...) TU_EXPECT(g_path, cond, __VA_ARGS__)

/* Each case: a directory of its own, the queue file in it not made yet. */
static void setup(void)
{
	g_dir = tu_mkdtemp("ring");
	g_path = tu_path(g_dir, "full.q");
}

/* ---- helpers --------------------------------------------------------------- */

static int try_open(enum mmapq_role role, struct mmapq **q, struct mmapq_error *e)
{
	struct mmapq_params p = {.path = g_path, .role = role, .capacity = CAP, .record_size = 8,
	                         .format = MMAPQ_FORMAT_INT, .file_mode = 0600};
	memset(e, 0, sizeof(*e));
	*q = NULL;
	return mmapq_open(&p, q, e);
}

static struct mmapq *open_or_die(enum mmapq_role role)
{
	struct mmapq_error e;
	struct mmapq *q;
	int r = try_open(role, &q, &e);

	EXPECT(r == 0, "open as %d: %s (%s)", (int)role, e.msg, mmapq_strerror(r));
	return q;
}

static void produce(struct mmapq *q, int64_t from, uint32_t n)
{
	uint32_t nfree;
	int r = mmapq_reserve(q, 0, &nfree);
	EXPECT(r == 0 && nfree >= n, "reserve: %d, nfree %u, need %u", r, nfree, n);
	for (uint32_t i = 0; i < n; i++) {
		int64_t v = from + i;
		r = mmapq_put(q, &v, sizeof(v));
		EXPECT(r == 0, "put %" PRId64 ": %s", v, mmapq_strerror(r));
	}
	r = mmapq_publish(q);
	EXPECT(r == (int)n, "publish returned %d, expected %u", r, n);
}

/* A read-only view of the header, independent of any queue handle. */
static const struct mmapq_header *map_header(void)
{
	int fd = open(g_path, O_RDONLY | O_CLOEXEC);
	void *m;
	if (fd < 0)
		return NULL;
	m = mmap(NULL, sizeof(struct mmapq_header), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	return m == MAP_FAILED ? NULL : m;
}

static uint32_t load32(const uint32_t *w)
{
	return __atomic_load_n(w, __ATOMIC_ACQUIRE);
}

/* Spin (yielding, no sleep) until *w == want or timeout_ms passes. */
static bool spin_until(const uint32_t *w, uint32_t want, int timeout_ms)
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	while (load32(w) != want) {
		if (tu_now_ms() >= end)
			return false;
		sched_yield();
	}
	return true;
}

/* Block until fd reaches EOF (the other side closed it), at most timeout. */
static bool wait_eof(int fd, int timeout_ms)
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	char c;
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		uint64_t now = tu_now_ms();
		if (now >= end)
			return false;
		if (poll(&pf, 1, (int)(end - now)) > 0 && read(fd, &c, 1) <= 0)
			return true;
	}
}

static void child_done(pid_t pid, const char *what)
{
	int st = tu_wait(pid, CHILD_TIMEOUT_MS);
	if (st == -ETIMEDOUT) {
		tu_kill(pid);
		EXPECT(false, "%s child %d did not finish within %d ms", what, pid, CHILD_TIMEOUT_MS);
	}
	EXPECT(tu_exit_code(st) == 0, "%s child %d ended with %d", what, pid, tu_exit_code(st));
}

/* ---- full ---------------------------------------------------------------- */

static void test_reserve_on_full(void)
{
	struct mmapq *q = open_or_die(MMAPQ_ROLE_PRODUCER);
	uint32_t nfree = 12345;
	uint64_t t0, dl;
	int64_t v = 99;
	int r;

	r = mmapq_reserve(q, 0, &nfree);
	EXPECT(r == 0 && nfree == CAP, "fresh queue: reserve %d nfree %u", r, nfree);
	produce(q, 0, CAP);
	EXPECT(mmapq_pending(q) == 0, "pending %u after publish", mmapq_pending(q));
	r = mmapq_put(q, &v, sizeof(v));
	EXPECT(r == -ENOBUFS, "put on a full queue: %d (%s)", r, mmapq_strerror(r));

	nfree = 12345;
	r = mmapq_reserve(q, 0, &nfree);
	EXPECT(r == -EAGAIN, "reserve(deadline 0) on full: %d (%s)", r, mmapq_strerror(r));
	EXPECT(nfree == 12345, "nfree written on failure: %u", nfree);

	t0 = mmapq_now_ns();
	dl = t0 + 50 * MS;
	r = mmapq_reserve(q, dl, &nfree);
	EXPECT(r == -ETIMEDOUT, "reserve(now + 50 ms) on full: %d (%s)", r, mmapq_strerror(r));
	EXPECT(mmapq_now_ns() >= dl, "returned %" PRIu64 " ns before its deadline", dl - mmapq_now_ns());

	/* a deadline in the past is the same as no wait... but says so */
	r = mmapq_reserve(q, 1, &nfree);
	EXPECT(r == -ETIMEDOUT || r == -EAGAIN, "reserve(past deadline): %d", r);

	/* a consumer's release makes room that reserve sees */
	{
		struct mmapq *c = open_or_die(MMAPQ_ROLE_CONSUMER);
		uint32_t n;
		EXPECT(mmapq_available(c, 0, &n) == 0 && n == CAP, "available %u", n);
		EXPECT(mmapq_release(c, 2) == 0, "release");
		r = mmapq_reserve(q, 0, &nfree);
		EXPECT(r == 0 && nfree == 2, "after release(2): reserve %d nfree %u", r, nfree);
		mmapq_close(c);
	}
	mmapq_close(q);
}

static void test_blocking_reserve_wakes_on_release(void)
{
	struct mmapq *q = open_or_die(MMAPQ_ROLE_PRODUCER);
	const struct mmapq_header *h;
	int go[2];
	uint32_t seq_before, nfree = 0;
	pid_t pid;
	int r;

	produce(q, 100, CAP);
	h = map_header();
	EXPECT(h != NULL, "cannot map the header");
	EXPECT(pipe2(go, O_CLOEXEC) == 0, "pipe2");
	seq_before = load32(&h->not_full.seq);
	pid = tu_fork();
	if (pid == 0) {
		struct mmapq *c;
		uint32_t n = 0;
		close(go[1]);
		c = open_or_die(MMAPQ_ROLE_CONSUMER);
		EXPECT(wait_eof(go[0], CHILD_TIMEOUT_MS), "no go from the parent");
		/* consume only once the producer really waits for room */
		EXPECT(spin_until(&h->not_full.waiting, 1, 5000),
		       "the producer never registered as waiting on not_full");
		EXPECT(mmapq_available(c, 0, &n) == 0 && n == CAP, "available: n = %u", n);
		for (uint32_t i = 0; i < 3; i++) {
			struct mmapq_record rec;
			int64_t v;
			EXPECT(mmapq_get(c, i, &rec) == 0, "get %u", i);
			memcpy(&v, rec.data, sizeof(v));
			EXPECT(v == 100 + (int64_t)i && rec.seq == i, "record %u: seq %" PRIu64 " value %" PRId64,
			       i, rec.seq, v);
		}
		EXPECT(mmapq_release(c, 3) == 0, "release");
		mmapq_close(c);
		_exit(0);
	}
	close(go[0]);
	close(go[1]); /* go */
	r = mmapq_reserve(q, mmapq_now_ns() + 10000 * MS, &nfree);
	if (r != 0 || nfree == 0)
		kill(pid, SIGKILL);
	EXPECT(r == 0, "blocking reserve returned %d (%s)", r, mmapq_strerror(r));
	EXPECT(nfree > 0, "blocking reserve returned 0 with nfree 0");
	EXPECT(nfree == 3, "nfree %u after the consumer released 3", nfree);
	EXPECT(load32(&h->not_full.seq) != seq_before, "reserve returned but nobody signalled not_full");
	child_done(pid, "consumer");
	produce(q, 108, 3);
	munmap((void *)h, sizeof(*h));
	mmapq_close(q);
}

static void test_count_dropped(void)
{
	struct mmapq *q = open_or_die(MMAPQ_ROLE_PRODUCER);
	struct mmapq_params op = {.path = g_path, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_error e;
	struct mmapq_status st;
	struct mmapq *o = NULL;

	EXPECT(mmapq_status(q, &st) == 0 && st.producer.dropped == 0, "dropped %" PRIu64, st.producer.dropped);
	mmapq_count_dropped(q, 5);
	mmapq_count_dropped(q, 2);
	mmapq_count_bad_input(q, 3);
	EXPECT(mmapq_status(q, &st) == 0 && st.producer.dropped == 7 && st.producer.bad_input == 3,
	       "dropped %" PRIu64 " bad_input %" PRIu64, st.producer.dropped, st.producer.bad_input);
	/* another process's view */
	EXPECT(mmapq_open(&op, &o, &e) == 0, "observer: %s", e.msg);
	EXPECT(mmapq_status(o, &st) == 0 && st.producer.dropped == 7 && st.producer.attached &&
	       st.producer.pid == getpid(), "observer sees dropped %" PRIu64 " attached %d pid %d",
	       st.producer.dropped, st.producer.attached, st.producer.pid);
	mmapq_close(q);
	/* persistent in the file */
	EXPECT(mmapq_status(o, &st) == 0 && st.producer.dropped == 7 && !st.producer.attached,
	       "after close: dropped %" PRIu64 " attached %d", st.producer.dropped, st.producer.attached);
	mmapq_close(o);
	/* a consumer cannot count drops */
	q = open_or_die(MMAPQ_ROLE_CONSUMER);
	mmapq_count_dropped(q, 100);
	EXPECT(mmapq_status(q, &st) == 0 && st.producer.dropped == 7 && st.consumer.dropped == 0,
	       "consumer's count_dropped changed something: %" PRIu64 "/%" PRIu64, st.producer.dropped,
	       st.consumer.dropped);
	mmapq_close(q);
}

/* ---- empty ------------------------------------------------------------- */

static void test_available_on_empty(void)
{
	struct mmapq *c = open_or_die(MMAPQ_ROLE_CONSUMER);
	uint32_t n = 777;
	uint64_t dl;
	struct mmapq_record rec;
	int r;

	r = mmapq_available(c, 0, &n);
	EXPECT(r == -EAGAIN, "available(deadline 0) on empty: %d (%s)", r, mmapq_strerror(r));
	EXPECT(n == 777, "navail written on failure: %u", n);
	dl = mmapq_now_ns() + 50 * MS;
	r = mmapq_available(c, dl, &n);
	EXPECT(r == -ETIMEDOUT, "available(now + 50 ms) on empty: %d (%s)", r, mmapq_strerror(r));
	EXPECT(mmapq_now_ns() >= dl, "returned before its deadline");
	EXPECT(mmapq_get(c, 0, &rec) == -ENOENT, "get on empty");
	EXPECT(mmapq_release(c, 1) == -EINVAL, "release(1) on empty");
	EXPECT(mmapq_release(c, 0) == 0, "release(0)");
	/* the wrong role's calls */
	EXPECT(mmapq_put(c, &n, 8) == -EPERM, "consumer put");
	EXPECT(mmapq_reserve(c, 0, &n) == -EPERM, "consumer reserve");
	EXPECT(mmapq_publish(c) == -EPERM, "consumer publish");
	mmapq_close(c);
	c = open_or_die(MMAPQ_ROLE_PRODUCER);
	EXPECT(mmapq_available(c, 0, &n) == -EPERM, "producer available");
	EXPECT(mmapq_release(c, 0) == -EPERM, "producer release");
	EXPECT(mmapq_get(c, 0, &rec) == -EPERM, "producer get");
	mmapq_close(c);
}

static void test_waiting_consumer_wakes_on_publish(void)
{
	struct mmapq *c = open_or_die(MMAPQ_ROLE_CONSUMER);
	const struct mmapq_header *h = map_header();
	uint32_t seq_before, n = 0;
	int go[2];
	pid_t pid;
	int r;

	EXPECT(h != NULL, "cannot map the header");
	EXPECT(pipe2(go, O_CLOEXEC) == 0, "pipe2");
	seq_before = load32(&h->consumers[0].not_empty.seq);
	pid = tu_fork();
	if (pid == 0) {
		struct mmapq *p;
		uint32_t nfree;
		close(go[1]);
		p = open_or_die(MMAPQ_ROLE_PRODUCER);
		EXPECT(wait_eof(go[0], CHILD_TIMEOUT_MS), "no go from the parent");
		EXPECT(spin_until(&h->consumers[0].not_empty.waiting, 1, 5000),
		       "the consumer never registered as waiting on not_empty");
		EXPECT(mmapq_reserve(p, 0, &nfree) == 0 && nfree == CAP, "reserve");
		for (int64_t v = 0; v < 3; v++)
			EXPECT(mmapq_put(p, &v, sizeof(v)) == 0, "put");
		EXPECT(mmapq_publish(p) == 3, "publish");
		mmapq_close(p);
		_exit(0);
	}
	close(go[0]);
	close(go[1]);
	r = mmapq_available(c, mmapq_now_ns() + 10000 * MS, &n);
	if (r != 0 || n == 0)
		kill(pid, SIGKILL);
	EXPECT(r == 0, "blocking available returned %d (%s)", r, mmapq_strerror(r));
	EXPECT(n > 0, "blocking available returned 0 with nothing available");
	EXPECT(load32(&h->consumers[0].not_empty.seq) != seq_before, "available returned but nobody signalled not_empty");
	child_done(pid, "producer");
	for (uint32_t i = 0; i < n; i++) {
		struct mmapq_record rec;
		int64_t v;
		EXPECT(mmapq_get(c, i, &rec) == 0, "get %u", i);
		memcpy(&v, rec.data, sizeof(v));
		EXPECT(rec.seq == i && v == (int64_t)i, "record %u: seq %" PRIu64 " value %" PRId64, i, rec.seq, v);
	}
	EXPECT(mmapq_release(c, n) == 0, "release");
	munmap((void *)h, sizeof(*h));
	mmapq_close(c);
}

/* ---- roles ------------------------------------------------------------- */

/* A child that holds role until hold's write end closes. */
static pid_t holder(enum mmapq_role role, int *hold_w)
{
	int ready[2], hold[2];
	char c;
	pid_t pid;

	EXPECT(pipe2(ready, O_CLOEXEC) == 0 && pipe2(hold, O_CLOEXEC) == 0, "pipe2");
	pid = tu_fork();
	if (pid == 0) {
		struct mmapq *q;
		close(ready[0]);
		close(hold[1]);
		q = open_or_die(role);
		EXPECT(write(ready[1], "R", 1) == 1, "write");
		EXPECT(wait_eof(hold[0], CHILD_TIMEOUT_MS), "never released");
		mmapq_close(q);
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	{
		struct pollfd pf = {.fd = ready[0], .events = POLLIN};
		EXPECT(poll(&pf, 1, CHILD_TIMEOUT_MS) == 1 && read(ready[0], &c, 1) == 1 && c == 'R',
		       "holder child %d did not attach", pid);
	}
	close(ready[0]);
	*hold_w = hold[1];
	return pid;
}

static void expect_busy(enum mmapq_role role, pid_t holder_pid)
{
	struct mmapq_error e;
	struct mmapq *q;
	char want[32];
	int r = try_open(role, &q, &e);
	if (r == 0)
		mmapq_close(q);
	snprintf(want, sizeof(want), "pid %d", (int)holder_pid);
	EXPECT(r == -EBUSY, "second %s: %d (%s) \"%s\"", role == MMAPQ_ROLE_PRODUCER ? "producer" : "consumer",
	       r, mmapq_strerror(r), e.msg);
	EXPECT(strstr(e.msg, want) && strstr(e.msg, g_path), "-EBUSY message does not name \"%s\" and the file: \"%s\"",
	       want, e.msg);
}

static void test_roles_are_exclusive(void)
{
	int hold_w;
	struct mmapq *q;
	struct mmapq_status st;
	pid_t pid;

	/* held by a live process: refused, naming it; an observer is welcome */
	pid = holder(MMAPQ_ROLE_PRODUCER, &hold_w);
	expect_busy(MMAPQ_ROLE_PRODUCER, pid);
	expect_busy(MMAPQ_ROLE_PRODUCER, pid); /* and again: a refusal leaves no trace */
	{
		struct mmapq_params op = {.path = g_path, .role = MMAPQ_ROLE_OBSERVER};
		struct mmapq_error e;
		struct mmapq *o;
		EXPECT(mmapq_open(&op, &o, &e) == 0, "observer: %s", e.msg);
		EXPECT(mmapq_status(o, &st) == 0 && st.producer.attached && st.producer.pid == pid &&
		       !st.consumer.attached, "status: producer attached %d pid %d", st.producer.attached,
		       st.producer.pid);
		mmapq_close(o);
	}
	/* the other role is free */
	q = open_or_die(MMAPQ_ROLE_CONSUMER);
	mmapq_close(q);
	/* after a clean close the role is free */
	close(hold_w);
	child_done(pid, "producer holder");
	q = open_or_die(MMAPQ_ROLE_PRODUCER);
	EXPECT(mmapq_status(q, &st) == 0 && st.producer.pid == getpid(), "pid %d", st.producer.pid);
	mmapq_close(q);

	/* after SIGKILL too (the kernel drops the dead process's locks) */
	pid = holder(MMAPQ_ROLE_PRODUCER, &hold_w);
	expect_busy(MMAPQ_ROLE_PRODUCER, pid);
	tu_kill(pid);
	close(hold_w);
	q = open_or_die(MMAPQ_ROLE_PRODUCER);
	mmapq_close(q);

	/* the same for the consumer role */
	pid = holder(MMAPQ_ROLE_CONSUMER, &hold_w);
	expect_busy(MMAPQ_ROLE_CONSUMER, pid);
	tu_kill(pid);
	close(hold_w);
	q = open_or_die(MMAPQ_ROLE_CONSUMER);
	/* and a second consumer in the same process is refused as well */
	expect_busy(MMAPQ_ROLE_CONSUMER, getpid());
	mmapq_close(q);
}

/* ---- the consumer cannot write slots ------------------------------------------ */

static void test_consumer_slots_read_only(void)
{
	struct mmapq *q = open_or_die(MMAPQ_ROLE_PRODUCER);
	pid_t pid;
	int st;

	produce(q, 42, 1);
	mmapq_close(q);
	pid = tu_fork();
	if (pid == 0) {
		struct mmapq *c = open_or_die(MMAPQ_ROLE_CONSUMER);
		struct mmapq_record rec;
		uint32_t n;
		EXPECT(mmapq_available(c, 0, &n) == 0 && n == 1, "available");
		EXPECT(mmapq_get(c, 0, &rec) == 0, "get");
		signal(SIGSEGV, SIG_DFL); /* no sanitizer report: just die */
		*(volatile char *)(uintptr_t)rec.data = 'X';
		_exit(0); /* the write went through: wrong */
	}
	st = tu_wait(pid, CHILD_TIMEOUT_MS);
	if (st == -ETIMEDOUT)
		tu_kill(pid);
	EXPECT(st != -ETIMEDOUT && WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
	       "a consumer writing a slot should die of SIGSEGV; wait status 0x%x (exit code %d)", st,
	       tu_exit_code(st));
	/* and the record is intact */
	{
		struct mmapq *c = open_or_die(MMAPQ_ROLE_CONSUMER);
		struct mmapq_record rec;
		uint32_t n;
		int64_t v;
		EXPECT(mmapq_available(c, 0, &n) == 0 && n == 1, "available");
		EXPECT(mmapq_get(c, 0, &rec) == 0, "get");
		memcpy(&v, rec.data, sizeof(v));
		EXPECT(v == 42, "value %" PRId64, v);
		mmapq_close(c);
	}
}

/* ---- positions survive close and reopen ------------------------------------- */

static void test_positions_persist(void)
{
	struct mmapq *p = open_or_die(MMAPQ_ROLE_PRODUCER);
	struct mmapq *c = open_or_die(MMAPQ_ROLE_CONSUMER);
	struct mmapq_status st;
	uint32_t n;

	produce(p, 0, 5);
	produce(p, 5, 3);
	EXPECT(mmapq_available(c, 0, &n) == 0 && n == 8, "available %u", n);
	EXPECT(mmapq_release(c, 4) == 0, "release 4");
	{
		uint32_t nfree;
		EXPECT(mmapq_reserve(p, 0, &nfree) == 0, "reserve");
		int64_t v;
		for (v = 8; v < 10; v++)
			EXPECT(mmapq_put(p, &v, sizeof(v)) == 0, "put %" PRId64, v);
		EXPECT(mmapq_publish(p) == 2, "publish");
	}
	mmapq_close(c);
	mmapq_close(p);

	c = open_or_die(MMAPQ_ROLE_CONSUMER);
	EXPECT(mmapq_status(c, &st) == 0 && st.head == 4 && st.tail == 10, "head %" PRIu64 " tail %" PRIu64,
	       st.head, st.tail);
	EXPECT(mmapq_available(c, 0, &n) == 0 && n == 6, "after reopen: available %u, want 6", n);
	for (uint32_t i = 0; i < n; i++) {
		struct mmapq_record rec;
		int64_t v;
		EXPECT(mmapq_get(c, i, &rec) == 0, "get %u", i);
		memcpy(&v, rec.data, sizeof(v));
		EXPECT(rec.seq == 4 + i && v == 4 + (int64_t)i, "record %u: seq %" PRIu64 " value %" PRId64, i,
		       rec.seq, v);
	}
	/* released nothing: reopening again gives the same records */
	mmapq_close(c);
	c = open_or_die(MMAPQ_ROLE_CONSUMER);
	EXPECT(mmapq_available(c, 0, &n) == 0 && n == 6, "second reopen: available %u", n);
	EXPECT(mmapq_release(c, 6) == 0, "release 6");
	mmapq_close(c);
	/* and the producer carries on at 10 */
	p = open_or_die(MMAPQ_ROLE_PRODUCER);
	produce(p, 10, 1);
	mmapq_close(p);
	c = open_or_die(MMAPQ_ROLE_CONSUMER);
	{
		struct mmapq_record rec;
		int64_t v;
		EXPECT(mmapq_available(c, 0, &n) == 0 && n == 1, "available %u", n);
		EXPECT(mmapq_get(c, 0, &rec) == 0, "get");
		memcpy(&v, rec.data, sizeof(v));
		EXPECT(rec.seq == 10 && v == 10, "seq %" PRIu64 " value %" PRId64, rec.seq, v);
	}
	EXPECT(mmapq_status(c, &st) == 0 && st.producer.attaches == 2 && st.consumer.attaches == 4,
	       "attaches %" PRIu64 "/%" PRIu64, st.producer.attaches, st.consumer.attaches);
	mmapq_close(c);
}

/* Unpublished records are published by close. */
static void test_close_publishes(void)
{
	struct mmapq *p = open_or_die(MMAPQ_ROLE_PRODUCER);
	struct mmapq *c;
	uint32_t nfree, n;
	int64_t v = 5;

	EXPECT(mmapq_reserve(p, 0, &nfree) == 0, "reserve");
	EXPECT(mmapq_put(p, &v, sizeof(v)) == 0 && mmapq_pending(p) == 1, "put");
	mmapq_close(p);
	c = open_or_die(MMAPQ_ROLE_CONSUMER);
	EXPECT(mmapq_available(c, 0, &n) == 0 && n == 1, "available %u after close with 1 pending", n);
	mmapq_close(c);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"reserve_on_full", test_reserve_on_full},
		{"blocking_reserve_wakes_on_release", test_blocking_reserve_wakes_on_release},
		{"count_dropped", test_count_dropped},
		{"available_on_empty", test_available_on_empty},
		{"waiting_consumer_wakes_on_publish", test_waiting_consumer_wakes_on_publish},
		{"roles_are_exclusive", test_roles_are_exclusive},
		{"consumer_slots_read_only", test_consumer_slots_read_only},
		{"positions_persist", test_positions_persist},
		{"close_publishes", test_close_publishes},
	};

	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
