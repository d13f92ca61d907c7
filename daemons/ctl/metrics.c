/* SPDX-License-Identifier: MIT */
/*
 * metrics.c -- `metrics`: a queue's state as Prometheus metrics (text
 * exposition format 0.0.4), printed, or (--http) as the answer to HTTP
 * requests: the socket-activated endpoints, mmapq-metrics.socket (one
 * connection on stdin and stdout, Accept=yes) and mmapq-metrics@NAME.socket
 * (its listening sockets passed, Accept=no: see serve_listening).
 */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "attach.h"
#include "exit.h"
#include "log.h"
#include "options.h"

/* A label value: backslash, double quote and newline escaped. */
static void label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{queue="path"[,role="role"]} value */
static void sample(FILE *f, const char *name, const char *path, const char *role, double v)
{
	fprintf(f, "%s{queue=\"", name);
	label_value(f, path);
	if (role)
		fprintf(f, "\",role=\"%s", role);
	fprintf(f, "\"} %.17g\n", v);
}

static void one(FILE *f, const char *name, const char *type, const char *help, const char *path,
                double v)
{
	family(f, name, type, help);
	sample(f, name, path, NULL, v);
}

/* A family of the producer's, labelled role="producer".  The consumers'
 * are per consumer (per_consumer): a series for "the consumer" would
 * change whose it is as consumers come and go. */
static void producer_only(FILE *f, const char *name, const char *type, const char *help,
                          const char *path, double producer)
{
	family(f, name, type, help);
	sample(f, name, path, "producer", producer);
}

/* name{queue="path",consumer="consumer"} and a space: a sample's start */
static void consumer_sample(FILE *f, const char *name, const char *path, const char *consumer)
{
	fprintf(f, "%s{queue=\"", name);
	label_value(f, path);
	fprintf(f, "\",consumer=\"");
	label_value(f, consumer);
	fputs("\"} ", f);
}

/* A family with one sample per registered consumer (label consumer). */
static void per_consumer(FILE *f, const char *name, const char *type, const char *help,
                         const char *path, const struct mmapq_consumer_status *cs, int n,
                         double (*value)(const struct mmapq_consumer_status *c))
{
	family(f, name, type, help);
	for (int i = 0; i < n; i++) {
		consumer_sample(f, name, path, cs[i].name);
		fprintf(f, "%.17g\n", value(&cs[i]));
	}
}

static double c_lag(const struct mmapq_consumer_status *c) { return (double)c->lag; }
static double c_lag_bytes(const struct mmapq_consumer_status *c) { return (double)c->lag_bytes; }
static double c_position(const struct mmapq_consumer_status *c) { return (double)c->position; }
static double c_attached(const struct mmapq_consumer_status *c) { return c->attached; }
static double c_recoveries(const struct mmapq_consumer_status *c) { return (double)c->recoveries; }
static double c_attaches(const struct mmapq_consumer_status *c) { return (double)c->attaches; }
static double c_attach_time(const struct mmapq_consumer_status *c) { return (double)c->start_usec / 1e6; }

/* What each registered consumer consumed (mmapq_consumer_consumed), beside
 * its status; counted only by files of version 4. */
struct consumed {
	bool counted;                       /* false: a file of versions 1 to 3 */
	bool known[MMAPQ_CONSUMERS_MAX];    /* false: removed while we read */
	uint64_t n[MMAPQ_CONSUMERS_MAX];
};

/* The health of the consumers' NATS forwarders (mmapq_consumer_output):
 * only consumers whose output reported it since they attached. */
struct forwarders {
	int n;                                        /* of them */
	bool known[MMAPQ_CONSUMERS_MAX];
	struct mmapq_output_health h[MMAPQ_CONSUMERS_MAX];
};

static double h_connected(const struct mmapq_output_health *h) { return h->connected; }
static double h_reconnects(const struct mmapq_output_health *h) { return (double)h->reconnects; }
static double h_in_flight(const struct mmapq_output_health *h) { return h->in_flight; }
static double h_acked(const struct mmapq_output_health *h) { return (double)h->acknowledged; }
static double h_last_ack(const struct mmapq_output_health *h) { return (double)h->last_ack_usec / 1e6; }

/* A family with one sample per consumer whose forwarder reported; none at
 * all without one. */
