/* SPDX-License-Identifier: MIT */
/*
 * mmapq-consumer -- waits for records and writes each to its output.
 *
 * Start-up, in this order: standard descriptors, options, config, signals,
 * queue (create or attach, validate, take the consumer role), output (only
 * once the role is ours: a refused consumer must not touch the live one's
 * output).  Shutdown in reverse.
 *
 * Delivery: a batch is formatted, written out completely (and, with
 * sync != never on a file, fdatasync'ed) and only then released, which
 * advances the consumer position stored in the file.  A crash between the
 * write and the release repeats that one batch after restart (at-least-once;
 * with output = journal each entry carries MMAPQ_SEQ=, which identifies the
 * repeats); nothing is ever skipped.  A batch is at most BATCH_BYTES of
 * output (or one record, if larger), whatever the backlog, so memory does
 * not grow with it; it is written in chunks that end at a record boundary,
 * with a watchdog ping after each, so a slow output that still moves is
 * not mistaken for a hang.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cli.h"
#include "fault.h"
#include "fmt.h"
#include "journal.h"
#include "log.h"
#include "mmapq.h"
#include "nats.h"
#include "service.h"

#define BATCH_BYTES (1024u * 1024u) /* output formatted per batch, at most (+ one record) */
#define WRITE_CHUNK (64u * 1024u)   /* one write(), then a watchdog ping */
#define GET_MANY    256u            /* records per mmapq_get_many */

enum output_kind { OUT_STDOUT, OUT_NULL, OUT_FILE, OUT_JOURNAL, OUT_NATS };

struct output {
	enum output_kind kind;
	int fd;
	const char *name;    /* points into the config's output string (file:) */
	struct journal journal;
	struct nats_out *nats; /* OUT_NATS: records stay held until the broker acks them */
	char namespace[MMAPQ_CONFIG_STR_MAX]; /* the journal's namespace ("default") */
};

struct consumer {
	struct mmapq *q;
	struct mmapq_config cfg;
	struct cli *cli;
	unsigned closed_std;      /* standard descriptors closed at start (cli_start) */
	struct output out;
	char *buf;                /* BATCH_BYTES + one record + a line end */
	char ident[MMAPQ_CONFIG_STR_MAX + 24]; /* SYSLOG_IDENTIFIER=[consumer] journal_identifier */
	size_t cap, len;
	uint64_t consumed, next_stats_ns, stats_consumed, next_status_ns;
	bool stale;               /* the path no longer names our file: drain, then stop */
	bool corrupt;             /* the header was overwritten: stop */
	struct rate_meter status_rate;
};

/*
 * A consumer that stopped in the middle of a write (killed, ENOSPC, a file
 * size limit) leaves an incomplete last line.  That record was never
 * released, so the queue still holds it and writes it again: cut the
 * fragment off instead of letting it become a record of its own ("29" of
 * "29841").  Everything up to the last newline stays.
 */
static int cut_partial_tail(const struct consumer *c, int fd, const char *path)
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
	if (ftruncate(fd, keep) < 0 || (c->cfg.sync != MMAPQ_SYNC_NEVER && fsync(fd) < 0)) {
		log_error("%s: cannot cut its incomplete last line: %s", path, strerror(errno));
		return -EIO;
	}
	log_warning("%s: cut %lld bytes of an incomplete last line (a write that was interrupted);"
	            " the queue still holds that record and writes it again",
	            path, (long long)(end - keep));
	return 0;
}

/* spec is [consumer] output; o->name may point into it.  0, or -errno
 * (said): -EINVAL for an output this build does not have, -EIO for
 * journald unreachable or a damaged output file, -EBADF for a closed
 * stdout, what open() said for a file. */
