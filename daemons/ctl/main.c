/* SPDX-License-Identifier: MIT */
/*
 * mmapqctl -- inspect a queue file without disturbing it.
 *
 *   mmapqctl [--json] status   geometry, positions, depth, counters, and
 *                              the pid in each role with whether it is alive
 *   mmapqctl [--json] dump     the unconsumed records with their sequence
 *                              numbers
 *   mmapqctl send [VALUE...]   send records (the arguments, else stdin) to the
 *                              producer's socket; exits 0 only once the
 *                              producer acknowledged them all as published
 *   mmapqctl [--json] consumers   the registered consumers: name, cursor,
 *                              lag, pid, attached, rate since attached
 *   mmapqctl consumer remove NAME unregister a consumer that is not attached
 *
 * status and dump open the file read-only as an observer: no lock, no
 * write, so they can neither hang on a stale mutex nor disturb the daemons.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "metrics.h"
#include "mmapq.h"
#include "producer/protocol.h"
#include "top.h"

/* Length of the valid UTF-8 sequence at p (1..4), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
	size_t n;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		n = 2, cp = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3, cp = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* no overlong forms, no surrogates, nothing past U+10FFFF */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

static bool utf8_valid(const char *s, size_t len)
{
	for (size_t i = 0, n; i < len; i += n)
		if (!(n = utf8_seq((const unsigned char *)s + i, len - i)))
			return false;
	return true;
}

/* s must be valid UTF-8 (utf8_valid); it is written as is, escaped only
 * where JSON requires it. */
static void json_string(FILE *f, const char *s, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_hex(FILE *f, const char *s, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++)
		fprintf(f, "%02x", (unsigned char)s[i]);
	fputc('"', f);
}

static void text_bytes(FILE *f, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\\')
			fputs("\\\\", f);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\x%02x", ch);
		else
			fputc(ch, f);
	}
}

static void iso_time(char *buf, size_t size, uint64_t usec)
{
	time_t t = (time_t)(usec / 1000000u);
	struct tm tm;

	if (!usec || !gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "never");
}

/* by_pid: the lock file could not be read, "attached" is whether the pid
 * is alive (mmapq_status.attached_by_pid) */
static void side_text(const char *name, const struct mmapq_side_status *s, const char *count_name,
                      uint64_t count, bool producer, bool by_pid)
{
	char when[32];

	iso_time(when, sizeof(when), s->start_usec);
	if (s->pid)
		printf("%-10s pid %" PRId32 " (%s), attached since %s\n", name, s->pid,
		       by_pid ? (s->attached ? "pid alive, lock file not readable"
		                             : "pid not running, lock file not readable")
		              : s->attached ? "alive" : "not attached", when);
	else
		printf("%-10s never attached\n", name);
	printf("%-10s %s %" PRIu64, "", count_name, count);
	if (producer)
		printf(", dropped %" PRIu64 ", bad input %" PRIu64, s->dropped, s->bad_input);
	printf(", recoveries %" PRIu64 ", attaches %" PRIu64 "\n", s->recoveries, s->attaches);
}

/* The producer's object has its dropped and bad_input counters, the
 * consumer's has neither (the schema: mmapqctl(1), JSON OUTPUT). */
static void side_json(const char *name, const struct mmapq_side_status *s, const char *count_name,
                      uint64_t count, bool producer)
{
	printf("\"%s\":{\"pid\":%" PRId32 ",\"attached\":%s,\"start_usec\":%" PRIu64 ",\"%s\":%" PRIu64,
	       name, s->pid, s->attached ? "true" : "false", s->start_usec, count_name, count);
	if (producer)
		printf(",\"dropped\":%" PRIu64 ",\"bad_input\":%" PRIu64, s->dropped, s->bad_input);
	printf(",\"recoveries\":%" PRIu64 ",\"attaches\":%" PRIu64 "}", s->recoveries, s->attaches);
}

/* The queue id as 32 hex digits, or "" if it has none yet. */
static void id_hex(const struct mmapq_status *st, char out[2 * MMAPQ_ID_SIZE + 1])
{
	bool zero = true;

	for (size_t i = 0; i < MMAPQ_ID_SIZE; i++) {
		snprintf(out + 2 * i, 3, "%02x", st->id[i]);
		zero = zero && !st->id[i];
	}
	if (zero)
		out[0] = '\0';
}

/* Records per second of a consumer since its holder attached, or < 0 if
 * it is not attached (or has not run long enough to say). */
static double consumer_rate(const struct mmapq_consumer_status *c)
{
	struct timespec ts;
	uint64_t now;

	if (!c->attached || !c->start_usec || c->position < c->attach_position)
		return -1;
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	if (now <= c->start_usec)
		return -1;
	return (double)(c->position - c->attach_position) * 1e6 / (double)(now - c->start_usec);
}

/* The registered consumers (at most MMAPQ_CONSUMERS_MAX): how many, or
 * -errno (said). */
static int list_consumers(struct mmapq *q, struct mmapq_consumer_status *cs)
{
	int n = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX);

	if (n < 0)
		log_error("%s: consumer table: %s", mmapq_path(q), mmapq_strerror(n));
	return n < 0 ? n : n > (int)MMAPQ_CONSUMERS_MAX ? (int)MMAPQ_CONSUMERS_MAX : n;
}