static void per_forwarder(FILE *f, const char *name, const char *type, const char *help,
                          const char *path, const struct mmapq_consumer_status *cs, int n,
                          const struct forwarders *fw,
                          double (*value)(const struct mmapq_output_health *h))
{
	if (!fw->n)
		return;
	family(f, name, type, help);
	for (int i = 0; i < n; i++) {
		if (!fw->known[i])
			continue;
		consumer_sample(f, name, path, cs[i].name);
		fprintf(f, "%.17g\n", value(&fw->h[i]));
	}
}

/* mmapq_consumer_consumed_records_total: one sample per consumer whose
 * count was read. */
static void consumed_family(FILE *f, const char *path, const struct mmapq_consumer_status *cs, int n,
                            const struct consumed *k)
{
	const char *name = "mmapq_consumer_consumed_records_total";

	if (!k->counted)
		return;
	family(f, name, "counter", "Records this consumer consumed since it registered.");
	for (int i = 0; i < n; i++) {
		if (!k->known[i])
			continue;
		consumer_sample(f, name, path, cs[i].name);
		fprintf(f, "%" PRIu64 "\n", k->n[i]);
	}
}

/* The metrics of st (the queue at path) and of its n registered
 * consumers cs (mmapq_consumers) on f.  The names and what each means:
 * mmapqctl(1), METRICS. */
