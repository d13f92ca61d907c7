/* SPDX-License-Identifier: MIT */
/*
 * mkseeds -- writes the committed seed corpora of the fuzz targets
 * (tests/fuzz/corpus/TARGET/), so that they can be remade and reviewed:
 *
 *   tests/fuzz/run.sh --make-seeds
 *
 * Queue files are made by the library, then their time-, pid- and
 * mutex-history-dependent fields are made constant (as fuzz_queue_file does
 * with its templates), so the seeds are the same on every run.  Seeds for
 * the text targets are written literally below; config seeds also include
 * the shipped config/mmapq.ini and tests/config/bad-*.ini (copied by
 * run.sh).  Regression inputs found by fuzzing are kept under names
 * starting with "crash-" and are never rewritten here.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h"

#define OFF(f) offsetof(struct mmapq_header, f)
/* a seed from a string literal, embedded NULs included */
#define S(name, lit) {name, sizeof(lit) - 1, lit}

static const char *g_out; /* tests/fuzz/corpus */
static char g_tmp[512], g_tmp_lock[520];

static void die(const char *what, int r, const struct mmapq_error *err)
{
	fprintf(stderr, "mkseeds: %s: %s %s\n", what, mmapq_strerror(r), err ? err->msg : "");
	exit(1);
}

static void put_file(const char *target, const char *name, const void *b, size_t n)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", g_out, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "mkseeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* ---- queue files -------------------------------------------------------------- */

static uint8_t g_file[1 << 16];

static void wr32(size_t off, uint32_t v)
{
	memcpy(g_file + off, &v, 4);
}

static void wr64(size_t off, uint64_t v)
{
	memcpy(g_file + off, &v, 8);
}

static uint64_t rd64(size_t off)
{
	uint64_t v;

	memcpy(&v, g_file + off, 8);
	return v;
}

static void fresh_mutex(void)
{
	pthread_mutexattr_t a;

	memset(g_file + OFF(lock), 0, 64);
	if (pthread_mutexattr_init(&a) || pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) ||
	    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) ||
	    pthread_mutex_init((pthread_mutex_t *)(void *)(g_file + OFF(lock)), &a))
		die("mutex", -EINVAL, NULL);
	pthread_mutexattr_destroy(&a);
}

static uint32_t rec_len(uint32_t fmt, uint32_t max, uint64_t seq)
{
	return fmt == MMAPQ_FORMAT_INT ? 8 : (uint32_t)((seq * 7 + seq / 5) % (max + 1));
}

/* put n records (as many as fit); "default" (c) releases rel_c of them, "b"
 * (if any) rel_b */
static void put_some(struct mmapq *p, struct mmapq *c, struct mmapq *b, uint32_t fmt, uint32_t max,
                     uint32_t n, uint32_t rel_c, uint32_t rel_b)
{
	uint32_t done = 0, navail;
	int r;

	for (; done < n; done++) {
		uint64_t seq = mmapq_next_seq(p);
		char buf[256];

		for (uint32_t j = 0; j < sizeof(buf); j++)
			buf[j] = (char)('A' + (seq + j) % 26);
		if (fmt == MMAPQ_FORMAT_INT)
			memcpy(buf, &seq, 8);
		if (mmapq_put(p, buf, rec_len(fmt, max, seq)) < 0)
			break;
	}
	if ((r = mmapq_publish(p)) < 0)
		die("publish", r, NULL);
	if (rel_c > done)
		rel_c = done;
	if (rel_b > done)
		rel_b = done;
	if (rel_c && ((r = mmapq_available(c, 0, &navail)) < 0 || (r = mmapq_release(c, rel_c)) < 0))
		die("release", r, NULL);
	if (b && rel_b && ((r = mmapq_available(b, 0, &navail)) < 0 || (r = mmapq_release(b, rel_b)) < 0))
		die("release b", r, NULL);
}

