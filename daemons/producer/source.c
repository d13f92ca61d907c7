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
#include <sys/stat.h>
#include <unistd.h>

#include "producer.h"
#include "protocol.h"

int producer_refill(struct producer *p, uint64_t deadline_ns)
{
	/* room for records of the largest size (what any record fits in) */
	uint32_t len = p->cfg.format == MMAPQ_FORMAT_INT ? sizeof(int64_t) : p->cfg.max_record;
	uint64_t room, n;
	int r = mmapq_reserve(p->q, len, deadline_ns, &room);

	if (r == -EAGAIN || r == -ETIMEDOUT || r == -EINTR) {
		p->nfree = 0;
		return 0;
	}
	if (r < 0)
		return r;
	n = room / mmapq_frame_size(len);
	p->nfree = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	return 0;
}

int producer_fatal(struct producer *p, int r)
{
	log_error("%s: %s", mmapq_path(p->q), mmapq_strerror(r));
	if (!p->error)
		p->error = r;
	return r;
}

int producer_put(struct producer *p, struct source *s, const void *data, uint32_t len)
{
	int r;

	if (!p->nfree && !producer_blocking(p)) {
		r = producer_refill(p, 0);
		if (r < 0)
			return producer_fatal(p, r);
	}
	if (!p->nfree) {
		/* drop mode only: block mode never reads more than fits */
		if (s)
			s->dropped++;
		mmapq_count_dropped(p->q, 1);
		if (log_limit_pass(&p->drop_limit))
			log_warning("queue full: record dropped (on_full = drop)");
		return 0;
	}
	if (s)
		s->last_seq = mmapq_next_seq(p->q);
	r = mmapq_put(p->q, data, len);
	if (r < 0)
		return producer_fatal(p, r);
	p->nfree--;
	if (s) {
		s->published++;
		s->pending++;
	}
	return 0;
}

/*
 * A batch of int records from the parser (mmapq_parser_set_int_batch):
 * with room, as many as fit in one mmapq_put_many (a few instructions per
 * record), the source's counters and last_seq updated once for them; with
 * none (drop mode only: block mode never reads more than fits), one record
 * at a time through producer_put, which looks for room again and drops it
 * if there is still none.
 */
static int put_ints(struct producer *p, struct source *s, const int64_t *v, size_t n)
{
	while (n) {
		uint64_t first = mmapq_next_seq(p->q);
		int r;

		if (!p->nfree) {
			r = producer_put(p, s, v, sizeof(*v));
			if (r < 0)
				return r;
			v++;
			n--;
			continue;
		}
		r = mmapq_put_many(p->q, v, sizeof(*v), n < p->nfree ? (uint32_t)n : p->nfree);
		if (r < 0)
			return producer_fatal(p, r);
		p->nfree -= (uint32_t)r;
		s->published += (uint64_t)r;
		s->pending += (uint64_t)r;
		s->last_seq = first + (uint64_t)r - 1;
		v += r;
		n -= (size_t)r;
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
	snprintf(s->name, sizeof(s->name), "%s", name);
	if (mmapq_parser_new(p->cfg.format, p->cfg.max_record, on_record, on_parse_error, s,
	                     &s->parser) < 0) {
		free(s);
		return NULL;
	}
	/* int records in batches of up to MMAPQ_PARSE_BATCH: put_ints */
	if (p->cfg.format == MMAPQ_FORMAT_INT)
		(void)mmapq_parser_set_int_batch(s->parser, on_ints);
	return s;
}

void source_free(struct source *s)
{
	if (!s)
		return;
	if (s->fd > STDIN_FILENO)
		close(s->fd);
	for (int i = 0; i < 2; i++)
		if (s->tee[i] >= 0)
			close(s->tee[i]);
	mmapq_parser_free(s->parser);
	free(s->out);
	free(s);
}

bool source_is_boundary(const struct producer *p, unsigned char ch)
{
	if (p->cfg.format == MMAPQ_FORMAT_LINE)
		return ch == '\n';
	return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

int source_feed(struct producer *p, struct source *s, const char *data, size_t n)
{
	size_t k = n;

	while (k && !source_is_boundary(p, (unsigned char)data[k - 1]))
		k--;
	s->partial = k ? n - k : s->partial + n;
	return mmapq_parser_feed(s->parser, data, n);
}

void sources_finish(struct producer *p)
{
	for (unsigned i = 0; i < p->n_src; i++) {
		struct source *s = p->src[i];
		/* an unfinished final record needs a slot; a connection that
		 * failed has no final record, only a cut one */
		if (!s->eof || s->finished || s->gone || (producer_blocking(p) && !p->nfree && s->partial))
			continue;
		if (mmapq_parser_finish(s->parser) < 0 && p->error)
			return;
		s->finished = true;
		if (s->fd != STDIN_FILENO)
			client_progress(p, s); /* from now on it only reads its replies */
	}
}
