/* SPDX-License-Identifier: MIT */
/*
 * bench.h -- what the parts of mmapq_bench share (internal to it).
 *
 *   main.c               options, the CPUs, the order of the sections
 *   util.c               clock, messages, I/O, child processes, interference
 *   transport_*.c        one per transport, each a struct transport: its
 *                        resources, its producer and consumer (throughput),
 *                        its two ends of a ping-pong (latency)
 *                          mmapq   the library, batched and per record
 *                          spsc    the lock-free reference ring
 *                          stream  pipe, AF_UNIX stream, pipe through stdio
 *                          mq      POSIX message queue (and its limits)
 *   throughput.c         the throughput rows, ratios, strongest peer
 *   latency.c            ping-pong
 *   e2e.c                the daemons end to end against the pipe job, and
 *                        the full backlog
 *   alone.c              the parser and the formatter alone
 *   fanout.c             fan-out: one producer, 1, 2 and 4 named consumers
 *   fanin.c              fan-in: 1, 2 and 4 writers into one queue, over
 *                        mmapq, POSIX mq and one socket to mmapq-producer
 *   idle.c               an idle daemon pair, and the idle fan-out daemons
 *   format3.c            the format-3 peer: libmmapq 1 from git history,
 *                        built and loaded while the benchmark runs
 *                        (format3_peer.c, with mmapq_ends.h: the library's
 *                        producer and consumer, written once for both APIs)
 *   corpus.c             the changelogs of this machine: the queue bytes
 *                        they need (format 4 against format 3), and end to
 *                        end against cat | cat (the line jobs' rounds)
 *   lines.c              generated lines of 64 B and 1 KiB end to end
 *                        against cat | cat
 *   durability.c         the daemons with each sync mode, the disk's bound
 *   peers.c              the same inputs over POSIX mq, Redis Streams and
 *                        NATS JetStream, against the daemons
 *   report.c             targets by topic, the text tables, JSON
 *   plot.c               --plot: gnuplot data, script and charts
 *
 * What each measures and how: README-bench.md.
 */
#ifndef MMAPQ_BENCH_H
#define MMAPQ_BENCH_H

#include <limits.h>
#include <mqueue.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#define EXIT_FAIL   1
#define EXIT_USAGE_ 64

#define NSIZES 4
extern const uint32_t sizes[NSIZES]; /* 8, 64, 1024, 16384 */

#define K1 UINT64_C(0x9E3779B97F4A7C15)
#define K2 UINT64_C(0xD6E8FEB86659FD93)

#define MAX_RUNS 15
#define CHILD_TIMEOUT_MS 120000
#define FAR_NS (60ull * 1000000000ull) /* deadline of a wait; a healthy one is microseconds */
#define LAT_SIZE 64u
#define PIPE_CHUNK 65536 /* what the end-to-end jobs read and write at a time */
#define FANOUT_MAX 4      /* the most named consumers of the fan-out section */
#define FANOUT_MAX_S "4"  /* the same, as text */

/* ---- options (main.c) ------------------------------------------------------ */

struct opts {
	bool quick, json, e2e, e2e_lines, idle, tput, lat, fanout, fanin, format3, space, corpus, durability, peers;
	int f3_runs;          /* rounds of the format-3 comparison */
	uint64_t corpus_lines; /* the first lines of each corpus only (0: all) */
	uint64_t dur_lines, dur_ints; /* records of the durability inputs */
	uint64_t dur_always_div;      /* sync = always carries 1/this of them */
	const char *f3_rev;   /* its commit (NULL: found in git history) */
	int runs;
	double seconds;
	const char *bin_dir;
	const char *plot_dir; /* --plot: where the charts go (NULL: none) */
	uint32_t batch;       /* records per publish/release: mmapq          */
	uint32_t big_batch;   /* the same, for the "big batches" row         */
	uint32_t spsc_batch;  /* records per index publication: spsc         */
	uint32_t ring_kib;    /* ring KiB of mmapq, textbook and spsc        */
	uint32_t spin_us;     /* mmapq_params.spin_us of the "mmapq spin" latency row */
	uint64_t e2e_count;
	uint64_t lines64_count, lines1k_count; /* --e2e-lines: lines of 64 B, of 1 KiB */
	uint64_t e2e_size;         /* the daemons' [queue] size, 0: as shipped */
	uint64_t e2e_max_record;   /* their [queue] max_record, 0: as shipped */
	uint64_t e2e_big_size;     /* the "big ring" daemons' size (max_record 8) */
	uint64_t backlog_records;  /* int records of the full-backlog memory job: its ring */
	double idle_seconds;
	uint32_t only_mask;   /* transports to run (bit per enum transport) */
	uint32_t size_mask;
	int nice;             /* setpriority() of the benchmark and its children */
	bool nice_set;
};
extern struct opts opt;

