/* SPDX-License-Identifier: MIT */
/*
 * clients.c -- the socket server: clients connect to a Unix stream socket,
 * several at once, send records and read replies (mmapq-protocol(7)).
 *
 * A client is one struct source, in one of these states:
 *
 *   sending    read when it may (room in the queue, replies under OUT_MAX)
 *   eof        it shut down its sending side (or hung up): the rest of
 *              what it sent is read, then sources_finish parses the last
 *              record
 *   finished   every record parsed: once published, its OK line is queued
 *              (acked), and it is closed when the line is sent
 *   gone       its connection failed (reset, error): closed at once,
 *              nothing more is read or told; what it sent before is
 *              published
 *
 * Whatever a client does, its memory is bounded: a read takes at most
 * READ_CHUNK bytes and is parsed in pieces that cannot add more than
 * OUT_MAX of replies (read_client); a client whose unread replies exceed
 * OUT_MAX is not read until it reads them; a client that can no longer
 * read (it hung up: POLLHUP, or POLLERR after a close with replies unread)
 * has its replies dropped.  Its place is bounded in time: a client that
 * completes no record for [producer] client_timeout is closed (a record
 * deadline: a trickle of bytes completes none), and with every place
 * taken, the least useful client makes room for a new one.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "producer.h"
#include "protocol.h"

#define OUT_MAX        (256u * 1024u) /* a client's unread replies before we stop reading it */
#define EVICT_MIN_NS   1000000000u    /* connected this long: may be closed to make room */
#define BACKOFF_MIN_NS 100000000u     /* accept() failing (EMFILE...): pause, doubling, */
#define BACKOFF_MAX_NS 1000000000u    /* up to this */

/* ---- replies ------------------------------------------------------------- */

void client_reply(struct source *s, const char *line, size_t n)
{
	if (s->gone)
		return;
	if (s->out_cap - s->out_len < n) {
		size_t cap = s->out_cap ? 2 * s->out_cap : 4096;
		char *o;
		while (cap - s->out_len < n)
			cap *= 2;
		o = realloc(s->out, cap);
		if (!o)
			return;
		s->out = o;
		s->out_cap = cap;
	}
	memcpy(s->out + s->out_len, line, n);
	s->out_len += n;
}

