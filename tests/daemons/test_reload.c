/* SPDX-License-Identifier: MIT */
/*
 * test_reload -- SIGHUP reloads the configuration of running daemons, with
 * the real binaries: a producer reading stdin (kept open) and a consumer,
 * both on config files in a temporary directory, log level info.
 *
 *   live           [log] level, [log] stats_interval and [producer] on_full
 *                  changed: each daemon logs "reload: [section] key: old ->
 *                  new (applied)" and acts on it (statistics lines appear;
 *                  the producer now drops on a full queue); an unchanged file
 *                  is reported as such
 *   restart_key    [queue] size changed: "needs a restart, not applied",
 *                  the queue keeps its size, records still flow; a live
 *                  key changed along with it is still applied
 *   broken         an unknown key and a bad value: both FILE:LINE errors and
 *                  "keeping the running configuration"; records still flow
 *                  and the old settings still apply (on_full stays block
 *                  although the broken file says drop)
 *   output_switch  the consumer's output changed from stdout to file:PATH
 *                  while records flow: the records after the reload are in
 *                  the file, none lost or doubled across the two outputs; the
 *                  consumer's STATUS= (NOTIFY_SOCKET) names the new output.
 *                  A switch to a file that cannot be opened: the open error,
 *                  then that change "not applied", once, and never
 *                  "(applied)"; the file stays the output
 *   dropin         a drop-in (mmapq.ini.d/50-test.ini) written, broken and
 *                  removed between SIGHUPs: applied and logged, rejected
 *                  with its own FILE:LINE (also by --check-config), undone
 *   check_config   --check-config on the broken file exits 78 with both
 *                  errors (what ExecReload= runs first); on a good file, 0
 *   seq_prefix_binary  seq_prefix = yes on a reload with format binary:
 *                  "not applied" (its records are framed by their length),
 *                  the records written as before
 *
 * A daemon's signal handlers are installed before it attaches to the queue:
 * the first record crossing from producer to consumer shows both are in their
 * loops, and only then is SIGHUP sent.  Nothing waits by sleeping: every
 * wait is a poll on a child's output (or a pidfd) with a deadline.  On
 * failure the queue state is printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h" /* the producer's wake-up word: its entry's room (entry 0: "default") */
#include "testproc.h"
#include "testutil.h"

#define DEADLINE_MS 10000 /* per step; every step normally takes milliseconds */

static char *dir;   /* fresh temporary directory */
static char *qpath; /* dir/queue */
static char *cfg;   /* dir/mmapq.ini */


#define EXPECT(cond, ...) TU_EXPECT(qpath, cond, __VA_ARGS__)

/* ---- per-test state ---- */

static void setup(void)
{
	dir = tu_mkdtemp("reload");
	qpath = tu_path(dir, "queue");
	cfg = tu_path(dir, "mmapq.ini");
	tp_set_queue(qpath);
}

/* Replace dir/mmapq.ini as an editor would: a new file renamed over it. */
static void write_text(const char *text)
{
	char *tmp = tu_path(dir, "mmapq.ini.new");

	if (tu_write_file(tmp, text, strlen(text)) < 0 || rename(tmp, cfg) < 0)
		tu_die("write config");
	free(tmp);
}

struct rcfg {
	const char *size;    /* [queue] size, default 16K: 1024 int records */
	const char *on_full; /* default block */
	const char *output;  /* default stdout */
	const char *level;   /* default info */
	uint32_t stats;      /* stats_interval */
};

static void write_cfg(struct rcfg o)
{
	char *text = tu_xasprintf("; written by test_reload\n"
	                          "[queue]\npath = %s\nsize = %s\nmax_record = 8\n"
	                          "[producer]\ninput = stdin\non_full = %s\n"
	                          "[consumer]\noutput = %s\n"
	                          "[log]\nlevel = %s\nstats_interval = %" PRIu32 "\n",
	                          qpath, o.size ? o.size : "16K",
	                          o.on_full ? o.on_full : "block", o.output ? o.output : "stdout",
	                          o.level ? o.level : "info", o.stats);
	write_text(text);
	free(text);
}

/* An unknown key on line 7 and a bad value on line 11; the valid lines
 * ask for on_full = drop and statistics every second. */
