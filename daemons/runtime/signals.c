/* SPDX-License-Identifier: MIT */
#include "signals.h"

#include <string.h>

static volatile sig_atomic_t stop, reload;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload = 1;
	else
		stop = 1;
}

void signals_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

void signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: blocking calls return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

bool signals_stop(void)
{
	return stop;
}

bool signals_interrupt(void)
{
	return stop || reload;
}

bool signals_reload(void)
{
	return reload;
}

void signals_reload_taken(void)
{
	reload = 0;
}

void signals_take(const sigset_t *unblocked)
{
	sigset_t ours, pending, blocked;

	signals_set(&ours);
	if (sigpending(&pending) < 0)
		return;
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(&ours, sig) == 1 && sigismember(&pending, sig) == 1) {
			/* let them in: their handlers run on the way */
			sigprocmask(SIG_SETMASK, unblocked, &blocked);
			sigprocmask(SIG_SETMASK, &blocked, NULL);
			return;
		}
}
