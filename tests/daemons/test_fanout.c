/* SPDX-License-Identifier: MIT */
/*
 * test_fanout -- several named consumers on one queue, with the real
 * daemons:
 *   three_speeds      three consumers, one slowed by an output nobody reads
 *                     for a while: each gets every record in order, and the
 *                     producer is held back by the slowest alone (the fast
 *                     ones are at the tail while it waits on a full ring)
 *   down_blocks       a registered consumer that is down holds the producer
 *                     when the ring is full; `consumer remove` is refused
 *                     while a consumer is attached and releases the producer
 *   down_drops        the same with on_full = drop: the producer drops (and
 *                     counts) instead of blocking
 *   named_config      [consumer:NAME] overrides [consumer] (output, start =
 *                     newest), --named-instance QUEUE:NAME (as the template
 *                     unit runs it), a full table refused
 *   skip_down         [consumer:audit] on_full = skip, audit down: it never
 *                     holds the producer, the block consumer gets every
 *                     record; mmapqctl shows audit's count; back, audit says
 *                     how many it lost and writes exactly the records after
 *   inactive_timeout  a consumer gone for its inactive_timeout is removed by
 *                     the producer, on time, and that is said; one attached
 *                     all along, and one without a timeout, stay
 * Nothing sleeps: every wait is on a process, a pipe or the queue's state,
 * with a deadline.  On failure the queue's state is printed.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h" /* the producer's wake-up word: its entry's room (entry 0: "default") */
#include "testutil.h"

#define DEADLINE_MS (20000 * (int)tu_time_factor())
/* The ring: 4 KiB, 256 int records (16-byte frames) at most */
#define RING_BYTES 4096u
#define RING_TEXT "4K"
#define MAX_RECORD 64u

static char *dir, *qpath, *cfg;

#define EXPECT(cond, ...) TU_EXPECT(qpath, cond, __VA_ARGS__)

/* The configuration: the ring, the daemons' log level, then extra. */
static void setup_level(const char *level, const char *extra)
{
	char *text;

	dir = tu_mkdtemp("fanout");
	qpath = tu_path(dir, "queue");
	cfg = tu_path(dir, "mmapq.ini");
	text = tu_xasprintf("[queue]\npath = %s\nsize = " RING_TEXT "\nmax_record = 64\n[log]\n"
	                    "level = %s\n%s", qpath, level, extra);
	if (tu_write_file(cfg, text, strlen(text)) < 0)
		tu_die("write config");
	free(text);
}

static void setup(const char *extra)
{
	setup_level("warning", extra);
}

/* The consumer NAME as the queue's table has it; false if not registered. */
static bool consumer_of(const char *name, struct mmapq_consumer_status *out)
{
	return tu_consumer_status(qpath, name, out);
}

/* The configuration's drop-in NAME.ini (CFG.d/NAME.ini) holding text. */
static void write_dropin(const char *name, const char *text)
{
	char *d = tu_xasprintf("%s.d", cfg), *f = tu_xasprintf("%s.ini", name);

	if (mkdir(d, 0700) < 0 && errno != EEXIST)
		tu_die("mkdir");
	free(tu_write_in(d, f, text));
	free(d);
	free(f);
}

/* dir/name, a symbolic link to target (beside it) */
static void link_as(const char *target, const char *name)
{
	char *p = tu_path(dir, name);

	if (symlink(target, p) < 0)
		tu_die("symlink");
	free(p);
}

/* Waits (a deadline) until the consumer name is registered and a live
 * process is attached as it; *cs is its last state seen. */
static bool wait_attached(const char *name, struct mmapq_consumer_status *cs)
{
	uint64_t end = tu_now_ms() + (uint64_t)DEADLINE_MS;

	while (!(consumer_of(name, cs) && cs->attached) && tu_now_ms() < end)
		sched_yield();
	return consumer_of(name, cs) && cs->attached;
}

/* Start a program with arguments (ap, NULL-terminated), stdin, stdout and
 * stderr piped as asked. */
