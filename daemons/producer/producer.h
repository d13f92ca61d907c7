/* SPDX-License-Identifier: MIT */
/*
 * producer.h -- mmapq-producer's map: its state, and what each of its files
 * does, under the file's name.
 *
 *   main.c      start-up and shutdown, the loop, the generator, reload
 *   source.c    a source of records (stdin or one client): its parser, and
 *               putting its records into the queue
 *   input.c     standard input, read record-exactly
 *   clients.c   the socket server: clients, their replies, their deadlines
 *   protocol.c  every reply line (shared with `mmapqctl send`)
 *
 * Nothing read is ever left unpublished: in block mode a read takes at most
 * the bytes that complete records whose frames fit in the ring bytes known
 * to be free (producer.room), and everything read in one loop iteration is
 * published before the next wait.  A record that does not fit is not read:
 * the producer waits for room for exactly that record (producer.need).
 */
#ifndef MMAPQ_PRODUCER_H
#define MMAPQ_PRODUCER_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "log.h"
#include "mmapq.h"
#include "parse.h"
#include "service.h"

#define READ_CHUNK   (64u * 1024u) /* the most one read takes */
#define MAX_CLIENTS  64
#define MAX_LISTEN   8

enum input_kind { IN_STDIN, IN_SOCKET, IN_GENERATE };

/* How we can look at an input before taking bytes from it. */
enum src_kind {
	SRC_FILE,   /* regular file: read, then lseek back what is not taken */
	SRC_PIPE,   /* pipe or FIFO: tee() into a private pipe, then read */
	SRC_SOCKET, /* stream socket: recv(MSG_PEEK) */
	SRC_OTHER,  /* terminal, device: bounded reads only */
};

struct producer;

/* Where records come from: stdin, or one client connection. */
struct source {
	struct producer *p;
	int fd;
	enum src_kind kind;
	int tee[2];           /* SRC_PIPE: the private pipe tee() copies into; -1 until used */
	char name[48];
	struct mmapq_parser *parser;
	unsigned cut_flags;   /* how its reads are cut (mmapq_parser_cut): stdin MMAPQ_CUT_WHOLE */
	uint64_t partial;     /* bytes of an unfinished record at the end of what was parsed */
	uint64_t published, dropped, rejected, last_seq;
	uint64_t pending;     /* of published: put, but not yet published (mmapq_pending) */
	bool eof;             /* nothing more to read; parser not finished yet */
	bool finished;        /* parser finished: acknowledged once published */
	/* records read after a put was interrupted by the stop (put_stopped),
	 * in input order, each its 4-byte length and payload: put at shutdown
	 * if the mutex is to be had then (sources_put_held); in block mode also
	 * a record another producer of the queue took the room of, and those
	 * read after it: put before anything more is read, once there is room
	 * (sources_put_deferred) */
	uint8_t *held;
	size_t held_len, held_cap;
	uint64_t held_n;
	/* clients only (clients.c) */
	uint64_t since_ns;    /* when it connected */
	uint64_t progress_ns; /* last time it completed a record or finished: its record
	                         deadline counts from here, less the time the queue was full */
	uint64_t full_at_progress; /* producer.full_ns (clients_full_ns) at progress_ns */
	uint64_t ack_published, ack_dropped, ack_rejected; /* what its last ACK line said */
	uint64_t next_ack_ns; /* no ACK line before this ([producer] ack_interval) */
	bool acked;           /* its last line (OK or FAIL) is queued */
	bool gone;            /* its connection failed: closed at the next clients_ack */
	char *out;            /* replies not yet sent */
	size_t out_len, out_cap;
};

struct producer {
	struct mmapq *q;
	struct mmapq_config cfg;
	enum input_kind input;
	uint64_t room;             /* ring bytes surely free: mmapq_reserve's, less what was put since */
	uint64_t need;             /* block mode: the frame of a record that waits for room (0: none) */
	uint64_t grouped;          /* ring bytes put since the last publish (group commit) */
	struct source *needy;      /* whose record that is (NULL: the generator's, or it is gone) */
	int error;                 /* the first fatal error (-errno; 0: none), from a callback too */
	bool put_stopped;          /* a put gave up on the mutex for the stop: every later record is
	                              held by its source (struct source, held) */
	struct log_limit bad_limit, drop_limit, accept_limit, gone_limit;
	int listen_fd[MAX_LISTEN];
	unsigned n_listen;
	bool own_socket;           /* we created cfg.socket_path ourselves */
	uint64_t accept_resume_ns; /* not accepting before this (fds exhausted, all places busy) */
	uint64_t accept_backoff_ns;
	uint64_t n_accepted;       /* clients accepted so far: their names */
	uint64_t full_ns;          /* time the queue was full (block mode), in all ... */
	uint64_t full_since;       /* ... and since when it is now (0: it is not) */
	struct source *src[MAX_CLIENTS + 1];
	unsigned n_src;
	char *buf;                 /* READ_CHUNK bytes: what a read takes */
	uint64_t (*clock)(void);   /* CLOCK_MONOTONIC ns: mmapq_now_ns (a test's own clock) */
};

static inline bool producer_blocking(const struct producer *p)
{
	return p->cfg.on_full == MMAPQ_ON_FULL_BLOCK;
}

static inline uint64_t producer_now(const struct producer *p)
{
	return p->clock();
}

/* ---- source.c ---- */

/* A source reading fd (parsed as the configuration's format); NULL if out of
 * memory.  source_free(NULL) is a no-op; it closes fd unless it is stdin. */
struct source *source_new(struct producer *p, int fd, const char *name);
void source_free(struct source *s);
/* Parse n bytes the source sent; keeps s->partial up to date.  0, or the
 * queue's -errno (p->error set, said). */
