/* SPDX-License-Identifier: MIT */
/*
 * handle.c -- a queue handle: open (any role) and close, what any role may
 * ask about the queue (status, its path, whether the file is still the
 * one at the path), the geometry's arithmetic, errors' names, the clock,
 * and the repair of a damaged file.  The layout and the synchronisation design
 * are in mmapq_format.h; the API contract in mmapq.h; what the files of
 * the library share in queue.h.
 */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"

/* Looks at the lock word (each followed by a pause, and by a trylock when
 * the word is free) before a blocking lock of the mutex: a few microseconds
 * of pauses, about the longest critical section (one that makes a
 * FUTEX_WAKE system call).  See mmapq_mutex_lock() in shmcond.c. */
#define MMAPQ_LOCK_SPINS 200u

void set_err(struct mmapq_error *err, const char *fmt, ...)
{
	va_list ap;
	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

const char *mmapq_strerror(int code)
{
	switch (-code) {
	case EBADMSG:
		return "not a valid mmapq queue file";
	case EPROTO:
		return "queue file does not match the configuration";
	case EBUSY:
		return "role already held by another process";
	case ETIMEDOUT:
		return "deadline reached";
	case ENOTRECOVERABLE:
		return "queue state cannot be recovered";
	case ESTALE:
		return "the queue file was deleted or replaced while in use";
	case 0:
		return "success";
	default: {
		const char *s = strerrordesc_np(-code);
		return s ? s : "unknown error";
	}
	}
}

const char *mmapq_format_name(uint32_t format)
{
	switch (format) {
	case MMAPQ_FORMAT_INT:
		return "int";
	case MMAPQ_FORMAT_LINE:
		return "line";
	case MMAPQ_FORMAT_BINARY:
		return "binary";
	default:
		return "unknown";
	}
}

uint64_t mmapq_frame_size(uint32_t len)
{
	return mmapq_frame_bytes(len);
}

uint64_t mmapq_file_size(uint64_t size)
{
	if (!is_pow2(size) || size < MMAPQ_SIZE_MIN || size > MMAPQ_SIZE_MAX)
		return 0;
	return (uint64_t)MMAPQ_HEADER_SIZE + size;
}

uint32_t mmapq_max_record_limit(uint64_t size)
{
	uint64_t most;

	if (!mmapq_file_size(size))
		return 0;
	/* the largest len with mmapq_frame_bytes(len) <= size / 4 */
	most = size / 4 - sizeof(struct mmapq_frame);
	return most > MMAPQ_MAX_RECORD_MAX ? MMAPQ_MAX_RECORD_MAX : (uint32_t)most;
}

const char *mmapq_path(const struct mmapq *q)
{
	return q->path;
}

int mmapq_check(const struct mmapq *q)
{
	struct stat a, b;

	if (header_check((void *)q) < 0)
		return -EBADMSG;
	if (fstat(q->fd, &a) < 0)
		return neg_errno();
	if (stat(q->path, &b) < 0)
		return errno == ENOENT ? -ESTALE : -errno;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino ? 0 : -ESTALE;
}

uint64_t mmapq_now_ns(void)
{
	return monotonic_ns();
}

/* No geometry at all: join an existing file, whatever its geometry; there is
 * nothing to create one with. */
bool params_join(const struct mmapq_params *p)
{
	return p->size == 0 && p->max_record == 0 && p->format == 0;
}

/* -EINVAL for a name that is not a consumer's: one a consumer may take
 * (mmapq_consumer_name_valid), or with in_table one a table may hold. */
int name_error(struct mmapq_error *err, const char *path, const char *name, bool in_table)
{
	set_err(err, "%s: '%s' is not a consumer name (1 to %d letters, digits and '_.@-'%s)", path,
	        name, MMAPQ_CONSUMER_NAME_MAX, in_table ? "" : ", not starting with '-'");
	return -EINVAL;
}

/* no_register: the consumer's name need only be one a table may hold
 * (mmapq_consumer_remove of a name an older version registered). */
static int params_check(const struct mmapq_params *p, bool no_register, struct mmapq_error *err)
{
	if (!p || !p->path || !*p->path) {
		set_err(err, "no queue path given");
		return -EINVAL;
	}
	if (p->role != MMAPQ_ROLE_PRODUCER && p->role != MMAPQ_ROLE_CONSUMER &&
	    p->role != MMAPQ_ROLE_OBSERVER) {
		set_err(err, "%s: unknown role %d", p->path, (int)p->role);
		return -EINVAL;
	}
	if (p->max_consumers &&
	    (p->max_consumers < MMAPQ_CONSUMERS_MIN || p->max_consumers > MMAPQ_CONSUMERS_MAX)) {
		set_err(err, "%s: max_consumers %" PRIu32 " is outside %" PRIu32 "..%" PRIu32, p->path,
		        p->max_consumers, MMAPQ_CONSUMERS_MIN, MMAPQ_CONSUMERS_MAX);
		return -EINVAL;
	}
	if (p->max_producers &&
	    (p->max_producers < MMAPQ_PRODUCERS_MIN || p->max_producers > MMAPQ_PRODUCERS_MAX)) {
		set_err(err, "%s: max_producers %" PRIu32 " is outside %" PRIu32 "..%" PRIu32, p->path,
		        p->max_producers, MMAPQ_PRODUCERS_MIN, MMAPQ_PRODUCERS_MAX);
		return -EINVAL;
	}
	if (p->role == MMAPQ_ROLE_PRODUCER && p->producer && *p->producer &&
	    !mmapq_consumer_name_valid(p->producer)) {
		set_err(err, "%s: '%s' is not a producer name (1 to %d letters, digits and '_.@-',"
		        " not starting with '-')", p->path, p->producer, MMAPQ_CONSUMER_NAME_MAX);
		return -EINVAL;
	}
	if (p->role == MMAPQ_ROLE_CONSUMER && p->consumer && *p->consumer &&
	    !(no_register ? name_in_table_valid : mmapq_consumer_name_valid)(p->consumer))
		return name_error(err, p->path, p->consumer, no_register);
	if (p->start != MMAPQ_START_OLDEST && p->start != MMAPQ_START_NEWEST) {
		set_err(err, "%s: unknown start %d", p->path, (int)p->start);
		return -EINVAL;
	}
	if (p->role == MMAPQ_ROLE_OBSERVER || params_join(p))
		return 0;
	if (!mmapq_file_size(p->size)) {
		set_err(err, "%s: size %" PRIu64 " is not a power of two in %" PRIu64 "..%" PRIu64,
		        p->path, p->size, MMAPQ_SIZE_MIN, MMAPQ_SIZE_MAX);
		return -EINVAL;
	}
	if (p->max_record < MMAPQ_MAX_RECORD_MIN || p->max_record > mmapq_max_record_limit(p->size)) {
		set_err(err, "%s: max_record %" PRIu32 " is outside %" PRIu32 "..%" PRIu32
		        " (what a ring of %" PRIu64 " bytes allows)", p->path, p->max_record,
		        MMAPQ_MAX_RECORD_MIN, mmapq_max_record_limit(p->size), p->size);
		return -EINVAL;
	}
	if (p->format != MMAPQ_FORMAT_INT && p->format != MMAPQ_FORMAT_LINE &&
	    p->format != MMAPQ_FORMAT_BINARY) {
		set_err(err, "%s: unknown record format %" PRIu32, p->path, p->format);
		return -EINVAL;
	}
	return 0;
}

/* A handle opened as p says; no_register: mmapq_consumer_remove's; repair:
 * mmapq_repair's. */
static int open_as(const struct mmapq_params *p, bool no_register, bool repair,
                   struct mmapq **ret, struct mmapq_error *err)
{
	struct mmapq *q;
	int r;

	if (err)
		err->msg[0] = '\0';
	r = params_check(p, no_register, err);
	if (r < 0)
		return r;
	q = calloc(1, sizeof(*q));
	if (!q || !(q->path = strdup(p->path)) ||
	    asprintf(&q->lock_path, "%s%s", p->path, MMAPQ_LOCK_SUFFIX) < 0) {
		if (q)
			free(q->path);
		free(q);
		set_err(err, "%s: out of memory", p->path);
		return -ENOMEM;
	}
	q->fd = q->lock_fd = -1;
	q->role = p->role;
	q->repair = repair;
	q->prev.seq = UINT64_MAX;
	q->start = p->start;
	q->no_register = no_register;
	if (p->role == MMAPQ_ROLE_CONSUMER && !p->migrate)
		snprintf(q->name, sizeof(q->name), "%s",
		         p->consumer && *p->consumer ? p->consumer : MMAPQ_CONSUMER_DEFAULT);
	else if (p->role == MMAPQ_ROLE_PRODUCER && !p->migrate && !repair)
		snprintf(q->name, sizeof(q->name), "%s",
		         p->producer && *p->producer ? p->producer : MMAPQ_PRODUCER_DEFAULT);
	q->sync = p->sync;
	q->interrupted = p->interrupted;
	q->interrupted_ctx = p->interrupted_ctx;
	/* Spinning (for the mutex, or spin_us for the peer) only helps if the
	 * other process runs meanwhile: not with a single CPU. */
	q->lock_spins = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? MMAPQ_LOCK_SPINS : 0;
	mmapq_set_spin(q, p->spin_us);
	r = open_file(q, p, err);
	if (r == 0)
		r = p->role == MMAPQ_ROLE_OBSERVER ? observe(q, p, err) : attach(q, p, err);
	if (r < 0) {
		mmapq_close(q);
		return r;
	}
	q->put_refused = q->role != MMAPQ_ROLE_PRODUCER || repair ? -EPERM :
	                 q->legacy ? -EROFS : 0; /* opened to migrate it */
	*ret = q;
	return 0;
}

int open_handle(const struct mmapq_params *p, bool no_register, struct mmapq **ret,
                struct mmapq_error *err)
{
	return open_as(p, no_register, false, ret, err);
}

int mmapq_open(const struct mmapq_params *p, struct mmapq **ret, struct mmapq_error *err)
{
	return open_as(p, false, false, ret, err);
}

int64_t mmapq_repair(const struct mmapq_params *p, struct mmapq_salvage *report,
                     struct mmapq_error *err)
{
	struct mmapq_params rp;
	struct mmapq_salvage s = {0};
	struct mmapq *q = NULL;
	int64_t r;

	if (!p) {
		set_err(err, "no queue path given");
		return -EINVAL;
	}
	rp = (struct mmapq_params){.path = p->path, .role = MMAPQ_ROLE_PRODUCER, .sync = p->sync};
	r = open_as(&rp, false, true, &q, err);
	if (r < 0)
		return r;
	if (q->legacy) {
		set_err(err, "%s: format version %" PRIu32 " (fixed-size slots): `mmapqctl recreate`"
		        " carries it over into a version-%" PRIu32 " file", q->path, q->version,
		        MMAPQ_VERSION);
		mmapq_close(q);
		return -EPROTO;
	}
	r = (int64_t)q->salvaged;
	if (r > 0) {
		const struct mmapq_state *st = &q->h->state;
		s = (struct mmapq_salvage){st->salvages, st->salvage_usec, st->below_from, st->below_to,
		                           st->above_from, st->above_to, st->dropped_bytes};
	} else {
		s.count = q->h->state.salvages;
	}
	mmapq_close(q);
	if (report)
		*report = s;
	return r;
}

void mmapq_close(struct mmapq *q)
{
	if (!q)
		return;
	release_producer(q); /* what we put published, our reservation let go */
	blocked_end(q); /* a producer that goes waits for nothing */
	if (q->attached && q->sync == MMAPQ_SYNC_INTERVAL)
		(void)mmapq_sync(q); /* a consumer's cursor lets floor go on */
	detach(q);
	if (q->h)
		munmap(q->h, q->map_size);
	if (q->lock_fd >= 0)
		close(q->lock_fd); /* drops the OFD locks */
	if (q->fd >= 0)
		close(q->fd);
	free(q->lock_path);
	free(q->path);
	free(q);
}

void mmapq_set_sync(struct mmapq *q, enum mmapq_sync sync)
{
	q->sync = sync;
}

void mmapq_set_spin(struct mmapq *q, uint32_t spin_us)
{
	q->spin_us = q->lock_spins ? spin_us : 0; /* lock_spins is 0 with one CPU */
}

/* The producer's side as anyone reads it, without locks: the entry of
 * the producer named MMAPQ_PRODUCER_DEFAULT if it is registered, else the
 * first registered one (all zero if none is). */
static void producer_status(const struct mmapq *q, struct mmapq_side_status *o)
{
	int64_t pick = -1;

	for (uint32_t i = 0; i < q->max_producers; i++) {
		bool dflt = !strncmp(q->h->producers[i].name, MMAPQ_PRODUCER_DEFAULT,
		                     sizeof(q->h->producers[i].name));

		if (!producer_registered(q, i))
			continue;
		if (pick < 0 || dflt)
			pick = i;
		if (dflt)
			break;
	}
	memset(o, 0, sizeof(*o));
	if (pick < 0)
		return;
	LOAD_SIDE_COUNTERS(o, &q->h->producers[pick]);
	/* held by another, or by us */
	o->attached = producer_attached(q, (uint32_t)pick) || q->prod == &q->h->producers[pick];
}

/* The registered consumer that holds floor: the lowest synced cursor (what
 * floor is computed from), of those the lowest position; -1 if none is
 * registered.  Read without locks, each entry on its own: a consumer that
 * moves meanwhile may make another one the answer, as it would a moment
 * later. */
static int32_t floor_holder(const struct mmapq *q)
{
	uint64_t best_synced = UINT64_MAX, best_pos = UINT64_MAX;
	int32_t best = -1;

	for (uint32_t i = 0; i < q->max_consumers; i++) {
		const struct mmapq_consumer *c = &q->h->consumers[i];
		uint64_t synced, pos;

		if (!registered(c))
			continue;
		synced = __atomic_load_n(&c->synced, __ATOMIC_RELAXED);
		pos = __atomic_load_n(&c->position, __ATOMIC_RELAXED);
		if (synced < best_synced || (synced == best_synced && pos < best_pos)) {
			best_synced = synced;
			best_pos = pos;
			best = (int32_t)i;
		}
	}
	return best;
}

/* The producers' waits for room, as one: since the earliest wait of an
 * attached producer, the total of all of them. */
int mmapq_blocked(struct mmapq *q, uint64_t *since_usec, uint64_t *total_usec, int32_t *consumer)
{
	uint64_t since = 0, total = 0;
	int32_t holder = -1;

	for (uint32_t i = 0; !q->legacy && i < q->max_producers; i++) {
		/* versions 1 to 3: no producer ever writes them */
		const struct mmapq_producer *p = &q->h->producers[i];
		uint64_t s;

		if (!producer_registered(q, i))
			continue;
		s = __atomic_load_n(&p->blocked_usec, __ATOMIC_RELAXED);
		total += __atomic_load_n(&p->blocked_total_usec, __ATOMIC_RELAXED);
		/* a wait left behind by a producer that died waiting is none */
		if (s && q->prod != p && !producer_attached(q, i))
			s = 0;
		if (s && (!since || s < since))
			since = s;
	}
	if (!q->legacy)
		holder = floor_holder(q);
	if (since_usec)
		*since_usec = since;
	if (total_usec)
		*total_usec = total;
	if (consumer)
		*consumer = holder;
	return 0;
}

int mmapq_status(struct mmapq *q, struct mmapq_status *st)
{
	struct mmapq_status s = {0};
	struct pos floor, t;
	uint64_t tail_byte;
	int r;

	s.version = q->version;
	s.header_size = q->version == MMAPQ_VERSION ? MMAPQ_HEADER_SIZE : MMAPQ_HEADER_SIZE_V3;
	s.format = q->format;
	s.max_record = q->max_record;
	s.size = q->size;
	s.file_size = q->h->file_size;
	s.created_usec = q->h->created_usec;
	s.attached_by_pid = q->lock_fd < 0;
	s.salvaged = q->salvaged;
	if (q->legacy) {
		s.file_size = ((const struct mmapq_identity_v3 *)q->h)->file_size;
		s.created_usec = ((const struct mmapq_identity_v3 *)q->h)->created_usec;
		r = legacy_status(q, &s);
		if (r < 0)
			return r;
		*st = s;
		return 0;
	}
	r = snapshot_positions(q, &floor, &t);
	if (r < 0)
		return r;
	s.head = floor.seq;
	s.tail = t.seq;
	tail_byte = t.byte;
	if (s.tail < s.head || tail_byte < floor.byte)
		return -EBADMSG;
	s.used_bytes = tail_byte - floor.byte;
	producer_status(q, &s.producer);
	s.max_producers = q->max_producers;
	for (uint32_t i = 0; i < q->max_producers; i++)
		s.producers += producer_registered(q, i);
	s.max_consumers = q->max_consumers;
	{
		/* the consumer "default" if registered, else the first one */
		struct mmapq_consumer_status c, pick;
		bool have = false;

		memset(&pick, 0, sizeof(pick));
		for (uint32_t i = 0; i < q->max_consumers; i++) {
			if (!registered(&q->h->consumers[i]))
				continue;
			s.consumers++;
			consumer_status(q, i, s.tail, tail_byte, &c);
			if (!have || (strcmp(pick.name, MMAPQ_CONSUMER_DEFAULT) &&
			              !strcmp(c.name, MMAPQ_CONSUMER_DEFAULT)))
				pick = c;
			have = true;
		}
		if (have)
			s.consumer = (struct mmapq_side_status){
				.pid = pick.pid, .attached = pick.attached, .start_usec = pick.start_usec,
				.recoveries = pick.recoveries, .attaches = pick.attaches,
			};
	}
	/* written once, at creation */
	memcpy(s.id, q->h->id, sizeof(s.id));
	s.clean = __atomic_load_n(&q->h->state.clean, __ATOMIC_RELAXED) == 1;
	{
		const struct mmapq_state *h = &q->h->state;
		s.salvage = (struct mmapq_salvage){h->salvages, h->salvage_usec, h->below_from,
		                                   h->below_to, h->above_from, h->above_to,
		                                   h->dropped_bytes};
	}
	*st = s;
	return 0;
}
