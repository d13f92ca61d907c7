/* SPDX-License-Identifier: MIT */
/*
 * format3.c -- the format-3 peer (--format3): the throughput job, batched,
 * on libmmapq 2 (file format 4: frames in a byte ring, each with a CRC-32C)
 * and on libmmapq 1 (file format 3: fixed slots), in one run, taking turns.
 *
 * Nothing of libmmapq 1 is kept in the tree: it is taken from git history
 * while the benchmark runs.  The commit is the parent of the one that made
 * common/queue/include/mmapq.h say MMAPQ_FILE_VERSION 4 (--format3-rev
 * names another); `git archive` of its common/queue into the scratch
 * directory; its sources (every C file of common/queue but the fault points)
 * compiled with the compiler and flags libmmapq 2 was built with, and the
 * benchmark's own producer and consumer (mmapq_ends.h, through
 * format3_peer.c) with those of the benchmark, into a shared object whose
 * only global symbols are format3_*: every symbol of the old library stays
 * local to it, so the two libmmapq's never meet.  dlopen, then the rows run
 * through the same harness as every other (run_pair: fork, pin, barrier,
 * every record checked).  Without git history (a tarball) the section says
 * "not measured".
 *
 * The rows: int records (8 bytes, format int, read with mmapq_copy_many as
 * mmapq-consumer does) and line records of 8, 64, 1024 and 16384 bytes
 * (mmapq_get_many, checked in place), at --batch and --big-batch records
 * per publish and release.  Format 4 has the throughput table's ring
 * (ring_bytes); format 3 the power of two of slots (mmapq_format.h,
 * versions 1-3) at or above the records that ring holds (at most its
 * 2^24), so that it never has less room, and the same batch.  Records per run: calibrated on format 4 for about
 * --seconds, the same for both.
 *
 * Noise: each round runs format 4 and format 3 of a row back to back (the
 * order alternating from round to round), so that the two of a round see
 * the same state of the machine; the ratio of a round is format 4 / format
 * 3.  A side is called slower (or faster) only if it lost (won) in at least
 * sign_k of the --format3-runs rounds, sign_k the least count that a fair
 * coin reaches with probability <= 5% (a one-sided sign test: 5 of 5, 7 of
 * 7, 8 of 9, 9 of 11...); otherwise the row is within noise.  Fewer than 5
 * rounds can never give a verdict.
 */
#include <dlfcn.h>
#include <glob.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#ifndef MMAPQ_BENCH_SOURCE_DIR
#define MMAPQ_BENCH_SOURCE_DIR "."
#endif
#ifndef MMAPQ_BENCH_CC
#define MMAPQ_BENCH_CC "cc"
#endif
#ifndef MMAPQ_BENCH_LIB_CFLAGS
#define MMAPQ_BENCH_LIB_CFLAGS "-O2"
#endif

struct format3_result format3;

static child_fn f3_prod, f3_cons;
static char *f3_log;

const char *f3_row_label(const struct f3_row *w)
{
	static char b[NF3][48];
	int i = (int)(w - format3.rows);

	if (w->format == MMAPQ_FORMAT_INT)
		snprintf(b[i], sizeof(b[i]), "int, %u/batch", w->batch);
	else
		snprintf(b[i], sizeof(b[i]), "line %s, %u/batch", size_label(w->size), w->batch);
	return b[i];
}

