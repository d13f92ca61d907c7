/* SPDX-License-Identifier: MIT */
/*
 * plot.c -- --plot DIR: the main tables of the run as charts.
 *
 * Into DIR: one tab-separated data file per chart (a comment says what each
 * column is), a gnuplot script, mmapq_bench.gp, that draws them, and what
 * gnuplot renders from it, each chart as SVG and PNG:
 *
 *   throughput   records/s per transport and record size (log scale)
 *   ratio        mmapq (both batch sizes) / the strongest peer per size,
 *                the peer named on the bar
 *   latency      one-way p50 and p99 per transport (log scale)
 *   e2e          end to end: the median time of each job per input and
 *                output, with the pipe job's time / the job's above it
 *   fanout       each of 1, 2 and 4 named consumers' throughput / the
 *                single consumer's, the target (0.7x) and what the CPUs
 *                allow
 *
 * A chart is made only of the sections that ran.  The script can be run
 * again by hand (cd DIR && gnuplot mmapq_bench.gp) to restyle the charts
 * of the same run.  gnuplot (Debian: gnuplot-nox) is looked for in PATH;
 * without it the data and the script are written and that is said.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "testutil.h"

#define GNUPLOT_TIMEOUT_MS 60000
#define SCRIPT "mmapq_bench.gp"

/* What the charts of this run are of: the last line(s) of every title.
 * The share of the CPUs that other processes used and the hypervisor stole
 * while the section ran is that of the text report's Interference. */
static void run_line(char *b, size_t len, const char *section)
{
	int n = snprintf(b, len, "%s%d CPUs (%s), median of %d run%s", opt.quick ?
	                 "--quick: a correctness smoke, the timings mean nothing\\n" : "",
	                 ncpus_online, cpu_model, opt.runs, opt.runs > 1 ? "s" : "");

	for (int i = 0; i < nloads && n > 0 && (size_t)n < len; i++)
		if (!strcmp(loads[i].name, section))
			snprintf(b + n, len - (size_t)n, "; meanwhile other processes used %.0f%% of the CPUs,"
			         " steal %.0f%%%s", loads[i].others_pct, loads[i].steal_pct,
			         loads[i].others_pct > 5 || loads[i].steal_pct > 5 ? " (disturbed)" : "");
}

static FILE *open_in(const char *dir, const char *name)
{
	char *path = tu_path(dir, name);
	FILE *f = fopen(path, "w");

	if (!f)
		note("plot: %s: %s", path, strerror(errno));
	free(path);
	return f;
}

static bool close_ok(FILE *f, const char *dir, const char *name)
{
	bool ok = !ferror(f);
	if (fclose(f) != 0)
		ok = false;
	if (!ok)
		note("plot: writing %s/%s failed", dir, name);
	return ok;
}

/* A value for a data file: NaN where there is none (gnuplot leaves it out). */
static void put_value(FILE *f, double v)
{
	if (v > 0 && isfinite(v))
		fprintf(f, "\t%.6g", v);
	else
		fputs("\tNaN", f);
}

/* The common part of every chart: the terminal of the format being made
 * (height pixels high), the output file, the title. */
static void gp_begin(FILE *g, const char *name, int height, const char *title, const char *section)
{
	char line[384];

	run_line(line, sizeof(line), section);
	fprintf(g, "\n# ---- %s\n", name);
	fprintf(g, "reset\nset datafile separator tab\neval sprintf(TERM, %d)\nset output \"%s.\".fmt\n",
	        height, name);
	fprintf(g, "set title \"%s\\n%s\"\n", title, line);
	fputs("set border 3\nset tics nomirror\nset grid ytics lc rgb \"#d0d0d0\"\n", g);
}

/* ---- throughput ------------------------------------------------------------------- */

struct row_style {
	const char *color;
	int width, dash, point;
};

static const struct row_style row_styles[NTRANSPORTS] = {
	[T_MMAPQ] = {"#d62728", 3, 1, 7},     [T_MMAPQ_BIG] = {"#ff7f0e", 3, 1, 5},
	[T_TEXTBOOK] = {"#9467bd", 2, 1, 9},  [T_SPSC] = {"#555555", 2, 2, 13},
	[T_PIPE] = {"#1f77b4", 2, 1, 4},      [T_UNIX] = {"#17becf", 2, 1, 6},
	[T_STDIO4K] = {"#2ca02c", 2, 1, 8},   [T_STDIO64K] = {"#8c9e00", 2, 1, 10},
	[T_MQ] = {"#8c564b", 2, 1, 12},      [T_ZMQ] = {"#e377c2", 2, 1, 14},
};

