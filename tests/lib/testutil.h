/* SPDX-License-Identifier: MIT */
/* testutil.h -- helpers shared by the test programs: scratch directories,
 * child processes with deadlines (never sleeps), and queue-state dumps for
 * failure messages. */
#ifndef MMAPQ_TESTUTIL_H
#define MMAPQ_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mmapq.h"

#define TEST_SKIP 77

/* A fresh directory under $TMPDIR (or /tmp), removed with its files by
 * tu_rmdir_r() (tu_main_cases removes those of a case that passed or
 * skipped, and keeps those of one that failed, for the post-mortem; only
 * the process that made them does).  Aborts the test on failure. */
char *tu_mkdtemp(const char *tag);
void tu_rmdir_r(const char *dir);
char *tu_path(const char *dir, const char *name); /* malloc'd dir/name */

/* "PROGRAM: what: strerror(errno)" on stderr, then exit 99 (the test
 * could not run: not a failure of the code under test). */
void tu_die(const char *what) __attribute__((noreturn));

/* The state of the queue at path, read by an observer.  A queue that cannot
 * be read is a failure: the reason and exit 1. */
struct mmapq_status tu_queue_status(const char *path);
/* The consumer name as the queue at path has it (an observer's view) in
 * *out; false if the queue cannot be read or has no consumer of that name. */
bool tu_consumer_status(const char *path, const char *name, struct mmapq_consumer_status *out);
/* The producer named name in ps[0..n) (mmapq_producers' list), or NULL. */
const struct mmapq_producer_status *tu_producer_named(const struct mmapq_producer_status *ps, int n,
                                                     const char *name);

/* asprintf that aborts the test on failure. */
char *tu_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* $MMAPQ_SOURCE_DIR (set by ctest); exits 99 if unset. */
const char *tu_source_dir(void);

/* What a failed check says: where, the condition, the message, then the
 * queue state at qpath. */
