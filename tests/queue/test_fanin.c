/* SPDX-License-Identifier: MIT */
/*
 * test_fanin -- several producers on one queue (fan-in): each producer's
 * records whole and in its order, one order with contiguous sequence
 * numbers for all consumers, and a producer SIGKILLed anywhere between
 * reserving room and committing it holds the others up for at most a wait
 * slice and loses nothing they published.
 *
 * Producers are processes named p0..p3 (mmapq_params.producer), each
 * putting records tagged with its index and its own counter (12 to 32
 * bytes: the tag, then filler bytes that depend on both), in batches of 1
 * to 8, publishing each batch and telling the parent, over a pipe, the
 * last counter a publish returned for.  Two consumers "a" and "b",
 * registered before any producer starts, read every record and check it.
 *   order    4 producers, 2 consumers: each consumer gets every record of
 *            every producer exactly once, each producer's in its order, at
 *            sequence numbers 0, 1, 2, ... (every record whole: its tag and
 *            filler as put)
 *   killed   producer p0 SIGKILLed at each fault point of a reservation's
 *            life (MMAPQ_FAULT: put.written, reserve.claimed,
 *            reserve.extended, publish.locked, commit.locked,
 *            commit.stored, commit.given_back, fill.written,
 *            advance.tail_byte, advance.stored, rearm.claimed), restarted
 *            under its name from the counter after the last one a publish
 *            returned for, while p1..p3 run: every counter of every
 *            producer is delivered to both consumers, in each producer's
 *            order (p0 may send again what its dead self committed but had
 *            not been told of: at least once), and all finish in time
 * With MMAPQ_FANIN_KILLS=N (ctest stress_fanin, label stress: 1000),
 * killed kills random producers instead, N times, at random fault points
 * and passages, each restarted as above: the same checks.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define NPROD 4
#define RING 4096u
#define MAXREC 32u

static char *g_dir, *g_path;
static unsigned g_case_n; /* records per producer */

#define EXPECT(cond, ...) TU_EXPECT(g_path, cond, __VA_ARGS__)
#define EXPECT_INT(a, b) TU_EXPECT_INT(g_path, a, b)

static uint32_t rec_len(uint64_t counter)
{
	return 12 + (uint32_t)(counter % 21);
}

static void rec_fill(uint32_t id, uint64_t counter, uint8_t *b)
{
	uint32_t len = rec_len(counter);

	memcpy(b, &id, 4);
	memcpy(b + 4, &counter, 8);
	for (uint32_t i = 12; i < len; i++)
		b[i] = (uint8_t)(id * 31 + counter * 7 + i);
}

static struct mmapq_params params(enum mmapq_role role, const char *name)
{
	return (struct mmapq_params){.path = g_path, .role = role, .size = RING, .max_record = MAXREC,
	                             .format = MMAPQ_FORMAT_BINARY, .file_mode = 0600,
	                             .max_producers = NPROD, .max_consumers = 2,
	                             .producer = role == MMAPQ_ROLE_PRODUCER ? name : NULL,
	                             .consumer = role == MMAPQ_ROLE_CONSUMER ? name : NULL};
}

static struct mmapq *open_or_die(enum mmapq_role role, const char *name)
{
	struct mmapq_params p = params(role, name);
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &e);

	if (r < 0) {
		fprintf(stderr, "%s %s: open: %s\n", role == MMAPQ_ROLE_PRODUCER ? "producer" : "consumer",
		        name, e.msg);
		exit(2);
	}
	return q;
}

/* A producer's process: counters [from, n) in batches, each publish's last
 * counter written to fd once it returned. */
static void producer_child(uint32_t id, uint64_t from, unsigned n, int fd, uint64_t seed)
{
	char name[8];
	struct mmapq *q;
	uint8_t b[MAXREC];

	snprintf(name, sizeof(name), "p%" PRIu32, id);
	q = open_or_die(MMAPQ_ROLE_PRODUCER, name);
	srandom((unsigned)seed);
	for (uint64_t c = from; c < n;) {
		unsigned k = 1 + (unsigned)(random() % 8);
		int r;

		for (; k && c < n; k--, c++) {
			rec_fill(id, c, b);
			while ((r = mmapq_put(q, b, rec_len(c))) == -ENOBUFS) {
				uint64_t room;

				r = mmapq_reserve(q, rec_len(c), mmapq_now_ns() + 500000000u, &room);
				if (r < 0 && r != -ETIMEDOUT) {
					fprintf(stderr, "%s: reserve: %s\n", name, mmapq_strerror(r));
					exit(2);
				}
			}
			if (r < 0) {
				fprintf(stderr, "%s: put: %s\n", name, mmapq_strerror(r));
				exit(2);
			}
		}
		r = mmapq_publish(q);
		if (r < 0) {
			fprintf(stderr, "%s: publish: %s\n", name, mmapq_strerror(r));
			exit(2);
		}
		{
			uint64_t last = c - 1;
			if (tu_write_all(fd, &last, sizeof(last)) < 0)
				exit(2);
		}
	}
	mmapq_close(q);
	exit(0);
}

