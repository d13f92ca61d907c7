/* SPDX-License-Identifier: MIT */
/*
 * source.c -- a source of records (stdin, or one client) and the queue its
 * records go into: the parser's callbacks put them, count them per source,
 * and report rejected ones (to the log, and to a client as ERR lines).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "producer.h"
#include "protocol.h"

/* The smallest record of the format: what any read needs room for. */
static uint32_t smallest(const struct producer *p)
{
	return p->cfg.format == MMAPQ_FORMAT_INT ? sizeof(int64_t) : 0;
}

int producer_refill(struct producer *p, uint64_t deadline_ns)
{
	uint32_t len = smallest(p);
	uint64_t room;
	int r;

	/* the record that waits, or one of its frame: its payload is the frame
	 * less the header (padding included: at most max_record) */
	if (p->need && p->cfg.format != MMAPQ_FORMAT_INT) {
		uint64_t payload = p->need - mmapq_frame_size(0);
		uint32_t max = mmapq_max_record(p->q);
		len = payload < max ? (uint32_t)payload : max;
	}
	r = mmapq_reserve(p->q, len, deadline_ns, &room);
	if (r == -EAGAIN || r == -ETIMEDOUT || r == -EINTR)
		return 0; /* less than that frame: what we knew is still free */
	if (r < 0)
		return r;
	p->room = room;
	if (p->need && p->room >= p->need) {
		p->need = 0;
		p->needy = NULL;
	}
	return 0;
}

void producer_wait(struct producer *p, struct source *s, uint64_t need)
{
	if (!producer_blocking(p) || p->need)
		return;
	p->need = need;
	p->needy = s;
}

int producer_fatal(struct producer *p, int r)
{
	log_error("%s: %s", mmapq_path(p->q), mmapq_strerror(r));
	if (!p->error)
		p->error = r;
	return r;
}

/* A record that does not fit: counted as dropped (on_full = drop; block
 * mode reads only what fits, so it never gets here but by a bug). */
static void drop(struct producer *p, struct source *s, uint64_t n)
{
	if (s)
		s->dropped += n;
	mmapq_count_dropped(p->q, n);
	if (!log_limit_pass(&p->drop_limit))
		return;
	if (producer_blocking(p))
		log_error("queue full: record dropped although on_full = block (read more than"
		          " fits: a bug)");
	else
		log_warning("queue full: record dropped (on_full = drop)");
}

/* n records were put, numbered from first on, their frames bytes in all:
 * the room the producer knows of, what it groups before publishing, and
 * the source's counters (s may be NULL: records of no source). */
static void count_put(struct producer *p, struct source *s, uint64_t first, uint64_t n,
                      uint64_t bytes)
{
	p->room -= p->room < bytes ? p->room : bytes;
	p->grouped += bytes;
	if (s) {
		s->published += n;
		s->pending += n;
		s->last_seq = first + n - 1;
	}
}

/*
 * A put that gave up with -EINTR: it needed the queue's mutex (for a
 * reservation) and the stop callback (attach.c, stop_requested) said stop,
 * its holder not letting go; nothing else makes a put say -EINTR (a signal
 * does not end the wait for the mutex).  That is the stop, not an error:
 * from now on every record the parser completes is held by its source
 * (hold), as pending records are kept, and shutdown_publish puts them if
 * the mutex is to be had then, or counts them as read and not published.
 * The parser carries on, so a stop still ends stdin at a record boundary
 * (input_finish_on_stop).
 */
static bool put_gave_up(struct producer *p, int r)
{
	if (r != -EINTR)
		return false;
	if (!p->put_stopped)
		log_notice("%s: stopping while waiting for the queue's mutex to put: what is read"
		           " from now on is put at the end, if the mutex is to be had then",
		           mmapq_path(p->q));
	p->put_stopped = true;
	return true;
}

/* A record held by its source (put_gave_up); the generator's are not
 * input, and are not made.  0, or -ENOMEM (said). */
