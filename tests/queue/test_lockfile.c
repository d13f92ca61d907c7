/* SPDX-License-Identifier: MIT */
/*
 * test_lockfile -- a user who may only read the queue file cannot block the
 * roles, and the lock file (PATH.lock) that makes it so.
 *
 * Cases:
 *   readers_hold_locks  a process running as nobody, with read access to
 *                       the queue file only, holds shared OFD and POSIX
 *                       locks on bytes 0, 1, 2 and the whole of every file
 *                       it can open in the queue's directory: a producer
 *                       and a consumer still attach, a second producer is
 *                       still refused naming the first one's pid.
 *   readers_stale_mutex the same reader (on the attach byte 0 only, so that
 *                       the roles are free), and a queue file whose lock word
 *                       names a thread that no longer exists (as after a
 *                       power cut): the first daemon is still alone,
 *                       re-initialises the mutex (one recovery counted) and
 *                       does not hang.
 *   lock_file_mode      the lock file gets read+write for exactly the
 *                       classes that may write the queue (0640 -> 0600,
 *                       0660 -> 0660, ...), and the queue file's owner and
 *                       group.
 *   observer_fallback   an observer that may not read the lock file (nobody)
 *                       reports "attached" from the pid and says so; root
 *                       reads the lock.
 *   lock_file_refused   nobody may write the queue but not create the lock
 *                       file in the directory: a clear error naming
 *                       PATH.lock; once root made it, nobody attaches.  A
 *                       symbolic link at PATH.lock is refused.
 * Every attach runs with an interrupted callback that turns true after
 * HANG_MS, so a hang is reported as one instead of stalling the test.
 * Needs root (to become nobody); each case exits 77 without it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define HANG_MS 5000u

static char *g_dir, *g_q, *g_lock;

#define EXPECT(cond, ...) TU_EXPECT(g_q, cond, __VA_ARGS__)

static uint64_t g_give_up_ns;
static off_t g_reader_last = 2; /* the reader locks bytes 0..this */

static bool past_deadline(void *ctx)
{
	(void)ctx;
	return mmapq_now_ns() >= g_give_up_ns;
}

static int open_role(enum mmapq_role role, uint32_t mode, struct mmapq **q, struct mmapq_error *e)
{
	struct mmapq_params p = {.path = g_q, .role = role, .size = 256, .max_record = 8,
	                         .format = MMAPQ_FORMAT_INT, .file_mode = mode,
	                         .interrupted = past_deadline};

	g_give_up_ns = mmapq_now_ns() + HANG_MS * 1000000ull;
	e->msg[0] = '\0';
	return mmapq_open(&p, q, e);
}

static struct mmapq *must_open(enum mmapq_role role, uint32_t mode, const char *what)
{
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int r = open_role(role, mode, &q, &e);

	EXPECT(r == 0, "%s: %s (%s)%s", what, e.msg, mmapq_strerror(r), r == -EINTR ? ": it hung" : "");
	return q;
}

static void become_nobody(void)
{
	int r = tu_become_nobody();

	if (r < 0) {
		fprintf(stderr, "cannot become nobody: %s\n", strerror(-r));
		_exit(TEST_SKIP);
	}
}

/* A queue file made by root with this mode, and no daemon attached. */
static void make_queue(uint32_t mode)
{
	struct mmapq *q = must_open(MMAPQ_ROLE_PRODUCER, mode, "create");

	mmapq_close(q);
	EXPECT(chmod(g_q, mode) == 0, "chmod: %s", strerror(errno));
}

/* ---- the reader ------------------------------------------------------------- */

static int lock_range(int fd, int cmd, off_t start, off_t len)
{
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len};

	return fcntl(fd, cmd, &fl);
}

/* As nobody: every file of the directory it can open, read-locked every way;
 * reports on out "R<n files locked> <errno of the lock file's open>". */
