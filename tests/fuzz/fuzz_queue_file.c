/* SPDX-License-Identifier: MIT */
/*
 * fuzz_queue_file -- libFuzzer target: the input is a queue file.
 *
 * Two ways to read an input (the first byte decides):
 *
 *   raw       The first byte is 'M' (as in the magic "MMAPQ\0\r\n"): the
 *             whole input is the file.  The committed seeds of this kind are
 *             real queue files (version 4 made by the library, versions 1 to
 *             3 as an older mmapq wrote them).
 *   mutation  Any other first byte: a valid queue file is built (and cached)
 *             from a template description, then edited by a list of
 *             operations, so the fuzzer starts past the magic and the
 *             geometry checks:
 *               byte 0  bits 0-1: format (int, line, binary, binary);
 *                       bits 2-3: ring 64, 128, 256, 1024 bytes; bits 4-5:
 *                       max_record 8, 13, a half or all of what the ring
 *                       allows; bits 6-7: records put and consumed first (so
 *                       that the positions have wrapped): 0, 3, 13, 1000
 *               byte 1  records then put: byte % 24, as many as fit; if it
 *                       is 0xf0 or more and its bit 2 is set, the file is
 *                       one of version 1 + (bits 0-1 % 3) (a ring of slots,
 *                       capacity ring / 16, record_size 8, 12, 17 or 64 by
 *                       the bits of max_record), made as an older mmapq made
 *                       it; if 0xf0 or more and bit 2 is clear, the consumer
 *                       and the producer ask for another geometry (bits 0-1:
 *                       the ring x2, the ring / 2, max_record + 1, another
 *                       format)
 *               byte 2  bits 0-4: of those, consumed by "default" (% (put +
 *                       1)); bit 5: a second consumer "b" registered (it
 *                       consumes the first records, and half of the others);
 *                       bit 6: the clean mark cleared, as a crash leaves it
 *               then operations, each [op] [offset: 2 bytes LE] [value]:
 *                 op bits 0-1  0 set, 1 xor, 2 add (little-endian), 3 resize
 *                 op bits 2-3  width 1, 2, 4, 8 bytes (the value's length)
 *                 offset       modulo the file size (for resize: the signed
 *                              16-bit change in file size; no value follows)
 *
 * Each file is then opened exactly as the programs open it:
 *   observer   (mmapqctl status / dump): mmapq_open, mmapq_status,
 *              mmapq_producers, mmapq_consumers, and mmapq_peek over
 *              [head, tail) and just outside it;
 *   consumer   (mmapq-consumer) on a fresh copy: attach, read every record
 *              from its cursor (mmapq_get, mmapq_get_many, and for int records
 *              mmapq_copy_many), release what it could read, close;
 *   producer   (mmapq-producer) on a fresh copy: attach, reserve, put records
 *              of three lengths (mmapq_put_many, mmapq_put, mmapq_claim and a
 *              shorter mmapq_commit, mmapq_put_records of all three in one
 *              call), publish, close;
 *   migrate    (mmapqctl recreate) a file of versions 1 to 3: both roles with
 *              migrate, every record read out, nothing written.
 *
 * Invariants (any failure aborts, and libFuzzer keeps the input), held
 * against a model of the documented format (mmapq_format.h) written here,
 * independently of the library (its own CRC-32C, bit by bit):
 *   - no crash, no out-of-bounds access (ASan, UBSan), no hang (-timeout);
 *   - each open accepts the file exactly when the model does, with the
 *     documented code (-EBADMSG a bad file, -EPROTO a geometry mismatch or a
 *     version-1 to 3 file without migrate, -EAGAIN an observer that finds
 *     floor's seqlock held, -ENOSPC a full consumer table), and a refusal
 *     comes with a one-line message naming the file;
 *   - a refused file is left byte for byte as it was;
 *   - status reports what the header holds; every record handed out is the
 *     right one: mmapq_get's data points into the library's mapping of the
 *     file (seen through --wrap=mmap) where the model finds the frame of
 *     that sequence number, with the file's bytes; a record the model calls
 *     damaged (its length, its crc, the padding before it, one on the way
 *     for a consumer or an observer) gives -EBADMSG;
 *   - a role that attaches alone does what the format says a process alone
 *     does (floor made whole, the walk when the file is not clean or a pair
 *     may be half stored, the salvage's run as the model picks it, the
 *     cursors onto it, synced = cursor, floor raised), and what it reports
 *     (mmapq_status().salvaged and .salvage) is what the model predicts;
 *   - the consumer and the producer leave a file whose header holds what the
 *     model predicts (positions, cursors, the clean mark, the salvage
 *     record) and whose ring is the ring before with (producer) the frames
 *     it put, padding included, each with the crc the model computes;
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

/* ---- bytes --------------------------------------------------------------------- */

#define OFF(f) offsetof(struct mmapq_header, f)
#define P_TAIL OFF(producer.tail)
#define P_TAILB OFF(producer.tail_byte)
#define P_CLAIM OFF(producer.claim_byte)
#define PENTRY(i) (OFF(producers) + (size_t)(i) * sizeof(struct mmapq_producer))
#define PE(i, f) (PENTRY(i) + offsetof(struct mmapq_producer, f))
#define F_SEQ OFF(floor.seq)
#define F_BYTE OFF(floor.byte)
#define F_GEN OFF(floor.gen)
#define S_CLEAN OFF(state.clean)
#define ENTRY_SIZE sizeof(struct mmapq_consumer)
#define ENTRY(i) (OFF(consumers) + (size_t)(i) * ENTRY_SIZE)
#define E(i, f) (ENTRY(i) + offsetof(struct mmapq_consumer, f))
#define V3(f) offsetof(struct mmapq_header_v3, f)
#define V2(f) offsetof(struct mmapq_header_v2, f)
#define HDR MMAPQ_HEADER_SIZE
#define HDR3 MMAPQ_HEADER_SIZE_V3 /* versions 1 to 3 */

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

static void wr32(uint8_t *b, size_t off, uint32_t v)
{
	memcpy(b + off, &v, sizeof(v));
}

static void wr64(uint8_t *b, size_t off, uint64_t v)
{
	memcpy(b + off, &v, sizeof(v));
}

/* CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), bit by bit: the
 * model's own, nothing shared with the library's crc32c.c. */
