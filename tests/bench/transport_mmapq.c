/* SPDX-License-Identifier: MIT */
/*
 * transport_mmapq.c -- the library, as a user writes it.
 *
 * Throughput, batched (the mmapq rows): mmapq_reserve of a record's
 * length, which gives the ring bytes surely free, then as many records as
 * fit in them, at most c->batch, put with mmapq_put_many (as many per call
 * as fit in a 16 KiB staging buffer: all of a batch of small records, one
 * 16 KiB record), mmapq_publish; mmapq_available, then mmapq_get_many of up to c->batch
 * records, each checked in place, mmapq_release of them (draining
 * everything available, a batch at a time).  Per record (c->per_record,
 * the "mutex+condvar" row): reserve, put, publish for each record;
 * available, get, release(1) for each record (a lock round-trip and a
 * signal check per record and side).
 *
 * Fan-out (fanout.c): the same producer and consumer, the consumer named
 * c->consumer, one of several on the queue, each checking every record.
 *
 * Ping-pong: one queue each way; a record is released once it is dealt
 * with: after the reply is sent, or the clock read (the API's
 * at-least-once order).  c->spin_us is mmapq_params.spin_us.
 *
 * The queues: format line (records of any bytes, each checksummed), a ring
 * of c->ring_bytes, max_record the record's size.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench.h"
#include "mmapq.h"

#define MMAPQ_STAGE_BYTES 16384u /* the producer's records before mmapq_put_many */

static struct mmapq *q_open_as(const char *path, enum mmapq_role role, uint32_t size,
                               uint64_t ring_bytes, uint32_t spin_us, const struct cell *c)
{
	struct mmapq_params p = {
		.path = path, .role = role, .size = ring_bytes, .max_record = size,
		.format = MMAPQ_FORMAT_LINE, .sync = MMAPQ_SYNC_NEVER, .file_mode = 0600,
		.spin_us = spin_us, .consumer = c ? c->consumer : NULL,
		.max_consumers = c ? c->max_consumers : 0,
	};
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &e);
	if (r < 0) {
		child_fail("mmapq_open(%s): %s (%s)", path, e.msg, mmapq_strerror(r));
		return NULL;
	}
	return q;
}

static struct mmapq *q_open(const char *path, enum mmapq_role role, uint32_t size,
                            uint64_t ring_bytes, uint32_t spin_us)
{
	return q_open_as(path, role, size, ring_bytes, spin_us, NULL);
}

static int mmapq_setup(struct cell *c, char *why, size_t whylen)
{
	(void)why;
	(void)whylen;
	snprintf(c->path[0], sizeof(c->path[0]), "%s/tput.q", tmpdir);
	unlink(c->path[0]);
	return 0;
}

static int mmapq_prod(struct cell *c)
{
	struct mmapq *q = q_open_as(c->path[0], MMAPQ_ROLE_PRODUCER, c->size, c->ring_bytes, 0, c);
	uint32_t batch = c->per_record ? 1 : c->batch;
	/* records are made in a staging buffer of at most 16 KiB (or one
	 * record), so that they are still in the cache when put */
	uint32_t stage = c->size >= MMAPQ_STAGE_BYTES ? 1 : MMAPQ_STAGE_BYTES / c->size;
	unsigned char *buf = xalloc((size_t)c->size * stage);
	uint64_t seq = 0, deadline;
	int r;

	if (!q)
		return EXIT_FAIL;
	barrier();
	cpu_window(0, false);
	ctl->t_start = now_ns();
	deadline = ctl->t_start + FAR_NS;
	while (seq < c->n) {
		uint64_t room = 0, fit;
		uint32_t k;
		r = mmapq_reserve(q, c->size, deadline, &room);
		if (r < 0)
			return child_fail("mmapq_reserve at record %" PRIu64 ": %s", seq, mmapq_strerror(r));
		/* records whose frames add up to at most room fit: at least one */
		fit = room / c->frame;
		k = fit < batch ? (uint32_t)fit : batch;
		if (k > c->n - seq)
			k = (uint32_t)(c->n - seq);
		if (c->per_record) {
			for (uint32_t i = 0; i < k; i++, seq++) {
				rec_fill(buf, c->size, seq);
				r = mmapq_put(q, buf, c->size);
				if (r < 0)
					return child_fail("mmapq_put record %" PRIu64 ": %s", seq, mmapq_strerror(r));
			}
		} else {
			for (uint32_t done = 0, m; done < k; done += m) {
				m = k - done < stage ? k - done : stage;
				for (uint32_t i = 0; i < m; i++)
					rec_fill(buf + (size_t)i * c->size, c->size, seq + i);
				r = mmapq_put_many(q, buf, c->size, m);
				if (r != (int)m)
					return child_fail("mmapq_put_many of %" PRIu32 " at record %" PRIu64 ": %d (%s)",
					                  m, seq, r, r < 0 ? mmapq_strerror(r) : "fewer");
				seq += m;
			}
		}
		r = mmapq_publish(q);
		if (r < 0)
			return child_fail("mmapq_publish at record %" PRIu64 ": %s", seq, mmapq_strerror(r));
	}
	cpu_window(0, true);
	record_rusage(0);
	mmapq_close(q);
	free(buf);
	return 0;
}

