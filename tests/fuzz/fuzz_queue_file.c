/* SPDX-License-Identifier: MIT */
/*
 * fuzz_queue_file -- libFuzzer target: the input is a queue file.
 *
 * Two ways to read an input (the first byte decides):
 *
 *   raw       The first byte is 'M' (as in the magic "MMAPQ\0\r\n"): the
 *             whole input is the file.  The committed seeds of this kind are
 *             real queue files made by the library.
 *   mutation  Any other first byte: a valid queue file is built with the
 *             library (and cached) from a template description, then edited
 *             by a list of operations, so the fuzzer starts past the magic
 *             and the geometry checks:
 *               byte 0  bit 0: format (0 int, 1 line); bits 1-2: capacity
 *                       2, 4, 8, 16; bits 3-4: record_size 8, 12, 17, 64;
 *                       bits 5-7: records put and consumed first (so that
 *                       head and tail have wrapped): 0, 1, cap-1, cap,
 *                       cap+1, 2cap+3, 1000, 4099
 *               byte 1  records then put: byte % (capacity + 1); if it is
 *                       0xf0 or more and its bit 2 is set, the file is
 *                       rewritten as format version 1 wrote it (int slots
 *                       of 16 + record_size bytes); if it is 0xf0 or more
 *                       and bit 2 is clear, the consumer and the producer
 *                       ask for another geometry (by its bits 0-1:
 *                       capacity x2, capacity /2, record_size + 1, the
 *                       other format)
 *               byte 2  of those, consumed: byte % (put + 1)
 *               then operations, each [op] [offset: 2 bytes LE] [value]:
 *                 op bits 0-1  0 set, 1 xor, 2 add (little-endian), 3 resize
 *                 op bits 2-3  width 1, 2, 4, 8 bytes (the value's length)
 *                 offset       modulo the file size (for resize: the signed
 *                              16-bit change in file size; no value follows)
 *
 * Each file is then opened exactly as the programs open it:
 *   observer   (mmapqctl status / dump): mmapq_open, mmapq_status, and
 *              mmapq_peek over [head, tail) and just outside it;
 *   consumer   (mmapq-consumer) on a fresh copy: attach, read every record
 *              (mmapq_get, then mmapq_get_many, and for int records
 *              mmapq_copy_many), release them all, close;
 *   producer   (mmapq-producer) on a fresh copy: attach, put up to 3
 *              records (two with mmapq_put_many, one with mmapq_put),
 *              publish, close.
 * A version-1 file is accepted by the observer and refused by the roles
 * (-EPROTO), as the daemons open it.
 *
 * Invariants (any failure aborts, and libFuzzer keeps the input):
 *   - no crash, no out-of-bounds access (ASan, UBSan), no hang (-timeout);
 *   - the library accepts the file exactly when an independent model of the
 *     documented format (mmapq_format.h) does, with the documented codes
 *     (-EBADMSG for a bad file, -EPROTO for a geometry mismatch), and a
 *     refusal comes with a one-line message naming the file;
 *   - a refused file is left byte-for-byte as it was;
 *   - status reports exactly what the header holds; every record handed out
 *     (peek, get) is the right slot: its pointer lies inside the library's
 *     mapping of the file (seen through --wrap=mmap) at the slot's offset,
 *     and its bytes are the file's; a slot the model calls bad gives
 *     -EBADMSG, a good one gives the record;
 *   - consumer and producer write only their own fields, the mutex, the
 *     wait words and (producer) the slots they fill, and leave a file the
 *     model accepts with the positions moved as expected;
 *   - no descriptor leaks, no scheduling change (the mutex bytes are
 *     hostile: a priority-protect mutex could raise our priority), and
 *     LeakSanitizer for memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <sys/mman.h>

#include "fuzz_common.h"
#include "mmapq.h"
#include "mmapq_format.h"

/* ---- the library's mapping of our file ------------------------------------- */

void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_munmap(void *addr, size_t len);

static dev_t g_watch_dev;
static ino_t g_watch_ino;
static const uint8_t *g_map;  /* the library's current mapping of the watched file */
static size_t g_map_len;

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p = __real_mmap(addr, len, prot, flags, fd, off);
	struct stat st;

	if (p != MAP_FAILED && fd >= 0 && g_watch_ino && off == 0 && fstat(fd, &st) == 0 &&
	    st.st_ino == g_watch_ino && st.st_dev == g_watch_dev) {
		g_map = p;
		g_map_len = len;
	}
	return p;
}

int __wrap_munmap(void *addr, size_t len)
{
	if (addr == g_map) {
		g_map = NULL;
		g_map_len = 0;
	}
	return __real_munmap(addr, len);
}

/* ---- the model of the format ------------------------------------------------ */

#define OFF(f) offsetof(struct mmapq_header, f)
#define SIDE_P OFF(producer)
#define SIDE_C offsetof(struct mmapq_header_v2, consumer) /* version 2's one consumer */
#define FLOOR OFF(floor.floor)                          /* = version 2's head */
#define TABLE OFF(consumers)
#define ENTRY_SIZE sizeof(struct mmapq_consumer)
#define ENTRY(i) (TABLE + (size_t)(i) * ENTRY_SIZE)
#define E_POS offsetof(struct mmapq_consumer, position)
#define E_STATE offsetof(struct mmapq_consumer, state)
#define E_PID offsetof(struct mmapq_consumer, pid)
#define E_ATTACHES offsetof(struct mmapq_consumer, attaches)
#define E_NAME offsetof(struct mmapq_consumer, name)
#define E_COND offsetof(struct mmapq_consumer, not_empty)

static uint32_t rd32(const uint8_t *b, size_t off)
{
	uint32_t v;
	memcpy(&v, b + off, sizeof(v));
	return v;
}

static uint64_t rd64(const uint8_t *b, size_t off)
{
	uint64_t v;
	memcpy(&v, b + off, sizeof(v));
	return v;
}

static void wr64(uint8_t *b, size_t off, uint64_t v)
{
	memcpy(b + off, &v, sizeof(v));
}

static void wr32(uint8_t *b, size_t off, uint32_t v)
{
	memcpy(b + off, &v, sizeof(v));
}

