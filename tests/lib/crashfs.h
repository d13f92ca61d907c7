/* SPDX-License-Identifier: MIT */
/*
 * crashfs.h -- a tiny in-memory FUSE file system that can lose power, for
 * tests of what survives a crash (as LazyFS, SQLite's crash tests and the
 * ALICE study do it), and whose writes can be made to fail, for tests of
 * write-back errors (crashfs_set_fail).  One flat directory, at most
 * CRASHFS_FILES names and inodes, files up to CRASHFS_MAX_SIZE bytes,
 * served by a child process of the caller (the caller may map its files:
 * crashfs.c says why the server is not a thread); mount it in a private mount
 * namespace (unshare(CLONE_NEWNS)), as root.
 *
 * Each file has two contents: the current one, which reads see, and the
 * durable one, as of the file's last FSYNC (fsync, fdatasync and
 * msync(MS_SYNC) of a MAP_SHARED mapping all end in one; FLUSH and RELEASE,
 * which every close() sends, do not count).  The current content is what
 * has reached the server; which 4 KiB pages have changed since the last
 * FSYNC is kept per file.
 *
 * What reaches the server when (no writeback_cache, no direct_io; measured
 * by test_crashfs what_reaches on Linux 6.18):
 *   write(), pwrite()       at once, before the call returns (write-through)
 *   a store to a MAP_SHARED mapping, msync(MS_ASYNC)
 *                           nothing: the page is dirty in the kernel
 *   msync(MS_SYNC), fsync, fdatasync
 *                           the file's dirty pages (WRITE), then FSYNC
 *   close() of any descriptor of the file (also at exit)
 *                           the file's dirty pages (WRITE), then FLUSH
 *   munmap (also at exit)   the file's dirty pages (WRITE)
 *   the kernel's flusher    dirty pages older than vm.dirty_expire_centisecs
 *                           (30 s by default), or early past the dirty limits
 *                           (the kernel's documented pace; not measured)
 * With writeback_cache, write() would be held dirty in the kernel as stores
 * are; without it every write() is a candidate page for a torn cut, a
 * superset of the crash states.  direct_io is not needed: it would only
 * take write() and read() past the page cache, never the mappings.
 * A page still dirty in the kernel at a power cut never reaches the image:
 * the cut stops the server before it kills anyone, so the write-back that
 * the killed processes' exit does (unmapping, closing) is never served, and
 * fails once the connection is aborted.
 *
 * Durability of everything else:
 *   - a file's size is part of its content: write past the end, truncate,
 *     open with O_TRUNC and fallocate are durable at the file's next FSYNC,
 *     as its bytes are;
 *   - the namespace (create, link, unlink, rename) and the attributes
 *     (chmod, chown) are durable at once, as on a journaling file system
 *     that commits metadata synchronously (directory fsync is a no-op).
 *     So a file created, or written and renamed over another, without an
 *     FSYNC of its own survives with its last synced content, empty if it
 *     never had one: the zero-length file after a crash that a rename
 *     without fsync risks on ext4 and XFS.  Missing directory fsyncs are
 *     not found by this model.
 *
 * A power cut (crashfs_power_cut): the server stops answering (from then on
 * no request changes anything or gets an answer), the marked processes are
 * SIGKILLed, the FUSE connection is aborted (every request in flight, and
 * the write-back of every page still dirty in the kernel, fails) and the
 * mount is detached.  Every file named at the cut survives with:
 *   CRASHFS_CLEAN  its durable content;
 *   CRASHFS_TORN   its durable content, plus each page changed since its
 *                  last FSYNC taken whole from the current content with
 *                  probability keep, and its current size instead of the
 *                  durable one with probability keep (decided by a PRNG
 *                  seeded with seed: the same seed, the same crash).  Pages
 *                  are atomic (a disk writing 4 KiB blocks): nothing is torn
 *                  within a page.
 * A file that reads past what survived reads zeros.  crashfs_start then
 * mounts the survivors (all durable) for the test's fresh processes.  The
 * caller's own descriptors and mappings of the old mount are dead: writes
 * fail, a page not in memory raises SIGBUS; close and unmap them.  (A
 * directory open at the cut leaks libfuse's handle of it, 120 bytes that
 * LeakSanitizer reports.)
 */
#ifndef MMAPQ_CRASHFS_H
#define MMAPQ_CRASHFS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CRASHFS_FILES    32
#define CRASHFS_MAX_SIZE (4u << 20)
#define CRASHFS_PAGE     4096u
#define CRASHFS_MARKED   16

enum crashfs_cut { CRASHFS_CLEAN, CRASHFS_TORN };

struct crashfs_stats {
	/* requests answered since crashfs_start */
	uint64_t writes, written; /* WRITE requests and their bytes */
	uint64_t fsyncs;          /* FSYNC */
	uint64_t flushes;         /* FLUSH */
	/* the last power cut: pages changed since their file's last FSYNC,
	 * and how many of them the cut kept (TORN) */
	uint64_t unsynced, kept;
};

/* Mount at dir (an empty directory) and serve it from a new process: the
 * files that survived the last power cut, or none.  Mounts fusectl on
 * /sys/fs/fuse/connections if it is not there (the cut aborts through it).
 * 0, or -errno (e.g. -ENODEV without /dev/fuse). */
int crashfs_start(const char *dir);
/* pid (a process using the file system) is SIGKILLed at the power cut.
 * 0, -ENOSPC (more than CRASHFS_MARKED) or -errno of pidfd_open. */
int crashfs_mark(pid_t pid);
/* Lose power, as above; keep in [0, 1] is for CRASHFS_TORN.  Returns once
 * the marked processes are dead (the caller reaps its children) and the
 * mount is gone: 0, or -ETIMEDOUT if one of them outlived the deadline
 * (10 s), or -errno of the abort. */
int crashfs_power_cut(enum crashfs_cut mode, uint64_t seed, double keep);
/* From now on every WRITE (the kernel's write-back of a shared mapping's
 * dirty pages included) and every FSYNC answers EIO and changes nothing,
 * as a disk that went bad would (fail = true); or they work again. */
void crashfs_set_fail(bool fail);
/* Requests refused so since crashfs_start. */
uint64_t crashfs_refused(void);
/* The counters (frozen at a cut). */
struct crashfs_stats crashfs_stats(void);
/* For a test case (crashfs_case.c, with testutil.h): root, a private mount
 * namespace and crashfs started at a new directory beside a scratch
 * directory tu_mkdtemp(tag), or the case is skipped (tu_skip); at its exit
 * the children it tracked are killed, then crashfs is stopped.  The mount
 * point. */
char *crashfs_case_mount(const char *tag);
/* Unmount (if mounted), stop the server and forget every file. */
void crashfs_stop(void);

#endif
