/* SPDX-License-Identifier: MIT */
/*
 * test_crashfs -- crashfs (crashfs.c), the file system that loses power,
 * does what crashfs.h says: what reaches it when, and what survives a cut.
 *
 *   what_reaches      the kernel's traffic: write() at once; stores to a
 *                     mapping and msync(MS_ASYNC) nothing; msync(MS_SYNC)
 *                     the dirty pages and FSYNC; any close() the dirty
 *                     pages and FLUSH; munmap the dirty pages
 *   write_unsynced    write() and close(), no fsync, CLEAN cut: the old
 *                     content (FLUSH and RELEASE make nothing durable); a
 *                     write() after the cut fails and is not there
 *   write_fsync       fsync and fdatasync: the new content
 *   mmap_msync        a mapping written, msync(MS_SYNC), written again, CLEAN
 *                     cut: exactly the synced state; its writer SIGKILLed
 *   dirty_at_cut      the same with TORN keeping every unsynced page that
 *                     reached the server: the pages still dirty in the
 *                     kernel at the cut (written back by the writer's exit)
 *                     are not there
 *   torn              TORN at keep 0.5: each page whole, old or new, some of
 *                     each, the same for the same seed; keep 0 and 1
 *   killed_writer     a process in a loop of stores and msync, killed by
 *                     the cut: every round it was told was synced survives,
 *                     nothing after
 *   namespace         create, rename, unlink, link and chmod durable at once,
 *                     a file's content only at its own fsync; fsync of the
 *                     directory works (and changes nothing)
 *   size              write past the end and truncate are content: durable
 *                     at fsync; TORN may keep the new size
 * Needs root for the mount namespace and /dev/fuse; exits 77 without them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crashfs.h"
#include "testutil.h"

#define PG        CRASHFS_PAGE
#define WAIT_MS   (10000 * (int)tu_time_factor())
#define EXPECT(cond, ...) TU_EXPECT(NULL, cond, __VA_ARGS__)

static char *g_mnt;

static void setup(void)
{
	g_mnt = crashfs_case_mount("crashfs");
}

/* name in the mount; one of a few static buffers */
static const char *at(const char *name)
{
	static char buf[4][PATH_MAX];
	static unsigned i;
	char *p = buf[i++ % 4];

	snprintf(p, PATH_MAX, "%s/%s", g_mnt, name);
	return p;
}

static int xopen(const char *name, int flags)
{
	int fd = open(at(name), flags | O_CLOEXEC, 0644);

	EXPECT(fd >= 0, "open %s: %s", name, strerror(errno));
	return fd;
}

/* pages [from, to) of fd all byte c, by pwrite */
static void put_pages(int fd, char c, size_t from, size_t to)
{
	char page[PG];

	memset(page, c, sizeof(page));
	for (size_t p = from; p < to; p++)
		EXPECT(pwrite(fd, page, PG, (off_t)(p * PG)) == PG, "pwrite: %s", strerror(errno));
}

/* A new file of pages pages of byte c, fsynced or not. */
static void make_file(const char *name, char c, size_t pages, bool sync)
{
	int fd = xopen(name, O_WRONLY | O_CREAT | O_TRUNC);

	put_pages(fd, c, 0, pages);
	EXPECT(!sync || fsync(fd) == 0, "fsync %s: %s", name, strerror(errno));
	close(fd);
}

/* The file holds exactly page i of byte want[i] for every i (want "":
 * the file is empty). */
static void expect_pages(const char *name, const char *want)
{
	size_t len, n = strlen(want);
	char *data = tu_read_file(at(name), &len);

	EXPECT(data, "%s is not there: %s", name, strerror(errno));
	EXPECT(len == n * PG, "%s has %zu bytes, want %zu pages (%s)", name, len, n, want);
	for (size_t i = 0; i < len; i++)
		EXPECT(data[i] == want[i / PG], "%s: byte %zu is '%c', want '%c' (pages %s)", name, i,
		       data[i], want[i / PG], want);
	free(data);
}

static void expect_absent(const char *name)
{
	struct stat st;

	EXPECT(stat(at(name), &st) < 0 && errno == ENOENT, "%s is there after the cut", name);
}