static void metrics_write(FILE *f, const char *path, const struct mmapq_status *st,
                   const struct mmapq_consumer_status *cs, int n, const struct consumed *consumed,
                   const struct forwarders *fw)
{
	const struct mmapq_side_status *p = &st->producer;
	bool legacy = st->version != MMAPQ_FILE_VERSION;

	/* the program's, not the queue's: no queue label.  file_format, as
	 * format is the record format in mmapq_info */
	family(f, "mmapq_build_info", "gauge",
	       "The mmapqctl that answers: its version and the queue file format version it writes (always 1).");
	fprintf(f, "mmapq_build_info{version=\"");
	label_value(f, options_version);
	fprintf(f, "\",file_format=\"%" PRIu32 "\"} 1\n", (uint32_t)MMAPQ_FILE_VERSION);
	family(f, "mmapq_info", "gauge", "The queue file's format version and record format (always 1).");
	fprintf(f, "mmapq_info{queue=\"");
	label_value(f, path);
	fprintf(f, "\",version=\"%" PRIu32 "\",format=\"%s\"} 1\n", st->version,
	        mmapq_format_name(st->format));
	one(f, "mmapq_size_bytes", "gauge",
	    "Bytes of the ring the records are kept in (versions 1 to 3: capacity times slot size).",
	    path, (double)st->size);
	one(f, "mmapq_max_record_bytes", "gauge", "Largest record payload.", path, st->max_record);
	if (legacy) {
		one(f, "mmapq_capacity_records", "gauge",
		    "Versions 1 to 3: slots in the ring, the most records the queue holds.", path,
		    st->capacity);
		one(f, "mmapq_slot_size_bytes", "gauge", "Versions 1 to 3: bytes of one slot.", path,
		    st->slot_size);
	}
	one(f, "mmapq_file_size_bytes", "gauge", "Size of the queue file.", path, (double)st->file_size);
	one(f, "mmapq_created_timestamp_seconds", "gauge", "When the queue file was created (Unix time).",
	    path, (double)st->created_usec / 1e6);
	one(f, "mmapq_depth_records", "gauge",
	    "Records kept: published and not yet consumed by the slowest consumer.", path,
	    (double)(st->tail - st->head));
	one(f, "mmapq_depth_bytes", "gauge", "Bytes of the ring the records kept take.", path,
	    (double)st->used_bytes);
	one(f, "mmapq_used_ratio", "gauge", "How full the ring is: depth bytes over size (0 to 1).",
	    path, used_percent(st) / 100.0);
	one(f, "mmapq_published_records_total", "counter",
	    "Records published since the queue file was created.", path, (double)st->tail);
	one(f, "mmapq_consumed_records_total", "counter",
	    "Records every consumer has consumed, since the queue file was created.", path,
	    (double)st->head);
	one(f, "mmapq_dropped_records_total", "counter",
	    "Records the producer dropped because the queue was full (on_full = drop).", path,
	    (double)p->dropped);
	one(f, "mmapq_bad_input_total", "counter", "Tokens, lines and records the producer rejected.",
	    path, (double)p->bad_input);
	if (!legacy)
		one(f, "mmapq_clean", "gauge",
		    "1 if the last process to close the file closed it cleanly (0 while one is attached).",
		    path, st->clean);
	one(f, "mmapq_salvages_total", "counter",
	    "Salvages of a damaged file that dropped records (at an attach, or mmapqctl repair).", path,
	    (double)st->salvage.count);
	one(f, "mmapq_last_salvage_timestamp_seconds", "gauge",
	    "When the last salvage was (Unix time; 0: never).", path, (double)st->salvage.usec / 1e6);
	one(f, "mmapq_last_salvage_dropped_records", "gauge", "Records the last salvage dropped.", path,
	    (double)salvage_dropped(&st->salvage));
	one(f, "mmapq_last_salvage_dropped_bytes", "gauge", "Bytes of the records the last salvage dropped.",
	    path, (double)st->salvage.dropped_bytes);
	producer_only(f, "mmapq_attached", "gauge", "1 while a live process is the producer.", path,
	              p->attached);
	producer_only(f, "mmapq_attaches_total", "counter", "Times a process became the producer.", path,
	              (double)p->attaches);
	producer_only(f, "mmapq_recoveries_total", "counter",
	              "Repairs after a process died holding the queue's mutex, done by the producer.",
	              path, (double)p->recoveries);
	producer_only(f, "mmapq_attach_timestamp_seconds", "gauge",
	              "When a process last became the producer (Unix time; 0: never).", path,
	              (double)p->start_usec / 1e6);
	/* fan-out: every registered consumer */
	one(f, "mmapq_consumers_max", "gauge", "Entries of the consumer table (max_consumers).", path,
	    st->max_consumers);
	one(f, "mmapq_consumers_registered", "gauge", "Consumers registered (each keeps its records).",
	    path, st->consumers);
	per_consumer(f, "mmapq_consumer_lag_records", "gauge",
	             "Records published and not yet consumed by this consumer.", path, cs, n, c_lag);
	per_consumer(f, "mmapq_consumer_lag_bytes", "gauge",
	             "Bytes of the ring the records this consumer has not consumed take.", path, cs, n,
	             c_lag_bytes);
	consumed_family(f, path, cs, n, consumed);
	per_consumer(f, "mmapq_consumer_position", "gauge",
	             "Sequence number of the next record this consumer consumes (its cursor).", path, cs,
	             n, c_position);
	per_consumer(f, "mmapq_consumer_attached", "gauge",
	             "1 while a live process is this consumer.", path, cs, n, c_attached);
	per_consumer(f, "mmapq_consumer_recoveries_total", "counter",
	             "Repairs after a process died holding the queue's mutex, done by this consumer.",
	             path, cs, n, c_recoveries);
	per_consumer(f, "mmapq_consumer_attaches_total", "counter",
	             "Times a process became this consumer.", path, cs, n, c_attaches);
	per_consumer(f, "mmapq_consumer_attach_timestamp_seconds", "gauge",
	             "When a process last became this consumer (Unix time; 0: never).", path, cs, n,
	             c_attach_time);
	/* NATS forwarders (output = nats): as they last reported, about a
	 * second ago while attached */
	per_forwarder(f, "mmapq_consumer_nats_connected", "gauge",
	              "1 while this consumer's NATS forwarder is connected to a server.", path, cs, n,
	              fw, h_connected);
	per_forwarder(f, "mmapq_consumer_nats_reconnects_total", "counter",
	              "Times this consumer's NATS forwarder connected again after losing the connection.",
	              path, cs, n, fw, h_reconnects);
	per_forwarder(f, "mmapq_consumer_nats_in_flight_records", "gauge",
	              "Records this consumer's NATS forwarder published and JetStream has not acknowledged.",
	              path, cs, n, fw, h_in_flight);
	per_forwarder(f, "mmapq_consumer_nats_acknowledged_records_total", "counter",
	              "Records JetStream acknowledged to this consumer's NATS forwarder.", path, cs, n, fw,
	              h_acked);
	per_forwarder(f, "mmapq_consumer_nats_last_ack_timestamp_seconds", "gauge",
	              "When JetStream last acknowledged records of this consumer (Unix time; 0: never).",
	              path, cs, n, fw, h_last_ack);
}

/* The producer's wait for room (mmapq_blocked): the time waited, since when
 * it waits, and which of the n consumers cs it waits for. */
