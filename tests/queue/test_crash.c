/* SPDX-License-Identifier: MIT */
/*
 * test_crash -- SIGKILL the producer or the consumer at the worst instants
 * and check that nothing is lost, reordered or replayed outside the
 * documented window, that no garbage record is ever handed out, that the
 * survivor never hangs, and that the mutex is recovered (and counted)
 * exactly when the dead process held it.
 *
 * A numbered stream of binary records of random length (0..max_record, so
 * that frames, and the padding at the ring's end, land at every offset)
 * flows from a producer child to a consumer child.  Record s has a length
 * and bytes that are a function of s (its first 8 bytes are s itself when
 * it has 8): the consumer checks each one against its sequence number, and
 * a record that is not what its number says is garbage, which fails the
 * test.  Both children report to the parent through their own pipe in
 * fixed 24-byte messages, each write at most PIPE_BUF so a kill never
 * leaves half a message:
 *   producer: START(tail at attach), PUB(batch, new tail) after each publish,
 *             DONE
 *   consumer: START(head at attach), VAL(value, seq) for a whole batch in one
 *             write BEFORE it releases the batch, REL(n, new head, longest
 *             wait so far) after the release returned, DONE
 * The parent checks the stream as it goes:
 *   - every VAL is the next value expected (no loss, no doubling, in order);
 *   - a restarted consumer starts at a head h with confirmed <= h <= expected,
 *     where confirmed is the last head a REL reported: it re-reads at most the
 *     one batch it had not confirmed (the documented at-least-once window),
 *     and never skips a record;
 *   - a restarted producer starts at a tail >= the last tail it reported (a
 *     published record is never taken back);
 *   - no consumer wait (one mmapq_available call) took 2 s or more.
 * The producer puts each batch within the room mmapq_reserve promised
 * (mmapq_put, or now and then mmapq_claim and a shorter mmapq_commit); a
 * put that fails there fails the test.
 *
 * Parts:
 *   a) fault points (MMAPQ_FAULT, set in the child before its first queue
 *      call: fault.c reads it once): the process kills itself at exactly
 *      that instant (put.padded: between writing a padding frame and
 *      publishing; release.stored: between a consumer's cursor and its
 *      synced cursor); it is restarted without the fault.  The recovery
 *      counters must go up by exactly one when the point is inside the mutex
 *      and not at all otherwise.
 *   b) 100 + 100 kills by the parent at random moments, alternating sides,
 *      through a 1 KiB ring and a 128-byte one (MMAPQ_CRASH_KILLS: the
 *      stress label's 1000).
 *   c) kills of a waiter that is blocked in its wait (registered in the
 *      header, sleeping in the kernel), and at the fault point between
 *      registering and sleeping.
 *   d) a stale lock word: a copy of the file taken while a process holds the
 *      mutex (as after a power cut: no kernel marks the owner dead), and the
 *      original after the holder's death (EOWNERDEAD).
 *   e) pairs {seq, byte} half stored (fault points between the two stores,
 *      and between a cursor and its synced copy), made whole by whoever
 *      comes next: a consumer that finds nothing left to read while the
 *      producer waits for room, a consumer alone after a clean close, the
 *      repair after EOWNERDEAD with two consumers; every record of [floor,
 *      tail) read by an observer, nothing salvaged.
 * The seed (printed first) repeats a run: test_crash SEED [PARTS].
 *
 * The parent never calls a queue function that passes a fault point (the
 * children create the files), so its cached fault state never leaks into a
 * child through fork().
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define RING 1024u                    /* ring bytes of parts a, c, d */
#define MAXREC 200u                   /* frame 208 <= RING / 4 */
#define WAIT_NS (5ull * 1000000000ull) /* a child's wait deadline */
/* times tu_time_factor(): sanitizers and valgrind slow everything down */
#define MAX_WAIT_OK_NS (2ull * 1000000000ull * tu_time_factor())
#define C_MAX_BATCH 150u              /* 150 * 24 bytes < PIPE_BUF */
#define P_MAX_BATCH 16u
#define NO_PROGRESS_MS 15000

enum { P = 0, C = 1 };
enum msg_type { C_START = 1, C_VAL, C_REL, C_DONE, P_START, P_PUB, P_DONE };

struct msg {
	uint32_t type;
	uint32_t n;
	uint64_t a;
	uint64_t b;
};
_Static_assert(sizeof(struct msg) == 24, "message size");

static uint64_t g_seed;
static int g_failures;
static uint64_t g_ring = RING;     /* of the queues made from now on */
static uint32_t g_maxrec = MAXREC;

static const char *side_name(int side)
{
	return side == P ? "producer" : "consumer";
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* ---- the header, seen raw ------------------------------------------------ */

struct raw {
	uint32_t lockword, clean;
	uint32_t ne_seq, ne_waiting, nf_seq, nf_waiting;
	uint64_t head, tail, recoveries[2];
};

static bool read_raw(const char *path, struct raw *r)
{
	struct mmapq_header h;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool ok = fd >= 0 && pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h);
	if (fd >= 0)
		close(fd);
	if (!ok)
		return false;
	r->lockword = *(uint32_t *)h.lock.bytes;
	r->clean = h.state.clean;
	r->ne_seq = h.consumers[0].not_empty.seq;
	r->ne_waiting = h.consumers[0].not_empty.waiting;
	r->nf_seq = h.not_full.seq;
	r->nf_waiting = h.not_full.waiting;
	r->head = h.floor.seq;
	r->tail = h.producer.tail;
	r->recoveries[P] = h.producers[0].recoveries;
	r->recoveries[C] = h.consumers[0].recoveries;
	return true;
}

static void dump(const char *path, const char *why)
{
	struct raw r;
	tu_dump_queue(path, why);
	if (read_raw(path, &r))
		fprintf(stderr, "     lockword 0x%08" PRIx32 " not_empty(seq %" PRIu32 " waiting %" PRIu32
		        ") not_full(seq %" PRIu32 " waiting %" PRIu32 ")\n",
		        r.lockword, r.ne_seq, r.ne_waiting, r.nf_seq, r.nf_waiting);
}

static uint64_t total_recoveries(const char *path)
{
	struct raw r;
	if (!read_raw(path, &r))
		return UINT64_MAX;
	return r.recoveries[P] + r.recoveries[C];
}

/* ---- the children ---------------------------------------------------------- */

static void send(int fd, const struct msg *m, size_t n)
{
	/* one write of at most PIPE_BUF bytes: all of it or nothing */
	if (tu_write_all(fd, m, n * sizeof(*m)) < 0)
		_exit(5);
}

static struct mmapq *child_open(const char *path, enum mmapq_role role)
{
	struct mmapq_params p = {.path = path, .role = role, .size = g_ring, .max_record = g_maxrec,
	                         .format = MMAPQ_FORMAT_BINARY, .file_mode = 0600};
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &e);
	if (r < 0) {
		fprintf(stderr, "%s %d: cannot open: %s (%s)\n", side_name(role == MMAPQ_ROLE_PRODUCER ? P : C),
		        (int)getpid(), e.msg, mmapq_strerror(r));
		_exit(1);
	}
	return q;
}

/* Where a side starts: the producer at tail; the consumer at its own
 * cursor (the oldest record kept, status().head, is the lowest cursor
 * known to be on disk, which may be behind it). */
static uint64_t child_position(struct mmapq *q, int side)
{
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_status st;
	int r = side == P ? mmapq_status(q, &st) : mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX);

	if (r < 0 || (side == C && (r != 1 || strcmp(cs[0].name, MMAPQ_CONSUMER_DEFAULT)))) {
		fprintf(stderr, "%s %d: status: %s\n", side_name(side), (int)getpid(), mmapq_strerror(r));
		_exit(1);
	}
	return side == P ? st.tail : cs[0].position;
}

/* Record seq: its length (0..max_record) and its bytes, the first 8 of
 * them seq itself when there are 8. */
