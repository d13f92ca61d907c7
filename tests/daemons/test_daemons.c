/* SPDX-License-Identifier: MIT */
/*
 * test_daemons -- the producer and the consumer end to end with the real
 * binaries: mmapq-producer, mmapq-consumer and mmapqctl started as child
 * processes on a queue file in a fresh temporary directory.
 *
 *   consumer_first     consumer waits on an empty queue, producer fills it
 *   producer_first     producer publishes and exits, records stay in the file
 *   interactive        records reach the consumer while the producer's stdin
 *                      is still open (the wake-up is immediate, not at exit)
 *   simultaneous       both started at the same instant, 20 times, each on
 *                      a fresh queue (both race to create the file)
 *   line_format        [queue] format = line; an over-long line is reported
 *                      and skipped, the others delivered
 *   output_file_null   [consumer] output = file:PATH and output = null
 *   sigterm_consumer_empty  SIGTERM ends a consumer blocked on an empty
 *                      queue promptly
 *   sigterm_producer_full   SIGTERM ends a producer blocked on a full queue
 *                      (a ring of 64 bytes) promptly, and nothing published
 *                      is lost
 *
 * Nothing waits by sleeping: every wait is on a pipe, a pidfd or a child's
 * output, with a deadline.  On failure the queue state is printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h" /* the producer's wake-up word: its entry's room (entry 0: "default") */
#include "testutil.h"

#define DEADLINE_MS 5000 /* generous: every step here takes milliseconds */

extern char **environ;

/* ---- per-test state ---- */

static char *dir;    /* fresh temporary directory */
static char *qpath;  /* dir/queue */

#define EXPECT(cond, ...) TU_EXPECT(qpath, cond, __VA_ARGS__)

static void setup(void)
{
	dir = tu_mkdtemp("daemons");
	qpath = tu_path(dir, "queue");
}

/* dir/name with the given contents; returns the malloc'd path */
static char *write_cfg(const char *name, const char *text)
{
	return tu_write_in(dir, name, text);
}

/* ---- children ---- */

struct kid {
	pid_t pid;
	int in, out, err;
};

/* argv of a daemon: NAME --config CFG --queue Q [extra...] */
static char **daemon_argv(const char *name, const char *cfg, const char *extra1, const char *extra2)
{
	char **v = calloc(8, sizeof(*v));
	int i = 0;

	if (!v)
		tu_die("calloc");
	v[i++] = tu_bin(name);
	v[i++] = "--config";
	v[i++] = (char *)cfg;
	v[i++] = "--queue";
	v[i++] = qpath;
	if (extra1)
		v[i++] = (char *)extra1;
	if (extra2)
		v[i++] = (char *)extra2;
	return v;
}

static void free_argv(char **v)
{
	free(v[0]);
	free(v);
}

static struct kid spawn(const char *name, const char *cfg, const char *x1, const char *x2,
                        bool pin, bool pout, bool perr)
{
	char **argv = daemon_argv(name, cfg, x1, x2);
	struct tu_proc p;
	struct kid k;

	tu_spawn(&p, argv, NULL, pin, pout, perr);
	free_argv(argv);
	tu_track(p.pid);
	k.pid = p.pid;
	k.in = p.in_fd;
	k.out = p.out_fd;
	k.err = p.err_fd;
	return k;
}

/*
 * The same, but the child first blocks reading gate_rd and execs only when
 * it reads end-of-file, i.e. when the parent closes the write end: several
 * children released at the same instant.
 */
