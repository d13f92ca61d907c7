/* SPDX-License-Identifier: MIT */
/*
 * test_fanin_daemons -- several producers on one queue (fan-in) with the
 * real daemons:
 *   three_producers  mmapq-producer --name pipe (its stdin a pipe: s-0 ..
 *                    s-999), mmapq-producer --name gen (input = generate)
 *                    and fanin_put, a program of the library, as lib (lib-0
 *                    .. lib-999), all attached at once; the consumer daemon
 *                    gets every record of each once, each producer's in its
 *                    order (gen's numbers increasing); mmapqctl status (text
 *                    and --json) and metrics list the three, attached with
 *                    their pids, then not attached (no pid; last_pid kept),
 *                    each with what it published: together the queue's tail;
 *                    none dropped (block mode: a record whose room another
 *                    producer reserved first waits for room)
 *   name_taken       a second mmapq-producer of a name that is attached is
 *                    refused (69, naming the pid), one of another name is not
 * Nothing sleeps: every wait is on a process, a pipe or the queue's state,
 * with a deadline.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmapq.h"
#include "testproc.h"
#include "testutil.h"

/* the producer of that name in this case's list ps[0..n) */
#define PROD(name) tu_producer_named(ps, n, (name))

#define DEADLINE_MS (20000 * (int)tu_time_factor())
#define N 1000     /* records of pipe and of lib each */
#define N_TEXT "1000"
#define GEN_MIN 200 /* gen's records at least, before it is stopped */

static char *dir, *qpath, *cfg, *gencfg;

#define EXPECT(cond, ...) TU_EXPECT(qpath, cond, __VA_ARGS__)

static void setup(void)
{
	char *text;

	dir = tu_mkdtemp("fanin");
	qpath = tu_path(dir, "queue");
	cfg = tu_path(dir, "mmapq.ini");
	gencfg = tu_path(dir, "gen.ini");
	tp_set_queue(qpath);
	text = tu_xasprintf("[queue]\npath = %s\nformat = line\nsize = 16K\nmax_record = 64\n"
	                    "[consumer]\noutput = stdout\n[log]\nlevel = warning\n", qpath);
	if (tu_write_file(cfg, text, strlen(text)) < 0)
		tu_die("write config");
	free(text);
	text = tu_xasprintf("[queue]\npath = %s\nformat = line\nsize = 16K\nmax_record = 64\n"
	                    "[producer]\ninput = generate\ngenerate_rate = 2000\n[log]\n"
	                    "level = warning\n", qpath);
	if (tu_write_file(gencfg, text, strlen(text)) < 0)
		tu_die("write config");
	free(text);
}

/* The registered producers, read as an observer: how many (0 if the file
 * is not there yet). */
