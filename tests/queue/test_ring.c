/* SPDX-License-Identifier: MIT */
/*
 * test_ring -- the edges of the ring of frames: full and empty, exactly
 * full, padding at the ring's end with records of every length so that the
 * wrap point lands everywhere, a record of max_record, the room that
 * mmapq_reserve promises (any records whose frames add up to at most *room
 * fit), -ENOBUFS exactly when a record does not fit, claim and commit (a
 * commit shorter than the claim, a claim forgotten), waits with and
 * without deadlines, wake-ups across processes, the dropped counter, role
 * exclusivity, the consumer's read-only ring, positions across reopen,
 * what a consumer consumed (released) against its position, what it
 * reports of its output's health.
 *
 * The byte-level cases hold the library against a model of the ring kept
 * by the test (model_put: where each frame goes, whether it fits, where
 * padding goes), and look at the frames themselves through a read-only
 * mapping of the file.
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

#define RING 128u   /* int queues: 8 records of 16 bytes */
#define CAP 8u
#define MS 1000000ull
#define CHILD_TIMEOUT_MS 10000

#define EXPECT_INT(a, b) TU_EXPECT_INT(g_path, a, b)

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
	struct mmapq_params p = {.path = g_path, .role = role, .size = RING, .max_record = 8,
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
	uint64_t room;
	int r = mmapq_reserve(q, 8, 0, &room);
	EXPECT(r == 0 && room >= n * mmapq_frame_size(8), "reserve: %d, room %" PRIu64 ", need %u records",
	       r, room, n);
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
	uint64_t nfree = 12345;
	uint64_t t0, dl;
	int64_t v = 99;
	void *buf = NULL;
	int r;

	r = mmapq_reserve(q, 8, 0, &nfree);
	EXPECT(r == 0 && nfree == RING, "fresh queue: reserve %d room %" PRIu64, r, nfree);
	produce(q, 0, CAP);
	EXPECT(mmapq_pending(q) == 0, "pending %u after publish", mmapq_pending(q));
	r = mmapq_put(q, &v, sizeof(v));
	EXPECT(r == -ENOBUFS, "put on a full queue: %d (%s)", r, mmapq_strerror(r));
	r = mmapq_put_many(q, &v, sizeof(v), 1);
	EXPECT(r == -ENOBUFS, "put_many on a full queue: %d (%s)", r, mmapq_strerror(r));
	r = mmapq_claim(q, sizeof(v), &buf);
	EXPECT(r == -ENOBUFS && !buf, "claim on a full queue: %d (%s)", r, mmapq_strerror(r));

	nfree = 12345;
	r = mmapq_reserve(q, 8, 0, &nfree);
	EXPECT(r == -EAGAIN, "reserve(deadline 0) on full: %d (%s)", r, mmapq_strerror(r));
	EXPECT(nfree == 12345, "room written on failure: %" PRIu64, nfree);
	r = mmapq_reserve(q, 9, 0, &nfree);
	EXPECT(r == -EMSGSIZE, "reserve of 9 bytes in an int queue: %d (%s)", r, mmapq_strerror(r));

	t0 = mmapq_now_ns();
	dl = t0 + 50 * MS;
	r = mmapq_reserve(q, 8, dl, &nfree);
	EXPECT(r == -ETIMEDOUT, "reserve(now + 50 ms) on full: %d (%s)", r, mmapq_strerror(r));
	EXPECT(mmapq_now_ns() >= dl, "returned %" PRIu64 " ns before its deadline", dl - mmapq_now_ns());

	/* a deadline in the past is the same as no wait... but says so */
	r = mmapq_reserve(q, 8, 1, &nfree);
	EXPECT(r == -ETIMEDOUT || r == -EAGAIN, "reserve(past deadline): %d", r);

	/* a consumer's release makes room that reserve sees */
	{
		struct mmapq *c = open_or_die(MMAPQ_ROLE_CONSUMER);
		uint32_t n;
		EXPECT(mmapq_available(c, 0, &n) == 0 && n == CAP, "available %u", n);
		EXPECT(mmapq_release(c, 2) == 0, "release");
		r = mmapq_reserve(q, 8, 0, &nfree);
		EXPECT(r == 0 && nfree == 2 * 16, "after release(2): reserve %d room %" PRIu64, r, nfree);
		mmapq_close(c);
	}
	mmapq_close(q);
}

static void test_blocking_reserve_wakes_on_release(void)
{
	struct mmapq *q = open_or_die(MMAPQ_ROLE_PRODUCER);
	const struct mmapq_header *h;
	int go[2];
	uint32_t seq_before;
	uint64_t nfree = 0;
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
	r = mmapq_reserve(q, 8, mmapq_now_ns() + 10000 * MS, &nfree);
	if (r != 0 || nfree == 0)
		kill(pid, SIGKILL);
	EXPECT(r == 0, "blocking reserve returned %d (%s)", r, mmapq_strerror(r));
	EXPECT(nfree == 3 * 16, "room %" PRIu64 " after the consumer released 3 records", nfree);
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
	{
		uint64_t room;
		void *buf = NULL;
		EXPECT(mmapq_put(c, &room, 8) == -EPERM, "consumer put");
		EXPECT(mmapq_put_many(c, &room, 8, 1) == -EPERM, "consumer put_many");
		EXPECT(mmapq_reserve(c, 8, 0, &room) == -EPERM, "consumer reserve");
		EXPECT(mmapq_claim(c, 8, &buf) == -EPERM && !buf, "consumer claim");
		EXPECT(mmapq_commit(c, 8) == -EPERM, "consumer commit");
		EXPECT(mmapq_publish(c) == -EPERM, "consumer publish");
	}
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
		uint64_t nfree;
		close(go[1]);
		p = open_or_die(MMAPQ_ROLE_PRODUCER);
		EXPECT(wait_eof(go[0], CHILD_TIMEOUT_MS), "no go from the parent");
		EXPECT(spin_until(&h->consumers[0].not_empty.waiting, 1, 5000),
		       "the consumer never registered as waiting on not_empty");
		EXPECT(mmapq_reserve(p, 8, 0, &nfree) == 0 && nfree == RING, "reserve");
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

/* ---- the consumer cannot write the ring ---------------------------------------- */

static void test_consumer_ring_read_only(void)
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
	       "a consumer writing into the ring should die of SIGSEGV; wait status 0x%x (exit code %d)", st,
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
		uint64_t nfree;
		EXPECT(mmapq_reserve(p, 8, 0, &nfree) == 0, "reserve");
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
	uint64_t nfree;
	uint32_t n;
	int64_t v = 5;

	EXPECT(mmapq_reserve(p, 8, 0, &nfree) == 0, "reserve");
	EXPECT(mmapq_put(p, &v, sizeof(v)) == 0 && mmapq_pending(p) == 1, "put");
	mmapq_close(p);
	c = open_or_die(MMAPQ_ROLE_CONSUMER);
	EXPECT(mmapq_available(c, 0, &n) == 0 && n == 1, "available %u after close with 1 pending", n);
	mmapq_close(c);
}

