/* SPDX-License-Identifier: MIT */
/*
 * config_load.h -- private to common/config: the state of one load (a file
 * and its drop-ins), shared by reader.c (one file, line by line),
 * dropins.c (FILE.d/NAME.ini) and config.c (mmapq_config_read).
 */
#ifndef MMAPQ_CONFIG_LOAD_H
#define MMAPQ_CONFIG_LOAD_H

#include <stdbool.h>
#include <stdio.h>

#include "config_keys.h"

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
	bool bad[CFG_NKEYS];            /* its value there was refused: a check across keys
	                                   would judge a value the file does not hold */
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

/* reader.c */
void cfg_error(struct cfg_parse *p, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int cfg_fail(mmapq_config_error_fn on_error, void *ctx, const char *path,
             int r, const char *what);
int cfg_read_file(struct cfg_parse *p, const char *path, bool report_missing);

/* dropins.c */
struct mmapq_config *cfg_merge_target(struct cfg_parse *p, size_t i);
int cfg_read_dropins(struct cfg_parse *p, const char *path, char ***paths, size_t *npaths);

#endif /* MMAPQ_CONFIG_LOAD_H */
