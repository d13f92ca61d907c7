/* SPDX-License-Identifier: MIT */
/*
 * test_peek -- mmapq_peek never returns a record under the wrong sequence
 * number, however fast the slots are reused.
 *
 * A producer and a consumer child run flat out through a queue of CAP slots
 * (records are int64 with value == sequence number); the parent, as an
 * observer, peeks at [head, tail) over and over while they move RECORDS
 * records, all three on one CPU (see main).  Every
 * successful peek must hold value == seq: a slot checked before its payload
 * is copied (the payload then read from the live mapping) shows the value of
 * a newer record under the old number.  The children
 * stop when the parent says so through a flag in a shared anonymous mapping
 * (checked once per batch), or after MAX_S seconds.
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

#define CAP        2u
#define RECORDS    200000u  /* records moved under the observer's eyes */
#define MIN_PEEKS  20000u   /* fewer successful peeks than this, or   */
#define MIN_RECS   20000u   /* fewer records moved: the test proves nothing */
#define MAX_MS     10000u   /* the observer's time budget */

struct shared {
	int stop;                 /* set by the parent */
	uint64_t consumed;        /* by the consumer, for the report */
	int64_t bad_value;        /* the consumer saw value != seq */
	uint64_t bad_seq;
};

static struct shared *g_sh;
static const char *g_path;

static struct mmapq *open_role(enum mmapq_role role)
{
	struct mmapq_params p = {.path = g_path, .role = role, .capacity = CAP, .record_size = 8,
	                         .format = MMAPQ_FORMAT_INT, .file_mode = 0600};
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
	struct mmapq *q = open_role(MMAPQ_ROLE_PRODUCER);
	uint64_t end = tu_now_ms() + MAX_MS + 5000;

	while (!stopping() && tu_now_ms() < end) {
		uint32_t n;
		int r = mmapq_reserve(q, mmapq_now_ns() + 100000000u, &n);
		if (r == -ETIMEDOUT)
			continue;
		if (r < 0)
			_exit(1);
		for (uint32_t i = 0; i < n; i++) {
			int64_t v = (int64_t)mmapq_next_seq(q);
			if (mmapq_put(q, &v, sizeof(v)) < 0)
				_exit(1);
		}
		if (mmapq_publish(q) < 0)
			_exit(1);
	}
	mmapq_close(q);
	_exit(0);
}

static void consumer(void)
{
	struct mmapq *q = open_role(MMAPQ_ROLE_CONSUMER);
	uint64_t end = tu_now_ms() + MAX_MS + 5000;

	while (!stopping() && tu_now_ms() < end) {
		uint32_t n;
		int r = mmapq_available(q, mmapq_now_ns() + 100000000u, &n);
		if (r == -ETIMEDOUT)
			continue;
		if (r < 0)
			_exit(1);
		for (uint32_t i = 0; i < n; i++) {
			struct mmapq_record rec;
			int64_t v;
			if (mmapq_get(q, i, &rec) < 0)
				_exit(1);
			memcpy(&v, rec.data, sizeof(v));
			if ((uint64_t)v != rec.seq && !g_sh->bad_value) {
				g_sh->bad_value = v;
				g_sh->bad_seq = rec.seq;
			}
		}
		if (mmapq_release(q, n) < 0)
			_exit(1);
		__atomic_store_n(&g_sh->consumed, g_sh->consumed + n, __ATOMIC_RELAXED);
	}
	mmapq_close(q);
	_exit(0);
}

static pid_t start(void (*fn)(void))
{
	pid_t pid = tu_fork();

	if (pid == 0)
		fn();
	return pid;
}

