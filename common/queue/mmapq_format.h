/* SPDX-License-Identifier: MIT */
/*
 * mmapq_format.h -- the layout of an mmapq queue file, version 3.
 *
 * This header is the file format: fixed-width fields, no pointers, every
 * size and offset frozen by _Static_assert below.  The API lives in mmapq.h;
 * nothing but the library and its tests should include this file.
 *
 *   offset 0            struct mmapq_header   (MMAPQ_HEADER_SIZE bytes, one page)
 *   offset header_size  capacity slots of slot_size bytes each
 *                       (mmapq_slot_size(format, record_size)):
 *                         format line: struct mmapq_slot (16 bytes) +
 *                           payload (record_size, rounded up to 8);
 *                         format int:  struct mmapq_int_slot (16 bytes:
 *                           sequence number and value), whatever
 *                           record_size says
 *   file size           header_size + capacity * slot_size, exactly
 *
 * Versions.  1: every slot was a struct mmapq_slot + record_size payload
 * bytes, int records too (an int record took 16 + 8 bytes at least, 80
 * with the shipped record_size 64).  2: int slots are struct
 * mmapq_int_slot, 16 bytes; one consumer, its side at offset 256 (struct
 * mmapq_header_v2).  3 (this one): several named consumers (fan-out), each
 * with its own cursor, pid, counters and wait object in the consumer table
 * at offset 512; the oldest record still kept (floor) where version 2 had
 * its consumer's head; max_consumers in the identity (geometry).  Slots are
 * as in version 2.
 * This library opens a version-1 or version-2 file only to read it: as an
 * observer (status, dump) and, with mmapq_params.migrate, in both roles
 * without writing a slot (what `mmapqctl recreate` does to carry its
 * records over into a new file).  A producer or consumer that finds a
 * version-2 file and nobody else attached upgrades it in place
 * (upgrade_v2_alone in compat.c: its consumer becomes the registered
 * consumer "default" at the same position; no slot moves); with anyone
 * attached (an older daemon) it refuses (-EPROTO, naming both ways out).
 * Version 1 is refused (-EPROTO, naming `mmapqctl recreate`).
 *
 * Queue id.  16 random bytes (getrandom) at offset 3584, the start of the
 * reserved tail, so that records of different queues (on one host or many)
 * can be told apart: the NATS output's Nats-Msg-Id is "<id in hex>:<seq>",
 * which JetStream's duplicate window uses to drop a record forwarded twice.
 * A file is given one when it is created; a file without one (all zero: a
 * version-3 file made before ids, or one upgraded in place from version 2,
 * whose tail was reserved and zero) gets one from the first producer or
 * consumer that attaches to it, under the mutex, written through to disk
 * at once.  Observers report all zero as "no id yet".  A file made anew
 * (mmapqctl recreate) has a new id, as its sequence numbers start again
 * at 0.
 *
 * All integers are in the byte order of the machine that created the file;
 * byte_order tells a reader on another machine that it cannot use the file.
 *
 * Positions.  All positions are free-running 64-bit sequence numbers: the
 * record with sequence number s lives in slot (s & (capacity - 1)).  tail is
 * the next sequence number the producer will publish (so it also counts every
 * record ever published).  Each registered consumer has its own cursor
 * (struct mmapq_consumer.position): the next sequence number it will
 * consume.  floor is the oldest record still kept: the lowest cursor of the
 * registered consumers (or, with none registered, where the last one left
 * off: records wait for the next consumer, as in version 2).  Invariants:
 * floor <= cursor <= tail for every registered consumer, tail <= floor +
 * capacity.  The records with floor <= seq < tail are in the ring; the
 * producer may overwrite a slot only below floor (its bound is floor +
 * capacity), so the slowest registered consumer holds it back, and a
 * registered consumer that is down keeps its records (a durable
 * subscription) until it comes back or is removed (`mmapqctl consumer
 * remove`).
 *
 * Synchronisation, and why it is not pthread_cond_t.
 *   A robust (PTHREAD_MUTEX_ROBUST), process-shared pthread mutex guards
 *   tail, floor, every cursor, the consumer table and the wait flags.  The
 *   condition variables (one not_empty per consumer: that consumer waits,
 *   the producer signals; not_full: the producer waits, a consumer that
 *   moves floor signals) are NOT glibc's pthread_cond_t, because glibc's
 *   process-shared condvar keeps state for every waiter and signaler
 *   inside the object, and a process SIGKILLed at the wrong instant leaves
 *   that state behind: a later signal, broadcast or destroy can block
 *   forever (README, "Synchronisation", has the measurements; glibc BZ
 *   25847, 21422).
 *   Instead each wait object is a futex sequence counter (struct mmapq_cond):
 *     signal (mutex held):  if waiting: waiting = 0, seq++, FUTEX_WAKE(all)
 *     wait   (mutex held):  waiting = 1, s = seq, unlock,
 *                           FUTEX_WAIT(&seq, s, min(deadline, 0.5 s)),
 *                           relock (robustly), waiting = 0, caller rechecks
 *   A dead process leaves nothing behind in it: at worst a stale waiting = 1,
 *   which costs one unneeded FUTEX_WAKE.  The layout does not depend on the C
 *   library.  tests/queue/test_crash.c SIGKILLs waiters, signalers and mutex
 *   holders at random instants and at every fault point to show it.
 *   Fast paths: mmapq_available first looks at tail, and mmapq_reserve at
 *   floor, with load-acquire, without the mutex (pairing with the
 *   store-release of whoever stored it); the mutex is taken only to store a
 *   position, to wake, or to register and wait.  A process holds the mutex
 *   for a few stores, so lockers spin briefly (trylock) before blocking,
 *   and block at most 250 ms at a time, asking the caller's interrupted
 *   callback (a stopped holder must not keep a SIGTERMed waiter) and
 *   re-checking the header in between.
 *   Observers (mmapq_peek) read a slot like a seqlock reader: check the
 *   slot, copy the payload out, acquire fence, read floor again; floor >
 *   seq means the slot may have been reused during the copy (the producer
 *   overwrites it only after its acquire load of a floor > seq, which a
 *   consumer stored with release): the copy is discarded.
 *   Rules it relies on: every wait has a deadline (at most 0.5 s); wake only
 *   under the mutex and only a waiter that registered (a registered
 *   consumer whose waiting is 1, the producer when floor moved and it
 *   waits); who gets EOWNERDEAD repairs (every cursor checked, floor
 *   recomputed), then wakes every side once unconditionally; one wait
 *   object per waiter (each consumer its own, roles are exclusive), so no
 *   consumer ever waits for another; wait state is re-initialised only
 *   when nobody else is attached.
 *
 * Attach protocol.  OFD byte-range locks (the kernel drops them when a
 * process dies) on a lock file beside the queue file, PATH.lock
 * (MMAPQ_LOCK_SUFFIX; LMDB's lock.mdb is the precedent), never on the
 * queue file itself: a shared lock needs only read access to the file it
 * is taken on, so anyone who may read the queue could otherwise hold the
 * role bytes (both daemons locked out) or the attach byte (nobody ever
 * alone to re-initialise a stale mutex).  The daemons create the lock file
 * (O_CREAT | O_EXCL, O_NOFOLLOW) with read and write for exactly the
 * classes (owner, group, other) that may write the queue file and nothing
 * for the others (queue 0640: lock file 0600; 0660: 0660), owned like the
 * queue file where they may (the group; the owner too when run as root).
 * Its contents are never read or written; it is never removed.  Bytes:
 *   byte MMAPQ_LOCK_ATTACH    every attached daemon holds a shared lock.  A
 *                             process that gets it exclusively is alone: it
 *                             validates the file, re-initialises the mutex
 *                             and wait flags (a lock word left by a crash
 *                             without a kernel to mark it, e.g. a reboot or
 *                             a copied file, would otherwise hang the next
 *                             lock), then downgrades to shared.
 *   byte MMAPQ_LOCK_PRODUCER  exclusive while a producer is attached.
 *   byte MMAPQ_LOCK_CONSUMER + i  exclusive while the consumer of table
 *                             entry i is attached (i < MMAPQ_CONSUMERS_MAX;
 *                             byte MMAPQ_LOCK_CONSUMER was version 2's one
 *                             consumer).  `mmapqctl consumer remove` takes
 *                             it too, so a consumer is never removed while
 *                             attached; `mmapqctl recreate` (migrate) takes
 *                             all of them at once.
 *   byte MMAPQ_LOCK_REMOVE    exclusive while `mmapqctl consumer remove`
 *                             runs, from before it takes the entry's byte
 *                             until it is done; shared while a consumer
 *                             takes its own entry's byte (waiting for a
 *                             remove in progress, as long as it takes, and
 *                             until asked to stop).  So a consumer that
 *                             finds its entry's byte held knows it is held
 *                             by a live consumer of that name, never by a
 *                             remove of that name, or of the entry it just
 *                             registered into, that is about to let it go.
 * A consumer registers (or finds its name) under the mutex, then takes its
 * entry's byte, then checks under the mutex that the entry is still its
 * own (a remove may have come in between: then it starts over).
 * Observers open the lock file read-only if they may, to ask F_OFD_GETLK
 * whether a role is held; if they may not (or it does not exist, e.g. on a
 * read-only file system where no daemon can run), they report a role as
 * attached when its pid is alive, and say that they guessed.
 * Processes that lock the queue file itself (before the lock file) do not
 * see these locks: all attached processes must use the same protocol.
 */
