/* SPDX-License-Identifier: MIT */
/*
 * mmapq-consumer -- waits for records and writes each to its output.
 *
 * Start-up, in this order: options, config, signals, output, queue (create
 * or attach, validate, take the consumer role).  Shutdown in reverse.
 *
 * Delivery: a batch is formatted, written out completely (and, with
 * sync != never on a file, fdatasync'ed) and only then released, which
 * advances the consumer position stored in the file.  A crash between the
 * write and the release repeats that one batch after restart (at-least-once;
 * the sequence numbers identify the repeats); nothing is ever skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "mmapq.h"

enum output_kind { OUT_STDOUT, OUT_NULL, OUT_FILE };

struct consumer {
	struct mmapq *q;
	struct mmapq_config cfg;
	enum output_kind out;
	int out_fd;
	const char *out_name;
	char *buf;
	size_t cap, len;
	uint64_t consumed, next_stats_ns, stats_consumed;
};

static int open_output(struct consumer *c)
{
	const char *o = c->cfg.output;

	if (!strcmp(o, "stdout")) {
		c->out = OUT_STDOUT;
		c->out_fd = STDOUT_FILENO;
		c->out_name = "stdout";
	} else if (!strcmp(o, "null")) {
		c->out = OUT_NULL;
		c->out_fd = -1;
		c->out_name = "null";
	} else if (!strncmp(o, "file:", 5)) {
		c->out = OUT_FILE;
		c->out_name = o + 5;
		c->out_fd = open(c->out_name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
		if (c->out_fd < 0) {
			log_error("%s: cannot open output: %s", c->out_name, strerror(errno));
			return EXIT_CANTCREATE;
		}
	} else {
		log_error("output '%s' is not supported by this build", o);
		return EXIT_CONFIG;
	}
	return 0;
}

static int reserve_buf(struct consumer *c, size_t more)
{
	if (c->len + more <= c->cap)
		return 0;
	size_t ncap = c->cap ? c->cap : 65536;
	while (ncap < c->len + more)
		ncap *= 2;
	char *n = realloc(c->buf, ncap);
	if (!n)
		return -ENOMEM;
	c->buf = n;
	c->cap = ncap;
	return 0;
}

/* "%" PRId64 "\n" without printf: this runs for every record. */
static size_t format_int(char *out, int64_t v)
{
	char tmp[24];
	size_t n = 0, len = 0;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		out[len++] = '-';
	while (n)
		out[len++] = tmp[--n];
	out[len++] = '\n';
	return len;
}

static int append_record(struct consumer *c, const struct mmapq_record *rec)
{
	if (c->out == OUT_NULL)
		return 0;
	if (c->cfg.format == MMAPQ_FORMAT_INT) {
		int64_t v;
		if (reserve_buf(c, 24) < 0)
			return -ENOMEM;
		memcpy(&v, rec->data, sizeof(v));
		c->len += format_int(c->buf + c->len, v);
	} else {
		if (reserve_buf(c, (size_t)rec->len + 1) < 0)
			return -ENOMEM;
		memcpy(c->buf + c->len, rec->data, rec->len);
		c->len += rec->len;
		c->buf[c->len++] = '\n';
	}
	return 0;
}

/* Everything, despite EINTR and short writes: the release depends on it. */
static int flush_output(struct consumer *c)
{
	size_t off = 0;

	while (off < c->len) {
		ssize_t k = write(c->out_fd, c->buf + off, c->len - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		off += (size_t)k;
	}
	c->len = 0;
	if (c->out == OUT_FILE && c->cfg.sync != MMAPQ_SYNC_NEVER && fdatasync(c->out_fd) < 0)
		return -errno;
	return 0;
}

static void stats(struct consumer *c, int force)
{
	struct mmapq_status st;
	uint64_t now = mmapq_now_ns();

	if (!c->cfg.stats_interval || (!force && now < c->next_stats_ns))
		return;
	if (mmapq_status(c->q, &st) < 0)
		return;
	log_info("consumed %" PRIu64 ", depth %" PRIu64 "/%" PRIu32 ", %.1f rec/s", st.head,
	         st.tail - st.head, st.capacity,
	         (double)(c->consumed - c->stats_consumed) / c->cfg.stats_interval);
	c->stats_consumed = c->consumed;
	c->next_stats_ns = now + (uint64_t)c->cfg.stats_interval * 1000000000u;
}

static int run(struct consumer *c, uint64_t count)
{
	for (;;) {
		uint32_t n;
		uint64_t deadline;
		int r;

		if (cli_stop)
			return EXIT_OK;
		stats(c, 0);
		deadline = mmapq_now_ns() + 1000000000u;
		if (c->cfg.stats_interval && c->next_stats_ns < deadline)
			deadline = c->next_stats_ns;
		r = mmapq_available(c->q, deadline, &n);
		if (r == -ETIMEDOUT || r == -EINTR)
			continue;
		if (r < 0) {
			log_error("%s: %s", mmapq_path(c->q), mmapq_strerror(r));
			return cli_exit_code_for_open(r);
		}
		if (count && n > count - c->consumed)
			n = (uint32_t)(count - c->consumed);
		for (uint32_t i = 0; i < n; i++) {
			struct mmapq_record rec;
			r = mmapq_get(c->q, i, &rec);
			if (r == 0)
				r = append_record(c, &rec);
			if (r < 0) {
				log_error("%s: record %u of the batch: %s", mmapq_path(c->q), i,
				          mmapq_strerror(r));
				return r == -ENOMEM ? EXIT_IOERR : EXIT_BADQUEUE;
			}
		}
		r = flush_output(c);
		if (r < 0) {
			log_error("%s: write: %s (%u records not acknowledged, kept in the queue)",
			          c->out_name, strerror(-r), n);
			return EXIT_IOERR;
		}
		r = mmapq_release(c->q, n);
		if (r < 0) {
			log_error("%s: %s", mmapq_path(c->q), mmapq_strerror(r));
			return cli_exit_code_for_open(r);
		}
		c->consumed += n;
		if (count && c->consumed >= count)
			return EXIT_OK;
	}
}

int main(int argc, char **argv)
{
	struct consumer c = {.out_fd = -1};
	struct mmapq_params qp;
	struct mmapq_error err;
	struct cli cl;
	int r, code;

	log_init("mmapq-consumer");
	cli_parse(&cl, argc, argv, " [--count N]", true, false);
	if (cl.argi != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", cl.prog, argv[cl.argi]);
		return EXIT_USAGE;
	}
	code = cli_load_config(&cl, &c.cfg);
	if (code)
		return code;
	if (cl.check_config) {
		printf("%s: configuration OK\n", cl.config_path);
		return EXIT_OK;
	}
	cli_signals();
	code = open_output(&c);
	if (code)
		return code;
	qp = cli_queue_params(&c.cfg, MMAPQ_ROLE_CONSUMER);
	cli_sigbus_guard(qp.path);
	r = mmapq_open(&qp, &c.q, &err);
	if (r < 0) {
		log_error("%s", err.msg);
		code = cli_exit_code_for_open(r);
		goto out;
	}
	log_debug("attached to %s as consumer", c.cfg.queue_path);
	c.next_stats_ns = mmapq_now_ns() + (uint64_t)c.cfg.stats_interval * 1000000000u;
	code = run(&c, cl.count);
	stats(&c, 1);
	mmapq_close(c.q);
out:
	if (c.out == OUT_FILE && c.out_fd >= 0)
		close(c.out_fd);
	free(c.buf);
	return code;
}
