/* SPDX-License-Identifier: MIT */
/*
 * validate.c -- what a queue file must be before anything in it is used:
 * its identity and geometry (written once, checked against the file's size
 * and the caller's configuration), its reserved bytes, its positions, its
 * consumer table and every slot kept.  The file is shared and may be
 * corrupt, hostile or overwritten: every field is checked before it is
 * trusted, and a refusal says what and where (tests/fuzz/fuzz_queue_file
 * holds these checks against an independent model of the format).
 */
#include "queue.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fault.h"

/* Offset of the first non-zero reserved header byte, or 0 if there is none
 * (offset 0 is the magic, never reserved). */
size_t first_nonzero_in(const uint8_t *b, const struct rsv_range *rsv, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < rsv[i].len; j++)
			if (b[rsv[i].off + j])
				return rsv[i].off + j;
	return 0;
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

/* -EBADMSG for the reserved header byte at offset bad, not zero. */
int reserved_error(const struct mmapq_header *h, const char *path, size_t bad,
                   struct mmapq_error *err)
{
	set_err(err, "%s: reserved header byte at offset %zu is 0x%02x, not zero (corrupt, or a"
	        " newer format)", path, bad, ((const uint8_t *)h)[bad]);
	return -EBADMSG;
}

/* The identity and the geometry, in every version: what a reader needs
 * to find anything in the file, each field within its limits and all of
 * them against the file's real size. */
static int check_geometry(const struct mmapq_header *h, const char *path, uint64_t real_size,
                          struct mmapq_error *err)
{
	uint64_t want;

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
	return 0;
}

/* The rest of a version-3 header: the table's size, the reserved bytes
 * (the entries past the table's size among them), the pids.  Version 1
 * and 2: legacy_check_fields. */
static int check_fields(const struct mmapq_header *h, const char *path, struct mmapq_error *err)
{
	size_t bad;

	if (h->max_consumers < MMAPQ_CONSUMERS_MIN || h->max_consumers > MMAPQ_CONSUMERS_MAX) {
		set_err(err, "%s: max_consumers %" PRIu32 " is outside %" PRIu32 "..%" PRIu32, path,
		        h->max_consumers, MMAPQ_CONSUMERS_MIN, MMAPQ_CONSUMERS_MAX);
		return -EBADMSG;
	}
	bad = first_reserved_nonzero(h, h->max_consumers);
	if (bad)
		return reserved_error(h, path, bad, err);
	if (h->producer.pid < 0) {
		set_err(err, "%s: negative pid in header (%" PRId32 ", 0)", path, h->producer.pid);
		return -EBADMSG;
	}
	for (uint32_t i = 0; i < h->max_consumers; i++) {
		if (h->consumers[i].pid < 0) {
			set_err(err, "%s: negative pid %" PRId32 " in consumer entry %" PRIu32, path,
			        h->consumers[i].pid, i);
			return -EBADMSG;
		}
	}
	return 0;
}

/* The geometry against the configuration: a mismatch is -EPROTO, and the
 * file is left as it is (the observer gives none: it accepts any). */
static int check_config(const struct mmapq_header *h, const struct mmapq_params *p,
                        const char *path, struct mmapq_error *err)
{
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

/* The fields written once at creation, against the file's real size and
 * what the caller expects. */
int validate_static(struct mmapq *q, const struct mmapq_params *p, uint64_t real_size,
                    struct mmapq_error *err)
{
	const struct mmapq_header *h = q->h;
	int r = check_geometry(h, q->path, real_size, err);

	if (r == 0)
		r = h->version == MMAPQ_VERSION ? check_fields(h, q->path, err) :
		    legacy_check_fields(h, p, q->path, err);
	return r < 0 ? r : check_config(h, p, q->path, err);
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
int observe_table(const struct mmapq *q, struct mmapq_error *err)
{
	struct entry_view a[MMAPQ_CONSUMERS_MAX], b[MMAPQ_CONSUMERS_MAX];
	int r = 0, wrong = 0;

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
int validate_dynamic(struct mmapq *q, struct mmapq_error *err)
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

/*
 * The mutex could not be taken for a second.  A live holder may just be
 * slow (stopped in a debugger, say): keep waiting.  But if the identity or
 * geometry in the header changed under us, someone overwrote the file, and
 * its lock word is no longer one any process will release: give up.
 */
int header_check(void *ctx)
{
	const struct mmapq *q = ctx;
	const struct mmapq_header *h = q->h;

	if (memcmp(h->magic, MMAPQ_MAGIC, sizeof(h->magic)) || h->version != q->version ||
	    h->header_size != MMAPQ_HEADER_SIZE || h->capacity != q->capacity ||
	    h->record_size != q->record_size || h->slot_size != q->slot_size || h->format != q->format)
		return -EBADMSG;
	return 0;
}
