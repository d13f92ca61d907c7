/* SPDX-License-Identifier: MIT */
/*
 * recreate.c -- `recreate`: the queue file rebuilt with the configuration's
 * geometry (size, max_record, format, max_consumers), carrying its records
 * and consumers over; also reads files of format versions 1 to 3 (fixed
 * slots) out.  The
 * daemons are stopped first (it takes both roles).
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
 * version 1 too). */
static int open_as(const struct mmapq_config *cfg, const struct mmapq_status *st, enum mmapq_role role,
                   const char *path, struct mmapq **q)
{
	struct mmapq_params qp = attach_params(cfg, role);
	struct mmapq_error err;
	int r;

	qp.path = path;
	if (st) {
		/* versions 1 to 3 have no size and max_record of this kind: 0
		 * joins the file as it is */
		qp.size = st->version == MMAPQ_FILE_VERSION ? st->size : 0;
		qp.max_record = st->version == MMAPQ_FILE_VERSION ? st->max_record : 0;
		qp.format = st->format;
		qp.max_consumers = st->max_consumers;
		qp.migrate = true;
	}
	r = mmapq_open(&qp, q, &err);
	if (r < 0)
		log_error("%s", err.msg);
	return r;
}

/*
 * Whether what the old file holds (st, read through q; its ncons
 * consumers cs) fits the configured geometry: 0, or EXIT_DATAERR (said,
 * naming what does not fit), or EXIT_IOERR.  Only reads (the records with
 * mmapq_peek), so a file refused is left as it was.
 */
static int check_fits(const struct mmapq_config *cfg, const char *path, const struct mmapq_status *st,
                      struct mmapq *q, const struct mmapq_consumer_status *cs, int ncons)
{
	struct mmapq_record rec;
	uint64_t bytes = 0;
	char *buf;

	if ((uint32_t)ncons > cfg->max_consumers) {
		char names[MMAPQ_CONSUMERS_MAX * (MMAPQ_CONSUMER_NAME_MAX + 4) + 1];
		size_t len = 0;

		names[0] = '\0';
		for (int i = 0; i < ncons && len < sizeof(names); i++)
			len += (size_t)snprintf(names + len, sizeof(names) - len, "%s'%s'", i ? ", " : "",
			                        cs[i].name);
		log_error("%s: %d consumers are registered (%s), more than the new max_consumers %" PRIu32
		          "; remove %" PRIu32 " of them first (mmapqctl consumer remove NAME), or keep"
		          " max_consumers at %d or more", path, ncons, names, cfg->max_consumers,
		          (uint32_t)ncons - cfg->max_consumers, ncons);
		return EXIT_DATAERR;
	}
	if (st->format != cfg->format && st->tail != st->head) {
		log_error("%s: holds %" PRIu64 " %s records, the configuration says format = %s;"
		          " consume them first (with the old format)", path, st->tail - st->head,
		          mmapq_format_name(st->format), mmapq_format_name(cfg->format));
		return EXIT_DATAERR;
	}
	buf = malloc(mmapq_max_record(q));
	if (!buf) {
		log_error("%s: out of memory", path);
		return EXIT_IOERR;
	}
	for (uint64_t seq = st->head; seq < st->tail; seq++) {
		if (mmapq_peek(q, seq, buf, mmapq_max_record(q), &rec) != 0)
			continue;
		if (rec.len > cfg->max_record) {
			log_error("%s: record %" PRIu64 " has %" PRIu32 " bytes, more than the new"
			          " max_record %" PRIu32, path, rec.seq, rec.len, cfg->max_record);
			free(buf);
			return EXIT_DATAERR;
		}
		bytes += mmapq_frame_size(rec.len);
	}
	free(buf);
	/* into an empty ring, from its start: no padding */
	if (bytes > cfg->size) {
		log_error("%s: holds %" PRIu64 " records taking %" PRIu64 " bytes of ring, more than"
		          " the new size %" PRIu64 "; consume some first", path, st->tail - st->head,
		          bytes, cfg->size);
		return EXIT_DATAERR;
	}
	return 0;
}

/*
 * What recreate finds before it touches anything (obs, an observer of the
 * old file): its status and consumers into st, cs and *ncons.  EXIT_OK with
 * *ncons < 0: nothing to do (said); else an exit code (said), EXIT_OK if it
 * may go on: no daemon attached, and all it holds fits.
 */
static int recreate_precheck(const struct mmapq_config *cfg, struct mmapq *obs,
                             struct mmapq_status *st, struct mmapq_consumer_status *cs, int *ncons)
{
	const char *path = cfg->queue_path;
	int r = mmapq_status(obs, st);

