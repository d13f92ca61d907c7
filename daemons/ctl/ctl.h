/* SPDX-License-Identifier: MIT */
/*
 * ctl.h -- mmapqctl's map: the verbs (main.c's table) and where each lives.
 *
 *   main.c       options, the verb table, dispatch
 *   inspect.c    status, dump: the queue file read as an observer
 *   consumers.c  consumers, consumer remove
 *   send.c       send: records to the producer's socket (protocol.c parses
 *                the replies)
 *   recreate.c   recreate: a new file of the configured geometry with the
 *                old one's records and consumers
 *   metrics.c    metrics, metrics --http (one HTTP exchange)
 *   top.c        top: a live view in a terminal
 *   text.c       how bytes are printed: as text, JSON strings, hex
 *
 * Every verb returns an exit code (exit.h) and prints its errors itself.
 * The observers (status, dump, consumers, metrics, top) open the file
 * read-only, take no lock and write nothing: they can neither hang on a
 * stale mutex nor disturb the daemons.
 */
#ifndef MMAPQ_CTL_H
#define MMAPQ_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "mmapq.h"

/* ---- text.c ---- */
bool utf8_valid(const char *s, size_t len);
/* s must be valid UTF-8 (utf8_valid); written as is, escaped only where
 * JSON requires it. */
void json_string(FILE *f, const char *s, size_t len);
void json_hex(FILE *f, const char *s, size_t len);
/* Bytes as text: a backslash doubled, control bytes as \xNN. */
void text_bytes(FILE *f, const char *s, size_t len);
/* "2026-12-07T10:00:00Z", or "never" for 0. */
void iso_time(char *buf, size_t size, uint64_t usec);

/* ---- inspect.c ---- */
int status(struct mmapq *q, bool json);
int dump(struct mmapq *q, bool json);

/* ---- consumers.c ---- */
/* Records per second of a consumer since its holder attached, or < 0 if
 * it is not attached (or has not run long enough to say). */
double consumer_rate(const struct mmapq_consumer_status *c);
/* The registered consumers (at most MMAPQ_CONSUMERS_MAX): how many, or
 * -errno (said). */
int list_consumers(struct mmapq *q, struct mmapq_consumer_status *cs);
void consumers_json(const struct mmapq_consumer_status *cs, int n, bool by_pid);
int consumers(struct mmapq *q, bool json);
int consumer_remove(const struct mmapq_config *cfg, const char *name);

/* ---- send.c ---- */
/* The VALUE arguments (nvalues of them), or standard input if none, to the
 * producer's socket at path; waits at most timeout_s without progress (0:
 * forever). */
int send_records(const char *path, int nvalues, char **values, unsigned timeout_s,
                 bool stdin_closed);

/* ---- recreate.c ---- */
int recreate(const struct mmapq_config *cfg);

/* ---- metrics.c ---- */
/* `metrics`: to stdout; http: one HTTP exchange on stdin and stdout, the
 * connection systemd accepted (mmapq-metrics.socket). */
int metrics(const struct mmapq_config *cfg, bool http);

/* ---- top.c ---- */
/* Until stop() or the user quits: 0, or an exit code: 64 if standard
 * output is not a terminal (`mmapqctl status` is for scripts), the open's
 * if the queue cannot be read. */
int top_run(const struct mmapq_params *observer, unsigned interval_ms, bool (*stop)(void));

#endif
