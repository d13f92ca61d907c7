/* SPDX-License-Identifier: MIT */
/*
 * ring.c -- the ring of frames: produce (reserve, put, claim and commit,
 * publish) and consume (available, get, copy, release), and the observer's
 * peek.  These are the hot paths: each call is a few loads and stores of
 * the handle and of the frames, and the mutex once per batch at most; what
 * makes each step safe against a SIGKILL at any instant is in mutex.c
 * ("Crash analysis"), what is on disk when in mmapq_format.h ("Write
 * order"), and each acquire and release below says what it pairs with.
 */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fault.h"

/* ---- msync -------------------------------------------------------------- */

static uintptr_t page_size(void)
{
	static long pagesize;

	if (!pagesize)
		pagesize = sysconf(_SC_PAGESIZE);
	return (uintptr_t)pagesize;
}

/* msync(MS_SYNC) of the pages holding [p, p + len): 0 or -errno (EIO: the
 * file system could not write them back, ENOSPC, ...). */
int sync_bytes(const void *p, size_t len)
{
	uintptr_t start, end;

	start = (uintptr_t)p & ~(page_size() - 1);
	end = (uintptr_t)p + len;
	return msync((void *)start, end - start, MS_SYNC) < 0 ? neg_errno() : 0;
}

int sync_header(const struct mmapq *q)
{
	return sync_bytes(q->h, MMAPQ_HEADER_SIZE);
}

/*
 * The ring's bytes at positions [from, to).  Where they wrap, one msync of
 * the whole ring, not one of each piece: every msync ends in a flush of
 * the disk's cache, a round trip of its own, and a group of records wraps
 * once a lap.  The pages outside the range that it writes too are what
 * write-back may write at any time: frames beyond the tail on disk (ours
 * not yet published, other producers' reservations), or pages made
 * writable ahead of the frames (prefault_room), unchanged.
 */
int sync_ring(const struct mmapq *q, uint64_t from, uint64_t to)
{
	uint64_t off = from & q->mask, n = to - from;

	if (n == 0)
		return 0;
	if (off + n <= q->size)
		return sync_bytes(q->ring + off, n);
	return sync_bytes(q->ring, q->size);
}

/* ---- floor, wake-ups: both sides ---------------------------------------- */

/* floor as one consistent pair without the mutex (observers): the seqlock
 * of struct mmapq_floor. */
int snapshot_floor(const struct mmapq *q, struct pos *floor)
{
	const struct mmapq_floor *f = &q->h->floor;

	for (int i = 0; i < 10000; i++) {
		/* acquire: pairs with the writer's final store-release of gen,
		 * so the pair it wrote before is visible */
		uint64_t g1 = __atomic_load_n(&f->gen, __ATOMIC_ACQUIRE), g2;
		struct pos p;

		if (g1 & 1)
			continue;
		p.seq = __atomic_load_n(&f->seq, __ATOMIC_RELAXED);
		p.byte = __atomic_load_n(&f->byte, __ATOMIC_RELAXED);
		/* the pair's loads stay before the second look at gen */
		acquire_fence();
		g2 = __atomic_load_n(&f->gen, __ATOMIC_RELAXED);
		if (g1 == g2) {
			*floor = p;
			return 0;
		}
	}
	return -EAGAIN;
}

/* floor, then tail {seq, byte}, as one instant saw them, without the mutex
 * (observers): floor read again after tail, and the three taken only if it
 * stood still.  A floor read before a tail that is newer would not bound
 * it: the producer may meanwhile have written up to a later floor + size,
 * which would look like a tail more than a ring ahead (damage). */
int snapshot_positions(const struct mmapq *q, struct pos *floor, struct pos *tail)
{
	for (int i = 0; i < 10000; i++) {
		int r = snapshot_floor(q, floor);

		if (r < 0)
			return r;
		tail->seq = load_tail(q);
		tail->byte = load_tail_byte(q);
		/* the loads of tail stay before the second look at floor */
		acquire_fence();
		if (__atomic_load_n(&q->h->floor.byte, __ATOMIC_RELAXED) == floor->byte)
			return 0;
	}
	return -EAGAIN;
}

/* Mutex held (or alone): floor = p, as the seqlock writer of struct
 * mmapq_floor. */
void store_floor_locked(struct mmapq *q, struct pos p)
{
	struct mmapq_floor *f = &q->h->floor;
	uint64_t g = __atomic_load_n(&f->gen, __ATOMIC_RELAXED);

	__atomic_store_n(&f->gen, g + 1, __ATOMIC_RELAXED);
	/* the odd gen is visible before any part of the new pair */
	release_fence();
	__atomic_store_n(&f->seq, p.seq, __ATOMIC_RELAXED);
	mmapq_fault("floor.seq"); /* the pair half stored */
	/* release: the consumers' reads of the frames below byte (ordered
	 * before this through the mutex) happen before the producer, whose
	 * acquire load of byte sees this, overwrites them */
	__atomic_store_n(&f->byte, p.byte, __ATOMIC_RELEASE);
	__atomic_store_n(&f->gen, g + 2, __ATOMIC_RELEASE);
}

/*
 * Mutex held: floor raised to the lowest synced cursor of the registered
 * consumers, if that is higher (never lowered: a cursor below floor is
 * corruption).  With nobody registered floor stays (the records wait for
 * the next consumer).  true if it moved: the producer may have room now.
 * The synced cursors are read relaxed: each was stored under the mutex we
 * hold.
 */
bool floor_update_locked(struct mmapq *q)
{
	struct pos min = {UINT64_MAX, 0}, floor = floor_locked(q);

	for (uint32_t i = 0; i < q->max_consumers; i++) {
		const struct mmapq_consumer *c = &q->h->consumers[i];
		uint64_t s;

		if (!registered(c))
			continue;
		s = __atomic_load_n(&c->synced, __ATOMIC_RELAXED);
		if (s < min.seq)
			min = (struct pos){s, __atomic_load_n(&c->synced_byte, __ATOMIC_RELAXED)};
	}
	if (min.seq == UINT64_MAX || min.seq <= floor.seq)
		return false;
	store_floor_locked(q, min);
	return true;
}

/* Mutex held, floor moved: wake every producer that waits for room (the
 * header's not_full.waiting says whether one does: one flag to look at
 * for a consumer's release). */
void signal_producers_locked(struct mmapq *q, bool always)
{
	if (!always && !__atomic_load_n(&q->h->not_full.waiting, __ATOMIC_RELAXED))
		return;
	always ? mmapq_cond_broadcast(&q->h->not_full) : mmapq_cond_signal(&q->h->not_full);
	for (uint32_t i = 0; i < q->max_producers; i++) {
		struct mmapq_cond *c = &q->h->producers[i].room;

		always ? mmapq_cond_broadcast(c) : mmapq_cond_signal(c);
		if (always)
			mmapq_cond_broadcast(&q->h->producers[i].turn);
	}
}

/* Mutex held: wake every registered consumer that waits (only those: a
 * free entry's flag is cleared when it is removed). */
void signal_consumers_locked(struct mmapq *q, bool always)
{
	for (uint32_t i = 0; i < q->max_consumers; i++) {
		struct mmapq_consumer *c = &q->h->consumers[i];

		/* the wait flag first: the producer reads the line a consumer
		 * writes only when it goes to sleep, not its busy line 0 */
		if (!always && !__atomic_load_n(&c->not_empty.waiting, __ATOMIC_RELAXED))
			continue;
		if (!registered(c))
			continue;
		always ? mmapq_cond_broadcast(&c->not_empty) : mmapq_cond_signal(&c->not_empty);
	}
}

/*
 * frame_step's slow path (queue.h): from the padding or fill frame at
 * *byte whose len is *len, past every padding and fill frame that follows,
 * to the frame of a record: 0 with *byte and *len its; -EBADMSG if one of
 * them is not what it says (padding at offset 0, a fill not a multiple of
 * 8 or past the ring's end) or none is left below end.  With check each
 * one's crc (its byte position and len).  Each step moves at least 8
 * bytes, so a ring of garbage ends the loop at end.
 */
int frames_skip(const struct mmapq *q, uint64_t *byte, uint32_t *len, uint64_t end, bool check)
{
	uint64_t b = *byte;
	uint32_t l = *len;

	while (l & MMAPQ_FRAME_FILL_BIT) {
		uint64_t off = b & q->mask, n;
		const struct mmapq_frame *f = frame_at(q, b);

		if (l == MMAPQ_FRAME_PAD) {
			if (off == 0)
				return -EBADMSG;
			n = q->size - off;
		} else {
			n = sizeof(*f) + (l & ~MMAPQ_FRAME_FILL_BIT);
			if (n % MMAPQ_FRAME_ALIGN || off + n > q->size)
				return -EBADMSG;
		}
		if (check && __atomic_load_n(&f->crc, __ATOMIC_RELAXED) != frame_crc(b, l, NULL))
			return -EBADMSG;
		b += n;
		if (b >= end)
			return -EBADMSG;
		l = __atomic_load_n(&frame_at(q, b)->len, __ATOMIC_RELAXED);
	}
	*byte = b;
	*len = l;
	return 0;
}

/*
 * Where the padding and fill frames from byte end, walking no further than
 * end (their crcs checked): end itself if they fill [byte, end) exactly,
 * else less.  A tail_byte past the frame of the last record published may
 * be right: a reservation's unused end, or the padding it needed, lies
 * before the next one.
 */
uint64_t fills_end(const struct mmapq *q, uint64_t byte, uint64_t end)
{
	while (byte < end) {
		const struct mmapq_frame *f = frame_at(q, byte);
		uint32_t l = __atomic_load_n(&f->len, __ATOMIC_RELAXED);
		uint64_t off = byte & q->mask, n;

		if (!(l & MMAPQ_FRAME_FILL_BIT))
			break;
		if (l == MMAPQ_FRAME_PAD)
			n = off ? q->size - off : 0;
		else
			n = sizeof(*f) + (l & ~MMAPQ_FRAME_FILL_BIT);
		if (n == 0 || n % MMAPQ_FRAME_ALIGN || off + n > q->size || byte + n > end ||
		    __atomic_load_n(&f->crc, __ATOMIC_RELAXED) != frame_crc(byte, l, NULL))
			break;
		byte += n;
	}
	return byte;
}

/*
 * From record from.seq (its frame, or the padding and fills before it, at
 * from.byte) to record seq, by the frames' lengths, never past end: *byte
 * is where record seq's frame (or padding, fills) starts.  -EBADMSG if a
 * frame on the way is not one.  Checksums are not looked at.
 */
int find_record(struct mmapq *q, struct pos from, uint64_t seq, uint64_t end, uint64_t *byte)
{
	while (from.seq < seq) {
		const uint8_t *d;
		uint32_t l;

		if (frame_next(q, &from.byte, end, false, &d, &l) < 0)
			return -EBADMSG;
		from.seq++;
	}
	*byte = from.byte;
	return 0;
}

/* ---- producer ----------------------------------------------------------- */

/*
 * Fan-in (DESIGN.md): each producer writes its records into a reservation
 * of its own, [rsv_from, rsv_to) of the ring, taken under the mutex at
 * claim_byte by its first put after a publish, filled outside the mutex,
 * and committed under it by mmapq_publish, which then advances tail past
 * every committed reservation at the bottom, in order.  The handle: our
 * frames are [published.byte, tail.byte) of the reservation, which ends at
 * limit (limit == tail.byte while we hold none, so that a put asks for
 * one); tail.seq - published.seq records are pending; tail.seq is what
 * mmapq_next_seq says (exact while we are the only producer).  rsv_open:
 * our entry's reservation is OPEN; rsv_idle: it is IDLE, [tail.byte,
 * idle_to), taken at our last publish for the next batch, which our first
 * put makes OPEN with a compare-and-swap; rsv_committed: committed, tail
 * not past it yet (a publish interrupted while it waited).
 */

/* floor as the producer sees it: a floor behind the tail, or more than a
 * ring behind it, is corruption, not a crash.  Safe with or without the
 * mutex. */
int check_floor(const struct mmapq *q)
{
	uint64_t floor = load_floor_byte(q), tail_byte = load_tail_byte(q);

	if (floor > tail_byte || tail_byte - floor > q->size)
		return -EBADMSG;
	return 0;
}

