/* SPDX-License-Identifier: MIT */
/*
 * dropins.c -- FILE.d/NAME.ini: finding the drop-ins of a configuration
 * file and reading each, in order, over what came before; and which of
 * the lines that set a key counts ([consumer:NAME] over [consumer], a
 * later file over an earlier one).
 */
#include "config_load.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Where the value of key i on the current line goes.  [consumer:NAME]
 * overrides [consumer] for consumer NAME, in any file and on any line; for
 * other consumers (or none) it is only checked, in p->scratch.  Otherwise
 * a later file overrides an earlier one: the last place counts, and is
 * recorded for the checks across keys (cfg_check_geometry).
 */
struct mmapq_config *cfg_merge_target(struct cfg_parse *p, size_t i)
{
	if (p->named >= 0 ? !p->consumer || strcmp(p->named_v[p->named].name, p->consumer)
	                  : p->specific[i])
		return &p->scratch;
	p->specific[i] |= p->named >= 0;
	p->set_file[i] = p->nfiles;
	p->set_path[i] = p->path;
	p->set_line[i] = p->lineno;
	return &p->cfg;
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
int cfg_read_dropins(struct cfg_parse *p, const char *path, char ***paths, size_t *npaths)
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
