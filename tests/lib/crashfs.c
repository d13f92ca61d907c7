/* SPDX-License-Identifier: MIT */
/* crashfs.c -- see crashfs.h.  The server is a child process of the test
 * (forked by crashfs_start), never a thread of it: a process that unmaps a
 * shared mapping of a FUSE file waits, inside munmap and holding its
 * mm's lock, for the write-back of the file's dirty pages (fuse_vma_close),
 * which a server thread of the same process may need that lock to serve
 * (any heap growth does): the test would hang for good.  The state (names,
 * inodes, contents, counters) lives in memory shared by the two processes;
 * the server's loop takes g->lock around each request, answer included, and
 * the power cut takes it to stop the serving, so that no request is served
 * after it. */
#define FUSE_USE_VERSION 31
#include "crashfs.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGES       (CRASHFS_MAX_SIZE / CRASHFS_PAGE)
#define FUSECTL     "/sys/fs/fuse/connections"
#define FUSECTL_MAGIC 0x65735543
#define KILL_MS     10000

struct inode {
	bool used;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	nlink_t nlink;
	unsigned open;          /* open handles: an unlinked inode lives until closed */
	size_t size, dsize;     /* of the current and the durable content */
	uint8_t dirty[PAGES / 8]; /* pages changed since the last FSYNC */
};

struct dentry {
	char name[128];
	int ino;                /* index into inodes, -1 if the slot is free */
};

/* Shared by the test and the server: written by the server under lock,
 * while not cut; by the test when the server is gone (the cut, the stop,
 * the start). */
struct shared {
	pthread_mutex_t lock;   /* process-shared, robust */
	bool cut;               /* under lock: serve nothing more */
	bool fail;              /* WRITE and FSYNC answer EIO (crashfs_set_fail) */
	uint64_t refused;       /* requests refused so */
	struct crashfs_stats stats;
	struct inode inodes[CRASHFS_FILES];
	struct dentry dents[CRASHFS_FILES];
};

static struct shared *g;
/* The contents, shared too, reserved whole so that the server never
 * allocates: inode i's current content at 2i, its durable one at 2i + 1,
 * CRASHFS_MAX_SIZE bytes each (memory taken only where written). */
static char *g_buf;
#define inodes (g->inodes)
#define dents (g->dents)
#define g_stats (g->stats)

/* the test process's own */
static pid_t g_server;          /* the server process, 0 if none */
static struct fuse *g_fuse;     /* the server's */
static char *g_dir;
static unsigned g_conn;         /* the connection's number under FUSECTL */
static int g_marked[CRASHFS_MARKED], g_nmarked;
static pid_t g_owner;           /* the process whose exit stops the server */

static char *data(const struct inode *in)
{
	return g_buf + (size_t)(in - inodes) * 2 * CRASHFS_MAX_SIZE;
}

static char *ddata(const struct inode *in)
{
	return data(in) + CRASHFS_MAX_SIZE;
}

