/* SPDX-License-Identifier: MIT */
/*
 * mmapq-producer -- reads records and publishes them into the queue.
 *
 * Inputs ([producer] input): stdin; socket (clients connect to a Unix
 * stream socket, several at once; under systemd the socket comes from
 * mmapq-producer.socket via sd_listen_fds); generate (a counter whose values
 * are the records' own sequence numbers).
 *
 * Start-up, in this order: standard descriptors, options, config, signals,
 * queue (create or attach, validate, take the producer role), input,
 * READY=1.  Shutdown in reverse: STOPPING=1, complete the record stdin was
 * in the middle of (bounded), publish everything read, tell clients what
 * was published, close the input, the queue (munmap, locks dropped).
 *
 * Nothing read is ever left unpublished: in block mode a read takes at most
 * the bytes that complete as many records as there are free slots.  Where
 * the input lets us look before reading (a socket's MSG_PEEK, a pipe's
 * tee(), a regular file's lseek back) the read ends right after the last
 * record that fits, however large the records are; elsewhere (a terminal)
 * it takes at most the bytes that cannot complete more (blind_bound).  Only
 * near a full queue does this cost anything: with room for a whole chunk a
 * read is a plain read().  Everything read in one loop iteration is
 * published before the next wait.
 *
 * A stop never splits a record: stdin in the middle of one is read on,
 * record-exactly, until it ends (at most STOP_FINISH_NS), so the next
 * reader of the same pipe starts at a record boundary; a regular file is
 * rewound to the start of the unfinished record instead.
 *
 * Socket protocol (text, one line per message, producer to client; see
 * mmapq-producer(8)): for each rejected record "ERR LINE:COL: what:
 * 'excerpt'"; after the client shuts down its sending side and all its
 * records are published, "OK published=N dropped=D rejected=R last_seq=S"
 * (S is "-" if N is 0); if the producer stops first, "FAIL stopping
 * published=N ..."; a client that completed no record for [producer]
 * client_timeout, or closed to make room, "FAIL idle published=N ...".
 * Every rejected record gets its ERR line: while a client's unread replies
 * exceed OUT_MAX we stop reading its records (so a client must read
 * replies while it sends); a client that can no longer read (it hung up)
 * has its replies dropped instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "cli.h"
#include "fault.h"
#include "log.h"
#include "mmapq.h"
#include "parse.h"
#include "service.h"

#define READ_CHUNK      (64u * 1024u)
#define MAX_CLIENTS     64
#define MAX_LISTEN      8
#define OUT_MAX         (256u * 1024u) /* a client's unread replies before we stop reading it */
#define REPLY_LINE_MAX  256u          /* a reply line's bytes, at most (reply()) */
#define EVICT_MIN_NS    1000000000u   /* connected this long: may be closed to make room */
#define STOP_FINISH_NS  2000000000u   /* a stop waits this long for the rest of a started record */
#define BACKOFF_MIN_NS  100000000u    /* accept() failing (EMFILE...): pause, doubling, */
#define BACKOFF_MAX_NS  1000000000u   /* up to this */

enum input_kind { IN_STDIN, IN_SOCKET, IN_GENERATE };

/* How we can look at an input before taking bytes from it. */
enum src_kind {
	SRC_FILE,   /* regular file: read, then lseek back what is not taken */
	SRC_PIPE,   /* pipe or FIFO: tee() into a private pipe, then read */
	SRC_SOCKET, /* stream socket: recv(MSG_PEEK) */
	SRC_OTHER,  /* terminal, device: bounded reads only */
};

struct producer;

/* Where records come from: stdin or one client connection. */
struct source {
	struct producer *p;
	int fd;
	enum src_kind kind;
	int tee[2];      /* SRC_PIPE: the private pipe tee() copies into; -1 until used */
	char name[48];
	struct mmapq_parser *parser;
	uint64_t partial;   /* bytes of an unfinished record at the end of what was parsed */
	uint64_t since_ns;  /* when it connected */
	uint64_t progress_ns; /* last time it completed a record, finished, or waited for
	                         room in the queue (client_timeout; eviction) */
	uint64_t published, dropped, rejected, last_seq;
	uint64_t pending;   /* of published: put, but not yet published (mmapq_pending) */
	uint64_t ack_published, ack_dropped, ack_rejected; /* what the last ACK line said */
	uint64_t next_ack_ns; /* no ACK line before this ([producer] ack_interval) */
	bool eof;        /* nothing more to read; parser not finished yet */
	bool finished;   /* parser finished: ack once published */
	bool acked;
	bool gone;       /* a client whose connection failed: closed at the next ack_sources */
	char *out;       /* replies not yet sent */
	size_t out_len, out_cap;
};

