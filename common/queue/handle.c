/* SPDX-License-Identifier: MIT */
/*
 * handle.c -- a queue handle: open (any role) and close, what any role may
 * ask about the queue (status, its path, whether the file is still the
 * one at the path), errors' names, the clock, and the symbol versions of
 * the calls whose structs grew.  The layout and the synchronisation design
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
	default:
		return "unknown";
	}
}

uint64_t mmapq_file_size(uint32_t format, uint32_t capacity, uint32_t record_size)
{
	if ((format != MMAPQ_FORMAT_INT && format != MMAPQ_FORMAT_LINE) || !is_pow2(capacity) ||
	    capacity < MMAPQ_CAPACITY_MIN || capacity > MMAPQ_CAPACITY_MAX ||
	    record_size < MMAPQ_RECORD_SIZE_MIN || record_size > MMAPQ_RECORD_SIZE_MAX)
		return 0;
	return (uint64_t)MMAPQ_HEADER_SIZE + (uint64_t)capacity * mmapq_slot_size(format, record_size);
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
	return p->capacity == 0 && p->record_size == 0 && p->format == 0;
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
	if (p->role == MMAPQ_ROLE_CONSUMER && p->consumer && *p->consumer &&
	    !(no_register ? name_in_table_valid : mmapq_consumer_name_valid)(p->consumer))
		return name_error(err, p->path, p->consumer, no_register);
	if (p->start != MMAPQ_START_OLDEST && p->start != MMAPQ_START_NEWEST) {
		set_err(err, "%s: unknown start %d", p->path, (int)p->start);
		return -EINVAL;
	}
	if (p->role == MMAPQ_ROLE_OBSERVER || params_join(p))
		return 0;
	if (!is_pow2(p->capacity) || p->capacity < MMAPQ_CAPACITY_MIN || p->capacity > MMAPQ_CAPACITY_MAX) {
		set_err(err, "%s: capacity %" PRIu32 " is not a power of two in %" PRIu32 "..%" PRIu32,
		        p->path, p->capacity, MMAPQ_CAPACITY_MIN, MMAPQ_CAPACITY_MAX);
		return -EINVAL;
	}
	if (p->record_size < MMAPQ_RECORD_SIZE_MIN || p->record_size > MMAPQ_RECORD_SIZE_MAX) {
		set_err(err, "%s: record size %" PRIu32 " is outside %" PRIu32 "..%" PRIu32, p->path,
		        p->record_size, MMAPQ_RECORD_SIZE_MIN, MMAPQ_RECORD_SIZE_MAX);
		return -EINVAL;
	}
	if (p->format != MMAPQ_FORMAT_INT && p->format != MMAPQ_FORMAT_LINE) {
		set_err(err, "%s: unknown record format %" PRIu32, p->path, p->format);
		return -EINVAL;
	}
	if ((uint64_t)MMAPQ_HEADER_SIZE + (uint64_t)p->capacity * mmapq_slot_size(p->format, p->record_size) >
	    MMAPQ_FILE_SIZE_MAX) {
		set_err(err, "%s: capacity %" PRIu32 " x record size %" PRIu32 " exceeds the %" PRIu64
		        "-byte file size limit", p->path, p->capacity, p->record_size, MMAPQ_FILE_SIZE_MAX);
		return -EINVAL;
	}
	return 0;
}

int open_handle(const struct mmapq_params *p, bool no_register, struct mmapq **ret,
                struct mmapq_error *err)
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
	q->start = p->start;
	q->no_register = no_register;
	if (p->role == MMAPQ_ROLE_CONSUMER && !p->migrate)
		snprintf(q->name, sizeof(q->name), "%s",
		         p->consumer && *p->consumer ? p->consumer : MMAPQ_CONSUMER_DEFAULT);
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
	/* the file's version is final now (a version-2 file was upgraded) */
	q->put_refused = q->role != MMAPQ_ROLE_PRODUCER ? -EPERM :
	                 q->version != MMAPQ_VERSION ? -EROFS : 0; /* opened to migrate it */
	*ret = q;
	return 0;
}

/*
 * Symbol versions (libmmapq.map).  Two structs of mmapq.h grew in 1.1 (named
 * consumers): struct mmapq_params (consumer, start, max_consumers) and
 * struct mmapq_status (max_consumers, consumers).  A program built against
 * 1.0's mmapq.h links mmapq_open@LIBMMAPQ_1 and mmapq_status@LIBMMAPQ_1,
 * which read and write only 1.0's part of its structs; a program built now
 * links the default versions, @@LIBMMAPQ_1.1.  Only the shared library has
 * versions; the static test library (mmapq_faults) has the new ones alone.
 */
#ifdef MMAPQ_SHARED_LIBRARY
#define OPEN_FN   mmapq_open_v1_1
#define STATUS_FN mmapq_status_v1_1
MMAPQ_API int mmapq_open_v1_1(const struct mmapq_params *p, struct mmapq **ret,
                              struct mmapq_error *err);
