/* SPDX-License-Identifier: MIT */
/*
 * test_socket -- the producer's other inputs, end to end with the real
 * binaries run by hand (no systemd): [producer] input = socket with
 * `mmapqctl send` as the client, and input = generate.
 *
 *   send_args          `mmapqctl send 1 2 3`: exit 0, "published 3, last seq 2",
 *                      a consumer prints them
 *   send_stdin         50,000 records on send's stdin (a pipe): all published,
 *                      in order
 *   four_clients       4 concurrent `mmapqctl send` of 20,000 distinct values
 *                      each: every value published exactly once, each client's
 *                      values in its own order, all 4 exit 0
 *   rejected           `send 1 x 2 99999999999999999999`: exit 65, one
 *                      "rejected: LINE:COL" line per bad record, 1 and 2 published
 *   many_rejected      200,000 bad records from a client that reads the replies
 *                      only once it has sent everything (as mmapqctl does): the
 *                      final OK line must still arrive
 *   no_producer        no socket file, a stale socket file: exit 69 with the
 *                      reason; a regular file at the path is not replaced
 *   drop_full          on_full = drop, a ring of 64 bytes (4 int records), no
 *                      consumer: send of 10 exits 75 reporting 6 dropped;
 *                      status shows dropped 6
 *   block_full         on_full = block, the same ring, no consumer: a send of 10
 *                      stays blocked; a consumer started later lets it finish
 *                      with exit 0 and all 10 arrive
 *   sigterm_blocked    SIGTERM to the producer while a client is blocked: the
 *                      client gets "FAIL stopping published=N", exits 74, the N
 *                      records are in the queue, the socket file is removed
 *   stale_after_kill   the socket file left by a SIGKILLed producer refuses
 *                      connections (69) and is replaced by the next producer
 *   generate           input = generate, rate 0, a ring of 64 int records: a consumer prints
 *                      0..9999; then the producer is SIGKILLed mid-stream five
 *                      times and restarted: values continue from the tail with
 *                      no gap and no repeat (consumer output and mmapqctl dump)
 *   generate_rate      generate_rate = 200: records arrive, values consecutive
 *   idle_clients       64 clients that send nothing: a new sender still gets
 *                      in, the longest idle closed with "FAIL idle"
 *   client_timeout     a client silent after one record is closed, told what
 *                      was published
 *   stream_acks        a client that keeps its connection open gets ACK lines
 *                      (ack_interval, ack_records), ERR per bad record, OK last
 *   accept_exhausted   accept() failing with EMFILE: no spin, said once, the
 *                      clients got in as idle ones are closed
 *   send_timeout       a socket nobody serves: send gives up after --timeout
 *   send_eacces        as nobody, a 0600 root socket: exit 77 and "permission
 *                      denied" (root only: skipped otherwise)
 *   binary_client      format binary from a client of its own: every byte
 *                      value, empty records, one of max_record, small ones
 *                      sent a byte at a time (each read ends there), one
 *                      longer than max_record skipped with an ERR line that
 *                      says its record number and byte; the queue holds
 *                      every other record byte for byte, the OK line counts
 *
 * Nothing waits by sleeping: the producer is known to listen once it logged
 * (level debug) that it is attached, which it does after listen(); every other
 * wait is a poll on a pipe, a socket or a pidfd, with a deadline.  On failure
 * the queue state is printed.
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
#include <linux/sockios.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmapq.h"
#include "testproc.h"
#include "testutil.h"

#define DEADLINE_MS 10000 /* per step; every step normally takes milliseconds */

static char *dir;   /* fresh temporary directory */
static char *qpath; /* dir/queue */
static char *sock;  /* dir/p.sock */


#define EXPECT(cond, ...) TU_EXPECT(qpath, cond, __VA_ARGS__)

static bool is_alive(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return false;
	return si.si_pid == 0;
}

/* ---- per-test state ---- */

static void setup(void)
{
	dir = tu_mkdtemp("sock");
	qpath = tu_path(dir, "queue");
	sock = tu_path(dir, "p.sock");
	tp_set_queue(qpath);
}

/* [queue] geometry: 1024 int records (16 bytes each), or 4 */
#define RING1024 "size = 16K\nmax_record = 1K\n"
#define RING4    "size = 64\nmax_record = 8\n"

struct cfgopt {
	const char *input;   /* default socket */
	const char *queue;   /* more [queue] lines: default RING1024 */
	const char *on_full; /* default block */
	const char *output;  /* default stdout */
	uint32_t rate;       /* generate_rate */
	uint32_t stats;      /* stats_interval */
	uint32_t client_timeout; /* default 60 */
	const char *producer_extra; /* more [producer] lines */
};

/* dir/name: the queue in dir, the socket dir/p.sock, level debug */
static char *write_cfg(const char *name, struct cfgopt o)
{
	char *p, *text = tu_xasprintf("[queue]\npath = %s\n%s"
	                          "[producer]\ninput = %s\nsocket = %s\ngenerate_rate = %" PRIu32
	                          "\non_full = %s\nclient_timeout = %" PRIu32 "\n%s"
	                          "[consumer]\noutput = %s\n"
	                          "[log]\nlevel = debug\nstats_interval = %" PRIu32 "\n",
	                          qpath, o.queue ? o.queue : RING1024,
	                          o.input ? o.input : "socket", sock, o.rate,
	                          o.on_full ? o.on_full : "block",
	                          o.client_timeout ? o.client_timeout : 60,
	                          o.producer_extra ? o.producer_extra : "", o.output ? o.output : "stdout",
	                          o.stats);

	p = tu_write_in(dir, name, text);
	free(text);
	return p;
}

/* The producer, its stderr piped; returns once it listens (or generates). */
static struct tp_kid start_producer(const char *cfg)
{
	char **argv = tp_av("mmapq-producer", "--config", cfg, (char *)NULL);
	struct tp_kid p = tp_spawn(argv, false, false, true);

	tp_av_free(argv);
	EXPECT(tp_until(p.err, "as producer", DEADLINE_MS),
	       "producer did not report being attached; stderr: '%s'", tp_str(p.err));
	return p;
}

/* SIGTERM; exit code within the deadline */
static int stop(struct tp_kid *k)
{
	kill(k->pid, SIGTERM);
	if (k->err)
		tp_until(k->err, NULL, DEADLINE_MS);
	return tp_wait_exit(k, DEADLINE_MS);
}


struct res {
	int code;
	char *out, *err;
};

static void res_free(struct res *r)
{
	free(r->out);
	free(r->err);
}

/* Run a program to its end (stdin: in, or nothing), draining every other
 * stream meanwhile. */
static struct res run(char **argv, const char *in, size_t in_len, int timeout_ms)
{
	struct tp_kid k = tp_spawn(argv, true, true, true);
	struct res r = {.code = -1};
	struct tp_feed f = {.fd = k.in, .data = in, .len = in ? in_len : 0};

	if (f.len && !tp_feed_all(&f, timeout_ms))
		fprintf(stderr, "test_socket: %s: stdin not written completely (%zu of %zu bytes: %s)\n",
		        argv[0], f.off, f.len, f.err ? strerror(f.err) : "timeout");
	tp_close_fd(&k.in);
	if (!tp_until(k.out, NULL, timeout_ms) || !tp_until(k.err, NULL, timeout_ms))
		fprintf(stderr, "test_socket: %s: output did not end in time\n", argv[0]);
	r.code = tp_wait_exit(&k, timeout_ms);
	r.out = strdup(tp_str(k.out));
	r.err = strdup(tp_str(k.err));
	tp_kid_close(&k);
	return r;
}

