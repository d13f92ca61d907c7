/* SPDX-License-Identifier: MIT */
/*
 * test_clients -- the producer's socket against clients that misbehave:
 * whatever a client sends, fails to read or however it hangs up, the
 * producer keeps running, drops or closes that client, and loses nothing
 * it acknowledged; clients that trickle bytes keep no place.
 *
 *   unread_replies    ten clients in a row send ~1 MiB of rejected tokens
 *                     (and long lines, with format int) without reading a
 *                     reply, then hang up every way there is (shutdown of
 *                     both sides, close with replies unread = a reset,
 *                     half-close then close); each valid record a client
 *                     got into the socket before a full hang-up is
 *                     published; then a plain send still works and the
 *                     producer stops with 0
 *   trickling         64 clients each send a byte every 0.3 s (half of
 *                     them digits only, half "1 " pairs, which complete a
 *                     record every 0.6 s): a real `mmapqctl send` gets in
 *                     within seconds
 *   record_deadline   client_timeout = 2: clients that trickle digits (no
 *                     record ever completes) are closed with "FAIL idle"
 *                     although they never stop sending; a client that
 *                     completes a record every 0.6 s is not
 *   exact_capacity    a ring of 256 bytes (16 int records of 16), no
 *                     consumer: `mmapqctl send` of exactly 16 records gets
 *                     its OK (and 15, 1), and so do lines of mixed lengths
 *                     whose frames fill it exactly; 17 int records do not
 *                     fit and time out
 *
 * The pace of a trickle is the timeout of the wait for what the test waits
 * for (the sender's exit): a byte goes out each time that wait times out.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmapq.h"
#include "testproc.h"
#include "testutil.h"

#define DEADLINE_MS 10000
#define TRICKLE_MS  300

static char *dir, *qpath, *sock;

/* [queue] geometry: a ring of 1024 int records (16 bytes each) */
#define RING1024 "size = 16K\nmax_record = 1K\n"

#define EXPECT(cond, ...) TU_EXPECT(qpath, cond, __VA_ARGS__)

static void setup(void)
{
	dir = tu_mkdtemp("clients");
	qpath = tu_path(dir, "queue");
	sock = tu_path(dir, "p.sock");
	tp_set_queue(qpath);
}

/* The configuration: socket input, no consumer, [queue] geometry lines,
 * [producer] extra lines. */
static char *write_cfg(const char *geometry, const char *format, const char *producer_extra)
{
	char *text = tu_xasprintf("[queue]\npath = %s\n%sformat = %s\n"
	                          "[producer]\ninput = socket\nsocket = %s\n%s"
	                          "[log]\nlevel = debug\n",
	                          qpath, geometry, format, sock, producer_extra);
	char *p = tu_write_in(dir, "mmapq.ini", text);

	free(text);
	return p;
}

static struct tp_kid start_producer(const char *cfg)
{
	char **argv = tp_av("mmapq-producer", "--config", cfg, (char *)NULL);
	struct tp_kid p = tp_spawn(argv, false, false, true);

	tp_av_free(argv);
	EXPECT(tp_until(p.err, "as producer", DEADLINE_MS), "the producer did not start: %s",
	       tp_str(p.err));
	return p;
}

static void stop_producer(struct tp_kid *p)
{
	int code;

	kill(p->pid, SIGTERM);
	tp_until(p->err, NULL, DEADLINE_MS);
	code = tp_wait_exit(p, DEADLINE_MS);
	EXPECT(code == 0, "the producer exited %d after SIGTERM; stderr (end): %s", code,
	       tp_str(p->err) + (p->err->len > 4000 ? p->err->len - 4000 : 0));
	tp_kid_close(p);
}

static bool alive(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0;
}

static int connect_client(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	strcpy(sa.sun_path, sock);
	EXPECT(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
	       strerror(errno));
	return fd;
}

/* `mmapqctl send --timeout S RECORDS...` started, its streams drained by
 * tp_pump. */
