/* SPDX-License-Identifier: MIT */
#include "protocol.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_word[] = {
	[PROTOCOL_ERR] = "ERR", [PROTOCOL_ACK] = "ACK", [PROTOCOL_OK] = "OK", [PROTOCOL_FAIL] = "FAIL",
};

/* n as snprintf returned it, for a line that must end in '\n' within
 * PROTOCOL_LINE_MAX: a longer one is cut and ends in '\n' all the same. */
static size_t fit(char *buf, int n)
{
	if (n < 0) {
		buf[0] = '\n';
		return 1;
	}
	if ((size_t)n >= PROTOCOL_LINE_MAX) {
		buf[PROTOCOL_LINE_MAX - 2] = '\n';
		return PROTOCOL_LINE_MAX - 1;
	}
	return (size_t)n;
}

size_t protocol_format_err(char *buf, uint64_t line, uint64_t column, const char *what,
                           const char *excerpt)
{
	return fit(buf, snprintf(buf, PROTOCOL_LINE_MAX, "ERR %" PRIu64 ":%" PRIu64 ": %s: '%s'\n",
	                         line, column, what, excerpt));
}

size_t protocol_format_counts(char *buf, enum protocol_kind kind, const char *reason,
                              const struct protocol_counts *c)
{
	char seq[24] = "-";

	if (c->published)
		snprintf(seq, sizeof(seq), "%" PRIu64, c->last_seq);
	return fit(buf, snprintf(buf, PROTOCOL_LINE_MAX,
	                         "%s%s%s published=%" PRIu64 " dropped=%" PRIu64 " rejected=%" PRIu64
	                         " last_seq=%s\n",
	                         kind_word[kind], kind == PROTOCOL_FAIL ? " " : "",
	                         kind == PROTOCOL_FAIL ? reason : "", c->published, c->dropped,
	                         c->rejected, seq));
}

/* "NAME=N" at *s (or "NAME=-" where dash is given: *dash then says so),
 * followed by a space or the end; *s moves past it. */
static bool field(const char **s, const char *name, uint64_t *v, bool *dash)
{
	size_t n = strlen(name);
	const char *p = *s + n;
	char *end;

	if (strncmp(*s, name, n))
		return false;
	if (dash)
		*dash = p[0] == '-' && (p[1] == ' ' || p[1] == '\0');
	if (dash && *dash) {
		*v = 0;
		end = (char *)p + 1;
	} else {
		if (p[0] < '0' || p[0] > '9')
			return false;
		errno = 0;
		*v = strtoull(p, &end, 10);
		if (errno)
			return false;
	}
	if (*end != ' ' && *end != '\0')
		return false;
	*s = *end ? end + 1 : end;
	return true;
}

/* "published=N dropped=D rejected=R last_seq=S[ key=value...]", S "-"
 * exactly when N is 0 */
static bool counts(const char *s, struct protocol_counts *c)
{
	bool none;

	return field(&s, "published=", &c->published, NULL) && field(&s, "dropped=", &c->dropped, NULL) &&
	       field(&s, "rejected=", &c->rejected, NULL) && field(&s, "last_seq=", &c->last_seq, &none) &&
	       none == (c->published == 0);
}

int protocol_parse(const char *line, struct protocol_reply *r)
{
	struct protocol_reply t = {.kind = PROTOCOL_OTHER};
	const char *rest = NULL;

	for (int k = PROTOCOL_ERR; k <= PROTOCOL_FAIL; k++) {
		size_t n = strlen(kind_word[k]);
		if (!strncmp(line, kind_word[k], n) && line[n] == ' ') {
			t.kind = (enum protocol_kind)k;
			rest = line + n + 1;
			break;
		}
	}
	switch (t.kind) {
	case PROTOCOL_ERR:
		t.text = rest;
		break;
	case PROTOCOL_ACK:
	case PROTOCOL_OK:
		if (!counts(rest, &t.counts))
			return -EBADMSG;
		break;
	case PROTOCOL_FAIL:
		t.text = rest;
		rest = strstr(rest, " published=");
		if (!rest || !counts(rest + 1, &t.counts))
			return -EBADMSG;
		break;
	case PROTOCOL_OTHER:
		break;
	}
	*r = t;
	return 0;
}
