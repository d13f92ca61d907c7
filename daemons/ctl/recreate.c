/* SPDX-License-Identifier: MIT */
/*
 * recreate.c -- the verbs that need the queue file to themselves (every
 * daemon stopped): `recreate`, the file rebuilt with the configuration's
 * geometry (size, max_record, format, max_consumers, max_producers),
 * carrying its records, consumers and producers over, also out of a file of
 * format versions 1 to 3 (fixed slots); and `repair`, every record checked
 * and a damaged file salvaged.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "attach.h"
#include "exit.h"
#include "log.h"

/* Open the queue file at path in a role: with the configured geometry, or
 * (st) with the geometry st gives, to read that file out (one of format
 * version 1 too); a producer by the name producer (NULL: the configured
 * one). */
static int open_as(const struct mmapq_config *cfg, const struct mmapq_status *st, enum mmapq_role role,
                   const char *path, const char *producer, struct mmapq **q)
{
	struct mmapq_params qp = attach_params(cfg, role);
	struct mmapq_error err;
	int r;

	qp.path = path;
	if (producer)
		qp.producer = producer;
	if (st) {
		/* versions 1 to 3 have no size and max_record of this kind: all
		 * three 0 join the file as it is */
		bool v4 = st->version == MMAPQ_FILE_VERSION;

		qp.size = v4 ? st->size : 0;
		qp.max_record = v4 ? st->max_record : 0;
		qp.format = v4 ? st->format : 0;
		qp.max_consumers = st->max_consumers;
		qp.max_producers = v4 ? st->max_producers : 0;
		qp.migrate = true;
	}
	r = mmapq_open(&qp, q, &err);
	if (r < 0)
		log_error("%s", err.msg);
	return r;
}

/* The smallest power of two >= n (a ring size that holds n bytes). */
static uint64_t next_pow2(uint64_t n)
{
	uint64_t p = MMAPQ_SIZE_MIN;

	while (p < n && p < MMAPQ_SIZE_MAX)
		p <<= 1;
	return p;
}

/* Record seq could not be read (r): said; the exit code. */
static int record_failed(const char *path, uint64_t seq, int r)
{
	if (r == -EBADMSG) {
		log_error("%s: record %" PRIu64 " is damaged (its checksum does not hold): run mmapqctl"
		          " repair first, which keeps the records before it and says what it drops", path,
		          seq);
		return EXIT_BADQUEUE;
	}
	log_error("%s: record %" PRIu64 ": %s", path, seq, mmapq_strerror(r));
	return r == -EAGAIN ? EXIT_IOERR : exit_code_for_open(r);
}

/*
 * The daemons must be stopped for what needs the file to itself (what:
 * "recreate", "repair"): EXIT_ROLE_TAKEN (said, naming the role and its
 * pid) if a producer or consumer (st, its n consumers cs, its np
 * producers ps) is attached, else 0.
 */
static int refuse_attached(const char *path, const char *what, const struct mmapq_status *st,
                           const struct mmapq_consumer_status *cs, int n,
                           const struct mmapq_producer_status *ps, int np)
{
	if (st->producer.attached) {
		log_error("%s: the producer is attached (pid %" PRId32 "); %s needs every daemon stopped"
		          " (systemctl stop mmapq.target)", path, st->producer.pid, what);
		return EXIT_ROLE_TAKEN;
	}
	for (int i = 0; i < np; i++) {
		if (ps[i].attached) {
			log_error("%s: producer '%s' is attached (pid %" PRId32 "); %s needs every daemon"
			          " stopped (systemctl stop mmapq.target, and every producer by name)", path,
			          ps[i].name, ps[i].pid, what);
			return EXIT_ROLE_TAKEN;
		}
	}
	for (int i = 0; i < n; i++) {
		if (cs[i].attached) {
			log_error("%s: consumer '%s' is attached (pid %" PRId32 "); %s needs every daemon"
			          " stopped (systemctl stop mmapq.target, and each mmapq-consumer-named@ unit)",
			          path, cs[i].name, cs[i].pid, what);
			return EXIT_ROLE_TAKEN;
		}
	}
	return 0;
}

