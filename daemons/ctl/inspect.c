/* SPDX-License-Identifier: MIT */
/*
 * inspect.c -- `status` (geometry, positions in records and bytes, the
 * clean mark, the last salvage, counters, the pid in each role and whether
 * it is alive), `dump` (the records kept, oldest first, as text or JSON;
 * the schema: mmapqctl(1), JSON OUTPUT) and `export` (the same records
 * framed as the producer reads its input, to feed them back).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "blocked.h"
#include "ctl.h"
#include "exit.h"
#include "log.h"

/* by_pid: the lock file could not be read, "attached" is whether the pid
 * is alive (mmapq_status.attached_by_pid).  lag: a consumer's (lag_bytes
 * its bytes), NULL for the producer. */
static void side_text(const char *name, const struct mmapq_side_status *s, const char *count_name,
                      uint64_t count, const struct mmapq_consumer_status *lag, bool by_pid)
{
	char when[32];

	iso_time(when, sizeof(when), s->start_usec);
	if (s->pid)
		printf("%-10s pid %" PRId32 " (%s), attached since %s\n", name, s->pid,
		       by_pid ? (s->attached ? "pid alive, lock file not readable"
		                             : "pid not running, lock file not readable")
		              : s->attached ? "alive" : "not attached", when);
	else
		printf("%-10s never attached\n", name);
	printf("%-10s %s %" PRIu64, "", count_name, count);
	if (!lag)
		printf(", dropped %" PRIu64 ", bad input %" PRIu64, s->dropped, s->bad_input);
	else
		printf(", lag %" PRIu64 " records (%" PRIu64 " bytes)", lag->lag, lag->lag_bytes);
	printf(", recoveries %" PRIu64 ", attaches %" PRIu64 "\n", s->recoveries, s->attaches);
}

/* The producer's object (blocked: its wait for room) has its dropped and
 * bad_input counters and its wait, the consumer's (blocked NULL) none of
 * them (the schema: mmapqctl(1), JSON OUTPUT). */
static void side_json(const char *name, const struct mmapq_side_status *s, const char *count_name,
                      uint64_t count, const struct blocked_info *blocked)
{
	printf("\"%s\":{\"pid\":%" PRId32 ",\"attached\":%s,\"start_usec\":%" PRIu64 ",\"%s\":%" PRIu64,
	       name, s->pid, s->attached ? "true" : "false", s->start_usec, count_name, count);
	if (blocked)
		printf(",\"dropped\":%" PRIu64 ",\"bad_input\":%" PRIu64, s->dropped, s->bad_input);
	printf(",\"recoveries\":%" PRIu64 ",\"attaches\":%" PRIu64, s->recoveries, s->attaches);
	if (blocked) {
		printf(",\"blocked_since_usec\":%" PRIu64 ",\"blocked_usec\":%" PRIu64 ",\"blocked_by\":",
		       blocked->since_usec, blocked->total_usec);
		if (blocked->since_usec && blocked->have_holder)
			json_string(stdout, blocked->holder.name, strlen(blocked->holder.name));
		else
			printf("null");
	}
	putchar('}');
}

/* The producer's wait for room, a line under its counters: while it
 * waits, since when and for which consumer; else how long it waited in
 * all, if at all. */
static void blocked_text(const struct blocked_info *b)
{
	char when[32];

	if (b->since_usec) {
		const struct mmapq_consumer_status *c = &b->holder;
		uint64_t now = wall_usec();

		iso_time(when, sizeof(when), b->since_usec);
		printf("%-10s waiting for room since %s (%.0f s), ", "", when,
		       now > b->since_usec ? (double)(now - b->since_usec) / 1e6 : 0.0);
		if (b->have_holder)
			printf("for consumer %s (lag %" PRIu64 " records, %" PRIu64 " bytes; %s)", c->name,
			       c->lag, c->lag_bytes, c->attached ? "attached" : "not attached");
		else
			printf("for a consumer to register");
		printf("; %.1f s in all\n", (double)b->total_usec / 1e6);
	} else if (b->total_usec) {
		printf("%-10s not waiting for room; waited %.1f s in all\n", "",
		       (double)b->total_usec / 1e6);
	}
}