/* ---- bytes: a model of the ring ------------------------------------------------ */

/* Binary queues for the byte-level cases: a ring of BRING bytes whose
 * largest record (BMAX) takes a quarter of it. */
#define BRING 256u
#define BMAX  56u   /* mmapq_frame_size(56) = 64 = BRING / 4 */
#define MODEL_MAX 64u

/* What the test expects of the ring: the byte positions of floor and tail,
 * the floor the producer last read (pfloor: it looks again when a record
 * does not fit by it, and as it publishes), and for each record kept, its
 * length and where its frame ends. */
struct model {
	uint64_t size, floor, tail, seq0, nkept;
	uint64_t pfloor, pending;
	uint64_t seen; /* the consumer's last look at the tail (mmapq_available(3)) */
	uint32_t max;
	uint32_t len[MODEL_MAX];
	uint64_t end[MODEL_MAX];
};

static struct mmapq *open_bin(enum mmapq_role role, enum mmapq_sync sync)
{
	struct mmapq_params p = {.path = g_path, .role = role, .size = BRING, .max_record = BMAX,
	                         .format = MMAPQ_FORMAT_BINARY, .sync = sync, .file_mode = 0600};
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &e);

	EXPECT(r == 0, "open as %d: %s (%s)", (int)role, e.msg, mmapq_strerror(r));
	return q;
}

/* Bytes a record of len takes at tail (its frame, and the padding before it
 * if it does not fit before the ring's end), and where its frame starts. */
static uint64_t model_need(const struct model *m, uint32_t len, uint64_t *at)
{
	uint64_t end = m->size - (m->tail % m->size), fb = mmapq_frame_size(len);

	*at = fb <= end ? m->tail : m->tail + end;
	return fb <= end ? fb : end + fb;
}

static bool fits_above(const struct model *m, uint32_t len, uint64_t floor)
{
	uint64_t at;

	return m->tail + model_need(m, len, &at) <= floor + m->size;
}

static bool model_fits(const struct model *m, uint32_t len)
{
	return fits_above(m, len, m->floor);
}

/* The producer's look at floor when a record does not fit by what it knows */
static void model_look(struct model *m, uint32_t len)
{
	if (!fits_above(m, len, m->pfloor))
		m->pfloor = m->floor;
}

/* mmapq_reserve's promise, computed: of the free bytes, what padding at the
 * ring's end may waste taken off (mmapq_format.h, "Room"). */
static uint64_t model_room(const struct model *m, uint32_t len)
{
	uint64_t f = m->pfloor + m->size - m->tail, e = m->size - m->tail % m->size;
	uint64_t w = mmapq_frame_size(m->max), room = f <= e ? f : f - (e < w ? e : w);

	return room > mmapq_frame_size(len) ? room : mmapq_frame_size(len);
}

static uint8_t payload_byte(uint64_t seq, uint32_t i)
{
	return (uint8_t)(seq * 151 + i * 13 + 7);
}

static void payload(uint64_t seq, uint32_t len, uint8_t *b)
{
	for (uint32_t i = 0; i < len; i++)
		b[i] = payload_byte(seq, i);
}

