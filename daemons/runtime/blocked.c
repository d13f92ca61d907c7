/* SPDX-License-Identifier: MIT */
#include "blocked.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int blocked_read(struct mmapq *q, struct blocked_info *b)
{
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	int32_t holder = -1;
	int r, n;

	memset(b, 0, sizeof(*b));
	r = mmapq_blocked(q, &b->since_usec, &b->total_usec, &holder);
	if (r < 0)
		return r;
	if (holder < 0)
		return 0;
	n = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX);
	if (n < 0)
		return n;
	for (int i = 0; i < n && i < (int)MMAPQ_CONSUMERS_MAX; i++)
		if (cs[i].index == (uint32_t)holder) {
			b->holder = cs[i];
			b->have_holder = true;
		}
	return 0;
}

uint64_t wall_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const char *blocked_clock(char *buf, size_t size, uint64_t usec)
{
	time_t t = (time_t)(usec / 1000000u), now = time(NULL);
	struct tm tm, today;

	if (!localtime_r(&t, &tm) || !localtime_r(&now, &today) ||
	    !strftime(buf, size, tm.tm_year == today.tm_year && tm.tm_yday == today.tm_yday ?
	                         "%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, size, "?");
	return buf;
}

const char *blocked_holder_text(const struct blocked_info *b, char *buf, size_t size)
{
	const struct mmapq_consumer_status *c = &b->holder;
	char when[32];
	int n;

	if (!b->have_holder) {
		snprintf(buf, size, "no consumer is registered: the records wait for the next one");
		return buf;
	}
	n = snprintf(buf, size, "consumer %s is %" PRIu64 " records (%" PRIu64 " bytes) behind, ",
	             c->name, c->lag, c->lag_bytes);
	if (n < 0 || (size_t)n >= size)
		return buf;
	blocked_clock(when, sizeof(when), c->start_usec);
	if (!c->pid)
		snprintf(buf + n, size - (size_t)n, "never attached");
	else if (c->attached)
		snprintf(buf + n, size - (size_t)n, "attached (pid %" PRId32 ", since %s)", c->pid, when);
	else
		snprintf(buf + n, size - (size_t)n, "not attached (last attached %s, pid %" PRId32 ")",
		         when, c->pid);
	return buf;
}
