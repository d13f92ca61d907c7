/* SPDX-License-Identifier: MIT */
/*
 * compat.c -- format versions 1 to 3, rings of fixed-size slots
 * (mmapq_format.h, "Versions"), read and never written: their checks, and
 * what an observer (status, dump) and `mmapqctl recreate` (which holds
 * both roles and reads the records out: mmapq_params.migrate) need of
 * them.  Nothing here takes the mutex: a migrating process holds every
 * role's lock byte, so nobody writes the file while it reads; observers
 * read like a seqlock reader, as they always did.
 */
#include "queue.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

static const struct mmapq_header_v3 *v3(const struct mmapq *q)
{
	return (const struct mmapq_header_v3 *)q->h;
}

static const struct mmapq_header_v2 *v2(const struct mmapq *q)
{
	return (const struct mmapq_header_v2 *)q->h;
}

/* The geometry of a version-1 to 3 file, against the file's real size. */
int legacy_check_identity(const void *hdr, const char *path, uint64_t real_size,
                          struct mmapq_error *err)
{
	const struct mmapq_identity_v3 *h = hdr;
	uint64_t want;

	if (h->format != MMAPQ_FORMAT_INT && h->format != MMAPQ_FORMAT_LINE) {
		set_err(err, "%s: record format %" PRIu32 " is unknown (1 = int, 2 = line)", path, h->format);
		return -EBADMSG;
	}
	if (!is_pow2(h->capacity) || h->capacity < 2 || h->capacity > MMAPQ_CAPACITY_MAX_V3) {
		set_err(err, "%s: capacity %" PRIu32 " is not a power of two in 2..%" PRIu32, path,
		        h->capacity, MMAPQ_CAPACITY_MAX_V3);
		return -EBADMSG;
	}
	if (h->record_size < 8 || h->record_size > MMAPQ_RECORD_SIZE_MAX_V3) {
		set_err(err, "%s: record size %" PRIu32 " is outside 8..%" PRIu32, path, h->record_size,
		        MMAPQ_RECORD_SIZE_MAX_V3);
		return -EBADMSG;
	}
	if (h->slot_size != mmapq_slot_size_v3(h->version, h->format, h->record_size)) {
		set_err(err, "%s: slot size is %" PRIu32 ", expected %" PRIu32 " for record size %" PRIu32
		        " (format %s, version %" PRIu32 ")", path, h->slot_size,
		        mmapq_slot_size_v3(h->version, h->format, h->record_size), h->record_size,
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
	return 0;
}

/* Offset of the first non-zero reserved byte of a version-1 to 3 header
 * (0: none). */
static size_t first_reserved_nonzero_v3(const struct mmapq *q)
{
#define RSV2(f) {offsetof(struct mmapq_header_v2, f), sizeof(((struct mmapq_header_v2 *)0)->f)}
#define RSV3(f) {offsetof(struct mmapq_header_v3, f), sizeof(((struct mmapq_header_v3 *)0)->f)}
	static const struct rsv_range rsv2[] = {
		RSV2(id.reserved1), RSV2(producer.reserved0), RSV2(producer.reserved),
		RSV2(consumer.reserved0), RSV2(consumer.reserved),
	};
	static const struct rsv_range rsv3[] = {
		RSV3(id.reserved1), RSV3(producer.reserved0), RSV3(producer.reserved),
		RSV3(floor_reserved), RSV3(reserved2), RSV3(reserved),
	};
#undef RSV2
#undef RSV3
	const uint8_t *b = (const uint8_t *)q->h;

	if (q->version < MMAPQ_VERSION_3)
		return first_nonzero_in(b, rsv2, sizeof(rsv2) / sizeof(rsv2[0]));
	return first_nonzero_in(b, rsv3, sizeof(rsv3) / sizeof(rsv3[0]));
}

/* The rest of a version-1 to 3 header, and whether it may be opened as
 * asked: by an observer, or to migrate it. */
int legacy_check_fields(const struct mmapq *q, const struct mmapq_params *p,
                        struct mmapq_error *err)
{
	const struct mmapq_identity_v3 *id = &v3(q)->id;
	size_t bad = first_reserved_nonzero_v3(q);

	if (bad)
		return reserved_error(q->h, q->path, bad, err);
	if (q->version == MMAPQ_VERSION_3 &&
	    (id->max_consumers < MMAPQ_CONSUMERS_MIN || id->max_consumers > MMAPQ_CONSUMERS_MAX)) {
		set_err(err, "%s: max_consumers %" PRIu32 " is outside %" PRIu32 "..%" PRIu32, q->path,
		        id->max_consumers, MMAPQ_CONSUMERS_MIN, MMAPQ_CONSUMERS_MAX);
		return -EBADMSG;
	}
	if (p->role != MMAPQ_ROLE_OBSERVER && !p->migrate) {
		set_err(err, "%s: format version %" PRIu32 " (fixed-size slots, an older mmapq's); this"
		        " program uses version %" PRIu32 ": stop the daemons and run `mmapqctl recreate`,"
		        " which carries its records, consumers and producers over into a version-%" PRIu32 " file"
		        " (the file is left untouched)", q->path, q->version, MMAPQ_VERSION,
		        MMAPQ_VERSION);
		return -EPROTO;
	}
	if (p->format && p->format != id->format) {
		set_err(err, "%s: format is %s in the file but %s in the configuration"
		        " (the file is left untouched)", q->path, mmapq_format_name(id->format),
		        mmapq_format_name(p->format));
		return -EPROTO;
	}
	return 0;
}

/* The geometry a handle keeps of a version-1 to 3 file. */
void legacy_setup(struct mmapq *q)
{
	const struct mmapq_identity_v3 *id = &v3(q)->id;

	q->legacy = true;
	q->format = id->format;
	q->capacity = id->capacity;
	q->mask = id->capacity - 1;
	q->max_record = id->record_size;
	q->slot_size = id->slot_size;
	q->size = (uint64_t)id->capacity * id->slot_size;
	q->int_slots = q->version >= MMAPQ_VERSION_2 && q->format == MMAPQ_FORMAT_INT;
	q->max_consumers = q->version == MMAPQ_VERSION_3 ? id->max_consumers : 1;
}

static uint64_t load_floor_v3(const struct mmapq *q)
{
	/* acquire: pairs with the older writer's store-release of floor */
	return __atomic_load_n(&v3(q)->floor, __ATOMIC_ACQUIRE);
}

static uint64_t load_tail_v3(const struct mmapq *q)
{
	return __atomic_load_n(&v3(q)->producer.position, __ATOMIC_ACQUIRE);
}

/* head and tail as one consistent pair: tail read between two equal
 * reads of head (observers of a file an older daemon may still use). */
static int snapshot_v3(const struct mmapq *q, uint64_t *head, uint64_t *tail)
{
	for (int i = 0; i < 1000; i++) {
		uint64_t h1 = load_floor_v3(q), t = load_tail_v3(q), h2 = load_floor_v3(q);
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

/* The payload of record seq and its length, each field read once. */
static int check_slot(const struct mmapq *q, uint64_t seq, const void **data, uint32_t *len)
{
	const uint8_t *slot = q->ring + (size_t)(seq & q->mask) * q->slot_size;

	if (q->int_slots) {
		const struct mmapq_int_slot_v3 *s = (const struct mmapq_int_slot_v3 *)slot;
		if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) != seq)
			return -EBADMSG;
		*data = &s->value;
		*len = sizeof(s->value);
		return 0;
	}
	const struct mmapq_slot_v3 *s = (const struct mmapq_slot_v3 *)slot;
	uint64_t sseq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
	uint32_t l = __atomic_load_n(&s->len, __ATOMIC_RELAXED);

	if (sseq != seq || l > q->max_record || (q->format == MMAPQ_FORMAT_INT && l != sizeof(int64_t)))
		return -EBADMSG;
	*data = s + 1;
	*len = l;
	return 0;
}

/* Positions and every slot kept, and the table's names (version 3), of a
 * file nobody writes (we hold every role). */
static int validate_v3(struct mmapq *q, uint64_t head, uint64_t tail, struct mmapq_error *err)
{
	for (uint64_t s = head; s < tail; s++) {
		const void *d;
		uint32_t l;
		if (check_slot(q, s, &d, &l) < 0) {
			set_err(err, "%s: slot %" PRIu64 " does not hold record %" PRIu64 " (damaged)",
			        q->path, s & q->mask, s);
			return -EBADMSG;
		}
	}
	for (uint32_t i = 0; q->version == MMAPQ_VERSION_3 && i < q->max_consumers; i++) {
		const struct mmapq_consumer_v3 *c = &v3(q)->consumers[i];

		if (c->state == MMAPQ_CONSUMER_FREE)
			continue;
		if (c->state != MMAPQ_CONSUMER_REGISTERED || c->name[MMAPQ_CONSUMER_NAME_MAX] ||
		    !name_in_table_valid(c->name) || c->position < head || c->position > tail) {
			set_err(err, "%s: consumer entry %" PRIu32 " is damaged", q->path, i);
			return -EBADMSG;
		}
	}
	return 0;
}

/* A migrating producer or consumer (attach.c took the role bytes): the
 * positions checked once, since nobody else moves them now. */
int legacy_attach(struct mmapq *q, struct mmapq_error *err)
{
	uint64_t head = load_floor_v3(q), tail = load_tail_v3(q);
	int r;

	if (head > tail || tail - head > q->capacity) {
		set_err(err, "%s: positions out of bounds: head %" PRIu64 ", tail %" PRIu64
		        ", capacity %" PRIu32, q->path, head, tail, q->capacity);
		return -EBADMSG;
	}
	r = validate_v3(q, head, tail, err);
	if (r < 0)
		return r;
	q->head.seq = head;
	q->seen_tail = tail;
	q->put_refused = -EROFS;
	return 0;
}

int legacy_observe(struct mmapq *q, struct mmapq_error *err)
{
	uint64_t head, tail;
	int r = snapshot_v3(q, &head, &tail);

	if (r == -EBADMSG)
		set_err(err, "%s: positions out of bounds: head %" PRIu64 ", tail %" PRIu64
		        ", capacity %" PRIu32, q->path, load_floor_v3(q), load_tail_v3(q), q->capacity);
	else if (r < 0)
		set_err(err, "%s: positions keep changing; try again", q->path);
	return r;
}

static void side_v3(const struct mmapq *q, const struct mmapq_side_v3 *s, off_t byte,
                    struct mmapq_side_status *o)
{
	LOAD_SIDE_COUNTERS(o, s);
	o->attached = held_by_other(q, o->pid, byte) || (q->role == MMAPQ_ROLE_PRODUCER &&
	                                                 byte == MMAPQ_LOCK_PRODUCER);
}

/* Consumer i (version 3: entry i; 1 and 2: the one consumer, "default"). */
static bool consumer_v3(const struct mmapq *q, uint32_t i, uint64_t tail,
                        struct mmapq_consumer_status *o)
{
	memset(o, 0, sizeof(*o));
	if (q->version < MMAPQ_VERSION_3) {
		struct mmapq_side_status s;

		side_v3(q, &v2(q)->consumer, MMAPQ_LOCK_CONSUMER, &s);
		strcpy(o->name, MMAPQ_CONSUMER_DEFAULT);
		o->position = o->attach_position = load_floor_v3(q);
		o->pid = s.pid;
		o->attached = s.attached;
		o->start_usec = s.start_usec;
		o->registered_usec = v3(q)->id.created_usec;
		o->recoveries = s.recoveries;
		o->attaches = s.attaches;
	} else {
		const struct mmapq_consumer_v3 *c = &v3(q)->consumers[i];

		if (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) != MMAPQ_CONSUMER_REGISTERED)
			return false;
		memcpy(o->name, c->name, sizeof(o->name) - 1);
		o->index = i;
		o->position = __atomic_load_n(&c->position, __ATOMIC_ACQUIRE);
		LOAD_CONSUMER_COUNTERS(o, c);
		o->attached = held_by_other(q, o->pid, MMAPQ_LOCK_CONSUMER + (off_t)i);
	}
	o->lag = tail > o->position ? tail - o->position : 0;
	o->lag_bytes = o->lag * q->slot_size;
	return true;
}

int legacy_consumers(const struct mmapq *q, struct mmapq_consumer_status *out, uint32_t n)
{
	uint64_t tail = load_tail_v3(q);
	uint32_t k = 0;

	for (uint32_t i = 0; i < q->max_consumers; i++) {
		struct mmapq_consumer_status c;
		if (!consumer_v3(q, i, tail, &c))
			continue;
		if (k < n)
			out[k] = c;
		k++;
	}
	return (int)k;
}

/* The one producer of versions 1 to 3, "default": the side's counters,
 * every record of the file its. */
int legacy_producers(const struct mmapq *q, struct mmapq_producer_status *out, uint32_t n)
{
	struct mmapq_producer_status o = {0};
	struct mmapq_side_status s;

	side_v3(q, &v3(q)->producer, MMAPQ_LOCK_PRODUCER, &s);
	strcpy(o.name, MMAPQ_PRODUCER_DEFAULT);
	o.last_pid = s.pid;
	o.pid = s.attached ? s.pid : 0;
	o.attached = s.attached;
	o.start_usec = s.start_usec;
	o.published = load_tail_v3(q);
	o.dropped = s.dropped;
	o.bad_input = s.bad_input;
	o.recoveries = s.recoveries;
	o.attaches = s.attaches;
	if (n)
		out[0] = o;
	return 1;
}

int legacy_status(const struct mmapq *q, struct mmapq_status *s)
{
	const struct mmapq_header_v3 *h = v3(q);
	struct mmapq_consumer_status pick = {0};
	bool have = false;
	int r = snapshot_v3(q, &s->head, &s->tail);

	if (r < 0)
		return r;
	s->capacity = q->capacity;
	s->slot_size = q->slot_size;
	s->used_bytes = (s->tail - s->head) * q->slot_size;
	side_v3(q, &h->producer, MMAPQ_LOCK_PRODUCER, &s->producer);
	s->max_consumers = q->max_consumers;
	for (uint32_t i = 0; i < q->max_consumers; i++) {
		struct mmapq_consumer_status c;
		if (!consumer_v3(q, i, s->tail, &c))
			continue;
		s->consumers++;
		if (!have || (strcmp(pick.name, MMAPQ_CONSUMER_DEFAULT) &&
		              !strcmp(c.name, MMAPQ_CONSUMER_DEFAULT)))
			pick = c;
		have = true;
	}
	if (have)
		s->consumer = (struct mmapq_side_status){
			.pid = pick.pid, .attached = pick.attached, .start_usec = pick.start_usec,
			.recoveries = pick.recoveries, .attaches = pick.attaches,
		};
	if (q->version == MMAPQ_VERSION_3)
		memcpy(s->id, h->queue_id, sizeof(s->id));
	return 0;
}

/* A migrating consumer: every record kept is there (nobody publishes). */
int legacy_available(struct mmapq *q, uint32_t *navail)
{
	uint64_t n = q->seen_tail - q->head.seq;

	*navail = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	return 0;
}

int legacy_get(const struct mmapq *q, uint64_t seq, struct mmapq_record *r)
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

/* As mmapq_peek always read a slot: check it, copy it, then look at head
 * again; head past seq means the slot may have been reused meanwhile. */
int legacy_peek(struct mmapq *q, uint64_t seq, void *buf, uint32_t size, struct mmapq_record *r)
{
	const void *s;
	uint64_t head, tail;
	uint32_t len;
	int ret;

	if (size < q->max_record)
		return -EMSGSIZE;
	ret = snapshot_v3(q, &head, &tail);
	if (ret < 0)
		return ret;
	if (seq < head || seq >= tail)
		return -ENOENT;
	ret = check_slot(q, seq, &s, &len);
	if (ret < 0)
		return load_floor_v3(q) > seq ? -ENOENT : ret;
	memcpy(buf, s, len);
	acquire_fence();
	if (__atomic_load_n(&v3(q)->floor, __ATOMIC_RELAXED) > seq)
		return -ENOENT;
	r->seq = seq;
	r->len = len;
	r->data = buf;
	return 0;
}

int legacy_header_check(const struct mmapq *q)
{
	const struct mmapq_identity_v3 *id = &v3(q)->id;

	if (memcmp(id->magic, MMAPQ_MAGIC, sizeof(id->magic)) || id->version != q->version ||
	    id->header_size != MMAPQ_HEADER_SIZE_V3 || id->capacity != q->capacity ||
	    id->record_size != q->max_record || id->slot_size != q->slot_size || id->format != q->format)
		return -EBADMSG;
	return 0;
}
