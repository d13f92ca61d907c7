/* SPDX-License-Identifier: MIT */
/*
 * mmapqctl -- inspect a queue file without disturbing it.
 *
 *   mmapqctl [--json] status   geometry, positions, depth, counters, and
 *                              the pid in each role with whether it is alive
 *   mmapqctl [--json] dump     the unconsumed records with their sequence
 *                              numbers
 *   mmapqctl send [VALUE...]   send records (the arguments, else stdin) to the
 *                              producer's socket; exits 0 only once the
 *                              producer acknowledged them all as published
 *
 * status and dump open the file read-only as an observer: no lock, no
 * write, so they can neither hang on a stale mutex nor disturb the daemons.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "mmapq.h"
#include "mmapq_format.h"

/* Length of the valid UTF-8 sequence at p (1..4), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
	size_t n;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		n = 2, cp = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3, cp = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* no overlong forms, no surrogates, nothing past U+10FFFF */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

static bool utf8_valid(const char *s, size_t len)
{
	for (size_t i = 0, n; i < len; i += n)
		if (!(n = utf8_seq((const unsigned char *)s + i, len - i)))
			return false;
	return true;
}

/* s must be valid UTF-8 (utf8_valid); it is written as is, escaped only
 * where JSON requires it. */
static void json_string(FILE *f, const char *s, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_hex(FILE *f, const char *s, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++)
		fprintf(f, "%02x", (unsigned char)s[i]);
	fputc('"', f);
}

static void text_bytes(FILE *f, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\\')
			fputs("\\\\", f);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\x%02x", ch);
		else
			fputc(ch, f);
	}
}

static void iso_time(char *buf, size_t size, uint64_t usec)
{
	time_t t = (time_t)(usec / 1000000u);
	struct tm tm;

	if (!usec || !gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "never");
}

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

static void side_json(const char *name, const struct mmapq_side_status *s, const char *count_name,
                      uint64_t count)
{
	printf("\"%s\":{\"pid\":%" PRId32 ",\"attached\":%s,\"start_usec\":%" PRIu64
	       ",\"%s\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"bad_input\":%" PRIu64
	       ",\"recoveries\":%" PRIu64 ",\"attaches\":%" PRIu64 "}",
	       name, s->pid, s->attached ? "true" : "false", s->start_usec, count_name, count,
	       s->dropped, s->bad_input, s->recoveries, s->attaches);
}

static int status(struct mmapq *q, bool json)
{
	struct mmapq_status st;
	const char *path = mmapq_path(q);
	int r = mmapq_status(q, &st);

	if (r < 0) {
		log_error("%s: %s", path, mmapq_strerror(r));
		return EXIT_BADQUEUE;
	}
	if (json) {
		printf("{\"path\":");
		if (utf8_valid(path, strlen(path)))
			json_string(stdout, path, strlen(path));
		else
			json_hex(stdout, path, strlen(path));
		printf(",\"version\":%" PRIu32 ",\"format\":\"%s\",\"capacity\":%" PRIu32
		       ",\"record_size\":%" PRIu32 ",\"slot_size\":%" PRIu32 ",\"file_size\":%" PRIu64
		       ",\"created_usec\":%" PRIu64 ",\"head\":%" PRIu64 ",\"tail\":%" PRIu64
		       ",\"depth\":%" PRIu64 ",",
		       st.version, mmapq_format_name(st.format), st.capacity, st.record_size,
		       st.slot_size, st.file_size, st.created_usec, st.head, st.tail, st.tail - st.head);
		side_json("producer", &st.producer, "published", st.tail);
		putchar(',');
		side_json("consumer", &st.consumer, "consumed", st.head);
		printf(",\"attached_by\":\"%s\"}\n", st.attached_by_pid ? "pid" : "lock");
	} else {
		char when[32];
		iso_time(when, sizeof(when), st.created_usec);
		printf("%-10s %s\n", "queue", path);
		printf("%-10s version %" PRIu32 ", format %s, record_size %" PRIu32 ", capacity %" PRIu32
		       ", file %" PRIu64 " bytes, created %s\n",
		       "format", st.version, mmapq_format_name(st.format), st.record_size, st.capacity,
		       st.file_size, when);
		printf("%-10s head %" PRIu64 ", tail %" PRIu64 ", depth %" PRIu64 "/%" PRIu32 "\n",
		       "positions", st.head, st.tail, st.tail - st.head, st.capacity);
		side_text("producer", &st.producer, "published", st.tail, true, st.attached_by_pid);
		side_text("consumer", &st.consumer, "consumed", st.head, false, st.attached_by_pid);
	}
	return EXIT_OK;
}

