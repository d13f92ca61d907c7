/* SPDX-License-Identifier: MIT */
/*
 * throughput.c -- N records of 8, 64, 1024 and 16384 bytes one way, two
 * processes pinned to two CPUs, every record verified by the consumer.
 * Time: from the producer's first record to the consumer's check of the
 * last one.  Median of --runs runs of about --seconds each (N is calibrated
 * per cell); within a size the transports take turns in each round, so
 * that a slow spell of the machine hits all of them alike.
 *
 * "mmapq / strongest peer" divides by the fastest of pipe, unix, the stdio
 * pipes, mq and ZeroMQ at each size.
 */
#include <inttypes.h>

#include "bench.h"
#include "mmapq.h"

const uint32_t sizes[NSIZES] = {8, 64, 1024, 16384};

const struct transport_def tdefs[NTRANSPORTS] = {
	[T_MMAPQ] = {"mmapq", "mmapq (library)", &tr_mmapq},
	[T_MMAPQ_BIG] = {"mmapq_big", "mmapq (library), big batches", &tr_mmapq},
	[T_TEXTBOOK] = {"textbook", "mutex+condvar, per record", &tr_mmapq},
	[T_SPSC] = {"spsc", "lock-free SPSC ring", &tr_spsc},
	[T_PIPE] = {"pipe", "pipe", &tr_pipe},
	[T_UNIX] = {"unix", "AF_UNIX stream", &tr_unix},
	[T_STDIO4K] = {"stdio4k", "pipe, stdio 4 KiB buffers", &tr_stdio},
	[T_STDIO64K] = {"stdio64k", "pipe, stdio 64 KiB buffers", &tr_stdio},
	[T_MQ] = {"mq", "POSIX mq", &tr_mq},
	[T_ZMQ] = {"zmq", "ZeroMQ PUSH/PULL, ipc://", &tr_zmq},
};

struct tput_result tput[NTRANSPORTS][NSIZES];

/* The peers a user would pick instead of mmapq (not the lock-free ring, which
 * is a reference, nor the textbook use of mmapq itself). */
static bool is_peer(int t)
{
	return t == T_PIPE || t == T_UNIX || t == T_STDIO4K || t == T_STDIO64K || t == T_MQ ||
	       t == T_ZMQ;
}

uint32_t ring_frame(uint32_t size)
{
	return (uint32_t)mmapq_frame_size(size);
}

/* The rings (mmapq, textbook, spsc) have --ring-kib bytes (a power of two:
 * mmapq's size), or the least power of two that holds 64 records, which
 * also lets max_record be the record's size (its frame at most a quarter
 * of the ring). */
uint64_t ring_bytes(uint32_t size)
{
	uint64_t want = 64 * (uint64_t)ring_frame(size), b = MMAPQ_SIZE_MIN;

	while (b * 2 <= (uint64_t)opt.ring_kib * 1024u)
		b *= 2;
	while (b < want)
		b *= 2;
	return b;
}

uint32_t ring_cap(uint32_t size)
{
	return (uint32_t)(ring_bytes(size) / ring_frame(size));
}

/* A batch is at most a quarter of the ring. */
uint32_t ring_batch(uint32_t cap, uint32_t b)
{
	if (b > cap / 4)
		b = cap / 4;
	return b ? b : 1;
}

/* One run with n records: elapsed seconds, or < 0 on failure (-2: not
 * possible on this system). */