static uint32_t rec_len(uint64_t seq)
{
	uint64_t h = seq * 0x9e3779b97f4a7c15ull;

	return (uint32_t)((h >> 29) % (g_maxrec + 1));
}

static uint8_t rec_byte(uint64_t seq, uint32_t i)
{
	return i < 8 ? (uint8_t)(seq >> (8 * i)) : (uint8_t)(seq * 31 + i * 7 + 1);
}

static void rec_fill(uint64_t seq, uint8_t *b)
{
	for (uint32_t i = 0, n = rec_len(seq); i < n; i++)
		b[i] = rec_byte(seq, i);
}

/* The value a record carries: seq (as its bytes say it, where it has 8),
 * or ~0 if it is not record seq's length and bytes (garbage). */
static uint64_t rec_value(const struct mmapq_record *r)
{
	const uint8_t *d = r->data;
	uint64_t v = r->seq;

	if (r->len >= 8)
		memcpy(&v, d, 8);
	if (r->len != rec_len(v))
		return UINT64_MAX;
	for (uint32_t i = 0; i < r->len; i++)
		if (d[i] != rec_byte(v, i))
			return UINT64_MAX;
	return v;
}

static void producer_child(int fd, const char *path, uint64_t n, uint64_t seed)
{
	struct mmapq *q = child_open(path, MMAPQ_ROLE_PRODUCER);
	uint64_t seq = child_position(q, P), rng = seed;
	struct msg m = {.type = P_START, .a = seq};
	uint8_t *buf = malloc(g_maxrec + 1);
	int r;

	if (!buf)
		_exit(1);
	send(fd, &m, 1);
	while (seq < n) {
		uint64_t room = 0, used = 0;
		uint32_t batch = 0, most = 1 + (uint32_t)(rng_next(&rng) % P_MAX_BATCH);

		r = mmapq_reserve(q, rec_len(seq), mmapq_now_ns() + WAIT_NS, &room);
		if (r < 0) {
			fprintf(stderr, "producer %d: reserve at %" PRIu64 ": %s\n", (int)getpid(), seq,
			        mmapq_strerror(r));
			_exit(r == -ETIMEDOUT ? 4 : 1);
		}
		while (batch < most && seq + batch < n &&
		       used + mmapq_frame_size(rec_len(seq + batch)) <= room) {
			uint64_t s = seq + batch;
			void *at = NULL;

			used += mmapq_frame_size(rec_len(s));
			if (rng_next(&rng) % 4 == 0 && used - mmapq_frame_size(rec_len(s)) +
			                               mmapq_frame_size(g_maxrec) <= room) {
				/* zero copy: claimed at the most, committed shorter */
				r = mmapq_claim(q, g_maxrec, &at);
				if (r == 0) {
					rec_fill(s, at);
					r = mmapq_commit(q, rec_len(s));
				}
			} else {
				rec_fill(s, buf);
				r = mmapq_put(q, buf, rec_len(s));
			}
			if (r < 0) {
				fprintf(stderr, "producer %d: put %" PRIu64 " (%u bytes) within room %" PRIu64
				        ": %s\n", (int)getpid(), s, rec_len(s), room, mmapq_strerror(r));
				_exit(1);
			}
			batch++;
		}
		r = mmapq_publish(q);
		if (r != (int)batch) {
			fprintf(stderr, "producer %d: publish at %" PRIu64 " returned %d (%s)\n", (int)getpid(),
			        seq, r, r < 0 ? mmapq_strerror(r) : "wrong count");
			_exit(1);
		}
		seq += batch;
		m = (struct msg){.type = P_PUB, .n = batch, .a = seq};
		send(fd, &m, 1);
	}
	m = (struct msg){.type = P_DONE, .a = seq};
	send(fd, &m, 1);
	mmapq_close(q);
	free(buf);
	_exit(0);
}

static void consumer_child(int fd, const char *path, uint64_t n, uint64_t seed)
{
	struct mmapq *q = child_open(path, MMAPQ_ROLE_CONSUMER);
	uint64_t head = child_position(q, C), rng = seed, maxwait = 0;
	struct msg m[C_MAX_BATCH];
	int r;

	m[0] = (struct msg){.type = C_START, .a = head};
	send(fd, m, 1);
	while (head < n) {
		uint64_t t0 = mmapq_now_ns(), dt;
		uint32_t avail = 0, take;
		r = mmapq_available(q, t0 + WAIT_NS, &avail);
		dt = mmapq_now_ns() - t0;
		if (dt > maxwait)
			maxwait = dt;
		if (r < 0) {
			fprintf(stderr, "consumer %d: available at %" PRIu64 ": %s after %" PRIu64 " ms\n",
			        (int)getpid(), head, mmapq_strerror(r), dt / 1000000u);
			_exit(r == -ETIMEDOUT ? 4 : 1);
		}
		if (avail == 0)
			continue;
		take = avail < C_MAX_BATCH ? avail : C_MAX_BATCH;
		take = 1 + (uint32_t)(rng_next(&rng) % take);
		for (uint32_t i = 0; i < take; i++) {
			struct mmapq_record rec = {0};
			uint64_t v;

			r = mmapq_get(q, i, &rec);
			v = r == 0 ? rec_value(&rec) : UINT64_MAX;
			if (r < 0 || rec.seq != head + i || v != rec.seq) {
				fprintf(stderr, "consumer %d: record %" PRIu64 ": get %d (%s) seq %" PRIu64
				        " len %u value %" PRIu64 "%s\n", (int)getpid(), head + i, r,
				        mmapq_strerror(r), rec.seq, rec.len, v,
				        r == 0 && v == UINT64_MAX ? ": GARBAGE" : "");
				_exit(1);
			}
			m[i] = (struct msg){.type = C_VAL, .a = v, .b = rec.seq};
		}
		send(fd, m, take); /* written out ... */
		r = mmapq_release(q, take); /* ... then released */
		if (r < 0) {
			fprintf(stderr, "consumer %d: release(%u) at %" PRIu64 ": %s\n", (int)getpid(), take,
			        head, mmapq_strerror(r));
			_exit(1);
		}
		head += take;
		m[0] = (struct msg){.type = C_REL, .n = take, .a = head, .b = maxwait};
		send(fd, m, 1);
	}
	m[0] = (struct msg){.type = C_DONE, .a = head, .b = maxwait};
	send(fd, m, 1);
	mmapq_close(q);
	_exit(0);
}

/* ---- the parent's side: processes, messages, checks ------------------------------ */

struct proc {
	pid_t pid;        /* 0: not running */
	pid_t last_pid;
	int fd, pidfd;
	int status;       /* of the last exit */
	bool kill_sent;   /* the parent sent SIGKILL */
	const char *fault;
	unsigned char buf[sizeof(struct msg)];
	size_t have;
	int starts, kills, done;
	uint64_t msgs;    /* VALs (consumer) or PUBs (producer) since the last kill */
};

struct world {
	const char *name;
	const char *path;
	uint64_t n;
	struct proc pr[2];
	/* consumer stream */
	uint64_t expected, confirmed, unconfirmed;
	uint64_t replays, max_replay, last_replay;
	uint64_t max_wait_ns;
	bool c_finished;
	/* producer stream */
	uint64_t last_pub, last_p_start, last_p_gap;
	bool p_finished;
	/* random kills (part b) */
	bool random_kills;
	int kills_left, victim;
	uint64_t trigger, rng;
	int failed;
	uint64_t last_progress_ms;
};

