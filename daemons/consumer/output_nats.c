/* SPDX-License-Identifier: MIT */
/*
 * output_nats.c -- output nats: every record becomes one message of a NATS
 * JetStream stream, and leaves the queue only once the broker has
 * acknowledged it.
 *
 * The loop's part (main.c) is the same as for any output (output.h): while
 * this output holds records (published, not yet released) the loop waits
 * here instead of on the queue (busy, wait); it hands the records that
 * follow the held ones to deliver, which publishes them as far as the
 * window goes, and complete says how many of the oldest the broker has
 * acknowledged, in order: exactly those are released.
 *
 * What is sent, per record: the payload, the record's bytes as they are
 * (a line without a line end; a binary record, whatever its bytes, of any
 * length up to max_record; an int in decimal), and the headers
 *   Nats-Msg-Id: <queue id, 32 hex digits>:<seq>
 *   Mmapq-Seq: <seq>
 *   Nats-Expected-Last-Msg-Id: <queue id>:<seq - 1>   ([nats] ordered = yes)
 * The queue id (mmapq_status.id) is random per queue file, so the ids of
 * two queues, on one host or many, never collide.
 *
 * Exactly once in the stream.  Records are published asynchronously, at
 * most [nats] max_pending of them not yet released; each ack (a libnats
 * thread) marks its record, and the consumer releases the longest run of
 * acknowledged records from the oldest.  A consumer killed at any instant
 * has released only acknowledged records, so its successor publishes
 * again only records the stream may or may not have (from the stored
 * head), under the same Nats-Msg-Id: JetStream's duplicate window drops
 * those it has, and acknowledges them as duplicates.  This holds while the
 * successor comes within the stream's duplicate window of the first
 * publication (2 minutes by default); later, a record the stream stored
 * but had not acknowledged can be stored twice.
 *
 * Order in the stream.  A failure in the middle of the window (a leader
 * election, a lost connection, a timeout) may lose record N while N+1 is
 * stored; publishing N again would put it after N+1.  With [nats] ordered
 * = yes every record but the first of a run carries
 * Nats-Expected-Last-Msg-Id of its predecessor: the server stores it only
 * right after that one, so nothing after a lost record is ever stored;
 * after any failure the output takes back every unacknowledged record
 * (js_PublishAsyncGetPendingList) and publishes them again from the oldest,
 * which starts a new run.  The stream must then hold this queue's records
 * only.  With ordered = no, records of several queues may share a stream,
 * and a failure in the middle of the window may store some out of order
 * (never lost, never twice).
 *
 * Broker trouble is not an error: a lost connection, a server or stream
 * leader that does not answer, slow or missing acks keep the records in
 * the queue (the producer fills it meanwhile), libnats reconnects with
 * pauses from 0.1 s doubling to [nats] reconnect_max_wait, failed records
 * are published again after a pause that doubles the same way; STATUS=
 * says what is going on, the log says it once (collapsed).  What retrying
 * cannot fix ends the consumer with -EREMOTEIO (exit 76, not restarted by
 * systemd), after a message that names the setting: no such stream (and
 * create_stream = no), a stream that does not capture the subject, the
 * credentials refused, permission denied for the subject, a record larger
 * than the stream or the server accepts (the server's max_payload is
 * checked against max_record at every connection: a queue whose records
 * could be larger is refused before any is sent), JetStream not enabled.
 * Before it
 * exits, the consumer waits (about a second, drain) for the acks
 * of what is still in flight and releases what the stream acknowledged
 * before the refused record, in order: a successor started later than
 * the duplicate window does not publish those again.
 *
 * Threads.  The consumer's thread publishes (js_PublishMsgAsync) and
 * releases; libnats calls on_ack from the thread of its reply
 * subscription and the connection callbacks from its own.  Those only
 * mark what happened under o->mu and wake the consumer if it waits; all
 * decisions, logging and libnats calls other than publishing stay in the
 * consumer's thread.  libnats's threads are started with SIGTERM, SIGINT
 * and SIGHUP blocked, so the consumer's thread gets them (and its waits
 * end at once, as without NATS).
 *
 * The window.  At most max_pending records, and INFLIGHT_BYTES of their
 * payloads in flight (a record larger than that alone).  Records index 0
 * .. sent-1 of the available ones (sequence
 * numbers base .. base+sent-1) have been published and not released; each
 * has a slot in a ring of max_pending (rounded up to a power of two),
 * indexed by sequence number: SENT (in flight: its natsMsg is noted, as
 * the identity of this attempt), ACKED, FAILED, or FREE (taken back, to be
 * published again).  A positive ack is a fact whatever attempt it answers
 * (the record is in the stream); a negative one counts only for the
 * attempt still in flight.  The acked prefix (ACKED from index 0) is what
 * the consumer may release.
 *
 * A run.  After a failure (a negative ack, a timeout, a lost connection, a
 * publish that libnats refused) every record not acknowledged is taken
 * back (js_PublishAsyncGetPendingList: late acks of those are dropped by
 * libnats), and publishing starts again at the oldest of them after a
 * pause; its first record is published without Nats-Expected-Last-Msg-Id
 * (the stream may have stored it or not: the duplicate window tells),
 * every later one with its predecessor's id.  A run also starts when the
 * consumer starts.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "fault.h"
#include "fmt.h"
#include "log.h"
#include "output.h"
#include "signals.h"

#define PUB_BATCH      64u          /* records made into messages, then published */
/* Payload bytes in flight at most (but one record, whatever its size):
 * libnats keeps a copy of each message until its ack, so the window is
 * bounded in bytes too, not only by [nats] max_pending records. */
#define INFLIGHT_BYTES (32u << 20)
#define BACKOFF_MIN_NS 100000000u   /* 0.1 s: the first pause after a failure */
#define API_WAIT_MS    4000         /* JetStream API requests: within half the watchdog */
#define ID_HEX         (2 * MMAPQ_ID_SIZE)
#define MSG_ID_MAX     (ID_HEX + 1 + 20 + 1) /* "<id>:<seq>" */
/* The most the headers of a message take of the server's max_payload:
 * "NATS/1.0\r\n", "Nats-Msg-Id: <id>:<seq>\r\n" (68), "Mmapq-Seq: <seq>\r\n"
 * (33), "Nats-Expected-Last-Msg-Id: <id>:<seq>\r\n" (82) and "\r\n": 195. */
#define HEADERS_MAX    256

enum slot_state { SLOT_FREE, SLOT_SENT, SLOT_ACKED, SLOT_FAILED };

struct slot {
	natsMsg *msg;       /* the attempt in flight (identity only: libnats owns it) */
	uint64_t sent_ns;
	uint32_t len;       /* its payload's bytes, counted in inflight_bytes while SENT */
	uint8_t state;
};

/* What went wrong with a record (from on_ack). */
struct failure {
	uint64_t seq;
	natsStatus status;
	jsErrCode code;     /* JetStream's err_code (status.h), 0 if none */
	char text[200];
};

