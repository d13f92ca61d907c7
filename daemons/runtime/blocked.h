/* SPDX-License-Identifier: MIT */
/*
 * blocked.h -- the producer's wait for room and the consumer that holds it
 * back (mmapq_blocked), read and put in words the same way for the
 * producer's journal lines and STATUS= and for mmapqctl's status and top.
 */
#ifndef MMAPQ_BLOCKED_H
#define MMAPQ_BLOCKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mmapq.h"

struct blocked_info {
	uint64_t since_usec;  /* CLOCK_REALTIME when the wait began; 0: not waiting */
	uint64_t total_usec;  /* time producers of the file waited for room, in all */
	bool have_holder;     /* holder is set: a consumer is registered */
	/* the registered consumer that holds the oldest record kept: the one
	 * the producer waits for while it waits */
	struct mmapq_consumer_status holder;
};

/* What q says: 0, or -errno of mmapq_blocked or mmapq_consumers. */
int blocked_read(struct mmapq *q, struct blocked_info *b);
/* Who holds the producer back, into buf: "consumer audit is 65536 records
 * (1048576 bytes) behind, not attached (last attached 12:03:11, pid 4242)",
 * "..., attached (pid 4242, since 12:03:11)", "..., never attached", or
 * "no consumer is registered: the records wait for the next one".  Times
 * local, with the date when it is not today's. */
const char *blocked_holder_text(const struct blocked_info *b, char *buf, size_t size);
/* CLOCK_REALTIME in microseconds: the clock of the times in a queue file. */
uint64_t wall_usec(void);
/* A CLOCK_REALTIME time (usec) as local "HH:MM:SS", or "YYYY-MM-DD
 * HH:MM:SS" when it is not today, into buf. */
const char *blocked_clock(char *buf, size_t size, uint64_t usec);

#endif
