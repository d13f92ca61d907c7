/* SPDX-License-Identifier: MIT */
/*
 * mmapq.c -- the queue: create/attach, validation, recovery, produce and
 * consume in batches.  The layout and the synchronisation design are in
 * mmapq_format.h; the API contract in mmapq.h.
 *
 * Crash analysis.  Every critical section changes shared state with single
 * aligned 64-bit stores, so a SIGKILL can stop it only between two of them:
 *   publish  (producer):  slot contents are written OUTSIDE the mutex
 *            (mmapq_put, mmapq_put_many: plain stores into slots beyond the
 *            published tail, which no reader looks at), then under it:
 *            store-release tail, signal not_empty.  Killed before
 *            the tail store: the batch was never published; the next
 *            producer starts at the stored tail and overwrites those slots
 *            (rolled back; the records were never acknowledged to anyone).
 *            Killed after it: the batch is published and complete; only the
 *            wake-up may be missing, which the unconditional wake after
 *            recovery (or the 0.5 s wait slice) makes up for.
 *   release  (consumer):  records are read (mmapq_get, mmapq_get_many:
 *            loads only) and written out OUTSIDE the mutex, then under it:
 *            store-release of its cursor; if it was the slowest, floor
 *            recomputed and stored (release), signal not_full.
 *            Killed before the cursor store: the batch is consumed again
 *            by that consumer's next process (at-least-once: the documented
 *            replay window is the one batch being written out; the other
 *            consumers are not affected).  Killed between the cursor and
 *            the floor store: floor is lower than it could be, which only
 *            holds the producer back until the repair recomputes it.
 *   register / remove (consumer table, mutex held): a registration fills
 *            the zeroed entry, then stores state = REGISTERED (release):
 *            killed before that, the entry is still free.  A removal
 *            stores state = FREE first, then floor: killed between them,
 *            floor is too low, repaired as above.
 *   wait:    a waiter leaves at most waiting = 1 behind (one spare wake-up).
 * So the repair on EOWNERDEAD is: check floor <= tail <= floor + capacity
 * and floor <= cursor <= tail for every registered consumer (any other
 * state is corruption, not a crash, and is refused), mark the mutex
 * consistent, recompute floor, count the recovery, wake every side once.
 */
#include "mmapq.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "mmapq_format.h"
#include "shmcond.h"

/* Looks at the lock word (each followed by a pause, and by a trylock when
 * the word is free) before a blocking lock of the mutex: a few microseconds
 * of pauses, about the longest critical section (one that makes a
 * FUTEX_WAKE system call).  See mmapq_mutex_lock() in shmcond.c. */
#define MMAPQ_LOCK_SPINS 200u

struct mmapq {
	char *path;
	int fd;
	char *lock_path;            /* path + MMAPQ_LOCK_SUFFIX */
	int lock_fd;                /* the lock file, -1 if the observer cannot open it */
	enum mmapq_role role;
	enum mmapq_sync sync;
	struct mmapq_header *h;
	struct mmapq_header_v2 *h2; /* the same mapping, for a version-1/2 file */
	uint8_t *slots;
	size_t map_size;
	uint32_t capacity, mask, record_size, slot_size, format;
	uint32_t version;           /* the file's: MMAPQ_VERSION, or MMAPQ_VERSION_1 (read only) */
	bool int_slots;             /* struct mmapq_int_slot (format int, version >= 2) */
	bool legacy;                /* a version-1/2 file, read as it is (migrate, observer) */
	uint32_t max_consumers;     /* the consumer table's size (version 3) */
	/* Our role's state: the producer's side (or a legacy file's consumer
	 * side), or our entry of the consumer table (version 3). */
	struct mmapq_side *self;    /* producer; legacy consumer; NULL otherwise */
	struct mmapq_consumer *me;  /* consumer of a version-3 file */
	uint64_t *cursor;           /* consumer: &me->position, or the legacy head */
	struct mmapq_cond *wait_on; /* the cond we sleep on */
	/* consumer (version 3): who we are and how we register */
	char name[MMAPQ_CONSUMER_NAME_MAX + 1];
	uint32_t index;             /* our entry */
	enum mmapq_start start;
	bool no_register;           /* mmapq_consumer_remove: find the entry, never add one */
	uint32_t early_recoveries;  /* consumer: repairs made before our entry was known */
	uint32_t spin_us;           /* look before sleeping (mmapq_params.spin_us) */
	bool (*interrupted)(void *ctx); /* mmapq_params.interrupted, may be NULL */
	void *interrupted_ctx;
	unsigned lock_spins;        /* trylocks before blocking on the mutex */

	/* producer: slots [published, tail) are written but not yet published;
	 * we may fill up to limit (= a head we have seen + capacity) unlocked. */
	uint64_t published, tail, limit;
	/* consumer: [head, seen_tail) are available to read unlocked. */
	uint64_t head, seen_tail;
};

/* -errno after a failed call; never 0, whatever the call did to errno */
static int neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