/* The queue id as 32 hex digits, or "" if it has none yet. */
static void id_hex(const struct mmapq_status *st, char out[2 * MMAPQ_ID_SIZE + 1])
{
	bool zero = true;

	for (size_t i = 0; i < MMAPQ_ID_SIZE; i++) {
		snprintf(out + 2 * i, 3, "%02x", st->id[i]);
		zero = zero && !st->id[i];
	}
	if (zero)
		out[0] = '\0';
}

/* ---- status ---- */

double used_percent(const struct mmapq_status *st)
{
	return st->size ? 100.0 * (double)st->used_bytes / (double)st->size : 0.0;
}

uint64_t salvage_dropped(const struct mmapq_salvage *s)
{
	return (s->below_to - s->below_from) + (s->above_to - s->above_from);
}

/* "records 3 to 5 (under the records kept) and records 9 to 12 (past the
 * records kept)" into buf. */
void salvage_ranges(char *buf, size_t size, const struct mmapq_salvage *s)
{
	size_t n = 0;

	buf[0] = '\0';
	if (s->below_to > s->below_from)
		n += (size_t)snprintf(buf, size, "records %" PRIu64 " to %" PRIu64 " (under the records"
		                      " kept)", s->below_from, s->below_to - 1);
	if (s->above_to > s->above_from && n < size)
		snprintf(buf + n, size - n, "%srecords %" PRIu64 " to %" PRIu64 " (past the records kept)",
		         n ? " and " : "", s->above_from, s->above_to - 1);
}

/* "512 bytes", "65536 bytes (64 KiB)": buf. */
static const char *bytes_text(char *buf, size_t size, uint64_t n)
{
	char h[16];

	if (n < 1024)
		snprintf(buf, size, "%" PRIu64 " bytes", n);
	else
		snprintf(buf, size, "%" PRIu64 " bytes (%s)", n, human_bytes(h, sizeof(h), n));
	return buf;
}

/* The registered consumers and producers of a queue, as status shows them. */
struct roles {
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_policy pol[MMAPQ_CONSUMERS_MAX];
	int n;
	struct mmapq_producer_status ps[MMAPQ_PRODUCERS_MAX];
	int np;
};

/* Whether any process holds a role of the queue. */
static bool in_use(const struct mmapq_status *st, const struct roles *ro)
{
	for (int i = 0; i < ro->n; i++)
		if (ro->cs[i].attached)
			return true;
	for (int i = 0; i < ro->np; i++)
		if (ro->ps[i].attached)
			return true;
	return st->producer.attached;
}

static void status_json(const char *path, const struct mmapq_status *st, const char *id,
                        const struct roles *ro, const struct blocked_info *b)
{
	bool legacy = st->version != MMAPQ_FILE_VERSION;
	/* JSON strings are Unicode: a name that is not UTF-8 goes as hex,
	 * under a key of its own (as dump's line_hex) */
	bool text = utf8_valid(path, strlen(path));

	printf("{\"%s\":", text ? "path" : "path_hex");
	(text ? json_string : json_hex)(stdout, path, strlen(path));
	printf(*id ? ",\"id\":\"%s\"" : ",\"id\":null", id);
	printf(",\"version\":%" PRIu32 ",\"format\":\"%s\",\"size\":%" PRIu64 ",\"max_record\":%" PRIu32,
	       st->version, mmapq_format_name(st->format), st->size, st->max_record);
	if (legacy)
		printf(",\"capacity\":%" PRIu32 ",\"slot_size\":%" PRIu32, st->capacity, st->slot_size);
	else
		printf(",\"capacity\":null,\"slot_size\":null");
	printf(",\"file_size\":%" PRIu64 ",\"created_usec\":%" PRIu64 ",\"head\":%" PRIu64
	       ",\"tail\":%" PRIu64 ",\"depth\":%" PRIu64 ",\"used_bytes\":%" PRIu64
	       ",\"used_percent\":%.1f,\"clean\":%s",
	       st->file_size, st->created_usec, st->head, st->tail, st->tail - st->head,
	       st->used_bytes, used_percent(st), legacy ? "null" : st->clean ? "true" : "false");
	printf(",\"salvage\":{\"count\":%" PRIu64 ",\"last_usec\":%" PRIu64 ",\"dropped_records\":%" PRIu64
	       ",\"dropped_bytes\":%" PRIu64 ",\"below_from\":%" PRIu64 ",\"below_to\":%" PRIu64
	       ",\"above_from\":%" PRIu64 ",\"above_to\":%" PRIu64 "},",
	       st->salvage.count, st->salvage.usec, salvage_dropped(&st->salvage),
	       st->salvage.dropped_bytes, st->salvage.below_from, st->salvage.below_to,
	       st->salvage.above_from, st->salvage.above_to);
	side_json("producer", &st->producer, "published", st->tail, b);
	putchar(',');
	side_json("consumer", &st->consumer, "consumed", st->head, NULL);
	printf(",\"max_consumers\":%" PRIu32 ",\"consumers\":", st->max_consumers);
	consumers_json(ro->cs, ro->pol, ro->n, st->attached_by_pid);
	printf(",\"max_producers\":%" PRIu32 ",\"producers\":", st->max_producers);
	producers_json(ro->ps, ro->np, st->attached_by_pid);
	printf(",\"attached_by\":\"%s\"}\n", st->attached_by_pid ? "pid" : "lock");
}