static void reader(int out, int in)
{
	DIR *d;
	struct dirent *e;
	int locked = 0, lock_errno = 0;
	char msg[64];

	become_nobody();
	d = opendir(g_dir);
	while (d && (e = readdir(d))) {
		char *p = tu_path(g_dir, e->d_name);
		int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		struct stat st;
		if (!strcmp(p, g_lock) && fd < 0)
			lock_errno = errno;
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			for (off_t b = 0; b <= g_reader_last; b++) {
				lock_range(fd, F_OFD_SETLK, b, 1);
				lock_range(fd, F_SETLK, b, 1);
			}
			/* and the whole of it, on another open file description */
			if (g_reader_last >= 2)
				lock_range(open(p, O_RDONLY | O_CLOEXEC), F_OFD_SETLK, 0, 0);
			locked++;
		}
		free(p);
	}
	if (d)
		closedir(d);
	snprintf(msg, sizeof(msg), "R%d %d", locked, lock_errno);
	if (write(out, msg, strlen(msg)) < 0)
		_exit(1);
	/* hold them until the parent closes the pipe (or kills us) */
	while (read(in, msg, 1) > 0)
		;
	_exit(0);
}

/* Start the reader (SIGKILLed at exit if the case fails); returns its
 * pid. */
static pid_t start_reader(int *release_fd)
{
	int up[2], down[2];
	char buf[64] = "";
	struct pollfd pf;
	pid_t pid;
	ssize_t k;
	int files = 0, lock_errno = 0, code = 0;
	bool reported;

	tu_pipe(up);
	tu_pipe(down);
	pid = tu_fork();
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		reader(up[1], down[0]);
	}
	tu_track(pid);
	close(up[1]);
	close(down[0]);
	pf = (struct pollfd){.fd = up[0], .events = POLLIN};
	k = poll(&pf, 1, 10000) == 1 ? read(up[0], buf, sizeof(buf) - 1) : -1;
	close(up[0]);
	if (k > 0)
		buf[k] = '\0';
	reported = k > 0 && sscanf(buf, "R%d %d", &files, &lock_errno) == 2;
	if (!reported) {
		code = tu_exit_code(tu_wait(pid, 5000));
		if (code == TEST_SKIP)
			tu_skip("cannot become nobody");
	}
	EXPECT(reported, "the reader never reported (exit %d)", code);
	printf("test_lockfile: the reader (nobody) read-locks %d file(s); the lock file: %s\n", files,
	       lock_errno ? strerror(lock_errno) : "opened");
	EXPECT(files >= 1, "the reader could not open even the queue file");
	EXPECT(lock_errno, "the reader, who may only read the queue, could open %s", g_lock);
	*release_fd = down[1];
	return pid;
}

static void stop_reader(pid_t pid, int release_fd)
{
	close(release_fd);
	if (tu_wait(pid, 5000) < 0)
		tu_kill(pid);
	tu_untrack(pid);
}

/* ---- cases ------------------------------------------------------------------------ */

static void case_readers_hold_locks(void)
{
	struct mmapq *p, *c, *p2 = NULL;
	struct mmapq_error e;
	char want[64];
	int rel, r;
	pid_t rd;

	make_queue(0644);
	rd = start_reader(&rel);
	p = must_open(MMAPQ_ROLE_PRODUCER, 0644, "the producer, readers holding locks");
	c = must_open(MMAPQ_ROLE_CONSUMER, 0644, "the consumer, readers holding locks");
	/* the roles still exclude each other: a second producer is refused */
	r = open_role(MMAPQ_ROLE_PRODUCER, 0644, &p2, &e);
	snprintf(want, sizeof(want), "held by pid %d", (int)getpid());
	EXPECT(r == -EBUSY && strstr(e.msg, want), "a second producer: %d (%s) \"%s\"; want -EBUSY"
	       " naming \"%s\"", r, mmapq_strerror(r), e.msg, want);
	/* and they work */
	{
		uint32_t n;
		uint64_t room;
		int64_t v = 42;
		struct mmapq_record rec;
		EXPECT(mmapq_reserve(p, sizeof(v), 0, &room) == 0 && mmapq_put(p, &v, sizeof(v)) == 0 &&
		       mmapq_publish(p) == 1 && mmapq_available(c, 0, &n) == 0 && n == 1 &&
		       mmapq_get(c, 0, &rec) == 0 && !memcmp(rec.data, &v, sizeof(v)) &&
		       mmapq_release(c, 1) == 0, "a record did not go through");
	}
	mmapq_close(c);
	mmapq_close(p);
	stop_reader(rd, rel);
}