static void metrics_blocked(FILE *f, const char *path, struct mmapq *q,
                            const struct mmapq_consumer_status *cs, int n)
{
	uint64_t since = 0, total = 0;
	int32_t holder = -1;

	(void)mmapq_blocked(q, &since, &total, &holder); /* 0, always */
	one(f, "mmapq_producer_blocked_seconds_total", "counter",
	    "Seconds the producer waited for room (the queue full), since the queue file was created.",
	    path, (double)total / 1e6);
	one(f, "mmapq_producer_blocked_since_timestamp_seconds", "gauge",
	    "When the producer's wait for room began (Unix time); 0 while it does not wait.", path,
	    (double)since / 1e6);
	family(f, "mmapq_consumer_blocking_producer", "gauge",
	       "1 for the consumer the producer waits for room for (it holds the oldest record kept).");
	for (int i = 0; i < n; i++) {
		fprintf(f, "mmapq_consumer_blocking_producer{queue=\"");
		label_value(f, path);
		fprintf(f, "\",consumer=\"");
		label_value(f, cs[i].name);
		fprintf(f, "\"} %d\n", since && holder >= 0 && cs[i].index == (uint32_t)holder);
	}
}

/* The records each of the n consumers cs lost to on_full = skip
 * (mmapq_policy). */
static void metrics_skipped(FILE *f, const char *path, struct mmapq *q,
                            const struct mmapq_consumer_status *cs, int n)
{
	family(f, "mmapq_consumer_skipped_records_total", "counter",
	       "Records this consumer lost to on_full = skip (the producer moved its cursor past them"
	       " while it was down), since it was registered.");
	for (int i = 0; i < n; i++) {
		struct mmapq_policy pol = {0};

		if (mmapq_policy(q, (int32_t)cs[i].index, &pol) < 0)
			continue; /* removed meanwhile, or a file of versions 1 to 3 */
		fprintf(f, "mmapq_consumer_skipped_records_total{queue=\"");
		label_value(f, path);
		fprintf(f, "\",consumer=\"");
		label_value(f, cs[i].name);
		fprintf(f, "\"} %" PRIu64 "\n", pol.skipped);
	}
}

/* name{queue="path",producer="producer"} value: one sample per registered
 * producer (fan-in), each series its name's across restarts. */
static void per_producer(FILE *f, const char *name, const char *type, const char *help,
                         const char *path, const struct mmapq_producer_status *ps, int n,
                         double (*value)(const struct mmapq_producer_status *p))
{
	family(f, name, type, help);
	for (int i = 0; i < n; i++) {
		fprintf(f, "%s{queue=\"", name);
		label_value(f, path);
		fprintf(f, "\",producer=\"");
		label_value(f, ps[i].name);
		fprintf(f, "\"} %.17g\n", value(&ps[i]));
	}
}

static double p_published(const struct mmapq_producer_status *p) { return (double)p->published; }
static double p_attached(const struct mmapq_producer_status *p) { return p->attached; }
static double p_dropped(const struct mmapq_producer_status *p) { return (double)p->dropped; }
static double p_bad_input(const struct mmapq_producer_status *p) { return (double)p->bad_input; }
static double p_recoveries(const struct mmapq_producer_status *p) { return (double)p->recoveries; }
static double p_attaches(const struct mmapq_producer_status *p) { return (double)p->attaches; }
static double p_attach_time(const struct mmapq_producer_status *p) { return (double)p->start_usec / 1e6; }
static double p_waited(const struct mmapq_producer_status *p) { return (double)p->blocked_total_usec / 1e6; }
static double p_waiting(const struct mmapq_producer_status *p) { return (double)p->blocked_since_usec / 1e6; }

/* The producer table: every registered producer's counters (labelled
 * producer, as the consumers' are labelled consumer). */
