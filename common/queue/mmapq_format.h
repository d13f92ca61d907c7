/* SPDX-License-Identifier: MIT */
/*
 * mmapq_format.h -- the layout of an mmapq queue file, version 4.
 *
 * This header is the file format: fixed-width fields, no pointers, every
 * size and offset frozen by _Static_assert below.  The API lives in mmapq.h;
 * nothing but the library and its tests should include this file.
 *
 *   offset 0            struct mmapq_header   (MMAPQ_HEADER_SIZE bytes, two
 *                       pages: the second holds the producer table)
 *   offset header_size  the ring: size bytes (a power of two) of frames
 *   file size           header_size + size, exactly
 *
 * Frames.  Every record is a frame at its real size: struct mmapq_frame (8
 * bytes: its length and a checksum) and the payload, padded to a multiple
 * of 8 (mmapq_frame_bytes): 8 to 15 bytes more than the payload, an int
 * record 16 bytes in all.  Frames never wrap: where a record does not fit
 * before the ring's end, a padding frame (len MMAPQ_FRAME_PAD) says that
 * the bytes from there to the end are unused, and the record starts at
 * offset 0.  Padding takes no sequence number.  Nor does a fill frame (len
 * MMAPQ_FRAME_FILL_BIT | n): n bytes after its header that nobody uses, n
 * a multiple of 8 (at most MMAPQ_FRAME_FILL_MAX: more bytes take several),
 * the frame inside one lap; readers pass it as they pass padding, any
 * number of them and of padding frames (one a lap) before a record, and
 * after the last record published, up to tail_byte.  max_record bounds a
 * payload, and mmapq_frame_bytes(max_record) <= size / 4, so that at least
 * four of the largest records fit and the ring keeps flowing.
 *
 * Checksums.  crc is CRC-32C (crc32c.h) of the frame's free-running byte
 * position (8 bytes), len (4 bytes) and the payload, in the file's byte
 * order: a frame of an earlier lap at the same offset has another byte
 * position, so it, one written half (a power cut), or one read at the
 * wrong place never passes for the frame expected there.  The position,
 * not the record's sequence number, so that a frame can be written before
 * its number is known.  The sequence number is not stored: a frame is
 * where its predecessor ends, so its number is the count of frames from a
 * position whose pair {seq, byte} is whole (floor, a synced cursor), and
 * every walk that hands out or numbers records checks each frame on its
 * way (a damaged length would otherwise lead to an intact frame of another
 * record).  A cursor's pair stored half (its byte without its seq) passes
 * the checksum of the frame there; a process alone finds it by counting
 * from that consumer's synced cursor (salvage.c, pairs_suspect).  Every
 * record is checked before it is handed out; a padding frame's crc covers
 * its own byte position and MMAPQ_FRAME_PAD, a fill frame's its byte
 * position and its len.
 *
 * Positions.  Free-running 64-bit sequence numbers and byte positions:
 * the frame at byte position b lives at ring offset b & (size - 1).  tail
 * {seq, byte}: where the producer publishes next (tail.seq counts every
 * record ever published).  Each registered consumer has its own cursor
 * {seq, byte} (struct mmapq_consumer): the next record it consumes.  floor
 * {seq, byte}: the oldest record still kept, the lowest cursor of the
 * registered consumers (or, with none registered, where the last one left
 * off: records wait for the next consumer).  Invariants: floor <= cursor <=
 * tail for every registered consumer (both members), tail.byte - floor.byte
 * <= size, every byte position a multiple of 8, and each cursor's byte
 * where its seq's frame starts.  The producer may write a byte only below
 * floor.byte + size, so the slowest registered consumer holds it back, and a
 * registered consumer that is down keeps its records (a durable
 * subscription) until it comes back or is removed (`mmapqctl consumer
 * remove`).  Room: of F = floor.byte + size - tail.byte free bytes, a
 * padding frame may take what lies between tail and the ring's end (less
 * than one frame of max_record), so records whose frames add up to
 * F - min(that, mmapq_frame_bytes(max_record)) always fit (mmapq_reserve).
 *
 * Write order (sync = batch or always; never: none, which survives a
 * process crash, by the publish order below, but not a power cut).
 *   publish: the frames are written, then msync'ed, then tail is stored,
 *   then the header page is msync'ed: a tail on disk never covers a frame
 *   that is not.  release: a consumer stores its cursor (position), msyncs
 *   the header page, and only then stores it again as synced, the cursor
 *   that floor is computed from, which lets the producer reuse the bytes:
 *   a frame is overwritten only after the cursor that freed it is on disk.
 *   With never, synced is stored with position.  With always, every record
 *   is synced as it is put, and published at once by the daemons.
 *
 * Clean close, and salvage.  state.clean is 1 once the last process
 * detached (set and msync'ed by whoever closes holding the attach byte
 * exclusively), 0 while anyone is attached (cleared and msync'ed by the
 * first to attach).  A producer or consumer that attaches alone to a file
 * that is not clean (a crash, a power cut), or to a clean one where a
 * position pair may be half stored (the mutex held by a process that died,
 * or a cursor whose byte is not where its record is), walks its frames from floor to
 * tail, checking each one's length and crc and that they end exactly at
 * tail; at the first bad frame it salvages: of the runs of good frames
 * that start at floor or at a consumer's cursor, the one that holds
 * records and reaches furthest is kept, tail goes back to its end and floor up to its start,
 * cursors are clamped into it, and what was dropped (the records below and
 * above it: state) is counted and reported (mmapq_status).  A clean file is
 * not walked: attaching costs nothing per record kept.  `mmapqctl repair`
 * walks on demand, whatever the flag says.
 *
 * Skipping.  A consumer whose entry has MMAPQ_ENTRY_SKIP is never waited
 * for while it is detached (nobody holds its role byte): when a record
 * does not fit and every registered consumer below the bytes it needs is
 * such a one, the producer, holding the mutex, moves their cursors past
 * the oldest whole records, just far enough, counts what each lost in its
 * skipped, and raises floor.  A consumer that is attached is never
 * skipped, whatever its policy: it may be reading those bytes (mmapq_get
 * hands out pointers into the ring), so it is waited for as any other; a
 * consumer attaching takes its role byte before it reads its cursor under
 * the mutex, and so finds the cursor a skip moved.  Per consumer, in this
 * order, each store one that a SIGKILL can stop after: skip_to = the new
 * cursor's seq; skipped = the new count | MMAPQ_SKIP_PENDING; the cursor
 * (position_byte, position, synced_byte, synced); skipped = the new count;
 * then floor (its seqlock).  Whoever finds MMAPQ_SKIP_PENDING (the repair
 * after EOWNERDEAD, a process attaching alone) stores the cursor again at
 * skip_to, its byte found from floor (whole: floor is stored only after
 * every pending bit is cleared), and clears the bit: the skip is done
 * once, and counted once.
 *
 * Fan-in.  Several producers (one per name of the producer table) write at
 * once, each into a reservation of its own: [rsv_from, rsv_to) of its
 * entry, free-running byte positions, the reservations back to back from
 * tail_byte to claim_byte.  A producer's first put after a publish takes
 * one under the mutex at claim_byte (up to an eighth of the ring, more for
 * a record that needs it, never past floor.byte + size; it grows while it
 * is the last one), fills it with frames outside the mutex, and
 * mmapq_publish commits it under the mutex: its records counted, its
 * unused end given back if it is the last one (claim_byte back), else
 * covered by fill frames (on disk first with batch and always).  Then the
 * advance: while the lowest reservation is committed, tail_byte = its end,
 * tail += its records (release), it is cleared, its owner signalled on its
 * turn word; so sequence numbers are given at the advance, in the order
 * of the bytes, and the frames carry none (their crc binds their byte
 * position).  A publish whose reservation is not the lowest waits (turn,
 * slices of at most 0.5 s) until tail passed it.  A producer that was the
 * lowest and the last takes its next batch's reservation at once, IDLE: its
 * next put makes it OPEN with a compare-and-swap, no mutex; anyone who
 * needs tail past it takes it back (IDLE -> TAKEN, under the mutex) and
 * fills it.  An OPEN (or IDLE) reservation whose owner's role byte is free
 * is abandoned: whoever finds it (a producer's wait slice, a producer's
 * join) fills it and commits it with no records; a TAKEN one (its taker
 * died) likewise.  A process alone drops every reservation (claim_byte =
 * tail_byte): records of a publish that had not returned are not
 * promised.  Orders of the stores (each one a SIGKILL may stop after; the
 * repair after EOWNERDEAD makes them whole, reservations_whole_locked):
 * take: rsv_from, rsv_to, rsv_records, claim_byte, rsv_state = OPEN;
 * extend: rsv_to, claim_byte; commit: (give back: claim_byte, rsv_to),
 * rsv_records, rsv_state = COMMITTED; advance: tail_byte, tail (release),
 * rsv_state = NONE; fill: (empty: rsv_state = NONE; last: claim_byte =
 * rsv_from, rsv_state = NONE; else the fill frames, rsv_records = 0,
 * rsv_state = COMMITTED).
 *
 * Versions.  1, 2 and 3 were rings of fixed-size slots (a record took a
 * whole slot of record_size bytes); 2 and 3 had 16-byte int slots, 3 added
 * the consumer table.  This library reads them only to migrate them
 * (mmapq_params.migrate: `mmapqctl recreate` carries their records,
 * consumers and producer over into a version-4 file) and to show them
 * (observers); a producer or consumer refuses them (-EPROTO, naming
 * `mmapqctl recreate`).
 * Their layouts are at the end of this file.
 *
 * Queue id.  16 random bytes (getrandom) at offset 3584, the start of the
 * header's tail, so that records of different queues (on one host or many)
 * can be told apart: the NATS output's Nats-Msg-Id is "<id in hex>:<seq>",
 * which JetStream's duplicate window uses to drop a record forwarded twice.
 * A file is given one when it is created.  A file made anew (mmapqctl
 * recreate) has a new id, as its sequence numbers start again at 0.
 *
 * All integers are in the byte order of the machine that created the file;
 * byte_order tells a reader on another machine that it cannot use the file.
 *
 * Synchronisation, and why it is not pthread_cond_t.
 *   A robust (PTHREAD_MUTEX_ROBUST), process-shared pthread mutex guards
 *   tail, floor, the synced cursors, the consumer table and the wait flags.  The
 *   condition variables (one not_empty per consumer: that consumer waits,
 *   the producer signals; not_full: the producer waits, a consumer that
 *   moves floor signals) are NOT glibc's pthread_cond_t, because glibc's
 *   process-shared condvar keeps state for every waiter and signaler
 *   inside the object, and a process SIGKILLed at the wrong instant leaves
 *   that state behind: a later signal, broadcast or destroy can block
 *   forever (DESIGN.md, "Synchronisation", has the measurements; glibc BZ
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
 *   Observers (mmapq_peek) read frames like a seqlock reader: walk from
 *   floor to the record, copy it out, check its crc, acquire fence, read
 *   floor again; floor past the record means its bytes may have been reused
 *   during the copy (the producer overwrites bytes only in a reservation
 *   taken under the mutex after a consumer stored a floor.byte beyond
 *   them): the copy is discarded.
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
 *   byte MMAPQ_LOCK_PRODUCER + i  exclusive while the producer of table
 *                             entry i is attached (i < MMAPQ_PRODUCERS_MAX),
 *                             taken after the entry is found or registered
 *                             under the mutex; the holder writes its pid
 *                             into the entry at once.  `mmapqctl recreate`
 *                             and mmapq_repair take all of them.  Whoever
 *                             finds it free while the entry holds an open
 *                             reservation knows its owner died (the kernel
 *                             drops a dead process's OFD locks): the
 *                             reservation is abandoned ("Fan-in").  Byte 1
 *                             is not used.
 *   byte MMAPQ_LOCK_CONSUMER + i  exclusive while the consumer of table
 *                             entry i is attached (i < MMAPQ_CONSUMERS_MAX).  `mmapqctl consumer remove` takes
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
#define MMAPQ_VERSION_2         UINT32_C(2)
#define MMAPQ_VERSION_3         UINT32_C(3)
#define MMAPQ_BYTE_ORDER        UINT32_C(0x01020304)
#define MMAPQ_HEADER_SIZE       UINT32_C(8192)
#define MMAPQ_HEADER_SIZE_V3    UINT32_C(4096) /* versions 1 to 3: one page */

