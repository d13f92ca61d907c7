/* SPDX-License-Identifier: MIT */
/*
 * validate.c -- what a queue file must be before anything in it is used:
 * its identity and geometry (written once, checked against the file's size
 * and the caller's configuration), its reserved bytes, its positions and
 * its consumer table.  The file is shared and may be damaged, hostile or
 * overwritten: every field is checked before it is trusted, and a refusal
 * says what and where (tests/fuzz/fuzz_queue_file holds these checks
 * against an independent model of the format).  Frames are checked where
 * they are read (frame_next in queue.h) and, after a crash, all of them
 * (salvage.c).
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
static size_t first_reserved_nonzero(const struct mmapq_header *h, uint32_t max_consumers,
                                     uint32_t max_producers)
{
#define RSV(f) {offsetof(struct mmapq_header, f), sizeof(((struct mmapq_header *)0)->f)}
	static const struct rsv_range rsv[] = {
		RSV(reserved1), RSV(producer.reserved), RSV(floor.reserved), RSV(state.reserved0),
		RSV(not_full_reserved), RSV(reserved), RSV(reserved2),
	};
#undef RSV
	const uint8_t *b = (const uint8_t *)h;
	size_t bad = first_nonzero_in(b, rsv, sizeof(rsv) / sizeof(rsv[0]));

	/* the consumer table's entries past max_consumers, and their
	 * outputs[], are reserved whole (an entry in use has no reserved
	 * bytes left); offsets from the header's start, never 0 */
	for (uint32_t i = max_consumers; !bad && i < MMAPQ_CONSUMERS_MAX; i++) {
		struct rsv_range r[2] = {
			{offsetof(struct mmapq_header, consumers) + i * sizeof(struct mmapq_consumer),
			 sizeof(struct mmapq_consumer)},
			{offsetof(struct mmapq_header, outputs) + i * sizeof(struct mmapq_output),
			 sizeof(struct mmapq_output)},
		};

		bad = first_nonzero_in(b, r, 2);
	}
	/* the producer table's entries past max_producers, and the reserved
	 * word of every entry */
	for (uint32_t i = 0; !bad && i < MMAPQ_PRODUCERS_MAX; i++) {
		size_t at = offsetof(struct mmapq_header, producers) + i * sizeof(struct mmapq_producer);
		struct rsv_range r = i < max_producers ?
		        (struct rsv_range){at + offsetof(struct mmapq_producer, rsv_reserved0), 4} :
		        (struct rsv_range){at, sizeof(struct mmapq_producer)};

		bad = first_nonzero_in(b, &r, 1);
	}
	return bad;
}

/* -EBADMSG for the reserved header byte at offset bad, not zero. */
int reserved_error(const void *h, const char *path, size_t bad, struct mmapq_error *err)
{
	set_err(err, "%s: reserved header byte at offset %zu is 0x%02x, not zero (damaged, or a"
	        " newer format)", path, bad, ((const uint8_t *)h)[bad]);
	return -EBADMSG;
}

/* The identity and the geometry of a version-4 file: each field within its
 * limits and all of them against the file's real size. */
static int check_geometry(const struct mmapq_header *h, const char *path, uint64_t real_size,
                          struct mmapq_error *err)
{
	uint32_t limit;

	if (h->format != MMAPQ_FORMAT_INT && h->format != MMAPQ_FORMAT_LINE &&
	    h->format != MMAPQ_FORMAT_BINARY) {
		set_err(err, "%s: record format %" PRIu32 " is unknown (1 = int, 2 = line, 3 = binary)",
		        path, h->format);
		return -EBADMSG;
	}
	if (!is_pow2(h->size) || h->size < MMAPQ_SIZE_MIN || h->size > MMAPQ_SIZE_MAX) {
		set_err(err, "%s: ring size %" PRIu64 " is not a power of two in %" PRIu64 "..%" PRIu64,
		        path, h->size, MMAPQ_SIZE_MIN, MMAPQ_SIZE_MAX);
		return -EBADMSG;
	}
	limit = mmapq_max_record_limit(h->size);
	if (h->max_record < MMAPQ_MAX_RECORD_MIN || h->max_record > limit) {
		set_err(err, "%s: max_record %" PRIu32 " is outside %" PRIu32 "..%" PRIu32
		        " (what a ring of %" PRIu64 " bytes allows)", path, h->max_record,
		        MMAPQ_MAX_RECORD_MIN, limit, h->size);
		return -EBADMSG;
	}
	if (h->file_size != (uint64_t)MMAPQ_HEADER_SIZE + h->size) {
		set_err(err, "%s: header says file size %" PRIu64 ", geometry gives %" PRIu64, path,
		        h->file_size, (uint64_t)MMAPQ_HEADER_SIZE + h->size);
		return -EBADMSG;
	}
	if (real_size != h->file_size) {
		set_err(err, "%s: file is %" PRIu64 " bytes, its header describes %" PRIu64
		        " (truncated or extended)", path, real_size, h->file_size);
		return -EBADMSG;
	}
	return 0;
}

