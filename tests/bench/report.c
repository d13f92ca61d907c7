/* SPDX-License-Identifier: MIT */
/*
 * report.c -- what a run prints: the targets judged from the measurements,
 * grouped by topic, the text tables (throughput, the ratio tables, the
 * format-3 peer, latency, the parser and formatter alone, end to end, the
 * full backlog, space, the corpus end to end, durability, fan-out, idle,
 * interference, targets) and the same as JSON (--json).
 */
#include <inttypes.h>
#include <stdarg.h>

#include "bench.h"

const char *size_label(uint32_t s)
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

/* "0.250 s [0.240-0.270]": a job's median time over the rounds, their range. */
static void fmt_secs(char *out, size_t len, const struct e2e_result *r)
{
	double lo, hi;

	spread(r->secs, r->nruns, NULL, &lo, &hi);
	snprintf(out, len, "%.3f s [%.3f-%.3f]", r->med_secs, lo, hi);
}

/* The CPU time of each of a job's two processes: median [range] of the rounds. */
static void fmt_cpu(char *out, size_t len, const struct e2e_result *r)
{
	double lo[2], hi[2];

	for (int i = 0; i < 2; i++)
		spread(r->cpu[i], r->nruns, NULL, &lo[i], &hi[i]);
	snprintf(out, len, "CPU s %.3f [%.3f-%.3f] / %.3f [%.3f-%.3f]", r->med_cpu[0], lo[0], hi[0],
	         r->med_cpu[1], lo[1], hi[1]);
}

/* "12.3x [11.0-13.5]": the median of the rounds' ratios and their range;
 * "-" if not measured. */
static void fmt_ratio(char *out, size_t len, double med, double lo, double hi)
{
	if (med > 0)
		snprintf(out, len, "%.2fx [%.2f-%.2f]", med, lo, hi);
	else
		snprintf(out, len, "-");
}

/* What a target is about; the report lists them in this order. */
enum topic { TOPIC_THROUGHPUT, TOPIC_E2E, TOPIC_LATENCY, TOPIC_FANOUT, TOPIC_NATS, TOPIC_SPACE,
	TOPIC_DURABILITY, TOPIC_IDLE, NTOPICS };
static const char *const topic_name[NTOPICS] = {
	"throughput", "end to end", "latency", "fan-out", "NATS", "space", "durability", "idle",
};

struct target {
	enum topic topic;
	char what[112];
	char value[96];
	int met; /* 1 met, 0 not met, -1 not measured */
};
static struct target targets[64];
static int ntargets;
static enum topic cur_topic; /* the topic of the targets added next */

static void add_target(int met, const char *value, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_target(int met, const char *value, const char *fmt, ...)
{
	va_list ap;
	struct target *t;

	if (ntargets == (int)(sizeof(targets) / sizeof(targets[0])))
		return;
	t = &targets[ntargets++];
	t->topic = cur_topic;
	va_start(ap, fmt);
	vsnprintf(t->what, sizeof(t->what), fmt, ap);
	va_end(ap);
	snprintf(t->value, sizeof(t->value), "%s", value);
	t->met = met;
}

/* The idle target of r: every daemon used no CPU tick over --idle-seconds. */
static void idle_target(const struct idle_result *r, const char *what)
{
	char v[64];
	long ticks = 0;
	double pct = 0;

	if (!r->ran || r->failed) {
		add_target(-1, "not measured", "%s: 0%% CPU over %.0f s", what, opt.idle_seconds);
		return;
	}
	for (int i = 0; i < r->nprocs; i++) {
		ticks += r->ticks[i];
		pct += r->cpu_pct[i];
	}
	if (r->nprocs == 2)
		snprintf(v, sizeof(v), "%ld + %ld ticks, %.4f%% + %.4f%% CPU", r->ticks[0], r->ticks[1],
		         r->cpu_pct[0], r->cpu_pct[1]);
	else
		snprintf(v, sizeof(v), "%ld ticks, %.4f%% CPU in all", ticks, pct);
	add_target(ticks == 0, v, "%s: 0%% CPU over %.0f s", what, opt.idle_seconds);
}

static void throughput_targets(void)
{
	static const double pipe_goal[NSIZES] = {50, 50, 8, 3.5};
	char v[96];

	cur_topic = TOPIC_THROUGHPUT;
	for (int si = 0; si < NSIZES; si++) {
		double r = ratio_of(T_MMAPQ, T_PIPE, si);
		snprintf(v, sizeof(v), "%.1fx", r);
		add_target(r > 0 ? r >= pipe_goal[si] : -1, r > 0 ? v : "not measured",
		           "throughput %s: mmapq (%u/batch) >= %.1fx pipe", size_label(sizes[si]),
		           ring_batch(ring_cap(sizes[si]), opt.batch), pipe_goal[si]);
	}
	for (int si = 0; si < NSIZES; si++) {
		double r = ratio_of(T_MMAPQ, T_SPSC, si);
		snprintf(v, sizeof(v), "%.2fx", r);
		add_target(r > 0 ? r >= 0.8 : -1, r > 0 ? v : "not measured",
		           "throughput %s: mmapq (%u/batch) >= 0.8x lock-free SPSC ring", size_label(sizes[si]),
		           ring_batch(ring_cap(sizes[si]), opt.batch));
	}
	for (int si = 0; si < NSIZES; si++) {
		double r = ratio_of(T_MMAPQ_BIG, T_SPSC, si);
		uint32_t cap = ring_cap(sizes[si]);
		if (ring_batch(cap, opt.big_batch) == ring_batch(cap, opt.batch))
			continue; /* the ring is too small for a bigger batch: the same row */
		snprintf(v, sizeof(v), "%.2fx", r);
		add_target(r > 0 ? r >= 0.8 : -1, r > 0 ? v : "not measured",
		           "throughput %s: mmapq (%u/batch) >= 0.8x lock-free SPSC ring", size_label(sizes[si]),
		           ring_batch(cap, opt.big_batch));
	}
	for (int k = 0; k < 2; k++) {
		int si = k ? 3 : 1;
		double goal = k ? 3 : 10;
		int pk = strongest_peer(si, true);
		double r = pk >= 0 ? ratio_of(T_MMAPQ, (enum transport_row)pk, si) : 0;
		snprintf(v, sizeof(v), "%.2fx (%s)", r, pk >= 0 ? tdefs[pk].key : "-");
		add_target(r > 0 ? r >= goal : -1, r > 0 ? v : "not measured", "throughput %s: mmapq (%u/batch)"
		           " >= %.0fx the stdio-buffered pipe", size_label(sizes[si]),
		           ring_batch(ring_cap(sizes[si]), opt.batch), goal);
	}
	if (!format3.ran)
		return;
	if (!format3.measured || format3.failed) {
		add_target(-1, format3.failed ? "FAILED" : "not measured", "throughput: the library no slower"
		           " than on format 3 (within noise)");
		return;
	}
	for (int k = 0; k < format3.nrows; k++) {
		const struct f3_row *w = &format3.rows[k];
		snprintf(v, sizeof(v), "%.3fx [%.3f-%.3f], slower in %d of %d rounds%s", w->med_ratio,
		         w->lo_ratio, w->hi_ratio, w->slower, w->nruns,
		         format3.sign_k ? "" : " (too few for a verdict)");
		/* fewer rounds than a sign test needs decide nothing */
		add_target(format3.sign_k ? w->verdict >= 0 : -1, v,
		           "throughput %s: format 4 no slower than format 3 (sign test)", f3_row_label(w));
	}
}

static void e2e_targets(void)
{
	char v[96];

	cur_topic = TOPIC_E2E;
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
	{
		/* the daemons against cat | cat of the same bytes, seq input to a file */
		const struct e2e_result *d = &e2e[IN_SEQ][J_DAEMONS][OUT_FILE_], *c = &e2e[IN_SEQ][J_CAT][OUT_FILE_];
		double r = e2e_speedup(IN_SEQ, J_DAEMONS, J_CAT, OUT_FILE_);
		if (r > 0) {
			snprintf(v, sizeof(v), "%.3f s vs %.3f s (%.2fx)", d->med_secs, c->med_secs, r);
			add_target(r >= 1, v, "end to end, seq input, output file: daemons as shipped >= 1x"
			           " cat | cat");
		} else {
			add_target(-1, "not measured", "end to end, seq input, output file: daemons as shipped"
			           " >= 1x cat | cat");
		}
	}
	if (backlog.ran && !backlog.failed) {
		long d = backlog.use[1].rss_kib - backlog.use[0].rss_kib;
		snprintf(v, sizeof(v), "%ld KiB / %ld KiB (%+ld KiB)", backlog.use[1].rss_kib,
		         backlog.use[0].rss_kib, d);
		add_target(d <= 16 * 1024, v, "peak RSS with a full %" PRIu64 "-record backlog: consumer <="
		           " producer + 16 MiB", opt.backlog_records);
	} else {
		add_target(-1, "not measured", "peak RSS with a full %" PRIu64 "-record backlog: consumer <="
		           " producer + 16 MiB", opt.backlog_records);
	}
}

static void latency_targets(void)
{
	char v[96];

	cur_topic = TOPIC_LATENCY;
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
		snprintf(v, sizeof(v), "%.2f us (spin_us = %" PRIu32 ")", lat[L_MMAPQ_SPIN].med_p50 / 1e3, opt.spin_us);
		add_target(lat[L_MMAPQ_SPIN].med_p50 < 1000, v, "latency p50 with spin_us: mmapq < 1 us");
	} else {
		add_target(-1, "not measured", "latency p50 with spin_us: mmapq < 1 us");
	}
}

