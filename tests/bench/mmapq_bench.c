/* SPDX-License-Identifier: MIT */
/*
 * mmapq_bench -- mmapq against pipes, AF_UNIX sockets, POSIX message queues,
 * a per-record mutex+condvar ring and a lock-free SPSC ring, in one run.
 *
 * Every measurement is two processes (fork) pinned to two different CPUs
 * (unpinned, and said so, if only one is available) that exchange records
 * through the transport under test:
 *
 *   throughput  N records of 8, 64, 1024 and 16384 bytes, one way.  The
 *               consumer verifies every record: its sequence number where
 *               the transport has one, its length, and every payload word
 *               (word j of record i is (i+1)*K1 + j*K2), so a lost,
 *               doubled, reordered or torn record fails the run (exit 1).
 *               Time: from the producer's first record to the consumer's
 *               check of the last one.  Median of --runs runs of about
 *               --seconds each (N is calibrated per cell); within a size
 *               the transports take turns in each round, so that a slow
 *               spell of the machine hits all of them alike.
 *   latency     ping-pong of 64-byte records over two channels, one each
 *               way; one-way latency = round trip / 2; p50 and p99.
 *               Blocking (futex, pipe, socket, mq) and spinning (mmapq with
 *               spin_us, the lock-free ring).
 *   --e2e       mmapq-producer reading integers from a file into
 *               mmapq-consumer (output null and file:PATH), against the same
 *               job over a pipe (one process parses with the same parser and
 *               writes binary int64s, the other formats them the same way).
 *   --idle      an idle daemon pair: CPU time used over --idle-seconds.
 *
 * Each section also reports the CPU time other processes used meanwhile
 * (and the hypervisor stole): numbers from a busy machine say so.
 *
 * The transports, as a user would write each of them:
 *   mmapq       the library: mmapq_reserve/mmapq_put/mmapq_publish every
 *               --batch records; mmapq_available/mmapq_get/mmapq_release,
 *               draining everything available, releasing every --batch.
 *               A second row does the same with --big-batch.  Linked
 *               against the library built as release packages build it
 *               (MMAPQ_TESTING off: no fault points; see CMakeLists.txt).
 *               In the ping-pong, a record is released once it is dealt
 *               with: after the reply is sent, or the clock read (the
 *               API's at-least-once order).
 *   textbook    the same library used per record: reserve, put, publish for
 *               each record; available, get, release(1) for each record (a
 *               lock round-trip and a signal check per record and side).
 *   spsc        a minimal lock-free single-producer single-consumer ring in
 *               a shared anonymous mapping, same slot layout as mmapq, head
 *               and tail on their own cache lines, each published every
 *               --spsc-batch records; waits spin (pause, then sched_yield).  The
 *               near-physical reference; not crash-safe, not persistent.
 *   pipe, unix  one write() per record (the record is handed over at once);
 *               the reader read()s up to 64 KiB at a time and checks every
 *               record in the buffer.  unix = socketpair(AF_UNIX, SOCK_STREAM).
 *   mq          POSIX message queue, one mq_send/mq_receive per record, as
 *               deep as /proc/sys/fs/mqueue/msg_max and RLIMIT_MSGQUEUE let
 *               an unprivileged user go; sizes above msgsize_max are not
 *               possible.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <mqueue.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "mmapq.h"
#include "mmapq_format.h"
#include "parse.h"
#include "testutil.h"

#define EXIT_FAIL   1
#define EXIT_USAGE_ 64

#define NSIZES 4
static const uint32_t sizes[NSIZES] = {8, 64, 1024, 16384};

#define K1 UINT64_C(0x9E3779B97F4A7C15)
#define K2 UINT64_C(0xD6E8FEB86659FD93)

#define MAX_RUNS 15
#define CHILD_TIMEOUT_MS 120000
#define FAR_NS (60ull * 1000000000ull) /* deadline of a wait; a healthy one is microseconds */
#define LAT_SIZE 64u

/* ---- options ------------------------------------------------------------ */

static struct opts {
	bool quick, json, e2e, idle, tput, lat;
	int runs;
	double seconds;
	const char *bin_dir;
	uint32_t batch;       /* records per publish/release: mmapq          */
	uint32_t big_batch;   /* the same, for the "big batches" row         */
	uint32_t spsc_batch;  /* records per index publication: spsc         */
	uint32_t ring_kib;    /* ring bytes of mmapq, textbook and spsc      */
	uint32_t spin_us;     /* mmapq_params.spin_us of the "mmapq spin" latency row */
	uint64_t e2e_count;
	uint32_t e2e_capacity;
	uint32_t e2e_record_size;
	uint32_t e2e_big_capacity;
	double idle_seconds;
	uint32_t only_mask;   /* transports to run (bit per enum transport) */
	uint32_t size_mask;
	int nice;             /* setpriority() of the benchmark and its children */
	bool nice_set;
} o = {
	.tput = true, .lat = true, .runs = 3, .seconds = 0.5,
	.batch = 64, .big_batch = 1024, .spsc_batch = 64, .ring_kib = 4096, .spin_us = 50,
	.e2e_count = 10000000, .e2e_capacity = 1024, .e2e_record_size = 64, .e2e_big_capacity = 65536,
	.idle_seconds = 10, .only_mask = ~0u, .size_mask = ~0u,
};

/* ---- small helpers ------------------------------------------------------- */

static int cpu_a = -1, cpu_b = -1; /* producer side, consumer side */
static int ncpus_online;
static char cpu_model[128] = "unknown";
static char *tmpdir;
static long msg_max = 10, msgsize_max = 8192;
static bool failed;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("mmapq_bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* In a child: say what went wrong; returns the child's exit code. */
static int child_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int child_fail(const char *fmt, ...)
{
	va_list ap;
	char line[512];
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "mmapq_bench[%d]: FAIL: %s\n", (int)getpid(), line);
	return EXIT_FAIL;
}

static void pin(int cpu)
{
	cpu_set_t set;
	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		note("cannot pin to CPU %d: %s", cpu, strerror(errno));
}

static long read_long_file(const char *path, long dflt)
{
	FILE *f = fopen(path, "r");
	long v;
	if (!f)
		return dflt;
	if (fscanf(f, "%ld", &v) != 1)
		v = dflt;
	fclose(f);
	return v;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t k = write(fd, p, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

/* Exactly len bytes; 0 at a clean EOF before any byte, -EPIPE mid-record. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t k = read(fd, p + got, len - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return got ? -EPIPE : 0;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

static void *xalloc(size_t n)
{
	void *p = NULL;
	if (posix_memalign(&p, 64, n ? n : 64)) {
		note("out of memory");
		exit(EXIT_FAIL);
	}
	memset(p, 0, n);
	return p;
}

static uint32_t pow2_floor(uint64_t v)
{
	uint32_t p = 1;
	while ((uint64_t)p * 2 <= v && p < (1u << 24))
		p *= 2;
	return p;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double s[MAX_RUNS];
	if (n <= 0)
		return 0;
	memcpy(s, v, sizeof(double) * (size_t)n);
	qsort(s, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* ---- interference: what else ran on the machine meanwhile ------------------ */

/* The numbers are only as good as the machine is quiet: per section, the
 * CPU time used by processes other than this benchmark and its children
 * (all CPUs' busy time in /proc/stat minus our own rusage), and the time
 * the hypervisor stole (steal), both as a share of the machine's CPUs. */
struct load_mark {
	double busy_s, steal_s, ours_s, wall_s;
};

struct load_section {
	char name[24];
	double wall_s, others_pct, steal_pct;
};
static struct load_section loads[8];
static int nloads;

static void load_mark(struct load_mark *m)
{
	unsigned long long v[10] = {0};
	struct rusage self, kids;
	double tck = (double)sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "r");

	if (f) {
		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		           &v[4], &v[5], &v[6], &v[7]) != 8)
			memset(v, 0, sizeof(v));
		fclose(f);
	}
	/* user nice system idle iowait irq softirq steal */
	m->busy_s = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / tck;
	m->steal_s = (double)v[7] / tck;
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	m->ours_s = (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec +
	                     kids.ru_stime.tv_sec) +
	            (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec +
	                     kids.ru_stime.tv_usec) / 1e6;
	m->wall_s = (double)now_ns() / 1e9;
}

static void load_section_end(const char *name, const struct load_mark *a)
{
	struct load_mark b;
	struct load_section *l;
	double cap;

	if (nloads >= (int)(sizeof(loads) / sizeof(loads[0])))
		return;
	load_mark(&b);
	l = &loads[nloads++];
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->wall_s = b.wall_s - a->wall_s;
	cap = l->wall_s * (ncpus_online > 0 ? ncpus_online : 1);
	l->others_pct = cap > 0 ? ((b.busy_s - a->busy_s) - (b.ours_s - a->ours_s)) / cap * 100 : 0;
	if (l->others_pct < 0)
		l->others_pct = 0; /* tick granularity */
	l->steal_pct = cap > 0 ? (b.steal_s - a->steal_s) / cap * 100 : 0;
	if (l->others_pct > 5 || l->steal_pct > 5)
		note("%s: other processes used %.0f%% and the hypervisor stole %.0f%% of the CPUs meanwhile:"
		     " numbers disturbed", name, l->others_pct, l->steal_pct);
}

/* ---- records -------------------------------------------------------------- */

/* Word j of record i: (i+1)*K1 + j*K2.  Word 0 encodes the index (K1 is odd,
 * so the map is a bijection); every other word depends on it too. */
static inline void rec_fill(void *dst, uint32_t size, uint64_t i)
{
	uint64_t a = (i + 1) * K1;
	unsigned char *p = dst;
	for (uint32_t j = 0; j < size / 8; j++) {
		uint64_t v = a + j * K2;
		memcpy(p + 8 * (size_t)j, &v, 8);
	}
}

static inline bool rec_ok(const void *src, uint32_t size, uint64_t i)
{
	uint64_t a = (i + 1) * K1, acc = 0;
	const unsigned char *p = src;
	for (uint32_t j = 0; j < size / 8; j++) {
		uint64_t v;
		memcpy(&v, p + 8 * (size_t)j, 8);
		acc |= v ^ (a + j * K2);
	}
	return acc == 0;
}

/* Which record is this?  For the failure message. */
static uint64_t rec_index(const void *src)
{
	uint64_t w0;
	memcpy(&w0, src, 8);
	return w0 * UINT64_C(0xF1DE83E19937733D) - 1; /* K1^-1 mod 2^64 */
}

/* ---- the shared control block --------------------------------------------- */

struct ctl {
	uint32_t ready;                 /* start barrier */
	uint8_t pad0[60];
	uint64_t t_start, t_end;        /* producer's first record, consumer's last check */
	uint64_t verified;              /* records the consumer checked */
	uint64_t p50_ns, p99_ns, p999_ns, max_ns; /* latency: one-way */
	long nvcsw[2], nivcsw[2];       /* context switches of the two children */
};
static struct ctl *ctl;

static void barrier(void)
{
	__atomic_fetch_add(&ctl->ready, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&ctl->ready, __ATOMIC_ACQUIRE) < 2)
		sched_yield();
}

static void record_rusage(int side)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		ctl->nvcsw[side] = ru.ru_nvcsw;
		ctl->nivcsw[side] = ru.ru_nivcsw;
	}
}

/* ---- a cell: one transport, one size, one run ------------------------------ */

enum transport { T_MMAPQ, T_MMAPQ_BIG, T_TEXTBOOK, T_SPSC, T_PIPE, T_UNIX, T_MQ, NTRANSPORTS };

/* The lock-free reference ring: head and tail on cache lines of their own,
 * then cap slots laid out exactly like mmapq's. */
struct ring {
	uint64_t tail;                  /* written by the producer (release) */
	uint8_t pad0[56];
	uint64_t head;                  /* written by the consumer (release) */
	uint8_t pad1[56];
};

struct cell {
	enum transport t;
	uint32_t size, cap, batch, slot_size, spin_us;
	uint64_t n;
	int fd[4];
	mqd_t mq[2];
	long mq_depth;
	char path[2][PATH_MAX];
	struct ring *ring[2];
	size_t ring_len;
	/* latency */
	uint64_t iters, warm;
};

static uint32_t ring_cap(uint32_t size)
{
	uint32_t slot = mmapq_slot_size(size);
	uint32_t cap = pow2_floor((uint64_t)o.ring_kib * 1024u / slot);
	return cap < 64 ? 64 : cap;
}

static uint32_t ring_batch(uint32_t cap, uint32_t b)
{
	if (b > cap / 4)
		b = cap / 4;
	return b ? b : 1;
}

static void relax(unsigned *spins)
{
	if (++*spins < 2048)
		__builtin_ia32_pause();
	else
		sched_yield(); /* also what makes one CPU work */
}

/* ---- mmapq ------------------------------------------------------------------ */

