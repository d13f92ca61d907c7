/* SPDX-License-Identifier: MIT */
/*
 * testproc.h -- driving the daemons from a test: children with piped
 * streams, every open stream drained while the test waits on one of them
 * (so no child ever blocks on a full pipe), all with deadlines (the
 * library mmapq_testproc).
 */
#ifndef MMAPQ_TESTPROC_H
#define MMAPQ_TESTPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tp_out {
	int fd;
	char *s;
	size_t len, cap;
	bool eof;
};

/* what we write to a child (or a socket) while draining the others */
struct tp_feed {
	int fd;
	const char *data;
	size_t len, off;
	int err; /* errno of a failed write */
};

struct tp_kid {
	pid_t pid;
	int in;
	struct tp_out *out, *err;
};

/* what tp_pump() writes while draining; set it around a tp_pump() loop */
extern struct tp_feed *tp_feeding;

/* The queue whose state is printed when a child does not exit in time. */
void tp_set_queue(const char *path);
/* Between tests: kill leftover children (naming them), free the streams. */
void tp_cleanup(void);

struct tp_out *tp_out_new(int fd);
void tp_out_free(struct tp_out *o);
const char *tp_str(const struct tp_out *o);
/* One poll over every open stream (and the feed), reading and writing what
 * is ready.  false if the deadline passed or there is nothing to wait for. */
bool tp_pump(uint64_t deadline);
/* Drain everything until t contains needle (needle NULL: until t's EOF). */
bool tp_until(struct tp_out *t, const char *needle, int timeout_ms);
/* Drain everything until the feed is written completely. */
bool tp_feed_all(struct tp_feed *f, int timeout_ms);

void tp_close_fd(int *fd);
void tp_kid_close(struct tp_kid *k);
/* argv: a program in MMAPQ_BIN_DIR, then the arguments, NULL-terminated */
char **tp_av(const char *prog, ...);
void tp_av_free(char **v);
struct tp_kid tp_spawn_env(char **argv, char *const env[], bool pin, bool pout, bool perr);
struct tp_kid tp_spawn(char **argv, bool pin, bool pout, bool perr);
/* Exit code within the deadline, or -1 (the child is then SIGKILLed). */
int tp_wait_exit(struct tp_kid *k, int timeout_ms);
/* mmapqctl --config cfg a1 [a2] (a2 may be NULL) to its end: its stdout
 * (malloc'd); anything but exit 0 fails the test (the queue of
 * tp_set_queue printed). */
char *tp_ctl(const char *cfg, const char *a1, const char *a2, int timeout_ms);
/* "first\n...\nlast\n", malloc'd */
char *tp_seq_lines(long first, long last);

#endif
