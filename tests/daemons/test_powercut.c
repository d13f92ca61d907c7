/* SPDX-License-Identifier: MIT */
/*
 * test_powercut -- the daemons through power cuts: what an acknowledgement
 * promises in each sync mode, held against crashfs (tests/lib/crashfs.h), a
 * file system that loses what was not synced.
 *
 * The queue file and one consumer's output file live on crashfs.  Each
 * round starts the real daemons on what the last cut left: three named
 * consumers (a and b write to stdout, c to file:OUT on crashfs), then the
 * producer, reading a socket.  The test sends numbered line records of
 * random length (the text of a record follows from its number, so a wrong
 * or torn byte is seen) and reads the producer's ACK lines
 * ([producer] ack_records = 1): "ACK published=N" acknowledges the first N
 * records of the connection.  At a random moment (after a random number of
 * acknowledgements, or of records one consumer printed) the power goes
 * (crashfs_power_cut: every daemon SIGKILLed, what was not synced lost; the
 * torn variant, every other round, keeps a random part of the unsynced
 * pages, each whole), and the next round starts the daemons afresh on what
 * survived, which salvage what they must.
 *
 * What each consumer delivered, over all its lives: the complete lines it
 * wrote to its pipe, and for c the lines of OUT that survived the cut (read
 * before c starts again).  Checked at every cut:
 *   - every mode: a delivered line is a record that was sent, byte for byte
 *     (never garbage, never a torn record); within one life the numbers
 *     rise; no daemon exits but by the cut; the daemons start on every file
 *     a cut leaves;
 *   - always and batch: nothing acknowledged is lost, for each consumer: a
 *     life starts at most a ring of records behind what the consumer had
 *     delivered (the replay of its unacknowledged batch) and never past it,
 *     and within a life the numbers run on one by one, except over records
 *     sent and never acknowledged, which a cut may take; c's file holds, at
 *     the cut, every record up to where its next life starts (its cursor on
 *     disk never runs ahead of its file on disk);
 *   - never and interval: a torn cut may lose anything not synced, so only
 *     the first rule holds, and the last round (no cut: the records sent,
 *     OK'd, every consumer drained, the daemons stopped) is delivered whole.
 * In the clean variant c appends to what OUT kept (its incomplete last line
 * cut by the consumer); in the torn variant pages of an unsynced append may
 * leave holes of zeros in OUT that no appender can tell from records, so
 * what c delivered is OUT up to the first line that is no record, and OUT is
 * then removed before c starts again.
 *
 * Cases: always, batch, interval, never: CUTS cuts each (MMAPQ_POWERCUT_CUTS
 * more, for the stress run); MMAPQ_POWERCUT_SEED repeats a run.  Needs root
 * for the mount namespace and /dev/fuse; exits 77 without them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crashfs.h"
#include "mmapq.h"
#include "testproc.h"
#include "testutil.h"

#define CUTS 50
#define RING_TEXT "16K"
#define RING_BYTES 16384u
#define MAX_RECORD 1024u
#define BODY_MAX 180u       /* a record: 10 digits, a space, up to this many letters */
#define NUM_DIGITS 10
#define TARGET_MAX 1500u    /* a cut after up to this many acknowledgements */
#define OUT_RESET (1u << 20) /* OUT is removed between rounds past this size */
#define NCONS 3
#define DEADLINE_MS (10000 * (int)tu_time_factor())

#define EXPECT(cond, ...) TU_EXPECT(g_q, cond, __VA_ARGS__)

static char *g_tmp, *g_mnt, *g_q, *g_out, *g_cfg, *g_sock;
static enum mmapq_sync g_sync;
static bool g_durable; /* always, batch: acknowledged means on disk */
static uint64_t g_rng;

/* Records sent so far (the next one's number), and which of them were
 * acknowledged. */
static uint64_t g_sent, g_last_n0 = UINT64_MAX;
static uint8_t *g_acked;
static size_t g_acked_cap;

/* ---- records ---- */

static uint64_t rnd(void)
{
	g_rng ^= g_rng >> 12;
	g_rng ^= g_rng << 25;
	g_rng ^= g_rng >> 27;
	return g_rng * UINT64_C(2685821657736338717);
}