/* ---- the machine and the run (util.c) ----------------------------------------- */

extern int cpu_a, cpu_b; /* producer side, consumer side (-1: unpinned) */
extern int ncpus_online;
extern char cpu_model[128];
extern char *tmpdir;     /* the run's scratch directory */
extern char *bin_dir;    /* mmapq-producer and mmapq-consumer */
extern bool failed;      /* a record failed verification or a job failed: exit 1 */
extern uint64_t total_verified;

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* "mmapq_bench: ..." on stderr */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* In a child: say what went wrong; returns the child's exit code. */
int child_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pin(int cpu);
long read_long_file(const char *path, long dflt);

/* hold.c: a setting (a number in a /proc or /sys file) changed for the run
 * and put back at exit or on SIGINT/SIGTERM/SIGHUP; false if it could not
 * be written (not root, a value the kernel refuses, no such file). */
bool hold_setting(const char *path, long value);
/* the VM's free page reporting off for the run, as far as the kernel lets
 * (hold.c says why); page_reporting_note says what was done */
void page_reporting_off(void);
extern char page_reporting_note[160];
void *xalloc(size_t n); /* zeroed, 64-byte aligned; exits on failure */
uint32_t pow2_floor(uint64_t v);
int cmp_u64(const void *a, const void *b);
double median(const double *v, int n);
/* the median (med NULL: not wanted), lowest and highest of v[0..n) */
void spread(const double *v, int n, double *med, double *lo, double *hi);
/* Round by round: num[i] / den[i] over the rounds both have (the jobs of a
 * round ran back to back, so a slow spell of the machine hits both): the
 * median, lowest and highest of those ratios (all 0 if none); how many. */
int ratio_spread(const double *num, int nnum, const double *den, int nden, double *med, double *lo,
                 double *hi);

/* ---- interference: what else ran on the machine meanwhile (util.c) --------------- */

struct load_mark {
	double busy_s, steal_s, ours_s, wall_s;
};

struct load_section {
	char name[24];
	double wall_s, others_pct, steal_pct;
};
extern struct load_section loads[16];
extern int nloads;

void load_mark(struct load_mark *m);
void load_section_end(const char *name, const struct load_mark *a);

/* ---- records ------------------------------------------------------------------ */

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
static inline uint64_t rec_index(const void *src)
{
	uint64_t w0;
	memcpy(&w0, src, 8);
	return w0 * UINT64_C(0xF1DE83E19937733D) - 1; /* K1^-1 mod 2^64 */
}

/* ---- the control block shared with the two children (util.c) ----------------- */

struct ctl {
	uint32_t ready;                 /* start barrier */
	uint32_t parties;               /* children that meet at it */
	uint8_t pad0[56];
	uint64_t t_start, t_end;        /* producer's first record, consumer's last check */
	uint64_t verified;              /* records the consumer checked */
	uint64_t p50_ns, p99_ns, p999_ns, max_ns; /* latency: one-way */
	long nvcsw[2], nivcsw[2];       /* context switches of the two children */
	/* fan-out: each named consumer's check of the last record, and its count */
	uint64_t fan_end[FANOUT_MAX], fan_verified[FANOUT_MAX];
	double cpu_s[1 + FANOUT_MAX];   /* CPU time from the barrier to the end: producer, consumers */
};
extern struct ctl *ctl;

void barrier(void);              /* every child (ctl->parties) is ready */
void record_rusage(int side);    /* 0 producer, 1 consumer */
/* The CPU time of this process from the barrier (end false, right after
 * it) to its end (end true) into ctl->cpu_s[slot]. */
void cpu_window(int slot, bool end);

/* ---- a cell: one transport, one size, one run ----------------------------------- */

struct ring; /* the lock-free ring's header (transport_spsc.c) */
struct transport;

