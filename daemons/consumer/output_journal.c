/* SPDX-License-Identifier: MIT */
/*
 * output_journal.c -- output journal: one journald entry per record,
 * MESSAGE= the record exactly as stdout shows it (binary-safe, without the
 * line end), MMAPQ_SEQ= its sequence number, MMAPQ_QUEUE=, MMAPQ_ROLE=,
 * and SYSLOG_IDENTIFIER= [consumer] journal_identifier, apart from the
 * daemon's own log lines.  [consumer] journal_namespace picks journald's
 * instance.  Each entry is delivered as it is sent (journal.c), so done is
 * what was sent.
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
	char *buf;         /* MESSAGE= and one record; base.held: sent, not yet released */
	char ident[MMAPQ_CONFIG_STR_MAX + 24]; /* SYSLOG_IDENTIFIER=... */
	char queue[MMAPQ_CONFIG_STR_MAX + 16]; /* MMAPQ_QUEUE=... */
	char namespace[MMAPQ_CONFIG_STR_MAX];
	char describe[MMAPQ_CONFIG_STR_MAX + 32];
};

static int send_record(struct journal_out *j, const struct mmapq_record *rec)
{
	static const char msg[] = "MESSAGE=";
	const struct mmapq_config *cfg = j->base.env->cfg;
	const size_t mlen = sizeof(msg) - 1;
	char seq[40];
	struct iovec iov[6];
	size_t len;
	int n;

	memcpy(j->buf, msg, mlen);
	if (cfg->format == MMAPQ_FORMAT_INT) {
		int64_t v;
		memcpy(&v, rec->data, sizeof(v));
		len = mmapq_fmt_int(j->buf + mlen, v) - 1; /* without its newline */
	} else {
		memcpy(j->buf + mlen, rec->data, rec->len);
		len = rec->len;
	}
	n = snprintf(seq, sizeof(seq), "MMAPQ_SEQ=%" PRIu64, rec->seq);
	/* the identifier may change on reload */
	snprintf(j->ident, sizeof(j->ident), "SYSLOG_IDENTIFIER=%s", cfg->journal_identifier);
	iov[0] = (struct iovec){j->buf, mlen + len};
	iov[1] = (struct iovec){seq, (size_t)n};
	iov[2] = (struct iovec){j->queue, strlen(j->queue)};
	iov[3] = (struct iovec){(char *)"PRIORITY=6", 10};
	iov[4] = (struct iovec){j->ident, strlen(j->ident)}; /* records apart from the logs */
	iov[5] = (struct iovec){(char *)"MMAPQ_ROLE=consumer", 19};
	/* journald's socket may be full: a stop request ends the wait (the
	 * record is then not acknowledged), other interruptions retry */
	return journal_send(&j->journal, iov, 6, j->base.env->stop);
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
	free(j->buf);
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
	j->buf = malloc(sizeof("MESSAGE=") + env->cfg->max_record + MMAPQ_FMT_INT_MAX);
	if (!j->buf) {
		free(j);
		return -ENOMEM;
	}
	snprintf(j->namespace, sizeof(j->namespace), "%s", ns);
	snprintf(j->queue, sizeof(j->queue), "MMAPQ_QUEUE=%s", env->cfg->queue_path);
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
