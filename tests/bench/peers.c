/* SPDX-License-Identifier: MIT */
/*
 * peers.c -- what a user would run instead of the daemons (--peers): the
 * durability job's two inputs (64-byte lines, integers) moved from the
 * input file to an output file by a producer process and a consumer
 * process over
 *
 *   POSIX mq            one mq_send / mq_receive per record, the queue as
 *                       deep as the machine allows (mq_open_deepest);
 *   Redis Streams       redis-server started here on a unix socket of the
 *                       scratch directory, with a configuration of its
 *                       own: no persistence, then appendonly yes with
 *                       appendfsync everysec, then always; the producer
 *                       pipelines XADD (PEER_BATCH commands a flush), the
 *                       consumer reads with XREADGROUP COUNT PEER_BATCH
 *                       BLOCK 0 and acknowledges each batch with one XACK,
 *                       sent with the next read;
 *   NATS JetStream      nats-server started here (127.0.0.1, free ports,
 *                       natsutil.c) with a file-store stream; the producer
 *                       publishes asynchronously with at most PEER_WINDOW
 *                       acks in flight, the consumer fetches batches of
 *                       PEER_BATCH from a pull consumer (ack policy all)
 *                       and acknowledges the last of each.
 *
 * Both ends parse and format as the daemons do: the producer reads the
 * file through the records parser (format line, or int: each integer an
 * int64_t, 8 bytes, the payload sent), the consumer writes each line and
 * its '\n', or formats each integer; its output must equal the input byte
 * for byte.  The producer runs on cpu_a and the consumer on cpu_b, as the
 * daemons; a server is a third process, not pinned.  The server is started
 * and its stream, group or queue made before the clock starts (as the
 * daemons' queue file is); the clock runs from before the first fork to
 * both reaped.  A fresh server for every run, stopped after it.
 *
 * Every peer runs in each round of the durability job, after the daemons
 * of the same round: its time over theirs with sync = never, and (the
 * peers that write to disk: Redis with AOF, JetStream's file store) with
 * sync = batch and interval, the durability closest to theirs.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "fmt.h"
#include "mmapq.h"
#include "parse.h"
#include "testutil.h"

#ifdef MMAPQ_BENCH_REDIS
#include <hiredis/hiredis.h>
#endif
#ifdef MMAPQ_BENCH_NATS
#include "natsutil.h"
#endif

#define SERVER_START_MS 20000 /* a server's start, its stream made */

const char *const peer_key[NPEERS] = {"posix_mq", "redis", "redis_aof_everysec", "redis_aof_always",
                                      "jetstream_file"};
const enum dur_mode peer_base[NPEER_BASES] = {DM_NEVER, DM_BATCH, DM_INTERVAL};
struct peer_result peers[NDINPUTS][NPEERS];

const char *peer_label(int p)
{
	static const char *const label[NPEERS] = {
		"POSIX mq", "Redis Streams", "Redis AOF everysec", "Redis AOF always", "JetStream file",
	};
	return label[p];
}

bool peer_durable(int p)
{
	return p == P_REDIS_EVERYSEC || p == P_REDIS_ALWAYS || p == P_JETSTREAM;
}

/* What both children of a run need. */
struct peer_run {
	int p;
	uint32_t format;   /* MMAPQ_FORMAT_LINE or MMAPQ_FORMAT_INT */
	uint32_t size;     /* the largest record */
	uint64_t count;    /* records the consumer must receive */
	const char *input;
	char mq_name[64];
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* Redis's unix socket */
#ifdef MMAPQ_BENCH_NATS
	struct nu_cluster *nats;
#endif
};

#define STREAM "peers"
#define GROUP "g"
#define SUBJECT "peers.records"

/* ---- the two ends, whatever carries the records ------------------------------- */

static const char *input_name; /* the producer's input, for its messages */

static void parse_error(void *ctx, const struct mmapq_parse_error *e)
{
	(void)ctx;
	fprintf(stderr, "%s:%" PRIu64 ":%" PRIu64 ": %s\n", input_name, e->line, e->column, e->what);
}

/* The producer: the input file through the records parser, each record to
 * send(ctx, ...); flush(ctx) at the end (NULL: none).  0 or the child's
 * exit code. */
