/* SPDX-License-Identifier: MIT */
/*
 * fanin_put -- a program of the library that publishes beside the
 * daemons (fan-in), for the tests:
 *   fanin_put QUEUE NAME PREFIX COUNT
 * attaches to the existing queue file QUEUE (a line queue, any geometry)
 * as the producer NAME, publishes the lines PREFIX-0 .. PREFIX-(COUNT-1) in
 * batches of up to 16, says "published COUNT" on stdout, stays attached
 * until its stdin ends, and closes.  Exit 0, or 1 with the reason on
 * stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmapq.h"

#define BATCH 16
#define WAIT_NS (30ull * 1000000000ull) /* for room: a consumer reads the queue */

static int fail(const char *what, int r)
{
	fprintf(stderr, "fanin_put: %s: %s\n", what, mmapq_strerror(r));
	return 1;
}

/* One line put: a reservation taken when another producer's holds the
 * room. */
static int put_line(struct mmapq *q, const char *text)
{
	uint32_t len = (uint32_t)strlen(text);
	uint64_t room;
	int r = mmapq_put(q, text, len);

	if (r == -ENOBUFS) {
		r = mmapq_reserve(q, len, mmapq_now_ns() + WAIT_NS, &room);
		if (r == 0)
			r = mmapq_put(q, text, len);
	}
	return r;
}

int main(int argc, char **argv)
{
	struct mmapq_params p = {.role = MMAPQ_ROLE_PRODUCER};
	struct mmapq_error err;
	struct mmapq *q;
	char line[96], c;
	unsigned long count;
	char *end;
	int r;

	if (argc != 5) {
		fprintf(stderr, "usage: fanin_put QUEUE NAME PREFIX COUNT\n");
		return 2;
	}
	errno = 0;
	count = strtoul(argv[4], &end, 10);
	if (errno || *end || !*argv[4] || strlen(argv[3]) > 64) {
		fprintf(stderr, "fanin_put: COUNT '%s' is not a number, or PREFIX is too long\n",
		        argv[4]);
		return 2;
	}
	p.path = argv[1];
	p.producer = argv[2];
	r = mmapq_open(&p, &q, &err);
	if (r < 0) {
		fprintf(stderr, "fanin_put: %s\n", err.msg);
		return 1;
	}
	for (unsigned long i = 0; i < count; i++) {
		snprintf(line, sizeof(line), "%s-%lu", argv[3], i);
		r = put_line(q, line);
		if (r < 0)
			return fail("put", r);
		if ((i + 1) % BATCH == 0 || i + 1 == count) {
			r = mmapq_publish(q);
			if (r < 0)
				return fail("publish", r);
		}
	}
	printf("published %lu\n", count);
	fflush(stdout);
	while (read(STDIN_FILENO, &c, 1) > 0)
		;
	mmapq_close(q);
	return 0;
}