/* A consumer's process: every record until every producer's counter n - 1
 * came, each checked (whole, at the next sequence number, its producer's
 * counter at most one past the last one seen of it: exactly one past
 * unless that producer may repeat, dup). */
static void consumer_child(const char *name, unsigned n, bool dup, int timeout_ms)
{
	struct mmapq *q = open_or_die(MMAPQ_ROLE_CONSUMER, name);
	int64_t last[NPROD];
	uint64_t next_seq = 0, end = tu_now_ms() + (uint64_t)timeout_ms, repeats = 0;
	unsigned done = 0;
	bool finished[NPROD] = {false};

	for (int i = 0; i < NPROD; i++)
		last[i] = -1;
	while (done < NPROD) {
		struct mmapq_record r[64];
		uint32_t avail = 0;
		int k, rc = mmapq_available(q, mmapq_now_ns() + 200000000u, &avail);

		if (tu_now_ms() > end) {
			fprintf(stderr, "consumer %s: %u of %d producers done in %d ms (seq %" PRIu64 ")\n",
			        name, done, NPROD, timeout_ms, next_seq);
			exit(3);
		}
		if (rc == -ETIMEDOUT)
			continue;
		if (rc < 0) {
			fprintf(stderr, "consumer %s: available: %s\n", name, mmapq_strerror(rc));
			exit(2);
		}
		k = mmapq_get_many(q, 0, avail < 64 ? avail : 64, r);
		if (k < 0) {
			fprintf(stderr, "consumer %s: get_many at %" PRIu64 ": %s\n", name, next_seq,
			        mmapq_strerror(k));
			exit(2);
		}
		for (int i = 0; i < k; i++) {
			uint8_t want[MAXREC];
			uint32_t id;
			uint64_t c;

			if (r[i].seq != next_seq || r[i].len < 12) {
				fprintf(stderr, "consumer %s: record %" PRIu64 " (%u bytes), want %" PRIu64 "\n",
				        name, r[i].seq, r[i].len, next_seq);
				exit(1);
			}
			memcpy(&id, r[i].data, 4);
			memcpy(&c, (const uint8_t *)r[i].data + 4, 8);
			if (id >= NPROD || c >= n || r[i].len != rec_len(c)) {
				fprintf(stderr, "consumer %s: record %" PRIu64 ": producer %u counter %" PRIu64
				        " len %u\n", name, r[i].seq, id, c, r[i].len);
				exit(1);
			}
			rec_fill(id, c, want);
			if (memcmp(want, r[i].data, r[i].len)) {
				fprintf(stderr, "consumer %s: record %" PRIu64 " (p%u #%" PRIu64 ") not as put\n",
				        name, r[i].seq, id, c);
				exit(1);
			}
			if ((int64_t)c != last[id] + 1 && !(dup && (int64_t)c <= last[id])) {
				fprintf(stderr, "consumer %s: record %" PRIu64 " is p%u #%" PRIu64 " after #%" PRId64
				        "\n", name, r[i].seq, id, c, last[id]);
				exit(1);
			}
			repeats += (int64_t)c <= last[id];
			if ((int64_t)c > last[id])
				last[id] = (int64_t)c;
			if (c == n - 1 && !finished[id]) {
				finished[id] = true;
				done++;
			}
			next_seq++;
		}
		if (mmapq_release(q, (uint32_t)k) < 0) {
			fprintf(stderr, "consumer %s: release\n", name);
			exit(2);
		}
	}
	mmapq_close(q);
	printf("consumer %s: %" PRIu64 " records, %" PRIu64 " sent again\n", name, next_seq, repeats);
	exit(0);
}

struct prod {
	pid_t pid;
	int fd;
	uint64_t confirmed; /* counters below this a publish returned for */
	unsigned kills;
	bool done;
};

static pid_t start_consumer(const char *name, unsigned n, bool dup, int timeout_ms)
{
	pid_t pid = tu_fork();

	if (pid == 0)
		consumer_child(name, n, dup, timeout_ms);
	tu_track(pid);
	return pid;
}

static void start_producer(struct prod *p, uint32_t id, const char *fault, uint64_t seed)
{
	int fds[2];

	tu_pipe(fds);
	p->pid = tu_fork();
	if (p->pid == 0) {
		close(fds[0]);
		/* before the first queue call: fault.c reads it once */
		if (fault)
			setenv("MMAPQ_FAULT", fault, 1);
		else
			unsetenv("MMAPQ_FAULT");
		producer_child(id, p->confirmed, g_case_n, fds[1], seed);
	}
	tu_track(p->pid);
	close(fds[1]);
	p->fd = fds[0];
}