static const char broken_text_fmt[] = "; broken on purpose\n"                    /* 1 */
                                      "[queue]\n"                                 /* 2 */
                                      "path = %s\n"                               /* 3 */
                                      "size = %s\n"                               /* 4 */
                                      "[producer]\n"                              /* 5 */
                                      "on_full = drop\n"                          /* 6 */
                                      "colour = red\n"                            /* 7 */
                                      "[consumer]\n"                              /* 8 */
                                      "output = stdout\n"                         /* 9 */
                                      "[log]\n"                                   /* 10 */
                                      "level = verbose\n"                         /* 11 */
                                      "stats_interval = 1\n";                     /* 12 */

static void write_broken(const char *size)
{
	char *text = tu_xasprintf(broken_text_fmt, qpath, size);
	write_text(text);
	free(text);
}

/* The two errors of the broken file, as FILE:LINE: message */
static char *broken_err1(void)
{
	return tu_xasprintf("%s:7: unknown key 'colour' in [producer]", cfg);
}

static char *broken_err2(void)
{
	return tu_xasprintf("%s:11: [log] level: 'verbose' is not valid", cfg);
}


static struct tp_kid start_producer(void)
{
	char **argv = tp_av("mmapq-producer", "--config", cfg, (char *)NULL);
	struct tp_kid p = tp_spawn(argv, true, false, true);

	tp_av_free(argv);
	return p;
}

static struct tp_kid start_consumer(char *const env[], const char *count)
{
	char **argv = tp_av("mmapq-consumer", "--config", cfg, count ? "--count" : NULL, count,
	                 (char *)NULL);
	struct tp_kid c = tp_spawn_env(argv, env, false, true, true);

	tp_av_free(argv);
	return c;
}

static void put(struct tp_kid *p, const char *records)
{
	EXPECT(tu_write_all(p->in, records, strlen(records)) == 0, "write to the producer: %s",
	       strerror(errno));
}

/* Both daemons, and record 1 through both: their signal handlers are set. */
static void start_both(struct tp_kid *p, struct tp_kid *c, char *const env[], const char *count)
{
	*c = start_consumer(env, count);
	*p = start_producer();
	put(p, "1\n");
	EXPECT(tp_until(c->out, "1\n", DEADLINE_MS),
	       "record 1 did not reach the consumer; consumer stdout '%s' stderr '%s', producer "
	       "stderr '%s'", tp_str(c->out), tp_str(c->err), tp_str(p->err));
}

static void hup(struct tp_kid *k)
{
	EXPECT(kill(k->pid, SIGHUP) == 0, "kill SIGHUP %d: %s", (int)k->pid, strerror(errno));
}

/* The daemon's stderr shows every line in want[] (NULL-terminated). */
static void expect_lines(const char *who, struct tp_kid *k, const char *const want[])
{
	for (int i = 0; want[i]; i++)
		EXPECT(tp_until(k->err, want[i], DEADLINE_MS), "%s: no '%s' on stderr; it says:\n%s", who,
		       want[i], tp_str(k->err));
}

/* SIGTERM (consumer) or end of input (producer): exit 0 within the deadline */
static void finish(struct tp_kid *p, struct tp_kid *c)
{
	int code;

	if (c && c->pid > 0) {
		kill(c->pid, SIGTERM);
		code = tp_wait_exit(c, DEADLINE_MS);
		EXPECT(code == 0, "consumer exited %d on SIGTERM; stderr:\n%s", code, tp_str(c->err));
		tp_kid_close(c);
	}
	if (p && p->pid > 0) {
		tp_close_fd(&p->in);
		code = tp_wait_exit(p, DEADLINE_MS);
		EXPECT(code == 0, "producer exited %d at end of input; stderr:\n%s", code, tp_str(p->err));
		tp_kid_close(p);
	}
}

/* ---- live ---- */