struct cell {
	const struct transport *tr;
	/* size: a record's bytes; frame: what it takes in a ring (mmapq's
	 * frame, the spsc ring's slot); cap: records the ring holds;
	 * ring_bytes: mmapq's [queue] size */
	uint32_t size, cap, batch, frame, spin_us;
	uint64_t ring_bytes;
	bool per_record;        /* mmapq used one record per call (the textbook row) */
	uint32_t format;        /* mmapq: MMAPQ_FORMAT_INT (8-byte records) or 0, line */
	const char *consumer;   /* mmapq: a named consumer (fan-out), NULL: the default one */
	int cons_ix;            /* ... which one: its ctl->fan_end and fan_verified */
	uint32_t max_consumers; /* mmapq: the consumer table (0: the library's default) */
	uint32_t stdio_buf;     /* the stdio pipes' buffer */
	uint64_t n;
	int fd[4];
	mqd_t mq[2];
	long mq_depth;
	char path[2][PATH_MAX]; /* unlinked at teardown */
	struct ring *ring[2];   /* unmapped at teardown */
	size_t ring_len;
	/* latency */
	uint64_t iters, warm;
};

/* One side's view of the two channels of a ping-pong. */
struct ep {
	struct cell *c;
	int side;
	int rfd, wfd;
	mqd_t mrx, mtx;
	struct mmapq *rx, *tx;
	struct ring *rrx, *rtx;
	uint64_t rx_head, tx_tail;
	uint64_t deadline;
};

/*
 * A transport.  The parent sets up a cell's resources (setup for
 * throughput, one channel; lat_setup for latency, two channels, one each
 * way), forks the two children, lets go of its ends and tears the cell
 * down (cell_teardown: whatever resources the cell holds).  setup and
 * lat_setup return 0, -1 (why says why) or 1 (not possible on this
 * system).  A transport without a ping-pong has lat_setup NULL.  The
 * children return their exit code (child_fail).
 */
struct transport {
	int (*setup)(struct cell *c, char *why, size_t whylen);
	int (*prod)(struct cell *c);
	int (*cons)(struct cell *c);
	int (*lat_setup)(struct cell *c, char *why, size_t whylen);
	int (*ep_open)(struct ep *e, struct cell *c, int side);
	int (*send)(struct ep *e, const void *buf, uint64_t i);
	int (*recv)(struct ep *e, void *buf);
	int (*done)(struct ep *e);      /* the record received last is dealt with */
	void (*ep_close)(struct ep *e);
};

extern const struct transport tr_mmapq, tr_spsc, tr_pipe, tr_unix, tr_stdio, tr_mq, tr_zmq;

void cell_init(struct cell *c);         /* no resources yet */
void cell_parent_close(struct cell *c); /* after the forks: the parent's ends */
void cell_teardown(struct cell *c);

/* ---- child processes (util.c) ---------------------------------------------------- */

typedef int (*child_fn)(struct cell *c);

struct child_use {
	long rss_kib;  /* ru_maxrss, -1 where unknown */
	double cpu_s;  /* user + system */
};

/* fork(), stdio flushed first (nothing is written twice), the child pinned
 * to cpu (-1: not pinned). */
pid_t fork_pinned(int cpu);
/* Run two children (a on cpu_a, b on cpu_b) to completion; 0 if both
 * exited 0. */
int run_pair(child_fn a, child_fn b, struct cell *c, char *why, size_t whylen);
/* Run n children to completion, child i fn[i](cell[i]) pinned to cpu[i]
 * (-1: not pinned), meeting at the start barrier; 0 if all exited 0. */
int run_group(int n, const child_fn fn[], struct cell *const cell[], const int cpu[], char *why,
              size_t whylen);
/* Wait for n children, at most timeout_ms in all; the others are killed as
 * soon as one fails.  st[i]: the wait status, or -ETIMEDOUT (then killed). */
void wait_all(int n, const pid_t pid[], int st[], int timeout_ms, struct child_use use[]);
static inline void wait_pair(const pid_t pid[2], int st[2], int timeout_ms, struct child_use use[2])
{
	wait_all(2, pid, st, timeout_ms, use);
}
/* Two children pinned as the daemons are, joined by a pipe: on cpu_a
 * left(ctx, the file at in, the pipe's write end), on cpu_b right(ctx, the
 * pipe's read end, the file at out opened for appending, or -1 if out is
 * NULL); each exits with what its function returns.  *secs: from before
 * the first fork to after both are reaped.  0, or -1 with why (what each,
 * named by names[0] and names[1], exited with). */
typedef int pipe_end_fn(const void *ctx, int in_fd, int out_fd);
int pipe_pair(const char *in, const char *out, pipe_end_fn *left, pipe_end_fn *right, const void *ctx,
              const char *const names[2], double *secs, struct child_use use[2], char *why,
              size_t whylen);
/* cat < in | cat > a file in tmpdir (to_file) or /dev/null, each cat
 * pinned as the daemons are: the same bytes moved, nothing looked at.
 * With to_file the copy is compared with in, then removed.  0 and *secs
 * (from the first fork to both reaped), or -1 with why. */
