/* SPDX-License-Identifier: MIT */
/*
 * util.c -- what every part of mmapq_bench uses: messages, small I/O and
 * memory helpers, the control block and start barrier of the two children,
 * a cell's resources, child processes, and the interference measurement.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "testutil.h"

int cpu_a = -1, cpu_b = -1;
int ncpus_online;
char cpu_model[128] = "unknown";
char *tmpdir;
char *bin_dir;
bool failed;
uint64_t total_verified;
struct ctl *ctl;

void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("mmapq_bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int child_fail(const char *fmt, ...)
{
	va_list ap;
	char line[512];
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "mmapq_bench[%d]: FAIL: %s\n", (int)getpid(), line);
	return EXIT_FAIL;
}

void pin(int cpu)
{
	cpu_set_t set;
	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		note("cannot pin to CPU %d: %s", cpu, strerror(errno));
}

long read_long_file(const char *path, long dflt)
{
	FILE *f = fopen(path, "r");
	long v;
	if (!f)
		return dflt;
	if (fscanf(f, "%ld", &v) != 1)
		v = dflt;
	fclose(f);
	return v;
}

void *xalloc(size_t n)
{
	void *p = NULL;
	if (posix_memalign(&p, 64, n ? n : 64)) {
		note("out of memory");
		exit(EXIT_FAIL);
	}
	memset(p, 0, n);
	return p;
}

uint32_t pow2_floor(uint64_t v)
{
	uint32_t p = 1;
	while ((uint64_t)p * 2 <= v && p < (1u << 24))
		p *= 2;
	return p;
}

int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double median(const double *v, int n)
{
	double s[MAX_RUNS];
	if (n <= 0)
		return 0;
	memcpy(s, v, sizeof(double) * (size_t)n);
	qsort(s, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

void spread(const double *v, int n, double *med, double *lo, double *hi)
{
	if (med)
		*med = median(v, n);
	*lo = *hi = n ? v[0] : 0;
	for (int i = 1; i < n; i++) {
		*lo = v[i] < *lo ? v[i] : *lo;
		*hi = v[i] > *hi ? v[i] : *hi;
	}
}

int ratio_spread(const double *num, int nnum, const double *den, int nden, double *med, double *lo,
                 double *hi)
{
	double r[MAX_RUNS] = {0}; /* zeroed: gcc cannot tell that spread reads only the k filled */
	int n = nnum < nden ? nnum : nden, k = 0;

	for (int i = 0; i < n; i++)
		if (den[i] > 0)
			r[k++] = num[i] / den[i];
	spread(r, k, med, lo, hi);
	return k;
}

/* ---- interference: what else ran on the machine meanwhile ------------------ */

/* The numbers are only as good as the machine is quiet: per section, the
 * CPU time used by processes other than this benchmark and its children
 * (all CPUs' busy time in /proc/stat minus our own rusage), and the time
 * the hypervisor stole (steal), both as a share of the machine's CPUs. */
struct load_section loads[16];
int nloads;

void load_mark(struct load_mark *m)
{
	unsigned long long v[10] = {0};
	struct rusage self, kids;
	double tck = (double)sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "r");

	if (f) {
		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		           &v[4], &v[5], &v[6], &v[7]) != 8)
			memset(v, 0, sizeof(v));
		fclose(f);
	}
	/* user nice system idle iowait irq softirq steal */
	m->busy_s = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / tck;
	m->steal_s = (double)v[7] / tck;
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	m->ours_s = (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec +
	                     kids.ru_stime.tv_sec) +
	            (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec +
	                     kids.ru_stime.tv_usec) / 1e6;
	m->wall_s = (double)now_ns() / 1e9;
}

void load_section_end(const char *name, const struct load_mark *a)
{
	struct load_mark b;
	struct load_section *l;
	double cap;

	if (nloads >= (int)(sizeof(loads) / sizeof(loads[0])))
		return;
	load_mark(&b);
	l = &loads[nloads++];
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->wall_s = b.wall_s - a->wall_s;
	cap = l->wall_s * (ncpus_online > 0 ? ncpus_online : 1);
	l->others_pct = cap > 0 ? ((b.busy_s - a->busy_s) - (b.ours_s - a->ours_s)) / cap * 100 : 0;
	if (l->others_pct < 0)
		l->others_pct = 0; /* tick granularity */
	l->steal_pct = cap > 0 ? (b.steal_s - a->steal_s) / cap * 100 : 0;
	if (l->others_pct > 5 || l->steal_pct > 5)
		note("%s: other processes used %.0f%% and the hypervisor stole %.0f%% of the CPUs meanwhile:"
		     " numbers disturbed", name, l->others_pct, l->steal_pct);
}