void tu_check_failed(const char *qpath, const char *file, int line, const char *cond,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Path of a built program: $MMAPQ_BIN_DIR/name (set by ctest). */
char *tu_bin(const char *name);

struct tu_proc {
	pid_t pid;
	int in_fd;   /* write end of the child's stdin, or -1 */
	int out_fd;  /* read end of the child's stdout, or -1 */
	int err_fd;  /* read end of the child's stderr, or -1 */
};

/* Start argv[0] with pipes for the streams asked for (others inherit).
 * env_extra: NULL or a NULL-terminated list of "K=V" added to the env. */
int tu_spawn(struct tu_proc *p, char *const argv[], char *const env_extra[],
             bool pipe_in, bool pipe_out, bool pipe_err);

/*
 * Start argv[0] with stdio[0..2] as its descriptors 0-2 (-1: /dev/null;
 * the caller keeps and closes its own copies), then the descriptors in
 * closed (1 << fd) closed, the resource limit applied if rlimit_resource
 * >= 0, and env_extra ("K=V"...) added.  Returns the pid.
 */
struct tu_child {
	int stdio[3];
	unsigned closed;
	int rlimit_resource;      /* RLIMIT_..., or -1 */
	unsigned long long rlimit; /* soft and hard */
	char *const *env_extra;
};
#define TU_CHILD_INIT {.stdio = {-1, -1, -1}, .rlimit_resource = -1}
pid_t tu_start(char *const argv[], const struct tu_child *c);

/* pipe2(fds, O_CLOEXEC); exits 99 if it fails. */
void tu_pipe(int fds[2]);
/* fflush(NULL), then fork(); exits 99 if fork fails. */
pid_t tu_fork(void);
/* The uid and gid of nobody: the user that cases checking a permission run
 * as when the suite runs as root (as CI does), whom no permission bit
 * would stop. */
#define TU_NOBODY 65534
/* In a child process (there is no way back): no supplementary groups, then
 * gid, then uid TU_NOBODY, in that order (each call needs the privilege
 * the next one gives up).  0, or -errno: not root, or a user namespace
 * without 65534 in it (the caller skips, 77). */
int tu_become_nobody(void);
/* The exit code of a child that was to run a program as nobody and could
 * not become it (it says why on stderr); no program of ours exits with it. */
#define TU_NOT_NOBODY 125

/* Children a test ends with, if it ends early: tu_track each one started,
 * tu_untrack it once reaped; tu_kill_tracked (atexit, so that a case that
 * fails leaves nothing running) SIGKILLs and reaps the rest, naming them.
 * It does nothing in another process than the one that tracked them (a
 * forked child that exits). */
void tu_track(pid_t pid);
void tu_untrack(pid_t pid);
void tu_kill_tracked(void);

/* Wait for the child to exit, at most timeout_ms (poll on a pidfd).
 * Returns the wait status, or -ETIMEDOUT (the child is left running). */
int tu_wait(pid_t pid, int timeout_ms);
/* SIGKILL and reap. */
void tu_kill(pid_t pid);

/* Read from fd until EOF or timeout_ms passes; returns a malloc'd,
 * NUL-terminated buffer (length in *len if len != NULL), NULL on timeout. */
char *tu_read_all(int fd, int timeout_ms, size_t *len);
/* Read from fd until the data read so far contains needle, or timeout. */
char *tu_read_until(int fd, const char *needle, int timeout_ms, size_t *len);
int tu_write_all(int fd, const void *buf, size_t len);
char *tu_read_file(const char *path, size_t *len);
int tu_write_file(const char *path, const void *buf, size_t len);
/* dir/name holding text (a configuration, say); the malloc'd path.  Dies
 * (tu_die) if it cannot be written. */
char *tu_write_in(const char *dir, const char *name, const char *text);

/*
 * A queue file as an older mmapq wrote it (format version 1, 2 or 3: a
 * ring of capacity fixed-size slots of record_size, mmapq_format.h,
 * "versions 1 to 3"), written from scratch at path: the records recs[0..n)
 * (for format int, each data an int64_t) at sequence numbers first,
 * first + 1, ...: the oldest kept is first, the tail first + n; the
 * consumers (position: a sequence number in [first, first + n]) in the
 * table of version 3 (max_consumers 8), or for versions 1 and 2 the first
 * of them as the one consumer, at first.  No id (version 3: made before
 * ids unless id_byte, which fills its 16 bytes).  0 or -errno (-EINVAL:
 * a record that does not fit, n over capacity).
 */
struct tu_legacy_consumer {
	const char *name;
	uint64_t position;
};
int tu_write_legacy_queue(const char *path, uint32_t version, uint32_t format, uint32_t capacity,
                          uint32_t record_size, uint64_t first, const struct mmapq_record *recs,
                          uint32_t n, const struct tu_legacy_consumer *cs, uint32_t ncs,
                          uint8_t id_byte);

/* Print the queue's header state (head, tail, pids, counters, the wait
 * words) to stderr, prefixed with why; used on every failure. */
void tu_dump_queue(const char *path, const char *why);

/* Until pid holds the producer (or consumer) role of the queue at path,
 * seen by an observer; false at the deadline. */
bool tu_wait_role(const char *path, pid_t pid, bool producer, int timeout_ms);

/* Is pid asleep in futex() on the word at offset in its mapping of the
 * queue file at path?  Read from /proc/PID/syscall (the system call and its
 * first argument) and /proc/PID/maps, never from the scheduler state alone:
 * "sleeping" says nothing about where. */
bool tu_in_futex_on(pid_t pid, const char *path, size_t offset);

/* For a test (or case) that needs fault points (MMAPQ_FAULT): exits 77,
 * saying why, unless the build has them (MMAPQ_FAULT_INJECTION, which sets
 * MMAPQ_FAULTS=1 for the tests). */
void tu_need_faults(void);

/* MMAPQ_TEST_TIME_FACTOR (default 1): how much slower than normal this run
 * may be (sanitizers, valgrind, a loaded machine); bounds on how long
 * something may take are multiplied by it. */
unsigned tu_time_factor(void);

/* Exit status helpers for wait statuses. */
int tu_exit_code(int status); /* exit code, or 128+signal, or -1 */

uint64_t tu_now_ms(void);

/*
 * A test program made of named cases, each its own ctest entry PROG.CASE
 * (mmapq_add_test ... CASES in tests/CMakeLists.txt), so that a skip is
 * reported as a skip:
 *   prog --list   the case names
 *   prog CASE     that case, in this process: exit 0 passed, 77 skipped,
 *                 anything else failed
 *   prog          every case, each in a child of its own; exit 0 if none
 *                 failed
 * A case fails through TU_EXPECT (which prints the queue state) or any
 * non-zero exit, skips with tu_skip().  The scratch directories it made
 * (tu_mkdtemp) are removed if it passed or skipped, kept if it failed.
 */
struct tu_case {
	const char *name;
	void (*run)(void);
};
int tu_main_cases(int argc, char **argv, const struct tu_case *cases, size_t n);
/* The same, with setup called first in each case's process: what every case
 * of the program starts from (a scratch directory, say). */
int tu_main_cases_setup(int argc, char **argv, const struct tu_case *cases, size_t n,
                        void (*setup)(void));
void tu_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* For case programs: on failure say what and where, print the queue state
 * at qpath (NULL: a test of something that has no queue), exit 1. */
#define TU_EXPECT(qpath, cond, ...)                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			tu_check_failed((qpath), __FILE__, __LINE__, #cond, __VA_ARGS__); \
			exit(1);                                                     \
		}                                                                    \
	} while (0)

/* TU_EXPECT of an equality that says both sides when they differ: integers
 * (any integer types, compared as 64-bit words), strings (NULL equals only
 * NULL) and n bytes of memory (where they first differ). */
#define TU_EXPECT_INT(qpath, a, b)                                                   \
	tu_expect_int((qpath), __FILE__, __LINE__, #a " == " #b, (uint64_t)(a), (uint64_t)(b))
#define TU_EXPECT_STR(qpath, a, b)                                                   \
	tu_expect_str((qpath), __FILE__, __LINE__, #a " == " #b, (a), (b))
#define TU_EXPECT_MEM(qpath, a, b, n)                                                \
	tu_expect_mem((qpath), __FILE__, __LINE__, #a " == " #b, (a), (b), (n))
void tu_expect_int(const char *qpath, const char *file, int line, const char *cond, uint64_t a,
                   uint64_t b);
void tu_expect_str(const char *qpath, const char *file, int line, const char *cond, const char *a,
                   const char *b);
void tu_expect_mem(const char *qpath, const char *file, int line, const char *cond, const void *a,
                   const void *b, size_t n);

#endif