/* Build a version-4 queue: `base` records put and consumed, then `put` put
 * (as many as fit) and `rel` consumed by "default" (and half of them by "b",
 * registered too when two); closed cleanly.  Returns the file size; the
 * bytes are in g_file. */
static size_t make_queue(uint32_t fmt, uint64_t size, uint32_t max, uint32_t base, uint32_t put,
                         uint32_t rel, bool two)
{
	struct mmapq_params pp = {
		.path = g_tmp, .role = MMAPQ_ROLE_PRODUCER, .size = size, .max_record = max,
		.format = fmt, .sync = MMAPQ_SYNC_NEVER, .file_mode = 0600,
	};
	struct mmapq_params cp = pp;
	struct mmapq_error err;
	struct mmapq *p, *c, *b = NULL;
	size_t n;
	FILE *f;
	int r;

	unlink(g_tmp);
	cp.role = MMAPQ_ROLE_CONSUMER;
	if ((r = mmapq_open(&pp, &p, &err)) < 0)
		die("producer", r, &err);
	if ((r = mmapq_open(&cp, &c, &err)) < 0)
		die("consumer", r, &err);
	if (two) {
		cp.consumer = "b";
		if ((r = mmapq_open(&cp, &b, &err)) < 0)
			die("consumer b", r, &err);
	}
	while (base) {
		uint32_t k = base < 4 ? base : 4;
		put_some(p, c, b, fmt, max, k, k, k);
		base -= k;
	}
	put_some(p, c, b, fmt, max, put, rel, rel / 2);
	if (b)
		mmapq_close(b);
	mmapq_close(c);
	mmapq_close(p);
	f = fopen(g_tmp, "rb");
	if (!f)
		die("read", -errno, NULL);
	n = fread(g_file, 1, sizeof(g_file), f);
	fclose(f);
	unlink(g_tmp);
	unlink(g_tmp_lock); /* the library's lock file beside it */
	wr64(OFF(created_usec), UINT64_C(1700000000000000));
	for (int i = 0; i < MMAPQ_ID_SIZE; i++) /* the random id, made the same every time */
		g_file[OFF(id) + (size_t)i] = (uint8_t)(0x11 * (i + 1));
	wr32(OFF(producers[0].pid), 4242u);
	wr64(OFF(producers[0].start_usec), UINT64_C(1700000000000000));
	wr64(OFF(producers[0].registered_usec), UINT64_C(1700000000000000));
	for (uint32_t i = 0; i < 2; i++) {
		size_t e = OFF(consumers) + i * sizeof(struct mmapq_consumer);

		if (i && !two)
			break;
		wr32(e + offsetof(struct mmapq_consumer, pid), 4243u + i);
		wr64(e + offsetof(struct mmapq_consumer, start_usec), UINT64_C(1700000000000000));
		wr64(e + offsetof(struct mmapq_consumer, registered_usec), UINT64_C(1700000000000000));
	}
	fresh_mutex();
	return n;
}

/* The file offset of the frame of record seq in the queue in g_file (a
 * ring of size bytes), found from floor by the frames' lengths; with pad,
 * of the padding frame just before it.  Dies if there is none. */
static size_t frame_of(uint64_t size, uint64_t seq, bool pad)
{
	uint64_t s = rd64(OFF(floor.seq)), b = rd64(OFF(floor.byte));

	while (s <= seq && s < rd64(OFF(producer.tail))) {
		size_t off = MMAPQ_HEADER_SIZE + b % size;
		uint32_t len;

		memcpy(&len, g_file + off, 4);
		if (len == MMAPQ_FRAME_PAD) {
			if (pad && s == seq)
				return off;
			b += size - b % size;
			continue;
		}
		if (s == seq && !pad)
			return off;
		b += mmapq_frame_bytes(len);
		s++;
	}
	die(pad ? "no padding frame before the record" : "no such record", -ENOENT, NULL);
	return 0;
}

