/* SPDX-License-Identifier: MIT */
#include "shmcond.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fault.h"

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/* True if l->interrupted is set and says so. */
static bool lock_interrupted(const struct mmapq_lock *l)
{
	return l->interrupted && l->interrupted(l->interrupted_ctx);
}

/* pthread's positive codes to this file's convention */
static int held_or_error(int r)
{
	return r == 0 ? 0 : -r; /* EOWNERDEAD: held, the caller repairs */
}

int mmapq_mutex_lock(const struct mmapq_lock *l)
{
	pthread_mutex_t *m = l->mutex;

	for (unsigned i = 0; i < l->spins; i++) {
#ifdef __GLIBC__
		/* Look before trying: a trylock writes the line (and glibc's
		 * robust trylock does more), a plain load only shares it.  A lock
		 * word with only FUTEX_OWNER_DIED set is not 0 either: a dead
		 * owner is left to the blocking lock below. */
		if (__atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED) != 0) {
			cpu_relax();
			continue;
		}
#endif
		int r = pthread_mutex_trylock(m);
		if (r != EBUSY)
			return held_or_error(r);
		cpu_relax();
	}
	for (;;) {
		/* timedlock measures CLOCK_REALTIME: a clock step only moves
		 * the next look at interrupted and the header.  (Not clocklock:
		 * ThreadSanitizer, run on this code by tests/analyze.sh, does
		 * not intercept it.)  A signal does not end the slice: glibc
		 * restarts the futex wait after the handler. */
		struct timespec abs;
		int r;

		clock_gettime(CLOCK_REALTIME, &abs);
		abs.tv_nsec += (long)MMAPQ_LOCK_SLICE_NS;
		if (abs.tv_nsec >= 1000000000L) {
			abs.tv_sec++;
			abs.tv_nsec -= 1000000000L;
		}
		r = pthread_mutex_timedlock(m, &abs);

		if (r != ETIMEDOUT)
			return held_or_error(r);
		if (lock_interrupted(l))
			return -EINTR;
		if (l->check && (r = l->check(l->ctx)) < 0)
			return r;
	}
}

uint64_t mmapq_spin_while_equal(const uint64_t *word, uint64_t old, uint64_t spin_ns,
                                uint64_t deadline_ns)
{
	uint64_t end = monotonic_ns() + spin_ns, v;

	if (end > deadline_ns)
		end = deadline_ns;
	for (unsigned i = 1;; i++) {
		/* acquire: pairs with the peer's store-release of its position
		 * (mmapq_format.h, struct mmapq_side), so what it published or
		 * released before that store is visible once we see the value */
		v = __atomic_load_n(word, __ATOMIC_ACQUIRE);
		if (v != old)
			return v;
		cpu_relax();
		if (i % 64 == 0 && monotonic_ns() >= end)
			return v;
	}
}

/* Not FUTEX_PRIVATE_FLAG: the word is shared between processes. */
static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *rel)
{
	return syscall(SYS_futex, word, op, val, rel, NULL, 0);
}

void mmapq_cond_reset(struct mmapq_cond *c)
{
	__atomic_store_n(&c->waiting, 0, __ATOMIC_RELAXED);
}

int mmapq_cond_wait(struct mmapq_cond *c, const struct mmapq_lock *l, uint64_t deadline_ns)
{
	pthread_mutex_t *m = l->mutex;
	uint64_t now = monotonic_ns(), slice;
	struct timespec rel;
	uint32_t seen;
	int err = 0, r;

	if (now >= deadline_ns || lock_interrupted(l)) {
		pthread_mutex_unlock(m);
		return now >= deadline_ns ? -ETIMEDOUT : -EINTR;
	}
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

	/* Leaving without the mutex: no need to take it (its holder may be
	 * stopped) just to clear waiting; a stale waiting = 1 costs the peer
	 * one spare FUTEX_WAKE. */
	if (err == EINTR || lock_interrupted(l))
		return -EINTR;
	if (err == ETIMEDOUT && monotonic_ns() >= deadline_ns)
		return -ETIMEDOUT;
	r = mmapq_mutex_lock(l);
	if (r < 0 && r != -EOWNERDEAD)
		return r;
	/* Back under the mutex: the caller re-registers if it waits again. */
	__atomic_store_n(&c->waiting, 0, __ATOMIC_RELAXED);
	return r;
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