static int open_output(const struct consumer *c, const char *spec, struct output *o)
{
	/* auto: one journal entry per record when stdout is the journal */
	if (!strcmp(spec, "journal") || (!strcmp(spec, "auto") && service_fd_is_journal(STDOUT_FILENO))) {
		const char *ns = c->cfg.journal_namespace;
		bool own_ns = strcmp(ns, "default") != 0;
		char path[MMAPQ_CONFIG_STR_MAX + 32];
		int r;

		*o = (struct output){OUT_JOURNAL, -1, "journal", {.fd = -1}, NULL, ""};
		if (own_ns)
			snprintf(path, sizeof(path), JOURNAL_NAMESPACE_SOCKET_FMT, ns);
		else
			snprintf(path, sizeof(path), "%s", JOURNAL_SOCKET);
		r = journal_open(&o->journal, path);
		if (r < 0) {
			log_error("output = journal: cannot connect to %s: %s (is systemd-journald%s%s"
			          " running?); nothing consumed", path, strerror(-r), own_ns ? "@" : "",
			          own_ns ? ns : "");
			return -EIO; /* journald unreachable: an I/O error, whatever connect said */
		}
		snprintf(o->namespace, sizeof(o->namespace), "%s", c->cfg.journal_namespace);
	} else if (!strcmp(spec, "stdout") || !strcmp(spec, "auto")) {
		if (CLI_CLOSED(c->closed_std, STDOUT_FILENO)) {
			log_error("output = %s: standard output was closed when the consumer started;"
			          " nothing consumed", spec);
			return -EBADF;
		}
		*o = (struct output){OUT_STDOUT, STDOUT_FILENO, "stdout", {.fd = -1}, NULL, ""};
	} else if (!strcmp(spec, "null")) {
		*o = (struct output){OUT_NULL, -1, "null", {.fd = -1}, NULL, ""};
	} else if (!strncmp(spec, "file:", 5)) {
		const char *path = spec + 5;
		/* O_NOFOLLOW, as for the queue file: a symbolic link planted at
		 * the path must not redirect records elsewhere */
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
			int r = cut_partial_tail(c, fd, path);
			if (r < 0) {
				close(fd);
				return r;
			}
		}
		*o = (struct output){OUT_FILE, fd, path, {.fd = -1}, NULL, ""};
	} else if (!strcmp(spec, "nats")) {
		struct mmapq_status st;
		int r = mmapq_status(c->q, &st);

		*o = (struct output){OUT_NATS, -1, "nats", {.fd = -1}, NULL, ""};
		if (r == 0)
			r = nats_out_open(&o->nats, &c->cfg, st.id);
		if (r < 0)
			return r;
	} else {
		log_error("output '%s' is not supported by this build", spec);
		return -EINVAL;
	}
	return 0;
}

/* "%" PRId64 "\n" without printf: this runs for every record.  The batch
 * buffer always has room for one more record, at least MMAPQ_FMT_INT_MAX. */
_Static_assert(MMAPQ_FMT_INT_MAX <= 24, "format_int needs more room than reserved");
static inline size_t format_int(char *out, int64_t v)
{
	return mmapq_fmt_int(out, v);
}

static bool stopping(void)
{
	return cli_stop;
}

/* MESSAGE= is the record exactly as the lab printed it, plus MMAPQ_SEQ=.
 * Binary-safe, for line records. */
static int journal_record(struct consumer *c, const struct mmapq_record *rec)
{
	static const char msg[] = "MESSAGE=";
	const size_t mlen = sizeof(msg) - 1;
	char seq[40], queue[MMAPQ_CONFIG_STR_MAX + 16];
	struct iovec iov[6];
	size_t len;
	int n, m;

	memcpy(c->buf, msg, mlen);
	if (c->cfg.format == MMAPQ_FORMAT_INT) {
		int64_t v;
		memcpy(&v, rec->data, sizeof(v));
		len = format_int(c->buf + mlen, v) - 1; /* without its newline */
	} else {
		memcpy(c->buf + mlen, rec->data, rec->len);
		len = rec->len;
	}
	n = snprintf(seq, sizeof(seq), "MMAPQ_SEQ=%" PRIu64, rec->seq);
	m = snprintf(queue, sizeof(queue), "MMAPQ_QUEUE=%s", c->cfg.queue_path);
	iov[0] = (struct iovec){c->buf, mlen + len};
	iov[1] = (struct iovec){seq, (size_t)n};
	iov[2] = (struct iovec){queue, (size_t)m};
	iov[3] = (struct iovec){(char *)"PRIORITY=6", 10};
	iov[4] = (struct iovec){c->ident, strlen(c->ident)}; /* records apart from the logs */
	iov[5] = (struct iovec){(char *)"MMAPQ_ROLE=consumer", 19};
	/* journald's socket may be full: a stop request ends the wait (the
	 * record is then not acknowledged), other interruptions retry */
	return journal_send(&c->out.journal, iov, 6, stopping);
}

