/* SPDX-License-Identifier: MIT */
/*
 * transport_stream.c -- the byte streams a user would pick instead of
 * mmapq, fd[0] the consumer's end and fd[1] the producer's:
 *
 *   pipe, unix  one write() per record (the record is handed over at once);
 *               the reader read()s up to 64 KiB at a time and checks every
 *               record in the buffer.  unix = socketpair(AF_UNIX,
 *               SOCK_STREAM).  Ping-pong: two pipes, or the socket pair
 *               both ways.
 *   stdio       a pipe as a user of stdio writes it: fwrite()/fread() per
 *               record through a FILE with a c->stdio_buf buffer (4 KiB or
 *               64 KiB, setvbuf), so that a write(2) or read(2) carries a
 *               buffer's worth of records.  No ping-pong.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "testutil.h"

static int pipe_setup(struct cell *c, char *why, size_t whylen)
{
	if (pipe2(c->fd, O_CLOEXEC) < 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int unix_setup(struct cell *c, char *why, size_t whylen)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(why, whylen, "socketpair: %s", strerror(errno));
		return -1;
	}
	c->fd[0] = sv[1];
	c->fd[1] = sv[0];
	return 0;
}

static int stream_prod(struct cell *c)
{
	unsigned char *buf = xalloc(c->size);
	int r;

	close(c->fd[0]);
	barrier();
	ctl->t_start = now_ns();
	for (uint64_t seq = 0; seq < c->n; seq++) {
		rec_fill(buf, c->size, seq);
		r = tu_write_all(c->fd[1], buf, c->size);
		if (r < 0)
			return child_fail("write record %" PRIu64 ": %s", seq, strerror(-r));
	}
	record_rusage(0);
	if (c->tr == &tr_unix)
		shutdown(c->fd[1], SHUT_WR);
	close(c->fd[1]);
	free(buf);
	return 0;
}

static int stream_cons(struct cell *c)
{
	size_t cap = 65536 > 4 * (size_t)c->size ? 65536 : 4 * (size_t)c->size;
	unsigned char *buf = xalloc(cap);
	size_t have = 0;
	uint64_t exp = 0;
	ssize_t k;

	close(c->fd[1]);
	barrier();
	while (exp < c->n) {
		size_t off = 0;
		k = read(c->fd[0], buf + have, cap - have);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return child_fail("read at record %" PRIu64 ": %s", exp, strerror(errno));
		if (k == 0)
			return child_fail("end of stream at record %" PRIu64 " of %" PRIu64, exp, c->n);
		have += (size_t)k;
		for (; have - off >= c->size; off += c->size, exp++) {
			if (exp >= c->n)
				return child_fail("more than %" PRIu64 " records", c->n);
			if (!rec_ok(buf + off, c->size, exp))
				return child_fail("record %" PRIu64 ": content of record %" PRIu64, exp,
				                  rec_index(buf + off));
		}
		if (off && have > off)
			memmove(buf, buf + off, have - off);
		have -= off;
	}
	ctl->t_end = now_ns();
	ctl->verified = exp;
	if (have || read(c->fd[0], buf, cap) != 0)
		return child_fail("extra bytes after %" PRIu64 " records", c->n);
	record_rusage(1);
	close(c->fd[0]);
	free(buf);
	return 0;
}

/* ---- ping-pong over pipes or a socket pair ---------------------------------------- */

