/* SPDX-License-Identifier: MIT */
/*
 * output_journal.c -- output journal: one journald entry per record,
 * MESSAGE= the record: a line's bytes (without a line end), a binary
 * record's bytes as they are, whatever they are (journald stores a value
 * that is not UTF-8 text as binary: `journalctl -o export` shows its
 * bytes), an int in decimal; MMAPQ_SEQ= its sequence number, MMAPQ_QUEUE=,
 * MMAPQ_ROLE=, and SYSLOG_IDENTIFIER= [consumer] journal_identifier, apart
 * from the daemon's own log lines.  Nothing is cut and nothing is copied
 * but into the socket (journal.h: journald's limits).  [consumer]
 * journal_namespace picks journald's instance.  Each entry is delivered as
 * it is sent (journal.c), so done is what was sent.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "fmt.h"
#include "journal.h"
#include "log.h"
#include "output.h"

struct journal_out {
	struct output base;
	struct journal journal;
	char namespace[MMAPQ_CONFIG_STR_MAX];
	char describe[MMAPQ_CONFIG_STR_MAX + 32];
};

/* One entry: the record's bytes are its MESSAGE as they are, from the
 * queue's mapping (format int: the number in decimal). */
static int send_record(struct journal_out *j, const struct mmapq_record *rec)
{
	const struct mmapq_config *cfg = j->base.env->cfg;
	char number[MMAPQ_FMT_INT_MAX], seq[24];
	struct journal_field f[6] = {
		{"MESSAGE", rec->data, rec->len},
		{"MMAPQ_SEQ", seq, (size_t)snprintf(seq, sizeof(seq), "%" PRIu64, rec->seq)},
		{"MMAPQ_QUEUE", cfg->queue_path, strlen(cfg->queue_path)},
		{"PRIORITY", "6", 1},
		/* records apart from the daemon's logs; it may change on reload */
		{"SYSLOG_IDENTIFIER", cfg->journal_identifier, strlen(cfg->journal_identifier)},
		{"MMAPQ_ROLE", "consumer", 8},
	};

	if (cfg->format == MMAPQ_FORMAT_INT) {
		int64_t v;

		memcpy(&v, rec->data, sizeof(v));
		f[0] = (struct journal_field){"MESSAGE", number, mmapq_fmt_int(number, v) - 1};
	}
	/* journald's socket may be full: a stop request ends the wait (the
	 * record is then not acknowledged), other interruptions retry */
	return journal_send(&j->journal, f, sizeof(f) / sizeof(f[0]), j->base.env->stop);
}

static int journal_deliver(struct output *o, const struct mmapq_record *recs, uint32_t n,
                           uint32_t *taken)
{
	struct journal_out *j = (struct journal_out *)o;
	uint32_t i = 0;
	int r = 0;

	for (; i < n; i++) {
		r = send_record(j, &recs[i]);
		if (r < 0)
			break;
		/* each entry is delivered as it goes: progress as it goes, and
		 * on a stop keep what journald already has */
		j->base.env->progress();
		if (j->base.env->stop() && i + 1 < n) {
			i++;
			r = -EINTR;
			break;
		}
	}
	j->base.held += i;
	*taken = i;
	if (r == -EINTR)
		log_notice("stopping: %u records delivered to the journal, the rest stays in the"
		           " queue", j->base.held);
	else if (r < 0)
		log_error("journal: record %" PRIu64 ": %s (%u records delivered before it, the rest"
		          " stays in the queue)", recs[i].seq, strerror(-r), j->base.held);
	return r;
}

static int journal_complete(struct output *o, uint32_t *done)
{
	*done = o->held;
	return 0;
}

static const char *journal_describe(struct output *o)
{
	struct journal_out *j = (struct journal_out *)o;

	if (strcmp(j->namespace, "default"))
		snprintf(j->describe, sizeof(j->describe), "journal (namespace %s)", j->namespace);
	else
		snprintf(j->describe, sizeof(j->describe), "journal");
	return j->describe;
}

static void journal_out_close(struct output *o)
{
	struct journal_out *j = (struct journal_out *)o;

	journal_close(&j->journal);
	free(j);
}

static const struct output_ops journal_ops = {
	.deliver = journal_deliver,
	.complete = journal_complete,
	.describe = journal_describe,
	.close = journal_out_close,
};

int output_journal_open(const struct output_env *env, const char *spec, struct output **ret)
{
	const char *ns = env->cfg->journal_namespace;
	bool own_ns = strcmp(ns, "default") != 0;
	char path[MMAPQ_CONFIG_STR_MAX + 32];
	struct journal_out *j = calloc(1, sizeof(*j));
	int r;

	(void)spec;
	if (!j)
		return -ENOMEM;
	j->base = (struct output){.ops = &journal_ops, .env = env};
	j->journal.fd = -1;
	snprintf(j->namespace, sizeof(j->namespace), "%s", ns);
	if (own_ns)
		snprintf(path, sizeof(path), JOURNAL_NAMESPACE_SOCKET_FMT, ns);
	else
		snprintf(path, sizeof(path), "%s", JOURNAL_SOCKET);
	r = journal_open(&j->journal, path);
	if (r < 0) {
		log_error("output = journal: cannot connect to %s: %s (is systemd-journald%s%s"
		          " running?); nothing consumed", path, strerror(-r), own_ns ? "@" : "",
		          own_ns ? ns : "");
		journal_out_close(&j->base);
		return -EIO; /* journald unreachable: an I/O error, whatever connect said */
	}
	*ret = &j->base;
	return 0;
}
