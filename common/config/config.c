/* SPDX-License-Identifier: MIT */
/*
 * config.c -- mmapq.ini.
 *
 * Every key is described once, in MMAPQ_CONFIG_KEYS below; defaults,
 * loading, validation, formatting and diffing are all driven by that table,
 * and the default values are strings parsed by the same code as the file, so
 * a default can never bypass validation.
 *
 * inih (Debian's libinih 55: INI_MAX_LINE 200 on the stack, multi-line
 * values on, no line number passed to the handler) is fed through our own
 * reader, because on its own it
 *   - silently splits a line longer than its buffer into several lines,
 *   - glues indented lines onto the previous key,
 *   - never tells the handler about section headers (so an empty unknown
 *     section would go unnoticed) and truncates section names to 49 bytes,
 *   - reports only the first syntax error.
 * The reader reads each physical line whole with getline(), counts lines,
 * checks the line's structure itself and hands inih only lines that cannot
 * trigger any of the above: a key line exactly as written, or a comment in
 * place of everything else (section headers included: the current section
 * is tracked here, not by inih).  inih still splits "key = value ; comment".
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

enum cfg_type {
	CFG_PATH,    /* string: non-empty, < MMAPQ_CONFIG_STR_MAX bytes     */
	CFG_WORD,    /* string: one of names[]                              */
	CFG_OUTPUT,  /* string: auto | journal | stdout | null | file:PATH  */
	CFG_NAME,    /* string: min..max of MMAPQ_NAME_CHARS (a journal's names) */
	CFG_U32,     /* strict decimal, min..max                            */
	CFG_POW2,    /* strict decimal, min..max, a power of two            */
	CFG_ENUM,    /* one of names[], stored as its uint32_t value        */
	CFG_MODE,    /* octal file mode, min..max, must include CFG_MODE_RW */
	CFG_FILE,    /* string: a path, or empty for none, < MMAPQ_CONFIG_STR_MAX bytes */
	CFG_SERVERS, /* string: NATS server URLs, comma-separated (cfg_check_servers) */
	CFG_SUBJECT, /* string: a NATS subject to publish to (no wildcards) */
	CFG_STREAM,  /* string: a JetStream stream name */
};

/* A queue file its owner cannot read and write is useless. */
#define CFG_MODE_RW 0600u

struct cfg_name {
	const char *name;
	uint32_t value;
};

static const struct cfg_name format_names[] = {
	{ "int", MMAPQ_FORMAT_INT }, { "line", MMAPQ_FORMAT_LINE }, { NULL, 0 },
};
static const struct cfg_name sync_names[] = {
	{ "never", MMAPQ_SYNC_NEVER }, { "batch", MMAPQ_SYNC_BATCH },
	{ "always", MMAPQ_SYNC_ALWAYS }, { NULL, 0 },
};
/* The value is kept as a string; the producer interprets it. */
static const struct cfg_name input_names[] = {
	{ "stdin", 0 }, { "socket", 0 }, { "generate", 0 }, { NULL, 0 },
};
static const struct cfg_name on_full_names[] = {
	{ "block", MMAPQ_ON_FULL_BLOCK }, { "drop", MMAPQ_ON_FULL_DROP }, { NULL, 0 },
};
static const struct cfg_name start_names[] = {
	{ "oldest", MMAPQ_START_OLDEST }, { "newest", MMAPQ_START_NEWEST }, { NULL, 0 },
};
static const struct cfg_name bool_names[] = {
	{ "no", 0 }, { "yes", 1 }, { NULL, 0 },
};
static const struct cfg_name storage_names[] = {
	{ "file", MMAPQ_NATS_FILE }, { "memory", MMAPQ_NATS_MEMORY }, { NULL, 0 },
};
static const struct cfg_name log_level_names[] = {
	{ "error", MMAPQ_LOG_ERR }, { "warning", MMAPQ_LOG_WARNING },
	{ "notice", MMAPQ_LOG_NOTICE }, { "info", MMAPQ_LOG_INFO },
	{ "debug", MMAPQ_LOG_DEBUG }, { NULL, 0 },
};

/*
 * X(section, key, type, default, min, max, field, names, needs_restart, per_instance)
 *
 * needs_restart = 1: the running daemons keep the old value until they are
 * restarted (queue geometry, file identity); 0: applied on reload.
 * per_instance = 1: a path that several queues on one host must not share;
 * the default of instance NAME has "NAME." before its file name
 * (mmapq_config_defaults_for).
 * Sections appear in the order of their first key; keep the order of
 * config/mmapq.ini.
 * A section [consumer:NAME] takes the keys of [consumer] and, for the
 * consumer NAME only, overrides them (CFG_NAMED_SECTION below).
 */
