/* SPDX-License-Identifier: MIT */
/*
 * fault.h -- fault points for the crash tests.
 *
 * Test builds (MMAPQ_TESTING) read MMAPQ_FAULT="point" or "point@N": the
 * N-th time (default 1st) the process passes that point it SIGKILLs itself
 * there, the most dangerous instant made certain instead of hoped for.
 * "point@N:hang" makes it loop forever instead (for watchdog tests);
 * "point@N:stop" makes it raise SIGSTOP there: it stays frozen holding what
 * it holds (the mutex at publish.locked or release.locked, the attach lock
 * exclusively at attach.alone) until SIGCONT lets it carry on, or SIGKILL.
 * Release builds compile every fault point to nothing and ignore the
 * variable.
 */
#ifndef MMAPQ_FAULT_H
#define MMAPQ_FAULT_H

#ifdef MMAPQ_TESTING
void mmapq_fault(const char *point);
#else
static inline void mmapq_fault(const char *point)
{
	(void)point;
}
#endif

#endif
