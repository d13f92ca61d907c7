/* SPDX-License-Identifier: MIT */
/*
 * e2e.c -- the daemons end to end (--e2e): mmapq-producer reading integers
 * from a file into mmapq-consumer (output null and file:PATH), as shipped
 * and with a big ring, against the same job over a pipe (one process
 * parses with the same parser and writes binary int64s, the other formats
 * them with the same formatter), also with the old parser (fast path off);
 * two inputs: random magnitudes and `seq`-style 1..N.  Peak RSS and CPU
 * time of every process.  The daemons are the released ones (daemons-rel/
 * points to build/daemons: no fault points).
 *
 * Then the full backlog: the producer alone fills a ring of
 * --backlog-records int records and exits, the consumer alone drains them;
 * peak RSS of both.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "config.h"
#include "fmt.h"
#include "mmapq.h"
#include "parse.h"
#include "testutil.h"

/* Two inputs of opt.e2e_count integers, one per line, in canonical form: the
 * expected output of every job is the input file itself. */
const char *const in_key[NINPUTS] = {"random", "seq"};
const char *const in_label[NINPUTS] = {
	[IN_RAND] = "random: magnitudes of 1 to 19 digits, half of them negative",
	[IN_SEQ] = "seq: 1 to N, as `seq 1 N` prints them",
};
char *input_path[NINPUTS];
uint64_t input_bytes[NINPUTS];

/* The jobs: the daemons as shipped (the built-in size and max_record, or
 * --e2e-size/--e2e-max-record), the daemons with a big ring, and the
 * same work over a pipe, with the parser as it is and as it was (the fast
 * path off: byte by byte). */
const char *const job_key[NJOBS] = {"daemons", "daemons_big", "pipe", "pipe_old_parser", "cat"};
const char *const out_key[NOUTS] = {"null", "file"};

struct e2e_result e2e[NINPUTS][NJOBS][NOUTS];
uint64_t shipped_size;
uint32_t shipped_max_record;
long own_rss_kib;

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* count integers of kind in, one per line, into path; *bytes: its size. */
int write_input(const char *path, enum e2e_input in, uint64_t count, uint64_t *bytes)
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
			if (tu_write_all(fd, buf, len) < 0)
				goto bad;
			*bytes += len;
			len = 0;
		}
	}
	if (tu_write_all(fd, buf, len) < 0)
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

#define LINES_BLOCK (1u << 20) /* write_lines' writes */
#define LINE_INDEX 11          /* base-64 digits of a line's index: 66 bits */

