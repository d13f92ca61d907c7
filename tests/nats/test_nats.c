/* SPDX-License-Identifier: MIT */
/*
 * test_nats -- [consumer] output = nats against a real nats-server
 * (Debian's, started here on 127.0.0.1 with free ports and a scratch
 * store; never mocked): producer -> queue -> consumer -> JetStream stream,
 * and the stream read back with a JetStream consumer of the test's own
 * (natsutil.c), which checks every message: exactly the records, once
 * each, in order, Nats-Msg-Id "<queue id>:<seq>" and Mmapq-Seq.
 *
 * Cases (test_nats, label fast):
 *   forward          20,000 records while the producer fills the queue
 *                    (the consumer named nats, --output nats over a file
 *                    that says output = null)
 *   absent_at_start  no server at start: records wait, STATUS/log say so,
 *                    the server comes, every record arrives
 *   no_stream        create_stream = no and no stream: exit 76, the message
 *                    names [nats] stream, nothing released
 *   refused          a record larger than the stream's max_msg_size, no
 *                    permission to publish to the subject: exit 76 each,
 *                    the setting named; the records before the refused
 *                    one, which the stream holds, released (the consumer's
 *                    cursor), no other; a queue whose max_record is more
 *                    than the server's max_payload: 76 at the start, both
 *                    limits named, nothing sent
 *   kill_server      nats-server SIGKILLed mid-stream and restarted
 *   tls              mutual TLS (a CA, server and client certificates made
 *                    with openssl): every record arrives, read back over TLS
 *   tls_refused      tls_ca a CA that did not sign the server's certificate:
 *                    exit 76 naming [nats] tls_ca, nothing released; a
 *                    missing tls_key file: exit 73 naming the key and file
 *   binary           binary records (all 256 byte values, zero-length,
 *                    max_record) are the payloads, byte for byte
 *   long_lines       lines of 64 KiB with the shipped size and max_record,
 *                    whole
 *   max_payload      the server back with a max_payload smaller than
 *                    max_record: 76 at the reconnection, both limits named,
 *                    what was acknowledged before released
 *   health           the forwarder's health in the queue file and in
 *                    `mmapqctl metrics`: connected, every record
 *                    acknowledged, none in flight, the last ack's time; the
 *                    server killed: not connected; back: connected, one
 *                    reconnection; promtool check metrics clean
 *   credentials      a server in operator mode (operator, account and user
 *                    JWTs made by the test): a user of an unknown account
 *                    exits 76 naming [nats] credentials, nothing released;
 *                    the account's user forwards every record
 *   example          the 3-node example of daemons/consumer/NATS.md (its
 *                    ini block after the test_nats.example marker) as
 *                    written, but for servers (this cluster's) and without
 *                    credentials and tls_ca (the cases above try those):
 *                    the consumer nats, from its section alone, creates the
 *                    stream the example names with the example's replicas,
 *                    storage and duplicate window and forwards every
 *                    record; the default consumer beside it prints every
 *                    record (its output is not nats)
 * Cases (test_nats_stress, label stress):
 *   million          1,000,000 records end to end
 *   kill_consumer    the consumer SIGKILLed 100 times mid-stream: at the
 *                    fault points between publish and ack (nats.published),
 *                    between ack and release (nats.acked, consumer.written)
 *                    and from outside once the stream grew
 *   cluster          a 3-node JetStream cluster, stream with 3 replicas: the
 *                    node the consumer is connected to, made the stream's
 *                    leader, SIGKILLed mid-stream
 * Exit 77 only when nats-server is not installed (or a fault-point case
 * in a build without them).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../daemons/testrecords.h"
#include "natsutil.h"
#include "testutil.h"

#define STREAM  "MMAPQTEST"
#define SUBJECT "mmapq.test"

struct fx {
	char *dir, *qpath, *ini, *input, *clog;
	struct nu_cluster c;
	pid_t producer, consumer;
	const char *output_option; /* --output (then no --count) */
	const char *stream, *subject; /* NULL: STREAM, SUBJECT */
	int64_t n;
	char id[2 * MMAPQ_ID_SIZE + 1];
};

static void need_server(void)
{
	if (!nu_server_path())
		tu_skip("no nats-server (package nats-server; tests/deps.sh --test installs it)");
}

/* A scratch directory, nodes servers (not started), n records 0..n-1 in a
 * file for the producer; no configuration yet (write_ini). */
static void setup_dir(struct fx *f, const char *tag, int nodes, int64_t n)
{
	FILE *in;

	need_server();
	memset(f, 0, sizeof(*f));
	f->dir = tu_mkdtemp(tag);
	f->qpath = tu_path(f->dir, "queue");
	f->input = tu_path(f->dir, "input");
	f->clog = tu_path(f->dir, "consumer.log");
	f->n = n;
	nu_init(&f->c, f->dir, nodes);
	in = fopen(f->input, "w");
	if (!in)
		tu_die(f->input);
	for (int64_t i = 0; i < n; i++)
		fprintf(in, "%" PRId64 "\n", i);
	if (fclose(in) != 0)
		tu_die(f->input);
}

/* [queue] keys of a ring of size bytes, for int records */
#define RING(size) "size = " size "\nmax_record = 1K\n"

/* The configuration (mmapq.ini in the scratch directory): queue, the
 * [queue] keys but its path. */
static void write_ini(struct fx *f, const char *queue, const char *extra)
{
	char *text;

	text = tu_xasprintf("[queue]\npath = %s\n%s[consumer]\noutput = nats\n"
	                    "[nats]\nservers = %s\nsubject = " SUBJECT "\nstream = " STREAM "\n"
	                    "connect_timeout = 2\nack_timeout = 2\nreconnect_max_wait = 1\n%s",
	                    f->qpath, queue, f->c.urls, extra ? extra : "");
	f->ini = tu_write_in(f->dir, "mmapq.ini", text);
	free(text);
}

/* A scratch directory, nodes servers (not started), n records 0..n-1 in a
 * file for the producer, and the configuration. */
static void setup(struct fx *f, const char *tag, int nodes, int64_t n, const char *queue,
                  const char *extra)
{
	setup_dir(f, tag, nodes, n);
	write_ini(f, queue, extra);
}

