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

/* Build a queue: `base` records put and consumed, then `put` put and `rel`
 * consumed.  Returns the file size; the bytes are in g_file. */
static size_t make_queue(uint32_t fmt, uint32_t cap, uint32_t rs, uint32_t base, uint32_t put,
                         uint32_t rel)
{
	struct mmapq_params pp = {
		.path = g_tmp, .role = MMAPQ_ROLE_PRODUCER, .capacity = cap, .record_size = rs,
		.format = fmt, .sync = MMAPQ_SYNC_NEVER, .file_mode = 0600,
	};
	struct mmapq_params cp = pp;
	struct mmapq_error err;
	struct mmapq *p, *c;
	uint64_t seq = 0;
	uint32_t navail, nfree;
	size_t n;
	FILE *f;
	int r;

	unlink(g_tmp);
	cp.role = MMAPQ_ROLE_CONSUMER;
	if ((r = mmapq_open(&pp, &p, &err)) < 0)
		die("producer", r, &err);
	if ((r = mmapq_open(&cp, &c, &err)) < 0)
		die("consumer", r, &err);
	for (int phase = 0; phase < 2; phase++) {
		uint32_t todo = phase ? put : base;
		while (todo) {
			uint32_t batch;
			if ((r = mmapq_reserve(p, 0, &nfree)) < 0)
				die("reserve", r, NULL);
			batch = todo < nfree ? todo : nfree;
			for (uint32_t i = 0; i < batch; i++, seq++) {
				char buf[256];
				uint32_t len = fmt == MMAPQ_FORMAT_INT ? 8 : (uint32_t)((seq * 7) % (rs + 1));
				int64_t v = (int64_t)seq * 1000 - 3;
				if (len > sizeof(buf))
					len = sizeof(buf);
				for (uint32_t j = 0; j < sizeof(buf); j++)
					buf[j] = (char)('A' + (seq + j) % 26);
				if (fmt == MMAPQ_FORMAT_INT)
					memcpy(buf, &v, 8);
				if ((r = mmapq_put(p, buf, len)) < 0)
					die("put", r, NULL);
			}
			if ((r = mmapq_publish(p)) < 0)
				die("publish", r, NULL);
			todo -= batch;
			if (phase == 0 || (todo == 0 && rel)) {
				if ((r = mmapq_available(c, 0, &navail)) < 0)
					die("available", r, NULL);
				if ((r = mmapq_release(c, phase == 0 ? batch : rel)) < 0)
					die("release", r, NULL);
			}
		}
	}
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
	/* the producer's side and the consumer "default" (entry 0: it attached) */
	wr32(OFF(producer) + offsetof(struct mmapq_side, pid), 4242u);
	wr64(OFF(producer) + offsetof(struct mmapq_side, start_usec), UINT64_C(1700000000000000));
	wr32(OFF(consumers) + offsetof(struct mmapq_consumer, pid), 4243u);
	wr64(OFF(consumers) + offsetof(struct mmapq_consumer, start_usec), UINT64_C(1700000000000000));
	fresh_mutex();
	return n;
}

