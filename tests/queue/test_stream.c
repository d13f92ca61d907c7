/* SPDX-License-Identifier: MIT */
/*
 * test_stream -- a numbered stream through two forked processes.
 *
 * The producer child reserves room for its next record (mmapq_reserve's
 * *room: any records whose frames add up to at most room fit), puts a
 * batch of random size within that room and publishes it (sometimes
 * leaving it for the next reserve to publish); every put inside the room
 * promised must succeed.  Records are put with mmapq_put or, now and then,
 * with mmapq_claim of max_record bytes and mmapq_commit of the record's
 * real length.  The consumer child waits with mmapq_available, reads with
 * mmapq_get and releases in random chunks.  Record s carries s: the int64
 * value s in the int format, or in the line and binary formats a payload
 * whose length (0..max_record) and bytes are a function of s, so that the
 * wrap point of the ring lands everywhere.  The consumer checks every
 * record in order: r.seq, the length and every payload byte; the first
 * mismatch is reported with its index and the queue state.  At the end the
 * queue must be empty (head == tail == count, no bytes used), clean, and
 * nothing dropped, salvaged or recovered.
 *
 * Variants: 1,000,000 int records through a 16 KiB ring; 1,000,000 line
 * records of 0..100 bytes; 100,000 int records through a 64-byte ring (4
 * records: a wake-up for nearly every record); binary records up to the
 * largest a ring allows (a quarter of it); sync=batch and sync=always with
 * smaller counts.  The "bulk" variants do the same with mmapq_put_many
 * (runs of records of one length: in the line format a length is kept for
 * 64 records) and mmapq_get_many or, for int records, mmapq_copy_many (up
 * to 64 records per call, from every index), so that calls straddle the
 * end of the ring.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define WAIT_NS (10ull * 1000000000ull) /* per wait; a healthy wait is microseconds */

struct variant {
	const char *name;
	uint32_t format, max_record;
	uint64_t size;
	enum mmapq_sync sync;
	uint64_t count;
	uint32_t max_batch;
	int timeout_ms;
	bool bulk;      /* mmapq_put_many / mmapq_get_many */
};

#define BULK_RUN 64u  /* line records keep one length for this many (bulk) */

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: reproducible from the printed seed */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static uint32_t line_len_of(uint64_t seq, uint32_t max_record)
{
	return (uint32_t)((seq * 7 + seq / 3) % (max_record + 1));
}

/* The length of record seq: 8 (int), else 0..max_record */
static uint32_t line_len(const struct variant *v, uint64_t seq)
{
	if (v->format == MMAPQ_FORMAT_INT)
		return 8;
	return line_len_of(v->bulk ? seq / BULK_RUN : seq, v->max_record);
}

static uint8_t line_byte(const struct variant *v, uint64_t seq, uint32_t i)
{
	uint8_t b = (uint8_t)(seq * 131 + i * 7 + 1);
	return b == '\n' && v->format == MMAPQ_FORMAT_LINE ? 'x' : b;
}

static void dump(const char *path, const char *why)
{
	size_t len = 0;
	char *b = tu_read_file(path, &len);
	tu_dump_queue(path, why);
	if (b && len >= sizeof(struct mmapq_header)) {
		const struct mmapq_header *h = (const void *)b;
		fprintf(stderr, "     lockword 0x%08" PRIx32 " not_empty(seq %" PRIu32 " waiting %" PRIu32
		        ") not_full(seq %" PRIu32 " waiting %" PRIu32 ")\n",
		        *(const uint32_t *)h->lock.bytes, h->consumers[0].not_empty.seq, h->consumers[0].not_empty.waiting,
		        h->not_full.seq, h->not_full.waiting);
	}
	free(b);
}

static struct mmapq *open_role(const struct variant *v, const char *path, enum mmapq_role role)
{
	struct mmapq_params p = {.path = path, .role = role, .size = v->size,
	                         .max_record = v->max_record, .format = v->format, .sync = v->sync,
	                         .file_mode = 0600};
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &e);
	if (r < 0) {
		fprintf(stderr, "[%s] %s: cannot open: %s (%s)\n", v->name,
		        role == MMAPQ_ROLE_PRODUCER ? "producer" : "consumer", e.msg, mmapq_strerror(r));
		_exit(1);
	}
	return q;
}

