/* SPDX-License-Identifier: MIT */
/*
 * test_policy -- [consumer:NAME] on_full and inactive_timeout, with the
 * real daemons:
 *   skip_down         a consumer with on_full = skip that is down never
 *                     holds the producer: a block consumer gets every
 *                     record in order, the producer ends; the skip one,
 *                     back, says how many it lost (its journal line), and
 *                     what it writes is exactly the records after those;
 *                     mmapqctl consumers --json, status and metrics show
 *                     its policy and count
 *   inactive_timeout  a consumer with inactive_timeout that ran and exited
 *                     is removed by the producer once it has been gone that
 *                     long, not before, and that is said; one attached all
 *                     along, and one without a timeout, stay
 * Nothing sleeps: every wait is on a process, a pipe or the queue's state,
 * with a deadline.  On failure the queue's state is printed.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmapq.h"
#include "testutil.h"

#define DEADLINE_MS (20000 * (int)tu_time_factor())

static char *dir, *qpath, *cfg;

#define EXPECT(cond, ...) TU_EXPECT(qpath, cond, __VA_ARGS__)

static void setup(const char *extra)
{
	char *text;

	dir = tu_mkdtemp("policy");
	qpath = tu_path(dir, "queue");
	cfg = tu_path(dir, "mmapq.ini");
	text = tu_xasprintf("[queue]\npath = %s\nsize = 4K\nmax_record = 64\n%s", qpath, extra);
	if (tu_write_file(cfg, text, strlen(text)) < 0)
		tu_die("write config");
	free(text);
}

/* The consumer NAME as the queue's table has it (and its policy); false
 * if not registered. */
static bool consumer_of(const char *name, struct mmapq_consumer_status *out,
                        struct mmapq_policy *pol)
{
	struct mmapq_params p = {.path = qpath, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq *q;
	bool found = false;
	int n;

	if (mmapq_open(&p, &q, NULL) < 0)
		return false;
	n = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX);
	for (int i = 0; i < n && i < (int)MMAPQ_CONSUMERS_MAX; i++)
		if (!strcmp(cs[i].name, name)) {
			*out = cs[i];
			found = !pol || mmapq_policy(q, (int32_t)cs[i].index, pol) == 0;
		}
	mmapq_close(q);
	return found;
}

/* Until the consumer name is registered and attached (want) or not. */
static bool wait_attached(const char *name, bool want)
{
	uint64_t end = tu_now_ms() + (uint64_t)DEADLINE_MS;
	struct mmapq_consumer_status cs;

	while (!(consumer_of(name, &cs, NULL) && cs.attached == want) && tu_now_ms() < end)
		sched_yield();
	return consumer_of(name, &cs, NULL) && cs.attached == want;
}

/* Start a program with --config and the arguments (NULL-terminated),
 * stdin, stdout and stderr piped as asked. */
static struct tu_proc spawn(bool in, bool out, bool err, const char *prog, ...)
{
	char *argv[16];
	struct tu_proc p;
	va_list ap;
	int i = 0;

	argv[i++] = tu_bin(prog);
	argv[i++] = "--config";
	argv[i++] = cfg;
	va_start(ap, prog);
	while (i < 15 && (argv[i] = va_arg(ap, char *)))
		i++;
	va_end(ap);
	argv[i] = NULL;
	if (tu_spawn(&p, argv, NULL, in, out, err) < 0)
		tu_die("spawn");
	tu_track(p.pid);
	free(argv[0]);
	return p;
}

static int finish(pid_t pid)
{
	int st = tu_wait(pid, DEADLINE_MS);

	EXPECT(st >= 0, "pid %d did not exit within %d ms", (int)pid, DEADLINE_MS);
	tu_untrack(pid);
	return tu_exit_code(st);
}

/* A consumer daemon that registers as name (its policy stored), then is
 * stopped (SIGTERM) once attached. */
static void run_once(const char *name)
{
	struct tu_proc c = spawn(false, false, false, "mmapq-consumer", "--name", name, NULL);

	EXPECT(wait_attached(name, true), "%s never attached", name);
	kill(c.pid, SIGTERM);
	EXPECT(finish(c.pid) == 0, "%s did not stop cleanly", name);
}

