/* SPDX-License-Identifier: MIT */
/*
 * mmapq-producer -- reads records and publishes them into the queue.
 *
 * Inputs ([producer] input): stdin; socket (clients connect to a Unix
 * stream socket, several at once; under systemd the socket comes from
 * mmapq-producer.socket via sd_listen_fds); generate (a counter whose values
 * are the records' own sequence numbers).
 *
 * Start-up, in this order: options, config, signals, queue (create or
 * attach, validate, take the producer role), input, READY=1.  Shutdown in
 * reverse: STOPPING=1, publish everything read, tell clients what was
 * published, close the input, the queue (munmap, locks dropped).
 *
 * Nothing read is ever left unpublished: in block mode a read takes at most
 * as many bytes as can complete no more records than there are free slots
 * (read_bound), so a read can never yield more records than fit.  Everything read in one loop iteration is published
 * before the next wait.
 *
 * Socket protocol (text, one line per message, producer to client): for
 * each rejected record "ERR LINE:COL: what: 'excerpt'"; after the client
 * shuts down its sending side and all its records are published,
 * "OK published=N dropped=D rejected=R last_seq=S" (S is "-" if N is 0);
 * if the producer stops first, "FAIL stopping published=N ...".
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

#define READ_CHUNK   (64u * 1024u)
#define MAX_CLIENTS  64
#define MAX_LISTEN   8
#define OUT_MAX      (64u * 1024u) /* per client; further ERR lines are only counted */

enum input_kind { IN_STDIN, IN_SOCKET, IN_GENERATE };

struct producer;

/* Where records come from: stdin or one client connection. */
struct source {
	struct producer *p;
	int fd;
	char name[32];
	struct mmapq_parser *parser;
	uint64_t published, dropped, rejected, last_seq;
	bool eof;        /* nothing more to read; parser not finished yet */
	bool finished;   /* parser finished: ack once published */
	bool acked;
	char *out;       /* replies not yet sent */
	size_t out_len;
};