/* lines to a file: cat | cat's time / the daemons', the median of the rounds' ratios */
static void lines_targets(void)
{
	char v[96];

	cur_topic = TOPIC_E2E;
	for (int in = 0; in < NLINPUTS && opt.e2e_lines; in++) {
		const struct e2e_result *d = &lines_e2e[in][CJ_DAEMONS], *c = &lines_e2e[in][CJ_CAT];
		double med, lo, hi;
		secs_ratio(c, d, &med, &lo, &hi);
		snprintf(v, sizeof(v), "%.2fx [%.2f-%.2f] (%.3f s vs %.3f s)", med, lo, hi, d->med_secs, c->med_secs);
		add_target(med > 0 ? med >= 1.3 : -1, med > 0 ? v : d->failed || c->failed ? "FAILED" : "not measured",
		           "lines %s to a file: daemons >= 1.3x cat | cat (rounds' median)",
		           in == LI_64 ? "64 B" : "1 KiB");
	}
}

static void fanout_targets(void)
{
	char v[96];

	cur_topic = TOPIC_FANOUT;
	for (int k = 1; k < NFAN; k++) {
		double r = fanout_min_ratio(k);
		if (r > 0) {
			snprintf(v, sizeof(v), "%.2fx (the slowest; %d CPUs allow %.2fx)", r, fanout.ncpus,
			         fanout.ceiling[k]);
			add_target(r >= 0.7, v, "throughput 64 B: each of %d consumers >= 0.7x a single consumer",
			           fan_consumers[k]);
		} else {
			add_target(-1, "not measured", "throughput 64 B: each of %d consumers >= 0.7x a single"
			           " consumer", fan_consumers[k]);
		}
	}
}

static void space_durability_targets(void)
{
	char v[96];

	cur_topic = TOPIC_SPACE;
	for (int k = 0; k < NCORPUS && opt.space; k++) {
		const struct space_result *s = &space[k];
		double r = space_ratio(s, false);
		snprintf(v, sizeof(v), "%.1fx (%" PRIu64 " vs %" PRIu64 " ring bytes)", r, s->ring3, s->size4);
		add_target(r > 0 ? r > 1 : -1, r > 0 ? v : s->failed ? "FAILED" : "not measured",
		           "space, %s: format 4 needs less queue than format 3", corpus_label[k]);
	}
	if (opt.corpus) {
		double r = corpus_speedup(CJ_LINES);

		cur_topic = TOPIC_E2E;
		snprintf(v, sizeof(v), "%.2fx", r);
		add_target(r > 0 ? r >= 1 : -1, r > 0 ? v : "not measured", "end to end, %s: daemons >= 1x"
		           " the line pipe job", corpus_label[CORPUS_ALL]);
	}
	cur_topic = TOPIC_DURABILITY;
	for (int in = 0; in < NDINPUTS && opt.durability; in++) {
		double r = dur_ratio(in, DM_BATCH);
		snprintf(v, sizeof(v), "%.2fx [%.2f-%.2f] (%.0f vs %.0f records/s)", r, dur[in][DM_BATCH].lo_ratio,
		         dur[in][DM_BATCH].hi_ratio, dur[in][DM_BATCH].med_rps, dur[in][DM_NEVER].med_rps);
		add_target(r > 0 ? r >= 0.5 : -1, r > 0 ? v : "not measured", "end to end, %s to a file: sync ="
		           " batch >= 0.5x sync = never", in == DIN_LINES ? "64 B lines" : "integers");
	}
}

void eval_targets(void)
{
	throughput_targets();
	e2e_targets();
	lines_targets();
	latency_targets();
	fanout_targets();
	cur_topic = TOPIC_NATS;
	add_target(-1, "measured by mmapq_bench_nats", "NATS: mmapq-consumer --output nats >= 0.8x a bare libnats publisher");
	space_durability_targets();
	cur_topic = TOPIC_IDLE;
	idle_target(&idle, "idle pair");
	idle_target(&fanout_idle, "idle, producer + " FANOUT_MAX_S " named consumers");
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
	if (opt.nice_set)
		fprintf(f, "priority: nice %d (benchmark, children and daemons)\n", opt.nice);
	fprintf(f, "%s\n", page_reporting_note);
	if (cpu_b >= 0)
		fprintf(f, "pinning: producer side on CPU %d, consumer side on CPU %d\n", cpu_a, cpu_b);
	else
		fprintf(f, "pinning: NONE (only one CPU available): both processes share it\n");
}

static void print_idle(const char *title, const struct idle_result *r)
{
	printf("\n%s, %.1f s\n", title, opt.idle_seconds);
	if (r->failed) {
		printf("FAILED: %s\n", r->why);
		return;
	}
	for (int i = 0; i < r->nprocs; i++)
		printf("%-18s utime+stime %ld ticks, run time %.3f ms (%.4f%% CPU), %" PRIu64 " wake-ups\n",
		       idle_proc_label(r, i), r->ticks[i], r->run_ns[i] == UINT64_MAX ? -1.0 :
		       (double)r->run_ns[i] / 1e6, r->cpu_pct[i], r->wakeups[i]);
}

static void print_fanout(void)
{
	char b[64];

	printf("\nFan-out: one producer, 1, 2 and 4 named consumers on one queue, %u B records, %u/batch,\n"
	       "a ring of %" PRIu64 " KiB (%u records); every consumer checks every record; records/s of\n"
	       "each consumer, and / the single consumer's of the same round; median of %d rounds\n"
	       "[lowest-highest]\n", fanout.size, fanout.batch, fanout.ring_bytes / 1024, fanout.cap,
	       fanout.nruns[0]);
	if (fanout.failed) {
		printf("FAILED: %s\n", fanout.why);
		return;
	}
	printf("%-10s %-9s %-24s %-20s %-22s %-20s %s\n", "consumers", "consumer", "records/s", "x single",
	       "CPUs busy", "allows", "CPUs: producer, consumers");
	for (int k = 0; k < NFAN; k++) {
		char cpus[48] = "", busy[48], allows[48];
		int cl = 0;
		for (int i = 0; i <= fan_consumers[k] && (size_t)cl < sizeof(cpus); i++)
			cl += snprintf(cpus + cl, sizeof(cpus) - (size_t)cl, i ? ",%d" : "%d", fanout.cpu[k][i]);
		snprintf(busy, sizeof(busy), "%.2f [%.2f-%.2f] of %d", fanout.busy[k], fanout.busy_lo[k],
		         fanout.busy_hi[k], fanout.ncpus);
		fmt_ratio(allows, sizeof(allows), fanout.ceiling[k], fanout.ceiling_lo[k], fanout.ceiling_hi[k]);
		for (int i = 0; i < fan_consumers[k]; i++) {
			char rate[160], lo[32], hi[32], x[48], name[16];
			double med, rlo, rhi;
			fmt_rate(b, sizeof(b), fanout.med_rps[k][i]);
			fmt_rate(lo, sizeof(lo), fanout.lo_rps[k][i]);
			fmt_rate(hi, sizeof(hi), fanout.hi_rps[k][i]);
			snprintf(rate, sizeof(rate), "%s [%s-%s]", b, lo, hi);
			fanout_ratio_rounds(k, i, &med, &rlo, &rhi);
			fmt_ratio(x, sizeof(x), med, rlo, rhi);
			snprintf(name, sizeof(name), "fo%d", i);
			if (i == 0)
				printf("%-10d %-9s %-24s %-20s %-22s %-20s %s\n", fan_consumers[k], name, rate, x, busy,
				       allows, cpus);
			else
				printf("%-10s %-9s %-24s %s\n", "", name, rate, x);
		}
	}
	printf("x single: round by round (the targets divide the median records/s); CPUs busy: the\n"
	       "CPU time of all of them / the slowest consumer's time; allows: the most\n"
	       "%d CPUs allow at the CPU time per record measured in that case (no process faster than\n"
	       "one CPU, those on one CPU not faster than it, all not faster than %d), / the single\n"
	       "consumer's rate; a ratio near it: bound by the CPUs.  CPU -1: unpinned\n",
	       fanout.ncpus, fanout.ncpus);
}

