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
 *   consumer_peer_holds_mutex  the producer frozen in its publish; the
 *                              waiting consumer gets SIGTERM: exit 0
 *   attach_lock_held           a producer frozen while it holds the attach
 *                              lock; a consumer waiting for it gets SIGTERM:
 *                              exit 0
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

/* prog --config cfg [extra], stdin = in (-1: /dev/null), stderr to *err. */
static pid_t start(const char *prog, const char *fault, int in, int *err)
{
	char *argv[] = {tu_bin(prog), "--config", cfg, NULL};
	char *env[] = {NULL, NULL};
	struct tu_child c = TU_CHILD_INIT;
	int efd[2];
	pid_t pid;

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

static void unfreeze(void)
{
	if (frozen > 0)
		tu_kill(frozen);
	frozen = 0;
}

static void producer_peer_holds_mutex(void)
{
	int in[2], perr, cerr, code;
	pid_t p, c;
	char *err;

	setup();
	tu_pipe(in);
	p = start("mmapq-producer", NULL, in[0], &perr);
	close(in[0]);
	c = start("mmapq-consumer", "release.locked:stop", -1, &cerr);
	tu_write_all(in[1], "1 2 3\n", 6);
	wait_frozen(c); /* it took 1 2 3 and stopped holding the mutex */
	tu_write_all(in[1], "4 5\n", 4);
	wait_drained(in[1]);
	wait_blocked_on_mutex(p); /* it read them and waits for the mutex to publish */
	code = stop_within(p, perr, &err);
	EXPECT(code == 74 && strstr(err, "stopping with 2 records read but not published"),
	       "producer stopped while the frozen consumer holds the mutex: exit %d (want 74 within"
	       " %d ms), stderr '%s'", code, STOP_MS, err);
	free(err);
	unfreeze();
	close(cerr);
	close(in[1]);
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

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"producer_peer_holds_mutex", producer_peer_holds_mutex},
		{"consumer_peer_holds_mutex", consumer_peer_holds_mutex},
		{"attach_lock_held", attach_lock_held},
	};

	atexit(unfreeze); /* also when a check fails: no frozen process stays */
	return tu_main_cases(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
