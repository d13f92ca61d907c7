/* SPDX-License-Identifier: MIT */
/*
 * mmapq.h -- libmmapq: a crash-safe, bounded, single-producer queue in a
 * memory-mapped file, read by one or more named consumers (fan-out), each
 * at its own pace with its own durable cursor, shared by processes (or
 * threads).  This header is all an application needs (pkg-config
 * mmapq, or find_package(mmapq) in CMake); the file's layout is private to
 * the library.  Man pages: mmapq(3) and the pages it names.
 *
 * Threads.  A handle (struct mmapq) is not thread-safe: use each one from
 * one thread at a time.  Everything else is: a producer and a consumer
 * (or an observer) may run in different threads or processes, each with
 * its own handle, and so may several queues.  The library keeps no global
 * state but a few constants.
 *
 * Conventions (as in systemd's CODING_STYLE): every function that can fail
 * returns 0 (or a count) on success and a negative errno on failure; output
 * parameters are untouched on failure; mmapq_close(NULL) is a no-op.  The
 * library never logs, never exits and never installs signal handlers.
 * Codes with a queue-specific meaning (mmapq_strerror() words them):
 *   -EBADMSG    the file is not a valid queue file, or is damaged
 *   -EPROTO     valid file, but its geometry or format differs from the
 *               parameters given
 *   -EBUSY      the role is already held by a live process
 *   -ETIMEDOUT  a wait reached its deadline
 *   -EINTR      a wait was interrupted: by a signal handler, or because
 *               mmapq_params.interrupted said so (see "Stopping" below)
 *   -ENOTRECOVERABLE  a dead mutex owner left indices that cannot be repaired
 *
 * Deadlines are absolute CLOCK_MONOTONIC times in nanoseconds
 * (mmapq_now_ns() + timeout); 0 means "do not wait" (-EAGAIN if nothing is
 * there).  Waits return -ETIMEDOUT at the deadline and -EINTR when a signal
 * handler ran; no single sleep lasts longer than 0.5 s, so a dead peer or a
 * lost wake-up costs at most that.  Callers with a stop flag pass deadlines
 * of about a second and re-check it.
 *
 * Stopping.  A peer that is alive but stopped (SIGSTOP, a debugger) can hold
 * the queue mutex, or the attach lock, for as long as it stays stopped, and
 * deadlines do not apply to taking the mutex (its holder is in the middle of
 * a few stores that must be finished).  So every blocking point asks
 * mmapq_params.interrupted, if set:
 *   - taking the mutex: between blocking slices of at most 250 ms;
 *   - waiting on a condition: before it sleeps and after each sleep of at
 *     most 0.5 s (a signal handler also ends the sleep at once);
 *   - mmapq_open waiting for the attach lock (F_OFD_SETLKW): before it, and
 *     each time a signal handler interrupts it.  The kernel wait has no
 *     time-out, so there only a signal makes it look: install the handler
 *     that sets the caller's flag without SA_RESTART.  A signal that comes
 *     between the last look and the start of the wait is noticed at the next
 *     signal.
 * When it returns true the call gives up with -EINTR, never holding the
 * mutex; what each call leaves behind then is said at the call.  A stop
 * request is thus noticed within about half a second wherever the process
 * blocks.  The callback runs in the calling thread, between system calls,
 * never with the mutex held; it must not call this library.
 */
#ifndef MMAPQ_H
#define MMAPQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What the library exports (everything else in it is hidden). */
#if defined(__GNUC__)
#define MMAPQ_API __attribute__((visibility("default")))
#else
#define MMAPQ_API
#endif

struct mmapq;

/* The queue file format this library writes.  It reads versions 1 to 3
 * (rings of fixed-size slots) to migrate them (mmapq_params.migrate) and
 * to show them (observers). */
#define MMAPQ_FILE_VERSION      UINT32_C(4)

enum mmapq_record_format {
	MMAPQ_FORMAT_INT  = 1, /* payload: one int64_t, 8 bytes, host byte order */
	MMAPQ_FORMAT_LINE = 2, /* payload: 0..max_record bytes of one line, no '\n' */
	MMAPQ_FORMAT_BINARY = 3, /* payload: 0..max_record bytes, any bytes */
};

/*
 * Geometry, enforced when a queue file is created and whenever one is
 * opened.  A queue is a ring of size bytes (a power of two) after a
 * two-page header; each record takes mmapq_frame_size(its length) bytes
 * of it: an 8-byte frame header (length and CRC-32C) and the payload
 * rounded up to 8.  max_record bounds one payload, and
 * mmapq_frame_size(max_record) may be at most size / 4
 * (mmapq_max_record_limit), so that the ring always holds several of the
 * largest records.
 */
#define MMAPQ_SIZE_MIN          UINT64_C(64)          /* ring bytes, a power of two */
#define MMAPQ_SIZE_MAX          (UINT64_C(1) << 36)   /* 64 GiB */
#define MMAPQ_MAX_RECORD_MIN    UINT32_C(8)           /* payload bytes */
#define MMAPQ_MAX_RECORD_MAX    (UINT32_C(1) << 26)   /* 64 MiB */

