/* SPDX-License-Identifier: MIT */
/*
 * test_create_race -- processes released at the same instant all open a
 * queue file that does not exist yet.
 *
 * Each round forks N children that block reading a pipe; the parent closes
 * the pipe's write end, which wakes them together, and each calls mmapq_open
 * on the same missing path: one as producer, one as consumer, and (in the
 * 4-process variant) two more as producer.  Each child reports its result
 * and, if it attached, keeps the queue open until every child has reported,
 * so the role holders are attached while the others try.
 *
 * Checked every round: the producer and the consumer attached; every extra
 * producer got -EBUSY with a message naming the winning producer's pid; no
 * open ever saw a half-built file (-EBADMSG) or failed otherwise; exactly
 * the file and its lock file (race.q.lock) are in the directory (no
 * "*.tmp.*" left behind); the file then opens cleanly, empty, marked clean
 * by the last to close, with one attach recorded per role.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define ROUNDS 100
#define MAXN 4
#define DEADLINE_MS 10000

struct report {
	int idx;
	int role;
	int code;
	int pid;
	char msg[480];
};

static int g_failures;

static void fail(const char *dir, const char *path, int variant, int round, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void fail(const char *dir, const char *path, int variant, int round, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "FAIL [N=%d round %d]: ", variant, round);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (path && access(path, F_OK) == 0)
		tu_dump_queue(path, "create race");
	if (dir) {
		DIR *d = opendir(dir);
		struct dirent *e;
		fprintf(stderr, "     directory %s holds:", dir);
		while (d && (e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				fprintf(stderr, " %s", e->d_name);
		fprintf(stderr, "\n");
		if (d)
			closedir(d);
	}
	g_failures++;
}

static const char *role_str(int r)
{
	return r == MMAPQ_ROLE_PRODUCER ? "producer" : r == MMAPQ_ROLE_CONSUMER ? "consumer" : "observer";
}

/* Block until the parent closes fd's write end (EOF), at most DEADLINE_MS. */
static void wait_eof(int fd)
{
	char c;
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	uint64_t end = tu_now_ms() + DEADLINE_MS;
	for (;;) {
		uint64_t now = tu_now_ms();
		if (now >= end)
			_exit(3);
		if (poll(&pf, 1, (int)(end - now)) > 0 && read(fd, &c, 1) <= 0)
			return;
	}
}

static void child(int idx, int role, const char *path, int go_fd, int res_fd, int hold_fd)
{
	struct mmapq_params p = {.path = path, .role = (enum mmapq_role)role, .size = 1024,
	                         .max_record = 64, .format = MMAPQ_FORMAT_LINE, .file_mode = 0600};
	struct mmapq_error e;
	struct mmapq *q = NULL;
	struct report rep;

	wait_eof(go_fd); /* everybody wakes here at once */
	memset(&e, 0, sizeof(e));
	memset(&rep, 0, sizeof(rep));
	rep.idx = idx;
	rep.role = role;
	rep.pid = getpid();
	rep.code = mmapq_open(&p, &q, &e);
	memcpy(rep.msg, e.msg, sizeof(rep.msg) - 1);
	if (tu_write_all(res_fd, &rep, sizeof(rep)) < 0) /* < PIPE_BUF: atomic */
		_exit(2);
	if (q)
		wait_eof(hold_fd); /* stay attached until everybody has tried */
	mmapq_close(q);
	_exit(0);
}