struct model {
	bool hdr_ok;    /* static header fields valid, file exactly the size they give */
	bool pos_ok;    /* head <= tail <= head + capacity */
	bool slots_ok;  /* every slot in [head, tail): seq, len, reserved */
	bool table_ok;  /* version 3: the registered consumers' states, names, cursors */
	const char *why;
	uint32_t ver, fmt, cap, rs, ss, maxc;
	bool ints;      /* int slots of version 2: seq and value, no length */
	size_t poff;    /* payload offset in a slot */
	uint64_t head, tail;
	uint64_t head_eff;  /* floor as a role that attaches alone leaves it: raised to
	                       the lowest registered cursor */
	int nreg;           /* registered consumers */
	int def;            /* the entry of the consumer "default", -1 if none */
};

/* Reserved header ranges that must be zero (mmapq_format.h): version 1
 * and 2 (not offset 36 nor from 512 on: an interrupted upgrade writes
 * there first), version 3 (the entries past max_consumers apart). */
struct rsv {
	size_t off, len;
};
static const struct rsv reserved_v2[] = {
	{OFF(reserved1), 8},
	{SIDE_P + offsetof(struct mmapq_side, reserved0), 4},
	{SIDE_P + offsetof(struct mmapq_side, reserved), sizeof(((struct mmapq_side *)0)->reserved)},
	{SIDE_C + offsetof(struct mmapq_side, reserved0), 4},
	{SIDE_C + offsetof(struct mmapq_side, reserved), sizeof(((struct mmapq_side *)0)->reserved)},
	{offsetof(struct mmapq_header_v2, not_empty) + offsetof(struct mmapq_cond, reserved), 56},
	{OFF(not_full) + offsetof(struct mmapq_cond, reserved), 56},
};
static const struct rsv reserved_v3[] = {
	{OFF(reserved1), 8},
	{SIDE_P + offsetof(struct mmapq_side, reserved0), 4},
	{SIDE_P + offsetof(struct mmapq_side, reserved), sizeof(((struct mmapq_side *)0)->reserved)},
	{OFF(floor.reserved), 120},
	{OFF(reserved2), 64},
	{OFF(not_full) + offsetof(struct mmapq_cond, reserved), 56},
	{OFF(reserved), sizeof(((struct mmapq_header *)0)->reserved)},
};

static bool all_zero(const uint8_t *f, const struct rsv *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < r[i].len; j++)
			if (f[r[i].off + j])
				return false;
	return true;
}

/* Version 3: the entries' reserved bytes, the entries past max_consumers,
 * the pids of those in use. */
static bool table_static_ok(const uint8_t *f, uint32_t maxc)
{
	for (uint32_t i = 0; i < MMAPQ_CONSUMERS_MAX; i++) {
		const struct rsv in_use[] = {
			{ENTRY(i) + offsetof(struct mmapq_consumer, reserved0), 8},
			{ENTRY(i) + E_COND + offsetof(struct mmapq_cond, reserved), 56},
		};
		const struct rsv unused[] = {{ENTRY(i), ENTRY_SIZE}};
		if (i < maxc ? !all_zero(f, in_use, 2) || (int32_t)rd32(f, ENTRY(i) + E_PID) < 0 :
		               !all_zero(f, unused, 1))
			return false;
	}
	return true;
}

/* A name as the library requires it: 1..63 of the allowed characters,
 * NUL-padded to 64 bytes. */
static bool name_ok(const uint8_t *f, size_t off)
{
	size_t len = strnlen((const char *)f + off, 64);

	if (len == 0 || len == 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!strchr(MMAPQ_CONSUMER_NAME_CHARS, f[off + i]))
			return false;
	for (size_t i = len; i < 64; i++)
		if (f[off + i])
			return false;
	return true;
}

/* Version 3's table as the roles check it (floor, tail valid). */
static void model_table(const uint8_t *f, struct model *m)
{
	uint64_t min = UINT64_MAX;

	m->def = -1;
	m->why = "consumer table";
	for (uint32_t i = 0; i < m->maxc; i++) {
		uint32_t state = rd32(f, ENTRY(i) + E_STATE);
		uint64_t pos = rd64(f, ENTRY(i) + E_POS);

		if (state > 1)
			return;
		if (!state)
			continue;
		if (!name_ok(f, ENTRY(i) + E_NAME) || pos < m->head || pos > m->tail)
			return;
		for (uint32_t k = 0; k < i; k++)
			if (rd32(f, ENTRY(k) + E_STATE) == 1 &&
			    !memcmp(f + ENTRY(k) + E_NAME, f + ENTRY(i) + E_NAME, 64))
				return;
		if (!strcmp((const char *)f + ENTRY(i) + E_NAME, MMAPQ_CONSUMER_DEFAULT))
			m->def = (int)i;
		m->nreg++;
		if (pos < min)
			min = pos;
	}
	if (m->nreg && min > m->head)
		m->head_eff = min;
	m->table_ok = true;
}

static size_t slot_off(const struct model *m, uint64_t seq)
{
	return MMAPQ_HEADER_SIZE + (size_t)(seq & (m->cap - 1)) * m->ss;
}

/* What the readers (peek, get) require of a slot: reserved is checked only
 * when attaching. */
static bool slot_readable(const struct model *m, const uint8_t *f, uint64_t seq)
{
	size_t o = slot_off(m, seq);
	uint32_t len;

	if (m->ints)
		return rd64(f, o) == seq;
	len = rd32(f, o + 8);
	return rd64(f, o) == seq && len <= m->rs && (m->fmt != MMAPQ_FORMAT_INT || len == 8);
}

/* The payload length of a readable slot. */
static uint32_t slot_len(const struct model *m, const uint8_t *f, uint64_t seq)
{
	return m->ints ? 8 : rd32(f, slot_off(m, seq) + 8);
}