static struct res ctl(const char *cfg, const char *cmd, const char *x1, const char *x2)
{
	char **argv = tp_av("mmapqctl", "--config", cfg, cmd, x1, x2, (char *)NULL);
	struct res r = run(argv, NULL, 0, DEADLINE_MS);

	tp_av_free(argv);
	return r;
}

/* A consumer --count n writing to its stdout (piped, drained) */
static struct tp_kid start_consumer(const char *cfg, long n)
{
	char count[32];
	char **argv;
	struct tp_kid c;

	snprintf(count, sizeof(count), "%ld", n);
	argv = tp_av("mmapq-consumer", "--config", cfg, "--count", count, (char *)NULL);
	c = tp_spawn(argv, false, true, true);
	tp_av_free(argv);
	return c;
}

/* Run consumer --count n to the end; returns its stdout (malloc'd). */
static char *consume(const char *cfg, long n)
{
	struct tp_kid c = start_consumer(cfg, n);
	char *s;
	int code;

	EXPECT(tp_until(c.out, NULL, DEADLINE_MS), "consumer --count %ld: no end of output, got '%s'", n,
	       tp_str(c.out));
	tp_until(c.err, NULL, DEADLINE_MS);
	code = tp_wait_exit(&c, DEADLINE_MS);
	EXPECT(code == 0, "consumer --count %ld exited %d; stderr: %s", n, code, tp_str(c.err));
	s = strdup(tp_str(c.out));
	tp_kid_close(&c);
	return s;
}

static bool file_is_socket(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0 && S_ISSOCK(st.st_mode);
}

static bool file_exists(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0;
}

/* ---- send_args ---- */

static void test_send_args(void)
{
	char *cfg = write_cfg("c.ini", (struct cfgopt){0});
	struct tp_kid p = start_producer(cfg);
	struct res r;
	char *out;
	int code;

	{
		char **argv = tp_av("mmapqctl", "--config", cfg, "send", "1", "2", "3", (char *)NULL);
		r = run(argv, NULL, 0, DEADLINE_MS);
		tp_av_free(argv);
	}
	EXPECT(r.code == 0, "send 1 2 3 exited %d; stdout '%s' stderr '%s'", r.code, r.out, r.err);
	EXPECT(strcmp(r.out, "published 3, last seq 2\n") == 0 && !*r.err,
	       "send printed '%s' (stderr '%s'), want 'published 3, last seq 2'", r.out, r.err);
	res_free(&r);
	out = consume(cfg, 3);
	EXPECT(strcmp(out, "1\n2\n3\n") == 0, "consumer printed '%s', want 1 2 3", out);
	free(out);
	/* an empty send is acknowledged too */
	{
		char **argv = tp_av("mmapqctl", "--config", cfg, "send", (char *)NULL);
		r = run(argv, "", 0, DEADLINE_MS);
		tp_av_free(argv);
	}
	EXPECT(r.code == 0 && strcmp(r.out, "published 0, last seq -\n") == 0,
	       "empty send: exit %d, stdout '%s', stderr '%s'", r.code, r.out, r.err);
	res_free(&r);
	code = stop(&p);
	EXPECT(code == 0, "producer exited %d on SIGTERM; stderr: %s", code, tp_str(p.err));
	EXPECT(!file_exists(sock), "%s still exists after the producer exited", sock);
	tp_kid_close(&p);
	free(cfg);
}

/* ---- send_stdin ---- */

static void test_send_stdin(void)
{
	char *outfile = tu_path(dir, "out");
	char *o = tu_xasprintf("file:%s", outfile);
	char *cfg = write_cfg("c.ini", (struct cfgopt){.output = o});
	char *data = tp_seq_lines(1, 50000), *file;
	char **argv = tp_av("mmapqctl", "--config", cfg, "send", (char *)NULL);
	struct tp_kid p = start_producer(cfg), c;
	struct res r;
	int code;

	/* the consumer drains while we send: the queue holds only 1024 */
	c = start_consumer(cfg, 50000);
	r = run(argv, data, strlen(data), 20000);
	EXPECT(r.code == 0 && strcmp(r.out, "published 50000, last seq 49999\n") == 0,
	       "send of 50000 records on stdin: exit %d, stdout '%s', stderr '%s'", r.code, r.out,
	       r.err);
	res_free(&r);
	tp_until(c.err, NULL, DEADLINE_MS);
	code = tp_wait_exit(&c, DEADLINE_MS);
	EXPECT(code == 0, "consumer exited %d; stderr %s", code, tp_str(c.err));
	file = tu_read_file(outfile, NULL);
	EXPECT(file && strcmp(file, data) == 0, "%s does not hold 1..50000 in order (%zu bytes, want %zu)",
	       outfile, file ? strlen(file) : 0, strlen(data));
	free(file);
	code = stop(&p);
	EXPECT(code == 0, "producer exited %d", code);
	tp_kid_close(&p);
	tp_kid_close(&c);
	tp_av_free(argv);
	free(data);
	free(cfg);
	free(o);
	free(outfile);
}

/* ---- four_clients ---- */

#define NCLIENTS 4
#define PER_CLIENT 20000