static int producers(struct mmapq_producer_status *ps)
{
	struct mmapq_params p = {.path = qpath, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_error err;
	struct mmapq *q;
	int n;

	if (mmapq_open(&p, &q, &err) < 0)
		return 0;
	n = mmapq_producers(q, ps, MMAPQ_PRODUCERS_MAX);
	mmapq_close(q);
	EXPECT(n >= 0, "mmapq_producers: %s", mmapq_strerror(n));
	return n;
}

/* Until the producer name is attached as pid (the streams drained
 * meanwhile); its entry into *out. */
static void wait_producer(const char *name, pid_t pid, struct mmapq_producer_status *out)
{
	uint64_t end = tu_now_ms() + (uint64_t)DEADLINE_MS;
	struct mmapq_producer_status ps[MMAPQ_PRODUCERS_MAX];

	for (;;) {
		int n = producers(ps);
		const struct mmapq_producer_status *p = PROD(name);

		if (p && p->attached && p->pid == pid) {
			*out = *p;
			return;
		}
		EXPECT(tu_now_ms() < end, "producer %s (pid %d) not attached in time", name, (int)pid);
		if (!tp_pump(tu_now_ms() + 10))
			sched_yield();
	}
}

/* Whether the consumer attached as name (the streams drained meanwhile). */
static void wait_consumer(const char *name)
{
	uint64_t end = tu_now_ms() + (uint64_t)DEADLINE_MS;
	struct mmapq_consumer_status cs;

	while (!(tu_consumer_status(qpath, name, &cs) && cs.attached)) {
		EXPECT(tu_now_ms() < end, "consumer %s not attached in time", name);
		if (!tp_pump(tu_now_ms() + 10))
			sched_yield();
	}
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* mmapqctl ARGS... to its end: its stdout, exit 0. */
static char *ctl(const char *a1, const char *a2)
{
	return tp_ctl(cfg, a1, a2, DEADLINE_MS);
}

/* The metrics sample of family for producer name: its value. */
static double producer_metric(const char *metrics, const char *family, const char *name)
{
	char *prefix = tu_xasprintf("%s{queue=\"%s\",producer=\"%s\"} ", family, qpath, name);
	const char *s = strstr(metrics, prefix);
	double v;

	EXPECT(s, "no sample '%s' in the metrics:\n%s", prefix, metrics);
	v = strtod(s + strlen(prefix), NULL);
	free(prefix);
	return v;
}

/* What status (text, --json) and metrics say of the producer p. */
static void check_shown(const char *text, const char *json, const char *metrics,
                        const struct mmapq_producer_status *p)
{
	char *want;

	want = tu_xasprintf("producer %s pid %d (%s), attached since ", p->name, (int)p->last_pid,
	                    p->attached ? "alive" : "not attached");
	EXPECT(strstr(text, want), "status does not say '%s':\n%s", want, text);
	free(want);
	want = tu_xasprintf("{\"name\":\"%s\",\"index\":%" PRIu32 ",\"pid\":%d,\"last_pid\":%d,"
	                    "\"attached\":%s,", p->name, p->index, (int)p->pid, (int)p->last_pid,
	                    p->attached ? "true" : "false");
	EXPECT(strstr(json, want), "status --json does not hold '%s':\n%s", want, json);
	free(want);
	want = tu_xasprintf("\"published\":%" PRIu64 ",", p->published);
	EXPECT(strstr(strstr(json, p->name), want), "status --json: %s did not publish %" PRIu64
	       ":\n%s", p->name, p->published, json);
	free(want);
	EXPECT(producer_metric(metrics, "mmapq_producer_published_records_total", p->name) ==
	       (double)p->published, "metrics: %s's published is not %" PRIu64, p->name, p->published);
	EXPECT(producer_metric(metrics, "mmapq_producer_attached", p->name) == (p->attached ? 1 : 0),
	       "metrics: %s's attached is not %d", p->name, p->attached);
	EXPECT(producer_metric(metrics, "mmapq_producer_attaches_total", p->name) == 1,
	       "metrics: %s attached more than once", p->name);
}

/* The consumer's lines: every s-I and lib-I once, in order, and gen's
 * numbers increasing, gen_n of them. */
static void check_delivery(const char *out, uint64_t gen_n)
{
	unsigned long next_s = 0, next_lib = 0, got_gen = 0;
	long long last_gen = -1;
	char *copy = strdup(out), *save = NULL;

	EXPECT(copy != NULL, "strdup");
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *end;

		if (!strncmp(l, "s-", 2)) {
			EXPECT(strtoul(l + 2, &end, 10) == next_s && !*end,
			       "pipe's record '%s' where s-%lu is due", l, next_s);
			next_s++;
		} else if (!strncmp(l, "lib-", 4)) {
			EXPECT(strtoul(l + 4, &end, 10) == next_lib && !*end,
			       "lib's record '%s' where lib-%lu is due", l, next_lib);
			next_lib++;
		} else {
			long long v = strtoll(l, &end, 10);

			EXPECT(!*end && *l && v > last_gen, "gen's record '%s' after %lld", l, last_gen);
			last_gen = v;
			got_gen++;
		}
	}
	free(copy);
	EXPECT(next_s == N && next_lib == N && got_gen == gen_n,
	       "the consumer got %lu of pipe's %d, %lu of lib's %d, %lu of gen's %" PRIu64, next_s, N,
	       next_lib, N, got_gen, gen_n);
}

static void test_three_producers(void)
{
	char **cav = tp_av("mmapq-consumer", "--config", cfg, "--name", "all", NULL);
	char **pav = tp_av("mmapq-producer", "--config", cfg, "--name", "pipe", NULL);
	char **gav = tp_av("mmapq-producer", "--config", gencfg, "--name", "gen", NULL);
	char *put = tu_path(FANIN_PUT_DIR, "fanin_put");
	char *lav[] = {put, qpath, (char *)"lib", (char *)"lib", (char *)N_TEXT, NULL};
	struct tp_kid cons, pipe_p, gen, lib;
	struct mmapq_producer_status ps[MMAPQ_PRODUCERS_MAX], pp, gp, lp;
	uint64_t end, tail;
	char *lines = malloc(N * 8), *text, *json, *metrics;
	size_t len = 0;
	int n;

	EXPECT(lines != NULL, "malloc");
	cons = tp_spawn(cav, false, true, true);
	wait_consumer("all");
	pipe_p = tp_spawn(pav, true, false, true);
	wait_producer("pipe", pipe_p.pid, &pp);
	gen = tp_spawn(gav, false, false, true);
	wait_producer("gen", gen.pid, &gp);
	lib = tp_spawn(lav, true, true, true);
	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(lines + len, 8, "s-%d\n", i);
	/* a pipe holds them all: written at once, the end left open */
	EXPECT(tu_write_all(pipe_p.in, lines, len) == 0, "feeding pipe");
	EXPECT(tp_until(lib.out, "published 1000\n", DEADLINE_MS), "fanin_put did not publish: %s",
	       tp_str(lib.err));
	wait_producer("lib", lib.pid, &lp);
	EXPECT(tp_until(cons.out, "s-999\n", DEADLINE_MS), "the consumer did not get s-999");
	EXPECT(tp_until(cons.out, "lib-999\n", DEADLINE_MS), "the consumer did not get lib-999");
	/* gen publishes all along, beside the others */
	end = tu_now_ms() + (uint64_t)DEADLINE_MS;
	do {
		n = producers(ps);
		EXPECT(tu_now_ms() < end, "gen published %" PRIu64 " records, not %d, in time",
		       PROD("gen") ? PROD("gen")->published : 0, GEN_MIN);
		tp_pump(tu_now_ms() + 10);
	} while (!PROD("gen") || PROD("gen")->published < GEN_MIN);

	/* all three attached: status, --json and metrics list them */
	n = producers(ps);
	EXPECT(n == 3, "%d producers registered, want 3", n);
	text = ctl("status", NULL);
	json = ctl("--json", "status");
	metrics = ctl("metrics", NULL);
	n = producers(ps); /* gen moved on meanwhile: its counts from after the three */
	EXPECT(PROD("pipe")->published == N && PROD("lib")->published == N,
	       "pipe published %" PRIu64 ", lib %" PRIu64, PROD("pipe")->published,
	       PROD("lib")->published);
	check_shown(text, json, metrics, PROD("pipe"));
	check_shown(text, json, metrics, PROD("lib"));
	EXPECT(strstr(text, "producer gen pid ") && strstr(json, "{\"name\":\"gen\",") &&
	       producer_metric(metrics, "mmapq_producer_attached", "gen") == 1,
	       "gen is not shown attached:\n%s\n%s", text, json);
	free(text);
	free(json);
	free(metrics);

	/* each one ends: end of input, end of stdin, SIGTERM */
	tp_close_fd(&pipe_p.in);
	EXPECT(tp_wait_exit(&pipe_p, DEADLINE_MS) == 0, "pipe: %s", tp_str(pipe_p.err));
	tp_close_fd(&lib.in);
	EXPECT(tp_wait_exit(&lib, DEADLINE_MS) == 0, "fanin_put: %s", tp_str(lib.err));
	kill(gen.pid, SIGTERM);
	EXPECT(tp_wait_exit(&gen, DEADLINE_MS) == 0, "gen did not stop cleanly: %s", tp_str(gen.err));

	/* the consumer gets every record of the three */
	tail = tu_queue_status(qpath).tail;
	end = tu_now_ms() + (uint64_t)DEADLINE_MS;
	while (count_lines(tp_str(cons.out)) < tail) {
		EXPECT(tu_now_ms() < end, "the consumer wrote %zu lines of %" PRIu64,
		       count_lines(tp_str(cons.out)), tail);
		tp_pump(end);
	}
	n = producers(ps);
	EXPECT(n == 3, "%d producers registered, want 3", n);
	EXPECT(PROD("pipe")->published + PROD("lib")->published +
	       PROD("gen")->published == tail, "the producers' published do not add up to"
	       " the tail %" PRIu64, tail);
	check_delivery(tp_str(cons.out), PROD("gen")->published);

	/* none attached: no pid, the last one kept, the counts as they were */
	text = ctl("status", NULL);
	json = ctl("--json", "status");
	metrics = ctl("metrics", NULL);
	for (int i = 0; i < n; i++) {
		EXPECT(!ps[i].attached && ps[i].pid == 0, "%s still attached", ps[i].name);
		/* on_full = block: a record whose room another producer took
		 * waits for room, never dropped */
		EXPECT(ps[i].dropped == 0, "%s dropped %" PRIu64 " records", ps[i].name, ps[i].dropped);
		check_shown(text, json, metrics, &ps[i]);
	}
	EXPECT(PROD("pipe")->last_pid == pipe_p.pid && PROD("gen")->last_pid == gen.pid &&
	       PROD("lib")->last_pid == lib.pid,
	       "the last pids are not the processes'");
	free(text);
	free(json);
	free(metrics);

	kill(cons.pid, SIGTERM);
	EXPECT(tp_wait_exit(&cons, DEADLINE_MS) == 0, "consumer: %s", tp_str(cons.err));
	tp_kid_close(&cons);
	tp_kid_close(&pipe_p);
	tp_kid_close(&gen);
	tp_kid_close(&lib);
	tp_av_free(cav);
	tp_av_free(pav);
	tp_av_free(gav);
	free(put);
	free(lines);
}

static void test_name_taken(void)
{
	char **a = tp_av("mmapq-producer", "--config", cfg, "--name", "one", NULL);
	char **b = tp_av("mmapq-producer", "--config", cfg, "-n", "two", NULL);
	struct tp_kid first = tp_spawn(a, true, false, true), again, other;
	struct mmapq_producer_status p;
	char *pid;
	int code;

	wait_producer("one", first.pid, &p);
	again = tp_spawn(a, true, false, true);
	tp_close_fd(&again.in);
	EXPECT(tp_until(again.err, NULL, DEADLINE_MS), "no end of its stderr");
	code = tp_wait_exit(&again, DEADLINE_MS);
	pid = tu_xasprintf("pid %d", (int)first.pid);
	EXPECT(code == 69 && strstr(tp_str(again.err), pid),
	       "a second producer 'one': exit %d (want 69, naming %s): %s", code, pid,
	       tp_str(again.err));
	other = tp_spawn(b, true, false, true);
	wait_producer("two", other.pid, &p);
	tp_close_fd(&other.in);
	tp_close_fd(&first.in);
	EXPECT(tp_wait_exit(&other, DEADLINE_MS) == 0, "producer two: %s", tp_str(other.err));
	EXPECT(tp_wait_exit(&first, DEADLINE_MS) == 0, "producer one: %s", tp_str(first.err));
	tp_kid_close(&first);
	tp_kid_close(&again);
	tp_kid_close(&other);
	tp_av_free(a);
	tp_av_free(b);
	free(pid);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"three_producers", test_three_producers},
		{"name_taken", test_name_taken},
	};

	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
