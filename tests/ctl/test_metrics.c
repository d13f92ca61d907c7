/* SPDX-License-Identifier: MIT */
/*
 * test_metrics -- `mmapqctl metrics --http` (the socket-activated endpoint,
 * one process per connection) against clients that are slow on purpose:
 * the whole exchange has one deadline (5 s), not each read or write.
 *
 *   slow_request  the request comes a byte every 0.3 s (it would take 8 s
 *                 to complete): the endpoint answers 408 and exits 74
 *                 within the deadline
 *   slow_reader   a complete request, then the client reads nothing; the
 *                 answer (16 registered consumers: about 15 KB) does not
 *                 fit in the connection's buffer: the endpoint gives up
 *                 within the deadline, exit 74
 *   prompt        the same request sent at once, read at once: 200 and the
 *                 metrics (the control: the deadline is not what ends it)
 *   listening     as mmapq-metrics@NAME.socket runs it (Accept=no): the
 *                 listening socket passed (LISTEN_FDS, fd 3), three
 *                 connections waiting: each gets its 200, then the endpoint
 *                 exits 0 by itself, as none is left waiting
 *
 * The pace of the trickle is the timeout of the wait for the endpoint's
 * exit: a byte goes out each time that wait times out.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mmapq.h"
#include "testproc.h"
#include "testutil.h"

#define DEADLINE_MS 10000
#define EXCHANGE_MS 5000 /* mmapqctl metrics --http's deadline */

static char *dir, *qpath, *cfg;

#define EXPECT(cond, ...) TU_EXPECT(qpath, cond, __VA_ARGS__)

static const char request[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

/* A queue with 16 registered consumers (each registers on its first
 * attach, and stays registered when it leaves). */
static void setup(void)
{
	char *text;

	dir = tu_mkdtemp("metrics");
	qpath = tu_path(dir, "queue");
	text = tu_xasprintf("[queue]\npath = %s\nsize = 64K\nmax_record = 1K\nmax_consumers = 16\n", qpath);
	cfg = tu_write_in(dir, "mmapq.ini", text);
	free(text);
	for (int i = 0; i < 16; i++) {
		char name[16];
		struct mmapq_params p = {.path = qpath, .role = MMAPQ_ROLE_CONSUMER, .size = 65536,
		                         .max_record = 1024, .format = MMAPQ_FORMAT_INT,
		                         .file_mode = 0600, .consumer = name, .max_consumers = 16};
		struct mmapq_error err;
		struct mmapq *q;

		snprintf(name, sizeof(name), "consumer%02d", i);
		EXPECT(mmapq_open(&p, &q, &err) == 0, "consumer %s: %s", name, err.msg);
		mmapq_close(q);
	}
	tp_set_queue(qpath);
}

/* The endpoint on one end of a socket pair, as systemd's Accept=yes starts
 * it (the connection as stdin and stdout); our end in *fd.  sndbuf > 0:
 * the endpoint's send buffer, so small that the answer does not fit. */
static struct tp_kid start_endpoint(int *fd, int sndbuf)
{
	char **argv = tp_av("mmapqctl", "--config", cfg, "metrics", "--http", (char *)NULL);
	struct tu_child c = TU_CHILD_INIT;
	struct tp_kid k = {.in = -1};
	int sv[2], efd[2];

	EXPECT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %s",
	       strerror(errno));
	if (sndbuf)
		EXPECT(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) == 0,
		       "SO_SNDBUF: %s", strerror(errno));
	tu_pipe(efd);
	c.stdio[0] = c.stdio[1] = sv[1];
	c.stdio[2] = efd[1];
	k.pid = tu_start(argv, &c);
	tu_track(k.pid);
	close(sv[1]);
	close(efd[1]);
	k.err = tp_out_new(efd[0]);
	tp_av_free(argv);
	*fd = sv[0];
	return k;
}

static void case_slow_request(void)
{
	struct tp_kid k;
	uint64_t t0 = tu_now_ms();
	size_t sent = 0;
	char answer[256];
	ssize_t n;
	int fd, code;

	setup();
	k = start_endpoint(&fd, 0);
	/* a byte each time the wait for the endpoint's end times out */
	while (!k.err->eof && tu_now_ms() - t0 < DEADLINE_MS) {
		uint64_t tick = tu_now_ms() + 300;
		while (!k.err->eof && tp_pump(tick))
			;
		if (!k.err->eof && sent < sizeof(request) - 1)
			EXPECT(write(fd, request + sent++, 1) == 1, "write: %s", strerror(errno));
	}
	code = tp_wait_exit(&k, DEADLINE_MS);
	EXPECT(code == 74, "a request a byte every 0.3 s: exit %d after %" PRIu64 " ms (want 74),"
	       " stderr '%s'", code, tu_now_ms() - t0, tp_str(k.err));
	EXPECT(tu_now_ms() - t0 < EXCHANGE_MS + 1500u * tu_time_factor(),
	       "a request a byte every 0.3 s held the endpoint %" PRIu64 " ms (its deadline: %d ms)",
	       tu_now_ms() - t0, EXCHANGE_MS);
	EXPECT(sent < sizeof(request) - 1, "the whole request went out (%zu bytes): the test is too slow",
	       sent);
	n = read(fd, answer, sizeof(answer) - 1);
	EXPECT(n > 0 && (answer[n] = '\0', !strncmp(answer, "HTTP/1.1 408 ", 13)),
	       "the answer to an incomplete request: '%s' (want 408)", n > 0 ? answer : "");
	EXPECT(strstr(tp_str(k.err), "timed out"), "stderr does not say why: '%s'", tp_str(k.err));
	close(fd);
	tp_kid_close(&k);
}