/* Non-blocking: what the socket takes now; the rest on POLLOUT. */
static void flush_replies(struct source *s)
{
	while (s->out_len) {
		ssize_t k = send(s->fd, s->out, s->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (k < 0) {
			s->out_len = 0; /* the client went away */
			break;
		}
		memmove(s->out, s->out + k, s->out_len - (size_t)k);
		s->out_len -= (size_t)k;
	}
	if (s->out_cap > READ_CHUNK) {
		/* a burst of ERR lines is over: give its memory back */
		free(s->out);
		s->out = NULL;
		s->out_cap = 0;
	}
}

static struct protocol_counts counts_of(const struct source *s)
{
	return (struct protocol_counts){.published = s->published, .dropped = s->dropped,
	                                .rejected = s->rejected, .last_seq = s->last_seq};
}

/* The last line (OK, or FAIL reason): what of its records was published. */
static void reply_final(struct source *s, const char *fail_reason)
{
	char line[PROTOCOL_LINE_MAX];
	struct protocol_counts c = counts_of(s);

	client_reply(s, line, protocol_format_counts(line, fail_reason ? PROTOCOL_FAIL : PROTOCOL_OK,
	                                             fail_reason, &c));
	s->acked = true;
}

/* Close client i now, telling it why and what of its records was published. */
static void drop_client(struct producer *p, unsigned i, const char *fail_reason)
{
	struct source *s = p->src[i];

	if (!s->acked)
		reply_final(s, fail_reason);
	flush_replies(s); /* what the socket takes now; the rest is lost with it */
	log_info("%s: closed (FAIL %s): %" PRIu64 " published, %" PRIu64 " rejected, %" PRIu64
	         " dropped", s->name, fail_reason, s->published, s->rejected, s->dropped);
	source_free(s);
	p->src[i] = p->src[--p->n_src];
}

/* ---- reading --------------------------------------------------------------- */

/* A client's records completed so far, whatever became of them. */
static uint64_t completed(const struct source *s)
{
	return s->published + s->rejected + s->dropped;
}

/* The client's connection failed (reset, an error): it can take no reply
 * and its unread bytes are lost with it; what it sent before is published
 * as usual.  Closed by clients_ack, outside the loops over the clients. */
static void client_gone(struct producer *p, struct source *s, int err)
{
	if (log_limit_pass(&p->gone_limit))
		log_warning("%s: %s: closed (%" PRIu64 " published, %" PRIu64 " rejected)", s->name,
		            strerror(err), s->published, s->rejected);
	s->gone = true;
	s->eof = true;
	s->out_len = 0;
}

/*
 * Look at what the client sent (at most the records that fit: source_cut),
 * parse it in pieces while its unread replies stay under OUT_MAX, then
 * take from the socket exactly the bytes parsed.  A piece of k bytes
 * holds at most k records, each with at most one reply line of
 * PROTOCOL_LINE_MAX bytes, so the replies never exceed 2 * OUT_MAX plus
 * the ACK and last lines, however many bad records a chunk holds.  The
 * bytes parsed, 0 at its end of input, -EAGAIN if nothing is there (or it
 * may not be read now), another -errno.
 */
static ssize_t read_client(struct producer *p, struct source *s)
{
	uint64_t before = completed(s);
	ssize_t k;
	size_t n, fed = 0, taken = 0;
	int r = 0;

	if (s->out_len >= OUT_MAX)
		return -EAGAIN;
	k = recv(s->fd, p->buf, READ_CHUNK, MSG_PEEK | MSG_DONTWAIT);
	if (k <= 0)
		return k < 0 ? -errno : 0;
	n = source_cut(p, s, p->buf, (size_t)k, 0);
	if (!n)
		return -EAGAIN; /* its next record waits for room */
	while (fed < n && s->out_len < OUT_MAX && r >= 0) {
		size_t piece = (OUT_MAX - s->out_len) / PROTOCOL_LINE_MAX + 1;
		if (piece > n - fed)
			piece = n - fed;
		r = source_feed(p, s, p->buf + fed, piece);
		fed += piece;
	}
	/* the same bytes, now taken: they are in the socket, only we read it */
	while (taken < fed) {
		k = recv(s->fd, p->buf, fed - taken, MSG_DONTWAIT);
		if (k < 0 && (errno == EINTR || errno == ECONNRESET))
			continue; /* a reset is told once; the bytes are still there */
		if (k <= 0) {
			/* parsed but not taken: never parse them twice */
			client_gone(p, s, k < 0 ? errno : EPIPE);
			break;
		}
		taken += (size_t)k;
	}
	if (completed(s) != before)
		client_progress(p, s);
	return r < 0 ? r : (ssize_t)fed;
}

/* Read what the client sent (at most what fits) and parse it.  0, or the
 * queue's -errno. */
static int read_source(struct producer *p, struct source *s)
{
	ssize_t n;

	if (s->gone)
		return 0;
	if (!producer_may_read(p)) {
		/* a record (its own or another's) waits for room: it waits for us */
		client_progress(p, s);
		return 0;
	}
	n = read_client(p, s);
	if (n == -EINTR || n == -EAGAIN || n == -EWOULDBLOCK)
		return 0;
	if (n < 0 && p->error)
		return (int)n;
	if (n < 0)
		client_gone(p, s, (int)-n);
	else if (n == 0)
		s->eof = true;
	return 0;
}

/* ---- places: the record deadline, eviction, accepting ---------------------- */

/* Time the queue was full (block mode) until now: no client's deadline
 * runs while it waits for us. */
static uint64_t full_ns(const struct producer *p, uint64_t now)
{
	return p->full_ns + (p->full_since ? now - p->full_since : 0);
}

void client_progress(struct producer *p, struct source *s)
{
	uint64_t now = producer_now(p);

	s->progress_ns = now;
	s->full_at_progress = full_ns(p, now);
}

/* How long the client has completed no record while the queue had room. */
static uint64_t idle_ns(const struct producer *p, const struct source *s, uint64_t now)
{
	return now - s->progress_ns - (full_ns(p, now) - s->full_at_progress);
}

/*
 * The least useful client: of those connected for at least min_age_ns,
 * the one whose last completed record lies furthest back (a client that
 * trickles bytes completes none); -1 if none.  With idle_ns, only one that
 * completed none for that long.
 */
static int least_useful_client(const struct producer *p, uint64_t now, uint64_t min_age_ns,
                               uint64_t min_idle_ns)
{
	uint64_t best_idle = 0;
	int best = -1;

	for (unsigned i = 0; i < p->n_src; i++) {
		const struct source *s = p->src[i];
		uint64_t idle = idle_ns(p, s, now);
		if (s->gone || now - s->since_ns < min_age_ns || idle < min_idle_ns)
			continue;
		if (best < 0 || idle > best_idle) {
			best = (int)i;
			best_idle = idle;
		}
	}
	return best;
}

void clients_expire(struct producer *p)
{
	uint64_t now = producer_now(p), limit = (uint64_t)p->cfg.client_timeout * 1000000000u;
	int i;

	while (limit && (i = least_useful_client(p, now, 0, limit)) >= 0)
		drop_client(p, (unsigned)i, PROTOCOL_FAIL_IDLE);
}

bool clients_add(struct producer *p, int fd)
{
	struct ucred cred;
	socklen_t cred_len = sizeof(cred);
	char name[sizeof(((struct source *)NULL)->name)];
	struct source *s;

	p->n_accepted++;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) == 0 && cred.pid > 0)
		snprintf(name, sizeof(name), "client%" PRIu64 "[%d]", p->n_accepted, (int)cred.pid);
	else
		snprintf(name, sizeof(name), "client%" PRIu64, p->n_accepted);
	if (p->n_src >= MAX_CLIENTS) {
		log_warning("%s: refused: all %u places are taken", name, MAX_CLIENTS);
		close(fd);
		return false;
	}
	s = source_new(p, fd, name);
	if (!s) {
		log_error("%s: refused: out of memory", name);
		close(fd);
		return false;
	}
	s->since_ns = producer_now(p);
	client_progress(p, s);
	p->src[p->n_src++] = s;
	log_debug("%s connected", name);
	return true;
}

