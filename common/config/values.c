/* SPDX-License-Identifier: MIT */
/*
 * values.c -- one value of mmapq.ini by its type (enum cfg_type): parsed
 * and checked from its text, described for an error message, formatted
 * back to text.  Nothing here knows which keys there are.
 */
#include "config_keys.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct cfg_name *cfg_name_by_name(const struct cfg_name *n, const char *s)
{
	for (; n->name; n++)
		if (!strcmp(n->name, s))
			return n;
	return NULL;
}

const struct cfg_name *cfg_name_by_value(const struct cfg_name *n, uint32_t v)
{
	for (; n->name; n++)
		if (n->value == v)
			return n;
	return NULL;
}

/* A blank around a comma of a list value. */
static bool cfg_isspace_c(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Digits only, the len bytes at s, in the given base: no sign, no blanks,
 * no prefix, nothing after.  -EINVAL if that is not what they are (whatever
 * their number), else -ERANGE past UINT64_MAX. */
static int cfg_parse_uint(const char *s, size_t len, unsigned base, uint64_t *ret)
{
	uint64_t v = 0;
	bool over = false;

	if (!len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned)(s[i] - '0');
		if (d >= base)
			return -EINVAL;
		/* keep going past an overflow: "99999999999999999999x" is not a
		 * number at all */
		if (v > (UINT64_MAX - d) / base)
			over = true;
		v = v * base + d;
	}
	if (over)
		return -ERANGE;
	*ret = v;
	return 0;
}

/* The units of a number of bytes: K, M and G, powers of 1024 (as systemd's
 * and Vector's sizes; upper case only, no "B", no blank). */
static const char cfg_units[] = "KMG";

/* Bytes: decimal digits and one unit if you like.  -EINVAL if it is not
 * that, -ERANGE past UINT64_MAX. */
static int cfg_parse_bytes(const char *s, uint64_t *ret)
{
	size_t len = strlen(s);
	const char *u = len ? strchr(cfg_units, s[len - 1]) : NULL;
	unsigned shift = 0;
	uint64_t v;
	int r;

	if (u && *u) {
		shift = 10u * (unsigned)(u - cfg_units + 1);
		len--;
	}
	r = cfg_parse_uint(s, len, 10, &v);
	if (r < 0)
		return r;
	if (v > UINT64_MAX >> shift)
		return -ERANGE;
	*ret = v << shift;
	return 0;
}

/* n bytes as the shortest exact text in the largest unit: "4M", "64K",
 * "65544" */
static int cfg_format_bytes(uint64_t n, char *buf, size_t size)
{
	for (unsigned i = sizeof(cfg_units) - 1; n && i > 0; i--) {
		unsigned shift = 10u * i;

		if (n % (UINT64_C(1) << shift) == 0)
			return snprintf(buf, size, "%" PRIu64 "%c", n >> shift, cfg_units[i - 1]);
	}
	return snprintf(buf, size, "%" PRIu64, n);
}

/* The units of a duration in seconds: s, m, h and d (as systemd's, one
 * unit, no blank). */
static const struct {
	char unit;
	uint32_t seconds;
} cfg_time_units[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};

/* Seconds: decimal digits and one unit if you like (none: seconds).
 * -EINVAL if it is not that, -ERANGE past UINT64_MAX. */
static int cfg_parse_duration(const char *s, uint64_t *ret)
{
	size_t len = strlen(s);
	uint64_t v, mul = 1;
	int r;

	for (size_t i = 0; len && i < sizeof(cfg_time_units) / sizeof(cfg_time_units[0]); i++)
		if (s[len - 1] == cfg_time_units[i].unit) {
			mul = cfg_time_units[i].seconds;
			len--;
			break;
		}
	r = cfg_parse_uint(s, len, 10, &v);
	if (r < 0)
		return r;
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*ret = v * mul;
	return 0;
}

/* n seconds as the shortest exact text in the largest unit: "1h", "90s",
 * "0" */
static int cfg_format_duration(uint64_t n, char *buf, size_t size)
{
	for (size_t i = 0; n && i < sizeof(cfg_time_units) / sizeof(cfg_time_units[0]); i++)
		if (n % cfg_time_units[i].seconds == 0)
			return snprintf(buf, size, "%" PRIu64 "%c", n / cfg_time_units[i].seconds,
			                cfg_time_units[i].unit);
	return snprintf(buf, size, "%" PRIu64, n);
}