#define MMAPQ_CONFIG_KEYS(X)                                                             \
	X("queue",    "path",           CFG_PATH,   "/var/lib/mmapq/queue",              \
	  1, MMAPQ_CONFIG_STR_MAX - 1, queue_path, NULL, 1, 1)                           \
	X("queue",    "capacity",       CFG_POW2,   "65536",                             \
	  MMAPQ_CAPACITY_MIN, MMAPQ_CAPACITY_MAX, capacity, NULL, 1, 0)                  \
	X("queue",    "record_size",    CFG_U32,    "64",                                \
	  MMAPQ_RECORD_SIZE_MIN, MMAPQ_RECORD_SIZE_MAX, record_size, NULL, 1, 0)         \
	X("queue",    "format",         CFG_ENUM,   "int",    0, 0, format, format_names, 1, 0) \
	X("queue",    "sync",           CFG_ENUM,   "never",  0, 0, sync, sync_names, 0, 0) \
	X("queue",    "mode",           CFG_MODE,   "0660",   0, 0777, mode, NULL, 1, 0) \
	X("queue",    "spin_us",        CFG_U32,    "0",      0, 10000, spin_us, NULL, 0, 0) \
	X("queue",    "max_consumers",  CFG_U32,    "8",                                 \
	  MMAPQ_CONSUMERS_MIN, MMAPQ_CONSUMERS_MAX, max_consumers, NULL, 1, 0)           \
	X("producer", "input",          CFG_WORD,   "stdin",  0, 0, input, input_names, 1, 0) \
	X("producer", "socket",         CFG_PATH,   "/run/mmapq/producer.sock",          \
	  1, MMAPQ_SOCKET_PATH_MAX - 1, socket_path, NULL, 1, 1)                         \
	X("producer", "generate_rate",  CFG_U32,    "1000",   0, 100000000, generate_rate, NULL, 0, 0) \
	X("producer", "on_full",        CFG_ENUM,   "block",  0, 0, on_full, on_full_names, 0, 0) \
	X("producer", "client_timeout", CFG_U32,    "60",     0, 86400, client_timeout, NULL, 0, 0) \
	X("producer", "ack_interval",   CFG_U32,    "1000",   0, 3600000, ack_interval, NULL, 0, 0) \
	X("producer", "ack_records",    CFG_U32,    "0",      0, 4294967295u, ack_records, NULL, 0, 0) \
	X("consumer", "output",         CFG_OUTPUT, "auto",   0, 0, output, NULL, 0, 0)  \
	X("consumer", "start",          CFG_ENUM,   "oldest", 0, 0, start, start_names, 1, 0) \
	X("consumer", "journal_identifier", CFG_NAME, "mmapq-records",                   \
	  1, 64, journal_identifier, NULL, 0, 0)                                         \
	X("consumer", "journal_namespace", CFG_NAME, "default",                          \
	  1, 64, journal_namespace, NULL, 0, 0)                                          \
	X("consumer", "seq_prefix",     CFG_ENUM,   "no",     0, 0, seq_prefix, bool_names, 0, 0) \
	X("nats",     "servers",        CFG_SERVERS, "nats://127.0.0.1:4222",            \
	  1, MMAPQ_CONFIG_STR_MAX - 1, nats_servers, NULL, 1, 0)                         \
	X("nats",     "subject",        CFG_SUBJECT, "mmapq", 1, 255, nats_subject, NULL, 1, 0) \
	X("nats",     "stream",         CFG_STREAM, "MMAPQ",  1, 64, nats_stream, NULL, 1, 0) \
	X("nats",     "create_stream",  CFG_ENUM,   "no",     0, 0, nats_create_stream, bool_names, 1, 0) \
	X("nats",     "replicas",       CFG_U32,    "1",      1, 5, nats_replicas, NULL, 1, 0) \
	X("nats",     "storage",        CFG_ENUM,   "file",   0, 0, nats_storage, storage_names, 1, 0) \
	X("nats",     "duplicate_window", CFG_U32,  "120",    1, 86400, nats_duplicate_window, NULL, 1, 0) \
	X("nats",     "ordered",        CFG_ENUM,   "yes",    0, 0, nats_ordered, bool_names, 1, 0) \
	X("nats",     "credentials",    CFG_FILE,   "",       0, MMAPQ_CONFIG_STR_MAX - 1, \
	  nats_credentials, NULL, 1, 0)                                                  \
	X("nats",     "tls_ca",         CFG_FILE,   "",       0, MMAPQ_CONFIG_STR_MAX - 1, \
	  nats_tls_ca, NULL, 1, 0)                                                       \
	X("nats",     "tls_cert",       CFG_FILE,   "",       0, MMAPQ_CONFIG_STR_MAX - 1, \
	  nats_tls_cert, NULL, 1, 0)                                                     \
	X("nats",     "tls_key",        CFG_FILE,   "",       0, MMAPQ_CONFIG_STR_MAX - 1, \
	  nats_tls_key, NULL, 1, 0)                                                      \
	X("nats",     "max_pending",    CFG_U32,    "4096",   1, 65536, nats_max_pending, NULL, 1, 0) \
	X("nats",     "connect_timeout", CFG_U32,   "5",      1, 300, nats_connect_timeout, NULL, 1, 0) \
	X("nats",     "ack_timeout",    CFG_U32,    "5",      1, 300, nats_ack_timeout, NULL, 1, 0) \
	X("nats",     "reconnect_max_wait", CFG_U32, "10",    1, 300, nats_reconnect_max_wait, NULL, 1, 0) \
	X("log",      "level",          CFG_ENUM,   "info",   0, 0, log_level, log_level_names, 0, 0) \
	X("log",      "stats_interval", CFG_U32,    "0",      0, 86400, stats_interval, NULL, 0, 0)

struct cfg_key {
	const char *section;
	const char *key;
	enum cfg_type type;
	const char *def;
	uint32_t min, max;
	size_t offset;
	const struct cfg_name *names;
	int needs_restart;
	int per_instance;
};

#define CFG_IS_STRING(type)                                                                 \
	((type) == CFG_PATH || (type) == CFG_WORD || (type) == CFG_OUTPUT || (type) == CFG_NAME || \
	 (type) == CFG_FILE || (type) == CFG_SERVERS || (type) == CFG_SUBJECT || (type) == CFG_STREAM)

/* String fields are whole char[MMAPQ_CONFIG_STR_MAX] arrays; every other
 * field (enums included) is stored and read as a uint32_t with memcpy. */
#define CFG_CHECK_FIELD(section, key, type, def, min, max, field, names, restart, inst)    \
	_Static_assert(CFG_IS_STRING(type) ?                                                  \
	               sizeof(((struct mmapq_config *)0)->field) == MMAPQ_CONFIG_STR_MAX :    \
	               sizeof(((struct mmapq_config *)0)->field) == sizeof(uint32_t),         \
	               "field type of [" section "] " key);                                  \
	_Static_assert(!(inst) || ((type) == CFG_PATH &&                                      \
	               sizeof(def) + MMAPQ_INSTANCE_NAME_MAX + 1 <= (max) + 1),               \
	               "[" section "] " key ": an instance's default must fit");
