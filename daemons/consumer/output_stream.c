/* SPDX-License-Identifier: MIT */
/*
 * output_stream.c -- outputs stdout, file:PATH and null: each record as a
 * text line (an int in decimal, a line as it is; with [consumer]
 * seq_prefix = yes its sequence number and a tab before it), in batches.
 *
 * A batch is at most BATCH_BYTES of output (or one record, if larger),
 * whatever the backlog, so memory does not grow with it.  It is written in
 * chunks that end at a record boundary, each followed by a progress call
 * (the watchdog), so a slow output that still moves is not mistaken for a
 * hang; a stop request ends the write.  Only a batch written completely
 * (and, with sync != never on a file, fdatasync'ed) is reported done.
 *
 * null reads and checks each record and writes nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmt.h"
#include "log.h"
#include "output.h"
#include "start.h"

#define BATCH_BYTES (1024u * 1024u) /* output formatted per batch, at most (+ one record) */
#define WRITE_CHUNK (64u * 1024u)   /* one write(), then a progress call */

enum stream_kind { STREAM_STDOUT, STREAM_FILE, STREAM_NULL };

struct stream {
	struct output base;
	enum stream_kind kind;
	int fd;
	char name[MMAPQ_CONFIG_STR_MAX]; /* "stdout", "null", or the file's path */
	char *buf;                       /* BATCH_BYTES + one record + a line end */
	size_t cap, len;                 /* base.held: the records in buf, or written but not released */
};

/*
 * A consumer that stopped in the middle of a write (killed, ENOSPC, a file
 * size limit) leaves an incomplete last line.  That record was never
 * released, so the queue still holds it and writes it again: cut the
 * fragment off instead of letting it become a record of its own ("29" of
 * "29841").  Everything up to the last newline stays.
 */
static int cut_partial_tail(const struct output_env *env, int fd, const char *path)
{
	char buf[4096];
	off_t end = lseek(fd, 0, SEEK_END), pos = end, keep = 0;

	if (end < 0) {
		log_error("%s: lseek: %s", path, strerror(errno));
		return -EIO;
	}
	while (pos > 0) {
		size_t n = pos < (off_t)sizeof(buf) ? (size_t)pos : sizeof(buf);
		ssize_t k = pread(fd, buf, n, pos - (off_t)n);
		if (k != (ssize_t)n) {
			log_error("%s: read: %s", path, k < 0 ? strerror(errno) : "short read");
			return -EIO;
		}
		const char *nl = memrchr(buf, '\n', n);
		if (nl) {
			keep = pos - (off_t)n + (nl - buf) + 1;
			break;
		}
		pos -= (off_t)n;
	}
	if (keep == end)
		return 0;
	if (ftruncate(fd, keep) < 0 || (env->cfg->sync != MMAPQ_SYNC_NEVER && fsync(fd) < 0)) {
		log_error("%s: cannot cut its incomplete last line: %s", path, strerror(errno));
		return -EIO;
	}
	log_warning("%s: cut %lld bytes of an incomplete last line (a write that was interrupted);"
	            " the queue still holds that record and writes it again",
	            path, (long long)(end - keep));
	return 0;
}

/* file:PATH opened for appending.  The fd, or -errno (said). */
static int open_file(const struct output_env *env, const char *path)
{
	/* O_NOFOLLOW, as for the queue file: a symbolic link planted at the
	 * path must not redirect records elsewhere */
	int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0640);
	struct stat st;

	if (fd < 0 && errno == ELOOP) {
		log_error("%s: is a symbolic link; refusing to follow it (name the target in"
		          " [consumer] output)", path);
		return -ELOOP;
	}
	if (fd < 0) {
		int r = -errno;
		log_error("%s: cannot open output: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		int r = cut_partial_tail(env, fd, path);
		if (r < 0) {
			close(fd);
			return r;
		}
	}
	return fd;
}

/* One record as a line at o, which has room for it: its length. */
static size_t format(const struct stream *s, char *o, const struct mmapq_record *rec)
{
	char *start = o;

	if (s->base.env->cfg->seq_prefix)
		o += mmapq_fmt_u64(o, rec->seq, '\t');
	if (s->base.env->cfg->format == MMAPQ_FORMAT_INT) {
		int64_t v;
		memcpy(&v, rec->data, sizeof(v));
		o += mmapq_fmt_int(o, v);
	} else {
		memcpy(o, rec->data, rec->len);
		o += rec->len;
		*o++ = '\n';
	}
	return (size_t)(o - start);
}

/* As many records as start below BATCH_BYTES: the buffer has room for one
 * more past it (cap: BATCH_BYTES + record_size + 32 + MMAPQ_FMT_INT_MAX). */
