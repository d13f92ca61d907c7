/* SPDX-License-Identifier: MIT */
/*
 * fuzz_common.h -- small helpers shared by the libFuzzer targets (header
 * only: each target is one translation unit plus the library sources).
 *
 * A failed invariant calls FUZZ_CHECK's abort(), which libFuzzer reports as
 * a crash and saves the input that caused it.
 */
#ifndef MMAPQ_FUZZ_COMMON_H
#define MMAPQ_FUZZ_COMMON_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

__attribute__((format(printf, 3, 4), noreturn)) static void fuzz_fail(const char *file, int line,
                                                                      const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\n%s:%d: invariant failed: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

#define FUZZ_CHECK(cond, ...)                                     \
	do {                                                      \
		if (!(cond))                                      \
			fuzz_fail(__FILE__, __LINE__, __VA_ARGS__); \
	} while (0)

static char fuzz_dir[256];

static inline void fuzz_tmpdir_cleanup(void)
{
	DIR *d;
	struct dirent *e;

	if (!fuzz_dir[0])
		return;
	/* only what this process made: the files directly in its own directory */
	d = opendir(fuzz_dir);
	if (d) {
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				(void)unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	if (rmdir(fuzz_dir) < 0)
		fprintf(stderr, "fuzz: could not remove %s: %s\n", fuzz_dir, strerror(errno));
	fuzz_dir[0] = '\0';
}

/* A private scratch directory, on tmpfs when there is one (fast, and the
 * fsync of a queue creation costs nothing there).  Removed at exit. */
static inline const char *fuzz_tmpdir(void)
{
	const char *base;

	if (fuzz_dir[0])
		return fuzz_dir;
	base = getenv("MMAPQ_FUZZ_TMPDIR");
	if (!base || !*base)
		base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/mmapq-fuzz.XXXXXX", base);
	if (!mkdtemp(fuzz_dir)) {
		fprintf(stderr, "fuzz: mkdtemp %s: %s\n", fuzz_dir, strerror(errno));
		exit(2);
	}
	atexit(fuzz_tmpdir_cleanup);
	return fuzz_dir;
}

/* Make path hold exactly the n bytes at data (a regular file). */
static inline void fuzz_write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	const char *p = data;
	size_t done = 0;

	if (fd < 0) {
		fprintf(stderr, "fuzz: open %s: %s\n", path, strerror(errno));
		exit(2);
	}
	while (done < n) {
		ssize_t w = pwrite(fd, p + done, n - done, (off_t)done);
		if (w <= 0) {
			fprintf(stderr, "fuzz: write %s: %s\n", path, strerror(errno));
			exit(2);
		}
		done += (size_t)w;
	}
	if (ftruncate(fd, (off_t)n) < 0) {
		fprintf(stderr, "fuzz: ftruncate %s: %s\n", path, strerror(errno));
		exit(2);
	}
	close(fd);
}

/* The whole file into buf (at most cap bytes); returns its length. */
static inline size_t fuzz_read_file(const char *path, void *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t done = 0;

	if (fd < 0) {
		fprintf(stderr, "fuzz: open %s: %s\n", path, strerror(errno));
		exit(2);
	}
	for (;;) {
		ssize_t r = pread(fd, (char *)buf + done, cap - done, (off_t)done);
		if (r < 0) {
			fprintf(stderr, "fuzz: read %s: %s\n", path, strerror(errno));
			exit(2);
		}
		if (r == 0 || done + (size_t)r == cap) {
			done += (size_t)r;
			break;
		}
		done += (size_t)r;
	}
	close(fd);
	return done;
}

/* A descriptor of this process open on a file under dir (the library's:
 * the queue file, its lock file), or -1 if none is: whatever the library
 * opened for one input must be closed before the next.  Descriptors of the
 * sanitizer runtime (the pipes to llvm-symbolizer, started the first time
 * libFuzzer prints a NEW_FUNC line) are not the library's and do not count. */
static inline int fuzz_fd_open_under(const char *dir, char *what, size_t size)
{
	DIR *d = opendir("/proc/self/fd");
	size_t dlen = strlen(dir);
	struct dirent *e;
	int found = -1;

	if (!d)
		return -1;
	while (found < 0 && (e = readdir(d))) {
		char link[sizeof("/proc/self/fd/") + sizeof(e->d_name)];
		ssize_t k;

		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		k = readlink(link, what, size - 1);
		if (k <= 0)
			continue;
		what[k] = '\0';
		if (!strncmp(what, dir, dlen) && what[dlen] == '/')
			found = atoi(e->d_name);
	}
	closedir(d);
	return found;
}

#endif /* MMAPQ_FUZZ_COMMON_H */