static uint32_t crc_bits(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

/* A frame's crc: of its byte position (8 bytes), len (4) and the payload,
 * in this machine's byte order (mmapq_format.h, "Checksums"). */
static uint32_t m_crc(uint64_t byte, uint32_t len, const uint8_t *payload, uint32_t n)
{
	uint8_t h[12];

	memcpy(h, &byte, 8);
	memcpy(h + 8, &len, 4);
	return crc_bits(crc_bits(0, h, 12), payload, n);
}

static uint64_t fsize(uint32_t len)
{
	return 8 + (((uint64_t)len + 7) & ~UINT64_C(7));
}

static bool pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* ---- the model of the format ------------------------------------------------ */

struct pair {
	uint64_t seq, byte;
};

struct model {
	const char *why;      /* why it is refused, NULL if it is not */
	bool hdr_ok;          /* identity, geometry and the static fields valid */
	uint32_t ver, fmt, maxc;
	/* version 4 */
	uint32_t maxp;        /* the producer table's size */
	uint64_t size;
	uint32_t max;
	bool pos_ok;          /* positions and the consumer table (with cursors) valid */
	/* versions 1 to 3 */
	uint32_t cap, rs, ss, poff;
	bool ints;
	uint64_t head, tail;
	bool slots_ok;        /* every slot of [head, tail) holds its record (migrate) */
	bool table_ok;        /* version 3's table as a migrating process checks it */
};

static bool all_zero(const uint8_t *f, size_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (f[off + i])
			return false;
	return true;
}

/* A name as a table may hold it: 1..63 of the allowed characters, NUL-padded
 * to 64 bytes. */
static bool name_ok(const uint8_t *f, size_t off)
{
	size_t len = strnlen((const char *)f + off, 64);

	if (len == 0 || len == 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!strchr(MMAPQ_CONSUMER_NAME_CHARS, f[off + i]))
			return false;
	return all_zero(f, off + len, 64 - len);
}

/* A version-3 entry's name as a migrating process takes it: 1..63 of the
 * allowed characters, then a NUL, and the 64th byte NUL (the others after
 * the name are not looked at). */
static bool name_ok_v3(const uint8_t *f, size_t off)
{
	size_t len = strnlen((const char *)f + off, 64);

	if (len == 0 || len == 64 || f[off + 63])
		return false;
	for (size_t i = 0; i < len; i++)
		if (!strchr(MMAPQ_CONSUMER_NAME_CHARS, f[off + i]))
			return false;
	return true;
}

static uint32_t limit_of(uint64_t size)
{
	uint64_t most = size / 4 - 8;

	return most > MMAPQ_MAX_RECORD_MAX ? MMAPQ_MAX_RECORD_MAX : (uint32_t)most;
}

/* lo <= p <= hi, both members, and p's byte a multiple of 8 */
static bool between(struct pair lo, struct pair p, struct pair hi)
{
	return lo.seq <= p.seq && p.seq <= hi.seq && lo.byte <= p.byte && p.byte <= hi.byte &&
	       p.byte % 8 == 0;
}

static struct pair floor_of(const uint8_t *f)
{
	return (struct pair){rd64(f, F_SEQ), rd64(f, F_BYTE)};
}

static struct pair tail_of(const uint8_t *f)
{
	return (struct pair){rd64(f, P_TAIL), rd64(f, P_TAILB)};
}

/* Version 4's positions and consumer table, as a crash may leave them. */
static const char *v4_positions(const uint8_t *f, const struct model *m)
{
	struct pair fl = floor_of(f), t = tail_of(f);

	if (fl.seq > t.seq || fl.byte > t.byte || t.byte - fl.byte > m->size ||
	    t.seq - fl.seq > (t.byte - fl.byte) / 8 || fl.byte % 8 || t.byte % 8)
		return "positions";
	for (uint32_t i = 0; i < m->maxc; i++) {
		uint32_t state = rd32(f, E(i, state));
		struct pair pos = {rd64(f, E(i, position)), rd64(f, E(i, position_byte))};
		struct pair syn = {rd64(f, E(i, synced)), rd64(f, E(i, synced_byte))};

		if (state > 1)
			return "consumer state";
		if (!state)
			continue;
		if (!name_ok(f, E(i, name)))
			return "consumer name";
		for (uint32_t k = 0; k < i; k++)
			if (rd32(f, E(k, state)) == 1 && !memcmp(f + E(k, name), f + E(i, name), 64))
				return "consumer name twice";
		if (!between(fl, syn, pos) || !between(syn, pos, t))
			return "consumer cursor";
	}
	return NULL;
}

/* The reserved bytes of a version-4 header (mmapq_format.h), the entries
 * past max_consumers and max_producers whole. */
static bool v4_reserved_ok(const uint8_t *f, uint32_t maxc, uint32_t maxp)
{
	if (!all_zero(f, OFF(reserved1), 4) || !all_zero(f, OFF(producer.reserved), 104) ||
	    !all_zero(f, OFF(floor.reserved), 104) || !all_zero(f, OFF(state.reserved0), 4) ||
	    !all_zero(f, OFF(not_full_reserved), 56) ||
	    !all_zero(f, OFF(reserved), sizeof(((struct mmapq_header *)0)->reserved)) ||
	    !all_zero(f, OFF(reserved2), sizeof(((struct mmapq_header *)0)->reserved2)))
		return false;
	for (uint32_t i = 0; i < MMAPQ_PRODUCERS_MAX; i++)
		if (i < maxp ? !all_zero(f, PE(i, rsv_reserved0), 4) :
		               !all_zero(f, PENTRY(i), sizeof(struct mmapq_producer)))
			return false;
	/* an entry in use has no reserved bytes; past max_consumers the entry
	 * and its output report are reserved whole */
	for (uint32_t i = maxc; i < MMAPQ_CONSUMERS_MAX; i++)
		if (!all_zero(f, ENTRY(i), ENTRY_SIZE) ||
		    !all_zero(f, OFF(outputs) + i * sizeof(struct mmapq_output), sizeof(struct mmapq_output)))
			return false;
	return true;
}

static bool v3_reserved_ok(const uint8_t *f, uint32_t ver)
{
	if (ver < 3)
		return all_zero(f, V2(id.reserved1), 8) && all_zero(f, V2(producer.reserved0), 4) &&
		       all_zero(f, V2(producer.reserved), 72) && all_zero(f, V2(consumer.reserved0), 4) &&
		       all_zero(f, V2(consumer.reserved), 72);
	return all_zero(f, V3(id.reserved1), 8) && all_zero(f, V3(producer.reserved0), 4) &&
	       all_zero(f, V3(producer.reserved), 72) && all_zero(f, V3(floor_reserved), 120) &&
	       all_zero(f, V3(reserved2), 64) && all_zero(f, V3(reserved), 496);
}

/* The slot of record seq (versions 1 to 3) holds it: 0, and its payload. */
static bool slot_ok(const struct model *m, const uint8_t *f, uint64_t seq, uint32_t *len)
{
	size_t o = HDR3 + (size_t)(seq & (m->cap - 1)) * m->ss;

	if (rd64(f, o) != seq)
		return false;
	*len = m->ints ? 8 : rd32(f, o + 8);
	return *len <= m->rs && (m->fmt != MMAPQ_FORMAT_INT || *len == 8);
}

static void model_legacy(const uint8_t *f, size_t n, struct model *m)
{
	uint64_t want;

	m->fmt = rd32(f, V3(id.format));
	m->cap = rd32(f, V3(id.capacity));
	m->rs = rd32(f, V3(id.record_size));
	m->ss = rd32(f, V3(id.slot_size));
	m->why = "format";
	if (m->fmt != MMAPQ_FORMAT_INT && m->fmt != MMAPQ_FORMAT_LINE)
		return;
	m->why = "capacity";
	if (m->cap < 2 || m->cap > (1u << 24) || !pow2(m->cap))
		return;
	m->why = "record size";
	if (m->rs < 8 || m->rs > (1u << 20))
		return;
	m->ints = m->ver >= 2 && m->fmt == MMAPQ_FORMAT_INT;
	m->poff = m->ints ? 8 : 16;
	m->why = "slot size";
	if (m->ss != (m->ints ? 16 : 16 + ((m->rs + 7) & ~7u)))
		return;
	want = HDR3 + (uint64_t)m->cap * m->ss;
	m->why = "file size";
	if (rd64(f, V3(id.file_size)) != want || n != want)
		return;
	m->why = "reserved";
	if (!v3_reserved_ok(f, m->ver))
		return;
	m->maxc = m->ver == 3 ? rd32(f, V3(id.max_consumers)) : 1;
	m->why = "max_consumers";
	if (m->maxc < 1 || m->maxc > MMAPQ_CONSUMERS_MAX)
		return;
	m->hdr_ok = true;
	m->why = "positions";
	m->head = rd64(f, V3(floor));
	m->tail = rd64(f, V3(producer.position));
	if (m->head > m->tail || m->tail - m->head > m->cap)
		return;
	m->pos_ok = true;
	m->why = "slot";
	for (uint64_t s = m->head; s < m->tail; s++) {
		uint32_t len;
		if (!slot_ok(m, f, s, &len))
			return;
	}
	m->slots_ok = true;
	m->why = "consumer table";
	for (uint32_t i = 0; m->ver == 3 && i < m->maxc; i++) {
		size_t e = V3(consumers) + (size_t)i * sizeof(struct mmapq_consumer_v3);
		uint32_t state = rd32(f, e + offsetof(struct mmapq_consumer_v3, state));
		uint64_t pos = rd64(f, e);

		if (state == 0)
			continue;
		if (state != 1 || !name_ok_v3(f, e + offsetof(struct mmapq_consumer_v3, name)) ||
		    pos < m->head || pos > m->tail)
			return;
	}
	m->table_ok = true;
	m->why = NULL;
}

static void model_file(const uint8_t *f, size_t n, struct model *m)
{
	memset(m, 0, sizeof(*m));
	m->why = "too small";
	if (n < HDR3)
		return;
	m->why = "magic";
	if (memcmp(f, MMAPQ_MAGIC, 8))
		return;
	m->why = "byte order";
	if (rd32(f, OFF(byte_order)) != MMAPQ_BYTE_ORDER)
		return;
	m->ver = rd32(f, OFF(version));
	m->why = "version";
	if (m->ver < 1 || m->ver > 4)
		return;
	m->why = "header size";
	if (rd32(f, OFF(header_size)) != (m->ver == 4 ? HDR : HDR3))
		return;
	if (m->ver < 4) {
		model_legacy(f, n, m);
		return;
	}
	m->fmt = rd32(f, OFF(format));
	m->size = rd64(f, OFF(size));
	m->max = rd32(f, OFF(max_record));
	m->why = "format";
	if (m->fmt < MMAPQ_FORMAT_INT || m->fmt > MMAPQ_FORMAT_BINARY)
		return;
	m->why = "size";
	if (!pow2(m->size) || m->size < 64 || m->size > (UINT64_C(1) << 36))
		return;
	m->why = "max_record";
	if (m->max < 8 || m->max > limit_of(m->size))
		return;
	m->why = "file size";
	if (rd64(f, OFF(file_size)) != HDR + m->size || n != HDR + m->size)
		return;
	m->maxc = rd32(f, OFF(max_consumers));
	m->why = "max_consumers";
	if (m->maxc < 1 || m->maxc > MMAPQ_CONSUMERS_MAX)
		return;
	m->maxp = rd32(f, OFF(max_producers));
	m->why = "max_producers";
	if (m->maxp < 1 || m->maxp > MMAPQ_PRODUCERS_MAX)
		return;
	m->why = "reserved";
	if (!v4_reserved_ok(f, m->maxc, m->maxp))
		return;
	m->why = "clean";
	if (rd32(f, S_CLEAN) > 1)
		return;
	m->why = "pid";
	for (uint32_t i = 0; i < m->maxp; i++)
		if ((int32_t)rd32(f, PE(i, pid)) < 0)
			return;
	for (uint32_t i = 0; i < m->maxc; i++)
		if ((int32_t)rd32(f, E(i, pid)) < 0)
			return;
	/* the producer table: a state of 0 or 1, a registered entry's name one
	 * a producer may take (not starting with '-'), once */
	m->why = "producer table";
	for (uint32_t i = 0; i < m->maxp; i++) {
		uint32_t state = rd32(f, PE(i, state));

		if (state > 1)
			return;
		if (state == 0)
			continue;
		if (!name_ok(f, PE(i, name)) || f[PE(i, name)] == '-')
			return;
		for (uint32_t k = 0; k < i; k++)
			if (rd32(f, PE(k, state)) == 1 && !memcmp(f + PE(k, name), f + PE(i, name), 64))
				return;
	}
	m->hdr_ok = true;
	m->why = v4_positions(f, m);
	m->pos_ok = !m->why;
}

/*
 * The frame of the record at byte position *b (or after the padding and
 * fill frames there: a fill's len is MMAPQ_FRAME_FILL_BIT | n, n bytes
 * after its header, a multiple of 8, inside one lap), in file f of model
 * m, below end: its length checked, and with check its crc and those of
 * the padding and fills.  true: *len, *at (its payload's offset in
 * the file) and *b (past it) set.
 */
static bool m_frame(const struct model *m, const uint8_t *f, uint64_t *b, uint64_t end, bool check,
                    uint32_t *len, size_t *at)
{
	uint64_t off = *b % m->size, pos = *b;
	uint32_t l = rd32(f, HDR + off);

	while (l & MMAPQ_FRAME_FILL_BIT) {
		uint64_t n = l == MMAPQ_FRAME_PAD ? m->size - off : 8 + (l & ~MMAPQ_FRAME_FILL_BIT);

		if ((l == MMAPQ_FRAME_PAD && off == 0) || n % 8 || off + n > m->size ||
		    (check && rd32(f, HDR + off + 4) != m_crc(pos, l, NULL, 0)))
			return false;
		pos += n;
		if (pos >= end)
			return false;
		off = pos % m->size;
		l = rd32(f, HDR + off);
	}
	if (l > m->max || (m->fmt == MMAPQ_FORMAT_INT && l != 8))
		return false;
	if (off + fsize(l) > m->size || pos + fsize(l) > end)
		return false;
	if (check && rd32(f, HDR + off + 4) != m_crc(pos, l, f + HDR + off + 8, l))
		return false;
	*len = l;
	*at = HDR + off + 8;
	*b = pos + fsize(l);
	return true;
}

/* From p, frame by frame with their checksums, until the first that is not
 * intact or tail (its seq or its byte, whichever comes first; a ring past p
 * if both lie behind it): the run's end. */
static struct pair m_walk(const struct model *m, const uint8_t *f, struct pair p, struct pair t)
{
	uint64_t stop_seq = t.seq >= p.seq ? t.seq : UINT64_MAX;
	uint64_t stop_byte = t.byte >= p.byte ? t.byte : p.byte + m->size;

	if (stop_byte > p.byte + m->size)
		stop_byte = p.byte + m->size;
	while (p.seq < stop_seq && p.byte < stop_byte) {
		uint64_t b = p.byte;
		uint32_t l;
		size_t at;

		if (!m_frame(m, f, &b, stop_byte, true, &l, &at))
			break;
		p = (struct pair){p.seq + 1, b};
	}
	return p;
}

/* From p to record seq by the frames' lengths alone: its position. */
static bool m_find(const struct model *m, const uint8_t *f, struct pair p, uint64_t seq, uint64_t end,
                   uint64_t *byte)
{
	while (p.seq < seq) {
		uint32_t l;
		size_t at;

		if (!m_frame(m, f, &p.byte, end, false, &l, &at))
			return false;
		p.seq++;
	}
	*byte = p.byte;
	return true;
}

/* Whether the padding and fill frames from b fill [b, end) exactly, their
 * crcs checked. */
static bool m_fills_to(const struct model *m, const uint8_t *f, uint64_t b, uint64_t end)
{
	while (b < end) {
		uint64_t off = b % m->size;
		uint32_t l = rd32(f, HDR + off);
		uint64_t n = l == MMAPQ_FRAME_PAD ? (off ? m->size - off : 0) : 8 + (l & ~MMAPQ_FRAME_FILL_BIT);

		if (!(l & MMAPQ_FRAME_FILL_BIT) || n == 0 || n % 8 || off + n > m->size || b + n > end ||
		    rd32(f, HDR + off + 4) != m_crc(b, l, NULL, 0))
			return false;
		b += n;
	}
	return b == end;
}

/* A pair as the frames say it: at the tail, the tail's byte (or padding
 * and fills up to it); else the frame there is intact. */
static bool m_pair_whole(const struct model *m, const uint8_t *f, struct pair p, struct pair t)
{
	uint64_t b = p.byte;
	uint32_t l;
	size_t at;

	if (p.seq == t.seq)
		return p.byte == t.byte || (p.byte < t.byte && m_fills_to(m, f, p.byte, t.byte));
	return m_frame(m, f, &b, t.byte, true, &l, &at);
}

/* What a process that attaches alone does to a version-4 file that passed
 * validation (mmapq_format.h, "Clean close, and salvage", and the crash
 * repair), applied to f: *dropped the records it reports dropped. */
struct salvage_m {
	bool walked, dropped_any, new_id;
	uint64_t dropped;
	uint64_t below_from, below_to, above_from, above_to, bytes;
};

static void m_floor_whole(const struct model *m, uint8_t *f)
{
	uint64_t gen = rd64(f, F_GEN);
	struct pair low = tail_of(f);
	bool any = false;

	if (!(gen & 1))
		return;
	for (uint32_t i = 0; i < m->maxc; i++) {
		struct pair s = {rd64(f, E(i, synced)), rd64(f, E(i, synced_byte))};

		if (rd32(f, E(i, state)) != 1)
			continue;
		if (!any || s.seq < low.seq)
			low = s;
		any = true;
	}
	wr64(f, F_SEQ, low.seq);
	wr64(f, F_BYTE, low.byte);
	wr64(f, F_GEN, gen + 1);
}

/* Consumer entry i's cursor as a run may start from it: its byte where the
 * frames' lengths from its synced cursor put its record, if that walk
 * holds (a checksum binds a frame's byte position, not its record's seq,
 * so only the count from a whole pair numbers the frames). */
static struct pair m_cursor(const struct model *m, const uint8_t *f, uint32_t i, uint64_t end)
{
	struct pair pos = {rd64(f, E(i, position)), rd64(f, E(i, position_byte))};
	struct pair syn = {rd64(f, E(i, synced)), rd64(f, E(i, synced_byte))};
	uint64_t b;

	if (syn.seq <= pos.seq && m_find(m, f, syn, pos.seq, end, &b))
		pos.byte = b;
	return pos;
}

static void m_alone(const struct model *m, uint8_t *f, struct salvage_m *s)
{
	struct pair fl, t = tail_of(f);
	uint32_t word = rd32(f, OFF(lock));
	bool suspect = word != 0;

	memset(s, 0, sizeof(*s));
	m_floor_whole(m, f);
	fl = floor_of(f);
	for (uint32_t i = 0; !suspect && i < m->maxc; i++) {
		struct pair pos = {rd64(f, E(i, position)), rd64(f, E(i, position_byte))};
		struct pair syn = {rd64(f, E(i, synced)), rd64(f, E(i, synced_byte))};

		if (rd32(f, E(i, state)) == 1)
			suspect = !m_pair_whole(m, f, pos, t) || !m_pair_whole(m, f, syn, t) ||
			          m_cursor(m, f, i, t.byte).byte != pos.byte;
	}
	if (rd32(f, S_CLEAN) != 1 || suspect) {
		/* the runs from floor and from every registered cursor that may
		 * start one; the best holds records, reaches furthest, starts
		 * lowest */
		struct pair bs = fl, be = m_walk(m, f, fl, t), wanted = {UINT64_MAX, 0}, low;
		bool any = false;
		uint64_t dropped = 0;

		s->walked = true;
		for (uint32_t i = 0; i < m->maxc; i++) {
			struct pair at = {rd64(f, E(i, position)), rd64(f, E(i, position_byte))}, e;
			bool holds, best_holds;

			if (rd32(f, E(i, state)) != 1)
				continue;
			if (at.seq < wanted.seq)
				wanted = at;
			at = m_cursor(m, f, i, t.byte);
			if (at.byte % 8 || at.seq < fl.seq || at.byte < fl.byte || at.byte - fl.byte > m->size)
				continue;
			/* a cursor numbered on the run found: its frames are that
			 * run's, or (another byte) they disagree with it, and a
			 * walk from there would number them otherwise */
			if (be.seq > bs.seq && at.seq >= bs.seq && at.seq <= be.seq)
				continue;
			e = m_walk(m, f, at, t);
			holds = e.seq > at.seq;
			best_holds = be.seq > bs.seq;
			if (holds != best_holds ? holds :
			    e.seq > be.seq || (e.seq == be.seq && at.seq < bs.seq))
				bs = at, be = e;
		}
		if (wanted.seq == UINT64_MAX || wanted.seq <= fl.seq)
			wanted = fl;
		if (bs.seq > wanted.seq)
			dropped += bs.seq - wanted.seq;
		if (t.seq > be.seq)
			dropped += t.seq - be.seq;
		/* the cursors onto the run, floor the lowest of them */
		low = be;
		for (uint32_t i = 0; i < m->maxc; i++) {
			uint64_t seq = rd64(f, E(i, position)), byte = be.byte;

			if (rd32(f, E(i, state)) != 1)
				continue;
			seq = seq < bs.seq ? bs.seq : seq > be.seq ? be.seq : seq;
			if (seq < be.seq)
				(void)m_find(m, f, bs, seq, be.byte, &byte);
			wr64(f, E(i, position), seq);
			wr64(f, E(i, synced), seq);
			wr64(f, E(i, position_byte), byte);
			wr64(f, E(i, synced_byte), byte);
			if (rd64(f, E(i, attach_position)) > seq)
				wr64(f, E(i, attach_position), seq);
			if (!any || seq < low.seq)
				low = (struct pair){seq, byte};
			any = true;
		}
		wr64(f, P_TAILB, be.byte);
		wr64(f, P_TAIL, be.seq);
		if (!any)
			low = bs;
		wr64(f, F_SEQ, low.seq);
		wr64(f, F_BYTE, low.byte);
		wr64(f, F_GEN, rd64(f, F_GEN) + 2);
		s->new_id = t.seq > be.seq;
		s->dropped = dropped;
		if (dropped) {
			s->dropped_any = true;
			s->below_from = wanted.seq;
			s->below_to = bs.seq > wanted.seq ? bs.seq : wanted.seq;
			s->above_from = be.seq;
			s->above_to = t.seq > be.seq ? t.seq : be.seq;
			s->bytes = (bs.seq > wanted.seq ? bs.byte - wanted.byte : 0) +
			           (t.byte > be.byte ? t.byte - be.byte : 0);
			wr64(f, OFF(state.salvages), rd64(f, OFF(state.salvages)) + 1);
			wr64(f, OFF(state.below_from), s->below_from);
			wr64(f, OFF(state.below_to), s->below_to);
			wr64(f, OFF(state.above_from), s->above_from);
			wr64(f, OFF(state.above_to), s->above_to);
			wr64(f, OFF(state.dropped_bytes), s->bytes);
		}
	}
	wr32(f, S_CLEAN, 0);
	/* the re-initialisation: every cursor taken as synced (a free entry's
	 * too: they mean nothing), floor even and raised to the lowest of the
	 * registered ones */
	{
		struct pair low = {UINT64_MAX, 0};

		for (uint32_t i = 0; i < m->maxc; i++) {
			wr64(f, E(i, synced), rd64(f, E(i, position)));
			wr64(f, E(i, synced_byte), rd64(f, E(i, position_byte)));
			if (rd32(f, E(i, state)) != 1)
				continue;
			if (rd64(f, E(i, position)) < low.seq)
				low = (struct pair){rd64(f, E(i, position)), rd64(f, E(i, position_byte))};
		}
		if (rd64(f, F_GEN) & 1)
			wr64(f, F_GEN, rd64(f, F_GEN) + 1);
		/* the reservations of producers that are gone dropped; their
		 * wait words fresh */
		for (uint32_t i = 0; i < m->maxp; i++) {
			wr32(f, PE(i, rsv_state), 0);
			wr32(f, PE(i, turn.waiting), 0);
			wr32(f, PE(i, room.waiting), 0);
		}
		wr32(f, OFF(not_full.waiting), 0);
		wr64(f, P_CLAIM, rd64(f, P_TAILB));
		if (low.seq != UINT64_MAX && low.seq > rd64(f, F_SEQ)) {
			wr64(f, F_SEQ, low.seq);
			wr64(f, F_BYTE, low.byte);
			wr64(f, F_GEN, rd64(f, F_GEN) + 2);
		}
	}
}

/* The room mmapq_reserve promises with floor fl and tail t: the free
 * bytes, less what padding at the ring's end may take. */
static uint64_t m_room(const struct model *m, struct pair fl, struct pair t, uint32_t len)
{
	uint64_t free_b = fl.byte + m->size - t.byte, end = m->size - t.byte % m->size;
	uint64_t w = fsize(m->max), room = free_b <= end ? free_b : free_b - (end < w ? end : w);

	return room > fsize(len) ? room : fsize(len);
}

/* Bytes a record of len takes at t (padding first if it does not fit before
 * the ring's end), and where its frame goes. */
static uint64_t m_need(const struct model *m, uint64_t t, uint32_t len, uint64_t *at)
{
	uint64_t end = m->size - t % m->size;

	*at = fsize(len) <= end ? t : t + end;
	return fsize(len) <= end ? fsize(len) : end + fsize(len);
}

/* ---- the files and the checks ------------------------------------------------ */

static char g_path[512];
static const char *g_dir;

#define FILE_MAX (HDR + 1024 * 2 + 32768)
static uint8_t g_after[1 << 17], g_pred[1 << 17];

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

static void check_refused_unchanged(const uint8_t *f, size_t n, const char *role)
{
	size_t n2 = fuzz_read_file(g_path, g_after, sizeof(g_after)), at = 0;

	while (n2 == n && at < n && f[at] == g_after[at])
		at++;
	FUZZ_CHECK(n2 == n && at == n, "%s: a refused file was changed (size %zu -> %zu, first byte"
	           " changed at offset %zu)", role, n, n2, at);
}

static void check_sched(const char *role)
{
	struct sched_param sp;

	FUZZ_CHECK(sched_getscheduler(0) == SCHED_OTHER, "%s: scheduling policy changed", role);
	FUZZ_CHECK(sched_getparam(0, &sp) == 0 && sp.sched_priority == 0,
	           "%s: scheduling priority changed", role);
}

/* Geometry to ask for: the template's in mutation mode, the header's (when
 * valid) in raw mode. */
struct geom {
	uint64_t size;
	uint32_t max, fmt;
};

static struct mmapq *open_role(enum mmapq_role role, const struct geom *g, bool migrate,
                               struct mmapq_error *err, int *ret)
{
	struct mmapq_params p = {
		.path = g_path, .role = role, .sync = MMAPQ_SYNC_NEVER, .file_mode = 0600,
		.migrate = migrate,
	};
	struct mmapq *q = NULL;

	if (g) {
		p.size = g->size;
		p.max_record = g->max;
		p.format = g->fmt;
	}
	memset(err, 0x55, sizeof(*err)); /* the message must be set, not left over */
	*ret = mmapq_open(&p, &q, err);
	FUZZ_CHECK(*ret <= 0, "mmapq_open returned %d", *ret);
	FUZZ_CHECK((*ret == 0) == (q != NULL), "mmapq_open: code %d but queue %p", *ret, (void *)q);
	return q;
}

/* A record handed out for seq: its length and bytes those of the frame at
 * payload offset at of file f; in place (mmapq_get: in the mapping) or in
 * the caller's buffer copy (mmapq_peek). */
static void check_record(const uint8_t *f, uint64_t seq, uint32_t len, size_t at,
                         const struct mmapq_record *rec, const uint8_t *copy, const char *role)
{
	FUZZ_CHECK(rec->seq == seq, "%s: record seq %" PRIu64 " for %" PRIu64, role, rec->seq, seq);
	FUZZ_CHECK(rec->len == len, "%s: record %" PRIu64 " of %" PRIu32 " bytes, the frame says %"
	           PRIu32, role, seq, rec->len, len);
	if (copy) {
		FUZZ_CHECK(rec->data == copy, "%s: record %" PRIu64 " not in the caller's buffer", role, seq);
	} else {
		FUZZ_CHECK(g_map, "%s: no mapping of the file was seen", role);
		FUZZ_CHECK((const uint8_t *)rec->data == g_map + at, "%s: record %" PRIu64 " at map+%td,"
		           " the frame's payload at map+%zu", role, seq,
		           (const uint8_t *)rec->data - g_map, at);
		FUZZ_CHECK(at + len <= g_map_len, "%s: record beyond the mapping", role);
	}
	FUZZ_CHECK(!memcmp(rec->data, f + at, len), "%s: record %" PRIu64 "'s bytes differ", role, seq);
}

/* The producer status shows: the entry "default" if registered, else the
 * first registered one; -1 if none is. */
static int m_producer_shown(const struct model *m, const uint8_t *f)
{
	int pick = -1;

	for (uint32_t i = 0; i < m->maxp; i++) {
		if (rd32(f, PE(i, state)) != 1)
			continue;
		if (!strcmp((const char *)f + PE(i, name), MMAPQ_PRODUCER_DEFAULT))
			return (int)i;
		if (pick < 0)
			pick = (int)i;
	}
	return pick;
}

static void check_side(const struct model *m, const uint8_t *f, const struct mmapq_side_status *s)
{
	int i = m_producer_shown(m, f);

	if (i < 0) {
		FUZZ_CHECK(!s->pid && !s->start_usec && !s->dropped && !s->bad_input && !s->recoveries &&
		           !s->attaches && !s->attached, "status: a producer's side with none registered");
		return;
	}
	FUZZ_CHECK(s->pid == (int32_t)rd32(f, PE(i, pid)) && s->start_usec == rd64(f, PE(i, start_usec)) &&
	           s->dropped == rd64(f, PE(i, dropped)) && s->bad_input == rd64(f, PE(i, bad_input)) &&
	           s->recoveries == rd64(f, PE(i, recoveries)) && s->attaches == rd64(f, PE(i, attaches)) &&
	           !s->attached, "status: the producer's side (entry %d)", i);
}

/* ---- the observer ----------------------------------------------------------------- */

static void observe_v4(struct mmapq *q, const uint8_t *f, const struct model *m)
{
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_producer_status ps[MMAPQ_PRODUCERS_MAX];
	struct pair fl = floor_of(f), t = tail_of(f);
	struct mmapq_status st;
	struct mmapq_record rec;
	uint8_t *buf;
	uint64_t b;
	int r, k = 0;
	bool on = true; /* the walk by lengths from floor still finds frames */

	r = mmapq_status(q, &st);
	FUZZ_CHECK(r == 0, "observer: mmapq_status %d", r);
	FUZZ_CHECK(st.version == 4 && st.format == m->fmt && st.size == m->size &&
	           st.max_record == m->max && st.capacity == 0 && st.slot_size == 0 &&
	           st.file_size == HDR + m->size && st.head == fl.seq && st.tail == t.seq &&
	           st.used_bytes == t.byte - fl.byte && st.max_consumers == m->maxc &&
	           st.clean == (rd32(f, S_CLEAN) == 1) && st.created_usec == rd64(f, OFF(created_usec)) &&
	           !memcmp(st.id, f + OFF(id), MMAPQ_ID_SIZE) && st.salvaged == 0 &&
	           st.salvage.count == rd64(f, OFF(state.salvages)) &&
	           st.salvage.below_from == rd64(f, OFF(state.below_from)) &&
	           st.salvage.above_to == rd64(f, OFF(state.above_to)) &&
	           st.salvage.dropped_bytes == rd64(f, OFF(state.dropped_bytes)),
	           "observer: status differs from the header");
	check_side(m, f, &st.producer);
	{
		uint32_t np = 0;

		for (uint32_t i = 0; i < m->maxp; i++)
			np += rd32(f, PE(i, state)) == 1;
		FUZZ_CHECK(st.max_producers == m->maxp && st.producers == np,
		           "observer: %" PRIu32 " of %" PRIu32 " producers, the model %" PRIu32 " of %" PRIu32,
		           st.producers, st.max_producers, np, m->maxp);
	}
	/* every registered producer listed, in table order, as its entry says
	 * (nobody holds a role byte here: none attached) */
	r = mmapq_producers(q, ps, MMAPQ_PRODUCERS_MAX);
	for (uint32_t i = 0; i < m->maxp; i++) {
		if (rd32(f, PE(i, state)) != 1)
			continue;
		FUZZ_CHECK(k < r && ps[k].index == i && !strcmp(ps[k].name, (const char *)f + PE(i, name)) &&
		           !ps[k].attached && ps[k].pid == 0 &&
		           ps[k].last_pid == (int32_t)rd32(f, PE(i, pid)) &&
		           ps[k].published == rd64(f, PE(i, published)) &&
		           ps[k].dropped == rd64(f, PE(i, dropped)) &&
		           ps[k].bad_input == rd64(f, PE(i, bad_input)) &&
		           ps[k].recoveries == rd64(f, PE(i, recoveries)) &&
		           ps[k].attaches == rd64(f, PE(i, attaches)) &&
		           ps[k].registered_usec == rd64(f, PE(i, registered_usec)),
		           "observer: producer entry %" PRIu32, i);
		k++;
	}
	FUZZ_CHECK(r == k, "observer: %d producers listed, %d registered", r, k);
	k = 0;
	r = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX);
	for (uint32_t i = 0; i < m->maxc; i++) {
		if (rd32(f, E(i, state)) != 1)
			continue;
		FUZZ_CHECK(k < r && cs[k].index == i && !strcmp(cs[k].name, (const char *)f + E(i, name)) &&
		           cs[k].position == rd64(f, E(i, position)) &&
		           cs[k].lag == t.seq - rd64(f, E(i, position)), "observer: consumer entry %" PRIu32,
		           i);
		k++;
	}
	FUZZ_CHECK(r == k, "observer: %d consumers listed, %d registered", r, k);

	/* as mmapqctl dump does: copies into a buffer of max_record bytes, one
	 * byte less refused; each record as the model finds it: the walk by the
	 * frames' lengths from floor, the record's own crc and its padding's */
	buf = malloc(m->max);
	FUZZ_CHECK(buf && mmapq_max_record(q) == m->max, "observer: max_record");
	if (t.seq > fl.seq)
		FUZZ_CHECK(mmapq_peek(q, fl.seq, buf, m->max - 1, &rec) == -EMSGSIZE,
		           "observer: peek into a buffer one byte short");
	b = fl.byte;
	for (uint64_t s = fl.seq; s < t.seq; s++) {
		uint64_t nb = b, cb = b;
		uint32_t len = 0, l2;
		size_t at = 0, a2;
		bool ok;

		/* the walk checks every frame on the way: once one fails, so
		 * does every peek past it */
		on = on && m_frame(m, f, &nb, t.byte, false, &len, &at);
		ok = on && m_frame(m, f, &cb, t.byte, true, &l2, &a2);
		on = ok;
		r = mmapq_peek(q, s, buf, m->max, &rec);
		FUZZ_CHECK(r == (ok ? 0 : -EBADMSG), "observer: peek(%" PRIu64 ") %d, the model says %s",
		           s, r, ok ? "intact" : "damaged");
		if (r == 0)
			check_record(f, s, len, at, &rec, buf, "observer peek");
		b = nb;
	}
	FUZZ_CHECK(mmapq_peek(q, t.seq, buf, m->max, &rec) == -ENOENT, "observer: peek(tail)");
	FUZZ_CHECK(t.seq == UINT64_MAX || mmapq_peek(q, UINT64_MAX, buf, m->max, &rec) == -ENOENT,
	           "observer: peek(UINT64_MAX)");
	if (fl.seq > 0)
		FUZZ_CHECK(mmapq_peek(q, fl.seq - 1, buf, m->max, &rec) == -ENOENT,
		           "observer: peek(floor - 1)");
	free(buf);
}