/* Consumers.  A queue has a table of max_consumers entries (geometry: set
 * when the file is created), each a registered consumer with its own
 * cursor.  A consumer is named by 1 to MMAPQ_CONSUMER_NAME_MAX characters
 * of MMAPQ_CONSUMER_NAME_CHARS, not starting with '-' (a command line
 * would take it for an option; a name an older version registered with
 * one stays in its file, and can be removed); a consumer that gives no
 * name is MMAPQ_CONSUMER_DEFAULT. */
#define MMAPQ_CONSUMERS_MIN     UINT32_C(1)
#define MMAPQ_CONSUMERS_MAX     UINT32_C(16)
/* Bytes of a queue's id (struct mmapq_status.id). */
#define MMAPQ_ID_SIZE           16
#define MMAPQ_CONSUMERS_DEFAULT UINT32_C(8)
#define MMAPQ_CONSUMER_NAME_MAX 63
#define MMAPQ_CONSUMER_NAME_CHARS \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-"
#define MMAPQ_CONSUMER_DEFAULT  "default"

/* Producers.  A queue has a table of max_producers entries (geometry, as
 * max_consumers), one per producer name: a producer is named as a
 * consumer is (mmapq_consumer_name_valid), MMAPQ_PRODUCER_DEFAULT if it
 * gives no name, and its entry keeps its counters across its restarts. */
#define MMAPQ_PRODUCERS_MIN     UINT32_C(1)
#define MMAPQ_PRODUCERS_MAX     UINT32_C(16)
#define MMAPQ_PRODUCERS_DEFAULT UINT32_C(4)
#define MMAPQ_PRODUCER_DEFAULT  "default"

/* Where a consumer that registers (its first attach) starts. */
enum mmapq_start {
	MMAPQ_START_OLDEST = 0, /* the oldest record still kept (floor) */
	MMAPQ_START_NEWEST = 1, /* the next record published (tail) */
};

/* Beside the queue file PATH the library keeps PATH MMAPQ_LOCK_SUFFIX, the
 * lock file whose byte-range locks say who is attached. */
#define MMAPQ_LOCK_SUFFIX       ".lock"

enum mmapq_role {
	MMAPQ_ROLE_PRODUCER = 1,
	MMAPQ_ROLE_CONSUMER = 2,
	MMAPQ_ROLE_OBSERVER = 3, /* read-only: status and dump; takes no locks */
};

/*
 * What is on disk when a call returns (a power cut, a kernel crash; a
 * process crash loses nothing that was published, in any mode).  With
 * BATCH and ALWAYS a failed msync (EIO: the file system could not write
 * the pages back; ENOSPC, EDQUOT, ...) is returned by the call that made
 * it, as said at each call; with NEVER nothing is checked.
 */
enum mmapq_sync {
	MMAPQ_SYNC_NEVER  = 0, /* the kernel writes pages back when it likes     */
	MMAPQ_SYNC_BATCH  = 1, /* mmapq_publish returns once the records and the
	                          new tail are on disk; mmapq_release once the
	                          new cursor is, and only then lets the producer
	                          reuse the bytes it freed                        */
	MMAPQ_SYNC_ALWAYS = 2, /* as BATCH, and each record is on disk as it is put */
	MMAPQ_SYNC_INTERVAL = 3, /* nothing is synced as it happens: mmapq_sync,
	                          which the caller makes every interval, writes
	                          what was published (producer) or the cursor
	                          (consumer) to disk; a consumer's released bytes
	                          are reused only after its mmapq_sync, so a
	                          consumer in this mode must call it (or the
	                          producer runs out of room)                      */
};

struct mmapq_params {
	const char *path;
	enum mmapq_role role;
	/* Geometry used to create the file and required of an existing one.
	 * The observer may leave any of them 0 to accept whatever the file
	 * has (max_consumers too: mmapqctl's observers leave all 0, and show a
	 * file of any geometry); the producer and consumer all three or none
	 * (all three 0: join an existing file of any geometry, -ENOENT if
	 * there is none). */
	uint64_t size;         /* ring bytes, a power of two */
	uint32_t max_record;   /* largest payload in bytes */
	uint32_t format;       /* enum mmapq_record_format */
	enum mmapq_sync sync;
	uint32_t file_mode;    /* a new file's mode, exactly (no umask); 0: 0660 */
	/* Before sleeping, watch the peer's position for up to this many
	 * microseconds (0 = never spin, the default; ignored with a single
	 * CPU).  Trades CPU while the peer is about to act for wake-up
	 * latency: a spin that sees the record needs no system call on either
	 * side.  An idle queue still sleeps: at most one spin per call of
	 * mmapq_available/mmapq_reserve, then the futex wait as before. */
	uint32_t spin_us;
	/* Asked at every blocking point (see "Stopping" above); true makes the
	 * call give up with -EINTR.  NULL: never interrupted (only a signal
	 * handler ends a condition wait early). */
	bool (*interrupted)(void *ctx);
	void *interrupted_ctx;
	/* For `mmapqctl recreate` only: also accept a file of format versions
	 * 1 to 3 (rings of slots) in the producer and consumer roles, to hold
	 * both roles and read its records out.  Such a file is never written:
	 * mmapq_put and the like return -EROFS, mmapq_release -EROFS.  Without
	 * it the roles refuse it with -EPROTO (err names `mmapqctl
	 * recreate`); observers always accept it. */
	bool migrate;
	/* Consumers (fan-out).  consumer: the name of this consumer (NULL or
	 * "": MMAPQ_CONSUMER_DEFAULT); its first attach registers it, durably:
	 * from then on the producer keeps every record it has not consumed,
	 * whether it runs or not, until it is removed
	 * (mmapq_consumer_remove).  start: where a consumer that registers
	 * now starts (ignored for one already registered).  max_consumers:
	 * geometry, the size of the consumer table of a new file
	 * (MMAPQ_CONSUMERS_MIN..MMAPQ_CONSUMERS_MAX; 0: MMAPQ_CONSUMERS_DEFAULT);
	 * an existing file's must be equal unless it is 0 (any). */
	const char *consumer;
	enum mmapq_start start;
	uint32_t max_consumers;
	/* Producers.  producer: the name of this producer (NULL or "":
	 * MMAPQ_PRODUCER_DEFAULT); its first attach registers it, and a
	 * later one of the same name takes the same entry (its counters
	 * go on); one of a name that is attached is refused (-EBUSY), one
	 * that finds the table full too (-ENOSPC).  max_producers:
	 * geometry, the size of the producer table of a new file
	 * (MMAPQ_PRODUCERS_MIN..MMAPQ_PRODUCERS_MAX; 0:
	 * MMAPQ_PRODUCERS_DEFAULT); an existing file's must be equal unless
	 * it is 0 (any). */
	const char *producer;
	uint32_t max_producers;
};