static void set_err(struct mmapq_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct mmapq_error *err, const char *fmt, ...)
{
	va_list ap;
	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

uint64_t mmapq_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t realtime_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const char *mmapq_strerror(int code)
{
	switch (-code) {
	case EBADMSG:
		return "not a valid mmapq queue file";
	case EPROTO:
		return "queue file does not match the configuration";
	case EBUSY:
		return "role already held by another process";
	case ETIMEDOUT:
		return "deadline reached";
	case ENOTRECOVERABLE:
		return "queue state cannot be recovered";
	case ESTALE:
		return "the queue file was deleted or replaced while in use";
	case 0:
		return "success";
	default: {
		const char *s = strerrordesc_np(-code);
		return s ? s : "unknown error";
	}
	}
}

const char *mmapq_format_name(uint32_t format)
{
	switch (format) {
	case MMAPQ_FORMAT_INT:
		return "int";
	case MMAPQ_FORMAT_LINE:
		return "line";
	default:
		return "unknown";
	}
}

static bool is_pow2(uint32_t v);

uint64_t mmapq_file_size(uint32_t format, uint32_t capacity, uint32_t record_size)
{
	if ((format != MMAPQ_FORMAT_INT && format != MMAPQ_FORMAT_LINE) || !is_pow2(capacity) ||
	    capacity < MMAPQ_CAPACITY_MIN || capacity > MMAPQ_CAPACITY_MAX ||
	    record_size < MMAPQ_RECORD_SIZE_MIN || record_size > MMAPQ_RECORD_SIZE_MAX)
		return 0;
	return (uint64_t)MMAPQ_HEADER_SIZE + (uint64_t)capacity * mmapq_slot_size(format, record_size);
}

const char *mmapq_path(const struct mmapq *q)
{
	return q->path;
}

static int header_check(void *ctx);

int mmapq_check(const struct mmapq *q)
{
	struct stat a, b;

	if (header_check((void *)q) < 0)
		return -EBADMSG;
	if (fstat(q->fd, &a) < 0)
		return neg_errno();
	if (stat(q->path, &b) < 0)
		return errno == ENOENT ? -ESTALE : -errno;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino ? 0 : -ESTALE;
}

static const char *role_name(enum mmapq_role r)
{
	return r == MMAPQ_ROLE_PRODUCER ? "producer" : r == MMAPQ_ROLE_CONSUMER ? "consumer" : "observer";
}

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* A name a consumer table entry may hold: 1 to MMAPQ_CONSUMER_NAME_MAX
 * characters of MMAPQ_CONSUMER_NAME_CHARS.  Older versions registered
 * names starting with '-' too, so a file may hold one: it stays valid,
 * and removable, though no new consumer may take such a name. */
static bool name_in_table_valid(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	return len >= 1 && len <= MMAPQ_CONSUMER_NAME_MAX &&
	       strspn(name, MMAPQ_CONSUMER_NAME_CHARS) == len;
}

/* A name a consumer may take: as above, and not starting with '-', which
 * every command line would read as an option. */
bool mmapq_consumer_name_valid(const char *name)
{
	return name_in_table_valid(name) && name[0] != '-';
}

/* Our recoveries (like our pid, attaches and start time) live in our side
 * (producer, legacy consumer) or in our table entry (version-3 consumer). */
static uint64_t *recoveries_word(const struct mmapq *q)
{
	return q->me ? &q->me->recoveries : q->self ? &q->self->recoveries : NULL;
}

static struct mmapq_slot *slot_at(const struct mmapq *q, uint64_t seq)
{
	return (struct mmapq_slot *)(q->slots + (size_t)(seq & q->mask) * q->slot_size);
}

static struct mmapq_int_slot *int_slot_at(const struct mmapq *q, uint64_t seq)
{
	return (struct mmapq_int_slot *)q->slots + (seq & q->mask);
}

/* ---- OFD locks -------------------------------------------------------- */

static bool interrupted(const struct mmapq *q);

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

/* ---- msync --------------------------------------------------------------- */

/* msync(MS_SYNC) of the pages holding [p, p + len): 0 or -errno (EIO: the
 * file system could not write them back, ENOSPC, ...). */
static int sync_bytes(const void *p, size_t len)
{
	static long pagesize;
	uintptr_t start, end;

	if (!pagesize)
		pagesize = sysconf(_SC_PAGESIZE);
	start = (uintptr_t)p & ~((uintptr_t)pagesize - 1);
	end = (uintptr_t)p + len;
	return msync((void *)start, end - start, MS_SYNC) < 0 ? neg_errno() : 0;
}

/* Slots for sequence numbers [from, to) and then the header; stops at the
 * first error. */
static int sync_slots(const struct mmapq *q, uint64_t from, uint64_t to)
{
	int r;

	while (from < to) {
		uint64_t idx = from & q->mask;
		uint64_t n = to - from;
		if (n > q->capacity - idx)
			n = q->capacity - idx;
		r = sync_bytes(slot_at(q, from), (size_t)n * q->slot_size);
		if (r < 0)
			return r;
		from += n;
	}
	return sync_bytes(q->h, sizeof(*q->h));
}

/* ---- mutex and recovery ---------------------------------------------------- */

/* The oldest record kept: version 3's floor, version 1 and 2's head (the
 * same offset). */
static uint64_t load_floor(const struct mmapq *q)
{
	/* acquire: pairs with the store-release of floor (a consumer's
	 * release or registration, a removal, a repair), which comes after the
	 * slowest consumer's reads of the slots below it */
	return __atomic_load_n(&q->h->floor.floor, __ATOMIC_ACQUIRE);
}

static uint64_t load_tail(const struct mmapq *q)
{
	/* acquire: pairs with the producer's release store of tail, so the
	 * slot contents written before it are visible */
	return __atomic_load_n(&q->h->producer.position, __ATOMIC_ACQUIRE);
}

/*
 * head and tail as one consistent pair without the mutex (observer): tail
 * read between two equal reads of head was read while head stood still, so
 * head <= tail <= head + capacity holds for the pair unless the file is
 * corrupt.
 */
static int snapshot_positions(const struct mmapq *q, uint64_t *head, uint64_t *tail)
{
	for (int i = 0; i < 1000; i++) {
		uint64_t h1 = load_floor(q), t = load_tail(q), h2 = load_floor(q);
		if (h1 != h2)
			continue;
		if (h1 > t || t - h1 > q->capacity)
			return -EBADMSG;
		*head = h1;
		*tail = t;
		return 0;
	}
	return -EAGAIN;
}

static void count(uint64_t *field, uint64_t n)
{
	/* single writer (the role owner); atomic so readers never see tearing */
	__atomic_fetch_add(field, n, __ATOMIC_RELAXED);
}

static bool registered(const struct mmapq_consumer *c)
{
	/* relaxed under the mutex (every store of state is made under it);
	 * acquire for observers: pairs with the store-release of state */
	return __atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == MMAPQ_CONSUMER_REGISTERED;
}

/*
 * Mutex held, version 3: floor raised to the lowest cursor of the
 * registered consumers, if that is higher (never lowered: a cursor below
 * floor is corruption).  With nobody registered floor stays (the records
 * wait for the next consumer).  true if it moved: the producer may have
 * room now.  The cursors are read relaxed: each was stored under the mutex
 * we hold.  The release store pairs with the producer's acquire of floor
 * (refresh_limit): the consumers' reads of the slots below the new floor
 * happened before their unlock, our lock, and this store.
 */
static bool floor_update_locked(struct mmapq *q)
{
	uint64_t min = UINT64_MAX, floor = __atomic_load_n(&q->h->floor.floor, __ATOMIC_RELAXED);

	for (uint32_t i = 0; i < q->max_consumers; i++) {
		const struct mmapq_consumer *c = &q->h->consumers[i];
		uint64_t pos;

		if (!registered(c))
			continue;
		pos = __atomic_load_n(&c->position, __ATOMIC_RELAXED);
		if (pos < min)
			min = pos;
	}
	if (min == UINT64_MAX || min <= floor)
		return false;
	__atomic_store_n(&q->h->floor.floor, min, __ATOMIC_RELEASE);
	return true;
}

/* Mutex held: wake every registered consumer that waits (only those: a
 * free entry's flag is cleared when it is removed). */
static void signal_consumers_locked(struct mmapq *q, bool always)
{
	if (q->legacy) {
		struct mmapq_cond *c = &q->h2->not_empty;
		always ? mmapq_cond_broadcast(c) : mmapq_cond_signal(c);
		return;
	}
	for (uint32_t i = 0; i < q->max_consumers; i++) {
		struct mmapq_consumer *c = &q->h->consumers[i];

		/* the wait flag first: the producer reads the line a consumer
		 * writes only when it goes to sleep, not its busy line 0 */
		if (!always && !__atomic_load_n(&c->not_empty.waiting, __ATOMIC_RELAXED))
			continue;
		if (!registered(c))
			continue;
		always ? mmapq_cond_broadcast(&c->not_empty) : mmapq_cond_signal(&c->not_empty);
	}
}

/* Positions a crash can leave (see "Crash analysis"): floor <= tail <=
 * floor + capacity, and floor <= cursor <= tail for every registered
 * consumer. */
static bool positions_sane(const struct mmapq *q)
{
	uint64_t floor = load_floor(q), tail = load_tail(q);

	if (floor > tail || tail - floor > q->capacity)
		return false;
	for (uint32_t i = 0; !q->legacy && i < q->max_consumers; i++) {
		const struct mmapq_consumer *c = &q->h->consumers[i];
		uint64_t pos = __atomic_load_n(&c->position, __ATOMIC_ACQUIRE);
		if (registered(c) && (pos < floor || pos > tail))
			return false;
	}
	return true;
}

/* A repair made by us, counted in our side or entry.  A consumer that is
 * still attaching (mutex held, or alone) finds its entry by name; one not
 * registered yet counts it once it is (early_recoveries). */
static void count_recovery_locked(struct mmapq *q)
{
	uint64_t *rec = recoveries_word(q);

	for (uint32_t i = 0; !rec && q->role == MMAPQ_ROLE_CONSUMER && !q->legacy &&
	                     i < q->max_consumers; i++)
		if (registered(&q->h->consumers[i]) &&
		    !strncmp(q->h->consumers[i].name, q->name, sizeof(q->name)))
			rec = &q->h->consumers[i].recoveries;
	if (rec)
		count(rec, 1);
	else if (q->role == MMAPQ_ROLE_CONSUMER)
		q->early_recoveries++;
}

/* Called with the mutex held after EOWNERDEAD; see "Crash analysis". */
static int recover_locked(struct mmapq *q)
{
	mmapq_fault("recover.locked");
	if (!positions_sane(q)) {
		/* Not a state a crash can leave: unlocking without
		 * pthread_mutex_consistent makes the mutex ENOTRECOVERABLE for
		 * everyone, which is what a corrupt file deserves. */
		pthread_mutex_unlock(&q->h->lock.mutex);
		return -ENOTRECOVERABLE;
	}
	pthread_mutex_consistent(&q->h->lock.mutex);
	count_recovery_locked(q);
	/* The dead owner may have stored a cursor without floor, or a
	 * position without waking the side that waits for it. */
	if (!q->legacy)
		(void)floor_update_locked(q);
	signal_consumers_locked(q, true);
	mmapq_cond_broadcast(&q->h->not_full);
	return 0;
}

/* How lock() and the waits take the mutex (shmcond.h): between blocking
 * slices they ask the caller's interrupted callback and check the header. */
static struct mmapq_lock lock_of(struct mmapq *q)
{
	return (struct mmapq_lock){&q->h->lock.mutex, q->lock_spins, header_check, q,
	                           q->interrupted, q->interrupted_ctx};
}

static bool interrupted(const struct mmapq *q)
{
	return q->interrupted && q->interrupted(q->interrupted_ctx);
}

/* 0: the mutex is held.  < 0 (-EINTR when interrupted): it is not. */
static int lock(struct mmapq *q)
{
	struct mmapq_lock lk = lock_of(q);
	int r = mmapq_mutex_lock(&lk);
	if (r == -EOWNERDEAD)
		return recover_locked(q);
	return r;
}

static void unlock(struct mmapq *q)
{
	pthread_mutex_unlock(&q->h->lock.mutex);
}

/* Wait on our cond with the mutex held.  0: mutex held, re-check the
 * predicate; < 0: the mutex is released and the error returned. */
static int wait_locked(struct mmapq *q, uint64_t deadline_ns)
{
	struct mmapq_lock lk = lock_of(q);
	int r = mmapq_cond_wait(q->wait_on, &lk, deadline_ns);

	/* 0 and -EOWNERDEAD come back with the mutex held, all else without
	 * (shmcond.h) */
	return r == -EOWNERDEAD ? recover_locked(q) : r;
}

static int init_mutex(struct mmapq_header *h)
{
	pthread_mutexattr_t a;
	int r;

	r = pthread_mutexattr_init(&a);
	if (r)
		return -r;
	r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (!r)
		r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	if (!r)
		r = pthread_mutex_init(&h->lock.mutex, &a);
	pthread_mutexattr_destroy(&a);
	return -r;
}

/*
 * Nobody else is attached (we hold the attach lock exclusively): whatever
 * the lock word and wait flags say is left over from processes that are
 * gone.  A lock word that is not 0 was held by one of them, whether the
 * kernel saw it die (FUTEX_OWNER_DIED) or not (reboot, power cut, a copied
 * file): a recovery.  Then start from a fresh mutex either way.
 *
 * The mutex bytes are only read here, never handed to pthread: they come
 * from the file, and glibc trusts a mutex's type word, so a file whose
 * mutex claims to be priority-protect with a bad ceiling, or
 * priority-inheritance and not robust with the owner-died bit set, made
 * pthread_mutex_trylock abort the process on an assertion (found by
 * tests/fuzz/fuzz_queue_file).  The first word of glibc's pthread_mutex_t
 * is the futex word of the kernel's robust-futex ABI (owner TID |
 * FUTEX_OWNER_DIED | FUTEX_WAITERS), 0 when unlocked.
 */
#ifdef __GLIBC__
_Static_assert(offsetof(pthread_mutex_t, __data.__lock) == 0, "the futex word starts the mutex");
#endif
static int reinit_sync_alone(struct mmapq *q)
{
	uint32_t word;

	memcpy(&word, &q->h->lock, sizeof(word));
	if (word != 0)
		count_recovery_locked(q); /* alone: as good as the mutex */
	if (q->legacy)
		mmapq_cond_reset(&q->h2->not_empty);
	for (uint32_t i = 0; !q->legacy && i < q->max_consumers; i++)
		mmapq_cond_reset(&q->h->consumers[i].not_empty);
	mmapq_cond_reset(&q->h->not_full);
	return init_mutex(q->h);
}

/* ---- validation ------------------------------------------------------------ */

/* Offset of the first non-zero reserved header byte, or 0 if there is none
 * (offset 0 is the magic, never reserved). */
struct rsv_range {
	size_t off, len;
};

static size_t first_nonzero_in(const uint8_t *b, const struct rsv_range *rsv, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < rsv[i].len; j++)
			if (b[rsv[i].off + j])
				return rsv[i].off + j;
	return 0;
}

/*
 * Version 1 and 2: their reserved fields, except max_consumers (offset 36)
 * and everything from offset 512 on, which an upgrade to version 3 writes
 * first (upgrade_v2_alone): a crash in the middle of it leaves a file that
 * is still a valid version 2, upgraded again by the next process alone.
 */
static size_t first_reserved_nonzero_v2(const struct mmapq_header_v2 *h)
{
#define RSV(f) {offsetof(struct mmapq_header_v2, f), sizeof(((struct mmapq_header_v2 *)0)->f)}
	static const struct rsv_range rsv[] = {
		{offsetof(struct mmapq_header, reserved1), sizeof(((struct mmapq_header *)0)->reserved1)},
		RSV(producer.reserved0), RSV(producer.reserved), RSV(consumer.reserved0),
		RSV(consumer.reserved), RSV(not_empty.reserved), RSV(not_full.reserved),
	};
#undef RSV
	return first_nonzero_in((const uint8_t *)h, rsv, sizeof(rsv) / sizeof(rsv[0]));
}

/* Offset of the first non-zero reserved header byte, or 0 if there is none
 * (offset 0 is the magic, never reserved).  The consumer table's entries
 * past max_consumers are reserved whole. */
static size_t first_reserved_nonzero(const struct mmapq_header *h, uint32_t max_consumers)
{
#define RSV(f) {offsetof(struct mmapq_header, f), sizeof(((struct mmapq_header *)0)->f)}
	static const struct rsv_range rsv[] = {
		RSV(reserved1), RSV(producer.reserved0), RSV(producer.reserved), RSV(floor.reserved),
		RSV(reserved2), RSV(not_full.reserved), RSV(reserved),
	};
#undef RSV
	const uint8_t *b = (const uint8_t *)h;
	size_t bad = first_nonzero_in(b, rsv, sizeof(rsv) / sizeof(rsv[0]));

	for (uint32_t i = 0; !bad && i < MMAPQ_CONSUMERS_MAX; i++) {
		const struct mmapq_consumer *c = &h->consumers[i];
		const struct rsv_range in_use[] = {
			{offsetof(struct mmapq_consumer, reserved0), sizeof(c->reserved0)},
			{offsetof(struct mmapq_consumer, not_empty.reserved), sizeof(c->not_empty.reserved)},
		};
		size_t o = 0;

		if (i < max_consumers) {
			o = first_nonzero_in((const uint8_t *)c, in_use, 2);
		} else {
			/* a whole entry past max_consumers: unused */
			for (size_t j = 0; !o && j < sizeof(*c); j++)
				if (((const uint8_t *)c)[j])
					o = j + 1;
			o = o ? o - 1 : 0;
			if (!o && ((const uint8_t *)c)[0])
				bad = (size_t)((const uint8_t *)c - b);
		}
		if (o)
			bad = (size_t)((const uint8_t *)c - b) + o;
	}
	return bad;
}

/* The fields written once at creation, against the file's real size and
 * what the caller expects. */
static int validate_static(struct mmapq *q, const struct mmapq_params *p, uint64_t real_size,
                           struct mmapq_error *err)
{
	const struct mmapq_header *h = q->h;
	const char *path = q->path;
	uint64_t want;
	size_t bad;