static void test_four_clients(void)
{
	char *outfile = tu_path(dir, "out");
	char *o = tu_xasprintf("file:%s", outfile);
	char *cfg = write_cfg("c.ini", (struct cfgopt){.output = o});
	struct tp_kid p = start_producer(cfg), c, cl[NCLIENTS];
	char **argv[NCLIENTS], *file, *line, *save = NULL;
	long next[NCLIENTS] = {0}, total = 0;
	char count[32];
	int code;

	snprintf(count, sizeof(count), "%d", NCLIENTS * PER_CLIENT);
	{
		char **cargv = tp_av("mmapq-consumer", "--config", cfg, "--count", count, (char *)NULL);
		c = tp_spawn(cargv, false, false, true);
		tp_av_free(cargv);
	}
	/* client k sends k*1000000 + i, i = 0..19999, as arguments */
	for (int k = 0; k < NCLIENTS; k++) {
		argv[k] = calloc(PER_CLIENT + 6, sizeof(char *));
		if (!argv[k])
			tu_die("calloc");
		argv[k][0] = tu_bin("mmapqctl");
		argv[k][1] = "--config";
		argv[k][2] = cfg;
		argv[k][3] = "send";
		for (int i = 0; i < PER_CLIENT; i++)
			argv[k][4 + i] = tu_xasprintf("%ld", (long)k * 1000000 + i);
	}
	for (int k = 0; k < NCLIENTS; k++)
		cl[k] = tp_spawn(argv[k], false, true, true);
	for (int k = 0; k < NCLIENTS; k++) {
		char want[64];
		EXPECT(tp_until(cl[k].out, NULL, 30000) && tp_until(cl[k].err, NULL, DEADLINE_MS),
		       "client %d: output did not end; stdout '%s' stderr '%s'", k, tp_str(cl[k].out),
		       tp_str(cl[k].err));
		code = tp_wait_exit(&cl[k], DEADLINE_MS);
		snprintf(want, sizeof(want), "published %d, last seq ", PER_CLIENT);
		EXPECT(code == 0 && strncmp(tp_str(cl[k].out), want, strlen(want)) == 0,
		       "client %d: exit %d, stdout '%s', stderr '%s'", k, code, tp_str(cl[k].out),
		       tp_str(cl[k].err));
	}
	tp_until(c.err, NULL, 30000);
	code = tp_wait_exit(&c, DEADLINE_MS);
	EXPECT(code == 0, "consumer --count %s exited %d; stderr %s", count, code, tp_str(c.err));
	file = tu_read_file(outfile, NULL);
	EXPECT(file, "%s: %s", outfile, strerror(errno));
	for (line = strtok_r(file, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		long v = strtol(line, NULL, 10), k = v / 1000000, i = v % 1000000;
		EXPECT(k >= 0 && k < NCLIENTS && i < PER_CLIENT, "record %ld: unexpected value '%s'",
		       total, line);
		EXPECT(i == next[k], "record %ld: client %ld's value %ld where %ld was due (%s)", total,
		       k, i, next[k], i < next[k] ? "repeated or out of order" : "values skipped");
		next[k]++;
		total++;
	}
	EXPECT(total == NCLIENTS * PER_CLIENT, "%ld records delivered, want %d", total,
	       NCLIENTS * PER_CLIENT);
	free(file);
	code = stop(&p);
	EXPECT(code == 0, "producer exited %d", code);
	for (int k = 0; k < NCLIENTS; k++) {
		tp_kid_close(&cl[k]);
		free(argv[k][0]);
		for (int i = 0; i < PER_CLIENT; i++)
			free(argv[k][4 + i]);
		free(argv[k]);
	}
	tp_kid_close(&c);
	tp_kid_close(&p);
	free(cfg);
	free(o);
	free(outfile);
}

/* ---- rejected ---- */

static int count_lines_with(const char *s, const char *needle)
{
	int n = 0;

	for (const char *l = s; *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		char *line = strndup(l, len);
		if (strstr(line, needle))
			n++;
		free(line);
		l += len + (e ? 1 : 0);
	}
	return n;
}

static void test_rejected(void)
{
	char *cfg = write_cfg("c.ini", (struct cfgopt){0});
	struct tp_kid p = start_producer(cfg);
	char **argv = tp_av("mmapqctl", "--config", cfg, "send", "1", "x", "2", "99999999999999999999",
	                 (char *)NULL);
	struct res r = run(argv, NULL, 0, DEADLINE_MS);
	struct mmapq_status st;
	char *out;

	EXPECT(r.code == 65, "send with 2 bad records exited %d (want 65); stdout '%s' stderr '%s'",
	       r.code, r.out, r.err);
	EXPECT(count_lines_with(r.err, "rejected:") == 2 && strstr(r.err, "rejected: 2:1: ") &&
	       strstr(r.err, "'x'") && strstr(r.err, "rejected: 4:1: ") &&
	       strstr(r.err, "'99999999999999999999'"),
	       "stderr does not have one 'rejected: LINE:COL' line per bad record: '%s'", r.err);
	EXPECT(strstr(r.out, "published 2, last seq 1") && strstr(r.out, "rejected 2"),
	       "stdout '%s'", r.out);
	st = tu_queue_status(qpath);
	EXPECT(st.tail == 2 && st.producer.bad_input == 2, "tail %" PRIu64 " bad_input %" PRIu64
	       ", want 2 and 2", st.tail, st.producer.bad_input);
	out = consume(cfg, 2);
	EXPECT(strcmp(out, "1\n2\n") == 0, "consumer printed '%s', want 1 2", out);
	free(out);
	res_free(&r);
	EXPECT(stop(&p) == 0, "producer did not exit 0");
	tp_kid_close(&p);
	tp_av_free(argv);
	free(cfg);
}

/*
 * ---- many_rejected ----
 * 200,000 bad records from a client that reads the replies while it sends
 * (the protocol asks it to: the producer stops reading a client whose
 * unread replies pile up, rather than drop them).  Every rejected record
 * must get its own ERR line, in order, and the final OK line the counts.
 * Then the same through mmapqctl send, which reads while it sends.
 */
static void test_many_rejected(void)
{
	enum { NBAD = 200000 };
	char *cfg = write_cfg("c.ini", (struct cfgopt){0});
	struct tp_kid p = start_producer(cfg), c, s;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = 2 + 2 * (size_t)NBAD + 2;
	char *data = malloc(len + 1), want[128];
	struct tp_out *reply;
	struct tp_feed f;
	int fd, nerr;

	if (!data)
		tu_die("malloc");
	data[0] = '1';
	data[1] = '\n';
	for (size_t i = 0; i < NBAD; i++) {
		data[2 + 2 * i] = 'x';
		data[3 + 2 * i] = '\n';
	}
	data[len - 2] = '2';
	data[len - 1] = '\n';
	data[len] = '\0';
	c = start_consumer(cfg, 2);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, sock);
	EXPECT(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect %s: %s", sock,
	       strerror(errno));
	reply = tp_out_new(dup(fd)); /* drained by feed_all while it writes */
	f = (struct tp_feed){.fd = fd, .data = data, .len = len};
	EXPECT(tp_feed_all(&f, 20000), "could not send %zu bytes (%zu sent): %s; replies so far %zu bytes",
	       len, f.off, f.err ? strerror(f.err) : "timeout", reply->len);
	shutdown(fd, SHUT_WR);
	EXPECT(tp_until(reply, NULL, DEADLINE_MS), "the producer did not close the connection");
	nerr = count_lines_with(tp_str(reply), "ERR ");
	snprintf(want, sizeof(want), "OK published=2 dropped=0 rejected=%d last_seq=1\n", NBAD);
	EXPECT(nerr == NBAD && strstr(tp_str(reply), want) &&
	       strstr(tp_str(reply), "ERR 200001:1: not a decimal integer: 'x'\n"),
	       "want %d ERR lines up to line 200001 and '%.*s'; the reply has %d ERR lines (%zu bytes)"
	       " and ends with '%s'", NBAD, (int)strlen(want) - 1, want, nerr, reply->len,
	       reply->len > 120 ? reply->s + reply->len - 120 : reply->s);
	EXPECT(tp_until(c.out, NULL, DEADLINE_MS) && strcmp(tp_str(c.out), "1\n2\n") == 0,
	       "consumer printed '%s', want 1 2", tp_str(c.out));
	EXPECT(tp_wait_exit(&c, DEADLINE_MS) == 0, "consumer failed");
	tp_out_free(reply);
	close(fd);
	tp_kid_close(&c);

	/* mmapqctl send: every rejected record reported on its stderr */
	char **argv = tp_av("mmapqctl", "--config", cfg, "send", (char *)NULL);
	s = tp_spawn(argv, true, true, true);
	tp_av_free(argv);
	f = (struct tp_feed){.fd = s.in, .data = data, .len = len};
	EXPECT(tp_feed_all(&f, 20000), "could not feed mmapqctl send");
	tp_close_fd(&s.in);
	EXPECT(tp_until(s.err, NULL, DEADLINE_MS) && tp_until(s.out, NULL, DEADLINE_MS), "send did not end");
	EXPECT(tp_wait_exit(&s, DEADLINE_MS) == 65, "send of rejected records: want exit 65");
	nerr = count_lines_with(tp_str(s.err), ": rejected: ");
	EXPECT(nerr == NBAD && strcmp(tp_str(s.out), "published 2, last seq 3, rejected 200000, dropped 0\n") == 0,
	       "send reported %d rejected records (want %d), stdout '%s'", nerr, NBAD, tp_str(s.out));
	tp_kid_close(&s);
	EXPECT(stop(&p) == 0, "producer did not exit 0");
	tp_kid_close(&p);
	free(data);
	free(cfg);
}

