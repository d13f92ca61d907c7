/* SPDX-License-Identifier: MIT */
#include "service.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "mmapq.h"

static uint64_t watchdog_ns;   /* 0: no watchdog */
static uint64_t last_ping_ns;

bool service_fd_is_journal(int fd)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char *end;

	if (!e || fstat(fd, &st) < 0)
		return false;
	errno = 0;
	dev = strtoull(e, &end, 10);
	if (errno || end == e || *end != ':')
		return false;
	e = end + 1;
	ino = strtoull(e, &end, 10);
	if (errno || end == e || *end)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void service_init(void)
{
	uint64_t usec = 0;

	/* 0 = do not unset the variables: a restarted child would need them */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec)
		watchdog_ns = usec * 1000u;
	last_ping_ns = mmapq_now_ns();
}

uint64_t service_max_wait_ns(void)
{
	uint64_t max = 1000000000u;

	if (watchdog_ns && watchdog_ns / 2 < max)
		max = watchdog_ns / 2;
	return max;
}

void service_loop_tick(void)
{
	uint64_t now;

	if (!watchdog_ns)
		return;
	now = mmapq_now_ns();
	if (now - last_ping_ns >= watchdog_ns / 2) {
		sd_notify(0, "WATCHDOG=1");
		last_ping_ns = now;
	}
}

void service_ready(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void service_status(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sd_notifyf(0, "STATUS=%s", buf);
}

void service_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* systemd 253+ wants MONOTONIC_USEC with RELOADING=1 (Type=notify-reload) */
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
	           (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
}

void service_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

void service_failed(int exit_code, const char *reason)
{
	sd_notifyf(0, "STATUS=failed: %s\nEXIT_STATUS=%d", reason, exit_code);
}

const char *format_per_second(char *buf, size_t size, double v)
{
	if (v >= 1e6)
		snprintf(buf, size, "%.1fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, size, "%.1fk", v / 1e3);
	else
		snprintf(buf, size, "%.0f", v);
	return buf;
}

const char *rate_meter_update(struct rate_meter *m, uint64_t count, char *buf, size_t size)
{
	uint64_t now = mmapq_now_ns();
	double rate = 0;

	if (m->last_ns && now > m->last_ns && count >= m->last_count)
		rate = (double)(count - m->last_count) * 1e9 / (double)(now - m->last_ns);
	m->last_ns = now;
	m->last_count = count;
	format_per_second(buf, size, rate);
	snprintf(buf + strlen(buf), size - strlen(buf), " rec/s");
	return buf;
}
