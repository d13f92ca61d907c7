/* SPDX-License-Identifier: MIT */
/*
 * transport_mmapq.c -- the library, as a user writes it.
 *
 * Throughput, batched (the mmapq rows) and per record (the "mutex+condvar"
 * row): the producer and consumer of mmapq_ends.h, which the format-3 peer
 * (format3.c) runs too.
 *
 * Fan-out (fanout.c): the same producer and consumer, the consumer named
 * c->consumer, one of several on the queue, each checking every record.
 *
 * Ping-pong: one queue each way; a record is released once it is dealt
 * with: after the reply is sent, or the clock read (the API's
 * at-least-once order).  c->spin_us is mmapq_params.spin_us.
 *
 * The queues: format line (records of any bytes, each checksummed) unless
 * the cell says int, a ring of c->ring_bytes, max_record the record's size.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench.h"
#include "mmapq.h"

#include "mmapq_ends.h"

static int mmapq_setup(struct cell *c, char *why, size_t whylen)
{
	(void)why;
	(void)whylen;
	snprintf(c->path[0], sizeof(c->path[0]), "%s/tput.q", tmpdir);
	unlink(c->path[0]);
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
	e->tx = q_open_as(c->path[side], MMAPQ_ROLE_PRODUCER, LAT_SIZE, c->spin_us, c);
	e->rx = q_open_as(c->path[!side], MMAPQ_ROLE_CONSUMER, LAT_SIZE, c->spin_us, c);
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