/* Lose power and mount what survived. */
static void cut(enum crashfs_cut mode, uint64_t seed, double keep)
{
	int r = crashfs_power_cut(mode, seed, keep);

	EXPECT(r == 0, "power cut: %s", strerror(-r));
	r = crashfs_start(g_mnt);
	EXPECT(r == 0, "mount after the cut: %s", strerror(-r));
}

/* ---- what reaches the server when --------------------------------------------- */

static void case_what_reaches(void)
{
	struct crashfs_stats s0, s;
	char *map;
	int fd, fd2;

	setup();
	make_file("f", 'o', 4, true);
	fd = xopen("f", O_RDWR);
	s0 = crashfs_stats();
	put_pages(fd, 'w', 0, 1);
	s = crashfs_stats();
	EXPECT(s.written - s0.written == PG, "write() of a page: %" PRIu64 " bytes reached the server"
	       " before it returned, want %u (written through)", s.written - s0.written, PG);
	map = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	EXPECT(map != MAP_FAILED, "mmap: %s", strerror(errno));
	s0 = crashfs_stats();
	memset(map + 2 * PG, 'm', 2 * PG);
	EXPECT(msync(map, 4 * PG, MS_ASYNC) == 0, "msync(MS_ASYNC): %s", strerror(errno));
	s = crashfs_stats();
	EXPECT(s.writes == s0.writes, "stores and msync(MS_ASYNC): %" PRIu64 " writes reached the"
	       " server, want none (the pages are dirty in the kernel)", s.writes - s0.writes);
	EXPECT(msync(map, 4 * PG, MS_SYNC) == 0, "msync(MS_SYNC): %s", strerror(errno));
	s = crashfs_stats();
	EXPECT(s.written - s0.written == 2 * PG && s.fsyncs == s0.fsyncs + 1,
	       "msync(MS_SYNC) of 2 dirty pages: %" PRIu64 " bytes, %" PRIu64 " FSYNC; want %u, 1",
	       s.written - s0.written, s.fsyncs - s0.fsyncs, 2 * PG);
	s0 = s;
	memset(map + 3 * PG, 'c', PG);
	fd2 = xopen("f", O_RDONLY); /* a descriptor that never wrote nor mapped */
	close(fd2);
	s = crashfs_stats();
	EXPECT(s.written - s0.written == PG && s.flushes == s0.flushes + 1 && s.fsyncs == s0.fsyncs,
	       "close() with a dirty page: %" PRIu64 " bytes, %" PRIu64 " FLUSH, %" PRIu64 " FSYNC;"
	       " want %u, 1, 0", s.written - s0.written, s.flushes - s0.flushes, s.fsyncs - s0.fsyncs,
	       PG);
	s0 = s;
	memset(map + 3 * PG, 'u', PG);
	EXPECT(munmap(map, 4 * PG) == 0, "munmap: %s", strerror(errno));
	s = crashfs_stats();
	EXPECT(s.written - s0.written == PG && s.flushes == s0.flushes && s.fsyncs == s0.fsyncs,
	       "munmap with a dirty page: %" PRIu64 " bytes, %" PRIu64 " FLUSH, %" PRIu64 " FSYNC;"
	       " want %u, 0, 0", s.written - s0.written, s.flushes - s0.flushes, s.fsyncs - s0.fsyncs,
	       PG);
	s0 = s;
	EXPECT(fsync(fd) == 0, "fsync: %s", strerror(errno));
	s = crashfs_stats();
	EXPECT(s.writes == s0.writes && s.fsyncs == s0.fsyncs + 1,
	       "fsync, nothing dirty: %" PRIu64 " writes, %" PRIu64 " FSYNC; want 0, 1",
	       s.writes - s0.writes, s.fsyncs - s0.fsyncs);
	close(fd);
	cut(CRASHFS_CLEAN, 0, 0);
	expect_pages("f", "womu");
	crashfs_stop();
}

/* ---- write() ------------------------------------------------------------------ */

