/* SPDX-License-Identifier: MIT */
/*
 * lines.c -- lines end to end (--e2e-lines): --lines64-count lines of 64
 * bytes (2,000,000) and --lines1k-count lines of 1 KiB (131,072), each a
 * '\n' more, generated and each distinct (write_lines), from a file
 * through the daemons (format line, size and max_record as shipped, sync
 * never, output file:), against cat < input | cat > file and the corpus
 * job's line reader | line writer over a pipe (corpus.c: line_job_once
 * runs the three, each process pinned as the daemons are, and compares
 * every output with its input byte for byte).  The jobs take turns in
 * each of --runs rounds; per input, each job's median time and range and
 * the CPU time of each side; cat | cat's time / the daemons' round by
 * round (target: at least 1.3x) and the line pipe job's.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench.h"
#include "config.h"
#include "testutil.h"

const uint32_t line_len[NLINPUTS] = {64, 1024};
struct corpus line_input[NLINPUTS];
struct e2e_result lines_e2e[NLINPUTS][NCJOBS];

static void make_line_input(int in, uint32_t max_record)
{
	struct corpus *c = &line_input[in];
	char name[32];
	int r;

	snprintf(name, sizeof(name), "lines-%u.txt", line_len[in]);
	c->path = tu_path(tmpdir, name);
	c->max_record = max_record;
	c->lines = in == LI_64 ? opt.lines64_count : opt.lines1k_count;
	c->longest = line_len[in];
	note("lines end to end: generating %" PRIu64 " lines of %u bytes...", c->lines, line_len[in]);
	r = write_lines(c->path, c->lines, line_len[in], &c->bytes);
	for (int j = 0; j < NCJOBS; j++) {
		struct e2e_result *res = &lines_e2e[in][j];
		res->ran = true;
		res->rss_kib[0] = res->rss_kib[1] = -1;
		if (r < 0) {
			res->failed = true;
			snprintf(res->why, sizeof(res->why), "cannot write %s: %s", c->path, strerror(-r));
		}
	}
	if (r < 0) {
		failed = true;
		note("lines end to end: %s", lines_e2e[in][0].why);
	}
}

void run_e2e_lines(void)
{
	struct mmapq_config defaults;
	struct load_mark m;

	load_mark(&m);
	mmapq_config_defaults(&defaults);
	shipped_size = defaults.size;
	shipped_max_record = defaults.max_record;
	for (int in = 0; in < NLINPUTS; in++)
		make_line_input(in, defaults.max_record);
	/* the inputs and jobs take turns: a slow spell of the machine hits all alike */
	for (int run = 0; run < opt.runs; run++)
		for (int in = 0; in < NLINPUTS; in++)
			for (int j = 0; j < NCJOBS; j++) {
				struct e2e_result *res = &lines_e2e[in][j];
				if (!res->failed && line_job_once(&line_input[in], (enum corpus_job)j, res) < 0)
					note("lines end to end: %u B: %s: FAILED: %s", line_len[in],
					     corpus_job_label((enum corpus_job)j), res->why);
			}
	for (int in = 0; in < NLINPUTS; in++) {
		line_jobs_summarize(lines_e2e[in]);
		for (int j = 0; j < NCJOBS; j++) {
			const struct e2e_result *res = &lines_e2e[in][j];
			if (!res->failed && res->nruns)
				note("lines end to end: %4u B: %-48s %7.3f s  %6.2f M lines/s", line_len[in],
				     corpus_job_label((enum corpus_job)j), res->med_secs,
				     (double)line_input[in].lines / res->med_secs / 1e6);
		}
	}
	load_section_end("lines e2e", &m);
}

void lines_free(void)
{
	line_files_free(line_input, NLINPUTS);
}
