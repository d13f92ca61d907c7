/* SPDX-License-Identifier: MIT */
/*
 * output_stream.c -- outputs stdout, file:PATH and null: each record as
 * mmapq-producer takes it as input, so that `mmapq-consumer |
 * mmapq-producer` carries a queue's records into another one.  Format int:
 * the number in decimal and a line end; line: its bytes and a line end
 * (with [consumer] seq_prefix = yes, the sequence number and a tab before
 * either); binary: a 4-byte big-endian length, then the bytes (seq_prefix
 * does not apply to it: main.c refuses the pair).
 *
 * A batch is at most BATCH_BYTES of output (BATCH_BYTES_SYNCED with
 * sync != never; or one record, if larger), whatever the backlog, and its
 * memory does not grow with max_record: the small pieces (sequence
 * numbers, numbers, line ends, lengths, payloads shorter than
 * IN_PLACE_MIN) are made in a buffer of a fixed size, where
 * the pieces of consecutive records join into one; a payload of
 * IN_PLACE_MIN bytes or more is written straight from the queue's mapping,
 * never copied: a run of records is one writev of their pieces in order
 * (a line: its payload, then its '\n' and what follows up to the next
 * payload, one piece in the buffer; a binary record: its length, then its
 * payload), at most IOV_MAX of them per call.  mmapq_get's pointer stays
 * valid until the record is released, after the batch is written.  It is
 * written at most WRITE_CHUNK bytes per call, each followed by a progress
 * call (the watchdog), so a slow output that still moves is not mistaken
 * for a hang; a stop request ends the write between chunks, which end
 * where a record ends (a record larger than a chunk is a chunk of its own:
 * within it only a signal interrupting a write stops it).  Only a batch written completely (and, with sync != never on a
 * file, fdatasync'ed) is reported done.
 *
 * null reads and checks each record and writes nothing.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fmt.h"
#include "log.h"
#include "output.h"
#include "start.h"

#define BATCH_BYTES (1024u * 1024u) /* output per batch, at most (+ one record) */
/*
 * With sync != never each batch ends in disk round trips (the file's
 * fdatasync; with batch and always the msync of the cursor its release
 * makes), and the release is what gives the producer room: on a full ring
 * its group of records ends where its room does, and each group costs it
 * two msyncs.  Batches of 1 MiB made the shipped 4 MiB ring's groups 1 MiB
 * as well, twice the round trips on either side of those of 2 MiB, half
 * the ring, the most a producer groups (measured, 64-byte lines to a file
 * with sync = batch: the producer's msyncs 153 -> 90).
 */
#define BATCH_BYTES_SYNCED (2u * 1024u * 1024u)
#define WRITE_CHUNK (64u * 1024u)   /* at most one write() of this, then a progress call */
/*
 * A payload of at least this many bytes is written from the mapping, a
 * shorter one copied: each piece of a writev costs the kernel about as
 * much as copying some 100-200 bytes (measured, the consumer alone writing
 * lines to a file: in place, 64-byte lines took 3x the system time of
 * copied ones, 128-byte ones 2x; from 256 bytes on in place was as fast
 * or faster, and 1 KiB lines saved the copy's user time).
 */
#define IN_PLACE_MIN 256u
/* What one record takes of the buffer at most: its payload if copied, and
 * room for a sequence number and a number (mmapq_fmt_* store 8 bytes at a
 * time) or a length and a line end. */
#define RECORD_ROOM (IN_PLACE_MIN + 2 * MMAPQ_FMT_INT_MAX)
#define BUF_BYTES   (BATCH_BYTES_SYNCED + RECORD_ROOM)
/* pieces of a batch (3 per record at most, 2 for a line or binary record
 * after the first): a batch of small lines is thousands of records */
#define IOV_CAP     16384u
#define CUTS        68u             /* chunk ends of a batch (2 * BATCH_BYTES_SYNCED / WRITE_CHUNK + 2 at most) */
#define WINDOW      IOV_MAX         /* iovecs per writev */
#define LENGTH_BYTES 4u             /* format binary: the big-endian length before each record */
#define SEQ_MAX     21u             /* "SEQ\t": 20 digits and a tab */

enum stream_kind { STREAM_STDOUT, STREAM_FILE, STREAM_NULL };