static int parse_input(const struct peer_run *r, int in_fd, mmapq_record_fn send, int (*flush)(void *),
                       void *ctx)
{
	struct mmapq_parser *p;
	char *buf = xalloc(PIPE_CHUNK);
	int e = mmapq_parser_new(r->format, r->size, send, parse_error, ctx, &p);

	input_name = r->input;
	if (e < 0)
		return child_fail("parser: %s", strerror(-e));
	if ((e = parser_feed_fd(p, in_fd, buf, "send")))
		return e;
	if ((e = mmapq_parser_finish(p)) < 0 || (flush && (e = flush(ctx)) < 0))
		return child_fail("send: %s", strerror(-e));
	if (mmapq_parser_errors(p))
		return child_fail("%" PRIu64 " bad input lines", mmapq_parser_errors(p));
	mmapq_parser_free(p);
	free(buf);
	return 0;
}

/* The consumer's output: each record as mmapq-consumer writes it (a line
 * and its '\n', an integer formatted), in blocks of PIPE_CHUNK. */
struct sink {
	int fd;
	uint32_t format;
	uint64_t got;
	size_t len;
	char *buf;
};

static struct sink sink_open(const struct peer_run *r, int fd)
{
	return (struct sink){.fd = fd, .format = r->format, .buf = xalloc(PIPE_CHUNK + DUR_LINE + 64)};
}

/* 0, or the child's exit code (a record of the wrong size, a failed write). */
static int sink_put(struct sink *s, const void *data, size_t len)
{
	if (s->format == MMAPQ_FORMAT_INT) {
		int64_t v;
		if (len != sizeof(v))
			return child_fail("record %" PRIu64 " has %zu bytes, not 8", s->got, len);
		memcpy(&v, data, sizeof(v));
		s->len += mmapq_fmt_int(s->buf + s->len, v);
	} else {
		if (len > DUR_LINE)
			return child_fail("record %" PRIu64 " has %zu bytes, more than %u", s->got, len, DUR_LINE);
		memcpy(s->buf + s->len, data, len);
		s->len += len;
		s->buf[s->len++] = '\n';
	}
	s->got++;
	if (s->len > PIPE_CHUNK) {
		int e = tu_write_all(s->fd, s->buf, s->len);
		if (e < 0)
			return child_fail("write output: %s", strerror(-e));
		s->len = 0;
	}
	return 0;
}

static int sink_close(struct sink *s, uint64_t expect)
{
	int e = tu_write_all(s->fd, s->buf, s->len);

	free(s->buf);
	if (e < 0)
		return child_fail("write output: %s", strerror(-e));
	if (s->got != expect)
		return child_fail("received %" PRIu64 " records, expected %" PRIu64, s->got, expect);
	return 0;
}

/* ---- POSIX mq ------------------------------------------------------------------ */

