/* SPDX-License-Identifier: MIT */
/*
 * output.c -- the outputs by name: the table is common/config/outputs.def,
 * which the configuration checks [consumer] output against, so a new kind
 * is one line there and a file of its own here.
 */
#include "output.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "service.h"

static const struct {
	const char *name;   /* the spec, or what comes before its ':' */
	bool arg;           /* "NAME:ARG" */
	int (*open)(const struct output_env *env, const char *spec, struct output **ret);
} kinds[] = {
#define OUTPUT(name, arg, impl) {#name, (arg) != NULL, output_##impl##_open},
#include "outputs.def"
#undef OUTPUT
};

int output_open(const struct output_env *env, const char *spec, struct output **ret)
{
	size_t n;

	/* auto: one journal entry per record when stdout is the journal */
	if (!strcmp(spec, "auto"))
		return service_fd_is_journal(STDOUT_FILENO) ? output_journal_open(env, "journal", ret)
		                                            : output_stream_open(env, "stdout", ret);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		n = strlen(kinds[i].name);
		if (!strncmp(spec, kinds[i].name, n) &&
		    (kinds[i].arg ? spec[n] == ':' : spec[n] == '\0'))
			return kinds[i].open(env, spec, ret);
	}
	log_error("output '%s' is not supported by this build", spec);
	return -EINVAL;
}

void output_close(struct output *o)
{
	if (o)
		o->ops->close(o);
}

#ifndef MMAPQ_NATS
/* built without libnats (libnats-dev): output = nats is refused */
int output_nats_open(const struct output_env *env, const char *spec, struct output **ret)
{
	(void)env, (void)spec, (void)ret;
	log_error("output = nats: this mmapq-consumer was built without libnats (install"
	          " libnats-dev and build again)");
	return -EINVAL;
}
#endif