static struct tu_proc spawn_v(bool in, bool out, bool err, const char *prog, va_list ap)
{
	char *argv[16];
	struct tu_proc p;
	int i = 0;

	argv[i++] = tu_bin(prog);
	argv[i++] = "--config";
	argv[i++] = cfg;
	while (i < 15 && (argv[i] = va_arg(ap, char *)))
		i++;
	argv[i] = NULL;
	if (tu_spawn(&p, argv, NULL, in, out, err) < 0)
		tu_die("spawn");
	tu_track(p.pid);
	free(argv[0]);
	return p;
}

/* Start a program with arguments (NULL-terminated), stdin/stdout piped as
 * asked. */
static struct tu_proc spawn(bool in, bool out, const char *prog, ...)
{
	struct tu_proc p;
	va_list ap;

	va_start(ap, prog);
	p = spawn_v(in, out, false, prog, ap);
	va_end(ap);
	return p;
}

/* The same, stderr piped too (the daemons' log lines). */
static struct tu_proc spawn_logged(bool in, bool out, const char *prog, ...)
{
	struct tu_proc p;
	va_list ap;

	va_start(ap, prog);
	p = spawn_v(in, out, true, prog, ap);
	va_end(ap);
	return p;
}

static int finish(pid_t pid)
{
	int st = tu_wait(pid, DEADLINE_MS);

	EXPECT(st >= 0, "pid %d did not exit within %d ms", (int)pid, DEADLINE_MS);
	tu_untrack(pid);
	return tu_exit_code(st);
}

/* The queue is full: less than two records of max_record fit (the
 * producer may keep that much for a padding frame), and the producer
 * waits on it (asleep on its wake-up word). */
static bool held_full(const struct mmapq_status *st, pid_t producer)
{
	return st->size - st->used_bytes < 2 * mmapq_frame_size(st->max_record) &&
	       tu_in_futex_on(producer, qpath, offsetof(struct mmapq_header, producers[0].room));
}

/* Records "first".."last" into fd (a producer's stdin), then closed; by a
 * child of ours, so that a producer held by a full queue (which stops reading)
 * cannot block the test. */
static void feed_range(int fd, unsigned first, unsigned last)
{
	pid_t pid = tu_fork();

	if (pid == 0) {
		char buf[16];

		for (unsigned v = first; v <= last; v++) {
			int len = snprintf(buf, sizeof(buf), "%u\n", v);
			if (tu_write_all(fd, buf, (size_t)len) < 0)
				_exit(1);
		}
		_exit(0);
	}
	tu_track(pid); /* reaped by tu_kill_tracked if the case ends early */
	close(fd);
}

static void feed(int fd, unsigned n)
{
	feed_range(fd, 1, n);
}

/* The text holds exactly "first\n".."last\n". */
static void expect_range(const char *who, const char *text, unsigned first, unsigned last)
{
	const char *s = text;

	for (unsigned v = first; v <= last; v++) {
		char *end;
		unsigned long got = strtoul(s, &end, 10);
		EXPECT(end != s && *end == '\n' && got == v, "%s: record %u is '%.20s', expected %u", who, v,
		       s, v);
		s = end + 1;
	}
	EXPECT(!*s, "%s: more than records %u..%u: '%.20s'", who, first, last, s);
}

/* The text holds exactly "1\n".."n\n". */
static void expect_sequence(const char *who, const char *text, unsigned n)
{
	expect_range(who, text, 1, n);
}

/* Run a program to its end; its exit code, its stdout in *out if asked. */
static int run_ctl(char **out, const char *arg1, const char *arg2, const char *arg3)
{
	struct tu_proc p = spawn(false, true, "mmapqctl", arg1, arg2, arg3, NULL);
	char *text = tu_read_all(p.out_fd, DEADLINE_MS, NULL);

	close(p.out_fd);
	EXPECT(text, "mmapqctl %s: no end of output", arg1);
	if (out)
		*out = text;
	else
		free(text);
	return finish(p.pid);
}

/* ---- three_speeds ---------------------------------------------------------- */