static void model_file(const uint8_t *f, size_t n, struct model *m)
{
	uint64_t want;

	memset(m, 0, sizeof(*m));
	m->def = -1;
	m->why = "too small";
	if (n < MMAPQ_HEADER_SIZE)
		return;
	m->why = "magic";
	if (memcmp(f, MMAPQ_MAGIC, 8) != 0)
		return;
	m->why = "version";
	m->ver = rd32(f, OFF(version));
	if (m->ver != 1 && m->ver != 2 && m->ver != 3)
		return;
	m->why = "header_size";
	if (rd32(f, OFF(header_size)) != MMAPQ_HEADER_SIZE)
		return;
	m->why = "byte_order";
	if (rd32(f, OFF(byte_order)) != MMAPQ_BYTE_ORDER)
		return;
	m->fmt = rd32(f, OFF(format));
	m->cap = rd32(f, OFF(capacity));
	m->rs = rd32(f, OFF(record_size));
	m->ss = rd32(f, OFF(slot_size));
	m->why = "format";
	if (m->fmt != MMAPQ_FORMAT_INT && m->fmt != MMAPQ_FORMAT_LINE)
		return;
	m->why = "capacity";
	if (m->cap < 2 || m->cap > (1u << 24) || (m->cap & (m->cap - 1)))
		return;
	m->why = "record_size";
	if (m->rs < 8 || m->rs > (1u << 20))
		return;
	m->why = "slot_size";
	/* version 2 stores an int record as seq and value; every other slot
	 * is a 16-byte header and record_size bytes rounded up to 8 */
	m->ints = m->ver >= 2 && m->fmt == MMAPQ_FORMAT_INT;
	m->poff = m->ints ? 8 : 16;
	if (m->ss != (m->ints ? 16 : 16 + ((m->rs + 7) / 8) * 8))
		return;
	want = 4096 + (uint64_t)m->cap * m->ss;
	m->why = "file_size field";
	if (rd64(f, OFF(file_size)) != want)
		return;
	m->why = "real size";
	if ((uint64_t)n != want)
		return;
	m->maxc = m->ver == 3 ? rd32(f, OFF(max_consumers)) : 1;
	m->why = "max_consumers";
	if (m->maxc < 1 || m->maxc > MMAPQ_CONSUMERS_MAX)
		return;
	m->why = "reserved";
	if (m->ver == 3 ? !all_zero(f, reserved_v3, sizeof(reserved_v3) / sizeof(reserved_v3[0])) ||
	                  !table_static_ok(f, m->maxc) :
	                  !all_zero(f, reserved_v2, sizeof(reserved_v2) / sizeof(reserved_v2[0])))
		return;
	m->why = "pid";
	if ((int32_t)rd32(f, SIDE_P + 8) < 0 || (m->ver < 3 && (int32_t)rd32(f, SIDE_C + 8) < 0))
		return;
	m->hdr_ok = true;
	m->head = m->head_eff = rd64(f, FLOOR);
	m->tail = rd64(f, SIDE_P);
	m->why = "positions";
	if (m->head > m->tail || m->tail - m->head > m->cap)
		return;
	m->pos_ok = true;
	if (m->ver == 3) {
		model_table(f, m);
		if (!m->table_ok)
			return;
	} else {
		m->table_ok = true; /* an upgrade makes "default" the one consumer, at head */
		m->def = -1;
	}
	m->why = "slots";
	for (uint64_t s = m->head; s < m->tail; s++) {
		if (!slot_readable(m, f, s) || (!m->ints && rd32(f, slot_off(m, s) + 12) != 0))
			return;
	}
	m->slots_ok = true;
	m->why = NULL;
}

/* ---- checks ----------------------------------------------------------------- */

static char g_path[512];
static const char *g_dir;

static void check_err_msg(const struct mmapq_error *err, int r, const char *role)
{
	size_t len = strnlen(err->msg, sizeof(err->msg));

	FUZZ_CHECK(len > 0 && len < sizeof(err->msg), "%s: code %d with an empty message", role, r);
	FUZZ_CHECK(!strncmp(err->msg, g_path, strlen(g_path)), "%s: message does not name the file: %s",
	           role, err->msg);
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK((unsigned char)err->msg[i] >= 0x20 && err->msg[i] != 0x7f,
		           "%s: control byte 0x%02x in the message", role, (unsigned char)err->msg[i]);
}

/* A record handed out for seq: the right slot of the current mapping, with
 * the file's bytes. */
/* copy: where a copied record must be (mmapq_peek's buffer); NULL: in
 * place in the mapping (mmapq_get) */
static void check_record(const struct model *m, const uint8_t *f, uint64_t seq,
                         const struct mmapq_record *rec, const uint8_t *copy, const char *role)
{
	size_t o = slot_off(m, seq);
	const uint8_t *d = rec->data;

	FUZZ_CHECK(g_map, "%s: no mapping of the file was seen", role);
	FUZZ_CHECK(rec->seq == seq, "%s: record seq %" PRIu64 " for %" PRIu64, role, rec->seq, seq);
	FUZZ_CHECK(rec->len == slot_len(m, f, seq), "%s: record length %" PRIu32, role, rec->len);
	FUZZ_CHECK(rec->len <= m->rs, "%s: record length %" PRIu32 " > record_size", role, rec->len);
	FUZZ_CHECK(m->fmt != MMAPQ_FORMAT_INT || rec->len == 8, "%s: int record of %" PRIu32 " bytes",
	           role, rec->len);
	if (copy)
		FUZZ_CHECK(d == copy, "%s: record %" PRIu64 " data not in the caller's buffer", role, seq);
	else
		FUZZ_CHECK(d == g_map + o + m->poff,
		           "%s: record %" PRIu64 " data at map+%td, expected map+%zu", role, seq,
		           d - g_map, o + m->poff);
	FUZZ_CHECK(o + m->poff + rec->len <= g_map_len, "%s: record beyond the mapping", role);
	FUZZ_CHECK(!memcmp(d, f + o + m->poff, rec->len), "%s: record bytes differ", role);
}

static void check_side(const uint8_t *f, size_t side, const struct mmapq_side_status *s)
{
	FUZZ_CHECK(s->pid == (int32_t)rd32(f, side + 8), "status pid");
	FUZZ_CHECK(s->start_usec == rd64(f, side + 16), "status start_usec");
	FUZZ_CHECK(s->dropped == rd64(f, side + 24), "status dropped");
	FUZZ_CHECK(s->bad_input == rd64(f, side + 32), "status bad_input");
	FUZZ_CHECK(s->recoveries == rd64(f, side + 40), "status recoveries");
	FUZZ_CHECK(s->attaches == rd64(f, side + 48), "status attaches");
	FUZZ_CHECK(!s->attached, "status: attached, but nobody is");
}