int write_lines(const char *path, uint64_t count, uint32_t len, uint64_t *bytes)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
	char *buf = xalloc(LINES_BLOCK + len + 1);
	size_t fill = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), r = 0;

	*bytes = 0;
	if (fd < 0)
		r = -errno;
	for (uint64_t i = 0; i < count && r == 0 && len >= LINE_INDEX; i++) {
		char *line = buf + fill;
		uint64_t v = (i + 1) * K1;
		/* the index first, in full (no two lines alike), then characters
		 * that depend on it */
		for (unsigned j = 0; j < LINE_INDEX; j++)
			line[j] = digits[(i >> (6 * (LINE_INDEX - 1 - j))) & 63];
		for (unsigned j = LINE_INDEX; j < len; j++, v = v * K2 + j)
			line[j] = digits[(v >> 58) & 63];
		line[len] = '\n';
		fill += len + 1;
		if (fill >= LINES_BLOCK) {
			r = tu_write_all(fd, buf, fill);
			*bytes += fill;
			fill = 0;
		}
	}
	if (len < LINE_INDEX)
		r = -EINVAL;
	if (r == 0 && (r = tu_write_all(fd, buf, fill)) == 0)
		*bytes += fill;
	/* on disk before any clock starts: its write-back would run during
	 * the first round otherwise */
	if (r == 0 && fdatasync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

static int make_input(enum e2e_input in, uint64_t count)
{
	char name[32];

	snprintf(name, sizeof(name), "ints-%s.txt", in_key[in]);
	input_path[in] = tu_path(tmpdir, name);
	return write_input(input_path[in], in, count, &input_bytes[in]);
}

/* 0 if file b holds the bytes of file a; -1 and why says where not. */
int files_equal(const char *a, const char *b, char *why, size_t whylen)
{
	FILE *fa = fopen(a, "re"), *fb = fopen(b, "re");
	char *ba = xalloc(1 << 20), *bb = xalloc(1 << 20);
	uint64_t off = 0;
	int ret = -1;

	if (!fa || !fb) {
		snprintf(why, whylen, "cannot open %s", fa ? b : a);
		goto out;
	}
	for (;;) {
		/* short only at the end of a file, or on an error */
		size_t ka = fread(ba, 1, 1 << 20, fa), kb = fread(bb, 1, 1 << 20, fb);
		if (ferror(fa) || ferror(fb)) {
			snprintf(why, whylen, "read %s: %s", ferror(fa) ? a : b, strerror(errno));
			goto out;
		}
		if (memcmp(ba, bb, ka < kb ? ka : kb)) {
			size_t i = 0;
			while (ba[i] == bb[i])
				i++;
			snprintf(why, whylen, "%s differs from %s at byte %" PRIu64, b, a, off + i);
			goto out;
		}
		if (ka > kb)
			snprintf(why, whylen, "%s ends at byte %" PRIu64 ", %s goes on", b, off + kb, a);
		else if (kb > ka)
			snprintf(why, whylen, "%s is longer than %s (%" PRIu64 " bytes)", b, a, off + ka);
		else if (ka == 0)
			ret = 0;
		if (ka != kb || ka == 0)
			goto out;
		off += ka;
	}
out:
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	free(ba);
	free(bb);
	return ret;
}

/* The daemons' configuration: format, sync and geometry as d says (NULL, 0:
 * int, never; size and max_record as shipped, not set in the file). */
char *write_config(const char *name, const char *output, const struct daemon_cfg *d)
{
	char *path = tu_path(tmpdir, name);
	FILE *f = fopen(path, "w");
	if (!f) {
		note("%s: %s", path, strerror(errno));
		exit(EXIT_FAIL);
	}
	fprintf(f, "[queue]\npath = %s/%s.q\n", tmpdir, name);
	if (d->size)
		fprintf(f, "size = %" PRIu64 "\n", d->size);
	if (d->max_record)
		fprintf(f, "max_record = %" PRIu64 "\n", d->max_record);
	fprintf(f, "format = %s\nsync = %s\n", d->format ? d->format : "int", d->sync ? d->sync : "never");
	if (d->sync_interval)
		fprintf(f, "sync_interval = %" PRIu32 "\n", d->sync_interval);
	fprintf(f, "[producer]\ninput = stdin\non_full = block\n"
	        "[consumer]\noutput = %s\n[log]\nlevel = warning\nstats_interval = 0\n", output);
	fclose(f);
	return path;
}

int run_daemons(const struct daemon_run *job, char *why, size_t whylen, double *secs,
                struct child_use use[2])
{
	char *out = tu_path(tmpdir, "e2e-daemons.out");
	char output[PATH_MAX + 8];
	char *cfg, *qpath, *logp = tu_path(tmpdir, "e2e-daemons.log");
	char *prod = tu_path(bin_dir, "mmapq-producer"), *cons = tu_path(bin_dir, "mmapq-consumer");
	char count[32];
	int in_fd = -1, null_fd = -1, log_fd = -1, ret = -1;
	uint64_t t0, t1;

	snprintf(output, sizeof(output), job->to_file ? "file:%s" : "null", out);
	cfg = write_config("e2e.ini", output, &job->cfg);
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
	snprintf(count, sizeof(count), "%" PRIu64, job->count);
	in_fd = open(job->input, O_RDONLY | O_CLOEXEC);
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
	if (job->to_file && files_equal(job->input, out, why, whylen) < 0)
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

static int daemon_job(enum e2e_input in, bool to_file, uint64_t size, uint64_t max_record, char *why,
                      size_t whylen, double *secs, struct child_use use[2])
{
	struct daemon_run job = {
		.cfg = {.size = size, .max_record = max_record},
		.input = input_path[in], .count = opt.e2e_count, .to_file = to_file,
	};
	return run_daemons(&job, why, whylen, secs, use);
}

/* The pipe version: the parser process. */
struct pipe_parser {
	int fd;
	int64_t *buf;
	size_t n;
	int err;
	uint64_t bad;
};

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
			int r = tu_write_all(s->fd, s->buf, PIPE_CHUNK);
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

int parser_feed_fd(struct mmapq_parser *p, int in_fd, char *buf, const char *what)
{
	for (;;) {
		ssize_t k = read(in_fd, buf, PIPE_CHUNK);
		int r;
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return child_fail("read input: %s", strerror(errno));
		if (k == 0)
			return 0;
		if ((r = mmapq_parser_feed(p, buf, (size_t)k)) < 0)
			return child_fail("%s: %s", what, strerror(-r));
	}
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
	if ((r = parser_feed_fd(p, in_fd, in, "write to pipe")))
		return r;
	r = mmapq_parser_finish(p);
	if (r == 0)
		r = tu_write_all(out_fd, s.buf, s.n * sizeof(int64_t));
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
				r = tu_write_all(out_fd, out, olen);
				if (r < 0)
					return child_fail("write output: %s", strerror(-r));
				olen = 0;
			}
		}
		memmove(in, in + off, have - off);
		have -= off;
	}
	if (out_fd >= 0 && olen && (r = tu_write_all(out_fd, out, olen)) < 0)
		return child_fail("write output: %s", strerror(-r));
	if (have || count != expect)
		return child_fail("read %" PRIu64 " integers (+%zu bytes), expected %" PRIu64, count, have,
		                  expect);
	return 0;
}