static void print_fanin(void)
{
	printf("\nFan-in: 1, 2 and 4 writers into one queue, one reader checking every record (each\n"
	       "writer's in its order), %u B records, %u/batch; mmapq: a ring of %" PRIu64 " KiB (%u records),\n"
	       "producers p0..p3; POSIX mq: %ld deep; socket: the writers connected to one mmapq-producer\n"
	       "(format binary, the same ring), a library consumer reading its queue.  Total records/s;\n"
	       "x single: / the same transport's single writer, mmapq x: mmapq's / this one's with as many\n"
	       "writers, both of the same round; median of %d rounds [lowest-highest]\n", fanin.size,
	       fanin.batch, fanin.ring_bytes / 1024, fanin.cap, fanin.mq_depth, fanin.nruns[0][0]);
	if (fanin.failed) {
		printf("FAILED: %s\n", fanin.why);
		return;
	}
	printf("%-32s %-8s %-26s %-20s %-20s %-22s %s\n", "transport", "writers", "records/s", "x single",
	       "mmapq x", "CPUs busy", "allows");
	for (int t = 0; t < NFI_T; t++)
		for (int k = 0; k < NFANIN; k++) {
			char b[32], lo[32], hi[32], rate[100], x[48], over[48] = "", busy[48], allows[48];
			double med, rlo, rhi;
			fmt_rate(b, sizeof(b), fanin.med_rps[t][k]);
			fmt_rate(lo, sizeof(lo), fanin.lo_rps[t][k]);
			fmt_rate(hi, sizeof(hi), fanin.hi_rps[t][k]);
			snprintf(rate, sizeof(rate), "%s [%s-%s]", b, lo, hi);
			fanin_ratio(t, k, &med, &rlo, &rhi);
			fmt_ratio(x, sizeof(x), med, rlo, rhi);
			if (t != FI_MMAPQ) {
				fanin_over(t, k, &med, &rlo, &rhi);
				fmt_ratio(over, sizeof(over), med, rlo, rhi);
			}
			snprintf(busy, sizeof(busy), "%.2f [%.2f-%.2f] of %d", fanin.busy[t][k], fanin.busy_lo[t][k],
			         fanin.busy_hi[t][k], fanin.ncpus);
			fmt_ratio(allows, sizeof(allows), fanin.ceiling[t][k], fanin.ceiling_lo[t][k],
			          fanin.ceiling_hi[t][k]);
			printf("%-32s %-8d %-26s %-20s %-20s %-22s %s\n", k ? "" : fanin_label[t], fanin_writers[k], rate,
			       x, over, busy, allows);
		}
	printf("CPUs busy: the CPU time of all of them (the daemon's too) / the run's time; allows: the\n"
	       "most %d CPUs allow at the CPU time per record measured in that case (no process faster\n"
	       "than one CPU, those on one CPU not faster than it, all not faster than %d), / the same\n"
	       "transport's single writer's rate; a ratio near it: bound by the CPUs.  CPUs: the reader\n"
	       "on the first, writer i on the (i+1)-th, round robin; the daemon unpinned\n",
	       fanin.ncpus, fanin.ncpus);
}

static void print_format3(void)
{
	printf("\nFormat 3: the throughput job on libmmapq 1 (file format 3, fixed slots) built from %s,\n"
	       "against this libmmapq (format 4), taking turns; records/s, median of %d rounds [lowest-highest];\n"
	       "format 4 / format 3 round by round\n", format3.measured ? format3.rev : "git history",
	       format3.rows[0].nruns);
	if (!format3.measured || format3.failed) {
		printf("%s: %s\n", format3.failed ? "FAILED" : "not measured", format3.why);
		return;
	}
	printf("%-24s %-30s %-30s %-28s %s\n", "records", "format 4", "format 3", "4 / 3", "verdict");
	for (int k = 0; k < format3.nrows; k++) {
		const struct f3_row *w = &format3.rows[k];
		char c[2][64], r[64], lo[32], hi[32];
		for (int sd = 0; sd < 2; sd++) {
			fmt_rate(c[sd], sizeof(c[sd]), w->med[sd]);
			fmt_rate(lo, sizeof(lo), w->lo[sd]);
			fmt_rate(hi, sizeof(hi), w->hi[sd]);
			snprintf(c[sd] + strlen(c[sd]), sizeof(c[sd]) - strlen(c[sd]), " [%s-%s]", lo, hi);
		}
		snprintf(r, sizeof(r), "%.3fx [%.3f-%.3f]", w->med_ratio, w->lo_ratio, w->hi_ratio);
		printf("%-24s %-30s %-30s %-28s %s\n", f3_row_label(w), c[0], c[1], r,
		       w->verdict < 0 ? "slower" : w->verdict > 0 ? "faster" : "within noise");
	}
	printf("verdict: slower (faster) only if format 4 lost (won) in at least %d of %d rounds (sign\n"
	       "test, 5%%); both libraries compiled with %s\n", format3.sign_k, format3.rows[0].nruns,
	       format3.cflags);
}

static void print_space(void)
{
	printf("\nSpace: the queue each format needs to hold a whole corpus (format 4 measured, format 3\n"
	       "computed from its layout), max_record / record_size its longest line\n");
	for (int k = 0; k < NCORPUS; k++) {
		const struct space_result *s = &space[k];
		const struct corpus *c = &corpus[k];
		printf("%s: ", corpus_label[k]);
		if (!s->measured) {
			printf("%s: %s\n", s->failed ? "FAILED" : "not measured", s->why);
			continue;
		}
		printf("%" PRIu64 " files, %" PRIu64 " lines, %" PRIu64 " bytes, longest %" PRIu64 " (left out: %"
		       PRIu64 " over max_record %" PRIu32 ", %" PRIu64 " with a NUL; %" PRIu64 " CRs dropped)\n",
		       c->files, c->lines, c->bytes, c->longest, c->long_dropped, c->max_record, c->nul_dropped, c->cr);
		printf("  format 4: frames %" PRIu64 " bytes; ring %" PRIu64 " bytes (it held them: %" PRIu64
		       " used), file %" PRIu64 "\n", c->frames, s->size4, s->used4, s->file4);
		printf("  format 3: %" PRIu64 " slots of %" PRIu64 " bytes (record_size %" PRIu32 "): ring %" PRIu64
		       " bytes, file %" PRIu64 "%s\n", s->capacity3, s->slot3, s->record_size3, s->ring3, s->file3,
		       s->fits3 ? "" : " (beyond format 3's limits: it could not hold it at all)");
		printf("  format 3 / format 4: %.1fx the ring; %.1fx without the powers of two (lines x slot /"
		       " frames)\n", space_ratio(s, false), space_ratio(s, true));
	}
}

/* The line jobs of one input (the corpus, a generated one): each job's
 * time and the CPU time of its two processes, median [range]; each peer's
 * time / the daemons', round by round. */
