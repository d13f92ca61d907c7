/* SPDX-License-Identifier: MIT */
/*
 * test_format -- mmapq_open against damaged, foreign and mismatched files.
 *
 * Every open runs in a forked child with a deadline, so a crash or a hang in
 * the library fails one check with a message instead of taking the suite
 * down.  For every refused file the bytes on disk must be exactly what they
 * were before: validation never "repairs" anything.
 *
 * What each role checks (validate.c): the producer and the consumer validate
 * the header (magic, byte order, version, header size, format, size,
 * max_record against the size, file size against the geometry and the real
 * size, reserved bytes, the clean mark, pids), the configuration, the
 * positions (floor and tail, a ring apart at most, 8 bytes a record at
 * least, aligned) and the consumer table.  The observer takes no locks: it
 * validates the same fields, the positions and the consumer table, and it
 * accepts any geometry when its parameters are 0.  Frames are checked where
 * they are read, and all of them after a close that was not clean:
 * test_checksum and test_salvage.  Files of versions 1 to 3 are validated
 * as such here (legacy_fields); what the roles do with them is
 * test_migrate's.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>


#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define RING 128u /* the int base: 8 records */
#define RS 8u
#define LRING 256u /* the binary base */
#define LRS 32u
#define OPEN_TIMEOUT_MS 5000

/* A failure shows no queue state: the files here are damaged on purpose,
 * and only forked children open them. */
#define EXPECT(cond, ...) TU_EXPECT(NULL, cond, __VA_ARGS__)
#define EXPECT_INT(a, b) TU_EXPECT_INT(NULL, a, b)
#define EXPECT_STR(a, b) TU_EXPECT_STR(NULL, a, b)
#define EXPECT_MEM(a, b, n) TU_EXPECT_MEM(NULL, a, b, n)

static char *g_dir;       /* scratch directory */
static char *g_base;      /* a valid INT queue: floor {3, byte 48}, tail {5, byte 80} */
static uint8_t *g_bytes;  /* its bytes */
static size_t g_len;
static char *g_lbase;     /* a valid BINARY queue (max_record 32): floor 1, tail 3 */
static uint8_t *g_lbytes;
static size_t g_llen;
static char *g_case;      /* the damaged copy under test */

/* ---- helpers --------------------------------------------------------------- */

static const char *role_str(enum mmapq_role r)
{
	return r == MMAPQ_ROLE_PRODUCER ? "producer" : r == MMAPQ_ROLE_CONSUMER ? "consumer" : "observer";
}

struct res {
	int code;      /* mmapq_open's return */
	char msg[512]; /* err.msg */
};

/* mmapq_open in a forked child; the child reports and exits at once (closing
 * the queue if it opened).  Returns false if the child crashed or hung. */
static bool open_forked(const char *path, enum mmapq_role role, uint64_t size, uint32_t rs,
                        uint32_t fmt, struct res *out, char *why, size_t whylen)
{
	int pfd[2];
	pid_t pid;
	char *buf;
	size_t len = 0;
	int st;

	memset(out, 0, sizeof(*out));
	tu_pipe(pfd);
	pid = tu_fork();
	if (pid == 0) {
		struct mmapq_params p = {.path = path, .role = role, .size = size,
		                         .max_record = rs, .format = fmt, .file_mode = 0600};
		struct mmapq_error e;
		struct mmapq *q = NULL;
		struct res r;
		memset(&e, 0, sizeof(e));
		memset(&r, 0, sizeof(r));
		close(pfd[0]);
		r.code = mmapq_open(&p, &q, &e);
		memcpy(r.msg, e.msg, sizeof(r.msg));
		r.msg[sizeof(r.msg) - 1] = '\0';
		(void)tu_write_all(pfd[1], &r, sizeof(r)); /* < PIPE_BUF: one write */
		mmapq_close(q);
		_exit(0);
	}
	close(pfd[1]);
	buf = tu_read_all(pfd[0], OPEN_TIMEOUT_MS, &len);
	close(pfd[0]);
	st = tu_wait(pid, OPEN_TIMEOUT_MS);
	if (st == -ETIMEDOUT) {
		tu_kill(pid);
		snprintf(why, whylen, "open as %s HUNG (no answer within %d ms)", role_str(role),
		         OPEN_TIMEOUT_MS);
		free(buf);
		return false;
	}
	if (!buf || len != sizeof(*out) || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(why, whylen, "open as %s CRASHED (wait status 0x%x, %s%d, %zu bytes reported)",
		         role_str(role), st, WIFSIGNALED(st) ? "signal " : "exit ",
		         WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), len);
		free(buf);
		return false;
	}
	memcpy(out, buf, sizeof(*out));
	free(buf);
	return true;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	char *b = tu_read_file(path, len);
	EXPECT(b, "cannot read %s: %s", path, strerror(errno));
	return (uint8_t *)b;
}

static void put_file(const char *path, const void *b, size_t len)
{
	int r;
	unlink(path);
	r = tu_write_file(path, b, len);
	EXPECT(r == 0, "cannot write %s: %s", path, strerror(-r));
}

/* First differing offset, or -1. */
static long first_diff(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return (long)i;
	return alen == blen ? -1 : (long)n;
}

/* Raw header fields the observer cannot show (wait flags, lock word). */
static void dump_raw(const char *path)
{
	size_t len = 0;
	uint8_t *b = (uint8_t *)tu_read_file(path, &len);
	struct mmapq_header h;
	if (!b) {
		fprintf(stderr, "     (cannot read %s)\n", path);
		return;
	}
	fprintf(stderr, "     file %zu bytes", len);
	if (len >= sizeof(h)) {
		memcpy(&h, b, sizeof(h));
		fprintf(stderr,
		        ": version %" PRIu32 " size %" PRIu64 " max_record %" PRIu32 " file_size %" PRIu64
		        " floor %" PRIu64 "/%" PRIu64 " (gen %" PRIu64 ") tail %" PRIu64 "/%" PRIu64
		        " clean %" PRIu32 " lockword 0x%08" PRIx32 " not_empty(seq %" PRIu32 " waiting %"
		        PRIu32 ") not_full(seq %" PRIu32 " waiting %" PRIu32 ")",
		        h.version, h.size, h.max_record, h.file_size, h.floor.seq, h.floor.byte, h.floor.gen,
		        h.producer.tail, h.producer.tail_byte, h.state.clean, *(uint32_t *)h.lock.bytes,
		        h.consumers[0].not_empty.seq, h.consumers[0].not_empty.waiting, h.not_full.seq,
		        h.not_full.waiting);
	}
	fprintf(stderr, "\n");
	free(b);
}

static void dump(const char *path, const char *why)
{
	tu_dump_queue(path, why);
	dump_raw(path);
}

/* Every needle (NULL-terminated list) must occur in msg. */
static bool has_all(const char *msg, const char *const *needles, const char **missing)
{
	for (size_t i = 0; needles && needles[i]; i++) {
		if (!strstr(msg, needles[i])) {
			*missing = needles[i];
			return false;
		}
	}
	return true;
}

/*
 * Open path as each role and check the code; for a failure also that the
 * message names the path and every needle; and that a file that every
 * writer refused is byte-for-byte what it was.  Returns the number of
 * problems, each printed.
 */
struct expect {
	int producer, consumer, observer; /* expected codes (0 = success) */
	uint64_t size;                    /* parameters for producer/consumer */
	uint32_t rs, fmt;
	uint64_t osize;                   /* parameters for the observer */
	uint32_t ors, ofmt;
};

static int check_open_all(const char *label, const char *path, const struct expect *x,
                          const char *const *needles, bool must_be_unchanged)
{
	const enum mmapq_role roles[3] = {MMAPQ_ROLE_PRODUCER, MMAPQ_ROLE_CONSUMER, MMAPQ_ROLE_OBSERVER};
	const int want[3] = {x->producer, x->consumer, x->observer};
	uint8_t *before = NULL, *after;
	size_t blen = 0, alen = 0;
	int problems = 0, writers_refused = 0;
	struct stat st;

	if (must_be_unchanged && lstat(path, &st) == 0 && S_ISREG(st.st_mode))
		before = slurp(path, &blen);
	for (int i = 0; i < 3; i++) {
		struct res r;
		char why[256];
		const char *missing = NULL;
		bool obs = roles[i] == MMAPQ_ROLE_OBSERVER;

		if (!open_forked(path, roles[i], obs ? x->osize : x->size, obs ? x->ors : x->rs,
		                 obs ? x->ofmt : x->fmt, &r, why, sizeof(why))) {
			fprintf(stderr, "FAIL [%s]: %s\n", label, why);
			problems++;
			continue;
		}
		if (r.code != want[i]) {
			fprintf(stderr, "FAIL [%s]: open as %s returned %d (%s), expected %d (%s); msg: \"%s\"\n",
			        label, role_str(roles[i]), r.code, mmapq_strerror(r.code), want[i],
			        mmapq_strerror(want[i]), r.msg);
			problems++;
			continue;
		}
		if (getenv("TEST_VERBOSE"))
			printf("  [%s] %s: %d \"%s\"\n", label, role_str(roles[i]), r.code, r.msg);
		if (r.code == 0)
			continue;
		if (!obs)
			writers_refused++;
		if (!strstr(r.msg, path)) {
			fprintf(stderr, "FAIL [%s]: %s message does not name the file %s: \"%s\"\n", label,
			        role_str(roles[i]), path, r.msg);
			problems++;
		} else if (!has_all(r.msg, needles, &missing)) {
			fprintf(stderr, "FAIL [%s]: %s message lacks \"%s\": \"%s\"\n", label,
			        role_str(roles[i]), missing, r.msg);
			problems++;
		}
	}
	if (before && writers_refused == 2) {
		long d;
		after = slurp(path, &alen);
		d = first_diff(before, blen, after, alen);
		if (d >= 0) {
			fprintf(stderr, "FAIL [%s]: refused file was modified: first difference at byte %ld"
			        " (%zu -> %zu bytes)\n", label, d, blen, alen);
			problems++;
		}
		free(after);
	}
	free(before);
	if (problems)
		dump(path, label);
	return problems;
}