	/* h is set: map_file() returned 0 (the analyser does not follow it) */
	if (memcmp(h->magic, MMAPQ_MAGIC, sizeof(h->magic)) != 0) { // NOLINT(clang-analyzer-core.NonNullParamChecker)
		set_err(err, "%s: not an mmapq queue file (bad magic)", path);
		return -EBADMSG;
	}
	if (h->byte_order != MMAPQ_BYTE_ORDER) {
		set_err(err, "%s: byte order mark is 0x%08" PRIx32 ", expected 0x%08" PRIx32
		        " (file made on a machine of another byte order, or corrupt)",
		        path, h->byte_order, MMAPQ_BYTE_ORDER);
		return -EBADMSG;
	}
	if (h->version != MMAPQ_VERSION && h->version != MMAPQ_VERSION_1 &&
	    h->version != MMAPQ_VERSION_2) {
		set_err(err, "%s: format version is %" PRIu32 ", this program reads version %" PRIu32
		        " (and versions %" PRIu32 " and %" PRIu32 " to migrate them)", path, h->version,
		        MMAPQ_VERSION, MMAPQ_VERSION_1, MMAPQ_VERSION_2);
		return -EBADMSG;
	}
	if (h->header_size != MMAPQ_HEADER_SIZE) {
		set_err(err, "%s: header size is %" PRIu32 ", expected %" PRIu32, path, h->header_size,
		        MMAPQ_HEADER_SIZE);
		return -EBADMSG;
	}
	if (h->format != MMAPQ_FORMAT_INT && h->format != MMAPQ_FORMAT_LINE) {
		set_err(err, "%s: record format %" PRIu32 " is unknown (1 = int, 2 = line)", path, h->format);
		return -EBADMSG;
	}
	if (!is_pow2(h->capacity) || h->capacity < MMAPQ_CAPACITY_MIN || h->capacity > MMAPQ_CAPACITY_MAX) {
		set_err(err, "%s: capacity %" PRIu32 " is not a power of two in %" PRIu32 "..%" PRIu32, path,
		        h->capacity, MMAPQ_CAPACITY_MIN, MMAPQ_CAPACITY_MAX);
		return -EBADMSG;
	}
	if (h->record_size < MMAPQ_RECORD_SIZE_MIN || h->record_size > MMAPQ_RECORD_SIZE_MAX) {
		set_err(err, "%s: record size %" PRIu32 " is outside %" PRIu32 "..%" PRIu32, path,
		        h->record_size, MMAPQ_RECORD_SIZE_MIN, MMAPQ_RECORD_SIZE_MAX);
		return -EBADMSG;
	}
	if (h->slot_size != mmapq_slot_size_v(h->version, h->format, h->record_size)) {
		set_err(err, "%s: slot size is %" PRIu32 ", expected %" PRIu32 " for record size %" PRIu32
		        " (format %s, version %" PRIu32 ")", path, h->slot_size,
		        mmapq_slot_size_v(h->version, h->format, h->record_size), h->record_size,
		        mmapq_format_name(h->format), h->version);
		return -EBADMSG;
	}
	want = (uint64_t)h->header_size + (uint64_t)h->capacity * h->slot_size;
	if (h->file_size != want) {
		set_err(err, "%s: header says file size %" PRIu64 ", geometry gives %" PRIu64, path,
		        h->file_size, want);
		return -EBADMSG;
	}
	if (real_size != want) {
		set_err(err, "%s: file is %" PRIu64 " bytes, its header describes %" PRIu64
		        " (truncated or extended)", path, real_size, want);
		return -EBADMSG;
	}
	if (h->version == MMAPQ_VERSION &&
	    (h->max_consumers < MMAPQ_CONSUMERS_MIN || h->max_consumers > MMAPQ_CONSUMERS_MAX)) {
		set_err(err, "%s: max_consumers %" PRIu32 " is outside %" PRIu32 "..%" PRIu32, path,
		        h->max_consumers, MMAPQ_CONSUMERS_MIN, MMAPQ_CONSUMERS_MAX);
		return -EBADMSG;
	}
	bad = h->version == MMAPQ_VERSION ? first_reserved_nonzero(h, h->max_consumers) :
	      first_reserved_nonzero_v2((const struct mmapq_header_v2 *)h);
	if (bad) {
		set_err(err, "%s: reserved header byte at offset %zu is 0x%02x, not zero (corrupt, or a"
		        " newer format)", path, bad, ((const uint8_t *)h)[bad]);
		return -EBADMSG;
	}
	if (h->producer.pid < 0 ||
	    (h->version < MMAPQ_VERSION && ((const struct mmapq_header_v2 *)h)->consumer.pid < 0)) {
		set_err(err, "%s: negative pid in header (%" PRId32 ", %" PRId32 ")", path, h->producer.pid,
		        h->version < MMAPQ_VERSION ? ((const struct mmapq_header_v2 *)h)->consumer.pid : 0);
		return -EBADMSG;
	}
	for (uint32_t i = 0; h->version == MMAPQ_VERSION && i < h->max_consumers; i++) {
		if (h->consumers[i].pid < 0) {
			set_err(err, "%s: negative pid %" PRId32 " in consumer entry %" PRIu32, path,
			        h->consumers[i].pid, i);
			return -EBADMSG;
		}
	}
	/* A version-1 file is only read (see "Versions" in mmapq_format.h). */
	if (h->version == MMAPQ_VERSION_1 && p->role != MMAPQ_ROLE_OBSERVER && !p->migrate) {
		set_err(err, "%s: format version %" PRIu32 " (an older mmapq's); this program uses version"
		        " %" PRIu32 ": stop both daemons and run `mmapqctl recreate`, which carries the"
		        " records over into a version-%" PRIu32 " file (the file is left untouched)", path,
		        h->version, MMAPQ_VERSION, MMAPQ_VERSION);
		return -EPROTO;
	}
	/* Against the configuration (the observer accepts any geometry). */
	if (p->capacity && p->capacity != h->capacity) {
		set_err(err, "%s: capacity is %" PRIu32 " in the file but %" PRIu32
		        " in the configuration (the file is left untouched)", path, h->capacity, p->capacity);
		return -EPROTO;
	}
	if (p->record_size && p->record_size != h->record_size) {
		set_err(err, "%s: record_size is %" PRIu32 " in the file but %" PRIu32
		        " in the configuration (the file is left untouched)", path, h->record_size,
		        p->record_size);
		return -EPROTO;
	}
	if (p->format && p->format != h->format) {
		set_err(err, "%s: format is %s in the file but %s in the configuration"
		        " (the file is left untouched)", path, mmapq_format_name(h->format),
		        mmapq_format_name(p->format));
		return -EPROTO;
	}
	/* A version-2 file has one consumer; an upgrade makes it a table of
	 * the configured size (or the default), so there is nothing to
	 * compare yet. */
	if (p->max_consumers && h->version == MMAPQ_VERSION && p->max_consumers != h->max_consumers) {
		set_err(err, "%s: max_consumers is %" PRIu32 " in the file but %" PRIu32
		        " in the configuration (the file is left untouched)", path, h->max_consumers,
		        p->max_consumers);
		return -EPROTO;
	}
	return 0;
}

/* A consumer table entry as it was read: what validation looks at. */
struct entry_view {
	uint32_t state;
	uint64_t position;
	char name[MMAPQ_CONSUMER_NAME_MAX + 1];
};

/* The first max_consumers entries into v.  Acquire: pairs with the
 * store-release of state (a registration) and of a cursor. */
static void table_read(const struct mmapq *q, struct entry_view *v)
{
	for (uint32_t i = 0; i < q->max_consumers; i++) {
		const struct mmapq_consumer *c = &q->h->consumers[i];

		v[i].state = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
		v[i].position = __atomic_load_n(&c->position, __ATOMIC_ACQUIRE);
		memcpy(v[i].name, c->name, sizeof(v[i].name));
	}
}

/* Version 3's consumer table as read into v: states, names (valid,
 * unique) and cursors (in [floor, tail]) of the registered entries.  Free
 * entries may hold anything a crash in the middle of a registration left
 * (they are zeroed before reuse). */
static int table_check(const struct mmapq *q, const struct entry_view *v, uint64_t floor,
                       uint64_t tail, struct mmapq_error *err)
{
	for (uint32_t i = 0; i < q->max_consumers; i++) {
		const char *name = v[i].name;

		if (v[i].state != MMAPQ_CONSUMER_FREE && v[i].state != MMAPQ_CONSUMER_REGISTERED) {
			set_err(err, "%s: consumer entry %" PRIu32 " has state %" PRIu32
			        " (0 = free, 1 = registered)", q->path, i, v[i].state);
			return -EBADMSG;
		}
		if (v[i].state == MMAPQ_CONSUMER_FREE)
			continue;
		if (name[MMAPQ_CONSUMER_NAME_MAX] || !name_in_table_valid(name)) {
			set_err(err, "%s: consumer entry %" PRIu32 " has no valid name", q->path, i);
			return -EBADMSG;
		}
		for (size_t j = strlen(name); j < sizeof(v[i].name); j++) {
			if (name[j]) {
				set_err(err, "%s: consumer entry %" PRIu32 " has bytes after its name",
				        q->path, i);
				return -EBADMSG;
			}
		}
		for (uint32_t k = 0; k < i; k++) {
			if (v[k].state == MMAPQ_CONSUMER_REGISTERED && !strcmp(v[k].name, name)) {
				set_err(err, "%s: consumer '%s' is registered twice (entries %" PRIu32
				        " and %" PRIu32 ")", q->path, name, k, i);
				return -EBADMSG;
			}
		}
		if (v[i].position < floor || v[i].position > tail) {
			set_err(err, "%s: consumer '%s' is at %" PRIu64 ", outside the queue [%" PRIu64
			        ", %" PRIu64 "]", q->path, name, v[i].position, floor, tail);
			return -EBADMSG;
		}
	}
	return 0;
}

/* The table of a file made stable by the caller (the mutex, or being
 * alone). */
static int validate_table(struct mmapq *q, uint64_t floor, uint64_t tail, struct mmapq_error *err)
{
	struct entry_view v[MMAPQ_CONSUMERS_MAX];

	if (q->legacy)
		return 0;
	table_read(q, v);
	return table_check(q, v, floor, tail, err);
}

/*
 * The table as a reader without the mutex sees it (an observer; any role
 * listing the consumers): registrations and removals may change it while
 * it is read, so it is read twice, and only a pair that agrees on every
 * entry's state and name counts (cursors move all the time: they are
 * checked against floor read before and tail read after, which holds for
 * a cursor read in between, floor and cursors only ever growing).  A
 * change between two reads can make even an agreeing pair look wrong (a
 * removal seen half done), so a file is refused only if several of them
 * do; a corrupt table looks wrong every time.
 */
static int observe_table(const struct mmapq *q, struct mmapq_error *err)
{
	struct entry_view a[MMAPQ_CONSUMERS_MAX], b[MMAPQ_CONSUMERS_MAX];
	int r = 0, wrong = 0;

	if (q->legacy)
		return 0;
	for (int i = 0; i < 1000 && wrong < 3; i++) {
		uint64_t floor = load_floor(q), tail;
		bool agree = true;

		table_read(q, a);
		table_read(q, b);
		tail = load_tail(q);
		for (uint32_t k = 0; agree && k < q->max_consumers; k++)
			agree = a[k].state == b[k].state && !memcmp(a[k].name, b[k].name, sizeof(a[k].name));
		if (!agree)
			continue;
		r = table_check(q, a, floor, tail, err);
		if (r == 0)
			return 0;
		wrong++;
	}
	if (wrong)
		return r;
	set_err(err, "%s: the consumer table keeps changing; try again", q->path);
	return -EAGAIN;
}

/* floor, tail, the consumer table and every slot kept.  Caller makes them
 * stable (the mutex, or being alone). */
static int validate_dynamic(struct mmapq *q, struct mmapq_error *err)
{
	uint64_t head = load_floor(q), tail = load_tail(q);
	int r;

	if (head > tail || tail - head > q->capacity) {
		set_err(err, "%s: positions out of bounds: head %" PRIu64 ", tail %" PRIu64
		        ", capacity %" PRIu32, q->path, head, tail, q->capacity);
		return -EBADMSG;
	}
	r = validate_table(q, head, tail, err);
	if (r < 0)
		return r;
	for (uint64_t s = head; q->int_slots && s < tail; s++) {
		uint64_t seq = int_slot_at(q, s)->seq;
		if (seq != s) {
			set_err(err, "%s: slot %" PRIu64 " holds seq %" PRIu64 ", expected seq %" PRIu64,
			        q->path, s & q->mask, seq, s);
			return -EBADMSG;
		}
	}
	for (uint64_t s = head; !q->int_slots && s < tail; s++) {
		const struct mmapq_slot *sl = slot_at(q, s);
		uint64_t seq = sl->seq;
		uint32_t len = sl->len;
		if (seq != s || len > q->record_size || sl->reserved ||
		    (q->format == MMAPQ_FORMAT_INT && len != sizeof(int64_t))) {
			set_err(err, "%s: slot %" PRIu64 " holds seq %" PRIu64 " length %" PRIu32
			        " reserved %" PRIu32 ", expected seq %" PRIu64 ", length <= %" PRIu32
			        " and reserved 0", q->path, s & q->mask, seq, len, sl->reserved, s,
			        q->format == MMAPQ_FORMAT_INT ? 8u : q->record_size);
			return -EBADMSG;
		}
	}
	return 0;
}