static void consumers_json(const struct mmapq_consumer_status *cs, int n, bool by_pid)
{
	putchar('[');
	for (int i = 0; i < n; i++) {
		const struct mmapq_consumer_status *c = &cs[i];
		double rate = consumer_rate(c);

		printf("%s{\"name\":", i ? "," : "");
		json_string(stdout, c->name, strlen(c->name));
		printf(",\"index\":%" PRIu32 ",\"position\":%" PRIu64 ",\"lag\":%" PRIu64
		       ",\"pid\":%" PRId32 ",\"attached\":%s,\"attached_by\":\"%s\",\"start_usec\":%" PRIu64
		       ",\"registered_usec\":%" PRIu64 ",\"consumed\":%" PRIu64
		       ",\"recoveries\":%" PRIu64 ",\"attaches\":%" PRIu64 ",\"rate\":",
		       c->index, c->position, c->lag, c->pid, c->attached ? "true" : "false",
		       by_pid ? "pid" : "lock", c->start_usec, c->registered_usec, c->position,
		       c->recoveries, c->attaches);
		if (rate < 0)
			printf("null}");
		else
			printf("%.1f}", rate);
	}
	putchar(']');
}

/* `consumers`: one line (or JSON object) per registered consumer. */
static int consumers(struct mmapq *q, bool json)
{
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_status st;
	int r = mmapq_status(q, &st), n;

	if (r < 0) {
		log_error("%s: %s", mmapq_path(q), mmapq_strerror(r));
		return EXIT_BADQUEUE;
	}
	n = list_consumers(q, cs);
	if (n < 0)
		return EXIT_BADQUEUE;
	if (json) {
		consumers_json(cs, n, st.attached_by_pid);
		putchar('\n');
		return EXIT_OK;
	}
	printf("%-20s %20s %12s %8s %-8s %12s\n", "name", "cursor", "lag", "pid", "attached",
	       "rate/s");
	for (int i = 0; i < n; i++) {
		double rate = consumer_rate(&cs[i]);
		char pid[16], rt[32];

		snprintf(pid, sizeof(pid), "%" PRId32, cs[i].pid);
		if (rate < 0)
			snprintf(rt, sizeof(rt), "-");
		else
			snprintf(rt, sizeof(rt), "%.1f", rate);
		printf("%-20s %20" PRIu64 " %12" PRIu64 " %8s %-8s %12s\n", cs[i].name, cs[i].position,
		       cs[i].lag, cs[i].pid ? pid : "-",
		       st.attached_by_pid ? (cs[i].attached ? "pid" : "no") : cs[i].attached ? "yes" : "no",
		       rt);
	}
	printf("%d of %" PRIu32 " consumers registered; tail %" PRIu64 ", oldest kept %" PRIu64 "\n", n,
	       st.max_consumers, st.tail, st.head);
	return EXIT_OK;
}

/* `consumer remove NAME` */
static int consumer_remove(const struct mmapq_config *cfg, const char *name)
{
	struct mmapq_params qp = cli_queue_params(cfg, MMAPQ_ROLE_CONSUMER);
	struct mmapq_error err;
	int r;

	qp.consumer = name;
	r = mmapq_consumer_remove(&qp, &err);
	if (r >= 0) {
		printf("%s: consumer '%s' removed; the %d records it had not consumed are no longer kept"
		       " for it\n", cfg->queue_path, name, r);
		return EXIT_OK;
	}
	log_error("%s", err.msg);
	if (r == -ENOENT && strstr(err.msg, "no consumer named"))
		return EXIT_NOCONSUMER;
	if (r == -EINVAL)
		return EXIT_USAGE;
	return cli_exit_code_for_open(r);
}

