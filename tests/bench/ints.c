/* SPDX-License-Identifier: MIT */
/*
 * mmapq_bench_ints -- the int parser and the int formatter alone, for
 * counting instructions: one input of N integers built in memory, parsed
 * (mmapq_parser_feed in 64 KiB chunks, values in batches as the producer
 * takes them) and formatted back (mmapq_fmt_int, as the consumer writes
 * them), the output compared with the input byte for byte.
 *
 *   mmapq_bench_ints [--input seq|random|full] [--count N] [--fast-path on|off]
 *
 * Inputs, one integer per line, canonical (so the formatted output must be
 * the input itself):
 *   seq     1..N, as `seq 1 N` prints them (1 to 7 digits for N = 10^6)
 *   random  magnitudes of 1 to 19 digits, half negative (the e2e input:
 *           a random 64-bit word shifted right by 1..63)
 *   full    uniform over all of int64_t (nearly all 18 or 19 digits)
 *
 * The parsing is ints_parse and the formatting ints_format (not inlined),
 * so callgrind counts each on its own:
 *   valgrind --tool=callgrind --toggle-collect=ints_parse mmapq_bench_ints ...
 *   valgrind --tool=callgrind --toggle-collect=ints_format mmapq_bench_ints ...
 * and the instructions per integer are the total over --count.  Without
 * valgrind it prints the ns per integer of each (one pass, a rough figure:
 * mmapq_bench --e2e has the pinned medians).  Exit 0 when every value and
 * every output byte matched, 1 otherwise, 64 usage.  ctest runs it on small
 * counts of each input (mmapq_bench_ints_smoke).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fmt.h"
#include "mmapq.h"
#include "parse.h"

#define CHUNK 65536

struct sink {
	int64_t *v;
	size_t n, cap;
	bool bad;
};

static int on_ints(void *ctx, const int64_t *v, size_t n)
{
	struct sink *s = ctx;

	if (n > s->cap - s->n)
		return -ENOSPC;
	memcpy(s->v + s->n, v, n * sizeof(*v));
	s->n += n;
	return 0;
}

static int on_record(void *ctx, const void *data, uint32_t len)
{
	return len == sizeof(int64_t) ? on_ints(ctx, data, 1) : -EINVAL;
}

static void on_error(void *ctx, const struct mmapq_parse_error *e)
{
	struct sink *s = ctx;

	fprintf(stderr, "mmapq_bench_ints: input:%" PRIu64 ":%" PRIu64 ": %s: '%s'\n", e->line,
	        e->column, e->what, e->excerpt);
	s->bad = true;
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

/* The count values of input kind (0 seq, 1 random, 2 full) into v. */
static void make_values(int kind, int64_t *v, size_t count)
{
	uint64_t s = UINT64_C(0x2545F4914F6CDD1D);

	for (size_t i = 0; i < count; i++) {
		uint64_t r = rng_next(&s);

		if (kind == 0) {
			v[i] = (int64_t)i + 1;
		} else if (kind == 1) {
			uint64_t u = rng_next(&s) >> (1 + r % 63);
			v[i] = (r & 64) ? -(int64_t)u : (int64_t)u;
		} else {
			v[i] = (int64_t)r;
		}
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((noinline)) static int ints_parse(struct mmapq_parser *p, const char *text, size_t len)
{
	int r = 0;

	for (size_t off = 0; off < len && r == 0; off += CHUNK)
		r = mmapq_parser_feed(p, text + off, len - off < CHUNK ? len - off : CHUNK);
	return r == 0 ? mmapq_parser_finish(p) : r;
}

/* out has room for n values at MMAPQ_FMT_INT_MAX bytes each. */
__attribute__((noinline)) static size_t ints_format(char *out, const int64_t *v, size_t n)
{
	char *o = out;

	for (size_t i = 0; i < n; i++)
		o += mmapq_fmt_int(o, v[i]);
	return (size_t)(o - out);
}

int main(int argc, char **argv)
{
	static const char *const kinds[] = {"seq", "random", "full"};
	int kind = 0;
	size_t count = 1000000;
	bool fast = true;
	struct sink s = {0};
	struct mmapq_parser *p;
	int64_t *want;
	char *text, *out;
	size_t len, olen;
	uint64_t t0, t1, t2;
	int r;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;

		if (!val)
			goto usage;
		i++;
		if (!strcmp(a, "--input")) {
			for (kind = 0; kind < 3 && strcmp(val, kinds[kind]); kind++)
				;
			if (kind == 3)
				goto usage;
		} else if (!strcmp(a, "--count")) {
			count = strtoull(val, &end, 10);
			if (*end || !count || count > (SIZE_MAX >> 6))
				goto usage;
		} else if (!strcmp(a, "--fast-path")) {
			if (strcmp(val, "on") && strcmp(val, "off"))
				goto usage;
			fast = !strcmp(val, "on");
		} else {
			goto usage;
		}
	}
	want = malloc(count * sizeof(*want));
	s.v = malloc(count * sizeof(*s.v));
	s.cap = count;
	/* the canonical text by snprintf, independent of the formatter */
	text = malloc(count * MMAPQ_FMT_INT_MAX);
	out = malloc(count * MMAPQ_FMT_INT_MAX);
	if (!want || !s.v || !text || !out) {
		fprintf(stderr, "mmapq_bench_ints: out of memory\n");
		return 1;
	}
	/* touched before the clock starts: no first-touch page faults in it */
	memset(s.v, 0, count * sizeof(*s.v));
	memset(out, 0, count * MMAPQ_FMT_INT_MAX);
	make_values(kind, want, count);
	len = 0;
	for (size_t i = 0; i < count; i++)
		len += (size_t)snprintf(text + len, MMAPQ_FMT_INT_MAX, "%" PRId64 "\n", want[i]);

	r = mmapq_parser_new(MMAPQ_FORMAT_INT, 8, on_record, on_error, &s, &p);
	if (r < 0) {
		fprintf(stderr, "mmapq_bench_ints: mmapq_parser_new: %s\n", strerror(-r));
		return 1;
	}
	mmapq_parser_set_fast_path(p, fast);
	if (fast)
		mmapq_parser_set_int_batch(p, on_ints);
	t0 = now_ns();
	r = ints_parse(p, text, len);
	t1 = now_ns();
	mmapq_parser_free(p);
	if (r < 0 || s.bad || s.n != count || memcmp(s.v, want, count * sizeof(*want))) {
		fprintf(stderr, "mmapq_bench_ints: %s: the parser gave %zu values (of %zu), %s\n",
		        kinds[kind], s.n, count, r < 0 ? strerror(-r) : "not the ones written");
		return 1;
	}
	t2 = now_ns();
	olen = ints_format(out, s.v, s.n);
	t2 = now_ns() - t2;
	if (olen != len || memcmp(out, text, len)) {
		fprintf(stderr, "mmapq_bench_ints: %s: the formatter's output is not the input\n",
		        kinds[kind]);
		return 1;
	}
	printf("%s: %zu integers, %zu bytes: parse %.2f ns, format %.2f ns per integer\n",
	       kinds[kind], count, len, (double)(t1 - t0) / (double)count,
	       (double)t2 / (double)count);
	free(want);
	free(s.v);
	free(text);
	free(out);
	return 0;
usage:
	fprintf(stderr, "usage: mmapq_bench_ints [--input seq|random|full] [--count N]"
	        " [--fast-path on|off]\n");
	return 64;
}