static int mq_send_one(void *ctx, const void *data, uint32_t len)
{
	mqd_t q = *(mqd_t *)ctx;

	while (mq_send(q, data, len, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int mq_producer(const void *ctx, int in_fd, int out_fd)
{
	const struct peer_run *r = ctx;
	mqd_t q = mq_open(r->mq_name, O_WRONLY | O_CLOEXEC);

	close(out_fd);
	if (q == (mqd_t)-1)
		return child_fail("mq_open %s: %s", r->mq_name, strerror(errno));
	return parse_input(r, in_fd, mq_send_one, NULL, &q);
}

static int mq_consumer(const void *ctx, int in_fd, int out_fd)
{
	const struct peer_run *r = ctx;
	mqd_t q = mq_open(r->mq_name, O_RDONLY | O_CLOEXEC);
	struct sink s = sink_open(r, out_fd);
	char buf[DUR_LINE > 8 ? DUR_LINE : 8];

	close(in_fd);
	if (q == (mqd_t)-1)
		return child_fail("mq_open %s: %s", r->mq_name, strerror(errno));
	while (s.got < r->count) {
		ssize_t k = mq_receive(q, buf, r->size, NULL);
		int e;
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return child_fail("mq_receive: %s", strerror(errno));
		if ((e = sink_put(&s, buf, (size_t)k)))
			return e;
	}
	return sink_close(&s, r->count);
}

/* ---- Redis Streams ------------------------------------------------------------- */

#ifdef MMAPQ_BENCH_REDIS
struct redis_prod {
	redisContext *c;
	unsigned pending; /* XADDs appended, their replies not read */
};

static int redis_replies(void *ctx)
{
	struct redis_prod *rp = ctx;

	for (; rp->pending; rp->pending--) {
		redisReply *reply = NULL;
		if (redisGetReply(rp->c, (void **)&reply) != REDIS_OK) {
			fprintf(stderr, "XADD: %s\n", rp->c->errstr);
			return -EIO;
		}
		if (reply->type != REDIS_REPLY_STRING) {
			fprintf(stderr, "XADD: %s\n", reply->type == REDIS_REPLY_ERROR ? reply->str : "not an id");
			freeReplyObject(reply);
			return -EPROTO;
		}
		freeReplyObject(reply);
	}
	return 0;
}

static int redis_xadd(void *ctx, const void *data, uint32_t len)
{
	struct redis_prod *rp = ctx;

	if (redisAppendCommand(rp->c, "XADD " STREAM " * d %b", data, (size_t)len) != REDIS_OK)
		return -ENOMEM;
	return ++rp->pending == PEER_BATCH ? redis_replies(ctx) : 0;
}

static redisContext *redis_connect(const char *sock)
{
	redisContext *c = redisConnectUnix(sock);

	if (!c || c->err) {
		fprintf(stderr, "redis %s: %s\n", sock, c ? c->errstr : "out of memory");
		if (c)
			redisFree(c);
		return NULL;
	}
	return c;
}

static int redis_producer(const void *ctx, int in_fd, int out_fd)
{
	const struct peer_run *r = ctx;
	struct redis_prod rp = {.c = redis_connect(r->sock)};
	int e;

	close(out_fd);
	if (!rp.c)
		return child_fail("producer: no connection");
	e = parse_input(r, in_fd, redis_xadd, redis_replies, &rp);
	redisFree(rp.c);
	return e;
}

static int redis_consumer(const void *ctx, int in_fd, int out_fd)
{
	const struct peer_run *r = ctx;
	redisContext *c = redis_connect(r->sock);
	struct sink s = sink_open(r, out_fd);
	/* XACK stream group id...: one id per record of the batch */
	const char **argv = xalloc((3 + PEER_BATCH) * sizeof(*argv));
	size_t *argl = xalloc((3 + PEER_BATCH) * sizeof(*argl));
	long long acking = 0; /* records of the XACK sent with this read */

	close(in_fd);
	if (!c)
		return child_fail("consumer: no connection");
	argv[0] = "XACK", argv[1] = STREAM, argv[2] = GROUP;
	for (int i = 0; i < 3; i++)
		argl[i] = strlen(argv[i]);
	while (s.got < r->count) {
		redisReply *reply = NULL, *entries;
		if (redisAppendCommand(c, "XREADGROUP GROUP " GROUP " c COUNT %d BLOCK 0 STREAMS " STREAM " >",
		                       PEER_BATCH) != REDIS_OK)
			return child_fail("XREADGROUP: out of memory");
		if (acking) {
			if (redisGetReply(c, (void **)&reply) != REDIS_OK)
				return child_fail("XACK: %s", c->errstr);
			if (reply->type != REDIS_REPLY_INTEGER || reply->integer != acking)
				return child_fail("XACK of %lld records: %s", acking,
				                  reply->type == REDIS_REPLY_ERROR ? reply->str : "another count");
			freeReplyObject(reply);
			acking = 0;
		}
		if (redisGetReply(c, (void **)&reply) != REDIS_OK)
			return child_fail("XREADGROUP: %s", c->errstr);
		/* [[stream, [[id, [field, value]], ...]]] */
		if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 1 ||
		    reply->element[0]->type != REDIS_REPLY_ARRAY || reply->element[0]->elements != 2 ||
		    (entries = reply->element[0]->element[1])->type != REDIS_REPLY_ARRAY)
			return child_fail("XREADGROUP after %" PRIu64 " records: %s", s.got,
			                  reply->type == REDIS_REPLY_ERROR ? reply->str : "not a stream's entries");
		if (entries->elements > PEER_BATCH)
			return child_fail("XREADGROUP COUNT %d: %zu entries", PEER_BATCH, entries->elements);
		for (size_t i = 0; i < entries->elements; i++) {
			const redisReply *en = entries->element[i], *fv;
			int e;
			if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 ||
			    en->element[0]->type != REDIS_REPLY_STRING || (fv = en->element[1])->type != REDIS_REPLY_ARRAY ||
			    fv->elements != 2 || fv->element[1]->type != REDIS_REPLY_STRING)
				return child_fail("XREADGROUP: entry %" PRIu64 " is not [id, [field, value]]", s.got);
			if ((e = sink_put(&s, fv->element[1]->str, fv->element[1]->len)))
				return e;
			argv[3 + i] = en->element[0]->str;
			argl[3 + i] = en->element[0]->len;
		}
		/* copied into the output buffer: sent with the next read */
		if (entries->elements &&
		    redisAppendCommandArgv(c, 3 + (int)entries->elements, argv, argl) != REDIS_OK)
			return child_fail("XACK: out of memory");
		acking = (long long)entries->elements;
		freeReplyObject(reply);
	}
	if (acking) {
		redisReply *reply = NULL;
		if (redisGetReply(c, (void **)&reply) != REDIS_OK || reply->type != REDIS_REPLY_INTEGER ||
		    reply->integer != acking)
			return child_fail("the last XACK: %s", reply ? "not every record" : c->errstr);
		freeReplyObject(reply);
	}
	redisFree(c);
	free(argv);
	free(argl);
	return sink_close(&s, r->count);
}
#endif

/* ---- NATS JetStream ---------------------------------------------------------- */

#ifdef MMAPQ_BENCH_NATS
static int js_failed_acks;

static void js_pub_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	(void)js;
	(void)closure;
	if (js_failed_acks++ == 0)
		fprintf(stderr, "JetStream publish: %s\n", natsStatus_GetText(pae->Err));
}

