/* SPDX-License-Identifier: MIT */
#include "fault.h"

#ifdef MMAPQ_TESTING
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void mmapq_fault(const char *point)
{
	static int parsed;
	static char name[64];
	static unsigned long target = 1, hits;
	static int hang;

	if (!parsed) {
		const char *s = getenv("MMAPQ_FAULT");
		parsed = 1;
		if (s && *s) {
			size_t n = strcspn(s, "@:");
			if (n >= sizeof(name))
				n = sizeof(name) - 1;
			memcpy(name, s, n);
			name[n] = '\0';
			s += n;
			if (*s == '@')
				target = strtoul(s + 1, (char **)&s, 10);
			hang = strcmp(s, ":hang") == 0;
		}
	}
	if (!name[0] || strcmp(name, point) != 0 || ++hits != target)
		return;
	if (hang)
		for (;;)
			pause(); /* a stuck loop: only SIGKILL (the watchdog's) ends it */
	kill(getpid(), SIGKILL);
}
#endif