struct nats_out {
	struct output out;      /* first: the output it is */
	/* settings (copied: the configuration may be reloaded) */
	char *servers_text, *subject, *stream, *credentials, *tls_ca, *tls_cert, *tls_key;
	char **servers;
	int nservers;
	char id_hex[ID_HEX + 1];
	bool ordered, create_stream, tls;
	uint32_t format, max_record, replicas, storage, duplicate_window, reconnect_max_s;
	uint32_t window, mask;
	uint64_t ack_timeout_ns;
	int64_t connect_timeout_ms;

	natsOptions *opts;
	natsConnection *nc;
	jsCtx *js;
	sigset_t ours;              /* the signals libnats threads must not take */

	pthread_mutex_t mu;
	pthread_cond_t cond;
	/* under mu: the window (written by both threads) ... */
	struct slot *ring;
	uint64_t base;              /* sequence number of record index 0 */
	uint32_t sent;              /* records published (and not released) */
	uint32_t inflight;          /* of those, SENT */
	uint64_t inflight_bytes;    /* their payloads' bytes: libnats holds a copy of each */
	uint32_t acked_new;         /* acks since the consumer last looked */
	uint32_t wake_after;        /* acks that make it worth waking the consumer */
	bool waiting;               /* the consumer sleeps in nats_wait */
	bool failed;                /* a record of this run failed: fail says which */
	struct failure fail;
	/* ... and what libnats's threads saw */
	bool connected, closed;
	unsigned disconnects, connects;
	natsStatus async_status;    /* an asynchronous error (permissions) */
	char async_text[256];
	uint64_t next_reconnect_ns;
	uint64_t jitter;            /* state of the reconnect pauses' jitter */

	/* the consumer's thread only */
	unsigned seen_disconnects, seen_connects;
	bool ever_connected, verified, run_first, threads_ready, shutting_down;
	uint64_t retry_at_ns, backoff_ns, trouble_since_ns;
	char trouble[256];          /* "" when all is well */
	uint64_t acked_total, published_total, republished_total;
	uint64_t reconnects;        /* connections made again after one was lost */
	uint64_t last_ack_usec;     /* CLOCK_REALTIME when an ack last released records */
	uint64_t health_acked, health_reconnects; /* as nats_health last said them */
	uint64_t dup_window_ns;
	struct log_limit lim;
	char status[512];
};

/* ---- small helpers ------------------------------------------------------ */

static uint64_t now_ns(void)
{
	return mmapq_now_ns();
}

/* CLOCK_REALTIME in microseconds, as the queue file keeps times. */
static uint64_t realtime_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct timespec abs_monotonic(uint64_t ns)
{
	return (struct timespec){.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
}

static struct slot *slot_of(struct nats_out *o, uint64_t seq)
{
	return &o->ring[seq & o->mask];
}

/* libnats's own words for its last error in this thread. */
static const char *nats_text(natsStatus s)
{
	const char *t = nats_GetLastError(NULL);

	return t && *t ? t : natsStatus_GetText(s);
}

static void msg_id(const struct nats_out *o, uint64_t seq, char out[MSG_ID_MAX])
{
	snprintf(out, MSG_ID_MAX, "%s:%" PRIu64, o->id_hex, seq);
}

/* "SUBJECT" matches FILTER (NATS wildcards: '*' one token, '>' the rest)? */
static bool subject_matches(const char *filter, const char *subject)
{
	for (;;) {
		size_t fl = strcspn(filter, "."), sl = strcspn(subject, ".");

		if (fl == 1 && filter[0] == '>')
			return sl > 0;
		if (!(fl == 1 && filter[0] == '*') && (fl != sl || memcmp(filter, subject, fl)))
			return false;
		filter += fl;
		subject += sl;
		if (!*filter || !*subject)
			return !*filter && !*subject;
		filter++;
		subject++;
	}
}

/* ---- libnats's threads: mark, and wake the consumer ---------------------- */

static void wake_locked(struct nats_out *o)
{
	if (o->waiting)
		pthread_cond_signal(&o->cond);
}

/* (the signature is libnats's jsPubAckHandler) */
// cppcheck-suppress constParameter
static void on_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct nats_out *o = closure;
	const char *v = NULL;
	uint64_t seq;

	(void)js;
	if (natsMsgHeader_Get(m, "Mmapq-Seq", &v) != NATS_OK || !v) {
		natsMsg_Destroy(m);
		return;
	}
	seq = strtoull(v, NULL, 10);
	pthread_mutex_lock(&o->mu);
	if (seq >= o->base && seq - o->base < o->sent) {
		struct slot *s = slot_of(o, seq);

		if (pa && s->state != SLOT_ACKED) {
			/* in the stream, whichever attempt this answers */
			if (s->state == SLOT_SENT) {
				o->inflight--;
				o->inflight_bytes -= s->len;
			}
			s->state = SLOT_ACKED;
			o->acked_new++;
		} else if (pae && s->state == SLOT_SENT && s->msg == m) {
			s->state = SLOT_FAILED;
			o->inflight--;
			o->inflight_bytes -= s->len;
			if (!o->failed || seq < o->fail.seq) {
				o->failed = true;
				o->fail.seq = seq;
				o->fail.status = pae->Err;
				o->fail.code = pae->ErrCode;
				snprintf(o->fail.text, sizeof(o->fail.text), "%s",
				         pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
			}
		}
		if (o->failed || o->inflight == 0 || o->acked_new >= o->wake_after)
			wake_locked(o);
	}
	pthread_mutex_unlock(&o->mu);
	natsMsg_Destroy(m);
}

/* What libnats's thread saw of the connection, noted for the consumer. */
static void note_connection(struct nats_out *o, bool connected, unsigned *counter)
{
	pthread_mutex_lock(&o->mu);
	o->connected = connected;
	(*counter)++;
	wake_locked(o);
	pthread_mutex_unlock(&o->mu);
}

static void on_connected(natsConnection *nc, void *closure)
{
	struct nats_out *o = closure;

	(void)nc;
	note_connection(o, true, &o->connects);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	struct nats_out *o = closure;

	(void)nc;
	note_connection(o, false, &o->disconnects);
}

static void on_closed(natsConnection *nc, void *closure)
{
	struct nats_out *o = closure;

	(void)nc;
	pthread_mutex_lock(&o->mu);
	o->connected = false;
	o->closed = true;
	wake_locked(o);
	pthread_mutex_unlock(&o->mu);
}

/* Asynchronous errors: a permissions violation (the server drops what it
 * refused: the acks would just never come), a slow consumer. */
static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	struct nats_out *o = closure;
	const char *text = NULL;

	(void)sub;
	if (natsConnection_GetLastError(nc, &text) == NATS_OK || !text)
		text = natsStatus_GetText(err);
	pthread_mutex_lock(&o->mu);
	if (!o->async_status || err == NATS_NOT_PERMITTED) {
		o->async_status = err;
		snprintf(o->async_text, sizeof(o->async_text), "%s", text);
	}
	wake_locked(o);
	pthread_mutex_unlock(&o->mu);
}

/* Pauses between rounds of the servers: 0.1 s doubling up to
 * reconnect_max_wait, with up to a tenth more at random so that many
 * consumers do not come back in step. */
