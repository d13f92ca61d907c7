/* SPDX-License-Identifier: MIT */
/*
 * queue.h -- what the files of libmmapq share and nobody else sees: the
 * handle (struct mmapq), the small helpers every path uses (inline: the
 * hot paths call them per record or per batch), and what each file offers
 * the others, under the name of the file that defines it.
 *
 * The files (the file format and its synchronisation design are in
 * mmapq_format.h, the API contract in mmapq.h):
 *   handle.c     open and close, status, errors, the symbol versions
 *   attach.c     taking a role: the lock file, the role bytes, joining as a
 *                named consumer, re-initialising when alone; the observer
 *   create.c     a new queue file, built aside and linked into place; ids
 *   validate.c   what a file must be before it is trusted
 *   mutex.c      the robust mutex: waits, the repair after a holder died
 *                (the crash analysis), the re-initialisation when alone
 *   ring.c       the ring: produce, consume, peek (the hot paths)
 *   consumers.c  the consumer table: names, register, remove, restore, list
 *   compat.c     format versions 1 and 2
 *   clock.h      the clocks (inline: shmcond.c reads them too)
 *   shmcond.c    the condition variable (shmcond.h)
 *   fault.c      fault points, test builds only (fault.h)
 *
 * Nothing here is exported: the shared library is built with hidden
 * visibility, and its version script (libmmapq.map) lists mmapq.h's
 * functions only.  The TSan build of tests/queue/test_threads.c includes this
 * header to reach into the handle.
 */
#ifndef MMAPQ_QUEUE_H
#define MMAPQ_QUEUE_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "clock.h"
#include "mmapq.h"
#include "mmapq_format.h"
#include "shmcond.h"

/* A handle: one process's role (or observer) on one queue file. */
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
	uint32_t version;           /* the file's: MMAPQ_VERSION, or 1 or 2 (only read) */
	bool int_slots;             /* struct mmapq_int_slot (format int, version >= 2) */
	bool legacy;                /* a version-1/2 file, read as it is (migrate, observer) */
	/* What a call that writes records or consumers into the file says,
	 * decided once at open so that mmapq_put_many asks one question: 0,
	 * -EPERM (not the producer) or -EROFS (a version-1/2 file, opened to
	 * migrate it, is never written). */
	int put_refused;
	uint32_t max_consumers;     /* the consumer table's size; 0: a version-1/2 file has none */
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

/* Reserved header bytes [off, off + len) (validate.c, compat.c). */
struct rsv_range {
	size_t off, len;
};

