/* SPDX-License-Identifier: MIT */
/*
 * ring.c -- the ring: produce (reserve, put, publish) and consume
 * (available, get, copy, release), and the observer's peek.  These are the
 * hot paths: each call is a few loads and stores of the handle, and the
 * mutex once per batch at most; what makes each step safe against a
 * SIGKILL at any instant is in mutex.c ("Crash analysis"), and each acquire
 * and release below says what it pairs with.
 */
#include "queue.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fault.h"

/* ---- msync -------------------------------------------------------------- */

/* msync(MS_SYNC) of the pages holding [p, p + len): 0 or -errno (EIO: the
 * file system could not write them back, ENOSPC, ...). */
int sync_bytes(const void *p, size_t len)
{
	static long pagesize;
	uintptr_t start, end;

	if (!pagesize)
		pagesize = sysconf(_SC_PAGESIZE);
	start = (uintptr_t)p & ~((uintptr_t)pagesize - 1);
	end = (uintptr_t)p + len;
	return msync((void *)start, end - start, MS_SYNC) < 0 ? neg_errno() : 0;
}

/* Slots for sequence numbers [from, to) and then the header; stops at the
 * first error. */
static int sync_slots(const struct mmapq *q, uint64_t from, uint64_t to)
{
	int r;

	while (from < to) {
		uint64_t idx = from & q->mask;
		uint64_t n = to - from;
		if (n > q->capacity - idx)
			n = q->capacity - idx;
		r = sync_bytes(slot_at(q, from), (size_t)n * q->slot_size);
		if (r < 0)
			return r;
		from += n;
	}
	return sync_bytes(q->h, sizeof(*q->h));
}

/* ---- positions, floor, wake-ups: both sides ----------------------------- */

/*
 * head and tail as one consistent pair without the mutex (observer): tail
 * read between two equal reads of head was read while head stood still, so
 * head <= tail <= head + capacity holds for the pair unless the file is
 * corrupt.
 */
int snapshot_positions(const struct mmapq *q, uint64_t *head, uint64_t *tail)
{
	for (int i = 0; i < 1000; i++) {
		uint64_t h1 = load_floor(q), t = load_tail(q), h2 = load_floor(q);
		if (h1 != h2)
			continue;
		if (h1 > t || t - h1 > q->capacity)
			return -EBADMSG;
		*head = h1;
		*tail = t;
		return 0;
	}
	return -EAGAIN;
}

/*
 * Mutex held, version 3: floor raised to the lowest cursor of the
 * registered consumers, if that is higher (never lowered: a cursor below
 * floor is corruption).  With nobody registered floor stays (the records
 * wait for the next consumer).  true if it moved: the producer may have
 * room now.  The cursors are read relaxed: each was stored under the mutex
 * we hold.  The release store pairs with the producer's acquire of floor
 * (refresh_limit): the consumers' reads of the slots below the new floor
 * happened before their unlock, our lock, and this store.
 */