struct producer {
	struct mmapq *q;
	struct mmapq_config cfg;
	struct cli *cli;
	enum input_kind input;
	uint32_t nfree;            /* slots reserved and not yet filled */
	int fatal;                 /* exit code of a fatal error in a callback */
	struct log_limit bad_limit, drop_limit;
	int listen_fd[MAX_LISTEN];
	unsigned n_listen;
	bool own_socket;           /* we created cfg.socket_path ourselves */
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

/* Queue a reply line.  ERR lines stop at OUT_MAX bytes (a client that
 * sends without reading must not make us buffer without bound); the final
 * OK/FAIL line is always queued: it carries the counts. */
static void reply(struct source *s, bool final, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void reply(struct source *s, bool final, const char *fmt, ...)
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
	if (!final && s->out_len + (size_t)n > OUT_MAX)
		return;
	char *o = realloc(s->out, s->out_len + (size_t)n);
	if (!o)
		return;
	memcpy(o + s->out_len, line, (size_t)n);
	s->out = o;
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

static int fatal(struct producer *p, int r)
{
	log_error("%s: %s", mmapq_path(p->q), mmapq_strerror(r));
	p->fatal = cli_exit_code_for_open(r);
	return r;
}

static int fail(struct producer *p, int r)
{
	fatal(p, r);
	return p->fatal;
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
	if (s)
		s->published++;
	return 0;
}

static int on_record(void *ctx, const void *data, uint32_t len)
{
	struct source *s = ctx;
	return put(s->p, s, data, len);
}

static void on_parse_error(void *ctx, const struct mmapq_parse_error *e)
{
	struct source *s = ctx;

	s->rejected++;
	mmapq_count_bad_input(s->p->q, 1);
	if (log_limit_pass(&s->p->bad_limit))
		log_plain("%s:%" PRIu64 ":%" PRIu64 ": %s: '%s' (skipped)", s->name, e->line, e->column,
		          e->what, e->excerpt);
	reply(s, false, "ERR %" PRIu64 ":%" PRIu64 ": %s: '%s'\n", e->line, e->column, e->what, e->excerpt);
}

static struct source *source_new(struct producer *p, int fd, const char *name)
{
	struct source *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->p = p;
	s->fd = fd;
	snprintf(s->name, sizeof(s->name), "%s", name);
	if (mmapq_parser_new(p->cfg.format, p->cfg.record_size, on_record, on_parse_error, s,
	                     &s->parser) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

static void source_free(struct source *s)
{
	if (!s)
		return;
	if (s->fd > STDIN_FILENO)
		close(s->fd);
	mmapq_parser_free(s->parser);
	free(s->out);
	free(s);
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
		return EXIT_CONFIG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		log_error("socket: %s", strerror(errno));
		return EXIT_IOERR;
	}
	/* A socket file left by a producer that died is replaced; anything
	 * else at the path, or a live listener, is not. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno == ECONNREFUSED)
		unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0660) < 0 ||
	    listen(fd, 64) < 0) {
		log_error("%s: cannot listen: %s", path, strerror(errno));
		close(fd);
		return EXIT_CANTCREATE;
	}
	p->listen_fd[p->n_listen++] = fd;
	p->own_socket = true;
	return 0;
}

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
				return EXIT_USAGE;
			}
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
			p->listen_fd[p->n_listen++] = fd;
		}
		log_info("serving %u socket(s) passed by systemd", p->n_listen);
		return 0;
	}
	if (!strcmp(p->cfg.input, "stdin")) {
		p->input = IN_STDIN;
		p->src[0] = source_new(p, STDIN_FILENO, "stdin");
		if (!p->src[0]) {
			log_error("out of memory");
			return EXIT_IOERR;
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

static void accept_clients(struct producer *p, int lfd)
{
	while (p->n_src < MAX_CLIENTS) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		char name[32];
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warning("accept: %s", strerror(errno));
			return;
		}
		snprintf(name, sizeof(name), "client%d", fd);
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
	if (!force && now < p->next_status_ns && now < p->next_stats_ns)
		return;
	if (mmapq_status(p->q, &st) < 0)
		return;
	if (now >= p->next_status_ns && !p->fatal) {
		/* Deleted or replaced: what we published stays in the old file,
		 * where a consumer still attached to it drains it; new input
		 * would be stranded.  Overwritten: nothing can be trusted. */
		int r = mmapq_check(p->q);
		if (r == -ESTALE || r == -EBADMSG) {
			log_error("%s: %s; stopping", mmapq_path(p->q),
			          r == -ESTALE ? mmapq_strerror(r) : "the header was overwritten while in use");
			p->fatal = EXIT_BADQUEUE;
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

/*
 * The most bytes a read may take so that the records they complete fit in
 * nfree slots.  A line record needs its '\n' in the chunk: nfree bytes.  An
 * int record needs a separator in the chunk, and every one after the first
 * (which may have started in an earlier chunk) a digit too: 2*nfree - 1.
 */
static size_t read_bound(const struct producer *p)
{
	if (!p->nfree)
		return 0;
	return p->cfg.format == MMAPQ_FORMAT_INT ? 2 * (size_t)p->nfree - 1 : p->nfree;
}

/* Read what is there (at most what fits) and parse it. */
static int read_source(struct producer *p, struct source *s)
{
	size_t want = READ_CHUNK;
	ssize_t n;

	if (blocking(p) && want > read_bound(p))
		want = read_bound(p);
	if (!want)
		return 0;
	n = read(s->fd, p->buf, want);
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n < 0) {
		if (s->fd == STDIN_FILENO) {
			log_error("%s: read: %s", s->name, strerror(errno));
			p->fatal = EXIT_IOERR;
			return -EIO;
		}
		log_warning("%s: read: %s", s->name, strerror(errno));
		n = 0; /* treat like a hang-up */
	}
	if (n == 0) {
		s->eof = true;
		return 0;
	}
	return mmapq_parser_feed(s->parser, p->buf, (size_t)n);
}

static void finish_sources(struct producer *p)
{
	for (unsigned i = 0; i < p->n_src; i++) {
		struct source *s = p->src[i];
		/* the final token may need one slot */
		if (!s->eof || s->finished || (blocking(p) && !p->nfree))
			continue;
		if (mmapq_parser_finish(s->parser) < 0 && p->fatal)
			return;
		s->finished = true;
	}
}

/* After a publish: acknowledge finished clients, drop the ones done. */
static void ack_sources(struct producer *p, const char *verdict)
{
	for (unsigned i = 0; i < p->n_src; i++) {
		struct source *s = p->src[i];
		if (s->fd == STDIN_FILENO)
			continue;
		if ((s->finished || verdict) && !s->acked) {
			if (s->published)
				reply(s, true, "%s published=%" PRIu64 " dropped=%" PRIu64 " rejected=%" PRIu64
				      " last_seq=%" PRIu64 "\n", verdict ? verdict : "OK", s->published,
				      s->dropped, s->rejected, s->last_seq);
			else
				reply(s, true, "%s published=0 dropped=%" PRIu64 " rejected=%" PRIu64
				      " last_seq=-\n", verdict ? verdict : "OK", s->dropped, s->rejected);
			s->acked = true;
		}
		flush_replies(s);
		if (s->acked && !s->out_len) {
			log_debug("%s: %" PRIu64 " published, %" PRIu64 " rejected, %" PRIu64 " dropped",
			          s->name, s->published, s->rejected, s->dropped);
			source_free(s);
			p->src[i--] = p->src[--p->n_src];
		}
	}
}

static int wait_events(struct producer *p, const sigset_t *unblocked, uint64_t max_ns)
{
	struct pollfd pf[MAX_LISTEN + MAX_CLIENTS + 1];
	unsigned n = 0;
	bool room = p->nfree || !blocking(p);
	struct timespec ts = {.tv_sec = (time_t)(max_ns / 1000000000u), .tv_nsec = (long)(max_ns % 1000000000u)};
	int r;

	for (unsigned i = 0; i < p->n_listen; i++)
		pf[n++] = (struct pollfd){.fd = p->listen_fd[i], .events = p->n_src < MAX_CLIENTS ? POLLIN : 0};
	for (unsigned i = 0; i < p->n_src; i++) {
		struct source *s = p->src[i];
		short ev = 0;
		if (!s->eof && room)
			ev |= POLLIN;
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
	for (unsigned i = 0; i < p->n_listen; i++)
		if (pf[i].revents & POLLIN)
			accept_clients(p, p->listen_fd[i]);
	for (unsigned i = 0, j = p->n_listen; i < p->n_src && j < n; i++, j++) {
		struct source *s = p->src[i];
		if (pf[j].revents & POLLOUT)
			flush_replies(s);
		if (pf[j].revents & (POLLIN | POLLHUP | POLLERR)) {
			r = read_source(p, s);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static void apply_reload(struct producer *p)
{
	enum mmapq_on_full old_on_full = p->cfg.on_full;

	if (cli_reload_config(p->cli, &p->cfg) <= 0)
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
			return EXIT_OK;
		stats(p, 0);
		if (p->fatal)
			return p->fatal;
		if (!p->nfree) {
			/* unblocked while waiting for room: a signal interrupts
			 * the wait at once (-EINTR), or at worst its 0.5 s slice */
			sigset_t blocked;

			sigprocmask(SIG_SETMASK, unblocked, &blocked);
			r = refill(p, blocking(p) ? mmapq_now_ns() + service_max_wait_ns() : 0);
			sigprocmask(SIG_SETMASK, &blocked, NULL);
			if (r < 0)
				return fail(p, r);
			if (blocking(p) && !p->nfree)
				continue;
		}
		finish_sources(p);
		if (p->fatal)
			return p->fatal;
		wait_ns = service_max_wait_ns();
		if (p->input == IN_GENERATE) {
			r = generate(p);
			if (r < 0)
				return p->fatal;
			uint64_t g = generate_wait(p);
			if (g < wait_ns)
				wait_ns = g;
		}
		if (p->input != IN_GENERATE || wait_ns) {
			r = wait_events(p, unblocked, wait_ns);
			if (r < 0)
				return p->fatal ? p->fatal : EXIT_IOERR;
		}
		finish_sources(p);
		if (p->fatal)
			return p->fatal;
		r = mmapq_publish(p->q);
		if (r >= 0)
			r = refill(p, 0); /* publishing saw the consumer's progress */
		if (r < 0)
			return fail(p, r);
		ack_sources(p, NULL);
		if (p->input == IN_STDIN && p->n_src && p->src[0]->finished)
			return EXIT_OK; /* end of input, everything published */
	}
}

int main(int argc, char **argv)
{
	struct producer p = {
		.bad_limit = LOG_LIMIT_INIT("bad input", 10, 20),
		.drop_limit = LOG_LIMIT_INIT("records dropped", 10, 1),
	};
	struct mmapq_params qp;
	struct mmapq_error err;
	struct cli c;
	sigset_t sigs, unblocked;
	int r, code;

	/* 1. options and configuration */
	log_init("mmapq-producer");
	cli_parse(&c, argc, argv, "", false, false);
	if (c.argi != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", c.prog, argv[c.argi]);
		return EXIT_USAGE;
	}
	p.cli = &c;
	code = cli_load_config(&c, &p.cfg);
	if (code) {
		service_failed(code, "configuration error");
		return code;
	}
	if (c.check_config) {
		return cli_check_config_result(&c);
	}
	log_setup("producer", p.cfg.queue_path);
	service_init();

	/* 2. signals: blocked except while waiting in ppoll, so none is lost */
	cli_signals();
	cli_signal_set(&sigs);
	sigprocmask(SIG_BLOCK, &sigs, &unblocked);

	/* 3. the queue */
	qp = cli_queue_params(&p.cfg, MMAPQ_ROLE_PRODUCER);
	cli_sigbus_guard(qp.path);
	r = mmapq_open(&qp, &p.q, &err);
	if (r < 0) {
		log_error("%s", err.msg);
		code = cli_exit_code_for_open(r);
		service_failed(code, err.msg);
		return code;
	}

	/* 4. the input */
	p.buf = malloc(READ_CHUNK);
	code = p.buf ? setup_input(&p) : EXIT_IOERR;
	if (code) {
		service_failed(code, "cannot set up the input");
		goto out;
	}

	/* 5. ready */
	p.next_stats_ns = mmapq_now_ns() + (uint64_t)p.cfg.stats_interval * 1000000000u;
	log_debug("attached to %s as producer, input %s", p.cfg.queue_path,
	         p.input == IN_STDIN ? "stdin" : p.input == IN_GENERATE ? "generate" : "socket");
	service_ready("running");
	code = run(&p, &unblocked);

	/* shutdown, in reverse */
	service_stopping();
	r = mmapq_publish(p.q);
	if (r < 0 && code == EXIT_OK)
		code = fail(&p, r);
	if (p.input == IN_STDIN && (p.src[0]->rejected || p.src[0]->dropped))
		log_notice("%" PRIu64 " records published, %" PRIu64 " bad input skipped, %" PRIu64
		           " dropped", p.src[0]->published, p.src[0]->rejected, p.src[0]->dropped);
	ack_sources(&p, cli_stop || code ? "FAIL stopping" : NULL);
	stats(&p, 1);
	log_limit_flush(&p.bad_limit, 1);
	log_limit_flush(&p.drop_limit, 1);
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