static int status(struct mmapq *q, bool json)
{
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_status st;
	const char *path = mmapq_path(q);
	char id[2 * MMAPQ_ID_SIZE + 1];
	int r = mmapq_status(q, &st), n;

	if (r < 0) {
		log_error("%s: %s", path, mmapq_strerror(r));
		return EXIT_BADQUEUE;
	}
	id_hex(&st, id);
	n = list_consumers(q, cs);
	if (n < 0)
		return EXIT_BADQUEUE;
	if (json) {
		/* JSON strings are Unicode: a name that is not UTF-8 goes as hex,
		 * under a key of its own (as dump's line_hex) */
		bool text = utf8_valid(path, strlen(path));
		printf("{\"%s\":", text ? "path" : "path_hex");
		(text ? json_string : json_hex)(stdout, path, strlen(path));
		printf(*id ? ",\"id\":\"%s\"" : ",\"id\":null", id);
		printf(",\"version\":%" PRIu32 ",\"format\":\"%s\",\"capacity\":%" PRIu32
		       ",\"record_size\":%" PRIu32 ",\"slot_size\":%" PRIu32 ",\"file_size\":%" PRIu64
		       ",\"created_usec\":%" PRIu64 ",\"head\":%" PRIu64 ",\"tail\":%" PRIu64
		       ",\"depth\":%" PRIu64 ",",
		       st.version, mmapq_format_name(st.format), st.capacity, st.record_size,
		       st.slot_size, st.file_size, st.created_usec, st.head, st.tail, st.tail - st.head);
		side_json("producer", &st.producer, "published", st.tail, true);
		putchar(',');
		side_json("consumer", &st.consumer, "consumed", st.head, false);
		printf(",\"max_consumers\":%" PRIu32 ",\"consumers\":", st.max_consumers);
		consumers_json(cs, n, st.attached_by_pid);
		printf(",\"attached_by\":\"%s\"}\n", st.attached_by_pid ? "pid" : "lock");
	} else {
		char when[32];
		iso_time(when, sizeof(when), st.created_usec);
		printf("%-10s %s\n", "queue", path);
		printf("%-10s %s\n", "id", *id ? id : "none yet (given when a producer or consumer attaches)");
		printf("%-10s version %" PRIu32 ", format %s, record_size %" PRIu32 ", capacity %" PRIu32
		       ", file %" PRIu64 " bytes, created %s\n",
		       "format", st.version, mmapq_format_name(st.format), st.record_size, st.capacity,
		       st.file_size, when);
		printf("%-10s head %" PRIu64 ", tail %" PRIu64 ", depth %" PRIu64 "/%" PRIu32 "\n",
		       "positions", st.head, st.tail, st.tail - st.head, st.capacity);
		side_text("producer", &st.producer, "published", st.tail, true, st.attached_by_pid);
		for (int i = 0; i < n; i++) {
			struct mmapq_side_status s = {
				.pid = cs[i].pid, .attached = cs[i].attached, .start_usec = cs[i].start_usec,
				.recoveries = cs[i].recoveries, .attaches = cs[i].attaches,
			};
			char label[MMAPQ_CONSUMER_NAME_MAX + 16];

			snprintf(label, sizeof(label), "consumer %.*s", MMAPQ_CONSUMER_NAME_MAX, cs[i].name);
			side_text(label, &s, "consumed", cs[i].position, false, st.attached_by_pid);
		}
		if (!n)
			printf("%-10s none registered (of %" PRIu32 ")\n", "consumers", st.max_consumers);
	}
	return EXIT_OK;
}

static int dump(struct mmapq *q, bool json)
{
	struct mmapq_status st;
	bool first = true;
	char *buf;
	int r = mmapq_status(q, &st);

	if (r < 0) {
		log_error("%s: %s", mmapq_path(q), mmapq_strerror(r));
		return EXIT_BADQUEUE;
	}
	/* each record is copied out and checked before it is printed: the
	 * slots may be reused under us */
	buf = malloc(mmapq_record_size(q));
	if (!buf) {
		log_error("%s: out of memory", mmapq_path(q));
		return EXIT_IOERR;
	}
	if (json)
		printf("[");
	for (uint64_t seq = st.head; seq < st.tail; seq++) {
		struct mmapq_record rec;

		r = mmapq_peek(q, seq, buf, mmapq_record_size(q), &rec);
		if (r == -ENOENT)
			continue; /* consumed while we were reading */
		if (r < 0) {
			if (json)
				printf("]\n");
			fflush(stdout);
			log_error("%s: record %" PRIu64 ": %s", mmapq_path(q), seq, mmapq_strerror(r));
			free(buf);
			return EXIT_BADQUEUE;
		}
		if (st.format == MMAPQ_FORMAT_INT) {
			int64_t v;
			memcpy(&v, rec.data, sizeof(v));
			if (json)
				printf("%s{\"seq\":%" PRIu64 ",\"value\":%" PRId64 "}", first ? "" : ",",
				       seq, v);
			else
				printf("%" PRIu64 "\t%" PRId64 "\n", seq, v);
		} else if (json) {
			/* JSON strings are Unicode: bytes that are not UTF-8 go as hex */
			bool text = utf8_valid(rec.data, rec.len);
			printf("%s{\"seq\":%" PRIu64 ",\"%s\":", first ? "" : ",", seq,
			       text ? "line" : "line_hex");
			(text ? json_string : json_hex)(stdout, rec.data, rec.len);
			putchar('}');
		} else {
			printf("%" PRIu64 "\t", seq);
			text_bytes(stdout, rec.data, rec.len);
			putchar('\n');
		}
		first = false;
	}
	free(buf);
	if (json)
		printf("]\n");
	return EXIT_OK;
}

/* One send: records out and replies in at the same time. */
struct sender {
	const char *path;
	int fd;
	char **values;            /* the VALUE arguments, or NULL: stdin */
	int nvalues, next_value;
	bool in_eof;              /* no more records to send */
	bool shut;                /* our sending side is shut down */
	char out[65536];          /* records read, not yet sent */
	size_t out_len, out_off;
	char *in;                 /* replies received, not yet a whole line */
	size_t in_len, in_cap;
	bool peer_eof;
	bool acked;               /* an OK line came */
	bool failed;              /* a FAIL line came */
	struct protocol_counts counts; /* the last ACK, OK or FAIL line's */
};

