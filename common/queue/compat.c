/* SPDX-License-Identifier: MIT */
/*
 * compat.c -- format versions 1 and 2 ("Versions" in mmapq_format.h): what
 * exists only to read such a file (its header's checks, its one
 * consumer's side; to migrate it, or for an observer) and to upgrade a
 * version-2 file in place.  Nothing on the ring's paths needs it: a
 * version-2 file is upgraded before a producer or consumer uses it, and an
 * older file opened to migrate it is never written.
 */
#include "queue.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "fault.h"

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

/* The rest of a version-1/2 header (version 3: check_fields in
 * validate.c): its reserved bytes and pids.  And a version-1 file is only
 * read ("Versions" in mmapq_format.h): a producer or consumer opens one
 * only to migrate it. */
int legacy_check_fields(const struct mmapq_header *h, const struct mmapq_params *p,
                        const char *path, struct mmapq_error *err)
{
	const struct mmapq_header_v2 *h2 = (const struct mmapq_header_v2 *)h;
	size_t bad = first_reserved_nonzero_v2(h2);

	if (bad)
		return reserved_error(h, path, bad, err);
	if (h->producer.pid < 0 || h2->consumer.pid < 0) {
		set_err(err, "%s: negative pid in header (%" PRId32 ", %" PRId32 ")", path, h->producer.pid,
		        h2->consumer.pid);
		return -EBADMSG;
	}
	if (h->version == MMAPQ_VERSION_1 && p->role != MMAPQ_ROLE_OBSERVER && !p->migrate) {
		set_err(err, "%s: format version %" PRIu32 " (an older mmapq's); this program uses version"
		        " %" PRIu32 ": stop both daemons and run `mmapqctl recreate`, which carries the"
		        " records over into a version-%" PRIu32 " file (the file is left untouched)", path,
		        h->version, MMAPQ_VERSION, MMAPQ_VERSION);
		return -EPROTO;
	}
	return 0;
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

/*
 * A version-2 file opened by a producer or a consumer (not to migrate it):
 * upgraded in place by a process alone, refused with anyone else attached
 * (an older daemon, which knows nothing of version 3).
 */
int upgrade_v2(struct mmapq *q, const struct mmapq_params *p, bool alone, struct mmapq_error *err)
{
	int r;

	if (!alone) {
		set_err(err, "%s: format version %" PRIu32 " (an older mmapq's), and in use by"
		        " another process: stop every process attached to it; the first daemon"
		        " started alone then upgrades it to version %" PRIu32 " in place, or"
		        " `mmapqctl recreate` carries the records over into a new file (the file"
		        " is left untouched)", q->path, q->version, MMAPQ_VERSION);
		return -EPROTO;
	}
	/* a file refused stays as it is: check its positions and slots as
	 * version 2 before anything is written */
	r = validate_dynamic(q, err);
	return r < 0 ? r : upgrade_v2_alone(q, p, err);
}

/* The consumer role of a version-1/2 file, taken to migrate it: its side
 * of the header is ours (the recoveries, pid and counters go there), its
 * head is our cursor, its not_empty what we wait on. */
void legacy_take_consumer(struct mmapq *q)
{
	q->self = &q->h2->consumer;
	q->cursor = &q->h2->consumer.position;
	q->wait_on = &q->h2->not_empty;
}

/* Mutex held (a repair): the one consumer's wake-up, as every registered
 * consumer of version 3 gets. */
void legacy_wake_consumer(struct mmapq *q)
{
	mmapq_cond_broadcast(&q->h2->not_empty);
}

/* Alone: the one consumer's wait flag, as every entry's of version 3. */
void legacy_reset_consumer(struct mmapq *q)
{
	mmapq_cond_reset(&q->h2->not_empty);
}

/* A version-1/2 file's consumer side in the status: it has one consumer,
 * in a table of one as version 3 would count it. */
void legacy_status(const struct mmapq *q, struct mmapq_status *s)
{
	side_status(q, &q->h2->consumer, MMAPQ_LOCK_CONSUMER, &s->consumer);
	s->consumers = 1;
	s->max_consumers = 1;
}

/* A legacy file's one consumer, as version 3 would list it. */
void legacy_consumer_status(const struct mmapq *q, uint64_t tail,
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
