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
 *   ring.c       the ring of frames: produce, consume, peek (the hot paths)
 *   salvage.c    walking every frame kept, and salvaging a damaged file
 *   crc32c.c     the frames' checksum (crc32c.h)
 *   consumers.c  the consumer table: names, register, remove, restore, list
 *   producers.c  the producer table: register, who holds an entry
 *   compat.c     format versions 1 to 3, read to migrate them
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
#include "crc32c.h"
#include "mmapq.h"
#include "mmapq_format.h"
#include "shmcond.h"

/* A position in the ring: a record's sequence number and the byte position
 * of its frame (or of the padding before it). */
struct pos {
	uint64_t seq, byte;
};

/* A handle: one process's role (or observer) on one queue file. */
struct mmapq {
	char *path;
	int fd;
	char *lock_path;            /* path + MMAPQ_LOCK_SUFFIX */
	int lock_fd;                /* the lock file, -1 if the observer cannot open it */
	enum mmapq_role role;
	enum mmapq_sync sync;
	struct mmapq_header *h;
	uint8_t *ring;              /* the ring (a version-1 to 3 file: its slots) */
	size_t map_size;
	uint64_t size, mask;        /* ring bytes, size - 1 */
	uint32_t max_record, format;
	uint32_t version;           /* the file's: MMAPQ_VERSION, or 1 to 3 (only read) */
	bool legacy;                /* a version-1 to 3 file, read as it is (migrate, observer) */
	uint32_t capacity, slot_size; /* legacy: slots, bytes per slot */
	bool int_slots;             /* legacy: struct mmapq_int_slot_v3 */
	/* What a call that writes records or consumers into the file says,
	 * decided once at open so that mmapq_put_many asks one question: 0,
	 * -EPERM (not the producer) or -EROFS (a version-1 to 3 file, opened
	 * to migrate it, is never written). */
	int put_refused;
	uint32_t max_consumers;     /* the consumer table's size */
	uint32_t max_producers;     /* the producer table's size */
	/* Our role's state: our entry of the producer or the consumer table. */
	struct mmapq_producer *prod; /* producer (version 4) */
	struct mmapq_consumer *me;  /* consumer (version 4) */
	struct mmapq_cond *wait_on; /* the cond we sleep on */
	/* producer, consumer: who we are (our entry's name) and how we register */
	char name[MMAPQ_CONSUMER_NAME_MAX + 1];
	uint32_t index;             /* our entry (of our role's table) */
	enum mmapq_start start;
	bool no_register;           /* mmapq_consumer_remove: find the entry, never add one */
	bool repair;                /* mmapq_repair: alone, every role, walk whatever */
	bool alone;                 /* attaching alone: the reservations are dropped */
	bool attached;              /* attach() succeeded: its close may mark the file clean */
	uint64_t salvaged;          /* records a salvage at our open dropped */
	uint64_t skipped_before;    /* consumer: records lost to skips between its
	                               last detach and this attach */
	uint32_t early_recoveries;  /* repairs made before our entry was known */
	uint32_t spin_us;           /* look before sleeping (mmapq_params.spin_us) */
	bool (*interrupted)(void *ctx); /* mmapq_params.interrupted, may be NULL */
	void *interrupted_ctx;
	unsigned lock_spins;        /* trylocks before blocking on the mutex */

