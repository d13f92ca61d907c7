/* SPDX-License-Identifier: MIT */
/*
 * testproc.h -- driving the daemons from a test: children with piped
 * streams, every open stream drained while the test waits on one of them
 * (so no child ever blocks on a full pipe), all with deadlines.  Used by
 * test_socket and test_reload.
 */
#ifndef MMAPQ_TESTPROC_H
#define MMAPQ_TESTPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct out {
	int fd;
	char *s;
	size_t len, cap;
	bool eof;
};

/* what we write to a child (or a socket) while draining the others */
struct feed {
	int fd;
	const char *data;
	size_t len, off;
	int err; /* errno of a failed write */
};

struct kid {
	pid_t pid;
	int in;
	struct out *out, *err;
};

/* what pump() writes while draining; set it around a pump() loop */
extern struct feed *feeding;

/* The queue whose state is printed when a child does not exit in time. */
void tp_set_queue(const char *path);
/* Between tests: kill leftover children (naming them), free the streams. */
void tp_cleanup(void);

struct out *out_new(int fd);
void out_free(struct out *o);
const char *str(const struct out *o);
/* One poll over every open stream (and the feed), reading and writing what
 * is ready.  false if the deadline passed or there is nothing to wait for. */
bool pump(uint64_t deadline);
/* Drain everything until t contains needle (needle NULL: until t's EOF). */
bool until(struct out *t, const char *needle, int timeout_ms);
/* Drain everything until the feed is written completely. */
bool feed_all(struct feed *f, int timeout_ms);

void close_fd(int *fd);
void kid_close(struct kid *k);
/* argv: a program in MMAPQ_BIN_DIR, then the arguments, NULL-terminated */
char **av(const char *prog, ...);
void av_free(char **v);
struct kid spawn_env(char **argv, char *const env[], bool pin, bool pout, bool perr);
struct kid spawn(char **argv, bool pin, bool pout, bool perr);
/* Exit code within the deadline, or -1 (the child is then SIGKILLed). */
int wait_exit(struct kid *k, int timeout_ms);
/* "first\n...\nlast\n", malloc'd */
char *seq_lines(long first, long last);

#endif
