/* SPDX-License-Identifier: MIT */
/*
 * format3_peer.c -- the throughput job's producer and consumer on libmmapq
 * 1 (file format 3: a ring of fixed-size slots), for the format-3 peer.
 *
 * Not built with the tree: format3.c compiles it while the benchmark runs,
 * with libmmapq 1's mmapq.h and sources taken from git history, into a
 * shared object that exports nothing but these functions (every symbol of
 * the old library is local to it, so it never meets libmmapq 2, which the
 * benchmark itself links), and loads it with dlopen.  The harness it calls
 * (ctl, barrier, child_fail...) is the benchmark's, exported by it.
 */
#include "bench.h"
#include "mmapq.h"

#if MMAPQ_FILE_VERSION != 3
#error "format3_peer.c needs libmmapq 1's mmapq.h (file format 3)"
#endif

#define MMAPQ_ENDS_V1 1
#include "mmapq_ends.h"

/* the library is compiled with -fvisibility=hidden: these three are what
 * the shared object shows */
#define F3_EXPORT __attribute__((visibility("default")))
F3_EXPORT int format3_prod(struct cell *c);
F3_EXPORT int format3_cons(struct cell *c);
F3_EXPORT uint32_t format3_version(void);

int format3_prod(struct cell *c)
{
	return mmapq_prod(c);
}

int format3_cons(struct cell *c)
{
	return mmapq_cons(c);
}

uint32_t format3_version(void)
{
	return MMAPQ_FILE_VERSION;
}
