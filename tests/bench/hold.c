/* SPDX-License-Identifier: MIT */
/*
 * hold.c -- machine settings the benchmark changes for its run (files under
 * /proc/sys and /sys, written as root) and puts back as it found them: at
 * exit, and on SIGINT, SIGTERM and SIGHUP (the handler only opens, writes
 * and closes, then dies of the signal as it would have).
 *
 * Free page reporting: on a VM whose balloon device reports free pages
 * (virtio-balloon VIRTIO_BALLOON_F_REPORTING, as on this Firecracker guest),
 * the guest hands each free block of 2^page_reporting_order pages back to the
 * host a moment after it is freed, and the host drops it.  The next process
 * that gets those pages (a writer filling the page cache with 100 MB of
 * output, say) pays a host fault per page in what looks like its own copy:
 * measured here, `cat | cat > file` of 130 MB took its writer 0.08 s of CPU
 * in one round and 0.32 s in the next, for the same bytes, while a writer
 * that happened to get pages the guest had kept did not slow down.  Which
 * job of a round pays is chance, so the benchmark turns reporting off for
 * the run: an order above the largest block the kernel has (11: its
 * MAX_PAGE_ORDER is 10 on x86-64) where the kernel takes it, else the
 * largest it takes, and says which in the report.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define PAGE_REPORTING_ORDER "/sys/module/page_reporting/parameters/page_reporting_order"
#define HOLD_MAX 4

static struct {
	const char *path;
	char was[32];
	size_t len;
} held[HOLD_MAX];
static volatile sig_atomic_t nheld;

char page_reporting_note[160];

/* async-signal-safe: open, write, close */
static void hold_restore(void)
{
	for (int i = nheld - 1; i >= 0; i--) {
		int fd = open(held[i].path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (write(fd, held[i].was, held[i].len) < 0) {
				/* nothing more can be done at exit */
			}
			close(fd);
		}
	}
	nheld = 0;
}

static void hold_signal(int sig)
{
	hold_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static bool write_value(const char *path, long v)
{
	char b[32];
	int n = snprintf(b, sizeof(b), "%ld\n", v), fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok = fd >= 0 && write(fd, b, (size_t)n) == n;

	if (fd >= 0)
		close(fd);
	return ok;
}

bool hold_setting(const char *path, long value)
{
	long was = read_long_file(path, LONG_MIN);

	if (was == LONG_MIN || nheld == HOLD_MAX)
		return false;
	if (was == value)
		return true;
	if (!write_value(path, value))
		return false;
	if (nheld == 0) {
		atexit(hold_restore);
		signal(SIGINT, hold_signal);
		signal(SIGTERM, hold_signal);
		signal(SIGHUP, hold_signal);
	}
	held[nheld].path = path;
	held[nheld].len = (size_t)snprintf(held[nheld].was, sizeof(held[nheld].was), "%ld\n", was);
	nheld = nheld + 1;
	return true;
}

void page_reporting_off(void)
{
	long was = read_long_file(PAGE_REPORTING_ORDER, -1), now;

	if (was < 0) {
		snprintf(page_reporting_note, sizeof(page_reporting_note),
		         "free page reporting: not in this kernel");
		return;
	}
	if (!hold_setting(PAGE_REPORTING_ORDER, 11))
		hold_setting(PAGE_REPORTING_ORDER, 10);
	now = read_long_file(PAGE_REPORTING_ORDER, -1);
	snprintf(page_reporting_note, sizeof(page_reporting_note),
	         "free page reporting: page_reporting_order %ld (was %ld)%s", now, was,
	         now > 10 ? ": off for the run" :
	         now > was ? ": only the largest free blocks go back to the host" :
	         ": as found (not writable): freed memory goes back to the host, expect slow rounds");
}