static void test_live(void)
{
	static const char *const want[] = {
		"reload: [log] level: info -> debug (applied)",
		"reload: [log] stats_interval: 0 -> 1 (applied)",
		"reload: [producer] on_full: block -> drop (applied)",
		NULL,
	};
	struct tp_kid p, c;
	struct mmapq_status st;
	char *recs, *unchanged;
	int code;

	write_cfg((struct rcfg){0});
	start_both(&p, &c, NULL, NULL);
	EXPECT(!strstr(tp_str(p.err), "rec/s") && !strstr(tp_str(c.err), "rec/s"),
	       "statistics logged with stats_interval = 0");

	write_cfg((struct rcfg){.level = "debug", .stats = 1, .on_full = "drop"});
	hup(&p);
	expect_lines("producer", &p, want);
	hup(&c);
	expect_lines("consumer", &c, want);
	/* stats_interval applied: each logs a statistics line now */
	EXPECT(tp_until(p.err, " rec/s", DEADLINE_MS),
	       "producer: no statistics line after stats_interval 0 -> 1; stderr:\n%s", tp_str(p.err));
	EXPECT(tp_until(c.err, "consumed 1, depth 0 records (0 of 16384 bytes), ", DEADLINE_MS),
	       "consumer: no statistics line after stats_interval 0 -> 1; stderr:\n%s", tp_str(c.err));
	/* nothing changed: said so */
	unchanged = tu_xasprintf("reload: %s unchanged", cfg);
	hup(&p);
	EXPECT(tp_until(p.err, unchanged, DEADLINE_MS), "producer: no '%s'; stderr:\n%s", unchanged,
	       tp_str(p.err));

	/* on_full = drop applied: without a consumer, 1100 records into a ring
	 * with room for 1023 more: some are dropped (block mode would wait
	 * instead), and every one is either published or dropped */
	kill(c.pid, SIGTERM);
	code = tp_wait_exit(&c, DEADLINE_MS);
	EXPECT(code == 0, "consumer exited %d on SIGTERM", code);
	recs = tp_seq_lines(2, 1101);
	put(&p, recs);
	finish(&p, NULL);
	st = tu_queue_status(qpath);
	EXPECT(st.head == 1 && st.producer.dropped > 0 && st.tail + st.producer.dropped == 1101 &&
	       st.size - st.used_bytes < 2 * mmapq_frame_size(st.max_record),
	       "tail %" PRIu64 " head %" PRIu64 " dropped %" PRIu64 " used %" PRIu64 " of %" PRIu64
	       " bytes: want head 1, the ring full and the rest of the 1101 dropped", st.tail, st.head,
	       st.producer.dropped, st.used_bytes, st.size);
	tp_kid_close(&c);
	free(recs);
	free(unchanged);
}

/* ---- restart_key ---- */

static void test_restart_key(void)
{
	static const char *const want[] = {
		"reload: [queue] size: 16K -> 32K needs a restart, not applied", NULL};
	static const char *const want2[] = {
		"reload: [queue] size: 16K -> 32K needs a restart, not applied",
		"reload: [producer] on_full: block -> drop (applied)", NULL};
	struct tp_kid p, c;
	struct mmapq_status st;

	write_cfg((struct rcfg){.size = "16K"});
	start_both(&p, &c, NULL, NULL);

	write_cfg((struct rcfg){.size = "32K"});
	hup(&p);
	expect_lines("producer", &p, want);
	hup(&c);
	expect_lines("consumer", &c, want);
	EXPECT(!strstr(tp_str(p.err), "(applied)") && !strstr(tp_str(c.err), "(applied)"),
	       "something was applied although only a restart key changed:\n%s\n%s", tp_str(p.err),
	       tp_str(c.err));
	/* still working */
	put(&p, "2 3 4\n");
	EXPECT(tp_until(c.out, "4\n", DEADLINE_MS) && strcmp(tp_str(c.out), "1\n2\n3\n4\n") == 0,
	       "after the reload the consumer printed '%s', want 1..4", tp_str(c.out));
	st = tu_queue_status(qpath);
	EXPECT(st.size == 16384, "size %" PRIu64 " after the reload, want 16384", st.size);

	/* a live key changed along with it is applied; size still is not */
	write_cfg((struct rcfg){.size = "32K", .on_full = "drop"});
	p.err->len = 0, p.err->s[0] = '\0';
	c.err->len = 0, c.err->s[0] = '\0';
	hup(&p);
	expect_lines("producer", &p, want2);
	hup(&c);
	expect_lines("consumer", &c, want2);
	put(&p, "5 6\n");
	EXPECT(tp_until(c.out, "6\n", DEADLINE_MS) && strcmp(tp_str(c.out), "1\n2\n3\n4\n5\n6\n") == 0,
	       "after the second reload the consumer printed '%s', want 1..6", tp_str(c.out));
	finish(&p, &c);
}