static int parse_end(const void *ctx, int in_fd, int out_fd)
{
	return e2e_parse_child(in_fd, out_fd, *(const bool *)ctx);
}

static int print_end(const void *ctx, int in_fd, int out_fd)
{
	(void)ctx;
	return e2e_print_child(in_fd, out_fd, opt.e2e_count);
}

static int pipe_job(enum e2e_input in, bool to_file, bool old_parser, char *why, size_t whylen,
                    double *secs, struct child_use use[2])
{
	static const char *const names[2] = {"parser", "printer"};
	char *out = tu_path(tmpdir, "e2e-pipe.out");
	double s = 0;
	int ret;

	unlink(out);
	ret = pipe_pair(input_path[in], to_file ? out : NULL, parse_end, print_end, &old_parser, names,
	                &s, use, why, whylen);
	if (ret == 0 && to_file && files_equal(input_path[in], out, why, whylen) < 0)
		ret = -1;
	if (ret == 0)
		*secs = s;
	unlink(out);
	free(out);
	return ret;
}

const char *job_label(enum e2e_job j)
{
	static char b[NJOBS][80];
	switch (j) {
	case J_DAEMONS:
		snprintf(b[j], sizeof(b[j]), "daemons, %s (size %" PRIu64 " KiB, max_record %" PRIu64 ")",
		         opt.e2e_size || opt.e2e_max_record ? "configured" : "as shipped",
		         (opt.e2e_size ? opt.e2e_size : shipped_size) / 1024,
		         opt.e2e_max_record ? opt.e2e_max_record : shipped_max_record);
		break;
	case J_DAEMONS_BIG:
		snprintf(b[j], sizeof(b[j]), "daemons, size %" PRIu64 " KiB, max_record 8",
		         opt.e2e_big_size / 1024);
		break;
	case J_PIPE:
		snprintf(b[j], sizeof(b[j]), "parser | pipe | printer");
		break;
	case J_CAT:
		snprintf(b[j], sizeof(b[j]), "cat < input | cat (the same bytes, not parsed)");
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
		r = daemon_job(in, out == OUT_FILE_, opt.e2e_size, opt.e2e_max_record, res->why,
		               sizeof(res->why), s, use);
		break;
	case J_DAEMONS_BIG:
		r = daemon_job(in, out == OUT_FILE_, opt.e2e_big_size, 8, res->why, sizeof(res->why), s, use);
		break;
	case J_CAT:
		r = cat_pair(input_path[in], out == OUT_FILE_, res->why, sizeof(res->why), s, use);
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

void run_e2e(void)
{
	struct mmapq_config defaults;

	mmapq_config_defaults(&defaults);
	shipped_size = defaults.size;
	shipped_max_record = defaults.max_record;
	for (int in = 0; in < NINPUTS; in++) {
		note("end to end: generating %" PRIu64 " integers (%s)...", opt.e2e_count, in_key[in]);
		if (make_input((enum e2e_input)in, opt.e2e_count) < 0) {
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
	for (int run = 0; run < opt.runs; run++)
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
					total_verified += opt.e2e_count;
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
				     (double)opt.e2e_count / res->med_secs / 1e6);
			}
}

double e2e_speedup(enum e2e_input in, enum e2e_job j, enum e2e_job base, int out)
{
	const struct e2e_result *a = &e2e[in][j][out], *b = &e2e[in][base][out];
	if (!a->nruns || a->failed || !b->nruns || b->failed || a->med_secs <= 0)
		return 0;
	return b->med_secs / a->med_secs;
}

int secs_ratio(const struct e2e_result *base, const struct e2e_result *r, double *med, double *lo,
               double *hi)
{
	*med = *lo = *hi = 0;
	if (base->failed || r->failed)
		return 0;
	return ratio_spread(base->secs, base->nruns, r->secs, r->nruns, med, lo, hi);
}

void e2e_free(void)
{
	for (int in = 0; in < NINPUTS; in++) {
		free(input_path[in]);
		input_path[in] = NULL;
	}
}

/* ---- a full backlog: the daemons' memory (--e2e) ---------------------------- */

/*
 * The producer alone fills a ring of opt.backlog_records int records (16
 * bytes each: size = 16 x that, max_record 8) from a file of exactly that
 * many integers and exits (full, and its input ended); then the consumer alone drains it to a file, which
 * must equal the input.  Peak RSS (ru_maxrss) of each: the queue file's
 * pages that a daemon touched count in it (both touch all of them), the
 * rest is its own memory, which must not grow with the backlog.
 */
struct backlog_result backlog;

void run_backlog(void)
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
	snprintf(count, sizeof(count), "%" PRIu64, opt.backlog_records);
	cfg = write_config("backlog.ini", output,
	                   &(struct daemon_cfg){.size = opt.backlog_records * mmapq_frame_size(8), .max_record = 8});
	qpath = tu_path(tmpdir, "backlog.ini.q");
	unlink(qpath);
	unlink(out);
	note("backlog: generating %" PRIu64 " integers...", opt.backlog_records);
	if (write_input(in, IN_SEQ, opt.backlog_records, &bytes) < 0) {
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
			/* full: every byte of the ring holds a record nobody has consumed */
			struct mmapq_params qp = {.path = qpath, .role = MMAPQ_ROLE_OBSERVER};
			struct mmapq_status st;
			struct mmapq_error err;
			struct mmapq *q = NULL;
			if (mmapq_open(&qp, &q, &err) < 0 || mmapq_status(q, &st) < 0 ||
			    st.tail - st.head != opt.backlog_records || st.used_bytes != st.size) {
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
	total_verified += opt.backlog_records;
	note("backlog: %" PRIu64 " records, peak RSS producer %ld KiB, consumer %ld KiB",
	     opt.backlog_records, b->use[0].rss_kib, b->use[1].rss_kib);
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
