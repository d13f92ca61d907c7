/* SPDX-License-Identifier: MIT */
/*
 * mmapq-producer -- reads records and publishes them into the queue.
 *
 * Start-up, in this order: options, config, signals, queue (create or
 * attach, validate, take the producer role), parser.  Shutdown in reverse:
 * parser (a final token at end of input is published), publish everything
 * read, queue (munmap, locks dropped).
 *
 * Nothing read is ever left unpublished: in block mode we read at most as
 * many bytes as there are free slots, and every record needs at least one
 * byte of the chunk that completes it, so a chunk can never yield more
 * records than fit.  Each chunk is published before the next read.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "mmapq.h"
#include "parse.h"

#define READ_CHUNK (64u * 1024u)

struct producer {
	struct mmapq *q;
	struct mmapq_config cfg;
	const char *input_name;
	uint32_t nfree;           /* slots reserved and not yet filled */
	uint64_t dropped;
	struct log_limit bad_limit, drop_limit;
	int fatal;                /* exit code of a fatal error in a callback */
	uint64_t next_stats_ns, stats_published;
};

static int refill(struct producer *p, uint64_t deadline)
{
	int r = mmapq_reserve(p->q, deadline, &p->nfree);
	if (r == -EAGAIN || r == -ETIMEDOUT || r == -EINTR) {
		p->nfree = 0;
		return 0;
	}
	return r;
}

static int on_record(void *ctx, const void *data, uint32_t len)
{
	struct producer *p = ctx;
	int r;

	if (!p->nfree && p->cfg.on_full == MMAPQ_ON_FULL_DROP) {
		r = refill(p, 0);
		if (r < 0)
			goto fail;
	}
	if (!p->nfree) {
		/* only in drop mode: block mode never reads more than fits */
		p->dropped++;
		mmapq_count_dropped(p->q, 1);
		if (log_limit_pass(&p->drop_limit))
			log_warning("queue full: record dropped (on_full = drop)");
		return 0;
	}
	r = mmapq_put(p->q, data, len);
	if (r < 0)
		goto fail;
	p->nfree--;
	return 0;
fail:
	log_error("%s: %s", mmapq_path(p->q), mmapq_strerror(r));
	p->fatal = cli_exit_code_for_open(r);
	return r;
}

static void on_parse_error(void *ctx, const struct mmapq_parse_error *e)
{
	struct producer *p = ctx;

	mmapq_count_bad_input(p->q, 1);
	if (log_limit_pass(&p->bad_limit))
		log_plain("%s:%" PRIu64 ":%" PRIu64 ": %s: '%s' (skipped)", p->input_name, e->line,
		          e->column, e->what, e->excerpt);
}

static void stats(struct producer *p, int force)
{
	struct mmapq_status st;
	uint64_t now = mmapq_now_ns();

	log_limit_flush(&p->bad_limit, 0);
	log_limit_flush(&p->drop_limit, 0);
	if (!p->cfg.stats_interval || (!force && now < p->next_stats_ns))
		return;
	if (mmapq_status(p->q, &st) < 0)
		return;
	log_info("published %" PRIu64 ", depth %" PRIu64 "/%" PRIu32 ", %.1f rec/s, dropped %" PRIu64
	         ", bad input %" PRIu64, st.tail, st.tail - st.head, st.capacity,
	         (double)(st.tail - p->stats_published) / p->cfg.stats_interval, st.producer.dropped,
	         st.producer.bad_input);
	p->stats_published = st.tail;
	p->next_stats_ns = now + (uint64_t)p->cfg.stats_interval * 1000000000u;
}

/* Wait until stdin is readable, a stop signal arrives, or stats are due.
 * The signals are blocked except inside ppoll, so none is missed. */
static int wait_input(struct producer *p, const sigset_t *unblocked)
{
	struct pollfd pf = {.fd = STDIN_FILENO, .events = POLLIN};
	struct timespec ts, *tsp = NULL;
	int r;

	if (p->cfg.stats_interval) {
		uint64_t now = mmapq_now_ns();
		uint64_t left = p->next_stats_ns > now ? p->next_stats_ns - now : 0;
		ts.tv_sec = (time_t)(left / 1000000000u);
		ts.tv_nsec = (long)(left % 1000000000u);
		tsp = &ts;
	}
	if (cli_stop)
		return 0;
	r = ppoll(&pf, 1, tsp, unblocked);
	if (r < 0 && errno != EINTR)
		return -errno;
	return r > 0;
}

