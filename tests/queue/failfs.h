/* SPDX-License-Identifier: MIT */
/*
 * failfs.h -- a tiny in-memory FUSE file system whose writes can be made to
 * fail, for tests of write-back errors (msync of a shared mapping).
 *
 * One flat directory (no subdirectories), at most FAILFS_FILES names and
 * inodes, files up to FAILFS_MAX_SIZE bytes; create, open, read, write,
 * truncate, fallocate, chmod, chown, link, unlink, rename, fsync.  While
 * failing is on, every WRITE (including the kernel's write-back of the
 * dirty pages of a shared mapping) and every FSYNC answers EIO, as a disk
 * that went bad would.  The server runs in a thread of the calling process;
 * mount it in a private mount namespace (unshare(CLONE_NEWNS)).
 */
#ifndef MMAPQ_FAILFS_H
#define MMAPQ_FAILFS_H

#include <stdbool.h>
#include <stdint.h>

#define FAILFS_FILES    32
#define FAILFS_MAX_SIZE (4u << 20)

/* Mount at dir (an empty directory) and serve it from a new thread.
 * Returns 0, or -errno (e.g. -ENODEV without /dev/fuse). */
int failfs_start(const char *dir);
/* From now on WRITE and FSYNC answer EIO (fail = true) or work again. */
void failfs_set_fail(bool fail);
/* Writes refused so far (the kernel's write-back included). */
uint64_t failfs_refused(void);
/* Unmount and stop the thread. */
void failfs_stop(void);

#endif
