/* SPDX-License-Identifier: MIT */
/*
 * test_threads -- the queue used by two threads of one process: a producer
 * thread and a consumer thread each mmapq_open the same file (the role locks
 * are OFD locks, owned by the open file description, so two opens in one
 * process exclude each other exactly as two processes do) and pass 200,000
 * binary records of varying length through a small ring (1 KiB, so both
 * sides block on full and on empty thousands of times, and frames and
 * padding land at every offset), twice: with spin_us 0 and 50 (the
 * lock-free look at the peer's position before a sleep); then a third time
 * as int records (16-byte frames), put with mmapq_put_many and read with
 * mmapq_get_many or mmapq_copy_many; then a fourth time as whole-ring
 * handovers (below).  The producer puts as much as mmapq_reserve's room
 * promises, and every put within it must succeed.  Every record is
 * checked: sequence number, length and every payload byte, in order.
 *
 * Why threads: ThreadSanitizer understands C11/GCC atomics and pthread
 * mutexes within one process; it does not understand synchronisation
 * between processes (and neither does helgrind, which also models neither
 * our futex condition variable nor the atomics' ordering).  So the TSan
 * build of this test (tests/analyze.sh) is what checks the library's memory
 * ordering: frame writes before the release store of tail, frame reads
 * after the acquire load, and the reuse of a frame's bytes only after the
 * consumers released them.  That last order comes from the mutex: the
 * producer writes only into its reservation, whose bytes it takes under
 * the mutex (or an idle one, computed under it at its previous publish),
 * after the consumer's release unlocked it; the lock-free look at floor
 * in mmapq_reserve only says how much room to expect (tests/analyze.sh
 * says why floor's orders have no mutation control).
 *
 * The handover pass makes the producer reuse the whole ring each round:
 * it fills the ring, waits (a relaxed look at floor in the TSan build: no
 * happens-before edge from the consumer) until the consumer has released
 * all of it, and reserves again, its room then the whole ring, less what
 * padding at the end may take, exactly.
 *
 * One catch: TSan keeps its shadow state per VIRTUAL address.  Two
 * mmapq_open calls map the file twice, at two addresses, and TSan would see
 * two unrelated memory ranges: no race could ever be reported, and no
 * synchronisation seen.  So the TSan build defines
 * MMAPQ_THREADS_SHARED_MAPPING: this file is then compiled with the
 * library's sources, includes its private header (queue.h: the handle) and,
 * once both threads have attached normally, points the consumer's handle at
 * the producer's mapping (the same file pages, now at one address).
 * Everything after that -- every frame access, the
 * positions, the mutex -- is visible to TSan on the addresses both threads
 * really use.  With --control the producer also rewrites a byte of each
 * record after publishing it (a real data race, with the same value so the
 * check still passes): TSan must report it, which proves the analysis is
 * not blind (--two-mappings --control shows the opposite: the same race,
 * through two mappings, goes unreported).  The ordinary build (ctest, label fast) uses the library as a
 * program would, with two mappings.
 *
 * Nothing sleeps: every wait has a deadline, and the main thread joins with
 * a deadline too; a stall prints the queue state.
 */
#ifdef MMAPQ_THREADS_SHARED_MAPPING
#include <sys/mman.h>

#include "queue.h" /* the library's handle, for the shared-mapping (TSan) build */
#endif

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define N_RECORDS     200000u
#define RING          1024u
#define RECORD_SIZE   40u                     /* max_record: frames of 16..48 bytes */
#define MAX_BATCH     (RING / 16u)            /* records in a ring, at most */
#define WAIT_NS       (1000ull * 1000 * 1000) /* one wait; a stop flag is checked after it */
#define STALL_WAITS   10                       /* this many empty waits in a row: stalled */
#define JOIN_TIMEOUT_S 50

static char *g_path;
static bool g_control;
static bool g_two_mappings;          /* shared-mapping build: do not alias (demonstration) */
static int g_failed;                 /* atomic: a thread failed, both stop */
static char g_why[2][512];           /* per thread: the first failure */
static pthread_barrier_t g_attached; /* both opened; main may alias; go */
static struct mmapq *g_q[2];         /* [0] producer, [1] consumer */
static uint32_t g_spin_us;           /* mmapq_params.spin_us of this pass */
static bool g_ints;                  /* this pass: format int, mmapq_put_many/mmapq_get_many */
static bool g_handover;              /* this pass: whole rings, each released before the next */

