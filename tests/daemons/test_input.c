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
 *   stop_mid_binary        format binary: SIGTERM while the pipe is inside a
 *                          record's length prefix, and inside its payload:
 *                          read on to its end and no further
 *   stop_mid_binary_file   the same with stdin a regular file shared by two
 *                          producers: rewound to the record's start
 *   full_then_eof_pipe     exactly as many records as the ring holds (a
 *                          64-byte ring: 4 frames of 16) and end of input, no
 *                          consumer: exit 0 (not a wait for room forever)
 *   full_then_eof_file     the same from a regular file
 *   full_then_eof_line     the same with line records
 *   full_then_eof_binary   the same with binary records
 *   large_records          64 lines of 256 KiB through a ring of 2 MiB: read
 *                          in large pieces, not a few bytes at a time (counted
 *                          read system calls, /proc/PID/io syscr)
 *   line_64k_defaults      the shipped geometry (size 4M, max_record 64K):
 *                          lines of 64 KiB (CRLF too) are records, byte for
 *                          byte; one byte more is "line too long"
 *   binary_round_trip      format binary from a pipe: every byte value,
 *                          empty records, records of max_record, a record
 *                          longer than that skipped; the stream written in
 *                          pieces that split the records at every offset:
 *                          each record in the queue byte for byte
 *   binary_round_trip_file the same records from a regular file
 *   wait_for_its_room      block: a record that does not fit stays in the
 *                          input, and is read and published as soon as there
 *                          is room for its frame, less than max_record's
 *   drop_what_does_not_fit drop: a record whose frame does not fit is
 *                          dropped and counted, smaller ones after it that
 *                          fit are published
 *   sigxfsz_create         a file size limit below the queue's size: exit 73
 *                          with "File too large", no temporary file left
 *
 * Nothing sleeps: waits are on pidfds, pipes (FIONREAD to see the producer
 * took the bytes), the queue's tail, each with a deadline.  The records in
 * the queue are read back with the library (an observer's peek, or a
 * consumer's get).
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
#define EXPECT_INT(a, b) TU_EXPECT_INT(qpath, a, b)

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
	tu_track(pid);
	free(argv[0]);
	return pid;
}