/*
 * fill_buffer with [consumer] seq_prefix = yes: each line is the record's
 * sequence number, a tab and the record, so that whoever reads the output
 * can drop what a restarted consumer writes again (a batch written but not
 * released when the consumer died).  Each record takes at most
 * MMAPQ_FMT_INT_MAX + record_size + 1 bytes: the buffer's room past
 * BATCH_BYTES.
 */
static int fill_buffer_seq(struct consumer *c, uint32_t index, uint32_t want)
{
	struct mmapq_record rec[GET_MANY];
	uint32_t j = 0;
	int r = mmapq_get_many(c->q, index, want, rec);

	for (; r > 0 && j < (uint32_t)r && c->len < BATCH_BYTES; j++) {
		char *o = c->buf + c->len;

		o += mmapq_fmt_u64(o, rec[j].seq, '\t');
		if (c->cfg.format == MMAPQ_FORMAT_INT) {
			int64_t v;
			memcpy(&v, rec[j].data, sizeof(v));
			o += format_int(o, v);
		} else {
			memcpy(o, rec[j].data, rec[j].len);
			o += rec[j].len;
			*o++ = '\n';
		}
		c->len = (size_t)(o - c->buf);
	}
	return r < 0 ? r : (int)j;
}

/*
 * Records index, index + 1, ... of the available ones into the batch
 * buffer (output stdout, file or null), up to n of them and while the
 * buffer holds less than BATCH_BYTES (it has room for one record more: its
 * capacity is BATCH_BYTES + record_size + 32).  They are read GET_MANY at
 * a time, int records as values (mmapq_copy_many) formatted in a tight
 * loop, lines with mmapq_get_many: no per-record dispatch on the output or
 * the format.  For format int a call takes at most as many records as can
 * start below BATCH_BYTES if each took MMAPQ_FMT_INT_MAX bytes, so the
 * buffer ends below BATCH_BYTES + MMAPQ_FMT_INT_MAX, as with one record at
 * a time.  Returns the records taken, or -EBADMSG (record index is
 * corrupt).
 */
static int fill_buffer(struct consumer *c, uint32_t index, uint32_t n)
{
	struct mmapq_record rec[GET_MANY];
	uint32_t want = n < GET_MANY ? n : GET_MANY, k, j = 0;
	int r;

	if (c->cfg.seq_prefix && c->out.kind != OUT_NULL)
		return fill_buffer_seq(c, index, want);

	if (c->cfg.format == MMAPQ_FORMAT_INT) {
		/* the values alone: mmapq_copy_many */
		int64_t v[GET_MANY];
		char *o = c->buf + c->len;

		if (c->out.kind != OUT_NULL && want > (BATCH_BYTES - c->len) / MMAPQ_FMT_INT_MAX + 1)
			want = (uint32_t)((BATCH_BYTES - c->len) / MMAPQ_FMT_INT_MAX + 1);
		r = mmapq_copy_many(c->q, index, want, v, sizeof(v[0]));
		if (r < 0 || c->out.kind == OUT_NULL)
			return r; /* read and checked: with output null that is all */
		for (k = (uint32_t)r; j < k; j++)
			o += format_int(o, v[j]);
		c->len = (size_t)(o - c->buf);
		return r;
	}
	r = mmapq_get_many(c->q, index, want, rec);
	if (r < 0)
		return r;
	k = (uint32_t)r;
	if (c->out.kind == OUT_NULL)
		return (int)k; /* read and checked: that is all */
	for (; j < k && c->len < BATCH_BYTES; j++) {
		memcpy(c->buf + c->len, rec[j].data, rec[j].len);
		c->len += rec[j].len;
		c->buf[c->len++] = '\n';
	}
	return (int)j;
}

