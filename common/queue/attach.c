/* SPDX-License-Identifier: MIT */
/*
 * attach.c -- taking a role in a queue file: the file opened (or created)
 * and mapped, the lock file and its OFD locks (the attach byte, the role
 * bytes: "Attach protocol" in mmapq_format.h), a consumer joining under
 * its name, the re-initialisation by whoever is alone, and the observer's
 * look, which takes no lock at all.
 */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"

/* ---- OFD locks ---------------------------------------------------------- */

static const char *role_name(enum mmapq_role r)
{
	return r == MMAPQ_ROLE_PRODUCER ? "producer" : r == MMAPQ_ROLE_CONSUMER ? "consumer" : "observer";
}

static bool interrupted(const struct mmapq *q)
{
	return q->interrupted && q->interrupted(q->interrupted_ctx);
}

/* F_OFD_SETLK or F_OFD_SETLKW on a byte of the lock file.  A signal
 * handler interrupts the waiting one (EINTR, if it was installed without
 * SA_RESTART): then the caller's interrupted callback decides between
 * -EINTR and waiting on. */
static int ofd_lock(const struct mmapq *q, int cmd, short type, off_t byte)
{
	int fd = q->lock_fd;
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};

	if (cmd == F_OFD_SETLKW && interrupted(q))
		return -EINTR;
	while (fcntl(fd, cmd, &fl) < 0) {
		if (errno != EINTR)
			return neg_errno();
		if (cmd == F_OFD_SETLKW && interrupted(q))
			return -EINTR;
	}
	return 0;
}

static bool ofd_locked_by_other(int fd, off_t byte)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return false;
	return fl.l_type != F_UNLCK;
}