/* One server of [nats] servers, s[0..len): [nats:// | tls://] HOST [:PORT],
 * HOST a name, an IPv4 address or an [IPv6] address.  NULL or why not. */
static const char *cfg_check_server(const char *s, size_t len)
{
	static const char name_chars[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_";
	const char *end = s + len, *host, *colon;

	if (len > 7 && !strncmp(s, "nats://", 7))
		s += 7;
	else if (len > 6 && !strncmp(s, "tls://", 6))
		s += 6;
	else if (memmem(s, len, "://", 3))
		return "has a scheme other than nats:// or tls://";
	if (memchr(s, '@', (size_t)(end - s)))
		return "has a user or password in it (use [nats] credentials)";
	host = s;
	if (*s == '[') {
		const char *close = memchr(s, ']', (size_t)(end - s));
		if (!close || close == s + 1)
			return "has a bad [IPv6] address";
		for (const char *p = s + 1; p < close; p++)
			if (!strchr("0123456789abcdefABCDEF:.", *p))
				return "has a bad [IPv6] address";
		s = close + 1;
		if (s < end && *s != ':')
			return "has something after the ]";
	} else {
		size_t hlen;

		colon = memchr(s, ':', (size_t)(end - s));
		hlen = (size_t)((colon ? colon : end) - host);
		s = host + hlen;
		if (!hlen)
			return "has no host";
		for (size_t i = 0; i < hlen; i++)
			if (!strchr(name_chars, host[i]))
				return "has a bad host name";
	}
	if (s < end) {
		unsigned long port = 0;

		s++; /* the ':' */
		if (s == end || end - s > 5)
			return "has a bad port";
		for (; s < end; s++) {
			if (*s < '0' || *s > '9')
				return "has a bad port";
			port = port * 10 + (unsigned long)(*s - '0');
		}
		if (port < 1 || port > 65535)
			return "has a port outside 1..65535";
	}
	return NULL;
}

/* [nats] servers: 1 to MMAPQ_NATS_SERVERS_MAX of cfg_check_server, comma-
 * separated, blanks around the commas allowed.  NULL or why not. */
static const char *cfg_check_servers(const char *v)
{
	unsigned n = 0;

	for (;;) {
		const char *comma = strchr(v, ','), *end = comma ? comma : v + strlen(v);
		const char *why;

		while (v < end && cfg_isspace_c(*v))
			v++;
		while (end > v && cfg_isspace_c(end[-1]))
			end--;
		if (v == end)
			return "has an empty entry";
		if (++n > MMAPQ_NATS_SERVERS_MAX)
			return "names too many servers";
		why = cfg_check_server(v, (size_t)(end - v));
		if (why)
			return why;
		if (!comma)
			return NULL;
		v = comma + 1;
	}
}

/* A subject to publish to: dot-separated tokens of visible ASCII, none
 * empty, no wildcards ('*', '>').  NULL or why not. */
static const char *cfg_check_subject(const char *v)
{
	bool token_empty = true;

	for (; *v; v++) {
		if (*v == '.') {
			if (token_empty)
				return "has an empty token (\"..\", or a dot at an end)";
			token_empty = true;
			continue;
		}
		if (*v == '*' || *v == '>')
			return "has a wildcard (records are published to one subject)";
		if ((unsigned char)*v <= 0x20 || (unsigned char)*v >= 0x7f)
			return "has a blank or a byte outside visible ASCII";
		token_empty = false;
	}
	return token_empty ? "has an empty token (\"..\", or a dot at an end)" : NULL;
}

/* [consumer] output's values (outputs.def). */
static const struct {
	const char *name, *arg;
} outputs[] = {
#define OUTPUT(name, arg, impl) {#name, arg},
#include "outputs.def"
#undef OUTPUT
};

const char *mmapq_config_outputs(void)
{
	static char text[256];

	if (!text[0]) {
		size_t n = (size_t)snprintf(text, sizeof(text), "auto");
		for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]) && n < sizeof(text); i++)
			n += (size_t)snprintf(text + n, sizeof(text) - n, ", %s%s%s", outputs[i].name,
			                      outputs[i].arg ? ":" : "", outputs[i].arg ? outputs[i].arg : "");
	}
	return text;
}