/* The payload of record seq into buf */
static void fill(const struct variant *v, uint64_t seq, uint8_t *buf)
{
	if (v->format == MMAPQ_FORMAT_INT) {
		int64_t val = (int64_t)seq;
		memcpy(buf, &val, sizeof(val));
		return;
	}
	for (uint32_t k = 0, len = line_len(v, seq); k < len; k++)
		buf[k] = line_byte(v, seq, k);
}

static void producer(const struct variant *v, const char *path, uint64_t seed)
{
	struct mmapq *q = open_role(v, path, MMAPQ_ROLE_PRODUCER);
	uint8_t *buf = malloc((size_t)(v->max_record + 8) * BULK_RUN);
	uint64_t seq = 0, rng = seed;
	int r;

	if (!buf)
		_exit(1);
	while (seq < v->count) {
		uint64_t room = 0, used = 0;
		uint32_t batch;

		r = mmapq_reserve(q, line_len(v, seq), mmapq_now_ns() + WAIT_NS, &room);
		if (r < 0) {
			fprintf(stderr, "[%s] producer: reserve at record %" PRIu64 ": %s\n", v->name, seq,
			        mmapq_strerror(r));
			dump(path, "producer reserve failed");
			_exit(1);
		}
		if (room < mmapq_frame_size(line_len(v, seq))) {
			fprintf(stderr, "[%s] producer: reserve of record %" PRIu64 " (%u bytes) says room %"
			        PRIu64 ", less than its frame\n", v->name, seq, line_len(v, seq), room);
			_exit(1);
		}
		batch = 1 + (uint32_t)(rng_next(&rng) % v->max_batch);
		if (batch > v->count - seq)
			batch = (uint32_t)(v->count - seq);
		for (uint32_t i = 0; v->bulk && i < batch;) {
			/* a run of one length, at most BULK_RUN records, within room */
			uint32_t len = line_len(v, seq), k = 0;
			uint64_t fb = mmapq_frame_size(len);

			while (i + k < batch && k < BULK_RUN && line_len(v, seq + k) == len &&
			       used + (k + 1) * fb <= room) {
				fill(v, seq + k, buf + (size_t)k * len);
				k++;
			}
			if (k == 0)
				break;
			r = mmapq_put_many(q, buf, len, k);
			if (r != (int)k) {
				fprintf(stderr, "[%s] producer: put_many of %u records at %" PRIu64 " within room %"
				        PRIu64 " (%" PRIu64 " used): %d (%s)\n", v->name, k, seq, room, used, r,
				        r < 0 ? mmapq_strerror(r) : "fewer");
				dump(path, "producer put_many failed");
				_exit(1);
			}
			i += k;
			seq += k;
			used += k * fb;
		}
		for (uint32_t i = 0; !v->bulk && i < batch; i++, seq++) {
			uint32_t len = line_len(v, seq);
			uint64_t fb = mmapq_frame_size(len);
			void *at = NULL;

			if (used + fb > room)
				break;
			if (rng_next(&rng) % 4 == 0 && used + mmapq_frame_size(v->max_record) <= room) {
				/* zero copy: claim the most, commit what the record has */
				r = mmapq_claim(q, v->max_record, &at);
				if (r == 0) {
					fill(v, seq, at);
					r = mmapq_commit(q, len);
				}
			} else {
				fill(v, seq, buf);
				r = mmapq_put(q, buf, len);
			}
			if (r < 0) {
				fprintf(stderr, "[%s] producer: put record %" PRIu64 " (%u bytes) within room %"
				        PRIu64 " (%" PRIu64 " used): %s\n", v->name, seq, len, room, used,
				        mmapq_strerror(r));
				dump(path, "producer put failed");
				_exit(1);
			}
			used += fb;
		}
		/* now and then leave the batch for the next reserve (or close) to
		 * publish */
		if (rng_next(&rng) % 8 != 0) {
			r = mmapq_publish(q);
			if (r < 0) {
				fprintf(stderr, "[%s] producer: publish at record %" PRIu64 ": %s\n", v->name,
				        seq, mmapq_strerror(r));
				dump(path, "producer publish failed");
				_exit(1);
			}
		}
	}
	r = mmapq_publish(q);
	if (r < 0 || mmapq_pending(q) != 0) {
		fprintf(stderr, "[%s] producer: final publish: %s, %u pending\n", v->name,
		        mmapq_strerror(r), mmapq_pending(q));
		_exit(1);
	}
	mmapq_close(q);
	free(buf);
	_exit(0);
}

