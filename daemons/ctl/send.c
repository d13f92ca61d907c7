/* SPDX-License-Identifier: MIT */
/*
 * send.c -- `send`: records (the arguments, each one record, framed in the
 * queue's format; else standard input, passed on as it is) to the
 * producer's socket; exits 0 only once the producer acknowledged them all
 * as published (mmapq-protocol(7); protocol.c parses the replies).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "exit.h"
#include "log.h"
#include "producer/protocol.h"

/* One send: records out and replies in at the same time. */
struct sender {
	const char *path;
	int fd;
	char **values;            /* the VALUE arguments, or NULL: stdin */
	int nvalues, next_value;
	size_t value_off;         /* bytes of values[next_value], framed, already in out */
	uint32_t format;          /* how to frame them; 0: not known (as lines) */
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

/* More records into out[] from the arguments (stdin is read by the loop),
 * each framed as the producer reads its input: as many bytes as fit, an
 * argument of any length in as many rounds as it takes. */
static void sender_fill_values(struct sender *sd)
{
	uint32_t format = sd->format ? sd->format : MMAPQ_FORMAT_LINE;

	while (sd->next_value < sd->nvalues) {
		const char *v = sd->values[sd->next_value];
		size_t n = strlen(v), np, total;
		unsigned char pre[4];
		const char *suf;

		np = frame_prefix(format, n, pre);
		suf = frame_suffix(format, v, n);
		total = np + n + strlen(suf);
		while (sd->value_off < total && sd->out_len < sizeof(sd->out)) {
			size_t off = sd->value_off, k, avail;
			const char *src;

			if (off < np)
				src = (const char *)pre + off, avail = np - off;
			else if (off < np + n)
				src = v + (off - np), avail = np + n - off;
			else
				src = suf + (off - np - n), avail = total - off;
			k = avail < sizeof(sd->out) - sd->out_len ? avail : sizeof(sd->out) - sd->out_len;
			memcpy(sd->out + sd->out_len, src, k);
			sd->out_len += k;
			sd->value_off += k;
		}
		if (sd->value_off < total)
			return; /* out[] is full */
		sd->value_off = 0;
		sd->next_value++;
	}
	sd->in_eof = true;
}

/* Arguments that no record of the format can be: said; EXIT_USAGE, or 0. */
static int check_values(int nvalues, char **values, uint32_t format)
{
	for (int i = 0; format == MMAPQ_FORMAT_LINE && i < nvalues; i++) {
		if (strchr(values[i], '\n')) {
			log_error("VALUE %d holds a newline, which ends a line record (format line): send"
			          " such text as several records, or on standard input", i + 1);
			return EXIT_USAGE;
		}
	}
	return 0;
}

/* A connection to the producer's socket at path: the fd, or -(exit code)
 * (said). */
static int connect_producer(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, e;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("%s: socket path too long", path);
		return -EXIT_USAGE;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		return fd;
	}
	e = errno;
	if (fd >= 0)
		close(fd);
	if (e == EACCES || e == EPERM) {
		log_error("%s: permission denied: only root and members of the socket's group may"
		          " send (usermod -aG mmapq USER)", path);
		return -EXIT_NOPERM;
	}
	log_error("%s: cannot connect to the producer: %s (is it running with input ="
	          " socket?)", path, strerror(e));
	return -EXIT_UNAVAILABLE;
}

/* What poll said of our stdin: a chunk of records to send, or its end.
 * 0, or EXIT_IOERR (said). */
static int sender_stdin(struct sender *sd)
{
	ssize_t k = read(STDIN_FILENO, sd->out, sizeof(sd->out));

	if (k < 0 && errno != EINTR && errno != EAGAIN) {
		log_error("stdin: %s", strerror(errno));
		return EXIT_IOERR;
	}
	if (k == 0)
		sd->in_eof = true;
	if (k > 0) {
		sd->out_len = (size_t)k;
		sd->out_off = 0;
	}
	return 0;
}

