/* SPDX-License-Identifier: MIT */
/*
 * producers.c -- the producer table (fan-in): a producer registering its
 * name at its first attach (its entry, and the counters in it, kept across
 * its restarts), and who holds an entry, as those refused a role are told.
 * Entries are registered under the mutex, never freed.
 */
#include "queue.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <string.h>

#include "fault.h"

/* Mutex held: our entry by name (q->index), registered if it is not there:
 * -ENOSPC (err said) if the table has no free entry. */
int find_or_register_producer_locked(struct mmapq *q, struct mmapq_error *err)
{
	uint32_t free_idx = UINT32_MAX;
	struct mmapq_producer *e;

	for (uint32_t i = 0; i < q->max_producers; i++) {
		e = &q->h->producers[i];
		if (__atomic_load_n(&e->state, __ATOMIC_RELAXED) != MMAPQ_PRODUCER_REGISTERED) {
			if (free_idx == UINT32_MAX)
				free_idx = i;
			continue;
		}
		if (!strncmp(e->name, q->name, sizeof(e->name))) {
			q->index = i;
			return 0;
		}
	}
	if (free_idx == UINT32_MAX) {
		set_err(err, "%s: cannot register producer '%s': all %" PRIu32 " entries of the producer"
		        " table (max_producers) are taken by other names; recreate the queue with a"
		        " larger max_producers", q->path, q->name, q->max_producers);
		return -ENOSPC;
	}
	e = &q->h->producers[free_idx];
	/* a crash before the state store leaves a free entry */
	memset(e, 0, sizeof(*e));
	memcpy(e->name, q->name, strlen(q->name));
	__atomic_store_n(&e->registered_usec, realtime_usec(), __ATOMIC_RELAXED);
	mmapq_fault("register.producer");
	/* release: an observer that sees REGISTERED sees the name */
	__atomic_store_n(&e->state, MMAPQ_PRODUCER_REGISTERED, __ATOMIC_RELEASE);
	q->index = free_idx;
	return 0;
}

/* Whether producer entry i is registered (observers: acquire, pairing with
 * the registration's store-release of state). */
bool producer_registered(const struct mmapq *q, uint32_t i)
{
	return __atomic_load_n(&q->h->producers[i].state, __ATOMIC_ACQUIRE) ==
	       MMAPQ_PRODUCER_REGISTERED;
}

/* Whether another process holds producer entry i's role byte. */
bool producer_attached(const struct mmapq *q, uint32_t i)
{
	return held_by_other(q, __atomic_load_n(&q->h->producers[i].pid, __ATOMIC_RELAXED),
	                     MMAPQ_LOCK_PRODUCER + (off_t)i);
}

/* The pid of a producer attached by another process, to name it to one
 * refused the writer's byte: the holder names itself right after it takes
 * its entry's byte, so it is given 0.1 s for that.  0 if none is found. */
int32_t attached_producer_pid(const struct mmapq *q)
{
	uint64_t end = monotonic_ns() + 100000000u;

	do {
		for (uint32_t i = 0; i < q->max_producers; i++)
			if (producer_registered(q, i) && producer_attached(q, i))
				return __atomic_load_n(&q->h->producers[i].pid, __ATOMIC_RELAXED);
		sched_yield();
	} while (monotonic_ns() < end);
	return 0;
}

/* Entry i as an observer reads it (no locks): -EBADMSG if its state or
 * name is not one an entry may hold, 0 if it is free, 1 if registered. */
static int producer_status(const struct mmapq *q, uint32_t i, struct mmapq_producer_status *o)
{
	const struct mmapq_producer *e = &q->h->producers[i];
	/* acquire: pairs with the registration's store-release of state,
	 * after the name and the zeroed counters */
	uint32_t state = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);

	if (state == MMAPQ_PRODUCER_FREE)
		return 0;
	if (state != MMAPQ_PRODUCER_REGISTERED)
		return -EBADMSG;
	memset(o, 0, sizeof(*o));
	memcpy(o->name, e->name, sizeof(o->name) - 1);
	/* the rule validate.c holds a producer table to: no name an older
	 * version registered ('-' first) is one a producer ever took */
	if (!memchr(e->name, '\0', sizeof(e->name)) || !mmapq_consumer_name_valid(o->name))
		return -EBADMSG;
	o->index = i;
	LOAD_SIDE_COUNTERS(o, e);
	o->last_pid = o->pid;
	o->registered_usec = __atomic_load_n(&e->registered_usec, __ATOMIC_RELAXED);
	o->published = __atomic_load_n(&e->published, __ATOMIC_RELAXED);
	o->blocked_since_usec = __atomic_load_n(&e->blocked_usec, __ATOMIC_RELAXED);
	o->blocked_total_usec = __atomic_load_n(&e->blocked_total_usec, __ATOMIC_RELAXED);
	/* held by another, or by us */
	o->attached = producer_attached(q, i) || q->prod == e;
	if (!o->attached) {
		/* one that died waiting left its wait behind: it waits for nothing */
		o->pid = 0;
		o->blocked_since_usec = 0;
	}
	return 1;
}