static void bad_record(const struct variant *v, const char *path, uint64_t expected,
                       const struct mmapq_record *rec, const char *what)
{
	fprintf(stderr, "[%s] consumer: first bad index %" PRIu64 ": %s (record seq %" PRIu64
	        " len %" PRIu32 ")\n", v->name, expected, what, rec->seq, rec->len);
	dump(path, "consumer found a bad record");
	_exit(1);
}

static void consumer(const struct variant *v, const char *path, uint64_t seed)
{
	struct mmapq *q = open_role(v, path, MMAPQ_ROLE_CONSUMER);
	struct mmapq_record many[BULK_RUN]; /* bulk: the records of the last call */
	int64_t vals[BULK_RUN];             /* ... or their values (mmapq_copy_many) */
	uint64_t expected = 0, rng = seed ^ 0x9e3779b97f4a7c15ull;
	uint32_t n;
	int r;

	while (expected < v->count) {
		uint32_t take;
		r = mmapq_available(q, mmapq_now_ns() + WAIT_NS, &n);
		if (r < 0) {
			fprintf(stderr, "[%s] consumer: waiting for record %" PRIu64 ": %s\n", v->name,
			        expected, mmapq_strerror(r));
			dump(path, "consumer wait failed");
			_exit(1);
		}
		if (n == 0)
			continue;
		take = 1 + (uint32_t)(rng_next(&rng) % n);
		for (uint32_t i = 0, got = 0, at = 0; i < take; i++, expected++) {
			struct mmapq_record rec;
			memset(&rec, 0, sizeof(rec));
			if (v->bulk) {
				/* up to BULK_RUN at a time, the first call at a random index */
				if (at == got) {
					uint32_t want = 1 + (uint32_t)(rng_next(&rng) % BULK_RUN);
					/* int: now and then the values alone (mmapq_copy_many) */
					if (v->format == MMAPQ_FORMAT_INT && rng_next(&rng) % 2) {
						r = mmapq_copy_many(q, i, want, vals, sizeof(vals[0]));
						for (int k = 0; k < r; k++)
							many[k] = (struct mmapq_record){expected + (uint64_t)k, 8, &vals[k]};
					} else {
						r = mmapq_get_many(q, i, want, many);
					}
					if (r <= 0 || (uint32_t)r != (want < n - i ? want : n - i)) {
						fprintf(stderr, "[%s] consumer: get_many(%u, %u) of %u for record %" PRIu64
						        ": %d (%s)\n", v->name, i, want, n, expected, r,
						        r < 0 ? mmapq_strerror(r) : "a wrong count");
						bad_record(v, path, expected, &rec, "mmapq_get_many failed");
					}
					got = (uint32_t)r;
					at = 0;
				}
				rec = many[at++];
			} else {
				r = mmapq_get(q, i, &rec);
				if (r < 0) {
					fprintf(stderr, "[%s] consumer: get(%u) for record %" PRIu64 ": %s\n", v->name,
					        i, expected, mmapq_strerror(r));
					bad_record(v, path, expected, &rec, "mmapq_get failed");
				}
			}
			if (rec.seq != expected)
				bad_record(v, path, expected, &rec, "wrong sequence number (missing or doubled)");
			if (v->format == MMAPQ_FORMAT_INT) {
				int64_t val;
				if (rec.len != sizeof(val))
					bad_record(v, path, expected, &rec, "wrong length");
				memcpy(&val, rec.data, sizeof(val));
				if (val != (int64_t)expected) {
					char what[80];
					snprintf(what, sizeof(what), "value %" PRId64, val);
					bad_record(v, path, expected, &rec, what);
				}
			} else {
				const uint8_t *d = rec.data;
				if (rec.len != line_len(v, expected))
					bad_record(v, path, expected, &rec, "wrong length");
				for (uint32_t k = 0; k < rec.len; k++)
					if (d[k] != line_byte(v, expected, k)) {
						char what[80];
						snprintf(what, sizeof(what), "payload byte %u is 0x%02x, expected 0x%02x",
						         k, d[k], line_byte(v, expected, k));
						bad_record(v, path, expected, &rec, what);
					}
			}
		}
		r = mmapq_release(q, take);
		if (r < 0) {
			fprintf(stderr, "[%s] consumer: release(%u) at record %" PRIu64 ": %s\n", v->name, take,
			        expected, mmapq_strerror(r));
			dump(path, "consumer release failed");
			_exit(1);
		}
	}
	/* nothing after the last record */
	r = mmapq_available(q, 0, &n);
	if (r != -EAGAIN) {
		fprintf(stderr, "[%s] consumer: after %" PRIu64 " records available() = %d, n = %u:"
		        " records beyond the stream\n", v->name, expected, r, r == 0 ? n : 0);
		dump(path, "extra records");
		_exit(1);
	}
	mmapq_close(q);
	_exit(0);
}