/* ---- broken ---- */

static void test_broken(void)
{
	char *e1 = broken_err1(), *e2 = broken_err2();
	char *keep = tu_xasprintf("reload: %s has errors; keeping the running configuration", cfg);
	const char *const want[] = {e1, e2, keep, NULL};
	struct tp_kid p, c, c2;
	struct mmapq_status st;
	char *want_out;
	int code;

	/* a ring of 256 bytes (16 int records), block, statistics every second */
	write_cfg((struct rcfg){.size = "256", .stats = 1});
	start_both(&p, &c, NULL, NULL);

	write_broken("256");
	hup(&p);
	expect_lines("producer", &p, want);
	hup(&c);
	expect_lines("consumer", &c, want);
	EXPECT(!strstr(tp_str(p.err), "(applied)") && !strstr(tp_str(c.err), "(applied)"),
	       "a rejected file applied something:\n%s\n%s", tp_str(p.err), tp_str(c.err));

	/* records still flow */
	put(&p, "2 3 4\n");
	EXPECT(tp_until(c.out, "4\n", DEADLINE_MS) && strcmp(tp_str(c.out), "1\n2\n3\n4\n") == 0,
	       "after the rejected reload the consumer printed '%s', want 1..4", tp_str(c.out));

	/* the old on_full = block still applies: without a consumer 20 records
	 * fill the 16 slots and the producer waits, dropping nothing */
	kill(c.pid, SIGTERM);
	code = tp_wait_exit(&c, DEADLINE_MS);
	EXPECT(code == 0, "consumer exited %d on SIGTERM", code);
	want_out = tp_seq_lines(5, 24);
	put(&p, want_out);
	for (uint64_t end = tu_now_ms() + DEADLINE_MS;
	     !tu_in_futex_on(p.pid, qpath, offsetof(struct mmapq_header, producers[0].room));)
		EXPECT(tu_now_ms() < end, "producer: never waited on the full queue; stderr:\n%s",
		       tp_str(p.err));
	st = tu_queue_status(qpath);
	EXPECT(st.producer.dropped == 0 && !strstr(tp_str(p.err), "record dropped"),
	       "records dropped (%" PRIu64 ") although the running on_full is block; stderr:\n%s",
	       st.producer.dropped, tp_str(p.err));
	/* a new consumer needs a valid file (the producer is not signalled again) */
	write_cfg((struct rcfg){.size = "256", .stats = 1});
	c2 = start_consumer(NULL, "20");
	EXPECT(tp_until(c2.out, NULL, DEADLINE_MS) && strcmp(tp_str(c2.out), want_out) == 0,
	       "the next consumer printed '%s', want 5..24; stderr '%s'", tp_str(c2.out), tp_str(c2.err));
	code = tp_wait_exit(&c2, DEADLINE_MS);
	EXPECT(code == 0, "consumer --count 20 exited %d", code);
	finish(&p, NULL);
	tp_kid_close(&c);
	tp_kid_close(&c2);
	free(want_out);
	free(e1);
	free(e2);
	free(keep);
}

/* ---- dropin ---- */

static void write_dropin(const char *path, const char *text)
{
	if (tu_write_file(path, text, strlen(text)) < 0)
		tu_die("write drop-in");
}

/* A drop-in written, broken and removed while both daemons run: each
 * SIGHUP re-reads mmapq.ini.d/ too; a broken drop-in is named with its line
 * and changes nothing; --check-config (what ExecReload= runs first) says
 * the same. */