static struct mmapq *open_role(enum mmapq_role role, uint32_t cap, uint32_t rs, uint32_t fmt,
                               struct mmapq_error *err, int *ret)
{
	struct mmapq_params p = {
		.path = g_path, .role = role, .capacity = cap, .record_size = rs, .format = fmt,
		.sync = MMAPQ_SYNC_NEVER, .file_mode = 0600,
	};
	struct mmapq *q = NULL;

	memset(err, 0x55, sizeof(*err)); /* the message must be set, not left over */
	*ret = mmapq_open(&p, &q, err);
	FUZZ_CHECK(*ret <= 0, "mmapq_open returned %d", *ret);
	FUZZ_CHECK((*ret == 0) == (q != NULL), "mmapq_open: code %d but queue %p", *ret, (void *)q);
	return q;
}

/* A file without a queue id (all zero) gets one from either role: its 16
 * bytes may change then (*r), to anything but zero (check_id_given).  (A
 * version-2 file being upgraded: within the header's tail, already free.) */
static bool id_zero(const uint8_t *id)
{
	for (size_t i = 0; i < MMAPQ_ID_SIZE; i++)
		if (id[i])
			return false;
	return true;
}

static bool id_missing(const uint8_t *f)
{
	return id_zero(f + OFF(id));
}

static void check_observer(const uint8_t *f, size_t n, const struct model *m)
{
	struct mmapq_error err;
	struct mmapq_status st;
	struct mmapq_record rec;
	struct mmapq *q;
	uint8_t *buf;
	/* the consumer table as the roles check it (a name registered twice,
	 * a cursor outside the queue, ...), but not the slots */
	int r, want = m->hdr_ok && m->pos_ok && m->table_ok ? 0 : -EBADMSG;

	q = open_role(MMAPQ_ROLE_OBSERVER, 0, 0, 0, &err, &r);
	FUZZ_CHECK(r == want, "observer: mmapq_open %d (%s), model expects %d (%s)", r,
	           r ? err.msg : "accepted", want, m->why ? m->why : "valid");
	if (r < 0) {
		check_err_msg(&err, r, "observer");
		return;
	}
	FUZZ_CHECK(g_map && g_map_len == n, "observer: mapping of %zu bytes, file has %zu", g_map_len, n);

	r = mmapq_status(q, &st);
	FUZZ_CHECK(r == 0, "observer: mmapq_status %d", r);
	FUZZ_CHECK(st.version == m->ver && st.header_size == MMAPQ_HEADER_SIZE &&
	           st.capacity == m->cap && st.record_size == m->rs && st.slot_size == m->ss &&
	           st.format == m->fmt && st.file_size == n && st.head == m->head && st.tail == m->tail &&
	           st.created_usec == rd64(f, OFF(created_usec)) &&
	           (m->ver == 3 ? !memcmp(st.id, f + OFF(id), MMAPQ_ID_SIZE) : id_zero(st.id)),
	           "observer: status differs from the header");
	check_side(f, SIDE_P, &st.producer);
	if (m->ver < 3)
		check_side(f, SIDE_C, &st.consumer);

	/* as mmapqctl dump does: copies into a buffer of record_size bytes,
	 * one byte less is refused */
	buf = malloc(m->rs);
	FUZZ_CHECK(buf && mmapq_record_size(q) == m->rs, "observer: record size");
	if (st.tail > st.head)
		FUZZ_CHECK(mmapq_peek(q, st.head, buf, m->rs - 1, &rec) == -EMSGSIZE,
		           "observer: peek into a buffer one byte short");
	for (uint64_t s = st.head; s < st.tail; s++) {
		r = mmapq_peek(q, s, buf, m->rs, &rec);
		if (slot_readable(m, f, s)) {
			FUZZ_CHECK(r == 0, "observer: peek(%" PRIu64 ") %d on a good slot", s, r);
			check_record(m, f, s, &rec, buf, "observer peek");
		} else {
			FUZZ_CHECK(r == -EBADMSG, "observer: peek(%" PRIu64 ") %d on a bad slot", s, r);
		}
	}
	/* just outside the queue */
	FUZZ_CHECK(mmapq_peek(q, st.tail, buf, m->rs, &rec) == -ENOENT, "observer: peek(tail)");
	FUZZ_CHECK(mmapq_peek(q, st.tail + m->cap, buf, m->rs, &rec) == -ENOENT,
	           "observer: peek(tail + cap)");
	FUZZ_CHECK(mmapq_peek(q, UINT64_MAX, buf, m->rs, &rec) == -ENOENT || st.tail == UINT64_MAX,
	           "observer: peek(UINT64_MAX)");
	if (st.head > 0)
		FUZZ_CHECK(mmapq_peek(q, st.head - 1, buf, m->rs, &rec) == -ENOENT,
		           "observer: peek(head - 1)");
	free(buf);
	mmapq_close(q);
	FUZZ_CHECK(!g_map, "observer: mapping not released");
}

/* Bytes [a, b) of the header that a role may change. */
struct range {
	size_t a, b;
};

static void check_only_changed(const uint8_t *before, const uint8_t *after, size_t n,
                               const struct range *ok, size_t nok, const char *role)
{
	for (size_t i = 0; i < n; i++) {
		bool allowed = false;

		if (before[i] == after[i])
			continue;
		for (size_t k = 0; k < nok && !allowed; k++)
			allowed = i >= ok[k].a && i < ok[k].b;
		FUZZ_CHECK(allowed, "%s: changed byte %zu of the file (0x%02x -> 0x%02x)", role, i,
		           before[i], after[i]);
	}
}

static uint8_t g_after[1 << 17];

/* Geometry to ask for: the template's in mutation mode, the header's
 * (when valid) in raw mode. */
struct geom {
	uint32_t cap, rs, fmt;
};

static int attach_expect(const struct model *m, const struct geom *g)
{
	if (!m->hdr_ok)
		return -EBADMSG;
	if (m->ver == 1)
		return -EPROTO; /* the daemons refuse it, naming mmapqctl recreate */
	if (g->cap != m->cap || g->rs != m->rs || g->fmt != m->fmt)
		return -EPROTO;
	return m->pos_ok && m->slots_ok && m->table_ok ? 0 : -EBADMSG;
}