/* ---- the control block ------------------------------------------------------- */

void barrier(void)
{
	__atomic_fetch_add(&ctl->ready, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&ctl->ready, __ATOMIC_ACQUIRE) < ctl->parties)
		sched_yield();
}

void record_rusage(int side)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		ctl->nvcsw[side] = ru.ru_nvcsw;
		ctl->nivcsw[side] = ru.ru_nivcsw;
	}
}

void cpu_window(int slot, bool end)
{
	struct timespec ts;
	double t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	ctl->cpu_s[slot] = end ? ctl->cpu_s[slot] + t : -t;
}

/* ---- a cell's resources ---------------------------------------------------------- */

void cell_init(struct cell *c)
{
	c->fd[0] = c->fd[1] = c->fd[2] = c->fd[3] = -1;
	c->mq[0] = c->mq[1] = (mqd_t)-1;
}

void cell_parent_close(struct cell *c)
{
	for (int i = 0; i < 4; i++)
		if (c->fd[i] >= 0) {
			close(c->fd[i]);
			c->fd[i] = -1;
		}
}

void cell_teardown(struct cell *c)
{
	cell_parent_close(c);
	for (int i = 0; i < 2; i++) {
		if (c->mq[i] != (mqd_t)-1) {
			mq_close(c->mq[i]);
			c->mq[i] = (mqd_t)-1;
		}
		if (c->ring[i]) {
			munmap(c->ring[i], c->ring_len);
			c->ring[i] = NULL;
		}
		if (c->path[i][0]) {
			unlink(c->path[i]);
			c->path[i][0] = '\0';
		}
	}
}

/* ---- child processes ---------------------------------------------------------------- */

pid_t fork_pinned(int cpu)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0)
		pin(cpu);
	return pid;
}

static pid_t fork_child(child_fn fn, struct cell *c, int cpu)
{
	pid_t pid = fork_pinned(cpu);

	if (pid == 0)
		_exit(fn(c));
	return pid;
}

