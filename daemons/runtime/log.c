/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "mmapq.h"
#include "service.h"

static const char *ident = "mmapq";
static const char *role = "";
static const char *queue = "";
static bool journal_stream; /* stderr is the journal (a service's stderr) */
static bool native;         /* ... and the role and queue are known: native entries */
static enum mmapq_log_level max_level = MMAPQ_LOG_INFO;

void log_init(const char *name)
{
	ident = name;
	journal_stream = service_fd_is_journal(STDERR_FILENO);
}

void log_setup(const char *r, const char *q)
{
	role = r;
	queue = q;
	native = journal_stream;
}

static void emit(enum mmapq_log_level prio, const char *pfx, const char *msg)
{
	if (native &&
	    sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", (int)prio, "SYSLOG_IDENTIFIER=%s", ident,
	                    "MMAPQ_ROLE=%s", role, "MMAPQ_QUEUE=%s", queue, NULL) >= 0)
		return;
	/* One fprintf: one write, lines from two daemons never interleave.  To
	 * the journal's stream (before log_setup: options, configuration,
	 * --check-config, which may exit at once) with the priority as the
	 * "<N>" journald reads, and no prefix: the entry names the program.
	 * Unlike a native entry, a stream line keeps its unit even when the
	 * process is gone before journald looks at it. */
	if (journal_stream)
		fprintf(stderr, "<%d>%s\n", (int)prio, msg);
	else
		fprintf(stderr, "%s: %s%s\n", ident, pfx, msg);
}

const char *log_ident(void)
{
	return ident;
}

void log_set_level(enum mmapq_log_level level)
{
	max_level = level;
}

static const char *prefix(enum mmapq_log_level prio)
{
	switch (prio) {
	case MMAPQ_LOG_ERR:
		return "error: ";
	case MMAPQ_LOG_WARNING:
		return "warning: ";
	default:
		return "";
	}
}

void log_msg(enum mmapq_log_level prio, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	if (prio > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	emit(prio, prefix(prio), buf);
}

int log_limit_pass(struct log_limit *l)
{
	uint64_t now = mmapq_now_ns() / 1000000u;

	if (!l->window_start_ms || now - l->window_start_ms >= (uint64_t)l->interval_s * 1000u) {
		log_limit_flush(l, 1);
		l->window_start_ms = now;
		l->in_window = 0;
	}
	if (l->in_window < l->burst) {
		l->in_window++;
		return 1;
	}
	l->suppressed++;
	return 0;
}

void log_limit_flush(struct log_limit *l, int force)
{
	uint64_t now = mmapq_now_ns() / 1000000u;

	if (!l->suppressed)
		return;
	if (!force && now - l->window_start_ms < (uint64_t)l->interval_s * 1000u)
		return;
	log_warning("%s x%llu more in the last %u s (not shown)", l->what,
	            (unsigned long long)l->suppressed, l->interval_s);
	l->suppressed = 0;
}