/* The names of n entries (each a struct of size stride whose name is at
 * name), quoted, one after the other: 'a', 'b'. */
static void quoted_names(char *buf, size_t size, const char *name, size_t stride, int n)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; i < n && len < size; i++, name += stride)
		len += (size_t)snprintf(buf + len, size - len, "%s'%s'", i ? ", " : "", name);
}

/*
 * Whether what the old file holds (st, read through q; its ncons
 * consumers cs and nprod producers ps) fits the configured geometry: 0, or
 * EXIT_DATAERR (said, naming what does not fit), or EXIT_IOERR.  Only
 * reads (the records with mmapq_peek), so a file refused is left as it was.
 */
static int check_fits(const struct mmapq_config *cfg, const char *path, const struct mmapq_status *st,
                      struct mmapq *q, const struct mmapq_consumer_status *cs, int ncons,
                      const struct mmapq_producer_status *ps, int nprod)
{
	char names[MMAPQ_CONSUMERS_MAX * (MMAPQ_CONSUMER_NAME_MAX + 4) + 1];
	struct mmapq_record rec;
	uint64_t bytes = 0;
	char *buf;

	if ((uint32_t)ncons > cfg->max_consumers) {
		quoted_names(names, sizeof(names), cs[0].name, sizeof(*cs), ncons);
		log_error("%s: %d consumers are registered (%s), more than the new max_consumers %" PRIu32
		          "; remove %" PRIu32 " of them first (mmapqctl consumer remove NAME), or keep"
		          " max_consumers at %d or more", path, ncons, names, cfg->max_consumers,
		          (uint32_t)ncons - cfg->max_consumers, ncons);
		return EXIT_DATAERR;
	}
	/* entries are never freed: a producer table is as large as the
	 * names that ever attached */
	if ((uint32_t)nprod > cfg->max_producers) {
		quoted_names(names, sizeof(names), ps[0].name, sizeof(*ps), nprod);
		log_error("%s: %d producers are registered (%s), more than the new max_producers %" PRIu32
		          "; keep max_producers at %d or more (a producer's entry, with its counters,"
		          " is kept for good)", path, nprod, names, cfg->max_producers, nprod);
		return EXIT_DATAERR;
	}
	if (st->format != cfg->format && st->tail != st->head) {
		log_error("%s: holds %" PRIu64 " %s records, the configuration says format = %s;"
		          " consume them first (with the old format)", path, st->tail - st->head,
		          mmapq_format_name(st->format), mmapq_format_name(cfg->format));
		return EXIT_DATAERR;
	}
	buf = malloc(mmapq_max_record(q) ? mmapq_max_record(q) : 1);
	if (!buf) {
		log_error("%s: out of memory", path);
		return EXIT_IOERR;
	}
	for (uint64_t seq = st->head; seq < st->tail; seq++) {
		int r = mmapq_peek(q, seq, buf, mmapq_max_record(q), &rec);

		if (r == -ENOENT)
			continue; /* consumed before the roles were taken */
		if (r < 0) {
			free(buf);
			return record_failed(path, seq, r);
		}
		if (rec.len > cfg->max_record) {
			log_error("%s: record %" PRIu64 " has %" PRIu32 " bytes, more than the new"
			          " max_record %" PRIu32 " bytes; consume it first, or keep max_record at %"
			          PRIu32 " or more", path, rec.seq, rec.len, cfg->max_record, rec.len);
			free(buf);
			return EXIT_DATAERR;
		}
		bytes += mmapq_frame_size(rec.len);
	}
	free(buf);
	/* into an empty ring, from its start: no padding */
	if (bytes > cfg->size) {
		log_error("%s: holds %" PRIu64 " records that take %" PRIu64 " bytes of ring (a record"
		          " takes 8 bytes more than its length rounded up to 8), more than the new size %" PRIu64
		          " bytes; consume some first, or keep size at %" PRIu64 " bytes or more", path,
		          st->tail - st->head, bytes, cfg->size, next_pow2(bytes));
		return EXIT_DATAERR;
	}
	return 0;
}