static void print_line_jobs(const struct e2e_result res[NCJOBS])
{
	char t[64], cpu[96], x[64];

	for (int j = 0; j < NCJOBS; j++) {
		const struct e2e_result *r = &res[j];
		if (r->failed || !r->nruns) {
			printf("  %-48s %s: %s\n", corpus_job_label((enum corpus_job)j), r->failed ? "FAILED" :
			       "not measured", r->why);
			continue;
		}
		fmt_secs(t, sizeof(t), r);
		fmt_cpu(cpu, sizeof(cpu), r);
		printf("  %-48s %-24s %s\n", corpus_job_label((enum corpus_job)j), t, cpu);
	}
	for (int j = CJ_LINES; j < NCJOBS; j++) {
		double med, lo, hi;
		secs_ratio(&res[j], &res[CJ_DAEMONS], &med, &lo, &hi);
		fmt_ratio(x, sizeof(x), med, lo, hi);
		if (med > 0)
			printf("  %s's time / the daemons': %s\n", j == CJ_LINES ? "the line pipe job" : "cat | cat", x);
	}
}

static void print_corpus_e2e(void)
{
	const struct corpus *c = &corpus[CORPUS_ALL];

	printf("\nEnd to end, %s (%" PRIu64 " lines, %" PRIu64 " bytes),\nto a file, outputs compared"
	       " with the corpus byte for byte; median of %d rounds [lowest-highest],\nthe jobs taking turns;"
	       " CPU s: producer / consumer (line reader / writer, cat / cat); a peer's\ntime / the daemons':"
	       " round by round (the target divides the median times)\n", corpus_label[CORPUS_ALL], c->lines,
	       c->bytes, opt.runs);
	print_line_jobs(corpus_e2e);
}

static void print_lines_e2e(void)
{
	printf("\nLines end to end: generated lines, each distinct, from a file to a file, every output\n"
	       "compared with its input byte for byte; the daemons format line, size %" PRIu64 " KiB and\n"
	       "max_record %" PRIu32 " (as shipped), sync never; each process pinned as the daemons are;\n"
	       "median of %d rounds [lowest-highest], the jobs taking turns; CPU s: producer / consumer\n"
	       "(line reader / writer, cat / cat); a peer's time / the daemons': round by round\n",
	       shipped_size / 1024, line_input[0].max_record, opt.runs);
	for (int in = 0; in < NLINPUTS; in++) {
		const struct corpus *c = &line_input[in];
		printf("%" PRIu64 " lines of %u bytes (%" PRIu64 " bytes)\n", c->lines, line_len[in], c->bytes);
		print_line_jobs(lines_e2e[in]);
	}
}

/* A peer's row: its time, records/s, and its time over the daemons'. */
static void print_peer(int in, int p)
{
	const struct peer_result *r = &peers[in][p];
	char a[32], lo[32], hi[32];

	if (r->failed || !r->nruns) {
		printf("  %-18s %s: %s\n", peer_label(p), r->failed ? "FAILED" : "not measured", r->why);
		return;
	}
	fmt_rate(a, sizeof(a), r->med_rps);
	fmt_rate(lo, sizeof(lo), r->lo_rps);
	fmt_rate(hi, sizeof(hi), r->hi_rps);
	printf("  %-18s %8.3f s  %8s [%s-%s]", peer_label(p), r->med_secs, a, lo, hi);
	for (int b = 0; b < NPEER_BASES; b++)
		if (r->over[b][0] > 0)
			printf("%s%.1fx %s's time [%.1f-%.1f]", b ? ", " : "  ", r->over[b][0],
			       dur_mode_key[peer_base[b]], r->over[b][1], r->over[b][2]);
	if (p == P_MQ && r->depth > 0)
		printf(" (%ld deep)", r->depth);
	printf("\n");
}

static void print_durability(void)
{
	printf("\nDurability: the daemons end to end to a file with each sync mode; records/s, median of %d\n"
	       "rounds [lowest-highest], and / sync = never's round by round; sync = always carries 1/%" PRIu64
	       " of\nthe input; disk: the frames and output bytes of the whole input written and fdatasync'ed\n",
	       opt.runs, opt.dur_always_div);
	for (int in = 0; in < NDINPUTS; in++) {
		printf("%s: %" PRIu64 " records, %" PRIu64 " bytes (durable bytes %" PRIu64 ")\n", in == DIN_LINES ?
		       "64 B lines, format line" : "integers, format int", dur_input[in][0].records,
		       dur_input[in][0].bytes, dur_bytes[in]);
		for (int mode = 0; mode < NDMODES; mode++) {
			const struct dur_result *r = &dur[in][mode];
			char a[32], lo[32], hi[32];
			if (r->failed || !r->nruns) {
				printf("  %-18s %s: %s\n", dur_row_label(mode), r->failed ? "FAILED" : "not measured", r->why);
				continue;
			}
			fmt_rate(a, sizeof(a), r->med_rps);
			fmt_rate(lo, sizeof(lo), r->lo_rps);
			fmt_rate(hi, sizeof(hi), r->hi_rps);
			printf("  %-18s %8.3f s  %8s [%s-%s]  %.2fx never [%.2f-%.2f]\n", dur_row_label(mode),
			       r->med_secs, a, lo, hi, r->med_ratio, r->lo_ratio, r->hi_ratio);
		}
		for (int p = 0; p < NPEERS && opt.peers; p++)
			print_peer(in, p);
	}
	if (opt.peers)
		printf("peers (POSIX mq, Redis, JetStream): a producer process parsing the input and sending\n"
		       "each record, a consumer process writing them to a file (checked against the input);\n"
		       "their time over the daemons' of the same round, sync = never (the durable peers also\n"
		       "batch and interval): Nx the time is N times slower; batches of %d (Redis: pipelined\n"
		       "XADD, XREADGROUP COUNT and one XACK a batch; JetStream: async publish, %d in flight,\n"
		       "pull fetch, ack all)\n", PEER_BATCH, PEER_WINDOW);
	if (disk.nruns) {
		double lo, hi;
		spread(disk.sync_s, disk.nruns, NULL, &lo, &hi);
		printf("one 4 KiB write + fdatasync: %.3f ms [%.3f-%.3f] (median of %d rounds)\n",
		       disk.med_sync_s * 1e3, lo * 1e3, hi * 1e3, disk.nruns);
	}
}

static void tput_row_label(char *label, size_t len, int t)
{
	if (t == T_MQ)
		snprintf(label, len, "POSIX mq (deepest, see below)");
	else if (t == T_MMAPQ || t == T_MMAPQ_BIG || t == T_SPSC)
		snprintf(label, len, "%s, %u/batch", t == T_MMAPQ_BIG ? "mmapq (library)" : tdefs[t].label,
		         t == T_SPSC ? opt.spsc_batch : t == T_MMAPQ_BIG ? opt.big_batch : opt.batch);
	else
		snprintf(label, len, "%s", tdefs[t].label);
}