static struct mmapq *q_open(const struct cell *c, const char *path, enum mmapq_role role,
                            uint32_t size, uint32_t cap, uint32_t spin_us)
{
	struct mmapq_params p = {
		.path = path, .role = role, .capacity = cap, .record_size = size,
		.format = MMAPQ_FORMAT_LINE, .sync = MMAPQ_SYNC_NEVER, .file_mode = 0600,
		.spin_us = spin_us,
	};
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &e);
	(void)c;
	if (r < 0) {
		child_fail("mmapq_open(%s): %s (%s)", path, e.msg, mmapq_strerror(r));
		return NULL;
	}
	return q;
}

static int mmapq_prod(struct cell *c)
{
	struct mmapq *q = q_open(c, c->path[0], MMAPQ_ROLE_PRODUCER, c->size, c->cap, 0);
	unsigned char *buf = xalloc(c->size);
	uint64_t seq = 0, deadline;
	uint32_t batch = c->t == T_TEXTBOOK ? 1 : c->batch;
	int r;

	if (!q)
		return EXIT_FAIL;
	barrier();
	ctl->t_start = now_ns();
	deadline = ctl->t_start + FAR_NS;
	while (seq < c->n) {
		uint32_t nfree = 0, k;
		r = mmapq_reserve(q, deadline, &nfree);
		if (r < 0)
			return child_fail("mmapq_reserve at record %" PRIu64 ": %s", seq, mmapq_strerror(r));
		k = nfree < batch ? nfree : batch;
		if (k > c->n - seq)
			k = (uint32_t)(c->n - seq);
		for (uint32_t i = 0; i < k; i++, seq++) {
			rec_fill(buf, c->size, seq);
			r = mmapq_put(q, buf, c->size);
			if (r < 0)
				return child_fail("mmapq_put record %" PRIu64 ": %s", seq, mmapq_strerror(r));
		}
		r = mmapq_publish(q);
		if (r < 0)
			return child_fail("mmapq_publish at record %" PRIu64 ": %s", seq, mmapq_strerror(r));
	}
	record_rusage(0);
	mmapq_close(q);
	free(buf);
	return 0;
}

static int mmapq_cons(struct cell *c)
{
	struct mmapq *q = q_open(c, c->path[0], MMAPQ_ROLE_CONSUMER, c->size, c->cap, 0);
	uint64_t exp = 0, deadline;
	uint32_t batch = c->t == T_TEXTBOOK ? 1 : c->batch;
	int r;

	if (!q)
		return EXIT_FAIL;
	barrier();
	deadline = now_ns() + FAR_NS;
	while (exp < c->n) {
		uint32_t n = 0, k;
		r = mmapq_available(q, deadline, &n);
		if (r < 0)
			return child_fail("mmapq_available at record %" PRIu64 ": %s", exp, mmapq_strerror(r));
		/* drain everything available, releasing every batch records */
		k = n < batch ? n : batch;
		for (uint32_t i = 0; i < k; i++, exp++) {
			struct mmapq_record rec;
			r = mmapq_get(q, i, &rec);
			if (r < 0)
				return child_fail("mmapq_get record %" PRIu64 ": %s", exp, mmapq_strerror(r));
			if (rec.seq != exp || rec.len != c->size || !rec_ok(rec.data, c->size, exp))
				return child_fail("record %" PRIu64 ": got seq %" PRIu64 " len %" PRIu32
				                  " content of record %" PRIu64, exp, rec.seq, rec.len,
				                  rec_index(rec.data));
		}
		r = mmapq_release(q, k);
		if (r < 0)
			return child_fail("mmapq_release at record %" PRIu64 ": %s", exp, mmapq_strerror(r));
	}
	ctl->t_end = now_ns();
	ctl->verified = exp;
	record_rusage(1);
	mmapq_close(q);
	return 0;
}

/* ---- lock-free SPSC ring ---------------------------------------------------- */

static unsigned char *ring_slot(struct ring *rg, const struct cell *c, uint64_t seq)
{
	return (unsigned char *)(rg + 1) + (size_t)(seq & (c->cap - 1)) * c->slot_size;
}

static int spsc_prod(struct cell *c)
{
	struct ring *rg = c->ring[0];
	unsigned char *buf = xalloc(c->size);
	uint64_t tail = 0, pub = 0, head = 0;

	barrier();
	ctl->t_start = now_ns();
	for (uint64_t seq = 0; seq < c->n; seq++) {
		if (tail - head == c->cap) {
			unsigned spins = 0;
			if (pub != tail) {
				/* release: the slots written become visible to the consumer */
				__atomic_store_n(&rg->tail, tail, __ATOMIC_RELEASE);
				pub = tail;
			}
			/* acquire: pairs with the consumer's release of head */
			while ((head = __atomic_load_n(&rg->head, __ATOMIC_ACQUIRE)) + c->cap == tail)
				relax(&spins);
		}
		unsigned char *s = ring_slot(rg, c, tail);
		struct mmapq_slot *h = (struct mmapq_slot *)s;
		rec_fill(buf, c->size, seq);
		h->seq = tail;
		h->len = c->size;
		h->reserved = 0;
		memcpy(s + sizeof(*h), buf, c->size);
		tail++;
		if (tail - pub >= c->batch) {
			__atomic_store_n(&rg->tail, tail, __ATOMIC_RELEASE); /* pairs as above */
			pub = tail;
		}
	}
	__atomic_store_n(&rg->tail, tail, __ATOMIC_RELEASE);
	record_rusage(0);
	free(buf);
	return 0;
}

static int spsc_cons(struct cell *c)
{
	struct ring *rg = c->ring[0];
	uint64_t head = 0, pub = 0, tail = 0;

	barrier();
	for (uint64_t exp = 0; exp < c->n; exp++) {
		if (head == tail) {
			unsigned spins = 0;
			if (pub != head) {
				/* release: our reads of the slots happen before their reuse */
				__atomic_store_n(&rg->head, head, __ATOMIC_RELEASE);
				pub = head;
			}
			/* acquire: pairs with the producer's release of tail */
			while ((tail = __atomic_load_n(&rg->tail, __ATOMIC_ACQUIRE)) == head)
				relax(&spins);
		}
		const unsigned char *s = ring_slot(rg, c, head);
		const struct mmapq_slot *h = (const struct mmapq_slot *)s;
		if (h->seq != exp || h->len != c->size || !rec_ok(s + sizeof(*h), c->size, exp))
			return child_fail("spsc record %" PRIu64 ": got seq %" PRIu64 " len %" PRIu32
			                  " content of record %" PRIu64, exp, h->seq, h->len,
			                  rec_index(s + sizeof(*h)));
		head++;
		if (head - pub >= c->batch) {
			__atomic_store_n(&rg->head, head, __ATOMIC_RELEASE); /* pairs as above */
			pub = head;
		}
	}
	ctl->t_end = now_ns();
	ctl->verified = c->n;
	__atomic_store_n(&rg->head, head, __ATOMIC_RELEASE);
	record_rusage(1);
	return 0;
}

/* ---- pipe and AF_UNIX stream ------------------------------------------------ */

/* fd[0] is the consumer's end, fd[1] the producer's. */
static int stream_prod(struct cell *c)
{
	unsigned char *buf = xalloc(c->size);
	int r;

	close(c->fd[0]);
	barrier();
	ctl->t_start = now_ns();
	for (uint64_t seq = 0; seq < c->n; seq++) {
		rec_fill(buf, c->size, seq);
		r = write_all(c->fd[1], buf, c->size);
		if (r < 0)
			return child_fail("write record %" PRIu64 ": %s", seq, strerror(-r));
	}
	record_rusage(0);
	if (c->t == T_UNIX)
		shutdown(c->fd[1], SHUT_WR);
	close(c->fd[1]);
	free(buf);
	return 0;
}

static int stream_cons(struct cell *c)
{
	size_t cap = 65536 > 4 * (size_t)c->size ? 65536 : 4 * (size_t)c->size;
	unsigned char *buf = xalloc(cap);
	size_t have = 0;
	uint64_t exp = 0;
	ssize_t k;

	close(c->fd[1]);
	barrier();
	while (exp < c->n) {
		size_t off = 0;
		k = read(c->fd[0], buf + have, cap - have);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return child_fail("read at record %" PRIu64 ": %s", exp, strerror(errno));
		if (k == 0)
			return child_fail("end of stream at record %" PRIu64 " of %" PRIu64, exp, c->n);
		have += (size_t)k;
		for (; have - off >= c->size; off += c->size, exp++) {
			if (exp >= c->n)
				return child_fail("more than %" PRIu64 " records", c->n);
			if (!rec_ok(buf + off, c->size, exp))
				return child_fail("record %" PRIu64 ": content of record %" PRIu64, exp,
				                  rec_index(buf + off));
		}
		if (off && have > off)
			memmove(buf, buf + off, have - off);
		have -= off;
	}
	ctl->t_end = now_ns();
	ctl->verified = exp;
	if (have || read(c->fd[0], buf, cap) != 0)
		return child_fail("extra bytes after %" PRIu64 " records", c->n);
	record_rusage(1);
	close(c->fd[0]);
	free(buf);
	return 0;
}

/* ---- POSIX message queue -------------------------------------------------- */

static int mq_prod(struct cell *c)
{
	unsigned char *buf = xalloc(c->size);

	barrier();
	ctl->t_start = now_ns();
	for (uint64_t seq = 0; seq < c->n; seq++) {
		rec_fill(buf, c->size, seq);
		while (mq_send(c->mq[0], (const char *)buf, c->size, 0) < 0) {
			if (errno != EINTR)
				return child_fail("mq_send record %" PRIu64 ": %s", seq, strerror(errno));
		}
	}
	record_rusage(0);
	free(buf);
	return 0;
}

static int mq_cons(struct cell *c)
{
	unsigned char *buf = xalloc(c->size);

	barrier();
	for (uint64_t exp = 0; exp < c->n; exp++) {
		ssize_t k;
		while ((k = mq_receive(c->mq[0], (char *)buf, c->size, NULL)) < 0) {
			if (errno != EINTR)
				return child_fail("mq_receive record %" PRIu64 ": %s", exp, strerror(errno));
		}
		if ((size_t)k != c->size || !rec_ok(buf, c->size, exp))
			return child_fail("mq record %" PRIu64 ": %zd bytes, content of record %" PRIu64, exp,
			                  k, rec_index(buf));
	}
	ctl->t_end = now_ns();
	ctl->verified = c->n;
	record_rusage(1);
	free(buf);
	return 0;
}

/* Deepest queue an unprivileged user could open for this size (msg_max,
 * then RLIMIT_MSGQUEUE); -1 if msgsize_max forbids the size. */
static long mq_open_deep(struct cell *c, const char *name, mqd_t *ret)
{
	long depth = msg_max;

	if ((long)c->size > msgsize_max)
		return -1;
	mq_unlink(name);
	for (; depth >= 1; depth /= 2) {
		struct mq_attr a = {.mq_maxmsg = depth, .mq_msgsize = c->size};
		mqd_t m = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
		if (m != (mqd_t)-1) {
			*ret = m;
			return depth;
		}
		if (errno != EMFILE && errno != ENOMEM && errno != EINVAL)
			break;
	}
	return -2;
}

/* ---- transports: set-up and tear-down in the parent -------------------------- */

struct transport_def {
	const char *key, *label;
	int (*prod)(struct cell *c);
	int (*cons)(struct cell *c);
};

static const struct transport_def tdefs[NTRANSPORTS] = {
	[T_MMAPQ] = {"mmapq", "mmapq (library)", mmapq_prod, mmapq_cons},
	[T_MMAPQ_BIG] = {"mmapq_big", "mmapq (library), big batches", mmapq_prod, mmapq_cons},
	[T_TEXTBOOK] = {"textbook", "mutex+condvar, per record", mmapq_prod, mmapq_cons},
	[T_SPSC] = {"spsc", "lock-free SPSC ring", spsc_prod, spsc_cons},
	[T_PIPE] = {"pipe", "pipe", stream_prod, stream_cons},
	[T_UNIX] = {"unix", "AF_UNIX stream", stream_prod, stream_cons},
	[T_MQ] = {"mq", "POSIX mq", mq_prod, mq_cons},
};

static char mq_name[64];

static int cell_setup(struct cell *c, char *why, size_t whylen)
{
	c->fd[0] = c->fd[1] = c->fd[2] = c->fd[3] = -1;
	c->mq[0] = c->mq[1] = (mqd_t)-1;
	c->slot_size = mmapq_slot_size(c->size);
	switch (c->t) {
	case T_MMAPQ:
	case T_MMAPQ_BIG:
	case T_TEXTBOOK:
		snprintf(c->path[0], sizeof(c->path[0]), "%s/tput.q", tmpdir);
		unlink(c->path[0]);
		return 0;
	case T_SPSC:
		c->ring_len = sizeof(struct ring) + (size_t)c->cap * c->slot_size;
		c->ring[0] = mmap(NULL, c->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (c->ring[0] == MAP_FAILED) {
			snprintf(why, whylen, "mmap: %s", strerror(errno));
			c->ring[0] = NULL;
			return -1;
		}
		return 0;
	case T_PIPE:
		if (pipe2(c->fd, O_CLOEXEC) < 0) {
			snprintf(why, whylen, "pipe: %s", strerror(errno));
			return -1;
		}
		return 0;
	case T_UNIX: {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
			snprintf(why, whylen, "socketpair: %s", strerror(errno));
			return -1;
		}
		c->fd[0] = sv[1];
		c->fd[1] = sv[0];
		return 0;
	}
	case T_MQ:
		snprintf(mq_name, sizeof(mq_name), "/mmapq-bench-%d", (int)getpid());
		c->mq_depth = mq_open_deep(c, mq_name, &c->mq[0]);
		if (c->mq_depth == -1) {
			snprintf(why, whylen, "not possible (msgsize_max %ld)", msgsize_max);
			return 1;
		}
		if (c->mq_depth < 0) {
			snprintf(why, whylen, "mq_open: %s", strerror(errno));
			return -1;
		}
		return 0;
	default:
		return -1;
	}
}