static void case_write_unsynced(void)
{
	struct crashfs_stats s0, s;
	int fd, late;

	setup();
	make_file("f", 'o', 2, true);
	s0 = crashfs_stats();
	fd = xopen("f", O_WRONLY);
	put_pages(fd, 'n', 0, 2);
	close(fd);
	late = xopen("f", O_WRONLY);
	s = crashfs_stats();
	EXPECT(s.written - s0.written == 2 * PG && s.flushes > s0.flushes && s.fsyncs == s0.fsyncs,
	       "the writes and the close did not reach the server (%" PRIu64 " bytes, %" PRIu64
	       " FLUSH, %" PRIu64 " FSYNC)", s.written - s0.written, s.flushes - s0.flushes,
	       s.fsyncs - s0.fsyncs);
	EXPECT(crashfs_power_cut(CRASHFS_CLEAN, 0, 0) == 0, "power cut");
	EXPECT(pwrite(late, "x", 1, 0) < 0, "a write() after the cut succeeded");
	close(late);
	EXPECT(crashfs_start(g_mnt) == 0, "mount after the cut");
	expect_pages("f", "oo");
	crashfs_stop();
}

static void case_write_fsync(void)
{
	int fd;

	setup();
	make_file("fsync", 'o', 2, true);
	make_file("fdatasync", 'o', 2, true);
	make_file("none", 'o', 2, true);
	fd = xopen("fsync", O_WRONLY);
	put_pages(fd, 'n', 1, 2);
	EXPECT(fsync(fd) == 0, "fsync: %s", strerror(errno));
	close(fd);
	fd = xopen("fdatasync", O_WRONLY);
	put_pages(fd, 'n', 0, 1);
	EXPECT(fdatasync(fd) == 0, "fdatasync: %s", strerror(errno));
	close(fd);
	fd = xopen("none", O_WRONLY);
	put_pages(fd, 'n', 0, 2);
	close(fd);
	cut(CRASHFS_CLEAN, 0, 0);
	expect_pages("fsync", "on");
	expect_pages("fdatasync", "no");
	expect_pages("none", "oo");
	crashfs_stop();
}

/* ---- a shared mapping --------------------------------------------------------- */

struct mapper {
	pid_t pid;
	int report, go; /* our ends of its pipes */
};

static void say(int fd, char c)
{
	if (write(fd, &c, 1) != 1)
		_exit(3);
}

/* A child, marked for the cut, that maps file m (8 pages) through a
 * descriptor it keeps open (so its exit writes the dirty pages back), stores
 * 'A' in pages 0-3, msync(MS_SYNC)s, says '1', waits for go, stores 'B' in
 * pages 2-7, says '2' and waits to be killed. */
static struct mapper start_mapper(void)
{
	int rep[2], go[2];
	struct mapper m;

	make_file("m", 'o', 8, true);
	tu_pipe(rep);
	tu_pipe(go);
	m.pid = tu_fork();
	if (m.pid == 0) {
		int fd = open(at("m"), O_RDWR);
		char *map = fd < 0 ? MAP_FAILED : mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED,
		                                       fd, 0);
		char c;

		close(rep[0]);
		close(go[1]);
		if (map == MAP_FAILED)
			_exit(2);
		memset(map, 'A', 4 * PG);
		if (msync(map, 8 * PG, MS_SYNC) < 0)
			_exit(2);
		say(rep[1], '1');
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		memset(map + 2 * PG, 'B', 6 * PG);
		say(rep[1], '2');
		read(go[0], &c, 1); /* until killed */
		_exit(2);
	}
	tu_track(m.pid);
	close(rep[1]);
	close(go[0]);
	m.report = rep[0];
	m.go = go[1];
	EXPECT(crashfs_mark(m.pid) == 0, "crashfs_mark");
	return m;
}

static void expect_said(struct mapper *m, char want)
{
	char *s = tu_read_until(m->report, (char[]){want, 0}, WAIT_MS, NULL);

	EXPECT(s, "the mapping's writer did not say '%c' in time", want);
	free(s);
}

static void expect_killed(pid_t pid)
{
	int st = tu_wait(pid, WAIT_MS);

	EXPECT(st != -ETIMEDOUT && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	       "the writer was not SIGKILLed by the cut (status %d)", st);
	tu_untrack(pid);
}

