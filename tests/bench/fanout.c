/* SPDX-License-Identifier: MIT */
/*
 * fanout.c -- fan-out (--fanout): one producer and 1, 2 or 4
 * named consumers on one queue, 64 B records, each consumer checking every
 * record (the mmapq transport's producer and consumer, batched, the
 * consumer named fo0, fo1, ...).  A consumer's throughput is the records
 * over the time from the producer's first record to that consumer's check
 * of the last one; each is shown as a ratio to the single consumer's, in
 * the same run (the three cases take turns in every round).
 *
 * Placement: the producer on the first CPU the benchmark may use, consumer
 * i on the (i + 1)-th, round robin: one consumer is the throughput pair
 * exactly; with more processes than CPUs some share one.
 *
 * What the machine allows: in each run every process measures its CPU
 * time from the start barrier to its end; per record that is p for the
 * producer and c_i for consumer i.  No process goes faster than one CPU,
 * those pinned to one CPU not faster than that CPU, and all together not
 * faster than the M CPUs there are: rate <= min(1/p, 1/c_i, 1/(the sum on
 * one CPU), M / (p + sum c_i)).  That bound over the single consumer's
 * measured rate is the "allows" beside the ratios: a ratio near it means
 * the run was bound by the CPUs (a record's CPU cost included), not by
 * waiting on one another.  "CPUs busy" is the CPU time of all of them over
 * the slowest consumer's time.
 */
#include <inttypes.h>
#include <sched.h>
#include <unistd.h>

#include "bench.h"
#include "mmapq.h"

#define FAN_SIZE 64u

const int fan_consumers[NFAN] = {1, 2, 4};
struct fanout_result fanout;

static char fan_names[FANOUT_MAX][8];
static int fan_cpu_list[CPU_SETSIZE];
static double busy_run[NFAN][MAX_RUNS];  /* all their CPU time / the slowest consumer's time */
static double bound_run[NFAN][MAX_RUNS]; /* cpu_bound(), records/s */

int usable_cpus(int list[])
{
	cpu_set_t set;
	int n = 0;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 0;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set))
			list[n++] = i;
	return n;
}

void ceiling_spread(const double bound[], int n, double one, double *med, double *lo, double *hi)
{
	double m, l, h;

	if (one <= 0)
		return;
	spread(bound, n, &m, &l, &h);
	*med = m / one;
	*lo = l / one;
	*hi = h / one;
}

double cpu_bound(const double cpu[], const int where[], int np, uint64_t n, int ncpus)
{
	double all = 0, b = 0;

	for (int i = 0; i < np; i++) {
		double per = cpu[i] / (double)n, same = 0;
		all += per;
		for (int j = 0; j < np; j++)
			if (j == i || (where[i] >= 0 && where[j] == where[i]))
				same += cpu[j] / (double)n;
		if (same > 0 && (b == 0 || 1 / same < b))
			b = 1 / same;
	}
	if (all > 0 && (b == 0 || ncpus / all < b))
		b = ncpus / all;
	return b;
}

/* One run of case k with n records: the seconds of the slowest consumer,
 * or -1 (fanout.why says why).  The rates go into run `run` (-1: a
 * calibration run, kept nowhere). */
static double fan_once(int k, uint64_t n, int run)
{
	int nc = fan_consumers[k], np = 1 + nc;
	struct cell cells[1 + FANOUT_MAX];
	struct cell *cp[1 + FANOUT_MAX];
	child_fn fn[1 + FANOUT_MAX];
	double slowest = 0, cpu_all = 0;
	int r;

	for (int i = 0; i < np; i++) {
		struct cell *c = &cells[i];
		memset(c, 0, sizeof(*c));
		cell_init(c);
		c->tr = &tr_mmapq;
		c->size = FAN_SIZE;
		c->frame = ring_frame(FAN_SIZE);
		c->ring_bytes = fanout.ring_bytes;
		c->cap = fanout.cap;
		c->batch = fanout.batch;
		c->n = n;
		c->max_consumers = FANOUT_MAX;
		c->consumer = i ? fan_names[i - 1] : NULL;
		c->cons_ix = i ? i - 1 : 0;
		cp[i] = c;
		fn[i] = i ? tr_mmapq.cons : tr_mmapq.prod;
	}
	/* every run on a new queue: the consumers register at their attach,
	 * before the start barrier, so each gets every record */
	snprintf(cells[0].path[0], sizeof(cells[0].path[0]), "%s/fanout.q", tmpdir);
	unlink(cells[0].path[0]);
	for (int i = 1; i < np; i++)
		memcpy(cells[i].path[0], cells[0].path[0], sizeof(cells[0].path[0]));
	r = run_group(np, fn, cp, fanout.cpu[k], fanout.why, sizeof(fanout.why));
	cell_teardown(&cells[0]);
	if (r < 0)
		return -1;
	for (int i = 0; i < nc; i++) {
		double el = (double)(ctl->fan_end[i] - ctl->t_start) / 1e9;
		if (ctl->fan_verified[i] != n) {
			snprintf(fanout.why, sizeof(fanout.why), "%d consumers: %s verified %" PRIu64 " of %" PRIu64,
			         nc, fan_names[i], ctl->fan_verified[i], n);
			return -1;
		}
		total_verified += n;
		if (el > slowest)
			slowest = el;
		if (run >= 0)
			fanout.rps[k][i][run] = (double)n / (el > 1e-9 ? el : 1e-9);
	}
	if (run < 0)
		return slowest;
	for (int i = 0; i < np; i++)
		cpu_all += ctl->cpu_s[i];
	busy_run[k][run] = slowest > 0 ? cpu_all / slowest : 0;
	bound_run[k][run] = cpu_bound(ctl->cpu_s, fanout.cpu[k], np, n, fanout.ncpus > 0 ? fanout.ncpus : 1);
	return slowest;
}