/* Human-readable detail for a failed mmapq_open: what and where, naming the
 * file and, for a mismatch, both values. */
struct mmapq_error {
	char msg[512];
};

struct mmapq_record {
	uint64_t seq;
	uint32_t len;
	const void *data;      /* see mmapq_get for how long it stays valid */
};

/* One record to put (mmapq_put_records): its len bytes at data. */
struct mmapq_iovec {
	const void *data;
	uint32_t len;
};

struct mmapq_side_status {
	int32_t pid;           /* last pid to hold the role, 0 if never */
	bool attached;         /* a live process holds the role lock now */
	uint64_t start_usec;
	uint64_t dropped;
	uint64_t bad_input;
	uint64_t recoveries;
	uint64_t attaches;
};

/* What the last salvage of a damaged file dropped (mmapq_format.h,
 * "Clean close, and salvage"): the records [below_from, below_to) under
 * the run it kept (that a consumer had not consumed) and [above_from,
 * above_to) past it, and their bytes. */
struct mmapq_salvage {
	uint64_t count;        /* salvages of this file that dropped anything */
	uint64_t usec;         /* CLOCK_REALTIME of the last, 0 if never */
	uint64_t below_from, below_to;
	uint64_t above_from, above_to;
	uint64_t dropped_bytes;
};

struct mmapq_status {
	uint32_t version;
	uint32_t header_size;
	uint32_t format;
	uint32_t max_record;   /* largest payload (versions 1 to 3: record_size) */
	uint64_t size;         /* ring bytes (versions 1 to 3: capacity * slot_size) */
	uint32_t capacity;     /* versions 1 to 3: slots; 0 for version 4 */
	uint32_t slot_size;    /* versions 1 to 3: bytes per slot; 0 for version 4 */
	uint64_t file_size;
	uint64_t created_usec;
	uint64_t head;         /* oldest record kept: next to consume by the slowest consumer */
	uint64_t tail;         /* next to publish == records published so far */
	uint64_t used_bytes;   /* ring bytes the records [head, tail) take */
	struct mmapq_side_status producer;
	struct mmapq_side_status consumer;
	/* How "attached" was found out.  false: from the role locks in the lock
	 * file (PATH.lock).  true: the lock file could not be opened (an
	 * observer that may only read the queue, or no lock file, e.g. on a
	 * read-only file system), so a role counts as attached when its pid is
	 * alive: a guess, a reused pid looks attached. */
	bool attached_by_pid;
	/* consumer is the consumer named MMAPQ_CONSUMER_DEFAULT if it is
	 * registered, else the first one in the table (all zero if none is);
	 * mmapq_consumers() lists them all. */
	uint32_t max_consumers; /* the consumer table's size (1 for versions 1 and 2) */
	uint32_t consumers;     /* registered consumers */
	/* The queue's id: 16 random bytes given when the file was created,
	 * the same for as long as the file lives, different for every file
	 * (so across hosts too).  All zero: none (a version-1 or 2 file, or a
	 * version-3 one made before ids). */
	uint8_t id[MMAPQ_ID_SIZE];
	/* Whether the last process to close the file closed it cleanly
	 * (always false while anyone is attached), and the salvages. */
	bool clean;
	struct mmapq_salvage salvage;
	/* Records the salvage at this handle's mmapq_open dropped (0: none, or
	 * no salvage was needed); salvage says which. */
	uint64_t salvaged;
	/* producer is the producer named MMAPQ_PRODUCER_DEFAULT if it is
	 * registered, else the first one in the table (all zero if none is). */
	uint32_t max_producers; /* the producer table's size (0 for versions 1 to 3) */
	uint32_t producers;     /* registered producers */
};