static void wfail(struct world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wfail(struct world *w, const char *fmt, ...)
{
	va_list ap;
	if (w->failed++ == 0) {
		fprintf(stderr, "FAIL [%s] (seed %" PRIu64 "): ", w->name, g_seed);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fprintf(stderr, "\n     stream: expected %" PRIu64 " confirmed %" PRIu64 " unconfirmed %" PRIu64
		        " last published %" PRIu64 "; starts %d/%d kills %d/%d\n",
		        w->expected, w->confirmed, w->unconfirmed, w->last_pub, w->pr[P].starts,
		        w->pr[C].starts, w->pr[P].kills, w->pr[C].kills);
		dump(w->path, w->name);
	}
}

static void start(struct world *w, int side, const char *fault)
{
	struct proc *p = &w->pr[side];
	int fds[2];
	uint64_t seed = g_seed ^ ((uint64_t)(p->starts + 1) * 0x9e3779b97f4a7c15ull) ^ (uint64_t)side;
	pid_t pid;

	tu_pipe(fds);
	pid = tu_fork();
	if (pid == 0) {
		close(fds[0]);
		/* before the first queue call: fault.c reads it once */
		if (fault)
			setenv("MMAPQ_FAULT", fault, 1);
		else
			unsetenv("MMAPQ_FAULT");
		if (side == P)
			producer_child(fds[1], w->path, w->n, seed);
		else
			consumer_child(fds[1], w->path, w->n, seed);
		_exit(99);
	}
	close(fds[1]);
	p->pid = p->last_pid = pid;
	p->fd = fds[0];
	p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (p->pidfd < 0) {
		perror("pidfd_open");
		exit(99);
	}
	p->kill_sent = false;
	p->fault = fault;
	p->have = 0;
	p->starts++;
}

static void on_msg(struct world *w, int side, const struct msg *m)
{
	struct proc *p = &w->pr[side];

	w->last_progress_ms = tu_now_ms();
	switch (m->type) {
	case C_START:
		if (m->a < w->confirmed)
			wfail(w, "consumer restarted at head %" PRIu64 ", behind the confirmed release %" PRIu64,
			      m->a, w->confirmed);
		else if (m->a > w->expected)
			wfail(w, "consumer restarted at head %" PRIu64 ", beyond the next record it was given"
			      " (%" PRIu64 "): records lost", m->a, w->expected);
		w->last_replay = w->expected - m->a;
		w->replays += w->last_replay;
		if (w->last_replay > w->max_replay)
			w->max_replay = w->last_replay;
		w->expected = w->confirmed = m->a;
		w->unconfirmed = 0;
		break;
	case C_VAL:
		if (m->a != w->expected || m->b != w->expected)
			wfail(w, "consumer got value %" PRIu64 " (seq %" PRIu64 "), expected %" PRIu64
			      ": %s", m->a, m->b, w->expected, m->a < w->expected ? "doubled/reordered" : "lost");
		if (m->a >= w->n)
			wfail(w, "value %" PRIu64 " beyond the stream of %" PRIu64, m->a, w->n);
		w->expected++;
		w->unconfirmed++;
		p->msgs++;
		break;
	case C_REL:
		if (m->a != w->expected || m->n != w->unconfirmed)
			wfail(w, "consumer released %u up to %" PRIu64 ", but was given %" PRIu64 " up to %" PRIu64,
			      m->n, m->a, w->unconfirmed, w->expected);
		w->confirmed = m->a;
		w->unconfirmed = 0;
		/* fall through */
	case C_DONE:
		if (m->b > w->max_wait_ns)
			w->max_wait_ns = m->b;
		if (m->type == C_DONE) {
			if (m->a != w->n || w->expected != w->n)
				wfail(w, "consumer done at %" PRIu64 " of %" PRIu64, m->a, w->n);
			w->c_finished = true;
		}
		break;
	case P_START:
		if (m->a < w->last_pub)
			wfail(w, "producer restarted at tail %" PRIu64 ", behind the published %" PRIu64,
			      m->a, w->last_pub);
		if (m->a > w->last_pub + P_MAX_BATCH)
			wfail(w, "producer restarted at tail %" PRIu64 ", more than a batch beyond %" PRIu64,
			      m->a, w->last_pub);
		w->last_p_gap = m->a - w->last_pub;
		w->last_p_start = m->a;
		w->last_pub = m->a;
		break;
	case P_PUB:
		if (m->a != w->last_pub + m->n)
			wfail(w, "producer published %u up to %" PRIu64 " after %" PRIu64, m->n, m->a, w->last_pub);
		w->last_pub = m->a;
		p->msgs++;
		break;
	case P_DONE:
		if (m->a != w->n)
			wfail(w, "producer done at %" PRIu64 " of %" PRIu64, m->a, w->n);
		w->p_finished = true;
		break;
	default:
		wfail(w, "bad message type %u from the %s", m->type, side_name(side));
	}
}

/* Read what is there (all of it, up to EOF, if drain). */
static void read_msgs(struct world *w, int side, bool drain)
{
	struct proc *p = &w->pr[side];
	unsigned char buf[4096];

	for (;;) {
		ssize_t k;
		if (!drain) {
			struct pollfd pf = {.fd = p->fd, .events = POLLIN};
			if (poll(&pf, 1, 0) <= 0)
				return;
		}
		k = read(p->fd, buf, sizeof(buf));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		for (ssize_t i = 0; i < k; i++) {
			p->buf[p->have++] = buf[i];
			if (p->have == sizeof(struct msg)) {
				struct msg m;
				memcpy(&m, p->buf, sizeof(m));
				p->have = 0;
				on_msg(w, side, &m);
			}
		}
		if (!drain)
			return;
	}
}

static void random_kill_policy(struct world *w)
{
	struct proc *v;
	if (!w->random_kills || w->kills_left <= 0)
		return;
	v = &w->pr[w->victim];
	if (!v->pid || v->kill_sent || v->msgs < w->trigger)
		return;
	kill(v->pid, SIGKILL);
	v->kill_sent = true;
}

static void next_victim(struct world *w)
{
	w->kills_left--;
	w->victim = w->victim == C ? P : C;
	/* consumer: after 1..400 more records; producer: after 1..30 more
	 * publishes */
	w->trigger = w->victim == C ? 1 + rng_next(&w->rng) % 400 : 1 + rng_next(&w->rng) % 30;
	w->pr[w->victim].msgs = 0;
}

/*
 * Run until a child exits (returns its side, reaped and its messages all
 * read) or timeout_ms passes (-1).
 */
static int pump(struct world *w, int timeout_ms)
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		struct pollfd pf[4];
		int map[4], n = 0;
		uint64_t now = tu_now_ms();

		if (w->failed)
			return -1;
		if (now >= end)
			return -1;
		for (int s = 0; s < 2; s++) {
			if (!w->pr[s].pid)
				continue;
			pf[n] = (struct pollfd){.fd = w->pr[s].fd, .events = POLLIN};
			map[n++] = s;
			pf[n] = (struct pollfd){.fd = w->pr[s].pidfd, .events = POLLIN};
			map[n++] = 2 + s;
		}
		if (n == 0)
			return -1;
		if (poll(pf, (nfds_t)n, (int)(end - now)) <= 0)
			continue;
		for (int i = 0; i < n; i++)
			if (map[i] < 2 && (pf[i].revents & (POLLIN | POLLHUP)))
				read_msgs(w, map[i], false);
		random_kill_policy(w);
		for (int i = 0; i < n; i++) {
			struct proc *p;
			int s, st;
			if (map[i] < 2 || !(pf[i].revents & POLLIN))
				continue;
			s = map[i] - 2;
			p = &w->pr[s];
			st = tu_wait(p->pid, 1000);
			if (st == -ETIMEDOUT)
				continue; /* not yet */
			read_msgs(w, s, true); /* the writer is gone: EOF comes */
			close(p->fd);
			close(p->pidfd);
			p->pid = 0;
			p->fd = p->pidfd = -1;
			p->status = st;
			return s;
		}
	}
}

static void stop_all(struct world *w)
{
	for (int s = 0; s < 2; s++) {
		struct proc *p = &w->pr[s];
		if (!p->pid)
			continue;
		tu_kill(p->pid);
		close(p->fd);
		close(p->pidfd);
		p->pid = 0;
	}
}

