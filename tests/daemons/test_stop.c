/* SPDX-License-Identifier: MIT */
/*
 * test_stop -- a stop request is obeyed within a second wherever a daemon
 * blocks, even when its peer is stopped (SIGSTOP, a debugger) while it
 * holds the queue's mutex or the attach lock.  The peer is frozen at the
 * worst instant by a fault point (MMAPQ_FAULT=point:stop raises SIGSTOP
 * there).
 *
 *   producer_peer_holds_mutex  the consumer frozen in its release, mutex
 *                              held; the producer, waiting for the mutex to
 *                              publish, gets SIGTERM: it exits 74 saying
 *                              what it read but could not publish
 *   producer_put_gives_up      the same, but the producer waits for the
 *                              mutex in a put (its reservation used up,
 *                              in the middle of what it read): the put
 *                              gives up for the stop, which the producer
 *                              treats as the stop, not as an error: it
 *                              holds the rest of what it read, tries to
 *                              put it at the end, and exits 74 counting
 *                              every record read and not published
 *   consumer_peer_holds_mutex  the producer frozen in its publish; the
 *                              waiting consumer gets SIGTERM: exit 0
 *   attach_lock_held           a producer frozen while it holds the attach
 *                              lock; a consumer waiting for it gets SIGTERM:
 *                              exit 0
 *   remove_in_progress         `mmapqctl consumer remove default` frozen once
 *                              it holds the entry's lock byte; a consumer of
 *                              that name starting meanwhile waits for it
 *                              (instead of exit 69, role taken) and, given
 *                              SIGTERM there, exits 0
 *   remove_then_attach         the same, but the remove carries on: it
 *                              exits 0, the waiting consumer then registers
 *                              anew and attaches; then rounds of a remove
 *                              and a restart started together, the consumer
 *                              stopped at once or once attached: exit 0
 *                              every time, never 69
 *
 * "Within a second": each stopped daemon must be gone 3 s after the
 * signal (the checks are at most every 250 ms; the slack is for loaded
 * machines).  Nothing sleeps: /proc tells when a process is frozen or has
 * its handlers, pidfds when it exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define EXIT_MS  10000
#define STOP_MS  3000   /* from SIGTERM to exit */

static char *dir, *qpath, *cfg;
static pid_t frozen;    /* SIGKILLed at the end */

#define EXPECT(cond, ...) TU_EXPECT(qpath, cond, __VA_ARGS__)

static void setup(void)
{
	char *text;

	tu_need_faults(); /* every case freezes a daemon at a fault point */
	dir = tu_mkdtemp("stop");
	qpath = tu_path(dir, "queue");
	cfg = tu_path(dir, "mmapq.ini");
	text = tu_xasprintf("[queue]\npath = %s\n[consumer]\noutput = null\n", qpath);
	tu_write_file(cfg, text, strlen(text));
	free(text);
}

/* prog --config cfg [arg1 arg2 arg3], stdin = in (-1: /dev/null), stderr
 * to *err. */
static pid_t start_args(const char *prog, const char *fault, int in, int *err,
                        const char *const args[3])
{
	char *argv[] = {tu_bin(prog), "--config", cfg, NULL, NULL, NULL, NULL};
	char *env[] = {NULL, NULL};
	struct tu_child c = TU_CHILD_INIT;
	int efd[2];
	pid_t pid;

	for (int i = 0; args && i < 3; i++)
		argv[3 + i] = (char *)args[i];
	tu_pipe(efd);
	if (fault)
		env[0] = tu_xasprintf("MMAPQ_FAULT=%s", fault);
	c.stdio[0] = in;
	c.stdio[2] = efd[1];
	c.env_extra = env;
	pid = tu_start(argv, &c);
	close(efd[1]);
	*err = efd[0];
	free(argv[0]);
	free(env[0]);
	return pid;
}

static pid_t start(const char *prog, const char *fault, int in, int *err)
{
	return start_args(prog, fault, in, err, NULL);
}

/* `mmapqctl consumer remove default` */
static pid_t start_remove(const char *fault, int *err)
{
	static const char *const args[3] = {"consumer", "remove", "default"};

	return start_args("mmapqctl", fault, -1, err, args);
}

/* A line of /proc/PID/status, e.g. "State" -> "T (stopped)". */
static bool status_has(pid_t pid, const char *field, const char *prefix)
{
	char *path = tu_xasprintf("/proc/%d/status", (int)pid), *st = tu_read_file(path, NULL);
	char *want = tu_xasprintf("\n%s:\t%s", field, prefix);
	bool yes = st && strstr(st, want);

	free(want);
	free(st);
	free(path);
	return yes;
}