/* What the queue's header says of the reservations (what a failure to
 * finish needs to be understood), and what the test knows of each
 * producer. */
static void dump_reservations(const struct prod *p)
{
	int fd = open(g_path, O_RDONLY | O_CLOEXEC);
	const struct mmapq_header *h =
	        fd < 0 ? MAP_FAILED : mmap(NULL, MMAPQ_HEADER_SIZE, PROT_READ, MAP_SHARED, fd, 0);

	if (fd >= 0)
		close(fd);
	if (h == MAP_FAILED) {
		fprintf(stderr, "---- %s: cannot map its header\n", g_path);
		return;
	}
	fprintf(stderr,
	        "---- reservations: tail %" PRIu64 " tail_byte %" PRIu64 " claim_byte %" PRIu64
	        " floor %" PRIu64 "@%" PRIu64 "\n",
	        __atomic_load_n(&h->producer.tail, __ATOMIC_ACQUIRE),
	        __atomic_load_n(&h->producer.tail_byte, __ATOMIC_RELAXED),
	        __atomic_load_n(&h->producer.claim_byte, __ATOMIC_RELAXED),
	        __atomic_load_n(&h->floor.seq, __ATOMIC_RELAXED),
	        __atomic_load_n(&h->floor.byte, __ATOMIC_RELAXED));
	for (uint32_t i = 0; i < NPROD && i < MMAPQ_PRODUCERS_MAX; i++) {
		const struct mmapq_producer *e = &h->producers[i];

		fprintf(stderr,
		        "     entry %u '%.64s' pid %d published %" PRIu64 " rsv_state %u [%" PRIu64
		        ", %" PRIu64 ") %" PRIu64 " records\n",
		        i, e->name, __atomic_load_n(&e->pid, __ATOMIC_RELAXED),
		        __atomic_load_n(&e->published, __ATOMIC_RELAXED),
		        __atomic_load_n(&e->rsv_state, __ATOMIC_RELAXED),
		        __atomic_load_n(&e->rsv_from, __ATOMIC_RELAXED),
		        __atomic_load_n(&e->rsv_to, __ATOMIC_RELAXED),
		        __atomic_load_n(&e->rsv_records, __ATOMIC_RELAXED));
	}
	for (uint32_t i = 0; i < NPROD; i++)
		fprintf(stderr, "     p%u: pid %d, %s, confirmed up to %" PRIu64 ", killed %u times\n", i,
		        (int)p[i].pid, p[i].done ? "finished" : "running", p[i].confirmed, p[i].kills);
	munmap((void *)h, MMAPQ_HEADER_SIZE);
}

/* A fault for a producer's next life: pick(i) names it, or NULL for none. */
typedef const char *fault_fn(uint32_t id, unsigned life, char *buf, size_t size);

/*
 * The run: consumers a and b, then the producers, each restarted after a
 * SIGKILL (its fault) from the counter after the last one confirmed, until
 * every producer finished; then both consumers must have checked
 * everything.  Returns the kills.
 */