static void case_mmap_msync(void)
{
	struct mapper m;

	setup();
	m = start_mapper();
	expect_said(&m, '1');
	EXPECT(crashfs_stats().fsyncs == 2, "msync(MS_SYNC) did not reach the server as FSYNC"
	       " (%" PRIu64 " FSYNC, want make_file's and the msync's)", crashfs_stats().fsyncs);
	say(m.go, 'g');
	expect_said(&m, '2');
	cut(CRASHFS_CLEAN, 0, 0);
	expect_killed(m.pid);
	expect_pages("m", "AAAAoooo");
	crashfs_stop();
}

static void case_dirty_at_cut(void)
{
	struct crashfs_stats s0, s;
	struct mapper m;

	setup();
	m = start_mapper();
	expect_said(&m, '1');
	s0 = crashfs_stats();
	say(m.go, 'g');
	expect_said(&m, '2');
	s = crashfs_stats();
	if (s.writes != s0.writes)
		tu_skip("the kernel wrote the mapping back on its own before the cut (%" PRIu64
		        " writes): what the cut discards cannot be told apart", s.writes - s0.writes);
	/* 'B' is dirty in the kernel only; the writer's death (unmapping,
	 * closing) writes it back, after the cut */
	EXPECT(crashfs_power_cut(CRASHFS_TORN, 1, 1.0) == 0, "power cut");
	expect_killed(m.pid);
	s = crashfs_stats();
	EXPECT(s.unsynced == 0, "at the cut the server held %" PRIu64 " unsynced pages, want 0: the"
	       " pages dirty in the kernel reached it", s.unsynced);
	EXPECT(crashfs_start(g_mnt) == 0, "mount after the cut");
	expect_pages("m", "AAAAoooo");
	crashfs_stop();
}

/* ---- torn --------------------------------------------------------------------- */

#define TORN_PAGES 64

/* The file of TORN_PAGES pages synced as 'o', rewritten as 'n', cut TORN;
 * which pages survived new, as a string of o and n. */
static void torn_once(uint64_t seed, double keep, char *got)
{
	struct crashfs_stats s;
	size_t len, kept = 0;
	char *data;
	int fd;

	make_file("t", 'o', TORN_PAGES, true);
	fd = xopen("t", O_WRONLY);
	put_pages(fd, 'n', 0, TORN_PAGES);
	close(fd);
	EXPECT(crashfs_power_cut(CRASHFS_TORN, seed, keep) == 0, "power cut");
	s = crashfs_stats();
	EXPECT(crashfs_start(g_mnt) == 0, "mount after the cut");
	data = tu_read_file(at("t"), &len);
	EXPECT(data && len == TORN_PAGES * PG, "seed %" PRIu64 ": the file has %zu bytes, want %u",
	       seed, data ? len : 0, TORN_PAGES * PG);
	for (size_t p = 0; p < TORN_PAGES; p++) {
		got[p] = data[p * PG];
		EXPECT(got[p] == 'o' || got[p] == 'n', "seed %" PRIu64 ": page %zu begins with '%c'",
		       seed, p, got[p]);
		for (size_t i = 1; i < PG; i++)
			EXPECT(data[p * PG + i] == got[p], "seed %" PRIu64 ": page %zu torn at byte %zu"
			       " ('%c' then '%c')", seed, p, i, got[p], data[p * PG + i]);
		kept += got[p] == 'n';
	}
	got[TORN_PAGES] = 0;
	EXPECT(s.unsynced == TORN_PAGES && s.kept == kept, "seed %" PRIu64 ": %" PRIu64 " unsynced,"
	       " %" PRIu64 " kept; want %u and %zu (the pages found new)", seed, s.unsynced, s.kept,
	       TORN_PAGES, kept);
	free(data);
}