/* What every version shares (the magic, byte order, version, header
 * size), then the geometry of the version found. */
int check_identity(const void *hdr, const char *path, uint64_t real_size, struct mmapq_error *err)
{
	const struct mmapq_header *h = hdr;

	/* h is set: map_file() returned 0 (the analyser does not follow it) */
	if (memcmp(h->magic, MMAPQ_MAGIC, sizeof(h->magic)) != 0) { // NOLINT(clang-analyzer-core.NonNullParamChecker)
		set_err(err, "%s: not an mmapq queue file (bad magic)", path);
		return -EBADMSG;
	}
	if (h->byte_order != MMAPQ_BYTE_ORDER) {
		set_err(err, "%s: byte order mark is 0x%08" PRIx32 ", expected 0x%08" PRIx32
		        " (file made on a machine of another byte order, or damaged)",
		        path, h->byte_order, MMAPQ_BYTE_ORDER);
		return -EBADMSG;
	}
	if (h->version < MMAPQ_VERSION_1 || h->version > MMAPQ_VERSION) {
		set_err(err, "%s: format version is %" PRIu32 ", this program reads version %" PRIu32
		        " (and versions 1 to 3 to migrate them)", path, h->version, MMAPQ_VERSION);
		return -EBADMSG;
	}
	if (h->header_size != (h->version == MMAPQ_VERSION ? MMAPQ_HEADER_SIZE : MMAPQ_HEADER_SIZE_V3)) {
		set_err(err, "%s: header size is %" PRIu32 ", expected %" PRIu32, path, h->header_size,
		        h->version == MMAPQ_VERSION ? MMAPQ_HEADER_SIZE : MMAPQ_HEADER_SIZE_V3);
		return -EBADMSG;
	}
	return h->version == MMAPQ_VERSION ? check_geometry(h, path, real_size, err) :
	       legacy_check_identity(hdr, path, real_size, err);
}

/* Producer table entry i: its state, and a registered one's name (valid,
 * NUL-padded, unique).  Entries are never freed, so these are written
 * only by a registration: checked once, as the file is mapped. */
static int producer_entry_check(const struct mmapq_header *h, uint32_t i, const char *path,
                                struct mmapq_error *err)
{
	const struct mmapq_producer *e = &h->producers[i];
	char name[sizeof(e->name)];

	if (e->state != MMAPQ_PRODUCER_FREE && e->state != MMAPQ_PRODUCER_REGISTERED) {
		set_err(err, "%s: producer entry %" PRIu32 " has state %" PRIu32
		        " (0 = free, 1 = registered)", path, i, e->state);
		return -EBADMSG;
	}
	if (e->state == MMAPQ_PRODUCER_FREE)
		return 0;
	memcpy(name, e->name, sizeof(name));
	if (name[MMAPQ_CONSUMER_NAME_MAX] || !name_in_table_valid(name) || name[0] == '-') {
		set_err(err, "%s: producer entry %" PRIu32 " has no valid name", path, i);
		return -EBADMSG;
	}
	for (size_t j = strlen(name); j < sizeof(name); j++) {
		if (name[j]) {
			set_err(err, "%s: producer entry %" PRIu32 " has bytes after its name", path, i);
			return -EBADMSG;
		}
	}
	for (uint32_t k = 0; k < i; k++) {
		if (h->producers[k].state == MMAPQ_PRODUCER_REGISTERED &&
		    !strncmp(h->producers[k].name, name, sizeof(name))) {
			set_err(err, "%s: producer '%s' is registered twice (entries %" PRIu32 " and %"
			        PRIu32 ")", path, name, k, i);
			return -EBADMSG;
		}
	}
	return 0;
}