static void lock(void)
{
	if (pthread_mutex_lock(&g->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&g->lock); /* a server killed serving */
}

static void unlock(void)
{
	pthread_mutex_unlock(&g->lock);
}

/* A disk gone bad (crashfs_set_fail): the request is refused with EIO and
 * counted. */
static bool refused(void)
{
	if (!__atomic_load_n(&g->fail, __ATOMIC_RELAXED))
		return false;
	__atomic_fetch_add(&g->refused, 1, __ATOMIC_RELAXED);
	return true;
}

static const char *base(const char *path)
{
	return path[0] == '/' ? path + 1 : path;
}

static int lookup(const char *path)
{
	const char *n = base(path);

	for (int i = 0; i < CRASHFS_FILES; i++)
		if (dents[i].ino >= 0 && !strcmp(dents[i].name, n))
			return i;
	return -1;
}

static void put_inode(int ino)
{
	struct inode *in = &inodes[ino];

	if (in->nlink == 0 && in->open == 0)
		memset(in, 0, sizeof(*in));
}

static int add_dentry(const char *path, int ino)
{
	const char *n = base(path);

	if (strchr(n, '/'))
		return -ENOENT; /* flat: no subdirectories */
	if (strlen(n) >= sizeof(dents[0].name))
		return -ENAMETOOLONG;
	for (int i = 0; i < CRASHFS_FILES; i++)
		if (dents[i].ino < 0) {
			strcpy(dents[i].name, n);
			dents[i].ino = ino;
			inodes[ino].nlink++;
			return 0;
		}
	return -ENOSPC;
}

static void remove_dentry(int d)
{
	int ino = dents[d].ino;

	dents[d].ino = -1;
	inodes[ino].nlink--;
	put_inode(ino);
}

/* Bytes [from, to) of the content changed: their pages are not durable. */
static void touch(struct inode *in, size_t from, size_t to)
{
	for (size_t p = from / CRASHFS_PAGE; p * CRASHFS_PAGE < to; p++)
		in->dirty[p / 8] |= (uint8_t)(1u << (p % 8));
}

static bool dirty(const struct inode *in, size_t p)
{
	return in->dirty[p / 8] & (1u << (p % 8));
}

static int resize(struct inode *in, size_t size)
{
	if (size > CRASHFS_MAX_SIZE)
		return -EFBIG;
	if (size > in->size) { /* the zeros are new content; a cut only ends short */
		memset(data(in) + in->size, 0, size - in->size);
		touch(in, in->size, size);
	}
	in->size = size;
	return 0;
}

/* The current content becomes the durable one. */
static int sync_inode(struct inode *in)
{
	memcpy(ddata(in), data(in), in->size);
	in->dsize = in->size;
	memset(in->dirty, 0, sizeof(in->dirty));
	return 0;
}

static void fill_stat(int ino, struct stat *st)
{
	const struct inode *in = &inodes[ino];

	memset(st, 0, sizeof(*st));
	st->st_ino = (ino_t)ino + 2;
	st->st_mode = in->mode;
	st->st_nlink = in->nlink;
	st->st_uid = in->uid;
	st->st_gid = in->gid;
	st->st_size = (off_t)in->size;
	st->st_blksize = CRASHFS_PAGE;
	st->st_blocks = (blkcnt_t)((in->size + 511) / 512);
}

static int ino_of(const char *path, struct fuse_file_info *fi)
{
	int d;

	if (fi)
		return (int)fi->fh;
	d = lookup(path);
	return d < 0 ? -ENOENT : dents[d].ino;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	int ino;

	if (path && !strcmp(path, "/")) {
		memset(st, 0, sizeof(*st));
		st->st_ino = 1;
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	ino = ino_of(path, fi);
	if (ino < 0)
		return ino;
	fill_stat(ino, st);
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	for (int i = 0; i < CRASHFS_FILES; i++)
		if (dents[i].ino >= 0)
			fill(buf, dents[i].name, NULL, 0, 0);
	return 0;
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_context *c = fuse_get_context();
	int ino = -1, r;

	if (lookup(path) >= 0)
		return -EEXIST;
	for (int i = 0; i < CRASHFS_FILES && ino < 0; i++)
		if (!inodes[i].used)
			ino = i;
	if (ino < 0)
		return -ENOSPC;
	inodes[ino] = (struct inode){.used = true, .mode = S_IFREG | (mode & 07777), .uid = c->uid,
	                             .gid = c->gid};
	r = add_dentry(path, ino);
	if (r < 0) {
		inodes[ino].used = false;
		return r;
	}
	inodes[ino].open++;
	fi->fh = (uint64_t)ino;
	fi->keep_cache = 1;
	return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	int d = lookup(path);

	if (d < 0)
		return -ENOENT;
	if (fi->flags & O_TRUNC) {
		int r = resize(&inodes[dents[d].ino], 0);
		if (r < 0)
			return r;
	}
	inodes[dents[d].ino].open++;
	fi->fh = (uint64_t)dents[d].ino;
	fi->keep_cache = 1;
	return 0;
}

static int fs_flush(const char *path, struct fuse_file_info *fi)
{
	g_stats.flushes++; /* counted, and nothing more: a close makes nothing durable */
	return 0;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	inodes[fi->fh].open--;
	put_inode((int)fi->fh);
	return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	const struct inode *in = &inodes[fi->fh];

	if ((size_t)off >= in->size)
		return 0;
	if (size > in->size - (size_t)off)
		size = in->size - (size_t)off;
	memcpy(buf, data(in) + off, size);
	return (int)size;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	struct inode *in = &inodes[fi->fh];

	if (refused())
		return -EIO;
	if ((size_t)off + size > in->size) {
		int r = resize(in, (size_t)off + size);
		if (r < 0)
			return r;
	}
	memcpy(data(in) + off, buf, size);
	touch(in, (size_t)off, (size_t)off + size);
	g_stats.writes++;
	g_stats.written += size;
	return (int)size;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	int ino = ino_of(path, fi);

	return ino < 0 ? ino : resize(&inodes[ino], (size_t)size);
}

static int fs_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	struct inode *in = &inodes[fi->fh];

	if (mode)
		return -EOPNOTSUPP;
	return (size_t)(off + len) > in->size ? resize(in, (size_t)(off + len)) : 0;
}

static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int ino = ino_of(path, fi);

	if (ino < 0)
		return ino;
	inodes[ino].mode = (inodes[ino].mode & S_IFMT) | (mode & 07777);
	return 0;
}