struct producer {
	struct mmapq *q;
	struct mmapq_config cfg;
	struct cli *cli;
	unsigned closed_std;       /* standard descriptors closed at start (cli_start) */
	enum input_kind input;
	uint32_t nfree;            /* slots reserved and not yet filled */
	int error;                 /* the first fatal error (-errno; 0: none), from a callback too */
	struct log_limit bad_limit, drop_limit, accept_limit, gone_limit;
	int listen_fd[MAX_LISTEN];
	unsigned n_listen;
	bool own_socket;           /* we created cfg.socket_path ourselves */
	uint64_t accept_resume_ns; /* not accepting before this (fds exhausted, all places busy) */
	uint64_t accept_backoff_ns;
	uint64_t n_accepted;       /* clients accepted so far: their names */
	struct source *src[MAX_CLIENTS + 1];
	unsigned n_src;
	uint64_t gen_start_ns, gen_done;
	uint64_t next_stats_ns, last_stats_tail, next_status_ns;
	struct rate_meter status_rate;
	char *buf;
};

static bool blocking(const struct producer *p)
{
	return p->cfg.on_full == MMAPQ_ON_FULL_BLOCK;
}

/* Queue a reply line.  Every line is kept (each rejected record is
 * reported): the buffer is bounded by no longer reading a client whose
 * unread replies exceed OUT_MAX, and by parsing what it sent in pieces
 * that cannot add more than OUT_MAX (read_client). */
