/* SPDX-License-Identifier: MIT */
/*
 * test_output -- the consumer at the edges of its output.
 *
 *   partial_last_line   a file output ending in "29" (a write cut short):
 *                       the fragment is cut, not completed into a record
 *   journal_absent      output = journal with no journald: exit 74, nothing
 *                       acknowledged
 *   journal_gone        journald's socket goes away mid-stream (a private
 *                       mount namespace with a stand-in socket at the
 *                       journal's path): exit 74, the records not sent stay
 *   refused_consumer    a second consumer, refused the role (69), leaves
 *                       the live consumer's output file exactly as it is
 *   bounded_batch       a backlog of 128 x 1 MiB records under a 48 MiB
 *                       data limit: consumed in bounded batches (not the
 *                       whole backlog buffered, and a failure)
 *   watchdog_long_batch a 2 MB backlog to a slow reader: WATCHDOG=1 keeps
 *                       coming while the batch is written
 *   file_size_limit     RLIMIT_FSIZE on the output file: exit 74 with "File
 *                       too large" (not killed by SIGXFSZ), nothing lost: a
 *                       consumer without the limit completes the file
 *   symlink_output      output = file:LINK: refused (73) like a symbolic
 *                       link at the queue path, the target untouched
 *   journal_identity    records carry SYSLOG_IDENTIFIER=mmapq-records (or
 *                       [consumer] journal_identifier), not the daemon's
 *   journal_namespace   journal_namespace = NAME: records to that
 *                       namespace's journald only; without it, 74
 *   seq_prefix          "SEQ<TAB>record" lines; a batch replayed after a
 *                       kill between write and release has the same
 *                       prefixes, so a reader can drop the repeats
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mmapq.h"
#include "testutil.h"

#define EXIT_MS 20000
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static char *dir, *qpath, *cfg;

#define EXPECT(cond, ...) TU_EXPECT(qpath, cond, __VA_ARGS__)

/* A scratch directory, a queue and a config: "[queue] path" and then the
 * text given (printf-style: it may name files in dir). */
static void setup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void setup(const char *fmt, ...)
{
	va_list ap;
	char *extra, *text;

	if (!dir)
		dir = tu_mkdtemp("output");
	free(qpath); /* a case may set up more than once */
	free(cfg);
	qpath = tu_path(dir, "queue");
	cfg = tu_path(dir, "mmapq.ini");
	va_start(ap, fmt);
	if (vasprintf(&extra, fmt, ap) < 0)
		exit(99);
	va_end(ap);
	text = tu_xasprintf("[queue]\npath = %s\n%s", qpath, extra);
	tu_write_file(cfg, text, strlen(text));
	free(text);
	free(extra);
}

struct run {
	pid_t pid;
	int out, err; /* read ends, or -1 */
};

/* prog --config cfg [args...], stdin from `input` (NULL: empty), stdout
 * and stderr to pipes; limit (RLIMIT_...) if resource >= 0. */
static struct run start(const char *input, int resource, unsigned long long limit,
                        char *const env[], const char *prog, ...)
{
	struct tu_child c = TU_CHILD_INIT;
	int in[2], out[2], err[2];
	char *argv[16];
	int argc = 0;
	struct run r;
	va_list ap;

	argv[argc++] = tu_bin(prog);
	argv[argc++] = "--config";
	argv[argc++] = cfg;
	va_start(ap, prog);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	EXPECT(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0, "pipe2");
	c.stdio[0] = in[0];
	c.stdio[1] = out[1];
	c.stdio[2] = err[1];
	c.rlimit_resource = resource;
	c.rlimit = limit;
	c.env_extra = env;
	r.pid = tu_start(argv, &c);
	close(in[0]);
	close(out[1]);
	close(err[1]);
	if (input)
		tu_write_all(in[1], input, strlen(input));
	close(in[1]);
	r.out = out[0];
	r.err = err[0];
	free(argv[0]);
	return r;
}

/* Exit code, after draining stdout (returned, malloc'd, if want_out) and
 * stderr (into *err if not NULL). */