#ifndef MMAPQ_FORMAT_H
#define MMAPQ_FORMAT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "mmapq.h" /* the record formats and the limits, which are public */

#define MMAPQ_MAGIC             "MMAPQ\0\r\n" /* 8 bytes; \r\n catches text-mode copies */
#define MMAPQ_VERSION           MMAPQ_FILE_VERSION
#define MMAPQ_VERSION_1         UINT32_C(1) /* read only, to migrate (see "Versions") */
#define MMAPQ_VERSION_2         UINT32_C(2) /* read only, to migrate; upgraded in place alone */
#define MMAPQ_BYTE_ORDER        UINT32_C(0x01020304)
#define MMAPQ_HEADER_SIZE       UINT32_C(4096)
#define MMAPQ_SLOT_HEADER_SIZE  UINT32_C(16) /* line slots (and every version-1 slot) */
#define MMAPQ_INT_SLOT_SIZE     UINT32_C(16) /* int slots, version 2 */

/* The limits enforced on creation and on every attach (MMAPQ_CAPACITY_MIN
 * ... MMAPQ_FILE_SIZE_MAX), the record formats (enum mmapq_record_format)
 * and the lock file's name (MMAPQ_LOCK_SUFFIX) are in mmapq.h. */

/* The OFD lock bytes of the lock file (see "Attach protocol" above). */
#define MMAPQ_LOCK_ATTACH       0
#define MMAPQ_LOCK_PRODUCER     1
#define MMAPQ_LOCK_CONSUMER     2 /* + the consumer's index in the table */
#define MMAPQ_LOCK_REMOVE       (MMAPQ_LOCK_CONSUMER + MMAPQ_CONSUMERS_MAX)

