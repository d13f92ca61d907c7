/* SPDX-License-Identifier: MIT */
/*
 * alone.c -- the parser and the formatter alone (--e2e): the work both
 * end-to-end jobs share, without the processes around it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench.h"
#include "fmt.h"
#include "mmapq.h"
#include "mmapq_format.h"
#include "parse.h"

/* The work both end-to-end jobs share, without the processes around it: the
 * parser over each input held in memory, fed in 64 KiB chunks as the
 * daemons and the pipe job read it, byte by byte (the old parser) and with
 * the fast path; and the formatter over the parsed values into a 64 KiB
 * buffer (reused, never written out), against snprintf.  One process,
 * pinned; the four take turns in each run; ns per integer, median of the
 * runs and their range. */
const char *const codec_key[NCODEC] = {"parse_old", "parse_new", "fmt", "snprintf"};
const char *const codec_label[NCODEC] = {
	[C_PARSE_OLD] = "parser, byte by byte (old)",
	[C_PARSE_NEW] = "parser, fast path (new)",
	[C_FMT] = "formatter, mmapq_fmt_int",
	[C_SNPRINTF] = "formatter, snprintf",
};
struct codec_result codec[NINPUTS][NCODEC];
bool codec_ran;
static bool codec_failed;

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
		return r < 0 || s->n != opt.e2e_count ? -1 : (double)(now_ns() - t0) / 1e9;
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

void run_codec(void)
{
	struct codec_sink s = {.v = xalloc(opt.e2e_count * sizeof(int64_t)), .cap = opt.e2e_count};
	char *out = xalloc(PIPE_CHUNK + 64);
	cpu_set_t was;
	bool pinned = cpu_a >= 0 && sched_getaffinity(0, sizeof(was), &was) == 0;

	codec_ran = true;
	if (pinned)
		pin(cpu_a);
	for (int in = 0; in < NINPUTS && !codec_failed; in++) {
		size_t len = (size_t)input_bytes[in];
		char *text = xalloc(len);
		FILE *f = fopen(input_path[in], "re");

		if (!f || fread(text, 1, len, f) != len) {
			note("codec: cannot read %s", input_path[in]);
			codec_failed = true;
		}
		if (f)
			fclose(f);
		for (int run = 0; run < opt.runs && !codec_failed; run++)
			for (int k = 0; k < NCODEC; k++) {
				double el = codec_once((enum codec_kind)k, text, len, &s, out);
				if (el < 0) {
					note("codec: %s on the %s input failed", codec_label[k], in_key[in]);
					codec_failed = true;
					break;
				}
				codec[in][k].ns[codec[in][k].nruns++] = el * 1e9 / (double)opt.e2e_count;
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
				spread(codec[in][k].ns, codec[in][k].nruns, &codec[in][k].med_ns, &codec[in][k].lo_ns,
				       &codec[in][k].hi_ns);
				note("alone: %-6s %-34s %7.2f ns per integer", in_key[in], codec_label[k],
				     codec[in][k].med_ns);
			}
	free(s.v);
	free(out);
}

int codec_speedup(int in, double *med, double *lo, double *hi)
{
	const struct codec_result *o = &codec[in][C_PARSE_OLD], *n = &codec[in][C_PARSE_NEW];

	return ratio_spread(o->ns, o->nruns, n->ns, n->nruns, med, lo, hi);
}