/* The limits enforced on creation and on every attach (MMAPQ_SIZE_MIN ...
 * MMAPQ_MAX_RECORD_MAX), the record formats (enum mmapq_record_format)
 * and the lock file's name (MMAPQ_LOCK_SUFFIX) are in mmapq.h. */

/* The OFD lock bytes of the lock file (see "Attach protocol" above). */
#define MMAPQ_LOCK_ATTACH       0
#define MMAPQ_LOCK_CONSUMER     2 /* + the consumer's index in the table */
#define MMAPQ_LOCK_REMOVE       (MMAPQ_LOCK_CONSUMER + MMAPQ_CONSUMERS_MAX)
#define MMAPQ_LOCK_PRODUCER     32 /* + the producer's index in its table */

/* struct mmapq_output.state: two flags, then the records in flight */
#define MMAPQ_OUTPUT_REPORTED   UINT32_C(1)
#define MMAPQ_OUTPUT_CONNECTED  UINT32_C(2)
#define MMAPQ_OUTPUT_IN_FLIGHT_SHIFT 2
#define MMAPQ_OUTPUT_IN_FLIGHT_MAX  (UINT32_MAX >> MMAPQ_OUTPUT_IN_FLIGHT_SHIFT)

/* struct mmapq_consumer.state */
#define MMAPQ_CONSUMER_FREE       UINT32_C(0)
#define MMAPQ_CONSUMER_REGISTERED UINT32_C(1)