/*
 * What recreate finds before it touches anything (obs, an observer of the
 * old file): its status, consumers and producers into st, cs and *ncons,
 * ps and *nprod.  EXIT_OK with *ncons < 0: nothing to do (said); else an
 * exit code (said), EXIT_OK if it may go on: no daemon attached, and all
 * it holds fits.
 */
static int recreate_precheck(const struct mmapq_config *cfg, struct mmapq *obs,
                             struct mmapq_status *st, struct mmapq_consumer_status *cs, int *ncons,
                             struct mmapq_producer_status *ps, int *nprod)
{
	const char *path = cfg->queue_path;
	int r = mmapq_status(obs, st);

	*ncons = r < 0 ? r : list_consumers(obs, cs, NULL);
	*nprod = r < 0 || *ncons < 0 ? -1 : list_producers(obs, ps);
	if (r < 0 || *ncons < 0 || *nprod < 0) {
		if (r < 0)
			log_error("%s: %s", path, mmapq_strerror(r));
		return EXIT_BADQUEUE;
	}
	if (st->version == MMAPQ_FILE_VERSION && st->size == cfg->size &&
	    st->max_record == cfg->max_record && st->format == cfg->format &&
	    st->max_consumers == cfg->max_consumers && st->max_producers == cfg->max_producers) {
		printf("%s: already size %" PRIu64 " bytes, max_record %" PRIu32 " bytes, format %s,"
		       " max_consumers %" PRIu32 ", max_producers %" PRIu32 "; nothing to do\n", path,
		       st->size, st->max_record, mmapq_format_name(st->format), st->max_consumers,
		       st->max_producers);
		*ncons = -1;
		return EXIT_OK;
	}
	r = refuse_attached(path, "recreate", st, cs, *ncons, ps, *nprod);
	if (r)
		return r;
	return check_fits(cfg, path, st, obs, cs, *ncons, ps, *nprod);
}

/*
 * The old file's consumers into the new one (next, its producer), each
 * with its name, counters and place among the records: the old file's
 * oldest record kept (old_floor) is sequence number 0 of the new one.
 * 0, or an exit code (said).
 */
static int carry_consumers(struct mmapq *next, struct mmapq_consumer_status *cs, int n,
                           uint64_t old_floor)
{
	int r;

	for (int i = 0; i < n; i++) {
		cs[i].position -= old_floor;
		/* where it was when it last attached: only its rate since
		 * then (shown while attached) uses it */
		cs[i].attach_position = cs[i].attach_position > old_floor ?
		                        cs[i].attach_position - old_floor : 0;
	}
	r = mmapq_consumers_restore(next, cs, (uint32_t)n);
	if (r < 0) {
		log_error("%s: carrying the consumers over: %s", mmapq_path(next), mmapq_strerror(r));
		return EXIT_IOERR;
	}
	return 0;
}

/*
 * The old file's producer table (ps, n, read after the roles were taken)
 * into the new one (next, its producer by the name held): each name with
 * its counters.  The old file's entry of the name held counts our attach
 * to it: it is carried as the first look (pre, npre, before the roles were
 * taken) saw it, or, if taking the role registered it, as attached by
 * nobody.  next's own entry takes what is carried under its name (what it
 * counted copying the records is not carried).  0, or an exit code (said).
 */
static int carry_producers(struct mmapq *next, struct mmapq_producer_status *ps, int n, const char *held,
                           const struct mmapq_producer_status *pre, int npre)
{
	int r;

	for (int i = 0; i < n; i++) {
		const struct mmapq_producer_status *was = NULL;

		if (strcmp(ps[i].name, held))
			continue;
		for (int k = 0; k < npre; k++)
			if (!strcmp(pre[k].name, held))
				was = &pre[k];
		ps[i].last_pid = was ? was->last_pid : 0;
		ps[i].start_usec = was ? was->start_usec : 0;
		ps[i].attaches = was ? was->attaches : 0;
	}
	r = mmapq_producers_restore(next, ps, (uint32_t)n);
	if (r < 0) {
		log_error("%s: carrying the producers over: %s", mmapq_path(next), mmapq_strerror(r));
		return EXIT_IOERR;
	}
	return 0;
}

