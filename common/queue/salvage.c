/* SPDX-License-Identifier: MIT */
/*
 * salvage.c -- every frame kept, walked and checked, by a process alone
 * with a file that was not closed cleanly (mmapq_format.h, "Clean close,
 * and salvage"), or on demand (mmapq_repair).  A crash of every process,
 * or a power cut, can leave: a tail (or a cursor, or floor) whose seq and
 * byte come from different stores, pages of the ring older or newer than
 * the header says (with sync = never, or pages the kernel wrote back on
 * its own), frames half written.  The checksums find them; what the walk
 * keeps is one run of intact records, in order, and what it drops is said.
 */
#include "queue.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fault.h"

/* A run of intact frames: records [start.seq, end.seq), their frames from
 * start.byte to end.byte. */
struct run {
	struct pos start, end;
};

static bool aligned(uint64_t byte)
{
	return byte % MMAPQ_FRAME_ALIGN == 0;
}

/*
 * From start, frame by frame (each one's length and checksum), until the
 * first frame that is not intact, or tail: where the header's tail.seq or
 * tail.byte is reached, whichever comes first (they may come from
 * different publishes), or a whole ring past start if both lie behind it.
 */
static struct run walk_run(const struct mmapq *q, struct pos start, struct pos tail)
{
	struct pos p = start;
	uint64_t stop_seq = tail.seq >= start.seq ? tail.seq : UINT64_MAX;
	uint64_t stop_byte = tail.byte >= start.byte ? tail.byte : start.byte + q->size;

	if (stop_byte > start.byte + q->size)
		stop_byte = start.byte + q->size;
	while (p.seq < stop_seq && p.byte < stop_byte) {
		const uint8_t *d;
		uint32_t l;
		uint64_t b = p.byte;

		if (frame_next(q, &b, stop_byte, true, &d, &l) < 0)
			break;
		p = (struct pos){p.seq + 1, b};
	}
	return (struct run){start, p};
}

/* Whether a position may start a run: a multiple of 8 in a ring that holds
 * the records between it and the header's floor and tail as far as they
 * are known. */
static bool candidate(const struct mmapq *q, struct pos p, struct pos floor)
{
	return aligned(p.byte) && p.seq >= floor.seq && p.byte >= floor.byte &&
	       p.byte - floor.byte <= q->size;
}

/* Whether run r is better to keep than best: one that holds records over
 * one that holds none (an empty run, a cursor at a damaged record, keeps
 * nothing, however far up it starts), then the one that reaches furthest,
 * then the one that starts lowest. */
static bool better(const struct run *r, const struct run *best)
{
	bool r_holds = r->end.seq > r->start.seq, best_holds = best->end.seq > best->start.seq;

	if (r_holds != best_holds)
		return r_holds;
	return r->end.seq > best->end.seq ||
	       (r->end.seq == best->end.seq && r->start.seq < best->start.seq);
}

/*
 * Consumer c's cursor as a run may start from it: its byte found from its
 * synced cursor by the frames' lengths, where that walk holds.  A frame's
 * checksum binds its byte position, not its record's sequence number, so
 * a cursor whose byte was stored without its seq (a consumer killed
 * between the two stores) starts a run of intact frames under the wrong
 * numbers: only the count of frames from a whole pair (synced, stored
 * under the mutex) says which record is where.
 */
static struct pos cursor_of(struct mmapq *q, const struct mmapq_consumer *c, uint64_t end)
{
	struct pos at = {c->position, c->position_byte}, syn = {c->synced, c->synced_byte};
	uint64_t b;

	if (syn.seq <= at.seq && find_record(q, syn, at.seq, end, &b) == 0)
		at.byte = b;
	return at;
}

/*
 * The run to keep: of those that start at floor or at a registered
 * consumer's cursor and hold records, the one that reaches furthest (the
 * newest records are the ones nobody has yet), and of those the one that
 * starts lowest.
 */
static struct run best_run(struct mmapq *q, struct pos floor, struct pos tail)
{
	struct run best = walk_run(q, floor, tail);

