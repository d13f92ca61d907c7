/* SPDX-License-Identifier: MIT */
/*
 * log.h -- the daemons' only way to say anything (the library never logs).
 * printf-checked; a message below the configured level costs one compare.
 */
#ifndef MMAPQ_LOG_H
#define MMAPQ_LOG_H

#include <stdint.h>

#include "config.h"

void log_init(const char *ident);
/* Log natively to the journal (PRIORITY=, SYSLOG_IDENTIFIER=, MMAPQ_ROLE=,
 * MMAPQ_QUEUE=) when stderr is the journal stream; plain stderr otherwise. */
void log_setup(const char *role, const char *queue_path);
const char *log_ident(void);
void log_set_level(enum mmapq_log_level level);

void log_msg(enum mmapq_log_level prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...)   log_msg(MMAPQ_LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(MMAPQ_LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  log_msg(MMAPQ_LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    log_msg(MMAPQ_LOG_INFO, __VA_ARGS__)
#define log_debug(...)   log_msg(MMAPQ_LOG_DEBUG, __VA_ARGS__)

/*
 * Collapses a flood of one kind of message: the first `burst` in each
 * `interval_s` window are logged, the rest counted and reported once as
 * "... (N more in the last S s)" when the window ends.
 */
struct log_limit {
	uint64_t window_start_ms;
	uint32_t interval_s, burst, in_window;
	uint64_t suppressed;
	const char *what;
};
#define LOG_LIMIT_INIT(what_, interval_, burst_) \
	{ .interval_s = (interval_), .burst = (burst_), .what = (what_) }
/* True if this occurrence may be logged. */
int log_limit_pass(struct log_limit *l);
/* Report what the window suppressed, if it has ended (call periodically). */
void log_limit_flush(struct log_limit *l, int force);

#endif