/* A reply line (mmapq-protocol(7)): ERR (one rejected record), ACK (what
 * is published so far), OK or FAIL (the last one); a line of another kind
 * is from a newer producer and is ignored. */
static void sender_line(struct sender *sd, const char *line)
{
	struct protocol_reply r;

	if (protocol_parse(line, &r) < 0) {
		log_error("%s: producer: malformed line: %s", sd->path, line);
		return;
	}
	switch (r.kind) {
	case PROTOCOL_ERR:
		log_error("%s: rejected: %s", sd->path, r.text);
		break;
	case PROTOCOL_ACK:
		sd->counts = r.counts;
		break;
	case PROTOCOL_OK:
		sd->counts = r.counts;
		sd->acked = true;
		break;
	case PROTOCOL_FAIL:
		log_error("%s: the producer gave up on this connection: %s", sd->path, r.text);
		sd->counts = r.counts;
		sd->failed = true;
		break;
	case PROTOCOL_OTHER:
		log_debug("%s: producer: ignoring '%s' (a newer protocol?)", sd->path, line);
		break;
	}
}

/* Read what the producer sent; handle each whole line.  true if it moved. */
static bool sender_read(struct sender *sd)
{
	char *nl;
	ssize_t k;

	if (sd->in_cap - sd->in_len < 4096) {
		size_t cap = sd->in_cap ? sd->in_cap * 2 : 16384;
		char *b = realloc(sd->in, cap);
		if (!b) {
			log_error("out of memory");
			sd->peer_eof = true;
			return false;
		}
		sd->in = b;
		sd->in_cap = cap;
	}
	k = read(sd->fd, sd->in + sd->in_len, sd->in_cap - sd->in_len - 1);
	if (k < 0 && (errno == EINTR || errno == EAGAIN))
		return false;
	if (k <= 0) {
		sd->peer_eof = true;
		return k == 0;
	}
	sd->in_len += (size_t)k;
	sd->in[sd->in_len] = '\0';
	char *line = sd->in;
	while ((nl = memchr(line, '\n', sd->in_len - (size_t)(line - sd->in)))) {
		*nl = '\0';
		sender_line(sd, line);
		line = nl + 1;
	}
	sd->in_len -= (size_t)(line - sd->in);
	memmove(sd->in, line, sd->in_len);
	return true;
}

/* More records into out[] from the arguments (stdin is read by the loop). */
static void sender_fill_values(struct sender *sd)
{
	while (sd->next_value < sd->nvalues) {
		const char *v = sd->values[sd->next_value];
		size_t n = strlen(v);
		if (sd->out_len && sd->out_len + n + 1 > sizeof(sd->out))
			return;
		if (n + 1 > sizeof(sd->out)) {
			/* one huge argument: the producer rejects it as too long */
			n = sizeof(sd->out) - 1;
		}
		memcpy(sd->out + sd->out_len, v, n);
		sd->out[sd->out_len + n] = '\n';
		sd->out_len += n + 1;
		sd->next_value++;
	}
	sd->in_eof = true;
}

/*
 * Send the records (the arguments, else stdin) while reading the replies:
 * the producer reports each rejected record with an ERR line and stops
 * reading a client whose replies pile up, so both directions must flow.
 * After our last record, shut down our side and wait for the final line.
 * timeout_s: give up when the producer has neither taken a byte nor
 * answered for that long (0: never), e.g. a producer that does not serve
 * its socket (input = generate) or a queue that stays full.
 */
