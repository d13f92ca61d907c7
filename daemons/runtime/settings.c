/* SPDX-License-Identifier: MIT */
#include "settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exit.h"
#include "log.h"
#include "service.h"

static void print_config_error(void *ctx, const char *file, unsigned line, const char *msg)
{
	(void)ctx;
	if (line)
		log_error("%s:%u: %s", file, line, msg);
	else
		log_error("%s: %s", file, msg);
}

static void free_files(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void settings_free(struct settings *s)
{
	free_files(s->files, s->n_files);
	s->files = NULL;
	s->n_files = 0;
}

struct files {
	char **v;
	size_t n;
};

/* mmapq_config_read_opts.on_file; a file that cannot be noted (no memory)
 * is only missing from what is printed. */
static void note_file(void *ctx, const char *file)
{
	struct files *f = ctx;
	char **v = realloc(f->v, (f->n + 1) * sizeof(*v));

	if (!v)
		return;
	f->v = v;
	if ((v[f->n] = strdup(file)))
		f->n++;
}

int settings_load(struct settings *s, struct mmapq_config *cfg)
{
	const struct options *o = s->opt;
	struct files files = {0};
	struct mmapq_config base;
	const struct mmapq_config_read_opts ro = {
		.base = &base,
		.missing_ok = !o->config_explicit, /* the default file may be missing, not --config */
		.on_error = print_config_error,
		.on_file = note_file,
		.ctx = &files,
		.consumer = s->consumer,
	};
	int r;

	mmapq_config_defaults_for(&base, o->instance); /* the name was checked by options_parse */
	r = mmapq_config_read(cfg, o->config_path, &ro);
	if (r == -ENOENT && o->config_beside)
		log_error("%s: no such configuration file (instance %s: its configuration beside"
		          " --config %s)", o->config_path, o->instance, o->config_beside);
	else if (r == -ENOENT)
		log_error("%s: no such configuration file", o->config_path);
	/* every other error went to print_config_error already */
	if (r < 0) {
		free_files(files.v, files.n);
		return EXIT_CONFIG;
	}
	s->missing = r == 1;
	settings_free(s);
	s->files = files.v;
	s->n_files = files.n;
	if (o->queue_path) {
		if (strlen(o->queue_path) >= sizeof(cfg->queue_path)) {
			log_error("--queue: path too long");
			return EXIT_CONFIG;
		}
		strcpy(cfg->queue_path, o->queue_path);
	}
	if (s->output)
		mmapq_config_set(cfg, "consumer", "output", s->output); /* checked by the options */
	/* checked by the options: a name, shorter than the field */
	if (s->producer)
		snprintf(cfg->producer, sizeof(cfg->producer), "%s", s->producer);
	log_set_level(cfg->log_level);
	if (o->program != PROG_CTL && !o->check_config && s->n_files > !s->missing) {
		for (size_t i = !s->missing; i < s->n_files; i++)
			log_info("configuration: drop-in %s", s->files[i]);
	}
	return 0;
}

int settings_check_result(const struct settings *s, const struct mmapq_config *cfg)
{
	size_t i = 0;

	if (s->missing)
		printf("%s: not found; the built-in defaults are used and valid\n", s->opt->config_path);
	else
		printf("%s: configuration OK\n", s->n_files ? s->files[i++] : s->opt->config_path);
	for (; i < s->n_files; i++)
		printf("%s: configuration OK (drop-in)\n", s->files[i]);
	if (s->opt->instance)
		printf("instance %s: queue file %s, socket %s\n", s->opt->instance, cfg->queue_path,
		       cfg->socket_path);
	return EXIT_OK;
}

void settings_log_change(const char *section, const char *key, const char *old_value,
                         const char *new_value, const char *why_not)
{
	if (why_not)
		log_error("reload: [%s] %s: %s -> %s not applied: %s", section, key, old_value,
		          new_value, why_not);
	else
		log_notice("reload: [%s] %s: %s -> %s (applied)", section, key, old_value, new_value);
}

/* mmapq_config_change_fn; ctx: the daemon's own keys (settings_reload). */
static void log_change(void *ctx, const char *section, const char *key, const char *old_value,
                       const char *new_value, int needs_restart)
{
	const struct settings_key *own = ctx;

	if (needs_restart) {
		log_warning("reload: [%s] %s: %s -> %s needs a restart, not applied", section, key,
		            old_value, new_value);
		return;
	}
	for (; own && own->section; own++)
		if (!strcmp(own->section, section) && !strcmp(own->key, key))
			return; /* the daemon says what became of it */
	settings_log_change(section, key, old_value, new_value, NULL);
}

int settings_reload(struct settings *s, struct mmapq_config *running,
                    const struct settings_key *own)
{
	struct mmapq_config next;
	int changed, live;

	service_reloading();
	if (settings_load(s, &next) != 0) {
		log_error("reload: %s has errors; keeping the running configuration", s->opt->config_path);
		log_set_level(running->log_level);
		service_ready("reload failed: configuration has errors, old one kept");
		return -1;
	}
	changed = mmapq_config_diff(running, &next, log_change, (void *)own);
	live = changed > 0 ? mmapq_config_diff(running, &next, NULL, NULL) : 0;
	mmapq_config_apply_live(running, &next);
	live -= mmapq_config_diff(running, &next, NULL, NULL); /* what remains needs a restart */
	log_set_level(running->log_level);
	if (!changed)
		log_notice("reload: %s unchanged", s->opt->config_path);
	service_ready("reloaded");
	return live > 0;
}