static int stream_deliver(struct output *o, const struct mmapq_record *recs, uint32_t n,
                          uint32_t *taken)
{
	struct stream *s = (struct stream *)o;
	uint32_t i = 0;

	if (s->kind == STREAM_NULL) {
		i = n; /* read and checked by mmapq_get_many: that is all */
	} else {
		for (; i < n && s->len < BATCH_BYTES; i++)
			s->len += format(s, s->buf + s->len, &recs[i]);
	}
	s->base.held += i;
	*taken = i;
	return 0;
}

/* Where the chunk starting at off ends: at most WRITE_CHUNK bytes, cut
 * after a line end (a record larger than that is one chunk). */
static size_t chunk_end(const struct stream *s, size_t off)
{
	const char *nl;

	if (s->len - off <= WRITE_CHUNK)
		return s->len;
	nl = memrchr(s->buf + off, '\n', WRITE_CHUNK);
	if (!nl)
		nl = memchr(s->buf + off + WRITE_CHUNK, '\n', s->len - off - WRITE_CHUNK);
	return nl ? (size_t)(nl - s->buf) + 1 : s->len;
}

/* Everything, despite EINTR and short writes: the release depends on it.
 * -EINTR: asked to stop (a stalled output must not keep us from stopping);
 * what was written are whole lines, unless a write was cut short. */
static int write_out(struct stream *s)
{
	const struct output_env *env = s->base.env;
	size_t off = 0;

	while (off < s->len) {
		size_t end = chunk_end(s, off);

		while (off < end) {
			ssize_t k = write(s->fd, s->buf + off, end - off);
			if (k < 0 && errno == EINTR && env->stop())
				return -EINTR;
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return -errno;
			off += (size_t)k;
		}
		env->progress(); /* a long batch to a slow output is no hang */
		if (env->stop() && off < s->len)
			return -EINTR;
	}
	s->len = 0;
	if (s->kind == STREAM_FILE && env->cfg->sync != MMAPQ_SYNC_NEVER && fdatasync(s->fd) < 0)
		return -errno;
	return 0;
}

static int stream_complete(struct output *o, uint32_t *done)
{
	struct stream *s = (struct stream *)o;
	int r = s->kind == STREAM_NULL ? 0 : write_out(s);

	*done = 0;
	if (r == -EINTR) {
		log_notice("stopping while writing: %u records not acknowledged, they will be"
		           " written again by the next consumer", s->base.held);
		return r;
	}
	if (r < 0) {
		log_error("%s: write: %s (%u records not acknowledged, kept in the queue)", s->name,
		          strerror(-r), s->base.held);
		return r;
	}
	*done = s->base.held;
	return 0;
}

static const char *stream_describe(struct output *o)
{
	return ((struct stream *)o)->name;
}

static void stream_close(struct output *o)
{
	struct stream *s = (struct stream *)o;

	if (s->kind == STREAM_FILE && s->fd >= 0)
		close(s->fd);
	free(s->buf);
	free(s);
}

static const struct output_ops stream_ops = {
	.deliver = stream_deliver,
	.complete = stream_complete,
	.describe = stream_describe,
	.close = stream_close,
};

int output_stream_open(const struct output_env *env, const char *spec, struct output **ret)
{
	struct stream *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->base = (struct output){.ops = &stream_ops, .env = env};
	s->fd = -1;
	/* + one record, its line end, its sequence number and a tab */
	s->cap = BATCH_BYTES + env->cfg->max_record + 32 + MMAPQ_FMT_INT_MAX;
	if (!strcmp(spec, "null")) {
		s->kind = STREAM_NULL;
	} else {
		s->buf = malloc(s->cap);
		if (!s->buf) {
			free(s);
			return -ENOMEM;
		}
	}
	if (!strcmp(spec, "stdout")) {
		if (START_CLOSED(env->closed_std, STDOUT_FILENO)) {
			log_error("output = %s: standard output was closed when the consumer started;"
			          " nothing consumed", env->cfg->output);
			stream_close(&s->base);
			return -EBADF;
		}
		s->kind = STREAM_STDOUT;
		s->fd = STDOUT_FILENO;
	} else if (!strncmp(spec, "file:", 5)) {
		s->kind = STREAM_FILE;
		s->fd = open_file(env, spec + 5);
		if (s->fd < 0) {
			int r = s->fd;
			stream_close(&s->base);
			return r;
		}
	}
	snprintf(s->name, sizeof(s->name), "%s", s->kind == STREAM_FILE ? spec + 5 : spec);
	*ret = &s->base;
	return 0;
}
