/* SPDX-License-Identifier: MIT */
#include "shmcond.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "mmapq.h"

/* Not FUTEX_PRIVATE_FLAG: the word is shared between processes. */
static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *rel)
{
	return syscall(SYS_futex, word, op, val, rel, NULL, 0);
}

void mmapq_cond_reset(struct mmapq_cond *c)
{
	__atomic_store_n(&c->waiting, 0, __ATOMIC_RELAXED);
}

int mmapq_cond_wait(struct mmapq_cond *c, pthread_mutex_t *m, uint64_t deadline_ns)
{
	uint64_t now = mmapq_now_ns(), slice;
	struct timespec rel;
	uint32_t seen;
	int err = 0, r;

	if (now >= deadline_ns)
		return -ETIMEDOUT;
	slice = deadline_ns - now;
	if (slice > MMAPQ_WAIT_SLICE_NS)
		slice = MMAPQ_WAIT_SLICE_NS;
	rel.tv_sec = (time_t)(slice / 1000000000u);
	rel.tv_nsec = (long)(slice % 1000000000u);

	/* Register and sample seq under the mutex: any signal that comes after
	 * the unlock increments seq first, so FUTEX_WAIT returns at once. */
	__atomic_store_n(&c->waiting, 1, __ATOMIC_RELAXED);
	seen = __atomic_load_n(&c->seq, __ATOMIC_RELAXED);
	pthread_mutex_unlock(m);

	mmapq_fault("wait.unlocked");
	if (futex(&c->seq, FUTEX_WAIT, seen, &rel) < 0)
		err = errno;

	r = pthread_mutex_lock(m);
	if (r != 0 && r != EOWNERDEAD)
		return -r;
	/* Back under the mutex: the caller re-registers if it waits again. */
	__atomic_store_n(&c->waiting, 0, __ATOMIC_RELAXED);
	if (r == EOWNERDEAD)
		return -EOWNERDEAD;
	if (err == EINTR)
		return -EINTR;
	if (err == ETIMEDOUT && mmapq_now_ns() >= deadline_ns)
		return -ETIMEDOUT;
	return 0;
}

static void wake(struct mmapq_cond *c)
{
	__atomic_fetch_add(&c->seq, 1, __ATOMIC_RELAXED);
	mmapq_fault("signal.incremented");
	futex(&c->seq, FUTEX_WAKE, INT_MAX, NULL);
}

void mmapq_cond_signal(struct mmapq_cond *c)
{
	if (!__atomic_load_n(&c->waiting, __ATOMIC_RELAXED))
		return;
	__atomic_store_n(&c->waiting, 0, __ATOMIC_RELAXED);
	wake(c);
}

void mmapq_cond_broadcast(struct mmapq_cond *c)
{
	__atomic_store_n(&c->waiting, 0, __ATOMIC_RELAXED);
	wake(c);
}
