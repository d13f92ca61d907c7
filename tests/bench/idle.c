/* SPDX-License-Identifier: MIT */
/*
 * idle.c -- an idle daemon pair (--idle): the real daemons, queue empty,
 * the producer reading an open pipe nobody writes to; the CPU time each
 * used over --idle-seconds, from /proc/PID/stat (ticks) and
 * /proc/PID/schedstat (ns), and their wake-ups.
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

struct idle_result idle;

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

/* Both daemons sleep where an idle pair waits: the producer in ppoll() on
 * its input, the consumer in futex() on the queue's not_empty word. */
static bool idle_waits(const pid_t pid[2], const char *qpath)
{
	return syscall_of(pid[0]) == SYS_ppoll &&
	       tu_in_futex_on(pid[1], qpath, offsetof(struct mmapq_header, consumers[0].not_empty.seq));
}

void run_idle(void)
{
	char *cfg = write_config("idle.ini", "null", 0, 0);
	char *qpath = tu_path(tmpdir, "idle.ini.q"), *logp = tu_path(tmpdir, "idle.log");
	char *prod = tu_path(bin_dir, "mmapq-producer"), *cons = tu_path(bin_dir, "mmapq-consumer");
	char *cargv[] = {cons, (char *)"--config", cfg, NULL};
	char *pargv[] = {prod, (char *)"--config", cfg, NULL};
	int in[2] = {-1, -1}, null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	int log_fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	pid_t pid[2] = {-1, -1};
	long t0[2], t1[2];
	uint64_t r0[2], r1[2], v0[2], v1[2];
	uint64_t deadline;
	char *real_qpath = NULL;
	struct timespec ts;

	idle.ran = true;
	idle.seconds = opt.idle_seconds;
	unlink(qpath);
	if (pipe2(in, O_CLOEXEC) < 0 || null_fd < 0 || log_fd < 0) {
		snprintf(idle.why, sizeof(idle.why), "set-up: %s", strerror(errno));
		goto bad;
	}
	/* the producer reads an open pipe nobody writes to */
	pid[0] = spawn(pargv, in[0], null_fd, log_fd, cpu_a);
	pid[1] = spawn(cargv, -1, null_fd, log_fd, cpu_b);
	close(in[0]);
	in[0] = -1;
	/* until both have attached, then until both sleep where an idle pair
	 * waits (polled, with deadlines; no sleeping on it) */
	if (!tu_wait_role(qpath, pid[0], true, IDLE_START_MS) ||
	    !tu_wait_role(qpath, pid[1], false, IDLE_START_MS)) {
		snprintf(idle.why, sizeof(idle.why), "the daemons did not attach within %d s; see %s",
		         IDLE_START_MS / 1000, logp);
		goto bad;
	}
	real_qpath = realpath(qpath, NULL);
	deadline = now_ns() + IDLE_START_MS * 1000000ull;
	while (!real_qpath || !idle_waits(pid, real_qpath)) {
		if (!real_qpath || now_ns() > deadline) {
			snprintf(idle.why, sizeof(idle.why), "the daemons did not reach their idle waits within %d s"
			         " (producer in system call %ld, consumer in %ld); see %s", IDLE_START_MS / 1000,
			         syscall_of(pid[0]), syscall_of(pid[1]), logp);
			goto bad;
		}
		sched_yield();
	}
	for (int i = 0; i < 2; i++)
		if (proc_times(pid[i], &t0[i], &r0[i], &v0[i]) < 0) {
			snprintf(idle.why, sizeof(idle.why), "cannot read /proc/%d/stat", (int)pid[i]);
			goto bad;
		}
	ts.tv_sec = (time_t)opt.idle_seconds;
	ts.tv_nsec = (long)((opt.idle_seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	for (int i = 0; i < 2; i++)
		if (proc_times(pid[i], &t1[i], &r1[i], &v1[i]) < 0) {
			snprintf(idle.why, sizeof(idle.why), "pid %d exited while idle; see %s", (int)pid[i], logp);
			goto bad;
		}
	for (int i = 0; i < 2; i++) {
		idle.ticks[i] = t1[i] - t0[i];
		idle.run_ns[i] = r0[i] == UINT64_MAX || r1[i] == UINT64_MAX ? UINT64_MAX : r1[i] - r0[i];
		idle.wakeups[i] = v1[i] - v0[i];
		idle.cpu_pct[i] = idle.run_ns[i] != UINT64_MAX ?
		                  (double)idle.run_ns[i] / (opt.idle_seconds * 1e9) * 100 :
		                  (double)idle.ticks[i] / (double)sysconf(_SC_CLK_TCK) / opt.idle_seconds * 100;
	}
	/* stop them: SIGTERM must end both within a second or two */
	for (int i = 0; i < 2; i++) {
		kill(pid[i], SIGTERM);
		int st = tu_wait(pid[i], 5000);
		if (st == -ETIMEDOUT || tu_exit_code(st) != 0) {
			snprintf(idle.why, sizeof(idle.why), "%s did not exit 0 on SIGTERM (%d)",
			         i ? "mmapq-consumer" : "mmapq-producer", st == -ETIMEDOUT ? -1 : tu_exit_code(st));
			if (st == -ETIMEDOUT)
				tu_kill(pid[i]);
			pid[i] = -1;
			goto bad;
		}
		pid[i] = -1;
	}
	note("idle pair over %.1f s: producer %ld ticks, %.4f%% CPU, %" PRIu64 " wake-ups; consumer %ld"
	     " ticks, %.4f%% CPU, %" PRIu64 " wake-ups", opt.idle_seconds, idle.ticks[0], idle.cpu_pct[0],
	     idle.wakeups[0], idle.ticks[1], idle.cpu_pct[1], idle.wakeups[1]);
	goto out;
bad:
	idle.failed = true;
	failed = true;
	note("idle: FAILED: %s", idle.why);
	for (int i = 0; i < 2; i++)
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
	free(qpath);
	free(logp);
	free(prod);
	free(cons);
}