static int mmapq_cons(struct cell *c)
{
	struct mmapq *q = q_open_as(c->path[0], MMAPQ_ROLE_CONSUMER, c->size, c->ring_bytes, 0, c);
	uint64_t exp = 0, deadline;
	uint32_t batch = c->per_record ? 1 : c->batch;
	uint32_t stage = c->size >= MMAPQ_STAGE_BYTES ? 1 : MMAPQ_STAGE_BYTES / c->size;
	struct mmapq_record *recs = xalloc(sizeof(*recs) * (batch < stage ? batch : stage));
	int r;

	if (!q)
		return EXIT_FAIL;
	barrier();
	cpu_window(1 + c->cons_ix, false);
	deadline = now_ns() + FAR_NS;
	while (exp < c->n) {
		uint32_t n = 0, k;
		r = mmapq_available(q, deadline, &n);
		if (r < 0)
			return child_fail("mmapq_available at record %" PRIu64 ": %s", exp, mmapq_strerror(r));
		/* drain everything available, releasing every batch records */
		k = n < batch ? n : batch;
		/* as many per call as the producer puts (16 KiB of records) */
		for (uint32_t done = 0, m; done < k; done += m) {
			m = k - done < stage ? k - done : stage;
			if (c->per_record)
				r = mmapq_get(q, 0, &recs[0]);
			else
				r = mmapq_get_many(q, done, m, recs);
			if (r < 0 || (!c->per_record && r != (int)m))
				return child_fail("mmapq_get%s of %" PRIu32 " at record %" PRIu64 ": %d (%s)",
				                  c->per_record ? "" : "_many", m, exp, r,
				                  r < 0 ? mmapq_strerror(r) : "fewer");
			for (uint32_t i = 0; i < m; i++, exp++) {
				const struct mmapq_record *rec = &recs[i];
				if (rec->seq != exp || rec->len != c->size || !rec_ok(rec->data, c->size, exp))
					return child_fail("record %" PRIu64 ": got seq %" PRIu64 " len %" PRIu32
					                  " content of record %" PRIu64, exp, rec->seq, rec->len,
					                  rec_index(rec->data));
			}
		}
		r = mmapq_release(q, k);
		if (r < 0)
			return child_fail("mmapq_release at record %" PRIu64 ": %s", exp, mmapq_strerror(r));
	}
	cpu_window(1 + c->cons_ix, true);
	if (c->consumer) { /* one of several (fan-out) */
		ctl->fan_end[c->cons_ix] = now_ns();
		ctl->fan_verified[c->cons_ix] = exp;
	} else {
		ctl->t_end = now_ns();
		ctl->verified = exp;
		record_rusage(1);
	}
	mmapq_close(q);
	free(recs);
	return 0;
}

/* ---- ping-pong ------------------------------------------------------------------ */

static int mmapq_lat_setup(struct cell *c, char *why, size_t whylen)
{
	(void)why;
	(void)whylen;
	for (int i = 0; i < 2; i++) {
		snprintf(c->path[i], sizeof(c->path[i]), "%s/lat%d.q", tmpdir, i);
		unlink(c->path[i]);
	}
	return 0;
}

/* Queue 0 carries side 0 -> side 1, queue 1 the way back. */
static int mmapq_ep_open(struct ep *e, struct cell *c, int side)
{
	e->tx = q_open(c->path[side], MMAPQ_ROLE_PRODUCER, LAT_SIZE, c->ring_bytes, c->spin_us);
	e->rx = q_open(c->path[!side], MMAPQ_ROLE_CONSUMER, LAT_SIZE, c->ring_bytes, c->spin_us);
	return e->tx && e->rx ? 0 : EXIT_FAIL;
}

static int mmapq_send(struct ep *e, const void *buf, uint64_t i)
{
	uint64_t room = 0;
	int r;

	(void)i;
	/* waits until the record fits */
	r = mmapq_reserve(e->tx, LAT_SIZE, e->deadline, &room);
	if (r < 0)
		return child_fail("mmapq_reserve: %s", mmapq_strerror(r));
	r = mmapq_put(e->tx, buf, LAT_SIZE);
	if (r == 0)
		r = mmapq_publish(e->tx);
	if (r < 0)
		return child_fail("mmapq_put/publish: %s", mmapq_strerror(r));
	return 0;
}

static int mmapq_recv(struct ep *e, void *buf)
{
	uint32_t n = 0;
	struct mmapq_record rec;
	int r;

	while (n == 0) {
		r = mmapq_available(e->rx, e->deadline, &n);
		if (r < 0)
			return child_fail("mmapq_available: %s", mmapq_strerror(r));
	}
	r = mmapq_get(e->rx, 0, &rec);
	if (r < 0 || rec.len != LAT_SIZE)
		return child_fail("mmapq_get: %s, len %" PRIu32, mmapq_strerror(r), rec.len);
	memcpy(buf, rec.data, LAT_SIZE);
	return 0; /* released by mmapq_done() */
}

/* The record received last is dealt with: released now (the API's
 * at-least-once order: for the echo side, once the reply is sent). */
static int mmapq_done(struct ep *e)
{
	int r = mmapq_release(e->rx, 1);
	if (r < 0)
		return child_fail("mmapq_release: %s", mmapq_strerror(r));
	return 0;
}

static void mmapq_ep_close(struct ep *e)
{
	mmapq_close(e->tx);
	mmapq_close(e->rx);
}

const struct transport tr_mmapq = {
	.setup = mmapq_setup, .prod = mmapq_prod, .cons = mmapq_cons,
	.lat_setup = mmapq_lat_setup, .ep_open = mmapq_ep_open, .send = mmapq_send,
	.recv = mmapq_recv, .done = mmapq_done, .ep_close = mmapq_ep_close,
};
