/* SPDX-License-Identifier: MIT */
/*
 * input.c -- standard input, read record-exactly.
 *
 * In block mode a read takes at most the bytes that complete as many
 * records as there are free slots.  Where the input lets us look before
 * reading (a socket's MSG_PEEK, a pipe's tee(), a regular file's lseek
 * back) the read ends right after the last record that fits, however large
 * the records are; elsewhere (a terminal) it takes at most the bytes that
 * cannot complete more (blind_bound).  Only near a full queue does this
 * cost anything: with room for a whole chunk a read is a plain read().
 *
 * A stop never splits a record: stdin in the middle of one is read on,
 * record-exactly, until it ends (at most STOP_FINISH_NS), so the next
 * reader of the same pipe starts at a record boundary; a regular file is
 * rewound to the start of the unfinished record instead.
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

#define ONES8 UINT64_C(0x0101010101010101)

/* 0x80 in every byte of w that ends an int token when it follows one:
 * ' ' or '\t'..'\r' (C-locale isspace), exactly, byte by byte (no carry
 * crosses a byte: every sum stays below 0x100). */
static inline uint64_t ws_bytes(uint64_t w)
{
	uint64_t y = w & (0x7f * ONES8), z = w ^ (0x20 * ONES8);
	uint64_t ge9 = y + (0x80 - 0x09) * ONES8, gt13 = y + (0x80 - 0x0e) * ONES8;
	uint64_t ne20 = (z & (0x7f * ONES8)) + 0x7f * ONES8;

	return ((ge9 & ~gt13 & ~w) | ~(ne20 | z)) & (0x80 * ONES8);
}

/*
 * A bad
 * token or line counts as a record here: the bound is only ever too small.
 * Lines: memchr from '\n' to '\n'.  Ints: 8 bytes at a time, the token
 * ends of a word (a whitespace byte after a non-whitespace one) counted
 * with one multiplication; the word where the max-th one lies is gone
 * through byte by byte as before.
 */
size_t input_cut(const struct producer *p, const struct source *s, const char *buf, size_t n,
                 uint32_t max)
{
	bool in = s->partial > 0;
	uint32_t done = 0;
	size_t i = 0;

	if (!max)
		return 0;
	if (p->cfg.format == MMAPQ_FORMAT_LINE) {
		const char *nl = buf, *end = buf + n;
		while ((nl = memchr(nl, '\n', (size_t)(end - nl))) != NULL)
			if (++done == max)
				return (size_t)(nl - buf) + 1;
			else
				nl++;
		return n;
	}
	for (; i + 8 <= n; i += 8) {
		uint64_t w, ws, ends;
		uint32_t k;

		memcpy(&w, buf + i, sizeof(w));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		w = __builtin_bswap64(w);
#endif
		ws = ws_bytes(w);
		/* a byte ends a token if it is whitespace and the one before it
		 * (the last of the previous word: in) is not */
		ends = ws & ~((ws << 8) | (in ? 0 : 0x80));
		/* one bit per byte at most: the sum of the bytes, in the top one
		 * (no popcnt instruction in the baseline x86-64) */
		k = (uint32_t)((((ends >> 7) * ONES8) >> 56));
		if (done + k >= max)
			break; /* the max-th end is in this word */
		done += k;
		in = !(ws >> 63);
	}
	for (; i < n; i++) {
		if (!source_is_boundary(p, (unsigned char)buf[i])) {
			in = true;
		} else if (in) {
			in = false;
			if (++done == max)
				return i + 1;
		}
	}
	return n;
}

/*
 * The most bytes a blind read may take so that the records they complete
 * fit in max slots.  A line record needs its '\n' in the chunk: max bytes.
 * An int record needs a separator in the chunk, and every one after the
 * first (which may have started in an earlier chunk) a digit too: 2*max-1.
 * UINT32_MAX: no bound.
 */
