/* SPDX-License-Identifier: MIT */
/*
 * input.c -- standard input, read record-exactly.
 *
 * In block mode a read takes at most the bytes that complete records whose
 * frames fit in the ring bytes known to be free (source_cut: the parser
 * counts them, from its own state).  Where the input lets us look before
 * reading (a socket's MSG_PEEK, a pipe's tee(), a regular file's lseek
 * back) the read ends right after the last record that fits, however large
 * the records are; elsewhere (a terminal) it takes at most the bytes that
 * cannot complete more (source_blind_bound).  Only near a full queue does
 * this cost anything: with room for a whole chunk a read is a plain
 * read().  The first record that does not fit stays in the input, and the
 * producer waits for room for exactly that record.
 *
 * A stop never splits a record: stdin in the middle of one is read on,
 * record-exactly, until it ends (at most STOP_FINISH_NS), so the next
 * reader of the same pipe starts at a record boundary; a regular file is
 * rewound to the start of the unfinished record instead.  Its room is
 * there: stdin takes a record's first bytes only when the whole record,
 * at the largest it can become, fits (MMAPQ_CUT_WHOLE).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "producer.h"

#define STOP_FINISH_NS 2000000000u /* a stop waits this long for the rest of a started record */

static ssize_t read_exactly(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = read(fd, buf + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

/*
 * Read into p->buf at most READ_CHUNK bytes that complete only records that
 * fit (extra: MMAPQ_CUT_FIRST to end with the record in progress), leaving
 * what follows in the input.  Returns the bytes read, 0 at end of input,
 * -EAGAIN if nothing is there yet or the next record waits for room
 * (producer_wait), or another -errno.
 */
static ssize_t read_records(struct producer *p, struct source *s, unsigned extra)
{
	char *buf = p->buf;
	uint64_t need;
	size_t want = source_blind_bound(p, s, READ_CHUNK, extra, &need);
	ssize_t k;
	size_t cut;

	if (want == READ_CHUNK)
		goto blind; /* a full chunk cannot complete more than fits */
	switch (s->kind) {
	case SRC_FILE:
		k = read(s->fd, buf, READ_CHUNK);
		if (k <= 0)
			return k < 0 ? -errno : 0;
		cut = source_cut(p, s, buf, (size_t)k, extra);
		if (cut < (size_t)k && lseek(s->fd, (off_t)cut - (off_t)k, SEEK_CUR) < 0)
			return -errno; /* taken and cannot be put back: fail rather than lose it */
		return cut ? (ssize_t)cut : -EAGAIN;
	case SRC_SOCKET:
		k = recv(s->fd, buf, READ_CHUNK, MSG_PEEK | MSG_DONTWAIT);
		if (k <= 0)
			return k < 0 ? -errno : 0;
		cut = source_cut(p, s, buf, (size_t)k, extra);
		if (!cut)
			return -EAGAIN;
		k = recv(s->fd, buf, cut, MSG_DONTWAIT); /* the same bytes, now taken */
		return k < 0 ? -errno : k;
	case SRC_PIPE:
		if (s->tee[0] < 0 && pipe2(s->tee, O_CLOEXEC | O_NONBLOCK) < 0) {
			s->kind = SRC_OTHER;
			goto blind;
		}
		k = tee(s->fd, s->tee[1], READ_CHUNK, SPLICE_F_NONBLOCK);
		if (k < 0 && errno == EINVAL) {
			s->kind = SRC_OTHER; /* not a pipe after all */
			goto blind;
		}
		if (k <= 0)
			return k < 0 ? -errno : 0; /* 0: no writer left, nothing buffered */
		k = read_exactly(s->tee[0], buf, (size_t)k);
		if (k < 0)
			return k;
		cut = source_cut(p, s, buf, (size_t)k, extra);
		if (!cut)
			return -EAGAIN;
		return read_exactly(s->fd, buf, cut); /* the same bytes, now taken */
	case SRC_OTHER:
		break;
	}
blind:
	if (!want) {
		producer_wait(p, s, need); /* not even a byte fits */
		return -EAGAIN;
	}
	k = read(s->fd, buf, want);
	return k < 0 ? -errno : k;
}

/* Read what is there (at most what fits) and parse it. */
int input_read(struct producer *p, struct source *s)
{
	ssize_t n;

	if (!producer_may_read(p))
		return 0;
	n = read_records(p, s, 0);
	if (n == -EINTR || n == -EAGAIN || n == -EWOULDBLOCK)
		return 0;
	if (n < 0) {
		log_error("%s: read: %s", s->name, strerror((int)-n));
		p->error = (int)n;
		return (int)n;
	}
	if (n == 0) {
		s->eof = true;
		return 0;
	}
	return source_feed(p, s, p->buf, (size_t)n);
}

/* (the queue is full and may stay so) */
bool input_ended(const struct source *s)
{
	struct pollfd pf = {.fd = s->fd, .events = POLLIN};
	struct stat st;
	off_t off;
	char c;

	switch (s->kind) {
	case SRC_FILE:
		off = lseek(s->fd, 0, SEEK_CUR);
		return off >= 0 && fstat(s->fd, &st) == 0 && off >= st.st_size;
	case SRC_PIPE:
		/* hung up with nothing left: POLLHUP without POLLIN */
		return poll(&pf, 1, 0) == 1 && (pf.revents & (POLLIN | POLLHUP)) == POLLHUP;
	case SRC_SOCKET:
		return recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
	case SRC_OTHER:
		break;
	}
	return false;
}

/*
 * Stopping while stdin is in the middle of a record: a pipe's next reader
 * would take the rest as a record of its own.  Read on, record-exactly,
 * until that record ends (STOP_FINISH_NS at most); a regular file is
 * rewound to its start instead.  Block mode has room for it: stdin takes
 * a record's first bytes only when it fits whole (MMAPQ_CUT_WHOLE).  A stop
 * request makes the queue's waits give up, so none is made here.
 */
void input_finish_on_stop(struct producer *p, struct source *s)
{
	uint64_t deadline = producer_now(p) + STOP_FINISH_NS;

	if (s->eof || s->finished || !s->partial)
		return;
	if (s->kind == SRC_FILE && lseek(s->fd, -(off_t)s->partial, SEEK_CUR) >= 0) {
		log_notice("stopping: the %" PRIu64 " bytes of an unfinished record stay unread in %s",
		           s->partial, s->name);
		return;
	}
	while (s->partial && !s->eof && !p->error && !p->need) {
		uint64_t now = producer_now(p);
		struct pollfd pf = {.fd = s->fd, .events = POLLIN};
		ssize_t n;

		if (now >= deadline)
			break;
		if (poll(&pf, 1, (int)((deadline - now + 999999) / 1000000)) <= 0)
			continue; /* timed out (the loop ends) or interrupted */
		n = read_records(p, s, MMAPQ_CUT_FIRST);
		if (n == -EINTR || n == -EAGAIN)
			continue;
		if (n <= 0) {
			s->eof = true;
			if (mmapq_parser_finish(s->parser) == 0)
				s->finished = true;
			s->partial = 0;
			break;
		}
		if (source_feed(p, s, p->buf, (size_t)n) < 0)
			return;
	}
	if (s->partial && p->need)
		/* only a blind read (a terminal) can have taken more than fits */
		log_warning("stopping: no room in the queue for the rest of the record %s is in: its"
		            " first %" PRIu64 " bytes are dropped", s->name, s->partial);
	else if (s->partial)
		log_warning("stopping: %s stopped in the middle of a record and its writer did not"
		            " finish it within %u s: its first %" PRIu64 " bytes are dropped",
		            s->name, STOP_FINISH_NS / 1000000000u, s->partial);
	else
		log_notice("stopping: read %s to the end of the record it was in", s->name);
}

/* Waiting for room, and the input may have ended meanwhile (exactly as
 * many records as fit, and no consumer): tell, without reading, so that we
 * can exit.  Not while a last record waits to be put. */
bool input_stdin_ended(struct producer *p)
{
	struct source *s = p->n_src ? p->src[0] : NULL;

	if (p->input != IN_STDIN || !s || (s->partial && mmapq_parser_final_frame(s->parser)))
		return false;
	if (!s->eof && input_ended(s))
		s->eof = true;
	return s->eof;
}