static void three_speeds(void)
{
	enum { N = 60000 };
	const char *files[2] = {"fast1.out", "fast2.out"};
	char *paths[2], *text, count[16];
	struct tu_proc prod, fast[2], slow;
	struct mmapq_consumer_status cs;
	uint64_t end;
	bool held = false;

	setup("[consumer]\noutput = stdout\n");
	snprintf(count, sizeof(count), "%d", N);
	for (int i = 0; i < 2; i++) {
		char *name = tu_xasprintf("fast%d", i + 1);
		paths[i] = tu_path(dir, files[i]);
		/* each its own output by its own section */
		text = tu_xasprintf("[consumer:%s]\noutput = file:%s\n", name, paths[i]);
		write_dropin(name, text);
		free(text);
		fast[i] = spawn(false, false, "mmapq-consumer", "--name", name, "--count", count, NULL);
		free(name);
	}
	/* slow: its stdout is a pipe this test leaves unread at first */
	slow = spawn(false, true, "mmapq-consumer", "--name", "slow", "--count", count, NULL);
	for (int i = 0; i < 3; i++) {
		const char *name = i == 0 ? "fast1" : i == 1 ? "fast2" : "slow";
		end = tu_now_ms() + (uint64_t)DEADLINE_MS;
		while (!consumer_of(name, &cs) && tu_now_ms() < end)
			sched_yield();
		EXPECT(consumer_of(name, &cs), "consumer %s never registered", name);
	}
	prod = spawn(true, false, "mmapq-producer", NULL);
	feed(prod.in_fd, N);

	/* The slow consumer blocks in write(): the producer fills the ring up
	 * to it and waits, while both fast ones have consumed everything
	 * published. */
	end = tu_now_ms() + (uint64_t)DEADLINE_MS;
	while (!held && tu_now_ms() < end) {
		struct mmapq_status st = tu_queue_status(qpath);
		struct mmapq_consumer_status s, f1, f2;

		held = consumer_of("slow", &s) && consumer_of("fast1", &f1) && consumer_of("fast2", &f2) &&
		       s.position == st.head && f1.position == st.tail && f2.position == st.tail &&
		       st.tail < N && held_full(&st, prod.pid);
		if (!held)
			sched_yield();
	}
	EXPECT(held, "the producer was not held by the slow consumer alone, the ring full, with the"
	       " fast ones at the tail");

	/* now read the slow output: everything flows to the end */
	text = tu_read_all(slow.out_fd, DEADLINE_MS, NULL);
	EXPECT(text, "slow consumer: no end of its output");
	close(slow.out_fd);
	expect_sequence("slow", text, N);
	free(text);
	EXPECT(finish(slow.pid) == 0, "slow consumer failed");
	EXPECT(finish(prod.pid) == 0, "producer failed");
	for (int i = 0; i < 2; i++) {
		EXPECT(finish(fast[i].pid) == 0, "fast consumer %d failed", i + 1);
		text = tu_read_file(paths[i], NULL);
		EXPECT(text, "%s: %s", paths[i], strerror(errno));
		expect_sequence(files[i], text, N);
		free(text);
		free(paths[i]);
	}
}

/* ---- down_blocks / down_drops --------------------------------------------- */

/* A consumer "down" registered (it ran once and is gone), "live" running
 * to the end: the producer is held by "down" (drop: drops instead), and
 * removing "down" releases it. */
