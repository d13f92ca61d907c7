/* SPDX-License-Identifier: MIT */
/*
 * mmapq.h -- a crash-safe, bounded, single-producer single-consumer queue in
 * a memory-mapped file.  The file layout is in mmapq_format.h.
 *
 * Conventions (as in systemd's CODING_STYLE): every function that can fail
 * returns 0 (or a count) on success and a negative errno on failure; output
 * parameters are untouched on failure; mmapq_close(NULL) is a no-op.  The
 * library never logs, never exits and never installs signal handlers.
 * Codes with a queue-specific meaning (mmapq_strerror() words them):
 *   -EBADMSG    the file is not a valid queue file, or is corrupt
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

struct mmapq;

enum mmapq_role {
	MMAPQ_ROLE_PRODUCER = 1,
	MMAPQ_ROLE_CONSUMER = 2,
	MMAPQ_ROLE_OBSERVER = 3, /* read-only: status and dump; takes no locks */
};

/* With BATCH and ALWAYS a failed msync (EIO: the file system could not
 * write the pages back; ENOSPC, EDQUOT, ...) is returned by the call that
 * made it, as said at each call; with NEVER nothing is checked. */
enum mmapq_sync {
	MMAPQ_SYNC_NEVER  = 0, /* the kernel writes pages back when it likes     */
	MMAPQ_SYNC_BATCH  = 1, /* msync(MS_SYNC) after every published/consumed batch */
	MMAPQ_SYNC_ALWAYS = 2, /* msync(MS_SYNC) after every record, too           */
};

struct mmapq_params {
	const char *path;
	enum mmapq_role role;
	/* Geometry used to create the file and required of an existing one.
	 * The observer may leave them 0 to accept whatever the file has. */
	uint32_t capacity;     /* slots, power of two */
	uint32_t record_size;  /* payload bytes */
	uint32_t format;       /* enum mmapq_record_format */
	enum mmapq_sync sync;
	uint32_t file_mode;    /* for a new file, e.g. 0660 (umask applies) */
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
	/* For `mmapqctl recreate` only: also accept a file of format version 1
	 * (mmapq_format.h, "Versions") in the producer and consumer roles, to
	 * hold both roles and read its records out.  Nothing is ever written
	 * into such a file's slots: mmapq_put and mmapq_put_many return
	 * -EROFS.  Without it the roles refuse a version-1 file with -EPROTO
	 * (err names `mmapqctl recreate`); observers always accept it. */
	bool migrate;
};

/* Human-readable detail for a failed mmapq_open: what and where, naming the
 * file and, for a mismatch, both values. */
struct mmapq_error {
	char msg[512];
};