static void metrics_producers(FILE *f, const char *path, const struct mmapq_status *st,
                              const struct mmapq_producer_status *ps, int n)
{
	one(f, "mmapq_producers_max", "gauge", "Entries of the producer table (max_producers).", path,
	    st->max_producers);
	one(f, "mmapq_producers_registered", "gauge", "Producer names registered.", path, n);
	per_producer(f, "mmapq_producer_published_records_total", "counter",
	             "Records this producer published since its name first attached.", path, ps, n,
	             p_published);
	per_producer(f, "mmapq_producer_attached", "gauge", "1 while a live process is this producer.",
	             path, ps, n, p_attached);
	per_producer(f, "mmapq_producer_dropped_records_total", "counter",
	             "Records this producer dropped because the queue was full (on_full = drop).", path,
	             ps, n, p_dropped);
	per_producer(f, "mmapq_producer_bad_input_total", "counter",
	             "Tokens, lines and records this producer rejected.", path, ps, n, p_bad_input);
	per_producer(f, "mmapq_producer_recoveries_total", "counter",
	             "Repairs after a process died holding the queue's mutex, done by this producer.",
	             path, ps, n, p_recoveries);
	per_producer(f, "mmapq_producer_attaches_total", "counter",
	             "Times a process became this producer.", path, ps, n, p_attaches);
	per_producer(f, "mmapq_producer_attach_timestamp_seconds", "gauge",
	             "When a process last became this producer (Unix time; 0: never).", path, ps, n,
	             p_attach_time);
	per_producer(f, "mmapq_producer_waited_seconds_total", "counter",
	             "Seconds this producer waited for room (the queue full).", path, ps, n, p_waited);
	per_producer(f, "mmapq_producer_waiting_since_timestamp_seconds", "gauge",
	             "When this producer's wait for room began (Unix time); 0 while it does not wait.",
	             path, ps, n, p_waiting);
}

/* ---- one HTTP exchange ------------------------------------------------------ */

#define HEAD_MAX 8192

/* ms left until deadline (mmapq_now_ns clock), 0 once it passed. */
static int ms_left(uint64_t deadline_ns)
{
	uint64_t now = mmapq_now_ns();

	return now >= deadline_ns ? 0 : (int)((deadline_ns - now + 999999) / 1000000);
}

/* Until fd is ready for events, at most until deadline: 0, -ETIMEDOUT or
 * -errno. */
static int wait_fd(int fd, short events, uint64_t deadline_ns)
{
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = events};
		int ms = ms_left(deadline_ns), r;

		if (!ms)
			return -ETIMEDOUT;
		r = poll(&pf, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r > 0)
			return 0;
	}
}

/* All of p to fd (non-blocking: a client that does not read cannot hold
 * us past the deadline). */