static struct child_use rusage_use(const struct rusage *ru)
{
	return (struct child_use){ru->ru_maxrss, (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
	                          (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6};
}

/* A consumer that found a bad record leaves its producer blocked on a full
 * queue (or spinning): hence the kill of the others as soon as one fails. */
void wait_all(int n, const pid_t pid[], int st[], int timeout_ms, struct child_use use[])
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	int fd[1 + FANOUT_MAX];
	bool done[1 + FANOUT_MAX], pidfds = true;
	int left = n;

	for (int i = 0; i < n; i++) {
		fd[i] = (int)syscall(SYS_pidfd_open, pid[i], 0);
		pidfds = pidfds && fd[i] >= 0;
		done[i] = false;
		if (use)
			use[i] = (struct child_use){-1, 0};
	}
	if (!pidfds) {
		/* no pidfds: one after the other */
		for (int i = 0; i < n; i++) {
			uint64_t now = tu_now_ms();
			st[i] = tu_wait(pid[i], now < end ? (int)(end - now) : 1);
			if (st[i] == -ETIMEDOUT)
				tu_kill(pid[i]);
			if (fd[i] >= 0)
				close(fd[i]);
		}
		return;
	}
	while (left > 0) {
		struct pollfd pf[1 + FANOUT_MAX];
		int idx[1 + FANOUT_MAX], m = 0;
		uint64_t now = tu_now_ms();

		for (int i = 0; i < n; i++)
			if (!done[i]) {
				pf[m] = (struct pollfd){.fd = fd[i], .events = POLLIN};
				idx[m++] = i;
			}
		if (now >= end) {
			for (int k = 0; k < m; k++) {
				tu_kill(pid[idx[k]]);
				st[idx[k]] = -ETIMEDOUT;
				done[idx[k]] = true;
			}
			break;
		}
		if (poll(pf, (nfds_t)m, (int)(end - now)) < 0 && errno != EINTR)
			break;
		for (int k = 0; k < m; k++) {
			int i = idx[k];
			if (done[i] || !(pf[k].revents & (POLLIN | POLLHUP)))
				continue;
			struct rusage ru;
			while (wait4(pid[i], &st[i], 0, &ru) < 0 && errno == EINTR)
				;
			if (use)
				use[i] = rusage_use(&ru);
			done[i] = true;
			left--;
			if (tu_exit_code(st[i]) == 0)
				continue;
			for (int o = 0; o < n; o++)
				if (!done[o]) {
					tu_kill(pid[o]);
					st[o] = W_EXITCODE(0, SIGKILL);
					done[o] = true;
					left--;
				}
		}
	}
	for (int i = 0; i < n; i++)
		close(fd[i]);
}

int run_group(int n, const child_fn fn[], struct cell *const cell[], const int cpu[], char *why,
              size_t whylen)
{
	pid_t pid[1 + FANOUT_MAX] = {0};
	int st[1 + FANOUT_MAX] = {0}, started = 0;

	memset(ctl, 0, sizeof(*ctl));
	ctl->parties = (uint32_t)n;
	while (started < n && (pid[started] = fork_child(fn[started], cell[started], cpu[started])) > 0)
		started++;
	for (int i = 0; i < n; i++)
		cell_parent_close(cell[i]);
	if (started < n) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		for (int i = 0; i < started; i++)
			tu_kill(pid[i]);
		return -1;
	}
	wait_all(n, pid, st, CHILD_TIMEOUT_MS, NULL);
	for (int i = 0; i < n; i++)
		if (st[i] == -ETIMEDOUT) {
			snprintf(why, whylen, "timed out after %d s", CHILD_TIMEOUT_MS / 1000);
			return -1;
		}
	for (int i = 0; i < n; i++)
		if (tu_exit_code(st[i]) != 0) {
			int k = snprintf(why, whylen, "children exited");
			for (int j = 0; j < n && k > 0 && (size_t)k < whylen; j++)
				k += snprintf(why + k, whylen - (size_t)k, " %d", tu_exit_code(st[j]));
			if (k > 0 && (size_t)k < whylen)
				snprintf(why + k, whylen - (size_t)k, " (128+9: killed when another failed)");
			return -1;
		}
	return 0;
}

int run_pair(child_fn a, child_fn b, struct cell *c, char *why, size_t whylen)
{
	const child_fn fn[2] = {a, b};
	struct cell *const cell[2] = {c, c};
	const int cpu[2] = {cpu_a, cpu_b};

	return run_group(2, fn, cell, cpu, why, whylen);
}

int pipe_pair(const char *in, const char *out, pipe_end_fn *left, pipe_end_fn *right, const void *ctx,
              const char *const names[2], double *secs, struct child_use use[2], char *why,
              size_t whylen)
{
	int pfd[2], st[2];
	pid_t pid[2];
	uint64_t t0;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return -1;
	}
	t0 = now_ns();
	pid[0] = fork_pinned(cpu_a);
	if (pid[0] == 0) {
		int in_fd = open(in, O_RDONLY | O_CLOEXEC);

		close(pfd[0]);
		if (in_fd < 0)
			_exit(child_fail("%s: %s", in, strerror(errno)));
		_exit(left(ctx, in_fd, pfd[1]));
	}
	pid[1] = fork_pinned(cpu_b);
	if (pid[1] == 0) {
		int out_fd = out ? open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640) : -1;

		close(pfd[1]);
		if (out && out_fd < 0)
			_exit(child_fail("%s: %s", out, strerror(errno)));
		_exit(right(ctx, pfd[0], out_fd));
	}
	close(pfd[0]);
	close(pfd[1]);
	wait_pair(pid, st, CHILD_TIMEOUT_MS, use);
	*secs = (double)(now_ns() - t0) / 1e9;
	if (tu_exit_code(st[0]) != 0 || tu_exit_code(st[1]) != 0) {
		snprintf(why, whylen, "%s exited %d, %s %d", names[0], tu_exit_code(st[0]), names[1],
		         tu_exit_code(st[1]));
		return -1;
	}
	return 0;
}

int wait_one(pid_t pid, int timeout_ms, struct child_use *use)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0), st = 0;
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	struct rusage ru;

	*use = (struct child_use){-1, 0};
	if (fd >= 0) {
		int r;
		while ((r = poll(&pf, 1, timeout_ms)) < 0 && errno == EINTR)
			;
		close(fd);
		if (r == 0) {
			tu_kill(pid);
			return -1;
		}
	}
	while (wait4(pid, &st, 0, &ru) < 0)
		if (errno != EINTR)
			return -1;
	*use = rusage_use(&ru);
	return tu_exit_code(st);
}