static int run(const struct variant *v, uint64_t seed)
{
	char *dir = tu_mkdtemp("stream");
	char *path = tu_path(dir, "stream.q");
	uint64_t t0 = tu_now_ms();
	pid_t pc, pp;
	int sc, sp, fails = 0;

	fflush(NULL);
	pc = fork();
	if (pc == 0)
		consumer(v, path, seed);
	pp = fork();
	if (pp == 0)
		producer(v, path, seed);
	if (pc < 0 || pp < 0) {
		perror("fork");
		exit(99);
	}
	/* wait for both; if one fails, stop the other at once */
	sp = sc = -ETIMEDOUT;
	while (sp == -ETIMEDOUT || sc == -ETIMEDOUT) {
		int left = v->timeout_ms - (int)(tu_now_ms() - t0);
		int pfd[2] = {-1, -1}, n = 0;
		struct pollfd pf[2];
		if (left <= 0)
			break;
		if (sp == -ETIMEDOUT)
			pfd[n++] = (int)syscall(SYS_pidfd_open, pp, 0);
		if (sc == -ETIMEDOUT)
			pfd[n++] = (int)syscall(SYS_pidfd_open, pc, 0);
		for (int i = 0; i < n; i++)
			pf[i] = (struct pollfd){.fd = pfd[i], .events = POLLIN};
		poll(pf, (nfds_t)n, left);
		for (int i = 0; i < n; i++)
			close(pfd[i]);
		if (sp == -ETIMEDOUT)
			sp = tu_wait(pp, 0);
		if (sc == -ETIMEDOUT)
			sc = tu_wait(pc, 0);
		if ((sp != -ETIMEDOUT && tu_exit_code(sp) != 0) || (sc != -ETIMEDOUT && tu_exit_code(sc) != 0))
			break;
	}
	if (sp == -ETIMEDOUT || sc == -ETIMEDOUT) {
		bool failed_peer = (sp != -ETIMEDOUT && tu_exit_code(sp) != 0) ||
		                   (sc != -ETIMEDOUT && tu_exit_code(sc) != 0);
		if (!failed_peer) {
			fprintf(stderr, "[%s] FAIL: %s%sdid not finish within %d ms\n", v->name,
			        sp == -ETIMEDOUT ? "producer " : "", sc == -ETIMEDOUT ? "consumer " : "",
			        v->timeout_ms);
			dump(path, "timeout");
			fails++;
		}
	}
	if (sp == -ETIMEDOUT)
		tu_kill(pp);
	if (sc == -ETIMEDOUT)
		tu_kill(pc);
	if (sp != -ETIMEDOUT && tu_exit_code(sp) != 0) {
		fprintf(stderr, "[%s] FAIL: producer ended with %d\n", v->name, tu_exit_code(sp));
		fails++;
	}
	if (sc != -ETIMEDOUT && tu_exit_code(sc) != 0) {
		fprintf(stderr, "[%s] FAIL: consumer ended with %d\n", v->name, tu_exit_code(sc));
		fails++;
	}
	if (!fails) {
		struct mmapq_params p = {.path = path, .role = MMAPQ_ROLE_OBSERVER};
		struct mmapq_error e;
		struct mmapq *q = NULL;
		struct mmapq_status st;
		if (mmapq_open(&p, &q, &e) < 0 || mmapq_status(q, &st) < 0) {
			fprintf(stderr, "[%s] FAIL: cannot inspect the queue afterwards: %s\n", v->name, e.msg);
			fails++;
		} else if (st.head != v->count || st.tail != v->count || st.used_bytes || !st.clean ||
		           st.salvage.count || st.producer.dropped ||
		           st.producer.recoveries || st.consumer.recoveries || st.producer.attaches != 1 ||
		           st.consumer.attaches != 1) {
			fprintf(stderr, "[%s] FAIL: final state head %" PRIu64 " tail %" PRIu64
			        " (want %" PRIu64 "), used %" PRIu64 " bytes, clean %d, salvages %" PRIu64
			        ", dropped %" PRIu64 " recoveries %" PRIu64 "/%" PRIu64 "\n",
			        v->name, st.head, st.tail, v->count, st.used_bytes, st.clean,
			        st.salvage.count, st.producer.dropped,
			        st.producer.recoveries, st.consumer.recoveries);
			dump(path, "final state");
			fails++;
		}
		mmapq_close(q);
	}
	printf("%-34s %8" PRIu64 " records, ring %6" PRIu64 " B: %6" PRIu64 " ms  %s (seed %" PRIu64 ")\n",
	       v->name, v->count, v->size, tu_now_ms() - t0, fails ? "FAILED" : "ok", seed);
	fflush(stdout);
	tu_rmdir_r(dir);
	free(path);
	free(dir);
	return fails;
}

