/* SPDX-License-Identifier: MIT */
/* failfs.c -- see failfs.h.  Serves requests one at a time (fuse_loop), so
 * the state needs no lock except the switch, which the test flips from
 * another thread. */
#define FUSE_USE_VERSION 31
#include "failfs.h"

#include <errno.h>
#include <fuse.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct inode {
	bool used;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	nlink_t nlink;
	unsigned open;   /* open handles: an unlinked inode lives until closed */
	char *data;
	size_t size;
};

struct dentry {
	char name[128];
	int ino;         /* index into inodes, -1 if the slot is free */
};

static struct inode inodes[FAILFS_FILES];
static struct dentry dents[FAILFS_FILES];
static bool g_fail;
static uint64_t g_refused;
static struct fuse *g_fuse;
static pthread_t g_thread;

static const char *base(const char *path)
{
	return path[0] == '/' ? path + 1 : path;
}

static int lookup(const char *path)
{
	const char *n = base(path);

	for (int i = 0; i < FAILFS_FILES; i++)
		if (dents[i].ino >= 0 && !strcmp(dents[i].name, n))
			return i;
	return -1;
}

static void put_inode(int ino)
{
	struct inode *in = &inodes[ino];

	if (in->nlink == 0 && in->open == 0) {
		free(in->data);
		memset(in, 0, sizeof(*in));
	}
}

static int add_dentry(const char *path, int ino)
{
	const char *n = base(path);

	if (strchr(n, '/'))
		return -ENOENT; /* flat: no subdirectories */
	if (strlen(n) >= sizeof(dents[0].name))
		return -ENAMETOOLONG;
	for (int i = 0; i < FAILFS_FILES; i++)
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

static int resize(struct inode *in, size_t size)
{
	char *p;

	if (size > FAILFS_MAX_SIZE)
		return -EFBIG;
	p = realloc(in->data, size ? size : 1);
	if (!p)
		return -ENOMEM;
	if (size > in->size)
		memset(p + in->size, 0, size - in->size);
	in->data = p;
	in->size = size;
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
	st->st_blksize = 4096;
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

	if (!strcmp(path, "/")) {
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
	for (int i = 0; i < FAILFS_FILES; i++)
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
	for (int i = 0; i < FAILFS_FILES && ino < 0; i++)
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
	if (fi->flags & O_TRUNC)
		resize(&inodes[dents[d].ino], 0);
	inodes[dents[d].ino].open++;
	fi->fh = (uint64_t)dents[d].ino;
	fi->keep_cache = 1;
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
	memcpy(buf, in->data + off, size);
	return (int)size;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	struct inode *in = &inodes[fi->fh];

	if (__atomic_load_n(&g_fail, __ATOMIC_RELAXED)) {
		__atomic_fetch_add(&g_refused, 1, __ATOMIC_RELAXED);
		return -EIO;
	}
	if ((size_t)off + size > in->size) {
		int r = resize(in, (size_t)off + size);
		if (r < 0)
			return r;
	}
	memcpy(in->data + off, buf, size);
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
	if (__atomic_load_n(&g_fail, __ATOMIC_RELAXED)) {
		__atomic_fetch_add(&g_refused, 1, __ATOMIC_RELAXED);
		return -EIO;
	}
	return 0;
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	return ino_of(path, fi) < 0 ? -ENOENT : 0;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* no caching of names or attributes: every change is seen at once */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	/* but one page cache per file, as on a local file system: not dropped
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
};

static void *loop(void *arg)
{
	(void)arg;
	fuse_loop(g_fuse);
	return NULL;
}

int failfs_start(const char *dir)
{
	char *argv[] = {"failfs", NULL};
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);
	int r;

	for (int i = 0; i < FAILFS_FILES; i++)
		dents[i].ino = -1;
	if (access("/dev/fuse", R_OK | W_OK) < 0)
		return -errno;
	g_fuse = fuse_new(&args, &ops, sizeof(ops), NULL);
	fuse_opt_free_args(&args); /* fuse_new may have added to them */
	if (!g_fuse)
		return -ENOMEM;
	if (fuse_mount(g_fuse, dir) != 0) {
		fuse_destroy(g_fuse);
		g_fuse = NULL;
		return -EPERM;
	}
	r = pthread_create(&g_thread, NULL, loop, NULL);
	if (r) {
		fuse_unmount(g_fuse);
		fuse_destroy(g_fuse);
		g_fuse = NULL;
		return -r;
	}
	return 0;
}

void failfs_set_fail(bool fail)
{
	__atomic_store_n(&g_fail, fail, __ATOMIC_RELAXED);
}

uint64_t failfs_refused(void)
{
	return __atomic_load_n(&g_refused, __ATOMIC_RELAXED);
}

void failfs_stop(void)
{
	if (!g_fuse)
		return;
	fuse_exit(g_fuse);
	/* unmounting ends the connection: the loop's read of /dev/fuse returns */
	fuse_unmount(g_fuse);
	pthread_join(g_thread, NULL);
	fuse_destroy(g_fuse);
	g_fuse = NULL;
}