/* Bytes a record of len takes at byte position b: its frame, and the
 * padding before it if it does not fit before the ring's end. */
static inline uint64_t need_at(const struct mmapq *q, uint64_t b, uint32_t len)
{
	uint64_t end = q->size - (b & q->mask), fb = mmapq_frame_bytes(len);

	return fb <= end ? fb : end + fb;
}

static inline uint64_t need_at_tail(const struct mmapq *q, uint32_t len)
{
	return need_at(q, q->tail.byte, len);
}

/* Whether a record of len fits in our reservation. */
static inline bool fits(const struct mmapq *q, uint32_t len)
{
	return q->tail.byte + need_at_tail(q, len) <= q->limit;
}

/* Bytes that records may surely take in [start, end), whatever their
 * lengths (mmapq.h, mmapq_reserve): the free bytes, less what padding at
 * the ring's end may waste, which is less than one frame of max_record. */
static uint64_t sure_room_at(const struct mmapq *q, uint64_t start, uint64_t end)
{
	uint64_t free_b = end - start, lap = q->size - (start & q->mask);
	uint64_t waste = mmapq_frame_bytes(q->max_record);

	if (free_b <= lap)
		return free_b;
	if (lap < waste)
		waste = lap;
	return free_b - waste;
}

static int check_len(const struct mmapq *q, uint32_t len)
{
	if (len > q->max_record || (q->format == MMAPQ_FORMAT_INT && len != sizeof(int64_t)))
		return -EMSGSIZE;
	return 0;
}

/* The most a reservation takes at once (more when one record needs more):
 * an eighth of the ring, so that several producers share it (a frame of
 * the largest record in a small ring), and at most a fill frame's worth. */
static uint64_t rsv_cap(const struct mmapq *q)
{
	uint64_t cap = q->size / 8, big = mmapq_frame_bytes(q->max_record);

	if (cap < big)
		cap = big;
	return cap > (UINT64_C(1) << 30) ? UINT64_C(1) << 30 : cap;
}

/* Beyond the tail, in bytes that are ours (nobody reads there): fill frames
 * over [from, to), split where the ring ends and where one would exceed
 * MMAPQ_FRAME_FILL_MAX. */
static void write_fills(struct mmapq *q, uint64_t from, uint64_t to)
{
	while (from < to) {
		uint64_t lap_end = from - (from & q->mask) + q->size;
		uint64_t n = (to < lap_end ? to : lap_end) - from - sizeof(struct mmapq_frame);
		struct mmapq_frame *f = frame_at(q, from);
		uint32_t len;

		if (n > MMAPQ_FRAME_FILL_MAX)
			n = MMAPQ_FRAME_FILL_MAX;
		len = MMAPQ_FRAME_FILL_BIT | (uint32_t)n;
		f->len = len;
		f->crc = frame_crc(from, len, NULL);
		from += sizeof(struct mmapq_frame) + n;
	}
	mmapq_fault("fill.written");
}

static inline uint32_t rsv_state(const struct mmapq_producer *e)
{
	return __atomic_load_n(&e->rsv_state, __ATOMIC_ACQUIRE);
}

static inline uint64_t claim_locked(const struct mmapq *q)
{
	return __atomic_load_n(&q->h->producer.claim_byte, __ATOMIC_RELAXED);
}

/* Mutex held: the entry whose reservation is lowest (they lie back to back
 * from tail_byte), or -1 if there is none. */
static int lowest_locked(const struct mmapq *q)
{
	uint64_t best = UINT64_MAX, best_to = UINT64_MAX;
	int lo = -1;

	/* an empty reservation starts where the next one does: it is the
	 * lower of the two (passed over, it would stay below tail_byte, and
	 * the advance would stop at it for good) */
	for (uint32_t i = 0; i < q->max_producers; i++) {
		const struct mmapq_producer *e = &q->h->producers[i];

		if (rsv_state(e) != MMAPQ_RSV_NONE &&
		    (e->rsv_from < best || (e->rsv_from == best && e->rsv_to < best_to))) {
			best = e->rsv_from;
			best_to = e->rsv_to;
			lo = (int)i;
		}
	}
	return lo;
}

/* Mutex held: reservation e, whose owner will not write into it (it died,
 * or let it go idle and we took it back), is made part of the stream: the
 * last one is given back (claim_byte goes back to its start), any other
 * gets fill frames over its bytes (on disk first with batch and always,
 * for tail may pass them) and is committed with no records.  Each store
 * is one a SIGKILL may stop after: the state TAKEN (or OPEN, an abandoned
 * one) says it is not done, and whoever finds it does it again. */
static void fill_locked(struct mmapq *q, struct mmapq_producer *e)
{
	uint64_t from = e->rsv_from, to = e->rsv_to;

	if (from == to) {
		/* no bytes to fill or give back (one given back to nothing
		 * by an owner that died before its state said so) */
		__atomic_store_n(&e->rsv_state, MMAPQ_RSV_NONE, __ATOMIC_RELEASE);
		return;
	}
	if (to >= claim_locked(q)) {
		__atomic_store_n(&q->h->producer.claim_byte, from, __ATOMIC_RELAXED);
		mmapq_fault("fill.given_back");
		__atomic_store_n(&e->rsv_state, MMAPQ_RSV_NONE, __ATOMIC_RELEASE);
		return;
	}
	write_fills(q, from, to);
	if (sync_each(q))
		(void)sync_ring(q, from, to); /* an error: found again by the next msync */
	__atomic_store_n(&e->rsv_records, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&e->rsv_state, MMAPQ_RSV_COMMITTED, __ATOMIC_RELEASE);
}

/*
 * Mutex held: tail advanced past every committed reservation at the
 * bottom, in order: tail_byte to its end (relaxed), tail by its records
 * (store-release: publishes its frames), then the reservation cleared and
 * its owner's turn signalled.  An idle reservation of another producer at
 * the bottom, with a committed one waiting behind it, is taken back
 * (compare-and-swap IDLE -> TAKEN: its owner's own swap to OPEN either
 * came first, and it is waited for, or fails).  The consumers that wait
 * are woken if tail moved.  true if it did.
 */
bool advance_locked(struct mmapq *q)
{
	bool moved = false;

	for (;;) {
		int lo = lowest_locked(q);
		struct mmapq_producer *e;
		uint64_t tail;
		uint32_t st, idle = MMAPQ_RSV_IDLE;

		if (lo < 0)
			break;
		e = &q->h->producers[lo];
		st = rsv_state(e);
		if (st == MMAPQ_RSV_IDLE && e != q->prod) {
			bool waiting = false;

			for (uint32_t i = 0; i < q->max_producers; i++)
				waiting |= rsv_state(&q->h->producers[i]) == MMAPQ_RSV_COMMITTED;
			if (!waiting || !__atomic_compare_exchange_n(&e->rsv_state, &idle, MMAPQ_RSV_TAKEN,
			                                             false, __ATOMIC_ACQ_REL,
			                                             __ATOMIC_ACQUIRE))
				break;
			mmapq_fault("takeback.taken");
			fill_locked(q, e);
			continue;
		}
		if (st != MMAPQ_RSV_COMMITTED ||
		    e->rsv_from != __atomic_load_n(&q->h->producer.tail_byte, __ATOMIC_RELAXED))
			break;
		tail = __atomic_load_n(&q->h->producer.tail, __ATOMIC_RELAXED);
		__atomic_store_n(&q->h->producer.tail_byte, e->rsv_to, __ATOMIC_RELAXED);
		mmapq_fault("advance.tail_byte"); /* the pair half stored */
		/* release: the frames written before (the reservation's owner
		 * committed them under the mutex we hold), and tail_byte,
		 * become visible to the consumers' acquire loads of tail */
		__atomic_store_n(&q->h->producer.tail, tail + e->rsv_records, __ATOMIC_RELEASE);
		mmapq_fault("advance.stored");
		__atomic_store_n(&e->rsv_state, MMAPQ_RSV_NONE, __ATOMIC_RELEASE);
		if (e != q->prod)
			mmapq_cond_signal(&e->turn);
		moved = true;
	}
	if (moved)
		signal_consumers_locked(q, false);
	return moved;
}

/*
 * Mutex held: every reservation whose owner is gone (its role byte free:
 * it died, and the kernel dropped its lock) is made part of the stream as
 * fill_locked does (an open one's records were never published: its
 * publish had not returned), one taken back by a process that died while
 * it filled it is filled again, and tail advanced.  Our own entry is ours.
 * Needs the lock file (a producer has it).
 */
int reap_locked(struct mmapq *q)
{
	for (uint32_t i = 0; i < q->max_producers; i++) {
		struct mmapq_producer *e = &q->h->producers[i];
		uint32_t st = rsv_state(e);

		if (e == q->prod) {
			/* ours, left by a process of our name that died */
			if (q->rsv_open || q->rsv_idle || q->rsv_committed ||
			    (st != MMAPQ_RSV_OPEN && st != MMAPQ_RSV_IDLE && st != MMAPQ_RSV_TAKEN))
				continue;
		} else if (st == MMAPQ_RSV_OPEN || st == MMAPQ_RSV_IDLE) {
			if (held_by_other(q, __atomic_load_n(&e->pid, __ATOMIC_RELAXED),
			                  MMAPQ_LOCK_PRODUCER + (off_t)i))
				continue;
		} else if (st != MMAPQ_RSV_TAKEN) {
			continue;
		}
		mmapq_fault("reap.found");
		fill_locked(q, e);
	}
	(void)advance_locked(q);
	return 0;
}

/*
 * batch and interval: once WRITEBACK_KICK bytes of whole pages of frames
 * lie below the page that tail is in, they are handed to write-back
 * (sync_file_range SYNC_FILE_RANGE_WRITE, which starts the I/O and does
 * not wait), so that the disk writes them while the producer goes on; the
 * msync that makes them durable (publish, mmapq_sync) then waits for I/O
 * in flight instead of starting it all.  The pages are complete (the
 * producer writes at tail and beyond) and lie beyond the tail on disk
 * until that msync and the header's: the write order does not change.
 * Write-back started early is a hint: an error here is found again by the
 * msync, which reports it.
 */
#define WRITEBACK_KICK (256u << 10)

static void kick_writeback(struct mmapq *q)
{
	uint64_t from = q->kicked > q->published.byte ? q->kicked : q->published.byte;
	uint64_t to = q->tail.byte & ~(uint64_t)(page_size() - 1);
	uint64_t base = (uint64_t)(q->ring - (uint8_t *)q->h), off, n;

	if (to < from || to - from < WRITEBACK_KICK)
		return;
	if (to - from > q->size)
		from = to - q->size;
	off = from & q->mask;
	n = to - from;
	if (off + n > q->size) {
		(void)sync_file_range(q->fd, (off64_t)(base + off), (off64_t)(q->size - off),
		                      SYNC_FILE_RANGE_WRITE);
		n -= q->size - off;
		off = 0;
	}
	(void)sync_file_range(q->fd, (off64_t)(base + off), (off64_t)n, SYNC_FILE_RANGE_WRITE);
	q->kicked = to;
}

/*
 * batch and interval: the pages the next frames go to are made writable
 * ahead of them, PREFAULT_AHEAD bytes at a time, by one madvise
 * (MADV_POPULATE_WRITE).  Write-back write-protects every page it writes
 * (the next store into it faults, and the file system marks it dirty
 * again), so without this each page of frames costs a page fault per lap
 * of the ring; the madvise takes the same faults in the kernel in one
 * call, without a trap per page.  It writes no byte: a page it dirties
 * holds what it held, so nothing reaches the disk that was not there, and
 * only our reservation's room (below limit, freed by every consumer) is
 * touched.  A hint: an error leaves the stores to fault as before, and a
 * kernel without it (EINVAL, before Linux 5.14) is not asked again.
 */
#define PREFAULT_AHEAD (256u << 10)