static int finish(struct run *r, char **out, char **err)
{
	char *o = tu_read_all(r->out, EXIT_MS, NULL), *e = tu_read_all(r->err, EXIT_MS, NULL);
	int st = tu_wait(r->pid, EXIT_MS);

	close(r->out);
	close(r->err);
	if (st == -ETIMEDOUT) {
		tu_dump_queue(qpath, "did not exit");
		tu_kill(r->pid);
	}
	if (out)
		*out = o ? o : calloc(1, 1);
	else
		free(o);
	if (err)
		*err = e ? e : calloc(1, 1);
	else
		free(e);
	return st == -ETIMEDOUT ? -1 : tu_exit_code(st);
}

static void publish(const char *input)
{
	struct run r = start(input, -1, 0, NULL, "mmapq-producer", NULL);
	char *err;
	int code = finish(&r, NULL, &err);

	EXPECT(code == 0, "producer: exit %d, stderr '%s'", code, err);
	free(err);
}


/* ---- cases ---------------------------------------------------------------- */

static void partial_last_line(void)
{
	char *out, *err, *got;

	dir = tu_mkdtemp("output");
	out = tu_path(dir, "out.txt");
	setup("[consumer]\noutput = file:%s\n", out);
	tu_write_file(out, "1\n2\n29", 6); /* "29841" cut short by ENOSPC */
	publish("29841 7\n");
	struct run r = start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", "2", NULL);
	int code = finish(&r, NULL, &err);
	got = tu_read_file(out, NULL);
	EXPECT(code == 0 && strstr(err, "cut 2 bytes of an incomplete last line"),
	       "consumer: exit %d, stderr '%s'", code, err);
	EXPECT(got && !strcmp(got, "1\n2\n29841\n7\n"), "output file is '%s', want 1 2 29841 7", got);
	free(got);
	free(err);
	free(out);
}

static void journal_absent(void)
{
	struct stat st;
	char *err;

	if (stat(JOURNAL_SOCKET, &st) == 0)
		tu_skip("a journald socket exists on this machine");
	setup("[consumer]\noutput = journal\n");
	publish("1 2 3\n");
	struct run r = start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", "3", NULL);
	int code = finish(&r, NULL, &err);
	EXPECT(code == 74 && strstr(err, "cannot connect to " JOURNAL_SOCKET),
	       "output = journal without journald: exit %d (want 74), stderr '%s'", code, err);
	EXPECT(tu_queue_status(qpath).head == 0, "records were acknowledged that went nowhere");
	free(err);
}

/*
 * journald goes away while the consumer sends: a private mount namespace
 * with a tmpfs on /run holding our own datagram socket at the journal's
 * path, which takes ten entries and is then closed.  The consumer must stop
 * with 74 and keep in the queue what it could not send.
 */
static void journal_gone(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[65536], *err;
	int fd, got = 0, rcv = 4096;

	setup("capacity = 32768\n[consumer]\noutput = journal\n");
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") < 0)
		tu_skip("no private mount namespace: %s", strerror(errno));
	EXPECT(mkdir("/run/systemd", 0755) == 0 && mkdir("/run/systemd/journal", 0755) == 0, "mkdir");
	strcpy(sa.sun_path, JOURNAL_SOCKET);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	EXPECT(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind: %s", strerror(errno));
	char *many = malloc(20000 * 6);
	size_t len = 0;
	for (int i = 0; i < 20000; i++)
		len += (size_t)sprintf(many + len, "%d\n", i);
	publish(many);
	struct run r = start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", "20000", NULL);
	while (got < 10) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		EXPECT(poll(&pf, 1, EXIT_MS) == 1, "no journal entry came");
		ssize_t k = recv(fd, buf, sizeof(buf) - 1, 0);
		EXPECT(k > 0, "recv");
		buf[k] = '\0';
		EXPECT(strstr(buf, "MESSAGE=") && strstr(buf, "MMAPQ_SEQ="), "entry '%s'", buf);
		got++;
	}
	close(fd); /* journald is gone */
	unlink(JOURNAL_SOCKET);
	int code = finish(&r, NULL, &err);
	struct mmapq_status st = tu_queue_status(qpath);
	EXPECT(code == 74 && strstr(err, "journal"), "consumer after journald left: exit %d (want 74),"
	       " stderr '%s'", code, err);
	EXPECT(st.head >= 10 && st.head < 20000, "%" PRIu64 " of 20000 acknowledged (at least the 10"
	       " received, not those never sent)", st.head);
	free(many);
	free(err);
}