static void observe_legacy(struct mmapq *q, const uint8_t *f, const struct model *m)
{
	struct mmapq_status st;
	struct mmapq_record rec;
	uint8_t *buf;
	int r = mmapq_status(q, &st);

	FUZZ_CHECK(r == 0, "observer: mmapq_status %d", r);
	FUZZ_CHECK(st.version == m->ver && st.format == m->fmt && st.capacity == m->cap &&
	           st.slot_size == m->ss && st.size == (uint64_t)m->cap * m->ss && st.max_record == m->rs &&
	           st.head == m->head && st.tail == m->tail &&
	           st.used_bytes == (m->tail - m->head) * m->ss && !st.clean &&
	           (m->ver == 3 ? !memcmp(st.id, f + V3(queue_id), MMAPQ_ID_SIZE) :
	                          all_zero(st.id, 0, MMAPQ_ID_SIZE)),
	           "observer: status differs from the version-%" PRIu32 " header", m->ver);
	buf = malloc(m->rs);
	FUZZ_CHECK(buf, "malloc");
	for (uint64_t s = m->head; s < m->tail; s++) {
		uint32_t len;
		bool ok = slot_ok(m, f, s, &len);

		r = mmapq_peek(q, s, buf, m->rs, &rec);
		FUZZ_CHECK(r == (ok ? 0 : -EBADMSG), "observer: peek(%" PRIu64 ") %d of a version-%" PRIu32
		           " slot the model calls %s", s, r, m->ver, ok ? "good" : "bad");
		if (r == 0)
			check_record(f, s, len, HDR3 + (size_t)(s & (m->cap - 1)) * m->ss + m->poff, &rec, buf,
			             "observer peek");
	}
	FUZZ_CHECK(mmapq_peek(q, m->tail, buf, m->rs, &rec) == -ENOENT, "observer: peek(tail)");
	free(buf);
}