/* The socket takes more of what we send: true if it took a byte. */
static bool sender_write(struct sender *sd)
{
	ssize_t k = send(sd->fd, sd->out + sd->out_off, sd->out_len - sd->out_off, MSG_NOSIGNAL);
	bool moved = k > 0;

	if (k > 0) {
		sd->out_off += (size_t)k;
	} else if (k < 0 && errno != EINTR && errno != EAGAIN) {
		/* the producer closed us: its last line says why */
		log_error("%s: send: %s", sd->path, strerror(errno));
		sd->out_off = sd->out_len = 0;
		sd->in_eof = sd->shut = true;
	}
	if (sd->out_off == sd->out_len) {
		sd->out_off = sd->out_len = 0;
		if (sd->nvalues)
			sender_fill_values(sd);
	}
	return moved;
}

/*
 * Records out and replies in until the producer closes the connection:
 * the producer reports each rejected record with an ERR line and stops
 * reading a client whose replies pile up, so both directions must flow.
 * After our last record, shut down our side and wait for the final line.
 * timeout_s: give up when the producer has neither taken a byte nor
 * answered for that long (0: never), e.g. a producer that does not serve
 * its socket (input = generate) or a queue that stays full.  0, or an exit
 * code (said).
 */
static int sender_run(struct sender *sd, unsigned timeout_s)
{
	uint64_t last_progress = mmapq_now_ns();

	while (!sd->peer_eof) {
		struct pollfd pf[2] = {{.fd = sd->fd, .events = POLLIN}, {.fd = -1}};
		bool pending = sd->out_off < sd->out_len;
		uint64_t now = mmapq_now_ns();
		int timeout_ms = -1, r;

		if (!pending && sd->in_eof && !sd->shut) {
			shutdown(sd->fd, SHUT_WR); /* end of our records: the producer acknowledges */
			sd->shut = true;
		}
		if (pending)
			pf[0].events |= POLLOUT;
		else if (!sd->in_eof)
			pf[1] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
		/* waiting for our own stdin is not the producer's fault */
		if (timeout_s && (pending || sd->shut)) {
			uint64_t end = last_progress + (uint64_t)timeout_s * 1000000000u;
			timeout_ms = end > now ? (int)((end - now + 999999) / 1000000) : 0;
		}
		r = poll(pf, 2, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			log_error("poll: %s", strerror(errno));
			return 0; /* what came so far decides */
		}
		if (r == 0) {
			log_error("%s: no progress for %u s: the producer neither took records nor"
			          " answered (is it serving its socket? is the queue full?); %s",
			          sd->path, timeout_s, sd->out_off || sd->shut ?
			          "some records may have been published" : "nothing was published");
			return EXIT_UNAVAILABLE;
		}
		if (pf[1].revents && sender_stdin(sd))
			return EXIT_IOERR;
		if ((pf[0].revents & POLLOUT) && sender_write(sd))
			last_progress = mmapq_now_ns();
		if ((pf[0].revents & (POLLIN | POLLHUP | POLLERR)) && sender_read(sd))
			last_progress = mmapq_now_ns();
	}
	return 0;
}

int send_records(const char *path, int nvalues, char **values, uint32_t format,
                 unsigned timeout_s, bool stdin_closed)
{
	struct sender sd = {.path = path, .fd = -1, .values = values, .nvalues = nvalues,
	                    .format = format};
	char last_seq[24] = "-";
	int code;

	if (!nvalues && stdin_closed) {
		log_error("no VALUE arguments and standard input is closed: nothing to send");
		return EXIT_IOERR;
	}
	code = check_values(nvalues, values, format);
	if (code)
		return code;
	sd.fd = connect_producer(path);
	if (sd.fd < 0)
		return -sd.fd;
	if (nvalues)
		sender_fill_values(&sd);
	code = sender_run(&sd, timeout_s);
	close(sd.fd);
	free(sd.in);
	if (code)
		return code;
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