static struct kid spawn_gated(const char *name, const char *cfg, const char *x1, const char *x2,
                              int gate_rd, int gate_wr, bool pin, bool pout)
{
	char **argv = daemon_argv(name, cfg, x1, x2);
	int in[2] = {-1, -1}, out[2] = {-1, -1};
	struct kid k = {.in = -1, .out = -1, .err = -1};
	pid_t pid;

	if ((pin && pipe2(in, O_CLOEXEC) < 0) || (pout && pipe2(out, O_CLOEXEC) < 0))
		tu_die("pipe2");
	pid = fork();
	if (pid < 0)
		tu_die("fork");
	if (pid == 0) {
		char c;
		ssize_t n;

		close(gate_wr);
		if (pin)
			dup2(in[0], 0);
		if (pout)
			dup2(out[1], 1);
		do
			n = read(gate_rd, &c, 1);
		while (n < 0 && errno == EINTR);
		close(gate_rd);
		execve(argv[0], argv, environ);
		_exit(127);
	}
	free_argv(argv);
	tu_track(pid);
	k.pid = pid;
	if (pin) {
		close(in[0]);
		k.in = in[1];
	}
	if (pout) {
		close(out[1]);
		k.out = out[0];
	}
	return k;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void kid_close(struct kid *k)
{
	close_fd(&k->in);
	close_fd(&k->out);
	close_fd(&k->err);
}

/* Exit code of the child within the deadline, or -1 (and the child is
 * SIGKILLed) if it did not exit in time. */
static int wait_exit(struct kid *k, int timeout_ms)
{
	int st = tu_wait(k->pid, timeout_ms);

	if (st == -ETIMEDOUT) {
		fprintf(stderr, "test_daemons: pid %d did not exit within %d ms\n", (int)k->pid, timeout_ms);
		tu_dump_queue(qpath, "child did not exit");
		tu_kill(k->pid);
		tu_untrack(k->pid);
		return -1;
	}
	tu_untrack(k->pid);
	return tu_exit_code(st);
}

/* ---- reading children's output ---- */

struct buf {
	char *s;
	size_t len, cap;
	bool eof;
};

static void buf_free(struct buf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

/* One poll+read on fd, waiting at most until deadline_ms; false on timeout. */
static bool buf_read_once(struct buf *b, int fd, uint64_t deadline_ms)
{
	for (;;) {
		uint64_t now = tu_now_ms();
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		ssize_t n;
		int r;

		if (now >= deadline_ms)
			return false;
		r = poll(&pf, 1, (int)(deadline_ms - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			tu_die("poll");
		if (r == 0)
			return false;
		if (b->cap - b->len < 4097) {
			b->cap = b->cap ? b->cap * 2 : 8192;
			b->s = realloc(b->s, b->cap);
			if (!b->s)
				tu_die("realloc");
		}
		n = read(fd, b->s + b->len, b->cap - b->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			b->eof = true;
		} else {
			b->len += (size_t)n;
		}
		b->s[b->len] = '\0';
		return true;
	}
}

/* Read until the data contains needle; false on timeout or EOF first. */
static bool buf_until(struct buf *b, int fd, const char *needle, int timeout_ms)
{
	uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;

	while (!(b->s && strstr(b->s, needle))) {
		if (b->eof || !buf_read_once(b, fd, deadline))
			return false;
	}
	return true;
}

/* Read until EOF; false on timeout. */
static bool buf_eof(struct buf *b, int fd, int timeout_ms)
{
	uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;

	while (!b->eof)
		if (!buf_read_once(b, fd, deadline))
			return false;
	if (!b->s) {
		b->s = calloc(1, 1);
		if (!b->s)
			tu_die("calloc");
	}
	return true;
}

static const char *str(const struct buf *b)
{
	return b->s ? b->s : "";
}

/* "first\n...\nlast\n" */
static char *seq_lines(int first, int last)
{
	size_t cap = 16 * (size_t)(last - first + 2), len = 0;
	char *s = malloc(cap);

	if (!s)
		tu_die("malloc");
	s[0] = '\0';
	for (int v = first; v <= last; v++)
		len += (size_t)snprintf(s + len, cap - len, "%d\n", v);
	return s;
}

static bool is_alive(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return false;
	return si.si_pid == 0;
}


/* Run `mmapq-consumer --count n` to the end; returns its stdout. */
static char *consume(const char *cfg, int n)
{
	char count[32];
	struct buf out = {0};
	struct kid c;
	int code;

	snprintf(count, sizeof(count), "%d", n);
	c = spawn("mmapq-consumer", cfg, "--count", count, false, true, false);
	EXPECT(buf_eof(&out, c.out, DEADLINE_MS), "consumer --count %d: no end of output, got '%s'",
	       n, str(&out));
	code = wait_exit(&c, DEADLINE_MS);
	EXPECT(code == 0, "consumer --count %d exited %d", n, code);
	kid_close(&c);
	return out.s;
}

/* Run the producer on the given input to the end; returns its stderr. */
static char *produce(const char *cfg, const char *input)
{
	struct buf err = {0};
	struct kid p;
	int code;

	p = spawn("mmapq-producer", cfg, NULL, NULL, true, false, true);
	EXPECT(tu_write_all(p.in, input, strlen(input)) == 0, "write to producer: %s", strerror(errno));
	close_fd(&p.in);
	EXPECT(buf_eof(&err, p.err, DEADLINE_MS), "producer stderr: no EOF");
	code = wait_exit(&p, DEADLINE_MS);
	EXPECT(code == 0, "producer exited %d; stderr: %s", code, str(&err));
	kid_close(&p);
	return err.s;
}

/* ---- (a) consumer first ---- */

static void test_consumer_first(void)
{
	char *cfg = write_cfg("debug.ini", "[consumer]\noutput = stdout\n[log]\nlevel = debug\n");
	char *want = seq_lines(1, 10);
	struct buf out = {0}, err = {0};
	struct kid c, p;
	int code;
	struct mmapq_status st;

	c = spawn("mmapq-consumer", cfg, "--count", "10", false, true, true);
	/* the consumer says when it is attached; it then waits on the empty queue */
	EXPECT(buf_until(&err, c.err, "as consumer", DEADLINE_MS),
	       "consumer did not report being attached; stderr: '%s'", str(&err));
	EXPECT(is_alive(c.pid), "consumer exited on an empty queue");

	p = spawn("mmapq-producer", cfg, NULL, NULL, true, false, false);
	EXPECT(tu_write_all(p.in, "1 2 3 4 5 6 7 8 9 10\n", 21) == 0, "write to producer");
	close_fd(&p.in);
	code = wait_exit(&p, DEADLINE_MS);
	EXPECT(code == 0, "producer exited %d", code);

	EXPECT(buf_eof(&out, c.out, DEADLINE_MS), "consumer output did not end; got '%s'", str(&out));
	EXPECT(strcmp(out.s, want) == 0, "consumer printed '%s', want '%s'", out.s, want);
	code = wait_exit(&c, DEADLINE_MS);
	EXPECT(code == 0, "consumer exited %d; stderr: %s", code, str(&err));

	st = tu_queue_status(qpath);
	EXPECT(st.head == 10 && st.tail == 10, "head %" PRIu64 " tail %" PRIu64 ", want 10 10",
	       st.head, st.tail);
	kid_close(&c);
	kid_close(&p);
	buf_free(&out);
	buf_free(&err);
	free(want);
	free(cfg);
}

/* ---- (b) producer first ---- */

static void test_producer_first(void)
{
	char *cfg = write_cfg("empty.ini", "");
	char *want = seq_lines(1, 10);
	char *err, *out;
	struct mmapq_status st;

	err = produce(cfg, "1 2 3 4 5 6 7 8 9 10\n");
	EXPECT(strcmp(err, "") == 0, "producer said '%s'", err);
	st = tu_queue_status(qpath);
	EXPECT(st.head == 0 && st.tail == 10 && !st.producer.attached,
	       "after the producer: head %" PRIu64 " tail %" PRIu64 " attached %d", st.head, st.tail,
	       st.producer.attached);
	out = consume(cfg, 10);
	EXPECT(strcmp(out, want) == 0, "consumer printed '%s', want '%s'", out, want);
	st = tu_queue_status(qpath);
	EXPECT(st.head == 10 && st.tail == 10, "head %" PRIu64 " tail %" PRIu64, st.head, st.tail);
	free(err);
	free(out);
	free(want);
	free(cfg);
}

/* ---- (c) interactive: the wake-up is immediate ---- */

static void test_interactive(void)
{
	char *cfg = write_cfg("stdout.ini", "[consumer]\noutput = stdout\n");
	char *want = seq_lines(1, 10);
	struct buf out = {0};
	struct kid c, p;
	int code;

	c = spawn("mmapq-consumer", cfg, "--count", "10", false, true, false);
	p = spawn("mmapq-producer", cfg, NULL, NULL, true, false, false);
	EXPECT(tu_write_all(p.in, "1 2 3\n", 6) == 0, "write to producer");
	/* the producer's stdin stays open: the records must arrive now */
	EXPECT(buf_until(&out, c.out, "3\n", DEADLINE_MS),
	       "records 1..3 not delivered while the producer's stdin is open; got '%s'", str(&out));
	EXPECT(strcmp(out.s, "1\n2\n3\n") == 0, "got '%s', want 1..3", out.s);
	EXPECT(is_alive(p.pid), "the producer exited although its stdin is open");
	EXPECT(tu_write_all(p.in, "4 5 6", 5) == 0, "write to producer");
	/* 6 is not complete until a separator follows */
	EXPECT(buf_until(&out, c.out, "5\n", DEADLINE_MS), "records 4..5 not delivered; got '%s'",
	       str(&out));
	EXPECT(tu_write_all(p.in, " 7 8 9 10\n", 10) == 0, "write to producer");
	close_fd(&p.in);
	code = wait_exit(&p, DEADLINE_MS);
	EXPECT(code == 0, "producer exited %d", code);
	EXPECT(buf_eof(&out, c.out, DEADLINE_MS), "consumer output did not end; got '%s'", str(&out));
	EXPECT(strcmp(out.s, want) == 0, "consumer printed '%s', want '%s'", out.s, want);
	code = wait_exit(&c, DEADLINE_MS);
	EXPECT(code == 0, "consumer exited %d", code);
	kid_close(&c);
	kid_close(&p);
	buf_free(&out);
	free(want);
	free(cfg);
}

/* ---- (d) both at the same instant, 20 times ---- */

static int count_dir_entries(const char *d, char *names, size_t size)
{
	DIR *dh = opendir(d);
	struct dirent *e;
	int n = 0;
	size_t len = 0;

	names[0] = '\0';
	if (!dh)
		return -1;
	while ((e = readdir(dh))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		n++;
		len += (size_t)snprintf(names + len, len < size ? size - len : 0, "%s ", e->d_name);
		if (len >= size)
			len = size - 1;
	}
	closedir(dh);
	return n;
}

static void test_simultaneous(void)
{
	char *want = seq_lines(1, 10), *top = dir; /* each run in a directory of its own in it */

	free(qpath);
	for (int i = 0; i < 20; i++) {
		char sub[32], names[512], *cfg;
		int gate[2], code, n;
		struct buf out = {0};
		struct kid c, p;

		snprintf(sub, sizeof(sub), "run%02d", i);
		dir = tu_path(top, sub);
		if (mkdir(dir, 0700) < 0)
			tu_die("mkdir");
		qpath = tu_path(dir, "queue");
		cfg = write_cfg("stdout.ini", "[consumer]\noutput = stdout\n");
		if (pipe2(gate, O_CLOEXEC) < 0)
			tu_die("pipe2");
		c = spawn_gated("mmapq-consumer", cfg, "--count", "10", gate[0], gate[1], false, true);
		p = spawn_gated("mmapq-producer", cfg, NULL, NULL, gate[0], gate[1], true, false);
		/* the input waits in the pipe; then both are released at once */
		EXPECT(tu_write_all(p.in, "1 2 3 4 5 6 7 8 9 10\n", 21) == 0, "write to producer");
		close_fd(&p.in);
		close(gate[0]);
		close(gate[1]);

		EXPECT(buf_eof(&out, c.out, DEADLINE_MS), "run %d: consumer output did not end; got '%s'",
		       i, str(&out));
		code = wait_exit(&p, DEADLINE_MS);
		EXPECT(code == 0, "run %d: producer exited %d", i, code);
		code = wait_exit(&c, DEADLINE_MS);
		EXPECT(code == 0, "run %d: consumer exited %d", i, code);
		EXPECT(strcmp(out.s, want) == 0, "run %d: consumer printed '%s'", i, out.s);
		/* the losing creator removed its temporary file; the daemons'
		 * lock file stays */
		n = count_dir_entries(dir, names, sizeof(names));
		EXPECT(n == 3, "run %d: directory holds %d entries: %s(want: stdout.ini queue queue.lock)",
		       i, n, names);
		kid_close(&c);
		kid_close(&p);
		buf_free(&out);
		free(cfg);
		free(qpath);
		free(dir);
		dir = qpath = NULL;
	}
	dir = top;
	free(want);
}

/* ---- (e) line format ---- */

static void test_line_format(void)
{
	char *cfg = write_cfg("line.ini", "[queue]\nformat = line\nsize = 64K\nmax_record = 32\n"
	                                  "[consumer]\noutput = stdout\n");
	const char *in = "first line\n"
	                 "  spaces  and\ttab\n"
	                 "this line is much longer than thirty-two bytes\n"
	                 "\n"
	                 "exactly thirty-two bytes long!!!\n"
	                 "crlf line\r\n"
	                 "last line";
	const char *want = "first line\n"
	                   "  spaces  and\ttab\n"
	                   "\n"
	                   "exactly thirty-two bytes long!!!\n"
	                   "crlf line\n"
	                   "last line\n";
	static const char msg[] = "mmapq-producer: error: stdin:3:1: line too long: 'this line is much longer than th";
	char *err, *out;
	struct mmapq_status st;

	err = produce(cfg, in);
	/* the excerpt is the line's beginning, then "..." */
	EXPECT(strncmp(err, msg, strlen(msg)) == 0 &&
	       strstr(err, "...' (skipped)\n") && !strstr(err, "stdin:1:") && !strstr(err, "stdin:4:"),
	       "producer stderr is not (only) the line-too-long message for line 3: '%s'", err);
	st = tu_queue_status(qpath);
	EXPECT(st.tail == 6 && st.producer.bad_input == 1,
	       "tail %" PRIu64 " bad_input %" PRIu64 ", want 6 and 1", st.tail, st.producer.bad_input);
	out = consume(cfg, 6);
	EXPECT(strcmp(out, want) == 0, "consumer printed '%s', want '%s'", out, want);
	free(err);
	free(out);
	free(cfg);
}

/* ---- (f) output = file:PATH and output = null ---- */

static void test_output_file_null(void)
{
	char *outpath = tu_path(dir, "out.txt");
	char *text = tu_xasprintf("[consumer]\noutput = file:%s\n", outpath);
	char *fcfg = write_cfg("file.ini", text);
	char *ncfg = write_cfg("null.ini", "[consumer]\noutput = null\n");
	char *want = seq_lines(1, 10), *want2 = seq_lines(1, 15);
	char *err, *out, *file;
	struct mmapq_status st;

	err = produce(fcfg, "1 2 3 4 5 6 7 8 9 10\n");
	free(err);
	out = consume(fcfg, 10);
	EXPECT(strcmp(out, "") == 0, "output = file: but stdout got '%s'", out);
	free(out);
	file = tu_read_file(outpath, NULL);
	EXPECT(file && strcmp(file, want) == 0, "%s holds '%s', want '%s'", outpath,
	       file ? file : "(missing)", want);
	free(file);

	/* appended, not truncated, by the next run */
	err = produce(fcfg, "11 12 13 14 15\n");
	free(err);
	out = consume(fcfg, 5);
	free(out);
	file = tu_read_file(outpath, NULL);
	EXPECT(file && strcmp(file, want2) == 0, "%s holds '%s', want '%s'", outpath,
	       file ? file : "(missing)", want2);
	free(file);

	err = produce(ncfg, "16 17 18\n");
	free(err);
	out = consume(ncfg, 3);
	EXPECT(strcmp(out, "") == 0, "output = null but stdout got '%s'", out);
	free(out);
	st = tu_queue_status(qpath);
	EXPECT(st.head == 18 && st.tail == 18, "head %" PRIu64 " tail %" PRIu64 ", want 18 18", st.head,
	       st.tail);
	file = tu_read_file(outpath, NULL);
	EXPECT(file && strcmp(file, want2) == 0, "output = null wrote to %s: '%s'", outpath, file ? file : "(none)");
	free(file);
	free(want);
	free(want2);
	free(outpath);
	free(text);
	free(fcfg);
	free(ncfg);
}

/* ---- (g) SIGTERM while blocked ---- */

static void test_sigterm_consumer_empty(void)
{
	char *cfg = write_cfg("debug.ini", "[consumer]\noutput = stdout\n[log]\nlevel = debug\n");
	struct buf err = {0};
	struct kid c;
	uint64_t t0;
	int code;
	char *out;

	c = spawn("mmapq-consumer", cfg, NULL, NULL, false, true, true);
	EXPECT(buf_until(&err, c.err, "as consumer", DEADLINE_MS),
	       "consumer did not report being attached; stderr: '%s'", str(&err));
	EXPECT(is_alive(c.pid), "consumer exited on an empty queue");
	t0 = tu_now_ms();
	kill(c.pid, SIGTERM);
	code = wait_exit(&c, 2000);
	EXPECT(code == 0, "consumer blocked on an empty queue: SIGTERM -> exit %d after %" PRIu64
	       " ms (want 0 within 2000 ms)", code, tu_now_ms() - t0);
	kid_close(&c);
	buf_free(&err);

	/* the next consumer still gets everything */
	free(produce(cfg, "7 8 9\n"));
	out = consume(cfg, 3);
	EXPECT(strcmp(out, "7\n8\n9\n") == 0, "consumer printed '%s'", out);
	free(out);
	free(cfg);
}

static void test_sigterm_producer_full(void)
{
	/* the smallest ring, 64 bytes: four int records (16-byte frames) at
	 * most; ten are given */
	char *cfg = write_cfg("full.ini", "[queue]\nsize = 64\nmax_record = 8\n"
	                                  "[consumer]\noutput = stdout\n");
	struct mmapq_status st;
	struct kid p;
	uint64_t t0, end;
	char *out, *want;
	int code;

	p = spawn("mmapq-producer", cfg, NULL, NULL, true, false, false);
	EXPECT(tu_write_all(p.in, "1 2 3 4 5 6 7 8 9 10\n", 21) == 0, "write to producer");
	/* blocked on the full queue: asleep on its wake-up word */
	end = tu_now_ms() + DEADLINE_MS;
	while (!tu_in_futex_on(p.pid, qpath, offsetof(struct mmapq_header, producers[0].room)))
		EXPECT(tu_now_ms() < end && is_alive(p.pid),
		       "the producer never waited for room in the full queue");
	t0 = tu_now_ms();
	kill(p.pid, SIGTERM);
	code = wait_exit(&p, 2000);
	/* (wait_exit SIGKILLs it on timeout, so the rest runs either way) */
	st = tu_queue_status(qpath);
	if (code != 0)
		fprintf(stderr, "test_daemons: producer blocked on a full queue: SIGTERM -> exit %d after %" PRIu64
		        " ms (want 0 within 2000 ms)\n", code, tu_now_ms() - t0);
	close_fd(&p.in);
	kid_close(&p);

	/* nothing accepted is lost: every record it published is there */
	EXPECT(st.tail >= 3 && st.tail <= 4 && st.head == 0 && st.used_bytes == 16 * st.tail,
	       "after SIGTERM: head %" PRIu64 " tail %" PRIu64 " used %" PRIu64 " bytes, want 0, 3"
	       " or 4, 16 per record", st.head, st.tail, st.used_bytes);
	out = consume(cfg, (int)st.tail);
	want = seq_lines(1, (int)st.tail);
	EXPECT(strcmp(out, want) == 0, "consumer printed '%s', want '%s'", out, want);
	free(out);
	free(want);
	EXPECT(code == 0, "producer blocked on a full queue did not exit 0 promptly on SIGTERM "
	       "(exit %d; -1 = still running at the deadline)", code);
	free(cfg);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"consumer_first", test_consumer_first},
		{"producer_first", test_producer_first},
		{"interactive", test_interactive},
		{"simultaneous", test_simultaneous},
		{"line_format", test_line_format},
		{"output_file_null", test_output_file_null},
		{"sigterm_consumer_empty", test_sigterm_consumer_empty},
		{"sigterm_producer_full", test_sigterm_producer_full},
	};

	signal(SIGPIPE, SIG_IGN); /* a dead child's stdin is an EPIPE error, not our death */
	atexit(tu_kill_tracked);  /* a case that fails leaves no daemon behind */
	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