static int dump(struct mmapq *q, bool json)
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
	buf = malloc(mmapq_record_size(q));
	if (!buf) {
		log_error("%s: out of memory", mmapq_path(q));
		return EXIT_IOERR;
	}
	if (json)
		printf("[");
	for (uint64_t seq = st.head; seq < st.tail; seq++) {
		struct mmapq_record rec;

		r = mmapq_peek(q, seq, buf, mmapq_record_size(q), &rec);
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

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t k = write(fd, p, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

static int ack_field(const char **s, const char *name, unsigned long long *v)
{
	size_t n = strlen(name);
	char *end;

	if (strncmp(*s, name, n))
		return -EINVAL;
	errno = 0;
	*v = strtoull(*s + n, &end, 10);
	if (errno || end == *s + n || *end != ' ')
		return -EINVAL;
	*s = end + 1;
	return 0;
}

/* "published=N dropped=D rejected=R last_seq=S", S a number or "-" */
static int parse_ack(const char *s, unsigned long long *published, unsigned long long *dropped,
                     unsigned long long *rejected, char *last_seq, size_t size)
{
	if (ack_field(&s, "published=", published) || ack_field(&s, "dropped=", dropped) ||
	    ack_field(&s, "rejected=", rejected) || strncmp(s, "last_seq=", 9) ||
	    strlen(s + 9) >= size || !s[9] || strspn(s + 9, "0123456789-") != strlen(s + 9))
		return -EINVAL;
	strcpy(last_seq, s + 9);
	return 0;
}

/*
 * The producer answers "ERR LINE:COL: ..." per rejected record and, after
 * everything we sent is published, "OK published=N dropped=D rejected=R
 * last_seq=S" (or "FAIL ..." if it stops first).
 */
static int send_records(const char *path, int nvalues, char **values)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	unsigned long long published = 0, dropped = 0, rejected = 0;
	char last_seq[32] = "-", *line = NULL;
	bool acked = false;
	size_t cap = 0;
	FILE *in;
	int fd, r = 0;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("%s: socket path too long", path);
		return EXIT_USAGE;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		log_error("%s: cannot connect to the producer: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_UNAVAILABLE;
	}
	if (nvalues) {
		for (int i = 0; i < nvalues && r == 0; i++) {
			r = write_all(fd, values[i], strlen(values[i]));
			if (r == 0)
				r = write_all(fd, "\n", 1);
		}
	} else {
		char buf[65536];
		ssize_t n;
		while ((n = read(STDIN_FILENO, buf, sizeof(buf))) != 0 && r == 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				log_error("stdin: %s", strerror(errno));
				close(fd);
				return EXIT_IOERR;
			}
			r = write_all(fd, buf, (size_t)n);
		}
	}
	if (r < 0) {
		log_error("%s: send: %s", path, strerror(-r));
		close(fd);
		return EXIT_IOERR;
	}
	shutdown(fd, SHUT_WR); /* end of our records: the producer acknowledges */
	in = fdopen(fd, "r");
	if (!in) {
		close(fd);
		return EXIT_IOERR;
	}
	while (getline(&line, &cap, in) > 0) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "ERR ", 4)) {
			log_plain("%s: rejected: %s", path, line + 4);
		} else if (!strncmp(line, "OK ", 3) &&
		           parse_ack(line + 3, &published, &dropped, &rejected, last_seq,
		                     sizeof(last_seq)) == 0) {
			acked = true;
		} else {
			log_error("%s: producer: %s", path, line);
		}
	}
	free(line);
	fclose(in);
	if (!acked) {
		log_error("%s: the producer closed the connection without acknowledging"
		          " (some records may have been published)", path);
		return EXIT_IOERR;
	}
	printf("published %llu, last seq %s", published, last_seq);
	if (rejected || dropped)
		printf(", rejected %llu, dropped %llu", rejected, dropped);
	putchar('\n');
	return rejected ? EXIT_DATAERR : dropped ? EXIT_TEMPFAIL : EXIT_OK;
}

int main(int argc, char **argv)
{
	struct mmapq_config cfg;
	struct mmapq_params qp;
	struct mmapq_error err;
	struct mmapq *q;
	struct cli c;
	const char *cmd;
	int r, code;

	log_init("mmapqctl");
	cli_parse(&c, argc, argv, " status|dump [--json] | send [--socket PATH] [VALUE...]", false, true);
	/* send --socket needs nothing from the configuration */
	if (c.socket_path && c.argi < argc && !strcmp(argv[c.argi], "send") && !c.check_config)
		return send_records(c.socket_path, argc - c.argi - 1, argv + c.argi + 1);
	code = cli_load_config(&c, &cfg);
	if (code)
		return code;
	if (c.check_config) {
		return cli_check_config_result(&c);
	}
	if (c.argi >= argc) {
		fprintf(stderr, "%s: missing command: status, dump or send\n", c.prog);
		return EXIT_USAGE;
	}
	cmd = argv[c.argi];
	if (!strcmp(cmd, "send"))
		return send_records(c.socket_path ? c.socket_path : cfg.socket_path, argc - c.argi - 1,
		                    argv + c.argi + 1);
	if ((strcmp(cmd, "status") && strcmp(cmd, "dump")) || c.argi + 1 != argc) {
		fprintf(stderr, "%s: unknown command or extra argument: '%s' (status, dump or send)\n", c.prog,
		        c.argi + 1 != argc ? argv[c.argi + 1] : cmd);
		return EXIT_USAGE;
	}
	qp = cli_queue_params(&cfg, MMAPQ_ROLE_OBSERVER);
	qp.capacity = qp.record_size = qp.format = 0; /* describe whatever is there */
	cli_sigbus_guard(qp.path);
	r = mmapq_open(&qp, &q, &err);
	if (r < 0) {
		log_error("%s", err.msg);
		return cli_exit_code_for_open(r);
	}
	code = !strcmp(cmd, "status") ? status(q, c.json) : dump(q, c.json);
	mmapq_close(q);
	if (fflush(stdout) != 0 && code == EXIT_OK) {
		log_error("stdout: %s", strerror(errno));
		code = EXIT_IOERR;
	}
	return code;
}