static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
	struct nats_out *o = closure;
	int64_t ms = 100, max = (int64_t)o->reconnect_max_s * 1000;

	(void)nc;
	for (int i = 1; i < attempts && ms < max; i++)
		ms *= 2;
	if (ms > max)
		ms = max;
	pthread_mutex_lock(&o->mu);
	/* a 64-bit LCG (Knuth's MMIX constants) for the jitter: no security
	 * meaning, and rand() is one shared state for every thread */
	o->jitter = o->jitter * 6364136223846793005u + 1442695040888963407u;
	ms += (int64_t)((o->jitter >> 33) % (uint64_t)(ms / 10 + 1));
	o->next_reconnect_ns = now_ns() + (uint64_t)ms * 1000000u;
	pthread_mutex_unlock(&o->mu);
	return ms;
}

/* ---- setting up ---------------------------------------------------------- */

/* A file a setting names must be readable: say so here, in our words. */
static int check_file(const char *key, const char *path)
{
	int fd;

	if (!*path)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int r = -errno;
		log_error("[nats] %s = %s: cannot read it: %s", key, path, strerror(-r));
		return r;
	}
	close(fd);
	return 0;
}

static int set_failed(const char *what, natsStatus s)
{
	log_error("%s: %s", what, nats_text(s));
	return s == NATS_NO_MEMORY ? -ENOMEM : -EINVAL;
}

/* [nats] servers, split at the commas, blanks dropped, "nats://" put
 * before a bare HOST:PORT (the configuration checked the syntax). */
