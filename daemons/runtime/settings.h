/* SPDX-License-Identifier: MIT */
/*
 * settings.h -- a program's configuration: the file and its drop-ins
 * (common/config) loaded over the defaults of the instance or of the
 * single queue, with the command line's overrides; reloaded on SIGHUP;
 * --check-config's answer.  Every error is printed as FILE:LINE: message.
 */
#ifndef MMAPQ_SETTINGS_H
#define MMAPQ_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "options.h"

struct settings {
	const struct options *opt;
	const char *consumer;  /* its [consumer:NAME] applies: the consumer's name; NULL: none */
	const char *producer;  /* --name of the producer; NULL: none (MMAPQ_PRODUCER_DEFAULT) */
	const char *output;    /* --output: overrides [consumer] output; NULL: none */
	bool missing;          /* the default file does not exist: defaults (and drop-ins) */
	char **files;          /* the files read, main file (unless missing) first */
	size_t n_files;
};

/* Loads the configuration into cfg (a missing default file means none;
 * the drop-ins still count; a missing explicit one is an error), applies
 * --queue and --output and the log level.  0, or EXIT_CONFIG. */
int settings_load(struct settings *s, struct mmapq_config *cfg);
/* --check-config: each file that was checked (and, with --instance, the
 * instance's queue file and socket); EXIT_OK. */
int settings_check_result(const struct settings *s, const struct mmapq_config *cfg);
void settings_free(struct settings *s);

/* A key by its section and name. */
struct settings_key {
	const char *section, *key;
};

/*
 * Re-read the configuration (RELOADING=1 ... READY=1 around it).  Keys that
 * can change live are copied into *running and logged as applied, but
 * those of own (ended by {NULL, NULL}; own may be NULL): the daemon
 * applies them itself and says what became of them (settings_log_change).
 * Keys that need a restart are logged and left as they are.  A broken file
 * logs every FILE:LINE error and changes nothing.  1 if anything live
 * changed, 0 if not, -1 if the file was rejected.
 */
int settings_reload(struct settings *s, struct mmapq_config *running,
                    const struct settings_key *own);
/* "reload: [section] key: old -> new (applied)", or with why_not:
 * "... not applied: why_not". */
void settings_log_change(const char *section, const char *key, const char *old_value,
                         const char *new_value, const char *why_not);

#endif