/* ---- the queue id --------------------------------------------------------- */

static bool id_is_zero(const uint8_t *id)
{
	for (size_t i = 0; i < MMAPQ_ID_SIZE; i++)
		if (id[i])
			return false;
	return true;
}

/* 16 random bytes, never all zero (zero means "no id"). */
static int new_id(uint8_t id[MMAPQ_ID_SIZE])
{
	size_t got = 0;

	while (got < MMAPQ_ID_SIZE) {
		ssize_t n = getrandom(id + got, MMAPQ_ID_SIZE - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return neg_errno();
		got += (size_t)n;
	}
	if (id_is_zero(id))
		id[0] = 1; /* one chance in 2^128 */
	return 0;
}

/*
 * A file without an id (all zero: made before ids, or upgraded in place
 * from version 2): give it one.  The mutex is held, so of a producer and
 * consumers attaching at the same time one writes it and the others see
 * it; nobody else writes these bytes, and readers without the mutex
 * (observers) may only see it half written.  Returns 1 if we wrote it (the
 * caller syncs the header page), 0 if it had one, or -errno.
 */
static int assign_id_locked(struct mmapq *q, const struct mmapq_params *p)
{
	uint8_t id[MMAPQ_ID_SIZE];
	int r;

	if (p->migrate || q->legacy || q->version != MMAPQ_VERSION || !id_is_zero(q->h->id))
		return 0; /* only read: an older file, or one being recreated */
	r = new_id(id);
	if (r < 0)
		return r;
	memcpy(q->h->id, id, sizeof(id));
	return 1;
}

/* ---- create ---------------------------------------------------------------- */

/* No geometry at all: join an existing file, whatever its geometry; there is
 * nothing to create one with. */
static bool params_join(const struct mmapq_params *p)
{
	return p->capacity == 0 && p->record_size == 0 && p->format == 0;
}

/* -EINVAL for a name that is not a consumer's: one a consumer may take
 * (mmapq_consumer_name_valid), or with in_table one a table may hold. */
static int name_error(struct mmapq_error *err, const char *path, const char *name, bool in_table)
{
	set_err(err, "%s: '%s' is not a consumer name (1 to %d letters, digits and '_.@-'%s)", path,
	        name, MMAPQ_CONSUMER_NAME_MAX, in_table ? "" : ", not starting with '-'");
	return -EINVAL;
}

/* no_register: the consumer's name need only be one a table may hold
 * (mmapq_consumer_remove of a name an older version registered). */
static int params_check(const struct mmapq_params *p, bool no_register, struct mmapq_error *err)
{
	if (!p || !p->path || !*p->path) {
		set_err(err, "no queue path given");
		return -EINVAL;
	}
	if (p->role != MMAPQ_ROLE_PRODUCER && p->role != MMAPQ_ROLE_CONSUMER &&
	    p->role != MMAPQ_ROLE_OBSERVER) {
		set_err(err, "%s: unknown role %d", p->path, (int)p->role);
		return -EINVAL;
	}
	if (p->max_consumers &&
	    (p->max_consumers < MMAPQ_CONSUMERS_MIN || p->max_consumers > MMAPQ_CONSUMERS_MAX)) {
		set_err(err, "%s: max_consumers %" PRIu32 " is outside %" PRIu32 "..%" PRIu32, p->path,
		        p->max_consumers, MMAPQ_CONSUMERS_MIN, MMAPQ_CONSUMERS_MAX);
		return -EINVAL;
	}
	if (p->role == MMAPQ_ROLE_CONSUMER && p->consumer && *p->consumer &&
	    !(no_register ? name_in_table_valid : mmapq_consumer_name_valid)(p->consumer))
		return name_error(err, p->path, p->consumer, no_register);
	if (p->start != MMAPQ_START_OLDEST && p->start != MMAPQ_START_NEWEST) {
		set_err(err, "%s: unknown start %d", p->path, (int)p->start);
		return -EINVAL;
	}
	if (p->role == MMAPQ_ROLE_OBSERVER || params_join(p))
		return 0;
	if (!is_pow2(p->capacity) || p->capacity < MMAPQ_CAPACITY_MIN || p->capacity > MMAPQ_CAPACITY_MAX) {
		set_err(err, "%s: capacity %" PRIu32 " is not a power of two in %" PRIu32 "..%" PRIu32,
		        p->path, p->capacity, MMAPQ_CAPACITY_MIN, MMAPQ_CAPACITY_MAX);
		return -EINVAL;
	}
	if (p->record_size < MMAPQ_RECORD_SIZE_MIN || p->record_size > MMAPQ_RECORD_SIZE_MAX) {
		set_err(err, "%s: record size %" PRIu32 " is outside %" PRIu32 "..%" PRIu32, p->path,
		        p->record_size, MMAPQ_RECORD_SIZE_MIN, MMAPQ_RECORD_SIZE_MAX);
		return -EINVAL;
	}
	if (p->format != MMAPQ_FORMAT_INT && p->format != MMAPQ_FORMAT_LINE) {
		set_err(err, "%s: unknown record format %" PRIu32, p->path, p->format);
		return -EINVAL;
	}
	if ((uint64_t)MMAPQ_HEADER_SIZE + (uint64_t)p->capacity * mmapq_slot_size(p->format, p->record_size) >
	    MMAPQ_FILE_SIZE_MAX) {
		set_err(err, "%s: capacity %" PRIu32 " x record size %" PRIu32 " exceeds the %" PRIu64
		        "-byte file size limit", p->path, p->capacity, p->record_size, MMAPQ_FILE_SIZE_MAX);
		return -EINVAL;
	}
	return 0;
}

static void fsync_parent_dir(const char *path)
{
	char *dir = strdup(path), *slash;
	int fd;

	if (!dir)
		return;
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(dir);
}

/*
 * Build the whole file under a temporary name in the same directory, then
 * link() it into place: nobody can ever see a half-initialised header, and
 * of two creators racing exactly one link succeeds (the other gets EEXIST,
 * removes its copy and attaches to the winner's file).  posix_fallocate
 * makes a full disk an error here rather than a SIGBUS later.
 */
static int create_file(const struct mmapq_params *p, struct mmapq_error *err)
{
	uint32_t slot_size = mmapq_slot_size(p->format, p->record_size);
	uint64_t size = (uint64_t)MMAPQ_HEADER_SIZE + (uint64_t)p->capacity * slot_size;
	struct mmapq_header *h;
	char *tmp;
	int fd, r;

	if (asprintf(&tmp, "%s.tmp.XXXXXX", p->path) < 0) {
		set_err(err, "%s: out of memory", p->path);
		return -ENOMEM;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = neg_errno();
		set_err(err, "%s: cannot create a temporary file next to it: %s", p->path, strerror(-r));
		free(tmp);
		return r;
	}
	if (fchmod(fd, p->file_mode ? p->file_mode : 0660) < 0) {
		r = neg_errno();
		set_err(err, "%s: cannot set mode %04o: %s", tmp, p->file_mode, strerror(-r));
		goto fail;
	}
	/* a signal handler (the caller's, or its timer) may cut a large
	 * allocation short: the call can simply be made again */
	do
		r = posix_fallocate(fd, 0, (off_t)size);
	while (r == EINTR);
	if (r) {
		r = -r;
		set_err(err, "%s: cannot allocate %" PRIu64 " bytes: %s", p->path, size, strerror(-r));
		goto fail;
	}
	h = mmap(NULL, MMAPQ_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED) {
		r = neg_errno();
		set_err(err, "%s: cannot map the new file: %s", p->path, strerror(-r));
		goto fail;
	}
	memcpy(h->magic, MMAPQ_MAGIC, sizeof(h->magic));
	h->version = MMAPQ_VERSION;
	h->header_size = MMAPQ_HEADER_SIZE;
	h->byte_order = MMAPQ_BYTE_ORDER;
	h->format = p->format;
	h->capacity = p->capacity;
	h->record_size = p->record_size;
	h->slot_size = slot_size;
	h->max_consumers = p->max_consumers ? p->max_consumers : MMAPQ_CONSUMERS_DEFAULT;
	h->file_size = size;
	h->created_usec = realtime_usec();
	r = new_id(h->id);
	if (r == 0)
		r = init_mutex(h);
	if (r == 0 && msync(h, MMAPQ_HEADER_SIZE, MS_SYNC) < 0)
		r = neg_errno();
	munmap(h, MMAPQ_HEADER_SIZE);
	if (r < 0) {
		set_err(err, "%s: cannot initialise the new file: %s", p->path, strerror(-r));
		goto fail;
	}
	if (fsync(fd) < 0) {
		r = neg_errno();
		set_err(err, "%s: cannot write the new file: %s", p->path, strerror(-r));
		goto fail;
	}
	mmapq_fault("create.before_link");
	if (link(tmp, p->path) < 0) {
		r = neg_errno();
		if (r != -EEXIST)
			set_err(err, "%s: cannot create: %s", p->path, strerror(-r));
		goto fail;
	}
	unlink(tmp);
	close(fd);
	free(tmp);
	fsync_parent_dir(p->path);
	return 0;
fail:
	unlink(tmp);
	close(fd);
	free(tmp);
	return r;
}

/* ---- open ------------------------------------------------------------------ */

static int open_file(struct mmapq *q, const struct mmapq_params *p, struct mmapq_error *err)
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
			set_err(err, "%s: does not exist (no capacity, record_size and format were"
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
	if ((uint64_t)st.st_size < MMAPQ_HEADER_SIZE) {
		set_err(err, "%s: file is %" PRIu64 " bytes, smaller than a queue header (%" PRIu32 ")",
		        q->path, (uint64_t)st.st_size, MMAPQ_HEADER_SIZE);
		return -EBADMSG;
	}
	if ((uint64_t)st.st_size > MMAPQ_FILE_SIZE_MAX) {
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

/*
 * The mutex could not be taken for a second.  A live holder may just be
 * slow (stopped in a debugger, say): keep waiting.  But if the identity or
 * geometry in the header changed under us, someone overwrote the file, and
 * its lock word is no longer one any process will release: give up.
 */
static int header_check(void *ctx)
{
	const struct mmapq *q = ctx;
	const struct mmapq_header *h = q->h;

	if (memcmp(h->magic, MMAPQ_MAGIC, sizeof(h->magic)) || h->version != q->version ||
	    h->header_size != MMAPQ_HEADER_SIZE || h->capacity != q->capacity ||
	    h->record_size != q->record_size || h->slot_size != q->slot_size || h->format != q->format)
		return -EBADMSG;
	return 0;
}

/* Map the file, check its header against the parameters, take its
 * geometry: every role's first steps. */
static int map_validated(struct mmapq *q, const struct mmapq_params *p, struct mmapq_error *err)
{
	uint64_t real_size = 0;
	int r = map_file(q, p, err, &real_size);

	if (r < 0)
		return r;
	r = validate_static(q, p, real_size, err);
	if (r < 0)
		return r;
	q->capacity = q->h->capacity;
	q->mask = q->capacity - 1;
	q->record_size = q->h->record_size;
	q->slot_size = q->h->slot_size;
	q->format = q->h->format;
	q->version = q->h->version;
	q->int_slots = q->version >= 2 && q->format == MMAPQ_FORMAT_INT;
	q->slots = (uint8_t *)q->h + q->h->header_size;
	q->h2 = (struct mmapq_header_v2 *)q->h;
	q->legacy = q->version < MMAPQ_VERSION;
	q->max_consumers = q->legacy ? 1 : q->h->max_consumers;
	return 0;
}

/* ---- the lock file ---------------------------------------------------------- */

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
	uint64_t end = mmapq_now_ns() + 100000000u; /* 0.1 s */
	int32_t pid;

	for (;;) {
		pid = __atomic_load_n(word, __ATOMIC_RELAXED);
		if ((pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)) || mmapq_now_ns() >= end)
			return pid;
		sched_yield();
	}
}

/* What a role is called in messages: "producer", "consumer 'NAME'". */
static const char *role_label(const struct mmapq *q, char *buf, size_t size)
{
	if (q->role == MMAPQ_ROLE_CONSUMER && !q->legacy && q->name[0])
		snprintf(buf, size, "consumer '%s'", q->name);
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
		int32_t holder = pid ? role_holder_pid(pid) : 0;
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

/*
 * A version-2 file, and nobody else attached (the attach lock is ours
 * exclusively): make it version 3 in place.  Its one consumer becomes the
 * registered consumer MMAPQ_CONSUMER_DEFAULT at its head (which stays
 * where it is, as floor); no slot moves.  The stores are ordered so that a
 * crash at any point leaves either a valid version 2 (upgraded again by
 * the next process alone: version 2 does not look at offset 36 nor past
 * 512, see first_reserved_nonzero_v2) or the version 3: the table first,
 * then version 2's consumer fields cleared (still a valid version 2), then
 * the version.  The whole header is synced before and after the version.
 */
static int upgrade_v2_alone(struct mmapq *q, const struct mmapq_params *p, struct mmapq_error *err)
{
	struct mmapq_header *h = q->h;
	struct mmapq_header_v2 *h2 = q->h2;
	struct mmapq_consumer c = {0};
	uint32_t max = p->max_consumers ? p->max_consumers : MMAPQ_CONSUMERS_DEFAULT;
	uint64_t head = h2->consumer.position, tail = h2->producer.position;

	if (head > tail || tail - head > q->capacity) {
		set_err(err, "%s: positions out of bounds: head %" PRIu64 ", tail %" PRIu64
		        ", capacity %" PRIu32, q->path, head, tail, q->capacity);
		return -EBADMSG;
	}
	c.position = head;
	c.state = MMAPQ_CONSUMER_REGISTERED;
	c.pid = h2->consumer.pid;
	c.start_usec = h2->consumer.start_usec;
	c.attach_position = head;
	c.registered_usec = h->created_usec;
	c.recoveries = h2->consumer.recoveries;
	c.attaches = h2->consumer.attaches;
	strcpy(c.name, MMAPQ_CONSUMER_DEFAULT);
	/* the table, the id (none yet: attach gives it one) and the tail */
	memset(h->consumers, 0, MMAPQ_HEADER_SIZE - offsetof(struct mmapq_header, consumers));
	h->consumers[0] = c;
	h->max_consumers = max;
	if (sync_bytes(h, sizeof(*h)) < 0)
		goto io;
	mmapq_fault("upgrade.table");
	/* version 2's consumer side but its head (= floor), and its not_empty */
	memset(&h2->consumer.pid, 0, sizeof(h2->consumer) - offsetof(struct mmapq_side, pid));
	memset(&h2->not_empty, 0, sizeof(h2->not_empty));
	__atomic_store_n(&h->version, MMAPQ_VERSION, __ATOMIC_RELEASE);
	if (sync_bytes(h, sizeof(*h)) < 0)
		goto io;
	q->version = MMAPQ_VERSION;
	q->legacy = false;
	q->max_consumers = max;
	return 0;
io:
	{
		int r = neg_errno();
		set_err(err, "%s: cannot upgrade it to format version %" PRIu32 ": %s", q->path,
		        MMAPQ_VERSION, strerror(-r));
		return r;
	}
}

/* Mutex held, version 3: our entry by name (q->index), registering it if
 * it is not there (unless q->no_register): -ENOENT, -ENOSPC (table full). */
static int find_or_register_locked(struct mmapq *q, struct mmapq_error *err)
{
	uint32_t free_idx = UINT32_MAX;

	for (uint32_t i = 0; i < q->max_consumers; i++) {
		struct mmapq_consumer *c = &q->h->consumers[i];
		if (!registered(c)) {
			if (free_idx == UINT32_MAX)
				free_idx = i;
			continue;
		}
		if (!strncmp(c->name, q->name, sizeof(c->name))) {
			q->index = i;
			return 0;
		}
	}
	if (q->no_register) {
		set_err(err, "%s: no consumer named '%s' is registered", q->path, q->name);
		return -ENOENT;
	}
	if (free_idx == UINT32_MAX) {
		set_err(err, "%s: cannot register consumer '%s': all %" PRIu32 " entries of the consumer"
		        " table (max_consumers) are taken; remove one (`mmapqctl consumer remove NAME`)"
		        " or recreate the queue with a larger max_consumers", q->path, q->name,
		        q->max_consumers);
		return -ENOSPC;
	}
	{
		struct mmapq_consumer *c = &q->h->consumers[free_idx];
		uint64_t pos = q->start == MMAPQ_START_NEWEST ? load_tail(q) : load_floor(q);

		/* A crash before the state store leaves a free entry. */
		memset(c, 0, offsetof(struct mmapq_consumer, not_empty));
		memcpy(c->name, q->name, strlen(q->name));
		__atomic_store_n(&c->position, pos, __ATOMIC_RELAXED);
		__atomic_store_n(&c->registered_usec, realtime_usec(), __ATOMIC_RELAXED);
		mmapq_fault("register.filled");
		/* release: an observer that sees REGISTERED sees the name and
		 * position (under the mutex everyone sees them anyway) */
		__atomic_store_n(&c->state, MMAPQ_CONSUMER_REGISTERED, __ATOMIC_RELEASE);
		/* newest, or the first consumer: floor may move up */
		(void)floor_update_locked(q);
		q->index = free_idx;
	}
	return 0;
}

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
			q->cursor = &c->position;
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

static int attach(struct mmapq *q, const struct mmapq_params *p, struct mmapq_error *err)
{
	bool alone = false, named = false;
	int32_t old_pid = 0;
	int r, id_written;

	r = open_lock_file(q, err);
	if (r < 0)
		return r;
	/* Exclusive if nobody else is attached, else shared (waiting, if
	 * needed, only for another process's brief validate-and-reinit). */
	r = ofd_lock(q, F_OFD_SETLK, F_WRLCK, MMAPQ_LOCK_ATTACH);
	if (r == -EAGAIN || r == -EACCES) {
		r = ofd_lock(q, F_OFD_SETLKW, F_RDLCK, MMAPQ_LOCK_ATTACH);
		/* Whoever held it exclusively may have given up (a bad config)
		 * and left: try to upgrade, or we would trust a lock word nobody
		 * re-initialised.  A failed upgrade keeps our shared lock. */
		if (r == 0 && ofd_lock(q, F_OFD_SETLK, F_WRLCK, MMAPQ_LOCK_ATTACH) == 0)
			alone = true;
	} else {
		alone = r == 0;
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
	r = map_validated(q, p, err);
	if (r < 0)
		return r;
	if (q->version == MMAPQ_VERSION_2 && !p->migrate) {
		if (!alone) {
			set_err(err, "%s: format version %" PRIu32 " (an older mmapq's), and in use by"
			        " another process: stop every process attached to it; the first daemon"
			        " started alone then upgrades it to version %" PRIu32 " in place, or"
			        " `mmapqctl recreate` carries the records over into a new file (the file"
			        " is left untouched)", q->path, q->version, MMAPQ_VERSION);
			return -EPROTO;
		}
		/* a file refused stays as it is: check its positions and
		 * slots as version 2 before anything is written */
		r = validate_dynamic(q, err);
		if (r == 0)
			r = upgrade_v2_alone(q, p, err);
		if (r < 0)
			return r;
	}
	if (q->role == MMAPQ_ROLE_PRODUCER) {
		q->self = &q->h->producer;
		q->wait_on = &q->h->not_full;
		r = take_role_bytes(q, MMAPQ_LOCK_PRODUCER, 1, &q->self->pid, err);
	} else if (q->legacy || p->migrate) {
		/* every consumer's byte: none can attach while we read the file
		 * out (`mmapqctl recreate`) */
		if (q->legacy) {
			q->self = &q->h2->consumer;
			q->cursor = &q->h2->consumer.position;
			q->wait_on = &q->h2->not_empty;
		} else {
			q->cursor = &q->h->floor.floor;
			q->wait_on = &q->h->consumers[0].not_empty; /* never waited on: migrate */
		}
		r = take_role_bytes(q, MMAPQ_LOCK_CONSUMER, MMAPQ_CONSUMERS_MAX, q->self ? &q->self->pid :
		                    NULL, err);
	} else {
		named = true; /* the byte comes with the entry, under the mutex below */
	}
	if (r < 0)
		return r;
	/* Name ourselves at once: whoever is refused the role from now on
	 * reports this pid.  Put back if we fail: a refused file stays as is. */
	if (q->self) {
		old_pid = __atomic_load_n(&q->self->pid, __ATOMIC_RELAXED);
		__atomic_store_n(&q->self->pid, (int32_t)getpid(), __ATOMIC_RELAXED);
	}

	if (alone) {
		r = validate_dynamic(q, err);
		if (r < 0)
			goto fail;
		r = reinit_sync_alone(q);
		if (r < 0) {
			set_err(err, "%s: cannot initialise the mutex: %s", q->path, strerror(-r));
			goto fail;
		}
		/* a consumer killed between storing its cursor and floor left
		 * floor low: raise it, as the repair after EOWNERDEAD would (the
		 * lock word reset above replaces that repair) */
		if (!q->legacy)
			(void)floor_update_locked(q);
		mmapq_fault("attach.alone"); /* the attach lock held exclusively */
		/* From here on others may attach; they find a fresh mutex. */
		r = ofd_lock(q, F_OFD_SETLK, F_RDLCK, MMAPQ_LOCK_ATTACH);
		if (r < 0) {
			set_err(err, "%s: cannot downgrade the attach lock: %s", q->path, strerror(-r));
			goto fail;
		}
	}

	r = named ? join_named(q, err) : lock_said(q, err);
	if (r < 0)
		goto fail;
	if (!alone) {
		r = validate_dynamic(q, err);
		if (r < 0) {
			unlock(q);
			goto fail;
		}
	}
	id_written = assign_id_locked(q, p);
	if (id_written < 0) {
		unlock(q);
		r = id_written;
		set_err(err, "%s: cannot make a queue id: %s", q->path, strerror(-r));
		goto fail;
	}
	q->head = q->seen_tail = 0;
	if (q->role == MMAPQ_ROLE_PRODUCER) {
		q->published = q->tail = load_tail(q);
		q->limit = load_floor(q) + q->capacity;
	} else {
		q->head = __atomic_load_n(q->cursor, __ATOMIC_RELAXED);
		q->seen_tail = load_tail(q);
	}
	if (q->me && !q->no_register) {
		old_pid = __atomic_load_n(&q->me->pid, __ATOMIC_RELAXED);
		__atomic_store_n(&q->me->pid, (int32_t)getpid(), __ATOMIC_RELAXED);
		__atomic_store_n(&q->me->attach_position, q->head, __ATOMIC_RELAXED);
		__atomic_store_n(&q->me->start_usec, realtime_usec(), __ATOMIC_RELAXED);
		count(&q->me->attaches, 1);
		if (q->early_recoveries)
			count(&q->me->recoveries, q->early_recoveries);
	} else if (q->self) {
		__atomic_store_n(&q->self->start_usec, realtime_usec(), __ATOMIC_RELAXED);
		count(&q->self->attaches, 1);
	}
	unlock(q);
	/* A new id is on disk before anyone uses it: whatever carried it
	 * (a Nats-Msg-Id) must never be made again with another one. */
	if (id_written && (r = sync_bytes(q->h, MMAPQ_HEADER_SIZE)) < 0 &&
	    q->sync != MMAPQ_SYNC_NEVER) {
		set_err(err, "%s: cannot write its new queue id to disk: %s", q->path, strerror(-r));
		goto fail;
	}

	/* The consumer never writes a slot: make that a hardware guarantee. */
	if (q->role == MMAPQ_ROLE_CONSUMER && MMAPQ_HEADER_SIZE % sysconf(_SC_PAGESIZE) == 0 &&
	    mprotect(q->slots, q->map_size - MMAPQ_HEADER_SIZE, PROT_READ) < 0) {
		r = neg_errno();
		set_err(err, "%s: cannot protect the slots: %s", q->path, strerror(-r));
		goto fail;
	}
	return 0;
fail:
	if (q->self)
		__atomic_store_n(&q->self->pid, old_pid, __ATOMIC_RELAXED);
	else if (q->me && !q->no_register && old_pid)
		__atomic_store_n(&q->me->pid, old_pid, __ATOMIC_RELAXED);
	return r;
}

static int observe(struct mmapq *q, const struct mmapq_params *p, struct mmapq_error *err)
{
	uint64_t head, tail;
	int r = map_validated(q, p, err);
	if (r < 0)
		return r;
	open_lock_file_observer(q);
	r = snapshot_positions(q, &head, &tail);
	if (r == -EBADMSG)
		set_err(err, "%s: positions out of bounds: head %" PRIu64 ", tail %" PRIu64
		        ", capacity %" PRIu32, q->path, load_floor(q), load_tail(q), q->capacity);
	else if (r < 0)
		set_err(err, "%s: positions keep changing; try again", q->path);
	if (r == 0)
		r = observe_table(q, err);
	return r;
}

static int open_handle(const struct mmapq_params *p, bool no_register, struct mmapq **ret,
                       struct mmapq_error *err)
{
	struct mmapq *q;
	int r;

	if (err)
		err->msg[0] = '\0';
	r = params_check(p, no_register, err);
	if (r < 0)
		return r;
	q = calloc(1, sizeof(*q));
	if (!q || !(q->path = strdup(p->path)) ||
	    asprintf(&q->lock_path, "%s%s", p->path, MMAPQ_LOCK_SUFFIX) < 0) {
		if (q)
			free(q->path);
		free(q);
		set_err(err, "%s: out of memory", p->path);
		return -ENOMEM;
	}
	q->fd = q->lock_fd = -1;
	q->role = p->role;
	q->start = p->start;
	q->no_register = no_register;
	if (p->role == MMAPQ_ROLE_CONSUMER && !p->migrate)
		snprintf(q->name, sizeof(q->name), "%s",
		         p->consumer && *p->consumer ? p->consumer : MMAPQ_CONSUMER_DEFAULT);
	q->sync = p->sync;
	q->interrupted = p->interrupted;
	q->interrupted_ctx = p->interrupted_ctx;
	/* Spinning (for the mutex, or spin_us for the peer) only helps if the
	 * other process runs meanwhile: not with a single CPU. */
	q->lock_spins = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? MMAPQ_LOCK_SPINS : 0;
	mmapq_set_spin(q, p->spin_us);
	r = open_file(q, p, err);
	if (r == 0)
		r = p->role == MMAPQ_ROLE_OBSERVER ? observe(q, p, err) : attach(q, p, err);
	if (r < 0) {
		mmapq_close(q);
		return r;
	}
	*ret = q;
	return 0;
}

/*
 * Symbol versions (libmmapq.map).  Two structs of mmapq.h grew in 1.1 (named
 * consumers): struct mmapq_params (consumer, start, max_consumers) and
 * struct mmapq_status (max_consumers, consumers).  A program built against
 * 1.0's mmapq.h links mmapq_open@LIBMMAPQ_1 and mmapq_status@LIBMMAPQ_1,
 * which read and write only 1.0's part of its structs; a program built now
 * links the default versions, @@LIBMMAPQ_1.1.  Only the shared library has
 * versions; the static test library (mmapq_faults) has the new ones alone.
 */
#ifdef MMAPQ_SHARED_LIBRARY
#define OPEN_FN   mmapq_open_v1_1
#define STATUS_FN mmapq_status_v1_1
MMAPQ_API int mmapq_open_v1_1(const struct mmapq_params *p, struct mmapq **ret,
                              struct mmapq_error *err);
MMAPQ_API int mmapq_status_v1_1(struct mmapq *q, struct mmapq_status *st);
__asm__(".symver mmapq_open_v1_1, mmapq_open@@LIBMMAPQ_1.1");
__asm__(".symver mmapq_status_v1_1, mmapq_status@@LIBMMAPQ_1.1");
#else
#define OPEN_FN   mmapq_open
#define STATUS_FN mmapq_status
#endif
/* 1.0's structs ended where these fields begin */
#define PARAMS_V1_SIZE offsetof(struct mmapq_params, consumer)
#define STATUS_V1_SIZE offsetof(struct mmapq_status, max_consumers)

int OPEN_FN(const struct mmapq_params *p, struct mmapq **ret, struct mmapq_error *err)
{
	return open_handle(p, false, ret, err);
}

#ifdef MMAPQ_SHARED_LIBRARY
/* 1.0's mmapq_open: its caller's struct has no consumer fields, which are
 * the default consumer, starting at the oldest record, any table size. */
MMAPQ_API int mmapq_open_v1(const void *p, struct mmapq **ret, struct mmapq_error *err);
__asm__(".symver mmapq_open_v1, mmapq_open@LIBMMAPQ_1");
MMAPQ_API int mmapq_open_v1(const void *p, struct mmapq **ret, struct mmapq_error *err)
{
	struct mmapq_params now = {0};

	if (!p)
		return OPEN_FN(NULL, ret, err);
	memcpy(&now, p, PARAMS_V1_SIZE);
	return OPEN_FN(&now, ret, err);
}
#endif

int mmapq_consumer_remove(const struct mmapq_params *p, struct mmapq_error *err)
{
	struct mmapq_params rp;
	struct mmapq *q = NULL;
	uint64_t pos, tail;
	int r;

	if (err)
		err->msg[0] = '\0';
	/* any name a table may hold (open_handle checks it), so that one an
	 * older version registered can be removed */
	if (!p || !p->consumer || !*p->consumer)
		return name_error(err, p && p->path ? p->path : "", "", true);
	/* our own handle in that consumer's role (its byte held: it is not
	 * attached, and cannot attach until we are done), never registering */
	rp = *p;
	rp.role = MMAPQ_ROLE_CONSUMER;
	rp.capacity = rp.record_size = rp.format = rp.max_consumers = 0;
	rp.migrate = false;
	rp.start = MMAPQ_START_OLDEST;
	r = open_handle(&rp, true, &q, err);
	if (r < 0)
		return r;
	mmapq_fault("remove.attached"); /* the entry's byte held, the mutex not */
	r = lock(q);
	if (r < 0) {
		set_err(err, "%s: cannot lock the queue mutex: %s", q->path, mmapq_strerror(r));
		mmapq_close(q);
		return r;
	}
	pos = __atomic_load_n(&q->me->position, __ATOMIC_RELAXED);
	tail = load_tail(q);
	/* release, as a registration: state first (a crash after it leaves
	 * floor too low, which the repair raises), then floor */
	__atomic_store_n(&q->me->state, MMAPQ_CONSUMER_FREE, __ATOMIC_RELEASE);
	mmapq_fault("remove.freed");
	mmapq_cond_reset(&q->me->not_empty);
	memset(q->me, 0, offsetof(struct mmapq_consumer, not_empty));
	if (!floor_update_locked(q)) {
		bool any = false;
		for (uint32_t i = 0; i < q->max_consumers; i++)
			any |= registered(&q->h->consumers[i]);
		/* the last one: nobody wants the records kept any more */
		if (!any && load_floor(q) != tail)
			__atomic_store_n(&q->h->floor.floor, tail, __ATOMIC_RELEASE);
	}
	mmapq_cond_signal(&q->h->not_full);
	unlock(q);
	q->me = NULL; /* not ours any more: close touches nothing */
	r = q->sync != MMAPQ_SYNC_NEVER ? sync_bytes(q->h, sizeof(*q->h)) : 0;
	mmapq_close(q);
	return r < 0 ? r : (int)(tail - pos);
}

void mmapq_close(struct mmapq *q)
{
	if (!q)
		return;
	if (q->role == MMAPQ_ROLE_PRODUCER && q->h && q->self && q->tail != q->published)
		(void)mmapq_publish(q);
	if (q->h)
		munmap(q->h, q->map_size);
	if (q->lock_fd >= 0)
		close(q->lock_fd); /* drops the OFD locks */
	if (q->fd >= 0)
		close(q->fd);
	free(q->lock_path);
	free(q->path);
	free(q);
}

/* ---- producer ---------------------------------------------------------- */

/* What the slowest registered consumer has released bounds what we may
 * fill: floor read with load-acquire (load_floor; pairs with the
 * store-release of floor, so the consumers' reads of the slots below it
 * are done before we overwrite them).  Called with the mutex held, or
 * without it only when nothing is unpublished (published == tail: it
 * publishes nothing and wakes no one, the mutex-guarded protocol is
 * untouched).  A floor behind or too far ahead of what we published is
 * corruption, not a crash. */
static int refresh_limit(struct mmapq *q)
{
	uint64_t head = load_floor(q);

	if (head > q->published || q->published - head > q->capacity)
		return -EBADMSG;
	q->limit = head + q->capacity;
	return 0;
}

/* Mutex held: make [published, tail) visible and wake every registered
 * consumer that sleeps. */
static void publish_locked(struct mmapq *q)
{
	if (q->tail == q->published)
		return;
	mmapq_fault("publish.locked");
	/* release: the slot contents written before become visible to the
	 * consumers' acquire loads of tail */
	__atomic_store_n(&q->h->producer.position, q->tail, __ATOMIC_RELEASE);
	mmapq_fault("publish.stored");
	signal_consumers_locked(q, false);
}

int mmapq_publish(struct mmapq *q)
{
	uint64_t from = q->published;
	int r;

	if (q->role != MMAPQ_ROLE_PRODUCER)
		return -EPERM;
	if (q->tail == q->published)
		return 0;
	r = lock(q);
	if (r < 0)
		return r;
	publish_locked(q);
	q->published = q->tail;
	r = refresh_limit(q);
	unlock(q);
	if (r < 0)
		return r;
	/* published whatever happens now: an error says it is not durable */
	if (q->sync != MMAPQ_SYNC_NEVER && (r = sync_slots(q, from, q->tail)) < 0)
		return r;
	return (int)(q->tail - from > INT_MAX ? INT_MAX : q->tail - from);
}

/* mmapq_reserve's slow path, the ring full as far as we know: publish
 * what is pending (a full ring of unpublished records would wait for a
 * consumer that cannot see them), then wait under the mutex until the
 * consumer releases a slot or the deadline.  0 with room (q->limit past
 * q->tail); -EAGAIN (deadline 0), -ETIMEDOUT, -EINTR or another error
 * without. */
static int reserve_wait(struct mmapq *q, uint64_t deadline_ns)
{
	bool spun = false;
	int r = lock(q);

	if (r < 0)
		return r;
	publish_locked(q);
	q->published = q->tail;
	for (;;) {
		r = refresh_limit(q);
		if (r < 0 || q->limit != q->tail)
			break;
		if (!deadline_ns) {
			r = -EAGAIN;
			break;
		}
		if (q->spin_us && !spun) {
			/* spin_us: watch floor for a moment, without the
			 * mutex, before registering as a waiter; then re-check
			 * under the mutex as before. */
			spun = true;
			unlock(q);
			mmapq_spin_while_equal(&q->h->floor.floor, q->tail - q->capacity,
			                       (uint64_t)q->spin_us * 1000u, deadline_ns);
			r = refresh_limit(q);
			if (r < 0 || q->limit != q->tail)
				return r;
			r = lock(q);
			if (r < 0)
				return r;
			continue;
		}
		r = wait_locked(q, deadline_ns);
		if (r < 0)
			return r; /* wait_locked gave up the mutex */
	}
	unlock(q);
	return r;
}

int mmapq_reserve(struct mmapq *q, uint64_t deadline_ns, uint32_t *nfree)
{
	uint64_t from = q->published;
	int r;

	if (q->role != MMAPQ_ROLE_PRODUCER)
		return -EPERM;
	if (q->limit == q->tail && q->published == q->tail) {
		/* Nothing to publish: first see whether the consumer released
		 * room, without the mutex. */
		r = refresh_limit(q);
		if (r < 0)
			return r;
	}
	if (q->limit == q->tail) {
		r = reserve_wait(q, deadline_ns);
		/* what was published, whatever else happened: an error says it
		 * is not durable (and wins over -EAGAIN, -ETIMEDOUT, -EINTR) */
		if (q->sync != MMAPQ_SYNC_NEVER && from != q->published) {
			int rs = sync_slots(q, from, q->published);
			if (rs < 0)
				r = rs;
		}
		if (r < 0)
			return r;
	}
	*nfree = (uint32_t)(q->limit - q->tail);
	return 0;
}

int mmapq_put(struct mmapq *q, const void *data, uint32_t len)
{
	int r = mmapq_put_many(q, data, len, 1);

	return r < 0 ? r : 0;
}

/* Records [tail, tail + n) from src (len bytes each) into their slots;
 * the caller checked the room, the length and that they do not wrap. */
static void fill_slots(struct mmapq *q, uint64_t tail, const uint8_t *src, uint32_t len, uint32_t n)
{
	if (q->int_slots) {
		struct mmapq_int_slot *s = int_slot_at(q, tail);
		for (uint32_t i = 0; i < n; i++) {
			s[i].seq = tail + i;
			memcpy(&s[i].value, src + 8 * (size_t)i, sizeof(s[i].value));
			mmapq_fault("put.written");
		}
		return;
	}
	uint8_t *b = (uint8_t *)slot_at(q, tail);
	for (uint32_t i = 0; i < n; i++, b += q->slot_size, src += len) {
		struct mmapq_slot *s = (struct mmapq_slot *)b;
		s->seq = tail + i;
		s->len = len;
		s->reserved = 0;
		if (len == sizeof(uint64_t))
			memcpy(s + 1, src, sizeof(uint64_t));
		else
			memcpy(s + 1, src, len);
		mmapq_fault("put.written");
	}
}

int mmapq_put_many(struct mmapq *q, const void *data, uint32_t len, uint32_t n)
{
	const uint8_t *src = data;
	uint64_t tail = q->tail;
	uint32_t k, done = 0;

	if (q->role != MMAPQ_ROLE_PRODUCER)
		return -EPERM;
	if (q->version != MMAPQ_VERSION)
		return -EROFS; /* opened to migrate it */
	if (len > q->record_size || (q->format == MMAPQ_FORMAT_INT && len != sizeof(int64_t)))
		return -EMSGSIZE;
	if (n == 0)
		return 0;
	if (tail == q->limit)
		return -ENOBUFS;
	k = q->limit - tail < n ? (uint32_t)(q->limit - tail) : n;
	/* The slots are ours: the consumer reads only below the published
	 * tail and we only write below a head it has released.  Slot order
	 * wraps at the end of the ring: at most two runs. */
	while (done < k) {
		uint32_t idx = (uint32_t)(tail & q->mask), run = q->capacity - idx;
		if (run > k - done)
			run = k - done;
		fill_slots(q, tail, src, len, run);
		if (q->sync == MMAPQ_SYNC_ALWAYS) {
			int r = sync_bytes(q->slots + (size_t)idx * q->slot_size, (size_t)run * q->slot_size);
			if (r < 0)
				return r; /* not put: the slots lie beyond tail, nobody reads them */
		}
		tail += run;
		src += (size_t)run * len;
		done += run;
	}
	q->tail = tail;
	return (int)k;
}

uint32_t mmapq_pending(const struct mmapq *q)
{
	return q->role == MMAPQ_ROLE_PRODUCER ? (uint32_t)(q->tail - q->published) : 0;
}

uint64_t mmapq_next_seq(const struct mmapq *q)
{
	return q->tail;
}

void mmapq_set_sync(struct mmapq *q, enum mmapq_sync sync)
{
	q->sync = sync;
}

void mmapq_set_spin(struct mmapq *q, uint32_t spin_us)
{
	q->spin_us = q->lock_spins ? spin_us : 0; /* lock_spins is 0 with one CPU */
}

void mmapq_count_dropped(struct mmapq *q, uint64_t n)
{
	if (q->role == MMAPQ_ROLE_PRODUCER)
		count(&q->self->dropped, n);
}

void mmapq_count_bad_input(struct mmapq *q, uint64_t n)
{
	if (q->self)
		count(&q->self->bad_input, n);
}

/*
 * The consumers cs[0..n) into q's table, as they were in another queue
 * file (`mmapqctl recreate`): all or nothing, each checked before any is
 * written, then registered as a registration is (the entry filled, then
 * state stored with release), in the order given, into the lowest free
 * entries.  The producer role is ours, so tail stands still: the cursors
 * are checked against it and floor, and floor then rises to the lowest.
 */
int mmapq_consumers_restore(struct mmapq *q, const struct mmapq_consumer_status *cs, uint32_t n)
{
	uint32_t idx[MMAPQ_CONSUMERS_MAX], nfree = 0;
	uint64_t floor, tail;
	int r;

	if (q->role != MMAPQ_ROLE_PRODUCER)
		return -EPERM;
	if (q->version != MMAPQ_VERSION)
		return -EROFS; /* opened to migrate it */
	if (n && !cs)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		if (!memchr(cs[i].name, '\0', sizeof(cs[i].name)) || !name_in_table_valid(cs[i].name) ||
		    cs[i].pid < 0)
			return -EINVAL;
		for (uint32_t k = 0; k < i; k++)
			if (!strcmp(cs[k].name, cs[i].name))
				return -EEXIST;
	}
	r = lock(q);
	if (r < 0)
		return r;
	floor = load_floor(q);
	tail = load_tail(q);
	for (uint32_t i = 0; i < q->max_consumers; i++) {
		const struct mmapq_consumer *c = &q->h->consumers[i];

		if (!registered(c)) {
			if (nfree < n)
				idx[nfree++] = i;
			continue;
		}
		for (uint32_t k = 0; k < n; k++)
			if (!strncmp(c->name, cs[k].name, sizeof(c->name)))
				r = -EEXIST;
	}
	for (uint32_t i = 0; r == 0 && i < n; i++)
		if (cs[i].position < floor || cs[i].position > tail)
			r = -ERANGE;
	if (r == 0 && nfree < n)
		r = -ENOSPC;
	for (uint32_t i = 0; r == 0 && i < n; i++) {
		struct mmapq_consumer *c = &q->h->consumers[idx[i]];

		memset(c, 0, offsetof(struct mmapq_consumer, not_empty));
		memcpy(c->name, cs[i].name, strlen(cs[i].name));
		__atomic_store_n(&c->position, cs[i].position, __ATOMIC_RELAXED);
		__atomic_store_n(&c->pid, cs[i].pid, __ATOMIC_RELAXED);
		__atomic_store_n(&c->start_usec, cs[i].start_usec, __ATOMIC_RELAXED);
		__atomic_store_n(&c->attach_position, cs[i].attach_position, __ATOMIC_RELAXED);
		__atomic_store_n(&c->registered_usec, cs[i].registered_usec, __ATOMIC_RELAXED);
		__atomic_store_n(&c->recoveries, cs[i].recoveries, __ATOMIC_RELAXED);
		__atomic_store_n(&c->attaches, cs[i].attaches, __ATOMIC_RELAXED);
		__atomic_store_n(&c->state, MMAPQ_CONSUMER_REGISTERED, __ATOMIC_RELEASE);
	}
	if (r == 0) {
		(void)floor_update_locked(q);
		r = refresh_limit(q);
	}
	unlock(q);
	if (r == 0 && n && q->sync != MMAPQ_SYNC_NEVER)
		r = sync_bytes(q->h, sizeof(*q->h));
	return r;
}

/* ---- consumer ---------------------------------------------------------- */

static int check_tail(struct mmapq *q, uint64_t tail)
{
	if (tail < q->head || tail - q->head > q->capacity)
		return -EBADMSG;
	return 0;
}

int mmapq_available(struct mmapq *q, uint64_t deadline_ns, uint32_t *navail)
{
	uint64_t tail;
	int r;

	if (q->role != MMAPQ_ROLE_CONSUMER)
		return -EPERM;
	if (q->seen_tail == q->head) {
		/* First without the mutex: the acquire load of tail pairs with
		 * the producer's store-release in publish_locked, so the slots
		 * below it are complete and visible.  Then, with spin_us, watch
		 * it for a moment.  Only if nothing came: the mutex, and the
		 * wait protocol exactly as before. */
		tail = load_tail(q);
		if (tail == q->head && q->spin_us && deadline_ns)
			tail = mmapq_spin_while_equal(&q->h->producer.position, q->head,
			                              (uint64_t)q->spin_us * 1000u, deadline_ns);
		if (tail == q->head) {
			r = lock(q);
			if (r < 0)
				return r;
			for (;;) {
				tail = load_tail(q);
				if (tail != q->head)
					break;
				if (!deadline_ns) {
					unlock(q);
					return -EAGAIN;
				}
				r = wait_locked(q, deadline_ns);
				if (r < 0)
					return r;
			}
			unlock(q);
		}
		r = check_tail(q, tail);
		if (r < 0)
			return r;
		q->seen_tail = tail;
	}
	*navail = (uint32_t)(q->seen_tail - q->head);
	return 0;
}

/* The payload of record seq and its length, each field read once (the
 * file is shared, and we check what we use). */
static int check_slot(const struct mmapq *q, uint64_t seq, const void **data, uint32_t *len)
{
	if (q->int_slots) {
		const struct mmapq_int_slot *s = int_slot_at(q, seq);
		if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) != seq)
			return -EBADMSG;
		*data = &s->value;
		*len = sizeof(s->value);
		return 0;
	}
	const struct mmapq_slot *s = slot_at(q, seq);
	uint64_t sseq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
	uint32_t l = __atomic_load_n(&s->len, __ATOMIC_RELAXED);

	if (sseq != seq || l > q->record_size || (q->format == MMAPQ_FORMAT_INT && l != sizeof(int64_t)))
		return -EBADMSG;
	*data = s + 1;
	*len = l;
	return 0;
}

