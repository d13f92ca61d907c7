/* SPDX-License-Identifier: MIT */
/*
 * shmcond.h -- a condition variable for process-shared memory that survives
 * SIGKILL of either party at any instant.  Why not pthread_cond_t, and the
 * protocol, are explained in mmapq_format.h ("Synchronisation").
 *
 * The shape is pthread_cond's: wait with the (robust, process-shared)
 * mutex held and a deadline; signal and broadcast with the mutex held.
 * Exactly one waiter per object.
 */
#ifndef MMAPQ_SHMCOND_H
#define MMAPQ_SHMCOND_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mmapq_format.h"

/* Longest single sleep on a condition: a dead signaler or a missed signal
 * costs at most this much, and the interrupted callback is asked at least
 * this often. */
#define MMAPQ_WAIT_SLICE_NS (500u * 1000u * 1000u)

/*
 * How to take the robust, process-shared mutex.  Before blocking, try up to
 * spins times without blocking (0: block at once).  The critical sections
 * are a few stores, so a holder on another CPU is usually out in well under
 * a microsecond, while glibc's robust mutex goes straight to FUTEX_WAIT (and
 * its unlock to FUTEX_WAKE): two system calls and a wake-up, microseconds,
 * for a wait of nanoseconds.  Blocking waits last at most
 * MMAPQ_LOCK_SLICE_NS at a time; between two of them:
 *   interrupted (if set) says whether the caller wants to stop (a SIGTERM
 *   arrived, say): true gives up with -EINTR.  A holder that is stopped
 *   (SIGSTOP, a debugger) keeps the mutex for as long as it likes; the
 *   waiter must still be able to leave.
 *   check (if set) looks at the shared file and returns 0 to keep waiting or
 *   a negative errno to give up -- the mutex lives in a file that someone
 *   may have overwritten, and a wrecked lock word must not hang us.
 * Both are called only between slices, never while holding the mutex.
 */
struct mmapq_lock {
	pthread_mutex_t *mutex;
	unsigned spins;
	int (*check)(void *ctx);
	void *ctx;
	bool (*interrupted)(void *ctx);
	void *interrupted_ctx;
};

#define MMAPQ_LOCK_SLICE_NS (250u * 1000u * 1000u)

/* Every function here returns 0 or a negative errno. */

/* 0 or -EOWNERDEAD (a trylock reports a dead owner exactly as the lock
 * does): the mutex is held.  Not held: -EINTR (interrupted said so),
 * -ENOTRECOVERABLE, the check's -errno, or another -errno from pthread. */
int mmapq_mutex_lock(const struct mmapq_lock *l);

/* Forget any registered waiter (only when nobody else is attached). */
void mmapq_cond_reset(struct mmapq_cond *c);

/*
 * Sleep until signalled, for at most min(deadline, now + 0.5 s).  Mutex held
 * on entry (relocked with mmapq_mutex_lock(l)).  Returns with the mutex
 * held:
 *   0            woken, or the 0.5 s slice ended: re-check the predicate
 *   -EOWNERDEAD  relocked, but the previous owner died holding the mutex:
 *                repair, then pthread_mutex_consistent()
 * and without the mutex (nothing to undo: at worst the waiter's
 * registration stays behind, which costs the peer one spare FUTEX_WAKE):
 *   -ETIMEDOUT   the deadline (CLOCK_MONOTONIC ns) has passed
 *   -EINTR       a signal handler ran during the sleep, or l->interrupted
 *                said so (before the sleep, after it, or while relocking)
 *   -ENOTRECOVERABLE, or another -errno from the lock.
 */
int mmapq_cond_wait(struct mmapq_cond *c, const struct mmapq_lock *l, uint64_t deadline_ns);

/* Spin without any lock while *word == old (load-acquire), for at most
 * spin_ns and never past deadline_ns.  Returns the last value read. */
uint64_t mmapq_spin_while_equal(const uint64_t *word, uint64_t old, uint64_t spin_ns,
                                uint64_t deadline_ns);

/* Mutex held.  Wakes the waiter only if one registered. */
void mmapq_cond_signal(struct mmapq_cond *c);

/* Mutex held.  Wakes unconditionally (used after crash recovery). */
void mmapq_cond_broadcast(struct mmapq_cond *c);

#endif