MMAPQ_CONFIG_KEYS(CFG_CHECK_FIELD)

#define CFG_ENTRY(section, key, type, def, min, max, field, names, restart, inst)           \
	{ section, key, type, def, min, max, offsetof(struct mmapq_config, field), names,      \
	  restart, inst },
static const struct cfg_key cfg_keys[] = { MMAPQ_CONFIG_KEYS(CFG_ENTRY) };

#define CFG_NKEYS ARRAY_SIZE(cfg_keys)

/* ---- values ---- */

static char *cfg_str(struct mmapq_config *c, const struct cfg_key *k)
{
	return (char *)c + k->offset;
}

static const char *cfg_cstr(const struct mmapq_config *c, const struct cfg_key *k)
{
	return (const char *)c + k->offset;
}

static void cfg_set_u32(struct mmapq_config *c, const struct cfg_key *k, uint32_t v)
{
	memcpy((char *)c + k->offset, &v, sizeof(v));
}

static uint32_t cfg_get_u32(const struct mmapq_config *c, const struct cfg_key *k)
{
	uint32_t v;

	memcpy(&v, (const char *)c + k->offset, sizeof(v));
	return v;
}

static const struct cfg_name *cfg_name_by_name(const struct cfg_name *n, const char *s)
{
	for (; n->name; n++)
		if (!strcmp(n->name, s))
			return n;
	return NULL;
}

static const struct cfg_name *cfg_name_by_value(const struct cfg_name *n, uint32_t v)
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

/* Digits only, in the given base: no sign, no blanks, no prefix, nothing
 * after, no overflow past UINT32_MAX.  -ERANGE on overflow. */
static int cfg_parse_uint(const char *s, unsigned base, uint32_t *ret)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		unsigned d;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		d = (unsigned)(*s - '0');
		if (d >= base)
			return -EINVAL;
		v = v * base + d;
		if (v > UINT32_MAX) {
			/* Keep going: "99999999999x" is not a number at all. */
			for (s++; *s; s++)
				if (*s < '0' || *s >= (char)('0' + base))
					return -EINVAL;
			return -ERANGE;
		}
	}
	*ret = (uint32_t)v;
	return 0;
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

/*
 * Parse value (non-empty) into c's field for k.  Returns NULL on success or
 * the reason it is invalid, to follow the quoted value in the message.
 * Nothing is stored on failure.
 */
static const char *cfg_parse_value(const struct cfg_key *k, const char *value,
                                   struct mmapq_config *c)
{
	const struct cfg_name *n;
	size_t len = strlen(value);
	const char *why;
	uint32_t v;
	int r;

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
		if ((why = cfg_check_servers(value)))
			return why;
		break;
	case CFG_SUBJECT:
		if ((why = cfg_check_subject(value)))
			return why;
		break;
	case CFG_STREAM:
		if (strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != len)
			return "has a character other than a letter, a digit, '_' or '-'";
		break;
	case CFG_OUTPUT:
		if (!strcmp(value, "auto") || !strcmp(value, "journal") ||
		    !strcmp(value, "stdout") || !strcmp(value, "null") || !strcmp(value, "nats"))
			break;
		if (strncmp(value, "file:", 5))
			return "is not valid";
		if (!value[5])
			return "has an empty PATH";
		if (len > MMAPQ_CONFIG_STR_MAX - 1)
			return "is too long";
		break;
	case CFG_NAME:
		if (len < k->min || len > k->max || strspn(value, MMAPQ_NAME_CHARS) != len)
			return "is not a name";
		break;
	case CFG_U32:
	case CFG_POW2:
		r = cfg_parse_uint(value, 10, &v);
		if (r == -EINVAL)
			return "is not a decimal integer";
		if (r < 0 || v < k->min || v > k->max)
			return "is out of range";
		if (k->type == CFG_POW2 && (v & (v - 1)))
			return "is not a power of two";
		cfg_set_u32(c, k, v);
		return NULL;
	case CFG_ENUM:
		n = cfg_name_by_name(k->names, value);
		if (!n)
			return "is not valid";
		cfg_set_u32(c, k, n->value);
		return NULL;
	case CFG_MODE:
		r = cfg_parse_uint(value, 8, &v);
		if (r == -EINVAL)
			return "is not an octal number";
		if (r < 0 || v < k->min || v > k->max)
			return "is out of range";
		if ((v & CFG_MODE_RW) != CFG_MODE_RW)
			return "lacks owner read and write";
		cfg_set_u32(c, k, v);
		return NULL;
	}
	/* the string types */
	memcpy(cfg_str(c, k), value, len + 1);
	return NULL;
}