/* ---- no_producer ---- */

static void test_no_producer(void)
{
	char *cfg = write_cfg("c.ini", (struct cfgopt){0});
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct res r;
	struct tp_kid p;
	char *text;
	int fd, code;

	/* nothing at the path */
	r = ctl(cfg, "send", "1", NULL);
	EXPECT(r.code == 69 && strstr(r.err, sock) && strstr(r.err, "cannot connect to the producer") &&
	       strstr(r.err, strerror(ENOENT)) && !*r.out,
	       "send without a socket file: exit %d (want 69), stdout '%s', stderr '%s'", r.code,
	       r.out, r.err);
	res_free(&r);
	/* --socket overrides the configuration, needs none */
	{
		char **argv = tp_av("mmapqctl", "--config", "/nonexistent/x.ini", "send", "--socket", sock,
		                 "1", (char *)NULL);
		r = run(argv, NULL, 0, DEADLINE_MS);
		tp_av_free(argv);
	}
	EXPECT(r.code == 69 && strstr(r.err, "cannot connect to the producer"),
	       "send --socket without a socket file: exit %d, stderr '%s'", r.code, r.err);
	res_free(&r);

	/* a stale socket file: bound, never listening, closed */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, sock);
	EXPECT(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind %s: %s", sock,
	       strerror(errno));
	close(fd);
	EXPECT(file_is_socket(sock), "%s is not a socket file", sock);
	r = ctl(cfg, "send", "1", NULL);
	EXPECT(r.code == 69 && strstr(r.err, "cannot connect to the producer") &&
	       strstr(r.err, strerror(ECONNREFUSED)),
	       "send to a stale socket file: exit %d (want 69), stderr '%s'", r.code, r.err);
	res_free(&r);

	/* a producer replaces the stale socket file */
	p = start_producer(cfg);
	r = ctl(cfg, "send", "5", NULL);
	EXPECT(r.code == 0 && strcmp(r.out, "published 1, last seq 0\n") == 0,
	       "send after the stale file was replaced: exit %d, stdout '%s', stderr '%s'", r.code,
	       r.out, r.err);
	res_free(&r);
	code = stop(&p);
	EXPECT(code == 0, "producer exited %d", code);
	EXPECT(!file_exists(sock), "%s left behind", sock);
	tp_kid_close(&p);

	/* anything else at the path is not the producer's to remove */
	EXPECT(tu_write_file(sock, "keep me\n", 8) == 0, "write %s", sock);
	{
		char **argv = tp_av("mmapq-producer", "--config", cfg, (char *)NULL);
		r = run(argv, NULL, 0, DEADLINE_MS);
		tp_av_free(argv);
	}
	EXPECT(r.code == 73 && strstr(r.err, "cannot listen"),
	       "producer with a regular file at the socket path: exit %d (want 73), stderr '%s'",
	       r.code, r.err);
	res_free(&r);
	text = tu_read_file(sock, NULL);
	EXPECT(text && strcmp(text, "keep me\n") == 0, "the regular file at %s was changed", sock);
	free(text);
	free(cfg);
}

/* ---- drop_full ---- */

static void test_drop_full(void)
{
	char *cfg = write_cfg("c.ini", (struct cfgopt){.queue = RING4, .on_full = "drop"});
	struct tp_kid p = start_producer(cfg);
	char **argv = tp_av("mmapqctl", "--config", cfg, "send", "1", "2", "3", "4", "5", "6", "7", "8",
	                 "9", "10", (char *)NULL);
	struct res r = run(argv, NULL, 0, DEADLINE_MS);
	struct mmapq_status st;

	EXPECT(r.code == 75, "send of 10 into a full queue (drop) exited %d (want 75); stdout '%s' "
	       "stderr '%s'", r.code, r.out, r.err);
	EXPECT(strcmp(r.out, "published 4, last seq 3, rejected 0, dropped 6\n") == 0,
	       "stdout '%s', want 'published 4, last seq 3, rejected 0, dropped 6'", r.out);
	res_free(&r);
	r = ctl(cfg, "status", NULL, NULL);
	EXPECT(r.code == 0 && strstr(r.out, "dropped 6,"), "mmapqctl status: exit %d, '%s'", r.code,
	       r.out);
	res_free(&r);
	r = ctl(cfg, "--json", "status", NULL);
	EXPECT(r.code == 0 && strstr(r.out, "\"dropped\":6,"), "mmapqctl --json status: exit %d, '%s'",
	       r.code, r.out);
	res_free(&r);
	st = tu_queue_status(qpath);
	EXPECT(st.tail == 4 && st.producer.dropped == 6, "tail %" PRIu64 " dropped %" PRIu64, st.tail,
	       st.producer.dropped);
	EXPECT(stop(&p) == 0, "producer did not exit 0");
	tp_kid_close(&p);
	tp_av_free(argv);
	free(cfg);
}

/* ---- block_full ---- */

/* 4 int records fill the ring, block, stats every second: the producer's
 * "depth 64/64 bytes" line says it has filled the queue and waits for room. */
static void start_blocked_send(const char *cfg, struct tp_kid *p, struct tp_kid *s)
{
	char **argv = tp_av("mmapqctl", "--config", cfg, "send", "1", "2", "3", "4", "5", "6", "7", "8",
	                 "9", "10", (char *)NULL);

	*p = start_producer(cfg);
	*s = tp_spawn(argv, false, true, true);
	tp_av_free(argv);
	EXPECT(tp_until(p->err, "depth 64/64 bytes (4 records)", DEADLINE_MS),
	       "the producer did not report a full queue; stderr: '%s'", tp_str(p->err));
	EXPECT(is_alive(s->pid) && !s->out->eof,
	       "send returned while the queue is full (block): stdout '%s' stderr '%s'", tp_str(s->out),
	       tp_str(s->err));
}

static void test_block_full(void)
{
	char *cfg = write_cfg("c.ini", (struct cfgopt){.queue = RING4, .stats = 1});
	struct tp_kid p, s, c;
	char *want = tp_seq_lines(1, 10);
	int code;

	start_blocked_send(cfg, &p, &s);
	/* a consumer makes room: the send completes */
	c = start_consumer(cfg, 10);
	EXPECT(tp_until(s.out, NULL, DEADLINE_MS) && tp_until(s.err, NULL, DEADLINE_MS),
	       "send did not finish once a consumer ran; stdout '%s'", tp_str(s.out));
	code = tp_wait_exit(&s, DEADLINE_MS);
	EXPECT(code == 0 && strcmp(tp_str(s.out), "published 10, last seq 9\n") == 0,
	       "send exited %d, stdout '%s', stderr '%s'", code, tp_str(s.out), tp_str(s.err));
	EXPECT(tp_until(c.out, NULL, DEADLINE_MS) && strcmp(tp_str(c.out), want) == 0,
	       "consumer printed '%s', want 1..10", tp_str(c.out));
	code = tp_wait_exit(&c, DEADLINE_MS);
	EXPECT(code == 0, "consumer exited %d", code);
	EXPECT(stop(&p) == 0, "producer did not exit 0");
	tp_kid_close(&p);
	tp_kid_close(&s);
	tp_kid_close(&c);
	free(want);
	free(cfg);
}