struct js_prod {
	jsCtx *js;
};

static int js_send(void *ctx, const void *data, uint32_t len)
{
	struct js_prod *jp = ctx;
	natsStatus s = js_PublishAsync(jp->js, SUBJECT, data, (int)len, NULL);

	if (s != NATS_OK) {
		fprintf(stderr, "js_PublishAsync: %s\n", natsStatus_GetText(s));
		return -EIO;
	}
	return 0;
}

static int js_complete(void *ctx)
{
	struct js_prod *jp = ctx;
	jsPubOptions po;
	natsStatus s;

	jsPubOptions_Init(&po);
	po.MaxWait = CHILD_TIMEOUT_MS;
	s = js_PublishAsyncComplete(jp->js, &po);
	if (s != NATS_OK) {
		fprintf(stderr, "js_PublishAsyncComplete: %s\n", natsStatus_GetText(s));
		return -EIO;
	}
	return js_failed_acks ? -EIO : 0;
}

static int js_producer(const void *ctx, int in_fd, int out_fd)
{
	const struct peer_run *r = ctx;
	natsConnection *nc;
	jsCtx *js;
	jsOptions jo;
	struct js_prod jp;
	int e;

	close(out_fd);
	if (!nu_connect(r->nats, &nc, &js))
		return child_fail("producer: no connection");
	jsCtx_Destroy(js);
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = PEER_WINDOW;
	jo.PublishAsync.ErrHandler = js_pub_error;
	/* a full window waits for acks, as long as a run may last */
	jo.PublishAsync.StallWait = CHILD_TIMEOUT_MS;
	if (natsConnection_JetStream(&jp.js, nc, &jo) != NATS_OK)
		return child_fail("producer: JetStream context");
	e = parse_input(r, in_fd, js_send, js_complete, &jp);
	nu_disconnect(nc, jp.js);
	return e;
}