static bool pid_alive(int32_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/*
 * Whether another process holds a role (its pid, its lock byte): the byte
 * locked in the lock file; without the lock file (the observer may not
 * open it), whether the pid is alive, a guess (a reused pid looks
 * attached).  F_OFD_GETLK does not report our own locks: the caller knows
 * which roles are ours.
 */
bool held_by_other(const struct mmapq *q, int32_t pid, off_t byte)
{
	return q->lock_fd < 0 ? pid_alive(pid) : ofd_locked_by_other(q->lock_fd, byte);
}

/* ---- open and map ------------------------------------------------------- */

int open_file(struct mmapq *q, const struct mmapq_params *p, struct mmapq_error *err)
{
	int flags = O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK;
	flags |= p->role == MMAPQ_ROLE_OBSERVER ? O_RDONLY : O_RDWR;

	/* A few rounds: a racing creator can make our create lose (EEXIST). */
	for (int round = 0; round < 8; round++) {
		int fd = open(p->path, flags), r;
		if (fd >= 0) {
			/* O_NONBLOCK only so that a FIFO at the path cannot hang us */
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
			q->fd = fd;
			return 0;
		}
		r = neg_errno();
		if (r == -ENOENT && p->role != MMAPQ_ROLE_OBSERVER && params_join(p)) {
			set_err(err, "%s: does not exist (no size, max_record and format were"
			        " given to create it)", p->path);
			return r;
		}
		if (r == -ENOENT && p->role != MMAPQ_ROLE_OBSERVER) {
			r = create_file(p, err);
			if (r == 0 || r == -EEXIST)
				continue;
			return r;
		}
		if (r == -ENXIO) {
			/* open() of a Unix socket: not a queue file */
			set_err(err, "%s: is a socket, not a queue file", p->path);
			return -EBADMSG;
		}
		if (r == -ELOOP)
			set_err(err, "%s: is a symbolic link; refusing to follow it", p->path);
		else if (r == -EISDIR)
			set_err(err, "%s: is a directory, not a queue file", p->path);
		else if (r == -ENOENT)
			set_err(err, "%s: does not exist", p->path);
		else
			set_err(err, "%s: cannot open: %s", p->path, strerror(-r));
		return r;
	}
	set_err(err, "%s: keeps disappearing while being created", p->path);
	return -EAGAIN;
}

static int map_file(struct mmapq *q, const struct mmapq_params *p, struct mmapq_error *err,
                    uint64_t *real_size)
{
	struct stat st;
	int prot = p->role == MMAPQ_ROLE_OBSERVER ? PROT_READ : PROT_READ | PROT_WRITE;

	if (fstat(q->fd, &st) < 0) {
		int r = neg_errno();
		set_err(err, "%s: cannot stat: %s", q->path, strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, "%s: is not a regular file (a %s)", q->path,
		        S_ISDIR(st.st_mode) ? "directory" : S_ISFIFO(st.st_mode) ? "FIFO" :
		        S_ISSOCK(st.st_mode) ? "socket" : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ?
		        "device" : "special file");
		return -EBADMSG;
	}
	/* the smallest header (versions 1 to 3), which holds the identity:
	 * check_identity reads no further until the geometry says the file
	 * holds a whole header of its version */
	if ((uint64_t)st.st_size < MMAPQ_HEADER_SIZE_V3) {
		set_err(err, "%s: file is %" PRIu64 " bytes, smaller than a queue header (%" PRIu32 ")",
		        q->path, (uint64_t)st.st_size, MMAPQ_HEADER_SIZE_V3);
		return -EBADMSG;
	}
	if ((uint64_t)st.st_size > MMAPQ_HEADER_SIZE + MMAPQ_SIZE_MAX) {
		set_err(err, "%s: file is %" PRIu64 " bytes, larger than any queue file", q->path,
		        (uint64_t)st.st_size);
		return -EBADMSG;
	}
	q->map_size = (size_t)st.st_size;
	q->h = mmap(NULL, q->map_size, prot, MAP_SHARED, q->fd, 0);
	if (q->h == MAP_FAILED) {
		int r = neg_errno();
		q->h = NULL;
		set_err(err, "%s: cannot map: %s", q->path, strerror(-r));
		return r;
	}
	*real_size = (uint64_t)st.st_size;
	return 0;
}

/* Map the file, check its header against the parameters, take its
 * geometry: every role's first steps. */
int map_validated(struct mmapq *q, const struct mmapq_params *p, struct mmapq_error *err)
{
	uint64_t real_size = 0;
	int r = map_file(q, p, err, &real_size);

	if (r < 0)
		return r;
	/* the checks of versions 1 to 3 go by it (validate_static checks it
	 * first); q->h is mapped: map_file returned 0 (the analyzer loses
	 * neg_errno's sign across the call) */
	q->version = q->h->version; // NOLINT(clang-analyzer-core.NullDereference)
	r = validate_static(q, p, real_size, err);
	if (r < 0)
		return r;
	q->ring = (uint8_t *)q->h + (q->version == MMAPQ_VERSION ? MMAPQ_HEADER_SIZE : MMAPQ_HEADER_SIZE_V3);
	if (q->version != MMAPQ_VERSION) {
		legacy_setup(q);
		return 0;
	}
	q->size = q->h->size;
	q->mask = q->size - 1;
	q->max_record = q->h->max_record;
	q->format = q->h->format;
	q->max_consumers = q->h->max_consumers;
	q->max_producers = q->h->max_producers;
	return 0;
}

/* ---- the lock file and the role bytes ----------------------------------- */

/* Read and write for each class that may write the queue file, nothing for
 * the others: whoever may only read the queue cannot open the lock file at
 * all, so cannot take (even shared) locks that would lock the roles out. */
static mode_t lock_file_mode(mode_t queue_mode)
{
	mode_t m = 0;

	if (queue_mode & S_IWUSR)
		m |= S_IRUSR | S_IWUSR;
	if (queue_mode & S_IWGRP)
		m |= S_IRGRP | S_IWGRP;
	if (queue_mode & S_IWOTH)
		m |= S_IROTH | S_IWOTH;
	return m;
}

static int lock_file_error(struct mmapq *q, const char *what, int r, struct mmapq_error *err)
{
	if (r == -ELOOP)
		set_err(err, "%s: is a symbolic link; refusing to follow it", q->lock_path);
	else
		set_err(err, "%s: %s the lock file beside the queue: %s", q->lock_path, what,
		        strerror(-r));
	return r;
}

/*
 * The daemons' lock file, PATH.lock: opened read-write, created if missing
 * (exclusively, so that we know whether it is ours to set up: the mode
 * derived from the queue file's, and the queue file's owner (as root) and
 * group where we may).  An existing one is used as it is.
 */
static int open_lock_file(struct mmapq *q, struct mmapq_error *err)
{
	const int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK;
	struct stat qs, ls;
	mode_t mode;
	int fd = -1, r;

	if (fstat(q->fd, &qs) < 0)
		return lock_file_error(q, "cannot create", neg_errno(), err);
	mode = lock_file_mode(qs.st_mode);
	/* a few rounds: someone may remove it between our two opens */
	for (int round = 0; fd < 0 && round < 8; round++) {
		fd = open(q->lock_path, flags | O_CREAT | O_EXCL, mode);
		if (fd >= 0) {
			/* errors ignored: the mode and owner are the best we can do */
			if (fchown(fd, geteuid() == 0 ? qs.st_uid : (uid_t)-1, qs.st_gid) < 0) {
				/* not a member of the queue's group: ours stays */
			}
			if (fchmod(fd, mode) < 0) {
				/* cannot happen to the owner; the umask'ed mode stays */
			}
			break;
		}
		if (errno != EEXIST)
			return lock_file_error(q, "cannot create", neg_errno(), err);
		fd = open(q->lock_path, flags);
		if (fd < 0 && errno != ENOENT)
			return lock_file_error(q, "cannot open", neg_errno(), err);
	}
	if (fd < 0)
		return lock_file_error(q, "cannot create", -EAGAIN, err);
	r = fstat(fd, &ls) < 0 ? neg_errno() : S_ISREG(ls.st_mode) ? 0 : -EBADMSG;
	if (r < 0) {
		close(fd);
		if (r == -EBADMSG)
			set_err(err, "%s: the lock file is not a regular file", q->lock_path);
		else
			lock_file_error(q, "cannot open", r, err);
		return r;
	}
	/* O_NONBLOCK only so that a FIFO at the path cannot hang us */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	q->lock_fd = fd;
	return 0;
}

/* The observer only reads the lock file, and does without it if it cannot
 * open it (no permission: it may only read the queue; absent: no daemon
 * has run, or a read-only file system): mmapq_status then says so. */
static void open_lock_file_observer(struct mmapq *q)
{
	struct stat st;
	int fd = open(q->lock_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);

	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
	}
	q->lock_fd = fd;
}