/* Records "first".."last" into fd, then closed, by a child (a producer
 * held back stops reading). */
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
	tu_track(pid);
	close(fd);
}

/* The text holds exactly "first\n".."last\n". */
static void expect_range(const char *who, const char *text, unsigned first, unsigned last)
{
	const char *s = text;

	for (unsigned v = first; v <= last; v++) {
		char *end;
		unsigned long got = strtoul(s, &end, 10);
		EXPECT(end != s && *end == '\n' && got == v, "%s: record '%.20s', expected %u", who, s, v);
		s = end + 1;
	}
	EXPECT(!*s, "%s: more than records %u..%u: '%.20s'", who, first, last, s);
}

/* mmapqctl CMD [ARG]: its standard output (it must succeed). */
static char *ctl_output(const char *cmd, const char *arg)
{
	struct tu_proc p = spawn(false, true, false, "mmapqctl", cmd, arg, NULL);
	char *text = tu_read_all(p.out_fd, DEADLINE_MS, NULL);

	close(p.out_fd);
	EXPECT(text && finish(p.pid) == 0, "mmapqctl %s failed", cmd);
	return text;
}

/* ---- skip_down ----------------------------------------------------------------- */

static void skip_down(void)
{
	enum { N = 3000 }; /* the 4K ring holds 256 */
	struct mmapq_consumer_status cs;
	struct mmapq_policy pol;
	struct tu_proc prod, live, audit;
	char count[16], *out, *err, want[160];
	uint64_t end;

	setup("[log]\nlevel = info\n[consumer]\noutput = stdout\n"
	      "[consumer:audit]\non_full = skip\n");
	run_once("audit");
	EXPECT(consumer_of("audit", &cs, &pol) && pol.on_full == MMAPQ_POLICY_SKIP,
	       "audit's entry says on_full %u", pol.on_full);
	snprintf(count, sizeof(count), "%d", N);
	live = spawn(false, true, false, "mmapq-consumer", "--name", "live", "--count", count, NULL);
	EXPECT(wait_attached("live", true), "live never attached");
	prod = spawn(true, false, false, "mmapq-producer", NULL);
	feed_range(prod.in_fd, 1, N);
	/* audit is down: nobody holds the producer but live */
	EXPECT(finish(prod.pid) == 0, "the producer did not get through %d records", N);
	out = tu_read_all(live.out_fd, DEADLINE_MS, NULL);
	close(live.out_fd);
	EXPECT(out, "live: no end of output");
	expect_range("live", out, 1, N);
	free(out);
	EXPECT(finish(live.pid) == 0, "live failed");
	EXPECT(consumer_of("audit", &cs, &pol) && pol.skipped > 0 && pol.skipped < N &&
	       pol.skipped_since_attach == pol.skipped && cs.position == pol.skipped,
	       "audit: skipped %" PRIu64 " (%" PRIu64 " since it ran), at %" PRIu64, pol.skipped,
	       pol.skipped_since_attach, cs.position);
	/* mmapqctl shows it: consumers --json, status, metrics */
	snprintf(want, sizeof(want), "\"on_full\":\"skip\",\"skipped\":%" PRIu64 "}", pol.skipped);
	out = ctl_output("consumers", "--json");
	EXPECT(strstr(out, want), "consumers --json lacks '%s': %s", want, out);
	free(out);
	snprintf(want, sizeof(want), "on_full = skip: %" PRIu64 " records lost to skips", pol.skipped);
	out = ctl_output("status", NULL);
	EXPECT(strstr(out, want), "status lacks '%s': %s", want, out);
	free(out);
	snprintf(want, sizeof(want), "mmapq_consumer_skipped_records_total{queue=\"%s\",consumer="
	         "\"audit\"} %" PRIu64 "\n", qpath, pol.skipped);
	out = ctl_output("metrics", NULL);
	EXPECT(strstr(out, want), "metrics lack '%s'", want);
	free(out);
	/* back: it says what it lost, and writes the records after them */
	audit = spawn(false, true, true, "mmapq-consumer", "--name", "audit", NULL);
	snprintf(want, sizeof(want), "lost %" PRIu64 " records to on_full = skip since it last ran",
	         pol.skipped);
	err = tu_read_until(audit.err_fd, want, DEADLINE_MS, NULL);
	EXPECT(err && strstr(err, want), "audit's start did not say '%s': '%s'", want,
	       err ? err : "(nothing)");
	free(err);
	end = tu_now_ms() + (uint64_t)DEADLINE_MS;
	while (!(consumer_of("audit", &cs, NULL) && cs.position == N) && tu_now_ms() < end)
		sched_yield();
	kill(audit.pid, SIGTERM);
	out = tu_read_all(audit.out_fd, DEADLINE_MS, NULL);
	close(audit.out_fd);
	close(audit.err_fd);
	EXPECT(out, "audit: no end of output");
	expect_range("audit", out, (unsigned)pol.skipped + 1, N);
	free(out);
	EXPECT(finish(audit.pid) == 0, "audit failed");
	/* and the next start lost nothing meanwhile */
	audit = spawn(false, false, true, "mmapq-consumer", "--name", "audit", NULL);
	err = tu_read_until(audit.err_fd, "lost no records to on_full = skip since it last ran",
	                    DEADLINE_MS, NULL);
	EXPECT(err && strstr(err, "lost no records"), "audit's second start: '%s'",
	       err ? err : "(nothing)");
	free(err);
	kill(audit.pid, SIGTERM);
	close(audit.err_fd);
	EXPECT(finish(audit.pid) == 0, "audit failed");
}

