/* SPDX-License-Identifier: MIT */
/*
 * consumers.c -- the consumer table (fan-out): names,
 * registering a consumer at its first attach, removing one (`mmapqctl
 * consumer remove`), restoring a table into a new file (`mmapqctl
 * recreate`), and listing it.  Every change is made under the mutex, in
 * an order a crash can stop at any point (mutex.c, "Crash analysis").
 */
#include "queue.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "fault.h"

/* A name a consumer table entry may hold: 1 to MMAPQ_CONSUMER_NAME_MAX
 * characters of MMAPQ_CONSUMER_NAME_CHARS.  Older versions registered
 * names starting with '-' too, so a file may hold one: it stays valid,
 * and removable, though no new consumer may take such a name. */
bool name_in_table_valid(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	return len >= 1 && len <= MMAPQ_CONSUMER_NAME_MAX &&
	       strspn(name, MMAPQ_CONSUMER_NAME_CHARS) == len;
}

/* A name a consumer may take: as above, and not starting with '-', which
 * every command line would read as an option. */
bool mmapq_consumer_name_valid(const char *name)
{
	return name_in_table_valid(name) && name[0] != '-';
}

/* Mutex held: our entry by name (q->index), registering it if
 * it is not there (unless q->no_register): -ENOENT, -ENOSPC (table full). */
int find_or_register_locked(struct mmapq *q, struct mmapq_error *err)
{
	uint32_t free_idx = UINT32_MAX;

	for (uint32_t i = 0; i < q->max_consumers; i++) {
		struct mmapq_consumer *c = &q->h->consumers[i];
		if (!registered(c)) {
			if (free_idx == UINT32_MAX)
				free_idx = i;
			continue;
		}
		if (!strncmp(c->name, q->name, sizeof(c->name))) {
			q->index = i;
			return 0;
		}
	}
	if (q->no_register) {
		set_err(err, "%s: no consumer named '%s' is registered", q->path, q->name);
		return -ENOENT;
	}
	if (free_idx == UINT32_MAX) {
		set_err(err, "%s: cannot register consumer '%s': all %" PRIu32 " entries of the consumer"
		        " table (max_consumers) are taken; remove one (`mmapqctl consumer remove NAME`)"
		        " or recreate the queue with a larger max_consumers", q->path, q->name,
		        q->max_consumers);
		return -ENOSPC;
	}
	{
		struct mmapq_consumer *c = &q->h->consumers[free_idx];
		struct pos pos = q->start == MMAPQ_START_NEWEST ?
		                 (struct pos){load_tail(q), load_tail_byte(q)} : floor_locked(q);

		/* A crash before the state store leaves a free entry. */
		memset(c, 0, offsetof(struct mmapq_consumer, not_empty));
		memset(&c->recoveries, 0, sizeof(*c) - offsetof(struct mmapq_consumer, recoveries));
		memset(&q->h->outputs[free_idx], 0, sizeof(q->h->outputs[free_idx]));
		memcpy(c->name, q->name, strlen(q->name));
		__atomic_store_n(&c->position, pos.seq, __ATOMIC_RELAXED);
		__atomic_store_n(&c->position_byte, pos.byte, __ATOMIC_RELAXED);
		__atomic_store_n(&c->synced, pos.seq, __ATOMIC_RELAXED);
		__atomic_store_n(&c->synced_byte, pos.byte, __ATOMIC_RELAXED);
		__atomic_store_n(&c->registered_usec, realtime_usec(), __ATOMIC_RELAXED);
		mmapq_fault("register.filled");
		/* release: an observer that sees REGISTERED sees the name and
		 * position (under the mutex everyone sees them anyway) */
		__atomic_store_n(&c->state, MMAPQ_CONSUMER_REGISTERED, __ATOMIC_RELEASE);
		/* newest, or the first consumer: floor may move up */
		(void)floor_update_locked(q);
		q->index = free_idx;
	}
	return 0;
}

