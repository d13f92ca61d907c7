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

/* Forget any registered waiter (only when nobody else is attached). */
void mmapq_cond_reset(struct mmapq_cond *c);

/*
 * Sleep until signalled, for at most min(deadline, now + 0.5 s).  Mutex held
 * on entry.  Returns with the mutex held:
 *   0            woken, or the 0.5 s slice ended: re-check the predicate
 *   -ETIMEDOUT   the deadline (CLOCK_MONOTONIC ns) has passed
 *   -EINTR       a signal handler ran
 *   -EOWNERDEAD  relocked, but the previous owner died holding the mutex:
 *                repair, then pthread_mutex_consistent()
 * or without the mutex: -ENOTRECOVERABLE, or another -errno from the lock.
 */
int mmapq_cond_wait(struct mmapq_cond *c, pthread_mutex_t *m, uint64_t deadline_ns);

/* Mutex held.  Wakes the waiter only if one registered. */
void mmapq_cond_signal(struct mmapq_cond *c);

/* Mutex held.  Wakes unconditionally (used after crash recovery). */
void mmapq_cond_broadcast(struct mmapq_cond *c);

#endif
