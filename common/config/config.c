/* SPDX-License-Identifier: MIT */
/*
 * config.c -- mmapq.ini: mmapq_config_read, a file and its drop-ins into a
 * configuration, and the checks of keys that are valid one by one but not
 * together.
 *
 * The layer, file by file:
 *   config.h         the public interface
 *   keys.def         the key table, every key once (an X-macro list)
 *   config_keys.h    the types of the table and of a value, private
 *   keys.c           the table and what works on every key: defaults,
 *                    instance defaults, set, diff, apply_live, format_value
 *   values.c         one value by its type: parse, check, describe, format
 *   config_load.h    the state of one load, private
 *   reader.c         one file, line by line, around inih; FILE:LINE errors
 *   dropins.c        FILE.d/NAME.ini
 *   config.c         the whole load, and the checks across keys
 */
#include "config_load.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
 * Keys that are valid one by one but not together: max_record bounds one
 * record, whose frame (mmapq_frame_size: 8 bytes and the record rounded up
 * to 8) may take at most a quarter of the ring (size), so that the ring
 * always holds several of the largest records and keeps flowing
 * (mmapq_max_record_limit).  Blamed on whichever of the two keys is set
 * last (in the later file, or further down the same file; a default cannot
 * be wrong on its own), naming where the other one comes from and the
 * smallest size that takes this max_record.  Not judged when the value set
 * for either was refused: the error about it is the one to fix.
 */
static void cfg_check_geometry(struct cfg_parse *p)
{
	size_t sz = CFG_KEY_size;
	size_t mr = CFG_KEY_max_record;
	uint32_t limit = mmapq_max_record_limit(p->cfg.size);
	struct mmapq_config fit = p->cfg;
	char sz_at[MMAPQ_CONFIG_STR_MAX + 32], mr_at[MMAPQ_CONFIG_STR_MAX + 32];
	char sz_v[32], mr_v[32], fit_v[32];
	size_t last;

	if (p->cfg.max_record <= limit || (!p->set_file[sz] && !p->set_file[mr]) ||
	    p->bad[sz] || p->bad[mr])
		return;
	last = p->set_file[sz] > p->set_file[mr] ||
	       (p->set_file[sz] == p->set_file[mr] && p->set_line[sz] > p->set_line[mr]) ? sz : mr;
	cfg_set_at(p, sz, p->set_file[last], sz_at, sizeof(sz_at));
	cfg_set_at(p, mr, p->set_file[last], mr_at, sizeof(mr_at));
	/* max_record is at most MMAPQ_MAX_RECORD_MAX, whose ring is well
	 * below MMAPQ_SIZE_MAX */
	for (fit.size = MMAPQ_SIZE_MIN; mmapq_max_record_limit(fit.size) < p->cfg.max_record;)
		fit.size *= 2;
	(void)cfg_format(&p->cfg, &cfg_keys[sz], sz_v, sizeof(sz_v));
	(void)cfg_format(&p->cfg, &cfg_keys[mr], mr_v, sizeof(mr_v));
	(void)cfg_format(&fit, &cfg_keys[sz], fit_v, sizeof(fit_v));
	p->path = p->set_path[last];
	cfg_error(p, p->set_line[last],
	          "[queue] max_record %s (%s) does not fit a ring of size %s (%s): a record's frame"
	          " (8 bytes and the record rounded up to 8) may take at most a quarter of the ring,"
	          " so size %s takes a max_record of at most %u; raise size to %s, or lower"
	          " max_record", mr_v, mr_at, sz_v, sz_at, sz_v, limit, fit_v);
}

/*
 * [nats] tls_cert and tls_key: a client certificate needs its key and a
 * key its certificate.  Blamed on the one that is set (the later of the
 * files, or further down the same file).
 */
static void cfg_check_tls(struct cfg_parse *p)
{
	size_t cert = CFG_KEY_nats_tls_cert;
	size_t key = CFG_KEY_nats_tls_key;
	bool has_cert = p->cfg.nats_tls_cert[0], has_key = p->cfg.nats_tls_key[0];
	size_t set = has_cert ? cert : key;

	if (has_cert == has_key)
		return;
	p->path = p->set_path[set];
	cfg_error(p, p->set_line[set], "[nats] %s is set but %s is not: a client certificate"
	          " needs its key (set both, or neither)", has_cert ? "tls_cert" : "tls_key",
	          has_cert ? "tls_key" : "tls_cert");
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
