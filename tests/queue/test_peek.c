/* SPDX-License-Identifier: MIT */
/*
 * test_peek -- mmapq_peek never returns a torn record, nor one under the
 * wrong sequence number, however fast the ring's bytes are reused.
 *
 * A producer and two named consumers (children) run flat out through a
 * ring of RING bytes, records of 0..MAXREC bytes whose length and bytes
 * are a function of their sequence number (so that frames, and the padding
 * at the ring's end, land at every offset); the parent, as an observer,
 * peeks at [head, tail) over and over, in order and at random sequence
 * numbers, while they move RECORDS records, all four on one CPU (see
 * main).  Every successful peek must hold exactly the record its sequence
 * number says: a copy that raced with the producer's reuse of its bytes
 * must be thrown away (-ENOENT: consumed meanwhile, -EAGAIN: the walk kept
 * being overtaken), never returned, and never taken for damage
 * (-EBADMSG).  Now and then a new observer opens the queue and reads its
 * status and consumers, which must never find the moving positions out of
 * bounds.  The children stop when the parent says so through a flag in a
 * shared anonymous mapping (checked once per batch), or after MAX_MS.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define RING       256u
#define MAXREC     56u      /* mmapq_frame_size(56) = 64 = RING / 4 */
#define RECORDS    200000u  /* records moved under the observer's eyes */
#define MIN_PEEKS  20000u   /* fewer successful peeks than this, or   */
#define MIN_RECS   20000u   /* fewer records moved: the test proves nothing */
#define MAX_MS     10000u   /* the observer's time budget */

struct shared {
	int stop;                 /* set by the parent */
	uint64_t consumed[2];     /* by each consumer, for the report */
	uint64_t bad_seq[2];      /* a consumer saw a wrong record: its seq + 1 */
};

static struct shared *g_sh;
static const char *g_path;

static uint32_t rec_len(uint64_t seq)
{
	return (uint32_t)((seq * 7 + seq / 3) % (MAXREC + 1));
}

static uint8_t rec_byte(uint64_t seq, uint32_t i)
{
	return (uint8_t)(seq * 131 + i * 7 + 1);
}

static void rec_fill(uint64_t seq, uint8_t *b)
{
	for (uint32_t i = 0, n = rec_len(seq); i < n; i++)
		b[i] = rec_byte(seq, i);
}

static bool rec_ok(const struct mmapq_record *r)
{
	const uint8_t *d = r->data;

	if (r->len != rec_len(r->seq))
		return false;
	for (uint32_t i = 0; i < r->len; i++)
		if (d[i] != rec_byte(r->seq, i))
			return false;
	return true;
}

static struct mmapq *open_role(enum mmapq_role role, const char *name)
{
	struct mmapq_params p = {.path = g_path, .role = role, .size = RING, .max_record = MAXREC,
	                         .format = MMAPQ_FORMAT_BINARY, .file_mode = 0600, .consumer = name};
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &e);

	if (r < 0) {
		fprintf(stderr, "test_peek: %s: %s\n", role == MMAPQ_ROLE_PRODUCER ? "producer" :
		        role == MMAPQ_ROLE_CONSUMER ? "consumer" : "observer", e.msg);
		_exit(99);
	}
	return q;
}

static bool stopping(void)
{
	return __atomic_load_n(&g_sh->stop, __ATOMIC_RELAXED);
}

static void producer(void)
{
	struct mmapq *q = open_role(MMAPQ_ROLE_PRODUCER, NULL);
	uint64_t end = tu_now_ms() + MAX_MS + 5000;
	uint8_t buf[MAXREC];

	while (!stopping() && tu_now_ms() < end) {
		uint64_t room, used = 0, seq = mmapq_next_seq(q);
		int r = mmapq_reserve(q, rec_len(seq), mmapq_now_ns() + 100000000u, &room);

		if (r == -ETIMEDOUT)
			continue;
		if (r < 0)
			_exit(1);
		for (; used + mmapq_frame_size(rec_len(seq)) <= room; seq++) {
			used += mmapq_frame_size(rec_len(seq));
			rec_fill(seq, buf);
			if (mmapq_put(q, buf, rec_len(seq)) < 0)
				_exit(2);
		}
		if (mmapq_publish(q) < 0)
			_exit(1);
	}
	mmapq_close(q);
	_exit(0);
}

