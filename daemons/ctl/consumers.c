/* SPDX-License-Identifier: MIT */
/*
 * consumers.c -- `consumers` (the registered consumers: name, cursor, lag in
 * records and bytes, pid, attached, rate since attached) and `consumer remove NAME`.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "attach.h"
#include "blocked.h"
#include "exit.h"
#include "log.h"

/* Records per second of a consumer since its holder attached, or < 0 if
 * it is not attached (or has not run long enough to say). */
double consumer_rate(const struct mmapq_consumer_status *c)
{
	uint64_t now;

	if (!c->attached || !c->start_usec || c->position < c->attach_position)
		return -1;
	now = wall_usec();
	if (now <= c->start_usec)
		return -1;
	return (double)(c->position - c->attach_position) * 1e6 / (double)(now - c->start_usec);
}

const char *consumer_rate_text(char *buf, size_t size, const struct mmapq_consumer_status *c)
{
	double rate = consumer_rate(c);

	if (rate < 0)
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%.1f", rate);
	return buf;
}

/* The registered consumers (at most MMAPQ_CONSUMERS_MAX), and each one's
 * policy into pol unless it is NULL (one removed meanwhile, or of a file of
 * versions 1 to 3: block, nothing skipped): how many, or -errno (said). */
int list_consumers(struct mmapq *q, struct mmapq_consumer_status *cs, struct mmapq_policy *pol)
{
	int n = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX);

	if (n < 0)
		log_error("%s: consumer table: %s", mmapq_path(q), mmapq_strerror(n));
	if (n > (int)MMAPQ_CONSUMERS_MAX)
		n = (int)MMAPQ_CONSUMERS_MAX;
	for (int i = 0; pol && i < n; i++)
		if (mmapq_policy(q, (int32_t)cs[i].index, &pol[i]) < 0)
			pol[i] = (struct mmapq_policy){0};
	return n;
}

void consumers_json(const struct mmapq_consumer_status *cs, const struct mmapq_policy *pol, int n,
                    bool by_pid)
{
	putchar('[');
	for (int i = 0; i < n; i++) {
		const struct mmapq_consumer_status *c = &cs[i];
		double rate = consumer_rate(c);

		printf("%s{\"name\":", i ? "," : "");
		json_string(stdout, c->name, strlen(c->name));
		printf(",\"index\":%" PRIu32 ",\"position\":%" PRIu64 ",\"lag\":%" PRIu64
		       ",\"lag_bytes\":%" PRIu64 ",\"pid\":%" PRId32 ",\"attached\":%s,\"attached_by\":\"%s\",\"start_usec\":%" PRIu64
		       ",\"registered_usec\":%" PRIu64 ",\"consumed\":%" PRIu64
		       ",\"recoveries\":%" PRIu64 ",\"attaches\":%" PRIu64 ",\"rate\":",
		       c->index, c->position, c->lag, c->lag_bytes, c->pid, c->attached ? "true" : "false",
		       by_pid ? "pid" : "lock", c->start_usec, c->registered_usec, c->position,
		       c->recoveries, c->attaches);
		if (rate < 0)
			printf("null");
		else
			printf("%.1f", rate);
		printf(",\"on_full\":\"%s\",\"skipped\":%" PRIu64 "}",
		       pol[i].on_full == MMAPQ_POLICY_SKIP ? "skip" : "block", pol[i].skipped);
	}
	putchar(']');
}

/* `consumers`: one line (or JSON object) per registered consumer. */
int consumers(struct mmapq *q, bool json)
{
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_policy pol[MMAPQ_CONSUMERS_MAX];
	struct mmapq_status st;
	int r = mmapq_status(q, &st), n;

	if (r < 0) {
		log_error("%s: %s", mmapq_path(q), mmapq_strerror(r));
		return EXIT_BADQUEUE;
	}
	n = list_consumers(q, cs, pol);
	if (n < 0)
		return EXIT_BADQUEUE;
	if (json) {
		consumers_json(cs, pol, n, st.attached_by_pid);
		putchar('\n');
		return EXIT_OK;
	}
	printf("%-20s %20s %12s %14s %8s %-8s %12s\n", "name", "cursor", "lag", "lag bytes", "pid",
	       "attached", "rate/s");
	for (int i = 0; i < n; i++) {
		char pid[16], rt[32];

		snprintf(pid, sizeof(pid), "%" PRId32, cs[i].pid);
		printf("%-20s %20" PRIu64 " %12" PRIu64 " %14" PRIu64 " %8s %-8s %12s\n", cs[i].name,
		       cs[i].position, cs[i].lag, cs[i].lag_bytes, cs[i].pid ? pid : "-",
		       st.attached_by_pid ? (cs[i].attached ? "pid" : "no") : cs[i].attached ? "yes" : "no",
		       consumer_rate_text(rt, sizeof(rt), &cs[i]));
	}
	printf("%d of %" PRIu32 " consumers registered; tail %" PRIu64 ", oldest kept %" PRIu64
	       ", %" PRIu64 " bytes kept (%.1f%% of size)\n", n, st.max_consumers, st.tail, st.head,
	       st.used_bytes, used_percent(&st));
	return EXIT_OK;
}

/* `consumer remove NAME` */
int consumer_remove(const struct mmapq_config *cfg, const char *name)
{
	struct mmapq_params qp = attach_params(cfg, MMAPQ_ROLE_CONSUMER);
	struct mmapq_error err;
	int r;

	qp.consumer = name;
	r = mmapq_consumer_remove(&qp, &err);
	if (r >= 0) {
		printf("%s: consumer '%s' removed; the %d records it had not consumed are no longer kept"
		       " for it\n", cfg->queue_path, name, r);
		return EXIT_OK;
	}
	log_error("%s", err.msg);
	if (r == -ENOENT && strstr(err.msg, "no consumer named"))
		return EXIT_NOCONSUMER;
	if (r == -EINVAL)
		return EXIT_USAGE;
	return exit_code_for_open(r);
}