/* The holder names itself right after taking the role lock (see attach):
 * give it that moment rather than report nobody, or its dead predecessor. */
static int32_t role_holder_pid(const int32_t *word)
{
	uint64_t end = monotonic_ns() + 100000000u; /* 0.1 s */
	int32_t pid;

	for (;;) {
		pid = __atomic_load_n(word, __ATOMIC_RELAXED);
		if (pid_alive(pid) || monotonic_ns() >= end)
			return pid;
		sched_yield();
	}
}

/* What a role is called in messages: "producer", "producer 'NAME'" (not
 * the default one), "consumer 'NAME'". */
static const char *role_label(const struct mmapq *q, char *buf, size_t size)
{
	if (q->role == MMAPQ_ROLE_CONSUMER && q->name[0])
		snprintf(buf, size, "consumer '%s'", q->name);
	else if (q->role == MMAPQ_ROLE_PRODUCER && q->name[0] &&
	         strcmp(q->name, MMAPQ_PRODUCER_DEFAULT))
		snprintf(buf, size, "producer '%s'", q->name);
	else
		snprintf(buf, size, "%s", role_name(q->role));
	return buf;
}

/* The role's lock bytes [byte, byte + len), exclusively, without waiting:
 * -EBUSY (err names the holder's pid, read from pid) if held. */
