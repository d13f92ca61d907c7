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
 * Space: how many of the corpus's records fit in a queue of --space-size
 * bytes (64 MiB).  Format 4, measured: a real queue (size that, max_record
 * as shipped, or the longest line if longer), filled with mmapq_put, the
 * lines in corpus order (from the start again at its end), until the next
 * line does not fit.  Format 3, computed from its layout (mmapq_format.h,
 * versions 1-3): record_size the corpus's longest line, a slot 16 bytes +
 * record_size rounded up to 8, the capacity the largest power of two whose
 * slots fit in the same bytes (the file: those and the 4 KiB header, as
 * format 4's).
 *
 * End to end: the corpus through the daemons (format line, the shipped
 * size and max_record, sync never, output file:, consumer --count lines)
 * against the same two-process job over a pipe: a line reader that reads
 * the corpus in 1 MiB blocks, finds every line (memchr) and writes the
 * complete lines of each block to the pipe in one write(), and a writer
 * that reads the pipe and writes the file in 1 MiB blocks; the pipe's
 * buffer raised to 1 MiB (F_SETPIPE_SZ, unprivileged).  Both outputs are
 * compared with the corpus.  The two take turns, --runs times.
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

#define CORPUS_BLOCK (1u << 20) /* the pipe job's reads and writes */
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

/* Lines of the corpus put into a new queue of --space-size bytes until the
 * next does not fit (from the start again at the corpus's end). */
static int fill_queue(const struct corpus *c, struct space_result *s)
{
	char *path = tu_path(tmpdir, "space.q");
	int fd = open(c->path, O_RDONLY | O_CLOEXEC), ret = -1;
	const char *text = MAP_FAILED;
	struct mmapq *q = NULL;
	struct mmapq_error err;
	struct mmapq_status st;
	uint64_t put = 0;

	unlink(path);
	s->max_record = c->longest > c->max_record ? (uint32_t)c->longest : c->max_record;
	{
		struct mmapq_params p = {
			.path = path, .role = MMAPQ_ROLE_PRODUCER, .size = opt.space_size,
			.max_record = s->max_record, .format = MMAPQ_FORMAT_LINE, .sync = MMAPQ_SYNC_NEVER,
			.file_mode = 0600,
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
	for (uint64_t off = 0;; s->passes += off == 0) {
		const char *line = text + off, *nl = memchr(line, '\n', c->bytes - off);
		uint32_t len = (uint32_t)(nl - line);
		int r = mmapq_put(q, line, len);
		if (r == -ENOBUFS) {
			/* what the producer knows of the room may be old: ask (no wait) */
			uint64_t room;
			r = mmapq_reserve(q, len, mmapq_now_ns(), &room);
			if (r == -ETIMEDOUT || r == -EAGAIN)
				break; /* full */
			if (r == 0)
				r = mmapq_put(q, line, len);
			if (r == -ENOBUFS)
				break;
		}
		if (r < 0) {
			snprintf(s->why, sizeof(s->why), "mmapq_put of line %" PRIu64 ": %s", put, mmapq_strerror(r));
			goto out;
		}
		put++;
		s->bytes += len;
		if (put % 4096 == 0 && (r = mmapq_publish(q)) < 0) {
			snprintf(s->why, sizeof(s->why), "mmapq_publish: %s", mmapq_strerror(r));
			goto out;
		}
		off = (uint64_t)(nl + 1 - text);
		if (off == c->bytes)
			off = 0;
	}
	if (mmapq_publish(q) < 0 || mmapq_status(q, &st) < 0 || st.tail != put) {
		snprintf(s->why, sizeof(s->why), "the queue does not hold the %" PRIu64 " records put", put);
		goto out;
	}
	s->records = put;
	s->used = st.used_bytes;
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

/* Format 3's capacity, computed from its layout: record_size the longest
 * line, slots of 16 bytes + record_size rounded up to 8, the largest
 * power of two of them in the same ring bytes. */
static void format3_space(const struct corpus *c, struct space_result *s)
{
	s->record_size3 = c->longest < MMAPQ_MAX_RECORD_MIN ? MMAPQ_MAX_RECORD_MIN : (uint32_t)c->longest;
	s->capacity3 = 0;
	if (c->longest > MMAPQ_RECORD_SIZE_MAX_V3)
		return; /* format 3 cannot hold the longest line at all */
	s->slot3 = mmapq_slot_size_v3(MMAPQ_VERSION_3, MMAPQ_FORMAT_LINE, s->record_size3);
	for (uint64_t cap = 2; cap * s->slot3 <= opt.space_size && cap <= MMAPQ_CAPACITY_MAX_V3; cap *= 2)
		s->capacity3 = cap;
	s->file3 = MMAPQ_HEADER_SIZE + s->capacity3 * s->slot3;
}

void run_space(void)
{
	struct load_mark m;

	load_mark(&m);
	for (int k = 0; k < NCORPUS; k++) {
		struct space_result *s = &space[k];
		s->ran = true;
		if (!build_corpus()) {
			snprintf(s->why, sizeof(s->why), "no corpus");
			continue;
		}
		if (!corpus[k].lines) {
			snprintf(s->why, sizeof(s->why), "no line in the corpus");
			continue;
		}
		if (fill_queue(&corpus[k], s) < 0) {
			s->failed = true;
			failed = true;
			note("space: %s: FAILED: %s", corpus_label[k], s->why);
			continue;
		}
		format3_space(&corpus[k], s);
		s->measured = true;
		note("space: %s: %" PRIu64 " records in format 4, %" PRIu64 " in format 3 (record_size %" PRIu32
		     "): %.1fx", corpus_label[k], s->records, s->capacity3, s->record_size3,
		     s->capacity3 ? (double)s->records / (double)s->capacity3 : 0);
	}
	load_section_end("space", &m);
}

/* ---- end to end: the corpus through the daemons, and over a pipe -------------------- */

/* The line reader: whole lines of each 1 MiB block, one write() each. */
static int reader_child(const struct corpus *c, int out_fd)
{
	char *buf = xalloc(CORPUS_BLOCK);
	size_t have = 0;
	uint64_t lines = 0;
	int in_fd = open(c->path, O_RDONLY | O_CLOEXEC);

	if (in_fd < 0)
		return child_fail("%s: %s", c->path, strerror(errno));
	for (;;) {
		ssize_t k = read(in_fd, buf + have, CORPUS_BLOCK - have);
		const char *p, *end;
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return child_fail("read %s: %s", c->path, strerror(errno));
		if (k == 0)
			break;
		have += (size_t)k;
		p = buf;
		end = buf + have;
		for (const char *nl; (nl = memchr(p, '\n', (size_t)(end - p))); p = nl + 1) {
			if ((uint64_t)(nl - p) > c->max_record)
				return child_fail("line %" PRIu64 " is longer than %" PRIu32 " bytes", lines + 1,
				                  c->max_record);
			lines++;
		}
		if (p == buf && have == CORPUS_BLOCK)
			return child_fail("a line longer than the %u-byte block", CORPUS_BLOCK);
		if (p > buf && tu_write_all(out_fd, buf, (size_t)(p - buf)) < 0)
			return child_fail("write to pipe: %s", strerror(errno));
		have = (size_t)(end - p);
		memmove(buf, p, have);
	}
	if (have || lines != c->lines)
		return child_fail("read %" PRIu64 " lines (+%zu bytes), expected %" PRIu64, lines, have, c->lines);
	close(out_fd);
	return 0;
}

/* The writer: the pipe into the file, in 1 MiB blocks. */
static int writer_child(int in_fd, const char *out)
{
	char *buf = xalloc(CORPUS_BLOCK);
	size_t have = 0;
	int out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0640);

	if (out_fd < 0)
		return child_fail("%s: %s", out, strerror(errno));
	for (;;) {
		ssize_t k = read(in_fd, buf + have, CORPUS_BLOCK - have);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return child_fail("read pipe: %s", strerror(errno));
		have += (size_t)k;
		if ((k == 0 || have == CORPUS_BLOCK) && have) {
			if (tu_write_all(out_fd, buf, have) < 0)
				return child_fail("write %s: %s", out, strerror(errno));
			have = 0;
		}
		if (k == 0)
			break;
	}
	return close(out_fd) < 0 ? child_fail("close %s: %s", out, strerror(errno)) : 0;
}

static int pipe_line_job(const struct corpus *c, char *why, size_t whylen, double *secs,
                         struct child_use use[2])
{
	char *out = tu_path(tmpdir, "corpus-pipe.out");
	int pfd[2], st[2], ret = -1;
	pid_t pid[2];
	uint64_t t0, t1;

	unlink(out);
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		free(out);
		return -1;
	}
	(void)fcntl(pfd[1], F_SETPIPE_SZ, (int)CORPUS_BLOCK); /* as deep as an unprivileged one gets */
	t0 = now_ns();
	pid[0] = fork_pinned(cpu_a);
	if (pid[0] == 0) {
		close(pfd[0]);
		_exit(reader_child(c, pfd[1]));
	}
	pid[1] = fork_pinned(cpu_b);
	if (pid[1] == 0) {
		close(pfd[1]);
		_exit(writer_child(pfd[0], out));
	}
	close(pfd[0]);
	close(pfd[1]);
	wait_pair(pid, st, CHILD_TIMEOUT_MS, use);
	t1 = now_ns();
	if (tu_exit_code(st[0]) != 0 || tu_exit_code(st[1]) != 0) {
		snprintf(why, whylen, "reader exited %d, writer %d", tu_exit_code(st[0]), tu_exit_code(st[1]));
		goto out;
	}
	if (files_equal(c->path, out, why, whylen) < 0)
		goto out;
	*secs = (double)(t1 - t0) / 1e9;
	ret = 0;
out:
	unlink(out);
	free(out);
	return ret;
}

const char *corpus_job_label(enum corpus_job j)
{
	return j == CJ_DAEMONS ? "daemons, format line, as shipped, output file" :
	       "line reader | pipe | writer, 1 MiB blocks";
}

void run_corpus_e2e(void)
{
	const struct corpus *c = &corpus[CORPUS_ALL];
	struct load_mark m;

	load_mark(&m);
	for (int j = 0; j < NCJOBS; j++) {
		corpus_e2e[j].ran = true;
		corpus_e2e[j].rss_kib[0] = corpus_e2e[j].rss_kib[1] = -1;
	}
	if (!build_corpus()) {
		for (int j = 0; j < NCJOBS; j++)
			snprintf(corpus_e2e[j].why, sizeof(corpus_e2e[j].why), "no corpus");
		goto out;
	}
	for (int run = 0; run < opt.runs; run++)
		for (int j = 0; j < NCJOBS; j++) {
			struct e2e_result *res = &corpus_e2e[j];
			struct child_use use[2] = {{-1, 0}, {-1, 0}};
			double s = 0;
			int r;
			if (res->failed)
				continue;
			if (j == CJ_DAEMONS) {
				struct daemon_run job = {
					.cfg = {.format = "line"}, .input = c->path, .count = c->lines, .to_file = true,
				};
				r = run_daemons(&job, res->why, sizeof(res->why), &s, use);
			} else {
				r = pipe_line_job(c, res->why, sizeof(res->why), &s, use);
			}
			if (r < 0) {
				res->failed = true;
				failed = true;
				note("corpus end to end: %s: FAILED: %s", corpus_job_label((enum corpus_job)j), res->why);
				continue;
			}
			for (int i = 0; i < 2; i++) {
				if (use[i].rss_kib > res->rss_kib[i])
					res->rss_kib[i] = use[i].rss_kib;
				res->cpu[i][res->nruns] = use[i].cpu_s;
			}
			res->secs[res->nruns++] = s;
			total_verified += c->lines;
		}
	for (int j = 0; j < NCJOBS; j++) {
		struct e2e_result *res = &corpus_e2e[j];
		if (res->failed || !res->nruns)
			continue;
		res->med_secs = median(res->secs, res->nruns);
		for (int i = 0; i < 2; i++)
			res->med_cpu[i] = median(res->cpu[i], res->nruns);
		note("corpus end to end: %-48s %7.3f s  %6.2f M lines/s", corpus_job_label((enum corpus_job)j),
		     res->med_secs, (double)c->lines / res->med_secs / 1e6);
	}
out:
	load_section_end("corpus e2e", &m);
}

void corpus_free(void)
{
	for (int k = 0; k < NCORPUS; k++) {
		if (corpus[k].path)
			unlink(corpus[k].path);
		free(corpus[k].path);
		corpus[k].path = NULL;
	}
}

double corpus_speedup(void)
{
	const struct e2e_result *d = &corpus_e2e[CJ_DAEMONS], *p = &corpus_e2e[CJ_PIPE];
	if (!d->nruns || d->failed || !p->nruns || p->failed || d->med_secs <= 0)
		return 0;
	return p->med_secs / d->med_secs;
}