static void thread_fail(int who, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void thread_fail(int who, const char *fmt, ...)
{
	if (!g_why[who][0]) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(g_why[who], sizeof(g_why[who]), fmt, ap);
		va_end(ap);
	}
	__atomic_store_n(&g_failed, 1, __ATOMIC_SEQ_CST);
}

static bool failed(void)
{
	return __atomic_load_n(&g_failed, __ATOMIC_SEQ_CST) != 0;
}

/* Record seq: 8 bytes of seq, then a pattern; length 8..RECORD_SIZE. */
static uint32_t rec_len(uint64_t seq)
{
	return 8u + (uint32_t)(seq % (RECORD_SIZE - 8u + 1u));
}

static uint8_t rec_byte(uint64_t seq, uint32_t i)
{
	return (uint8_t)(seq * 131u + i * 7u + 1u);
}

static void rec_fill(uint64_t seq, uint8_t *buf)
{
	uint32_t len = rec_len(seq);

	memcpy(buf, &seq, sizeof(seq));
	for (uint32_t i = 8; i < len; i++)
		buf[i] = rec_byte(seq, i);
}

static uint64_t rnd_next(uint64_t *s)
{
	/* xorshift64: batch sizes, different every run only through the seed */
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static struct mmapq *open_role(int who, enum mmapq_role role)
{
	struct mmapq_params p = {
		.path = g_path,
		.role = role,
		.size = RING,
		.max_record = g_ints ? 8 : RECORD_SIZE,
		.format = g_ints ? MMAPQ_FORMAT_INT : MMAPQ_FORMAT_BINARY,
		.sync = MMAPQ_SYNC_NEVER,
		.file_mode = 0600,
		.spin_us = g_spin_us,
	};
	struct mmapq_error err;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &err);

	if (r < 0) {
		thread_fail(who, "mmapq_open as %s: %s (%s)", who ? "consumer" : "producer",
		            mmapq_strerror(r), err.msg);
		return NULL;
	}
	return q;
}

/*
 * Handover pass, producer: wait until the consumer has released every
 * record up to seq, their frames ending at byte, without the mutex and, in
 * the TSan build, without an acquire (so TSan sees no ordering from the
 * consumer here: the next mmapq_reserve's look at floor must provide it;
 * it reads floor.byte, which the consumer stores after floor.seq, so that
 * is what is waited for).  0, or -1 after STALL_WAITS waits or once the
 * other thread failed.
 */
static int wait_released(uint64_t seq, uint64_t byte)
{
	uint64_t give_up = mmapq_now_ns() + STALL_WAITS * WAIT_NS;

	for (;;) {
		uint64_t floor, floor_byte;
#ifdef MMAPQ_THREADS_SHARED_MAPPING
		floor = __atomic_load_n(&g_q[0]->h->floor.seq, __ATOMIC_RELAXED);
		floor_byte = __atomic_load_n(&g_q[0]->h->floor.byte, __ATOMIC_RELAXED);
#else
		struct mmapq_status st;
		int r = mmapq_status(g_q[0], &st);

		if (r < 0 && r != -EAGAIN) {
			thread_fail(0, "producer: mmapq_status: %s", mmapq_strerror(r));
			return -1;
		}
		/* -EAGAIN: floor kept moving while status looked (the consumer
		 * releasing a 1 KiB ring): not there yet, look again */
		floor = r < 0 ? UINT64_MAX : st.head;
		floor_byte = r < 0 ? 0 : st.used_bytes == 0 ? byte : 0; /* the pair, as one */
#endif
		if (floor == seq && floor_byte == byte)
			return 0;
		if (failed())
			return -1;
		if (mmapq_now_ns() >= give_up) {
			thread_fail(0, "producer: the consumer released up to %" PRIu64 " of %" PRIu64
			            " in %d s", floor, seq, STALL_WAITS);
			return -1;
		}
		sched_yield();
	}
}