static int read_slot(const struct mmapq *q, uint64_t seq, struct mmapq_record *r)
{
	const void *data;
	uint32_t len;
	int ret = check_slot(q, seq, &data, &len);

	if (ret < 0)
		return ret;
	r->seq = seq;
	r->len = len;
	r->data = data;
	return 0;
}

int mmapq_get(struct mmapq *q, uint32_t index, struct mmapq_record *r)
{
	if (q->role != MMAPQ_ROLE_CONSUMER)
		return -EPERM;
	if ((uint64_t)index >= q->seen_tail - q->head)
		return -ENOENT;
	return read_slot(q, q->head + index, r);
}

/* How many of n records from index on mmapq_get_many and mmapq_copy_many
 * may read: 0 or -errno, *k set.  The records below seen_tail are
 * complete: seen_tail came from an acquire load of tail (mmapq_available,
 * mmapq_release). */
static int many_count(const struct mmapq *q, uint32_t index, uint32_t n, uint32_t *k)
{
	uint64_t avail = q->seen_tail - q->head;

	if (q->role != MMAPQ_ROLE_CONSUMER)
		return -EPERM;
	if ((uint64_t)index >= avail)
		return -ENOENT;
	*k = avail - index < n ? (uint32_t)(avail - index) : n;
	return 0;
}

