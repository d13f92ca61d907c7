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

/* The ring's bytes at positions [from, to): one piece, or two where they
 * wrap. */
int sync_ring(const struct mmapq *q, uint64_t from, uint64_t to)
{
	uint64_t off = from & q->mask, n = to - from;
	int r;

	if (n == 0)
		return 0;
	if (n >= q->size)
		return sync_bytes(q->ring, q->size);
	if (off + n <= q->size)
		return sync_bytes(q->ring + off, n);
	r = sync_bytes(q->ring + off, q->size - off);
	return r < 0 ? r : sync_bytes(q->ring, off + n - q->size);
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

/* What the slowest registered consumer has synced bounds what we may
 * write: floor.byte read with load-acquire (load_floor_byte; pairs with
 * its store-release, so the consumers' reads of the frames below it are
 * done before we overwrite them).  Safe with or without the mutex.  A
 * floor behind what we published, or more than a ring behind it, is
 * corruption, not a crash. */
int refresh_limit(struct mmapq *q)
{
	uint64_t floor = load_floor_byte(q);

	if (floor > q->published.byte || q->published.byte - floor > q->size)
		return -EBADMSG;
	q->limit = floor + q->size;
	return 0;
}

/* Bytes a record of len takes at tail: its frame, and the padding before
 * it if it does not fit before the ring's end. */
static inline uint64_t need_at_tail(const struct mmapq *q, uint32_t len)
{
	uint64_t end = q->size - (q->tail.byte & q->mask), fb = mmapq_frame_bytes(len);

	return fb <= end ? fb : end + fb;
}

static inline bool fits(const struct mmapq *q, uint32_t len)
{
	return q->tail.byte + need_at_tail(q, len) <= q->limit;
}

/* Bytes that records may surely take, whatever their lengths (mmapq.h,
 * mmapq_reserve): the free bytes, less what padding at the ring's end may
 * waste, which is less than one frame of max_record. */
static uint64_t sure_room(const struct mmapq *q)
{
	uint64_t free_b = q->limit - q->tail.byte, end = q->size - (q->tail.byte & q->mask);
	uint64_t waste = mmapq_frame_bytes(q->max_record);

	if (free_b <= end)
		return free_b;
	if (end < waste)
		waste = end;
	return free_b - waste;
}

static int check_len(const struct mmapq *q, uint32_t len)
{
	if (len > q->max_record || (q->format == MMAPQ_FORMAT_INT && len != sizeof(int64_t)))
		return -EMSGSIZE;
	return 0;
}

/* Mutex held: make [published, tail) visible and wake every registered
 * consumer that sleeps. */
static void publish_locked(struct mmapq *q)
{
	if (q->tail.seq == q->published.seq)
		return;
	mmapq_fault("publish.locked");
	__atomic_store_n(&q->h->producer.tail_byte, q->tail.byte, __ATOMIC_RELAXED);
	mmapq_fault("publish.tail_byte"); /* the pair half stored */
	/* release: the frames written before, and tail_byte, become visible
	 * to the consumers' acquire loads of tail */
	__atomic_store_n(&q->h->producer.tail, q->tail.seq, __ATOMIC_RELEASE);
	mmapq_fault("publish.stored");
	signal_consumers_locked(q, false);
	count(&q->prod->published, q->tail.seq - q->published.seq);
	q->published = q->tail;
}

/* Write order, before a publish (sync batch; always synced each record as
 * it was put): the frames about to be published are on disk first. */
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

static int sync_pending(const struct mmapq *q)
{
	if (q->sync != MMAPQ_SYNC_BATCH)
		return 0;
	return sync_ring(q, q->published.byte, q->tail.byte);
}

int mmapq_publish(struct mmapq *q)
{
	uint64_t from = q->published.seq;
	int r, rs;

	if (q->role != MMAPQ_ROLE_PRODUCER || !q->prod)
		return q->put_refused ? q->put_refused : -EPERM;
	q->claimed = false;
	if (q->tail.seq == q->published.seq)
		return 0;
	rs = sync_pending(q);
	r = lock(q);
	if (r < 0)
		return r;
	publish_locked(q);
	r = refresh_limit(q);
	unlock(q);
	if (r < 0)
		return r;
	/* published whatever happens now: an error says it is not durable */
	if (rs == 0 && sync_each(q)) {
		rs = sync_header(q);
		if (rs == 0)
			q->durable = q->published.byte;
	}
	if (rs < 0)
		return rs;
	return (int)(q->tail.seq - from > INT_MAX ? INT_MAX : q->tail.seq - from);
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
 * Mutex held, published == tail: make room for a record of len by skipping
 * the consumers that may be skipped ("Skipping" in mmapq_format.h): from
 * floor, whole records up to the first record boundary from which the
 * record fits; if every registered consumer below it has the skip policy
 * and is detached, each is moved there and what it lost counted, and floor
 * rises.  true if it did (the caller refreshes its limit); false if a
 * consumer must be waited for (or there is nothing to skip).
 */
static int skip_locked(struct mmapq *q, uint32_t len)
{
	struct pos floor = floor_locked(q), to = floor;
	uint64_t need = q->tail.byte + need_at_tail(q, len);
	bool skippers = false, any = false;

	if (need <= floor.byte + q->size)
		return 0;
	/* no consumer with the skip policy (the usual case): nothing to walk */
	for (uint32_t i = 0; i < q->max_consumers && !skippers; i++)
		skippers = registered(&q->h->consumers[i]) &&
		           (__atomic_load_n(&q->h->consumers[i].policy, __ATOMIC_RELAXED) & MMAPQ_ENTRY_SKIP);
	if (!skippers)
		return 0;
	while (to.byte + q->size < need && to.seq < q->tail.seq) {
		const uint8_t *d;
		uint32_t l;

		if (frame_next(q, &to.byte, q->tail.byte, false, &d, &l) < 0)
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

/* mmapq_reserve's slow path, the record not fitting as far as we know:
 * publish what is pending (a full ring of unpublished records would wait
 * for consumers that cannot see them), then wait under the mutex until a
 * consumer moves floor far enough, or the deadline.  0 with room; -EAGAIN
 * (deadline 0), -ETIMEDOUT, -EINTR or another error without. */
static int reserve_wait(struct mmapq *q, uint32_t len, uint64_t deadline_ns)
{
	bool spun = false, skipped = false;
	int r = lock(q);

	if (r < 0)
		return r;
	publish_locked(q);
	for (;;) {
		r = refresh_limit(q);
		if (r < 0 || fits(q, len))
			break;
		r = skip_locked(q, len);
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
		if (q->spin_us && !spun) {
			/* spin_us: watch floor for a moment, without the
			 * mutex, before registering as a waiter; then re-check
			 * under the mutex as before. */
			spun = true;
			unlock(q);
			mmapq_spin_while_equal(&q->h->floor.byte, q->limit - q->size,
			                       (uint64_t)q->spin_us * 1000u, deadline_ns);
			r = refresh_limit(q);
			if (r < 0 || fits(q, len))
				return r == 0 && skipped && sync_each(q) ? sync_header(q) : r;
			r = lock(q);
			if (r < 0)
				return r;
			continue;
		}
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
	uint64_t from = q->published.seq, fb;
	int r, rs;

	if (q->role != MMAPQ_ROLE_PRODUCER || !q->prod)
		return q->put_refused ? q->put_refused : -EPERM;
	r = check_len(q, len);
	if (r < 0)
		return r;
	if (!fits(q, len)) {
		/* first see whether a consumer released room, without the mutex */
		r = refresh_limit(q);
		if (r < 0)
			return r;
	}
	if (!fits(q, len)) {
		q->claimed = false;
		rs = sync_pending(q);
		r = reserve_wait(q, len, deadline_ns);
		/* what was published, whatever else happened: an error says it
		 * is not durable (and wins over -EAGAIN, -ETIMEDOUT, -EINTR) */
		if (rs == 0 && sync_each(q) && from != q->published.seq) {
			rs = sync_header(q);
			if (rs == 0)
				q->durable = q->published.byte;
		}
		if (rs < 0)
			return rs;
		if (r < 0)
			return r;
	}
	blocked_end(q);
	fb = mmapq_frame_bytes(len);
	*room = sure_room(q) > fb ? sure_room(q) : fb;
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

/* Room for a record of len at tail, refreshing floor once if it seems not
 * to fit: where its frame goes (*pad: where padding goes first, or the
 * frame itself if none is needed).  -ENOBUFS if it does not fit. */
static int room_at_tail(struct mmapq *q, uint32_t len, uint64_t *pad, uint64_t *at)
{
	uint64_t end;

	if (!fits(q, len)) {
		int r = refresh_limit(q);
		if (r < 0)
			return r;
		if (!fits(q, len))
			return -ENOBUFS;
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
		kick_writeback(q);
	return 0;
}

/*
 * mmapq_put_many's loop (len checked): records of len bytes from src, as
 * many as fit, at most n, beyond the published tail; how many, or -errno
 * if none.  room_at_tail once per run of frames: after it, the frames up
 * to the ring's end or to limit, whichever comes first, surely fit
 * without padding, and are written without asking again.
 */
__attribute__((always_inline)) static inline int put_run(struct mmapq *q, const uint8_t *src,
                                                         uint32_t len, uint32_t n,
                                                         mmapq_frame_crc_fn *crc)
{
	uint64_t fb = mmapq_frame_bytes(len), seq = q->tail.seq, mask = q->mask;
	/* in locals: the handle's fields would be loaded again after each
	 * store into the ring (bytes, which may alias anything) */
	uint8_t *ring = q->ring;
	uint32_t done = 0;
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
		do {
			struct mmapq_frame *f = (struct mmapq_frame *)(ring + (at & mask));
			uint8_t *payload = (uint8_t *)(f + 1);

			/* the lines ahead taken for writing before the
			 * stores reach them (the consumer read them last):
			 * once per line, by the frame that starts in its
			 * first fb bytes */
			if (fb >= 64 || (at & 63) < fb)
				__builtin_prefetch(ring + ((at + PREFETCH_AHEAD) & mask), 1);
			/* The alignment bytes are zeros: the payload's last
			 * 8-byte word zeroed, then the payload copied over
			 * it (one store instead of a memset call). */
			if (len & 7) {
				uint64_t zero = 0;
				memcpy(payload + (len & ~UINT32_C(7)), &zero, sizeof(zero));
			}
			copy_payload(payload, src, len);
			/* the crc from src, the same bytes: the ring's were
			 * just stored, perhaps in pieces that a load of 8
			 * bytes would wait for.  len and crc as one store. */
			memcpy(f, &(struct mmapq_frame){len, crc(at, len, src, len)}, sizeof(*f));
			mmapq_fault("put.written");
			at += fb;
			src += len;
			seq++;
			done++;
		} while (done < n && at + fb <= stop);
		q->tail = (struct pos){seq, at};
	}
	return done ? (int)done : r;
}

static int put_run_sw(struct mmapq *q, const uint8_t *src, uint32_t len, uint32_t n)
{
	return put_run(q, src, len, n, mmapq_crc32c_frame);
}

#if defined(__x86_64__)
HW_TARGET static int put_run_hw(struct mmapq *q, const uint8_t *src, uint32_t len, uint32_t n)
{
	/* 8-byte records (every int record) apart: with the length a
	 * constant, a frame is a few stores and three crc32 instructions */
	if (len == sizeof(int64_t))
		return put_run(q, src, sizeof(int64_t), n, mmapq_crc32c_frame_hw);
	return put_run(q, src, len, n, mmapq_crc32c_frame_hw);
}
#endif

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
	r = PICK(put_run_hw(q, data, len, n), put_run_sw(q, data, len, n));
	if (r <= 0)
		return r;
	if (q->sync == MMAPQ_SYNC_BATCH || q->sync == MMAPQ_SYNC_INTERVAL)
		kick_writeback(q);
	if (q->sync == MMAPQ_SYNC_ALWAYS) {
		int rs = sync_ring(q, start.byte, q->tail.byte);
		if (rs < 0) {
			q->tail = start; /* not put: the frames lie beyond tail, nobody reads them */
			return rs;
		}
	}
	return r;
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
		 * the producer's store-release in publish_locked, so the frames
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
 * Records seq .. seq + k - 1 (available, k >= 1) in order, each checksum
 * checked unless it was before: into r[i], or with copy their payloads,
 * each of copy_len bytes (-EMSGSIZE at one that is not), copied to copy +
 * i * copy_len.  How many were handed out, or -errno if none.  The
 * handle's positions (prev, walk, checked) are stored once, after the
 * loop: in it they live in registers (restrict: what the loop stores into
 * r and copy is never the handle, so its fields need not be loaded again
 * after each store).  ints: as frame_step's.
 */
__attribute__((always_inline)) static inline int
read_run(struct mmapq *q, uint64_t seq, uint32_t k, struct mmapq_record *restrict r,
         uint8_t *restrict copy, uint32_t copy_len, mmapq_frame_crc_fn *crc, bool ints)
{
	struct pos p, last;
	uint64_t checked, end = q->seen_tail_byte;
	uint32_t i = 0;
	int ret;

	if (!r && !copy)
		return -EINVAL; /* nowhere to put them */
	ret = locate_with(q, seq, &p, crc);
	if (ret < 0)
		return ret;
	checked = q->checked;
	if (ints && copy && copy_len == sizeof(int64_t)) {
		/* int records copied out: the frames up to the ring's end or
		 * end, whichever comes first, are 16 bytes each, back to back,
		 * so their bounds are checked once here, and each frame's own
		 * checks are its length and checksum.  The payload is loaded
		 * once, checked and stored from the register.  A frame that
		 * fails leaves the loop: frame_step below says what it is. */
		uint64_t off = p.byte & q->mask, fb = mmapq_frame_bytes(sizeof(int64_t));
		uint64_t whole = (q->size - off) / fb, below = (end - p.byte) / fb;
		uint32_t m = k;
		const uint8_t *f = q->ring + off;

		if (m > whole)
			m = (uint32_t)whole;
		if (m > below)
			m = (uint32_t)below;
		uint64_t b = p.byte;

		for (; i < m; i++, f += fb, b += fb) {
			const struct mmapq_frame *h = (const struct mmapq_frame *)f;
			uint64_t v, s = p.seq + i;

			if (!((uintptr_t)f & 63))
				__builtin_prefetch(f + PREFETCH_AHEAD);
			if (__atomic_load_n(&h->len, __ATOMIC_RELAXED) != sizeof(v))
				break;
			memcpy(&v, h + 1, sizeof(v));
			if (s >= checked && __atomic_load_n(&h->crc, __ATOMIC_RELAXED) !=
			                        crc(b, sizeof(v), &v, sizeof(v)))
				break;
			memcpy(copy + (size_t)i * sizeof(v), &v, sizeof(v));
		}
		if (i > 0) {
			p = (struct pos){p.seq + i, p.byte + i * fb};
			last = (struct pos){p.seq - 1, p.byte - fb};
		}
	}
	for (; i < k; i++) {
		const uint8_t *data;
		uint32_t len;
		uint64_t b = p.byte;

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
	return read_run(q, seq, k, r, copy, copy_len, mmapq_crc32c_frame, false);
}

#if defined(__x86_64__)
HW_TARGET static int read_run_hw(struct mmapq *q, uint64_t seq, uint32_t k,
                                 struct mmapq_record *r, uint8_t *copy, uint32_t copy_len)
{
	/* format int apart: each frame's checksum is then three crc32
	 * instructions, no loop */
	if (q->format == MMAPQ_FORMAT_INT)
		return read_run(q, seq, k, r, copy, copy_len, mmapq_crc32c_frame_hw, true);
	return read_run(q, seq, k, r, copy, copy_len, mmapq_crc32c_frame_hw, false);
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
		mmapq_cond_signal(&q->h->not_full);
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
		uint64_t to = q->published.byte;
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
		mmapq_cond_signal(&q->h->not_full);
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