/*
 * A stand-in for journald in a private mount namespace: a datagram socket
 * at path (JOURNAL_SOCKET or a namespace's), made on a fresh tmpfs /run.
 * Skips without a private mount namespace.
 */
static int fake_journal(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char *d = strdup(path);
	int fd;

	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") < 0)
		tu_skip("no private mount namespace: %s", strerror(errno));
	EXPECT(d && mkdir("/run/systemd", 0755) == 0 && mkdir(dirname(d), 0755) == 0, "mkdir");
	free(d);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	EXPECT(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind %s: %s", path,
	       strerror(errno));
	return fd;
}

/* The next entry at fd, as text (fields "NAME=value\n"). */
static char *journal_entry(int fd)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	char buf[65536];
	ssize_t k;

	EXPECT(poll(&pf, 1, EXIT_MS) == 1, "no journal entry came");
	k = recv(fd, buf, sizeof(buf) - 1, 0);
	EXPECT(k > 0, "recv: %s", strerror(errno));
	buf[k] = '\0';
	return strdup(buf);
}

/* Records go to the journal under their own SYSLOG_IDENTIFIER (default
 * mmapq-records, [consumer] journal_identifier), apart from the daemon's
 * own log lines (SYSLOG_IDENTIFIER=mmapq-consumer): `journalctl -t`
 * selects either. */
static void journal_identity(void)
{
	static const char *const ident[] = {NULL, "audit-records"};
	int fd = fake_journal(JOURNAL_SOCKET);

	for (int i = 0; i < 2; i++) {
		char *err, *want;

		setup("[consumer]\noutput = journal\n%s%s\n", ident[i] ? "journal_identifier = " : "",
		      ident[i] ? ident[i] : "");
		publish(i ? "4 5 6\n" : "1 2 3\n");
		struct run r = start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", "3", NULL);
		want = tu_xasprintf("\nSYSLOG_IDENTIFIER=%s\n", ident[i] ? ident[i] : "mmapq-records");
		for (int k = 0; k < 3; k++) {
			char *e = journal_entry(fd), *msg = tu_xasprintf("MESSAGE=%d\n", 3 * i + k + 1);
			EXPECT(strstr(e, msg) == e && strstr(e, want) && strstr(e, "\nMMAPQ_SEQ=") &&
			       !strstr(e, "SYSLOG_IDENTIFIER=mmapq-consumer"),
			       "record %d: entry '%s', want %s and%s", 3 * i + k + 1, e, msg, want);
			free(msg);
			free(e);
		}
		int code = finish(&r, NULL, &err);
		EXPECT(code == 0, "consumer: exit %d, stderr '%s'", code, err);
		free(want);
		free(err);
	}
	close(fd);
}

/* [consumer] journal_namespace = NAME: records go to that journal
 * namespace's journald (its own files, size limits and retention), nothing
 * to the default journal; without that journald, exit 74 naming it. */
static void journal_namespace(void)
{
	char *err;
	int fd = fake_journal("/run/systemd/journal.mmapq-records/socket");
	struct stat st;

	EXPECT(stat(JOURNAL_SOCKET, &st) < 0, "a default journal socket in the private /run");
	setup("[consumer]\noutput = journal\njournal_namespace = mmapq-records\n");
	publish("7 8\n");
	struct run r = start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", "2", NULL);
	for (int k = 0; k < 2; k++) {
		char *e = journal_entry(fd), *msg = tu_xasprintf("MESSAGE=%d\n", 7 + k);
		EXPECT(strstr(e, msg) == e && strstr(e, "\nSYSLOG_IDENTIFIER=mmapq-records\n"),
		       "record %d in the namespace: entry '%s'", 7 + k, e);
		free(msg);
		free(e);
	}
	int code = finish(&r, NULL, &err);
	EXPECT(code == 0, "consumer: exit %d, stderr '%s'", code, err);
	free(err);

	setup("[consumer]\noutput = journal\njournal_namespace = nosuch\n");
	publish("9\n");
	r = start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", "1", NULL);
	code = finish(&r, NULL, &err);
	EXPECT(code == 74 && strstr(err, "/run/systemd/journal.nosuch/socket") &&
	       strstr(err, "systemd-journald@nosuch"),
	       "a namespace without its journald: exit %d (want 74), stderr '%s'", code, err);
	EXPECT(tu_queue_status(qpath).head == 2, "the record for the missing namespace was acknowledged");
	free(err);
	close(fd);
}