static int js_consumer(const void *ctx, int in_fd, int out_fd)
{
	const struct peer_run *r = ctx;
	struct sink s = sink_open(r, out_fd);
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *sub = NULL;
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsStatus st;

	close(in_fd);
	if (!nu_connect(r->nats, &nc, &js))
		return child_fail("consumer: no connection");
	jsSubOptions_Init(&so);
	so.Stream = STREAM;
	so.Config.AckPolicy = js_AckAll;
	so.Config.DeliverPolicy = js_DeliverAll;
	so.Config.MaxRequestBatch = PEER_BATCH;
	so.Config.MaxAckPending = 4 * PEER_BATCH;
	st = js_PullSubscribe(&sub, js, SUBJECT, "consumer", NULL, &so, &jerr);
	if (st != NATS_OK)
		return child_fail("pull subscription: %s (%s)", natsStatus_GetText(st), nats_GetLastError(NULL));
	while (s.got < r->count) {
		natsMsgList list = {0};
		uint64_t left = r->count - s.got;
		int want = left > PEER_BATCH ? PEER_BATCH : (int)left, e;

		st = natsSubscription_Fetch(&list, sub, want, 5000, &jerr);
		if (st == NATS_TIMEOUT)
			continue; /* the producer is behind: the run's own deadline bounds it */
		if (st != NATS_OK)
			return child_fail("fetch after %" PRIu64 " records: %s", s.got, natsStatus_GetText(st));
		for (int i = 0; i < list.Count; i++)
			if ((e = sink_put(&s, natsMsg_GetData(list.Msgs[i]), (size_t)natsMsg_GetDataLength(list.Msgs[i]))))
				return e;
		/* ack policy all: the last acknowledges the batch */
		if (list.Count && (st = natsMsg_Ack(list.Msgs[list.Count - 1], NULL)) != NATS_OK)
			return child_fail("ack: %s", natsStatus_GetText(st));
		natsMsgList_Destroy(&list);
	}
	if ((st = natsConnection_FlushTimeout(nc, 10000)) != NATS_OK)
		return child_fail("the last ack: %s", natsStatus_GetText(st));
	natsSubscription_Destroy(sub);
	nu_disconnect(nc, js);
	return sink_close(&s, r->count);
}
#endif

/* ---- the servers ------------------------------------------------------------- */

struct server {
	pid_t pid;
	char *dir;
#ifdef MMAPQ_BENCH_NATS
	struct nu_cluster nats;
	bool nats_init;
#endif
};

#ifdef MMAPQ_BENCH_REDIS
static bool unix_accepts(const char path[sizeof(((struct sockaddr_un *)0)->sun_path)])
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	memcpy(a.sun_path, path, strlen(path) + 1); /* its length checked: redis_start */
	if (fd < 0)
		return false;
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static const char *in_path(const char *const where[], size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (access(where[i], X_OK) == 0)
			return where[i];
	return NULL;
}

/* redis-server with a configuration of its own, on a unix socket in
 * srv->dir; until it accepts, and the stream and its group are made. */
static int redis_start(int p, struct server *srv, struct peer_run *r, char *why, size_t whylen)
{
	static const char *const where[] = {"/usr/bin/redis-server", "/usr/sbin/redis-server",
	                                    "/usr/local/bin/redis-server"};
	const char *prog = in_path(where, sizeof(where) / sizeof(where[0]));
	char *conf, *text, *log = tu_path(srv->dir, "redis.log");
	uint64_t end = tu_now_ms() + SERVER_START_MS;
	redisContext *c;
	redisReply *reply;

	if (!prog) {
		snprintf(why, whylen, "no redis-server (tests/deps.sh --test installs redis-server)");
		free(log);
		return -1;
	}
	if ((size_t)snprintf(r->sock, sizeof(r->sock), "%s/redis.sock", srv->dir) >= sizeof(r->sock)) {
		snprintf(why, whylen, "%s/redis.sock: longer than a unix socket's path may be", srv->dir);
		free(log);
		return -1;
	}
	text = tu_xasprintf("port 0\nunixsocket %s\nunixsocketperm 700\ndir %s\nlogfile %s\n"
	                    "daemonize no\nsave \"\"\ndatabases 1\nappendonly %s\n%s",
	                    r->sock, srv->dir, log, p == P_REDIS ? "no" : "yes",
	                    p == P_REDIS_ALWAYS ? "appendfsync always\n" :
	                    p == P_REDIS_EVERYSEC ? "appendfsync everysec\n" : "");
	conf = tu_write_in(srv->dir, "redis.conf", text);
	free(text);
	srv->pid = fork();
	if (srv->pid == 0) {
		int dn = open("/dev/null", O_RDWR);
		/* gone with the benchmark, however it ends */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dn >= 0) {
			dup2(dn, STDIN_FILENO);
			dup2(dn, STDOUT_FILENO);
		}
		execl(prog, "redis-server", conf, (char *)NULL);
		_exit(127);
	}
	free(conf);
	if (srv->pid < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		free(log);
		return -1;
	}
	tu_track(srv->pid);
	while (!unix_accepts(r->sock)) {
		int st;
		if (waitpid(srv->pid, &st, WNOHANG) == srv->pid) {
			tu_untrack(srv->pid);
			srv->pid = 0;
			char *said = tu_read_file(log, NULL), *last = said ? said + strlen(said) : NULL;
			/* its log goes with the scratch directory: its last line here */
			while (last && last > said && last[-1] == '\n')
				*--last = '\0';
			while (last && last > said && last[-1] != '\n')
				last--;
			snprintf(why, whylen, "redis-server exited %d at start (its stderr above; its log: %.120s)",
			         tu_exit_code(st), last && *last ? last : "empty");
			free(said);
			free(log);
			return -1;
		}
		if (tu_now_ms() >= end) {
			snprintf(why, whylen, "redis-server: %s does not accept within %d ms", r->sock, SERVER_START_MS);
			free(log);
			return -1;
		}
		sched_yield();
	}
	free(log);
	c = redisConnectUnix(r->sock);
	if (!c || c->err) {
		snprintf(why, whylen, "redis %s: %s", r->sock, c ? c->errstr : "out of memory");
		if (c)
			redisFree(c);
		return -1;
	}
	reply = redisCommand(c, "XGROUP CREATE " STREAM " " GROUP " 0 MKSTREAM");
	if (!reply || reply->type != REDIS_REPLY_STATUS) {
		snprintf(why, whylen, "XGROUP CREATE: %s", reply ? reply->str ? reply->str : "?" : c->errstr);
		if (reply)
			freeReplyObject(reply);
		redisFree(c);
		return -1;
	}
	freeReplyObject(reply);
	redisFree(c);
	return 0;
}
#endif