static int take_role_bytes(struct mmapq *q, off_t byte, off_t len, const int32_t *pid,
                           struct mmapq_error *err)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = len};
	char label[MMAPQ_CONSUMER_NAME_MAX + 16];
	int r = 0;

	while (fcntl(q->lock_fd, F_OFD_SETLK, &fl) < 0) {
		r = neg_errno();
		if (r != -EINTR)
			break;
		r = 0;
	}
	role_label(q, label, sizeof(label));
	if (r == -EAGAIN || r == -EACCES) {
		int32_t holder = len > 1 && byte == MMAPQ_LOCK_PRODUCER && !q->legacy ?
		                 attached_producer_pid(q) : pid ? role_holder_pid(pid) : 0;
		if (holder > 0)
			set_err(err, "%s: the %s role is already held by pid %" PRId32, q->path, label,
			        holder);
		else
			set_err(err, "%s: the %s role is already held by another process", q->path, label);
		return -EBUSY;
	}
	if (r < 0)
		set_err(err, "%s: cannot lock the %s role: %s", q->path, label, strerror(-r));
	return r;
}

static void drop_role_bytes(struct mmapq *q, off_t byte, off_t len)
{
	struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = len};

	(void)fcntl(q->lock_fd, F_OFD_SETLK, &fl);
}

/* ---- a named consumer joins --------------------------------------------- */

/* What a failed lock() says, while attaching. */
static void lock_failed(const struct mmapq *q, int r, struct mmapq_error *err)
{
	if (r == -EINTR)
		set_err(err, "%s: interrupted while waiting for the queue mutex (another process"
		        " holds it)", q->path);
	else
		set_err(err, "%s: cannot lock the queue mutex: %s", q->path, mmapq_strerror(r));
}

static int lock_said(struct mmapq *q, struct mmapq_error *err)
{
	int r = lock(q);

	if (r < 0)
		lock_failed(q, r, err);
	return r;
}

/*
 * A version-3 consumer (not migrating): find or register our entry, take
 * its role byte, and make sure, under the mutex, that the entry is still
 * ours (a `consumer remove` may have come between): then q->me is set and
 * the mutex is held (0).  < 0: not held, no byte held.
 */
static int join_consumer(struct mmapq *q, struct mmapq_error *err)
{
	for (int round = 0; round < 16; round++) {
		struct mmapq_consumer *c;
		uint32_t idx;
		int r = lock_said(q, err);

		if (r < 0)
			return r;
		r = find_or_register_locked(q, err);
		unlock(q);
		if (r < 0)
			return r;
		idx = q->index;
		c = &q->h->consumers[idx];
		r = take_role_bytes(q, MMAPQ_LOCK_CONSUMER + idx, 1, &c->pid, err);
		if (r < 0 && r != -EBUSY)
			return r;
		{
			int rl = lock_said(q, err);
			if (rl < 0) {
				if (r == 0)
					drop_role_bytes(q, MMAPQ_LOCK_CONSUMER + idx, 1);
				return rl;
			}
		}
		if (registered(c) && !strncmp(c->name, q->name, sizeof(c->name))) {
			if (r < 0) {
				unlock(q);
				return r; /* held by a live consumer of that name */
			}
			q->me = c;
			q->wait_on = &c->not_empty;
			return 0;
		}
		/* removed (or removed and reused) meanwhile: start over */
		unlock(q);
		if (r == 0)
			drop_role_bytes(q, MMAPQ_LOCK_CONSUMER + idx, 1);
	}
	set_err(err, "%s: consumer '%s' keeps being removed while it attaches", q->path, q->name);
	return -EAGAIN;
}

/*
 * join_consumer, between the removes (see MMAPQ_LOCK_REMOVE): a consumer
 * waits for one in progress and keeps new ones out while it takes its
 * entry's byte; `consumer remove` (no_register) keeps everyone out until
 * it is closed.  -EINTR (said) if asked to stop while waiting.
 */
static int join_named(struct mmapq *q, struct mmapq_error *err)
{
	int r = ofd_lock(q, F_OFD_SETLKW, q->no_register ? F_WRLCK : F_RDLCK, MMAPQ_LOCK_REMOVE);

	if (r == -EINTR) {
		set_err(err, "%s: interrupted while waiting for `mmapqctl consumer remove` to finish",
		        q->path);
		return r;
	}
	if (r < 0) {
		set_err(err, "%s: cannot lock: %s", q->lock_path, strerror(-r));
		return r;
	}
	r = join_consumer(q, err);
	if (!q->no_register)
		(void)ofd_lock(q, F_OFD_SETLK, F_UNLCK, MMAPQ_LOCK_REMOVE);
	return r;
}

