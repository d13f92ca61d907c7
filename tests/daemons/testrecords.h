/* SPDX-License-Identifier: MIT */
/*
 * testrecords.h -- records of any bytes and any length for the tests of
 * the consumer's outputs (test_output, test_nats): made here, put into a
 * queue with the library (the producer role), and what an output wrote
 * compared with them byte for byte.  Header-only (static inline functions): each
 * test program includes it once.
 */
#ifndef MMAPQ_TESTRECORDS_H
#define MMAPQ_TESTRECORDS_H

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmapq.h"
#include "testutil.h"

struct tr_record {
	uint32_t len;
	uint8_t *data;
};

struct tr_set {
	uint32_t n;
	struct tr_record *r;
};

/* xorshift64*: the bytes of a record of a seed, the same every run */
static inline uint64_t tr_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

static inline struct tr_record *tr_add(struct tr_set *s, uint32_t len)
{
	struct tr_record *r;

	s->r = realloc(s->r, (s->n + 1) * sizeof(*s->r));
	if (!s->r)
		tu_die("realloc");
	r = &s->r[s->n++];
	r->len = len;
	r->data = malloc(len ? len : 1);
	if (!r->data)
		tu_die("malloc");
	return r;
}

/* A record of len random bytes (seeded by its index), or of bytes that are
 * never '\n' for a line (line: true). */
static inline void tr_add_random(struct tr_set *s, uint32_t len, bool line)
{
	struct tr_record *r = tr_add(s, len);
	uint64_t st = UINT64_C(0x9e3779b97f4a7c15) ^ ((uint64_t)s->n << 20) ^ len;

	for (uint32_t i = 0; i < len; i++) {
		uint8_t b = (uint8_t)(tr_next(&st) >> 56);
		r->data[i] = line && b == '\n' ? 'n' : b;
	}
}

/*
 * Binary records: a zero-length one first; one of all 256 byte values in
 * order; each byte value alone (NUL, '\n', 0xff...); zero-length ones in
 * the middle; lengths 1 to 17 (every padding of a frame); lengths around
 * a page and the consumer's copy limit (4095 to 4097); two of max_record;
 * a zero-length one last.  Random bytes where not said.
 */
static inline struct tr_set tr_binary_set(uint32_t max_record)
{
	struct tr_set s = {0};
	struct tr_record *r;

	tr_add(&s, 0);
	r = tr_add(&s, 256);
	for (int i = 0; i < 256; i++)
		r->data[i] = (uint8_t)i;
	for (int i = 0; i < 256; i++)
		tr_add(&s, 1)->data[0] = (uint8_t)i;
	tr_add(&s, 0);
	tr_add(&s, 0);
	for (uint32_t len = 1; len <= 17; len++)
		tr_add_random(&s, len, false);
	for (uint32_t len = 4095; len <= 4097 && len <= max_record; len++)
		tr_add_random(&s, len, false);
	tr_add_random(&s, max_record, false);
	tr_add_random(&s, max_record - 1, false);
	tr_add_random(&s, max_record, false);
	tr_add(&s, 0);
	return s;
}

/* n lines of len bytes each, none holding '\n'. */
static inline struct tr_set tr_lines(uint32_t n, uint32_t len)
{
	struct tr_set s = {0};

	for (uint32_t i = 0; i < n; i++)
		tr_add_random(&s, len, true);
	return s;
}

static inline void tr_free(struct tr_set *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		free(s->r[i].data);
	free(s->r);
	memset(s, 0, sizeof(*s));
}

/* Bytes of s in the ring (every frame; padding at the ring's end not
 * counted). */
static inline uint64_t tr_ring_bytes(const struct tr_set *s)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < s->n; i++)
		sum += mmapq_frame_size(s->r[i].len);
	return sum;
}

/* Every record of s published into the queue at path (created with size,
 * max_record and format if it is not there), as the producer.  The queue
 * must have room for them all (nobody consumes meanwhile): a test whose
 * set does not fit fails here, saying so. */
