/* SPDX-License-Identifier: MIT */
#include "attach.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "exit.h"
#include "log.h"
#include "service.h"
#include "signals.h"

struct mmapq_params attach_params(const struct mmapq_config *cfg, enum mmapq_role role)
{
	struct mmapq_params p = {
		.path = cfg->queue_path,
		.role = role,
		.size = cfg->size,
		.max_record = cfg->max_record,
		.format = cfg->format,
		.sync = cfg->sync,
		.file_mode = cfg->mode,
		.spin_us = cfg->spin_us,
		.consumer = cfg->consumer[0] ? cfg->consumer : NULL,
		.producer = cfg->producer[0] ? cfg->producer : NULL,
		.start = (enum mmapq_start)cfg->start,
		.max_consumers = cfg->max_consumers,
		.max_producers = cfg->max_producers,
	};
	if (role == MMAPQ_ROLE_OBSERVER)
		p.size = p.max_record = p.format = p.max_consumers = p.max_producers = 0;
	return p;
}

static char sigbus_msg[512];
static size_t sigbus_len;

static void on_sigbus(int sig)
{
	/* async-signal-safe: a preformatted message and _exit */
	(void)sig;
	if (write(STDERR_FILENO, sigbus_msg, sigbus_len) < 0) {
		/* nothing more can be done */
	}
	_exit(EXIT_BADQUEUE);
}

void attach_sigbus_guard(const char *queue_path)
{
	struct sigaction sa;
	int n = snprintf(sigbus_msg, sizeof(sigbus_msg),
	                 "%s: fatal: %s was truncated or removed while mapped (SIGBUS)\n",
	                 log_ident(), queue_path);

	sigbus_len = n < 0 ? 0 : (size_t)n < sizeof(sigbus_msg) ? (size_t)n : sizeof(sigbus_msg) - 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

/* SIGALRM while attaching: nothing to do but interrupt a kernel wait
 * (installed without SA_RESTART). */
static void on_tick(int sig)
{
	(void)sig;
}

/* mmapq_params.interrupted: a stop was requested.  With the signals
 * blocked, a pending one is let in (its handler runs) first. */
static bool stop_requested(void *ctx)
{
	if (ctx && !signals_stop())
		signals_take(ctx);
	return signals_stop();
}

/* "[a, b)" of sequence numbers into buf, or "" for an empty range */
static const char *seq_range(char *buf, size_t size, const char *what, uint64_t from, uint64_t to)
{
	if (from >= to)
		return "";
	if (to - from == 1)
		snprintf(buf, size, "%s seq %" PRIu64, what, from);
	else
		snprintf(buf, size, "%s seq %" PRIu64 "..%" PRIu64, what, from, to - 1);
	return buf;
}

/* A file that was not closed cleanly was damaged (a power cut, a disk that
 * lost writes): the salvage at this open kept the best intact run of
 * records and dropped the others.  Said once, by whoever salvaged it. */
static void log_salvage(struct mmapq *q)
{
	struct mmapq_status st;
	char below[96], above[96], kept[64];
	const char *b, *a;

	if (mmapq_status(q, &st) < 0 || !st.salvaged)
		return;
	b = seq_range(below, sizeof(below), "below the records kept:", st.salvage.below_from,
	              st.salvage.below_to);
	a = seq_range(above, sizeof(above), "past them:", st.salvage.above_from, st.salvage.above_to);
	if (st.head < st.tail)
		snprintf(kept, sizeof(kept), "seq %" PRIu64 "..%" PRIu64, st.head, st.tail - 1);
	else
		snprintf(kept, sizeof(kept), "none");
	log_warning("%s was not closed cleanly and is damaged: its salvage dropped %" PRIu64
	            " records (%s%s%s; %" PRIu64 " bytes); the records kept: %s", mmapq_path(q),
	            st.salvaged, b, *b && *a ? "; " : "", a, st.salvage.dropped_bytes, kept);
}

/* What to do about a queue file the library refused as invalid or damaged
 * (-EBADMSG): `mmapqctl repair` salvages a damaged one; something that is
 * no regular file at the path is not a queue file at all. */
static void advise_damaged(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	log_notice("to keep the intact records of a damaged queue file, stop both daemons and run"
	           " `mmapqctl repair` (mmapqctl(1)): it salvages every intact record it can and says"
	           " what it drops; a file it cannot repair either (not a queue file, its header"
	           " destroyed) must be moved away");
}

int attach_queue(const struct mmapq_config *cfg, enum mmapq_role role, const sigset_t *unblocked,
                 struct mmapq **q)
{
	struct mmapq_params qp = attach_params(cfg, role);
	const struct itimerval tick = {{0, 250000}, {0, 250000}};
	struct sigaction old_alarm;
	struct mmapq_error err;
	int r, code;

	qp.interrupted = stop_requested;
	qp.interrupted_ctx = (void *)unblocked;
	attach_sigbus_guard(qp.path);
	/* The wait for the attach lock is a kernel wait (F_OFD_SETLKW) that
	 * only a signal handler interrupts, and a stop request that comes
	 * just before it starts would be noticed only at the next signal: a
	 * timer makes sure there is one every 250 ms while we attach. */
	sigaction(SIGALRM, &(struct sigaction){.sa_handler = on_tick}, &old_alarm);
	setitimer(ITIMER_REAL, &tick, NULL);
	r = mmapq_open(&qp, q, &err);
	setitimer(ITIMER_REAL, &(struct itimerval){0}, NULL);
	sigaction(SIGALRM, &old_alarm, NULL);
	if (r == 0) {
		log_salvage(*q);
		return 0;
	}
	if (r == -EINTR && signals_stop()) {
		log_notice("%s; stopping as asked", err.msg);
		return EXIT_OK;
	}
	log_error("%s", err.msg);
	if (r == -EPROTO && !strstr(err.msg, "mmapqctl recreate")) /* a geometry that differs */
		log_notice("to keep its records under the new geometry, stop both daemons and run"
		           " `mmapqctl recreate` (mmapqctl(1)); or restore the old values");
	if (r == -EBADMSG)
		advise_damaged(qp.path);
	code = exit_code_for_open(r);
	service_failed(code, err.msg);
	return code;
}

void sync_timer_mark(struct sync_timer *t, const struct mmapq_config *cfg)
{
	if (cfg->sync != MMAPQ_SYNC_INTERVAL || t->dirty)
		return;
	t->dirty = true;
	t->due_ns = mmapq_now_ns() + (uint64_t)cfg->sync_interval * 1000000u;
}

int sync_timer_due(struct sync_timer *t, struct mmapq *q, const struct mmapq_config *cfg)
{
	if (!t->dirty || (cfg->sync == MMAPQ_SYNC_INTERVAL && mmapq_now_ns() < t->due_ns))
		return 0;
	t->dirty = false; /* and with another mode now (a reload): one last sync */
	return mmapq_sync(q);
}

uint64_t sync_timer_wait(const struct sync_timer *t)
{
	uint64_t now;

	if (!t->dirty)
		return UINT64_MAX;
	now = mmapq_now_ns();
	return t->due_ns > now ? t->due_ns - now : 0;
}