static void test_dropin(void)
{
	char *d = tu_path(dir, "mmapq.ini.d"), *dropin = tu_path(d, "50-test.ini");
	char *read_line = tu_xasprintf("configuration: drop-in %s", dropin);
	char *bad_line = tu_xasprintf("%s:3: unknown key 'on_full' in [log]", dropin);
	char *keep = tu_xasprintf("reload: %s has errors; keeping the running configuration", cfg);
	const char *const applied[] = {read_line, "reload: [log] stats_interval: 0 -> 1 (applied)",
	                               "reload: [producer] on_full: block -> drop (applied)", NULL};
	const char *const broken[] = {bad_line, keep, NULL};
	const char *const removed[] = {"reload: [log] stats_interval: 1 -> 0 (applied)",
	                               "reload: [producer] on_full: drop -> block (applied)", NULL};
	char **argv;
	struct tp_kid p, c, k;
	int code;

	write_cfg((struct rcfg){0});
	EXPECT(mkdir(d, 0755) == 0, "mkdir %s: %s", d, strerror(errno));
	start_both(&p, &c, NULL, NULL);

	write_dropin(dropin, "[log]\nstats_interval = 1\n[producer]\non_full = drop\n");
	hup(&p);
	expect_lines("producer", &p, applied);
	hup(&c);
	expect_lines("consumer", &c, applied);
	EXPECT(tp_until(c.err, "consumed 1, depth 0 records (0 of 16384 bytes), ", DEADLINE_MS),
	       "consumer: no statistics line after the drop-in set stats_interval = 1; stderr:\n%s",
	       tp_str(c.err));

	/* broken: named with its own line, nothing applied, the daemon goes on */
	write_dropin(dropin, "[log]\nstats_interval = 0\non_full = never\n");
	p.err->len = 0, p.err->s[0] = '\0';
	hup(&p);
	expect_lines("producer", &p, broken);
	EXPECT(!strstr(tp_str(p.err), "(applied)"), "a broken drop-in applied something:\n%s",
	       tp_str(p.err));
	argv = tp_av("mmapq-producer", "--config", cfg, "--check-config", (char *)NULL);
	k = tp_spawn(argv, false, true, true);
	tp_av_free(argv);
	EXPECT(tp_until(k.err, NULL, DEADLINE_MS), "--check-config: stderr did not end");
	code = tp_wait_exit(&k, DEADLINE_MS);
	EXPECT(code == 78 && strstr(tp_str(k.err), bad_line),
	       "--check-config with the broken drop-in: exit %d, stderr '%s'", code, tp_str(k.err));
	tp_kid_close(&k);

	/* removed: back to mmapq.ini alone */
	EXPECT(unlink(dropin) == 0, "unlink %s: %s", dropin, strerror(errno));
	hup(&p);
	expect_lines("producer", &p, removed);
	hup(&c);
	expect_lines("consumer", &c, removed);
	put(&p, "2 3\n");
	EXPECT(tp_until(c.out, "3\n", DEADLINE_MS) && strcmp(tp_str(c.out), "1\n2\n3\n") == 0,
	       "after the reloads the consumer printed '%s', want 1..3", tp_str(c.out));
	finish(&p, &c);
	free(keep);
	free(bad_line);
	free(read_line);
	free(dropin);
	free(d);
}

/* ---- output_switch ---- */

/* Drain until t holds a whole line containing needle. */
static bool until_line(struct tp_out *t, const char *needle, int timeout_ms)
{
	uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;
	const char *at;

	if (!tp_until(t, needle, timeout_ms))
		return false;
	at = strstr(t->s, needle);
	while (!strchr(t->s + (at - t->s), '\n')) {
		size_t off = (size_t)(at - t->s);
		if (t->eof || !tp_pump(deadline))
			return false;
		at = t->s + off; /* the buffer may have moved */
	}
	return true;
}

/* How many times needle occurs in s. */
static int occurrences(const char *s, const char *needle)
{
	int n = 0;

	for (const char *at = strstr(s, needle); at; at = strstr(at + 1, needle))
		n++;
	return n;
}

/* Every datagram waiting on the notify socket, one per line. */
static void drain_notify(int fd, char **acc)
{
	char msg[4096];
	ssize_t n;

	while ((n = recv(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT)) >= 0 || errno == EINTR) {
		char *s;
		if (n < 0)
			continue;
		msg[n] = '\0';
		s = tu_xasprintf("%s%s\n", *acc, msg);
		free(*acc);
		*acc = s;
	}
}