/* Where the chunk starting at off ends: at most WRITE_CHUNK bytes, cut
 * after a line end (a record larger than that is one chunk). */
static size_t chunk_end(const struct consumer *c, size_t off)
{
	const char *nl;

	if (c->len - off <= WRITE_CHUNK)
		return c->len;
	nl = memrchr(c->buf + off, '\n', WRITE_CHUNK);
	if (!nl)
		nl = memchr(c->buf + off + WRITE_CHUNK, '\n', c->len - off - WRITE_CHUNK);
	return nl ? (size_t)(nl - c->buf) + 1 : c->len;
}

/* Everything, despite EINTR and short writes: the release depends on it.
 * -EINTR: asked to stop (a stalled output must not keep us from stopping);
 * what was written are whole lines, unless a write was cut short. */
static int flush_output(struct consumer *c)
{
	size_t off = 0;

	while (off < c->len) {
		size_t end = chunk_end(c, off);

		while (off < end) {
			ssize_t k = write(c->out.fd, c->buf + off, end - off);
			if (k < 0 && errno == EINTR && cli_stop)
				return -EINTR;
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return -errno;
			off += (size_t)k;
		}
		service_loop_tick(); /* progress: a long batch to a slow output is no hang */
		if (cli_stop && off < c->len)
			return -EINTR;
	}
	c->len = 0;
	if (c->out.kind == OUT_FILE && c->cfg.sync != MMAPQ_SYNC_NEVER && fdatasync(c->out.fd) < 0)
		return -errno;
	return 0;
}

/* Our cursor, from the consumer table (fallback: the queue's head). */
static uint64_t own_position(const struct consumer *c, uint64_t fallback)
{
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	int n = mmapq_consumers(c->q, cs, MMAPQ_CONSUMERS_MAX);

	for (int i = 0; i < n && i < (int)MMAPQ_CONSUMERS_MAX; i++)
		if (!strcmp(cs[i].name, c->cfg.consumer))
			return cs[i].position;
	return fallback;
}

static void stats(struct consumer *c, int force)
{
	struct mmapq_status st;
	uint64_t now = mmapq_now_ns();
	bool log_due = c->cfg.stats_interval && (force || now >= c->next_stats_ns);

	if (!force && !log_due && now < c->next_status_ns)
		return;
	int r = c->stale || c->corrupt ? 0 : mmapq_check(c->q);
	if (r == -ESTALE) {
		log_error("%s: %s; writing out what it still holds, then stopping", mmapq_path(c->q),
		          mmapq_strerror(r));
		c->stale = true;
	} else if (r == -EBADMSG) {
		log_error("%s: the header was overwritten while in use; stopping", mmapq_path(c->q));
		c->corrupt = true;
		return;
	}
	if (mmapq_status(c->q, &st) < 0)
		return;
	/* our own cursor: head is the slowest consumer's */
	uint64_t pos = own_position(c, st.head);
	char rate[32];
	service_status("consumed %" PRIu64 ", depth %" PRIu64 "/%" PRIu32 ", %s, output %s", pos,
	               st.tail - pos, st.capacity,
	               rate_meter_update(&c->status_rate, pos, rate, sizeof(rate)),
	               c->out.kind == OUT_NATS ? nats_out_describe(c->out.nats) : c->out.name);
	c->next_status_ns = now + 1000000000u;
	if (!log_due)
		return;
	log_info("consumed %" PRIu64 ", depth %" PRIu64 "/%" PRIu32 ", %.1f rec/s", pos,
	         st.tail - pos, st.capacity,
	         (double)(c->consumed - c->stats_consumed) / c->cfg.stats_interval);
	c->stats_consumed = c->consumed;
	c->next_stats_ns = now + (uint64_t)c->cfg.stats_interval * 1000000000u;
}