static double tput_once(enum transport_row t, uint32_t size, uint64_t n, struct tput_result *res)
{
	struct cell c = {.tr = tdefs[t].tr, .size = size, .n = n};
	int r;

	cell_init(&c);
	c.frame = ring_frame(size);
	c.per_record = t == T_TEXTBOOK;
	c.stdio_buf = t == T_STDIO4K ? 4096 : 65536;
	c.ring_bytes = ring_bytes(size);
	c.cap = ring_cap(size);
	c.batch = t == T_SPSC ? ring_batch(pow2_floor(c.cap), opt.spsc_batch) :
	          ring_batch(c.cap, t == T_MMAPQ_BIG ? opt.big_batch : opt.batch);
	res->batch = t == T_TEXTBOOK ? 1 : c.batch;
	r = c.tr->setup(&c, res->why, sizeof(res->why));
	if (r != 0) {
		cell_teardown(&c);
		return r > 0 ? -2 : -1;
	}
	res->cap = c.cap; /* the spsc ring's: a power of two */
	res->ring_bytes = c.ring_bytes;
	res->depth = c.mq_depth;
	r = run_pair(c.tr->prod, c.tr->cons, &c, res->why, sizeof(res->why));
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

uint64_t quick_n(uint32_t size)
{
	uint64_t n = 3 * (uint64_t)ring_cap(size) + 7; /* wraps the ring */
	return n < 1000 ? 1000 : n > 120000 ? 120000 : n;
}

static void tput_fail(enum transport_row t, int si, double el)
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

/* Records for one run of about --seconds: once(n, arg) runs n records and
 * returns the seconds it took, or < 0 (failed: that is returned, *n_out
 * 0).  The calibration runs double as warm-up. */
double calibrate(double (*once)(uint64_t n, void *arg), void *arg, uint64_t *n_out)
{
	uint64_t n = 2000;
	double el;

	*n_out = 0;
	for (;;) {
		el = once(n, arg);
		if (el < 0)
			return el;
		if (el >= opt.seconds / 8 || n >= (1ull << 34))
			break;
		double f = opt.seconds / 4 / (el > 1e-6 ? el : 1e-6);
		n = (uint64_t)((double)n * (f < 2 ? 2 : f > 64 ? 64 : f));
	}
	n = (uint64_t)((double)n / el * opt.seconds);
	*n_out = n < 1000 ? 1000 : n;
	return el;
}

struct tput_arg {
	enum transport_row t;
	int si;
};

static double tput_once_arg(uint64_t n, void *arg)
{
	const struct tput_arg *a = arg;
	return tput_once(a->t, sizes[a->si], n, &tput[a->t][a->si]);
}

/* Records for one run of about --seconds; 0 if the transport failed or is
 * not possible. */
static uint64_t tput_calibrate(enum transport_row t, int si)
{
	struct tput_arg a = {t, si};
	uint64_t n;
	double el;

	tput[t][si].ran = true;
	if (opt.quick)
		return quick_n(sizes[si]);
	el = calibrate(tput_once_arg, &a, &n);
	if (el < 0)
		tput_fail(t, si, el);
	return n;
}

/* One size: calibrate every transport, then --runs rounds in which every
 * transport runs once, so that a slow spell of the machine (this is often
 * a VM) hits all of them alike instead of one transport's runs. */
static void tput_size(int si)
{
	long csw[NTRANSPORTS][MAX_RUNS];

	for (int t = 0; t < NTRANSPORTS; t++)
		if (opt.only_mask & (1u << t))
			tput[t][si].n = tput_calibrate((enum transport_row)t, si);
	for (int run = 0; run < opt.runs; run++)
		for (int t = 0; t < NTRANSPORTS; t++) {
			struct tput_result *res = &tput[t][si];
			double el;
			if (!(opt.only_mask & (1u << t)) || !res->n || res->failed)
				continue;
			el = tput_once((enum transport_row)t, sizes[si], res->n, res);
			if (el < 0) {
				tput_fail((enum transport_row)t, si, el);
				continue;
			}
			res->rps[res->nruns] = (double)res->n / el;
			csw[t][res->nruns++] = res->csw;
		}
	for (int t = 0; t < NTRANSPORTS; t++) {
		struct tput_result *res = &tput[t][si];
		if (!(opt.only_mask & (1u << t)) || !res->nruns || res->failed)
			continue;
		spread(res->rps, res->nruns, &res->med_rps, &res->lo_rps, &res->hi_rps);
		/* context switches of the run closest to the median */
		for (int i = 0; i < res->nruns; i++)
			if (res->rps[i] == res->med_rps)
				res->csw = csw[t][i];
		note("%-28s %6" PRIu32 " B: %12.0f records/s (%" PRIu64 " records x %d, %ld context switches)",
		     tdefs[t].label, sizes[si], res->med_rps, res->n, res->nruns, res->csw);
	}
}

void run_throughput(void)
{
	struct load_mark m;

	load_mark(&m);
	for (int si = 0; si < NSIZES; si++) {
		if (!(opt.size_mask & (1u << si)))
			continue;
		tput_size(si);
	}
	load_section_end("throughput", &m);
}

/* The smoke's other half: every transport must have run (mq only where
 * msgsize_max allows the size). */
void tput_check_all_ran(void)
{
	for (int si = 0; si < NSIZES; si++)
		for (int t = 0; t < NTRANSPORTS; t++) {
			const struct tput_result *r = &tput[t][si];
			if (!(opt.size_mask & (1u << si)) || !(opt.only_mask & (1u << t)))
				continue;
			if (!r->failed && r->nruns == 0 && !(t == T_MQ && (long)sizes[si] > msgsize_max)) {
				note("%s at %u B did not run: %s", tdefs[t].label, sizes[si], r->why);
				failed = true;
			}
		}
}

double ratio_of(enum transport_row mine, enum transport_row peer, int si)
{
	const struct tput_result *a = &tput[mine][si], *b = &tput[peer][si];
	if (!a->ran || a->failed || !b->ran || b->failed || b->med_rps <= 0)
		return 0;
	return a->med_rps / b->med_rps;
}

int ratio_rounds(enum transport_row mine, enum transport_row peer, int si, double *med, double *lo,
                 double *hi)
{
	const struct tput_result *a = &tput[mine][si], *b = &tput[peer][si];

	*med = *lo = *hi = 0;
	if (!a->ran || a->failed || !b->ran || b->failed)
		return 0;
	return ratio_spread(a->rps, a->nruns, b->rps, b->nruns, med, lo, hi);
}

int strongest_peer(int si, bool stdio_only)
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
