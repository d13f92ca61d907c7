/* SPDX-License-Identifier: MIT */
/*
 * test_daemon_crash -- the real daemons SIGKILLed and restarted mid-stream,
 * 100 times each, and nothing is lost, nothing is reordered, nothing hangs.
 *
 * The producer is fed the numbered stream 0..N-1 (value = index) through a
 * pipe; the consumer's stdout is collected through another.  Each time a
 * daemon is (re)started it gets a kill plan:
 *   - a fault point in its environment (MMAPQ_FAULT=point@K, K random): it
 *     SIGKILLs itself the K-th time it passes the point, e.g. holding the
 *     mutex (publish.locked, publish.stored, release.locked,
 *     signal.incremented, recover.locked), between put and publish
 *     (put.written), between storing its cursor and taking the mutex to
 *     let the producer have the bytes (release.stored) or while blocked
 *     waiting (wait.unlocked);
 *   - or an external SIGKILL once the parent has seen a random number of
 *     further output records;
 *   - a fault plan that has not fired after a few times the expected
 *     progress is turned into an external SIGKILL (counted separately).
 * Once both kill budgets are spent the daemons run to the end.
 *
 * Restarts are deterministic: a killed producer loses what it read but had
 * not published, so it is restarted with the input from the stored tail
 * (published = tail, and value = index).  A restarted consumer replays what
 * it wrote but had not released, so its first record must be exactly the
 * stored head.  Half the time the survivor is first left alone to show it
 * does not hang: after a producer death the consumer must drain everything
 * published; after a consumer death the producer must fill the queue.
 *
 * Checked: every value 0..N-1 is printed; within one consumer run values are
 * consecutive; a restarted consumer starts at the stored head, which is never
 * past what was printed (nothing skipped) and at most a full ring behind it
 * (the replay is at most one batch); so after dropping those replays the
 * output is exactly 0..N-1.  Every child exits 0 or is SIGKILLed on plan,
 * and the whole run keeps making progress (watchdog).  A consumer killed in
 * the middle of a write() may leave a torn last line in the pipe: it is
 * dropped (and counted) before the replay.
 *
 * Fan-out: with MMAPQ_CRASH_CONSUMERS=3 three named consumers (c0, c1, c2)
 * read the same stream, each with its own output, cursor and kill plans:
 * each one's output is checked as above against its own cursor (it replays
 * only its own unacknowledged batch), after a consumer's death the others
 * and the producer must keep going (the producer until the dead one's
 * records fill the queue), and after the producer's death every running
 * consumer must drain what was published.
 *
 * MMAPQ_CRASH_SEED=n repeats a run; MMAPQ_CRASH_N and MMAPQ_CRASH_KILLS
 * (per process) change the size.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h" /* MMAPQ_FORMAT_INT, to create the queue */
#include "testutil.h"

/* The ring: 2 KiB of int frames (mmapq_frame_size(8): 16 bytes), 128
 * records at most */
#define RING_BYTES 2048u
#define RING_TEXT "2K"
#define MAX_RECORD 8u
#define CAPACITY ((uint64_t)RING_BYTES / mmapq_frame_size(sizeof(int64_t)))
#define WATCHDOG_MS 10000   /* no progress at all for this long: a hang */
#define SURVIVOR_MS 5000    /* the survivor must reach its goal in this time */
#define TOTAL_MS 200000     /* the whole run (ctest TIMEOUT is 300 s) */

#define NCONS_MAX 3

static char *dir, *qpath, *cfgpath;
static uint64_t N = 200000;
static int KILLS = 100;
static int NCONS = 1;      /* MMAPQ_CRASH_CONSUMERS */
static struct mmapq *obs; /* observer: reads head and tail, takes no lock */

/* ---- failing ---- */