/*
 * Take the connections waiting on lfd.  Connected clients never starve new
 * ones: with every place taken, the least useful client connected for at
 * least EVICT_MIN_NS is closed to make room; with none that old, accepting
 * pauses until one is.  accept() failing for want of descriptors or memory
 * pauses it too, doubling up to BACKOFF_MAX_NS, logged once per burst.
 */
static void accept_clients(struct producer *p, int lfd)
{
	for (;;) {
		uint64_t now = producer_now(p);
		int i, fd;

		if (p->n_src >= MAX_CLIENTS) {
			i = least_useful_client(p, now, EVICT_MIN_NS, 0);
			if (i < 0) {
				uint64_t oldest = now;
				for (unsigned k = 0; k < p->n_src; k++)
					if (p->src[k]->since_ns < oldest)
						oldest = p->src[k]->since_ns;
				p->accept_resume_ns = oldest + EVICT_MIN_NS;
				return;
			}
			drop_client(p, (unsigned)i, PROTOCOL_FAIL_IDLE);
		}
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (fd < 0 && errno == ECONNABORTED)
			continue;
		if (fd < 0) {
			int e = errno;
			/* out of descriptors: a client can give one back */
			if ((e == EMFILE || e == ENFILE) &&
			    (i = least_useful_client(p, now, EVICT_MIN_NS, 0)) >= 0) {
				drop_client(p, (unsigned)i, PROTOCOL_FAIL_IDLE);
				continue;
			}
			p->accept_backoff_ns = p->accept_backoff_ns ? p->accept_backoff_ns * 2 : BACKOFF_MIN_NS;
			if (p->accept_backoff_ns > BACKOFF_MAX_NS)
				p->accept_backoff_ns = BACKOFF_MAX_NS;
			p->accept_resume_ns = now + p->accept_backoff_ns;
			if (log_limit_pass(&p->accept_limit))
				log_warning("accept: %s; new clients wait in the backlog (%u connected)",
				            strerror(e), p->n_src);
			return;
		}
		p->accept_backoff_ns = 0;
		if (!clients_add(p, fd))
			return;
	}
}