/* Each registered producer: its pid, what it published and its counters;
 * with several, each one's wait for room (with one, the queue's wait
 * below says it all). */
static void producers_text(const struct mmapq_status *st, const struct roles *ro)
{
	for (int i = 0; i < ro->np; i++) {
		const struct mmapq_producer_status *p = &ro->ps[i];
		struct mmapq_side_status s = {
			.pid = p->last_pid, .attached = p->attached, .start_usec = p->start_usec,
			.dropped = p->dropped, .bad_input = p->bad_input, .recoveries = p->recoveries,
			.attaches = p->attaches,
		};
		char label[MMAPQ_CONSUMER_NAME_MAX + 16], wait[128];

		snprintf(label, sizeof(label), "producer %.*s", MMAPQ_CONSUMER_NAME_MAX, p->name);
		side_text(label, &s, "published", p->published, NULL, st->attached_by_pid);
		if (ro->np > 1 && *producer_wait_text(wait, sizeof(wait), p))
			printf("%-10s %s\n", "", wait);
	}
	if (!ro->np && st->max_producers)
		printf("%-10s none registered (of %" PRIu32 ")\n", "producers", st->max_producers);
	else if (!ro->np)
		printf("%-10s never attached\n", "producer");
}

static void status_text(const char *path, const struct mmapq_status *st, const char *id,
                        const struct roles *ro, const struct blocked_info *b)
{
	const struct mmapq_consumer_status *cs = ro->cs;
	const struct mmapq_policy *pol = ro->pol;
	int n = ro->n;

	char when[32], h1[48], h2[48];

	iso_time(when, sizeof(when), st->created_usec);
	printf("%-10s %s\n", "queue", path);
	printf("%-10s %s\n", "id", *id ? id : "none yet (given when a producer or consumer attaches)");
	printf("%-10s version %" PRIu32 ", format %s, created %s\n", "format", st->version,
	       mmapq_format_name(st->format), when);
	if (st->version != MMAPQ_FILE_VERSION) {
		printf("%-10s capacity %" PRIu32 " slots of %" PRIu32 " bytes, record_size %" PRIu32
		       ", file %" PRIu64 " bytes (read only: mmapqctl recreate carries it over into a"
		       " version-%" PRIu32 " file)\n", "geometry", st->capacity, st->slot_size,
		       st->max_record, st->file_size, MMAPQ_FILE_VERSION);
		printf("%-10s head %" PRIu64 ", tail %" PRIu64 ", depth %" PRIu64 "/%" PRIu32
		       " records, %" PRIu64 " bytes (%.1f%%)\n", "positions", st->head, st->tail,
		       st->tail - st->head, st->capacity, st->used_bytes, used_percent(st));
	} else {
		printf("%-10s size %s, max_record %s, file %" PRIu64 " bytes\n", "geometry",
		       bytes_text(h1, sizeof(h1), st->size), bytes_text(h2, sizeof(h2), st->max_record),
		       st->file_size);
		printf("%-10s head %" PRIu64 ", tail %" PRIu64 ", depth %" PRIu64 " records, %" PRIu64
		       " bytes (%.1f%% of size)\n", "positions", st->head, st->tail, st->tail - st->head,
		       st->used_bytes, used_percent(st));
		if (st->clean)
			printf("%-10s clean (the last process to close it closed it cleanly)\n", "state");
		else if (in_use(st, ro))
			printf("%-10s in use (marked clean when the last process closes it)\n", "state");
		else
			printf("%-10s not clean (not closed cleanly: a crash or a power cut); the next"
			       " producer or consumer to attach checks every record, mmapqctl repair does it"
			       " now\n", "state");
		if (st->salvage.count) {
			char ranges[160];

			iso_time(when, sizeof(when), st->salvage.usec);
			salvage_ranges(ranges, sizeof(ranges), &st->salvage);
			printf("%-10s %" PRIu64 " salvage%s of a damaged file; the last, %s, dropped %" PRIu64
			       " records (%" PRIu64 " bytes): %s\n", "salvages", st->salvage.count,
			       st->salvage.count == 1 ? "" : "s", when, salvage_dropped(&st->salvage),
			       st->salvage.dropped_bytes, ranges);
		} else {
			printf("%-10s none\n", "salvages");
		}
	}
	producers_text(st, ro);
	blocked_text(b);
	for (int i = 0; i < n; i++) {
		struct mmapq_side_status s = {
			.pid = cs[i].pid, .attached = cs[i].attached, .start_usec = cs[i].start_usec,
			.recoveries = cs[i].recoveries, .attaches = cs[i].attaches,
		};
		char label[MMAPQ_CONSUMER_NAME_MAX + 16];

		snprintf(label, sizeof(label), "consumer %.*s", MMAPQ_CONSUMER_NAME_MAX, cs[i].name);
		side_text(label, &s, "consumed", cs[i].position, &cs[i], st->attached_by_pid);
		if (pol[i].on_full == MMAPQ_POLICY_SKIP || pol[i].skipped)
			printf("%-10s on_full = %s: %" PRIu64 " records lost to skips (%" PRIu64 " since it"
			       " last attached)\n", "", pol[i].on_full == MMAPQ_POLICY_SKIP ? "skip" : "block",
			       pol[i].skipped, pol[i].skipped_since_attach);
		if (pol[i].inactive_timeout_s)
			printf("%-10s inactive_timeout = %" PRIu32 " s: removed by the producer once not"
			       " attached that long\n", "", pol[i].inactive_timeout_s);
	}
	if (!n)
		printf("%-10s none registered (of %" PRIu32 ")\n", "consumers", st->max_consumers);
}