/*
 * [consumer] seq_prefix = yes: "SEQ<TAB>record" on each line, for int and
 * line records.  A consumer killed after writing a batch but before
 * releasing it (fault point release.locked) writes that batch again when
 * restarted; the prefixes let a reader drop the repeats and get every
 * record exactly once, in order.
 */
static void seq_prefix(void)
{
	char *out, *err, *got;

	dir = tu_mkdtemp("output");
	setup("format = line\nrecord_size = 16\n[consumer]\noutput = stdout\nseq_prefix = yes\n");
	publish("alpha\n\nbeta gamma\n");
	struct run r = start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", "3", NULL);
	int code = finish(&r, &got, &err);
	EXPECT(code == 0 && !strcmp(got, "0\talpha\n1\t\n2\tbeta gamma\n"),
	       "line records with seq_prefix: exit %d, output '%s', stderr '%s'", code, got, err);
	free(got);
	free(err);

	tu_need_faults();
	dir = tu_mkdtemp("output");
	out = tu_path(dir, "out.txt");
	setup("[consumer]\noutput = file:%s\nseq_prefix = yes\n", out);
	publish("-5 10 20 30\n");
	char *env[] = {"MMAPQ_FAULT=release.locked@1", NULL};
	r = start(NULL, -1, 0, env, "mmapq-consumer", NULL);
	code = finish(&r, NULL, &err);
	EXPECT(code == -1 || code == 128 + SIGKILL, "the consumer was not killed at release.locked:"
	       " exit %d, stderr '%s'", code, err);
	free(err);
	EXPECT(tu_queue_status(qpath).head == 0, "the killed consumer released records");
	r = start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", "4", NULL);
	code = finish(&r, NULL, &err);
	got = tu_read_file(out, NULL);
	EXPECT(code == 0 && got && !strcmp(got, "0\t-5\n1\t10\n2\t20\n3\t30\n"
	                                        "0\t-5\n1\t10\n2\t20\n3\t30\n"),
	       "after the replay: exit %d, file '%s' (want the batch twice, same prefixes), stderr '%s'",
	       code, got, err);
	/* what a reader keeps: each sequence number once, the first time */
	uint64_t next = 0;
	for (char *line = strtok(got, "\n"); line; line = strtok(NULL, "\n")) {
		uint64_t seq = strtoull(line, NULL, 10);
		if (seq == next)
			next++;
		EXPECT(seq <= next, "sequence %" PRIu64 " came before %" PRIu64, seq, next);
	}
	EXPECT(next == 4, "deduplicated, %" PRIu64 " records (want 4)", next);
	free(got);
	free(err);
	free(out);
}

static void refused_consumer(void)
{
	char *out, *err, *before, *after;

	dir = tu_mkdtemp("output");
	out = tu_path(dir, "out.txt");
	setup("[consumer]\noutput = file:%s\n", out);
	publish("1 2\n");
	struct run a = start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", "3", NULL);
	EXPECT(tu_wait_role(qpath, a.pid, false, EXIT_MS), "the live consumer did not attach");
	for (uint64_t end = tu_now_ms() + EXIT_MS;; sched_yield()) {
		char *now = tu_read_file(out, NULL);
		bool written = now && !strcmp(now, "1\n2\n");
		free(now);
		if (written)
			break;
		EXPECT(tu_now_ms() < end, "the live consumer did not write 1 2");
	}
	/* the live consumer is, as far as anyone can tell, mid-write */
	int fd = open(out, O_WRONLY | O_APPEND);
	EXPECT(fd >= 0 && write(fd, "3", 1) == 1, "append");
	close(fd);
	before = tu_read_file(out, NULL);
	struct run b = start(NULL, -1, 0, NULL, "mmapq-consumer", NULL);
	int code = finish(&b, NULL, &err);
	after = tu_read_file(out, NULL);
	EXPECT(code == 69, "second consumer: exit %d (want 69), stderr '%s'", code, err);
	EXPECT(before && after && !strcmp(before, after),
	       "the refused consumer changed the live one's output: '%s' -> '%s'", before, after);
	kill(a.pid, SIGTERM);
	finish(&a, NULL, NULL);
	free(before);
	free(after);
	free(err);
	free(out);
}