int cat_pair(const char *in, bool to_file, char *why, size_t whylen, double *secs,
             struct child_use use[2]);
/* Wait for pid (at most timeout_ms, then kill it): its exit code, or -1. */
int wait_one(pid_t pid, int timeout_ms, struct child_use *use);
/* exec argv with these descriptors (in_fd -1: inherited), pinned to cpu;
 * argv[0] without a '/' is looked for in PATH. */
pid_t spawn(char *const argv[], int in_fd, int out_fd, int err_fd, int cpu);
/* Run a tool (git, tar, the C compiler) to its end, unpinned, stdin
 * /dev/null, its command line and stderr appended to log_path (NULL:
 * nowhere); its stdout's first line into out (NULL: to the log).  Its exit
 * code, or -1. */
int run_tool(char *const argv[], const char *log_path, char *out, size_t outlen);

/* ---- POSIX mq limits (transport_mq.c) --------------------------------------------- */

extern long msg_max, msgsize_max;
extern char mq_limits_note[256];
void mq_limits_raise(void); /* as far as we may, for the run; put back at exit */
void mq_limits_read(void);  /* as they are */
/* The deepest queue of messages of size bytes: the largest depth up to
 * msg_max (itself raised as far as the kernel allows when we may: see
 * mq_limits_raise), and at most 64 MiB of messages, that mq_open accepts,
 * found by bisection (RLIMIT_MSGQUEUE refuses the deeper ones with
 * EMFILE); created as name, open in *ret.  Its depth; -1 if msgsize_max
 * forbids the size, -2 if even depth 1 fails. */
long mq_open_deepest(const char *name, long size, mqd_t *ret);

/* ---- throughput (throughput.c) ----------------------------------------------------- */

enum transport_row {
	T_MMAPQ, T_MMAPQ_BIG, T_TEXTBOOK, T_SPSC, T_PIPE, T_UNIX, T_STDIO4K, T_STDIO64K, T_MQ, T_ZMQ,
	NTRANSPORTS
};

struct transport_def {
	const char *key, *label;
	const struct transport *tr;
};
extern const struct transport_def tdefs[NTRANSPORTS];

struct tput_result {
	bool ran, failed;
	char why[128];
	uint64_t n;
	int nruns;
	double rps[MAX_RUNS];
	double med_rps, lo_rps, hi_rps;
	long depth;          /* mq */
	uint32_t cap, batch; /* rings: records it holds, per batch */
	uint64_t ring_bytes; /* mmapq's ring */
	long csw;            /* voluntary context switches, median run (both sides) */
};
extern struct tput_result tput[NTRANSPORTS][NSIZES];

/* The rings of size-byte records (mmapq's, the spsc ring's): the bytes
 * each record takes (mmapq_frame_size: 8 B and the record rounded up to
 * 8), the ring's bytes (--ring-kib, at least 64 records), and the records
 * it holds. */
uint32_t ring_frame(uint32_t size);
uint64_t ring_bytes(uint32_t size);
uint32_t ring_cap(uint32_t size);
uint64_t quick_n(uint32_t size); /* --quick: records that wrap the ring of this size 3 times */
/* Records for one run of about --seconds: once(n, arg) runs n records and
 * returns its seconds, or < 0 (then returned as is, *n_out 0). */
double calibrate(double (*once)(uint64_t n, void *arg), void *arg, uint64_t *n_out);
uint32_t ring_batch(uint32_t cap, uint32_t b);
void run_throughput(void);
void tput_check_all_ran(void); /* every transport asked for ran (mq where possible) */
double ratio_of(enum transport_row mine, enum transport_row peer, int si);
/* The same round by round (ratio_spread): the median of the rounds' ratios
 * into *med, their range; 0 if either did not run. */
int ratio_rounds(enum transport_row mine, enum transport_row peer, int si, double *med, double *lo,
                 double *hi);
/* The fastest peer at this size, or -1 if none ran; among the stdio pipes
 * only if stdio_only. */
int strongest_peer(int si, bool stdio_only);

/* ---- latency (latency.c) ------------------------------------------------------------- */

enum lat_kind { L_MMAPQ, L_MMAPQ_SPIN, L_PIPE, L_UNIX, L_MQ, L_SPSC, NLAT };

struct lat_def {
	const char *key, *label;
	enum transport_row row; /* the throughput row of the same transport (--only) */
};
extern const struct lat_def ldefs[NLAT];

struct lat_result {
	bool ran, failed;
	char why[128];
	int nruns;
	double p50[MAX_RUNS], p99[MAX_RUNS]; /* each run's, of its iters round trips */
	double med_p50, med_p99, lo_p50, hi_p50, lo_p99, hi_p99; /* over the runs */
	uint64_t iters;
};
extern struct lat_result lat[NLAT];