/* Bytes a record of len takes at byte position tail: its frame, and the
 * padding before it where it does not fit before the ring's end. */
static uint64_t need_at(uint64_t tail, uint32_t len)
{
	uint64_t end = RING - tail % RING, fb = mmapq_frame_size(len);

	return fb <= end ? fb : end + fb;
}

static uint32_t len_of(uint64_t seq)
{
	return g_ints ? 8u : rec_len(seq);
}

static void *producer(void *arg)
{
	uint64_t rnd = 0x9e3779b97f4a7c15ull, seq = 0, tail_byte = 0;
	uint8_t buf[RECORD_SIZE];
	int64_t vals[MAX_BATCH];
	int idle = 0;

	(void)arg;
	g_q[0] = open_role(0, MMAPQ_ROLE_PRODUCER);
	pthread_barrier_wait(&g_attached); /* both attached */
	pthread_barrier_wait(&g_attached); /* main has (maybe) aliased the mappings */
	if (!g_q[0] || failed())
		return NULL;
	while (seq < N_RECORDS && !failed()) {
		uint64_t room = 0, used = 0;
		uint32_t batch, most;
		int r;

		if (g_handover && wait_released(seq, tail_byte) < 0)
			break;
		r = mmapq_reserve(g_q[0], len_of(seq), mmapq_now_ns() + WAIT_NS, &room);

		if (r == -ETIMEDOUT) {
			if (++idle >= STALL_WAITS)
				thread_fail(0, "producer: no room for %d s at seq %" PRIu64, idle, seq);
			continue;
		}
		if (r < 0) {
			thread_fail(0, "producer: mmapq_reserve at seq %" PRIu64 ": %s", seq, mmapq_strerror(r));
			break;
		}
		idle = 0;
		if (room < mmapq_frame_size(len_of(seq))) {
			thread_fail(0, "producer: mmapq_reserve's room %" PRIu64 " is less than the frame"
			            " of the record it was asked for", room);
			break;
		}
		if (g_handover) {
			/* the ring is empty: all of it free, less what padding
			 * at its end may take */
			uint64_t end = RING - tail_byte % RING, w = mmapq_frame_size(g_ints ? 8 : RECORD_SIZE);
			uint64_t want = RING <= end ? RING : RING - (end < w ? end : w);

			if (room != want) {
				thread_fail(0, "producer: room %" PRIu64 " after the consumer released all at"
				            " seq %" PRIu64 " (tail at ring offset %" PRIu64 "), want %" PRIu64,
				            room, seq, tail_byte % RING, want);
				break;
			}
		}
		/* how many the room surely holds; a batch of 1..that many:
		 * sometimes one record, sometimes all of them (always all in the
		 * handover pass) */
		for (most = 0; most < MAX_BATCH && seq + most < N_RECORDS &&
		     used + mmapq_frame_size(len_of(seq + most)) <= room; most++)
			used += mmapq_frame_size(len_of(seq + most));
		if (most == 0) {
			thread_fail(0, "producer: room %" PRIu64 " holds no record at seq %" PRIu64, room, seq);
			break;
		}
		batch = g_handover ? most : 1u + (uint32_t)(rnd_next(&rnd) % most);
		if (g_ints) {
			/* the whole batch in one call */
			for (uint32_t i = 0; i < batch; i++) {
				vals[i] = (int64_t)(seq + i);
				tail_byte += need_at(tail_byte, 8);
			}
			r = mmapq_put_many(g_q[0], vals, sizeof(vals[0]), batch);
			if (r != (int)batch) {
				thread_fail(0, "producer: mmapq_put_many of %" PRIu32 " at seq %" PRIu64
				            " within room %" PRIu64 ": %d", batch, seq, room, r);
				return NULL;
			}
			seq += batch;
		}
		for (uint32_t i = 0; !g_ints && i < batch; i++, seq++) {
			if (mmapq_next_seq(g_q[0]) != seq) {
				thread_fail(0, "producer: next seq is %" PRIu64 ", expected %" PRIu64,
				            mmapq_next_seq(g_q[0]), seq);
				return NULL;
			}
			rec_fill(seq, buf);
			r = mmapq_put(g_q[0], buf, rec_len(seq));
			if (r < 0) {
				thread_fail(0, "producer: mmapq_put seq %" PRIu64 " within room %" PRIu64 ": %s",
				            seq, room, mmapq_strerror(r));
				return NULL;
			}
			tail_byte += need_at(tail_byte, rec_len(seq));
		}
		/* handover: then on until a put finds the ring full (it looks
		 * at floor first), so that the next reserve, once the consumer
		 * released it all, must look at floor to find any room */
		while (g_handover && seq < N_RECORDS) {
			int64_t v = (int64_t)seq;

			if (!g_ints)
				rec_fill(seq, buf);
			r = g_ints ? mmapq_put_many(g_q[0], &v, sizeof(v), 1) :
			             mmapq_put(g_q[0], buf, rec_len(seq));
			if (r == -ENOBUFS)
				break;
			if (r < 0) {
				thread_fail(0, "producer: put of seq %" PRIu64 " beyond the room: %s", seq,
				            mmapq_strerror(r));
				return NULL;
			}
			tail_byte += need_at(tail_byte, len_of(seq));
			seq++;
			batch++;
		}
		r = mmapq_publish(g_q[0]);
		if (r != (int)batch) {
			thread_fail(0, "producer: mmapq_publish returned %d, expected %" PRIu32, r, batch);
			break;
		}
#ifdef MMAPQ_THREADS_SHARED_MAPPING
		if (g_control) {
			/* Deliberate race (sensitivity check): rewrite, with the
			 * same value, the first payload byte of the record just
			 * published, which the consumer may be reading right now
			 * (through our own mapping).  Its frame ends at the tail. */
			volatile uint8_t *b = g_q[0]->ring +
			        ((tail_byte - mmapq_frame_size(len_of(seq - 1))) & (RING - 1)) + 8;
			b[0] = b[0];
		}
#endif
	}
	return NULL;
}

