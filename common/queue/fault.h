/* SPDX-License-Identifier: MIT */
/*
 * fault.h -- fault points for the crash tests.
 *
 * The test-only builds (MMAPQ_FAULT_INJECTION: the mmapq_faults library and
 * the daemons in daemons/faults/) read MMAPQ_FAULT="point" or "point@N": the
 * N-th time (default 1st) the process passes that point it SIGKILLs itself
 * there, the most dangerous instant made certain instead of hoped for.
 * "point@N:hang" makes it loop forever instead (for watchdog tests);
 * "point@N:stop" makes it raise SIGSTOP there: it stays frozen holding what
 * it holds (the mutex at publish.locked or release.locked, the attach lock
 * exclusively at attach.alone) until SIGCONT lets it carry on, or SIGKILL.
 * Everything else, libmmapq and the installed daemons included, compiles
 * every fault point to nothing and ignores the variable.
 */
#ifndef MMAPQ_FAULT_H
#define MMAPQ_FAULT_H

#ifdef MMAPQ_FAULT_INJECTION
void mmapq_fault(const char *point);
#else
static inline void mmapq_fault(const char *point)
{
	(void)point;
}
#endif

#endif
