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
 *   bounded_batch       binary records of max_record = 64 MiB (a 192 MiB
 *                       backlog) to stdout under a 48 MiB data limit: every
 *                       one whole, byte for byte, written from the mapping
 *                       (no buffer of max_record, not the backlog buffered)
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
 *                       prefixes, so a reader can drop the repeats;
 *                       refused (78) with format binary
 *   binary_stdout       binary records (all 256 byte values, each alone,
 *                       zero-length, every padding, max_record) to stdout:
 *                       each a 4-byte big-endian length and its bytes,
 *                       byte for byte
 *   binary_file         the same to file:, after an incomplete last record
 *                       (cut); a file that is not binary records refused
 *                       (74), untouched
 *   binary_journal      the same to the journal (a stand-in journald that
 *                       reads the native protocol, memfds too): MESSAGE=
 *                       the record's bytes, records of 24 MiB whole
 *   binary_chain        mmapq-consumer | mmapq-producer: the records in a
 *                       second queue, byte for byte
 *   int_batches         300,000 integers of every length and the limits to
 *                       a file, with and without seq_prefix, byte for byte
 *   line_pieces         lines of lengths around the one from which a
 *                       payload is written from the mapping, thousands,
 *                       with and without seq_prefix: byte for byte
 *   long_lines          lines of 64 KiB with the shipped size and
 *                       max_record, whole to stdout, a file and the journal
 *                       (three named consumers of one queue)
 *   damaged_record      a payload byte of record 5 flipped in the file: 0-4
 *                       written, record 5 never, exit 65 naming it and
 *                       `mmapqctl repair`, the cursor at 5
 *   sync_file           sync = batch, output on crashfs cut at a random
 *                       instant mid-stream: the file holds every record up
 *                       to the consumer's cursor; with sync = never it does
 *                       not (what the check would catch)
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
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmapq.h"
#include "testrecords.h"
#include "testutil.h"
#ifdef HAVE_CRASHFS
#include "crashfs.h"
#endif

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

/* Exit code, after draining stdout (into *out, malloc'd, its length in
 * *len if not NULL, if out is not NULL) and stderr (into *err if not NULL). */