static void check_observer(const uint8_t *f, size_t n, const struct model *m)
{
	struct mmapq_error err;
	struct mmapq *q;
	int r, want;

	want = !m->hdr_ok ? -EBADMSG :
	       m->ver < 4 ? (m->pos_ok ? 0 : -EBADMSG) :
	       rd64(f, F_GEN) & 1 ? -EAGAIN : m->pos_ok ? 0 : -EBADMSG;
	q = open_role(MMAPQ_ROLE_OBSERVER, NULL, false, &err, &r);
	FUZZ_CHECK(r == want, "observer: mmapq_open %d (%s), the model expects %d (%s)", r,
	           r ? err.msg : "accepted", want, m->why ? m->why : "valid");
	if (r < 0) {
		check_err_msg(&err, r, "observer");
		return;
	}
	FUZZ_CHECK(g_map && g_map_len == n, "observer: mapping of %zu bytes, file has %zu", g_map_len, n);
	if (m->ver < 4)
		observe_legacy(q, f, m);
	else
		observe_v4(q, f, m);
	mmapq_close(q);
	FUZZ_CHECK(!g_map, "observer: mapping not released");
}

/* ---- the roles ------------------------------------------------------------------- */

/* What a producer or consumer's open returns, as the model says. */
static int attach_expect(const struct model *m, const struct geom *g)
{
	/* parameters no file can have are refused before the file is read */
	if (!pow2(g->size) || g->size < 64 || g->size > (UINT64_C(1) << 36) || g->max < 8 ||
	    g->max > limit_of(g->size) || g->fmt < MMAPQ_FORMAT_INT || g->fmt > MMAPQ_FORMAT_BINARY)
		return -EINVAL;
	if (!m->hdr_ok)
		return -EBADMSG;
	if (m->ver < 4)
		return -EPROTO; /* the daemons refuse it, naming mmapqctl recreate */
	if (g->size != m->size || g->max != m->max || g->fmt != m->fmt)
		return -EPROTO;
	/* every role here attaches alone: the reservations are dropped unread */
	return m->pos_ok ? 0 : -EBADMSG;
}

