// SPDX-License-Identifier: MIT
//
// consumer.cpp -- a C++ application that reads an mmapq queue: prints COUNT
// int records, one per line, and releases each batch only once it is
// printed (a crash before that makes the next reader print it again:
// at-least-once, in order).  What mmapq-consumer does, in a program of
// its own.
//
//   c++ consumer.cpp $(pkg-config --cflags --libs mmapq) -o consumer
//   ./consumer /var/lib/mmapq/queue 3
//
// The queue must exist; given no geometry, the program joins it whatever
// its size and max_record.  Exit 0 after COUNT records; 1 if none
// comes for 10 s, or on an error; 2 for a bad argument.
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <mmapq.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		std::fprintf(stderr, "usage: %s QUEUE COUNT\n", argv[0]);
		return 2;
	}
	mmapq_params p{};
	p.path = argv[1];
	p.role = MMAPQ_ROLE_CONSUMER;
	// size, max_record, format 0: join the queue as it is
	mmapq_error err;
	mmapq *q = nullptr;
	char *end;
	errno = 0;
	unsigned long want = std::strtoul(argv[2], &end, 10), got = 0;
	if (errno != 0 || end == argv[2] || *end != '\0' || argv[2][0] == '-') {
		std::fprintf(stderr, "COUNT: '%s' is not a number of records\n", argv[2]);
		return 2;
	}
	int r = mmapq_open(&p, &q, &err);
	if (r < 0) {
		std::fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	struct mmapq_status st; // "struct": mmapq_status is a function too
	if (mmapq_status(q, &st) < 0 || st.format != MMAPQ_FORMAT_INT) {
		std::fprintf(stderr, "%s: not a queue of int records\n", p.path);
		mmapq_close(q);
		return 1;
	}
	std::vector<int64_t> values;
	while (got < want) {
		uint32_t n;
		// sleeps (no CPU) until the producer publishes, 10 s at most
		r = mmapq_available(q, mmapq_now_ns() + 10000000000u, &n);
		if (r == -EINTR)
			continue;
		if (r < 0)
			break;
		if (n > want - got)
			n = static_cast<uint32_t>(want - got);
		values.resize(n);
		// the payloads copied out, every checksum checked, in one call
		r = mmapq_copy_many(q, 0, n, values.data(), sizeof(int64_t));
		if (r < 0)
			break;
		for (int i = 0; i < r; i++)
			std::printf("%" PRId64 "\n", values[i]);
		if (std::fflush(stdout) != 0) {
			r = -EIO;
			break;
		}
		got += static_cast<unsigned long>(r);
		r = mmapq_release(q, static_cast<uint32_t>(r)); // printed: done with them
		if (r < 0)
			break;
	}
	if (r < 0)
		std::fprintf(stderr, "%s: %s\n", p.path, mmapq_strerror(r));
	mmapq_close(q);
	return r < 0 ? 1 : 0;
}