/* One registered consumer, as mmapq_consumers() reports it. */
struct mmapq_consumer_status {
	char name[MMAPQ_CONSUMER_NAME_MAX + 1];
	uint32_t index;           /* its entry in the table (its lock byte) */
	uint64_t position;        /* next sequence number it consumes (= consumed so far) */
	uint64_t lag;             /* tail - position: published, not yet consumed by it */
	uint64_t lag_bytes;       /* ring bytes those records take */
	int32_t pid;              /* last pid to hold it, 0 if never */
	bool attached;            /* as mmapq_side_status.attached */
	uint64_t start_usec;      /* when the last holder attached */
	uint64_t attach_position; /* position then: (position - attach_position) /
	                             (now - start) is its rate since */
	uint64_t registered_usec;
	uint64_t recoveries;
	uint64_t attaches;
};

/* One registered producer, as mmapq_producers() reports it: the counters
 * of its entry, which stay with its name across its restarts. */
struct mmapq_producer_status {
	char name[MMAPQ_CONSUMER_NAME_MAX + 1];
	uint32_t index;           /* its entry in the table (its lock byte) */
	int32_t pid;              /* the attached process's pid, 0 while none is */
	int32_t last_pid;         /* last pid to hold it (attached or not), 0 if never */
	bool attached;            /* as mmapq_side_status.attached */
	uint64_t start_usec;      /* when the last holder attached */
	uint64_t registered_usec; /* when its name was first attached (0: versions 1 to 3) */
	uint64_t published;       /* records it published since it registered */
	uint64_t dropped;
	uint64_t bad_input;
	uint64_t recoveries;
	uint64_t attaches;
	/* its wait for room (as mmapq_blocked, for this producer alone):
	 * CLOCK_REALTIME when its current wait began, 0 if it is not waiting
	 * (or not attached); microseconds it has waited in all */
	uint64_t blocked_since_usec;
	uint64_t blocked_total_usec;
};

/* Open (creating if missing) and attach in a role.  See mmapq_format.h for
 * the attach protocol.  A producer or consumer that attaches alone to a
 * file that was not closed cleanly (a crash, a power cut) checks every
 * record kept and salvages a damaged file (mmapq_repair; what it dropped is
 * in mmapq_status().salvage).  -EINTR ("interrupted while waiting for the
 * attach lock" or "... for the queue mutex" in err): nothing is attached
 * and no role is held; a file this call created stays, valid and empty. */
MMAPQ_API int mmapq_open(const struct mmapq_params *p, struct mmapq **ret, struct mmapq_error *err);
MMAPQ_API void mmapq_close(struct mmapq *q);

/* Message for a code returned by this library (negative errno). */
MMAPQ_API const char *mmapq_strerror(int code);
MMAPQ_API uint64_t mmapq_now_ns(void);
MMAPQ_API const char *mmapq_format_name(uint32_t format);
/* Bytes of the frame a record of len payload bytes takes in the ring. */
MMAPQ_API uint64_t mmapq_frame_size(uint32_t len);
/* Size in bytes of a queue file whose ring is size bytes; 0 if size is not
 * a power of two in MMAPQ_SIZE_MIN..MMAPQ_SIZE_MAX. */
MMAPQ_API uint64_t mmapq_file_size(uint64_t size);
/* The largest max_record a ring of size bytes allows (at most
 * MMAPQ_MAX_RECORD_MAX); 0 if size is not valid (see mmapq_file_size). */
MMAPQ_API uint32_t mmapq_max_record_limit(uint64_t size);

/* ---- producer ----
 * Reserve room (taking the lock only when the locally known free space is
 * used up; waits until a record of len bytes fits, or the deadline), fill
 * it with mmapq_put (or mmapq_claim and mmapq_commit), make the records
 * visible with mmapq_publish (one lock round-trip for the whole batch;
 * wakes the consumers only if they wait).
 *   mmapq_reserve: *room is the ring bytes that are surely free: any
 *     records whose frames (mmapq_frame_size) add up to at most *room fit,
 *     padding at the ring's end included; it is at least
 *     mmapq_frame_size(len).  -EMSGSIZE: len is over max_record.  -EINTR
 *     (or -ETIMEDOUT, -EAGAIN): no room was found and *room is untouched.
 *     It publishes pending records before it waits, so they may or may not
 *     be published: mmapq_pending() says (0: all are).  While it waits the
 *     producer is blocked, in the file, for everyone to see (mmapq_blocked).
 *   Several producers (each its own name, up to max_producers) may write
 *     at once: each writes into a reservation of the ring of its own, taken
 *     by its first put after a publish (the mutex, which a lone producer
 *     needs only once a batch); mmapq_publish commits it and returns once
 *     the records are visible, after those of the producers that reserved
 *     before it (sequence numbers are given then, in that order).  *room is
 *     then surely free only while no other producer reserves meanwhile: a
 *     put may still say -ENOBUFS (then reserve again); and a put that takes
 *     a reservation may say -EINTR (the interrupted callback said stop while
 *     it waited for the mutex; nothing put).
 *   mmapq_publish -EINTR: published nothing if it was interrupted taking
 *     the mutex (the records stay pending and the next mmapq_publish or
 *     mmapq_reserve publishes them); if it was interrupted while waiting
 *     for the producers that reserved before it, the records are committed
 *     (mmapq_pending() is 0) and become visible in order as they commit,
 *     without this process.
 *   msync errors (sync = batch or always; -EIO etc.): mmapq_put did not put
 *     the record (mmapq_pending() unchanged); mmapq_publish and mmapq_reserve
 *     did publish (the consumer sees the records, mmapq_pending() is 0 after
 *     mmapq_publish), but they are not known to be on disk: a power cut or a
 *     kernel crash may lose them.  mmapq_reserve reports such an error
 *     rather than -EAGAIN, -ETIMEDOUT or -EINTR.
 *   mmapq_close publishes what is pending; if it has to wait for the mutex
 *     and is interrupted, it does not (the records are rolled back, as after
 *     a crash before publishing). */
