/* SPDX-License-Identifier: MIT */
/*
 * config_keys.h -- private to common/config: the key table and one value by
 * its type.
 *
 * Every key is described once, in MMAPQ_CONFIG_KEYS below; defaults,
 * loading, validation, formatting and diffing are all driven by that table,
 * and the default values are strings parsed by the same code as the file, so
 * a default can never bypass validation.
 *
 * keys.c holds the table itself (cfg_keys[]) and what works on every key
 * (defaults, diff, apply_live, lookup by name); values.c parses, checks and
 * formats one value by its type.
 */
#ifndef MMAPQ_CONFIG_KEYS_H
#define MMAPQ_CONFIG_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"

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

#define CFG_COUNT(...) +1
#define CFG_NKEYS ((size_t)(0 MMAPQ_CONFIG_KEYS(CFG_COUNT)))
extern const struct cfg_key cfg_keys[CFG_NKEYS];

static inline char *cfg_str(struct mmapq_config *c, const struct cfg_key *k)
{
	return (char *)c + k->offset;
}

static inline const char *cfg_cstr(const struct mmapq_config *c, const struct cfg_key *k)
{
	return (const char *)c + k->offset;
}

static inline void cfg_set_u32(struct mmapq_config *c, const struct cfg_key *k, uint32_t v)
{
	memcpy((char *)c + k->offset, &v, sizeof(v));
}

static inline uint32_t cfg_get_u32(const struct mmapq_config *c, const struct cfg_key *k)
{
	uint32_t v;

	memcpy(&v, (const char *)c + k->offset, sizeof(v));
	return v;
}

/* values.c */
const struct cfg_name *cfg_name_by_value(const struct cfg_name *n, uint32_t v);
const char *cfg_parse_value(const struct cfg_key *k, const char *value,
                            struct mmapq_config *c);
void cfg_allowed(const struct cfg_key *k, char *buf, size_t size);
int cfg_format(const struct mmapq_config *c, const struct cfg_key *k,
               char *buf, size_t size);

/* keys.c */
const struct cfg_key *cfg_find(const char *section, const char *key);
const char *cfg_find_section(const char *section);
void cfg_list(const char *sec, char *buf, size_t size);

#endif /* MMAPQ_CONFIG_KEYS_H */