static void case_torn(void)
{
	char first[TORN_PAGES + 1], got[TORN_PAGES + 1], all[TORN_PAGES + 1];
	bool differ = false;

	setup();
	for (uint64_t seed = 1; seed <= 8; seed++) {
		size_t n = 0;

		torn_once(seed, 0.5, got);
		for (size_t p = 0; p < TORN_PAGES; p++)
			n += got[p] == 'n';
		EXPECT(n > 0 && n < TORN_PAGES, "seed %" PRIu64 " at keep 0.5 kept %zu of %u pages: %s",
		       seed, n, TORN_PAGES, got);
		if (seed == 1)
			memcpy(first, got, sizeof(first));
		differ |= strcmp(first, got) != 0;
	}
	EXPECT(differ, "eight seeds, one crash: %s", first);
	torn_once(1, 0.5, got);
	EXPECT(!strcmp(first, got), "seed 1 again: %s, the first time %s", got, first);
	memset(all, 'o', TORN_PAGES);
	all[TORN_PAGES] = 0;
	torn_once(1, 0.0, got);
	EXPECT(!strcmp(all, got), "keep 0: %s", got);
	memset(all, 'n', TORN_PAGES);
	torn_once(1, 1.0, got);
	EXPECT(!strcmp(all, got), "keep 1: %s", got);
	crashfs_stop();
}

/* ---- a writer killed by the cut ----------------------------------------------- */

#define LOOP_PAGES 8

/* The next round number the writer said (8 bytes); false at its end (EOF)
 * or the deadline. */
static bool next_round(int fd, uint64_t *r)
{
	uint64_t end = tu_now_ms() + (uint64_t)WAIT_MS;
	char buf[8];
	size_t got = 0;

	while (got < 8) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uint64_t now = tu_now_ms();
		ssize_t n;

		if (now >= end)
			return false;
		if (poll(&p, 1, (int)(end - now)) <= 0)
			continue;
		n = read(fd, buf + got, 8 - got);
		if (n == 0 || (n < 0 && errno != EINTR))
			return false;
		got += n > 0 ? (size_t)n : 0;
	}
	memcpy(r, buf, 8);
	return true;
}

static void case_killed_writer(void)
{
	uint64_t last = 0, r, *words;
	size_t len;
	char *data;
	int rep[2];
	pid_t pid;

	setup();
	make_file("w", 0, LOOP_PAGES, true);
	tu_pipe(rep);
	pid = tu_fork();
	if (pid == 0) {
		int fd = open(at("w"), O_RDWR);
		uint64_t *map = fd < 0 ? MAP_FAILED : mmap(NULL, LOOP_PAGES * PG, PROT_READ | PROT_WRITE,
		                                           MAP_SHARED, fd, 0);

		close(rep[0]);
		if (map == MAP_FAILED)
			_exit(2);
		/* round r: r in every word, msync, then say r */
		for (r = 1;; r++) {
			for (size_t i = 0; i < LOOP_PAGES * PG / 8; i++)
				map[i] = r;
			if (msync(map, LOOP_PAGES * PG, MS_SYNC) < 0 || write(rep[1], &r, 8) != 8)
				_exit(3);
		}
	}
	tu_track(pid);
	close(rep[1]);
	EXPECT(crashfs_mark(pid) == 0, "crashfs_mark");
	/* a few rounds in, at whatever point of a round it is */
	while (last < 20)
		EXPECT(next_round(rep[0], &last), "the writer stopped at round %" PRIu64, last);
	cut(CRASHFS_CLEAN, 0, 0);
	expect_killed(pid);
	while (next_round(rep[0], &last)) /* its rounds up to the cut */
		;
	close(rep[0]);
	data = tu_read_file(at("w"), &len);
	EXPECT(data && len == LOOP_PAGES * PG, "the file has %zu bytes, want %u", data ? len : 0,
	       LOOP_PAGES * PG);
	words = (uint64_t *)(void *)data;
	for (size_t i = 0; i < len / 8; i++)
		EXPECT(words[i] == words[0], "word %zu is %" PRIu64 ", word 0 %" PRIu64 " (one msync"
		       " is all or nothing)", i, words[i], words[0]);
	EXPECT(words[0] >= last && words[0] <= last + 1, "the file holds round %" PRIu64 "; the"
	       " writer was told round %" PRIu64 " was synced (want it or the next, whose msync may"
	       " have been done but not answered)", words[0], last);
	free(data);
	crashfs_stop();
}

/* ---- the namespace and the size ----------------------------------------------- */