#ifdef MMAPQ_BENCH_NATS
/* nats-server (natsutil.c: one node, JetStream, its store in srv->dir),
 * and the file-store stream.  The stream is made by a child: libnats
 * starts threads, which the parent must not have when it forks the ends. */
static int nats_start(struct server *srv, struct peer_run *r, char *why, size_t whylen)
{
	pid_t pid;
	int st;

	if (!nu_server_path()) {
		snprintf(why, whylen, "no nats-server (tests/deps.sh --test installs nats-server)");
		return -1;
	}
	nu_init(&srv->nats, srv->dir, 1);
	srv->nats_init = true;
	r->nats = &srv->nats;
	if (!nu_start(&srv->nats, 0, SERVER_START_MS)) {
		snprintf(why, whylen, "nats-server did not start (see above and %s)", srv->dir);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		natsConnection *nc;
		jsCtx *js;
		bool ok = nu_wait_jetstream(&srv->nats, SERVER_START_MS) && nu_connect(&srv->nats, &nc, &js) &&
		          nu_add_stream(js, STREAM, SUBJECT, 1, 0);
		_exit(ok ? 0 : 1);
	}
	st = pid > 0 ? tu_wait(pid, 2 * SERVER_START_MS) : -1;
	if (st == -ETIMEDOUT)
		tu_kill(pid);
	if (pid < 0 || tu_exit_code(st) != 0) {
		snprintf(why, whylen, "nats-server: JetStream or the stream not there (see above)");
		return -1;
	}
	return 0;
}
#endif

static void server_stop(struct server *srv)
{
	if (srv->pid > 0) {
		tu_kill(srv->pid);
		tu_untrack(srv->pid);
	}
#ifdef MMAPQ_BENCH_NATS
	if (srv->nats_init) {
		nu_stop_all(&srv->nats);
		free(srv->nats.node[0].conf);
		free(srv->nats.node[0].store);
		free(srv->nats.dir);
	}
#endif
	tu_rmdir_r(srv->dir);
	free(srv->dir);
}

/* ---- a run --------------------------------------------------------------------- */