MMAPQ_API int mmapq_reserve(struct mmapq *q, uint32_t len, uint64_t deadline_ns, uint64_t *room);
/* A record of len bytes (0..max_record; format int: 8): 0, -ENOBUFS if it
 * does not fit now (mmapq_reserve waits for room), -EMSGSIZE (bad len),
 * -EINTR (see above: nothing put). */
MMAPQ_API int mmapq_put(struct mmapq *q, const void *data, uint32_t len);
/* Put many records of the same length in one call: record i is the len
 * bytes at data + i * len.  As mmapq_put for each, but the checks are done
 * once and the frames filled in a tight loop (an int record costs a few
 * instructions).  Puts as many as fit, at most n, and returns how many (0
 * if n is 0); -ENOBUFS if none fits, -EMSGSIZE for a bad len (nothing
 * put).  With sync = always the frames are synced once for the call: on an
 * msync error nothing was put (mmapq_pending() unchanged). */
MMAPQ_API int mmapq_put_many(struct mmapq *q, const void *data, uint32_t len, uint32_t n);
/* Put many records of any lengths in one call: record i is the rec[i].len
 * bytes at rec[i].data.  As mmapq_put_many (the checks done once, the
 * frames filled in a tight loop, padding at the ring's end where a record
 * needs it): puts as many as fit, in order, at most n, and returns how many
 * (0 if n is 0); -ENOBUFS if none fits, -EMSGSIZE if any len is bad
 * (nothing put), -EINVAL if rec is NULL and n is not 0, -EINTR as
 * mmapq_put_many (the first record's reservation interrupted: nothing
 * put; one interrupted later: the count put before it).  With sync = always
 * the frames are synced once for the call: on an msync error nothing was
 * put (mmapq_pending() unchanged). */
MMAPQ_API int mmapq_put_records(struct mmapq *q, const struct mmapq_iovec *rec, uint32_t n);
/* Zero copy: mmapq_claim makes room for one record of up to len bytes and
 * points *buf at its payload in the ring (-ENOBUFS if it does not fit now,
 * -EMSGSIZE for a bad len; *buf untouched then); the caller writes it and
 * mmapq_commit(q, n) puts it with its first n <= len bytes (-EINVAL if n is
 * more, or nothing is claimed; format int: n must be 8, -EMSGSIZE).  A
 * claim not committed is forgotten by the next claim, put, publish, by an
 * mmapq_reserve that waits, and by mmapq_close; nothing of it is ever
 * read. */
MMAPQ_API int mmapq_claim(struct mmapq *q, uint32_t len, void **buf);
MMAPQ_API int mmapq_commit(struct mmapq *q, uint32_t n);
MMAPQ_API int mmapq_publish(struct mmapq *q);
MMAPQ_API uint32_t mmapq_pending(const struct mmapq *q); /* put but not yet published */
/* Sequence number the next mmapq_put will give its record: exact while
 * this is the only producer attached; with several, numbers are given as
 * records are published, in the order of their reservations, and this is
 * the lowest it can be (the tail at our last publish, plus what is
 * pending). */
MMAPQ_API uint64_t mmapq_next_seq(const struct mmapq *q);
MMAPQ_API void mmapq_set_sync(struct mmapq *q, enum mmapq_sync sync); /* live change */
/* Write to disk what this handle has made visible: a producer's published
 * records (their frames, then the header), a consumer's cursor (the
 * header; then the bytes it released may be reused).  What sync =
 * interval does every interval; in any mode a flush on demand.  0, -EPERM
 * (an observer), -EINTR (taking the mutex; nothing lost: call again), or an
 * msync error (-EIO ...: not known to be on disk). */
MMAPQ_API int mmapq_sync(struct mmapq *q);
MMAPQ_API void mmapq_count_dropped(struct mmapq *q, uint64_t n);
MMAPQ_API void mmapq_count_bad_input(struct mmapq *q, uint64_t n);

/* ---- consumer ----
 * Wait until at least one record is available (or the deadline), read them
 * in place with mmapq_get (index 0 is the oldest not yet released), then
 * mmapq_release(n) once they are safely written out: only then does the
 * stored position advance, so a crash before it replays them.
 *   mmapq_available -EINTR: nothing changed (records already seen stay
 *     readable with mmapq_get).
 *   mmapq_release -EINTR: released nothing; the records stay available and
 *     may be released again.
 *   mmapq_release msync error (sync = batch or always; -EIO etc.): the
 *     records were released (the cursor moved on), but the new cursor is
 *     not known to be on disk: after a power cut they may be delivered
 *     again; the producer does not reuse their bytes until a later release
 *     (or close) has written a cursor past them. */