/* struct mmapq_consumer.policy: the bits defined (any other is damage) */
#define MMAPQ_ENTRY_SKIP         UINT32_C(1) /* skipped past, never waited for, while detached */
#define MMAPQ_ENTRY_POLICY_KNOWN MMAPQ_ENTRY_SKIP
/* struct mmapq_consumer.skipped: a skip begun, perhaps half stored */
#define MMAPQ_SKIP_PENDING      (UINT64_C(1) << 63)

/* struct mmapq_frame.len of a padding frame: the rest of the ring is unused */
#define MMAPQ_FRAME_PAD         UINT32_MAX
/* struct mmapq_frame.len of a fill frame: this bit | n, n the bytes after
 * its header (a multiple of 8, the frame inside one lap of the ring):
 * bytes nobody uses (see "Frames") */
#define MMAPQ_FRAME_FILL_BIT    UINT32_C(0x80000000)
#define MMAPQ_FRAME_FILL_MAX    (UINT32_C(0x7ffffff8)) /* n of one fill frame at most */
#define MMAPQ_FRAME_ALIGN       UINT32_C(8)

/*
 * A frame's header; the payload follows, then zero bytes up to a multiple
 * of MMAPQ_FRAME_ALIGN.  Written by the producer beyond the published tail
 * (nobody reads there), before its release store of tail.seq; read by
 * consumers after their acquire load of tail.seq, and by observers, who
 * check floor after reading (see "Synchronisation").  Consumers map the
 * ring read-only.
 */
struct mmapq_frame {
	uint32_t len;  /* payload bytes (<= max_record), MMAPQ_FRAME_PAD, or
	                  MMAPQ_FRAME_FILL_BIT | the bytes after the header  */
	uint32_t crc;  /* CRC-32C of its byte position, len and payload     */
};

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
};

/*
 * The queue-wide producer block, on its own cache lines: where records are
 * published.  Written with the mutex held by the producer that publishes
 * (and by the repair after EOWNERDEAD, a salvage).
 */
struct mmapq_tail {
	/* Where the next record goes: tail (its sequence number, also the
	 * count of records ever published) and tail_byte.  Stored with the
	 * mutex held, tail_byte first (relaxed), then tail (store-release: it
	 * publishes the frames written before it, and tail_byte); read by
	 * consumers with load-acquire of tail, then tail_byte (which may be a
	 * newer one, never an older one), by observers the same way. */
	uint64_t tail;
	uint64_t tail_byte;
	/* The frontier of reserved bytes (see "Fan-in"): the producers'
	 * reservations lie between tail_byte and it, back to back, the lowest
	 * starting at tail_byte: tail_byte <= claim_byte <= floor.byte + size.
	 * Written with the mutex held by a producer that takes, extends or
	 * gives back a reservation, by whoever takes back an idle or abandoned
	 * one, by a process alone (= tail_byte: every reservation dropped);
	 * read under the mutex. */
	uint64_t claim_byte;
	uint8_t  reserved[104];
};

/* struct mmapq_producer.rsv_state */
#define MMAPQ_RSV_NONE          UINT32_C(0) /* no reservation */
#define MMAPQ_RSV_OPEN          UINT32_C(1) /* its owner writes frames into it */
#define MMAPQ_RSV_COMMITTED     UINT32_C(2) /* its frames whole: rsv_records
                                               records, then fills, to rsv_to */
#define MMAPQ_RSV_IDLE          UINT32_C(3) /* taken at a publish, nothing
                                               written yet: its owner makes it
                                               OPEN (compare-and-swap) before
                                               it writes, anyone else may take
                                               it back under the mutex */
#define MMAPQ_RSV_TAKEN         UINT32_C(4) /* being filled by another, under
                                               the mutex: seen only after that
                                               one died there */
#define MMAPQ_RSV_STATE_MAX     MMAPQ_RSV_TAKEN