static void *consumer(void *arg)
{
	uint64_t rnd = 0x2545f4914f6cdd1dull, seq = 0;
	int idle = 0;

	(void)arg;
	g_q[1] = open_role(1, MMAPQ_ROLE_CONSUMER);
	pthread_barrier_wait(&g_attached);
	pthread_barrier_wait(&g_attached);
	if (!g_q[1] || failed())
		return NULL;
	while (seq < N_RECORDS && !failed()) {
		uint32_t n, take;
		int r = mmapq_available(g_q[1], mmapq_now_ns() + WAIT_NS, &n);

		if (r == -ETIMEDOUT) {
			if (++idle >= STALL_WAITS)
				thread_fail(1, "consumer: nothing available for %d s at seq %" PRIu64, idle, seq);
			continue;
		}
		if (r < 0) {
			thread_fail(1, "consumer: mmapq_available at seq %" PRIu64 ": %s", seq,
			            mmapq_strerror(r));
			break;
		}
		idle = 0;
		if (!n || n > MAX_BATCH) {
			thread_fail(1, "consumer: %" PRIu32 " records available (a ring holds %u at most)",
			            n, MAX_BATCH);
			break;
		}
		if (g_ints) {
			struct mmapq_record recs[MAX_BATCH] = {{0}};
			int64_t vals[MAX_BATCH];
			/* every other round the values alone */
			if (rnd_next(&rnd) & 1) {
				r = mmapq_copy_many(g_q[1], 0, n, vals, sizeof(vals[0]));
				for (int k = 0; k < r; k++)
					recs[k] = (struct mmapq_record){seq + (uint64_t)k, 8, &vals[k]};
			} else {
				r = mmapq_get_many(g_q[1], 0, n, recs);
			}
			if (r != (int)n) {
				thread_fail(1, "consumer: mmapq_get_many of %" PRIu32 " at seq %" PRIu64 ": %d", n,
				            seq, r);
				return NULL;
			}
			for (uint32_t i = 0; i < n; i++) {
				int64_t v = -1;
				if (recs[i].data)
					memcpy(&v, recs[i].data, sizeof(v));
				if (recs[i].seq != seq + i || recs[i].len != 8 || v != (int64_t)(seq + i)) {
					thread_fail(1, "consumer: expected seq %" PRIu64 ", got seq %" PRIu64
					            " length %" PRIu32 " value %" PRId64, seq + i, recs[i].seq,
					            recs[i].len, v);
					return NULL;
				}
			}
		}
		for (uint32_t i = 0; !g_ints && i < n; i++) {
			struct mmapq_record rec;
			const uint8_t *d;
			uint64_t s;

			r = mmapq_get(g_q[1], i, &rec);
			if (r < 0) {
				thread_fail(1, "consumer: mmapq_get %" PRIu32 " (seq %" PRIu64 "): %s", i,
				            seq + i, mmapq_strerror(r));
				return NULL;
			}
			d = rec.data;
			memcpy(&s, d, sizeof(s));
			if (rec.seq != seq + i || s != seq + i || rec.len != rec_len(seq + i)) {
				thread_fail(1, "consumer: expected seq %" PRIu64 " length %" PRIu32 ", got seq %"
				            PRIu64 " (payload says %" PRIu64 ") length %" PRIu32, seq + i,
				            rec_len(seq + i), rec.seq, s, rec.len);
				return NULL;
			}
			for (uint32_t j = 8; j < rec.len; j++)
				if (d[j] != rec_byte(seq + i, j)) {
					thread_fail(1, "consumer: seq %" PRIu64 " byte %" PRIu32 " is 0x%02x, expected"
					            " 0x%02x", seq + i, j, d[j], rec_byte(seq + i, j));
					return NULL;
				}
		}
		/* release all, or only part (the rest is read again next round) */
		take = (rnd_next(&rnd) & 3) ? n : 1u + (uint32_t)(rnd_next(&rnd) % n);
		r = mmapq_release(g_q[1], take);
		if (r < 0) {
			thread_fail(1, "consumer: mmapq_release %" PRIu32 " at seq %" PRIu64 ": %s", take, seq,
			            mmapq_strerror(r));
			break;
		}
		seq += take;
	}
	return NULL;
}