MMAPQ_API int mmapq_available(struct mmapq *q, uint64_t deadline_ns, uint32_t *navail);
/* Record index (0: the oldest not yet released).  r->data points into the
 * shared mapping (read-only), at r->len bytes: valid until those records
 * are released or the handle closed; never written by anyone meanwhile.
 * Its checksum was checked first: -EBADMSG if it does not hold (a damaged
 * file: stop, and let `mmapqctl repair` salvage it).  -ENOENT if index is
 * not below what mmapq_available said.  Reading in order (index 0, 1, ...)
 * costs one frame each; any other order walks from index 0. */
MMAPQ_API int mmapq_get(struct mmapq *q, uint32_t index, struct mmapq_record *r);
/* mmapq_get of records index, index + 1, ... into r[0..n): returns how
 * many records it filled in, at most n and at most what mmapq_available
 * said less index; fewer if a later record is damaged (the next call, at
 * that index, returns -EBADMSG).  -ENOENT if index is not below what is
 * available, -EBADMSG if record index itself is damaged, -EINVAL if r is
 * NULL; r is untouched then. */
MMAPQ_API int mmapq_get_many(struct mmapq *q, uint32_t index, uint32_t n, struct mmapq_record *r);
/* Copies of the payloads of records index, index + 1, ... that are len
 * bytes long each (every int record is 8): record index + i is copied to
 * out + i * len.  The cheapest way to read fixed-size records: no struct
 * per record, the checks and the copy in one tight loop.  Returns how
 * many, at most n and at most what mmapq_available said less index; fewer
 * before a damaged record or a record of another length (the next call,
 * at that index, returns the error).  -ENOENT if index is not below what
 * is available, -EBADMSG if record index is damaged, -EMSGSIZE if it is
 * not len bytes long, -EINVAL if out is NULL; out is untouched then. */
MMAPQ_API int mmapq_copy_many(struct mmapq *q, uint32_t index, uint32_t n, void *out, uint32_t len);
MMAPQ_API int mmapq_release(struct mmapq *q, uint32_t n);

/* ---- any role ---- */
MMAPQ_API int mmapq_status(struct mmapq *q, struct mmapq_status *st);
/* The registered consumers, in table order, read without locks: up to n
 * into out (out may be NULL if n is 0).  Returns how many are registered
 * (more than n: only n were filled in), -EBADMSG (a corrupt table: a
 * state that is neither free nor registered, a cursor outside [floor,
 * tail], a name that is not one, a name registered twice; an observer's
 * mmapq_open refuses such a file too, naming what is wrong), or -EAGAIN
 * (the table kept changing while it was read: registrations and removals
 * without end). */
MMAPQ_API int mmapq_consumers(struct mmapq *q, struct mmapq_consumer_status *out, uint32_t n);
/* The registered producers, in table order, read without locks: up to n
 * into out (out may be NULL if n is 0).  Returns how many are registered
 * (more than n: only n were filled in), or -EBADMSG (an entry with a
 * state that is neither free nor registered, or a name that is not one);
 * out is untouched then.  A file of versions 1 to 3 has one producer,
 * MMAPQ_PRODUCER_DEFAULT (its published count: every record of the
 * file). */
MMAPQ_API int mmapq_producers(struct mmapq *q, struct mmapq_producer_status *out, uint32_t n);
/* Whether the producer waits for room, and which consumer holds it back
 * (any role, read without locks; each output may be NULL).
 *   *since_usec: CLOCK_REALTIME (microseconds) when the producer's wait
 *     for room began, 0 if it is not waiting (or no producer is attached).
 *     A wait begins when mmapq_reserve has to wait (not when a look finds
 *     the ring full: a reserve with deadline 0 never begins one) and lasts
 *     until a reserve or put finds room, or the producer closes; a reserve
 *     that gives up at its deadline (or is interrupted) leaves it on, so a
 *     producer that waits a slice at a time is in one wait.
 *   *total_usec: microseconds producers of this file have waited for room
 *     since it was created: a counter, which grows while a wait lasts (in
 *     steps of at most half a second).
 *   *consumer: the table index (mmapq_consumer_status.index) of the
 *     registered consumer that holds the oldest record kept: whose cursor
 *     on disk is the lowest, so the producer may write no further than a
 *     ring beyond it (the slowest of them if several are there); -1 if
 *     none is registered (the records wait for the next consumer).
 *     Whether or not the producer waits.
 * A file of versions 1 to 3: 0, 0 and -1.  Returns 0. */
MMAPQ_API int mmapq_blocked(struct mmapq *q, uint64_t *since_usec, uint64_t *total_usec,
                            int32_t *consumer);
/* How many records the consumer of table entry index (its
 * mmapq_consumer_status.index) has consumed since it registered, into
 * *consumed: the sum of what its mmapq_release calls released.  Unlike its
 * position, which starts where it registered, it counts only what it
 * released, and it never goes down while the consumer stays registered
 * (mmapqctl recreate starts it again at 0, as sequence numbers).  Any
 * role, read without locks.  0, -ENOENT (index is not a registered
 * consumer's entry), -EPROTO (a file of versions 1 to 3, which does not
 * count it). */