void run_latency(void);

/* ---- end to end and the full backlog (e2e.c) -------------------------------------- */

enum e2e_input { IN_RAND, IN_SEQ, NINPUTS };
extern const char *const in_key[NINPUTS];
extern const char *const in_label[NINPUTS];
extern char *input_path[NINPUTS];
extern uint64_t input_bytes[NINPUTS];

enum e2e_job { J_DAEMONS, J_DAEMONS_BIG, J_PIPE, J_PIPE_OLD, J_CAT, NJOBS };
extern const char *const job_key[NJOBS];
enum { OUT_NULL_, OUT_FILE_, NOUTS };
extern const char *const out_key[NOUTS];

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
extern struct e2e_result e2e[NINPUTS][NJOBS][NOUTS];
extern uint64_t shipped_size;
extern uint32_t shipped_max_record;
extern long own_rss_kib; /* the benchmark's peak RSS after the jobs: what a forked child starts from */

struct backlog_result {
	bool ran, failed;
	char why[256];
	uint64_t file_bytes;     /* the queue file */
	struct child_use use[2]; /* producer, consumer */
	double secs[2];
};
extern struct backlog_result backlog;

void run_e2e(void);
void run_backlog(void);
void e2e_free(void);
const char *job_label(enum e2e_job j);
/* Time of job base over that of job j: > 1 is faster; 0 if either did not run. */
double e2e_speedup(enum e2e_input in, enum e2e_job j, enum e2e_job base, int out);
/* base's time / r's, round by round (ratio_spread: the median of the
 * rounds' ratios, their range); 0 if either did not run. */
int secs_ratio(const struct e2e_result *base, const struct e2e_result *r, double *med, double *lo,
               double *hi);
/* The daemons' queue: format, sync and geometry (NULL, 0: int, never; size
 * and max_record as shipped, not set in the configuration). */
struct daemon_cfg {
	const char *format;        /* "int", "line" */
	const char *sync;          /* "never", "batch", "interval", "always" */
	uint32_t sync_interval;    /* ms (0: not set) */
	uint64_t size, max_record;
};
/* Their configuration file tmpdir/name, the queue tmpdir/name.q. */
char *write_config(const char *name, const char *output, const struct daemon_cfg *d);
/* One run of the daemons: mmapq-producer < input, mmapq-consumer --count
 * count to a file (compared with the input: every job's input is what its
 * output must be) or null; the queue file made before the clock starts.
 * 0, or -1 (why says why). */
struct daemon_run {
	struct daemon_cfg cfg;
	const char *input;
	uint64_t count;
	bool to_file;
};
int run_daemons(const struct daemon_run *job, char *why, size_t whylen, double *secs,
                struct child_use use[2]);
/* In a child: the file at in_fd into the parser, PIPE_CHUNK bytes at a time
 * through buf, to its end.  0, or the child's exit code, having said what
 * failed (what: the words for a failed feed, whose callbacks send). */
struct mmapq_parser;
int parser_feed_fd(struct mmapq_parser *p, int in_fd, char *buf, const char *what);
/* count integers of kind in, one per line, canonical, into path. */
int write_input(const char *path, enum e2e_input in, uint64_t count, uint64_t *bytes);
/* count lines of len bytes (at least 11) and a '\n' each into path, line i
 * a function of i and distinct from every other.  0 or -errno. */
int write_lines(const char *path, uint64_t count, uint32_t len, uint64_t *bytes);
/* 0 if file b holds the bytes of file a; -1 and why says where not. */
int files_equal(const char *a, const char *b, char *why, size_t whylen);

/* ---- the parser and the formatter alone (alone.c) --------------------------------- */

enum codec_kind { C_PARSE_OLD, C_PARSE_NEW, C_FMT, C_SNPRINTF, NCODEC };
extern const char *const codec_key[NCODEC];
extern const char *const codec_label[NCODEC];
struct codec_result {
	int nruns;
	double ns[MAX_RUNS];
	double med_ns, lo_ns, hi_ns;
};
extern struct codec_result codec[NINPUTS][NCODEC];
extern bool codec_ran;

void run_codec(void);
/* The old parser's time / the new one's, run by run (ratio_spread). */
int codec_speedup(int in, double *med, double *lo, double *hi);

/* ---- fan-out (fanout.c) ---------------------------------------------------------- */

#define NFAN 3
extern const int fan_consumers[NFAN]; /* 1, 2, 4 named consumers */