/* struct mmapq_producer.state */
#define MMAPQ_PRODUCER_FREE       UINT32_C(0)
#define MMAPQ_PRODUCER_REGISTERED UINT32_C(1)

/*
 * One registered producer: an entry of the producer table (the header's
 * second page), three cache lines, registered by name like a consumer, at
 * its first attach, and kept (its counters with it) across restarts of
 * that name.  The process that holds the entry's role byte
 * (MMAPQ_LOCK_PRODUCER + i) owns it.
 */
struct mmapq_producer {
	/* Line 0: the owner's.  state: written with the mutex held
	 * (store-release) by whoever registers it (a producer's first attach
	 * by that name); never freed.  The others: written by the owner alone
	 * (relaxed atomic stores), read by observers (relaxed). */
	uint32_t state;        /* MMAPQ_PRODUCER_FREE / _REGISTERED            */
	int32_t  pid;          /* owner's pid, set after taking the role lock */
	uint64_t start_usec;   /* CLOCK_REALTIME when the owner attached       */
	uint64_t published;    /* records this producer published (counted
	                          after each publish stored tail)            */
	uint64_t dropped;      /* records dropped by on_full = drop            */
	uint64_t bad_input;    /* rejected tokens and lines                    */
	uint64_t recoveries;   /* EOWNERDEAD repairs and stale-lock resets done
	                          by this producer                            */
	uint64_t attaches;     /* times a process took this entry             */
	/* Waiting for room (mmapq_reserve; mmapq_blocked reads them).
	 * blocked_usec: CLOCK_REALTIME when the current wait began, 0 while
	 * the producer is not waiting.  Stored by the first mmapq_reserve that
	 * has to wait; a reserve that gives up at its deadline leaves it, so
	 * that a producer waiting a slice at a time is in one wait; cleared by
	 * the next reserve or put that finds room, by mmapq_close, and by the
	 * next attach of this entry (one that died waiting leaves it behind).
	 * blocked_total_usec (line 2): microseconds this producer has waited
	 * for room, added to after every sleep of the wait (at most 0.5 s) and
	 * when it ends, so it grows while a wait lasts.  Both written by the
	 * owner alone (relaxed atomic stores, the mutex not needed), read by
	 * observers relaxed, each on its own. */
	uint64_t blocked_usec;
	/* Line 1: the name, 1 to MMAPQ_CONSUMER_NAME_MAX bytes of
	 * MMAPQ_CONSUMER_NAME_CHARS, NUL-padded, unique among the registered
	 * entries; written with the mutex held before state becomes
	 * REGISTERED, never changed after. */
	char     name[64];
	/* Line 2. */
	uint64_t blocked_total_usec;
	uint64_t registered_usec; /* CLOCK_REALTIME of the registration (with
	                             the name)                               */
	/* Its reservation (see "Fan-in"): the ring's bytes [rsv_from, rsv_to),
	 * free-running positions, that it fills with frames, rsv_records
	 * records of them once committed.  Written with the mutex held (by
	 * the owner as it takes, extends, commits or gives it back; by the
	 * advance, which clears it once tail passed it; by whoever takes back
	 * an idle or abandoned one), in the orders of "Fan-in"; rsv_state
	 * also by the owner alone, outside the mutex, with a compare-and-swap
	 * IDLE -> OPEN (acquire-release) before it writes into it.  Read
	 * under the mutex; observers relaxed. */
	uint32_t rsv_state;       /* MMAPQ_RSV_*                              */
	uint32_t rsv_reserved0;   /* must be zero                             */
	uint64_t rsv_from, rsv_to;
	uint64_t rsv_records;
	/* Its two wait words: turn, for the reservations before its own to be
	 * committed (mmapq_publish: the advancer signals it when tail passed
	 * its own); room, for floor to move (mmapq_reserve: a consumer that
	 * moves floor signals it, when the header's not_full says a producer
	 * waits). */
	struct mmapq_cond turn;
	struct mmapq_cond room;
};

/*
 * The oldest record still kept: the lowest synced cursor of the registered
 * consumers.  Written with the mutex held by a consumer whose sync or
 * registration moved the lowest cursor, by `consumer remove`, by the
 * repair after EOWNERDEAD and by a salvage, as a seqlock: gen + 1 (odd),
 * seq, byte (store-release), gen + 1 (even, store-release).  The producer
 * reads byte alone, with load-acquire (its bound: byte + size; the acquire
 * pairs with the store-release of byte, which comes after the slowest
 * consumer's reads of the frames below it, ordered through the mutex);
 * consumers read the pair under the mutex; observers read gen, the pair and
 * gen again, and take the pair only if gen was even and did not change.
 */
struct mmapq_floor {
	uint64_t seq;
	uint64_t byte;
	uint64_t gen;
	uint8_t  reserved[104];
};

/*
 * Clean close and salvage (see "Clean close, and salvage"): written only by
 * a process alone (the attach byte held exclusively): clean at the first
 * attach and the last close, the rest by a salvage.  Observers read them
 * relaxed.
 */
struct mmapq_state {
	uint32_t clean;             /* 1: the last process detached cleanly    */
	uint32_t reserved0;
	uint64_t salvages;          /* salvages that dropped anything          */
	uint64_t salvage_usec;      /* CLOCK_REALTIME of the last one          */
	/* The records the last salvage dropped: [below_from, below_to) under
	 * the run it kept, [above_from, above_to) past it (sequence numbers as
	 * the file said them), and the bytes of their frames. */
	uint64_t below_from, below_to;
	uint64_t above_from, above_to;
	uint64_t dropped_bytes;
};

/*
 * One registered consumer: an entry of the consumer table, three cache
 * lines, so that no two consumers (and no consumer and the producer) write
 * the same line.
 */