static void close_output(struct output *o)
{
	if (o->kind == OUT_FILE && o->fd >= 0)
		close(o->fd);
	if (o->kind == OUT_JOURNAL)
		journal_close(&o->journal);
	if (o->kind == OUT_NATS)
		nats_out_close(o->nats);
	o->nats = NULL;
	o->fd = -1;
}

static int release(struct consumer *c, uint32_t n);

/* NATS: what the broker acknowledged of what is in flight, within about
 * a second, is released; the rest stays in the queue (published again by
 * the next consumer, or output, and dropped by the stream's duplicate
 * window if it had it).  Before a stop or a switch to another output. */
static void nats_drain(struct consumer *c)
{
	uint32_t acked = nats_out_drain(c->out.nats, mmapq_now_ns() + 1000000000u);

	if (acked && release(c, acked) == 0)
		nats_out_released(c->out.nats, acked);
	log_notice("NATS: %u acknowledged records released before leaving", acked);
}

static void set_ident(struct consumer *c)
{
	snprintf(c->ident, sizeof(c->ident), "SYSLOG_IDENTIFIER=%s", c->cfg.journal_identifier);
}

/* The keys that choose the output: applied by apply_reload, if the new
 * output opens, and logged by it. */
static const struct cli_key output_keys[] = {
	{"consumer", "output"},
	{"consumer", "journal_namespace"},
	{NULL, NULL},
};

/* Says what became of the output keys that changed (why_not: NULL if
 * applied). */
static void log_output_keys(const char *old_output, const char *old_ns, const char *new_output,
                            const char *new_ns, const char *why_not)
{
	if (strcmp(old_output, new_output))
		cli_log_reload("consumer", "output", old_output, new_output, why_not);
	if (strcmp(old_ns, new_ns))
		cli_log_reload("consumer", "journal_namespace", old_ns, new_ns, why_not);
}

static void apply_reload(struct consumer *c)
{
	char old_output[sizeof(c->cfg.output)], old_ns[sizeof(c->cfg.journal_namespace)];
	char new_output[sizeof(old_output)], new_ns[sizeof(old_ns)], why[sizeof(old_output) + 64];
	struct output next;

	memcpy(old_output, c->cfg.output, sizeof(old_output));
	memcpy(old_ns, c->cfg.journal_namespace, sizeof(old_ns));
	if (cli_reload_config(c->cli, &c->cfg, output_keys) <= 0)
		return;
	mmapq_set_sync(c->q, c->cfg.sync);
	mmapq_set_spin(c->q, c->cfg.spin_us);
	set_ident(c);
	c->next_stats_ns = mmapq_now_ns();
	if (!strcmp(old_output, c->cfg.output) &&
	    (c->out.kind != OUT_JOURNAL || !strcmp(old_ns, c->cfg.journal_namespace))) {
		/* the output stays; a namespace is kept for a later journal */
		log_output_keys(old_output, old_ns, c->cfg.output, c->cfg.journal_namespace, NULL);
		return;
	}
	/* between batches: nothing is buffered (but what NATS holds) */
	if (open_output(c, c->cfg.output, &next) != 0) {
		/* open_output said why; the running values come back (c->out.name
		 * points into c->cfg.output: valid again) */
		memcpy(new_output, c->cfg.output, sizeof(new_output));
		memcpy(new_ns, c->cfg.journal_namespace, sizeof(new_ns));
		memcpy(c->cfg.output, old_output, sizeof(old_output));
		memcpy(c->cfg.journal_namespace, old_ns, sizeof(old_ns));
		snprintf(why, sizeof(why), "the new output cannot be opened; keeping output %s",
		         c->out.name);
		log_output_keys(old_output, old_ns, new_output, new_ns, why);
		return;
	}
	log_output_keys(old_output, old_ns, c->cfg.output, c->cfg.journal_namespace, NULL);
	if (c->out.kind == OUT_NATS)
		nats_drain(c);
	close_output(&c->out);
	c->out = next;
}