/* ---- attach ------------------------------------------------------------- */

/*
 * The attach byte: exclusively if nobody else is attached (*alone), else
 * shared, waiting if needed only for another process's brief
 * validate-and-reinit.
 */
static int take_attach_lock(struct mmapq *q, bool *alone, struct mmapq_error *err)
{
	int r = ofd_lock(q, F_OFD_SETLK, F_WRLCK, MMAPQ_LOCK_ATTACH);

	if (r == -EAGAIN || r == -EACCES) {
		r = ofd_lock(q, F_OFD_SETLKW, F_RDLCK, MMAPQ_LOCK_ATTACH);
		/* Whoever held it exclusively may have given up (a bad config)
		 * and left: try to upgrade, or we would trust a lock word nobody
		 * re-initialised.  A failed upgrade keeps our shared lock. */
		if (r == 0 && ofd_lock(q, F_OFD_SETLK, F_WRLCK, MMAPQ_LOCK_ATTACH) == 0)
			*alone = true;
	} else {
		*alone = r == 0;
	}
	if (r == -EINTR) {
		set_err(err, "%s: interrupted while waiting for the attach lock (another process holds"
		        " it exclusively while it validates the file alone)", q->path);
		return r;
	}
	if (r < 0) {
		set_err(err, "%s: cannot lock: %s", q->lock_path, strerror(-r));
		return r;
	}
	return 0;
}

/*
 * Our role's lock bytes: a producer's the writer's (one producer at a
 * time writes records); all the producers' and all the consumers' for a
 * process that migrates the file, or repairs it; a named producer's or
 * consumer's (*named for a consumer) come with its entry, under the mutex
 * (join_producer, join_named), where it names itself in its entry at once.
 * Nothing is written into a version-1 to 3 file.
 */
static int take_role(struct mmapq *q, const struct mmapq_params *p, bool *named,
                     struct mmapq_error *err)
{
	int r = 0;

	if (q->repair || (q->role == MMAPQ_ROLE_PRODUCER && p->migrate)) {
		/* every producer's byte: none can attach while we read the file
		 * out or repair it (a producer's own comes with its entry:
		 * join_producer) */
		r = take_role_bytes(q, MMAPQ_LOCK_PRODUCER, MMAPQ_PRODUCERS_MAX, NULL, err);
	}
	if (r == 0 && (q->role == MMAPQ_ROLE_CONSUMER || q->repair)) {
		if (q->legacy || p->migrate || q->repair)
			/* every consumer's byte: none can attach while we read the
			 * file out (`mmapqctl recreate`) or repair it */
			r = take_role_bytes(q, MMAPQ_LOCK_CONSUMER, MMAPQ_CONSUMERS_MAX, NULL, err);
		else
			*named = true;
	}
	return r;
}

/*
 * A version-4 producer: find or register our entry by name (under the
 * mutex), take its role byte (-EBUSY naming its holder if a producer of
 * our name is attached) and name ourselves in it at once (*old_pid: the pid
 * to put back if we fail).  Then, the mutex held (0), what a process of
 * our name that died left in the entry is dealt with: a reservation it
 * had not committed is abandoned (reap_locked).  Entries are never freed,
 * so the one found stays ours.  A process alone (mmapq_repair) or reading
 * the file out (migrate) holds every entry's byte and joins none.
 */