#ifdef MMAPQ_THREADS_SHARED_MAPPING
/* Point the consumer's handle at the producer's mapping (see the top). */
static void alias_mappings(struct mmapq *prod, struct mmapq *cons)
{
	munmap(cons->h, cons->map_size);
	cons->h = prod->h;
	cons->map_size = prod->map_size;
	cons->ring = prod->ring;
	/* the consumer's own entry of the table, in the producer's mapping */
	cons->me = &prod->h->consumers[cons->index];
	cons->wait_on = &cons->me->not_empty;
}
#endif

static int check_ofd_exclusion(void)
{
	/* a second producer in the same process is refused like another process */
	struct mmapq_params p = {
		.path = g_path, .role = MMAPQ_ROLE_PRODUCER, .size = RING,
		.max_record = g_ints ? 8 : RECORD_SIZE,
		.format = g_ints ? MMAPQ_FORMAT_INT : MMAPQ_FORMAT_BINARY,
		.file_mode = 0600,
	};
	struct mmapq_error err;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &err);

	if (r != -EBUSY) {
		fprintf(stderr, "test_threads: a second producer open in the same process returned %d (%s),"
		        " expected -EBUSY: %s\n", r, mmapq_strerror(r), r < 0 ? err.msg : "opened");
		mmapq_close(q);
		return -1;
	}
	return 0;
}