static void test_output_switch(void)
{
	enum { N1 = 20000, N2 = 1000, HUP_AT = 5000 };
	char *outfile = tu_path(dir, "out");
	char *output = tu_xasprintf("file:%s", outfile);
	char *applied = tu_xasprintf("reload: [consumer] output: stdout -> %s (applied)", output);
	char *notify = tu_path(dir, "notify");
	char *env_notify = tu_xasprintf("NOTIFY_SOCKET=%s", notify);
	char *const env[] = {env_notify, NULL};
	char count[32], mark[32], *phase1, *phase2, *all, *file, *both, *status = strdup("");
	char *bad_output, *not_applied, *bad_applied, *open_error;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct tp_feed f;
	struct tp_kid p, c;
	bool hup_sent = false;
	size_t scan = 0, split;
	uint64_t deadline;
	int nfd, code;

	nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, notify);
	EXPECT(nfd >= 0 && bind(nfd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind %s: %s", notify,
	       strerror(errno));
	snprintf(count, sizeof(count), "%d", N1 + N2);
	snprintf(mark, sizeof(mark), "\n%d\n", HUP_AT);
	write_cfg((struct rcfg){0});
	start_both(&p, &c, env, count);

	/* 2..N1 flow; SIGHUP (output -> file) once HUP_AT has been printed */
	write_cfg((struct rcfg){.output = output});
	phase1 = tp_seq_lines(2, N1);
	f = (struct tp_feed){.fd = p.in, .data = phase1, .len = strlen(phase1)};
	fcntl(p.in, F_SETFL, fcntl(p.in, F_GETFL) | O_NONBLOCK); /* from now on, only feeds */
	tp_feeding = &f;
	deadline = tu_now_ms() + 20000;
	while (!hup_sent || f.off < f.len) {
		if (!hup_sent && strstr(c.out->s + scan, mark)) {
			hup(&c);
			hup_sent = true;
		}
		scan = c.out->len > 16 ? c.out->len - 16 : 0;
		if (!tp_pump(deadline))
			break;
	}
	tp_feeding = NULL;
	EXPECT(hup_sent && f.off == f.len, "records 2..%d: %zu of %zu bytes written, SIGHUP %s; consumer "
	       "stderr:\n%s", N1, f.off, f.len, hup_sent ? "sent" : "not sent", tp_str(c.err));
	EXPECT(until_line(c.err, applied, DEADLINE_MS), "consumer: no '%s'; stderr:\n%s", applied,
	       tp_str(c.err));
	EXPECT(occurrences(tp_str(c.err), applied) == 1, "consumer: '%s' not once; stderr:\n%s",
	       applied, tp_str(c.err));

	/* a second switch, to a file that cannot be opened, is refused: the
	 * consumer says why and that it was not applied, once each, never that
	 * it was applied, and keeps writing to (and naming) the file it has
	 * open */
	bad_output = tu_xasprintf("file:%s/no-such-dir/out", dir);
	not_applied = tu_xasprintf("reload: [consumer] output: %s -> %s not applied: the new output"
	                           " cannot be opened; keeping output %s\n", output, bad_output,
	                           outfile);
	bad_applied = tu_xasprintf("reload: [consumer] output: %s -> %s (applied)", output, bad_output);
	open_error = tu_xasprintf("%s: cannot open output: %s\n", bad_output + 5, strerror(ENOENT));
	write_cfg((struct rcfg){.output = bad_output});
	hup(&c);
	EXPECT(until_line(c.err, " not applied: ", DEADLINE_MS),
	       "consumer: no 'not applied' after a switch to '%s'; stderr:\n%s", bad_output,
	       tp_str(c.err));
	EXPECT(occurrences(tp_str(c.err), not_applied) == 1 && occurrences(tp_str(c.err), " -> ") == 2,
	       "consumer: want '%.*s' once (and no other change logged); stderr:\n%s",
	       (int)strlen(not_applied) - 1, not_applied, tp_str(c.err));
	EXPECT(occurrences(tp_str(c.err), open_error) == 1, "consumer: want '%.*s' once; stderr:\n%s",
	       (int)strlen(open_error) - 1, open_error, tp_str(c.err));
	EXPECT(!strstr(tp_str(c.err), bad_applied), "consumer: says '%s', which it was not; stderr:\n%s",
	       bad_applied, tp_str(c.err));

	/* these are written after the switch: they must all go to the file */
	phase2 = tp_seq_lines(N1 + 1, N1 + N2);
	f = (struct tp_feed){.fd = p.in, .data = phase2, .len = strlen(phase2)};
	EXPECT(tp_feed_all(&f, DEADLINE_MS), "records %d..%d: %zu of %zu bytes written", N1 + 1, N1 + N2,
	       f.off, f.len);
	EXPECT(tp_until(c.out, NULL, DEADLINE_MS), "consumer --count %s did not finish", count);
	code = tp_wait_exit(&c, DEADLINE_MS);
	EXPECT(code == 0, "consumer exited %d; stderr:\n%s", code, tp_str(c.err));

	file = tu_read_file(outfile, NULL);
	EXPECT(file, "%s: %s", outfile, strerror(errno));
	all = tp_seq_lines(1, N1 + N2);
	both = tu_xasprintf("%s%s", tp_str(c.out), file);
	split = c.out->len;
	EXPECT(strcmp(both, all) == 0,
	       "stdout (%zu bytes, ends '%s') followed by the file (%zu bytes, starts '%.20s') is not "
	       "1..%d: records lost or doubled across the switch", split,
	       split > 20 ? tp_str(c.out) + split - 20 : tp_str(c.out), strlen(file), file, N1 + N2);
	{
		const char *last = split > 1 ? tp_str(c.out) + split - 2 : tp_str(c.out);
		while (last > tp_str(c.out) && last[-1] != '\n')
			last--;
		fprintf(stderr, "test_reload: output switched after record %ld of %d\n",
		        split ? strtol(last, NULL, 10) : 0L, N1 + N2);
	}
	EXPECT(strlen(file) >= strlen(phase2) && split >= strlen(mark),
	       "stdout has %zu bytes, the file %zu: the switch was not between record %d and %d",
	       split, strlen(file), HUP_AT, N1 + 1);

	/* STATUS= after the reload names the new output */
	drain_notify(nfd, &status);
	{
		const char *r = strstr(status, "STATUS=reloaded");
		char *want = tu_xasprintf(", output %s\n", outfile);
		const char *line;
		int n = 0;

		EXPECT(r, "no STATUS=reloaded from the consumer; it sent:\n%s", status);
		for (line = strstr(r, "STATUS=consumed "); line; line = strstr(line + 1, "STATUS=consumed ")) {
			const char *eol = strchr(line, '\n');
			size_t wl = strlen(want);
			EXPECT(eol && (size_t)(eol - line) + 1 >= wl &&
			       strncmp(eol + 1 - wl, want, wl) == 0,
			       "STATUS after the switch does not end with '%.*s': '%.*s'", (int)wl - 1, want,
			       eol ? (int)(eol - line) : 200, line);
			n++;
		}
		EXPECT(n > 0, "no STATUS=consumed after the reload; the consumer sent:\n%s", status);
		free(want);
	}
	finish(&p, NULL);
	tp_kid_close(&c);
	close(nfd);
	free(status);
	free(both);
	free(all);
	free(file);
	free(phase1);
	free(phase2);
	free(env_notify);
	free(notify);
	free(bad_output);
	free(not_applied);
	free(bad_applied);
	free(open_error);
	free(applied);
	free(output);
	free(outfile);
}

