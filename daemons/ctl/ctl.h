/* SPDX-License-Identifier: MIT */
/*
 * ctl.h -- mmapqctl's map: the verbs (main.c's table) and where each lives.
 *
 *   main.c       options, the verb table, dispatch
 *   inspect.c    status, dump, export: the queue file read as an observer
 *   consumers.c  consumers, consumer remove
 *   producers.c  the producers as status and top list them
 *   send.c       send: records to the producer's socket (protocol.c parses
 *                the replies)
 *   recreate.c   recreate: a new file of the configured geometry with the
 *                old one's records and consumers; repair: the file checked
 *                and salvaged (both with every daemon stopped)
 *   metrics.c    metrics, metrics --http (one HTTP exchange)
 *   top.c        top: a live view in a terminal
 *   text.c       how bytes are printed: as text, JSON strings, hex, framed
 *                as the producer reads them; sizes for people
 *
 * Every verb returns an exit code (exit.h) and prints its errors itself.
 * The observers (status, dump, export, consumers, metrics, top) open the
 * file read-only, take no lock and write nothing: they can neither hang on
 * a stale mutex nor disturb the daemons.
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
/* Bytes as text: valid UTF-8 as it is, a backslash doubled; control bytes
 * (C0, DEL, C1) and bytes that are not part of valid UTF-8 as \xNN. */
void text_bytes(FILE *f, const char *s, size_t len);
/* "512 B", "64 KiB", "1.5 MiB": buf. */
const char *human_bytes(char *buf, size_t size, uint64_t n);
/* A record of len bytes framed as the producer reads it (stdin, socket):
 * what comes before its bytes into out (format binary: its length, 4
 * bytes big-endian; else nothing): how many bytes; and what comes after
 * them (format int and line: a newline, "\r\n" for a line that ends in
 * '\r', whose '\r' the producer would otherwise drop; binary: ""). */
size_t frame_prefix(uint32_t format, size_t len, unsigned char out[4]);
const char *frame_suffix(uint32_t format, const char *s, size_t len);
/* "2026-12-07T10:00:00Z", or "never" for 0. */
void iso_time(char *buf, size_t size, uint64_t usec);

/* ---- inspect.c ---- */
int status(struct mmapq *q, bool json);
int dump(struct mmapq *q, bool json);
/* `export`: the records framed as the producer reads them (json is
 * refused before). */
int export_records(struct mmapq *q, bool json);
/* How full the ring is: used_bytes in percent of size. */
double used_percent(const struct mmapq_status *st);
/* Records the last salvage dropped, and which, as "records A to B (under
 * the records kept) and records C to D (past the records kept)" (what is
 * empty left out). */
uint64_t salvage_dropped(const struct mmapq_salvage *s);
void salvage_ranges(char *buf, size_t size, const struct mmapq_salvage *s);

/* ---- consumers.c ---- */
/* Records per second of a consumer since its holder attached, or < 0 if
 * it is not attached (or has not run long enough to say). */
double consumer_rate(const struct mmapq_consumer_status *c);
/* That rate as `consumers` and `top` print it ("12.5"), "-" if there is
 * none: buf. */
const char *consumer_rate_text(char *buf, size_t size, const struct mmapq_consumer_status *c);
/* The registered consumers (at most MMAPQ_CONSUMERS_MAX), each one's
 * policy in pol (NULL: not asked): how many, or -errno (said). */
int list_consumers(struct mmapq *q, struct mmapq_consumer_status *cs, struct mmapq_policy *pol);
void consumers_json(const struct mmapq_consumer_status *cs, const struct mmapq_policy *pol, int n,
                    bool by_pid);
int consumers(struct mmapq *q, bool json);
int consumer_remove(const struct mmapq_config *cfg, const char *name);

/* ---- producers.c ---- */
/* The registered producers (at most MMAPQ_PRODUCERS_MAX): how many, or
 * -errno (said). */
int list_producers(struct mmapq *q, struct mmapq_producer_status *ps);
void producers_json(const struct mmapq_producer_status *ps, int n, bool by_pid);
/* A producer's wait for room into buf: "waiting for room since 12:03:11
 * (4 s); 6.5 s in all", "not waiting; waited 2.5 s for room in all", or ""
 * if it never waited. */
const char *producer_wait_text(char *buf, size_t size, const struct mmapq_producer_status *p);

/* ---- send.c ---- */
/* The VALUE arguments (nvalues of them), each one record framed in format
 * (0: not known, --socket without the configuration: as lines), or
 * standard input as it is if none, to the producer's socket at path; waits
 * at most timeout_s without progress (0: forever). */
int send_records(const char *path, int nvalues, char **values, uint32_t format,
                 unsigned timeout_s, bool stdin_closed);

/* ---- recreate.c ---- */
int recreate(const struct mmapq_config *cfg);
/* `repair`: every record of the queue file checked, a damaged file
 * salvaged; what was dropped said. */
int repair(const struct mmapq_config *cfg);

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
