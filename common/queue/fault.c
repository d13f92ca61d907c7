/* SPDX-License-Identifier: MIT */
#include "fault.h"

#ifdef MMAPQ_FAULT_INJECTION
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char name[64];
static unsigned long target = 1, hits;
static int action; /* 0: SIGKILL, else one of the below */
enum { HANG = 1, STOP };

/* MMAPQ_FAULT is read once per process (before the first fault point). */
static void parse(void)
{
	const char *s = getenv("MMAPQ_FAULT");
	char *end;

	if (!s || !*s)
		return;
	size_t n = strcspn(s, "@:");
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	memcpy(name, s, n);
	name[n] = '\0';
	s += n;
	if (*s == '@') {
		target = strtoul(s + 1, &end, 10);
		s = end;
	}
	action = !strcmp(s, ":hang") ? HANG : !strcmp(s, ":stop") ? STOP : 0;
}

void mmapq_fault(const char *point)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, parse);
	if (!name[0] || strcmp(name, point) != 0 ||
	    __atomic_add_fetch(&hits, 1, __ATOMIC_RELAXED) != target)
		return;
	switch (action) {
	case HANG:
		for (;;)
			pause(); /* a stuck loop: only SIGKILL (the watchdog's) ends it */
	case STOP:
		/* frozen right here, holding whatever it holds, until SIGCONT
		 * (then it carries on) or SIGKILL */
		raise(SIGSTOP);
		return;
	default:
		kill(getpid(), SIGKILL);
	}
}
#endif