/* The file after a role's close against the prediction p (its fields the
 * model does not predict taken from the file first: take_unpredicted):
 * every byte of the header and of the ring; floor's seqlock generation
 * even (its count is the library's); the id new exactly when records past
 * the salvage's run were dropped. */
static void check_after(uint8_t *p, const uint8_t *a, const struct model *m,
                        const struct salvage_m *s, const uint8_t *before, const char *role)
{
	size_t at = 0, n = HDR + m->size;

	FUZZ_CHECK(rd64(a, F_GEN) % 2 == 0, "%s: floor's generation left odd", role);
	wr64(p, F_GEN, rd64(a, F_GEN));
	if (s->new_id)
		FUZZ_CHECK(memcmp(before + OFF(id), a + OFF(id), MMAPQ_ID_SIZE) &&
		           !all_zero(a, OFF(id), MMAPQ_ID_SIZE),
		           "%s: records past the run were dropped, the queue kept its id", role);
	else
		FUZZ_CHECK(!memcmp(before + OFF(id), a + OFF(id), MMAPQ_ID_SIZE), "%s: the id changed", role);
	if (s->dropped_any)
		FUZZ_CHECK(rd64(a, OFF(state.salvage_usec)) > 0, "%s: a salvage without its time", role);
	else
		FUZZ_CHECK(rd64(a, OFF(state.salvage_usec)) == rd64(before, OFF(state.salvage_usec)),
		           "%s: the salvage's time changed, nothing salvaged", role);
	while (at < n && p[at] == a[at])
		at++;
	FUZZ_CHECK(at == n, "%s: byte %zu of the file is 0x%02x, the model predicts 0x%02x (%s: the"
	           " word there %#" PRIx64 ", predicted %#" PRIx64 ", before %#" PRIx64 ")", role, at,
	           at < n ? a[at] : 0, at < n ? p[at] : 0, at < HDR ? "the header" : "the ring",
	           at < n ? rd64(a, at & ~(size_t)7) : 0, at < n ? rd64(p, at & ~(size_t)7) : 0,
	           at < n ? rd64(before, at & ~(size_t)7) : 0);
}

static void check_status_salvage(struct mmapq *q, const struct salvage_m *s, const char *role)
{
	struct mmapq_status st;

	FUZZ_CHECK(mmapq_status(q, &st) == 0, "%s: status", role);
	FUZZ_CHECK(st.salvaged == s->dropped, "%s: %" PRIu64 " records salvaged away, the model says %"
	           PRIu64, role, st.salvaged, s->dropped);
	if (s->dropped_any)
		FUZZ_CHECK(st.salvage.below_from == s->below_from && st.salvage.below_to == s->below_to &&
		           st.salvage.above_from == s->above_from && st.salvage.above_to == s->above_to &&
		           st.salvage.dropped_bytes == s->bytes,
		           "%s: the salvage says [%" PRIu64 ", %" PRIu64 ") [%" PRIu64 ", %" PRIu64 ") %"
		           PRIu64 " bytes, the model [%" PRIu64 ", %" PRIu64 ") [%" PRIu64 ", %" PRIu64
		           ") %" PRIu64, role, st.salvage.below_from, st.salvage.below_to,
		           st.salvage.above_from, st.salvage.above_to, st.salvage.dropped_bytes,
		           s->below_from, s->below_to, s->above_from, s->above_to, s->bytes);
}

/* A tail a consumer at head takes: not behind it, at most a ring ahead,
 * 8 bytes a record at least. */
static bool tail_sane(const struct model *m, struct pair head, struct pair t)
{
	return t.seq >= head.seq && t.byte >= head.byte && t.byte - head.byte <= m->size &&
	       t.seq - head.seq <= (t.byte - head.byte) / 8;
}

/* The consumer "default" in the predicted file p: its entry (registered
 * now if it was not: at floor, in the lowest free entry), or -1 if the
 * table is full. */
static int m_default(const struct model *m, uint8_t *p)
{
	int free_i = -1;

	for (uint32_t i = 0; i < m->maxc; i++) {
		if (rd32(p, E(i, state)) != 1) {
			if (free_i < 0)
				free_i = (int)i;
			continue;
		}
		if (!strcmp((const char *)p + E(i, name), MMAPQ_CONSUMER_DEFAULT))
			return (int)i;
	}
	if (free_i >= 0) {
		struct pair fl = floor_of(p);

		memset(p + ENTRY(free_i), 0, offsetof(struct mmapq_consumer, not_empty));
		memset(p + E(free_i, recoveries), 0, ENTRY_SIZE - offsetof(struct mmapq_consumer, recoveries));
		/* its output's report too: a removed consumer's may be there */
		memset(p + OFF(outputs) + (size_t)free_i * sizeof(struct mmapq_output), 0,
		       sizeof(struct mmapq_output));
		memcpy(p + E(free_i, name), MMAPQ_CONSUMER_DEFAULT, strlen(MMAPQ_CONSUMER_DEFAULT));
		wr64(p, E(free_i, position), fl.seq);
		wr64(p, E(free_i, position_byte), fl.byte);
		wr64(p, E(free_i, synced), fl.seq);
		wr64(p, E(free_i, synced_byte), fl.byte);
		wr32(p, E(free_i, state), 1);
	}
	return free_i;
}

/* The fields a role writes that the model does not predict (the mutex,
 * pids, times, recoveries, the wait words, a new id, a salvage's time; the
 * producer's attaches, checked apart): taken from the file into the
 * prediction. */
