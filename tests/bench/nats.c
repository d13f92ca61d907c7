/* SPDX-License-Identifier: MIT */
/*
 * mmapq_bench_nats -- [consumer] output = nats against a bare libnats
 * publisher, in one run, on one nats-server started here (127.0.0.1, free
 * port, file storage in a scratch directory; natsutil.c):
 *
 *   throughput  N records (decimal integers, 1 to 7 bytes) into a stream of
 *               their own, file storage, duplicate window 2 min:
 *               - bare:  this process publishes them with libnats
 *                 (js_PublishMsgAsync, the same headers Nats-Msg-Id and
 *                 Mmapq-Seq, the same window of 4096 acks in flight), from
 *                 the first publish to the last ack;
 *               - mmapq: the queue holds them (a producer put them there
 *                 first); mmapq-consumer --output nats --count N forwards
 *                 them, from its start to its exit (connecting, checking
 *                 the stream, publishing, every ack, every release);
 *               the two take turns, --runs times; the medians and their
 *               ratio (the target: >= 0.8);
 *   latency     producer -> queue -> consumer -> stream -> a JetStream
 *               subscriber of ours: one record at a time (the next is
 *               written once the previous arrived: nothing waits on a
 *               clock), its payload the CLOCK_REALTIME nanoseconds at
 *               which it was written into the producer's stdin; p50, p99;
 *               and the same from a bare js_PublishAsync of this process
 *               (what the broker and the subscriber take by themselves).
 * Every stream is checked to hold exactly the N records (--quick: read
 * back and every message checked).  Exit 0, 1 on a wrong result, 77 without
 * nats-server.
 *
 *   mmapq_bench_nats [--records N] [--runs R] [--samples S] [--quick]
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "natsutil.h"
#include "testutil.h"

#define WINDOW 4096
#define MAXRUNS 15

static int64_t records = 500000;
static int runs = 3, samples = 2000;
static bool quick;
static const char *bin_dir = MMAPQ_REL_BIN_DIR;

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("mmapq_bench_nats: FAIL: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
			double t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The stream must hold exactly the n records (quick: each one checked). */
static void check_stream(struct nu_cluster *c, const char *stream, const char *subject,
                         const char *id_hex, int64_t n)
{
	int64_t have = nu_wait_msgs(c, stream, n, 30000);

	if (have != n)
		fail("stream %s holds %" PRId64 " messages, not %" PRId64, stream, have, n);
	if (quick && nu_read_back(c, stream, subject, id_hex, 0, 0) != n)
		fail("stream %s: read back", stream);
}

static void drop_stream(jsCtx *js, const char *stream)
{
	js_DeleteStream(js, stream, NULL, NULL);
}

/* ---- bare libnats ---------------------------------------------------------- */

