/* SPDX-License-Identifier: MIT */
/*
 * mmapq_ends.h -- the library's producer and consumer of the throughput job,
 * written once for the two APIs the benchmark measures:
 *
 *   transport_mmapq.c   includes it after libmmapq 2's mmapq.h (file
 *                       format 4, byte ring): the mmapq rows, fan-out and
 *                       the format-4 side of the format-3 comparison;
 *   format3_peer.c      compiled while the benchmark runs, against
 *                       libmmapq 1's mmapq.h and sources taken from git
 *                       history (file format 3, fixed slots), with
 *                       MMAPQ_ENDS_V1 defined (format3.c).
 *
 * So the two formats run the same code but for the two calls whose
 * signatures differ: the geometry given to mmapq_open (format 4: the ring's
 * bytes and max_record; format 3: capacity slots of record_size) and
 * mmapq_reserve (format 4: the ring bytes surely free for records of this
 * length, of which as many frames fit; format 3: free slots).
 *
 * Batched (the rows "mmapq, N/batch"): reserve, as many records as fit, at
 * most c->batch, put with mmapq_put_many (as many per call as fit in a
 * 16 KiB staging buffer: all of a batch of small records, one 16 KiB
 * record), mmapq_publish; mmapq_available, then up to c->batch records
 * read, each checked, mmapq_release of them (draining everything
 * available, a batch at a time).  Line records are read with
 * mmapq_get_many and checked in place; int records (c->format
 * MMAPQ_FORMAT_INT, 8 bytes) are copied out with mmapq_copy_many, as
 * mmapq-consumer does, and checked in the copy.  Per record
 * (c->per_record, the "mutex+condvar" row): reserve, put, publish for each
 * record; available, get, release(1) for each.
 *
 * Needs bench.h and one mmapq.h included first.
 */
#ifndef MMAPQ_BENCH_ENDS_H
#define MMAPQ_BENCH_ENDS_H

#include <inttypes.h>
#include <stdlib.h>

#define MMAPQ_STAGE_BYTES 16384u /* the producer's records before mmapq_put_many */

/* A queue of the cell's geometry and format (0: line), at path. */
static struct mmapq *q_open_as(const char *path, enum mmapq_role role, uint32_t size, uint32_t spin_us,
                               const struct cell *c)
{
	struct mmapq_params p = {
		.path = path, .role = role,
#ifdef MMAPQ_ENDS_V1
		.capacity = c->cap, .record_size = size,
#else
		.size = c->ring_bytes, .max_record = size,
#endif
		.format = c->format ? c->format : MMAPQ_FORMAT_LINE, .sync = MMAPQ_SYNC_NEVER,
		.file_mode = 0600, .spin_us = spin_us, .consumer = c->consumer,
		.max_consumers = c->max_consumers,
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

/* Waits for room; *fit: how many of the cell's records surely fit now (at
 * least one). */
static int ends_reserve(struct mmapq *q, const struct cell *c, uint64_t deadline, uint64_t *fit)
{
#ifdef MMAPQ_ENDS_V1
	uint32_t nfree = 0;
	int r = mmapq_reserve(q, deadline, &nfree);
	*fit = nfree;
#else
	/* records whose frames add up to at most room fit */
	uint64_t room = 0;
	int r = mmapq_reserve(q, c->size, deadline, &room);
	*fit = room / c->frame;
#endif
	return r;
}

static int mmapq_prod(struct cell *c)
{
	struct mmapq *q = q_open_as(c->path[0], MMAPQ_ROLE_PRODUCER, c->size, 0, c);
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
		uint64_t fit = 0;
		uint32_t k;
		r = ends_reserve(q, c, deadline, &fit);
		if (r < 0)
			return child_fail("mmapq_reserve at record %" PRIu64 ": %s", seq, mmapq_strerror(r));
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

/* Records done .. done + m - 1 of the k available, into recs or (int
 * records) vals, checked; *exp advances.  0 or the child's exit code. */
static int ends_take(struct mmapq *q, const struct cell *c, uint32_t done, uint32_t m,
                     struct mmapq_record *recs, int64_t *vals, uint64_t *exp)
{
	bool ints = c->format == MMAPQ_FORMAT_INT && !c->per_record;
	int r;

	if (c->per_record)
		r = mmapq_get(q, 0, &recs[0]);
	else if (ints)
		r = mmapq_copy_many(q, done, m, vals, sizeof(int64_t));
	else
		r = mmapq_get_many(q, done, m, recs);
	if (r < 0 || (!c->per_record && r != (int)m))
		return child_fail("mmapq_%s of %" PRIu32 " at record %" PRIu64 ": %d (%s)", c->per_record ? "get" :
		                  ints ? "copy_many" : "get_many", m, *exp, r, r < 0 ? mmapq_strerror(r) : "fewer");
	for (uint32_t i = 0; i < m; i++, ++*exp) {
		if (ints) {
			if (!rec_ok(&vals[i], sizeof(int64_t), *exp))
				return child_fail("record %" PRIu64 ": value of record %" PRIu64, *exp,
				                  rec_index(&vals[i]));
			continue;
		}
		const struct mmapq_record *rec = &recs[i];
		if (rec->seq != *exp || rec->len != c->size || !rec_ok(rec->data, c->size, *exp))
			return child_fail("record %" PRIu64 ": got seq %" PRIu64 " len %" PRIu32
			                  " content of record %" PRIu64, *exp, rec->seq, rec->len,
			                  rec_index(rec->data));
	}
	return 0;
}

static int mmapq_cons(struct cell *c)
{
	struct mmapq *q = q_open_as(c->path[0], MMAPQ_ROLE_CONSUMER, c->size, 0, c);
	uint64_t exp = 0, deadline;
	uint32_t batch = c->per_record ? 1 : c->batch;
	uint32_t stage = c->size >= MMAPQ_STAGE_BYTES ? 1 : MMAPQ_STAGE_BYTES / c->size;
	uint32_t per_call = batch < stage ? batch : stage;
	struct mmapq_record *recs = xalloc(sizeof(*recs) * per_call);
	int64_t *vals = xalloc(sizeof(*vals) * per_call);
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
			r = ends_take(q, c, done, m, recs, vals, &exp);
			if (r)
				return r;
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
	free(vals);
	return 0;
}

#endif