static int split_servers(struct nats_out *o)
{
	/* a copy to cut up: servers_text stays whole for the messages */
	char *save = NULL, *text = strdup(o->servers_text);
	int r = 0;

	o->servers = calloc(MMAPQ_NATS_SERVERS_MAX, sizeof(*o->servers));
	if (!o->servers || !text) {
		free(text);
		return -ENOMEM;
	}
	for (char *t = strtok_r(text, ",", &save); t && o->nservers < MMAPQ_NATS_SERVERS_MAX;
	     t = strtok_r(NULL, ",", &save)) {
		char *end = t + strlen(t);

		while (*t == ' ' || *t == '\t')
			t++;
		while (end > t && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (!strncmp(t, "tls://", 6))
			o->tls = true;
		if (strstr(t, "://") ? !(o->servers[o->nservers] = strdup(t)) :
		    asprintf(&o->servers[o->nservers], "nats://%s", t) < 0) {
			o->servers[o->nservers] = NULL;
			r = -ENOMEM;
			break;
		}
		o->nservers++;
	}
	free(text);
	return r;
}

/* Whom to connect to and how to prove who we are: servers, credentials,
 * TLS (the files were checked).  0 or -errno (said). */
static int secure_options(const struct nats_out *o, natsOptions *op)
{
	natsStatus s = natsOptions_SetServers(op, (const char **)o->servers, o->nservers);

	if (s != NATS_OK)
		return set_failed("[nats] servers", s);
	if (*o->credentials &&
	    (s = natsOptions_SetUserCredentialsFromFiles(op, o->credentials, NULL)) != NATS_OK)
		return set_failed("[nats] credentials", s);
	if (o->tls && (s = natsOptions_SetSecure(op, true)) != NATS_OK)
		return set_failed("[nats] TLS", s);
	if (*o->tls_ca && (s = natsOptions_LoadCATrustedCertificates(op, o->tls_ca)) != NATS_OK)
		return set_failed("[nats] tls_ca", s);
	if (*o->tls_cert &&
	    (s = natsOptions_LoadCertificatesChain(op, o->tls_cert, o->tls_key)) != NATS_OK)
		return set_failed("[nats] tls_cert, tls_key", s);
	return 0;
}

static int make_options(struct nats_out *o, const struct mmapq_config *cfg)
{
	natsOptions *op = NULL;
	natsStatus s;
	int r;

	r = split_servers(o);
	if (r < 0)
		return r;
	if ((r = check_file("credentials", cfg->nats_credentials)) < 0 ||
	    (r = check_file("tls_ca", cfg->nats_tls_ca)) < 0 ||
	    (r = check_file("tls_cert", cfg->nats_tls_cert)) < 0 ||
	    (r = check_file("tls_key", cfg->nats_tls_key)) < 0)
		return r;
	s = natsOptions_Create(&op);
	if (s != NATS_OK)
		return set_failed("NATS options", s);
	o->opts = op;
	o->tls = o->tls || *cfg->nats_tls_ca || *cfg->nats_tls_cert;
	r = secure_options(o, op);
	if (r < 0)
		return r;
	s = natsOptions_SetName(op, "mmapq-consumer");
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(op, (int64_t)cfg->nats_connect_timeout * 1000);
	/* never give up: the records wait in the queue meanwhile */
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(op, -1);
	if (s == NATS_OK)
		s = natsOptions_SetCustomReconnectDelay(op, reconnect_delay, o);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(op, true, on_connected, o);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(op, on_disconnected, o);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(op, on_connected, o);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(op, on_closed, o);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(op, on_error, o);
	/* a connection that went silent (no RST: a partition) is found within
	 * about two ack timeouts, not libnats's two minutes */
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(op, (int64_t)cfg->nats_ack_timeout * 1000);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPingsOut(op, 2);
	if (s == NATS_OK)
		s = natsOptions_SetFailRequestsOnDisconnect(op, true);
	return s == NATS_OK ? 0 : set_failed("NATS options", s);
}

/* libnats starts threads in connect and in the first asynchronous publish
 * (its reply subscription): with our signals blocked, so that they come to
 * the consumer's thread. */
static void block_ours(const struct nats_out *o, sigset_t *old)
{
	pthread_sigmask(SIG_BLOCK, &o->ours, old);
}

static void unblock_ours(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static const struct output_ops nats_ops;

static void nats_close(struct nats_out *o);
static int check_max_payload(struct nats_out *o);

/* The settings, copied (a reload may change the configuration), and the
 * window.  0, or -ENOMEM. */
static int take_settings(struct nats_out *o, const struct mmapq_config *cfg, const uint8_t *id)
{
	pthread_condattr_t ca;
	uint32_t w = 1;

	while (w < cfg->nats_max_pending)
		w <<= 1;
	o->window = cfg->nats_max_pending;
	o->mask = w - 1;
	o->ring = calloc(w, sizeof(*o->ring));
	o->servers_text = strdup(cfg->nats_servers);
	o->subject = strdup(cfg->nats_subject);
	o->stream = strdup(cfg->nats_stream);
	o->credentials = strdup(cfg->nats_credentials);
	o->tls_ca = strdup(cfg->nats_tls_ca);
	o->tls_cert = strdup(cfg->nats_tls_cert);
	o->tls_key = strdup(cfg->nats_tls_key);
	pthread_mutex_init(&o->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (!o->ring || !o->servers_text || !o->subject || !o->stream || !o->credentials || !o->tls_ca ||
	    !o->tls_cert || !o->tls_key)
		return -ENOMEM;
	for (size_t i = 0; i < MMAPQ_ID_SIZE; i++)
		snprintf(o->id_hex + 2 * i, 3, "%02x", id[i]);
	o->format = cfg->format;
	o->max_record = cfg->max_record;
	o->ordered = cfg->nats_ordered;
	o->create_stream = cfg->nats_create_stream;
	o->replicas = cfg->nats_replicas;
	o->storage = cfg->nats_storage;
	o->duplicate_window = cfg->nats_duplicate_window;
	o->reconnect_max_s = cfg->nats_reconnect_max_wait;
	o->ack_timeout_ns = (uint64_t)cfg->nats_ack_timeout * 1000000000u;
	o->connect_timeout_ms = (int64_t)cfg->nats_connect_timeout * 1000;
	o->run_first = true;
	o->wake_after = 1;
	o->lim = (struct log_limit)LOG_LIMIT_INIT("NATS: records published again", 60, 3);
	signals_set(&o->ours);
	o->jitter = (uint64_t)getpid() ^ now_ns();
	return 0;
}

/* Connects (in the background if no server answers yet) and makes the
 * JetStream context.  0, or -errno (said). */
static int connect_servers(struct nats_out *o, const struct mmapq_config *cfg)
{
	jsOptions jo;
	sigset_t old;
	natsStatus s, cs;

	block_ours(o, &old);
	cs = natsConnection_Connect(&o->nc, o->opts);
	unblock_ours(&old);
	if (cs != NATS_OK && cs != NATS_NOT_YET_CONNECTED) {
		log_error("[nats] servers = %s: %s", cfg->nats_servers, nats_text(cs));
		return cs == NATS_NO_MEMORY ? -ENOMEM : -EINVAL;
	}
	if (cs == NATS_OK) {
		int r = check_max_payload(o);

		if (r < 0)
			return r;
		pthread_mutex_lock(&o->mu);
		o->connected = true;
		pthread_mutex_unlock(&o->mu);
	}
	jsOptions_Init(&jo);
	jo.Wait = API_WAIT_MS;
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.AckHandlerClosure = o;
	/* no stall in libnats: the window is ours (max_pending) */
	jo.PublishAsync.MaxPending = 0;
	s = natsConnection_JetStream(&o->js, o->nc, &jo);
	if (s != NATS_OK)
		return set_failed("NATS JetStream context", s);
	o->ever_connected = cs == NATS_OK;
	if (!o->ever_connected) {
		o->trouble_since_ns = now_ns();
		snprintf(o->trouble, sizeof(o->trouble), "no server answers yet");
		log_warning("NATS: no server of [nats] servers = %s answers yet; records wait in the"
		            " queue while it keeps trying (pauses of up to %u s)", cfg->nats_servers,
		            o->reconnect_max_s);
	}
	return 0;
}

/*
 * Starts connecting to [nats] servers (in the background if none answers
 * yet: records wait in the queue until one does) with the queue's id.  0,
 * or -errno, said: -EINVAL (a setting libnats refuses: a TLS or
 * credentials file that is not one), what open() said for such a file
 * that cannot be read, -ENOMEM.
 */
int output_nats_open(const struct output_env *env, const char *spec, struct output **ret)
{
	struct nats_out *o = calloc(1, sizeof(*o));
	int r;

	(void)spec;
	if (!o)
		return -ENOMEM;
	o->out = (struct output){.ops = &nats_ops, .env = env};
	r = take_settings(o, env->cfg, env->queue_id);
	if (r == 0)
		r = make_options(o, env->cfg);
	if (r == 0)
		r = connect_servers(o, env->cfg);
	if (r < 0) {
		nats_close(o);
		return r;
	}
	*ret = &o->out;
	return 0;
}

/* Closes the connection; what it holds is released by no one (it stays in
 * the queue). */
static void nats_close(struct nats_out *o)
{
	o->shutting_down = true;
	if (o->js) {
		/* attempts still waiting for an ack (a record published again
		 * after a timeout whose first attempt was acked: the stop does
		 * not wait for them) are ours again; jsCtx_Destroy would leave
		 * them allocated.  (libnats makes its table of them at the first
		 * publish: asked before that, libnats 3.4 dereferences NULL.) */
		natsMsgList pending = {0};

		if (o->published_total &&
		    js_PublishAsyncGetPendingList(&pending, o->js) == NATS_OK)
			natsMsgList_Destroy(&pending);
		jsCtx_Destroy(o->js);
	}
	if (o->nc)
		natsConnection_Destroy(o->nc);
	if (o->opts)
		natsOptions_Destroy(o->opts);
	/* libnats's threads may still call us: only once they are gone (if
	 * it was started at all: not when a file of a setting was missing) */
	if (o->opts && nats_CloseAndWait(5000) != NATS_OK) {
		log_warning("NATS: libnats did not stop within 5 s");
		return; /* o leaks: better than a callback into freed memory */
	}
	for (int i = 0; o->servers && i < o->nservers; i++)
		free(o->servers[i]);
	free(o->servers);
	free(o->servers_text);
	free(o->subject);
	free(o->stream);
	free(o->credentials);
	free(o->tls_ca);
	free(o->tls_cert);
	free(o->tls_key);
	free(o->ring);
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->mu);
	free(o);
}

/* ---- the stream ---------------------------------------------------------- */

/* The error a refusal retrying cannot fix ends with. */
static int refused(void)
{
	return -EREMOTEIO;
}

/* The largest payload a record makes (format int: its decimal text). */
static uint64_t payload_max(const struct nats_out *o)
{
	return o->format == MMAPQ_FORMAT_INT ? MMAPQ_FMT_INT_MAX : o->max_record;
}

/* Every record this queue may hold fits the max_payload of the server we
 * are connected to, headers included: else no record of max_record could
 * ever be published, and one that comes would end the consumer then.  0
 * (or not connected: not known yet), or refused() (said). */
static int check_max_payload(struct nats_out *o)
{
	int64_t limit = natsConnection_GetMaxPayload(o->nc);
	char url[256] = "";

	if (limit <= 0 || payload_max(o) + HEADERS_MAX <= (uint64_t)limit)
		return 0;
	natsConnection_GetConnectedUrl(o->nc, url, sizeof(url));
	log_error("NATS: [queue] max_record = %" PRIu32 " bytes (and up to %d bytes of headers per"
	          " message) is more than the max_payload of the server %s takes (%" PRId64 " bytes):"
	          " a record of that length could never be published; raise max_payload in the"
	          " server's configuration (to at least %" PRIu64 "), or use a queue with a smaller"
	          " max_record", o->max_record, HEADERS_MAX, *url ? url : o->servers_text, limit,
	          payload_max(o) + HEADERS_MAX);
	return refused();
}

static void storage_name(jsStorageType t, char *buf, size_t size)
{
	snprintf(buf, size, "%s", t == js_MemoryStorage ? "memory" : "file");
}

/* Create [nats] stream (create_stream = yes).  0, 1 (try again later:
 * why says what happened) or refused(). */
static int create_stream(struct nats_out *o, char *why, size_t size)
{
	const char *subjects[1] = {o->subject};
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	jsStreamConfig_Init(&sc);
	sc.Name = o->stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = o->storage == MMAPQ_NATS_MEMORY ? js_MemoryStorage : js_FileStorage;
	sc.Replicas = o->replicas;
	sc.Duplicates = (int64_t)o->duplicate_window * 1000000000;
	s = js_AddStream(&si, o->js, &sc, NULL, &jerr);
	if (s == NATS_OK) {
		log_notice("NATS: created stream %s (subject %s, %" PRIu32 " replica%s, %s storage,"
		           " duplicate window %" PRIu32 " s): [nats] create_stream = yes", o->stream,
		           o->subject, o->replicas, o->replicas == 1 ? "" : "s",
		           o->storage == MMAPQ_NATS_MEMORY ? "memory" : "file", o->duplicate_window);
		jsStreamInfo_Destroy(si);
		return 0;
	}
	if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || s == NATS_CONNECTION_DISCONNECTED) {
		snprintf(why, size, "creating stream %s: %s", o->stream, nats_text(s));
		return 1;
	}
	if (jerr == JSStreamSubjectOverlapErr)
		log_error("[nats] create_stream = yes: stream %s cannot be created with [nats] subject = %s:"
		          " another stream already captures it (%s); set [nats] stream to that one",
		          o->stream, o->subject, nats_text(s));
	else
		log_error("[nats] create_stream = yes: stream %s (subject %s, [nats] replicas = %" PRIu32
		          ", storage = %s, duplicate_window = %" PRIu32 "): the server refuses it: %s",
		          o->stream, o->subject, o->replicas,
		          o->storage == MMAPQ_NATS_MEMORY ? "memory" : "file", o->duplicate_window,
		          nats_text(s));
	return refused();
}

/*
 * [nats] stream exists (or is created) and captures [nats] subject.  0;
 * 1: JetStream does not answer now (why says so): try again; refused().
 * Logs the stream's duplicate window the first time.
 */
static int verify_stream(struct nats_out *o, char *why, size_t size)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s;
	bool captured = false, only_ours = true;
	char stor[16];

	o->out.env->progress();
	s = js_GetStreamInfo(&si, o->js, o->stream, NULL, &jerr);
	o->out.env->progress();
	if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
		if (o->create_stream)
			return create_stream(o, why, size);
		log_error("[nats] stream = %s: no such stream on the server; create it (capturing [nats]"
		          " subject = %s), or set [nats] create_stream = yes", o->stream, o->subject);
		return refused();
	}
	if (jerr == JSNotEnabledErr || jerr == JSNotEnabledForAccountErr) {
		log_error("[nats] servers = %s: JetStream is not enabled there (for this account): %s",
		          o->servers_text, nats_text(s));
		return refused();
	}
	if (s != NATS_OK) {
		snprintf(why, size, "JetStream does not answer about stream %s (%s): not enabled, or no"
		         " leader yet", o->stream, nats_text(s));
		return 1;
	}
	for (int i = 0; si->Config && i < si->Config->SubjectsLen; i++) {
		if (subject_matches(si->Config->Subjects[i], o->subject))
			captured = true;
		if (strcmp(si->Config->Subjects[i], o->subject))
			only_ours = false;
	}
	if (!captured) {
		char list[512] = "";
		size_t off = 0;

		for (int i = 0; si->Config && i < si->Config->SubjectsLen && off < sizeof(list); i++)
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "",
			                        si->Config->Subjects[i]);
		log_error("[nats] subject = %s is not captured by [nats] stream = %s (its subjects: %s);"
		          " change one of them, or add the subject to the stream", o->subject, o->stream,
		          *list ? list : "none");
		jsStreamInfo_Destroy(si);
		return refused();
	}
	if (!o->verified) {
		o->dup_window_ns = (uint64_t)si->Config->Duplicates;
		storage_name(si->Config->Storage, stor, sizeof(stor));
		log_info("NATS: stream %s (%" PRId64 " replica%s, %s storage) captures %s; duplicate window"
		         " %.0f s: a record published again within it (a restart after a crash) is"
		         " dropped by the server", o->stream, si->Config->Replicas,
		         si->Config->Replicas == 1 ? "" : "s", stor, o->subject,
		         (double)o->dup_window_ns / 1e9);
		if (o->ordered && !only_ours)
			log_notice("NATS: stream %s captures more than %s: with [nats] ordered = yes, nothing"
			           " but this queue may publish into it", o->stream, o->subject);
	}
	jsStreamInfo_Destroy(si);
	o->verified = true;
	return 0;
}