	for (uint32_t i = 0; i < q->max_consumers; i++) {
		const struct mmapq_consumer *c = &q->h->consumers[i];
		struct pos at;
		struct run r;

		if (!registered(c))
			continue;
		at = cursor_of(q, c, tail.byte);
		if (!candidate(q, at, floor))
			continue;
		if (best.end.seq > best.start.seq && at.seq >= best.start.seq && at.seq <= best.end.seq)
			continue; /* on the run found, or a position that disagrees with it */
		r = walk_run(q, at, tail);
		if (better(&r, &best))
			best = r;
	}
	return best;
}

/* Record seq's place on the run (start.seq <= seq <= end.seq). */
static struct pos on_run(struct mmapq *q, const struct run *run, uint64_t seq)
{
	uint64_t byte = run->end.byte;

	if (seq < run->end.seq)
		(void)find_record(q, run->start, seq, run->end.byte, &byte);
	return (struct pos){seq, byte};
}

/* The oldest record a registered consumer still wants: the lowest cursor
 * (on disk as a process alone finds it), or floor if none is registered or
 * one is below it.  The records below it, between floor and it, were
 * consumed by every consumer (floor had not caught up yet: a crash between
 * a release's cursor and its synced copy): a run that starts above them
 * drops nothing anyone wants. */
static struct pos wanted_from(const struct mmapq *q, struct pos floor)
{
	struct pos low = {UINT64_MAX, 0};

	for (uint32_t i = 0; i < q->max_consumers; i++) {
		const struct mmapq_consumer *c = &q->h->consumers[i];

		if (registered(c) && c->position < low.seq)
			low = (struct pos){c->position, c->position_byte};
	}
	return low.seq == UINT64_MAX || low.seq <= floor.seq ? floor : low;
}

/* Alone: the header made to describe run, and what that dropped recorded
 * in it (the records below the run from floor, the oldest one wanted, and
 * those past it).  Every consumer's cursor is put on the run (clamped into
 * it, its byte where its record is); floor is the lowest of them. */
static void keep_run(struct mmapq *q, const struct run *run, struct pos floor, struct pos tail,
                     bool dropped)
{
	struct mmapq_state *st = &q->h->state;
	struct pos low = run->end;
	bool any = false;

	for (uint32_t i = 0; i < q->max_consumers; i++) {
		struct mmapq_consumer *c = &q->h->consumers[i];
		uint64_t seq = c->position;
		struct pos at;

		if (!registered(c))
			continue;
		seq = seq < run->start.seq ? run->start.seq : seq > run->end.seq ? run->end.seq : seq;
		at = on_run(q, run, seq);
		c->position = c->synced = at.seq;
		c->position_byte = c->synced_byte = at.byte;
		if (c->attach_position > at.seq)
			c->attach_position = at.seq;
		if (!any || at.seq < low.seq)
			low = at;
		any = true;
	}
	q->h->producer.tail_byte = run->end.byte;
	q->h->producer.tail = run->end.seq;
	store_floor_locked(q, any ? low : run->start);
	/* Records past the run are dropped and their sequence numbers given
	 * out again: a record forwarded before (a Nats-Msg-Id "<id>:<seq>")
	 * must not make its successor look like a duplicate, so the queue
	 * gets a new id (its records forwarded again are duplicates under the
	 * new one: at least once). */
	if (tail.seq > run->end.seq)
		(void)new_id(q->h->id);
	if (!dropped)
		return;
	st->salvages++;
	st->salvage_usec = realtime_usec();
	st->below_from = floor.seq;
	st->below_to = run->start.seq > floor.seq ? run->start.seq : floor.seq;
	st->above_from = run->end.seq;
	st->above_to = tail.seq > run->end.seq ? tail.seq : run->end.seq;
	st->dropped_bytes = (run->start.seq > floor.seq ? run->start.byte - floor.byte : 0) +
	                    (tail.byte > run->end.byte ? tail.byte - run->end.byte : 0);
}