int mmapq_get_many(struct mmapq *q, uint32_t index, uint32_t n, struct mmapq_record *r)
{
	uint64_t seq = q->head + index;
	uint32_t k = 0, i = 0;
	int ret = many_count(q, index, n, &k);

	if (ret < 0)
		return ret;
	if (q->int_slots) {
		/* a run of slots up to the end of the ring, then from its start */
		while (i < k) {
			const struct mmapq_int_slot *s = int_slot_at(q, seq);
			uint32_t run = q->capacity - (uint32_t)(seq & q->mask), j;
			if (run > k - i)
				run = k - i;
			for (j = 0; j < run; j++) {
				if (__atomic_load_n(&s[j].seq, __ATOMIC_RELAXED) != seq + j)
					break;
				r[i + j] = (struct mmapq_record){seq + j, sizeof(s[j].value), &s[j].value};
			}
			i += j;
			seq += j;
			if (j < run)
				break;
		}
	} else {
		for (; i < k; i++, seq++)
			if (read_slot(q, seq, &r[i]) < 0)
				break;
	}
	return i == 0 && k ? -EBADMSG : (int)i;
}

int mmapq_copy_many(struct mmapq *q, uint32_t index, uint32_t n, void *out, uint32_t len)
{
	uint8_t *o = out;
	uint64_t seq = q->head + index;
	uint32_t k = 0, i = 0;
	int err = many_count(q, index, n, &k);

	if (err < 0)
		return err;
	err = -EBADMSG;
	if (q->int_slots && len == sizeof(int64_t)) {
		while (i < k) {
			const struct mmapq_int_slot *s = int_slot_at(q, seq);
			uint32_t run = q->capacity - (uint32_t)(seq & q->mask), j = 0;
			if (run > k - i)
				run = k - i;
			/* four at a time while all four are right, then one by one */
			for (; j + 4 <= run; j += 4) {
				const struct mmapq_int_slot *f = s + j;
				uint64_t want = seq + j;
				uint8_t *d = o + 8 * (size_t)(i + j);
				if (((__atomic_load_n(&f[0].seq, __ATOMIC_RELAXED) ^ want) |
				     (__atomic_load_n(&f[1].seq, __ATOMIC_RELAXED) ^ (want + 1)) |
				     (__atomic_load_n(&f[2].seq, __ATOMIC_RELAXED) ^ (want + 2)) |
				     (__atomic_load_n(&f[3].seq, __ATOMIC_RELAXED) ^ (want + 3))) != 0)
					break;
				memcpy(d, &f[0].value, 8);
				memcpy(d + 8, &f[1].value, 8);
				memcpy(d + 16, &f[2].value, 8);
				memcpy(d + 24, &f[3].value, 8);
			}
			for (; j < run; j++) {
				if (__atomic_load_n(&s[j].seq, __ATOMIC_RELAXED) != seq + j)
					break;
				memcpy(o + 8 * (size_t)(i + j), &s[j].value, sizeof(s[j].value));
			}
			i += j;
			seq += j;
			if (j < run)
				break;
		}
	} else {
		for (; i < k; i++, seq++) {
			struct mmapq_record r;
			if ((err = read_slot(q, seq, &r)) < 0)
				break;
			if (r.len != len) {
				err = -EMSGSIZE;
				break;
			}
			memcpy(o + (size_t)i * len, r.data, len);
		}
	}
	return i == 0 && k ? err : (int)i;
}