/* ---- a run ---------------------------------------------------------------- */

/* Takes back every record not acknowledged: they are published again from
 * the oldest, starting a new run, once retry_at_ns has come. */
static void abandon_run(struct nats_out *o, uint64_t pause_ns)
{
	natsMsgList pending = {0};
	uint32_t back = 0;

	if (js_PublishAsyncGetPendingList(&pending, o->js) == NATS_OK)
		natsMsgList_Destroy(&pending); /* their late acks are dropped by libnats */
	pthread_mutex_lock(&o->mu);
	for (uint32_t i = 0; i < o->sent; i++) {
		struct slot *s = slot_of(o, o->base + i);
		if (s->state == SLOT_SENT || s->state == SLOT_FAILED) {
			s->state = SLOT_FREE;
			s->msg = NULL;
		}
	}
	/* publishing starts again after the acked prefix */
	while (back < o->sent && slot_of(o, o->base + back)->state == SLOT_ACKED)
		back++;
	for (uint32_t i = back; i < o->sent; i++)
		slot_of(o, o->base + i)->state = SLOT_FREE;
	o->republished_total += o->sent - back;
	o->sent = back;
	o->inflight = 0;
	o->inflight_bytes = 0;
	o->failed = false;
	pthread_mutex_unlock(&o->mu);
	o->run_first = true;
	o->retry_at_ns = now_ns() + pause_ns;
}

/* The next pause after a failure: 0.1 s, doubling up to reconnect_max_wait. */
static uint64_t next_backoff(struct nats_out *o)
{
	uint64_t max = (uint64_t)o->reconnect_max_s * 1000000000u;

	o->backoff_ns = o->backoff_ns ? o->backoff_ns * 2 : BACKOFF_MIN_NS;
	if (o->backoff_ns > max)
		o->backoff_ns = max;
	return o->backoff_ns;
}