static void world_init(struct world *w, const char *name, const char *path, uint64_t n)
{
	memset(w, 0, sizeof(*w));
	w->name = name;
	w->path = path;
	w->n = n;
	w->last_progress_ms = tu_now_ms();
	w->pr[P].fd = w->pr[P].pidfd = w->pr[C].fd = w->pr[C].pidfd = -1;
}

/*
 * Run both sides (already started, or started here if not running) until
 * both finished.  A side that dies of SIGKILL (its fault point, or the
 * parent's kill) is restarted without a fault; any other end fails.
 */
static void run_to_end(struct world *w, int timeout_ms)
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;

	for (int s = 0; s < 2; s++)
		if (!w->pr[s].pid && !(s == P ? w->p_finished : w->c_finished))
			start(w, s, NULL);
	while (!w->failed && !(w->p_finished && w->c_finished)) {
		uint64_t now = tu_now_ms();
		int s;
		struct proc *p;
		if (now >= end) {
			wfail(w, "not finished within %d ms: a survivor hung?", timeout_ms);
			break;
		}
		if (now - w->last_progress_ms > NO_PROGRESS_MS) {
			wfail(w, "no progress for %d ms", NO_PROGRESS_MS);
			break;
		}
		s = pump(w, (int)(end - now < 1000 ? end - now : 1000));
		if (s < 0)
			continue;
		p = &w->pr[s];
		if (WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0) {
			if (!(s == P ? w->p_finished : w->c_finished))
				wfail(w, "%s exited 0 without finishing", side_name(s));
			continue;
		}
		if (WIFSIGNALED(p->status) && WTERMSIG(p->status) == SIGKILL && (p->fault || p->kill_sent)) {
			p->kills++;
			if (p->kill_sent && w->random_kills)
				next_victim(w);
			start(w, s, NULL);
			continue;
		}
		wfail(w, "%s pid %d %s ended unexpectedly: exit code %d", side_name(s), p->last_pid,
		      p->fault ? p->fault : "(no fault)", tu_exit_code(p->status));
	}
	if (w->max_wait_ns >= MAX_WAIT_OK_NS)
		wfail(w, "a consumer wait took %" PRIu64 " ms (limit %llu ms)", w->max_wait_ns / 1000000u,
		      MAX_WAIT_OK_NS / 1000000u);
	stop_all(w);
	if (!w->failed) {
		struct raw r;
		if (!read_raw(w->path, &r) || r.head != w->n || r.tail != w->n)
			wfail(w, "final positions head %" PRIu64 " tail %" PRIu64 ", want %" PRIu64, r.head, r.tail, w->n);
	}
}

/* A helper child makes an empty queue file (the parent stays clear of the
 * fault points). */
static void create_queue(const char *path)
{
	pid_t pid = fork();
	int st;
	if (pid == 0) {
		unsetenv("MMAPQ_FAULT");
		mmapq_close(child_open(path, MMAPQ_ROLE_PRODUCER));
		_exit(0);
	}
	st = tu_wait(pid, 10000);
	if (tu_exit_code(st) != 0) {
		fprintf(stderr, "cannot create %s (child ended with %d)\n", path, tu_exit_code(st));
		exit(99);
	}
}

/* Spin, yielding, until *word == want (through a read-only mapping). */
static bool spin_word(const char *path, size_t off, uint32_t want, int timeout_ms)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	const uint8_t *h;
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	bool ok = false;

	if (fd < 0)
		return false;
	h = mmap(NULL, MMAPQ_HEADER_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (h == MAP_FAILED)
		return false;
	while (tu_now_ms() < end) {
		if (__atomic_load_n((const uint32_t *)(h + off), __ATOMIC_ACQUIRE) == want) {
			ok = true;
			break;
		}
		sched_yield();
	}
	munmap((void *)h, MMAPQ_HEADER_SIZE);
	return ok;
}

/* ---- a) fault points ---------------------------------------------------------- */

struct point {
	int side;
	const char *fault;
	bool in_mutex;
};

static void fault_point_run(const char *dir, const struct point *pt)
{
	char name[96], file[64];
	char *path;
	struct world w;
	uint64_t rec0, rec1, t0 = tu_now_ms();
	int fails0 = g_failures;

	snprintf(name, sizeof(name), "a) %s killed at %s", side_name(pt->side), pt->fault);
	snprintf(file, sizeof(file), "a-%s-%s.q", side_name(pt->side), pt->fault);
	path = tu_path(dir, file);
	create_queue(path);
	world_init(&w, name, path, 3000);
	rec0 = total_recoveries(path);

	/* the consumer first, waiting on the empty queue: the producer's
	 * first publishes then find a registered waiter to signal */
	start(&w, C, pt->side == C ? pt->fault : NULL);
	if (pt->side == P &&
	    !spin_word(path, offsetof(struct mmapq_header, consumers[0].not_empty.waiting), 1, 5000))
		wfail(&w, "the consumer never waited on the empty queue");
	start(&w, P, pt->side == P ? pt->fault : NULL);
	run_to_end(&w, 30000);

	rec1 = total_recoveries(path);
	if (!w.failed && w.pr[pt->side].kills != 1)
		wfail(&w, "the %s never reached the fault point %s (%d kills)", side_name(pt->side), pt->fault,
		      w.pr[pt->side].kills);
	if (!w.failed && w.pr[!pt->side].starts != 1)
		wfail(&w, "the surviving %s was restarted", side_name(!pt->side));
	if (!w.failed && rec1 - rec0 != (pt->in_mutex ? 1u : 0u))
		wfail(&w, "recoveries went from %" PRIu64 " to %" PRIu64 ", expected +%d (killed %s the mutex)",
		      rec0, rec1, pt->in_mutex ? 1 : 0, pt->in_mutex ? "holding" : "not holding");
	/* the replay window: killed before its cursor's seq is stored
	 * (release.position_byte: its byte only), the consumer reads its batch
	 * again; every other consumer point comes after (release.stored,
	 * .locked, .synced, .synced_byte, floor.seq, the not_full signal) or
	 * with nothing unreleased (wait.unlocked): nothing is read twice */
	if (!w.failed && pt->side == C) {
		bool before = !strncmp(pt->fault, "release.position_byte", 21);

		if (before && w.replays == 0)
			wfail(&w, "killed before storing its cursor, yet the new consumer replayed nothing");
		if (!before && w.replays != 0)
			wfail(&w, "%" PRIu64 " records replayed, none expected at %s", w.replays, pt->fault);
	}
	if (!w.failed && pt->side == P) {
		/* where the restarted producer began, against the last tail the
		 * dead one reported: once its reservation is committed the
		 * killed batch is published (by whoever advances tail next, or
		 * the repair that finishes an advance half done: it starts
		 * beyond); before, rolled back (it starts right there) */
		bool stored = !strncmp(pt->fault, "advance.", 8) ||
		              !strncmp(pt->fault, "commit.stored", 13) ||
		              !strncmp(pt->fault, "signal.incremented", 18);
		if (w.replays != 0)
			wfail(&w, "the consumer replayed %" PRIu64 " records without being killed", w.replays);
		else if (stored && w.last_p_gap == 0)
			wfail(&w, "killed after storing tail, but the restarted producer began at the old tail");
		else if (!stored && w.last_p_gap != 0)
			wfail(&w, "killed before publishing, but the restarted producer began %" PRIu64
			      " records beyond the last reported tail", w.last_p_gap);
	}
	if (w.failed)
		g_failures++;
	printf("%-52s %s: replayed %" PRIu64 ", producer resumed +%" PRIu64 ", recoveries +%" PRIu64
	       ", %" PRIu64 " ms\n", name, g_failures > fails0 ? "FAILED" : "ok", w.replays,
	       w.last_p_gap, rec1 - rec0, tu_now_ms() - t0);
	fflush(stdout);
	free(path);
}

/* The producer's restart point tells whether the killed batch was
 * published: checked here, where the parent sees the P_START that follows
 * the kill. */