int mmapq_release(struct mmapq *q, uint32_t n)
{
	uint64_t head, tail;
	int r;

	if (q->role != MMAPQ_ROLE_CONSUMER)
		return -EPERM;
	if ((uint64_t)n > q->seen_tail - q->head)
		return -EINVAL;
	if (n == 0)
		return 0;
	head = q->head + n;
	r = lock(q);
	if (r < 0)
		return r;
	mmapq_fault("release.locked");
	/* release: our reads of these slots happen before anyone who sees
	 * the new cursor (the consumer that raises floor from it, under the
	 * mutex; an observer's acquire) */
	__atomic_store_n(q->cursor, head, __ATOMIC_RELEASE);
	mmapq_fault("release.stored");
	/* Only the slowest consumer (cursor was at floor) can move floor: the
	 * others leave the producer alone.  A legacy file's cursor is floor. */
	if (q->legacy || (q->me && q->head == __atomic_load_n(&q->h->floor.floor, __ATOMIC_RELAXED) &&
	                  floor_update_locked(q)))
		mmapq_cond_signal(&q->h->not_full);
	/* Refresh what is available while we hold the lock anyway: when busy,
	 * this is the only lock round-trip per batch. */
	tail = load_tail(q);
	unlock(q);
	q->head = head;
	/* released whatever happens now: an error says the new head is not
	 * durable */
	if (q->sync != MMAPQ_SYNC_NEVER && (r = sync_bytes(q->h, sizeof(*q->h))) < 0)
		return r;
	r = check_tail(q, tail);
	if (r < 0)
		return r;
	if (tail > q->seen_tail)
		q->seen_tail = tail;
	return 0;
}