MMAPQ_API int mmapq_consumer_consumed(struct mmapq *q, uint32_t index, uint64_t *consumed);
/* The health of a consumer's output, for outputs with a server (the NATS
 * forwarder), kept in the queue file beside the consumer's entry so that
 * observers see it (mmapqctl metrics).  Its fields are frozen: a later version adds a
 * function, never a field. */
struct mmapq_output_health {
	uint64_t acknowledged;  /* records the server acknowledged */
	uint64_t reconnects;    /* connections made again after one was lost */
	uint64_t last_ack_usec; /* CLOCK_REALTIME of the last acknowledgement, 0: none */
	uint32_t in_flight;     /* records sent, not yet acknowledged */
	bool connected;         /* connected to a server now */
};
/* Consumer role: report h, the health of the output the consumer writes
 * to: connected and in_flight (kept up to 2^30 - 1) as they are now; acknowledged and reconnects
 * as what came since the previous report, added to the totals the entry
 * keeps since the consumer registered; last_ack_usec kept unless 0.  h NULL:
 * the output has no server to report on (the state an attach starts in).
 * Cheap (a few stores, no lock): call it as often as the health changes or
 * once a second.  0, -EPERM (not a consumer's handle), -EROFS (a file of
 * versions 1 to 3). */
MMAPQ_API int mmapq_output_report(struct mmapq *q, const struct mmapq_output_health *h);
/* Any role, read without locks: into *h what the consumer of table entry
 * index last reported (acknowledged and reconnects: the totals).  0;
 * -ENODATA (it has reported nothing since it last attached, or reported
 * that its output has no server); -ENOENT (index is not a registered
 * consumer's entry); -EPROTO (a file of versions 1 to 3). */
MMAPQ_API int mmapq_consumer_output(struct mmapq *q, uint32_t index, struct mmapq_output_health *h);
/* A consumer's policy for a full ring (mmapq_set_policy, mmapq_policy).
 *   on_full: what the producer does when a record does not fit because of
 *     this consumer's unconsumed records.  MMAPQ_POLICY_BLOCK (the
 *     default of every new entry): it waits, as the records are kept until
 *     consumed.  MMAPQ_POLICY_SKIP: while the consumer is detached (no
 *     process holds it), the producer moves its cursor past its oldest
 *     whole records, just far enough for the record, instead of waiting;
 *     the consumer loses them (counted in skipped) and the other consumers
 *     lose nothing.  An attached skip consumer is waited for as any other
 *     (the records it is handed stay in the ring until it releases them).
 *   inactive_timeout_s: seconds the consumer may stay detached before the
 *     producer daemon removes it (mmapq_consumer_remove); 0: never.  The
 *     library only stores it, for the producer to read.
 *   skipped: records this consumer lost to skips since it was registered;
 *   skipped_since_attach: of those, the ones lost since it last attached:
 *     for a consumer that is down, what it lost since it last ran; with
 *     index -1 (our own handle), what it lost while it was down before
 *     this attach (mmapq_policy fills both in; mmapq_set_policy ignores
 *     them). */
enum mmapq_policy_on_full {
	MMAPQ_POLICY_BLOCK = 0,
	MMAPQ_POLICY_SKIP = 1,
};

struct mmapq_policy {
	uint32_t on_full;            /* enum mmapq_policy_on_full */
	uint32_t inactive_timeout_s; /* 0: never */
	uint64_t skipped;
	uint64_t skipped_since_attach;
};

/* Store the policy of our own consumer entry (a consumer's handle of a
 * version-4 file, else -EPERM; -EINVAL: an on_full that is not one), under
 * the mutex; with sync batch or always, written to disk before it
 * returns.  It stays in the file for as long as the consumer is registered,
 * so that the producer keeps to it while the consumer is down. */
MMAPQ_API int mmapq_set_policy(struct mmapq *q, const struct mmapq_policy *p);
/* The policy and skip count of the consumer of table index index
 * (mmapq_consumer_status.index), or with index -1 of our own entry (a
 * consumer's handle), read without locks; any role.  -ENOENT: no consumer
 * is registered there (or, -1, the handle is not a consumer's); a file of
 * versions 1 to 3 has none either. */
MMAPQ_API int mmapq_policy(struct mmapq *q, int32_t index, struct mmapq_policy *out);
/* For `mmapqctl recreate`, which carries the consumers of a queue file
 * over into a new one: registers the consumers cs[0..n), as
 * mmapq_consumers() reported them (name, position, pid, start_usec,
 * attach_position, registered_usec, recoveries and attaches are kept;
 * index, lag, lag_bytes and attached are ignored), into the lowest free
 * entries of q's table, in that order.  q is a producer's handle (-EPERM
 * otherwise) of a version-4 file (-EROFS: a file opened to migrate it);
 * each position must be within [oldest record kept, tail] of q's queue
 * (the caller renumbers them: sequence numbers of a new file start at 0).
 * Floor then rises to the lowest of the cursors, as after a registration.
 * All or nothing: -EINVAL (a name no table may hold, or a negative pid; a
 * name starting with '-', which an older version registered, is carried),
 * -EEXIST (a name given twice, or already registered), -ERANGE (a position
 * outside the queue), -ENOSPC (fewer free entries than n), -EBADMSG (a
 * damaged record on the way to a cursor); an error of taking the mutex;
 * with sync batch or always, an msync error (then they are registered, but
 * not known to be on disk). */