static void consumer(int i)
{
	struct mmapq *q = open_role(MMAPQ_ROLE_CONSUMER, i ? "b" : "a");
	uint64_t end = tu_now_ms() + MAX_MS + 5000, seed = (uint64_t)getpid();

	while (!stopping() && tu_now_ms() < end) {
		uint32_t n, take;
		int r = mmapq_available(q, mmapq_now_ns() + 100000000u, &n);

		if (r == -ETIMEDOUT)
			continue;
		if (r < 0)
			_exit(1);
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		take = 1 + (uint32_t)((seed >> 33) % n); /* the consumers at different paces */
		for (uint32_t k = 0; k < take; k++) {
			struct mmapq_record rec;

			if (mmapq_get(q, k, &rec) < 0)
				_exit(1);
			if (!rec_ok(&rec) && !g_sh->bad_seq[i])
				g_sh->bad_seq[i] = rec.seq + 1;
		}
		if (mmapq_release(q, take) < 0)
			_exit(1);
		__atomic_store_n(&g_sh->consumed[i], g_sh->consumed[i] + take, __ATOMIC_RELAXED);
	}
	mmapq_close(q);
	_exit(0);
}

static pid_t start(void (*fn)(int), int arg)
{
	pid_t pid = tu_fork();

	if (pid == 0)
		fn(arg);
	return pid;
}

static void run_producer(int arg)
{
	(void)arg;
	producer();
}

/* A fresh observer: open, status, consumers; what it says if it fails */
static int fresh_observer(char *why, size_t size)
{
	struct mmapq_params p = {.path = g_path, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_status st;
	struct mmapq_error e;
	struct mmapq *q;
	int r = mmapq_open(&p, &q, &e);

	if (r < 0) {
		snprintf(why, size, "open: %s", e.msg);
		return r;
	}
	r = mmapq_status(q, &st);
	if (r < 0)
		snprintf(why, size, "status: %s", mmapq_strerror(r));
	else if ((r = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX)) < 0)
		snprintf(why, size, "consumers: %s", mmapq_strerror(r));
	else if (r != 2 && (r = -EPROTO))
		snprintf(why, size, "consumers: not 2");
	mmapq_close(q);
	return r < 0 ? r : 0;
}

static uint64_t consumed(void)
{
	uint64_t a = __atomic_load_n(&g_sh->consumed[0], __ATOMIC_RELAXED);
	uint64_t b = __atomic_load_n(&g_sh->consumed[1], __ATOMIC_RELAXED);

	return a < b ? a : b;
}