/*
 * Both roles of the old file (the producer's by the name producer): from
 * here on no daemon can attach, and nothing in it moves.  *st read again
 * (a consumer may have run since the first look), *n the records it keeps.
 * 0, or an exit code (said).  A file of versions 1 to 3 keeps the attach
 * lock of the first open exclusive (no daemon attaches to it anyway): the
 * consumer role is all that can be taken then, and all that is needed.
 */
static int hold_roles(const struct mmapq_config *cfg, const char *path, const char *producer,
                      struct mmapq_status *st, struct mmapq **cons, struct mmapq **prod, uint32_t *n)
{
	int r = open_as(cfg, st, MMAPQ_ROLE_CONSUMER, path, NULL, cons);

	if (r == 0 && st->version == MMAPQ_FILE_VERSION)
		r = open_as(cfg, st, MMAPQ_ROLE_PRODUCER, path, producer, prod);
	if (r < 0)
		return exit_code_for_open(r);
	r = mmapq_status(*cons, st);
	if (r == 0 && st->salvaged) {
		char ranges[160];

		salvage_ranges(ranges, sizeof(ranges), &st->salvage);
		log_warning("%s: was not closed cleanly and is damaged: the salvage as it was opened"
		            " dropped %" PRIu64 " records (%" PRIu64 " bytes): %s", path, st->salvaged,
		            st->salvage.dropped_bytes, ranges);
	}
	if (r == 0)
		r = mmapq_available(*cons, 0, n);
	if (r == -EAGAIN) {
		*n = 0;
		r = 0;
	}
	if (r < 0) {
		log_error("%s: %s", path, mmapq_strerror(r));
		return exit_code_for_open(r);
	}
	return 0;
}

/* The n records the old file keeps (from seq first), in order, into the
 * new one (tmp).  0, or an exit code (said). */
static int copy_records(struct mmapq *cons, struct mmapq *next, uint32_t n, uint64_t first,
                        const char *tmp)
{
	uint32_t copied = 0;

	while (copied < n) {
		struct mmapq_record rec;
		uint64_t room;
		int r = mmapq_get(cons, copied, &rec);

		if (r < 0)
			return record_failed(mmapq_path(cons), first + copied, r);
		/* the new ring holds them all (check_fits): room, unless what
		 * is put is not yet published */
		r = mmapq_reserve(next, rec.len, 0, &room);
		if (r == 0)
			r = mmapq_put(next, rec.data, rec.len);
		if (r == 0)
			copied++;
		if (r == 0 && (copied == n || mmapq_pending(next) >= 4096)) {
			int k = mmapq_publish(next);
			r = k < 0 ? k : 0;
		}
		if (r < 0) {
			log_error("%s: copying record %" PRIu32 ": %s", tmp, copied, mmapq_strerror(r));
			return EXIT_IOERR;
		}
	}
	return 0;
}

/*
 * Give the queue file the configured geometry, keeping its records, its
 * consumers and its producers: the way out of exit 65 after size,
 * max_record, format, max_consumers or max_producers changed in mmapq.ini,
 * or of a file an older mmapq made (format versions 1 to 3, which the
 * daemons refuse).  Every daemon must be stopped; we take both roles of the
 * old file (so none can attach meanwhile; the producer's by the name of a
 * producer it has, so that no name is registered in it or in the new file
 * that was not there), build the new file beside it, copy the unconsumed
 * records in order, register the consumers and the producers in its tables
 * (of the new sizes), and rename it over the old one.  Until the rename
 * the old file is untouched (but for the salvage of a damaged file that
 * was not closed cleanly, which taking the roles does, and which is said;
 * and the configured producer's name, registered by taking the role, in a
 * file that had no producer), so a failure at any step loses nothing.
 * Sequence numbers start again at 0 in the new file.  A file of versions 1
 * to 3 is recreated in the current version even with an unchanged
 * geometry: that is how it is migrated.
 */