/* After both children are forked: the parent lets go of its ends. */
static void cell_parent_close(struct cell *c)
{
	for (int i = 0; i < 4; i++)
		if (c->fd[i] >= 0) {
			close(c->fd[i]);
			c->fd[i] = -1;
		}
}

static void cell_teardown(struct cell *c)
{
	cell_parent_close(c);
	for (int i = 0; i < 2; i++) {
		if (c->mq[i] != (mqd_t)-1) {
			mq_close(c->mq[i]);
			c->mq[i] = (mqd_t)-1;
		}
		if (c->ring[i]) {
			munmap(c->ring[i], c->ring_len);
			c->ring[i] = NULL;
		}
		if (c->path[i][0]) {
			unlink(c->path[i]);
			c->path[i][0] = '\0';
		}
	}
	if (mq_name[0]) {
		mq_unlink(mq_name);
		mq_name[0] = '\0';
	}
}

typedef int (*child_fn)(struct cell *c);

static pid_t fork_child(child_fn fn, struct cell *c, int cpu)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		pin(cpu);
		_exit(fn(c));
	}
	return pid;
}

/* Wait for both children, at most timeout_ms in all.  As soon as one of
 * them fails, the other is killed: a consumer that found a bad record
 * leaves its producer blocked on a full queue (or spinning) otherwise.
 * st[i]: the wait status, or -ETIMEDOUT (then killed). */
static void wait_pair(const pid_t pid[2], int st[2], int timeout_ms)
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	int fd[2];
	bool done[2] = {false, false};

	for (int i = 0; i < 2; i++)
		fd[i] = (int)syscall(SYS_pidfd_open, pid[i], 0);
	if (fd[0] < 0 || fd[1] < 0) {
		/* no pidfds: one after the other */
		for (int i = 0; i < 2; i++) {
			uint64_t now = tu_now_ms();
			st[i] = tu_wait(pid[i], now < end ? (int)(end - now) : 1);
			if (st[i] == -ETIMEDOUT)
				tu_kill(pid[i]);
			if (fd[i] >= 0)
				close(fd[i]);
		}
		return;
	}
	while (!done[0] || !done[1]) {
		struct pollfd pf[2];
		int idx[2], n = 0;
		uint64_t now = tu_now_ms();

		for (int i = 0; i < 2; i++)
			if (!done[i]) {
				pf[n] = (struct pollfd){.fd = fd[i], .events = POLLIN};
				idx[n++] = i;
			}
		if (now >= end) {
			for (int k = 0; k < n; k++) {
				tu_kill(pid[idx[k]]);
				st[idx[k]] = -ETIMEDOUT;
				done[idx[k]] = true;
			}
			break;
		}
		if (poll(pf, (nfds_t)n, (int)(end - now)) < 0 && errno != EINTR)
			break;
		for (int k = 0; k < n; k++) {
			int i = idx[k];
			if (!(pf[k].revents & (POLLIN | POLLHUP)))
				continue;
			while (waitpid(pid[i], &st[i], 0) < 0 && errno == EINTR)
				;
			done[i] = true;
			if (tu_exit_code(st[i]) != 0 && !done[!i]) {
				tu_kill(pid[!i]);
				st[!i] = W_EXITCODE(0, SIGKILL);
				done[!i] = true;
			}
		}
	}
	close(fd[0]);
	close(fd[1]);
}

/* Run two children to completion; 0 if both exited 0. */
static int run_pair(child_fn a, child_fn b, struct cell *c, char *why, size_t whylen)
{
	pid_t pid[2];
	int st[2];

	memset(ctl, 0, sizeof(*ctl));
	pid[0] = fork_child(a, c, cpu_a);
	pid[1] = pid[0] > 0 ? fork_child(b, c, cpu_b) : -1;
	cell_parent_close(c);
	if (pid[0] < 0 || pid[1] < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		if (pid[0] > 0)
			tu_kill(pid[0]);
		return -1;
	}
	wait_pair(pid, st, CHILD_TIMEOUT_MS);
	if (st[0] == -ETIMEDOUT || st[1] == -ETIMEDOUT) {
		snprintf(why, whylen, "timed out after %d s", CHILD_TIMEOUT_MS / 1000);
		return -1;
	}
	if (tu_exit_code(st[0]) != 0 || tu_exit_code(st[1]) != 0) {
		snprintf(why, whylen, "children exited %d and %d (128+9: killed when the other failed)",
		         tu_exit_code(st[0]), tu_exit_code(st[1]));
		return -1;
	}
	return 0;
}

/* ---- throughput ---------------------------------------------------------------- */

struct tput_result {
	bool ran, failed;
	char why[128];
	uint64_t n;
	int nruns;
	double rps[MAX_RUNS];
	double med_rps;
	long depth;          /* mq */
	uint32_t cap, batch; /* rings */
	long csw;            /* voluntary context switches, median run (both sides) */
};

static struct tput_result tput[NTRANSPORTS][NSIZES];
static uint64_t total_verified;

/* One run with n records: elapsed seconds, or < 0 on failure. */
static double tput_once(enum transport t, uint32_t size, uint64_t n, struct tput_result *res)
{
	struct cell c = {.t = t, .size = size, .n = n};
	int r;

	c.cap = ring_cap(size);
	c.batch = ring_batch(c.cap, t == T_SPSC ? o.spsc_batch : t == T_MMAPQ_BIG ? o.big_batch : o.batch);
	res->cap = c.cap;
	res->batch = t == T_TEXTBOOK ? 1 : c.batch;
	r = cell_setup(&c, res->why, sizeof(res->why));
	if (r != 0) {
		cell_teardown(&c);
		return r > 0 ? -2 : -1;
	}
	res->depth = c.mq_depth;
	r = run_pair(tdefs[t].prod, tdefs[t].cons, &c, res->why, sizeof(res->why));
	cell_teardown(&c);
	if (r < 0)
		return -1;
	if (ctl->verified != n) {
		snprintf(res->why, sizeof(res->why), "verified %" PRIu64 " of %" PRIu64, ctl->verified, n);
		return -1;
	}
	total_verified += n;
	res->csw = ctl->nvcsw[0] + ctl->nvcsw[1];
	return (double)(ctl->t_end - ctl->t_start) / 1e9;
}

static uint64_t quick_n(uint32_t size)
{
	uint64_t n = 3 * (uint64_t)ring_cap(size) + 7; /* wraps the ring */
	return n < 1000 ? 1000 : n > 120000 ? 120000 : n;
}

static void tput_fail(enum transport t, int si, double el)
{
	struct tput_result *res = &tput[t][si];
	if (el == -2) {
		res->ran = false; /* not possible on this system */
		note("%-28s %6" PRIu32 " B: %s", tdefs[t].label, sizes[si], res->why);
		return;
	}
	res->failed = true;
	failed = true;
	note("%-28s %6" PRIu32 " B: FAILED: %s", tdefs[t].label, sizes[si], res->why);
}

/* Records for one run of about --seconds (the calibration runs double as
 * warm-up); 0 if the transport failed or is not possible. */
static uint64_t tput_calibrate(enum transport t, int si)
{
	struct tput_result *res = &tput[t][si];
	uint64_t n = 2000;
	double el;

	res->ran = true;
	if (o.quick)
		return quick_n(sizes[si]);
	for (;;) {
		el = tput_once(t, sizes[si], n, res);
		if (el < 0) {
			tput_fail(t, si, el);
			return 0;
		}
		if (el >= o.seconds / 8 || n >= (1ull << 34))
			break;
		double f = o.seconds / 4 / (el > 1e-6 ? el : 1e-6);
		n = (uint64_t)((double)n * (f < 2 ? 2 : f > 64 ? 64 : f));
	}
	n = (uint64_t)((double)n / el * o.seconds);
	return n < 1000 ? 1000 : n;
}

/* One size: calibrate every transport, then --runs rounds in which every
 * transport runs once, so that a slow spell of the machine (this is often
 * a VM) hits all of them alike instead of one transport's runs. */
static void tput_size(int si)
{
	long csw[NTRANSPORTS][MAX_RUNS];

	for (int t = 0; t < NTRANSPORTS; t++)
		if (o.only_mask & (1u << t))
			tput[t][si].n = tput_calibrate((enum transport)t, si);
	for (int run = 0; run < o.runs; run++)
		for (int t = 0; t < NTRANSPORTS; t++) {
			struct tput_result *res = &tput[t][si];
			double el;
			if (!(o.only_mask & (1u << t)) || !res->n || res->failed)
				continue;
			el = tput_once((enum transport)t, sizes[si], res->n, res);
			if (el < 0) {
				tput_fail((enum transport)t, si, el);
				continue;
			}
			res->rps[res->nruns] = (double)res->n / el;
			csw[t][res->nruns++] = res->csw;
		}
	for (int t = 0; t < NTRANSPORTS; t++) {
		struct tput_result *res = &tput[t][si];
		if (!(o.only_mask & (1u << t)) || !res->nruns || res->failed)
			continue;
		res->med_rps = median(res->rps, res->nruns);
		/* context switches of the run closest to the median */
		for (int i = 0; i < res->nruns; i++)
			if (res->rps[i] == res->med_rps)
				res->csw = csw[t][i];
		note("%-28s %6" PRIu32 " B: %12.0f records/s (%" PRIu64 " records x %d, %ld context switches)",
		     tdefs[t].label, sizes[si], res->med_rps, res->n, res->nruns, res->csw);
	}
}

/* ---- latency: ping-pong --------------------------------------------------------- */

enum lat_kind { L_MMAPQ, L_MMAPQ_SPIN, L_PIPE, L_UNIX, L_MQ, L_SPSC, NLAT };

struct lat_def {
	const char *key, *label;
};

static const struct lat_def ldefs[NLAT] = {
	[L_MMAPQ] = {"mmapq", "mmapq, blocking"},
	[L_MMAPQ_SPIN] = {"mmapq_spin", "mmapq, spin_us"},
	[L_PIPE] = {"pipe", "pipe, blocking"},
	[L_UNIX] = {"unix", "AF_UNIX stream, blocking"},
	[L_MQ] = {"mq", "POSIX mq, blocking"},
	[L_SPSC] = {"spsc", "lock-free SPSC ring, spinning"},
};

struct lat_result {
	bool ran, failed;
	char why[128];
	int nruns;
	double p50[MAX_RUNS], p99[MAX_RUNS];
	double med_p50, med_p99;
	uint64_t iters;
};

static struct lat_result lat[NLAT];

/* One side's view of the two channels. */
struct ep {
	enum lat_kind k;
	struct cell *c;
	int side;
	int rfd, wfd;
	mqd_t mrx, mtx;
	struct mmapq *rx, *tx;
	struct ring *rrx, *rtx;
	uint64_t rx_head, tx_tail;
	uint64_t deadline;
};

static int ep_send(struct ep *e, const void *buf, uint64_t i)
{
	int r;
	switch (e->k) {
	case L_MMAPQ:
	case L_MMAPQ_SPIN: {
		uint32_t nfree = 0;
		while (nfree == 0) {
			r = mmapq_reserve(e->tx, e->deadline, &nfree);
			if (r < 0)
				return child_fail("mmapq_reserve: %s", mmapq_strerror(r));
		}
		r = mmapq_put(e->tx, buf, LAT_SIZE);
		if (r == 0)
			r = mmapq_publish(e->tx);
		if (r < 0)
			return child_fail("mmapq_put/publish: %s", mmapq_strerror(r));
		return 0;
	}
	case L_PIPE:
	case L_UNIX:
		r = write_all(e->wfd, buf, LAT_SIZE);
		return r < 0 ? child_fail("write: %s", strerror(-r)) : 0;
	case L_MQ:
		while (mq_send(e->mtx, buf, LAT_SIZE, 0) < 0)
			if (errno != EINTR)
				return child_fail("mq_send: %s", strerror(errno));
		return 0;
	case L_SPSC: {
		struct ring *rg = e->rtx;
		unsigned spins = 0;
		/* acquire: pairs with the reader's release of head */
		while (__atomic_load_n(&rg->head, __ATOMIC_ACQUIRE) + e->c->cap == e->tx_tail)
			relax(&spins);
		unsigned char *s = ring_slot(rg, e->c, e->tx_tail);
		struct mmapq_slot *h = (struct mmapq_slot *)s;
		h->seq = i;
		h->len = LAT_SIZE;
		memcpy(s + sizeof(*h), buf, LAT_SIZE);
		/* release: the slot becomes visible to the reader's acquire of tail */
		__atomic_store_n(&rg->tail, ++e->tx_tail, __ATOMIC_RELEASE);
		return 0;
	}
	default:
		return EXIT_FAIL;
	}
}