static void part_a(const char *dir)
{
	/* each point at its 1st, 3rd and 9th passage (put.written: 1st, 20th
	 * and 77th record; put.padded: the 1st, 3rd and 9th padding frame) */
	const struct point pts[] = {
		{P, "publish.locked@1", true},     {P, "publish.locked@3", true},
		{P, "publish.locked@9", true},     {P, "advance.stored@1", true},
		{P, "advance.stored@3", true},     {P, "advance.stored@9", true},
		{P, "commit.stored@1", true},      {P, "commit.stored@3", true},
		{P, "commit.stored@9", true},
		{P, "put.written@1", false},       {P, "put.written@20", false},
		{P, "put.written@77", false},      {P, "put.padded@1", false},
		{P, "put.padded@3", false},        {P, "put.padded@9", false},
		{P, "signal.incremented@1", true}, {P, "signal.incremented@3", true},
		{P, "signal.incremented@9", true}, {P, "wait.unlocked@1", false},
		{P, "wait.unlocked@3", false},     {P, "wait.unlocked@9", false},
		{C, "release.stored@1", false},    {C, "release.stored@3", false},
		{C, "release.stored@9", false},    {C, "release.locked@1", true},
		{C, "release.locked@3", true},     {C, "release.locked@9", true},
		{C, "release.synced@1", true},     {C, "release.synced@3", true},
		{C, "release.synced@9", true},     {C, "wait.unlocked@1", false},
		{C, "wait.unlocked@3", false},     {C, "wait.unlocked@9", false},
		{C, "signal.incremented@1", true}, {C, "signal.incremented@3", true},
		{C, "signal.incremented@9", true},
		/* between the two stores of a pair {seq, byte} */
		{P, "advance.tail_byte@1", true},  {P, "advance.tail_byte@3", true},
		{P, "advance.tail_byte@9", true},  {C, "release.position_byte@1", false},
		{C, "release.position_byte@3", false}, {C, "release.position_byte@9", false},
		{C, "release.synced_byte@1", true}, {C, "release.synced_byte@3", true},
		{C, "release.synced_byte@9", true}, {C, "floor.seq@1", true},
		{C, "floor.seq@3", true},          {C, "floor.seq@9", true},
	};
	for (size_t i = 0; i < sizeof(pts) / sizeof(pts[0]); i++)
		fault_point_run(dir, &pts[i]);
}

/* ---- b) random kills -------------------------------------------------------- */

/* kills per side and run; MMAPQ_CRASH_KILLS overrides (the stress suite) */
static int g_kills = 100;

static void random_kills_run(const char *dir, uint64_t ring, uint32_t maxrec)
{
	char *path, name[80], file[64];
	struct world w;
	uint64_t t0 = tu_now_ms(), rec;
	int fails0 = g_failures;

	snprintf(name, sizeof(name), "b) %d + %d random kills, %" PRIu64 "-byte ring", g_kills, g_kills,
	         ring);
	snprintf(file, sizeof(file), "b-random-%" PRIu64 ".q", ring);
	path = tu_path(dir, file);
	g_ring = ring;
	g_maxrec = maxrec;
	create_queue(path);
	world_init(&w, name, path, 1500u * (uint64_t)g_kills);
	w.random_kills = true;
	w.kills_left = 2 * g_kills + 1; /* next_victim() below takes one */
	w.victim = P;
	w.rng = g_seed * 7 + 3;
	next_victim(&w); /* the consumer first */
	run_to_end(&w, 120000u * (uint64_t)(g_kills / 100 + 1));
	if (!w.failed && (w.pr[P].kills != g_kills || w.pr[C].kills != g_kills))
		wfail(&w, "the stream ended after %d producer and %d consumer kills, want %d each",
		      w.pr[P].kills, w.pr[C].kills, g_kills);
	rec = total_recoveries(path);
	if (!w.failed && rec > (uint64_t)(w.pr[P].kills + w.pr[C].kills))
		wfail(&w, "%" PRIu64 " recoveries for %d kills", rec, w.pr[P].kills + w.pr[C].kills);
	if (w.failed)
		g_failures++;
	printf("%-52s %s: %d+%d kills, %" PRIu64 " records replayed (max %" PRIu64 " at once),"
	       " %" PRIu64 " recoveries, longest consumer wait %" PRIu64 " ms, %" PRIu64 " ms\n",
	       w.name, g_failures > fails0 ? "FAILED" : "ok", w.pr[P].kills, w.pr[C].kills, w.replays,
	       w.max_replay, rec, w.max_wait_ns / 1000000u, tu_now_ms() - t0);
	fflush(stdout);
	g_ring = RING;
	g_maxrec = MAXREC;
	free(path);
}

static void part_b(const char *dir)
{
	random_kills_run(dir, RING, MAXREC);
	/* 128 bytes, records of up to 24: a handful of records in the ring,
	 * nearly every one a wait and a wake-up, so many kills land in a wait
	 * or a signal */
	random_kills_run(dir, 128, 24);
}

/* ---- c) kill a blocked waiter ----------------------------------------------------- */

/* Spin until side's process is registered as waiting and asleep in futex()
 * on its condition's word. */
static bool wait_until_blocked(struct world *w, int side, int timeout_ms)
{
	size_t off = side == C ? offsetof(struct mmapq_header, consumers[0].not_empty.waiting)
	                       : offsetof(struct mmapq_header, not_full.waiting);
	/* a producer sleeps on its entry's room word, not_full.waiting saying
	 * that one does */
	size_t futex_word = side == C ? offsetof(struct mmapq_header, consumers[0].not_empty.seq)
	                              : offsetof(struct mmapq_header, producers[0].room.seq);
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	while (tu_now_ms() < end) {
		if (spin_word(w->path, off, 1, 10) && tu_in_futex_on(w->pr[side].pid, w->path, futex_word))
			return true;
		sched_yield();
	}
	return false;
}

static void blocked_run(const char *dir, int side, bool by_fault)
{
	char name[96], file[64];
	char *path;
	struct world w;
	uint64_t t0 = tu_now_ms(), rec0;
	int fails0 = g_failures, s;
	const char *waitword = side == C ? "not_empty" : "not_full";
	struct raw r;

	snprintf(name, sizeof(name), "c) %s %s", side_name(side),
	         by_fault ? "killed between registering and sleeping" : "killed asleep in its wait");
	snprintf(file, sizeof(file), "c-%s-%d.q", side_name(side), by_fault);
	path = tu_path(dir, file);
	create_queue(path);
	world_init(&w, name, path, 200);
	rec0 = total_recoveries(path);

	/* alone: the consumer on an empty queue, the producer filling the
	 * queue with nobody to consume */
	start(&w, side, by_fault ? "wait.unlocked" : NULL);
	if (by_fault) {
		s = pump(&w, 10000);
		if (s != side || !WIFSIGNALED(w.pr[side].status) || WTERMSIG(w.pr[side].status) != SIGKILL)
			wfail(&w, "the %s did not die at wait.unlocked (exit code %d)", side_name(side),
			      s < 0 ? -1 : tu_exit_code(w.pr[side].status));
	} else {
		if (!wait_until_blocked(&w, side, 10000))
			wfail(&w, "the %s never blocked in its wait (%s.waiting == 1 and in futex)",
			      side_name(side), waitword);
		kill(w.pr[side].pid, SIGKILL);
		s = pump(&w, 10000);
		if (s != side || !WIFSIGNALED(w.pr[side].status))
			wfail(&w, "the %s did not die of our SIGKILL", side_name(side));
	}
	w.pr[side].kills++;
	/* it left its registration behind, and no lock */
	if (!w.failed && (!read_raw(path, &r) || (side == C ? r.ne_waiting : r.nf_waiting) != 1 || r.lockword != 0))
		wfail(&w, "after the kill: %s.waiting %u lockword 0x%x, expected a stale waiting = 1 and a free lock",
		      waitword, side == C ? r.ne_waiting : r.nf_waiting, r.lockword);
	/* the other side alone must carry on (the producer publishes into the
	 * stale registration; the consumer drains a full queue), then both */
	if (!w.failed) {
		start(&w, !side, NULL);
		run_to_end(&w, 30000);
	}
	if (!w.failed && total_recoveries(path) != rec0)
		wfail(&w, "recoveries changed (%" PRIu64 " -> %" PRIu64 ") though no mutex was held", rec0,
		      total_recoveries(path));
	if (w.failed)
		g_failures++;
	printf("%-52s %s: replayed %" PRIu64 ", %" PRIu64 " ms\n", name,
	       g_failures > fails0 ? "FAILED" : "ok", w.replays, tu_now_ms() - t0);
	fflush(stdout);
	free(path);
}