static void case_slow_reader(void)
{
	uint64_t t0;
	struct tp_kid k;
	int fd, code;

	setup();
	k = start_endpoint(&fd, 1); /* the smallest send buffer the kernel allows */
	t0 = tu_now_ms();
	EXPECT(write(fd, request, sizeof(request) - 1) == (ssize_t)sizeof(request) - 1, "write: %s",
	       strerror(errno));
	EXPECT(tp_until(k.err, NULL, DEADLINE_MS), "the endpoint did not end: '%s'", tp_str(k.err));
	code = tp_wait_exit(&k, DEADLINE_MS);
	EXPECT(code == 74, "a client that reads nothing: exit %d after %" PRIu64 " ms (want 74),"
	       " stderr '%s'", code, tu_now_ms() - t0, tp_str(k.err));
	EXPECT(tu_now_ms() - t0 < EXCHANGE_MS + 1500u * tu_time_factor(),
	       "a client that reads nothing held the endpoint %" PRIu64 " ms (its deadline: %d ms)",
	       tu_now_ms() - t0, EXCHANGE_MS);
	close(fd);
	tp_kid_close(&k);
}

static void case_prompt(void)
{
	struct tp_kid k;
	struct tp_out *answer;
	int fd, code;

	setup();
	k = start_endpoint(&fd, 1);
	EXPECT(write(fd, request, sizeof(request) - 1) == (ssize_t)sizeof(request) - 1, "write: %s",
	       strerror(errno));
	answer = tp_out_new(fd);
	EXPECT(tp_until(answer, NULL, DEADLINE_MS), "no end of the answer: '%s'", tp_str(answer));
	code = tp_wait_exit(&k, DEADLINE_MS);
	EXPECT(code == 0 && !strncmp(tp_str(answer), "HTTP/1.1 200 ", 13) &&
	       strstr(tp_str(answer), "consumer=\"consumer15\""),
	       "a prompt request: exit %d, answer '%.200s', stderr '%s'", code, tp_str(answer),
	       tp_str(k.err));
	tp_out_free(answer);
	tp_kid_close(&k);
}

static void case_listening(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct tu_child c = TU_CHILD_INIT;
	struct tp_kid k = {.in = -1};
	char *bin, *sock;
	int l, efd[2], fd[3];

	setup();
	sock = tu_path(dir, "metrics.sock");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	EXPECT(l >= 0 && bind(l, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(l, 8) == 0,
	       "listening socket %s: %s", sock, strerror(errno));
	/* three scrapes waiting before it starts, as systemd starts it for
	 * the first */
	for (int i = 0; i < 3; i++) {
		fd[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		EXPECT(fd[i] >= 0 && connect(fd[i], (struct sockaddr *)&sa, sizeof(sa)) == 0,
		       "connect %d: %s", i, strerror(errno));
		EXPECT(write(fd[i], request, sizeof(request) - 1) == (ssize_t)sizeof(request) - 1,
		       "write: %s", strerror(errno));
	}
	/* systemd's way: the socket as fd 3, LISTEN_FDS=1, LISTEN_PID its pid
	 * (the shell's, which execs it) */
	bin = tu_bin("mmapqctl");
	tu_pipe(efd);
	c.stdio[0] = l;
	c.stdio[2] = efd[1];
	k.pid = tu_start((char *[]){"/bin/sh", "-c",
	                            "exec 3<&0 </dev/null; LISTEN_FDS=1 LISTEN_PID=$$ exec \"$0\" \"$@\"",
	                            bin, "--config", cfg, "metrics", "--http", NULL},
	                 &c);
	tu_track(k.pid);
	close(l);
	close(efd[1]);
	k.err = tp_out_new(efd[0]);
	for (int i = 0; i < 3; i++) {
		struct tp_out *answer = tp_out_new(fd[i]);

		EXPECT(tp_until(answer, NULL, DEADLINE_MS), "connection %d: no end of the answer: '%s'", i,
		       tp_str(answer));
		EXPECT(!strncmp(tp_str(answer), "HTTP/1.1 200 ", 13) &&
		       strstr(tp_str(answer), "consumer=\"consumer15\""),
		       "connection %d: answer '%.200s', stderr '%s'", i, tp_str(answer), tp_str(k.err));
		tp_out_free(answer);
	}
	EXPECT(tp_wait_exit(&k, DEADLINE_MS) == 0, "the endpoint did not exit 0 once none was waiting: stderr '%s'",
	       tp_str(k.err));
	tp_kid_close(&k);
	free(bin);
	free(sock);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"slow_request", case_slow_request},
		{"slow_reader", case_slow_reader},
		{"prompt", case_prompt},
		{"listening", case_listening},
	};

	signal(SIGPIPE, SIG_IGN);
	atexit(tp_cleanup);
	return tu_main_cases(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