static int write_all(int fd, const char *p, size_t len, uint64_t deadline_ns)
{
	while (len) {
		ssize_t k = write(fd, p, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_fd(fd, POLLOUT, deadline_ns);
			if (r < 0)
				return r;
			continue;
		}
		if (k < 0)
			return -errno;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

/* The request head (up to the empty line) into buf, NUL-terminated, by
 * the deadline: the whole head, however slowly its bytes come. */
static int read_head(int in, char *buf, size_t size, uint64_t deadline_ns)
{
	size_t len = 0;

	for (;;) {
		int r = wait_fd(in, POLLIN, deadline_ns);
		ssize_t k;

		if (r < 0)
			return r;
		k = read(in, buf + len, size - 1 - len);
		if (k < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return -ECONNRESET;
		len += (size_t)k;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
			return 0;
		if (len == size - 1)
			return -EMSGSIZE;
	}
}

static int respond(int out, uint64_t deadline_ns, int code, const char *reason, const char *extra,
                   const char *body, size_t len, bool head_only)
{
	char hdr[512];
	int n = snprintf(hdr, sizeof(hdr),
	                 "HTTP/1.1 %d %s\r\n"
	                 "Content-Type: %s\r\n"
	                 "Content-Length: %zu\r\n"
	                 "%s"
	                 "Connection: close\r\n\r\n",
	                 code, reason,
	                 code == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8",
	                 len, extra ? extra : "");
	int r = write_all(out, hdr, (size_t)n, deadline_ns);

	return r == 0 && !head_only ? write_all(out, body, len, deadline_ns) : r;
}

/*
 * One HTTP/1.x exchange on in/out (an accepted connection: systemd's
 * Accept=yes hands it over as stdin and stdout): read the request (at most
 * 8 KiB of head; the whole exchange, reading and writing, within timeout_ms:
 * a request that has not come by then is answered 408 if the client takes
 * it at once), answer GET /metrics with 200 and the
 * body made by body(), anything else with 404/405/400, then close.  Returns
 * 0 if a response was sent, -errno if the request could not be read or the
 * answer not written.  body() returns 0, or an HTTP status (503) for a
 * queue that cannot be read, with a one-line reason in *why.
 */
static int metrics_http(int in, int out, int timeout_ms,
                 int (*body)(void *ctx, FILE *f, const char **why), void *ctx)
{
	uint64_t deadline = mmapq_now_ns() + (uint64_t)timeout_ms * 1000000u;
	char head[HEAD_MAX], method[16], target[256], version[16], *text = NULL;
	size_t len = 0;
	const char *why = "";
	int r, code;
	bool head_only;
	FILE *f;

	/* the whole exchange has one deadline: no request (a byte now and
	 * then) nor reader (a window now and then) can stretch it */
	if (fcntl(in, F_SETFL, fcntl(in, F_GETFL) | O_NONBLOCK) < 0 ||
	    fcntl(out, F_SETFL, fcntl(out, F_GETFL) | O_NONBLOCK) < 0)
		return -errno;
	r = read_head(in, head, sizeof(head), deadline);
	if (r == -ETIMEDOUT) {
		/* say so if the client can take it at once; it may not */
		(void)respond(out, mmapq_now_ns(), 408, "Request Timeout", NULL, "request not complete in time\n",
		              29, false);
		return r;
	}
	if (r == -EMSGSIZE)
		return respond(out, deadline, 431, "Request Header Fields Too Large", NULL, "request too large\n", 18, false);
	if (r < 0)
		return r;
	if (sscanf(head, "%15s %255s %15s", method, target, version) != 3 || strncmp(version, "HTTP/1.", 7))
		return respond(out, deadline, 400, "Bad Request", NULL, "bad request\n", 12, false);
	head_only = !strcmp(method, "HEAD");
	if (strcmp(method, "GET") && !head_only)
		return respond(out, deadline, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", "use GET\n", 8, false);
	target[strcspn(target, "?")] = '\0';
	if (strcmp(target, "/metrics"))
		return respond(out, deadline, 404, "Not Found", NULL, "the metrics are at /metrics\n", 28, head_only);
	f = open_memstream(&text, &len);
	if (!f)
		return -errno;
	code = body(ctx, f, &why);
	if (fclose(f) != 0) {
		free(text);
		return -ENOMEM;
	}
	if (code)
		r = respond(out, deadline, code, "Service Unavailable", NULL, why, strlen(why), head_only);
	else
		r = respond(out, deadline, 200, "OK", NULL, text, len, head_only);
	free(text);
	return r;
}

/* ---- the verb ------------------------------------------------------------------- */

struct metrics_req {
	const struct mmapq_config *cfg;
	int code;          /* exit code of a queue that cannot be read */
	char why[600];
};

/* The metrics of the configured queue on f; an HTTP status if it cannot
 * be read (the reason in *why). */
static int metrics_body(void *ctx, FILE *f, const char **why)
{
	struct metrics_req *m = ctx;
	struct mmapq_params qp = attach_params(m->cfg, MMAPQ_ROLE_OBSERVER);
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_producer_status ps[MMAPQ_PRODUCERS_MAX];
	struct consumed consumed = {0};
	struct forwarders fw = {0};
	struct mmapq_status st;
	struct mmapq_error err;
	struct mmapq *q;
	int r, n = 0, np = 0;

	r = mmapq_open(&qp, &q, &err);
	if (r == 0) {
		r = mmapq_status(q, &st);
		if (r == 0)
			r = n = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX);
		if (r >= 0)
			r = np = mmapq_producers(q, ps, MMAPQ_PRODUCERS_MAX);
		if (r >= 0) {
			np = np < (int)MMAPQ_PRODUCERS_MAX ? np : (int)MMAPQ_PRODUCERS_MAX;
			n = n < (int)MMAPQ_CONSUMERS_MAX ? n : (int)MMAPQ_CONSUMERS_MAX;
			consumed.counted = st.version == MMAPQ_FILE_VERSION;
			for (int i = 0; consumed.counted && i < n; i++) {
				int k = mmapq_consumer_consumed(q, cs[i].index, &consumed.n[i]);
				consumed.known[i] = k == 0;
				fw.known[i] = mmapq_consumer_output(q, cs[i].index, &fw.h[i]) == 0;
				fw.n += fw.known[i];
			}
			metrics_write(f, mmapq_path(q), &st, cs, n, &consumed, &fw);
			metrics_blocked(f, mmapq_path(q), q, cs, n);
			metrics_skipped(f, mmapq_path(q), q, cs, n);
			metrics_producers(f, mmapq_path(q), &st, ps, np);
			r = 0;
		} else {
			snprintf(err.msg, sizeof(err.msg), "%s: %s", mmapq_path(q), mmapq_strerror(r));
		}
		mmapq_close(q);
	}
	if (r == 0)
		return 0;
	m->code = exit_code_for_open(r);
	snprintf(m->why, sizeof(m->why), "%s\n", err.msg);
	*why = m->why;
	return 503;
}

/* ---- listening sockets (Accept=no) ---------------------------------------------- */

/* How long one start serves connections: those that came meanwhile, one
 * after the other, each within its own 5 s; then it exits and systemd
 * starts it again for what is left (RuntimeMaxSec= of the unit is above
 * this plus one exchange). */
#define SERVE_MS 8000

/* The listening stream sockets systemd passed (sd_listen_fds), into fds:
 * how many, 0 if none (a connection passed with Accept=yes is not one). */
static int listening_fds(int *fds, int max)
{
	int n = sd_listen_fds(1), k = 0;

	for (int i = 0; i < n && k < max; i++)
		if (sd_is_socket(SD_LISTEN_FDS_START + i, AF_UNSPEC, SOCK_STREAM, 1) > 0)
			fds[k++] = SD_LISTEN_FDS_START + i;
	return n > 0 ? k : 0;
}

/*
 * mmapq-metrics@NAME.socket: a template socket with Accept=yes would start
 * instances of one service template whose instance names the connection,
 * not the queue; with Accept=no its own mmapq-metrics-serve@NAME.service
 * (mmapqctl --instance NAME) gets the listening sockets instead.  Serve
 * every connection waiting (systemd started us for the first), one
 * exchange each, then exit: no daemon stays behind.  A connection that
 * cannot be served is logged and closed; only failing to poll or accept
 * on the sockets themselves is an error (EXIT_IOERR).
 */
static int serve_listening(const int *fds, int n, struct metrics_req *m)
{
	uint64_t until = mmapq_now_ns() + (uint64_t)SERVE_MS * 1000000u;
	struct pollfd pf[8];

	for (int i = 0; i < n; i++) {
		/* the listening sockets' file descriptions are ours alone to
		 * accept on (systemd only polls them): a connection that is gone
		 * by the time we accept must not block us */
		if (fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK) < 0) {
			log_error("metrics --http: listening socket %d: %s", fds[i], strerror(errno));
			return EXIT_IOERR;
		}
		pf[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
	}
	while (mmapq_now_ns() < until) {
		int ready = poll(pf, (nfds_t)n, 0), served = 0;

		if (ready < 0 && errno == EINTR)
			continue;
		if (ready < 0) {
			log_error("metrics --http: poll: %s", strerror(errno));
			return EXIT_IOERR;
		}
		for (int i = 0; ready > 0 && i < n; i++) {
			int c, r;

			if (!(pf[i].revents & POLLIN))
				continue;
			c = accept4(pf[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (c < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
			              errno == ECONNABORTED))
				continue;
			if (c < 0) {
				log_error("metrics --http: accept: %s", strerror(errno));
				return EXIT_IOERR;
			}
			m->code = 0;
			r = metrics_http(c, c, 5000, metrics_body, m);
			if (r < 0)
				log_error("metrics --http: %s", strerror(-r));
			else if (m->code)
				log_error("metrics --http: answered 503: %s", m->why);
			close(c);
			served++;
		}
		if (!served)
			break; /* none waiting: done */
	}
	return EXIT_OK;
}

int metrics(const struct mmapq_config *cfg, bool http)
{
	struct metrics_req m = {.cfg = cfg};
	const char *why;
	int r, fds[8], nfds;

	if (http && (nfds = listening_fds(fds, 8)) > 0)
		return serve_listening(fds, nfds, &m);
	if (http) {
		r = metrics_http(STDIN_FILENO, STDOUT_FILENO, 5000, metrics_body, &m);
		if (r < 0)
			log_error("metrics --http: %s", strerror(-r));
		else if (m.code)
			log_error("metrics --http: answered 503: %s", m.why);
		return r < 0 ? EXIT_IOERR : EXIT_OK;
	}
	if (metrics_body(&m, stdout, &why)) {
		m.why[strcspn(m.why, "\n")] = '\0';
		log_error("%s", m.why);
		return m.code;
	}
	return EXIT_OK;
}