	*ncons = r < 0 ? r : list_consumers(obs, cs);
	if (r < 0 || *ncons < 0) {
		if (r < 0)
			log_error("%s: %s", path, mmapq_strerror(r));
		return EXIT_BADQUEUE;
	}
	if (st->version == MMAPQ_FILE_VERSION && st->size == cfg->size &&
	    st->max_record == cfg->max_record && st->format == cfg->format &&
	    st->max_consumers == cfg->max_consumers) {
		printf("%s: already size %" PRIu64 ", max_record %" PRIu32 ", format %s,"
		       " max_consumers %" PRIu32 "; nothing to do\n", path, st->size, st->max_record,
		       mmapq_format_name(st->format), st->max_consumers);
		*ncons = -1;
		return EXIT_OK;
	}
	if (st->producer.attached) {
		log_error("%s: the producer is attached (pid %" PRId32 "); stop every daemon first"
		          " (systemctl stop mmapq.target)", path, st->producer.pid);
		return EXIT_ROLE_TAKEN;
	}
	for (int i = 0; i < *ncons; i++) {
		if (cs[i].attached) {
			log_error("%s: consumer '%s' is attached (pid %" PRId32 "); stop every daemon first"
			          " (systemctl stop mmapq.target, and each mmapq-consumer-named@ unit)",
			          path, cs[i].name, cs[i].pid);
			return EXIT_ROLE_TAKEN;
		}
	}
	return check_fits(cfg, path, st, obs, cs, *ncons);
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
 * Give the queue file the configured geometry, keeping its records and
 * its consumers: the way out of exit 65 after size, max_record, format
 * or max_consumers changed in mmapq.ini, or of a file an older mmapq made
 * (format versions 1 to 3).  Every daemon must be
 * stopped; we take both roles of the old file (so none can attach
 * meanwhile), build the new file beside it, copy the unconsumed records in
 * order, register the consumers in its table (of the new size), and
 * rename it over the old one.  Until the rename the old file is untouched,
 * so a failure at any step loses nothing.  Sequence numbers start again at
 * 0 in the new file.  A file of format version 1 (which the daemons
 * refuse) is recreated in the current version even with an unchanged
 * geometry: that is how it is migrated.
 */
/*
 * Both roles of the old file: from here on no daemon can attach, and
 * nothing in it moves.  *st read again (a consumer may have run since the
 * first look), *n the records it keeps.  0, or an exit code (said).
 */
static int hold_roles(const struct mmapq_config *cfg, const char *path, struct mmapq_status *st,
                      struct mmapq **cons, struct mmapq **prod, uint32_t *n)
{
	int r = open_as(cfg, st, MMAPQ_ROLE_CONSUMER, path, cons);

	if (r == 0)
		r = open_as(cfg, st, MMAPQ_ROLE_PRODUCER, path, prod);
	if (r < 0)
		return exit_code_for_open(r);
	r = mmapq_status(*cons, st);
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

/* The n records the old file keeps, in order, into the new one (tmp).  0,
 * or EXIT_IOERR (said). */
static int copy_records(struct mmapq *cons, struct mmapq *next, uint32_t n, const char *tmp)
{
	uint32_t copied = 0;

	while (copied < n) {
		struct mmapq_record rec;
		uint64_t room;
		int r = mmapq_get(cons, copied, &rec);

		/* the new ring holds them all (check_fits): room, unless what
		 * is put is not yet published */
		if (r == 0)
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

int recreate(const struct mmapq_config *cfg)
{
	const char *path = cfg->queue_path;
	struct mmapq *obs = NULL, *cons = NULL, *prod = NULL, *next = NULL;
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_status st;
	int ncons;
	struct stat old;
	char *tmp = NULL, *tmp_lock = NULL;
	uint32_t n = 0, copied = 0;
	int r, code = EXIT_OK;

	r = open_as(cfg, NULL, MMAPQ_ROLE_OBSERVER, path, &obs);
	if (r < 0)
		return exit_code_for_open(r);
	code = recreate_precheck(cfg, obs, &st, cs, &ncons);
	mmapq_close(obs);
	if (code != EXIT_OK || ncons < 0)
		return code;
	code = hold_roles(cfg, path, &st, &cons, &prod, &n);
	if (code)
		goto out;
	ncons = list_consumers(cons, cs);
	code = ncons < 0 ? EXIT_BADQUEUE : check_fits(cfg, path, &st, cons, cs, ncons);
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
	r = open_as(cfg, NULL, MMAPQ_ROLE_PRODUCER, tmp, &next);
	if (r < 0) {
		code = exit_code_for_open(r);
		goto out;
	}
	code = copy_records(cons, next, n, tmp);
	if (code)
		goto out;
	copied = n;
	code = carry_consumers(next, cs, ncons, st.head);
	if (code)
		goto out;
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
	printf("%s: recreated: format version %" PRIu32 " -> %" PRIu32 ", size %" PRIu64 " -> %" PRIu64
	       ", max_record %" PRIu32 " -> %" PRIu32 ", format %s -> %s, max_consumers %" PRIu32
	       " -> %" PRIu32 "; %" PRIu32 " records and %d consumer(s) carried over (sequence numbers"
	       " start again at 0)\n", path, st.version, MMAPQ_FILE_VERSION,
	       st.size, cfg->size, st.max_record, cfg->max_record,
	       mmapq_format_name(st.format), mmapq_format_name(cfg->format), st.max_consumers,
	       cfg->max_consumers, copied, ncons);
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