static void print_throughput(void)
{
	char b[64];

	/* the medians, then the lowest and highest of the same runs */
	for (int range = 0; range < 2; range++) {
		if (range)
			printf("\nThroughput, the lowest-highest of the %d runs of each cell, records/s\n", opt.runs);
		else
			printf("\nThroughput, records/s (payload MB/s), median of %d runs; every record verified\n",
			       opt.runs);
		printf("%-34s", "transport");
		for (int si = 0; si < NSIZES; si++)
			printf(" %20s", size_label(sizes[si]));
		printf("\n");
		for (int t = 0; t < NTRANSPORTS; t++) {
			char label[64];
			if (!(opt.only_mask & (1u << t)))
				continue;
			tput_row_label(label, sizeof(label), t);
			printf("%-34s", label);
			for (int si = 0; si < NSIZES; si++) {
				const struct tput_result *r = &tput[t][si];
				char cellb[128], lo[32], hi[32];
				if (!(opt.size_mask & (1u << si))) {
					snprintf(cellb, sizeof(cellb), "-");
				} else if (r->failed) {
					snprintf(cellb, sizeof(cellb), "FAILED");
				} else if (!r->ran || r->nruns == 0) {
					snprintf(cellb, sizeof(cellb), "%s", t == T_MQ ? "not possible" : "-");
				} else if (range) {
					fmt_rate(lo, sizeof(lo), r->lo_rps);
					fmt_rate(hi, sizeof(hi), r->hi_rps);
					snprintf(cellb, sizeof(cellb), "%s-%s", lo, hi);
				} else {
					fmt_rate(b, sizeof(b), r->med_rps);
					snprintf(cellb, sizeof(cellb), "%s (%.0f)", b, r->med_rps * sizes[si] / 1e6);
				}
				printf(" %20s", cellb);
			}
			printf("\n");
		}
	}
	printf("\nmmapq (%u/batch) / peer (throughput ratio): each round's mmapq run / the peer's run of\n"
	       "the same round, median of the rounds [lowest-highest] (the targets divide the medians)\n",
	       opt.batch);
	printf("%-34s", "peer");
	for (int si = 0; si < NSIZES; si++)
		printf(" %26s", size_label(sizes[si]));
	printf("\n");
	for (int t = 0; t < NTRANSPORTS + 2; t++) {
		/* the last two lines: the big-batch row against the ring and the pipe */
		enum transport_row mine = t < NTRANSPORTS ? T_MMAPQ : T_MMAPQ_BIG;
		enum transport_row peer = t < NTRANSPORTS ? (enum transport_row)t : t == NTRANSPORTS ? T_SPSC : T_PIPE;
		char label[64];
		if (peer == T_MMAPQ || peer == T_MMAPQ_BIG || !(opt.only_mask & (1u << peer)) ||
		    !(opt.only_mask & (1u << mine)))
			continue;
		if (mine == T_MMAPQ_BIG)
			snprintf(label, sizeof(label), "(%u/batch) / %s", opt.big_batch, tdefs[peer].label);
		else
			snprintf(label, sizeof(label), "%s", tdefs[peer].label);
		printf("%-34s", label);
		for (int si = 0; si < NSIZES; si++) {
			double med, lo, hi;
			ratio_rounds(mine, peer, si, &med, &lo, &hi);
			fmt_ratio(b, sizeof(b), med, lo, hi);
			printf(" %26s", b);
		}
		printf("\n");
	}
	for (int m = 0; m < 2; m++) {
		enum transport_row mine = m ? T_MMAPQ_BIG : T_MMAPQ;
		char label[64];
		if (!(opt.only_mask & (1u << mine)))
			continue;
		snprintf(label, sizeof(label), "%sstrongest peer", m ? "(1024/batch) / " : "");
		printf("%-34s", label);
		for (int si = 0; si < NSIZES; si++) {
			int pk = strongest_peer(si, false);
			double med = 0, lo = 0, hi = 0;
			if (pk >= 0)
				ratio_rounds(mine, (enum transport_row)pk, si, &med, &lo, &hi);
			fmt_ratio(b, sizeof(b), med, lo, hi);
			if (med > 0)
				snprintf(b + strlen(b), sizeof(b) - strlen(b), " %s", tdefs[pk].key);
			printf(" %26s", b);
		}
		printf("\n");
	}
	printf("strongest peer: the fastest of pipe, AF_UNIX, the stdio pipes, POSIX mq and ZeroMQ at"
	       " that size\n(the highest median)\nPOSIX mq depth:");
	for (int si = 0; si < NSIZES; si++)
		if (tput[T_MQ][si].nruns)
			printf(" %s: %ld", size_label(sizes[si]), tput[T_MQ][si].depth);
	printf(" (%s)\n", mq_limits_note[0] ? mq_limits_note : "limits as found");
	printf("rings: mmapq and textbook a ring of that many bytes, each record a frame (8 B header +\n"
	       "payload rounded up to 8); spsc slots of the same bytes, as many as a power of two\n"
	       "allows in it; a batch is at most a quarter of a ring:");
	for (int si = 0; si < NSIZES; si++) {
		uint32_t cap = ring_cap(sizes[si]);
		printf("%s %s: %" PRIu64 " KiB, %u/%u records, batches %u/%u/%u", si ? "," : "",
		       size_label(sizes[si]), ring_bytes(sizes[si]) / 1024, cap, pow2_floor(cap),
		       ring_batch(cap, opt.batch), ring_batch(cap, opt.big_batch),
		       ring_batch(pow2_floor(cap), opt.spsc_batch));
	}
	printf(" (records: mmapq/spsc; batches: mmapq/big/spsc)\n");
}