/* ---- sigterm_blocked ---- */

static void test_sigterm_blocked(void)
{
	char *cfg = write_cfg("c.ini", (struct cfgopt){.queue = RING4, .stats = 1});
	struct tp_kid p, s;
	struct mmapq_status st;
	unsigned long long n = 0;
	const char *failline;
	char *out, *want;
	int code;

	start_blocked_send(cfg, &p, &s);
	kill(p.pid, SIGTERM);
	code = tp_wait_exit(&p, DEADLINE_MS);
	EXPECT(code == 0, "producer blocked on a full queue: SIGTERM -> exit %d; stderr '%s'", code,
	       tp_str(p.err));
	EXPECT(!file_exists(sock), "%s left behind by the producer", sock);
	EXPECT(tp_until(s.out, NULL, DEADLINE_MS) && tp_until(s.err, NULL, DEADLINE_MS),
	       "send did not end after the producer stopped");
	code = tp_wait_exit(&s, DEADLINE_MS);
	failline = strstr(tp_str(s.err), "the producer gave up on this connection: stopping published=");
	EXPECT(code == 74 && failline &&
	       sscanf(failline, "the producer gave up on this connection: stopping published=%llu", &n) == 1 &&
	       strstr(tp_str(s.err), " records published (last seq ") && !strstr(tp_str(s.err), "OK ") &&
	       !*tp_str(s.out),
	       "send: exit %d (want 74), stdout '%s', stderr '%s' (want a FAIL stopping line, no OK)",
	       code, tp_str(s.out), tp_str(s.err));
	st = tu_queue_status(qpath);
	EXPECT(n >= 4 && st.tail == n && st.head == 0,
	       "FAIL said published=%llu; queue tail %" PRIu64 " head %" PRIu64, n, st.tail, st.head);
	out = consume(cfg, (long)n);
	want = tp_seq_lines(1, (long)n);
	EXPECT(strcmp(out, want) == 0, "the %llu published records are '%s', want '%s'", n, out, want);
	free(out);
	free(want);
	tp_kid_close(&p);
	tp_kid_close(&s);
	free(cfg);
}

/* ---- stale_after_kill ---- */

static void test_stale_after_kill(void)
{
	char *cfg = write_cfg("c.ini", (struct cfgopt){0});
	struct tp_kid p = start_producer(cfg);
	struct res r;
	char *out;

	r = ctl(cfg, "send", "1", NULL);
	EXPECT(r.code == 0, "send: exit %d, stderr '%s'", r.code, r.err);
	res_free(&r);
	tu_kill(p.pid);
	tu_untrack(p.pid);
	tp_kid_close(&p);
	EXPECT(file_is_socket(sock), "no socket file left by the SIGKILLed producer");
	r = ctl(cfg, "send", "2", NULL);
	EXPECT(r.code == 69 && strstr(r.err, "cannot connect to the producer"),
	       "send to a dead producer's socket: exit %d (want 69), stderr '%s'", r.code, r.err);
	res_free(&r);

	p = start_producer(cfg);
	r = ctl(cfg, "send", "3", NULL);
	EXPECT(r.code == 0 && strcmp(r.out, "published 1, last seq 1\n") == 0,
	       "send to the next producer: exit %d, stdout '%s', stderr '%s'", r.code, r.out, r.err);
	res_free(&r);
	EXPECT(stop(&p) == 0, "producer did not exit 0; stderr %s", tp_str(p.err));
	EXPECT(!file_exists(sock), "%s left behind", sock);
	tp_kid_close(&p);
	out = consume(cfg, 2);
	EXPECT(strcmp(out, "1\n3\n") == 0, "consumer printed '%s', want 1 3", out);
	free(out);
	free(cfg);
}

/* ---- generate ---- */

/* "a\nb\n..." holds first, first+1, ... last exactly? */
static bool consecutive(const char *s, long first, long last, long *bad_at)
{
	long want = first;
	char *end;

	while (*s) {
		long v = strtol(s, &end, 10);
		if (end == s || *end != '\n' || v != want) {
			*bad_at = want;
			return false;
		}
		want++;
		s = end + 1;
	}
	*bad_at = want;
	return want == last + 1;
}

static void test_generate(void)
{
	enum { FIRST = 10000, KILLS = 5, STEP = 6000, TOTAL = FIRST + KILLS * STEP + 6000 };
	char *cfg = write_cfg("c.ini", (struct cfgopt){.input = "generate",
	                                               .queue = "size = 1K\nmax_record = 8\n"});
	struct tp_kid p = start_producer(cfg), c;
	struct mmapq_status st;
	struct res r;
	long bad;
	char *out, *line, *save = NULL;
	uint64_t seq;
	int code, n = 0;

	out = consume(cfg, FIRST);
	EXPECT(consecutive(out, 0, FIRST - 1, &bad), "generator: consumer output is not 0..%d "
	       "(first wrong value where %ld was due)", FIRST - 1, bad);
	free(out);

	/* SIGKILL the producer mid-stream, restart it: values go on from the tail */
	c = start_consumer(cfg, TOTAL - FIRST);
	for (int k = 1; k <= KILLS; k++) {
		char mark[32];
		snprintf(mark, sizeof(mark), "\n%d\n", FIRST + k * STEP);
		EXPECT(tp_until(c.out, mark, DEADLINE_MS), "kill %d: consumer did not reach %d", k,
		       FIRST + k * STEP);
		tu_kill(p.pid);
		tu_untrack(p.pid);
		tp_kid_close(&p);
		p = start_producer(cfg);
	}
	EXPECT(tp_until(c.out, NULL, DEADLINE_MS), "consumer output did not end");
	code = tp_wait_exit(&c, DEADLINE_MS);
	EXPECT(code == 0, "consumer exited %d; stderr %s", code, tp_str(c.err));
	EXPECT(consecutive(tp_str(c.out), FIRST, TOTAL - 1, &bad),
	       "after %d SIGKILLs and restarts the values are not %d..%d: gap or repeat where %ld was "
	       "due", KILLS, FIRST, TOTAL - 1, bad);
	tp_kid_close(&c);
	code = stop(&p);
	EXPECT(code == 0, "producer exited %d on SIGTERM", code);
	tp_kid_close(&p);

	/* what is left in the queue: value == sequence number, from the head on */
	st = tu_queue_status(qpath);
	EXPECT(st.head == TOTAL && st.tail > st.head && st.tail - st.head <= 64,
	       "head %" PRIu64 " tail %" PRIu64 ", want head %d and a full-ish queue", st.head, st.tail,
	       TOTAL);
	r = ctl(cfg, "dump", NULL, NULL);
	EXPECT(r.code == 0, "dump exited %d: %s", r.code, r.err);
	seq = st.head;
	for (line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), seq++) {
		unsigned long long s;
		long long v;
		EXPECT(sscanf(line, "%llu\t%lld", &s, &v) == 2 && s == seq && v == (long long)seq,
		       "dump line '%s', want %" PRIu64 "\\t%" PRIu64, line, seq, seq);
		n++;
	}
	EXPECT(seq == st.tail, "dump listed %d records, want %" PRIu64, n, st.tail - st.head);
	res_free(&r);
	free(cfg);
}