int status(struct mmapq *q, bool json)
{
	static struct roles ro;
	struct mmapq_status st;
	struct blocked_info b = {0};
	const char *path = mmapq_path(q);
	char id[2 * MMAPQ_ID_SIZE + 1];
	int r = mmapq_status(q, &st);

	if (r == 0)
		r = blocked_read(q, &b);
	if (r < 0) {
		log_error("%s: %s", path, mmapq_strerror(r));
		return EXIT_BADQUEUE;
	}
	id_hex(&st, id);
	ro.n = list_consumers(q, ro.cs, ro.pol);
	ro.np = ro.n < 0 ? 0 : list_producers(q, ro.ps);
	if (ro.n < 0 || ro.np < 0)
		return EXIT_BADQUEUE;
	if (json)
		status_json(path, &st, id, &ro, &b);
	else
		status_text(path, &st, id, &ro, &b);
	return EXIT_OK;
}

/* ---- the records ---- */

/* What to do with each record of the queue. */
struct reader {
	struct mmapq *q;
	uint32_t format;
	bool first;
	int (*record)(struct reader *rd, const struct mmapq_record *rec); /* 0 or an exit code */
};

/* record() for each record the queue keeps, oldest first (a record
 * consumed meanwhile is left out): 0 or an exit code (said). */