static void set_trouble(struct nats_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_trouble(struct nats_out *o, const char *fmt, ...)
{
	va_list ap;

	if (!*o->trouble)
		o->trouble_since_ns = now_ns();
	va_start(ap, fmt);
	vsnprintf(o->trouble, sizeof(o->trouble), fmt, ap);
	va_end(ap);
}

static void clear_trouble(struct nats_out *o)
{
	char url[256] = "";

	natsConnection_GetConnectedUrl(o->nc, url, sizeof(url));
	log_notice("NATS: forwarding to %s again, after %.1f s (%s)", url,
	           (double)(now_ns() - o->trouble_since_ns) / 1e9, o->trouble);
	o->trouble[0] = '\0';
	o->backoff_ns = 0;
}

/* A record failed (negative ack, or none in time).  0, or refused(). */
static int record_failed(struct nats_out *o, const struct failure *f)
{
	uint64_t pause = 0;

	if (f->code == JSStreamMessageExceedsMaximumErr) {
		log_error("NATS: record %" PRIu64 " is larger than [nats] stream = %s accepts (its"
		          " max_msg_size): %s; it stays in the queue; raise the stream's limit", f->seq,
		          o->stream, f->text);
		return refused();
	}
	if (f->code == JSStreamWrongLastMsgIDErr) {
		/* the chain of [nats] ordered = yes broke: after a record that was
		 * lost (then this is only its consequence, and the lost one was
		 * reported), or because someone else published into the stream */
		if (log_limit_pass(&o->lim))
			log_warning("NATS: record %" PRIu64 ": %s: publishing again from it; if this goes on,"
			            " something else publishes into stream %s ([nats] ordered = yes needs a"
			            " stream of its own)", f->seq, f->text, o->stream);
	} else {
		pause = next_backoff(o);
		if (f->status == NATS_NO_RESPONDERS)
			o->verified = false; /* look at the stream again: gone, or no leader? */
		set_trouble(o, "record %" PRIu64 ": %s; publishing again in %.1f s", f->seq, f->text,
		            (double)pause / 1e9);
		if (log_limit_pass(&o->lim))
			log_warning("NATS: record %" PRIu64 ": %s; it and the records after it stay in the"
			            " queue and are published again in %.1f s (what the stream already has"
			            " is dropped as a duplicate)", f->seq, f->text, (double)pause / 1e9);
	}
	abandon_run(o, pause);
	return 0;
}

/* libnats closes a connection that never got through once a server refused
 * it for good (a TLS handshake that failed, credentials refused), saying
 * only "No server available for connection": connect once more, without
 * retrying, to learn why.  Its status, and what libnats said in text. */
static natsStatus why_refused(struct nats_out *o, char *text, size_t size)
{
	natsOptions *op = NULL;
	natsConnection *nc = NULL;
	natsStatus s = natsOptions_Create(&op);
	sigset_t old;

	if (s == NATS_OK && secure_options(o, op) < 0)
		s = NATS_ERR;
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(op, o->connect_timeout_ms);
	if (s == NATS_OK)
		s = natsOptions_SetAllowReconnect(op, false);
	if (s == NATS_OK) {
		block_ours(o, &old);
		s = natsConnection_Connect(&nc, op);
		unblock_ours(&old);
	}
	if (s != NATS_OK) {
		const char *last = nats_GetLastError(NULL), *at;

		/* without libnats's "(conn.c:733): " before it */
		if (last && *last == '(' && (at = strstr(last, "): ")))
			last = at + 3;
		snprintf(text, size, "%s", last && *last ? last : natsStatus_GetText(s));
	}
	natsConnection_Destroy(nc);
	natsOptions_Destroy(op);
	return s;
}

/* What libnats's threads saw about the connection since last time.  0, or
 * refused(). */
static int take_events(struct nats_out *o)
{
	unsigned disc, conn;
	bool connected, closed;
	natsStatus async;
	char async_text[256];

	pthread_mutex_lock(&o->mu);
	disc = o->disconnects;
	conn = o->connects;
	connected = o->connected;
	closed = o->closed;
	async = o->async_status;
	memcpy(async_text, o->async_text, sizeof(async_text));
	o->async_status = NATS_OK;
	pthread_mutex_unlock(&o->mu);

	if (async == NATS_NOT_PERMITTED) {
		log_error("NATS: permission denied: %s; the user of [nats] credentials may not publish to"
		          " [nats] subject = %s (or use JetStream's API or its inbox)", async_text,
		          o->subject);
		return refused();
	}
	if (async != NATS_OK)
		log_warning("NATS: %s", async_text);
	if (closed && !o->shutting_down) {
		const char *text = NULL;
		natsStatus s = natsConnection_GetLastError(o->nc, &text);
		char why[256];

		if (!o->ever_connected && s == NATS_NO_SERVER) {
			natsStatus w = why_refused(o, why, sizeof(why));

			if (w != NATS_OK) {
				s = w;
				text = why;
			}
		}
		if (s == NATS_CONNECTION_AUTH_FAILED || (text && strstr(text, "uthorization")))
			log_error("NATS: the servers refuse the credentials ([nats] credentials = %s): %s",
			          *o->credentials ? o->credentials : "none", text ? text : "");
		else if (o->tls && (s == NATS_SSL_ERROR || (text && strstr(text, "SSL"))))
			log_error("NATS: the TLS handshake with the servers failed (%s): their"
			          " certificate is not signed by a CA of [nats] tls_ca = %s, or is not for"
			          " the host name, or they refuse the client certificate of [nats]"
			          " tls_cert = %s", text ? text : nats_text(s),
			          *o->tls_ca ? o->tls_ca : "(the system's CAs)",
			          *o->tls_cert ? o->tls_cert : "(none)");
		else
			log_error("NATS: the connection was closed for good: %s", text ? text : "");
		return refused();
	}
	if (disc != o->seen_disconnects) {
		o->seen_disconnects = disc;
		if (!connected) {
			set_trouble(o, "disconnected, reconnecting");
			log_warning("NATS: lost the connection to the server; records stay in the queue"
			            " (those in flight are published again); reconnecting, pauses of up"
			            " to %u s", o->reconnect_max_s);
		}
		if (o->sent)
			abandon_run(o, 0);
	}
	if (conn != o->seen_connects) {
		/* the first connection is not made again */
		o->reconnects += conn - o->seen_connects - (o->ever_connected ? 0u : 1u);
		o->seen_connects = conn;
		if (connected) {
			char url[256] = "";

			natsConnection_GetConnectedUrl(o->nc, url, sizeof(url));
			if (!o->ever_connected)
				log_notice("NATS: connected to %s after %.1f s", url,
				           (double)(now_ns() - o->trouble_since_ns) / 1e9);
			o->ever_connected = true;
			o->retry_at_ns = 0;
			snprintf(o->trouble, sizeof(o->trouble), "reconnected to %s", url);
			/* a server of its own, maybe with another max_payload */
			if (check_max_payload(o) < 0)
				return refused();
		}
	}
	if (!connected && !*o->trouble)
		set_trouble(o, "disconnected, reconnecting");
	return 0;
}

/* ---- publishing ------------------------------------------------------------ */

/* One record as a message: the payload as the consumer prints it (no line
 * end), Nats-Msg-Id, Mmapq-Seq and (ordered, not the first of a run)
 * Nats-Expected-Last-Msg-Id. */
static natsStatus make_msg(struct nats_out *o, const struct mmapq_record *rec, uint32_t format,
                           bool first, natsMsg **m)
{
	char data[MMAPQ_FMT_INT_MAX], id[MSG_ID_MAX], seq[24];
	const char *payload = rec->data;
	int len = (int)rec->len;
	natsStatus s;

	if (format == MMAPQ_FORMAT_INT) {
		int64_t v;

		memcpy(&v, rec->data, sizeof(v));
		len = (int)mmapq_fmt_int(data, v) - 1;
		payload = data;
	}
	s = natsMsg_Create(m, o->subject, NULL, payload, len);
	msg_id(o, rec->seq, id);
	snprintf(seq, sizeof(seq), "%" PRIu64, rec->seq);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(*m, "Nats-Msg-Id", id);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(*m, "Mmapq-Seq", seq);
	if (s == NATS_OK && o->ordered && !first) {
		msg_id(o, rec->seq - 1, id);
		s = natsMsgHeader_Set(*m, "Nats-Expected-Last-Msg-Id", id);
	}
	return s;
}

/* The last n records noted as sent were not published after all: they are
 * not in flight (and their messages are gone). */
static void unsend(struct nats_out *o, uint32_t n)
{
	pthread_mutex_lock(&o->mu);
	for (uint32_t i = 0; i < n; i++) {
		struct slot *s = slot_of(o, o->base + o->sent - 1 - i);
		s->state = SLOT_FREE;
		s->msg = NULL;
		o->inflight_bytes -= s->len;
	}
	o->sent -= n;
	o->inflight -= n;
	pthread_mutex_unlock(&o->mu);
}

/* Messages for recs[0..n), at most PUB_BATCH and budget payload bytes
 * (the first one whatever its size if none is in flight: alone), into
 * msgs and their sequence numbers into seqs, noted as sent (in flight).
 * How many, or -ENOMEM (said). */
static int make_batch(struct nats_out *o, const struct mmapq_record *recs, uint32_t n,
                      uint64_t budget, bool alone, natsMsg **msgs, uint64_t *seqs)
{
	uint32_t k = 0, lens[PUB_BATCH];
	uint64_t bytes = 0;
	int r = 0;

	for (; k < PUB_BATCH && k < n; k++) {
		natsStatus s;

		lens[k] = o->format == MMAPQ_FORMAT_INT ? MMAPQ_FMT_INT_MAX : recs[k].len;
		if (bytes + lens[k] > budget && (k || !alone))
			break;
		msgs[k] = NULL;
		s = make_msg(o, &recs[k], o->format, o->run_first && k == 0, &msgs[k]);
		if (s != NATS_OK) {
			natsMsg_Destroy(msgs[k]);
			log_error("NATS: record %" PRIu64 ": %s", recs[k].seq, nats_text(s));
			r = -ENOMEM;
			break;
		}
		seqs[k] = recs[k].seq;
		bytes += lens[k];
	}
	pthread_mutex_lock(&o->mu);
	for (uint32_t i = 0; i < k; i++) {
		struct slot *s = slot_of(o, seqs[i]);
		s->state = SLOT_SENT;
		s->msg = msgs[i];
		s->sent_ns = now_ns();
		s->len = lens[i];
	}
	o->sent += k;
	o->inflight += k;
	o->inflight_bytes += bytes;
	pthread_mutex_unlock(&o->mu);
	if (k)
		o->run_first = false;
	return k ? (int)k : r;
}

/* js_PublishMsgAsync for each of the k messages made.  0, 1 (one was
 * refused: it and those after it taken back, and the run with them), or
 * refused() (a record larger than the server takes). */
static int send_batch(struct nats_out *o, natsMsg **msgs, const uint64_t *seqs, uint32_t k)
{
	sigset_t old;

	if (!o->threads_ready)
		block_ours(o, &old);
	for (uint32_t i = 0; i < k; i++) {
		int len = natsMsg_GetDataLength(msgs[i]);
		natsStatus s = js_PublishMsgAsync(o->js, &msgs[i], NULL);

		if (s == NATS_OK) {
			o->published_total++;
			continue;
		}
		/* not published: this and the rest of the batch (those before it
		 * are in flight: a refusal leaves them to drain) */
		for (uint32_t j = i; j < k; j++)
			natsMsg_Destroy(msgs[j]);
		unsend(o, k - i);
		if (!o->threads_ready)
			unblock_ours(&old);
		if (s == NATS_MAX_PAYLOAD) {
			/* (check_max_payload keeps this from happening, unless the
			 * server changed between its look and this publish) */
			log_error("NATS: record %" PRIu64 " (%d bytes, and its headers) is larger"
			          " than the server's max_payload (%" PRId64 " bytes); [queue] max_record is"
			          " %" PRIu32 " bytes; it stays in the queue; raise max_payload in the"
			          " server's configuration", seqs[i], len,
			          natsConnection_GetMaxPayload(o->nc), o->max_record);
			return refused();
		}
		set_trouble(o, "record %" PRIu64 ": %s", seqs[i], nats_text(s));
		abandon_run(o, next_backoff(o));
		return 1;
	}
	if (!o->threads_ready) {
		unblock_ours(&old);
		o->threads_ready = true;
	}
	return 0;
}

/* Publish recs[0..n) (records index o->sent..), as far as the window
 * goes; *taken: how many.  0, 1 (a publish failed: the run was taken back),
 * refused() or -ENOMEM (said). */
static int publish(struct nats_out *o, const struct mmapq_record *recs, uint32_t n,
                   uint32_t *taken)
{
	uint32_t first = o->sent;

	for (;;) {
		natsMsg *msgs[PUB_BATCH];
		uint64_t seqs[PUB_BATCH];
		uint32_t from, room;
		uint64_t bytes;
		int k, r;

		pthread_mutex_lock(&o->mu);
		from = o->sent;
		bytes = o->inflight_bytes;
		pthread_mutex_unlock(&o->mu);
		*taken = from - first;
		if (from - first >= n || from >= o->window || bytes >= INFLIGHT_BYTES)
			return 0;
		room = o->window - from < n - (from - first) ? o->window - from : n - (from - first);
		/* build a batch, outside the lock */
		k = make_batch(o, recs + (from - first), room, INFLIGHT_BYTES - bytes, bytes == 0, msgs,
		               seqs);
		if (k <= 0)
			return k;
		r = send_batch(o, msgs, seqs, (uint32_t)k);
		*taken = o->sent - first;
		if (r)
			return r;
		mmapq_fault("nats.published"); /* in flight, no ack taken in yet */
	}
}

/* ---- the output's operations ------------------------------------------------ */

/* The broker cannot take records now (the consumer waits here). */
static bool cannot_publish(struct nats_out *o, bool connected)
{
	return !connected || !o->verified || now_ns() < o->retry_at_ns;
}

static bool nats_busy(struct output *out)
{
	struct nats_out *o = (struct nats_out *)out;
	bool connected, held;

	pthread_mutex_lock(&o->mu);
	connected = o->connected;
	held = o->sent > 0;
	pthread_mutex_unlock(&o->mu);
	return held || cannot_publish(o, connected);
}

/* Something for the consumer to do (o->mu held). */
static bool due_locked(struct nats_out *o, uint64_t now)
{
	struct slot *first = slot_of(o, o->base);

	if (o->failed || o->closed || o->async_status != NATS_OK ||
	    o->disconnects != o->seen_disconnects || o->connects != o->seen_connects)
		return true;
	if (o->sent && first->state == SLOT_ACKED && (o->acked_new >= o->wake_after || !o->inflight))
		return true;
	if (o->inflight && first->state == SLOT_SENT && now >= first->sent_ns + o->ack_timeout_ns)
		return true; /* the oldest timed out */
	if (o->connected && !o->verified && now >= o->retry_at_ns)
		return true; /* the stream is to be looked at */
	return o->retry_at_ns && now >= o->retry_at_ns && !o->sent;
}

/* Until acks, a failure, a change of the connection or a retry is due, or
 * deadline_ns (CLOCK_MONOTONIC), or the loop is wanted (a stop, a reload). */
static void nats_wait(struct output *out, uint64_t deadline_ns)
{
	struct nats_out *o = (struct nats_out *)out;

	pthread_mutex_lock(&o->mu);
	for (;;) {
		uint64_t now = now_ns(), until = deadline_ns;
		struct slot *first = slot_of(o, o->base);
		struct timespec ts;

		if (now >= deadline_ns || due_locked(o, now) || o->out.env->interrupt())
			break;
		if (o->inflight && first->state == SLOT_SENT && first->sent_ns + o->ack_timeout_ns < until)
			until = first->sent_ns + o->ack_timeout_ns;
		if (o->retry_at_ns > now && o->retry_at_ns < until)
			until = o->retry_at_ns;
		/* wake for a batch of acks, not for each: an eighth of what is in flight */
		o->acked_new = 0;
		o->wake_after = o->inflight / 8 > 1 ? o->inflight / 8 : 1;
		o->waiting = true;
		ts = abs_monotonic(until);
		pthread_cond_timedwait(&o->cond, &o->mu, &ts);
		o->waiting = false;
	}
	pthread_mutex_unlock(&o->mu);
}

/* Publishes what follows the held records, as far as the window and the
 * broker allow. */
static int nats_deliver(struct output *out, const struct mmapq_record *recs, uint32_t n,
                        uint32_t *taken)
{
	struct nats_out *o = (struct nats_out *)out;
	bool connected;
	int r;

	*taken = 0;
	pthread_mutex_lock(&o->mu);
	if (o->sent == 0 && n > 0)
		o->base = recs[0].seq; /* where the window starts (after a release, or at start) */
	connected = o->connected;
	pthread_mutex_unlock(&o->mu);
	if (cannot_publish(o, connected))
		return 0;
	r = publish(o, recs, n, taken);
	return r < 0 ? r : 0;
}

/* Takes in what happened since (acks, failures, the connection, the
 * stream); *done: how many of the oldest are acknowledged, in order (set
 * even when it returns refused()). */
static int nats_complete(struct output *out, uint32_t *done)
{
	struct nats_out *o = (struct nats_out *)out;
	struct failure f = {0};
	bool failed, timed_out = false, connected;
	uint64_t now;
	uint32_t prefix = 0;
	int r;

	*done = 0;
	log_limit_flush(&o->lim, 0);
	r = take_events(o);

	now = now_ns();
	pthread_mutex_lock(&o->mu);
	failed = o->failed;
	f = o->fail;
	connected = o->connected;
	{
		const struct slot *first;

		while (prefix < o->sent && slot_of(o, o->base + prefix)->state == SLOT_ACKED)
			prefix++;
		first = slot_of(o, o->base + prefix);
		if (!failed && prefix < o->sent && first->state == SLOT_SENT &&
		    now >= first->sent_ns + o->ack_timeout_ns) {
			timed_out = true;
			f.seq = o->base + prefix;
			f.status = NATS_TIMEOUT;
			f.code = 0;
			snprintf(f.text, sizeof(f.text), "no ack within [nats] ack_timeout (%.0f s)",
			         (double)o->ack_timeout_ns / 1e9);
		}
	}
	o->acked_new = 0;
	pthread_mutex_unlock(&o->mu);
	if (prefix) {
		mmapq_fault("nats.acked"); /* acknowledged, not yet released */
		o->acked_total += prefix;
		o->last_ack_usec = realtime_usec();
		if (*o->trouble && connected && o->verified && !failed && !timed_out && r == 0)
			clear_trouble(o);
		o->backoff_ns = 0;
	}
	*done = prefix;
	if (r < 0)
		return r;
	if (failed || timed_out) {
		r = record_failed(o, &f);
		if (r < 0)
			return r;
	}
	if (connected && !o->verified && now >= o->retry_at_ns) {
		char why[256];

		r = verify_stream(o, why, sizeof(why));
		if (r < 0)
			return r;
		if (r > 0) {
			set_trouble(o, "%s", why);
			o->retry_at_ns = now_ns() + next_backoff(o);
			return 0;
		}
		if (!o->sent && *o->trouble)
			clear_trouble(o);
	}
	return 0;
}

static void nats_released(struct output *out, uint32_t n)
{
	struct nats_out *o = (struct nats_out *)out;

	pthread_mutex_lock(&o->mu);
	for (uint32_t i = 0; i < n; i++) {
		struct slot *s = slot_of(o, o->base + i);
		s->state = SLOT_FREE;
		s->msg = NULL;
	}
	o->base += n;
	o->sent -= n;
	pthread_mutex_unlock(&o->mu);
}

static uint32_t nats_held(const struct output *out)
{
	struct nats_out *o = (struct nats_out *)out;
	uint32_t sent;

	pthread_mutex_lock(&o->mu);
	sent = o->sent;
	pthread_mutex_unlock(&o->mu);
	return sent;
}

/* Waits for the acks of what is in flight, until deadline_ns (for a stop,
 * or after refused(): complete then says what to release). */
static void nats_drain(struct output *out, uint64_t deadline_ns)
{
	struct nats_out *o = (struct nats_out *)out;

	pthread_mutex_lock(&o->mu);
	while (o->inflight && !o->failed && o->connected) {
		struct timespec ts = abs_monotonic(deadline_ns);

		if (now_ns() >= deadline_ns)
			break;
		o->wake_after = UINT32_MAX; /* only when none is left in flight */
		o->waiting = true;
		pthread_cond_timedwait(&o->cond, &o->mu, &ts);
		o->waiting = false;
	}
	pthread_mutex_unlock(&o->mu);
}

/* The server, the stream and how it goes ("acked 10, in flight 5" or what
 * the trouble is). */
static const char *nats_describe(struct output *out)
{
	struct nats_out *o = (struct nats_out *)out;
	uint32_t sent, inflight;

	pthread_mutex_lock(&o->mu);
	sent = o->sent;
	inflight = o->inflight;
	pthread_mutex_unlock(&o->mu);
	if (*o->trouble)
		snprintf(o->status, sizeof(o->status), "nats: %s (since %.0f s ago); records wait in"
		         " the queue", o->trouble, (double)(now_ns() - o->trouble_since_ns) / 1e9);
	else
		snprintf(o->status, sizeof(o->status), "nats stream %s: acked %" PRIu64 ", in flight %"
		         PRIu32 ", held %" PRIu32 ", published again %" PRIu64, o->stream, o->acked_total,
		         inflight, sent, o->republished_total);
	return o->status;
}

static void nats_health(struct output *out, struct mmapq_output_health *h)
{
	struct nats_out *o = (struct nats_out *)out;

	pthread_mutex_lock(&o->mu);
	h->connected = o->connected;
	h->in_flight = o->inflight;
	pthread_mutex_unlock(&o->mu);
	h->acknowledged = o->acked_total - o->health_acked;
	h->reconnects = o->reconnects - o->health_reconnects;
	h->last_ack_usec = o->last_ack_usec;
	o->health_acked = o->acked_total;
	o->health_reconnects = o->reconnects;
}

static void nats_out_close(struct output *out)
{
	nats_close((struct nats_out *)out);
}

static const struct output_ops nats_ops = {
	.deliver = nats_deliver,
	.complete = nats_complete,
	.released = nats_released,
	.held = nats_held,
	.busy = nats_busy,
	.wait = nats_wait,
	.drain = nats_drain,
	.health = nats_health,
	.describe = nats_describe,
	.close = nats_out_close,
};