struct fanout_result {
	bool ran, failed;
	char why[160];
	uint32_t size, cap, batch;
	uint64_t ring_bytes;
	uint64_t n;                            /* records per run */
	int ncpus;                             /* CPUs the benchmark may use */
	int cpu[NFAN][1 + FANOUT_MAX];         /* where each ran: producer, consumers (-1: unpinned) */
	int nruns[NFAN];
	double rps[NFAN][FANOUT_MAX][MAX_RUNS]; /* each consumer's records/s, per run */
	double med_rps[NFAN][FANOUT_MAX], lo_rps[NFAN][FANOUT_MAX], hi_rps[NFAN][FANOUT_MAX];
	double busy[NFAN];      /* median CPUs busy (all their CPU time / the time), of ncpus */
	double ceiling[NFAN];   /* the ratio the CPUs allow at that CPU time per record (fanout.c) */
	double busy_lo[NFAN], busy_hi[NFAN], ceiling_lo[NFAN], ceiling_hi[NFAN]; /* their ranges */
};
extern struct fanout_result fanout;

void run_fanout(void);
/* Consumer c of the k-th case (fan_consumers[k] of them) / the single consumer; 0 if not measured. */
double fanout_ratio(int k, int c);
/* The slowest consumer of the k-th case / the single consumer. */
double fanout_min_ratio(int k);
/* Consumer c of the k-th case / the single consumer of the same round
 * (ratio_spread); 0 if not measured. */
int fanout_ratio_rounds(int k, int c, double *med, double *lo, double *hi);

/* The most records/s the CPUs allow at the CPU time per record measured
 * (cpu[i] seconds for n records, process i placed on CPU where[i], -1:
 * not pinned): no process goes faster than one CPU, the processes pinned
 * to one CPU not faster than it, and all of them not faster than the
 * ncpus there are. */
double cpu_bound(const double cpu[], const int where[], int np, uint64_t n, int ncpus);
/* The CPUs the benchmark may use, in order, into list (CPU_SETSIZE
 * entries); how many, 0 if unknown. */
int usable_cpus(int list[]);
/* What the CPUs allow over the single case's median records/s (one):
 * the median and range of n rounds' cpu_bound() figures, each / one;
 * left as they are if one is 0. */
void ceiling_spread(const double bound[], int n, double one, double *med, double *lo, double *hi);

/* ---- fan-in (fanin.c) ------------------------------------------------------------ */

#define NFANIN 3
#define FANIN_MAX 4 /* the most writers; the control block holds their CPU times */
extern const int fanin_writers[NFANIN]; /* 1, 2, 4 */
enum fanin_transport { FI_MMAPQ, FI_MQ, FI_SOCKET, NFI_T };
extern const char *const fanin_key[NFI_T];
extern const char *const fanin_label[NFI_T];

struct fanin_result {
	bool ran, failed;
	char why[256];
	uint32_t size, cap, batch;
	uint64_t ring_bytes;                   /* mmapq's ring, and the daemon's [queue] size */
	long mq_depth;                         /* the POSIX mq's depth */
	uint64_t n[NFI_T];                     /* records per run, all writers together */
	int ncpus;                             /* CPUs the benchmark may use */
	int cpu[NFANIN][1 + FANIN_MAX];        /* where each ran: reader, writers (-1: unpinned) */
	int nruns[NFI_T][NFANIN];
	double rps[NFI_T][NFANIN][MAX_RUNS];   /* total records/s, per run */
	double med_rps[NFI_T][NFANIN], lo_rps[NFI_T][NFANIN], hi_rps[NFI_T][NFANIN];
	double busy[NFI_T][NFANIN], busy_lo[NFI_T][NFANIN], busy_hi[NFI_T][NFANIN];
	/* the ratio to the single writer the CPUs allow (fanin.c), its range */
	double ceiling[NFI_T][NFANIN], ceiling_lo[NFI_T][NFANIN], ceiling_hi[NFI_T][NFANIN];
};
extern struct fanin_result fanin;

void run_fanin(void);
/* Transport t with the k-th count of writers / its single writer, round by
 * round (ratio_spread); 0 if not measured. */
int fanin_ratio(int t, int k, double *med, double *lo, double *hi);
/* mmapq with the k-th count of writers / peer with as many, round by round. */
int fanin_over(int peer, int k, double *med, double *lo, double *hi);

/* ---- idle (idle.c) ------------------------------------------------------------------ */

#define IDLE_PROCS (1 + FANOUT_MAX)