static unsigned run(unsigned n, fault_fn *fault, unsigned max_kills, int timeout_ms)
{
	struct prod p[NPROD] = {0};
	pid_t ca, cb;
	unsigned kills = 0, done = 0;
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	char buf[64];

	g_case_n = n;
	unlink(g_path);
	{
		/* the file, and both consumers registered at record 0, by a
		 * child: the library reads MMAPQ_FAULT once per process, so
		 * this one never calls it before it forks a producer */
		pid_t pid = tu_fork();

		if (pid == 0) {
			mmapq_close(open_or_die(MMAPQ_ROLE_CONSUMER, "a"));
			mmapq_close(open_or_die(MMAPQ_ROLE_CONSUMER, "b"));
			exit(0);
		}
		EXPECT_INT(tu_exit_code(tu_wait(pid, 10000 * (int)tu_time_factor())), 0);
	}
	ca = start_consumer("a", n, fault != NULL, timeout_ms);
	cb = start_consumer("b", n, fault != NULL, timeout_ms);
	for (uint32_t i = 0; i < NPROD; i++)
		start_producer(&p[i], i, fault ? fault(i, 0, buf, sizeof(buf)) : NULL, i + 1);
	while (done < NPROD && tu_now_ms() < end) {
		struct pollfd pf[NPROD];

		for (uint32_t i = 0; i < NPROD; i++)
			pf[i] = (struct pollfd){.fd = p[i].done ? -1 : p[i].fd, .events = POLLIN};
		if (poll(pf, NPROD, 200) < 0 && errno != EINTR)
			tu_die("poll");
		for (uint32_t i = 0; i < NPROD; i++) {
			uint64_t last;
			ssize_t got;
			int st;

			if (p[i].done || !(pf[i].revents & (POLLIN | POLLHUP)))
				continue;
			got = read(p[i].fd, &last, sizeof(last));
			if (got == (ssize_t)sizeof(last)) {
				p[i].confirmed = last + 1;
				continue;
			}
			/* its end: finished, or killed at its fault */
			close(p[i].fd);
			st = tu_wait(p[i].pid, 10000 * (int)tu_time_factor());
			tu_untrack(p[i].pid);
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
				p[i].done = true;
				done++;
				continue;
			}
			EXPECT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && fault,
			       "producer p%u ended with status %d", i, tu_exit_code(st));
			kills++;
			p[i].kills++;
			start_producer(&p[i], i,
			               kills < max_kills ? fault(i, p[i].kills, buf, sizeof(buf)) : NULL,
			               (i + 1) * 1000003u + p[i].kills);
		}
	}
	if (done < NPROD)
		dump_reservations(p);
	EXPECT(done == NPROD, "%u of %d producers finished in %d ms", done, NPROD, timeout_ms);
	EXPECT_INT(tu_exit_code(tu_wait(ca, timeout_ms)), 0);
	EXPECT_INT(tu_exit_code(tu_wait(cb, timeout_ms)), 0);
	tu_untrack(ca);
	tu_untrack(cb);
	{
		struct mmapq_status st = tu_queue_status(g_path);

		EXPECT(st.producers == NPROD && st.max_producers == NPROD, "%u of %u producers registered",
		       st.producers, st.max_producers);
	}
	return kills;
}

static void setup(void)
{
	g_dir = tu_mkdtemp("fanin");
	g_path = tu_path(g_dir, "q");
}

static void case_order(void)
{
	run(5000, NULL, 0, 20000 * (int)tu_time_factor());
}

static const char *const points[] = {
	"put.written", "reserve.claimed", "reserve.extended", "publish.locked", "commit.locked",
	"commit.stored", "commit.given_back", "fill.written", "advance.tail_byte", "advance.stored",
	"rearm.claimed",
};
#define NPOINTS (sizeof(points) / sizeof(points[0]))

/* p0 only, at the point of this run (its 2nd passage), in its first life */
static unsigned g_point;

static const char *one_point(uint32_t id, unsigned life, char *buf, size_t size)
{
	if (id != 0 || life > 0)
		return NULL;
	snprintf(buf, size, "%s@2", points[g_point]);
	return buf;
}

static const char *random_point(uint32_t id, unsigned life, char *buf, size_t size);

static void case_killed(void)
{
	const char *e = getenv("MMAPQ_FANIN_KILLS");
	unsigned kills, want = e ? (unsigned)atoi(e) : 0;

	tu_need_faults();
	if (want) {
		srandom((unsigned)tu_now_ms());
		kills = run(200000, random_point, want, 1200000 * (int)tu_time_factor());
		printf("stress: %u kills\n", kills);
		EXPECT(kills >= want, "%u kills, want %u", kills, want);
		return;
	}
	kills = 0;
	for (g_point = 0; g_point < NPOINTS; g_point++) {
		unsigned k = 0, tries;

		/* whether p0's 2nd passage of a point comes depends on how the
		 * producers interleave: a point not reached is tried again */
		for (tries = 0; tries < 4 && !k; tries++)
			k = run(1000, one_point, 1, 15000 * (int)tu_time_factor());
		printf("killed at %s@2: %s (%u runs)\n", points[g_point], k ? "yes" : "not reached",
		       tries);
		kills += k;
	}
	/* reserve.extended and fill.written need a reservation that grows,
	 * or one that is not the last one at its publish: not every run */
	EXPECT(kills >= NPOINTS - 2, "only %u of %zu fault points reached", kills, NPOINTS);
}

/* any producer, a random point of those every batch passes (the others
 * are killed's) at a random passage (1 to 30: the kills spread over the
 * run, not only the first batches of each life) */
static const char *random_point(uint32_t id, unsigned life, char *buf, size_t size)
{
	static const char *const often[] = {
		"put.written", "reserve.claimed", "publish.locked", "commit.locked", "commit.stored",
		"advance.tail_byte", "advance.stored",
	};

	(void)id;
	(void)life;
	snprintf(buf, size, "%s@%ld", often[random() % (sizeof(often) / sizeof(often[0]))],
	         1 + random() % 30);
	return buf;
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"order", case_order},
		{"killed", case_killed},
	};

	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