MMAPQ_API int mmapq_status_v1_1(struct mmapq *q, struct mmapq_status *st);
__asm__(".symver mmapq_open_v1_1, mmapq_open@@LIBMMAPQ_1.1");
__asm__(".symver mmapq_status_v1_1, mmapq_status@@LIBMMAPQ_1.1");
#else
#define OPEN_FN   mmapq_open
#define STATUS_FN mmapq_status
#endif
/* 1.0's structs ended where these fields begin */
#define PARAMS_V1_SIZE offsetof(struct mmapq_params, consumer)
#define STATUS_V1_SIZE offsetof(struct mmapq_status, max_consumers)

int OPEN_FN(const struct mmapq_params *p, struct mmapq **ret, struct mmapq_error *err)
{
	return open_handle(p, false, ret, err);
}

#ifdef MMAPQ_SHARED_LIBRARY
/* 1.0's mmapq_open: its caller's struct has no consumer fields, which are
 * the default consumer, starting at the oldest record, any table size. */
MMAPQ_API int mmapq_open_v1(const void *p, struct mmapq **ret, struct mmapq_error *err);
__asm__(".symver mmapq_open_v1, mmapq_open@LIBMMAPQ_1");
MMAPQ_API int mmapq_open_v1(const void *p, struct mmapq **ret, struct mmapq_error *err)
{
	struct mmapq_params now = {0};

	if (!p)
		return OPEN_FN(NULL, ret, err);
	memcpy(&now, p, PARAMS_V1_SIZE);
	return OPEN_FN(&now, ret, err);
}
#endif

void mmapq_close(struct mmapq *q)
{
	if (!q)
		return;
	if (q->role == MMAPQ_ROLE_PRODUCER && q->h && q->self && q->tail != q->published)
		(void)mmapq_publish(q);
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

/* A side of the header (the producer's; a version-1/2 file's one
 * consumer's) as anyone reads it, without locks; byte is its role's. */
void side_status(const struct mmapq *q, const struct mmapq_side *s, off_t byte,
                 struct mmapq_side_status *o)
{
	o->pid = __atomic_load_n(&s->pid, __ATOMIC_RELAXED);
	o->start_usec = __atomic_load_n(&s->start_usec, __ATOMIC_RELAXED);
	o->dropped = __atomic_load_n(&s->dropped, __ATOMIC_RELAXED);
	o->bad_input = __atomic_load_n(&s->bad_input, __ATOMIC_RELAXED);
	o->recoveries = __atomic_load_n(&s->recoveries, __ATOMIC_RELAXED);
	o->attaches = __atomic_load_n(&s->attaches, __ATOMIC_RELAXED);
	/* held by another, or by us: our role's byte (a consumer's here is a
	 * version-1/2 file's, taken to migrate it; only roles have any) */
	o->attached = held_by_other(q, o->pid, byte) ||
	              (q->role == MMAPQ_ROLE_PRODUCER && byte == MMAPQ_LOCK_PRODUCER) ||
	              (q->role == MMAPQ_ROLE_CONSUMER && byte == MMAPQ_LOCK_CONSUMER);
}

int STATUS_FN(struct mmapq *q, struct mmapq_status *st)
{
	struct mmapq_status s = {0};

	s.version = q->h->version;
	s.header_size = q->h->header_size;
	s.capacity = q->capacity;
	s.record_size = q->record_size;
	s.slot_size = q->slot_size;
	s.format = q->format;
	s.file_size = q->h->file_size;
	s.created_usec = q->h->created_usec;
	int r = snapshot_positions(q, &s.head, &s.tail);

	if (r < 0)
		return r;
	side_status(q, &q->h->producer, MMAPQ_LOCK_PRODUCER, &s.producer);
	s.max_consumers = q->max_consumers;
	if (q->legacy) {
		legacy_status(q, &s);
	} else {
		/* the consumer "default" if registered, else the first one */
		struct mmapq_consumer_status c, pick;
		bool have = false;

		memset(&pick, 0, sizeof(pick));
		for (uint32_t i = 0; i < q->max_consumers; i++) {
			if (!registered(&q->h->consumers[i]))
				continue;
			s.consumers++;
			consumer_status(q, i, s.tail, &c);
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
	s.attached_by_pid = q->lock_fd < 0;
	/* written once (under the mutex, which an observer does not take: it
	 * may see an id being given to a file half written); older versions
	 * have none */
	if (q->version == MMAPQ_VERSION)
		for (size_t i = 0; i < MMAPQ_ID_SIZE; i++)
			s.id[i] = __atomic_load_n(&q->h->id[i], __ATOMIC_RELAXED);
	*st = s;
	return 0;
}

#ifdef MMAPQ_SHARED_LIBRARY
/* 1.0's mmapq_status: its caller's struct ends before max_consumers. */
MMAPQ_API int mmapq_status_v1(struct mmapq *q, void *st);
__asm__(".symver mmapq_status_v1, mmapq_status@LIBMMAPQ_1");
MMAPQ_API int mmapq_status_v1(struct mmapq *q, void *st)
{
	struct mmapq_status now;
	int r = STATUS_FN(q, &now);

	if (r == 0)
		memcpy(st, &now, STATUS_V1_SIZE);
	return r;
}
#endif
