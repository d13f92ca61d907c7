/* SPDX-License-Identifier: MIT */
/*
 * keys.c -- the key table of mmapq.ini (keys.def, as cfg_keys[])
 * and what works on every key: lookup by name, defaults (an instance's
 * too), set, diff and apply_live for a reload, format_value.
 */
#include "config_keys.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct cfg_name format_names[] = {
	{ "int", MMAPQ_FORMAT_INT }, { "line", MMAPQ_FORMAT_LINE },
	{ "binary", MMAPQ_FORMAT_BINARY }, { NULL, 0 },
};
static const struct cfg_name sync_names[] = {
	{ "never", MMAPQ_SYNC_NEVER }, { "batch", MMAPQ_SYNC_BATCH },
	{ "always", MMAPQ_SYNC_ALWAYS }, { "interval", MMAPQ_SYNC_INTERVAL }, { NULL, 0 },
};
/* The value is kept as a string; the producer interprets it. */
static const struct cfg_name input_names[] = {
	{ "stdin", 0 }, { "socket", 0 }, { "generate", 0 }, { NULL, 0 },
};
static const struct cfg_name on_full_names[] = {
	{ "block", MMAPQ_ON_FULL_BLOCK }, { "drop", MMAPQ_ON_FULL_DROP }, { NULL, 0 },
};
static const struct cfg_name consumer_on_full_names[] = {
	{ "block", MMAPQ_POLICY_BLOCK }, { "skip", MMAPQ_POLICY_SKIP }, { NULL, 0 },
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

/* String fields are whole char[MMAPQ_CONFIG_STR_MAX] arrays, CFG_SIZE
 * fields uint64_t; every other field (enums included) is stored and read
 * as a uint32_t with memcpy. */
#define X(section, key, type, def, min, max, field, names, restart, inst)                   \
	_Static_assert(CFG_IS_STRING(type) ?                                                  \
	               sizeof(((struct mmapq_config *)0)->field) == MMAPQ_CONFIG_STR_MAX :    \
	               (type) == CFG_SIZE ?                                                   \
	               sizeof(((struct mmapq_config *)0)->field) == sizeof(uint64_t) :        \
	               sizeof(((struct mmapq_config *)0)->field) == sizeof(uint32_t),         \
	               "field type of [" section "] " key);                                  \
	_Static_assert(!(inst) || ((type) == CFG_PATH &&                                      \
	               sizeof(def) + MMAPQ_INSTANCE_NAME_MAX + 1 <= (max) + 1),               \
	               "[" section "] " key ": an instance's default must fit");
#include "keys.def"

/* Each entry at its CFG_KEY_<field> index. */
const struct cfg_key cfg_keys[CFG_NKEYS] = {
#define X(section, key, type, def, min, max, field, names, restart, inst)                   \
	[CFG_KEY_##field] = { section, key, type, def, min, max,                             \
	                      offsetof(struct mmapq_config, field), names, restart, inst },
#include "keys.def"
};

const struct cfg_key *cfg_find(const char *section, const char *key)
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
const char *cfg_find_section(const char *section)
{
	size_t i;

	for (i = 0; i < CFG_NKEYS; i++)
		if (!strcmp(cfg_keys[i].section, section))
			return cfg_keys[i].section;
	return NULL;
}

/* Comma-separated section names (sec == NULL) or keys of section sec. */
void cfg_list(const char *sec, char *buf, size_t size)
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
		size_t size = CFG_IS_STRING(k->type) ? MMAPQ_CONFIG_STR_MAX :
		              k->type == CFG_SIZE ? sizeof(uint64_t) : sizeof(uint32_t);

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