static void part_c(const char *dir)
{
	blocked_run(dir, C, true);
	blocked_run(dir, C, false);
	blocked_run(dir, P, true);
	blocked_run(dir, P, false);
}

/* ---- d) stale lock word --------------------------------------------------------- */

static bool copy_file(const char *from, const char *to)
{
	size_t len;
	char *b = tu_read_file(from, &len);
	bool ok = b && tu_write_file(to, b, len) == 0;
	free(b);
	return ok;
}

static void part_d(const char *dir)
{
	char *path = tu_path(dir, "d-orig.q"), *copy = tu_path(dir, "d-copy.q");
	struct world w;
	int sync_pipe[2], fails0 = g_failures;
	pid_t pid;
	uint64_t t0 = tu_now_ms();
	struct raw r;
	char c;

	g_maxrec = 24; /* the eight records below fit the ring whatever their lengths */
	create_queue(path);
	world_init(&w, "d) stale lock word", path, 10);
	if (pipe2(sync_pipe, O_CLOEXEC) < 0) {
		perror("pipe2");
		exit(99);
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct mmapq *q;
		uint64_t room;
		uint8_t b[24];
		close(sync_pipe[0]);
		/* the second publish stops for good holding the mutex */
		setenv("MMAPQ_FAULT", "publish.locked@2:hang", 1);
		q = child_open(path, MMAPQ_ROLE_PRODUCER);
		if (mmapq_reserve(q, 0, 0, &room) < 0 || room < 8 * mmapq_frame_size(24))
			_exit(1);
		for (uint64_t v = 0; v < 8; v++) {
			rec_fill(v, b);
			if (mmapq_put(q, b, rec_len(v)) < 0)
				_exit(1);
			if (v == 4 && mmapq_publish(q) != 5) /* 0..4 published */
				_exit(1);
		}
		if (write(sync_pipe[1], "H", 1) != 1)
			_exit(1);
		mmapq_publish(q); /* 5..7: never */
		_exit(2);
	}
	close(sync_pipe[1]);
	{
		struct pollfd pf = {.fd = sync_pipe[0], .events = POLLIN};
		if (poll(&pf, 1, 10000) != 1 || read(sync_pipe[0], &c, 1) != 1)
			wfail(&w, "the producer never got to its second publish");
	}
	close(sync_pipe[0]);
	/* it has said it is about to publish: the lock word turns non-zero
	 * when it holds the mutex (a spin on the file, with a deadline) */
	if (!w.failed) {
		uint64_t end = tu_now_ms() + 5000;
		bool held = false;
		while (!held && tu_now_ms() < end) {
			held = read_raw(path, &r) && r.lockword != 0;
			if (!held)
				sched_yield();
		}
		if (!held)
			wfail(&w, "the producer never took the mutex");
	}
	if (!w.failed && !copy_file(path, copy))
		wfail(&w, "cannot copy the file");
	tu_kill(pid);

	/* the copy: a lock word owned by a thread no kernel will ever mark dead */
	if (!w.failed) {
		struct world wc;
		uint64_t rec0;
		world_init(&wc, "d) copy taken while the mutex was held", copy, 10);
		if (!read_raw(copy, &r) || r.lockword == 0 || (r.lockword & 0x40000000u))
			wfail(&wc, "the copy's lock word is 0x%08x: expected held, owner not marked dead", r.lockword);
		rec0 = total_recoveries(copy);
		start(&wc, C, NULL);
		start(&wc, P, NULL);
		run_to_end(&wc, 20000);
		if (!wc.failed && wc.last_p_start != 5)
			wfail(&wc, "the new producer started at %" PRIu64 ", want 5 (0..4 published, 5..7 not)",
			      wc.last_p_start);
		if (!wc.failed && total_recoveries(copy) - rec0 != 1)
			wfail(&wc, "recoveries %" PRIu64 " -> %" PRIu64 ", want exactly one stale-lock reset", rec0,
			      total_recoveries(copy));
		if (wc.failed)
			w.failed++;
		printf("%-52s %s\n", wc.name, wc.failed ? "FAILED" : "ok");
	}
	/* the original: the kernel marked the dead owner (EOWNERDEAD) */
	if (!w.failed) {
		uint64_t rec0 = total_recoveries(path);
		if (!read_raw(path, &r) || !(r.lockword & 0x40000000u))
			wfail(&w, "the original's lock word is 0x%08x: expected FUTEX_OWNER_DIED", r.lockword);
		start(&w, C, NULL);
		start(&w, P, NULL);
		run_to_end(&w, 20000);
		if (!w.failed && w.last_p_start != 5)
			wfail(&w, "the new producer started at %" PRIu64 ", want 5", w.last_p_start);
		if (!w.failed && total_recoveries(path) - rec0 != 1)
			wfail(&w, "recoveries %" PRIu64 " -> %" PRIu64 ", want exactly one EOWNERDEAD repair", rec0,
			      total_recoveries(path));
		printf("%-52s %s\n", "d) original after the holder's death (EOWNERDEAD)", w.failed ? "FAILED" : "ok");
	}
	if (w.failed)
		g_failures++;
	printf("%-52s %s: %" PRIu64 " ms\n", "d) stale lock word", g_failures > fails0 ? "FAILED" : "ok",
	       tu_now_ms() - t0);
	fflush(stdout);
	g_maxrec = MAXREC;
	free(path);
	free(copy);
}

/* ---- e) pairs half stored ------------------------------------------------------ */

/*
 * Each position is a pair {seq, byte} stored in two steps; a process killed
 * between them (fault points release.position_byte, release.synced_byte,
 * floor.seq, advance.tail_byte) or between a cursor and its synced copy
 * (release.stored, .locked, .synced) leaves a state the next processes must
 * make whole, whoever they are: one that finds the dead holder's mutex
 * (EOWNERDEAD), one that attaches beside a live peer, or one alone after a
 * peer closed the file cleanly (a last close does not look at the pairs).
 * Small records here (max_record 24), so that a whole run fits the ring.
 */

/* A child for part e: fn(arg, to the parent, from the parent) with
 * MMAPQ_FAULT=fault (NULL: none). */
struct kid {
	pid_t pid;
	int out, cmd; /* the parent's ends: what the child says, what it is told */
};

static struct kid kid_start(void (*fn)(int out, int cmd, const char *arg), const char *arg,
                            const char *fault)
{
	int o[2], c[2];
	struct kid k;

	tu_pipe(o);
	tu_pipe(c);
	k.pid = tu_fork();
	if (k.pid == 0) {
		/* only its own two ends: another child's, inherited, would keep
		 * that child from seeing its EOF */
		for (int fd = 3; fd < 1024; fd++)
			if (fd != o[1] && fd != c[0])
				close(fd);
		if (fault)
			setenv("MMAPQ_FAULT", fault, 1);
		else
			unsetenv("MMAPQ_FAULT");
		fn(o[1], c[0], arg);
		_exit(0);
	}
	close(o[1]);
	close(c[0]);
	tu_track(k.pid);
	k.out = o[0];
	k.cmd = c[1];
	return k;
}