static const struct expect X_ALL_BAD = {-EBADMSG, -EBADMSG, -EBADMSG, RING, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
static const struct expect X_ALL_OK = {0, 0, 0, RING, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
static const struct expect X_CONF_BAD = {-EPROTO, -EPROTO, 0, RING, RS, MMAPQ_FORMAT_INT, 0, 0, 0};

/* ---- fixtures ---------------------------------------------------------- */

/* A queue at path: nput records put (int: their index; binary: i + 1
 * bytes), nrel of them released by the consumer "default"; closed by all,
 * so marked clean. */
static void make_queue(const char *path, uint64_t size, uint32_t fmt, uint32_t rs, uint32_t nput,
                       uint32_t nrel)
{
	struct mmapq_params p = {.path = path, .role = MMAPQ_ROLE_PRODUCER, .size = size,
	                         .max_record = rs, .format = fmt, .file_mode = 0600};
	struct mmapq_error e;
	struct mmapq *q = NULL;
	uint64_t room;
	uint32_t n;
	int r;

	r = mmapq_open(&p, &q, &e);
	EXPECT(r == 0, "create %s: %s", path, e.msg);
	EXPECT_INT(mmapq_reserve(q, 8, 0, &room), 0);
	EXPECT(room >= nput * 16u, "%" PRIu64 " bytes free, %u records to put", room, nput);
	for (uint32_t i = 0; i < nput; i++) {
		int64_t v = (int64_t)i;
		char line[16];
		memset(line, 'a' + (int)i, sizeof(line));
		if (fmt == MMAPQ_FORMAT_INT)
			EXPECT_INT(mmapq_put(q, &v, sizeof(v)), 0);
		else
			EXPECT_INT(mmapq_put(q, line, 1 + i % 8), 0);
	}
	EXPECT_INT(mmapq_publish(q), (int)nput);
	mmapq_close(q);

	p.role = MMAPQ_ROLE_CONSUMER;
	r = mmapq_open(&p, &q, &e);
	EXPECT(r == 0, "consumer %s: %s", path, e.msg);
	if (nput) {
		EXPECT_INT(mmapq_available(q, 0, &n), 0);
		EXPECT_INT(n, nput);
	}
	EXPECT_INT(mmapq_release(q, nrel), 0);
	mmapq_close(q);
}

/* Each case: the valid files it damages copies of. */
static void setup(void)
{
	const struct mmapq_header *h;

	g_dir = tu_mkdtemp("format");
	g_base = tu_path(g_dir, "base.q");
	g_lbase = tu_path(g_dir, "lbase.q");
	g_case = tu_path(g_dir, "case.q");
	make_queue(g_base, RING, MMAPQ_FORMAT_INT, RS, 5, 3);
	make_queue(g_lbase, LRING, MMAPQ_FORMAT_BINARY, LRS, 3, 1);
	g_bytes = slurp(g_base, &g_len);
	g_lbytes = slurp(g_lbase, &g_llen);
	h = (const struct mmapq_header *)g_bytes;
	EXPECT(g_len == MMAPQ_HEADER_SIZE + RING && g_len == mmapq_file_size(RING),
	       "base file is %zu bytes", g_len);
	EXPECT(h->floor.seq == 3 && h->floor.byte == 48 && h->producer.tail == 5 &&
	       h->producer.tail_byte == 80 && h->state.clean == 1 && h->floor.gen % 2 == 0,
	       "base file: floor %" PRIu64 "/%" PRIu64 " tail %" PRIu64 "/%" PRIu64 " clean %u",
	       h->floor.seq, h->floor.byte, h->producer.tail, h->producer.tail_byte, h->state.clean);
}

/* A copy of the base with width bytes at off replaced by value. */
static void write_case(const uint8_t *base, size_t len, size_t off, size_t width, uint64_t value)
{
	uint8_t *b = malloc(len);
	if (!b)
		tu_die("malloc");
	memcpy(b, base, len);
	memcpy(b + off, &value, width); /* little-endian host: low bytes first */
	put_file(g_case, b, len);
	free(b);
}

/* ---- the base files are valid ------------------------------------------ */

static void test_base_valid(void)
{
	int problems = check_open_all("base INT", g_base, &X_ALL_OK, NULL, false);
	struct expect lx = {0, 0, 0, LRING, LRS, MMAPQ_FORMAT_BINARY, 0, 0, 0};
	problems += check_open_all("base BINARY", g_lbase, &lx, NULL, false);
	/* the opens above may have written pids and counters: re-read */
	free(g_bytes);
	free(g_lbytes);
	g_bytes = slurp(g_base, &g_len);
	g_lbytes = slurp(g_lbase, &g_llen);
	EXPECT_INT(problems, 0);
}

/* ---- every header field -------------------------------------------------- */

struct field_case {
	const char *name;
	size_t off, width;
	uint64_t value;
	int kind;               /* 0: all roles -EBADMSG; 2: the roles -EPROTO, the
	                           observer accepts */
	const char *needle[3];  /* besides the path */
};

#define HOFF(f) offsetof(struct mmapq_header, f)
#define PROD(f) (HOFF(producer) + offsetof(struct mmapq_tail, f))
/* field f of producer entry i (entry 0 is the base's producer "default") */
#define PENT(i, f) (HOFF(producers) + (i) * sizeof(struct mmapq_producer) + \
                    offsetof(struct mmapq_producer, f))
/* field f of consumer entry i (entry 0 is the base's consumer "default") */
#define CONS(i, f) (HOFF(consumers) + (i) * sizeof(struct mmapq_consumer) + \
                    offsetof(struct mmapq_consumer, f))

static void test_header_fields(void)
{
	char bo[32];
	const uint64_t good_size = g_len;
	char gs[32], gs8[32];
	snprintf(bo, sizeof(bo), "0x%08" PRIx32, (uint32_t)0x04030201);
	snprintf(gs, sizeof(gs), "%" PRIu64, good_size);
	snprintf(gs8, sizeof(gs8), "%" PRIu64, good_size + 8);
	const struct field_case cases[] = {
		{"version 0", HOFF(version), 4, 0, 0, {"version is 0", NULL}},
		{"version 5", HOFF(version), 4, 5, 0, {"version is 5", NULL}},
		/* read as version 3: a header of one page is expected */
		{"version 3", HOFF(version), 4, 3, 0, {"header size is 8192, expected 4096", NULL}},
		{"header_size 4096", HOFF(header_size), 4, 4096, 0, {"4096", "8192", NULL}},
		{"header_size 0", HOFF(header_size), 4, 0, 0, {"header size is 0", NULL}},
		{"byte_order swapped", HOFF(byte_order), 4, 0x04030201, 0, {bo, NULL}},
		{"byte_order 0", HOFF(byte_order), 4, 0, 0, {"0x00000000", NULL}},
		{"format 0", HOFF(format), 4, 0, 0, {"format 0", NULL}},
		{"format 4", HOFF(format), 4, 4, 0, {"format 4", NULL}},
		{"size 0", HOFF(size), 8, 0, 0, {"ring size 0 is not a power of two", NULL}},
		{"size 96", HOFF(size), 8, 96, 0, {"ring size 96 ", NULL}},
		{"size 32", HOFF(size), 8, 32, 0, {"ring size 32 ", "64..", NULL}},
		{"size 2^37", HOFF(size), 8, UINT64_C(1) << 37, 0, {"ring size 137438953472", NULL}},
		{"size 2^63", HOFF(size), 8, UINT64_C(1) << 63, 0, {"ring size 9223372036854775808", NULL}},
		/* a valid power of two that disagrees with the sizes */
		{"size 256", HOFF(size), 8, 256, 0, {gs, "8448", NULL}},
		{"max_record 0", HOFF(max_record), 4, 0, 0, {"max_record 0 is outside 8..24", NULL}},
		{"max_record 7", HOFF(max_record), 4, 7, 0, {"max_record 7 is outside", NULL}},
		/* a frame of 25 bytes would take more than a quarter of 128 */
		{"max_record 25", HOFF(max_record), 4, 25, 0, {"max_record 25 is outside 8..24",
		                                               "ring of 128 bytes", NULL}},
		{"max_record 2^31", HOFF(max_record), 4, 1u << 31, 0, {"max_record 2147483648", NULL}},
		/* within the ring's limit: only the configuration disagrees */
		{"max_record 16", HOFF(max_record), 4, 16, 2, {"max_record is 16 in the file", NULL}},
		{"max_consumers 0", HOFF(max_consumers), 4, 0, 0, {"max_consumers 0 is outside", NULL}},
		{"max_consumers 17", HOFF(max_consumers), 4, 17, 0, {"max_consumers 17 is outside", NULL}},
		{"max_consumers high", HOFF(max_consumers), 4, 0x80000008u, 0, {"max_consumers 2147483656", NULL}},
		{"max_producers 0", HOFF(max_producers), 4, 0, 0, {"max_producers 0 is outside", NULL}},
		{"max_producers 17", HOFF(max_producers), 4, 17, 0, {"max_producers 17 is outside", NULL}},
		{"file_size +8", HOFF(file_size), 8, good_size + 8, 0, {gs8, gs, NULL}},
		{"file_size 0", HOFF(file_size), 8, 0, 0, {"file size 0", gs, NULL}},
		{"file_size huge", HOFF(file_size), 8, UINT64_MAX, 0, {"18446744073709551615", NULL}},
		{"reserved1[0]", HOFF(reserved1), 1, 1, 0, {"reserved", "offset 60", NULL}},
		{"reserved1[3]", HOFF(reserved1) + 3, 1, 0x80, 0, {"reserved", "offset 63", NULL}},
		{"producer.reserved[0]", PROD(reserved), 1, 1, 0, {"reserved", "offset 152", NULL}},
		{"producer.reserved[103]", PROD(reserved) + 103, 1, 1, 0, {"reserved", "offset 255", NULL}},
		/* the producer table (max_producers 4): each entry's reserved
		 * word, the entries past it whole, the page's end */
		{"producer 0 rsv_reserved0", PENT(0, rsv_reserved0), 1, 1, 0, {"reserved", "offset 4244", NULL}},
		{"producer 3 rsv_reserved0", PENT(3, rsv_reserved0) + 3, 1, 1, 0, {"reserved", "offset 4823", NULL}},
		{"producer 4 state", PENT(4, state), 4, 1, 0, {"reserved", "offset 4864", NULL}},
		{"producer 15 name[63]", PENT(15, name) + 63, 1, 'x', 0, {"reserved", "offset 7103", NULL}},
		{"reserved2[0]", HOFF(reserved2), 1, 1, 0, {"reserved", "offset 7168", NULL}},
		{"reserved2[1023]", HOFF(reserved2) + 1023, 1, 0xff, 0, {"reserved", "offset 8191", NULL}},
		{"producer 0 state 2", PENT(0, state), 4, 2, 0, {"producer entry 0 has state 2", NULL}},
		{"producer 2 state 7", PENT(2, state), 4, 7, 0, {"producer entry 2 has state 7", NULL}},
		{"producer 0 name empty", PENT(0, name), 1, 0, 0, {"producer entry 0 has no valid name", NULL}},
		{"producer 0 name with '/'", PENT(0, name) + 1, 1, '/', 0, {"producer entry 0 has no valid name",
		                                                             NULL}},
		{"producer 0 name '-'", PENT(0, name), 1, '-', 0, {"producer entry 0 has no valid name", NULL}},
		{"producer 0 name unterminated", PENT(0, name) + 63, 1, 'x', 0, {"producer entry 0 has no valid"
		                                                                  " name", NULL}},
		{"producer 0 bytes after the name", PENT(0, name) + 20, 1, 'x', 0, {"producer entry 0 has bytes"
		                                                                     " after its name", NULL}},
		{"producer 1 registered without a name", PENT(1, state), 4, 1, 0,
		 {"producer entry 1 has no valid name", NULL}},
		{"floor.reserved[0]", HOFF(floor.reserved), 1, 1, 0, {"reserved", "offset 280", NULL}},
		{"floor.reserved[103]", HOFF(floor.reserved) + 103, 1, 0xff, 0, {"reserved", "offset 383", NULL}},
		{"state.reserved0", HOFF(state.reserved0), 4, 1, 0, {"reserved", "offset 388", NULL}},
		{"not_full_reserved[0]", HOFF(not_full_reserved), 1, 1, 0, {"reserved", "offset 456", NULL}},
		{"not_full_reserved[55]", HOFF(not_full_reserved) + 55, 1, 1, 0, {"reserved", "offset 511", NULL}},
		{"consumer 0 policy 0x2", CONS(0, policy), 4, 2, 0, {"entry 0", "policy 0x2", NULL}},
		{"consumer 0 skip pending below floor", CONS(0, skipped), 8, UINT64_C(1) << 63, 0,
		 {"consumer 'default' has a skip pending to record 0, outside the queue [3, 5]", NULL}},
		/* the outputs' reports past max_consumers (8) are reserved whole */
		{"outputs[8].acked", HOFF(outputs) + 8 * 24, 1, 1, 0, {"reserved", "offset 3792", NULL}},
		{"outputs[15].state", HOFF(outputs) + 15 * 24 + 23, 1, 1, 0, {"reserved", "offset 3983", NULL}},
		/* entries past max_consumers (8) are reserved whole */
		{"consumer 8 state", CONS(8, state), 4, 1, 0, {"reserved", "offset 2080", NULL}},
		{"consumer 15 name[63]", CONS(15, name) + 63, 1, 'x', 0, {"reserved", "offset 3519", NULL}},
		{"reserved[0]", HOFF(reserved), 1, 1, 0, {"reserved", "offset 3984", NULL}},
		{"reserved[111]", HOFF(reserved) + 111, 1, 0xff, 0, {"reserved", "offset 4095", NULL}},
		{"clean 2", HOFF(state.clean), 4, 2, 0, {"clean mark is 2", NULL}},
		{"producer.pid -1", PENT(0, pid), 4, 0xffffffffu, 0, {"-1", "producer entry 0", NULL}},
		{"producer.pid INT_MIN", PENT(0, pid), 4, 0x80000000u, 0, {"-2147483648", NULL}},
		{"free producer's pid -1", PENT(3, pid), 4, 0xffffffffu, 0, {"-1", "producer entry 3", NULL}},
		{"consumer 0 pid -7", CONS(0, pid), 4, (uint32_t)-7, 0, {"-7", "consumer entry 0", NULL}},
		{"consumer 5 pid -1", CONS(5, pid), 4, (uint32_t)-1, 0, {"-1", "consumer entry 5", NULL}},
		/* positions: floor {3, 48}, tail {5, 80} in the base, consumer
		 * "default" at {3, 48} */
		{"floor > tail", HOFF(floor.seq), 8, 6, 0, {"oldest record 6 at byte 48", "tail 5 at byte 80", NULL}},
		{"floor huge", HOFF(floor.seq), 8, UINT64_MAX, 0, {"oldest record 18446744073709551615", NULL}},
		{"floor byte > tail", HOFF(floor.byte), 8, 88, 0, {"at byte 88", "tail 5 at byte 80", NULL}},
		{"floor byte unaligned", HOFF(floor.byte), 8, 44, 0, {"at byte 44", NULL}},
		{"tail < floor", PROD(tail), 8, 2, 0, {"oldest record 3", "tail 2", NULL}},
		/* two records in 32 bytes: at most 4 */
		{"tail 8 records in 32 bytes", PROD(tail), 8, 11, 0, {"tail 11 at byte 80", NULL}},
		{"tail byte > a ring ahead", PROD(tail_byte), 8, 48 + RING + 8, 0, {"tail 5 at byte 184",
		                                                                  "ring 128 bytes", NULL}},
		{"tail byte unaligned", PROD(tail_byte), 8, 84, 0, {"tail 5 at byte 84", NULL}},
		{"tail byte < floor", PROD(tail_byte), 8, 40, 0, {"tail 5 at byte 40", NULL}},
		/* the consumer table: every role checks it, the observer too */
		{"cursor < floor", CONS(0, position), 8, 2, 0, {"'default' is at record 2", "[3 byte 48, 5 byte 80]", NULL}},
		{"cursor > tail", CONS(0, position), 8, 6, 0, {"'default' is at record 6", NULL}},
		{"cursor byte > tail", CONS(0, position_byte), 8, 88, 0, {"'default' is at record 3 byte 88", NULL}},
		{"cursor byte unaligned", CONS(0, position_byte), 8, 52, 0, {"byte 52", NULL}},
		{"synced > cursor", CONS(0, synced), 8, 4, 0, {"'default'", "(on disk: 4 byte 48)", NULL}},
		{"synced byte < floor", CONS(0, synced_byte), 8, 40, 0, {"(on disk: 3 byte 40)", NULL}},
		{"state 2", CONS(0, state), 4, 2, 0, {"entry 0 has state 2", NULL}},
		{"state of a free entry", CONS(6, state), 4, 0xff, 0, {"entry 6 has state 255", NULL}},
		{"name empty", CONS(0, name), 1, 0, 0, {"entry 0 has no valid name", NULL}},
		{"name with '/'", CONS(0, name) + 1, 1, '/', 0, {"entry 0 has no valid name", NULL}},
		{"name unterminated", CONS(0, name) + 63, 1, 'x', 0, {"entry 0 has no valid name", NULL}},
		{"bytes after the name", CONS(0, name) + 20, 1, 'x', 0, {"bytes after its name", NULL}},
	};
	int problems = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct field_case *c = &cases[i];
		write_case(g_bytes, g_len, c->off, c->width, c->value);
		problems += check_open_all(c->name, g_case, c->kind == 2 ? &X_CONF_BAD : &X_ALL_BAD,
		                           c->needle, true);
	}
	/* the same damage in a file not closed cleanly (a crash): refused all
	 * the same, and still left as it was (not marked clean by the close of
	 * the refused handle) */
	{
		uint8_t *b = malloc(g_len);

		if (!b)
			tu_die("malloc");
		memcpy(b, g_bytes, g_len);
		((struct mmapq_header *)(void *)b)->state.clean = 0;
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			const struct field_case *c = &cases[i];
			char name[96];

			if (c->off == HOFF(state.clean))
				continue;
			snprintf(name, sizeof(name), "%s, not clean", c->name);
			write_case(b, g_len, c->off, c->width, c->value);
			problems += check_open_all(name, g_case, c->kind == 2 ? &X_CONF_BAD : &X_ALL_BAD,
			                           c->needle, true);
		}
		free(b);
	}
	/* each magic byte */
	for (size_t i = 0; i < 8; i++) {
		const char *nd[] = {"magic", NULL};
		char name[32];
		snprintf(name, sizeof(name), "magic[%zu]", i);
		write_case(g_bytes, g_len, i, 1, g_bytes[i] ^ 0xffu);
		problems += check_open_all(name, g_case, &X_ALL_BAD, nd, true);
	}
	/* text-mode copy: "\r\n" turned into "\n" shifts everything */
	{
		const char *nd[] = {"magic", NULL};
		uint8_t *b = malloc(g_len);
		if (!b)
			tu_die("malloc");
		memcpy(b, g_bytes, 6);
		memcpy(b + 6, g_bytes + 7, g_len - 7);
		put_file(g_case, b, g_len - 1);
		free(b);
		problems += check_open_all("text-mode copy", g_case, &X_ALL_BAD, nd, true);
	}
	EXPECT(problems == 0, "%d problem(s) with damaged header fields (see above)", problems);
}