void print_tables(void)
{
	char b[64];

	printf("mmapq_bench%s: median of %d run%s per cell, ~%.2f s each\n", opt.quick ? " --quick" : "",
	       opt.runs, opt.runs > 1 ? "s" : "", opt.quick ? 0.0 : opt.seconds);
	print_machine(stdout);
	if (opt.tput)
		print_throughput();
	if (opt.lat) {
		printf("\nOne-way latency, 64 B records, ping-pong (round trip / 2): each run's p50 and p99 of\n"
		       "its round trips, the median of %d runs [lowest-highest]\n", opt.runs);
		printf("%-34s %-30s %-30s %s\n", "transport", "p50", "p99", "round trips a run");
		for (int k = 0; k < NLAT; k++) {
			const struct lat_result *r = &lat[k];
			char label[64];
			if (!r->ran)
				continue;
			if (k == L_MMAPQ_SPIN)
				snprintf(label, sizeof(label), "mmapq, spin_us = %" PRIu32, opt.spin_us);
			else
				snprintf(label, sizeof(label), "%s", ldefs[k].label);
			if (r->failed) {
				printf("%-34s FAILED\n", label);
			} else {
				char p50[64], p99[64];
				snprintf(p50, sizeof(p50), "%.2f us [%.2f-%.2f]", r->med_p50 / 1e3, r->lo_p50 / 1e3,
				         r->hi_p50 / 1e3);
				snprintf(p99, sizeof(p99), "%.2f us [%.2f-%.2f]", r->med_p99 / 1e3, r->lo_p99 / 1e3,
				         r->hi_p99 / 1e3);
				printf("%-34s %-30s %-30s %" PRIu64 "\n", label, p50, p99, r->iters);
			}
		}
	}
	if (opt.e2e && codec_ran) {
		printf("\nParser and formatter alone: one process, input in memory, 64 KiB chunks; ns per"
		       " integer,\nmedian of %d runs [lowest-highest]; old / new: run by run\n%-34s", opt.runs, "");
		for (int in = 0; in < NINPUTS; in++)
			printf(" %24s", in_key[in]);
		printf("\n");
		for (int k = 0; k < NCODEC; k++) {
			printf("%-34s", codec_label[k]);
			for (int in = 0; in < NINPUTS; in++) {
				const struct codec_result *c = &codec[in][k];
				snprintf(b, sizeof(b), "%.2f [%.2f-%.2f]", c->med_ns, c->lo_ns, c->hi_ns);
				printf(" %24s", b);
			}
			printf("\n");
		}
		printf("%-34s", "old parser / new parser");
		for (int in = 0; in < NINPUTS; in++) {
			double med, lo, hi;
			codec_speedup(in, &med, &lo, &hi);
			fmt_ratio(b, sizeof(b), med, lo, hi);
			printf(" %24s", b);
		}
		printf("\n");
	}
	if (opt.e2e) {
		printf("\nEnd to end: %" PRIu64 " integers from a file, two processes; median seconds,\n"
		       "median CPU time (user + system) and peak RSS (ru_maxrss) of each of the two\n"
		       "processes (producer / consumer, parser / printer; the pipe job's are forks of the\n"
		       "benchmark; a child's ru_maxrss starts from the benchmark's own RSS at the fork,\n"
		       "even across exec: at most %ld KiB here).\n"
		       "Daemons: as released (no fault points), %s, format int, sync never,\n"
		       "the queue file exists before the clock starts; every output file is compared with\n"
		       "the input byte for byte; median of %d rounds [lowest-highest], the jobs taking\n"
		       "turns in each round\n", opt.e2e_count, own_rss_kib, bin_dir, opt.runs);
		for (int in = 0; in < NINPUTS; in++) {
			printf("\ninput %s (%" PRIu64 " bytes)\n", in_label[in], input_bytes[in]);
			printf("%-52s %-4s %-24s %-18s %s\n", "job", "out", "time", "x pipe", "x old");
			for (int j = 0; j < NJOBS; j++)
				for (int out = 0; out < NOUTS; out++) {
					const struct e2e_result *r = &e2e[in][j][out];
					char t[64], xp[64], xo[64], cpu[96];
					double med, lo, hi;
					if (!r->ran)
						continue;
					if (r->failed || !r->nruns) {
						printf("%-52s %-4s FAILED: %s\n", job_label((enum e2e_job)j), out_key[out],
						       r->why);
						continue;
					}
					fmt_secs(t, sizeof(t), r);
					secs_ratio(&e2e[in][J_PIPE][out], r, &med, &lo, &hi);
					fmt_ratio(xp, sizeof(xp), med, lo, hi);
					secs_ratio(&e2e[in][J_PIPE_OLD][out], r, &med, &lo, &hi);
					fmt_ratio(xo, sizeof(xo), med, lo, hi);
					fmt_cpu(cpu, sizeof(cpu), r);
					printf("%-52s %-4s %-24s %-18s %s\n%-57s %s; peak RSS KiB %ld / %ld\n",
					       job_label((enum e2e_job)j), out_key[out], t, xp, xo, "", cpu, r->rss_kib[0],
					       r->rss_kib[1]);
				}
		}
		printf("x pipe, x old: the pipe job's time (new, old parser) / this job's time, round by\n"
		       "round: the median of the rounds' ratios [lowest-highest] (the targets divide the\n"
		       "median times); CPU s: producer / consumer (parser / printer)\n");
		printf("\nFull backlog: the producer alone fills a ring of %" PRIu64 " int records (%" PRIu64
		       " KiB) from a file, then the consumer alone drains them to a file\n",
		       opt.backlog_records, opt.backlog_records * 16 / 1024);
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
	if (opt.format3)
		print_format3();
	if (opt.space)
		print_space();
	if (opt.e2e_lines)
		print_lines_e2e();
	if (opt.corpus)
		print_corpus_e2e();
	if (opt.durability)
		print_durability();
	if (opt.fanout)
		print_fanout();
	if (opt.fanin)
		print_fanin();
	if (opt.idle)
		print_idle("Idle pair (real daemons, empty queue, producer on an open empty pipe)", &idle);
	if (opt.fanout)
		print_idle("Idle fan-out (real daemons, empty queue, producer on an open empty pipe, "
		           FANOUT_MAX_S " named consumers attached)", &fanout_idle);
	printf("\nInterference (CPU time of other processes, and steal, as a share of all CPUs)\n");
	for (int i = 0; i < nloads; i++)
		printf("  %-12s %7.1f s: other processes %5.1f%%, steal %5.1f%%%s\n", loads[i].name,
		       loads[i].wall_s, loads[i].others_pct, loads[i].steal_pct,
		       loads[i].others_pct > 5 || loads[i].steal_pct > 5 ? "  (disturbed)" : "");
	printf("\nTargets, by topic\n");
	for (int t = 0; t < NTOPICS; t++)
		for (int i = 0, first = 1; i < ntargets; i++) {
			if (targets[i].topic != (enum topic)t)
				continue;
			if (first)
				printf("  %s\n", topic_name[t]);
			first = 0;
			printf("    %-8s %-80s %s\n", targets[i].met > 0 ? "met" : targets[i].met == 0 ? "NOT MET" : "-",
			       targets[i].what, targets[i].value);
		}
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

static void json_idle(const char *key, const struct idle_result *r)
{
	if (!r->ran)
		return;
	printf("  \"%s\": {\"seconds\": %.1f, \"failed\": %s", key, r->seconds, r->failed ? "true" : "false");
	if (!r->failed)
		for (int i = 0; i < r->nprocs; i++)
			printf(", \"%s\": {\"ticks\": %ld, \"run_ns\": %" PRIu64 ", \"cpu_percent\": %.5f,"
			       " \"wakeups\": %" PRIu64 "}", i == 0 ? "producer" : r == &idle ? "consumer" :
			       idle_proc_label(r, i), r->ticks[i], r->run_ns[i] == UINT64_MAX ? 0 : r->run_ns[i],
			       r->cpu_pct[i], r->wakeups[i]);
	printf("},\n");
}

/* A job's seconds and CPU seconds, median and range, the runs' seconds,
 * the peak RSS: "seconds": ..., without the braces. */
static void json_job(const struct e2e_result *r)
{
	double lo, hi, clo[2], chi[2];

	spread(r->secs, r->nruns, NULL, &lo, &hi);
	for (int i = 0; i < 2; i++)
		spread(r->cpu[i], r->nruns, NULL, &clo[i], &chi[i]);
	printf("\"seconds\": %.4f, \"seconds_lo\": %.4f, \"seconds_hi\": %.4f, \"runs\": [", r->med_secs, lo, hi);
	for (int i = 0; i < r->nruns; i++)
		printf("%s%.4f", i ? ", " : "", r->secs[i]);
	printf("], \"cpu_s\": [%.4f, %.4f], \"cpu_s_lo\": [%.4f, %.4f], \"cpu_s_hi\": [%.4f, %.4f],"
	       " \"rss_kib\": [%ld, %ld]", r->med_cpu[0], r->med_cpu[1], clo[0], clo[1], chi[0], chi[1],
	       r->rss_kib[0], r->rss_kib[1]);
}

/* The line jobs of one input: each job, and each peer's time / the
 * daemons' (of the medians; round by round: median, lowest, highest). */
static void json_line_jobs(const struct e2e_result res[NCJOBS])
{
	static const char *const key[NCJOBS] = {"daemons", "line_pipe", "cat_cat"};
	static const char *const over[NCJOBS] = {NULL, "line_pipe", "cat"};

	for (int j = 0; j < NCJOBS; j++) {
		const struct e2e_result *r = &res[j];
		printf(", \"%s\": {\"failed\": %s", key[j], r->failed ? "true" : "false");
		if (r->failed) {
			printf(", \"why\": ");
			json_str(r->why);
		} else if (r->nruns) {
			printf(", ");
			json_job(r);
		}
		printf("}");
	}
	for (int j = CJ_LINES; j < NCJOBS; j++) {
		const struct e2e_result *d = &res[CJ_DAEMONS], *p = &res[j];
		double med, lo, hi;
		secs_ratio(p, d, &med, &lo, &hi);
		printf(", \"%s_over_daemons\": %.3f, \"%s_over_daemons_rounds\": %.3f, \"%s_over_daemons_rounds_lo\":"
		       " %.3f, \"%s_over_daemons_rounds_hi\": %.3f", over[j],
		       p->nruns && d->nruns && d->med_secs > 0 && !p->failed && !d->failed ? p->med_secs / d->med_secs : 0,
		       over[j], med, over[j], lo, over[j], hi);
	}
}

void print_json(void)
{
	printf("{\n  \"quick\": %s,\n  \"runs\": %d,\n  \"seconds_per_run\": %g,\n", opt.quick ? "true" : "false",
	       opt.runs, opt.seconds);
	printf("  \"machine\": {\"cpus_online\": %d, \"cpu_model\": ", ncpus_online);
	json_str(cpu_model);
	printf(", \"pinned\": %s, \"producer_cpu\": %d, \"consumer_cpu\": %d, \"nice\": %d, \"page_reporting\": ",
	       cpu_b >= 0 ? "true" : "false", cpu_a, cpu_b, opt.nice_set ? opt.nice : 0);
	json_str(page_reporting_note);
	printf("},\n");
	printf("  \"batch\": %u,\n  \"big_batch\": %u,\n  \"spsc_batch\": %u,\n  \"throughput\": [", opt.batch,
	       opt.big_batch, opt.spsc_batch);
	bool first = true;
	for (int t = 0; t < NTRANSPORTS; t++)
		for (int si = 0; si < NSIZES; si++) {
			const struct tput_result *r = &tput[t][si];
			if (!(opt.only_mask & (1u << t)) || !(opt.size_mask & (1u << si)) || !opt.tput)
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
			printf("\"ran\": true, \"records\": %" PRIu64 ", \"records_per_s\": %.0f,"
			       " \"records_per_s_lo\": %.0f, \"records_per_s_hi\": %.0f, \"mb_per_s\": %.1f,"
			       " \"context_switches\": %ld, \"runs\": [", r->n, r->med_rps, r->lo_rps, r->hi_rps,
			       r->med_rps * sizes[si] / 1e6, r->csw);
			for (int i = 0; i < r->nruns; i++)
				printf("%s%.0f", i ? ", " : "", r->rps[i]);
			printf("]");
			if (t == T_MQ)
				printf(", \"depth\": %ld", r->depth);
			if (t == T_MMAPQ || t == T_MMAPQ_BIG || t == T_TEXTBOOK || t == T_SPSC)
				printf(", \"ring_bytes\": %" PRIu64 ", \"ring_records\": %u, \"batch\": %u",
				       r->ring_bytes, r->cap, r->batch);
			printf("}");
		}
	printf("\n  ],\n  \"ratios\": [");
	first = true;
	for (int m = 0; m < 2; m++)
		for (int t = 0; t < NTRANSPORTS; t++)
			for (int si = 0; si < NSIZES; si++) {
				enum transport_row mine = m ? T_MMAPQ_BIG : T_MMAPQ;
				double r = ratio_of(mine, (enum transport_row)t, si), med, lo, hi;
				if (t == T_MMAPQ || t == T_MMAPQ_BIG || r <= 0)
					continue;
				ratio_rounds(mine, (enum transport_row)t, si, &med, &lo, &hi);
				printf("%s\n    {\"mmapq\": \"%s\", \"peer\": \"%s\", \"size\": %u, \"mmapq_over_peer\": %.3f,"
				       " \"rounds\": %.3f, \"rounds_lo\": %.3f, \"rounds_hi\": %.3f}", first ? "" : ",",
				       tdefs[mine].key, tdefs[t].key, sizes[si], r, med, lo, hi);
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
			printf("\"spin_us\": %" PRIu32 ", ", opt.spin_us);
		if (r->failed) {
			printf("\"failed\": true, \"why\": ");
			json_str(r->why);
			printf("}");
		} else {
			printf("\"round_trips\": %" PRIu64 ", \"runs\": %d, \"p50_ns\": %.0f, \"p50_ns_lo\": %.0f,"
			       " \"p50_ns_hi\": %.0f, \"p99_ns\": %.0f, \"p99_ns_lo\": %.0f, \"p99_ns_hi\": %.0f}",
			       r->iters, r->nruns, r->med_p50, r->lo_p50, r->hi_p50, r->med_p99, r->lo_p99, r->hi_p99);
		}
	}
	printf("\n  ],\n  \"parse_format_alone\": [");
	first = true;
	for (int in = 0; in < NINPUTS; in++)
		for (int k = 0; k < NCODEC; k++) {
			if (!codec[in][k].nruns)
				continue;
			printf("%s\n    {\"input\": \"%s\", \"what\": \"%s\", \"ns_per_integer\": %.3f,"
			       " \"ns_per_integer_lo\": %.3f, \"ns_per_integer_hi\": %.3f, \"runs\": %d}",
			       first ? "" : ",", in_key[in], codec_key[k], codec[in][k].med_ns, codec[in][k].lo_ns,
			       codec[in][k].hi_ns, codec[in][k].nruns);
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
				       PRIu64 ", ", first ? "" : ",", in_key[in], job_key[j], out_key[out], opt.e2e_count);
				first = false;
				if (r->failed) {
					printf("\"failed\": true, \"why\": ");
					json_str(r->why);
					printf("}");
				} else {
					double mp, lp, hp, mo, lo, ho;
					secs_ratio(&e2e[in][J_PIPE][out], r, &mp, &lp, &hp);
					secs_ratio(&e2e[in][J_PIPE_OLD][out], r, &mo, &lo, &ho);
					printf("\"integers_per_s\": %.0f, \"speedup_vs_pipe\": %.3f,"
					       " \"speedup_vs_old_parser_pipe\": %.3f, \"over_pipe_rounds\": %.3f,"
					       " \"over_pipe_rounds_lo\": %.3f, \"over_pipe_rounds_hi\": %.3f,"
					       " \"over_old_parser_pipe_rounds\": %.3f, \"over_old_parser_pipe_rounds_lo\": %.3f,"
					       " \"over_old_parser_pipe_rounds_hi\": %.3f, ", (double)opt.e2e_count / r->med_secs,
					       e2e_speedup((enum e2e_input)in, (enum e2e_job)j, J_PIPE, out),
					       e2e_speedup((enum e2e_input)in, (enum e2e_job)j, J_PIPE_OLD, out), mp, lp, hp,
					       mo, lo, ho);
					json_job(r);
					printf("}");
				}
			}
	printf("\n  ],\n");
	if (backlog.ran) {
		printf("  \"backlog\": {\"records\": %" PRIu64 ", \"failed\": %s", opt.backlog_records,
		       backlog.failed ? "true" : "false");
		if (!backlog.failed)
			printf(", \"file_bytes\": %" PRIu64 ", \"rss_kib\": [%ld, %ld], \"seconds\": [%.3f, %.3f],"
			       " \"cpu_s\": [%.4f, %.4f]", backlog.file_bytes, backlog.use[0].rss_kib,
			       backlog.use[1].rss_kib, backlog.secs[0], backlog.secs[1], backlog.use[0].cpu_s,
			       backlog.use[1].cpu_s);
		printf("},\n");
	}
	if (format3.ran) {
		printf("  \"format3\": {\"measured\": %s, \"failed\": %s, \"why\": ", format3.measured ? "true" : "false",
		       format3.failed ? "true" : "false");
		json_str(format3.why);
		printf(", \"commit\": ");
		json_str(format3.rev);
		printf(", \"sign_k\": %d, \"rows\": [", format3.sign_k);
		for (int k = 0; k < format3.nrows && format3.measured && !format3.failed; k++) {
			const struct f3_row *w = &format3.rows[k];
			printf("%s\n    {\"row\": ", k ? "," : "");
			json_str(f3_row_label(w));
			printf(", \"records_per_s\": [%.0f, %.0f], \"ratio\": %.4f, \"ratio_lo\": %.4f, \"ratio_hi\": %.4f,"
			       " \"rounds\": %d, \"slower\": %d, \"faster\": %d}", w->med[0], w->med[1], w->med_ratio,
			       w->lo_ratio, w->hi_ratio, w->nruns, w->slower, w->faster);
		}
		printf("]},\n");
	}
	if (opt.space) {
		printf("  \"space\": [");
		for (int k = 0; k < NCORPUS; k++) {
			const struct space_result *s = &space[k];
			const struct corpus *c = &corpus[k];
			printf("%s\n    {\"corpus\": \"%s\", \"measured\": %s", k ? "," : "", corpus_key[k],
			       s->measured ? "true" : "false");
			if (s->measured)
				printf(", \"lines\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"longest\": %" PRIu64 ", \"frames\": %"
				       PRIu64 ", \"ring4\": %" PRIu64 ", \"slot3\": %" PRIu64 ", \"capacity3\": %" PRIu64
				       ", \"ring3\": %" PRIu64 ", \"ratio\": %.3f, \"ratio_exact\": %.3f", c->lines, c->bytes,
				       c->longest, c->frames, s->size4, s->slot3, s->capacity3, s->ring3,
				       space_ratio(s, false), space_ratio(s, true));
			printf("}");
		}
		printf("\n  ],\n");
	}
	if (opt.corpus) {
		printf("  \"corpus_e2e\": {\"lines\": %" PRIu64 ", \"bytes\": %" PRIu64, corpus[CORPUS_ALL].lines,
		       corpus[CORPUS_ALL].bytes);
		json_line_jobs(corpus_e2e);
		printf("},\n");
	}
	if (opt.e2e_lines) {
		printf("  \"lines_e2e\": [");
		for (int in = 0; in < NLINPUTS; in++) {
			printf("%s\n    {\"line_bytes\": %u, \"lines\": %" PRIu64 ", \"bytes\": %" PRIu64, in ? "," : "",
			       line_len[in], line_input[in].lines, line_input[in].bytes);
			json_line_jobs(lines_e2e[in]);
			printf("}");
		}
		printf("\n  ],\n");
	}
	if (opt.durability) {
		printf("  \"durability\": [");
		for (int in = 0, n = 0; in < NDINPUTS; in++)
			for (int mode = 0; mode < NDMODES; mode++) {
				const struct dur_result *r = &dur[in][mode];
				printf("%s\n    {\"input\": \"%s\", \"row\": \"%s\", \"records\": %" PRIu64 ", \"failed\": %s,"
				       " \"records_per_s\": %.0f, \"over_never\": %.4f, \"over_never_lo\": %.4f,"
				       " \"over_never_hi\": %.4f, \"runs\": %d}", n++ ? "," : "", dur_in_key[in],
				       dur_mode_key[mode], r->records, r->failed ? "true" : "false", r->med_rps, r->med_ratio,
				       r->lo_ratio, r->hi_ratio, r->nruns);
			}
		printf("\n  ],\n");
	}
	if (opt.peers) {
		printf("  \"peers\": [");
		for (int in = 0, n = 0; in < NDINPUTS; in++)
			for (int p = 0; p < NPEERS; p++) {
				const struct peer_result *r = &peers[in][p];
				printf("%s\n    {\"input\": \"%s\", \"peer\": \"%s\", \"records\": %" PRIu64
				       ", \"failed\": %s", n++ ? "," : "", dur_in_key[in], peer_key[p],
				       dur_input[in][0].records, r->failed ? "true" : "false");
				if (r->failed) {
					printf(", \"why\": ");
					json_str(r->why);
				}
				if (p == P_MQ)
					printf(", \"depth\": %ld", r->depth);
				printf(", \"seconds\": %.4f, \"records_per_s\": %.0f", r->med_secs, r->med_rps);
				for (int b = 0; b < NPEER_BASES; b++)
					if (r->over[b][0] > 0)
						printf(", \"over_%s\": %.4f, \"over_%s_lo\": %.4f, \"over_%s_hi\": %.4f",
						       dur_mode_key[peer_base[b]], r->over[b][0], dur_mode_key[peer_base[b]],
						       r->over[b][1], dur_mode_key[peer_base[b]], r->over[b][2]);
				printf(", \"runs\": %d}", r->nruns);
			}
		printf("\n  ],\n");
	}
	json_idle("idle", &idle);
	json_idle("fanout_idle", &fanout_idle);
	if (fanout.ran) {
		printf("  \"fanout\": {\"size\": %u, \"ring_bytes\": %" PRIu64 ", \"ring_records\": %u,"
		       " \"batch\": %u, \"records\": %" PRIu64 ", \"cpus\": %d, \"failed\": %s", fanout.size,
		       fanout.ring_bytes, fanout.cap, fanout.batch, fanout.n, fanout.ncpus,
		       fanout.failed ? "true" : "false");
		if (fanout.failed) {
			printf(", \"why\": ");
			json_str(fanout.why);
		} else {
			printf(", \"cases\": [");
			for (int k = 0; k < NFAN; k++) {
				printf("%s\n    {\"consumers\": %d, \"cpus_busy\": %.3f, \"cpus_busy_lo\": %.3f,"
				       " \"cpus_busy_hi\": %.3f, \"machine_allows\": %.3f, \"machine_allows_lo\": %.3f,"
				       " \"machine_allows_hi\": %.3f, \"runs\": %d", k ? "," : "", fan_consumers[k],
				       fanout.busy[k], fanout.busy_lo[k], fanout.busy_hi[k], fanout.ceiling[k],
				       fanout.ceiling_lo[k], fanout.ceiling_hi[k], fanout.nruns[k]);
				/* each consumer's median, lowest, highest */
				for (int w = 0; w < 3; w++) {
					const double *v = w == 0 ? fanout.med_rps[k] : w == 1 ? fanout.lo_rps[k] : fanout.hi_rps[k];
					printf(", \"records_per_s%s\": [", w == 0 ? "" : w == 1 ? "_lo" : "_hi");
					for (int i = 0; i < fan_consumers[k]; i++)
						printf("%s%.0f", i ? ", " : "", v[i]);
					printf("]");
				}
				printf(", \"over_single\": [");
				for (int i = 0; i < fan_consumers[k]; i++)
					printf("%s%.3f", i ? ", " : "", fanout_ratio(k, i));
				for (int w = 0; w < 3; w++) {
					printf("], \"over_single_rounds%s\": [", w == 0 ? "" : w == 1 ? "_lo" : "_hi");
					for (int i = 0; i < fan_consumers[k]; i++) {
						double m[3];
						fanout_ratio_rounds(k, i, &m[0], &m[1], &m[2]);
						printf("%s%.3f", i ? ", " : "", m[w]);
					}
				}
				printf("], \"cpu\": [");
				for (int i = 0; i <= fan_consumers[k]; i++)
					printf("%s%d", i ? ", " : "", fanout.cpu[k][i]);
				printf("]}");
			}
			printf("\n  ]");
		}
		printf("},\n");
	}
	if (fanin.ran) {
		printf("  \"fanin\": {\"size\": %u, \"ring_bytes\": %" PRIu64 ", \"ring_records\": %u,"
		       " \"batch\": %u, \"mq_depth\": %ld, \"cpus\": %d, \"failed\": %s", fanin.size,
		       fanin.ring_bytes, fanin.cap, fanin.batch, fanin.mq_depth, fanin.ncpus,
		       fanin.failed ? "true" : "false");
		if (fanin.failed) {
			printf(", \"why\": ");
			json_str(fanin.why);
		} else {
			printf(", \"cases\": [");
			for (int t = 0; t < NFI_T; t++)
				for (int k = 0; k < NFANIN; k++) {
					double x[3], o[3] = {0, 0, 0};
					fanin_ratio(t, k, &x[0], &x[1], &x[2]);
					if (t != FI_MMAPQ)
						fanin_over(t, k, &o[0], &o[1], &o[2]);
					printf("%s\n    {\"transport\": \"%s\", \"writers\": %d, \"records\": %" PRIu64
					       ", \"runs\": %d, \"records_per_s\": %.0f, \"records_per_s_lo\": %.0f,"
					       " \"records_per_s_hi\": %.0f, \"over_single_rounds\": %.3f,"
					       " \"over_single_rounds_lo\": %.3f, \"over_single_rounds_hi\": %.3f",
					       t || k ? "," : "", fanin_key[t], fanin_writers[k], fanin.n[t], fanin.nruns[t][k],
					       fanin.med_rps[t][k], fanin.lo_rps[t][k], fanin.hi_rps[t][k], x[0], x[1], x[2]);
					if (t != FI_MMAPQ)
						printf(", \"mmapq_over_rounds\": %.3f, \"mmapq_over_rounds_lo\": %.3f,"
						       " \"mmapq_over_rounds_hi\": %.3f", o[0], o[1], o[2]);
					printf(", \"cpus_busy\": %.3f, \"cpus_busy_lo\": %.3f, \"cpus_busy_hi\": %.3f,"
					       " \"machine_allows\": %.3f, \"machine_allows_lo\": %.3f,"
					       " \"machine_allows_hi\": %.3f, \"cpu\": [", fanin.busy[t][k], fanin.busy_lo[t][k],
					       fanin.busy_hi[t][k], fanin.ceiling[t][k], fanin.ceiling_lo[t][k],
					       fanin.ceiling_hi[t][k]);
					for (int i = 0; i <= fanin_writers[k]; i++)
						printf("%s%d", i ? ", " : "", fanin.cpu[k][i]);
					printf("]}");
				}
			printf("\n  ]");
		}
		printf("},\n");
	}
	printf("  \"interference\": [");
	for (int i = 0; i < nloads; i++)
		printf("%s\n    {\"section\": \"%s\", \"seconds\": %.1f, \"other_processes_percent\": %.1f,"
		       " \"steal_percent\": %.1f}", i ? "," : "", loads[i].name, loads[i].wall_s,
		       loads[i].others_pct, loads[i].steal_pct);
	printf("\n  ],\n");
	/* by topic: {"throughput": [...], "end to end": [...], ...} */
	printf("  \"targets\": {");
	for (int t = 0, nt = 0; t < NTOPICS; t++) {
		int n = 0;
		for (int i = 0; i < ntargets; i++) {
			if (targets[i].topic != (enum topic)t)
				continue;
			if (n++ == 0)
				printf("%s\n    \"%s\": [", nt++ ? "," : "", topic_name[t]);
			printf("%s\n      {\"target\": ", n > 1 ? "," : "");
			json_str(targets[i].what);
			printf(", \"met\": %s, \"value\": ",
			       targets[i].met > 0 ? "true" : targets[i].met == 0 ? "false" : "null");
			json_str(targets[i].value);
			printf("}");
		}
		if (n)
			printf("\n    ]");
	}
	printf("\n  },\n  \"records_verified\": %" PRIu64 ",\n  \"ok\": %s\n}\n", total_verified,
	       failed ? "false" : "true");
}