pid_t spawn(char *const argv[], int in_fd, int out_fd, int err_fd, int cpu)
{
	pid_t pid = fork_pinned(cpu);

	if (pid == 0) {
		if (in_fd >= 0)
			dup2(in_fd, STDIN_FILENO);
		dup2(out_fd, STDOUT_FILENO);
		dup2(err_fd, STDERR_FILENO);
		unsetenv("NOTIFY_SOCKET");
		unsetenv("WATCHDOG_USEC");
		unsetenv("WATCHDOG_PID");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		unsetenv("MMAPQ_FAULT");
		execvp(argv[0], argv); /* a path with a '/' as is, else looked for in PATH */
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

int cat_pair(const char *in, bool to_file, char *why, size_t whylen, double *secs,
             struct child_use use[2])
{
	char *out = tu_path(tmpdir, "cat.out");
	char *argv[] = {(char *)"cat", NULL};
	int pfd[2] = {-1, -1}, in_fd = open(in, O_RDONLY | O_CLOEXEC), ret = -1;
	int out_fd = to_file ? open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) :
	                       open("/dev/null", O_WRONLY | O_CLOEXEC);
	int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	pid_t pid[2];
	int st[2];
	uint64_t t0, t1;

	if (in_fd < 0 || out_fd < 0 || null_fd < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(why, whylen, "open: %s", strerror(errno));
		goto out;
	}
	t0 = now_ns();
	pid[1] = spawn(argv, pfd[0], out_fd, null_fd, cpu_b);
	pid[0] = spawn(argv, in_fd, pfd[1], null_fd, cpu_a);
	close(pfd[0]);
	close(pfd[1]);
	pfd[0] = pfd[1] = -1;
	wait_pair(pid, st, CHILD_TIMEOUT_MS, use);
	t1 = now_ns();
	if (tu_exit_code(st[0]) != 0 || tu_exit_code(st[1]) != 0) {
		snprintf(why, whylen, "cat | cat: %d, %d", tu_exit_code(st[0]), tu_exit_code(st[1]));
		goto out;
	}
	if (to_file && files_equal(in, out, why, whylen) < 0)
		goto out;
	*secs = (double)(t1 - t0) / 1e9;
	ret = 0;
out:
	for (int i = 0; i < 2; i++)
		if (pfd[i] >= 0)
			close(pfd[i]);
	if (in_fd >= 0)
		close(in_fd);
	if (out_fd >= 0)
		close(out_fd);
	if (null_fd >= 0)
		close(null_fd);
	unlink(out);
	free(out);
	return ret;
}

int run_tool(char *const argv[], const char *log_path, char *out, size_t outlen)
{
	int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	int log_fd = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
	int pfd[2] = {-1, -1}, code = -1;
	pid_t pid = -1;

	if (null_fd < 0 || (out && pipe2(pfd, O_CLOEXEC) < 0))
		goto out;
	if (log_fd >= 0) {
		/* what is run, before what it says */
		for (int i = 0; argv[i]; i++)
			dprintf(log_fd, "%s%s", i ? " " : "$ ", argv[i]);
		dprintf(log_fd, "\n");
	}
	pid = spawn(argv, null_fd, out ? pfd[1] : log_fd >= 0 ? log_fd : null_fd,
	            log_fd >= 0 ? log_fd : null_fd, -1);
	if (pid < 0)
		goto out;
	if (out) {
		size_t len = 0;
		char *got;
		close(pfd[1]);
		pfd[1] = -1;
		got = tu_read_all(pfd[0], CHILD_TIMEOUT_MS, &len);
		snprintf(out, outlen, "%s", got ? got : "");
		out[strcspn(out, "\n")] = '\0'; /* the first line */
		free(got);
	}
	{
		struct child_use use;
		code = wait_one(pid, CHILD_TIMEOUT_MS, &use);
	}
out:
	for (int i = 0; i < 2; i++)
		if (pfd[i] >= 0)
			close(pfd[i]);
	if (null_fd >= 0)
		close(null_fd);
	if (log_fd >= 0)
		close(log_fd);
	return code;
}