static int each_record(struct reader *rd)
{
	struct mmapq *q = rd->q;
	struct mmapq_status st;
	uint32_t size = mmapq_max_record(q);
	char *buf;
	int r = mmapq_status(q, &st), code = EXIT_OK;

	if (r < 0) {
		log_error("%s: %s", mmapq_path(q), mmapq_strerror(r));
		return EXIT_BADQUEUE;
	}
	rd->format = st.format;
	/* each record is copied out and its checksum checked before it is
	 * printed: its bytes may be reused under us */
	buf = malloc(size ? size : 1);
	if (!buf) {
		log_error("%s: out of memory", mmapq_path(q));
		return EXIT_IOERR;
	}
	for (uint64_t seq = st.head; seq < st.tail && !code; seq++) {
		struct mmapq_record rec;

		r = mmapq_peek(q, seq, buf, size, &rec);
		if (r == -ENOENT)
			continue; /* consumed while we were reading */
		if (r == -EBADMSG) {
			fflush(stdout);
			log_error("%s: record %" PRIu64 " is damaged (its checksum does not hold): stop the"
			          " daemons and run mmapqctl repair, which keeps the records before it and"
			          " says what it drops", mmapq_path(q), seq);
			code = EXIT_BADQUEUE;
		} else if (r < 0) {
			fflush(stdout);
			log_error("%s: record %" PRIu64 ": %s", mmapq_path(q), seq,
			          r == -EAGAIN ? "the consumers kept moving past it while it was read; try"
			                         " again" : mmapq_strerror(r));
			code = r == -EAGAIN ? EXIT_IOERR : EXIT_BADQUEUE;
		} else {
			code = rd->record(rd, &rec);
			rd->first = false;
		}
	}
	free(buf);
	return code;
}

static int dump_text(struct reader *rd, const struct mmapq_record *rec)
{
	if (rd->format == MMAPQ_FORMAT_INT) {
		int64_t v;

		memcpy(&v, rec->data, sizeof(v));
		printf("%" PRIu64 "\t%" PRId64 "\n", rec->seq, v);
	} else {
		printf("%" PRIu64 "\t", rec->seq);
		text_bytes(stdout, rec->data, rec->len);
		putchar('\n');
	}
	return EXIT_OK;
}

/* {"seq":N,"value":V}, {"seq":N,"line":"..."} (or "line_hex" where the
 * line is not UTF-8: JSON strings are Unicode), {"seq":N,"binary_hex":"..."} */
static int dump_json(struct reader *rd, const struct mmapq_record *rec)
{
	printf("%s{\"seq\":%" PRIu64 ",", rd->first ? "" : ",", rec->seq);
	if (rd->format == MMAPQ_FORMAT_INT) {
		int64_t v;

		memcpy(&v, rec->data, sizeof(v));
		printf("\"value\":%" PRId64 "}", v);
		return EXIT_OK;
	}
	if (rd->format == MMAPQ_FORMAT_LINE && utf8_valid(rec->data, rec->len)) {
		printf("\"line\":");
		json_string(stdout, rec->data, rec->len);
	} else {
		printf("\"%s_hex\":", rd->format == MMAPQ_FORMAT_LINE ? "line" : "binary");
		json_hex(stdout, rec->data, rec->len);
	}
	putchar('}');
	return EXIT_OK;
}

int dump(struct mmapq *q, bool json)
{
	struct reader rd = {.q = q, .first = true, .record = json ? dump_json : dump_text};
	int code;

	if (json)
		putchar('[');
	code = each_record(&rd);
	/* what came before a damaged record is still a whole JSON array */
	if (json)
		printf("]\n");
	return code;
}

/* Framed as the producer reads them: format int, a decimal number and a
 * newline; line, the line and a newline; binary, the length (4 bytes,
 * big-endian) and the bytes. */
static int export_record(struct reader *rd, const struct mmapq_record *rec)
{
	unsigned char prefix[4];
	size_t n;

	if (rd->format == MMAPQ_FORMAT_INT) {
		int64_t v;

		memcpy(&v, rec->data, sizeof(v));
		printf("%" PRId64 "\n", v);
		return EXIT_OK;
	}
	if (rd->format == MMAPQ_FORMAT_LINE && memchr(rec->data, '\n', rec->len)) {
		fflush(stdout);
		log_error("%s: record %" PRIu64 " holds a newline: no line can carry it", mmapq_path(rd->q),
		          rec->seq);
		return EXIT_BADQUEUE;
	}
	n = frame_prefix(rd->format, rec->len, prefix);
	fwrite(prefix, 1, n, stdout);
	fwrite(rec->data, 1, rec->len, stdout);
	fputs(frame_suffix(rd->format, rec->data, rec->len), stdout);
	if (ferror(stdout)) {
		log_error("stdout: %s", strerror(errno));
		return EXIT_IOERR;
	}
	return EXIT_OK;
}

int export_records(struct mmapq *q, bool json)
{
	struct reader rd = {.q = q, .first = true, .record = export_record};

	(void)json; /* refused before (main.c) */
	return each_record(&rd);
}