int source_feed(struct producer *p, struct source *s, const char *data, size_t n);
/* Of the n bytes at buf the source sent, how many it may take now
 * (mmapq_parser_cut with p->room in block mode, with its flags and
 * extra); a record that does not fit waits for room (producer_wait). */
size_t source_cut(struct producer *p, struct source *s, const char *buf, size_t n, unsigned extra);
/* The most bytes (up to want) a blind read of the source may take now
 * (mmapq_parser_blind_bound, likewise); 0: not one, and *need is the room
 * one byte needs. */
size_t source_blind_bound(struct producer *p, struct source *s, size_t want, unsigned extra,
                          uint64_t *need);
/* Sources at their end of input: their last record (one without a final
 * separator) parsed, so they can be acknowledged once published. */
void sources_finish(struct producer *p);
/* At shutdown: the records held since a put gave up for the stop, put now
 * if the mutex is to be had (in order, each source's after its pending
 * ones); how many are still not put. */
uint64_t sources_put_held(struct producer *p);
/* Block mode, several producers on the queue: the records held because
 * another producer took the room they were read into, put in order as far
 * as there is room (the next one waits for room: producer_wait).  0, or a
 * queue -errno that ends the run. */
int sources_put_deferred(struct producer *p);
/* Whether a source holds records not yet put (and not for the stop). */
bool sources_deferred(const struct producer *p);
/* Room for what comes next (mmapq_reserve: for the record that waits, or
 * the smallest one; deadline 0: only look), into p->room; a record that
 * waits and now fits waits no more.  0, or the queue's -errno. */
int producer_refill(struct producer *p, uint64_t deadline_ns);
/* Block mode: a record of s (NULL: the generator's) needs a frame of need
 * bytes that p->room does not have: nothing more is read until there is
 * room for it (the first such record is the one waited for). */
void producer_wait(struct producer *p, struct source *s, uint64_t need);
/* Whether records may be read now: drop mode, or none waits for room. */
static inline bool producer_may_read(const struct producer *p)
{
	return !p->need || !producer_blocking(p);
}
/* A queue error that ends the run: said once, kept in p->error. */
int producer_fatal(struct producer *p, int r);
/* One record into the queue (s: the source it came from, or NULL): 0,
 * 1 (block mode, the generator's: no room after all, not made, it waits
 * for room), or -errno. */
int producer_put(struct producer *p, struct source *s, const void *data, uint32_t len);
/* After mmapq_publish: if nothing is pending any more, every source's
 * records are published. */
void producer_published(struct producer *p);

/* ---- input.c ---- */

/* Read stdin (at most what fits) and parse it.  0, or -errno (said). */
int input_read(struct producer *p, struct source *s);
/* At end of input, told without taking a byte.  Only for inputs that can
 * look ahead; false for the others. */
bool input_ended(const struct source *s);
/* Waiting for room, and stdin may have ended with nothing left to put:
 * whether it has. */
bool input_stdin_ended(struct producer *p);
/* A stop while stdin is in the middle of a record: read on, record-exactly,
 * to its end (bounded), or rewind a regular file to its start. */
void input_finish_on_stop(struct producer *p, struct source *s);

/* ---- clients.c ---- */

/* The listening sockets: passed by systemd, or [producer] socket.  0, or
 * -errno (said): -ENAMETOOLONG for a path too long, -ENOTSOCK for a passed
 * descriptor that is not a listening socket, what socket(), bind() or
 * listen() said. */
int clients_listen(struct producer *p, int n_passed);
/* Every client closed (none told anything more), every listening socket
 * closed, the socket file removed if we made it. */
void clients_close(struct producer *p);
/* A client on connection fd (ours from now on); false if it is refused
 * (every place taken, out of memory: fd closed). */
bool clients_add(struct producer *p, int fd);
/* The poll entries for the listening sockets and the clients, in that
 * order, into pf (MAX_LISTEN + MAX_CLIENTS); how many.  room: records can
 * be taken now (producer_may_read). */
unsigned clients_poll_set(struct producer *p, struct pollfd *pf, bool room);
/* How long the loop may wait before accepting resumes (UINT64_MAX: it
 * is not paused). */
uint64_t clients_poll_wait(const struct producer *p);
/* What poll said of the entries clients_poll_set made: replies sent,
 * records read (at most what fits), connections accepted.  0, or the
 * queue's -errno. */
int clients_poll_done(struct producer *p, const struct pollfd *pf);
/* Clients that completed no record for [producer] client_timeout: closed. */
void clients_expire(struct producer *p);
/* Client s completed a record, or finished: its record deadline starts
 * again. */
void client_progress(struct producer *p, struct source *s);
/* A reply line (n bytes, from protocol.h) for client s: every line is
 * kept (see OUT_MAX in clients.c). */
void client_reply(struct source *s, const char *line, size_t n);
/* After a publish: finished clients get their last line (verdict: a FAIL
 * reason for all of them, NULL for OK), the others ACK lines as they fall
 * due; replies sent as far as the clients take them; clients done (or
 * gone) closed. */
void clients_ack(struct producer *p, const char *verdict);
/* ns until an ACK line falls due (UINT64_MAX: none). */
uint64_t clients_ack_wait(const struct producer *p);
/* The queue is full and we are about to wait for room: everything read is
 * published, clients whose input ended get their OK, replies go out; the
 * clients' record deadlines stand still until clients_room.  0, or
 * -errno. */
int clients_serve_while_full(struct producer *p);
/* There is room again: the record deadlines run on. */
void clients_room(struct producer *p);

#endif
