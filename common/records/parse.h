/* SPDX-License-Identifier: MIT */
/*
 * parse.h -- the producer's streaming record parser.
 *
 * Input arrives in chunks of any size (a token or a line may be split across
 * chunks).  Every complete record is handed to on_record; every bad token or
 * line is reported to on_error with its exact 1-based line and column,
 * counted and skipped.  Memory is bounded: at most max_record bytes (line,
 * binary: allocated as a record needs them) or MMAPQ_PARSE_TOKEN_MAX bytes
 * (int) are buffered, however long the input.
 * Never logs.
 *
 * format int:  whitespace-separated (isspace in the C locale, as scanf's %d)
 *              decimal integers, optional sign, must fit int64_t; each
 *              becomes an 8-byte int64_t payload in host byte order.
 * format line: each '\n'-terminated line is one record of 0..max_record
 *              bytes (the '\n' and one '\r' before it are not part of it);
 *              a final line without '\n' is a record at finish.
 * format binary: each record is a 4-byte big-endian length, then that many
 *              bytes (0..max_record), any bytes.
 */
#ifndef MMAPQ_PARSE_H
#define MMAPQ_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mmapq.h" /* struct mmapq_iovec */

#define MMAPQ_PARSE_TOKEN_MAX 32   /* longest int token kept for the message */

struct mmapq_parse_error {
	uint64_t line;        /* 1-based */
	uint64_t column;      /* 1-based byte column where the bad token/line starts */
	const char *what;     /* static text, e.g. "not a decimal integer" */
	char excerpt[MMAPQ_PARSE_TOKEN_MAX + 8]; /* printable excerpt of the token, NUL-terminated, escaped */
};

/* Return 0 to continue, a negative errno to stop parsing (returned by feed
 * or finish); after an on_record error only mmapq_parser_free() may be
 * called. */
typedef int (*mmapq_record_fn)(void *ctx, const void *data, uint32_t len);
typedef void (*mmapq_parse_error_fn)(void *ctx, const struct mmapq_parse_error *e);

struct mmapq_parser;

int mmapq_parser_new(uint32_t format, uint32_t max_record, mmapq_record_fn on_record,
                     mmapq_parse_error_fn on_error, void *ctx, struct mmapq_parser **ret);
int mmapq_parser_feed(struct mmapq_parser *p, const char *buf, size_t len);
int mmapq_parser_finish(struct mmapq_parser *p);   /* end of input */
uint64_t mmapq_parser_records(const struct mmapq_parser *p);
uint64_t mmapq_parser_errors(const struct mmapq_parser *p);
void mmapq_parser_free(struct mmapq_parser *p);    /* NULL is a no-op */

/* format int: records in batches.  After this call the parser no longer
 * calls on_record; it collects the values and hands them to on_ints, in
 * input order, in arrays of at most MMAPQ_PARSE_BATCH values: when one is
 * full, before every on_error call (so the order of records and errors is
 * kept) and before feed and finish return (so everything fed is handed
 * over by then).  A negative return stops parsing as on_record's does and
 * is returned by feed or finish; none of that batch counts in
 * mmapq_parser_records, whatever on_ints did with it.  The array is valid
 * only during the call.  NULL goes back to on_record (between feeds).
 * -EINVAL for format line. */
#define MMAPQ_PARSE_BATCH 256
typedef int (*mmapq_ints_fn)(void *ctx, const int64_t *v, size_t n);
int mmapq_parser_set_int_batch(struct mmapq_parser *p, mmapq_ints_fn on_ints);

/* format line and binary: records in batches, as for ints.  After this
 * call the parser no longer calls on_record; it hands the records to
 * on_records, in input order, in arrays of at most MMAPQ_PARSE_BATCH: when
 * one is full, before every on_error call and before feed and finish
 * return.  Each record is {data, len} as on_record would have had it: a
 * pointer into the chunk fed when the whole record is in it (nothing
 * copied), else into the parser's own buffer; all valid only during the
 * call.  A negative return stops parsing as on_record's does (none of
 * that batch counts in mmapq_parser_records).  NULL goes back to
 * on_record (between feeds).  -EINVAL for format int. */