/* Header bytes a role may change besides its own side: the mutex, the
 * wait words, floor (raised by whoever attaches alone), the consumer
 * table's wait words (reset alone); a version-2 file is upgraded: its
 * version, max_consumers, the consumer side and all from 256 on. */
static size_t shared_ranges(const struct model *m, struct range *r)
{
	size_t n = 0;

	r[n++] = (struct range){OFF(lock), OFF(lock) + 64};
	r[n++] = (struct range){OFF(not_full), OFF(not_full) + 8};
	r[n++] = (struct range){FLOOR, FLOOR + 8};
	if (m->ver == 2) {
		r[n++] = (struct range){OFF(version), OFF(version) + 4};
		r[n++] = (struct range){OFF(max_consumers), OFF(max_consumers) + 4};
		r[n++] = (struct range){FLOOR + 8, MMAPQ_HEADER_SIZE};
	} else {
		for (uint32_t i = 0; i < m->maxc; i++)
			r[n++] = (struct range){ENTRY(i) + E_COND, ENTRY(i) + E_COND + 8};
	}
	return n;
}

static size_t id_range(const uint8_t *f, struct range *r)
{
	if (!id_missing(f))
		return 0;
	*r = (struct range){OFF(id), OFF(id) + MMAPQ_ID_SIZE};
	return 1;
}

static void check_id_given(const uint8_t *after, const char *role)
{
	FUZZ_CHECK(!id_missing(after), "%s: the queue still has no id", role);
}

static void check_refused_unchanged(const uint8_t *f, size_t n, const char *role)
{
	size_t n2 = fuzz_read_file(g_path, g_after, sizeof(g_after)), at = 0;

	while (n2 == n && at < n && f[at] == g_after[at])
		at++;
	FUZZ_CHECK(n2 == n && at == n, "%s: a refused file was changed (size %zu -> %zu, first byte"
	           " changed at offset %zu)", role, n, n2, at);
}

static void side_ranges(size_t side, struct range *r)
{
	r[0] = (struct range){side, side + 12};       /* position, pid */
	r[1] = (struct range){side + 16, side + 24};  /* start_usec */
	r[2] = (struct range){side + 40, side + 56};  /* recoveries, attaches */
}

static void check_sched(const char *role)
{
	struct sched_param sp;

	FUZZ_CHECK(sched_getscheduler(0) == SCHED_OTHER, "%s: scheduling policy changed", role);
	FUZZ_CHECK(sched_getparam(0, &sp) == 0 && sp.sched_priority == 0,
	           "%s: scheduling priority changed", role);
}

static void check_consumer(const uint8_t *f, size_t n, const struct model *m, const struct geom *g)
{
	struct mmapq_error err;
	struct mmapq_record rec;
	struct range ok[MMAPQ_CONSUMERS_MAX + 8];
	struct model m2;
	struct mmapq *q;
	uint32_t navail = 0;
	size_t n2, nok;
	int r, want = attach_expect(m, g);
	/* where "default" starts: its cursor, or (registering) the oldest
	 * record kept, floor as attaching alone raises it to the lowest
	 * cursor first; a full table has no room for it */
	uint64_t start = m->def >= 0 ? rd64(f, ENTRY(m->def) + E_POS) : m->head_eff;
	/* (a file too short for a header has no counters to read) */
	uint64_t attaches = m->def >= 0 ? rd64(f, ENTRY(m->def) + E_ATTACHES) :
	                    m->hdr_ok && m->ver < 3 ? rd64(f, SIDE_C + 48) : 0;

	if (want == 0 && m->ver == 3 && m->def < 0 && m->nreg == (int)m->maxc)
		want = -ENOSPC;

	fuzz_write_file(g_path, f, n);
	q = open_role(MMAPQ_ROLE_CONSUMER, g->cap, g->rs, g->fmt, &err, &r);
	check_sched("consumer");
	FUZZ_CHECK(r == want, "consumer: mmapq_open %d (%s), model expects %d (%s)", r,
	           r ? err.msg : "accepted", want, m->why ? m->why : "valid");
	if (r < 0) {
		check_err_msg(&err, r, "consumer");
		if (r != -ENOSPC) /* refused after attaching alone (the mutex reset) */
			check_refused_unchanged(f, n, "consumer");
		return;
	}
	r = mmapq_available(q, 0, &navail);
	if (start == m->tail) {
		FUZZ_CHECK(r == -EAGAIN, "consumer: available %d on an empty queue", r);
	} else {
		FUZZ_CHECK(r == 0 && navail == m->tail - start, "consumer: available %d, %" PRIu32, r,
		           navail);
		for (uint32_t i = 0; i < navail; i++) {
			r = mmapq_get(q, i, &rec);
			FUZZ_CHECK(r == 0, "consumer: get(%" PRIu32 ") %d", i, r);
			check_record(m, f, start + i, &rec, NULL, "consumer get");
		}
		FUZZ_CHECK(mmapq_get(q, navail, &rec) == -ENOENT, "consumer: get past the end");
		/* the same records in one call, from every start */
		for (uint32_t i = 0; i < navail; i++) {
			struct mmapq_record many[16 + 1];
			r = mmapq_get_many(q, i, navail + 1, many);
			FUZZ_CHECK(r == (int)(navail - i), "consumer: get_many(%" PRIu32 ") %d", i, r);
			for (uint32_t j = 0; j < navail - i; j++)
				check_record(m, f, start + i + j, &many[j], NULL, "consumer get_many");
		}
		FUZZ_CHECK(mmapq_get_many(q, navail, 1, &rec) == -ENOENT, "consumer: get_many past the end");
		/* int: the values alone, from every start */
		for (uint32_t i = 0; m->fmt == MMAPQ_FORMAT_INT && i < navail; i++) {
			int64_t vals[16 + 1];
			r = mmapq_copy_many(q, i, navail + 1, vals, sizeof(vals[0]));
			FUZZ_CHECK(r == (int)(navail - i), "consumer: copy_many(%" PRIu32 ") %d", i, r);
			for (uint32_t j = 0; j < navail - i; j++)
				FUZZ_CHECK(!memcmp(&vals[j], f + slot_off(m, start + i + j) + m->poff, 8),
				           "consumer: copy_many value %" PRIu32, j);
		}
		FUZZ_CHECK(mmapq_release(q, navail + 1) == -EINVAL, "consumer: release too many");
		r = mmapq_release(q, navail);
		FUZZ_CHECK(r == 0, "consumer: release %d", r);
	}
	mmapq_close(q);
	FUZZ_CHECK(!g_map, "consumer: mapping not released");

	n2 = fuzz_read_file(g_path, g_after, sizeof(g_after));
	FUZZ_CHECK(n2 == n, "consumer: file size changed");
	/* its own entry (registered, or found) is its to change */
	nok = shared_ranges(m, ok);
	model_file(g_after, n2, &m2);
	FUZZ_CHECK(m2.ver == 3 && m2.slots_ok && m2.def >= 0 && m2.tail == m->tail &&
	           rd64(g_after, ENTRY(m2.def) + E_POS) == m->tail,
	           "consumer: left a file the model refuses (%s), or \"default\" not at the tail %" PRIu64,
	           m2.why ? m2.why : "ok", m->tail);
	ok[nok++] = (struct range){ENTRY(m2.def), ENTRY(m2.def) + E_COND};
	nok += id_range(f, ok + nok);
	check_only_changed(f, g_after, n, ok, nok, "consumer");
	check_id_given(g_after, "consumer");
	FUZZ_CHECK((int32_t)rd32(g_after, ENTRY(m2.def) + E_PID) == getpid(), "consumer: pid not ours");
	FUZZ_CHECK(rd64(g_after, ENTRY(m2.def) + E_ATTACHES) == attaches + 1, "consumer: attaches");
	/* floor: the lowest cursor of those registered */
	FUZZ_CHECK(m2.head == m2.head_eff, "consumer: floor %" PRIu64 " below the lowest cursor %" PRIu64,
	           m2.head, m2.head_eff);
}