int mmapq_consumer_remove(const struct mmapq_params *p, struct mmapq_error *err)
{
	struct mmapq_params rp;
	struct mmapq *q = NULL;
	uint64_t pos, tail, tail_byte;
	int r;

	if (err)
		err->msg[0] = '\0';
	/* any name a table may hold (open_handle checks it), so that one an
	 * older version registered can be removed */
	if (!p || !p->consumer || !*p->consumer)
		return name_error(err, p && p->path ? p->path : "", "", true);
	/* our own handle in that consumer's role (its byte held: it is not
	 * attached, and cannot attach until we are done), never registering */
	rp = *p;
	rp.role = MMAPQ_ROLE_CONSUMER;
	rp.size = 0;
	rp.max_record = rp.format = rp.max_consumers = 0;
	rp.migrate = false;
	rp.start = MMAPQ_START_OLDEST;
	r = open_handle(&rp, true, &q, err);
	if (r < 0)
		return r;
	mmapq_fault("remove.attached"); /* the entry's byte held, the mutex not */
	r = lock(q);
	if (r < 0) {
		set_err(err, "%s: cannot lock the queue mutex: %s", q->path, mmapq_strerror(r));
		mmapq_close(q);
		return r;
	}
	pos = __atomic_load_n(&q->me->position, __ATOMIC_RELAXED);
	tail = load_tail(q);
	tail_byte = load_tail_byte(q);
	/* release, as a registration: state first (a crash after it leaves
	 * floor too low, which the repair raises), then floor */
	__atomic_store_n(&q->me->state, MMAPQ_CONSUMER_FREE, __ATOMIC_RELEASE);
	mmapq_fault("remove.freed");
	mmapq_cond_reset(&q->me->not_empty);
	memset(q->me, 0, offsetof(struct mmapq_consumer, not_empty));
	if (!floor_update_locked(q)) {
		bool any = false;
		for (uint32_t i = 0; i < q->max_consumers; i++)
			any |= registered(&q->h->consumers[i]);
		/* the last one: nobody wants the records kept any more */
		if (!any && floor_locked(q).seq != tail)
			store_floor_locked(q, (struct pos){tail, tail_byte});
	}
	signal_producers_locked(q, true);
	unlock(q);
	q->me = NULL; /* not ours any more: close touches nothing */
	r = q->sync != MMAPQ_SYNC_NEVER ? sync_header(q) : 0;
	mmapq_close(q);
	return r < 0 ? r : (int)(tail - pos);
}

/*
 * The consumers cs[0..n) into q's table, as they were in another queue
 * file (`mmapqctl recreate`): all or nothing, each checked before any is
 * written, then registered as a registration is (the entry filled, then
 * state stored with release), in the order given, into the lowest free
 * entries.  The producer role is ours, so tail stands still: the cursors
 * are checked against it and floor, each found in the ring (its byte), and
 * floor then rises to the lowest.
 */
int mmapq_consumers_restore(struct mmapq *q, const struct mmapq_consumer_status *cs, uint32_t n)
{
	uint32_t idx[MMAPQ_CONSUMERS_MAX], nfree = 0;
	uint64_t byte[MMAPQ_CONSUMERS_MAX];
	struct pos floor, tail;
	int r;

	if (q->put_refused)
		return q->put_refused;
	if (n && !cs)
		return -EINVAL;
	if (n > MMAPQ_CONSUMERS_MAX)
		return -ENOSPC;
	for (uint32_t i = 0; i < n; i++) {
		if (!memchr(cs[i].name, '\0', sizeof(cs[i].name)) || !name_in_table_valid(cs[i].name) ||
		    cs[i].pid < 0)
			return -EINVAL;
		for (uint32_t k = 0; k < i; k++)
			if (!strcmp(cs[k].name, cs[i].name))
				return -EEXIST;
	}
	r = lock(q);
	if (r < 0)
		return r;
	floor = floor_locked(q);
	tail = (struct pos){load_tail(q), load_tail_byte(q)};
	for (uint32_t i = 0; i < q->max_consumers; i++) {
		const struct mmapq_consumer *c = &q->h->consumers[i];

		if (!registered(c)) {
			if (nfree < n)
				idx[nfree++] = i;
			continue;
		}
		for (uint32_t k = 0; k < n; k++)
			if (!strncmp(c->name, cs[k].name, sizeof(c->name)))
				r = -EEXIST;
	}
	for (uint32_t i = 0; r == 0 && i < n; i++)
		if (cs[i].position < floor.seq || cs[i].position > tail.seq)
			r = -ERANGE;
	if (r == 0 && nfree < n)
		r = -ENOSPC;
	for (uint32_t i = 0; r == 0 && i < n; i++)
		r = find_record(q, floor, cs[i].position, tail.byte, &byte[i]);
	for (uint32_t i = 0; r == 0 && i < n; i++) {
		struct mmapq_consumer *c = &q->h->consumers[idx[i]];

		memset(c, 0, offsetof(struct mmapq_consumer, not_empty));
		memset(&c->recoveries, 0, sizeof(*c) - offsetof(struct mmapq_consumer, recoveries));
		memset(&q->h->outputs[idx[i]], 0, sizeof(q->h->outputs[idx[i]]));
		memcpy(c->name, cs[i].name, strlen(cs[i].name));
		__atomic_store_n(&c->position, cs[i].position, __ATOMIC_RELAXED);
		__atomic_store_n(&c->position_byte, byte[i], __ATOMIC_RELAXED);
		__atomic_store_n(&c->synced, cs[i].position, __ATOMIC_RELAXED);
		__atomic_store_n(&c->synced_byte, byte[i], __ATOMIC_RELAXED);
		__atomic_store_n(&c->pid, cs[i].pid, __ATOMIC_RELAXED);
		__atomic_store_n(&c->start_usec, cs[i].start_usec, __ATOMIC_RELAXED);
		__atomic_store_n(&c->attach_position, cs[i].attach_position, __ATOMIC_RELAXED);
		__atomic_store_n(&c->registered_usec, cs[i].registered_usec, __ATOMIC_RELAXED);
		__atomic_store_n(&c->recoveries, cs[i].recoveries, __ATOMIC_RELAXED);
		__atomic_store_n(&c->attaches, cs[i].attaches, __ATOMIC_RELAXED);
		__atomic_store_n(&c->state, MMAPQ_CONSUMER_REGISTERED, __ATOMIC_RELEASE);
	}
	if (r == 0) {
		(void)floor_update_locked(q);
		r = check_floor(q);
	}
	unlock(q);
	if (r == 0 && n && q->sync != MMAPQ_SYNC_NEVER)
		r = sync_header(q);
	return r;
}

