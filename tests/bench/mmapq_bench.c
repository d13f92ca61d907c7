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
 *               mmapq-consumer (output null and file:PATH), as shipped and
 *               with a big ring, against the same job over a pipe (one
 *               process parses with the same parser and writes binary
 *               int64s, the other formats them the same way), also with the
 *               old parser (fast path off); two inputs: random magnitudes and
 *               `seq`-style 1..N.  Peak RSS of every process.  The daemons
 *               are built as released (daemons-rel/, MMAPQ_TESTING off).
 *               Then the parser and the formatter alone, in one process.
 *   --idle      an idle daemon pair: CPU time used over --idle-seconds.
 *
 * Each section also reports the CPU time other processes used meanwhile
 * (and the hypervisor stole): numbers from a busy machine say so.
 *
 * The transports, as a user would write each of them:
 *   mmapq       the library: mmapq_reserve, then --batch records put with
 *               mmapq_put_many (as many per call as fit in a 16 KiB staging
 *               buffer: all of a batch of small records, one 16 KiB
 *               record), mmapq_publish; mmapq_available, then
 *               mmapq_get_many of up to --batch records, each checked in
 *               place, mmapq_release of them (draining everything
 *               available, a batch at a time).
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
 *   stdio4k,    a pipe through stdio: fwrite()/fread() per record, FILEs with
 *   stdio64k    4 KiB or 64 KiB buffers (a system call per buffer).
 *   mq          POSIX message queue, one mq_send/mq_receive per record, as
 *               deep as the machine allows: as root the fs.mqueue limits are
 *               raised for the run and restored (mq_limits_raise), then the
 *               deepest queue that opens is used (RLIMIT_MSGQUEUE); sizes
 *               above msgsize_max are not possible.
 *
 * "mmapq / strongest peer" divides by the fastest of pipe, unix, the stdio
 * pipes and mq at each size.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
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

