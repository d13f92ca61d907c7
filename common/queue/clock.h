/* SPDX-License-Identifier: MIT */
/*
 * clock.h -- the library's two clocks, inline, for every file of it:
 * shmcond.c, below the queue, reads the time here rather than through the
 * API it serves (mmapq_now_ns in handle.c is monotonic_ns, exported).
 * CLOCK_MONOTONIC for every deadline and spin (a step of the wall clock
 * must neither cut a wait short nor stretch it); CLOCK_REALTIME for the
 * times people read (a file's creation, a consumer's registration, a
 * role's start).
 */
#ifndef MMAPQ_CLOCK_H
#define MMAPQ_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t realtime_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

#endif