/* struct mmapq_consumer.state */
#define MMAPQ_CONSUMER_FREE       UINT32_C(0)
#define MMAPQ_CONSUMER_REGISTERED UINT32_C(1)

/*
 * One wake-up channel.  seq is the futex word.  Both fields are written
 * only with the queue mutex held: waiting = 1 by the waiter before it
 * sleeps, waiting = 0 by the signaler (or by the waiter once it is back),
 * seq++ by the signaler.  The waiter reads seq under the mutex and sleeps
 * outside it with FUTEX_WAIT(seq, value read), so an increment made after
 * it unlocked is never missed.
 */
struct mmapq_cond {
	uint32_t seq;      /* futex word; relaxed atomics, changed under the mutex */
	uint32_t waiting;  /* 1 while the (single) waiter is registered          */
	uint8_t  reserved[56];
};

/*
 * The producer's state (and, in version 2, the one consumer's: struct
 * mmapq_header_v2), on its own cache lines.  Every field is written only by
 * the process holding that role (single writer, relaxed atomic stores)
 * except position, which is also written under the mutex.
 */
struct mmapq_side {
	/* Producer: tail.  Consumer: head.  Written by the owner with the mutex
	 * held (store-release); read by the other side under the mutex or with
	 * load-acquire.  The producer's release store of tail publishes the slot
	 * contents it wrote before; the consumer's release store of head hands
	 * the slots it read back to the producer. */
	uint64_t position;
	int32_t  pid;          /* owner's pid, set after taking the role lock */
	uint32_t reserved0;
	uint64_t start_usec;   /* CLOCK_REALTIME when the owner attached       */
	uint64_t dropped;      /* producer: records dropped by on_full = drop  */
	uint64_t bad_input;    /* producer: rejected tokens and lines          */
	uint64_t recoveries;   /* EOWNERDEAD repairs and stale-lock resets done
	                          by this role                                  */
	uint64_t attaches;     /* times a process took this role               */
	uint8_t  reserved[72];
};