static int finish_out(struct run *r, char **out, size_t *len, char **err)
{
	size_t n = 0;
	char *o = tu_read_all(r->out, EXIT_MS, &n), *e = tu_read_all(r->err, EXIT_MS, NULL);
	int st = tu_wait(r->pid, EXIT_MS);

	close(r->out);
	close(r->err);
	if (st == -ETIMEDOUT) {
		tu_dump_queue(qpath, "did not exit");
		tu_kill(r->pid);
	}
	if (len)
		*len = o ? n : 0;
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

static int finish(struct run *r, char **out, char **err)
{
	return finish_out(r, out, NULL, err);
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
	EXPECT(code == 0 && strstr(err, "cut 2 bytes of an incomplete last record"),
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

	setup("size = 512K\n[consumer]\noutput = journal\n");
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
 * releasing it (fault point consumer.written) writes that batch again when
 * restarted; the prefixes let a reader drop the repeats and get every
 * record exactly once, in order.
 */
static void seq_prefix(void)
{
	char *out, *err, *got;

	dir = tu_mkdtemp("output");
	setup("format = line\nsize = 64K\nmax_record = 1K\n[consumer]\noutput = stdout\n"
	      "seq_prefix = yes\n");
	publish("alpha\n\nbeta gamma\n");
	struct run r = start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", "3", NULL);
	int code = finish(&r, &got, &err);
	EXPECT(code == 0 && !strcmp(got, "0\talpha\n1\t\n2\tbeta gamma\n"),
	       "line records with seq_prefix: exit %d, output '%s', stderr '%s'", code, got, err);
	free(got);
	free(err);

	/* binary records are framed by their length: no place for a prefix */
	setup("format = binary\nsize = 64K\nmax_record = 1K\n[consumer]\noutput = stdout\n"
	      "seq_prefix = yes\n");
	r = start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", "1", NULL);
	code = finish(&r, NULL, &err);
	EXPECT(code == 78 && strstr(err, "seq_prefix = yes: format = binary"),
	       "seq_prefix with format binary: exit %d (want 78), stderr '%s'", code, err);
	free(err);

	tu_need_faults();
	dir = tu_mkdtemp("output");
	out = tu_path(dir, "out.txt");
	setup("[consumer]\noutput = file:%s\nseq_prefix = yes\n", out);
	publish("-5 10 20 30\n");
	char *env[] = {"MMAPQ_FAULT=consumer.written@1", NULL};
	r = start(NULL, -1, 0, env, "mmapq-consumer", NULL);
	code = finish(&r, NULL, &err);
	EXPECT(code == -1 || code == 128 + SIGKILL, "the consumer was not killed at consumer.written:"
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

/*
 * Records of max_record = 64 MiB, the largest there is: a backlog of three
 * of them and the small records of tr_binary_set (192 MiB) to stdout under
 * a 48 MiB data limit.  The output writes such a record from the queue's
 * mapping: it neither allocates max_record for a batch nor buffers the
 * backlog, and every record comes out whole.
 */
static void bounded_batch(void)
{
#if defined(__SANITIZE_ADDRESS__)
	tu_skip("AddressSanitizer reserves more address space than the data limit allows");
#endif
	struct tr_set set = tr_binary_set(MMAPQ_MAX_RECORD_MAX);
	char *out, *err, *why, count[16];
	size_t len;

	setup("size = 512M\nmax_record = 64M\nformat = binary\n[consumer]\noutput = stdout\n");
	tr_put(qpath, UINT64_C(512) << 20, MMAPQ_MAX_RECORD_MAX, MMAPQ_FORMAT_BINARY, &set);
	snprintf(count, sizeof(count), "%" PRIu32, set.n);
	struct run r = start(NULL, RLIMIT_DATA, 48ull << 20, NULL, "mmapq-consumer", "--count", count,
	                     NULL);
	int code = finish_out(&r, &out, &len, &err);
	EXPECT(code == 0 && tu_queue_status(qpath).head == set.n,
	       "a backlog of 64 MiB records under a 48 MiB data limit: exit %d, stderr '%s'", code, err);
	why = tr_check_binary((const uint8_t *)out, len, &set);
	EXPECT(!why, "stdout (%zu bytes) is not the records: %s", len, why);
	free(out);
	free(err);
	tr_free(&set);
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

	setup("size = 4M\nmax_record = 1K\nformat = line\n[consumer]\noutput = stdout\n");
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
	setup("size = 64K\nmax_record = 1K\n[consumer]\noutput = file:%s\n", out);
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

/* ---- records of any bytes and length ------------------------------------------ */

#define KIB 1024u
#define MIB (1024u * 1024u)

/* The consumer (name NULL: the default one) to the end of n records: its
 * exit code, stdout (malloc'd, its length in *len) and stderr. */
static int consume_n(const char *name, uint32_t n, char **out, size_t *len, char **err)
{
	char count[16];
	struct run r;

	snprintf(count, sizeof(count), "%" PRIu32, n);
	r = name ? start(NULL, -1, 0, NULL, "mmapq-consumer", "--name", name, "--count", count, NULL)
	         : start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", count, NULL);
	return finish_out(&r, out, len, err);
}

static void binary_stdout(void)
{
	struct tr_set set = tr_binary_set(64 * KIB);
	char *out, *err, *why;
	size_t len;

	setup("size = 1M\nformat = binary\n[consumer]\noutput = stdout\n");
	tr_put(qpath, MIB, 64 * KIB, MMAPQ_FORMAT_BINARY, &set);
	int code = consume_n(NULL, set.n, &out, &len, &err);
	EXPECT(code == 0, "consumer: exit %d, stderr '%s'", code, err);
	why = tr_check_binary((const uint8_t *)out, len, &set);
	EXPECT(!why, "stdout (%zu bytes) is not the %" PRIu32 " records: %s", len, set.n, why);
	EXPECT(tu_queue_status(qpath).head == set.n, "not every record released");
	free(out);
	free(err);
	tr_free(&set);
}

static void binary_file(void)
{
	/* what an earlier run left: a whole record "old", then one cut short
	 * (its length, 100, and 10 of its bytes) */
	static const uint8_t before[] = {0, 0, 0, 3, 'o', 'l', 'd', 0, 0, 0, 100,
	                                 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
	struct tr_set set = tr_binary_set(64 * KIB);
	char *out, *err, *why, *text;
	size_t len;

	dir = tu_mkdtemp("output");
	out = tu_path(dir, "out.bin");
	setup("size = 1M\nformat = binary\n[consumer]\noutput = file:%s\n", out);
	tu_write_file(out, before, sizeof(before));
	tr_put(qpath, MIB, 64 * KIB, MMAPQ_FORMAT_BINARY, &set);
	int code = consume_n(NULL, set.n, NULL, NULL, &err);
	EXPECT(code == 0 && strstr(err, "cut 14 bytes of an incomplete last record"),
	       "consumer: exit %d, stderr '%s'", code, err);
	free(err);
	text = tu_read_file(out, &len);
	EXPECT(text && len >= 7 && !memcmp(text, before, 7), "the whole record before is gone");
	why = tr_check_binary((const uint8_t *)text + 7, len - 7, &set);
	EXPECT(!why, "%s after its first record (%zu bytes) is not the records: %s", out, len - 7, why);
	free(text);

	/* a file of lines is no file of binary records: left alone */
	tu_write_file(out, "1\n2\n", 4);
	setup("size = 1M\nformat = binary\n[consumer]\noutput = file:%s\n", out);
	code = consume_n(NULL, 1, NULL, NULL, &err);
	text = tu_read_file(out, NULL);
	EXPECT(code == 74 && strstr(err, "not a file of binary records"),
	       "a file of lines as the binary output: exit %d (want 74), stderr '%s'", code, err);
	EXPECT(text && !strcmp(text, "1\n2\n"), "the file of lines was changed: '%s'", text);
	free(text);
	free(err);
	free(out);
	tr_free(&set);
}

/* The next journal entry at fd: its bytes, from the datagram or from the
 * memfd it carries (an entry too large for a datagram); *memfd says
 * which.  Static: valid until the next call. */
static const uint8_t *journal_entry_raw(int fd, size_t *len, bool *memfd)
{
	enum { BUF = 32 * MIB };
	static uint8_t *buf;
	union {
		struct cmsghdr h;
		char c[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.c,
	                    .msg_controllen = sizeof(ctl.c)};
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	struct cmsghdr *cm;
	ssize_t k;

	if (!buf && !(buf = malloc(BUF)))
		tu_die("malloc");
	iov = (struct iovec){buf, BUF};
	EXPECT(poll(&pf, 1, EXIT_MS) == 1, "no journal entry came");
	k = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	EXPECT(k >= 0 && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)), "recvmsg: %s",
	       k < 0 ? strerror(errno) : "truncated");
	cm = CMSG_FIRSTHDR(&mh);
	*memfd = cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS;
	if (*memfd) {
		struct stat st;
		int mfd;

		memcpy(&mfd, CMSG_DATA(cm), sizeof(mfd));
		EXPECT(k == 0 && fstat(mfd, &st) == 0 && st.st_size <= BUF, "a memfd of %lld bytes"
		       " with %zd bytes of datagram", (long long)st.st_size, k);
		k = pread(mfd, buf, (size_t)st.st_size, 0);
		EXPECT(k == st.st_size, "read the memfd: %s", strerror(errno));
		close(mfd);
	}
	*len = (size_t)k;
	return buf;
}

/* Field name of an entry in journald's native protocol ("NAME=value\n", or
 * "NAME\n", a 64-bit little-endian length, the value, "\n"): its value and
 * length, NULL if it has none.  A malformed entry fails the test. */
static const uint8_t *journal_field(const uint8_t *e, size_t len, const char *name, size_t *vlen)
{
	size_t off = 0, nl = strlen(name);

	while (off < len) {
		const uint8_t *p = e + off, *eq = memchr(p, '=', len - off), *lf = memchr(p, '\n', len - off);
		const uint8_t *v;
		size_t n;

		EXPECT(lf, "an entry's field without a line end at byte %zu", off);
		if (eq && eq < lf) {
			v = eq + 1;
			n = (size_t)(lf - v);
			off = (size_t)(lf - e) + 1;
		} else {
			uint64_t le;

			EXPECT(len - (size_t)(lf + 1 - e) >= 8, "an entry's binary field without its length");
			memcpy(&le, lf + 1, 8);
			n = (size_t)le64toh(le);
			v = lf + 9;
			EXPECT(n <= len - (size_t)(v - e) && v[n] == '\n', "an entry's binary field of %zu"
			       " bytes that is not followed by a line end", n);
			off = (size_t)(v - e) + n + 1;
		}
		if ((size_t)((eq && eq < lf ? eq : lf) - p) == nl && !memcmp(p, name, nl)) {
			*vlen = n;
			return v;
		}
	}
	return NULL;
}

/* The next n entries at fd are the records of set from index first (their
 * MESSAGE= and MMAPQ_SEQ= first + i); how many came in a memfd. */
static unsigned expect_journal(int fd, const struct tr_set *set)
{
	unsigned memfds = 0;

	for (uint32_t i = 0; i < set->n; i++) {
		size_t len, mlen, slen;
		bool memfd;
		const uint8_t *e = journal_entry_raw(fd, &len, &memfd);
		const uint8_t *msg = journal_field(e, len, "MESSAGE", &mlen);
		const uint8_t *seq = journal_field(e, len, "MMAPQ_SEQ", &slen);
		char want[24], *why;

		memfds += memfd;
		snprintf(want, sizeof(want), "%" PRIu32, i);
		EXPECT(msg && seq && slen == strlen(want) && !memcmp(seq, want, slen),
		       "entry %" PRIu32 ": MESSAGE %s, MMAPQ_SEQ '%.*s'", i, msg ? "there" : "missing",
		       seq ? (int)slen : 0, seq ? (const char *)seq : "");
		why = tr_differs(set, i, msg, mlen);
		EXPECT(!why, "entry %" PRIu32 ": MESSAGE is not the record: %s", i, why);
	}
	return memfds;
}

/* Binary records to the journal, byte for byte; those of 24 MiB are larger
 * than a datagram may be (8 MiB of send buffer) and go as a memfd. */
static void binary_journal(void)
{
	struct tr_set set = tr_binary_set(24 * MIB);
	int fd = fake_journal(JOURNAL_SOCKET);
	char count[16], *err;
	unsigned memfds;

	setup("size = 128M\nmax_record = 24M\nformat = binary\n[consumer]\noutput = journal\n");
	tr_put(qpath, 128 * MIB, 24 * MIB, MMAPQ_FORMAT_BINARY, &set);
	snprintf(count, sizeof(count), "%" PRIu32, set.n);
	struct run r = start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", count, NULL);
	memfds = expect_journal(fd, &set);
	int code = finish(&r, NULL, &err);
	EXPECT(code == 0, "consumer: exit %d, stderr '%s'", code, err);
	EXPECT(memfds >= 3, "%u entries came in a memfd, want the three of 24 MiB at least", memfds);
	free(err);
	close(fd);
	tr_free(&set);
}

/* mmapq-consumer | mmapq-producer: what the one writes the other reads,
 * into a second queue, every record as it was. */
static void binary_chain(void)
{
	struct tr_set set = tr_binary_set(64 * KIB);
	char *cfg2, *q2, count[16];
	char *cargv[] = {tu_bin("mmapq-consumer"), "--config", NULL, "--count", count, NULL};
	char *pargv[] = {tu_bin("mmapq-producer"), "--config", NULL, NULL};
	struct tu_child cc = TU_CHILD_INIT, pc = TU_CHILD_INIT;
	struct mmapq_params p = {.role = MMAPQ_ROLE_CONSUMER};
	struct mmapq_error merr;
	struct mmapq *q;
	uint32_t avail = 0;
	int pipefd[2], st;
	pid_t cpid, ppid;

	setup("size = 1M\nformat = binary\n[consumer]\noutput = stdout\n");
	cargv[2] = cfg;
	q2 = tu_path(dir, "queue2");
	p.path = q2;
	cfg2 = tu_xasprintf("[queue]\npath = %s\nsize = 1M\nformat = binary\n", q2);
	pargv[2] = tu_write_in(dir, "second.ini", cfg2);
	tr_put(qpath, MIB, 64 * KIB, MMAPQ_FORMAT_BINARY, &set);
	snprintf(count, sizeof(count), "%" PRIu32, set.n);
	tu_pipe(pipefd);
	cc.stdio[1] = pipefd[1];
	pc.stdio[0] = pipefd[0];
	cpid = tu_start(cargv, &cc);
	ppid = tu_start(pargv, &pc);
	close(pipefd[0]);
	close(pipefd[1]);
	st = tu_wait(cpid, EXIT_MS);
	EXPECT(st >= 0 && tu_exit_code(st) == 0, "mmapq-consumer: status %d", st);
	st = tu_wait(ppid, EXIT_MS);
	EXPECT(st >= 0 && tu_exit_code(st) == 0, "mmapq-producer: status %d", st);
	EXPECT(mmapq_open(&p, &q, &merr) == 0, "%s: %s", q2, merr.msg);
	EXPECT(mmapq_available(q, 0, &avail) == 0 && avail == set.n,
	       "the second queue holds %" PRIu32 " records, not %" PRIu32, avail, set.n);
	for (uint32_t i = 0; i < set.n; i++) {
		struct mmapq_record rec;
		char *why;

		EXPECT(mmapq_get(q, i, &rec) == 0, "get %" PRIu32, i);
		why = tr_differs(&set, i, rec.data, rec.len);
		EXPECT(!why, "the second queue: %s", why);
	}
	mmapq_close(q);
	free(cargv[0]);
	free(pargv[0]);
	free(pargv[2]);
	free(cfg2);
	free(q2);
	tr_free(&set);
}

/*
 * Lines of lengths on both sides of the size from which the output writes
 * a payload from the queue's mapping rather than copying it (empty, short,
 * 255, 256, 257, several KiB), thousands of them: batches of many pieces,
 * writes of the most pieces a call takes, chunks that end where a record
 * does.  To a file with seq_prefix (the line end and the next prefix one
 * piece) and to stdout without: byte for byte what was put.
 */
static void line_pieces(void)
{
	static const size_t lens[] = {0, 1, 7, 255, 256, 257, 300, 1000, 4095, 4096, 5000, 63};
	const size_t nl = sizeof(lens) / sizeof(lens[0]), n = 400 * nl;
	struct sbuf { char *p; size_t len; } in = {0}, want = {0};
	char *out, *got, *err, count[16];
	size_t len;
	FILE *fi = open_memstream(&in.p, &in.len), *fw = open_memstream(&want.p, &want.len);

	EXPECT(fi && fw, "open_memstream");
	for (size_t i = 0; i < n; i++) {
		size_t l = lens[i % nl];

		fprintf(fw, "%zu\t", i);
		for (size_t k = 0; k < l; k++) {
			fputc('a' + (int)((i + k) % 26), fi);
			fputc('a' + (int)((i + k) % 26), fw);
		}
		fputc('\n', fi);
		fputc('\n', fw);
	}
	fclose(fi);
	fclose(fw);
	snprintf(count, sizeof(count), "%zu", n);
	dir = tu_mkdtemp("output");
	out = tu_path(dir, "out.txt");
	setup("format = line\nsize = 16M\nmax_record = 8K\n[consumer]\noutput = file:%s\n"
	      "seq_prefix = yes\n", out);
	publish(in.p);
	struct run r = start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", count, NULL);
	int code = finish(&r, NULL, &err);
	got = tu_read_file(out, &len);
	EXPECT(code == 0 && got && len == want.len && !memcmp(got, want.p, len),
	       "lines with seq_prefix to a file: exit %d, %zu bytes (want %zu), stderr '%s'", code,
	       got ? len : 0, want.len, err);
	free(got);
	free(err);

	setup("format = line\nsize = 16M\nmax_record = 8K\n[consumer]\noutput = stdout\n");
	unlink(qpath);
	publish(in.p);
	r = start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", count, NULL);
	code = finish_out(&r, &got, &len, &err);
	EXPECT(code == 0 && got && len == in.len && !memcmp(got, in.p, len),
	       "lines to stdout: exit %d, %zu bytes (want %zu), stderr '%s'", code, got ? len : 0,
	       in.len, err);
	free(got);
	free(err);
	free(out);
	free(in.p);
	free(want.p);
}

/*
 * Integers of every length and sign and the limits, 300,000 of them (3 MB
 * of output: batches of 1 MiB, each written in chunks that end where a
 * record does), to a file: without seq_prefix the output's own loop for
 * int records, with it the general one; byte for byte what was put.
 */
static void int_batches(void)
{
	const size_t n = 300000;
	struct sbuf { char *p; size_t len; } in = {0}, want = {0};
	char *out, *got, *err, count[16];
	size_t len;
	uint64_t x = 88172645463325252ull;
	FILE *fi = open_memstream(&in.p, &in.len), *fw = open_memstream(&want.p, &want.len);

	EXPECT(fi && fw, "open_memstream");
	for (size_t i = 0; i < n; i++) {
		int64_t v;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (i % 1000 == 0)
			v = i % 3000 == 0 ? INT64_MIN : i % 3000 == 1000 ? INT64_MAX : 0;
		else
			v = (int64_t)(x >> (x % 64)) * (x & 1 ? -1 : 1);
		fprintf(fi, "%" PRId64 "\n", v);
		fprintf(fw, "%zu\t%" PRId64 "\n", i, v);
	}
	fclose(fi);
	fclose(fw);
	snprintf(count, sizeof(count), "%zu", n);
	dir = tu_mkdtemp("output");
	out = tu_path(dir, "out.txt");
	for (int prefix = 0; prefix < 2; prefix++) {
		const struct sbuf *w = prefix ? &want : &in;

		setup("size = 16M\n[consumer]\noutput = file:%s\nseq_prefix = %s\n", out,
		      prefix ? "yes" : "no");
		unlink(qpath);
		unlink(out);
		publish(in.p);
		struct run r = start(NULL, -1, 0, NULL, "mmapq-consumer", "--count", count, NULL);
		int code = finish(&r, NULL, &err);
		got = tu_read_file(out, &len);
		EXPECT(code == 0 && got && len == w->len && !memcmp(got, w->p, len),
		       "integers%s to a file: exit %d, %zu bytes (want %zu), stderr '%s'",
		       prefix ? " with seq_prefix" : "", code, got ? len : 0, w->len, err);
		free(got);
		free(err);
	}
	free(out);
	free(in.p);
	free(want.p);
}

/* Lines of 64 KiB with the shipped size (4M) and max_record (64K), whole
 * to each output: three named consumers of one queue, registered before
 * any record is consumed. */
static void long_lines(void)
{
	static const char *const names[] = {"tostdout", "tofile", "tojournal"};
	struct tr_set set = tr_lines(24, 64 * KIB);
	char *file = NULL, *out, *err, *why;
	int fd;
	size_t len;

	dir = tu_mkdtemp("output");
	file = tu_path(dir, "lines.txt");
	fd = fake_journal(JOURNAL_SOCKET);
	/* the one line that max_record allows less one byte, and none */
	tr_add_random(&set, 64 * KIB - 1, true);
	tr_add(&set, 0);
	setup("format = line\n[consumer]\noutput = stdout\n[consumer:tofile]\noutput = file:%s\n"
	      "[consumer:tojournal]\noutput = journal\n", file);
	tr_put(qpath, 4 * MIB, 64 * KIB, MMAPQ_FORMAT_LINE, &set);
	for (int i = 0; i < 3; i++) {
		struct mmapq_params p = {.path = qpath, .role = MMAPQ_ROLE_CONSUMER, .consumer = names[i]};
		struct mmapq_error merr;
		struct mmapq *q;

		EXPECT(mmapq_open(&p, &q, &merr) == 0, "register %s: %s", names[i], merr.msg);
		mmapq_close(q);
	}
	int code = consume_n("tostdout", set.n, &out, &len, &err);
	EXPECT(code == 0, "consumer to stdout: exit %d, stderr '%s'", code, err);
	why = tr_check_lines(out, len, &set);
	EXPECT(!why, "stdout (%zu bytes): %s", len, why);
	free(out);
	free(err);

	code = consume_n("tofile", set.n, NULL, NULL, &err);
	EXPECT(code == 0, "consumer to a file: exit %d, stderr '%s'", code, err);
	out = tu_read_file(file, &len);
	why = out ? tr_check_lines(out, len, &set) : strdup("no file");
	EXPECT(!why, "%s (%zu bytes): %s", file, len, why);
	free(out);
	free(err);

	char count[16];
	snprintf(count, sizeof(count), "%" PRIu32, set.n);
	struct run r = start(NULL, -1, 0, NULL, "mmapq-consumer", "--name", "tojournal", "--count",
	                     count, NULL);
	(void)expect_journal(fd, &set);
	code = finish(&r, NULL, &err);
	EXPECT(code == 0, "consumer to the journal: exit %d, stderr '%s'", code, err);
	free(err);
	close(fd);
	free(file);
	tr_free(&set);
}

/* A record whose checksum does not hold is never written: the consumer
 * writes those before it, stops at it with 65, names it and the way out,
 * and leaves its cursor there. */
static void damaged_record(void)
{
	struct tr_set set = tr_lines(10, 100);
	struct mmapq_status st;
	uint64_t off = 0;
	char *out, *err, *why;
	size_t len;
	uint8_t b;
	int fd;

	setup("format = line\nsize = 64K\nmax_record = 1K\n[consumer]\noutput = stdout\n");
	tr_put(qpath, 64 * KIB, KIB, MMAPQ_FORMAT_LINE, &set);
	/* record 5's frame: the ring starts after the header, the first frame
	 * at its start (a new queue), each frame after the one before */
	st = tu_queue_status(qpath);
	for (uint32_t i = 0; i < 5; i++)
		off += mmapq_frame_size(set.r[i].len);
	off += st.header_size + 8 + 50; /* past its 8-byte header, into its payload */
	fd = open(qpath, O_RDWR | O_CLOEXEC);
	EXPECT(fd >= 0 && pread(fd, &b, 1, (off_t)off) == 1, "read the queue file");
	EXPECT(b == set.r[5].data[50], "byte %" PRIu64 " of the file is not record 5's byte 50", off);
	b ^= 0x20;
	EXPECT(pwrite(fd, &b, 1, (off_t)off) == 1, "write the queue file: %s", strerror(errno));
	close(fd);

	int code = consume_n(NULL, set.n, &out, &len, &err);
	EXPECT(code == 65 && strstr(err, "record 5 is damaged") && strstr(err, "mmapqctl repair"),
	       "consumer on a damaged record: exit %d (want 65), stderr '%s'", code, err);
	set.n = 5; /* those before it, and nothing else */
	why = tr_check_lines(out, len, &set);
	EXPECT(!why, "stdout: %s", why);
	set.n = 10;
	EXPECT(tu_queue_status(qpath).head == 5, "the cursor is at %" PRIu64 ", not 5",
	       tu_queue_status(qpath).head);
	free(out);
	free(err);
	tr_free(&set);
}

#ifdef HAVE_CRASHFS
/* A producer of the int records 0..n-1 into the queue at path, in batches
 * of 64, blocking while the ring is full: a child; its pid. */
static pid_t int_producer(const char *path, uint64_t n)
{
	pid_t pid = tu_fork();

	if (pid == 0) {
		struct mmapq_params p = {.path = path, .role = MMAPQ_ROLE_PRODUCER};
		struct mmapq *q;
		int64_t v[64];

		if (mmapq_open(&p, &q, NULL) < 0)
			_exit(1);
		for (uint64_t i = 0; i < n;) {
			uint64_t room;
			uint32_t k = n - i < 64 ? (uint32_t)(n - i) : 64;
			int r;

			for (uint32_t j = 0; j < k; j++)
				v[j] = (int64_t)(i + j);
			if (mmapq_reserve(q, 8, mmapq_now_ns() + 1000000000u, &room) < 0)
				continue;
			r = mmapq_put_many(q, v, 8, k);
			if (r > 0)
				i += (uint64_t)r;
			if (mmapq_publish(q) < 0)
				_exit(1);
		}
		mmapq_close(q);
		_exit(0);
	}
	tu_track(pid);
	return pid;
}

/* The records the file at path holds: its lines, which must be 0, 1, ...
 * each whole (the last one too). */
static uint64_t count_lines(const char *path)
{
	size_t len;
	char *text = tu_read_file(path, &len), *p;
	uint64_t n = 0;

	EXPECT(text, "%s: %s", path, strerror(errno));
	EXPECT(!len || text[len - 1] == '\n', "%s ends in the middle of a line", path);
	for (p = text; p < text + len; n++) {
		char *end;
		unsigned long long v = strtoull(p, &end, 10);

		EXPECT(end > p && *end == '\n' && v == n, "%s: line %" PRIu64 " is '%.20s'", path, n, p);
		p = end + 1;
	}
	free(text);
	return n;
}
#endif

/*
 * With sync = batch the file output is fdatasync'ed before each release:
 * cut the power (crashfs) while records stream through a consumer whose
 * output file is there, and the file holds every record up to the cursor
 * the consumer stored.  With sync = never nothing is fdatasync'ed, and the
 * same cut leaves the file behind its cursor: what the check would catch.
 */
static void sync_file(void)
{
#ifndef HAVE_CRASHFS
	tu_skip("built without libfuse3 (tests/deps.sh --test): no crashfs");
#else
	static const char *const modes[] = {"batch", "never"};
	char *mnt;
	int r;

	if (geteuid() != 0)
		tu_skip("needs root (a mount namespace, /dev/fuse)");
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		tu_skip("no private mount namespace: %s", strerror(errno));
	dir = tu_mkdtemp("output");
	mnt = tu_path(dir, "mnt");
	EXPECT(mkdir(mnt, 0755) == 0, "mkdir %s", mnt);
	r = crashfs_start(mnt);
	if (r < 0)
		tu_skip("cannot mount crashfs: %s", strerror(-r));
	for (int m = 0; m < 2; m++) {
		char *out = tu_xasprintf("%s/out-%s.txt", mnt, modes[m]);
		uint64_t head, n, want = 4000 + (uint64_t)(tu_now_ms() % 4000);
		pid_t prod;

		dir = tu_mkdtemp("output"); /* a queue of its own */
		setup("size = 64K\nmax_record = 1K\nsync = %s\n[consumer]\noutput = file:%s\n",
		      modes[m], out);
		struct run c = start(NULL, -1, 0, NULL, "mmapq-consumer", NULL);
		EXPECT(crashfs_mark(c.pid) == 0, "crashfs_mark");
		EXPECT(tu_wait_role(qpath, c.pid, false, EXIT_MS), "the consumer did not attach");
		prod = int_producer(qpath, 200000);
		/* mid-stream: the consumer has released at least want records */
		for (uint64_t end = tu_now_ms() + EXIT_MS; tu_queue_status(qpath).head < want;
		     sched_yield())
			EXPECT(tu_now_ms() < end, "the consumer did not get to %" PRIu64, want);
		EXPECT(crashfs_power_cut(CRASHFS_CLEAN, 0, 0) == 0, "power cut");
		EXPECT(tu_exit_code(tu_wait(c.pid, EXIT_MS)) == 128 + SIGKILL,
		       "the consumer was not killed by the cut");
		close(c.out);
		close(c.err);
		tu_kill(prod);
		tu_untrack(prod);
		EXPECT(crashfs_start(mnt) == 0, "mount crashfs again");
		head = tu_queue_status(qpath).head;
		n = count_lines(out);
		fprintf(stderr, "test_output: sync = %s: cursor %" PRIu64 ", the file holds %" PRIu64
		        " records after the cut\n", modes[m], head, n);
		if (m == 0)
			EXPECT(n >= head, "sync = batch: the file holds %" PRIu64 " records, the consumer's"
			       " cursor is %" PRIu64 ": records released before they were on disk", n, head);
		else
			EXPECT(n < head, "sync = never: the file holds %" PRIu64 " of the %" PRIu64
			       " records released: the cut lost nothing, so it shows nothing", n, head);
		free(out);
	}
	crashfs_stop();
	free(mnt);
#endif
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
		{"binary_stdout", binary_stdout},
		{"binary_file", binary_file},
		{"binary_journal", binary_journal},
		{"binary_chain", binary_chain},
		{"long_lines", long_lines},
		{"line_pieces", line_pieces},
		{"int_batches", int_batches},
		{"damaged_record", damaged_record},
		{"sync_file", sync_file},
	};
	return tu_main_cases(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