static void prefault_room(struct mmapq *q)
{
	uint64_t page = page_size(), from, to, off, n;
	int saved = errno;

	if (q->no_prefault || q->size < page || q->prefaulted > q->tail.byte + PREFAULT_AHEAD / 2)
		return;
	from = q->prefaulted > q->tail.byte ? q->prefaulted : q->tail.byte & ~(page - 1);
	to = (q->tail.byte + PREFAULT_AHEAD < q->limit ? q->tail.byte + PREFAULT_AHEAD : q->limit) &
	     ~(page - 1);
	if (to <= from)
		return;
	off = from & q->mask;
	n = to - from < q->size ? to - from : q->size;
	if (off + n > q->size) {
		if (madvise(q->ring + off, q->size - off, MADV_POPULATE_WRITE) < 0 && errno == EINVAL)
			q->no_prefault = true;
		n -= q->size - off;
		off = 0;
	}
	if (madvise(q->ring + off, n, MADV_POPULATE_WRITE) < 0 && errno == EINVAL)
		q->no_prefault = true;
	q->prefaulted = to;
	errno = saved;
}

/* After frames were put (sync batch, interval): write-back of the whole
 * pages behind them started, the pages ahead made writable. */
static void after_put(struct mmapq *q)
{
	kick_writeback(q);
	prefault_room(q);
}

/* Write order, before a commit (sync batch; always synced each record as
 * it was put): the frames about to be committed, and the fills after
 * them up to to, are on disk first. */
static int sync_pending(const struct mmapq *q, uint64_t to)
{
	if (q->sync != MMAPQ_SYNC_BATCH)
		return 0;
	return sync_ring(q, q->published.byte, to);
}

/*
 * Mutex held (or alone after EOWNERDEAD's checks): the reservations made
 * whole where a process that died holding the mutex left them half
 * stored (see "Fan-in" in DESIGN.md for the orders of the stores):
 *   - an advance half done: tail_byte at the end of the lowest committed
 *     reservation, tail not yet past its records (or past them, the
 *     reservation not yet cleared): tail, or the reservation, finished;
 *   - claim_byte behind a reservation's end (a give-back half done) or
 *     ahead of every one's (a reservation taken, its state not yet
 *     stored): claim_byte at the end of the highest, tail_byte if none.
 * false if they are not back to back from tail_byte to claim_byte then:
 * not a state a crash leaves.  Needs tail's frames whole (the caller's
 * walk from floor checked them).
 */
bool reservations_whole_locked(struct mmapq *q)
{
	struct mmapq_tail *t = &q->h->producer;
	uint64_t tail = __atomic_load_n(&t->tail, __ATOMIC_RELAXED);
	uint64_t tail_byte = __atomic_load_n(&t->tail_byte, __ATOMIC_RELAXED), end, hi, at;
	struct pos floor = floor_locked(q);
	int lo = lowest_locked(q);

	if (lo >= 0) {
		struct mmapq_producer *e = &q->h->producers[lo];

		if (rsv_state(e) == MMAPQ_RSV_COMMITTED && e->rsv_from < tail_byte &&
		    e->rsv_to == tail_byte) {
			/* tail_byte stored: are its records below tail? */
			if (find_record(q, floor, tail, tail_byte, &end) < 0)
				return false;
			if (fills_end(q, end, tail_byte) != tail_byte)
				__atomic_store_n(&t->tail, tail + e->rsv_records, __ATOMIC_RELEASE);
			__atomic_store_n(&e->rsv_state, MMAPQ_RSV_NONE, __ATOMIC_RELEASE);
		}
	}
	hi = tail_byte;
	for (uint32_t i = 0; i < q->max_producers; i++) {
		const struct mmapq_producer *e = &q->h->producers[i];

		if (rsv_state(e) != MMAPQ_RSV_NONE && e->rsv_to > hi)
			hi = e->rsv_to;
	}
	if (hi > floor.byte + q->size)
		return false;
	__atomic_store_n(&t->claim_byte, hi, __ATOMIC_RELAXED);
	/* back to back: each from where the one below ends */
	for (at = tail_byte; at < hi;) {
		bool found = false;

		for (uint32_t i = 0; i < q->max_producers && !found; i++) {
			const struct mmapq_producer *e = &q->h->producers[i];

			if (rsv_state(e) != MMAPQ_RSV_NONE && e->rsv_from == at && e->rsv_to > at) {
				at = e->rsv_to;
				found = true;
			}
		}
		if (!found)
			return false;
	}
	for (uint32_t i = 0; i < q->max_producers; i++) {
		const struct mmapq_producer *e = &q->h->producers[i];

		/* an empty one (taken with nothing in it, or given back half) */
		if (rsv_state(e) != MMAPQ_RSV_NONE &&
		    (e->rsv_from < tail_byte || e->rsv_to > hi || e->rsv_from > e->rsv_to))
			return false;
	}
	return true;
}

/* Alone: every reservation dropped (its producer is gone: what it had not
 * published is not promised), claim_byte back at tail_byte. */
void drop_reservations_alone(struct mmapq *q)
{
	for (uint32_t i = 0; i < q->max_producers; i++)
		q->h->producers[i].rsv_state = MMAPQ_RSV_NONE;
	q->h->producer.claim_byte = q->h->producer.tail_byte;
}

/* Mutex held: [from, to) at claim_byte taken into our entry, in state
 * (OPEN, IDLE), in the order a SIGKILL may stop anywhere: its bytes, then
 * claim_byte (fault point fault), then its state. */
static void take_locked(struct mmapq *q, uint64_t from, uint64_t to, uint32_t state,
                        const char *fault)
{
	struct mmapq_producer *e = q->prod;

	__atomic_store_n(&e->rsv_from, from, __ATOMIC_RELAXED);
	__atomic_store_n(&e->rsv_to, to, __ATOMIC_RELAXED);
	__atomic_store_n(&e->rsv_records, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&q->h->producer.claim_byte, to, __ATOMIC_RELAXED);
	mmapq_fault(fault);
	__atomic_store_n(&e->rsv_state, state, __ATOMIC_RELEASE);
}

/*
 * Mutex held: room for a record of len in our reservation: extended if it
 * is the last one (claim_byte at its end), else a new one taken at
 * claim_byte if we hold none; up to rsv_cap bytes, never past floor.byte +
 * size.  -ENOBUFS: no room (ours is not the last, or the ring is full), or
 * ours is committed and tail not past it yet.  The stores, in an order a
 * SIGKILL may stop anywhere (reservations_whole_locked makes them whole):
 * a new one's bytes, then claim_byte, then its state OPEN; an extension's
 * end, then claim_byte.
 */
static int reserve_locked(struct mmapq *q, uint32_t len)
{
	struct mmapq_producer *e = q->prod;
	uint64_t floor_end = floor_locked(q).byte + q->size, claim = claim_locked(q);
	uint64_t from = q->rsv_open ? q->tail.byte : claim, need, to;

	if (!q->rsv_open && rsv_state(e) == MMAPQ_RSV_COMMITTED)
		q->rsv_committed = true; /* filled by another as we let it idle */
	if (q->rsv_committed || (q->rsv_open && claim != q->limit) ||
	    (!q->rsv_open && rsv_state(e) != MMAPQ_RSV_NONE))
		return -ENOBUFS;
	need = from + need_at(q, from, len);
	if (need > floor_end)
		return -ENOBUFS;
	to = from + rsv_cap(q);
	to = to < need ? need : to > floor_end ? floor_end : to;
	if (q->rsv_open) {
		__atomic_store_n(&e->rsv_to, to, __ATOMIC_RELAXED);
		mmapq_fault("reserve.extended");
		__atomic_store_n(&q->h->producer.claim_byte, to, __ATOMIC_RELAXED);
	} else {
		take_locked(q, from, to, MMAPQ_RSV_OPEN, "reserve.claimed");
		q->rsv_open = true;
		/* the sequence numbers stay: nothing is pending, and a put's
		 * loop that asked for this reservation counts on from them */
		q->published.byte = q->tail.byte = from;
	}
	q->limit = to;
	return 0;
}

/* A put that does not fit in our reservation: the idle one we took at our
 * last publish made ours (OPEN, compare-and-swap: unless another took it
 * back meanwhile), else room found under the mutex (reserve_locked). */