/* ---- seq_prefix_binary ---- */

/* One record of len bytes at data published into the queue (format binary). */
static void put_binary(const void *data, uint32_t len)
{
	struct mmapq_params p = {.path = qpath, .role = MMAPQ_ROLE_PRODUCER};
	struct mmapq *q;
	uint64_t room;

	EXPECT(mmapq_open(&p, &q, NULL) == 0, "open the queue as the producer");
	EXPECT(mmapq_reserve(q, len, mmapq_now_ns() + 5000000000u, &room) == 0 &&
	       mmapq_put(q, data, len) == 0 && mmapq_publish(q) >= 0, "put a record");
	mmapq_close(q);
}

/* Drain until t holds n bytes (binary: strstr sees no further than a NUL). */
static bool until_len(struct tp_out *t, size_t n, int timeout_ms)
{
	uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;

	while (t->len < n)
		if (t->eof || !tp_pump(deadline))
			return false;
	return true;
}

/* seq_prefix = yes on a reload, with format binary: refused, said so
 * ("not applied"), never "(applied)"; the records stay framed as before. */
static void test_seq_prefix_binary(void)
{
	static const char fmt[] = "[queue]\npath = %s\nsize = 64K\nmax_record = 1K\nformat = binary\n"
	                          "[consumer]\noutput = stdout\nseq_prefix = %s\n";
	char *text = tu_xasprintf(fmt, qpath, "no"), *refused;
	struct tp_kid c;

	write_text(text);
	free(text);
	c = start_consumer(NULL, "2");
	EXPECT(tu_wait_role(qpath, c.pid, false, DEADLINE_MS), "the consumer did not attach");
	put_binary("ab", 2);
	EXPECT(until_len(c.out, 6, DEADLINE_MS) && !memcmp(c.out->s, "\0\0\0\2ab", 6),
	       "the first record: %zu bytes on stdout", c.out->len);
	text = tu_xasprintf(fmt, qpath, "yes");
	write_text(text);
	free(text);
	hup(&c);
	refused = "reload: [consumer] seq_prefix: no -> yes not applied: format = binary";
	EXPECT(tp_until(c.err, refused, DEADLINE_MS), "consumer: no '%s'; stderr:\n%s", refused,
	       tp_str(c.err));
	EXPECT(!strstr(tp_str(c.err), "(applied)"), "consumer: something applied; stderr:\n%s",
	       tp_str(c.err));
	put_binary("cd", 2);
	EXPECT(tp_until(c.out, NULL, DEADLINE_MS) && c.out->len == 12 &&
	       !memcmp(c.out->s + 6, "\0\0\0\2cd", 6),
	       "the second record: %zu bytes on stdout in all, want 12", c.out->len);
	EXPECT(tp_wait_exit(&c, DEADLINE_MS) == 0, "consumer --count 2 failed; stderr:\n%s",
	       tp_str(c.err));
	tp_kid_close(&c);
}