/* [consumer] output: NULL, or why it is refused. */
static const char *check_output(const char *value, size_t len)
{
	if (!strcmp(value, "auto"))
		return NULL;
	for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++) {
		size_t n = strlen(outputs[i].name);

		if (strncmp(value, outputs[i].name, n))
			continue;
		if (!outputs[i].arg && !value[n])
			return NULL;
		if (outputs[i].arg && value[n] == ':') {
			if (!value[n + 1])
				return outputs[i].arg[0] == 'P' ? "has an empty PATH" : "has an empty argument";
			return len > MMAPQ_CONFIG_STR_MAX - 1 ? "is too long" : NULL;
		}
	}
	return "is not valid";
}

/* A value of a string type (CFG_IS_STRING): NULL, or why it is refused. */
static const char *cfg_check_string(const struct cfg_key *k, const char *value, size_t len)
{
	/* the strings with a length from min to max bytes */
	if (k->type == CFG_PATH || k->type == CFG_FILE || k->type == CFG_SERVERS ||
	    k->type == CFG_SUBJECT || k->type == CFG_STREAM) {
		if (len < k->min)
			return "is too short";
		if (len > k->max)
			return "is too long";
	}
	switch (k->type) {
	case CFG_PATH:
	case CFG_FILE:
		break;
	case CFG_WORD:
		if (!cfg_name_by_name(k->names, value))
			return "is not valid";
		break;
	case CFG_SERVERS:
		return cfg_check_servers(value);
	case CFG_SUBJECT:
		return cfg_check_subject(value);
	case CFG_STREAM:
		if (strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != len)
			return "has a character other than a letter, a digit, '_' or '-'";
		break;
	case CFG_OUTPUT:
		return check_output(value, len);
	case CFG_NAME:
		if (len < k->min || len > k->max || strspn(value, MMAPQ_NAME_CHARS) != len)
			return "is not a name";
		break;
	case CFG_U32:
	case CFG_ENUM:
	case CFG_MODE:
	case CFG_BYTES:
	case CFG_SIZE:
	case CFG_DURATION:
		break; /* not strings: cfg_parse_number */
	}
	return NULL;
}

/* A value of a number type (CFG_U32, CFG_ENUM, CFG_MODE, CFG_BYTES,
 * CFG_SIZE) into *v: NULL, or why it is refused. */
static const char *cfg_parse_number(const struct cfg_key *k, const char *value, uint64_t *v)
{
	const struct cfg_name *n;
	int r;

	switch (k->type) {
	case CFG_ENUM:
		n = cfg_name_by_name(k->names, value);
		if (!n)
			return "is not valid";
		*v = n->value;
		return NULL;
	case CFG_MODE:
		r = cfg_parse_uint(value, strlen(value), 8, v);
		if (r == -EINVAL)
			return "is not an octal number";
		if (r < 0 || *v < k->min || *v > k->max)
			return "is out of range";
		if ((*v & CFG_MODE_RW) != CFG_MODE_RW)
			return "lacks owner read and write";
		return NULL;
	case CFG_BYTES:
	case CFG_SIZE:
		r = cfg_parse_bytes(value, v);
		if (r == -EINVAL)
			return "is not a number of bytes (digits, and K, M or G after them if you like)";
		break;
	case CFG_DURATION:
		r = cfg_parse_duration(value, v);
		if (r == -EINVAL)
			return "is not a duration (digits, and s, m, h or d after them if you like)";
		break;
	default:
		r = cfg_parse_uint(value, strlen(value), 10, v);
		if (r == -EINVAL)
			return "is not a decimal integer";
		break;
	}
	if (r < 0 || *v < k->min || *v > k->max)
		return "is out of range";
	if (k->type == CFG_SIZE && (*v & (*v - 1)))
		return "is not a power of two";
	return NULL;
}

/*
 * Parse value (non-empty) into c's field for k.  Returns NULL on success or
 * the reason it is invalid, to follow the quoted value in the message.
 * Nothing is stored on failure.
 */
const char *cfg_parse_value(const struct cfg_key *k, const char *value,
                            struct mmapq_config *c)
{
	size_t len = strlen(value);
	const char *why;
	uint64_t v;

	if (CFG_IS_STRING(k->type)) {
		why = cfg_check_string(k, value, len);
		if (!why)
			memcpy(cfg_str(c, k), value, len + 1);
		return why;
	}
	why = cfg_parse_number(k, value, &v);
	if (!why)
		cfg_set_num(c, k, v);
	return why;
}

