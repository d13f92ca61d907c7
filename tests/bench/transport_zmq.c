/* SPDX-License-Identifier: MIT */
/*
 * transport_zmq.c -- ZeroMQ PUSH/PULL over ipc:// (a Unix socket in the
 * benchmark's directory), one zmq_send/zmq_recv per record, as a user of
 * libzmq writes it: the consumer binds the PULL socket before the start
 * barrier, the producer connects its PUSH socket to it; libzmq's I/O
 * threads batch the messages into the socket's writes.  Both high-water
 * marks are the records the mmapq ring of the cell holds (c->cap), so
 * that neither side waits sooner than mmapq's would.  The producer keeps
 * its socket open until the consumer has checked the last record (a byte
 * over a pipe, fd[1] to fd[0]; its end of file if the consumer died):
 * closing a PUSH socket and ending its context right after the last send
 * was seen to lose messages under load, lingering or not.  Built only with libzmq (libzmq3-dev,
 * MMAPQ_BENCH_ZMQ); without it the row fails and says why.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench.h"

#ifdef MMAPQ_BENCH_ZMQ
#include <zmq.h>

static int zmq_setup(struct cell *c, char *why, size_t whylen)
{
	if (pipe2(c->fd, O_CLOEXEC) < 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return -1;
	}
	snprintf(c->path[0], sizeof(c->path[0]), "%s/zmq.sock", tmpdir);
	unlink(c->path[0]);
	return 0;
}

/* A socket of type on a new context, both high-water marks hwm: 0 or the
 * child's exit code. */
static int zmq_open(int type, int hwm, void **ctx, void **sock)
{
	int linger = -1;

	*ctx = zmq_ctx_new();
	if (!*ctx)
		return child_fail("zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
	*sock = zmq_socket(*ctx, type);
	if (!*sock)
		return child_fail("zmq_socket: %s", zmq_strerror(zmq_errno()));
	if (zmq_setsockopt(*sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
	    zmq_setsockopt(*sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0 ||
	    zmq_setsockopt(*sock, ZMQ_LINGER, &linger, sizeof(linger)) < 0)
		return child_fail("zmq_setsockopt: %s", zmq_strerror(zmq_errno()));
	return 0;
}

static void zmq_end(void *ctx, void *sock)
{
	zmq_close(sock);
	zmq_ctx_term(ctx); /* with linger -1: after every message is sent */
}

static int zmq_prod(struct cell *c)
{
	unsigned char *buf = xalloc(c->size);
	char ep[PATH_MAX + 8], done;
	void *ctx, *sock;
	int r = zmq_open(ZMQ_PUSH, (int)c->cap, &ctx, &sock);

	close(c->fd[1]);
	if (r)
		return r;
	barrier(); /* the consumer has bound */
	snprintf(ep, sizeof(ep), "ipc://%s", c->path[0]);
	if (zmq_connect(sock, ep) < 0)
		return child_fail("zmq_connect %s: %s", ep, zmq_strerror(zmq_errno()));
	ctl->t_start = now_ns();
	for (uint64_t seq = 0; seq < c->n; seq++) {
		rec_fill(buf, c->size, seq);
		while (zmq_send(sock, buf, c->size, 0) < 0) {
			if (zmq_errno() != EINTR)
				return child_fail("zmq_send record %" PRIu64 ": %s", seq,
				                  zmq_strerror(zmq_errno()));
		}
	}
	record_rusage(0);
	while (read(c->fd[0], &done, 1) < 0 && errno == EINTR)
		;
	zmq_end(ctx, sock);
	free(buf);
	return 0;
}

static int zmq_cons(struct cell *c)
{
	unsigned char *buf = xalloc(c->size + 1);
	char ep[PATH_MAX + 8];
	void *ctx, *sock;
	uint64_t exp = 0;
	int r = zmq_open(ZMQ_PULL, (int)c->cap, &ctx, &sock);

	close(c->fd[0]);
	if (r)
		return r;
	snprintf(ep, sizeof(ep), "ipc://%s", c->path[0]);
	if (zmq_bind(sock, ep) < 0)
		return child_fail("zmq_bind %s: %s", ep, zmq_strerror(zmq_errno()));
	barrier();
	for (; exp < c->n; exp++) {
		int k;

		while ((k = zmq_recv(sock, buf, c->size + 1, 0)) < 0) {
			if (zmq_errno() != EINTR)
				return child_fail("zmq_recv at record %" PRIu64 ": %s", exp,
				                  zmq_strerror(zmq_errno()));
		}
		if ((uint32_t)k != c->size || !rec_ok(buf, c->size, exp))
			return child_fail("record %" PRIu64 ": %d bytes, content of record %" PRIu64, exp, k,
			                  rec_index(buf));
	}
	ctl->t_end = now_ns();
	ctl->verified = exp;
	record_rusage(1);
	if (write(c->fd[1], "d", 1) != 1)
		return child_fail("the pipe to the producer: %s", strerror(errno));
	zmq_end(ctx, sock);
	free(buf);
	return 0;
}

const struct transport tr_zmq = {
	.setup = zmq_setup, .prod = zmq_prod, .cons = zmq_cons,
};

#else

static int zmq_missing(struct cell *c, char *why, size_t whylen)
{
	(void)c;
	snprintf(why, whylen, "this benchmark was built without libzmq (install libzmq3-dev:"
	         " tests/deps.sh --test, then configure again)");
	return -1;
}

const struct transport tr_zmq = {
	.setup = zmq_missing,
};

#endif