static void case_readers_stale_mutex(void)
{
	/* a lock word naming a thread no kernel will mark dead (no such tid:
	 * above any pid_max) */
	const uint32_t stale = 0x3ffffff0u;
	struct mmapq_status st;
	struct mmapq *p, *c;
	int rel, fd;
	pid_t rd;

	make_queue(0644);
	fd = open(g_q, O_RDWR | O_CLOEXEC);
	EXPECT(fd >= 0 && pwrite(fd, &stale, sizeof(stale), offsetof(struct mmapq_header, lock)) == 4,
	       "cannot write the lock word: %s", strerror(errno));
	close(fd);
	g_reader_last = 0; /* the attach byte only: the roles are free */
	rd = start_reader(&rel);
	g_reader_last = 2;
	p = must_open(MMAPQ_ROLE_PRODUCER, 0644, "the producer, a stale lock word, readers holding locks");
	c = must_open(MMAPQ_ROLE_CONSUMER, 0644, "the consumer after it");
	EXPECT(mmapq_status(p, &st) == 0 && st.producer.recoveries == 1,
	       "producer recoveries %" PRIu64 ", want 1 (the stale lock word reset)",
	       st.producer.recoveries);
	mmapq_close(c);
	mmapq_close(p);
	stop_reader(rd, rel);
}

static void case_lock_file_mode(void)
{
	static const struct {
		mode_t queue, lock;
	} modes[] = {
		{0600, 0600}, {0640, 0600}, {0644, 0600}, {0660, 0660},
		{0664, 0660}, {0666, 0666}, {0620, 0660}, {0602, 0606},
	};
	struct stat st;

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct mmapq *c;
		unlink(g_q);
		unlink(g_lock);
		make_queue(modes[i].queue);
		unlink(g_lock); /* made by the creator: make it again from the final mode */
		/* owned by nobody:nogroup, as a queue made by the service user */
		EXPECT(chown(g_q, TU_NOBODY, TU_NOBODY) == 0, "chown: %s", strerror(errno));
		umask(0); /* the mode must not depend on it */
		c = must_open(MMAPQ_ROLE_CONSUMER, 0, "consumer");
		umask(022);
		mmapq_close(c);
		EXPECT(lstat(g_lock, &st) == 0, "queue %04o: no lock file: %s", modes[i].queue,
		       strerror(errno));
		EXPECT((st.st_mode & 07777) == modes[i].lock && S_ISREG(st.st_mode) &&
		       st.st_uid == TU_NOBODY && st.st_gid == TU_NOBODY,
		       "queue %04o: lock file %06o owned %d:%d; want %04o and %d:%d", modes[i].queue,
		       (unsigned)st.st_mode, (int)st.st_uid, (int)st.st_gid, modes[i].lock, TU_NOBODY,
		       TU_NOBODY);
	}
}

/* mmapq_status of an observer, in a child as nobody if as_nobody:
 * "attached by_pid" as two digits on the pipe. */
static int observe(bool as_nobody, bool *attached, bool *by_pid)
{
	int fds[2];
	char buf[3] = "";
	pid_t pid;

	tu_pipe(fds);
	pid = tu_fork();
	if (pid == 0) {
		struct mmapq_params p = {.path = g_q, .role = MMAPQ_ROLE_OBSERVER};
		struct mmapq_error e;
		struct mmapq_status s;
		struct mmapq *q;
		close(fds[0]);
		if (as_nobody)
			become_nobody();
		if (mmapq_open(&p, &q, &e) < 0 || mmapq_status(q, &s) < 0) {
			fprintf(stderr, "observer: %s\n", e.msg);
			_exit(1);
		}
		buf[0] = s.producer.attached ? '1' : '0';
		buf[1] = s.attached_by_pid ? '1' : '0';
		_exit(write(fds[1], buf, 2) == 2 ? 0 : 1);
	}
	close(fds[1]);
	if (tu_exit_code(tu_wait(pid, 5000)) != 0 || read(fds[0], buf, 2) != 2) {
		close(fds[0]);
		return -1;
	}
	close(fds[0]);
	*attached = buf[0] == '1';
	*by_pid = buf[1] == '1';
	return 0;
}