struct idle_result {
	bool ran, failed;
	char why[256];
	double seconds;
	int nprocs;                    /* the producer, then the consumers */
	long ticks[IDLE_PROCS];        /* utime+stime delta, clock ticks */
	uint64_t run_ns[IDLE_PROCS];   /* /proc/PID/schedstat run time delta, ns (-1: n/a) */
	uint64_t wakeups[IDLE_PROCS];  /* voluntary context switches delta */
	double cpu_pct[IDLE_PROCS];
};
/* idle: the pair (the default consumer); fanout_idle: the producer and
 * FANOUT_MAX named consumers, all attached */
extern struct idle_result idle, fanout_idle;

void run_idle(void);
void run_fanout_idle(void);
/* "mmapq-producer", "mmapq-consumer" or "consumer fo1" etc. of process i */
const char *idle_proc_label(const struct idle_result *r, int i);

/* ---- the corpus: space, end to end (corpus.c) ------------------------------------- */

enum corpus_kind { CORPUS_ALL, CORPUS_DEBIAN, NCORPUS };
extern const char *const corpus_label[NCORPUS];
extern const char *const corpus_key[NCORPUS];

struct corpus {
	char *path;              /* its lines, as the producer takes them (format line) */
	uint32_t max_record;     /* the shipped max_record: longer lines are left out */
	uint64_t files, lines, bytes, payload, longest; /* bytes: with the '\n's */
	uint64_t frames;         /* format 4: the bytes of their frames */
	uint64_t cr, nul_dropped, long_dropped, unterminated, unreadable;
};
extern struct corpus corpus[NCORPUS];

struct space_result {
	bool ran, failed, measured;
	char why[160];
	const struct corpus *corpus;
	uint32_t max_record;     /* format 4: the longest line (at least 8) */
	uint64_t size4;          /* the least ring that held it all, measured */
	uint64_t used4, file4;   /* the bytes its records took in it; the queue file */
	uint32_t record_size3;   /* format 3, computed: the longest line */
	uint64_t slot3, capacity3, ring3, file3;
	bool fits3;              /* within format 3's limits (2^24 slots, 1 MiB records) */
};
extern struct space_result space[NCORPUS];

enum corpus_job { CJ_DAEMONS, CJ_LINES, CJ_CAT, NCJOBS };
extern struct e2e_result corpus_e2e[NCJOBS];

void run_space(void);
/* format 3's bytes / format 4's: the rings, or (exact) without the powers of two */
double space_ratio(const struct space_result *s, bool exact);
void run_corpus_e2e(void);
void corpus_free(void);
const char *corpus_job_label(enum corpus_job j);
/* One round of job j on the lines of c (its path, lines and max_record:
 * the longest line the line reader takes), into res: the daemons (format
 * line, size and max_record as shipped, sync never, output file:), the
 * line reader | line writer pipe job, or cat < input | cat > file; each
 * process pinned as the daemons are, the output compared with c's file
 * byte for byte.  0, or -1 (res failed, res->why says why). */
int line_job_once(const struct corpus *c, enum corpus_job j, struct e2e_result *res);
/* After the rounds: each job's median time and CPU times. */
void line_jobs_summarize(struct e2e_result res[NCJOBS]);
/* The files of c[0..n) removed, their paths freed. */
void line_files_free(struct corpus c[], int n);
/* The pipe job's time / the daemons' (> 1: the daemons are faster); 0 if either did not run. */
/* a peer's median time over the daemons' (0: not measured) */
double corpus_speedup(enum corpus_job peer);

/* ---- lines end to end (lines.c) ---------------------------------------------------- */

enum line_input_kind { LI_64, LI_1K, NLINPUTS };
extern const uint32_t line_len[NLINPUTS]; /* 64, 1024: a line's bytes without its '\n' */
extern struct corpus line_input[NLINPUTS]; /* path, lines, bytes, max_record (shipped) */
/* [input][CJ_DAEMONS, CJ_LINES, CJ_CAT] */
extern struct e2e_result lines_e2e[NLINPUTS][NCJOBS];

void run_e2e_lines(void);
void lines_free(void);

/* ---- durable modes at speed (durability.c) ---------------------------------------- */

/* the four sync modes, then the disk's own row */
enum dur_mode { DM_NEVER, DM_BATCH, DM_INTERVAL, DM_ALWAYS, DM_DISK, NDMODES };
enum dur_in { DIN_LINES, DIN_INTS, NDINPUTS };
#define DUR_LINE 64u /* bytes of a line of the lines input, without its '\n' */
extern const char *const dur_mode_key[NDMODES];
extern const char *const dur_in_key[NDINPUTS];