static int ep_recv(struct ep *e, void *buf)
{
	int r;
	switch (e->k) {
	case L_MMAPQ:
	case L_MMAPQ_SPIN: {
		uint32_t n = 0;
		struct mmapq_record rec;
		while (n == 0) {
			r = mmapq_available(e->rx, e->deadline, &n);
			if (r < 0)
				return child_fail("mmapq_available: %s", mmapq_strerror(r));
		}
		r = mmapq_get(e->rx, 0, &rec);
		if (r < 0 || rec.len != LAT_SIZE)
			return child_fail("mmapq_get: %s, len %" PRIu32, mmapq_strerror(r), rec.len);
		memcpy(buf, rec.data, LAT_SIZE);
		return 0; /* released by ep_done() */
	}
	case L_PIPE:
	case L_UNIX: {
		ssize_t k = read_full(e->rfd, buf, LAT_SIZE);
		return k == LAT_SIZE ? 0 : child_fail("read: %s", k < 0 ? strerror((int)-k) : "end of stream");
	}
	case L_MQ: {
		ssize_t k;
		while ((k = mq_receive(e->mrx, buf, LAT_SIZE, NULL)) < 0)
			if (errno != EINTR)
				return child_fail("mq_receive: %s", strerror(errno));
		return k == LAT_SIZE ? 0 : child_fail("mq_receive: %zd bytes", k);
	}
	case L_SPSC: {
		struct ring *rg = e->rrx;
		unsigned spins = 0;
		/* acquire: pairs with the writer's release of tail */
		while (__atomic_load_n(&rg->tail, __ATOMIC_ACQUIRE) == e->rx_head)
			relax(&spins);
		unsigned char *s = ring_slot(rg, e->c, e->rx_head);
		memcpy(buf, s + sizeof(struct mmapq_slot), LAT_SIZE);
		/* release: our read of the slot happens before its reuse */
		__atomic_store_n(&rg->head, ++e->rx_head, __ATOMIC_RELEASE);
		return 0;
	}
	default:
		return EXIT_FAIL;
	}
}

/* The record received last is handled: mmapq releases it now (the API's
 * at-least-once order: release once a record is safely dealt with; for the
 * echo side that is once the reply is sent).  The other transports consumed
 * it when they received it. */
static int ep_done(struct ep *e)
{
	if (e->k == L_MMAPQ || e->k == L_MMAPQ_SPIN) {
		int r = mmapq_release(e->rx, 1);
		if (r < 0)
			return child_fail("mmapq_release: %s", mmapq_strerror(r));
	}
	return 0;
}

static enum lat_kind cur_lat;

/* Channel 0 carries side 0 -> side 1, channel 1 the way back. */
static int ep_open(struct ep *e, struct cell *c, int side)
{
	memset(e, 0, sizeof(*e));
	e->k = cur_lat;
	e->c = c;
	e->side = side;
	e->deadline = now_ns() + FAR_NS;
	switch (e->k) {
	case L_MMAPQ:
	case L_MMAPQ_SPIN: {
		uint32_t spin = e->k == L_MMAPQ_SPIN ? c->spin_us : 0;
		e->tx = q_open(c, c->path[side], MMAPQ_ROLE_PRODUCER, LAT_SIZE, c->cap, spin);
		e->rx = q_open(c, c->path[!side], MMAPQ_ROLE_CONSUMER, LAT_SIZE, c->cap, spin);
		return e->tx && e->rx ? 0 : EXIT_FAIL;
	}
	case L_PIPE:
		/* fd[0],fd[1]: pipe 0 (read, write); fd[2],fd[3]: pipe 1 */
		e->wfd = c->fd[side ? 3 : 1];
		e->rfd = c->fd[side ? 0 : 2];
		close(c->fd[side ? 1 : 3]);
		close(c->fd[side ? 2 : 0]);
		return 0;
	case L_UNIX:
		e->rfd = e->wfd = c->fd[side];
		close(c->fd[!side]);
		return 0;
	case L_MQ:
		e->mtx = c->mq[side];
		e->mrx = c->mq[!side];
		return 0;
	case L_SPSC:
		e->rtx = c->ring[side];
		e->rrx = c->ring[!side];
		return 0;
	default:
		return EXIT_FAIL;
	}
}

static void ep_close(struct ep *e)
{
	mmapq_close(e->tx);
	mmapq_close(e->rx);
}

static int ping(struct cell *c)
{
	struct ep e;
	unsigned char sbuf[LAT_SIZE] __attribute__((aligned(64)));
	unsigned char rbuf[LAT_SIZE] __attribute__((aligned(64)));
	uint64_t *rtt = xalloc(sizeof(uint64_t) * c->iters);
	uint64_t total = c->warm + c->iters;

	if (ep_open(&e, c, 0))
		return EXIT_FAIL;
	barrier();
	for (uint64_t i = 0; i < total; i++) {
		uint64_t t0, t1;
		rec_fill(sbuf, LAT_SIZE, i);
		t0 = now_ns();
		if (ep_send(&e, sbuf, i) || ep_recv(&e, rbuf))
			return EXIT_FAIL;
		t1 = now_ns();
		if (ep_done(&e))
			return EXIT_FAIL;
		if (!rec_ok(rbuf, LAT_SIZE, i))
			return child_fail("ping %" PRIu64 ": answer is record %" PRIu64, i, rec_index(rbuf));
		if (i >= c->warm)
			rtt[i - c->warm] = t1 - t0;
	}
	qsort(rtt, c->iters, sizeof(uint64_t), cmp_u64);
	ctl->p50_ns = rtt[c->iters / 2] / 2;
	ctl->p99_ns = rtt[c->iters * 99 / 100] / 2;
	ctl->p999_ns = rtt[c->iters * 999 / 1000] / 2;
	ctl->max_ns = rtt[c->iters - 1] / 2;
	ctl->verified = total;
	ep_close(&e);
	free(rtt);
	return 0;
}

static int pong(struct cell *c)
{
	struct ep e;
	unsigned char buf[LAT_SIZE] __attribute__((aligned(64)));
	uint64_t total = c->warm + c->iters;

	if (ep_open(&e, c, 1))
		return EXIT_FAIL;
	barrier();
	for (uint64_t i = 0; i < total; i++) {
		if (ep_recv(&e, buf))
			return EXIT_FAIL;
		if (!rec_ok(buf, LAT_SIZE, i))
			return child_fail("pong %" PRIu64 ": got record %" PRIu64, i, rec_index(buf));
		if (ep_send(&e, buf, i) || ep_done(&e))
			return EXIT_FAIL;
	}
	ep_close(&e);
	return 0;
}

static int lat_setup(enum lat_kind k, struct cell *c, char *why, size_t whylen)
{
	c->fd[0] = c->fd[1] = c->fd[2] = c->fd[3] = -1;
	c->mq[0] = c->mq[1] = (mqd_t)-1;
	c->size = LAT_SIZE;
	c->cap = 64;
	c->slot_size = mmapq_slot_size(LAT_SIZE);
	c->spin_us = o.spin_us;
	switch (k) {
	case L_MMAPQ:
	case L_MMAPQ_SPIN:
		for (int i = 0; i < 2; i++) {
			snprintf(c->path[i], sizeof(c->path[i]), "%s/lat%d.q", tmpdir, i);
			unlink(c->path[i]);
		}
		return 0;
	case L_PIPE:
		if (pipe2(c->fd, O_CLOEXEC) < 0 || pipe2(c->fd + 2, O_CLOEXEC) < 0) {
			snprintf(why, whylen, "pipe: %s", strerror(errno));
			return -1;
		}
		return 0;
	case L_UNIX:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c->fd) < 0) {
			snprintf(why, whylen, "socketpair: %s", strerror(errno));
			return -1;
		}
		return 0;
	case L_MQ:
		for (int i = 0; i < 2; i++) {
			char name[64];
			struct mq_attr a = {.mq_maxmsg = msg_max < 10 ? msg_max : 10, .mq_msgsize = LAT_SIZE};
			snprintf(name, sizeof(name), "/mmapq-bench-%d-lat%d", (int)getpid(), i);
			mq_unlink(name);
			c->mq[i] = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
			if (c->mq[i] == (mqd_t)-1) {
				snprintf(why, whylen, "mq_open: %s", strerror(errno));
				return -1;
			}
			mq_unlink(name); /* the descriptors keep it alive */
		}
		return 0;
	case L_SPSC:
		c->ring_len = sizeof(struct ring) + (size_t)c->cap * c->slot_size;
		for (int i = 0; i < 2; i++) {
			c->ring[i] = mmap(NULL, c->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			                  -1, 0);
			if (c->ring[i] == MAP_FAILED) {
				c->ring[i] = NULL;
				snprintf(why, whylen, "mmap: %s", strerror(errno));
				return -1;
			}
		}
		return 0;
	default:
		return -1;
	}
}

static void lat_cell(enum lat_kind k)
{
	struct lat_result *res = &lat[k];
	bool spins = k == L_SPSC || k == L_MMAPQ_SPIN;

	res->ran = true;
	res->iters = o.quick ? 500 : spins ? 200000 : 20000;
	for (int run = 0; run < o.runs; run++) {
		struct cell c = {.iters = res->iters, .warm = res->iters / 10};
		cur_lat = k;
		if (lat_setup(k, &c, res->why, sizeof(res->why)) < 0 ||
		    run_pair(ping, pong, &c, res->why, sizeof(res->why)) < 0) {
			cell_teardown(&c);
			res->failed = true;
			failed = true;
			note("latency %-30s FAILED: %s", ldefs[k].label, res->why);
			return;
		}
		cell_teardown(&c);
		total_verified += 2 * ctl->verified;
		res->p50[res->nruns] = (double)ctl->p50_ns;
		res->p99[res->nruns] = (double)ctl->p99_ns;
		res->nruns++;
	}
	res->med_p50 = median(res->p50, res->nruns);
	res->med_p99 = median(res->p99, res->nruns);
	note("latency %-30s one-way p50 %8.0f ns  p99 %8.0f ns  (%" PRIu64 " round trips x %d)",
	     k == L_MMAPQ_SPIN ? "mmapq, spin" : ldefs[k].label, res->med_p50, res->med_p99,
	     res->iters, res->nruns);
}

/* ---- end to end ------------------------------------------------------------------ */

static char *bin_dir;
static char *input_path;
static uint64_t input_bytes;

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* count integers, one per line, in canonical form: the expected output of
 * both jobs is the input file itself.  Magnitudes spread over 1..19 digits. */
static int make_input(uint64_t count)
{
	char *buf = xalloc(1 << 20);
	size_t len = 0;
	uint64_t s = 0x2545F4914F6CDD1Dull;
	int fd;

	input_path = tu_path(tmpdir, "ints.txt");
	fd = open(input_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		note("%s: %s", input_path, strerror(errno));
		return -1;
	}
	input_bytes = 0;
	for (uint64_t i = 0; i < count; i++) {
		uint64_t r = rng_next(&s);
		uint64_t u = rng_next(&s) >> (1 + r % 63);
		int64_t v = (r & 64) ? -(int64_t)u : (int64_t)u;
		len += mmapq_fmt_int(buf + len, v);
		if (len > (1 << 20) - 32) {
			if (write_all(fd, buf, len) < 0)
				goto bad;
			input_bytes += len;
			len = 0;
		}
	}
	if (write_all(fd, buf, len) < 0)
		goto bad;
	input_bytes += len;
	close(fd);
	free(buf);
	return 0;
bad:
	note("%s: write: %s", input_path, strerror(errno));
	close(fd);
	free(buf);
	return -1;
}

static int files_equal(const char *a, const char *b, char *why, size_t whylen)
{
	int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC);
	char *ba = xalloc(1 << 20), *bb = xalloc(1 << 20);
	uint64_t off = 0;
	int ret = -1;

	if (fa < 0 || fb < 0) {
		snprintf(why, whylen, "cannot open %s", fa < 0 ? a : b);
		goto out;
	}
	for (;;) {
		ssize_t ka = read(fa, ba, 1 << 20);
		if (ka < 0) {
			snprintf(why, whylen, "read %s: %s", a, strerror(errno));
			goto out;
		}
		ssize_t kb = ka ? read_full(fb, bb, (size_t)ka) : read(fb, bb, 1);
		if (ka == 0) {
			if (kb != 0)
				snprintf(why, whylen, "%s is longer than %s (%" PRIu64 " bytes)", b, a, off);
			else
				ret = 0;
			goto out;
		}
		if (kb != ka) {
			snprintf(why, whylen, "%s ends at byte %" PRIu64 ", %s goes on", b, off, a);
			goto out;
		}
		if (memcmp(ba, bb, (size_t)ka)) {
			size_t i = 0;
			while (ba[i] == bb[i])
				i++;
			snprintf(why, whylen, "%s differs from %s at byte %" PRIu64, b, a, off + i);
			goto out;
		}
		off += (uint64_t)ka;
	}