static int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	int ino = ino_of(path, fi);

	if (ino < 0)
		return ino;
	if (uid != (uid_t)-1)
		inodes[ino].uid = uid;
	if (gid != (gid_t)-1)
		inodes[ino].gid = gid;
	return 0;
}

static int fs_link(const char *from, const char *to)
{
	int d = lookup(from);

	if (d < 0)
		return -ENOENT;
	if (lookup(to) >= 0)
		return -EEXIST;
	return add_dentry(to, dents[d].ino);
}

static int fs_unlink(const char *path)
{
	int d = lookup(path);

	if (d < 0)
		return -ENOENT;
	remove_dentry(d);
	return 0;
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
	int d = lookup(from), t = lookup(to), ino;

	if (d < 0)
		return -ENOENT;
	if (flags)
		return -EINVAL;
	ino = dents[d].ino;
	if (t >= 0)
		remove_dentry(t);
	dents[d].ino = -1;
	inodes[ino].nlink--;
	return add_dentry(to, ino);
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	if (refused())
		return -EIO;
	g_stats.fsyncs++;
	return sync_inode(&inodes[fi->fh]);
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	return ino_of(path, fi) < 0 ? -ENOENT : 0;
}

/* As if there were no poll operation (the kernel then says a file is always
 * ready), but without libfuse's leak of the poll handle in that case. */
static int fs_poll(const char *path, struct fuse_file_info *fi, struct fuse_pollhandle *ph,
                   unsigned *revents)
{
	fuse_pollhandle_destroy(ph);
	return -ENOSYS;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* no caching of names or attributes: every change is seen at once */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	/* unlink removes the name (durable at once), never renames an open
	 * file to .fuse_hidden*, which would survive a cut */
	cfg->hard_remove = 1;
	cfg->nullpath_ok = 1;
	/* write() is written through to the server before it returns; with a
	 * write-back cache it would be held dirty in the kernel as stores to
	 * a mapping are */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* one page cache per file, as on a local file system: not dropped
	 * when someone opens the file (keep_cache in open and create) or its
	 * mtime moves.  Dropped, it would take with it the pages whose write-
	 * back failed, and every mapping would see the file's old contents. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	return NULL;
}

static const struct fuse_operations ops = {
	.init = fs_init,
	.getattr = fs_getattr,
	.readdir = fs_readdir,
	.create = fs_create,
	.open = fs_open,
	.flush = fs_flush,
	.release = fs_release,
	.read = fs_read,
	.write = fs_write,
	.truncate = fs_truncate,
	.fallocate = fs_fallocate,
	.chmod = fs_chmod,
	.chown = fs_chown,
	.link = fs_link,
	.unlink = fs_unlink,
	.rename = fs_rename,
	.fsync = fs_fsync,
	.utimens = fs_utimens,
	.poll = fs_poll,
};

/* fuse_session_loop, but each request read and served (answer included)
 * under g->lock, and none once the power is cut.  The device is read only
 * when poll says a request is there, and without blocking: under the lock
 * the read must not wait, and after the cut nothing is read, not even the
 * abort's ECONNABORTED (which libfuse would print). */
static void loop(void)
{
	struct fuse_session *se = fuse_get_session(g_fuse);
	struct pollfd p = {.fd = fuse_session_fd(se), .events = POLLIN};
	struct fuse_buf buf = {.mem = NULL};
	int r = 0;

	fcntl(p.fd, F_SETFL, fcntl(p.fd, F_GETFL) | O_NONBLOCK);
	while (r == 0 || r == -EAGAIN || r == -EINTR) {
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			break;
		lock();
		if (g->cut || fuse_session_exited(se)) {
			unlock();
			break;
		}
		r = fuse_session_receive_buf(se, &buf);
		if (r > 0) {
			fuse_session_process_buf(se, &buf);
			r = 0;
		} else if (r == 0) {
			r = -ENODEV; /* the connection is gone */
		}
		unlock();
	}
	free(buf.mem);
}

/* The server process: mount at dir, say so on ready (0 or an errno), serve
 * until the cut or the stop, and exit, never through the test's exit
 * handlers.  It dies with the test. */