int main(void)
{
	char *dir = tu_mkdtemp("peek");
	char *path = tu_path(dir, "queue");
	uint64_t ok = 0, gone = 0, tries = 0, t0, bad = 0, first_bad_seq = 0;
	int64_t first_bad_value = 0;
	struct mmapq *obs;
	const struct mmapq_header *hdr;
	pid_t prod, cons;
	int failed = 0, st;
	char small[4];
	struct mmapq_record rec;
	int64_t buf;

	g_path = path;
	g_sh = mmap(NULL, sizeof(*g_sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g_sh == MAP_FAILED) {
		perror("mmap");
		return 99;
	}
	/* the file exists before anyone races for it */
	mmapq_close(open_role(MMAPQ_ROLE_PRODUCER));
	obs = open_role(MMAPQ_ROLE_OBSERVER);
	{
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		hdr = fd < 0 ? MAP_FAILED : mmap(NULL, sizeof(*hdr), PROT_READ, MAP_SHARED, fd, 0);
		if (hdr == MAP_FAILED) {
			perror("map the header");
			return 99;
		}
		close(fd);
	}
	if (mmapq_record_size(obs) != 8 ||
	    mmapq_peek(obs, 0, small, sizeof(small), &rec) != -EMSGSIZE) {
		fprintf(stderr, "test_peek: FAIL: record size %u, a 4-byte buffer not refused\n",
		        mmapq_record_size(obs));
		failed = 1;
	}
	/* All three on one CPU: the producer and the consumer then run only
	 * when the scheduler preempts the observer, wherever it is, so some
	 * preemptions fall between a peek's check and its copy, the window a
	 * racy peek loses in (a few nanoseconds: with two CPUs the others move
	 * on while the observer is inside it far too rarely to notice). */
	{
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &one);
		if (sched_setaffinity(0, sizeof(one), &one) < 0)
			fprintf(stderr, "test_peek: sched_setaffinity: %s (running unpinned)\n",
			        strerror(errno));
	}
	cons = start(consumer);
	prod = start(producer);

	t0 = tu_now_ms();
	while (__atomic_load_n(&g_sh->consumed, __ATOMIC_RELAXED) < RECORDS &&
	       tu_now_ms() - t0 < MAX_MS) {
		/* head and tail straight from the header (mmapq_status takes two
		 * fcntl calls: the peeks would be a small part of the loop) */
		uint64_t head = __atomic_load_n(&hdr->floor.floor, __ATOMIC_ACQUIRE);
		uint64_t tail = __atomic_load_n(&hdr->producer.position, __ATOMIC_ACQUIRE);
		for (uint64_t seq = head; seq < tail && seq < head + CAP; seq++) {
			int r;
			tries++;
			r = mmapq_peek(obs, seq, &buf, sizeof(buf), &rec);
			if (r == -ENOENT) {
				gone++;
				continue;
			}
			if (r < 0 || rec.seq != seq || rec.len != 8 || rec.data != &buf) {
				fprintf(stderr, "test_peek: FAIL: peek(%" PRIu64 "): %d (%s), seq %" PRIu64
				        " len %u\n", seq, r, mmapq_strerror(r), rec.seq, rec.len);
				failed = 1;
				break;
			}
			ok++;
			if ((uint64_t)buf != seq && bad++ == 0) {
				first_bad_seq = seq;
				first_bad_value = buf;
			}
		}
		if (failed)
			break;
	}
	__atomic_store_n(&g_sh->stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++) {
		pid_t pid = i ? cons : prod;
		st = tu_wait(pid, 10000);
		if (tu_exit_code(st) != 0) {
			fprintf(stderr, "test_peek: FAIL: the %s did not exit cleanly (%d)\n",
			        i ? "consumer" : "producer", tu_exit_code(st));
			failed = 1;
			if (st == -ETIMEDOUT)
				tu_kill(pid);
		}
	}
	if (bad) {
		fprintf(stderr, "test_peek: FAIL: %" PRIu64 " of %" PRIu64 " successful peeks returned"
		        " another record's payload; the first: seq %" PRIu64 " holding value %" PRId64 "\n",
		        bad, ok, first_bad_seq, first_bad_value);
		failed = 1;
	}
	if (g_sh->bad_value || g_sh->bad_seq) {
		fprintf(stderr, "test_peek: FAIL: the consumer got value %" PRId64 " as seq %" PRIu64 "\n",
		        g_sh->bad_value, g_sh->bad_seq);
		failed = 1;
	}
	if (ok < MIN_PEEKS || g_sh->consumed < MIN_RECS) {
		fprintf(stderr, "test_peek: FAIL: only %" PRIu64 " successful peeks and %" PRIu64
		        " records moved in %u ms (want %u and %u): the race was not exercised\n", ok,
		        g_sh->consumed, MAX_MS, MIN_PEEKS, MIN_RECS);
		failed = 1;
	}
	printf("test_peek: %" PRIu64 " peeks: %" PRIu64 " ok, %" PRIu64 " consumed meanwhile, %" PRIu64
	       " wrong; %" PRIu64 " records consumed, %" PRIu64 " ms\n", tries, ok, gone, bad,
	       g_sh->consumed, tu_now_ms() - t0);
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