static double fan_once_single(uint64_t n, void *arg)
{
	(void)arg;
	return fan_once(0, n, -1);
}

static void fan_fail(void)
{
	fanout.failed = true;
	failed = true;
	note("fan-out: FAILED: %s", fanout.why);
}

void run_fanout(void)
{
	struct load_mark m;

	load_mark(&m);
	fanout.ran = true;
	fanout.size = FAN_SIZE;
	fanout.ring_bytes = ring_bytes(FAN_SIZE);
	fanout.cap = ring_cap(FAN_SIZE);
	fanout.batch = ring_batch(fanout.cap, opt.batch);
	fanout.ncpus = usable_cpus(fan_cpu_list);
	for (int i = 0; i < FANOUT_MAX; i++)
		snprintf(fan_names[i], sizeof(fan_names[i]), "fo%d", i);
	for (int k = 0; k < NFAN; k++)
		for (int i = 0; i <= fan_consumers[k]; i++)
			fanout.cpu[k][i] = fanout.ncpus >= 2 ? fan_cpu_list[i % fanout.ncpus] : -1;
	if (opt.quick) {
		fanout.n = quick_n(FAN_SIZE);
	} else if (calibrate(fan_once_single, NULL, &fanout.n) < 0) {
		fan_fail();
		goto out;
	}
	/* every case once a round: a slow spell of the machine hits all alike */
	for (int run = 0; run < opt.runs; run++)
		for (int k = 0; k < NFAN; k++) {
			if (fan_once(k, fanout.n, run) < 0) {
				fan_fail();
				goto out;
			}
			fanout.nruns[k]++;
		}
	for (int k = 0; k < NFAN; k++) {
		for (int i = 0; i < fan_consumers[k]; i++)
			spread(fanout.rps[k][i], fanout.nruns[k], &fanout.med_rps[k][i], &fanout.lo_rps[k][i],
			       &fanout.hi_rps[k][i]);
		spread(busy_run[k], fanout.nruns[k], &fanout.busy[k], &fanout.busy_lo[k], &fanout.busy_hi[k]);
	}
	for (int k = 0; k < NFAN; k++)
		ceiling_spread(bound_run[k], fanout.nruns[k], fanout.med_rps[0][0], &fanout.ceiling[k],
		               &fanout.ceiling_lo[k], &fanout.ceiling_hi[k]);
	for (int k = 0; k < NFAN; k++) {
		char line[256];
		int len = snprintf(line, sizeof(line), "fan-out, %d consumer%s:", fan_consumers[k],
		                   fan_consumers[k] > 1 ? "s" : "");
		for (int i = 0; i < fan_consumers[k] && len > 0 && (size_t)len < sizeof(line); i++)
			len += snprintf(line + len, sizeof(line) - (size_t)len, " %.0f (%.2fx)", fanout.med_rps[k][i],
			                fanout_ratio(k, i));
		note("%s records/s; %.2f of %d CPUs busy; the machine allows ~%.2fx", line, fanout.busy[k],
		     fanout.ncpus, fanout.ceiling[k]);
	}
out:
	load_section_end("fan-out", &m);
}

double fanout_ratio(int k, int c)
{
	if (!fanout.ran || fanout.failed || !fanout.nruns[k] || !fanout.nruns[0] || fanout.med_rps[0][0] <= 0 ||
	    c >= fan_consumers[k])
		return 0;
	return fanout.med_rps[k][c] / fanout.med_rps[0][0];
}

int fanout_ratio_rounds(int k, int c, double *med, double *lo, double *hi)
{
	*med = *lo = *hi = 0;
	if (!fanout.ran || fanout.failed || c >= fan_consumers[k])
		return 0;
	return ratio_spread(fanout.rps[k][c], fanout.nruns[k], fanout.rps[0][0], fanout.nruns[0], med, lo, hi);
}

double fanout_min_ratio(int k)
{
	double lo = 0;
	for (int i = 0; i < fan_consumers[k]; i++) {
		double r = fanout_ratio(k, i);
		if (i == 0 || r < lo)
			lo = r;
	}
	return lo;
}