static void test_generate_rate(void)
{
	char *cfg = write_cfg("c.ini", (struct cfgopt){.input = "generate",
	                                               .queue = "size = 1K\nmax_record = 8\n",
	                                               .rate = 200});
	struct tp_kid p = start_producer(cfg);
	char *out;
	long bad;
	int code;

	/* 200 records at 200/s: about a second */
	out = consume(cfg, 200);
	EXPECT(consecutive(out, 0, 199, &bad), "generate_rate 200: output is not 0..199 (wrong where "
	       "%ld was due): '%.200s'", bad, out);
	free(out);
	code = stop(&p);
	EXPECT(code == 0, "producer exited %d", code);
	tp_kid_close(&p);
	free(cfg);
}

/* ---- idle clients and exhausted descriptors ---- */

/* n connections to the producer's socket (they sit in the backlog until
 * it accepts them) */
static void connect_clients(int *fds, int n)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	strcpy(sa.sun_path, sock);
	for (int i = 0; i < n; i++) {
		fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		EXPECT(fds[i] >= 0 && connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) == 0,
		       "connect %d: %s", i, strerror(errno));
	}
}

/* Until the producer's stderr has n lines containing needle. */
static bool until_count(struct tp_out *o, const char *needle, int n, int timeout_ms)
{
	uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;

	while (count_lines_with(tp_str(o), needle) < n)
		if (!tp_pump(deadline))
			return false;
	return true;
}

/*
 * 64 clients connect and send nothing: every place is taken.  A new sender
 * must still get in (the client idle the longest, for at least a second,
 * is closed with "FAIL idle"), instead of waiting in the backlog forever.
 */
static void test_idle_clients(void)
{
	char *cfg = write_cfg("c.ini", (struct cfgopt){0});
	struct tp_kid p = start_producer(cfg);
	int fds[64], failed = 0;
	struct res r;

	connect_clients(fds, 64);
	EXPECT(until_count(p.err, " connected", 64, DEADLINE_MS), "64 clients not accepted: %s", tp_str(p.err));
	r = ctl(cfg, "send", "1", "2");
	EXPECT(r.code == 0 && strstr(r.out, "published 2"), "send with 64 idle clients connected: exit %d,"
	       " stdout '%s', stderr '%s'", r.code, r.out, r.err);
	res_free(&r);
	for (int i = 0; i < 64; i++) {
		char buf[256];
		ssize_t k = recv(fds[i], buf, sizeof(buf) - 1, MSG_DONTWAIT);
		if (k > 0) {
			buf[k] = '\0';
			failed += strcmp(buf, "FAIL idle published=0 dropped=0 rejected=0 last_seq=-\n") == 0;
		}
		close(fds[i]);
	}
	EXPECT(failed >= 1, "no idle client was told 'FAIL idle'");
	EXPECT(stop(&p) == 0, "producer did not exit 0");
	tp_kid_close(&p);
	free(cfg);
}

/* [producer] client_timeout: a client that sent one record and then
 * nothing is closed, told what was published. */
static void test_client_timeout(void)
{
	char *cfg = write_cfg("c.ini", (struct cfgopt){.client_timeout = 1});
	struct tp_kid p = start_producer(cfg);
	struct tp_out *reply;
	int fd;

	connect_clients(&fd, 1);
	EXPECT(write(fd, "5\n", 2) == 2, "write");
	reply = tp_out_new(fd);
	EXPECT(tp_until(reply, NULL, DEADLINE_MS) &&
	       !strcmp(tp_str(reply), "ACK published=1 dropped=0 rejected=0 last_seq=0\n"
	                              "FAIL idle published=1 dropped=0 rejected=0 last_seq=0\n"),
	       "an idle client got '%s' (want its record acknowledged at once, then FAIL idle with its"
	       " count, then the end)", tp_str(reply));
	EXPECT(tu_queue_status(qpath).tail == 1, "the record before the silence is not published");
	tp_out_free(reply);
	EXPECT(stop(&p) == 0, "producer did not exit 0");
	tp_kid_close(&p);
	free(cfg);
}

static uint64_t cpu_ticks(pid_t pid)
{
	char *path = tu_xasprintf("/proc/%d/stat", (int)pid), *st = tu_read_file(path, NULL), *p;
	unsigned long long ut = 0, stime = 0;

	/* fields 14 and 15 (utime, stime) after the ")" that ends the name */
	if (st && (p = strrchr(st, ')')))
		sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stime);
	free(st);
	free(path);
	return ut + stime;
}

/*
 * The producer limited to 16 descriptors, 40 clients connecting: accept()
 * fails with EMFILE.  It must not spin (100% CPU, a log line for every failed
 * accept()): it backs off, says so once, and gets the clients in as
 * idle ones are closed.  Then a sender still gets through.
 */
static void test_accept_exhausted(void)
{
	char *cfg = write_cfg("c.ini", (struct cfgopt){0});
	char **argv = tp_av("mmapq-producer", "--config", cfg, (char *)NULL);
	struct tu_child c = TU_CHILD_INIT;
	struct tp_kid p = {.in = -1};
	int efd[2], fds[40];
	uint64_t t0, ticks0, ms;
	long hz = sysconf(_SC_CLK_TCK);
	struct res r;

	EXPECT(pipe2(efd, O_CLOEXEC) == 0, "pipe2");
	c.stdio[2] = efd[1];
	c.rlimit_resource = RLIMIT_NOFILE;
	c.rlimit = 16;
	p.pid = tu_start(argv, &c);
	tu_track(p.pid);
	close(efd[1]);
	p.err = tp_out_new(efd[0]);
	tp_av_free(argv);
	EXPECT(tp_until(p.err, "as producer", DEADLINE_MS), "producer did not start: %s", tp_str(p.err));
	t0 = tu_now_ms();
	ticks0 = cpu_ticks(p.pid);
	connect_clients(fds, 40);
	EXPECT(tp_until(p.err, "accept: Too many open files", DEADLINE_MS), "no EMFILE: %s", tp_str(p.err));
	/* every one of the 40 gets in, in turn, as idle ones are closed */
	EXPECT(until_count(p.err, " connected", 40, 30000), "not all 40 clients were accepted: %d",
	       count_lines_with(tp_str(p.err), " connected"));
	ms = tu_now_ms() - t0;
	uint64_t cpu_ms = (cpu_ticks(p.pid) - ticks0) * 1000 / (uint64_t)hz;
	EXPECT(cpu_ms * 4 < ms, "the producer used %" PRIu64 " ms of CPU in %" PRIu64 " ms with accept()"
	       " failing: it spins", cpu_ms, ms);
	EXPECT(count_lines_with(tp_str(p.err), "accept:") <= 2 && p.err->len < 16384,
	       "%d accept lines, %zu bytes of log: the message is not collapsed",
	       count_lines_with(tp_str(p.err), "accept:"), p.err->len);
	for (int i = 0; i < 40; i++)
		close(fds[i]);
	r = ctl(cfg, "send", "7", NULL);
	EXPECT(r.code == 0, "send after EMFILE: exit %d, stderr '%s'", r.code, r.err);
	res_free(&r);
	EXPECT(stop(&p) == 0, "producer did not exit 0");
	tp_kid_close(&p);
	free(cfg);
}

/* ---- streaming acknowledgements ---- */

