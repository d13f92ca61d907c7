/* SPDX-License-Identifier: MIT */
/*
 * inspect.c -- `status` (geometry, positions, counters, the pid in each role
 * and whether it is alive) and `dump` (the records kept, oldest first), as
 * text or JSON (the schema: mmapqctl(1), JSON OUTPUT).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "exit.h"
#include "log.h"

/* by_pid: the lock file could not be read, "attached" is whether the pid
 * is alive (mmapq_status.attached_by_pid) */
static void side_text(const char *name, const struct mmapq_side_status *s, const char *count_name,
                      uint64_t count, bool producer, bool by_pid)
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
	if (producer)
		printf(", dropped %" PRIu64 ", bad input %" PRIu64, s->dropped, s->bad_input);
	printf(", recoveries %" PRIu64 ", attaches %" PRIu64 "\n", s->recoveries, s->attaches);
}

/* The producer's object has its dropped and bad_input counters, the
 * consumer's has neither (the schema: mmapqctl(1), JSON OUTPUT). */
static void side_json(const char *name, const struct mmapq_side_status *s, const char *count_name,
                      uint64_t count, bool producer)
{
	printf("\"%s\":{\"pid\":%" PRId32 ",\"attached\":%s,\"start_usec\":%" PRIu64 ",\"%s\":%" PRIu64,
	       name, s->pid, s->attached ? "true" : "false", s->start_usec, count_name, count);
	if (producer)
		printf(",\"dropped\":%" PRIu64 ",\"bad_input\":%" PRIu64, s->dropped, s->bad_input);
	printf(",\"recoveries\":%" PRIu64 ",\"attaches\":%" PRIu64 "}", s->recoveries, s->attaches);
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

int status(struct mmapq *q, bool json)
{
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_status st;
	const char *path = mmapq_path(q);
	char id[2 * MMAPQ_ID_SIZE + 1];
	int r = mmapq_status(q, &st), n;

	if (r < 0) {
		log_error("%s: %s", path, mmapq_strerror(r));
		return EXIT_BADQUEUE;
	}
	id_hex(&st, id);
	n = list_consumers(q, cs);
	if (n < 0)
		return EXIT_BADQUEUE;
	if (json) {
		/* JSON strings are Unicode: a name that is not UTF-8 goes as hex,
		 * under a key of its own (as dump's line_hex) */
		bool text = utf8_valid(path, strlen(path));
		printf("{\"%s\":", text ? "path" : "path_hex");
		(text ? json_string : json_hex)(stdout, path, strlen(path));
		printf(*id ? ",\"id\":\"%s\"" : ",\"id\":null", id);
		printf(",\"version\":%" PRIu32 ",\"format\":\"%s\",\"capacity\":%" PRIu32
		       ",\"record_size\":%" PRIu32 ",\"slot_size\":%" PRIu32 ",\"file_size\":%" PRIu64
		       ",\"created_usec\":%" PRIu64 ",\"head\":%" PRIu64 ",\"tail\":%" PRIu64
		       ",\"depth\":%" PRIu64 ",",
		       st.version, mmapq_format_name(st.format), st.capacity, st.max_record,
		       st.slot_size, st.file_size, st.created_usec, st.head, st.tail, st.tail - st.head);
		side_json("producer", &st.producer, "published", st.tail, true);
		putchar(',');
		side_json("consumer", &st.consumer, "consumed", st.head, false);
		printf(",\"max_consumers\":%" PRIu32 ",\"consumers\":", st.max_consumers);
		consumers_json(cs, n, st.attached_by_pid);
		printf(",\"attached_by\":\"%s\"}\n", st.attached_by_pid ? "pid" : "lock");
	} else {
		char when[32];
		iso_time(when, sizeof(when), st.created_usec);
		printf("%-10s %s\n", "queue", path);
		printf("%-10s %s\n", "id", *id ? id : "none yet (given when a producer or consumer attaches)");
		printf("%-10s version %" PRIu32 ", format %s, record_size %" PRIu32 ", capacity %" PRIu32
		       ", file %" PRIu64 " bytes, created %s\n",
		       "format", st.version, mmapq_format_name(st.format), st.max_record, st.capacity,
		       st.file_size, when);
		printf("%-10s head %" PRIu64 ", tail %" PRIu64 ", depth %" PRIu64 "/%" PRIu32 "\n",
		       "positions", st.head, st.tail, st.tail - st.head, st.capacity);
		side_text("producer", &st.producer, "published", st.tail, true, st.attached_by_pid);
		for (int i = 0; i < n; i++) {
			struct mmapq_side_status s = {
				.pid = cs[i].pid, .attached = cs[i].attached, .start_usec = cs[i].start_usec,
				.recoveries = cs[i].recoveries, .attaches = cs[i].attaches,
			};
			char label[MMAPQ_CONSUMER_NAME_MAX + 16];

			snprintf(label, sizeof(label), "consumer %.*s", MMAPQ_CONSUMER_NAME_MAX, cs[i].name);
			side_text(label, &s, "consumed", cs[i].position, false, st.attached_by_pid);
		}
		if (!n)
			printf("%-10s none registered (of %" PRIu32 ")\n", "consumers", st.max_consumers);
	}
	return EXIT_OK;
}

int dump(struct mmapq *q, bool json)
{
	struct mmapq_status st;
	bool first = true;
	char *buf;
	int r = mmapq_status(q, &st);

	if (r < 0) {
		log_error("%s: %s", mmapq_path(q), mmapq_strerror(r));
		return EXIT_BADQUEUE;
	}
	/* each record is copied out and checked before it is printed: the
	 * slots may be reused under us */
	buf = malloc(mmapq_max_record(q));
	if (!buf) {
		log_error("%s: out of memory", mmapq_path(q));
		return EXIT_IOERR;
	}
	if (json)
		printf("[");
	for (uint64_t seq = st.head; seq < st.tail; seq++) {
		struct mmapq_record rec;

		r = mmapq_peek(q, seq, buf, mmapq_max_record(q), &rec);
		if (r == -ENOENT)
			continue; /* consumed while we were reading */
		if (r < 0) {
			if (json)
				printf("]\n");
			fflush(stdout);
			log_error("%s: record %" PRIu64 ": %s", mmapq_path(q), seq, mmapq_strerror(r));
			free(buf);
			return EXIT_BADQUEUE;
		}
		if (st.format == MMAPQ_FORMAT_INT) {
			int64_t v;
			memcpy(&v, rec.data, sizeof(v));
			if (json)
				printf("%s{\"seq\":%" PRIu64 ",\"value\":%" PRId64 "}", first ? "" : ",",
				       seq, v);
			else
				printf("%" PRIu64 "\t%" PRId64 "\n", seq, v);
		} else if (json) {
			/* JSON strings are Unicode: bytes that are not UTF-8 go as hex */
			bool text = utf8_valid(rec.data, rec.len);
			printf("%s{\"seq\":%" PRIu64 ",\"%s\":", first ? "" : ",", seq,
			       text ? "line" : "line_hex");
			(text ? json_string : json_hex)(stdout, rec.data, rec.len);
			putchar('}');
		} else {
			printf("%" PRIu64 "\t", seq);
			text_bytes(stdout, rec.data, rec.len);
			putchar('\n');
		}
		first = false;
	}
	free(buf);
	if (json)
		printf("]\n");
	return EXIT_OK;
}