/* The ring's bytes, read-only, beside the handles. */
static const uint8_t *map_ring(void)
{
	int fd = open(g_path, O_RDONLY | O_CLOEXEC);
	void *m;

	EXPECT(fd >= 0, "open %s: %s", g_path, strerror(errno));
	m = mmap(NULL, MMAPQ_HEADER_SIZE + BRING, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	EXPECT(m != MAP_FAILED, "mmap: %s", strerror(errno));
	return (const uint8_t *)m + MMAPQ_HEADER_SIZE;
}

static struct mmapq_frame frame_in(const uint8_t *ring, uint64_t byte)
{
	struct mmapq_frame f;

	memcpy(&f, ring + byte % BRING, sizeof(f));
	return f;
}

static void model_took(struct model *m, const uint8_t *ring, uint32_t len, uint64_t at,
                       uint64_t need);

/* Put record seq (len bytes) as the model says it goes: 0 where it fits
 * (its frame, and padding before it, checked in the ring), -ENOBUFS where
 * it does not.  claim: with mmapq_claim of claim_len, committing len. */
static void model_put(struct model *m, struct mmapq *p, const uint8_t *ring, uint32_t len,
                      uint32_t claim_len)
{
	uint64_t seq = m->seq0 + m->nkept, at, need = model_need(m, len, &at);
	bool fits = model_fits(m, len);
	uint8_t buf[BMAX];
	int r;

	if (claim_len) {
		void *dst = NULL;
		uint64_t cat;
		bool cfits;
		struct model cm = *m;

		(void)model_need(&cm, claim_len, &cat);
		model_look(m, claim_len);
		cfits = model_fits(&cm, claim_len);
		r = mmapq_claim(p, claim_len, &dst);
		EXPECT(r == (cfits ? 0 : -ENOBUFS), "claim of %u bytes at byte %" PRIu64 " (floor %" PRIu64
		       "): %d (%s), the model says it %s", claim_len, m->tail, m->floor, r,
		       mmapq_strerror(r), cfits ? "fits" : "does not fit");
		if (r < 0)
			return;
		/* the buffer is the payload's place in the ring (the mapping
		 * here is another view of the same bytes) */
		memset(dst, 0x5a, claim_len);
		for (uint32_t i = 0; i < claim_len; i++)
			EXPECT(ring[cat % BRING + 8 + i] == 0x5a, "claim of %u bytes at byte %" PRIu64
			       ": its buffer is not the ring at offset %" PRIu64, claim_len, m->tail,
			       cat % BRING + 8);
		payload(seq, len, dst);
		r = mmapq_commit(p, len);
		EXPECT(r == 0, "commit of %u of %u claimed: %d (%s)", len, claim_len, r, mmapq_strerror(r));
		/* committed shorter: the frame takes what the record has, and
		 * goes where the claim was (padding before it if the claim
		 * needed one) */
		at = cat;
		need = cat - m->tail + mmapq_frame_size(len);
	} else {
		model_look(m, len);
		payload(seq, len, buf);
		r = mmapq_put(p, buf, len);
		EXPECT(r == (fits ? 0 : -ENOBUFS), "put of %u bytes at byte %" PRIu64 " (floor %" PRIu64
		       "): %d (%s), the model says it %s", len, m->tail, m->floor, r, mmapq_strerror(r),
		       fits ? "fits" : "does not fit");
		if (r < 0)
			return;
	}
	model_took(m, ring, len, at, need);
}

/* Record seq0 + nkept (len bytes) was put, its frame at at, need bytes
 * from tail on: its frame, and padding before it, checked in the ring. */
static void model_took(struct model *m, const uint8_t *ring, uint32_t len, uint64_t at,
                       uint64_t need)
{
	uint64_t seq = m->seq0 + m->nkept;

	{
		struct mmapq_frame f = frame_in(ring, at);

		EXPECT(f.len == len, "record %" PRIu64 " at ring offset %" PRIu64 ": frame len %u, want %u", seq,
		       at % BRING, f.len, len);
		for (uint32_t i = 0; i < len; i++)
			EXPECT(ring[at % BRING + 8 + i] == payload_byte(seq, i),
			       "record %" PRIu64 ": payload byte %u in the ring is wrong", seq, i);
		for (uint64_t i = len; i < mmapq_frame_size(len) - 8; i++)
			EXPECT(ring[at % BRING + 8 + i] == 0, "record %" PRIu64 ": alignment byte %" PRIu64
			       " is not zero", seq, i);
		if (at != m->tail) {
			f = frame_in(ring, m->tail);
			EXPECT(f.len == MMAPQ_FRAME_PAD, "record %" PRIu64 " of %u bytes at ring offset %"
			       PRIu64 ": no padding frame before it (len 0x%x)", seq, len, m->tail % BRING,
			       f.len);
		}
	}
	EXPECT(m->nkept < MODEL_MAX, "model full");
	m->pending++;
	m->len[m->nkept] = len;
	m->tail += need;
	m->end[m->nkept++] = m->tail;
}

/* The consumer reads every record it finds available and checks it, and
 * releases the first n of them (at most what it found).  It finds those
 * published when it last looked at the tail: at its release, or when it
 * had released all it had found (mmapq_available(3)); all records are
 * published here. */
static uint32_t model_consume(struct model *m, struct mmapq *c, uint32_t n)
{
	uint32_t avail = 0;
	int r;

	if (m->seen == m->seq0)
		m->seen = m->seq0 + m->nkept;
	r = m->seen > m->seq0 ? mmapq_available(c, 0, &avail) : 0;
	EXPECT(r == 0 && avail == m->seen - m->seq0, "available: %d (%s), %u records, the model: %"
	       PRIu64 " (of %" PRIu64 " kept)", r, mmapq_strerror(r), avail, m->seen - m->seq0,
	       m->nkept);
	if (n > avail)
		n = avail;
	for (uint32_t i = 0; i < avail; i++) {
		struct mmapq_record rec;

		r = mmapq_get(c, i, &rec);
		EXPECT(r == 0 && rec.seq == m->seq0 + i && rec.len == m->len[i],
		       "get(%u): %d (%s), seq %" PRIu64 " len %u; want seq %" PRIu64 " len %u", i, r,
		       mmapq_strerror(r), rec.seq, rec.len, m->seq0 + i, m->len[i]);
		for (uint32_t k = 0; k < rec.len; k++)
			EXPECT(((const uint8_t *)rec.data)[k] == payload_byte(rec.seq, k),
			       "record %" PRIu64 ": payload byte %u is wrong", rec.seq, k);
	}
	if (n == 0)
		return 0;
	r = mmapq_release(c, n);
	EXPECT(r == 0, "release(%u): %d (%s)", n, r, mmapq_strerror(r));
	m->floor = m->end[n - 1];
	m->seq0 += n;
	m->nkept -= n;
	m->seen = m->seq0 + m->nkept; /* release looks at the tail */
	memmove(m->len, m->len + n, m->nkept * sizeof(m->len[0]));
	memmove(m->end, m->end + n, m->nkept * sizeof(m->end[0]));
	return n;
}

/* Everything kept consumed. */
static void model_drain(struct model *m, struct mmapq *c)
{
	while (m->nkept)
		(void)model_consume(m, c, (uint32_t)m->nkept);
}

static void model_publish(struct model *m, struct mmapq *p)
{
	int r = mmapq_publish(p);
	struct mmapq_status st;

	EXPECT(r >= 0 && mmapq_pending(p) == 0, "publish: %d (%s)", r, mmapq_strerror(r));
	if (m->pending)
		m->pfloor = m->floor; /* it looks at floor as it publishes */
	m->pending = 0;
	EXPECT(mmapq_status(p, &st) == 0 && st.tail == m->seq0 + m->nkept &&
	       st.used_bytes == m->tail - m->floor, "status: tail %" PRIu64 " used %" PRIu64
	       " bytes; the model: tail %" PRIu64 " used %" PRIu64, st.tail, st.used_bytes,
	       m->seq0 + m->nkept, m->tail - m->floor);
}

/* The ring emptied and its tail moved to ring offset off, with records
 * whose frames fill the gap without padding: up to the ring's end first if
 * off lies beyond it (a record of 0 bytes is a frame of 8). */
static void model_move_to(struct model *m, struct mmapq *p, struct mmapq *c, const uint8_t *ring,
                          uint64_t off)
{
	model_drain(m, c);
	for (int steps = 0; m->tail % BRING != off; steps++) {
		uint64_t gap = (off + BRING - m->tail % BRING) % BRING, end = BRING - m->tail % BRING;
		uint64_t step = gap < end ? gap : end;
		uint32_t len = step >= 64 ? BMAX : (uint32_t)(step - 8);

		EXPECT(steps < 64, "the tail does not reach offset %" PRIu64, off);

		model_put(m, p, ring, len, 0);
		model_publish(m, p);
		model_drain(m, c);
	}
}

/* mmapq_reserve(len) without waiting, as the model says: it looks at floor
 * (its reservation, the last one, may grow up to it), and where the record
 * does not fit, it publishes what is pending and finds no room; else room,
 * computed from that floor. */
static void model_reserve(struct model *m, struct mmapq *p, uint32_t len)
{
	uint64_t room = 0;
	int r = mmapq_reserve(p, len, 0, &room);

	m->pfloor = m->floor;
	if (!model_fits(m, len)) {
		m->pending = 0;
		EXPECT(r == -EAGAIN, "reserve(%u) with floor %" PRIu64 " tail %" PRIu64 ": %d (%s), want"
		       " -EAGAIN", len, m->floor, m->tail, r, mmapq_strerror(r));
		return;
	}
	EXPECT(r == 0 && room == model_room(m, len), "reserve(%u) with floor %" PRIu64 " (known: %"
	       PRIu64 ") tail %" PRIu64 ": %d (%s), room %" PRIu64 ", want %" PRIu64, len, m->floor,
	       m->pfloor, m->tail, r, mmapq_strerror(r), room, model_room(m, len));
}

static void test_exactly_full(void)
{
	struct mmapq *p = open_bin(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_NEVER);
	struct mmapq *c = open_bin(MMAPQ_ROLE_CONSUMER, MMAPQ_SYNC_NEVER);
	const uint8_t *ring = map_ring();
	struct model m = {.size = BRING, .max = BMAX};
	static const uint32_t lens[] = {0, 1, 8, 9, 56, 33, 17, 5};

	/* from every offset, records of mixed lengths until the ring is
	 * exactly full (tail a ring past floor, no byte left): then nothing
	 * fits, not even an empty record, and the last frame ended exactly
	 * at floor + size */
	for (uint64_t off = 0; off < BRING; off += 8) {
		uint64_t room;
		int r;

		model_move_to(&m, p, c, ring, off);
		for (uint32_t i = 0; m.tail < m.floor + m.size; i++) {
			uint64_t left = m.floor + m.size - m.tail, at, need;
			uint32_t len = lens[i % 8];

			/* the last one fills the rest exactly */
			if (model_need(&m, len, &at) > left || left - model_need(&m, len, &at) < 16) {
				uint64_t end = m.size - m.tail % m.size;
				len = (uint32_t)((end < left ? end : left) - 8);
				if (len > BMAX)
					len = BMAX;
			}
			need = model_need(&m, len, &at);
			EXPECT(need <= left, "the test's own arithmetic: %" PRIu64 " > %" PRIu64, need, left);
			model_put(&m, p, ring, len, 0);
		}
		model_publish(&m, p);
		EXPECT(m.tail == m.floor + BRING, "not exactly full");
		model_put(&m, p, ring, 0, 0); /* -ENOBUFS, as the model says */
		r = mmapq_reserve(p, 0, 0, &room);
		EXPECT(r == -EAGAIN, "reserve on an exactly full ring: %d (%s)", r, mmapq_strerror(r));
		model_consume(&m, c, 1);
		/* one record's frame (with the padding it may have had) freed */
		model_reserve(&m, p, 0);
	}
	munmap((void *)(ring - MMAPQ_HEADER_SIZE), MMAPQ_HEADER_SIZE + BRING);
	mmapq_close(c);
	mmapq_close(p);
}

/* A record of every length 0..BMAX put with the tail at every offset of the
 * ring: where its frame does not fit before the ring's end, a padding frame
 * there and the record at offset 0; the consumer reads it back. */
static void test_padding_every_offset(void)
{
	struct mmapq *p = open_bin(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_NEVER);
	struct mmapq *c = open_bin(MMAPQ_ROLE_CONSUMER, MMAPQ_SYNC_NEVER);
	const uint8_t *ring = map_ring();
	struct model m = {.size = BRING, .max = BMAX};
	unsigned padded = 0, puts = 0;

	for (uint64_t off = 0; off < BRING; off += 8) {
		for (uint32_t len = 0; len <= BMAX; len++) {
			uint64_t tail0;

			model_move_to(&m, p, c, ring, off);
			tail0 = m.tail;
			model_put(&m, p, ring, len, 0);
			model_publish(&m, p);
			padded += m.tail - tail0 > mmapq_frame_size(len);
			puts++;
			/* a claim of the same length, committed whole, goes to
			 * the same place relative to its tail */
			model_drain(&m, c);
			model_move_to(&m, p, c, ring, off);
			model_put(&m, p, ring, len, len);
			model_publish(&m, p);
		}
	}
	model_drain(&m, c);
	EXPECT(padded > 0 && padded < puts, "%u of %u records needed padding", padded, puts);
	munmap((void *)(ring - MMAPQ_HEADER_SIZE), MMAPQ_HEADER_SIZE + BRING);
	mmapq_close(c);
	mmapq_close(p);
}

/* Records lens[0..n) put with one mmapq_put_records: the model's count of
 * them (in order, each while it fits, the floor looked at as a put does),
 * or -ENOBUFS if none fits; each frame and padding checked. */
static void model_put_records(struct model *m, struct mmapq *p, const uint8_t *ring,
                              const uint32_t *lens, uint32_t n)
{
	static uint8_t bufs[MODEL_MAX][BMAX];
	struct mmapq_iovec rec[MODEL_MAX];
	struct model w = *m;
	uint32_t k = 0;
	int r;

	EXPECT(n <= MODEL_MAX, "the test's own bound");
	for (uint32_t i = 0; i < n; i++) {
		payload(m->seq0 + m->nkept + i, lens[i], bufs[i]);
		rec[i] = (struct mmapq_iovec){bufs[i], lens[i]};
	}
	for (; k < n; k++) {
		uint64_t at;

		model_look(&w, lens[k]);
		if (!model_fits(&w, lens[k]))
			break;
		w.tail += model_need(&w, lens[k], &at);
	}
	r = mmapq_put_records(p, rec, n);
	EXPECT(r == (k ? (int)k : -ENOBUFS), "put_records of %u at byte %" PRIu64 " (floor %" PRIu64
	       "): %d (%s), the model says %u fit", n, m->tail, m->floor, r, mmapq_strerror(r), k);
	for (uint32_t i = 0; i < k; i++) {
		uint64_t at, need;

		model_look(m, lens[i]);
		need = model_need(m, lens[i], &at);
		model_took(m, ring, lens[i], at, need);
	}
}

/* mmapq_put_records: runs of records of mixed lengths (0 and max_record
 * among them) with the tail at every offset, padding where one does not fit
 * before the ring's end; runs longer than the room (as many as fit, then
 * -ENOBUFS); a bad length in the middle (nothing put); no records, NULL,
 * not the producer. */
static void test_put_records(void)
{
	struct mmapq *p = open_bin(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_NEVER);
	struct mmapq *c = open_bin(MMAPQ_ROLE_CONSUMER, MMAPQ_SYNC_NEVER);
	const uint8_t *ring = map_ring();
	struct model m = {.size = BRING, .max = BMAX};
	static const uint32_t lens[] = {0, BMAX, 1, 9, 33, 8, 0, 17, BMAX, 5, 40, 2};
	const uint32_t nl = sizeof(lens) / sizeof(lens[0]);
	uint8_t b[BMAX + 1] = {0};
	struct mmapq_iovec bad[3] = {{b, 1}, {b, BMAX + 1}, {b, 2}};
	uint64_t seq;
	unsigned padded = 0, short_runs = 0;

	EXPECT_INT(mmapq_put_records(c, bad, 1), -EPERM);
	EXPECT_INT(mmapq_put_records(p, NULL, 1), -EINVAL);
	EXPECT_INT(mmapq_put_records(p, NULL, 0), 0);
	seq = mmapq_next_seq(p);
	EXPECT_INT(mmapq_put_records(p, bad, 3), -EMSGSIZE);
	EXPECT_INT(mmapq_pending(p), 0);
	EXPECT_INT(mmapq_next_seq(p), seq);
	for (uint64_t off = 0; off < BRING; off += 8) {
		for (uint32_t first = 0; first < nl; first++) {
			uint32_t run[MODEL_MAX], n = 0;
			uint64_t tail0, kept0;

			/* from lens[first] on, around: 2 to 13 records (a ring
			 * holds 4 of the largest, and not all 12 lengths) */
			for (uint32_t i = 0; i < 2 + first; i++)
				run[n++] = lens[(first + i) % nl];
			model_move_to(&m, p, c, ring, off);
			tail0 = m.tail;
			kept0 = m.nkept;
			model_put_records(&m, p, ring, run, n);
			{
				uint64_t frames = 0;

				for (uint64_t i = 0; i < m.nkept - kept0; i++)
					frames += mmapq_frame_size(run[i]);
				padded += m.tail - tail0 > frames;
			}
			short_runs += m.nkept - kept0 < n;
			model_publish(&m, p);
			/* what did not fit: the ring is full for it */
			if (m.nkept - kept0 < n)
				model_put_records(&m, p, ring, run + (m.nkept - kept0), 1);
			model_drain(&m, c);
		}
	}
	/* a full ring: -ENOBUFS, nothing put */
	model_move_to(&m, p, c, ring, 0);
	{
		uint32_t full[4] = {BMAX, BMAX, BMAX, BMAX};

		model_put_records(&m, p, ring, full, 4);
		model_publish(&m, p);
		EXPECT_INT(m.tail, m.floor + BRING);
		model_put_records(&m, p, ring, lens, 1);
		EXPECT_INT(mmapq_pending(p), 0);
	}
	model_drain(&m, c);
	EXPECT(padded > 0 && short_runs > 0, "%u runs wrapped with padding, %u did not all fit",
	       padded, short_runs);
	munmap((void *)(ring - MMAPQ_HEADER_SIZE), MMAPQ_HEADER_SIZE + BRING);
	mmapq_close(c);
	mmapq_close(p);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Whether records of lens[0..n) fit the model as it is (all of them). */
static bool model_all_fit(struct model m, const uint32_t *lens, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t at;

		/* by the floor the producer knows: room was computed from it */
		if (!fits_above(&m, lens[i], m.pfloor))
			return false;
		m.tail += model_need(&m, lens[i], &at);
	}
	return true;
}

/*
 * Random lengths, random batches, random releases, for many rounds: every
 * put's result (-ENOBUFS exactly when the model says it does not fit),
 * every frame and padding where the model says, every reserve's room as
 * the model computes it; and the room promise itself: sequences of records
 * whose frames add up to at most room, the worst for padding among them
 * (small ones up to the ring's end, then the largest), all fit, by the
 * model and by the library.
 */
static void test_room_promise(void)
{
	struct mmapq *p = open_bin(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_NEVER);
	struct mmapq *c = open_bin(MMAPQ_ROLE_CONSUMER, MMAPQ_SYNC_NEVER);
	const uint8_t *ring = map_ring();
	struct model m = {.size = BRING, .max = BMAX};
	uint64_t rng = 0x2545f4914f6cdd1dull, enobufs = 0, promised = 0;

	for (int round = 0; round < 20000; round++) {
		uint32_t len = (uint32_t)(rnd(&rng) % (BMAX + 1)), lens[40], n = 0;
		uint64_t room, sum = 0;

		model_reserve(&m, p, len);
		if (model_fits(&m, len)) {
			room = model_room(&m, len);
			/* the promise, by the model, for the sequences worst for
			 * padding: frames of k bytes up to the ring's end, then
			 * the largest records */
			for (uint32_t k = 16; k <= 64; k += 8) {
				uint32_t w[40], wn = 0;
				uint64_t ws = 0, e = m.size - m.tail % m.size;

				while (wn < 40 && ws + k <= room && ws + k <= e)
					w[wn++] = k - 8, ws += k;
				while (wn < 40 && ws + 64 <= room)
					w[wn++] = BMAX, ws += 64;
				while (wn < 40 && ws + 16 <= room)
					w[wn++] = 8, ws += 16;
				EXPECT(model_all_fit(m, w, wn), "room %" PRIu64 " at tail %" PRIu64 " floor %"
				       PRIu64 ": %u records of %" PRIu64 " bytes of frames do not all fit", room,
				       m.tail, m.floor, wn, ws);
			}
			/* and a random sequence within it, put for real */
			while (n < 40) {
				uint32_t l = n ? (uint32_t)(rnd(&rng) % (BMAX + 1)) : len;
				if (sum + mmapq_frame_size(l) > room)
					break;
				sum += mmapq_frame_size(l);
				lens[n++] = l;
			}
			for (uint32_t i = 0; i < n; i++) {
				EXPECT(model_fits(&m, lens[i]), "room %" PRIu64 ": the promise does not hold",
				       room);
				model_put(&m, p, ring, lens[i], rnd(&rng) % 4 ? 0 : lens[i] + (BMAX - lens[i]) / 2);
			}
			promised += n;
		}
		/* beyond the room: as it comes */
		for (int k = (int)(rnd(&rng) % 3); k > 0; k--) {
			uint32_t l = (uint32_t)(rnd(&rng) % (BMAX + 1));
			enobufs += !model_fits(&m, l);
			model_put(&m, p, ring, l, 0);
		}
		model_publish(&m, p);
		if (m.nkept)
			model_consume(&m, c, (uint32_t)(rnd(&rng) % (m.nkept + 1)));
	}
	EXPECT(enobufs > 100 && promised > 10000, "only %" PRIu64 " puts refused and %" PRIu64
	       " promised: the edges were not reached", enobufs, promised);
	munmap((void *)(ring - MMAPQ_HEADER_SIZE), MMAPQ_HEADER_SIZE + BRING);
	mmapq_close(c);
	mmapq_close(p);
}

/* A record of max_record goes everywhere; one byte more is refused by every
 * call that takes a length, before anything is written. */
static void test_max_record(void)
{
	struct mmapq *p = open_bin(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_NEVER);
	struct mmapq *c = open_bin(MMAPQ_ROLE_CONSUMER, MMAPQ_SYNC_NEVER);
	const uint8_t *ring = map_ring();
	struct model m = {.size = BRING, .max = BMAX};
	uint8_t big[BMAX + 1] = {0};
	uint64_t room = 7;
	void *buf = NULL;

	EXPECT(mmapq_max_record(p) == BMAX && mmapq_frame_size(BMAX) == BRING / 4 &&
	       mmapq_max_record_limit(BRING) == BMAX, "max_record %u, frame %" PRIu64 ", limit %u",
	       mmapq_max_record(p), mmapq_frame_size(BMAX), mmapq_max_record_limit(BRING));
	for (uint64_t off = 0; off < BRING; off += 8) {
		model_move_to(&m, p, c, ring, off);
		/* four of the largest fill the ring exactly, padding or not */
		for (int i = 0; i < 4; i++)
			model_put(&m, p, ring, BMAX, 0);
		model_publish(&m, p);
		model_consume(&m, c, 0);
	}
	model_drain(&m, c);
	EXPECT(mmapq_put(p, big, BMAX + 1) == -EMSGSIZE, "put of max_record + 1");
	EXPECT(mmapq_put_many(p, big, BMAX + 1, 1) == -EMSGSIZE, "put_many of max_record + 1");
	EXPECT(mmapq_claim(p, BMAX + 1, &buf) == -EMSGSIZE && !buf, "claim of max_record + 1");
	EXPECT(mmapq_reserve(p, BMAX + 1, 0, &room) == -EMSGSIZE && room == 7,
	       "reserve of max_record + 1");
	EXPECT(mmapq_pending(p) == 0, "pending %u", mmapq_pending(p));
	munmap((void *)(ring - MMAPQ_HEADER_SIZE), MMAPQ_HEADER_SIZE + BRING);
	mmapq_close(c);
	mmapq_close(p);
}

/* Claim and commit: a commit shorter than the claim takes the frame of what
 * it commits; a commit longer, or without a claim, is refused; a claim not
 * committed is forgotten (by a claim, a put, a publish, a reserve that
 * waits, a close) and nothing of it is ever read. */
static void test_claim_commit(void)
{
	struct mmapq *p = open_bin(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_NEVER);
	struct mmapq *c = open_bin(MMAPQ_ROLE_CONSUMER, MMAPQ_SYNC_NEVER);
	const uint8_t *ring = map_ring();
	struct model m = {.size = BRING, .max = BMAX};
	void *buf = NULL;
	uint64_t room;
	uint8_t b[BMAX];
	int r;

	/* shorter, at every offset (the claim's padding kept even where the
	 * shorter frame would have fitted before the end) */
	for (uint64_t off = 0; off < BRING; off += 8) {
		model_move_to(&m, p, c, ring, off);
		model_put(&m, p, ring, 3, BMAX);
		model_put(&m, p, ring, 0, 20);
		model_publish(&m, p);
	}
	model_drain(&m, c);
	EXPECT(mmapq_commit(p, 0) == -EINVAL, "commit without a claim");
	EXPECT(mmapq_claim(p, 10, &buf) == 0, "claim");
	EXPECT(mmapq_commit(p, 11) == -EINVAL, "commit of more than claimed");
	EXPECT(mmapq_commit(p, 10) == 0 && mmapq_pending(p) == 1, "commit after a refused one");
	EXPECT(mmapq_commit(p, 10) == -EINVAL, "commit twice");
	{
		/* its payload is whatever buf had: consumed unread */
		uint64_t at;
		uint32_t n;

		m.tail += model_need(&m, 10, &at);
		EXPECT(mmapq_publish(p) == 1, "publish");
		EXPECT(mmapq_available(c, 0, &n) == 0 && n == 1 && mmapq_release(c, 1) == 0, "consume");
		m.floor = m.tail, m.seq0++, m.seen = m.seq0;
	}

	/* forgotten by the next claim: the second claim is where the first
	 * was, and its record is the only one */
	EXPECT(mmapq_claim(p, BMAX, &buf) == 0, "claim");
	memset(buf, 0xee, BMAX);
	model_put(&m, p, ring, 5, 40);
	/* by a put */
	EXPECT(mmapq_claim(p, BMAX, &buf) == 0, "claim");
	memset(buf, 0xee, BMAX);
	model_put(&m, p, ring, 7, 0);
	EXPECT(mmapq_commit(p, 1) == -EINVAL, "commit after a put");
	/* by a publish */
	EXPECT(mmapq_claim(p, BMAX, &buf) == 0, "claim");
	memset(buf, 0xee, BMAX);
	model_publish(&m, p);
	EXPECT(mmapq_commit(p, 1) == -EINVAL, "commit after a publish");
	EXPECT(mmapq_pending(p) == 0, "pending %u", mmapq_pending(p));
	/* not by a reserve that finds room at once... */
	EXPECT(mmapq_claim(p, 4, &buf) == 0, "claim");
	payload(m.seq0 + m.nkept, 4, buf);
	EXPECT(mmapq_reserve(p, 1, 0, &room) == 0, "reserve");
	EXPECT(mmapq_commit(p, 4) == 0, "commit after a reserve that did not wait");
	m.len[m.nkept] = 4;
	{
		uint64_t at;
		m.tail += model_need(&m, 4, &at);
		m.end[m.nkept++] = m.tail;
	}
	model_publish(&m, p);
	/* ... but by one that waits (a ring where the largest record does
	 * not fit and an empty one does) */
	while (model_fits(&m, BMAX))
		model_put(&m, p, ring, 0, 0);
	model_publish(&m, p);
	EXPECT(mmapq_claim(p, 0, &buf) == 0, "claim of an empty record");
	r = mmapq_reserve(p, BMAX, 0, &room);
	EXPECT(r == -EAGAIN, "reserve on a full ring: %d (%s)", r, mmapq_strerror(r));
	EXPECT(mmapq_commit(p, 0) == -EINVAL, "commit after a reserve that waited");
	model_drain(&m, c);
	/* by a close: the next producer finds nothing pending, the consumer
	 * nothing new */
	EXPECT(mmapq_claim(p, BMAX, &buf) == 0, "claim");
	memset(buf, 0xee, BMAX);
	mmapq_close(p);
	p = open_bin(MMAPQ_ROLE_PRODUCER, MMAPQ_SYNC_NEVER);
	{
		uint32_t n = 0;
		r = mmapq_available(c, 0, &n);
		EXPECT(r == -EAGAIN, "a claim closed over became a record: %d, %u", r, n);
	}
	model_put(&m, p, ring, 9, 0);
	model_publish(&m, p);
	model_drain(&m, c);
	/* format int: a commit must be 8 bytes */
	munmap((void *)(ring - MMAPQ_HEADER_SIZE), MMAPQ_HEADER_SIZE + BRING);
	mmapq_close(c);
	mmapq_close(p);
	{
		struct mmapq *q;

		free(g_path);
		g_path = tu_path(g_dir, "int.q");
		q = open_or_die(MMAPQ_ROLE_PRODUCER);
		EXPECT(mmapq_claim(q, 4, &buf) == -EMSGSIZE, "claim of 4 bytes in an int queue");
		EXPECT(mmapq_claim(q, 8, &buf) == 0, "claim of 8 bytes in an int queue");
		EXPECT(mmapq_commit(q, 4) == -EMSGSIZE, "commit of 4 bytes in an int queue");
		memset(b, 0, 8);
		memcpy(buf, b, 8);
		EXPECT(mmapq_commit(q, 8) == 0 && mmapq_publish(q) == 1, "commit of 8");
		mmapq_close(q);
	}
}

/* What a consumer consumed is what it released, not its position: b
 * registers where a left off (4) and consumes 1 (position 5, consumed 1);
 * the count survives a reopen, is the entry's (a free entry: -ENOENT), and
 * starts at 0 again for a consumer removed and registered anew. */
static struct mmapq *open_named(const char *name, enum mmapq_start start)
{
	struct mmapq_params p = {.path = g_path, .role = MMAPQ_ROLE_CONSUMER, .size = RING,
	                         .max_record = 8, .format = MMAPQ_FORMAT_INT, .file_mode = 0600,
	                         .consumer = name, .start = start};
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &e);

	EXPECT(r == 0, "open consumer %s: %s (%s)", name, e.msg, mmapq_strerror(r));
	return q;
}