/* ---- the loop's part ------------------------------------------------------- */

unsigned clients_poll_set(struct producer *p, struct pollfd *pf, bool room)
{
	uint64_t now = producer_now(p);
	bool accepting = now >= p->accept_resume_ns;
	unsigned n = 0;

	for (unsigned i = 0; i < p->n_listen; i++)
		pf[n++] = (struct pollfd){.fd = p->listen_fd[i], .events = accepting ? POLLIN : 0};
	for (unsigned i = 0; i < p->n_src; i++) {
		struct source *s = p->src[i];
		short ev = 0;
		/* a client with OUT_MAX of unread replies is not read until it
		 * reads them: every ERR line is kept */
		if (!s->eof && room && s->out_len < OUT_MAX)
			ev |= POLLIN;
		if (s->out_len)
			ev |= POLLOUT;
		pf[n++] = (struct pollfd){.fd = s->fd, .events = ev};
	}
	return n;
}

uint64_t clients_poll_wait(const struct producer *p)
{
	uint64_t now = producer_now(p);

	return now >= p->accept_resume_ns ? UINT64_MAX : p->accept_resume_ns - now;
}

int clients_poll_done(struct producer *p, const struct pollfd *pf)
{
	unsigned n_src = p->n_src;

	for (unsigned i = 0; i < n_src; i++) {
		struct source *s = p->src[i];
		short rev = pf[p->n_listen + i].revents;
		int r;

		if (rev & POLLOUT)
			flush_replies(s);
		/* A client's socket hangs up when the client can neither send
		 * nor read any more, and errs when it closed with replies
		 * unread: its replies can never be delivered.  Drop them, so
		 * that what it sent before is read (and published). */
		if (rev & (POLLHUP | POLLERR))
			s->out_len = 0;
		if (rev & (POLLIN | POLLHUP | POLLERR)) {
			r = read_source(p, s);
			if (r < 0)
				return r;
		}
	}
	/* after the clients' revents are used: accepting may close one */
	for (unsigned i = 0; i < p->n_listen; i++)
		if (pf[i].revents & POLLIN)
			accept_clients(p, p->listen_fd[i]);
	return 0;
}

/* ---- acknowledgements -------------------------------------------------------- */

/* A client still sending whose counts changed since its last ACK line (all
 * it sent so far is published). */
static bool ack_owed(const struct source *s)
{
	return !s->acked && !s->finished && !s->pending &&
	       (s->published != s->ack_published || s->dropped != s->ack_dropped ||
	        s->rejected != s->ack_rejected);
}

/*
 * Streaming acknowledgement (mmapq-protocol(7)): while a client keeps
 * sending, "ACK published=N ..." tells it what of its records is
 * published, without it having to shut down its side.  The first change
 * is told at once, later ones at most every [producer] ack_interval ms, or
 * as soon as [producer] ack_records more are published; 0 and 0: only the
 * last line.
 */
static void stream_ack(struct producer *p, struct source *s, uint64_t now)
{
	bool due = (p->cfg.ack_interval && now >= s->next_ack_ns) ||
	           (p->cfg.ack_records && s->published - s->ack_published >= p->cfg.ack_records);
	char line[PROTOCOL_LINE_MAX];
	struct protocol_counts c = counts_of(s);

	if (!ack_owed(s) || !due)
		return;
	client_reply(s, line, protocol_format_counts(line, PROTOCOL_ACK, NULL, &c));
	s->ack_published = s->published;
	s->ack_dropped = s->dropped;
	s->ack_rejected = s->rejected;
	s->next_ack_ns = now + (uint64_t)p->cfg.ack_interval * 1000000u;
}