static void bounded_batch(void)
{
#if defined(__SANITIZE_ADDRESS__)
	tu_skip("AddressSanitizer reserves more address space than the data limit allows");
#endif
	enum { N = 128, SIZE = 1024 * 1024 };
	char *line = malloc((size_t)N * (SIZE + 1) + 1), *err;

	setup("capacity = 128\nrecord_size = 1048576\nformat = line\n[consumer]\noutput = file:/dev/null\n");
	EXPECT(line, "malloc");
	for (int i = 0; i < N; i++) {
		memset(line + (size_t)i * (SIZE + 1), 'a' + i % 26, SIZE);
		line[(size_t)i * (SIZE + 1) + SIZE] = '\n';
	}
	line[(size_t)N * (SIZE + 1)] = '\0';
	publish(line);
	free(line);
	EXPECT(tu_queue_status(qpath).tail == N, "backlog not published");
	struct run r = start(NULL, RLIMIT_DATA, 48ull << 20, NULL, "mmapq-consumer", "--count", "128", NULL);
	int code = finish(&r, NULL, &err);
	EXPECT(code == 0 && tu_queue_status(qpath).head == N,
	       "a 128 MiB backlog under a 48 MiB data limit: exit %d, stderr '%s'", code, err);
	free(err);
}

/*
 * The backlog (2,000 lines of 1,000 bytes) goes to a pipe we read at about
 * 400 KB/s: five seconds that one write() of the whole backlog would spend
 * with no WATCHDOG=1 in between.  WatchdogSec is 0.6 s here: the
 * pings must keep coming at least that often while the output moves.
 */
