/* SPDX-License-Identifier: MIT */
/*
 * transport_mq.c -- POSIX message queue, one mq_send/mq_receive per
 * record, as deep as the machine allows.
 *
 * An unprivileged queue is limited by fs.mqueue.msg_max (10 by default) and
 * msgsize_max (8192); as root the benchmark raises them to the kernel's
 * ceilings for the run (HARD_MSGMAX 65536; msgsize_max to 16384, the
 * largest record) and puts the old values back at exit, also on
 * SIGINT/SIGTERM/SIGHUP (hold.c).  RLIMIT_MSGQUEUE (bytes of all of a user's queues)
 * is raised to its hard limit, and the hard limit too where the process may
 * (CAP_SYS_RESOURCE).  The depth used is the largest that opens
 * (mq_open_deepest), and never more than MQ_BYTES_CAP bytes of messages;
 * sizes above msgsize_max are not possible.  The ping-pong uses two queues
 * of at most 10 messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"

#define MQ_HARD_MSGMAX 65536L
#define MQ_BYTES_CAP (64L << 20)
#define MQ_PROC_MSG_MAX "/proc/sys/fs/mqueue/msg_max"
#define MQ_PROC_MSGSIZE_MAX "/proc/sys/fs/mqueue/msgsize_max"

long msg_max = 10, msgsize_max = 8192;
char mq_limits_note[256];

void mq_limits_read(void)
{
	msg_max = read_long_file(MQ_PROC_MSG_MAX, 10);
	msgsize_max = read_long_file(MQ_PROC_MSGSIZE_MAX, 8192);
}

void mq_limits_raise(void)
{
	long mm = read_long_file(MQ_PROC_MSG_MAX, 10), ms = read_long_file(MQ_PROC_MSGSIZE_MAX, 8192);
	struct rlimit rl;

	if (mm < MQ_HARD_MSGMAX)
		hold_setting(MQ_PROC_MSG_MAX, MQ_HARD_MSGMAX);
	if (ms < (long)sizes[NSIZES - 1])
		hold_setting(MQ_PROC_MSGSIZE_MAX, (long)sizes[NSIZES - 1]);
	if (getrlimit(RLIMIT_MSGQUEUE, &rl) == 0) {
		struct rlimit up = {RLIM_INFINITY, RLIM_INFINITY};
		if (setrlimit(RLIMIT_MSGQUEUE, &up) < 0) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_MSGQUEUE, &rl);
		}
		getrlimit(RLIMIT_MSGQUEUE, &rl);
	}
	mq_limits_read();
	if (rl.rlim_cur == RLIM_INFINITY)
		snprintf(mq_limits_note, sizeof(mq_limits_note), "msg_max %ld (was %ld), msgsize_max %ld"
		         " (was %ld), RLIMIT_MSGQUEUE unlimited", msg_max, mm, msgsize_max, ms);
	else
		snprintf(mq_limits_note, sizeof(mq_limits_note), "msg_max %ld (was %ld), msgsize_max %ld"
		         " (was %ld), RLIMIT_MSGQUEUE %llu bytes", msg_max, mm, msgsize_max, ms,
		         (unsigned long long)rl.rlim_cur);
}

/* ---- throughput -------------------------------------------------------------------- */

/* Whether a queue of this depth and message size opens (then removed). */
static bool mq_depth_opens(const char *name, long depth, long size)
{
	struct mq_attr a = {.mq_maxmsg = depth, .mq_msgsize = size};
	mqd_t m = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);

	if (m == (mqd_t)-1)
		return false;
	mq_close(m);
	mq_unlink(name);
	return true;
}

long mq_open_deepest(const char *name, long size, mqd_t *ret)
{
	long lo = 0, hi = msg_max; /* depth lo opens (0: none known), hi + 1 does not */

	if (size > msgsize_max)
		return -1;
	if (hi > MQ_BYTES_CAP / size)
		hi = MQ_BYTES_CAP / size;
	mq_unlink(name);
	while (lo < hi) {
		long mid = lo + (hi - lo + 1) / 2;
		if (mq_depth_opens(name, mid, size))
			lo = mid;
		else
			hi = mid - 1;
	}
	if (lo > 0) {
		struct mq_attr a = {.mq_maxmsg = lo, .mq_msgsize = size};
		*ret = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
		if (*ret != (mqd_t)-1)
			return lo;
	}
	return -2;
}