static int send_records(const char *path, int nvalues, char **values, unsigned timeout_s,
                        bool stdin_closed)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct sender sd = {.path = path, .fd = -1, .values = values, .nvalues = nvalues};
	char last_seq[24] = "-";
	uint64_t last_progress = mmapq_now_ns();
	int code;

	if (!nvalues && stdin_closed) {
		log_error("no VALUE arguments and standard input is closed: nothing to send");
		return EXIT_IOERR;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("%s: socket path too long", path);
		return EXIT_USAGE;
	}
	strcpy(sa.sun_path, path);
	sd.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sd.fd < 0 || connect(sd.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		if (e == EACCES || e == EPERM) {
			log_error("%s: permission denied: only root and members of the socket's group may"
			          " send (usermod -aG mmapq USER)", path);
			code = EXIT_NOPERM;
		} else {
			log_error("%s: cannot connect to the producer: %s (is it running with input ="
			          " socket?)", path, strerror(e));
			code = EXIT_UNAVAILABLE;
		}
		if (sd.fd >= 0)
			close(sd.fd);
		return code;
	}
	fcntl(sd.fd, F_SETFL, fcntl(sd.fd, F_GETFL) | O_NONBLOCK);
	if (nvalues)
		sender_fill_values(&sd);

	while (!sd.peer_eof) {
		struct pollfd pf[2] = {{.fd = sd.fd, .events = POLLIN}, {.fd = -1}};
		bool pending = sd.out_off < sd.out_len;
		uint64_t now = mmapq_now_ns();
		int timeout_ms = -1, r;

		if (!pending && sd.in_eof && !sd.shut) {
			shutdown(sd.fd, SHUT_WR); /* end of our records: the producer acknowledges */
			sd.shut = true;
		}
		if (pending)
			pf[0].events |= POLLOUT;
		else if (!sd.in_eof)
			pf[1] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
		/* waiting for our own stdin is not the producer's fault */
		if (timeout_s && (pending || sd.shut)) {
			uint64_t end = last_progress + (uint64_t)timeout_s * 1000000000u;
			timeout_ms = end > now ? (int)((end - now + 999999) / 1000000) : 0;
		}
		r = poll(pf, 2, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			log_error("poll: %s", strerror(errno));
			break;
		}
		if (r == 0) {
			log_error("%s: no progress for %u s: the producer neither took records nor"
			          " answered (is it serving its socket? is the queue full?); %s",
			          path, timeout_s, sd.out_off || sd.shut ?
			          "some records may have been published" : "nothing was published");
			close(sd.fd);
			free(sd.in);
			return EXIT_UNAVAILABLE;
		}
		if (pf[1].revents) {
			ssize_t k = read(STDIN_FILENO, sd.out, sizeof(sd.out));
			if (k < 0 && errno != EINTR && errno != EAGAIN) {
				log_error("stdin: %s", strerror(errno));
				close(sd.fd);
				free(sd.in);
				return EXIT_IOERR;
			}
			if (k == 0)
				sd.in_eof = true;
			if (k > 0) {
				sd.out_len = (size_t)k;
				sd.out_off = 0;
			}
		}
		if (pf[0].revents & POLLOUT) {
			ssize_t k = send(sd.fd, sd.out + sd.out_off, sd.out_len - sd.out_off, MSG_NOSIGNAL);
			if (k > 0) {
				sd.out_off += (size_t)k;
				last_progress = mmapq_now_ns();
			} else if (k < 0 && errno != EINTR && errno != EAGAIN) {
				/* the producer closed us: its last line says why */
				log_error("%s: send: %s", path, strerror(errno));
				sd.out_off = sd.out_len = 0;
				sd.in_eof = sd.shut = true;
			}
			if (sd.out_off == sd.out_len) {
				sd.out_off = sd.out_len = 0;
				if (nvalues)
					sender_fill_values(&sd);
			}
		}
		if ((pf[0].revents & (POLLIN | POLLHUP | POLLERR)) && sender_read(&sd))
			last_progress = mmapq_now_ns();
	}
	close(sd.fd);
	free(sd.in);
	if (sd.counts.published)
		snprintf(last_seq, sizeof(last_seq), "%" PRIu64, sd.counts.last_seq);
	if (!sd.acked) {
		if (sd.failed)
			log_error("%s: %" PRIu64 " records published (last seq %s), the rest not", path,
			          sd.counts.published, last_seq);
		else
			log_error("%s: the producer closed the connection without acknowledging"
			          " (some records may have been published)", path);
		return EXIT_IOERR;
	}
	printf("published %" PRIu64 ", last seq %s", sd.counts.published, last_seq);
	if (sd.counts.rejected || sd.counts.dropped)
		printf(", rejected %" PRIu64 ", dropped %" PRIu64, sd.counts.rejected, sd.counts.dropped);
	putchar('\n');
	return sd.counts.rejected ? EXIT_DATAERR : sd.counts.dropped ? EXIT_TEMPFAIL : EXIT_OK;
}

/* ---- recreate --------------------------------------------------------------- */

/* Open the queue file at path in a role: with the configured geometry, or
 * (st) with the geometry st gives, to read that file out (one of format
 * version 1 too). */
static int open_as(const struct mmapq_config *cfg, const struct mmapq_status *st, enum mmapq_role role,
                   const char *path, struct mmapq **q)
{
	struct mmapq_params qp = cli_queue_params(cfg, role);
	struct mmapq_error err;
	int r;

	qp.path = path;
	if (st) {
		qp.capacity = st->capacity;
		qp.record_size = st->record_size;
		qp.format = st->format;
		qp.max_consumers = st->max_consumers;
		qp.migrate = true;
	}
	r = mmapq_open(&qp, q, &err);
	if (r < 0)
		log_error("%s", err.msg);
	return r;
}

/*
 * Whether what the old file holds (st, read through q; its ncons
 * consumers cs) fits the configured geometry: 0, or EXIT_DATAERR (said,
 * naming what does not fit), or EXIT_IOERR.  Only reads (the records with
 * mmapq_peek), so a file refused is left as it was.
 */
static int check_fits(const struct mmapq_config *cfg, const char *path, const struct mmapq_status *st,
                      struct mmapq *q, const struct mmapq_consumer_status *cs, int ncons)
{
	struct mmapq_record rec;
	char *buf;

