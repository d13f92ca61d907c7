/* SPDX-License-Identifier: MIT */
/*
 * signals.h -- what a signal asks of a program: SIGTERM and SIGINT a stop,
 * SIGHUP a reload.  The handlers only set flags; the loops ask
 * signals_stop()/signals_reload() at their own points, and pass
 * signals_stop on as a stop predicate to whatever blocks for them (an
 * output, a NATS wait, the queue's waits).  No flag is read anywhere else.
 *
 * Installed without SA_RESTART: a blocking call returns EINTR at once.
 * SIGPIPE is ignored, so a closed output is an EPIPE error.
 */
#ifndef MMAPQ_SIGNALS_H
#define MMAPQ_SIGNALS_H

#include <signal.h>
#include <stdbool.h>

void signals_install(void);
/* The signals above, as a set (for sigprocmask/ppoll). */
void signals_set(sigset_t *set);
/* A stop was asked for. */
bool signals_stop(void);
/* A stop or a reload was asked for: a wait for something else ends. */
bool signals_interrupt(void);
/* A reload was asked for (and not yet taken: signals_reload_taken). */
bool signals_reload(void);
void signals_reload_taken(void);
/* For a program that blocks them outside its waits: if one is pending, let
 * it in (with the mask unblocked) so its handler runs.  A wait that returns
 * at once because a descriptor is ready (a regular file always is) never
 * lets a blocked signal in by itself. */
void signals_take(const sigset_t *unblocked);

#endif