static int run(struct producer *p, const sigset_t *unblocked)
{
	char *buf = malloc(READ_CHUNK);
	struct mmapq_parser *parser = NULL;
	int r, code = EXIT_OK;
	bool block = p->cfg.on_full == MMAPQ_ON_FULL_BLOCK;

	if (!buf) {
		log_error("out of memory");
		return EXIT_IOERR;
	}
	r = mmapq_parser_new(p->cfg.format, p->cfg.record_size, on_record, on_parse_error, p, &parser);
	if (r < 0) {
		log_error("cannot set up the parser: %s", mmapq_strerror(r));
		free(buf);
		return EXIT_CONFIG;
	}
	while (!cli_stop) {
		size_t want = READ_CHUNK;
		ssize_t n;

		stats(p, 0);
		if (!p->nfree) {
			/* with signals blocked the wait ends at its 0.5 s slice,
			 * so a stop request is seen within about a second */
			r = refill(p, block ? mmapq_now_ns() + 1000000000u : 0);
			if (r < 0) {
				log_error("%s: %s", mmapq_path(p->q), mmapq_strerror(r));
				code = cli_exit_code_for_open(r);
				break;
			}
			if (block && !p->nfree)
				continue;
		}
		if (block && want > p->nfree)
			want = p->nfree;
		r = wait_input(p, unblocked);
		if (r < 0) {
			log_error("%s: poll: %s", p->input_name, strerror(-r));
			code = EXIT_IOERR;
			break;
		}
		if (r == 0)
			continue;
		n = read(STDIN_FILENO, buf, want);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			log_error("%s: read: %s", p->input_name, strerror(errno));
			code = EXIT_IOERR;
			break;
		}
		if (n == 0) {
			/* end of input: a last token without a separator needs a slot */
			while (block && !p->nfree && !cli_stop) {
				r = refill(p, mmapq_now_ns() + 1000000000u);
				if (r < 0)
					break;
			}
			r = mmapq_parser_finish(parser);
			if (r < 0)
				code = p->fatal ? p->fatal : EXIT_IOERR;
			break;
		}
		r = mmapq_parser_feed(parser, buf, (size_t)n);
		if (r < 0) {
			code = p->fatal ? p->fatal : EXIT_IOERR;
			break;
		}
		r = mmapq_publish(p->q);
		if (r >= 0)
			r = refill(p, 0); /* publishing saw the consumer's progress */
		if (r < 0) {
			log_error("%s: %s", mmapq_path(p->q), mmapq_strerror(r));
			code = cli_exit_code_for_open(r);
			break;
		}
	}
	r = mmapq_publish(p->q);
	if (r < 0 && code == EXIT_OK) {
		log_error("%s: %s", mmapq_path(p->q), mmapq_strerror(r));
		code = cli_exit_code_for_open(r);
	}
	log_limit_flush(&p->bad_limit, 1);
	log_limit_flush(&p->drop_limit, 1);
	if (mmapq_parser_errors(parser) || p->dropped)
		log_notice("%" PRIu64 " records read, %" PRIu64 " bad input skipped, %" PRIu64 " dropped",
		           mmapq_parser_records(parser), mmapq_parser_errors(parser), p->dropped);
	mmapq_parser_free(parser);
	free(buf);
	return code;
}

int main(int argc, char **argv)
{
	struct producer p = {
		.input_name = "stdin",
		.bad_limit = LOG_LIMIT_INIT("bad input", 10, 20),
		.drop_limit = LOG_LIMIT_INIT("records dropped", 10, 1),
	};
	struct mmapq_params qp;
	struct mmapq_error err;
	struct cli c;
	sigset_t stop_sigs, unblocked;
	int r, code;

	log_init("mmapq-producer");
	cli_parse(&c, argc, argv, "", false, false);
	if (c.argi != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", c.prog, argv[c.argi]);
		return EXIT_USAGE;
	}
	code = cli_load_config(&c, &p.cfg);
	if (code)
		return code;
	if (c.check_config) {
		printf("%s: configuration OK\n", c.config_path);
		return EXIT_OK;
	}
	if (strcmp(p.cfg.input, "stdin") != 0) {
		log_error("input '%s' is not supported by this build", p.cfg.input);
		return EXIT_CONFIG;
	}

	cli_signals();
	sigemptyset(&stop_sigs);
	sigaddset(&stop_sigs, SIGTERM);
	sigaddset(&stop_sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &stop_sigs, &unblocked);

	qp = cli_queue_params(&p.cfg, MMAPQ_ROLE_PRODUCER);
	cli_sigbus_guard(qp.path);
	r = mmapq_open(&qp, &p.q, &err);
	if (r < 0) {
		log_error("%s", err.msg);
		return cli_exit_code_for_open(r);
	}
	log_debug("attached to %s as producer", p.cfg.queue_path);
	p.next_stats_ns = mmapq_now_ns() + (uint64_t)p.cfg.stats_interval * 1000000000u;

	code = run(&p, &unblocked);
	stats(&p, 1);
	mmapq_close(p.q);
	return code;
}
