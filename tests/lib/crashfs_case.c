/* SPDX-License-Identifier: MIT */
/* crashfs_case.c -- crashfs_case_mount (crashfs.h): a test case's own crashfs. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crashfs.h"
#include "testutil.h"

static char *g_mnt;

/* At the case's exit, whether it passed or not: the daemons it left
 * SIGKILLed first (they may be blocked on the mount), then crashfs
 * stopped and its mount point removed. */
static void unmount_at_exit(void)
{
	tu_kill_tracked();
	crashfs_stop();
	rmdir(g_mnt);
}

char *crashfs_case_mount(const char *tag)
{
	char *tmp;
	int r;

	if (geteuid() != 0)
		tu_skip("needs root (a mount namespace, /dev/fuse)");
	/* nothing mounted here (crashfs, fusectl) propagates to the host */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		tu_skip("private mount namespace: %s", strerror(errno));
	/* beside the scratch directory, not in it: that goes when the case
	 * passed, before the exit handlers stop crashfs */
	tmp = tu_mkdtemp(tag);
	g_mnt = tu_xasprintf("%s.crashfs", tmp);
	if (mkdir(g_mnt, 0755) < 0)
		tu_die(g_mnt);
	r = crashfs_start(g_mnt);
	if (r < 0) {
		rmdir(g_mnt);
		tu_skip("cannot mount crashfs: %s", strerror(-r));
	}
	atexit(unmount_at_exit);
	return g_mnt;
}
