/* SPDX-License-Identifier: MIT */
/*
 * test_wait_for_room -- a producer held back by a consumer says so, with
 * the real daemons:
 *   stopped_consumer    consumer audit registered and never releasing
 *                       (not attached): the producer fills the ring and
 *                       waits; its journal line (stderr) names audit, how
 *                       far behind it is and that it is not attached;
 *                       STATUS= says the same; mmapqctl status, --json and
 *                       metrics show since when and for which consumer;
 *                       once audit consumes, the wait ends and a line says
 *                       how long it lasted; the views show no wait, the
 *                       time waited counted
 *   sigstopped_consumer the same with audit attached and SIGSTOPped: the
 *                       line says it is attached (its pid); SIGCONT ends it
 * Nothing sleeps: every wait is on a stream, a socket or a process, with a
 * deadline.  On failure the queue's state is printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h" /* the mutex's lock word, to stop audit outside it */
#include "testproc.h"
#include "testutil.h"

#define DEADLINE_MS (20000 * (int)tu_time_factor())
#define N 1000 /* records fed: a ring of 4 KiB holds 256 */

static char *dir, *qpath, *cfg, *notify_path;
static int notify_fd = -1;

#define EXPECT(cond, ...) TU_EXPECT(qpath, cond, __VA_ARGS__)