int main(void)
{
	char *dir = tu_mkdtemp("peek");
	char *path = tu_path(dir, "queue");
	uint64_t ok = 0, gone = 0, again = 0, tries = 0, t0, bad = 0, first_bad_seq = 0, opens = 0;
	uint64_t rng = 88172645463325252ull;
	struct mmapq *obs;
	const struct mmapq_header *hdr;
	pid_t kids[3];
	int failed = 0, st;
	char small[4];
	struct mmapq_record rec;
	uint8_t buf[MAXREC];

	g_path = path;
	g_sh = mmap(NULL, sizeof(*g_sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g_sh == MAP_FAILED) {
		perror("mmap");
		return 99;
	}
	/* the file and both consumers exist before anyone races */
	mmapq_close(open_role(MMAPQ_ROLE_PRODUCER, NULL));
	mmapq_close(open_role(MMAPQ_ROLE_CONSUMER, "a"));
	mmapq_close(open_role(MMAPQ_ROLE_CONSUMER, "b"));
	obs = open_role(MMAPQ_ROLE_OBSERVER, NULL);
	{
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		hdr = fd < 0 ? MAP_FAILED : mmap(NULL, sizeof(*hdr), PROT_READ, MAP_SHARED, fd, 0);
		if (hdr == MAP_FAILED) {
			perror("map the header");
			return 99;
		}
		close(fd);
	}
	if (mmapq_max_record(obs) != MAXREC ||
	    mmapq_peek(obs, 0, small, sizeof(small), &rec) != -EMSGSIZE) {
		fprintf(stderr, "test_peek: FAIL: max_record %u, a 4-byte buffer not refused\n",
		        mmapq_max_record(obs));
		failed = 1;
	}
	/* All on one CPU: the producer and the consumers then run only when
	 * the scheduler preempts the observer, wherever it is, so some
	 * preemptions fall inside a peek's walk and copy, the window a racy
	 * peek loses in (with two CPUs the others move on while the observer
	 * is inside it far too rarely to notice). */
	{
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &one);
		if (sched_setaffinity(0, sizeof(one), &one) < 0)
			fprintf(stderr, "test_peek: sched_setaffinity: %s (running unpinned)\n",
			        strerror(errno));
	}
	kids[0] = start(consumer, 0);
	kids[1] = start(consumer, 1);
	kids[2] = start(run_producer, 0);
	for (int i = 0; i < 3; i++)
		tu_track(kids[i]);
	atexit(tu_kill_tracked);

	t0 = tu_now_ms();
	for (uint64_t round = 0; !failed && consumed() < RECORDS && tu_now_ms() - t0 < MAX_MS; round++) {
		/* head and tail straight from the header (mmapq_status takes
		 * fcntl calls: the peeks would be a small part of the loop) */
		uint64_t head = __atomic_load_n(&hdr->floor.seq, __ATOMIC_ACQUIRE);
		uint64_t tail = __atomic_load_n(&hdr->producer.tail, __ATOMIC_ACQUIRE);
		char why[600];

		if (round % 512 == 0) {
			opens++;
			if (fresh_observer(why, sizeof(why)) < 0) {
				fprintf(stderr, "test_peek: FAIL: a new observer on the moving queue: %s\n",
				        why);
				failed = 1;
				break;
			}
		}
		for (uint64_t k = 0; k < RING / 8 && head + k <= tail; k++) {
			/* in order mostly (the walk goes on from the last peek),
			 * now and then anywhere in what was kept (a walk from
			 * floor) */
			uint64_t seq = head + k;
			int r;

			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			if (rng % 8 == 0 && tail > head)
				seq = head + (rng >> 8) % (tail - head);
			tries++;
			memset(&rec, 0, sizeof(rec));
			r = mmapq_peek(obs, seq, buf, sizeof(buf), &rec);
			if (r == -ENOENT) {
				gone++;
				continue;
			}
			if (r == -EAGAIN) {
				again++;
				continue;
			}
			if (r < 0 || rec.seq != seq || rec.data != buf) {
				fprintf(stderr, "test_peek: FAIL: peek(%" PRIu64 ") (head %" PRIu64 " tail %"
				        PRIu64 "): %d (%s), seq %" PRIu64 " len %u\n", seq, head, tail, r,
				        mmapq_strerror(r), rec.seq, rec.len);
				failed = 1;
				break;
			}
			ok++;
			if (!rec_ok(&rec) && bad++ == 0)
				first_bad_seq = seq;
		}
	}
	__atomic_store_n(&g_sh->stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 3; i++) {
		st = tu_wait(kids[i], 10000);
		if (tu_exit_code(st) != 0) {
			fprintf(stderr, "test_peek: FAIL: the %s did not exit cleanly (%d)\n",
			        i == 2 ? "producer" : i ? "consumer b" : "consumer a", tu_exit_code(st));
			failed = 1;
			if (st == -ETIMEDOUT)
				tu_kill(kids[i]);
		}
		tu_untrack(kids[i]);
	}
	if (bad) {
		fprintf(stderr, "test_peek: FAIL: %" PRIu64 " of %" PRIu64 " successful peeks returned"
		        " a torn or wrong record; the first: seq %" PRIu64 "\n", bad, ok, first_bad_seq);
		failed = 1;
	}
	for (int i = 0; i < 2; i++)
		if (g_sh->bad_seq[i]) {
			fprintf(stderr, "test_peek: FAIL: consumer %c got a wrong record as seq %" PRIu64
			        "\n", 'a' + i, g_sh->bad_seq[i] - 1);
			failed = 1;
		}
	if (ok < MIN_PEEKS || consumed() < MIN_RECS) {
		fprintf(stderr, "test_peek: FAIL: only %" PRIu64 " successful peeks and %" PRIu64
		        " records moved in %u ms (want %u and %u): the race was not exercised\n", ok,
		        consumed(), MAX_MS, MIN_PEEKS, MIN_RECS);
		failed = 1;
	}
	printf("test_peek: %" PRIu64 " peeks: %" PRIu64 " ok, %" PRIu64 " consumed meanwhile, %"
	       PRIu64 " overtaken, %" PRIu64 " wrong; %" PRIu64 " observers opened; %" PRIu64
	       " records consumed by the slower consumer, %" PRIu64 " ms\n", tries, ok, gone, again,
	       bad, opens, consumed(), tu_now_ms() - t0);
	if (failed)
		tu_dump_queue(path, "failure");
	munmap((void *)hdr, sizeof(*hdr));
	mmapq_close(obs);
	if (!failed)
		tu_rmdir_r(dir);
	free(path);
	free(dir);
	return failed;
}