struct stream {
	struct output base;              /* base.held: the records of the batch, or written but not released */
	enum stream_kind kind;
	int fd;
	char name[MMAPQ_CONFIG_STR_MAX]; /* "stdout", "null", or the file's path */
	char *buf;                       /* BUF_BYTES: the pieces copied */
	size_t len;                      /* of buf, used */
	uint32_t niov;                   /* of iov, used */
	size_t total;                    /* bytes in the batch */
	size_t cut[CUTS];                /* where its chunks end: record ends */
	uint32_t ncut;
	size_t chunk_start;              /* where the chunk being filled starts */
	size_t unkicked;                 /* file, sync != never: written since the last kick */
	off_t kicked;                    /* the file's bytes below this handed to write-back */
	struct iovec iov[];              /* IOV_CAP (none for null): the batch, in order */
};

/* ---- the file's tail ------------------------------------------------------ */

/* The most a write cut short leaves of one record: all of it but its last
 * byte (a sequence number always counted: seq_prefix may have been on). */
static uint64_t fragment_max(const struct mmapq_config *cfg)
{
	if (cfg->format == MMAPQ_FORMAT_BINARY)
		return LENGTH_BYTES + (uint64_t)MMAPQ_MAX_RECORD_MAX;
	if (cfg->format == MMAPQ_FORMAT_INT)
		return SEQ_MAX + MMAPQ_FMT_INT_MAX;
	return SEQ_MAX + (uint64_t)cfg->max_record;
}

/* Format int and line: where the last line ends (0 if none does).  0, or
 * -EIO (said) for a file whose tail after its last line end is longer
 * than a record: not one this output wrote (another format), left alone. */
static int text_end(int fd, const char *path, off_t end, uint64_t max, off_t *keep)
{
	char buf[65536];
	off_t pos = end;

	*keep = 0;
	while (pos > 0 && (uint64_t)(end - pos) <= max) {
		size_t n = pos < (off_t)sizeof(buf) ? (size_t)pos : sizeof(buf);
		ssize_t k = pread(fd, buf, n, pos - (off_t)n);
		const char *nl;

		if (k != (ssize_t)n) {
			log_error("%s: read: %s", path, k < 0 ? strerror(errno) : "short read");
			return -EIO;
		}
		nl = memrchr(buf, '\n', n);
		if (nl) {
			*keep = pos - (off_t)n + (nl - buf) + 1;
			break;
		}
		pos -= (off_t)n;
	}
	if ((uint64_t)(end - *keep) > max) {
		log_error("%s: ends with more than %" PRIu64 " bytes without a line end, more than a"
		          " write cut short leaves of a record: not a file of records one per line, as"
		          " this output writes; not writing to it (move it away, or name another file"
		          " in [consumer] output)", path, max);
		return -EIO;
	}
	return 0;
}

/* Format binary: where the last whole record ends, walking the lengths
 * from the start (a record's bytes cannot say where it ends).  0, or -EIO
 * (said) for a length no record has: not a file of binary records. */
static int binary_end(const struct output_env *env, int fd, const char *path, off_t end,
                      off_t *keep)
{
	char buf[65536];
	off_t p = 0, at = 0; /* buf holds the file's bytes [at, at + have) */
	size_t have = 0;

	while (end - p >= (off_t)LENGTH_BYTES) {
		uint32_t be, len;

		if (p + (off_t)LENGTH_BYTES > at + (off_t)have) {
			size_t n = end - p < (off_t)sizeof(buf) ? (size_t)(end - p) : sizeof(buf);
			ssize_t k = pread(fd, buf, n, p);

			if (k != (ssize_t)n) {
				log_error("%s: read: %s", path, k < 0 ? strerror(errno) : "short read");
				return -EIO;
			}
			at = p;
			have = n;
			env->progress(); /* a long file is no hang */
		}
		memcpy(&be, buf + (p - at), sizeof(be));
		len = be32toh(be);
		if (len > MMAPQ_MAX_RECORD_MAX) {
			log_error("%s: at byte %lld a record of %" PRIu32 " bytes, more than any record"
			          " (%" PRIu32 "): not a file of binary records (a 4-byte big-endian length,"
			          " then the bytes), as this output writes; not writing to it (move it"
			          " away, or name another file in [consumer] output)", path, (long long)p,
			          len, MMAPQ_MAX_RECORD_MAX);
			return -EIO;
		}
		if ((uint64_t)(end - p) - LENGTH_BYTES < len)
			break;
		p += (off_t)(LENGTH_BYTES + len);
	}
	*keep = p;
	return 0;
}