/* A file of format version ver (1 to 3: a ring of cap slots) as an older
 * mmapq wrote it: records [first, first + n), the consumer "default" at
 * first (version 3: and "b" at the tail). */
static size_t make_legacy(uint32_t ver, uint32_t fmt, uint32_t cap, uint32_t rs, uint64_t first,
                          uint32_t n)
{
	uint32_t ss = mmapq_slot_size_v3(ver, fmt, rs);
	size_t len = MMAPQ_HEADER_SIZE_V3 + (size_t)cap * ss;
	struct mmapq_header_v3 *h = (struct mmapq_header_v3 *)(void *)g_file;

	memset(g_file, 0, len);
	memcpy(h->id.magic, MMAPQ_MAGIC, 8);
	h->id.version = ver;
	h->id.header_size = MMAPQ_HEADER_SIZE_V3;
	h->id.byte_order = MMAPQ_BYTE_ORDER;
	h->id.format = fmt;
	h->id.capacity = cap;
	h->id.record_size = rs;
	h->id.slot_size = ss;
	h->id.file_size = len;
	h->id.created_usec = UINT64_C(1600000000000000);
	h->producer.position = first + n;
	h->floor = first;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t seq = first + i;
		uint8_t *slot = g_file + MMAPQ_HEADER_SIZE_V3 + (size_t)(seq & (cap - 1)) * ss;
		uint32_t l = fmt == MMAPQ_FORMAT_INT ? 8 : (uint32_t)(seq % (rs + 1));

		memcpy(slot, &seq, 8);
		if (ver >= 2 && fmt == MMAPQ_FORMAT_INT) {
			int64_t v = (int64_t)seq * 1000 + 7;
			memcpy(slot + 8, &v, 8);
			continue;
		}
		memcpy(slot + 8, &l, 4);
		for (uint32_t j = 0; j < l; j++)
			slot[16 + j] = (uint8_t)('A' + (seq + j) % 26);
	}
	if (ver == 3) {
		h->id.max_consumers = 8;
		for (uint32_t i = 0; i < 2; i++) {
			h->consumers[i].position = i ? first + n : first;
			h->consumers[i].state = MMAPQ_CONSUMER_REGISTERED;
			strcpy(h->consumers[i].name, i ? "b" : "default");
		}
		memset(h->queue_id, 0x5c, MMAPQ_ID_SIZE);
	}
	return len;
}