/* Release what reached the output; say why we stop with the rest kept. */
static int release(struct consumer *c, uint32_t n)
{
	int r = mmapq_release(c->q, n);

	if (r == -EINTR) {
		log_notice("stopping: %u records written but not acknowledged (the queue's mutex is held"
		           " by a process that does not release it); they will be written again", n);
		return -EINTR;
	}
	if (r < 0) {
		log_error("%s: %s", mmapq_path(c->q), mmapq_strerror(r));
		return r;
	}
	c->consumed += n;
	return 0;
}

/*
 * NATS: the n available records handed to the broker (those not yet in
 * flight), and the ones it acknowledged, in order, released.  0, or
 * -errno (said).
 */
static int forward_nats(struct consumer *c, uint32_t n)
{
	uint32_t acked = 0;
	int r = nats_out_forward(c->out.nats, c->q, n, &acked);

	if (acked) {
		int rr;

		mmapq_fault("nats.acked"); /* acknowledged, not yet released */
		rr = release(c, acked);
		if (rr < 0)
			return rr;
		nats_out_released(c->out.nats, acked);
	}
	return r;
}

/*
 * Up to n available records, at most BATCH_BYTES of output: formatted,
 * written out, released.  0 to go on; -EINTR if asked to stop (what is
 * not released stays in the queue and is written again); -errno (said).
 */
static int consume_batch(struct consumer *c, uint32_t n)
{
	uint32_t i = 0;
	int r = 0;

	if (c->out.kind == OUT_NATS)
		return forward_nats(c, n);
	while (c->out.kind != OUT_JOURNAL && i < n && c->len < BATCH_BYTES) {
		r = fill_buffer(c, i, n - i);
		if (r < 0)
			break;
		i += (uint32_t)r;
		r = 0;
	}
	for (; c->out.kind == OUT_JOURNAL && i < n; i++) {
		struct mmapq_record rec;

		r = mmapq_get(c->q, i, &rec);
		if (r == 0)
			r = journal_record(c, &rec);
		if (r < 0)
			break;
		/* each entry is delivered as it goes: ping as it progresses,
		 * and on a stop keep what journald already has */
		service_loop_tick();
		if (cli_stop && i + 1 < n) {
			i++;
			r = -EINTR;
			break;
		}
	}
	if (r == -EINTR && c->out.kind == OUT_JOURNAL) {
		r = release(c, i);
		if (r == 0)
			log_notice("stopping: %u records delivered to the journal and released, the"
			           " rest stays in the queue", i);
		return r ? r : -EINTR;
	}
	if (r < 0 && r != -EINTR) {
		log_error("%s: record %u of the batch: %s", c->out.kind == OUT_JOURNAL ? "journal" :
		          mmapq_path(c->q), i, r == -EBADMSG ? mmapq_strerror(r) : strerror(-r));
		if (c->out.kind == OUT_JOURNAL && r != -EBADMSG) {
			/* the records before it did reach journald */
			int rr = release(c, i);
			if (rr < 0)
				return rr == -EINTR ? -EIO : rr;
			log_error("journal: %u records delivered and released, the rest stays in"
			          " the queue", i);
		}
		return r == -EBADMSG ? r : -EIO;
	}
	if (r == 0)
		r = flush_output(c);
	if (r == -EINTR) {
		log_notice("stopping while writing: %u records not acknowledged, they will be"
		           " written again by the next consumer", i);
		return -EINTR;
	}
	if (r < 0) {
		log_error("%s: write: %s (%u records not acknowledged, kept in the queue)",
		          c->out.name, strerror(-r), i);
		return r;
	}
	return release(c, i);
}