static pid_t prod_pid_for_cleanup, cons_pid_for_cleanup[NCONS_MAX];

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "test_daemon_crash: FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	tu_dump_queue(qpath, "failure");
	if (prod_pid_for_cleanup > 0)
		tu_kill(prod_pid_for_cleanup);
	for (int i = 0; i < NCONS_MAX; i++)
		if (cons_pid_for_cleanup[i] > 0)
			tu_kill(cons_pid_for_cleanup[i]);
	fprintf(stderr, "test_daemon_crash: files kept in %s\n", dir);
	exit(1);
}

static void die(const char *what)
{
	fail("%s: %s", what, strerror(errno));
}

/* ---- random ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

/* uniform in [lo, hi] */
static uint64_t rnd_range(uint64_t lo, uint64_t hi)
{
	return hi <= lo ? lo : lo + rnd() % (hi - lo + 1);
}

/* ---- queue state ---- */

static struct mmapq_status status(void)
{
	struct mmapq_status st;

	if (!obs) {
		struct mmapq_params p = {.path = qpath, .role = MMAPQ_ROLE_OBSERVER};
		struct mmapq_error err;
		if (mmapq_open(&p, &obs, &err) < 0)
			fail("observer: %s", err.msg);
	}
	mmapq_status(obs, &st);
	return st;
}

/* ---- children ---- */

enum plan_kind { PLAN_NONE, PLAN_FAULT, PLAN_EXTERNAL };

struct plan {
	enum plan_kind kind;
	char fault[64];        /* point@K */
	uint64_t ext_after;    /* external: after this many more output records */
	uint64_t fallback;     /* fault: external kill after this much progress */
};

struct side {
	const char *name;
	pid_t pid;
	int pidfd;
	int fd;                /* producer: its stdin; consumer: its stdout */
	bool running, done;
	bool we_killed, fallback_kill;
	struct plan plan;
	uint64_t start_pos;    /* producer: tail at start; consumer: head at start */
	uint64_t start_out;    /* output records seen when it started */
	char env[96];
	/* a dead side waiting for the survivor before its restart */
	bool waiting;
	uint64_t wait_deadline;
	uint64_t wait_goal;
	/* counters */
	int kills, kills_fault, kills_ext, kills_fallback, starts, clean_exits, survivor_checks;
	int fault_kills_by_point[8];
	/* a consumer's output */
	int index;
	char cname[16];        /* its --name (c0, ...), "" for the one default consumer */
	uint64_t out_records;  /* records seen in total, replays included */
	uint64_t expect;       /* next value the running consumer must print */
	char partial[32];
	size_t partial_len;
	uint32_t *seen_count;  /* per value */
	uint64_t replays, replayed_records, max_replay, torn_lines;
};

static const char *prod_points[] = {"publish.locked", "publish.stored", "put.written",
                                    "signal.incremented", "wait.unlocked"};
static const char *cons_points[] = {"release.locked", "release.stored", "wait.unlocked",
                                    "signal.incremented", "recover.locked"};
#define NPOINTS 5

static struct side prod = {.name = "producer", .fd = -1, .pidfd = -1};
static struct side cons[NCONS_MAX];
static uint64_t out_records;   /* every consumer's output records, replays included */

/* producer input */
static uint64_t next_write;    /* next value to put in the pipe */
static char wbuf[65536];
static size_t wbuf_off, wbuf_len;

static uint64_t last_progress_ms;

static void progress(void)
{
	last_progress_ms = tu_now_ms();
}

static int pidfd_open(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		die("pidfd_open");
	return fd;
}

/* The cursor of consumer c (its own; the queue's head is the slowest's). */
static uint64_t cons_pos(const struct side *c)
{
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	int n;

	status(); /* opens the observer */
	n = mmapq_consumers(obs, cs, MMAPQ_CONSUMERS_MAX);
	for (int i = 0; i < n && i < (int)MMAPQ_CONSUMERS_MAX; i++)
		if (!strcmp(cs[i].name, c->cname[0] ? c->cname : MMAPQ_CONSUMER_DEFAULT))
			return cs[i].position;
	fail("%s is not registered", c->name);
}