static uint64_t mix(uint64_t n)
{
	n = (n ^ (n >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	n = (n ^ (n >> 27)) * UINT64_C(0x94d049bb133111eb);
	return n ^ (n >> 31);
}

/* Record n as a line, its '\n' included, into buf (at least
 * NUM_DIGITS + 2 + BODY_MAX bytes); its length. */
static size_t record_text(uint64_t n, char *buf)
{
	uint64_t h = mix(n);
	size_t body = (size_t)(h % (BODY_MAX + 1)), len;

	len = (size_t)snprintf(buf, NUM_DIGITS + 2, "%0*" PRIu64 " ", NUM_DIGITS, n);
	for (size_t i = 0; i < body; i++)
		buf[len++] = (char)('a' + (h >> (i % 48) ^ i) % 26);
	buf[len++] = '\n';
	return len;
}

/* The number of the record that line[0..len) (its '\n' excluded) is, byte
 * for byte; false if it is none, or only its first len bytes (prefix). */
static bool record_of(const char *line, size_t len, bool prefix, uint64_t *n)
{
	char want[NUM_DIGITS + 2 + BODY_MAX];
	uint64_t v = 0;
	size_t wl;

	if (len < NUM_DIGITS + 1)
		return prefix && strspn(line, "0123456789") >= len;
	for (int i = 0; i < NUM_DIGITS; i++) {
		if (line[i] < '0' || line[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(line[i] - '0');
	}
	wl = record_text(v, want) - 1;
	if (prefix ? len > wl : len != wl)
		return false;
	if (memcmp(line, want, len))
		return false;
	*n = v;
	return true;
}

static bool acked(uint64_t n)
{
	return n < g_sent && g_acked[n];
}

static void set_acked(uint64_t from, uint64_t to)
{
	for (uint64_t n = from; n < to; n++)
		g_acked[n] = 1;
}

/* Records [n0, n0 + count) as text, g_sent advanced past them. */
static char *make_records(uint64_t count, size_t *len)
{
	char *s = malloc(count * (NUM_DIGITS + 2 + BODY_MAX) + 1);
	size_t l = 0;

	if (!s)
		tu_die("malloc");
	if (g_sent + count > g_acked_cap) {
		size_t cap = (g_sent + count) * 2;
		g_acked = realloc(g_acked, cap);
		if (!g_acked)
			tu_die("realloc");
		memset(g_acked + g_acked_cap, 0, cap - g_acked_cap);
		g_acked_cap = cap;
	}
	for (uint64_t i = 0; i < count; i++)
		l += record_text(g_sent + i, s + l);
	g_sent += count;
	*len = l;
	return s;
}

/* ---- what each consumer delivered ---- */

struct stream {
	const char *name;
	uint64_t next;   /* durable modes: every record below it was delivered */
	uint64_t lines, replays, replayed, fragments, holes, lives;
	uint64_t last_round; /* records of the last round (from g_last_n0) delivered */
	uint8_t *seen;       /* per record: delivered at least once */
	size_t seen_cap;
};

static struct stream g_st[NCONS] = {{.name = "a"}, {.name = "b"}, {.name = "c"}};

/* Whether each record of [from, to) was sent and never acknowledged: a cut
 * may take those. */
static bool may_be_lost(uint64_t from, uint64_t to)
{
	for (uint64_t n = from; n < to; n++)
		if (n >= g_sent || acked(n))
			return false;
	return true;
}

/* The replay of a consumer's life is at most its unacknowledged batch: no
 * more records than the ring holds (the shortest record's frame). */
static uint64_t replay_max(void)
{
	return RING_BYTES / mmapq_frame_size(NUM_DIGITS + 1);
}

/*
 * One life's output buf[0..len) as consumer s delivered it.  cut: the life
 * ended in a power cut, so its last line may be incomplete (a write cut
 * short).  holes: torn OUT, where delivery ends at the first line that is
 * no record.  Returns the number of the last record of the life (UINT64_MAX:
 * none), for the callers that check the last round.
 */
static uint64_t take_life(struct stream *s, const char *buf, size_t len, bool cut, bool holes,
                          uint64_t *first)
{
	uint64_t prev = UINT64_MAX, n;
	size_t at = 0, line = 0;

	s->lives++;
	*first = UINT64_MAX;
	while (at < len) {
		const char *p = buf + at, *nl = memchr(p, '\n', len - at);
		size_t ll = nl ? (size_t)(nl - p) : len - at;

		line++;
		if (!nl || !record_of(p, ll, false, &n)) {
			if (holes && memchr(p, '\0', ll)) {
				s->holes++;
				break;
			}
			EXPECT(!nl && cut && record_of(p, ll, true, &n),
			       "consumer %s: line %zu of a life's output is no record that was sent%s:"
			       " '%.*s'", s->name, line, nl ? "" : " (the last, incomplete)",
			       (int)(ll > 80 ? 80 : ll), p);
			s->fragments++;
			break;
		}
		EXPECT(n < g_sent, "consumer %s delivered record %" PRIu64 ", never sent (%" PRIu64
		       " were)", s->name, n, g_sent);
		if (prev == UINT64_MAX) {
			*first = n;
			if (g_durable && n < s->next) {
				EXPECT(s->next - n <= replay_max(),
				       "consumer %s starts a life at %" PRIu64 ", %" PRIu64 " records behind"
				       " what it had delivered: more than a ring", s->name, n, s->next - n);
				s->replays++;
				s->replayed += s->next - n;
			}
			if (g_durable && n > s->next)
				EXPECT(may_be_lost(s->next, n),
				       "consumer %s starts a life at %" PRIu64 ", skipping %" PRIu64 "..%"
				       PRIu64 " of which some were acknowledged", s->name, n, s->next, n - 1);
		} else if (g_durable) {
			EXPECT(n > prev && may_be_lost(prev + 1, n),
			       "consumer %s delivered %" PRIu64 " after %" PRIu64 " in one life (acknowledged"
			       " records between, or out of order)", s->name, n, prev);
		} else {
			EXPECT(n > prev, "consumer %s delivered %" PRIu64 " after %" PRIu64 " in one life",
			       s->name, n, prev);
		}
		if (n + 1 > s->next)
			s->next = n + 1;
		s->last_round += n >= g_last_n0;
		if (n >= s->seen_cap) {
			size_t cap = (n + 1) * 2;
			s->seen = realloc(s->seen, cap);
			if (!s->seen)
				tu_die("realloc");
			memset(s->seen + s->seen_cap, 0, cap - s->seen_cap);
			s->seen_cap = cap;
		}
		s->seen[n] = 1;
		prev = n;
		s->lines++;
		at += ll + 1;
	}
	return prev;
}

/* ---- the daemons ---- */

struct round {
	struct tp_kid prod, cons[NCONS];
	struct tp_out *acks;
	int sock;
	struct tp_feed feed;
	char *records;
	uint64_t n0;
};

static bool alive(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0;
}

static void show_stderr(const char *who, const struct tp_out *err)
{
	const char *s = tp_str(err);
	size_t l = strlen(s);

	fprintf(stderr, "--- %s's stderr (end) ---\n%s\n", who, s + (l > 3000 ? l - 3000 : 0));
}

static void show_all(const struct round *r)
{
	show_stderr("mmapq-producer", r->prod.err);
	for (int i = 0; i < NCONS; i++)
		show_stderr(g_st[i].name, r->cons[i].err);
}

/* Whether consumer name is attached as pid (an observer's view). */
static bool consumer_attached(const char *name, pid_t pid)
{
	struct mmapq_consumer_status cs;

	return tu_consumer_status(g_q, name, &cs) && cs.attached && cs.pid == pid;
}

/* Whether every consumer has consumed everything published. */
static bool drained(void)
{
	struct mmapq_params p = {.path = g_q, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq *q;
	int n, done = 0;

	if (mmapq_open(&p, &q, NULL) < 0)
		return false;
	n = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX);
	for (int i = 0; i < n && i < (int)MMAPQ_CONSUMERS_MAX; i++)
		done += cs[i].lag == 0;
	mmapq_close(q);
	return n == NCONS && done == NCONS;
}

static void start_round(struct round *r)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint64_t end = tu_now_ms() + (uint64_t)DEADLINE_MS;

	for (int i = 0; i < NCONS; i++) {
		char **argv = tp_av("mmapq-consumer", "--config", g_cfg, "--name", g_st[i].name,
		                    (char *)NULL);

		r->cons[i] = tp_spawn(argv, false, i < 2, true);
		tp_av_free(argv);
		EXPECT(crashfs_mark(r->cons[i].pid) == 0, "crashfs_mark");
	}
	/* the consumers first, each attached, so none misses what the producer
	 * publishes before it registered */
	for (int i = 0; i < NCONS; i++)
		while (!consumer_attached(g_st[i].name, r->cons[i].pid)) {
			if (!alive(r->cons[i].pid) || tu_now_ms() > end) {
				if (!alive(r->cons[i].pid))
					tp_until(r->cons[i].err, NULL, DEADLINE_MS);
				show_all(r);
				EXPECT(0, "consumer %s did not attach (%s)", g_st[i].name,
				       alive(r->cons[i].pid) ? "in time" : "it exited");
			}
			tp_pump(tu_now_ms() + 1);
		}
	{
		char **argv = tp_av("mmapq-producer", "--config", g_cfg, (char *)NULL);

		r->prod = tp_spawn(argv, false, false, true);
		tp_av_free(argv);
	}
	EXPECT(crashfs_mark(r->prod.pid) == 0, "crashfs_mark");
	if (!tp_until(r->prod.err, "as producer", DEADLINE_MS)) {
		show_all(r);
		EXPECT(0, "the producer did not start");
	}
	strcpy(sa.sun_path, g_sock);
	r->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	EXPECT(r->sock >= 0 && connect(r->sock, (struct sockaddr *)&sa, sizeof(sa)) == 0,
	       "connect %s: %s", g_sock, strerror(errno));
	r->acks = tp_out_new(dup(r->sock));
	r->n0 = g_sent;
}

/* How many of this round's records the producer acknowledged so far: the
 * last ACK or OK line's published=. */
static uint64_t acknowledged(const struct round *r)
{
	const char *s = tp_str(r->acks), *p = s, *last = NULL;
	uint64_t n = 0;

	while ((p = strstr(p, "published=")))
		last = p++;
	if (last)
		n = strtoull(last + strlen("published="), NULL, 10);
	return n;
}

static void send_records(struct round *r, uint64_t count)
{
	size_t len;

	free(r->records);
	r->records = make_records(count, &len);
	r->feed = (struct tp_feed){.fd = r->sock, .data = r->records, .len = len};
	tp_feeding = &r->feed;
}

static void end_round(struct round *r)
{
	tp_feeding = NULL;
	tp_close_fd(&r->sock);
	tp_out_free(r->acks);
	r->acks = NULL;
	tp_kid_close(&r->prod);
	for (int i = 0; i < NCONS; i++)
		tp_kid_close(&r->cons[i]);
	free(r->records);
	r->records = NULL;
}

/* ---- OUT, c's file on crashfs ---- */

static size_t g_out_off; /* where c's current life started writing in OUT */

/* What OUT holds of c's life that ended (at a cut: what survived). */
static uint64_t take_out(bool cut, bool torn)
{
	size_t len = 0;
	char *s = tu_read_file(g_out, &len);
	uint64_t first, last = UINT64_MAX;

	if (!s) {
		EXPECT(errno == ENOENT, "%s: %s", g_out, strerror(errno));
		return last;
	}
	if (len > g_out_off || !g_durable)
		last = take_life(&g_st[2], s + (g_durable ? g_out_off : 0),
		                 len - (g_durable ? g_out_off : 0), cut, torn, &first);
	/* c's next life appends after the last whole line (the consumer cuts
	 * an incomplete one), unless OUT goes: torn, too long, or a mode whose
	 * cut may take the file back past where the life started */
	if (torn || len > OUT_RESET || !g_durable) {
		EXPECT(unlink(g_out) == 0, "unlink %s: %s", g_out, strerror(errno));
		g_out_off = 0;
	} else {
		const char *nl = len ? memrchr(s, '\n', len) : NULL;
		g_out_off = nl ? (size_t)(nl - s) + 1 : 0;
	}
	free(s);
	return last;
}

/* ---- the cases ---- */

static void write_config(enum mmapq_sync sync)
{
	static const char *names[] = {[MMAPQ_SYNC_NEVER] = "never",
	                              [MMAPQ_SYNC_BATCH] = "batch",
	                              [MMAPQ_SYNC_ALWAYS] = "always",
	                              [MMAPQ_SYNC_INTERVAL] = "interval"};
	char *text = tu_xasprintf("[queue]\npath = %s\nsize = " RING_TEXT "\nmax_record = %u\n"
	                          "format = line\nsync = %s\nsync_interval = 5\n"
	                          "[producer]\ninput = socket\nsocket = %s\nack_records = 1\n"
	                          "ack_interval = 0\n"
	                          "[consumer]\noutput = stdout\n"
	                          "[consumer:c]\noutput = file:%s\n"
	                          "[log]\nlevel = debug\n",
	                          g_q, MAX_RECORD, names[sync], g_sock, g_out);

	g_cfg = tu_write_in(g_tmp, "mmapq.ini", text);
	free(text);
}

/* The life of each stdout consumer that a cut ended, drained to EOF. */
static void reap_cut(struct round *r)
{
	struct tp_kid *all[NCONS + 1] = {&r->prod, &r->cons[0], &r->cons[1], &r->cons[2]};
	uint64_t first;

	for (int i = 0; i < NCONS + 1; i++) {
		int code;

		if (all[i]->out)
			EXPECT(tp_until(all[i]->out, NULL, DEADLINE_MS), "a killed daemon's stdout stays open");
		tp_until(all[i]->err, NULL, DEADLINE_MS);
		code = tp_wait_exit(all[i], DEADLINE_MS);
		if (code != 128 + SIGKILL) {
			show_all(r);
			EXPECT(0, "%s exited %d before the power cut", i ? g_st[i - 1].name : "the producer",
			       code);
		}
	}
	for (int i = 0; i < 2; i++)
		take_life(&g_st[i], r->cons[i].out->s, r->cons[i].out->len, true, false, &first);
}

static void run_cuts(enum mmapq_sync sync)
{
	const char *env = getenv("MMAPQ_POWERCUT_CUTS"), *seed_env = getenv("MMAPQ_POWERCUT_SEED");
	int cuts = env ? atoi(env) : CUTS;
	uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : (uint64_t)tu_now_ms() ^ (uint64_t)getpid();
	struct round r = {.sock = -1};
	uint64_t torn_cuts = 0, unsynced = 0, kept = 0, acks = 0, final_n0, last[NCONS], first;

	g_sync = sync;
	g_durable = sync == MMAPQ_SYNC_ALWAYS || sync == MMAPQ_SYNC_BATCH;
	g_rng = seed | 1;
	printf("test_powercut: seed %" PRIu64 " (MMAPQ_POWERCUT_SEED), %d cuts\n", seed, cuts);
	write_config(sync);
	tp_set_queue(g_q);

	for (int cut = 0; cut < cuts; cut++) {
		bool torn = cut % 2;
		uint64_t target = rnd() % (TARGET_MAX + 1), end;
		bool by_consumer = rnd() % 3 == 0;
		struct crashfs_stats cs;
		int rc;

		start_round(&r);
		send_records(&r, target + 1 + rnd() % 400);
		end = tu_now_ms() + (uint64_t)DEADLINE_MS;
		/* the moment of the cut: a number of acknowledgements, or of lines
		 * consumer a printed in this life */
		while (by_consumer ? r.cons[0].out->len < target * 64 : acknowledged(&r) < target) {
			if (!tp_pump(end) || r.feed.err) {
				show_all(&r);
				EXPECT(0, "cut %d: %" PRIu64 " acknowledged of %" PRIu64 " wanted, consumer a"
				       " printed %zu bytes, by the deadline (feed: %s)", cut, acknowledged(&r),
				       target, r.cons[0].out->len, strerror(r.feed.err));
			}
			if (by_consumer && r.feed.off == r.feed.len)
				break;
		}
		rc = crashfs_power_cut(torn ? CRASHFS_TORN : CRASHFS_CLEAN, rnd(),
		                       (double)(rnd() % 1000) / 1000.0);
		EXPECT(rc == 0, "cut %d: crashfs_power_cut: %s", cut, strerror(-rc));
		/* every ACK the producer sent before it died counts */
		tp_until(r.acks, NULL, DEADLINE_MS);
		set_acked(r.n0, r.n0 + acknowledged(&r));
		acks += acknowledged(&r);
		cs = crashfs_stats();
		torn_cuts += torn;
		unsynced += cs.unsynced;
		kept += cs.kept;
		reap_cut(&r);
		rc = crashfs_start(g_mnt);
		EXPECT(rc == 0, "crashfs_start after cut %d: %s", cut, strerror(-rc));
		take_out(true, torn);
		end_round(&r);
	}

	/* the last round: no cut; everything sent is OK'd and delivered */
	start_round(&r);
	final_n0 = g_last_n0 = g_sent;
	send_records(&r, 1 + rnd() % 400);
	EXPECT(tp_feed_all(&r.feed, DEADLINE_MS), "the last round's records not sent");
	EXPECT(shutdown(r.sock, SHUT_WR) == 0, "shutdown: %s", strerror(errno));
	if (!tp_until(r.acks, "OK published=", DEADLINE_MS)) {
		show_all(&r);
		EXPECT(0, "no OK for the last round: '%s'", tp_str(r.acks));
	}
	TU_EXPECT_INT(g_q, acknowledged(&r), g_sent - final_n0);
	set_acked(final_n0, g_sent);
	{
		uint64_t end = tu_now_ms() + (uint64_t)DEADLINE_MS;

		while (!drained()) {
			if (tu_now_ms() > end) {
				show_all(&r);
				EXPECT(0, "the consumers did not drain the last round");
			}
			tp_pump(tu_now_ms() + 1);
		}
	}
	for (int i = 0; i < NCONS; i++)
		kill(r.cons[i].pid, SIGTERM);
	kill(r.prod.pid, SIGTERM);
	{
		struct tp_kid *all[NCONS + 1] = {&r.prod, &r.cons[0], &r.cons[1], &r.cons[2]};

		for (int i = 0; i < NCONS + 1; i++) {
			int code;

			if (all[i]->out)
				tp_until(all[i]->out, NULL, DEADLINE_MS);
			tp_until(all[i]->err, NULL, DEADLINE_MS);
			code = tp_wait_exit(all[i], DEADLINE_MS);
			if (code != 0)
				show_all(&r);
			EXPECT(code == 0, "%s exited %d after SIGTERM", i ? g_st[i - 1].name : "the producer",
			       code);
		}
	}
	for (int i = 0; i < 2; i++)
		last[i] = take_life(&g_st[i], r.cons[i].out->s, r.cons[i].out->len, false, false, &first);
	last[2] = take_out(false, false);
	end_round(&r);

	for (int i = 0; i < NCONS; i++) {
		uint64_t lost = 0;

		for (uint64_t n = 0; n < g_sent; n++)
			lost += acked(n) && (n >= g_st[i].seen_cap || !g_st[i].seen[n]);
		if (g_durable)
			EXPECT(lost == 0, "consumer %s never got %" PRIu64 " acknowledged records",
			       g_st[i].name, lost);
		/* the last life ends with the last record sent, and in the durable
		 * modes nothing acknowledged was skipped on the way (take_life) */
		EXPECT(last[i] == g_sent - 1 && g_st[i].last_round == g_sent - final_n0,
		       "consumer %s's last life ended at %" PRIu64 " with %" PRIu64 " of the last"
		       " round's records %" PRIu64 "..%" PRIu64, g_st[i].name, last[i],
		       g_st[i].last_round, final_n0, g_sent - 1);
		if (g_durable)
			TU_EXPECT_INT(g_q, g_st[i].next, g_sent);
		printf("test_powercut: consumer %s: %" PRIu64 " lines in %" PRIu64 " lives, %" PRIu64
		       " replays (%" PRIu64 " records), %" PRIu64 " incomplete last lines, %" PRIu64
		       " holes, %" PRIu64 " acknowledged records lost\n", g_st[i].name, g_st[i].lines,
		       g_st[i].lives, g_st[i].replays, g_st[i].replayed, g_st[i].fragments,
		       g_st[i].holes, lost);
		free(g_st[i].seen);
	}
	printf("test_powercut: %d cuts (%" PRIu64 " torn: %" PRIu64 " unsynced pages, %" PRIu64
	       " kept), %" PRIu64 " records sent, %" PRIu64 " acknowledged before a cut\n", cuts,
	       torn_cuts, unsynced, kept, g_sent, acks);
}

static void case_always(void)
{
	run_cuts(MMAPQ_SYNC_ALWAYS);
}

static void case_batch(void)
{
	run_cuts(MMAPQ_SYNC_BATCH);
}

static void case_interval(void)
{
	run_cuts(MMAPQ_SYNC_INTERVAL);
}

static void case_never(void)
{
	run_cuts(MMAPQ_SYNC_NEVER);
}

static void setup(void)
{
	/* a write to the socket of a producer the cut killed is an error, not
	 * a signal */
	signal(SIGPIPE, SIG_IGN);
	g_mnt = crashfs_case_mount("powercut");
	g_tmp = tu_mkdtemp("powercut");
	g_q = tu_path(g_mnt, "queue");
	g_out = tu_path(g_mnt, "out");
	g_sock = tu_path(g_tmp, "sock");
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"always", case_always},
		{"batch", case_batch},
		{"interval", case_interval},
		{"never", case_never},
	};

	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