/*
 * One registered consumer (version 3): an entry of the consumer table,
 * three cache lines, so that no two consumers (and no consumer and the
 * producer) write the same line.
 */
struct mmapq_consumer {
	/* Line 0: the consumer's own.  position is written by the process
	 * holding this entry's role byte, with the mutex held (store-release:
	 * its reads of the slots below it come first); read under the mutex
	 * by the consumer that recomputes floor, by the repair after
	 * EOWNERDEAD, and with load-acquire by observers.  state is written
	 * with the mutex held (store-release) by whoever registers (a
	 * consumer's first attach) or removes (`mmapqctl consumer remove`,
	 * holding the role byte); read under the mutex, observers acquire.
	 * The others are written by the role holder alone (relaxed atomic
	 * stores), read by observers (relaxed). */
	uint64_t position;        /* next sequence number it consumes        */
	uint32_t state;           /* MMAPQ_CONSUMER_FREE / _REGISTERED        */
	int32_t  pid;             /* last holder's pid, set after the role lock */
	uint64_t start_usec;      /* CLOCK_REALTIME when the holder attached  */
	uint64_t attach_position; /* position when the holder attached (rate) */
	uint64_t registered_usec; /* CLOCK_REALTIME of the registration       */
	uint64_t recoveries;      /* EOWNERDEAD repairs and stale-lock resets
	                             done by this consumer                    */
	uint64_t attaches;        /* times a process took this consumer's role */
	uint64_t reserved0;
	/* Line 1: the name, 1 to MMAPQ_CONSUMER_NAME_MAX bytes of
	 * MMAPQ_CONSUMER_NAME_CHARS and NUL-padded, unique among the registered
	 * entries; written with the mutex held before state becomes
	 * REGISTERED, never changed while registered.  One starting with '-'
	 * is valid here (older versions registered such names), though no
	 * consumer may take one now (mmapq_consumer_name_valid). */
	char     name[64];
	/* Line 2: this consumer waits on it, the producer signals it. */
	struct mmapq_cond not_empty;
};

/* The oldest record still kept.  floor is written with the mutex held
 * (store-release) by a consumer whose release or registration moved the
 * lowest cursor, by `consumer remove`, and by the repair after EOWNERDEAD;
 * read by the producer with load-acquire (its bound: floor + capacity;
 * the acquire pairs with that store-release, which comes after the
 * slowest consumer's reads of the slots below it, ordered through the
 * mutex), by consumers under the mutex, by observers with load-acquire.
 * At the offset of version 2's consumer head, which meant the same. */
struct mmapq_floor {
	uint64_t floor;
	uint8_t  reserved[120];
};

struct mmapq_header {
	/* Identity and geometry: written once at creation (before the file is
	 * linked into place, so nobody sees it half-written), read-only after
	 * (an in-place upgrade from version 2 writes max_consumers and then
	 * version, alone). */
	uint8_t  magic[8];
	uint32_t version;
	uint32_t header_size;  /* MMAPQ_HEADER_SIZE; the slots start here     */
	uint32_t byte_order;   /* MMAPQ_BYTE_ORDER as written by the creator  */
	uint32_t format;       /* enum mmapq_record_format                    */
	uint32_t capacity;     /* number of slots, a power of two             */
	uint32_t record_size;  /* maximum payload bytes per record            */
	uint32_t slot_size;    /* mmapq_slot_size_v(version, format, record_size) */
	uint32_t max_consumers; /* entries of the table in use, 1..MMAPQ_CONSUMERS_MAX
	                          (version 2: reserved, zero)                  */
	uint64_t file_size;    /* header_size + capacity * slot_size          */
	uint64_t created_usec; /* CLOCK_REALTIME at creation                  */
	uint8_t  reserved1[8];

	/* The robust, process-shared mutex.  Initialised at creation and again
	 * by whoever attaches alone; otherwise touched only by pthread calls. */
	union {
		pthread_mutex_t mutex;
		uint8_t bytes[64];
	} lock;

	struct mmapq_side producer;   /* written by the producer */
	struct mmapq_floor floor;     /* the oldest record kept (see above) */
	uint8_t  reserved2[64];       /* version 2's not_empty; zero */
	struct mmapq_cond not_full;   /* producer waits, the consumer that moves floor signals */
	struct mmapq_consumer consumers[MMAPQ_CONSUMERS_MAX]; /* [max_consumers..] zero */