/* ---- the queue id ------------------------------------------------------------ */

static bool zero_id(const uint8_t *id)
{
	static const uint8_t zero[MMAPQ_ID_SIZE];
	return !memcmp(id, zero, MMAPQ_ID_SIZE);
}

static struct mmapq_status status_as(const char *path, enum mmapq_role role, bool migrate)
{
	struct mmapq_params p = {.path = path, .role = role, .migrate = migrate};
	struct mmapq_status st;
	struct mmapq_error e;
	struct mmapq *q = NULL;

	EXPECT(mmapq_open(&p, &q, &e) == 0, "%s: open as %s: %s", path, role_str(role), e.msg);
	EXPECT_INT(mmapq_status(q, &st), 0);
	mmapq_close(q);
	return st;
}

/* Every new file has an id of its own, at offset 3584, the same to every
 * role and kept by attaching; a version-3 file made before ids has none
 * (all zero), and neither an observer nor a migrating process gives it
 * one (they only read it). */
static void test_queue_id(void)
{
	char *other = tu_path(g_dir, "other.q");
	struct mmapq_status a, b, c;
	uint8_t *bytes;
	size_t len;

	make_queue(other, RING, MMAPQ_FORMAT_INT, RS, 1, 0);
	a = status_as(g_base, MMAPQ_ROLE_OBSERVER, false);
	b = status_as(other, MMAPQ_ROLE_OBSERVER, false);
	EXPECT(!zero_id(a.id), "%s: no queue id", g_base);
	EXPECT(!zero_id(b.id), "%s: no queue id", other);
	EXPECT(memcmp(a.id, b.id, MMAPQ_ID_SIZE), "two queues, one id");
	EXPECT_MEM(a.id, g_bytes + 3584, MMAPQ_ID_SIZE);
	/* the roles see the same id, and attaching does not change it */
	c = status_as(g_base, MMAPQ_ROLE_CONSUMER, false);
	EXPECT_MEM(a.id, c.id, MMAPQ_ID_SIZE);
	c = status_as(g_base, MMAPQ_ROLE_PRODUCER, false);
	EXPECT_MEM(a.id, c.id, MMAPQ_ID_SIZE);
	bytes = slurp(g_base, &len);
	EXPECT_MEM(bytes + HOFF(id), a.id, MMAPQ_ID_SIZE);
	free(bytes);

	/* version 3 without an id: read as it is */
	{
		struct mmapq_record rec = {.seq = 0, .len = 8, .data = &(int64_t){7}};
		struct tu_legacy_consumer cs = {"default", 0};

		unlink(g_case);
		EXPECT_INT(tu_write_legacy_queue(g_case, 3, MMAPQ_FORMAT_INT, 8, 8, 0, &rec, 1, &cs, 1, 0), 0);
		a = status_as(g_case, MMAPQ_ROLE_OBSERVER, false);
		EXPECT(zero_id(a.id), "a version-3 file made before ids shows an id");
		a = status_as(g_case, MMAPQ_ROLE_PRODUCER, true);
		EXPECT(zero_id(a.id), "a producer's migrating attach gave it an id");
		a = status_as(g_case, MMAPQ_ROLE_CONSUMER, true);
		EXPECT(zero_id(a.id), "a consumer's migrating attach gave it an id");
		unlink(g_case);
		EXPECT_INT(tu_write_legacy_queue(g_case, 3, MMAPQ_FORMAT_INT, 8, 8, 0, &rec, 1, &cs, 1,
		                                 0xab), 0);
		a = status_as(g_case, MMAPQ_ROLE_OBSERVER, false);
		EXPECT(a.id[0] == 0xab && a.id[15] == 0xab, "a version-3 file's id is not shown");
	}
	free(other);
}