static struct tp_kid start_send(const char *cfg, const char *timeout_s, const char *records)
{
	char **argv = tp_av("mmapqctl", "--config", cfg, "--timeout", timeout_s, "send", (char *)NULL);
	struct tp_kid k = tp_spawn(argv, true, true, true);
	struct tp_feed f = {.fd = k.in, .data = records, .len = strlen(records)};

	tp_av_free(argv);
	EXPECT(tp_feed_all(&f, DEADLINE_MS), "send: stdin not written (%s)", strerror(f.err));
	tp_close_fd(&k.in);
	return k;
}

/* ---- unread_replies ---- */

enum hangup { HANG_SHUT_RDWR, HANG_CLOSE, HANG_HALF_THEN_CLOSE };

/*
 * Send pattern over and over, never reading, until the producer stops
 * taking bytes (it does once the client's unread replies pass its limit
 * and the socket buffers fill) or max bytes went out; then hang up.
 * Returns how many bytes went out.
 */
static size_t flood(const char *pattern, size_t max, enum hangup how)
{
	size_t plen = strlen(pattern), sent = 0;
	char buf[65536];
	int fd = connect_client();

	for (size_t i = 0; i + plen <= sizeof(buf); i += plen)
		memcpy(buf + i, pattern, plen);
	while (sent < max) {
		size_t off = sent % plen, want = sizeof(buf) / plen * plen - off;
		struct pollfd pf = {.fd = fd, .events = POLLOUT};
		ssize_t k;

		if (want > max - sent)
			want = max - sent;
		k = send(fd, buf + off, want, MSG_NOSIGNAL);
		if (k > 0) {
			sent += (size_t)k;
			continue;
		}
		EXPECT(k < 0 && (errno == EAGAIN || errno == EINTR), "send: %s", strerror(errno));
		/* the producer no longer reads: it waits for us to read */
		if (poll(&pf, 1, 200) == 0)
			break;
	}
	switch (how) {
	case HANG_SHUT_RDWR:
		EXPECT(shutdown(fd, SHUT_RDWR) == 0, "shutdown: %s", strerror(errno));
		break;
	case HANG_HALF_THEN_CLOSE:
		EXPECT(shutdown(fd, SHUT_WR) == 0, "shutdown: %s", strerror(errno));
		break;
	case HANG_CLOSE:
		break;
	}
	close(fd);
	return sent;
}

/* "1 " in the first n bytes of the repeated pattern "1 x ": the records
 * published from them (a final "1" without its space is a record too). */
static uint64_t ones_in(size_t n)
{
	return n / 4 + (n % 4 >= 1);
}

/* Until the queue's tail is tail (the producer published that much).  The
 * tail is looked at again after each look at the streams (drained, without
 * waiting: the producer need not say anything once it has published). */
static bool until_tail(uint64_t tail, int timeout_ms)
{
	uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;

	while (tu_queue_status(qpath).tail != tail) {
		if (tu_now_ms() >= deadline)
			return false;
		tp_pump(tu_now_ms() + 1);
		sched_yield();
	}
	return true;
}

