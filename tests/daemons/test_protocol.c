/* SPDX-License-Identifier: MIT */
/*
 * test_protocol -- the reply lines of the producer's socket protocol
 * (daemons/producer/protocol.c): what the producer formats, `mmapqctl
 * send` parses back to the same counts, and what a later version may add
 * is ignored, not refused.
 *
 *   round_trip  every kind formatted and parsed back, with and without a
 *               record published ("last_seq=-")
 *   cut         an ERR line longer than the limit is cut and still ends in
 *               '\n' within PROTOCOL_LINE_MAX bytes
 *   later       unknown kinds and appended key=value fields are accepted
 *   malformed   counts that are missing, not numbers, signed, or whose
 *               last_seq disagrees with published: -EBADMSG, the reply
 *               untouched
 *   binary_err  the ERR line of a binary record the parser refuses: its
 *               record number, the byte where its length prefix starts,
 *               the prefix escaped: one line of printable text that parses
 *               back
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "producer/protocol.h"
#include "testutil.h"

#define EXPECT(cond, ...) TU_EXPECT("", cond, __VA_ARGS__)

/* buf without its '\n', NUL-terminated in place */
static char *line_of(char *buf, size_t n)
{
	EXPECT(n > 0 && n < PROTOCOL_LINE_MAX && buf[n - 1] == '\n', "line of %zu bytes: '%.*s'", n,
	       (int)n, buf);
	buf[n - 1] = '\0';
	return buf;
}

static void case_round_trip(void)
{
	static const struct {
		enum protocol_kind kind;
		const char *reason, *want;
		struct protocol_counts c;
	} t[] = {
		{PROTOCOL_ACK, NULL, "ACK published=3 dropped=0 rejected=1 last_seq=2", {3, 0, 1, 2}},
		{PROTOCOL_OK, NULL, "OK published=0 dropped=5 rejected=0 last_seq=-", {0, 5, 0, 0}},
		{PROTOCOL_FAIL, PROTOCOL_FAIL_IDLE, "FAIL idle published=1 dropped=0 rejected=0 last_seq=0",
		 {1, 0, 0, 0}},
		{PROTOCOL_FAIL, PROTOCOL_FAIL_STOPPING,
		 "FAIL stopping published=18446744073709551615 dropped=0 rejected=0 last_seq=9",
		 {UINT64_MAX, 0, 0, 9}},
	};
	char buf[PROTOCOL_LINE_MAX];
	struct protocol_reply r;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *l = line_of(buf, protocol_format_counts(buf, t[i].kind, t[i].reason, &t[i].c));
		EXPECT(!strcmp(l, t[i].want), "formatted '%s', want '%s'", l, t[i].want);
		EXPECT(protocol_parse(l, &r) == 0 && r.kind == t[i].kind &&
		       !memcmp(&r.counts, &t[i].c, sizeof(r.counts)), "'%s' does not parse back", l);
		if (t[i].kind == PROTOCOL_FAIL)
			EXPECT(!strncmp(r.text, t[i].reason, strlen(t[i].reason)), "FAIL reason '%s'", r.text);
	}
	line_of(buf, protocol_format_err(buf, 7, 12, "not a decimal integer", "x"));
	EXPECT(!strcmp(buf, "ERR 7:12: not a decimal integer: 'x'"), "ERR line '%s'", buf);
	EXPECT(protocol_parse(buf, &r) == 0 && r.kind == PROTOCOL_ERR &&
	       !strcmp(r.text, "7:12: not a decimal integer: 'x'"), "ERR parsed as '%s'", r.text);
}

static void case_cut(void)
{
	char buf[PROTOCOL_LINE_MAX], what[400];
	size_t n;

	memset(what, 'w', sizeof(what) - 1);
	what[sizeof(what) - 1] = '\0';
	n = protocol_format_err(buf, UINT64_MAX, UINT64_MAX, what, what);
	EXPECT(n == PROTOCOL_LINE_MAX - 1, "an over-long ERR line is %zu bytes", n);
	line_of(buf, n);
	EXPECT(!strncmp(buf, "ERR 18446744073709551615:", 25), "cut line starts '%.30s'", buf);
}