#include "config.h"
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
	uint32_t backlog_capacity; /* slots of the full-backlog memory job */
	double idle_seconds;
	uint32_t only_mask;   /* transports to run (bit per enum transport) */
	uint32_t size_mask;
	int nice;             /* setpriority() of the benchmark and its children */
	bool nice_set;
} o = {
	.tput = true, .lat = true, .runs = 3, .seconds = 0.5,
	.batch = 64, .big_batch = 1024, .spsc_batch = 64, .ring_kib = 4096, .spin_us = 50,
	.e2e_count = 10000000, .e2e_capacity = 0, .e2e_record_size = 64, .e2e_big_capacity = 65536,
	.backlog_capacity = 16777216,
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

/* ---- POSIX mq limits ------------------------------------------------------- */

/* The mq peer is as deep as the machine allows.  An unprivileged queue is
 * limited by fs.mqueue.msg_max (10 by default) and msgsize_max (8192); as
 * root the benchmark raises them to the kernel's ceilings for the run
 * (HARD_MSGMAX 65536; msgsize_max to 16384, the largest record) and puts the
 * old values back at exit, also on SIGINT/SIGTERM/SIGHUP.  RLIMIT_MSGQUEUE
 * (bytes of all of a user's queues) is raised to its hard limit, and the
 * hard limit too where the process may (CAP_SYS_RESOURCE).  The depth used
 * is the largest that opens (mq_open_deep), and never more than
 * MQ_BYTES_CAP bytes of messages. */
#define MQ_HARD_MSGMAX 65536L
#define MQ_BYTES_CAP (64L << 20)
#define MQ_PROC_MSG_MAX "/proc/sys/fs/mqueue/msg_max"
#define MQ_PROC_MSGSIZE_MAX "/proc/sys/fs/mqueue/msgsize_max"

static long mq_saved_msg_max = -1, mq_saved_msgsize_max = -1;
static char mq_limits_note[256];

static bool write_long_file(const char *path, long v)
{
	char b[32];
	int n = snprintf(b, sizeof(b), "%ld\n", v), fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok = fd >= 0 && write(fd, b, (size_t)n) == n;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* async-signal-safe: open, write, close */
static void mq_limits_restore(void)
{
	if (mq_saved_msg_max > 0)
		write_long_file(MQ_PROC_MSG_MAX, mq_saved_msg_max);
	if (mq_saved_msgsize_max > 0)
		write_long_file(MQ_PROC_MSGSIZE_MAX, mq_saved_msgsize_max);
	mq_saved_msg_max = mq_saved_msgsize_max = -1;
}

static void mq_limits_signal(int sig)
{
	mq_limits_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static long read_long_file(const char *path, long dflt);

static void mq_limits_raise(void)
{
	long mm = read_long_file(MQ_PROC_MSG_MAX, 10), ms = read_long_file(MQ_PROC_MSGSIZE_MAX, 8192);
	struct rlimit rl;

	if (mm < MQ_HARD_MSGMAX && write_long_file(MQ_PROC_MSG_MAX, MQ_HARD_MSGMAX))
		mq_saved_msg_max = mm;
	if (ms < (long)sizes[NSIZES - 1] && write_long_file(MQ_PROC_MSGSIZE_MAX, sizes[NSIZES - 1]))
		mq_saved_msgsize_max = ms;
	if (mq_saved_msg_max > 0 || mq_saved_msgsize_max > 0) {
		atexit(mq_limits_restore);
		signal(SIGINT, mq_limits_signal);
		signal(SIGTERM, mq_limits_signal);
		signal(SIGHUP, mq_limits_signal);
	}
	if (getrlimit(RLIMIT_MSGQUEUE, &rl) == 0) {
		struct rlimit up = {RLIM_INFINITY, RLIM_INFINITY};
		if (setrlimit(RLIMIT_MSGQUEUE, &up) < 0) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_MSGQUEUE, &rl);
		}
		getrlimit(RLIMIT_MSGQUEUE, &rl);
	}
	msg_max = read_long_file(MQ_PROC_MSG_MAX, 10);
	msgsize_max = read_long_file(MQ_PROC_MSGSIZE_MAX, 8192);
	if (rl.rlim_cur == RLIM_INFINITY)
		snprintf(mq_limits_note, sizeof(mq_limits_note), "msg_max %ld (was %ld), msgsize_max %ld"
		         " (was %ld), RLIMIT_MSGQUEUE unlimited", msg_max, mm, msgsize_max, ms);
	else
		snprintf(mq_limits_note, sizeof(mq_limits_note), "msg_max %ld (was %ld), msgsize_max %ld"
		         " (was %ld), RLIMIT_MSGQUEUE %llu bytes", msg_max, mm, msgsize_max, ms,
		         (unsigned long long)rl.rlim_cur);
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

enum transport {
	T_MMAPQ, T_MMAPQ_BIG, T_TEXTBOOK, T_SPSC, T_PIPE, T_UNIX, T_STDIO4K, T_STDIO64K, T_MQ,
	NTRANSPORTS
};

/* The peers a user would pick instead of mmapq (not the lock-free ring, which
 * is a reference, nor the textbook use of mmapq itself). */
static bool is_peer(int t)
{
	return t == T_PIPE || t == T_UNIX || t == T_STDIO4K || t == T_STDIO64K || t == T_MQ;
}

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
	uint32_t slot = mmapq_slot_size(MMAPQ_FORMAT_LINE, size);
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

#define MMAPQ_STAGE_BYTES 16384u /* the producer's records before mmapq_put_many */

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
	uint32_t batch = c->t == T_TEXTBOOK ? 1 : c->batch;
	/* records are made in a staging buffer of at most 16 KiB (or one
	 * record), so that they are still in the cache when put */
	uint32_t stage = c->size >= MMAPQ_STAGE_BYTES ? 1 : MMAPQ_STAGE_BYTES / c->size;
	unsigned char *buf = xalloc((size_t)c->size * stage);
	uint64_t seq = 0, deadline;
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
		if (c->t == T_TEXTBOOK) {
			for (uint32_t i = 0; i < k; i++, seq++) {
				rec_fill(buf, c->size, seq);
				r = mmapq_put(q, buf, c->size);
				if (r < 0)
					return child_fail("mmapq_put record %" PRIu64 ": %s", seq, mmapq_strerror(r));
			}
		} else {
			for (uint32_t done = 0, m; done < k; done += m) {
				m = k - done < stage ? k - done : stage;
				for (uint32_t i = 0; i < m; i++)
					rec_fill(buf + (size_t)i * c->size, c->size, seq + i);
				r = mmapq_put_many(q, buf, c->size, m);
				if (r != (int)m)
					return child_fail("mmapq_put_many of %" PRIu32 " at record %" PRIu64 ": %d (%s)",
					                  m, seq, r, r < 0 ? mmapq_strerror(r) : "fewer");
				seq += m;
			}
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
	uint32_t stage = c->size >= MMAPQ_STAGE_BYTES ? 1 : MMAPQ_STAGE_BYTES / c->size;
	struct mmapq_record *recs = xalloc(sizeof(*recs) * (batch < stage ? batch : stage));
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
		/* as many per call as the producer puts (16 KiB of records) */
		for (uint32_t done = 0, m; done < k; done += m) {
			m = k - done < stage ? k - done : stage;
			if (c->t == T_TEXTBOOK)
				r = mmapq_get(q, 0, &recs[0]);
			else
				r = mmapq_get_many(q, done, m, recs);
			if (r < 0 || (c->t != T_TEXTBOOK && r != (int)m))
				return child_fail("mmapq_get%s of %" PRIu32 " at record %" PRIu64 ": %d (%s)",
				                  c->t == T_TEXTBOOK ? "" : "_many", m, exp, r,
				                  r < 0 ? mmapq_strerror(r) : "fewer");
			for (uint32_t i = 0; i < m; i++, exp++) {
				const struct mmapq_record *rec = &recs[i];
				if (rec->seq != exp || rec->len != c->size || !rec_ok(rec->data, c->size, exp))
					return child_fail("record %" PRIu64 ": got seq %" PRIu64 " len %" PRIu32
					                  " content of record %" PRIu64, exp, rec->seq, rec->len,
					                  rec_index(rec->data));
			}
		}
		r = mmapq_release(q, k);
		if (r < 0)
			return child_fail("mmapq_release at record %" PRIu64 ": %s", exp, mmapq_strerror(r));
	}
	ctl->t_end = now_ns();
	ctl->verified = exp;
	record_rusage(1);
	mmapq_close(q);
	free(recs);
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

/* ---- pipe through stdio ------------------------------------------------------ */

/* A pipe as a user of stdio writes it: fwrite/fread per record through a
 * FILE with a 4 KiB or 64 KiB buffer (setvbuf), so that a write(2) or read(2)
 * carries a buffer's worth of records. */
static FILE *stdio_open(struct cell *c, bool writer, char **vbuf)
{
	size_t size = c->t == T_STDIO4K ? 4096 : 65536;
	FILE *f;

	close(c->fd[writer ? 0 : 1]);
	*vbuf = xalloc(size);
	f = fdopen(c->fd[writer ? 1 : 0], writer ? "w" : "r");
	if (!f || setvbuf(f, *vbuf, _IOFBF, size)) {
		child_fail("fdopen/setvbuf: %s", strerror(errno));
		return NULL;
	}
	return f;
}

static int stdio_prod(struct cell *c)
{
	unsigned char *buf = xalloc(c->size);
	char *vbuf;
	FILE *f = stdio_open(c, true, &vbuf);

	if (!f)
		return EXIT_FAIL;
	barrier();
	ctl->t_start = now_ns();
	for (uint64_t seq = 0; seq < c->n; seq++) {
		rec_fill(buf, c->size, seq);
		if (fwrite(buf, c->size, 1, f) != 1)
			return child_fail("fwrite record %" PRIu64 ": %s", seq, strerror(errno));
	}
	if (fclose(f))
		return child_fail("fclose: %s", strerror(errno));
	record_rusage(0);
	free(vbuf);
	free(buf);
	return 0;
}

static int stdio_cons(struct cell *c)
{
	unsigned char *buf = xalloc(c->size);
	char *vbuf;
	FILE *f = stdio_open(c, false, &vbuf);
	uint64_t exp;

	if (!f)
		return EXIT_FAIL;
	barrier();
	for (exp = 0; exp < c->n; exp++) {
		if (fread(buf, c->size, 1, f) != 1)
			return child_fail("fread at record %" PRIu64 ": %s", exp,
			                  ferror(f) ? strerror(errno) : "end of stream");
		if (!rec_ok(buf, c->size, exp))
			return child_fail("record %" PRIu64 ": content of record %" PRIu64, exp, rec_index(buf));
	}
	ctl->t_end = now_ns();
	ctl->verified = exp;
	if (fgetc(f) != EOF)
		return child_fail("extra bytes after %" PRIu64 " records", c->n);
	record_rusage(1);
	fclose(f);
	free(vbuf);
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

/* The deepest queue this size can have: the largest depth up to mq_cap
 * (msg_max, itself raised as far as the kernel allows when we may: see
 * mq_limits_raise) that mq_open accepts, found by bisection (RLIMIT_MSGQUEUE
 * refuses the deeper ones with EMFILE); -1 if msgsize_max forbids the size,
 * -2 if even depth 1 fails. */
static bool mq_depth_opens(const char *name, long depth, long size)
{
	struct mq_attr a = {.mq_maxmsg = depth, .mq_msgsize = size};
	mqd_t m = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);

	if (m == (mqd_t)-1)
		return false;
	mq_close(m);
	mq_unlink(name);
	return true;
}

static long mq_open_deep(struct cell *c, const char *name, mqd_t *ret)
{
	long lo = 0, hi = msg_max; /* depth lo opens (0: none known), hi + 1 does not */

	if ((long)c->size > msgsize_max)
		return -1;
	if (hi > MQ_BYTES_CAP / (long)c->size)
		hi = MQ_BYTES_CAP / (long)c->size;
	mq_unlink(name);
	while (lo < hi) {
		long mid = lo + (hi - lo + 1) / 2;
		if (mq_depth_opens(name, mid, c->size))
			lo = mid;
		else
			hi = mid - 1;
	}
	if (lo > 0) {
		struct mq_attr a = {.mq_maxmsg = lo, .mq_msgsize = c->size};
		*ret = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
		if (*ret != (mqd_t)-1)
			return lo;
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
	[T_STDIO4K] = {"stdio4k", "pipe, stdio 4 KiB buffers", stdio_prod, stdio_cons},
	[T_STDIO64K] = {"stdio64k", "pipe, stdio 64 KiB buffers", stdio_prod, stdio_cons},
	[T_MQ] = {"mq", "POSIX mq", mq_prod, mq_cons},
};

static char mq_name[64];

static int cell_setup(struct cell *c, char *why, size_t whylen)
{
	c->fd[0] = c->fd[1] = c->fd[2] = c->fd[3] = -1;
	c->mq[0] = c->mq[1] = (mqd_t)-1;
	c->slot_size = mmapq_slot_size(MMAPQ_FORMAT_LINE, c->size);
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
	case T_STDIO4K:
	case T_STDIO64K:
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
 * st[i]: the wait status, or -ETIMEDOUT (then killed).  use (may be NULL):
 * each child's peak resident set (ru_maxrss, -1 where unknown) and CPU
 * time (user + system). */
struct child_use {
	long rss_kib;
	double cpu_s;
};

static void wait_pair(const pid_t pid[2], int st[2], int timeout_ms, struct child_use use[2])
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	int fd[2];
	bool done[2] = {false, false};

	for (int i = 0; i < 2; i++) {
		fd[i] = (int)syscall(SYS_pidfd_open, pid[i], 0);
		if (use)
			use[i] = (struct child_use){-1, 0};
	}
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
			struct rusage ru;
			while (wait4(pid[i], &st[i], 0, &ru) < 0 && errno == EINTR)
				;
			if (use)
				use[i] = (struct child_use){ru.ru_maxrss,
				                            (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
				                            (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6};
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
	wait_pair(pid, st, CHILD_TIMEOUT_MS, NULL);
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
	c->slot_size = mmapq_slot_size(MMAPQ_FORMAT_LINE, LAT_SIZE);
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

/* Two inputs of o.e2e_count integers, one per line, in canonical form: the
 * expected output of every job is the input file itself. */
enum e2e_input { IN_RAND, IN_SEQ, NINPUTS };
static const char *const in_key[NINPUTS] = {"random", "seq"};
static const char *const in_label[NINPUTS] = {
	[IN_RAND] = "random: magnitudes of 1 to 19 digits, half of them negative",
	[IN_SEQ] = "seq: 1 to N, as `seq 1 N` prints them",
};
static char *input_path[NINPUTS];
static uint64_t input_bytes[NINPUTS];

/* The jobs: the daemons as shipped (the built-in capacity and record_size,
 * or --e2e-capacity/--e2e-record-size), the daemons with a big ring, and the
 * same work over a pipe, with the parser as it is and as it was (the fast
 * path off: byte by byte). */
enum e2e_job { J_DAEMONS, J_DAEMONS_BIG, J_PIPE, J_PIPE_OLD, NJOBS };
static const char *const job_key[NJOBS] = {"daemons", "daemons_big", "pipe", "pipe_old_parser"};
enum { OUT_NULL_, OUT_FILE_, NOUTS };
static const char *const out_key[NOUTS] = {"null", "file"};

struct e2e_result {
	bool ran, failed;
	char why[256];
	int nruns;
	double secs[MAX_RUNS];
	double med_secs;
	long rss_kib[2];        /* peak over the runs: producer (parser), consumer (printer) */
	double cpu[2][MAX_RUNS]; /* CPU time (user + system) of each, per run */
	double med_cpu[2];
};
static struct e2e_result e2e[NINPUTS][NJOBS][NOUTS];
static uint32_t shipped_capacity, shipped_record_size;
static long own_rss_kib; /* the benchmark's peak RSS after the jobs: what a forked child starts from */

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* count integers of kind in, one per line, into path; *bytes: its size. */
static int write_input(const char *path, enum e2e_input in, uint64_t count, uint64_t *bytes)
{
	char *buf = xalloc(1 << 20);
	size_t len = 0;
	uint64_t s = 0x2545F4914F6CDD1Dull;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		note("%s: %s", path, strerror(errno));
		free(buf);
		return -1;
	}
	*bytes = 0;
	for (uint64_t i = 0; i < count; i++) {
		int64_t v = (int64_t)i + 1;
		if (in == IN_RAND) {
			uint64_t r = rng_next(&s);
			uint64_t u = rng_next(&s) >> (1 + r % 63);
			v = (r & 64) ? -(int64_t)u : (int64_t)u;
		}
		len += mmapq_fmt_int(buf + len, v);
		if (len > (1 << 20) - 32) {
			if (write_all(fd, buf, len) < 0)
				goto bad;
			*bytes += len;
			len = 0;
		}
	}
	if (write_all(fd, buf, len) < 0)
		goto bad;
	*bytes += len;
	close(fd);
	free(buf);
	return 0;
bad:
	note("%s: write: %s", path, strerror(errno));
	close(fd);
	free(buf);
	return -1;
}

static int make_input(enum e2e_input in, uint64_t count)
{
	char name[32];

	snprintf(name, sizeof(name), "ints-%s.txt", in_key[in]);
	input_path[in] = tu_path(tmpdir, name);
	return write_input(input_path[in], in, count, &input_bytes[in]);
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

/* The daemons' configuration; cap 0: capacity and record_size as shipped
 * (not set in the file). */
static char *write_config(const char *name, const char *output, uint32_t cap, uint32_t rsize)
{
	char *path = tu_path(tmpdir, name);
	FILE *f = fopen(path, "w");
	if (!f) {
		note("%s: %s", path, strerror(errno));
		exit(EXIT_FAIL);
	}
	fprintf(f, "[queue]\npath = %s/%s.q\n", tmpdir, name);
	if (cap)
		fprintf(f, "capacity = %" PRIu32 "\nrecord_size = %" PRIu32 "\n", cap, rsize);
	fprintf(f, "format = int\nsync = never\n[producer]\ninput = stdin\non_full = block\n"
	        "[consumer]\noutput = %s\n[log]\nlevel = warning\nstats_interval = 0\n", output);
	fclose(f);
	return path;
}

static int daemon_job(enum e2e_input in, bool to_file, uint32_t cap, uint32_t rsize, char *why,
                      size_t whylen, double *secs, struct child_use use[2])
{
	char *out = tu_path(tmpdir, "e2e-daemons.out");
	char output[PATH_MAX + 8];
	char *cfg, *qpath, *logp = tu_path(tmpdir, "e2e-daemons.log");
	char *prod = tu_path(bin_dir, "mmapq-producer"), *cons = tu_path(bin_dir, "mmapq-consumer");
	char count[32];
	int in_fd = -1, null_fd = -1, log_fd = -1, ret = -1;
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
			goto out;
		}
	}
	snprintf(count, sizeof(count), "%" PRIu64, o.e2e_count);
	in_fd = open(input_path[in], O_RDONLY | O_CLOEXEC);
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
		wait_pair(pid, st, CHILD_TIMEOUT_MS, use);
		t1 = now_ns();
		if (tu_exit_code(st[0]) != 0 || tu_exit_code(st[1]) != 0) {
			snprintf(why, whylen, "mmapq-producer exited %d, mmapq-consumer %d (-1: killed after"
			         " %d s, 137: killed when the other failed); see %s", tu_exit_code(st[0]),
			         tu_exit_code(st[1]), CHILD_TIMEOUT_MS / 1000, logp);
			goto out;
		}
	}
	if (to_file && files_equal(input_path[in], out, why, whylen) < 0)
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

/* Values into the 64 KiB block, written out when full: the parser's
 * batches (mmapq_parser_set_int_batch), as a user of the new parser writes
 * it, a memcpy per batch; the old parser's records one by one (pp_record). */
static int pp_ints(void *ctx, const int64_t *v, size_t n)
{
	struct pipe_parser *s = ctx;

	while (n) {
		size_t k = PIPE_CHUNK / sizeof(int64_t) - s->n;
		if (k > n)
			k = n;
		memcpy(&s->buf[s->n], v, k * sizeof(int64_t));
		s->n += k;
		v += k;
		n -= k;
		if (s->n == PIPE_CHUNK / sizeof(int64_t)) {
			int r = write_all(s->fd, s->buf, PIPE_CHUNK);
			if (r < 0)
				return r;
			s->n = 0;
		}
	}
	return 0;
}

static int pp_record(void *ctx, const void *data, uint32_t len)
{
	int64_t v;

	memcpy(&v, data, sizeof(v));
	(void)len;
	return pp_ints(ctx, &v, 1);
}

static void pp_error(void *ctx, const struct mmapq_parse_error *e)
{
	struct pipe_parser *s = ctx;
	s->bad++;
	fprintf(stderr, "input:%" PRIu64 ":%" PRIu64 ": %s\n", e->line, e->column, e->what);
}

static int e2e_parse_child(int in_fd, int out_fd, bool old_parser)
{
	struct pipe_parser s = {.fd = out_fd, .buf = xalloc(PIPE_CHUNK)};
	struct mmapq_parser *p;
	char *in = xalloc(PIPE_CHUNK);
	int r = mmapq_parser_new(MMAPQ_FORMAT_INT, 8, pp_record, pp_error, &s, &p);

	if (r < 0)
		return child_fail("parser: %s", strerror(-r));
	mmapq_parser_set_fast_path(p, !old_parser);
	if (!old_parser) /* the old parser had no batches either */
		mmapq_parser_set_int_batch(p, pp_ints);
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
			if (olen > PIPE_CHUNK - MMAPQ_FMT_INT_MAX) {
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

static int pipe_job(enum e2e_input in, bool to_file, bool old_parser, char *why, size_t whylen,
                    double *secs, struct child_use use[2])
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
		in_fd = open(input_path[in], O_RDONLY | O_CLOEXEC);
		if (in_fd < 0)
			_exit(child_fail("%s: %s", input_path[in], strerror(errno)));
		_exit(e2e_parse_child(in_fd, pfd[1], old_parser));
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
	wait_pair(pid, st, CHILD_TIMEOUT_MS, use);
	t1 = now_ns();
	if (tu_exit_code(st[0]) != 0 || tu_exit_code(st[1]) != 0) {
		snprintf(why, whylen, "parser exited %d, printer %d", tu_exit_code(st[0]), tu_exit_code(st[1]));
		goto out;
	}
	if (to_file && files_equal(input_path[in], out, why, whylen) < 0)
		goto out;
	*secs = (double)(t1 - t0) / 1e9;
	ret = 0;
out:
	unlink(out);
	free(out);
	return ret;
}

static const char *job_label(enum e2e_job j)
{
	static char b[NJOBS][80];
	switch (j) {
	case J_DAEMONS:
		snprintf(b[j], sizeof(b[j]), "daemons, %s (capacity %" PRIu32 ", record_size %" PRIu32 ")",
		         o.e2e_capacity ? "configured" : "as shipped",
		         o.e2e_capacity ? o.e2e_capacity : shipped_capacity,
		         o.e2e_capacity ? o.e2e_record_size : shipped_record_size);
		break;
	case J_DAEMONS_BIG:
		snprintf(b[j], sizeof(b[j]), "daemons, capacity %" PRIu32 ", record_size 8", o.e2e_big_capacity);
		break;
	case J_PIPE:
		snprintf(b[j], sizeof(b[j]), "parser | pipe | printer");
		break;
	default:
		snprintf(b[j], sizeof(b[j]), "the same, old parser (byte by byte)");
		break;
	}
	return b[j];
}

/* One run of one job; 0 or -1 (res->why says why). */
static int e2e_once(enum e2e_input in, enum e2e_job j, int out, struct e2e_result *res, double *s)
{
	struct child_use use[2] = {{-1, 0}, {-1, 0}};
	int r;

	switch (j) {
	case J_DAEMONS:
		r = daemon_job(in, out == OUT_FILE_, o.e2e_capacity, o.e2e_record_size, res->why,
		               sizeof(res->why), s, use);
		break;
	case J_DAEMONS_BIG:
		r = daemon_job(in, out == OUT_FILE_, o.e2e_big_capacity, 8, res->why, sizeof(res->why), s, use);
		break;
	default:
		r = pipe_job(in, out == OUT_FILE_, j == J_PIPE_OLD, res->why, sizeof(res->why), s, use);
		break;
	}
	for (int i = 0; i < 2 && r == 0; i++) {
		if (use[i].rss_kib > res->rss_kib[i])
			res->rss_kib[i] = use[i].rss_kib;
		res->cpu[i][res->nruns] = use[i].cpu_s;
	}
	return r;
}

static void run_e2e(void)
{
	struct mmapq_config defaults;

	mmapq_config_defaults(&defaults);
	shipped_capacity = defaults.capacity;
	shipped_record_size = defaults.record_size;
	for (int in = 0; in < NINPUTS; in++) {
		note("end to end: generating %" PRIu64 " integers (%s)...", o.e2e_count, in_key[in]);
		if (make_input((enum e2e_input)in, o.e2e_count) < 0) {
			failed = true;
			for (int j = 0; j < NJOBS; j++)
				for (int out = 0; out < NOUTS; out++) {
					struct e2e_result *res = &e2e[in][j][out];
					res->ran = res->failed = true;
					snprintf(res->why, sizeof(res->why), "cannot write the input file");
				}
			continue;
		}
		note("end to end: %s, %" PRIu64 " bytes", input_path[in], input_bytes[in]);
	}
	/* interleaved, so that drift hits every variant alike */
	for (int run = 0; run < o.runs; run++)
		for (int in = 0; in < NINPUTS; in++)
			for (int j = 0; j < NJOBS; j++)
				for (int out = 0; out < NOUTS; out++) {
					struct e2e_result *res = &e2e[in][j][out];
					double s = 0;

					if (res->failed)
						continue;
					if (!res->ran)
						res->rss_kib[0] = res->rss_kib[1] = -1;
					res->ran = true;
					if (e2e_once((enum e2e_input)in, (enum e2e_job)j, out, res, &s) < 0) {
						res->failed = true;
						failed = true;
						note("end to end: %s, %s, output %s: FAILED: %s", in_key[in],
						     job_label((enum e2e_job)j), out_key[out], res->why);
						continue;
					}
					total_verified += o.e2e_count;
					res->secs[res->nruns++] = s;
				}
	{
		struct rusage ru;
		own_rss_kib = getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
	}
	for (int in = 0; in < NINPUTS; in++)
		for (int j = 0; j < NJOBS; j++)
			for (int out = 0; out < NOUTS; out++) {
				struct e2e_result *res = &e2e[in][j][out];
				if (res->failed || !res->nruns)
					continue;
				res->med_secs = median(res->secs, res->nruns);
				for (int i = 0; i < 2; i++)
					res->med_cpu[i] = median(res->cpu[i], res->nruns);
				note("end to end: %-6s %-52s output %-4s %7.3f s  %6.2f M integers/s", in_key[in],
				     job_label((enum e2e_job)j), out_key[out], res->med_secs,
				     (double)o.e2e_count / res->med_secs / 1e6);
			}
}

/* Time of the pipe job (or of job base) over that of job j: > 1 is faster. */
/* ---- a full backlog: the daemons' memory (--e2e) ---------------------------- */

/*
 * The producer alone fills a queue of o.backlog_capacity slots (record_size
 * as shipped) from a file of exactly that many integers and exits (full,
 * and its input ended); then the consumer alone drains it to a file, which
 * must equal the input.  Peak RSS (ru_maxrss) of each: the queue file's
 * pages that a daemon touched count in it (both touch all of them), the
 * rest is its own memory, which must not grow with the backlog.
 */
struct backlog_result {
	bool ran, failed;
	char why[256];
	uint64_t file_bytes;     /* the queue file */
	struct child_use use[2]; /* producer, consumer */
	double secs[2];
};
static struct backlog_result backlog;

/* Wait for pid (at most timeout_ms, then kill it): its exit code, or -1. */
static int wait_one(pid_t pid, int timeout_ms, struct child_use *use)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0), st = 0;
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	struct rusage ru;

	*use = (struct child_use){-1, 0};
	if (fd >= 0) {
		int r;
		while ((r = poll(&pf, 1, timeout_ms)) < 0 && errno == EINTR)
			;
		close(fd);
		if (r == 0) {
			tu_kill(pid);
			return -1;
		}
	}
	while (wait4(pid, &st, 0, &ru) < 0)
		if (errno != EINTR)
			return -1;
	*use = (struct child_use){ru.ru_maxrss, (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	                          (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6};
	return tu_exit_code(st);
}

static void run_backlog(void)
{
	struct backlog_result *b = &backlog;
	char *in = tu_path(tmpdir, "backlog.txt"), *out = tu_path(tmpdir, "backlog.out");
	char *logp = tu_path(tmpdir, "backlog.log"), *cfg, *qpath;
	char *prod = tu_path(bin_dir, "mmapq-producer"), *cons = tu_path(bin_dir, "mmapq-consumer");
	char output[PATH_MAX + 8], count[32];
	uint64_t bytes = 0;
	int fd[3] = {-1, -1, -1};

	b->ran = true;
	snprintf(output, sizeof(output), "file:%s", out);
	snprintf(count, sizeof(count), "%" PRIu32, o.backlog_capacity);
	cfg = write_config("backlog.ini", output, o.backlog_capacity, shipped_record_size);
	qpath = tu_path(tmpdir, "backlog.ini.q");
	unlink(qpath);
	unlink(out);
	note("backlog: generating %" PRIu32 " integers...", o.backlog_capacity);
	if (write_input(in, IN_SEQ, o.backlog_capacity, &bytes) < 0) {
		snprintf(b->why, sizeof(b->why), "cannot write %s", in);
		goto fail;
	}
	fd[0] = open(in, O_RDONLY | O_CLOEXEC);
	fd[1] = open("/dev/null", O_WRONLY | O_CLOEXEC);
	fd[2] = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd[0] < 0 || fd[1] < 0 || fd[2] < 0) {
		snprintf(b->why, sizeof(b->why), "open: %s", strerror(errno));
		goto fail;
	}
	for (int i = 0; i < 2; i++) {
		char *pargv[] = {prod, (char *)"--config", cfg, NULL};
		char *cargv[] = {cons, (char *)"--config", cfg, (char *)"--count", count, NULL};
		uint64_t t0 = now_ns();
		pid_t pid = spawn(i ? cargv : pargv, i ? -1 : fd[0], fd[1], fd[2], i ? cpu_b : cpu_a);
		int code = wait_one(pid, CHILD_TIMEOUT_MS, &b->use[i]);
		b->secs[i] = (double)(now_ns() - t0) / 1e9;
		if (code != 0) {
			snprintf(b->why, sizeof(b->why), "%s exited %d (-1: killed after %d s); see %s",
			         i ? "mmapq-consumer" : "mmapq-producer", code, CHILD_TIMEOUT_MS / 1000, logp);
			goto fail;
		}
		if (i == 0) {
			/* full: every slot holds a record nobody has consumed */
			struct mmapq_params qp = {.path = qpath, .role = MMAPQ_ROLE_OBSERVER};
			struct mmapq_status st;
			struct mmapq_error err;
			struct mmapq *q = NULL;
			if (mmapq_open(&qp, &q, &err) < 0 || mmapq_status(q, &st) < 0 ||
			    st.tail - st.head != o.backlog_capacity) {
				snprintf(b->why, sizeof(b->why), "the queue is not full after the producer");
				mmapq_close(q);
				goto fail;
			}
			b->file_bytes = st.file_size;
			mmapq_close(q);
		}
	}
	if (files_equal(in, out, b->why, sizeof(b->why)) < 0)
		goto fail;
	total_verified += o.backlog_capacity;
	note("backlog: %" PRIu32 " slots, peak RSS producer %ld KiB, consumer %ld KiB", o.backlog_capacity,
	     b->use[0].rss_kib, b->use[1].rss_kib);
	goto out;
fail:
	b->failed = true;
	failed = true;
	note("backlog: FAILED: %s", b->why);
out:
	for (int i = 0; i < 3; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	unlink(in);
	unlink(out);
	unlink(qpath);
	free(in);
	free(out);
	free(logp);
	free(cfg);
	free(qpath);
	free(prod);
	free(cons);
}

static double e2e_speedup(enum e2e_input in, enum e2e_job j, enum e2e_job base, int out)
{
	const struct e2e_result *a = &e2e[in][j][out], *b = &e2e[in][base][out];
	if (!a->nruns || a->failed || !b->nruns || b->failed || a->med_secs <= 0)
		return 0;
	return b->med_secs / a->med_secs;
}

/* ---- parser and formatter alone ---------------------------------------------------- */

/* The work both end-to-end jobs share, without the processes around it: the
 * parser over each input held in memory, fed in 64 KiB chunks as the
 * daemons and the pipe job read it, byte by byte (the old parser) and with
 * the fast path; and the formatter over the parsed values into a 64 KiB
 * buffer (reused, never written out), against snprintf.  One process,
 * pinned; the four take turns in each run; ns per integer, median. */
enum codec_kind { C_PARSE_OLD, C_PARSE_NEW, C_FMT, C_SNPRINTF, NCODEC };
static const char *const codec_key[NCODEC] = {"parse_old", "parse_new", "fmt", "snprintf"};
static const char *const codec_label[NCODEC] = {
	[C_PARSE_OLD] = "parser, byte by byte (old)",
	[C_PARSE_NEW] = "parser, fast path (new)",
	[C_FMT] = "formatter, mmapq_fmt_int",
	[C_SNPRINTF] = "formatter, snprintf",
};
struct codec_result {
	int nruns;
	double ns[MAX_RUNS];
	double med_ns;
};
static struct codec_result codec[NINPUTS][NCODEC];
static bool codec_ran, codec_failed;

struct codec_sink {
	int64_t *v;
	size_t n, cap;
};

static int codec_record(void *ctx, const void *data, uint32_t len)
{
	struct codec_sink *s = ctx;
	(void)len;
	if (s->n == s->cap)
		return -ENOSPC;
	memcpy(&s->v[s->n++], data, sizeof(int64_t));
	return 0;
}

static void codec_error(void *ctx, const struct mmapq_parse_error *e)
{
	(void)ctx;
	note("parser: %" PRIu64 ":%" PRIu64 ": %s", e->line, e->column, e->what);
	codec_failed = true;
}

/* One timed pass; seconds, or < 0 on failure. */
static double codec_once(enum codec_kind k, const char *text, size_t len, struct codec_sink *s,
                         char *out)
{
	uint64_t t0 = now_ns(), sum = 0;
	size_t olen = 0;

	if (k == C_PARSE_OLD || k == C_PARSE_NEW) {
		struct mmapq_parser *p;
		int r = mmapq_parser_new(MMAPQ_FORMAT_INT, 8, codec_record, codec_error, s, &p);
		if (r < 0)
			return -1;
		mmapq_parser_set_fast_path(p, k == C_PARSE_NEW);
		s->n = 0;
		t0 = now_ns();
		for (size_t off = 0; off < len && r == 0; off += PIPE_CHUNK)
			r = mmapq_parser_feed(p, text + off, len - off < PIPE_CHUNK ? len - off : PIPE_CHUNK);
		if (r == 0)
			r = mmapq_parser_finish(p);
		mmapq_parser_free(p);
		return r < 0 || s->n != o.e2e_count ? -1 : (double)(now_ns() - t0) / 1e9;
	}
	for (size_t i = 0; i < s->n; i++) {
		if (k == C_FMT)
			olen += mmapq_fmt_int(out + olen, s->v[i]);
		else
			olen += (size_t)snprintf(out + olen, MMAPQ_FMT_INT_MAX, "%" PRId64 "\n", s->v[i]);
		if (olen > PIPE_CHUNK - MMAPQ_FMT_INT_MAX) {
			sum += (unsigned char)out[olen / 2];
			olen = 0;
		}
	}
	/* the bytes are used, so that the formatting is not optimised away */
	return sum == UINT64_MAX ? -1 : (double)(now_ns() - t0) / 1e9;
}

static void run_codec(void)
{
	struct codec_sink s = {.v = xalloc(o.e2e_count * sizeof(int64_t)), .cap = o.e2e_count};
	char *out = xalloc(PIPE_CHUNK + 64);
	cpu_set_t was;
	bool pinned = cpu_a >= 0 && sched_getaffinity(0, sizeof(was), &was) == 0;

	codec_ran = true;
	if (pinned)
		pin(cpu_a);
	for (int in = 0; in < NINPUTS && !codec_failed; in++) {
		size_t len = (size_t)input_bytes[in];
		char *text = xalloc(len);
		int fd = open(input_path[in], O_RDONLY | O_CLOEXEC);

		if (fd < 0 || read_full(fd, text, len) != (ssize_t)len) {
			note("codec: cannot read %s", input_path[in]);
			codec_failed = true;
		}
		if (fd >= 0)
			close(fd);
		for (int run = 0; run < o.runs && !codec_failed; run++)
			for (int k = 0; k < NCODEC; k++) {
				double el = codec_once((enum codec_kind)k, text, len, &s, out);
				if (el < 0) {
					note("codec: %s on the %s input failed", codec_label[k], in_key[in]);
					codec_failed = true;
					break;
				}
				codec[in][k].ns[codec[in][k].nruns++] = el * 1e9 / (double)o.e2e_count;
			}
		free(text);
	}
	if (pinned)
		sched_setaffinity(0, sizeof(was), &was);
	if (codec_failed)
		failed = true;
	for (int in = 0; in < NINPUTS; in++)
		for (int k = 0; k < NCODEC; k++)
			if (codec[in][k].nruns) {
				codec[in][k].med_ns = median(codec[in][k].ns, codec[in][k].nruns);
				note("alone: %-6s %-34s %7.2f ns per integer", in_key[in], codec_label[k],
				     codec[in][k].med_ns);
			}
	free(s.v);
	free(out);
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
	char *cfg = write_config("idle.ini", "null", 0, 0);
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

/* The fastest of the peers (is_peer) at this size, or -1 if none ran; among
 * the stdio pipes only if stdio_only. */
static int strongest_peer(int si, bool stdio_only)
{
	int best = -1;
	for (int t = 0; t < NTRANSPORTS; t++) {
		const struct tput_result *r = &tput[t][si];
		if (!is_peer(t) || (stdio_only && t != T_STDIO4K && t != T_STDIO64K) || !r->ran ||
		    r->failed || r->nruns == 0)
			continue;
		if (best < 0 || r->med_rps > tput[best][si].med_rps)
			best = t;
	}
	return best;
}

struct target {
	int issue;
	char what[96];
	char value[64];
	int met; /* 1 met, 0 not met, -1 not measured */
};
static struct target targets[40];
static int ntargets;
static int cur_issue = 5; /* the issue the targets added next come from */

static void add_target(int met, const char *value, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_target(int met, const char *value, const char *fmt, ...)
{
	va_list ap;
	struct target *t = &targets[ntargets++];
	t->issue = cur_issue;
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
		enum e2e_job j = k < 2 ? J_DAEMONS : J_DAEMONS_BIG;
		int out = k % 2 ? OUT_FILE_ : OUT_NULL_;
		const struct e2e_result *d = &e2e[IN_RAND][j][out], *p = &e2e[IN_RAND][J_PIPE][out];
		double r = e2e_speedup(IN_RAND, j, J_PIPE, out);
		const char *ring = k < 2 ? "" : " (big ring)";
		if (r > 0) {
			snprintf(v, sizeof(v), "%.3f s vs %.3f s (%.2fx)", d->med_secs, p->med_secs, r);
			add_target(r >= 1, v, "end to end, random input, output %s: daemons%s >= 1x the pipe job",
			           out_key[out], ring);
		} else {
			add_target(-1, "not measured", "end to end, random input, output %s: daemons%s >= 1x the"
			           " pipe job", out_key[out], ring);
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

	cur_issue = 9;
	{
		double r = e2e_speedup(IN_SEQ, J_DAEMONS, J_PIPE, OUT_FILE_);
		double ro = e2e_speedup(IN_SEQ, J_DAEMONS, J_PIPE_OLD, OUT_FILE_);
		if (r > 0) {
			snprintf(v, sizeof(v), "%.2fx (%.2fx the old-parser pipe job)", r, ro);
			add_target(r >= 1.2, v, "end to end, seq input, output file: daemons as shipped >= 1.2x"
			           " the pipe job");
		} else {
			add_target(-1, "not measured", "end to end, seq input, output file: daemons as shipped >="
			           " 1.2x the pipe job");
		}
	}
	if (backlog.ran && !backlog.failed) {
		long d = backlog.use[1].rss_kib - backlog.use[0].rss_kib;
		snprintf(v, sizeof(v), "%ld KiB / %ld KiB (%+ld KiB)", backlog.use[1].rss_kib,
		         backlog.use[0].rss_kib, d);
		add_target(d <= 16 * 1024, v, "peak RSS with a full %" PRIu32 "-slot backlog: consumer <="
		           " producer + 16 MiB", o.backlog_capacity);
	} else {
		add_target(-1, "not measured", "peak RSS with a full %" PRIu32 "-slot backlog: consumer <="
		           " producer + 16 MiB", o.backlog_capacity);
	}
	for (int k = 0; k < 2; k++) {
		int si = k ? 3 : 1;
		double goal = k ? 3 : 10;
		int pk = strongest_peer(si, true);
		double r = pk >= 0 ? ratio_of(T_MMAPQ, (enum transport)pk, si) : 0;
		snprintf(v, sizeof(v), "%.2fx (%s)", r, pk >= 0 ? tdefs[pk].key : "-");
		add_target(r > 0 ? r >= goal : -1, r > 0 ? v : "not measured", "throughput %s: mmapq (%u/batch)"
		           " >= %.0fx the stdio-buffered pipe", size_label(sizes[si]),
		           ring_batch(ring_cap(sizes[si]), o.batch), goal);
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
				snprintf(label, sizeof(label), "POSIX mq (deepest, see below)");
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
		for (int m = 0; m < 2; m++) {
			enum transport mine = m ? T_MMAPQ_BIG : T_MMAPQ;
			char label[64];
			if (!(o.only_mask & (1u << mine)))
				continue;
			snprintf(label, sizeof(label), "%sstrongest peer", m ? "(1024/batch) / " : "");
			printf("%-34s", label);
			for (int si = 0; si < NSIZES; si++) {
				int pk = strongest_peer(si, false);
				double r = pk >= 0 ? ratio_of(mine, (enum transport)pk, si) : 0;
				if (r > 0)
					snprintf(b, sizeof(b), "%.2fx %s", r, tdefs[pk].key);
				else
					snprintf(b, sizeof(b), "-");
				printf(" %20s", b);
			}
			printf("\n");
		}
		printf("strongest peer: the fastest of pipe, AF_UNIX, the stdio pipes and POSIX mq at that"
		       " size\nPOSIX mq depth:");
		for (int si = 0; si < NSIZES; si++)
			if (tput[T_MQ][si].nruns)
				printf(" %s: %ld", size_label(sizes[si]), tput[T_MQ][si].depth);
		printf(" (%s)\n", mq_limits_note[0] ? mq_limits_note : "limits as found");
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
	if (o.e2e && codec_ran) {
		printf("\nParser and formatter alone: one process, input in memory, 64 KiB chunks; ns per"
		       " integer\n%-34s", "");
		for (int in = 0; in < NINPUTS; in++)
			printf(" %20s", in_key[in]);
		printf("\n");
		for (int k = 0; k < NCODEC; k++) {
			printf("%-34s", codec_label[k]);
			for (int in = 0; in < NINPUTS; in++)
				printf(" %20.2f", codec[in][k].med_ns);
			printf("\n");
		}
		printf("%-34s", "old parser / new parser");
		for (int in = 0; in < NINPUTS; in++)
			printf(" %19.2fx", codec[in][C_PARSE_NEW].med_ns > 0 ?
			       codec[in][C_PARSE_OLD].med_ns / codec[in][C_PARSE_NEW].med_ns : 0);
		printf("\n");
	}
	if (o.e2e) {
		printf("\nEnd to end: %" PRIu64 " integers from a file, two processes; median seconds,\n"
		       "median CPU time (user + system) and peak RSS (ru_maxrss) of each of the two\n"
		       "processes (producer / consumer, parser / printer; the pipe job's are forks of the\n"
		       "benchmark; a child's ru_maxrss starts from the benchmark's own RSS at the fork,\n"
		       "even across exec: at most %ld KiB here).\n"
		       "Daemons: release build (MMAPQ_TESTING off), %s, format int, sync never,\n"
		       "the queue file exists before the clock starts; every output file is compared with\n"
		       "the input byte for byte\n", o.e2e_count, own_rss_kib, bin_dir);
		for (int in = 0; in < NINPUTS; in++) {
			printf("\ninput %s (%" PRIu64 " bytes)\n", in_label[in], input_bytes[in]);
			printf("%-52s %-4s %9s %7s %7s %15s %15s\n", "job", "out", "time", "x pipe", "x old",
			       "CPU s prod/cons", "RSS KiB p/c");
			for (int j = 0; j < NJOBS; j++)
				for (int out = 0; out < NOUTS; out++) {
					const struct e2e_result *r = &e2e[in][j][out];
					char cpu[40], rss[48];
					if (!r->ran)
						continue;
					if (r->failed || !r->nruns) {
						printf("%-52s %-4s FAILED: %s\n", job_label((enum e2e_job)j), out_key[out],
						       r->why);
						continue;
					}
					snprintf(cpu, sizeof(cpu), "%.3f/%.3f", r->med_cpu[0], r->med_cpu[1]);
					snprintf(rss, sizeof(rss), "%ld/%ld", r->rss_kib[0], r->rss_kib[1]);
					printf("%-52s %-4s %7.3f s %6.2fx %6.2fx %15s %15s\n", job_label((enum e2e_job)j),
					       out_key[out], r->med_secs,
					       e2e_speedup((enum e2e_input)in, (enum e2e_job)j, J_PIPE, out),
					       e2e_speedup((enum e2e_input)in, (enum e2e_job)j, J_PIPE_OLD, out), cpu, rss);
				}
		}
		printf("x pipe, x old: the pipe job's time (new, old parser) / this job's time\n");
		printf("\nFull backlog: the producer alone fills %" PRIu32 " slots (record_size %" PRIu32
		       ", format int) from a file, then the consumer alone drains them to a file\n",
		       o.backlog_capacity, shipped_record_size);
		if (backlog.failed) {
			printf("FAILED: %s\n", backlog.why);
		} else if (backlog.ran) {
			printf("queue file %" PRIu64 " bytes; peak RSS producer %ld KiB, consumer %ld KiB"
			       " (consumer - producer: %ld KiB); %.2f s / %.2f s, CPU %.3f s / %.3f s\n",
			       backlog.file_bytes, backlog.use[0].rss_kib, backlog.use[1].rss_kib,
			       backlog.use[1].rss_kib - backlog.use[0].rss_kib, backlog.secs[0], backlog.secs[1],
			       backlog.use[0].cpu_s, backlog.use[1].cpu_s);
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
	printf("\nTargets (issues 5 and 9)\n");
	for (int i = 0; i < ntargets; i++)
		printf("  #%d %-8s %-74s %s\n", targets[i].issue, targets[i].met > 0 ? "met" :
		       targets[i].met == 0 ? "NOT MET" : "-", targets[i].what, targets[i].value);
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
	printf("\n  ],\n  \"parse_format_alone\": [");
	first = true;
	for (int in = 0; in < NINPUTS; in++)
		for (int k = 0; k < NCODEC; k++) {
			if (!codec[in][k].nruns)
				continue;
			printf("%s\n    {\"input\": \"%s\", \"what\": \"%s\", \"ns_per_integer\": %.3f}",
			       first ? "" : ",", in_key[in], codec_key[k], codec[in][k].med_ns);
			first = false;
		}
	printf("\n  ],\n  \"e2e\": [");
	first = true;
	for (int in = 0; in < NINPUTS; in++)
		for (int j = 0; j < NJOBS; j++)
			for (int out = 0; out < NOUTS; out++) {
				const struct e2e_result *r = &e2e[in][j][out];
				if (!r->ran)
					continue;
				printf("%s\n    {\"input\": \"%s\", \"job\": \"%s\", \"output\": \"%s\", \"integers\": %"
				       PRIu64 ", ", first ? "" : ",", in_key[in], job_key[j], out_key[out], o.e2e_count);
				first = false;
				if (r->failed) {
					printf("\"failed\": true, \"why\": ");
					json_str(r->why);
					printf("}");
				} else {
					printf("\"seconds\": %.4f, \"integers_per_s\": %.0f, \"speedup_vs_pipe\": %.3f,"
					       " \"speedup_vs_old_parser_pipe\": %.3f, \"cpu_s\": [%.4f, %.4f],"
					       " \"rss_kib\": [%ld, %ld]}", r->med_secs, (double)o.e2e_count / r->med_secs,
					       e2e_speedup((enum e2e_input)in, (enum e2e_job)j, J_PIPE, out),
					       e2e_speedup((enum e2e_input)in, (enum e2e_job)j, J_PIPE_OLD, out),
					       r->med_cpu[0], r->med_cpu[1], r->rss_kib[0], r->rss_kib[1]);
				}
			}
	printf("\n  ],\n");
	if (backlog.ran) {
		printf("  \"backlog\": {\"capacity\": %" PRIu32 ", \"failed\": %s", o.backlog_capacity,
		       backlog.failed ? "true" : "false");
		if (!backlog.failed)
			printf(", \"file_bytes\": %" PRIu64 ", \"rss_kib\": [%ld, %ld], \"seconds\": [%.3f, %.3f],"
			       " \"cpu_s\": [%.4f, %.4f]", backlog.file_bytes, backlog.use[0].rss_kib,
			       backlog.use[1].rss_kib, backlog.secs[0], backlog.secs[1], backlog.use[0].cpu_s,
			       backlog.use[1].cpu_s);
		printf("},\n");
	}
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
		printf("%s\n    {\"issue\": %d, \"target\": ", i ? "," : "", targets[i].issue);
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
	        "  --only LIST        transports, comma-separated: mmapq,mmapq_big,textbook,spsc,pipe,\n"
	        "                     unix,stdio4k,stdio64k,mq\n"
	        "  --sizes LIST       record sizes, comma-separated, of 8,64,1024,16384\n"
	        "  --e2e-count N      integers in the end-to-end job (default 10000000)\n"
	        "  --e2e-capacity N   the daemons' [queue] capacity (default: as shipped, not set)\n"
	        "  --e2e-record-size N  the daemons' [queue] record_size (default 64, as shipped)\n"
	        "  --e2e-big-capacity N the 'big ring' daemons' capacity (default 65536; record_size 8)\n"
	        "  --backlog-capacity N slots of the full-backlog memory job (--e2e; default\n"
	        "                     16777216, --quick 4096)\n"
	        "  --idle-seconds S   idle measurement (default 10)\n"
	        "  --nice N           run at this nice value (e.g. -20 as root: other processes\n"
	        "                     on the machine then disturb the measurement less)\n"
	        "  --bin-dir DIR      where mmapq-producer and mmapq-consumer are (default\n"
	        "                     $MMAPQ_BIN_DIR, else daemons-rel/ beside this program: the\n"
	        "                     daemons built with MMAPQ_TESTING off, as released)\n"
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
	if (asprintf(&d, "%s/daemons-rel", exe) < 0)
		return strdup(".");
	return d;
}

int main(int argc, char **argv)
{
	bool runs_set = false, e2e_count_set = false, idle_secs_set = false, ring_set = false, backlog_set = false;

	/* Big buffers always come from mmap and go back at free(): glibc would
	 * otherwise raise its threshold after the first free and keep them in
	 * the heap.  A child's peak RSS (ru_maxrss, --e2e) starts at the
	 * benchmark's own resident set at fork, even across exec: it is kept
	 * small. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);

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
		} else if (!strcmp(a, "--backlog-capacity")) {
			NEEDV();
			o.backlog_capacity = (uint32_t)strtoul(v, NULL, 10);
			backlog_set = true;
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
		if (!backlog_set)
			o.backlog_capacity = 4096;
		if (!idle_secs_set)
			o.idle_seconds = 1;
		if (!ring_set)
			o.ring_kib = 64; /* so that the few records of the smoke wrap every ring */
	}
	if (o.runs < 1 || o.runs > MAX_RUNS || o.seconds <= 0 || o.batch < 1 || o.big_batch < 1 || o.spsc_batch < 1 || o.ring_kib < 1 ||
	    o.e2e_count < 1 || o.idle_seconds <= 0 || o.e2e_capacity == 1 || o.e2e_big_capacity < 2 ||
	    o.backlog_capacity < MMAPQ_CAPACITY_MIN || o.backlog_capacity > MMAPQ_CAPACITY_MAX ||
	    (o.backlog_capacity & (o.backlog_capacity - 1))) {
		fprintf(stderr, "mmapq_bench: --runs 1..%d; --seconds, --batch, --ring-kib, --e2e-count and"
		        " --idle-seconds positive; --e2e-capacity 0 (as shipped) or >= 2; --backlog-capacity"
		        " a power of two, 2..16777216\n", MAX_RUNS);
		return EXIT_USAGE_;
	}

	find_cpus();
	if (o.nice_set && setpriority(PRIO_PROCESS, 0, o.nice) < 0) {
		note("--nice %d: %s (running at the default priority)", o.nice, strerror(errno));
		o.nice_set = false;
	}
	if (o.tput && (o.only_mask & (1u << T_MQ)))
		mq_limits_raise();
	else {
		msg_max = read_long_file(MQ_PROC_MSG_MAX, 10);
		msgsize_max = read_long_file(MQ_PROC_MSGSIZE_MAX, 8192);
	}
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
		load_mark(&m);
		run_backlog();
		load_section_end("backlog", &m);
		load_mark(&m);
		if (!failed)
			run_codec();
		load_section_end("alone", &m);
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
	for (int in = 0; in < NINPUTS; in++)
		free(input_path[in]);
	free(bin_dir);
	tu_rmdir_r(tmpdir);
	free(tmpdir);
	return failed ? EXIT_FAIL : 0;
}