static void case_unread_replies(void)
{
	static const struct {
		const char *pattern;
		enum hangup how;
	} round[] = {
		{"x ", HANG_SHUT_RDWR},
		{"x ", HANG_CLOSE},
		{"1 x ", HANG_SHUT_RDWR},
		{"x ", HANG_HALF_THEN_CLOSE},
		{NULL, HANG_SHUT_RDWR}, /* long lines */
		{"1 x ", HANG_SHUT_RDWR},
		{"x ", HANG_CLOSE},
		{NULL, HANG_CLOSE},
		{"1 x ", HANG_SHUT_RDWR},
		{"x ", HANG_SHUT_RDWR},
	};
	char longline[1001];
	char *cfg;
	struct tp_kid p;
	uint64_t tail = 0;
	struct tp_kid s;
	int code;

	setup();
	cfg = write_cfg("size = 16M\nmax_record = 1K\n", "int", "client_timeout = 60\n"); /* 1M int records */
	p = start_producer(cfg);
	memset(longline, 'y', sizeof(longline) - 2);
	longline[sizeof(longline) - 2] = '\n';
	longline[sizeof(longline) - 1] = '\0';
	for (size_t i = 0; i < sizeof(round) / sizeof(round[0]); i++) {
		const char *pattern = round[i].pattern ? round[i].pattern : longline;
		size_t sent = flood(pattern, 1u << 20, round[i].how);

		if (!strcmp(pattern, "1 x ")) {
			/* a full hang-up, no reset: everything it sent is read */
			tail += ones_in(sent);
			EXPECT(until_tail(tail, DEADLINE_MS),
			       "round %zu: %zu bytes of '1 x ' sent, then both sides shut: %" PRIu64
			       " records published, want %" PRIu64, i, sent, tu_queue_status(qpath).tail, tail);
		}
		EXPECT(alive(p.pid),
		       "round %zu (%zu bytes of '%.8s', never read): the producer died; stderr (end): %s", i,
		       sent, pattern, tp_str(p.err) + (p.err->len > 4000 ? p.err->len - 4000 : 0));
	}
	/* records published are exactly the ones sent, nothing else */
	{
		struct mmapq_params qp = {.path = qpath, .role = MMAPQ_ROLE_OBSERVER};
		struct mmapq *q;
		struct mmapq_error err;
		uint64_t want = tu_queue_status(qpath).tail;

		void *buf;

		EXPECT(mmapq_open(&qp, &q, &err) == 0, "observer open: %s", err.msg);
		buf = malloc(mmapq_max_record(q));
		EXPECT(buf, "malloc");
		for (uint64_t seq = 0; seq < want; seq++) {
			int64_t v = 0;
			struct mmapq_record r;
			int rc = mmapq_peek(q, seq, buf, mmapq_max_record(q), &r);
			if (rc == 0)
				memcpy(&v, r.data, sizeof(v));
			EXPECT(rc == 0 && r.len == sizeof(v) && v == 1,
			       "record %" PRIu64 " is %" PRId64 ", want 1 (only '1' was ever valid)", seq, v);
		}
		free(buf);
		mmapq_close(q);
	}
	s = start_send(cfg, "10", "7 8 9\n");
	EXPECT(tp_until(s.out, NULL, DEADLINE_MS) && tp_until(s.err, NULL, DEADLINE_MS),
	       "send after the hostile clients did not end");
	code = tp_wait_exit(&s, DEADLINE_MS);
	EXPECT(code == 0, "send after the hostile clients: exit %d, stderr '%s'", code, tp_str(s.err));
	tp_kid_close(&s);
	stop_producer(&p);
	free(cfg);
}

/* ---- trickling, record_deadline ---- */

struct trickler {
	int fd;
	const char *pattern; /* sent a byte at a time, over and over */
	size_t at;
	bool closed;         /* the producer closed it */
	char reply[512];
	size_t reply_len;
};

static void tricklers_start(struct trickler *t, int n)
{
	for (int i = 0; i < n; i++)
		t[i] = (struct trickler){.fd = connect_client(), .pattern = i % 2 ? "1 " : "1"};
}

