/* SPDX-License-Identifier: MIT */
/*
 * test_stdio -- the programs started with standard descriptors closed
 * (`>&-`, `2>&-`, `<&-`).  Without care the queue file's open() returns
 * 0, 1 or 2: the consumer would write records over the header, the producer
 * log into it or parse its own file as input.  Each program must give the
 * missing descriptors /dev/null before opening anything, and refuse when it
 * needs the closed one (the consumer writing to stdout, the producer
 * reading stdin, mmapqctl printing).
 *
 * Every case ends by opening the queue as an observer: it must still be a
 * valid queue file holding exactly the records it should.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmapq.h"
#include "testutil.h"

#define EXIT_MS 10000

static char *dir, *qpath, *cfg_stdout, *cfg_file, *outfile;

#define EXPECT(cond, ...) TU_EXPECT(qpath, cond, __VA_ARGS__)

static void setup(void)
{
	dir = tu_mkdtemp("stdio");
	qpath = tu_path(dir, "queue");
	outfile = tu_path(dir, "out.txt");
	cfg_stdout = tu_path(dir, "stdout.ini");
	cfg_file = tu_path(dir, "file.ini");
	char *text = tu_xasprintf("[queue]\npath = %s\nsize = 256\nmax_record = 8\n[consumer]\noutput = stdout\n", qpath);
	tu_write_file(cfg_stdout, text, strlen(text));
	free(text);
	text = tu_xasprintf("[queue]\npath = %s\nsize = 256\nmax_record = 8\n[consumer]\noutput = file:%s\n", qpath,
	                    outfile);
	tu_write_file(cfg_file, text, strlen(text));
	free(text);
}

struct run {
	int code;
	char *err; /* stderr */
};

/*
 * Run prog (in MMAPQ_BIN_DIR) with the arguments, stdin fed from `input`
 * (NULL: empty) and stdout/stderr captured, except that the descriptors in
 * `closed` (1 << fd) are closed in the child before exec.
 */
static struct run run_closed(unsigned closed, const char *input, const char *prog, ...)
{
	struct tu_child c = TU_CHILD_INIT;
	int in[2], err[2], out[2];
	char *argv[16];
	va_list ap;
	int argc = 0;
	struct run r = {0};
	pid_t pid;

	argv[argc++] = tu_bin(prog);
	va_start(ap, prog);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		perror("pipe2");
		exit(99);
	}
	c.stdio[0] = in[0];
	c.stdio[1] = out[1];
	c.stdio[2] = err[1];
	c.closed = closed;
	pid = tu_start(argv, &c);
	close(in[0]);
	close(out[1]);
	close(err[1]);
	if (input)
		tu_write_all(in[1], input, strlen(input));
	close(in[1]);
	r.err = tu_read_all(err[0], EXIT_MS, NULL);
	free(tu_read_all(out[0], EXIT_MS, NULL));
	close(err[0]);
	close(out[0]);
	r.code = tu_exit_code(tu_wait(pid, EXIT_MS));
	if (!r.err)
		r.err = calloc(1, 1);
	free(argv[0]);
	return r;
}

/* The queue is intact: a valid header, and the records head..tail are
 * exactly want (int values, comma-separated), consumed up to head. */