typedef int (*mmapq_records_fn)(void *ctx, const struct mmapq_iovec *r, size_t n);
int mmapq_parser_set_record_batch(struct mmapq_parser *p, mmapq_records_fn on_records);

/* format int reads short decimal tokens through a fast path (on by default)
 * and everything else byte by byte; format line looks for line ends with
 * AVX2 where the CPU has it; both give the same callbacks (parse.c).
 * Off: byte by byte only (int), as the parser did before the fast path, or
 * the baseline SSE2 scan (line); for the differential tests and the
 * benchmark's old-parser peer.  Any time. */
void mmapq_parser_set_fast_path(struct mmapq_parser *p, bool on);

/*
 * How much input fits in the ring, for a producer that must never read
 * more than it can put (what is read and not put would be lost if it
 * stopped).  These read the parser's state (a record begun in an earlier
 * chunk, a line or a binary record being skipped) and never change it.
 *
 * mmapq_parser_cut: of the n bytes at buf, how many the producer may feed
 * next: the records they complete take, as frames (mmapq_frame_size), at
 * most room ring bytes.  It is exact: every record the parser will put is
 * counted at the length it will have (a line without the CR of a CRLF), a
 * record it will refuse (a line too long or with a NUL, a binary record
 * longer than max_record) takes nothing; only format int counts a token it
 * will refuse as a record (the count is then too small, never too big).
 * When a record does not fit the cut ends where that record begins (0 if
 * it began in an earlier chunk) and *need is its frame's size; 0 if every
 * record fits.  The bytes of a record the n bytes leave unfinished are
 * taken (it is put when it ends, and a later cut counts it then), except:
 *   MMAPQ_CUT_WHOLE  only if it fits too, at the largest it can become:
 *                    frame(max_record) for a line or for a binary record
 *                    whose length prefix is not complete yet, its own frame
 *                    for a binary record whose length is known.  Then
 *                    whatever is taken fits when it ends, and a producer
 *                    that stops can always read on to the end of the record
 *                    it is in.  (An int token left unfinished is always
 *                    counted so, at 16 bytes.)
 *   MMAPQ_CUT_FIRST  no further than the end of the first record that ends
 *                    (put or refused): to read on to the end of a record,
 *                    and no further.  *need is 0 if it fits.
 * format int: the whitespace after the last token that fits is taken too.
 *
 * mmapq_parser_blind_bound: the most bytes a read that cannot look first
 * (a terminal) may take, with the same flags, so that the records it
 * completes fit in room; at least 1 when room allows a read of one byte,
 * else 0 and *need is the room that one byte needs (a frame's size, at
 * most frame(max_record)).
 *
 * mmapq_parser_partial: the input bytes of the record in progress (fed,
 * not yet ended), 0 at a record boundary: how far a producer that stops
 * rewinds a regular file.
 *
 * mmapq_parser_final_frame: the ring bytes mmapq_parser_finish will put
 * (the frame of a final line without '\n', or of a final int token), 0 if
 * it puts nothing.
 */
#define MMAPQ_CUT_WHOLE 1u
#define MMAPQ_CUT_FIRST 2u
size_t mmapq_parser_cut(const struct mmapq_parser *p, const char *buf, size_t n, uint64_t room,
                        unsigned flags, uint64_t *need);
uint64_t mmapq_parser_blind_bound(const struct mmapq_parser *p, uint64_t room, unsigned flags,
                                  uint64_t *need);
uint64_t mmapq_parser_partial(const struct mmapq_parser *p);
uint64_t mmapq_parser_final_frame(const struct mmapq_parser *p);

#endif /* MMAPQ_PARSE_H */