	/* producer: frames [published, tail) are written into our
	 * reservation but not yet published; we may write below limit, its
	 * end, unlocked (ring.c, "Fan-in").  rsv_open, rsv_idle (then it ends
	 * at idle_to), rsv_committed: our entry's reservation's state as we
	 * left it.  claim: a record made room for by mmapq_claim, its frame
	 * at claim.byte (padding first at claim_pad if that is lower),
	 * claim_len bytes at most. */
	struct pos published, tail;
	uint64_t limit, idle_to;
	bool rsv_open, rsv_idle, rsv_committed;
	uint64_t durable;           /* producer: frames below this byte are on disk (mmapq_sync) */
	uint64_t kicked;            /* producer: ring bytes below this handed to write-back */
	uint64_t prefaulted;        /* producer: ring pages below this made writable ahead */
	bool no_prefault;           /* producer: the kernel has no MADV_POPULATE_WRITE */
	/* producer: waiting for room (struct mmapq_producer.blocked_usec):
	 * the CLOCK_REALTIME microsecond up to which the wait is counted in
	 * blocked_total_usec; 0 while not waiting */
	uint64_t blocked_mark;
	bool claimed;
	uint64_t claim_pad, claim_byte;
	uint32_t claim_len;
	/* consumer: head is our cursor; records [head.seq, seen_tail) are
	 * available, their frames below seen_tail_byte.  walk is where record
	 * walk.seq is (the next one read in order), prev the one read last
	 * (prev.seq == UINT64_MAX: none); the checksums of the records below
	 * checked are verified.  A legacy file's consumer uses head.seq.
	 * observer: walk and prev serve mmapq_peek the same way. */
	struct pos head, walk, prev;
	uint64_t seen_tail, seen_tail_byte, checked;
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

/* attach.c */
bool held_by_other(const struct mmapq *q, int32_t pid, off_t byte);
int open_file(struct mmapq *q, const struct mmapq_params *p, struct mmapq_error *err);
int map_validated(struct mmapq *q, const struct mmapq_params *p, struct mmapq_error *err);
int attach(struct mmapq *q, const struct mmapq_params *p, struct mmapq_error *err);
int observe(struct mmapq *q, const struct mmapq_params *p, struct mmapq_error *err);
void detach(struct mmapq *q);

/* create.c */
int new_id(uint8_t id[MMAPQ_ID_SIZE]);
int create_file(const struct mmapq_params *p, struct mmapq_error *err);

/* validate.c */
size_t first_nonzero_in(const uint8_t *b, const struct rsv_range *rsv, size_t n);
int reserved_error(const void *h, const char *path, size_t bad, struct mmapq_error *err);
int check_identity(const void *h, const char *path, uint64_t real_size, struct mmapq_error *err);
int validate_static(struct mmapq *q, const struct mmapq_params *p, uint64_t real_size,
                    struct mmapq_error *err);
int observe_table(const struct mmapq *q, struct mmapq_error *err);
int validate_dynamic(struct mmapq *q, bool cursors, struct mmapq_error *err);
int header_check(void *ctx);

/* salvage.c */
int salvage_alone(struct mmapq *q, bool always, struct mmapq_salvage *report,
                  struct mmapq_error *err);
int mark_in_use(struct mmapq *q, struct mmapq_error *err);

/* mutex.c */
void floor_whole_locked(struct mmapq *q);
int recover_locked(struct mmapq *q);
int wait_locked(struct mmapq *q, uint64_t deadline_ns);
int wait_on_locked(struct mmapq *q, struct mmapq_cond *c, uint64_t deadline_ns);
int init_mutex(struct mmapq_header *h);
int reinit_sync_alone(struct mmapq *q);

/* ring.c */
int frames_skip(const struct mmapq *q, uint64_t *byte, uint32_t *len, uint64_t end, bool check);
uint64_t fills_end(const struct mmapq *q, uint64_t byte, uint64_t end);
void blocked_end(struct mmapq *q);
int sync_bytes(const void *p, size_t len);
int sync_header(const struct mmapq *q);
int sync_ring(const struct mmapq *q, uint64_t from, uint64_t to);
int snapshot_floor(const struct mmapq *q, struct pos *floor);
int snapshot_positions(const struct mmapq *q, struct pos *floor, struct pos *tail);
void store_floor_locked(struct mmapq *q, struct pos floor);
bool floor_update_locked(struct mmapq *q);
void signal_consumers_locked(struct mmapq *q, bool always);
void signal_producers_locked(struct mmapq *q, bool always);
int check_floor(const struct mmapq *q);
bool advance_locked(struct mmapq *q);
int reap_locked(struct mmapq *q);
bool reservations_whole_locked(struct mmapq *q);
void drop_reservations_alone(struct mmapq *q);
void release_producer(struct mmapq *q);
int find_record(struct mmapq *q, struct pos from, uint64_t seq, uint64_t end, uint64_t *byte);
int catch_up_synced(struct mmapq *q);
bool finish_skips_locked(struct mmapq *q);

/* consumers.c */
bool name_in_table_valid(const char *name);
int find_or_register_locked(struct mmapq *q, struct mmapq_error *err);
void consumer_status(const struct mmapq *q, uint32_t i, uint64_t tail, uint64_t tail_byte,
                     struct mmapq_consumer_status *o);

/* producers.c */
int find_or_register_producer_locked(struct mmapq *q, struct mmapq_error *err);
bool producer_registered(const struct mmapq *q, uint32_t i);
bool producer_attached(const struct mmapq *q, uint32_t i);
int32_t attached_producer_pid(const struct mmapq *q);

/* compat.c: versions 1 to 3, read only */
int legacy_check_identity(const void *h, const char *path, uint64_t real_size,
                          struct mmapq_error *err);
int legacy_check_fields(const struct mmapq *q, const struct mmapq_params *p,
                        struct mmapq_error *err);
void legacy_setup(struct mmapq *q);
int legacy_attach(struct mmapq *q, struct mmapq_error *err);
int legacy_observe(struct mmapq *q, struct mmapq_error *err);
int legacy_status(const struct mmapq *q, struct mmapq_status *s);
int legacy_consumers(const struct mmapq *q, struct mmapq_consumer_status *out, uint32_t n);
int legacy_producers(const struct mmapq *q, struct mmapq_producer_status *out, uint32_t n);
int legacy_available(struct mmapq *q, uint32_t *navail);
int legacy_get(const struct mmapq *q, uint64_t seq, struct mmapq_record *r);
int legacy_peek(struct mmapq *q, uint64_t seq, void *buf, uint32_t size, struct mmapq_record *r);
int legacy_header_check(const struct mmapq *q);

/*
 * Inline, in every file that includes this: the ring's paths call these
 * per record or per batch, where a call into another file each time would
 * cost what splitting the library must not.
 */

/* -errno after a failed call; never 0, whatever the call did to errno */
/* The counters a producer's side (o: struct mmapq_side_status) and a
 * consumer's entry (o: struct mmapq_consumer_status) have in every format
 * version's layout, read as an observer reads them (relaxed: each on its
 * own, no snapshot); s points to the version's struct, whose fields have
 * these names. */
#define LOAD_SIDE_COUNTERS(o, s)                                                    \
	do {                                                                        \
		(o)->pid = __atomic_load_n(&(s)->pid, __ATOMIC_RELAXED);             \
		(o)->start_usec = __atomic_load_n(&(s)->start_usec, __ATOMIC_RELAXED); \
		(o)->dropped = __atomic_load_n(&(s)->dropped, __ATOMIC_RELAXED);     \
		(o)->bad_input = __atomic_load_n(&(s)->bad_input, __ATOMIC_RELAXED); \
		(o)->recoveries = __atomic_load_n(&(s)->recoveries, __ATOMIC_RELAXED); \
		(o)->attaches = __atomic_load_n(&(s)->attaches, __ATOMIC_RELAXED);  \
	} while (0)
#define LOAD_CONSUMER_COUNTERS(o, c)                                                \
	do {                                                                        \
		(o)->pid = __atomic_load_n(&(c)->pid, __ATOMIC_RELAXED);             \
		(o)->start_usec = __atomic_load_n(&(c)->start_usec, __ATOMIC_RELAXED); \
		(o)->attach_position = __atomic_load_n(&(c)->attach_position, __ATOMIC_RELAXED); \
		(o)->registered_usec = __atomic_load_n(&(c)->registered_usec, __ATOMIC_RELAXED); \
		(o)->recoveries = __atomic_load_n(&(c)->recoveries, __ATOMIC_RELAXED); \
		(o)->attaches = __atomic_load_n(&(c)->attaches, __ATOMIC_RELAXED);  \
	} while (0)

static inline int neg_errno(void)
{
	int e = errno; /* read once: negative for sure, as the analyzer sees it too */

	return e > 0 ? -e : -EIO;
}

static inline bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static inline struct mmapq_frame *frame_at(const struct mmapq *q, uint64_t byte)
{
	return (struct mmapq_frame *)(q->ring + (byte & q->mask));
}

/* CRC-32C of the frame at byte position byte: byte, len, payload
 * (mmapq_format.h); a padding or fill frame's covers no payload */
static inline uint32_t frame_crc(uint64_t byte, uint32_t len, const void *payload)
{
	return mmapq_crc32c_frame(byte, len, payload, (len & MMAPQ_FRAME_FILL_BIT) ? 0 : len);
}

/*
 * The frame of the record at *byte, or after the padding and fill frames
 * there (frames_skip): its length checked (<= max_record, 8 for format
 * int), its bytes within the ring and below end, and with check its crc
 * (by crc: mmapq_crc32c_frame, or in ring.c's hot paths the inline
 * mmapq_crc32c_frame_hw).  ints: the caller knows
 * the format is int, as a constant: the length is then 8 for the compiler
 * too, and an int record's checks and checksum straight-line code.  0:
 * *data, *len and *byte (past the frame) set; -EBADMSG: nothing set.  Each
 * shared field is read once.
 */
__attribute__((always_inline)) static inline int
frame_step(const struct mmapq *q, uint64_t *byte, uint64_t end, bool check,
           const uint8_t **data, uint32_t *len, mmapq_frame_crc_fn *crc, bool ints)
{
	uint64_t b = *byte, off = b & q->mask, fb;
	const struct mmapq_frame *f = (const struct mmapq_frame *)(q->ring + off);
	uint32_t l = __atomic_load_n(&f->len, __ATOMIC_RELAXED);

	if (l & MMAPQ_FRAME_FILL_BIT) {
		/* padding or fill: the slow path, out of line */
		if (frames_skip(q, &b, &l, end, check) < 0)
			return -EBADMSG;
		off = b & q->mask;
		f = (const struct mmapq_frame *)(q->ring + off);
	}
	if (l > q->max_record ||
	    ((ints || q->format == MMAPQ_FORMAT_INT) && l != sizeof(int64_t)))
		return -EBADMSG;
	fb = mmapq_frame_bytes(l);
	if (off + fb > q->size || b + fb > end)
		return -EBADMSG;
	if (check && __atomic_load_n(&f->crc, __ATOMIC_RELAXED) != crc(b, l, f + 1, l))
		return -EBADMSG;
	*data = (const uint8_t *)(f + 1);
	*len = l;
	*byte = b + fb;
	return 0;
}

static inline int frame_next(const struct mmapq *q, uint64_t *byte, uint64_t end, bool check,
                             const uint8_t **data, uint32_t *len)
{
	return frame_step(q, byte, end, check, data, len, mmapq_crc32c_frame, false);
}

/* Whether each publish and release is on disk before it returns (batch,
 * always); never and interval leave that to the kernel or to mmapq_sync. */
static inline bool sync_each(const struct mmapq *q)
{
	return q->sync == MMAPQ_SYNC_BATCH || q->sync == MMAPQ_SYNC_ALWAYS;
}

/* Fences, as the seqlocks use them (floor's writer, its readers,
 * mmapq_peek): acquire_fence keeps the loads before it before the loads
 * after it, release_fence the stores before it before the stores after
 * it.  gcc refuses fences under -fsanitize=thread (ThreadSanitizer does not
 * model them): the TSan build (tests/analyze.sh) compiles them anyway, and
 * relies on the atomics around them, which it does model. */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#define FENCE(order)                                             \
	_Pragma("GCC diagnostic push")                            \
	_Pragma("GCC diagnostic ignored \"-Wtsan\"")              \
	__atomic_thread_fence(order);                             \
	_Pragma("GCC diagnostic pop")
#else
#define FENCE(order) __atomic_thread_fence(order)
#endif

static inline void acquire_fence(void)
{
	FENCE(__ATOMIC_ACQUIRE);
}

static inline void release_fence(void)
{
	FENCE(__ATOMIC_RELEASE);
}

/* The producer's bound: floor.byte, with load-acquire (pairs with the
 * store-release of floor.byte in store_floor_locked, which comes after the
 * slowest consumer's reads of the frames below it). */
static inline uint64_t load_floor_byte(const struct mmapq *q)
{
	return __atomic_load_n(&q->h->floor.byte, __ATOMIC_ACQUIRE);
}

/* Mutex held (or alone): the floor pair, stable. */
static inline struct pos floor_locked(const struct mmapq *q)
{
	return (struct pos){__atomic_load_n(&q->h->floor.seq, __ATOMIC_RELAXED),
	                    __atomic_load_n(&q->h->floor.byte, __ATOMIC_RELAXED)};
}

static inline uint64_t load_tail(const struct mmapq *q)
{
	/* acquire: pairs with the producer's release store of tail, so the
	 * frames written before it, and tail_byte, are visible */
	return __atomic_load_n(&q->h->producer.tail, __ATOMIC_ACQUIRE);
}

/* After load_tail: the end of the frames of the records below the tail
 * just read (or of a few more: a later publish may have stored it). */
static inline uint64_t load_tail_byte(const struct mmapq *q)
{
	return __atomic_load_n(&q->h->producer.tail_byte, __ATOMIC_RELAXED);
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