static void take_unpredicted(uint8_t *p, const uint8_t *a, const struct model *m)
{
	memcpy(p + OFF(lock), a + OFF(lock), 64);
	for (uint32_t i = 0; i < m->maxp; i++) {
		memcpy(p + PE(i, pid), a + PE(i, pid), 4);
		memcpy(p + PE(i, start_usec), a + PE(i, start_usec), 8);
		memcpy(p + PE(i, recoveries), a + PE(i, recoveries), 8);
		memcpy(p + PE(i, registered_usec), a + PE(i, registered_usec), 8);
		/* where its last reservation was (cleared: state none) */
		memcpy(p + PE(i, rsv_from), a + PE(i, rsv_from), 24);
		memcpy(p + PE(i, turn), a + PE(i, turn), 16);
	}
	memcpy(p + OFF(not_full), a + OFF(not_full), 8);
	memcpy(p + OFF(state.salvage_usec), a + OFF(state.salvage_usec), 8);
	memcpy(p + OFF(id), a + OFF(id), MMAPQ_ID_SIZE);
	for (uint32_t i = 0; i < m->maxc; i++) {
		memcpy(p + E(i, pid), a + E(i, pid), 4);
		memcpy(p + E(i, start_usec), a + E(i, start_usec), 24); /* with attach_position */
		memcpy(p + E(i, not_empty), a + E(i, not_empty), 16);   /* and recoveries */
	}
}

static void check_consumer(const uint8_t *f, size_t n, const struct model *m, const struct geom *g)
{
	struct salvage_m s = {0};
	struct mmapq_error err;
	struct mmapq_record rec;
	struct mmapq *q;
	uint32_t navail = 0, good = 0;
	struct pair head, t;
	int r, want = attach_expect(m, g), def = -1;

	if (want == 0) {
		memcpy(g_pred, f, n);
		m_alone(m, g_pred, &s);
		def = m_default(m, g_pred);
		if (def < 0)
			want = -ENOSPC;
	}
	fuzz_write_file(g_path, f, n);
	q = open_role(MMAPQ_ROLE_CONSUMER, g, false, &err, &r);
	check_sched("consumer");
	FUZZ_CHECK(r == want, "consumer: mmapq_open %d (%s), the model expects %d (%s)", r,
	           r ? err.msg : "accepted", want, m->why ? m->why : "valid");
	if (r < 0) {
		check_err_msg(&err, r, "consumer");
		if (r != -ENOSPC) /* refused after attaching alone (the file walked, the mutex reset) */
			check_refused_unchanged(f, n, err.msg);
		return;
	}
	check_status_salvage(q, &s, "consumer");
	/* what it reads: from its cursor, each record and every one on the way
	 * checked, up to the first the model calls damaged */
	head = (struct pair){rd64(g_pred, E(def, position)), rd64(g_pred, E(def, position_byte))};
	t = tail_of(g_pred);
	{
		uint64_t b = head.byte;
		uint32_t len;
		size_t at;

		while (head.seq + good < t.seq && m_frame(m, g_pred, &b, t.byte, true, &len, &at))
			good++;
	}
	r = mmapq_available(q, 0, &navail);
	if (head.seq == t.seq) {
		FUZZ_CHECK(r == -EAGAIN, "consumer: available %d on an empty queue", r);
	} else {
		uint64_t b = head.byte;

		FUZZ_CHECK(r == 0 && navail == t.seq - head.seq, "consumer: available %d, %" PRIu32
		           " records, want %" PRIu64, r, navail, t.seq - head.seq);
		for (uint32_t i = 0; i < navail; i++) {
			uint32_t len = 0;
			size_t at = 0;

			if (i < good)
				(void)m_frame(m, g_pred, &b, t.byte, true, &len, &at);
			r = mmapq_get(q, i, &rec);
			FUZZ_CHECK(r == (i < good ? 0 : -EBADMSG), "consumer: get(%" PRIu32 ") %d, the model"
			           " reads %" PRIu32 " intact records", i, r, good);
			if (r == 0)
				check_record(g_pred, head.seq + i, len, at, &rec, NULL, "consumer get");
		}
		FUZZ_CHECK(mmapq_get(q, navail, &rec) == -ENOENT, "consumer: get past the end");
		for (uint32_t i = 0; i < navail && i <= good; i++) {
			struct mmapq_record many[64];
			uint32_t k = navail - i < 64 ? navail - i : 64;

			r = mmapq_get_many(q, i, k, many);
			FUZZ_CHECK(i == good ? r == -EBADMSG : r == (int)(good - i < k ? good - i : k),
			           "consumer: get_many(%" PRIu32 ", %" PRIu32 ") %d, %" PRIu32 " intact", i,
			           k, r, good);
			for (int j = 0; j < r; j++)
				FUZZ_CHECK(many[j].seq == head.seq + i + (uint64_t)j,
				           "consumer: get_many's record %d", j);
		}
		for (uint32_t i = 0; m->fmt == MMAPQ_FORMAT_INT && i < navail && i <= good; i++) {
			int64_t vals[64];
			uint32_t k = navail - i < 64 ? navail - i : 64;

			r = mmapq_copy_many(q, i, k, vals, 8);
			FUZZ_CHECK(i == good ? r == -EBADMSG : r == (int)(good - i < k ? good - i : k),
			           "consumer: copy_many(%" PRIu32 ") %d, %" PRIu32 " intact", i, r, good);
		}
		FUZZ_CHECK(mmapq_release(q, navail + 1) == -EINVAL, "consumer: release too many");
		if (good) {
			uint64_t b2 = head.byte;

			(void)m_find(m, g_pred, head, head.seq + good, t.byte, &b2);
			/* released, then the tail looked at again from there */
			r = mmapq_release(q, good);
			FUZZ_CHECK(r == (tail_sane(m, (struct pair){head.seq + good, b2}, t) ? 0 : -EBADMSG),
			           "consumer: release(%" PRIu32 ") %d", good, r);
		}
	}
	mmapq_close(q);
	FUZZ_CHECK(!g_map, "consumer: mapping not released");

	/* what it leaves: its cursor (and synced) past what it released, floor
	 * the lowest cursor, the file clean */
	if (good) {
		uint64_t b = head.byte;

		(void)m_find(m, g_pred, head, head.seq + good, t.byte, &b);
		wr64(g_pred, E(def, position), head.seq + good);
		wr64(g_pred, E(def, position_byte), b);
		wr64(g_pred, E(def, synced), head.seq + good);
		wr64(g_pred, E(def, synced_byte), b);
		/* counted as released */
		wr64(g_pred, E(def, consumed), rd64(g_pred, E(def, consumed)) + good);
		{
			struct pair low = {UINT64_MAX, 0};

			for (uint32_t i = 0; i < m->maxc; i++)
				if (rd32(g_pred, E(i, state)) == 1 && rd64(g_pred, E(i, synced)) < low.seq)
					low = (struct pair){rd64(g_pred, E(i, synced)), rd64(g_pred, E(i, synced_byte))};
			if (low.seq > rd64(g_pred, F_SEQ)) {
				wr64(g_pred, F_SEQ, low.seq);
				wr64(g_pred, F_BYTE, low.byte);
			}
		}
	}
	wr32(g_pred, S_CLEAN, 1);
	FUZZ_CHECK(fuzz_read_file(g_path, g_after, sizeof(g_after)) == n, "consumer: file size changed");
	take_unpredicted(g_pred, g_after, m);
	wr64(g_pred, E(def, attaches), rd64(g_pred, E(def, attaches)) + 1);
	/* the attach clears a previous holder's report on its output */
	wr32(g_pred, OFF(outputs) + (size_t)def * sizeof(struct mmapq_output) +
	             offsetof(struct mmapq_output, state), 0);
	check_after(g_pred, g_after, m, &s, f, "consumer");
	FUZZ_CHECK((int32_t)rd32(g_after, E(def, pid)) == getpid(), "consumer: pid not ours");
	FUZZ_CHECK(!memcmp(g_pred + E(def, attaches), g_after + E(def, attaches), 8),
	           "consumer: attaches");
}

/* The producer "default" in the predicted file p: its entry (registered
 * now if it was not, in the lowest free entry), or -1 if the table is
 * full. */
static int m_default_producer(const struct model *m, uint8_t *p)
{
	int free_i = -1;

	for (uint32_t i = 0; i < m->maxp; i++) {
		if (rd32(p, PE(i, state)) != 1) {
			if (free_i < 0)
				free_i = (int)i;
			continue;
		}
		if (!strcmp((const char *)p + PE(i, name), MMAPQ_PRODUCER_DEFAULT))
			return (int)i;
	}
	if (free_i >= 0) {
		memset(p + PENTRY(free_i), 0, sizeof(struct mmapq_producer));
		memcpy(p + PE(free_i, name), MMAPQ_PRODUCER_DEFAULT, strlen(MMAPQ_PRODUCER_DEFAULT));
		wr32(p, PE(free_i, state), 1);
	}
	return free_i;
}

/* The model's put of a record of len bytes of payload at *t: its frame,
 * and the padding before it, predicted in g_pred and *t moved past it;
 * false (nothing predicted) if it does not fit above fl. */
static bool m_put(const struct model *m, struct pair *t, struct pair fl, const uint8_t *payload,
                  uint32_t len)
{
	uint64_t at, need = m_need(m, t->byte, len, &at);

	if (t->byte + need > fl.byte + m->size)
		return false;
	memcpy(g_pred + HDR + at % m->size + 8, payload, len);
	memset(g_pred + HDR + at % m->size + 8 + len, 0, fsize(len) - 8 - len);
	if (at != t->byte) {
		wr32(g_pred, HDR + t->byte % m->size, MMAPQ_FRAME_PAD);
		wr32(g_pred, HDR + t->byte % m->size + 4, m_crc(t->byte, MMAPQ_FRAME_PAD, NULL, 0));
	}
	wr32(g_pred, HDR + at % m->size, len);
	wr32(g_pred, HDR + at % m->size + 4, m_crc(at, len, payload, len));
	*t = (struct pair){t->seq + 1, t->byte + need};
	return true;
}

