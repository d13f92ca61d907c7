/* SPDX-License-Identifier: MIT */
/*
 * protocol.h -- the producer's socket protocol, version 1 (mmapq-protocol(7)):
 * every reply line the producer sends is formatted here, and `mmapqctl
 * send` parses them here, so the two halves cannot drift apart.
 *
 * A reply is one text line of at most PROTOCOL_LINE_MAX bytes, its '\n'
 * included; the first word says its kind.  A later version only adds kinds
 * and appends " key=value" fields to ACK, OK and FAIL lines: a reader
 * ignores both.
 */
#ifndef MMAPQ_PROTOCOL_H
#define MMAPQ_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define PROTOCOL_LINE_MAX 256

enum protocol_kind {
	PROTOCOL_ERR,   /* "ERR LINE:COL: what: 'excerpt'": one rejected record */
	PROTOCOL_ACK,   /* "ACK <counts>": what of the client's records is published so far */
	PROTOCOL_OK,    /* "OK <counts>": the last line, everything it sent is published */
	PROTOCOL_FAIL,  /* "FAIL REASON <counts>": the last line, the producer gave up */
	PROTOCOL_OTHER, /* a kind this version does not know */
};

/* FAIL's reasons: the producer stops; the client completed no record in time,
 * or was closed to make room for another. */
#define PROTOCOL_FAIL_STOPPING "stopping"
#define PROTOCOL_FAIL_IDLE     "idle"

/* "published=N dropped=D rejected=R last_seq=S" (S is "-" while N is 0) */
struct protocol_counts {
	uint64_t published, dropped, rejected;
	uint64_t last_seq; /* the sequence number of the last one published, if published */
};

struct protocol_reply {
	enum protocol_kind kind;
	struct protocol_counts counts; /* ACK, OK, FAIL */
	const char *text;              /* ERR: after "ERR "; FAIL: after "FAIL " (in the line) */
};

/* An ERR line into buf (PROTOCOL_LINE_MAX bytes), cut to fit with its '\n'
 * kept; its length. */
size_t protocol_format_err(char *buf, uint64_t line, uint64_t column, const char *what,
                           const char *excerpt);
/* An ACK, OK or FAIL line (reason: PROTOCOL_FAIL_..., FAIL only) into buf
 * (PROTOCOL_LINE_MAX bytes); its length. */
size_t protocol_format_counts(char *buf, enum protocol_kind kind, const char *reason,
                              const struct protocol_counts *c);
/* One line, without its '\n': 0 with *r filled (PROTOCOL_OTHER for a kind
 * of a later version), -EBADMSG for an ACK, OK or FAIL line whose counts
 * are malformed (*r untouched). */
int protocol_parse(const char *line, struct protocol_reply *r);

#endif