/* The entry of a registered consumer at index, for an observer's read of
 * what it counts: 0, -EPROTO (versions 1 to 3 count none of it), -ENOENT. */
static int registered_entry(const struct mmapq *q, uint32_t index, const struct mmapq_consumer **c)
{
	if (q->legacy)
		return -EPROTO;
	if (index >= q->max_consumers)
		return -ENOENT;
	*c = &q->h->consumers[index];
	/* acquire: pairs with the store-release of a registration's state,
	 * which comes after the entry's counters were zeroed */
	return __atomic_load_n(&(*c)->state, __ATOMIC_ACQUIRE) == MMAPQ_CONSUMER_REGISTERED ? 0 : -ENOENT;
}

int mmapq_consumer_consumed(struct mmapq *q, uint32_t index, uint64_t *consumed)
{
	const struct mmapq_consumer *c;
	int r = registered_entry(q, index, &c);

	if (r == 0)
		*consumed = __atomic_load_n(&c->consumed, __ATOMIC_RELAXED);
	return r;
}

int mmapq_output_report(struct mmapq *q, const struct mmapq_output_health *h)
{
	struct mmapq_consumer *c = q->me;
	struct mmapq_output *o;
	uint32_t in_flight;

	if (q->legacy)
		return -EROFS;
	if (q->role != MMAPQ_ROLE_CONSUMER || !c)
		return -EPERM;
	o = &q->h->outputs[q->index];
	if (!h) {
		__atomic_store_n(&o->state, 0, __ATOMIC_RELAXED);
		return 0;
	}
	count(&o->acked, h->acknowledged);
	/* the file keeps 32 bits of them: a reconnection a second lasts 136 years */
	__atomic_fetch_add(&o->reconnects, (uint32_t)h->reconnects, __ATOMIC_RELAXED);
	if (h->last_ack_usec)
		__atomic_store_n(&o->last_ack_usec, h->last_ack_usec, __ATOMIC_RELAXED);
	/* in flight in the state word's upper bits, at most what they hold
	 * (the forwarder keeps far fewer in flight) */
	in_flight = h->in_flight < MMAPQ_OUTPUT_IN_FLIGHT_MAX ? h->in_flight : MMAPQ_OUTPUT_IN_FLIGHT_MAX;
	__atomic_store_n(&o->state, in_flight << MMAPQ_OUTPUT_IN_FLIGHT_SHIFT | MMAPQ_OUTPUT_REPORTED |
	                            (h->connected ? MMAPQ_OUTPUT_CONNECTED : 0), __ATOMIC_RELAXED);
	return 0;
}