static void reply(struct source *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct source *s, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	if (s->fd < 0 || s->fd == STDIN_FILENO)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	if (s->out_cap - s->out_len < (size_t)n) {
		size_t cap = s->out_cap ? 2 * s->out_cap : 4096;
		char *o;
		while (cap - s->out_len < (size_t)n)
			cap *= 2;
		o = realloc(s->out, cap);
		if (!o)
			return;
		s->out = o;
		s->out_cap = cap;
	}
	memcpy(s->out + s->out_len, line, (size_t)n);
	s->out_len += (size_t)n;
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
			return;
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

/* The final line: what of this client's records was published. */
static void reply_final(struct source *s, const char *verdict)
{
	if (s->published)
		reply(s, "%s published=%" PRIu64 " dropped=%" PRIu64 " rejected=%" PRIu64
		      " last_seq=%" PRIu64 "\n", verdict, s->published, s->dropped, s->rejected,
		      s->last_seq);
	else
		reply(s, "%s published=0 dropped=%" PRIu64 " rejected=%" PRIu64 " last_seq=-\n",
		      verdict, s->dropped, s->rejected);
	s->acked = true;
}

static int refill(struct producer *p, uint64_t deadline)
{
	int r = mmapq_reserve(p->q, deadline, &p->nfree);
	if (r == -EAGAIN || r == -ETIMEDOUT || r == -EINTR) {
		p->nfree = 0;
		return 0;
	}
	return r;
}

/* A queue error that ends the run: said once, kept for main's exit code. */
static int fatal(struct producer *p, int r)
{
	log_error("%s: %s", mmapq_path(p->q), mmapq_strerror(r));
	if (!p->error)
		p->error = r;
	return r;
}

static int put(struct producer *p, struct source *s, const void *data, uint32_t len)
{
	int r;

	if (!p->nfree && !blocking(p)) {
		r = refill(p, 0);
		if (r < 0)
			return fatal(p, r);
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
		return fatal(p, r);
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
 * at a time through put(), which looks for room again and drops it if
 * there is still none, exactly as before.
 */
static int put_ints(struct producer *p, struct source *s, const int64_t *v, size_t n)
{
	while (n) {
		uint64_t first = mmapq_next_seq(p->q);
		int r;

		if (!p->nfree) {
			r = put(p, s, v, sizeof(*v));
			if (r < 0)
				return r;
			v++;
			n--;
			continue;
		}
		r = mmapq_put_many(p->q, v, sizeof(*v), n < p->nfree ? (uint32_t)n : p->nfree);
		if (r < 0)
			return fatal(p, r);
		p->nfree -= (uint32_t)r;
		s->published += (uint64_t)r;
		s->pending += (uint64_t)r;
		s->last_seq = first + (uint64_t)r - 1;
		v += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Nothing is pending any more: every source's records are published. */
static void published(struct producer *p)
{
	if (mmapq_pending(p->q))
		return;
	for (unsigned i = 0; i < p->n_src; i++)
		p->src[i]->pending = 0;
}

static int on_record(void *ctx, const void *data, uint32_t len)
{
	struct source *s = ctx;
	return put(s->p, s, data, len);
}

static int on_ints(void *ctx, const int64_t *v, size_t n)
{
	struct source *s = ctx;
	return put_ints(s->p, s, v, n);
}

static void on_parse_error(void *ctx, const struct mmapq_parse_error *e)
{
	struct source *s = ctx;

	s->rejected++;
	mmapq_count_bad_input(s->p->q, 1);
	if (log_limit_pass(&s->p->bad_limit))
		log_error("%s:%" PRIu64 ":%" PRIu64 ": %s: '%s' (skipped)", s->name, e->line, e->column,
		          e->what, e->excerpt);
	reply(s, "ERR %" PRIu64 ":%" PRIu64 ": %s: '%s'\n", e->line, e->column, e->what, e->excerpt);
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

static struct source *source_new(struct producer *p, int fd, const char *name)
{
	struct source *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->p = p;
	s->fd = fd;
	s->kind = src_kind_of(fd);
	s->tee[0] = s->tee[1] = -1;
	s->since_ns = s->progress_ns = mmapq_now_ns();
	snprintf(s->name, sizeof(s->name), "%s", name);
	if (mmapq_parser_new(p->cfg.format, p->cfg.record_size, on_record, on_parse_error, s,
	                     &s->parser) < 0) {
		free(s);
		return NULL;
	}
	/* int records in batches of up to MMAPQ_PARSE_BATCH: put_ints */
	if (p->cfg.format == MMAPQ_FORMAT_INT)
		(void)mmapq_parser_set_int_batch(s->parser, on_ints);
	return s;
}

static void source_free(struct source *s)
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

/* ---- reading whole records ------------------------------------------------ */

/* Where a record can end: whitespace (int, C-locale isspace) or '\n' (line). */
static bool is_boundary(const struct producer *p, unsigned char ch)
{
	if (p->cfg.format == MMAPQ_FORMAT_LINE)
		return ch == '\n';
	return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

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
 * Length of the longest prefix of buf[0..n) that completes at most max
 * records, given s->partial bytes of an unfinished one before it.  A bad
 * token or line counts as a record here: the bound is only ever too small.
 * Lines: memchr from '\n' to '\n'.  Ints: 8 bytes at a time, the token
 * ends of a word (a whitespace byte after a non-whitespace one) counted
 * with one multiplication; the word where the max-th one lies is gone
 * through byte by byte as before.
 */
static size_t cut_records(const struct producer *p, const struct source *s, const char *buf,
                          size_t n, uint32_t max)
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
		if (!is_boundary(p, (unsigned char)buf[i])) {
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
		cut = cut_records(p, s, buf, (size_t)k, max);
		if (cut < (size_t)k && lseek(s->fd, (off_t)cut - (off_t)k, SEEK_CUR) < 0)
			return -errno; /* taken and cannot be put back: fail rather than lose it */
		return (ssize_t)cut;
	case SRC_SOCKET:
		k = recv(s->fd, buf, want, MSG_PEEK | MSG_DONTWAIT);
		if (k <= 0)
			return k < 0 ? -errno : 0;
		cut = cut_records(p, s, buf, (size_t)k, max);
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
		cut = cut_records(p, s, buf, (size_t)k, max);
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

/* Parse bytes just read; keeps s->partial up to date. */
static int feed(struct producer *p, struct source *s, const char *data, size_t n)
{
	size_t k = n;

	while (k && !is_boundary(p, (unsigned char)data[k - 1]))
		k--;
	s->partial = k ? n - k : s->partial + n;
	return mmapq_parser_feed(s->parser, data, n);
}

/* At end of input, told without taking a byte (the queue is full and may
 * stay so).  Only for inputs that can look ahead; false for the others. */
static bool input_ended(const struct source *s)
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

/* ---- input set-up --------------------------------------------------------- */

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

/* 0, or -errno (said): -ENAMETOOLONG for a socket path too long, -ENOTSOCK
 * for a passed descriptor that is not a listening socket, -EBADF for a
 * closed stdin, what socket(), bind() or listen() said. */
static int setup_input(struct producer *p)
{
	int n = sd_listen_fds(1);

	if (n > 0 && !strcmp(p->cfg.input, "generate")) {
		/* the configuration asks for a generator: the socket stays with
		 * systemd (connections wait in its backlog) */
		log_notice("input = generate: not serving the %d socket(s) passed by systemd", n);
		n = 0;
	}
	if (n > 0) {
		/* socket activation overrides [producer] input */
		p->input = IN_SOCKET;
		for (int i = 0; i < n && p->n_listen < MAX_LISTEN; i++) {
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
	if (!strcmp(p->cfg.input, "stdin")) {
		if (CLI_CLOSED(p->closed_std, STDIN_FILENO)) {
			log_error("input = stdin: standard input was closed when the producer started");
			return -EBADF;
		}
		p->input = IN_STDIN;
		p->src[0] = source_new(p, STDIN_FILENO, "stdin");
		if (!p->src[0]) {
			log_error("out of memory");
			return -ENOMEM;
		}
		p->n_src = 1;
		return 0;
	}
	if (!strcmp(p->cfg.input, "generate")) {
		p->input = IN_GENERATE;
		p->gen_start_ns = mmapq_now_ns();
		return 0;
	}
	p->input = IN_SOCKET;
	return listen_socket(p);
}

/* Close a client now, telling it why and what of its records was published. */
static void drop_client(struct producer *p, unsigned i, const char *verdict)
{
	struct source *s = p->src[i];

	if (!s->acked)
		reply_final(s, verdict);
	flush_replies(s); /* what the socket takes now; the rest is lost with it */
	log_info("%s: closed (%s): %" PRIu64 " published, %" PRIu64 " rejected, %" PRIu64 " dropped",
	         s->name, verdict, s->published, s->rejected, s->dropped);
	source_free(s);
	p->src[i] = p->src[--p->n_src];
}

/*
 * The least useful client: of those connected for at least min_age_ns,
 * the one whose last completed record lies furthest back (a client that
 * trickles bytes completes none); -1 if none.  With idle_ns, only one that
 * completed none for that long.
 */
static int least_useful_client(const struct producer *p, uint64_t now, uint64_t min_age_ns,
                               uint64_t idle_ns)
{
	int best = -1;

	for (unsigned i = 0; i < p->n_src; i++) {
		const struct source *s = p->src[i];
		if (s->fd == STDIN_FILENO || s->gone || now - s->since_ns < min_age_ns ||
		    now - s->progress_ns < idle_ns)
			continue;
		if (best < 0 || s->progress_ns < p->src[best]->progress_ns)
			best = (int)i;
	}
	return best;
}

/* [producer] client_timeout: a record deadline.  A client that completed
 * no record for that long is closed, however many bytes it sends or reads:
 * a byte at a time keeps no place. */
static void expire_clients(struct producer *p)
{
	uint64_t now = mmapq_now_ns(), limit = (uint64_t)p->cfg.client_timeout * 1000000000u;
	int i;

	while (limit && (i = least_useful_client(p, now, 0, limit)) >= 0)
		drop_client(p, (unsigned)i, "FAIL idle");
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
		uint64_t now = mmapq_now_ns();
		struct ucred cred;
		socklen_t cred_len = sizeof(cred);
		char name[sizeof(((struct source *)NULL)->name)];
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
			drop_client(p, (unsigned)i, "FAIL idle");
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
				drop_client(p, (unsigned)i, "FAIL idle");
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
		p->n_accepted++;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) == 0 && cred.pid > 0)
			snprintf(name, sizeof(name), "client%" PRIu64 "[%d]", p->n_accepted,
			         (int)cred.pid);
		else
			snprintf(name, sizeof(name), "client%" PRIu64, p->n_accepted);
		struct source *s = source_new(p, fd, name);
		if (!s) {
			log_error("out of memory: refusing a client");
			close(fd);
			return;
		}
		p->src[p->n_src++] = s;
		log_debug("%s connected", name);
	}
}

/* ---- the loop ------------------------------------------------------------- */

static void stats(struct producer *p, int force)
{
	struct mmapq_status st;
	uint64_t now = mmapq_now_ns();

	log_limit_flush(&p->bad_limit, 0);
	log_limit_flush(&p->drop_limit, 0);
	log_limit_flush(&p->accept_limit, 0);
	log_limit_flush(&p->gone_limit, 0);
	if (!force && now < p->next_status_ns && now < p->next_stats_ns)
		return;
	if (mmapq_status(p->q, &st) < 0)
		return;
	if (now >= p->next_status_ns && !p->error) {
		/* Deleted or replaced: what we published stays in the old file,
		 * where a consumer still attached to it drains it; new input
		 * would be stranded.  Overwritten: nothing can be trusted. */
		int r = mmapq_check(p->q);
		if (r == -ESTALE || r == -EBADMSG) {
			log_error("%s: %s; stopping", mmapq_path(p->q),
			          r == -ESTALE ? mmapq_strerror(r) : "the header was overwritten while in use");
			p->error = r;
		}
	}
	if (now >= p->next_status_ns || force) {
		char rate[32];
		service_status("published %" PRIu64 ", depth %" PRIu64 "/%" PRIu32 ", %s, dropped %" PRIu64
		               ", bad input %" PRIu64, st.tail, st.tail - st.head, st.capacity,
		               rate_meter_update(&p->status_rate, st.tail, rate, sizeof(rate)),
		               st.producer.dropped, st.producer.bad_input);
		p->next_status_ns = now + 1000000000u;
	}
	if (p->cfg.stats_interval && (now >= p->next_stats_ns || force)) {
		log_info("published %" PRIu64 ", depth %" PRIu64 "/%" PRIu32 ", %.1f rec/s, dropped %" PRIu64
		         ", bad input %" PRIu64, st.tail, st.tail - st.head, st.capacity,
		         (double)(st.tail - p->last_stats_tail) / p->cfg.stats_interval,
		         st.producer.dropped, st.producer.bad_input);
		p->last_stats_tail = st.tail;
	}
	if (now >= p->next_stats_ns)
		p->next_stats_ns = now + (uint64_t)(p->cfg.stats_interval ? p->cfg.stats_interval : 3600) *
		                         1000000000u;
}

/* Records due from the generator now (rate 0: as many as fit). */
static int generate(struct producer *p)
{
	uint64_t due;

	if (p->cfg.generate_rate) {
		uint64_t elapsed = mmapq_now_ns() - p->gen_start_ns;
		due = (uint64_t)((double)elapsed * p->cfg.generate_rate / 1e9) - p->gen_done;
	} else {
		due = p->nfree ? p->nfree : 1;
	}
	if (blocking(p) && due > p->nfree)
		due = p->nfree;
	for (uint64_t i = 0; i < due; i++) {
		int64_t v = (int64_t)mmapq_next_seq(p->q);
		char text[24];
		int r;

		if (p->cfg.format == MMAPQ_FORMAT_INT) {
			r = put(p, NULL, &v, sizeof(v));
		} else {
			int n = snprintf(text, sizeof(text), "%" PRId64, v);
			r = put(p, NULL, text, (uint32_t)n);
		}
		if (r < 0)
			return r;
		p->gen_done++;
	}
	return 0;
}

/* ns until the generator owes its next record */
static uint64_t generate_wait(const struct producer *p)
{
	uint64_t next_ns, now = mmapq_now_ns();

	if (!p->cfg.generate_rate)
		return 0;
	next_ns = p->gen_start_ns + (uint64_t)((double)(p->gen_done + 1) * 1e9 / p->cfg.generate_rate);
	return next_ns > now ? next_ns - now : 0;
}

/* A client's records completed so far, whatever became of them. */
static uint64_t completed(const struct source *s)
{
	return s->published + s->rejected + s->dropped;
}

/* The client's connection failed (reset, an error): it can take no reply
 * and its unread bytes are lost with it; what it sent before is published
 * as usual.  Closed by ack_sources, outside the loops over the clients. */
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
 * A socket client: look at what it sent (at most the records that fit in
 * max free slots), parse it in pieces while its unread replies stay under
 * OUT_MAX, then take from the socket exactly the bytes parsed.  A piece of
 * k bytes holds at most k records, each with at most one reply line of
 * REPLY_LINE_MAX bytes, so the replies never exceed 2 * OUT_MAX plus the
 * ACK and final lines, however many bad records a chunk holds.  0 at its
 * end of input, -EAGAIN if nothing is there (or it may not be read now).
 */
static ssize_t read_client(struct producer *p, struct source *s, uint32_t max)
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
	n = max == UINT32_MAX ? (size_t)k : cut_records(p, s, p->buf, (size_t)k, max);
	while (fed < n && s->out_len < OUT_MAX && r >= 0) {
		size_t piece = (OUT_MAX - s->out_len) / REPLY_LINE_MAX + 1;
		if (piece > n - fed)
			piece = n - fed;
		r = feed(p, s, p->buf + fed, piece);
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
		s->progress_ns = mmapq_now_ns();
	return r < 0 ? r : (ssize_t)fed;
}

/* Read what is there (at most what fits) and parse it. */
static int read_source(struct producer *p, struct source *s)
{
	uint32_t max = blocking(p) ? p->nfree : UINT32_MAX;
	ssize_t n;

	if (!max || s->gone)
		return 0;
	if (s->fd != STDIN_FILENO) {
		n = read_client(p, s, max);
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
	return feed(p, s, p->buf, (size_t)n);
}

/*
 * Stopping while stdin is in the middle of a record: a pipe's next reader
 * would take the rest as a record of its own.  Read on, record-exactly,
 * until that record ends (STOP_FINISH_NS at most); a regular file is
 * rewound to its start instead.  Block mode has a slot for it: a read never
 * leaves a record unfinished once it filled the last free slot.
 */
static void finish_record_on_stop(struct producer *p, struct source *s)
{
	uint64_t deadline = mmapq_now_ns() + STOP_FINISH_NS;

	if (s->eof || s->finished || !s->partial)
		return;
	if (s->kind == SRC_FILE && lseek(s->fd, -(off_t)s->partial, SEEK_CUR) >= 0) {
		log_notice("stopping: the %" PRIu64 " bytes of an unfinished record stay unread in %s",
		           s->partial, s->name);
		return;
	}
	while (s->partial && !s->eof && !p->error) {
		uint64_t now = mmapq_now_ns();
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
		if (feed(p, s, p->buf, (size_t)n) < 0)
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
static bool stdin_ended(struct producer *p)
{
	struct source *s = p->n_src ? p->src[0] : NULL;

	if (p->input != IN_STDIN || !s || s->partial)
		return false;
	if (!s->eof && input_ended(s))
		s->eof = true;
	return s->eof;
}

static void finish_sources(struct producer *p)
{
	for (unsigned i = 0; i < p->n_src; i++) {
		struct source *s = p->src[i];
		/* an unfinished final record needs a slot; a connection that
		 * failed has no final record, only a cut one */
		if (!s->eof || s->finished || s->gone || (blocking(p) && !p->nfree && s->partial))
			continue;
		if (mmapq_parser_finish(s->parser) < 0 && p->error)
			return;
		s->finished = true;
		s->progress_ns = mmapq_now_ns(); /* from now on it only reads its replies */
	}
}

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
 * final OK line.
 */
static void stream_ack(struct producer *p, struct source *s, uint64_t now)
{
	bool due = (p->cfg.ack_interval && now >= s->next_ack_ns) ||
	           (p->cfg.ack_records && s->published - s->ack_published >= p->cfg.ack_records);

	if (!ack_owed(s) || !due)
		return;
	if (s->published)
		reply(s, "ACK published=%" PRIu64 " dropped=%" PRIu64 " rejected=%" PRIu64
		      " last_seq=%" PRIu64 "\n", s->published, s->dropped, s->rejected, s->last_seq);
	else
		reply(s, "ACK published=0 dropped=%" PRIu64 " rejected=%" PRIu64 " last_seq=-\n",
		      s->dropped, s->rejected);
	s->ack_published = s->published;
	s->ack_dropped = s->dropped;
	s->ack_rejected = s->rejected;
	s->next_ack_ns = now + (uint64_t)p->cfg.ack_interval * 1000000u;
}

/* How long the loop may wait before an ACK line falls due (UINT64_MAX: none). */
static uint64_t ack_wait(const struct producer *p, uint64_t now)
{
	uint64_t wait = UINT64_MAX;

	if (!p->cfg.ack_interval)
		return wait;
	for (unsigned i = 0; i < p->n_src; i++) {
		const struct source *s = p->src[i];
		uint64_t due;

		if (s->fd == STDIN_FILENO || !ack_owed(s))
			continue;
		due = s->next_ack_ns > now ? s->next_ack_ns - now : 0;
		if (due < wait)
			wait = due;
	}
	return wait;
}

/* After a publish: acknowledge finished clients, drop the ones done; tell
 * the others their progress (stream_ack). */
static void ack_sources(struct producer *p, const char *verdict)
{
	uint64_t now = mmapq_now_ns();

	for (unsigned i = 0; i < p->n_src; i++) {
		struct source *s = p->src[i];
		if (s->fd == STDIN_FILENO)
			continue;
		if (s->gone) {
			source_free(s);
			p->src[i--] = p->src[--p->n_src];
			continue;
		}
		if ((s->finished || verdict) && !s->acked)
			reply_final(s, verdict ? verdict : "OK");
		else if (!verdict)
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

/*
 * Full, about to wait for room: what the clients are owed does not wait.
 * Everything read is published; a client whose input ended at a record
 * boundary (it sent exactly as many records as there were free slots) gets
 * its OK now, and replies are sent as far as the clients take them.  While
 * we wait, no client is late: its record deadline counts from now.
 */
static int serve_clients_while_full(struct producer *p)
{
	uint64_t now = mmapq_now_ns();
	int r;

	if (p->input != IN_SOCKET)
		return 0;
	r = mmapq_publish(p->q);
	if (r < 0)
		return r;
	published(p);
	for (unsigned i = 0; i < p->n_src; i++) {
		struct source *s = p->src[i];
		if (!s->eof && !s->partial && input_ended(s))
			s->eof = true;
		s->progress_ns = now;
	}
	finish_sources(p);
	ack_sources(p, NULL);
	return p->error;
}

static int wait_events(struct producer *p, const sigset_t *unblocked, uint64_t max_ns)
{
	struct pollfd pf[MAX_LISTEN + MAX_CLIENTS + 1];
	unsigned n = 0;
	bool room = p->nfree || !blocking(p);
	uint64_t now = mmapq_now_ns();
	bool accepting = now >= p->accept_resume_ns;
	struct timespec ts;
	int r;

	if (!accepting && p->accept_resume_ns - now < max_ns)
		max_ns = p->accept_resume_ns - now;
	ts = (struct timespec){.tv_sec = (time_t)(max_ns / 1000000000u), .tv_nsec = (long)(max_ns % 1000000000u)};
	for (unsigned i = 0; i < p->n_listen; i++)
		pf[n++] = (struct pollfd){.fd = p->listen_fd[i], .events = accepting ? POLLIN : 0};
	for (unsigned i = 0; i < p->n_src; i++) {
		struct source *s = p->src[i];
		short ev = 0;
		/* a client with OUT_MAX of unread replies is not read until it
		 * reads them: every ERR line is kept */
		if (!s->eof && room && s->out_len < OUT_MAX)
			ev |= POLLIN;
		else if (!room)
			s->progress_ns = now; /* it waits for the queue, not we for it */
		if (s->out_len)
			ev |= POLLOUT;
		pf[n++] = (struct pollfd){.fd = s->fd, .events = ev};
	}
	if (cli_stop || cli_reload)
		return 0;
	r = ppoll(pf, n, &ts, unblocked);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0)
		return 0;
	/* ready at once (a regular file always is): ppoll let no signal in */
	cli_take_signals(unblocked);
	if (cli_stop || cli_reload)
		return 0;
	for (unsigned i = 0, j = p->n_listen; i < p->n_src && j < n; i++, j++) {
		struct source *s = p->src[i];
		if (pf[j].revents & POLLOUT)
			flush_replies(s);
		/* A client's socket hangs up when the client can neither send
		 * nor read any more, and errs when it closed with replies
		 * unread: its replies can never be delivered.  Drop them, so
		 * that what it sent before is read (and published). */
		if (s->fd != STDIN_FILENO && (pf[j].revents & (POLLHUP | POLLERR)))
			s->out_len = 0;
		if (pf[j].revents & (POLLIN | POLLHUP | POLLERR)) {
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

static void apply_reload(struct producer *p)
{
	enum mmapq_on_full old_on_full = p->cfg.on_full;

	if (cli_reload_config(p->cli, &p->cfg, NULL) <= 0)
		return;
	mmapq_set_sync(p->q, p->cfg.sync);
	mmapq_set_spin(p->q, p->cfg.spin_us);
	if (p->cfg.generate_rate && old_on_full == p->cfg.on_full) {
		/* a new rate counts from now */
		p->gen_start_ns = mmapq_now_ns();
		p->gen_done = 0;
	}
	p->next_stats_ns = mmapq_now_ns();
}

/* 0 at the end of input or on a stop; -errno of what ended it otherwise. */
static int run(struct producer *p, const sigset_t *unblocked)
{
	int r;

	for (;;) {
		uint64_t wait_ns;

		mmapq_fault("producer.loop");
		service_loop_tick();
		if (cli_reload)
			apply_reload(p);
		if (cli_stop)
			return 0;
		stats(p, 0);
		expire_clients(p);
		if (p->error)
			return p->error;
		if (!p->nfree && blocking(p) && stdin_ended(p)) {
			/* full, and nothing more will come: everything read is
			 * published (the queue stays full for the consumer) */
			finish_sources(p);
			return p->error;
		}
		if (!p->nfree) {
			/* unblocked while waiting for room: a signal interrupts
			 * the wait at once (-EINTR), or at worst its 0.5 s slice;
			 * a slice that ends looks at stdin's end again above */
			sigset_t blocked;

			if (blocking(p)) {
				r = serve_clients_while_full(p);
				if (r < 0)
					return p->error ? p->error : fatal(p, r);
			}
			sigprocmask(SIG_SETMASK, unblocked, &blocked);
			r = refill(p, blocking(p) ? mmapq_now_ns() + service_max_wait_ns() : 0);
			sigprocmask(SIG_SETMASK, &blocked, NULL);
			if (r < 0)
				return fatal(p, r);
			if (blocking(p) && !p->nfree)
				continue;
		}
		finish_sources(p);
		if (p->error)
			return p->error;
		wait_ns = service_max_wait_ns();
		{
			uint64_t a = ack_wait(p, mmapq_now_ns());
			if (a < wait_ns)
				wait_ns = a;
		}
		if (p->input == IN_GENERATE) {
			r = generate(p);
			if (r < 0)
				return p->error ? p->error : r;
			uint64_t g = generate_wait(p);
			if (g < wait_ns)
				wait_ns = g;
		}
		if (p->input != IN_GENERATE || wait_ns) {
			r = wait_events(p, unblocked, wait_ns);
			if (r < 0)
				return p->error ? p->error : r;
		}
		finish_sources(p);
		if (p->error)
			return p->error;
		r = mmapq_publish(p->q);
		if (r >= 0)
			r = refill(p, 0); /* publishing saw the consumer's progress */
		if (r == -EINTR && cli_stop)
			return 0; /* the mutex is not to be had: see the shutdown */
		if (r < 0)
			return fatal(p, r);
		published(p);
		ack_sources(p, NULL);
		if (p->input == IN_STDIN && p->n_src && p->src[0]->finished)
			return 0; /* end of input, everything published */
	}
}

/* Exit code for setup_input's -errno. */
static int input_exit_code(int r)
{
	switch (-r) {
	case ENAMETOOLONG:
		return EXIT_CONFIG;   /* [producer] socket */
	case ENOTSOCK:
		return EXIT_USAGE;    /* what systemd passed is not our socket */
	case EBADF:
	case ENOMEM:
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
		return EXIT_IOERR;
	default:
		return EXIT_CANTCREATE; /* the socket file: directory, permission, in use */
	}
}

CLI_DEFINE_BUILD;

int main(int argc, char **argv)
{
	struct producer p = {
		.bad_limit = LOG_LIMIT_INIT("bad input", 10, 20),
		.drop_limit = LOG_LIMIT_INIT("records dropped", 10, 1),
		.accept_limit = LOG_LIMIT_INIT("accept failures", 10, 1),
		.gone_limit = LOG_LIMIT_INIT("client connections failed", 10, 5),
	};
	struct cli c;
	sigset_t sigs, unblocked;
	int r, code;

	/* 1. standard descriptors, options and configuration */
	if (!cli_daemon_start(&c, argc, argv, "producer", false, &p.cfg, &p.closed_std, &code))
		return code;
	p.cli = &c;

	/* 2. signals: blocked except while waiting (ppoll, the queue's waits),
	 * so none is lost; not yet while attaching, where a stop must be able
	 * to interrupt the wait for the attach lock */
	cli_signals();
	cli_signal_set(&sigs);
	sigprocmask(SIG_SETMASK, NULL, &unblocked);

	/* 3. the queue */
	code = cli_attach(&p.cfg, MMAPQ_ROLE_PRODUCER, &unblocked, &p.q);
	if (code || !p.q)
		return code;
	sigprocmask(SIG_BLOCK, &sigs, NULL);

	/* 4. the input */
	p.buf = malloc(READ_CHUNK);
	r = p.buf ? setup_input(&p) : -ENOMEM;
	if (r < 0) {
		code = input_exit_code(r);
		service_failed(code, "cannot set up the input");
		goto out;
	}

	/* 5. ready */
	p.next_stats_ns = mmapq_now_ns() + (uint64_t)p.cfg.stats_interval * 1000000000u;
	log_debug("attached to %s as producer, input %s", p.cfg.queue_path,
	         p.input == IN_STDIN ? "stdin" : p.input == IN_GENERATE ? "generate" : "socket");
	service_ready("running");
	r = run(&p, &unblocked);
	code = cli_exit_code_for_run(r);

	/* shutdown, in reverse */
	service_stopping();
	if (cli_stop && p.input == IN_STDIN)
		finish_record_on_stop(&p, p.src[0]);
	r = mmapq_publish(p.q);
	if (r == -EINTR) {
		/* a peer holds the mutex and does not let go (stopped, traced):
		 * what we read stays unpublished, and every client is told so */
		log_error("%s: stopping with %" PRIu32 " records read but not published: the queue's"
		          " mutex is held by a process that does not release it (stopped?)",
		          mmapq_path(p.q), mmapq_pending(p.q));
		for (unsigned i = 0; i < p.n_src; i++)
			p.src[i]->published -= p.src[i]->pending;
		code = EXIT_IOERR;
	} else if (r < 0 && code == EXIT_OK) {
		code = cli_exit_code_for_run(fatal(&p, r));
	}
	if (p.input == IN_STDIN && (p.src[0]->rejected || p.src[0]->dropped))
		log_notice("%" PRIu64 " records published, %" PRIu64 " bad input skipped, %" PRIu64
		           " dropped", p.src[0]->published, p.src[0]->rejected, p.src[0]->dropped);
	ack_sources(&p, cli_stop || code ? "FAIL stopping" : NULL);
	stats(&p, 1);
	log_limit_flush(&p.bad_limit, 1);
	log_limit_flush(&p.drop_limit, 1);
	log_limit_flush(&p.accept_limit, 1);
	log_limit_flush(&p.gone_limit, 1);
out:
	for (unsigned i = 0; i < p.n_src; i++)
		source_free(p.src[i]);
	for (unsigned i = 0; i < p.n_listen; i++)
		close(p.listen_fd[i]);
	if (p.own_socket)
		unlink(p.cfg.socket_path);
	free(p.buf);
	mmapq_close(p.q);
	return code;
}