static void __attribute__((noreturn)) serve(int ready, const char *dir, pid_t parent)
{
	char *argv[] = {"crashfs", NULL};
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);
	int err = 0;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	/* none of the test's descriptors: a pipe's write end kept here would
	 * keep its reader from ever seeing its end */
	if (ready != 3) {
		dup2(ready, 3);
		ready = 3;
	}
	close_range(4, ~0u, 0);
	g_fuse = fuse_new(&args, &ops, sizeof(ops), NULL);
	fuse_opt_free_args(&args); /* fuse_new may have added to them */
	if (!g_fuse)
		err = ENOMEM;
	else if (fuse_mount(g_fuse, dir) != 0)
		err = EPERM;
	if (write(ready, &err, sizeof(err)) != sizeof(err) || err)
		_exit(1);
	close(ready);
	loop();
	fuse_unmount(g_fuse); /* closes /dev/fuse; unmounts only if not aborted */
	fuse_destroy(g_fuse);
	_exit(0);
}

static int fusectl_mounted(void)
{
	struct statfs sf;

	if (statfs(FUSECTL, &sf) == 0 && sf.f_type == FUSECTL_MAGIC)
		return 0;
	return mount("fusectl", FUSECTL, "fusectl", 0, NULL) < 0 ? -errno : 0;
}

/* A process that exits with the file system mounted (a failed check) would
 * leave the server serving a mount nobody uses, and a daemon of its blocked
 * on it: its exit stops the server first (not a child's exit: the server is
 * not the child's). */
static void stop_at_exit(void)
{
	if (getpid() == g_owner)
		crashfs_stop();
}

/* The shared state, made once per process. */
static int setup_shared(void)
{
	pthread_mutexattr_t a;

	if (g)
		return 0;
	g = mmap(NULL, sizeof(*g), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g == MAP_FAILED) {
		g = NULL;
		return -errno;
	}
	g_buf = mmap(NULL, (size_t)CRASHFS_FILES * 2 * CRASHFS_MAX_SIZE, PROT_READ | PROT_WRITE,
	             MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (g_buf == MAP_FAILED) {
		int r = -errno;
		munmap(g, sizeof(*g));
		g = NULL;
		return r;
	}
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&g->lock, &a);
	pthread_mutexattr_destroy(&a);
	for (int i = 0; i < CRASHFS_FILES; i++)
		dents[i].ino = -1; /* no files yet */
	return 0;
}

int crashfs_start(const char *dir)
{
	struct stat st;
	int r, p[2], err = 0;
	pid_t parent = getpid();

	if (g_server)
		return -EBUSY;
	r = setup_shared();
	if (r < 0)
		return r;
	if (!g_owner) {
		g_owner = parent;
		atexit(stop_at_exit);
	}
	if (access("/dev/fuse", R_OK | W_OK) < 0)
		return -errno;
	r = fusectl_mounted();
	if (r < 0)
		return r;
	memset(&g_stats, 0, sizeof(g_stats));
	g->refused = 0;
	g->fail = false;
	g->cut = false;
	free(g_dir);
	g_dir = strdup(dir);
	g_conn = 0;
	if (!g_dir || pipe2(p, O_CLOEXEC) < 0)
		return -ENOMEM;
	g_server = fork();
	if (g_server < 0) {
		r = -errno;
		g_server = 0;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (g_server == 0) {
		close(p[0]);
		serve(p[1], dir, parent);
	}
	close(p[1]);
	r = read(p[0], &err, sizeof(err)) == sizeof(err) ? -err : -ECHILD;
	close(p[0]);
	if (r == 0 && stat(dir, &st) < 0) /* served by the server: the mount works */
		r = -errno;
	if (r < 0) {
		crashfs_stop();
		return r;
	}
	/* the kernel's dev_t, as fusectl names the connection */
	g_conn = (major(st.st_dev) << 20) | minor(st.st_dev);
	return 0;
}

int crashfs_mark(pid_t pid)
{
	int fd;

	if (g_nmarked == CRASHFS_MARKED)
		return -ENOSPC;
	fd = pidfd_open(pid, 0);
	if (fd < 0)
		return -errno;
	g_marked[g_nmarked++] = fd;
	return 0;
}

static int abort_connection(void)
{
	char path[64], one = '1';
	int fd, r = 0;

	snprintf(path, sizeof(path), FUSECTL "/%u/abort", g_conn);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, &one, 1) != 1)
		r = -errno;
	if (fd >= 0)
		close(fd);
	return r;
}

/* Wait until the process of pidfd fd is gone, at most ms; whether it is. */
static bool gone(int fd, long ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	while (ms > 0 && poll(&p, 1, (int)ms) < 0 && errno == EINTR)
		;
	return p.revents & POLLIN;
}