static void case_observer_fallback(void)
{
	struct mmapq *p;
	bool attached = false, by_pid = false;

	make_queue(0644);
	p = must_open(MMAPQ_ROLE_PRODUCER, 0644, "producer");
	EXPECT(observe(false, &attached, &by_pid) == 0 && attached && !by_pid,
	       "root's observer: attached %d by_pid %d; want 1 0 (from the lock file)", attached, by_pid);
	EXPECT(observe(true, &attached, &by_pid) == 0 && attached && by_pid,
	       "nobody's observer: attached %d by_pid %d; want 1 1 (the pid is alive, and it says it"
	       " guessed)", attached, by_pid);
	mmapq_close(p);
	EXPECT(observe(false, &attached, &by_pid) == 0 && !attached && !by_pid,
	       "root's observer after the producer left: attached %d by_pid %d; want 0 0", attached,
	       by_pid);
}

/* As nobody: open the producer role; the code and message on the pipe. */
static int attach_as_nobody(char *msg, size_t size)
{
	int fds[2], r = 0;
	pid_t pid;
	ssize_t k;

	tu_pipe(fds);
	pid = tu_fork();
	if (pid == 0) {
		struct mmapq_error e;
		struct mmapq *q = NULL;
		char out[600];
		close(fds[0]);
		become_nobody();
		r = open_role(MMAPQ_ROLE_PRODUCER, 0666, &q, &e);
		snprintf(out, sizeof(out), "%d %s", r, r < 0 ? e.msg : "");
		mmapq_close(q);
		_exit(write(fds[1], out, strlen(out)) > 0 ? 0 : 1);
	}
	close(fds[1]);
	if (tu_exit_code(tu_wait(pid, HANG_MS + 5000)) != 0) {
		close(fds[0]);
		return -9999;
	}
	k = read(fds[0], msg, size - 1);
	close(fds[0]);
	msg[k > 0 ? k : 0] = '\0';
	sscanf(msg, "%d", &r);
	return r;
}

static void case_lock_file_refused(void)
{
	char msg[600];
	int r;

	make_queue(0666);
	unlink(g_lock);
	/* the directory (root's, 0755) does not let nobody create it */
	r = attach_as_nobody(msg, sizeof(msg));
	EXPECT(r == -EACCES && strstr(msg, g_lock), "nobody, writable queue, no lock file, directory"
	       " not writable: %d \"%s\"; want -EACCES naming %s", r, msg, g_lock);
	/* root's daemon makes it (0666, from the queue's mode): then nobody's works */
	mmapq_close(must_open(MMAPQ_ROLE_CONSUMER, 0, "root's consumer"));
	r = attach_as_nobody(msg, sizeof(msg));
	EXPECT(r == 0, "nobody, with the lock file made by root: %d \"%s\"; want 0", r, msg);
	/* a symbolic link at the lock file's path is not followed */
	unlink(g_lock);
	EXPECT(symlink(g_q, g_lock) == 0, "symlink: %s", strerror(errno));
	{
		struct mmapq_error e;
		struct mmapq *q = NULL;
		r = open_role(MMAPQ_ROLE_CONSUMER, 0, &q, &e);
		EXPECT(r == -ELOOP && strstr(e.msg, g_lock), "a symlink at %s: %d \"%s\"; want -ELOOP"
		       " naming it", g_lock, r, e.msg);
		mmapq_close(q);
	}
}

/* Each case: a directory of its own that nobody may reach, the queue's
 * path in it. */
static void setup(void)
{
	if (geteuid() != 0)
		tu_skip("needs root (to become nobody)");
	g_dir = tu_mkdtemp("lockfile");
	if (chmod(g_dir, 0755) < 0) /* nobody must reach the files */
		tu_die("chmod");
	g_q = tu_path(g_dir, "queue");
	g_lock = tu_xasprintf("%s%s", g_q, MMAPQ_LOCK_SUFFIX);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"readers_hold_locks", case_readers_hold_locks},
		{"readers_stale_mutex", case_readers_stale_mutex},
		{"lock_file_mode", case_lock_file_mode},
		{"observer_fallback", case_observer_fallback},
		{"lock_file_refused", case_lock_file_refused},
	};

	unsetenv("MMAPQ_FAULT");
	atexit(tu_kill_tracked); /* a case that fails leaves no reader behind */
	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