/* The server, the queue or stream: 0, or -1 and why.  *left, *right: the ends. */
static int peer_setup(struct peer_run *r, struct server *srv, long *depth, pipe_end_fn **left,
                      pipe_end_fn **right, char *why, size_t whylen)
{
	switch (r->p) {
	case P_MQ: {
		mqd_t q;
		snprintf(r->mq_name, sizeof(r->mq_name), "/mmapq-bench-peer-%d", (int)getpid());
		*depth = mq_open_deepest(r->mq_name, r->size, &q);
		if (*depth == -1) {
			snprintf(why, whylen, "%u-byte messages are not possible (msgsize_max %ld)", r->size,
			         msgsize_max);
			return -1;
		}
		if (*depth < 0) {
			snprintf(why, whylen, "mq_open: %s", strerror(errno));
			return -1;
		}
		mq_close(q); /* it stays until unlinked; each end opens it */
		*left = mq_producer;
		*right = mq_consumer;
		return 0;
	}
	case P_REDIS:
	case P_REDIS_EVERYSEC:
	case P_REDIS_ALWAYS:
#ifdef MMAPQ_BENCH_REDIS
		*left = redis_producer;
		*right = redis_consumer;
		return redis_start(r->p, srv, r, why, whylen);
#else
		(void)srv;
		snprintf(why, whylen, "built without hiredis (libhiredis-dev: tests/deps.sh --test)");
		return -1;
#endif
	default:
#ifdef MMAPQ_BENCH_NATS
		*left = js_producer;
		*right = js_consumer;
		return nats_start(srv, r, why, whylen);
#else
		snprintf(why, whylen, "built without libnats (libnats-dev: tests/deps.sh)");
		return -1;
#endif
	}
}

static int peer_run_once(int in, int p, long *depth, double *secs, char *why, size_t whylen)
{
	static const char *const names[2] = {"producer", "consumer"};
	const struct dur_input *src = &dur_input[in][0];
	struct peer_run r = {
		.p = p, .format = in == DIN_LINES ? MMAPQ_FORMAT_LINE : MMAPQ_FORMAT_INT,
		.size = in == DIN_LINES ? DUR_LINE : 8, .count = src->records,
		.input = src->path,
	};
	struct server srv = {.dir = tu_path(tmpdir, "peer")};
	char *out = tu_path(tmpdir, "peer.out");
	pipe_end_fn *left = NULL, *right = NULL;
	struct child_use use[2];
	int ret = -1;

	tu_rmdir_r(srv.dir);
	unlink(out);
	if (mkdir(srv.dir, 0700) < 0) {
		snprintf(why, whylen, "mkdir %s: %s", srv.dir, strerror(errno));
		goto out;
	}
	if (peer_setup(&r, &srv, depth, &left, &right, why, whylen) < 0)
		goto out;
	if (pipe_pair(src->path, out, left, right, &r, names, secs, use, why, whylen) < 0 ||
	    files_equal(src->path, out, why, whylen) < 0)
		goto out;
	ret = 0;
out:
	if (r.mq_name[0])
		mq_unlink(r.mq_name);
	server_stop(&srv);
	unlink(out);
	free(out);
	return ret;
}

void peer_once(int in, int p)
{
	struct peer_result *res = &peers[in][p];
	double s = 0;

	res->ran = true;
	if (res->failed)
		return;
	if (peer_run_once(in, p, &res->depth, &s, res->why, sizeof(res->why)) < 0) {
		res->failed = true;
		failed = true;
		note("peers: %s, %s: FAILED: %s", dur_in_key[in], peer_label(p), res->why);
		return;
	}
	total_verified += dur_input[in][0].records;
	res->secs[res->nruns] = s;
	res->rps[res->nruns++] = (double)dur_input[in][0].records / s;
}

void peers_summarize(void)
{
	for (int in = 0; in < NDINPUTS; in++)
		for (int p = 0; p < NPEERS; p++) {
			struct peer_result *res = &peers[in][p];
			if (res->failed || !res->nruns)
				continue;
			spread(res->rps, res->nruns, &res->med_rps, &res->lo_rps, &res->hi_rps);
			res->med_secs = median(res->secs, res->nruns);
			for (int b = 0; b < NPEER_BASES; b++) {
				const struct dur_result *d = &dur[in][peer_base[b]];
				double ratio[MAX_RUNS];
				if ((b && !peer_durable(p)) || d->failed || d->nruns != res->nruns)
					continue;
				for (int i = 0; i < res->nruns; i++)
					ratio[i] = res->secs[i] / d->secs[i];
				spread(ratio, res->nruns, &res->over[b][0], &res->over[b][1], &res->over[b][2]);
			}
			note("peers: %-5s %-18s %7.3f s  %10.0f records/s  %.1fx the daemons' time (never)", dur_in_key[in],
			     peer_label(p), res->med_secs, res->med_rps, res->over[0][0]);
		}
}
