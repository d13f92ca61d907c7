/* SPDX-License-Identifier: MIT */
/*
 * idle.c -- an idle daemon pair (--idle): the real daemons, queue empty,
 * the producer reading an open pipe nobody writes to; the CPU time each
 * used over --idle-seconds, from /proc/PID/stat (ticks) and
 * /proc/PID/schedstat (ns), and their wake-ups.  With --fanout the same of
 * the producer and FANOUT_MAX named consumers (mmapq-consumer --name fo0
 * ...), all attached.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"
#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define IDLE_START_MS 10000 /* for the daemons to attach, and then to reach their waits */

struct idle_result idle, fanout_idle;

static int proc_times(pid_t pid, long *ticks, uint64_t *run_ns, uint64_t *vcsw)
{
	char path[64], buf[4096], *p;
	unsigned long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* comm may hold spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	*ticks = (long)(ut + st);
	*run_ns = UINT64_MAX;
	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	f = fopen(path, "r");
	if (f) {
		unsigned long long rn;
		if (fscanf(f, "%llu", &rn) == 1)
			*run_ns = rn;
		fclose(f);
	}
	*vcsw = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f) {
		char line[256];
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "voluntary_ctxt_switches: %" SCNu64, vcsw) == 1)
				break;
		fclose(f);
	}
	return 0;
}

/* The system call pid sleeps in (/proc/PID/syscall), or -1: running, or gone. */
static long syscall_of(pid_t pid)
{
	char path[64], *sc;
	long nr = -1;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	sc = tu_read_file(path, NULL);
	if (!sc || sscanf(sc, "%ld", &nr) != 1)
		nr = -1;
	free(sc);
	return nr;
}

/* Consumer `name` of the queue at qpath is attached, held by pid: its
 * entry in the consumer table (>= 0), or -1 (not yet). */
static int consumer_entry(const char *qpath, const char *name, pid_t pid)
{
	struct mmapq_params p = {.path = qpath, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq *q;
	int n, ix = -1;

	if (mmapq_open(&p, &q, NULL) < 0)
		return -1;
	n = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX);
	for (int i = 0; i < n && i < (int)MMAPQ_CONSUMERS_MAX; i++)
		if (!strcmp(cs[i].name, name) && cs[i].pid == pid && cs[i].attached)
			ix = (int)cs[i].index;
	mmapq_close(q);
	return ix;
}

/* Every daemon sleeps where an idle one waits: the producer in ppoll() on
 * its input, each consumer in futex() on its not_empty word of the
 * queue's consumer table (entry ix[i]). */
static bool idle_waits(int np, const pid_t pid[], const int ix[], const char *qpath)
{
	if (syscall_of(pid[0]) != SYS_ppoll)
		return false;
	for (int i = 1; i < np; i++)
		if (!tu_in_futex_on(pid[i], qpath, offsetof(struct mmapq_header, consumers) +
		                    (size_t)ix[i] * sizeof(struct mmapq_consumer) +
		                    offsetof(struct mmapq_consumer, not_empty.seq)))
			return false;
	return true;
}

static char idle_names[IDLE_PROCS][16];

const char *idle_proc_label(const struct idle_result *r, int i)
{
	static char b[40];
	if (i == 0)
		return "mmapq-producer";
	if (r == &idle)
		return "mmapq-consumer";
	snprintf(b, sizeof(b), "consumer %s", idle_names[i]);
	return b;
}

/*
 * The daemons of config `name`, idle: the producer and nc consumers (0:
 * the default consumer alone; else nc named ones, fo0, fo1, ...), the
 * producer reading an open pipe nobody writes to; the CPU each used over
 * --idle-seconds, once every one sleeps where an idle daemon waits.
 */