/* What a child said (8 bytes), within ms; false at the deadline or EOF. */
static bool kid_said(struct kid *k, uint64_t *v, int ms)
{
	struct pollfd pf = {.fd = k->out, .events = POLLIN};

	return poll(&pf, 1, ms * (int)tu_time_factor()) == 1 && read(k->out, v, 8) == 8;
}

static void kid_tell(struct kid *k, char c)
{
	if (write(k->cmd, &c, 1) != 1)
		tu_die("write to a child");
}

/* Its wait status: -1 if it did not end within 10 s (then killed). */
static int kid_end(struct kid *k)
{
	int st;

	close(k->cmd); /* EOF: a child waiting to be told ends */
	k->cmd = -1;
	st = tu_wait(k->pid, 10000 * (int)tu_time_factor());

	if (st == -ETIMEDOUT)
		tu_kill(k->pid);
	tu_untrack(k->pid);
	close(k->out);
	return st == -ETIMEDOUT ? -1 : st;
}

static void say(int fd, uint64_t v)
{
	if (write(fd, &v, 8) != 8)
		_exit(5);
}

static char told(int fd)
{
	char c = 0;

	if (read(fd, &c, 1) != 1)
		return 0;
	return c;
}

static struct mmapq *open_named(const char *path, enum mmapq_role role, const char *name)
{
	struct mmapq_params p = {.path = path, .role = role, .size = g_ring, .max_record = g_maxrec,
	                         .format = MMAPQ_FORMAT_BINARY, .file_mode = 0600, .consumer = name};
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &e);

	if (r < 0) {
		fprintf(stderr, "%d: cannot open: %s\n", (int)getpid(), e.msg);
		_exit(1);
	}
	return q;
}

/* Producer of part e: arg "fill" fills the ring and then waits (10 s) for
 * room for one more, saying 0 or the error; else it publishes atoi(arg)
 * records.  Says how many it published, then holds the role until told. */
static void e_producer(int out, int cmd, const char *arg)
{
	struct mmapq *q = open_named(arg[0] == 'f' ? arg + 5 : strchr(arg, ':') + 1,
	                             MMAPQ_ROLE_PRODUCER, NULL);
	uint64_t n = arg[0] == 'f' ? UINT64_MAX : strtoull(arg, NULL, 10), seq = 0, room;
	uint8_t b[256];
	int r;

	for (; seq < n; seq++) {
		rec_fill(seq, b);
		if (mmapq_put(q, b, rec_len(seq)) < 0)
			break;
	}
	if (mmapq_publish(q) != (int)seq)
		_exit(1);
	say(out, seq);
	if (n == UINT64_MAX) {
		r = mmapq_reserve(q, rec_len(seq), mmapq_now_ns() + 10000000000ull * tu_time_factor(),
		                  &room);
		say(out, (uint64_t)(int64_t)r);
	}
	(void)told(cmd);
	mmapq_close(q);
}

/* A consumer of part e (arg "NAME:PATH"): on 'r' + a count byte it reads
 * and checks that many records and releases them, saying the first one's
 * seq; on 'a' it says what is available (0: nothing); on EOF it closes. */
static void e_consumer(int out, int cmd, const char *arg)
{
	char name[16];
	const char *colon = strchr(arg, ':');
	struct mmapq *q;
	char c;

	snprintf(name, sizeof(name), "%.*s", (int)(colon - arg), arg);
	q = open_named(colon + 1, MMAPQ_ROLE_CONSUMER, name);
	say(out, 0);
	while ((c = told(cmd))) {
		uint32_t n = 0, k = c == 'r' ? (uint8_t)told(cmd) : 0;
		struct mmapq_record rec = {0};
		int r = mmapq_available(q, 0, &n);

		if (c == 'a') {
			say(out, r == -EAGAIN ? 0 : r < 0 ? UINT64_MAX : n);
			continue;
		}
		if (r < 0 || n < k)
			_exit(2);
		for (uint32_t i = 0; i < k; i++)
			if (mmapq_get(q, i, &rec) < 0 || rec_value(&rec) != rec.seq) {
				fprintf(stderr, "consumer %s: record %u: %s\n", name, i,
				        rec.len ? "GARBAGE" : "unreadable");
				_exit(3);
			}
		if (mmapq_get(q, 0, &rec) < 0)
			_exit(3);
		say(out, rec.seq);
		if (mmapq_release(q, k) < 0)
			_exit(4);
		say(out, k);
	}
	mmapq_close(q);
}

/* Every record of [head, tail) peeked by an observer, each what its number
 * says; nothing salvaged.  A failure said in *why. */