/* Each "ACK published=N ..." line of text in order; false if one is not
 * well-formed or N goes back. */
static bool ack_counts(const char *text, uint64_t *v, int max, int *n)
{
	*n = 0;
	for (const char *l = strstr(text, "ACK "); l; l = strstr(l + 1, "\nACK ")) {
		unsigned long long pub, drop, rej;

		if (*l == '\n')
			l++;
		if (*n == max || sscanf(l, "ACK published=%llu dropped=%llu rejected=%llu last_seq=", &pub,
		                        &drop, &rej) != 3 || (*n && pub < v[*n - 1]))
			return false;
		v[(*n)++] = pub;
	}
	return true;
}

/*
 * A client that keeps its connection open learns what is published from
 * ACK lines (default: the first at once, then at most one a second),
 * without shutting down its side; ERR lines still come per bad record; the
 * final OK line after the shutdown.  With ack_interval = 0 and ack_records
 * = N: an ACK only once N more are published.  With both 0: only OK.
 */
static void test_stream_acks(void)
{
	char *cfg = write_cfg("c.ini", (struct cfgopt){0});
	struct tp_kid p = start_producer(cfg);
	struct tp_out *reply;
	uint64_t counts[64];
	int fd, n;

	connect_clients(&fd, 1);
	reply = tp_out_new(fd);
	EXPECT(write(fd, "1 2 3\n", 6) == 6, "write");
	EXPECT(tp_until(reply, "ACK published=3 dropped=0 rejected=0 last_seq=2\n", DEADLINE_MS),
	       "no ACK for the first 3 records, the connection open: '%s'", tp_str(reply));
	EXPECT(write(fd, "4 x 5\n", 6) == 6, "write");
	EXPECT(tp_until(reply, "ACK published=5 dropped=0 rejected=1 last_seq=4\n", DEADLINE_MS),
	       "no ACK for 4 and 5 (x rejected) within the interval: '%s'", tp_str(reply));
	EXPECT(strstr(tp_str(reply), "ERR 2:3: not a decimal integer: 'x'\n"), "no ERR for x: '%s'",
	       tp_str(reply));
	EXPECT(shutdown(fd, SHUT_WR) == 0, "shutdown");
	EXPECT(tp_until(reply, NULL, DEADLINE_MS) &&
	       strstr(tp_str(reply), "\nOK published=5 dropped=0 rejected=1 last_seq=4\n"),
	       "after the shutdown: '%s'", tp_str(reply));
	tp_out_free(reply);
	EXPECT(stop(&p) == 0, "producer did not exit 0");
	tp_kid_close(&p);
	free(cfg);

	/* by count only: ACK lines at least 100 apart, whatever the batches */
	cfg = write_cfg("n.ini", (struct cfgopt){.producer_extra = "ack_interval = 0\nack_records = 100\n"});
	p = start_producer(cfg);
	connect_clients(&fd, 1);
	reply = tp_out_new(fd);
	for (int i = 0; i < 1000; i++) {
		char line[16];
		int len = snprintf(line, sizeof(line), "%d\n", i);
		EXPECT(write(fd, line, (size_t)len) == len, "write");
	}
	EXPECT(tp_until(reply, "ACK published=", DEADLINE_MS),
	       "no ACK for 1000 records with ack_records = 100, the connection open: '%s'",
	       tp_str(reply));
	EXPECT(shutdown(fd, SHUT_WR) == 0, "shutdown");
	EXPECT(tp_until(reply, NULL, DEADLINE_MS) &&
	       strstr(tp_str(reply), "OK published=1000 dropped=0 rejected=0 last_seq=1004\n"),
	       "after the shutdown: '%s'", tp_str(reply));
	EXPECT(ack_counts(tp_str(reply), counts, 64, &n) && n >= 1, "ACK lines: '%s'", tp_str(reply));
	for (int i = 0; i < n; i++)
		EXPECT(counts[i] - (i ? counts[i - 1] : 0) >= 100, "ACK %d at %" PRIu64 ", %" PRIu64
		       " after the one before (want >= 100): '%s'", i, counts[i], i ? counts[i - 1] : 0,
		       tp_str(reply));
	tp_out_free(reply);
	EXPECT(stop(&p) == 0, "producer did not exit 0");
	tp_kid_close(&p);
	free(cfg);

	/* both 0: the protocol as before, the final OK line alone */
	cfg = write_cfg("z.ini", (struct cfgopt){.producer_extra = "ack_interval = 0\nack_records = 0\n"});
	p = start_producer(cfg);
	connect_clients(&fd, 1);
	reply = tp_out_new(fd);
	EXPECT(write(fd, "7 8\n", 4) == 4 && shutdown(fd, SHUT_WR) == 0, "write");
	EXPECT(tp_until(reply, NULL, DEADLINE_MS) &&
	       !strcmp(tp_str(reply), "OK published=2 dropped=0 rejected=0 last_seq=1006\n"),
	       "with acks off: '%s' (want the OK line alone)", tp_str(reply));
	tp_out_free(reply);
	EXPECT(stop(&p) == 0, "producer did not exit 0");
	tp_kid_close(&p);
	free(cfg);
}

/* ---- send's deadline and permission errors ---- */

/* A socket nobody serves (as the passed socket of a producer configured
 * with input = generate): send gives up after --timeout with a reason. */
static void test_send_timeout(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char **argv = tp_av("mmapqctl", "--socket", sock, "--timeout", "1", "send", "1", "2", (char *)NULL);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct res r;

	strcpy(sa.sun_path, sock);
	EXPECT(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 8) == 0,
	       "listen: %s", strerror(errno));
	r = run(argv, NULL, 0, DEADLINE_MS);
	EXPECT(r.code == 69 && strstr(r.err, "no progress for 1 s"),
	       "send to a socket nobody serves: exit %d (want 69), stderr '%s'", r.code, r.err);
	res_free(&r);
	tp_av_free(argv);
	close(fd);
}

/* Not allowed to connect: its own exit code (77) and message, not "no
 * producer listens" (69).  As nobody, so root too is refused: it skips when
 * it cannot run as nobody. */