/* ---- inactive_timeout ---------------------------------------------------------- */

static void inactive_timeout(void)
{
	const unsigned timeout_s = 2;
	struct mmapq_consumer_status cs;
	struct mmapq_policy pol;
	struct tu_proc prod, stays;
	char *ini, *err;
	uint64_t gone_ms, took_ms;

	ini = tu_xasprintf("[log]\nlevel = notice\n[consumer]\noutput = null\n"
	                   "[consumer:gone]\ninactive_timeout = %us\n"
	                   "[consumer:stays]\ninactive_timeout = 1s\n", timeout_s);
	setup(ini);
	free(ini);
	run_once("down"); /* no timeout: kept */
	stays = spawn(false, false, false, "mmapq-consumer", "--name", "stays", NULL);
	EXPECT(wait_attached("stays", true), "stays never attached");
	prod = spawn(true, false, true, "mmapq-producer", NULL);
	run_once("gone");
	gone_ms = tu_now_ms();
	EXPECT(consumer_of("gone", &cs, &pol) && pol.inactive_timeout_s == timeout_s,
	       "gone's entry says inactive_timeout %u", pol.inactive_timeout_s);
	err = tu_read_until(prod.err_fd, "consumer 'gone' removed", DEADLINE_MS, NULL);
	took_ms = tu_now_ms() - gone_ms;
	EXPECT(err && strstr(err, "consumer 'gone' removed: not attached for its inactive_timeout of"
	                          " 2 s"), "the producer said: '%s'", err ? err : "(nothing)");
	EXPECT(!strstr(err, "'stays'") && !strstr(err, "'down'"), "removed another: '%s'", err);
	free(err);
	/* not before its time, and within a look (a second) or so after */
	EXPECT(took_ms >= timeout_s * 1000u && took_ms <= (timeout_s + 3) * 1000u * tu_time_factor(),
	       "gone removed %" PRIu64 " ms after it exited (inactive_timeout %u s)", took_ms,
	       timeout_s);
	EXPECT(!consumer_of("gone", &cs, NULL), "gone is still registered");
	EXPECT(consumer_of("stays", &cs, NULL) && consumer_of("down", &cs, NULL),
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
		{"skip_down", skip_down},
		{"inactive_timeout", inactive_timeout},
	};

	return tu_main_cases(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