out:
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	free(ba);
	free(bb);
	return ret;
}

static pid_t spawn(char *const argv[], int in_fd, int out_fd, int err_fd, int cpu)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		pin(cpu);
		if (in_fd >= 0)
			dup2(in_fd, STDIN_FILENO);
		dup2(out_fd, STDOUT_FILENO);
		dup2(err_fd, STDERR_FILENO);
		unsetenv("NOTIFY_SOCKET");
		unsetenv("WATCHDOG_USEC");
		unsetenv("WATCHDOG_PID");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		unsetenv("MMAPQ_FAULT");
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

static char *write_config(const char *name, const char *output, uint32_t cap, uint32_t rsize)
{
	char *path = tu_path(tmpdir, name);
	FILE *f = fopen(path, "w");
	if (!f) {
		note("%s: %s", path, strerror(errno));
		exit(EXIT_FAIL);
	}
	fprintf(f, "[queue]\npath = %s/%s.q\ncapacity = %" PRIu32 "\nrecord_size = %" PRIu32
	        "\nformat = int\nsync = never\n[producer]\ninput = stdin\non_full = block\n"
	        "[consumer]\noutput = %s\n[log]\nlevel = warning\nstats_interval = 0\n",
	        tmpdir, name, cap, rsize, output);
	fclose(f);
	return path;
}

/* The daemons twice: with the shipped geometry (capacity 1024, record_size
 * 64), and with a big ring (--e2e-big-capacity, record_size 8). */
enum e2e_kind {
	E_DAEMON_NULL, E_DAEMON_BIG_NULL, E_PIPE_NULL,
	E_DAEMON_FILE, E_DAEMON_BIG_FILE, E_PIPE_FILE, NE2E
};

static const char *const e2e_label[NE2E] = {
	[E_DAEMON_NULL] = "daemons, output null",
	[E_DAEMON_BIG_NULL] = "daemons (big ring), output null",
	[E_PIPE_NULL] = "parser | pipe | reader, output null",
	[E_DAEMON_FILE] = "daemons, output file",
	[E_DAEMON_BIG_FILE] = "daemons (big ring), output file",
	[E_PIPE_FILE] = "parser | pipe | printer, output file",
};
static const char *const e2e_key[NE2E] = {"daemons_null", "daemons_big_null", "pipe_null",
                                          "daemons_file", "daemons_big_file", "pipe_file"};

struct e2e_result {
	bool ran, failed;
	char why[256];
	int nruns;
	double secs[MAX_RUNS];
	double med_secs;
};
static struct e2e_result e2e[NE2E];

static int daemon_job(bool to_file, uint32_t cap, uint32_t rsize, char *why, size_t whylen,
                      double *secs)
{
	char *out = tu_path(tmpdir, "e2e-daemons.out");
	char output[PATH_MAX + 8];
	char *cfg, *qpath, *logp = tu_path(tmpdir, "e2e-daemons.log");
	char *prod = tu_path(bin_dir, "mmapq-producer"), *cons = tu_path(bin_dir, "mmapq-consumer");
	char count[32];
	int in_fd, null_fd, log_fd, ret = -1;
	uint64_t t0, t1;

	snprintf(output, sizeof(output), to_file ? "file:%s" : "null", out);
	cfg = write_config("e2e.ini", output, cap, rsize);
	qpath = tu_path(tmpdir, "e2e.ini.q");
	unlink(qpath);
	unlink(out);
	{
		/* The queue file exists before the clock starts, as a service's
		 * does (and as the pipe does): mmapq-producer with an empty input
		 * creates it and exits.  Creation fsyncs the new file and its
		 * directory, milliseconds on a disk, which the job should not pay. */
		char *argv[] = {prod, (char *)"--config", cfg, NULL};
		int dn = open("/dev/null", O_RDWR | O_CLOEXEC);
		pid_t pid = dn >= 0 ? spawn(argv, dn, dn, dn, -1) : -1;
		int st = pid > 0 ? tu_wait(pid, CHILD_TIMEOUT_MS) : -1;
		if (dn >= 0)
			close(dn);
		if (st == -ETIMEDOUT)
			tu_kill(pid);
		if (pid <= 0 || tu_exit_code(st) != 0) {
			snprintf(why, whylen, "mmapq-producer could not create the queue file (%d)",
			         pid > 0 ? tu_exit_code(st) : -1);
			free(cfg);
			free(qpath);
			free(out);
			free(logp);
			free(prod);
			free(cons);
			return -1;
		}
	}
	snprintf(count, sizeof(count), "%" PRIu64, o.e2e_count);
	in_fd = open(input_path, O_RDONLY | O_CLOEXEC);
	null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	log_fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (in_fd < 0 || null_fd < 0 || log_fd < 0) {
		snprintf(why, whylen, "open: %s", strerror(errno));
		goto out;
	}
	{
		char *cargv[] = {cons, (char *)"--config", cfg, (char *)"--count", count, NULL};
		char *pargv[] = {prod, (char *)"--config", cfg, NULL};
		pid_t pid[2];
		int st[2];
		t0 = now_ns();
		pid[1] = spawn(cargv, -1, null_fd, log_fd, cpu_b);
		pid[0] = spawn(pargv, in_fd, null_fd, log_fd, cpu_a);
		wait_pair(pid, st, CHILD_TIMEOUT_MS);
		t1 = now_ns();
		if (tu_exit_code(st[0]) != 0 || tu_exit_code(st[1]) != 0) {
			snprintf(why, whylen, "mmapq-producer exited %d, mmapq-consumer %d (-1: killed after"
			         " %d s, 137: killed when the other failed); see %s", tu_exit_code(st[0]),
			         tu_exit_code(st[1]), CHILD_TIMEOUT_MS / 1000, logp);
			goto out;
		}
	}
	if (to_file && files_equal(input_path, out, why, whylen) < 0)
		goto out;
	*secs = (double)(t1 - t0) / 1e9;
	ret = 0;
out:
	if (in_fd >= 0)
		close(in_fd);
	if (null_fd >= 0)
		close(null_fd);
	if (log_fd >= 0)
		close(log_fd);
	unlink(out);
	unlink(qpath);
	free(out);
	free(cfg);
	free(qpath);
	free(logp);
	free(prod);
	free(cons);
	return ret;
}

/* The pipe version: the parser process. */
struct pipe_parser {
	int fd;
	int64_t *buf;
	size_t n;
	int err;
	uint64_t bad;
};

#define PIPE_CHUNK 65536

static int pp_record(void *ctx, const void *data, uint32_t len)
{
	struct pipe_parser *s = ctx;
	memcpy(&s->buf[s->n++], data, sizeof(int64_t));
	(void)len;
	if (s->n == PIPE_CHUNK / sizeof(int64_t)) {
		int r = write_all(s->fd, s->buf, PIPE_CHUNK);
		if (r < 0)
			return r;
		s->n = 0;
	}
	return 0;
}

static void pp_error(void *ctx, const struct mmapq_parse_error *e)
{
	struct pipe_parser *s = ctx;
	s->bad++;
	fprintf(stderr, "input:%" PRIu64 ":%" PRIu64 ": %s\n", e->line, e->column, e->what);
}

static int e2e_parse_child(int in_fd, int out_fd)
{
	struct pipe_parser s = {.fd = out_fd, .buf = xalloc(PIPE_CHUNK)};
	struct mmapq_parser *p;
	char *in = xalloc(PIPE_CHUNK);
	int r = mmapq_parser_new(MMAPQ_FORMAT_INT, 8, pp_record, pp_error, &s, &p);

	if (r < 0)
		return child_fail("parser: %s", strerror(-r));
	for (;;) {
		ssize_t k = read(in_fd, in, PIPE_CHUNK);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return child_fail("read input: %s", strerror(errno));
		if (k == 0)
			break;
		r = mmapq_parser_feed(p, in, (size_t)k);
		if (r < 0)
			return child_fail("write to pipe: %s", strerror(-r));
	}
	r = mmapq_parser_finish(p);
	if (r == 0)
		r = write_all(out_fd, s.buf, s.n * sizeof(int64_t));
	if (r < 0)
		return child_fail("write to pipe: %s", strerror(-r));
	if (s.bad)
		return child_fail("%" PRIu64 " bad input tokens", s.bad);
	mmapq_parser_free(p);
	close(out_fd);
	return 0;
}

/* The reader/printer: formats as mmapq-consumer does, writes 64 KiB blocks. */
static int e2e_print_child(int in_fd, int out_fd, uint64_t expect)
{
	char *in = xalloc(PIPE_CHUNK + 8), *out = xalloc(PIPE_CHUNK + 64);
	size_t have = 0, olen = 0;
	uint64_t count = 0;
	int r;

	for (;;) {
		ssize_t k = read(in_fd, in + have, PIPE_CHUNK - have);
		size_t off = 0;
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return child_fail("read pipe: %s", strerror(errno));
		if (k == 0)
			break;
		have += (size_t)k;
		for (; have - off >= 8; off += 8, count++) {
			if (out_fd < 0)
				continue;
			int64_t v;
			memcpy(&v, in + off, 8);
			olen += mmapq_fmt_int(out + olen, v);
			if (olen > PIPE_CHUNK - 24) {
				r = write_all(out_fd, out, olen);
				if (r < 0)
					return child_fail("write output: %s", strerror(-r));
				olen = 0;
			}
		}
		memmove(in, in + off, have - off);
		have -= off;
	}
	if (out_fd >= 0 && olen && (r = write_all(out_fd, out, olen)) < 0)
		return child_fail("write output: %s", strerror(-r));
	if (have || count != expect)
		return child_fail("read %" PRIu64 " integers (+%zu bytes), expected %" PRIu64, count, have,
		                  expect);
	return 0;
}

static int pipe_job(bool to_file, char *why, size_t whylen, double *secs)
{
	char *out = tu_path(tmpdir, "e2e-pipe.out");
	int pfd[2], in_fd = -1, out_fd = -1, ret = -1, st[2];
	pid_t pid[2];
	uint64_t t0, t1;

	unlink(out);
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		free(out);
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	t0 = now_ns();
	pid[0] = fork();
	if (pid[0] == 0) {
		pin(cpu_a);
		close(pfd[0]);
		in_fd = open(input_path, O_RDONLY | O_CLOEXEC);
		if (in_fd < 0)
			_exit(child_fail("%s: %s", input_path, strerror(errno)));
		_exit(e2e_parse_child(in_fd, pfd[1]));
	}
	pid[1] = fork();
	if (pid[1] == 0) {
		pin(cpu_b);
		close(pfd[1]);
		if (to_file) {
			out_fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
			if (out_fd < 0)
				_exit(child_fail("%s: %s", out, strerror(errno)));
		}
		_exit(e2e_print_child(pfd[0], out_fd, o.e2e_count));
	}
	close(pfd[0]);
	close(pfd[1]);
	wait_pair(pid, st, CHILD_TIMEOUT_MS);
	t1 = now_ns();
	if (tu_exit_code(st[0]) != 0 || tu_exit_code(st[1]) != 0) {
		snprintf(why, whylen, "parser exited %d, printer %d", tu_exit_code(st[0]), tu_exit_code(st[1]));
		goto out;
	}
	if (to_file && files_equal(input_path, out, why, whylen) < 0)
		goto out;
	*secs = (double)(t1 - t0) / 1e9;
	ret = 0;
out:
	unlink(out);
	free(out);
	return ret;
}

static void run_e2e(void)
{
	note("end to end: generating %" PRIu64 " integers...", o.e2e_count);
	if (make_input(o.e2e_count) < 0) {
		failed = true;
		for (int k = 0; k < NE2E; k++) {
			e2e[k].ran = e2e[k].failed = true;
			snprintf(e2e[k].why, sizeof(e2e[k].why), "cannot write the input file");
		}
		return;
	}
	note("end to end: %s, %" PRIu64 " bytes", input_path, input_bytes);
	/* interleaved, so that drift hits every variant alike */
	for (int run = 0; run < o.runs; run++) {
		for (int k = 0; k < NE2E; k++) {
			struct e2e_result *res = &e2e[k];
			bool big = k == E_DAEMON_BIG_NULL || k == E_DAEMON_BIG_FILE;
			bool daemons = big || k == E_DAEMON_NULL || k == E_DAEMON_FILE;
			bool to_file = k >= E_DAEMON_FILE;
			double s = 0;
			int r;

			if (res->failed)
				continue;
			res->ran = true;
			r = daemons ? daemon_job(to_file, big ? o.e2e_big_capacity : o.e2e_capacity,
			                         big ? 8 : o.e2e_record_size, res->why, sizeof(res->why), &s) :
			              pipe_job(to_file, res->why, sizeof(res->why), &s);
			if (r < 0) {
				res->failed = true;
				failed = true;
				note("end to end: %s: FAILED: %s", e2e_label[k], res->why);
				continue;
			}
			total_verified += o.e2e_count;
			res->secs[res->nruns++] = s;
		}
	}
	for (int k = 0; k < NE2E; k++) {
		if (e2e[k].failed)
			continue;
		e2e[k].med_secs = median(e2e[k].secs, e2e[k].nruns);
		note("end to end: %-48s %7.3f s  %6.2f M integers/s", e2e_label[k], e2e[k].med_secs,
		     (double)o.e2e_count / e2e[k].med_secs / 1e6);
	}
}