/* One byte each; read what the producer said; note the ones it closed. */
static void tricklers_tick(struct trickler *t, int n)
{
	for (int i = 0; i < n; i++) {
		ssize_t k;

		if (t[i].closed)
			continue;
		k = recv(t[i].fd, t[i].reply + t[i].reply_len, sizeof(t[i].reply) - 1 - t[i].reply_len,
		         MSG_DONTWAIT);
		if (k > 0) {
			t[i].reply_len += (size_t)k;
			t[i].reply[t[i].reply_len] = '\0';
		}
		if (k == 0 || (k < 0 && errno != EAGAIN)) {
			t[i].closed = true;
			continue;
		}
		if (send(t[i].fd, t[i].pattern + t[i].at % strlen(t[i].pattern), 1,
		         MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
			t[i].at++;
	}
}

static void tricklers_end(struct trickler *t, int n)
{
	for (int i = 0; i < n; i++)
		close(t[i].fd);
}

/* Wait for k's exit while the tricklers trickle; its exit code, -1 after
 * timeout_ms. */
static int wait_trickling(struct tp_kid *k, struct trickler *t, int n, int timeout_ms)
{
	uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;

	while (!(k->out->eof && k->err->eof) && tu_now_ms() < deadline) {
		uint64_t tick = tu_now_ms() + TRICKLE_MS;
		while (!(k->out->eof && k->err->eof) && tp_pump(tick < deadline ? tick : deadline))
			;
		tricklers_tick(t, n);
	}
	return k->out->eof && k->err->eof ? tp_wait_exit(k, DEADLINE_MS) : -1;
}

static void case_trickling(void)
{
	struct trickler t[64];
	struct tp_kid p, s;
	uint64_t t0;
	char *cfg;
	int code;

	setup();
	cfg = write_cfg(RING1024, "int", "client_timeout = 60\n");
	p = start_producer(cfg);
	tricklers_start(t, 64);
	/* every place taken, every client trickling, for a while */
	{
		uint64_t until = tu_now_ms() + 4 * TRICKLE_MS;
		while (tu_now_ms() < until) {
			uint64_t tick = tu_now_ms() + TRICKLE_MS;
			while (tp_pump(tick))
				;
			tricklers_tick(t, 64);
		}
	}
	t0 = tu_now_ms();
	s = start_send(cfg, "10", "41 42\n");
	code = wait_trickling(&s, t, 64, 15000);
	EXPECT(code == 0 && strstr(tp_str(s.out), "published 2"),
	       "send with 64 trickling clients connected: exit %d after %" PRIu64 " ms, stdout '%s',"
	       " stderr '%s'", code, tu_now_ms() - t0, tp_str(s.out), tp_str(s.err));
	EXPECT(tu_now_ms() - t0 < 5000u * tu_time_factor(),
	       "send with 64 trickling clients took %" PRIu64 " ms (want: within seconds)",
	       tu_now_ms() - t0);
	tp_kid_close(&s);
	tricklers_end(t, 64);
	stop_producer(&p);
	free(cfg);
}

static void case_record_deadline(void)
{
	struct trickler t[8];
	struct tp_kid p;
	uint64_t t0, deadline;
	char *cfg;
	int open_digits;

	setup();
	cfg = write_cfg(RING1024, "int", "client_timeout = 2\n");
	p = start_producer(cfg);
	tricklers_start(t, 8);
	t0 = tu_now_ms();
	deadline = t0 + 2000 + DEADLINE_MS;
	do {
		uint64_t tick = tu_now_ms() + TRICKLE_MS;
		while (tp_pump(tick))
			;
		tricklers_tick(t, 8);
		open_digits = 0;
		for (int i = 0; i < 8; i += 2)
			open_digits += !t[i].closed;
	} while (open_digits && tu_now_ms() < deadline);
	EXPECT(!open_digits, "%d clients that trickle digits (no record ever completes) are still"
	       " connected %" PRIu64 " ms after they connected, client_timeout = 2", open_digits,
	       tu_now_ms() - t0);
	EXPECT(tu_now_ms() - t0 >= 2000, "clients closed after %" PRIu64 " ms, before client_timeout",
	       tu_now_ms() - t0);
	for (int i = 0; i < 8; i += 2)
		EXPECT(!strncmp(t[i].reply, "FAIL idle published=0 ", 22),
		       "a trickling client was told '%s' (want FAIL idle published=0 ...)", t[i].reply);
	for (int i = 1; i < 8; i += 2)
		EXPECT(!t[i].closed, "a client completing a record every %d ms was closed: '%s'",
		       2 * TRICKLE_MS, t[i].reply);
	tricklers_end(t, 8);
	stop_producer(&p);
	free(cfg);
}

/* ---- exact_capacity ---- */

static void case_exact_capacity(void)
{
	static const struct {
		const char *records;
		uint64_t n;
	} sends[] = {
		{"1\n", 1},
		{"1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n", 15},
		{"1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", 16},
	};
	char *cfg;

	setup();
	cfg = write_cfg("size = 256\nmax_record = 8\n", "int", ""); /* 16 int records */
	for (size_t i = 0; i < sizeof(sends) / sizeof(sends[0]); i++) {
		struct tp_kid p, s;
		char want[64];
		int code;

		unlink(qpath);
		p = start_producer(cfg);
		s = start_send(cfg, "3", sends[i].records);
		EXPECT(tp_until(s.out, NULL, 5000) && tp_until(s.err, NULL, 5000),
		       "send of %" PRIu64 " records into an empty queue of 16: no end", sends[i].n);
		code = tp_wait_exit(&s, DEADLINE_MS);
		snprintf(want, sizeof(want), "published %" PRIu64, sends[i].n);
		EXPECT(code == 0 && strstr(tp_str(s.out), want),
		       "send of %" PRIu64 " records into an empty queue of 16, no consumer: exit %d,"
		       " stdout '%s', stderr '%s'", sends[i].n, code, tp_str(s.out), tp_str(s.err));
		tp_kid_close(&s);
		EXPECT(tu_queue_status(qpath).tail == sends[i].n, "tail %" PRIu64 ", want %" PRIu64,
		       tu_queue_status(qpath).tail, sends[i].n);
		stop_producer(&p);
	}
	/* 17: one does not fit, nobody makes room: the OK cannot come */
	{
		struct tp_kid p, s;
		int code;

		unlink(qpath);
		p = start_producer(cfg);
		s = start_send(cfg, "1", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n");
		EXPECT(tp_until(s.out, NULL, DEADLINE_MS) && tp_until(s.err, NULL, DEADLINE_MS),
		       "send of 17 records into a queue of 16 did not give up");
		code = tp_wait_exit(&s, DEADLINE_MS);
		EXPECT(code == 69, "send of 17 records into a queue of 16, no consumer: exit %d (want 69),"
		       " stderr '%s'", code, tp_str(s.err));
		tp_kid_close(&s);
		EXPECT(tu_queue_status(qpath).tail == 16, "tail %" PRIu64 ", want 16",
		       tu_queue_status(qpath).tail);
		stop_producer(&p);
	}
	/* (the configuration is rewritten: last) lines of 0 to 56 bytes whose frames (8 + the line rounded up to 8)
	 * add up to the ring's 256 bytes exactly */
	{
		/* 8 + 16 + 16 + 24 + 64 + 56 + 64 + 8 */
		static const char lines[] = "\n1234567\n12345678\r\n123456789\n"
		                            "12345678901234567890123456789012345678901234567890123456\n"
		                            "1234567890123456789012345678901234567890123\n"
		                            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcd\n\n";
		struct tp_kid p, s;
		char *lcfg = write_cfg("size = 256\nmax_record = 56\n", "line", "");
		int code;

		unlink(qpath);
		p = start_producer(lcfg);
		s = start_send(lcfg, "3", lines);
		EXPECT(tp_until(s.out, NULL, 5000) && tp_until(s.err, NULL, 5000),
		       "send of lines that fill the ring exactly: no end");
		code = tp_wait_exit(&s, DEADLINE_MS);
		EXPECT(code == 0 && strstr(tp_str(s.out), "published 8"), "send of lines that fill the"
		       " ring exactly: exit %d, stdout '%s', stderr '%s'", code, tp_str(s.out), tp_str(s.err));
		tp_kid_close(&s);
		EXPECT(tu_queue_status(qpath).used_bytes == 256, "%" PRIu64 " ring bytes used, want 256",
		       tu_queue_status(qpath).used_bytes);
		stop_producer(&p);
		free(lcfg);
	}
	free(cfg);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"unread_replies", case_unread_replies},
		{"trickling", case_trickling},
		{"record_deadline", case_record_deadline},
		{"exact_capacity", case_exact_capacity},
	};

	signal(SIGPIPE, SIG_IGN);
	atexit(tp_cleanup); /* a failed case leaves no daemon behind */
	return tu_main_cases(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