uint64_t clients_ack_wait(const struct producer *p)
{
	uint64_t wait = UINT64_MAX, now = producer_now(p);

	if (!p->cfg.ack_interval)
		return wait;
	for (unsigned i = 0; i < p->n_src; i++) {
		const struct source *s = p->src[i];
		uint64_t due;

		if (!ack_owed(s))
			continue;
		due = s->next_ack_ns > now ? s->next_ack_ns - now : 0;
		if (due < wait)
			wait = due;
	}
	return wait;
}

void clients_ack(struct producer *p, const char *fail_reason)
{
	uint64_t now = producer_now(p);

	for (unsigned i = 0; i < p->n_src; i++) {
		struct source *s = p->src[i];
		if (s->gone) {
			source_free(s);
			p->src[i--] = p->src[--p->n_src];
			continue;
		}
		if ((s->finished || fail_reason) && !s->acked)
			reply_final(s, fail_reason);
		else if (!fail_reason)
			stream_ack(p, s, now);
		flush_replies(s);
		if (s->acked && !s->out_len) {
			log_debug("%s: %" PRIu64 " published, %" PRIu64 " rejected, %" PRIu64 " dropped",
			          s->name, s->published, s->rejected, s->dropped);
			source_free(s);
			p->src[i--] = p->src[--p->n_src];
		}
	}
}

int clients_serve_while_full(struct producer *p)
{
	int r = mmapq_publish(p->q);

	if (r < 0)
		return r;
	if (!p->full_since)
		p->full_since = producer_now(p);
	producer_published(p);
	for (unsigned i = 0; i < p->n_src; i++) {
		struct source *s = p->src[i];
		if (!s->eof && !s->partial && input_ended(s))
			s->eof = true;
	}
	sources_finish(p);
	clients_ack(p, NULL);
	return p->error;
}

void clients_room(struct producer *p)
{
	if (!p->full_since)
		return;
	p->full_ns = full_ns(p, producer_now(p));
	p->full_since = 0;
}

/* ---- set-up and shutdown ----------------------------------------------------- */

/* [producer] socket: bound and listening, mode 0660. */
static int listen_socket(struct producer *p)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *path = p->cfg.socket_path;
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("[producer] socket: path too long for a Unix socket: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		int r = -errno;
		log_error("socket: %s", strerror(-r));
		return r;
	}
	/* A socket file left by a producer that died is replaced; anything
	 * else at the path, or a live listener, is not. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno == ECONNREFUSED)
		unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0660) < 0 ||
	    listen(fd, 64) < 0) {
		int r = -errno;
		log_error("%s: cannot listen: %s", path, strerror(-r));
		close(fd);
		return r;
	}
	p->listen_fd[p->n_listen++] = fd;
	p->own_socket = true;
	return 0;
}

int clients_listen(struct producer *p, int n_passed)
{
	if (!n_passed)
		return listen_socket(p);
	for (int i = 0; i < n_passed && p->n_listen < MAX_LISTEN; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		if (sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 1) <= 0) {
			log_error("passed file descriptor %d is not a listening Unix stream socket", fd);
			return -ENOTSOCK;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		p->listen_fd[p->n_listen++] = fd;
	}
	log_info("serving %u socket(s) passed by systemd", p->n_listen);
	return 0;
}

void clients_close(struct producer *p)
{
	for (unsigned i = 0; i < p->n_src; i++)
		source_free(p->src[i]);
	p->n_src = 0;
	for (unsigned i = 0; i < p->n_listen; i++)
		close(p->listen_fd[i]);
	p->n_listen = 0;
	if (p->own_socket)
		unlink(p->cfg.socket_path);
	p->own_socket = false;
}