static int join_producer(struct mmapq *q, int32_t *old_pid, struct mmapq_error *err)
{
	int r = lock_said(q, err);

	if (r < 0)
		return r;
	r = find_or_register_producer_locked(q, err);
	if (r == 0 && q->early_recoveries) {
		/* a repair our lock just made, counted under the same hold:
		 * a kill before our start would lose it otherwise */
		count(&q->h->producers[q->index].recoveries, q->early_recoveries);
		q->early_recoveries = 0;
	}
	unlock(q);
	if (r < 0)
		return r;
	r = take_role_bytes(q, MMAPQ_LOCK_PRODUCER + (off_t)q->index, 1, &q->h->producers[q->index].pid,
	                    err);
	if (r < 0)
		return r;
	q->prod = &q->h->producers[q->index];
	q->wait_on = &q->prod->room;
	*old_pid = __atomic_load_n(&q->prod->pid, __ATOMIC_RELAXED);
	__atomic_store_n(&q->prod->pid, (int32_t)getpid(), __ATOMIC_RELAXED);
	r = lock_said(q, err);
	if (r == 0 && (r = reap_locked(q)) < 0) {
		unlock(q);
		set_err(err, "%s: cannot write its header: %s", q->path, strerror(-r));
	}
	/* a reservation a process of our name committed (or left open, and
	 * the reap filled) and tail has not passed yet: ours to wait for
	 * (publish) before we take another into the entry */
	if (r == 0 && __atomic_load_n(&q->prod->rsv_state, __ATOMIC_ACQUIRE) == MMAPQ_RSV_COMMITTED)
		q->rsv_committed = true;
	return r;
}

/*
 * Alone (the attach byte ours exclusively): the file is checked whole (a
 * file not closed cleanly, or any file for a repair, frame by frame,
 * salvaged if damaged: salvage.c), the mutex and the wait flags, left over
 * from processes that are gone, are made fresh, and the attach byte is
 * downgraded to shared: from then on others may attach, and they find a
 * fresh mutex.
 */
static int init_alone(struct mmapq *q, struct mmapq_error *err)
{
	/* positions and table as a crash leaves them, before anything is
	 * written: a damaged header is refused untouched, never salvaged */
	int r = validate_dynamic(q, true, err);

	if (r < 0)
		return r;
	/* a skip a producer that died began: finished before anything is
	 * walked, so that the cursor is where the skip put it */
	if (!finish_skips_locked(q)) {
		set_err(err, "%s: a consumer's skip stops at a record that is not in the queue"
		        " (damaged)", q->path);
		return -EBADMSG;
	}
	floor_whole_locked(q);
	r = salvage_alone(q, q->repair, NULL, err);
	if (r < 0)
		return r;
	q->salvaged = (uint64_t)r;
	r = validate_dynamic(q, true, err);
	if (r == 0)
		r = mark_in_use(q, err);
	if (r < 0)
		return r;
	/* the reservations of producers that are gone: what they had not
	 * published is not promised (their publish had not returned) */
	drop_reservations_alone(q);
	r = reinit_sync_alone(q);
	if (r < 0) {
		set_err(err, "%s: cannot initialise the mutex: %s", q->path, strerror(-r));
		return r;
	}
	/* a consumer killed between storing its cursor and floor left floor
	 * low: raise it, as the repair after EOWNERDEAD would (the lock word
	 * reset above replaces that repair) */
	(void)floor_update_locked(q);
	mmapq_fault("attach.alone"); /* the attach lock held exclusively */
	if (q->repair)
		return 0; /* stays alone until it closes */
	r = ofd_lock(q, F_OFD_SETLK, F_RDLCK, MMAPQ_LOCK_ATTACH);
	if (r < 0)
		set_err(err, "%s: cannot downgrade the attach lock: %s", q->path, strerror(-r));
	return r;
}

/*
 * Mutex held, the file valid: where we start (the producer at tail with the
 * room floor leaves it, a consumer at its cursor with what is published),
 * and the attach counted in our side or entry (a named consumer's pid goes
 * there only now: *old_pid is the one it held).
 */