static int hold(struct producer *p, struct source *s, const void *data, uint32_t len)
{
	size_t need;

	if (!s)
		return 0;
	need = s->held_len + sizeof(len) + len;
	if (need > s->held_cap) {
		size_t cap = s->held_cap ? s->held_cap : 4096;
		uint8_t *b;

		while (cap < need)
			cap *= 2;
		b = realloc(s->held, cap);
		if (!b)
			return producer_fatal(p, -ENOMEM);
		s->held = b;
		s->held_cap = cap;
	}
	memcpy(s->held + s->held_len, &len, sizeof(len));
	memcpy(s->held + s->held_len + sizeof(len), data, len);
	s->held_len = need;
	s->held_n++;
	return 0;
}

int producer_put(struct producer *p, struct source *s, const void *data, uint32_t len)
{
	uint64_t seq = mmapq_next_seq(p->q);
	int r;

	/* after a record that waits for room, those read with it wait too */
	if (p->put_stopped || (s && s->held_n))
		return hold(p, s, data, len);
	r = mmapq_put(p->q, data, len);
	if (r == -ENOBUFS) {
		/* publish what is pending and look again (a consumer may have
		 * made room), once */
		r = producer_refill(p, 0);
		if (r == 0)
			r = mmapq_put(p->q, data, len);
		if (r == -ENOBUFS && producer_blocking(p)) {
			/* the room we read it into was there, but another
			 * producer of the queue reserved it meanwhile (room
			 * is promised only while none does): it waits for
			 * room, held by its source with those after it */
			producer_wait(p, s, mmapq_frame_size(len));
			return s ? hold(p, s, data, len) : 1;
		}
		if (r == -ENOBUFS) {
			drop(p, s, 1);
			return 0;
		}
	}
	if (put_gave_up(p, r))
		return hold(p, s, data, len);
	if (r < 0)
		return producer_fatal(p, r);
	count_put(p, s, seq, 1, mmapq_frame_size(len));
	return 0;
}

/*
 * A batch of int records from the parser (mmapq_parser_set_int_batch): as
 * many as fit in one mmapq_put_many (a few instructions per record), the
 * source's counters and last_seq updated once for them; when none fits,
 * one record through producer_put, which looks for room again and drops
 * it if there is still none (on_full = drop: block mode reads only what
 * fits).
 */