static void not_measured(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void not_measured(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(format3.why, sizeof(format3.why), fmt, ap);
	va_end(ap);
	note("format 3: not measured: %s", format3.why);
}

static bool build_failed(const char *what)
{
	snprintf(format3.why, sizeof(format3.why), "%s failed (see %s)", what, f3_log);
	format3.failed = true;
	failed = true;
	note("format 3: FAILED: %s", format3.why);
	return false;
}

/* argv from a string of flags separated by spaces, after the n given. */
static int add_flags(char **argv, int n, int max, char *flags)
{
	char *save = NULL;
	for (char *t = strtok_r(flags, " ", &save); t && n < max - 1; t = strtok_r(NULL, " ", &save))
		argv[n++] = t;
	argv[n] = NULL;
	return n;
}

/* The commit: --format3-rev, else the parent of the one that made mmapq.h
 * say file version 4.  false (not measured, said) if there is none. */
static bool find_rev(const char *src, char *rev, size_t revlen)
{
	char out[128] = "";
	char *ask[] = {(char *)"git", (char *)"-C", (char *)src, (char *)"rev-parse", (char *)"--verify",
	               (char *)"-q", (char *)"HEAD", NULL};

	if (run_tool(ask, f3_log, out, sizeof(out)) != 0) {
		not_measured("no git history in %s (a tarball?)", src);
		return false;
	}
	if (!opt.f3_rev) {
		char *log[] = {(char *)"git", (char *)"-C", (char *)src, (char *)"log", (char *)"--reverse",
		               (char *)"--format=%H", (char *)"-G", (char *)"define MMAPQ_FILE_VERSION +UINT32_C\\(4\\)",
		               (char *)"HEAD", (char *)"--", (char *)"common/queue/include/mmapq.h", NULL};
		if (run_tool(log, f3_log, out, sizeof(out)) != 0 || !out[0]) {
			not_measured("git history in %s has no commit that made mmapq.h say file version 4",
			             src);
			return false;
		}
		snprintf(rev, revlen, "%s^", out);
	} else {
		snprintf(rev, revlen, "%s", opt.f3_rev);
	}
	{
		char spec[160];
		char *verify[] = {(char *)"git", (char *)"-C", (char *)src, (char *)"rev-parse", (char *)"--verify",
		                  (char *)"-q", spec, NULL};
		snprintf(spec, sizeof(spec), "%s^{commit}", rev);
		if (run_tool(verify, f3_log, out, sizeof(out)) != 0 || !out[0]) {
			not_measured("commit %s is not in the git history (a shallow clone?)", rev);
			return false;
		}
		snprintf(rev, revlen, "%s", out);
	}
	{
		char *subject[] = {(char *)"git", (char *)"-C", (char *)src, (char *)"log", (char *)"-1",
		                   (char *)"--format=%h (%cs)", rev, NULL};
		run_tool(subject, f3_log, format3.rev, sizeof(format3.rev));
	}
	return true;
}

/* libmmapq 1 and format3_peer.c into dir/format3_peer.so; its path, or
 * NULL (not measured or failed, said). */
static char *build_peer(const char *dir)
{
	const char *src = MMAPQ_BENCH_SOURCE_DIR;
	char rev[64], *tar = tu_path(dir, "format3.tar"), *qdir = tu_path(dir, "common/queue");
	char *inc = tu_path(qdir, "include"), *obj = tu_path(dir, "obj"), *so = tu_path(dir, "format3_peer.so");
	char *map = tu_path(dir, "format3_peer.map"), *peer = tu_path(src, "tests/bench/format3_peer.c");
	char *bench_dir = tu_path(src, "tests/bench"), *pattern = tu_path(qdir, "*.c"), *ret = NULL;
	char flags[512], incq[PATH_MAX + 2], inci[PATH_MAX + 2], incb[PATH_MAX + 2], mapopt[PATH_MAX + 32];
	glob_t g = {0};
	int nobj = 0;

	snprintf(format3.cflags, sizeof(format3.cflags), "%s %s", MMAPQ_BENCH_CC, MMAPQ_BENCH_LIB_CFLAGS);
	if (!find_rev(src, rev, sizeof(rev)))
		goto out;
	note("format 3: libmmapq 1 from %s", format3.rev);
	{
		char *archive[] = {(char *)"git", (char *)"-C", (char *)src, (char *)"archive", (char *)"-o", tar, rev,
		                   (char *)"common/queue", NULL};
		char *untar[] = {(char *)"tar", (char *)"-xf", tar, (char *)"-C", (char *)dir, NULL};
		if (run_tool(archive, f3_log, NULL, 0) != 0 || run_tool(untar, f3_log, NULL, 0) != 0) {
			build_failed("git archive of common/queue");
			goto out;
		}
	}
	if (mkdir(obj, 0700) < 0 || glob(pattern, 0, NULL, &g) != 0) {
		build_failed("listing common/queue/*.c");
		goto out;
	}
	snprintf(incq, sizeof(incq), "-I%s", qdir);
	snprintf(inci, sizeof(inci), "-I%s", inc);
	snprintf(incb, sizeof(incb), "-I%s", bench_dir);
	/* the library as libmmapq 2 is compiled (PIC, hidden), less its
	 * warnings; then the benchmark's ends with the benchmark's -O3 */
	for (size_t i = 0; i <= g.gl_pathc; i++) {
		const char *c = i < g.gl_pathc ? g.gl_pathv[i] : peer;
		char *argv[64], o[PATH_MAX + 16];
		int n = 0;
		if (i < g.gl_pathc && !strcmp(strrchr(c, '/'), "/fault.c"))
			continue; /* the crash tests' fault points: compiled to nothing without it */
		snprintf(flags, sizeof(flags), "%s", MMAPQ_BENCH_LIB_CFLAGS);
		argv[n++] = (char *)MMAPQ_BENCH_CC;
		n = add_flags(argv, n, 40, flags);
		argv[n++] = (char *)"-std=gnu11";
		argv[n++] = (char *)"-D_GNU_SOURCE";
		argv[n++] = (char *)"-fPIC";
		argv[n++] = (char *)"-fvisibility=hidden";
		argv[n++] = (char *)"-pthread";
		if (i == g.gl_pathc)
			argv[n++] = (char *)"-O3";
		argv[n++] = inci; /* libmmapq 1's mmapq.h before anything else */
		argv[n++] = incq;
		if (i == g.gl_pathc)
			argv[n++] = incb;
		argv[n++] = (char *)"-c";
		argv[n++] = (char *)c;
		argv[n++] = (char *)"-o";
		snprintf(o, sizeof(o), "%s/%d.o", obj, nobj++);
		argv[n++] = o;
		argv[n] = NULL;
		if (run_tool(argv, f3_log, NULL, 0) != 0) {
			build_failed("compiling libmmapq 1");
			goto out;
		}
	}
	{
		static const char version_script[] =
			"{ global: format3_prod; format3_cons; format3_version; local: *; };\n";
		char *argv[64];
		int n = 0;
		glob_t og = {0};
		char *ofiles = tu_path(obj, "*.o");

		if (tu_write_file(map, version_script, sizeof(version_script) - 1) < 0 ||
		    glob(ofiles, 0, NULL, &og) != 0) {
			free(ofiles);
			build_failed("writing the version script");
			goto out;
		}
		free(ofiles);
		snprintf(mapopt, sizeof(mapopt), "-Wl,--version-script=%s", map);
		argv[n++] = (char *)MMAPQ_BENCH_CC;
		argv[n++] = (char *)"-shared";
		argv[n++] = (char *)"-pthread";
		argv[n++] = mapopt;
		argv[n++] = (char *)"-o";
		argv[n++] = so;
		for (size_t i = 0; i < og.gl_pathc && n < 62; i++)
			argv[n++] = og.gl_pathv[i];
		argv[n] = NULL;
		n = run_tool(argv, f3_log, NULL, 0);
		globfree(&og);
		if (n != 0) {
			build_failed("linking libmmapq 1");
			goto out;
		}
	}
	ret = strdup(so);
out:
	globfree(&g);
	free(tar);
	free(qdir);
	free(inc);
	free(obj);
	free(so);
	free(map);
	free(peer);
	free(bench_dir);
	free(pattern);
	return ret;
}

static bool load_peer(const char *so)
{
	void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	uint32_t (*version)(void);

	if (!h) {
		snprintf(format3.why, sizeof(format3.why), "dlopen: %s", dlerror());
		goto bad;
	}
	*(void **)&f3_prod = dlsym(h, "format3_prod");
	*(void **)&f3_cons = dlsym(h, "format3_cons");
	*(void **)&version = dlsym(h, "format3_version");
	if (!f3_prod || !f3_cons || !version || version() != 3) {
		snprintf(format3.why, sizeof(format3.why), "%s: not the format-3 peer", so);
		goto bad;
	}
	/* the old library must not have bound to the new one's symbols */
	if (dlsym(h, "mmapq_open")) {
		snprintf(format3.why, sizeof(format3.why), "%s exports mmapq_open", so);
		goto bad;
	}
	return true; /* kept loaded for the children */
bad:
	format3.failed = true;
	failed = true;
	note("format 3: FAILED: %s", format3.why);
	return false;
}

static uint32_t pow2_ceil(uint64_t v)
{
	uint32_t p = 2;
	while (p < v && p < MMAPQ_CAPACITY_MAX_V3)
		p *= 2;
	return p;
}

static void rows_init(void)
{
	int k = 0;

	for (int b = 0; b < 2; b++)
		for (int si = -1; si < NSIZES; si++) {
			struct f3_row *w = &format3.rows[k];
			uint32_t size = si < 0 ? 8 : sizes[si], slot;

			if (si >= 0 && !(opt.size_mask & (1u << si)))
				continue;
			w->size = size;
			w->format = si < 0 ? MMAPQ_FORMAT_INT : MMAPQ_FORMAT_LINE;
			w->ring[0] = ring_bytes(size);
			w->cap[0] = ring_cap(size);
			w->batch = ring_batch(w->cap[0], b ? opt.big_batch : opt.batch);
			if (b && w->batch == ring_batch(w->cap[0], opt.batch))
				continue; /* the ring is too small for a bigger batch: the same row */
			slot = mmapq_slot_size_v3(MMAPQ_VERSION_3, w->format, size);
			w->cap[1] = pow2_ceil(w->cap[0]);
			w->ring[1] = (uint64_t)w->cap[1] * slot;
			k++;
		}
	format3.nrows = k;
}

/* One run of row w on format 4 (side 0) or 3 (1): seconds, or < 0. */
static double f3_once(struct f3_row *w, int side, uint64_t n)
{
	struct cell c = {.tr = &tr_mmapq, .size = w->size, .n = n, .format = w->format};
	int r;

	cell_init(&c);
	c.frame = ring_frame(w->size);
	c.ring_bytes = w->ring[0];
	c.cap = w->cap[side];
	c.batch = w->batch;
	if (tr_mmapq.setup(&c, format3.why, sizeof(format3.why)) != 0) {
		cell_teardown(&c);
		return -1;
	}
	r = run_pair(side ? f3_prod : tr_mmapq.prod, side ? f3_cons : tr_mmapq.cons, &c, format3.why,
	             sizeof(format3.why));
	cell_teardown(&c);
	if (r < 0)
		return -1;
	if (ctl->verified != n) {
		snprintf(format3.why, sizeof(format3.why), "verified %" PRIu64 " of %" PRIu64, ctl->verified, n);
		return -1;
	}
	total_verified += n;
	return (double)(ctl->t_end - ctl->t_start) / 1e9;
}

static double f3_calibrate_once(uint64_t n, void *arg)
{
	return f3_once(arg, 0, n);
}

/* The least k with P(X >= k) <= 5% for X ~ Binomial(n, 1/2); 0 if none. */
static int sign_threshold(int n)
{
	double tail = 0, c = 1; /* C(n, i), from i = n down */

	for (int k = n; k >= 0; k--) {
		if (k < n)
			c = c * (k + 1) / (n - k);
		tail += c / (double)(1ull << n);
		if (tail > 0.05)
			return k == n ? 0 : k + 1;
	}
	return 0;
}

static void summarise(struct f3_row *w)
{
	for (int s = 0; s < 2; s++) {
		spread(w->rps[s], w->nruns, &w->med[s], &w->lo[s], &w->hi[s]);
	}
	w->slower = w->faster = 0;
	for (int i = 0; i < w->nruns; i++) {
		w->ratio[i] = w->rps[0][i] / w->rps[1][i];
		w->slower += w->ratio[i] < 1;
		w->faster += w->ratio[i] > 1;
	}
	spread(w->ratio, w->nruns, &w->med_ratio, &w->lo_ratio, &w->hi_ratio);
	w->verdict = format3.sign_k && w->slower >= format3.sign_k ? -1 :
	             format3.sign_k && w->faster >= format3.sign_k ? 1 : 0;
}

void run_format3(void)
{
	struct load_mark m;
	char *dir = tu_path(tmpdir, "format3"), *so = NULL;
	int runs = opt.quick ? 1 : opt.f3_runs;

	format3.ran = true;
	f3_log = tu_path(tmpdir, "format3.log");
	if (mkdir(dir, 0700) < 0 || !(so = build_peer(dir)) || !load_peer(so))
		goto out;
	format3.measured = true;
	rows_init();
	format3.sign_k = sign_threshold(runs);
	load_mark(&m);
	for (int k = 0; k < format3.nrows; k++) {
		struct f3_row *w = &format3.rows[k];
		double el = opt.quick ? 0 : calibrate(f3_calibrate_once, w, &w->n);
		if (opt.quick)
			w->n = quick_n(w->size);
		if (el < 0)
			goto fail;
	}
	for (int run = 0; run < runs; run++)
		for (int k = 0; k < format3.nrows; k++) {
			struct f3_row *w = &format3.rows[k];
			for (int i = 0; i < 2; i++) {
				int side = (run + i) % 2; /* format 4 first in even rounds */
				double el = f3_once(w, side, w->n);
				if (el < 0)
					goto fail;
				w->rps[side][w->nruns] = (double)w->n / el;
			}
			w->nruns++;
		}
	for (int k = 0; k < format3.nrows; k++) {
		struct f3_row *w = &format3.rows[k];
		summarise(w);
		note("format 3: %-22s format 4 %12.0f records/s, format 3 %12.0f: %.3fx (slower in %d of %d rounds)",
		     f3_row_label(w), w->med[0], w->med[1], w->med_ratio, w->slower, w->nruns);
	}
	load_section_end("format 3", &m);
	goto out;
fail:
	format3.failed = true;
	failed = true;
	note("format 3: FAILED: %s", format3.why);
	load_section_end("format 3", &m);
out:
	free(so);
	free(dir);
}