int main(int argc, char **argv)
{
	const struct variant vs[] = {
		{"int, 16 KiB", MMAPQ_FORMAT_INT, 8, 16384, MMAPQ_SYNC_NEVER, 1000000, 300, 60000, false},
		{"line 0..100 B, 32 KiB", MMAPQ_FORMAT_LINE, 100, 32768, MMAPQ_SYNC_NEVER, 1000000, 300, 60000, false},
		{"int, 64 B (4 records)", MMAPQ_FORMAT_INT, 8, 64, MMAPQ_SYNC_NEVER, 100000, 2, 60000, false},
		{"line 0..13 B, 128 B", MMAPQ_FORMAT_LINE, 13, 128, MMAPQ_SYNC_NEVER, 50000, 5, 60000, false},
		{"binary 0..1016 B, 4 KiB", MMAPQ_FORMAT_BINARY, 1016, 4096, MMAPQ_SYNC_NEVER, 200000, 8, 60000, false},
		{"binary 0..4088 B, 64 KiB", MMAPQ_FORMAT_BINARY, 4088, 65536, MMAPQ_SYNC_NEVER, 100000, 30, 60000, false},
		{"int, sync=batch", MMAPQ_FORMAT_INT, 8, 1024, MMAPQ_SYNC_BATCH, 20000, 40, 60000, false},
		{"line, sync=always", MMAPQ_FORMAT_LINE, 32, 512, MMAPQ_SYNC_ALWAYS, 2000, 8, 60000, false},
		{"int bulk, 16 KiB", MMAPQ_FORMAT_INT, 8, 16384, MMAPQ_SYNC_NEVER, 1000000, 300, 60000, true},
		{"line bulk 0..100 B, 32 KiB", MMAPQ_FORMAT_LINE, 100, 32768, MMAPQ_SYNC_NEVER, 300000, 300,
		 60000, true},
		{"int bulk, 64 B (4 records)", MMAPQ_FORMAT_INT, 8, 64, MMAPQ_SYNC_NEVER, 100000, 2, 60000, true},
		{"line bulk 0..13 B, 128 B", MMAPQ_FORMAT_LINE, 13, 128, MMAPQ_SYNC_NEVER, 50000, 5, 60000, true},
		{"binary bulk 0..1016 B, 4 KiB", MMAPQ_FORMAT_BINARY, 1016, 4096, MMAPQ_SYNC_NEVER, 200000, 8,
		 60000, true},
		{"int bulk, sync=always", MMAPQ_FORMAT_INT, 8, 256, MMAPQ_SYNC_ALWAYS, 2000, 8, 60000, true},
	};
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : (uint64_t)getpid() * 1000003u + tu_now_ms();
	int fails = 0;

	if (!seed)
		seed = 1;
	for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++)
		fails += run(&vs[i], seed);
	return fails ? 1 : 0;
}