/* Wait until each marked process is gone, then forget them; -ETIMEDOUT if
 * one is not gone within KILL_MS. */
static int marked_gone(void)
{
	struct timespec t0, t;
	int r = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < g_nmarked; i++) {
		long ms;

		clock_gettime(CLOCK_MONOTONIC, &t);
		ms = KILL_MS - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (!gone(g_marked[i], ms))
			r = -ETIMEDOUT;
		close(g_marked[i]);
	}
	g_nmarked = 0;
	return r;
}

/* Stop serving (the caller holds g->lock, with g->cut set): abort the
 * connection (every request in flight fails, and the server's poll of
 * /dev/fuse ends), detach the mount, and reap the server (killed if it
 * does not end by itself). */
static int teardown(void)
{
	int r = g_conn ? abort_connection() : -ENOTCONN, fd;

	unlock();
	if (umount2(g_dir, MNT_DETACH) < 0 && errno != EINVAL && !r)
		r = -errno;
	fd = pidfd_open(g_server, 0);
	if (fd < 0 || !gone(fd, KILL_MS))
		kill(g_server, SIGKILL);
	if (fd >= 0)
		close(fd);
	while (waitpid(g_server, NULL, 0) < 0 && errno == EINTR)
		;
	g_server = 0;
	return r;
}

static uint64_t next(uint64_t *s) /* splitmix64 */
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static bool coin(uint64_t *s, double p)
{
	return (double)(next(s) >> 11) * 0x1.0p-53 < p;
}

/* What survives of in (the server gone): its durable content, and for TORN
 * some of the rest, made in place in its current content, which then
 * becomes both. */
static int survive(struct inode *in, enum crashfs_cut mode, uint64_t *rng, double keep)
{
	bool torn = mode == CRASHFS_TORN;
	size_t size = torn && in->size != in->dsize && coin(rng, keep) ? in->size : in->dsize;
	char *cur = data(in);
	const char *dur = ddata(in);

	for (size_t pg = 0; pg < PAGES; pg++) {
		size_t from = pg * CRASHFS_PAGE, to = from + CRASHFS_PAGE, src;
		bool kept = false;

		if (dirty(in, pg)) {
			g_stats.unsynced++;
			kept = torn && coin(rng, keep);
			g_stats.kept += kept;
		}
		to = to < size ? to : size;
		if (from >= to)
			continue;
		/* kept: the page whole as it is now (the current bytes, zeros
		 * past them); else as it is on disk (zeros past its end) */
		src = kept ? in->size : in->dsize;
		src = src < from ? from : src < to ? src : to;
		if (!kept)
			memcpy(cur + from, dur + from, src - from);
		memset(cur + src, 0, to - src);
	}
	in->size = size;
	return sync_inode(in);
}

int crashfs_power_cut(enum crashfs_cut mode, uint64_t seed, double keep)
{
	int r, k;

	if (!g_server)
		return -ENOTCONN;
	lock(); /* the cut: nothing is served after this */
	g->cut = true;
	for (int i = 0; i < g_nmarked; i++)
		pidfd_send_signal(g_marked[i], SIGKILL, NULL, 0);
	r = teardown();
	k = marked_gone();
	if (!r)
		r = k;
	/* the names at the cut survive, their inodes as the mode says */
	for (int i = 0; i < CRASHFS_FILES; i++)
		if (inodes[i].used) {
			inodes[i].open = 0;
			put_inode(i); /* unlinked, open until the cut: gone */
		}
	for (int i = 0; i < CRASHFS_FILES; i++)
		if (inodes[i].used) {
			k = survive(&inodes[i], mode, &seed, keep);
			if (!r)
				r = k;
		}
	return r;
}

struct crashfs_stats crashfs_stats(void)
{
	struct crashfs_stats s = {0};

	if (!g)
		return s;
	lock();
	s = g_stats;
	unlock();
	return s;
}

void crashfs_stop(void)
{
	if (g_server) {
		lock();
		g->cut = true;
		teardown();
	}
	for (int i = 0; i < g_nmarked; i++)
		close(g_marked[i]);
	g_nmarked = 0;
	if (g)
		for (int i = 0; i < CRASHFS_FILES; i++) {
			memset(&inodes[i], 0, sizeof(inodes[i]));
			dents[i].ino = -1;
		}
	free(g_dir);
	g_dir = NULL;
}

void crashfs_set_fail(bool fail)
{
	if (g)
		__atomic_store_n(&g->fail, fail, __ATOMIC_RELAXED);
}

uint64_t crashfs_refused(void)
{
	return g ? __atomic_load_n(&g->refused, __ATOMIC_RELAXED) : 0;
}