static void down(bool drop)
{
	enum { N = 1000 };
	struct tu_proc prod, live;
	struct mmapq_consumer_status cs;
	struct mmapq_status st;
	char count[16], *out;
	uint64_t end, kept;
	bool held = false;
	int code;

	setup(drop ? "[producer]\non_full = drop\n[consumer]\noutput = stdout\n" :
	             "[consumer]\noutput = stdout\n");
	/* "down" registers, at the oldest record (0), and stops */
	{
		struct mmapq_params p = {.path = qpath, .role = MMAPQ_ROLE_CONSUMER, .size = RING_BYTES,
		                         .max_record = MAX_RECORD, .format = MMAPQ_FORMAT_INT,
		                         .consumer = "down", .file_mode = 0660};
		struct mmapq_error err;
		struct mmapq *q;
		EXPECT(mmapq_open(&p, &q, &err) == 0, "register down: %s", err.msg);
		mmapq_close(q);
	}
	/* drop: to the end of what it is given (SIGTERM), still attached when
	 * we try to remove it */
	snprintf(count, sizeof(count), "%d", N);
	live = drop ? spawn(false, true, "mmapq-consumer", "--name", "live", NULL)
	            : spawn(false, true, "mmapq-consumer", "--name", "live", "--count", count, NULL);
	(void)wait_attached("live", &cs);
	prod = spawn(true, false, "mmapq-producer", NULL);
	feed(prod.in_fd, N);
	if (drop) {
		/* full (down holds it): the rest is dropped, counted */
		EXPECT(finish(prod.pid) == 0, "producer with on_full = drop failed");
		st = tu_queue_status(qpath);
		EXPECT(st.size - st.used_bytes < 2 * mmapq_frame_size(st.max_record) &&
		       st.tail + st.producer.dropped == N && st.head == 0,
		       "tail %" PRIu64 " dropped %" PRIu64 " used %" PRIu64 " of %" PRIu64 " bytes: not"
		       " full, or records neither published nor dropped", st.tail, st.producer.dropped,
		       st.used_bytes, st.size);
		kept = st.tail;
		end = tu_now_ms() + (uint64_t)DEADLINE_MS;
		while (!(consumer_of("live", &cs) && cs.position == kept) && tu_now_ms() < end)
			sched_yield();
	} else {
		/* held by down, live at the tail */
		end = tu_now_ms() + (uint64_t)DEADLINE_MS;
		while (!held && tu_now_ms() < end) {
			st = tu_queue_status(qpath);
			held = st.head == 0 && st.producer.attached && consumer_of("live", &cs) &&
			       cs.position == st.tail && held_full(&st, prod.pid);
			if (!held)
				sched_yield();
		}
		EXPECT(held, "the producer was not held by the consumer that is down, the queue full");
		EXPECT(tu_wait(prod.pid, 0) == -ETIMEDOUT, "the producer ended while held");
		kept = N;
	}
	/* live is attached: not removable */
	code = run_ctl(NULL, "consumer", "remove", "live");
	EXPECT(code == 69, "consumer remove live (attached): exit %d, want 69", code);
	code = run_ctl(NULL, "consumer", "remove", "nobody");
	EXPECT(code == 67, "consumer remove nobody: exit %d, want 67", code);
	/* down is not: removing it releases the producer */
	code = run_ctl(&out, "consumer", "remove", "down");
	EXPECT(code == 0 && strstr(out, "consumer 'down' removed"), "consumer remove down: exit %d, '%s'",
	       code, out);
	free(out);
	EXPECT(!consumer_of("down", &cs), "down is still registered");
	if (!drop) {
		EXPECT(finish(prod.pid) == 0, "the producer did not finish once down was removed");
	} else {
		uint64_t dropped = tu_queue_status(qpath).producer.dropped;

		/* room again: the next record is published, not dropped */
		prod = spawn(true, false, "mmapq-producer", NULL);
		feed_range(prod.in_fd, (unsigned)kept + 1, (unsigned)kept + 1);
		EXPECT(finish(prod.pid) == 0, "producer of record %" PRIu64, kept + 1);
		EXPECT(tu_queue_status(qpath).producer.dropped == dropped, "record %" PRIu64 " dropped",
		       kept + 1);
		kept++;
		end = tu_now_ms() + (uint64_t)DEADLINE_MS;
		while (!(consumer_of("live", &cs) && cs.position == kept) && tu_now_ms() < end)
			sched_yield();
		kill(live.pid, SIGTERM);
	}
	out = tu_read_all(live.out_fd, DEADLINE_MS, NULL);
	close(live.out_fd);
	EXPECT(out, "live: no end of output");
	expect_sequence("live", out, (unsigned)kept);
	free(out);
	EXPECT(finish(live.pid) == 0, "live consumer failed");
	code = run_ctl(&out, "consumers", NULL, NULL);
	EXPECT(code == 0 && strstr(out, "live") && !strstr(out, "down") &&
	       strstr(out, "1 of 8 consumers registered"), "consumers: exit %d, '%s'", code, out);
	free(out);
}