static void check_producer(const uint8_t *f, size_t n, const struct model *m, const struct geom *g)
{
	struct mmapq_error err;
	struct range ok[MMAPQ_CONSUMERS_MAX + 16];
	struct model m2;
	struct mmapq *q;
	uint8_t payload[2 * 64 + 1];
	uint32_t nfree = 0, k = 0, lens[3];
	size_t n2, nok = 0;
	int r, want = attach_expect(m, g);

	fuzz_write_file(g_path, f, n);
	q = open_role(MMAPQ_ROLE_PRODUCER, g->cap, g->rs, g->fmt, &err, &r);
	check_sched("producer");
	FUZZ_CHECK(r == want, "producer: mmapq_open %d (%s), model expects %d (%s)", r,
	           r ? err.msg : "accepted", want, m->why ? m->why : "valid");
	if (r < 0) {
		check_err_msg(&err, r, "producer");
		check_refused_unchanged(f, n, "producer");
		return;
	}
	FUZZ_CHECK(mmapq_next_seq(q) == m->tail, "producer: next seq");
	r = mmapq_reserve(q, 0, &nfree);
	if (m->tail - m->head_eff == m->cap) {
		FUZZ_CHECK(r == -EAGAIN, "producer: reserve %d on a full queue", r);
	} else {
		FUZZ_CHECK(r == 0 && nfree == m->head_eff + m->cap - m->tail, "producer: reserve %d, %" PRIu32,
		           r, nfree);
		/* too long for the format: refused, nothing written */
		FUZZ_CHECK(mmapq_put(q, payload, m->fmt == MMAPQ_FORMAT_INT ? 7 : m->rs + 1) == -EMSGSIZE,
		           "producer: oversized put accepted");
		FUZZ_CHECK(mmapq_put_many(q, payload, m->fmt == MMAPQ_FORMAT_INT ? 7 : m->rs + 1, 1) ==
		           -EMSGSIZE, "producer: oversized put_many accepted");
		FUZZ_CHECK(mmapq_put_many(q, payload, 8, 0) == 0, "producer: put_many of nothing");
		/* records 0 and 1 in one call (as many as fit), 2 alone */
		lens[0] = lens[1] = m->fmt == MMAPQ_FORMAT_INT ? 8 : 5;
		memset(payload, 'a', lens[0]);
		memset(payload + lens[0], 'b', lens[0]);
		r = mmapq_put_many(q, payload, lens[0], 2);
		FUZZ_CHECK(r == (int)(nfree < 2 ? nfree : 2), "producer: put_many %d, room %" PRIu32, r, nfree);
		k = (uint32_t)r;
		if (k < nfree) {
			uint32_t len = m->fmt == MMAPQ_FORMAT_INT ? 8 : (2 * 5) % (m->rs + 1);
			memset(payload, 'c', sizeof(payload));
			lens[k] = len;
			r = mmapq_put(q, payload, len);
			FUZZ_CHECK(r == 0, "producer: put %d", r);
			k++;
		}
		if (k == nfree)
			FUZZ_CHECK(mmapq_put_many(q, payload, lens[0], 1) == -ENOBUFS &&
			           mmapq_put(q, payload, lens[0]) == -ENOBUFS, "producer: put beyond the room");
		r = mmapq_publish(q);
		FUZZ_CHECK(r == (int)k, "producer: publish %d, expected %" PRIu32, r, k);
	}
	mmapq_close(q);
	FUZZ_CHECK(!g_map, "producer: mapping not released");

	n2 = fuzz_read_file(g_path, g_after, sizeof(g_after));
	FUZZ_CHECK(n2 == n, "producer: file size changed");
	nok = shared_ranges(m, ok);
	side_ranges(SIDE_P, ok + nok);
	nok += 3;
	for (uint32_t i = 0; i < k; i++) {
		size_t o = slot_off(m, m->tail + i);
		ok[nok++] = (struct range){o, o + m->poff + lens[i]};
	}
	nok += id_range(f, ok + nok);
	check_only_changed(f, g_after, n, ok, nok, "producer");
	check_id_given(g_after, "producer");
	model_file(g_after, n2, &m2);
	FUZZ_CHECK(m2.slots_ok && m2.head == m->head_eff && m2.tail == m->tail + k,
	           "producer: left a file the model refuses (%s) or positions %" PRIu64 "/%" PRIu64,
	           m2.why ? m2.why : "ok", m2.head, m2.tail);
	for (uint32_t i = 0; i < k; i++) {
		size_t o = slot_off(&m2, m->tail + i);
		FUZZ_CHECK(slot_len(&m2, g_after, m->tail + i) == lens[i], "producer: slot length");
		for (uint32_t j = 0; j < lens[i]; j++)
			FUZZ_CHECK(g_after[o + m2.poff + j] == 'a' + i, "producer: payload");
	}
	FUZZ_CHECK((int32_t)rd32(g_after, SIDE_P + 8) == getpid(), "producer: pid not ours");
	FUZZ_CHECK(rd64(g_after, SIDE_P + 48) == rd64(f, SIDE_P + 48) + 1, "producer: attaches");
}

