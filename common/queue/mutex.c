/* SPDX-License-Identifier: MIT */
/*
 * mutex.c -- the robust, process-shared mutex as the queue uses it: the
 * waits under it, the repair after its holder died (EOWNERDEAD), and the
 * re-initialisation by a process that is alone.
 *
 * Crash analysis.  Every critical section changes shared state with single
 * aligned 64-bit stores, so a SIGKILL can stop it only between two of them:
 *   publish  (producers): each writes frames OUTSIDE the mutex into its own
 *            reservation (mmapq_put, mmapq_commit, mmapq_put_many: plain
 *            stores beyond tail, padding and fills included, which no reader
 *            looks at), then under it commits the reservation and advances
 *            tail past every committed one at the bottom: tail_byte,
 *            store-release tail, the reservation cleared, signal not_empty
 *            (ring.c, "Fan-in"; the orders of every store in
 *            mmapq_format.h, "Fan-in").  Killed before its commit: the
 *            batch was never published; its reservation is abandoned (its
 *            role byte free) and filled by whoever finds it, or given back
 *            (rolled back: the records were never acknowledged to anyone).
 *            Killed after the commit: published by the next advance.
 *            Killed between tail_byte and tail (or before the reservation
 *            is cleared): the repair finishes the advance
 *            (reservations_whole_locked: tail past the reservation's records
 *            unless the walk from floor says it is already).  Killed after
 *            tail: published and complete; only the wake-up may be missing,
 *            which the unconditional wake after recovery (or the 0.5 s wait
 *            slice) makes up for.  Killed as it takes, extends or gives
 *            back a reservation: claim_byte is made the end of the highest
 *            reservation.
 *   release  (consumer):  records are read (mmapq_get, mmapq_get_many:
 *            loads only) and written out OUTSIDE the mutex, then its cursor
 *            stored (position_byte, store-release position), still outside,
 *            and (sync batch, always) the header msync'ed; then under the
 *            mutex: synced stored; if it was the slowest, floor recomputed
 *            and stored (the seqlock of struct mmapq_floor), signal not_full.
 *            Killed before the cursor store: the batch is consumed again by
 *            that consumer's next process (at-least-once: the documented
 *            replay window is the one batch being written out; the other
 *            consumers are not affected); killed between position_byte
 *            and position, the byte is ahead, which that consumer's next
 *            process finds again from its synced cursor.  Killed after
 *            it: position is ahead of synced or floor, which only holds
 *            the producer back until that consumer's next process
 *            attaches (it writes the cursor to disk, then takes it as
 *            synced: catch_up_synced) or a process alone re-initialises:
 *            synced must not pass what may not be on disk.  Killed in
 *            the middle of floor's seqlock (gen odd), or of synced's
 *            pair: the pair is half stored, which the repair makes whole.
 *   register / remove (consumer table, mutex held): a registration fills
 *            the zeroed entry, then stores state = REGISTERED (release):
 *            killed before that, the entry is still free.  A removal
 *            stores state = FREE first, then floor: killed between them,
 *            floor is too low, repaired as above.
 *   wait:    a waiter leaves at most waiting = 1 behind (one spare wake-up).
 * So the repair on EOWNERDEAD is: make floor whole if its gen is odd,
 * check floor <= tail <= floor + size and floor <= synced <= position <=
 * tail for every registered consumer (any other state is corruption, not a
 * crash, and is refused), finish an advance half done and make claim_byte
 * whole (the reservations back to back from tail_byte, tail's frames
 * ending at tail_byte but for fills), put each synced byte where its
 * record is, finish a skip the
 * producer began (mmapq_format.h, "Skipping"), mark the mutex
 * consistent, recompute floor, count the recovery, wake every side once.
 */
#include "queue.h"

#include <errno.h>
#include <string.h>

#include "fault.h"

/*
 * Mutex held (or alone): floor made whole if a writer died inside its
 * seqlock (gen odd: its seq may be the new floor's and its byte the old
 * one's).  The floor it was storing is the lowest synced cursor of the
 * registered consumers, or with none registered tail (the removal of the
 * last consumer); the synced cursors and tail are whole then, being stored
 * under the mutex too.  gen is made even.
 */