static void start_locked(struct mmapq *q, int32_t *old_pid)
{
	struct pos tail = {load_tail(q), load_tail_byte(q)};

	if (q->role == MMAPQ_ROLE_PRODUCER) {
		/* no reservation yet: the first put takes one (limit == tail) */
		q->published = q->tail = tail;
		q->durable = tail.byte;
		q->limit = tail.byte;
	} else {
		q->head = floor_locked(q);
		if (q->me) {
			/* our cursor, its byte found from our synced cursor (a pair
			 * the mutex keeps whole): a process of ours killed between
			 * storing the cursor's byte and its seq left a byte ahead */
			q->head.seq = __atomic_load_n(&q->me->position, __ATOMIC_RELAXED);
			q->head.byte = __atomic_load_n(&q->me->position_byte, __ATOMIC_RELAXED);
			if (find_record(q, (struct pos){q->me->synced, q->me->synced_byte}, q->head.seq,
			                tail.byte, &q->head.byte) == 0)
				__atomic_store_n(&q->me->position_byte, q->head.byte, __ATOMIC_RELAXED);
		}
		q->walk = q->head;
		q->checked = q->head.seq;
		q->seen_tail = tail.seq;
		q->seen_tail_byte = tail.byte;
	}
	if (q->me && !q->no_register) {
		*old_pid = __atomic_load_n(&q->me->pid, __ATOMIC_RELAXED);
		__atomic_store_n(&q->me->pid, (int32_t)getpid(), __ATOMIC_RELAXED);
		__atomic_store_n(&q->me->attach_position, q->head.seq, __ATOMIC_RELAXED);
		{
			/* no skip is pending under the mutex: the one who
			 * took it after a producer died in one finished it */
			uint64_t sk = __atomic_load_n(&q->me->skipped, __ATOMIC_RELAXED) &
			              ~MMAPQ_SKIP_PENDING;

			q->skipped_before = sk - __atomic_load_n(&q->me->skipped_seen, __ATOMIC_RELAXED);
			__atomic_store_n(&q->me->skipped_seen, sk, __ATOMIC_RELAXED);
		}
		__atomic_store_n(&q->me->start_usec, realtime_usec(), __ATOMIC_RELAXED);
		count(&q->me->attaches, 1);
		/* what a previous holder said of its output is not ours */
		__atomic_store_n(&q->h->outputs[q->index].state, 0, __ATOMIC_RELAXED);
		if (q->early_recoveries)
			count(&q->me->recoveries, q->early_recoveries);
	} else if (q->prod) {
		/* a wait for room that a producer which died waiting left */
		__atomic_store_n(&q->prod->blocked_usec, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&q->prod->start_usec, realtime_usec(), __ATOMIC_RELAXED);
		count(&q->prod->attaches, 1);
		if (q->early_recoveries)
			count(&q->prod->recoveries, q->early_recoveries);
	}
}

/*
 * A producer's or consumer's attach ("Attach protocol" in mmapq_format.h):
 * the attach byte, the file mapped and checked, the role taken, the file
 * checked whole and the mutex made fresh by whoever is alone, our entry
 * joined (a named consumer) or the mutex taken, the positions checked
 * under it, and our start recorded.  A version-1 to 3 file (opened to
 * migrate it) only has its roles taken and its records checked.  On
 * failure the pid we wrote is put back; close releases the rest.
 */