bool floor_update_locked(struct mmapq *q)
{
	uint64_t min = UINT64_MAX, floor = __atomic_load_n(&q->h->floor.floor, __ATOMIC_RELAXED);

	for (uint32_t i = 0; i < q->max_consumers; i++) {
		const struct mmapq_consumer *c = &q->h->consumers[i];
		uint64_t pos;

		if (!registered(c))
			continue;
		pos = __atomic_load_n(&c->position, __ATOMIC_RELAXED);
		if (pos < min)
			min = pos;
	}
	if (min == UINT64_MAX || min <= floor)
		return false;
	__atomic_store_n(&q->h->floor.floor, min, __ATOMIC_RELEASE);
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

/* ---- producer ----------------------------------------------------------- */

/* What the slowest registered consumer has released bounds what we may
 * fill: floor read with load-acquire (load_floor; pairs with the
 * store-release of floor, so the consumers' reads of the slots below it
 * are done before we overwrite them).  Called with the mutex held, or
 * without it only when nothing is unpublished (published == tail: it
 * publishes nothing and wakes no one, the mutex-guarded protocol is
 * untouched).  A floor behind or too far ahead of what we published is
 * corruption, not a crash. */
int refresh_limit(struct mmapq *q)
{
	uint64_t head = load_floor(q);

	if (head > q->published || q->published - head > q->capacity)
		return -EBADMSG;
	q->limit = head + q->capacity;
	return 0;
}

/* Mutex held: make [published, tail) visible and wake every registered
 * consumer that sleeps. */
static void publish_locked(struct mmapq *q)
{
	if (q->tail == q->published)
		return;
	mmapq_fault("publish.locked");
	/* release: the slot contents written before become visible to the
	 * consumers' acquire loads of tail */
	__atomic_store_n(&q->h->producer.position, q->tail, __ATOMIC_RELEASE);
	mmapq_fault("publish.stored");
	signal_consumers_locked(q, false);
}

int mmapq_publish(struct mmapq *q)
{
	uint64_t from = q->published;
	int r;

	if (q->role != MMAPQ_ROLE_PRODUCER)
		return -EPERM;
	if (q->tail == q->published)
		return 0;
	r = lock(q);
	if (r < 0)
		return r;
	publish_locked(q);
	q->published = q->tail;
	r = refresh_limit(q);
	unlock(q);
	if (r < 0)
		return r;
	/* published whatever happens now: an error says it is not durable */
	if (q->sync != MMAPQ_SYNC_NEVER && (r = sync_slots(q, from, q->tail)) < 0)
		return r;
	return (int)(q->tail - from > INT_MAX ? INT_MAX : q->tail - from);
}

/* mmapq_reserve's slow path, the ring full as far as we know: publish
 * what is pending (a full ring of unpublished records would wait for a
 * consumer that cannot see them), then wait under the mutex until the
 * consumer releases a slot or the deadline.  0 with room (q->limit past
 * q->tail); -EAGAIN (deadline 0), -ETIMEDOUT, -EINTR or another error
 * without. */
static int reserve_wait(struct mmapq *q, uint64_t deadline_ns)
{
	bool spun = false;
	int r = lock(q);

	if (r < 0)
		return r;
	publish_locked(q);
	q->published = q->tail;
	for (;;) {
		r = refresh_limit(q);
		if (r < 0 || q->limit != q->tail)
			break;
		if (!deadline_ns) {
			r = -EAGAIN;
			break;
		}
		if (q->spin_us && !spun) {
			/* spin_us: watch floor for a moment, without the
			 * mutex, before registering as a waiter; then re-check
			 * under the mutex as before. */
			spun = true;
			unlock(q);
			mmapq_spin_while_equal(&q->h->floor.floor, q->tail - q->capacity,
			                       (uint64_t)q->spin_us * 1000u, deadline_ns);
			r = refresh_limit(q);
			if (r < 0 || q->limit != q->tail)
				return r;
			r = lock(q);
			if (r < 0)
				return r;
			continue;
		}
		r = wait_locked(q, deadline_ns);
		if (r < 0)
			return r; /* wait_locked gave up the mutex */
	}
	unlock(q);
	return r;
}

int mmapq_reserve(struct mmapq *q, uint64_t deadline_ns, uint32_t *nfree)
{
	uint64_t from = q->published;
	int r;

	if (q->role != MMAPQ_ROLE_PRODUCER)
		return -EPERM;
	if (q->limit == q->tail && q->published == q->tail) {
		/* Nothing to publish: first see whether the consumer released
		 * room, without the mutex. */
		r = refresh_limit(q);
		if (r < 0)
			return r;
	}
	if (q->limit == q->tail) {
		r = reserve_wait(q, deadline_ns);
		/* what was published, whatever else happened: an error says it
		 * is not durable (and wins over -EAGAIN, -ETIMEDOUT, -EINTR) */
		if (q->sync != MMAPQ_SYNC_NEVER && from != q->published) {
			int rs = sync_slots(q, from, q->published);
			if (rs < 0)
				r = rs;
		}
		if (r < 0)
			return r;
	}
	*nfree = (uint32_t)(q->limit - q->tail);
	return 0;
}

int mmapq_put(struct mmapq *q, const void *data, uint32_t len)
{
	int r = mmapq_put_many(q, data, len, 1);

	return r < 0 ? r : 0;
}

/* Records [tail, tail + n) from src (len bytes each) into their slots;
 * the caller checked the room, the length and that they do not wrap. */
static void fill_slots(struct mmapq *q, uint64_t tail, const uint8_t *src, uint32_t len, uint32_t n)
{
	if (q->int_slots) {
		struct mmapq_int_slot *s = int_slot_at(q, tail);
		for (uint32_t i = 0; i < n; i++) {
			s[i].seq = tail + i;
			memcpy(&s[i].value, src + 8 * (size_t)i, sizeof(s[i].value));
			mmapq_fault("put.written");
		}
		return;
	}
	uint8_t *b = (uint8_t *)slot_at(q, tail);
	for (uint32_t i = 0; i < n; i++, b += q->slot_size, src += len) {
		struct mmapq_slot *s = (struct mmapq_slot *)b;
		s->seq = tail + i;
		s->len = len;
		s->reserved = 0;
		if (len == sizeof(uint64_t))
			memcpy(s + 1, src, sizeof(uint64_t));
		else
			memcpy(s + 1, src, len);
		mmapq_fault("put.written");
	}
}

int mmapq_put_many(struct mmapq *q, const void *data, uint32_t len, uint32_t n)
{
	const uint8_t *src = data;
	uint64_t tail = q->tail;
	uint32_t k, done = 0;

	if (q->put_refused)
		return q->put_refused;
	if (len > q->record_size || (q->format == MMAPQ_FORMAT_INT && len != sizeof(int64_t)))
		return -EMSGSIZE;
	if (n == 0)
		return 0;
	if (tail == q->limit)
		return -ENOBUFS;
	k = q->limit - tail < n ? (uint32_t)(q->limit - tail) : n;
	/* The slots are ours: the consumer reads only below the published
	 * tail and we only write below a head it has released.  Slot order
	 * wraps at the end of the ring: at most two runs. */
	while (done < k) {
		uint32_t idx = (uint32_t)(tail & q->mask), run = q->capacity - idx;
		if (run > k - done)
			run = k - done;
		fill_slots(q, tail, src, len, run);
		if (q->sync == MMAPQ_SYNC_ALWAYS) {
			int r = sync_bytes(q->slots + (size_t)idx * q->slot_size, (size_t)run * q->slot_size);
			if (r < 0)
				return r; /* not put: the slots lie beyond tail, nobody reads them */
		}
		tail += run;
		src += (size_t)run * len;
		done += run;
	}
	q->tail = tail;
	return (int)k;
}

uint32_t mmapq_pending(const struct mmapq *q)
{
	return q->role == MMAPQ_ROLE_PRODUCER ? (uint32_t)(q->tail - q->published) : 0;
}

uint64_t mmapq_next_seq(const struct mmapq *q)
{
	return q->tail;
}

void mmapq_count_dropped(struct mmapq *q, uint64_t n)
{
	if (q->role == MMAPQ_ROLE_PRODUCER)
		count(&q->self->dropped, n);
}

void mmapq_count_bad_input(struct mmapq *q, uint64_t n)
{
	if (q->self)
		count(&q->self->bad_input, n);
}

/* ---- consumer ----------------------------------------------------------- */

static int check_tail(struct mmapq *q, uint64_t tail)
{
	if (tail < q->head || tail - q->head > q->capacity)
		return -EBADMSG;
	return 0;
}

int mmapq_available(struct mmapq *q, uint64_t deadline_ns, uint32_t *navail)
{
	uint64_t tail;
	int r;

	if (q->role != MMAPQ_ROLE_CONSUMER)
		return -EPERM;
	if (q->seen_tail == q->head) {
		/* First without the mutex: the acquire load of tail pairs with
		 * the producer's store-release in publish_locked, so the slots
		 * below it are complete and visible.  Then, with spin_us, watch
		 * it for a moment.  Only if nothing came: the mutex, and the
		 * wait protocol exactly as before. */
		tail = load_tail(q);
		if (tail == q->head && q->spin_us && deadline_ns)
			tail = mmapq_spin_while_equal(&q->h->producer.position, q->head,
			                              (uint64_t)q->spin_us * 1000u, deadline_ns);
		if (tail == q->head) {
			r = lock(q);
			if (r < 0)
				return r;
			for (;;) {
				tail = load_tail(q);
				if (tail != q->head)
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
		r = check_tail(q, tail);
		if (r < 0)
			return r;
		q->seen_tail = tail;
	}
	*navail = (uint32_t)(q->seen_tail - q->head);
	return 0;
}

/* The payload of record seq and its length, each field read once (the
 * file is shared, and we check what we use). */
static int check_slot(const struct mmapq *q, uint64_t seq, const void **data, uint32_t *len)
{
	if (q->int_slots) {
		const struct mmapq_int_slot *s = int_slot_at(q, seq);
		if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) != seq)
			return -EBADMSG;
		*data = &s->value;
		*len = sizeof(s->value);
		return 0;
	}
	const struct mmapq_slot *s = slot_at(q, seq);
	uint64_t sseq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
	uint32_t l = __atomic_load_n(&s->len, __ATOMIC_RELAXED);

	if (sseq != seq || l > q->record_size || (q->format == MMAPQ_FORMAT_INT && l != sizeof(int64_t)))
		return -EBADMSG;
	*data = s + 1;
	*len = l;
	return 0;
}

static int read_slot(const struct mmapq *q, uint64_t seq, struct mmapq_record *r)
{
	const void *data;
	uint32_t len;
	int ret = check_slot(q, seq, &data, &len);

	if (ret < 0)
		return ret;
	r->seq = seq;
	r->len = len;
	r->data = data;
	return 0;
}

int mmapq_get(struct mmapq *q, uint32_t index, struct mmapq_record *r)
{
	if (q->role != MMAPQ_ROLE_CONSUMER)
		return -EPERM;
	if ((uint64_t)index >= q->seen_tail - q->head)
		return -ENOENT;
	return read_slot(q, q->head + index, r);
}

/* How many of n records from index on mmapq_get_many and mmapq_copy_many
 * may read: 0 or -errno, *k set.  The records below seen_tail are
 * complete: seen_tail came from an acquire load of tail (mmapq_available,
 * mmapq_release). */
static int many_count(const struct mmapq *q, uint32_t index, uint32_t n, uint32_t *k)
{
	uint64_t avail = q->seen_tail - q->head;

	if (q->role != MMAPQ_ROLE_CONSUMER)
		return -EPERM;
	if ((uint64_t)index >= avail)
		return -ENOENT;
	*k = avail - index < n ? (uint32_t)(avail - index) : n;
	return 0;
}

int mmapq_get_many(struct mmapq *q, uint32_t index, uint32_t n, struct mmapq_record *r)
{
	uint64_t seq = q->head + index;
	uint32_t k = 0, i = 0;
	int ret = many_count(q, index, n, &k);

	if (ret < 0)
		return ret;
	if (q->int_slots) {
		/* a run of slots up to the end of the ring, then from its start */
		while (i < k) {
			const struct mmapq_int_slot *s = int_slot_at(q, seq);
			uint32_t run = q->capacity - (uint32_t)(seq & q->mask), j;
			if (run > k - i)
				run = k - i;
			for (j = 0; j < run; j++) {
				if (__atomic_load_n(&s[j].seq, __ATOMIC_RELAXED) != seq + j)
					break;
				r[i + j] = (struct mmapq_record){seq + j, sizeof(s[j].value), &s[j].value};
			}
			i += j;
			seq += j;
			if (j < run)
				break;
		}
	} else {
		for (; i < k; i++, seq++)
			if (read_slot(q, seq, &r[i]) < 0)
				break;
	}
	return i == 0 && k ? -EBADMSG : (int)i;
}

int mmapq_copy_many(struct mmapq *q, uint32_t index, uint32_t n, void *out, uint32_t len)
{
	uint8_t *o = out;
	uint64_t seq = q->head + index;
	uint32_t k = 0, i = 0;
	int err = many_count(q, index, n, &k);

	if (err < 0)
		return err;
	err = -EBADMSG;
	if (q->int_slots && len == sizeof(int64_t)) {
		while (i < k) {
			const struct mmapq_int_slot *s = int_slot_at(q, seq);
			uint32_t run = q->capacity - (uint32_t)(seq & q->mask), j = 0;
			if (run > k - i)
				run = k - i;
			/* four at a time while all four are right, then one by one */
			for (; j + 4 <= run; j += 4) {
				const struct mmapq_int_slot *f = s + j;
				uint64_t want = seq + j;
				uint8_t *d = o + 8 * (size_t)(i + j);
				if (((__atomic_load_n(&f[0].seq, __ATOMIC_RELAXED) ^ want) |
				     (__atomic_load_n(&f[1].seq, __ATOMIC_RELAXED) ^ (want + 1)) |
				     (__atomic_load_n(&f[2].seq, __ATOMIC_RELAXED) ^ (want + 2)) |
				     (__atomic_load_n(&f[3].seq, __ATOMIC_RELAXED) ^ (want + 3))) != 0)
					break;
				memcpy(d, &f[0].value, 8);
				memcpy(d + 8, &f[1].value, 8);
				memcpy(d + 16, &f[2].value, 8);
				memcpy(d + 24, &f[3].value, 8);
			}
			for (; j < run; j++) {
				if (__atomic_load_n(&s[j].seq, __ATOMIC_RELAXED) != seq + j)
					break;
				memcpy(o + 8 * (size_t)(i + j), &s[j].value, sizeof(s[j].value));
			}
			i += j;
			seq += j;
			if (j < run)
				break;
		}
	} else {
		for (; i < k; i++, seq++) {
			struct mmapq_record r;
			if ((err = read_slot(q, seq, &r)) < 0)
				break;
			if (r.len != len) {
				err = -EMSGSIZE;
				break;
			}
			memcpy(o + (size_t)i * len, r.data, len);
		}
	}
	return i == 0 && k ? err : (int)i;
}

int mmapq_release(struct mmapq *q, uint32_t n)
{
	uint64_t head, tail;
	int r;

	if (q->role != MMAPQ_ROLE_CONSUMER)
		return -EPERM;
	if ((uint64_t)n > q->seen_tail - q->head)
		return -EINVAL;
	if (n == 0)
		return 0;
	head = q->head + n;
	r = lock(q);
	if (r < 0)
		return r;
	mmapq_fault("release.locked");
	/* release: our reads of these slots happen before anyone who sees
	 * the new cursor (the consumer that raises floor from it, under the
	 * mutex; an observer's acquire) */
	__atomic_store_n(q->cursor, head, __ATOMIC_RELEASE);
	mmapq_fault("release.stored");
	/* Only the slowest consumer (cursor was at floor) can move floor: the
	 * others leave the producer alone.  A consumer without an entry of
	 * its own (a file opened to migrate it) has floor itself as cursor. */
	if (!q->me || (q->head == __atomic_load_n(&q->h->floor.floor, __ATOMIC_RELAXED) &&
	               floor_update_locked(q)))
		mmapq_cond_signal(&q->h->not_full);
	/* Refresh what is available while we hold the lock anyway: when busy,
	 * this is the only lock round-trip per batch. */
	tail = load_tail(q);
	unlock(q);
	q->head = head;
	/* released whatever happens now: an error says the new head is not
	 * durable */
	if (q->sync != MMAPQ_SYNC_NEVER && (r = sync_bytes(q->h, sizeof(*q->h))) < 0)
		return r;
	r = check_tail(q, tail);
	if (r < 0)
		return r;
	if (tail > q->seen_tail)
		q->seen_tail = tail;
	return 0;
}

/* ---- observer ----------------------------------------------------------- */

/*
 * Seqlock style: the slot is checked, its payload copied out, and only then
 * is head looked at again.  Why the second look suffices: the producer
 * overwrites the slot of seq (with seq + capacity) only after its
 * load-acquire of head has returned a value > seq (refresh_limit), which
 * reads the consumer's store-release of that head (mmapq_release); acquire
 * orders the producer's slot stores after that
 * load.  So if our copy saw any byte of the overwrite, the consumer's head
 * store was visible before it, and the acquire fence below, which keeps our
 * copy's loads before the following load of head, makes that load see it
 * too: head > seq, and the copy is thrown away.  head <= seq after the copy
 * means the slot still held record seq throughout (it was complete before
 * the copy: the load-acquire of tail in snapshot_positions pairs with the
 * producer's store-release of tail in publish_locked).
 */
int mmapq_peek(struct mmapq *q, uint64_t seq, void *buf, uint32_t size, struct mmapq_record *r)
{
	const void *s;
	uint64_t head, tail;
	uint32_t len;
	int ret;

	if (size < q->record_size)
		return -EMSGSIZE;
	ret = snapshot_positions(q, &head, &tail);
	if (ret < 0)
		return ret;
	if (seq < head || seq >= tail)
		return -ENOENT;
	ret = check_slot(q, seq, &s, &len);
	if (ret < 0)
		/* the consumer may have moved on and the producer reused it */
		return load_floor(q) > seq ? -ENOENT : ret;
	memcpy(buf, s, len); /* may race with an overwrite: checked below */
	/* acquire fence: the copy's loads stay before the load of head below
	 * (pairs with the consumer's release store of head, as seen by the
	 * producer's acquire of it before it overwrites the slot) */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
	/* gcc refuses fences under -fsanitize=thread (ThreadSanitizer does
	 * not model them); the TSan build (tests/analyze.sh) never peeks */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
	if (__atomic_load_n(&q->h->floor.floor, __ATOMIC_RELAXED) > seq)
		return -ENOENT; /* consumed meanwhile: the slot may have been reused */
	r->seq = seq;
	r->len = len;
	r->data = buf;
	return 0;
}

uint32_t mmapq_record_size(const struct mmapq *q)
{
	return q->record_size;
}