struct mmapq_consumer {
	/* Line 0: the consumer's own.
	 * position, position_byte: its cursor, the next record it consumes;
	 * stored by the process holding this entry's role byte as it releases
	 * records, byte first (relaxed), then seq (store-release: its reads of
	 * the frames below come first).  Read by the repair after EOWNERDEAD
	 * (under the mutex) and by observers (acquire); what survives a crash.
	 * synced, synced_byte: the cursor known to be on disk (sync batch and
	 * always: stored after the msync that wrote position; never: with
	 * position), stored under the mutex by the holder, read under it by
	 * whoever recomputes floor, which is the lowest of them.
	 * state: written with the mutex held (store-release) by whoever
	 * registers (a consumer's first attach) or removes (`mmapqctl consumer
	 * remove`, holding the role byte); read under the mutex, observers
	 * acquire.  The others are written by the role holder alone (relaxed
	 * atomic stores), read by observers (relaxed). */
	uint64_t position;        /* next sequence number it consumes         */
	uint64_t position_byte;   /* where its frame (or padding, fills) starts */
	uint64_t synced;          /* position as it is known to be on disk    */
	uint64_t synced_byte;
	uint32_t state;           /* MMAPQ_CONSUMER_FREE / _REGISTERED        */
	int32_t  pid;             /* last holder's pid, set after the role lock */
	uint64_t start_usec;      /* CLOCK_REALTIME when the holder attached  */
	uint64_t attach_position; /* position when the holder attached (rate) */
	uint64_t registered_usec; /* CLOCK_REALTIME of the registration       */
	/* Line 1: the name, 1 to MMAPQ_CONSUMER_NAME_MAX bytes of
	 * MMAPQ_CONSUMER_NAME_CHARS and NUL-padded, unique among the registered
	 * entries; written with the mutex held before state becomes
	 * REGISTERED, never changed while registered.  One starting with '-'
	 * is valid here (older versions registered such names), though no
	 * consumer may take one now (mmapq_consumer_name_valid). */
	char     name[64];
	/* Line 2: this consumer waits on not_empty, the producer signals it;
	 * the counters are the role holder's (relaxed), written at attach and
	 * at a repair. */
	struct mmapq_cond not_empty;
	uint64_t recoveries;      /* EOWNERDEAD repairs and stale-lock resets
	                             done by this consumer                    */
	uint64_t attaches;        /* times a process took this consumer's role */
	/* What the producer does when this consumer holds floor and the ring
	 * is full (mmapq_set_policy, mmapq_policy).  policy (MMAPQ_ENTRY_* bits,
	 * no others) and inactive_timeout: written by the entry's role
	 * holder with the mutex held, read under it by the producer, relaxed
	 * by observers; zero (block, no timeout) in a new entry and in files
	 * made before them.
	 * skipped, skip_to: the skips (see "Skipping" above), written by the
	 * producer with the mutex held and only while nobody holds this
	 * entry's role byte, and by the repair (EOWNERDEAD, or alone).
	 * skipped counts the records the consumer lost; its top bit
	 * (MMAPQ_SKIP_PENDING) says that a skip to record skip_to was begun
	 * and may be half stored: whoever finds it set finishes it.  skip_to
	 * means something only while that bit is set. */
	uint32_t policy;
	uint32_t inactive_timeout; /* seconds not attached before the producer
	                              removes it; 0: never                     */
	uint64_t skipped;
	uint64_t skip_to;
	/* skipped as it was when the consumer last attached (stored then by
	 * the role holder, mutex held): skips happen only while it is
	 * detached, so skipped - skipped_seen is what it lost since it last
	 * ran, and what it is told when it attaches again. */
	uint64_t skipped_seen;
	/* Records this consumer has released since it registered: the sum of
	 * what its mmapq_release calls released (position, which starts where
	 * it registered, is not what it consumed).  A counter that only grows:
	 * written by the role holder alone, with the mutex held, after its
	 * cursor (relaxed atomic store; a process killed in between leaves it
	 * short of that one release); read by observers (relaxed).  Zeroed at
	 * registration.  The entry has no reserved bytes left: what a consumer
	 * reports of its output is in the header's outputs[], same index. */
	uint64_t consumed;
};

/*
 * What a consumer reports of its output, for outputs with a server (the
 * NATS forwarder: mmapq_output_report), outputs[i] for the consumer of
 * table entry i: acked and reconnects, totals since the registration
 * (counters: only added to); last_ack_usec, the CLOCK_REALTIME of the last
 * acknowledgement; state: MMAPQ_OUTPUT_REPORTED once it reported since it
 * attached (the attach clears it), MMAPQ_OUTPUT_CONNECTED while connected,
 * and in its bits from MMAPQ_OUTPUT_IN_FLIGHT_SHIFT up the records sent
 * and not acknowledged.  Written by the entry's role holder alone (relaxed
 * atomic stores), zeroed with the entry at its registration and removal;
 * read by observers (relaxed; the fields are not read as one).
 */
struct mmapq_output {
	uint64_t acked;
	uint64_t last_ack_usec;
	uint32_t reconnects;
	uint32_t state;
};

struct mmapq_header {
	/* Identity and geometry: written once at creation (before the file is
	 * linked into place, so nobody sees it half-written), read-only after. */
	uint8_t  magic[8];
	uint32_t version;
	uint32_t header_size;   /* MMAPQ_HEADER_SIZE; the ring starts here      */
	uint32_t byte_order;    /* MMAPQ_BYTE_ORDER as written by the creator   */
	uint32_t format;        /* enum mmapq_record_format                     */
	uint32_t max_record;    /* largest payload; mmapq_frame_size(max_record)
	                           <= size / 4                                  */
	uint32_t max_consumers; /* entries of the table in use, 1..MMAPQ_CONSUMERS_MAX */
	uint64_t size;          /* ring bytes, a power of two                   */
	uint64_t file_size;     /* header_size + size                          */
	uint64_t created_usec;  /* CLOCK_REALTIME at creation                  */
	uint32_t max_producers; /* entries of the producer table in use,
	                           1..MMAPQ_PRODUCERS_MAX                      */
	uint8_t  reserved1[4];