/* ---- idle ---------------------------------------------------------------------- */

struct idle_result {
	bool ran, failed;
	char why[256];
	double seconds;
	long ticks[2];          /* utime+stime delta, clock ticks: producer, consumer */
	uint64_t run_ns[2];     /* /proc/PID/schedstat run time delta, ns (-1: n/a) */
	uint64_t wakeups[2];    /* voluntary context switches delta */
	double cpu_pct[2];
};
static struct idle_result idle;

static int proc_times(pid_t pid, long *ticks, uint64_t *run_ns, uint64_t *vcsw)
{
	char path[64], buf[4096], *p;
	unsigned long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* comm may hold spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	*ticks = (long)(ut + st);
	*run_ns = UINT64_MAX;
	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	f = fopen(path, "r");
	if (f) {
		unsigned long long rn;
		if (fscanf(f, "%llu", &rn) == 1)
			*run_ns = rn;
		fclose(f);
	}
	*vcsw = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f) {
		char line[256];
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "voluntary_ctxt_switches: %" SCNu64, vcsw) == 1)
				break;
		fclose(f);
	}
	return 0;
}

static void run_idle(void)
{
	char *cfg = write_config("idle.ini", "null", 1024, 64);
	char *qpath = tu_path(tmpdir, "idle.ini.q"), *logp = tu_path(tmpdir, "idle.log");
	char *prod = tu_path(bin_dir, "mmapq-producer"), *cons = tu_path(bin_dir, "mmapq-consumer");
	char *cargv[] = {cons, (char *)"--config", cfg, NULL};
	char *pargv[] = {prod, (char *)"--config", cfg, NULL};
	int in[2] = {-1, -1}, null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	int log_fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	pid_t pid[2] = {-1, -1};
	long t0[2], t1[2];
	uint64_t r0[2], r1[2], v0[2], v1[2];
	uint64_t deadline;
	struct timespec ts;

	idle.ran = true;
	idle.seconds = o.idle_seconds;
	unlink(qpath);
	if (pipe2(in, O_CLOEXEC) < 0 || null_fd < 0 || log_fd < 0) {
		snprintf(idle.why, sizeof(idle.why), "set-up: %s", strerror(errno));
		goto bad;
	}
	/* the producer reads an open pipe nobody writes to */
	pid[0] = spawn(pargv, in[0], null_fd, log_fd, cpu_a);
	pid[1] = spawn(cargv, -1, null_fd, log_fd, cpu_b);
	close(in[0]);
	in[0] = -1;
	/* wait (polling, with a deadline) until both have attached */
	deadline = now_ns() + 10000000000ull;
	for (;;) {
		struct mmapq_params p = {.path = qpath, .role = MMAPQ_ROLE_OBSERVER};
		struct mmapq *q = NULL;
		struct mmapq_status st;
		bool up = false;
		if (mmapq_open(&p, &q, NULL) == 0 && mmapq_status(q, &st) == 0)
			up = st.producer.attached && st.consumer.attached && st.producer.pid == pid[0] &&
			     st.consumer.pid == pid[1];
		mmapq_close(q);
		if (up)
			break;
		if (now_ns() > deadline) {
			snprintf(idle.why, sizeof(idle.why), "the daemons did not attach within 10 s; see %s", logp);
			goto bad;
		}
		ts = (struct timespec){0, 10000000};
		nanosleep(&ts, NULL);
	}
	/* let both reach their wait */
	ts = (struct timespec){0, 200000000};
	nanosleep(&ts, NULL);
	for (int i = 0; i < 2; i++)
		if (proc_times(pid[i], &t0[i], &r0[i], &v0[i]) < 0) {
			snprintf(idle.why, sizeof(idle.why), "cannot read /proc/%d/stat", (int)pid[i]);
			goto bad;
		}
	ts.tv_sec = (time_t)o.idle_seconds;
	ts.tv_nsec = (long)((o.idle_seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	for (int i = 0; i < 2; i++)
		if (proc_times(pid[i], &t1[i], &r1[i], &v1[i]) < 0) {
			snprintf(idle.why, sizeof(idle.why), "pid %d exited while idle; see %s", (int)pid[i], logp);
			goto bad;
		}
	for (int i = 0; i < 2; i++) {
		idle.ticks[i] = t1[i] - t0[i];
		idle.run_ns[i] = r0[i] == UINT64_MAX || r1[i] == UINT64_MAX ? UINT64_MAX : r1[i] - r0[i];
		idle.wakeups[i] = v1[i] - v0[i];
		idle.cpu_pct[i] = idle.run_ns[i] != UINT64_MAX ?
		                  (double)idle.run_ns[i] / (o.idle_seconds * 1e9) * 100 :
		                  (double)idle.ticks[i] / (double)sysconf(_SC_CLK_TCK) / o.idle_seconds * 100;
	}
	/* stop them: SIGTERM must end both within a second or two */
	for (int i = 0; i < 2; i++) {
		kill(pid[i], SIGTERM);
		int st = tu_wait(pid[i], 5000);
		if (st == -ETIMEDOUT || tu_exit_code(st) != 0) {
			snprintf(idle.why, sizeof(idle.why), "%s did not exit 0 on SIGTERM (%d)",
			         i ? "mmapq-consumer" : "mmapq-producer", st == -ETIMEDOUT ? -1 : tu_exit_code(st));
			if (st == -ETIMEDOUT)
				tu_kill(pid[i]);
			pid[i] = -1;
			goto bad;
		}
		pid[i] = -1;
	}
	note("idle pair over %.1f s: producer %ld ticks, %.4f%% CPU, %" PRIu64 " wake-ups; consumer %ld"
	     " ticks, %.4f%% CPU, %" PRIu64 " wake-ups", o.idle_seconds, idle.ticks[0], idle.cpu_pct[0],
	     idle.wakeups[0], idle.ticks[1], idle.cpu_pct[1], idle.wakeups[1]);
	goto out;
bad:
	idle.failed = true;
	failed = true;
	note("idle: FAILED: %s", idle.why);
	for (int i = 0; i < 2; i++)
		if (pid[i] > 0)
			tu_kill(pid[i]);
out:
	if (in[0] >= 0)
		close(in[0]);
	if (in[1] >= 0)
		close(in[1]);
	if (null_fd >= 0)
		close(null_fd);
	if (log_fd >= 0)
		close(log_fd);
	unlink(qpath);
	free(cfg);
	free(qpath);
	free(logp);
	free(prod);
	free(cons);
}

/* ---- report ---------------------------------------------------------------------- */

static const char *size_label(uint32_t s)
{
	static char b[NSIZES][16];
	for (int i = 0; i < NSIZES; i++)
		if (sizes[i] == s) {
			if (s >= 1024)
				snprintf(b[i], sizeof(b[i]), "%u KiB", s / 1024);
			else
				snprintf(b[i], sizeof(b[i]), "%u B", s);
			return b[i];
		}
	return "?";
}

static void fmt_rate(char *out, size_t len, double v)
{
	if (v >= 1e9)
		snprintf(out, len, "%.2fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(out, len, "%.1fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(out, len, "%.0fk", v / 1e3);
	else
		snprintf(out, len, "%.0f", v);
}

static double ratio_of(enum transport mine, enum transport peer, int si)
{
	const struct tput_result *a = &tput[mine][si], *b = &tput[peer][si];
	if (!a->ran || a->failed || !b->ran || b->failed || b->med_rps <= 0)
		return 0;
	return a->med_rps / b->med_rps;
}

struct target {
	char what[96];
	char value[64];
	int met; /* 1 met, 0 not met, -1 not measured */
};
static struct target targets[32];
static int ntargets;

static void add_target(int met, const char *value, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_target(int met, const char *value, const char *fmt, ...)
{
	va_list ap;
	struct target *t = &targets[ntargets++];
	va_start(ap, fmt);
	vsnprintf(t->what, sizeof(t->what), fmt, ap);
	va_end(ap);
	snprintf(t->value, sizeof(t->value), "%s", value);
	t->met = met;
}

static void eval_targets(void)
{
	static const double pipe_goal[NSIZES] = {50, 50, 8, 3.5};
	char v[64];

	for (int si = 0; si < NSIZES; si++) {
		double r = ratio_of(T_MMAPQ, T_PIPE, si);
		snprintf(v, sizeof(v), "%.1fx", r);
		add_target(r > 0 ? r >= pipe_goal[si] : -1, r > 0 ? v : "not measured",
		           "throughput %s: mmapq (%u/batch) >= %.1fx pipe", size_label(sizes[si]),
		           ring_batch(ring_cap(sizes[si]), o.batch), pipe_goal[si]);
	}
	for (int si = 0; si < NSIZES; si++) {
		double r = ratio_of(T_MMAPQ, T_SPSC, si);
		snprintf(v, sizeof(v), "%.2fx", r);
		add_target(r > 0 ? r >= 0.8 : -1, r > 0 ? v : "not measured",
		           "throughput %s: mmapq (%u/batch) >= 0.8x lock-free SPSC ring", size_label(sizes[si]),
		           ring_batch(ring_cap(sizes[si]), o.batch));
	}
	for (int si = 0; si < NSIZES; si++) {
		double r = ratio_of(T_MMAPQ_BIG, T_SPSC, si);
		uint32_t cap = ring_cap(sizes[si]);
		if (ring_batch(cap, o.big_batch) == ring_batch(cap, o.batch))
			continue; /* the ring is too small for a bigger batch: the same row */
		snprintf(v, sizeof(v), "%.2fx", r);
		add_target(r > 0 ? r >= 0.8 : -1, r > 0 ? v : "not measured",
		           "throughput %s: mmapq (%u/batch) >= 0.8x lock-free SPSC ring", size_label(sizes[si]),
		           ring_batch(cap, o.big_batch));
	}
	if (lat[L_MMAPQ].nruns && lat[L_PIPE].nruns) {
		double r50 = lat[L_MMAPQ].med_p50 / lat[L_PIPE].med_p50;
		double r99 = lat[L_MMAPQ].med_p99 / lat[L_PIPE].med_p99;
		snprintf(v, sizeof(v), "%.2fx (%.1f vs %.1f us)", r50, lat[L_MMAPQ].med_p50 / 1e3,
		         lat[L_PIPE].med_p50 / 1e3);
		add_target(r50 <= 1.1, v, "blocking latency p50: mmapq <= 1.1x pipe");
		snprintf(v, sizeof(v), "%.2fx (%.1f vs %.1f us)", r99, lat[L_MMAPQ].med_p99 / 1e3,
		         lat[L_PIPE].med_p99 / 1e3);
		add_target(r99 <= 1.3, v, "blocking latency p99: mmapq <= 1.3x pipe");
	} else {
		add_target(-1, "not measured", "blocking latency p50: mmapq <= 1.1x pipe");
		add_target(-1, "not measured", "blocking latency p99: mmapq <= 1.3x pipe");
	}
	if (lat[L_MMAPQ_SPIN].nruns) {
		snprintf(v, sizeof(v), "%.2f us (spin_us = %" PRIu32 ")", lat[L_MMAPQ_SPIN].med_p50 / 1e3, o.spin_us);
		add_target(lat[L_MMAPQ_SPIN].med_p50 < 1000, v, "latency p50 with spin_us: mmapq < 1 us");
	} else {
		add_target(-1, "not measured", "latency p50 with spin_us: mmapq < 1 us");
	}
	for (int k = 0; k < 4; k++) {
		const struct e2e_result *d = &e2e[(const int[]){E_DAEMON_NULL, E_DAEMON_FILE, E_DAEMON_BIG_NULL,
		                                                E_DAEMON_BIG_FILE}[k]];
		const struct e2e_result *p = &e2e[k % 2 ? E_PIPE_FILE : E_PIPE_NULL];
		const char *what = k % 2 ? "file" : "null", *ring = k < 2 ? "" : " (big ring)";
		if (d->nruns && p->nruns && !d->failed && !p->failed) {
			snprintf(v, sizeof(v), "%.3f s vs %.3f s (%.2fx)", d->med_secs, p->med_secs,
			         p->med_secs / d->med_secs);
			add_target(d->med_secs <= p->med_secs, v, "end to end, output %s: daemons%s at least as fast"
			           " as the pipe job", what, ring);
		} else {
			add_target(-1, "not measured", "end to end, output %s: daemons%s at least as fast as the"
			           " pipe job", what, ring);
		}
	}
	if (idle.ran && !idle.failed) {
		snprintf(v, sizeof(v), "%ld + %ld ticks, %.4f%% + %.4f%% CPU", idle.ticks[0], idle.ticks[1],
		         idle.cpu_pct[0], idle.cpu_pct[1]);
		add_target(idle.ticks[0] == 0 && idle.ticks[1] == 0, v, "idle pair: 0%% CPU over %.0f s",
		           o.idle_seconds);
	} else {
		add_target(-1, "not measured", "idle pair: 0%% CPU over %.0f s", o.idle_seconds);
	}
}

static void print_machine(FILE *f)
{
	fprintf(f, "machine: %d CPUs online (%s), kernel ", ncpus_online, cpu_model);
	{
		FILE *v = fopen("/proc/sys/kernel/osrelease", "r");
		char rel[128] = "?";
		if (v) {
			if (fgets(rel, sizeof(rel), v))
				rel[strcspn(rel, "\n")] = '\0';
			fclose(v);
		}
		fprintf(f, "%s\n", rel);
	}
	if (o.nice_set)
		fprintf(f, "priority: nice %d (benchmark, children and daemons)\n", o.nice);
	if (cpu_b >= 0)
		fprintf(f, "pinning: producer side on CPU %d, consumer side on CPU %d\n", cpu_a, cpu_b);
	else
		fprintf(f, "pinning: NONE (only one CPU available): both processes share it\n");
}

static void print_tables(void)
{
	char b[64];

	printf("mmapq_bench%s: median of %d run%s per cell, ~%.2f s each\n", o.quick ? " --quick" : "",
	       o.runs, o.runs > 1 ? "s" : "", o.quick ? 0.0 : o.seconds);
	print_machine(stdout);
	if (o.tput) {
		printf("\nThroughput, records/s (payload MB/s); every record verified\n");
		printf("%-34s", "transport");
		for (int si = 0; si < NSIZES; si++)
			printf(" %20s", size_label(sizes[si]));
		printf("\n");
		for (int t = 0; t < NTRANSPORTS; t++) {
			if (!(o.only_mask & (1u << t)))
				continue;
			char label[64];
			if (t == T_MQ) {
				long depth = 0;
				for (int si = 0; si < NSIZES; si++)
					if (tput[T_MQ][si].nruns && tput[T_MQ][si].depth > depth)
						depth = tput[T_MQ][si].depth;
				snprintf(label, sizeof(label), "POSIX mq (depth %ld)", depth ? depth : msg_max);
			} else if (t == T_MMAPQ || t == T_MMAPQ_BIG || t == T_SPSC) {
				snprintf(label, sizeof(label), "%s, %u/batch", t == T_MMAPQ_BIG ? "mmapq (library)" :
				         tdefs[t].label, t == T_SPSC ? o.spsc_batch : t == T_MMAPQ_BIG ? o.big_batch : o.batch);
			} else {
				snprintf(label, sizeof(label), "%s", tdefs[t].label);
			}
			printf("%-34s", label);
			for (int si = 0; si < NSIZES; si++) {
				const struct tput_result *r = &tput[t][si];
				char cellb[128];
				if (!(o.size_mask & (1u << si)))
					snprintf(cellb, sizeof(cellb), "-");
				else if (r->failed)
					snprintf(cellb, sizeof(cellb), "FAILED");
				else if (!r->ran || r->nruns == 0)
					snprintf(cellb, sizeof(cellb), "%s", t == T_MQ ? "not possible" : "-");
				else {
					fmt_rate(b, sizeof(b), r->med_rps);
					snprintf(cellb, sizeof(cellb), "%s (%.0f)", b, r->med_rps * sizes[si] / 1e6);
				}
				printf(" %20s", cellb);
			}
			printf("\n");
		}
		printf("\nmmapq (%u/batch) / peer (throughput ratio)\n", o.batch);
		for (int t = 0; t < NTRANSPORTS + 2; t++) {
			/* the last two lines: the big-batch row against the ring and the pipe */
			enum transport mine = t < NTRANSPORTS ? T_MMAPQ : T_MMAPQ_BIG;
			enum transport peer = t < NTRANSPORTS ? (enum transport)t : t == NTRANSPORTS ? T_SPSC : T_PIPE;
			char label[64];
			if (peer == T_MMAPQ || peer == T_MMAPQ_BIG || !(o.only_mask & (1u << peer)) ||
			    !(o.only_mask & (1u << mine)))
				continue;
			if (mine == T_MMAPQ_BIG)
				snprintf(label, sizeof(label), "(%u/batch) / %s", o.big_batch, tdefs[peer].label);
			else
				snprintf(label, sizeof(label), "%s", tdefs[peer].label);
			printf("%-34s", label);
			for (int si = 0; si < NSIZES; si++) {
				double r = ratio_of(mine, peer, si);
				if (r > 0)
					snprintf(b, sizeof(b), "%.2fx", r);
				else
					snprintf(b, sizeof(b), "-");
				printf(" %20s", b);
			}
			printf("\n");
		}
		printf("rings: mmapq, textbook and spsc have the same slots (16 B header + payload) and\n"
		       "capacity; a batch is at most a quarter of it:");
		for (int si = 0; si < NSIZES; si++) {
			uint32_t cap = ring_cap(sizes[si]);
			printf("%s %s: %u slots, batches %u/%u/%u", si ? "," : "", size_label(sizes[si]), cap,
			       ring_batch(cap, o.batch), ring_batch(cap, o.big_batch), ring_batch(cap, o.spsc_batch));
		}
		printf(" (mmapq/big/spsc)\n");
	}
	if (o.lat) {
		printf("\nOne-way latency, 64 B records, ping-pong (round trip / 2)\n");
		printf("%-34s %12s %12s\n", "transport", "p50", "p99");
		for (int k = 0; k < NLAT; k++) {
			const struct lat_result *r = &lat[k];
			char label[64];
			if (!r->ran)
				continue;
			if (k == L_MMAPQ_SPIN)
				snprintf(label, sizeof(label), "mmapq, spin_us = %" PRIu32, o.spin_us);
			else
				snprintf(label, sizeof(label), "%s", ldefs[k].label);
			if (r->failed)
				printf("%-34s %12s %12s\n", label, "FAILED", "");
			else
				printf("%-34s %9.2f us %9.2f us\n", label, r->med_p50 / 1e3, r->med_p99 / 1e3);
		}
	}
	if (o.e2e) {
		printf("\nEnd to end: %" PRIu64 " integers from a file (%" PRIu64 " bytes), two processes\n",
		       o.e2e_count, input_bytes);
		printf("daemons: mmapq-producer | mmapq-consumer, as shipped (capacity %" PRIu32 ", record_size %"
		       PRIu32 "),\nbig ring: capacity %" PRIu32 ", record_size 8; format int, sync never; the queue file\n"
		       "exists before the clock starts; output file: compared with the input, byte for byte\n",
		       o.e2e_capacity, o.e2e_record_size, o.e2e_big_capacity);
		for (int k = 0; k < NE2E; k++) {
			const struct e2e_result *r = &e2e[k];
			if (!r->ran)
				continue;
			if (r->failed)
				printf("%-50s FAILED: %s\n", e2e_label[k], r->why);
			else
				printf("%-50s %8.3f s %8.2f M integers/s\n", e2e_label[k], r->med_secs,
				       (double)o.e2e_count / r->med_secs / 1e6);
		}
	}
	if (o.idle) {
		printf("\nIdle pair (real daemons, empty queue, producer on an open empty pipe), %.1f s\n",
		       o.idle_seconds);
		if (idle.failed) {
			printf("FAILED: %s\n", idle.why);
		} else {
			for (int i = 0; i < 2; i++)
				printf("%-16s utime+stime %ld ticks, run time %.3f ms (%.4f%% CPU), %" PRIu64
				       " wake-ups\n", i ? "mmapq-consumer" : "mmapq-producer", idle.ticks[i],
				       idle.run_ns[i] == UINT64_MAX ? -1.0 : (double)idle.run_ns[i] / 1e6,
				       idle.cpu_pct[i], idle.wakeups[i]);
		}
	}
	printf("\nInterference (CPU time of other processes, and steal, as a share of all CPUs)\n");
	for (int i = 0; i < nloads; i++)
		printf("  %-12s %7.1f s: other processes %5.1f%%, steal %5.1f%%%s\n", loads[i].name,
		       loads[i].wall_s, loads[i].others_pct, loads[i].steal_pct,
		       loads[i].others_pct > 5 || loads[i].steal_pct > 5 ? "  (disturbed)" : "");
	printf("\nTargets (issue 5)\n");
	for (int i = 0; i < ntargets; i++)
		printf("  %-12s %-62s %s\n", targets[i].met > 0 ? "met" : targets[i].met == 0 ? "NOT MET" :
		       "-", targets[i].what, targets[i].value);
	printf("\n%s: %" PRIu64 " records verified\n", failed ? "FAILED" : "OK", total_verified);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void print_json(void)
{
	printf("{\n  \"quick\": %s,\n  \"runs\": %d,\n  \"seconds_per_run\": %g,\n", o.quick ? "true" : "false",
	       o.runs, o.seconds);
	printf("  \"machine\": {\"cpus_online\": %d, \"cpu_model\": ", ncpus_online);
	json_str(cpu_model);
	printf(", \"pinned\": %s, \"producer_cpu\": %d, \"consumer_cpu\": %d, \"nice\": %d},\n",
	       cpu_b >= 0 ? "true" : "false", cpu_a, cpu_b, o.nice_set ? o.nice : 0);
	printf("  \"batch\": %u,\n  \"big_batch\": %u,\n  \"spsc_batch\": %u,\n  \"throughput\": [", o.batch,
	       o.big_batch, o.spsc_batch);
	bool first = true;
	for (int t = 0; t < NTRANSPORTS; t++)
		for (int si = 0; si < NSIZES; si++) {
			const struct tput_result *r = &tput[t][si];
			if (!(o.only_mask & (1u << t)) || !(o.size_mask & (1u << si)) || !o.tput)
				continue;
			printf("%s\n    {\"transport\": \"%s\", \"size\": %u, ", first ? "" : ",", tdefs[t].key,
			       sizes[si]);
			first = false;
			if (r->failed || !r->ran) {
				printf("\"ran\": false, \"failed\": %s, \"why\": ", r->failed ? "true" : "false");
				json_str(r->why);
				printf("}");
				continue;
			}
			printf("\"ran\": true, \"records\": %" PRIu64 ", \"records_per_s\": %.0f, \"mb_per_s\": %.1f,"
			       " \"context_switches\": %ld, \"runs\": [", r->n, r->med_rps,
			       r->med_rps * sizes[si] / 1e6, r->csw);
			for (int i = 0; i < r->nruns; i++)
				printf("%s%.0f", i ? ", " : "", r->rps[i]);
			printf("]");
			if (t == T_MQ)
				printf(", \"depth\": %ld", r->depth);
			if (t == T_MMAPQ || t == T_MMAPQ_BIG || t == T_TEXTBOOK || t == T_SPSC)
				printf(", \"capacity\": %u, \"batch\": %u", r->cap, r->batch);
			printf("}");
		}
	printf("\n  ],\n  \"ratios\": [");
	first = true;
	for (int m = 0; m < 2; m++)
		for (int t = 0; t < NTRANSPORTS; t++)
			for (int si = 0; si < NSIZES; si++) {
				enum transport mine = m ? T_MMAPQ_BIG : T_MMAPQ;
				double r = ratio_of(mine, (enum transport)t, si);
				if (t == T_MMAPQ || t == T_MMAPQ_BIG || r <= 0)
					continue;
				printf("%s\n    {\"mmapq\": \"%s\", \"peer\": \"%s\", \"size\": %u, \"mmapq_over_peer\": %.3f}",
				       first ? "" : ",", tdefs[mine].key, tdefs[t].key, sizes[si], r);
				first = false;
			}
	printf("\n  ],\n  \"latency\": [");
	first = true;
	for (int k = 0; k < NLAT; k++) {
		const struct lat_result *r = &lat[k];
		if (!r->ran)
			continue;
		printf("%s\n    {\"transport\": \"%s\", \"size\": %u, ", first ? "" : ",", ldefs[k].key, LAT_SIZE);
		first = false;
		if (k == L_MMAPQ_SPIN)
			printf("\"spin_us\": %" PRIu32 ", ", o.spin_us);
		if (r->failed) {
			printf("\"failed\": true, \"why\": ");
			json_str(r->why);
			printf("}");
		} else {
			printf("\"round_trips\": %" PRIu64 ", \"p50_ns\": %.0f, \"p99_ns\": %.0f}", r->iters,
			       r->med_p50, r->med_p99);
		}
	}
	printf("\n  ],\n  \"e2e\": [");
	first = true;
	for (int k = 0; k < NE2E; k++) {
		const struct e2e_result *r = &e2e[k];
		if (!r->ran)
			continue;
		printf("%s\n    {\"job\": \"%s\", \"integers\": %" PRIu64 ", ", first ? "" : ",", e2e_key[k],
		       o.e2e_count);
		first = false;
		if (r->failed) {
			printf("\"failed\": true, \"why\": ");
			json_str(r->why);
			printf("}");
		} else {
			printf("\"seconds\": %.4f, \"integers_per_s\": %.0f}", r->med_secs,
			       (double)o.e2e_count / r->med_secs);
		}
	}
	printf("\n  ],\n");
	if (idle.ran) {
		printf("  \"idle\": {\"seconds\": %.1f, \"failed\": %s", idle.seconds, idle.failed ? "true" : "false");
		if (!idle.failed)
			for (int i = 0; i < 2; i++)
				printf(", \"%s\": {\"ticks\": %ld, \"run_ns\": %" PRIu64 ", \"cpu_percent\": %.5f,"
				       " \"wakeups\": %" PRIu64 "}", i ? "consumer" : "producer", idle.ticks[i],
				       idle.run_ns[i] == UINT64_MAX ? 0 : idle.run_ns[i], idle.cpu_pct[i],
				       idle.wakeups[i]);
		printf("},\n");
	}
	printf("  \"interference\": [");
	for (int i = 0; i < nloads; i++)
		printf("%s\n    {\"section\": \"%s\", \"seconds\": %.1f, \"other_processes_percent\": %.1f,"
		       " \"steal_percent\": %.1f}", i ? "," : "", loads[i].name, loads[i].wall_s,
		       loads[i].others_pct, loads[i].steal_pct);
	printf("\n  ],\n");
	printf("  \"targets\": [");
	for (int i = 0; i < ntargets; i++) {
		printf("%s\n    {\"target\": ", i ? "," : "");
		json_str(targets[i].what);
		printf(", \"met\": %s, \"value\": ", targets[i].met > 0 ? "true" : targets[i].met == 0 ? "false" : "null");
		json_str(targets[i].value);
		printf("}");
	}
	printf("\n  ],\n  \"records_verified\": %" PRIu64 ",\n  \"ok\": %s\n}\n", total_verified,
	       failed ? "false" : "true");
}

/* ---- main -------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: mmapq_bench [OPTION]...\n"
	        "Throughput and latency of mmapq against pipes, AF_UNIX sockets, POSIX message queues,\n"
	        "a per-record mutex+condvar ring and a lock-free SPSC ring, in one run.\n\n"
	        "  --quick            correctness smoke: tiny counts, 1 run (no meaningful timings)\n"
	        "  --json             JSON on stdout instead of the tables\n"
	        "  --e2e              also the end-to-end daemon job against a pipe job\n"
	        "  --idle             also the CPU use of an idle daemon pair\n"
	        "  --no-throughput    skip the throughput table\n"
	        "  --no-latency       skip the latency table\n"
	        "  --runs N           runs per cell, median reported (default 3)\n"
	        "  --seconds S        length of one throughput run (default 0.5)\n"
	        "  --batch N          records per publish/release, mmapq (default 64)\n"
	        "  --big-batch N      the same, for the 'big batches' mmapq row (default 1024)\n"
	        "  --spsc-batch N     records per index publication, spsc ring (default 64)\n"
	        "  --ring-kib N       ring bytes of mmapq/textbook/spsc (default 4096)\n"
	        "  --spin-us N        spin_us of the 'mmapq, spin' latency row (default 50)\n"
	        "  --only LIST        transports, comma-separated: mmapq,textbook,spsc,pipe,unix,mq\n"
	        "  --sizes LIST       record sizes, comma-separated, of 8,64,1024,16384\n"
	        "  --e2e-count N      integers in the end-to-end job (default 10000000)\n"
	        "  --e2e-capacity N   the daemons' [queue] capacity (default 1024, as shipped)\n"
	        "  --e2e-record-size N  the daemons' [queue] record_size (default 64, as shipped)\n"
	        "  --e2e-big-capacity N the 'big ring' daemons' capacity (default 65536; record_size 8)\n"
	        "  --idle-seconds S   idle measurement (default 10)\n"
	        "  --nice N           run at this nice value (e.g. -20 as root: other processes\n"
	        "                     on the machine then disturb the measurement less)\n"
	        "  --bin-dir DIR      where mmapq-producer and mmapq-consumer are (default\n"
	        "                     $MMAPQ_BIN_DIR, else ../../daemons from this program)\n"
	        "Exit status: 0 all verified, 1 a record failed verification or a transport failed,\n"
	        "64 usage error.\n");
}

static uint32_t parse_list(const char *s, bool transports)
{
	uint32_t mask = 0;
	char *dup = strdup(s), *save = NULL;
	for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		bool found = false;
		if (transports) {
			for (int t = 0; t < NTRANSPORTS; t++)
				if (!strcmp(tok, tdefs[t].key)) {
					mask |= 1u << t;
					found = true;
				}
		} else {
			for (int si = 0; si < NSIZES; si++)
				if (strtoul(tok, NULL, 10) == sizes[si]) {
					mask |= 1u << si;
					found = true;
				}
		}
		if (!found) {
			fprintf(stderr, "mmapq_bench: unknown %s '%s'\n", transports ? "transport" : "size", tok);
			exit(EXIT_USAGE_);
		}
	}
	free(dup);
	return mask;
}

static void find_cpus(void)
{
	cpu_set_t set;
	FILE *f;
	char line[256];

	ncpus_online = (int)sysconf(_SC_NPROCESSORS_ONLN);
	f = fopen("/proc/cpuinfo", "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (!strncmp(line, "model name", 10)) {
				char *p = strchr(line, ':');
				if (p) {
					p += 1 + (p[1] == ' ');
					p[strcspn(p, "\n")] = '\0';
					snprintf(cpu_model, sizeof(cpu_model), "%s", p);
				}
				break;
			}
		}
		fclose(f);
	}
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set)) {
				if (cpu_a < 0)
					cpu_a = i;
				else if (cpu_b < 0)
					cpu_b = i;
			}
	}
	if (cpu_b < 0) {
		note("only one CPU available: running UNPINNED, producer and consumer share it");
		cpu_a = -1;
	}
}

static char *default_bin_dir(void)
{
	char exe[PATH_MAX], *slash, *d;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return strdup(".");
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	if (asprintf(&d, "%s/../../daemons", exe) < 0)
		return strdup(".");
	return d;
}

int main(int argc, char **argv)
{
	bool runs_set = false, e2e_count_set = false, idle_secs_set = false, ring_set = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV() do { if (!v) { fprintf(stderr, "mmapq_bench: %s needs a value\n", a); return EXIT_USAGE_; } i++; } while (0)
		if (!strcmp(a, "--quick"))
			o.quick = true;
		else if (!strcmp(a, "--json"))
			o.json = true;
		else if (!strcmp(a, "--e2e"))
			o.e2e = true;
		else if (!strcmp(a, "--idle"))
			o.idle = true;
		else if (!strcmp(a, "--no-throughput"))
			o.tput = false;
		else if (!strcmp(a, "--no-latency"))
			o.lat = false;
		else if (!strcmp(a, "--runs")) {
			NEEDV();
			o.runs = atoi(v);
			runs_set = true;
		} else if (!strcmp(a, "--seconds")) {
			NEEDV();
			o.seconds = atof(v);
		} else if (!strcmp(a, "--batch")) {
			NEEDV();
			o.batch = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(a, "--big-batch")) {
			NEEDV();
			o.big_batch = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(a, "--spsc-batch")) {
			NEEDV();
			o.spsc_batch = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(a, "--ring-kib")) {
			NEEDV();
			o.ring_kib = (uint32_t)strtoul(v, NULL, 10);
			ring_set = true;
		} else if (!strcmp(a, "--spin-us")) {
			NEEDV();
			o.spin_us = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(a, "--only")) {
			NEEDV();
			o.only_mask = parse_list(v, true);
		} else if (!strcmp(a, "--sizes")) {
			NEEDV();
			o.size_mask = parse_list(v, false);
		} else if (!strcmp(a, "--e2e-count")) {
			NEEDV();
			o.e2e_count = strtoull(v, NULL, 10);
			e2e_count_set = true;
		} else if (!strcmp(a, "--e2e-capacity")) {
			NEEDV();
			o.e2e_capacity = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(a, "--e2e-big-capacity")) {
			NEEDV();
			o.e2e_big_capacity = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(a, "--e2e-record-size")) {
			NEEDV();
			o.e2e_record_size = (uint32_t)strtoul(v, NULL, 10);
		} else if (!strcmp(a, "--idle-seconds")) {
			NEEDV();
			o.idle_seconds = atof(v);
			idle_secs_set = true;
		} else if (!strcmp(a, "--nice")) {
			NEEDV();
			o.nice = atoi(v);
			o.nice_set = true;
		} else if (!strcmp(a, "--bin-dir")) {
			NEEDV();
			o.bin_dir = v;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "mmapq_bench: unknown option '%s'\n", a);
			usage(stderr);
			return EXIT_USAGE_;
		}
#undef NEEDV
	}
	if (o.quick) {
		if (!runs_set)
			o.runs = 1;
		if (!e2e_count_set)
			o.e2e_count = 200000;
		if (!idle_secs_set)
			o.idle_seconds = 1;
		if (!ring_set)
			o.ring_kib = 64; /* so that the few records of the smoke wrap every ring */
	}
	if (o.runs < 1 || o.runs > MAX_RUNS || o.seconds <= 0 || o.batch < 1 || o.big_batch < 1 || o.spsc_batch < 1 || o.ring_kib < 1 ||
	    o.e2e_count < 1 || o.idle_seconds <= 0 || o.e2e_capacity < 2 || o.e2e_big_capacity < 2) {
		fprintf(stderr, "mmapq_bench: --runs 1..%d; --seconds, --batch, --ring-kib, --e2e-count and"
		        " --idle-seconds positive; --e2e-capacity >= 2\n", MAX_RUNS);
		return EXIT_USAGE_;
	}

	find_cpus();
	if (o.nice_set && setpriority(PRIO_PROCESS, 0, o.nice) < 0) {
		note("--nice %d: %s (running at the default priority)", o.nice, strerror(errno));
		o.nice_set = false;
	}
	msg_max = read_long_file("/proc/sys/fs/mqueue/msg_max", 10);
	msgsize_max = read_long_file("/proc/sys/fs/mqueue/msgsize_max", 8192);
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED) {
		note("mmap: %s", strerror(errno));
		return EXIT_FAIL;
	}
	tmpdir = tu_mkdtemp("bench");
	bin_dir = o.bin_dir ? strdup(o.bin_dir) :
	          getenv("MMAPQ_BIN_DIR") && *getenv("MMAPQ_BIN_DIR") ? strdup(getenv("MMAPQ_BIN_DIR")) :
	          default_bin_dir();
	if (o.e2e || o.idle) {
		char *p = tu_path(bin_dir, "mmapq-producer"), *c = tu_path(bin_dir, "mmapq-consumer");
		if (access(p, X_OK) || access(c, X_OK)) {
			note("%s or %s not found: give --bin-dir or MMAPQ_BIN_DIR", p, c);
			tu_rmdir_r(tmpdir);
			return EXIT_USAGE_;
		}
		free(p);
		free(c);
	}
	signal(SIGPIPE, SIG_IGN);

	if (o.tput) {
		struct load_mark m;
		load_mark(&m);
		for (int si = 0; si < NSIZES; si++) {
			if (!(o.size_mask & (1u << si)))
				continue;
			tput_size(si);
		}
		load_section_end("throughput", &m);
	}
	if (o.lat) {
		struct load_mark m;
		load_mark(&m);
		static const enum transport lat_transport[NLAT] = {
			[L_MMAPQ] = T_MMAPQ, [L_MMAPQ_SPIN] = T_MMAPQ, [L_PIPE] = T_PIPE,
			[L_UNIX] = T_UNIX, [L_MQ] = T_MQ, [L_SPSC] = T_SPSC,
		};
		for (int k = 0; k < NLAT; k++)
			if (o.only_mask & (1u << lat_transport[k]))
				lat_cell((enum lat_kind)k);
		load_section_end("latency", &m);
	}
	if (o.e2e) {
		struct load_mark m;
		load_mark(&m);
		run_e2e();
		load_section_end("end to end", &m);
	}
	if (o.idle) {
		struct load_mark m;
		load_mark(&m);
		run_idle();
		load_section_end("idle", &m);
	}
	/* The smoke's other half: every transport must have run (mq only where
	 * msgsize_max allows the size). */
	if (o.tput)
		for (int si = 0; si < NSIZES; si++)
			for (int t = 0; t < NTRANSPORTS; t++) {
				const struct tput_result *r = &tput[t][si];
				if (!(o.size_mask & (1u << si)) || !(o.only_mask & (1u << t)))
					continue;
				if (!r->failed && r->nruns == 0 && !(t == T_MQ && (long)sizes[si] > msgsize_max)) {
					note("%s at %u B did not run: %s", tdefs[t].label, sizes[si], r->why);
					failed = true;
				}
			}
	eval_targets();
	if (o.json)
		print_json();
	else
		print_tables();
	free(input_path);
	free(bin_dir);
	tu_rmdir_r(tmpdir);
	free(tmpdir);
	return failed ? EXIT_FAIL : 0;
}
