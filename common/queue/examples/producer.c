/* SPDX-License-Identifier: MIT */
/*
 * producer.c -- an application that publishes into an mmapq queue: each
 * argument after the queue's path is one int record.  What mmapq-producer
 * does, without the daemon: a program of its own feeding the same queue
 * that mmapq-consumer (or consumer.cpp beside this file) reads.
 *
 *   cc producer.c $(pkg-config --cflags --libs mmapq) -o producer
 *   ./producer /var/lib/mmapq/queue 1 2 3
 *
 * The queue must exist (mmapq-producer or mmapq-consumer creates it at
 * start): given no geometry, the program joins it whatever its size and
 * max_record, and refuses a queue of line or binary records.  Exit 0 once
 * every record is published, 2 for a bad argument (nothing published), 1
 * on an error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <mmapq.h>

int main(int argc, char **argv)
{
	struct mmapq_params p = {
		.role = MMAPQ_ROLE_PRODUCER,
		/* size, max_record, format 0: join the queue as it is */
	};
	struct mmapq_error err;
	struct mmapq_status st;
	struct mmapq *q;
	int64_t *v;
	int n = argc - 2, done = 0, r;

	if (argc < 2) {
		fprintf(stderr, "usage: %s QUEUE [INTEGER]...\n", argv[0]);
		return 2;
	}
	/* every argument checked before anything is published */
	v = calloc((size_t)n + 1, sizeof(*v));
	if (!v) {
		perror("calloc");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		const char *a = argv[i + 2];
		char *end;

		errno = 0;
		v[i] = strtoll(a, &end, 10);
		if (errno != 0 || end == a || *end != '\0') {
			fprintf(stderr, "argument %d: '%s' is not a 64-bit integer; nothing published\n",
				i + 2, a);
			free(v);
			return 2;
		}
	}
	p.path = argv[1];
	r = mmapq_open(&p, &q, &err);
	if (r < 0) {
		fprintf(stderr, "%s\n", err.msg);
		free(v);
		return 1;
	}
	if (mmapq_status(q, &st) < 0 ||
	    st.format != MMAPQ_FORMAT_INT) {
		fprintf(stderr, "%s: not a queue of int records\n", p.path);
		mmapq_close(q);
		free(v);
		return 1;
	}
	while (done < n && r >= 0) {
		uint64_t room;

		/* room for one more at least: at once, or wait (up to 10 s) for a
		 * consumer to free some; then as many records as fit go into the
		 * ring */
		r = mmapq_reserve(q, sizeof(*v), mmapq_now_ns() + 10000000000u, &room);
		if (r == 0)
			r = mmapq_put_many(q, v + done, sizeof(*v), (uint32_t)(n - done));
		if (r > 0)
			done += r;
	}
	if (r >= 0)
		r = mmapq_publish(q); /* those still pending, at once: one lock, one wake-up */
	if (r < 0)
		fprintf(stderr, "%s: %s\n", p.path, mmapq_strerror(r));
	else
		printf("published %d records, the last with sequence number %" PRIu64 "\n", argc - 2,
		       mmapq_next_seq(q) - 1);
	mmapq_close(q);
	free(v);
	return r < 0 ? 1 : 0;
}