/* What the key accepts, for error messages. */
void cfg_allowed(const struct cfg_key *k, char *buf, size_t size)
{
	const struct cfg_name *n;
	size_t off = 0;

	switch (k->type) {
	case CFG_PATH:
		snprintf(buf, size, "a path of %" PRIu64 " to %" PRIu64 " bytes", k->min, k->max);
		return;
	case CFG_OUTPUT:
		snprintf(buf, size, "%s", mmapq_config_outputs());
		return;
	case CFG_FILE:
		snprintf(buf, size, "a path of at most %" PRIu64 " bytes, or nothing for none", k->max);
		return;
	case CFG_SERVERS:
		snprintf(buf, size, "1 to %d of nats://HOST:PORT or tls://HOST:PORT, comma-separated",
		         MMAPQ_NATS_SERVERS_MAX);
		return;
	case CFG_SUBJECT:
		snprintf(buf, size, "a subject of %" PRIu64 " to %" PRIu64 " bytes: tokens of visible"
		         " ASCII separated by dots, no wildcards", k->min, k->max);
		return;
	case CFG_STREAM:
		snprintf(buf, size, "%" PRIu64 " to %" PRIu64 " letters, digits, '_' and '-'", k->min,
		         k->max);
		return;
	case CFG_NAME:
		/* the characters after the letters and digits: the punctuation */
		snprintf(buf, size, "%" PRIu64 " to %" PRIu64 " letters, digits and '%s'", k->min, k->max,
		         &MMAPQ_NAME_CHARS[strspn(MMAPQ_NAME_CHARS, "abcdefghijklmnopqrstuvwxyz"
		                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")]);
		return;
	case CFG_U32:
		snprintf(buf, size, "%" PRIu64 " to %" PRIu64, k->min, k->max);
		return;
	case CFG_BYTES:
	case CFG_SIZE: {
		char lo[32], hi[32];

		cfg_format_bytes(k->min, lo, sizeof(lo));
		cfg_format_bytes(k->max, hi, sizeof(hi));
		snprintf(buf, size, "%s%s to %s bytes, K = 1024, M = 1024K, G = 1024M",
		         k->type == CFG_SIZE ? "a power of two from " : "", lo, hi);
		return;
	}
	case CFG_DURATION: {
		char lo[32], hi[32];

		cfg_format_duration(k->min, lo, sizeof(lo));
		cfg_format_duration(k->max, hi, sizeof(hi));
		snprintf(buf, size, "%s to %s: seconds, or with s, m, h or d after them", lo, hi);
		return;
	}
	case CFG_MODE:
		snprintf(buf, size, "an octal mode from %04o to %04o that includes %04o",
		         (unsigned)k->min | CFG_MODE_RW, (unsigned)k->max, CFG_MODE_RW);
		return;
	case CFG_WORD:
	case CFG_ENUM:
		buf[0] = '\0';
		for (n = k->names; n->name && off < size; n++) {
			int w = snprintf(buf + off, size - off, "%s%s",
			                 n == k->names ? "" : ", ", n->name);
			if (w < 0)
				break;
			off += (size_t)w;
		}
		return;
	}
}

/* Returns 0, or -ENOBUFS if the text (and its NUL) does not fit. */
int cfg_format(const struct mmapq_config *c, const struct cfg_key *k,
               char *buf, size_t size)
{
	const struct cfg_name *n;
	uint32_t v;
	int w = -1;

	switch (k->type) {
	case CFG_PATH:
	case CFG_WORD:
	case CFG_OUTPUT:
	case CFG_FILE:
	case CFG_SERVERS:
	case CFG_SUBJECT:
	case CFG_STREAM:
	case CFG_NAME:
		w = snprintf(buf, size, "%.*s", MMAPQ_CONFIG_STR_MAX - 1, cfg_cstr(c, k));
		break;
	case CFG_MODE:
		w = snprintf(buf, size, "%04o", cfg_get_u32(c, k));
		break;
	case CFG_ENUM:
		v = cfg_get_u32(c, k);
		n = cfg_name_by_value(k->names, v);
		/* A value no name maps to cannot come from a file; show it anyway. */
		w = n ? snprintf(buf, size, "%s", n->name) : snprintf(buf, size, "%u", v);
		break;
	case CFG_U32:
		w = snprintf(buf, size, "%u", cfg_get_u32(c, k));
		break;
	case CFG_BYTES:
	case CFG_SIZE:
		w = cfg_format_bytes(cfg_get_num(c, k), buf, size);
		break;
	case CFG_DURATION:
		w = cfg_format_duration(cfg_get_u32(c, k), buf, size);
		break;
	}
	if (w < 0 || (size_t)w >= size)
		return -ENOBUFS;
	return 0;
}
