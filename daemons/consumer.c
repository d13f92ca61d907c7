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
 * with output = journal each entry carries MMAPQ_SEQ=, which identifies the
 * repeats); nothing is ever skipped.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "fault.h"
#include "fmt.h"
#include "mmapq.h"
#include "service.h"

enum output_kind { OUT_STDOUT, OUT_NULL, OUT_FILE, OUT_JOURNAL };

struct output {
	enum output_kind kind;
	int fd;
	const char *name;    /* points into the config's output string (file:) */
};

struct consumer {
	struct mmapq *q;
	struct mmapq_config cfg;
	struct cli *cli;
	struct output out;
	char *buf;
	size_t cap, len;
	uint64_t consumed, next_stats_ns, stats_consumed, next_status_ns;
	bool stale;               /* the path no longer names our file: drain, then stop */
	bool corrupt;             /* the header was overwritten: stop */
	struct rate_meter status_rate;
};

/* spec is [consumer] output; o->name may point into it. */
static int open_output(const char *spec, struct output *o)
{
	/* auto: one journal entry per record when stdout is the journal */
	if (!strcmp(spec, "journal") || (!strcmp(spec, "auto") && service_fd_is_journal(STDOUT_FILENO))) {
		*o = (struct output){OUT_JOURNAL, -1, "journal"};
	} else if (!strcmp(spec, "stdout") || !strcmp(spec, "auto")) {
		*o = (struct output){OUT_STDOUT, STDOUT_FILENO, "stdout"};
	} else if (!strcmp(spec, "null")) {
		*o = (struct output){OUT_NULL, -1, "null"};
	} else if (!strncmp(spec, "file:", 5)) {
		const char *path = spec + 5;
		char last;
		int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
		off_t end;

		if (fd < 0) {
			log_error("%s: cannot open output: %s", path, strerror(errno));
			return EXIT_CANTCREATE;
		}
		/* A consumer killed mid-write leaves a partial last line: start
		 * the replayed batch on a line of its own. */
		end = lseek(fd, 0, SEEK_END);
		if (end > 0 && pread(fd, &last, 1, end - 1) == 1 && last != '\n') {
			log_warning("%s: ends with a partial line (interrupted write); starting a new line",
			            path);
			if (write(fd, "\n", 1) != 1) {
				log_error("%s: write: %s", path, strerror(errno));
				close(fd);
				return EXIT_IOERR;
			}
		}
		*o = (struct output){OUT_FILE, fd, path};
	} else {
		log_error("output '%s' is not supported by this build", spec);
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

/* "%" PRId64 "\n" without printf: this runs for every record.  The callers
 * reserve 24 bytes for it. */
_Static_assert(MMAPQ_FMT_INT_MAX <= 24, "format_int needs more room than reserved");
static inline size_t format_int(char *out, int64_t v)
{
	return mmapq_fmt_int(out, v);
}

/* MESSAGE= is the record exactly as the lab printed it, plus MMAPQ_SEQ=.
 * sd_journal_sendv is binary-safe, for line records. */
static int journal_record(struct consumer *c, const struct mmapq_record *rec)
{
	static const char msg[] = "MESSAGE=";
	const size_t mlen = sizeof(msg) - 1;
	char seq[40], queue[MMAPQ_CONFIG_STR_MAX + 16];
	struct iovec iov[6];
	size_t len;
	int n, m, r;

	if (reserve_buf(c, mlen + (c->cfg.format == MMAPQ_FORMAT_INT ? 24 : rec->len)) < 0)
		return -ENOMEM;
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
	iov[4] = (struct iovec){(char *)"SYSLOG_IDENTIFIER=mmapq-consumer", 32};
	iov[5] = (struct iovec){(char *)"MMAPQ_ROLE=consumer", 19};
	/* journald's socket may be full: a stop request ends the wait (the
	 * batch is then not acknowledged), other interruptions retry */
	do
		r = sd_journal_sendv(iov, 6);
	while (r == -EINTR && !cli_stop);
	return r < 0 ? r : 0;
}

static int append_record(struct consumer *c, const struct mmapq_record *rec)
{
	if (c->out.kind == OUT_NULL)
		return 0;
	if (c->out.kind == OUT_JOURNAL)
		return journal_record(c, rec);
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
		ssize_t k = write(c->out.fd, c->buf + off, c->len - off);
		if (k < 0 && errno == EINTR && cli_stop)
			return -EINTR; /* a stalled output must not keep us from stopping */
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		off += (size_t)k;
	}
	c->len = 0;
	if (c->out.kind == OUT_FILE && c->cfg.sync != MMAPQ_SYNC_NEVER && fdatasync(c->out.fd) < 0)
		return -errno;
	return 0;
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
	char rate[32];
	service_status("consumed %" PRIu64 ", depth %" PRIu64 "/%" PRIu32 ", %s, output %s", st.head,
	               st.tail - st.head, st.capacity,
	               rate_meter_update(&c->status_rate, st.head, rate, sizeof(rate)), c->out.name);
	c->next_status_ns = now + 1000000000u;
	if (!log_due)
		return;
	log_info("consumed %" PRIu64 ", depth %" PRIu64 "/%" PRIu32 ", %.1f rec/s", st.head,
	         st.tail - st.head, st.capacity,
	         (double)(c->consumed - c->stats_consumed) / c->cfg.stats_interval);
	c->stats_consumed = c->consumed;
	c->next_stats_ns = now + (uint64_t)c->cfg.stats_interval * 1000000000u;
}

static void close_output(struct output *o)
{
	if (o->kind == OUT_FILE && o->fd >= 0)
		close(o->fd);
	o->fd = -1;
}

static void apply_reload(struct consumer *c)
{
	char old_output[MMAPQ_CONFIG_STR_MAX];
	struct output next;

	memcpy(old_output, c->cfg.output, sizeof(old_output));
	if (cli_reload_config(c->cli, &c->cfg) <= 0)
		return;
	mmapq_set_sync(c->q, c->cfg.sync);
	mmapq_set_spin(c->q, c->cfg.spin_us);
	c->next_stats_ns = mmapq_now_ns();
	if (!strcmp(old_output, c->cfg.output))
		return;
	/* between batches: nothing is buffered */
	if (open_output(c->cfg.output, &next) != 0) {
		memcpy(c->cfg.output, old_output, sizeof(old_output)); /* c->out.name is valid again */
		log_error("reload: keeping output %s", c->out.name);
		return;
	}
	close_output(&c->out);
	c->out = next;
}

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
		if (cli_stop)
			return EXIT_OK;
		stats(c, 0);
		if (c->corrupt)
			return EXIT_BADQUEUE;
		deadline = mmapq_now_ns() + service_max_wait_ns();
		if (c->cfg.stats_interval && c->next_stats_ns < deadline)
			deadline = c->next_stats_ns;
		r = mmapq_available(c->q, c->stale ? 0 : deadline, &n);
		if (r == -EAGAIN && c->stale) {
			/* The file is gone from its path, but a producer still
			 * attached to it may publish until it notices: stop only
			 * once it is gone and the last look finds nothing. */
			struct mmapq_status st;
			bool producer = mmapq_status(c->q, &st) == 0 && st.producer.attached;
			r = mmapq_available(c->q, producer ? deadline : 0, &n);
			if (r == -EAGAIN && !producer)
				return EXIT_BADQUEUE;
		}
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
			if (r == -EINTR) {
				log_notice("stopping while writing: %u records not acknowledged, they"
				           " will be written again by the next consumer", n);
				return EXIT_OK;
			}
			if (r < 0) {
				log_error("%s: record %u of the batch: %s", mmapq_path(c->q), i,
				          mmapq_strerror(r));
				return r == -EBADMSG ? EXIT_BADQUEUE : EXIT_IOERR;
			}
		}
		r = flush_output(c);
		if (r == -EINTR) {
			log_notice("stopping while writing: %u records not acknowledged, they will be"
			           " written again by the next consumer", n);
			return EXIT_OK;
		}
		if (r < 0) {
			log_error("%s: write: %s (%u records not acknowledged, kept in the queue)",
			          c->out.name, strerror(-r), n);
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
	struct consumer c = {.out = {.fd = -1}};
	struct mmapq_params qp;
	struct mmapq_error err;
	struct cli cl;
	int r, code;

	/* 1. options and configuration */
	log_init("mmapq-consumer");
	cli_parse(&cl, argc, argv, " [--count N]", true, false);
	if (cl.argi != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", cl.prog, argv[cl.argi]);
		return EXIT_USAGE;
	}
	c.cli = &cl;
	code = cli_load_config(&cl, &c.cfg);
	if (code) {
		service_failed(code, "configuration error");
		return code;
	}
	if (cl.check_config) {
		return cli_check_config_result(&cl);
	}
	log_setup("consumer", c.cfg.queue_path);
	service_init();

	/* 2. signals (not blocked: SIGTERM interrupts a wait at once) */
	cli_signals();

	/* 3. the output, then the queue */
	code = open_output(c.cfg.output, &c.out);
	if (code) {
		service_failed(code, "cannot open the output");
		return code;
	}
	qp = cli_queue_params(&c.cfg, MMAPQ_ROLE_CONSUMER);
	cli_sigbus_guard(qp.path);
	r = mmapq_open(&qp, &c.q, &err);
	if (r < 0) {
		log_error("%s", err.msg);
		code = cli_exit_code_for_open(r);
		service_failed(code, err.msg);
		goto out;
	}

	/* 4. ready */
	log_debug("attached to %s as consumer, output %s", c.cfg.queue_path, c.out.name);
	c.next_stats_ns = mmapq_now_ns() + (uint64_t)c.cfg.stats_interval * 1000000000u;
	service_ready("running");
	code = run(&c, cl.count);

	/* shutdown, in reverse */
	service_stopping();
	stats(&c, 1);
	mmapq_close(c.q);
out:
	close_output(&c.out);
	free(c.buf);
	return code;
}