void floor_whole_locked(struct mmapq *q)
{
	struct mmapq_floor *f = &q->h->floor;
	uint64_t g = __atomic_load_n(&f->gen, __ATOMIC_RELAXED);
	struct pos low = {__atomic_load_n(&q->h->producer.tail, __ATOMIC_RELAXED),
	                  __atomic_load_n(&q->h->producer.tail_byte, __ATOMIC_RELAXED)};
	bool any = false;

	if (!(g & 1))
		return;
	for (uint32_t i = 0; i < q->max_consumers; i++) {
		const struct mmapq_consumer *c = &q->h->consumers[i];
		struct pos s = {__atomic_load_n(&c->synced, __ATOMIC_RELAXED),
		                __atomic_load_n(&c->synced_byte, __ATOMIC_RELAXED)};

		if (registered(c) && (!any || s.seq < low.seq))
			low = s;
		any |= registered(c);
	}
	__atomic_store_n(&f->seq, low.seq, __ATOMIC_RELAXED);
	__atomic_store_n(&f->byte, low.byte, __ATOMIC_RELEASE);
	__atomic_store_n(&f->gen, g + 1, __ATOMIC_RELEASE);
}

/* Positions a crash can leave (see "Crash analysis"), each pair {seq,
 * byte} the dead holder may have stored half of made whole: floor's
 * (floor_whole_locked), tail_byte put back where the frames of the records
 * below tail end if a producer died between storing it and tail, and each
 * consumer's synced_byte where its synced record is if it died between
 * storing them.  (A consumer's own cursor is stored outside the mutex, by
 * a consumer that may be alive: its holder makes it whole as it attaches.) */
static bool positions_sane(struct mmapq *q)
{
	struct pos floor;
	uint64_t tail = __atomic_load_n(&q->h->producer.tail, __ATOMIC_RELAXED);
	uint64_t tail_byte = __atomic_load_n(&q->h->producer.tail_byte, __ATOMIC_RELAXED);
	uint64_t end;

	if (!finish_skips_locked(q))
		return false;
	floor_whole_locked(q);
	floor = floor_locked(q);
	if (floor.seq > tail || floor.byte > tail_byte || tail_byte - floor.byte > q->size ||
	    find_record(q, floor, tail, tail_byte, &end) < 0)
		return false;
	/* an advance half done finished, claim_byte made whole */
	if (!reservations_whole_locked(q))
		return false;
	tail = __atomic_load_n(&q->h->producer.tail, __ATOMIC_RELAXED);
	/* tail's frames end at tail_byte, but for padding and fill frames
	 * (the end of a reservation) */
	if (find_record(q, floor, tail, tail_byte, &end) < 0 || fills_end(q, end, tail_byte) != tail_byte)
		return false;
	for (uint32_t i = 0; i < q->max_consumers; i++) {
		struct mmapq_consumer *c = &q->h->consumers[i];
		uint64_t synced = __atomic_load_n(&c->synced, __ATOMIC_RELAXED);
		uint64_t pos = __atomic_load_n(&c->position, __ATOMIC_ACQUIRE);
		uint64_t byte;

		if (!registered(c))
			continue;
		if (synced < floor.seq || pos < synced || pos > tail ||
		    find_record(q, floor, synced, end, &byte) < 0)
			return false;
		if (byte != __atomic_load_n(&c->synced_byte, __ATOMIC_RELAXED))
			__atomic_store_n(&c->synced_byte, byte, __ATOMIC_RELAXED);
	}
	return true;
}

/* Our recoveries (like our pid, attaches and start time) live in our
 * entry of the producer or the consumer table. */
static uint64_t *recoveries_word(const struct mmapq *q)
{
	return q->me ? &q->me->recoveries : q->prod ? &q->prod->recoveries : NULL;
}

/* A repair made by us, counted in our entry at once (a kill later in the
 * repair, or before the attach is done, would lose a count kept in the
 * handle).  A producer or consumer that is still attaching (mutex held,
 * or alone) finds its entry by name; one not registered yet counts it
 * when it registers, under the same hold (early_recoveries). */
static void count_recovery_locked(struct mmapq *q)
{
	uint64_t *rec = recoveries_word(q);

	for (uint32_t i = 0; !rec && q->role == MMAPQ_ROLE_CONSUMER && i < q->max_consumers; i++)
		if (registered(&q->h->consumers[i]) &&
		    !strncmp(q->h->consumers[i].name, q->name, sizeof(q->name)))
			rec = &q->h->consumers[i].recoveries;
	for (uint32_t i = 0; !rec && q->role == MMAPQ_ROLE_PRODUCER && i < q->max_producers; i++)
		if (producer_registered(q, i) &&
		    !strncmp(q->h->producers[i].name, q->name, sizeof(q->h->producers[i].name)))
			rec = &q->h->producers[i].recoveries;
	if (rec)
		count(rec, 1);
	else if (q->role == MMAPQ_ROLE_CONSUMER || q->role == MMAPQ_ROLE_PRODUCER)
		q->early_recoveries++;
}