int recreate(const struct mmapq_config *cfg)
{
	const char *path = cfg->queue_path;
	struct mmapq *obs = NULL, *cons = NULL, *prod = NULL, *next = NULL;
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_producer_status pre[MMAPQ_PRODUCERS_MAX], ps[MMAPQ_PRODUCERS_MAX];
	char held[MMAPQ_CONSUMER_NAME_MAX + 1];
	struct mmapq_status st, now;
	int ncons, npre, nprod;
	struct stat old;
	char *tmp = NULL, *tmp_lock = NULL;
	uint32_t n = 0;
	int r, code = EXIT_OK;

	r = open_as(cfg, NULL, MMAPQ_ROLE_OBSERVER, path, NULL, &obs);
	if (r < 0)
		return exit_code_for_open(r);
	code = recreate_precheck(cfg, obs, &st, cs, &ncons, pre, &npre);
	mmapq_close(obs);
	if (code != EXIT_OK || ncons < 0)
		return code;
	/* a name the file has, else the configured one (then registered) */
	snprintf(held, sizeof(held), "%s",
	         npre ? pre[0].name : cfg->producer[0] ? cfg->producer : MMAPQ_PRODUCER_DEFAULT);
	code = hold_roles(cfg, path, held, &st, &cons, &prod, &n);
	if (code)
		goto out;
	ncons = list_consumers(cons, cs, NULL);
	nprod = ncons < 0 ? -1 : list_producers(cons, ps);
	code = nprod < 0 ? EXIT_BADQUEUE : check_fits(cfg, path, &st, cons, cs, ncons, ps, nprod);
	if (code)
		goto out;
	if (asprintf(&tmp, "%s.recreate-%d", path, (int)getpid()) < 0)
		tmp = NULL;
	if (tmp && asprintf(&tmp_lock, "%s" MMAPQ_LOCK_SUFFIX, tmp) < 0)
		tmp_lock = NULL;
	if (!tmp_lock || stat(path, &old) < 0) {
		log_error("%s: %s", path, tmp_lock ? strerror(errno) : "out of memory");
		code = EXIT_IOERR;
		goto out;
	}
	r = open_as(cfg, NULL, MMAPQ_ROLE_PRODUCER, tmp, held, &next);
	if (r < 0) {
		code = exit_code_for_open(r);
		goto out;
	}
	code = copy_records(cons, next, n, st.head, tmp);
	if (code)
		goto out;
	code = carry_consumers(next, cs, ncons, st.head);
	if (code == 0)
		code = carry_producers(next, ps, nprod, held, pre, npre);
	if (code)
		goto out;
	r = mmapq_status(next, &now);
	if (r < 0) {
		log_error("%s: %s", tmp, mmapq_strerror(r));
		code = EXIT_IOERR;
		goto out;
	}
	mmapq_close(next);
	next = NULL;
	/* the daemons' user must own the new file as it did the old one */
	if ((geteuid() == 0 && chown(tmp, old.st_uid, old.st_gid) < 0) || rename(tmp, path) < 0) {
		log_error("%s: cannot put the new file in place: %s", tmp, strerror(errno));
		code = EXIT_IOERR;
		goto out;
	}
	free(tmp);
	tmp = NULL;
	printf("%s: recreated: format version %" PRIu32 " -> %" PRIu32, path, st.version,
	       MMAPQ_FILE_VERSION);
	if (st.version != MMAPQ_FILE_VERSION)
		printf(", capacity %" PRIu32 " slots of %" PRIu32 " bytes, record_size %" PRIu32
		       " -> size %" PRIu64 " bytes, max_record %" PRIu32 " bytes", st.capacity,
		       st.slot_size, st.max_record, cfg->size, cfg->max_record);
	else
		printf(", size %" PRIu64 " -> %" PRIu64 " bytes, max_record %" PRIu32 " -> %" PRIu32
		       " bytes", st.size, cfg->size, st.max_record, cfg->max_record);
	printf(", format %s -> %s, max_consumers %" PRIu32 " -> %" PRIu32 ", max_producers %" PRIu32
	       " -> %" PRIu32 "; %" PRIu32 " records (%" PRIu64 " bytes of ring), %d consumer(s) and %d"
	       " producer(s) carried over (sequence numbers start again at 0)\n",
	       mmapq_format_name(st.format), mmapq_format_name(cfg->format), st.max_consumers,
	       cfg->max_consumers, st.max_producers, cfg->max_producers, n, now.used_bytes, ncons,
	       nprod);
out:
	mmapq_close(next);
	if (tmp)
		unlink(tmp); /* a failure: the old file is as it was */
	if (tmp_lock)
		unlink(tmp_lock); /* the temporary name's lock file, never in use again */
	free(tmp_lock);
	free(tmp);
	mmapq_close(prod);
	mmapq_close(cons);
	return code;
}

