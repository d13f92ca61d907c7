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
 * the static header (magic, byte order, version, header size, format,
 * capacity, record size, slot size, file size against the geometry and the
 * real size, reserved bytes, pids), the configuration, the positions, the
 * consumer table and every unconsumed slot.  The observer takes no locks: it
 * validates the same static fields, the positions and the consumer table,
 * but not the slots (they may be rewritten under it), and it accepts any
 * geometry when its parameters are 0.
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

#define CAP 8u
#define RS 8u
#define OPEN_TIMEOUT_MS 5000

/* A failure shows no queue state: the files here are damaged on purpose,
 * and only forked children open them. */
#define EXPECT(cond, ...) TU_EXPECT(NULL, cond, __VA_ARGS__)
#define EXPECT_INT(a, b) TU_EXPECT_INT(NULL, a, b)
#define EXPECT_STR(a, b) TU_EXPECT_STR(NULL, a, b)
#define EXPECT_MEM(a, b, n) TU_EXPECT_MEM(NULL, a, b, n)

static char *g_dir;       /* scratch directory */
static char *g_base;      /* a valid INT queue: head 3, tail 5 */
static uint8_t *g_bytes;  /* its bytes */
static size_t g_len;
static char *g_lbase;     /* a valid LINE queue (record_size 16): head 1, tail 3 */
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
static bool open_forked(const char *path, enum mmapq_role role, uint32_t cap, uint32_t rs,
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
		struct mmapq_params p = {.path = path, .role = role, .capacity = cap,
		                         .record_size = rs, .format = fmt, .file_mode = 0600};
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
		        ": version %" PRIu32 " capacity %" PRIu32 " record_size %" PRIu32
		        " slot_size %" PRIu32 " file_size %" PRIu64 " head %" PRIu64 " tail %" PRIu64
		        " lockword 0x%08" PRIx32 " not_empty(seq %" PRIu32 " waiting %" PRIu32
		        ") not_full(seq %" PRIu32 " waiting %" PRIu32 ")",
		        h.version, h.capacity, h.record_size, h.slot_size, h.file_size,
		        h.floor.floor, h.producer.position, *(uint32_t *)h.lock.bytes,
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
	uint32_t cap, rs, fmt;            /* parameters for producer/consumer */
	uint32_t ocap, ors, ofmt;         /* parameters for the observer */
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

		if (!open_forked(path, roles[i], obs ? x->ocap : x->cap, obs ? x->ors : x->rs,
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

static const struct expect X_ALL_BAD = {-EBADMSG, -EBADMSG, -EBADMSG, CAP, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
static const struct expect X_DYN_BAD = {-EBADMSG, -EBADMSG, 0, CAP, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
static const struct expect X_ALL_OK = {0, 0, 0, CAP, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
static const struct expect X_CONF_BAD = {-EPROTO, -EPROTO, 0, CAP, RS, MMAPQ_FORMAT_INT, 0, 0, 0};

/* ---- fixtures ---------------------------------------------------------- */

static void make_queue(const char *path, uint32_t fmt, uint32_t rs, uint32_t nput, uint32_t nrel)
{
	struct mmapq_params p = {.path = path, .role = MMAPQ_ROLE_PRODUCER, .capacity = CAP,
	                         .record_size = rs, .format = fmt, .file_mode = 0600};
	struct mmapq_error e;
	struct mmapq *q = NULL;
	uint32_t n;
	int r;

	r = mmapq_open(&p, &q, &e);
	EXPECT(r == 0, "create %s: %s", path, e.msg);
	EXPECT_INT(mmapq_reserve(q, 0, &n), 0);
	EXPECT(n >= nput, "%u free, %u to put", n, nput);
	for (uint32_t i = 0; i < nput; i++) {
		int64_t v = (int64_t)i;
		char line[16];
		memset(line, 'a' + (int)i, sizeof(line));
		if (fmt == MMAPQ_FORMAT_INT)
			EXPECT_INT(mmapq_put(q, &v, sizeof(v)), 0);
		else
			EXPECT_INT(mmapq_put(q, line, 1 + i % rs), 0);
	}
	EXPECT_INT(mmapq_publish(q), (int)nput);
	mmapq_close(q);

	p.role = MMAPQ_ROLE_CONSUMER;
	r = mmapq_open(&p, &q, &e);
	EXPECT(r == 0, "consumer %s: %s", path, e.msg);
	EXPECT_INT(mmapq_available(q, 0, &n), 0);
	EXPECT_INT(n, nput);
	EXPECT_INT(mmapq_release(q, nrel), 0);
	mmapq_close(q);
}

/* Each case: the valid files it damages copies of. */
static void setup(void)
{
	g_dir = tu_mkdtemp("format");
	g_base = tu_path(g_dir, "base.q");
	g_lbase = tu_path(g_dir, "lbase.q");
	g_case = tu_path(g_dir, "case.q");
	make_queue(g_base, MMAPQ_FORMAT_INT, RS, 5, 3);
	make_queue(g_lbase, MMAPQ_FORMAT_LINE, 16, 3, 1);
	g_bytes = slurp(g_base, &g_len);
	g_lbytes = slurp(g_lbase, &g_llen);
	EXPECT(g_len == MMAPQ_HEADER_SIZE + CAP * mmapq_slot_size(MMAPQ_FORMAT_INT, RS) &&
	       g_len == MMAPQ_HEADER_SIZE + CAP * sizeof(struct mmapq_int_slot),
	       "base file is %zu bytes", g_len);
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
	struct expect lx = {0, 0, 0, CAP, 16, MMAPQ_FORMAT_LINE, 0, 0, 0};
	problems += check_open_all("base LINE", g_lbase, &lx, NULL, false);
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
	int kind;               /* 0: all roles -EBADMSG; 1: observer accepts (slots);
	                           2: the roles -EPROTO, the observer accepts */
	const char *needle[3];  /* besides the path */
};

#define HOFF(f) offsetof(struct mmapq_header, f)
#define PROD(f) (HOFF(producer) + offsetof(struct mmapq_side, f))
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
		{"version 4", HOFF(version), 4, 4, 0, {"version is 4", NULL}},
		/* version 1 with version 2's int slots: the sizes do not add up */
		{"version 1", HOFF(version), 4, 1, 0, {"slot size is 16", "expected 24", NULL}},
		{"header_size 8192", HOFF(header_size), 4, 8192, 0, {"8192", "4096", NULL}},
		{"header_size 0", HOFF(header_size), 4, 0, 0, {"header size is 0", NULL}},
		{"byte_order swapped", HOFF(byte_order), 4, 0x04030201, 0, {bo, NULL}},
		{"byte_order 0", HOFF(byte_order), 4, 0, 0, {"0x00000000", NULL}},
		{"format 0", HOFF(format), 4, 0, 0, {"format 0", NULL}},
		{"format 3", HOFF(format), 4, 3, 0, {"format 3", NULL}},
		{"capacity 0", HOFF(capacity), 4, 0, 0, {"capacity 0", NULL}},
		{"capacity 1", HOFF(capacity), 4, 1, 0, {"capacity 1 ", NULL}},
		{"capacity 3", HOFF(capacity), 4, 3, 0, {"capacity 3 ", NULL}},
		{"capacity 12", HOFF(capacity), 4, 12, 0, {"capacity 12 ", NULL}},
		{"capacity 2^25", HOFF(capacity), 4, 1u << 25, 0, {"capacity 33554432", NULL}},
		{"capacity 2^31", HOFF(capacity), 4, 1u << 31, 0, {"capacity 2147483648", NULL}},
		/* a valid power of two that disagrees with the sizes */
		{"capacity 16", HOFF(capacity), 4, 16, 0, {gs, "4352", NULL}},
		{"record_size 0", HOFF(record_size), 4, 0, 0, {"record size 0 ", NULL}},
		{"record_size 7", HOFF(record_size), 4, 7, 0, {"record size 7 ", NULL}},
		{"record_size 2^21", HOFF(record_size), 4, 1u << 21, 0, {"record size 2097152", NULL}},
		/* an int slot is 16 bytes whatever record_size says: only the
		 * configuration disagrees */
		{"record_size 16", HOFF(record_size), 4, 16, 2, {"record_size is 16 in the file", NULL}},
		{"slot_size 32", HOFF(slot_size), 4, 32, 0, {"slot size is 32", "expected 16", NULL}},
		{"slot_size 24", HOFF(slot_size), 4, 24, 0, {"slot size is 24", "expected 16", NULL}},
		{"slot_size 0", HOFF(slot_size), 4, 0, 0, {"slot size is 0", NULL}},
		{"max_consumers 0", HOFF(max_consumers), 4, 0, 0, {"max_consumers 0 is outside", NULL}},
		{"max_consumers 17", HOFF(max_consumers), 4, 17, 0, {"max_consumers 17 is outside", NULL}},
		{"max_consumers high", HOFF(max_consumers), 4, 0x80000008u, 0, {"max_consumers 2147483656", NULL}},
		{"file_size +8", HOFF(file_size), 8, good_size + 8, 0, {gs8, gs, NULL}},
		{"file_size 0", HOFF(file_size), 8, 0, 0, {"file size 0", gs, NULL}},
		{"file_size huge", HOFF(file_size), 8, UINT64_MAX, 0, {"18446744073709551615", NULL}},
		{"reserved1[0]", HOFF(reserved1), 1, 1, 0, {"reserved", "offset 56", NULL}},
		{"reserved1[7]", HOFF(reserved1) + 7, 1, 0x80, 0, {"reserved", "offset 63", NULL}},
		{"producer.reserved0", PROD(reserved0), 4, 5, 0, {"reserved", "offset 140", NULL}},
		{"producer.reserved[0]", PROD(reserved), 1, 1, 0, {"reserved", "offset 184", NULL}},
		{"producer.reserved[71]", PROD(reserved) + 71, 1, 1, 0, {"reserved", "offset 255", NULL}},
		{"floor.reserved[0]", HOFF(floor.reserved), 1, 1, 0, {"reserved", "offset 264", NULL}},
		{"floor.reserved[119]", HOFF(floor.reserved) + 119, 1, 0xff, 0, {"reserved", "offset 383", NULL}},
		{"reserved2[0]", HOFF(reserved2), 1, 1, 0, {"reserved", "offset 384", NULL}},
		{"reserved2[63]", HOFF(reserved2) + 63, 1, 1, 0, {"reserved", "offset 447", NULL}},
		{"not_full.reserved[0]", HOFF(not_full.reserved), 1, 1, 0, {"reserved", "offset 456", NULL}},
		{"not_full.reserved[55]", HOFF(not_full.reserved) + 55, 1, 1, 0, {"reserved", "offset 511", NULL}},
		{"consumer 0 reserved0", CONS(0, reserved0), 8, 1, 0, {"reserved", "offset 568", NULL}},
		{"consumer 3 not_empty.reserved", CONS(3, not_empty.reserved), 1, 1, 0, {"reserved", "offset 1224", NULL}},
		/* entries past max_consumers (8) are reserved whole */
		{"consumer 8 state", CONS(8, state), 4, 1, 0, {"reserved", "offset 2056", NULL}},
		{"consumer 15 name[63]", CONS(15, name) + 63, 1, 'x', 0, {"reserved", "offset 3519", NULL}},
		{"reserved[0]", HOFF(reserved), 1, 1, 0, {"reserved", "offset 3600", NULL}},
		{"reserved[495]", HOFF(reserved) + 495, 1, 0xff, 0, {"reserved", "offset 4095", NULL}},
		{"producer.pid -1", PROD(pid), 4, 0xffffffffu, 0, {"-1", "pid", NULL}},
		{"producer.pid INT_MIN", PROD(pid), 4, 0x80000000u, 0, {"-2147483648", NULL}},
		{"consumer 0 pid -7", CONS(0, pid), 4, (uint32_t)-7, 0, {"-7", "consumer entry 0", NULL}},
		{"consumer 5 pid -1", CONS(5, pid), 4, (uint32_t)-1, 0, {"-1", "consumer entry 5", NULL}},
		/* positions: head (floor) 3, tail 5 in the base, consumer "default" at 3 */
		{"head > tail", HOFF(floor.floor), 8, 6, 0, {"head 6", "tail 5", NULL}},
		{"head huge", HOFF(floor.floor), 8, UINT64_MAX, 0, {"head 18446744073709551615", NULL}},
		/* the consumer table: every role checks it, the observer too */
		{"cursor < floor", CONS(0, position), 8, 2, 0, {"'default' is at 2", "[3, 5]", NULL}},
		{"cursor > tail", CONS(0, position), 8, 6, 0, {"'default' is at 6", NULL}},
		{"state 2", CONS(0, state), 4, 2, 0, {"entry 0 has state 2", NULL}},
		{"state of a free entry", CONS(6, state), 4, 0xff, 0, {"entry 6 has state 255", NULL}},
		{"name empty", CONS(0, name), 1, 0, 0, {"entry 0 has no valid name", NULL}},
		{"name with '/'", CONS(0, name) + 1, 1, '/', 0, {"entry 0 has no valid name", NULL}},
		{"name unterminated", CONS(0, name) + 63, 1, 'x', 0, {"entry 0 has no valid name", NULL}},
		{"bytes after the name", CONS(0, name) + 20, 1, 'x', 0, {"bytes after its name", NULL}},
		{"tail < head", PROD(position), 8, 2, 0, {"head 3", "tail 2", NULL}},
		{"tail - head > capacity", PROD(position), 8, 3 + CAP + 1, 0, {"tail 12", "capacity 8", NULL}},
	};
	int problems = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct field_case *c = &cases[i];
		write_case(g_bytes, g_len, c->off, c->width, c->value);
		problems += check_open_all(c->name, g_case, c->kind == 2 ? &X_CONF_BAD : c->kind ? &X_DYN_BAD :
		                           &X_ALL_BAD, c->needle, true);
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

/* Every new file has an id of its own, at offset 3584; a file without one
 * (all zero: made before ids, or a version-2 file upgraded in place) gets
 * one from the first producer or consumer, on disk at once, and keeps it;
 * observers and migrate (recreate) only read; a version-2 file has none. */
static void test_queue_id(void)
{
	char *other = tu_path(g_dir, "other.q");
	struct mmapq_status a, b, c;
	uint8_t *bytes;
	size_t len;

	make_queue(other, MMAPQ_FORMAT_INT, RS, 1, 0);
	a = status_as(g_base, MMAPQ_ROLE_OBSERVER, false);
	b = status_as(other, MMAPQ_ROLE_OBSERVER, false);
	EXPECT(!zero_id(a.id), "%s: no queue id", g_base);
	EXPECT(!zero_id(b.id), "%s: no queue id", other);
	EXPECT(memcmp(a.id, b.id, MMAPQ_ID_SIZE), "two queues, one id");
	EXPECT_MEM(a.id, g_bytes + 3584, MMAPQ_ID_SIZE);
	/* the roles see the same id, and attaching does not change it */
	c = status_as(g_base, MMAPQ_ROLE_CONSUMER, false);
	EXPECT_MEM(a.id, c.id, MMAPQ_ID_SIZE);

	/* a file without one */
	bytes = malloc(g_len);
	if (!bytes)
		tu_die("malloc");
	memcpy(bytes, g_bytes, g_len);
	memset(bytes + HOFF(id), 0, MMAPQ_ID_SIZE);
	put_file(g_case, bytes, g_len);
	free(bytes);
	a = status_as(g_case, MMAPQ_ROLE_OBSERVER, false);
	EXPECT(zero_id(a.id), "an observer's view has an id");
	a = status_as(g_case, MMAPQ_ROLE_PRODUCER, true); /* migrate: read only */
	EXPECT(zero_id(a.id), "a producer's migrating attach gave it an id");
	a = status_as(g_case, MMAPQ_ROLE_OBSERVER, false);
	EXPECT(zero_id(a.id), "an id after the producer's attach");
	a = status_as(g_case, MMAPQ_ROLE_CONSUMER, false);
	EXPECT(!zero_id(a.id), "no id after the consumer's attach");
	bytes = slurp(g_case, &len);
	EXPECT_MEM(bytes + HOFF(id), a.id, MMAPQ_ID_SIZE); /* in the file */
	free(bytes);
	b = status_as(g_case, MMAPQ_ROLE_PRODUCER, false);
	c = status_as(g_case, MMAPQ_ROLE_OBSERVER, false);
	EXPECT_MEM(a.id, b.id, MMAPQ_ID_SIZE);
	EXPECT_MEM(a.id, c.id, MMAPQ_ID_SIZE);

	/* version 2 has none; upgraded in place, it gets one */
	put_file(g_case, g_bytes, g_len);
	EXPECT_INT(tu_queue_to_version2(g_case), 0);
	a = status_as(g_case, MMAPQ_ROLE_OBSERVER, false);
	EXPECT_INT(a.version, 2);
	EXPECT(zero_id(a.id), "a version-2 file has an id");
	a = status_as(g_case, MMAPQ_ROLE_PRODUCER, false);
	EXPECT_INT(a.version, 3);
	EXPECT(!zero_id(a.id), "no id after the upgrade to version 3");
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
		{"producer.dropped", PROD(dropped), 8, 99},
		{"consumer.attaches", CONS(0, attaches), 8, UINT64_MAX},
		{"consumer.registered_usec", CONS(0, registered_usec), 8, 1},
		/* a free entry may hold what a registration killed midway left */
		{"free entry's name", CONS(4, name), 8, 0x4141414141414141u},
		{"free entry's position", CONS(7, position), 8, 12345},
		{"producer.pid 1", PROD(pid), 4, 1},
	};
	int problems = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_case(g_bytes, g_len, cases[i].off, cases[i].width, cases[i].value);
		problems += check_open_all(cases[i].name, g_case, &X_ALL_OK, NULL, false);
	}
	EXPECT(problems == 0, "%d problem(s) (see above)", problems);
}

/* ---- slots ------------------------------------------------------------- */

static size_t slot_off(uint32_t fmt, uint32_t rs, uint64_t seq)
{
	return MMAPQ_HEADER_SIZE + (size_t)(seq % CAP) * mmapq_slot_size(fmt, rs);
}

static void test_slots(void)
{
	int problems = 0;
	const struct expect lx = {-EBADMSG, -EBADMSG, 0, CAP, 16, MMAPQ_FORMAT_LINE, 0, 0, 0};
	const struct expect lok = {0, 0, 0, CAP, 16, MMAPQ_FORMAT_LINE, 0, 0, 0};
	/* INT queue (16-byte slots: seq, value): live slots hold seq 3 and 4 */
	{
		const char *nd[] = {"slot 3", "seq 11", "expected seq 3", NULL};
		write_case(g_bytes, g_len, slot_off(MMAPQ_FORMAT_INT, RS, 3), 8, 11);
		problems += check_open_all("slot 3 wrong seq", g_case, &X_DYN_BAD, nd, true);
	}
	{
		const char *nd[] = {"slot 4", "seq 3", "expected seq 4", NULL};
		write_case(g_bytes, g_len, slot_off(MMAPQ_FORMAT_INT, RS, 4), 8, 3);
		problems += check_open_all("slot 4 seq of its neighbour", g_case, &X_DYN_BAD, nd, true);
	}
	/* an int slot's value may be anything */
	write_case(g_bytes, g_len, slot_off(MMAPQ_FORMAT_INT, RS, 3) + 8, 8, UINT64_MAX);
	problems += check_open_all("INT slot 3 value -1", g_case, &X_ALL_OK, NULL, false);
	/* slots outside [head, tail) may hold anything */
	write_case(g_bytes, g_len, slot_off(MMAPQ_FORMAT_INT, RS, 2), 8, 777);
	problems += check_open_all("consumed slot 2 garbage", g_case, &X_ALL_OK, NULL, false);
	write_case(g_bytes, g_len, slot_off(MMAPQ_FORMAT_INT, RS, 5), 8, 0xffffffffu);
	problems += check_open_all("free slot 5 garbage", g_case, &X_ALL_OK, NULL, false);

	/* LINE queue, record_size 16: live slots 1 and 2 */
	{
		static const struct {
			const char *name;
			uint64_t seq;
			size_t off, width; /* in the slot */
			uint64_t value;
			bool ok;
			const char *needle[3];
		} lc[] = {
			{"LINE slot len 17 > 16", 2, 8, 4, 17, false, {"slot 2", "length 17", NULL}},
			{"LINE slot len 16 == record_size", 2, 8, 4, 16, true, {NULL}},
			{"LINE slot wrong seq", 1, 0, 8, 9, false, {"slot 1", "seq 9", NULL}},
			{"LINE slot reserved", 1, 12, 4, 1, false, {"slot 1", "reserved 1", NULL}},
			{"LINE slot len 100", 2, 8, 4, 100, false, {"slot 2", "length 100", NULL}},
		};
		for (size_t i = 0; i < sizeof(lc) / sizeof(lc[0]); i++) {
			write_case(g_lbytes, g_llen, slot_off(MMAPQ_FORMAT_LINE, 16, lc[i].seq) + lc[i].off,
			           lc[i].width, lc[i].value);
			problems += check_open_all(lc[i].name, g_case, lc[i].ok ? &lok : &lx,
			                           lc[i].ok ? NULL : lc[i].needle, !lc[i].ok);
		}
	}
	EXPECT(problems == 0, "%d problem(s) with damaged slots (see above)", problems);
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
		const char *nd[] = {s[i], lens[i] < MMAPQ_HEADER_SIZE ? "4096" : gs, NULL};
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
		const struct expect x = {-EPROTO, -EPROTO, -EPROTO, 16, RS, MMAPQ_FORMAT_INT, 16, 0, 0};
		const char *nd[] = {"capacity", "is 8 in the file", "16 in the configuration", NULL};
		problems += check_open_all("capacity 16 vs 8", g_case, &x, nd, true);
	}
	{
		const struct expect x = {-EPROTO, -EPROTO, -EPROTO, 2, RS, MMAPQ_FORMAT_INT, 2, 0, 0};
		const char *nd[] = {"capacity", "is 8 in the file", "2 in the configuration", NULL};
		problems += check_open_all("capacity 2 vs 8", g_case, &x, nd, true);
	}
	{
		const struct expect x = {-EPROTO, -EPROTO, -EPROTO, CAP, 16, MMAPQ_FORMAT_INT, 0, 16, 0};
		const char *nd[] = {"record_size", "is 8 in the file", "16 in the configuration", NULL};
		problems += check_open_all("record_size 16 vs 8", g_case, &x, nd, true);
	}
	{
		const struct expect x = {-EPROTO, -EPROTO, -EPROTO, CAP, RS, MMAPQ_FORMAT_LINE, 0, 0,
		                         MMAPQ_FORMAT_LINE};
		const char *nd[] = {"format", "int in the file", "line in the configuration", NULL};
		problems += check_open_all("format line vs int", g_case, &x, nd, true);
	}
	/* invalid parameters are refused before the file is looked at */
	{
		const struct expect x = {-EINVAL, -EINVAL, 0, 3, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
		const char *nd[] = {"capacity 3", NULL};
		problems += check_open_all("parameter capacity 3", g_case, &x, nd, true);
	}
	/* the observer with parameters 0 accepts the file's geometry */
	{
		const struct expect x = {0, 0, 0, CAP, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
		problems += check_open_all("matching", g_case, &x, NULL, false);
	}
	/* the roles with all three 0 join the file, whatever its geometry */
	{
		const struct expect x = {0, 0, 0, 0, 0, 0, 0, 0, 0};
		problems += check_open_all("join with no geometry", g_case, &x, NULL, false);
	}
	/* ... but only all three: a role with some of them 0 is refused */
	{
		const struct expect x = {-EINVAL, -EINVAL, 0, CAP, 0, MMAPQ_FORMAT_INT, 0, 0, 0};
		const char *nd[] = {"record size 0", NULL};
		problems += check_open_all("record_size alone 0", g_case, &x, nd, true);
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

/* ---- version 1 files ---------------------------------------------------------- */

static struct mmapq *open_in(const char *path, enum mmapq_role role, uint32_t rs, uint32_t fmt,
                             bool migrate)
{
	struct mmapq_params p = {.path = path, .role = role, .capacity = CAP, .record_size = rs,
	                         .format = fmt, .file_mode = 0600, .migrate = migrate};
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &e);

	EXPECT(r == 0, "open %s (migrate %d): %s (%s)", path, migrate, e.msg, mmapq_strerror(r));
	return q;
}

/* A version-1 file: the daemons' roles refuse it naming `mmapqctl recreate`,
 * untouched; an observer reads it; with migrate both roles attach, read its
 * records (v1 int slots) and never write a slot. */
static void test_version1(void)
{
	const struct expect x = {-EPROTO, -EPROTO, 0, CAP, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
	const struct expect lx = {-EPROTO, -EPROTO, 0, CAP, 16, MMAPQ_FORMAT_LINE, 0, 0, 0};
	const char *nd[] = {"format version 1", "mmapqctl recreate", "left untouched", NULL};
	struct mmapq_record rec[CAP];
	struct mmapq *c, *p, *o;
	struct mmapq_status st;
	uint8_t *b, *after, buf[RS];
	size_t len, alen;
	int64_t v = 42;
	uint32_t n;
	int problems = 0;

	put_file(g_case, g_bytes, g_len);
	EXPECT_INT(tu_queue_to_version1(g_case), 0);
	b = slurp(g_case, &len);
	EXPECT_INT(len, MMAPQ_HEADER_SIZE + CAP * 24);
	problems += check_open_all("version 1 int", g_case, &x, nd, true);

	o = open_in(g_case, MMAPQ_ROLE_OBSERVER, 0, 0, true);
	EXPECT_INT(mmapq_status(o, &st), 0);
	EXPECT_INT(st.version, 1);
	EXPECT_INT(st.slot_size, 24);
	EXPECT_INT(st.head, 3);
	EXPECT_INT(st.tail, 5);
	EXPECT_INT(mmapq_peek(o, 4, buf, sizeof(buf), &rec[0]), 0);
	EXPECT_INT(rec[0].len, 8);
	memcpy(&v, rec[0].data, sizeof(v));
	EXPECT_INT(v, 4);
	mmapq_close(o);

	c = open_in(g_case, MMAPQ_ROLE_CONSUMER, RS, MMAPQ_FORMAT_INT, true);
	p = open_in(g_case, MMAPQ_ROLE_PRODUCER, RS, MMAPQ_FORMAT_INT, true);
	EXPECT_INT(mmapq_available(c, 0, &n), 0);
	EXPECT_INT(n, 2);
	EXPECT_INT(mmapq_get_many(c, 0, CAP, rec), 2);
	for (int i = 0; i < 2; i++) {
		EXPECT_INT(rec[i].seq, 3 + i);
		EXPECT_INT(rec[i].len, 8);
		memcpy(&v, rec[i].data, sizeof(v));
		EXPECT_INT(v, 3 + i);
	}
	EXPECT_INT(mmapq_get(c, 1, &rec[0]), 0);
	EXPECT_INT(rec[0].seq, 4);
	EXPECT_INT(mmapq_reserve(p, 0, &n), 0);
	EXPECT_INT(mmapq_put(p, &v, sizeof(v)), -EROFS);
	EXPECT_INT(mmapq_put_many(p, &v, sizeof(v), 1), -EROFS);
	EXPECT_INT(mmapq_pending(p), 0);
	mmapq_close(p);
	mmapq_close(c);
	/* not a slot written: the slots are as they were */
	after = slurp(g_case, &alen);
	EXPECT_INT(alen, len);
	EXPECT_MEM(after + MMAPQ_HEADER_SIZE, b + MMAPQ_HEADER_SIZE, len - MMAPQ_HEADER_SIZE);
	free(after);
	free(b);

	/* a version-1 line file: the same layout, refused all the same */
	put_file(g_case, g_lbytes, g_llen);
	EXPECT_INT(tu_queue_to_version1(g_case), 0);
	b = slurp(g_case, &len);
	EXPECT_INT(len, g_llen);
	EXPECT_INT(((struct mmapq_header *)b)->version, 1);
	EXPECT_MEM(b + MMAPQ_HEADER_SIZE, g_lbytes + MMAPQ_HEADER_SIZE, g_llen - MMAPQ_HEADER_SIZE);
	problems += check_open_all("version 1 line", g_case, &lx, nd, true);
	free(b);
	EXPECT(problems == 0, "%d problem(s) with version-1 files (see above)", problems);
}

/* ---- version 2 files ----------------------------------------------------------- */

/* A version-2 file: refused by a producer or consumer while another process
 * is attached (an older daemon: the attach lock held shared), untouched,
 * naming both ways out; read by an observer (its one consumer listed as
 * "default"); upgraded in place by the first role that attaches alone: its
 * consumer becomes the registered consumer "default" at its head, the
 * slots stay as they were, and its records are read on. */
static void test_version2(void)
{
	const struct expect x = {-EPROTO, -EPROTO, 0, CAP, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
	const char *nd[] = {"format version 2", "in use by another process", "upgrades it to version 3",
	                    "mmapqctl recreate", "left untouched", NULL};
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	char *lock_path = tu_xasprintf("%s" MMAPQ_LOCK_SUFFIX, g_case);
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	struct mmapq_record rec[CAP];
	struct mmapq *c, *o;
	struct mmapq_status st;
	uint8_t *b, *after;
	size_t len, alen;
	int64_t v;
	uint32_t n;
	int fd, problems = 0;

	put_file(g_case, g_bytes, g_len);
	EXPECT_INT(tu_queue_to_version2(g_case), 0);
	b = slurp(g_case, &len);
	EXPECT_INT(((struct mmapq_header *)b)->version, 2);

	/* an older daemon attached: the attach lock held shared */
	fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	EXPECT(fd >= 0, "%s: %s", lock_path, strerror(errno));
	EXPECT_INT(fcntl(fd, F_OFD_SETLK, &fl), 0);
	problems += check_open_all("version 2 in use", g_case, &x, nd, true);

	o = open_in(g_case, MMAPQ_ROLE_OBSERVER, 0, 0, false);
	EXPECT_INT(mmapq_status(o, &st), 0);
	EXPECT_INT(st.version, 2);
	EXPECT_INT(st.head, 3);
	EXPECT_INT(st.tail, 5);
	EXPECT_INT(mmapq_consumers(o, cs, MMAPQ_CONSUMERS_MAX), 1);
	EXPECT_STR(cs[0].name, "default");
	EXPECT_INT(cs[0].position, 3);
	mmapq_close(o);
	close(fd); /* the older daemon is gone */

	/* alone: upgraded by the consumer that attaches, records read on */
	c = open_in(g_case, MMAPQ_ROLE_CONSUMER, RS, MMAPQ_FORMAT_INT, false);
	EXPECT_INT(mmapq_status(c, &st), 0);
	EXPECT_INT(st.version, 3);
	EXPECT_INT(st.max_consumers, MMAPQ_CONSUMERS_DEFAULT);
	EXPECT_INT(mmapq_consumers(c, cs, MMAPQ_CONSUMERS_MAX), 1);
	EXPECT_STR(cs[0].name, "default");
	EXPECT_INT(cs[0].position, 3);
	EXPECT_INT(mmapq_available(c, 0, &n), 0);
	EXPECT_INT(n, 2);
	EXPECT_INT(mmapq_get_many(c, 0, CAP, rec), 2);
	memcpy(&v, rec[1].data, sizeof(v));
	EXPECT_INT(rec[1].seq, 4);
	EXPECT_INT(v, 4);
	mmapq_close(c);
	after = slurp(g_case, &alen);
	EXPECT_INT(alen, len);
	EXPECT_MEM(after + MMAPQ_HEADER_SIZE, b + MMAPQ_HEADER_SIZE, len - MMAPQ_HEADER_SIZE);
	free(after);
	/* now an ordinary version-3 file to every role */
	problems += check_open_all("version 2 upgraded", g_case, &X_ALL_OK, NULL, false);
	/* with max_consumers 8 (the default), which is geometry */
	{
		struct mmapq_params p = {.path = g_case, .role = MMAPQ_ROLE_PRODUCER, .capacity = CAP,
		                         .record_size = RS, .format = MMAPQ_FORMAT_INT, .max_consumers = 4};
		struct mmapq_error e;
		EXPECT_INT(mmapq_open(&p, &o, &e), -EPROTO);
		EXPECT(strstr(e.msg, "max_consumers is 8 in the file but 4"), "'%s'", e.msg);
	}

	/* a crash in the middle of an upgrade (the table written, the version
	 * not yet): still a version 2, upgraded again */
	put_file(g_case, g_bytes, g_len);
	EXPECT_INT(tu_queue_to_version2(g_case), 0);
	free(b);
	b = slurp(g_case, &len);
	memcpy(b + offsetof(struct mmapq_header, consumers), g_bytes + offsetof(struct mmapq_header, consumers),
	       sizeof(((struct mmapq_header *)0)->consumers));
	memcpy(b + offsetof(struct mmapq_header, max_consumers),
	       g_bytes + offsetof(struct mmapq_header, max_consumers), 4);
	put_file(g_case, b, len);
	c = open_in(g_case, MMAPQ_ROLE_PRODUCER, RS, MMAPQ_FORMAT_INT, false);
	EXPECT_INT(mmapq_status(c, &st), 0);
	EXPECT_INT(st.version, 3);
	EXPECT_INT(st.consumers, 1);
	mmapq_close(c);
	free(b);
	free(lock_path);
	EXPECT(problems == 0, "%d problem(s) with version-2 files (see above)", problems);
}

/* ---- mmapq_put_many and mmapq_get_many at their edges ------------------------- */

/* Room, lengths, roles, the wrap of the ring, and a corrupt slot in the
 * middle of a get_many (the records before it, then -EBADMSG). */
static void test_bulk_edges(void)
{
	char *path = tu_path(g_dir, "bulk.q");
	int64_t v[4 * CAP], got[2 * CAP], gkeep;
	struct mmapq_record r[2 * CAP], keep;
	struct mmapq *p, *c;
	uint32_t n;
	int fd;

	for (int i = 0; i < (int)(4 * CAP); i++)
		v[i] = 1000 + i;
	unlink(path);
	p = open_in(path, MMAPQ_ROLE_PRODUCER, RS, MMAPQ_FORMAT_INT, false);
	c = open_in(path, MMAPQ_ROLE_CONSUMER, RS, MMAPQ_FORMAT_INT, false);
	EXPECT_INT(mmapq_put_many(c, v, 8, 1), -EPERM);
	EXPECT_INT(mmapq_get_many(p, 0, 1, r), -EPERM);
	EXPECT_INT(mmapq_copy_many(p, 0, 1, got, 8), -EPERM);
	EXPECT_INT(mmapq_reserve(p, 0, &n), 0);
	EXPECT_INT(n, CAP);
	EXPECT_INT(mmapq_put_many(p, v, 7, 1), -EMSGSIZE);
	EXPECT_INT(mmapq_put_many(p, v, 16, 1), -EMSGSIZE);
	EXPECT_INT(mmapq_put_many(p, v, 8, 0), 0);
	/* 5 of the 8 slots, then more than the 3 left: 3 are put */
	EXPECT_INT(mmapq_put_many(p, v, 8, 5), 5);
	EXPECT_INT(mmapq_next_seq(p), 5);
	EXPECT_INT(mmapq_put_many(p, v + 5, 8, 10), 3);
	EXPECT_INT(mmapq_put_many(p, v, 8, 1), -ENOBUFS);
	EXPECT_INT(mmapq_pending(p), CAP);
	EXPECT_INT(mmapq_publish(p), (int)CAP);

	EXPECT_INT(mmapq_available(c, 0, &n), 0);
	EXPECT_INT(n, CAP);
	EXPECT_INT(mmapq_get_many(c, CAP, 1, r), -ENOENT);
	EXPECT_INT(mmapq_get_many(c, 0, 0, r), 0);
	EXPECT_INT(mmapq_get_many(c, 6, 100, r), 2);
	EXPECT_INT(r[0].seq, 6);
	EXPECT_INT(*(const int64_t *)r[1].data, 1007);
	EXPECT_INT(mmapq_copy_many(c, CAP, 1, got, 8), -ENOENT);
	EXPECT_INT(mmapq_copy_many(c, 0, 0, got, 8), 0);
	EXPECT_INT(mmapq_copy_many(c, 1, 100, got, 8), (int)CAP - 1);
	for (int i = 0; i < (int)CAP - 1; i++)
		EXPECT_INT(got[i], 1001 + i);
	/* an int record is 8 bytes: asked for 4, none is copied */
	EXPECT_INT(mmapq_copy_many(c, 0, 1, got, 4), -EMSGSIZE);
	EXPECT_INT(mmapq_release(c, CAP), 0);

	/* across the end of the ring: seq 8..13 in slots 0..5, 6 consumed;
	 * seq 14 in slot 6; then seq 15..21 in slots 7, 0..5 in one call,
	 * and seq 14..21 read in one call */
	EXPECT_INT(mmapq_reserve(p, 0, &n), 0);
	EXPECT_INT(n, CAP);
	EXPECT_INT(mmapq_put_many(p, v + 8, 8, 6), 6);
	EXPECT_INT(mmapq_publish(p), 6);
	EXPECT_INT(mmapq_available(c, 0, &n), 0);
	EXPECT_INT(n, 6);
	EXPECT_INT(mmapq_release(c, 6), 0);
	EXPECT_INT(mmapq_put_many(p, v + 14, 8, 1), 1);
	EXPECT_INT(mmapq_publish(p), 1);
	EXPECT_INT(mmapq_reserve(p, 0, &n), 0);
	EXPECT_INT(n, 7);
	EXPECT_INT(mmapq_put_many(p, v + 15, 8, 7), 7);
	EXPECT_INT(mmapq_publish(p), 7);
	EXPECT_INT(mmapq_available(c, 0, &n), 0);
	EXPECT_INT(n, CAP);
	EXPECT_INT(mmapq_get_many(c, 0, 2 * CAP, r), (int)CAP);
	for (int i = 0; i < (int)CAP; i++) {
		EXPECT_INT(r[i].seq, 14 + i);
		EXPECT_INT(r[i].len, 8);
		EXPECT_INT(*(const int64_t *)r[i].data, 1014 + i);
	}
	/* the same values by copy, from every start (the four-at-a-time loop
	 * and the one-by-one rest, across the end of the ring) */
	for (uint32_t at = 0; at < CAP; at++) {
		memset(got, 0, sizeof(got));
		EXPECT_INT(mmapq_copy_many(c, at, 2 * CAP, got, 8), (int)(CAP - at));
		for (uint32_t i = 0; i < CAP - at; i++)
			EXPECT_INT(got[i], 1014 + at + i);
	}

	/* record 19 (slot 3) corrupt: get_many stops before it; at it,
	 * -EBADMSG with r untouched */
	fd = open(path, O_RDWR | O_CLOEXEC);
	EXPECT(fd >= 0, "%s: %s", path, strerror(errno));
	{
		uint64_t bad = 77;
		EXPECT_INT(pwrite(fd, &bad, sizeof(bad),
		                  MMAPQ_HEADER_SIZE + 3 * sizeof(struct mmapq_int_slot)), 8);
	}
	close(fd);
	EXPECT_INT(mmapq_get_many(c, 0, CAP, r), 5);
	keep = r[0];
	EXPECT_INT(mmapq_get_many(c, 5, 2, r), -EBADMSG);
	EXPECT_MEM(&keep, &r[0], sizeof(keep));
	EXPECT_INT(mmapq_get(c, 5, &r[0]), -EBADMSG);
	EXPECT_INT(mmapq_get_many(c, 6, CAP, r), 2);
	EXPECT_INT(r[1].seq, 21);
	/* copies stop at the same place, wherever it falls in a group of four */
	for (uint32_t at = 0; at < 5; at++)
		EXPECT_INT(mmapq_copy_many(c, at, CAP, got, 8), (int)(5 - at));
	gkeep = got[0];
	EXPECT_INT(mmapq_copy_many(c, 5, CAP, got, 8), -EBADMSG);
	EXPECT_INT(got[0], gkeep);
	EXPECT_INT(mmapq_copy_many(c, 6, CAP, got, 8), 2);
	EXPECT_INT(got[1], 1021);
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
		const struct expect x = {-EISDIR, -EISDIR, -EBADMSG, CAP, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
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
		const struct expect x = {-ELOOP, -ELOOP, -ELOOP, CAP, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
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
		const struct expect x = {-ELOOP, -ELOOP, -ELOOP, CAP, RS, MMAPQ_FORMAT_INT, 0, 0, 0};
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
	if (o >= offsetof(struct mmapq_consumer, start_usec) && o < offsetof(struct mmapq_consumer, reserved0))
		return 1;
	if (o >= offsetof(struct mmapq_consumer, not_empty) && o < offsetof(struct mmapq_consumer, not_empty) + 8)
		return 1;
	/* a free entry's position and name mean nothing */
	if (!reg && o < offsetof(struct mmapq_consumer, state))
		return 1;
	if (!reg && o >= offsetof(struct mmapq_consumer, name) && o < offsetof(struct mmapq_consumer, not_empty))
		return 1;
	return 0;
}

/* May a flip of header byte i open successfully?  Only the bytes with no
 * meaning to validation: created_usec, the queue id, the mutex (re-initialised by whoever
 * attaches alone), the cond seq/waiting words, the counters, pids and
 * start times, a free consumer entry's position and name.  (A pid flip may
 * also be refused: negative.) */
static int flip_expect(size_t i, const uint8_t *b)
{
	if (i >= HOFF(created_usec) && i < HOFF(created_usec) + 8)
		return 1;
	if (i >= HOFF(lock) && i < HOFF(lock) + 64)
		return 1;
	if (i >= HOFF(not_full) && i < HOFF(not_full) + 8)
		return 1;
	if (i >= HOFF(id) && i < HOFF(id) + MMAPQ_ID_SIZE)
		return 1;
	if (i >= HOFF(consumers) && i < HOFF(id))
		return flip_consumer((i - HOFF(consumers)) / sizeof(struct mmapq_consumer),
		                     (i - HOFF(consumers)) % sizeof(struct mmapq_consumer), b);
	if (i >= HOFF(producer) && i < HOFF(producer) + sizeof(struct mmapq_side)) {
		size_t o = i - HOFF(producer);
		if (o >= offsetof(struct mmapq_side, pid) && o < offsetof(struct mmapq_side, pid) + 4)
			return flip_pid(i, PROD(pid), b);
		if (o >= offsetof(struct mmapq_side, start_usec) && o < offsetof(struct mmapq_side, attaches) + 8)
			return 1;
	}
	return 0;
}

static void test_flip_every_header_byte(void)
{
	int problems = 0, opened = 0, refused = 0;
	uint8_t *b = malloc(g_len);

	if (!b)
		tu_die("malloc");
	for (size_t i = 0; i < HOFF(reserved); i++) {
		struct res r;
		char why[256];
		int may_open = flip_expect(i, g_bytes);

		memcpy(b, g_bytes, g_len);
		b[i] ^= 0xff;
		put_file(g_case, b, g_len);
		if (!open_forked(g_case, MMAPQ_ROLE_PRODUCER, CAP, RS, MMAPQ_FORMAT_INT, &r, why, sizeof(why))) {
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
		if (!open_forked(g_case, (enum mmapq_role)(1 + round % 3), round % 3 == 2 ? 0 : CAP,
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

/* A copy of the base with entry e registered as name at pos. */
static void put_with_entry(size_t e, const char *name, uint64_t pos, uint32_t state)
{
	struct mmapq_consumer c;
	uint8_t *b = malloc(g_len);

	if (!b)
		tu_die("malloc");
	memset(&c, 0, sizeof(c));
	memcpy(b, g_bytes, g_len);
	c.position = pos;
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
	o = open_in(g_case, MMAPQ_ROLE_OBSERVER, 0, 0, false);
	EXPECT_INT(mmapq_consumers(o, cs, MMAPQ_CONSUMERS_MAX), 1);
	fd = open(g_case, O_WRONLY | O_CLOEXEC);
	EXPECT(fd >= 0, "%s: %s", g_case, strerror(errno));
	{
		struct mmapq_consumer c;
		memcpy(&c, g_bytes + CONS(0, position), sizeof(c));
		c.position = 4;
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
	o = open_in(g_case, MMAPQ_ROLE_OBSERVER, 0, 0, false);
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
	struct mmapq_params pp = {.path = path, .role = MMAPQ_ROLE_PRODUCER, .capacity = CAP,
	                          .record_size = RS, .format = MMAPQ_FORMAT_INT, .file_mode = 0600,
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
	uint32_t n;

	unlink(path);
	EXPECT_INT(mmapq_open(&pp, &q, &e), 0);
	EXPECT_INT(mmapq_reserve(q, 0, &n), 0);
	for (int64_t v = 0; v < 4; v++)
		EXPECT_INT(mmapq_put(q, &v, sizeof(v)), 0);
	EXPECT_INT(mmapq_publish(q), 4);

	/* refused, nothing registered */
	o = open_in(path, MMAPQ_ROLE_OBSERVER, 0, 0, false);
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
	/* the producer sees the room that made */
	EXPECT_INT(mmapq_reserve(q, 0, &n), 0);
	EXPECT_INT(n, CAP - 3);
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
	put_file(g_case, g_bytes, g_len);
	EXPECT_INT(tu_queue_to_version1(g_case), 0);
	q = open_in(g_case, MMAPQ_ROLE_PRODUCER, RS, MMAPQ_FORMAT_INT, true);
	EXPECT_INT(mmapq_consumers_restore(q, &in[3], 1), -EROFS);
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
		{"slots", test_slots},
		{"sizes", test_sizes},
		{"garbage", test_garbage},
		{"config_mismatch", test_config_mismatch},
		{"version1", test_version1},
		{"version2", test_version2},
		{"bulk_edges", test_bulk_edges},
		{"special_files", test_special_files},
		{"char_device", test_char_device},
		{"flip_every_header_byte", test_flip_every_header_byte},
		{"queue_id", test_queue_id},
		{"random_header_damage", test_random_header_damage},
	};

	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