static int put_ints(struct producer *p, struct source *s, const int64_t *v, size_t n)
{
	const uint64_t frame = mmapq_frame_size(sizeof(*v));

	while (n) {
		uint64_t first = mmapq_next_seq(p->q);
		uint32_t k = n < UINT32_MAX ? (uint32_t)n : UINT32_MAX;
		/* records held before these: one at a time, held after them */
		int r = s->held_n && !p->put_stopped ? -ENOBUFS :
		        p->put_stopped ? -EINTR : mmapq_put_many(p->q, v, sizeof(*v), k);

		if (r == -ENOBUFS || put_gave_up(p, r)) {
			/* one record at a time: looked for room again, or held */
			r = producer_put(p, s, v, sizeof(*v));
			if (r < 0)
				return r;
			v++;
			n--;
			continue;
		}
		if (r < 0)
			return producer_fatal(p, r);
		count_put(p, s, first, (uint64_t)r, frame * (uint64_t)r);
		v += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * A batch of line or binary records from the parser
 * (mmapq_parser_set_record_batch), each where the parser has it (the
 * chunk read, mostly): as many as fit in one mmapq_put_records (checked
 * once, the frames filled in one loop), the counters updated once for
 * them; when none fits, one record through producer_put, as put_ints.
 */
static int put_records(struct producer *p, struct source *s, const struct mmapq_iovec *r, size_t n)
{
	while (n) {
		uint64_t first = mmapq_next_seq(p->q), bytes = 0;
		uint32_t k = n < UINT32_MAX ? (uint32_t)n : UINT32_MAX;
		int got = s->held_n && !p->put_stopped ? -ENOBUFS :
		          p->put_stopped ? -EINTR : mmapq_put_records(p->q, r, k);

		if (got == -ENOBUFS || put_gave_up(p, got)) {
			got = producer_put(p, s, r->data, r->len);
			if (got < 0)
				return got;
			r++;
			n--;
			continue;
		}
		if (got < 0)
			return producer_fatal(p, got);
		for (int i = 0; i < got; i++)
			bytes += mmapq_frame_size(r[i].len);
		count_put(p, s, first, (uint64_t)got, bytes);
		r += got;
		n -= (size_t)got;
	}
	return 0;
}

void producer_published(struct producer *p)
{
	if (mmapq_pending(p->q))
		return;
	for (unsigned i = 0; i < p->n_src; i++)
		p->src[i]->pending = 0;
}

static int on_record(void *ctx, const void *data, uint32_t len)
{
	struct source *s = ctx;
	return producer_put(s->p, s, data, len);
}

static int on_ints(void *ctx, const int64_t *v, size_t n)
{
	struct source *s = ctx;
	return put_ints(s->p, s, v, n);
}

static int on_records(void *ctx, const struct mmapq_iovec *r, size_t n)
{
	struct source *s = ctx;
	return put_records(s->p, s, r, n);
}

static void on_parse_error(void *ctx, const struct mmapq_parse_error *e)
{
	struct source *s = ctx;
	char line[PROTOCOL_LINE_MAX];

	s->rejected++;
	mmapq_count_bad_input(s->p->q, 1);
	if (log_limit_pass(&s->p->bad_limit))
		log_error("%s:%" PRIu64 ":%" PRIu64 ": %s: '%s' (skipped)", s->name, e->line, e->column,
		          e->what, e->excerpt);
	if (s->fd != STDIN_FILENO)
		client_reply(s, line, protocol_format_err(line, e->line, e->column, e->what, e->excerpt));
}

static enum src_kind src_kind_of(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return SRC_OTHER;
	if (S_ISREG(st.st_mode))
		return SRC_FILE;
	if (S_ISFIFO(st.st_mode))
		return SRC_PIPE;
	if (S_ISSOCK(st.st_mode))
		return SRC_SOCKET;
	return SRC_OTHER;
}

struct source *source_new(struct producer *p, int fd, const char *name)
{
	struct source *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->p = p;
	s->fd = fd;
	s->kind = src_kind_of(fd);
	s->tee[0] = s->tee[1] = -1;
	/* stdin takes a record's first bytes only with room for all of it, so
	 * that a stop can always read on to its end (input_finish_on_stop); a
	 * client stopped in the middle of one is told what was published */
	s->cut_flags = fd == STDIN_FILENO ? MMAPQ_CUT_WHOLE : 0;
	snprintf(s->name, sizeof(s->name), "%s", name);
	if (mmapq_parser_new(p->cfg.format, p->cfg.max_record, on_record, on_parse_error, s,
	                     &s->parser) < 0) {
		free(s);
		return NULL;
	}
	/* records in batches of up to MMAPQ_PARSE_BATCH: put_ints, put_records */
	if (p->cfg.format == MMAPQ_FORMAT_INT)
		(void)mmapq_parser_set_int_batch(s->parser, on_ints);
	else
		(void)mmapq_parser_set_record_batch(s->parser, on_records);
	return s;
}

void source_free(struct source *s)
{
	if (!s)
		return;
	if (s->p->needy == s) {
		/* its record waits no more: neither does the producer */
		s->p->need = 0;
		s->p->needy = NULL;
	}
	if (s->fd > STDIN_FILENO)
		close(s->fd);
	for (int i = 0; i < 2; i++)
		if (s->tee[i] >= 0)
			close(s->tee[i]);
	mmapq_parser_free(s->parser);
	free(s->held);
	free(s->out);
	free(s);
}

int source_feed(struct producer *p, struct source *s, const char *data, size_t n)
{
	int r = mmapq_parser_feed(s->parser, data, n);

	(void)p;
	s->partial = mmapq_parser_partial(s->parser);
	return r;
}

/* What the source's reads may count on: all in drop mode (what does not
 * fit is dropped, counted). */
static uint64_t read_room(const struct producer *p)
{
	return producer_blocking(p) ? p->room : UINT64_MAX;
}

size_t source_cut(struct producer *p, struct source *s, const char *buf, size_t n, unsigned extra)
{
	uint64_t need;
	size_t cut = mmapq_parser_cut(s->parser, buf, n, read_room(p), s->cut_flags | extra, &need);

	if (need)
		producer_wait(p, s, need);
	return cut;
}

size_t source_blind_bound(struct producer *p, struct source *s, size_t want, unsigned extra,
                          uint64_t *need)
{
	uint64_t k = mmapq_parser_blind_bound(s->parser, read_room(p), s->cut_flags | extra, need);

	return k < want ? (size_t)k : want;
}

void sources_finish(struct producer *p)
{
	for (unsigned i = 0; i < p->n_src; i++) {
		struct source *s = p->src[i];
		uint64_t frame;

		/* a connection that failed has no final record, only a cut one;
		 * one whose records wait for room finishes after them */
		if (!s->eof || s->finished || s->gone || s->held_n)
			continue;
		/* an unfinished final record (a line without '\n', the last
		 * int token) needs room for its frame */
		frame = mmapq_parser_final_frame(s->parser);
		if (producer_blocking(p) && frame > p->room) {
			producer_wait(p, s, frame);
			continue;
		}
		if (mmapq_parser_finish(s->parser) < 0 && p->error)
			return;
		s->finished = true;
		if (s->fd != STDIN_FILENO)
			client_progress(p, s); /* from now on it only reads its replies */
	}
}

/*
 * The records s holds, put in order as far as they go; the rest stay
 * held.  deferred (block mode: records whose room another producer took):
 * one that does not fit looks for room once more, then waits for room
 * (producer_wait); a stop's -EINTR keeps the rest for the shutdown.  Else
 * (the shutdown) anything that fails leaves the rest read and not put.
 * 0, or the queue's -errno (deferred only).
 */
static int put_held(struct producer *p, struct source *s, bool deferred)
{
	size_t off = 0;
	int r = 0;

	while (off < s->held_len) {
		uint64_t seq = mmapq_next_seq(p->q);
		const uint8_t *data = s->held + off + sizeof(uint32_t);
		uint32_t len;

		memcpy(&len, s->held + off, sizeof(len));
		r = mmapq_put(p->q, data, len);
		if (deferred && r == -ENOBUFS) {
			r = producer_refill(p, 0);
			if (r == 0)
				r = mmapq_put(p->q, data, len);
			if (r == -ENOBUFS) {
				producer_wait(p, s, mmapq_frame_size(len));
				r = 0;
				break;
			}
		}
		if (r < 0) {
			/* at the shutdown: the mutex still not to be had
			 * (-EINTR), or no room */
			if (!deferred || put_gave_up(p, r))
				r = 0;
			break;
		}
		count_put(p, s, seq, 1, mmapq_frame_size(len));
		off += sizeof(len) + len;
		s->held_n--;
	}
	if (off) {
		memmove(s->held, s->held + off, s->held_len - off);
		s->held_len -= off;
	}
	return r;
}

bool sources_deferred(const struct producer *p)
{
	for (unsigned i = 0; !p->put_stopped && i < p->n_src; i++)
		if (p->src[i]->held_n)
			return true;
	return false;
}

int sources_put_deferred(struct producer *p)
{
	for (unsigned i = 0; !p->put_stopped && i < p->n_src; i++) {
		struct source *s = p->src[i];
		int r = put_held(p, s, true);

		if (r < 0)
			return producer_fatal(p, r);
		if (s->held_n)
			break; /* the others' wait behind it: one record waits at a time */
	}
	return 0;
}

uint64_t sources_put_held(struct producer *p)
{
	uint64_t left = 0;

	p->put_stopped = false;
	for (unsigned i = 0; i < p->n_src; i++) {
		(void)put_held(p, p->src[i], false);
		left += p->src[i]->held_n;
	}
	return left;
}