static void watchdog_long_batch(void)
{
	enum { N = 2000, LEN = 1000, RATE = 400 * 1000 };
	char *sock, *env[3], *input = malloc((size_t)N * (LEN + 1) + 1), *err;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint64_t start_ms, last_ping, worst = 0;
	size_t total = 0, want = (size_t)N * (LEN + 1);
	char buf[16384];
	int nfd, pings = 0;

	setup("capacity = 4096\nrecord_size = 1024\nformat = line\n[consumer]\noutput = stdout\n");
	EXPECT(input, "malloc");
	for (int i = 0; i < N; i++) {
		memset(input + (size_t)i * (LEN + 1), 'x', LEN);
		input[(size_t)i * (LEN + 1) + LEN] = '\n';
	}
	input[want] = '\0';
	publish(input);
	free(input);
	sock = tu_path(dir, "notify");
	strcpy(sa.sun_path, sock);
	nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	EXPECT(nfd >= 0 && bind(nfd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "notify socket");
	env[0] = tu_xasprintf("NOTIFY_SOCKET=%s", sock);
	env[1] = "WATCHDOG_USEC=600000";
	env[2] = NULL;
	struct run r = start(NULL, -1, 0, env, "mmapq-consumer", "--count", "2000", NULL);
	start_ms = last_ping = tu_now_ms();
	while (total < want) {
		uint64_t now = tu_now_ms();
		/* read no faster than RATE: when ahead, wait for that moment
		 * or for a notification, whichever comes first */
		uint64_t allowed = (now - start_ms) * RATE / 1000;
		struct pollfd pf[2] = {{.fd = nfd, .events = POLLIN},
		                       {.fd = total < allowed ? r.out : -1, .events = POLLIN}};
		int wait_ms = total < allowed ? 1000 : (int)((total - allowed) * 1000 / RATE) + 1;
		EXPECT(poll(pf, 2, wait_ms) >= 0, "poll");
		now = tu_now_ms();
		if (pf[0].revents) {
			ssize_t k = recv(nfd, buf, sizeof(buf) - 1, 0);
			if (k > 0) {
				buf[k] = '\0';
				if (strstr(buf, "WATCHDOG=1")) {
					if (now - last_ping > worst)
						worst = now - last_ping;
					last_ping = now;
					pings++;
				}
			}
		}
		if (pf[1].revents) {
			size_t n = sizeof(buf) < allowed - total ? sizeof(buf) : allowed - total;
			ssize_t k = read(r.out, buf, n);
			EXPECT(k > 0, "the consumer's output ended after %zu of %zu bytes", total, want);
			total += (size_t)k;
		}
		EXPECT(now - start_ms < 60000, "too slow: %zu of %zu bytes", total, want);
	}
	int code = finish(&r, NULL, &err);
	EXPECT(code == 0, "consumer: exit %d, stderr '%s'", code, err);
	EXPECT(pings >= 10 && worst <= 600,
	       "%d watchdog pings while %zu bytes were written in %" PRIu64 " ms; longest gap %" PRIu64
	       " ms (WatchdogSec 600 ms)", pings, want, tu_now_ms() - start_ms, worst);
	close(nfd);
	free(env[0]);
	free(sock);
	free(err);
}

static void file_size_limit(void)
{
	enum { N = 2000 };
	char *in = malloc(N * 8), *out, *err, *got;
	size_t len = 0;

	dir = tu_mkdtemp("output");
	out = tu_path(dir, "out.txt");
	setup("capacity = 2048\n[consumer]\noutput = file:%s\n", out);
	for (int i = 0; i < N; i++)
		len += (size_t)sprintf(in + len, "%d\n", 100000 + i);
	publish(in);
	struct run r = start(NULL, RLIMIT_FSIZE, 4000, NULL, "mmapq-consumer", "--count", "2000", NULL);
	int code = finish(&r, NULL, &err);
	EXPECT(code == 74 && strstr(err, "File too large") && tu_queue_status(qpath).head < N,
	       "consumer over RLIMIT_FSIZE: exit %d (want 74, not killed by SIGXFSZ), stderr '%s'",
	       code, err);
	free(err);
	/* without the limit: every record, whole, in order (a replayed batch
	 * may repeat what was written before the error) */
	r = start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", "2000", NULL);
	code = finish(&r, NULL, &err);
	EXPECT(code == 0, "second consumer: exit %d, stderr '%s'", code, err);
	got = tu_read_file(out, NULL);
	EXPECT(got, "no output");
	long next = 100000, prev = 99999;
	for (char *line = strtok(got, "\n"); line; line = strtok(NULL, "\n")) {
		char *end;
		long v = strtol(line, &end, 10);
		/* a new record is the next one; a repeat (the replayed batch)
		 * is one written before, restarting at most at the batch's
		 * start and going on in order */
		EXPECT(!*end && v >= 100000 && v <= next && (v == prev + 1 || v <= prev),
		       "line '%s' after %ld (next new one %ld)", line, prev, next);
		if (v == next)
			next++;
		prev = v;
	}
	EXPECT(next == 100000 + N, "records up to %ld arrived, want all %d", next - 1, N);
	free(got);
	free(err);
	free(out);
	free(in);
}

static void symlink_output(void)
{
	char *target, *link, *err, *got;

	dir = tu_mkdtemp("output");
	target = tu_path(dir, "real.txt");
	link = tu_path(dir, "link.txt");
	setup("[consumer]\noutput = file:%s\n", link);
	tu_write_file(target, "keep\n", 5);
	EXPECT(symlink(target, link) == 0, "symlink");
	publish("1\n");
	struct run r = start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", "1", NULL);
	int code = finish(&r, NULL, &err);
	got = tu_read_file(target, NULL);
	EXPECT(code == 73 && strstr(err, "is a symbolic link; refusing to follow it"),
	       "output = file:SYMLINK: exit %d (want 73), stderr '%s'", code, err);
	EXPECT(got && !strcmp(got, "keep\n") && tu_queue_status(qpath).head == 0, "the link's target was written");
	free(got);
	free(err);
	free(target);
	free(link);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"partial_last_line", partial_last_line},
		{"journal_absent", journal_absent},
		{"journal_gone", journal_gone},
		{"refused_consumer", refused_consumer},
		{"bounded_batch", bounded_batch},
		{"watchdog_long_batch", watchdog_long_batch},
		{"file_size_limit", file_size_limit},
		{"symlink_output", symlink_output},
		{"journal_identity", journal_identity},
		{"journal_namespace", journal_namespace},
		{"seq_prefix", seq_prefix},
	};
	return tu_main_cases(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