/* Until pid is frozen (its fault point raised SIGSTOP). */
static void wait_frozen(pid_t pid)
{
	uint64_t end = tu_now_ms() + EXIT_MS;

	while (!status_has(pid, "State", "T")) {
		EXPECT(tu_now_ms() < end, "pid %d did not reach its fault point", (int)pid);
		sched_yield();
	}
	frozen = pid;
}

/* Until pid sleeps in system call nr, with first argument arg0 if it is
 * not 0 (/proc/PID/syscall: the number, then the arguments). */
static void wait_syscall(pid_t pid, long nr, unsigned long long arg0, const char *what)
{
	char *path = tu_xasprintf("/proc/%d/syscall", (int)pid);
	uint64_t end = tu_now_ms() + EXIT_MS;
	unsigned long long a;
	long n;

	for (;;) {
		char *sc = tu_read_file(path, NULL);
		bool there = sc && sscanf(sc, "%ld %llx", &n, &a) == 2 && n == nr && (!arg0 || a == arg0);
		free(sc);
		if (there)
			break;
		EXPECT(tu_now_ms() < end, "pid %d does not wait %s", (int)pid, what);
		sched_yield();
	}
	free(path);
}

/* Until pid waits for the queue's mutex: futex() on the lock word, the
 * first word of the header's lock. */
static void wait_blocked_on_mutex(pid_t pid)
{
	uint64_t end = tu_now_ms() + EXIT_MS;

	while (!tu_in_futex_on(pid, qpath, offsetof(struct mmapq_header, lock))) {
		EXPECT(tu_now_ms() < end, "pid %d does not wait for the mutex", (int)pid);
		sched_yield();
	}
}

/* Until the pipe whose write end is fd is empty: its reader took it. */
static void wait_drained(int fd)
{
	uint64_t end = tu_now_ms() + EXIT_MS;
	int n;

	while (ioctl(fd, FIONREAD, &n) == 0 && n > 0) {
		EXPECT(tu_now_ms() < end, "the daemon did not read its input");
		sched_yield();
	}
}

/* SIGTERM, then the exit code within STOP_MS (-1: still running). */
static int stop_within(pid_t pid, int errfd, char **err)
{
	int st;

	kill(pid, SIGTERM);
	st = tu_wait(pid, STOP_MS);
	if (st == -ETIMEDOUT) {
		tu_dump_queue(qpath, "still running after SIGTERM");
		tu_kill(pid);
	}
	*err = tu_read_all(errfd, EXIT_MS, NULL);
	if (!*err)
		*err = calloc(1, 1);
	close(errfd);
	return st == -ETIMEDOUT ? -1 : tu_exit_code(st);
}

/* Until pid has its SIGTERM handler (before, SIGTERM kills it), or has
 * exited. */
static void wait_handlers(pid_t pid)
{
	char *path = tu_xasprintf("/proc/%d/status", (int)pid);
	uint64_t end = tu_now_ms() + EXIT_MS;

	for (;;) {
		char *st = tu_read_file(path, NULL), *at = st ? strstr(st, "\nSigCgt:\t") : NULL;
		unsigned long long mask = at ? strtoull(at + 9, NULL, 16) : 0;

		free(st);
		if (mask & (1ull << (SIGTERM - 1)) || status_has(pid, "State", "Z"))
			break; /* (an exit is for the caller to report) */
		EXPECT(tu_now_ms() < end, "pid %d did not install its SIGTERM handler", (int)pid);
		sched_yield();
	}
	free(path);
}

/* Whether /proc/locks shows someone waiting for a shared OFD lock on
 * byte of the file path (OFD locks name no pid: the caller knows who). */
static bool shared_lock_awaited(const char *path, long long byte)
{
	char *locks = tu_read_file("/proc/locks", NULL), *save = NULL;
	struct stat st;
	bool yes = false;

	if (!locks || stat(path, &st) < 0) {
		free(locks);
		return false;
	}
	for (char *line = strtok_r(locks, "\n", &save); line && !yes;
	     line = strtok_r(NULL, "\n", &save)) {
		const char *rd = strstr(line, " READ ");
		unsigned maj, min;
		unsigned long ino;
		long long from, to;
		int pid;

		yes = strstr(line, "-> OFDLCK") && rd &&
		      sscanf(rd + 6, "%d %x:%x:%lu %lld %lld", &pid, &maj, &min, &ino, &from, &to) == 6 &&
		      maj == major(st.st_dev) && min == minor(st.st_dev) && ino == st.st_ino &&
		      from == byte && to == byte;
	}
	free(locks);
	return yes;
}

/* Until the consumer c waits for the remove in progress: it sleeps in
 * fcntl(F_OFD_SETLKW), and the lock file's byte MMAPQ_LOCK_REMOVE has a
 * shared lock waiting.  A consumer that exits instead fails the check,
 * with its exit code and what it said. */