static void case_later(void)
{
	struct protocol_reply r;

	EXPECT(protocol_parse("WARN something new", &r) == 0 && r.kind == PROTOCOL_OTHER,
	       "an unknown kind is not ignored");
	EXPECT(protocol_parse("ACK published=2 dropped=0 rejected=0 last_seq=1 bytes=10 x=y", &r) == 0 &&
	       r.kind == PROTOCOL_ACK && r.counts.published == 2 && r.counts.last_seq == 1,
	       "appended fields make an ACK line unreadable");
	EXPECT(protocol_parse("FAIL overloaded published=0 dropped=0 rejected=0 last_seq=- retry=5",
	                      &r) == 0 && r.kind == PROTOCOL_FAIL && !strncmp(r.text, "overloaded", 10),
	       "a FAIL reason of a later version is not read");
}

static void case_malformed(void)
{
	static const char *const bad[] = {
		"ACK published=1 dropped=0 rejected=0",
		"ACK published=1 dropped=0 rejected=0 last_seq=-",
		"ACK published=0 dropped=0 rejected=0 last_seq=4",
		"OK published=x dropped=0 rejected=0 last_seq=-",
		"OK published=+1 dropped=0 rejected=0 last_seq=0",
		"OK published=-1 dropped=0 rejected=0 last_seq=0",
		"OK published=1 dropped=0 rejected=0 last_seq=0x",
		"OK published=99999999999999999999 dropped=0 rejected=0 last_seq=0",
		"OK published=1  dropped=0 rejected=0 last_seq=0",
		"FAIL idle",
		"OK ",
	};
	struct protocol_reply r = {.kind = PROTOCOL_OTHER, .counts = {.published = 42}};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT(protocol_parse(bad[i], &r) == -EBADMSG, "'%s' is accepted", bad[i]);
		EXPECT(r.kind == PROTOCOL_OTHER && r.counts.published == 42,
		       "'%s' changed the reply although refused", bad[i]);
	}
}


/* The ERR lines a binary parse gives (as the producer formats them). */
struct err_lines {
	char text[4 * PROTOCOL_LINE_MAX];
	size_t len;
};

static int ignore_record(void *ctx, const void *data, uint32_t len)
{
	(void)ctx;
	(void)data;
	(void)len;
	return 0;
}

static void err_line(void *ctx, const struct mmapq_parse_error *e)
{
	struct err_lines *l = ctx;

	EXPECT(l->len + PROTOCOL_LINE_MAX <= sizeof(l->text), "too many ERR lines");
	l->len += protocol_format_err(l->text + l->len, e->line, e->column, e->what, e->excerpt);
	l->text[l->len] = '\0';
}

static void case_binary_err(void)
{
	/* "ab", then a length of 1025 (max_record is 8), then one whose
	 * prefix bytes are a quote, a backslash, LF and CR */
	static const char in[] = "\0\0\0\2ab\0\0\x04\x01";
	static const char in2[] = "\x27\x5c\x0a\x0d";
	struct err_lines l = {{0}, 0};
	struct mmapq_parser *p;
	struct protocol_reply r;
	char *nl;

	EXPECT(mmapq_parser_new(MMAPQ_FORMAT_BINARY, 8, ignore_record, err_line, &l, &p) == 0, "parser");
	EXPECT(mmapq_parser_feed(p, in, sizeof(in) - 1) == 0, "feed");
	mmapq_parser_free(p);
	EXPECT(!strcmp(l.text, "ERR 2:7: record longer than max_record: '\\x00\\x00\\x04\\x01'\n"),
	       "ERR line '%s'", l.text);
	l.len = 0;
	EXPECT(mmapq_parser_new(MMAPQ_FORMAT_BINARY, 8, ignore_record, err_line, &l, &p) == 0, "parser");
	EXPECT(mmapq_parser_feed(p, in2, sizeof(in2) - 1) == 0, "feed");
	mmapq_parser_free(p);
	EXPECT(!strcmp(l.text, "ERR 1:1: record longer than max_record: ''\\\\\\x0a\\x0d'\n"),
	       "ERR line '%s'", l.text);
	for (const char *c = l.text; *c; c++)
		EXPECT((*c >= 0x20 && *c < 0x7f) || (*c == '\n' && !c[1]), "byte 0x%02x in '%s'",
		       (unsigned)(unsigned char)*c, l.text);
	nl = strchr(l.text, '\n');
	*nl = '\0';
	EXPECT(protocol_parse(l.text, &r) == 0 && r.kind == PROTOCOL_ERR &&
	       !strcmp(r.text, "1:1: record longer than max_record: ''\\\\\\x0a\\x0d'"),
	       "parsed back as '%s'", r.text);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"round_trip", case_round_trip},
		{"cut", case_cut},
		{"later", case_later},
		{"malformed", case_malformed},
		{"binary_err", case_binary_err},
	};

	return tu_main_cases(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
