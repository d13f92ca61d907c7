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
#include <stdint.h>

#include "mmapq_format.h"

/* Longest single sleep: a dead signaler or a missed signal costs at most
 * this much, and callers re-check their stop flags at least this often. */
#define MMAPQ_WAIT_SLICE_NS (500u * 1000u * 1000u)

/*
 * How to take the robust, process-shared mutex.  Before blocking, try up to
 * spins times without blocking (0: block at once).  The critical sections
 * are a few stores, so a holder on another CPU is usually out in well under
 * a microsecond, while glibc's robust mutex goes straight to FUTEX_WAIT (and
 * its unlock to FUTEX_WAKE): two system calls and a wake-up, microseconds,
 * for a wait of nanoseconds.  Blocking waits last at most a second at a
 * time: then check (if set) looks at the shared file and returns 0 to keep
 * waiting or a positive errno to give up -- the mutex lives in a file that
 * someone may have overwritten, and a wrecked lock word must not hang us.
 */
struct mmapq_lock {
	pthread_mutex_t *mutex;
	unsigned spins;
	int (*check)(void *ctx);
	void *ctx;
};

#define MMAPQ_LOCK_CHECK_NS (1000u * 1000u * 1000u)

/* Returns what pthread_mutex_lock returns (0, EOWNERDEAD, ENOTRECOVERABLE,
 * ...; a trylock reports a dead owner exactly as the lock does), or the
 * check's errno (mutex not held). */
int mmapq_mutex_lock(const struct mmapq_lock *l);

/* Forget any registered waiter (only when nobody else is attached). */
void mmapq_cond_reset(struct mmapq_cond *c);

/*
 * Sleep until signalled, for at most min(deadline, now + 0.5 s).  Mutex held
 * on entry (relocked with mmapq_mutex_lock(l)).  Returns with
 * the mutex held:
 *   0            woken, or the 0.5 s slice ended: re-check the predicate
 *   -ETIMEDOUT   the deadline (CLOCK_MONOTONIC ns) has passed
 *   -EINTR       a signal handler ran
 *   -EOWNERDEAD  relocked, but the previous owner died holding the mutex:
 *                repair, then pthread_mutex_consistent()
 * or without the mutex: -ENOTRECOVERABLE, or another -errno from the lock.
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