/* ---- templates: valid files made by the library ---------------------------- */

static const uint32_t rs_tab[4] = {8, 12, 17, 64};

struct tmpl {
	uint8_t *bytes;
	size_t len;
};

#define TMPL_KEYS (256 * 17 * 17)
#define TMPL_CACHE_MAX 4096
static struct tmpl *g_tmpl[TMPL_KEYS];
static unsigned g_tmpl_cached;
static struct tmpl g_tmpl_scratch;

static void tmpl_fail(const char *what, int r, const struct mmapq_error *err)
{
	fprintf(stderr, "fuzz: building a template: %s: %s (%s)\n", what, mmapq_strerror(r),
	        err ? err->msg : "");
	exit(2);
}

/* A queue file made by the library: `base` records put and consumed, then
 * `put` more put and `rel` of them consumed.  Fields that depend on the
 * time, the pid or the mutex's history are made constant, so that an input
 * means the same file in every run. */
static void build_template(uint32_t fmt, uint32_t cap, uint32_t rs, uint32_t base, uint32_t put,
                           uint32_t rel, struct tmpl *t)
{
	char path[600];
	struct mmapq_params pp = {
		.path = path, .role = MMAPQ_ROLE_PRODUCER, .capacity = cap, .record_size = rs,
		.format = fmt, .sync = MMAPQ_SYNC_NEVER, .file_mode = 0600,
	};
	struct mmapq_params cp = pp;
	struct mmapq_error err;
	struct mmapq *p, *c;
	uint64_t seq = 0;
	pthread_mutexattr_t a;
	int r;

	snprintf(path, sizeof(path), "%s/template", g_dir);
	unlink(path);
	cp.role = MMAPQ_ROLE_CONSUMER;
	r = mmapq_open(&pp, &p, &err);
	if (r < 0)
		tmpl_fail("producer", r, &err);
	r = mmapq_open(&cp, &c, &err);
	if (r < 0)
		tmpl_fail("consumer", r, &err);
	for (int phase = 0; phase < 2; phase++) {
		uint32_t todo = phase == 0 ? base : put;

		while (todo > 0) {
			uint32_t nfree, navail, batch;

			r = mmapq_reserve(p, 0, &nfree);
			if (r < 0)
				tmpl_fail("reserve", r, NULL);
			batch = todo < nfree ? todo : nfree;
			for (uint32_t i = 0; i < batch; i++, seq++) {
				uint8_t buf[64];
				uint32_t len = fmt == MMAPQ_FORMAT_INT ? 8 : (uint32_t)(seq % (rs + 1));
				uint64_t v = seq * UINT64_C(0x9E3779B97F4A7C15);

				for (uint32_t j = 0; j < sizeof(buf); j++)
					buf[j] = (uint8_t)('a' + (seq + j) % 26);
				if (fmt == MMAPQ_FORMAT_INT)
					memcpy(buf, &v, 8);
				r = mmapq_put(p, buf, len);
				if (r < 0)
					tmpl_fail("put", r, NULL);
			}
			r = mmapq_publish(p);
			if (r < 0)
				tmpl_fail("publish", r, NULL);
			todo -= batch;
			if (phase == 0 || todo == 0) {
				uint32_t want = phase == 0 ? batch : rel;
				if (!want)
					continue;
				r = mmapq_available(c, 0, &navail);
				if (r < 0 || navail < want)
					tmpl_fail("available", r, NULL);
				r = mmapq_release(c, want);
				if (r < 0)
					tmpl_fail("release", r, NULL);
			}
		}
	}
	mmapq_close(c);
	mmapq_close(p);

	t->bytes = malloc(4096 + 16 * (16 + 64));
	if (!t->bytes)
		exit(2);
	t->len = fuzz_read_file(path, t->bytes, 4096 + 16 * (16 + 64));
	unlink(path);
	/* constant identity and history: the producer's side and the
	 * consumer's entry in the table (version 3; offset 256 is floor and
	 * its reserved bytes, which version 2's consumer side was) */
	wr64(t->bytes, OFF(created_usec), UINT64_C(1700000000000000));
	wr32(t->bytes, SIDE_P + 8, 4242u);
	wr64(t->bytes, SIDE_P + 16, UINT64_C(1700000000000000));
	wr32(t->bytes, ENTRY(0) + E_PID, 4243u);
	wr64(t->bytes, ENTRY(0) + offsetof(struct mmapq_consumer, start_usec), UINT64_C(1700000000000000));
	wr64(t->bytes, ENTRY(0) + offsetof(struct mmapq_consumer, registered_usec),
	     UINT64_C(1700000000000000));
	for (size_t i = 0; i < MMAPQ_ID_SIZE; i++)
		t->bytes[OFF(id) + i] = (uint8_t)(0xa0 + i);
	memset(t->bytes + OFF(lock), 0, 64);
	if (pthread_mutexattr_init(&a) || pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) ||
	    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) ||
	    pthread_mutex_init((pthread_mutex_t *)(void *)(t->bytes + OFF(lock)), &a))
		exit(2);
	pthread_mutexattr_destroy(&a);
}