/* A new plan for the next run of s: uses up its kill budget. */
static void choose_plan(struct side *s)
{
	const char **points = s == &prod ? prod_points : cons_points;
	uint64_t left = N - (s == &prod ? status().tail : cons_pos(s));
	int kills_left = KILLS - s->kills;
	uint64_t share;
	int pi;
	uint64_t k;

	memset(&s->plan, 0, sizeof(s->plan));
	if (kills_left <= 0)
		return;
	/* aim to spend the budget within the first half of what is left, so
	 * that even the fallback of the last plan comes before the end */
	share = left / 2 / (uint64_t)(kills_left + 1);
	if (share < 8)
		share = 8;
	if (rnd() % 10 < 4) {
		s->plan.kind = PLAN_EXTERNAL;
		s->plan.ext_after = rnd_range(0, 2 * share);
		return;
	}
	s->plan.kind = PLAN_FAULT;
	pi = (int)(rnd() % NPOINTS);
	if (!strcmp(points[pi], "put.written"))
		k = rnd_range(1, 2 * share);     /* once per record */
	else if (!strcmp(points[pi], "wait.unlocked") || !strcmp(points[pi], "signal.incremented"))
		k = rnd_range(1, 4);             /* only when the queue runs full/empty */
	else if (!strcmp(points[pi], "recover.locked"))
		k = 1;                           /* only after a death in the mutex */
	else
		k = rnd_range(1, 24);            /* once per batch */
	snprintf(s->plan.fault, sizeof(s->plan.fault), "%s@%" PRIu64, points[pi], k);
	s->plan.fallback = 2 * share + 8;
}

static int point_index(const struct side *s, const char *fault)
{
	const char **points = s == &prod ? prod_points : cons_points;
	for (int i = 0; i < NPOINTS; i++)
		if (!strncmp(fault, points[i], strlen(points[i])) && fault[strlen(points[i])] == '@')
			return i;
	return 0;
}

static void start(struct side *s)
{
	char *argv[12];
	char *env[2] = {NULL, NULL};
	char count[32];
	struct tu_proc p;
	struct mmapq_status st = status();
	uint64_t head = s == &prod ? 0 : cons_pos(s); /* before it starts to move */
	int i = 0;

	choose_plan(s);
	if (s->plan.kind == PLAN_FAULT) {
		snprintf(s->env, sizeof(s->env), "MMAPQ_FAULT=%s", s->plan.fault);
		env[0] = s->env;
	}
	argv[i++] = tu_bin(s == &prod ? "mmapq-producer" : "mmapq-consumer");
	argv[i++] = "--config";
	argv[i++] = cfgpath;
	argv[i++] = "--queue";
	argv[i++] = qpath;
	if (s != &prod) {
		snprintf(count, sizeof(count), "%" PRIu64, N - head);
		argv[i++] = "--count";
		argv[i++] = count;
		if (s->cname[0]) {
			argv[i++] = "--name";
			argv[i++] = s->cname;
		}
	}
	argv[i] = NULL;
	tu_spawn(&p, argv, env, s == &prod, s != &prod, false);
	free(argv[0]);
	s->pid = p.pid;
	s->pidfd = pidfd_open(p.pid);
	s->running = true;
	s->we_killed = s->fallback_kill = false;
	s->starts++;
	s->start_out = s == &prod ? out_records : s->out_records;
	if (s == &prod) {
		prod_pid_for_cleanup = p.pid;
		s->fd = p.in_fd;
		if (fcntl(s->fd, F_SETFL, O_NONBLOCK) < 0)
			die("fcntl");
		s->start_pos = st.tail;
		next_write = st.tail; /* value = index: resume right after the last published */
		wbuf_off = wbuf_len = 0;
	} else {
		cons_pid_for_cleanup[s->index] = p.pid;
		s->fd = p.out_fd;
		s->start_pos = head;
		if (s->expect < head)
			fail("%s restart: stored head %" PRIu64 " is past the %" PRIu64
			     " records printed: records were acknowledged without being written",
			     s->name, head, s->expect);
		if (s->expect - head > CAPACITY)
			fail("%s restart: replay of %" PRIu64 " records (head %" PRIu64
			     ", printed up to %" PRIu64 ") exceeds a full ring, %" PRIu64,
			     s->name, s->expect - head, head, s->expect, CAPACITY);
		if (s->expect > head) {
			s->replays++;
			s->replayed_records += s->expect - head;
			if (s->expect - head > s->max_replay)
				s->max_replay = s->expect - head;
		}
		s->expect = head;
		s->partial_len = 0;
	}
	progress();
}