int mmapq_producers(struct mmapq *q, struct mmapq_producer_status *out, uint32_t n)
{
	struct mmapq_producer_status all[MMAPQ_PRODUCERS_MAX];
	uint32_t k = 0;

	if (n && !out)
		return -EINVAL;
	if (q->legacy)
		return legacy_producers(q, out, n);
	for (uint32_t i = 0; i < q->max_producers && i < MMAPQ_PRODUCERS_MAX; i++) {
		int r = producer_status(q, i, &all[k]);

		if (r < 0)
			return r;
		k += (uint32_t)r;
	}
	if (out)
		memcpy(out, all, (k < n ? k : n) * sizeof(*all));
	return (int)k;
}

/* Whether ps[0..n) are entries a table may hold: 0, -EINVAL (a name no
 * producer may take, which includes one starting with '-': a producer
 * table holding one is refused as damaged; a negative pid), -EEXIST (a
 * name given twice). */
static int restore_valid(const struct mmapq_producer_status *ps, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (!memchr(ps[i].name, '\0', sizeof(ps[i].name)) ||
		    !mmapq_consumer_name_valid(ps[i].name) || ps[i].last_pid < 0)
			return -EINVAL;
		for (uint32_t k = 0; k < i; k++)
			if (!strcmp(ps[k].name, ps[i].name))
				return -EEXIST;
	}
	return 0;
}

/* Mutex held: entry e takes what ps carries (its owner, if any, is us). */
static void restore_counters_locked(struct mmapq_producer *e, const struct mmapq_producer_status *ps)
{
	__atomic_store_n(&e->pid, ps->last_pid, __ATOMIC_RELAXED);
	__atomic_store_n(&e->start_usec, ps->start_usec, __ATOMIC_RELAXED);
	__atomic_store_n(&e->published, ps->published, __ATOMIC_RELAXED);
	__atomic_store_n(&e->dropped, ps->dropped, __ATOMIC_RELAXED);
	__atomic_store_n(&e->bad_input, ps->bad_input, __ATOMIC_RELAXED);
	__atomic_store_n(&e->recoveries, ps->recoveries, __ATOMIC_RELAXED);
	__atomic_store_n(&e->attaches, ps->attaches, __ATOMIC_RELAXED);
	__atomic_store_n(&e->blocked_total_usec, ps->blocked_total_usec, __ATOMIC_RELAXED);
	__atomic_store_n(&e->registered_usec, ps->registered_usec, __ATOMIC_RELAXED);
}

int mmapq_producers_restore(struct mmapq *q, const struct mmapq_producer_status *ps, uint32_t n)
{
	uint32_t idx[MMAPQ_PRODUCERS_MAX], nfree = 0, own = UINT32_MAX;
	int r;

	if (q->put_refused)
		return q->put_refused;
	if (n && !ps)
		return -EINVAL;
	if (n > MMAPQ_PRODUCERS_MAX)
		return -ENOSPC;
	r = restore_valid(ps, n);
	if (r < 0)
		return r;
	r = lock(q);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < q->max_producers; i++) {
		const struct mmapq_producer *e = &q->h->producers[i];

		if (__atomic_load_n(&e->state, __ATOMIC_RELAXED) != MMAPQ_PRODUCER_REGISTERED) {
			if (nfree < n)
				idx[nfree++] = i;
			continue;
		}
		for (uint32_t k = 0; k < n; k++) {
			if (strncmp(e->name, ps[k].name, sizeof(e->name)))
				continue;
			/* our own entry takes what is carried under its name */
			if (e == q->prod)
				own = k;
			else
				r = -EEXIST;
		}
	}
	if (r == 0 && nfree < n - (own != UINT32_MAX))
		r = -ENOSPC;
	for (uint32_t i = 0, k = 0; r == 0 && i < n; i++) {
		struct mmapq_producer *e;

		if (i == own) {
			restore_counters_locked(q->prod, &ps[i]);
			continue;
		}
		e = &q->h->producers[idx[k++]];
		/* a crash before the state store leaves a free entry */
		memset(e, 0, sizeof(*e));
		memcpy(e->name, ps[i].name, strlen(ps[i].name));
		restore_counters_locked(e, &ps[i]);
		/* release: an observer that sees REGISTERED sees the name and
		 * the counters */
		__atomic_store_n(&e->state, MMAPQ_PRODUCER_REGISTERED, __ATOMIC_RELEASE);
	}
	unlock(q);
	if (r == 0 && n && q->sync != MMAPQ_SYNC_NEVER)
		r = sync_header(q);
	return r;
}