int mmapq_consumer_output(struct mmapq *q, uint32_t index, struct mmapq_output_health *h)
{
	const struct mmapq_consumer *c;
	const struct mmapq_output *o;
	uint32_t state;
	int r = registered_entry(q, index, &c);

	if (r < 0)
		return r;
	o = &q->h->outputs[index];
	state = __atomic_load_n(&o->state, __ATOMIC_RELAXED);
	if (!(state & MMAPQ_OUTPUT_REPORTED))
		return -ENODATA;
	*h = (struct mmapq_output_health){
		.acknowledged = __atomic_load_n(&o->acked, __ATOMIC_RELAXED),
		.reconnects = __atomic_load_n(&o->reconnects, __ATOMIC_RELAXED),
		.last_ack_usec = __atomic_load_n(&o->last_ack_usec, __ATOMIC_RELAXED),
		.in_flight = state >> MMAPQ_OUTPUT_IN_FLIGHT_SHIFT,
		.connected = state & MMAPQ_OUTPUT_CONNECTED,
	};
	return 0;
}

/* Entry i as an observer reads it (no locks). */
void consumer_status(const struct mmapq *q, uint32_t i, uint64_t tail, uint64_t tail_byte,
                     struct mmapq_consumer_status *o)
{
	const struct mmapq_consumer *c = &q->h->consumers[i];
	uint64_t byte;

	memset(o, 0, sizeof(*o));
	memcpy(o->name, c->name, sizeof(o->name) - 1);
	o->index = i;
	/* acquire: pairs with the consumer's store-release of its cursor */
	o->position = __atomic_load_n(&c->position, __ATOMIC_ACQUIRE);
	byte = __atomic_load_n(&c->position_byte, __ATOMIC_RELAXED);
	o->lag = tail > o->position ? tail - o->position : 0;
	o->lag_bytes = tail_byte > byte ? tail_byte - byte : 0;
	LOAD_CONSUMER_COUNTERS(o, c);
	/* held by another, or by us: our own entry (a remove's is not) */
	o->attached = held_by_other(q, o->pid, MMAPQ_LOCK_CONSUMER + (off_t)i) ||
	              (q->me == c && !q->no_register);
}

int mmapq_consumers(struct mmapq *q, struct mmapq_consumer_status *out, uint32_t n)
{
	uint64_t tail, tail_byte;
	uint32_t k = 0;
	int r;

	if (q->legacy)
		return legacy_consumers(q, out, n);
	r = observe_table(q, NULL);
	if (r < 0)
		return r;
	tail = load_tail(q);
	tail_byte = load_tail_byte(q);
	for (uint32_t i = 0; i < q->max_consumers; i++) {
		const struct mmapq_consumer *c = &q->h->consumers[i];
		if (!registered(c))
			continue;
		if (k < n)
			consumer_status(q, i, tail, tail_byte, &out[k]);
		k++;
	}
	return (int)k;
}

int mmapq_set_policy(struct mmapq *q, const struct mmapq_policy *p)
{
	int r;

	if (q->role != MMAPQ_ROLE_CONSUMER || !q->me || q->no_register || q->legacy)
		return -EPERM;
	if (!p || (p->on_full != MMAPQ_POLICY_BLOCK && p->on_full != MMAPQ_POLICY_SKIP))
		return -EINVAL;
	r = lock(q);
	if (r < 0)
		return r;
	__atomic_store_n(&q->me->policy, p->on_full == MMAPQ_POLICY_SKIP ? MMAPQ_ENTRY_SKIP : 0,
	                 __ATOMIC_RELAXED);
	__atomic_store_n(&q->me->inactive_timeout, p->inactive_timeout_s, __ATOMIC_RELAXED);
	unlock(q);
	return sync_each(q) ? sync_header(q) : 0;
}

int mmapq_policy(struct mmapq *q, int32_t index, struct mmapq_policy *out)
{
	const struct mmapq_consumer *c;

	if (q->legacy || !out)
		return q->legacy ? -ENOENT : -EINVAL;
	if (index < 0)
		c = q->me && !q->no_register ? q->me : NULL;
	else
		c = (uint32_t)index < q->max_consumers ? &q->h->consumers[index] : NULL;
	if (!c || !registered(c))
		return -ENOENT;
	out->on_full = (__atomic_load_n(&c->policy, __ATOMIC_RELAXED) & MMAPQ_ENTRY_SKIP) ?
	               MMAPQ_POLICY_SKIP : MMAPQ_POLICY_BLOCK;
	out->inactive_timeout_s = __atomic_load_n(&c->inactive_timeout, __ATOMIC_RELAXED);
	out->skipped = __atomic_load_n(&c->skipped, __ATOMIC_RELAXED) & ~MMAPQ_SKIP_PENDING;
	out->skipped_since_attach = c == q->me ? q->skipped_before :
	                            out->skipped - __atomic_load_n(&c->skipped_seen, __ATOMIC_RELAXED);
	return 0;
}