static void idle_measure(struct idle_result *res, const char *name, int nc)
{
	char *cfg = write_config(name, "null", &(struct daemon_cfg){0});
	char *qname = tu_xasprintf("%s.q", name), *lname = tu_xasprintf("%s.log", name);
	char *qpath = tu_path(tmpdir, qname), *logp = tu_path(tmpdir, lname);
	char *prod = tu_path(bin_dir, "mmapq-producer"), *cons = tu_path(bin_dir, "mmapq-consumer");
	char *pargv[] = {prod, (char *)"--config", cfg, NULL};
	int np = 1 + (nc ? nc : 1);
	int in[2] = {-1, -1}, null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	int log_fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	pid_t pid[IDLE_PROCS];
	int ix[IDLE_PROCS];
	long t0[IDLE_PROCS], t1[IDLE_PROCS];
	uint64_t r0[IDLE_PROCS], r1[IDLE_PROCS], v0[IDLE_PROCS], v1[IDLE_PROCS];
	uint64_t deadline;
	char *real_qpath = NULL;
	struct timespec ts;

	for (int i = 0; i < IDLE_PROCS; i++)
		pid[i] = -1;
	res->ran = true;
	res->seconds = opt.idle_seconds;
	res->nprocs = np;
	unlink(qpath);
	if (pipe2(in, O_CLOEXEC) < 0 || null_fd < 0 || log_fd < 0) {
		snprintf(res->why, sizeof(res->why), "set-up: %s", strerror(errno));
		goto bad;
	}
	/* the producer reads an open pipe nobody writes to */
	pid[0] = spawn(pargv, in[0], null_fd, log_fd, cpu_a);
	for (int i = 1; i < np; i++) {
		char *cargv[] = {cons, (char *)"--config", cfg, (char *)"--name", idle_names[i], NULL};
		if (!nc)
			cargv[3] = NULL; /* the default consumer, as a plain mmapq-consumer */
		if (nc)
			snprintf(idle_names[i], sizeof(idle_names[i]), "fo%d", i - 1);
		else
			snprintf(idle_names[i], sizeof(idle_names[i]), "%s", MMAPQ_CONSUMER_DEFAULT);
		pid[i] = spawn(cargv, -1, null_fd, log_fd, cpu_b);
	}
	close(in[0]);
	in[0] = -1;
	/* until all have attached, then until all sleep where an idle daemon
	 * waits (polled, with deadlines; no sleeping on it) */
	deadline = now_ns() + IDLE_START_MS * 1000000ull;
	if (!tu_wait_role(qpath, pid[0], true, IDLE_START_MS))
		deadline = 0;
	for (int i = 1; i < np && deadline; i++)
		while ((ix[i] = consumer_entry(qpath, idle_names[i], pid[i])) < 0)
			if (now_ns() > deadline) {
				deadline = 0;
				break;
			} else {
				sched_yield();
			}
	if (!deadline) {
		snprintf(res->why, sizeof(res->why), "the daemons did not attach within %d s; see %s",
		         IDLE_START_MS / 1000, logp);
		goto bad;
	}
	real_qpath = realpath(qpath, NULL);
	deadline = now_ns() + IDLE_START_MS * 1000000ull;
	while (!real_qpath || !idle_waits(np, pid, ix, real_qpath)) {
		if (!real_qpath || now_ns() > deadline) {
			snprintf(res->why, sizeof(res->why), "the daemons did not reach their idle waits within %d s"
			         " (producer in system call %ld, a consumer in %ld); see %s", IDLE_START_MS / 1000,
			         syscall_of(pid[0]), syscall_of(pid[np - 1]), logp);
			goto bad;
		}
		sched_yield();
	}
	for (int i = 0; i < np; i++)
		if (proc_times(pid[i], &t0[i], &r0[i], &v0[i]) < 0) {
			snprintf(res->why, sizeof(res->why), "cannot read /proc/%d/stat", (int)pid[i]);
			goto bad;
		}
	ts.tv_sec = (time_t)opt.idle_seconds;
	ts.tv_nsec = (long)((opt.idle_seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	for (int i = 0; i < np; i++)
		if (proc_times(pid[i], &t1[i], &r1[i], &v1[i]) < 0) {
			snprintf(res->why, sizeof(res->why), "pid %d exited while idle; see %s", (int)pid[i], logp);
			goto bad;
		}
	for (int i = 0; i < np; i++) {
		res->ticks[i] = t1[i] - t0[i];
		res->run_ns[i] = r0[i] == UINT64_MAX || r1[i] == UINT64_MAX ? UINT64_MAX : r1[i] - r0[i];
		res->wakeups[i] = v1[i] - v0[i];
		res->cpu_pct[i] = res->run_ns[i] != UINT64_MAX ?
		                  (double)res->run_ns[i] / (opt.idle_seconds * 1e9) * 100 :
		                  (double)res->ticks[i] / (double)sysconf(_SC_CLK_TCK) / opt.idle_seconds * 100;
	}
	/* stop them: SIGTERM must end each within a second or two */
	for (int i = 0; i < np; i++) {
		kill(pid[i], SIGTERM);
		int st = tu_wait(pid[i], 5000);
		if (st == -ETIMEDOUT || tu_exit_code(st) != 0) {
			snprintf(res->why, sizeof(res->why), "%s did not exit 0 on SIGTERM (%d)",
			         idle_proc_label(res, i), st == -ETIMEDOUT ? -1 : tu_exit_code(st));
			if (st == -ETIMEDOUT)
				tu_kill(pid[i]);
			pid[i] = -1;
			goto bad;
		}
		pid[i] = -1;
	}
	for (int i = 0; i < np; i++)
		note("idle %s over %.1f s: %s %ld ticks, %.4f%% CPU, %" PRIu64 " wake-ups", name,
		     opt.idle_seconds, idle_proc_label(res, i), res->ticks[i], res->cpu_pct[i], res->wakeups[i]);
	goto out;
bad:
	res->failed = true;
	failed = true;
	note("idle %s: FAILED: %s", name, res->why);
	for (int i = 0; i < np; i++)
		if (pid[i] > 0)
			tu_kill(pid[i]);
out:
	if (in[0] >= 0)
		close(in[0]);
	if (in[1] >= 0)
		close(in[1]);
	if (null_fd >= 0)
		close(null_fd);
	if (log_fd >= 0)
		close(log_fd);
	unlink(qpath);
	free(real_qpath);
	free(cfg);
	free(qname);
	free(lname);
	free(qpath);
	free(logp);
	free(prod);
	free(cons);
}

void run_idle(void)
{
	idle_measure(&idle, "idle.ini", 0);
}

void run_fanout_idle(void)
{
	idle_measure(&fanout_idle, "fanout-idle.ini", FANOUT_MAX);
}