static void wait_for_remove(pid_t c, int cerr)
{
	char *sys = tu_xasprintf("/proc/%d/syscall", (int)c), *lock = tu_xasprintf("%s.lock", qpath);
	uint64_t end = tu_now_ms() + EXIT_MS;

	for (;;) {
		char *sc = tu_read_file(sys, NULL);
		long n = -1;
		bool there = sc && sscanf(sc, "%ld", &n) == 1 && n == SYS_fcntl &&
		             shared_lock_awaited(lock, MMAPQ_LOCK_REMOVE);

		free(sc);
		if (there)
			break;
		if (status_has(c, "State", "Z")) {
			int code = tu_exit_code(tu_wait(c, EXIT_MS));
			char *err = tu_read_all(cerr, EXIT_MS, NULL);

			EXPECT(false, "the consumer did not wait for the remove in progress: exit %d,"
			       " stderr '%s'", code, err ? err : "");
		}
		EXPECT(tu_now_ms() < end, "the consumer does not wait for the remove in progress");
		sched_yield();
	}
	free(lock);
	free(sys);
}

/* The consumer default registered, not attached. */
static void register_default(void)
{
	int cerr, code;
	pid_t c = start("mmapq-consumer", NULL, -1, &cerr);
	char *err;

	EXPECT(tu_wait_role(qpath, c, false, EXIT_MS), "the consumer did not attach");
	code = stop_within(c, cerr, &err);
	EXPECT(code == 0, "consumer stopped once attached: exit %d, stderr '%s'", code, err);
	free(err);
}

static void unfreeze(void)
{
	if (frozen > 0)
		tu_kill(frozen);
	frozen = 0;
}

/* The producer fed "1 2 3" through a pipe, the consumer frozen once it took
 * them, holding the mutex in its release; then the producer fed text, all
 * of which it reads before it waits for the mutex; then SIGTERM: its exit
 * code, and *err what it said. */
static int stop_producer_on_frozen_mutex(const char *text, size_t len, char **err)
{
	int in[2], perr, cerr, code;
	pid_t p, c;

	tu_pipe(in);
	p = start("mmapq-producer", NULL, in[0], &perr);
	close(in[0]);
	c = start("mmapq-consumer", "release.locked:stop", -1, &cerr);
	tu_write_all(in[1], "1 2 3\n", 6);
	wait_frozen(c); /* it took 1 2 3 and stopped holding the mutex */
	tu_write_all(in[1], text, len);
	wait_drained(in[1]);
	wait_blocked_on_mutex(p); /* it read text and waits for the mutex */
	code = stop_within(p, perr, err);
	unfreeze();
	close(cerr);
	close(in[1]);
	return code;
}

static void producer_peer_holds_mutex(void)
{
	char *err;
	int code;

	setup();
	/* it waits for the mutex to publish 4 5 */
	code = stop_producer_on_frozen_mutex("4 5\n", 4, &err);
	EXPECT(code == 74 && strstr(err, "stopping with 2 records read but not published"),
	       "producer stopped while the frozen consumer holds the mutex: exit %d (want 74 within"
	       " %d ms), stderr '%s'", code, STOP_MS, err);
	free(err);
}

/* As producer_peer_holds_mutex, with more input after the freeze than the
 * producer's reservation takes (a ring of 64 KiB: reservations of 8 KiB,
 * 512 int records), all of it in the pipe at once: the producer reads it
 * in one piece and waits for the mutex in a put, not in a publish. */
static void producer_put_gives_up(void)
{
	enum { N = 1500 };
	static char in_text[N * 8];
	char *small, *text, *err;
	size_t len = 0;
	int code;

	setup();
	small = tu_path(dir, "small.ini");
	text = tu_xasprintf("[queue]\npath = %s\nsize = 64K\nmax_record = 1K\n"
	                    "[consumer]\noutput = null\n", qpath);
	tu_write_file(small, text, strlen(text));
	free(text);
	free(cfg);
	cfg = small;
	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(in_text + len, sizeof(in_text) - len, "%d\n", 10 + i);
	code = stop_producer_on_frozen_mutex(in_text, len, &err);
	EXPECT(code == 74 && strstr(err, "stopping while waiting for the queue's mutex to put") &&
	       strstr(err, "stopping with 1500 records read but not published") &&
	       !strstr(err, "nterrupted"),
	       "producer stopped in a put while the frozen consumer holds the mutex: exit %d (want"
	       " 74 within %d ms, all %d records read counted, no error but the one that says so),"
	       " stderr '%s'", code, STOP_MS, N, err);
	free(err);
}