static int pipe_lat_setup(struct cell *c, char *why, size_t whylen)
{
	/* fd[0],fd[1]: pipe 0 (read, write), side 0 -> side 1; fd[2],fd[3]: pipe 1 */
	if (pipe2(c->fd, O_CLOEXEC) < 0 || pipe2(c->fd + 2, O_CLOEXEC) < 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int pipe_ep_open(struct ep *e, struct cell *c, int side)
{
	e->wfd = c->fd[side ? 3 : 1];
	e->rfd = c->fd[side ? 0 : 2];
	close(c->fd[side ? 1 : 3]);
	close(c->fd[side ? 2 : 0]);
	return 0;
}

static int unix_lat_setup(struct cell *c, char *why, size_t whylen)
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c->fd) < 0) {
		snprintf(why, whylen, "socketpair: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int unix_ep_open(struct ep *e, struct cell *c, int side)
{
	e->rfd = e->wfd = c->fd[side];
	close(c->fd[!side]);
	return 0;
}

static int stream_send(struct ep *e, const void *buf, uint64_t i)
{
	int r = tu_write_all(e->wfd, buf, LAT_SIZE);
	(void)i;
	return r < 0 ? child_fail("write: %s", strerror(-r)) : 0;
}

static int stream_recv(struct ep *e, void *buf)
{
	for (size_t got = 0; got < LAT_SIZE;) {
		ssize_t k = read(e->rfd, (char *)buf + got, LAT_SIZE - got);
		if (k > 0)
			got += (size_t)k;
		else if (k == 0 || errno != EINTR)
			return child_fail("read: %s", k ? strerror(errno) : "end of stream");
	}
	return 0;
}

const struct transport tr_pipe = {
	.setup = pipe_setup, .prod = stream_prod, .cons = stream_cons,
	.lat_setup = pipe_lat_setup, .ep_open = pipe_ep_open, .send = stream_send, .recv = stream_recv,
};

const struct transport tr_unix = {
	.setup = unix_setup, .prod = stream_prod, .cons = stream_cons,
	.lat_setup = unix_lat_setup, .ep_open = unix_ep_open, .send = stream_send, .recv = stream_recv,
};

/* ---- a pipe through stdio ---------------------------------------------------------- */

static FILE *stdio_open(struct cell *c, bool writer, char **vbuf)
{
	FILE *f;

	close(c->fd[writer ? 0 : 1]);
	*vbuf = xalloc(c->stdio_buf);
	f = fdopen(c->fd[writer ? 1 : 0], writer ? "w" : "r");
	if (!f || setvbuf(f, *vbuf, _IOFBF, c->stdio_buf)) {
		child_fail("fdopen/setvbuf: %s", strerror(errno));
		return NULL;
	}
	return f;
}

static int stdio_prod(struct cell *c)
{
	unsigned char *buf = xalloc(c->size);
	char *vbuf;
	FILE *f = stdio_open(c, true, &vbuf);

	if (!f)
		return EXIT_FAIL;
	barrier();
	ctl->t_start = now_ns();
	for (uint64_t seq = 0; seq < c->n; seq++) {
		rec_fill(buf, c->size, seq);
		if (fwrite(buf, c->size, 1, f) != 1)
			return child_fail("fwrite record %" PRIu64 ": %s", seq, strerror(errno));
	}
	if (fclose(f))
		return child_fail("fclose: %s", strerror(errno));
	record_rusage(0);
	free(vbuf);
	free(buf);
	return 0;
}

static int stdio_cons(struct cell *c)
{
	unsigned char *buf = xalloc(c->size);
	char *vbuf;
	FILE *f = stdio_open(c, false, &vbuf);
	uint64_t exp;

	if (!f)
		return EXIT_FAIL;
	barrier();
	for (exp = 0; exp < c->n; exp++) {
		if (fread(buf, c->size, 1, f) != 1)
			return child_fail("fread at record %" PRIu64 ": %s", exp,
			                  ferror(f) ? strerror(errno) : "end of stream");
		if (!rec_ok(buf, c->size, exp))
			return child_fail("record %" PRIu64 ": content of record %" PRIu64, exp, rec_index(buf));
	}
	ctl->t_end = now_ns();
	ctl->verified = exp;
	if (fgetc(f) != EOF)
		return child_fail("extra bytes after %" PRIu64 " records", c->n);
	record_rusage(1);
	fclose(f);
	free(vbuf);
	free(buf);
	return 0;
}

const struct transport tr_stdio = {
	.setup = pipe_setup, .prod = stdio_prod, .cons = stdio_cons,
};