/* The rows as the text table names them, the batch sizes included. */
static void row_label(int t, char *b, size_t len)
{
	if (t == T_MQ)
		snprintf(b, len, "POSIX mq, deepest possible");
	else if (t == T_MMAPQ || t == T_MMAPQ_BIG || t == T_SPSC)
		snprintf(b, len, "%s, %u/batch", t == T_SPSC ? tdefs[t].label : "mmapq",
		         t == T_SPSC ? opt.spsc_batch : t == T_MMAPQ_BIG ? opt.big_batch : opt.batch);
	else if (t == T_PIPE)
		snprintf(b, len, "pipe, a write() per record");
	else
		snprintf(b, len, "%s", tdefs[t].label);
}

static bool row_ran(int t)
{
	for (int si = 0; si < NSIZES; si++)
		if (tput[t][si].nruns && !tput[t][si].failed)
			return true;
	return false;
}

/* The chart functions: 1 a chart, 0 nothing to draw, -1 failed. */

static int plot_throughput(const char *dir, FILE *g)
{
	FILE *f = open_in(dir, "throughput.dat");
	char label[64];
	int col = 3, n = 0;

	if (!f)
		return -1;
	fputs("# mmapq_bench: throughput, records/s (median), every record verified; NaN: not run\n"
	      "# index\tsize", f);
	for (int t = 0; t < NTRANSPORTS; t++)
		if (row_ran(t))
			fprintf(f, "\t%s", tdefs[t].key);
	fputc('\n', f);
	for (int si = 0, x = 0; si < NSIZES; si++) {
		if (!(opt.size_mask & (1u << si)))
			continue;
		fprintf(f, "%d\t%s", x++, size_label(sizes[si]));
		for (int t = 0; t < NTRANSPORTS; t++)
			if (row_ran(t))
				put_value(f, tput[t][si].nruns && !tput[t][si].failed ? tput[t][si].med_rps : 0);
		fputc('\n', f);
	}
	if (!close_ok(f, dir, "throughput.dat"))
		return -1;
	for (int t = 0; t < NTRANSPORTS; t++)
		n += row_ran(t);
	if (!n)
		return 0;
	n = 0;

	gp_begin(g, "throughput", 680, "Throughput by record size, one way, two processes, every record"
	         " verified", "throughput");
	fputs("set logscale y\nset format y \"%.0s%c\"\nset ylabel \"records/s (log scale)\"\n"
	      "set offsets 0.2, 0.2, 0, 0\n"
	      "set key outside below center horizontal Left reverse maxcols 3 samplen 3 width 1\n"
	      "plot \\\n", g);
	for (int t = 0; t < NTRANSPORTS; t++) {
		const struct row_style *s = &row_styles[t];
		if (!row_ran(t))
			continue;
		row_label(t, label, sizeof(label));
		fprintf(g, "%s  \"throughput.dat\" using 1:%d%s with linespoints lc rgb \"%s\" lw %d dt %d"
		        " pt %d ps 1.2 title \"%s\"", n ? ", \\\n" : "", col, n ? "" : ":xtic(2)",
		        s->color, s->width, s->dash, s->point, label);
		n++;
		col++;
	}
	fputs("\n", g);
	return 1;
}

/* ---- mmapq / strongest peer ---------------------------------------------------------- */