/* Fields that may hold anything: the file must open (and is not refused). */
static void test_header_free_fields(void)
{
	const struct {
		const char *name;
		size_t off, width;
		uint64_t value;
	} cases[] = {
		{"created_usec", HOFF(created_usec), 8, 0x0123456789abcdefu},
		{"id[0..7]", HOFF(id), 8, 0x0123456789abcdefu},
		{"id[8..15]", HOFF(id) + 8, 8, UINT64_MAX},
		{"mutex lock word", HOFF(lock), 4, 0x7fffff00u},
		{"not_empty.seq", CONS(0, not_empty.seq), 4, 0xffffffffu},
		{"not_empty.waiting", CONS(0, not_empty.waiting), 4, 1},
		{"not_full.waiting", HOFF(not_full.waiting), 4, 7},
		{"producer.dropped", PENT(0, dropped), 8, 99},
		{"producer.published", PENT(0, published), 8, UINT64_MAX},
		/* a producer that died waiting for room leaves both */
		{"producer.blocked_usec", PENT(0, blocked_usec), 8, 1700000000000000u},
		{"producer.blocked_total_usec", PENT(0, blocked_total_usec), 8, UINT64_MAX},
		{"producer.registered_usec", PENT(0, registered_usec), 8, 1},
		/* a free entry may hold what a registration killed midway left */
		{"free producer entry's name", PENT(2, name), 8, 0x4141414141414141u},
		{"free producer entry's counters", PENT(3, attaches), 8, 12345},
		/* a crash in the middle of floor's seqlock leaves gen odd */
		{"floor.gen odd", HOFF(floor.gen), 8, 7},
		{"clean 0", HOFF(state.clean), 4, 0},
		{"salvages", HOFF(state.salvages), 8, 3},
		{"salvage record", HOFF(state.below_from), 8, 12345},
		{"dropped_bytes", HOFF(state.dropped_bytes), 8, UINT64_MAX},
		/* a producer killed as it took a reservation, its state not
		 * stored yet */
		{"claim_byte ahead", PROD(claim_byte), 8, 96},
		/* whoever attaches alone drops the reservations unread (after
		 * a power cut the table's page may be older than the first) */
		{"claim_byte < tail_byte", PROD(claim_byte), 8, 72},
		{"claim_byte > a ring", PROD(claim_byte), 8, 48 + RING + 8},
		{"producer 0 rsv_state 5", PENT(0, rsv_state), 4, 5},
		{"producer 1 rsv open, no bytes", PENT(1, rsv_state), 4, 1},
		/* a reservation with no state means nothing */
		{"producer 1 rsv_to", PENT(1, rsv_to), 8, 12345},
		/* a consumer killed between storing its cursor's byte and seq */
		{"cursor byte ahead", CONS(0, position_byte), 8, 64},
		{"consumer.attaches", CONS(0, attaches), 8, UINT64_MAX},
		{"consumer.registered_usec", CONS(0, registered_usec), 8, 1},
		/* a free entry may hold what a registration killed midway left */
		{"free entry's name", CONS(4, name), 8, 0x4141414141414141u},
		{"free entry's position", CONS(7, position), 8, 12345},
		{"free entry's synced byte", CONS(7, synced_byte), 8, 7},
		{"producer.pid 1", PENT(0, pid), 4, 1},
	};
	int problems = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_case(g_bytes, g_len, cases[i].off, cases[i].width, cases[i].value);
		problems += check_open_all(cases[i].name, g_case, &X_ALL_OK, NULL, false);
	}
	EXPECT(problems == 0, "%d problem(s) (see above)", problems);
}

/* ---- sizes ------------------------------------------------------------- */

static void test_sizes(void)
{
	char gs[32], s[5][32];
	const size_t lens[5] = {0, 100, MMAPQ_HEADER_SIZE, g_len - 1, g_len + 1};
	const char *names[5] = {"empty file", "100 bytes", "header only", "one byte short",
	                        "one byte extra"};
	uint8_t *b = calloc(1, g_len + 1);
	int problems = 0;

	if (!b)
		tu_die("malloc");
	memcpy(b, g_bytes, g_len);
	snprintf(gs, sizeof(gs), "%zu", g_len);
	for (int i = 0; i < 5; i++) {
		/* below a header the expected size is unknown: the message names
		 * the header size instead */
		const char *nd[] = {s[i], lens[i] < MMAPQ_HEADER_SIZE_V3 ? "4096" : gs, NULL};
		snprintf(s[i], sizeof(s[i]), "is %zu bytes", lens[i]);
		put_file(g_case, b, lens[i]);
		problems += check_open_all(names[i], g_case, &X_ALL_BAD, nd, true);
	}
	free(b);
	EXPECT(problems == 0, "%d problem(s) with truncated/extended files (see above)", problems);
}

static void test_garbage(void)
{
	size_t len = g_len * 2;
	uint8_t *b = malloc(len);
	int problems = 0;
	const char *nd[] = {"magic", NULL};

	if (!b)
		tu_die("malloc");
	srandom(12345);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)random();
	put_file(g_case, b, len);
	problems += check_open_all("random bytes", g_case, &X_ALL_BAD, nd, true);
	put_file(g_case, b, g_len);
	problems += check_open_all("random bytes, right size", g_case, &X_ALL_BAD, nd, true);
	/* the right magic and nothing else */
	memcpy(b, MMAPQ_MAGIC, 8);
	put_file(g_case, b, g_len);
	problems += check_open_all("magic + random", g_case, &X_ALL_BAD, NULL, true);
	/* all zero */
	memset(b, 0, len);
	put_file(g_case, b, g_len);
	problems += check_open_all("zeros", g_case, &X_ALL_BAD, nd, true);
	free(b);
	EXPECT(problems == 0, "%d problem(s) with garbage files (see above)", problems);
}

/* ---- configuration mismatch ---------------------------------------------------- */