/* One run: both threads attach, N_RECORDS go through, both close. */
static int run_pass(const char *dir, uint32_t spin_us, bool ints, bool handover)
{
	pthread_t t[2];
	struct timespec until;
	struct mmapq_status st;
	char name[64];
	uint64_t t0 = tu_now_ms();
	int code = 0;

	snprintf(name, sizeof(name), "threads-spin%u%s%s.q", spin_us, ints ? "-int" : "",
	         handover ? "-handover" : "");
	g_path = tu_path(dir, name);
	g_spin_us = spin_us;
	g_ints = ints;
	g_handover = handover;
	g_failed = 0;
	memset(g_why, 0, sizeof(g_why));
	g_q[0] = g_q[1] = NULL;
	pthread_barrier_init(&g_attached, NULL, 3);
	if (pthread_create(&t[0], NULL, producer, NULL) || pthread_create(&t[1], NULL, consumer, NULL)) {
		fprintf(stderr, "test_threads: pthread_create failed\n");
		exit(99);
	}
	pthread_barrier_wait(&g_attached);
	if (g_q[0] && g_q[1]) {
		if (check_ofd_exclusion() < 0)
			thread_fail(0, "role exclusion within one process does not hold");
#ifdef MMAPQ_THREADS_SHARED_MAPPING
		if (!g_two_mappings)
			alias_mappings(g_q[0], g_q[1]);
#endif
	}
	pthread_barrier_wait(&g_attached);

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += JOIN_TIMEOUT_S;
	for (int i = 0; i < 2; i++) {
		int r = pthread_timedjoin_np(t[i], NULL, &until);
		if (r) {
			fprintf(stderr, "test_threads: FAIL: spin_us %u: the %s thread did not finish within"
			        " %d s (%s)\n", spin_us, i ? "consumer" : "producer", JOIN_TIMEOUT_S, strerror(r));
			tu_dump_queue(g_path, "thread hung");
			/* the threads are stuck in the library: no clean way out */
			_exit(1);
		}
	}
	for (int i = 0; i < 2; i++)
		if (g_why[i][0]) {
			fprintf(stderr, "test_threads: FAIL: spin_us %u%s%s: %s\n", spin_us,
			        ints ? ", int records in bulk" : "", handover ? ", whole-ring handovers" : "",
			        g_why[i]);
			code = 1;
		}
	if (!code && g_q[1] && mmapq_status(g_q[1], &st) == 0 &&
	    (st.head != N_RECORDS || st.tail != N_RECORDS)) {
		fprintf(stderr, "test_threads: FAIL: spin_us %u: head %" PRIu64 " tail %" PRIu64
		        ", expected %u both\n", spin_us, st.head, st.tail, N_RECORDS);
		code = 1;
	}
	if (code)
		tu_dump_queue(g_path, "failure");
#ifdef MMAPQ_THREADS_SHARED_MAPPING
	if (g_q[1] && !g_two_mappings)
		g_q[1]->h = NULL; /* the mapping is the producer's: unmapped once, below */
#endif
	mmapq_close(g_q[1]);
	mmapq_close(g_q[0]);
	pthread_barrier_destroy(&g_attached);
	if (!code)
		fprintf(stderr, "test_threads: OK: %u %srecords through two threads (%s, spin_us %u) in %"
		        PRIu64 " ms\n", N_RECORDS,
		        ints ? "int records in bulk, " : handover ? "whole-ring handovers, " : "",
#ifdef MMAPQ_THREADS_SHARED_MAPPING
		        g_two_mappings ? (g_control ? "two mappings, with a deliberate race TSan cannot see"
		                                    : "two mappings") :
		        g_control ? "one shared mapping, with a deliberate race" : "one shared mapping",
#else
		        "two mappings",
#endif
		        spin_us, tu_now_ms() - t0);
	free(g_path);
	g_path = NULL;
	return code;
}

int main(int argc, char **argv)
{
	/* spin_us 0: every wait sleeps at once; 50: the lock-free look at the
	 * peer's position before sleeping */
	static const uint32_t spins[] = {0, 50};
	char *dir;
	int code = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--control")) {
			g_control = true;
		} else if (!strcmp(argv[i], "--two-mappings")) {
			g_two_mappings = true;
		} else {
			fprintf(stderr, "usage: %s [--control] [--two-mappings]\n", argv[0]);
			return 64;
		}
	}
#ifndef MMAPQ_THREADS_SHARED_MAPPING
	if (g_control || g_two_mappings) {
		fprintf(stderr, "test_threads: --control and --two-mappings need the shared-mapping (TSan) build\n");
		return 64;
	}
#endif
	dir = tu_mkdtemp("threads");
	for (size_t i = 0; i < sizeof(spins) / sizeof(spins[0]); i++)
		code |= run_pass(dir, spins[i], false, false);
	code |= run_pass(dir, 0, true, false);
	code |= run_pass(dir, 0, false, true);
	tu_rmdir_r(dir);
	free(dir);
	return code;
}