/* What the key accepts, for error messages. */
static void cfg_allowed(const struct cfg_key *k, char *buf, size_t size)
{
	const struct cfg_name *n;
	size_t off = 0;

	switch (k->type) {
	case CFG_PATH:
		snprintf(buf, size, "a path of %u to %u bytes", k->min, k->max);
		return;
	case CFG_OUTPUT:
		snprintf(buf, size, "auto, journal, stdout, null, file:PATH, nats");
		return;
	case CFG_FILE:
		snprintf(buf, size, "a path of at most %u bytes, or nothing for none", k->max);
		return;
	case CFG_SERVERS:
		snprintf(buf, size, "1 to %d of nats://HOST:PORT or tls://HOST:PORT, comma-separated",
		         MMAPQ_NATS_SERVERS_MAX);
		return;
	case CFG_SUBJECT:
		snprintf(buf, size, "a subject of %u to %u bytes: tokens of visible ASCII separated by"
		         " dots, no wildcards", k->min, k->max);
		return;
	case CFG_STREAM:
		snprintf(buf, size, "%u to %u letters, digits, '_' and '-'", k->min, k->max);
		return;
	case CFG_NAME:
		/* the characters after the letters and digits: the punctuation */
		snprintf(buf, size, "%u to %u letters, digits and '%s'", k->min, k->max,
		         &MMAPQ_NAME_CHARS[strspn(MMAPQ_NAME_CHARS, "abcdefghijklmnopqrstuvwxyz"
		                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")]);
		return;
	case CFG_U32:
		snprintf(buf, size, "%u to %u", k->min, k->max);
		return;
	case CFG_POW2:
		snprintf(buf, size, "a power of two from %u to %u", k->min, k->max);
		return;
	case CFG_MODE:
		snprintf(buf, size, "an octal mode from %04o to %04o that includes %04o",
		         k->min | CFG_MODE_RW, k->max, CFG_MODE_RW);
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
static int cfg_format(const struct mmapq_config *c, const struct cfg_key *k,
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
	case CFG_POW2:
		w = snprintf(buf, size, "%u", cfg_get_u32(c, k));
		break;
	}
	if (w < 0 || (size_t)w >= size)
		return -ENOBUFS;
	return 0;
}

static const struct cfg_key *cfg_find(const char *section, const char *key)
{
	size_t i;

	for (i = 0; i < CFG_NKEYS; i++)
		if (!strcmp(cfg_keys[i].section, section) && !strcmp(cfg_keys[i].key, key))
			return &cfg_keys[i];
	return NULL;
}

const char *mmapq_config_set(struct mmapq_config *c, const char *section, const char *key,
                             const char *value)
{
	const struct cfg_key *k = cfg_find(section, key);

	return k ? cfg_parse_value(k, value, c) : "is not a known key";
}

/* The table's own spelling of section, or NULL if no key lives there. */
static const char *cfg_find_section(const char *section)
{
	size_t i;

	for (i = 0; i < CFG_NKEYS; i++)
		if (!strcmp(cfg_keys[i].section, section))
			return cfg_keys[i].section;
	return NULL;
}

/* Comma-separated section names (sec == NULL) or keys of section sec. */
static void cfg_list(const char *sec, char *buf, size_t size)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < CFG_NKEYS && off < size; i++) {
		const char *word;
		int w;

		if (sec) {
			if (strcmp(cfg_keys[i].section, sec))
				continue;
			word = cfg_keys[i].key;
		} else {
			if (i > 0 && !strcmp(cfg_keys[i - 1].section, cfg_keys[i].section))
				continue;
			word = cfg_keys[i].section;
		}
		w = snprintf(buf + off, size - off, "%s%s", off ? ", " : "", word);
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

void mmapq_config_defaults(struct mmapq_config *c)
{
	size_t i;

	/* Zero first so that whole structs compare equal with memcmp. */
	memset(c, 0, sizeof(*c));
	for (i = 0; i < CFG_NKEYS; i++) {
		/* Cannot fail: test_config checks every default. */
		(void)cfg_parse_value(&cfg_keys[i], cfg_keys[i].def, c);
	}
}

bool mmapq_config_instance_valid(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	return len >= 1 && len <= MMAPQ_INSTANCE_NAME_MAX && strspn(name, MMAPQ_NAME_CHARS) == len;
}

int mmapq_config_defaults_for(struct mmapq_config *c, const char *instance)
{
	size_t i;

	if (instance && !mmapq_config_instance_valid(instance))
		return -EINVAL;
	mmapq_config_defaults(c);
	if (!instance)
		return 0;
	for (i = 0; i < CFG_NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		const char *base;
		char *v;

		if (!k->per_instance)
			continue;
		base = strrchr(k->def, '/');
		base = base ? base + 1 : k->def;
		v = cfg_str(c, k);
		/* Fits: CFG_CHECK_FIELD asserts it for the longest name. */
		snprintf(v, MMAPQ_CONFIG_STR_MAX, "%.*s%s.%s", (int)(base - k->def), k->def,
		         instance, base);
	}
	return 0;
}

/* ---- loading ---- */

/* [consumer:NAME]: the keys of this section, for consumer NAME only. */
#define CFG_NAMED_SECTION "consumer"

/* A [consumer:NAME] section seen in the file being read: where each of its
 * keys was set (duplicates within the file are errors, as elsewhere). */
struct cfg_named {
	char name[MMAPQ_CONSUMER_NAME_MAX + 1];
	unsigned first_line[CFG_NKEYS];
};

struct cfg_parse {
	/* the whole load: a file and its drop-ins */
	mmapq_config_error_fn on_error;
	void *ctx;
	unsigned nerrors;
	unsigned nfiles;                /* files read so far, the current one included */
	unsigned set_file[CFG_NKEYS];   /* which file set each key last (1 = the first), 0 = none */
	const char *set_path[CFG_NKEYS];
	unsigned set_line[CFG_NKEYS];
	struct mmapq_config cfg;        /* the result, copied out only if no errors */
	const char *consumer;           /* whose [consumer:NAME] applies, or NULL */
	bool specific[CFG_NKEYS];       /* set by the applying [consumer:NAME]: [consumer] no
	                                   longer overrides it */
	struct mmapq_config scratch;    /* where keys that do not apply are checked */

	/* the file being read */
	FILE *f;
	const char *path;
	char *buf;              /* getline's buffer */
	size_t bufsize;
	unsigned lineno;        /* of the line last handed to inih */
	int read_err;           /* negative errno if reading stopped early */

	const char *section;    /* current section (table spelling); NULL if none */
	bool skip_section;      /* in an unknown or malformed section: ignore keys */
	int named;              /* in [consumer:NAME]: its index in named[], else -1 */

	unsigned first_line[CFG_NKEYS]; /* where each key was set in this file, 0 = not yet */
	struct cfg_named *named_v;      /* the [consumer:NAME] sections of this file */
	size_t named_n;
};

static void cfg_error(struct cfg_parse *p, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void cfg_error(struct cfg_parse *p, unsigned line, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	p->nerrors++;
	if (!p->on_error)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->on_error(p->ctx, p->path, line, msg);
}

/*
 * Text from the file, made safe to print inside '...': control bytes, DEL
 * and backslash become \xNN, and long text is cut with "...".  UTF-8 passes
 * through.  (Values are trimmed, so a quote inside cannot mislead.)  Returns
 * buf.
 */
static const char *cfg_quote(const char *s, char *buf, size_t size)
{
	static const size_t max_shown = 64;
	size_t i, off = 0;

	for (i = 0; s[i]; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (i == max_shown || off + 8 > size) {
			memcpy(buf + off, "...", 4);
			return buf;
		}
		if (ch < 0x20 || ch == 0x7f || ch == '\\')
			off += (size_t)snprintf(buf + off, size - off, "\\x%02x", ch);
		else
			buf[off++] = (char)ch;
	}
	buf[off] = '\0';
	return buf;
}

/* isspace() as inih uses it, so both agree on what a blank is. */
static bool cfg_isspace(char ch)
{
	return isspace((unsigned char)ch);
}

/* inih's inline comment: ';' right after a blank. */
static bool cfg_inline_comment(const char *line, const char *s)
{
	return *s == ';' && s > line && cfg_isspace(s[-1]);
}

/* [consumer:NAME] (name is NAME): the keys of [consumer], for consumer
 * NAME.  The same section may appear again in the file; its keys are
 * still set once. */
static void cfg_named_section(struct cfg_parse *p, const char *name)
{
	char q[512];
	size_t i;

	p->section = NULL;
	p->skip_section = true;
	if (!mmapq_consumer_name_valid(name)) {
		cfg_error(p, p->lineno, "[" CFG_NAMED_SECTION ":%s]: '%s' is not a consumer name"
		          " (1 to %d letters, digits and '_.@-', not starting with '-')",
		          cfg_quote(name, q, sizeof(q)),
		          cfg_quote(name, q, sizeof(q)), MMAPQ_CONSUMER_NAME_MAX);
		return;
	}
	for (i = 0; i < p->named_n; i++)
		if (!strcmp(p->named_v[i].name, name))
			break;
	if (i == p->named_n) {
		struct cfg_named *v = realloc(p->named_v, (p->named_n + 1) * sizeof(*v));

		if (!v) {
			p->read_err = -ENOMEM;
			return;
		}
		p->named_v = v;
		memset(&v[i], 0, sizeof(v[i]));
		strcpy(v[i].name, name);
		p->named_n++;
	}
	p->section = cfg_find_section(CFG_NAMED_SECTION);
	p->skip_section = false;
	p->named = (int)i;
}

/*
 * "[name]" with nothing after it but blanks or a comment.  Sets the current
 * section (or skip_section after an error).
 */
static void cfg_section_line(struct cfg_parse *p, char *line)
{
	char q[512], q2[512], known[256];
	char *end = strchr(line, ']'), *rest;

	if (!end) {
		cfg_error(p, p->lineno, "unterminated section header '%s' (missing ']')",
		          cfg_quote(line, q, sizeof(q)));
		/* Unknown name: do not blame the keys below on some other section. */
		p->section = NULL;
		p->skip_section = true;
		return;
	}
	*end = '\0';
	for (rest = end + 1; cfg_isspace(*rest); rest++)
		;
	if (*rest && *rest != ';' && *rest != '#')
		cfg_error(p, p->lineno, "unexpected text after section header [%s]: '%s'",
		          cfg_quote(line + 1, q, sizeof(q)), cfg_quote(rest, q2, sizeof(q2)));

	p->named = -1;
	if (!strncmp(line + 1, CFG_NAMED_SECTION ":", sizeof(CFG_NAMED_SECTION))) {
		cfg_named_section(p, line + 1 + sizeof(CFG_NAMED_SECTION));
		return;
	}
	p->section = cfg_find_section(line + 1);
	p->skip_section = !p->section;
	if (!p->section) {
		cfg_list(NULL, known, sizeof(known));
		cfg_error(p, p->lineno, "unknown section [%s] (known sections: %s)",
		          cfg_quote(line + 1, q, sizeof(q)), known);
	}
}

/*
 * Whether line is something inih will split into "key = value" exactly as
 * we mean it: the first '=' or ':' outside an inline comment must be '=',
 * with a name before it.  Reports the error otherwise.
 */
static bool cfg_key_line_ok(struct cfg_parse *p, const char *line)
{
	char q[512];
	const char *s;

	for (s = line; *s && *s != '=' && *s != ':' && !cfg_inline_comment(line, s); s++)
		;
	if (*s != '=') {
		cfg_error(p, p->lineno,
		          "syntax error: expected '[section]', 'key = value' or a comment, got '%s'",
		          cfg_quote(line, q, sizeof(q)));
		return false;
	}
	if (s == line) {
		cfg_error(p, p->lineno, "missing key name before '=' in '%s'",
		          cfg_quote(line, q, sizeof(q)));
		return false;
	}
	return true;
}

/*
 * The ini_reader: one whole physical line per call, checked, and either
 * handed on as it is or replaced by a comment line.  str has num bytes;
 * inih needs room for the '\n' and the NUL, so lines of up to num - 2
 * bytes (without the line end) get through unsplit.
 */
static char *cfg_reader(char *str, int num, void *stream)
{
	static const char bom[] = "\xef\xbb\xbf";
	struct cfg_parse *p = stream;
	size_t len, max;
	const char *nul;
	char *line;
	ssize_t n;

	if (num < 3) {
		/* Not the inih we know: no room even for a comment line. */
		p->read_err = -ENOBUFS;
		return NULL;
	}
	max = (size_t)num - 2;
	errno = 0;
	n = getline(&p->buf, &p->bufsize, p->f);
	if (n < 0) {
		if (ferror(p->f))
			p->read_err = errno ? -errno : -EIO;
		else if (errno == ENOMEM)
			p->read_err = -ENOMEM;
		return NULL;
	}
	p->lineno++;
	line = p->buf;
	len = (size_t)n;
	if (len && line[len - 1] == '\n')
		len--;
	if (len && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	if (p->lineno == 1 && len >= 3 && !memcmp(line, bom, 3)) {
		line += 3;
		len -= 3;
	}

	strcpy(str, ";\n"); /* whatever is not a good key line */

	/* inih strips a byte order mark from its first line as well: after
	 * ours, a second one would make it parse another line than the one
	 * checked here (found by tests/fuzz/fuzz_config: "<BOM><BOM>[queue]x=1"
	 * was silently ignored). */
	if (p->lineno == 1 && len >= 3 && !memcmp(line, bom, 3)) {
		cfg_error(p, p->lineno, "a second byte order mark at the start of the file");
		return str;
	}

	nul = memchr(line, '\0', len);
	if (nul) {
		cfg_error(p, p->lineno, "NUL byte at column %zu", (size_t)(nul - line) + 1);
		return str;
	}
	if (len > max) {
		cfg_error(p, p->lineno, "line too long (%zu bytes, at most %zu)", len, max);
		return str;
	}

	if (!*line || *line == ';' || *line == '#')
		return str;
	if (cfg_isspace(*line)) {
		const char *s = line;

		while (cfg_isspace(*s))
			s++;
		if (*s && *s != ';' && *s != '#')
			cfg_error(p, p->lineno,
			          "indented line: continuation lines are not supported "
			          "(remove the leading blanks)");
		return str;
	}
	if (*line == '[') {
		cfg_section_line(p, line);
		return str;
	}
	if (!cfg_key_line_ok(p, line))
		return str;

	memcpy(str, line, len);
	memcpy(str + len, "\n", 2);
	return str;
}

/* inih's handler, for the key line the reader just handed over. */
static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
	char q[512], allowed[256], known[256], sec[16 + MMAPQ_CONSUMER_NAME_MAX];
	struct cfg_parse *p = user;
	struct mmapq_config *target = &p->cfg;
	const struct cfg_key *k;
	const char *why;
	size_t i;

	(void)section;  /* always "": the reader tracks sections, not inih */
	if (p->skip_section)
		return 1;       /* already reported at the section header */
	if (!p->section) {
		for (i = 0; i < CFG_NKEYS; i++)
			if (!strcmp(cfg_keys[i].key, name))
				break;
		if (i < CFG_NKEYS)
			cfg_error(p, p->lineno, "key '%s' outside any section (it belongs in [%s])",
			          name, cfg_keys[i].section);
		else
			cfg_error(p, p->lineno, "key '%s' outside any section",
			          cfg_quote(name, q, sizeof(q)));
		return 1;
	}
	/* the section as the file names it: [consumer:NAME] too */
	if (p->named >= 0)
		snprintf(sec, sizeof(sec), "%s:%s", p->section, p->named_v[p->named].name);
	else
		snprintf(sec, sizeof(sec), "%s", p->section);
	k = cfg_find(p->section, name);
	if (!k) {
		cfg_list(p->section, known, sizeof(known));
		cfg_error(p, p->lineno, "unknown key '%s' in [%s] (known keys: %s)",
		          cfg_quote(name, q, sizeof(q)), sec, known);
		return 1;
	}
	i = (size_t)(k - cfg_keys);
	{
		unsigned *first = p->named >= 0 ? &p->named_v[p->named].first_line[i] : &p->first_line[i];
		if (*first) {
			cfg_error(p, p->lineno, "duplicate key '%s' in [%s] (first set on line %u)",
			          k->key, sec, *first);
			return 1;
		}
		*first = p->lineno;
	}
	/* [consumer:NAME] overrides [consumer] for consumer NAME, in any file
	 * and on any line; for other consumers (or none) it is only checked.
	 * Otherwise a later file overrides an earlier one: the last place
	 * counts. */
	if (p->named >= 0 ? !p->consumer || strcmp(p->named_v[p->named].name, p->consumer)
	                  : p->specific[i])
		target = &p->scratch;
	if (target == &p->cfg) {
		p->specific[i] |= p->named >= 0;
		p->set_file[i] = p->nfiles;
		p->set_path[i] = p->path;
		p->set_line[i] = p->lineno;
	}

	cfg_allowed(k, allowed, sizeof(allowed));
	if (!*value && k->type != CFG_FILE) {
		cfg_error(p, p->lineno, "[%s] %s: empty value (allowed: %s)",
		          sec, k->key, allowed);
		return 1;
	}
	why = cfg_parse_value(k, value, target);
	if (why)
		cfg_error(p, p->lineno, "[%s] %s: '%s' %s (allowed: %s)", sec, k->key,
		          cfg_quote(value, q, sizeof(q)), why, allowed);
	return 1;
}

/* A failure that is not about a line: reported once, as line 0. */
static int cfg_fail(mmapq_config_error_fn on_error, void *ctx, const char *path,
                    int r, const char *what)
{
	char msg[256];

	if (on_error) {
		snprintf(msg, sizeof(msg), "%s%s%s", what ? what : "", what ? ": " : "",
		         strerror(-r));
		on_error(ctx, path, 0, msg);
	}
	return r;
}

/* Where key i was set last, as the geometry message names it: "default",
 * "line N" in the file blamed, "FILE:N" in another one. */
static void cfg_set_at(const struct cfg_parse *p, size_t i, unsigned blamed_file,
                       char *buf, size_t size)
{
	if (!p->set_file[i])
		snprintf(buf, size, "default");
	else if (p->set_file[i] == blamed_file)
		snprintf(buf, size, "line %u", p->set_line[i]);
	else
		snprintf(buf, size, "%s:%u", p->set_path[i], p->set_line[i]);
}

/*
 * Keys that are valid one by one but not together: the queue file
 * (mmapq_file_size: a 4 KiB header, then capacity slots of, for format
 * line, record_size rounded up to 8 plus a 16-byte slot header, for format
 * int 16 bytes whatever record_size says) must stay within
 * MMAPQ_FILE_SIZE_MAX, the limit every daemon enforces when it creates or
 * attaches.  Blamed on whichever of the two keys is set last (in the later
 * file, or further down the same file; a default cannot be wrong on its
 * own).
 */
static void cfg_check_geometry(struct cfg_parse *p)
{
	size_t cap = (size_t)(cfg_find("queue", "capacity") - cfg_keys);
	size_t rs = (size_t)(cfg_find("queue", "record_size") - cfg_keys);
	uint32_t capacity = p->cfg.capacity, record_size = p->cfg.record_size;
	uint64_t size = mmapq_file_size(p->cfg.format, capacity, record_size);
	char cap_at[MMAPQ_CONFIG_STR_MAX + 32], rs_at[MMAPQ_CONFIG_STR_MAX + 32];
	size_t last;

	if (size <= MMAPQ_FILE_SIZE_MAX || (!p->set_file[cap] && !p->set_file[rs]))
		return;
	last = p->set_file[cap] > p->set_file[rs] ||
	       (p->set_file[cap] == p->set_file[rs] && p->set_line[cap] > p->set_line[rs]) ? cap : rs;
	cfg_set_at(p, cap, p->set_file[last], cap_at, sizeof(cap_at));
	cfg_set_at(p, rs, p->set_file[last], rs_at, sizeof(rs_at));
	p->path = p->set_path[last];
	cfg_error(p, p->set_line[last],
	          "[queue] capacity %u (%s) x record_size %u (%s) needs a %llu-byte queue file,"
	          " over the limit of %llu bytes (64 GiB); lower one of them",
	          capacity, cap_at, record_size, rs_at, (unsigned long long)size,
	          (unsigned long long)MMAPQ_FILE_SIZE_MAX);
}

/*
 * [nats] tls_cert and tls_key: a client certificate needs its key and a
 * key its certificate.  Blamed on the one that is set (the later of the
 * files, or further down the same file).
 */
static void cfg_check_tls(struct cfg_parse *p)
{
	size_t cert = (size_t)(cfg_find("nats", "tls_cert") - cfg_keys);
	size_t key = (size_t)(cfg_find("nats", "tls_key") - cfg_keys);
	bool has_cert = p->cfg.nats_tls_cert[0], has_key = p->cfg.nats_tls_key[0];
	size_t set = has_cert ? cert : key;

	if (has_cert == has_key)
		return;
	p->path = p->set_path[set];
	cfg_error(p, p->set_line[set], "[nats] %s is set but %s is not: a client certificate"
	          " needs its key (set both, or neither)", has_cert ? "tls_cert" : "tls_key",
	          has_cert ? "tls_key" : "tls_cert");
}

/*
 * Reads one file into p->cfg.  0; -ENOENT if it does not exist (reported
 * only if report_missing); another -errno, reported, if it cannot be read
 * (errors in its lines are counted in p->nerrors, not returned).
 */
static int cfg_read_file(struct cfg_parse *p, const char *path, bool report_missing)
{
	struct stat st;
	int fd, r;

	/* O_NONBLOCK: a FIFO must not hang us before we can reject it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		/* Whether a missing file is fine is the caller's business. */
		if (errno == ENOENT && !report_missing)
			return -ENOENT;
		return cfg_fail(p->on_error, p->ctx, path, -errno, NULL);
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return cfg_fail(p->on_error, p->ctx, path, r, NULL);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		if (p->on_error)
			p->on_error(p->ctx, path, 0, S_ISDIR(st.st_mode) ? "is a directory" :
			                                                "not a regular file");
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	p->f = fdopen(fd, "r");
	if (!p->f) {
		r = -errno;
		close(fd);
		return cfg_fail(p->on_error, p->ctx, path, r, NULL);
	}
	p->nfiles++;
	p->path = path;
	p->lineno = 0;
	p->read_err = 0;
	p->section = NULL;
	p->skip_section = false;
	p->named = -1;
	memset(p->first_line, 0, sizeof(p->first_line));
	free(p->named_v);
	p->named_v = NULL;
	p->named_n = 0;

	r = ini_parse_stream(cfg_reader, p, cfg_handler, p);
	if (r > 0) {
		/* The reader hands inih only lines it parses cleanly, so this
		 * should not happen; if it does, the line was not reported. */
		cfg_error(p, (unsigned)r, "syntax error");
		r = 0;
	}
	if (p->read_err)
		r = cfg_fail(p->on_error, p->ctx, path, p->read_err, "read error");
	else if (r < 0) /* -2: inih's own line buffer (only if built without INI_USE_STACK) */
		r = cfg_fail(p->on_error, p->ctx, path, r == -2 ? -ENOMEM : -EIO, NULL);
	fclose(p->f);
	p->f = NULL;
	free(p->named_v);
	p->named_v = NULL;
	p->named_n = 0;
	return r;
}

/* scandir: the drop-ins are NAME.ini; hidden files are not (as systemd). */
static int cfg_is_dropin(const struct dirent *d)
{
	size_t len = strlen(d->d_name);

	return d->d_name[0] != '.' && len > 4 && !strcmp(d->d_name + len - 4, ".ini");
}

/* scandir: byte order, whatever the locale. */
static int cfg_dropin_order(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/*
 * Reads every drop-in of path (path.d/NAME.ini) in order into p->cfg.
 * Their paths are returned in *paths (*npaths of them), for the caller to
 * free: error messages and p->set_path point into them.  0 (also when
 * path.d does not exist), or the first -errno (reported) of the directory
 * or of a drop-in that cannot be read; the others are read all the same.
 */
static int cfg_read_dropins(struct cfg_parse *p, const char *path, char ***paths, size_t *npaths)
{
	struct dirent **list = NULL;
	char *dir = NULL;
	int n, r = 0;

	*paths = NULL;
	*npaths = 0;
	if (asprintf(&dir, "%s.d", path) < 0)
		return cfg_fail(p->on_error, p->ctx, path, -ENOMEM, NULL);
	n = scandir(dir, &list, cfg_is_dropin, cfg_dropin_order);
	if (n < 0) {
		if (errno != ENOENT)
			r = cfg_fail(p->on_error, p->ctx, dir, -errno, "drop-in directory");
		free(dir);
		return r;
	}
	*paths = calloc((size_t)n + 1, sizeof(**paths));
	for (int i = 0; i < n && *paths; i++) {
		char *file = NULL;
		int fr;

		if (asprintf(&file, "%s/%s", dir, list[i]->d_name) < 0) {
			fr = cfg_fail(p->on_error, p->ctx, dir, -ENOMEM, NULL);
		} else {
			(*paths)[(*npaths)++] = file;
			fr = cfg_read_file(p, file, true);
		}
		if (fr < 0 && !r)
			r = fr;
	}
	if (!*paths)
		r = cfg_fail(p->on_error, p->ctx, dir, -ENOMEM, NULL);
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
	free(dir);
	return r;
}

int mmapq_config_read(struct mmapq_config *c, const char *path,
                      const struct mmapq_config_read_opts *o)
{
	static const struct mmapq_config_read_opts none;
	struct cfg_parse *p;
	char **dropins = NULL;
	size_t ndropins = 0;
	bool missing;
	int r, hard;

	if (!c || !path)
		return -EINVAL;
	if (!o)
		o = &none;

	/* ~20 KiB: keep it off the stack, which inih already uses. */
	p = calloc(1, sizeof(*p));
	if (!p)
		return cfg_fail(o->on_error, o->ctx, path, -ENOMEM, NULL);
	p->on_error = o->on_error;
	p->ctx = o->ctx;
	if (o->base)
		p->cfg = *o->base;
	else
		mmapq_config_defaults(&p->cfg);
	if (o->consumer && !mmapq_consumer_name_valid(o->consumer)) {
		free(p);
		return cfg_fail(o->on_error, o->ctx, path, -EINVAL, "not a consumer name");
	}
	p->consumer = o->consumer;
	snprintf(p->cfg.consumer, sizeof(p->cfg.consumer), "%s", o->consumer ? o->consumer : "");
	p->scratch = p->cfg;

	r = cfg_read_file(p, path, false);
	missing = r == -ENOENT;
	if (missing && !o->missing_ok) {
		free(p);
		return -ENOENT;
	}
	hard = r < 0 && !missing ? r : 0;
	/* Errors in the lines of path do not stop this (every error is
	 * reported), a path that cannot be read at all does. */
	if (!hard)
		hard = cfg_read_dropins(p, path, &dropins, &ndropins);
	if (!hard) {
		cfg_check_geometry(p);
		cfg_check_tls(p);
	}

	if (hard) {
		r = hard;
	} else if (p->nerrors) {
		r = -EINVAL;
	} else {
		*c = p->cfg;
		r = missing ? 1 : 0;
		if (o->on_file && !missing)
			o->on_file(o->ctx, path);
		for (size_t i = 0; i < ndropins && o->on_file; i++)
			o->on_file(o->ctx, dropins[i]);
	}
	free(p->buf);
	for (size_t i = 0; i < ndropins; i++)
		free(dropins[i]);
	free(dropins);
	free(p);
	return r;
}

int mmapq_config_load(struct mmapq_config *c, const char *path,
                      mmapq_config_error_fn on_error, void *ctx)
{
	const struct mmapq_config_read_opts o = {.on_error = on_error, .ctx = ctx};

	return mmapq_config_read(c, path, &o);
}

/* ---- the loaded config ---- */

int mmapq_config_diff(const struct mmapq_config *old_cfg, const struct mmapq_config *new_cfg,
                      mmapq_config_change_fn on_change, void *ctx)
{
	int changed = 0;
	size_t i;

	for (i = 0; i < CFG_NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		/* Any value fits: strings are at most MMAPQ_CONFIG_STR_MAX - 1 bytes. */
		char o[MMAPQ_CONFIG_STR_MAX], n[MMAPQ_CONFIG_STR_MAX];

		/* Compare the text, not the bytes: what is after a string's
		 * NUL is not part of the value. */
		if (cfg_format(old_cfg, k, o, sizeof(o)) < 0 ||
		    cfg_format(new_cfg, k, n, sizeof(n)) < 0)
			return -ENOBUFS;
		if (!strcmp(o, n))
			continue;
		changed++;
		if (on_change)
			on_change(ctx, k->section, k->key, o, n, k->needs_restart);
	}
	return changed;
}

void mmapq_config_apply_live(struct mmapq_config *running, const struct mmapq_config *new_cfg)
{
	for (size_t i = 0; i < CFG_NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		size_t size = CFG_IS_STRING(k->type) ? MMAPQ_CONFIG_STR_MAX : sizeof(uint32_t);

		if (!k->needs_restart)
			memcpy((char *)running + k->offset, (const char *)new_cfg + k->offset, size);
	}
}

int mmapq_config_format_value(const struct mmapq_config *c, const char *section,
                              const char *key, char *buf, size_t size)
{
	const struct cfg_key *k;

	if (!c || !section || !key || (!buf && size))
		return -EINVAL;
	k = cfg_find(section, key);
	if (!k)
		return -ENOENT;
	if (!size)
		return -ENOBUFS;
	return cfg_format(c, k, buf, size);
}

const char *mmapq_log_level_name(enum mmapq_log_level l)
{
	const struct cfg_name *n = cfg_name_by_value(log_level_names, (uint32_t)l);

	return n ? n->name : NULL;
}