static void queue_seeds(void)
{
	const char *T = "fuzz_queue_file";
	size_t n;

	/* raw files: real queues (the first byte is the magic's 'M') */
	n = make_queue(MMAPQ_FORMAT_INT, 64, 8, 0, 0, 0, false);
	put_file(T, "raw-int-64-empty", g_file, n);
	n = make_queue(MMAPQ_FORMAT_INT, 128, 8, 13, 5, 2, false);
	put_file(T, "raw-int-128-wrapped", g_file, n);
	n = make_queue(MMAPQ_FORMAT_LINE, 256, 56, 3, 7, 1, false);
	put_file(T, "raw-line-256-max56", g_file, n);
	n = make_queue(MMAPQ_FORMAT_BINARY, 1024, 248, 1000, 23, 0, false);
	put_file(T, "raw-binary-1024-full", g_file, n);
	n = make_queue(MMAPQ_FORMAT_BINARY, 256, 28, 13, 9, 4, true);
	put_file(T, "raw-binary-two-consumers", g_file, n);
	/* as a crash leaves it: not clean; then a frame damaged, floor's
	 * seqlock left odd, the mutex held by the dead */
	wr32(OFF(state.clean), 0);
	put_file(T, "raw-binary-unclean", g_file, n);
	g_file[MMAPQ_HEADER_SIZE + (rd64(OFF(producer.tail_byte)) - 8) % 256] ^= 0x20;
	put_file(T, "raw-binary-unclean-damaged", g_file, n);
	n = make_queue(MMAPQ_FORMAT_BINARY, 256, 28, 13, 9, 4, true);
	wr64(OFF(floor.gen), rd64(OFF(floor.gen)) + 1);
	put_file(T, "raw-binary-floor-odd", g_file, n);
	/* the padding frame before record 19 with a wrong crc: that record is
	 * damaged, the ones before it are not */
	n = make_queue(MMAPQ_FORMAT_BINARY, 256, 28, 13, 9, 4, true);
	g_file[frame_of(256, 19, true) + 4] ^= 0x01;
	put_file(T, "raw-binary-pad-crc", g_file, n);
	/* record 11 (9 bytes, max_record 13) said to be 14 bytes long: its
	 * frame as long as before, so only the length check stops a walk
	 * there, and the records after it are out of reach */
	n = make_queue(MMAPQ_FORMAT_BINARY, 256, 13, 3, 12, 0, false);
	wr32(frame_of(256, 11, false), 14);
	put_file(T, "raw-binary-len-over-max", g_file, n);
	n = make_queue(MMAPQ_FORMAT_INT, 128, 8, 13, 5, 2, false);
	wr32(OFF(lock), 0x3ffffff0u);
	put_file(T, "raw-int-stale-lock", g_file, n);
	n = make_queue(MMAPQ_FORMAT_LINE, 64, 8, 0, 2, 0, false);
	put_file(T, "raw-line-64-max8", g_file, n);
	/* versions 1 to 3, read only */
	n = make_legacy(1, MMAPQ_FORMAT_INT, 4, 8, 3, 3);
	put_file(T, "raw-v1-int", g_file, n);
	n = make_legacy(2, MMAPQ_FORMAT_INT, 8, 8, 13, 6);
	put_file(T, "raw-v2-int-wrapped", g_file, n);
	n = make_legacy(3, MMAPQ_FORMAT_LINE, 8, 17, 5, 7);
	put_file(T, "raw-v3-line", g_file, n);
	wr64(MMAPQ_HEADER_SIZE_V3 + (size_t)(6 & 7) * 40, 99); /* slot of record 6 holds 99 */
	put_file(T, "raw-v3-line-bad-slot", g_file, n);
	put_file(T, "raw-short", "MMAPQ\0\r\n", 8);
	memset(g_file, 0, MMAPQ_HEADER_SIZE);
	memcpy(g_file, MMAPQ_MAGIC, 8);
	put_file(T, "raw-header-only", g_file, MMAPQ_HEADER_SIZE);

	/* mutation inputs: [template] [put] [consumed|b|crashed] [ops...] */
	{
		static const struct {
			const char *name;
			size_t len;
			const char *bytes;
		} m[] = {
			S("mut-int-64-empty", "\x00\x00\x00"),
			/* line, 256 bytes, max_record a half of what it allows, 13
			 * records first */
			S("mut-line-256-wrapped", "\xa9\x07\x02"),
			/* binary, 1024 bytes, the largest max_record, 3 first, 20
			 * put, 5 consumed, "b", not clean */
			S("mut-binary-1024-two-crashed", "\x7e\x14\x65"),
			S("mut-binary-128-max13", "\x16\x0b\x01"),
			/* the programs ask for another size, max_record, format */
			S("mut-mismatch-size", "\x02\xf0\x00"),
			S("mut-mismatch-size-half", "\x06\xf1\x00"),
			S("mut-mismatch-max-record", "\x02\xf2\x00"),
			S("mut-mismatch-format", "\x02\xf3\x00"),
			/* versions 1, 2, 3 */
			S("mut-v1", "\x04\xf4\x05"),
			S("mut-v2", "\x08\xf5\x09"),
			S("mut-v3-line", "\x19\xf6\x07"),
			/* size (offset 32, 8 bytes) set to 96 */
			S("mut-size-96", "\x02\x02\x01\x0c\x20\x00\x60\x00\x00\x00\x00\x00\x00\x00"),
			/* max_record (24, 4 bytes) set to 0 */
			S("mut-max-record-0", "\x02\x02\x01\x08\x18\x00\x00\x00\x00\x00"),
			/* 1 added to the tail (128): a record more than its bytes hold */
			S("mut-tail-plus-1", "\x02\x04\x00\x0e\x80\x00\x01\x00\x00\x00\x00\x00\x00\x00"),
			/* int, 3 records (48 bytes): 3 added to the tail, as many
			 * records as 48 bytes can hold at 8 bytes each (valid, the
			 * frames beyond tail's byte damaged), then 4 */
			S("mut-tail-plus-3", "\x00\x03\x00\x0e\x80\x00\x03\x00\x00\x00\x00\x00\x00\x00"),
			S("mut-tail-plus-4", "\x00\x03\x00\x0e\x80\x00\x04\x00\x00\x00\x00\x00\x00\x00"),
			/* 8 added to the tail's byte (136) */
			S("mut-tail-byte-plus-8", "\x02\x04\x00\x0e\x88\x00\x08\x00\x00\x00\x00\x00\x00\x00"),
			/* floor (256) set beyond the tail */
			S("mut-floor-beyond-tail", "\x02\x02\x00\x0c\x00\x01\x09\x00\x00\x00\x00\x00\x00\x00"),
			/* floor's generation (272) made odd */
			S("mut-floor-gen-odd", "\x26\x05\x01\x0e\x10\x01\x01\x00\x00\x00\x00\x00\x00\x00"),
			/* the clean mark (384) cleared, and set to 2 */
			S("mut-clean-0", "\x26\x05\x01\x08\x80\x01\x00\x00\x00\x00"),
			S("mut-clean-2", "\x26\x05\x01\x08\x80\x01\x02\x00\x00\x00"),
			/* a byte of the first frame (4096 + 12) flipped, clean and not */
			S("mut-frame-flip", "\x26\x05\x01\x01\x0c\x10\xff"),
			S("mut-frame-flip-crashed", "\x26\x05\x41\x01\x0c\x10\xff"),
			/* record 1's length (4096 + 8) made the padding's, mid-ring */
			S("mut-frame-pad", "\x26\x05\x41\x08\x08\x10\xff\xff\xff\xff"),
			/* the consumer's cursor byte (520) 16 ahead: a pair half stored */
			S("mut-cursor-byte-ahead", "\x26\x05\x01\x0e\x08\x02\x10\x00\x00\x00\x00\x00\x00\x00"),
			/* file one byte shorter, and 4 KiB longer */
			S("mut-resize-minus-1", "\x00\x01\x00\x03\xff\xff"),
			S("mut-resize-plus-4k", "\x00\x01\x00\x03\x00\x10"),
			/* byte order (offset 16) swapped */
			S("mut-byte-order", "\x00\x00\x00\x08\x10\x00\x01\x02\x03\x04"),
			/* reserved header byte (offset 4095) */
			S("mut-reserved-last", "\x00\x00\x00\x00\xff\x0f\x01"),
			/* negative consumer pid (offset 548) */
			S("mut-pid-negative", "\x00\x00\x00\x08\x24\x02\xff\xff\xff\xff"),
			/* the mutex's kind word (offset 64 + 16): priority-inheritance robust,
			 * priority-protect, and garbage owner/lock words */
			S("mut-mutex-pi", "\x02\x01\x00\x08\x50\x00\xb0\x00\x00\x00"),
			S("mut-mutex-pp", "\x02\x01\x00\x08\x50\x00\xd0\x00\x00\x00"),
			S("mut-mutex-garbage", "\x02\x01\x00\x0c\x40\x00\x41\x41\x41\x41\x42\x42\x42\x42"),
			S("mut-mutex-owner-dead", "\x02\x01\x00\x08\x40\x00\x39\x30\x00\x40"),
			/* consumer entry 1 (offset 704) registered (state, 736) as
			 * "default" (name, 768) at 0, which entry 0 is: a name
			 * twice, refused by every role; and as "-x", a name an
			 * older version let register: valid */
			S("mut-name-twice", "\x00\x00\x00" "\x0c\x00\x03" "default" "\0"
			  "\x08\xe0\x02" "\x01\x00\x00\x00"),
			S("mut-name-dash", "\x00\x00\x00" "\x04\x00\x03" "-x" "\x08\xe0\x02"
			  "\x01\x00\x00\x00"),
		};
		for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
			put_file(T, m[i].name, m[i].bytes, m[i].len);
	}
}