static int plot_ratio(const char *dir, FILE *g)
{
	FILE *f = open_in(dir, "ratio.dat");
	double top = 0;
	int x = 0;

	if (!f)
		return -1;
	fputs("# mmapq_bench: mmapq / the strongest peer (the fastest of pipe, AF_UNIX, the stdio\n"
	      "# pipes and POSIX mq at that size), throughput ratio; NaN: not measured\n"
	      "# index\tsize\tmmapq\tpeer\tmmapq_big\tpeer_big\n", f);
	for (int si = 0; si < NSIZES; si++) {
		int pk = strongest_peer(si, false);
		if (!(opt.size_mask & (1u << si)))
			continue;
		fprintf(f, "%d\t%s", x++, size_label(sizes[si]));
		for (int m = 0; m < 2; m++) {
			double r = pk >= 0 ? ratio_of(m ? T_MMAPQ_BIG : T_MMAPQ, (enum transport_row)pk, si) : 0;
			put_value(f, r);
			fprintf(f, "\t%s", pk >= 0 ? tdefs[pk].key : "-");
			if (r > top)
				top = r;
		}
		fputc('\n', f);
	}
	if (!close_ok(f, dir, "ratio.dat"))
		return -1;
	if (top == 0)
		return 0;
	if (top < 1)
		top = 1;

	gp_begin(g, "ratio", 540, "Throughput of mmapq ÷ that of the strongest peer, in the same run\\n"
	         "the strongest peer: the fastest of pipe, AF_UNIX, the stdio pipes and POSIX mq at that"
	         " size, named on the bar", "throughput");
	fprintf(g, "set style data histograms\nset style histogram clustered gap 1\n"
	        "set style fill solid 0.85 border -1\nset yrange [0:%.3g]\nset xrange [-0.6:%d.6]\n"
	        "set ylabel \"mmapq ÷ strongest peer (x)\"\nset xlabel \"record size\"\n"
	        "set key top right\n", top * 1.3, x - 1);
	fprintf(g, "plot \"ratio.dat\" using 3:xtic(2) lc rgb \"%s\" title \"mmapq, %u/batch\", \\\n"
	        "  \"\" using 5 lc rgb \"%s\" title \"mmapq, %u/batch\", \\\n"
	        "  \"\" using ($1-1.0/6):3:(sprintf(\"%%.2fx\\n%%s\", $3, strcol(4))) with labels"
	        " offset 0,1.3 font \",9\" notitle, \\\n"
	        "  \"\" using ($1+1.0/6):5:(sprintf(\"%%.2fx\\n%%s\", $5, strcol(6))) with labels"
	        " offset 0,1.3 font \",9\" notitle, \\\n"
	        "  1 with lines dt 2 lc rgb \"black\" title \"1x: as fast as the strongest peer\"\n",
	        row_styles[T_MMAPQ].color, opt.batch, row_styles[T_MMAPQ_BIG].color, opt.big_batch);
	return 1;
}

/* ---- latency ---------------------------------------------------------------------------- */

static int plot_latency(const char *dir, FILE *g)
{
	FILE *f = open_in(dir, "latency.dat");
	double lo = 0, hi = 0;
	int x = 0;

	if (!f)
		return -1;
	fputs("# mmapq_bench: one-way latency of 64 B records, ping-pong (round trip / 2), us\n"
	      "# index\ttransport\thow\tp50_us\tp99_us\n", f);
	for (int k = 0; k < NLAT; k++) {
		const struct lat_result *r = &lat[k];
		/* "what, how it waits": the two lines of the bar's label */
		const char *comma = strrchr(ldefs[k].label, ',');
		int what = comma ? (int)(comma - ldefs[k].label) : (int)strlen(ldefs[k].label);
		char how[32];
		if (!r->ran || r->failed || !r->nruns)
			continue;
		if (k == L_MMAPQ_SPIN)
			snprintf(how, sizeof(how), "spin_us = %" PRIu32, opt.spin_us);
		else
			snprintf(how, sizeof(how), "%s", comma ? comma + 2 : "");
		fprintf(f, "%d\t%.*s\t%s", x++, what, ldefs[k].label, how);
		put_value(f, r->med_p50 / 1e3);
		put_value(f, r->med_p99 / 1e3);
		fputc('\n', f);
		if (lo == 0 || r->med_p50 / 1e3 < lo)
			lo = r->med_p50 / 1e3;
		if (r->med_p99 / 1e3 > hi)
			hi = r->med_p99 / 1e3;
	}
	if (!close_ok(f, dir, "latency.dat"))
		return -1;
	if (!x)
		return 0;

	gp_begin(g, "latency", 540, "One-way latency, 64 B records, ping-pong (round trip / 2)", "latency");
	fprintf(g, "set style data histograms\nset style histogram clustered gap 1\n"
	        "set style fill solid 0.85 border -1\nset logscale y\nset yrange [%.3g:%.3g]\n"
	        "set xrange [-0.6:%d.6]\nset ylabel \"µs (log scale)\"\nset bmargin 5\n"
	        "set key top right\n", lo > 0 ? lo / 2 : 0.01, hi > 0 ? hi * 6 : 1000, x - 1);
	fputs("plot \"latency.dat\" using 4:xtic(strcol(2).\"\\n\".strcol(3)) lc rgb \"#d62728\""
	      " title \"p50\", \\\n"
	      "  \"\" using 5 lc rgb \"#1f77b4\" title \"p99\", \\\n"
	      "  \"\" using ($1-1.0/6):4:(sprintf(\"%.3g\", $4)) with labels offset 0,0.8 font \",9\""
	      " notitle, \\\n"
	      "  \"\" using ($1+1.0/6):5:(sprintf(\"%.3g\", $5)) with labels offset 0,0.8 font \",9\""
	      " notitle\n", g);
	return 1;
}