static void check_producer(const uint8_t *f, size_t n, const struct model *m, const struct geom *g)
{
	struct salvage_m s = {0};
	struct mmapq_error err;
	struct mmapq *q;
	uint8_t payload[2 * 248 + 16];
	struct pair fl, t;
	int r, want = attach_expect(m, g), def = -1;
	uint64_t attaches = 0;

	if (want == 0) {
		memcpy(g_pred, f, n);
		m_alone(m, g_pred, &s);
		def = m_default_producer(m, g_pred);
		if (def < 0)
			want = -ENOSPC;
		else
			attaches = rd64(g_pred, PE(def, attaches));
	}
	fuzz_write_file(g_path, f, n);
	q = open_role(MMAPQ_ROLE_PRODUCER, g, false, &err, &r);
	check_sched("producer");
	FUZZ_CHECK(r == want, "producer: mmapq_open %d (%s), the model expects %d (%s)", r,
	           r ? err.msg : "accepted", want, m->why ? m->why : "valid");
	if (r < 0) {
		check_err_msg(&err, r, "producer");
		if (r != -ENOSPC) /* refused after attaching alone (the file walked, the mutex reset) */
			check_refused_unchanged(f, n, err.msg);
		return;
	}
	check_status_salvage(q, &s, "producer");
	/* a wait for room left by a producer that died waiting is over */
	wr64(g_pred, PE(def, blocked_usec), 0);
	fl = floor_of(g_pred);
	t = tail_of(g_pred);
	FUZZ_CHECK(mmapq_next_seq(q) == t.seq, "producer: next seq %" PRIu64 ", the tail %" PRIu64,
	           mmapq_next_seq(q), t.seq);
	{
		uint32_t small = m->fmt == MMAPQ_FORMAT_INT ? 8 : 0, big = m->fmt == MMAPQ_FORMAT_INT ? 8 : m->max;
		uint32_t mid = m->fmt == MMAPQ_FORMAT_INT ? 8 : m->max / 2 + 3;
		uint64_t room = 0, at, need;
		bool fits = t.byte + m_need(m, t.byte, big, &at) <= fl.byte + m->size;
		void *buf = NULL;
		int k;

		r = mmapq_reserve(q, big, 0, &room);
		FUZZ_CHECK(fits ? r == 0 && room == m_room(m, fl, t, big) : r == -EAGAIN,
		           "producer: reserve(%" PRIu32 ") %d, room %" PRIu64 "; the model: %s, %" PRIu64,
		           big, r, room, fits ? "fits" : "full", fits ? m_room(m, fl, t, big) : 0);
		/* too long for the format: refused, nothing written */
		FUZZ_CHECK(mmapq_put(q, payload, m->fmt == MMAPQ_FORMAT_INT ? 7 : m->max + 1) == -EMSGSIZE,
		           "producer: oversized put accepted");
		/* two small ones in one call, the largest, then a claim of the
		 * largest committed at mid, each where the model says or
		 * -ENOBUFS */
		memset(payload, 'a', sizeof(payload));
		k = mmapq_put_many(q, payload, small, 2);
		{
			int want_k = 0;

			while (want_k < 2 && m_put(m, &t, fl, payload, small))
				want_k++;
			FUZZ_CHECK(k == (want_k ? want_k : -ENOBUFS), "producer: put_many %d, the model %d", k,
			           want_k);
		}
		for (int step = 0; step < 2; step++) {
			uint32_t claim = big, len = step ? mid : big;
			bool ok;

			memset(payload, 'b' + step, sizeof(payload));
			need = m_need(m, t.byte, claim, &at);
			ok = t.byte + need <= fl.byte + m->size;
			if (step == 0) {
				r = mmapq_put(q, payload, len);
			} else {
				r = mmapq_claim(q, claim, &buf);
				if (r == 0) {
					memcpy(buf, payload, len);
					r = mmapq_commit(q, len);
				}
			}
			FUZZ_CHECK(r == (ok ? 0 : -ENOBUFS), "producer: %s of %" PRIu32 ": %d, the model says"
			           " it %s", step ? "claim" : "put", claim, r, ok ? "fits" : "does not fit");
			if (!ok)
				continue;
			if (at != t.byte) {
				wr32(g_pred, HDR + t.byte % m->size, MMAPQ_FRAME_PAD);
				wr32(g_pred, HDR + t.byte % m->size + 4, m_crc(t.byte, MMAPQ_FRAME_PAD, NULL, 0));
			}
			memcpy(g_pred + HDR + at % m->size + 8, payload, len);
			memset(g_pred + HDR + at % m->size + 8 + len, 0, fsize(len) - 8 - len);
			wr32(g_pred, HDR + at % m->size, len);
			wr32(g_pred, HDR + at % m->size + 4, m_crc(at, len, payload, len));
			t = (struct pair){t.seq + 1, at + fsize(len)};
		}
		/* records of three lengths in one call, as many as fit, in
		 * order, each where the model says, or -ENOBUFS */
		{
			uint32_t lens[3] = {mid, small, big};
			struct mmapq_iovec rec[3];
			int want_k = 0;

			memset(payload, 'd', sizeof(payload));
			for (int i = 0; i < 3; i++)
				rec[i] = (struct mmapq_iovec){payload, lens[i]};
			k = mmapq_put_records(q, rec, 3);
			while (want_k < 3 && m_put(m, &t, fl, payload, lens[want_k]))
				want_k++;
			FUZZ_CHECK(k == (want_k ? want_k : -ENOBUFS), "producer: put_records %d, the model %d",
			           k, want_k);
		}
		r = mmapq_publish(q);
		FUZZ_CHECK(r == (int)(t.seq - rd64(g_pred, P_TAIL)), "producer: publish %d", r);
		/* counted in its entry */
		wr64(g_pred, PE(def, published), rd64(g_pred, PE(def, published)) + t.seq - rd64(g_pred, P_TAIL));
		wr64(g_pred, P_TAIL, t.seq);
		wr64(g_pred, P_TAILB, t.byte);
	}
	mmapq_close(q);
	FUZZ_CHECK(!g_map, "producer: mapping not released");
	wr32(g_pred, S_CLEAN, 1);
	FUZZ_CHECK(fuzz_read_file(g_path, g_after, sizeof(g_after)) == n, "producer: file size changed");
	/* its reservation given back at close: claim_byte at tail_byte */
	wr64(g_pred, P_CLAIM, rd64(g_pred, P_TAILB));
	take_unpredicted(g_pred, g_after, m);
	wr64(g_pred, PE(def, attaches), attaches + 1);
	check_after(g_pred, g_after, m, &s, f, "producer");
	FUZZ_CHECK((int32_t)rd32(g_after, PE(def, pid)) == getpid(), "producer: pid not ours");
}

/* A file of versions 1 to 3 read out as `mmapqctl recreate` does: both
 * roles with migrate, every record, nothing written. */
static void check_migrate(const uint8_t *f, size_t n, const struct model *m)
{
	struct mmapq_error err;
	struct mmapq *c, *p;
	uint32_t navail = 0;
	int r, want = !m->hdr_ok ? -EBADMSG : m->pos_ok && m->slots_ok && m->table_ok ? 0 : -EBADMSG;

	fuzz_write_file(g_path, f, n);
	c = open_role(MMAPQ_ROLE_CONSUMER, NULL, true, &err, &r);
	FUZZ_CHECK(r == want, "migrating consumer: mmapq_open %d (%s), the model expects %d (%s)", r,
	           r ? err.msg : "accepted", want, m->why ? m->why : "valid");
	if (r < 0) {
		check_err_msg(&err, r, "migrating consumer");
		check_refused_unchanged(f, n, "migrating consumer");
		return;
	}
	r = mmapq_available(c, 0, &navail);
	FUZZ_CHECK(r == 0 && navail == m->tail - m->head, "migrating consumer: available %d, %" PRIu32,
	           r, navail);
	for (uint32_t i = 0; i < navail; i++) {
		struct mmapq_record rec;
		uint64_t s = m->head + i;
		uint32_t len = 0;

		(void)slot_ok(m, f, s, &len);
		FUZZ_CHECK(mmapq_get(c, i, &rec) == 0, "migrating consumer: get(%" PRIu32 ")", i);
		check_record(f, s, len, HDR3 + (size_t)(s & (m->cap - 1)) * m->ss + m->poff, &rec, NULL,
		             "migrating consumer get");
	}
	FUZZ_CHECK(mmapq_release(c, navail) == -EROFS, "migrating consumer: release");
	/* the other role beside it, as recreate holds both (its mapping is
	 * the one watched from now on) */
	p = open_role(MMAPQ_ROLE_PRODUCER, NULL, true, &err, &r);
	FUZZ_CHECK(r == 0, "migrating producer beside the consumer: %d (%s)", r, err.msg);
	FUZZ_CHECK(mmapq_put(p, "12345678", 8) == -EROFS, "migrating producer: put");
	mmapq_close(p);
	mmapq_close(c);
	check_refused_unchanged(f, n, "migrate (nothing written)");
}

/* ---- templates: valid files ---------------------------------------------------- */

struct tmpl {
	uint8_t *bytes;
	size_t len;
};

#define TMPL_KEYS (256 * 24 * 32 * 2)
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

static uint32_t tmpl_len(uint32_t fmt, uint32_t max, uint64_t seq)
{
	return fmt == MMAPQ_FORMAT_INT ? 8 : (uint32_t)((seq * 7 + seq / 5) % (max + 1));
}

/* put n records (as many as fit), the consumers releasing as asked:
 * "default" rel_d of them, "b" rel_b */
static void tmpl_put(struct mmapq *p, struct mmapq *c, struct mmapq *b, uint32_t fmt, uint32_t max,
                     uint32_t n, uint32_t rel_d, uint32_t rel_b)
{
	uint32_t done = 0, navail;
	int r;

	while (done < n) {
		uint64_t seq = mmapq_next_seq(p);
		uint32_t len = tmpl_len(fmt, max, seq);
		uint8_t buf[256];

		for (uint32_t j = 0; j < sizeof(buf); j++)
			buf[j] = (uint8_t)('a' + (seq + j) % 26);
		if (fmt == MMAPQ_FORMAT_INT)
			memcpy(buf, &seq, 8);
		if (mmapq_put(p, buf, len) < 0)
			break;
		done++;
	}
	if ((r = mmapq_publish(p)) < 0)
		tmpl_fail("publish", r, NULL);
	if (rel_d > done)
		rel_d = done;
	if (rel_b > done)
		rel_b = done;
	if (rel_d && (mmapq_available(c, 0, &navail) < 0 || mmapq_release(c, rel_d) < 0))
		tmpl_fail("release", -EIO, NULL);
	if (b && rel_b && (mmapq_available(b, 0, &navail) < 0 || mmapq_release(b, rel_b) < 0))
		tmpl_fail("release b", -EIO, NULL);
}

/* A queue file made by the library (base records put and consumed, then
 * put more, rel of them consumed), its time-, pid- and mutex-dependent
 * fields made constant so that an input means the same file in every run. */