static int mq_setup(struct cell *c, char *why, size_t whylen)
{
	char name[64];

	snprintf(name, sizeof(name), "/mmapq-bench-%d", (int)getpid());
	c->mq_depth = mq_open_deepest(name, (long)c->size, &c->mq[0]);
	if (c->mq_depth == -1) {
		snprintf(why, whylen, "not possible (msgsize_max %ld)", msgsize_max);
		return 1;
	}
	if (c->mq_depth < 0) {
		snprintf(why, whylen, "mq_open: %s", strerror(errno));
		return -1;
	}
	/* the descriptor (forked with the children) keeps it alive: a
	 * benchmark killed now leaves no queue behind to use up the user's
	 * RLIMIT_MSGQUEUE */
	mq_unlink(name);
	return 0;
}

static int mq_prod(struct cell *c)
{
	unsigned char *buf = xalloc(c->size);

	barrier();
	ctl->t_start = now_ns();
	for (uint64_t seq = 0; seq < c->n; seq++) {
		rec_fill(buf, c->size, seq);
		while (mq_send(c->mq[0], (const char *)buf, c->size, 0) < 0) {
			if (errno != EINTR)
				return child_fail("mq_send record %" PRIu64 ": %s", seq, strerror(errno));
		}
	}
	record_rusage(0);
	free(buf);
	return 0;
}

static int mq_cons(struct cell *c)
{
	unsigned char *buf = xalloc(c->size);

	barrier();
	for (uint64_t exp = 0; exp < c->n; exp++) {
		ssize_t k;
		while ((k = mq_receive(c->mq[0], (char *)buf, c->size, NULL)) < 0) {
			if (errno != EINTR)
				return child_fail("mq_receive record %" PRIu64 ": %s", exp, strerror(errno));
		}
		if ((size_t)k != c->size || !rec_ok(buf, c->size, exp))
			return child_fail("mq record %" PRIu64 ": %zd bytes, content of record %" PRIu64, exp,
			                  k, rec_index(buf));
	}
	ctl->t_end = now_ns();
	ctl->verified = c->n;
	record_rusage(1);
	free(buf);
	return 0;
}

/* ---- ping-pong ------------------------------------------------------------------------ */

static int mq_lat_setup(struct cell *c, char *why, size_t whylen)
{
	for (int i = 0; i < 2; i++) {
		char name[64];
		struct mq_attr a = {.mq_maxmsg = msg_max < 10 ? msg_max : 10, .mq_msgsize = LAT_SIZE};
		snprintf(name, sizeof(name), "/mmapq-bench-%d-lat%d", (int)getpid(), i);
		mq_unlink(name);
		c->mq[i] = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
		if (c->mq[i] == (mqd_t)-1) {
			snprintf(why, whylen, "mq_open: %s", strerror(errno));
			return -1;
		}
		mq_unlink(name); /* the descriptors keep it alive */
	}
	return 0;
}

/* Queue 0 carries side 0 -> side 1, queue 1 the way back. */
static int mq_ep_open(struct ep *e, struct cell *c, int side)
{
	e->mtx = c->mq[side];
	e->mrx = c->mq[!side];
	return 0;
}

static int mq_send_one(struct ep *e, const void *buf, uint64_t i)
{
	(void)i;
	while (mq_send(e->mtx, buf, LAT_SIZE, 0) < 0)
		if (errno != EINTR)
			return child_fail("mq_send: %s", strerror(errno));
	return 0;
}

static int mq_recv_one(struct ep *e, void *buf)
{
	ssize_t k;
	while ((k = mq_receive(e->mrx, buf, LAT_SIZE, NULL)) < 0)
		if (errno != EINTR)
			return child_fail("mq_receive: %s", strerror(errno));
	return k == LAT_SIZE ? 0 : child_fail("mq_receive: %zd bytes", k);
}

const struct transport tr_mq = {
	.setup = mq_setup, .prod = mq_prod, .cons = mq_cons,
	.lat_setup = mq_lat_setup, .ep_open = mq_ep_open, .send = mq_send_one, .recv = mq_recv_one,
};
