/* SPDX-License-Identifier: MIT */
/*
 * top.h -- `mmapqctl top`: a live view of one queue, refreshed in place
 * every interval (depth, rates, every consumer's lag and rate, who is
 * attached), fitting an 80x24
 * terminal; q, Ctrl-C or Ctrl-D end it.
 */
#ifndef MMAPQ_TOP_H
#define MMAPQ_TOP_H

#include "mmapq.h"

/* Runs until asked to stop; 0, or an exit code: 64 if standard output is
 * not a terminal (`mmapqctl status` is for scripts), the open's if the
 * queue cannot be read. */
int top_run(const struct mmapq_params *observer, unsigned interval_ms);

#endif