	if ((uint32_t)ncons > cfg->max_consumers) {
		char names[MMAPQ_CONSUMERS_MAX * (MMAPQ_CONSUMER_NAME_MAX + 4) + 1];
		size_t len = 0;

		names[0] = '\0';
		for (int i = 0; i < ncons && len < sizeof(names); i++)
			len += (size_t)snprintf(names + len, sizeof(names) - len, "%s'%s'", i ? ", " : "",
			                        cs[i].name);
		log_error("%s: %d consumers are registered (%s), more than the new max_consumers %" PRIu32
		          "; remove %" PRIu32 " of them first (mmapqctl consumer remove NAME), or keep"
		          " max_consumers at %d or more", path, ncons, names, cfg->max_consumers,
		          (uint32_t)ncons - cfg->max_consumers, ncons);
		return EXIT_DATAERR;
	}
	if (st->tail - st->head > cfg->capacity) {
		log_error("%s: holds %" PRIu64 " records, more than the new capacity %" PRIu32
		          "; consume some first", path, st->tail - st->head, cfg->capacity);
		return EXIT_DATAERR;
	}
	if (st->format != cfg->format && st->tail != st->head) {
		log_error("%s: holds %" PRIu64 " %s records, the configuration says format = %s;"
		          " consume them first (with the old format)", path, st->tail - st->head,
		          mmapq_format_name(st->format), mmapq_format_name(cfg->format));
		return EXIT_DATAERR;
	}
	buf = malloc(mmapq_record_size(q));
	if (!buf) {
		log_error("%s: out of memory", path);
		return EXIT_IOERR;
	}
	for (uint64_t seq = st->head; seq < st->tail; seq++) {
		if (mmapq_peek(q, seq, buf, mmapq_record_size(q), &rec) == 0 &&
		    rec.len > cfg->record_size) {
			log_error("%s: record %" PRIu64 " has %" PRIu32 " bytes, more than the new"
			          " record_size %" PRIu32, path, rec.seq, rec.len, cfg->record_size);
			free(buf);
			return EXIT_DATAERR;
		}
	}
	free(buf);
	return 0;
}

/*
 * What recreate finds before it touches anything (obs, an observer of the
 * old file): its status and consumers into st, cs and *ncons.  EXIT_OK with
 * *ncons < 0: nothing to do (said); else an exit code (said), EXIT_OK if it
 * may go on: no daemon attached, and all it holds fits.
 */
static int recreate_precheck(const struct mmapq_config *cfg, struct mmapq *obs,
                             struct mmapq_status *st, struct mmapq_consumer_status *cs, int *ncons)
{
	const char *path = cfg->queue_path;
	int r = mmapq_status(obs, st);

	*ncons = r < 0 ? r : list_consumers(obs, cs);
	if (r < 0 || *ncons < 0) {
		if (r < 0)
			log_error("%s: %s", path, mmapq_strerror(r));
		return EXIT_BADQUEUE;
	}
	if (st->version == MMAPQ_FILE_VERSION && st->capacity == cfg->capacity &&
	    st->record_size == cfg->record_size && st->format == cfg->format &&
	    st->max_consumers == cfg->max_consumers) {
		printf("%s: already capacity %" PRIu32 ", record_size %" PRIu32 ", format %s,"
		       " max_consumers %" PRIu32 "; nothing to do\n", path, st->capacity, st->record_size,
		       mmapq_format_name(st->format), st->max_consumers);
		*ncons = -1;
		return EXIT_OK;
	}
	if (st->producer.attached) {
		log_error("%s: the producer is attached (pid %" PRId32 "); stop every daemon first"
		          " (systemctl stop mmapq.target)", path, st->producer.pid);
		return EXIT_ROLE_TAKEN;
	}
	for (int i = 0; i < *ncons; i++) {
		if (cs[i].attached) {
			log_error("%s: consumer '%s' is attached (pid %" PRId32 "); stop every daemon first"
			          " (systemctl stop mmapq.target, and each mmapq-consumer-named@ unit)",
			          path, cs[i].name, cs[i].pid);
			return EXIT_ROLE_TAKEN;
		}
	}
	return check_fits(cfg, path, st, obs, cs, *ncons);
}

/*
 * The old file's consumers into the new one (next, its producer), each
 * with its name, counters and place among the records: the old file's
 * oldest record kept (old_floor) is sequence number 0 of the new one.
 * 0, or an exit code (said).
 */
static int carry_consumers(struct mmapq *next, struct mmapq_consumer_status *cs, int n,
                           uint64_t old_floor)
{
	int r;

	for (int i = 0; i < n; i++) {
		cs[i].position -= old_floor;
		/* where it was when it last attached: only its rate since
		 * then (shown while attached) uses it */
		cs[i].attach_position = cs[i].attach_position > old_floor ?
		                        cs[i].attach_position - old_floor : 0;
	}
	r = mmapq_consumers_restore(next, cs, (uint32_t)n);
	if (r < 0) {
		log_error("%s: carrying the consumers over: %s", mmapq_path(next), mmapq_strerror(r));
		return EXIT_IOERR;
	}
	return 0;
}

/*
 * Give the queue file the configured geometry, keeping its records and
 * its consumers: the way out of exit 65 after capacity, record_size,
 * format or max_consumers changed in mmapq.ini.  Every daemon must be
 * stopped; we take both roles of the old file (so none can attach
 * meanwhile), build the new file beside it, copy the unconsumed records in
 * order, register the consumers in its table (of the new size), and
 * rename it over the old one.  Until the rename the old file is untouched,
 * so a failure at any step loses nothing.  Sequence numbers start again at
 * 0 in the new file.  A file of format version 1 (which the daemons
 * refuse) is recreated in the current version even with an unchanged
 * geometry: that is how it is migrated.
 */