	/* The robust, process-shared mutex.  Initialised at creation and again
	 * by whoever attaches alone; otherwise touched only by pthread calls. */
	union {
		pthread_mutex_t mutex;
		uint8_t bytes[64];
	} lock;

	struct mmapq_tail producer;     /* where records are published (above) */
	struct mmapq_floor floor;       /* the oldest record kept (see above) */
	struct mmapq_state state;       /* clean close, salvage (see above) */
	struct mmapq_cond not_full;     /* producer waits, the consumer that moves floor signals */
	uint8_t  not_full_reserved[56];
	struct mmapq_consumer consumers[MMAPQ_CONSUMERS_MAX]; /* [max_consumers..] zero */

	/* The queue's identity (see "Queue id" above): 16 random bytes,
	 * written at creation, never changed. */
	uint8_t  id[MMAPQ_ID_SIZE];
	struct mmapq_output outputs[MMAPQ_CONSUMERS_MAX]; /* [max_consumers..] zero */
	uint8_t  reserved[112];       /* must be zero */

	/* The second page: the producer table. */
	struct mmapq_producer producers[MMAPQ_PRODUCERS_MAX]; /* [max_producers..] zero */
	uint8_t  reserved2[1024];     /* must be zero */
} __attribute__((aligned(64)));

/* Frozen layout. */
_Static_assert(sizeof(pthread_mutex_t) <= 64, "pthread_mutex_t does not fit its 64 bytes");
_Static_assert(sizeof(struct mmapq_frame) == MMAPQ_FRAME_ALIGN, "a frame header is 8 bytes");
_Static_assert(MMAPQ_MAX_RECORD_MAX < MMAPQ_FRAME_FILL_BIT, "a record's len never looks like a fill");
_Static_assert(offsetof(struct mmapq_frame, len) == 0, "frame.len offset");
_Static_assert(offsetof(struct mmapq_frame, crc) == 4, "frame.crc offset");
_Static_assert(sizeof(struct mmapq_cond) == 8, "mmapq_cond is two words");
_Static_assert(offsetof(struct mmapq_cond, seq) == 0, "cond.seq offset");
_Static_assert(offsetof(struct mmapq_cond, waiting) == 4, "cond.waiting offset");
_Static_assert(sizeof(struct mmapq_tail) == 128, "the producer block has two cache lines");
_Static_assert(offsetof(struct mmapq_tail, tail) == 0, "producer.tail offset");
_Static_assert(offsetof(struct mmapq_tail, tail_byte) == 8, "producer.tail_byte offset");
_Static_assert(offsetof(struct mmapq_tail, claim_byte) == 16, "producer.claim_byte offset");
_Static_assert(sizeof(struct mmapq_producer) == 192, "a producer is three cache lines");
_Static_assert(offsetof(struct mmapq_producer, state) == 0, "producer entry state offset");
_Static_assert(offsetof(struct mmapq_producer, pid) == 4, "producer entry pid offset");
_Static_assert(offsetof(struct mmapq_producer, start_usec) == 8, "producer entry start_usec offset");
_Static_assert(offsetof(struct mmapq_producer, published) == 16, "producer entry published offset");
_Static_assert(offsetof(struct mmapq_producer, dropped) == 24, "producer entry dropped offset");
_Static_assert(offsetof(struct mmapq_producer, bad_input) == 32, "producer entry bad_input offset");
_Static_assert(offsetof(struct mmapq_producer, recoveries) == 40, "producer entry recoveries offset");
_Static_assert(offsetof(struct mmapq_producer, attaches) == 48, "producer entry attaches offset");
_Static_assert(offsetof(struct mmapq_producer, blocked_usec) == 56, "producer entry blocked_usec offset");
_Static_assert(offsetof(struct mmapq_producer, name) == 64, "producer name on its own cache line");
_Static_assert(offsetof(struct mmapq_producer, blocked_total_usec) == 128, "producer entry line 2");
_Static_assert(offsetof(struct mmapq_producer, registered_usec) == 136, "producer entry registered_usec");
_Static_assert(offsetof(struct mmapq_producer, rsv_state) == 144, "producer entry rsv_state offset");
_Static_assert(offsetof(struct mmapq_producer, rsv_from) == 152, "producer entry rsv_from offset");
_Static_assert(offsetof(struct mmapq_producer, rsv_to) == 160, "producer entry rsv_to offset");
_Static_assert(offsetof(struct mmapq_producer, rsv_records) == 168, "producer entry rsv_records offset");
_Static_assert(offsetof(struct mmapq_producer, turn) == 176, "producer entry turn offset");
_Static_assert(offsetof(struct mmapq_producer, room) == 184, "producer entry room offset");
_Static_assert(sizeof(((struct mmapq_producer *)0)->name) == MMAPQ_CONSUMER_NAME_MAX + 1, "producer name and its NUL");
_Static_assert(sizeof(struct mmapq_floor) == 128, "floor has two cache lines of its own");
_Static_assert(offsetof(struct mmapq_floor, byte) == 8, "floor.byte offset");
_Static_assert(offsetof(struct mmapq_floor, gen) == 16, "floor.gen offset");
_Static_assert(sizeof(struct mmapq_state) == 64, "state is one cache line");
_Static_assert(offsetof(struct mmapq_state, salvages) == 8, "state.salvages offset");
_Static_assert(offsetof(struct mmapq_state, below_from) == 24, "state.below_from offset");
_Static_assert(offsetof(struct mmapq_state, dropped_bytes) == 56, "state.dropped_bytes offset");
_Static_assert(sizeof(struct mmapq_consumer) == 192, "a consumer is three cache lines");
_Static_assert(offsetof(struct mmapq_consumer, position) == 0, "consumer.position offset");
_Static_assert(offsetof(struct mmapq_consumer, position_byte) == 8, "consumer.position_byte offset");
_Static_assert(offsetof(struct mmapq_consumer, synced) == 16, "consumer.synced offset");
_Static_assert(offsetof(struct mmapq_consumer, synced_byte) == 24, "consumer.synced_byte offset");
_Static_assert(offsetof(struct mmapq_consumer, state) == 32, "consumer.state offset");
_Static_assert(offsetof(struct mmapq_consumer, pid) == 36, "consumer.pid offset");
_Static_assert(offsetof(struct mmapq_consumer, start_usec) == 40, "consumer.start_usec offset");
_Static_assert(offsetof(struct mmapq_consumer, attach_position) == 48, "consumer.attach_position offset");
_Static_assert(offsetof(struct mmapq_consumer, registered_usec) == 56, "consumer.registered_usec offset");
_Static_assert(offsetof(struct mmapq_consumer, name) == 64, "consumer name on its own cache line");
_Static_assert(offsetof(struct mmapq_consumer, not_empty) == 128, "consumer wait object on its own cache line");
_Static_assert(offsetof(struct mmapq_consumer, recoveries) == 136, "consumer.recoveries offset");
_Static_assert(offsetof(struct mmapq_consumer, attaches) == 144, "consumer.attaches offset");
_Static_assert(offsetof(struct mmapq_consumer, policy) == 152, "consumer.policy offset");
_Static_assert(offsetof(struct mmapq_consumer, inactive_timeout) == 156, "consumer.inactive_timeout offset");
_Static_assert(offsetof(struct mmapq_consumer, skipped) == 160, "consumer.skipped offset");
_Static_assert(offsetof(struct mmapq_consumer, skip_to) == 168, "consumer.skip_to offset");
_Static_assert(offsetof(struct mmapq_consumer, skipped_seen) == 176, "consumer.skipped_seen offset");
_Static_assert(offsetof(struct mmapq_consumer, consumed) == 184, "consumer.consumed offset");
_Static_assert(sizeof(struct mmapq_output) == 24, "an output report is 24 bytes");
_Static_assert(offsetof(struct mmapq_output, acked) == 0, "output.acked offset");
_Static_assert(offsetof(struct mmapq_output, last_ack_usec) == 8, "output.last_ack_usec offset");
_Static_assert(offsetof(struct mmapq_output, reconnects) == 16, "output.reconnects offset");
_Static_assert(offsetof(struct mmapq_output, state) == 20, "output.state offset");
_Static_assert(sizeof(((struct mmapq_consumer *)0)->name) == MMAPQ_CONSUMER_NAME_MAX + 1, "name and its NUL");
_Static_assert(sizeof(struct mmapq_header) == MMAPQ_HEADER_SIZE, "header is two pages");
_Static_assert(offsetof(struct mmapq_header, magic) == 0, "magic offset");
_Static_assert(offsetof(struct mmapq_header, version) == 8, "version offset");
_Static_assert(offsetof(struct mmapq_header, header_size) == 12, "header_size offset");
_Static_assert(offsetof(struct mmapq_header, byte_order) == 16, "byte_order offset");
_Static_assert(offsetof(struct mmapq_header, format) == 20, "format offset");
_Static_assert(offsetof(struct mmapq_header, max_record) == 24, "max_record offset");
_Static_assert(offsetof(struct mmapq_header, max_consumers) == 28, "max_consumers offset");
_Static_assert(offsetof(struct mmapq_header, size) == 32, "size offset");
_Static_assert(offsetof(struct mmapq_header, file_size) == 40, "file_size offset");
_Static_assert(offsetof(struct mmapq_header, created_usec) == 48, "created_usec offset");
_Static_assert(offsetof(struct mmapq_header, max_producers) == 56, "max_producers offset");
_Static_assert(offsetof(struct mmapq_header, reserved1) == 60, "reserved1 offset");
_Static_assert(offsetof(struct mmapq_header, lock) == 64, "mutex on its own cache line");
_Static_assert(offsetof(struct mmapq_header, producer) == 128, "producer cache lines");
_Static_assert(offsetof(struct mmapq_header, floor) == 256, "floor cache lines");
_Static_assert(offsetof(struct mmapq_header, state) == 384, "state cache line");
_Static_assert(offsetof(struct mmapq_header, not_full) == 448, "not_full cache line");
_Static_assert(offsetof(struct mmapq_header, consumers) == 512, "consumer table");
_Static_assert(offsetof(struct mmapq_header, id) == 512 + MMAPQ_CONSUMERS_MAX * 192, "queue id");
_Static_assert(offsetof(struct mmapq_header, id) == 3584, "queue id at the start of the tail");
_Static_assert(offsetof(struct mmapq_header, outputs) == 3600, "the outputs' reports after the id");
_Static_assert(offsetof(struct mmapq_header, reserved) == 3600 + MMAPQ_CONSUMERS_MAX * 24, "reserved tail");
_Static_assert(offsetof(struct mmapq_header, producers) == 4096, "the producer table on the second page");
_Static_assert(offsetof(struct mmapq_header, reserved2) == 4096 + MMAPQ_PRODUCERS_MAX * 192, "reserved end");

