/* SPDX-License-Identifier: MIT */
/*
 * test_input -- the producer at the edges of its input.
 *
 *   stop_mid_record        SIGTERM while stdin (a pipe) is in the middle of
 *                          "1234567": the producer reads on to the end of
 *                          that record and no further; the next producer on
 *                          the same pipe starts at a record boundary
 *   stop_mid_record_file   the same with stdin a regular file shared by two
 *                          producers: rewound to the record's start
 *   stop_mid_record_stress 20,000 x "1234567" written in random pieces while
 *                          producers are stopped and restarted 25 times: every
 *                          record arrives whole, exactly once
 *   stop_unfinished        the writer never finishes the record: the stop
 *                          still ends within its bound, saying so
 *   full_then_eof_pipe     exactly capacity records and end of input, no
 *                          consumer: exit 0 (not a wait for room forever)
 *   full_then_eof_file     the same from a regular file
 *   full_then_eof_line     the same with line records
 *   large_records          64 lines of 256 KiB through capacity 4: read in
 *                          large pieces, not a few bytes at a time (counted
 *                          read system calls, /proc/PID/io syscr)
 *   sigxfsz_create         a file size limit below the queue's size: exit 73
 *                          with "File too large", no temporary file left
 *
 * Nothing sleeps: waits are on pidfds, pipes (FIONREAD to see the producer
 * took the bytes), each with a deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define EXIT_MS 10000

static char *dir, *qpath;

#define EXPECT(cond, ...) TU_EXPECT(qpath, cond, __VA_ARGS__)

/* A config with the given [queue] lines; returns its path. */
static char *config(const char *queue_extra)
{
	char *path = tu_path(dir, "mmapq.ini");
	char *text = tu_xasprintf("[queue]\npath = %s\n%s[consumer]\noutput = null\n", qpath, queue_extra);

	tu_write_file(path, text, strlen(text));
	free(text);
	return path;
}

static void setup(void)
{
	dir = tu_mkdtemp("input");
	qpath = tu_path(dir, "queue");
}

/* The producer with stdin = in (its stderr to errfd, -1: /dev/null). */
static pid_t producer(const char *cfg, int in, int errfd, int rlimit_resource, unsigned long long limit)
{
	char *argv[] = {tu_bin("mmapq-producer"), "--config", (char *)cfg, NULL};
	struct tu_child c = TU_CHILD_INIT;
	pid_t pid;

	c.stdio[0] = in;
	c.stdio[2] = errfd;
	c.rlimit_resource = rlimit_resource;
	c.rlimit = limit;
	pid = tu_start(argv, &c);
	free(argv[0]);
	return pid;
}

static int exit_code(pid_t pid)
{
	int st = tu_wait(pid, EXIT_MS);

	if (st == -ETIMEDOUT) {
		tu_dump_queue(qpath, "did not exit");
		tu_kill(pid);
		return -1;
	}
	return tu_exit_code(st);
}

/* Wait until the pipe whose write end is fd is empty: the reader took it. */
static bool drained(int fd, int timeout_ms)
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	int n;

	while (ioctl(fd, FIONREAD, &n) == 0 && n > 0)
		if (tu_now_ms() >= end)
			return false;
		else
			sched_yield();
	return true;
}

/* Wait until a signal sent to pid is no longer pending: its handler ran
 * (the producer blocks SIGTERM outside its waits, so it may take a moment). */
static void wait_signal_taken(pid_t pid)
{
	char *path = tu_xasprintf("/proc/%d/status", (int)pid);
	uint64_t end = tu_now_ms() + EXIT_MS;

	for (;;) {
		char *st = tu_read_file(path, NULL);
		bool pending = st && (!strstr(st, "\nSigPnd:\t0000000000000000\n") ||
		                      !strstr(st, "\nShdPnd:\t0000000000000000\n"));
		free(st);
		if (!pending)
			break;
		EXPECT(tu_now_ms() < end, "pid %d did not take its signal", (int)pid);
		sched_yield();
	}
	free(path);
}