static void test_send_eacces(void)
{
	char *argv[] = {NULL, "--socket", sock, "send", "1", NULL};
	struct tp_kid p;
	int efd[2], code;
	char *cfg, *err;
	pid_t pid;

	if (geteuid() != 0) /* as ourselves the socket is ours: nobody else to be refused */
		tu_skip("needs root (to run mmapqctl as nobody)");
	cfg = write_cfg("c.ini", (struct cfgopt){0});
	p = start_producer(cfg);
	argv[0] = tu_bin("mmapqctl");
	EXPECT(chmod(dir, 0755) == 0 && chmod(sock, 0600) == 0, "chmod");
	EXPECT(pipe2(efd, O_CLOEXEC) == 0, "pipe2");
	pid = fork();
	if (pid == 0) {
		int r;

		dup2(efd[1], 2);
		if ((r = tu_become_nobody()) < 0) {
			fprintf(stderr, "cannot become nobody: %s", strerror(-r));
			_exit(TU_NOT_NOBODY);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	close(efd[1]);
	err = tu_read_all(efd[0], DEADLINE_MS, NULL);
	code = tu_exit_code(tu_wait(pid, DEADLINE_MS));
	if (code != TU_NOT_NOBODY)
		EXPECT(code == 77 && err && strstr(err, "permission denied"),
		       "send as nobody to a 0600 root socket: exit %d (want 77), stderr '%s'", code,
		       err ? err : "");
	close(efd[0]);
	free(argv[0]);
	EXPECT(stop(&p) == 0, "producer did not exit 0");
	tp_kid_close(&p);
	free(cfg);
	if (code == TU_NOT_NOBODY)
		tu_skip("%s", err ? err : "cannot become nobody");
	free(err);
}


/* ---- binary_client ---- */

/* Until the producer has read all this socket sent (nothing left unread:
 * SIOCOUTQ), or the deadline. */
static bool sent_taken(int fd)
{
	uint64_t end = tu_now_ms() + DEADLINE_MS;
	int n;

	while (ioctl(fd, SIOCOUTQ, &n) == 0 && n > 0) {
		if (tu_now_ms() >= end)
			return false;
		sched_yield();
	}
	return true;
}

struct stream {
	unsigned char *p;
	size_t len, cap;
};

static void put_bytes(struct stream *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		EXPECT(b->p, "realloc");
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

/* A binary record on the wire (a 4-byte big-endian length, the bytes) into
 * *wire, and the record alone into *recs (its length first, host order). */
static void put_record(struct stream *wire, struct stream *recs, const void *d, uint32_t n)
{
	unsigned char pre[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
	                        (unsigned char)(n >> 8), (unsigned char)n};

	put_bytes(wire, pre, 4);
	put_bytes(wire, d, n);
	if (recs) {
		put_bytes(recs, &n, sizeof(n));
		put_bytes(recs, d, n);
	}
}

/*
 * A client of its own sends binary records: those of 0 to 20 bytes a byte
 * at a time (so that every record is split at every offset between the
 * producer's reads: each byte is taken before the next is sent), then
 * every byte value, a record of max_record, one byte more (refused: an ERR
 * line with its record number and where its length prefix starts), an
 * empty one, one of newlines, a NUL and a backslash, in pieces.  The queue
 * holds every record but the refused one, byte for byte (read with a
 * consumer's handle), and the OK line counts them.
 */
static void test_binary_client(void)
{
	char *cfg = write_cfg("c.ini", (struct cfgopt){.queue = "format = binary\nsize = 64K\n"
	                                                        "max_record = 1K\n"});
	struct tp_kid p = start_producer(cfg);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stream wire = {0}, recs = {0};
	struct mmapq_params cp = {.path = qpath, .role = MMAPQ_ROLE_CONSUMER};
	struct mmapq_error err;
	struct mmapq *q;
	struct tp_out *reply;
	unsigned char r[1025];
	uint32_t nrec = 0, refused_no, avail;
	size_t at = 0, refused_at, off = 0;
	char want[160];
	int fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, sock);
	EXPECT(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect %s: %s", sock,
	       strerror(errno));
	for (uint32_t len = 0; len <= 20; len++, nrec++) {
		for (uint32_t j = 0; j < len; j++)
			r[j] = (unsigned char)(len * 17 + j * 29);
		put_record(&wire, &recs, r, len);
	}
	for (; at < wire.len; at++) {
		EXPECT(send(fd, wire.p + at, 1, MSG_NOSIGNAL) == 1, "send: %s", strerror(errno));
		EXPECT(sent_taken(fd), "the producer did not read byte %zu", at);
	}
	for (uint32_t j = 0; j < 256; j++)
		r[j] = (unsigned char)j;
	put_record(&wire, &recs, r, 256);
	for (uint32_t j = 0; j < 1025; j++)
		r[j] = (unsigned char)(j * 7 + 3);
	put_record(&wire, &recs, r, 1024);
	nrec += 2;
	refused_no = nrec + 1; /* refused records are numbered too */
	refused_at = wire.len;
	put_record(&wire, NULL, r, 1025);
	put_record(&wire, &recs, "", 0);
	put_record(&wire, &recs, "\n\r\n\0\\", 5);
	nrec += 2;
	/* the rest in pieces that end inside prefixes and payloads */
	{
		size_t cuts[] = {at + 2, at + 130, at + 260 + 3, at + 260 + 4, at + 260 + 600,
		                 refused_at + 1, refused_at + 700, wire.len};
		for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
			EXPECT(send(fd, wire.p + at, cuts[k] - at, MSG_NOSIGNAL) == (ssize_t)(cuts[k] - at),
			       "send: %s", strerror(errno));
			EXPECT(sent_taken(fd), "the producer did not read up to %zu", cuts[k]);
			at = cuts[k];
		}
	}
	reply = tp_out_new(dup(fd));
	shutdown(fd, SHUT_WR);
	EXPECT(tp_until(reply, NULL, DEADLINE_MS), "the producer did not close the connection");
	snprintf(want, sizeof(want), "ERR %" PRIu32 ":%zu: record longer than max_record:"
	         " '\\x00\\x00\\x04\\x01'\n", refused_no, refused_at + 1);
	EXPECT(strstr(tp_str(reply), want), "replies '%s', want '%s'", tp_str(reply), want);
	snprintf(want, sizeof(want), "OK published=%" PRIu32 " dropped=0 rejected=1 last_seq=%" PRIu32
	         "\n", nrec, nrec - 1);
	EXPECT(strstr(tp_str(reply), want), "replies '%s', want '%s'", tp_str(reply), want);
	tp_out_free(reply);
	close(fd);

	EXPECT(mmapq_open(&cp, &q, &err) == 0, "open as a consumer: %s", err.msg);
	EXPECT(mmapq_available(q, 0, &avail) == 0 && avail == nrec, "available %" PRIu32 ", want %"
	       PRIu32, avail, nrec);
	for (uint32_t i = 0; i < avail; i++) {
		struct mmapq_record rec;
		uint32_t len;

		memcpy(&len, recs.p + off, sizeof(len));
		off += sizeof(len);
		EXPECT(mmapq_get(q, i, &rec) == 0 && rec.len == len &&
		       (!len || !memcmp(rec.data, recs.p + off, len)),
		       "record %" PRIu32 " (%" PRIu32 " bytes, want %" PRIu32 ") differs", i, rec.len, len);
		off += len;
	}
	mmapq_close(q);
	EXPECT(stop(&p) == 0, "producer did not exit 0");
	tp_kid_close(&p);
	free(wire.p);
	free(recs.p);
	free(cfg);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"send_args", test_send_args},
		{"send_stdin", test_send_stdin},
		{"four_clients", test_four_clients},
		{"rejected", test_rejected},
		{"many_rejected", test_many_rejected},
		{"no_producer", test_no_producer},
		{"drop_full", test_drop_full},
		{"block_full", test_block_full},
		{"sigterm_blocked", test_sigterm_blocked},
		{"stale_after_kill", test_stale_after_kill},
		{"generate", test_generate},
		{"generate_rate", test_generate_rate},
		{"idle_clients", test_idle_clients},
		{"client_timeout", test_client_timeout},
		{"stream_acks", test_stream_acks},
		{"accept_exhausted", test_accept_exhausted},
		{"send_timeout", test_send_timeout},
		{"send_eacces", test_send_eacces},
		{"binary_client", test_binary_client},
	};

	signal(SIGPIPE, SIG_IGN); /* a dead child's stdin is an EPIPE error, not our death */
	atexit(tp_cleanup); /* a case that fails leaves no daemon behind */
	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