/* A single server requiring mutual TLS (certificates made by openssl in
 * the scratch directory: nu_make_certs), and a consumer with servers =
 * tls://..., tls_ca = the CA file named ca (ca.pem signed the server's
 * certificate, ca2.pem did not), its client certificate and key = key. */
static void setup_tls(struct fx *f, const char *tag, int64_t n, const char *ca, const char *key)
{
	char *extra;

	setup_dir(f, tag, 1, n);
	TU_EXPECT(f->dir, nu_make_certs(f->dir, 30000 * (int)tu_time_factor()),
	          "openssl did not make the certificates (package openssl)");
	nu_tls(&f->c, f->dir);
	extra = tu_xasprintf("create_stream = yes\ntls_ca = %s/%s\ntls_cert = %s/client.pem\n"
	                     "tls_key = %s/%s\n", f->dir, ca, f->dir, f->dir, key);
	write_ini(f, RING("64K"), extra);
	free(extra);
}

static void start_servers(struct fx *f)
{
	for (int i = 0; i < f->c.n; i++)
		TU_EXPECT(f->qpath, nu_start(&f->c, i, 20000 * (int)tu_time_factor()),
		          "nats-server %d did not start", i + 1);
	TU_EXPECT(f->qpath, nu_wait_jetstream(&f->c, 30000 * (int)tu_time_factor()),
	          "JetStream not ready");
}

static void add_stream(struct fx *f, int replicas)
{
	natsConnection *nc;
	jsCtx *js;

	TU_EXPECT(f->qpath, nu_connect(&f->c, &nc, &js), "connect");
	TU_EXPECT(f->qpath, nu_add_stream(js, STREAM, SUBJECT, replicas, 120), "add stream");
	nu_disconnect(nc, js);
}