static void run_round(const char *dir, int n, int round)
{
	char *path = tu_path(dir, "race.q");
	int go[2], res[2], hold[2];
	pid_t pids[MAXN];
	int roles[MAXN];
	struct report reps[MAXN];
	int got = 0, producer_idx = -1;
	uint64_t end;

	/* roles: one producer, one consumer, the rest producers, shuffled so
	 * that no child index is favoured by fork order */
	for (int i = 0; i < n; i++)
		roles[i] = i == 1 ? MMAPQ_ROLE_CONSUMER : MMAPQ_ROLE_PRODUCER;
	for (int i = n - 1; i > 0; i--) {
		int j = (int)(random() % (i + 1)), t = roles[i];
		roles[i] = roles[j];
		roles[j] = t;
	}
	if (pipe2(go, O_CLOEXEC) < 0 || pipe2(res, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0) {
		perror("pipe2");
		exit(99);
	}
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("fork");
			exit(99);
		}
		if (pids[i] == 0) {
			close(go[1]);
			close(res[0]);
			close(hold[1]);
			child(i, roles[i], path, go[0], res[1], hold[0]);
		}
	}
	close(go[0]);
	close(res[1]);
	close(hold[0]);
	close(go[1]); /* release them all */

	end = tu_now_ms() + DEADLINE_MS;
	while (got < n) {
		struct pollfd pf = {.fd = res[0], .events = POLLIN};
		uint64_t now = tu_now_ms();
		ssize_t k;
		if (now >= end)
			break;
		if (poll(&pf, 1, (int)(end - now)) <= 0)
			continue;
		k = read(res[0], &reps[got], sizeof(reps[got]));
		if (k == 0)
			break;
		if (k != (ssize_t)sizeof(reps[got])) {
			fail(dir, path, n, round, "short report (%zd bytes)", k);
			break;
		}
		got++;
	}
	if (got < n)
		fail(dir, path, n, round, "only %d of %d children reported within %d ms (hang?)", got, n,
		     DEADLINE_MS);
	close(hold[1]); /* let the attached ones close */
	for (int i = 0; i < n; i++) {
		int st = tu_wait(pids[i], DEADLINE_MS);
		if (st == -ETIMEDOUT) {
			fail(dir, path, n, round, "child %d (pid %d, %s) did not exit", i, pids[i],
			     role_str(roles[i]));
			tu_kill(pids[i]);
		} else if (tu_exit_code(st) != 0) {
			fail(dir, path, n, round, "child %d (pid %d, %s) ended with %d", i, pids[i],
			     role_str(roles[i]), tu_exit_code(st));
		}
	}
	close(res[0]);

	/* results */
	for (int i = 0; i < got; i++)
		if (reps[i].role == MMAPQ_ROLE_PRODUCER && reps[i].code == 0) {
			if (producer_idx >= 0)
				fail(dir, path, n, round, "two producers attached at once: pids %d and %d",
				     reps[producer_idx].pid, reps[i].pid);
			producer_idx = i;
		}
	if (got == n && producer_idx < 0)
		fail(dir, path, n, round, "no producer attached");
	for (int i = 0; i < got; i++) {
		const struct report *r = &reps[i];
		if (r->code == -EBADMSG) {
			fail(dir, path, n, round, "%s pid %d saw a half-initialised file: %s",
			     role_str(r->role), r->pid, r->msg);
		} else if (r->role == MMAPQ_ROLE_CONSUMER && r->code != 0) {
			fail(dir, path, n, round, "consumer pid %d failed: %d (%s) %s", r->pid, r->code,
			     mmapq_strerror(r->code), r->msg);
		} else if (r->role == MMAPQ_ROLE_PRODUCER && i != producer_idx) {
			char want[64];
			if (producer_idx >= 0)
				snprintf(want, sizeof(want), "pid %d", reps[producer_idx].pid);
			else
				snprintf(want, sizeof(want), "pid");
			if (r->code != -EBUSY)
				fail(dir, path, n, round, "extra producer pid %d got %d (%s) \"%s\", expected -EBUSY",
				     r->pid, r->code, mmapq_strerror(r->code), r->msg);
			else if (!strstr(r->msg, want) || !strstr(r->msg, path))
				fail(dir, path, n, round,
				     "extra producer pid %d: -EBUSY message does not name \"%s\" and the file: \"%s\"",
				     r->pid, want, r->msg);
		}
	}

	/* exactly the queue and its lock file, no temporaries */
	{
		DIR *d = opendir(dir);
		struct dirent *e;
		int files = 0;
		bool stray = false;
		while (d && (e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			files++;
			if (strcmp(e->d_name, "race.q") != 0 && strcmp(e->d_name, "race.q.lock") != 0)
				stray = true;
		}
		if (d)
			closedir(d);
		if (files != 2 || stray)
			fail(dir, path, n, round, "expected exactly race.q and race.q.lock in the directory,"
			     " found %d entries", files);
	}

	/* the file validates and holds what the race should have left */
	{
		struct mmapq_params p = {.path = path, .role = MMAPQ_ROLE_OBSERVER};
		struct mmapq_error e;
		struct mmapq *q = NULL;
		struct mmapq_status st;
		int r = mmapq_open(&p, &q, &e);
		if (r < 0) {
			fail(dir, path, n, round, "observer cannot open the result: %s", e.msg);
		} else {
			if (mmapq_status(q, &st) < 0 || st.size != 1024 || st.max_record != 64 || !st.clean ||
			    st.head != 0 || st.tail != 0 || st.producer.attaches != 1 ||
			    st.consumer.attaches != 1 || st.producer.attached || st.consumer.attached ||
			    (producer_idx >= 0 && st.producer.pid != reps[producer_idx].pid))
				fail(dir, path, n, round,
				     "unexpected state: size %" PRIu64 " max_record %u clean %d head %" PRIu64 " tail %" PRIu64
				     " attaches %" PRIu64 "/%" PRIu64 " attached %d/%d producer pid %d",
				     st.size, st.max_record, st.clean, st.head, st.tail, st.producer.attaches, st.consumer.attaches,
				     st.producer.attached, st.consumer.attached, st.producer.pid);
			mmapq_close(q);
		}
		/* and a writer validates the positions and slots too */
		p.role = MMAPQ_ROLE_PRODUCER;
		p.size = 1024;
		p.max_record = 64;
		p.format = MMAPQ_FORMAT_LINE;
		r = mmapq_open(&p, &q, &e);
		if (r < 0)
			fail(dir, path, n, round, "producer cannot reopen the result: %s", e.msg);
		mmapq_close(q);
	}
	unlink(path);
	free(path);
}

int main(int argc, char **argv)
{
	const int variants[2] = {2, 4};
	int rounds = argc > 1 ? atoi(argv[1]) : ROUNDS;
	uint64_t t0 = tu_now_ms();
	char *dir = tu_mkdtemp("create-race");

	srandom((unsigned)getpid());
	for (int v = 0; v < 2; v++)
		for (int round = 0; round < rounds && g_failures < 10; round++)
			run_round(dir, variants[v], round);
	tu_rmdir_r(dir);
	free(dir);
	printf("test_create_race: %d rounds x {2, 4} processes in %" PRIu64 " ms: %s\n", rounds,
	       tu_now_ms() - t0, g_failures ? "FAILED" : "ok");
	return g_failures ? 1 : 0;
}