/* ---- parser inputs: [format|max_record|room] [chunking] [fail at] text -------- */

static void parse_seeds(void)
{
	static const struct {
		const char *name;
		size_t len;
		const char *bytes;
	} s[] = {
		S("int-basic", "\x00\x00\x00" "1 2 3\n-4 +5\n"),
		S("int-limits", "\x00\x03\x00" "9223372036854775807 -9223372036854775808 9223372036854775808 "
		 "-9223372036854775809\n"),
		S("int-bad-tokens", "\x00\x02\x00" "12a 0x10 - + \xef\xbb\xbf" "1 1\0" "2\n\t\v\f7\r\n8"),
		S("int-long-token", "\x00\x05\x00" "0000000000000000000000000000000000000001 42\r\n"),
		S("int-fail-at-2", "\x00\x01\x02" "1 2 3\n4"),
		S("int-utf8-nbsp", "\x00\x00\x00" "1\xc2\xa0" "2 3 \n"),
		S("line-rs8", "\x01\x00\x00" "short\nexactly8\n123456789\n\r\n12345678\r\nlast\n\n"),
		S("line-rs16-nul-crlf", "\x07\x04\x00" "a\0b\nCRLF line\r\n\xff\xfe invalid utf8\n"),
		S("line-rs9-long-then-nul", "\x03\x01\x00" "0123456789012345678901234567890123456789\0xyz\nok\n"),
		S("line-rs17-final-cr", "\x09\x03\x00" "no newline at end\r"),
		S("line-rs8-final-cr", "\x01\x02\x00" "12345678\r"),
		S("line-rs8-cr-split", "\x01\x09\x00" "12345678\r\n12345678\rx\n"),
		S("line-rs1m", "\x0f\x07\x00" "a line\nanother line\r\nend"),
		S("line-fail-at-1", "\x01\x00\x01" "a\nb\nc\n"),
		/* int and line fed as a producer near a full ring feeds them
		 * (bits 5-7 of byte 0: the room) */
		S("int-room", "@\x04\x00" "1 2 3 -4 x 99999999999999999999 5\n6"),
		S("line-room", "C\x05\x00" "ab\r\n\n123456789\r\nxy\x00z\nlast\r"),
		/* binary (bit 4 of byte 0): 4-byte big-endian lengths, then the
		 * bytes; an empty record, control and high bytes, one longer
		 * than max_record (16), a length of 2^32 - 1 the input ends in */
		S("binary-basic", "v\x07(\x00\x00\x00\x00\x00\x00\x00\x03" "abc\x00\x00\x00\x10\x00\x01\x02"
		  "\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x00\x00\x00\x11xxxxxxxxxxxxxxxxx"
		  "\x00\x00\x00\x05\n\r\\\x00\xff\xff\xff\xff\xff" "abc"),
		/* binary, max_record 8, a room: a record longer than max_record
		 * skipped, empty ones, one of exactly 8, the input ending inside
		 * the last; on_record fails at the second */
		S("binary-cut-short", "0\x03\x02\x00\x00\x00\taaaaaaaaa\x00\x00\x00\x00\x00\x00\x00\x00\x00"
		  "\x00\x00\x00\x00\x00\x00\x08" "bbbbbbbb\x00\x00\x00\x05" "ab"),
		S("empty", "\x00\x00\x00"),
	};

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		put_file("fuzz_parse", s[i].name, s[i].bytes, s[i].len);
}