int attach(struct mmapq *q, const struct mmapq_params *p, struct mmapq_error *err)
{
	bool alone = false, named = false;
	int32_t old_pid = 0;
	int r;

	r = open_lock_file(q, err);
	if (r == 0)
		r = take_attach_lock(q, &alone, err);
	if (r == 0 && q->repair && !alone) {
		set_err(err, "%s: in use (a producer, consumer or mmapqctl is attached); stop them"
		        " first", q->path);
		r = -EBUSY;
	}
	if (r == 0)
		r = map_validated(q, p, err);
	if (r == 0)
		r = take_role(q, p, &named, err);
	if (r == 0 && q->legacy) {
		r = legacy_attach(q, err);
		/* a file that is only read has nothing to re-initialise: the
		 * attach byte goes back to shared at once, or the other role
		 * (`mmapqctl recreate` takes both) would wait for it for good */
		if (r == 0 && alone && (r = ofd_lock(q, F_OFD_SETLK, F_RDLCK, MMAPQ_LOCK_ATTACH)) < 0)
			set_err(err, "%s: cannot downgrade the attach lock: %s", q->path, strerror(-r));
		return r;
	}
	if (r < 0)
		goto fail;
	q->alone = alone;
	if (alone && (r = init_alone(q, err)) < 0)
		goto fail;
	q->alone = false;
	if (named)
		r = join_named(q, err);
	else if (q->role == MMAPQ_ROLE_PRODUCER && !q->repair && !p->migrate)
		r = join_producer(q, &old_pid, err);
	else
		r = lock_said(q, err);
	if (r < 0)
		goto fail;
	/* not alone, the file is stable only now, under the mutex */
	if (!alone && (r = validate_dynamic(q, true, err)) < 0) {
		unlock(q);
		goto fail;
	}
	start_locked(q, &old_pid);
	unlock(q);
	if (q->me && !q->no_register && (r = catch_up_synced(q)) < 0) {
		if (r == -EINTR)
			lock_failed(q, r, err);
		else
			set_err(err, "%s: cannot write its header: %s", q->path, strerror(-r));
		goto fail;
	}

	/* The consumer never writes into the ring: make that a hardware
	 * guarantee. */
	if (q->role == MMAPQ_ROLE_CONSUMER && MMAPQ_HEADER_SIZE % sysconf(_SC_PAGESIZE) == 0 &&
	    mprotect(q->ring, q->map_size - MMAPQ_HEADER_SIZE, PROT_READ) < 0) {
		r = neg_errno();
		set_err(err, "%s: cannot protect the ring: %s", q->path, strerror(-r));
		goto fail;
	}
	q->attached = true;
	return 0;
fail:
	if (q->prod)
		__atomic_store_n(&q->prod->pid, old_pid, __ATOMIC_RELAXED);
	else if (q->me && !q->no_register && old_pid)
		__atomic_store_n(&q->me->pid, old_pid, __ATOMIC_RELAXED);
	return r;
}

/*
 * A producer's or consumer's close of a version-4 file: if nobody else is
 * attached (the attach byte ours exclusively, without waiting), everything
 * is written to disk and the file marked clean (mmapq_format.h, "Clean
 * close, and salvage"), so that the next process alone need not walk it.
 * Otherwise the last one to leave does it (and nobody whose attach was
 * refused: the file stays as it was).  Our shared lock goes first:
 * of processes closing at the same instant, each asking for the byte
 * while still holding its own share, none would get it and the file would
 * stay unclean; dropped first, whoever asks last finds the others gone.
 */
void detach(struct mmapq *q)
{
	/* not after a refused attach: a file refused is left as it was */
	if (q->legacy || q->lock_fd < 0 || !q->h || !q->attached || (!q->prod && !q->me && !q->repair))
		return;
	if (!q->repair)
		(void)ofd_lock(q, F_OFD_SETLK, F_UNLCK, MMAPQ_LOCK_ATTACH);
	if (ofd_lock(q, F_OFD_SETLK, F_WRLCK, MMAPQ_LOCK_ATTACH) < 0)
		return;
	if (sync_bytes(q->h, q->map_size) < 0)
		return; /* not on disk: the next process walks the file */
	q->h->state.clean = 1;
	(void)sync_header(q);
}

int observe(struct mmapq *q, const struct mmapq_params *p, struct mmapq_error *err)
{
	struct pos floor, t;
	uint64_t tail, tail_byte;
	int r = map_validated(q, p, err);

	if (r < 0)
		return r;
	open_lock_file_observer(q);
	if (q->legacy)
		return legacy_observe(q, err);
	q->prev.seq = UINT64_MAX;
	r = snapshot_positions(q, &floor, &t);
	if (r < 0) {
		set_err(err, "%s: positions keep changing; try again", q->path);
		return r;
	}
	tail = t.seq;
	tail_byte = t.byte;
	if (floor.seq > tail || floor.byte > tail_byte || tail_byte - floor.byte > q->size ||
	    tail - floor.seq > (tail_byte - floor.byte) / MMAPQ_FRAME_ALIGN ||
	    floor.byte % MMAPQ_FRAME_ALIGN || tail_byte % MMAPQ_FRAME_ALIGN) {
		set_err(err, "%s: positions out of bounds: oldest record %" PRIu64 " at byte %" PRIu64
		        ", tail %" PRIu64 " at byte %" PRIu64 ", ring %" PRIu64 " bytes", q->path,
		        floor.seq, floor.byte, tail, tail_byte, q->size);
		return -EBADMSG;
	}
	return observe_table(q, err);
}
