/* SPDX-License-Identifier: MIT */
/*
 * producers.c -- the registered producers (fan-in) as status, status
 * --json and top show them: every name of the producer table with its
 * pid while attached, what it published and its waits for room.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "blocked.h"
#include "log.h"

int list_producers(struct mmapq *q, struct mmapq_producer_status *ps)
{
	int n = mmapq_producers(q, ps, MMAPQ_PRODUCERS_MAX);

	if (n < 0)
		log_error("%s: producer table: %s", mmapq_path(q), mmapq_strerror(n));
	return n > (int)MMAPQ_PRODUCERS_MAX ? (int)MMAPQ_PRODUCERS_MAX : n;
}

void producers_json(const struct mmapq_producer_status *ps, int n, bool by_pid)
{
	putchar('[');
	for (int i = 0; i < n; i++) {
		const struct mmapq_producer_status *p = &ps[i];

		printf("%s{\"name\":", i ? "," : "");
		json_string(stdout, p->name, strlen(p->name));
		printf(",\"index\":%" PRIu32 ",\"pid\":%" PRId32 ",\"last_pid\":%" PRId32
		       ",\"attached\":%s,\"attached_by\":\"%s\",\"start_usec\":%" PRIu64
		       ",\"registered_usec\":%" PRIu64 ",\"published\":%" PRIu64 ",\"dropped\":%" PRIu64
		       ",\"bad_input\":%" PRIu64 ",\"recoveries\":%" PRIu64 ",\"attaches\":%" PRIu64
		       ",\"blocked_since_usec\":%" PRIu64 ",\"blocked_usec\":%" PRIu64 "}",
		       p->index, p->pid, p->last_pid, p->attached ? "true" : "false",
		       by_pid ? "pid" : "lock", p->start_usec, p->registered_usec, p->published,
		       p->dropped, p->bad_input, p->recoveries, p->attaches, p->blocked_since_usec,
		       p->blocked_total_usec);
	}
	putchar(']');
}

const char *producer_wait_text(char *buf, size_t size, const struct mmapq_producer_status *p)
{
	char when[32];
	uint64_t now = wall_usec();

	if (p->blocked_since_usec)
		snprintf(buf, size, "waiting for room since %s (%.0f s); %.1f s in all",
		         blocked_clock(when, sizeof(when), p->blocked_since_usec),
		         now > p->blocked_since_usec ? (double)(now - p->blocked_since_usec) / 1e6 : 0.0,
		         (double)p->blocked_total_usec / 1e6);
	else if (p->blocked_total_usec)
		snprintf(buf, size, "not waiting; waited %.1f s for room in all",
		         (double)p->blocked_total_usec / 1e6);
	else
		buf[0] = '\0';
	return buf;
}