/* Bytes a record of len payload bytes takes in the ring: its frame. */
static inline uint64_t mmapq_frame_bytes(uint32_t len)
{
	return sizeof(struct mmapq_frame) + (((uint64_t)len + MMAPQ_FRAME_ALIGN - 1) & ~(uint64_t)(MMAPQ_FRAME_ALIGN - 1));
}

/* ---- versions 1 to 3: rings of fixed-size slots, read to migrate them ----
 *
 * The identity of versions 1 to 3: capacity slots of slot_size bytes after
 * the header, file_size = header_size + capacity * slot_size.  Version 1:
 * every slot a struct mmapq_slot_v3 + record_size payload bytes (int
 * records too).  2: int slots are struct mmapq_int_slot_v3 (16 bytes); one
 * consumer, its side at offset 256 (struct mmapq_header_v2).  3: the
 * consumer table at offset 512 (struct mmapq_header_v3), floor at 256.
 * In all three a record's slot is (seq & (capacity - 1)), and records
 * [floor, tail) are kept (version 1 and 2 call floor the consumer's head).
 */
#define MMAPQ_SLOT_HEADER_SIZE_V3 UINT32_C(16)
#define MMAPQ_INT_SLOT_SIZE_V3    UINT32_C(16)
#define MMAPQ_CAPACITY_MAX_V3     (UINT32_C(1) << 24)
#define MMAPQ_RECORD_SIZE_MAX_V3  (UINT32_C(1) << 20)