static void sigkill(struct side *s, bool fallback)
{
	if (!s->running || s->we_killed)
		return;
	kill(s->pid, SIGKILL);
	s->we_killed = true;
	s->fallback_kill = fallback;
}

/* ---- consumer output ---- */

static void take_value(struct side *c, const char *line, size_t len)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		fail("%s printed a bad line '%.*s'", c->name, (int)len, line);
	for (size_t i = 0; i < len; i++) {
		if (line[i] < '0' || line[i] > '9')
			fail("%s printed a bad line '%.*s'", c->name, (int)len, line);
		v = v * 10 + (uint64_t)(line[i] - '0');
	}
	if (v >= N)
		fail("%s printed %" PRIu64 ", beyond the stream", c->name, v);
	if (v != c->expect)
		fail("%s (pid %d, started at head %" PRIu64 ") printed %" PRIu64
		     " where %" PRIu64 " was due: out of order, skipped or invented",
		     c->name, (int)c->pid, c->start_pos, v, c->expect);
	c->seen_count[v]++;
	c->expect++;
	c->out_records++;
	out_records++;
}

static void take_output(struct side *c, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			take_value(c, c->partial, c->partial_len);
			c->partial_len = 0;
		} else if (c->partial_len < sizeof(c->partial)) {
			c->partial[c->partial_len++] = buf[i];
		} else {
			fail("%s printed an over-long line", c->name);
		}
	}
	if (n)
		progress();
}

/* Returns false at end of file. */
static bool read_output(struct side *c)
{
	char buf[65536];
	ssize_t n = read(c->fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n < 0)
		die("read consumer output");
	if (n == 0)
		return false;
	take_output(c, buf, (size_t)n);
	return true;
}

/* ---- producer input ---- */

static void fill_wbuf(void)
{
	wbuf_off = wbuf_len = 0;
	while (next_write < N && sizeof(wbuf) - wbuf_len > 24)
		wbuf_len += (size_t)snprintf(wbuf + wbuf_len, sizeof(wbuf) - wbuf_len, "%" PRIu64 "\n",
		                             next_write++);
}

static void write_input(void)
{
	for (;;) {
		ssize_t n;

		if (wbuf_off == wbuf_len) {
			fill_wbuf();
			if (!wbuf_len) {
				/* everything is in the pipe: end of input */
				close(prod.fd);
				prod.fd = -1;
				return;
			}
		}
		n = write(prod.fd, wbuf + wbuf_off, wbuf_len - wbuf_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0 && errno == EPIPE)
			return; /* it died; its pidfd tells us next */
		if (n < 0)
			die("write producer input");
		wbuf_off += (size_t)n;
		progress();
	}
}

/* ---- deaths ---- */