static void down_blocks(void)
{
	down(false);
}

static void down_drops(void)
{
	down(true);
}

/* ---- named_config ---------------------------------------------------------- */

static void named_config(void)
{
	struct tu_proc prod, late, early;
	struct mmapq_consumer_status cs;
	char *out, *late_out, *ini;
	int code;

	setup("[queue]\nmax_consumers = 2\n[consumer]\noutput = stdout\n");
	late_out = tu_path(dir, "late.out");
	/* late's own section, in a drop-in; it runs as the template unit runs
	 * it, --named-instance QUEUE:NAME: its configuration is q1.ini beside
	 * the file --config names, here that file and its drop-ins under the
	 * instance's name (links) */
	ini = tu_xasprintf("[consumer:late]\noutput = file:%s\nstart = newest\n", late_out);
	write_dropin("late", ini);
	free(ini);
	link_as("mmapq.ini", "q1.ini");
	link_as("mmapq.ini.d", "q1.ini.d");
	/* early: registered first, oldest; ten records before late comes */
	early = spawn(false, true, "mmapq-consumer", "--name", "early", "--count", "20", NULL);
	/* early registered before anything else: else late (newest), alone in
	 * the table, would let records 1..10 go before early registers */
	EXPECT(wait_attached("early", &cs), "early did not attach");
	prod = spawn(true, false, "mmapq-producer", NULL);
	feed(prod.in_fd, 10);
	EXPECT(finish(prod.pid) == 0, "producer 1..10");
	late = spawn(false, false, "mmapq-consumer", "--named-instance", "q1:late", "--count", "10", NULL);
	(void)wait_attached("late", &cs);
	EXPECT(consumer_of("late", &cs) && cs.position == 10,
	       "late (start = newest) did not register at the tail, 10");
	/* the table holds 2: a third consumer is refused, naming the way out */
	{
		struct tu_proc third = spawn(false, false, "mmapq-consumer", "--name", "third",
		                             "--count", "1", NULL);
		code = finish(third.pid);
		EXPECT(code == 73, "a third consumer with max_consumers = 2: exit %d, want 73", code);
	}
	prod = spawn(true, false, "mmapq-producer", NULL);
	feed(prod.in_fd, 10); /* the values 1..10 again, sequence numbers 10..19 */
	EXPECT(finish(prod.pid) == 0, "producer, second run");
	EXPECT(finish(late.pid) == 0, "late consumer failed");
	out = tu_read_file(late_out, NULL);
	EXPECT(out, "%s: %s", late_out, strerror(errno));
	expect_sequence("late (newest)", out, 10);
	free(out);
	out = tu_read_all(early.out_fd, DEADLINE_MS, NULL);
	close(early.out_fd);
	EXPECT(out, "early: no end of output");
	/* 1..10 twice */
	EXPECT(!strncmp(out, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n1\n2\n", 24), "early got '%.40s'", out);
	free(out);
	EXPECT(finish(early.pid) == 0, "early consumer failed");
	free(late_out);
}

/* ---- skip_down, inactive_timeout ------------------------------------------ */

/* The policy of the registered consumer name (mmapq_policy), as an
 * observer reads it; false if it is not registered. */
static bool policy_of(const char *name, struct mmapq_policy *pol)
{
	struct mmapq_params p = {.path = qpath, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_consumer_status cs;
	struct mmapq *q;
	bool found;

	if (!consumer_of(name, &cs) || mmapq_open(&p, &q, NULL) < 0)
		return false;
	found = mmapq_policy(q, (int32_t)cs.index, pol) == 0;
	mmapq_close(q);
	return found;
}

/* A consumer daemon that registers as name (storing its policy), then
 * stops (SIGTERM) once attached. */
static void run_once(const char *name)
{
	struct tu_proc c = spawn(false, false, "mmapq-consumer", "--name", name, NULL);
	struct mmapq_consumer_status cs;

	EXPECT(wait_attached(name, &cs), "%s never attached", name);
	kill(c.pid, SIGTERM);
	EXPECT(finish(c.pid) == 0, "%s did not stop cleanly", name);
}

/* audit (on_full = skip) ran once and is down, live (block) reads
 * everything: the producer gets through far more records than the ring
 * holds, live gets every one in order; mmapqctl shows what audit lost; back,
 * audit says how many and writes exactly the records after them. */
static void skip_down(void)
{
	enum { N = 3000 }; /* the ring holds 256 */
	struct mmapq_consumer_status cs;
	struct mmapq_policy pol = {0};
	struct tu_proc prod, live, audit;
	char count[16], *out, *err, want[160];
	uint64_t end;

	setup_level("info", "[consumer]\noutput = stdout\n[consumer:audit]\non_full = skip\n");
	run_once("audit");
	EXPECT(policy_of("audit", &pol) && pol.on_full == MMAPQ_POLICY_SKIP,
	       "audit's entry says on_full %u", pol.on_full);
	snprintf(count, sizeof(count), "%d", N);
	live = spawn(false, true, "mmapq-consumer", "--name", "live", "--count", count, NULL);
	EXPECT(wait_attached("live", &cs), "live never attached");
	prod = spawn(true, false, "mmapq-producer", NULL);
	feed(prod.in_fd, N);
	EXPECT(finish(prod.pid) == 0, "the producer did not get through %d records", N);
	out = tu_read_all(live.out_fd, DEADLINE_MS, NULL);
	close(live.out_fd);
	EXPECT(out, "live: no end of output");
	expect_sequence("live", out, N);
	free(out);
	EXPECT(finish(live.pid) == 0, "live failed");
	EXPECT(policy_of("audit", &pol) && consumer_of("audit", &cs) && pol.skipped > 0 &&
	       pol.skipped < N && pol.skipped_since_attach == pol.skipped && cs.position == pol.skipped,
	       "audit: skipped %" PRIu64 " (%" PRIu64 " since it ran), at %" PRIu64, pol.skipped,
	       pol.skipped_since_attach, cs.position);
	/* mmapqctl shows it: consumers --json, status, metrics */
	snprintf(want, sizeof(want), "\"on_full\":\"skip\",\"skipped\":%" PRIu64 "}", pol.skipped);
	EXPECT(run_ctl(&out, "consumers", "--json", NULL) == 0 && strstr(out, want),
	       "consumers --json lacks '%s': %s", want, out);
	free(out);
	snprintf(want, sizeof(want), "on_full = skip: %" PRIu64 " records lost to skips", pol.skipped);
	EXPECT(run_ctl(&out, "status", NULL, NULL) == 0 && strstr(out, want), "status lacks '%s': %s",
	       want, out);
	free(out);
	snprintf(want, sizeof(want), "mmapq_consumer_skipped_records_total{queue=\"%s\",consumer="
	         "\"audit\"} %" PRIu64 "\n", qpath, pol.skipped);
	EXPECT(run_ctl(&out, "metrics", NULL, NULL) == 0 && strstr(out, want), "metrics lack '%s'",
	       want);
	free(out);
	/* back: it says what it lost, and writes the records after them */
	audit = spawn_logged(false, true, "mmapq-consumer", "--name", "audit", NULL);
	snprintf(want, sizeof(want), "lost %" PRIu64 " records to on_full = skip since it last ran",
	         pol.skipped);
	err = tu_read_until(audit.err_fd, want, DEADLINE_MS, NULL);
	EXPECT(err && strstr(err, want), "audit's start did not say '%s': '%s'", want,
	       err ? err : "(nothing)");
	free(err);
	end = tu_now_ms() + (uint64_t)DEADLINE_MS;
	while (!(consumer_of("audit", &cs) && cs.position == N) && tu_now_ms() < end)
		sched_yield();
	kill(audit.pid, SIGTERM);
	out = tu_read_all(audit.out_fd, DEADLINE_MS, NULL);
	close(audit.out_fd);
	close(audit.err_fd);
	EXPECT(out, "audit: no end of output");
	expect_range("audit", out, (unsigned)pol.skipped + 1, N);
	free(out);
	EXPECT(finish(audit.pid) == 0, "audit failed");
	/* the next start lost nothing meanwhile, and says so */
	audit = spawn_logged(false, false, "mmapq-consumer", "--name", "audit", NULL);
	err = tu_read_until(audit.err_fd, "lost no records to on_full = skip since it last ran",
	                    DEADLINE_MS, NULL);
	EXPECT(err && strstr(err, "lost no records"), "audit's second start: '%s'",
	       err ? err : "(nothing)");
	free(err);
	kill(audit.pid, SIGTERM);
	close(audit.err_fd);
	EXPECT(finish(audit.pid) == 0, "audit failed");
}

/* gone (inactive_timeout = 2s) runs and exits while the producer runs: the
 * producer removes it once it has been gone that long, not before, a look
 * (a second) or so after, and says so; stays (a timeout, attached all
 * along) and down (no timeout) stay registered. */
static void inactive_timeout(void)
{
	const unsigned timeout_s = 2;
	struct mmapq_consumer_status cs;
	struct mmapq_policy pol = {0};
	struct tu_proc prod, stays;
	char *ini, *err;
	uint64_t gone_ms, took_ms;

	ini = tu_xasprintf("[consumer]\noutput = null\n[consumer:gone]\ninactive_timeout = %us\n"
	                   "[consumer:stays]\ninactive_timeout = 1s\n", timeout_s);
	setup_level("notice", ini);
	free(ini);
	run_once("down");
	stays = spawn(false, false, "mmapq-consumer", "--name", "stays", NULL);
	EXPECT(wait_attached("stays", &cs), "stays never attached");
	prod = spawn_logged(true, false, "mmapq-producer", NULL);
	run_once("gone");
	gone_ms = tu_now_ms();
	EXPECT(policy_of("gone", &pol) && pol.inactive_timeout_s == timeout_s,
	       "gone's entry says inactive_timeout %u", pol.inactive_timeout_s);
	err = tu_read_until(prod.err_fd, "consumer 'gone' removed", DEADLINE_MS, NULL);
	took_ms = tu_now_ms() - gone_ms;
	EXPECT(err && strstr(err, "consumer 'gone' removed: not attached for its inactive_timeout of"
	                          " 2 s"), "the producer said: '%s'", err ? err : "(nothing)");
	EXPECT(!strstr(err, "'stays'") && !strstr(err, "'down'"), "removed another: '%s'", err);
	free(err);
	EXPECT(took_ms >= timeout_s * 1000u && took_ms <= (timeout_s + 3) * 1000u * tu_time_factor(),
	       "gone removed %" PRIu64 " ms after it exited (inactive_timeout %u s)", took_ms,
	       timeout_s);
	EXPECT(!consumer_of("gone", &cs), "gone is still registered");
	EXPECT(consumer_of("stays", &cs) && consumer_of("down", &cs),
	       "stays (attached) or down (no timeout) was removed");
	close(prod.in_fd);
	EXPECT(finish(prod.pid) == 0, "the producer failed");
	close(prod.err_fd);
	kill(stays.pid, SIGTERM);
	EXPECT(finish(stays.pid) == 0, "stays failed");
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"three_speeds", three_speeds},
		{"down_blocks", down_blocks},
		{"down_drops", down_drops},
		{"named_config", named_config},
		{"skip_down", skip_down},
		{"inactive_timeout", inactive_timeout},
	};

	signal(SIGPIPE, SIG_IGN);
	return tu_main_cases(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