/* ---- any role ----------------------------------------------------------- */

static void side_status(const struct mmapq *q, const struct mmapq_side *s, off_t byte,
                        struct mmapq_side_status *o)
{
	o->pid = __atomic_load_n(&s->pid, __ATOMIC_RELAXED);
	o->start_usec = __atomic_load_n(&s->start_usec, __ATOMIC_RELAXED);
	o->dropped = __atomic_load_n(&s->dropped, __ATOMIC_RELAXED);
	o->bad_input = __atomic_load_n(&s->bad_input, __ATOMIC_RELAXED);
	o->recoveries = __atomic_load_n(&s->recoveries, __ATOMIC_RELAXED);
	o->attaches = __atomic_load_n(&s->attaches, __ATOMIC_RELAXED);
	/* without the lock file (the observer may not open it): whether the
	 * pid is alive, a guess (a reused pid looks attached) */
	o->attached = q->lock_fd < 0 ? o->pid > 0 && (kill(o->pid, 0) == 0 || errno == EPERM) :
	              ofd_locked_by_other(q->lock_fd, byte) ||
	              (q->role == MMAPQ_ROLE_PRODUCER && byte == MMAPQ_LOCK_PRODUCER) ||
	              (q->role == MMAPQ_ROLE_CONSUMER && q->legacy && byte == MMAPQ_LOCK_CONSUMER);
}

/* Entry i as an observer reads it (no locks). */
static void consumer_status(const struct mmapq *q, uint32_t i, uint64_t tail,
                            struct mmapq_consumer_status *o)
{
	const struct mmapq_consumer *c = &q->h->consumers[i];

	memset(o, 0, sizeof(*o));
	memcpy(o->name, c->name, sizeof(o->name) - 1);
	o->index = i;
	/* acquire: pairs with the consumer's store-release of its cursor */
	o->position = __atomic_load_n(&c->position, __ATOMIC_ACQUIRE);
	o->lag = tail > o->position ? tail - o->position : 0;
	o->pid = __atomic_load_n(&c->pid, __ATOMIC_RELAXED);
	o->start_usec = __atomic_load_n(&c->start_usec, __ATOMIC_RELAXED);
	o->attach_position = __atomic_load_n(&c->attach_position, __ATOMIC_RELAXED);
	o->registered_usec = __atomic_load_n(&c->registered_usec, __ATOMIC_RELAXED);
	o->recoveries = __atomic_load_n(&c->recoveries, __ATOMIC_RELAXED);
	o->attaches = __atomic_load_n(&c->attaches, __ATOMIC_RELAXED);
	o->attached = q->lock_fd < 0 ? o->pid > 0 && (kill(o->pid, 0) == 0 || errno == EPERM) :
	              ofd_locked_by_other(q->lock_fd, MMAPQ_LOCK_CONSUMER + (off_t)i) ||
	              (q->me == c && !q->no_register);
}

/* A legacy file's one consumer, as version 3 would list it. */
static void legacy_consumer_status(const struct mmapq *q, uint64_t tail,
                                   struct mmapq_consumer_status *o)
{
	struct mmapq_side_status s;

	side_status(q, &q->h2->consumer, MMAPQ_LOCK_CONSUMER, &s);
	memset(o, 0, sizeof(*o));
	strcpy(o->name, MMAPQ_CONSUMER_DEFAULT);
	o->position = load_floor(q);
	o->lag = tail > o->position ? tail - o->position : 0;
	o->pid = s.pid;
	o->attached = s.attached;
	o->start_usec = s.start_usec;
	o->attach_position = o->position;
	o->registered_usec = q->h->created_usec;
	o->recoveries = s.recoveries;
	o->attaches = s.attaches;
}

int mmapq_consumers(struct mmapq *q, struct mmapq_consumer_status *out, uint32_t n)
{
	uint64_t tail = load_tail(q);
	uint32_t k = 0;
	int r;

	if (q->legacy) {
		if (n)
			legacy_consumer_status(q, tail, &out[0]);
		return 1;
	}
	r = observe_table(q, NULL);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < q->max_consumers; i++) {
		const struct mmapq_consumer *c = &q->h->consumers[i];
		if (!registered(c))
			continue;
		if (k < n)
			consumer_status(q, i, tail, &out[k]);
		k++;
	}
	return (int)k;
}

int STATUS_FN(struct mmapq *q, struct mmapq_status *st)
{
	struct mmapq_status s = {0};

	s.version = q->h->version;
	s.header_size = q->h->header_size;
	s.capacity = q->capacity;
	s.record_size = q->record_size;
	s.slot_size = q->slot_size;
	s.format = q->format;
	s.file_size = q->h->file_size;
	s.created_usec = q->h->created_usec;
	int r = snapshot_positions(q, &s.head, &s.tail);

	if (r < 0)
		return r;
	side_status(q, &q->h->producer, MMAPQ_LOCK_PRODUCER, &s.producer);
	s.max_consumers = q->max_consumers;
	if (q->legacy) {
		side_status(q, &q->h2->consumer, MMAPQ_LOCK_CONSUMER, &s.consumer);
		s.consumers = 1;
	} else {
		/* the consumer "default" if registered, else the first one */
		struct mmapq_consumer_status c, pick;
		bool have = false;

		memset(&pick, 0, sizeof(pick));
		for (uint32_t i = 0; i < q->max_consumers; i++) {
			if (!registered(&q->h->consumers[i]))
				continue;
			s.consumers++;
			consumer_status(q, i, s.tail, &c);
			if (!have || (strcmp(pick.name, MMAPQ_CONSUMER_DEFAULT) &&
			              !strcmp(c.name, MMAPQ_CONSUMER_DEFAULT)))
				pick = c;
			have = true;
		}
		if (have)
			s.consumer = (struct mmapq_side_status){
				.pid = pick.pid, .attached = pick.attached, .start_usec = pick.start_usec,
				.recoveries = pick.recoveries, .attaches = pick.attaches,
			};
	}
	s.attached_by_pid = q->lock_fd < 0;
	/* written once (under the mutex, which an observer does not take: it
	 * may see an id being given to a file half written); older versions
	 * have none */
	if (!q->legacy && q->version == MMAPQ_VERSION)
		for (size_t i = 0; i < MMAPQ_ID_SIZE; i++)
			s.id[i] = __atomic_load_n(&q->h->id[i], __ATOMIC_RELAXED);
	*st = s;
	return 0;
}

#ifdef MMAPQ_SHARED_LIBRARY
/* 1.0's mmapq_status: its caller's struct ends before max_consumers. */
MMAPQ_API int mmapq_status_v1(struct mmapq *q, void *st);
__asm__(".symver mmapq_status_v1, mmapq_status@LIBMMAPQ_1");
MMAPQ_API int mmapq_status_v1(struct mmapq *q, void *st)
{
	struct mmapq_status now;
	int r = STATUS_FN(q, &now);

	if (r == 0)
		memcpy(st, &now, STATUS_V1_SIZE);
	return r;
}
#endif

/*
 * Seqlock style: the slot is checked, its payload copied out, and only then
 * is head looked at again.  Why the second look suffices: the producer
 * overwrites the slot of seq (with seq + capacity) only after its
 * load-acquire of head has returned a value > seq (refresh_limit), which
 * reads the consumer's store-release of that head (mmapq_release); acquire
 * orders the producer's slot stores after that
 * load.  So if our copy saw any byte of the overwrite, the consumer's head
 * store was visible before it, and the acquire fence below, which keeps our
 * copy's loads before the following load of head, makes that load see it
 * too: head > seq, and the copy is thrown away.  head <= seq after the copy
 * means the slot still held record seq throughout (it was complete before
 * the copy: the load-acquire of tail in snapshot_positions pairs with the
 * producer's store-release of tail in publish_locked).
 */
int mmapq_peek(struct mmapq *q, uint64_t seq, void *buf, uint32_t size, struct mmapq_record *r)
{
	const void *s;
	uint64_t head, tail;
	uint32_t len;
	int ret;

	if (size < q->record_size)
		return -EMSGSIZE;
	ret = snapshot_positions(q, &head, &tail);
	if (ret < 0)
		return ret;
	if (seq < head || seq >= tail)
		return -ENOENT;
	ret = check_slot(q, seq, &s, &len);
	if (ret < 0)
		/* the consumer may have moved on and the producer reused it */
		return load_floor(q) > seq ? -ENOENT : ret;
	memcpy(buf, s, len); /* may race with an overwrite: checked below */
	/* acquire fence: the copy's loads stay before the load of head below
	 * (pairs with the consumer's release store of head, as seen by the
	 * producer's acquire of it before it overwrites the slot) */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
	/* gcc refuses fences under -fsanitize=thread (ThreadSanitizer does
	 * not model them); the TSan build (tests/analyze.sh) never peeks */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
	if (__atomic_load_n(&q->h->floor.floor, __ATOMIC_RELAXED) > seq)
		return -ENOENT; /* consumed meanwhile: the slot may have been reused */
	r->seq = seq;
	r->len = len;
	r->data = buf;
	return 0;
}

uint32_t mmapq_record_size(const struct mmapq *q)
{
	return q->record_size;
}