/* 0 after count records or on a stop; -errno of what ended it otherwise. */
static int run(struct consumer *c, uint64_t count)
{
	for (;;) {
		uint32_t n;
		uint64_t deadline;
		int r;

		mmapq_fault("consumer.loop");
		service_loop_tick();
		if (cli_reload)
			apply_reload(c);
		if (cli_stop) {
			if (c->out.kind == OUT_NATS)
				nats_drain(c);
			return 0;
		}
		stats(c, 0);
		if (c->corrupt)
			return -EBADMSG;
		deadline = mmapq_now_ns() + service_max_wait_ns();
		if (c->cfg.stats_interval && c->next_stats_ns < deadline)
			deadline = c->next_stats_ns;
		if (c->out.kind == OUT_NATS && nats_out_busy(c->out.nats)) {
			/* records in flight, or a broker that cannot take any now:
			 * wait for it, then take what the queue has without waiting */
			nats_out_wait(c->out.nats, deadline);
			r = mmapq_available(c->q, 0, &n);
			if (r == -EAGAIN) {
				n = 0;
				r = 0;
			}
		} else {
			r = mmapq_available(c->q, c->stale ? 0 : deadline, &n);
		}
		if (r == -EAGAIN && c->stale) {
			/* The file is gone from its path, but a producer still
			 * attached to it may publish until it notices: stop only
			 * once it is gone and the last look finds nothing. */
			struct mmapq_status st;
			bool producer = mmapq_status(c->q, &st) == 0 && st.producer.attached;
			r = mmapq_available(c->q, producer ? deadline : 0, &n);
			if (r == -EAGAIN && !producer)
				return -ESTALE;
		}
		if (r == -ETIMEDOUT || r == -EINTR)
			continue;
		if (r < 0) {
			log_error("%s: %s", mmapq_path(c->q), mmapq_strerror(r));
			return r;
		}
		if (count && n > count - c->consumed)
			n = (uint32_t)(count - c->consumed);
		r = consume_batch(c, n);
		if (r == -EREMOTEIO && c->out.kind == OUT_NATS)
			nats_drain(c); /* refused for good: what the stream has is not published again */
		if (r < 0)
			return r == -EINTR ? 0 : r;
		if (count && c->consumed >= count)
			return 0;
	}
}

/* Exit code for open_output's -errno. */
static int output_exit_code(int r)
{
	switch (-r) {
	case EINVAL:
		return EXIT_CONFIG;     /* an output this build does not have */
	case EIO:
	case EBADF:
	case ENOMEM:
		return EXIT_IOERR;      /* journald, a closed stdout, the file's tail */
	case EREMOTEIO:
		return EXIT_PROTOCOL;   /* the NATS server refuses for good */
	default:
		return EXIT_CANTCREATE; /* the file: directory, permission, symlink, ... */
	}
}

CLI_DEFINE_BUILD;

int main(int argc, char **argv)
{
	struct consumer c = {.out = {.fd = -1}};
	struct cli cl;
	int r, code;

	/* 1. standard descriptors, options and configuration */
	if (!cli_daemon_start(&cl, argc, argv, "consumer", true, &c.cfg, &c.closed_std, &code))
		return code;
	c.cli = &cl;

	/* 2. signals (not blocked: SIGTERM interrupts a wait at once) */
	cli_signals();

	/* 3. the queue (the role), then the output */
	code = cli_attach(&c.cfg, MMAPQ_ROLE_CONSUMER, NULL, &c.q);
	if (code || !c.q)
		return code;
	/* + one record, its line end, MESSAGE= or its sequence number and a tab */
	c.cap = BATCH_BYTES + c.cfg.record_size + 32 + MMAPQ_FMT_INT_MAX;
	set_ident(&c);
	c.buf = malloc(c.cap);
	r = c.buf ? open_output(&c, c.cfg.output, &c.out) : -ENOMEM;
	if (r < 0) {
		code = output_exit_code(r);
		service_failed(code, "cannot open the output");
		goto out;
	}

	/* 4. ready */
	log_debug("attached to %s as consumer '%s', output %s", c.cfg.queue_path, c.cfg.consumer,
	          c.out.name);
	c.next_stats_ns = mmapq_now_ns() + (uint64_t)c.cfg.stats_interval * 1000000000u;
	service_ready("running");
	code = cli_exit_code_for_run(run(&c, cl.count));

	/* shutdown, in reverse */
	service_stopping();
	stats(&c, 1);
out:
	close_output(&c.out);
	free(c.buf);
	mmapq_close(c.q);
	return code;
}