static int more_room(struct mmapq *q, uint32_t len)
{
	int r;

	if (q->rsv_idle) {
		uint32_t idle = MMAPQ_RSV_IDLE;

		q->rsv_idle = false;
		/* acquire-release: a take-back that came first is seen (we
		 * then write nothing into those bytes), and ours is seen by
		 * whoever takes the mutex next */
		if (__atomic_compare_exchange_n(&q->prod->rsv_state, &idle, MMAPQ_RSV_OPEN, false,
		                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			q->rsv_open = true;
			q->limit = q->idle_to;
			if (fits(q, len))
				return 0;
		}
	}
	r = lock(q);
	if (r < 0)
		return r;
	r = reserve_locked(q, len);
	unlock(q);
	return r;
}

/*
 * Mutex held, our reservation open: committed with its records (the fill
 * frames over its unused end written by the caller, filled, unless it is
 * the last one, whose unused end goes back: claim_byte first, then its
 * end), counted in our entry.  A reservation with nothing in it is given
 * back, or committed empty.  false if the caller must write the fills
 * first (not the last one after all).
 */
static bool commit_locked(struct mmapq *q, bool filled)
{
	struct mmapq_producer *e = q->prod;
	uint64_t n = q->tail.seq - q->published.seq;
	bool last = claim_locked(q) == q->limit;

	if (!last && !filled && q->tail.byte < q->limit)
		return false;
	if (last && q->tail.byte < q->limit) {
		__atomic_store_n(&q->h->producer.claim_byte, q->tail.byte, __ATOMIC_RELAXED);
		mmapq_fault("commit.given_back");
		__atomic_store_n(&e->rsv_to, q->tail.byte, __ATOMIC_RELAXED);
		q->limit = q->tail.byte;
	}
	__atomic_store_n(&e->rsv_records, n, __ATOMIC_RELAXED);
	mmapq_fault("commit.locked");
	__atomic_store_n(&e->rsv_state, q->limit == e->rsv_from ? MMAPQ_RSV_NONE : MMAPQ_RSV_COMMITTED,
	                 __ATOMIC_RELEASE);
	mmapq_fault("commit.stored");
	q->rsv_open = false;
	q->rsv_committed = q->limit != e->rsv_from;
	count(&e->published, n);
	return true;
}

/* Mutex held: our idle reservation let go (close): given back if it is the
 * last one, else filled and committed empty (fill_locked), unless another
 * took it back already. */
static void release_idle_locked(struct mmapq *q)
{
	uint32_t idle = MMAPQ_RSV_IDLE;

	q->rsv_idle = false;
	if (__atomic_compare_exchange_n(&q->prod->rsv_state, &idle, MMAPQ_RSV_TAKEN, false,
	                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		fill_locked(q, q->prod);
}

/* Mutex held, tail past our reservation, no other reservation (we were the
 * lowest and the last): the next batch's taken now, idle, so that a lone
 * producer's next put needs no mutex (more_room's swap).  Another producer
 * that needs tail past it while we do not use it takes it back
 * (advance_locked); a producer blocked reading its input thus holds no one
 * up. */
static void rearm_locked(struct mmapq *q)
{
	uint64_t from = claim_locked(q), to = from + rsv_cap(q);
	uint64_t floor_end = floor_locked(q).byte + q->size;

	if (lowest_locked(q) >= 0 || from != __atomic_load_n(&q->h->producer.tail_byte, __ATOMIC_RELAXED))
		return;
	if (to > floor_end)
		to = floor_end;
	if (to < from + 2 * MMAPQ_FRAME_ALIGN)
		return;
	take_locked(q, from, to, MMAPQ_RSV_IDLE, "rearm.claimed");
	q->rsv_idle = true;
	q->idle_to = to;
	q->published.byte = q->tail.byte = q->limit = from;
}

/*
 * Mutex held: wait (on our turn word, slices of at most 0.5 s, asking the
 * interrupted callback) until tail passed our committed reservation; each
 * slice reaps what dead producers left below it and advances.  0 with the
 * mutex held; < 0 without it.
 */
static int wait_turn_locked(struct mmapq *q)
{
	for (;;) {
		int r;

		(void)reap_locked(q);
		if (rsv_state(q->prod) == MMAPQ_RSV_NONE) {
			q->rsv_committed = false;
			return 0;
		}
		r = wait_on_locked(q, &q->prod->turn, monotonic_ns() + 500000000u);
		if (r < 0 && r != -ETIMEDOUT)
			return r;
		if (r == -ETIMEDOUT && (r = lock(q)) < 0)
			return r;
	}
}

/*
 * Commit what we put, then wait until tail passed it (the reservations
 * below ours committed: "publish returned" means visible to the
 * consumers); an empty reservation is given back.  With *rearm, a lone
 * producer takes its next batch's reservation in the same critical
 * section.  Returns the records published, or < 0: -EINTR from the wait
 * leaves them committed, made visible in order by whoever advances tail
 * next (mmapq_pending() is 0).
 */
static int publish_all(struct mmapq *q, bool rearm)
{
	uint64_t n = q->tail.seq - q->published.seq;
	bool filled = false;
	int r, rs = 0;

	if (!q->rsv_open && !q->rsv_committed)
		return 0;
	if (q->rsv_open && q->tail.byte < q->limit && claim_locked(q) != q->limit) {
		/* not the last one, as far as we see: the unused end's fills go
		 * to disk with the frames */
		write_fills(q, q->tail.byte, q->limit);
		filled = true;
	}
	if (q->rsv_open)
		rs = sync_pending(q, filled ? q->limit : q->tail.byte);
	for (;;) {
		r = lock(q);
		if (r < 0)
			return r;
		mmapq_fault("publish.locked");
		if (!q->rsv_open || commit_locked(q, filled))
			break;
		/* the last one when we looked, not now: its fills first */
		unlock(q);
		write_fills(q, q->tail.byte, q->limit);
		filled = true;
		if (rs == 0)
			rs = sync_pending(q, q->limit);
	}
	(void)advance_locked(q);
	if (q->rsv_committed && (r = wait_turn_locked(q)) < 0) {
		q->published = q->tail;
		return r; /* the mutex was let go */
	}
	q->published.seq = q->tail.seq = __atomic_load_n(&q->h->producer.tail, __ATOMIC_RELAXED);
	q->limit = q->published.byte = q->tail.byte;
	if (rearm && n)
		rearm_locked(q);
	unlock(q);
	/* published whatever happens now: an error says it is not durable */
	if (rs == 0 && sync_each(q)) {
		rs = sync_header(q);
		if (rs == 0)
			q->durable = __atomic_load_n(&q->h->producer.tail_byte, __ATOMIC_RELAXED);
	}
	if (rs < 0)
		return rs;
	return (int)(n > INT_MAX ? INT_MAX : n);
}

int mmapq_publish(struct mmapq *q)
{
	if (q->role != MMAPQ_ROLE_PRODUCER || !q->prod)
		return q->put_refused ? q->put_refused : -EPERM;
	q->claimed = false;
	return publish_all(q, true);
}

/* mmapq_close: what we put published, our idle reservation let go. */
void release_producer(struct mmapq *q)
{
	if (!q->prod || q->legacy)
		return;
	q->claimed = false;
	(void)publish_all(q, false);
	if (q->rsv_idle && lock(q) == 0) {
		release_idle_locked(q);
		(void)advance_locked(q);
		unlock(q);
	}
}

/*
 * Waiting for room, as observers see it (struct mmapq_producer: the
 * producer alone writes these, relaxed).  A wait begins when a reserve has
 * to sleep or spin, not when a look finds the ring full; a reserve that
 * gives up at its deadline leaves it on (the caller waits again, a slice
 * at a time); room found ends it.  The time is counted into the total as
 * it passes, after every sleep (at most 0.5 s), so the total is a counter
 * that grows while a wait lasts.  CLOCK_REALTIME, as the times people
 * read: a step back counts nothing.
 */
static void blocked_count(struct mmapq *q)
{
	uint64_t now = realtime_usec();

	if (now > q->blocked_mark)
		count(&q->prod->blocked_total_usec, now - q->blocked_mark);
	q->blocked_mark = now ? now : 1;
}

static void blocked_begin(struct mmapq *q)
{
	if (q->blocked_mark)
		return; /* the wait a reserve that gave up left goes on */
	q->blocked_mark = realtime_usec();
	if (!q->blocked_mark)
		q->blocked_mark = 1;
	__atomic_store_n(&q->prod->blocked_usec, q->blocked_mark, __ATOMIC_RELAXED);
}

void blocked_end(struct mmapq *q)
{
	if (!q->blocked_mark || !q->prod)
		return;
	blocked_count(q);
	q->blocked_mark = 0;
	__atomic_store_n(&q->prod->blocked_usec, 0, __ATOMIC_RELAXED);
}

/* Mutex held: consumer c's cursor (and synced cursor) stored at to, in
 * the order a crash can stop anywhere ("Skipping" in mmapq_format.h): the
 * caller stored skip_to and the pending count first, and clears the bit
 * after.  Moves only forward: a cursor already past to keeps its place. */
static void skip_store_locked(struct mmapq_consumer *c, struct pos to)
{
	if (__atomic_load_n(&c->position, __ATOMIC_RELAXED) < to.seq) {
		__atomic_store_n(&c->position_byte, to.byte, __ATOMIC_RELAXED);
		mmapq_fault("skip.position_byte"); /* the pair half stored */
		__atomic_store_n(&c->position, to.seq, __ATOMIC_RELEASE);
	}
	if (__atomic_load_n(&c->synced, __ATOMIC_RELAXED) < to.seq) {
		__atomic_store_n(&c->synced_byte, to.byte, __ATOMIC_RELAXED);
		mmapq_fault("skip.synced_byte");
		__atomic_store_n(&c->synced, to.seq, __ATOMIC_RELAXED);
	}
}

/* Mutex held, alone or after EOWNERDEAD: every skip a producer that died
 * began is finished (its cursor stored at skip_to, found from floor, the
 * pending bit cleared).  false if one cannot be: skip_to outside [floor,
 * tail] or no record there, which no crash leaves. */
bool finish_skips_locked(struct mmapq *q)
{
	struct pos floor = floor_locked(q);
	uint64_t tail = __atomic_load_n(&q->h->producer.tail, __ATOMIC_RELAXED);
	uint64_t tail_byte = __atomic_load_n(&q->h->producer.tail_byte, __ATOMIC_RELAXED);

	for (uint32_t i = 0; i < q->max_consumers; i++) {
		struct mmapq_consumer *c = &q->h->consumers[i];
		uint64_t sk = __atomic_load_n(&c->skipped, __ATOMIC_RELAXED);
		struct pos to;

		if (!(sk & MMAPQ_SKIP_PENDING) || !registered(c))
			continue;
		to.seq = __atomic_load_n(&c->skip_to, __ATOMIC_RELAXED);
		/* floor is whole: it is stored only once no bit is pending */
		if ((__atomic_load_n(&q->h->floor.gen, __ATOMIC_RELAXED) & 1) || to.seq < floor.seq ||
		    to.seq > tail || find_record(q, floor, to.seq, tail_byte, &to.byte) < 0)
			return false;
		skip_store_locked(c, to);
		__atomic_store_n(&c->skipped, sk & ~MMAPQ_SKIP_PENDING, __ATOMIC_RELAXED);
	}
	return true;
}

/*
 * Mutex held, nothing of ours pending: make room up to byte need (where a
 * record that waits ends) by skipping the consumers that may be skipped
 * ("Skipping" in mmapq_format.h): from floor, whole records (below tail)
 * up to the first record boundary from which it fits; if every registered
 * consumer below it has the skip policy and is detached, each is moved
 * there and what it lost counted, and floor rises.  1 if it did; 0 if a
 * consumer must be waited for (or there is nothing to skip).
 */
static int skip_locked(struct mmapq *q, uint64_t need)
{
	struct pos floor = floor_locked(q), to = floor;
	uint64_t tail = __atomic_load_n(&q->h->producer.tail, __ATOMIC_RELAXED);
	uint64_t tail_byte = __atomic_load_n(&q->h->producer.tail_byte, __ATOMIC_RELAXED);
	bool skippers = false, any = false;

	if (need <= floor.byte + q->size)
		return 0;
	/* no consumer with the skip policy (the usual case): nothing to walk */
	for (uint32_t i = 0; i < q->max_consumers && !skippers; i++)
		skippers = registered(&q->h->consumers[i]) &&
		           (__atomic_load_n(&q->h->consumers[i].policy, __ATOMIC_RELAXED) & MMAPQ_ENTRY_SKIP);
	if (!skippers)
		return 0;
	while (to.byte + q->size < need && to.seq < tail) {
		const uint8_t *d;
		uint32_t l;

		if (frame_next(q, &to.byte, tail_byte, false, &d, &l) < 0)
			return -EBADMSG;
		to.seq++;
	}
	for (uint32_t i = 0; i < q->max_consumers; i++) {
		struct mmapq_consumer *c = &q->h->consumers[i];

		if (!registered(c) || __atomic_load_n(&c->synced, __ATOMIC_RELAXED) >= to.seq)
			continue;
		/* attached (its role byte held: by the consumer, or by a
		 * `consumer remove`), or not to be skipped: wait for it */
		if (!(__atomic_load_n(&c->policy, __ATOMIC_RELAXED) & MMAPQ_ENTRY_SKIP) ||
		    held_by_other(q, __atomic_load_n(&c->pid, __ATOMIC_RELAXED),
		                  MMAPQ_LOCK_CONSUMER + (off_t)i))
			return 0;
		any = true;
	}
	if (!any)
		return 0;
	for (uint32_t i = 0; i < q->max_consumers; i++) {
		struct mmapq_consumer *c = &q->h->consumers[i];
		uint64_t pos = __atomic_load_n(&c->position, __ATOMIC_RELAXED), sk;

		if (!registered(c) || __atomic_load_n(&c->synced, __ATOMIC_RELAXED) >= to.seq)
			continue;
		sk = __atomic_load_n(&c->skipped, __ATOMIC_RELAXED) + (pos < to.seq ? to.seq - pos : 0);
		__atomic_store_n(&c->skip_to, to.seq, __ATOMIC_RELAXED);
		__atomic_store_n(&c->skipped, sk | MMAPQ_SKIP_PENDING, __ATOMIC_RELAXED);
		mmapq_fault("skip.begun");
		skip_store_locked(c, to);
		mmapq_fault("skip.stored");
		__atomic_store_n(&c->skipped, sk, __ATOMIC_RELAXED);
	}
	(void)floor_update_locked(q);
	return 1;
}

/* Mutex held, nothing of ours open: where our next records would go, for
 * a record of len: in our idle reservation if it is the last one (it can
 * grow), else at claim_byte.  *need: where that record would end. */
static uint64_t next_start_locked(const struct mmapq *q, uint32_t len, uint64_t *need)
{
	uint64_t claim = claim_locked(q);
	uint64_t from = q->rsv_idle && claim == q->idle_to ? q->tail.byte : claim;

	*need = from + need_at(q, from, len);
	return from;
}

/* mmapq_reserve's slow path, the record not fitting as far as we know,
 * nothing of ours pending (publish_all came first): wait under the mutex
 * until a consumer moves floor far enough, or the deadline; the records
 * of consumers that may be skipped are skipped (skip_locked).  0 and
 * *room with room; -EAGAIN (deadline 0), -ETIMEDOUT, -EINTR or another
 * error without. */
static int reserve_wait(struct mmapq *q, uint32_t len, uint64_t deadline_ns, uint64_t *room)
{
	bool spun = false, skipped = false;
	int r = lock(q);

	if (r < 0)
		return r;
	for (;;) {
		uint64_t need, from = next_start_locked(q, len, &need);
		uint64_t floor_end = floor_locked(q).byte + q->size;

		r = check_floor(q);
		if (r < 0)
			break;
		if (need <= floor_end) {
			*room = sure_room_at(q, from, floor_end);
			break;
		}
		r = skip_locked(q, need);
		if (r < 0)
			break;
		if (r > 0) {
			skipped = true;
			continue; /* floor rose: fits now, unless a consumer is left to wait for */
		}
		if (!deadline_ns) {
			r = -EAGAIN;
			break;
		}
		blocked_begin(q);
		(void)reap_locked(q);
		if (q->spin_us && !spun) {
			/* spin_us: watch floor for a moment, without the
			 * mutex, before registering as a waiter; then re-check
			 * under the mutex as before. */
			spun = true;
			unlock(q);
			mmapq_spin_while_equal(&q->h->floor.byte, floor_end - q->size,
			                       (uint64_t)q->spin_us * 1000u, deadline_ns);
			r = lock(q);
			if (r < 0)
				return r;
			continue;
		}
		/* consumers that move floor signal the producers that wait */
		__atomic_store_n(&q->h->not_full.waiting, 1, __ATOMIC_RELAXED);
		r = wait_locked(q, deadline_ns);
		blocked_count(q);
		if (r < 0)
			return r; /* wait_locked gave up the mutex */
	}
	unlock(q);
	/* write order: the cursors a skip moved are on disk before the bytes
	 * they freed are overwritten, as a consumer's own are */
	if (r == 0 && skipped && sync_each(q))
		r = sync_header(q);
	return r;
}

int mmapq_reserve(struct mmapq *q, uint32_t len, uint64_t deadline_ns, uint64_t *room)
{
	uint64_t fb, got = 0;
	int r, rs;

	if (q->role != MMAPQ_ROLE_PRODUCER || !q->prod)
		return q->put_refused ? q->put_refused : -EPERM;
	r = check_len(q, len);
	if (r < 0)
		return r;
	fb = mmapq_frame_bytes(len);
	/* in our reservation (or our idle one), which can grow up to floor +
	 * size if it is the last one: no mutex (claim_byte read relaxed: a
	 * reservation another producer takes meanwhile makes this room a
	 * promise that a put may not keep, -ENOBUFS) */
	if (q->rsv_open || q->rsv_idle) {
		uint64_t end = q->rsv_open ? q->limit : q->idle_to;

		if (__atomic_load_n(&q->h->producer.claim_byte, __ATOMIC_RELAXED) == end)
			end = load_floor_byte(q) + q->size;
		if (q->tail.byte + need_at_tail(q, len) <= end) {
			got = sure_room_at(q, q->tail.byte, end);
			blocked_end(q);
			*room = got > fb ? got : fb;
			return 0;
		}
	}
	q->claimed = false;
	/* publish what is pending first (a full ring of unpublished records
	 * would wait for consumers that cannot see them); what was published,
	 * whatever else happens: an error says it is not durable (and wins
	 * over -EAGAIN, -ETIMEDOUT, -EINTR) */
	if (q->rsv_open || q->rsv_committed) {
		rs = publish_all(q, false);
		if (rs < 0)
			return rs;
	}
	r = reserve_wait(q, len, deadline_ns, &got);
	if (r < 0)
		return r;
	blocked_end(q);
	*room = got > fb ? got : fb;
	return 0;
}

/* A payload copied: one of 8 bytes (every int record) as one load and
 * store, any other by memcpy, a call of the C library (its length is not
 * known here).  The hot loops then keep their state in registers. */
__attribute__((always_inline)) static inline void copy_payload(void *dst, const void *src,
                                                               uint32_t len)
{
	if (len == sizeof(int64_t))
		memcpy(dst, src, sizeof(int64_t));
	else
		memcpy(dst, src, len);
}

/* n bytes (w <= n <= 2 w, w at most 32) as two copies of w that overlap
 * (the bytes between written twice, the same), each loaded before it is
 * stored */
__attribute__((always_inline)) static inline void copy_overlapping(uint8_t *dst,
                                                                   const uint8_t *src,
                                                                   uint32_t n, uint32_t w)
{
	uint8_t a[32], b[32];

	memcpy(a, src, w);
	memcpy(b, src + n - w, w);
	memcpy(dst, a, w);
	memcpy(dst + n - w, b, w);
}

/* A payload put (put_frame): up to 64 bytes inline, more by memcpy.  A
 * call per frame would also leave the loop's state in registers the call
 * may clobber. */
__attribute__((always_inline)) static inline void copy_short(uint8_t *dst, const uint8_t *src,
                                                             uint32_t len)
{
	if (len > 64) {
		memcpy(dst, src, len);
	} else if (len > 32) {
		copy_overlapping(dst, src, len, 32);
	} else if (len > 16) {
		copy_overlapping(dst, src, len, 16);
	} else if (len >= 8) {
		copy_overlapping(dst, src, len, 8);
	} else if (len >= 4) {
		copy_overlapping(dst, src, len, 4);
	} else if (len > 0) {
		/* 1 to 3 bytes: the first, the middle, the last */
		uint8_t x = src[0], m = src[len / 2], z = src[len - 1];
		dst[0] = x;
		dst[len / 2] = m;
		dst[len - 1] = z;
	}
}

/* Room for a record of len at tail, in our reservation (more_room if it
 * does not fit there): where its frame goes (*pad: where padding goes
 * first, or the frame itself if none is needed).  -ENOBUFS if it does not
 * fit. */
static int room_at_tail(struct mmapq *q, uint32_t len, uint64_t *pad, uint64_t *at)
{
	uint64_t end;

	if (!fits(q, len)) {
		int r = more_room(q, len);
		if (r < 0)
			return r;
		blocked_end(q); /* a wait a reserve gave up is over: there is room */
	}
	end = q->size - (q->tail.byte & q->mask);
	*pad = q->tail.byte;
	*at = mmapq_frame_bytes(len) <= end ? q->tail.byte : q->tail.byte + end;
	return 0;
}

/* Beyond the published tail (nobody reads there): a padding frame at
 * byte position pad, with its crc. */
__attribute__((always_inline)) static inline void write_pad(struct mmapq *q, uint64_t pad,
                                                            mmapq_frame_crc_fn *crc)
{
	struct mmapq_frame *p = frame_at(q, pad);

	p->len = MMAPQ_FRAME_PAD;
	p->crc = crc(pad, MMAPQ_FRAME_PAD, NULL, 0);
	mmapq_fault("put.padded");
}

/* Beyond the published tail: the frame at byte position at, of len bytes
 * whose payload is in place at at (the padding frame at pad first if the
 * record's frame is elsewhere; zero bytes to the alignment). */
__attribute__((always_inline)) static inline void write_frame(struct mmapq *q, uint64_t pad,
                                                              uint64_t at, uint32_t len,
                                                              mmapq_frame_crc_fn *crc)
{
	struct mmapq_frame *f = frame_at(q, at);
	uint8_t *payload = (uint8_t *)(f + 1);
	uint32_t aligned = (uint32_t)(mmapq_frame_bytes(len) - sizeof(*f));

	if (pad != at)
		write_pad(q, pad, crc);
	if (aligned > len)
		memset(payload + len, 0, aligned - len);
	f->len = len;
	f->crc = crc(at, len, payload, len);
}

/* How far ahead of the frame at hand the hot loops prefetch the ring
 * (measured on 8- and 64-byte records: without the prefetches 10-25% fewer
 * records a second in big batches; 256 and 1024 bytes no better) */
#define PREFETCH_AHEAD 512u

/*
 * The per-record loops of the producer (put_run) and of the consumer
 * (read_run) take the frame checksum as a parameter and are always
 * inlined: into an instance with mmapq_crc32c_frame (a call per frame, any
 * machine), and on x86-64 into one compiled for SSE4.2 with
 * mmapq_crc32c_frame_hw, where a short record's checksum is a few crc32
 * instructions inside the loop.  The library is built for baseline
 * x86-64, so only code compiled for SSE4.2 may hold the instruction; the
 * public calls pick the instance by mmapq_crc32c_hw (PICK), a predictable
 * branch per call, never per record.
 */
#if defined(__x86_64__)
#define HW_TARGET __attribute__((target("sse4.2")))
#define PICK(hw, sw) (mmapq_crc32c_hw ? (hw) : (sw))
#else
#define PICK(hw, sw) (sw)
#endif

/*
 * The SSE 4.2 instances of the producer's loops (put_run, put_recs) put
 * short records GROUP at a time: the checksums of GROUP frames side by
 * side (group_crc), then their stores.  One frame's crc32 instructions
 * form a chain, each waiting for the one before (a latency of 3 cycles, a
 * throughput of 1); GROUP independent chains, one instruction of each in
 * turn, overlap, and the loop's own work (bounds, counters) is done once
 * per GROUP frames.  Measured (callgrind, instructions per record put, 1,
 * 2 and 4 at a time): 8-byte records 27, 23, 22; 64-byte ones 105, 90, 83.
 * The instances for any machine pass no group_crc (NULL) and take one
 * frame at a time.
 */
#define GROUP 4u
/* records from this length on are put one at a time: their checksum is
 * crc32c.c's folding, faster than GROUP crc32 chains side by side */
#define GROUP_LEN_BELOW MMAPQ_CRC32C_LONG_MIN
typedef void group_crc_fn(bool same, const uint64_t *byte, const uint32_t *len,
                          const uint8_t *const *p, uint32_t *crc);

#if defined(__x86_64__)
/* The crc32 instruction over w (4, 2 or 1) bytes at p; c the register. */
__attribute__((target("sse4.2"), always_inline)) static inline uint64_t
crc_piece_hw(uint64_t c, const uint8_t *p, unsigned w)
{
	if (w == 4) {
		uint32_t v;
		memcpy(&v, p, sizeof(v));
		return __builtin_ia32_crc32si((uint32_t)c, v);
	}
	if (w == 2) {
		uint16_t v;
		memcpy(&v, p, sizeof(v));
		return __builtin_ia32_crc32hi((uint32_t)c, v);
	}
	return __builtin_ia32_crc32qi((uint32_t)c, *p);
}

/* crc[j] = mmapq_crc32c_frame_hw(byte[j], len[j], p[j], len[j]) for the
 * GROUP frames (each len below GROUP_LEN_BELOW): the words all of them
 * have side by side, then the rest of each alone, or with same (all
 * lengths equal, as put_run's) side by side too. */
__attribute__((target("sse4.2"), always_inline)) static inline void
group_crc_hw(bool same, const uint64_t *byte, const uint32_t *len, const uint8_t *const *p,
             uint32_t *crc)
{
	uint64_t c[GROUP];
	uint32_t common = len[0];

	_Pragma("GCC unroll 4")
	for (unsigned j = 0; j < GROUP; j++) {
		c[j] = __builtin_ia32_crc32di(~UINT32_C(0), byte[j]);
		c[j] = __builtin_ia32_crc32si((uint32_t)c[j], len[j]);
		if (len[j] < common)
			common = len[j];
	}
	common &= ~UINT32_C(7);
	for (uint32_t o = 0; o < common; o += 8)
		_Pragma("GCC unroll 4")
		for (unsigned j = 0; j < GROUP; j++) {
			uint64_t w;
			memcpy(&w, p[j] + o, sizeof(w));
			c[j] = __builtin_ia32_crc32di(c[j], w);
		}
	if (same) {
		/* the last len & 7 bytes: 4, 2, 1 of them */
		uint32_t o = common, t = len[0] & 7;

		_Pragma("GCC unroll 3")
		for (unsigned w = 4; w; w >>= 1) {
			if (!(t & w))
				continue;
			_Pragma("GCC unroll 4")
			for (unsigned j = 0; j < GROUP; j++)
				c[j] = crc_piece_hw(c[j], p[j] + o, w);
			o += w;
		}
		_Pragma("GCC unroll 4")
		for (unsigned j = 0; j < GROUP; j++)
			crc[j] = ~(uint32_t)c[j];
		return;
	}
	_Pragma("GCC unroll 4")
	for (unsigned j = 0; j < GROUP; j++)
		crc[j] = ~(uint32_t)mmapq_crc32c_hw_short(c[j], p[j] + common, len[j] - common);
}
#endif

int mmapq_claim(struct mmapq *q, uint32_t len, void **buf)
{
	uint64_t pad, at;
	int r;

	if (q->put_refused)
		return q->put_refused;
	r = check_len(q, len);
	if (r == 0)
		r = room_at_tail(q, len, &pad, &at);
	if (r < 0)
		return r;
	q->claimed = true;
	q->claim_pad = pad;
	q->claim_byte = at;
	q->claim_len = len;
	*buf = frame_at(q, at) + 1;
	return 0;
}

static void commit_sw(struct mmapq *q, uint32_t n)
{
	write_frame(q, q->claim_pad, q->claim_byte, n, mmapq_crc32c_frame);
}

#if defined(__x86_64__)
HW_TARGET static void commit_hw(struct mmapq *q, uint32_t n)
{
	write_frame(q, q->claim_pad, q->claim_byte, n, mmapq_crc32c_frame_hw);
}
#endif

int mmapq_commit(struct mmapq *q, uint32_t n)
{
	uint64_t end;

	if (q->put_refused)
		return q->put_refused;
	if (!q->claimed || n > q->claim_len)
		return -EINVAL;
	if (check_len(q, n) < 0)
		return -EMSGSIZE;
	PICK(commit_hw(q, n), commit_sw(q, n));
	end = q->claim_byte + mmapq_frame_bytes(n);
	mmapq_fault("put.written");
	if (q->sync == MMAPQ_SYNC_ALWAYS) {
		int r = sync_ring(q, q->claim_pad, end);
		if (r < 0)
			return r; /* not put: the claim stays, beyond tail */
	}
	q->claimed = false;
	q->tail = (struct pos){q->tail.seq + 1, end};
	if (q->sync == MMAPQ_SYNC_BATCH || q->sync == MMAPQ_SYNC_INTERVAL)
		after_put(q);
	return 0;
}

/* The lines ahead of the frames at [at, at + bytes) taken for writing
 * before the stores reach them (the consumer read them last): one
 * prefetch per 64 bytes, so that the runs of frames that follow each other
 * ask for every line. */
__attribute__((always_inline)) static inline void prefetch_put(uint8_t *ring, uint64_t mask,
                                                               uint64_t at, uint64_t bytes)
{
	for (uint64_t o = 0; o < bytes; o += 64)
		__builtin_prefetch(ring + ((at + o + PREFETCH_AHEAD) & mask), 1);
}

/*
 * One frame put by put_run or put_recs, beyond the published tail, at
 * ring + (at & mask): len bytes from src, its crc given (computed from
 * src, the same bytes: the ring's were just stored, perhaps in pieces
 * that a load of 8 bytes would wait for).  fb is its frame's bytes.
 * prefetch: the lines ahead asked for here (else by the caller, for a
 * group of frames at once).
 */
__attribute__((always_inline)) static inline void put_frame(uint8_t *ring, uint64_t mask,
                                                            uint64_t at, uint64_t fb,
                                                            const uint8_t *src, uint32_t len,
                                                            uint32_t crc, bool prefetch)
{
	struct mmapq_frame *f = (struct mmapq_frame *)(ring + (at & mask));
	uint8_t *payload = (uint8_t *)(f + 1);

	/* once per line, by the frame that starts in its first fb bytes */
	if (prefetch && (fb >= 64 || (at & 63) < fb))
		__builtin_prefetch(ring + ((at + PREFETCH_AHEAD) & mask), 1);
	/* The alignment bytes are zeros: the payload's last 8-byte word
	 * zeroed, then the payload copied over it (one store instead of a
	 * memset call). */
	if (len & 7) {
		uint64_t zero = 0;
		memcpy(payload + (len & ~UINT32_C(7)), &zero, sizeof(zero));
	}
	copy_short(payload, src, len);
	/* len and crc as one store */
	memcpy(f, &(struct mmapq_frame){len, crc}, sizeof(*f));
	mmapq_fault("put.written");
}

/*
 * mmapq_put_many's loop (len checked): records of len bytes from src, as
 * many as fit, at most n, beyond the published tail; how many, or -errno
 * if none.  room_at_tail once per run of frames: after it, the frames up
 * to the ring's end or to limit, whichever comes first, surely fit
 * without padding (the first one at least), and are written without
 * asking again: GROUP at a time where group_crc is given and records are
 * short, then one at a time.
 */
__attribute__((always_inline)) static inline int put_run(struct mmapq *q, const uint8_t *src,
                                                         uint32_t len, uint32_t n,
                                                         mmapq_frame_crc_fn *crc,
                                                         group_crc_fn *group_crc)
{
	uint64_t fb = mmapq_frame_bytes(len), seq = q->tail.seq, mask = q->mask;
	/* in locals: the handle's fields would be loaded again after each
	 * store into the ring (bytes, which may alias anything) */
	uint8_t *ring = q->ring;
	uint32_t done = 0;
	bool grouped = group_crc && len < GROUP_LEN_BELOW;
	int r = 0;

	while (done < n) {
		uint64_t pad, at, stop;

		if ((r = room_at_tail(q, len, &pad, &at)) < 0)
			break;
		if (pad != at)
			write_pad(q, pad, crc);
		stop = at + (q->size - (at & q->mask));
		if (stop > q->limit)
			stop = q->limit;
		while (grouped && n - done >= GROUP && at + GROUP * fb <= stop) {
			uint64_t b[GROUP];
			uint32_t l[GROUP], c[GROUP];
			const uint8_t *s[GROUP];

			_Pragma("GCC unroll 4")
			for (unsigned j = 0; j < GROUP; j++) {
				b[j] = at + j * fb;
				l[j] = len;
				s[j] = src + (size_t)j * len;
			}
			group_crc(true, b, l, s, c);
			prefetch_put(ring, mask, at, GROUP * fb);
			_Pragma("GCC unroll 4")
			for (unsigned j = 0; j < GROUP; j++)
				put_frame(ring, mask, b[j], fb, s[j], len, c[j], false);
			at += GROUP * fb;
			src += (size_t)GROUP * len;
			seq += GROUP;
			done += GROUP;
		}
		while (done < n && at + fb <= stop) {
			put_frame(ring, mask, at, fb, src, len, crc(at, len, src, len), true);
			at += fb;
			src += len;
			seq++;
			done++;
		}
		q->tail = (struct pos){seq, at};
	}
	return done ? (int)done : r;
}

static int put_run_sw(struct mmapq *q, const uint8_t *src, uint32_t len, uint32_t n)
{
	return put_run(q, src, len, n, mmapq_crc32c_frame, NULL);
}

#if defined(__x86_64__)
HW_TARGET static int put_run_hw(struct mmapq *q, const uint8_t *src, uint32_t len, uint32_t n)
{
	/* 8-byte records (every int record) apart: with the length a
	 * constant, a frame is a few stores and three crc32 instructions */
	if (len == sizeof(int64_t))
		return put_run(q, src, sizeof(int64_t), n, mmapq_crc32c_frame_hw, group_crc_hw);
	return put_run(q, src, len, n, mmapq_crc32c_frame_hw, group_crc_hw);
}
#endif

/* After a run of frames put from start on (r of them, or -errno if none):
 * write-back started, or with sync = always the frames synced once (on an
 * error nothing is put). */
static int put_done(struct mmapq *q, struct pos start, int r)
{
	if (r <= 0)
		return r;
	/* a reservation taken by the run (none was open) starts where
	 * claim_byte was, above other producers' perhaps: the run's frames
	 * start there, and so does what a failed sync leaves pending */
	if (start.byte < q->published.byte)
		start = q->published;
	if (q->sync == MMAPQ_SYNC_BATCH || q->sync == MMAPQ_SYNC_INTERVAL)
		after_put(q);
	if (q->sync == MMAPQ_SYNC_ALWAYS) {
		int rs = sync_ring(q, start.byte, q->tail.byte);
		if (rs < 0) {
			q->tail = start; /* not put: the frames lie beyond tail, nobody reads them */
			return rs;
		}
	}
	return r;
}

/* mmapq_put_many, called by mmapq_put too without going through the PLT
 * (an exported function may be interposed, so a call to it by name does) */
static int put_many(struct mmapq *q, const void *data, uint32_t len, uint32_t n)
{
	struct pos start = q->tail;
	int r;

	if (q->put_refused)
		return q->put_refused;
	r = check_len(q, len);
	if (r < 0)
		return r;
	q->claimed = false;
	if (n == 0)
		return 0;
	return put_done(q, start, PICK(put_run_hw(q, data, len, n), put_run_sw(q, data, len, n)));
}

int mmapq_put_many(struct mmapq *q, const void *data, uint32_t len, uint32_t n)
{
	return put_many(q, data, len, n);
}

/* One record: mmapq_put_many's path (the payload copied from data, its
 * crc computed from data). */
int mmapq_put(struct mmapq *q, const void *data, uint32_t len)
{
	int r = put_many(q, data, len, 1);

	return r < 0 ? r : 0;
}

/*
 * mmapq_put_records' loop (every len checked): records of their own
 * lengths, as many as fit, at most n, beyond the published tail; how many,
 * or -errno if none.  As put_run: room_at_tail once per run of frames (it
 * writes the padding at the ring's end), then every frame that ends by the
 * ring's end or limit, whichever comes first, without asking again: GROUP
 * at a time where group_crc is given and the GROUP records are short.
 */
__attribute__((always_inline)) static inline int put_recs(struct mmapq *q,
                                                          const struct mmapq_iovec *rec,
                                                          uint32_t n, mmapq_frame_crc_fn *crc,
                                                          group_crc_fn *group_crc)
{
	uint64_t seq = q->tail.seq, mask = q->mask;
	uint8_t *ring = q->ring;
	uint32_t done = 0;
	int r = 0;

	while (done < n) {
		uint64_t pad, at, stop;

		if ((r = room_at_tail(q, rec[done].len, &pad, &at)) < 0)
			break;
		if (pad != at)
			write_pad(q, pad, crc);
		stop = at + (q->size - (at & mask));
		if (stop > q->limit)
			stop = q->limit;
		/* the first frame surely fits: room_at_tail said so */
		while (done < n) {
			const uint8_t *src = rec[done].data;
			uint32_t len = rec[done].len;
			uint64_t fb = mmapq_frame_bytes(len);

			if (group_crc && n - done >= GROUP) {
				uint64_t b[GROUP], fbs[GROUP], next = at;
				uint32_t l[GROUP], c[GROUP];
				const uint8_t *s[GROUP];
				bool all_short = true;

				_Pragma("GCC unroll 4")
				for (unsigned j = 0; j < GROUP; j++) {
					l[j] = rec[done + j].len;
					s[j] = rec[done + j].data;
					fbs[j] = mmapq_frame_bytes(l[j]);
					b[j] = next;
					next += fbs[j];
					all_short &= l[j] < GROUP_LEN_BELOW;
				}
				if (all_short && next <= stop) {
					group_crc(false, b, l, s, c);
					prefetch_put(ring, mask, at, next - at);
					_Pragma("GCC unroll 4")
					for (unsigned j = 0; j < GROUP; j++)
						put_frame(ring, mask, b[j], fbs[j], s[j], l[j], c[j], false);
					at = next;
					seq += GROUP;
					done += GROUP;
					continue;
				}
			}
			if (at + fb > stop)
				break; /* padding first, or no room: room_at_tail says */
			put_frame(ring, mask, at, fb, src, len, crc(at, len, src, len), true);
			at += fb;
			seq++;
			done++;
		}
		q->tail = (struct pos){seq, at};
	}
	return done ? (int)done : r;
}

static int put_recs_sw(struct mmapq *q, const struct mmapq_iovec *rec, uint32_t n)
{
	return put_recs(q, rec, n, mmapq_crc32c_frame, NULL);
}

#if defined(__x86_64__)
HW_TARGET static int put_recs_hw(struct mmapq *q, const struct mmapq_iovec *rec, uint32_t n)
{
	return put_recs(q, rec, n, mmapq_crc32c_frame_hw, group_crc_hw);
}
#endif

int mmapq_put_records(struct mmapq *q, const struct mmapq_iovec *rec, uint32_t n)
{
	struct pos start = q->tail;
	int r;

	if (q->put_refused)
		return q->put_refused;
	if (n && !rec)
		return -EINVAL;
	/* every length first: a bad one puts nothing */
	for (uint32_t i = 0; i < n; i++)
		if ((r = check_len(q, rec[i].len)) < 0)
			return r;
	q->claimed = false;
	if (n == 0)
		return 0;
	return put_done(q, start, PICK(put_recs_hw(q, rec, n), put_recs_sw(q, rec, n)));
}

uint32_t mmapq_pending(const struct mmapq *q)
{
	return q->role == MMAPQ_ROLE_PRODUCER ? (uint32_t)(q->tail.seq - q->published.seq) : 0;
}

uint64_t mmapq_next_seq(const struct mmapq *q)
{
	return q->tail.seq;
}

void mmapq_count_dropped(struct mmapq *q, uint64_t n)
{
	if (q->prod)
		count(&q->prod->dropped, n);
}

void mmapq_count_bad_input(struct mmapq *q, uint64_t n)
{
	if (q->prod)
		count(&q->prod->bad_input, n);
}

/* ---- consumer ----------------------------------------------------------- */

/* A tail (and its byte) that a crash cannot leave: at or past our cursor,
 * at most a ring ahead, and at least 8 bytes per record in between. */
static int check_tail(const struct mmapq *q, uint64_t tail, uint64_t tail_byte)
{
	if (tail < q->head.seq || tail_byte < q->head.byte || tail_byte - q->head.byte > q->size ||
	    (tail - q->head.seq) > (tail_byte - q->head.byte) / MMAPQ_FRAME_ALIGN)
		return -EBADMSG;
	return 0;
}

int mmapq_available(struct mmapq *q, uint64_t deadline_ns, uint32_t *navail)
{
	uint64_t tail, n;
	int r;

	if (q->role != MMAPQ_ROLE_CONSUMER)
		return -EPERM;
	if (q->legacy)
		return legacy_available(q, navail);
	if (q->seen_tail == q->head.seq) {
		/* First without the mutex: the acquire load of tail pairs with
		 * the producer's store-release in advance_locked, so the frames
		 * below it are complete and visible.  Then, with spin_us, watch
		 * it for a moment.  Only if nothing came: the mutex, and the
		 * wait protocol exactly as before. */
		tail = load_tail(q);
		if (tail == q->head.seq && q->spin_us && deadline_ns)
			tail = mmapq_spin_while_equal(&q->h->producer.tail, q->head.seq,
			                              (uint64_t)q->spin_us * 1000u, deadline_ns);
		if (tail == q->head.seq) {
			r = lock(q);
			if (r < 0)
				return r;
			for (;;) {
				tail = load_tail(q);
				if (tail != q->head.seq)
					break;
				if (!deadline_ns) {
					unlock(q);
					return -EAGAIN;
				}
				r = wait_locked(q, deadline_ns);
				if (r < 0)
					return r;
			}
			unlock(q);
		}
		r = check_tail(q, tail, load_tail_byte(q));
		if (r < 0)
			return r;
		q->seen_tail = tail;
		q->seen_tail_byte = load_tail_byte(q);
	}
	n = q->seen_tail - q->head.seq;
	*navail = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	return 0;
}

/* Where record seq (head.seq <= seq <= seen_tail) starts: from the record
 * read last, the next one, or our cursor, whichever is nearest below it.
 * Records passed on the way have their checksums checked once (by crc). */
__attribute__((always_inline)) static inline int locate_with(struct mmapq *q, uint64_t seq,
                                                             struct pos *at,
                                                             mmapq_frame_crc_fn *crc)
{
	struct pos p = seq == q->prev.seq ? q->prev : seq >= q->walk.seq ? q->walk : q->head;

	while (p.seq < seq) {
		const uint8_t *d;
		uint32_t l;
		bool check = p.seq >= q->checked;

		if (frame_step(q, &p.byte, q->seen_tail_byte, check, &d, &l, crc, false) < 0)
			return -EBADMSG;
		if (check)
			q->checked = p.seq + 1;
		p.seq++;
	}
	q->walk = p;
	*at = p;
	return 0;
}

/*
 * read_run's stretch of record frames into r (mmapq_get, mmapq_get_many),
 * in a function of its own: inlined into read_run with everything else,
 * the loop's state lives on the stack (measured: a fifth of the
 * instructions per 8-byte record).  From the frame at byte position *byte
 * (record seq), room bytes to the ring's end or to the tail, whichever
 * comes first: at most k records into r, for as long as each frame is a
 * record's that frame_step would pass, its len in [lo, lo + span) (for
 * format int 8 exactly; else up to max_record, which a padding or fill
 * frame's len never is), its checksum checked from seq checked on.  How
 * many; the first frame that is not such a record ends the stretch
 * (*byte is then its position), and read_run takes it one at a time:
 * frame_step says what it is.  Each length and checksum in the ring is
 * read once.
 */
typedef uint32_t read_plain_fn(const uint8_t *ring, uint64_t mask, uint64_t *byte, uint64_t room,
                               uint64_t seq, uint64_t checked, uint32_t k,
                               struct mmapq_record *restrict r, uint32_t lo, uint32_t span);

#if defined(__x86_64__)
__attribute__((noinline)) HW_TARGET static uint32_t
read_plain_hw(const uint8_t *ring, uint64_t mask, uint64_t *byte, uint64_t room, uint64_t seq,
              uint64_t checked, uint32_t k, struct mmapq_record *restrict r, uint32_t lo,
              uint32_t span)
{
	uint64_t b = *byte;
	const uint8_t *f = ring + (b & mask), *end = f + room; /* room: a multiple of 8 */
	uint32_t i = 0;

	for (; i < k && f < end; i++) {
		const struct mmapq_frame *h = (const struct mmapq_frame *)f;
		uint32_t l = __atomic_load_n(&h->len, __ATOMIC_RELAXED);
		uint64_t fb = mmapq_frame_bytes(l);

		if (l - lo >= span || fb > (uint64_t)(end - f))
			break;
		__builtin_prefetch(ring + ((b + PREFETCH_AHEAD) & mask));
		if (seq >= checked &&
		    __atomic_load_n(&h->crc, __ATOMIC_RELAXED) != mmapq_crc32c_frame_hw(b, l, h + 1, l))
			break;
		r[i].seq = seq;
		r[i].len = l;
		r[i].data = h + 1;
		f += fb;
		b += fb;
		seq++;
	}
	*byte = b;
	return i;
}
#endif

#if defined(__x86_64__)
/*
 * read_run's int records copied out (mmapq_copy_many of a format int
 * file, as mmapq-consumer reads): m frames from f, record seq's at byte
 * position b, up to the ring's end or the tail, whichever comes first.
 * They are 16 bytes each, back to back, so read_run checks their bounds
 * once, and each frame's own checks here are its length and checksum
 * (from seq checked on).  The payload is loaded once, checked and stored
 * from the register.  How many were copied: a frame that fails ends the
 * loop, and frame_step says what it is.  A function of its own, as
 * read_plain_hw.
 */
__attribute__((noinline)) HW_TARGET static uint32_t
read_ints_hw(const uint8_t *f, uint64_t b, uint64_t seq, uint64_t checked, uint32_t m,
             uint8_t *restrict copy)
{
	uint64_t fb = mmapq_frame_bytes(sizeof(int64_t));
	uint32_t i = 0;

	for (; i < m; i++, f += fb, b += fb) {
		const struct mmapq_frame *h = (const struct mmapq_frame *)f;
		uint64_t v;

		if (!((uintptr_t)f & 63))
			__builtin_prefetch(f + PREFETCH_AHEAD);
		if (__atomic_load_n(&h->len, __ATOMIC_RELAXED) != sizeof(v))
			break;
		memcpy(&v, h + 1, sizeof(v));
		if (seq + i >= checked && __atomic_load_n(&h->crc, __ATOMIC_RELAXED) !=
		                              mmapq_crc32c_frame_hw(b, sizeof(v), &v, sizeof(v)))
			break;
		memcpy(copy + (size_t)i * sizeof(v), &v, sizeof(v));
	}
	return i;
}
#endif

/*
 * Records seq .. seq + k - 1 (available, k >= 1) in order, each checksum
 * checked unless it was before: into r[i], or with copy their payloads,
 * each of copy_len bytes (-EMSGSIZE at one that is not), copied to copy +
 * i * copy_len.  How many were handed out, or -errno if none.  On
 * SSE 4.2 (plain given; ints for format int), stretches of records by
 * read_plain_hw and int records copied out by read_ints_hw, the rest
 * (padding, fills, the frame a stretch stops at) one at a time by
 * frame_step.  The checksums there one frame at a time, not GROUP as the
 * producer's: measured, GROUP frames' lengths, checksums and payloads
 * held until all of them pass took more instructions per record (spilled
 * to the stack), and the next frame's chain runs alongside anyway.  The
 * handle's positions (prev, walk, checked) are stored once, after the
 * loop: in it they live in registers (restrict: what the loop stores into
 * r and copy is never the handle, so its fields need not be loaded again
 * after each store).  ints: as frame_step's.
 */
__attribute__((always_inline)) static inline int
read_run(struct mmapq *q, uint64_t seq, uint32_t k, struct mmapq_record *restrict r,
         uint8_t *restrict copy, uint32_t copy_len, mmapq_frame_crc_fn *crc,
         read_plain_fn *plain, bool ints)
{
	struct pos p, last;
	uint64_t checked, end = q->seen_tail_byte;
	uint32_t i = 0, lo, span;
	bool try_plain;
	int ret;

	if (!r && !copy)
		return -EINVAL; /* nowhere to put them */
	ret = locate_with(q, seq, &p, crc);
	if (ret < 0)
		return ret;
	checked = q->checked;
	/* the lengths read_plain takes: 8 for format int, else up to max_record */
	lo = ints || q->format == MMAPQ_FORMAT_INT ? sizeof(int64_t) : 0;
	span = lo ? 1 : q->max_record + 1;
	try_plain = plain && !copy;
#if defined(__x86_64__)
	if (ints && copy && copy_len == sizeof(int64_t)) {
		/* the frames up to the ring's end or end, whichever comes
		 * first */
		uint64_t off = p.byte & q->mask, fb = mmapq_frame_bytes(sizeof(int64_t));
		uint64_t whole = (q->size - off) / fb, below = (end - p.byte) / fb;
		uint32_t m = k;

		if (m > whole)
			m = (uint32_t)whole;
		if (m > below)
			m = (uint32_t)below;
		i = read_ints_hw(q->ring + off, p.byte, p.seq, checked, m, copy);
		if (i > 0) {
			p = (struct pos){p.seq + i, p.byte + i * fb};
			last = (struct pos){p.seq - 1, p.byte - fb};
		}
	}
#endif
	while (i < k) {
		const uint8_t *data;
		uint32_t len;
		uint64_t b = p.byte;

		if (try_plain) {
			uint64_t off = b & q->mask;
			uint64_t room = q->size - off < end - b ? q->size - off : end - b;
			uint32_t got = plain(q->ring, q->mask, &b, room, p.seq, checked, k - i, r + i,
			                     lo, span);

			if (got) {
				i += got;
				p = (struct pos){p.seq + got, b};
				last = (struct pos){p.seq - 1, b - mmapq_frame_bytes(r[i - 1].len)};
				if (i == k)
					break;
			}
		}
		/* the frames ahead asked for now: where the next one starts
		 * depends on this one's length, a load that would otherwise
		 * wait for each line to come from the producer's cache */
		__builtin_prefetch(q->ring + ((b + PREFETCH_AHEAD) & q->mask));
		if (frame_step(q, &b, end, p.seq >= checked, &data, &len, crc, ints) < 0) {
			ret = -EBADMSG;
			break;
		}
		if (copy) {
			if (len != copy_len) {
				ret = -EMSGSIZE;
				break;
			}
			copy_payload(copy + (size_t)i * len, data, len);
		} else {
			r[i].seq = p.seq;
			r[i].len = len;
			r[i].data = data;
		}
		last = p;
		p = (struct pos){p.seq + 1, b};
		i++;
		/* the stretch again after a record it would have taken (past
		 * padding or fills) */
		try_plain = plain && !copy && len - lo < span;
	}
	if (i == 0)
		return ret;
	q->prev = last;
	q->walk = p;
	if (p.seq > checked)
		q->checked = p.seq;
	return (int)i;
}

static int read_run_sw(struct mmapq *q, uint64_t seq, uint32_t k, struct mmapq_record *r,
                       uint8_t *copy, uint32_t copy_len)
{
	return read_run(q, seq, k, r, copy, copy_len, mmapq_crc32c_frame, NULL, false);
}

#if defined(__x86_64__)
HW_TARGET static int read_run_hw(struct mmapq *q, uint64_t seq, uint32_t k,
                                 struct mmapq_record *r, uint8_t *copy, uint32_t copy_len)
{
	/* format int apart: each frame's checksum is then three crc32
	 * instructions, no loop */
	if (q->format == MMAPQ_FORMAT_INT)
		return read_run(q, seq, k, r, copy, copy_len, mmapq_crc32c_frame_hw, read_plain_hw,
		                true);
	return read_run(q, seq, k, r, copy, copy_len, mmapq_crc32c_frame_hw, read_plain_hw, false);
}
#endif

/* read_run, its instance picked */
static int read_records(struct mmapq *q, uint64_t seq, uint32_t k, struct mmapq_record *r,
                        uint8_t *copy, uint32_t copy_len)
{
	return PICK(read_run_hw(q, seq, k, r, copy, copy_len),
	            read_run_sw(q, seq, k, r, copy, copy_len));
}

int mmapq_get(struct mmapq *q, uint32_t index, struct mmapq_record *r)
{
	int ret;

	if (q->role != MMAPQ_ROLE_CONSUMER)
		return -EPERM;
	if ((uint64_t)index >= q->seen_tail - q->head.seq)
		return -ENOENT;
	if (q->legacy)
		return legacy_get(q, q->head.seq + index, r);
	ret = read_records(q, q->head.seq + index, 1, r, NULL, 0);
	return ret < 0 ? ret : 0;
}

/* How many of n records from index on mmapq_get_many and mmapq_copy_many
 * may read: 0 or -errno, *k set.  The records below seen_tail are
 * complete: seen_tail came from an acquire load of tail (mmapq_available,
 * mmapq_release). */
static int many_count(const struct mmapq *q, uint32_t index, uint32_t n, uint32_t *k)
{
	uint64_t avail = q->seen_tail - q->head.seq;

	if (q->role != MMAPQ_ROLE_CONSUMER)
		return -EPERM;
	if ((uint64_t)index >= avail)
		return -ENOENT;
	*k = avail - index < n ? (uint32_t)(avail - index) : n;
	return 0;
}

int mmapq_get_many(struct mmapq *q, uint32_t index, uint32_t n, struct mmapq_record *r)
{
	uint64_t seq = q->head.seq + index;
	uint32_t k = 0, i = 0;
	int ret = many_count(q, index, n, &k);

	if (ret < 0 || k == 0)
		return ret;
	if (!q->legacy)
		return read_records(q, seq, k, r, NULL, 0);
	for (; i < k; i++, seq++) {
		ret = legacy_get(q, seq, &r[i]);
		if (ret < 0)
			break;
	}
	return i == 0 ? ret : (int)i;
}

int mmapq_copy_many(struct mmapq *q, uint32_t index, uint32_t n, void *out, uint32_t len)
{
	uint8_t *o = out;
	uint64_t seq = q->head.seq + index;
	uint32_t k = 0, i = 0;
	int err = many_count(q, index, n, &k);

	if (err < 0 || k == 0)
		return err;
	if (!q->legacy)
		return read_records(q, seq, k, NULL, o, len);
	for (; i < k; i++, seq++) {
		struct mmapq_record r;
		if ((err = legacy_get(q, seq, &r)) < 0)
			break;
		if (r.len != len) {
			err = -EMSGSIZE;
			break;
		}
		memcpy(o + (size_t)i * len, r.data, len);
	}
	return i == 0 ? err : (int)i;
}

/* Mutex held: our synced cursor (and floor, if we were the slowest) moves
 * to at; true if floor moved (the producer may have room). */
static bool sync_cursor_locked(struct mmapq *q, struct pos at)
{
	struct mmapq_consumer *c = q->me;
	bool slowest;

	if (!c) {
		/* a file opened to migrate it: floor itself is the cursor */
		store_floor_locked(q, at);
		return true;
	}
	slowest = __atomic_load_n(&c->synced, __ATOMIC_RELAXED) == floor_locked(q).seq;
	__atomic_store_n(&c->synced_byte, at.byte, __ATOMIC_RELAXED);
	mmapq_fault("release.synced_byte"); /* the pair half stored */
	__atomic_store_n(&c->synced, at.seq, __ATOMIC_RELAXED);
	mmapq_fault("release.synced");
	/* Only the slowest consumer can move floor: the others leave the
	 * producer alone. */
	return slowest && floor_update_locked(q);
}

/* Our synced cursor (and floor, if we are the slowest) brought up to our
 * cursor, the header with the cursor written to disk first (write). */
static int catch_up(struct mmapq *q, bool write)
{
	int r;

	if (write && (r = sync_header(q)) < 0)
		return r;
	r = lock(q);
	if (r < 0)
		return r;
	if (sync_cursor_locked(q, q->head))
		signal_producers_locked(q, false);
	unlock(q);
	return 0;
}

/*
 * A consumer attaching: its synced cursor brought up to its cursor, as a
 * release would (the cursor written to disk first).  A process of ours
 * killed between storing the two left floor behind records it had
 * consumed; were we to find nothing left to read, no release of ours
 * would ever move floor, and a producer waiting for room would wait for
 * good.  0, or an msync error (then the cursor is not known to be on disk
 * and synced stays behind).
 */
int catch_up_synced(struct mmapq *q)
{
	if (__atomic_load_n(&q->me->synced, __ATOMIC_RELAXED) == q->head.seq)
		return 0;
	return catch_up(q, q->sync != MMAPQ_SYNC_NEVER);
}

int mmapq_sync(struct mmapq *q)
{
	int r;

	if (q->legacy)
		return -EROFS;
	if (q->prod) {
		/* every producer's frames below tail: ours are among them
		 * (tail_byte after the acquire load of tail, as a consumer
		 * reads them) */
		uint64_t to;

		(void)load_tail(q);
		to = load_tail_byte(q);
		if (to == q->durable)
			return 0;
		r = sync_ring(q, q->durable, to);
		if (r == 0)
			r = sync_header(q);
		if (r == 0)
			q->durable = to;
		return r;
	}
	if (q->role != MMAPQ_ROLE_CONSUMER)
		return -EPERM;
	if (q->me && __atomic_load_n(&q->me->synced, __ATOMIC_RELAXED) == q->head.seq)
		return 0;
	/* the cursor on disk, then synced (and floor) up to it */
	return catch_up(q, true);
}

int mmapq_release(struct mmapq *q, uint32_t n)
{
	/* interval: floor waits for mmapq_sync to write the cursor, unless the
	 * producer waits for room now (a hint, read without the mutex): then
	 * the cursor goes to disk at once, as with batch, and floor follows
	 * it, or a full ring would wait up to an interval for each release */
	bool interval = q->me && q->sync == MMAPQ_SYNC_INTERVAL;
	bool defer = interval && !__atomic_load_n(&q->h->not_full.waiting, __ATOMIC_RELAXED);
	struct pos at;
	uint64_t tail, tail_byte;
	int r, rs = 0;

	if (q->role != MMAPQ_ROLE_CONSUMER)
		return -EPERM;
	if (q->legacy)
		return -EROFS;
	if ((uint64_t)n > q->seen_tail - q->head.seq)
		return -EINVAL;
	if (n == 0)
		return 0;
	r = locate_with(q, q->head.seq + n, &at, mmapq_crc32c_frame);
	if (r < 0)
		return r;
	if (q->me) {
		__atomic_store_n(&q->me->position_byte, at.byte, __ATOMIC_RELAXED);
		mmapq_fault("release.position_byte"); /* the pair half stored */
		/* release: our reads of these frames happen before anyone who
		 * sees the new cursor (an observer's acquire) */
		__atomic_store_n(&q->me->position, at.seq, __ATOMIC_RELEASE);
		mmapq_fault("release.stored");
		/* write order: the cursor is on disk before floor may pass it */
		if (sync_each(q) || (interval && !defer))
			rs = sync_header(q);
	}
	r = lock(q);
	if (r < 0) {
		/* released nothing (mmapq.h): the cursor goes back, seq first,
		 * so that a reader's pair is never a byte behind its seq */
		if (q->me) {
			__atomic_store_n(&q->me->position, q->head.seq, __ATOMIC_RELEASE);
			__atomic_store_n(&q->me->position_byte, q->head.byte, __ATOMIC_RELAXED);
			if (q->sync != MMAPQ_SYNC_NEVER)
				(void)sync_header(q);
		}
		return r;
	}
	mmapq_fault("release.locked");
	/* released now whatever follows (the cursor stays): counted once */
	if (q->me)
		count(&q->me->consumed, n);
	if (rs == 0 && !defer && sync_cursor_locked(q, at))
		signal_producers_locked(q, false);
	/* Refresh what is available while we hold the lock anyway: when busy,
	 * this is the only lock round-trip per batch. */
	tail = load_tail(q);
	tail_byte = load_tail_byte(q);
	unlock(q);
	q->head = at;
	q->prev.seq = UINT64_MAX;
	/* released whatever happens now: an error says the new cursor is not
	 * durable (and floor stays behind it until one is) */
	if (rs < 0)
		return rs;
	r = check_tail(q, tail, tail_byte);
	if (r < 0)
		return r;
	if (tail > q->seen_tail) {
		q->seen_tail = tail;
		q->seen_tail_byte = tail_byte;
	}
	return 0;
}

/* ---- observer ----------------------------------------------------------- */

/*
 * One try of mmapq_peek from a floor read just now: walk to record seq
 * (from the record peeked last if that is on the way), copy it, and only
 * then look at floor again.  Why the second look suffices: the producer
 * overwrites the bytes at position b (with those of b + size) only after
 * its load-acquire of floor.byte has returned a value > b (refresh_limit),
 * which reads a consumer's store-release (store_floor_locked).  So if our
 * copy saw any byte of such an overwrite, that floor was visible before
 * it, and the acquire fence below, which keeps the copy's loads before the
 * following load of floor, makes that load see it too: floor.byte > b, and
 * the copy is thrown away.  1: try again (floor moved past where the walk
 * started).
 */
static int peek_once(struct mmapq *q, struct pos floor, uint64_t seq, uint64_t end, void *buf,
                     struct mmapq_record *r)
{
	struct pos p = q->prev.seq <= seq && q->prev.seq >= floor.seq && q->prev.byte >= floor.byte ?
	               q->prev : floor;
	const uint8_t *data = NULL;
	uint32_t len = 0, crc = 0;
	uint64_t start, from;
	int bad = 0;

	if (q->walk.seq <= seq && q->walk.seq > p.seq && q->walk.byte >= floor.byte)
		p = q->walk;
	from = p.byte;
	/* the frames on the way checked too: a checksum binds a frame's byte
	 * position, not its record's number, so a length damaged on the way
	 * would lead to an intact frame of another record */
	while (!bad && p.seq < seq) {
		bad = frame_next(q, &p.byte, end, true, &data, &len);
		p.seq++;
	}
	start = p.byte;
	if (!bad)
		bad = frame_next(q, &p.byte, end, false, &data, &len);
	if (!bad) {
		const struct mmapq_frame *f = (const struct mmapq_frame *)data - 1;

		crc = __atomic_load_n(&f->crc, __ATOMIC_RELAXED);
		/* the padding and fill frames before it are checked as a
		 * consumer checks them */
		if ((const uint8_t *)f != q->ring + (start & q->mask)) {
			uint64_t sb = start;
			uint32_t sl = __atomic_load_n(&frame_at(q, start)->len, __ATOMIC_RELAXED);

			bad = frames_skip(q, &sb, &sl, end, true);
		}
		memcpy(buf, data, len); /* may race with an overwrite: checked below */
	}
	/* the walk's and the copy's loads stay before the load of floor below
	 * (pairs with the store-release of floor.byte, as seen by the
	 * producer's acquire of it before it overwrites anything) */
	acquire_fence();
	if (__atomic_load_n(&q->h->floor.byte, __ATOMIC_RELAXED) > from)
		return 1; /* consumed meanwhile: what we walked may have been reused */
	if (bad || crc != frame_crc(p.byte - mmapq_frame_bytes(len), len, buf))
		return -EBADMSG;
	q->prev = (struct pos){seq, start};
	q->walk = p;
	q->walk.seq = seq + 1;
	r->seq = seq;
	r->len = len;
	r->data = buf;
	return 0;
}

int mmapq_peek(struct mmapq *q, uint64_t seq, void *buf, uint32_t size, struct mmapq_record *r)
{
	if (q->legacy)
		return legacy_peek(q, seq, buf, size, r);
	if (size < q->max_record)
		return -EMSGSIZE;
	for (int round = 0; round < 100; round++) {
		struct pos floor, t;
		uint64_t tail, end;
		int ret = snapshot_positions(q, &floor, &t);

		if (ret < 0)
			return ret;
		tail = t.seq;
		end = t.byte;
		if (seq < floor.seq || seq >= tail)
			return -ENOENT;
		if (end < floor.byte || end - floor.byte > q->size)
			return -EBADMSG;
		ret = peek_once(q, floor, seq, end, buf, r);
		if (ret <= 0)
			return ret;
	}
	return -EAGAIN;
}

uint32_t mmapq_max_record(const struct mmapq *q)
{
	return q->max_record;
}