/* ---- end to end --------------------------------------------------------------------------- */

static int plot_e2e(const char *dir, FILE *g)
{
	static const char *const job_title[NJOBS] = {
		[J_DAEMONS] = "daemons, as shipped", [J_DAEMONS_BIG] = "daemons, big ring",
		[J_PIPE] = "parser | pipe | printer", [J_PIPE_OLD] = "the same, old parser",
		[J_CAT] = "cat | cat",
	};
	static const char *const job_color[NJOBS] = {"#d62728", "#ff7f0e", "#1f77b4", "#9ecae1", "#7f7f7f"};
	FILE *f = open_in(dir, "e2e.dat");
	double top = 0;
	int x = 0;

	if (!f)
		return -1;
	fprintf(f, "# mmapq_bench: end to end, %" PRIu64 " integers from a file; per job its median"
	        " time (s),\n# then the pipe job's time / the job's (x pipe); NaN: not run\n"
	        "# index\tinput\toutput", opt.e2e_count);
	for (int j = 0; j < NJOBS; j++)
		fprintf(f, "\t%s_s\t%s_x_pipe", job_key[j], job_key[j]);
	fputc('\n', f);
	for (int in = NINPUTS - 1; in >= 0; in--) /* seq first, as README-bench.md */
		for (int out = NOUTS - 1; out >= 0; out--) {
			fprintf(f, "%d\t%s\t%s", x++, in_key[in], out_key[out]);
			for (int j = 0; j < NJOBS; j++) {
				const struct e2e_result *r = &e2e[in][j][out];
				bool ok = r->ran && !r->failed && r->nruns;
				put_value(f, ok ? r->med_secs : 0);
				put_value(f, ok ? e2e_speedup((enum e2e_input)in, (enum e2e_job)j, J_PIPE, out) : 0);
				if (ok && r->med_secs > top)
					top = r->med_secs;
			}
			fputc('\n', f);
		}
	if (!close_ok(f, dir, "e2e.dat"))
		return -1;
	if (top == 0)
		return 0;

	{
		char title[256];
		snprintf(title, sizeof(title), "End to end: %" PRIu64 " integers from a file to /dev/null or"
		         " to a file, two processes\\nabove a bar: the pipe job's time ÷ this job's (> 1: faster"
		         " than the pipe job)", opt.e2e_count);
		gp_begin(g, "e2e", 540, title, "end to end");
	}
	fprintf(g, "set style data histograms\nset style histogram clustered gap 1\n"
	        "set style fill solid 0.85 border -1\nset yrange [0:%.3g]\nset xrange [-0.6:%d.6]\n"
	        "set ylabel \"seconds, median (lower is faster)\"\nset xlabel \"input, output\"\n"
	        "set key top left horizontal\nplot \\\n", top > 0 ? top * 1.35 : 1, x - 1);
	for (int j = 0; j < NJOBS; j++)
		fprintf(g, "  \"e2e.dat\" using %d%s lc rgb \"%s\" title \"%s\", \\\n", 4 + 2 * j,
		        j ? "" : ":xtic(strcol(2).\", \".strcol(3))", job_color[j], job_title[j]);
	/* clustered, 4 bars and a gap of 1: a bar is 1/5 wide */
	for (int j = 0; j < NJOBS; j++)
		fprintf(g, "  \"\" using ($1%+.1f):%d:(sprintf(\"%%.2fx\", $%d)) with labels offset 0,0.7"
		        " font \",9\" notitle%s\n", (j - 1.5) / 5, 4 + 2 * j, 5 + 2 * j,
		        j < NJOBS - 1 ? ", \\" : "");
	return 1;
}

/* ---- fan-out ------------------------------------------------------------------------------ */