	/* The queue's identity (see "Queue id" above): 16 random bytes,
	 * written at creation, or, in a file without one (all zero), once by
	 * the first producer or consumer to attach, under the mutex.  Never
	 * changed after that. */
	uint8_t  id[MMAPQ_ID_SIZE];
	uint8_t  reserved[496];       /* must be zero */
} __attribute__((aligned(64)));

/*
 * Version 2's header (read to migrate or upgrade it; never created): the
 * identity, mutex and producer as in version 3, one consumer.
 */
struct mmapq_header_v2 {
	uint8_t  identity[64];        /* as version 3's, max_consumers zero */
	uint8_t  lock[64];
	struct mmapq_side producer;
	struct mmapq_side consumer;   /* position: head, where version 3 has floor */
	struct mmapq_cond not_empty;  /* consumer waits, producer signals */
	struct mmapq_cond not_full;   /* producer waits, consumer signals */
	uint8_t  reserved[3584];      /* must be zero */
} __attribute__((aligned(64)));

/*
 * Slot header of format line (and of every slot of a version-1 file).
 * Written by the producer before it publishes the slot (the release store
 * of tail); read by the consumer after its acquire of tail.  The consumer
 * never writes slots (it maps them PROT_READ).
 */
struct mmapq_slot {
	uint64_t seq;       /* sequence number of the record in this slot */
	uint32_t len;       /* payload bytes, <= record_size              */
	uint32_t reserved;  /* zero                                        */
	/* payload follows */
};

/*
 * A slot of format int (version 2): the record's length is always 8, so it
 * is not stored.  Written and read like struct mmapq_slot: by the producer
 * before its release store of tail, by the consumer after its acquire load
 * of tail.
 */
struct mmapq_int_slot {
	uint64_t seq;       /* sequence number of the record in this slot */
	int64_t  value;     /* the record: one int64_t, host byte order    */
};

/* Frozen layout. */
_Static_assert(sizeof(pthread_mutex_t) <= 64, "pthread_mutex_t does not fit its 64 bytes");
_Static_assert(sizeof(struct mmapq_cond) == 64, "mmapq_cond is one cache line");
_Static_assert(sizeof(struct mmapq_side) == 128, "mmapq_side is two cache lines");
_Static_assert(sizeof(struct mmapq_slot) == MMAPQ_SLOT_HEADER_SIZE, "slot header size");
_Static_assert(sizeof(struct mmapq_header) == MMAPQ_HEADER_SIZE, "header is one page");
_Static_assert(offsetof(struct mmapq_header, magic) == 0, "magic offset");
_Static_assert(offsetof(struct mmapq_header, version) == 8, "version offset");
_Static_assert(offsetof(struct mmapq_header, header_size) == 12, "header_size offset");
_Static_assert(offsetof(struct mmapq_header, byte_order) == 16, "byte_order offset");
_Static_assert(offsetof(struct mmapq_header, format) == 20, "format offset");
_Static_assert(offsetof(struct mmapq_header, capacity) == 24, "capacity offset");
_Static_assert(offsetof(struct mmapq_header, record_size) == 28, "record_size offset");
_Static_assert(offsetof(struct mmapq_header, slot_size) == 32, "slot_size offset");
_Static_assert(offsetof(struct mmapq_header, file_size) == 40, "file_size offset");
_Static_assert(offsetof(struct mmapq_header, created_usec) == 48, "created_usec offset");
_Static_assert(offsetof(struct mmapq_header, max_consumers) == 36, "max_consumers offset");
_Static_assert(offsetof(struct mmapq_header, reserved1) == 56, "reserved1 offset");
_Static_assert(offsetof(struct mmapq_header, lock) == 64, "mutex on its own cache line");
_Static_assert(offsetof(struct mmapq_header, producer) == 128, "producer cache lines");
_Static_assert(offsetof(struct mmapq_header, floor) == 256, "floor where version 2 had its head");
_Static_assert(offsetof(struct mmapq_header, reserved2) == 384, "version 2's not_empty, unused");
_Static_assert(offsetof(struct mmapq_header, not_full) == 448, "not_full cache line");
_Static_assert(offsetof(struct mmapq_header, consumers) == 512, "consumer table");
_Static_assert(offsetof(struct mmapq_header, id) == 512 + MMAPQ_CONSUMERS_MAX * 192, "queue id");
_Static_assert(offsetof(struct mmapq_header, id) == 3584, "queue id at the start of the tail");
_Static_assert(offsetof(struct mmapq_header, reserved) == 3600, "reserved tail after the id");
_Static_assert(sizeof(struct mmapq_consumer) == 192, "a consumer is three cache lines");
_Static_assert(sizeof(struct mmapq_floor) == 128, "floor has two cache lines of its own");
_Static_assert(offsetof(struct mmapq_consumer, position) == 0, "consumer.position offset");
_Static_assert(offsetof(struct mmapq_consumer, state) == 8, "consumer.state offset");
_Static_assert(offsetof(struct mmapq_consumer, pid) == 12, "consumer.pid offset");
_Static_assert(offsetof(struct mmapq_consumer, start_usec) == 16, "consumer.start_usec offset");
_Static_assert(offsetof(struct mmapq_consumer, attach_position) == 24, "consumer.attach_position offset");
_Static_assert(offsetof(struct mmapq_consumer, registered_usec) == 32, "consumer.registered_usec offset");
_Static_assert(offsetof(struct mmapq_consumer, recoveries) == 40, "consumer.recoveries offset");
_Static_assert(offsetof(struct mmapq_consumer, attaches) == 48, "consumer.attaches offset");
_Static_assert(offsetof(struct mmapq_consumer, name) == 64, "consumer name on its own cache line");
_Static_assert(offsetof(struct mmapq_consumer, not_empty) == 128, "consumer wait object on its own cache line");
_Static_assert(sizeof(((struct mmapq_consumer *)0)->name) == MMAPQ_CONSUMER_NAME_MAX + 1, "name and its NUL");
_Static_assert(sizeof(struct mmapq_header_v2) == MMAPQ_HEADER_SIZE, "version 2 header is one page");
_Static_assert(offsetof(struct mmapq_header_v2, producer) == offsetof(struct mmapq_header, producer),
               "version 2 and 3 share the producer");