static void reap(struct side *s)
{
	int st = 0, code;

	while (waitpid(s->pid, &st, 0) < 0) {
		if (errno != EINTR)
			die("waitpid");
	}
	close(s->pidfd);
	s->pidfd = -1;
	s->running = false;
	if (s == &prod)
		prod_pid_for_cleanup = 0;
	else
		cons_pid_for_cleanup[s->index] = 0;
	code = tu_exit_code(st);
	progress();

	if (s != &prod) {
		/* everything it wrote before dying is in the pipe: take it all */
		uint64_t deadline = tu_now_ms() + SURVIVOR_MS;
		for (;;) {
			struct pollfd pf = {.fd = s->fd, .events = POLLIN};
			uint64_t now = tu_now_ms();
			if (now >= deadline)
				fail("%s output: no end of file after its death", s->name);
			if (poll(&pf, 1, (int)(deadline - now)) < 0 && errno != EINTR)
				die("poll");
			if (!read_output(s))
				break;
		}
		close(s->fd);
		s->fd = -1;
		if (s->partial_len) {
			s->torn_lines++; /* the rest of it is in the replay */
			s->partial_len = 0;
		}
	} else {
		if (prod.fd >= 0)
			close(prod.fd);
		prod.fd = -1;
		wbuf_off = wbuf_len = 0;
	}

	if (code == 0) {
		struct mmapq_status q = status();
		s->clean_exits++;
		if (s == &prod) {
			if (next_write != N || q.tail != N)
				fail("producer exited 0 with tail %" PRIu64 " of %" PRIu64, q.tail, N);
		} else if (s->expect != N) {
			fail("%s exited 0 after printing up to %" PRIu64 " of %" PRIu64, s->name, s->expect, N);
		}
		s->done = true;
		return;
	}
	if (code != 128 + SIGKILL)
		fail("%s pid %d exited %d (plan: %s)", s->name, (int)s->pid, code,
		     s->plan.kind == PLAN_FAULT ? s->plan.fault : "external SIGKILL");
	if (!s->we_killed && s->plan.kind != PLAN_FAULT)
		fail("%s pid %d was SIGKILLed but had no fault planted", s->name, (int)s->pid);
	s->kills++;
	if (!s->we_killed) {
		s->kills_fault++;
		s->fault_kills_by_point[point_index(s, s->plan.fault)]++;
	} else if (s->fallback_kill) {
		s->kills_fallback++;
	} else {
		s->kills_ext++;
	}
}

/* Whether the survivors of s's death run: the consumers for a dead
 * producer, the producer for a dead consumer. */
static bool survivors_run(const struct side *s)
{
	if (s != &prod)
		return prod.running;
	for (int i = 0; i < NCONS; i++)
		if (cons[i].running)
			return true;
	return false;
}

/* After s died: restart it now, or first let the survivors show they do
 * not hang (half of the time). */
static void after_death(struct side *s)
{
	struct mmapq_status st = status();

	if (s == &prod && st.tail == N) {
		s->done = true; /* everything is published */
		return;
	}
	if (s != &prod && cons_pos(s) == N) {
		s->done = true;
		return;
	}
	if (survivors_run(s) && rnd() % 2) {
		s->waiting = true;
		s->survivor_checks++;
		s->wait_deadline = tu_now_ms() + SURVIVOR_MS;
		s->wait_goal = s == &prod ? st.tail : 0;
		return;
	}
	start(s);
}

/* The survivors' goal while s is dead and waiting: true when reached. */
static bool survivor_done(struct side *s)
{
	struct mmapq_status st;

	if (!survivors_run(s))
		return true; /* they died (or finished) meanwhile: restart anyway */
	if (s == &prod) {
		/* every running consumer printed all that was published */
		for (int i = 0; i < NCONS; i++)
			if (cons[i].running && cons[i].expect < s->wait_goal)
				return false;
		return true;
	}
	/* the producer filled the queue, held back by the dead consumer (or
	 * one slower still) alone */
	st = status();
	return st.size - st.used_bytes < 2 * mmapq_frame_size(st.max_record) || st.tail == N;
}

static bool all_done(void)
{
	for (int i = 0; i < NCONS; i++)
		if (!cons[i].done)
			return false;
	return prod.done;
}

/* ---- main loop ---- */