/*
 * A consumer that stopped in the middle of a write (killed, ENOSPC, a file
 * size limit) leaves an incomplete last record.  That record was never
 * released, so the queue still holds it and writes it again: cut the
 * fragment off instead of letting it become a record of its own ("29" of
 * "29841", or a length without its bytes).  Everything up to the last whole
 * record stays.
 */
static int cut_partial_tail(const struct output_env *env, int fd, const char *path)
{
	const struct mmapq_config *cfg = env->cfg;
	off_t end = lseek(fd, 0, SEEK_END), keep = 0;
	int r;

	if (end < 0) {
		log_error("%s: lseek: %s", path, strerror(errno));
		return -EIO;
	}
	r = cfg->format == MMAPQ_FORMAT_BINARY ? binary_end(env, fd, path, end, &keep) :
	                                         text_end(fd, path, end, fragment_max(cfg), &keep);
	if (r < 0 || keep == end)
		return r;
	if (ftruncate(fd, keep) < 0 || (cfg->sync != MMAPQ_SYNC_NEVER && fsync(fd) < 0)) {
		log_error("%s: cannot cut its incomplete last record: %s", path, strerror(errno));
		return -EIO;
	}
	log_warning("%s: cut %lld bytes of an incomplete last record (a write that was interrupted);"
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

/* ---- a batch ----------------------------------------------------------------- */

/* The n bytes just put at buf + len join the batch (the last piece grows
 * if they follow it). */
static void add_copied(struct stream *s, size_t n)
{
	char *at = s->buf + s->len;
	struct iovec *last = s->niov ? &s->iov[s->niov - 1] : NULL;

	if (!n)
		return;
	if (last && (char *)last->iov_base + last->iov_len == at)
		last->iov_len += n;
	else
		s->iov[s->niov++] = (struct iovec){at, n};
	s->len += n;
	s->total += n;
}

/* A payload written from where it is (the queue's mapping). */
static void add_in_place(struct stream *s, const void *p, size_t n)
{
	if (!n)
		return;
	s->iov[s->niov++] = (struct iovec){(void *)p, n};
	s->total += n;
}

/* Chunks of at most WRITE_CHUNK that end where a record does (one record
 * larger than that: a chunk of its own), after the record from start to
 * total joined the batch; the batch's cut state passed in, so that a loop
 * can keep it in locals. */
static inline __attribute__((always_inline)) void
end_chunk(size_t *cut, uint32_t *ncut, size_t *chunk_start, size_t start, size_t total)
{
	if (total - *chunk_start > WRITE_CHUNK) {
		if (start > *chunk_start)
			cut[(*ncut)++] = *chunk_start = start;
		if (total - *chunk_start > WRITE_CHUNK)
			cut[(*ncut)++] = *chunk_start = total;
	}
}

/* One record into the batch, which has room for it (RECORD_ROOM in buf,
 * 3 pieces, 2 cuts). */
static void add_record(struct stream *s, const struct mmapq_record *rec)
{
	const struct mmapq_config *cfg = s->base.env->cfg;
	size_t start = s->total, n = 0;
	char *o = s->buf + s->len;

	if (cfg->format == MMAPQ_FORMAT_BINARY) {
		uint32_t be = htobe32(rec->len);

		memcpy(o, &be, sizeof(be));
		n = sizeof(be);
	} else if (cfg->seq_prefix) {
		n = mmapq_fmt_u64(o, rec->seq, '\t');
	}
	if (cfg->format == MMAPQ_FORMAT_INT) {
		int64_t v;

		memcpy(&v, rec->data, sizeof(v));
		n += mmapq_fmt_int(o + n, v);
		add_copied(s, n);
	} else if (rec->len < IN_PLACE_MIN) {
		memcpy(o + n, rec->data, rec->len);
		n += rec->len;
		if (cfg->format == MMAPQ_FORMAT_LINE)
			o[n++] = '\n';
		add_copied(s, n);
	} else {
		/* the payload where it is: the line end, in the buffer, joins
		 * what follows it there (one piece) */
		add_copied(s, n);
		add_in_place(s, rec->data, rec->len);
		if (cfg->format == MMAPQ_FORMAT_LINE) {
			s->buf[s->len] = '\n';
			add_copied(s, 1);
		}
	}
	end_chunk(s->cut, &s->ncut, &s->chunk_start, start, s->total);
}

/* What a batch's output may reach (the last record may go beyond it). */
static size_t batch_bytes(const struct stream *s)
{
	return s->base.env->cfg->sync == MMAPQ_SYNC_NEVER ? BATCH_BYTES : BATCH_BYTES_SYNCED;
}

static bool batch_has_room(const struct stream *s)
{
	return s->total < batch_bytes(s) && s->niov + 3 <= IOV_CAP && s->ncut + 2 < CUTS;
}

/*
 * Lines shorter than IN_PLACE_MIN without seq_prefix (the commonest
 * records), from recs[0] on while the batch has room, as add_record adds
 * them: each copied with its '\n' to the end of the buffer, all one piece
 * (the batch's last one grows if they follow it), the chunk ends where a
 * record ends; the batch's state in locals meanwhile (the bytes copied may
 * alias anything).  How many.
 */
static uint32_t add_short_lines(struct stream *s, const struct mmapq_record *recs, uint32_t n)
{
	char *const from = s->buf + s->len;
	char *o = from;
	size_t total = s->total, chunk_start = s->chunk_start, most = batch_bytes(s);
	uint32_t i = 0, ncut = s->ncut;

	for (; i < n && recs[i].len < IN_PLACE_MIN && total < most && ncut + 2 < CUTS; i++) {
		size_t start = total, len = recs[i].len;

		/* GCC, knowing len < IN_PLACE_MIN, would copy with rep movsq,
		 * which is slow on short lines (measured: twice the consumer's
		 * user time on 64-byte lines): the C library's memcpy is not */
		__asm__("" : "+r"(len));
		memcpy(o, recs[i].data, len);
		o += len;
		*o++ = '\n';
		total += len + 1;
		end_chunk(s->cut, &ncut, &chunk_start, start, total);
	}
	s->ncut = ncut;
	s->chunk_start = chunk_start;
	add_copied(s, (size_t)(o - from));
	return i;
}

/*
 * Format int without seq_prefix, as add_short_lines takes short lines:
 * each value formatted with its '\n' to the end of the buffer, all one
 * piece, the chunk ends where a record ends, the batch's state in locals
 * meanwhile.  How many (at least one: the batch has room).
 */
static uint32_t add_ints(struct stream *s, const struct mmapq_record *recs, uint32_t n)
{
	char *const from = s->buf + s->len;
	char *o = from;
	size_t total = s->total, chunk_start = s->chunk_start, most = batch_bytes(s);
	uint32_t i = 0, ncut = s->ncut;

	for (; i < n && total < most && ncut + 2 < CUTS; i++) {
		size_t start = total, len;
		int64_t v;

		memcpy(&v, recs[i].data, sizeof(v));
		len = mmapq_fmt_int(o, v);
		o += len;
		total += len;
		end_chunk(s->cut, &ncut, &chunk_start, start, total);
	}
	s->ncut = ncut;
	s->chunk_start = chunk_start;
	add_copied(s, (size_t)(o - from));
	return i;
}

/* As many records as start below batch_bytes(). */
static int stream_deliver(struct output *o, const struct mmapq_record *recs, uint32_t n,
                          uint32_t *taken)
{
	const struct mmapq_config *cfg = o->env->cfg;
	bool lines = cfg->format == MMAPQ_FORMAT_LINE && !cfg->seq_prefix;
	bool ints = cfg->format == MMAPQ_FORMAT_INT && !cfg->seq_prefix;
	struct stream *s = (struct stream *)o;
	uint32_t i = 0;

	if (s->kind == STREAM_NULL) {
		i = n; /* no batch: read and checked by mmapq_get_many, that is all */
	} else {
		/* (with room in the batch add_short_lines takes at least one) */
		while (i < n && batch_has_room(s)) {
			if (lines && recs[i].len < IN_PLACE_MIN)
				i += add_short_lines(s, recs + i, n - i);
			else if (ints)
				i += add_ints(s, recs + i, n - i);
			else
				add_record(s, &recs[i++]);
		}
	}
	s->base.held += i;
	*taken = i;
	return 0;
}

/* ---- writing it ------------------------------------------------------------------ */

/* Where the batch's writing stands: piece, offset in it, bytes written. */
struct cursor {
	uint32_t piece;
	size_t off, pos;
};

/* One writev of the batch's bytes from c, at most max of them.  Bytes
 * written (c moved on), or -errno. */
static ssize_t write_some(const struct stream *s, struct cursor *c, size_t max)
{
	struct iovec w[WINDOW];
	uint32_t nw = 0;
	size_t sum = 0;
	ssize_t k;

	for (uint32_t i = c->piece; i < s->niov && nw < WINDOW && sum < max; i++) {
		size_t skip = i == c->piece ? c->off : 0, n = s->iov[i].iov_len - skip;

		if (n > max - sum)
			n = max - sum;
		w[nw++] = (struct iovec){(char *)s->iov[i].iov_base + skip, n};
		sum += n;
	}
	k = writev(s->fd, w, (int)nw);
	if (k < 0)
		return -errno;
	c->pos += (size_t)k;
	for (size_t left = (size_t)k; left;) {
		size_t n = s->iov[c->piece].iov_len - c->off;

		if (left < n) {
			c->off += left;
			break;
		}
		left -= n;
		c->piece++;
		c->off = 0;
	}
	return k;
}

/*
 * A file with sync != never: every KICK_BYTES written, the whole pages
 * written since the last kick handed to write-back (sync_file_range
 * SYNC_FILE_RANGE_WRITE starts the I/O, does not wait), so that the disk
 * writes the batch while the rest of it is formatted and written; the
 * fdatasync before the release then waits for less.  A hint: a failure
 * here shows again in that fdatasync, which reports it.
 */
#define KICK_BYTES (256u * 1024u)

static void kick_writeback(struct stream *s, size_t written)
{
	off_t end;

	s->unkicked += written;
	if (s->unkicked < KICK_BYTES)
		return;
	s->unkicked = 0;
	end = lseek(s->fd, 0, SEEK_CUR); /* O_APPEND: the file's end */
	if (end < 0)
		return;
	end &= ~(off_t)4095;
	if (end > s->kicked)
		(void)sync_file_range(s->fd, s->kicked, end - s->kicked, SYNC_FILE_RANGE_WRITE);
	s->kicked = end;
}

/* Everything, despite EINTR and short writes: the release depends on it.
 * -EINTR: asked to stop (a stalled output must not keep us from stopping);
 * what was written are whole records, unless a write was cut short. */
static int write_out(struct stream *s)
{
	const struct output_env *env = s->base.env;
	struct cursor c = {0};

	if (!s->ncut || s->cut[s->ncut - 1] != s->total)
		s->cut[s->ncut++] = s->total;
	for (uint32_t i = 0; i < s->ncut; i++) {
		while (c.pos < s->cut[i]) {
			size_t max = s->cut[i] - c.pos < WRITE_CHUNK ? s->cut[i] - c.pos : WRITE_CHUNK;
			ssize_t k = write_some(s, &c, max);

			if (k == -EINTR && env->stop())
				return -EINTR;
			if (k == -EINTR)
				continue;
			if (k < 0)
				return (int)k;
			if (s->kind == STREAM_FILE && env->cfg->sync != MMAPQ_SYNC_NEVER)
				kick_writeback(s, (size_t)k);
			env->progress(); /* a long batch to a slow output is no hang */
		}
		if (env->stop() && c.pos < s->total)
			return -EINTR;
	}
	s->len = s->total = s->chunk_start = 0;
	s->niov = s->ncut = 0;
	return 0;
}

static int stream_complete(struct output *o, uint32_t *done)
{
	struct stream *s = (struct stream *)o;
	const char *what = "write";
	int r = 0;

	*done = 0;
	if (!s->base.held)
		return 0; /* nothing to write, nothing to sync */
	if (s->kind != STREAM_NULL) /* null has no batch */
		r = write_out(s);
	/* with sync != never the file holds every record up to the cursor the
	 * release is about to store */
	if (r == 0 && s->kind == STREAM_FILE && o->env->cfg->sync != MMAPQ_SYNC_NEVER &&
	    fdatasync(s->fd) < 0) {
		r = -errno;
		what = "fdatasync";
	}
	if (r == -EINTR) {
		log_notice("stopping while writing: %u records not acknowledged, they will be"
		           " written again by the next consumer", s->base.held);
		return r;
	}
	if (r < 0) {
		log_error("%s: %s: %s (%u records not acknowledged, kept in the queue)", s->name, what,
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
	bool null = !strcmp(spec, "null");
	struct stream *s = calloc(1, sizeof(*s) + (null ? 0 : IOV_CAP * sizeof(s->iov[0])));

	if (!s)
		return -ENOMEM;
	s->base = (struct output){.ops = &stream_ops, .env = env};
	s->fd = -1;
	if (null) {
		s->kind = STREAM_NULL;
	} else {
		s->buf = malloc(BUF_BYTES);
		if (!s->buf) {
			stream_close(&s->base);
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