static void start_producer(struct fx *f)
{
	struct tu_child ch = TU_CHILD_INIT;
	char *argv[] = {tu_bin("mmapq-producer"), "--config", f->ini, NULL};
	int fd = open(f->input, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		tu_die(f->input);
	ch.stdio[0] = fd;
	f->producer = tu_start(argv, &ch);
	tu_track(f->producer);
	close(fd);
	free(argv[0]);
}

/* The consumer, its stderr appended to consumer.log; env: "K=V" or NULL;
 * count: --count, 0 for none. */
static pid_t start_consumer(struct fx *f, const char *env, int64_t count)
{
	struct tu_child ch = TU_CHILD_INIT;
	char cnt[32];
	char *envv[] = {(char *)env, NULL};
	char *argv[] = {tu_bin("mmapq-consumer"), "--config", f->ini, "--count", cnt, NULL, NULL, NULL};
	int fd = open(f->clog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	pid_t pid;

	if (fd < 0)
		tu_die(f->clog);
	snprintf(cnt, sizeof(cnt), "%" PRId64, count);
	if (!count)
		argv[3] = NULL;
	if (f->output_option) {
		/* [consumer] output of the file is overridden, for the consumer
		 * named nats (as mmapq-consumer-nats.service runs it) */
		argv[3] = "--output";
		argv[4] = (char *)f->output_option;
		argv[5] = "--name";
		argv[6] = "nats";
	}
	ch.stdio[2] = fd;
	ch.env_extra = env ? envv : NULL;
	pid = tu_start(argv, &ch);
	tu_track(pid);
	close(fd);
	free(argv[0]);
	return pid;
}

static int wait_exit(pid_t pid, int timeout_ms)
{
	int st = tu_wait(pid, timeout_ms * (int)tu_time_factor());

	if (st == -ETIMEDOUT)
		return -1;
	tu_untrack(pid);
	return tu_exit_code(st);
}

/* The queue's id (made when the producer or consumer created the file). */
static void queue_id(struct fx *f)
{
	struct mmapq_status st;
	uint64_t end = tu_now_ms() + 10000;
	bool have = false;

	while (!have) {
		struct stat sb;

		TU_EXPECT(f->qpath, tu_now_ms() < end, "no queue file after 10 s");
		if (stat(f->qpath, &sb) == 0 && sb.st_size > 0) {
			st = tu_queue_status(f->qpath);
			for (size_t i = 0; i < MMAPQ_ID_SIZE; i++)
				have = have || st.id[i];
		}
	}
	for (size_t i = 0; i < MMAPQ_ID_SIZE; i++)
		snprintf(f->id + 2 * i, 3, "%02x", st.id[i]);
}

static char *consumer_log(struct fx *f)
{
	char *s = tu_read_file(f->clog, NULL);
	return s ? s : strdup("");
}

/* The producer done, the stream holding every record exactly once in order,
 * and the queue empty: everything forwarded was released. */
static void expect_all(struct fx *f, int timeout_ms)
{
	const char *stream = f->stream ? f->stream : STREAM;
	int64_t have, got;
	struct mmapq_status st;

	if (f->producer) {
		int rc = wait_exit(f->producer, timeout_ms);
		TU_EXPECT(f->qpath, rc == 0, "producer exit %d", rc);
		f->producer = 0;
	}
	have = nu_wait_msgs(&f->c, stream, f->n, timeout_ms * (int)tu_time_factor());
	TU_EXPECT(f->qpath, have == f->n, "the stream has %" PRId64 " messages, not %" PRId64
	          "; consumer log:\n%s", have, f->n, consumer_log(f));
	got = nu_read_back(&f->c, stream, f->subject ? f->subject : SUBJECT, f->id, 0, 0);
	TU_EXPECT(f->qpath, got == f->n, "read back %" PRId64 " of %" PRId64, got, f->n);
	if (f->consumer) {
		/* what the stream acknowledged is released: the queue empties */
		uint64_t end = tu_now_ms() + (uint64_t)timeout_ms * tu_time_factor();
		do
			st = tu_queue_status(f->qpath);
		while (st.head != (uint64_t)f->n && tu_now_ms() < end);
		TU_EXPECT(f->qpath, st.head == (uint64_t)f->n, "consumed %" PRIu64 " of %" PRId64,
		          st.head, f->n);
		kill(f->consumer, SIGTERM);
		int rc = wait_exit(f->consumer, 10000);
		TU_EXPECT(f->qpath, rc == 0, "consumer exit %d after SIGTERM; log:\n%s", rc,
		          consumer_log(f));
		f->consumer = 0;
	}
}

static void teardown(struct fx *f)
{
	nu_free(&f->c);
	tu_kill_tracked();
	free(f->qpath);
	free(f->ini);
	free(f->input);
	free(f->clog);
}

/* ---- fast --------------------------------------------------------------- */

static void forward(void)
{
	struct fx f;

	setup(&f, "nats-forward", 1, 20000, RING("64K"), "create_stream = yes\n");
	start_servers(&f);
	start_producer(&f);
	queue_id(&f);
	/* --output overrides the file's output (as mmapq-consumer-nats.service
	 * runs it); a bad one is a usage error */
	f.output_option = "printer";
	TU_EXPECT(f.qpath, wait_exit(start_consumer(&f, NULL, 0), 10000) == 64, "--output printer");
	{
		char *d = tu_path(f.dir, "mmapq.ini.d");

		if (mkdir(d, 0755) < 0)
			tu_die(d);
		free(tu_write_in(d, "out.ini", "[consumer]\noutput = null\n"));
		free(d);
	}
	f.output_option = "nats";
	f.consumer = start_consumer(&f, NULL, 0);
	expect_all(&f, 60000);
	teardown(&f);
}

static void absent_at_start(void)
{
	struct fx f;
	char *log;

	setup(&f, "nats-absent", 1, 5000, RING("128K"), "create_stream = yes\n");
	start_producer(&f);
	queue_id(&f);
	f.consumer = start_consumer(&f, NULL, 0);
	/* nothing to forward to: the producer still puts everything in */
	TU_EXPECT(f.qpath, wait_exit(f.producer, 30000) == 0, "producer");
	f.producer = 0;
	{
		uint64_t end = tu_now_ms() + 10000u * tu_time_factor();

		for (log = consumer_log(&f); !strstr(log, "answers yet") && tu_now_ms() < end;
		     log = consumer_log(&f))
			free(log);
	}
	TU_EXPECT(f.qpath, strstr(log, "no server of [nats] servers") != NULL,
	          "the consumer does not say it waits for a server:\n%s", log);
	free(log);
	TU_EXPECT(f.qpath, tu_queue_status(f.qpath).head == 0, "records released with no server");
	start_servers(&f);
	expect_all(&f, 60000);
	log = consumer_log(&f);
	TU_EXPECT(f.qpath, strstr(log, "NATS: connected to") != NULL, "no 'connected' line:\n%s", log);
	free(log);
	teardown(&f);
}

/* The producer puts every record of the input in the queue and exits. */
static void fill(struct fx *f)
{
	int rc;

	start_producer(f);
	rc = wait_exit(f->producer, 30000);
	TU_EXPECT(f->qpath, rc == 0, "producer exit %d", rc);
	f->producer = 0;
}

/* The cursor of the consumer default (the one the tests start). */
static uint64_t cursor(const struct fx *f)
{
	struct mmapq_params p = {.path = f->qpath, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq *q;
	int n;

	TU_EXPECT(f->qpath, mmapq_open(&p, &q, NULL) == 0, "cannot open the queue");
	n = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX);
	mmapq_close(q);
	for (int i = 0; i < n && i < (int)MMAPQ_CONSUMERS_MAX; i++)
		if (!strcmp(cs[i].name, MMAPQ_CONSUMER_DEFAULT))
			return cs[i].position;
	TU_EXPECT(f->qpath, false, "no consumer " MMAPQ_CONSUMER_DEFAULT " registered");
	return 0;
}

/* A consumer refused for good: exit 76, a message containing want (and
 * want2 if not NULL), the first released records released (those the
 * stream acknowledged before the refusal), no other. */
static void expect_refused_after(struct fx *f, const char *want, const char *want2,
                                 uint64_t released)
{
	int rc = wait_exit(start_consumer(f, NULL, 0), 30000);
	char *log = consumer_log(f);
	uint64_t at = cursor(f);

	TU_EXPECT(f->qpath, rc == 76, "consumer exit %d, not 76; log:\n%s", rc, log);
	TU_EXPECT(f->qpath, strstr(log, want) && (!want2 || strstr(log, want2)),
	          "the message does not name the setting (%s):\n%s", want, log);
	TU_EXPECT(f->qpath, at == released, "the consumer's cursor is %" PRIu64 " after exit 76, not"
	          " %" PRIu64 " (the records the stream acknowledged before the refused one)"
	          "; log:\n%s", at, released, log);
	free(log);
}

static void expect_refused(struct fx *f, const char *want, const char *want2)
{
	expect_refused_after(f, want, want2, 0);
}

static void no_stream(void)
{
	struct fx f;

	setup(&f, "nats-nostream", 1, 100, RING("16K"), "create_stream = no\n");
	start_servers(&f);
	fill(&f);
	expect_refused(&f, "[nats] stream = " STREAM ": no such stream", NULL);
	teardown(&f);
}

/* What retrying cannot fix: a record larger than the stream accepts, one
 * larger than the server accepts, and no permission to publish to the
 * subject: exit 76, the setting named; what the stream holds of the
 * records before the refused one released, nothing else. */
static void refused(void)
{
	struct fx f;
	natsConnection *nc;
	jsCtx *js;
	char *text, *ini2;
	int64_t have;

	/* ordered = no: every record has the headers of the first of a run */
	setup(&f, "nats-refused", 1, 3, RING("16K"), "create_stream = no\nordered = no\n");
	/* clients without credentials are the user anon, who may do anything
	 * but publish to mmapq.denied; nobody may publish more than 4 KiB */
	nu_append_conf(&f.c, "authorization {\n  users: [ { user: anon, password: anon,\n"
	               "    permissions: { publish: { deny: [\"mmapq.denied\"] } } } ]\n}\n"
	               "no_auth_user: anon\nmax_payload: 4096\n");
	start_servers(&f);
	TU_EXPECT(f.qpath, nu_connect(&f.c, &nc, &js), "connect");
	/* 90 bytes with the headers: a record (75 bytes of headers, with a
	 * sequence number of one digit) fits with 15 bytes of payload, not
	 * with 19 */
	TU_EXPECT(f.qpath, nu_add_stream_limited(js, STREAM, SUBJECT, 1, 120, 90), "add stream");
	TU_EXPECT(f.qpath, nu_add_stream(js, "DENIED", "mmapq.denied", 1, 120), "add stream");
	TU_EXPECT(f.qpath, nu_add_stream(js, "BIG", "mmapq.big", 1, 120), "add stream");
	nu_disconnect(nc, js);
	/* records 0 and 1 go into the stream; 2 is refused */
	free(tu_write_in(f.dir, "input", "1\n2\n1000000000000000000\n"));
	fill(&f);
	expect_refused_after(&f, "record 2 is larger than [nats] stream = " STREAM " accepts", NULL, 2);
	have = nu_wait_msgs(&f.c, STREAM, 2, 10000 * (int)tu_time_factor());
	TU_EXPECT(f.qpath, have == 2, "the stream has %" PRId64 " messages, not 2", have);

	/* the same queue, to the subject anon may not publish to */
	text = tu_xasprintf("[queue]\npath = %s\n" RING("16K") "[consumer]\noutput = nats\n"
	                    "[nats]\nservers = %s\nsubject = mmapq.denied\nstream = DENIED\n",
	                    f.qpath, f.c.urls);
	ini2 = tu_write_in(f.dir, "denied.ini", text);
	free(f.ini);
	f.ini = ini2;
	if (truncate(f.clog, 0) < 0)
		tu_die(f.clog);
	/* nothing more released */
	expect_refused_after(&f, "permission denied", "[nats] subject = mmapq.denied", 2);
	free(text);

	/* a queue of lines up to 8 KiB, more than the server's max_payload:
	 * refused before any record is sent, both limits named */
	free(f.qpath);
	f.qpath = tu_path(f.dir, "lines.queue");
	text = tu_xasprintf("[queue]\npath = %s\nsize = 64K\nformat = line\nmax_record = 8K\n"
	                    "[consumer]\noutput = nats\n[nats]\nservers = %s\nsubject = mmapq.big\n"
	                    "stream = BIG\nack_timeout = 2\n", f.qpath, f.c.urls);
	ini2 = tu_write_in(f.dir, "lines.ini", text);
	free(text);
	free(f.ini);
	f.ini = ini2;
	free(tu_write_in(f.dir, "input", "a\nb\n"));
	if (truncate(f.clog, 0) < 0)
		tu_die(f.clog);
	fill(&f);
	expect_refused_after(&f, "[queue] max_record = 8192 bytes (and up to 256 bytes of headers",
	                     "is more than the max_payload of the server", 0);
	have = nu_wait_msgs(&f.c, "BIG", 0, 10000 * (int)tu_time_factor());
	TU_EXPECT(f.qpath, have == 0, "stream BIG has %" PRId64 " messages, not 0", have);
	teardown(&f);
}

/* A server that comes back with a smaller max_payload than the queue's
 * records may need: refused at the reconnection (76), both limits named,
 * before the next record is published; what the stream acknowledged
 * before released, nothing after. */
static void max_payload(void)
{
	struct tr_set set;
	struct fx f;
	int64_t have;
	char *log;
	int rc;

	setup(&f, "nats-maxpayload", 1, 2, "size = 64K\nformat = line\nmax_record = 2K\n",
	      "create_stream = yes\n");
	start_servers(&f);
	fill(&f);
	queue_id(&f);
	f.consumer = start_consumer(&f, NULL, 0);
	TU_EXPECT(f.qpath, nu_wait_msgs(&f.c, STREAM, 2, 30000 * (int)tu_time_factor()) == 2,
	          "the two records did not reach the stream");
	for (uint64_t end = tu_now_ms() + 10000u * tu_time_factor(); cursor(&f) != 2;)
		TU_EXPECT(f.qpath, tu_now_ms() < end, "the two records were not released");
	nu_kill(&f.c, 0);
	nu_append_conf(&f.c, "max_payload: 1024\n");
	start_servers(&f);
	/* a record of 1500 bytes: the consumer takes in the reconnection
	 * before it publishes anything more */
	set = tr_lines(1, 1500);
	tr_put(f.qpath, 64 * 1024, 2048, MMAPQ_FORMAT_LINE, &set);
	tr_free(&set);
	rc = wait_exit(f.consumer, 30000);
	f.consumer = 0;
	log = consumer_log(&f);
	TU_EXPECT(f.qpath, rc == 76, "consumer exit %d after the server came back with max_payload"
	          " 1024, not 76; log:\n%s", rc, log);
	TU_EXPECT(f.qpath, strstr(log, "[queue] max_record = 2048 bytes") &&
	          strstr(log, "takes (1024 bytes)"), "the message does not name both limits:\n%s", log);
	TU_EXPECT(f.qpath, cursor(&f) == 2, "the cursor moved to %" PRIu64, cursor(&f));
	have = nu_wait_msgs(&f.c, STREAM, 2, 10000 * (int)tu_time_factor());
	TU_EXPECT(f.qpath, have == 2, "the stream has %" PRId64 " messages, not 2", have);
	free(log);
	teardown(&f);
}

/* The payload of record seq is record seq of the set (first_seq 0). */
static char *check_record(void *ctx, uint64_t seq, const void *data, int len)
{
	const struct tr_set *set = ctx;

	if (seq >= set->n)
		return tu_xasprintf("record %" PRIu64 ", past the %" PRIu32 " put", seq, set->n);
	return tr_differs(set, (uint32_t)seq, data, (uint64_t)len);
}

/* Records put with the library (format, size, max_record) to the stream:
 * every one read back, its payload byte for byte. */
static void forward_set(const char *tag, const char *queue, uint32_t format, uint64_t size,
                        uint32_t max_record, struct tr_set *set)
{
	struct fx f;
	int64_t got;

	setup_dir(&f, tag, 1, 0);
	f.n = set->n;
	write_ini(&f, queue, "create_stream = yes\n");
	start_servers(&f);
	tr_put(f.qpath, size, max_record, format, set);
	queue_id(&f);
	f.consumer = start_consumer(&f, NULL, 0);
	TU_EXPECT(f.qpath, nu_wait_msgs(&f.c, STREAM, f.n, 60000 * (int)tu_time_factor()) == f.n,
	          "the stream does not have the %" PRId64 " records; log:\n%s", f.n, consumer_log(&f));
	got = nu_read_back_check(&f.c, STREAM, SUBJECT, f.id, 0, check_record, set);
	TU_EXPECT(f.qpath, got == f.n, "read back %" PRId64 " of %" PRId64, got, f.n);
	for (uint64_t end = tu_now_ms() + 10000u * tu_time_factor(); cursor(&f) != (uint64_t)f.n;)
		TU_EXPECT(f.qpath, tu_now_ms() < end, "released %" PRIu64 " of %" PRId64, cursor(&f), f.n);
	kill(f.consumer, SIGTERM);
	TU_EXPECT(f.qpath, wait_exit(f.consumer, 10000) == 0, "consumer after SIGTERM; log:\n%s",
	          consumer_log(&f));
	f.consumer = 0;
	teardown(&f);
}

/* Binary records (all 256 byte values, each alone, zero-length, every
 * padding, max_record) are the messages' payloads, as they are. */
static void binary(void)
{
	struct tr_set set = tr_binary_set(64 * 1024);

	need_server();
	forward_set("nats-binary", "size = 1M\nformat = binary\n", MMAPQ_FORMAT_BINARY, 1 << 20,
	            64 * 1024, &set);
	tr_free(&set);
}

/* Lines of 64 KiB with the shipped size (4M) and max_record (64K), whole. */
static void long_lines(void)
{
	struct tr_set set = tr_lines(24, 64 * 1024);

	need_server();
	tr_add_random(&set, 64 * 1024 - 1, true);
	tr_add(&set, 0);
	forward_set("nats-longlines", "format = line\n", MMAPQ_FORMAT_LINE, 4 << 20, 64 * 1024, &set);
	tr_free(&set);
}

/* Mutual TLS: the consumer verifies the server's certificate with tls_ca
 * and shows its own; every record arrives (read back over TLS too). */
static void tls(void)
{
	struct fx f;
	char *log;

	setup_tls(&f, "nats-tls", 2000, "ca.pem", "client.key");
	start_servers(&f);
	start_producer(&f);
	queue_id(&f);
	f.consumer = start_consumer(&f, NULL, 0);
	TU_EXPECT(f.qpath, nu_client_tls(&f.c, "mmapq-consumer", 30000 * (int)tu_time_factor()),
	          "the server has no TLS connection of mmapq-consumer; its log:\n%s",
	          (log = consumer_log(&f)));
	expect_all(&f, 60000);
	teardown(&f);
}

/* A server whose certificate the CA of tls_ca did not sign: libnats gives
 * up on it at once, and the consumer exits 76 naming [nats] tls_ca, nothing
 * released.  A tls_key file that does not exist: 73 (as for a queue file
 * it cannot open), the key and the file named. */
static void tls_refused(void)
{
	struct fx f;
	char *want, *log, *ini2;
	int rc;

	setup_tls(&f, "nats-tlsrefused", 50, "ca2.pem", "client.key");
	start_servers(&f);
	fill(&f);
	want = tu_xasprintf("[nats] tls_ca = %s/ca2.pem", f.dir);
	expect_refused(&f, "NATS: the TLS handshake with the servers failed (SSL handshake error", want);
	free(want);
	TU_EXPECT(f.qpath, tu_queue_status(f.qpath).tail == (uint64_t)f.n,
	          "the queue does not hold the %" PRId64 " records", f.n);

	/* the right CA, a key file that is not there */
	ini2 = f.ini;
	f.ini = NULL;
	{
		char *extra = tu_xasprintf("create_stream = yes\ntls_ca = %s/ca.pem\n"
		                           "tls_cert = %s/client.pem\ntls_key = %s/missing.key\n",
		                           f.dir, f.dir, f.dir);

		write_ini(&f, RING("64K"), extra);
		free(extra);
	}
	free(ini2);
	if (truncate(f.clog, 0) < 0)
		tu_die(f.clog);
	rc = wait_exit(start_consumer(&f, NULL, 0), 30000);
	log = consumer_log(&f);
	want = tu_xasprintf("[nats] tls_key = %s/missing.key: cannot read it: No such file", f.dir);
	TU_EXPECT(f.qpath, rc == 73, "consumer exit %d, not 73; log:\n%s", rc, log);
	TU_EXPECT(f.qpath, strstr(log, want) != NULL, "the message does not name the key and"
	          " its file (%s):\n%s", want, log);
	TU_EXPECT(f.qpath, !strstr(log, "did not stop"), "a bogus warning:\n%s", log);
	TU_EXPECT(f.qpath, tu_queue_status(f.qpath).head == 0, "records released");
	free(want);
	free(log);
	teardown(&f);
}

/* A server in operator mode (JWTs made by the test: nu_operator): the
 * consumer with credentials of a user of an account the server does not
 * know exits 76 naming [nats] credentials, nothing released; with the
 * credentials of the account's user it forwards every record. */
static void credentials(void)
{
	struct fx f;
	char *extra, *want;

	setup_dir(&f, "nats-creds", 1, 2000);
	TU_EXPECT(f.dir, nu_operator(&f.c, f.dir, 30000 * (int)tu_time_factor()),
	          "no operator, account and user made (package openssl)");
	extra = tu_xasprintf("create_stream = yes\ncredentials = %s/stranger.creds\n", f.dir);
	write_ini(&f, RING("64K"), extra);
	free(extra);
	start_servers(&f);
	fill(&f);
	queue_id(&f);
	want = tu_xasprintf("the servers refuse the credentials ([nats] credentials = %s/stranger.creds)",
	                    f.dir);
	/* the server's reason, which libnats keeps to itself (daemons/consumer/nats.c
	 * connects once more to learn it) */
	expect_refused(&f, want, "Authorization Violation");
	free(want);

	free(f.ini);
	extra = tu_xasprintf("create_stream = yes\ncredentials = %s/user.creds\n", f.dir);
	write_ini(&f, RING("64K"), extra);
	free(extra);
	f.consumer = start_consumer(&f, NULL, 0);
	expect_all(&f, 60000);
	teardown(&f);
}

static void kill_server(void)
{
	struct fx f;
	int64_t have;

	setup(&f, "nats-killserver", 1, 100000, RING("256K"), "create_stream = yes\n");
	start_servers(&f);
	start_producer(&f);
	queue_id(&f);
	f.consumer = start_consumer(&f, NULL, 0);
	have = nu_wait_msgs(&f.c, STREAM, f.n / 3, 60000 * (int)tu_time_factor());
	TU_EXPECT(f.qpath, have >= f.n / 3, "stream at %" PRId64, have);
	nu_kill(&f.c, 0);
	TU_EXPECT(f.qpath, tu_queue_status(f.qpath).head < (uint64_t)f.n,
	          "everything was forwarded before the kill: not mid-stream");
	start_servers(&f);
	expect_all(&f, 120000);
	teardown(&f);
}

/* The health the consumer's forwarder last reported (the first consumer
 * whose output reports one); false if none did. */
static bool health_of(struct fx *f, struct mmapq_output_health *h)
{
	struct mmapq_params p = {.path = f->qpath, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_error err;
	struct mmapq *q;
	bool found = false;
	int n;

	if (mmapq_open(&p, &q, &err) < 0)
		return false;
	n = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX);
	for (int i = 0; !found && i < n && i < (int)MMAPQ_CONSUMERS_MAX; i++)
		found = mmapq_consumer_output(q, cs[i].index, h) == 0;
	mmapq_close(q);
	return found;
}

/* Until the forwarder reports what ok() wants (it reports once a second),
 * at most timeout_ms; the last report in *h. */
static bool health_until(struct fx *f, struct mmapq_output_health *h, int timeout_ms,
                         bool (*ok)(const struct fx *f, const struct mmapq_output_health *h))
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms * tu_time_factor();

	memset(h, 0, sizeof(*h));
	do
		if (health_of(f, h) && ok(f, h))
			return true;
	while (tu_now_ms() < end);
	return false;
}

static bool all_acked(const struct fx *f, const struct mmapq_output_health *h)
{
	return h->connected && h->acknowledged == (uint64_t)f->n && h->in_flight == 0;
}

static bool disconnected(const struct fx *f, const struct mmapq_output_health *h)
{
	(void)f;
	return !h->connected;
}

static bool reconnected(const struct fx *f, const struct mmapq_output_health *h)
{
	(void)f;
	return h->connected && h->reconnects == 1;
}

/* PROGRAM ARG... run to its end with input on its stdin (NULL: none): its
 * stdout; *code its exit code. */
static char *run_out(const char *input, int *code, char *const argv[])
{
	struct tu_child ch = TU_CHILD_INIT;
	int out[2], in[2] = {-1, -1};
	pid_t pid;
	char *text;

	tu_pipe(out);
	if (input)
		tu_pipe(in);
	ch.stdio[0] = in[0];
	ch.stdio[1] = out[1];
	pid = tu_start(argv, &ch);
	tu_track(pid);
	close(out[1]);
	if (input) {
		close(in[0]);
		(void)tu_write_all(in[1], input, strlen(input));
		close(in[1]);
	}
	text = tu_read_all(out[0], 10000 * (int)tu_time_factor(), NULL);
	close(out[0]);
	*code = wait_exit(pid, 10000);
	return text ? text : strdup("");
}

static void health(void)
{
	struct fx f;
	struct mmapq_output_health h;
	uint64_t start_usec = (uint64_t)time(NULL) * 1000000u;
	char *ctl = tu_bin("mmapqctl"), *text, *want, *out;
	int code;

	setup(&f, "nats-health", 1, 2000, RING("64K"), "create_stream = yes\n");
	start_servers(&f);
	start_producer(&f);
	queue_id(&f);
	f.consumer = start_consumer(&f, NULL, 0);
	TU_EXPECT(f.qpath, health_until(&f, &h, 30000, all_acked),
	          "the forwarder does not report %" PRId64 " records acknowledged, none in flight, connected:"
	          " acknowledged %" PRIu64 ", in flight %" PRIu32 ", connected %d; log:\n%s", f.n,
	          h.acknowledged, h.in_flight, h.connected, consumer_log(&f));
	TU_EXPECT(f.qpath, h.reconnects == 0 && h.last_ack_usec >= start_usec &&
	          h.last_ack_usec <= (uint64_t)(time(NULL) + 1) * 1000000u,
	          "reconnects %" PRIu64 " (want 0), last ack at %" PRIu64 " (want since %" PRIu64 ")",
	          h.reconnects, h.last_ack_usec, start_usec);
	text = run_out(NULL, &code, (char *[]){ctl, "--config", f.ini, "metrics", NULL});
	TU_EXPECT(f.qpath, code == 0, "mmapqctl metrics: exit %d", code);
	want = tu_xasprintf("mmapq_consumer_nats_connected{queue=\"%s\",consumer=\"default\"} 1\n"
	                    "# HELP", f.qpath);
	TU_EXPECT(f.qpath, strstr(text, want), "metrics without '%s':\n%s", want, text);
	free(want);
	want = tu_xasprintf("mmapq_consumer_nats_acknowledged_records_total{queue=\"%s\",consumer="
	                    "\"default\"} %" PRId64 "\n", f.qpath, f.n);
	TU_EXPECT(f.qpath, strstr(text, want), "metrics without '%s':\n%s", want, text);
	free(want);
	want = tu_xasprintf("mmapq_consumer_nats_in_flight_records{queue=\"%s\",consumer=\"default\"} 0\n",
	                    f.qpath);
	TU_EXPECT(f.qpath, strstr(text, want) && strstr(text, "mmapq_consumer_nats_reconnects_total{") &&
	          strstr(text, "mmapq_consumer_nats_last_ack_timestamp_seconds{"),
	          "metrics without '%s' or the reconnects or the last ack:\n%s", want, text);
	free(want);
	out = run_out(text, &code, (char *[]){"/usr/bin/promtool", "check", "metrics", NULL});
	TU_EXPECT(f.qpath, code == 0, "promtool check metrics: exit %d: %s", code, out);
	free(out);
	free(text);
	/* the server gone: not connected; back: connected again, once */
	nu_kill(&f.c, 0);
	TU_EXPECT(f.qpath, health_until(&f, &h, 20000, disconnected),
	          "still connected 20 s after the server was killed");
	start_servers(&f);
	TU_EXPECT(f.qpath, health_until(&f, &h, 30000, reconnected),
	          "not connected again with one reconnection: connected %d, reconnects %" PRIu64 "; log:\n%s",
	          h.connected, h.reconnects, consumer_log(&f));
	kill(f.consumer, SIGTERM);
	code = wait_exit(f.consumer, 10000);
	TU_EXPECT(f.qpath, code == 0, "consumer exit %d after SIGTERM", code);
	f.consumer = 0;
	free(ctl);
	teardown(&f);
}

/* The value of key in an ini text (up to the line's end), malloc'd, or NULL. */
static char *ini_value(const char *text, const char *key)
{
	size_t len = strlen(key);
	const char *l = text;

	while (l) {
		if (!strncmp(l, key, len) && !strncmp(l + len, " = ", 3))
			return strndup(l + len + 3, strcspn(l + len + 3, "\n"));
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return NULL;
}

/* The ini block after the test_nats.example marker of NATS.md, with
 * servers = servers and without credentials and tls_ca (malloc'd). */
static char *nats_example(const char *servers)
{
	char *path = tu_xasprintf("%s/daemons/consumer/NATS.md", tu_source_dir());
	char *doc = tu_read_file(path, NULL), *out, *p;
	const char *block, *end;
	size_t n = 0;

	TU_EXPECT(path, doc, "cannot read it");
	block = strstr(doc, "<!-- test_nats.example");
	TU_EXPECT(path, block, "no test_nats.example marker");
	block = strstr(block, "\n```ini\n");
	TU_EXPECT(path, block, "no ```ini block after the test_nats.example marker");
	block += strlen("\n```ini\n");
	end = strstr(block, "\n```");
	TU_EXPECT(path, end, "the example's ini block does not end");
	out = p = malloc((size_t)(end - block) + strlen(servers) + 16);
	if (!out)
		tu_die("malloc");
	for (const char *l = block; l <= end; l = strchr(l, '\n') + 1) {
		size_t len = strcspn(l, "\n");

		if (!strncmp(l, "servers = ", 10))
			p += sprintf(p, "servers = %s\n", servers), n++;
		else if (strncmp(l, "credentials = ", 14) && strncmp(l, "tls_ca = ", 9))
			p += sprintf(p, "%.*s\n", (int)len, l);
	}
	*p = 0;
	TU_EXPECT(path, n == 1, "the example sets servers %zu times", n);
	free(doc);
	free(path);
	return out;
}

/* Whether the queue file's table has a consumer named name. */
static bool registered(struct fx *f, const char *name)
{
	struct mmapq_consumer_status cs;

	return tu_consumer_status(f->qpath, name, &cs);
}

static void example(void)
{
	struct tu_child ch = TU_CHILD_INIT;
	struct fx f;
	char *text, *ini, *stream, *subject, *replicas, *storage, *window, *out_path, *out;
	const char *p;
	int64_t i;
	char *argv[] = {tu_bin("mmapq-consumer"), "--config", NULL, "--count", NULL, NULL};
	char *nats_argv[] = {tu_bin("mmapq-consumer"), "--config", NULL, "--name", "nats", NULL};
	natsConnection *nc;
	jsCtx *js;
	jsStreamInfo *si = NULL;
	natsStatus ns;
	pid_t dflt;
	int fd, rc;

	setup_dir(&f, "nats-example", 3, 2000);
	ini = nats_example(f.c.urls);
	stream = ini_value(ini, "stream");
	subject = ini_value(ini, "subject");
	replicas = ini_value(ini, "replicas");
	storage = ini_value(ini, "storage");
	window = ini_value(ini, "duplicate_window");
	TU_EXPECT(f.qpath, stream && subject && replicas && storage && window,
	          "the example sets no stream, subject, replicas, storage or duplicate_window:"
	          "\n%s", ini);
	fprintf(stderr, "example: the configuration, from NATS.md:\n%s", ini);
	text = tu_xasprintf("[queue]\npath = %s\nmax_record = 1K\n%s", f.qpath, ini);
	f.ini = tu_write_in(f.dir, "mmapq.ini", text);
	f.stream = stream;
	f.subject = subject;
	start_servers(&f);

	/* both consumers registered before the producer starts, so that each
	 * gets every record (start = oldest is the oldest record the queue
	 * still keeps: one coming after the other consumed them gets none);
	 * the default consumer: whatever the example says of it, to a file */
	out_path = tu_path(f.dir, "default.out");
	fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		tu_die(out_path);
	argv[2] = nats_argv[2] = f.ini;
	argv[4] = tu_xasprintf("%" PRId64, f.n);
	ch.stdio[1] = fd;
	dflt = tu_start(argv, &ch);
	tu_track(dflt);
	close(fd);
	/* the consumer nats as the example makes it: its section alone */
	fd = open(f.clog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		tu_die(f.clog);
	ch.stdio[1] = -1;
	ch.stdio[2] = fd;
	f.consumer = tu_start(nats_argv, &ch);
	tu_track(f.consumer);
	close(fd);
	{
		uint64_t end = tu_now_ms() + 30000 * tu_time_factor();

		while (!(registered(&f, "default") && registered(&f, "nats")) && tu_now_ms() < end)
			sched_yield();
		TU_EXPECT(f.qpath, registered(&f, "default") && registered(&f, "nats"),
		          "the consumers default and nats not registered after 30 s; log:\n%s",
		          consumer_log(&f));
	}
	start_producer(&f);
	queue_id(&f);

	rc = wait_exit(dflt, 60000);
	TU_EXPECT(f.qpath, rc == 0, "the default consumer: exit %d", rc);
	/* it printed the records 0 .. n-1, one a line, and nothing else */
	out = tu_read_file(out_path, NULL);
	TU_EXPECT(out_path, out, "cannot read it");
	for (p = out, i = 0; i < f.n; i++) {
		char *e;

		if (strtoll(p, &e, 10) != i || e == p || *e != '\n')
			break;
		p = e + 1;
	}
	TU_EXPECT(f.qpath, i == f.n && !*p, "the default consumer printed records 0 to %" PRId64
	          " and then '%.20s', not the %" PRId64 " records", i - 1, p, f.n);
	expect_all(&f, 60000);

	TU_EXPECT(f.qpath, nu_connect(&f.c, &nc, &js), "connect");
	ns = js_GetStreamInfo(&si, js, stream, NULL, NULL);
	TU_EXPECT(f.qpath, ns == NATS_OK && si, "stream %s: %s", stream, natsStatus_GetText(ns));
	TU_EXPECT(f.qpath, si->Config->Replicas == atoi(replicas), "stream %s: %" PRId64
	          " replicas, the example says %s", stream, si->Config->Replicas, replicas);
	TU_EXPECT(f.qpath, si->Config->Storage == (strcmp(storage, "memory") ? js_FileStorage
	                                                                     : js_MemoryStorage),
	          "stream %s: not the example's storage, %s", stream, storage);
	TU_EXPECT(f.qpath, si->Config->Duplicates == atoi(window) * INT64_C(1000000000),
	          "stream %s: duplicate window %" PRId64 " ns, the example says %s s", stream,
	          si->Config->Duplicates, window);
	jsStreamInfo_Destroy(si);
	nu_disconnect(nc, js);
	fprintf(stderr, "example: the default consumer printed %" PRId64 " records; stream %s (%s)"
	        " holds them, %s replicas\n", f.n, stream, subject, replicas);
	free(argv[0]);
	free(argv[4]);
	free(nats_argv[0]);
	free(out);
	free(out_path);
	free(text);
	free(ini);
	free(replicas);
	free(storage);
	free(window);
	teardown(&f);
	free(stream);
	free(subject);
}

/* ---- stress ------------------------------------------------------------- */

static void million(void)
{
	struct fx f;
	uint64_t t0;

	setup(&f, "nats-million", 1, 1000000, RING("1M"), "create_stream = yes\n");
	start_servers(&f);
	t0 = tu_now_ms();
	start_producer(&f);
	queue_id(&f);
	f.consumer = start_consumer(&f, NULL, 0);
	expect_all(&f, 300000);
	fprintf(stderr, "million: 1,000,000 records forwarded and read back in %.1f s\n",
	        (double)(tu_now_ms() - t0) / 1000);
	teardown(&f);
}

static void kill_consumer(void)
{
	static const char *const points[] = {"nats.published", "nats.acked", "consumer.written"};
	unsigned by_kind[4] = {0};
	struct fx f;
	int kills = 0;

	tu_need_faults();
	setup(&f, "nats-killconsumer", 1, 400000, RING("1M"), "create_stream = yes\n");
	start_servers(&f);
	start_producer(&f);
	queue_id(&f);
	srand((unsigned)getpid());
	while (kills < 100) {
		int kind = kills % 4, rc;
		char env[64];
		pid_t pid;

		if (kind < 3) {
			snprintf(env, sizeof(env), "MMAPQ_FAULT=%s@%d", points[kind], 1 + rand() % 8);
			pid = start_consumer(&f, env, 0);
			rc = wait_exit(pid, 30000);
			TU_EXPECT(f.qpath, rc == 128 + SIGKILL, "kill %d (%s): consumer exit %d; log:\n%s",
			          kills, env, rc, consumer_log(&f));
		} else {
			natsConnection *nc;
			jsCtx *js;
			int64_t now, target;

			TU_EXPECT(f.qpath, nu_connect(&f.c, &nc, &js), "connect");
			now = nu_stream_msgs(js, STREAM);
			nu_disconnect(nc, js);
			target = now + 1 + rand() % 3000;
			pid = start_consumer(&f, NULL, 0);
			TU_EXPECT(f.qpath, nu_wait_msgs(&f.c, STREAM, target, 30000) >= target,
			          "kill %d: the stream did not grow to %" PRId64, kills, target);
			tu_kill(pid);
			tu_untrack(pid);
		}
		by_kind[kind]++;
		kills++;
		TU_EXPECT(f.qpath, tu_queue_status(f.qpath).head < (uint64_t)f.n,
		          "everything forwarded after %d kills: not mid-stream", kills);
	}
	fprintf(stderr, "kill_consumer: 100 SIGKILLs: nats.published %u, nats.acked %u,"
	        " consumer.written %u, external %u; head %" PRIu64 " of %" PRId64 "\n", by_kind[0],
	        by_kind[1], by_kind[2], by_kind[3], tu_queue_status(f.qpath).head, f.n);
	f.consumer = start_consumer(&f, NULL, 0);
	expect_all(&f, 120000);
	teardown(&f);
}

static void cluster(void)
{
	struct fx f;
	int64_t have;
	int node;

	setup(&f, "nats-cluster", 3, 300000, RING("1M"), "");
	start_servers(&f);
	add_stream(&f, 3);
	start_producer(&f);
	queue_id(&f);
	f.consumer = start_consumer(&f, NULL, 0);

	have = nu_wait_msgs(&f.c, STREAM, f.n / 4, 60000 * (int)tu_time_factor());
	TU_EXPECT(f.qpath, have >= f.n / 4, "stream at %" PRId64, have);
	node = nu_client_node(&f.c, "mmapq-consumer");
	TU_EXPECT(f.qpath, node >= 0, "no node has the consumer's connection");
	/* the node the consumer is connected to leads the stream too, so that
	 * one SIGKILL takes both: a failover of the connection and a stream
	 * leader election at once, with records in flight.  (One failure at a
	 * time: killing a second node after restarting the first is more than
	 * three nodes promise, and nats-server 2.9.10 was seen to elect the
	 * restarted node with a store still missing what it had not caught up
	 * on, acknowledged messages gone.) */
	TU_EXPECT(f.qpath, nu_make_leader(&f.c, STREAM, node, 60000 * (int)tu_time_factor()),
	          "n%d does not become the stream's leader", node + 1);
	TU_EXPECT(f.qpath, nu_client_node(&f.c, "mmapq-consumer") == node, "the consumer moved");
	TU_EXPECT(f.qpath, tu_queue_status(f.qpath).head < (uint64_t)f.n, "not mid-stream");
	fprintf(stderr, "cluster: SIGKILL n%d, the consumer's node and the stream's leader\n", node + 1);
	nu_kill(&f.c, node);
	expect_all(&f, 180000);
	teardown(&f);
}

int main(int argc, char **argv)
{
#ifdef NATS_STRESS
	static const struct tu_case cases[] = {
		{"million", million}, {"kill_consumer", kill_consumer}, {"cluster", cluster},
	};
	(void)forward, (void)absent_at_start, (void)no_stream, (void)refused, (void)kill_server;
	(void)tls, (void)tls_refused, (void)credentials, (void)binary, (void)long_lines;
	(void)max_payload, (void)health, (void)example;
#else
	static const struct tu_case cases[] = {
		{"forward", forward}, {"absent_at_start", absent_at_start}, {"no_stream", no_stream},
		{"refused", refused}, {"kill_server", kill_server}, {"tls", tls},
		{"tls_refused", tls_refused}, {"credentials", credentials}, {"binary", binary},
		{"long_lines", long_lines}, {"max_payload", max_payload}, {"health", health},
		{"example", example},
	};
	(void)million, (void)kill_consumer, (void)cluster;
#endif
	atexit(tu_kill_tracked);
	return tu_main_cases(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