/* Called with the mutex held after EOWNERDEAD; see "Crash analysis". */
int recover_locked(struct mmapq *q)
{
	mmapq_fault("recover.locked");
	if (!positions_sane(q)) {
		/* Not a state a crash can leave: unlocking without
		 * pthread_mutex_consistent makes the mutex ENOTRECOVERABLE for
		 * everyone, which is what a corrupt file deserves. */
		pthread_mutex_unlock(&q->h->lock.mutex);
		return -ENOTRECOVERABLE;
	}
	pthread_mutex_consistent(&q->h->lock.mutex);
	count_recovery_locked(q);
	/* The dead owner may have stored a cursor without floor, or a
	 * position without waking the side that waits for it. */
	(void)floor_update_locked(q);
	signal_consumers_locked(q, true);
	signal_producers_locked(q, true);
	return 0;
}

/* Wait on our cond with the mutex held.  0: mutex held, re-check the
 * predicate; < 0: the mutex is released and the error returned. */
int wait_locked(struct mmapq *q, uint64_t deadline_ns)
{
	return wait_on_locked(q, q->wait_on, deadline_ns);
}

/* The same on cond c (a producer waits for its turn on another word than
 * for room). */
int wait_on_locked(struct mmapq *q, struct mmapq_cond *c, uint64_t deadline_ns)
{
	struct mmapq_lock lk = lock_of(q);
	int r = mmapq_cond_wait(c, &lk, deadline_ns);

	/* 0 and -EOWNERDEAD come back with the mutex held, all else without
	 * (shmcond.h) */
	return r == -EOWNERDEAD ? recover_locked(q) : r;
}

int init_mutex(struct mmapq_header *h)
{
	pthread_mutexattr_t a;
	int r;

	r = pthread_mutexattr_init(&a);
	if (r)
		return -r;
	r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (!r)
		r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	if (!r)
		r = pthread_mutex_init(&h->lock.mutex, &a);
	pthread_mutexattr_destroy(&a);
	return -r;
}

/*
 * Nobody else is attached (we hold the attach lock exclusively): whatever
 * the lock word, the wait flags and the synced cursors say is left over
 * from processes that are gone.  A lock word that is not 0 was held by one of them, whether the
 * kernel saw it die (FUTEX_OWNER_DIED) or not (reboot, power cut, a copied
 * file): a recovery.  Then start from a fresh mutex either way.
 *
 * The mutex bytes are only read here, never handed to pthread: they come
 * from the file, and glibc trusts a mutex's type word, so a file whose
 * mutex claims to be priority-protect with a bad ceiling, or
 * priority-inheritance and not robust with the owner-died bit set, made
 * pthread_mutex_trylock abort the process on an assertion (found by
 * tests/fuzz/fuzz_queue_file).  The first word of glibc's pthread_mutex_t
 * is the futex word of the kernel's robust-futex ABI (owner TID |
 * FUTEX_OWNER_DIED | FUTEX_WAITERS), 0 when unlocked.
 */
#ifdef __GLIBC__
_Static_assert(offsetof(pthread_mutex_t, __data.__lock) == 0, "the futex word starts the mutex");
#endif
int reinit_sync_alone(struct mmapq *q)
{
	uint32_t word;

	memcpy(&word, &q->h->lock, sizeof(word));
	if (word != 0)
		count_recovery_locked(q); /* alone: as good as the mutex */
	for (uint32_t i = 0; i < q->max_consumers; i++) {
		struct mmapq_consumer *c = &q->h->consumers[i];

		mmapq_cond_reset(&c->not_empty);
		/* the cursors are on disk (mark_in_use wrote the header) */
		c->synced = c->position;
		c->synced_byte = c->position_byte;
	}
	mmapq_cond_reset(&q->h->not_full);
	for (uint32_t i = 0; i < q->max_producers; i++) {
		mmapq_cond_reset(&q->h->producers[i].turn);
		mmapq_cond_reset(&q->h->producers[i].room);
	}
	/* floor's seqlock left odd by a writer that died in it (the repair
	 * after EOWNERDEAD, which would even it, replaced by this): readers
	 * would wait for it for ever */
	if (q->h->floor.gen & 1)
		q->h->floor.gen++;
	return init_mutex(q->h);
}