static void case_namespace(void)
{
	struct stat st;
	int fd, dir;

	setup();
	/* first: the release of the directory, which the close sends in the
	 * background, is served before the cut (a handle left to the cut
	 * would be libfuse's leak) */
	dir = open(g_mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	EXPECT(dir >= 0 && fsync(dir) == 0, "fsync of the directory: %s", strerror(errno));
	close(dir);
	make_file("created", 'n', 1, false);
	make_file("dst", 'o', 1, true);
	make_file("tmp", 'n', 2, true);
	EXPECT(rename(at("tmp"), at("dst")) == 0, "rename: %s", strerror(errno));
	make_file("dst2", 'o', 1, true);
	make_file("tmp2", 'n', 2, false);
	EXPECT(rename(at("tmp2"), at("dst2")) == 0, "rename: %s", strerror(errno));
	make_file("gone", 'o', 1, true);
	EXPECT(unlink(at("gone")) == 0, "unlink: %s", strerror(errno));
	make_file("open_gone", 'o', 1, true);
	fd = xopen("open_gone", O_RDONLY);
	EXPECT(unlink(at("open_gone")) == 0, "unlink: %s", strerror(errno));
	make_file("a", 'o', 1, true);
	EXPECT(link(at("a"), at("b")) == 0, "link: %s", strerror(errno));
	EXPECT(chmod(at("a"), 0600) == 0, "chmod: %s", strerror(errno));
	cut(CRASHFS_CLEAN, 0, 0);
	close(fd);
	expect_pages("created", "");  /* the name, not the unsynced content */
	expect_pages("dst", "nn");    /* the synced file under its new name */
	expect_absent("tmp");
	expect_pages("dst2", "");     /* renamed over, content never synced */
	expect_absent("tmp2");
	expect_absent("gone");
	expect_absent("open_gone");
	expect_pages("a", "o");
	expect_pages("b", "o");
	EXPECT(stat(at("b"), &st) == 0 && st.st_nlink == 2 && (st.st_mode & 07777) == 0600,
	       "b: %lu links, mode %o; want 2, 600", (unsigned long)st.st_nlink,
	       st.st_mode & 07777);
	crashfs_stop();
}

static void case_size(void)
{
	int fd;

	setup();
	make_file("grown", 'o', 2, true);
	fd = xopen("grown", O_WRONLY);
	put_pages(fd, 'n', 2, 4);
	close(fd);
	make_file("shrunk", 'o', 4, true);
	EXPECT(truncate(at("shrunk"), PG) == 0, "truncate: %s", strerror(errno));
	make_file("shrunk_synced", 'o', 4, true);
	fd = xopen("shrunk_synced", O_WRONLY);
	EXPECT(ftruncate(fd, PG) == 0 && fsync(fd) == 0, "ftruncate, fsync: %s", strerror(errno));
	close(fd);
	make_file("emptied", 'o', 2, true);
	close(xopen("emptied", O_WRONLY | O_TRUNC));
	cut(CRASHFS_CLEAN, 0, 0);
	expect_pages("grown", "oo");
	expect_pages("shrunk", "oooo");
	expect_pages("shrunk_synced", "o");
	expect_pages("emptied", "oo");
	/* TORN keeping everything: the current sizes */
	fd = xopen("grown", O_WRONLY);
	put_pages(fd, 'n', 2, 4);
	close(fd);
	EXPECT(truncate(at("shrunk"), PG) == 0, "truncate: %s", strerror(errno));
	cut(CRASHFS_TORN, 1, 1.0);
	expect_pages("grown", "oonn");
	expect_pages("shrunk", "o");
	crashfs_stop();
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"what_reaches", case_what_reaches},   {"write_unsynced", case_write_unsynced},
		{"write_fsync", case_write_fsync},     {"mmap_msync", case_mmap_msync},
		{"dirty_at_cut", case_dirty_at_cut},   {"torn", case_torn},
		{"killed_writer", case_killed_writer}, {"namespace", case_namespace},
		{"size", case_size},
	};

	atexit(tu_kill_tracked); /* a failed case leaves no writer behind */
	return tu_main_cases(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