/* Consumer name's index and consumed count, seen by an observer. */
static uint64_t consumed_of(const char *name, uint64_t *position)
{
	struct mmapq *o = open_or_die(MMAPQ_ROLE_OBSERVER);
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	uint64_t k = UINT64_MAX;
	int n = mmapq_consumers(o, cs, MMAPQ_CONSUMERS_MAX);

	for (int i = 0; i < n; i++) {
		if (strcmp(cs[i].name, name))
			continue;
		EXPECT(mmapq_consumer_consumed(o, cs[i].index, &k) == 0, "consumed of %s", name);
		*position = cs[i].position;
	}
	EXPECT(k != UINT64_MAX, "consumer %s is not registered (%d consumers)", name, n);
	mmapq_close(o);
	return k;
}

static void test_consumed_counter(void)
{
	struct mmapq *p = open_or_die(MMAPQ_ROLE_PRODUCER), *a, *b, *o;
	struct mmapq_params rp = {.path = g_path, .consumer = "a"};
	struct mmapq_error e;
	uint64_t pos = 0, k = 0;
	uint32_t n;

	produce(p, 0, 4);
	a = open_named("a", MMAPQ_START_OLDEST);
	EXPECT(mmapq_available(a, 0, &n) == 0 && n == 4, "a: available %u", n);
	EXPECT(mmapq_release(a, 3) == 0 && mmapq_release(a, 1) == 0, "a: release 3, then 1");
	k = consumed_of("a", &pos);
	EXPECT(k == 4 && pos == 4, "a: consumed %" PRIu64 " at %" PRIu64 ", want 4 at 4", k, pos);
	produce(p, 4, 1);
	b = open_named("b", MMAPQ_START_OLDEST);
	EXPECT(mmapq_available(b, 0, &n) == 0 && n == 1, "b: available %u, want 1", n);
	EXPECT(mmapq_release(b, 1) == 0, "b: release 1");
	mmapq_close(b);
	k = consumed_of("b", &pos);
	EXPECT(k == 1 && pos == 5, "b: consumed %" PRIu64 " at %" PRIu64 ", want 1 at 5", k, pos);
	/* a free entry has no count */
	o = open_or_die(MMAPQ_ROLE_OBSERVER);
	EXPECT(mmapq_consumer_consumed(o, 7, &k) == -ENOENT, "entry 7 (free): not -ENOENT");
	mmapq_close(o);
	/* removed, registered anew: from 0 */
	mmapq_close(a);
	EXPECT(mmapq_consumer_remove(&rp, &e) == 1, "remove a: %s", e.msg);
	a = open_named("a", MMAPQ_START_OLDEST);
	k = consumed_of("a", &pos);
	EXPECT(k == 0 && pos == 5, "a anew: consumed %" PRIu64 " at %" PRIu64 ", want 0 at 5", k, pos);
	mmapq_close(a);
	mmapq_close(p);
}