static void queue_seeds(void)
{
	const char *T = "fuzz_queue_file";
	size_t n;

	/* raw files: real queues (the first byte is the magic's 'M') */
	n = make_queue(MMAPQ_FORMAT_INT, 2, 8, 0, 0, 0);
	put_file(T, "raw-int-cap2-empty", g_file, n);
	n = make_queue(MMAPQ_FORMAT_INT, 4, 8, 0, 3, 1);
	put_file(T, "raw-int-cap4-h1-t3", g_file, n);
	memset(g_file + OFF(id), 0, MMAPQ_ID_SIZE); /* made before queue ids: given one on attach */
	put_file(T, "raw-int-cap4-no-id", g_file, n);
	n = make_queue(MMAPQ_FORMAT_INT, 8, 8, 13, 6, 0);
	put_file(T, "raw-int-cap8-wrapped", g_file, n);
	n = make_queue(MMAPQ_FORMAT_LINE, 4, 16, 2, 3, 0);
	put_file(T, "raw-line-cap4-rs16-wrapped", g_file, n);
	n = make_queue(MMAPQ_FORMAT_LINE, 16, 64, 5, 16, 0);
	put_file(T, "raw-line-cap16-rs64-full", g_file, n);
	n = make_queue(MMAPQ_FORMAT_LINE, 2, 12, 0, 1, 0);
	put_file(T, "raw-line-cap2-rs12-padding", g_file, n);
	n = make_queue(MMAPQ_FORMAT_INT, 2, 8, 0, 2, 0);
	wr64(MMAPQ_HEADER_SIZE + 24, 7); /* slot 1 says seq 7, not 1 */
	put_file(T, "raw-int-bad-slot-seq", g_file, n);
	n = make_queue(MMAPQ_FORMAT_LINE, 2, 8, 0, 1, 0);
	wr32(MMAPQ_HEADER_SIZE + 8, 9); /* length 9 > record_size 8 */
	put_file(T, "raw-line-bad-slot-len", g_file, n);
	n = make_queue(MMAPQ_FORMAT_INT, 4, 8, 0, 2, 0);
	put_file(T, "raw-int-truncated", g_file, n - 20);
	put_file(T, "raw-int-extended", g_file, n + 1);
	put_file(T, "raw-header-only", g_file, MMAPQ_HEADER_SIZE);
	put_file(T, "raw-short", "MMAPQ\0\r\n", 8);
	/* a lock word left held by a process that is gone (power cut, copy) */
	n = make_queue(MMAPQ_FORMAT_INT, 4, 8, 0, 2, 1);
	{
		pthread_mutex_t *m = (pthread_mutex_t *)(void *)(g_file + OFF(lock));
		uint8_t held[64];
		pthread_mutex_lock(m);
		memcpy(held, m, 64);
		pthread_mutex_unlock(m);
		memset(held + 24, 0, 16); /* __list: robust-list addresses, different every run */
		memcpy(g_file + OFF(lock), held, 64);
		wr32(OFF(lock) + 8, 999999); /* __owner: a tid that does not exist */
		wr32(OFF(lock), 999999);     /* __lock: held by it */
	}
	put_file(T, "raw-int-stale-lock", g_file, n);

	/* mutation mode: [template] [put] [consumed] then [op][offset LE][value] */
	{
		static const struct {
			const char *name;
			size_t len;
			const char *bytes;
		} m[] = {
			S("mut-int-cap2-empty", "\x00\x00\x00"),
			S("mut-line-cap8-rs17-wrapped", "\x35\x07\x02"),
			S("mut-int-cap16-base4099", "\xe6\x10\x03"),
			/* the programs ask for another capacity, record_size, format */
			S("mut-mismatch-capacity", "\x02\xf0\x00"),
			S("mut-mismatch-record-size", "\x02\xf2\x00"),
			S("mut-mismatch-format", "\x02\xf3\x00"),
			/* set capacity (offset 24, 4 bytes) to 3 */
			S("mut-capacity-3", "\x02\x02\x01\x08\x18\x00\x03\x00\x00\x00"),
			/* add 1 to the tail (offset 128, 8 bytes): tail past head + capacity */
			S("mut-tail-plus-1", "\x02\x04\x00\x0e\x80\x00\x01\x00\x00\x00\x00\x00\x00\x00"),
			/* head (offset 256) set beyond tail */
			S("mut-head-beyond-tail", "\x02\x02\x00\x0c\x00\x01\x09\x00\x00\x00\x00\x00\x00\x00"),
			/* slot 0 length (offset 4096 + 8) set to 0xffffffff */
			S("mut-slot-len-huge", "\x03\x02\x00\x08\x08\x10\xff\xff\xff\xff"),
			/* slot 0 reserved word (4096 + 12) non-zero: the observer reads, attach refuses */
			S("mut-slot-reserved", "\x01\x02\x00\x08\x0c\x10\x01\x00\x00\x00"),
			/* file one byte shorter, and 4 KiB longer */
			S("mut-resize-minus-1", "\x00\x01\x00\x03\xff\xff"),
			S("mut-resize-plus-4k", "\x00\x01\x00\x03\x00\x10"),
			/* byte order (offset 16) swapped */
			S("mut-byte-order", "\x00\x00\x00\x08\x10\x00\x01\x02\x03\x04"),
			/* reserved header byte (offset 4095) */
			S("mut-reserved-last", "\x00\x00\x00\x00\xff\x0f\x01"),
			/* negative consumer pid (offset 264) */
			S("mut-pid-negative", "\x00\x00\x00\x08\x08\x01\xff\xff\xff\xff"),
			/* the mutex's kind word (offset 64 + 16): priority-inheritance robust,
			 * priority-protect, and garbage owner/lock words */
			S("mut-mutex-pi", "\x02\x01\x00\x08\x50\x00\xb0\x00\x00\x00"),
			S("mut-mutex-pp", "\x02\x01\x00\x08\x50\x00\xd0\x00\x00\x00"),
			S("mut-mutex-garbage", "\x02\x01\x00\x0c\x40\x00\x41\x41\x41\x41\x42\x42\x42\x42"),
			S("mut-mutex-owner-dead", "\x02\x01\x00\x08\x40\x00\x39\x30\x00\x40"),
			/* consumer entry 1 (offset 704) registered (state, 712) as
			 * "default" (name, 768) at 0, which entry 0 is: a name
			 * twice, refused by every role; and as "-x", a name an
			 * older version let register: valid */
			S("mut-name-twice", "\x00\x00\x00" "\x0c\x00\x03" "default" "\0"
			  "\x08\xc8\x02" "\x01\x00\x00\x00"),
			S("mut-name-dash", "\x00\x00\x00" "\x04\x00\x03" "-x" "\x08\xc8\x02"
			  "\x01\x00\x00\x00"),
		};
		for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
			put_file(T, m[i].name, m[i].bytes, m[i].len);
	}
}

/* ---- parser inputs: [format|record_size] [chunking] [fail at] text ---------- */

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
		 "[queue]\npath = /var/lib/mmapq/q\ncapacity = 16777216\nrecord_size = 1048576\n"
		 "format = line\nsync = always\nmode = 0777\n[producer]\ninput = generate\n"
		 "socket = /run/mmapq/p.sock\ngenerate_rate = 100000000\non_full = drop\n"
		 "[consumer]\noutput = file:/tmp/out\n[log]\nlevel = debug\nstats_interval = 86400\n"},
		{"bom-crlf", "\xef\xbb\xbf[queue]\r\ncapacity = 8\r\n; comment\r\n# comment\r\n"},
		{"inline-comments", "[queue] ; q\ncapacity = 64 ; sixty-four\nformat=int\n[log]\nlevel=warning\n"},
		{"syntax", "key outside = 1\n[queue\n[queue] junk\n  indented = 1\n=nokey\nnoequals\n"
		           "capacity : 8\n[nosuch]\nx = 1\n"},
		{"duplicates", "[queue]\ncapacity = 8\ncapacity = 16\n[queue]\nformat = int\n"},
		{"overflow", "[queue]\ncapacity = 99999999999999999999\nrecord_size = 4294967296\n"
		             "mode = 07777777777777\n[log]\nstats_interval = -1\n"},
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
	put_file("fuzz_config", "nul-byte", "[queue]\ncapacity = 8\0 16\n", sizeof("[queue]\ncapacity = 8\0 16\n") - 1);
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