_Static_assert(offsetof(struct mmapq_header_v2, consumer.position) == offsetof(struct mmapq_header, floor.floor),
               "version 2's head is version 3's floor");
_Static_assert(offsetof(struct mmapq_header_v2, not_empty) == 384, "version 2 not_empty");
_Static_assert(offsetof(struct mmapq_header_v2, not_full) == offsetof(struct mmapq_header, not_full),
               "version 2 and 3 share not_full");
_Static_assert(offsetof(struct mmapq_header_v2, reserved) == 512, "version 2 reserved tail");
_Static_assert(offsetof(struct mmapq_side, position) == 0, "side.position offset");
_Static_assert(offsetof(struct mmapq_side, pid) == 8, "side.pid offset");
_Static_assert(offsetof(struct mmapq_side, start_usec) == 16, "side.start_usec offset");
_Static_assert(offsetof(struct mmapq_side, dropped) == 24, "side.dropped offset");
_Static_assert(offsetof(struct mmapq_side, bad_input) == 32, "side.bad_input offset");
_Static_assert(offsetof(struct mmapq_side, recoveries) == 40, "side.recoveries offset");
_Static_assert(offsetof(struct mmapq_side, attaches) == 48, "side.attaches offset");
_Static_assert(offsetof(struct mmapq_cond, seq) == 0, "cond.seq offset");
_Static_assert(offsetof(struct mmapq_cond, waiting) == 4, "cond.waiting offset");
_Static_assert(offsetof(struct mmapq_slot, seq) == 0, "slot.seq offset");
_Static_assert(offsetof(struct mmapq_slot, len) == 8, "slot.len offset");
_Static_assert(sizeof(struct mmapq_int_slot) == MMAPQ_INT_SLOT_SIZE, "int slot size");
_Static_assert(offsetof(struct mmapq_int_slot, seq) == 0, "int_slot.seq offset");
_Static_assert(offsetof(struct mmapq_int_slot, value) == 8, "int_slot.value offset");

/* Bytes per slot of a file of that version, format and record size. */
static inline uint32_t mmapq_slot_size_v(uint32_t version, uint32_t format, uint32_t record_size)
{
	if (version >= 2 && format == MMAPQ_FORMAT_INT)
		return MMAPQ_INT_SLOT_SIZE;
	return MMAPQ_SLOT_HEADER_SIZE + ((record_size + 7u) & ~7u);
}

/* The same for a file of this version (what mmapq_open creates). */
static inline uint32_t mmapq_slot_size(uint32_t format, uint32_t record_size)
{
	return mmapq_slot_size_v(MMAPQ_VERSION, format, record_size);
}

#endif /* MMAPQ_FORMAT_H */