/* Whether a process died in the middle of storing a pair {seq, byte}
 * (so that the pair may be half stored), although the file was closed
 * cleanly since (a last close does not look): the mutex held by the dead,
 * or a cursor whose byte is not where its record is: at the tail, not the
 * tail's byte (or padding and fill frames up to it); else the frame there not intact, or (a cursor, stored
 * outside the mutex) not where the frames' lengths from its synced
 * cursor put record seq.  The synced pair is stored under the mutex, whose
 * word says whether its writer died.  One frame per cursor and the
 * records between the two cursors of a consumer (none, or one release's,
 * but with sync = interval), not a walk of the ring. */
static bool pairs_suspect(struct mmapq *q, struct pos tail)
{
	uint32_t word;

	memcpy(&word, &q->h->lock, sizeof(word));
	if (word != 0)
		return true;
	for (uint32_t i = 0; i < q->max_consumers; i++) {
		const struct mmapq_consumer *c = &q->h->consumers[i];
		const struct pos at[2] = {{c->position, c->position_byte}, {c->synced, c->synced_byte}};

		for (int k = 0; registered(c) && k < 2; k++) {
			uint64_t b = at[k].byte;
			const uint8_t *d;
			uint32_t l;

			if (at[k].seq == tail.seq ?
			    fills_end(q, at[k].byte, tail.byte) != tail.byte :
			    frame_next(q, &b, tail.byte, true, &d, &l) < 0)
				return true;
			if (k == 0 && cursor_of(q, c, tail.byte).byte != at[0].byte)
				return true;
		}
	}
	return false;
}

/*
 * Alone (the attach byte held exclusively, so nothing moves): if the file
 * was not closed cleanly, or a pair may be half stored (pairs_suspect), or
 * always (mmapq_repair), walk it and keep its best run (marked in use
 * first: mark_in_use).  Returns how many records were dropped, or -errno
 * (err said).
 */
int salvage_alone(struct mmapq *q, bool always, struct mmapq_salvage *report,
                  struct mmapq_error *err)
{
	struct mmapq_header *h = q->h;
	struct pos floor = floor_locked(q), tail = {h->producer.tail, h->producer.tail_byte};
	uint64_t dropped = 0;

	if (always || h->state.clean != 1 || pairs_suspect(q, tail)) {
		struct run run;
		int r;

		/* a repair writes into a file marked clean: in use first */
		if ((r = mark_in_use(q, err)) < 0)
			return r;

		if (!aligned(floor.byte)) {
			set_err(err, "%s: oldest record kept at byte %" PRIu64 ", not a multiple of %" PRIu32
			        " (the header is damaged: the file cannot be salvaged)", q->path, floor.byte,
			        MMAPQ_FRAME_ALIGN);
			return -EBADMSG;
		}
		struct pos from;

		run = best_run(q, floor, tail);
		from = wanted_from(q, floor);
		if (run.start.seq > from.seq)
			dropped += run.start.seq - from.seq;
		if (tail.seq > run.end.seq)
			dropped += tail.seq - run.end.seq;
		mmapq_fault("salvage.walked");
		keep_run(q, &run, from, tail, dropped != 0);
		if (report && dropped)
			*report = (struct mmapq_salvage){
				h->state.salvages, h->state.salvage_usec, h->state.below_from,
				h->state.below_to, h->state.above_from, h->state.above_to,
				h->state.dropped_bytes};
		else if (report)
			*report = (struct mmapq_salvage){.count = h->state.salvages};
	}
	return dropped > INT32_MAX ? INT32_MAX : (int)dropped;
}

/* Alone, the file checked: mark it in use (clean = 0) and write the header
 * to disk, before anything else is written, so that a clean mark is never
 * older than what follows it; the cursors go to disk with it, which
 * reinit_sync_alone relies on when it takes them as synced.  A file
 * refused keeps its mark, and is refused again. */
int mark_in_use(struct mmapq *q, struct mmapq_error *err)
{
	int r;

	q->h->state.clean = 0;
	r = sync_header(q);
	if (r < 0)
		set_err(err, "%s: cannot write its header: %s", q->path, strerror(-r));
	return r;
}