static int exit_code(pid_t pid)
{
	int st = tu_wait(pid, EXIT_MS);

	if (st == -ETIMEDOUT) {
		tu_dump_queue(qpath, "did not exit");
		tu_kill(pid);
		tu_untrack(pid);
		return -1;
	}
	tu_untrack(pid);
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
	buf = malloc(mmapq_max_record(q));
	EXPECT(buf, "malloc");
	EXPECT(mmapq_status(q, &st) == 0, "status");
	*count = 0;
	for (uint64_t seq = st.head; seq < st.tail; seq++) {
		struct mmapq_record rec;
		char v[32];
		int n;

		EXPECT(mmapq_peek(q, seq, buf, mmapq_max_record(q), &rec) == 0, "peek %" PRIu64, seq);
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


/* ---- records as bytes ---------------------------------------------------- */

struct buf {
	unsigned char *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		EXPECT(b->p, "realloc");
	}
	if (n)
		memcpy(b->p + b->len, d, n);
	b->len += n;
}

/* A binary record on the wire: a 4-byte big-endian length, the bytes. */
static void buf_binary(struct buf *b, const void *d, uint32_t n)
{
	unsigned char pre[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
	                        (unsigned char)(n >> 8), (unsigned char)n};

	buf_add(b, pre, 4);
	buf_add(b, d, n);
}

/* The records a test expects: where each one's bytes are in want.p. */
struct want {
	struct buf bytes;
	size_t n, cap;
	size_t *off;
	uint32_t *len;
};

static void want_add(struct want *w, const void *d, uint32_t n)
{
	if (w->n == w->cap) {
		w->cap = w->cap * 2 + 16;
		w->off = realloc(w->off, w->cap * sizeof(*w->off));
		w->len = realloc(w->len, w->cap * sizeof(*w->len));
		EXPECT(w->off && w->len, "realloc");
	}
	w->off[w->n] = w->bytes.len;
	w->len[w->n++] = n;
	buf_add(&w->bytes, d, n);
}

static void want_free(struct want *w)
{
	free(w->bytes.p);
	free(w->off);
	free(w->len);
}

/* The queue holds exactly the records of w, byte for byte: read with a
 * consumer's handle (every frame's checksum checked), nothing released. */
static void expect_queue(const struct want *w)
{
	struct mmapq_params p = {.path = qpath, .role = MMAPQ_ROLE_CONSUMER};
	struct mmapq_error err;
	struct mmapq *q;
	uint32_t avail = 0;
	int r;

	EXPECT(mmapq_open(&p, &q, &err) == 0, "open as a consumer: %s", err.msg);
	r = mmapq_available(q, 0, &avail);
	EXPECT(r == 0 || (r == -EAGAIN && !w->n), "available: %s", mmapq_strerror(r));
	EXPECT(avail == w->n, "the queue holds %" PRIu32 " records, want %zu", avail, w->n);
	for (uint32_t i = 0; i < avail; i++) {
		struct mmapq_record rec;

		EXPECT(mmapq_get(q, i, &rec) == 0, "get %" PRIu32, i);
		EXPECT(rec.len == w->len[i], "record %" PRIu32 " has %" PRIu32 " bytes, want %" PRIu32, i,
		       rec.len, w->len[i]);
		EXPECT(!rec.len || !memcmp(rec.data, w->bytes.p + w->off[i], rec.len),
		       "record %" PRIu32 " (%" PRIu32 " bytes) differs from what was sent", i, rec.len);
	}
	mmapq_close(q);
}

/* Until the queue's tail is at least n (published), or the deadline. */
static void wait_tail(uint64_t n)
{
	uint64_t end = tu_now_ms() + EXIT_MS;

	/* (the producer creates the file: whole, at once) */
	while (access(qpath, F_OK) < 0 || tu_queue_status(qpath).tail < n) {
		EXPECT(tu_now_ms() < end, "the queue's tail did not reach %" PRIu64, n);
		sched_yield();
	}
}

/* Bytes waiting in the pipe whose write end is fd. */
static int in_pipe(int fd)
{
	int n = -1;

	EXPECT(ioctl(fd, FIONREAD, &n) == 0, "FIONREAD: %s", strerror(errno));
	return n;
}

/* ---- a stop in the middle of a record ---------------------------------- */

/* The producer pid reading the pipe whose write end is wfd: give it
 * before[0..blen), and once it took that, a stop; after it knows it stops,
 * the rest, after[0..alen). */
static void stop_while_reading(pid_t pid, int wfd, const char *before, size_t blen,
                               const char *after, size_t alen)
{
	tu_write_all(wfd, before, blen);
	EXPECT(drained(wfd, EXIT_MS), "the producer did not read its %zu bytes", blen);
	kill(pid, SIGTERM);
	wait_signal_taken(pid);
	tu_write_all(wfd, after, alen);
}

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
	stop_while_reading(pid, pfd[1], "1234", 4, "567 8 ", 6);
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
 * stdin the regular file in, opened once and shared (as in `{
 * mmapq-producer; mmapq-producer; } < in`): a producer frozen right after
 * its first read (the fault point producer.loop, at its second loop),
 * which took 64 KiB, is stopped there.  Returns the descriptor, at where
 * that producer left the file.
 */
static int stopped_after_first_read(const char *cfg, const char *in)
{
	char *env[] = {"MMAPQ_FAULT=producer.loop@2:stop", NULL};
	char *argv[] = {tu_bin("mmapq-producer"), "--config", (char *)cfg, NULL};
	struct tu_child c = TU_CHILD_INIT;
	int fd = open(in, O_RDONLY | O_CLOEXEC);
	pid_t pid;

	EXPECT(fd >= 0, "open %s", in);
	c.stdio[0] = fd;
	c.env_extra = env;
	pid = tu_start(argv, &c);
	tu_track(pid);
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
	EXPECT_INT(exit_code(pid), 0);
	free(argv[0]);
	return fd;
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
	char *in, *data = malloc(N * 6);
	int fd, code;
	pid_t pid;

	tu_need_faults(); /* the producer stops itself at producer.loop */
	setup();
	in = tu_path(dir, "in.txt");
	char *cfg = config(""); /* 4 MiB: room for a whole chunk, and for all of them */
	EXPECT(data, "malloc");
	for (int i = 0; i < N; i++)
		memcpy(data + i * 6, "12345 ", 6);
	tu_write_file(in, data, N * 6);
	fd = stopped_after_first_read(cfg, in);
	EXPECT(lseek(fd, 0, SEEK_CUR) == 65532, "after the stop the file is at %lld, want 65532 (the"
	       " start of the unfinished record)", (long long)lseek(fd, 0, SEEK_CUR));
	pid = producer(cfg, fd, -1, -1, 0);
	code = exit_code(pid);
	EXPECT(code == 0, "second producer: exit %d", code);
	expect_all("12345", N);
	close(fd);
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
	char *cfg = config("");
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


/*
 * Format binary, through one pipe: the first producer is stopped inside a
 * length prefix, the second inside a payload; each reads on to the end of
 * its record and no further, and the third takes the rest.
 */
static void stop_mid_binary(void)
{
	int pfd[2];
	pid_t pid;
	struct want w = {0};

	setup();
	char *cfg = config("format = binary\n");
	if (pipe2(pfd, O_CLOEXEC) < 0)
		exit(99);
	pid = producer(cfg, pfd[0], -1, -1, 0);
	stop_while_reading(pid, pfd[1], "\0\0", 2, "\0\3abc\0\0\0\5de", 11); /* half a prefix */
	EXPECT_INT(exit_code(pid), 0);
	EXPECT_INT(in_pipe(pfd[1]), 6); /* the next record is left whole */

	pid = producer(cfg, pfd[0], -1, -1, 0);
	/* (what it reads first is there already) */
	stop_while_reading(pid, pfd[1], "", 0, "fgh\0\0\0\1z", 8);
	EXPECT_INT(exit_code(pid), 0);
	EXPECT_INT(in_pipe(pfd[1]), 5);

	close(pfd[1]);
	pid = producer(cfg, pfd[0], -1, -1, 0);
	EXPECT_INT(exit_code(pid), 0);
	want_add(&w, "abc", 3);
	want_add(&w, "defgh", 5);
	want_add(&w, "z", 1);
	expect_queue(&w);
	want_free(&w);
	close(pfd[0]);
	free(cfg);
}

/* Record i of stop_mid_binary_file: 100 bytes of its own. */
static void binary_100(unsigned char *r, uint32_t i)
{
	for (uint32_t j = 0; j < 100; j++)
		r[j] = (unsigned char)(i * 31 + j);
}

/*
 * Format binary, stdin a regular file shared by two producers: the first
 * is frozen after its first 64 KiB read, which ends inside a record (65536
 * = 630 x 104 + 16), and stopped there: the file is rewound to that
 * record's start (65520), and the second producer reads it whole.
 */
static void stop_mid_binary_file(void)
{
	enum { N = 2000 };
	struct buf data = {0};
	struct want w = {0};
	unsigned char r[100];
	char *in;
	int fd;
	pid_t pid;

	tu_need_faults(); /* the producer stops itself at producer.loop */
	setup();
	in = tu_path(dir, "in.bin");
	char *cfg = config("format = binary\n");
	for (uint32_t i = 0; i < N; i++) {
		binary_100(r, i);
		buf_binary(&data, r, sizeof(r));
		want_add(&w, r, sizeof(r));
	}
	tu_write_file(in, data.p, data.len);
	fd = stopped_after_first_read(cfg, in);
	EXPECT(lseek(fd, 0, SEEK_CUR) == 630 * 104, "after the stop the file is at %lld, want %d (the"
	       " start of the unfinished record)", (long long)lseek(fd, 0, SEEK_CUR), 630 * 104);
	pid = producer(cfg, fd, -1, -1, 0);
	EXPECT_INT(exit_code(pid), 0);
	expect_queue(&w);
	close(fd);
	free(data.p);
	want_free(&w);
	free(cfg);
	free(in);
}

/* ---- full, then end of input --------------------------------------------- */

static void full_then_eof(const char *queue_extra, const char *input, size_t len, const char *want,
                          bool file)
{
	int in;
	pid_t pid;
	int code;

	setup();
	char *cfg = config(queue_extra);
	if (file) {
		char *path = tu_path(dir, "in.txt");
		tu_write_file(path, input, len);
		in = open(path, O_RDONLY | O_CLOEXEC);
		free(path);
	} else {
		int pfd[2];
		if (pipe2(pfd, O_CLOEXEC) < 0)
			exit(99);
		tu_write_all(pfd[1], input, len);
		close(pfd[1]);
		in = pfd[0];
	}
	pid = producer(cfg, in, -1, -1, 0);
	close(in);
	code = exit_code(pid);
	EXPECT(code == 0, "exactly as many records as the ring holds, then end of input, no"
	       " consumer: exit %d (want 0 at once)", code);
	expect_records(want);
	EXPECT_INT(tu_queue_status(qpath).used_bytes, 64);
	free(cfg);
}

/* a ring of 64 bytes and records of at most 8 bytes: 4 frames of 16 fill it */
#define RING64 "size = 64\nmax_record = 8\n"

static void full_then_eof_pipe(void)
{
	full_then_eof(RING64, "1 2 3 4\n", 8, "1,2,3,4", false);
}

static void full_then_eof_file(void)
{
	full_then_eof(RING64, "1 2 3 4", 7, "1,2,3,4", true);
}

static void full_then_eof_line(void)
{
	static const char in[] = "one\ntwo\r\nsix\n12345678"; /* the last at end of input */

	full_then_eof(RING64 "format = line\n", in, sizeof(in) - 1, "one,two,six,12345678", false);
}

static void full_then_eof_binary(void)
{
	/* frames of 16, 8, 16, 16 and 8 bytes */
	static const char in[] = "\0\0\0\3one\0\0\0\0\0\0\0\x08" "12345678\0\0\0\1x\0\0\0\0";

	full_then_eof(RING64 "format = binary\n", in, sizeof(in) - 1, "one,,12345678,x,", false);
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
 * 64 lines of 256 KiB through a ring of 2 MiB (16 MiB): the producer is
 * near full all the time.  It reads up to the end of the last record that
 * fits, not a few bytes at a time (over a million calls).  Counted, not
 * timed: fewer than 5,000 read calls for 16 MiB.
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
	char *cfg = config("size = 2M\nformat = line\nmax_record = 256K\n");
	argv[2] = cfg;
	EXPECT(line && pipe2(pfd, O_CLOEXEC) == 0, "setup");
	memset(line, 'x', SIZE);
	line[SIZE] = '\n';
	pid = producer(cfg, pfd[0], -1, -1, 0);
	cons = tu_start(argv, &cc);
	tu_track(cons);
	for (int i = 0; i < LINES; i++)
		EXPECT(tu_write_all(pfd[1], line, SIZE + 1) == 0, "write line %d", i);
	code = tu_exit_code(tu_wait(cons, 60000));
	tu_untrack(cons);
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


/* ---- records of any length, binary records ---------------------------------- */

/* The producer's stderr (a pipe) to its end, and its exit code. */
static int run_to_end(pid_t pid, int errfd, char **err)
{
	*err = tu_read_all(errfd, EXIT_MS, NULL);
	close(errfd);
	EXPECT(*err, "the producer's stderr did not end");
	return exit_code(pid);
}

/*
 * The shipped geometry (size 4M, max_record 64K), format line: 40 lines of
 * exactly 64 KiB, every fourth ending in CRLF, are 40 records of 65536
 * bytes; a line of 65537 bytes between them is refused ("line too long")
 * and the rest carry on.
 */
static void line_64k_defaults(void)
{
	enum { LINES = 40, BIG = 65536 };
	struct buf in = {0};
	struct want w = {0};
	unsigned char *line = malloc(BIG + 1);
	int pfd[2], efd[2];
	char *err;
	pid_t pid;

	setup();
	char *cfg = config("format = line\n");
	EXPECT(line && pipe2(pfd, O_CLOEXEC) == 0 && pipe2(efd, O_CLOEXEC) == 0, "setup");
	for (int i = 0; i < LINES; i++) {
		for (int j = 0; j < BIG; j++)
			line[j] = (unsigned char)(' ' + (i + j) % 95);
		buf_add(&in, line, BIG);
		buf_add(&in, i % 4 == 3 ? "\r\n" : "\n", i % 4 == 3 ? 2 : 1);
		want_add(&w, line, BIG);
		if (i == 20) {
			buf_add(&in, line, BIG);
			buf_add(&in, "x\n", 2);
		}
	}
	pid = producer(cfg, pfd[0], efd[1], -1, 0);
	close(pfd[0]);
	close(efd[1]);
	/* the producer takes it as it comes: the ring holds it all */
	EXPECT(tu_write_all(pfd[1], in.p, in.len) == 0, "write %zu bytes", in.len);
	close(pfd[1]);
	EXPECT_INT(run_to_end(pid, efd[0], &err), 0);
	EXPECT(strstr(err, "stdin:22:1: line too long") &&
	       strstr(err, "40 records published, 1 bad input skipped, 0 dropped"),
	       "stderr '%s'", err);
	expect_queue(&w);
	free(err);
	free(line);
	free(in.p);
	want_free(&w);
	free(cfg);
}

/*
 * The binary records of the round trips (max_record 1K): for each length
 * of 0, 1, 7, 8, 9 and 255 bytes, length + 4 records (record k of a length
 * meant to be split k bytes into it), the last of them every byte value
 * once; a record of max_record, one of max_record + 1 (refused: skipped
 * whole), empty ones around them.  *cuts: where the stream is cut.
 */
static void binary_records(struct buf *in, struct want *w, size_t **cuts, size_t *ncuts,
                           uint64_t *refused_no, uint64_t *refused_at)
{
	static const uint32_t lens[] = {0, 1, 7, 8, 9, 255};
	unsigned char r[1025];

	*ncuts = 0;
	*cuts = calloc(4096, sizeof(**cuts));
	EXPECT(*cuts, "calloc");
	for (size_t g = 0; g < sizeof(lens) / sizeof(lens[0]); g++) {
		uint32_t len = lens[g];

		for (uint32_t k = 0; k < len + 4; k++) {
			for (uint32_t j = 0; j < len; j++)
				r[j] = (unsigned char)(len == 255 && k == len + 3 ? j : k * 13 + j * 7 + g);
			if (k)
				(*cuts)[(*ncuts)++] = in->len + k; /* k bytes into the record */
			buf_binary(in, r, len);
			want_add(w, r, len);
		}
	}
	buf_binary(in, "", 0);
	want_add(w, "", 0);
	for (uint32_t j = 0; j < 1025; j++)
		r[j] = (unsigned char)(j ^ 0x5a);
	(*cuts)[(*ncuts)++] = in->len + 3;
	(*cuts)[(*ncuts)++] = in->len + 4 + 512;
	buf_binary(in, r, 1024);
	want_add(w, r, 1024);
	*refused_no = w->n + 1;
	*refused_at = in->len;
	(*cuts)[(*ncuts)++] = in->len + 2;
	(*cuts)[(*ncuts)++] = in->len + 4 + 1000;
	buf_binary(in, r, 1025);
	buf_binary(in, "", 0);
	want_add(w, "", 0);
	buf_binary(in, "\n\r\n\0\\", 5);
	want_add(w, "\n\r\n\0\\", 5);
}

/* The records of binary_records through the producer's stdin: a pipe
 * written in pieces cut where binary_records says (each read ends there:
 * the producer has taken a piece before the next is written), or a
 * regular file. */
static void binary_round_trip_from(bool file)
{
	struct buf in = {0};
	struct want w = {0};
	size_t *cuts, ncuts, at = 0;
	uint64_t refused_no, refused_at;
	int pfd[2], efd[2], fd;
	char *err, *path, where[160], counts[96];
	pid_t pid;

	setup();
	char *cfg = config("format = binary\nsize = 256K\nmax_record = 1K\n");
	binary_records(&in, &w, &cuts, &ncuts, &refused_no, &refused_at);
	EXPECT(pipe2(efd, O_CLOEXEC) == 0, "pipe");
	if (file) {
		path = tu_path(dir, "in.bin");
		tu_write_file(path, in.p, in.len);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		EXPECT(fd >= 0, "open %s", path);
		free(path);
		pid = producer(cfg, fd, efd[1], -1, 0);
		close(fd);
		close(efd[1]);
	} else {
		EXPECT(pipe2(pfd, O_CLOEXEC) == 0, "pipe");
		pid = producer(cfg, pfd[0], efd[1], -1, 0);
		close(pfd[0]);
		close(efd[1]);
		for (size_t i = 0; i <= ncuts; i++) {
			size_t end = i < ncuts ? cuts[i] : in.len;

			EXPECT(tu_write_all(pfd[1], in.p + at, end - at) == 0, "write");
			EXPECT(drained(pfd[1], EXIT_MS), "the producer did not take the piece ending at %zu",
			       end);
			at = end;
		}
		close(pfd[1]);
	}
	EXPECT_INT(run_to_end(pid, efd[0], &err), 0);
	/* the refused record: its number in the stream, where its prefix starts */
	snprintf(where, sizeof(where), "stdin:%" PRIu64 ":%" PRIu64 ": record longer than max_record:"
	         " '\\x00\\x00\\x04\\x01' (skipped)", refused_no, refused_at + 1);
	snprintf(counts, sizeof(counts), "%zu records published, 1 bad input skipped, 0 dropped", w.n);
	EXPECT(strstr(err, where) && strstr(err, counts), "stderr '%s', want '%s' and '%s'", err, where,
	       counts);
	expect_queue(&w);
	free(err);
	free(cuts);
	free(in.p);
	want_free(&w);
	free(cfg);
}

static void binary_round_trip(void)
{
	binary_round_trip_from(false);
}

static void binary_round_trip_file(void)
{
	binary_round_trip_from(true);
}

/* A ring of 1 KiB, lines of at most 64 bytes (frames of at most 72), no
 * consumer: 64 lines of 7 bytes (frames of 16) fill it. */
#define RING1K "format = line\nsize = 1K\nmax_record = 64\n"

static void fill_lines(struct buf *in, struct want *w, int n)
{
	for (int i = 0; i < n; i++) {
		char line[16];

		snprintf(line, sizeof(line), "line%03d\n", i);
		buf_add(in, line, 8);
		want_add(w, line, 7);
	}
}

/*
 * on_full = block: a full ring, and a line of 40 bytes (a frame of 48).
 * It is not read while it does not fit (it stays in the pipe); a consumer
 * releasing 3 records (48 bytes) makes room for exactly it, less than a
 * record of max_record needs (72): it is read and published then.
 */
static void wait_for_its_room(void)
{
	struct mmapq_params cp = {.role = MMAPQ_ROLE_CONSUMER};
	struct buf in = {0};
	struct want w = {0};
	struct mmapq_error err;
	struct mmapq *q;
	struct mmapq_record rec;
	uint32_t avail;
	char big[41];
	int pfd[2];
	pid_t pid;

	setup();
	char *cfg = config(RING1K);
	memset(big, 'x', 40);
	big[40] = '\n';
	fill_lines(&in, &w, 64);
	buf_add(&in, big, 41);
	EXPECT(pipe2(pfd, O_CLOEXEC) == 0, "pipe");
	pid = producer(cfg, pfd[0], -1, -1, 0);
	close(pfd[0]);
	EXPECT(tu_write_all(pfd[1], in.p, in.len) == 0, "write");
	/* published with the read that left the big line in the pipe */
	wait_tail(64);
	EXPECT_INT(tu_queue_status(qpath).used_bytes, 1024);
	EXPECT_INT(in_pipe(pfd[1]), 41);
	/* room for 48 bytes (the ring's end is exactly where it wraps) */
	cp.path = qpath;
	EXPECT(mmapq_open(&cp, &q, &err) == 0, "open as a consumer: %s", err.msg);
	EXPECT(mmapq_available(q, 0, &avail) == 0 && avail == 64, "available %" PRIu32, avail);
	EXPECT_INT(mmapq_release(q, 3), 0);
	wait_tail(65);
	EXPECT_INT(in_pipe(pfd[1]), 0);
	/* (a handle looks at the tail again only when it has seen all) */
	mmapq_close(q);
	EXPECT(mmapq_open(&cp, &q, &err) == 0, "open as a consumer: %s", err.msg);
	EXPECT(mmapq_available(q, 0, &avail) == 0 && avail == 62, "available %" PRIu32, avail);
	EXPECT(mmapq_get(q, 61, &rec) == 0 && rec.len == 40 && !memcmp(rec.data, big, 40),
	       "the last record is not the 40-byte line");
	mmapq_close(q);
	close(pfd[1]);
	EXPECT_INT(exit_code(pid), 0);
	EXPECT_INT(tu_queue_status(qpath).producer.dropped, 0);
	free(in.p);
	want_free(&w);
	free(cfg);
}

/*
 * on_full = drop: 62 lines of 7 bytes leave 32 bytes; a line of 40 (a
 * frame of 48) does not fit and is dropped, counted; the two short lines
 * after it (16 each) fit and are published.
 */
static void drop_what_does_not_fit(void)
{
	struct buf in = {0};
	struct want w = {0};
	char big[41], *err;
	int pfd[2], efd[2];
	pid_t pid;

	setup();
	char *cfg = config(RING1K "[producer]\non_full = drop\n");
	memset(big, 'x', 40);
	big[40] = '\n';
	fill_lines(&in, &w, 62);
	buf_add(&in, big, 41);
	buf_add(&in, "12\n34\n", 6);
	want_add(&w, "12", 2);
	want_add(&w, "34", 2);
	EXPECT(pipe2(pfd, O_CLOEXEC) == 0 && pipe2(efd, O_CLOEXEC) == 0, "pipe");
	pid = producer(cfg, pfd[0], efd[1], -1, 0);
	close(pfd[0]);
	close(efd[1]);
	EXPECT(tu_write_all(pfd[1], in.p, in.len) == 0, "write");
	close(pfd[1]);
	EXPECT_INT(run_to_end(pid, efd[0], &err), 0);
	EXPECT(strstr(err, "queue full: record dropped (on_full = drop)") &&
	       strstr(err, "64 records published, 0 bad input skipped, 1 dropped"), "stderr '%s'", err);
	EXPECT_INT(tu_queue_status(qpath).producer.dropped, 1);
	expect_queue(&w);
	free(err);
	free(in.p);
	want_free(&w);
	free(cfg);
}

/* ---- file size limit ---------------------------------------------------------- */

static void sigxfsz_create(void)
{
	int efd[2], code;
	pid_t pid;

	setup();
	/* a file of 4096 + 16384 bytes */
	char *cfg = config("size = 16K\nmax_record = 1K\n");
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
		{"stop_mid_binary", stop_mid_binary},
		{"stop_mid_binary_file", stop_mid_binary_file},
		{"full_then_eof_pipe", full_then_eof_pipe},
		{"full_then_eof_file", full_then_eof_file},
		{"full_then_eof_line", full_then_eof_line},
		{"full_then_eof_binary", full_then_eof_binary},
		{"large_records", large_records},
		{"line_64k_defaults", line_64k_defaults},
		{"binary_round_trip", binary_round_trip},
		{"binary_round_trip_file", binary_round_trip_file},
		{"wait_for_its_room", wait_for_its_room},
		{"drop_what_does_not_fit", drop_what_does_not_fit},
		{"sigxfsz_create", sigxfsz_create},
	};
	atexit(tu_kill_tracked); /* a case that fails leaves no producer running */
	return tu_main_cases(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