static void test_config_mismatch(void)
{
	int problems = 0;
	put_file(g_case, g_bytes, g_len);
	{
		const struct expect x = {-EPROTO, -EPROTO, -EPROTO, 256, RS, MMAPQ_FORMAT_INT, 256, 0, 0};
		const char *nd[] = {"size is 128 in the file but 256 in the configuration", NULL};
		problems += check_open_all("size 256 vs 128", g_case, &x, nd, true);
	}
	{
		const struct expect x = {-EPROTO, -EPROTO, -EPROTO, 64, RS, MMAPQ_FORMAT_INT, 64, 0, 0};
		const char *nd[] = {"size is 128 in the file but 64 in the configuration", NULL};
		problems += check_open_all("size 64 vs 128", g_case, &x, nd, true);
	}
	{
		const struct expect x = {-EPROTO, -EPROTO, -EPROTO, RING, 16, MMAPQ_FORMAT_INT, 0, 16, 0};
		const char *nd[] = {"max_record is 8 in the file but 16 in the configuration", NULL};
		problems += check_open_all("max_record 16 vs 8", g_case, &x, nd, true);
	}
	{
		const struct expect x = {-EPROTO, -EPROTO, -EPROTO, RING, RS, MMAPQ_FORMAT_LINE, 0, 0,
		                         MMAPQ_FORMAT_LINE};
		const char *nd[] = {"format", "int in the file", "line in the configuration", NULL};
		problems += check_open_all("format line vs int", g_case, &x, nd, true);
	}
	{
		const struct expect x = {-EPROTO, -EPROTO, -EPROTO, RING, RS, MMAPQ_FORMAT_BINARY, 0, 0,
		                         MMAPQ_FORMAT_BINARY};
		const char *nd[] = {"format", "int in the file", "binary in the configuration", NULL};
		problems += check_open_all("format binary vs int", g_case, &x, nd, true);
	}
	/* invalid parameters are refused before the file is looked at */
	{
		const struct expect x = {-EINVAL, -EINVAL, 0, 96, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
		const char *nd[] = {"size 96 is not a power of two", NULL};
		problems += check_open_all("parameter size 96", g_case, &x, nd, true);
	}
	{
		const struct expect x = {-EINVAL, -EINVAL, 0, RING, 25, MMAPQ_FORMAT_INT, 0, 0, 0};
		const char *nd[] = {"max_record 25 is outside 8..24", NULL};
		problems += check_open_all("parameter max_record 25", g_case, &x, nd, true);
	}
	{
		const struct expect x = {-EINVAL, -EINVAL, 0, RING, RS, 4, 0, 0, 0};
		const char *nd[] = {"unknown record format 4", NULL};
		problems += check_open_all("parameter format 4", g_case, &x, nd, true);
	}
	/* the observer with parameters 0 accepts the file's geometry */
	{
		const struct expect x = {0, 0, 0, RING, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
		problems += check_open_all("matching", g_case, &x, NULL, false);
	}
	/* the roles with all three 0 join the file, whatever its geometry */
	{
		const struct expect x = {0, 0, 0, 0, 0, 0, 0, 0, 0};
		problems += check_open_all("join with no geometry", g_case, &x, NULL, false);
	}
	/* ... but only all three: a role with some of them 0 is refused */
	{
		const struct expect x = {-EINVAL, -EINVAL, 0, RING, 0, MMAPQ_FORMAT_INT, 0, 0, 0};
		const char *nd[] = {"max_record 0 is outside", NULL};
		problems += check_open_all("max_record alone 0", g_case, &x, nd, true);
	}
	/* ... and with no file there is nothing to create it with */
	{
		char *none = tu_path(g_dir, "none.q");
		const struct expect x = {-ENOENT, -ENOENT, -ENOENT, 0, 0, 0, 0, 0, 0};
		const char *nd[] = {"does not exist", NULL};
		struct stat st;

		problems += check_open_all("join a missing file", none, &x, nd, false);
		if (lstat(none, &st) == 0) {
			fprintf(stderr, "FAIL [join a missing file]: %s was created\n", none);
			problems++;
		}
		free(none);
	}
	EXPECT(problems == 0, "%d problem(s) with configuration mismatches (see above)", problems);
}

/* ---- versions 1 to 3 ------------------------------------------------------------ */

static struct mmapq *open_in(const char *path, enum mmapq_role role, uint64_t size, uint32_t rs,
                             uint32_t fmt, bool migrate)
{
	struct mmapq_params p = {.path = path, .role = role, .size = size, .max_record = rs,
	                         .format = fmt, .file_mode = 0600, .migrate = migrate};
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &e);

	EXPECT(r == 0, "open %s (migrate %d): %s (%s)", path, migrate, e.msg, mmapq_strerror(r));
	return q;
}

/* A version-1 to 3 file of 8 slots: records 3 and 4 kept, a consumer
 * "default" at 3 (version 3's table; 1 and 2: their one consumer). */
static uint8_t *legacy_bytes(uint32_t version, uint32_t format, uint32_t rs, size_t *len)
{
	int64_t v[2] = {3, 4};
	const char *line[2] = {"three", "four"};
	struct mmapq_record recs[2];
	struct tu_legacy_consumer cs = {"default", 3};

	for (int i = 0; i < 2; i++)
		recs[i] = format == MMAPQ_FORMAT_INT ?
		          (struct mmapq_record){3 + (uint64_t)i, 8, &v[i]} :
		          (struct mmapq_record){3 + (uint64_t)i, (uint32_t)strlen(line[i]), line[i]};
	unlink(g_case);
	EXPECT_INT(tu_write_legacy_queue(g_case, version, format, 8, rs, 3, recs, 2, &cs, 1, 0x5a), 0);
	return slurp(g_case, len);
}

/*
 * Files of versions 1 to 3 (rings of slots), read only: every field of
 * their headers checked as such, a damaged one refused by every role with
 * what is wrong; a valid one refused by the producer and the consumer
 * with -EPROTO naming `mmapqctl recreate` (untouched), accepted by an
 * observer.  (test_migrate reads their records out.)
 */
static void test_legacy_fields(void)
{
#define V3(f) offsetof(struct mmapq_header_v3, f)
	static const struct {
		uint32_t version, format, rs;
		const char *name;
		size_t off, width;
		uint64_t value;
		const char *needle[3];
	} cases[] = {
		{3, MMAPQ_FORMAT_INT, 8, "v3 format 3", V3(id.format), 4, 3, {"record format 3 is unknown", NULL}},
		{3, MMAPQ_FORMAT_INT, 8, "v3 capacity 0", V3(id.capacity), 4, 0, {"capacity 0 is not a power of two", NULL}},
		{3, MMAPQ_FORMAT_INT, 8, "v3 capacity 12", V3(id.capacity), 4, 12, {"capacity 12 ", NULL}},
		{3, MMAPQ_FORMAT_INT, 8, "v3 capacity 2^25", V3(id.capacity), 4, 1u << 25, {"capacity 33554432", NULL}},
		{3, MMAPQ_FORMAT_INT, 8, "v3 capacity 16", V3(id.capacity), 4, 16, {"header says file size", NULL}},
		{3, MMAPQ_FORMAT_INT, 8, "v3 record size 7", V3(id.record_size), 4, 7, {"record size 7 is outside", NULL}},
		{3, MMAPQ_FORMAT_INT, 8, "v3 record size 2^21", V3(id.record_size), 4, 1u << 21, {"record size 2097152", NULL}},
		{3, MMAPQ_FORMAT_INT, 8, "v3 slot size 24", V3(id.slot_size), 4, 24, {"slot size is 24, expected 16", NULL}},
		{3, MMAPQ_FORMAT_INT, 8, "v3 file size +8", V3(id.file_size), 8, MMAPQ_HEADER_SIZE_V3 + 8 * 16 + 8,
		 {"header says file size 4232", "4224", NULL}},
		{3, MMAPQ_FORMAT_INT, 8, "v3 max_consumers 0", V3(id.max_consumers), 4, 0, {"max_consumers 0 is outside", NULL}},
		{3, MMAPQ_FORMAT_INT, 8, "v3 max_consumers 17", V3(id.max_consumers), 4, 17, {"max_consumers 17", NULL}},
		{3, MMAPQ_FORMAT_INT, 8, "v3 reserved1", V3(id.reserved1), 1, 1, {"reserved", "offset 56", NULL}},
		{3, MMAPQ_FORMAT_INT, 8, "v3 floor reserved", V3(floor_reserved), 1, 1, {"reserved", "offset 264", NULL}},
		{3, MMAPQ_FORMAT_INT, 8, "v3 reserved tail", V3(reserved), 1, 1, {"reserved", "offset 3600", NULL}},
		{3, MMAPQ_FORMAT_LINE, 16, "v3 line slot size 16", V3(id.slot_size), 4, 16, {"slot size is 16, expected 32", NULL}},
		{2, MMAPQ_FORMAT_INT, 8, "v2 slot size 24", V3(id.slot_size), 4, 24, {"slot size is 24, expected 16", NULL}},
		{2, MMAPQ_FORMAT_INT, 8, "v2 consumer reserved", offsetof(struct mmapq_header_v2, consumer.reserved), 1, 1,
		 {"reserved", "offset 312", NULL}},
		/* version 1: int records in slots of 16 + record size */
		{1, MMAPQ_FORMAT_INT, 8, "v1 slot size 16", V3(id.slot_size), 4, 16, {"slot size is 16, expected 24", NULL}},
		{1, MMAPQ_FORMAT_INT, 8, "v1 producer reserved", V3(producer.reserved), 1, 1, {"reserved", "offset 184", NULL}},
	};
#undef V3
	int problems = 0;
	uint8_t *b;
	size_t len;

	for (uint32_t version = 1; version <= 3; version++) {
		for (uint32_t f = MMAPQ_FORMAT_INT; f <= MMAPQ_FORMAT_LINE; f++) {
			char label[64], vs[32];
			const struct expect x = {-EPROTO, -EPROTO, 0, RING, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
			const char *nd[] = {vs, "mmapqctl recreate", "left untouched", NULL};

			snprintf(vs, sizeof(vs), "format version %" PRIu32, version);
			snprintf(label, sizeof(label), "version %" PRIu32 " %s", version, mmapq_format_name(f));
			free(legacy_bytes(version, f, 16, &len));
			/* the roles' geometry is of version 4: only the version
			 * speaks, and the format when it differs */
			{
				struct expect y = x;
				y.fmt = f;
				problems += check_open_all(label, g_case, &y, nd, true);
			}
		}
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = cases[i].value;

		b = legacy_bytes(cases[i].version, cases[i].format, cases[i].rs, &len);
		memcpy(b + cases[i].off, &v, cases[i].width);
		put_file(g_case, b, len);
		free(b);
		problems += check_open_all(cases[i].name, g_case, &X_ALL_BAD, cases[i].needle, true);
	}
	/* a version-3 consumer table entry damaged */
	b = legacy_bytes(3, MMAPQ_FORMAT_INT, 8, &len);
	((struct mmapq_header_v3 *)b)->consumers[0].position = 9;
	put_file(g_case, b, len);
	free(b);
	{
		const struct expect x = {-EBADMSG, -EBADMSG, 0, 0, 0, 0, 0, 0, 0};
		struct res r;
		char why[256];
		/* the observer shows the table; migrating, the roles refuse it */
		if (!open_forked(g_case, MMAPQ_ROLE_OBSERVER, 0, 0, 0, &r, why, sizeof(why)) || r.code != 0) {
			fprintf(stderr, "FAIL [v3 cursor past the tail]: observer: %d %s\n", r.code, why);
			problems++;
		}
		(void)x;
		{
			struct mmapq_params p = {.path = g_case, .role = MMAPQ_ROLE_CONSUMER, .migrate = true};
			struct mmapq_error e;
			struct mmapq *q = NULL;
			int rc = mmapq_open(&p, &q, &e);
			if (rc != -EBADMSG || !strstr(e.msg, "consumer entry 0 is damaged")) {
				fprintf(stderr, "FAIL [v3 cursor past the tail]: migrating consumer: %d \"%s\"\n",
				        rc, e.msg);
				problems++;
			}
			mmapq_close(q);
		}
	}
	/* a slot kept that does not hold its record: refused to migrate */
	b = legacy_bytes(3, MMAPQ_FORMAT_INT, 8, &len);
	{
		uint64_t bad = 11;
		memcpy(b + MMAPQ_HEADER_SIZE_V3 + 4 * 16, &bad, 8);
	}
	put_file(g_case, b, len);
	free(b);
	{
		struct mmapq_params p = {.path = g_case, .role = MMAPQ_ROLE_PRODUCER, .migrate = true};
		struct mmapq_error e;
		struct mmapq *q = NULL;
		int rc = mmapq_open(&p, &q, &e);
		if (rc != -EBADMSG || !strstr(e.msg, "slot 4 does not hold record 4")) {
			fprintf(stderr, "FAIL [v3 slot 4 damaged]: migrating producer: %d \"%s\"\n", rc, e.msg);
			problems++;
		}
		mmapq_close(q);
	}
	EXPECT(problems == 0, "%d problem(s) with files of versions 1 to 3 (see above)", problems);
}

/* ---- mmapq_put_many and mmapq_get_many at their edges ------------------------- */

/* Room, lengths, roles, the end of the ring, and a damaged frame in the
 * middle of a get_many or copy_many (the records before it, then
 * -EBADMSG at it and past it). */
static void test_bulk_edges(void)
{
	char *path = tu_path(g_dir, "bulk.q");
	const uint32_t cap = RING / 16; /* int records in the ring */
	int64_t v[4 * 8], got[2 * 8], gkeep;
	struct mmapq_record r[2 * 8], keep;
	struct mmapq *p, *c;
	uint64_t room;
	uint32_t n;
	int fd;

	for (int i = 0; i < (int)(4 * cap); i++)
		v[i] = 1000 + i;
	unlink(path);
	p = open_in(path, MMAPQ_ROLE_PRODUCER, RING, RS, MMAPQ_FORMAT_INT, false);
	c = open_in(path, MMAPQ_ROLE_CONSUMER, RING, RS, MMAPQ_FORMAT_INT, false);
	EXPECT_INT(mmapq_put_many(c, v, 8, 1), -EPERM);
	EXPECT_INT(mmapq_get_many(p, 0, 1, r), -EPERM);
	EXPECT_INT(mmapq_copy_many(p, 0, 1, got, 8), -EPERM);
	EXPECT_INT(mmapq_reserve(p, 8, 0, &room), 0);
	EXPECT_INT(room, RING);
	EXPECT_INT(mmapq_put_many(p, v, 7, 1), -EMSGSIZE);
	EXPECT_INT(mmapq_put_many(p, v, 16, 1), -EMSGSIZE);
	EXPECT_INT(mmapq_put_many(p, v, 8, 0), 0);
	/* 5 of the 8, then more than the 3 left: 3 are put */
	EXPECT_INT(mmapq_put_many(p, v, 8, 5), 5);
	EXPECT_INT(mmapq_next_seq(p), 5);
	EXPECT_INT(mmapq_put_many(p, v + 5, 8, 10), 3);
	EXPECT_INT(mmapq_put_many(p, v, 8, 1), -ENOBUFS);
	EXPECT_INT(mmapq_pending(p), cap);
	EXPECT_INT(mmapq_publish(p), (int)cap);

	EXPECT_INT(mmapq_available(c, 0, &n), 0);
	EXPECT_INT(n, cap);
	EXPECT_INT(mmapq_get_many(c, cap, 1, r), -ENOENT);
	EXPECT_INT(mmapq_get_many(c, 0, 0, r), 0);
	EXPECT_INT(mmapq_get_many(c, 6, 100, r), 2);
	EXPECT_INT(r[0].seq, 6);
	EXPECT_INT(*(const int64_t *)r[1].data, 1007);
	EXPECT_INT(mmapq_copy_many(c, cap, 1, got, 8), -ENOENT);
	EXPECT_INT(mmapq_copy_many(c, 0, 0, got, 8), 0);
	EXPECT_INT(mmapq_copy_many(c, 1, 100, got, 8), (int)cap - 1);
	for (int i = 0; i < (int)cap - 1; i++)
		EXPECT_INT(got[i], 1001 + i);
	/* an int record is 8 bytes: asked for 4, none is copied */
	EXPECT_INT(mmapq_copy_many(c, 0, 1, got, 4), -EMSGSIZE);
	EXPECT_INT(mmapq_release(c, cap), 0);

	/* across the end of the ring: seq 8..13 at ring offsets 0..80, 6
	 * consumed; seq 14 at 96; then seq 15..21 at 112, 0..80 in one
	 * call, and seq 14..21 read in one call */
	EXPECT_INT(mmapq_reserve(p, 8, 0, &room), 0);
	EXPECT_INT(room, RING);
	EXPECT_INT(mmapq_put_many(p, v + 8, 8, 6), 6);
	EXPECT_INT(mmapq_publish(p), 6);
	EXPECT_INT(mmapq_available(c, 0, &n), 0);
	EXPECT_INT(n, 6);
	EXPECT_INT(mmapq_release(c, 6), 0);
	EXPECT_INT(mmapq_put_many(p, v + 14, 8, 1), 1);
	EXPECT_INT(mmapq_publish(p), 1);
	/* 112 bytes free, 16 of them before the ring's end: the room promised
	 * leaves out what padding there might take (mmapq_reserve(3)), though
	 * 16-byte frames never need any */
	EXPECT_INT(mmapq_reserve(p, 8, 0, &room), 0);
	EXPECT_INT(room, 6 * 16);
	EXPECT_INT(mmapq_put_many(p, v + 15, 8, 7), 7);
	EXPECT_INT(mmapq_publish(p), 7);
	EXPECT_INT(mmapq_available(c, 0, &n), 0);
	EXPECT_INT(n, cap);
	EXPECT_INT(mmapq_get_many(c, 0, 2 * cap, r), (int)cap);
	for (int i = 0; i < (int)cap; i++) {
		EXPECT_INT(r[i].seq, 14 + i);
		EXPECT_INT(r[i].len, 8);
		EXPECT_INT(*(const int64_t *)r[i].data, 1014 + i);
	}
	/* the same values by copy, from every start, across the end */
	for (uint32_t at = 0; at < cap; at++) {
		memset(got, 0, sizeof(got));
		EXPECT_INT(mmapq_copy_many(c, at, 2 * cap, got, 8), (int)(cap - at));
		for (uint32_t i = 0; i < cap - at; i++)
			EXPECT_INT(got[i], 1014 + at + i);
	}

	/* record 19 (at ring offset 48) damaged: get_many stops before it;
	 * at it, -EBADMSG with r untouched.  The consumer reads it anew: a
	 * handle that checked a record does not check it twice. */
	mmapq_close(c);
	c = open_in(path, MMAPQ_ROLE_CONSUMER, RING, RS, MMAPQ_FORMAT_INT, false);
	EXPECT_INT(mmapq_available(c, 0, &n), 0);
	EXPECT_INT(n, cap);
	fd = open(path, O_RDWR | O_CLOEXEC);
	EXPECT(fd >= 0, "%s: %s", path, strerror(errno));
	{
		uint64_t bad = 77;
		EXPECT_INT(pwrite(fd, &bad, sizeof(bad), MMAPQ_HEADER_SIZE + 3 * 16 + 8), 8);
	}
	close(fd);
	EXPECT_INT(mmapq_get_many(c, 0, cap, r), 5);
	keep = r[0];
	EXPECT_INT(mmapq_get_many(c, 5, 2, r), -EBADMSG);
	EXPECT_MEM(&keep, &r[0], sizeof(keep));
	EXPECT_INT(mmapq_get(c, 5, &r[0]), -EBADMSG);
	/* past it nothing is reached: the frames are found by walking, and
	 * a frame whose checksum fails says nothing of where the next is */
	EXPECT_INT(mmapq_get_many(c, 6, cap, r), -EBADMSG);
	EXPECT_INT(mmapq_get(c, 7, &r[0]), -EBADMSG);
	/* copies stop at the same place */
	for (uint32_t at = 0; at < 5; at++)
		EXPECT_INT(mmapq_copy_many(c, at, cap, got, 8), (int)(5 - at));
	gkeep = got[0];
	EXPECT_INT(mmapq_copy_many(c, 5, cap, got, 8), -EBADMSG);
	EXPECT_INT(got[0], gkeep);
	EXPECT_INT(mmapq_copy_many(c, 6, cap, got, 8), -EBADMSG);
	/* and what was read before it is released as ever */
	EXPECT_INT(mmapq_release(c, 5), 0);
	mmapq_close(c);
	mmapq_close(p);
	unlink(path);
	free(path);
}

/* ---- not a queue file at all ----------------------------------------------- */

static void test_special_files(void)
{
	int problems = 0;
	char *d = tu_path(g_dir, "adir");
	char *f = tu_path(g_dir, "afifo");
	char *l = tu_path(g_dir, "alink");
	char *m = tu_path(g_dir, "missing");
	char *target = tu_path(g_dir, "target.q");

	EXPECT_INT(mkdir(d, 0700), 0);
	{
		const struct expect x = {-EISDIR, -EISDIR, -EBADMSG, RING, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
		const char *nd[] = {"directory", NULL};
		problems += check_open_all("directory", d, &x, nd, false);
	}
	EXPECT_INT(mkfifo(f, 0600), 0);
	{
		const char *nd[] = {"FIFO", NULL};
		problems += check_open_all("FIFO", f, &X_ALL_BAD, nd, false);
	}
	put_file(target, g_bytes, g_len);
	EXPECT_INT(symlink(target, l), 0);
	{
		const struct expect x = {-ELOOP, -ELOOP, -ELOOP, RING, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
		const char *nd[] = {"symbolic link", NULL};
		uint8_t *after;
		size_t alen;
		problems += check_open_all("symlink to a valid queue", l, &x, nd, false);
		after = slurp(target, &alen);
		if (first_diff(g_bytes, g_len, after, alen) >= 0) {
			fprintf(stderr, "FAIL [symlink]: the link's target was modified\n");
			problems++;
		}
		free(after);
	}
	{
		/* a dangling link where a new queue would be created: refused too */
		char *dl = tu_path(g_dir, "dangling");
		struct stat st;
		const struct expect x = {-ELOOP, -ELOOP, -ELOOP, RING, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
		const char *nd[] = {"symbolic link", NULL};
		char *nowhere = tu_path(g_dir, "nowhere.q");
		EXPECT_INT(symlink(nowhere, dl), 0);
		problems += check_open_all("dangling symlink", dl, &x, nd, false);
		if (stat(nowhere, &st) == 0) {
			fprintf(stderr, "FAIL [dangling symlink]: a file was created through the link\n");
			problems++;
		}
		free(nowhere);
		free(dl);
	}
	/* a character device: test_char_device */
	{
		struct res r;
		char why[256];
		struct stat st;
		/* the observer never creates */
		if (!open_forked(m, MMAPQ_ROLE_OBSERVER, 0, 0, 0, &r, why, sizeof(why))) {
			fprintf(stderr, "FAIL [missing]: %s\n", why);
			problems++;
		} else if (r.code != -ENOENT || !strstr(r.msg, m) || stat(m, &st) == 0) {
			fprintf(stderr, "FAIL [missing]: observer returned %d \"%s\", expected -ENOENT naming the path\n",
			        r.code, r.msg);
			problems++;
		}
	}
	EXPECT(problems == 0, "%d problem(s) with special files (see above)", problems);
	free(d);
	free(f);
	free(l);
	free(m);
	free(target);
}

/* A character device (/dev/null's numbers, at a path of ours): refused by
 * every role, naming it.  mknod needs root (CAP_MKNOD): skipped without it. */
static void test_char_device(void)
{
	char *c = tu_path(g_dir, "achar");
	const char *nd[] = {"device", NULL};
	int problems;

	if (mknod(c, S_IFCHR | 0600, makedev(1, 3)) < 0)
		tu_skip("mknod %s: %s", c, strerror(errno));
	problems = check_open_all("char device", c, &X_ALL_BAD, nd, false);
	unlink(c);
	free(c);
	EXPECT(problems == 0, "%d problem(s) with a character device (see above)", problems);
}

/* ---- every used header byte flipped in turn ---------------------------------- */

/* Would the pid at off (4 bytes) be negative with byte i flipped? */
static int flip_pid(size_t i, size_t off, const uint8_t *b)
{
	int32_t pid;
	uint8_t tmp[4];

	memcpy(tmp, b + off, 4);
	tmp[i - off] ^= 0xff;
	memcpy(&pid, tmp, 4);
	return pid >= 0 ? 1 : 0;
}

/* The same for a byte of consumer entry e (at byte o of it); entry 0 is
 * registered, the others are free. */
static int flip_consumer(size_t e, size_t o, const uint8_t *b)
{
	const size_t base = HOFF(consumers) + e * sizeof(struct mmapq_consumer);
	const bool reg = e == 0;

	if (e >= 8)
		return 0; /* past max_consumers: reserved */
	if (o >= offsetof(struct mmapq_consumer, pid) && o < offsetof(struct mmapq_consumer, pid) + 4)
		return flip_pid(base + o, base + offsetof(struct mmapq_consumer, pid), b);
	if (o >= offsetof(struct mmapq_consumer, start_usec) && o < offsetof(struct mmapq_consumer, name))
		return 1;
	if (o >= offsetof(struct mmapq_consumer, not_empty) && o < offsetof(struct mmapq_consumer, policy))
		return 1;
	/* the policy: only the defined bits; the pending bit of skipped (its
	 * top byte) asks for a skip to skip_to, 0 here, below floor */
	if (o >= offsetof(struct mmapq_consumer, inactive_timeout) &&
	    o < offsetof(struct mmapq_consumer, consumed) &&
	    o != offsetof(struct mmapq_consumer, skipped) + 7)
		return 1;
	if (!reg && o >= offsetof(struct mmapq_consumer, policy) &&
	    o < offsetof(struct mmapq_consumer, consumed))
		return 1;
	/* what it consumed: a counter, checked by nobody */
	if (o >= offsetof(struct mmapq_consumer, consumed))
		return 1;
	/* a free entry's cursors and name mean nothing */
	if (!reg && o < offsetof(struct mmapq_consumer, state))
		return 1;
	if (!reg && o >= offsetof(struct mmapq_consumer, name) && o < offsetof(struct mmapq_consumer, not_empty))
		return 1;
	return 0;
}

/* The same for a byte of producer entry e (at byte o of it); entry 0 is
 * registered ("default"), the others (of max_producers 4) free. */
static int flip_producer(size_t e, size_t o, const uint8_t *b)
{
	const size_t base = HOFF(producers) + e * sizeof(struct mmapq_producer);

	if (e >= 4)
		return 0; /* past max_producers: reserved */
	if (o >= offsetof(struct mmapq_producer, pid) && o < offsetof(struct mmapq_producer, pid) + 4)
		return flip_pid(base + o, base + offsetof(struct mmapq_producer, pid), b);
	/* the counters and times */
	if (o >= offsetof(struct mmapq_producer, start_usec) && o < offsetof(struct mmapq_producer, name))
		return 1;
	if (o >= offsetof(struct mmapq_producer, blocked_total_usec) &&
	    o < offsetof(struct mmapq_producer, rsv_state))
		return 1;
	/* the reservation, dropped unread by whoever attaches alone (as this
	 * sweep's producer does), and the wait words: anything; the reserved
	 * word: nothing */
	if (o >= offsetof(struct mmapq_producer, rsv_state))
		return o < offsetof(struct mmapq_producer, rsv_reserved0) ||
		       o >= offsetof(struct mmapq_producer, rsv_from);
	/* a free entry's name means nothing */
	if (e != 0 && o >= offsetof(struct mmapq_producer, name) &&
	    o < offsetof(struct mmapq_producer, blocked_total_usec))
		return 1;
	return 0;
}

/* May a flip of header byte i open successfully?  Only the bytes with no
 * meaning to validation: created_usec, the queue id, the mutex (re-initialised by whoever
 * attaches alone), floor's seqlock generation, the salvage record, the cond
 * seq/waiting words, the counters, pids and start and wait times, a free consumer
 * entry's cursors and name.  (A pid flip may also be refused: negative.) */
static int flip_expect(size_t i, const uint8_t *b)
{
	if (i >= HOFF(created_usec) && i < HOFF(created_usec) + 8)
		return 1;
	if (i >= HOFF(lock) && i < HOFF(lock) + 64)
		return 1;
	if (i >= HOFF(floor.gen) && i < HOFF(floor.gen) + 8)
		return 1;
	if (i >= HOFF(state.salvages) && i < HOFF(state) + sizeof(struct mmapq_state))
		return 1;
	if (i >= HOFF(not_full) && i < HOFF(not_full) + 8)
		return 1;
	/* dropped unread by whoever attaches alone */
	if (i >= PROD(claim_byte) && i < PROD(claim_byte) + 8)
		return 1;
	if (i >= HOFF(id) && i < HOFF(id) + MMAPQ_ID_SIZE)
		return 1;
	/* what an entry's output reported: anything, past max_consumers (8)
	 * reserved */
	if (i >= HOFF(outputs) && i < HOFF(reserved))
		return (i - HOFF(outputs)) / sizeof(struct mmapq_output) < 8;
	if (i >= HOFF(consumers) && i < HOFF(id))
		return flip_consumer((i - HOFF(consumers)) / sizeof(struct mmapq_consumer),
		                     (i - HOFF(consumers)) % sizeof(struct mmapq_consumer), b);
	if (i >= HOFF(producers) && i < HOFF(reserved2))
		return flip_producer((i - HOFF(producers)) / sizeof(struct mmapq_producer),
		                     (i - HOFF(producers)) % sizeof(struct mmapq_producer), b);
	return 0;
}

static void test_flip_every_header_byte(void)
{
	int problems = 0, opened = 0, refused = 0;
	uint8_t *b = malloc(g_len);

	if (!b)
		tu_die("malloc");
	for (size_t i = 0; i < HOFF(reserved2); i++) {
		struct res r;
		char why[256];
		int may_open = flip_expect(i, g_bytes);

		memcpy(b, g_bytes, g_len);
		b[i] ^= 0xff;
		put_file(g_case, b, g_len);
		if (!open_forked(g_case, MMAPQ_ROLE_PRODUCER, RING, RS, MMAPQ_FORMAT_INT, &r, why, sizeof(why))) {
			fprintf(stderr, "FAIL [flip byte %zu]: %s\n", i, why);
			dump(g_case, "flip");
			problems++;
			continue;
		}
		if (r.code == 0) {
			opened++;
			if (!may_open) {
				fprintf(stderr, "FAIL [flip byte %zu]: opened a file with a damaged field\n", i);
				dump(g_case, "flip");
				problems++;
			} else if (!open_forked(g_case, MMAPQ_ROLE_OBSERVER, 0, 0, 0, &r, why, sizeof(why)) ||
			           r.code != 0) {
				/* what the producer left is a file every program reads */
				fprintf(stderr, "FAIL [flip byte %zu]: after the producer, an observer: %d (%s)"
				        " \"%s\" %s\n", i, r.code, mmapq_strerror(r.code), r.msg, why);
				dump(g_case, "flip");
				problems++;
			}
			continue;
		}
		refused++;
		if (may_open || (r.code != -EBADMSG && r.code != -EPROTO) || !strstr(r.msg, g_case)) {
			fprintf(stderr, "FAIL [flip byte %zu]: open returned %d (%s) \"%s\", expected %s\n", i,
			        r.code, mmapq_strerror(r.code), r.msg,
			        may_open ? "success" : "-EBADMSG/-EPROTO naming the file");
			dump(g_case, "flip");
			problems++;
			continue;
		}
		{
			size_t alen;
			uint8_t *after = slurp(g_case, &alen);
			long d = first_diff(b, g_len, after, alen);
			if (d >= 0) {
				fprintf(stderr, "FAIL [flip byte %zu]: refused file modified at byte %ld\n", i, d);
				problems++;
			}
			free(after);
		}
	}
	free(b);
	printf("flip sweep: %d bytes opened, %d refused, %d problems\n", opened, refused, problems);
	EXPECT(problems == 0, "%d problem(s) in the header byte sweep (see above)", problems);
}

/* Random damage to several header bytes at once: never a crash or a hang. */
static void test_random_header_damage(void)
{
	int problems = 0;
	uint8_t *b = malloc(g_len);

	if (!b)
		tu_die("malloc");
	srandom(777);
	for (int round = 0; round < 150; round++) {
		struct res r;
		char why[256];
		int nflip = 1 + (int)(random() % 6);
		memcpy(b, g_bytes, g_len);
		for (int k = 0; k < nflip; k++)
			b[random() % HOFF(reserved)] = (uint8_t)random();
		put_file(g_case, b, g_len);
		if (!open_forked(g_case, (enum mmapq_role)(1 + round % 3), round % 3 == 2 ? 0 : RING,
		                 round % 3 == 2 ? 0 : RS, round % 3 == 2 ? 0 : MMAPQ_FORMAT_INT, &r, why,
		                 sizeof(why))) {
			fprintf(stderr, "FAIL [random damage round %d]: %s\n", round, why);
			dump(g_case, "random damage");
			problems++;
		} else if (r.code != 0 && r.code != -EBADMSG && r.code != -EPROTO) {
			fprintf(stderr, "FAIL [random damage round %d]: unexpected %d (%s) \"%s\"\n", round,
			        r.code, mmapq_strerror(r.code), r.msg);
			problems++;
		}
	}
	free(b);
	EXPECT(problems == 0, "%d problem(s) with random header damage (see above)", problems);
}

/* ---- the consumer table: names, and consumers carried over ----------------- */

/* A copy of the base with entry e registered as name at record pos (its
 * frame at 16 bytes a record). */
static void put_with_entry(size_t e, const char *name, uint64_t pos, uint32_t state)
{
	struct mmapq_consumer c;
	uint8_t *b = malloc(g_len);

	if (!b)
		tu_die("malloc");
	memset(&c, 0, sizeof(c));
	memcpy(b, g_bytes, g_len);
	c.position = c.synced = pos;
	c.position_byte = c.synced_byte = pos * 16;
	c.state = state;
	snprintf(c.name, sizeof(c.name), "%s", name);
	memcpy(b + CONS(e, position), &c, sizeof(c));
	put_file(g_case, b, g_len);
	free(b);
}

/*
 * One name in two registered entries (a damaged file) is refused by every
 * role, the observer too, naming the file, the name and both entries, and
 * by mmapq_consumers of a handle opened before the damage; in a free entry
 * it is nothing.  A name starting with '-', which an older version let
 * register, stays valid in a file and removable, but no consumer may take
 * it.
 */
static void test_consumer_names(void)
{
	const char *twice[] = {"consumer 'default' is registered twice", "entries 0 and 1", NULL};
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_params p = {.path = g_case, .role = MMAPQ_ROLE_CONSUMER, .consumer = "-x"};
	struct mmapq_error e;
	struct mmapq *o, *q = NULL;
	int problems = 0, fd;

	put_with_entry(1, "default", 4, MMAPQ_CONSUMER_REGISTERED);
	problems += check_open_all("a name twice", g_case, &X_ALL_BAD, twice, true);
	put_with_entry(1, "default", 4, MMAPQ_CONSUMER_FREE);
	problems += check_open_all("a name twice, once free", g_case, &X_ALL_OK, NULL, false);
	EXPECT(problems == 0, "%d problem(s) with a name registered twice (see above)", problems);

	/* damaged under a handle that is open: mmapq_consumers says so */
	put_file(g_case, g_bytes, g_len);
	o = open_in(g_case, MMAPQ_ROLE_OBSERVER, 0, 0, 0, false);
	EXPECT_INT(mmapq_consumers(o, cs, MMAPQ_CONSUMERS_MAX), 1);
	fd = open(g_case, O_WRONLY | O_CLOEXEC);
	EXPECT(fd >= 0, "%s: %s", g_case, strerror(errno));
	{
		struct mmapq_consumer c;
		memcpy(&c, g_bytes + CONS(0, position), sizeof(c));
		c.position = c.synced = 4;
		c.position_byte = c.synced_byte = 64;
		EXPECT_INT(pwrite(fd, &c, sizeof(c), (off_t)CONS(1, position)), (ssize_t)sizeof(c));
	}
	close(fd);
	EXPECT_INT(mmapq_consumers(o, cs, MMAPQ_CONSUMERS_MAX), -EBADMSG);
	mmapq_close(o);

	/* '-x', registered by an older version */
	EXPECT(!mmapq_consumer_name_valid("-x"), "'-x' valid");
	EXPECT(!mmapq_consumer_name_valid("-"), "'-' valid");
	EXPECT(mmapq_consumer_name_valid("x-"), "'x-' not valid");
	EXPECT(mmapq_consumer_name_valid("a.b@c_d-e"), "'a.b@c_d-e' not valid");
	put_with_entry(1, "-x", 4, MMAPQ_CONSUMER_REGISTERED);
	problems += check_open_all("a name starting with '-'", g_case, &X_ALL_OK, NULL, false);
	EXPECT(problems == 0, "%d problem(s) with a name starting with '-' (see above)", problems);
	o = open_in(g_case, MMAPQ_ROLE_OBSERVER, 0, 0, 0, false);
	EXPECT_INT(mmapq_consumers(o, cs, MMAPQ_CONSUMERS_MAX), 2);
	EXPECT_STR(cs[1].name, "-x");
	EXPECT_INT(cs[1].position, 4);
	mmapq_close(o);
	EXPECT_INT(mmapq_open(&p, &q, &e), -EINVAL);
	EXPECT(!q, "a handle after a failed open");
	EXPECT(strstr(e.msg, "'-x' is not a consumer name"), "'%s'", e.msg);
	EXPECT(strstr(e.msg, "not starting with '-'"), "'%s'", e.msg);
	EXPECT_INT(mmapq_consumer_remove(&p, &e), 1); /* tail 5, it was at 4 */
	EXPECT_INT(mmapq_consumer_remove(&p, &e), -ENOENT);
	p.consumer = "a/b";
	EXPECT_INT(mmapq_consumer_remove(&p, &e), -EINVAL);
	EXPECT(strstr(e.msg, "'a/b' is not a consumer name"), "'%s'", e.msg);
	EXPECT_INT(tu_queue_status(g_case).consumers, 1);
}

/* The registered consumers of q. */
static int consumers_of(struct mmapq *q, struct mmapq_consumer_status *cs)
{
	return mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX);
}

/*
 * mmapq_consumers_restore (what `mmapqctl recreate` carries consumers
 * over with): names, cursors and counters into the lowest free entries,
 * floor raised to the slowest; all or nothing, every refusal leaving the
 * table as it was; a restored consumer attaches where it was.
 */
static void test_consumers_restore(void)
{
	char *path = tu_path(g_dir, "restore.q");
	struct mmapq_params pp = {.path = path, .role = MMAPQ_ROLE_PRODUCER, .size = RING,
	                          .max_record = RS, .format = MMAPQ_FORMAT_INT, .file_mode = 0600,
	                          .max_consumers = 3};
	struct mmapq_consumer_status in[4] = {
		{.name = "b", .position = 3, .pid = 4242, .start_usec = 11, .attach_position = 2,
		 .registered_usec = 22, .recoveries = 3, .attaches = 7, .index = 9, .lag = 99,
		 .attached = true},
		{.name = "-old", .position = 1, .pid = 0, .registered_usec = 33, .attaches = 1},
		{.name = "c", .position = 4, .pid = 17, .attaches = 2},
		{.name = "d", .position = 4},
	}, bad, cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_error e;
	struct mmapq_status st;
	struct mmapq *q, *o, *c;
	uint64_t room;
	uint32_t n;

	unlink(path);
	EXPECT_INT(mmapq_open(&pp, &q, &e), 0);
	EXPECT_INT(mmapq_reserve(q, 8, 0, &room), 0);
	for (int64_t v = 0; v < 4; v++)
		EXPECT_INT(mmapq_put(q, &v, sizeof(v)), 0);
	EXPECT_INT(mmapq_publish(q), 4);

	/* refused, nothing registered */
	o = open_in(path, MMAPQ_ROLE_OBSERVER, 0, 0, 0, false);
	EXPECT_INT(mmapq_consumers_restore(o, in, 1), -EPERM);
	bad = in[0];
	snprintf(bad.name, sizeof(bad.name), "a/b");
	EXPECT_INT(mmapq_consumers_restore(q, &bad, 1), -EINVAL);
	memset(bad.name, 'x', sizeof(bad.name)); /* no NUL */
	EXPECT_INT(mmapq_consumers_restore(q, &bad, 1), -EINVAL);
	bad = in[0];
	bad.pid = -1;
	EXPECT_INT(mmapq_consumers_restore(q, &bad, 1), -EINVAL);
	{
		struct mmapq_consumer_status two[2] = {in[0], in[0]};
		two[1].position = 4;
		EXPECT_INT(mmapq_consumers_restore(q, two, 2), -EEXIST);
	}
	bad = in[0];
	bad.position = 5; /* past the tail */
	EXPECT_INT(mmapq_consumers_restore(q, &bad, 1), -ERANGE);
	EXPECT_INT(mmapq_consumers_restore(q, in, 4), -ENOSPC); /* 4 into 3 */
	EXPECT_INT(consumers_of(o, cs), 0);
	EXPECT_INT(mmapq_status(o, &st), 0);
	EXPECT_INT(st.head, 0);

	/* carried: in the order given, with their counters */
	EXPECT_INT(mmapq_consumers_restore(q, in, 3), 0);
	EXPECT_INT(consumers_of(o, cs), 3);
	for (uint32_t i = 0; i < 3; i++) {
		EXPECT_STR(cs[i].name, in[i].name);
		EXPECT_INT(cs[i].index, i);
		EXPECT_INT(cs[i].position, in[i].position);
		EXPECT_INT(cs[i].lag, 4 - in[i].position);
		EXPECT_INT(cs[i].pid, in[i].pid);
		EXPECT(!cs[i].attached, "%s attached", cs[i].name);
		EXPECT_INT(cs[i].start_usec, in[i].start_usec);
		EXPECT_INT(cs[i].attach_position, in[i].attach_position);
		EXPECT_INT(cs[i].registered_usec, in[i].registered_usec);
		EXPECT_INT(cs[i].recoveries, in[i].recoveries);
		EXPECT_INT(cs[i].attaches, in[i].attaches);
	}
	EXPECT_INT(mmapq_status(o, &st), 0);
	EXPECT_INT(st.head, 1); /* the slowest, "-old" */
	/* the producer sees the room that made: records 1..3 consumed by
	 * all, 80 bytes free, of which what padding may waste (16: the tail
	 * is 64 bytes from the ring's end) is not promised */
	EXPECT_INT(mmapq_reserve(q, 8, 0, &room), 0);
	EXPECT_INT(room, 64);
	{
		/* and the records' bytes are where the cursors say */
		struct mmapq_status s2;
		EXPECT_INT(mmapq_status(q, &s2), 0);
		EXPECT_INT(s2.used_bytes, 3 * 16);
	}
	EXPECT_INT(mmapq_consumers_restore(q, &in[0], 1), -EEXIST);
	EXPECT_INT(mmapq_consumers_restore(q, &in[3], 1), -ENOSPC);
	EXPECT_INT(mmapq_consumers_restore(q, NULL, 0), 0);
	mmapq_close(q);

	/* "b" goes on from its cursor */
	pp.role = MMAPQ_ROLE_CONSUMER;
	pp.consumer = "b";
	EXPECT_INT(mmapq_open(&pp, &c, &e), 0);
	EXPECT_INT(mmapq_available(c, 0, &n), 0);
	EXPECT_INT(n, 1);
	mmapq_close(c);
	EXPECT_INT(consumers_of(o, cs), 3);
	EXPECT_INT(cs[0].attaches, 8);
	mmapq_close(o);

	/* a file opened to migrate it is only read */
	free(legacy_bytes(1, MMAPQ_FORMAT_INT, 8, &(size_t){0}));
	q = open_in(g_case, MMAPQ_ROLE_PRODUCER, 0, 0, 0, true);
	EXPECT_INT(mmapq_consumers_restore(q, &in[3], 1), -EROFS);
	mmapq_close(q);
	free(path);
}

/* The producers an observer lists, checked against want[0..n) field by
 * field (name, index, last pid and every counter carried). */
static void expect_producers(struct mmapq *o, const struct mmapq_producer_status *want, int n)
{
	struct mmapq_producer_status ps[MMAPQ_PRODUCERS_MAX];

	EXPECT_INT(mmapq_producers(o, ps, MMAPQ_PRODUCERS_MAX), n);
	for (int i = 0; i < n; i++) {
		EXPECT_STR(ps[i].name, want[i].name);
		EXPECT_INT(ps[i].index, want[i].index);
		EXPECT_INT(ps[i].last_pid, want[i].last_pid);
		EXPECT_INT(ps[i].start_usec, want[i].start_usec);
		EXPECT_INT(ps[i].registered_usec, want[i].registered_usec);
		EXPECT_INT(ps[i].published, want[i].published);
		EXPECT_INT(ps[i].dropped, want[i].dropped);
		EXPECT_INT(ps[i].bad_input, want[i].bad_input);
		EXPECT_INT(ps[i].recoveries, want[i].recoveries);
		EXPECT_INT(ps[i].attaches, want[i].attaches);
		EXPECT_INT(ps[i].blocked_total_usec, want[i].blocked_total_usec);
		EXPECT_INT(ps[i].blocked_since_usec, 0);
	}
}

/*
 * mmapq_producers_restore (what `mmapqctl recreate` carries the producer
 * table over with): names and counters into the lowest free entries, the
 * caller's own entry taking what is carried under its name; all or
 * nothing, every refusal leaving the table and its counters as they were;
 * a restored producer attaches to its entry and counts on from there.
 */
static void test_producers_restore(void)
{
	char *path = tu_path(g_dir, "prestore.q");
	struct mmapq_params pp = {.path = path, .role = MMAPQ_ROLE_PRODUCER, .size = RING,
	                          .max_record = RS, .format = MMAPQ_FORMAT_INT, .file_mode = 0600,
	                          .max_consumers = 2, .max_producers = 3, .producer = "self"};
	struct mmapq_producer_status in[3] = {
		{.name = "self", .last_pid = 4242, .pid = 4242, .attached = true, .start_usec = 11,
		 .registered_usec = 22, .published = 1000, .dropped = 3, .bad_input = 4,
		 .recoveries = 5, .attaches = 6, .blocked_total_usec = 7, .blocked_since_usec = 8,
		 .index = 9},
		{.name = "old", .last_pid = 17, .start_usec = 33, .registered_usec = 44,
		 .published = 2000, .attaches = 1, .blocked_total_usec = 55},
		{.name = "c", .published = 1},
	}, bad, before[2], after[3];
	struct mmapq_producer_status ps[MMAPQ_PRODUCERS_MAX];
	struct mmapq_error e;
	struct mmapq *q, *o, *other;
	uint64_t room;
	int64_t v = 1;

	unlink(path);
	EXPECT_INT(mmapq_open(&pp, &q, &e), 0);
	EXPECT_INT(mmapq_reserve(q, 8, 0, &room), 0);
	for (int i = 0; i < 4; i++)
		EXPECT_INT(mmapq_put(q, &v, sizeof(v)), 0);
	EXPECT_INT(mmapq_publish(q), 4);
	/* another name registered, then gone: its entry stays */
	pp.producer = "other";
	EXPECT_INT(mmapq_open(&pp, &other, &e), 0);
	mmapq_close(other);
	o = open_in(path, MMAPQ_ROLE_OBSERVER, 0, 0, 0, false);
	EXPECT_INT(mmapq_producers(o, ps, MMAPQ_PRODUCERS_MAX), 2);
	memcpy(before, ps, sizeof(before));
	EXPECT_INT(before[0].published, 4);
	EXPECT_INT(before[0].attaches, 1);

	/* refused, nothing registered, no counter changed */
	EXPECT_INT(mmapq_producers_restore(o, in, 1), -EPERM);
	EXPECT_INT(mmapq_producers_restore(q, NULL, 1), -EINVAL);
	bad = in[1];
	snprintf(bad.name, sizeof(bad.name), "a/b");
	EXPECT_INT(mmapq_producers_restore(q, &bad, 1), -EINVAL);
	memset(bad.name, 'x', sizeof(bad.name)); /* no NUL */
	EXPECT_INT(mmapq_producers_restore(q, &bad, 1), -EINVAL);
	/* a producer table holding it would be refused as damaged */
	snprintf(bad.name, sizeof(bad.name), "-old");
	EXPECT_INT(mmapq_producers_restore(q, &bad, 1), -EINVAL);
	bad = in[1];
	bad.last_pid = -1;
	EXPECT_INT(mmapq_producers_restore(q, &bad, 1), -EINVAL);
	{
		struct mmapq_producer_status two[2] = {in[1], in[1]};
		EXPECT_INT(mmapq_producers_restore(q, two, 2), -EEXIST);
	}
	/* registered by another than the caller; with the caller's own
	 * before it, which must not have been written either */
	bad = in[1];
	snprintf(bad.name, sizeof(bad.name), "other");
	{
		struct mmapq_producer_status two[2] = {in[0], bad};
		EXPECT_INT(mmapq_producers_restore(q, two, 2), -EEXIST);
	}
	/* one free entry: two new names do not fit, the caller's own
	 * needing none */
	EXPECT_INT(mmapq_producers_restore(q, in, 3), -ENOSPC);
	EXPECT_INT(mmapq_producers_restore(q, &in[1], 2), -ENOSPC);
	EXPECT_INT(mmapq_producers_restore(q, in, MMAPQ_PRODUCERS_MAX + 1), -ENOSPC);
	expect_producers(o, before, 2);

	/* carried: the caller's own entry takes its counters in place of
	 * what it counted here, the new name the lowest free entry */
	EXPECT_INT(mmapq_producers_restore(q, in, 2), 0);
	after[0] = in[0];
	after[0].index = 0;
	after[1] = before[1];
	after[2] = in[1];
	after[2].index = 2;
	expect_producers(o, after, 3);
	EXPECT_INT(mmapq_producers(o, ps, MMAPQ_PRODUCERS_MAX), 3);
	EXPECT(ps[0].attached, "the caller's own entry is still attached");
	EXPECT(!ps[2].attached && ps[2].pid == 0, "old is not attached (pid %d)", (int)ps[2].pid);
	/* the caller goes on counting from what was carried */
	EXPECT_INT(mmapq_reserve(q, 8, 0, &room), 0);
	EXPECT_INT(mmapq_put(q, &v, sizeof(v)), 0);
	EXPECT_INT(mmapq_publish(q), 1);
	after[0].published++;
	expect_producers(o, after, 3);
	EXPECT_INT(mmapq_producers_restore(q, &in[1], 1), -EEXIST);
	EXPECT_INT(mmapq_producers_restore(q, &in[2], 1), -ENOSPC);
	EXPECT_INT(mmapq_producers_restore(q, NULL, 0), 0);
	mmapq_close(q);

	/* "self" attaches to its entry again and counts on */
	pp.producer = "self";
	EXPECT_INT(mmapq_open(&pp, &q, &e), 0);
	mmapq_close(q);
	after[0].attaches++;
	after[0].last_pid = (int32_t)getpid();
	EXPECT_INT(mmapq_producers(o, ps, MMAPQ_PRODUCERS_MAX), 3);
	EXPECT_INT(ps[0].attaches, after[0].attaches);
	EXPECT_INT(ps[0].last_pid, after[0].last_pid);
	EXPECT_INT(ps[0].published, after[0].published);
	EXPECT_INT(ps[0].registered_usec, in[0].registered_usec);
	mmapq_close(o);

	/* a file opened to migrate it is only read */
	free(legacy_bytes(1, MMAPQ_FORMAT_INT, 8, &(size_t){0}));
	q = open_in(g_case, MMAPQ_ROLE_PRODUCER, 0, 0, 0, true);
	EXPECT_INT(mmapq_producers_restore(q, &in[2], 1), -EROFS);
	mmapq_close(q);
	free(path);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"base_valid", test_base_valid},
		{"header_fields", test_header_fields},
		{"header_free_fields", test_header_free_fields},
		{"consumer_names", test_consumer_names},
		{"consumers_restore", test_consumers_restore},
		{"producers_restore", test_producers_restore},
		{"sizes", test_sizes},
		{"garbage", test_garbage},
		{"config_mismatch", test_config_mismatch},
		{"legacy_fields", test_legacy_fields},
		{"bulk_edges", test_bulk_edges},
		{"special_files", test_special_files},
		{"char_device", test_char_device},
		{"flip_every_header_byte", test_flip_every_header_byte},
		{"queue_id", test_queue_id},
		{"random_header_damage", test_random_header_damage},
	};

	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