struct mmapq_identity_v3 {
	uint8_t  magic[8];
	uint32_t version;
	uint32_t header_size;
	uint32_t byte_order;
	uint32_t format;        /* int or line */
	uint32_t capacity;      /* slots, a power of two */
	uint32_t record_size;   /* largest payload */
	uint32_t slot_size;     /* mmapq_slot_size_v3(version, format, record_size) */
	uint32_t max_consumers; /* version 3: the table's size; 1 and 2: zero */
	uint64_t file_size;
	uint64_t created_usec;
	uint8_t  reserved1[8];
};

struct mmapq_side_v3 {          /* the producer's (and version 2's consumer's) */
	uint64_t position;      /* tail (version 2's consumer: head) */
	int32_t  pid;
	uint32_t reserved0;
	uint64_t start_usec;
	uint64_t dropped;
	uint64_t bad_input;
	uint64_t recoveries;
	uint64_t attaches;
	uint8_t  reserved[72];
};

struct mmapq_consumer_v3 {
	uint64_t position;
	uint32_t state;
	int32_t  pid;
	uint64_t start_usec;
	uint64_t attach_position;
	uint64_t registered_usec;
	uint64_t recoveries;
	uint64_t attaches;
	uint64_t reserved0;
	char     name[64];
	uint8_t  not_empty[64];
};

struct mmapq_header_v3 {
	struct mmapq_identity_v3 id;
	uint8_t  lock[64];
	struct mmapq_side_v3 producer;
	uint64_t floor;               /* version 1 and 2: the consumer's head */
	uint8_t  floor_reserved[120];
	uint8_t  reserved2[64];
	uint8_t  not_full[64];
	struct mmapq_consumer_v3 consumers[MMAPQ_CONSUMERS_MAX];
	uint8_t  queue_id[MMAPQ_ID_SIZE];
	uint8_t  reserved[496];
} __attribute__((aligned(64)));

/* Version 1 and 2's header: the identity, mutex and producer as version
 * 3's, one consumer. */
struct mmapq_header_v2 {
	struct mmapq_identity_v3 id;
	uint8_t  lock[64];
	struct mmapq_side_v3 producer;
	struct mmapq_side_v3 consumer; /* position: head, where version 3 has floor */
	uint8_t  not_empty[64];
	uint8_t  not_full[64];
	uint8_t  reserved[3584];
} __attribute__((aligned(64)));

struct mmapq_slot_v3 {          /* line slots, and every slot of version 1 */
	uint64_t seq;
	uint32_t len;
	uint32_t reserved;
	/* payload follows */
};

struct mmapq_int_slot_v3 {      /* int slots of versions 2 and 3 */
	uint64_t seq;
	int64_t  value;
};

_Static_assert(sizeof(struct mmapq_identity_v3) == 64, "version 3 identity");
_Static_assert(offsetof(struct mmapq_identity_v3, capacity) == 24, "v3 capacity offset");
_Static_assert(offsetof(struct mmapq_identity_v3, record_size) == 28, "v3 record_size offset");
_Static_assert(offsetof(struct mmapq_identity_v3, slot_size) == 32, "v3 slot_size offset");
_Static_assert(offsetof(struct mmapq_identity_v3, max_consumers) == 36, "v3 max_consumers offset");
_Static_assert(offsetof(struct mmapq_identity_v3, file_size) == 40, "v3 file_size offset");
_Static_assert(sizeof(struct mmapq_side_v3) == 128, "v3 side");
_Static_assert(sizeof(struct mmapq_consumer_v3) == 192, "v3 consumer");
_Static_assert(offsetof(struct mmapq_consumer_v3, name) == 64, "v3 consumer name");
_Static_assert(sizeof(struct mmapq_header_v3) == MMAPQ_HEADER_SIZE_V3, "v3 header");
_Static_assert(offsetof(struct mmapq_header_v3, producer) == 128, "v3 producer");
_Static_assert(offsetof(struct mmapq_header_v3, floor) == 256, "v3 floor");
_Static_assert(offsetof(struct mmapq_header_v3, not_full) == 448, "v3 not_full");
_Static_assert(offsetof(struct mmapq_header_v3, consumers) == 512, "v3 consumers");
_Static_assert(offsetof(struct mmapq_header_v3, queue_id) == 3584, "v3 queue id");
_Static_assert(sizeof(struct mmapq_header_v2) == MMAPQ_HEADER_SIZE_V3, "v2 header");
_Static_assert(offsetof(struct mmapq_header_v2, consumer.position) == 256, "v2 head is v3 floor");
_Static_assert(offsetof(struct mmapq_header_v2, reserved) == 512, "v2 reserved tail");
_Static_assert(sizeof(struct mmapq_slot_v3) == MMAPQ_SLOT_HEADER_SIZE_V3, "v3 slot header");
_Static_assert(sizeof(struct mmapq_int_slot_v3) == MMAPQ_INT_SLOT_SIZE_V3, "v3 int slot");

/* Bytes per slot of a version-1 to 3 file. */
static inline uint32_t mmapq_slot_size_v3(uint32_t version, uint32_t format, uint32_t record_size)
{
	if (version >= 2 && format == MMAPQ_FORMAT_INT)
		return MMAPQ_INT_SLOT_SIZE_V3;
	return MMAPQ_SLOT_HEADER_SIZE_V3 + ((record_size + 7u) & ~7u);
}

#endif /* MMAPQ_FORMAT_H */
