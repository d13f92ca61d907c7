/* SPDX-License-Identifier: MIT */
/*
 * test_interrupt -- a process blocked by a peer that is alive but stopped
 * (SIGSTOP) while it holds the queue mutex or the attach lock gives up with
 * -EINTR within 1.5 s once its mmapq_params.interrupted callback says so,
 * without the mutex, and leaves the queue as mmapq.h says.
 *
 * The peer is this program run again (/proc/self/exe, so that MMAPQ_FAULT
 * is read fresh) as a child role, frozen by a fault point with the :stop
 * action at exactly the instant it holds the lock:
 *   publish.locked  a producer holding the mutex, before it stores tail
 *   release.locked  a consumer holding the mutex, before it stores its
 *                   synced cursor (and floor)
 *   attach.alone    an attaching process holding the attach lock exclusively
 * The blocked call runs in the main thread; a helper thread waits until the
 * main thread is asleep inside the call (/proc/self/task/TID/stat), then
 * sets the flag the callback returns (and, for the attach lock, whose kernel
 * wait only a signal ends, sends SIGUSR1 to a handler without SA_RESTART).
 * Cases:
 *   available_mutex  mmapq_available, the producer frozen at publish.locked
 *   available_wait   mmapq_available waiting on an empty queue
 *   release_mutex    mmapq_release, the producer frozen at publish.locked
 *   publish_mutex    mmapq_publish, the consumer frozen at release.locked
 *   reserve_mutex    mmapq_reserve on a full queue, consumer frozen likewise
 *   reserve_wait     mmapq_reserve waiting on a full queue
 *   open_mutex       mmapq_open, the producer frozen at publish.locked
 *   open_attach      mmapq_open, a process frozen at attach.alone; a first
 *                    signal with the flag still false must not end the wait
 * Should a call not return, the helper SIGKILLs the frozen peer 3 s after
 * the flag (which frees the lock), so the test fails instead of hanging.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

/* The library asks the callback at least every 0.5 s (a condition wait's
 * slice; a mutex wait's is 250 ms): LIMIT_MS leaves room for a loaded
 * machine, and every bound grows with MMAPQ_TEST_TIME_FACTOR (sanitizers). */
#define LIMIT_MS     (2000u * tu_time_factor())  /* flag to -EINTR */
#define RESCUE_MS    (4000u * tu_time_factor())  /* flag to killing the frozen peer */
#define SETTLE_MS    (10000u * tu_time_factor()) /* a child reaching its fault point, a thread falling asleep */
#define FAR_NS       (6ull * 1000000000ull * tu_time_factor()) /* a deadline the flag must beat */
#define CAP          4u                           /* int records in the ring */
#define RING         (CAP * 16u)

static char *g_dir, *g_path;

#define EXPECT(cond, ...) TU_EXPECT(g_path, cond, __VA_ARGS__)

/* ---- the callback and its flag ------------------------------------------ */

static bool g_flag;
static unsigned g_calls; /* how often the library asked */

static bool interrupted(void *ctx)
{
	(void)ctx;
	__atomic_add_fetch(&g_calls, 1, __ATOMIC_RELAXED);
	return __atomic_load_n(&g_flag, __ATOMIC_ACQUIRE);
}

static void on_usr1(int sig)
{
	(void)sig; /* only to interrupt the system call (no SA_RESTART) */
}

static struct mmapq_params params(enum mmapq_role role)
{
	return (struct mmapq_params){.path = g_path, .role = role, .size = RING, .max_record = 8,
	                             .format = MMAPQ_FORMAT_INT, .file_mode = 0600,
	                             .interrupted = interrupted};
}

static struct mmapq *open_role(enum mmapq_role role)
{
	struct mmapq_params p = params(role);
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &e);

	if (r < 0) {
		fprintf(stderr, "test_interrupt: open: %s\n", e.msg);
		exit(99);
	}
	return q;
}

/* ---- the frozen peer --------------------------------------------------------- */