static void consumer_peer_holds_mutex(void)
{
	int in[2], perr, cerr, code;
	pid_t p, c;
	char *err;

	setup();
	c = start("mmapq-consumer", NULL, -1, &cerr);
	EXPECT(tu_wait_role(qpath, c, false, EXIT_MS), "the consumer did not attach"); /* and waits */
	tu_pipe(in);
	p = start("mmapq-producer", "publish.locked:stop", in[0], &perr);
	close(in[0]);
	tu_write_all(in[1], "1\n", 2);
	wait_frozen(p); /* publishing, mutex held */
	wait_blocked_on_mutex(c); /* its wait's slice ended: it wants the mutex back */
	code = stop_within(c, cerr, &err);
	EXPECT(code == 0, "consumer stopped while the frozen producer holds the mutex: exit %d (want 0"
	       " within %d ms), stderr '%s'", code, STOP_MS, err);
	free(err);
	unfreeze();
	close(perr);
	close(in[1]);
}

static void attach_lock_held(void)
{
	int perr, cerr, code;
	pid_t p, c;
	char *err;

	setup();
	p = start("mmapq-producer", "attach.alone:stop", -1, &perr);
	wait_frozen(p); /* alone, attach lock held exclusively */
	c = start("mmapq-consumer", NULL, -1, &cerr);
	wait_syscall(c, SYS_fcntl, 0, "for the attach lock"); /* F_OFD_SETLKW */
	code = stop_within(c, cerr, &err);
	EXPECT(code == 0, "consumer stopped while waiting for a frozen producer's attach lock: exit %d"
	       " (want 0 within %d ms), stderr '%s'", code, STOP_MS, err);
	free(err);
	unfreeze();
	close(perr);
}

/* A remove frozen holding the entry's byte (not the mutex), and a
 * consumer of that name that waits for it: its pid, stderr in *cerr. */
static pid_t consumer_behind_remove(int *rerr, int *cerr)
{
	pid_t r, c;

	setup();
	register_default();
	r = start_remove("remove.attached:stop", rerr);
	wait_frozen(r);
	c = start("mmapq-consumer", NULL, -1, cerr);
	wait_for_remove(c, *cerr);
	return c;
}

static void remove_in_progress(void)
{
	int rerr, cerr, code;
	pid_t c = consumer_behind_remove(&rerr, &cerr);
	char *err;

	code = stop_within(c, cerr, &err);
	EXPECT(code == 0 && strstr(err, "consumer remove` to finish; stopping as asked"),
	       "consumer stopped while it waits for a frozen `consumer remove` of its name: exit %d"
	       " (want 0 within %d ms, saying what it waited for), stderr '%s'", code, STOP_MS, err);
	free(err);
	unfreeze();
	close(rerr);
}

static void remove_then_attach(void)
{
	enum { ROUNDS = 40 };
	int rerr, cerr, code;
	pid_t c = consumer_behind_remove(&rerr, &cerr), r = frozen;
	char *err;

	kill(r, SIGCONT);
	code = tu_exit_code(tu_wait(r, EXIT_MS));
	frozen = 0;
	err = tu_read_all(rerr, EXIT_MS, NULL);
	EXPECT(code == 0, "consumer remove, let go on: exit %d (want 0), stderr '%s'", code, err);
	free(err);
	close(rerr);
	EXPECT(tu_wait_role(qpath, c, false, EXIT_MS), "the consumer did not attach once the remove"
	       " was done");
	code = stop_within(c, cerr, &err);
	EXPECT(code == 0, "consumer attached after the remove, stopped: exit %d, stderr '%s'", code,
	       err);
	free(err);

	/* the race as it comes: a remove and a restart at the same time */
	for (int i = 0; i < ROUNDS; i++) {
		r = start_remove(NULL, &rerr);
		c = start("mmapq-consumer", NULL, -1, &cerr);
		code = tu_exit_code(tu_wait(r, EXIT_MS));
		err = tu_read_all(rerr, EXIT_MS, NULL);
		close(rerr);
		/* 69: the consumer was attached first, and is not removed; 67:
		 * the last round's consumer was stopped before it registered */
		EXPECT(code == 0 || code == 67 || code == 69, "round %d: consumer remove: exit %d,"
		       " stderr '%s'", i, code, err);
		free(err);
		wait_handlers(c);
		if (i % 2)
			EXPECT(tu_wait_role(qpath, c, false, EXIT_MS), "round %d: the consumer did not"
			       " attach", i);
		code = stop_within(c, cerr, &err);
		EXPECT(code == 0, "round %d: consumer stopped %s: exit %d (want 0), stderr '%s'", i,
		       i % 2 ? "once attached" : "while it may still be starting", code, err);
		free(err);
	}
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"producer_peer_holds_mutex", producer_peer_holds_mutex},
		{"producer_put_gives_up", producer_put_gives_up},
		{"consumer_peer_holds_mutex", consumer_peer_holds_mutex},
		{"attach_lock_held", attach_lock_held},
		{"remove_in_progress", remove_in_progress},
		{"remove_then_attach", remove_then_attach},
	};

	atexit(unfreeze); /* also when a check fails: no frozen process stays */
	return tu_main_cases(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
