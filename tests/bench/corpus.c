/* SPDX-License-Identifier: MIT */
/*
 * corpus.c -- a real log corpus from the Debian packages on this machine:
 * the space it takes (--space) and the daemons carrying it (--corpus).
 *
 * The corpus: the lines of every /usr/share/doc/<package>/changelog.Debian.gz
 * and then of every changelog.gz (glob order), each file decompressed by
 * `gzip -dc` (zcat); "Debian changelogs" is the first part alone.  Each is
 * written into a file of the lines as the producer takes them (format
 * line), so that the daemons' output must equal it byte for byte: one CR
 * before a '\n' is not part of a line (the parser drops it), a line with a
 * NUL or longer than the shipped max_record would be refused (it is left
 * out), a file's last line without '\n' ends there.  Every such change is
 * counted and reported, with the files, lines, bytes and the longest line,
 * counted as the benchmark runs.  --corpus-lines N takes the first N lines
 * of each (--quick: 20000).
 *
 * Space: the bytes of queue each format needs to hold the whole corpus.
 * Format 4, measured: a real queue, max_record the longest line, its ring
 * the least power of two at or above the corpus's frames (8 bytes + the
 * line rounded up to 8, each) that max_record allows, every line put (a
 * line refused: the next power of two).  Format 3, computed from its layout
 * (mmapq_format.h, versions 1-3): record_size the longest line, a slot 16
 * bytes + record_size rounded up to 8, the capacity the least power of two
 * of slots at or above the lines.  The ratio of the two rings, and of the
 * bytes without the powers of two (lines x slot over the frames).
 *
 * End to end: the corpus through the daemons (format line, the shipped
 * size and max_record, sync never, output file:, consumer --count lines)
 * against two peers, each process pinned to the CPU of the daemon it
 * stands for: the same job over a pipe (a line reader that finds each line
 * and sends it as a record, a 4-byte length and its bytes, to a writer
 * that writes each with its '\n': 64 KiB reads and writes on every side),
 * and cat < corpus | cat > file (the same bytes, no lines found).  Every
 * output is compared with the corpus byte for byte.  They take turns,
 * --runs times.  The same three jobs carry the generated lines of
 * --e2e-lines (lines.c: line_job_once).
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "config.h"
#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define CORPUS_BLOCK (1u << 20) /* the corpus file's writes */
#define DOC_DIR "/usr/share/doc"

const char *const corpus_label[NCORPUS] = {
	[CORPUS_ALL] = "Debian changelogs and upstream changelogs",
	[CORPUS_DEBIAN] = "Debian changelogs",
};
const char *const corpus_key[NCORPUS] = {"changelogs", "debian_changelogs"};
struct corpus corpus[NCORPUS];
struct space_result space[NCORPUS];
struct e2e_result corpus_e2e[NCJOBS];
bool corpus_built;

/* The lines being written into one corpus file. */
struct corpus_out {
	struct corpus *c;
	int fd;
	char *buf;
	size_t len;
	bool full; /* --corpus-lines reached */
};

static int out_line(struct corpus_out *o, const char *line, size_t len)
{
	struct corpus *c = o->c;

	if (o->full)
		return 0;
	if (memchr(line, '\0', len)) {
		c->nul_dropped++;
		return 0;
	}
	if (len > c->max_record) {
		c->long_dropped++;
		return 0;
	}
	if (o->len + len + 1 > CORPUS_BLOCK) {
		if (tu_write_all(o->fd, o->buf, o->len) < 0)
			return -1;
		o->len = 0;
	}
	if (len + 1 > CORPUS_BLOCK) { /* longer than the buffer: on its own */
		if (tu_write_all(o->fd, line, len) < 0 || tu_write_all(o->fd, "\n", 1) < 0)
			return -1;
	} else {
		memcpy(o->buf + o->len, line, len);
		o->buf[o->len + len] = '\n';
		o->len += len + 1;
	}
	c->lines++;
	c->payload += len;
	c->frames += mmapq_frame_size(len);
	c->bytes += len + 1;
	if (len > c->longest)
		c->longest = len;
	if (opt.corpus_lines && c->lines >= opt.corpus_lines)
		o->full = true;
	return 0;
}

/* The lines of one decompressed file into every corpus file of outs. */
static int add_text(struct corpus_out *outs, int nouts, const char *text, size_t len)
{
	const char *p = text, *end = text + len;

	for (int i = 0; i < nouts; i++)
		outs[i].c->files++;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = (size_t)((nl ? nl : end) - p);
		bool cr = nl && l > 0 && p[l - 1] == '\r';
		for (int i = 0; i < nouts; i++) {
			bool was_full = outs[i].full;
			if (out_line(&outs[i], p, l - cr) < 0)
				return -1;
			outs[i].c->cr += cr && !was_full;
			outs[i].c->unterminated += !nl && !was_full;
		}
		p += l + (nl != NULL);
	}
	return 0;
}