static inline void tr_put(const char *path, uint64_t size, uint32_t max_record, uint32_t format,
                   const struct tr_set *s)
{
	struct mmapq_params p = {.path = path, .role = MMAPQ_ROLE_PRODUCER, .size = size,
	                         .max_record = max_record, .format = format, .file_mode = 0600};
	struct mmapq_error err;
	struct mmapq *q;
	int r = mmapq_open(&p, &q, &err);

	TU_EXPECT(path, r == 0, "open %s as the producer: %s", path, err.msg);
	for (uint32_t i = 0; i < s->n; i++) {
		uint64_t room;

		r = mmapq_reserve(q, s->r[i].len, mmapq_now_ns() + 10000000000u, &room);
		TU_EXPECT(path, r == 0, "record %" PRIu32 " (%" PRIu32 " bytes): no room: %s (the test's"
		          " records take %" PRIu64 " ring bytes of %" PRIu64 ")", i, s->r[i].len,
		          mmapq_strerror(r), tr_ring_bytes(s), size);
		r = mmapq_put(q, s->r[i].data, s->r[i].len);
		TU_EXPECT(path, r == 0, "put record %" PRIu32 ": %s", i, mmapq_strerror(r));
	}
	r = mmapq_publish(q);
	TU_EXPECT(path, r >= 0, "publish: %s", mmapq_strerror(r));
	mmapq_close(q);
}

/* Record i of s is got (len bytes at data)?  NULL, or a malloc'd text of
 * how they differ. */
static inline char *tr_differs(const struct tr_set *s, uint32_t i, const uint8_t *data, uint64_t len)
{
	const struct tr_record *w = &s->r[i];

	if (len != w->len)
		return tu_xasprintf("record %" PRIu32 " is %" PRIu64 " bytes, not %" PRIu32, i, len,
		                    w->len);
	for (uint32_t k = 0; k < w->len; k++)
		if (data[k] != w->data[k])
			return tu_xasprintf("record %" PRIu32 " (%" PRIu32 " bytes): byte %" PRIu32 " is"
			                    " 0x%02x, not 0x%02x", i, w->len, k, data[k], w->data[k]);
	return NULL;
}

/* A stream of binary records (each a 4-byte big-endian length, then its
 * bytes) is exactly s?  NULL, or a malloc'd text of where not. */
static inline char *tr_check_binary(const uint8_t *buf, size_t len, const struct tr_set *s)
{
	size_t off = 0;

	for (uint32_t i = 0; i < s->n; i++) {
		uint32_t be, n;
		char *why;

		if (len - off < sizeof(be))
			return tu_xasprintf("the stream ends at byte %zu, before record %" PRIu32 " of %"
			                    PRIu32, off, i, s->n);
		memcpy(&be, buf + off, sizeof(be));
		n = be32toh(be);
		off += sizeof(be);
		if (n > len - off)
			return tu_xasprintf("record %" PRIu32 " says %" PRIu32 " bytes, the stream has %zu"
			                    " more", i, n, len - off);
		why = tr_differs(s, i, buf + off, n);
		if (why)
			return why;
		off += n;
	}
	if (off != len)
		return tu_xasprintf("%zu bytes after the last record", len - off);
	return NULL;
}

/* Lines (each record and '\n') are exactly s? */
static inline char *tr_check_lines(const char *buf, size_t len, const struct tr_set *s)
{
	size_t off = 0;

	for (uint32_t i = 0; i < s->n; i++) {
		const char *nl = memchr(buf + off, '\n', len - off);
		char *why;

		if (!nl)
			return tu_xasprintf("no line end after byte %zu: record %" PRIu32 " of %" PRIu32
			                    " missing or cut", off, i, s->n);
		why = tr_differs(s, i, (const uint8_t *)buf + off, (uint64_t)(nl - (buf + off)));
		if (why)
			return why;
		off = (size_t)(nl - buf) + 1;
	}
	if (off != len)
		return tu_xasprintf("%zu bytes after the last line", len - off);
	return NULL;
}

#endif
