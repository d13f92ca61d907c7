/* SPDX-License-Identifier: MIT */
/*
 * mutex.c -- the robust, process-shared mutex as the queue uses it: the
 * waits under it, the repair after its holder died (EOWNERDEAD), and the
 * re-initialisation by a process that is alone.
 *
 * Crash analysis.  Every critical section changes shared state with single
 * aligned 64-bit stores, so a SIGKILL can stop it only between two of them:
 *   publish  (producer):  slot contents are written OUTSIDE the mutex
 *            (mmapq_put, mmapq_put_many: plain stores into slots beyond the
 *            published tail, which no reader looks at), then under it:
 *            store-release tail, signal not_empty.  Killed before
 *            the tail store: the batch was never published; the next
 *            producer starts at the stored tail and overwrites those slots
 *            (rolled back; the records were never acknowledged to anyone).
 *            Killed after it: the batch is published and complete; only the
 *            wake-up may be missing, which the unconditional wake after
 *            recovery (or the 0.5 s wait slice) makes up for.
 *   release  (consumer):  records are read (mmapq_get, mmapq_get_many:
 *            loads only) and written out OUTSIDE the mutex, then under it:
 *            store-release of its cursor; if it was the slowest, floor
 *            recomputed and stored (release), signal not_full.
 *            Killed before the cursor store: the batch is consumed again
 *            by that consumer's next process (at-least-once: the documented
 *            replay window is the one batch being written out; the other
 *            consumers are not affected).  Killed between the cursor and
 *            the floor store: floor is lower than it could be, which only
 *            holds the producer back until the repair recomputes it.
 *   register / remove (consumer table, mutex held): a registration fills
 *            the zeroed entry, then stores state = REGISTERED (release):
 *            killed before that, the entry is still free.  A removal
 *            stores state = FREE first, then floor: killed between them,
 *            floor is too low, repaired as above.
 *   wait:    a waiter leaves at most waiting = 1 behind (one spare wake-up).
 * So the repair on EOWNERDEAD is: check floor <= tail <= floor + capacity
 * and floor <= cursor <= tail for every registered consumer (any other
 * state is corruption, not a crash, and is refused), mark the mutex
 * consistent, recompute floor, count the recovery, wake every side once.
 */
#include "queue.h"

#include <errno.h>
#include <string.h>

#include "fault.h"

/* Positions a crash can leave (see "Crash analysis"): floor <= tail <=
 * floor + capacity, and floor <= cursor <= tail for every registered
 * consumer. */
static bool positions_sane(const struct mmapq *q)
{
	uint64_t floor = load_floor(q), tail = load_tail(q);

	if (floor > tail || tail - floor > q->capacity)
		return false;
	for (uint32_t i = 0; i < q->max_consumers; i++) {
		const struct mmapq_consumer *c = &q->h->consumers[i];
		uint64_t pos = __atomic_load_n(&c->position, __ATOMIC_ACQUIRE);
		if (registered(c) && (pos < floor || pos > tail))
			return false;
	}
	return true;
}

/* Our recoveries (like our pid, attaches and start time) live in our side
 * (producer, legacy consumer) or in our table entry (version-3 consumer). */
static uint64_t *recoveries_word(const struct mmapq *q)
{
	return q->me ? &q->me->recoveries : q->self ? &q->self->recoveries : NULL;
}

/* A repair made by us, counted in our side or entry.  A consumer that is
 * still attaching (mutex held, or alone) finds its entry by name; one not
 * registered yet counts it once it is (early_recoveries). */
static void count_recovery_locked(struct mmapq *q)
{
	uint64_t *rec = recoveries_word(q);

	for (uint32_t i = 0; !rec && q->role == MMAPQ_ROLE_CONSUMER && i < q->max_consumers; i++)
		if (registered(&q->h->consumers[i]) &&
		    !strncmp(q->h->consumers[i].name, q->name, sizeof(q->name)))
			rec = &q->h->consumers[i].recoveries;
	if (rec)
		count(rec, 1);
	else if (q->role == MMAPQ_ROLE_CONSUMER)
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
	if (q->legacy)
		legacy_wake_consumer(q);
	mmapq_cond_broadcast(&q->h->not_full);
	return 0;
}

/* Wait on our cond with the mutex held.  0: mutex held, re-check the
 * predicate; < 0: the mutex is released and the error returned. */
int wait_locked(struct mmapq *q, uint64_t deadline_ns)
{
	struct mmapq_lock lk = lock_of(q);
	int r = mmapq_cond_wait(q->wait_on, &lk, deadline_ns);

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
 * the lock word and wait flags say is left over from processes that are
 * gone.  A lock word that is not 0 was held by one of them, whether the
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
	if (q->legacy)
		legacy_reset_consumer(q);
	for (uint32_t i = 0; i < q->max_consumers; i++)
		mmapq_cond_reset(&q->h->consumers[i].not_empty);
	mmapq_cond_reset(&q->h->not_full);
	return init_mutex(q->h);
}