/* ---- repair ---- */

/* What the repair found and did, from the file as it is after it (q). */
static void repair_said(struct mmapq *q, int64_t dropped, const struct mmapq_salvage *report)
{
	struct mmapq_status st;
	char ranges[160];

	if (mmapq_status(q, &st) < 0)
		memset(&st, 0, sizeof(st));
	if (!dropped) {
		if (st.tail == st.head)
			printf("%s: intact: no record kept, nothing dropped\n", mmapq_path(q));
		else
			printf("%s: intact: records %" PRIu64 " to %" PRIu64 " (%" PRIu64 " records, %" PRIu64
			       " bytes) checked, nothing dropped\n", mmapq_path(q), st.head, st.tail - 1,
			       st.tail - st.head, st.used_bytes);
		return;
	}
	salvage_ranges(ranges, sizeof(ranges), report);
	printf("%s: salvaged: dropped %" PRId64 " records (%" PRIu64 " bytes): %s; ", mmapq_path(q),
	       dropped, report->dropped_bytes, ranges);
	if (st.tail == st.head)
		printf("no record kept\n");
	else
		printf("kept records %" PRIu64 " to %" PRIu64 " (%" PRIu64 " records, %" PRIu64 " bytes)\n",
		       st.head, st.tail - 1, st.tail - st.head, st.used_bytes);
}

/*
 * `repair`: mmapq_repair on the configured queue file, which every daemon
 * must have let go (the roles held are named first, as an observer sees
 * them; the library refuses what the observer could not see, a running
 * mmapqctl recreate say).  It checks every record kept and salvages a
 * damaged file whatever its clean mark says.
 */
int repair(const struct mmapq_config *cfg)
{
	struct mmapq_params qp = attach_params(cfg, MMAPQ_ROLE_PRODUCER);
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_salvage report = {0};
	struct mmapq_status st;
	struct mmapq_error err;
	struct mmapq *obs;
	int64_t dropped;
	int r, n, code;

	r = open_as(cfg, NULL, MMAPQ_ROLE_OBSERVER, cfg->queue_path, NULL, &obs);
	if (r < 0)
		return exit_code_for_open(r);
	r = mmapq_status(obs, &st);
	n = r < 0 ? r : list_consumers(obs, cs, NULL);
	if (r < 0)
		log_error("%s: %s", cfg->queue_path, mmapq_strerror(r));
	code = r < 0 || n < 0 ? EXIT_BADQUEUE : refuse_attached(cfg->queue_path, "repair", &st, cs, n, NULL, 0);
	mmapq_close(obs);
	if (code)
		return code;
	/* said here, before the library opens it to write: a file of slots
	 * has no frames to check */
	if (st.version != MMAPQ_FILE_VERSION) {
		log_error("%s: format version %" PRIu32 " (fixed-size slots, an older mmapq's): repair"
		          " checks version-%" PRIu32 " files; mmapqctl recreate carries its records,"
		          " consumers and producers over into one (the file is left untouched)", cfg->queue_path,
		          st.version, MMAPQ_FILE_VERSION);
		return EXIT_BADQUEUE;
	}
	dropped = mmapq_repair(&qp, &report, &err);
	if (dropped < 0) {
		log_error("%s", err.msg);
		return exit_code_for_open((int)dropped);
	}
	r = open_as(cfg, NULL, MMAPQ_ROLE_OBSERVER, cfg->queue_path, NULL, &obs);
	if (r < 0)
		return exit_code_for_open(r);
	repair_said(obs, dropped, &report);
	mmapq_close(obs);
	return EXIT_OK;
}