static void build_template(uint32_t fmt, uint64_t size, uint32_t max, uint32_t base, uint32_t put,
                           uint32_t rel, bool two, bool crashed, struct tmpl *t)
{
	char path[600];
	struct mmapq_params pp = {
		.path = path, .role = MMAPQ_ROLE_PRODUCER, .size = size, .max_record = max,
		.format = fmt, .sync = MMAPQ_SYNC_NEVER, .file_mode = 0600,
	};
	struct mmapq_params cp = pp;
	struct mmapq_error err;
	struct mmapq *p, *c, *b = NULL;
	pthread_mutexattr_t a;
	int r;

	snprintf(path, sizeof(path), "%s/template", g_dir);
	unlink(path);
	cp.role = MMAPQ_ROLE_CONSUMER;
	if ((r = mmapq_open(&pp, &p, &err)) < 0)
		tmpl_fail("producer", r, &err);
	if ((r = mmapq_open(&cp, &c, &err)) < 0)
		tmpl_fail("consumer", r, &err);
	if (two) {
		cp.consumer = "b";
		if ((r = mmapq_open(&cp, &b, &err)) < 0)
			tmpl_fail("consumer b", r, &err);
	}
	while (base) {
		uint32_t k = base < 4 ? base : 4;
		tmpl_put(p, c, b, fmt, max, k, k, k);
		base -= k;
	}
	tmpl_put(p, c, b, fmt, max, put, rel, rel / 2);
	if (b)
		mmapq_close(b);
	mmapq_close(c);
	mmapq_close(p);

	t->bytes = malloc(HDR + size);
	if (!t->bytes)
		exit(2);
	t->len = fuzz_read_file(path, t->bytes, HDR + size);
	unlink(path);
	wr64(t->bytes, OFF(created_usec), UINT64_C(1700000000000000));
	wr32(t->bytes, PE(0, pid), 4242u);
	wr64(t->bytes, PE(0, start_usec), UINT64_C(1700000000000000));
	wr64(t->bytes, PE(0, registered_usec), UINT64_C(1700000000000000));
	for (uint32_t i = 0; i < MMAPQ_CONSUMERS_DEFAULT; i++) {
		if (rd32(t->bytes, E(i, state)) != 1)
			continue;
		wr32(t->bytes, E(i, pid), 4243u + i);
		wr64(t->bytes, E(i, start_usec), UINT64_C(1700000000000000));
		wr64(t->bytes, E(i, registered_usec), UINT64_C(1700000000000000));
	}
	for (size_t i = 0; i < MMAPQ_ID_SIZE; i++)
		t->bytes[OFF(id) + i] = (uint8_t)(0xa0 + i);
	if (crashed)
		wr32(t->bytes, S_CLEAN, 0);
	memset(t->bytes + OFF(lock), 0, 64);
	if (pthread_mutexattr_init(&a) || pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) ||
	    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) ||
	    pthread_mutex_init((pthread_mutex_t *)(void *)(t->bytes + OFF(lock)), &a))
		exit(2);
	pthread_mutexattr_destroy(&a);
}

/* A file of version ver as an older mmapq wrote it: records [first, first
 * + n) in a ring of cap slots, the consumer "default" at first (and, version
 * 3, "b" at the tail). */
static void build_legacy(uint32_t ver, uint32_t fmt, uint32_t cap, uint32_t rs, uint64_t first,
                         uint32_t n, struct tmpl *t)
{
	uint32_t ss = ver >= 2 && fmt == MMAPQ_FORMAT_INT ? 16 : 16 + ((rs + 7) & ~7u);
	uint8_t *b;

	if (n > cap)
		n = cap;
	t->len = HDR3 + (size_t)cap * ss;
	b = t->bytes = calloc(1, t->len);
	if (!b)
		exit(2);
	memcpy(b, MMAPQ_MAGIC, 8);
	wr32(b, V3(id.version), ver);
	wr32(b, V3(id.header_size), HDR3);
	wr32(b, V3(id.byte_order), MMAPQ_BYTE_ORDER);
	wr32(b, V3(id.format), fmt);
	wr32(b, V3(id.capacity), cap);
	wr32(b, V3(id.record_size), rs);
	wr32(b, V3(id.slot_size), ss);
	wr64(b, V3(id.file_size), t->len);
	wr64(b, V3(id.created_usec), UINT64_C(1600000000000000));
	wr64(b, V3(producer.position), first + n);
	wr64(b, V3(floor), first);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t seq = first + i;
		size_t o = HDR3 + (size_t)(seq & (cap - 1)) * ss;
		uint32_t len = fmt == MMAPQ_FORMAT_INT ? 8 : (uint32_t)(seq % (rs + 1));

		wr64(b, o, seq);
		if (ver >= 2 && fmt == MMAPQ_FORMAT_INT) {
			wr64(b, o + 8, seq * 1000 + 7);
			continue;
		}
		wr32(b, o + 8, len);
		for (uint32_t j = 0; j < len; j++)
			b[o + 16 + j] = (uint8_t)('A' + (seq + j) % 26);
	}
	if (ver == 3) {
		wr32(b, V3(id.max_consumers), 8);
		for (uint32_t i = 0; i < 2; i++) {
			size_t e = V3(consumers) + i * sizeof(struct mmapq_consumer_v3);
			wr64(b, e, i ? first + n : first);
			wr32(b, e + offsetof(struct mmapq_consumer_v3, state), 1);
			strcpy((char *)b + e + offsetof(struct mmapq_consumer_v3, name), i ? "b" : "default");
		}
		memset(b + V3(queue_id), 0x5c, MMAPQ_ID_SIZE);
	}
}

static const struct tmpl *get_template(uint8_t b0, uint8_t b1, uint8_t b2, struct geom *g)
{
	static const uint32_t fmts[4] = {MMAPQ_FORMAT_INT, MMAPQ_FORMAT_LINE, MMAPQ_FORMAT_BINARY,
	                                 MMAPQ_FORMAT_BINARY};
	static const uint32_t bases[4] = {0, 3, 13, 1000};
	static const uint32_t rs_tab[4] = {8, 12, 17, 64};
	uint32_t fmt = fmts[b0 & 3];
	static const uint64_t sizes[4] = {64, 128, 256, 1024};
	uint64_t size = sizes[(b0 >> 2) & 3];
	uint32_t lim = limit_of(size), maxes[4] = {8, 13, lim / 2, lim};
	uint32_t max = fmt == MMAPQ_FORMAT_INT ? 8 : maxes[(b0 >> 4) & 3];
	uint32_t base = bases[(b0 >> 6) & 3];
	bool legacy = b1 >= 0xf0 && (b1 & 4);
	uint32_t put = legacy ? 0 : b1 % 24, rel = (b2 & 31) % (put + 1);
	bool two = b2 & 32, crashed = b2 & 64;
	size_t key = (((size_t)b0 * 24 + put) * 32 + rel) * 2 + two;

	if (max > lim)
		max = lim;
	if (max < 8)
		max = 8;
	g->size = size;
	g->max = max;
	g->fmt = fmt;
	if (legacy) {
		free(g_tmpl_scratch.bytes);
		build_legacy(1 + (b1 & 3) % 3, fmt == MMAPQ_FORMAT_INT ? fmt : MMAPQ_FORMAT_LINE,
		             (uint32_t)(size / 16), rs_tab[(b0 >> 4) & 3], base, b2 % 17,
		             &g_tmpl_scratch);
		return &g_tmpl_scratch;
	}
	/* byte 1 >= 0xf0: the programs ask for another geometry (-EPROTO) */
	if (b1 >= 0xf0) {
		switch (b1 & 3) {
		case 0: g->size = size * 2; break;
		case 1: g->size = size / 2 >= 64 ? size / 2 : size * 4; break;
		case 2: g->max = max + 1; break;
		default: g->fmt = fmt == MMAPQ_FORMAT_INT ? MMAPQ_FORMAT_LINE : MMAPQ_FORMAT_INT; break;
		}
	}
	if (!crashed && g_tmpl[key])
		return g_tmpl[key];
	if (!crashed && g_tmpl_cached < TMPL_CACHE_MAX) {
		struct tmpl *t = calloc(1, sizeof(*t));
		if (!t)
			exit(2);
		build_template(fmt, size, max, base, put, rel, two, false, t);
		g_tmpl[key] = t;
		g_tmpl_cached++;
		return t;
	}
	free(g_tmpl_scratch.bytes);
	build_template(fmt, size, max, base, put, rel, two, crashed, &g_tmpl_scratch);
	return &g_tmpl_scratch;
}

static uint8_t g_work[FILE_MAX];

static size_t apply_ops(const struct tmpl *t, const uint8_t *d, size_t n)
{
	size_t len = t->len, i = 0;

	memcpy(g_work, t->bytes, t->len);
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
			if (nl > FILE_MAX)
				nl = FILE_MAX;
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

/*
 * The skip policy is left out of this model: in a version-4 file every
 * entry's policy is made block, no skip pending, and skipped_seen equal to
 * skipped (what an attach stores), so that no producer skips and no attach
 * finishes a skip.  test_skip covers the skips and their crashes, test_format
 * the policy's validation.
 */
static const uint8_t *no_skips(const uint8_t *f, size_t n)
{
	if (n < HDR || rd32(f, OFF(version)) != MMAPQ_VERSION)
		return f;
	if (f != g_work)
		memcpy(g_work, f, n);
	for (uint32_t i = 0; i < MMAPQ_CONSUMERS_MAX; i++) {
		uint64_t sk = rd64(g_work, E(i, skipped)) & ~MMAPQ_SKIP_PENDING;

		wr32(g_work, E(i, policy), 0);
		wr64(g_work, E(i, skipped), sk);
		wr64(g_work, E(i, skipped_seen), sk);
		wr64(g_work, E(i, skip_to), 0);
	}
	return g_work;
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
		if (n > sizeof(g_after) - 1 || n > sizeof(g_work))
			return -1; /* larger than any file this target is meant for */
		f = no_skips(f, n);
		model_file(f, n, &m);
		g = m.hdr_ok && m.ver == 4 ? (struct geom){m.size, m.max, m.fmt} :
		                             (struct geom){64, 8, MMAPQ_FORMAT_INT};
	} else {
		const struct tmpl *t = get_template(data[0], size > 1 ? data[1] : 0, size > 2 ? data[2] : 0,
		                                    &g);
		n = apply_ops(t, size > 3 ? data + 3 : data, size > 3 ? size - 3 : 0);
		f = no_skips(g_work, n);
		model_file(f, n, &m);
	}
	if (m.hdr_ok && m.ver == 4 && m.size > sizeof(g_pred) - HDR)
		return -1; /* a ring larger than the model's buffers: not this target's */

	fuzz_write_file(g_path, f, n);
	check_observer(f, n, &m);
	check_consumer(f, n, &m, &g);
	check_producer(f, n, &m, &g);
	if (m.hdr_ok && m.ver < 4)
		check_migrate(f, n, &m);

	{
		char what[PATH_MAX];

		fd = fuzz_fd_open_under(g_dir, what, sizeof(what));
		FUZZ_CHECK(fd < 0, "a descriptor leaked: %d, open on %s", fd, what);
	}
	return 0;
}