/* The rest of a version-4 header: the table's size, the reserved bytes
 * (the entries past the table's size among them), the pids, the clean
 * mark. */
static int check_fields(const struct mmapq_header *h, const char *path, struct mmapq_error *err)
{
	size_t bad;

	if (h->max_consumers < MMAPQ_CONSUMERS_MIN || h->max_consumers > MMAPQ_CONSUMERS_MAX) {
		set_err(err, "%s: max_consumers %" PRIu32 " is outside %" PRIu32 "..%" PRIu32, path,
		        h->max_consumers, MMAPQ_CONSUMERS_MIN, MMAPQ_CONSUMERS_MAX);
		return -EBADMSG;
	}
	if (h->max_producers < MMAPQ_PRODUCERS_MIN || h->max_producers > MMAPQ_PRODUCERS_MAX) {
		set_err(err, "%s: max_producers %" PRIu32 " is outside %" PRIu32 "..%" PRIu32, path,
		        h->max_producers, MMAPQ_PRODUCERS_MIN, MMAPQ_PRODUCERS_MAX);
		return -EBADMSG;
	}
	bad = first_reserved_nonzero(h, h->max_consumers, h->max_producers);
	if (bad)
		return reserved_error(h, path, bad, err);
	for (uint32_t i = 0; i < h->max_consumers; i++) {
		uint32_t pol = h->consumers[i].policy;

		/* a free entry's policy means nothing (a registration zeroes it) */
		if (h->consumers[i].state == MMAPQ_CONSUMER_REGISTERED && (pol & ~MMAPQ_ENTRY_POLICY_KNOWN)) {
			set_err(err, "%s: consumer table entry %" PRIu32 " has policy 0x%" PRIx32
			        " (bits other than 0x%" PRIx32 " are not defined: damaged, or a newer"
			        " version's)", path, i, pol, MMAPQ_ENTRY_POLICY_KNOWN);
			return -EBADMSG;
		}
	}
	if (h->state.clean > 1) {
		set_err(err, "%s: clean mark is %" PRIu32 " (0 or 1)", path, h->state.clean);
		return -EBADMSG;
	}
	for (uint32_t i = 0; i < h->max_producers; i++) {
		const struct mmapq_producer *e = &h->producers[i];
		int r = producer_entry_check(h, i, path, err);

		if (r < 0)
			return r;
		if (e->pid < 0) {
			set_err(err, "%s: negative pid %" PRId32 " in producer entry %" PRIu32, path, e->pid, i);
			return -EBADMSG;
		}
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
	if (p->size && p->size != h->size) {
		set_err(err, "%s: size is %" PRIu64 " in the file but %" PRIu64
		        " in the configuration (the file is left untouched)", path, h->size, p->size);
		return -EPROTO;
	}
	if (p->max_record && p->max_record != h->max_record) {
		set_err(err, "%s: max_record is %" PRIu32 " in the file but %" PRIu32
		        " in the configuration (the file is left untouched)", path, h->max_record,
		        p->max_record);
		return -EPROTO;
	}
	if (p->format && p->format != h->format) {
		set_err(err, "%s: format is %s in the file but %s in the configuration"
		        " (the file is left untouched)", path, mmapq_format_name(h->format),
		        mmapq_format_name(p->format));
		return -EPROTO;
	}
	if (p->max_consumers && p->max_consumers != h->max_consumers) {
		set_err(err, "%s: max_consumers is %" PRIu32 " in the file but %" PRIu32
		        " in the configuration (the file is left untouched)", path, h->max_consumers,
		        p->max_consumers);
		return -EPROTO;
	}
	if (p->max_producers && p->max_producers != h->max_producers) {
		set_err(err, "%s: max_producers is %" PRIu32 " in the file but %" PRIu32
		        " in the configuration (the file is left untouched)", path, h->max_producers,
		        p->max_producers);
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
	int r = check_identity(h, q->path, real_size, err);

	if (r < 0)
		return r;
	if (h->version != MMAPQ_VERSION)
		return legacy_check_fields(q, p, err);
	r = check_fields(h, q->path, err);
	return r < 0 ? r : check_config(h, p, q->path, err);
}

/* A consumer table entry as it was read: what validation looks at. */
struct entry_view {
	uint32_t state;
	struct pos synced, position;
	uint64_t skipped, skip_to;
	char name[MMAPQ_CONSUMER_NAME_MAX + 1];
};

/* The first max_consumers entries into v.  Acquire: pairs with the
 * store-release of state (a registration) and of a cursor; synced before
 * position, which is never behind it. */
static void table_read(const struct mmapq *q, struct entry_view *v)
{
	for (uint32_t i = 0; i < q->max_consumers; i++) {
		const struct mmapq_consumer *c = &q->h->consumers[i];

		v[i].state = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
		v[i].synced.seq = __atomic_load_n(&c->synced, __ATOMIC_ACQUIRE);
		v[i].synced.byte = __atomic_load_n(&c->synced_byte, __ATOMIC_RELAXED);
		v[i].position.seq = __atomic_load_n(&c->position, __ATOMIC_ACQUIRE);
		v[i].position.byte = __atomic_load_n(&c->position_byte, __ATOMIC_RELAXED);
		v[i].skipped = __atomic_load_n(&c->skipped, __ATOMIC_RELAXED);
		v[i].skip_to = __atomic_load_n(&c->skip_to, __ATOMIC_RELAXED);
		memcpy(v[i].name, c->name, sizeof(v[i].name));
	}
}

/* lo <= p <= hi, both members, and p's byte a multiple of 8 */
static bool between(struct pos lo, struct pos p, struct pos hi)
{
	return lo.seq <= p.seq && p.seq <= hi.seq && lo.byte <= p.byte && p.byte <= hi.byte &&
	       p.byte % MMAPQ_FRAME_ALIGN == 0;
}

/* The consumer table as read into v: states, names (valid, unique) and,
 * with cursors, where they are (floor <= synced <= position <= tail).  Free
 * entries may hold anything a crash in the middle of a registration left
 * (they are zeroed before reuse). */
static int table_check(const struct mmapq *q, const struct entry_view *v, bool cursors,
                       struct pos floor, struct pos tail, struct mmapq_error *err)
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
		if (cursors && (!between(floor, v[i].synced, v[i].position) ||
		                !between(v[i].synced, v[i].position, tail))) {
			set_err(err, "%s: consumer '%s' is at record %" PRIu64 " byte %" PRIu64
			        " (on disk: %" PRIu64 " byte %" PRIu64 "), outside the queue [%" PRIu64
			        " byte %" PRIu64 ", %" PRIu64 " byte %" PRIu64 "]", q->path, name,
			        v[i].position.seq, v[i].position.byte, v[i].synced.seq, v[i].synced.byte,
			        floor.seq, floor.byte, tail.seq, tail.byte);
			return -EBADMSG;
		}
		/* a skip a producer died in: finished at a record of the queue */
		if (cursors && (v[i].skipped & MMAPQ_SKIP_PENDING) &&
		    (v[i].skip_to < floor.seq || v[i].skip_to > tail.seq)) {
			set_err(err, "%s: consumer '%s' has a skip pending to record %" PRIu64
			        ", outside the queue [%" PRIu64 ", %" PRIu64 "]", q->path, name,
			        v[i].skip_to, floor.seq, tail.seq);
			return -EBADMSG;
		}
	}
	return 0;
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
 * do; a damaged table looks wrong every time.
 */
int observe_table(const struct mmapq *q, struct mmapq_error *err)
{
	struct entry_view a[MMAPQ_CONSUMERS_MAX], b[MMAPQ_CONSUMERS_MAX];
	int r = 0, wrong = 0;

	for (int i = 0; i < 1000 && wrong < 3; i++) {
		struct pos floor, tail;
		bool agree = true;

		r = snapshot_floor(q, &floor);
		if (r < 0)
			continue;
		table_read(q, a);
		table_read(q, b);
		tail.seq = load_tail(q);
		tail.byte = load_tail_byte(q);
		for (uint32_t k = 0; agree && k < q->max_consumers; k++)
			agree = a[k].state == b[k].state && !memcmp(a[k].name, b[k].name, sizeof(a[k].name));
		if (!agree)
			continue;
		r = table_check(q, a, true, floor, tail, err);
		if (r == 0)
			return 0;
		wrong++;
	}
	if (wrong)
		return r;
	set_err(err, "%s: the consumer table keeps changing; try again", q->path);
	return -EAGAIN;
}

/* floor and tail as a crash leaves them (mmapq_format.h, "Positions"):
 * floor <= tail, at most a ring apart, 8 bytes a record at least, bytes
 * aligned.  Stable (the mutex, or alone). */
static int check_positions(const struct mmapq *q, struct mmapq_error *err)
{
	struct pos floor = floor_locked(q), tail = {q->h->producer.tail, q->h->producer.tail_byte};

	if (floor.seq > tail.seq || floor.byte > tail.byte || tail.byte - floor.byte > q->size ||
	    tail.seq - floor.seq > (tail.byte - floor.byte) / MMAPQ_FRAME_ALIGN ||
	    floor.byte % MMAPQ_FRAME_ALIGN || tail.byte % MMAPQ_FRAME_ALIGN) {
		set_err(err, "%s: positions out of bounds: oldest record %" PRIu64 " at byte %" PRIu64
		        ", tail %" PRIu64 " at byte %" PRIu64 ", ring %" PRIu64 " bytes", q->path,
		        floor.seq, floor.byte, tail.seq, tail.byte, q->size);
		return -EBADMSG;
	}
	return 0;
}

/* The producers' reservations as a crash leaves them ("Fan-in" in
 * DESIGN.md): claim_byte from tail_byte to floor.byte + size, each
 * reservation's state known and its bytes aligned, at most a ring, from
 * floor up.  Where exactly they lie (back to back from tail_byte) is what
 * the repair restores (reservations_whole_locked), not a condition. */
static int check_reservations(const struct mmapq *q, struct pos floor, struct pos tail,
                              struct mmapq_error *err)
{
	uint64_t claim = q->h->producer.claim_byte;

	if (claim < tail.byte || claim > floor.byte + q->size || claim % MMAPQ_FRAME_ALIGN) {
		set_err(err, "%s: reserved bytes end at %" PRIu64 ", outside [tail byte %" PRIu64 ", %"
		        PRIu64 "]", q->path, claim, tail.byte, floor.byte + q->size);
		return -EBADMSG;
	}
	for (uint32_t i = 0; i < q->max_producers; i++) {
		const struct mmapq_producer *e = &q->h->producers[i];
		uint32_t st = e->rsv_state;

		if (st > MMAPQ_RSV_STATE_MAX || (st != MMAPQ_RSV_NONE &&
		    (e->rsv_from > e->rsv_to || e->rsv_from % MMAPQ_FRAME_ALIGN ||
		     e->rsv_to % MMAPQ_FRAME_ALIGN || e->rsv_from < floor.byte ||
		     e->rsv_to > floor.byte + q->size))) {
			set_err(err, "%s: producer entry %" PRIu32 " has reservation state %" PRIu32
			        " [%" PRIu64 ", %" PRIu64 "), not one of the queue [%" PRIu64 ", %" PRIu64
			        "]", q->path, i, st, e->rsv_from, e->rsv_to, floor.byte,
			        floor.byte + q->size);
			return -EBADMSG;
		}
	}
	return 0;
}

/* floor, tail, the reservations and the consumer table (with cursors:
 * where every cursor is; without: only states and names, which a salvage
 * does not repair).  Caller makes them stable (the mutex, or being alone). */
int validate_dynamic(struct mmapq *q, bool cursors, struct mmapq_error *err)
{
	struct entry_view v[MMAPQ_CONSUMERS_MAX];
	struct pos floor = floor_locked(q), tail = {q->h->producer.tail, q->h->producer.tail_byte};
	int r = cursors ? check_positions(q, err) : 0;

	/* alone, they are dropped unread: after a power cut the producer
	 * table's page and the first page may come from different times */
	if (r == 0 && cursors && !q->alone)
		r = check_reservations(q, floor, tail, err);
	if (r < 0)
		return r;
	table_read(q, v);
	return table_check(q, v, cursors, floor, tail, err);
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

	if (q->legacy)
		return legacy_header_check(q);
	if (memcmp(h->magic, MMAPQ_MAGIC, sizeof(h->magic)) || h->version != q->version ||
	    h->header_size != MMAPQ_HEADER_SIZE || h->size != q->size ||
	    h->max_record != q->max_record || h->format != q->format)
		return -EBADMSG;
	return 0;
}
