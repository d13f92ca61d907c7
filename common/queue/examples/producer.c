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
 * The geometry must be the queue's (the daemons' [queue] capacity,
 * record_size and format): a file of another geometry is refused (-EPROTO)
 * and left untouched.  Exit 0 once every record is published.
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
		.capacity = 1024,
		.record_size = 64,
		.format = MMAPQ_FORMAT_INT,
		.file_mode = 0660,
	};
	struct mmapq_error err;
	struct mmapq *q;
	int r;

	if (argc < 2) {
		fprintf(stderr, "usage: %s QUEUE [INTEGER]...\n", argv[0]);
		return 2;
	}
	p.path = argv[1];
	r = mmapq_open(&p, &q, &err); /* creates the file if it is not there */
	if (r < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	for (int i = 2; i < argc && r >= 0; i++) {
		int64_t v = strtoll(argv[i], NULL, 10);
		uint32_t room;

		/* room for one more: at once, or wait (up to 10 s) for a
		 * consumer to free some; then put it in its slot */
		r = mmapq_reserve(q, mmapq_now_ns() + 10000000000u, &room);
		if (r == 0)
			r = mmapq_put(q, &v, sizeof(v));
	}
	if (r >= 0)
		r = mmapq_publish(q); /* all of them at once: one lock, one wake-up */
	if (r < 0)
		fprintf(stderr, "%s: %s\n", p.path, mmapq_strerror(r));
	else
		printf("published %d records, the last with sequence number %" PRIu64 "\n", argc - 2,
		       mmapq_next_seq(q) - 1);
	mmapq_close(q);
	return r < 0 ? 1 : 0;
}