static void run(void)
{
	uint64_t t_end = tu_now_ms() + TOTAL_MS;

	for (int i = 0; i < NCONS; i++)
		start(&cons[i]);
	start(&prod);
	while (!all_done()) {
		struct pollfd pf[2 + 2 * NCONS_MAX];
		int n = 0, ip = -1, pp = -1, ic[NCONS_MAX], pc[NCONS_MAX], timeout;
		bool waiting = prod.waiting;
		uint64_t now = tu_now_ms();

		if (now >= t_end)
			fail("the run took longer than %d ms", TOTAL_MS);
		if (now - last_progress_ms >= WATCHDOG_MS)
			fail("no progress for %d ms: producer %s, consumer c0 %s, printed up to %" PRIu64
			     ", written up to %" PRIu64, WATCHDOG_MS,
			     prod.running ? "running" : prod.done ? "done" : "dead",
			     cons[0].running ? "running" : cons[0].done ? "done" : "dead", cons[0].expect,
			     next_write);
		for (int i = -1; i < NCONS; i++) {
			struct side *s = i < 0 ? &prod : &cons[i];
			if (s->waiting) {
				if (survivor_done(s)) {
					s->waiting = false;
					start(s);
				} else if (tu_now_ms() >= s->wait_deadline) {
					fail("%s dead, the surviving %s did not %s within %d ms: it hangs",
					     s->name, s == &prod ? "consumers" : "producer",
					     s == &prod ? "drain the published records" : "fill the queue",
					     SURVIVOR_MS);
				}
			}
		}
		if (prod.running && prod.fd >= 0) {
			ip = n;
			pf[n++] = (struct pollfd){.fd = prod.fd, .events = POLLOUT};
		}
		for (int i = 0; i < NCONS; i++) {
			ic[i] = pc[i] = -1;
			waiting |= cons[i].waiting;
			if (!cons[i].running)
				continue;
			ic[i] = n;
			pf[n++] = (struct pollfd){.fd = cons[i].fd, .events = POLLIN};
			pc[i] = n;
			pf[n++] = (struct pollfd){.fd = cons[i].pidfd, .events = POLLIN};
		}
		if (prod.running) {
			pp = n;
			pf[n++] = (struct pollfd){.fd = prod.pidfd, .events = POLLIN};
		}
		/* a survivor goal on the queue state is rechecked every ms;
		 * everything else is an event on a pipe or a pidfd */
		timeout = waiting ? 1 : 1000;
		if (poll(pf, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		for (int i = 0; i < NCONS; i++)
			if (ic[i] >= 0 && (pf[ic[i]].revents & (POLLIN | POLLHUP)))
				read_output(&cons[i]);
		if (ip >= 0 && (pf[ip].revents & (POLLOUT | POLLERR | POLLHUP)))
			write_input();

		/* plans that depend on what we have seen */
		for (int i = 0; i < NCONS; i++) {
			struct side *c = &cons[i];
			uint64_t seen = c->out_records - c->start_out;

			if (!c->running || c->we_killed)
				continue;
			if (c->plan.kind == PLAN_EXTERNAL && seen >= c->plan.ext_after)
				sigkill(c, false);
			else if (c->plan.kind == PLAN_FAULT && seen >= c->plan.fallback)
				sigkill(c, true);
		}
		if (prod.running && !prod.we_killed) {
			if (prod.plan.kind == PLAN_EXTERNAL &&
			    out_records - prod.start_out >= prod.plan.ext_after * (uint64_t)NCONS)
				sigkill(&prod, false);
			else if (prod.plan.kind == PLAN_FAULT &&
			         status().tail - prod.start_pos >= prod.plan.fallback)
				sigkill(&prod, true);
		}

		for (int i = 0; i < NCONS; i++) {
			if (pc[i] >= 0 && (pf[pc[i]].revents & POLLIN)) {
				reap(&cons[i]);
				if (!cons[i].done)
					after_death(&cons[i]);
			}
		}
		if (pp >= 0 && (pf[pp].revents & POLLIN)) {
			reap(&prod);
			if (!prod.done)
				after_death(&prod);
		}
		/* a consumer waiting for a producer that finished meanwhile */
		for (int i = 0; i < NCONS; i++)
			if (!cons[i].running && !cons[i].done && !cons[i].waiting)
				start(&cons[i]);
		if (!prod.running && !prod.done && !prod.waiting)
			start(&prod);
	}
}

static void report_side(const struct side *s, const char *const *points)
{
	fprintf(stderr,
	        "  %-8s starts %d, SIGKILLs %d (fault %d, external %d, fallback %d), clean exits %d, "
	        "survivor checks %d\n           fault kills by point:",
	        s->name, s->starts, s->kills, s->kills_fault, s->kills_ext, s->kills_fallback,
	        s->clean_exits, s->survivor_checks);
	for (int i = 0; i < NPOINTS; i++)
		fprintf(stderr, " %s %d", points[i], s->fault_kills_by_point[i]);
	fputc('\n', stderr);
}

int main(void)
{
	tu_need_faults(); /* every case kills or freezes a process at a fault point */
	const char *e;
	char cfg[256];
	struct mmapq_status st;
	uint64_t t0 = tu_now_ms(), dups = 0;

	signal(SIGPIPE, SIG_IGN);
	e = getenv("MMAPQ_CRASH_SEED");
	rng_state = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (!rng_state)
		rng_state = 1;
	fprintf(stderr, "test_daemon_crash: seed %" PRIu64 " (MMAPQ_CRASH_SEED repeats it)\n",
	        rng_state);
	if ((e = getenv("MMAPQ_CRASH_N")))
		N = strtoull(e, NULL, 0);
	if ((e = getenv("MMAPQ_CRASH_KILLS")))
		KILLS = atoi(e);
	if ((e = getenv("MMAPQ_CRASH_CONSUMERS")))
		NCONS = atoi(e);
	if (NCONS < 1 || NCONS > NCONS_MAX)
		fail("MMAPQ_CRASH_CONSUMERS must be 1 to %d", NCONS_MAX);
	for (int i = 0; i < NCONS; i++) {
		static char names[NCONS_MAX][32];
		struct side *c = &cons[i];

		c->fd = c->pidfd = -1;
		c->index = i;
		if (NCONS > 1)
			snprintf(c->cname, sizeof(c->cname), "c%d", i);
		snprintf(names[i], sizeof(names[i]), "consumer%s%s", c->cname[0] ? " " : "", c->cname);
		c->name = names[i];
		c->seen_count = calloc(N, sizeof(*c->seen_count));
		if (!c->seen_count)
			die("calloc");
	}

	dir = tu_mkdtemp("crash");
	qpath = tu_path(dir, "queue");
	cfgpath = tu_path(dir, "crash.ini");
	snprintf(cfg, sizeof(cfg), "[queue]\nsize = " RING_TEXT "\nmax_record = %u\n[consumer]\n"
	         "output = stdout\n[log]\nlevel = warning\n", MAX_RECORD);
	if (tu_write_file(cfgpath, cfg, strlen(cfg)) < 0)
		die("write config");

	/* create the queue up front, so the observer can always open it */
	{
		struct mmapq_params p = {.path = qpath, .role = MMAPQ_ROLE_PRODUCER,
		                         .size = RING_BYTES, .max_record = MAX_RECORD,
		                         .format = MMAPQ_FORMAT_INT, .file_mode = 0600};
		struct mmapq_error err;
		struct mmapq *q;
		if (mmapq_open(&p, &q, &err) < 0)
			fail("create: %s", err.msg);
		mmapq_close(q);
		/* and register the consumers, so each keeps every record */
		for (int i = 0; i < NCONS; i++) {
			p.role = MMAPQ_ROLE_CONSUMER;
			p.consumer = cons[i].cname;
			if (mmapq_open(&p, &q, &err) < 0)
				fail("register %s: %s", cons[i].name, err.msg);
			mmapq_close(q);
		}
	}
	progress();
	run();

	st = status();
	if (st.head != N || st.tail != N)
		fail("at the end: head %" PRIu64 " tail %" PRIu64 ", want %" PRIu64, st.head, st.tail, N);
	for (int i = 0; i < NCONS; i++) {
		struct side *c = &cons[i];

		dups = 0;
		if (cons_pos(c) != N)
			fail("at the end: %s at %" PRIu64 ", want %" PRIu64, c->name, cons_pos(c), N);
		for (uint64_t v = 0; v < N; v++) {
			if (!c->seen_count[v])
				fail("%s never printed value %" PRIu64, c->name, v);
			dups += c->seen_count[v] - 1;
		}
		/* each replays only its own unacknowledged batches */
		if (dups != c->replayed_records)
			fail("%s printed %" PRIu64 " duplicates but replayed %" PRIu64 " records", c->name,
			     dups, c->replayed_records);
		if (c->kills < KILLS)
			fail("only %d %s kills of %d: the stream was too short", c->kills, c->name, KILLS);
	}
	if (prod.kills < KILLS)
		fail("only %d producer kills of %d: the stream was too short", prod.kills, KILLS);

	fprintf(stderr, "test_daemon_crash: OK: %" PRIu64 " values, all delivered in order to %d"
	        " consumer(s), in %" PRIu64 " ms\n", N, NCONS, tu_now_ms() - t0);
	report_side(&prod, prod_points);
	fprintf(stderr, "  recoveries: producer %" PRIu64 "; attaches: producer %" PRIu64 "\n",
	        st.producer.recoveries, st.producer.attaches);
	{
		struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
		int n = mmapq_consumers(obs, cs, MMAPQ_CONSUMERS_MAX);

		for (int i = 0; i < NCONS; i++) {
			struct side *c = &cons[i];

			report_side(c, cons_points);
			fprintf(stderr, "           replays %" PRIu64 " (%" PRIu64 " records, longest %" PRIu64
			        ", a full ring %" PRIu64 "), torn lines dropped %" PRIu64 "\n", c->replays,
			        c->replayed_records, c->max_replay, CAPACITY, c->torn_lines);
		}
		uint64_t recoveries = st.producer.recoveries;
		int in_mutex = 0;

		for (int i = 0; i < n && i < (int)MMAPQ_CONSUMERS_MAX; i++) {
			fprintf(stderr, "  consumer '%s': recoveries %" PRIu64 ", attaches %" PRIu64 "\n",
			        cs[i].name, cs[i].recoveries, cs[i].attaches);
			recoveries += cs[i].recoveries;
		}
		/* a fault kill inside the mutex is repaired (and counted) by
		 * whoever locks next; an external kill may land there too */
		for (int i = -1; i < NCONS; i++) {
			const struct side *x = i < 0 ? &prod : &cons[i];
			const char **points = i < 0 ? prod_points : cons_points;
			for (int k = 0; k < NPOINTS; k++)
				if (strcmp(points[k], "put.written") && strcmp(points[k], "wait.unlocked") &&
				    strcmp(points[k], "release.stored") && /* before the mutex */
				    strcmp(points[k], "recover.locked")) /* its repair is redone, counted once */
					in_mutex += x->fault_kills_by_point[k];
		}
		if (recoveries < (uint64_t)in_mutex)
			fail("%" PRIu64 " recoveries counted for %d kills inside the mutex", recoveries,
			     in_mutex);
		fprintf(stderr, "  recoveries %" PRIu64 " in all, %d fault kills inside the mutex\n",
		        recoveries, in_mutex);
	}
	mmapq_close(obs);
	tu_rmdir_r(dir);
	return 0;
}