/* The state letter of /proc/PID[/task/TID]/stat, '?' if unreadable. */
static char proc_state(const char *stat_path)
{
	char buf[512];
	int fd = open(stat_path, O_RDONLY | O_CLOEXEC);
	ssize_t k;
	char *p;

	if (fd < 0)
		return '?';
	k = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (k <= 0)
		return '?';
	buf[k] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

static bool wait_state(const char *stat_path, char want, unsigned ms)
{
	uint64_t end = tu_now_ms() + ms;

	while (tu_now_ms() < end) {
		if (proc_state(stat_path) == want)
			return true;
		sched_yield();
	}
	return false;
}

/* Child roles, run as test_interrupt --child ROLE PATH (MMAPQ_FAULT set). */
static int child_main(const char *role, const char *path)
{
	struct mmapq_params p = {.path = path, .size = RING, .max_record = 8,
	                         .format = MMAPQ_FORMAT_INT, .file_mode = 0600};
	struct mmapq_error e;
	struct mmapq *q = NULL;
	uint64_t room;
	uint32_t n;
	int r;

	p.role = !strcmp(role, "consumer") ? MMAPQ_ROLE_CONSUMER : MMAPQ_ROLE_PRODUCER;
	r = mmapq_open(&p, &q, &e);
	if (r < 0) {
		fprintf(stderr, "child %s: %s\n", role, e.msg);
		return 1;
	}
	if (p.role == MMAPQ_ROLE_PRODUCER) {
		/* one record per publish, for as long as there is room */
		while (mmapq_reserve(q, 8, 0, &room) == 0) {
			int64_t v = (int64_t)mmapq_next_seq(q);
			if (mmapq_put(q, &v, sizeof(v)) < 0 || mmapq_publish(q) < 0)
				return 1;
		}
	} else {
		/* release what there is, one at a time, until it stays empty */
		while (mmapq_available(q, mmapq_now_ns() + 2000000000ull, &n) == 0)
			if (mmapq_release(q, 1) < 0)
				return 1;
	}
	mmapq_close(q);
	return 0;
}

/* Start a child role with MMAPQ_FAULT=fault; wait until it is stopped at
 * the fault point (state 'T').  It is SIGKILLed at exit if the case fails
 * (tu_kill_tracked), else by kill_peer. */
static pid_t start_frozen(const char *role, const char *fault)
{
	char stat_path[64];
	pid_t pid;

	pid = tu_fork();
	if (pid == 0) {
		char *argv[] = {"test_interrupt", "--child", (char *)role, g_path, NULL};
		setenv("MMAPQ_FAULT", fault, 1);
		execv("/proc/self/exe", argv);
		perror("exec /proc/self/exe");
		_exit(127);
	}
	tu_track(pid);
	snprintf(stat_path, sizeof(stat_path), "/proc/%d/stat", (int)pid);
	EXPECT(wait_state(stat_path, 'T', SETTLE_MS), "the %s never stopped at %s (state %c)", role, fault,
	       proc_state(stat_path));
	return pid;
}

static void kill_peer(pid_t pid)
{
	tu_kill(pid);
	tu_untrack(pid);
}

/* ---- the helper thread ---------------------------------------------------------- */

struct trigger {
	pthread_t main;
	pid_t main_tid;
	pid_t frozen;        /* killed if the call does not return in time */
	bool signal;         /* also send SIGUSR1 (the attach lock's wait) */
	bool false_signal;   /* first a SIGUSR1 with the flag still false */
	bool returned;       /* set by the main thread after the call */
	uint64_t flag_ns;    /* when the flag was set */
	bool asleep;         /* the main thread was seen asleep in the call */
	bool rescued;        /* the frozen peer had to be killed */
};

static bool returned(struct trigger *t)
{
	return __atomic_load_n(&t->returned, __ATOMIC_ACQUIRE);
}

static void *trigger_main(void *arg)
{
	struct trigger *t = arg;
	char stat_path[64];

	snprintf(stat_path, sizeof(stat_path), "/proc/self/task/%d/stat", (int)t->main_tid);
	if (!wait_state(stat_path, 'S', SETTLE_MS) || returned(t))
		return NULL;
	t->asleep = true;
	if (t->false_signal) {
		/* the library must ask, hear "no", and wait on */
		unsigned calls = __atomic_load_n(&g_calls, __ATOMIC_RELAXED);
		uint64_t end = tu_now_ms() + SETTLE_MS;
		pthread_kill(t->main, SIGUSR1);
		while (__atomic_load_n(&g_calls, __ATOMIC_RELAXED) == calls && !returned(t) &&
		       tu_now_ms() < end)
			sched_yield();
		if (returned(t) || !wait_state(stat_path, 'S', SETTLE_MS))
			return NULL; /* the main thread reports it */
	}
	t->flag_ns = mmapq_now_ns();
	__atomic_store_n(&g_flag, true, __ATOMIC_RELEASE);
	if (t->signal)
		pthread_kill(t->main, SIGUSR1);
	/* a call that ignores the flag would block for as long as the peer is
	 * stopped: free it, so that the test fails instead of hanging */
	{
		uint64_t end = t->flag_ns / 1000000u + RESCUE_MS;
		while (!returned(t) && tu_now_ms() < end)
			sched_yield();
		if (!returned(t) && t->frozen > 0) {
			t->rescued = true;
			kill(t->frozen, SIGKILL);
		}
	}
	return NULL;
}

static void trigger_start(struct trigger *t, pthread_t *th, pid_t frozen, bool sig, bool false_sig)
{
	*t = (struct trigger){.main = pthread_self(), .main_tid = (pid_t)syscall(SYS_gettid),
	                      .frozen = frozen, .signal = sig, .false_signal = false_sig};
	__atomic_store_n(&g_flag, false, __ATOMIC_RELEASE);
	__atomic_store_n(&g_calls, 0, __ATOMIC_RELAXED);
	if (pthread_create(th, NULL, trigger_main, t)) {
		perror("pthread_create");
		exit(99);
	}
}

/* After the call: it must have returned -EINTR, after the flag and within
 * LIMIT_MS of it, without killing the peer. */
static void trigger_check(struct trigger *t, pthread_t th, const char *call, int r)
{
	uint64_t now = mmapq_now_ns();

	__atomic_store_n(&t->returned, true, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	EXPECT(t->asleep, "%s returned %d (%s) before it ever blocked", call, r, mmapq_strerror(r));
	EXPECT(t->flag_ns, "%s returned %d (%s) on a signal while the flag was still false", call, r,
	       mmapq_strerror(r));
	EXPECT(r == -EINTR && !t->rescued,
	       "%s returned %d (%s) %" PRIu64 " ms after the flag%s; want -EINTR within %u ms", call, r,
	       mmapq_strerror(r), (now - t->flag_ns) / 1000000u,
	       t->rescued ? ", and only once the stopped peer was killed" : "", LIMIT_MS);
	EXPECT(now - t->flag_ns <= LIMIT_MS * 1000000ull,
	       "%s returned -EINTR %" PRIu64 " ms after the flag; want within %u ms", call,
	       (now - t->flag_ns) / 1000000u, LIMIT_MS);
	printf("test_interrupt: %s: -EINTR %" PRIu64 " ms after the flag (%u looks)\n", call,
	       (now - t->flag_ns) / 1000000u, __atomic_load_n(&g_calls, __ATOMIC_RELAXED));
	__atomic_store_n(&g_flag, false, __ATOMIC_RELEASE);
}

/* The mutex must not be ours after the call: the lock word's owner is the
 * frozen peer (or nobody), never this thread. */
static void check_mutex_not_ours(const char *call)
{
	struct mmapq_header h;
	int fd = open(g_path, O_RDONLY | O_CLOEXEC);
	uint32_t word;

	EXPECT(fd >= 0 && pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h), "cannot read %s", g_path);
	close(fd);
	memcpy(&word, h.lock.bytes, sizeof(word));
	EXPECT((word & FUTEX_TID_MASK) != (uint32_t)syscall(SYS_gettid),
	       "after %s the queue mutex is held by this thread (lock word 0x%08" PRIx32 ")", call, word);
}

static uint64_t positions(uint64_t *head)
{
	struct mmapq_params p = {.path = g_path, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_error e;
	struct mmapq_status st = {0};
	struct mmapq *q = NULL;

	EXPECT(mmapq_open(&p, &q, &e) == 0 && mmapq_status(q, &st) == 0, "observer: %s", e.msg);
	mmapq_close(q);
	*head = st.head;
	return st.tail;
}

/* The default consumer's cursor, as an observer reads it. */
static uint64_t consumer_position(void)
{
	struct mmapq_params p = {.path = g_path, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int n = -1;

	EXPECT(mmapq_open(&p, &q, &e) == 0 && (n = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX)) == 1,
	       "observer: %s, %d consumers", e.msg, n);
	mmapq_close(q);
	return cs[0].position;
}

/* ---- cases ------------------------------------------------------------------------ */

static void case_available_mutex(void)
{
	struct mmapq *q = open_role(MMAPQ_ROLE_CONSUMER);
	pid_t pid = start_frozen("producer", "publish.locked:stop");
	struct trigger t;
	pthread_t th;
	uint32_t n = 12345;
	int r;

	trigger_start(&t, &th, pid, false, false);
	r = mmapq_available(q, mmapq_now_ns() + FAR_NS, &n);
	trigger_check(&t, th, "mmapq_available", r);
	check_mutex_not_ours("mmapq_available");
	EXPECT(n == 12345, "mmapq_available set *navail to %u on failure", n);
	kill_peer(pid);
	mmapq_close(q);
}

static void case_available_wait(void)
{
	struct mmapq *q = open_role(MMAPQ_ROLE_CONSUMER);
	struct trigger t;
	pthread_t th;
	uint32_t n;
	int r;

	trigger_start(&t, &th, 0, false, false);
	r = mmapq_available(q, mmapq_now_ns() + 4 * 1000000000ull, &n);
	trigger_check(&t, th, "mmapq_available (waiting)", r);
	check_mutex_not_ours("mmapq_available");
	mmapq_close(q);
}

static void case_release_mutex(void)
{
	struct mmapq *q = open_role(MMAPQ_ROLE_CONSUMER);
	/* the first publish goes through, the second stops holding the mutex */
	pid_t pid = start_frozen("producer", "publish.locked@2:stop");
	struct trigger t;
	pthread_t th;
	uint64_t head, tail;
	uint32_t n = 0;
	int r;

	/* record 0 is published: seen without the mutex */
	r = mmapq_available(q, mmapq_now_ns() + 5000000000ull, &n);
	EXPECT(r == 0 && n == 1, "mmapq_available: %d (%s), %u records; want the one published", r,
	       mmapq_strerror(r), n);
	trigger_start(&t, &th, pid, false, false);
	r = mmapq_release(q, 1);
	trigger_check(&t, th, "mmapq_release", r);
	check_mutex_not_ours("mmapq_release");
	tail = positions(&head);
	EXPECT(head == 0 && tail == 1, "after the interrupted release: head %" PRIu64 " tail %" PRIu64
	       ", want 0 and 1 (nothing released)", head, tail);
	EXPECT(consumer_position() == 0, "after the interrupted release the consumer's cursor is %"
	       PRIu64 ", want 0 (nothing released: a process that starts now reads record 0)",
	       consumer_position());
	kill_peer(pid);
	/* the record is still ours to release, now that the mutex is free
	 * (its dead holder's EOWNERDEAD repaired) */
	r = mmapq_available(q, 0, &n);
	EXPECT(r == 0 && n == 1 && (r = mmapq_release(q, 1)) == 0,
	       "after the holder's death: available/release: %d (%s), n %u", r, mmapq_strerror(r), n);
	tail = positions(&head);
	EXPECT(head == 1, "released again, head is %" PRIu64 ", want 1", head);
	mmapq_close(q);
}

/* A producer that published two records, the consumer frozen in its first
 * release (holding the mutex); full: CAP records. */
static struct mmapq *producer_with_frozen_consumer(unsigned records, pid_t *pid)
{
	struct mmapq *q = open_role(MMAPQ_ROLE_PRODUCER);
	uint64_t room;

	EXPECT(mmapq_reserve(q, 8, 0, &room) == 0 && room >= records * 16u, "reserve on a new queue: %"
	       PRIu64 " bytes free", room);
	for (unsigned i = 0; i < records; i++) {
		int64_t v = (int64_t)mmapq_next_seq(q);
		EXPECT(mmapq_put(q, &v, sizeof(v)) == 0, "put of record %u", i);
	}
	EXPECT(mmapq_publish(q) == (int)records, "publish of %u records", records);
	*pid = start_frozen("consumer", "release.locked:stop");
	return q;
}

static void case_publish_mutex(void)
{
	pid_t pid;
	struct mmapq *q = producer_with_frozen_consumer(2, &pid);
	struct trigger t;
	pthread_t th;
	uint64_t head, tail;
	int64_t v = 2;
	int r;

	EXPECT(mmapq_put(q, &v, sizeof(v)) == 0, "put");
	trigger_start(&t, &th, pid, false, false);
	r = mmapq_publish(q);
	trigger_check(&t, th, "mmapq_publish", r);
	check_mutex_not_ours("mmapq_publish");
	tail = positions(&head);
	EXPECT(tail == 2 && mmapq_pending(q) == 1, "after the interrupted publish: tail %" PRIu64
	       ", %u pending; want tail 2 and 1 pending (nothing published)", tail, mmapq_pending(q));
	kill_peer(pid);
	/* published by the next publish, once the mutex is free */
	r = mmapq_publish(q);
	tail = positions(&head);
	EXPECT(r == 1 && tail == 3 && mmapq_pending(q) == 0, "after the holder's death: publish %d (%s),"
	       " tail %" PRIu64 ", %u pending; want 1, 3, 0", r, mmapq_strerror(r), tail, mmapq_pending(q));
	mmapq_close(q);
}

static void case_reserve_mutex(void)
{
	pid_t pid;
	struct mmapq *q = producer_with_frozen_consumer(CAP, &pid);
	struct trigger t;
	pthread_t th;
	uint64_t room = 12345;
	int r;

	trigger_start(&t, &th, pid, false, false);
	r = mmapq_reserve(q, 8, mmapq_now_ns() + FAR_NS, &room);
	trigger_check(&t, th, "mmapq_reserve", r);
	check_mutex_not_ours("mmapq_reserve");
	EXPECT(room == 12345, "mmapq_reserve set *room to %" PRIu64 " on failure", room);
	kill_peer(pid);
	mmapq_close(q);
}

static void case_reserve_wait(void)
{
	struct mmapq *q = open_role(MMAPQ_ROLE_PRODUCER);
	struct trigger t;
	pthread_t th;
	uint64_t room;
	int r;

	for (unsigned i = 0; i < CAP; i++) {
		int64_t v = i;
		EXPECT(mmapq_reserve(q, 8, 0, &room) == 0 && mmapq_put(q, &v, sizeof(v)) == 0,
		       "reserve and put of record %u", i);
	}
	trigger_start(&t, &th, 0, false, false);
	r = mmapq_reserve(q, 8, mmapq_now_ns() + 4 * 1000000000ull, &room);
	trigger_check(&t, th, "mmapq_reserve (waiting)", r);
	check_mutex_not_ours("mmapq_reserve");
	EXPECT(mmapq_pending(q) == 0, "mmapq_reserve left %u pending: it publishes before it waits",
	       mmapq_pending(q));
	mmapq_close(q);
}

static void open_blocked(const char *fault, bool sig, const char *want_msg)
{
	pid_t pid = start_frozen("producer", fault);
	struct mmapq_params p = params(MMAPQ_ROLE_CONSUMER);
	struct mmapq_error e;
	struct mmapq *q = (struct mmapq *)&e; /* must stay untouched */
	struct trigger t;
	pthread_t th;
	int r;

	trigger_start(&t, &th, pid, sig, sig);
	r = mmapq_open(&p, &q, &e);
	trigger_check(&t, th, "mmapq_open", r);
	if (r == 0) {
		mmapq_close(q);
	} else {
		EXPECT(q == (struct mmapq *)&e, "mmapq_open changed *ret on failure");
		EXPECT(strstr(e.msg, want_msg) && strstr(e.msg, g_path),
		       "mmapq_open said \"%s\"; want \"%s\" and the path", e.msg, want_msg);
	}
	check_mutex_not_ours("mmapq_open");
	kill_peer(pid);
	/* nothing of ours is left: the role can be taken at once */
	q = open_role(MMAPQ_ROLE_CONSUMER);
	mmapq_close(q);
}

static void case_open_mutex(void)
{
	/* the producer attaches (its own attach takes and drops the mutex),
	 * then stops in its first publish holding it */
	open_blocked("publish.locked:stop", false, "interrupted while waiting for the queue mutex");
}

static void case_open_attach(void)
{
	open_blocked("attach.alone:stop", true, "interrupted while waiting for the attach lock");
}

/* Each case: a queue of its own (made by the case). */
static void setup(void)
{
	tu_need_faults(); /* every case freezes a process at a fault point */
	g_dir = tu_mkdtemp("interrupt");
	g_path = tu_path(g_dir, "queue");
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"available_mutex", case_available_mutex},
		{"available_wait", case_available_wait},
		{"release_mutex", case_release_mutex},
		{"publish_mutex", case_publish_mutex},
		{"reserve_mutex", case_reserve_mutex},
		{"reserve_wait", case_reserve_wait},
		{"open_mutex", case_open_mutex},
		{"open_attach", case_open_attach},
	};
	struct sigaction sa;

	if (argc == 4 && !strcmp(argv[1], "--child"))
		return child_main(argv[2], argv[3]);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1; /* no SA_RESTART: the blocking call sees EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	unsetenv("MMAPQ_FAULT");
	atexit(tu_kill_tracked); /* a case that fails leaves no frozen peer behind */
	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
