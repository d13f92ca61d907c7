/* SPDX-License-Identifier: MIT */
/*
 * create.c -- a new queue file, built whole under a temporary name and
 * linked into place, so that nobody ever sees half of one, with its queue
 * id.
 */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"

static bool id_is_zero(const uint8_t *id)
{
	for (size_t i = 0; i < MMAPQ_ID_SIZE; i++)
		if (id[i])
			return false;
	return true;
}

/* 16 random bytes, never all zero (zero means "no id"). */
int new_id(uint8_t id[MMAPQ_ID_SIZE])
{
	size_t got = 0;

	while (got < MMAPQ_ID_SIZE) {
		ssize_t n = getrandom(id + got, MMAPQ_ID_SIZE - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return neg_errno();
		got += (size_t)n;
	}
	if (id_is_zero(id))
		id[0] = 1; /* one chance in 2^128 */
	return 0;
}

static void fsync_parent_dir(const char *path)
{
	char *dir = strdup(path), *slash;
	int fd;

	if (!dir)
		return;
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(dir);
}

/* The header of a new file of size bytes, through a mapping of its
 * pages: identity and geometry, a new id, a fresh mutex, synced. */
static int write_header(int fd, const struct mmapq_params *p, uint64_t size,
                        struct mmapq_error *err)
{
	struct mmapq_header *h = mmap(NULL, MMAPQ_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	int r;

	if (h == MAP_FAILED) {
		r = neg_errno();
		set_err(err, "%s: cannot map the new file: %s", p->path, strerror(-r));
		return r;
	}
	memcpy(h->magic, MMAPQ_MAGIC, sizeof(h->magic));
	h->version = MMAPQ_VERSION;
	h->header_size = MMAPQ_HEADER_SIZE;
	h->byte_order = MMAPQ_BYTE_ORDER;
	h->format = p->format;
	h->max_record = p->max_record;
	h->size = p->size;
	h->max_consumers = p->max_consumers ? p->max_consumers : MMAPQ_CONSUMERS_DEFAULT;
	h->max_producers = p->max_producers ? p->max_producers : MMAPQ_PRODUCERS_DEFAULT;
	h->file_size = size;
	h->created_usec = realtime_usec();
	h->state.clean = 1; /* empty, and on disk before it is linked into place */
	r = new_id(h->id);
	if (r == 0)
		r = init_mutex(h);
	if (r == 0 && msync(h, MMAPQ_HEADER_SIZE, MS_SYNC) < 0)
		r = neg_errno();
	munmap(h, MMAPQ_HEADER_SIZE);
	if (r < 0)
		set_err(err, "%s: cannot initialise the new file: %s", p->path, strerror(-r));
	return r;
}

/*
 * Build the whole file under a temporary name in the same directory, then
 * link() it into place: nobody can ever see a half-initialised header, and
 * of two creators racing exactly one link succeeds (the other gets EEXIST,
 * removes its copy and attaches to the winner's file).  posix_fallocate
 * makes a full disk an error here rather than a SIGBUS later.
 */
int create_file(const struct mmapq_params *p, struct mmapq_error *err)
{
	uint64_t size = mmapq_file_size(p->size);
	char *tmp;
	int fd, r;

	if (asprintf(&tmp, "%s.tmp.XXXXXX", p->path) < 0) {
		set_err(err, "%s: out of memory", p->path);
		return -ENOMEM;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = neg_errno();
		set_err(err, "%s: cannot create a temporary file next to it: %s", p->path, strerror(-r));
		free(tmp);
		return r;
	}
	if (fchmod(fd, p->file_mode ? p->file_mode : 0660) < 0) {
		r = neg_errno();
		set_err(err, "%s: cannot set mode %04o: %s", tmp, p->file_mode, strerror(-r));
		goto fail;
	}
	/* a signal handler (the caller's, or its timer) may cut a large
	 * allocation short: the call can simply be made again */
	do
		r = posix_fallocate(fd, 0, (off_t)size);
	while (r == EINTR);
	if (r) {
		r = -r;
		set_err(err, "%s: cannot allocate %" PRIu64 " bytes: %s", p->path, size, strerror(-r));
		goto fail;
	}
	r = write_header(fd, p, size, err);
	if (r < 0)
		goto fail;
	if (fsync(fd) < 0) {
		r = neg_errno();
		set_err(err, "%s: cannot write the new file: %s", p->path, strerror(-r));
		goto fail;
	}
	mmapq_fault("create.before_link");
	if (link(tmp, p->path) < 0) {
		r = neg_errno();
		if (r != -EEXIST)
			set_err(err, "%s: cannot create: %s", p->path, strerror(-r));
		goto fail;
	}
	unlink(tmp);
	close(fd);
	free(tmp);
	fsync_parent_dir(p->path);
	return 0;
fail:
	unlink(tmp);
	close(fd);
	free(tmp);
	return r;
}