static const struct tmpl *get_template(uint8_t b0, uint8_t b1, uint8_t b2, struct geom *g)
{
	uint32_t fmt = (b0 & 1) ? MMAPQ_FORMAT_LINE : MMAPQ_FORMAT_INT;
	uint32_t cap = 2u << ((b0 >> 1) & 3);
	uint32_t rs = rs_tab[(b0 >> 3) & 3];
	uint32_t bases[8] = {0, 1, cap - 1, cap, cap + 1, 2 * cap + 3, 1000, 4099};
	uint32_t base = bases[(b0 >> 5) & 7];
	uint32_t put = b1 % (cap + 1);
	uint32_t rel = b2 % (put + 1);
	size_t key = ((size_t)b0 * 17 + put) * 17 + rel;

	g->cap = cap;
	g->rs = rs;
	g->fmt = fmt;
	/* byte 1 >= 0xf0: the programs ask for another geometry (-EPROTO), or
	 * (bit 2) the file is as version 1 wrote it (apply_ops) */
	if (b1 >= 0xf0 && !(b1 & 4)) {
		switch (b1 & 3) {
		case 0: g->cap = cap * 2; break;
		case 1: g->cap = cap / 2 >= 2 ? cap / 2 : cap * 4; break;
		case 2: g->rs = rs + 1; break;
		default: g->fmt = fmt == MMAPQ_FORMAT_INT ? MMAPQ_FORMAT_LINE : MMAPQ_FORMAT_INT; break;
		}
	}
	if (g_tmpl[key])
		return g_tmpl[key];
	if (g_tmpl_cached < TMPL_CACHE_MAX) {
		struct tmpl *t = calloc(1, sizeof(*t));
		if (!t)
			exit(2);
		build_template(fmt, cap, rs, base, put, rel, t);
		g_tmpl[key] = t;
		g_tmpl_cached++;
		return t;
	}
	free(g_tmpl_scratch.bytes);
	build_template(fmt, cap, rs, base, put, rel, &g_tmpl_scratch);
	return &g_tmpl_scratch;
}

#define WORK_MAX (4096 + 16 * (16 + 64) + 32768)
static uint8_t g_work[WORK_MAX];

/* w[0..len) as format version 1 wrote the same queue: the version, and
 * for format int the slot size, the file size and every slot (seq, len 8,
 * reserved 0, value).  Returns the new length. */
static size_t to_version1(uint8_t *w, size_t len)
{
	uint32_t fmt = rd32(w, OFF(format)), cap = rd32(w, OFF(capacity)), rs = rd32(w, OFF(record_size));
	uint32_t ss = 16 + ((rs + 7) / 8) * 8;

	wr32(w, OFF(version), 1);
	if (fmt != MMAPQ_FORMAT_INT)
		return len;
	wr32(w, OFF(slot_size), ss);
	wr64(w, OFF(file_size), 4096 + (uint64_t)cap * ss);
	/* from the last slot down: a version-1 slot is never before its
	 * version-2 one */
	for (uint32_t i = cap; i-- > 0;) {
		uint64_t seq = rd64(w, 4096 + (size_t)i * 16), v = rd64(w, 4096 + (size_t)i * 16 + 8);
		size_t o = 4096 + (size_t)i * ss;
		memset(w + o, 0, ss);
		wr64(w, o, seq);
		wr32(w, o + 8, 8);
		wr64(w, o + 16, v);
	}
	return 4096 + (size_t)cap * ss;
}

static size_t apply_ops(const struct tmpl *t, bool v1, const uint8_t *d, size_t n)
{
	size_t len = t->len, i = 0;

	memcpy(g_work, t->bytes, t->len);
	if (v1)
		len = to_version1(g_work, len);
	while (i + 3 <= n) {
		uint8_t op = d[i];
		unsigned kind = op & 3, width = 1u << ((op >> 2) & 3);
		uint16_t off16 = (uint16_t)(d[i + 1] | d[i + 2] << 8);
		uint64_t v = 0, cur = 0;
		size_t off;

		i += 3;
		if (kind == 3) {
			long nl = (long)len + (int16_t)off16;
			if (nl < 0)
				nl = 0;
			if (nl > WORK_MAX)
				nl = WORK_MAX;
			if ((size_t)nl > len)
				memset(g_work + len, 0, (size_t)nl - len);
			len = (size_t)nl;
			continue;
		}
		for (unsigned k = 0; k < width && i < n; k++, i++)
			v |= (uint64_t)d[i] << (8 * k);
		if (len < width)
			continue;
		off = off16 % (len - width + 1);
		for (unsigned k = 0; k < width; k++)
			cur |= (uint64_t)g_work[off + k] << (8 * k);
		cur = kind == 0 ? v : kind == 1 ? cur ^ v : cur + v;
		for (unsigned k = 0; k < width; k++)
			g_work[off + k] = (uint8_t)(cur >> (8 * k));
	}
	return len;
}

/* ---- entry points ---------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct stat st;

	(void)argc;
	(void)argv;
	g_dir = fuzz_tmpdir();
	snprintf(g_path, sizeof(g_path), "%s/queue", g_dir);
	fuzz_write_file(g_path, "", 0);
	if (stat(g_path, &st) < 0)
		exit(2);
	g_watch_dev = st.st_dev;
	g_watch_ino = st.st_ino;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *f;
	struct model m;
	struct geom g;
	size_t n;
	int fd;

	if (size == 0)
		return 0;
	if (data[0] == 'M') {
		f = data;
		n = size;
		if (n > sizeof(g_after) - 1)
			return -1; /* larger than any file this target is meant for */
		model_file(f, n, &m);
		if (m.hdr_ok) {
			g = (struct geom){m.cap, m.rs, m.fmt};
		} else {
			g = (struct geom){2, 8, MMAPQ_FORMAT_INT};
		}
	} else {
		const struct tmpl *t = get_template(data[0], size > 1 ? data[1] : 0,
		                                    size > 2 ? data[2] : 0, &g);
		n = apply_ops(t, size > 1 && data[1] >= 0xf0 && (data[1] & 4),
		              size > 3 ? data + 3 : data, size > 3 ? size - 3 : 0);
		f = g_work;
		model_file(f, n, &m);
	}

	fuzz_write_file(g_path, f, n);
	check_observer(f, n, &m);
	check_consumer(f, n, &m, &g);
	check_producer(f, n, &m, &g);

	{
		char what[PATH_MAX];

		fd = fuzz_fd_open_under(g_dir, what, sizeof(what));
		FUZZ_CHECK(fd < 0, "a descriptor leaked: %d, open on %s", fd, what);
	}
	return 0;
}