/* ---- config files (besides the shipped and the test ones) --------------------- */

static void config_seeds(void)
{
	static const struct {
		const char *name;
		const char *text;
	} s[] = {
		{"empty", ""},
		{"limits",
		 "[queue]\npath = /var/lib/mmapq/q\nsize = 64G\nmax_record = 64M\nformat = binary\n"
		 "sync = always\nmode = 0777\n[producer]\ninput = generate\nsocket = /run/mmapq/p.sock\n"
		 "generate_rate = 100000000\non_full = drop\n[consumer]\noutput = file:/tmp/out\n[log]\n"
		 "level = debug\nstats_interval = 86400\n"},
		/* the geometry's keys, and the retired ones that name them */
		{"geometry", "[queue]\nsize = 256K\nmax_record = 64K\ncapacity = 65536\nrecord_size = 64\n"},
		{"bom-crlf", "\xef\xbb\xbf[queue]\r\nsize = 1M\r\n; comment\r\n# comment\r\n"},
		{"inline-comments", "[queue] ; q\nsize = 1M ; one M\nformat=int\n[log]\nlevel=warning\n"},
		{"syntax", "key outside = 1\n[queue\n[queue] junk\n  indented = 1\n=nokey\nnoequals\n"
		           "size : 8M\n[nosuch]\nx = 1\n"},
		{"duplicates", "[queue]\nsize = 1M\nsize = 2M\n[queue]\nformat = int\n"},
		{"overflow", "[queue]\nsize = 99999999999999999999\nmax_record = 4294967296\n"
		             "mode = 07777777777777\n[queue]\nsize = 17179869184G\nmax_record = 4G\n[log]\n"
		             "stats_interval = -1\n"},
		{"long-line",
		 "[queue]\npath = /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"},
		{"control-bytes", "[queue]\npath = /tmp/a\x1b[31mred\nformat = \x7f\n[log\x01]\n"},
		{"nats",
		 "[consumer]\noutput = nats\n[nats]\nservers = nats://127.0.0.1:4222, tls://[::1]:4443,b\n"
		 "subject = mmapq.host-1\nstream = MMAPQ_1\ncreate_stream = yes\nreplicas = 3\n"
		 "storage = memory\nduplicate_window = 600\nordered = no\ncredentials =\n"
		 "tls_ca = /etc/ca.pem\ntls_cert = /c.pem\ntls_key = /k.pem\nmax_pending = 65536\n"
		 "connect_timeout = 300\nack_timeout = 1\nreconnect_max_wait = 300\n"},
		{"nats-bad",
		 "[nats]\nservers = a,,http://b,nats://u:p@c,[::1,d:0\nsubject = a..b.*\n"
		 "stream = A.B\ntls_cert = /c.pem\nreplicas = 6\n"},
		{"socket-too-long",
		 "[producer]\ninput = socket\nsocket = /run/mmapq/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.sock\n"},
	};

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		put_file("fuzz_config", s[i].name, s[i].text, strlen(s[i].text));
	/* a NUL byte in the middle of a line */
	put_file("fuzz_config", "nul-byte", "[queue]\nsize = 1M\0 16\n", sizeof("[queue]\nsize = 1M\0 16\n") - 1);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: mkseeds CORPUS_DIR SCRATCH_DIR\n");
		return 2;
	}
	g_out = argv[1];
	snprintf(g_tmp, sizeof(g_tmp), "%s/mkseeds-queue", argv[2]);
	snprintf(g_tmp_lock, sizeof(g_tmp_lock), "%s%s", g_tmp, MMAPQ_LOCK_SUFFIX);
	queue_seeds();
	parse_seeds();
	config_seeds();
	return 0;
}