static int recreate(const struct mmapq_config *cfg)
{
	const char *path = cfg->queue_path;
	struct mmapq *obs = NULL, *cons = NULL, *prod = NULL, *next = NULL;
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_status st;
	int ncons;
	struct stat old;
	char *tmp = NULL, *tmp_lock = NULL;
	uint32_t n = 0, copied = 0;
	int r, code = EXIT_OK;

	r = open_as(cfg, NULL, MMAPQ_ROLE_OBSERVER, path, &obs);
	if (r < 0)
		return cli_exit_code_for_open(r);
	code = recreate_precheck(cfg, obs, &st, cs, &ncons);
	mmapq_close(obs);
	if (code != EXIT_OK || ncons < 0)
		return code;
	/* both roles of the old file: from here on no daemon can attach, and
	 * nothing in it moves */
	r = open_as(cfg, &st, MMAPQ_ROLE_CONSUMER, path, &cons);
	if (r == 0)
		r = open_as(cfg, &st, MMAPQ_ROLE_PRODUCER, path, &prod);
	if (r < 0) {
		code = cli_exit_code_for_open(r);
		goto out;
	}
	/* read again, now that nothing moves (a consumer may have run between
	 * the look above and here), and checked again below */
	r = mmapq_status(cons, &st);
	if (r == 0)
		r = mmapq_available(cons, 0, &n);
	if (r == -EAGAIN) {
		n = 0;
		r = 0;
	}
	if (r < 0) {
		log_error("%s: %s", path, mmapq_strerror(r));
		code = cli_exit_code_for_open(r);
		goto out;
	}
	ncons = list_consumers(cons, cs);
	code = ncons < 0 ? EXIT_BADQUEUE : check_fits(cfg, path, &st, cons, cs, ncons);
	if (code)
		goto out;
	if (asprintf(&tmp, "%s.recreate-%d", path, (int)getpid()) < 0)
		tmp = NULL;
	if (tmp && asprintf(&tmp_lock, "%s" MMAPQ_LOCK_SUFFIX, tmp) < 0)
		tmp_lock = NULL;
	if (!tmp_lock || stat(path, &old) < 0) {
		log_error("%s: %s", path, tmp_lock ? strerror(errno) : "out of memory");
		code = EXIT_IOERR;
		goto out;
	}
	r = open_as(cfg, NULL, MMAPQ_ROLE_PRODUCER, tmp, &next);
	if (r < 0) {
		code = cli_exit_code_for_open(r);
		goto out;
	}
	while (copied < n) {
		uint32_t room;
		r = mmapq_reserve(next, 0, &room);
		for (; r == 0 && room && copied < n; room--, copied++) {
			struct mmapq_record rec;
			r = mmapq_get(cons, copied, &rec);
			if (r == 0)
				r = mmapq_put(next, rec.data, rec.len);
		}
		if (r == 0) {
			int k = mmapq_publish(next);
			r = k < 0 ? k : 0;
		}
		if (r < 0) {
			log_error("%s: copying record %" PRIu32 ": %s", tmp, copied, mmapq_strerror(r));
			code = EXIT_IOERR;
			goto out;
		}
	}
	code = carry_consumers(next, cs, ncons, st.head);
	if (code)
		goto out;
	mmapq_close(next);
	next = NULL;
	/* the daemons' user must own the new file as it did the old one */
	if ((geteuid() == 0 && chown(tmp, old.st_uid, old.st_gid) < 0) || rename(tmp, path) < 0) {
		log_error("%s: cannot put the new file in place: %s", tmp, strerror(errno));
		code = EXIT_IOERR;
		goto out;
	}
	free(tmp);
	tmp = NULL;
	printf("%s: recreated: format version %" PRIu32 " -> %" PRIu32 ", capacity %" PRIu32 " -> %" PRIu32
	       ", record_size %" PRIu32 " -> %" PRIu32 ", format %s -> %s, max_consumers %" PRIu32
	       " -> %" PRIu32 "; %" PRIu32 " records and %d consumer(s) carried over (sequence numbers"
	       " start again at 0)\n", path, st.version, MMAPQ_FILE_VERSION,
	       st.capacity, cfg->capacity, st.record_size, cfg->record_size,
	       mmapq_format_name(st.format), mmapq_format_name(cfg->format), st.max_consumers,
	       cfg->max_consumers, copied, ncons);
out:
	mmapq_close(next);
	if (tmp)
		unlink(tmp); /* a failure: the old file is as it was */
	if (tmp_lock)
		unlink(tmp_lock); /* the temporary name's lock file, never in use again */
	free(tmp_lock);
	free(tmp);
	mmapq_close(prod);
	mmapq_close(cons);
	return code;
}