static size_t blind_bound(const struct producer *p, uint32_t max)
{
	if (max == UINT32_MAX)
		return SIZE_MAX;
	return p->cfg.format == MMAPQ_FORMAT_INT ? 2 * (size_t)max - 1 : max;
}

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
 * Read into p->buf at most READ_CHUNK bytes that complete at most max records
 * (UINT32_MAX: any number), leaving what follows in the input.  Returns
 * the bytes read, 0 at end of input, -EAGAIN if nothing is there yet, or
 * another -errno.
 */
static ssize_t read_records(struct producer *p, struct source *s, uint32_t max)
{
	char *buf = p->buf;
	size_t want = READ_CHUNK;
	ssize_t k;
	size_t cut;

	if (max == UINT32_MAX || blind_bound(p, max) >= want)
		goto blind; /* a full chunk cannot complete more than fit */
	switch (s->kind) {
	case SRC_FILE:
		k = read(s->fd, buf, want);
		if (k <= 0)
			return k < 0 ? -errno : 0;
		cut = input_cut(p, s, buf, (size_t)k, max);
		if (cut < (size_t)k && lseek(s->fd, (off_t)cut - (off_t)k, SEEK_CUR) < 0)
			return -errno; /* taken and cannot be put back: fail rather than lose it */
		return (ssize_t)cut;
	case SRC_SOCKET:
		k = recv(s->fd, buf, want, MSG_PEEK | MSG_DONTWAIT);
		if (k <= 0)
			return k < 0 ? -errno : 0;
		cut = input_cut(p, s, buf, (size_t)k, max);
		k = recv(s->fd, buf, cut, MSG_DONTWAIT); /* the same bytes, now taken */
		return k < 0 ? -errno : k;
	case SRC_PIPE:
		if (s->tee[0] < 0 && pipe2(s->tee, O_CLOEXEC | O_NONBLOCK) < 0) {
			s->kind = SRC_OTHER;
			goto blind;
		}
		k = tee(s->fd, s->tee[1], want, SPLICE_F_NONBLOCK);
		if (k < 0 && errno == EINVAL) {
			s->kind = SRC_OTHER; /* not a pipe after all */
			goto blind;
		}
		if (k <= 0)
			return k < 0 ? -errno : 0; /* 0: no writer left, nothing buffered */
		k = read_exactly(s->tee[0], buf, (size_t)k);
		if (k < 0)
			return k;
		cut = input_cut(p, s, buf, (size_t)k, max);
		return read_exactly(s->fd, buf, cut); /* the same bytes, now taken */
	case SRC_OTHER:
		break;
	}
blind:
	if (want > blind_bound(p, max))
		want = blind_bound(p, max);
	k = read(s->fd, buf, want);
	return k < 0 ? -errno : k;
}

/* Read what is there (at most what fits) and parse it. */
int input_read(struct producer *p, struct source *s)
{
	uint32_t max = producer_blocking(p) ? p->nfree : UINT32_MAX;
	ssize_t n;

	if (!max)
		return 0;
	n = read_records(p, s, max);
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
 * rewound to its start instead.  Block mode has a slot for it: a read never
 * leaves a record unfinished once it filled the last free slot.
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
	while (s->partial && !s->eof && !p->error) {
		uint64_t now = producer_now(p);
		struct pollfd pf = {.fd = s->fd, .events = POLLIN};
		ssize_t n;

		if (now >= deadline)
			break;
		if (poll(&pf, 1, (int)((deadline - now + 999999) / 1000000)) <= 0)
			continue; /* timed out (the loop ends) or interrupted */
		n = read_records(p, s, 1);
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
	if (s->partial)
		log_warning("stopping: %s stopped in the middle of a record and its writer did not"
		            " finish it within %u s: its first %" PRIu64 " bytes are dropped",
		            s->name, STOP_FINISH_NS / 1000000000u, s->partial);
	else
		log_notice("stopping: read %s to the end of the record it was in", s->name);
}

/* Full, and the input may have ended meanwhile (exactly as many records as
 * free slots, and no consumer): tell, without reading, so that we can exit. */
bool input_stdin_ended(struct producer *p)
{
	struct source *s = p->n_src ? p->src[0] : NULL;

	if (p->input != IN_STDIN || !s || s->partial)
		return false;
	if (!s->eof && input_ended(s))
		s->eof = true;
	return s->eof;
}