static void expect_queue(uint64_t head, const char *want)
{
	struct mmapq_params p = {.path = qpath, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_error err;
	struct mmapq_status st;
	struct mmapq *q;
	char got[256] = "";
	size_t len = 0;

	EXPECT(mmapq_open(&p, &q, &err) == 0, "the queue file is no longer valid: %s", err.msg);
	EXPECT(mmapq_status(q, &st) == 0, "status");
	for (uint64_t s = st.head; s < st.tail; s++) {
		int64_t v;
		char buf[64];
		struct mmapq_record rec;
		EXPECT(mmapq_peek(q, s, buf, sizeof(buf), &rec) == 0, "peek %" PRIu64, s);
		memcpy(&v, rec.data, sizeof(v));
		len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%" PRId64, len ? "," : "", v);
	}
	EXPECT(st.head == head && !strcmp(got, want),
	       "queue holds head %" PRIu64 " records '%s', want head %" PRIu64 " records '%s'",
	       st.head, got, head, want);
	mmapq_close(q);
}

/* Three records 1 2 3 published by a producer with everything open. */
static void fill(void)
{
	struct run r = run_closed(0, "1 2 3\n", "mmapq-producer", "-c", cfg_stdout, NULL);

	EXPECT(r.code == 0, "producer: exit %d, stderr '%s'", r.code, r.err);
	free(r.err);
	expect_queue(0, "1,2,3");
}

static void consumer_stdout_closed(void)
{
	setup();
	fill();
	struct run r = run_closed(1u << 1, NULL, "mmapq-consumer", "-c", cfg_stdout, "--count", "3", NULL);
	EXPECT(r.code == 74 && strstr(r.err, "standard output was closed"),
	       "consumer with stdout closed: exit %d (want 74), stderr '%s'", r.code, r.err);
	free(r.err);
	expect_queue(0, "1,2,3"); /* nothing consumed, nothing overwritten */
}

static void consumer_all_closed_file_output(void)
{
	setup();
	fill();
	struct run r = run_closed(7, NULL, "mmapq-consumer", "-c", cfg_file, "--count", "3", NULL);
	char *out = tu_read_file(outfile, NULL);
	EXPECT(r.code == 0, "consumer with 0-2 closed, output = file: exit %d", r.code);
	EXPECT(out && !strcmp(out, "1\n2\n3\n"), "output file holds '%s', want 1 2 3", out ? out : "(none)");
	free(out);
	free(r.err);
	expect_queue(3, "");
}

static void producer_stderr_closed(void)
{
	setup();
	/* a bad token makes the producer log: to /dev/null, not into the queue */
	struct run r = run_closed(1u << 2, "4 bad 5\n", "mmapq-producer", "-c", cfg_stdout, NULL);
	EXPECT(r.code == 0, "producer with stderr closed: exit %d", r.code);
	free(r.err);
	expect_queue(0, "4,5");
}

static void producer_stdin_closed(void)
{
	setup();
	fill();
	struct run r = run_closed(1u << 0, NULL, "mmapq-producer", "-c", cfg_stdout, NULL);
	EXPECT(r.code == 74 && strstr(r.err, "standard input was closed"),
	       "producer with stdin closed: exit %d (want 74), stderr '%s'", r.code, r.err);
	free(r.err);
	expect_queue(0, "1,2,3");
}

static void producer_all_closed(void)
{
	setup();
	fill();
	struct run r = run_closed(7, NULL, "mmapq-producer", "-c", cfg_stdout, NULL);
	EXPECT(r.code == 74, "producer with 0-2 closed: exit %d (want 74)", r.code);
	free(r.err);
	expect_queue(0, "1,2,3");
}

static void ctl_stdout_closed(void)
{
	setup();
	fill();
	struct run r = run_closed(1u << 1, NULL, "mmapqctl", "-c", cfg_stdout, "dump", NULL);
	EXPECT(r.code == 74 && strstr(r.err, "standard output is closed"),
	       "mmapqctl dump with stdout closed: exit %d (want 74), stderr '%s'", r.code, r.err);
	free(r.err);
	r = run_closed(7, NULL, "mmapqctl", "-c", cfg_stdout, "status", NULL);
	EXPECT(r.code == 74, "mmapqctl status with 0-2 closed: exit %d (want 74)", r.code);
	free(r.err);
	expect_queue(0, "1,2,3");
}

static void ctl_send_stdin_closed(void)
{
	setup();
	struct run r = run_closed(1u << 0, NULL, "mmapqctl", "--socket", "/nonexistent/p.sock", "send", NULL);
	EXPECT(r.code == 74 && strstr(r.err, "standard input is closed"),
	       "mmapqctl send with stdin closed and no values: exit %d (want 74), stderr '%s'", r.code,
	       r.err);
	free(r.err);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"consumer_stdout_closed", consumer_stdout_closed},
		{"consumer_all_closed_file_output", consumer_all_closed_file_output},
		{"producer_stderr_closed", producer_stderr_closed},
		{"producer_stdin_closed", producer_stdin_closed},
		{"producer_all_closed", producer_all_closed},
		{"ctl_stdout_closed", ctl_stdout_closed},
		{"ctl_send_stdin_closed", ctl_send_stdin_closed},
	};
	return tu_main_cases(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
