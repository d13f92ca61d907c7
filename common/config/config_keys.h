/* SPDX-License-Identifier: MIT */
/*
 * config_keys.h -- private to common/config: the types of the key table
 * and of one value.
 *
 * Every key is described once, in keys.def; defaults, loading, validation,
 * formatting and diffing are all driven by that table, and the default
 * values are strings parsed by the same code as the file, so a default can
 * never bypass validation.
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
	CFG_ENUM,    /* one of names[], stored as its uint32_t value        */
	CFG_MODE,    /* octal file mode, min..max, must include CFG_MODE_RW */
	CFG_FILE,    /* string: a path, or empty for none, < MMAPQ_CONFIG_STR_MAX bytes */
	CFG_SERVERS, /* string: NATS server URLs, comma-separated (cfg_check_servers) */
	CFG_SUBJECT, /* string: a NATS subject to publish to (no wildcards) */
	CFG_STREAM,  /* string: a JetStream stream name */
	CFG_BYTES,   /* bytes, min..max: decimal with an optional K, M or G (x 1024^n) */
	CFG_SIZE,    /* as CFG_BYTES, a power of two, stored as a uint64_t */
	CFG_DURATION, /* seconds, min..max: decimal with an optional s, m, h or d */
};

/* A queue file its owner cannot read and write is useless. */
#define CFG_MODE_RW 0600u

struct cfg_name {
	const char *name;
	uint32_t value;
};

/* The index of each key in cfg_keys[]: CFG_KEY_<field>. */
enum cfg_key_index {
#define X(section, key, type, def, min, max, field, names, restart, inst) CFG_KEY_##field,
#include "keys.def"
	CFG_NKEYS
};

struct cfg_key {
	const char *section;
	const char *key;
	enum cfg_type type;
	const char *def;
	uint64_t min, max;
	size_t offset;
	const struct cfg_name *names;
	int needs_restart;
	int per_instance;
};

#define CFG_IS_STRING(type)                                                                 \
	((type) == CFG_PATH || (type) == CFG_WORD || (type) == CFG_OUTPUT || (type) == CFG_NAME || \
	 (type) == CFG_FILE || (type) == CFG_SERVERS || (type) == CFG_SUBJECT || (type) == CFG_STREAM)

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

/* A number of any type, CFG_SIZE's uint64_t or another's uint32_t. */
static inline uint64_t cfg_get_num(const struct mmapq_config *c, const struct cfg_key *k)
{
	uint64_t v;

	if (k->type != CFG_SIZE)
		return cfg_get_u32(c, k);
	memcpy(&v, (const char *)c + k->offset, sizeof(v));
	return v;
}

static inline void cfg_set_num(struct mmapq_config *c, const struct cfg_key *k, uint64_t v)
{
	if (k->type == CFG_SIZE)
		memcpy((char *)c + k->offset, &v, sizeof(v));
	else
		cfg_set_u32(c, k, (uint32_t)v);
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