/* What a consumer reports of its output's health: the counters added up
 * (never down), the gauges as they are; NULL and a new attach clear the
 * report, not the totals; a producer may not report. */
static void test_output_health(void)
{
	struct mmapq *p = open_or_die(MMAPQ_ROLE_PRODUCER), *a = open_named("a", MMAPQ_START_OLDEST), *o;
	struct mmapq_output_health h = {.acknowledged = 5, .reconnects = 1, .last_ack_usec = 1000,
	                                .in_flight = 3, .connected = true}, got;

	EXPECT(mmapq_output_report(p, &h) == -EPERM, "a producer's report: not -EPERM");
	o = open_or_die(MMAPQ_ROLE_OBSERVER);
	EXPECT(mmapq_consumer_output(o, 0, &got) == -ENODATA, "before a report: not -ENODATA");
	EXPECT(mmapq_output_report(a, &h) == 0, "report");
	h = (struct mmapq_output_health){.acknowledged = 2, .in_flight = 0, .connected = false};
	EXPECT(mmapq_output_report(a, &h) == 0, "second report");
	EXPECT(mmapq_consumer_output(o, 0, &got) == 0 && got.acknowledged == 7 && got.reconnects == 1 &&
	       got.last_ack_usec == 1000 && got.in_flight == 0 && !got.connected,
	       "read: acknowledged %" PRIu64 " (want 7), reconnects %" PRIu64 " (1), last ack %" PRIu64
	       " (1000), in flight %" PRIu32 " (0), connected %d (0)", got.acknowledged, got.reconnects,
	       got.last_ack_usec, got.in_flight, got.connected);
	EXPECT(mmapq_output_report(a, NULL) == 0 && mmapq_consumer_output(o, 0, &got) == -ENODATA,
	       "after a NULL report: not -ENODATA");
	/* a new holder starts with no report; the totals stay */
	h = (struct mmapq_output_health){.acknowledged = 1, .connected = true};
	EXPECT(mmapq_output_report(a, &h) == 0, "report");
	mmapq_close(a);
	a = open_named("a", MMAPQ_START_OLDEST);
	EXPECT(mmapq_consumer_output(o, 0, &got) == -ENODATA, "after an attach: not -ENODATA");
	h = (struct mmapq_output_health){.connected = true};
	EXPECT(mmapq_output_report(a, &h) == 0 && mmapq_consumer_output(o, 0, &got) == 0 &&
	       got.acknowledged == 8 && got.reconnects == 1,
	       "totals after an attach: acknowledged %" PRIu64 " (want 8), reconnects %" PRIu64 " (1)",
	       got.acknowledged, got.reconnects);
	EXPECT(mmapq_consumer_output(o, 5, &got) == -ENOENT, "a free entry: not -ENOENT");
	mmapq_close(o);
	mmapq_close(a);
	mmapq_close(p);
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
		{"consumer_ring_read_only", test_consumer_ring_read_only},
		{"positions_persist", test_positions_persist},
		{"close_publishes", test_close_publishes},
		{"exactly_full", test_exactly_full},
		{"padding_every_offset", test_padding_every_offset},
		{"put_records", test_put_records},
		{"room_promise", test_room_promise},
		{"max_record", test_max_record},
		{"claim_commit", test_claim_commit},
		{"consumed_counter", test_consumed_counter},
		{"output_health", test_output_health},
	};

	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
