/* SPDX-License-Identifier: MIT */
/*
 * attach.h -- how the programs open the queue: its parameters from the
 * configuration, the SIGBUS guard, and the daemons' attach (every failure
 * said, with what to do about it, and told to systemd).
 */
#ifndef MMAPQ_ATTACH_H
#define MMAPQ_ATTACH_H

#include <signal.h>

#include "config.h"
#include "mmapq.h"

/* The queue's parameters for role.  An observer takes the file whatever
 * its geometry (the configured one is what `mmapqctl recreate` would give
 * it, not a condition). */
struct mmapq_params attach_params(const struct mmapq_config *cfg, enum mmapq_role role);

/* A queue file truncated under our mapping turns the next access into
 * SIGBUS: make that a clear fatal error naming the file and exit 65
 * instead of a core dump. */
void attach_sigbus_guard(const char *queue_path);

/*
 * The daemons' attach: the SIGBUS guard, mmapq_open in role, every failure
 * logged (with what to do about a changed geometry) and told to systemd.
 * 0, or the exit code (0 too, with *q NULL, if a stop request ended a wait
 * for the attach lock).  Every blocking point of the queue then gives up
 * when a stop was requested (mmapq_params.interrupted): a peer stopped
 * while it holds the mutex or the attach lock cannot keep us from
 * stopping.  A program that blocks its signals outside its waits passes
 * the mask to wait with (unblocked): pending signals are let in at each
 * look; NULL if they are never blocked.
 */
int attach_queue(const struct mmapq_config *cfg, enum mmapq_role role, const sigset_t *unblocked,
                 struct mmapq **q);

/*
 * sync = interval: what this daemon published or released is written to
 * disk (mmapq_sync) sync_interval after the first of it: sync_timer_mark
 * after each publish or release (starts the interval if none runs),
 * sync_timer_due in the loop (0, or the msync's -errno, not said: the
 * caller says it as it says a publish's), sync_timer_wait the longest the
 * loop may sleep (UINT64_MAX: nothing waits to be synced, or another sync
 * mode: an idle daemon does not wake for it).
 */
struct sync_timer {
	uint64_t due_ns;
	bool dirty;
};
void sync_timer_mark(struct sync_timer *t, const struct mmapq_config *cfg);
int sync_timer_due(struct sync_timer *t, struct mmapq *q, const struct mmapq_config *cfg);
uint64_t sync_timer_wait(const struct sync_timer *t);

#endif