/* gzip -dc path: the text (malloc'd), or NULL. */
static char *gunzip(const char *path, size_t *len)
{
	char *argv[] = {(char *)"gzip", (char *)"-dc", (char *)path, NULL};
	int pfd[2], null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	char *text = NULL;
	pid_t pid;

	if (null_fd < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
		if (null_fd >= 0)
			close(null_fd);
		return NULL;
	}
	pid = spawn(argv, null_fd, pfd[1], null_fd, -1);
	close(pfd[1]);
	close(null_fd);
	if (pid > 0) {
		struct child_use use;
		text = tu_read_all(pfd[0], CHILD_TIMEOUT_MS, len);
		if (wait_one(pid, CHILD_TIMEOUT_MS, &use) != 0) {
			free(text);
			text = NULL;
		}
	}
	close(pfd[0]);
	return text;
}

static bool build_corpus(void)
{
	static const char *const pattern[2] = {DOC_DIR "/*/changelog.Debian.gz", DOC_DIR "/*/changelog.gz"};
	struct corpus_out outs[NCORPUS];
	struct mmapq_config defaults;
	bool ok = true;

	if (corpus_built)
		return corpus[CORPUS_ALL].lines > 0;
	corpus_built = true;
	mmapq_config_defaults(&defaults);
	for (int k = 0; k < NCORPUS; k++) {
		char name[48];
		snprintf(name, sizeof(name), "corpus-%s.txt", corpus_key[k]);
		corpus[k].path = tu_path(tmpdir, name);
		corpus[k].max_record = defaults.max_record;
		outs[k] = (struct corpus_out){.c = &corpus[k], .buf = xalloc(CORPUS_BLOCK)};
		outs[k].fd = open(corpus[k].path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (outs[k].fd < 0)
			ok = false;
	}
	note("corpus: decompressing %s and %s...", pattern[0], pattern[1]);
	/* the Debian changelogs go into both corpora, the others into the first */
	for (int part = 0; part < 2 && ok; part++) {
		glob_t g = {0};
		if (glob(pattern[part], 0, NULL, &g) != 0) {
			globfree(&g);
			continue;
		}
		for (size_t i = 0; i < g.gl_pathc && ok && !outs[CORPUS_ALL].full; i++) {
			size_t len = 0;
			char *text = gunzip(g.gl_pathv[i], &len);
			if (!text) {
				note("corpus: gzip -dc %s failed: left out", g.gl_pathv[i]);
				corpus[CORPUS_ALL].unreadable++;
				continue;
			}
			ok = add_text(outs, part ? 1 : NCORPUS, text, len) == 0;
			free(text);
		}
		globfree(&g);
	}
	for (int k = 0; k < NCORPUS; k++) {
		if (outs[k].fd >= 0) {
			if (ok && tu_write_all(outs[k].fd, outs[k].buf, outs[k].len) < 0)
				ok = false;
			close(outs[k].fd);
		}
		free(outs[k].buf);
	}
	if (!ok) {
		note("corpus: writing %s: %s", tmpdir, strerror(errno));
		failed = true;
		return false;
	}
	for (int k = 0; k < NCORPUS; k++) {
		const struct corpus *c = &corpus[k];
		note("corpus: %s: %" PRIu64 " files, %" PRIu64 " lines, %" PRIu64 " bytes, longest %" PRIu64
		     " bytes", corpus_label[k], c->files, c->lines, c->bytes, c->longest);
	}
	if (!corpus[CORPUS_ALL].lines)
		note("corpus: no changelog under " DOC_DIR ": the corpus rows are not measured");
	return corpus[CORPUS_ALL].lines > 0;
}

/* ---- space ---------------------------------------------------------------------- */

static uint64_t pow2_at_least(uint64_t v, uint64_t least)
{
	uint64_t p = least;
	while (p < v)
		p *= 2;
	return p;
}

/* The corpus in a new format-4 queue of s->size4 bytes: every line put
 * (none may be refused), then what the queue says it holds.  0, 1 (a line
 * did not fit: try a bigger ring), or -1 (why says why). */
static int hold_corpus(const struct corpus *c, struct space_result *s)
{
	char *path = tu_path(tmpdir, "space.q");
	int fd = open(c->path, O_RDONLY | O_CLOEXEC), ret = -1;
	const char *text = MAP_FAILED;
	struct mmapq *q = NULL;
	struct mmapq_error err;
	struct mmapq_status st;
	uint64_t put = 0;

	unlink(path);
	{
		struct mmapq_params p = {
			.path = path, .role = MMAPQ_ROLE_PRODUCER, .size = s->size4, .max_record = s->max_record,
			.format = MMAPQ_FORMAT_LINE, .sync = MMAPQ_SYNC_NEVER, .file_mode = 0600,
		};
		int r = mmapq_open(&p, &q, &err);
		if (r < 0) {
			snprintf(s->why, sizeof(s->why), "mmapq_open: %.100s (%s)", err.msg, mmapq_strerror(r));
			goto out;
		}
	}
	if (fd < 0 || (text = mmap(NULL, c->bytes, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED) {
		snprintf(s->why, sizeof(s->why), "%s: %s", c->path, strerror(errno));
		goto out;
	}
	for (uint64_t off = 0; off < c->bytes; put++) {
		const char *line = text + off, *nl = memchr(line, '\n', c->bytes - off);
		uint32_t len = (uint32_t)(nl - line);
		int r = mmapq_put(q, line, len);
		if (r == -ENOBUFS) {
			ret = 1;
			goto out;
		}
		if (r < 0 || (put % 4096 == 4095 && (r = mmapq_publish(q)) < 0)) {
			snprintf(s->why, sizeof(s->why), "line %" PRIu64 ": %s", put + 1, mmapq_strerror(r));
			goto out;
		}
		off = (uint64_t)(nl + 1 - text);
	}
	if (mmapq_publish(q) < 0 || mmapq_status(q, &st) < 0 || st.tail != c->lines) {
		snprintf(s->why, sizeof(s->why), "the queue does not hold the %" PRIu64 " lines put", put);
		goto out;
	}
	s->used4 = st.used_bytes;
	s->file4 = st.file_size;
	ret = 0;
out:
	if (text != MAP_FAILED)
		munmap((void *)text, c->bytes);
	if (fd >= 0)
		close(fd);
	mmapq_close(q);
	unlink(path);
	free(path);
	return ret;
}

/* Format 4, measured: the least ring (a power of two) that takes the whole
 * corpus, max_record its longest line. */
static int format4_space(const struct corpus *c, struct space_result *s)
{
	int r;

	s->max_record = c->longest < MMAPQ_MAX_RECORD_MIN ? MMAPQ_MAX_RECORD_MIN : (uint32_t)c->longest;
	s->size4 = pow2_at_least(c->frames, MMAPQ_SIZE_MIN);
	while (mmapq_max_record_limit(s->size4) < s->max_record)
		s->size4 *= 2;
	while ((r = hold_corpus(c, s)) == 1 && s->size4 < MMAPQ_SIZE_MAX)
		s->size4 *= 2;
	if (r == 1)
		snprintf(s->why, sizeof(s->why), "no ring up to %" PRIu64 " bytes holds it", (uint64_t)MMAPQ_SIZE_MAX);
	return r == 0 ? 0 : -1;
}

/* Format 3, computed from its layout (mmapq_format.h, versions 1-3):
 * record_size the longest line, a slot 16 bytes + record_size rounded up
 * to 8, capacity the least power of two of slots that takes every line. */
static void format3_space(const struct corpus *c, struct space_result *s)
{
	s->record_size3 = c->longest < MMAPQ_MAX_RECORD_MIN ? MMAPQ_MAX_RECORD_MIN : (uint32_t)c->longest;
	s->slot3 = mmapq_slot_size_v3(MMAPQ_VERSION_3, MMAPQ_FORMAT_LINE, s->record_size3);
	s->capacity3 = pow2_at_least(c->lines, 2);
	s->ring3 = s->capacity3 * s->slot3;
	s->file3 = MMAPQ_HEADER_SIZE_V3 + s->ring3;
	/* beyond what format 3 allowed: the bytes are what it would have taken */
	s->fits3 = c->longest <= MMAPQ_RECORD_SIZE_MAX_V3 && s->capacity3 <= MMAPQ_CAPACITY_MAX_V3;
}

double space_ratio(const struct space_result *s, bool exact)
{
	if (!s->measured)
		return 0;
	return exact ? (double)(s->corpus->lines * s->slot3) / (double)s->corpus->frames :
	       (double)s->ring3 / (double)s->size4;
}

void run_space(void)
{
	struct load_mark m;

	load_mark(&m);
	for (int k = 0; k < NCORPUS; k++) {
		struct space_result *s = &space[k];
		s->ran = true;
		s->corpus = &corpus[k];
		if (!build_corpus()) {
			snprintf(s->why, sizeof(s->why), "no corpus");
			continue;
		}
		if (!corpus[k].lines) {
			snprintf(s->why, sizeof(s->why), "no line in the corpus");
			continue;
		}
		if (format4_space(&corpus[k], s) < 0) {
			s->failed = true;
			failed = true;
			note("space: %s: FAILED: %s", corpus_label[k], s->why);
			continue;
		}
		format3_space(&corpus[k], s);
		s->measured = true;
		note("space: %s: format 4 a ring of %" PRIu64 " bytes, format 3 %" PRIu64 " slots of %" PRIu64
		     " bytes: %.1fx (%.1fx without the powers of two)", corpus_label[k], s->size4, s->capacity3,
		     s->slot3, space_ratio(s, false), space_ratio(s, true));
	}
	load_section_end("space", &m);
}

/* ---- end to end: the corpus through the daemons, and cat | cat ------------------------ */

#define LJ_CHUNK (64u << 10)

/* The line reader: each line of in_fd (at most max bytes) as a record (a
 * 4-byte length, its bytes) to out_fd. */
static int lines_reader(int in_fd, int out_fd, uint32_t max)
{
	size_t cap = LJ_CHUNK + max + 1, have = 0, olen = 0;
	char *in = xalloc(cap), *out = xalloc(LJ_CHUNK + 4 + max);
	int r;

	for (;;) {
		ssize_t k = read(in_fd, in + have, cap - have);
		const char *p = in, *end, *nl;

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return child_fail("read corpus: %s", strerror(errno));
		have += (size_t)k;
		end = in + have;
		for (; (nl = memchr(p, '\n', (size_t)(end - p))) || (k == 0 && p < end); p = nl + 1) {
			uint32_t len = (uint32_t)((nl ? nl : end) - p);

			if (!nl)
				nl = end - 1; /* the last line, without its '\n' */
			memcpy(out + olen, &len, 4);
			memcpy(out + olen + 4, p, len);
			olen += 4 + len;
			if (olen >= LJ_CHUNK) {
				if ((r = tu_write_all(out_fd, out, olen)) < 0)
					return child_fail("write pipe: %s", strerror(-r));
				olen = 0;
			}
		}
		if (k == 0)
			break;
		have = (size_t)(end - p);
		memmove(in, p, have);
		if (have == cap)
			return child_fail("a line longer than %" PRIu32 " bytes", max);
	}
	if (olen && (r = tu_write_all(out_fd, out, olen)) < 0)
		return child_fail("write pipe: %s", strerror(-r));
	return 0;
}

/* The line writer: each record of in_fd (at most max bytes) and a '\n' to
 * out_fd; exactly expect of them. */
static int lines_writer(int in_fd, int out_fd, uint64_t expect, uint32_t max)
{
	size_t cap = LJ_CHUNK + 4 + max, have = 0, olen = 0;
	char *in = xalloc(cap), *out = xalloc(LJ_CHUNK + max + 1);
	uint64_t count = 0;
	int r;

	for (;;) {
		ssize_t k = read(in_fd, in + have, cap - have);
		size_t off = 0;

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return child_fail("read pipe: %s", strerror(errno));
		if (k == 0)
			break;
		have += (size_t)k;
		for (;;) {
			uint32_t len;

			if (have - off < 4)
				break;
			memcpy(&len, in + off, 4);
			if (have - off - 4 < len)
				break;
			memcpy(out + olen, in + off + 4, len);
			out[olen + len] = '\n';
			olen += len + 1;
			off += 4 + len;
			count++;
			if (olen >= LJ_CHUNK) {
				if ((r = tu_write_all(out_fd, out, olen)) < 0)
					return child_fail("write output: %s", strerror(-r));
				olen = 0;
			}
		}
		memmove(in, in + off, have - off);
		have -= off;
	}
	if (olen && (r = tu_write_all(out_fd, out, olen)) < 0)
		return child_fail("write output: %s", strerror(-r));
	if (have || count != expect)
		return child_fail("wrote %" PRIu64 " lines (+%zu bytes), expected %" PRIu64, count, have, expect);
	return 0;
}

static int lines_reader_end(const void *ctx, int in_fd, int out_fd)
{
	return lines_reader(in_fd, out_fd, ((const struct corpus *)ctx)->max_record);
}

static int lines_writer_end(const void *ctx, int in_fd, int out_fd)
{
	const struct corpus *c = ctx;

	return lines_writer(in_fd, out_fd, c->lines, c->max_record);
}

/* line reader | line writer, pinned as the daemons are. */
static int lines_job(const struct corpus *c, char *why, size_t whylen, double *secs,
                     struct child_use use[2])
{
	static const char *const names[2] = {"line reader", "writer"};
	char *out = tu_path(tmpdir, "corpus-lines.out");
	int ret;

	unlink(out);
	ret = pipe_pair(c->path, out, lines_reader_end, lines_writer_end, c, names, secs, use, why,
	                whylen);
	if (ret == 0)
		ret = files_equal(c->path, out, why, whylen) == 0 ? 0 : -1;
	unlink(out);
	free(out);
	return ret;
}

const char *corpus_job_label(enum corpus_job j)
{
	return j == CJ_DAEMONS ? "daemons, format line, as shipped, output file" :
	       j == CJ_LINES   ? "line reader | line writer (records over a pipe)" :
	                         "cat < input | cat > file";
}

int line_job_once(const struct corpus *c, enum corpus_job j, struct e2e_result *res)
{
	struct child_use use[2] = {{-1, 0}, {-1, 0}};
	double s = 0;
	int r;

	if (!res->ran)
		res->rss_kib[0] = res->rss_kib[1] = -1;
	res->ran = true;
	if (j == CJ_DAEMONS) {
		struct daemon_run job = {
			.cfg = {.format = "line"}, .input = c->path, .count = c->lines, .to_file = true,
		};
		r = run_daemons(&job, res->why, sizeof(res->why), &s, use);
	} else if (j == CJ_LINES) {
		r = lines_job(c, res->why, sizeof(res->why), &s, use);
	} else {
		r = cat_pair(c->path, true, res->why, sizeof(res->why), &s, use);
	}
	if (r < 0) {
		res->failed = true;
		failed = true;
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		if (use[i].rss_kib > res->rss_kib[i])
			res->rss_kib[i] = use[i].rss_kib;
		res->cpu[i][res->nruns] = use[i].cpu_s;
	}
	res->secs[res->nruns++] = s;
	total_verified += c->lines;
	return 0;
}

void line_jobs_summarize(struct e2e_result res[NCJOBS])
{
	for (int j = 0; j < NCJOBS; j++) {
		if (res[j].failed || !res[j].nruns)
			continue;
		res[j].med_secs = median(res[j].secs, res[j].nruns);
		for (int i = 0; i < 2; i++)
			res[j].med_cpu[i] = median(res[j].cpu[i], res[j].nruns);
	}
}

void run_corpus_e2e(void)
{
	const struct corpus *c = &corpus[CORPUS_ALL];
	struct load_mark m;

	load_mark(&m);
	if (!build_corpus()) {
		for (int j = 0; j < NCJOBS; j++) {
			corpus_e2e[j].ran = true;
			snprintf(corpus_e2e[j].why, sizeof(corpus_e2e[j].why), "no corpus");
		}
		goto out;
	}
	for (int run = 0; run < opt.runs; run++)
		for (int j = 0; j < NCJOBS; j++)
			if (!corpus_e2e[j].failed && line_job_once(c, (enum corpus_job)j, &corpus_e2e[j]) < 0)
				note("corpus end to end: %s: FAILED: %s", corpus_job_label((enum corpus_job)j),
				     corpus_e2e[j].why);
	line_jobs_summarize(corpus_e2e);
	for (int j = 0; j < NCJOBS; j++)
		if (!corpus_e2e[j].failed && corpus_e2e[j].nruns)
			note("corpus end to end: %-48s %7.3f s  %6.2f M lines/s", corpus_job_label((enum corpus_job)j),
			     corpus_e2e[j].med_secs, (double)c->lines / corpus_e2e[j].med_secs / 1e6);
out:
	load_section_end("corpus e2e", &m);
}

void line_files_free(struct corpus c[], int n)
{
	for (int k = 0; k < n; k++) {
		if (c[k].path)
			unlink(c[k].path);
		free(c[k].path);
		c[k].path = NULL;
	}
}

void corpus_free(void)
{
	line_files_free(corpus, NCORPUS);
}

double corpus_speedup(enum corpus_job peer)
{
	const struct e2e_result *d = &corpus_e2e[CJ_DAEMONS], *p = &corpus_e2e[peer];
	if (!d->nruns || d->failed || !p->nruns || p->failed || d->med_secs <= 0)
		return 0;
	return p->med_secs / d->med_secs;
}