/* ---- metrics ------------------------------------------------------------------ */

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
	struct mmapq_params qp = cli_queue_params(m->cfg, MMAPQ_ROLE_OBSERVER);
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_status st;
	struct mmapq_error err;
	struct mmapq *q;
	int r, n = 0;

	r = mmapq_open(&qp, &q, &err);
	if (r == 0) {
		r = mmapq_status(q, &st);
		if (r == 0)
			r = n = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX);
		if (r >= 0) {
			metrics_write(f, mmapq_path(q), &st, cs, n < (int)MMAPQ_CONSUMERS_MAX ? n :
			              (int)MMAPQ_CONSUMERS_MAX);
			r = 0;
		} else {
			snprintf(err.msg, sizeof(err.msg), "%s: %s", mmapq_path(q), mmapq_strerror(r));
		}
		mmapq_close(q);
	}
	if (r == 0)
		return 0;
	m->code = cli_exit_code_for_open(r);
	snprintf(m->why, sizeof(m->why), "%s\n", err.msg);
	*why = m->why;
	return 503;
}

/* `metrics`: to stdout; `metrics --http`: one HTTP exchange on stdin and
 * stdout, the connection systemd accepted (mmapq-metrics.socket). */
static int metrics(const struct mmapq_config *cfg, bool http)
{
	struct metrics_req m = {.cfg = cfg};
	const char *why;
	int r;

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

CLI_DEFINE_BUILD;

int main(int argc, char **argv)
{
	struct mmapq_config cfg;
	struct mmapq_params qp;
	struct mmapq_error err;
	struct mmapq *q;
	struct cli c;
	const char *cmd;
	unsigned closed_std;
	int r, code;

	closed_std = cli_start();
	log_init("mmapqctl");
	cli_parse(&c, argc, argv, false, true);
	/* send --socket needs nothing from the configuration */
	if (c.socket_path && c.argi < argc && !strcmp(argv[c.argi], "send") && !c.check_config)
		return send_records(c.socket_path, argc - c.argi - 1, argv + c.argi + 1, c.timeout_s,
		                    CLI_CLOSED(closed_std, STDIN_FILENO));
	code = cli_load_config(&c, &cfg);
	if (code)
		return code;
	if (c.check_config) {
		return cli_check_config_result(&c);
	}
	if (c.argi >= argc)
		cli_usage_error(&c, "missing command: status, top, dump, consumers, consumer, send, metrics"
		                " or recreate");
	cmd = argv[c.argi];
	if (!strcmp(cmd, "send"))
		return send_records(c.socket_path ? c.socket_path : cfg.socket_path, argc - c.argi - 1,
		                    argv + c.argi + 1, c.timeout_s, CLI_CLOSED(closed_std, STDIN_FILENO));
	if (CLI_CLOSED(closed_std, STDOUT_FILENO)) {
		log_error("%s: standard output is closed: nowhere to print", cmd);
		return EXIT_IOERR;
	}
	if (!strcmp(cmd, "consumer")) {
		if (c.argi + 3 != argc || strcmp(argv[c.argi + 1], "remove"))
			cli_usage_error(&c, "usage: consumer remove NAME");
		/* the library checks the name (64): any a queue file may hold,
		 * so that `consumer remove -- -x` removes a consumer an older
		 * version let register under a name starting with '-' */
		cli_sigbus_guard(cfg.queue_path);
		code = consumer_remove(&cfg, argv[c.argi + 2]);
		if (fflush(stdout) != 0 && code == EXIT_OK)
			code = EXIT_IOERR;
		return code;
	}
	if ((strcmp(cmd, "status") && strcmp(cmd, "dump") && strcmp(cmd, "recreate") &&
	     strcmp(cmd, "metrics") && strcmp(cmd, "top") && strcmp(cmd, "consumers")) ||
	    c.argi + 1 != argc)
		cli_usage_error(&c, "unknown command or extra argument: '%s' (status, top, dump, consumers,"
		                " consumer, send, metrics or recreate)",
		                c.argi + 1 != argc ? argv[c.argi + 1] : cmd);
	if (!strcmp(cmd, "top")) {
		qp = cli_queue_params(&cfg, MMAPQ_ROLE_OBSERVER);
		cli_sigbus_guard(qp.path);
		return top_run(&qp, 1000);
	}
	if (!strcmp(cmd, "metrics")) {
		cli_sigbus_guard(cfg.queue_path);
		code = metrics(&cfg, c.http);
		if (fflush(stdout) != 0 && code == EXIT_OK)
			code = EXIT_IOERR;
		return code;
	}
	if (!strcmp(cmd, "recreate")) {
		cli_sigbus_guard(cfg.queue_path);
		code = recreate(&cfg);
		if (fflush(stdout) != 0 && code == EXIT_OK)
			code = EXIT_IOERR;
		return code;
	}
	qp = cli_queue_params(&cfg, MMAPQ_ROLE_OBSERVER);
	cli_sigbus_guard(qp.path);
	r = mmapq_open(&qp, &q, &err);
	if (r < 0) {
		log_error("%s", err.msg);
		return cli_exit_code_for_open(r);
	}
	code = !strcmp(cmd, "status") ? status(q, c.json) :
	       !strcmp(cmd, "consumers") ? consumers(q, c.json) : dump(q, c.json);
	mmapq_close(q);
	if (fflush(stdout) != 0 && code == EXIT_OK) {
		log_error("stdout: %s", strerror(errno));
		code = EXIT_IOERR;
	}
	return code;
}