/* handle.c */
void set_err(struct mmapq_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool params_join(const struct mmapq_params *p);
int name_error(struct mmapq_error *err, const char *path, const char *name, bool in_table);
int open_handle(const struct mmapq_params *p, bool no_register, struct mmapq **ret,
                struct mmapq_error *err);
void side_status(const struct mmapq *q, const struct mmapq_side *s, off_t byte,
                 struct mmapq_side_status *o);

/* attach.c */
bool held_by_other(const struct mmapq *q, int32_t pid, off_t byte);
int open_file(struct mmapq *q, const struct mmapq_params *p, struct mmapq_error *err);
int attach(struct mmapq *q, const struct mmapq_params *p, struct mmapq_error *err);
int observe(struct mmapq *q, const struct mmapq_params *p, struct mmapq_error *err);

/* create.c */
int assign_id_locked(struct mmapq *q, const struct mmapq_params *p);
int create_file(const struct mmapq_params *p, struct mmapq_error *err);

/* validate.c */
size_t first_nonzero_in(const uint8_t *b, const struct rsv_range *rsv, size_t n);
int reserved_error(const struct mmapq_header *h, const char *path, size_t bad,
                   struct mmapq_error *err);
int validate_static(struct mmapq *q, const struct mmapq_params *p, uint64_t real_size,
                    struct mmapq_error *err);
int observe_table(const struct mmapq *q, struct mmapq_error *err);
int validate_dynamic(struct mmapq *q, struct mmapq_error *err);
int header_check(void *ctx);

/* mutex.c */
int recover_locked(struct mmapq *q);
int wait_locked(struct mmapq *q, uint64_t deadline_ns);
int init_mutex(struct mmapq_header *h);
int reinit_sync_alone(struct mmapq *q);

/* ring.c */
int sync_bytes(const void *p, size_t len);
int snapshot_positions(const struct mmapq *q, uint64_t *head, uint64_t *tail);
bool floor_update_locked(struct mmapq *q);
void signal_consumers_locked(struct mmapq *q, bool always);
int refresh_limit(struct mmapq *q);

/* consumers.c */
bool name_in_table_valid(const char *name);
int find_or_register_locked(struct mmapq *q, struct mmapq_error *err);
void consumer_status(const struct mmapq *q, uint32_t i, uint64_t tail,
                     struct mmapq_consumer_status *o);

/* compat.c */
int legacy_check_fields(const struct mmapq_header *h, const struct mmapq_params *p,
                        const char *path, struct mmapq_error *err);
int upgrade_v2(struct mmapq *q, const struct mmapq_params *p, bool alone, struct mmapq_error *err);
void legacy_take_consumer(struct mmapq *q);
void legacy_wake_consumer(struct mmapq *q);
void legacy_reset_consumer(struct mmapq *q);
void legacy_status(const struct mmapq *q, struct mmapq_status *s);
void legacy_consumer_status(const struct mmapq *q, uint64_t tail,
                            struct mmapq_consumer_status *o);

/*
 * Inline, in every file that includes this: the ring's paths call these
 * per record or per batch, where a call into another file each time would
 * cost what splitting the library must not.
 */

/* -errno after a failed call; never 0, whatever the call did to errno */
static inline int neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

static inline bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static inline struct mmapq_slot *slot_at(const struct mmapq *q, uint64_t seq)
{
	return (struct mmapq_slot *)(q->slots + (size_t)(seq & q->mask) * q->slot_size);
}

static inline struct mmapq_int_slot *int_slot_at(const struct mmapq *q, uint64_t seq)
{
	return (struct mmapq_int_slot *)q->slots + (seq & q->mask);
}

/* The oldest record kept: version 3's floor, version 1 and 2's head (the
 * same offset). */
static inline uint64_t load_floor(const struct mmapq *q)
{
	/* acquire: pairs with the store-release of floor (a consumer's
	 * release or registration, a removal, a repair), which comes after the
	 * slowest consumer's reads of the slots below it */
	return __atomic_load_n(&q->h->floor.floor, __ATOMIC_ACQUIRE);
}

static inline uint64_t load_tail(const struct mmapq *q)
{
	/* acquire: pairs with the producer's release store of tail, so the
	 * slot contents written before it are visible */
	return __atomic_load_n(&q->h->producer.position, __ATOMIC_ACQUIRE);
}

static inline void count(uint64_t *field, uint64_t n)
{
	/* single writer (the role owner); atomic so readers never see tearing */
	__atomic_fetch_add(field, n, __ATOMIC_RELAXED);
}

static inline bool registered(const struct mmapq_consumer *c)
{
	/* relaxed under the mutex (every store of state is made under it);
	 * acquire for observers: pairs with the store-release of state */
	return __atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == MMAPQ_CONSUMER_REGISTERED;
}

/* How lock() and the waits take the mutex (shmcond.h): between blocking
 * slices they ask the caller's interrupted callback and check the header. */
static inline struct mmapq_lock lock_of(struct mmapq *q)
{
	return (struct mmapq_lock){&q->h->lock.mutex, q->lock_spins, header_check, q,
	                           q->interrupted, q->interrupted_ctx};
}

/* 0: the mutex is held.  < 0 (-EINTR when interrupted): it is not. */
static inline int lock(struct mmapq *q)
{
	struct mmapq_lock lk = lock_of(q);
	int r = mmapq_mutex_lock(&lk);
	if (r == -EOWNERDEAD)
		return recover_locked(q);
	return r;
}

static inline void unlock(struct mmapq *q)
{
	pthread_mutex_unlock(&q->h->lock.mutex);
}

#endif