static int plot_fanout(const char *dir, FILE *g)
{
	FILE *f = open_in(dir, "fanout.dat");
	static const char *const color[FANOUT_MAX] = {"#d62728", "#ff7f0e", "#2ca02c", "#1f77b4"};
	double top = 1;

	if (!f)
		return -1;
	fprintf(f, "# mmapq_bench: fan-out, %u B records: each named consumer's throughput / the single\n"
	        "# consumer's, same run; allows: the most the CPUs allow at that CPU time per record; NaN: none\n"
	        "# index\tconsumers", fanout.size);
	for (int i = 0; i < FANOUT_MAX; i++)
		fprintf(f, "\tfo%d", i);
	fputs("\tallows\trecords_per_s_single\n", f);
	for (int k = 0; k < NFAN; k++) {
		fprintf(f, "%d\t%d", k, fan_consumers[k]);
		for (int i = 0; i < FANOUT_MAX; i++) {
			put_value(f, fanout_ratio(k, i));
			if (fanout_ratio(k, i) > top)
				top = fanout_ratio(k, i);
		}
		put_value(f, fanout.ceiling[k]);
		put_value(f, fanout.med_rps[0][0]);
		/* an "allows" far above the bars would squash them: drawn at the top, its value said */
		if (fanout.ceiling[k] > top)
			top = fanout.ceiling[k] < 1.6 ? fanout.ceiling[k] : 1.6;
		fputc('\n', f);
	}
	if (!close_ok(f, dir, "fanout.dat"))
		return -1;
	if (fanout_ratio(0, 0) <= 0)
		return 0;

	{
		char title[256];
		snprintf(title, sizeof(title), "Fan-out: 1, 2 and 4 named consumers on one queue, %u B records,"
		         " every consumer checks every record\\neach consumer's records/s ÷ the single"
		         " consumer's (%.1fM/s), same run", fanout.size, fanout.med_rps[0][0] / 1e6);
		gp_begin(g, "fanout", 540, title, "fan-out");
	}
	fprintf(g, "set style data histograms\nset style histogram clustered gap 1\n"
	        "set style fill solid 0.85 border -1\nset yrange [0:%.3g]\nset xrange [-0.6:%d.7]\n"
	        "set ylabel \"x the single consumer\"\nset xlabel \"named consumers on the queue\"\n"
	        "set key outside below center horizontal\nplot \\\n", top * 1.25, NFAN - 1);
	for (int i = 0; i < FANOUT_MAX; i++)
		fprintf(g, "  \"%s\" using %d%s lc rgb \"%s\" title \"fo%d\", \\\n", i ? "" : "fanout.dat",
		        3 + i, i ? "" : ":xtic(2)", color[i], i);
	/* clustered, FANOUT_MAX bars and a gap of 1: a bar is 1/(FANOUT_MAX+1) wide */
	for (int i = 0; i < FANOUT_MAX; i++)
		fprintf(g, "  \"\" using ($1%+.2f):%d:(sprintf(\"%%.2fx\", $%d)) with labels offset 0,0.7"
		        " font \",9\" notitle, \\\n", (i - (FANOUT_MAX - 1) / 2.0) / (FANOUT_MAX + 1), 3 + i, 3 + i);
	/* right of the last bar of its group: bar i of a group at (i - (FANOUT_MAX-1)/2) / (FANOUT_MAX+1) */
	fprintf(g, "  \"\" using ($1+($2-%.1f)/%d):($%d > %.3g ? %.3g : $%d) with points pt 9 ps 2 lc rgb \"black\" title"
	        " \"the most %d CPUs allow at the CPU time per record\", \\\n"
	        "  \"\" using ($1+($2-%.1f)/%d):($%d > %.3g ? %.3g : $%d):(sprintf(\"%%.2fx\", $%d)) with labels offset 0,1.2"
	        " font \",9\" notitle, \\\n"
	        "  0.7 with lines dt 2 lc rgb \"black\" title \"target: 0.7x\"\n",
	        (FANOUT_MAX - 1) / 2.0, FANOUT_MAX + 1, 3 + FANOUT_MAX, top * 1.2, top * 1.2, 3 + FANOUT_MAX,
	        fanout.ncpus, (FANOUT_MAX - 1) / 2.0, FANOUT_MAX + 1, 3 + FANOUT_MAX, top * 1.2, top * 1.2,
	        3 + FANOUT_MAX, 3 + FANOUT_MAX);
	return 1;
}

/* ---- the script, and gnuplot ----------------------------------------------------------------- */

/* gnuplot's path in PATH, malloc'd, or NULL. */
static char *find_gnuplot(void)
{
	const char *path = getenv("PATH");
	char *dirs = strdup(path && *path ? path : "/usr/bin:/bin"), *save = NULL;

	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char *p = tu_path(*d ? d : ".", "gnuplot");
		if (access(p, X_OK) == 0) {
			free(dirs);
			return p;
		}
		free(p);
	}
	free(dirs);
	return NULL;
}

