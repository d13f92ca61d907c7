/* SPDX-License-Identifier: MIT */
/*
 * service.h -- talking to systemd (sd_notify, watchdog).  Every call is a
 * no-op when the daemon does not run under systemd (no NOTIFY_SOCKET).
 */
#ifndef MMAPQ_SERVICE_H
#define MMAPQ_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True if fd is the journal's stream (JOURNAL_STREAM names its dev:inode). */
bool service_fd_is_journal(int fd);

/* Reads WatchdogSec= (sd_watchdog_enabled). */
void service_init(void);
/* Longest a main loop may block: half the watchdog interval, at most 1 s. */
uint64_t service_max_wait_ns(void);
/* Called once per main-loop iteration: WATCHDOG=1 when half the interval
 * has passed.  A stuck loop stops calling it and systemd kills it. */
void service_loop_tick(void);

void service_ready(const char *status);
void service_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void service_reloading(void);
void service_stopping(void);
/* A failed start: STATUS= with the reason (and ERRNO=) before exiting. */
void service_failed(int exit_code, const char *reason);

/* A count per second as text: "0", "812", "5.2k", "3.2M". */
const char *format_per_second(char *buf, size_t size, double v);
/* Records per second between two calls, as text: "812 rec/s", "5.2k rec/s". */
struct rate_meter {
	uint64_t last_ns, last_count;
};
const char *rate_meter_update(struct rate_meter *m, uint64_t count, char *buf, size_t size);

#endif