/* ---- check_config ---- */

static void test_check_config(void)
{
	static const char *const progs[] = {"mmapq-producer", "mmapq-consumer", "mmapqctl"};
	char *e1 = broken_err1(), *e2 = broken_err2();
	char *ok = tu_xasprintf("%s: configuration OK\n", cfg);

	for (int good = 0; good < 2; good++) {
		if (good)
			write_cfg((struct rcfg){0});
		else
			write_broken("16K");
		for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
			char **argv = tp_av(progs[i], "--config", cfg, "--check-config", (char *)NULL);
			struct tp_kid k = tp_spawn(argv, false, true, true);
			int code;

			tp_av_free(argv);
			EXPECT(tp_until(k.out, NULL, DEADLINE_MS) && tp_until(k.err, NULL, DEADLINE_MS),
			       "%s --check-config: output did not end", progs[i]);
			code = tp_wait_exit(&k, DEADLINE_MS);
			if (good)
				EXPECT(code == 0 && strcmp(tp_str(k.out), ok) == 0 && !*tp_str(k.err),
				       "%s --check-config on a good file: exit %d, stdout '%s', stderr '%s'",
				       progs[i], code, tp_str(k.out), tp_str(k.err));
			else
				EXPECT(code == 78 && strstr(tp_str(k.err), e1) && strstr(tp_str(k.err), e2) &&
				       !*tp_str(k.out),
				       "%s --check-config on the broken file: exit %d (want 78), stdout '%s', "
				       "stderr '%s' (want '%s...' and '%s...')",
				       progs[i], code, tp_str(k.out), tp_str(k.err), e1, e2);
			tp_kid_close(&k);
		}
	}
	free(e1);
	free(e2);
	free(ok);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"live", test_live},
		{"restart_key", test_restart_key},
		{"broken", test_broken},
		{"output_switch", test_output_switch},
		{"dropin", test_dropin},
		{"check_config", test_check_config},
		{"seq_prefix_binary", test_seq_prefix_binary},
	};

	signal(SIGPIPE, SIG_IGN); /* a dead child's stdin is an EPIPE error, not our death */
	atexit(tp_cleanup); /* a case that fails leaves no daemon behind */
	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