/* Run gnuplot on the script in dir; true if it exited 0. */
static bool render(const char *gnuplot, const char *dir)
{
	char *argv[] = {(char *)gnuplot, (char *)SCRIPT, NULL};
	int in = open("/dev/null", O_RDWR | O_CLOEXEC), st;
	pid_t pid;

	if (in < 0)
		return false;
	pid = fork_pinned(-1);
	if (pid == 0) {
		if (chdir(dir) < 0) {
			fprintf(stderr, "mmapq_bench: plot: %s: %s\n", dir, strerror(errno));
			_exit(127);
		}
		dup2(in, STDIN_FILENO);
		dup2(in, STDOUT_FILENO); /* its errors go to our stderr */
		execv(gnuplot, argv);
		fprintf(stderr, "mmapq_bench: plot: exec %s: %s\n", gnuplot, strerror(errno));
		_exit(127);
	}
	close(in);
	if (pid < 0) {
		note("plot: fork: %s", strerror(errno));
		return false;
	}
	st = tu_wait(pid, GNUPLOT_TIMEOUT_MS);
	if (st == -ETIMEDOUT) {
		tu_kill(pid);
		note("plot: gnuplot did not finish within %d s", GNUPLOT_TIMEOUT_MS / 1000);
		return false;
	}
	if (tu_exit_code(st) != 0) {
		note("plot: gnuplot exited %d on %s/%s", tu_exit_code(st), dir, SCRIPT);
		return false;
	}
	return true;
}

/* Every chart named in the script is there, not empty. */
static bool rendered(const char *dir, const char *const *charts, int n)
{
	static const char *const fmts[] = {"svg", "png"};
	bool ok = true;

	for (int i = 0; i < n; i++)
		for (int k = 0; k < 2; k++) {
			char name[64];
			struct stat sb;
			char *p;
			snprintf(name, sizeof(name), "%s.%s", charts[i], fmts[k]);
			p = tu_path(dir, name);
			if (stat(p, &sb) < 0 || sb.st_size == 0) {
				note("plot: gnuplot did not write %s", p);
				ok = false;
			}
			free(p);
		}
	return ok;
}

bool write_plot(const char *dir)
{
	const struct {
		const char *name;
		bool wanted;
		int (*chart)(const char *dir, FILE *g);
	} parts[] = {
		{"throughput", opt.tput, plot_throughput},
		{"ratio", opt.tput, plot_ratio},
		{"latency", opt.lat, plot_latency},
		{"e2e", opt.e2e, plot_e2e},
		{"fanout", opt.fanout, plot_fanout},
	};
	const char *charts[sizeof(parts) / sizeof(parts[0])];
	int n = 0;
	bool ok = true;
	char *gnuplot;
	FILE *g;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		note("plot: %s: %s", dir, strerror(errno));
		return false;
	}
	g = open_in(dir, SCRIPT);
	if (!g)
		return false;
	fprintf(g, "# mmapq_bench --plot: the charts of one run, from the .dat files beside this\n"
	        "# script.  Again by hand: cd %s && gnuplot %s\n"
	        "set encoding utf8\n"
	        "TERM_svg = 'set terminal svg size 960,%%d fixed noenhanced font \"DejaVu Sans,12\""
	        " background rgb \"white\"'\n"
	        "TERM_png = 'set terminal pngcairo size 960,%%d noenhanced font \"DejaVu Sans,11\""
	        " background rgb \"white\"'\n"
	        "do for [fmt in \"svg png\"] {\n"
	        "TERM = fmt eq \"svg\" ? TERM_svg : TERM_png\n", dir, SCRIPT);
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && ok; i++) {
		int r = parts[i].wanted ? parts[i].chart(dir, g) : 0;
		if (r > 0)
			charts[n++] = parts[i].name;
		ok = r >= 0;
	}
	fputs("\nunset output\n}\n", g);
	if (!close_ok(g, dir, SCRIPT) || !ok)
		return false;
	if (!n) {
		note("plot: no section ran that has a chart");
		return true;
	}
	gnuplot = find_gnuplot();
	if (!gnuplot) {
		note("plot: gnuplot not found (Debian: gnuplot-nox): the data and %s are in %s;"
		     " render them with: cd %s && gnuplot %s", SCRIPT, dir, dir, SCRIPT);
		return true;
	}
	ok = render(gnuplot, dir) && rendered(dir, charts, n);
	free(gnuplot);
	if (ok)
		note("plot: %d chart%s (SVG and PNG) in %s", n, n > 1 ? "s" : "", dir);
	return ok;
}