MMAPQ_API int mmapq_consumers_restore(struct mmapq *q, const struct mmapq_consumer_status *cs,
                                      uint32_t n);
/* For `mmapqctl recreate`, which carries the producer table of a queue
 * file over into a new one: registers the producers ps[0..n), as
 * mmapq_producers() reported them (name, last_pid, start_usec,
 * registered_usec, published, dropped, bad_input, recoveries, attaches and
 * blocked_total_usec are kept; index, pid, attached and blocked_since_usec
 * are ignored: none of them is attached or waits), into the lowest free
 * entries of q's table, in that order.  q is a producer's handle (-EPERM
 * otherwise) of a version-4 file (-EROFS: a file opened to migrate it).
 * q's own entry may be one of them (its name in ps): it takes what is
 * carried under its name, in place of what q counted in this file (its
 * attach, what it published: a copy of the records is not a publish), and
 * needs no free entry; q stays attached to it.  All or nothing: -EINVAL (a
 * name no producer may take, as mmapq_consumer_name_valid says, or a
 * negative last_pid), -EEXIST (a name given
 * twice, or registered by another than q), -ENOSPC (fewer free entries
 * than the producers to register); an error of taking the mutex; with
 * sync batch or always, an msync error (then they are registered, but not
 * known to be on disk). */
MMAPQ_API int mmapq_producers_restore(struct mmapq *q, const struct mmapq_producer_status *ps,
                                      uint32_t n);
/* Unregister the consumer p->consumer of the queue file p->path (p->role
 * is ignored; no geometry needed): its records are no longer kept for it,
 * which releases a producer it held back.  If it was the last consumer,
 * the records nobody has consumed are let go too (floor moves to tail).
 * Returns how many records it had not consumed, or -ENOENT (no such
 * consumer, or no such file), -EBUSY (it is attached: err names the pid),
 * -EINVAL (not a name a queue file can hold; one starting with '-', which
 * mmapq_consumer_name_valid refuses, is accepted here, so that a consumer
 * an older version registered under it can be removed), or another error
 * of mmapq_open. */
MMAPQ_API int mmapq_consumer_remove(const struct mmapq_params *p, struct mmapq_error *err);
/* Whether name is a name a consumer may take: 1 to MMAPQ_CONSUMER_NAME_MAX
 * characters of MMAPQ_CONSUMER_NAME_CHARS, not starting with '-'. */
MMAPQ_API bool mmapq_consumer_name_valid(const char *name);
/* Check every record kept in the queue file p->path and salvage it if it
 * is damaged (what a producer or consumer does when it attaches alone to
 * a file that was not closed cleanly; this does it whatever the file
 * says): of the runs of intact records that start where the oldest record
 * kept or a consumer's cursor is, the one that holds records and reaches
 * furthest is kept,
 * and the records below and past it are dropped (*report says which; it
 * may be NULL).  Needs the file to itself (-EBUSY if anyone is attached)
 * and write access.  Returns the number of records
 * dropped (0: the file was intact), or as mmapq_open (a file whose header
 * is damaged, -EBADMSG, cannot be salvaged: err says what is wrong). */
MMAPQ_API int64_t mmapq_repair(const struct mmapq_params *p, struct mmapq_salvage *report,
                               struct mmapq_error *err);
/* Copy of the record with sequence number seq, if the queue still keeps
 * it (head <= seq < tail: head is the oldest record kept, mmapq_status),
 * read without locks and without writing anything, like a seqlock reader:
 * the payload is copied into buf (size must be at least mmapq_max_record(q),
 * else -EMSGSIZE) and its checksum checked, then head is read again, and
 * if the record was consumed meanwhile (its bytes may have been reused
 * during the copy) the copy is discarded: -ENOENT, as when seq is outside
 * the queue.  On success r->data points into buf, never into the shared
 * mapping, so what the caller prints is what was checked.  On failure *r is
 * untouched (buf may have been written).  -EBADMSG: the record is damaged
 * although the queue says it is kept; -EAGAIN: the consumers kept moving
 * the oldest record past the walk (try again).  Reading in order of seq
 * costs one frame each; otherwise it walks from the oldest record kept. */
MMAPQ_API int mmapq_peek(struct mmapq *q, uint64_t seq, void *buf, uint32_t size, struct mmapq_record *r);
/* The queue's largest payload (the buffer size mmapq_peek needs). */
MMAPQ_API uint32_t mmapq_max_record(const struct mmapq *q);
MMAPQ_API const char *mmapq_path(const struct mmapq *q);
/* Live change of mmapq_params.spin_us (producer or consumer). */
MMAPQ_API void mmapq_set_spin(struct mmapq *q, uint32_t spin_us);
/* Called about once a second by the daemons.  0 if all is well; -EBADMSG
 * if the header's identity or geometry changed under us (the file was
 * overwritten); -ESTALE if the path no longer names the file we have mapped
 * (deleted, renamed away or replaced: we would be talking to a file nobody
 * else will ever open); -errno if it cannot be checked. */
MMAPQ_API int mmapq_check(const struct mmapq *q);

#ifdef __cplusplus
}
#endif

#endif /* MMAPQ_H */