struct mmapq_record {
	uint64_t seq;
	uint32_t len;
	const void *data;      /* valid until the record is released */
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

struct mmapq_status {
	uint32_t version;
	uint32_t header_size;
	uint32_t capacity;
	uint32_t record_size;
	uint32_t slot_size;
	uint32_t format;
	uint64_t file_size;
	uint64_t created_usec;
	uint64_t head;         /* next to consume == records consumed so far */
	uint64_t tail;         /* next to publish == records published so far */
	struct mmapq_side_status producer;
	struct mmapq_side_status consumer;
	/* How "attached" was found out.  false: from the role locks in the lock
	 * file (PATH.lock).  true: the lock file could not be opened (an
	 * observer that may only read the queue, or no lock file, e.g. on a
	 * read-only file system), so a role counts as attached when its pid is
	 * alive: a guess, a reused pid looks attached. */
	bool attached_by_pid;
};

/* Open (creating if missing) and attach in a role.  See mmapq_format.h for
 * the attach protocol.  -EINTR ("interrupted while waiting for the attach
 * lock" or "... for the queue mutex" in err): nothing is attached and no
 * role is held; a file this call created stays, valid and empty. */
int mmapq_open(const struct mmapq_params *p, struct mmapq **ret, struct mmapq_error *err);
void mmapq_close(struct mmapq *q);

/* Message for a code returned by this library (negative errno). */
const char *mmapq_strerror(int code);
uint64_t mmapq_now_ns(void);
const char *mmapq_format_name(uint32_t format);

/* ---- producer ----
 * Reserve free slots (taking the lock only when the locally known free space
 * is used up; waits until at least one slot is free or the deadline), fill
 * them with mmapq_put, make them visible with mmapq_publish (one lock
 * round-trip for the whole batch; wakes the consumer only if it waits).
 *   mmapq_reserve -EINTR (or -ETIMEDOUT, -EAGAIN): no room was found and
 *     *nfree is untouched.  It publishes pending records before it waits, so
 *     they may or may not be published: mmapq_pending() says (0: all are).
 *   mmapq_publish -EINTR: published nothing; the records stay pending and
 *     the next mmapq_publish (or mmapq_reserve) publishes them.
 *   msync errors (sync = batch or always; -EIO etc.): mmapq_put did not put
 *     the record (mmapq_pending() unchanged); mmapq_publish and mmapq_reserve
 *     did publish (the consumer sees the records, mmapq_pending() is 0 after
 *     mmapq_publish), but they are not known to be on disk: a power cut or a
 *     kernel crash may lose them.  mmapq_reserve reports such an error
 *     rather than -EAGAIN, -ETIMEDOUT or -EINTR.
 *   mmapq_close publishes what is pending; if it has to wait for the mutex
 *     and is interrupted, it does not (the records are rolled back, as after
 *     a crash before publishing). */
int mmapq_reserve(struct mmapq *q, uint64_t deadline_ns, uint32_t *nfree);
int mmapq_put(struct mmapq *q, const void *data, uint32_t len);
/* Put many records of the same length in one call: record i is the len
 * bytes at data + i * len.  As mmapq_put for each, but the checks are done
 * once and the slots filled in a tight loop (an int record costs a few
 * instructions).  Puts min(n, room) records, room being what the last
 * mmapq_reserve found less what was put since, and returns how many (0 if
 * n is 0); -ENOBUFS if there is no room at all, -EMSGSIZE for a bad len
 * (nothing put).  With sync = always the slots are synced once for the
 * call: on an msync error nothing was put (mmapq_pending() unchanged). */
int mmapq_put_many(struct mmapq *q, const void *data, uint32_t len, uint32_t n);
int mmapq_publish(struct mmapq *q);
uint32_t mmapq_pending(const struct mmapq *q); /* put but not yet published */
/* Sequence number the next mmapq_put will give its record. */
uint64_t mmapq_next_seq(const struct mmapq *q);
void mmapq_set_sync(struct mmapq *q, enum mmapq_sync sync); /* live change */
void mmapq_count_dropped(struct mmapq *q, uint64_t n);
void mmapq_count_bad_input(struct mmapq *q, uint64_t n);

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
 *     records were released (head moved on, the producer may reuse their
 *     slots), but the new head is not known to be on disk: after a power
 *     cut they may be delivered again. */
int mmapq_available(struct mmapq *q, uint64_t deadline_ns, uint32_t *navail);
int mmapq_get(struct mmapq *q, uint32_t index, struct mmapq_record *r);
/* mmapq_get of records index, index + 1, ... into r[0..n): checks every
 * slot in one tight loop and returns how many records it filled in, at
 * most n and at most what mmapq_available said less index; fewer if a
 * later slot is corrupt (the next call, at that index, returns -EBADMSG).
 * -ENOENT if index is not below what is available, -EBADMSG if record
 * index itself is corrupt; r is untouched then.  The data pointers are
 * valid until the records are released. */
int mmapq_get_many(struct mmapq *q, uint32_t index, uint32_t n, struct mmapq_record *r);
/* Copies of the payloads of records index, index + 1, ... that are len
 * bytes long each (every int record is 8): record index + i is copied to
 * out + i * len, its sequence number being that of record index (the
 * oldest available one's, mmapq_get) + i.  The cheapest way to read
 * fixed-size records: no struct per record, the checks and the copy in one
 * tight loop (an int record costs a few instructions).  Returns how many,
 * at most n and at most what mmapq_available said less index; fewer before
 * a corrupt slot or a record of another length (the next call, at that
 * index, returns the error).  -ENOENT if index is not below what is
 * available, -EBADMSG if record index is corrupt, -EMSGSIZE if it is not
 * len bytes long; out is untouched then. */
int mmapq_copy_many(struct mmapq *q, uint32_t index, uint32_t n, void *out, uint32_t len);
int mmapq_release(struct mmapq *q, uint32_t n);

/* ---- any role ---- */
int mmapq_status(struct mmapq *q, struct mmapq_status *st);
/* Copy of the unconsumed record with sequence number seq (head <= seq <
 * tail), read without locks and without writing anything, like a seqlock
 * reader: the payload is copied into buf (size must be at least
 * mmapq_record_size(q), else -EMSGSIZE), then head is read again, and if
 * the record was consumed meanwhile (its slot may have been reused during
 * the copy) the copy is discarded: -ENOENT, as when seq is outside the
 * queue.  On success r->data points into buf, never into the shared
 * mapping, so what the caller prints is what was checked.  On failure *r is
 * untouched (buf may have been written).  -EBADMSG: the slot does not hold
 * record seq although the queue says it should (corrupt). */
int mmapq_peek(struct mmapq *q, uint64_t seq, void *buf, uint32_t size, struct mmapq_record *r);
/* The queue's maximum payload size (the buffer size mmapq_peek needs). */
uint32_t mmapq_record_size(const struct mmapq *q);
const char *mmapq_path(const struct mmapq *q);
/* Live change of mmapq_params.spin_us (producer or consumer). */
void mmapq_set_spin(struct mmapq *q, uint32_t spin_us);
/* Called about once a second by the daemons.  0 if all is well; -EBADMSG
 * if the header's identity or geometry changed under us (the file was
 * overwritten); -ESTALE if the path no longer names the file we have mapped
 * (deleted, renamed away or replaced: we would be talking to a file nobody
 * else will ever open); -errno if it cannot be checked. */
int mmapq_check(const struct mmapq *q);

#endif /* MMAPQ_H */
