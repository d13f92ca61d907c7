/* SPDX-License-Identifier: MIT */
/*
 * legacy_queue PATH VALUE... -- writes PATH as mmapq 0.x left it: a queue
 * file of format version 3 (a ring of 16 int slots) holding the VALUEs as
 * records 0, 1, ..., with the consumer "default" registered before the
 * first, for the container scenario's upgrade step (scenario.sh): what a
 * daemon of this version finds after the package was upgraded.  Exit 0, 1
 * (it could not be written) or 64 (bad arguments).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define SLOTS 16

int main(int argc, char **argv)
{
	static const struct tu_legacy_consumer def = {.name = MMAPQ_CONSUMER_DEFAULT, .position = 0};
	int64_t values[SLOTS];
	struct mmapq_record recs[SLOTS];
	uint32_t n = (uint32_t)argc - 2;
	int r;

	if (argc < 3 || argc - 2 > SLOTS) {
		fprintf(stderr, "usage: legacy_queue PATH VALUE... (1 to %d integers)\n", SLOTS);
		return 64;
	}
	for (uint32_t i = 0; i < n; i++) {
		char *end;

		errno = 0;
		values[i] = strtoll(argv[i + 2], &end, 10);
		if (errno || end == argv[i + 2] || *end) {
			fprintf(stderr, "legacy_queue: '%s' is not an integer\n", argv[i + 2]);
			return 64;
		}
		recs[i] = (struct mmapq_record){.seq = i, .len = 8, .data = &values[i]};
	}
	r = tu_write_legacy_queue(argv[1], 3, MMAPQ_FORMAT_INT, SLOTS, 64, 0, recs, n, &def, 1, 0x5a);
	if (r < 0) {
		fprintf(stderr, "legacy_queue: %s: %s\n", argv[1], strerror(-r));
		return 1;
	}
	return 0;
}