static void setup(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char *text;

	dir = tu_mkdtemp("room");
	qpath = tu_path(dir, "queue");
	cfg = tu_path(dir, "mmapq.ini");
	notify_path = tu_path(dir, "notify");
	tp_set_queue(qpath);
	text = tu_xasprintf("[queue]\npath = %s\nsize = 4K\nmax_record = 64\n[consumer]\n"
	                    "output = null\n[log]\nlevel = notice\n", qpath);
	if (tu_write_file(cfg, text, strlen(text)) < 0)
		tu_die("write config");
	free(text);
	/* the producer's sd_notify datagrams */
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", notify_path);
	if (notify_fd < 0 || bind(notify_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		tu_die("notify socket");
}

/* Until a datagram on the notify socket holds every one of the needles
 * (NULL-terminated); that datagram, or NULL at the deadline. */
static char *until_notify(int timeout_ms, ...)
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	static char msg[4096];

	for (;;) {
		struct pollfd pf = {.fd = notify_fd, .events = POLLIN};
		uint64_t now = tu_now_ms();
		bool all = true;
		const char *needle;
		va_list ap;
		ssize_t n;

		if (now >= end || poll(&pf, 1, (int)(end - now)) <= 0)
			return NULL;
		n = recv(notify_fd, msg, sizeof(msg) - 1, MSG_DONTWAIT);
		if (n < 0)
			continue;
		msg[n] = '\0';
		va_start(ap, timeout_ms);
		while ((needle = va_arg(ap, const char *)))
			all = all && strstr(msg, needle);
		va_end(ap);
		if (all)
			return msg;
	}
}

/* mmapqctl ARGS... to its end: its stdout, exit 0. */
static char *ctl(const char *a1, const char *a2)
{
	return tp_ctl(cfg, a1, a2, DEADLINE_MS);
}

/* The value of the sample that starts with prefix in the metrics text. */
static double metric(const char *text, const char *prefix)
{
	const char *s = strstr(text, prefix);

	EXPECT(s, "no sample '%s' in the metrics:\n%s", prefix, text);
	return strtod(s + strlen(prefix), NULL);
}

/* The producer, fed 1..N by a child of ours (a producer that waits for
 * room reads nothing, which must not block the test), with NOTIFY_SOCKET. */
static struct tp_kid producer(void)
{
	char *env_notify = tu_xasprintf("NOTIFY_SOCKET=%s", notify_path);
	char *const env[] = {env_notify, NULL};
	char **av = tp_av("mmapq-producer", "--config", cfg, NULL);
	struct tp_kid k = tp_spawn_env(av, env, true, false, true);
	pid_t pid = tu_fork();

	if (pid == 0) {
		char *lines = tp_seq_lines(1, N);
		_exit(tu_write_all(k.in, lines, strlen(lines)) < 0);
	}
	tu_track(pid);
	tp_close_fd(&k.in);
	tp_av_free(av);
	free(env_notify);
	return k;
}

/* The producer waits for room held by audit (attached or not, pid): the
 * journal line, STATUS=, status, --json and metrics say so; then
 * release() lets audit consume, and the wait ends, said with its length,
 * the views showing no wait and the time it took. */
static void held_by_audit(bool attached, pid_t audit_pid, void (*release)(void))
{
	struct tp_kid prod = producer();
	struct mmapq_status st;
	char *want, *out, *line, *m;
	double waited;
	int code;

	/* the line, once the wait has lasted a second */
	EXPECT(tp_until(prod.err, "waiting for room (the queue is full) since ", DEADLINE_MS),
	       "no line of the wait for room; stderr:\n%s", tp_str(prod.err));
	EXPECT(tp_until(prod.err, ")\n", DEADLINE_MS), "the line does not end; stderr:\n%s",
	       tp_str(prod.err));
	st = tu_queue_status(qpath);
	EXPECT(st.head == 0 && st.tail > 0 && st.tail < N, "head %" PRIu64 " tail %" PRIu64, st.head,
	       st.tail);
	want = attached ? tu_xasprintf("consumer audit is %" PRIu64 " records (%" PRIu64 " bytes) behind,"
	                               " attached (pid %d, since ", st.tail, st.used_bytes, (int)audit_pid)
	                : tu_xasprintf("consumer audit is %" PRIu64 " records (%" PRIu64 " bytes) behind,"
	                               " not attached (last attached ", st.tail, st.used_bytes);
	EXPECT(strstr(tp_str(prod.err), want), "the line does not say '%s'; stderr:\n%s", want,
	       tp_str(prod.err));
	if (!attached) {
		char *pid = tu_xasprintf(", pid %d)\n", (int)audit_pid);
		EXPECT(strstr(tp_str(prod.err), pid), "the line does not name audit's last pid %d; "
		       "stderr:\n%s", (int)audit_pid, tp_str(prod.err));
		free(pid);
	}
	EXPECT(until_notify(DEADLINE_MS, "STATUS=waiting for room since ", want, NULL),
	       "no STATUS= saying '%s'", want);

	/* status, --json, metrics */
	out = ctl("status", NULL);
	line = tu_xasprintf("for consumer audit (lag %" PRIu64 " records, %" PRIu64 " bytes; %s); ",
	                    st.tail, st.used_bytes, attached ? "attached" : "not attached");
	EXPECT(strstr(out, "           waiting for room since ") && strstr(out, line),
	       "status does not say the wait for '%s':\n%s", line, out);
	free(line);
	free(out);
	out = ctl("--json", "status");
	EXPECT(strstr(out, "\"blocked_by\":\"audit\"") && !strstr(out, "\"blocked_since_usec\":0,"),
	       "status --json: no wait for audit:\n%s", out);
	free(out);
	m = ctl("metrics", NULL);
	line = tu_xasprintf("mmapq_consumer_blocking_producer{queue=\"%s\",consumer=\"audit\"} ", qpath);
	EXPECT(metric(m, line) == 1, "audit is not the blocking consumer:\n%s", m);
	free(line);
	line = tu_xasprintf("mmapq_producer_blocked_since_timestamp_seconds{queue=\"%s\"} ", qpath);
	EXPECT(metric(m, line) > 1.7e9, "no time the wait began:\n%s", m);
	free(line);
	line = tu_xasprintf("mmapq_producer_blocked_seconds_total{queue=\"%s\"} ", qpath);
	EXPECT(metric(m, line) > 0, "no time waited while waiting:\n%s", m);
	free(line);
	free(m);

	/* room: the wait ends, said with how long it lasted (over a second) */
	release();
	EXPECT(tp_until(prod.err, "room again: waited ", DEADLINE_MS),
	       "no line of the end of the wait; stderr:\n%s", tp_str(prod.err));
	EXPECT(tp_until(prod.err, NULL, DEADLINE_MS), "the producer did not end; stderr:\n%s",
	       tp_str(prod.err));
	waited = strtod(strstr(tp_str(prod.err), "room again: waited ") + 19, NULL);
	EXPECT(waited >= 1.0 && strstr(tp_str(prod.err), " s for room (since "),
	       "the end of the wait: %.1f s; stderr:\n%s", waited, tp_str(prod.err));
	code = tp_wait_exit(&prod, DEADLINE_MS);
	EXPECT(code == 0, "producer: exit %d; stderr:\n%s", code, tp_str(prod.err));
	EXPECT(tu_queue_status(qpath).tail == N, "not every record published");

	out = ctl("status", NULL);
	EXPECT(!strstr(out, "waiting for room since") && strstr(out, "not waiting for room; waited "),
	       "status after the wait:\n%s", out);
	free(out);
	out = ctl("--json", "status");
	EXPECT(strstr(out, "\"blocked_since_usec\":0,") && strstr(out, "\"blocked_by\":null") &&
	       !strstr(out, "\"blocked_usec\":0,"), "status --json after the wait:\n%s", out);
	free(out);
	m = ctl("metrics", NULL);
	line = tu_xasprintf("mmapq_producer_blocked_seconds_total{queue=\"%s\"} ", qpath);
	EXPECT(metric(m, line) >= 1.0, "the time waited is not counted:\n%s", m);
	free(line);
	line = tu_xasprintf("mmapq_consumer_blocking_producer{queue=\"%s\",consumer=\"audit\"} ", qpath);
	EXPECT(metric(m, line) == 0, "audit blocks a producer that does not wait:\n%s", m);
	free(line);
	free(m);
	free(want);
}

/* ---- stopped_consumer ------------------------------------------------------- */

static struct tp_kid drain;

/* audit, not attached, consumes everything */
static void audit_consumes(void)
{
	char **av = tp_av("mmapq-consumer", "--config", cfg, "--name", "audit", "--count", "1000",
	                  NULL);

	drain = tp_spawn(av, false, false, true);
	tp_av_free(av);
}

static void stopped_consumer(void)
{
	struct mmapq_params p = {.path = qpath, .role = MMAPQ_ROLE_CONSUMER, .size = 4096,
	                         .max_record = 64, .format = MMAPQ_FORMAT_INT, .consumer = "audit",
	                         .file_mode = 0660};
	struct mmapq_error err;
	struct mmapq *q;
	int code;

	/* audit registers at the oldest record, then is gone */
	EXPECT(mmapq_open(&p, &q, &err) == 0, "register audit: %s", err.msg);
	mmapq_close(q);
	held_by_audit(false, getpid(), audit_consumes);
	code = tp_wait_exit(&drain, DEADLINE_MS);
	EXPECT(code == 0, "audit: exit %d: %s", code, tp_str(drain.err));
}

/* ---- sigstopped_consumer ---------------------------------------------------- */

static pid_t stopped_pid;

static void audit_continues(void)
{
	EXPECT(kill(stopped_pid, SIGCONT) == 0, "SIGCONT: %s", strerror(errno));
}

/* pid (a child of ours) stopped, not holding the queue's mutex (the owner
 * TID in the lock word): else the producer would wait for the mutex, not
 * for room. */
static void stop_outside_mutex(pid_t pid)
{
	int fd = open(qpath, O_RDONLY | O_CLOEXEC);
	const struct mmapq_header *h = fd < 0 ? MAP_FAILED :
	                               mmap(NULL, sizeof(*h), PROT_READ, MAP_SHARED, fd, 0);

	EXPECT(h != MAP_FAILED, "map %s: %s", qpath, strerror(errno));
	close(fd);
	for (int i = 0; i < 100; i++) {
		const unsigned *word = (const unsigned *)&h->lock;
		int st;

		EXPECT(kill(pid, SIGSTOP) == 0, "SIGSTOP: %s", strerror(errno));
		EXPECT(waitpid(pid, &st, WUNTRACED) == pid && WIFSTOPPED(st), "audit did not stop");
		if ((__atomic_load_n(word, __ATOMIC_ACQUIRE) & 0x3fffffffu) != (unsigned)pid) {
			munmap((void *)h, sizeof(*h));
			return;
		}
		EXPECT(kill(pid, SIGCONT) == 0, "SIGCONT: %s", strerror(errno));
	}
	EXPECT(false, "audit stopped holding the mutex 100 times");
}

static void sigstopped_consumer(void)
{
	char **av = tp_av("mmapq-consumer", "--config", cfg, "--name", "audit", "--count", "1000",
	                  NULL);
	int code;

	drain = tp_spawn(av, false, false, true);
	tp_av_free(av);
	stopped_pid = drain.pid;
	/* attached, then stopped: it holds its role, and releases nothing */
	EXPECT(tu_wait_role(qpath, drain.pid, false, DEADLINE_MS), "audit never attached");
	stop_outside_mutex(drain.pid);
	held_by_audit(true, drain.pid, audit_continues);
	code = tp_wait_exit(&drain, DEADLINE_MS);
	EXPECT(code == 0, "audit: exit %d: %s", code, tp_str(drain.err));
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"stopped_consumer", stopped_consumer},
		{"sigstopped_consumer", sigstopped_consumer},
	};

	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