static double bare_run(struct nu_cluster *c, jsCtx *js_admin, int run)
{
	char stream[32], subject[64], id[MMAPQ_ID_SIZE * 2 + 1];
	natsConnection *nc;
	jsCtx *js;
	jsOptions jo;
	uint64_t t0, t1;

	snprintf(stream, sizeof(stream), "BARE%d", run);
	snprintf(subject, sizeof(subject), "bench.bare.%d", run);
	memset(id, 'b', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	if (!nu_add_stream(js_admin, stream, subject, 1, 120))
		fail("bare: add stream");
	if (!nu_connect(c, &nc, &js))
		fail("bare: connect");
	jsCtx_Destroy(js);
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = WINDOW;
	if (natsConnection_JetStream(&js, nc, &jo) != NATS_OK)
		fail("bare: JetStream context");
	t0 = now_ns(CLOCK_MONOTONIC);
	for (int64_t i = 0; i < records; i++) {
		char payload[24], msgid[96], seq[24];
		natsMsg *m = NULL;
		int len = snprintf(payload, sizeof(payload), "%" PRId64, i);
		natsStatus s;

		snprintf(msgid, sizeof(msgid), "%s:%" PRId64, id, i);
		snprintf(seq, sizeof(seq), "%" PRId64, i);
		s = natsMsg_Create(&m, subject, NULL, payload, len);
		if (s == NATS_OK)
			s = natsMsgHeader_Set(m, "Nats-Msg-Id", msgid);
		if (s == NATS_OK)
			s = natsMsgHeader_Set(m, "Mmapq-Seq", seq);
		if (s == NATS_OK)
			s = js_PublishMsgAsync(js, &m, NULL);
		if (s != NATS_OK)
			fail("bare: publish %" PRId64 ": %s", i, natsStatus_GetText(s));
	}
	if (js_PublishAsyncComplete(js, NULL) != NATS_OK)
		fail("bare: not every ack came");
	t1 = now_ns(CLOCK_MONOTONIC);
	nu_disconnect(nc, js);
	check_stream(c, stream, subject, id, records);
	drop_stream(js_admin, stream);
	return (double)records / ((double)(t1 - t0) / 1e9);
}

/* ---- mmapq-consumer --output nats -------------------------------------------- */

/* size: the ring's bytes; the records are ints (max_record 8) */
static char *write_config(const char *dir, const char *tag, const struct nu_cluster *c,
                          const char *stream, const char *subject, uint64_t size)
{
	char *name = tu_xasprintf("%s.ini", tag);
	char *text = tu_xasprintf("[queue]\npath = %s/%s.queue\nsize = %" PRIu64 "\nmax_record = 8\n"
	                          "[consumer]\noutput = nats\n[nats]\nservers = %s\nsubject = %s\n"
	                          "stream = %s\nmax_pending = %d\n", dir, tag, size, c->urls,
	                          subject, stream, WINDOW);
	char *path = tu_write_in(dir, name, text);

	free(name);
	free(text);
	return path;
}

static pid_t spawn(const char *prog, char *const args[], int in_fd)
{
	struct tu_child ch = TU_CHILD_INIT;
	char *argv[8];
	int i = 0;
	pid_t pid;

	argv[i++] = tu_path(bin_dir, prog);
	for (; args[i - 1] && i < 7; i++)
		argv[i] = args[i - 1];
	argv[i] = NULL;
	ch.stdio[0] = in_fd;
	ch.stdio[2] = STDERR_FILENO;
	pid = tu_start(argv, &ch);
	tu_track(pid);
	free(argv[0]);
	return pid;
}

static int reap(pid_t pid, int timeout_ms)
{
	int st = tu_wait(pid, timeout_ms);

	if (st == -ETIMEDOUT)
		return -1;
	tu_untrack(pid);
	return tu_exit_code(st);
}

static void queue_id_hex(const char *qpath, char out[MMAPQ_ID_SIZE * 2 + 1])
{
	struct mmapq_status st = tu_queue_status(qpath);

	for (size_t i = 0; i < MMAPQ_ID_SIZE; i++)
		snprintf(out + 2 * i, 3, "%02x", st.id[i]);
}

static double mmapq_run(struct nu_cluster *c, jsCtx *js_admin, const char *dir,
                        const char *input, int run)
{
	char stream[32], subject[64], tag[32], count[32], id[MMAPQ_ID_SIZE * 2 + 1];
	char *ini, *qpath;
	uint64_t size = MMAPQ_SIZE_MIN;
	uint64_t t0, t1;
	int fd, rc;

	snprintf(stream, sizeof(stream), "FWD%d", run);
	snprintf(subject, sizeof(subject), "bench.fwd.%d", run);
	snprintf(tag, sizeof(tag), "fwd%d", run);
	snprintf(count, sizeof(count), "%" PRId64, records);
	/* a ring that holds every record (an int record's frame: 16 bytes) */
	while (size < (uint64_t)records * mmapq_frame_size(8))
		size <<= 1;
	if (!nu_add_stream(js_admin, stream, subject, 1, 120))
		fail("mmapq: add stream");
	ini = write_config(dir, tag, c, stream, subject, size);
	qpath = tu_xasprintf("%s/%s.queue", dir, tag);
	fd = open(input, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		tu_die(input);
	rc = reap(spawn("mmapq-producer", (char *[]){"--config", ini, NULL}, fd), 120000);
	close(fd);
	if (rc != 0)
		fail("mmapq-producer exit %d", rc);
	queue_id_hex(qpath, id);
	t0 = now_ns(CLOCK_MONOTONIC);
	rc = reap(spawn("mmapq-consumer", (char *[]){"--config", ini, "--count", count, NULL}, -1),
	          300000);
	t1 = now_ns(CLOCK_MONOTONIC);
	if (rc != 0)
		fail("mmapq-consumer exit %d", rc);
	if (tu_queue_status(qpath).head != (uint64_t)records)
		fail("mmapq-consumer exited before releasing every record");
	check_stream(c, stream, subject, id, records);
	drop_stream(js_admin, stream);
	unlink(qpath);
	free(qpath);
	free(ini);
	return (double)records / ((double)(t1 - t0) / 1e9);
}

/* ---- latency ------------------------------------------------------------------ */

/* How a latency sample is sent: the decimal nanoseconds in text. */
typedef void (*send_fn)(void *ctx, const char *text, int len);

/*
 * One record at a time through send, each awaited on an ordered JetStream
 * subscription of stream (the next is sent once the previous arrived: no
 * clock waits); the payload is CLOCK_REALTIME when it was sent.  p50, p99.
 */
static void measure(struct nu_cluster *c, const char *stream, const char *subject, send_fn send,
                    void *ctx, uint64_t *p50, uint64_t *p99)
{
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *sub = NULL;
	jsSubOptions so;
	uint64_t *lat = calloc((size_t)samples, sizeof(*lat));

	if (!lat)
		tu_die("calloc");
	if (!nu_connect(c, &nc, &js))
		fail("latency: connect");
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Ordered = true;
	if (js_SubscribeSync(&sub, js, subject, NULL, &so, NULL) != NATS_OK)
		fail("latency: subscribe: %s", nats_GetLastError(NULL));
	for (int i = 0; i < samples; i++) {
		char text[32], payload[32];
		uint64_t sent = now_ns(CLOCK_REALTIME), got;
		natsMsg *m = NULL;

		send(ctx, text, snprintf(text, sizeof(text), "%" PRIu64, sent));
		/* the first also waits for a consumer to connect and check the stream */
		if (natsSubscription_NextMsg(&m, sub, i ? 10000 : 30000) != NATS_OK)
			fail("latency: %s: record %d did not arrive", stream, i);
		got = now_ns(CLOCK_REALTIME);
		snprintf(payload, sizeof(payload), "%.*s", natsMsg_GetDataLength(m), natsMsg_GetData(m));
		natsMsg_Destroy(m);
		if (strtoull(payload, NULL, 10) != sent)
			fail("latency: %s: record %d is '%s', not %" PRIu64, stream, i, payload, sent);
		lat[i] = got - sent;
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	nu_disconnect(nc, js);
	qsort(lat, (size_t)samples, sizeof(*lat), cmp_u64);
	*p50 = lat[samples / 2];
	*p99 = lat[(size_t)samples * 99 / 100];
	free(lat);
}

/* mmapq: a line into the producer's stdin */
static void send_to_producer(void *ctx, const char *text, int len)
{
	int fd = *(int *)ctx;
	char line[40];

	len = snprintf(line, sizeof(line), "%.*s\n", len, text);
	if (tu_write_all(fd, line, (size_t)len) != 0)
		fail("latency: write to the producer");
}

/* bare: an asynchronous JetStream publish of this process */
static void send_bare(void *ctx, const char *text, int len)
{
	if (js_PublishAsync(ctx, "bench.latb", text, len, NULL) != NATS_OK)
		fail("latency: bare publish");
}

static void latency(struct nu_cluster *c, jsCtx *js_admin, const char *dir, uint64_t p[4])
{
	natsConnection *nc;
	jsCtx *js;
	char *ini;
	int in[2];
	pid_t prod, cons;

	if (!nu_add_stream(js_admin, "LAT", "bench.lat", 1, 120) ||
	    !nu_add_stream(js_admin, "LATB", "bench.latb", 1, 120))
		fail("latency: add stream");
	/* producer stdin -> queue -> mmapq-consumer -> stream */
	ini = write_config(dir, "lat", c, "LAT", "bench.lat", 4096);
	tu_pipe(in);
	prod = spawn("mmapq-producer", (char *[]){"--config", ini, NULL}, in[0]);
	close(in[0]);
	cons = spawn("mmapq-consumer", (char *[]){"--config", ini, NULL}, -1);
	measure(c, "LAT", "bench.lat", send_to_producer, &in[1], &p[0], &p[1]);
	close(in[1]);
	if (reap(prod, 30000) != 0)
		fail("latency: producer");
	kill(cons, SIGTERM);
	if (reap(cons, 30000) != 0)
		fail("latency: consumer");
	free(ini);
	/* this process -> stream, the same way to the subscriber */
	if (!nu_connect(c, &nc, &js))
		fail("latency: connect");
	measure(c, "LATB", "bench.latb", send_bare, js, &p[2], &p[3]);
	js_PublishAsyncComplete(js, NULL);
	nu_disconnect(nc, js);
}

static void usage(void)
{
	printf("usage: mmapq_bench_nats [--records N] [--runs R] [--samples S] [--bin-dir DIR]"
	       " [--quick]\n");
}

int main(int argc, char **argv)
{
	struct nu_cluster c;
	natsConnection *nc;
	jsCtx *js;
	double bare[MAXRUNS], fwd[MAXRUNS], mb, mf;
	uint64_t lat[4]; /* mmapq p50, p99; bare p50, p99 */
	char *dir, *input;
	FILE *f;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			quick = true;
			records = 20000;
			runs = 1;
			samples = 200;
		} else if (!strcmp(argv[i], "--records") && i + 1 < argc) {
			records = strtoll(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
			runs = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--samples") && i + 1 < argc) {
			samples = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--bin-dir") && i + 1 < argc) {
			bin_dir = argv[++i];
		} else {
			usage();
			return strcmp(argv[i], "--help") ? 64 : 0;
		}
	}
	if (records < 1 || records > 16777216 || runs < 1 || runs > MAXRUNS || samples < 2) {
		usage();
		return 64;
	}
	if (!nu_server_path()) {
		fprintf(stderr, "mmapq_bench_nats: SKIP: no nats-server (package nats-server)\n");
		return 77;
	}
	atexit(tu_kill_tracked);
	dir = tu_mkdtemp("bench-nats");
	input = tu_path(dir, "input");
	f = fopen(input, "w");
	if (!f)
		tu_die(input);
	for (int64_t i = 0; i < records; i++)
		fprintf(f, "%" PRId64 "\n", i);
	if (fclose(f) != 0)
		tu_die(input);
	nu_init(&c, dir, 1);
	if (!nu_start(&c, 0, 20000) || !nu_wait_jetstream(&c, 30000))
		fail("nats-server did not start");
	if (!nu_connect(&c, &nc, &js))
		fail("connect");
	for (int r = 0; r < runs; r++) {
		/* turns: a slow spell of the machine hits both alike */
		bare[r] = bare_run(&c, js, r);
		fwd[r] = mmapq_run(&c, js, dir, input, r);
		printf("run %d: bare libnats %.0f msg/s, mmapq-consumer --output nats %.0f msg/s\n", r + 1,
		       bare[r], fwd[r]);
		fflush(stdout);
	}
	latency(&c, js, dir, lat);
	nu_disconnect(nc, js);
	nu_free(&c);
	free(input);
	mb = median(bare, runs);
	mf = median(fwd, runs);
	printf("\n%" PRId64 " records of 1-7 bytes (decimal integers), one nats-server %s on"
	       " 127.0.0.1, file storage, window %d, median of %d run%s:\n", records,
	       "(Debian's)", WINDOW, runs, runs == 1 ? "" : "s");
	printf("| | messages/s |\n|---|---|\n| bare libnats async publisher | %.0f |\n"
	       "| mmapq-consumer, output = nats (queue -> stream, released after each ack) | %.0f |\n"
	       "| ratio mmapq / bare | %.2f |\n", mb, mf, mf / mb);
	printf("\nlatency to a JetStream subscriber, one record at a time, %d samples:\n"
	       "| | p50 | p99 |\n|---|---|---|\n"
	       "| producer stdin -> queue -> mmapq-consumer -> stream | %.0f us | %.0f us |\n"
	       "| bare: js_PublishAsync -> stream | %.0f us | %.0f us |\n", samples,
	       (double)lat[0] / 1e3, (double)lat[1] / 1e3, (double)lat[2] / 1e3, (double)lat[3] / 1e3);
	tu_rmdir_r(dir);
	return 0;
}