/* The queue's int records head..tail as "v,v,...", and their count. */
static char *records(size_t *count)
{
	struct mmapq_params p = {.path = qpath, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_error err;
	struct mmapq_status st;
	struct mmapq *q;
	size_t cap = 64, len = 0;
	char *s = calloc(1, cap), *buf;

	EXPECT(s && mmapq_open(&p, &q, &err) == 0, "open: %s", err.msg);
	buf = malloc(mmapq_record_size(q));
	EXPECT(buf, "malloc");
	EXPECT(mmapq_status(q, &st) == 0, "status");
	*count = 0;
	for (uint64_t seq = st.head; seq < st.tail; seq++) {
		struct mmapq_record rec;
		char v[32];
		int n;

		EXPECT(mmapq_peek(q, seq, buf, mmapq_record_size(q), &rec) == 0, "peek %" PRIu64, seq);
		if (st.format == MMAPQ_FORMAT_INT) {
			int64_t x;
			memcpy(&x, rec.data, sizeof(x));
			n = snprintf(v, sizeof(v), "%" PRId64, x);
		} else {
			n = snprintf(v, sizeof(v), "%.*s", (int)(rec.len < 20 ? rec.len : 20),
			             (const char *)rec.data);
		}
		if (len + (size_t)n + 2 > cap) {
			cap = (cap + (size_t)n) * 2;
			s = realloc(s, cap);
			EXPECT(s, "realloc");
		}
		len += (size_t)snprintf(s + len, cap - len, "%s%s", len ? "," : "", v);
		(*count)++;
	}
	mmapq_close(q);
	free(buf);
	return s;
}

/* The queue holds n records, each of them value. */
static void expect_all(const char *value, size_t n)
{
	size_t count = 0, bad = 0;
	char *got = records(&count);

	for (char *t = strtok(got, ","); t; t = strtok(NULL, ","))
		bad += strcmp(t, value) != 0;
	EXPECT(count == n && bad == 0, "%zu records (want %zu), %zu of them not %s", count, n, bad, value);
	free(got);
}

static void expect_records(const char *want)
{
	size_t n;
	char *got = records(&n);

	EXPECT(!strcmp(got, want), "the queue holds '%s', want '%s'", got, want);
	free(got);
}

/* ---- a stop in the middle of a record ---------------------------------- */

static void stop_mid_record(void)
{
	int pfd[2];
	pid_t pid;
	int code;

	setup();
	char *cfg = config("");
	if (pipe2(pfd, O_CLOEXEC) < 0)
		exit(99);
	pid = producer(cfg, pfd[0], -1, -1, 0);
	tu_write_all(pfd[1], "1234", 4);
	EXPECT(drained(pfd[1], EXIT_MS), "the producer did not read '1234'");
	kill(pid, SIGTERM);
	wait_signal_taken(pid);
	tu_write_all(pfd[1], "567 8 ", 6);
	code = exit_code(pid);
	EXPECT(code == 0, "producer stopped mid-record: exit %d", code);
	/* the next reader of the pipe starts right after "1234567" */
	close(pfd[1]);
	pid = producer(cfg, pfd[0], -1, -1, 0);
	code = exit_code(pid);
	EXPECT(code == 0, "second producer: exit %d", code);
	expect_records("1234567,8");
	close(pfd[0]);
	free(cfg);
}

/*
 * stdin a regular file shared by two producers (one open file
 * description, as in `{ mmapq-producer; mmapq-producer; } < in.txt`): the
 * first is frozen right after its first 64 KiB read, which ends inside a
 * record (65536 = 10922 x "12345 " + "1234"), and stopped there.  The
 * file is rewound to the start of that record, so the second producer reads
 * it whole.
 */
static void stop_mid_record_file(void)
{
	enum { N = 200000 };
	char *in, *data = malloc(N * 6), *env[] = {"MMAPQ_FAULT=producer.loop@2:stop", NULL};
	char *argv[4];
	struct tu_child c = TU_CHILD_INIT;
	int fd, code;
	pid_t pid;
	tu_need_faults(); /* the producer stops itself at producer.loop */

	setup();
	in = tu_path(dir, "in.txt");
	char *cfg = config("capacity = 262144\n");
	EXPECT(data, "malloc");
	for (int i = 0; i < N; i++)
		memcpy(data + i * 6, "12345 ", 6);
	tu_write_file(in, data, N * 6);
	fd = open(in, O_RDONLY | O_CLOEXEC);
	EXPECT(fd >= 0, "open %s", in);
	argv[0] = tu_bin("mmapq-producer");
	argv[1] = "--config";
	argv[2] = cfg;
	argv[3] = NULL;
	c.stdio[0] = fd;
	c.env_extra = env;
	pid = tu_start(argv, &c);
	for (uint64_t end = tu_now_ms() + EXIT_MS;; sched_yield()) {
		char *path = tu_xasprintf("/proc/%d/status", (int)pid), *st = tu_read_file(path, NULL);
		bool frozen = st && strstr(st, "\nState:\tT");
		free(st);
		free(path);
		if (frozen)
			break;
		EXPECT(tu_now_ms() < end, "the producer did not stop at its second loop");
	}
	EXPECT(lseek(fd, 0, SEEK_CUR) == 65536, "the first read took %lld bytes, not 65536",
	       (long long)lseek(fd, 0, SEEK_CUR));
	kill(pid, SIGTERM);
	kill(pid, SIGCONT);
	code = exit_code(pid);
	EXPECT(code == 0, "first producer: exit %d", code);
	EXPECT(lseek(fd, 0, SEEK_CUR) == 65532, "after the stop the file is at %lld, want 65532 (the"
	       " start of the unfinished record)", (long long)lseek(fd, 0, SEEK_CUR));
	pid = producer(cfg, fd, -1, -1, 0);
	code = exit_code(pid);
	EXPECT(code == 0, "second producer: exit %d", code);
	expect_all("12345", N);
	close(fd);
	free(argv[0]);
	free(data);
	free(cfg);
	free(in);
}

/*
 * Stops mid-record, many: 20,000 x "1234567" through one pipe in pieces
 * of 1 to 97 bytes, the producer stopped and restarted 25 times while the
 * pieces flow.  Every record must be 1234567, exactly 20,000 of them.
 */
static void stop_mid_record_stress(void)
{
	enum { N = 20000, RESTARTS = 25 };
	static const char rec[] = "1234567 ";
	size_t len = N * (sizeof(rec) - 1), off = 0, per = len / (RESTARTS + 1);
	char *data = malloc(len);
	int pfd[2];

	setup();
	char *cfg = config("capacity = 32768\n");
	EXPECT(data && pipe2(pfd, O_CLOEXEC) == 0, "setup");
	for (size_t i = 0; i < N; i++)
		memcpy(data + i * (sizeof(rec) - 1), rec, sizeof(rec) - 1);
	fcntl(pfd[1], F_SETFL, O_NONBLOCK);
	srand(12345);
	for (int r = 0; r <= RESTARTS; r++) {
		pid_t pid = producer(cfg, pfd[0], -1, -1, 0);
		int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		size_t stop_at = r == RESTARTS || off + per > len ? len : off + per;
		bool stopped = false;
		int st;

		EXPECT(pidfd >= 0, "pidfd_open");
		for (;;) {
			/* once it is told to stop, a little more, up to a record's
			 * end: enough for it to end the record it is in, the rest
			 * is for the next one (a writer that never ends the
			 * record is stop_unfinished) */
			size_t cap = (stop_at + 100) / (sizeof(rec) - 1) * (sizeof(rec) - 1);
			bool more = off < len && (!stopped || off < cap);
			struct pollfd pf[2] = {{.fd = pidfd, .events = POLLIN},
			                       {.fd = more ? pfd[1] : -1, .events = POLLOUT}};
			if (off >= stop_at && !stopped) {
				if (r == RESTARTS) {
					close(pfd[1]); /* the last one ends at end of input */
					pfd[1] = -1;
					pf[1].fd = -1;
				} else {
					/* it took what we wrote (so it runs, signal
					 * handlers in place): stop it where our last
					 * piece ended, mostly inside a record */
					EXPECT(tu_wait_role(qpath, pid, true, EXIT_MS), "round %d: not attached", r);
					EXPECT(drained(pfd[1], EXIT_MS), "round %d: nothing read", r);
					kill(pid, SIGTERM);
					/* the rest comes only once it knows it stops */
					wait_signal_taken(pid);
				}
				stopped = true;
			}
			EXPECT(poll(pf, 2, EXIT_MS) > 0, "round %d: no progress (offset %zu)", r, off);
			if (pf[0].revents)
				break;
			if (pf[1].revents & POLLOUT) {
				size_t n = (size_t)(rand() % 97) + 1;
				if (n > len - off)
					n = len - off;
				if (stopped && n > cap - off)
					n = cap - off;
				ssize_t k = write(pfd[1], data + off, n);
				if (k > 0)
					off += (size_t)k;
			}
		}
		close(pidfd);
		st = tu_wait(pid, EXIT_MS);
		EXPECT(tu_exit_code(st) == 0, "round %d: producer exit %d", r, tu_exit_code(st));
	}
	expect_all("1234567", N);
	free(data);
	close(pfd[0]);
	free(cfg);
}

static void stop_unfinished(void)
{
	int pfd[2], efd[2];
	pid_t pid;
	int code;

	setup();
	char *cfg = config("");
	if (pipe2(pfd, O_CLOEXEC) < 0 || pipe2(efd, O_CLOEXEC) < 0)
		exit(99);
	pid = producer(cfg, pfd[0], efd[1], -1, 0);
	close(efd[1]);
	tu_write_all(pfd[1], "7 1234", 6);
	EXPECT(drained(pfd[1], EXIT_MS), "the producer did not read");
	kill(pid, SIGTERM);
	code = exit_code(pid); /* the writer stays silent: the bounded wait ends */
	char *err = tu_read_all(efd[0], EXIT_MS, NULL);
	EXPECT(code == 0 && err && strstr(err, "did not finish it within 2 s: its first 4 bytes are dropped"),
	       "exit %d, stderr '%s'", code, err ? err : "");
	expect_records("7");
	free(err);
	close(pfd[0]);
	close(pfd[1]);
	close(efd[0]);
	free(cfg);
}

/* ---- full, then end of input --------------------------------------------- */

static void full_then_eof(const char *queue_extra, const char *input, const char *want, bool file)
{
	int in;
	pid_t pid;
	int code;

	setup();
	char *cfg = config(queue_extra);
	if (file) {
		char *path = tu_path(dir, "in.txt");
		tu_write_file(path, input, strlen(input));
		in = open(path, O_RDONLY | O_CLOEXEC);
		free(path);
	} else {
		int pfd[2];
		if (pipe2(pfd, O_CLOEXEC) < 0)
			exit(99);
		tu_write_all(pfd[1], input, strlen(input));
		close(pfd[1]);
		in = pfd[0];
	}
	pid = producer(cfg, in, -1, -1, 0);
	close(in);
	code = exit_code(pid);
	EXPECT(code == 0, "exactly capacity records, then end of input, no consumer: exit %d"
	       " (want 0 at once)", code);
	expect_records(want);
	free(cfg);
}

static void full_then_eof_pipe(void)
{
	full_then_eof("capacity = 4\n", "1 2 3 4\n", "1,2,3,4", false);
}

static void full_then_eof_file(void)
{
	full_then_eof("capacity = 4\n", "1 2 3 4", "1,2,3,4", true);
}

static void full_then_eof_line(void)
{
	full_then_eof("capacity = 2\nformat = line\n", "one\ntwo\n", "one,two", false);
}

/* ---- large records --------------------------------------------------------- */

static uint64_t syscr(pid_t pid)
{
	char *path = tu_xasprintf("/proc/%d/io", (int)pid), *text = tu_read_file(path, NULL), *p;
	uint64_t v = UINT64_MAX;

	if (text && (p = strstr(text, "syscr: ")))
		v = strtoull(p + 7, NULL, 10);
	free(text);
	free(path);
	return v;
}

/*
 * 64 lines of 256 KiB through capacity 4 (16 MiB): the producer is near
 * full all the time.  It reads up to the end of the last record that fits,
 * not one byte per free slot (a few bytes per read(), over a million calls).
 * Counted, not timed: fewer than 5,000 read calls for 16 MiB.
 */
static void large_records(void)
{
	enum { LINES = 64, SIZE = 256 * 1024 };
	char *line = malloc(SIZE + 1);
	char *argv[] = {tu_bin("mmapq-consumer"), "--config", NULL, "--count", "64", NULL};
	struct tu_child cc = TU_CHILD_INIT;
	int pfd[2];
	pid_t pid, cons;
	uint64_t reads;
	int code;

	setup();
	char *cfg = config("capacity = 4\nformat = line\nrecord_size = 262144\n");
	argv[2] = cfg;
	EXPECT(line && pipe2(pfd, O_CLOEXEC) == 0, "setup");
	memset(line, 'x', SIZE);
	line[SIZE] = '\n';
	pid = producer(cfg, pfd[0], -1, -1, 0);
	cons = tu_start(argv, &cc);
	for (int i = 0; i < LINES; i++)
		EXPECT(tu_write_all(pfd[1], line, SIZE + 1) == 0, "write line %d", i);
	code = tu_exit_code(tu_wait(cons, 60000));
	EXPECT(code == 0, "consumer of 64 x 256 KiB: exit %d", code);
	reads = syscr(pid); /* the producer still waits for more input */
	close(pfd[1]);
	code = exit_code(pid);
	EXPECT(code == 0, "producer: exit %d", code);
	EXPECT(reads < 5000, "the producer made %" PRIu64 " read calls for 16 MiB of 256 KiB records", reads);
	close(pfd[0]);
	free(line);
	free(argv[0]);
	free(cfg);
}

/* ---- file size limit ---------------------------------------------------------- */

static void sigxfsz_create(void)
{
	int efd[2], code;
	pid_t pid;

	setup();
	char *cfg = config("capacity = 1024\n");
	if (pipe2(efd, O_CLOEXEC) < 0)
		exit(99);
	pid = producer(cfg, -1, efd[1], RLIMIT_FSIZE, 16384);
	close(efd[1]);
	char *err = tu_read_all(efd[0], EXIT_MS, NULL);
	code = exit_code(pid);
	EXPECT(code == 73 && err && strstr(err, "File too large"),
	       "producer creating a queue over RLIMIT_FSIZE: exit %d (want 73), stderr '%s'", code,
	       err ? err : "");
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		EXPECT(!strstr(e->d_name, ".tmp."), "temporary file %s left behind", e->d_name);
	if (d)
		closedir(d);
	free(err);
	close(efd[0]);
	free(cfg);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"stop_mid_record", stop_mid_record},
		{"stop_mid_record_file", stop_mid_record_file},
		{"stop_mid_record_stress", stop_mid_record_stress},
		{"stop_unfinished", stop_unfinished},
		{"full_then_eof_pipe", full_then_eof_pipe},
		{"full_then_eof_file", full_then_eof_file},
		{"full_then_eof_line", full_then_eof_line},
		{"large_records", large_records},
		{"sigxfsz_create", sigxfsz_create},
	};
	return tu_main_cases(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