struct dur_input {
	char *path;
	uint64_t records, bytes;
};
/* [input][0]: all of it; [input][1]: the part sync = always carries */
extern struct dur_input dur_input[NDINPUTS][2];
/* The bytes a durable run of the whole input must write: frames and output */
extern uint64_t dur_bytes[NDINPUTS];

struct dur_result {
	bool ran, failed;
	char why[256];
	uint64_t records;
	int nruns;
	double secs[MAX_RUNS], rps[MAX_RUNS];
	double med_secs, med_rps, lo_rps, hi_rps;
	double med_ratio, lo_ratio, hi_ratio; /* rps / never's, round by round */
};
extern struct dur_result dur[NDINPUTS][NDMODES];

struct disk_result {
	int nruns;
	double sync_s[MAX_RUNS]; /* one 4 KiB write + fdatasync */
	double med_sync_s;
};
extern struct disk_result disk;

void run_durability(void);
void dur_free(void);
/* the median of mode's records/s / never's, round by round; 0 if either did not run */
double dur_ratio(int in, int mode);
const char *dur_row_label(int mode);

/* ---- what a user would run instead of the daemons (peers.c) ----------------------- */

/* The durability inputs moved by a producer and a consumer process over
 * each peer, every output compared with its input; in the rounds of the
 * durability job, each time over the daemons' of the same round. */
#define PEER_BATCH 1000  /* records per Redis flush, per read, per JetStream fetch */
#define PEER_WINDOW 4096 /* JetStream publishes in flight */
enum peer_kind { P_MQ, P_REDIS, P_REDIS_EVERYSEC, P_REDIS_ALWAYS, P_JETSTREAM, NPEERS };
extern const char *const peer_key[NPEERS];
/* the daemons' rows a peer is compared with: never, and the durable ones */
#define NPEER_BASES 3
extern const enum dur_mode peer_base[NPEER_BASES];

struct peer_result {
	bool ran, failed;
	char why[256];
	int nruns;
	long depth;                 /* POSIX mq: the queue's depth */
	double secs[MAX_RUNS], rps[MAX_RUNS];
	double med_secs, med_rps, lo_rps, hi_rps;
	/* its time / the daemons' with peer_base[b], round by round: median,
	 * lowest, highest (0: not measured) */
	double over[NPEER_BASES][3];
};
extern struct peer_result peers[NDINPUTS][NPEERS];

void peer_once(int in, int p);  /* one round of peer p on input in */
void peers_summarize(void);     /* after the rounds: medians and ratios */
const char *peer_label(int p);
bool peer_durable(int p);       /* compared with the durable sync modes too */

/* ---- the format-3 peer (format3.c) ------------------------------------------------ */

/* The throughput job (int records; line records of each size), batched,
 * on libmmapq 2 (format 4) and on libmmapq 1 (format 3) built from git
 * history while the benchmark runs, taking turns. */
#define NF3 (2 * (1 + NSIZES))

struct f3_row {
	uint32_t size, format, batch; /* format: MMAPQ_FORMAT_INT or line */
	uint32_t cap[2];              /* records the ring holds: format 4, format 3 */
	uint64_t ring[2];             /* its bytes (format 3: capacity x slot) */
	uint64_t n;                   /* records per run */
	int nruns;
	double rps[2][MAX_RUNS];      /* records/s per run: format 4, format 3 */
	double med[2], lo[2], hi[2];  /* median, lowest, highest */
	double ratio[MAX_RUNS];       /* format 4 / format 3, round by round */
	double med_ratio, lo_ratio, hi_ratio;
	int slower, faster;           /* rounds in which format 4 was slower, faster */
	int verdict;                  /* -1 slower, 1 faster (beyond noise: format3.c), 0 within noise */
};

struct format3_result {
	bool ran, failed, measured;   /* measured false: why says why (no git history...) */
	char why[256];
	char rev[64];                 /* the commit, abbreviated, and its date */
	char cflags[256];             /* what both libraries were compiled with */
	int nrows;
	int sign_k;                   /* rounds of nruns in which one side must win for a verdict (0: none possible) */
	struct f3_row rows[NF3];
};
extern struct format3_result format3;

void run_format3(void);
const char *f3_row_label(const struct f3_row *w);

/* ---- report (report.c) and charts (plot.c) ---------------------------------------- */

const char *size_label(uint32_t s);
void eval_targets(void);
void print_tables(void);
void print_json(void);
/* --plot DIR: data, script and charts; false if they could not be made
 * (no gnuplot: the data and script are written, and that is said). */
bool write_plot(const char *dir);

#endif