static bool e_observe(const char *path, char *why, size_t size)
{
	struct mmapq_params p = {.path = path, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_status st;
	struct mmapq_error e;
	struct mmapq *q;
	uint8_t buf[256];
	int r = mmapq_open(&p, &q, &e);

	if (r < 0) {
		snprintf(why, size, "an observer cannot open it: %s", e.msg);
		return false;
	}
	r = mmapq_status(q, &st);
	for (uint64_t s = st.head; r == 0 && s < st.tail; s++) {
		struct mmapq_record rec;

		r = mmapq_peek(q, s, buf, sizeof(buf), &rec);
		if (r == 0 && rec_value(&rec) != s)
			r = -EILSEQ;
		if (r < 0)
			snprintf(why, size, "record %" PRIu64 " of [%" PRIu64 ", %" PRIu64 "): %s", s,
			         st.head, st.tail, mmapq_strerror(r));
	}
	if (r == 0 && st.salvage.count) {
		snprintf(why, size, "a salvage dropped records [%" PRIu64 ", %" PRIu64 ") and [%" PRIu64
		         ", %" PRIu64 ")", st.salvage.below_from, st.salvage.below_to,
		         st.salvage.above_from, st.salvage.above_to);
		r = -EBADMSG;
	}
	mmapq_close(q);
	return r == 0;
}

static bool killed_by(int st)
{
	return st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

/* e1: the consumer killed after its cursor but before floor moved, having
 * consumed all there was: the next one finds nothing to read (so never
 * releases), yet the producer, waiting for room, must get it. */
static void e_nothing_left(const char *dir, const char *fault)
{
	char *path = tu_xasprintf("%s/e1-%s.q", dir, fault), *parg = tu_xasprintf("fill:%s", path);
	char *carg = tu_xasprintf("default:%s", path), why[600] = "";
	struct kid pr, c1, c2;
	uint64_t n = 0, v = 0, room = 1;
	bool ok = true;

	create_queue(path);
	pr = kid_start(e_producer, parg, NULL);
	c1 = kid_start(e_consumer, carg, fault);
	ok = kid_said(&pr, &n, 5000) && kid_said(&c1, &v, 5000) && n > 0 && n < 256;
	if (ok) {
		/* all n in one release: it dies in it */
		kid_tell(&c1, 'r');
		kid_tell(&c1, (char)n);
		ok = killed_by(kid_end(&c1));
		if (!ok)
			snprintf(why, sizeof(why), "the consumer did not die at %s", fault);
	} else {
		kid_end(&c1);
		snprintf(why, sizeof(why), "the producer did not fill the ring");
	}
	if (ok) {
		c2 = kid_start(e_consumer, carg, NULL);
		kid_tell(&c2, 'a');
		ok = kid_said(&c2, &v, 5000) && kid_said(&c2, &v, 5000) && v == 0;
		if (!ok)
			snprintf(why, sizeof(why), "the new consumer finds %" PRIu64 " records, want none", v);
		/* the producer gets room, now (it waits up to 10 s) */
		if (ok && !(kid_said(&pr, &room, 5000) && room == 0)) {
			ok = false;
			snprintf(why, sizeof(why), "the producer found no room (%" PRId64 "): floor stays"
			         " behind the records the dead consumer consumed", (int64_t)room);
		}
		kid_end(&c2);
	}
	kid_end(&pr);
	if (!ok) {
		fprintf(stderr, "FAIL [e) %s, nothing left to read] (seed %" PRIu64 "): %s\n", fault,
		        g_seed, why);
		dump(path, "e1");
		g_failures++;
	}
	snprintf(why, sizeof(why), "e) killed at %s, nothing left", fault);
	printf("%-52s %s\n", why, ok ? "ok" : "FAILED");
	free(path);
	free(parg);
	free(carg);
}

/* e2: the consumer killed in its release of 8 of 20 records; the producer
 * closes the file cleanly; a new consumer attaches alone.  Every record of
 * [floor, tail) reads true to an observer, nothing was salvaged, and the
 * consumer goes on from its cursor: record 8, or 0 again if the cursor's
 * seq was not stored. */
static void e_then_alone(const char *dir, const char *fault)
{
	char *path = tu_xasprintf("%s/e2-%s.q", dir, fault), *parg = tu_xasprintf("20:%s", path);
	char *carg = tu_xasprintf("default:%s", path), why[600] = "";
	uint64_t first = !strncmp(fault, "release.position_byte", 21) ? 0 : 8, n = 0, v = 0;
	struct kid pr, c1, c2;
	struct raw r;
	bool ok;

	create_queue(path);
	pr = kid_start(e_producer, parg, NULL);
	c1 = kid_start(e_consumer, carg, fault);
	ok = kid_said(&pr, &n, 5000) && n == 20 && kid_said(&c1, &v, 5000);
	if (ok) {
		kid_tell(&c1, 'r');
		kid_tell(&c1, 8);
	}
	ok = killed_by(kid_end(&c1)) && ok;
	kid_tell(&pr, 'x');
	ok = kid_end(&pr) == 0 && ok;
	if (!ok)
		snprintf(why, sizeof(why), "the consumer did not die at %s, or the producer failed", fault);
	else if (!read_raw(path, &r) || !r.clean)
		snprintf(why, sizeof(why), "the producer's close did not mark the file clean"), ok = false;
	if (ok) {
		c2 = kid_start(e_consumer, carg, NULL);
		ok = kid_said(&c2, &v, 5000);
		if (!ok)
			snprintf(why, sizeof(why), "the new consumer could not attach alone");
		if (ok && !e_observe(path, why, sizeof(why)))
			ok = false;
		if (ok) {
			kid_tell(&c2, 'r');
			kid_tell(&c2, (char)(20 - first));
			ok = kid_said(&c2, &v, 5000) && v == first && kid_said(&c2, &n, 5000);
			if (!ok)
				snprintf(why, sizeof(why), "the new consumer went on from record %" PRIu64
				         ", want %" PRIu64, v, first);
		}
		kid_end(&c2);
	}
	if (!ok) {
		fprintf(stderr, "FAIL [e) %s, then alone] (seed %" PRIu64 "): %s\n", fault, g_seed, why);
		dump(path, "e2");
		g_failures++;
	}
	snprintf(why, sizeof(why), "e) killed at %s, clean close, alone", fault);
	printf("%-52s %s\n", why, ok ? "ok" : "FAILED");
	free(path);
	free(parg);
	free(carg);
}

/* e3: two consumers; "a" killed in its second release between storing its
 * synced cursor's byte and seq while "b" is the slowest; "b" then releases
 * past a's synced cursor, which makes it floor: floor must be whole (every
 * record of [floor, tail) reads true). */
static void e_synced_two(const char *dir)
{
	char *path = tu_xasprintf("%s/e3.q", dir), *parg = tu_xasprintf("20:%s", path);
	char *aarg = tu_xasprintf("a:%s", path), *barg = tu_xasprintf("b:%s", path), why[600] = "";
	struct kid pr, ka, kb;
	uint64_t v = 0;
	bool ok;

	create_queue(path);
	kb = kid_start(e_consumer, barg, NULL);
	ka = kid_start(e_consumer, aarg, "release.synced_byte@2");
	ok = kid_said(&kb, &v, 5000) && kid_said(&ka, &v, 5000);
	pr = kid_start(e_producer, parg, NULL);
	ok = kid_said(&pr, &v, 5000) && v == 20 && ok;
	if (ok) {
		/* a at 5, b at 2 (the slowest), a dies going to 10 */
		kid_tell(&ka, 'r');
		kid_tell(&ka, 5);
		ok = kid_said(&ka, &v, 5000) && kid_said(&ka, &v, 5000);
		kid_tell(&kb, 'r');
		kid_tell(&kb, 2);
		ok = ok && kid_said(&kb, &v, 5000) && kid_said(&kb, &v, 5000);
		kid_tell(&ka, 'r');
		kid_tell(&ka, 5);
	}
	ok = killed_by(kid_end(&ka)) && ok;
	if (ok) {
		/* b to 8: floor goes to a's synced cursor, 5 */
		kid_tell(&kb, 'r');
		kid_tell(&kb, 6);
		ok = kid_said(&kb, &v, 5000) && kid_said(&kb, &v, 5000);
	}
	if (!ok)
		snprintf(why, sizeof(why), "the consumers did not do as told");
	if (ok && !e_observe(path, why, sizeof(why)))
		ok = false;
	kid_end(&kb);
	kid_tell(&pr, 'x');
	kid_end(&pr);
	if (!ok) {
		fprintf(stderr, "FAIL [e) a synced cursor half stored, two consumers] (seed %" PRIu64
		        "): %s\n", g_seed, why);
		dump(path, "e3");
		g_failures++;
	}
	printf("%-52s %s\n", "e) a synced cursor half stored, two consumers", ok ? "ok" : "FAILED");
	free(path);
	free(parg);
	free(aarg);
	free(barg);
}

static void part_e(const char *dir)
{
	static const char *const stuck[] = {"release.stored@1", "release.locked@1",
	                                    "release.synced_byte@1", "release.synced@1", "floor.seq@1"};
	static const char *const alone[] = {"release.position_byte@1", "release.stored@1",
	                                    "release.synced_byte@1", "floor.seq@1"};

	g_maxrec = 24;
	for (size_t i = 0; i < sizeof(stuck) / sizeof(stuck[0]); i++)
		e_nothing_left(dir, stuck[i]);
	for (size_t i = 0; i < sizeof(alone) / sizeof(alone[0]); i++)
		e_then_alone(dir, alone[i]);
	e_synced_two(dir);
	g_maxrec = MAXREC;
	fflush(stdout);
}

int main(int argc, char **argv)
{
	tu_need_faults(); /* every case kills or freezes a process at a fault point */
	char *dir = tu_mkdtemp("crash");
	uint64_t t0 = tu_now_ms();
	const char *only = argc > 2 ? argv[2] : "abcde";

	g_seed = argc > 1 && strcmp(argv[1], "-") ? strtoull(argv[1], NULL, 0)
	                                         : (uint64_t)getpid() * 2654435761u + tu_now_ms();
	if (!g_seed)
		g_seed = 1;
	printf("test_crash: seed %" PRIu64 " (rerun: test_crash %" PRIu64 ")\n", g_seed, g_seed);
	unsetenv("MMAPQ_FAULT");
	if (getenv("MMAPQ_CRASH_KILLS"))
		g_kills = atoi(getenv("MMAPQ_CRASH_KILLS"));
	if (g_kills < 1)
		g_kills = 100;
	signal(SIGPIPE, SIG_IGN);
	if (strchr(only, 'a'))
		part_a(dir);
	if (strchr(only, 'b'))
		part_b(dir);
	if (strchr(only, 'c'))
		part_c(dir);
	if (strchr(only, 'd'))
		part_d(dir);
	if (strchr(only, 'e'))
		part_e(dir);
	if (!g_failures)
		tu_rmdir_r(dir);
	else
		fprintf(stderr, "files kept in %s\n", dir);
	free(dir);
	printf("test_crash: %s in %" PRIu64 " ms\n", g_failures ? "FAILED" : "ok", tu_now_ms() - t0);
	return g_failures ? 1 : 0;
}
